"""Training: the Lightning modules of every stage and the training verbs, all through
:func:`tenfold_core.train.fit` (resume, bf16, DDP, atomic checkpoints, the best epoch chosen on the dev split, one run
folder that :func:`tenfold_core.models.load_run` rebuilds).

- ``pretrain-teacher``: masked-LM pre-training of a (tiny) BERT -> ``OUT/teacher/`` (the offline stand-in for a
  pre-trained BERT, the stage-1 teacher and the start of stage 0).
- ``finetune-teacher`` (stage 0) -> ``OUT/teacher/`` (a Hugging Face folder: model + tokenizer).
- ``distill-pretrain`` (stage 1), ``distill-task`` (stage 2), ``train-direct`` -> ``OUT/model.safetensors`` +
  ``OUT/config.json`` + ``OUT/tokenizer/`` + ``OUT/metrics.json``.

Only the modules a stage uses are built (DDP refuses unused parameters); every monitored metric is synced across
ranks (accuracy and MCC from a summed confusion matrix). Each LIF's firing rate is logged per epoch
(``rate/<layer>``, embedding spikes included) and a layer below 1e-3 or above 0.9 for an epoch gets one warning.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F

from spikebert.config import (
    DistillPretrainConfig,
    DistillTaskConfig,
    FinetuneTeacherConfig,
    PretrainTeacherConfig,
    SpikeBertConfig,
    TaskLossConfig,
    TeacherConfig,
    TrainDirectConfig,
)
from spikebert.data import build_tokenizer, corpus_loaders, iter_corpus, load_task_data, text_loader
from spikebert.evaluate import confusion_matrix, predict_scores, scores_from_confusion
from spikebert.losses import rate_penalty, rep_loss, task_distill_loss
from spikebert.model import SpikeBERT, load_stage1_weights, stride_layer_map
from spikebert.teacher import (
    load_teacher,
    mask_tokens,
    teacher_forward,
    teacher_layers,
    teacher_word_embeddings,
    tiny_teacher,
)
from tenfold_core.config import OptimConfig
from tenfold_core.errors import ConfigError, ModelLoadError
from tenfold_core.io import write_json
from tenfold_core.spiking import Heaviside
from tenfold_core.spiking.neuron import _MultiStepNeuron
from tenfold_core.train import TenfoldModule, fit, seed_everything

__all__ = [
    "MLMModule",
    "TeacherModule",
    "PretrainDistillModule",
    "TaskDistillModule",
    "FiringRateLogger",
    "pretrain_teacher",
    "finetune_teacher",
    "distill_pretrain",
    "distill_task",
    "train_direct",
    "SILENT_RATE",
    "SATURATED_RATE",
]

SILENT_RATE, SATURATED_RATE = 1e-3, 0.9


def _neurons(model: nn.Module):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (_MultiStepNeuron, Heaviside))]


# ------------------------------------------------------------------------------------------------ callbacks
class FiringRateLogger(L.Callback):
    """Logs each neuron's firing rate over the training epoch (``rate/<layer>``, ``rate_mean``; synced across
    ranks) and warns once per layer whose rate stays below ``silent`` or above ``saturated`` for an epoch."""

    def __init__(self, silent: float = SILENT_RATE, saturated: float = SATURATED_RATE):
        self.silent, self.saturated = silent, saturated
        self.history: list[dict[str, float]] = []
        self._warned: set[str] = set()
        self._handles: list = []
        self._sum: dict[str, torch.Tensor] = {}
        self._n: dict[str, int] = {}

    def _hook(self, name):
        def fn(_m, _i, out):
            if self._active:
                o = out.detach()
                self._sum[name] = self._sum.get(name, 0.0) + o.float().sum()
                self._n[name] = self._n.get(name, 0) + o.numel()

        return fn

    def on_fit_start(self, trainer, pl_module):
        self._active = False
        for name, m in _neurons(pl_module.model):
            self._handles.append(m.register_forward_hook(self._hook(name)))

    def on_train_epoch_start(self, trainer, pl_module):
        self._sum, self._n, self._active = {}, {}, True

    def on_validation_start(self, trainer, pl_module):
        self._active = False

    def on_validation_end(self, trainer, pl_module):
        self._active = trainer.training

    def on_train_epoch_end(self, trainer, pl_module):
        self._active = False
        if not self._n:
            return
        rates = {}
        for name, s in self._sum.items():
            r = torch.as_tensor(s, dtype=torch.float32) / max(self._n[name], 1)
            pl_module.log(f"rate/{name}", r, sync_dist=True)
            rates[name] = float(r)
        total = sum(float(s) for s in self._sum.values()) / max(sum(self._n.values()), 1)
        pl_module.log("rate_mean", total, sync_dist=True)
        self.history.append(rates)
        for name, r in rates.items():
            if name in self._warned:
                continue
            if r < self.silent or r > self.saturated:
                self._warned.add(name)
                what = "silent" if r < self.silent else "saturated"
                warnings.warn(
                    f"spikebert: LIF '{name}' is {what} (firing rate {r:.2g} over epoch {trainer.current_epoch}); "
                    "check model.qk_scale (try auto), the thresholds, or enable rate_reg",
                    RuntimeWarning,
                    stacklevel=1,
                )

    def on_fit_end(self, trainer, pl_module):
        for h in self._handles:
            h.remove()
        self._handles = []


# ------------------------------------------------------------------------------------------------ modules
class _ValScores:
    """Validation: ``val_loss`` plus ``val_acc`` / ``val_mcc`` from a confusion matrix summed over ranks."""

    num_labels: int

    def on_validation_epoch_start(self):
        self._cm = None

    def _val_update(self, logits, labels):
        cm = confusion_matrix(logits.detach(), labels, self.num_labels)
        self._cm = cm if self._cm is None else self._cm + cm
        self.log("val_loss", F.cross_entropy(logits.float(), labels), prog_bar=True, sync_dist=True)

    def on_validation_epoch_end(self):
        if self._cm is None:
            return
        cm = self._cm.to(self.device, torch.float64)
        if self.trainer.world_size > 1:
            cm = self.trainer.strategy.reduce(cm, reduce_op="sum")
        s = scores_from_confusion(cm.cpu())
        self.log("val_acc", s["accuracy"], prog_bar=True, sync_dist=True)
        self.log("val_mcc", s["mcc"], sync_dist=True)


class MLMModule(TenfoldModule):
    """Masked-LM pre-training of a BERT encoder (``model`` is a ``BertForMaskedLM``); logs train/val loss."""

    def __init__(
        self, model: nn.Module, tokenizer, optim: OptimConfig, mask_prob: float = 0.15, seed: int = 0
    ):
        super().__init__(optim)
        self.model = model
        self.mask_prob = mask_prob
        self._ids = {"special": sorted(set(tokenizer.all_special_ids)), "mask": tokenizer.mask_token_id}
        self._gen = torch.Generator().manual_seed(seed)

    def _loss(self, batch, generator):
        inputs, labels = mask_tokens(
            batch["input_ids"], batch["attention_mask"], self._ids, self.mask_prob, generator
        )
        return self.model(input_ids=inputs, attention_mask=batch["attention_mask"], labels=labels).loss

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch, self._gen)
        self.log("train_loss", loss, prog_bar=True, on_epoch=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        g = torch.Generator().manual_seed(batch_idx)  # the same masks every validation
        self.log("val_loss", self._loss(batch, g), prog_bar=True, sync_dist=True)


class TeacherModule(_ValScores, TenfoldModule):
    """Stage 0: cross-entropy fine-tuning of a Hugging Face sequence classifier."""

    def __init__(self, model: nn.Module, optim: OptimConfig | None = None):
        super().__init__(optim)
        self.model = model
        self.num_labels = int(model.config.num_labels)

    def eval_logits(self, batch) -> torch.Tensor:
        return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits

    def training_step(self, batch, batch_idx):
        loss = F.cross_entropy(self.eval_logits(batch).float(), batch["labels"])
        self.log("train_loss", loss, prog_bar=True, on_epoch=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self._val_update(self.eval_logits(batch), batch["labels"])


class _StudentModule(TenfoldModule):
    """Holds the student at ``self.model`` (exported) and a frozen teacher that is deliberately *not* registered, so
    it is neither saved, optimised, nor seen by DDP. Optional firing-rate regulariser over every neuron."""

    def __init__(
        self,
        model_config: SpikeBertConfig,
        optim,
        teacher: nn.Module | None,
        rate_weight=0.0,
        rate_target=0.1,
    ):
        super().__init__(optim)
        self.model = SpikeBERT(model_config)
        if teacher is not None:
            teacher.eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
        object.__setattr__(self, "_teacher", teacher)
        self.rate_weight, self.rate_target = float(rate_weight), float(rate_target)
        self._rates: list[torch.Tensor] = []
        if self.rate_weight > 0:
            for _, m in _neurons(self.model):
                m.register_forward_hook(self._rate_hook)

    def _rate_hook(self, _m, _i, out):
        if self.training and torch.is_grad_enabled():
            self._rates.append(out.float().mean())

    @property
    def teacher(self) -> nn.Module | None:
        return self._teacher

    def _teacher_out(self, batch):
        t = self._teacher
        ids = batch["input_ids"]
        if next(t.parameters()).device != ids.device:
            t.to(ids.device)
        t.eval()
        return teacher_forward(t, ids, batch["attention_mask"])

    def _rep_mask(self, out):
        return out.attention_mask if self.model.config.mask_padding else None

    def training_step(self, batch, batch_idx):
        self._rates = []
        loss, parts = self.compute_loss(batch)
        if self.rate_weight > 0:
            parts["rate_weighted"] = self.rate_weight * rate_penalty(self._rates, self.rate_target)
            loss = loss + parts["rate_weighted"]
        self._rates = []
        self.log("train_loss", loss, prog_bar=True, on_epoch=True, sync_dist=True)
        for k, v in parts.items():
            self.log(f"train_{k}", v.detach(), on_step=False, on_epoch=True, sync_dist=True)
        return loss


def _layer_map(teacher: nn.Module | None, depth: int, align: str) -> list[int] | None:
    return None if teacher is None else stride_layer_map(teacher_layers(teacher), depth, align)


class PretrainDistillModule(_StudentModule):
    """Stage 1: ``w_rep * sum_i MSE(rep_i, h^T_map(i))`` on unlabelled text; validation logs ``val_loss``."""

    def __init__(
        self,
        model_config,
        teacher,
        optim=None,
        rep_weight=1.0,
        rep_batch_div=True,
        layer_align="stride",
        **rate,
    ):
        super().__init__(model_config, optim, teacher, **rate)
        self.layer_map = _layer_map(teacher, model_config.depth, layer_align)
        self.rep_weight, self.rep_batch_div = rep_weight, rep_batch_div

    def compute_loss(self, batch):
        out = self.model(batch["input_ids"], batch["attention_mask"])
        _, hidden = self._teacher_out(batch)
        r = rep_loss(out.representations, hidden, self.layer_map, self._rep_mask(out), self.rep_batch_div)
        return self.rep_weight * r, {"rep": r.detach(), "rep_weighted": (self.rep_weight * r).detach()}

    def validation_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log("val_loss", loss, prog_bar=True, sync_dist=True)


class TaskDistillModule(_ValScores, _StudentModule):
    """Stage 2 (and, with ``teacher=None`` and only ``ce`` weighted, the directly trained baseline)."""

    def __init__(self, model_config, teacher=None, optim=None, weights: TaskLossConfig | None = None, **rate):
        super().__init__(model_config, optim, teacher, **rate)
        w = copy.copy(weights) if weights is not None else TaskLossConfig()
        if teacher is None:
            if not w.ce:
                raise ConfigError("without a teacher only the CE loss is left: loss.ce must be > 0")
            w = dataclasses.replace(w, logit=0.0, emb=0.0, rep=0.0)
        self.weights = w
        self.num_labels = model_config.num_labels
        self.layer_map = _layer_map(teacher, model_config.depth, w.layer_align) if w.rep else []

    def eval_logits(self, batch) -> torch.Tensor:
        return self.model(batch["input_ids"], batch["attention_mask"], return_representations=False).logits

    def compute_loss(self, batch):
        w = self.weights
        need_reps = self._teacher is not None and w.rep > 0
        out = self.model(batch["input_ids"], batch["attention_mask"], return_representations=need_reps)
        t_logits = hidden = t_emb = s_emb = None
        if self._teacher is not None and (w.logit or w.rep):
            t_logits, hidden = self._teacher_out(batch)
        if self._teacher is not None and w.emb:
            t_emb = teacher_word_embeddings(self._teacher).detach().to(batch["input_ids"].device)
            s_emb = self.model.embedding_matrix()
        total, parts = task_distill_loss(
            logits=out.logits, labels=batch["labels"], teacher_logits=t_logits, student_emb=s_emb,
            teacher_emb=t_emb, reps=out.representations, teacher_hidden=hidden, layer_map=self.layer_map or [],
            mask=self._rep_mask(out), weights=w,
        )  # fmt: skip
        scale = {"ce": w.ce, "kl": w.logit, "emb": w.emb, "rep": w.rep}
        parts = {k: v.detach() for k, v in parts.items()} | {
            f"{k}_weighted": (scale[k] * v).detach() for k, v in parts.items()
        }
        return total, parts

    def validation_step(self, batch, batch_idx):
        self._val_update(self.eval_logits(batch), batch["labels"])


# ------------------------------------------------------------------------------------------------ helpers
def _check_monitor(train, allowed: tuple[str, ...]) -> None:
    if train.monitor and train.monitor not in allowed:
        raise ConfigError(f"train.monitor: expected one of {', '.join(allowed)}, got {train.monitor!r}")


def _teacher(
    tc: TeacherConfig, tok_source: list[str], data_cfg, num_labels, classification, synthetic, max_len
):
    """The teacher and its tokenizer; ``tiny`` builds a random tiny BERT in place (tests and presets)."""
    if tc.name == "tiny":
        kind = getattr(data_cfg, "tokenizer", "auto")
        tok = build_tokenizer("tiny", tok_source, kind, synthetic, max_length=max(max_len, 8))
        drop = (
            {}
            if tc.dropout is None
            else {"hidden_dropout_prob": tc.dropout, "attention_probs_dropout_prob": tc.dropout}
        )
        model, tok = tiny_teacher(
            tok,
            max(num_labels or 2, 2),
            tc.tiny_hidden,
            tc.tiny_layers,
            tc.tiny_heads,
            max(max_len, 8) + 2,
            **drop,
        )
        return (model if classification else model.bert), tok
    return load_teacher(
        tc.name,
        num_labels=num_labels if classification else None,
        classification=classification,
        dropout=tc.dropout,
    )


def _fill_model(cfg: SpikeBertConfig, tok, num_labels: int, teacher_dim: int, **flags) -> SpikeBertConfig:
    """The model config with what the tokenizer, data and teacher decide; a user value that disagrees is an error."""
    vocab = len(tok)
    if cfg.vocab_size and cfg.vocab_size != vocab:
        raise ConfigError(f"model.vocab_size {cfg.vocab_size} differs from the tokenizer's {vocab} (set 0)")
    if cfg.num_labels and num_labels and cfg.num_labels != num_labels:
        raise ConfigError(f"model.num_labels {cfg.num_labels} differs from the data's {num_labels} (set 0)")
    if cfg.teacher_dim and teacher_dim and cfg.teacher_dim != teacher_dim:
        raise ConfigError(
            f"model.teacher_dim {cfg.teacher_dim} differs from the teacher's {teacher_dim} (set 0)"
        )
    return dataclasses.replace(
        cfg, vocab_size=vocab, num_labels=num_labels, teacher_dim=teacher_dim or cfg.dim,
        pad_token_id=int(tok.pad_token_id or 0), **flags,
    )  # fmt: skip


def _data_loaders(tok, data, dc, seed):
    mk = lambda split, shuffle: text_loader(  # noqa: E731
        split.texts,
        split.labels,
        tok,
        batch_size=dc.batch_size,
        max_length=dc.max_length,
        shuffle=shuffle,
        seed=seed,
        padding=dc.padding,
    )
    return mk(data.train, True), mk(data.dev, False), (mk(data.test, False) if len(data.test) else None)


def _selected(module, res) -> None:
    """Load the selected (best on dev) weights back into ``module.model``."""
    if res.weights is not None and Path(res.weights).is_file():
        from tenfold_core.models import load_state_dict_checked

        load_state_dict_checked(module.model, res.weights, strict=True)


def _finish(
    module, res, out: Path, tok, loaders: dict, stage: str, callbacks, extra: dict | None = None
) -> dict:
    _selected(module, res)
    rank0 = res.trainer is None or res.trainer.is_global_zero
    if tok is not None and rank0:
        tok.save_pretrained(str(out / "tokenizer"))
    metrics: dict[str, Any] = {"stage": stage, "best_val": res.best_score}
    for split, dl in loaders.items():
        if dl is not None:
            for k, v in predict_scores(module.eval_logits, module.model, dl, module.num_labels).items():
                metrics[f"{split}_{k}"] = v
    rl = next((c for c in callbacks if isinstance(c, FiringRateLogger)), None)
    if rl is not None and rl.history:
        last = rl.history[-1]
        metrics["train_rate_mean_last_epoch"] = sum(last.values()) / len(last)
    metrics.update(extra or {})
    if res.trainer is None or res.trainer.is_global_zero:
        write_json(out / "metrics.json", metrics)
    return metrics


def _run_config(cfg, model_cfg, **extra) -> dict:
    return {
        "model": model_cfg,
        **{k: getattr(cfg, k) for k in ("data", "train", "optim") if hasattr(cfg, k)},
        **extra,
    }


# ------------------------------------------------------------------------------------------------ verbs
def pretrain_teacher(cfg: PretrainTeacherConfig) -> dict[str, Any]:
    """Masked-LM pre-training of a BERT teacher on unlabelled text -> ``OUT/teacher`` (model + tokenizer)."""
    from transformers import BertForMaskedLM

    _check_monitor(cfg.train, ("val_loss",))
    seed_everything(cfg.train.seed)  # the model's initialisation follows train.seed, whatever ran before
    synthetic = cfg.data.corpus == "synthetic"
    texts = list(iter_corpus(cfg.data))
    if cfg.model.name == "tiny":
        torch.manual_seed(cfg.train.seed)
        cls_model, tok = _teacher(cfg.model, texts, cfg.data, 2, True, synthetic, cfg.data.max_length)
        mlm = BertForMaskedLM(cls_model.config)
    else:
        from spikebert.teacher import resolve_teacher_path
        from tenfold_core.models import load_pretrained

        mlm, tok = load_pretrained(resolve_teacher_path(cfg.model.name), BertForMaskedLM, with_tokenizer=True)
    n_dev = min(
        max(int(len(texts) * cfg.data.dev_fraction), min(cfg.data.dev_min, len(texts) // 2), 1),
        len(texts) // 2,
    )
    mk = lambda t, shuffle: text_loader(  # noqa: E731
        t,
        None,
        tok,
        batch_size=cfg.data.batch_size,
        max_length=cfg.data.max_length,
        shuffle=shuffle,
        seed=cfg.train.seed,
        padding=cfg.data.padding,
    )
    module = MLMModule(mlm, tok, cfg.optim, cfg.mask_prob, cfg.train.seed)
    res = fit(
        module, cfg.train, mk(texts[n_dev:], True), mk(texts[:n_dev], False), run_config={"data": cfg.data}
    )
    _selected(module, res)
    out = Path(cfg.train.out_dir)
    if res.trainer is None or res.trainer.is_global_zero:
        mlm.save_pretrained(str(out / "teacher"))
        tok.save_pretrained(str(out / "teacher"))
    metrics = {"stage": "pretrain-teacher", "best_val_loss": res.best_score, "teacher": str(out / "teacher")}
    if res.trainer is None or res.trainer.is_global_zero:
        write_json(out / "metrics.json", metrics)
    return metrics


def finetune_teacher(cfg: FinetuneTeacherConfig) -> dict[str, Any]:
    """Stage 0: fine-tune a BERT-family classifier; the best dev epoch is saved to ``OUT/teacher``."""
    _check_monitor(cfg.train, ("val_acc", "val_mcc", "val_loss"))
    seed_everything(cfg.train.seed)  # the model's initialisation follows train.seed, whatever ran before
    data = load_task_data(cfg.data)
    synthetic = cfg.data.data == "synthetic"
    if cfg.model.name == "tiny":
        torch.manual_seed(cfg.train.seed)
        model, tok = _teacher(
            cfg.model, data.train.texts, cfg.data, data.num_labels, True, synthetic, cfg.data.max_length
        )
    else:
        import transformers

        from spikebert.teacher import has_classification_head, resolve_teacher_path
        from tenfold_core.models import load_pretrained

        path = resolve_teacher_path(cfg.model.name)
        kw = {"num_labels": data.num_labels}
        if has_classification_head(path):
            kw = {}
        model, tok = load_pretrained(
            path, transformers.AutoModelForSequenceClassification, with_tokenizer=True, **kw
        )
        if model.config.num_labels != data.num_labels:
            raise ModelLoadError(
                f"{path}: the teacher has {model.config.num_labels} labels, the data {data.num_labels}"
            )
    model.config.id2label = dict(enumerate(data.label_names))
    model.config.label2id = {n: i for i, n in enumerate(data.label_names)}
    train_dl, dev_dl, test_dl = _data_loaders(tok, data, cfg.data, cfg.train.seed)
    module = TeacherModule(model, cfg.optim)
    res = fit(module, cfg.train, train_dl, dev_dl, run_config={"data": cfg.data, "teacher": cfg.model})
    out = Path(cfg.train.out_dir)
    metrics = _finish(module, res, out, None, {"dev": dev_dl, "test": test_dl}, "finetune-teacher", [])
    if res.trainer is None or res.trainer.is_global_zero:
        model.save_pretrained(str(out / "teacher"))
        tok.save_pretrained(str(out / "teacher"))
    return metrics


def distill_pretrain(cfg: DistillPretrainConfig) -> dict[str, Any]:
    """Stage 1: distil the frozen pre-trained teacher's hidden states into the student on unlabelled text."""
    _check_monitor(cfg.train, ("val_loss",))
    seed_everything(cfg.train.seed)  # the model's initialisation follows train.seed, whatever ran before
    synthetic = cfg.data.corpus == "synthetic"
    tok_texts = list(iter_corpus(cfg.data)) if cfg.teacher.name == "tiny" and not synthetic else []
    teacher, tok = _teacher(cfg.teacher, tok_texts, cfg.data, None, False, synthetic, cfg.data.max_length)
    model_cfg = _fill_model(
        cfg.model, tok, 0, int(teacher.config.hidden_size), distill_heads=True, embedding_projection=False
    )
    out = Path(cfg.train.out_dir)
    train_dl, dev_dl, corpus_info = corpus_loaders(cfg.data, tok, out / "shards", cfg.train.seed)
    module = PretrainDistillModule(
        model_cfg, teacher, cfg.optim, cfg.loss.rep, cfg.loss.rep_batch_div, cfg.loss.layer_align,
        rate_weight=cfg.rate_reg.weight, rate_target=cfg.rate_reg.target,
    )  # fmt: skip
    cbs = [FiringRateLogger()]
    res = fit(
        module, cfg.train, train_dl, dev_dl, callbacks=cbs,
        run_config=_run_config(cfg, model_cfg, teacher=cfg.teacher, loss=cfg.loss, layer_map=module.layer_map),
    )  # fmt: skip
    _selected(module, res)
    rank0 = res.trainer is None or res.trainer.is_global_zero
    if rank0:
        tok.save_pretrained(str(out / "tokenizer"))
    metrics = {
        "stage": "distill-pretrain",
        "best_val_loss": res.best_score,
        "layer_map": module.layer_map,
        **corpus_info,
    }
    if cbs[0].history:
        metrics["train_rate_mean_last_epoch"] = sum(cbs[0].history[-1].values()) / len(cbs[0].history[-1])
    if rank0:
        write_json(out / "metrics.json", metrics)
    return metrics


