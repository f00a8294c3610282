"""Structure and alignment measures for soft/binary masks (salient-object / video-polyp evaluation).

- :func:`s_measure` (Fan et al., ICCV 2017): ``alpha * S_object + (1 - alpha) * S_region`` for a prediction in [0, 1]
  against a binary ground truth; ``alpha = 0.5``. Empty ground truth: ``1 - mean(pred)``; full: ``mean(pred)``.
  Standard deviations use ``N - 1`` (as the MATLAB reference); the region split uses the ground-truth centroid
  rounded as the MATLAB reference does (1-based, half away from zero) or the image centre when the ground truth is empty.
- :func:`e_measure` (Fan et al., IJCAI 2018, enhanced alignment) of a *binary* prediction:
  ``sum(phi) / (N - 1)`` with ``phi = (1 + 2 a_p a_g / (a_p^2 + a_g^2))^2 / 4``, ``a = x - mean(x)``; empty
  ground truth: ``sum(1 - pred) / (N - 1)``; full ground truth: ``sum(pred) / (N - 1)`` (the reference's N - 1
  denominator makes a perfect score N / (N - 1), slightly above 1).
- :func:`max_e_measure`: threshold a soft prediction at ``num_thresholds`` values in [0, 1] (``pred >= t``), average
  the E-measure over images at each threshold and take the maximum of that curve (VPS / PNS+ convention).

Inputs are ``[H, W]`` or ``[N, H, W]`` arrays or tensors; predictions are taken as given (no min-max rescaling).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["s_measure", "s_measure_per_image", "e_measure", "max_e_measure", "e_measure_curve"]

EPS = 1e-8


def _to_np(x) -> np.ndarray:
    if torch.is_tensor(x):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _batch(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    p, g = _to_np(pred), _to_np(gt) > 0.5
    if p.shape != g.shape:
        raise ValueError(f"prediction shape {p.shape} != ground-truth shape {g.shape}")
    if p.ndim == 2:
        p, g = p[None], g[None]
    if p.ndim != 3:
        raise ValueError(f"expected [H, W] or [N, H, W], got shape {p.shape}")
    return p, g


# ------------------------------------------------------------------------------------------------ S-measure
def _object_score(x: np.ndarray) -> float:
    if x.size == 0:
        return 0.0
    mu = float(x.mean())
    sd = float(x.std(ddof=1)) if x.size > 1 else 0.0
    return 2.0 * mu / (mu * mu + 1.0 + sd + EPS)


def _s_object(pred: np.ndarray, gt: np.ndarray) -> float:
    u = gt.mean()
    o_fg = _object_score(pred[gt])
    o_bg = _object_score(1.0 - pred[~gt])
    return u * o_fg + (1 - u) * o_bg


def _ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    n = pred.size
    if n == 0:
        return 0.0
    x, y = pred.mean(), gt.mean()
    denom = max(n - 1, 1)
    sx = ((pred - x) ** 2).sum() / denom
    sy = ((gt - y) ** 2).sum() / denom
    sxy = ((pred - x) * (gt - y)).sum() / denom
    alpha = 4 * x * y * sxy
    beta = (x * x + y * y) * (sx + sy)
    if alpha != 0:
        return float(alpha / (beta + EPS))
    return 1.0 if beta == 0 else 0.0


def _s_region(pred: np.ndarray, gt: np.ndarray, centroid: str = "matlab") -> float:
    h, w = gt.shape
    # MATLAB: X = round(mean 1-based column index of the foreground); round half away from zero.
    # numpy (the SUN-SEG / PySODMetrics Python toolbox): round(mean 0-based index) half to even, + 1
    if gt.any():
        ys, xs = np.nonzero(gt)
        if centroid == "numpy":
            cy, cx = int(np.round(ys.mean())) + 1, int(np.round(xs.mean())) + 1
        else:
            cy, cx = int(np.floor(ys.mean() + 1.5)), int(np.floor(xs.mean() + 1.5))
    else:
        cy, cx = int(np.floor(h / 2 + 0.5)), int(np.floor(w / 2 + 0.5))
    g = gt.astype(np.float64)
    area = h * w
    score = 0.0
    for rs, cs in ((slice(0, cy), slice(0, cx)), (slice(0, cy), slice(cx, w)),
                   (slice(cy, h), slice(0, cx)), (slice(cy, h), slice(cx, w))):  # fmt: skip
        p_part, g_part = pred[rs, cs], g[rs, cs]
        if p_part.size:
            score += p_part.size / area * _ssim(p_part, g_part)
    return score


def _s_one(pred: np.ndarray, gt: np.ndarray, alpha: float, centroid: str = "matlab") -> float:
    y = gt.mean()
    if y == 0:
        return float(1.0 - pred.mean())
    if y == 1:
        return float(pred.mean())
    s = alpha * _s_object(pred, gt) + (1 - alpha) * _s_region(pred, gt, centroid)
    return float(max(s, 0.0))


def s_measure_per_image(pred, gt, alpha: float = 0.5, centroid: str = "matlab") -> np.ndarray:
    if centroid not in ("matlab", "numpy"):
        raise ValueError(f"centroid must be 'matlab' or 'numpy', got {centroid!r}")
    p, g = _batch(pred, gt)
    return np.array([_s_one(p[i], g[i], alpha, centroid) for i in range(len(p))])


def s_measure(pred, gt, alpha: float = 0.5, centroid: str = "matlab") -> float:
    """Mean S-measure over images (prediction in [0, 1], ground truth binarised at 0.5). ``centroid``: how the
    region split rounds the ground-truth centroid: "matlab" (half away from zero, the MATLAB reference) or "numpy"
    (half to even, the SUN-SEG Python toolbox)."""
    return float(s_measure_per_image(pred, gt, alpha, centroid).mean())


# ------------------------------------------------------------------------------------------------ E-measure
def _e_from_counts(tp, fp, fn, tn, n_fg_gt, n) -> np.ndarray:
    """E-measure of binary predictions from confusion counts (arrays broadcast over thresholds)."""
    n_pred = tp + fp
    mp = n_pred / n  # mean of the binary prediction
    mg = n_fg_gt / n
    out = np.empty(np.broadcast(tp, mp).shape, dtype=np.float64)
    if n_fg_gt == 0:
        return (n - n_pred) / (n - 1 + EPS) + 0 * out
    if n_fg_gt == n:
        return n_pred / (n - 1 + EPS) + 0 * out
    total = 0.0
    # four pixel categories: (pred value, gt value) -> (count)
    for pv, gv, cnt in ((1.0, 1.0, tp), (1.0, 0.0, fp), (0.0, 1.0, fn), (0.0, 0.0, tn)):
        ap, ag = pv - mp, gv - mg
        align = 2 * ap * ag / (ap * ap + ag * ag + EPS)
        total = total + cnt * (align + 1) ** 2 / 4
    return total / (n - 1 + EPS)


def e_measure(pred_binary, gt) -> float:
    """Mean E-measure over images of binary predictions (values > 0.5 count as foreground)."""
    p, g = _batch(pred_binary, gt)
    b = p > 0.5
    scores = []
    for i in range(len(b)):
        n = b[i].size
        tp = float((b[i] & g[i]).sum())
        fp = float((b[i] & ~g[i]).sum())
        fn = float((~b[i] & g[i]).sum())
        tn = n - tp - fp - fn
        scores.append(float(_e_from_counts(tp, fp, fn, tn, float(g[i].sum()), n)))
    return float(np.mean(scores))


def e_measure_curve(pred, gt, num_thresholds: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(thresholds, mean-over-images E-measure at each threshold ``pred >= t``)."""
    p, g = _batch(pred, gt)
    thr = np.linspace(0, 1, num_thresholds)
    curve = np.zeros(num_thresholds)
    for i in range(len(p)):
        n = p[i].size
        fg, bg = np.sort(p[i][g[i]]), np.sort(p[i][~g[i]])
        # number of fg / bg pixels with value >= t, for every threshold
        tp = (fg.size - np.searchsorted(fg, thr, side="left")).astype(np.float64)
        fp = (bg.size - np.searchsorted(bg, thr, side="left")).astype(np.float64)
        fn, tn = fg.size - tp, bg.size - fp
        curve += _e_from_counts(tp, fp, fn, tn, float(fg.size), n)
    return thr, curve / len(p)


def max_e_measure(pred, gt, num_thresholds: int = 256) -> float:
    """Maximum over thresholds of the mean-over-images E-measure (VPS convention)."""
    return float(e_measure_curve(pred, gt, num_thresholds)[1].max())
