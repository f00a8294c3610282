"""The whole SpikeBERT recipe on in-memory data with the plain loop: teacher (optional MLM, fine-tune), then
direct training, stage 2 only, and stage 1 + stage 2. Used by the demo and the end-to-end test."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from spikebert.data import TokenizedDataset, collate
from spikebert.losses import StageWeights
from spikebert.model import SpikeBertConfig, load_stage1_weights
from spikebert.teacher import mlm_pretrain
from spikebert.train import (
    PretrainDistillModule,
    TaskDistillModule,
    TeacherModule,
    predict_logits,
    quick_fit,
    score,
)
from tenfold_core.data import TextClassificationData
from tenfold_core.train import OptimConfig, make_dataloader

__all__ = ["RecipeConfig", "run_recipe"]


@dataclass
class RecipeConfig:
    """Sizes and schedules of the in-memory recipe (defaults: the demo)."""

    seed: int = 0
    max_length: int = 32
    batch_size: int = 32
    mlm_epochs: int = 1
    teacher_epochs: int = 7
    teacher_lr: float = 1e-3
    stage1_epochs: int = 2
    stage1_lr: float = 2e-3
    stage2_epochs: int = 4
    lr: float = 2e-3
    weight_decay: float = 5e-3
    student: dict[str, Any] = field(default_factory=dict)  # SpikeBertConfig overrides
    weights: StageWeights = field(default_factory=StageWeights)
    metric: str = "accuracy"
    runs: tuple[str, ...] = ("direct", "task_only", "two_stage")


def _loader(tok, texts, labels, max_length, bs, shuffle, seed):
    ds = TokenizedDataset(
        TokenizedDataset.from_texts(tok, texts, max_length).ids, labels, tok.pad_token_id or 0
    )
    return make_dataloader(ds, bs, shuffle=shuffle, seed=seed, collate_fn=collate)


def run_recipe(
    data: TextClassificationData,
    corpus: list[str],
    teacher,
    tokenizer,
    cfg: RecipeConfig | None = None,
    log=print,
    pretrained=None,
) -> dict[str, Any]:
    """Run the recipe (with ``pretrained`` given, ``teacher`` is taken as already fine-tuned and ``pretrained`` as
    the stage-1 teacher, skipping the teacher's training); returns metrics (test scores of every model, chosen on dev), the trained modules and timings."""
    cfg = cfg or RecipeConfig()
    t0 = time.perf_counter()
    res: dict[str, Any] = {"timings": {}, "modules": {}, "history": {}}
    mk = lambda split, shuffle: _loader(  # noqa: E731
        tokenizer, split.texts, split.labels, cfg.max_length, cfg.batch_size, shuffle, cfg.seed
    )
    train_dl, dev_dl, test_dl = mk(data.train, True), mk(data.dev, False), mk(data.test, False)
    corpus_dl = _loader(tokenizer, corpus, None, cfg.max_length, cfg.batch_size, True, cfg.seed)
    corpus_dev = _loader(tokenizer, corpus[: max(64, len(corpus) // 20)], None, cfg.max_length, 64, False, 0)

    def test_score(module) -> float:
        logits, labels = predict_logits(module, test_dl)
        return score(logits, labels, cfg.metric)

    # stage "pre-trained BERT": brief masked-LM training of the tiny teacher's encoder, then stage 0
    torch.manual_seed(cfg.seed)
    tm = TeacherModule(teacher, OptimConfig(lr=cfg.teacher_lr, weight_decay=0.01, schedule="constant"))
    if pretrained is None:
        if cfg.mlm_epochs:
            res["history"]["mlm"] = mlm_pretrain(
                teacher, tokenizer, corpus, epochs=cfg.mlm_epochs, max_length=cfg.max_length, seed=cfg.seed
            )
        pretrained = copy.deepcopy(teacher.bert).eval()
        res["timings"]["mlm"] = time.perf_counter() - t0
        t = time.perf_counter()
        res["history"]["teacher"] = quick_fit(
            tm, train_dl, dev_dl, cfg.teacher_epochs, tm.optim_config, cfg.metric
        )
        res["timings"]["teacher"] = time.perf_counter() - t
    res["modules"]["pretrained"] = pretrained
    teacher = tm.model.eval()
    res["teacher_acc"] = test_score(tm)
    res["modules"]["teacher"] = tm
    log(f"teacher: test {cfg.metric} {res['teacher_acc']:.4f} ({res['timings'].get('teacher', 0):.1f} s)")

    base = dict(
        vocab_size=len(tokenizer),
        teacher_dim=teacher.config.hidden_size,
        pad_token_id=tokenizer.pad_token_id or 0,
    )
    base.update(cfg.student)
    student_cfg = SpikeBertConfig(num_labels=data.num_labels, **base).to_dict()
    optim = OptimConfig(lr=cfg.lr, weight_decay=cfg.weight_decay, schedule="cosine")

    def stage2(name: str, module) -> None:
        t = time.perf_counter()
        torch.manual_seed(cfg.seed + 1)
        res["history"][name] = quick_fit(module, train_dl, dev_dl, cfg.stage2_epochs, optim, cfg.metric)
        res[f"{name}_acc"] = test_score(module)
        res["modules"][name] = module
        res["timings"][name] = time.perf_counter() - t
        log(f"{name}: test {cfg.metric} {res[f'{name}_acc']:.4f} ({res['timings'][name]:.1f} s)")

    if "direct" in cfg.runs:
        torch.manual_seed(cfg.seed + 1)
        ce_only = StageWeights(ce=1.0, logit=0.0, emb=0.0, rep=0.0)
        stage2("direct", TaskDistillModule(student_cfg, None, optim, ce_only))
    if "task_only" in cfg.runs:
        torch.manual_seed(cfg.seed + 1)
        stage2("task_only", TaskDistillModule(student_cfg, teacher, optim, cfg.weights))
    if "two_stage" in cfg.runs:
        t = time.perf_counter()
        torch.manual_seed(cfg.seed + 1)
        pre_cfg = dict(student_cfg, num_labels=0)
        pm = PretrainDistillModule(
            pre_cfg, pretrained, OptimConfig(lr=cfg.stage1_lr, weight_decay=cfg.weight_decay, schedule="cosine"),
            rep_weight=1.0, rep_batch_div=cfg.weights.rep_batch_div,
        )  # fmt: skip
        res["history"]["stage1"] = quick_fit(pm, corpus_dl, corpus_dev, cfg.stage1_epochs, pm.optim_config)
        res["timings"]["stage1"] = time.perf_counter() - t
        log(
            f"stage 1: dev rep loss {-res['history']['stage1']['best_val']:.4f} ({res['timings']['stage1']:.1f} s)"
        )
        torch.manual_seed(cfg.seed + 1)
        m2 = TaskDistillModule(student_cfg, teacher, optim, cfg.weights)
        load_stage1_weights(m2.student, pm.student.state_dict())
        stage2("two_stage", m2)
    res["timings"]["total"] = time.perf_counter() - t0
    return res
