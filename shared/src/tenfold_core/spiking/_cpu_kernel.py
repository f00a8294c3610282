"""Fused multi-step LIF/IF kernels for CPU, compiled with numba (``parallel=True``, on-disk cache), each with a serial
twin (``*_serial``, the same source compiled without ``parallel``) that one-worker calls run: a parallel launch on
numba's workqueue layer costs ~0.1 ms even at one thread (:data:`MIN_PARALLEL`, :func:`kernel`).

Layout: ``x`` is ``[T, N]`` C-contiguous. Work is split over N in chunks (``plan``: up to 65536 elements, so each
row slice is a long unit-stride stream; workers take chunks round-robin, one workspace each, passed in by the
caller so no call allocates inside the kernel). Inside a chunk the time loop is outermost and the element loop
innermost over row slices, a stream that LLVM vectorises. ``error_model="numpy"`` removes the per-division zero
check that blocked vectorisation; branches on the surrogate id sit outside the element loops.

The forward writes spikes (and the membrane if asked) and nothing else. The backward recomputes ``H`` of a chunk
for all T steps into its workspace (the same expressions in the same order, so bit-identical to the forward),
then sweeps T in reverse with the surrogate slope and the gradient in one pass per row: the autograd function
saves only the input.

All arithmetic is done in the dtype of ``x`` (float32 or float64): scalars arrive in a ``params`` array of that
dtype, so no float64 literal promotes a float32 expression. The charge/fire/reset expressions are written in the
same operation order as the reference implementation, so spikes are bit-identical to it.

``params`` layout (all of dtype ``x.dtype``):
    0 tau, 1 v_threshold, 2 v_reset (0 for soft reset), 3 input gain (1/tau if decay_input else 1),
    4 carry gain (1 - 1/tau for LIF, 1 for IF), 5 surrogate constant c1, 6 surrogate constant c2, 7 one, 8 zero.
``iparams`` (int64): 0 charge mode (0 LIF decay_input, 1 LIF no decay_input, 2 IF), 1 hard reset (1/0),
    2 detach_reset (1/0), 3 surrogate id, 4 has_v0, 5 need_grad (informational), 6 store_v, 7 has_gv.
"""

from __future__ import annotations

import contextlib
import math
import os
import types

import numba
import numpy as np
from numba import njit, prange

from .surrogate import surrogate_constants  # noqa: F401  (re-exported for functional.py)

# numba's "omp" layer and torch's OpenMP runtime fight over the cores (measured here: every later torch op and
# kernel call took ~15 ms instead of ~10 us). numba's own "workqueue" layer does not; it is not safe for concurrent
# calls from several Python threads, so functional.py serialises kernel calls with a lock. numba picks its layer
# once, at the first parallel launch: the kernels ask for "workqueue" only around their own first launch (unless
# NUMBA_THREADING_LAYER is set) and put the process-wide setting back, so importing this module changes nothing
# for other numba code that launches first.
_layer_chosen = False


@contextlib.contextmanager
def threading_layer():
    """Select numba's "workqueue" threading layer for the duration of the first kernel launch, then restore."""
    global _layer_chosen
    if _layer_chosen or "NUMBA_THREADING_LAYER" in os.environ:
        yield
        return
    before = numba.config.THREADING_LAYER
    numba.config.THREADING_LAYER = "workqueue"
    try:
        yield
    finally:
        numba.config.THREADING_LAYER = before
        _layer_chosen = True


@njit(cache=True, error_model="numpy", inline="always")
def _fwd_row(
    xr, sr, hr, vrow, vb, tau, vth, vr, one, zero, mode, hard, store_s, store_h, store_v
):  # pragma: no cover - compiled
    # one time step for one chunk; unit stride, no division check (error_model="numpy") -> vectorisable
    for j in range(xr.shape[0]):
        v = vb[j]
        xt = xr[j]
        if mode == 0:
            h = v + (xt - (v - vr)) / tau
        elif mode == 1:
            h = v - (v - vr) / tau + xt
        else:
            h = v + xt
        s = one if h >= vth else zero
        if store_s:
            sr[j] = s
        if store_h:
            hr[j] = h
        if hard:
            v = s * vr + (one - s) * h
        else:
            v = h - s * vth
        if store_v:
            vrow[j] = v
        vb[j] = v


#: Fewest elements (``T * N``) for which a call is split over several threads; smaller calls run the serial kernel
#: even when more threads are allowed. A parallel launch on numba's workqueue layer costs ~0.1 ms (80-120 us
#: measured here, against 2 us for the serial kernel), and the kernels are memory-bound: on the 2-core machine
#: measured, fwd+bwd at 2 threads took 0.54x the serial speed at 2^18 elements and broke even (0.97-0.98x) at 2^21
#: and 2^23. Machines with more memory bandwidth per core gain from threads above this size.
MIN_PARALLEL = 1 << 21


