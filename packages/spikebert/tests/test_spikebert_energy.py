"""Energy and firing-rate accounting of a student against a same-size ANN and its teacher; accuracy/MCC."""

from __future__ import annotations

import torch
from spikebert import SpikeBERT, SpikeBertConfig
from spikebert.data import text_loader
from spikebert.evaluate import confusion_matrix, energy_comparison, scores_from_confusion
from spikebert.teacher import tiny_teacher

from tenfold_core.data import make_sentiment_data, sentiment_vocabulary
from tenfold_core.models import word_level_tokenizer


def test_energy_report_adds_up_and_compares_with_a_same_size_ann():
    torch.manual_seed(0)
    data = make_sentiment_data(n_train=24, n_dev=2, n_test=2, seed=1)
    tok = word_level_tokenizer(vocab=sentiment_vocabulary(), max_length=32)
    teacher, _ = tiny_teacher(tok, hidden=32, layers=4, heads=2, max_len=34)
    student = SpikeBERT(SpikeBertConfig(vocab_size=len(tok), dim=32, depth=2, num_heads=4, num_labels=2))
    loader = list(
        text_loader(data.train.texts, data.train.labels, tok, batch_size=8, max_length=32, shuffle=False)
    )
    e = energy_comparison(student, loader, teacher, max_batches=None)
    snn, ann, same = e["student_report"], e["teacher_report"], e["same_size_ann_report"]
    assert e["samples"] == 24
    # totals are the sums of the layers, and each layer is E_MAC * MACs + E_AC * ACs
    assert abs(snn.energy_pj - sum(l.energy_pj for l in snn.layers)) < 1e-6 * snn.energy_pj
    assert abs(snn.energy_pj - (4.6 * snn.macs + 0.9 * snn.acs)) < 1e-6 * snn.energy_pj
    # the first block's Q/K/V see binary spikes (accumulates only); the classifier sees real values (MACs)
    by_name = {l.name: l for l in snn.layers}
    q = by_name["blocks.0.attn.q.linear"]
    assert q.input_kind == "spike" and q.macs == 0 and q.acs > 0
    assert abs(q.acs - q.firing_rate * q.dense_macs) < 1e-6 * q.dense_macs  # nnz * fan-out
    assert by_name["classifier"].acs == 0 and by_name["classifier"].macs > 0
    assert not any(n.startswith("distill_heads") for n in by_name)
    # ANNs count only MACs, including the attention products added analytically
    assert ann.acs == 0 and abs(ann.energy_pj - 4.6 * ann.macs) < 1e-6 * ann.energy_pj
    attn = [l for l in ann.layers if l.layer_type == "matmul"][0]
    expected = (
        sum(4 * 2 * b["attention_mask"].shape[1] ** 2 * 32 * b["input_ids"].shape[0] for b in loader) / 24
    )
    assert abs(attn.macs - expected) < 1e-6
    # the same-size ANN has the student's depth: half the teacher's linear MACs at the same width
    lin = lambda r: sum(l.macs for l in r.layers if l.layer_type != "matmul" and "classifier" not in l.name)  # noqa: E731
    assert abs(lin(same) / lin(ann) - 0.5) < 0.02
    assert abs(e["energy_ratio_vs_same_size_ann"] - snn.energy_pj / same.energy_pj) < 1e-9
    assert e["energy_ratio_vs_same_size_ann_integer_as_ac"] < e["energy_ratio_vs_same_size_ann"]
    assert 0 < e["firing_rate"] < 1 and "input_spikes_encoder" in e["firing_rates"]


def test_accuracy_and_mcc_from_a_confusion_matrix_match_sklearn():
    from sklearn.metrics import accuracy_score, matthews_corrcoef

    g = torch.Generator().manual_seed(0)
    for c in (2, 3, 5):
        labels = torch.randint(0, c, (200,), generator=g)
        logits = torch.randn(200, c, generator=g) + 1.5 * torch.nn.functional.one_hot(labels, c)
        cm = confusion_matrix(logits[:120], labels[:120], c) + confusion_matrix(logits[120:], labels[120:], c)
        s = scores_from_confusion(cm)
        pred = logits.argmax(-1).numpy()
        assert abs(s["accuracy"] - accuracy_score(labels.numpy(), pred)) < 1e-12
        assert abs(s["mcc"] - matthews_corrcoef(labels.numpy(), pred)) < 1e-9
    assert scores_from_confusion(torch.tensor([[5.0, 0.0], [5.0, 0.0]]))["mcc"] == 0.0  # undefined -> 0
