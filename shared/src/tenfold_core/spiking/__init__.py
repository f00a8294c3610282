"""Spiking neurons for Tenfold (``tenfold_core.spiking``): stateless multi-step LIF/IF with fused kernels,
surrogate gradients, spiking Transformer blocks, firing-rate monitoring and energy estimation."""

from .functional import available_backends, if_multi_step, lif_multi_step
from .neuron import IF, LIF
from .surrogate import SURROGATES, heaviside, surrogate_grad

__all__ = [
    "IF",
    "LIF",
    "SURROGATES",
    "available_backends",
    "heaviside",
    "if_multi_step",
    "lif_multi_step",
    "surrogate_grad",
]
