"""Fused multi-step LIF/IF kernels for CPU, compiled with numba (``parallel=True``, on-disk cache).

Layout: ``x`` is ``[T, N]`` C-contiguous. Work is split over N in chunks (one chunk per task, chunks in parallel);
inside a chunk the time loop is outermost and the element loop innermost, so the inner loop is a unit-stride,
vectorisable stream and the membrane state of a chunk stays in cache.

All arithmetic is done in the dtype of ``x`` (float32 or float64): scalars arrive in a ``params`` array of that
dtype, so no float64 literal promotes a float32 expression. The charge/fire/reset expressions are written in the
same operation order as the reference implementation, so spikes are bit-identical to it.

``params`` layout (all of dtype ``x.dtype``):
    0 tau, 1 v_threshold, 2 v_reset (0 for soft reset), 3 input gain (1/tau if decay_input else 1),
    4 carry gain (1 - 1/tau for LIF, 1 for IF), 5 surrogate constant c1, 6 surrogate constant c2, 7 one, 8 zero.
``iparams`` (int64): 0 charge mode (0 LIF decay_input, 1 LIF no decay_input, 2 IF), 1 hard reset (1/0),
    2 detach_reset (1/0), 3 surrogate id, 4 has_v0, 5 store_h, 6 store_v, 7 has_gv.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

CHUNK = 2048


@njit(cache=True, inline="always")
def _sg(z, sid, c1, c2, one, zero):  # pragma: no cover - compiled
    # surrogate derivative g'(z); ids follow surrogate.SURROGATES
    if sid == 0:  # sigmoid: c1 = alpha
        s = one / (one + math.exp(-(z * c1)))
        return (one - s) * s * c1
    elif sid == 1:  # atan: c1 = pi/2*alpha, c2 = alpha/2
        w = z * c1
        return c2 / (one + w * w)
    elif sid == 2:  # piecewise quadratic: c1 = alpha, c2 = alpha^2
        g = c1 - c2 * abs(z)
        return g if g > zero else zero
    elif sid == 3:  # soft sign: c1 = 1/alpha, c2 = 2*alpha
        w = c1 + abs(z)
        return one / (c2 * w * w)
    elif sid == 4:  # erf: c1 = alpha, c2 = alpha/sqrt(pi)
        w = z * c1
        return c2 * math.exp(-(w * w))
    else:  # piecewise exp: c1 = alpha, c2 = alpha/2
        return c2 * math.exp(-(c1 * abs(z)))


@njit(parallel=True, cache=True)
def lif_forward(x, v0, params, iparams, out_s, out_h, out_v, v_last):  # pragma: no cover - compiled
    T, N = x.shape
    tau = params[0]
    vth = params[1]
    vr = params[2]
    one = params[7]
    zero = params[8]
    mode = iparams[0]
    hard = iparams[1]
    has_v0 = iparams[4]
    store_h = iparams[5]
    store_v = iparams[6]
    nchunks = (N + CHUNK - 1) // CHUNK
    for c in prange(nchunks):
        lo = c * CHUNK
        hi = min(lo + CHUNK, N)
        for j in range(lo, hi):
            v_last[j] = v0[j] if has_v0 else vr
        for t in range(T):
            for j in range(lo, hi):
                v = v_last[j]
                xt = x[t, j]
                if mode == 0:
                    h = v + (xt - (v - vr)) / tau
                elif mode == 1:
                    h = v - (v - vr) / tau + xt
                else:
                    h = v + xt
                s = one if h >= vth else zero
                out_s[t, j] = s
                if store_h:
                    out_h[t, j] = h
                if hard:
                    v = s * vr + (one - s) * h
                else:
                    v = h - s * vth
                if store_v:
                    out_v[t, j] = v
                v_last[j] = v


@njit(parallel=True, cache=True)
def lif_backward(h_seq, g_s, g_v, params, iparams, g_x, g_v0):  # pragma: no cover - compiled
    T, N = h_seq.shape
    vth = params[1]
    vr = params[2]
    gin = params[3]
    gcarry = params[4]
    c1 = params[5]
    c2 = params[6]
    one = params[7]
    zero = params[8]
    hard = iparams[1]
    detach = iparams[2]
    sid = iparams[3]
    has_gv = iparams[7]
    nchunks = (N + CHUNK - 1) // CHUNK
    for c in prange(nchunks):
        lo = c * CHUNK
        hi = min(lo + CHUNK, N)
        for j in range(lo, hi):
            g_v0[j] = zero
        for t in range(T - 1, -1, -1):
            for j in range(lo, hi):
                h = h_seq[t, j]
                sg = _sg(h - vth, sid, c1, c2, one, zero)
                if hard:
                    rg = zero if h >= vth else one
                    if not detach:
                        rg = rg + (vr - h) * sg
                else:
                    rg = one if detach else one - vth * sg
                gv = g_v0[j]
                if has_gv:
                    gv = gv + g_v[t, j]
                gh = g_s[t, j] * sg + gv * rg
                g_x[t, j] = gh * gin
                g_v0[j] = gh * gcarry


def make_params(dtype, tau, v_threshold, v_reset, input_gain, carry_gain, c1, c2) -> np.ndarray:
    """Pack the float parameters in the kernel dtype."""
    return np.array(
        [tau, v_threshold, 0.0 if v_reset is None else v_reset, input_gain, carry_gain, c1, c2, 1.0, 0.0],
        dtype=dtype,
    )


def surrogate_constants(sid: int, alpha: float) -> tuple[float, float]:
    """Kernel constants (c1, c2) for surrogate ``sid`` (see ``_sg``)."""
    if sid == 0:
        return alpha, 0.0
    if sid == 1:
        return math.pi / 2 * alpha, alpha / 2
    if sid == 2:
        return alpha, alpha * alpha
    if sid == 3:
        return 1 / alpha, 2 * alpha
    if sid == 4:
        return alpha, alpha / math.sqrt(math.pi)
    return alpha, alpha / 2
