"""``nn.Module`` wrappers of the multi-step neurons (stateless over a call, spikingjelly-like constructor)."""

from __future__ import annotations

import torch
from torch import nn

from .functional import neuron_multi_step
from .surrogate import resolve_surrogate

__all__ = ["IF", "LIF"]


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
        if step_mode != "m":
            raise ValueError("only step_mode='m' (whole [T, B, ...] sequence per call) is supported")
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

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``[T, B, ...]`` input current -> ``[T, B, ...]`` spikes (0/1). No state survives the call."""
        return neuron_multi_step(
            x_seq,
            neuron=self._neuron,
            tau=self.tau,
            v_threshold=self.v_threshold,
            v_reset=self.v_reset,
            decay_input=self.decay_input,
            surrogate=self.surrogate,
            alpha=self.alpha,
            detach_reset=self.detach_reset,
            backend=self.backend,
        )

    def reset(self) -> None:
        """No-op: the neuron keeps no state between calls (kept so ported ``reset_net`` code still runs)."""

    def extra_repr(self) -> str:
        tau = f"tau={self.tau}, " if self._neuron == "lif" else ""
        return (
            f"{tau}v_threshold={self.v_threshold}, v_reset={self.v_reset}, surrogate={self.surrogate}"
            f"(alpha={self.alpha}), detach_reset={self.detach_reset}, backend={self.backend}"
        )


class LIF(_MultiStepNeuron):
    """Multi-step LIF neuron module; see :func:`tenfold_core.spiking.lif_multi_step` for the arguments.

    ``LIF(tau=2.0, v_threshold=1.0, v_reset=0.0, decay_input=True, surrogate="atan", alpha=None,
    detach_reset=True, backend="auto", step_mode="m")``. ``forward([T, B, ...]) -> spikes``; ``reset()`` is a no-op.
    """

    _neuron = "lif"

    def __init__(self, tau: float = 2.0, **kwargs) -> None:
        super().__init__(tau=tau, **kwargs)


class IF(_MultiStepNeuron):
    """Multi-step integrate-and-fire neuron module (``H = V + X``); arguments as :class:`LIF` without ``tau``
    and ``decay_input``."""

    _neuron = "if"

    def __init__(self, **kwargs) -> None:
        if "tau" in kwargs or "decay_input" in kwargs:
            raise TypeError("IF takes no tau/decay_input")
        super().__init__(**kwargs)
