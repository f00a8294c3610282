"""Single-step (stateful) neurons, PLIF, the neuron factory, multi-chunk kernels, fallback rules, cheap import."""

import os
import subprocess
import sys

import pytest
import torch

from tenfold_core.spiking import (
    LIF,
    PLIF,
    FiringRateMonitor,
    Heaviside,
    NeuronConfig,
    SpikingTransformerBlock,
    beta_to_tau,
    lif_multi_step,
    lif_step,
    make_neuron,
    tau_to_beta,
)
from tenfold_core.spiking import functional as F


def test_step_mode_s_matches_multi_step_and_reset_clears_state():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 17) * 2
    ref = lif_multi_step(x, tau=3.0, v_reset=None)
    m = LIF(tau=3.0, v_reset=None, step_mode="s")
    out = torch.stack([m(x[t]) for t in range(6)])
    assert torch.equal(out, ref)
    assert m.v is not None
    m.reset()
    assert m.v is None and torch.equal(m(x[0]), ref[0])
    with pytest.raises(ValueError, match="reset"):
        m(torch.randn(2, 5))


def test_lif_step_explicit_state_and_gradient_through_state():
    torch.manual_seed(1)
    x = (torch.randn(5, 2, 9) * 2).requires_grad_(True)
    v, outs = None, []
    for t in range(5):
        s, v = lif_step(x[t], v, backend="reference")
        outs.append(s)
    ref_x = x.detach().clone().requires_grad_(True)
    ref = lif_multi_step(ref_x, backend="reference")
    assert torch.equal(torch.stack(outs), ref)
    torch.stack(outs).sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(x.grad, ref_x.grad)


