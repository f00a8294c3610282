"""``nn.Module`` neurons (spikingjelly-like constructors) and the :func:`make_neuron` factory.

- ``LIF`` / ``IF``: ``step_mode="m"`` (default) takes a whole ``[T, B, ...]`` sequence per call and keeps no state
  between calls; ``step_mode="s"`` takes one step ``[B, ...]`` per call and keeps the membrane in ``self.v``
  (streaming inference, spikingjelly's single-step mode) until :meth:`reset`. The same state is explicit in
  :func:`tenfold_core.spiking.lif_step`.
- ``PLIF``: LIF with a learnable time constant (spikingjelly's ``ParametricLIFNode``): ``1/tau = sigmoid(w)``,
  ``w`` initialised at ``-log(tau - 1)``; runs on the reference kernel (torch ops).
- ``LayerNormLIF``: ``LayerNorm`` over the feature dim followed by a LIF/IF (spikebert's ``Linear -> LN -> LIF``
  tail), fused on CPU (:func:`tenfold_core.spiking.layernorm_lif_multi_step`); a neuron module, so
  :class:`~tenfold_core.spiking.FiringRateMonitor` sees its spikes.
- ``Heaviside``: the stateless spike encoder ``Θ(x >= 0)`` with a surrogate gradient, as a module so that
  :class:`~tenfold_core.spiking.FiringRateMonitor` sees it (SpikeBERT's embedding spikes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .config import NeuronConfig, resolve_neuron_config
from .functional import layernorm_neuron_multi_step, neuron_multi_step
from .surrogate import heaviside, resolve_surrogate

__all__ = ["IF", "LIF", "PLIF", "Heaviside", "LayerNormLIF", "make_neuron"]


class _MultiStepNeuron(nn.Module):
    _neuron = "lif"

    def __init__(
        self,
        *,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        decay_input: bool = True,
        surrogate: str = "atan",
        alpha: float | None = None,
        detach_reset: bool = True,
        backend: str = "auto",
        step_mode: str = "m",
    ) -> None:
        super().__init__()
        if step_mode not in ("m", "s"):
            raise ValueError(
                f"step_mode must be 'm' (a [T, B, ...] sequence per call) or 's' (one step), got {step_mode!r}"
            )
        sur, a = resolve_surrogate(surrogate, alpha)
        self.tau = float(tau)
        self.v_threshold = float(v_threshold)
        self.v_reset = None if v_reset is None else float(v_reset)
        self.decay_input = bool(decay_input)
        self.surrogate = sur.name
        self.alpha = a
        self.detach_reset = bool(detach_reset)
        self.backend = backend
        self.step_mode = step_mode
        self.v: torch.Tensor | None = None  # membrane state of step_mode="s"

    def _run(self, x_seq: torch.Tensor, v0: torch.Tensor | None, return_v: bool):
        return neuron_multi_step(
            x_seq, neuron=self._neuron, tau=self.tau, v_threshold=self.v_threshold, v_reset=self.v_reset,
            decay_input=self.decay_input, surrogate=self.surrogate, alpha=self.alpha,
            detach_reset=self.detach_reset, v0=v0, return_v=return_v, backend=self.backend,
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``step_mode="m"``: ``[T, B, ...]`` current -> ``[T, B, ...]`` spikes, no state kept.
        ``step_mode="s"``: ``[B, ...]`` current of one step -> spikes; the membrane carries over to the next call."""
        if self.step_mode == "m":
            return self._run(x, None, False)
        v0 = self.v
        if v0 is not None and v0.shape != x.shape:
            raise ValueError(
                f"step input {tuple(x.shape)} differs from the state {tuple(v0.shape)}: call reset()"
            )
        s, v = self._run(x.unsqueeze(0), v0, True)
        self.v = v[0]
        return s[0]

    def reset(self) -> None:
        """Forget the membrane state (``step_mode="s"``); a no-op in multi-step mode."""
        self.v = None

    def extra_repr(self) -> str:
        tau = f"tau={self.tau}, " if self._neuron != "if" else ""
        return (
            f"{tau}v_threshold={self.v_threshold}, v_reset={self.v_reset}, surrogate={self.surrogate}"
            f"(alpha={self.alpha}), detach_reset={self.detach_reset}, backend={self.backend}, step_mode={self.step_mode}"
        )


class LIF(_MultiStepNeuron):
    """Leaky integrate-and-fire neuron; see :func:`tenfold_core.spiking.lif_multi_step` for the arguments.

    ``LIF(tau=2.0, v_threshold=1.0, v_reset=0.0, decay_input=True, surrogate="atan", alpha=None,
    detach_reset=True, backend="auto", step_mode="m")``; ``reset()`` clears the single-step state.
    """

    _neuron = "lif"

    def __init__(self, tau: float = 2.0, **kwargs) -> None:
        super().__init__(tau=tau, **kwargs)


class IF(_MultiStepNeuron):
    """Integrate-and-fire neuron (``H = V + X``); arguments as :class:`LIF` without ``tau`` and ``decay_input``."""

    _neuron = "if"

    def __init__(self, **kwargs) -> None:
        if "tau" in kwargs or "decay_input" in kwargs:
            raise TypeError("IF takes no tau/decay_input")
        super().__init__(**kwargs)


