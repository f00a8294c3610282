"""Fused multi-step LIF/IF kernels for CUDA in Triton (imported only for CUDA tensors; never used on CPU).

One program handles ``BLOCK`` neurons and loops over T (a compile-time constant: one specialisation per T) inside,
keeping the membrane in registers (fp32). The forward stores spikes (and the membrane sequence if asked) and nothing
else; autograd saves only the input ``x`` (input dtype) and ``v0``. The backward kernel recomputes the charged
membrane ``H`` from ``x`` with the forward's own expressions (fp32, so bit-identical to the forward and the reset
indicator is the forward spike exactly), keeps it in an fp32 scratch (``dX`` itself for fp32 inputs, a transient
fp32 buffer for fp16/bf16), then walks T in reverse reading ``H`` and ``dS`` (and ``dV`` if the membrane sequence was
returned), as the CPU kernel does. Arithmetic is fp32 with IEEE division (``div_rn``) in the same operation order as
the reference, so fp32 spikes match it bit for bit.

The kernels also run under ``TRITON_INTERPRET=1`` on CPU tensors, which is how the CPU-only test suite checks them.
A compile error of the backward kernel (it is compiled at the first backward) falls back, like the forward's, to the
same recurrence in torch ops (``recompute_h_torch`` + ``backward_torch``, whose surrogate derivatives are
:mod:`.surrogate`'s own definitions) and marks the Triton path broken for the process; errors while a
kernel runs are re-raised.
"""

from __future__ import annotations

import torch

from .surrogate import surrogate_by_id, surrogate_constants

try:  # pragma: no cover - depends on the environment
    import triton
    import triton.language as tl

    AVAILABLE = True
except Exception:  # pragma: no cover
    AVAILABLE = False

BLOCK = 1024

