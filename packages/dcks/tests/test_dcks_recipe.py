"""End to end on the synthetic corpus: the train verb, the knowledge ablation and the relation ranking."""

import json

import pytest
from dcks.config import DataConfig
from dcks.data import load_dialogues
from dcks.evaluate import evaluate_examples, load_dcks

from tenfold_core.cli import load_preset

OVR = {"data.n_train": 240, "data.n_dev": 32, "data.n_test": 64, "model.d_model": 64, "model.dropout": 0.0,
       "train.max_epochs": 5, "optim.schedule": "constant", "train.accelerator": "cpu", "train.devices": "1"}  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from dcks.train import run_train

    out = {}
    for variant, source in (("full", "context+knowledge"), ("ablation", "context")):
        d = tmp_path_factory.mktemp(variant)
        run_train(
            load_preset(
                "dcks", "tiny", "train", {**OVR, "train.out_dir": str(d), "model.emotion_source": source}
            )
        )
        out[variant] = d
    return out


def _eval(run_dir, generate=False):
    model, tok, conf = load_dcks(run_dir)
    data_cfg = DataConfig(**conf["data"])
    rows = load_dialogues(data_cfg).test
    return evaluate_examples(model, tok, rows, data_cfg, conf["emotions"], generate=generate)


def test_knowledge_ablation_lowers_emotion_accuracy_and_ranking_finds_xreact(runs):
    full, gens = _eval(runs["full"])
    abl, _ = _eval(runs["ablation"])
    # contexts carry no emotion evidence: without knowledge the head is near chance (1/4)
    assert abl["emotion_acc"] < 0.45
    assert full["emotion_acc"] > abl["emotion_acc"] + 0.25
    assert full["rank1_share_xReact"] > 0.6  # chance 0.2
    assert all(len(g["ranked_relations"]) == 5 for g in gens)


def test_checkpoint_selected_on_dev_never_test(runs):
    conf = json.loads((runs["full"] / "config.json").read_text())
    assert conf["selection_split"] == "dev" and conf["train"]["monitor"] == "val_loss"


def test_evaluate_writes_replies_with_emotion_and_ranking(runs):
    m, gens = _eval(runs["full"], generate=True)
    for key in ("ppl_corpus", "ppl_mean_sentence", "dist_1", "dist_2", "bleu_4", "rouge_l"):
        assert key in m and m[key] == m[key]
    assert m["ppl_corpus"] > 1.0 and 0 <= m["rouge_l"] <= 1
    assert gens[0]["reply"] and gens[0]["predicted_emotion"] in {"surprised", "excited", "annoyed", "proud"}
