"""Fused LayerNorm + multi-step LIF/IF kernels for CPU (numba), on ``x`` of shape ``[T, M, D]`` C-contiguous.

``y[t, m, :] = LayerNorm(x[t, m, :])`` over the feature dim ``D``, then the neuron of :mod:`._cpu_kernel` over
``T`` on every ``(m, d)``. The LN output is never materialised: a chunk of whole rows (``rows`` rows of ``D``)
is normalised into a chunk-sized workspace and fed straight to the LIF step of :mod:`._cpu_kernel` (its
``_fwd_row`` / ``_bwd_row``, imported, so the neuron arithmetic is the very same code as ``lif_multi_step``'s).

- forward: per row and step, mean and variance in float64 (two passes over the row, which is in cache), stored as
  ``mean`` / ``rstd`` ``[T, M]`` in the dtype of ``x`` (the only things saved besides ``x``); then
  ``y = (x * rstd + (-rstd * mean)) * w + b`` in the dtype of ``x`` (the operation order of torch's CPU
  ``layer_norm``) and the LIF step on the chunk.
- backward: per chunk, recompute ``y`` and the membrane ``H`` for all T steps into the workspace, sweep T in
  reverse with the LIF gradient (written to ``g_x``), then turn each row of that ``dL/dy`` into ``dL/dx`` in place
  with the LayerNorm backward ``dx = rstd * (g w - mean(g w) - xhat * mean(g w xhat))``; the row sums and the
  per-worker partial ``dL/dw = sum g xhat``, ``dL/db = sum g`` are accumulated in float64.

Chunking, threads, the threading layer and the parameter arrays are those of :mod:`._cpu_kernel` (``plan``,
``set_threads``, ``threading_layer``, ``make_params``; same ``params`` / ``iparams`` layout); a chunk holds
``rows`` whole rows, ``rows * D`` elements (see :func:`plan_rows`).
"""

from __future__ import annotations

import math

from numba import njit, prange

from . import _cpu_kernel
from ._cpu_kernel import _bwd_row, _fwd_row, _serial, plan

__all__ = [
    "MAX_CHUNK",
    "ln_lif_backward",
    "ln_lif_backward_serial",
    "ln_lif_forward",
    "ln_lif_forward_serial",
    "plan_rows",
]

#: Optional cap on a chunk's elements (None: ``plan``'s choice); tests lower it to cross chunks on small inputs.
MAX_CHUNK: int | None = None


