"""Firing-rate monitoring and MAC/AC energy estimation (Spikformer-style accounting).

Energy model: ``E = E_MAC * #MAC + E_AC * #AC`` with the spikingjelly ``ComputeEnergyCostConfig`` presets
(45 nm, Horowitz 2014): fp32 4.6 / 0.9 pJ, fp16 1.5 / 0.4 pJ, int8 0.23 / 0.03 pJ (E_MAC / E_AC).

Counted layers: ``nn.Linear``, ``nn.Conv1d/2d/3d`` and :class:`~tenfold_core.spiking.layer.SpikeMatMul`
(the attention products). For each call the input is classified:

- ``spike``: every element is 0 or 1 -> synaptic operations (accumulates): Linear ``#AC = nnz(x) * out_features``
  (exact); Conv ``#AC = firing_rate * dense MACs`` (Spikformer convention; ignores borders); MatMul ``a @ b``
  ``#AC = nnz(a) * n`` if ``a`` is binary, else ``nnz(b) * m`` if ``b`` is binary.
- ``integer`` (e.g. residual sums of spikes) and ``real`` inputs -> dense MACs by default. With
  ``integer_as_ac=True`` integer inputs count ``sum(|x|)`` accumulates per output instead (one AC per unit of value).
- ``ann=True`` counts every operation as a dense MAC (for the ANN counterpart the papers compare with).

Time steps are part of the tensors (``[T, B, ...]``), so the counts already include the factor T. Bias additions,
norms, neurons and elementwise ops are not counted; an embedding lookup costs nothing (it is not a layer here).
Counts are per forward call: use :meth:`EnergyReport.per_sample` to divide by the batch size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from .layer import SpikeMatMul
from .neuron import Heaviside, _MultiStepNeuron

__all__ = [
    "ENERGY_PRESETS",
    "EnergyEstimator",
    "EnergyReport",
    "FiringRateMonitor",
    "LayerEnergy",
    "estimate_energy",
]

#: ``precision -> (E_MAC pJ, E_AC pJ)``, spikingjelly's ``ComputeEnergyCostConfig`` values.
ENERGY_PRESETS: dict[str, tuple[float, float]] = {
    "fp32": (4.6, 0.9),
    "fp16": (1.5, 0.4),
    "int8": (0.23, 0.03),
}


class FiringRateMonitor:
    """Record the firing rate (mean spike value) of every spiking neuron module through forward hooks.

    Usage::

        with FiringRateMonitor(model) as mon:
            model(x)
        mon.rates()   # {"blocks.0.attn.q.lif": 0.13, ...}

    Args:
        model: the network.
        module_types: which modules count as neurons (default: every neuron module, :class:`LIF`, :class:`IF`,
            :class:`PLIF`, and the :class:`Heaviside` spike encoder).
    """

    def __init__(
        self, model: nn.Module, module_types: tuple[type, ...] = (_MultiStepNeuron, Heaviside)
    ) -> None:
        self.model = model
        self._sum: dict[str, float] = {}
        self._count: dict[str, int] = {}
        self._handles = []
        for name, mod in model.named_modules():
            if isinstance(mod, module_types):
                self._handles.append(mod.register_forward_hook(self._hook(name or type(mod).__name__)))

    def _hook(self, name: str):
        def fn(_mod, _inp, out):
            o = out[0] if isinstance(out, tuple) else out
            with torch.no_grad():
                self._sum[name] = self._sum.get(name, 0.0) + float(o.detach().double().sum())
                self._count[name] = self._count.get(name, 0) + o.numel()

        return fn

    def rates(self) -> dict[str, float]:
        """Firing rate per neuron module (spikes / (elements x time steps)), accumulated since the last reset."""
        return {k: (self._sum[k] / self._count[k] if self._count[k] else 0.0) for k in self._sum}

    def mean_rate(self) -> float:
        """Element-weighted mean firing rate over all monitored neurons."""
        n = sum(self._count.values())
        return sum(self._sum.values()) / n if n else 0.0

    def reset(self) -> None:
        """Forget the accumulated counts."""
        self._sum.clear()
        self._count.clear()

    def remove(self) -> None:
        """Remove the hooks."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> FiringRateMonitor:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


@dataclass
class LayerEnergy:
    """Counts of one layer accumulated over the monitored forward calls."""

    name: str
    layer_type: str
    input_kind: str  # "spike", "integer", "real" or "mixed" (differed between calls)
    input_elements: int = 0
    input_nonzero: int = 0
    dense_macs: int = 0
    macs: int = 0
    acs: int = 0
    e_mac_pj: float = 4.6
    e_ac_pj: float = 0.9

    @property
    def firing_rate(self) -> float:
        """Fraction of non-zero input elements (the input spike rate for spike-fed layers)."""
        return self.input_nonzero / self.input_elements if self.input_elements else 0.0

    @property
    def energy_pj(self) -> float:
        """``E_MAC * macs + E_AC * acs`` in picojoules."""
        return self.e_mac_pj * self.macs + self.e_ac_pj * self.acs


