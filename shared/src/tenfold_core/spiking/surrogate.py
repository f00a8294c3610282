"""Surrogate gradients: Heaviside forward, smooth derivative backward.

Every surrogate is a smooth "primitive" ``g(x)`` (a sigmoid-like curve from 0 to 1) whose derivative ``g'(x)``
replaces the zero/undefined derivative of the Heaviside step ``Θ(x) = 1[x >= 0]`` in the backward pass.
Formulas and default ``alpha`` follow spikingjelly's ``activation_based.surrogate`` classes:

=====================  ============================================  =========================================  =====
name                   primitive g(x)                                 derivative g'(x)                            alpha
=====================  ============================================  =========================================  =====
``atan``               ``atan(pi/2 * a * x) / pi + 1/2``              ``(a/2) / (1 + (pi/2 * a * x)^2)``          2.0
``sigmoid``            ``sigmoid(a * x)``                             ``a * s * (1 - s)``, ``s = sigmoid(a x)``   4.0
``piecewise_quadratic````0 / -a^2/2 x|x| + a x + 1/2 / 1``              ``max(a - a^2 |x|, 0)``                     1.0
``soft_sign``          ``a x / (2 (1 + |a x|)) + 1/2``                ``1 / (2 a (1/a + |x|)^2)``                 2.0
``erf``                ``(1 + erf(a x)) / 2``                         ``a / sqrt(pi) * exp(-(a x)^2)``            2.0
``piecewise_exp``      ``exp(a x)/2`` (x<0), ``1 - exp(-a x)/2``       ``(a/2) * exp(-a |x|)``                     1.0
=====================  ============================================  =========================================  =====
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["SURROGATES", "Surrogate", "heaviside", "resolve_surrogate", "surrogate_by_id", "surrogate_grad"]


@dataclass(frozen=True)
class Surrogate:
    """A named surrogate: integer id (used by the fused kernels), default alpha, derivative and primitive."""

    name: str
    sid: int
    default_alpha: float
    grad: Callable[[torch.Tensor, float], torch.Tensor]
    primitive: Callable[[torch.Tensor, float], torch.Tensor]


def _atan_grad(x: torch.Tensor, a: float) -> torch.Tensor:
    z = x * (math.pi / 2 * a)
    return (a / 2) / (1 + z * z)


def _atan_prim(x: torch.Tensor, a: float) -> torch.Tensor:
    return torch.atan(x * (math.pi / 2 * a)) / math.pi + 0.5


def _sigmoid_grad(x: torch.Tensor, a: float) -> torch.Tensor:
    s = torch.sigmoid(x * a)
    return (1 - s) * s * a


def _sigmoid_prim(x: torch.Tensor, a: float) -> torch.Tensor:
    return torch.sigmoid(x * a)


def _pq_grad(x: torch.Tensor, a: float) -> torch.Tensor:
    return (a - (a * a) * x.abs()).clamp_min(0)


def _pq_prim(x: torch.Tensor, a: float) -> torch.Tensor:
    mid = -(a * a / 2) * x * x.abs() + a * x + 0.5
    return torch.where(x < -1 / a, torch.zeros_like(x), torch.where(x > 1 / a, torch.ones_like(x), mid))


def _softsign_grad(x: torch.Tensor, a: float) -> torch.Tensor:
    w = (1 / a) + x.abs()
    return 1 / ((2 * a) * w * w)


def _softsign_prim(x: torch.Tensor, a: float) -> torch.Tensor:
    ax = x * a
    return ax / (2 * (1 + ax.abs())) + 0.5


def _erf_grad(x: torch.Tensor, a: float) -> torch.Tensor:
    z = x * a
    return (a / math.sqrt(math.pi)) * torch.exp(-z * z)


def _erf_prim(x: torch.Tensor, a: float) -> torch.Tensor:
    return (1 + torch.erf(x * a)) / 2


def _pexp_grad(x: torch.Tensor, a: float) -> torch.Tensor:
    return (a / 2) * torch.exp(-a * x.abs())


def _pexp_prim(x: torch.Tensor, a: float) -> torch.Tensor:
    e = torch.exp(-a * x.abs()) / 2
    return torch.where(x < 0, e, 1 - e)


#: Registry of surrogates by name. The ``sid`` values are shared with the fused CPU/Triton kernels.
SURROGATES: dict[str, Surrogate] = {
    s.name: s
    for s in (
        Surrogate("sigmoid", 0, 4.0, _sigmoid_grad, _sigmoid_prim),
        Surrogate("atan", 1, 2.0, _atan_grad, _atan_prim),
        Surrogate("piecewise_quadratic", 2, 1.0, _pq_grad, _pq_prim),
        Surrogate("soft_sign", 3, 2.0, _softsign_grad, _softsign_prim),
        Surrogate("erf", 4, 2.0, _erf_grad, _erf_prim),
        Surrogate("piecewise_exp", 5, 1.0, _pexp_grad, _pexp_prim),
    )
}


def resolve_surrogate(surrogate: str, alpha: float | None = None) -> tuple[Surrogate, float]:
    """Look up a surrogate by name and fill in its default ``alpha``.

    Args:
        surrogate: one of ``SURROGATES`` (case-insensitive; ``-`` and ``_`` are interchangeable).
        alpha: sharpness; ``None`` selects the spikingjelly default for that surrogate.

    Returns:
        ``(Surrogate, alpha)``. Raises ``ValueError`` for an unknown name or a non-positive alpha.
    """
    key = str(surrogate).lower().replace("-", "_")
    if key not in SURROGATES:
        raise ValueError(f"unknown surrogate {surrogate!r}; choose one of {sorted(SURROGATES)}")
    sur = SURROGATES[key]
    a = sur.default_alpha if alpha is None else float(alpha)
    if not a > 0:
        raise ValueError(f"alpha must be > 0, got {a}")
    return sur, a


def surrogate_constants(sid: int, alpha: float) -> tuple[float, float]:
    """Constants ``(c1, c2)`` the fused kernels use for surrogate ``sid`` (see ``_cpu_kernel._sg_row``)."""
    if sid == 0:  # sigmoid
        return alpha, 0.0
    if sid == 1:  # atan
        return math.pi / 2 * alpha, alpha / 2
    if sid == 2:  # piecewise quadratic
        return alpha, alpha * alpha
    if sid == 3:  # soft sign
        return 1 / alpha, 2 * alpha
    if sid == 4:  # erf
        return alpha, alpha / math.sqrt(math.pi)
    return alpha, alpha / 2  # piecewise exp


def surrogate_grad(x: torch.Tensor, surrogate: str = "atan", alpha: float | None = None) -> torch.Tensor:
    """The surrogate derivative ``g'(x)`` evaluated elementwise (no autograd involved)."""
    sur, a = resolve_surrogate(surrogate, alpha)
    return sur.grad(x, a)