def distill_task(cfg: DistillTaskConfig) -> dict[str, Any]:
    """Stage 2: task distillation from the fine-tuned teacher (optionally from stage-1 weights)."""
    _check_monitor(cfg.train, ("val_acc", "val_mcc", "val_loss"))
    seed_everything(cfg.train.seed)  # the model's initialisation follows train.seed, whatever ran before
    if not cfg.teacher.name:
        raise ConfigError(
            "--teacher.name is required (the fine-tuned teacher: a finetune-teacher run folder)"
        )
    data = load_task_data(cfg.data)
    synthetic = cfg.data.data == "synthetic"
    teacher, tok = _teacher(
        cfg.teacher, data.train.texts, cfg.data, data.num_labels, True, synthetic, cfg.data.max_length
    )
    aug_report = _augment(data, cfg.data, tok, Path(cfg.train.out_dir))
    w = cfg.loss
    model_cfg = _fill_model(
        cfg.model, tok, data.num_labels, int(teacher.config.hidden_size), distill_heads=w.rep > 0,
        embedding_projection=w.emb > 0,
    )  # fmt: skip
    module = TaskDistillModule(
        model_cfg, teacher, cfg.optim, w, rate_weight=cfg.rate_reg.weight, rate_target=cfg.rate_reg.target
    )
    init_report = {}
    if cfg.init and cfg.init_partial:
        init_report = _partial_load(module.model, cfg.init)
    elif cfg.init:
        load_stage1_weights(module.model, cfg.init)
    train_dl, dev_dl, test_dl = _data_loaders(tok, data, cfg.data, cfg.train.seed)
    cbs = [FiringRateLogger()]
    rc = _run_config(cfg, model_cfg, teacher=cfg.teacher, init=cfg.init, loss=w, label_names=data.label_names)
    res = fit(module, cfg.train, train_dl, dev_dl, callbacks=cbs, run_config=rc)
    loaders = {"dev": dev_dl, "test": test_dl}
    return _finish(
        module, res, Path(cfg.train.out_dir), tok, loaders, "distill-task", cbs, init_report | aug_report
    )


