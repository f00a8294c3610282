"""SpikeCLIP training verbs, each a LightningModule run through :func:`tenfold_core.train.fit`.

- ``train-teacher``: the demo's mini-CLIP (contrastive image-caption training, multi-positive InfoNCE).
- ``align-text`` (stage 1): text SNN <- 1 - cos to the teacher's text features on the class x template corpus.
- ``align-image`` (stage 1): image SNN <- 1 - cos to the teacher's image features on unlabelled images.
- ``finetune-teacher`` (stage 2): the teacher's image tower, CE on cosines to the text-SNN class embeddings.
- ``dual-finetune`` (stage 2): image SNN, CE + KL(teacher || student) on prompt-similarity logits, optional
  gradient-angle gate.

Every exported network sits at ``module.model``; frozen teachers are sub-modules without trainable parameters (the core
keeps them in eval mode). Validation metrics are logged with ``sync_dist=True``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from spikeclip.config import (
    AlignImageConfig,
    AlignTextConfig,
    DataConfig,
    DualFinetuneConfig,
    DualLossConfig,
    FinetuneTeacherConfig,
    MiniCLIPConfig,
    TextEncoderConfig,
    TrainTeacherConfig,
)
from spikeclip.data import ImageData, build_prompts, load_data
from spikeclip.losses import class_logits, cosine_alignment_loss, dual_loss, gradient_angle
from spikeclip.model import CLIPTeacher, MiniCLIP, SpikingImageEncoder, SpikingTextEncoder, WordTokenizer
from tenfold_core.errors import ConfigError, ModelLoadError
from tenfold_core.train import TenfoldModule, fit, make_dataloader

__all__ = [
    "AlignImageModule",
    "AlignTextModule",
    "DualFinetuneModule",
    "TeacherFinetuneModule",
    "TeacherModule",
    "align_image",
    "align_text",
    "class_embeddings",
    "dual_finetune",
    "finetune_teacher",
    "load_run_dir",
    "resolve_teacher",
    "resolve_text",
    "train_teacher",
]


# ----------------------------------------------------------------------------------------------- run folders
def load_run_dir(path: str | Path) -> tuple[nn.Module, dict]:
    """A spikeclip run folder's network (rebuilt by the core's ``load_run``, in eval mode) and its config.json."""
    from tenfold_core.models import load_run

    run = load_run(path)
    spec = str(run.config.get("model_class", ""))
    if not spec.startswith("spikeclip."):
        raise ModelLoadError(f"{Path(path) / 'config.json'}: model_class {spec!r} is not a spikeclip network")
    return run.model, run.config


def _prompt_vocab(data_cfg: DataConfig, classes: list[str], extra: list[str] = ()) -> list[str]:
    texts, _ = build_prompts(classes, data_cfg.templates)
    words = dict.fromkeys(w for t in [*texts, *extra] for w in WordTokenizer.words(t))
    return list(words)


def resolve_teacher(spec: str, mini: MiniCLIPConfig, data_cfg: DataConfig, classes: list[str], seed: int = 0):
    """A teacher from a run folder, a Hugging Face CLIPModel (hub id / dir), or ``tiny-random`` (a random mini-CLIP
    built in place from ``mini``; the bag text tower gets the prompt vocabulary)."""
    if spec == "tiny-random":
        if mini.text_backbone == "bag" and not mini.vocab:
            mini = dataclasses.replace(mini, vocab=_prompt_vocab(data_cfg, classes))
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return MiniCLIP(mini)
    if not spec:
        raise ConfigError("teacher: empty (give a run folder, a CLIPModel hub id / dir, or tiny-random)")
    p = Path(spec).expanduser()
    if (p / "config.json").is_file() and "model_class" in json.loads((p / "config.json").read_text()):
        model, _ = load_run_dir(p)
        if not isinstance(model, (MiniCLIP, CLIPTeacher)):
            raise ConfigError(f"teacher: {p} holds a {type(model).__name__}, not a teacher")
        return model
    return CLIPTeacher.from_source(spec)


def _freeze(m: nn.Module) -> nn.Module:
    m.requires_grad_(False)
    return m.eval()


def init_text_encoder(cfg: TextEncoderConfig, teacher) -> SpikingTextEncoder:
    """A text SNN whose tokenizer and token + position embeddings are copies of the teacher's."""
    init = teacher.embedding_init()
    n_pos = init["position"].shape[0]
    if cfg.max_length > n_pos:
        raise ConfigError(f"model.max_length {cfg.max_length} exceeds the teacher's {n_pos} positions")
    filled = dataclasses.replace(
        cfg,
        tokenizer=cfg.tokenizer or init["tokenizer"],
        vocab=cfg.vocab or init["vocab"],
        vocab_size=init["token"].shape[0],
        embed_dim=init["token"].shape[1],
        embed_layer_norm=init["norm"] is not None,
        out_dim=teacher.embed_dim,
    )
    model = SpikingTextEncoder(filled)
    with torch.no_grad():
        model.embed.token.weight.copy_(init["token"])
        model.embed.position.copy_(init["position"][: filled.max_length])
        if init["norm"] is not None:
            model.embed.norm.load_state_dict(init["norm"])
    return model


