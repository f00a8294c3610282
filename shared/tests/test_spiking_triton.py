"""The Triton (CUDA) LIF kernels, run on CPU tensors through Triton's interpreter (TRITON_INTERPRET=1).

The interpreter has to be switched on before triton is first imported, so the check runs in a fresh subprocess
(most of its ~10 s CPU time is importing torch and triton there).
"""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import torch
    from tenfold_core.spiking import SURROGATES, if_multi_step, lif_multi_step
    from tenfold_core.spiking import _triton_kernel as tk
    from tenfold_core.spiking.functional import _MODE_IF, _MODE_LIF_DECAY

    torch.manual_seed(0)
    cases = [(n, vr, det) for n in sorted(SURROGATES) for vr, det in ((0.0, True), (None, False))]
    cases += [("atan", 0.0, False), ("sigmoid", None, True)]
    for name, vr, det in cases:
        x = torch.randn(5, 257) * 1.5
        gs, gv = torch.randn_like(x), torch.randn_like(x)
        v0 = (torch.rand(257) * 0.5).requires_grad_(True)
        xr = x.clone().requires_grad_(True)
        kw = dict(surrogate=name, v_reset=vr, detach_reset=det, tau=3.0)
        s0, m0 = lif_multi_step(xr, v0=v0, return_v=True, backend="reference", **kw)
        (s0 * gs + m0 * gv).sum().backward()
        gv0_ref, v0.grad = v0.grad.clone(), None
        xt = x.clone().requires_grad_(True)
        sur = SURROGATES[name]
        s1, m1 = tk.fused_apply(
            xt, v0, _MODE_LIF_DECAY, 3.0, 1.0, vr, sur.sid, sur.default_alpha, det, 1 / 3.0, 1 - 1 / 3.0, True
        )
        (s1 * gs + m1 * gv).sum().backward()
        assert torch.equal(s0, s1), name
        torch.testing.assert_close(m1, m0, rtol=0, atol=1e-6)
        torch.testing.assert_close(xt.grad, xr.grad, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(v0.grad, gv0_ref, rtol=1e-5, atol=1e-5)
    # IF neuron, spikes only, no membrane output
    x = torch.randn(4, 100).requires_grad_(True)
    s = tk.fused_apply(x, None, _MODE_IF, 1.0, 1.0, 0.0, 1, 2.0, True, 1.0, 1.0, False)
    assert torch.equal(s, if_multi_step(x.detach(), backend="reference"))
    s.sum().backward()
    xr = x.detach().clone().requires_grad_(True)
    if_multi_step(xr, backend="reference").sum().backward()
    torch.testing.assert_close(x.grad, xr.grad)
    # fp32 over several blocks (the last partial), with v0 and the membrane output: autograd saved only x and v0
    N = 2 * tk.BLOCK + 333
    x = torch.randn(7, N) * 1.5
    gs, gv = torch.randn_like(x), torch.randn_like(x)
    v0 = (torch.rand(N) * 0.5).requires_grad_(True)
    xr = x.clone().requires_grad_(True)
    s0, m0 = lif_multi_step(xr, v0=v0, v_reset=None, detach_reset=False, return_v=True, backend="reference")
    (s0 * gs + m0 * gv).sum().backward()
    gv0_ref, v0.grad = v0.grad.clone(), None
    xt = x.clone().requires_grad_(True)
    s1, m1 = tk.fused_apply(xt, v0, _MODE_LIF_DECAY, 2.0, 1.0, None, 1, 2.0, False, 0.5, 0.5, True)
    saved = s1.grad_fn.saved_tensors
    assert len(saved) == 2 and saved[0].data_ptr() == xt.data_ptr(), "saves x and v0 only (no H)"
    (s1 * gs + m1 * gv).sum().backward()
    assert torch.equal(s0, s1)
    torch.testing.assert_close(xt.grad, xr.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(v0.grad, gv0_ref, rtol=1e-5, atol=1e-5)
    assert xt.grad[:, -50:].abs().sum() > 0
    print("TRITON-INTERPRETER-OK", len(cases))
    """
)


def test_triton_kernels_match_reference_under_interpreter():
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "TRITON-INTERPRETER-OK 14" in out.stdout


LOW_PRECISION = textwrap.dedent(
    """
    import sys, torch
    from tenfold_core.spiking import lif_multi_step
    from tenfold_core.spiking import _triton_kernel as tk
    from tenfold_core.spiking.functional import _MODE_LIF_DECAY

    dt = getattr(torch, sys.argv[1])
    torch.manual_seed(0)
    N = 2 * tk.BLOCK + 333  # three programs, the last one partial
    x = (torch.randn(6, N) * 1.5).to(dt)
    g = torch.randn(6, N).to(dt)
    v0 = (torch.rand(N) * 0.5).to(dt)
    for det in (True, False):
        xr = x.float().requires_grad_(True)  # the reference on the same (rounded) inputs, in fp32
        vr = v0.float().requires_grad_(True)
        s0 = lif_multi_step(xr, v0=vr, detach_reset=det, backend="reference")
        (s0 * g.float()).sum().backward()
        xt = x.clone().requires_grad_(True)
        vt = v0.clone().requires_grad_(True)
        s1 = tk.fused_apply(xt, vt, _MODE_LIF_DECAY, 2.0, 1.0, 0.0, 1, 2.0, det, 0.5, 0.5, False)
        (s1 * g).sum().backward()
        assert s1.dtype == dt and xt.grad.dtype == dt and vt.grad.dtype == dt
        assert torch.equal(s1.float(), s0), "spikes differ"
        # H is recomputed in fp32 from x: the gradient is the fp32 reference's, rounded once to the dtype
        rtol = 2.0**-7 if dt == torch.bfloat16 else 2.0**-10
        torch.testing.assert_close(xt.grad.float(), xr.grad, rtol=rtol, atol=1e-5)
        torch.testing.assert_close(vt.grad.float(), vr.grad, rtol=rtol, atol=1e-5)
        assert xt.grad[:, -50:].abs().sum() > 0  # the partial last block got gradients
    print("LOWP-OK")
    """
)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_triton_low_precision_over_several_blocks_under_interpreter(dtype):
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1")
    out = subprocess.run(
        [sys.executable, "-c", LOW_PRECISION, dtype], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "LOWP-OK" in out.stdout


BACKWARD_FALLBACK = textwrap.dedent(
    """
    import warnings, torch
    from tenfold_core.spiking import functional as F, lif_multi_step
    from tenfold_core.spiking import _triton_kernel as tk
    from tenfold_core.spiking.functional import _MODE_LIF_DECAY

    class CompilationError(Exception):  # stands in for triton.compiler.errors.CompilationError
        pass

    CompilationError.__module__ = "triton.compiler.errors"

    class Broken:
        def __init__(self, exc):
            self.exc = exc

        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                raise self.exc
            return launch

    torch.manual_seed(0)
    x = torch.randn(5, 300) * 1.5
    gs, gv = torch.randn_like(x), torch.randn_like(x)
    xr = x.clone().requires_grad_(True)
    s0, m0 = lif_multi_step(xr, v_reset=None, detach_reset=False, return_v=True, backend="reference")
    (s0 * gs + m0 * gv).sum().backward()

    def run():
        xt = x.clone().requires_grad_(True)
        s, m = tk.fused_apply(xt, None, _MODE_LIF_DECAY, 2.0, 1.0, None, 1, 2.0, False, 0.5, 0.5, True)
        (s * gs + m * gv).sum().backward()
        return s, xt.grad

    good = tk._lif_bwd_kernel
    # a runtime error in the backward reaches the caller; nothing is marked broken
    tk._lif_bwd_kernel = Broken(RuntimeError("simulated launch failure"))
    try:
        run()
        raise AssertionError("runtime error was swallowed")
    except RuntimeError as exc:
        assert "simulated launch failure" in str(exc)
    assert not F._cuda_state["failed"]
    # a compile error: one warning, gradients from the torch recurrence, kernel marked broken for the process
    tk._lif_bwd_kernel = Broken(CompilationError("simulated compile error"))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        s1, g1 = run()
    assert any("backward kernel failed to build" in str(m.message) for m in w), [str(m.message) for m in w]
    assert F._cuda_state["failed"]
    assert torch.equal(s1, s0)
    torch.testing.assert_close(g1, xr.grad, rtol=1e-5, atol=1e-5)
    # the torch recurrence equals the real kernel's gradients too (hard reset, detached, with v0)
    tk._lif_bwd_kernel = good
    v0 = torch.rand(300) * 0.5
    xt = x.clone().requires_grad_(True)
    s = tk.fused_apply(xt, v0, _MODE_LIF_DECAY, 2.0, 1.0, 0.0, 0, 4.0, True, 0.5, 0.5, False)
    s.backward(gs)
    h = lif_multi_step(x, v0=v0, surrogate="sigmoid", return_v=True, backend="reference")
    cfg = (0, 2.0, 1.0, 0.0, True, True, 0, *tk.surrogate_constants(0, 4.0), 0.5, 0.5, 4.0)
    # rebuild H from the reference membrane: H[t] = V[t-1] + (X[t] - V[t-1]) / 2
    vprev = torch.cat([v0[None], h[1][:-1]])
    hh = vprev + (x - vprev) / 2.0
    assert torch.equal(tk.recompute_h_torch(x, v0, cfg), hh)  # the fallback's recompute: same expressions
    gx, _ = tk.backward_torch(hh, gs, None, cfg)
    torch.testing.assert_close(gx, xt.grad, rtol=1e-5, atol=1e-6)
    print("BWD-FALLBACK-OK")
    """
)


def test_triton_backward_compile_error_falls_back_runtime_error_raises():
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1")
    out = subprocess.run(
        [sys.executable, "-c", BACKWARD_FALLBACK], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "BWD-FALLBACK-OK" in out.stdout


ALL_BACKENDS = textwrap.dedent(
    """
    import torch
    from tenfold_core.spiking import SURROGATES, layernorm_lif_multi_step, lif_multi_step, surrogate_grad
    from tenfold_core.spiking import _triton_kernel as tk
    from tenfold_core.spiking.functional import _MODE_IF, _MODE_LIF_DECAY

    torch.manual_seed(0)
    z = torch.linspace(-3, 3, 601)  # T = 1 IF neuron, threshold 1: dX/dX = the surrogate derivative at x - 1
    for name in sorted(SURROGATES):
        sur = SURROGATES[name]
        a = sur.default_alpha * 1.3
        want = surrogate_grad(z, name, a)
        got = {}
        for backend in ("reference", "fast"):
            x = (z + 1.0)[None].clone().requires_grad_(True)
            lif_multi_step(x, tau=2.0, decay_input=False, surrogate=name, alpha=a, backend=backend).sum().backward()
            got[backend] = x.grad[0]
        x = (z + 1.0)[None].clone().requires_grad_(True)
        tk.fused_apply(x, None, _MODE_IF, 1.0, 1.0, 0.0, sur.sid, a, True, 1.0, 1.0, False).sum().backward()
        got["triton"] = x.grad[0]
        cfg = (_MODE_IF, 1.0, 1.0, 0.0, True, True, sur.sid, *tk.surrogate_constants(sur.sid, a), 1.0, 1.0, a)
        h = tk.recompute_h_torch((z + 1.0)[None], None, cfg)
        got["triton-torch-fallback"] = tk.backward_torch(h, torch.ones_like(h), None, cfg)[0][0]
        for k, v in got.items():
            torch.testing.assert_close(v, want, rtol=1e-5, atol=1e-6, msg=lambda m, k=k, n=name: f"{n} {k}: {m}")
        # whole sequences, reset gradient through the spike included: every backend against the reference
        x = torch.randn(5, 300) * 1.5
        gs, gv = torch.randn_like(x), torch.randn_like(x)
        for vr in (0.0, None):
            kw = dict(surrogate=name, alpha=a, v_reset=vr, detach_reset=False, tau=2.0)
            grads = {}
            for backend in ("reference", "fast"):
                xx = x.clone().requires_grad_(True)
                s, m = lif_multi_step(xx, return_v=True, backend=backend, **kw)
                (s * gs + m * gv).sum().backward()
                grads[backend] = xx.grad
            xx = x.clone().requires_grad_(True)
            s, m = tk.fused_apply(xx, None, _MODE_LIF_DECAY, 2.0, 1.0, vr, sur.sid, a, False, 0.5, 0.5, True)
            (s * gs + m * gv).sum().backward()
            grads["triton"] = xx.grad
            cfg = (_MODE_LIF_DECAY, 2.0, 1.0, 0.0 if vr is None else vr, vr is not None, False, sur.sid,
                   *tk.surrogate_constants(sur.sid, a), 0.5, 0.5, a)
            grads["triton-torch-fallback"] = tk.backward_torch(tk.recompute_h_torch(x, None, cfg), gs, gv, cfg)[0]
            for k, v in grads.items():
                torch.testing.assert_close(v, grads["reference"], rtol=1e-5, atol=1e-5, msg=lambda m, k=k: k + m)
            # the fused LayerNorm+LIF path (numba) against layer_norm + the reference neuron
            grads = []
            for backend in ("reference", "fast"):
                xx = x.clone().requires_grad_(True)
                s, m = layernorm_lif_multi_step(xx, return_v=True, backend=backend, **kw)
                (s * gs + m * gv).sum().backward()
                grads.append(xx.grad)
            torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-5)
    print("ALL-BACKENDS-OK", len(SURROGATES))
    """
)


def test_every_backend_uses_the_same_surrogate_derivatives_under_interpreter():
    pytest.importorskip("triton")
    pytest.importorskip("numba")
    env = dict(os.environ, TRITON_INTERPRET="1")
    out = subprocess.run(
        [sys.executable, "-c", ALL_BACKENDS], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ALL-BACKENDS-OK 6" in out.stdout
