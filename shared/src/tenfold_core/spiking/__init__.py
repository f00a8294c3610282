"""Spiking neurons for Tenfold (``tenfold_core.spiking``).

- :mod:`.surrogate`: ``heaviside`` and the surrogate-gradient registry ``SURROGATES``.
- :mod:`.functional`: stateless multi-step ``lif_multi_step`` / ``if_multi_step`` (reference + fused kernels).
- :mod:`.neuron`: ``LIF`` / ``IF`` modules (no state between calls, no-op ``reset()``).
- :mod:`.layer`: spiking Transformer blocks (``SpikingSelfAttention``, ``SpikingMLP``, ``SpikingTransformerBlock``).
- :mod:`.energy`: ``FiringRateMonitor``, ``EnergyEstimator`` / ``estimate_energy`` with fp32/fp16/int8 presets.
"""

from .energy import (
    ENERGY_PRESETS,
    EnergyEstimator,
    EnergyReport,
    FiringRateMonitor,
    LayerEnergy,
    estimate_energy,
)
from .functional import available_backends, if_multi_step, lif_multi_step
from .layer import SpikeMatMul, SpikingMLP, SpikingSelfAttention, SpikingTransformerBlock, TokenNorm
from .neuron import IF, LIF
from .surrogate import SURROGATES, heaviside, surrogate_grad

__all__ = [
    "ENERGY_PRESETS",
    "IF",
    "LIF",
    "SURROGATES",
    "EnergyEstimator",
    "EnergyReport",
    "FiringRateMonitor",
    "LayerEnergy",
    "SpikeMatMul",
    "SpikingMLP",
    "SpikingSelfAttention",
    "SpikingTransformerBlock",
    "TokenNorm",
    "available_backends",
    "estimate_energy",
    "heaviside",
    "if_multi_step",
    "lif_multi_step",
    "surrogate_grad",
]
