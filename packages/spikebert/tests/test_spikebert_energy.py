"""Energy and firing-rate accounting of a student against its teacher."""

from __future__ import annotations

import torch
from spikebert import SpikeBERT, SpikeBertConfig
from spikebert.data import TokenizedDataset, collate
from spikebert.evaluate import energy_comparison
from spikebert.teacher import tiny_teacher

from tenfold_core.data import make_sentiment_data, sentiment_vocabulary


def test_energy_report_adds_up():
    torch.manual_seed(0)
    data = make_sentiment_data(n_train=24, n_dev=2, n_test=2, seed=1)
    teacher, tok = tiny_teacher(sentiment_vocabulary(), hidden=32, layers=2, heads=2, max_len=32)
    student = SpikeBERT(SpikeBertConfig(vocab_size=len(tok), dim=32, depth=2, num_heads=4, num_labels=2))
    ds = TokenizedDataset.from_split(tok, data.train, 32)
    loader = [collate([ds[i] for i in range(s, s + 8)]) for s in range(0, 24, 8)]
    e = energy_comparison(student, loader, teacher, max_batches=None)
    snn, ann = e["student_report"], e["teacher_report"]
    assert e["samples"] == 24
    # totals are the sums of the layers, and each layer is E_MAC * MACs + E_AC * ACs
    assert abs(snn.energy_pj - sum(l.energy_pj for l in snn.layers)) < 1e-6 * snn.energy_pj
    assert abs(snn.energy_pj - (4.6 * snn.macs + 0.9 * snn.acs)) < 1e-6 * snn.energy_pj
    assert abs(e["student_energy_mj"] - snn.energy_pj * 1e-9) < 1e-15
    # the first block's Q/K/V see binary spikes (accumulates only); the classifier sees real values (MACs)
    by_name = {l.name: l for l in snn.layers}
    q = by_name["blocks.0.attn.q.linear"]
    assert q.input_kind == "spike" and q.macs == 0 and q.acs > 0
    assert abs(q.acs - q.firing_rate * q.dense_macs) < 1e-6 * q.dense_macs  # nnz * fan-out
    assert by_name["classifier"].acs == 0 and by_name["classifier"].macs > 0
    # distillation heads are not part of inference
    assert not any(n.startswith("distill_heads") for n in by_name)
    # the ANN teacher counts only MACs, including the attention products added analytically
    assert ann.acs == 0 and abs(ann.energy_pj - 4.6 * ann.macs) < 1e-6 * ann.energy_pj
    L = max(int(b["attention_mask"].shape[1]) for b in loader)
    attn = [l for l in ann.layers if l.layer_type == "matmul"][0]
    expected = (
        sum(2 * 2 * b["attention_mask"].shape[1] ** 2 * 32 * 8 for b in loader) / 24
    )  # layers*2*L^2*D*B
    assert abs(attn.macs - expected) < 1e-6 and L > 0
    assert abs(e["energy_ratio_vs_teacher"] - snn.energy_pj / ann.energy_pj) < 1e-9
    assert 0 < e["firing_rate"] < 1 and all(0 <= r <= 1 for r in e["firing_rates"].values())