class _SurrogateStep(torch.autograd.Function):
    """Forward: Heaviside(x >= 0) (or the smooth primitive); backward: grad * g'(x)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, sid: int, alpha: float, spiking: bool) -> torch.Tensor:
        sur = _BY_ID[sid]
        ctx.save_for_backward(x)
        ctx.sid, ctx.alpha = sid, alpha
        if spiking:
            return (x >= 0).to(x.dtype)
        return sur.primitive(x, alpha)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        grad = None
        if ctx.needs_input_grad[0]:
            grad = grad_out * _BY_ID[ctx.sid].grad(x, ctx.alpha)
        return grad, None, None, None


_BY_ID = {s.sid: s for s in SURROGATES.values()}


def surrogate_by_id(sid: int) -> Surrogate:
    """The :class:`Surrogate` with kernel id ``sid`` (the torch fallbacks of the fused kernels use its ``grad``)."""
    return _BY_ID[int(sid)]


def heaviside(
    x: torch.Tensor, surrogate: str = "atan", alpha: float | None = None, *, spiking: bool = True
) -> torch.Tensor:
    """Spike function ``Θ(x) = 1[x >= 0]`` with a surrogate gradient.

    Args:
        x: any tensor (floating point).
        surrogate: surrogate name (see ``SURROGATES``); default ``"atan"`` (SpikeBERT turns embeddings into spikes
            with ``heaviside(emb, "atan")``).
        alpha: sharpness; ``None`` = spikingjelly's default for that surrogate.
        spiking: if ``False`` the forward returns the smooth primitive instead of the step (its exact derivative
            is the surrogate gradient; useful for ``gradcheck`` and annealing).

    Returns:
        A tensor like ``x`` holding 0/1 (``spiking=True``); the backward multiplies by ``g'(x)``.
    """
    sur, a = resolve_surrogate(surrogate, alpha)
    return _SurrogateStep.apply(x, sur.sid, a, spiking)