def test_plif_learns_tau_and_equals_lif_at_init():
    torch.manual_seed(2)
    x = torch.randn(4, 3, 11) * 2
    p = PLIF(tau=2.0)
    assert abs(p.learned_tau - 2.0) < 1e-6
    assert torch.equal(p(x), lif_multi_step(x, tau=2.0, backend="reference"))
    opt = torch.optim.SGD(p.parameters(), lr=1.0)
    before = p.learned_tau
    for _ in range(5):  # push the firing rate up: the learned time constant must move
        loss = -p(x.requires_grad_(False)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert p.w.grad is not None and p.learned_tau != before


def test_make_neuron_and_block_take_one_neuron_config():
    nc = NeuronConfig(kind="plif", tau=4.0, v_threshold=0.7, surrogate="sigmoid")
    assert isinstance(make_neuron(nc), PLIF)
    assert make_neuron(nc, v_threshold=0.3).v_threshold == 0.3
    blk = SpikingTransformerBlock(16, 4, neuron=nc, attn_v_threshold=0.25)
    lifs = [m for m in blk.modules() if isinstance(m, PLIF)]
    assert len(lifs) == 7 and {m.v_threshold for m in lifs} == {0.7, 0.25}
    # the old keyword arguments still work and override the config
    blk2 = SpikingTransformerBlock(16, 4, tau=3.0, surrogate="erf")
    assert {m.tau for m in blk2.modules() if isinstance(m, LIF)} == {3.0}
    with pytest.raises(TypeError, match="unknown neuron argument"):
        SpikingTransformerBlock(16, 4, taus=3.0)
    with pytest.raises(ValueError, match="neuron.tau"):
        NeuronConfig(tau=0.5)
    assert abs(beta_to_tau(tau_to_beta(5.0)) - 5.0) < 1e-12


def test_monitor_sees_heaviside_encoder():
    enc = torch.nn.Sequential(Heaviside(), LIF())
    with FiringRateMonitor(enc) as mon:
        enc(torch.randn(4, 2, 100))
    assert set(mon.rates()) == {"0", "1"} and 0.3 < mon.rates()["0"] < 0.7


@pytest.mark.parametrize("T, extra", [(4, 77), (300, 0)])
@pytest.mark.parametrize("v_reset", [0.0, None])
def test_fused_matches_reference_across_chunks(T, extra, v_reset):
    if "fast" not in F.available_backends():
        pytest.skip("no fused CPU kernel")
    from tenfold_core.spiking import _cpu_kernel

    # T=4: 2 full forward/backward chunks + a partial one; T=300: the backward's chunk shrinks (T * chunk buffer)
    chunk = _cpu_kernel.plan(T, 1 << 30, 1, backward=True)[0]
    N = (2 * chunk + extra) if T == 4 else 3 * chunk
    assert _cpu_kernel.plan(T, N, 1, backward=True)[0] < N
    torch.manual_seed(3)
    x = (torch.randn(T, N) * 2).requires_grad_(True)
    xr = x.detach().clone().requires_grad_(True)
    s, v = lif_multi_step(x, v_reset=v_reset, backend="fast", return_v=True)
    sr, vr = lif_multi_step(xr, v_reset=v_reset, backend="reference", return_v=True)
    assert torch.equal(s, sr)
    torch.testing.assert_close(v, vr)
    g = torch.randn_like(s)
    (s * g).sum().backward()
    (sr * g).sum().backward()
    torch.testing.assert_close(x.grad, xr.grad)
    assert x.grad[:, -100:].abs().sum() > 0  # the last chunk got gradients too


def test_runtime_errors_are_raised_not_hidden_by_a_fallback(monkeypatch):
    if "fast" not in F.available_backends():
        pytest.skip("no fused CPU kernel")

    def boom(*a, **k):
        raise MemoryError("simulated out of memory")

    monkeypatch.setattr(F._FusedCPU, "apply", boom)
    with pytest.raises(MemoryError):
        lif_multi_step(torch.randn(3, 10), backend="fast")
    assert F._cpu_state["module"] is not None and not F._cpu_state["failed"]


def test_build_failure_classification():
    class NumbaLike(Exception):
        pass

    NumbaLike.__module__ = "numba.core.errors"
    assert F._is_build_failure(NumbaLike())
    assert F._is_build_failure(ImportError())
    assert not F._is_build_failure(MemoryError())
    assert not F._is_build_failure(RuntimeError("bad shape"))


def test_import_is_cheap_and_does_not_touch_numba_config():
    code = (
        "import sys, tenfold_core.spiking as s; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'numba' not in sys.modules; "
        "s.NeuronConfig(); import numba; before = numba.config.THREADING_LAYER; "
        "import tenfold_core.spiking._cpu_kernel; assert numba.config.THREADING_LAYER == before; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_fused_two_workers_match_reference(monkeypatch):
    if "fast" not in F.available_backends():
        pytest.skip("no fused CPU kernel")
    from tenfold_core.spiking import _cpu_kernel

    # below MIN_PARALLEL: one worker, the serial kernel
    assert _cpu_kernel.plan(6, 20000, 2, backward=True)[1] == 1
    monkeypatch.setattr(_cpu_kernel, "MIN_PARALLEL", 0)
    assert _cpu_kernel.plan(6, 20000, 2, backward=True)[1] == 2  # two workers share the chunks
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        torch.manual_seed(5)
        x = (torch.randn(6, 20000) * 2).requires_grad_(True)
        xr = x.detach().clone().requires_grad_(True)
        g = torch.randn(6, 20000)
        s = lif_multi_step(x, backend="fast", detach_reset=False)
        sr = lif_multi_step(xr, backend="reference", detach_reset=False)
        (s * g).sum().backward()
        (sr * g).sum().backward()
    finally:
        torch.set_num_threads(before)
    assert torch.equal(s, sr)
    torch.testing.assert_close(x.grad, xr.grad)


def test_one_worker_runs_the_serial_twin_with_the_same_bits(monkeypatch):
    """A one-worker call runs the kernel compiled without ``parallel=True`` (a workqueue launch costs ~0.1 ms);
    it is the same code, so spikes, membrane and gradients are bit-identical to the parallel kernel's."""
    if "fast" not in F.available_backends():
        pytest.skip("no fused CPU kernel")
    import numba

    from tenfold_core.spiking import _cpu_kernel

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here: no parallel call to compare with")
    assert _cpu_kernel.kernel(_cpu_kernel, "lif_forward", 1)[0] is _cpu_kernel.lif_forward_serial
    assert _cpu_kernel.kernel(_cpu_kernel, "lif_backward", 2)[0] is _cpu_kernel.lif_backward
    calls = []
    for name in ("lif_forward", "lif_forward_serial", "lif_backward", "lif_backward_serial"):
        fn = getattr(_cpu_kernel, name)
        monkeypatch.setattr(_cpu_kernel, name, lambda *a, _f=fn, _n=name: (calls.append(_n), _f(*a))[1])
    torch.manual_seed(7)
    x = (torch.randn(5, 3000) * 2).requires_grad_(True)
    g = torch.randn(5, 3000)
    before = torch.get_num_threads()
    out = {}
    try:
        for threads, min_par in ((1, 1 << 21), (2, 0)):
            torch.set_num_threads(threads)
            monkeypatch.setattr(_cpu_kernel, "MIN_PARALLEL", min_par)
            x.grad = None
            s, v = lif_multi_step(x, backend="fast", return_v=True, detach_reset=False)
            (s * g + v).sum().backward()
            out[threads] = (s, v, x.grad.clone())
    finally:
        torch.set_num_threads(before)
    assert calls == ["lif_forward_serial", "lif_backward_serial", "lif_forward", "lif_backward"]
    if "NUMBA_THREADING_LAYER" not in os.environ:  # the pool started in the layer the kernels ask for
        assert numba.threading_layer() == "workqueue"
    for a, b in zip(out[1], out[2]):
        assert torch.equal(a, b)