if AVAILABLE:

    @triton.jit(do_not_specialize=["N"])
    def _lif_fwd_kernel(
        x_ptr,
        v0_ptr,
        s_ptr,
        v_ptr,
        N,
        T: tl.constexpr,
        tau,
        vth,
        vr,
        MODE: tl.constexpr,
        HARD: tl.constexpr,
        HAS_V0: tl.constexpr,
        STORE_V: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        pid = tl.program_id(0)
        offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        if HAS_V0:
            v = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        else:
            v = tl.zeros([BLOCK], dtype=tl.float32) + vr
        row = N.to(tl.int64)
        for t in range(T):
            idx = t * row + offs
            x = tl.load(x_ptr + idx, mask=mask, other=0.0).to(tl.float32)
            if MODE == 0:
                h = v + tl.math.div_rn(x - (v - vr), tau)
            elif MODE == 1:
                h = v - tl.math.div_rn(v - vr, tau) + x
            else:
                h = v + x
            s = (h >= vth).to(tl.float32)
            tl.store(s_ptr + idx, s.to(s_ptr.dtype.element_ty), mask=mask)
            if HARD:
                v = s * vr + (1.0 - s) * h
            else:
                v = h - s * vth
            if STORE_V:
                tl.store(v_ptr + idx, v.to(v_ptr.dtype.element_ty), mask=mask)

    @triton.jit(do_not_specialize=["N"])
    def _lif_bwd_kernel(
        x_ptr,
        v0_ptr,
        h_ptr,
        gs_ptr,
        gv_ptr,
        gx_ptr,
        gv0_ptr,
        N,
        T: tl.constexpr,
        tau,
        vth,
        vr,
        gin,
        gcarry,
        c1,
        c2,
        MODE: tl.constexpr,
        HARD: tl.constexpr,
        DETACH: tl.constexpr,
        SID: tl.constexpr,
        HAS_V0: tl.constexpr,
        HAS_GV: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        # h_ptr: fp32 [T, N] scratch (may be gx_ptr: step t's H is read before step t's dX overwrites it)
        pid = tl.program_id(0)
        offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        row = N.to(tl.int64)
        # 1) recompute H for all T steps: the forward's expressions, in the same order (fp32)
        if HAS_V0:
            v = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        else:
            v = tl.zeros([BLOCK], dtype=tl.float32) + vr
        for t in range(T):
            idx = t * row + offs
            x = tl.load(x_ptr + idx, mask=mask, other=0.0).to(tl.float32)
            if MODE == 0:
                h = v + tl.math.div_rn(x - (v - vr), tau)
            elif MODE == 1:
                h = v - tl.math.div_rn(v - vr, tau) + x
            else:
                h = v + x
            tl.store(h_ptr + idx, h, mask=mask)
            s = (h >= vth).to(tl.float32)
            if HARD:
                v = s * vr + (1.0 - s) * h
            else:
                v = h - s * vth
        # 2) reverse sweep
        carry = tl.zeros([BLOCK], dtype=tl.float32)
        for i in range(T):
            t = T - 1 - i
            idx = t * row + offs
            h = tl.load(h_ptr + idx, mask=mask, other=0.0).to(tl.float32)
            z = h - vth
            if SID == 0:
                sgm = 1.0 / (1.0 + tl.exp(-(z * c1)))
                sg = (1.0 - sgm) * sgm * c1
            elif SID == 1:
                w = z * c1
                sg = c2 / (1.0 + w * w)
            elif SID == 2:
                sg = tl.maximum(c1 - c2 * tl.abs(z), 0.0)
            elif SID == 3:
                w = c1 + tl.abs(z)
                sg = 1.0 / (c2 * w * w)
            elif SID == 4:
                w = z * c1
                sg = c2 * tl.exp(-(w * w))
            else:
                sg = c2 * tl.exp(-(c1 * tl.abs(z)))
            if HARD:
                rg = 1.0 - (h >= vth).to(tl.float32)
                if not DETACH:
                    rg = rg + (vr - h) * sg
            else:
                if DETACH:
                    rg = tl.zeros([BLOCK], dtype=tl.float32) + 1.0
                else:
                    rg = 1.0 - vth * sg
            gv = carry
            if HAS_GV:
                gv = gv + tl.load(gv_ptr + idx, mask=mask, other=0.0).to(tl.float32)
            gh = tl.load(gs_ptr + idx, mask=mask, other=0.0).to(tl.float32) * sg + gv * rg
            tl.store(gx_ptr + idx, (gh * gin).to(gx_ptr.dtype.element_ty), mask=mask)
            carry = gh * gcarry
        tl.store(gv0_ptr + offs, carry.to(gv0_ptr.dtype.element_ty), mask=mask)


def _device(t: torch.Tensor):
    """Launch on the tensor's GPU (Triton launches on the current device otherwise)."""
    import contextlib

    return torch.cuda.device(t.device) if t.device.type == "cuda" else contextlib.nullcontext()


class _FusedTriton(torch.autograd.Function):
    """Fused multi-step neuron on CUDA (Triton). Saves only its input ``x`` (input dtype) and ``v0``; the backward
    kernel recomputes ``H`` in fp32 (bit-identical to the forward), as the CPU kernel does."""

    @staticmethod
    def forward(ctx, x2d, v0, cfg, return_v, need_grad):
        mode, tau, vth, vr, hard, detach, sid, c1, c2, gin, gcarry, alpha = cfg
        T, N = x2d.shape
        s = torch.empty_like(x2d)
        v = torch.empty_like(x2d) if return_v else s
        grid = (triton.cdiv(N, BLOCK),)
        with _device(x2d):
            _lif_fwd_kernel[grid](
                x2d, v0 if v0 is not None else x2d, s, v, N, T, tau, vth, vr,
                MODE=mode, HARD=hard, HAS_V0=v0 is not None, STORE_V=return_v, BLOCK=BLOCK,
            )  # fmt: skip
        ctx.cfg, ctx.return_v, ctx.has_v0 = cfg, return_v, v0 is not None
        if need_grad:
            ctx.save_for_backward(x2d, v0)
        return (s, v) if return_v else s

    @staticmethod
    def backward(ctx, g_s, g_v=None):
        mode, tau, vth, vr, hard, detach, sid, c1, c2, gin, gcarry, alpha = ctx.cfg
        x2d, v0 = ctx.saved_tensors
        T, N = x2d.shape
        g_s = g_s.contiguous()
        has_gv = ctx.return_v and g_v is not None
        g_v = g_v.contiguous() if has_gv else g_s
        g_x = torch.empty((T, N), device=x2d.device, dtype=x2d.dtype)
        g_v0 = torch.empty((N,), device=x2d.device, dtype=x2d.dtype)
        # fp32 scratch for the recomputed H: dX itself when it is fp32, else a transient buffer
        h = g_x if x2d.dtype == torch.float32 else torch.empty((T, N), device=x2d.device, dtype=torch.float32)
        try:
            grid = (triton.cdiv(N, BLOCK),)
            with _device(x2d):
                _lif_bwd_kernel[grid](
                    x2d, v0 if v0 is not None else x2d, h, g_s, g_v, g_x, g_v0, N, T, tau, vth, vr, gin, gcarry,
                    c1, c2, MODE=mode, HARD=hard, DETACH=detach, SID=sid, HAS_V0=v0 is not None, HAS_GV=has_gv,
                    BLOCK=BLOCK,
                )  # fmt: skip
        except Exception as exc:
            from . import functional as F

            if not F._is_build_failure(exc):
                raise
            F._mark_failed(F._cuda_state, "Triton LIF backward kernel", exc)
            hh = recompute_h_torch(x2d, v0, ctx.cfg)
            g_x, g_v0 = backward_torch(hh, g_s, g_v if has_gv else None, ctx.cfg)
            g_x, g_v0 = g_x.to(x2d.dtype), g_v0.to(x2d.dtype)
        return g_x, (g_v0 if ctx.has_v0 and ctx.needs_input_grad[1] else None), None, None, None


def recompute_h_torch(x2d, v0, cfg):
    """The charged membrane ``H`` ``[T, N]`` (fp32) from the input, in torch ops: the fallback's recompute, the
    same expressions as the kernels (IEEE fp32 division)."""
    mode, tau, vth, vr, hard, detach = cfg[:6]
    x = x2d.float()
    v = v0.float() if v0 is not None else torch.full_like(x[0], vr)
    h = torch.empty_like(x)
    for t in range(x.shape[0]):
        if mode == 0:
            ht = v + (x[t] - (v - vr)) / tau
        elif mode == 1:
            ht = v - (v - vr) / tau + x[t]
        else:
            ht = v + x[t]
        h[t] = ht
        s = (ht >= vth).float()
        v = s * vr + (1.0 - s) * ht if hard else ht - s * vth
    return h


def backward_torch(h, g_s, g_v, cfg):
    """The backward kernel's reverse sweep in plain torch ops (fp32), from ``H``: the fallback when the Triton
    backward cannot be compiled. The surrogate derivative is :mod:`.surrogate`'s (one copy of the formulas for
    every torch path). Returns ``(dX, dV0)``."""
    mode, tau, vth, vr, hard, detach, sid, c1, c2, gin, gcarry, alpha = cfg
    grad = surrogate_by_id(sid).grad
    h = h.float()
    carry = torch.zeros_like(h[0])
    g_x = torch.empty_like(h)
    for t in range(h.shape[0] - 1, -1, -1):
        ht = h[t]
        sg = grad(ht - vth, alpha)
        if hard:
            rg = (ht < vth).float()
            if not detach:
                rg = rg + (vr - ht) * sg
        else:
            rg = torch.ones_like(ht) if detach else 1.0 - vth * sg
        gv = carry if g_v is None else carry + g_v[t].float()
        gh = g_s[t].float() * sg + gv * rg
        g_x[t] = gh * gin
        carry = gh * gcarry
    return g_x, carry


def fused_apply(
    x2d, v0, mode, tau, v_threshold, v_reset, sid, alpha, detach_reset, input_gain, carry_gain, return_v
):
    """Run the Triton LIF on a contiguous ``[T, N]`` tensor (autograd-aware). Returns spikes or (spikes, v)."""
    if not AVAILABLE:
        raise RuntimeError("triton is not available")
    c1, c2 = surrogate_constants(sid, alpha)
    vr = 0.0 if v_reset is None else float(v_reset)
    cfg = (
        int(mode), float(tau), float(v_threshold), vr, v_reset is not None, bool(detach_reset), int(sid),
        float(c1), float(c2), float(input_gain), float(carry_gain), float(alpha),
    )  # fmt: skip
    need_grad = torch.is_grad_enabled() and (x2d.requires_grad or (v0 is not None and v0.requires_grad))
    return _FusedTriton.apply(x2d.contiguous(), v0, cfg, bool(return_v), need_grad)