def _augment(data, dc, tok, out: Path) -> dict[str, int]:
    """Stage-2 augmentation of ``data.train`` in place (``data.augment.factor > 1``); the augmented set is written to
    ``OUT/train_augment.txt`` in the official ``sentence<TAB>label`` format (rank 0)."""
    a = getattr(dc, "augment", None)
    if a is None or a.factor <= 1:
        return {}
    from spikebert.augment import augment_split

    if a.unit == "auto":
        a = dataclasses.replace(a, unit="char" if dc.tokenizer == "char" else "word")
    n = len(data.train)
    data.train = augment_split(data.train, a, tok.mask_token or "[MASK]")
    # every DDP rank builds the same set; each writes a private temporary and renames it (atomic, identical content)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f"train_augment.txt.{os.getpid()}.tmp"
    clean = lambda t: " ".join(t.split())  # noqa: E731  (no tab or newline inside a sentence)
    tmp.write_text(
        "".join(f"{clean(t)}\t{y}\n" for t, y in zip(data.train.texts, data.train.labels)), "utf-8"
    )
    os.replace(tmp, out / "train_augment.txt")
    return {"train_sentences": n, "train_sentences_augmented": len(data.train)}


def _partial_load(model: SpikeBERT, init: str) -> dict[str, int]:
    """The official ``load_state_dict(strict=False)``: tensors whose names and shapes fit are loaded, the rest kept
    as initialised; the counts are reported (and an empty load is still an error, unlike the official code)."""
    from spikebert.model import _strip_student
    from tenfold_core.models import load_weights

    p = Path(init)
    state = _strip_student(load_weights(p / "model.safetensors" if p.is_dir() else p))
    own = model.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fitting:
        raise ModelLoadError(
            f"{init}: no stage-1 tensor fits this student (the partial load would load nothing)"
        )
    model.load_state_dict(fitting, strict=False)
    warnings.warn(
        f"spikebert: partial init loaded {len(fitting)} of {len(own)} student tensors", stacklevel=2
    )
    return {"init_loaded_tensors": len(fitting), "init_student_tensors": len(own)}


