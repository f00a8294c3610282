"""Torch-free neuron settings: one :class:`NeuronConfig` travels through every spiking block (spikingjelly's
"pass the neuron once" convention), and packages can use it directly as a CLI/YAML section without importing torch."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from tenfold_core.cli import arg

__all__ = ["NeuronConfig", "resolve_neuron_config", "tau_to_beta", "beta_to_tau"]

_SURROGATES = ("atan", "sigmoid", "piecewise_quadratic", "soft_sign", "erf", "piecewise_exp")


@dataclass
class NeuronConfig:
    """Settings shared by every spiking neuron of a model.

    ``kind``: ``lif`` (leaky integrate-and-fire), ``if`` (no leak) or ``plif`` (LIF with a learnable time constant,
    one per neuron module, initialised at ``tau``; spikingjelly's ``ParametricLIFNode``). The dynamics are those of
    :func:`tenfold_core.spiking.lif_multi_step`. snnTorch users: snnTorch's ``Leaky(beta)`` with
    ``decay_input=False`` is ``beta = 1 - 1/tau`` (see :func:`tau_to_beta`).
    """

    kind: Literal["lif", "if", "plif"] = arg("lif", help="neuron model: lif, if, or plif (learnable tau)")
    tau: float = arg(2.0, help="membrane time constant (> 1; the initial value for plif)")
    v_threshold: float = arg(1.0, help="firing threshold V_th")
    v_reset: float | None = arg(0.0, help="hard-reset potential (null: soft reset, subtract V_th)")
    decay_input: bool = arg(True, help="H = V + (X - (V - V_r))/tau (true) or H = V - (V - V_r)/tau + X")
    surrogate: str = arg("atan", help="surrogate gradient: " + ", ".join(_SURROGATES))
    alpha: float | None = arg(None, help="surrogate sharpness (null: spikingjelly's default)")
    detach_reset: bool = arg(True, help="detach the spike in the reset term from the graph")
    backend: Literal["auto", "fast", "reference", "spikingjelly"] = arg(
        "auto", help="kernel: auto (fused when available), fast, reference or spikingjelly"
    )

    def __post_init__(self):
        if not (isinstance(self.tau, (int, float)) and math.isfinite(self.tau) and self.tau > 1.0):
            raise ValueError(f"neuron.tau must be a finite number > 1, got {self.tau}")
        if not (isinstance(self.v_threshold, (int, float)) and math.isfinite(self.v_threshold)):
            raise ValueError(f"neuron.v_threshold must be a finite number, got {self.v_threshold}")
        if self.v_reset is not None and not math.isfinite(self.v_reset):
            raise ValueError(f"neuron.v_reset must be finite or null, got {self.v_reset}")
        if self.surrogate not in _SURROGATES:
            raise ValueError(
                f"neuron.surrogate must be one of {', '.join(_SURROGATES)}, got {self.surrogate!r}"
            )
        if self.alpha is not None and not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"neuron.alpha must be > 0 or null, got {self.alpha}")
        if self.kind not in ("lif", "if", "plif"):
            raise ValueError(f"neuron.kind must be lif, if or plif, got {self.kind!r}")

    def replace(self, **changes: Any) -> NeuronConfig:
        return replace(self, **changes)


_FIELDS = None


def resolve_neuron_config(
    neuron: NeuronConfig | Mapping[str, Any] | None, overrides: Mapping[str, Any]
) -> NeuronConfig:
    """A :class:`NeuronConfig` from ``neuron`` (a config, a mapping or None) updated with keyword ``overrides``
    (the old per-block keyword arguments ``tau=``, ``v_threshold=`` ...). Unknown keys raise ``TypeError``."""
    global _FIELDS
    if _FIELDS is None:
        _FIELDS = {f.name for f in fields(NeuronConfig)}
    bad = set(overrides) - _FIELDS
    if bad:
        raise TypeError(f"unknown neuron argument {sorted(bad)[0]!r} (known: {', '.join(sorted(_FIELDS))})")
    if neuron is None:
        base = NeuronConfig()
    elif isinstance(neuron, NeuronConfig):
        base = neuron
    elif isinstance(neuron, Mapping):
        bad = set(neuron) - _FIELDS
        if bad:
            raise TypeError(f"unknown neuron argument {sorted(bad)[0]!r}")
        base = NeuronConfig(**dict(neuron))
    else:
        raise TypeError(f"neuron must be a NeuronConfig or a mapping, got {type(neuron).__name__}")
    return replace(base, **overrides) if overrides else base


def tau_to_beta(tau: float) -> float:
    """snnTorch's decay ``beta`` of a ``decay_input=False`` LIF with time constant ``tau``: ``1 - 1/tau``."""
    return 1.0 - 1.0 / tau


def beta_to_tau(beta: float) -> float:
    """Inverse of :func:`tau_to_beta` (``0 < beta < 1``)."""
    if not 0.0 < beta < 1.0:
        raise ValueError(f"beta must be in (0, 1), got {beta}")
    return 1.0 / (1.0 - beta)
