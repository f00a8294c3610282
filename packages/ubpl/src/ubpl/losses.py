"""Losses. UBPL itself trains nothing (it steers decoding); the demo's tiny LM is trained with next-token
cross-entropy, padding excluded."""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["causal_lm_loss"]


def causal_lm_loss(logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
    """Mean next-token cross-entropy of ``logits`` [B, L, V] against ``input_ids`` [B, L] shifted by one; positions
    whose target is padding (``attention_mask == 0``) do not count."""
    targets = input_ids[:, 1:].clone()
    if attention_mask is not None:
        targets[attention_mask[:, 1:] == 0] = -100
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100
    )
