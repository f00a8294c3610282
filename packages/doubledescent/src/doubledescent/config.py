"""Torch-free configuration: the model, data and verb configs of ``doubledescent`` (``--help`` answers without torch).

One config dataclass per model family (:class:`WidthModelConfig`: ``kind`` fc | cnn | resnet18 and a width) used
directly as the ``--model`` section; :class:`DataConfig` is ``--data``; the shared ``--train`` / ``--optim`` sections are
the core's :class:`~tenfold_core.config.TrainConfig` / :class:`~tenfold_core.config.OptimConfig`. Presets (demo, paper,
tiny) live in ``configs/*.yaml``. The parameter formulas live here too, so absurd widths are refused with an estimate
before anything is allocated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from tenfold_core.cli import arg
from tenfold_core.config import OptimConfig, TrainConfig
from tenfold_core.io import is_rank_zero

__all__ = [
    "MODEL_KINDS",
    "KNN_METRICS",
    "WidthModelConfig",
    "DataConfig",
    "UnitSettings",
    "TrainCommand",
    "SweepCommand",
    "ReportCommand",
    "EvaluateCommand",
    "TsneCommand",
    "DemoCommand",
    "PAPER_FC_WIDTHS",
    "PAPER_CNN_WIDTHS",
    "DEFAULT_THRESHOLD_ACC",
    "simple_fc_params",
    "cnn_params",
    "resnet18_params",
    "estimate_params",
    "parse_shard",
    "is_rank_zero",
]

MODEL_KINDS = ("fc", "cnn", "resnet18")
KNN_METRICS = ("cosine", "euclidean", "manhattan", "chebyshev")
DEFAULT_THRESHOLD_ACC = 0.999

PAPER_FC_WIDTHS = [*range(1, 11), *range(12, 23, 2), 25, *range(30, 61, 5)]
PAPER_FC_WIDTHS += [70, 80, 90, 100, 120, 150, 200, 400, 600, 800, 1000]
PAPER_CNN_WIDTHS = [1, 2, 3, 4, 5, 6, *range(8, 21, 2), *range(24, 65, 4)]


# ------------------------------------------------------------------------------------------ parameter formulas
def simple_fc_params(width: int, in_features: int = 784, num_classes: int = 10) -> int:
    """``(d + 1) N + (N + 1) C``: 795 N + 10 on MNIST."""
    return (in_features + 1) * width + (width + 1) * num_classes


def cnn_params(k: int, in_channels: int = 3, num_classes: int = 10) -> int:
    """Convs (with bias) + BN (2 per channel) + FC: ``378 k^2 + (9 in + 45 + 8 C) k + C``; 378k^2+152k+10 on CIFAR."""
    convs = (9 * in_channels * k + k) + (18 * k * k + 2 * k) + (72 * k * k + 4 * k) + (288 * k * k + 8 * k)
    bns = 2 * (k + 2 * k + 4 * k + 8 * k)
    return convs + bns + 8 * k * num_classes + num_classes


def resnet18_params(k: int, in_channels: int = 3, num_classes: int = 10) -> int:
    """``2724 k^2 + (9 in + 122 + 8 C) k + C`` (no conv biases); 2724k^2 + 229k + 10 on CIFAR-10."""
    return 2724 * k * k + (9 * in_channels + 122 + 8 * num_classes) * k + num_classes


def estimate_params(kind: str, width: int, input_shape: tuple[int, ...], num_classes: int) -> int:
    """Exact parameter count of a model of ``kind`` and ``width`` (the models' own formulas, no allocation)."""
    if kind == "fc":
        return simple_fc_params(width, math.prod(input_shape), num_classes)
    channels = input_shape[0] if input_shape else 1
    if kind == "cnn":
        return cnn_params(width, channels, num_classes)
    return resnet18_params(width, channels, num_classes)


def parse_shard(shard: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in str(shard).split("/"))
    except ValueError:
        raise ValueError(f"shard: expected i/n such as 0/4, got {shard!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard: expected 0 <= i < n, got {shard!r}")
    return i, n


# ----------------------------------------------------------------------------------------------------- model
@dataclass
class WidthModelConfig:
    """One width-k model of the paper: SimpleFC (fc), Nakkiran's 5-layer CNN (cnn) or preact ResNet18 (resnet18)."""

    kind: Literal["fc", "cnn", "resnet18"] = arg(
        "fc", help="fc (SimpleFC), cnn (5-layer CNN), resnet18 (preact)"
    )
    width: int | None = arg(
        None, help="hidden units N (fc) or base channels k (cnn, resnet18); the sweep sets it from --widths"
    )
    input_shape: list[int] | None = arg(None, help="input shape per sample (null: taken from the data)")
    num_classes: int | None = arg(None, help="classes (null: taken from the data)")
    init: Literal["paper", "torch"] = arg(
        "paper", help="fc only: paper (N(0, 0.1), Xavier at N=1) or torch's"
    )
    pooling: Literal["nakkiran", "official"] = arg(
        "nakkiran", help="cnn only: nakkiran (pool after convs 2-4) or official (the paper code's positions)"
    )

    def __post_init__(self):
        if self.width is not None and self.width < 1:
            raise ValueError(f"model.width must be >= 1, got {self.width}")
        if self.num_classes is not None and self.num_classes < 2:
            raise ValueError(f"model.num_classes must be >= 2, got {self.num_classes}")
        if self.input_shape is not None:
            if not self.input_shape or any(int(d) < 1 for d in self.input_shape):
                raise ValueError(f"model.input_shape must be positive sizes, got {self.input_shape}")
            if self.kind != "fc" and len(self.input_shape) != 3:
                raise ValueError(
                    f"model.kind={self.kind} needs image inputs (channels, height, width); "
                    f"model.input_shape is {list(self.input_shape)}"
                )
        if self.kind != "fc" and self.init != "paper":
            raise ValueError(f"model.init applies to kind fc only (kind is {self.kind})")
        if self.kind != "cnn" and self.pooling != "nakkiran":
            raise ValueError(f"model.pooling applies to kind cnn only (kind is {self.kind})")

    def params(self) -> int:
        if self.width is None or self.input_shape is None or self.num_classes is None:
            raise ValueError("model.width, input_shape and num_classes are needed to count parameters")
        return estimate_params(self.kind, self.width, tuple(self.input_shape), self.num_classes)


# ------------------------------------------------------------------------------------------------------ data
@dataclass
class DataConfig:
    """In-memory data sets; the training subset depends on this section only (never on the noise seed)."""

    name: Literal["digits", "synthetic", "mnist", "cifar10", "npz"] = arg(
        "digits", help="digits (sklearn, offline), synthetic, mnist, cifar10 (torchvision download) or npz"
    )
    n_train: int | None = arg(
        None,
        help="training subset size (first n; null: digits 1000, synthetic 1000, mnist 4000, cifar10 all)",
    )
    n_test: int | None = arg(None, help="test set size (null: all; synthetic 4000)")
    path: str | None = arg(None, help="the .npz file for name=npz (arrays x_train, y_train, x_test, y_test)")
    root: str = arg("data", help="download/cache folder for mnist and cifar10")
    download: bool = arg(True, help="let torchvision download mnist/cifar10 when missing")
    data_seed: int = arg(0, help="seed of the digits split and of the synthetic mixture (not the noise seed)")
    synthetic_dim: int = arg(30, help="input dimension of the synthetic mixture")
    synthetic_classes: int = arg(10, help="classes of the synthetic mixture")
    batch_size: int = arg(128, help="minibatch size (paper: 128); 0 = full batch")

    def __post_init__(self):
        if self.n_train is not None and self.n_train < 2:
            raise ValueError(f"data.n_train must be >= 2, got {self.n_train}")
        if self.n_test is not None and self.n_test < 1:
            raise ValueError(f"data.n_test must be >= 1, got {self.n_test}")
        if self.batch_size < 0:
            raise ValueError(f"data.batch_size must be >= 0 (0 = full batch), got {self.batch_size}")
        if not 2 <= self.synthetic_classes <= 10_000:
            raise ValueError(f"data.synthetic_classes must be in [2, 10000], got {self.synthetic_classes}")
        if not 1 <= self.synthetic_dim <= 100_000:
            raise ValueError(f"data.synthetic_dim must be in [1, 100000], got {self.synthetic_dim}")
        if self.name == "npz" and not self.path:
            raise ValueError("data.path: data.name=npz needs the path of an .npz file")
        if not 0 <= self.data_seed < 2**32:
            raise ValueError(f"data.data_seed must be in [0, 2**32), got {self.data_seed}")


# ------------------------------------------------------------------------------------------------ verbs
def _paper_train(**kw) -> TrainConfig:
    base = dict(max_epochs=4000, monitor=None, loggers=[], progress_bar=False, precision="32-true")
    base.update(kw)
    return TrainConfig(**base)


def _paper_optim() -> OptimConfig:
    return OptimConfig(name="sgd", lr=0.05, momentum=0.0, interval="epoch")


@dataclass
class UnitSettings:
    """What every unit (model, width, noise, seed) trains with: the shared sections plus the paper's options."""

    model: WidthModelConfig = arg(factory=WidthModelConfig, help="the model family")
    data: DataConfig = arg(factory=DataConfig, help="the data set")
    train: TrainConfig = arg(factory=_paper_train, help="the trainer (tenfold_core.train.fit)")
    optim: OptimConfig = arg(factory=_paper_optim, help="optimizer and schedule")
    lr_decay: Literal["inv_sqrt", "inv_sqrt_cifar", "optim"] = arg(
        "inv_sqrt",
        help="per-epoch schedule: inv_sqrt = lr/sqrt(1+epoch//E) (paper MNIST), inv_sqrt_cifar = "
        "lr/sqrt(1+10*E*(epoch//E)) (official CIFAR code), optim = use optim.schedule",
    )
    decay_every: int = arg(50, help="E: the paper's schedules change the lr every E epochs")
    noise_mode: Literal["random", "wrong"] = arg(
        "random", help="random: new label uniform over all classes (paper); wrong: always a different class"
    )
    knn_k: int = arg(5, help="neighbours of the k-NN probe (paper: 5)")
    knn_metric: Literal["cosine", "euclidean", "manhattan", "chebyshev"] = arg(
        "cosine", help="distance of the k-NN probe (paper: cosine)"
    )
    engine: Literal["auto", "packed", "fit"] = arg(
        "auto",
        help="fit (tenfold_core.train.fit: checkpoints, resume, DDP) or packed (fc, full batch, one device: several "
        "widths as one network, measured faster); auto = packed where it applies and pack > 1",
    )
    max_params: int = arg(
        200_000_000, help="refuse a unit (or a pack) above this many parameters before allocating it"
    )

    def __post_init__(self):
        if self.decay_every < 1:
            raise ValueError(f"decay_every must be >= 1, got {self.decay_every}")
        if self.knn_k < 1:
            raise ValueError(f"knn_k must be >= 1, got {self.knn_k}")
        if self.max_params < 1:
            raise ValueError(f"max_params must be >= 1, got {self.max_params}")
        if self.train.monitor is not None:
            raise ValueError(
                f"train.monitor {self.train.monitor!r}: units have no validation split (the paper measures the final "
                "model); leave train.monitor unset"
            )
        if self.train.max_epochs < 1:
            raise ValueError(
                f"train.max_epochs must be >= 1 (a unit trains for whole epochs), got {self.train.max_epochs}"
            )


@dataclass
class TrainCommand(UnitSettings):
    """``doubledescent train``: one unit, exported as a run folder (``train.out_dir``)."""

    model: WidthModelConfig = arg(
        factory=lambda: WidthModelConfig(width=16), help="the model (with its width)"
    )
    train: TrainConfig = arg(factory=lambda: _paper_train(out_dir="runs/dd-train"), help="the trainer")
    noise: float = arg(0.2, help="label-noise level p")
    seed: int = arg(0, help="seed of the noisy labels, the initialisation and the batch order")

    def __post_init__(self):
        super().__post_init__()
        if self.model.width is None:
            raise ValueError("model.width: train needs a width")
        if not (isinstance(self.noise, (int, float)) and math.isfinite(self.noise) and 0 <= self.noise <= 1):
            raise ValueError(f"noise must be in [0, 1], got {self.noise}")
        if not 0 <= self.seed < 2**31:
            raise ValueError(f"seed must be in [0, 2**31), got {self.seed}")


@dataclass
class SweepCommand(UnitSettings):
    """``doubledescent sweep``: widths x noise levels x seeds into the run folder ``train.out_dir``."""

    train: TrainConfig = arg(
        factory=lambda: _paper_train(out_dir="runs/sweep"), help="the trainer; out_dir = run folder"
    )
    widths: list[int] = arg(
        [1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 20, 25, 30, 40, 50, 64, 100, 200, 400],
        help="model widths: hidden units N (fc) or k (cnn, resnet18)",
    )
    noise: list[float] = arg([0.0, 0.2], help="label-noise levels p")
    seeds: list[int] = arg([0], help="seeds: each draws its own noisy labels, initialisation and batch order")
    shard: str = arg("0/1", help="i/n: run every n-th unit starting at i (0-based), for parallel processes")
    pack: int = arg(1, help="packed engine: train up to this many widths of one (noise, seed) at once")
    progress: bool = arg(True, help="show a progress bar (per training step, packed units included)")
    eval_every: int = arg(
        0, help="also record train/test metrics every N epochs into history/ (0: only at the end)"
    )
    threshold_acc: float = arg(
        DEFAULT_THRESHOLD_ACC, help="train accuracy that defines the interpolation threshold in the report"
    )

    def __post_init__(self):
        super().__post_init__()
        if self.model.width is not None:
            raise ValueError("model.width: the sweep sets the width from --widths; leave model.width unset")
        if not self.widths:
            raise ValueError("widths: give at least one width")
        if any(w < 1 for w in self.widths):
            raise ValueError(f"widths must be >= 1, got {self.widths}")
        if not self.noise or any(not (math.isfinite(p) and 0 <= p <= 1) for p in self.noise):
            raise ValueError(f"noise levels must be in [0, 1], got {self.noise}")
        if not self.seeds or any(not 0 <= s < 2**31 for s in self.seeds):
            raise ValueError(f"seeds: give at least one seed in [0, 2**31), got {self.seeds}")
        if self.pack < 1:
            raise ValueError(f"pack must be >= 1, got {self.pack}")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0, got {self.eval_every}")
        if not (math.isfinite(self.threshold_acc) and 0 < self.threshold_acc <= 1):
            raise ValueError(f"threshold_acc must be in (0, 1], got {self.threshold_acc}")
        parse_shard(self.shard)


@dataclass
class ReportCommand:
    """``doubledescent report``: plots, report.md and metrics.json from a sweep's results.csv."""

    run_dir: str = arg(help="a sweep's run folder (with results.csv)", positional=True)
    out: str | None = arg(
        None, help="where to write report.md, metrics.json and PNGs (default: the run folder)"
    )
    threshold_acc: float = arg(
        DEFAULT_THRESHOLD_ACC,
        help="train accuracy that defines the interpolation threshold (tolerance below 1)",
    )

    def __post_init__(self):
        if not (math.isfinite(self.threshold_acc) and 0 < self.threshold_acc <= 1):
            raise ValueError(f"threshold_acc must be in (0, 1], got {self.threshold_acc}")


@dataclass
class EvaluateCommand:
    """``doubledescent evaluate``: a unit's run folder (from ``train`` or a sweep's ``units/``) -> its metrics."""

    run_dir: str = arg(help="a unit's run folder (model.safetensors + config.json)", positional=True)
    knn_k: int | None = arg(None, help="k-NN neighbours (null: as trained)")
    knn_metric: Literal["cosine", "euclidean", "manhattan", "chebyshev"] | None = arg(
        None, help="k-NN distance (null: as trained)"
    )

    def __post_init__(self):
        if self.knn_k is not None and self.knn_k < 1:
            raise ValueError(f"knn_k must be >= 1, got {self.knn_k}")


@dataclass
class TsneCommand:
    """``doubledescent tsne``: t-SNE of the learned features of a sweep's stored units."""

    run_dir: str = arg(help="a sweep's run folder (with units/)", positional=True)
    widths: list[int] = arg([4, 16, 128], help="widths to show (the paper: small, threshold, large)")
    noise: float = arg(0.2, help="noise level")
    seed: int = arg(0, help="seed")
    max_points: int = arg(1000, help="embed at most this many training samples (all noisy ones are kept)")
    out: str | None = arg(None, help="PNG path (default RUN_DIR/tsne_p<noise>_s<seed>.png)")

    def __post_init__(self):
        if not self.widths or any(w < 1 for w in self.widths):
            raise ValueError(f"widths must be >= 1, got {self.widths}")
        if self.max_points < 10:
            raise ValueError(f"max_points must be >= 10, got {self.max_points}")


@dataclass
class DemoCommand:
    """``doubledescent demo``: the ``sweep`` and ``report`` verbs with the demo preset."""

    out: str = arg("runs/doubledescent-demo", help="output folder (metrics.json, report.md, PNGs, run/)")
    seeds: list[int] = arg([0], help="seeds of the demo sweep (3 seeds: about 3x the time)")
    progress: bool = arg(True, help="show a progress bar")

    def __post_init__(self):
        if not self.seeds or any(not 0 <= s < 2**31 for s in self.seeds):
            raise ValueError(f"seeds: give at least one seed in [0, 2**31), got {self.seeds}")