def resolve_text(spec: str, cfg: TextEncoderConfig, teacher, seed: int = 0) -> SpikingTextEncoder:
    """An align-text run folder, or ``tiny-random``: an untrained text SNN initialised from ``teacher``."""
    if spec == "tiny-random":
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return init_text_encoder(cfg, teacher)
    model, _ = load_run_dir(spec)
    if not isinstance(model, SpikingTextEncoder):
        raise ConfigError(f"text: {spec} holds a {type(model).__name__}, not an align-text run")
    return model


@torch.no_grad()
def class_embeddings(text_model, classes: list[str], templates: list[str]) -> torch.Tensor:
    """Prompt-ensemble class weights ``[C, D]``: mean of the normalised features over templates, renormalised.

    ``text_model`` is a text SNN (``encode``) or a teacher (``encode_text``)."""
    was = text_model.training
    text_model.eval()
    encode = text_model.encode if isinstance(text_model, SpikingTextEncoder) else text_model.encode_text
    texts, _ = build_prompts(classes, templates)
    feats = F.normalize(encode(texts).float(), dim=-1).reshape(len(classes), len(templates), -1).mean(1)
    text_model.train(was)
    return F.normalize(feats, dim=-1)


def _loaders(data: ImageData, cfg: DataConfig, train_split: str, seed: int, val_split: str = "val"):
    train = make_dataloader(
        data.split(train_split), cfg.batch_size, shuffle=True, seed=seed, num_workers=cfg.num_workers
    )
    val = make_dataloader(data.split(val_split), cfg.batch_size, num_workers=cfg.num_workers)
    return train, val


def _result(res, **extra) -> dict[str, Any]:
    return {"out_dir": str(res.out_dir), "best_score": res.best_score, "weights": str(res.weights), **extra}


