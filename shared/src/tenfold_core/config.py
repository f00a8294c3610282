"""The shared training settings, torch-free: ``--train.*`` and ``--optim.*`` in every package's training verbs.

:class:`TrainConfig` is everything :func:`tenfold_core.train.fit` takes; :class:`OptimConfig` the optimizer and the
learning-rate schedule (``interval`` "step" or "epoch"; ``schedule: step`` is step decay at ``milestones`` by
``gamma``). Both validate in ``__post_init__`` with a ``ValueError`` naming the field, which the CLI turns into one line
and exit status 2. Importing this module does not import torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from tenfold_core.cli import arg

__all__ = [
    "OptimConfig",
    "TrainConfig",
    "TextDataConfig",
    "AttackConfig",
    "ATTACK_RECIPES",
    "PRECISIONS",
    "parse_devices",
]

PRECISIONS = (
    "auto", "32-true", "32", "16-mixed", "16", "bf16-mixed", "bf16", "16-true", "bf16-true", "64-true", "64",
    "transformer-engine",
)  # fmt: skip


def _finite(name: str, value: float, low: float | None = None, high: float | None = None, *, low_open=False):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")


@dataclass
class OptimConfig:
    """Optimizer and learning-rate schedule."""

    name: Literal["adamw", "adam", "sgd"] = arg("adamw", help="optimizer")
    lr: float = arg(1e-3, help="peak learning rate")
    weight_decay: float = arg(
        0.0, help="decoupled (AdamW) or L2 (Adam/SGD) weight decay; not on biases and norms unless decay_all"
    )
    decay_all: bool = arg(
        False, help="weight decay on every parameter, biases and norms included (as some official codes do)"
    )
    momentum: float = arg(0.9, help="SGD momentum")
    nesterov: bool = arg(False, help="SGD with Nesterov momentum")
    betas: list[float] = arg([0.9, 0.999], help="Adam(W) betas")
    schedule: Literal["constant", "cosine", "linear", "inverse_sqrt", "step"] = arg(
        "constant", help="learning-rate schedule (step: multiply by gamma at each milestone)"
    )
    interval: Literal["step", "epoch"] = arg(
        "step",
        help="the schedule advances per optimizer step or per epoch (warm-up and milestones count these)",
    )
    milestones: list[int] = arg(
        [], help="schedule=step: steps/epochs (per interval) where the lr is multiplied by gamma"
    )
    gamma: float = arg(0.1, help="schedule=step: decay factor at each milestone")
    warmup_steps: int = arg(0, help="linear warm-up in intervals (overrides warmup_ratio when > 0)")
    warmup_ratio: float = arg(0.0, help="warm-up as a fraction of all intervals")
    min_lr_ratio: float = arg(0.0, help="final lr / peak lr for cosine and linear")

    def __post_init__(self):
        _finite("optim.lr", self.lr, 0.0, low_open=True)
        _finite("optim.weight_decay", self.weight_decay, 0.0)
        _finite("optim.momentum", self.momentum, 0.0, 1.0)
        _finite("optim.gamma", self.gamma, 0.0, low_open=True)
        _finite("optim.min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        _finite("optim.warmup_ratio", self.warmup_ratio, 0.0)
        if not self.warmup_ratio < 1:
            raise ValueError(f"optim.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.warmup_steps < 0:
            raise ValueError(f"optim.warmup_steps must be >= 0, got {self.warmup_steps}")
        if len(self.betas) != 2:
            raise ValueError(f"optim.betas must be two numbers, got {list(self.betas)}")
        for b in self.betas:
            _finite("optim.betas", b, 0.0)
            if not b < 1:
                raise ValueError(f"optim.betas must be in [0, 1), got {list(self.betas)}")
        ms = list(self.milestones)
        if any(m < 0 for m in ms) or ms != sorted(ms):
            raise ValueError(f"optim.milestones must be non-negative and increasing, got {ms}")
        if self.schedule == "step" and not ms:
            raise ValueError("optim.milestones: schedule 'step' needs at least one milestone")


def parse_devices(devices: str | int) -> str | int | list[int]:
    """``auto``, a positive count or a comma-separated list of device indices; ValueError naming train.devices."""
    if isinstance(devices, bool):
        raise ValueError(f"train.devices: expected auto, a count or a list like 0,1, got {devices!r}")
    if isinstance(devices, int):
        s = str(devices)
    elif isinstance(devices, (list, tuple)):
        s = ",".join(str(d) for d in devices)
    else:
        s = str(devices).strip().strip("[]").strip()
    if s == "auto":
        return "auto"
    try:
        if "," in s:
            ids = [int(x) for x in s.split(",") if x.strip()]
            if not ids or any(i < 0 for i in ids) or len(set(ids)) != len(ids):
                raise ValueError
            return ids
        n = int(s)
    except ValueError:
        raise ValueError(
            f"train.devices: expected auto, a count or a list like 0,1, got {devices!r}"
        ) from None
    if n == -1:  # Lightning's "all devices"
        return -1
    if n < 1:
        raise ValueError(f"train.devices must be >= 1 (or auto, -1 for all), got {n}")
    return n


@dataclass
class TrainConfig:
    """Everything :func:`tenfold_core.train.fit` takes; each field is a CLI flag in every package."""

    out_dir: str = arg("runs/train", help="checkpoints, logs and exported weights go here")
    max_epochs: int = arg(10, help="epochs (-1: no limit, use max_steps)")
    max_steps: int = arg(-1, help="optimizer steps (-1: no limit)")
    seed: int = arg(0, help="seed for python, numpy and torch (and data shuffling)")
    deterministic: bool = arg(False, help="deterministic algorithms (slower on GPU)")
    accelerator: str = arg("auto", help="auto, cpu, gpu, cuda, mps, tpu")
    devices: str = arg("auto", help="auto, a count ('2') or a list ('0,1')")
    strategy: str = arg("auto", help="auto, ddp, ddp_spawn, fsdp, deepspeed ... (Lightning names)")
    num_nodes: int = arg(1, help="nodes for multi-node training")
    precision: str = arg(
        "auto", help="auto (bf16-mixed on capable GPUs, 32-true on CPU), 32-true, 16-mixed, bf16-mixed"
    )
    grad_clip: float | None = arg(None, help="clip gradient norm to this value")
    accumulate: int = arg(1, help="gradient accumulation steps")
    monitor: str | None = arg(
        "val_loss", help="validation metric that selects the best checkpoint (never a test metric)"
    )
    mode: Literal["min", "max"] = arg(
        "min", help="whether the monitored metric should be minimised or maximised"
    )
    early_stopping_patience: int | None = arg(
        None, help="stop after this many validations without improvement"
    )
    resume: str = arg(
        "auto", help="auto (continue from out_dir/checkpoints/last.ckpt if present), never, or a path"
    )
    checkpoint_every_n_steps: int | None = arg(
        None, help="also checkpoint every N optimizer steps (else at validation)"
    )
    val_every_n_epochs: int = arg(1, help="validate every N epochs")
    log_every_n_steps: int = arg(50, help="log training metrics every N steps")
    progress_bar: bool = arg(True, help="show a progress bar")
    loggers: list[str] = arg(
        ["csv"], help="any of csv, tensorboard (empty list: none); tensorboard costs ~2 s of import per run"
    )
    export: bool = arg(True, help="write out_dir/model.safetensors and config.json at the end")

    def __post_init__(self):
        if not str(self.out_dir).strip():
            raise ValueError("train.out_dir must not be empty")
        if self.monitor is not None and not str(self.monitor).strip():
            self.monitor = None
        if self.monitor and self.monitor.lower().startswith("test"):
            raise ValueError(
                f"train.monitor '{self.monitor}' is a test metric: select checkpoints on validation data"
            )
        if self.max_epochs == 0 or self.max_epochs < -1:
            raise ValueError(f"train.max_epochs must be >= 1 (or -1 with max_steps), got {self.max_epochs}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"train.max_steps must be >= 1 (or -1: no limit), got {self.max_steps}")
        if self.max_epochs == -1 and self.max_steps == -1:
            raise ValueError("train.max_epochs -1 (no limit) needs train.max_steps >= 1")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"train.seed must be in [0, 2**32), got {self.seed}")
        if self.accumulate < 1:
            raise ValueError(f"train.accumulate must be >= 1, got {self.accumulate}")
        if self.num_nodes < 1:
            raise ValueError(f"train.num_nodes must be >= 1, got {self.num_nodes}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"train.precision: expected one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        parse_devices(self.devices)
        if self.grad_clip is not None:
            _finite("train.grad_clip", self.grad_clip, 0.0, low_open=True)
        for name in ("val_every_n_epochs", "log_every_n_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.checkpoint_every_n_steps is not None and self.checkpoint_every_n_steps < 1:
            raise ValueError(
                f"train.checkpoint_every_n_steps must be >= 1, got {self.checkpoint_every_n_steps}"
            )
        if self.early_stopping_patience is not None and self.early_stopping_patience < 0:
            raise ValueError(
                f"train.early_stopping_patience must be >= 0, got {self.early_stopping_patience}"
            )
        if not str(self.resume).strip():
            raise ValueError("train.resume: expected auto, never or a checkpoint path, got ''")
        bad = set(self.loggers) - {"csv", "tensorboard"}
        if bad:
            raise ValueError(f"train.loggers: unknown logger {sorted(bad)[0]!r} (known: csv, tensorboard)")


@dataclass
class TextDataConfig:
    """Text-classification data for any package: the synthetic sentiment language, a local file or folder
    (``text<TAB>label`` tsv, csv, jsonl, parquet), or a hub data set (ag_news, imdb, sst2). Loaded by
    :func:`tenfold_core.data.load_text_data`."""

    source: str = arg("synthetic", help="synthetic, a local file/folder, or ag_news / imdb / sst2 (hub)")
    n_train: int = arg(2000, help="synthetic: training examples")
    n_dev: int = arg(300, help="synthetic: dev examples")
    n_test: int = arg(500, help="synthetic: test examples")
    but_prob: float = arg(0.0, help="synthetic: probability of a 'X but Y' sentence")
    negation_prob: float = arg(0.5, help="synthetic: probability that a clause is negated")
    seed: int = arg(0, help="synthetic data seed / split seed for local files")
    text_column: str = arg("text", help="text column of local files")
    label_column: str = arg("label", help="label column of local files")
    batch_size: int = arg(32, help="training batch size")
    eval_batch_size: int = arg(128, help="evaluation batch size")
    max_train: int = arg(0, help="use at most this many training examples (0: all)")

    def __post_init__(self):
        if not (self.n_train >= 2 and self.n_dev >= 1 and self.n_test >= 1):
            raise ValueError("data.n_train/n_dev/n_test too small (need >= 2, 1, 1)")
        for name in ("but_prob", "negation_prob"):
            _finite(f"data.{name}", getattr(self, name), 0.0, 1.0)
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("data.batch_size and data.eval_batch_size must be >= 1")
        if self.max_train < 0:
            raise ValueError(f"data.max_train must be >= 0, got {self.max_train}")


#: recipe names an attack section accepts (tenfold_core.attack.RECIPES, kept here so configs stay torch-free)
ATTACK_RECIPES = ("textfooler", "pwws", "textbugger", "bert-attack", "bae", "bertattack")


@dataclass
class AttackConfig:
    """The shared word-substitution attack protocol (:mod:`tenfold_core.attack`; TextDefender's defaults: K = 50
    synonyms, <= 30 % of words, similarity 0.8408, 50 x #words queries), the ``--attack.*`` section of every
    package that attacks a classifier."""

    recipe: str = arg("textfooler", help="textfooler, pwws, textbugger or bert-attack")
    n_examples: int = arg(1000, help="examples attacked (sampled from the test texts with > 4 words)")
    k: int = arg(50, help="synonym candidates per word")
    max_rate: float = arg(0.3, help="at most this fraction of words changed")
    query_factor: int = arg(50, help="query budget = factor x #words per example (0: none)")
    similarity_threshold: float = arg(-1.0, help="angular similarity threshold (-1: USE's 0.8408)")
    synonyms: str = arg(
        "auto",
        help="auto (sentiment table on synthetic data, else victim embeddings), victim, or a vectors file",
    )
    seed: int = arg(42, help="example-sampling seed")
    eot: int = arg(10, help="EOT samples per query for a stochastic (sampled) model")
    width: int = arg(8, help="examples in flight (their queries batched)")

    def __post_init__(self):
        checks = (
            (self.n_examples >= 1, f"attack.n_examples must be >= 1, got {self.n_examples}"),
            (self.k >= 1, f"attack.k must be >= 1, got {self.k}"),
            (0 < self.max_rate <= 1, f"attack.max_rate must be in (0, 1], got {self.max_rate}"),
            (self.query_factor >= 0, f"attack.query_factor must be >= 0, got {self.query_factor}"),
            (self.eot >= 1, f"attack.eot must be >= 1, got {self.eot}"),
            (self.width >= 1, f"attack.width must be >= 1, got {self.width}"),
        )
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)
        if self.recipe.lower().replace("_", "-") not in ATTACK_RECIPES:
            raise ValueError(
                f"attack.recipe must be one of {', '.join(ATTACK_RECIPES[:4])}, got {self.recipe!r}"
            )

    def protocol(self):
        """This section as a :class:`tenfold_core.attack.AttackProtocol` (similarity -1: USE's 0.8408); imports the
        attack harness (torch) when called."""
        from tenfold_core.attack import USE_THRESHOLD, AttackProtocol

        thr = USE_THRESHOLD if self.similarity_threshold < 0 else self.similarity_threshold
        return AttackProtocol(self.recipe, k=self.k, max_modification_rate=self.max_rate, similarity_threshold=thr,
                              query_factor=self.query_factor, n_examples=self.n_examples, seed=self.seed)  # fmt: skip