def plan_rows(T: int, M: int, D: int, nthreads: int, backward: bool, max_chunk: int | None = None):
    """``(rows, workers)``: :func:`._cpu_kernel.plan`'s chunk for the ``[T, M * D]`` call rounded down to whole
    rows (at least one row), optionally capped at ``max_chunk`` elements (default :data:`MAX_CHUNK`); one worker
    below :data:`._cpu_kernel.MIN_PARALLEL` elements."""
    if int(T) * int(M) * int(D) < _cpu_kernel.MIN_PARALLEL:
        nthreads = 1
    chunk, _ = plan(T, M * D, nthreads, backward)
    max_chunk = MAX_CHUNK if max_chunk is None else max_chunk
    if max_chunk is not None:
        chunk = min(chunk, int(max_chunk))
    rows = max(1, min(M, chunk // max(D, 1)))
    workers = max(1, min(nthreads, -(-M // rows)))
    return rows, workers


# The row reductions may be reassociated (so LLVM vectorises them); they are separate, non-inlined functions so
# that flag touches nothing else: the normalised values and the neuron arithmetic keep their exact order.
@njit(cache=True, error_model="numpy", fastmath={"reassoc", "nsz"})
def _moments(xr):  # pragma: no cover - compiled
    # float64 mean and mean squared deviation of one row (two passes; the row is in cache)
    n = xr.shape[0]
    s = 0.0
    for j in range(n):
        s += xr[j]
    mu = s / n
    q = 0.0
    for j in range(n):
        d = xr[j] - mu
        q += d * d
    return mu, q / n


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "nsz"})
def _ln_grad_sums(gr, w, xr, rs, nb):  # pragma: no cover - compiled
    # float64 sums over one row of g * w and g * w * xhat
    sa = 0.0
    sb = 0.0
    for j in range(gr.shape[0]):
        gwj = gr[j] * w[j]
        sa += gwj
        sb += gwj * (xr[j] * rs + nb)
    return sa, sb


@njit(cache=True, error_model="numpy")
def _ln_grad_params(gr, xr, rs, nb, gw, gb):  # pragma: no cover - compiled
    # accumulate one row's dL/dw = g * xhat and dL/db = g into the worker's float64 partials
    for j in range(gr.shape[0]):
        g = gr[j]
        gw[j] += g * (xr[j] * rs + nb)
        gb[j] += g


@njit(cache=True, error_model="numpy", inline="always")
def _ln_rows(x, t, r0, r1, D, w, b, eps, mean, rstd, yb, store_stats):  # pragma: no cover - compiled
    # normalise rows r0..r1 of step t into yb[(r - r0) * D : ...]; stats in float64, y in the dtype of x
    for r in range(r0, r1):
        xr = x[t, r]
        if store_stats:
            mu64, var = _moments(xr)
            mean[t, r] = mu64
            rstd[t, r] = 1.0 / math.sqrt(var + eps)
        mu = mean[t, r]  # read back: rounded to the dtype of x, as saved for the backward
        rs = rstd[t, r]
        nb = -rs * mu
        y = yb[(r - r0) * D : (r - r0 + 1) * D]
        for j in range(D):
            y[j] = (xr[j] * rs + nb) * w[j] + b[j]


@njit(parallel=True, cache=True, error_model="numpy")
def ln_lif_forward(x, w, b, eps, v0, params, iparams, rows, out_s, out_v, mean, rstd, ws):  # pragma: no cover
    # x [T, M, D]; out_s/out_v [T, M * D]; mean/rstd [T, M]; ws [workers, 2, rows * D] (membrane, LN output)
    T, M, D = x.shape
    tau = params[0]
    vth = params[1]
    vr = params[2]
    one = params[7]
    zero = params[8]
    mode = iparams[0]
    hard = iparams[1] != 0
    has_v0 = iparams[4] != 0
    store_v = iparams[6] != 0
    nworkers = ws.shape[0]
    nchunks = (M + rows - 1) // rows
    for wk in prange(nworkers):
        vbuf = ws[wk, 0]
        ybuf = ws[wk, 1]
        for c in range(wk, nchunks, nworkers):
            r0 = c * rows
            r1 = min(r0 + rows, M)
            lo = r0 * D
            hi = r1 * D
            n = hi - lo
            vb = vbuf[:n]
            yb = ybuf[:n]
            if has_v0:
                vb[:] = v0[lo:hi]
            else:
                vb[:] = vr
            for t in range(T):
                _ln_rows(x, t, r0, r1, D, w, b, eps, mean, rstd, yb, True)
                vrow = out_v[t, lo:hi] if store_v else out_v[0, 0:1]
                _fwd_row(
                    yb, out_s[t, lo:hi], vb, vrow, vb, tau, vth, vr, one, zero, mode, hard, True, False, store_v
                )  # fmt: skip


@njit(parallel=True, cache=True, error_model="numpy")
def ln_lif_backward(
    x, w, b, v0, mean, rstd, g_s, g_v, params, iparams, rows, g_x, g_v0, g_wb, ws
):  # pragma: no cover - compiled
    # ws [workers, T + 3, rows * D]: rows 0..T-1 recomputed H, then membrane, carry, LN output;
    # g_wb [workers, 2, D] float64 zeros: per-worker partial dL/dw, dL/db; g_x [T, M * D] (dL/dy, then dL/dx)
    T, M, D = x.shape
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
    nchunks = (M + rows - 1) // rows
    for wk in prange(nworkers):
        hbuf = ws[wk]
        vbuf = hbuf[T]
        cbuf = hbuf[T + 1]
        ybuf = hbuf[T + 2]
        gw = g_wb[wk, 0]
        gb = g_wb[wk, 1]
        for c in range(wk, nchunks, nworkers):
            r0 = c * rows
            r1 = min(r0 + rows, M)
            lo = r0 * D
            hi = r1 * D
            n = hi - lo
            vb = vbuf[:n]
            yb = ybuf[:n]
            if has_v0:
                vb[:] = v0[lo:hi]
            else:
                vb[:] = vr
            for t in range(T):
                _ln_rows(x, t, r0, r1, D, w, b, 0.0, mean, rstd, yb, False)
                _fwd_row(
                    yb, vb, hbuf[t, :n], vb, vb, tau, vth, vr, one, zero, mode, hard, False, True, False
                )  # fmt: skip
            carry = cbuf[:n]
            carry[:] = zero
            for t in range(T - 1, -1, -1):
                gvr = g_v[t, lo:hi] if has_gv else g_v[0, 0:1]
                _bwd_row(
                    hbuf[t, :n], g_s[t, lo:hi], gvr, g_x[t, lo:hi], carry, vth, vr, gin, gcarry, sid, c1, c2, one,
                    zero, hard, detach, has_gv,
                )  # fmt: skip
                # LayerNorm backward, row by row, in place on g_x (the row is in cache)
                for r in range(r0, r1):
                    xr = x[t, r]
                    gr = g_x[t, r * D : (r + 1) * D]
                    mu = mean[t, r]
                    rs = rstd[t, r]
                    nb = -rs * mu
                    sa, sb = _ln_grad_sums(gr, w, xr, rs, nb)
                    ybuf[0] = sa / D  # free during the reverse sweep: rounds the row means to the dtype of x
                    ybuf[1] = sb / D
                    ma = ybuf[0]
                    mb = ybuf[1]
                    _ln_grad_params(gr, xr, rs, nb, gw, gb)
                    for j in range(D):
                        gr[j] = rs * (gr[j] * w[j] - ma - (xr[j] * rs + nb) * mb)
            g_v0[lo:hi] = carry


#: Serial twins for one-worker calls (see :data:`._cpu_kernel.lif_forward_serial`).
ln_lif_forward_serial = _serial(ln_lif_forward, "ln_lif_forward_serial")
ln_lif_backward_serial = _serial(ln_lif_backward, "ln_lif_backward_serial")