def train_direct(cfg: TrainDirectConfig) -> dict[str, Any]:
    """The directly trained baseline: the same student, cross-entropy only, no teacher."""
    _check_monitor(cfg.train, ("val_acc", "val_mcc", "val_loss"))
    seed_everything(cfg.train.seed)  # the model's initialisation follows train.seed, whatever ran before
    data = load_task_data(cfg.data)
    tok = build_tokenizer(
        cfg.tokenizer,
        data.train.texts,
        cfg.data.tokenizer,
        cfg.data.data == "synthetic",
        cfg.data.max_length + 2,
    )
    model_cfg = _fill_model(
        cfg.model, tok, data.num_labels, 0, distill_heads=False, embedding_projection=False
    )
    ce_only = TaskLossConfig(ce=1.0, logit=0.0, emb=0.0, rep=0.0)
    module = TaskDistillModule(
        model_cfg, None, cfg.optim, ce_only, rate_weight=cfg.rate_reg.weight, rate_target=cfg.rate_reg.target
    )
    train_dl, dev_dl, test_dl = _data_loaders(tok, data, cfg.data, cfg.train.seed)
    cbs = [FiringRateLogger()]
    rc = _run_config(cfg, model_cfg, tokenizer=cfg.tokenizer, label_names=data.label_names)
    res = fit(module, cfg.train, train_dl, dev_dl, callbacks=cbs, run_config=rc)
    return _finish(
        module, res, Path(cfg.train.out_dir), tok, {"dev": dev_dl, "test": test_dl}, "train-direct", cbs
    )
