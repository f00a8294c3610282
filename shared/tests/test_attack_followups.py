"""Harness follow-ups of issue 19: threshold calibration, PWWS batching, the synthetic synonym table, a victim
fine-tuned with ``fit`` trains with dropout on, and the packages' one-call attack summary."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tenfold_core.attack import (
    AttackProtocol,
    DictSynonyms,
    GreedyWordSwapAttack,
    Victim,
    WordVectorMeanEncoder,
    calibrate_threshold,
    run_attack,
    sentiment_synonyms,
)
from tenfold_core.errors import ConfigError


def _encoder_and_table():
    rng = np.random.default_rng(0)
    words = ["good", "great", "fine", "bad", "awful", "the", "movie", "film", "was", "is"]
    m = rng.normal(size=(len(words), 6)).astype(np.float32)
    table = DictSynonyms({"good": ["great", "fine"], "bad": ["awful"], "movie": ["film"], "was": ["is"]})
    return WordVectorMeanEncoder(m, words), table, m, words


def test_calibration_hits_target_rate_and_matches_a_reference():
    enc, table, m, words = _encoder_and_table()
    texts = ["the movie was good", "the film is bad", "the movie was awful", "good film"] * 5
    res = calibrate_threshold(enc, texts, table, target_pass_rate=0.6, n_swaps=300, window=None)
    assert res["n_swaps"] == 300 and 0.55 <= res["pass_rate"] <= 0.75
    assert "target pass rate 0.600" in res["method"]
    # a reference encoder that is the same encoder: matching it at threshold t gives back about t
    ref = calibrate_threshold(enc, texts, table, reference_encoder=WordVectorMeanEncoder(m, words),
                              reference_threshold=res["threshold"], n_swaps=300, window=None)  # fmt: skip
    assert (
        abs(ref["pass_rate"] - res["pass_rate"]) <= 0.05 and abs(ref["threshold"] - res["threshold"]) < 0.02
    )
    proto = AttackProtocol(
        similarity_threshold=ref["threshold"], extra={"similarity_calibration": ref["method"]}
    )
    assert "threshold calibration: mean word vectors: matched" in proto.describe()
    with pytest.raises(ConfigError):
        calibrate_threshold(enc, texts, table)
    with pytest.raises(ConfigError):
        calibrate_threshold(enc, ["xyz abc"], table, target_pass_rate=0.5)


def test_pwws_ranking_scores_all_candidates_in_one_victim_call():
    calls = []

    def keyword(texts):
        calls.append(len(texts))
        return torch.tensor([[0.2, 0.8] if ("good" in t or "fine" in t) else [0.9, 0.1] for t in texts])

    table = DictSynonyms({"good": ["great", "fine"], "movie": ["film", "show"], "was": ["is", "seemed"]})
    proto = AttackProtocol("pwws", n_examples=1, query_factor=50)
    atk = GreedyWordSwapAttack(
        Victim(keyword), table, proto, WordVectorMeanEncoder(np.eye(3), ["a", "b", "c"])
    )
    rec = atk.attack("the movie was good indeed", 1)
    # 1 clean query, 1 [UNK] ranking call, 1 call for every word's candidates, then the greedy steps
    assert calls[:3] == [1, 2, 4]  # modifiable: movie, good ("the", "was", "indeed" are stop words)
    assert rec["status"] == "succeeded" and rec["substitutions"] == [["good", "great"]]


def test_sentiment_synonyms_preserve_the_label():
    from tenfold_core.data.synthetic import NEGATIVE, POSITIVE

    syn = sentiment_synonyms()
    for w in POSITIVE:
        assert syn.candidates(w) and set(syn.candidates(w)) <= set(POSITIVE)
    for w in NEGATIVE:
        assert set(syn.candidates(w)) <= set(NEGATIVE)
    assert syn.candidates("not") == [] and syn.candidates("but") == []


def test_victim_fine_tuned_with_fit_trained_with_dropout_on(tmp_path):
    """HF models arrive from from_pretrained in eval mode; fit must train them with dropout on, and the Victim
    must then query them with dropout off."""
    from transformers import BertForSequenceClassification

    from tenfold_core.config import TrainConfig
    from tenfold_core.models import tiny_bert_config
    from tenfold_core.train import TenfoldModule, fit

    torch.manual_seed(0)
    net = BertForSequenceClassification(
        tiny_bert_config(vocab_size=30, hidden=16, layers=1, heads=2, max_len=16)
    )
    net.eval()  # as from_pretrained leaves it
    seen = []

    class M(TenfoldModule):
        def __init__(self):
            super().__init__()
            self.model = net

        def training_step(self, batch, i):
            seen.append(all(m.training for m in self.model.modules() if isinstance(m, torch.nn.Dropout)))
            ids, y = batch
            return torch.nn.functional.cross_entropy(self.model(input_ids=ids).logits, y)

    ids = torch.randint(5, 30, (16, 6))
    y = torch.randint(0, 2, (16,))
    dl = torch.utils.data.DataLoader(list(zip(ids, y)), batch_size=8)
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), max_epochs=1, monitor=None, progress_bar=False, loggers=[],
                      accelerator="cpu", devices="1")  # fmt: skip
    fit(M(), cfg, dl)
    assert seen and all(seen)

    class Tok:
        model_max_length = 16

        def __call__(self, texts, **kw):
            return {
                "input_ids": torch.randint(5, 30, (len(texts), 6)),
                "attention_mask": torch.ones(len(texts), 6, dtype=torch.long),
            }

    v = Victim(net, Tok())
    assert not net.training and v.probs(["a b c"]).shape == (1, 2)


def test_attack_summary_names_the_example_count():
    from tenfold_core.attack.evaluation import attack_summary

    def keyword(texts):
        return torch.tensor([[0.2, 0.8] if "good" in t else [0.9, 0.1] for t in texts])

    texts = ["the movie was good today"] * 6 + ["short"]
    labels = [1] * 7
    proto = AttackProtocol(n_examples=4)
    s = attack_summary(Victim(keyword), texts, labels, proto, DictSynonyms({"good": ["fine"]}),
                       WordVectorMeanEncoder(np.eye(2), ["a", "b"]))  # fmt: skip
    assert s["n"] == 4 and s["n_requested"] == 4 and "examples=4 with >4 words" in s["protocol"]
    assert s["aua"] == 0.0 and s["success_rate"] == 100.0
    assert run_attack  # the same runner the packages use