def plan(T: int, N: int, nthreads: int, backward: bool) -> tuple[int, int]:
    """``(chunk, workers)`` for a ``[T, N]`` call. Long row slices stream best (hardware prefetchers stop at
    4 KiB pages, so short slices hop between cold streams): chunks of up to 65536 elements, at least 4 per
    thread when N allows. The backward's chunk buffer of ``T * chunk`` recomputed ``H`` values is capped at 2^20
    values (4 MiB in float32), so for large T the chunk shrinks. One worker below :data:`MIN_PARALLEL`
    elements (then the caller runs the serial kernel, see :func:`kernel`)."""
    chunk = 65536
    if backward:
        chunk = min(chunk, max(1024, (1 << 20) // max(int(T), 1)))
    if int(T) * int(N) < MIN_PARALLEL:
        nthreads = 1
    if nthreads > 1:
        chunk = min(chunk, max(1024, -(-N // (4 * nthreads))))
    chunk = max(16, min(chunk, -(-N // 16) * 16))
    workers = max(1, min(nthreads, -(-N // chunk)))
    return chunk, workers


@njit(parallel=True, cache=True, error_model="numpy")
def lif_forward(x, v0, params, iparams, out_s, out_v, ws):  # pragma: no cover - compiled
    # ws: workspace [workers, chunk] (the membrane of the chunk in flight), passed in so no call allocates here
    T, N = x.shape
    tau = params[0]
    vth = params[1]
    vr = params[2]
    one = params[7]
    zero = params[8]
    mode = iparams[0]
    hard = iparams[1] != 0
    has_v0 = iparams[4] != 0
    store_v = iparams[6] != 0
    nworkers, chunk = ws.shape
    nchunks = (N + chunk - 1) // chunk
    for w in prange(nworkers):
        vbuf = ws[w]
        for c in range(w, nchunks, nworkers):
            lo = c * chunk
            hi = min(lo + chunk, N)
            vb = vbuf[: hi - lo]
            if has_v0:
                vb[:] = v0[lo:hi]
            else:
                vb[:] = vr
            for t in range(T):
                vrow = out_v[t, lo:hi] if store_v else out_v[0, 0:1]
                _fwd_row(
                    x[t, lo:hi], out_s[t, lo:hi], vb, vrow, vb, tau, vth, vr, one, zero, mode, hard,
                    True, False, store_v,
                )  # fmt: skip


@njit(cache=True, error_model="numpy", inline="always")
def _gstep(h, sg, gs, gv, vth, vr, gin, gcarry, one, zero, hard, detach):  # pragma: no cover - compiled
    # one element of one reverse step: (dX, carry to step t-1) from H, the surrogate slope and the incoming grads
    if hard:
        rg = zero if h >= vth else one
        if not detach:
            rg = rg + (vr - h) * sg
    else:
        rg = one if detach else one - vth * sg
    gh = gs * sg + gv * rg
    return gh * gin, gh * gcarry


@njit(cache=True, error_model="numpy", inline="always")
def _bwd_row(
    hr, gsr, gvr, gxr, carry, vth, vr, gin, gcarry, sid, c1, c2, one, zero, hard, detach, has_gv
):  # pragma: no cover - compiled
    # one reverse step for one chunk, surrogate fused in; the sid branch sits outside the loops so each vectorises
    n = hr.shape[0]
    if sid == 0:
        for j in range(n):
            h = hr[j]
            s = one / (one + math.exp(-((h - vth) * c1)))
            gv = carry[j] + gvr[j] if has_gv else carry[j]
            gxr[j], carry[j] = _gstep(
                h, (one - s) * s * c1, gsr[j], gv, vth, vr, gin, gcarry, one, zero, hard, detach
            )
    elif sid == 1:
        for j in range(n):
            h = hr[j]
            w = (h - vth) * c1
            gv = carry[j] + gvr[j] if has_gv else carry[j]
            gxr[j], carry[j] = _gstep(
                h, c2 / (one + w * w), gsr[j], gv, vth, vr, gin, gcarry, one, zero, hard, detach
            )
    elif sid == 2:
        for j in range(n):
            h = hr[j]
            g = c1 - c2 * abs(h - vth)
            gv = carry[j] + gvr[j] if has_gv else carry[j]
            gxr[j], carry[j] = _gstep(
                h, g if g > zero else zero, gsr[j], gv, vth, vr, gin, gcarry, one, zero, hard, detach
            )
    elif sid == 3:
        for j in range(n):
            h = hr[j]
            w = c1 + abs(h - vth)
            gv = carry[j] + gvr[j] if has_gv else carry[j]
            gxr[j], carry[j] = _gstep(
                h, one / (c2 * w * w), gsr[j], gv, vth, vr, gin, gcarry, one, zero, hard, detach
            )
    elif sid == 4:
        for j in range(n):
            h = hr[j]
            w = (h - vth) * c1
            gv = carry[j] + gvr[j] if has_gv else carry[j]
            gxr[j], carry[j] = _gstep(
                h, c2 * math.exp(-(w * w)), gsr[j], gv, vth, vr, gin, gcarry, one, zero, hard, detach
            )
    else:
        for j in range(n):
            h = hr[j]
            gv = carry[j] + gvr[j] if has_gv else carry[j]
            gxr[j], carry[j] = _gstep(
                h,
                c2 * math.exp(-(c1 * abs(h - vth))),
                gsr[j],
                gv,
                vth,
                vr,
                gin,
                gcarry,
                one,
                zero,
                hard,
                detach,
            )


@njit(parallel=True, cache=True, error_model="numpy")
def lif_backward(x, v0, g_s, g_v, params, iparams, g_x, g_v0, ws):  # pragma: no cover - compiled
    # ws: workspace [workers, T + 2, chunk]: rows 0..T-1 the recomputed H, then membrane, carry
    # per chunk: recompute H for all T steps into a chunk-local buffer (the forward saved nothing but x), then
    # sweep T in reverse (surrogate slope and gradient in one pass per row). Memory traffic: read x and dS, write dX.
    T, N = x.shape
    tau = params[0]
    vth = params[1]
    vr = params[2]
    gin = params[3]
    gcarry = params[4]
    c1 = params[5]
    c2 = params[6]
    one = params[7]
    zero = params[8]
    mode = iparams[0]
    hard = iparams[1] != 0
    detach = iparams[2] != 0
    sid = iparams[3]
    has_v0 = iparams[4] != 0
    has_gv = iparams[7] != 0
    nworkers = ws.shape[0]
    chunk = ws.shape[2]
    nchunks = (N + chunk - 1) // chunk
    for w in prange(nworkers):
        hbuf = ws[w]
        vbuf = hbuf[T]
        cbuf = hbuf[T + 1]
        for c in range(w, nchunks, nworkers):
            lo = c * chunk
            hi = min(lo + chunk, N)
            n = hi - lo
            vb = vbuf[:n]
            if has_v0:
                vb[:] = v0[lo:hi]
            else:
                vb[:] = vr
            for t in range(T):
                _fwd_row(
                    x[t, lo:hi], vb, hbuf[t, :n], vb, vb, tau, vth, vr, one, zero, mode, hard,
                    False, True, False,
                )  # fmt: skip
            carry = cbuf[:n]
            carry[:] = zero
            for t in range(T - 1, -1, -1):
                gvr = g_v[t, lo:hi] if has_gv else g_v[0, 0:1]
                _bwd_row(
                    hbuf[t, :n], g_s[t, lo:hi], gvr, g_x[t, lo:hi], carry, vth, vr, gin, gcarry, sid, c1, c2, one,
                    zero, hard, detach, has_gv,
                )  # fmt: skip
            g_v0[lo:hi] = carry


def _serial(kernel, name: str):
    """``kernel`` compiled again without ``parallel=True`` (``prange`` runs as ``range``), under its own name so
    its on-disk cache entry is its own. Same code, same arithmetic, so the same bits."""
    f = kernel.py_func
    g = types.FunctionType(f.__code__, f.__globals__, name, f.__defaults__, f.__closure__)
    g.__qualname__ = name
    return njit(cache=True, error_model="numpy")(g)


#: Serial twins of the two kernels, for calls that run on one worker: a parallel launch on numba's workqueue
#: layer costs ~0.1 ms even at one thread, more than a small layer's whole LIF.
lif_forward_serial = _serial(lif_forward, "lif_forward_serial")
lif_backward_serial = _serial(lif_backward, "lif_backward_serial")


def kernel(module, name: str, workers: int):
    """The kernel ``name`` of ``module`` for a call on ``workers`` workers: the parallel one (under numba's
    workqueue layer, see :func:`threading_layer`) or, for one worker, its serial twin ``name + "_serial"``.
    Returns ``(function, context manager to launch it in)``."""
    if workers > 1:
        return getattr(module, name), threading_layer()
    return getattr(module, name + "_serial"), contextlib.nullcontext()


def make_params(dtype, tau, v_threshold, v_reset, input_gain, carry_gain, c1, c2) -> np.ndarray:
    """Pack the float parameters in the kernel dtype."""
    return np.array(
        [tau, v_threshold, 0.0 if v_reset is None else v_reset, input_gain, carry_gain, c1, c2, 1.0, 0.0],
        dtype=dtype,
    )


def set_threads(n: int) -> int:
    """Use ``n`` numba threads (capped by ``NUMBA_NUM_THREADS``), so the kernels follow ``torch.set_num_threads``.
    Returns the thread count (the kernels split their chunks over that many workers; at 1 the serial kernels run
    and numba's pool is left alone)."""
    n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
    if n == 1:  # one worker runs the serial kernels: numba's thread pool is not needed (nor started)
        return 1
    with threading_layer():  # get/set_num_threads start the pool: in the layer the kernels launch in
        if numba.get_num_threads() != n:
            numba.set_num_threads(n)
    return n
