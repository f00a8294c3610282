"""Training loss: BCE on the mask logits (the PNS-Net / FUnet recipe), optionally plus soft Dice."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SegLoss", "soft_dice_loss"]


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft Dice per frame (smoothed by ``eps``), averaged; ``logits``/``target`` ``[..., H, W]``."""
    p = torch.sigmoid(logits).flatten(-2)
    t = target.flatten(-2)
    inter = (p * t).sum(-1)
    return (1 - (2 * inter + eps) / (p.sum(-1) + t.sum(-1) + eps)).mean()


class SegLoss(nn.Module):
    """``bce_weight * BCE(sigmoid(logits), masks) + dice_weight * (1 - softDice)``; defaults: BCE only."""

    def __init__(self, bce_weight: float = 1.0, dice_weight: float = 0.0):
        super().__init__()
        if bce_weight < 0 or dice_weight < 0 or bce_weight + dice_weight == 0:
            raise ValueError("loss weights must be >= 0 and not both 0")
        self.bce_weight, self.dice_weight = bce_weight, dice_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.to(logits.dtype)
        loss = logits.new_zeros(())
        if self.bce_weight:
            loss = loss + self.bce_weight * F.binary_cross_entropy_with_logits(logits, target)
        if self.dice_weight:
            loss = loss + self.dice_weight * soft_dice_loss(logits, target)
        return loss
