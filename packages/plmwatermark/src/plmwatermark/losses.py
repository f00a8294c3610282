"""The multi-task objective of hard parameter sharing: one cross-entropy per proxy task (clean and poisoned rows
alike, the poisoned ones relabelled to the task's target), summed over the tasks present in the batch."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch.nn import functional as F

__all__ = ["multitask_loss"]


def multitask_loss(
    forward: Callable[[torch.Tensor, torch.Tensor, str], torch.Tensor], batch: Mapping[str, dict | None]
) -> tuple[torch.Tensor, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """``forward(input_ids, attention_mask, task) -> logits``; returns the summed loss and, per task, (logits, labels).
    A task whose loader is exhausted this step (``None``) is skipped."""
    total: torch.Tensor | float = 0.0
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for task, b in batch.items():
        if b is None:
            continue
        logits = forward(b["input_ids"], b["attention_mask"], task)
        total = total + F.cross_entropy(logits, b["labels"])
        out[task] = (logits, b["labels"])
    return total, out  # type: ignore[return-value]