class PLIF(_MultiStepNeuron):
    """LIF with a learnable time constant: ``1/tau = sigmoid(w)``, one ``w`` per module, initialised at ``tau``.

    Same arguments as :class:`LIF` (``tau`` is the initial value); :attr:`learned_tau` reads the current one.
    Runs on torch ops (the fused kernels take a fixed tau).
    """

    _neuron = "plif"

    def __init__(self, tau: float = 2.0, **kwargs) -> None:
        kwargs.pop("backend", None)
        super().__init__(tau=tau, backend="reference", **kwargs)
        if not tau > 1.0:
            raise ValueError(f"tau must be > 1, got {tau}")
        self.w = nn.Parameter(torch.tensor(-math.log(tau - 1.0)))

    @property
    def learned_tau(self) -> float:
        return float(1.0 / torch.sigmoid(self.w.detach()))

    def _run(self, x_seq, v0, return_v):
        k = torch.sigmoid(self.w).to(x_seq.dtype)
        vr = 0.0 if self.v_reset is None else self.v_reset
        v = torch.full_like(x_seq[0], vr) if v0 is None else v0.to(x_seq.dtype).expand_as(x_seq[0])
        spikes, vs = [], []
        for t in range(x_seq.shape[0]):
            x = x_seq[t]
            h = v + (x - (v - vr)) * k if self.decay_input else v - (v - vr) * k + x
            s = heaviside(h - self.v_threshold, self.surrogate, self.alpha)
            sr = s.detach() if self.detach_reset else s
            v = h - sr * self.v_threshold if self.v_reset is None else sr * vr + (1 - sr) * h
            spikes.append(s)
            vs.append(v)
        s_seq = torch.stack(spikes) if spikes else torch.empty_like(x_seq)
        if return_v:
            return s_seq, (torch.stack(vs) if vs else torch.empty_like(x_seq))
        return s_seq


class LayerNormLIF(_MultiStepNeuron):
    """``LayerNorm(dim)`` over the last dim, then a multi-step LIF (or IF) neuron, fused into one kernel on CPU.

    Equal to ``nn.LayerNorm(dim, eps, elementwise_affine, bias)`` followed by ``make_neuron(neuron, **neuron_kwargs)``
    (same parameters ``weight`` / ``bias``, same spikes and gradients; see
    :func:`tenfold_core.spiking.layernorm_lif_multi_step` for the numerics), without materialising the LayerNorm
    output. Input ``[T, ..., dim]`` (``step_mode="m"``) or ``[..., dim]`` per step (``step_mode="s"``, the
    membrane kept in ``self.v`` until :meth:`reset`).

    Args:
        dim: feature width D.
        eps, elementwise_affine, bias: as :class:`torch.nn.LayerNorm`.
        neuron: a :class:`~tenfold_core.spiking.NeuronConfig` (or mapping); ``kind`` ``lif`` or ``if`` (``plif``,
            whose tau is learned, is not fused: use ``nn.LayerNorm`` + :class:`PLIF`).
        step_mode: ``"m"`` or ``"s"``, as :class:`LIF`.
        **neuron_kwargs: single neuron fields (``tau=``, ``v_threshold=``, ``backend=`` ...) overriding ``neuron``.
    """

    def __init__(
        self,
        dim: int,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        *,
        neuron: NeuronConfig | Mapping[str, Any] | None = None,
        step_mode: str = "m",
        **neuron_kwargs: Any,
    ) -> None:
        c = resolve_neuron_config(neuron, neuron_kwargs)
        if c.kind == "plif":
            raise ValueError(
                "LayerNormLIF fuses a fixed-tau neuron (lif or if); for plif use nn.LayerNorm + PLIF"
            )
        super().__init__(
            tau=c.tau, v_threshold=c.v_threshold, v_reset=c.v_reset, decay_input=c.decay_input,
            surrogate=c.surrogate, alpha=c.alpha, detach_reset=c.detach_reset, backend=c.backend,
            step_mode=step_mode,
        )  # fmt: skip
        self._neuron = c.kind
        self.dim, self.eps = int(dim), float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        self.weight = nn.Parameter(torch.ones(self.dim)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.zeros(self.dim)) if elementwise_affine and bias else None

    def _run(self, x_seq: torch.Tensor, v0: torch.Tensor | None, return_v: bool):
        return layernorm_neuron_multi_step(
            x_seq, self.weight, self.bias, self.eps, neuron=self._neuron, tau=self.tau,
            v_threshold=self.v_threshold, v_reset=self.v_reset, decay_input=self.decay_input,
            surrogate=self.surrogate, alpha=self.alpha, detach_reset=self.detach_reset, v0=v0, return_v=return_v,
            backend=self.backend,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return (
            f"{self.dim}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            + super().extra_repr()
        )


class Heaviside(nn.Module):
    """Stateless spike encoder ``Θ(x >= 0)`` with a surrogate gradient (any shape in, 0/1 out)."""

    def __init__(self, surrogate: str = "atan", alpha: float | None = None) -> None:
        super().__init__()
        sur, a = resolve_surrogate(surrogate, alpha)
        self.surrogate, self.alpha = sur.name, a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return heaviside(x, self.surrogate, self.alpha)

    def extra_repr(self) -> str:
        return f"surrogate={self.surrogate}(alpha={self.alpha})"


def make_neuron(
    neuron: NeuronConfig | Mapping[str, Any] | None = None, step_mode: str = "m", **overrides: Any
) -> nn.Module:
    """Build the neuron module a :class:`NeuronConfig` describes (``overrides`` change single fields, e.g. the
    attention LIF's ``v_threshold``)."""
    c = resolve_neuron_config(neuron, overrides)
    common = dict(
        v_threshold=c.v_threshold, v_reset=c.v_reset, surrogate=c.surrogate, alpha=c.alpha,
        detach_reset=c.detach_reset, backend=c.backend, step_mode=step_mode,
    )  # fmt: skip
    if c.kind == "if":
        return IF(**common)
    cls = PLIF if c.kind == "plif" else LIF
    return cls(tau=c.tau, decay_input=c.decay_input, **common)
