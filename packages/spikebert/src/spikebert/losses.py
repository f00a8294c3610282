"""Distillation losses of the two stages (and the CE-only baseline).

Stage 1 (pre-training distillation, unlabelled text)::

    L_pre = w_rep * sum_i MSE(rep_i, h^T_map(i))                         [/ B with rep_batch_div, as the official code]

Stage 2 (task distillation from a fine-tuned teacher)::

    L = w_ce * CE(mean_T z_s, y) + w_logit * KL(softmax(z_t) || softmax(mean_T z_s))
        + w_emb * MSE(P(E_s), E_t) + w_rep * sum_i MSE(rep_i, h^T_map(i))   [/ B with rep_batch_div]

``E_s``/``E_t`` are the whole word-embedding matrices (student and teacher share the tokenizer); ``P`` is a learned
projection when the student is narrower than the teacher (identity otherwise). With a padding mask the hidden-state
MSE averages over real tokens only.

Optional spike-rate regulariser (any stage, off by default): ``w * mean_l (r_l - target)^2`` over every LIF's
firing rate ``r_l`` in the batch (differentiable through the surrogate gradients).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

from spikebert.config import PretrainLossConfig, TaskLossConfig

__all__ = [
    "PretrainLossConfig",
    "StageWeights",
    "TaskLossConfig",
    "embedding_mse",
    "hidden_mse",
    "logit_kl",
    "rate_penalty",
    "rep_loss",
    "task_distill_loss",
]


#: the stage-2 weights (kept under its old name); defaults are the official script's
StageWeights = TaskLossConfig


def hidden_mse(
    student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error over ``[B, L, D]`` token representations, over real tokens only when ``mask`` is given."""
    if student.shape != teacher.shape:
        raise ValueError(f"representation shapes differ: {tuple(student.shape)} vs {tuple(teacher.shape)}")
    if mask is None:
        return F.mse_loss(student, teacher)
    w = mask.to(student.dtype).unsqueeze(-1)
    return ((student - teacher) ** 2 * w).sum() / (w.sum() * student.shape[-1]).clamp_min(1.0)


def rep_loss(
    reps: Sequence[torch.Tensor],
    teacher_hidden: Sequence[torch.Tensor],
    layer_map: Sequence[int],
    mask: torch.Tensor | None = None,
    batch_div: bool = True,
) -> torch.Tensor:
    """``sum_i MSE(reps[i], teacher_hidden[layer_map[i]])``, divided by the batch size when ``batch_div``
    (the official code divides the mean MSE by B once more)."""
    if len(reps) != len(layer_map):
        raise ValueError(f"{len(reps)} student representations but a layer map of {len(layer_map)}")
    total = reps[0].new_zeros(())
    for r, j in zip(reps, layer_map):
        total = total + hidden_mse(r, teacher_hidden[j].to(r.dtype), mask)
    return total / reps[0].shape[0] if batch_div else total


def logit_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """``KL(softmax(teacher) || softmax(student))`` with ``batchmean`` reduction (temperature 1)."""
    return F.kl_div(
        F.log_softmax(student_logits.float(), -1), F.log_softmax(teacher_logits.float(), -1),
        reduction="batchmean", log_target=True,
    )  # fmt: skip


def embedding_mse(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    """MSE between the (projected) student word-embedding matrix and the teacher's ``[V, D]``."""
    if student_emb.shape != teacher_emb.shape:
        raise ValueError(
            f"embedding matrices differ: {tuple(student_emb.shape)} vs {tuple(teacher_emb.shape)} "
            "(the student must use the teacher's tokenizer)"
        )
    return F.mse_loss(student_emb, teacher_emb)


def task_distill_loss(
    *,
    logits: torch.Tensor,
    labels: torch.Tensor | None,
    teacher_logits: torch.Tensor | None,
    student_emb: torch.Tensor | None,
    teacher_emb: torch.Tensor | None,
    reps: Sequence[torch.Tensor],
    teacher_hidden: Sequence[torch.Tensor] | None,
    layer_map: Sequence[int],
    mask: torch.Tensor | None,
    weights: StageWeights,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The stage-2 objective; terms with weight 0 (or without teacher inputs) are skipped. Returns the total and
    each (unweighted) term."""
    parts: dict[str, torch.Tensor] = {}
    total = logits.new_zeros((), dtype=torch.float32)
    if weights.ce and labels is not None:
        parts["ce"] = F.cross_entropy(logits.float(), labels)
        total = total + weights.ce * parts["ce"]
    if weights.logit and teacher_logits is not None:
        parts["kl"] = logit_kl(logits, teacher_logits)
        total = total + weights.logit * parts["kl"]
    if weights.emb and student_emb is not None and teacher_emb is not None:
        parts["emb"] = embedding_mse(student_emb.float(), teacher_emb.float())
        total = total + weights.emb * parts["emb"]
    if weights.rep and teacher_hidden is not None and reps:
        parts["rep"] = rep_loss(reps, teacher_hidden, layer_map, mask, weights.rep_batch_div)
        total = total + weights.rep * parts["rep"]
    return total, parts


def rate_penalty(rates: Sequence[torch.Tensor], target: float) -> torch.Tensor:
    """``mean_l (r_l - target)^2`` over per-layer firing rates (0-dim tensors carrying gradients)."""
    if not rates:
        raise ValueError("rate_penalty: no firing rates were recorded")
    r = torch.stack([x.float() for x in rates])
    return ((r - target) ** 2).mean()
