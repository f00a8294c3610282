"""The IB objective: CE(y, logits(z)) + beta * KL(N(mu, diag sigma^2) || N(mu_r, diag sigma_r^2)).

KL per dimension (closed form of two diagonal Gaussians)::

    log(sigma_r / sigma) - 1/2 + (sigma^2 + (mu - mu_r)^2) / (2 sigma_r^2)

``reduction="mean"`` averages over batch *and* dimensions (the official code: effective beta = beta / h_dim relative to
the usual form), ``"sum"`` sums over dimensions and averages over the batch (Alemi et al.'s VIB).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["gaussian_kl", "ib_loss"]


def gaussian_kl(mu, sigma, mu_r, sigma_r, reduction: str = "mean") -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(mu_r, sigma_r^2)) of diagonal Gaussians; ``reduction`` "mean", "sum" or "none"
    (``[B, D]``)."""
    kl = torch.log(sigma_r / sigma) - 0.5 + (sigma.pow(2) + (mu - mu_r).pow(2)) / (2 * sigma_r.pow(2))
    if reduction == "none":
        return kl
    if reduction == "mean":
        return kl.mean()
    if reduction == "sum":
        return kl.sum(-1).mean()
    raise ValueError(f"kl reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def ib_loss(out, labels, prior, beta: float, reduction: str = "mean") -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, kl)`` for an :class:`~ibrobust.model.IBOutput`; without a bottleneck (``out.mu`` is None) the KL is 0
    and the loss is plain cross-entropy."""
    ce = F.cross_entropy(out.logits, labels)
    if out.mu is None:
        return ce, ce.new_zeros(())
    mu_r, sigma_r = prior
    kl = gaussian_kl(out.mu, out.sigma, mu_r, sigma_r, reduction)
    return ce + beta * kl, kl
