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
    xr = x.float().requires_grad_(True)  # the reference on the same (rounded) inputs, in fp32
    s0 = lif_multi_step(xr, backend="reference")
    (s0 * g.float()).sum().backward()
    xt = x.clone().requires_grad_(True)
    s1 = tk.fused_apply(xt, None, _MODE_LIF_DECAY, 2.0, 1.0, 0.0, 1, 2.0, True, 0.5, 0.5, False)
    (s1 * g).sum().backward()
    assert s1.dtype == dt and xt.grad.dtype == dt
    assert torch.equal(s1.float(), s0), "spikes differ"
    err = (xt.grad.float() - xr.grad).abs()
    tol = 0.02 if dt == torch.float16 else 0.1
    assert (err > tol).float().mean() < 1e-3, float(err.max())  # H kept in the input dtype: rounding only
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
    cfg = (0, 2.0, 1.0, 0.0, True, True, 0, *tk.surrogate_constants(0, 4.0), 0.5, 0.5)
    # rebuild H from the reference membrane: H[t] = V[t-1] + (X[t] - V[t-1]) / 2
    vprev = torch.cat([v0[None], h[1][:-1]])
    hh = vprev + (x - vprev) / 2.0
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
