"""Segmentation metrics for binary masks, VPS (video polyp segmentation) conventions.

Per-image scores are averaged over images. :class:`VPSEvaluator` / :func:`vps_frame_metrics` implement the VPS /
SUN-SEG evaluation toolbox's conventions (8-bit maps, per-frame min-max normalisation, 256 thresholds, per-case then
across-case averaging, empty prediction on an empty mask = 0). ``max_dice``/``max_iou`` evaluate 256 thresholds uniformly in [0, 1]
and take the maximum of the *mean over images* curve (as the PNS+ / SUN-SEG evaluator does).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

EPS = 1e-8


def _as_batch(pred, target) -> tuple[torch.Tensor, torch.Tensor]:
    p = torch.as_tensor(np.asarray(pred) if not torch.is_tensor(pred) else pred).detach().float().cpu()
    t = torch.as_tensor(np.asarray(target) if not torch.is_tensor(target) else target).detach().float().cpu()
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {tuple(p.shape)} != target shape {tuple(t.shape)}")
    if p.ndim == 2:
        p, t = p[None], t[None]
    return p.reshape(p.shape[0], -1), (t.reshape(t.shape[0], -1) > 0.5).float()


def dice_iou_per_image(prob, target, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Dice and IoU of each image for probabilities ``prob`` (``[N, ...]`` or one ``[H, W]``) at ``threshold``.

    An image whose prediction and target are both empty scores 1 (a correct "nothing here").
    """
    p, t = _as_batch(prob, target)
    b = (p >= threshold).float()
    inter = (b * t).sum(1)
    ps, ts = b.sum(1), t.sum(1)
    union = ps + ts - inter
    both_empty = (ps + ts) == 0
    dice = torch.where(both_empty, torch.ones_like(inter), 2 * inter / (ps + ts).clamp_min(EPS))
    iou = torch.where(both_empty, torch.ones_like(inter), inter / union.clamp_min(EPS))
    return dice, iou


def dice(prob, target, threshold: float = 0.5) -> float:
    return float(dice_iou_per_image(prob, target, threshold)[0].mean())


def iou(prob, target, threshold: float = 0.5) -> float:
    return float(dice_iou_per_image(prob, target, threshold)[1].mean())


