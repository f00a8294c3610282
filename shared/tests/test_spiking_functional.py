"""Multi-step LIF/IF: hand-computed sequences, reference vs fused kernel vs spikingjelly, edge cases, dispatch."""

import sys
import time

import pytest
import torch

import tenfold_core.spiking as spiking
from tenfold_core.spiking import IF, LIF, SURROGATES, available_backends, if_multi_step, lif_multi_step
from tenfold_core.spiking import functional as F

NAMES = sorted(SURROGATES)


def _run(fn, x, gs, gv, **kw):
    """Spikes, membrane and the input gradient of <gs, S> + <gv, V>."""
    x = x.detach().clone().requires_grad_(True)
    s, v = fn(x, return_v=True, **kw)
    (s * gs + v * gv).sum().backward()
    return s.detach(), v.detach(), x.grad


def _const(value, t=4):
    return torch.full((t, 1), value)


# ------------------------------------------------------------------------------------------ hand computed
@pytest.mark.parametrize("backend", ["reference", "fast"])
def test_hand_computed_lif_hard_and_soft(backend):
    s, v = lif_multi_step(_const(1.5), return_v=True, backend=backend)
    assert s.flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    assert v.flatten().tolist() == [0.75, 0.0, 0.75, 0.0]
    s, v = lif_multi_step(_const(1.5), v_reset=None, return_v=True, backend=backend)
    assert s.flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    assert v.flatten().tolist() == [0.75, 0.125, 0.8125, 0.15625]
    s = lif_multi_step(_const(0.6), decay_input=False, backend=backend)
    assert s.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]
    s, v = if_multi_step(_const(0.4), return_v=True, backend=backend)
    assert s.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]
    torch.testing.assert_close(v.flatten(), torch.tensor([0.4, 0.8, 0.0, 0.4]))
    # custom reset level and initial membrane
    s, v = lif_multi_step(
        _const(0.0, 2), v0=torch.tensor([3.0]), v_reset=-1.0, return_v=True, backend=backend
    )
    # H1 = 3 + (0 - 4)/2 = 1 -> spike -> V = -1; H2 = -1 + (0 - 0)/2 = -1
    assert s.flatten().tolist() == [1.0, 0.0]
    assert v.flatten().tolist() == [-1.0, -1.0]


