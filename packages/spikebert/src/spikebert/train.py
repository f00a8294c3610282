"""Training stages as Lightning modules (driven by :func:`tenfold_core.train.fit` for users) plus a small plain
loop (:func:`quick_fit`) that drives the same modules in the demo and tests, where Lightning's overhead dominates.

- :class:`TeacherModule` — stage 0, fine-tune a Hugging Face classifier (the teacher).
- :class:`PretrainDistillModule` — stage 1, student block representations <- frozen pre-trained teacher hidden
  states (stride layer map), on unlabelled text.
- :class:`TaskDistillModule` — stage 2, CE + KL(logits) + embedding MSE + hidden MSE from a fine-tuned teacher;
  with only the CE weight set and no teacher it is the directly trained baseline.

Model selection uses the dev split only (``val_acc`` / ``val_mcc`` / ``val_loss``); the test split is never seen
during training.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from spikebert.losses import StageWeights, rep_loss, task_distill_loss
from spikebert.model import SpikeBERT, SpikeBertConfig, stride_layer_map
from spikebert.teacher import teacher_forward, teacher_layers, teacher_word_embeddings
from tenfold_core.metrics import accuracy, mcc
from tenfold_core.train import OptimConfig, TenfoldModule, build_optimizer

__all__ = [
    "TeacherModule",
    "PretrainDistillModule",
    "TaskDistillModule",
    "quick_fit",
    "predict_logits",
    "score",
]


def score(logits: torch.Tensor, labels: torch.Tensor, metric: str = "accuracy") -> float:
    return mcc(logits, labels) if metric == "mcc" else accuracy(logits, labels)


class _EvalMixin:
    """Collects dev logits over a validation epoch and logs ``val_acc`` and ``val_mcc``."""

    def on_validation_epoch_start(self):
        self._val: list[tuple[torch.Tensor, torch.Tensor]] = []

    def validation_step(self, batch, batch_idx):
        logits = self.eval_logits(batch)
        self._val.append((logits.detach().float().cpu(), batch["labels"].cpu()))
        self.log("val_loss", F.cross_entropy(logits.float(), batch["labels"]), prog_bar=True)

    def on_validation_epoch_end(self):
        if not getattr(self, "_val", None):
            return
        logits = torch.cat([v[0] for v in self._val])
        labels = torch.cat([v[1] for v in self._val])
        self.log("val_acc", accuracy(logits, labels), prog_bar=True)
        self.log("val_mcc", mcc(logits, labels))
        self._val = []


class TeacherModule(_EvalMixin, TenfoldModule):
    """Stage 0: cross-entropy fine-tuning of a Hugging Face sequence classifier."""

    def __init__(self, model: nn.Module, optim: OptimConfig | Mapping[str, Any] | None = None):
        super().__init__(optim)
        self.model = model

    def compute_loss(self, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        loss = F.cross_entropy(out.logits.float(), batch["labels"])
        return loss, {"ce": loss.detach()}

    def eval_logits(self, batch) -> torch.Tensor:
        return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits

    def training_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log("train_loss", loss, prog_bar=True)
        return loss


class _StudentModule(TenfoldModule):
    """Holds the student (a registered submodule: checkpoints and exported weights are the student's only) and a
    frozen teacher that is deliberately *not* registered, so it is neither saved nor optimised."""

    def __init__(
        self,
        student_config: Mapping[str, Any],
        optim: OptimConfig | Mapping[str, Any] | None,
        weights: Mapping[str, Any],
        layer_map: list[int] | None,
        teacher: nn.Module | None,
    ):
        super().__init__(optim)
        self.student = SpikeBERT(SpikeBertConfig.from_dict(dict(student_config)))
        self.weights = StageWeights(**dict(weights))
        self.layer_map = list(layer_map) if layer_map else None
        if teacher is not None:
            teacher.eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
        object.__setattr__(self, "_teacher", teacher)

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
        return out.attention_mask if self.student.config.mask_padding else None

    def training_step(self, batch, batch_idx):
        loss, parts = self.compute_loss(batch)
        self.log("train_loss", loss, prog_bar=True)
        for k, v in parts.items():
            self.log(f"train_{k}", v)
        return loss


def _layer_map_for(teacher: nn.Module | None, depth: int, align: str) -> list[int] | None:
    return None if teacher is None else stride_layer_map(teacher_layers(teacher), depth, align)


class PretrainDistillModule(_StudentModule):
    """Stage 1: ``w_rep * sum_i MSE(rep_i, h^T_map(i))`` on unlabelled text; validation logs ``val_loss``."""

    def __init__(
        self,
        student_config: Mapping[str, Any],
        teacher: nn.Module,
        optim: OptimConfig | Mapping[str, Any] | None = None,
        rep_weight: float = 1.0,
        rep_batch_div: bool = True,
        layer_align: str = "stride",
    ):
        cfg = SpikeBertConfig.from_dict(dict(student_config))
        lm = _layer_map_for(teacher, cfg.depth, layer_align)
        w = {"ce": 0.0, "logit": 0.0, "emb": 0.0, "rep": rep_weight, "rep_batch_div": rep_batch_div}
        super().__init__(student_config, optim, w, lm, teacher)
        self.save_hyperparameters(
            {
                "stage": "distill-pretrain",
                "student_config": dict(student_config),
                "weights": w,
                "layer_map": lm,
            }
        )

    def compute_loss(self, batch):
        out = self.student(batch["input_ids"], batch["attention_mask"])
        _, hidden = self._teacher_out(batch)
        r = rep_loss(
            out.representations, hidden, self.layer_map, self._rep_mask(out), self.weights.rep_batch_div
        )
        return self.weights.rep * r, {"rep": r.detach()}

    def validation_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log("val_loss", loss, prog_bar=True)


class TaskDistillModule(_EvalMixin, _StudentModule):
    """Stage 2 (and, with ``teacher=None`` and only ``ce`` weighted, the directly trained baseline)."""

    def __init__(
        self,
        student_config: Mapping[str, Any],
        teacher: nn.Module | None = None,
        optim: OptimConfig | Mapping[str, Any] | None = None,
        weights: StageWeights | Mapping[str, Any] | None = None,
        layer_align: str = "stride",
    ):
        cfg = SpikeBertConfig.from_dict(dict(student_config))
        w = weights if weights is not None else StageWeights()
        w = dict(w.__dict__) if isinstance(w, StageWeights) else dict(w)
        if teacher is None:
            w.update(logit=0.0, emb=0.0, rep=0.0)
            if not w.get("ce"):
                raise ValueError("without a teacher only the CE loss is left: its weight must be > 0")
        lm = _layer_map_for(teacher, cfg.depth, layer_align)
        super().__init__(student_config, optim, w, lm, teacher)
        stage = "distill-task" if teacher is not None else "train-direct"
        self.save_hyperparameters(
            {"stage": stage, "student_config": dict(student_config), "weights": w, "layer_map": lm}
        )

    def eval_logits(self, batch) -> torch.Tensor:
        return self.student(batch["input_ids"], batch["attention_mask"], return_representations=False).logits

    def compute_loss(self, batch):
        w = self.weights
        need_reps = self._teacher is not None and w.rep > 0
        out = self.student(batch["input_ids"], batch["attention_mask"], return_representations=need_reps)
        t_logits = hidden = t_emb = s_emb = None
        if self._teacher is not None and (w.logit or w.rep):
            t_logits, hidden = self._teacher_out(batch)
        if self._teacher is not None and w.emb:
            t_emb = teacher_word_embeddings(self._teacher).detach()
            if t_emb.device != batch["input_ids"].device:
                t_emb = t_emb.to(batch["input_ids"].device)
            s_emb = self.student.embedding_matrix()
        return task_distill_loss(
            logits=out.logits, labels=batch["labels"], teacher_logits=t_logits, student_emb=s_emb,
            teacher_emb=t_emb, reps=out.representations, teacher_hidden=hidden, layer_map=self.layer_map or [],
            mask=self._rep_mask(out), weights=w,
        )  # fmt: skip


# ------------------------------------------------------------------------------------------- plain loop
@torch.no_grad()
def predict_logits(module, loader) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of a whole loader through ``module.eval_logits`` (eval mode, restored after)."""
    was = module.training
    module.eval()
    outs, labels = [], []
    for batch in loader:
        outs.append(module.eval_logits(batch).float())
        labels.append(batch["labels"])
    module.train(was)
    return torch.cat(outs), torch.cat(labels)


def quick_fit(
    module,
    train_loader,
    val_loader=None,
    epochs: int = 1,
    optim: OptimConfig | None = None,
    metric: str = "accuracy",
    grad_clip: float | None = 1.0,
) -> dict[str, Any]:
    """Train ``module`` (anything with ``compute_loss(batch)``) with a plain loop and the same optimizer and schedule
    as :func:`tenfold_core.train.fit`; with ``val_loader`` keep the epoch with the best dev score (``eval_logits``)
    or, for stage 1, the lowest dev loss. Returns the history."""
    optim = optim or OptimConfig()
    total = epochs * len(train_loader)
    opt, sched = build_optimizer(module, optim, total)
    has_eval = hasattr(module, "eval_logits")
    best, best_state, history = -math.inf, None, {"train_loss": [], "val": []}
    module.train()
    for _ in range(epochs):
        tot, n = 0.0, 0
        for batch in train_loader:
            loss, _ = module.compute_loss(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
            opt.step()
            sched.step()
            tot, n = tot + float(loss.detach()), n + 1
        history["train_loss"].append(tot / max(n, 1))
        if val_loader is None:
            continue
        if has_eval:
            logits, labels = predict_logits(module, val_loader)
            s = score(logits, labels, metric)
        else:
            module.eval()
            with torch.no_grad():
                s = -sum(float(module.compute_loss(b)[0]) for b in val_loader) / max(len(val_loader), 1)
            module.train()
        history["val"].append(s)
        if s > best:
            best, best_state = s, copy.deepcopy(module.state_dict())
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    history["best_val"] = best if best_state is not None else None
    return history
