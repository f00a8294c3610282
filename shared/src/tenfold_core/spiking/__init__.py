"""Spiking neurons for Tenfold (``tenfold_core.spiking``).

- :mod:`.config`: ``NeuronConfig`` (torch-free): one object carries the neuron settings through every block.
- :mod:`.surrogate`: ``heaviside`` and the surrogate-gradient registry ``SURROGATES``.
- :mod:`.functional`: multi-step ``lif_multi_step`` / ``if_multi_step`` (reference + fused kernels) and the
  single-step ``lif_step`` with explicit state; ``layernorm_lif_multi_step`` (LayerNorm then LIF, fused on CPU).
- :mod:`.neuron`: ``LIF`` / ``IF`` / ``PLIF`` / ``LayerNormLIF`` modules (``step_mode="m"`` stateless, ``"s"``
  stateful), the ``Heaviside`` spike encoder and the ``make_neuron(NeuronConfig)`` factory.
- :mod:`.layer`: spiking Transformer blocks (``SpikingSelfAttention``, ``SpikingMLP``, ``SpikingTransformerBlock``).
- :mod:`.energy`: ``FiringRateMonitor``, ``EnergyEstimator`` / ``estimate_energy`` with fp32/fp16/int8 presets.

Importing this package is cheap (no torch, no numba): names load on first use. The fused CPU kernel needs numba
(``pip install tenfold-core[spiking]``); without it every neuron runs on the reference kernel, after one warning
naming the extra.
"""

from __future__ import annotations

import importlib

from .config import NeuronConfig, beta_to_tau, resolve_neuron_config, tau_to_beta

_LAZY = {
    "ENERGY_PRESETS": "energy",
    "EnergyEstimator": "energy",
    "EnergyReport": "energy",
    "FiringRateMonitor": "energy",
    "LayerEnergy": "energy",
    "estimate_energy": "energy",
    "available_backends": "functional",
    "if_multi_step": "functional",
    "lif_multi_step": "functional",
    "lif_step": "functional",
    "layernorm_lif_multi_step": "functional",
    "SpikeMatMul": "layer",
    "SpikingMLP": "layer",
    "SpikingSelfAttention": "layer",
    "SpikingTransformerBlock": "layer",
    "TokenNorm": "layer",
    "IF": "neuron",
    "LIF": "neuron",
    "PLIF": "neuron",
    "LayerNormLIF": "neuron",
    "Heaviside": "neuron",
    "make_neuron": "neuron",
    "SURROGATES": "surrogate",
    "heaviside": "surrogate",
    "surrogate_grad": "surrogate",
    "surrogate_by_id": "surrogate",
}

__all__ = [
    "NeuronConfig",
    "beta_to_tau",
    "resolve_neuron_config",
    "tau_to_beta",
    *_LAZY,
]


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'tenfold_core.spiking' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
