"""Fused LayerNorm + multi-step LIF (``layernorm_lif_multi_step``, ``LayerNormLIF``) against the composition
``torch.nn.functional.layer_norm`` then ``lif_multi_step`` (the reference), on CPU."""

import sys

import pytest
import torch
from torch import nn

from tenfold_core.spiking import (
    LIF,
    SURROGATES,
    FiringRateMonitor,
    LayerNormLIF,
    NeuronConfig,
    layernorm_lif_multi_step,
    lif_multi_step,
)
from tenfold_core.spiking import functional as F

pytest.importorskip("numba")
from tenfold_core.spiking import _cpu_fused_ln, _cpu_kernel

NAMES = sorted(SURROGATES)


def _inputs(shape, seed, affine=True, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    D = shape[-1]
    x = (torch.randn(shape, generator=g) * 2 + 0.5).to(dtype)
    w = (torch.rand(D, generator=g) + 0.5).to(dtype) if affine else None
    b = (torch.randn(D, generator=g) * 0.4).to(dtype) if affine else None
    v0 = (torch.rand(shape[1:], generator=g) * 0.5).to(dtype)
    gs = torch.randn(shape, generator=g).to(dtype)
    gv = torch.randn(shape, generator=g).to(dtype)
    return x, w, b, v0, gs, gv


def _grads(fused, x, w, b, v0, gs, gv, **kw):
    """Spikes, membrane and the gradients of <gs, S> + <gv, V> wrt x, weight, bias, v0."""
    leaves = [None if t is None else t.clone().requires_grad_(True) for t in (x, w, b, v0)]
    xl, wl, bl, vl = leaves
    if fused:
        s, v = layernorm_lif_multi_step(xl, wl, bl, v0=vl, return_v=True, backend="fast", **kw)
    else:
        y = torch.nn.functional.layer_norm(xl, (x.shape[-1],), wl, bl, 1e-5)
        s, v = lif_multi_step(y, v0=vl, return_v=True, backend="reference", **kw)
    (s * gs + v * gv).sum().backward()
    return s.detach(), v.detach(), [None if t is None else t.grad for t in leaves]


def _check(shape, seed, affine=True, dtype=torch.float32, tol=1e-5, **kw):
    args = _inputs(shape, seed, affine, dtype)
    s0, v0, g0 = _grads(False, *args, **kw)
    s1, v1, g1 = _grads(True, *args, **kw)
    assert s1.dtype == dtype and s1.shape == shape
    assert torch.equal(s1, s0), f"{int((s1 != s0).sum())} spikes differ"
    assert 0.02 < float(s0.mean()) < 0.6  # the operating point fires, and not everywhere
    torch.testing.assert_close(v1, v0, rtol=tol, atol=tol)
    for name, a, r in zip(("x", "weight", "bias", "v0"), g1, g0):
        if r is None:
            assert a is None, name
            continue
        scale = float(r.abs().max())
        assert scale > 0, name
        torch.testing.assert_close(a, r, rtol=tol, atol=tol * scale, msg=lambda m, n=name: f"{n}: {m}")


# ------------------------------------------------------------------------------- equality vs composition
@pytest.mark.parametrize("surrogate", NAMES)
def test_matches_composition_every_surrogate_reset_and_detach(surrogate):
    i = NAMES.index(surrogate)
    for k, (v_reset, detach) in enumerate(((0.0, True), (None, False), (0.0, False), (None, True))):
        _check((4, 3, 5, 48), 10 * i + k, surrogate=surrogate, v_reset=v_reset, detach_reset=detach,
               v_threshold=0.7, tau=2.5)  # fmt: skip


@pytest.mark.parametrize(
    "shape",
    [(1, 1, 1, 8), (5, 7, 33), (3, 2, 550, 64), (16, 4, 1, 1024)],
    ids=["tiny", "odd", "chunks", "T16"],
)
@pytest.mark.parametrize("affine", [True, False])
def test_matches_composition_shapes_and_affine(shape, affine):
    # (3, 2, 550, 64): 1100 rows of 64 = 70400 elements, more than the kernel's 65536-element chunk
    _check(shape, sum(shape) + affine, affine=affine, v_threshold=0.7, surrogate="sigmoid")


def test_rows_cross_chunks_and_threads_give_the_same_result(monkeypatch):
    shape = (4, 37, 40)  # 37 rows; chunks of 3 rows: 13 chunks, the last one partial
    args = _inputs(shape, 3)
    s0, v0, g0 = _grads(True, *args, v_threshold=0.7)
    monkeypatch.setattr(_cpu_fused_ln, "MAX_CHUNK", 3 * 40 + 7)
    monkeypatch.setattr(_cpu_kernel, "MIN_PARALLEL", 0)  # two threads split even this small call
    assert _cpu_fused_ln.plan_rows(4, 37, 40, 1, False) == (3, 1)
    assert _cpu_fused_ln.plan_rows(4, 37, 40, 2, False) == (3, 2)
    before = torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        try:
            s1, v1, g1 = _grads(True, *args, v_threshold=0.7)
        finally:
            torch.set_num_threads(before)
        assert torch.equal(s1, s0) and torch.equal(v1, v0)
        assert torch.equal(g1[0], g0[0]) and torch.equal(
            g1[3], g0[3]
        )  # elementwise: chunking changes nothing
        torch.testing.assert_close(g1[1], g0[1], rtol=1e-5, atol=1e-5)  # reduced over rows: order may differ
        torch.testing.assert_close(g1[2], g0[2], rtol=1e-5, atol=1e-5)


def test_float64_gradients_agree_to_rounding():
    # gradcheck-style: the hand-written backward (LIF surrogate gradient, then LayerNorm backward) against
    # autograd through layer_norm + the reference neuron, in float64
    for k, kw in enumerate((dict(), dict(v_reset=None, detach_reset=False), dict(decay_input=False))):
        _check((6, 4, 3, 20), 40 + k, dtype=torch.float64, tol=1e-10, v_threshold=0.7, surrogate="atan", **kw)


def test_decay_input_false_and_if_neuron():
    _check((5, 6, 24), 7, decay_input=False, v_threshold=0.8)
    x, w, b, _, _, _ = _inputs((5, 6, 24), 8)
    y = torch.nn.functional.layer_norm(x, (24,), w, b)
    ref = F.if_multi_step(y, v_threshold=1.5, backend="reference")
    out = F.layernorm_neuron_multi_step(x, w, b, neuron="if", v_threshold=1.5)
    assert torch.equal(out, ref) and out.sum() > 0


def test_spikes_only_gradient_and_no_grad():
    x, w, b, _, gs, _ = _inputs((4, 3, 32), 9)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    layernorm_lif_multi_step(xa, w, b, v_threshold=0.7).backward(gs)
    y = torch.nn.functional.layer_norm(xb, (32,), w, b)
    lif_multi_step(y, v_threshold=0.7, backend="reference").backward(gs)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        s = layernorm_lif_multi_step(x, w, b, v_threshold=0.7)
    assert s.grad_fn is None and torch.equal(s, lif_multi_step(y.detach(), v_threshold=0.7))


def test_saves_only_the_input_and_row_statistics():
    x, w, b, _, _, _ = _inputs((6, 4, 5, 32), 15)
    x.requires_grad_(True)
    w.requires_grad_(True)
    s = layernorm_lif_multi_step(x, w, b)
    saved = [t for t in s.grad_fn.next_functions[0][0].saved_tensors if t is not None]
    sizes = sorted(t.numel() for t in saved)
    # x [6, 20, 32], weight and bias [32], mean and rstd [6, 20]: no LayerNorm output, no membrane
    assert sizes == [32, 32, 120, 120, x.numel()], sizes
    y = torch.nn.functional.layer_norm(x, (32,), w, b)
    assert torch.equal(s, lif_multi_step(y))


def test_if_kind_module():
    torch.manual_seed(2)
    m = LayerNormLIF(16, kind="if", v_threshold=1.2)
    x = torch.randn(5, 3, 16)
    ref = F.if_multi_step(torch.nn.functional.layer_norm(x, (16,)), v_threshold=1.2, backend="reference")
    assert torch.equal(m(x), ref) and ref.sum() > 0


# ---------------------------------------------------------------------------------------- fallbacks
def _forbid_kernel(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("fused kernel used")

    monkeypatch.setattr(F._FusedLNCPU, "apply", boom)


def test_reference_backend_half_precision_and_mixed_dtypes_use_the_composition(monkeypatch):
    x, w, b, _, _, _ = _inputs((3, 4, 16), 11)
    expected = lif_multi_step(torch.nn.functional.layer_norm(x, (16,), w, b), backend="reference")
    _forbid_kernel(monkeypatch)
    assert torch.equal(layernorm_lif_multi_step(x, w, b, backend="reference"), expected)
    xd = x.double()  # float64 input with float32 parameters: no fused kernel; torch decides (it raises)
    with pytest.raises(RuntimeError):
        layernorm_lif_multi_step(xd, w, b)
    xh = x.to(torch.bfloat16)
    out = layernorm_lif_multi_step(xh, w.to(torch.bfloat16), b.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16 and out.shape == x.shape


def test_build_failure_falls_back_with_warning_runtime_error_is_raised(monkeypatch):
    x, w, b, _, gs, _ = _inputs((3, 4, 16), 12)
    y = torch.nn.functional.layer_norm(x, (16,), w, b)
    expected = lif_multi_step(y, v_threshold=0.7, backend="reference")
    monkeypatch.setattr(F, "_ln_state", dict(F._ln_state))

    class TypingError(Exception):  # stands in for numba.core.errors.TypingError
        pass

    TypingError.__module__ = "numba.core.errors"

    def raiser(exc):
        def f(*a, **k):
            raise exc

        return f

    for name in ("ln_lif_forward", "ln_lif_forward_serial"):  # the parallel kernel and its one-worker twin
        monkeypatch.setattr(_cpu_fused_ln, name, raiser(MemoryError("simulated out of memory")))
    with pytest.raises(MemoryError, match="simulated"):
        layernorm_lif_multi_step(x, w, b, v_threshold=0.7)
    assert not F._ln_state["failed"]
    for name in ("ln_lif_forward", "ln_lif_forward_serial"):  # the parallel kernel and its one-worker twin
        monkeypatch.setattr(_cpu_fused_ln, name, raiser(TypingError("simulated typing error")))
    with pytest.warns(RuntimeWarning, match="LayerNorm\\+LIF kernel failed to build"):
        out = layernorm_lif_multi_step(x, w, b, v_threshold=0.7)
    assert torch.equal(out, expected) and F._ln_state["failed"]
    # from now on the composition, without a warning, and plain lif_multi_step is untouched
    assert torch.equal(layernorm_lif_multi_step(x, w, b, v_threshold=0.7), expected)
    assert F._cpu_state["module"] is not None


def test_backward_build_failure_uses_autograd_through_the_composition(monkeypatch):
    x, w, b, v0, gs, gv = _inputs((4, 3, 24), 13)
    s0, m0, g0 = _grads(False, x, w, b, v0, gs, gv, v_threshold=0.7)
    monkeypatch.setattr(F, "_ln_state", dict(F._ln_state))

    class LoweringError(Exception):
        pass

    LoweringError.__module__ = "numba.core.errors"

    def broken(*a, **k):
        raise LoweringError("simulated")

    for name in ("ln_lif_backward", "ln_lif_backward_serial"):  # the parallel kernel and its one-worker twin
        monkeypatch.setattr(_cpu_fused_ln, name, broken)
    with pytest.warns(RuntimeWarning, match="failed to build"):
        s1, m1, g1 = _grads(True, x, w, b, v0, gs, gv, v_threshold=0.7)
    assert torch.equal(s1, s0)
    for a, r in zip(g1, g0):
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-5)


def test_without_numba_the_composition_runs(monkeypatch):
    x, w, b, _, _, _ = _inputs((3, 4, 16), 14)
    expected = lif_multi_step(torch.nn.functional.layer_norm(x, (16,), w, b), backend="reference")
    monkeypatch.setitem(sys.modules, "numba", None)
    monkeypatch.setattr(F, "_cpu_state", {"module": None, "failed": False})
    monkeypatch.setattr(F, "_ln_state", {"module": None, "failed": False})
    with pytest.warns(RuntimeWarning, match="needs numba"):
        out = layernorm_lif_multi_step(x, w, b)
    assert torch.equal(out, expected)


def test_bad_shapes():
    with pytest.raises(ValueError, match="weight must have shape"):
        layernorm_lif_multi_step(torch.randn(2, 3, 4), torch.ones(5))
    with pytest.raises(ValueError, match="time dimension and a feature"):
        layernorm_lif_multi_step(torch.randn(4))


# ------------------------------------------------------------------------------------------- module
def test_module_equals_layernorm_then_lif_and_is_monitored():
    cfg = NeuronConfig(tau=3.0, v_threshold=0.6, surrogate="erf", v_reset=None)
    torch.manual_seed(0)
    fused = LayerNormLIF(32, neuron=cfg)
    with torch.no_grad():
        fused.weight.uniform_(0.5, 1.5)
        fused.bias.normal_(0, 0.3)
    norm, lif = nn.LayerNorm(32), LIF(tau=3.0, v_threshold=0.6, surrogate="erf", v_reset=None)
    norm.load_state_dict(fused.state_dict())
    x = torch.randn(4, 2, 5, 32)
    with FiringRateMonitor(fused) as mon:
        s = fused(x)
    assert torch.equal(s, lif(norm(x)))
    rate = float(s.detach().double().mean())
    assert abs(mon.rates()[type(fused).__name__] - rate) < 1e-12 and rate > 0.02
    assert "32, eps=1e-05" in repr(fused) and "erf" in repr(fused)
    assert LayerNormLIF(8, elementwise_affine=False).weight is None
    with pytest.raises(ValueError, match="plif"):
        LayerNormLIF(8, kind="plif")
    with pytest.raises(TypeError, match="unknown neuron argument"):
        LayerNormLIF(8, taux=2.0)


def test_single_step_mode_streams_the_multi_step_result():
    torch.manual_seed(1)
    m = LayerNormLIF(16, v_threshold=0.6, step_mode="s")
    x = torch.randn(6, 3, 16)
    full = LayerNormLIF(16, v_threshold=0.6)(x)
    steps = torch.stack([m(x[t]) for t in range(6)])
    assert torch.equal(steps, full)
    m.reset()
    assert m.v is None


# ------------------------------------------------------------------------------------- training effect
class _Net(nn.Module):
    """Linear -> LayerNorm+LIF over T=4 steps -> Linear, rate-decoded: a 2-layer spiking classifier."""

    def __init__(self, fused: bool, d_in=8, hidden=32, classes=2):
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        if fused:
            self.neuron = LayerNormLIF(hidden, v_threshold=0.5)
        else:
            self.neuron = nn.Sequential(nn.LayerNorm(hidden), LIF(v_threshold=0.5, backend="reference"))
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x):
        h = self.fc1(x).unsqueeze(0).expand(4, -1, -1)  # direct encoding, T = 4
        return self.fc2(self.neuron(h)).mean(0)


def _train(fused: bool, x, y, steps=40):
    torch.manual_seed(0)
    net = _Net(fused)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    losses = []
    for _ in range(steps):
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        acc = float((net(x).argmax(1) == y).float().mean())
    return losses, acc


def test_training_with_the_fused_layer_matches_the_unfused_one():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(128, 8, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()  # linearly separable
    lf, af = _train(True, x, y)
    lu, au = _train(False, x, y)
    torch.testing.assert_close(torch.tensor(lf), torch.tensor(lu), rtol=1e-4, atol=1e-5)
    assert lf[-1] < 0.5 * lf[0]  # it learns
    assert af >= 0.9 and abs(af - au) < 1e-9
