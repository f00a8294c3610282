"""The loss the paper trains with, and its packed form.

The paper trains on cross-entropy against one-hot float targets, which equals ``F.cross_entropy`` on integer labels
(the form used here). :func:`packed_cross_entropy` is the loss of :class:`~doubledescent.train.PackedSimpleFC`: the
*sum* over the packed models of each model's mean cross-entropy, so each model receives exactly its own gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["cross_entropy", "packed_cross_entropy"]


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy on integer labels (= the official one-hot float targets)."""
    return F.cross_entropy(logits, labels)


def packed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``logits`` (n, M, C) of M packed models, ``labels`` (n,): sum over models of their mean cross-entropy."""
    n, m, c = logits.shape
    return F.cross_entropy(logits.reshape(n * m, c), labels.repeat_interleave(m), reduction="sum") / n
