"""DCKS losses: L = L_gen + w_emo L_emo + w_aux sum_r l_r (+ w_div L_div).

- ``generation_loss``: token cross-entropy over the reply. Labels come from the collate function with padding as
  -100 (ignored) by default; with ``ignore_padding=False`` they keep the pad id and padding counts, as in the
  official code (its CrossEntropyLoss had no ignore_index).
- ``emotion_loss``: 32-way cross-entropy of the emotion head.
- the auxiliary per-relation emotion losses (``DCKSEncoding.relation_losses``, gradients to the knowledge encoder only)
  are what the official code's backward calls inside ``forward`` added implicitly (weight 1).
- ``diversity_loss``: CEM's frequency-aware NLL: token weights w = 1 - RF/max(RF) (RF = relative frequency of the
  model's predicted tokens so far), rescaled to mean 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dcks.config import LossConfig

__all__ = ["generation_loss", "emotion_loss", "diversity_weights", "diversity_loss", "dcks_loss"]


def generation_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean token CE; positions labelled -100 are ignored (the collate function decides whether pads are)."""
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
    )


def emotion_loss(emotion_logits: torch.Tensor, emotion_labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(emotion_logits.float(), emotion_labels)


def diversity_weights(freq: torch.Tensor) -> torch.Tensor:
    """CEM's weights from token counts ``freq`` [V]: w = 1 - RF / max RF, normalised to mean 1."""
    total = freq.sum()
    if total <= 0:
        return torch.ones_like(freq, dtype=torch.float)
    rf = freq.float() / total
    w = 1.0 - rf / rf.max()
    return w / w.sum().clamp_min(1e-12) * w.numel()


def diversity_loss(logits: torch.Tensor, labels: torch.Tensor, freq: torch.Tensor) -> torch.Tensor:
    w = diversity_weights(freq).to(logits.device)
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), weight=w, ignore_index=-100
    )


def dcks_loss(logits, labels, enc, emotion_labels, cfg: LossConfig, freq: torch.Tensor | None = None):
    """The total loss and its parts (a dict of scalar tensors)."""
    parts = {
        "gen_loss": generation_loss(logits, labels),
        "emo_loss": emotion_loss(enc.emotion_logits, emotion_labels),
    }
    total = parts["gen_loss"] + cfg.emotion_weight * parts["emo_loss"]
    if cfg.aux_relation_loss_weight > 0:
        parts["aux_loss"] = enc.relation_losses.sum()
        total = total + cfg.aux_relation_loss_weight * parts["aux_loss"]
    if cfg.diversity_weight > 0 and freq is not None:
        parts["div_loss"] = diversity_loss(logits, labels, freq)
        total = total + cfg.diversity_weight * parts["div_loss"]
    parts["loss"] = total
    return parts
