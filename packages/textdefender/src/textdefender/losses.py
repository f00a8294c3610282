"""Losses: cross-entropy on clean, masked (RanMASK) or embedding-perturbed (PGD / FreeLB / FreeLB++) inputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["classification_loss", "random_mask_ids"]


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, labels)


def random_mask_ids(input_ids, attention_mask, mask_id: int, rate: float, special_ids=(), generator=None):
    """RanMASK training input: every real (non-special, non-pad) token replaced by ``mask_id`` with prob. ``rate``."""
    u = torch.rand(input_ids.shape, generator=generator, device="cpu").to(input_ids.device)
    real = attention_mask.bool()
    for s in special_ids:
        real &= input_ids != s
    return torch.where(real & (u < rate), torch.full_like(input_ids, mask_id), input_ids)