def dice_iou_curves(
    prob, target, num_thresholds: int = 256
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean-over-images Dice and IoU at ``num_thresholds`` thresholds in [0, 1]; returns (thresholds, dice, iou).

    Streams image by image (:class:`DiceIoUCurves`): memory O(pixels of one image + thresholds).
    """
    acc = DiceIoUCurves(num_thresholds)
    acc.update(prob, target)
    return acc.compute()


def max_dice_iou(prob, target, num_thresholds: int = 256) -> tuple[float, float]:
    """maxDice and maxIoU over ``num_thresholds`` thresholds (VPS convention)."""
    _, d, i = dice_iou_curves(prob, target, num_thresholds)
    return float(d.max()), float(i.max())


def segmentation_report(prob, target, threshold: float = 0.5, num_thresholds: int = 256) -> dict[str, float]:
    d, i = dice_iou_per_image(prob, target, threshold)
    md, mi = max_dice_iou(prob, target, num_thresholds)
    return {"dice": float(d.mean()), "iou": float(i.mean()), "max_dice": md, "max_iou": mi}


# ------------------------------------------------------------------------------------------------ streaming curves
class DiceIoUCurves:
    """Streaming :func:`dice_iou_curves`: ``update(prob, target)`` image batches, then ``compute()``.

    Memory is O(images x thresholds) for the per-image curves' running sums (O(thresholds)) plus one image at a time:
    each image is sorted once and the thresholds are located by binary search, never an [N, K, P] tensor.
    """

    def __init__(self, num_thresholds: int = 256):
        self.thr = np.linspace(0, 1, num_thresholds)
        self.dice_sum = np.zeros(num_thresholds)
        self.iou_sum = np.zeros(num_thresholds)
        self.n = 0

    def update(self, prob, target) -> None:
        p, t = _as_batch(prob, target)
        for pi, ti in zip(p.numpy().astype(np.float64), t.numpy() > 0.5, strict=True):
            fg, bg = np.sort(pi[ti]), np.sort(pi[~ti])
            tp = fg.size - np.searchsorted(fg, self.thr, side="left")
            fp = bg.size - np.searchsorted(bg, self.thr, side="left")
            ps, ts = tp + fp, fg.size
            empty = (ps + ts) == 0
            self.dice_sum += np.where(empty, 1.0, 2 * tp / np.maximum(ps + ts, EPS))
            self.iou_sum += np.where(empty, 1.0, tp / np.maximum(ps + ts - tp, EPS))
            self.n += 1

    def compute(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n = max(self.n, 1)
        f = torch.float32
        return (
            torch.as_tensor(self.thr, dtype=f),
            torch.as_tensor(self.dice_sum / n, dtype=f),
            torch.as_tensor(self.iou_sum / n, dtype=f),
        )


# ------------------------------------------------------------------------------------------------ VPS toolbox
VPS_EPS = float(np.spacing(1))
VPS_KEYS = (
    "S_measure", "wF_measure", "MAE", "mean_E_measure", "max_E_measure", "mean_F_measure", "max_F_measure",
    "mean_sensitivity", "max_sensitivity", "mean_specificity", "max_specificity", "mean_dice", "max_dice",
    "mean_iou", "max_iou",
)  # fmt: skip


def vps_prepare(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    """The VPS / SUN-SEG toolbox's input conventions.

    ``pred``: an 8-bit map (uint8, as read from the PNG) or probabilities in [0, 1] (quantised to 8 bits first, as
    writing the PNG does: ``round(255 p)``). ``gt``: uint8 (foreground ``> 128``), bool, or floats (``> 0.5``).
    Returns (pred / 255 min-max normalised when not constant, gt bool).
    """
    p = np.asarray(pred.detach().cpu().numpy() if torch.is_tensor(pred) else pred)
    g = np.asarray(gt.detach().cpu().numpy() if torch.is_tensor(gt) else gt)
    if p.shape != g.shape or p.ndim != 2:
        raise ValueError(f"VPS metrics take one [H, W] map and mask of one size, got {p.shape} and {g.shape}")
    if p.dtype != np.uint8:
        p = np.round(np.clip(p.astype(np.float64), 0, 1) * 255).astype(np.uint8)
    g = g > 128 if g.dtype == np.uint8 else (g > 0.5 if g.dtype != bool else g)
    x = p.astype(np.float64) / 255
    lo, hi = x.min(), x.max()
    if hi != lo:
        x = (x - lo) / (hi - lo)
    return x, g


def _gauss7() -> np.ndarray:
    ax = np.arange(7) - 3.0
    k = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * 5.0**2))
    k[k < np.finfo(k.dtype).eps * k.max()] = 0
    return k / k.sum()


def vps_weighted_f_measure(x: np.ndarray, g: np.ndarray, beta2: float = 1.0) -> float:
    """Weighted F-measure (Margolin et al., CVPR 2014) of a prepared map ``x`` vs bool ``g``; empty ``g`` -> 0."""
    from scipy import ndimage

    if not g.any():
        return 0.0
    dist, idx = ndimage.distance_transform_edt(~g, return_indices=True)
    e = np.abs(x - g)
    et = e.copy()
    bg = ~g
    et[bg] = e[idx[0][bg], idx[1][bg]]  # background error taken from the nearest foreground pixel
    ea = ndimage.convolve(et, _gauss7(), mode="constant", cval=0.0)
    min_e = np.where(g & (ea < e), ea, e)
    b = np.where(bg, 2 - np.exp(np.log(0.5) / 5 * dist), 1.0)
    ew = min_e * b
    tpw = g.sum() - ew[g].sum()
    fpw = ew[bg].sum()
    r = 1 - ew[g].mean()
    p = tpw / (tpw + fpw + VPS_EPS)
    return float((1 + beta2) * r * p / (r + beta2 * p + VPS_EPS))


def _hist_counts(x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels with 8-bit value >= 255, 254, ..., 0 (the toolbox's 256 F/E-measure thresholds), fg and bg."""
    q = (x * 255).astype(np.uint8)
    tp = np.cumsum(np.bincount(q[g], minlength=256)[::-1]).astype(np.float64)
    fp = np.cumsum(np.bincount(q[~g], minlength=256)[::-1]).astype(np.float64)
    return tp, fp


def vps_e_curve(tp: np.ndarray, fp: np.ndarray, n_gt: float, n: float) -> np.ndarray:
    """Enhanced-alignment measure of binary maps from counts (the toolbox's ``N - 1`` denominator)."""
    pf = tp + fp
    pb = n - pf
    if n_gt == 0:
        total = pb
    elif n_gt == n:
        total = pf
    else:
        fn = n_gt - tp
        tn = pb - fn
        mp, mg = pf / n, n_gt / n
        total = 0.0
        for cnt, a, b in ((tp, 1 - mp, 1 - mg), (fp, 1 - mp, -mg), (fn, -mp, 1 - mg), (tn, -mp, -mg)):
            align = 2 * a * b / (a * a + b * b + VPS_EPS)
            total = total + cnt * (align + 1) ** 2 / 4
    return np.asarray(total, dtype=np.float64) / (n - 1 + VPS_EPS)


def vps_frame_metrics(pred, gt) -> dict[str, Any]:
    """Every toolbox measure of one frame: scalars (S-measure alpha 0.5, weighted F-beta, MAE) and 256-point curves
    (E-measure, F-measure beta^2 0.3 on 8-bit thresholds; sensitivity, specificity, Dice, IoU at
    ``linspace(1, 0, 256)``, where a threshold with no true positive scores 0 for all four, so an empty prediction
    of an empty mask scores Dice 0)."""
    from tenfold_core.metrics.saliency import s_measure

    x, g = vps_prepare(pred, gt)
    n, n_gt = float(g.size), float(g.sum())
    tp, fp = _hist_counts(x, g)
    ps = np.where(tp + fp == 0, 1.0, tp + fp)
    prec, rec = tp / ps, tp / max(n_gt, 1.0)
    num = 1.3 * prec * rec
    fm = num / np.where(num == 0, 1.0, 0.3 * prec + rec)
    thr = np.linspace(1, 0, 256)
    fg, bg = np.sort(x[g]), np.sort(x[~g])
    tp2 = (fg.size - np.searchsorted(fg, thr, side="left")).astype(np.float64)
    fp2 = (bg.size - np.searchsorted(bg, thr, side="left")).astype(np.float64)
    npred = tp2 + fp2
    fn2, tn2 = n_gt - tp2, (n - npred) - (n_gt - tp2)
    hit = tp2 > 0
    safe = np.maximum
    return {
        "S_measure": s_measure(x, g, centroid="numpy"),
        "wF_measure": vps_weighted_f_measure(x, g),
        "MAE": float(np.abs(x - g).mean()),
        "E_curve": vps_e_curve(tp, fp, n_gt, n),
        "F_curve": fm,
        "sensitivity_curve": np.where(hit, tp2 / safe(n_gt, 1.0), 0.0),
        "specificity_curve": np.where(hit, tn2 / safe(tn2 + fp2, 1.0), 0.0),
        "dice_curve": np.where(hit, 2 * tp2 / safe(n_gt + npred, 1.0), 0.0),
        "iou_curve": np.where(hit, tp2 / safe(fn2 + npred, 1.0), 0.0),
    }


_SCALARS = ("S_measure", "wF_measure", "MAE")
_CURVES = ("E_curve", "F_curve", "sensitivity_curve", "specificity_curve", "dice_curve", "iou_curve")


def _summary(s: dict[str, Any]) -> dict[str, float]:
    out = {k: float(s[k]) for k in _SCALARS}
    for curve, name in (("E_curve", "E_measure"), ("F_curve", "F_measure"), ("sensitivity_curve", "sensitivity"),
                        ("specificity_curve", "specificity"), ("dice_curve", "dice"), ("iou_curve", "iou")):  # fmt: skip
        out[f"mean_{name}"] = float(np.mean(s[curve]))
        out[f"max_{name}"] = float(np.max(s[curve]))
    return out


class VPSEvaluator:
    """The VPS / SUN-SEG toolbox protocol, streamed: ``update(case, pred, gt)`` frame by frame (the caller leaves out
    the first and last frame of each video, as the toolbox does), ``results()`` -> the averages over cases of the
    per-case (frame-averaged) measures, ``mean_*`` / ``max_*`` of the curves, plus ``cases``: one row per case.
    Memory: O(cases x 256)."""

    def __init__(self):
        self._sums: dict[str, dict[str, Any]] = {}
        self._counts: dict[str, int] = {}

    def update(self, case: str, pred, gt) -> dict[str, Any]:
        m = vps_frame_metrics(pred, gt)
        acc = self._sums.setdefault(case, {k: 0.0 for k in (*_SCALARS, *_CURVES)})
        for k in (*_SCALARS, *_CURVES):
            acc[k] = acc[k] + m[k]
        self._counts[case] = self._counts.get(case, 0) + 1
        return m

    def case_means(self) -> dict[str, dict[str, Any]]:
        return {c: {k: v / self._counts[c] for k, v in s.items()} for c, s in self._sums.items()}

    def results(self) -> dict[str, Any]:
        per = self.case_means()
        if not per:
            raise ValueError("VPSEvaluator: no frames were scored")
        overall = {k: np.mean([p[k] for p in per.values()], axis=0) for k in (*_SCALARS, *_CURVES)}
        out: dict[str, Any] = _summary(overall)
        out["num_cases"] = len(per)
        out["num_frames"] = int(sum(self._counts.values()))
        out["cases"] = {c: {**_summary(p), "frames": self._counts[c]} for c, p in per.items()}
        return out