@dataclass
class EnergyReport:
    """Per-layer table and totals of an energy estimate."""

    layers: list[LayerEnergy] = field(default_factory=list)
    precision: str = "fp32"
    ann: bool = False

    @property
    def macs(self) -> int:
        """Total multiply-accumulates."""
        return sum(l.macs for l in self.layers)

    @property
    def acs(self) -> int:
        """Total accumulates (synaptic operations)."""
        return sum(l.acs for l in self.layers)

    @property
    def dense_macs(self) -> int:
        """Total MACs if every layer ran densely (same tensors, i.e. including the T factor)."""
        return sum(l.dense_macs for l in self.layers)

    @property
    def energy_pj(self) -> float:
        """Total energy in picojoules."""
        return sum(l.energy_pj for l in self.layers)

    @property
    def energy_mj(self) -> float:
        """Total energy in millijoules."""
        return self.energy_pj * 1e-9

    def per_sample(self, batch_size: int) -> EnergyReport:
        """A copy with every count divided by ``batch_size`` (float counts)."""
        layers = [
            replace(
                l,
                input_elements=l.input_elements / batch_size,
                input_nonzero=l.input_nonzero / batch_size,
                dense_macs=l.dense_macs / batch_size,
                macs=l.macs / batch_size,
                acs=l.acs / batch_size,
            )
            for l in self.layers
        ]
        return EnergyReport(layers, self.precision, self.ann)

    def ratio_to(self, other: EnergyReport) -> float:
        """``self.energy / other.energy`` (e.g. SNN energy as a fraction of its ANN counterpart)."""
        return self.energy_pj / other.energy_pj if other.energy_pj else math.inf

    def as_dicts(self) -> list[dict]:
        """One dict per layer (for CSV/JSON reports)."""
        return [
            dict(
                name=l.name,
                type=l.layer_type,
                input=l.input_kind,
                firing_rate=l.firing_rate,
                dense_macs=l.dense_macs,
                macs=l.macs,
                acs=l.acs,
                energy_pj=l.energy_pj,
            )
            for l in self.layers
        ]

    def table(self) -> str:
        """A fixed-width per-layer table with totals."""
        head = (
            f"{'layer':<40} {'type':<12} {'input':<8} {'rate':>6} {'MACs':>14} {'ACs':>14} {'energy uJ':>11}"
        )
        rows = [head, "-" * len(head)]
        for l in self.layers:
            rows.append(
                f"{l.name[:40]:<40} {l.layer_type[:12]:<12} {l.input_kind:<8} {l.firing_rate:6.3f} "
                f"{l.macs:>14,.0f} {l.acs:>14,.0f} {l.energy_pj * 1e-6:11.4f}"
            )
        rows.append("-" * len(head))
        mode = "ANN (all MAC)" if self.ann else "SNN"
        rows.append(
            f"{'total ' + mode + ' ' + self.precision:<40} {'':<12} {'':<8} {'':>6} {self.macs:>14,.0f} "
            f"{self.acs:>14,.0f} {self.energy_pj * 1e-6:11.4f}"
        )
        return "\n".join(rows)


def _kind(x: torch.Tensor) -> str:
    if not x.is_floating_point():
        return "integer"
    if x.numel() == 0 or bool(((x == 0) | (x == 1)).all()):
        return "spike"
    if bool((x == torch.round(x)).all()):
        return "integer"
    return "real"


