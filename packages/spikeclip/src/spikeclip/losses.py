"""SpikeCLIP losses: stage-1 cosine alignment, the stage-2 dual loss (CE + KL on prompt-similarity logits) and the
gradient-angle gate."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "class_logits",
    "cosine_alignment_loss",
    "dual_loss",
    "gradient_angle",
    "kl_teacher_student",
]


def cosine_alignment_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Stage 1: ``mean_b (1 - cos(student_b, teacher_b))`` (the teacher's features are detached)."""
    return (1.0 - F.cosine_similarity(student, teacher.detach(), dim=-1)).mean()


def class_logits(
    features: torch.Tensor, class_embeddings: torch.Tensor, logit_scale: float = 1.0
) -> torch.Tensor:
    """``logit_scale * norm(features) @ norm(class_embeddings)ᵀ``: cosines to the class prompts (official scale 1)."""
    return logit_scale * F.normalize(features, dim=-1) @ F.normalize(class_embeddings, dim=-1).t()


def kl_teacher_student(
    teacher_logits: torch.Tensor, student_logits: torch.Tensor, reduction: str = "batchmean"
) -> torch.Tensor:
    """``KL(softmax(z_t) || softmax(z_s))``.

    ``reduction="batchmean"``: summed over classes, averaged over the batch (the mathematical KL per sample, the
    default). ``"sum"``: summed over classes *and* the batch, as the official code does (``nn.KLDivLoss(reduction=
    "sum")``), so it equals ``batch_size x batchmean`` and its weight relative to the (batch-mean) CE grows with the
    batch size (x196 in the paper's runs).
    """
    if reduction not in ("batchmean", "sum"):
        raise ValueError(f"kl_reduction must be 'batchmean' or 'sum', got {reduction!r}")
    log_p_s = F.log_softmax(student_logits, dim=-1)
    p_t = F.softmax(teacher_logits.detach(), dim=-1)
    return F.kl_div(log_p_s, p_t, reduction=reduction)


def dual_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    labels: torch.Tensor,
    *,
    ce_weight: float = 1.0,
    kl_weight: float = 1.0,
    kl_reduction: str = "batchmean",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stage 2: ``ce_weight * CE(z_s, y) + kl_weight * KL(z_t || z_s)``. Returns ``(total, ce, kl)``."""
    ce = F.cross_entropy(student_logits, labels)
    if teacher_logits is None or kl_weight == 0:
        kl = ce.new_zeros(())
    else:
        kl = kl_teacher_student(teacher_logits, student_logits, kl_reduction)
    return ce_weight * ce + kl_weight * kl, ce, kl


def gradient_angle(loss_a: torch.Tensor, loss_b: torch.Tensor, params: list[torch.Tensor]) -> float:
    """Angle in degrees between the flattened gradients of two losses w.r.t. ``params`` (90 when one is zero).

    Used by the official gate: angle <= boundary -> step on CE only, else skip the batch."""

    def flat(loss):
        if not loss.requires_grad:
            return torch.cat([torch.zeros_like(p).flatten() for p in params])
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        return torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for g, p in zip(grads, params)])

    a, b = flat(loss_a), flat(loss_b)
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return 90.0
    cos = float((a @ b) / (na * nb))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))
