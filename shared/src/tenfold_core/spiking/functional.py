"""Stateless multi-step LIF / IF neurons (time-first ``[T, ...]``).

Dynamics per step t (spikingjelly ``LIFNode(step_mode="m")`` semantics; ``V_r`` = ``v_reset`` or 0 for soft reset):

- charge, LIF with ``decay_input=True``:  ``H[t] = V[t-1] + (X[t] - (V[t-1] - V_r)) / tau``
- charge, LIF with ``decay_input=False``: ``H[t] = V[t-1] - (V[t-1] - V_r) / tau + X[t]``
- charge, IF:                              ``H[t] = V[t-1] + X[t]``
- fire:  ``S[t] = Θ(H[t] - V_th)`` (Heaviside, ``>= 0`` fires), surrogate gradient in the backward pass
- reset: hard ``V[t] = S·V_r + (1 - S)·H[t]``; soft (``v_reset=None``) ``V[t] = H[t] - S·V_th``;
  ``detach_reset`` cuts the gradient through the S of the reset term.
- ``V[-1] = v0`` if given, else ``V_r`` (hard) / 0 (soft), as spikingjelly initialises it.

Three implementations, selected by ``backend``:

- ``"reference"``: a readable Python loop over T on torch ops with :func:`~tenfold_core.spiking.heaviside`
  (the oracle of the tests; any device and dtype).
- ``"fast"``: a custom ``autograd.Function`` running fused kernels: numba on CPU (float32/float64; saves only its
  input, the backward recomputes ``H``; outputs come from a cache of large buffers, see :mod:`._buffers`), Triton
  on CUDA (float16/bfloat16/float32; saves its input too, the backward kernel recomputes ``H`` in fp32). Because the CPU path saves its input,
  modifying that input in place before ``backward`` raises autograd's usual "modified by an inplace operation"
  error. If a kernel cannot be *built* (numba/Triton missing, a compile error, in the forward or the backward), it
  warns once and falls back to the reference for the rest of the process; an error while it runs (out of memory, a
  bad input) is re-raised, never hidden by a fallback.
  Without numba (``pip install tenfold-core[spiking]`` adds it) CPU neurons use the reference kernel, after one
  warning naming the extra: results are the same, only slower.
- ``"auto"`` (default): ``"fast"`` when a fused kernel exists for the tensor's device and dtype, else
  ``"reference"``.
- ``"spikingjelly"``: adapter to spikingjelly's own ``functional.lif_multi_step`` / ``if_multi_step`` (optional
  extra ``tenfold-core[spikingjelly]``; it picks its own CPU/CUDA/Triton implementation).
"""

from __future__ import annotations

import threading
import warnings

import torch

from . import _buffers
from .surrogate import heaviside, resolve_surrogate

__all__ = [
    "available_backends",
    "if_multi_step",
    "layernorm_lif_multi_step",
    "layernorm_neuron_multi_step",
    "lif_multi_step",
    "lif_step",
    "neuron_multi_step",
]

_MODE_LIF_DECAY, _MODE_LIF_NODECAY, _MODE_IF = 0, 1, 2

_cpu_lock = threading.RLock()
_cpu_state: dict[str, object] = {"module": None, "failed": False}
_cuda_state: dict[str, object] = {"module": None, "failed": False}
_ln_state: dict[str, object] = {"module": None, "failed": False}