# ---------------------------------------------------------------------------------- reference vs fused
@pytest.mark.parametrize("surrogate", NAMES)
@pytest.mark.parametrize("v_reset", [0.0, None])
@pytest.mark.parametrize("detach_reset", [True, False])
def test_fast_matches_reference(surrogate, v_reset, detach_reset):
    g = torch.Generator().manual_seed(NAMES.index(surrogate) * 4 + 2 * (v_reset is None) + detach_reset)
    x = torch.randn(6, 3, 517, generator=g) * 1.5
    gs, gv = torch.randn(x.shape, generator=g), torch.randn(x.shape, generator=g)
    kw = dict(surrogate=surrogate, v_reset=v_reset, detach_reset=detach_reset, tau=3.0)
    s0, v0, g0 = _run(lif_multi_step, x, gs, gv, backend="reference", **kw)
    s1, v1, g1 = _run(lif_multi_step, x, gs, gv, backend="fast", **kw)
    assert 0.02 < s0.mean() < 0.98
    assert torch.equal(s0, s1)
    torch.testing.assert_close(v1, v0, rtol=0, atol=1e-6)
    torch.testing.assert_close(g1, g0, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("neuron", ["lif_nodecay", "if"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_matches_reference_other_neurons_and_dtypes(neuron, dtype):
    x = torch.randn(5, 2, 300, dtype=dtype)
    gs, gv = torch.randn_like(x), torch.randn_like(x)
    if neuron == "if":
        fn, kw = if_multi_step, dict(v_reset=None, detach_reset=False, surrogate="sigmoid")
    else:
        fn, kw = lif_multi_step, dict(decay_input=False, tau=1.7, v_reset=-0.2, detach_reset=False)
    s0, v0, g0 = _run(fn, x, gs, gv, backend="reference", **kw)
    s1, v1, g1 = _run(fn, x, gs, gv, backend="fast", **kw)
    assert s1.dtype == dtype
    assert torch.equal(s0, s1)
    torch.testing.assert_close(v1, v0)
    torch.testing.assert_close(g1, g0)


def test_v0_gradient_and_spike_only_gradient():
    x = torch.randn(4, 2, 50)
    v0 = (torch.rand(2, 50) * 0.5).requires_grad_(True)
    out = {}
    for backend in ("reference", "fast"):
        xx = x.clone().requires_grad_(True)
        v0.grad = None
        s = lif_multi_step(xx, v0=v0, detach_reset=False, backend=backend)
        (s * torch.arange(4.0).view(4, 1, 1)).sum().backward()
        out[backend] = (s, xx.grad.clone(), v0.grad.clone())
    assert torch.equal(out["reference"][0], out["fast"][0])
    torch.testing.assert_close(out["fast"][1], out["reference"][1])
    torch.testing.assert_close(out["fast"][2], out["reference"][2])
    assert out["fast"][2].abs().sum() > 0


def test_detach_reset_changes_gradient_not_forward():
    x = torch.randn(6, 200) * 2
    gs = torch.randn_like(x)
    s_a, v_a, g_a = _run(lif_multi_step, x, gs, torch.zeros_like(x), detach_reset=True)
    s_b, v_b, g_b = _run(lif_multi_step, x, gs, torch.zeros_like(x), detach_reset=False)
    assert torch.equal(s_a, s_b) and torch.equal(v_a, v_b)
    assert not torch.allclose(g_a, g_b)


# ----------------------------------------------------------------------------------------------- edges
@pytest.mark.parametrize("backend", ["reference", "fast"])
def test_t_equals_one(backend):
    x = torch.tensor([[[0.5, 2.0, 3.0]]], requires_grad=True)
    s, v = lif_multi_step(x, backend=backend, return_v=True)
    assert s.tolist() == [[[0.0, 1.0, 1.0]]]
    assert v.tolist() == [[[0.25, 0.0, 0.0]]]
    s.sum().backward()
    # d S / d X = g'(H - 1) / tau with H = X / 2 (atan, alpha 2)
    h = x.detach() / 2
    torch.testing.assert_close(x.grad, spiking.surrogate_grad(h - 1.0, "atan") / 2)


def test_non_contiguous_input():
    base = torch.randn(3, 40, 8) * 2
    x = base.permute(2, 0, 1)  # [T=8, 3, 40], non-contiguous
    assert not x.is_contiguous()
    gs, gv = torch.randn(x.shape), torch.randn(x.shape)
    s0, v0, g0 = _run(lif_multi_step, x.contiguous(), gs, gv, backend="reference")
    s1, v1, g1 = _run(lif_multi_step, x, gs, gv, backend="fast")
    assert torch.equal(s0, s1)
    torch.testing.assert_close(v1, v0)
    torch.testing.assert_close(g1, g0)
    assert s1.shape == x.shape


@pytest.mark.parametrize("backend", ["reference", "fast"])
def test_empty_batch(backend):
    x = torch.randn(4, 0, 16, requires_grad=True)
    s = lif_multi_step(x, backend=backend)
    assert s.shape == (4, 0, 16)
    s.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


def test_stateless_between_calls_and_module_reset_is_noop():
    m = LIF(surrogate="sigmoid")
    x = torch.randn(4, 2, 64) * 2
    a = m(x)
    m.reset()
    b = m(x)
    c = m(x)
    assert torch.equal(a, b) and torch.equal(b, c)
    assert torch.equal(a, lif_multi_step(x, surrogate="sigmoid"))
    assert torch.equal(IF()(x), if_multi_step(x))
    with pytest.raises(TypeError):
        IF(tau=2.0)
    with pytest.raises(ValueError):
        LIF(step_mode="x")
    with pytest.raises(ValueError):
        lif_multi_step(x, tau=1.0)


def test_half_precision_on_cpu_uses_reference():
    x = torch.randn(4, 3, 10)
    assert available_backends(x.half()) == ["reference"]
    assert "fast" in available_backends(x)
    s = lif_multi_step(x.bfloat16())
    assert s.dtype == torch.bfloat16
    assert torch.equal(s, lif_multi_step(x.bfloat16(), backend="reference"))
    assert lif_multi_step(_const(1.5).half()).flatten().tolist() == [0.0, 1.0, 0.0, 1.0]


def test_dispatch_never_touches_cuda_kernel_on_cpu(monkeypatch):
    def boom():
        raise AssertionError("CUDA kernel requested for a CPU tensor")

    monkeypatch.setattr(F, "_cuda_kernel", boom)
    x = torch.randn(4, 2, 33, requires_grad=True)
    lif_multi_step(x).sum().backward()
    assert x.grad is not None


def test_fallback_with_warning_when_kernel_cannot_build(monkeypatch):
    x = torch.randn(5, 2, 40) * 2
    expected = lif_multi_step(x, backend="reference")
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba -> ImportError
    monkeypatch.delitem(sys.modules, "tenfold_core.spiking._cpu_kernel", raising=False)
    monkeypatch.delattr(spiking, "_cpu_kernel", raising=False)
    monkeypatch.setattr(F, "_cpu_state", {"module": None, "failed": False})
    with pytest.warns(RuntimeWarning, match=r"needs numba \(pip install .tenfold-core\[spiking\]"):
        out = lif_multi_step(x)
    assert torch.equal(out, expected)
    assert available_backends(x) == ["reference"]


def test_fast_is_faster_than_reference_side_by_side():
    x = torch.randn(8, 16, 4096, requires_grad=True)

    def best(backend):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            lif_multi_step(x, backend=backend).sum().backward()
            times.append(time.perf_counter() - t0)
        return min(times)

    best("fast")  # warm-up (kernel load)
    assert best("fast") < best("reference")


# ---------------------------------------------------------------------------------- vs spikingjelly
_SJ = {
    "atan": "ATan",
    "sigmoid": "Sigmoid",
    "piecewise_quadratic": "PiecewiseQuadratic",
    "soft_sign": "SoftSign",
    "erf": "Erf",
    "piecewise_exp": "PiecewiseExp",
}


@pytest.mark.parametrize("surrogate", NAMES)
@pytest.mark.parametrize("v_reset", [0.0, None])
@pytest.mark.parametrize("detach_reset", [True, False])
def test_matches_spikingjelly_lifnode(surrogate, v_reset, detach_reset):
    sj = pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import neuron
    from spikingjelly.activation_based import surrogate as sjs

    del sj
    g = torch.Generator().manual_seed(7)
    x = torch.randn(6, 4, 129, generator=g) * 1.5
    gs, gv = torch.randn(x.shape, generator=g), torch.randn(x.shape, generator=g)
    node = neuron.LIFNode(
        tau=2.0,
        v_reset=v_reset,
        detach_reset=detach_reset,
        surrogate_function=getattr(sjs, _SJ[surrogate])(),
        step_mode="m",
        store_v_seq=True,
    )
    xs = x.clone().requires_grad_(True)
    s_ref = node(xs)
    (s_ref * gs + node.v_seq * gv).sum().backward()
    for backend in ("reference", "fast"):
        s, v, gx = _run(
            lif_multi_step,
            x,
            gs,
            gv,
            surrogate=surrogate,
            v_reset=v_reset,
            detach_reset=detach_reset,
            backend=backend,
        )
        assert torch.equal(s, s_ref.detach())
        torch.testing.assert_close(v, node.v_seq.detach())
        torch.testing.assert_close(gx, xs.grad, rtol=1e-5, atol=1e-6)


def test_matches_spikingjelly_ifnode():
    pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import neuron
    from spikingjelly.activation_based import surrogate as sjs

    x = torch.randn(5, 3, 64)
    gs = torch.randn_like(x)
    node = neuron.IFNode(v_reset=None, surrogate_function=sjs.ATan(), step_mode="m")
    xs = x.clone().requires_grad_(True)
    s_ref = node(xs)
    (s_ref * gs).sum().backward()
    _, _, gx = _run(if_multi_step, x, gs, torch.zeros_like(x), v_reset=None, detach_reset=False)
    s = if_multi_step(x, v_reset=None, detach_reset=False)
    assert torch.equal(s, s_ref.detach())
    torch.testing.assert_close(gx, xs.grad)


@pytest.mark.parametrize("neuron", ["lif", "lif_nodecay", "if"])
def test_spikingjelly_backend_adapter(neuron):
    pytest.importorskip("spikingjelly.activation_based")
    x = torch.randn(5, 2, 70) * 1.5
    gs, gv = torch.randn_like(x), torch.randn_like(x)
    if neuron == "if":
        fn, kw = if_multi_step, dict(v_reset=None, surrogate="erf")
    else:
        fn, kw = lif_multi_step, dict(decay_input=neuron == "lif", tau=2.5, surrogate="sigmoid", alpha=3.0)
    s0, v0, g0 = _run(fn, x, gs, gv, backend="reference", **kw)
    s1, v1, g1 = _run(fn, x, gs, gv, backend="spikingjelly", **kw)
    assert torch.equal(s0, s1)
    torch.testing.assert_close(v1, v0)
    torch.testing.assert_close(g1, g0, rtol=1e-5, atol=1e-5)


def test_no_grad_forward_does_not_save_membrane(monkeypatch):
    x = torch.randn(4, 3, 50, requires_grad=True)
    seen = []
    orig = F._FusedCPU.forward

    def spy(ctx, x2d, v0, params, iparams, return_v, need_grad, ref_cfg):
        seen.append(need_grad)
        return orig(ctx, x2d, v0, params, iparams, return_v, need_grad, ref_cfg)

    monkeypatch.setattr(F._FusedCPU, "forward", staticmethod(spy))
    with torch.no_grad():
        s = lif_multi_step(x, backend="fast")
    assert not s.requires_grad
    s2 = lif_multi_step(x, backend="fast")
    assert s2.requires_grad and torch.equal(s, s2.detach())
    assert seen == [False, True]


def test_kernel_follows_torch_thread_count(monkeypatch):
    numba = pytest.importorskip("numba")
    from tenfold_core.spiking import _cpu_kernel

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here")
    monkeypatch.setattr(_cpu_kernel, "MIN_PARALLEL", 0)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        x = torch.randn(3, 4096, requires_grad=True)
        lif_multi_step(x, backend="fast").sum().backward()
        assert numba.get_num_threads() == 2
        torch.set_num_threads(1)
        lif_multi_step(x, backend="fast").sum().backward()
        assert _cpu_kernel.set_threads(torch.get_num_threads()) == 1  # one worker: the serial kernels
        assert _cpu_kernel.plan(3, 4096, 1, backward=True)[1] == 1
    finally:
        torch.set_num_threads(before)
