"""Firing-rate monitor and MAC/AC energy estimator against hand counts."""

import pytest
import torch
from torch import nn

from tenfold_core.spiking import (
    ENERGY_PRESETS,
    LIF,
    EnergyEstimator,
    FiringRateMonitor,
    SpikeMatMul,
    SpikingTransformerBlock,
    estimate_energy,
)


def _toy():
    """Linear(4->3) -> LIF -> Linear(3->2) with weights giving a known spike train."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3, bias=False), LIF(), nn.Linear(3, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[2.5, 0, 0, 0], [0, 2.5, 0, 0], [0, 0, 2.5, 0]]))
    # T=2, B=1: currents per step: unit0 2.5 (spikes at t=0 and t=1), unit1 0 (none), unit2 1.25 (H = 0.625, 0.9375)
    x = torch.tensor([[1.0, 0.0, 0.5, 9.0]]).expand(2, 1, 4).clone()
    return net, x


def test_two_layer_toy_hand_counts():
    net, x = _toy()
    rep = estimate_energy(net, x)
    l1, l2 = rep.layers
    assert (l1.name, l1.input_kind, l2.name, l2.input_kind) == ("0", "real", "2", "spike")
    # layer 1: real input -> T*B*in*out = 2*1*4*3 MACs
    assert (l1.macs, l1.acs, l1.dense_macs) == (24, 0, 24)
    # layer 2: 2 spikes out of 6 inputs, fan-out 2 -> 4 ACs (dense would be 12)
    assert (l2.macs, l2.acs, l2.dense_macs) == (0, 4, 12)
    assert l2.firing_rate == pytest.approx(1 / 3)
    assert rep.energy_pj == pytest.approx(24 * 4.6 + 4 * 0.9)  # 114.0 pJ
    assert rep.energy_mj == pytest.approx(114.0e-9)
    ann = estimate_energy(net, x, ann=True)
    assert (ann.macs, ann.acs) == (36, 0)
    assert ann.energy_pj == pytest.approx(36 * 4.6)
    assert rep.ratio_to(ann) == pytest.approx(114.0 / 165.6)
    half = estimate_energy(net, x, precision="fp16")
    assert half.energy_pj == pytest.approx(24 * 1.5 + 4 * 0.4)
    int8 = estimate_energy(net, x, precision="int8")
    assert int8.energy_pj == pytest.approx(24 * 0.23 + 4 * 0.03)
    assert ENERGY_PRESETS == {"fp32": (4.6, 0.9), "fp16": (1.5, 0.4), "int8": (0.23, 0.03)}
    per = rep.per_sample(2)
    assert per.acs == 2 and per.macs == 12
    table = rep.table()
    assert "total SNN fp32" in table and table.count("\n") == 5  # header, rule, 2 layers, rule, total


def test_firing_rate_monitor_and_accumulation():
    net, x = _toy()
    with FiringRateMonitor(net) as mon:
        net(x)
        assert mon.rates() == {"1": pytest.approx(1 / 3)}
        net(torch.zeros_like(x))  # no spikes: the rate halves
        assert mon.rates()["1"] == pytest.approx(1 / 6)
        assert mon.mean_rate() == pytest.approx(1 / 6)
        mon.reset()
        assert mon.rates() == {}
    net(x)  # hooks removed on exit
    assert mon.rates() == {}


def test_integer_inputs_are_macs_unless_requested():
    lin = nn.Linear(3, 5)
    x = torch.tensor([[2.0, 0.0, 1.0], [0.0, 3.0, 0.0]])  # residual-style integer counts
    rep = estimate_energy(lin, x)
    assert rep.layers[0].input_kind == "integer" and rep.macs == 30 and rep.acs == 0
    rep = estimate_energy(lin, x, integer_as_ac=True)
    assert rep.macs == 0 and rep.acs == (2 + 1 + 3) * 5
    custom = estimate_energy(lin, x, precision=(1.0, 0.5))
    assert custom.energy_pj == pytest.approx(30.0)
    with pytest.raises(ValueError):
        EnergyEstimator(lin, precision="fp8")


def test_matmul_and_conv_counts():
    mm = SpikeMatMul()
    a = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]])  # [1, 2, 3], 3 spikes
    b = torch.randn(1, 3, 4)
    rep = estimate_energy(mm, a, b)
    assert rep.acs == 3 * 4 and rep.macs == 0 and rep.dense_macs == 2 * 3 * 4
    rep = estimate_energy(mm, b.transpose(1, 2), a.transpose(1, 2))  # b binary: nnz(b) * m
    assert rep.acs == 3 * 4
    conv = nn.Conv1d(2, 3, kernel_size=1)
    s = torch.tensor([[[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]]])  # [B=1, C=2, L=4], 3 spikes
    rep = estimate_energy(conv, s)
    assert rep.dense_macs == 4 * 3 * 2 and rep.acs == 3 * 3


def test_block_report_covers_attention_products():
    torch.manual_seed(0)
    blk = SpikingTransformerBlock(8, 2, mlp_ratio=2.0)
    x = (torch.rand(2, 1, 5, 8) < 0.5).float()
    rep = estimate_energy(blk, x)
    names = [l.name for l in rep.layers]
    assert names[:3] == ["attn.q.linear", "attn.k.linear", "attn.v.linear"]
    assert "attn.qk" in names and "attn.av" in names
    by = {l.name: l for l in rep.layers}
    assert by["attn.q.linear"].input_kind == "spike" and by["attn.q.linear"].macs == 0
    assert by["attn.qk"].acs <= by["attn.qk"].dense_macs
    assert rep.energy_pj < estimate_energy(blk, x, ann=True).energy_pj