# ---------------------------------------------------------------------------------------- train-teacher
class TeacherModule(TenfoldModule):
    """Mini-CLIP contrastive training: every caption of an image's class is a positive (the corpus is class x template,
    so in-batch duplicates are the rule); symmetric soft-target InfoNCE with a learnable temperature."""

    def __init__(self, model: MiniCLIP, classes: list[str], templates: list[str], optim=None) -> None:
        super().__init__(optim)
        self.model = model
        self.classes, self.templates = classes, templates
        self.texts, ids = build_prompts(classes, templates)
        self.register_buffer("text_class", torch.tensor(ids), persistent=False)

    def training_step(self, batch, batch_idx):
        x, y = batch
        img = F.normalize(self.model.encode_image(x), dim=-1)
        txt = F.normalize(self.model.encode_text(self.texts), dim=-1)
        scale = self.model.logit_scale.clamp(max=math.log(100)).exp()
        logits = scale * img @ txt.t()  # [B, C*K]
        pos = (y[:, None] == self.text_class[None, :]).float()
        i2t = -(pos / pos.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1).mean()
        present = pos.sum(0) > 0
        pos_t = pos.t()[present]
        t2i = -(pos_t / pos_t.sum(1, keepdim=True) * logits.t()[present].log_softmax(1)).sum(1).mean()
        loss = (i2t + t2i) / 2
        self.log_train("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        w = class_embeddings(self.model, self.classes, self.templates)
        acc = (class_logits(self.model.encode_image(x), w).argmax(-1) == y).float().mean()
        self.log("val_acc", acc, prog_bar=True, sync_dist=True)


def train_teacher(cfg: TrainTeacherConfig) -> dict[str, Any]:
    """Train the mini-CLIP teacher on the non-test images with class-name captions."""
    data = load_data(cfg.data)
    model_cfg = cfg.model
    if model_cfg.text_backbone == "bag" and not model_cfg.vocab:
        model_cfg = dataclasses.replace(model_cfg, vocab=_prompt_vocab(cfg.data, data.classes))
    torch.manual_seed(cfg.train.seed)
    model = MiniCLIP(model_cfg)
    train_set = torch.utils.data.ConcatDataset([data.split("unlabelled"), data.split("labelled")])
    train = make_dataloader(train_set, cfg.data.batch_size, shuffle=True, seed=cfg.train.seed)
    val = make_dataloader(data.split("val"), cfg.data.batch_size)
    module = TeacherModule(model, data.classes, cfg.data.templates, cfg.optim)
    res = fit(
        module, cfg.train, train, val, run_config={"model": model_cfg, "data": cfg.data, "optim": cfg.optim}
    )
    return _result(res, verb="train-teacher")


# --------------------------------------------------------------------------------------------- align-text
class AlignTextModule(TenfoldModule):
    """Stage 1 text: ``1 - cos(text SNN(ids), teacher text features)`` on (ids, feature) batches."""

    def __init__(self, model: SpikingTextEncoder, optim=None) -> None:
        super().__init__(optim)
        self.model = model

    def training_step(self, batch, batch_idx):
        ids, target = batch
        loss = cosine_alignment_loss(self.model(ids), target)
        self.log_train("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        ids, target = batch
        self.log("val_loss", cosine_alignment_loss(self.model(ids), target), prog_bar=True, sync_dist=True)


def align_text(cfg: AlignTextConfig) -> dict[str, Any]:
    """Stage 1: align the text SNN to the teacher's text features (the class x template prompt corpus)."""
    data = load_data(cfg.data)
    teacher = _freeze(resolve_teacher(cfg.teacher, cfg.teacher_model, cfg.data, data.classes, cfg.train.seed))
    torch.manual_seed(cfg.train.seed)
    model = init_text_encoder(cfg.model, teacher)
    texts, _ = build_prompts(data.classes, cfg.data.templates)
    with torch.no_grad():
        target = teacher.encode_text(texts).float().cpu()
        ids = model.tokenize(texts).cpu()
    ds = TensorDataset(ids, target)
    repeats = max(1, math.ceil(cfg.data.batch_size * 8 / len(ds)))  # >= 8 steps per epoch on small corpora
    train = make_dataloader(
        torch.utils.data.ConcatDataset([ds] * repeats), cfg.data.batch_size, shuffle=True, seed=cfg.train.seed
    )
    val = make_dataloader(ds, cfg.data.batch_size)
    res = fit(AlignTextModule(model, cfg.optim), cfg.train, train, val,
              run_config={"model": model.config, "data": cfg.data, "teacher": cfg.teacher})  # fmt: skip
    return _result(res, verb="align-text", prompts=len(texts))


# -------------------------------------------------------------------------------------------- align-image
class AlignImageModule(TenfoldModule):
    """Stage 1 image: ``1 - cos(image SNN(x at input_size), teacher image features(x at the teacher's size))``."""

    def __init__(self, model: SpikingImageEncoder, teacher: nn.Module, optim=None) -> None:
        super().__init__(optim)
        self.model = model
        self.teacher = _freeze(teacher)

    def _loss(self, x):
        with torch.no_grad():
            target = self.teacher.encode_image(x)
        return cosine_alignment_loss(self.model(x), target)

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch[0])
        self.log_train("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch[0]), prog_bar=True, sync_dist=True)


def align_image(cfg: AlignImageConfig) -> dict[str, Any]:
    """Stage 1: align the image SNN to the teacher's image features on unlabelled images."""
    data = load_data(cfg.data)
    teacher = resolve_teacher(cfg.teacher, cfg.teacher_model, cfg.data, data.classes, cfg.train.seed)
    model_cfg = cfg.model if cfg.model.out_dim == teacher.embed_dim else dataclasses.replace(
        cfg.model, out_dim=teacher.embed_dim
    )  # fmt: skip
    if cfg.model.out_dim not in (0, teacher.embed_dim):
        raise ConfigError(
            f"model.out_dim {cfg.model.out_dim} differs from the teacher's width {teacher.embed_dim}"
        )
    torch.manual_seed(cfg.train.seed)
    model = SpikingImageEncoder(model_cfg)
    train, val = _loaders(data, cfg.data, "unlabelled", cfg.train.seed)
    res = fit(AlignImageModule(model, teacher, cfg.optim), cfg.train, train, val,
              run_config={"model": model_cfg, "data": cfg.data, "teacher": cfg.teacher})  # fmt: skip
    return _result(res, verb="align-image")


# ---------------------------------------------------------------------------------------- finetune-teacher
class TeacherFinetuneModule(TenfoldModule):
    """Stage 2 teacher: CE on ``logit_scale * cos(teacher image features, text-SNN class embeddings)``; only the image
    tower trains (the rest is frozen, so DDP sees no unused trainable parameters)."""

    def __init__(self, model: nn.Module, class_weights: torch.Tensor, logit_scale: float, optim=None) -> None:
        super().__init__(optim)
        self.model = model
        model.requires_grad_(False)
        for p in model.image_parameters():
            p.requires_grad_(True)
        self.register_buffer("class_weights", class_weights.clone(), persistent=False)
        self.logit_scale = logit_scale

    def _logits(self, x):
        return class_logits(self.model.encode_image(x), self.class_weights, self.logit_scale)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self._logits(x), y)
        self.log_train("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self._logits(x)
        self.log("val_loss", F.cross_entropy(logits, y), sync_dist=True)
        self.log("val_acc", (logits.argmax(-1) == y).float().mean(), prog_bar=True, sync_dist=True)


def finetune_teacher(cfg: FinetuneTeacherConfig) -> dict[str, Any]:
    """Stage 2: fine-tune the teacher's image tower against the text-SNN class embeddings (labelled split)."""
    data = load_data(cfg.data)
    teacher = resolve_teacher(cfg.teacher, cfg.model, cfg.data, data.classes, cfg.train.seed)
    text = resolve_text(cfg.text, cfg.text_model, teacher, cfg.train.seed)
    weights = class_embeddings(text, data.classes, cfg.data.templates)
    if weights.shape[1] != teacher.embed_dim:
        raise ConfigError(
            f"text: class embeddings are {weights.shape[1]}-d, the teacher's space is {teacher.embed_dim}-d"
        )
    train, val = _loaders(data, cfg.data, "labelled", cfg.train.seed)
    module = TeacherFinetuneModule(teacher, weights, cfg.logit_scale, cfg.optim)
    res = fit(module, cfg.train, train, val,
              run_config={"model": teacher.config, "data": cfg.data, "text": cfg.text})  # fmt: skip
    return _result(res, verb="finetune-teacher")


# ------------------------------------------------------------------------------------------- dual-finetune
class DualFinetuneModule(TenfoldModule):
    """Stage 2 student: ``ce_weight * CE(z_s, y) + kl_weight * KL(softmax(z_t) || softmax(z_s))`` with
    ``z = logit_scale * cos(features, class embeddings)``; the teacher sees the image at its own size.

    ``loss.boundary_angle > 0`` turns on the official gradient-angle gate (manual optimisation): angle(dCE, dKL) <=
    boundary -> an optimizer step on CE only; otherwise the batch is skipped. Under DDP the decision uses the mean
    cosine over ranks, so every rank steps or skips together.
    """

    def __init__(
        self,
        model: SpikingImageEncoder,
        teacher: nn.Module | None,
        class_weights: torch.Tensor,
        loss: DualLossConfig,
        optim=None,
    ) -> None:
        super().__init__(optim)
        self.model = model
        self.teacher = _freeze(teacher) if teacher is not None and loss.kl_weight > 0 else None
        self.register_buffer("class_weights", class_weights.clone(), persistent=False)
        self.loss_cfg = loss
        self.gated = loss.boundary_angle > 0
        self.automatic_optimization = not self.gated
        self.skipped = 0

    def _student_logits(self, x):
        return class_logits(self.model(x), self.class_weights, self.loss_cfg.logit_scale)

    def _teacher_logits(self, x):
        if self.teacher is None:
            return None
        with torch.no_grad():
            return class_logits(self.teacher.encode_image(x), self.class_weights, self.loss_cfg.logit_scale)

    def training_step(self, batch, batch_idx):
        x, y = batch
        lc = self.loss_cfg
        total, ce, kl = dual_loss(self._student_logits(x), self._teacher_logits(x), y,
                                  ce_weight=lc.ce_weight, kl_weight=lc.kl_weight, kl_reduction=lc.kl_reduction)  # fmt: skip
        self.log_train("train_ce", ce)
        self.log_train("train_kl", kl)
        if not self.gated:
            self.log_train("train_loss", total, prog_bar=True)
            return total
        params = [p for p in self.model.parameters() if p.requires_grad]
        angle = gradient_angle(ce, kl, params)
        cos = torch.tensor(math.cos(math.radians(angle)), device=x.device)
        if self.trainer.world_size > 1:
            cos = self.trainer.strategy.reduce(cos, reduce_op="mean")
        angle = math.degrees(math.acos(max(-1.0, min(1.0, float(cos)))))
        opt = self.optimizers()
        sched = self.lr_schedulers()
        opt.zero_grad()
        if angle <= lc.boundary_angle:
            self.manual_backward(lc.ce_weight * ce)
            opt.step()
        else:
            self.manual_backward(0.0 * ce)  # keeps DDP's gradient sync in step on every rank; no update
            self.skipped += 1
        if sched is not None:
            sched.step()
        self.log_train("grad_angle", angle)
        return total.detach()

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self._student_logits(x)
        self.log("val_loss", F.cross_entropy(logits, y), sync_dist=True)
        self.log("val_acc", (logits.argmax(-1) == y).float().mean(), prog_bar=True, sync_dist=True)


def dual_finetune(cfg: DualFinetuneConfig) -> dict[str, Any]:
    """Stage 2: the image SNN (from an align-image run, or random) trained with CE + KL to the teacher."""
    data = load_data(cfg.data)
    need_teacher = cfg.loss.kl_weight > 0 or cfg.text == "tiny-random"
    teacher = (
        resolve_teacher(cfg.teacher, cfg.teacher_model, cfg.data, data.classes, cfg.train.seed)
        if need_teacher
        else None
    )
    text = resolve_text(cfg.text, cfg.text_model, teacher, cfg.train.seed)
    weights = class_embeddings(text, data.classes, cfg.data.templates)
    if cfg.init:
        model, _ = load_run_dir(cfg.init)
        if not isinstance(model, SpikingImageEncoder):
            raise ConfigError(f"init: {cfg.init} holds a {type(model).__name__}, not an align-image run")
        model.train()
    else:
        model_cfg = (
            cfg.model if cfg.model.out_dim else dataclasses.replace(cfg.model, out_dim=weights.shape[1])
        )
        torch.manual_seed(cfg.train.seed)
        model = SpikingImageEncoder(model_cfg)
    if model.config.out_dim != weights.shape[1]:
        raise ConfigError(
            f"model.out_dim {model.config.out_dim} differs from the class embeddings' {weights.shape[1]}"
        )
    if teacher is not None and cfg.loss.kl_weight > 0 and teacher.embed_dim != weights.shape[1]:
        raise ConfigError(
            f"teacher: {teacher.embed_dim}-d features, the class embeddings are {weights.shape[1]}-d"
        )
    train, val = _loaders(data, cfg.data, "labelled", cfg.train.seed)
    module = DualFinetuneModule(model, teacher, weights, cfg.loss, cfg.optim)
    res = fit(module, cfg.train, train, val,
              run_config={"model": model.config, "data": cfg.data, "loss": cfg.loss, "init": cfg.init,
                          "teacher": cfg.teacher, "text": cfg.text})  # fmt: skip
    return _result(res, verb="dual-finetune", skipped_batches=module.skipped)
