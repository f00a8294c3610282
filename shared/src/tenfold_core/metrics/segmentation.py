"""Segmentation metrics for binary masks, VPS (video polyp segmentation) conventions.

Per-image scores are averaged over images. ``max_dice``/``max_iou`` evaluate 256 thresholds uniformly in [0, 1]
and take the maximum of the *mean over images* curve (as the PNS+ / SUN-SEG evaluator does).
"""

from __future__ import annotations

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
    """Mean-over-images Dice and IoU at ``num_thresholds`` thresholds in [0, 1]; returns (thresholds, dice, iou)."""
    p, t = _as_batch(prob, target)
    thr = torch.linspace(0, 1, num_thresholds)
    b = (p[:, None, :] >= thr[None, :, None]).float()  # [N, K, P]
    inter = (b * t[:, None, :]).sum(-1)
    ps, ts = b.sum(-1), t.sum(-1, keepdim=True).expand_as(inter)
    both_empty = (ps + ts) == 0
    d = torch.where(both_empty, torch.ones_like(inter), 2 * inter / (ps + ts).clamp_min(EPS))
    i = torch.where(both_empty, torch.ones_like(inter), inter / (ps + ts - inter).clamp_min(EPS))
    return thr, d.mean(0), i.mean(0)


def max_dice_iou(prob, target, num_thresholds: int = 256) -> tuple[float, float]:
    """maxDice and maxIoU over ``num_thresholds`` thresholds (VPS convention)."""
    _, d, i = dice_iou_curves(prob, target, num_thresholds)
    return float(d.max()), float(i.max())


def segmentation_report(prob, target, threshold: float = 0.5, num_thresholds: int = 256) -> dict[str, float]:
    d, i = dice_iou_per_image(prob, target, threshold)
    md, mi = max_dice_iou(prob, target, num_thresholds)
    return {"dice": float(d.mean()), "iou": float(i.mean()), "max_dice": md, "max_iou": mi}