def _cpu_kernel():
    """Import the numba kernels once; ``None`` (after one warning) if numba is unavailable."""
    if _cpu_state["module"] is not None or _cpu_state["failed"]:
        return _cpu_state["module"]
    with _cpu_lock:
        if _cpu_state["module"] is None and not _cpu_state["failed"]:
            try:
                import numba  # noqa: F401
            except ImportError:
                _cpu_state["failed"] = True
                warnings.warn(
                    "tenfold_core.spiking: the fused CPU kernel needs numba (pip install 'tenfold-core[spiking]'); "
                    "using the reference LIF (same results, slower)",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return None
            try:
                from . import _cpu_kernel as mod

                _cpu_state["module"] = mod
            except Exception as exc:  # pragma: no cover - depends on the environment
                _cpu_state["failed"] = True
                warnings.warn(
                    f"tenfold_core.spiking: fused CPU kernel unavailable ({exc!r}); using the reference LIF",
                    RuntimeWarning,
                    stacklevel=3,
                )
    return _cpu_state["module"]


def _cuda_kernel():
    """Import the Triton kernels once; ``None`` if Triton is unavailable."""
    if _cuda_state["module"] is not None or _cuda_state["failed"]:
        return _cuda_state["module"]
    try:
        from . import _triton_kernel as mod

        if not mod.AVAILABLE:
            raise ImportError("triton is not importable")
        _cuda_state["module"] = mod
    except Exception as exc:  # pragma: no cover - depends on the environment
        _cuda_state["failed"] = True
        warnings.warn(
            f"tenfold_core.spiking: Triton LIF kernel unavailable ({exc!r}); using the reference LIF",
            RuntimeWarning,
            stacklevel=3,
        )
    return _cuda_state["module"]


def _fast_supported(x: torch.Tensor) -> bool:
    if x.device.type == "cpu":
        return x.dtype in (torch.float32, torch.float64)
    if x.device.type == "cuda":
        return x.dtype in (torch.float16, torch.bfloat16, torch.float32)
    return False


def available_backends(x: torch.Tensor | None = None) -> list[str]:
    """Backends usable for a tensor like ``x`` (or for CPU float32 if ``x`` is None), best first."""
    probe = torch.empty(0) if x is None else x
    out = []
    if _fast_supported(probe):
        mod = _cpu_kernel() if probe.device.type == "cpu" else _cuda_kernel()
        if mod is not None:
            out.append("fast")
    out.append("reference")
    return out


# ----------------------------------------------------------------------------------------------- reference
def _reference(
    x_seq: torch.Tensor,
    mode: int,
    tau: float,
    v_threshold: float,
    v_reset: float | None,
    surrogate: str,
    alpha: float,
    detach_reset: bool,
    v0: torch.Tensor | None,
    return_v: bool,
):
    vr = 0.0 if v_reset is None else v_reset
    if v0 is None:
        v = torch.full_like(x_seq[0], vr) if x_seq.shape[0] > 0 else None
    else:
        v = v0.to(x_seq.dtype).expand_as(x_seq[0])
    spikes, vs = [], []
    for t in range(x_seq.shape[0]):
        x = x_seq[t]
        if mode == _MODE_LIF_DECAY:
            h = v + (x - (v - vr)) / tau
        elif mode == _MODE_LIF_NODECAY:
            h = v - (v - vr) / tau + x
        else:
            h = v + x
        s = heaviside(h - v_threshold, surrogate, alpha)
        sr = s.detach() if detach_reset else s
        v = h - sr * v_threshold if v_reset is None else sr * vr + (1 - sr) * h
        spikes.append(s)
        if return_v:
            vs.append(v)
    s_seq = torch.stack(spikes) if spikes else torch.empty_like(x_seq)
    if return_v:
        return s_seq, (torch.stack(vs) if vs else torch.empty_like(x_seq))
    return s_seq


# ------------------------------------------------------------------------------------------------ fused CPU
class _FusedCPU(torch.autograd.Function):
    """Fused multi-step neuron on CPU. Saves nothing but its input (and ``v0``): the backward kernel recomputes
    ``H`` chunk by chunk (bit-identical to the forward), so a call allocates only its outputs, and those come from
    a cache of large buffers (:mod:`._buffers`) instead of fresh page-faulted memory."""

    @staticmethod
    def forward(ctx, x2d, v0, params, iparams, return_v, need_grad, ref_cfg):
        # need_grad is decided by the caller: inside forward grad mode is off and needs_input_grad ignores no_grad;
        # ref_cfg = the Python-level arguments, for the reference fallback of the backward
        mod = _cpu_state["module"]
        T, N = x2d.shape
        xn = x2d.detach().numpy()
        s = _buffers.empty((T, N), x2d.dtype)
        v = _buffers.empty((T, N), x2d.dtype) if return_v else torch.empty((1, 1), dtype=x2d.dtype)
        has_v0 = v0 is not None
        v0n = v0.detach().numpy() if has_v0 else xn[0]
        ip = iparams.copy()
        ip[4], ip[5], ip[6] = int(has_v0), int(need_grad), int(return_v)
        with _cpu_lock:
            chunk, workers = mod.plan(T, N, mod.set_threads(torch.get_num_threads()), backward=False)
            ws = _buffers.empty((workers, chunk), x2d.dtype)
            run, scope = mod.kernel(mod, "lif_forward", workers)
            with scope:
                run(xn, v0n, params, ip, s.numpy(), v.numpy(), ws.numpy())
        ctx.params, ctx.iparams, ctx.return_v, ctx.has_v0 = params, ip, return_v, has_v0
        ctx.ref_cfg = ref_cfg
        if need_grad:
            ctx.save_for_backward(x2d, v0)
        if return_v:
            return s, v
        return s

    @staticmethod
    def backward(ctx, g_s, g_v=None):
        mod = _cpu_state["module"]
        x2d, v0 = ctx.saved_tensors
        T, N = x2d.shape
        has_gv = ctx.return_v and g_v is not None
        if mod is None:  # the kernel failed to build since the forward ran
            return _reference_backward(ctx, x2d, v0, g_s, g_v if has_gv else None)
        g_s = _contiguous(g_s, x2d.dtype)
        ip = ctx.iparams.copy()
        ip[7] = int(has_gv)
        g_vn = _contiguous(g_v, x2d.dtype) if has_gv else g_s
        g_x = _buffers.empty((T, N), x2d.dtype)
        g_v0 = torch.empty((N,), dtype=x2d.dtype)
        xn = x2d.detach().numpy()
        v0n = v0.detach().numpy() if ctx.has_v0 else xn[0]
        try:
            with _cpu_lock:
                chunk, workers = mod.plan(T, N, mod.set_threads(torch.get_num_threads()), backward=True)
                ws = _buffers.empty((workers, T + 2, chunk), x2d.dtype)
                run, scope = mod.kernel(mod, "lif_backward", workers)
                with scope:
                    run(
                        xn, v0n, g_s.numpy(), g_vn.numpy(), ctx.params, ip, g_x.numpy(), g_v0.numpy(), ws.numpy()
                    )  # fmt: skip
        except Exception as exc:
            if not _is_build_failure(exc):
                raise
            _mark_failed(_cpu_state, "fused CPU kernel", exc)
            return _reference_backward(ctx, x2d, v0, g_s, g_v if has_gv else None)
        return g_x, (g_v0 if ctx.has_v0 and ctx.needs_input_grad[1] else None), None, None, None, None, None


def _contiguous(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t`` as a contiguous tensor of ``dtype``; a copy (expanded or strided gradients) comes from the cache."""
    if t.dtype == dtype and t.is_contiguous():
        return t
    out = _buffers.empty(tuple(t.shape), dtype)
    out.copy_(t)
    return out


def _reference_backward(ctx, x2d, v0, g_s, g_v):
    """Gradients of the fused CPU neuron by autograd through the reference kernel (used only when the fused
    backward cannot be built)."""
    mode, tau, v_threshold, v_reset, sur_name, alpha, detach = ctx.ref_cfg
    with torch.enable_grad():
        x = x2d.detach().requires_grad_(True)
        v = v0.detach().requires_grad_(True) if ctx.has_v0 else None
        s, vs = _reference(x, mode, tau, v_threshold, v_reset, sur_name, alpha, detach, v, True)
        outs, grads = [s], [g_s]
        if g_v is not None:
            outs.append(vs)
            grads.append(g_v)
        inputs = [x] + ([v] if v is not None else [])
        res = torch.autograd.grad(outs, inputs, grads, allow_unused=True)
    g_v0 = res[1] if v is not None and ctx.needs_input_grad[1] else None
    return res[0], g_v0, None, None, None, None, None


def _mark_failed(state: dict, what: str, exc: BaseException) -> None:
    state["failed"], state["module"] = True, None
    warnings.warn(
        f"tenfold_core.spiking: {what} failed to build ({exc!r}); using the reference LIF from now on",
        RuntimeWarning,
        stacklevel=3,
    )


def _is_build_failure(exc: BaseException) -> bool:
    """True for errors of building a kernel (numba typing/lowering, Triton compilation, a missing compiler), False
    for errors while it runs (out of memory, bad inputs), which must reach the caller."""
    if isinstance(exc, (ImportError, NotImplementedError)):
        return True
    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError, KeyboardInterrupt)):
        return False
    mod = type(exc).__module__ or ""
    if mod.startswith("numba"):
        return True
    if mod.startswith("triton"):
        return "OutOfMemory" not in type(exc).__name__
    return False


def _fast(x_seq, mode, tau, v_threshold, v_reset, sur, alpha, detach_reset, v0, return_v):
    """Flatten to ``[T, N]``, run the fused kernel, restore the shape. Returns None if no kernel is usable."""
    shape = x_seq.shape
    T = shape[0]
    x2d = x_seq.reshape(T, -1).contiguous()
    N = x2d.shape[1]
    v0f = None
    if v0 is not None:
        v0f = v0.to(x_seq.dtype).expand(shape[1:]).reshape(N).contiguous()
    input_gain = 1.0 / tau if mode == _MODE_LIF_DECAY else 1.0
    carry_gain = 1.0 - 1.0 / tau if mode != _MODE_IF else 1.0
    if x_seq.device.type == "cpu":
        mod = _cpu_kernel()
        if mod is None:
            return None
        import numpy as np

        c1, c2 = mod.surrogate_constants(sur.sid, alpha)
        params = mod.make_params(
            _np_dtype(x2d.dtype), tau, v_threshold, v_reset, input_gain, carry_gain, c1, c2
        )
        iparams = np.array(
            [mode, int(v_reset is not None), int(detach_reset), sur.sid, 0, 0, 0, 0], dtype=np.int64
        )
        need_grad = torch.is_grad_enabled() and (x2d.requires_grad or (v0f is not None and v0f.requires_grad))
        try:
            ref_cfg = (mode, tau, v_threshold, v_reset, sur.name, alpha, detach_reset)
            out = _FusedCPU.apply(x2d, v0f, params, iparams, return_v, need_grad, ref_cfg)
        except Exception as exc:
            if not _is_build_failure(exc):
                raise
            _mark_failed(_cpu_state, "fused CPU kernel", exc)
            return None
    else:
        mod = _cuda_kernel()
        if mod is None:
            return None
        try:
            out = mod.fused_apply(
                x2d, v0f, mode, tau, v_threshold, v_reset, sur.sid, alpha, detach_reset, input_gain, carry_gain,
                return_v,
            )  # fmt: skip
        except Exception as exc:  # pragma: no cover - needs a GPU
            if not _is_build_failure(exc):
                raise
            _mark_failed(_cuda_state, "Triton LIF kernel", exc)
            return None
    if return_v:
        return out[0].reshape(shape), out[1].reshape(shape)
    return out.reshape(shape)


_SJ_CLASSES = {
    "atan": "ATan",
    "sigmoid": "Sigmoid",
    "piecewise_quadratic": "PiecewiseQuadratic",
    "soft_sign": "SoftSign",
    "erf": "Erf",
    "piecewise_exp": "PiecewiseExp",
}


def _spikingjelly(x_seq, mode, tau, v_threshold, v_reset, sur, alpha, detach_reset, v0, return_v):
    """Adapter to spikingjelly's own multi-step functional (its automatic CPU/CUDA/Triton selection)."""
    try:
        from spikingjelly.activation_based import functional as sjf
        from spikingjelly.activation_based import surrogate as sjs
    except Exception as exc:
        raise RuntimeError(
            "backend='spikingjelly' needs the optional extra: pip install tenfold-core[spikingjelly]"
        ) from exc
    surrogate_fn = getattr(sjs, _SJ_CLASSES[sur.name])(alpha=alpha)
    vr = 0.0 if v_reset is None else v_reset
    v = torch.full_like(x_seq[0], vr) if v0 is None else v0.to(x_seq.dtype).expand_as(x_seq[0]).contiguous()
    if mode == _MODE_IF:
        spikes, _, v_seq = sjf.if_multi_step(
            x_seq, v, v_threshold, v_reset, surrogate_fn, detach_reset, return_v
        )
    else:
        spikes, _, v_seq = sjf.lif_multi_step(
            x_seq, v, tau, mode == _MODE_LIF_DECAY, v_threshold, v_reset, surrogate_fn, detach_reset, return_v
        )
    return (spikes, v_seq) if return_v else spikes


def _np_dtype(dtype: torch.dtype):
    import numpy as np

    return {torch.float32: np.float32, torch.float64: np.float64}[dtype]


# -------------------------------------------------------------------------------------------------- public
def neuron_multi_step(
    x_seq: torch.Tensor,
    *,
    neuron: str = "lif",
    tau: float = 2.0,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    decay_input: bool = True,
    surrogate: str = "atan",
    alpha: float | None = None,
    detach_reset: bool = True,
    v0: torch.Tensor | None = None,
    return_v: bool = False,
    backend: str = "auto",
):
    """Shared entry point of :func:`lif_multi_step` and :func:`if_multi_step` (``neuron`` = ``"lif"``/``"if"``)."""
    if not torch.is_tensor(x_seq) or not x_seq.is_floating_point():
        raise TypeError("x_seq must be a floating-point tensor [T, ...]")
    if x_seq.dim() < 1:
        raise ValueError("x_seq must have a leading time dimension [T, ...]")
    if neuron == "lif":
        tau = float(tau)
        if not tau > 1.0:
            raise ValueError(f"tau must be > 1 (spikingjelly asserts it), got {tau}")
        mode = _MODE_LIF_DECAY if decay_input else _MODE_LIF_NODECAY
    elif neuron == "if":
        mode, tau = _MODE_IF, 1.0
    else:
        raise ValueError(f"neuron must be 'lif' or 'if', got {neuron!r}")
    sur, a = resolve_surrogate(surrogate, alpha)
    v_threshold = float(v_threshold)
    v_reset = None if v_reset is None else float(v_reset)
    if v0 is not None and v0.shape != x_seq.shape[1:]:
        v0 = v0.expand(x_seq.shape[1:])
    if backend not in ("auto", "fast", "reference", "spikingjelly"):
        raise ValueError(f"backend must be 'auto', 'fast', 'reference' or 'spikingjelly', got {backend!r}")
    args = (x_seq, mode, tau, v_threshold, v_reset)
    if backend == "spikingjelly":
        return _spikingjelly(*args, sur, a, detach_reset, v0, return_v)
    if backend == "fast" and not _fast_supported(x_seq):
        warnings.warn(
            f"no fused kernel for {x_seq.device.type}/{x_seq.dtype}; using the reference", RuntimeWarning, 2
        )
    elif backend != "reference" and x_seq.numel() > 0 and _fast_supported(x_seq):
        out = _fast(*args, sur, a, detach_reset, v0, return_v)
        if out is not None:
            return out
    return _reference(*args, sur.name, a, detach_reset, v0, return_v)


def lif_multi_step(
    x_seq: torch.Tensor,
    *,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    decay_input: bool = True,
    surrogate: str = "atan",
    alpha: float | None = None,
    detach_reset: bool = True,
    v0: torch.Tensor | None = None,
    return_v: bool = False,
    backend: str = "auto",
):
    """Multi-step leaky integrate-and-fire neuron, stateless over the call.

    Args:
        x_seq: input current ``[T, ...]`` (time first), floating point. Any strides (made contiguous internally).
        tau: membrane time constant (> 1).
        v_threshold: firing threshold ``V_th``.
        v_reset: hard-reset potential; ``None`` = soft reset (subtract ``V_th`` after a spike).
        decay_input: ``H = V + (X - (V - V_r))/tau`` if True, else ``H = V - (V - V_r)/tau + X``.
        surrogate: surrogate-gradient name (``atan``, ``sigmoid``, ``piecewise_quadratic``, ``soft_sign``, ``erf``,
            ``piecewise_exp``).
        alpha: surrogate sharpness; ``None`` = spikingjelly's default for that surrogate.
        detach_reset: detach the spike in the reset term from the graph (both SpikeBERT and SpikeCLIP use True).
        v0: initial membrane ``[...]`` (broadcast to ``x_seq.shape[1:]``); default ``V_r`` (hard) or 0 (soft).
        return_v: also return the membrane sequence ``V`` (after reset), same shape as ``x_seq``.
        backend: ``"auto"`` (fused kernel when available), ``"fast"``, ``"reference"`` or ``"spikingjelly"``.

    Returns:
        The spike sequence (0/1, dtype of ``x_seq``), or ``(spikes, v_seq)`` if ``return_v``.
    """
    return neuron_multi_step(
        x_seq,
        neuron="lif",
        tau=tau,
        v_threshold=v_threshold,
        v_reset=v_reset,
        decay_input=decay_input,
        surrogate=surrogate,
        alpha=alpha,
        detach_reset=detach_reset,
        v0=v0,
        return_v=return_v,
        backend=backend,
    )


def if_multi_step(
    x_seq: torch.Tensor,
    *,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    surrogate: str = "atan",
    alpha: float | None = None,
    detach_reset: bool = True,
    v0: torch.Tensor | None = None,
    return_v: bool = False,
    backend: str = "auto",
):
    """Multi-step integrate-and-fire neuron (``H = V + X``), stateless over the call.

    Same arguments and return value as :func:`lif_multi_step`, without ``tau`` and ``decay_input``.
    """
    return neuron_multi_step(
        x_seq,
        neuron="if",
        v_threshold=v_threshold,
        v_reset=v_reset,
        surrogate=surrogate,
        alpha=alpha,
        detach_reset=detach_reset,
        v0=v0,
        return_v=return_v,
        backend=backend,
    )


def lif_step(
    x: torch.Tensor,
    v: torch.Tensor | None = None,
    *,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    decay_input: bool = True,
    surrogate: str = "atan",
    alpha: float | None = None,
    detach_reset: bool = True,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LIF time step with explicit state (streaming inference): ``(spikes, v_next) = lif_step(x, v)``.

    ``x`` is one step's input ``[B, ...]``; ``v`` the membrane after the previous step (``None`` at the start:
    ``V_r`` or 0). Running ``lif_step`` T times, feeding ``v_next`` back, gives exactly :func:`lif_multi_step` on
    the stacked inputs (gradients flow through the state, as in BPTT).
    """
    s, vs = neuron_multi_step(
        x.unsqueeze(0), neuron="lif", tau=tau, v_threshold=v_threshold, v_reset=v_reset, decay_input=decay_input,
        surrogate=surrogate, alpha=alpha, detach_reset=detach_reset, v0=v, return_v=True, backend=backend,
    )  # fmt: skip
    return s[0], vs[0]


# ------------------------------------------------------------------------------------ fused LayerNorm + LIF
def _ln_kernel():
    """Import the numba LayerNorm+LIF kernels once (they build on the LIF kernels); ``None`` if unavailable."""
    if _ln_state["module"] is not None or _ln_state["failed"]:
        return _ln_state["module"]
    if _cpu_kernel() is None:
        return None
    with _cpu_lock:
        if _ln_state["module"] is None and not _ln_state["failed"]:
            try:
                from . import _cpu_fused_ln as mod

                _ln_state["module"] = mod
            except Exception as exc:  # pragma: no cover - depends on the environment
                _ln_state["failed"] = True
                warnings.warn(
                    f"tenfold_core.spiking: fused LayerNorm+LIF kernel unavailable ({exc!r}); using layer_norm "
                    "followed by the LIF",
                    RuntimeWarning,
                    stacklevel=3,
                )
    return _ln_state["module"]


class _FusedLNCPU(torch.autograd.Function):
    """LayerNorm over the last dim then the multi-step neuron, fused on CPU. Saves its input, the per-row mean and
    rstd ``[T, M]`` (and ``weight``, ``bias``, ``v0``): the LN output and the membrane are recomputed in the
    backward kernel; outputs come from the buffer cache, as in :class:`_FusedCPU`."""

    @staticmethod
    def forward(ctx, x3d, weight, bias, v0, eps, params, iparams, return_v, need_grad, ref_cfg):
        lif, mod = _cpu_state["module"], _ln_state["module"]
        T, M, D = x3d.shape
        N, dt = M * D, x3d.dtype
        w = weight.detach() if weight is not None else torch.ones(D, dtype=dt)
        b = bias.detach() if bias is not None else torch.zeros(D, dtype=dt)
        s = _buffers.empty((T, N), dt)
        v = _buffers.empty((T, N), dt) if return_v else torch.empty((1, 1), dtype=dt)
        mean, rstd = torch.empty((T, M), dtype=dt), torch.empty((T, M), dtype=dt)
        xn = x3d.detach().numpy()
        has_v0 = v0 is not None
        v0n = v0.detach().numpy() if has_v0 else xn[0, 0]
        ip = iparams.copy()
        ip[4], ip[5], ip[6] = int(has_v0), int(need_grad), int(return_v)
        with _cpu_lock:
            rows, workers = mod.plan_rows(T, M, D, lif.set_threads(torch.get_num_threads()), backward=False)
            ws = _buffers.empty((workers, 2, rows * D), dt)
            run, scope = lif.kernel(mod, "ln_lif_forward", workers)
            with scope:
                run(
                    xn, w.numpy(), b.numpy(), float(eps), v0n, params, ip, rows, s.numpy(), v.numpy(),
                    mean.numpy(), rstd.numpy(), ws.numpy(),
                )  # fmt: skip
        ctx.params, ctx.iparams, ctx.return_v, ctx.has_v0, ctx.eps = params, ip, return_v, has_v0, eps
        ctx.has_w, ctx.has_b, ctx.ref_cfg = weight is not None, bias is not None, ref_cfg
        if need_grad:
            ctx.save_for_backward(x3d, weight, bias, v0, mean, rstd)
        s = s.view(T, M, D)
        return (s, v.view(T, M, D)) if return_v else s

    @staticmethod
    def backward(ctx, g_s, g_v=None):
        import numpy as np

        lif, mod = _cpu_state["module"], _ln_state["module"]
        x3d, weight, bias, v0, mean, rstd = ctx.saved_tensors
        T, M, D = x3d.shape
        N, dt = M * D, x3d.dtype
        has_gv = ctx.return_v and g_v is not None
        if lif is None or mod is None:  # a kernel failed to build since the forward ran
            return _ln_reference_backward(ctx, x3d, weight, bias, v0, g_s, g_v if has_gv else None)
        g_s = _contiguous(g_s, dt).view(T, N)
        g_vn = _contiguous(g_v, dt).view(T, N) if has_gv else g_s
        ip = ctx.iparams.copy()
        ip[7] = int(has_gv)
        w = weight.detach() if weight is not None else torch.ones(D, dtype=dt)
        b = bias.detach() if bias is not None else torch.zeros(D, dtype=dt)
        g_x = _buffers.empty((T, N), dt)
        g_v0 = torch.empty((N,), dtype=dt)
        xn = x3d.detach().numpy()
        v0n = v0.detach().numpy() if ctx.has_v0 else xn[0, 0]
        try:
            with _cpu_lock:
                rows, workers = mod.plan_rows(
                    T, M, D, lif.set_threads(torch.get_num_threads()), backward=True
                )
                ws = _buffers.empty((workers, T + 3, rows * D), dt)
                g_wb = np.zeros((workers, 2, D), dtype=np.float64)
                run, scope = lif.kernel(mod, "ln_lif_backward", workers)
                with scope:
                    run(
                        xn, w.numpy(), b.numpy(), v0n, mean.numpy(), rstd.numpy(), g_s.numpy(), g_vn.numpy(),
                        ctx.params, ip, rows, g_x.numpy(), g_v0.numpy(), g_wb, ws.numpy(),
                    )  # fmt: skip
        except Exception as exc:
            if not _is_build_failure(exc):
                raise
            _mark_failed(_ln_state, "fused LayerNorm+LIF kernel", exc)
            return _ln_reference_backward(ctx, x3d, weight, bias, v0, g_s, g_v if has_gv else None)
        g_wb = torch.from_numpy(g_wb.sum(axis=0)).to(dt)
        need = ctx.needs_input_grad
        return (
            g_x.view(T, M, D),
            g_wb[0] if ctx.has_w and need[1] else None,
            g_wb[1] if ctx.has_b and need[2] else None,
            g_v0 if ctx.has_v0 and need[3] else None,
            *([None] * 6),
        )


def _ln_reference_backward(ctx, x3d, weight, bias, v0, g_s, g_v):
    """Gradients of the fused LayerNorm+LIF by autograd through ``layer_norm`` and the reference neuron (used only
    when the fused backward cannot be built)."""
    mode, tau, v_threshold, v_reset, sur_name, alpha, detach = ctx.ref_cfg
    T, M, D = x3d.shape
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_(True) if t is not None else None for t in (x3d, weight, bias, v0)]
        x, w, b, v = leaves
        y = torch.nn.functional.layer_norm(x, (D,), w, b, ctx.eps).reshape(T, M * D)
        s, vs = _reference(y, mode, tau, v_threshold, v_reset, sur_name, alpha, detach, v, True)
        outs, grads = [s], [g_s.reshape(T, M * D)]
        if g_v is not None:
            outs.append(vs)
            grads.append(g_v.reshape(T, M * D))
        inputs = [t for t in leaves if t is not None]
        res = iter(torch.autograd.grad(outs, inputs, grads, allow_unused=True))
        got = [next(res) if t is not None else None for t in leaves]
    need = ctx.needs_input_grad
    return (got[0], got[1] if need[1] else None, got[2] if need[2] else None, got[3] if need[3] else None) + (
        None,
    ) * 6


def _ln_fast_supported(x_seq, weight, bias, v0) -> bool:
    if x_seq.device.type != "cpu" or x_seq.dtype not in (torch.float32, torch.float64) or x_seq.numel() == 0:
        return False
    for t in (weight, bias, v0):
        if t is not None and (t.device.type != "cpu" or t.dtype != x_seq.dtype):
            return False
    return True


def _fast_ln(
    x_seq, weight, bias, eps, mode, tau, v_threshold, v_reset, sur, alpha, detach_reset, v0, return_v
):
    """Flatten to ``[T, M, D]``, run the fused LayerNorm+neuron kernel, restore the shape; None if unusable."""
    mod = _ln_kernel()
    if mod is None:
        return None
    import numpy as np

    shape = x_seq.shape
    T, D = shape[0], shape[-1]
    x3d = x_seq.reshape(T, -1, D).contiguous()
    N = x3d.shape[1] * D
    v0f = None if v0 is None else v0.expand(shape[1:]).reshape(N).contiguous()
    w = None if weight is None else weight.contiguous()
    b = None if bias is None else bias.contiguous()
    input_gain = 1.0 / tau if mode == _MODE_LIF_DECAY else 1.0
    carry_gain = 1.0 - 1.0 / tau if mode != _MODE_IF else 1.0
    lif = _cpu_state["module"]
    c1, c2 = lif.surrogate_constants(sur.sid, alpha)
    params = lif.make_params(_np_dtype(x3d.dtype), tau, v_threshold, v_reset, input_gain, carry_gain, c1, c2)
    iparams = np.array(
        [mode, int(v_reset is not None), int(detach_reset), sur.sid, 0, 0, 0, 0], dtype=np.int64
    )
    need_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x3d, w, b, v0f))
    ref_cfg = (mode, tau, v_threshold, v_reset, sur.name, alpha, detach_reset)
    try:
        out = _FusedLNCPU.apply(x3d, w, b, v0f, float(eps), params, iparams, return_v, need_grad, ref_cfg)
    except Exception as exc:
        if not _is_build_failure(exc):
            raise
        _mark_failed(_ln_state, "fused LayerNorm+LIF kernel", exc)
        return None
    if return_v:
        return out[0].reshape(shape), out[1].reshape(shape)
    return out.reshape(shape)


def layernorm_neuron_multi_step(
    x_seq: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
    *,
    neuron: str = "lif",
    tau: float = 2.0,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    decay_input: bool = True,
    surrogate: str = "atan",
    alpha: float | None = None,
    detach_reset: bool = True,
    v0: torch.Tensor | None = None,
    return_v: bool = False,
    backend: str = "auto",
):
    """:func:`layernorm_lif_multi_step` for ``neuron`` = ``"lif"`` or ``"if"`` (IF ignores ``tau``/``decay_input``)."""
    if not torch.is_tensor(x_seq) or not x_seq.is_floating_point():
        raise TypeError("x_seq must be a floating-point tensor [T, ..., D]")
    if x_seq.dim() < 2:
        raise ValueError("x_seq must be [T, ..., D]: a time dimension and a feature dimension")
    D = x_seq.shape[-1]
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (D,):
            raise ValueError(f"{name} must have shape [{D}] (the feature dim), got {tuple(t.shape)}")
    kw = dict(
        neuron=neuron, tau=tau, v_threshold=v_threshold, v_reset=v_reset, decay_input=decay_input,
        surrogate=surrogate, alpha=alpha, detach_reset=detach_reset,
    )  # fmt: skip
    if backend in ("auto", "fast") and _ln_fast_supported(x_seq, weight, bias, v0):
        if neuron == "lif":
            tau_f = float(tau)
            if not tau_f > 1.0:
                raise ValueError(f"tau must be > 1 (spikingjelly asserts it), got {tau_f}")
            mode = _MODE_LIF_DECAY if decay_input else _MODE_LIF_NODECAY
        elif neuron == "if":
            mode, tau_f = _MODE_IF, 1.0
        else:
            raise ValueError(f"neuron must be 'lif' or 'if', got {neuron!r}")
        sur, a = resolve_surrogate(surrogate, alpha)
        vr = None if v_reset is None else float(v_reset)
        out = _fast_ln(
            x_seq, weight, bias, eps, mode, tau_f, float(v_threshold), vr, sur, a, detach_reset, v0, return_v
        )
        if out is not None:
            return out
    y = torch.nn.functional.layer_norm(x_seq, (D,), weight, bias, eps)
    return neuron_multi_step(y, v0=v0, return_v=return_v, backend=backend, **kw)


def layernorm_lif_multi_step(
    x_seq: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
    *,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    decay_input: bool = True,
    surrogate: str = "atan",
    alpha: float | None = None,
    detach_reset: bool = True,
    v0: torch.Tensor | None = None,
    return_v: bool = False,
    backend: str = "auto",
):
    """LayerNorm over the last (feature) dim, then the multi-step LIF over time, in one fused pass on CPU.

    Equal to ``lif_multi_step(torch.nn.functional.layer_norm(x_seq, (D,), weight, bias, eps), ...)`` (the
    spikingjelly/SpikeBERT ``LayerNorm -> LIF`` pair), without materialising the LayerNorm output: the CPU kernel
    saves only the input and the per-row mean and rstd, and its backward recomputes the normalised input and the
    membrane, runs the LIF gradient and then the LayerNorm backward (accumulating the weight and bias gradients).
    The LayerNorm statistics are computed in float64 (torch's own kernel uses a float cascade sum), so the
    normalised values can differ from torch's in the last bit; a spike can then differ only where the membrane
    lies within that rounding of the threshold. Gradients agree within fp32 rounding.

    Args:
        x_seq: ``[T, ..., D]`` input, floating point.
        weight, bias: the LayerNorm affine parameters ``[D]`` (``None``: no scale / no shift).
        eps: LayerNorm epsilon.
        tau, v_threshold, v_reset, decay_input, surrogate, alpha, detach_reset, v0, return_v: as
            :func:`lif_multi_step` (``v0`` broadcasts to ``x_seq.shape[1:]``).
        backend: ``"auto"``/``"fast"``: the fused numba kernel for CPU float32/float64 (input, weight, bias and
            ``v0`` of one dtype); elsewhere, without numba, or if the kernel cannot be built (one warning),
            ``layer_norm`` followed by :func:`lif_multi_step` with this backend. ``"reference"`` /
            ``"spikingjelly"``: always that composition. An error while the kernel runs is re-raised.

    Returns:
        Spikes like ``x_seq``, or ``(spikes, v_seq)`` if ``return_v``.
    """
    return layernorm_neuron_multi_step(
        x_seq, weight, bias, eps, neuron="lif", tau=tau, v_threshold=v_threshold, v_reset=v_reset,
        decay_input=decay_input, surrogate=surrogate, alpha=alpha, detach_reset=detach_reset, v0=v0,
        return_v=return_v, backend=backend,
    )  # fmt: skip