def _conv_dense_macs(mod: nn.modules.conv._ConvNd, out: torch.Tensor) -> int:
    per_out = (mod.in_channels // mod.groups) * math.prod(mod.kernel_size)
    return out.numel() * per_out


class EnergyEstimator:
    """Hook-based MAC/AC counter. Use as a context manager around the forward calls to measure.

    Args:
        model: the network (SNN or ANN).
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"`` (see ``ENERGY_PRESETS``), or a tuple ``(E_MAC, E_AC)`` in pJ.
        ann: count every operation as a dense MAC (ANN counterpart).
        integer_as_ac: count integer-valued (non-binary) inputs as ``sum(|x|)`` accumulates instead of MACs.
        layer_types: module types to count (default Linear, Conv1d/2d/3d, SpikeMatMul).
    """

    def __init__(
        self,
        model: nn.Module,
        precision: str | tuple[float, float] = "fp32",
        *,
        ann: bool = False,
        integer_as_ac: bool = False,
        layer_types: tuple[type, ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, SpikeMatMul),
    ) -> None:
        if isinstance(precision, str):
            if precision not in ENERGY_PRESETS:
                raise ValueError(f"precision must be one of {sorted(ENERGY_PRESETS)} or (E_MAC, E_AC)")
            self.e_mac, self.e_ac = ENERGY_PRESETS[precision]
            self.precision = precision
        else:
            self.e_mac, self.e_ac = (float(precision[0]), float(precision[1]))
            self.precision = f"custom({self.e_mac}/{self.e_ac} pJ)"
        self.ann, self.integer_as_ac = ann, integer_as_ac
        self._layers: dict[str, LayerEnergy] = {}
        self._handles = []
        for name, mod in model.named_modules():
            if isinstance(mod, layer_types):
                self._handles.append(mod.register_forward_hook(self._hook(name or type(mod).__name__)))

    def _entry(self, name: str, mod: nn.Module, kind: str) -> LayerEnergy:
        e = self._layers.get(name)
        if e is None:
            e = LayerEnergy(name, type(mod).__name__, kind, e_mac_pj=self.e_mac, e_ac_pj=self.e_ac)
            self._layers[name] = e
        elif e.input_kind != kind:
            e.input_kind = "mixed"
        return e

    def _hook(self, name: str):
        def fn(mod, inputs, out):
            with torch.no_grad():
                self._count(name, mod, inputs, out)

        return fn

    def _count(self, name, mod, inputs, out) -> None:
        if isinstance(mod, SpikeMatMul):
            a, b = inputs[0].detach(), inputs[1].detach()
            m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
            batch = out.numel() // (m * n) if m * n else 0
            dense = batch * m * k * n
            ka, kb = _kind(a), _kind(b)
            kind = "spike" if "spike" in (ka, kb) else ("integer" if "real" not in (ka, kb) else "real")
            e = self._entry(name, mod, kind)
            ref = a if ka == "spike" else b
            e.input_elements += ref.numel()
            e.input_nonzero += int((ref != 0).sum())
            e.dense_macs += dense
            if self.ann:
                e.macs += dense
            elif ka == "spike":
                e.acs += int((a != 0).sum()) * n
            elif kb == "spike":
                e.acs += int((b != 0).sum()) * m
            elif kind == "integer" and self.integer_as_ac:
                e.acs += int(a.abs().sum()) * n
            else:
                e.macs += dense
            return
        x = inputs[0].detach()
        kind = _kind(x)
        e = self._entry(name, mod, kind)
        nnz = int((x != 0).sum())
        e.input_elements += x.numel()
        e.input_nonzero += nnz
        if isinstance(mod, nn.Linear):
            dense = x.numel() * mod.out_features
            per_unit = mod.out_features
        else:
            dense = _conv_dense_macs(mod, out)
            per_unit = dense / x.numel() if x.numel() else 0.0
        e.dense_macs += dense
        if self.ann or kind == "real" or (kind == "integer" and not self.integer_as_ac):
            e.macs += dense
        elif kind == "spike":
            e.acs += nnz * mod.out_features if isinstance(mod, nn.Linear) else round(nnz * per_unit)
        else:  # integer counted as accumulates, one per unit of |value|
            e.acs += round(float(x.abs().sum()) * per_unit)

    def report(self) -> EnergyReport:
        """The per-layer counts accumulated so far (layers in first-call order)."""
        return EnergyReport([replace(l) for l in self._layers.values()], self.precision, self.ann)

    def reset(self) -> None:
        """Forget the accumulated counts."""
        self._layers.clear()

    def remove(self) -> None:
        """Remove the hooks."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> EnergyEstimator:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


@torch.no_grad()
def estimate_energy(
    model: nn.Module,
    *inputs,
    precision: str | tuple[float, float] = "fp32",
    ann: bool = False,
    integer_as_ac: bool = False,
    **kwargs,
) -> EnergyReport:
    """Run ``model(*inputs, **kwargs)`` once (no grad) and return its :class:`EnergyReport`.

    ``ann=True`` counts every operation as a MAC (the ANN counterpart). Example::

        snn = estimate_energy(snn_model, x_spikes)            # SNN: MACs for real inputs, ACs for spikes
        ann = estimate_energy(ann_model, x, ann=True)          # ANN: all MACs
        print(snn.table(), snn.ratio_to(ann))
    """
    with EnergyEstimator(model, precision, ann=ann, integer_as_ac=integer_as_ac) as est:
        model(*inputs, **kwargs)
        return est.report()
