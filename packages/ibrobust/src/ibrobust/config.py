"""Configs of ibrobust (torch-free: ``ibrobust --help`` answers without importing torch).

One dataclass per model (:class:`IBConfig`), the data config, the objective / adversarial-training configs and one
config per verb. Defaults reproduce the paper's code (h_dim 500, beta 0.1, KL averaged over dimensions, dropout 0.1,
IB+FreeLB with K = 3, init 0.08, step 0.04); the tiny / demo presets shrink sizes only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tenfold_core.cli import arg
from tenfold_core.config import ATTACK_RECIPES, AttackConfig, OptimConfig, TextDataConfig, TrainConfig

# the attack section (the shared protocol) is the core's AttackConfig; so is the data section:
# synthetic sentiment, local tsv/csv/jsonl, or ag_news / imdb / sst2
DataConfig = TextDataConfig

__all__ = [
    "IBConfig",
    "DataConfig",
    "ObjectiveConfig",
    "AdvConfig",
    "AttackConfig",
    "TrainCommand",
    "EvaluateCommand",
    "AttackCommand",
    "SweepBetaCommand",
    "DemoCommand",
]


RECIPES = ATTACK_RECIPES  # tenfold_core.attack.RECIPES


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


@dataclass
class IBConfig:
    """Encoder + information-bottleneck head (``bottleneck: false`` gives the plain classifier baseline)."""

    encoder: str = arg(
        "bert-base-cased",
        help="tiny (random tiny BERT), minilm (all-MiniLM-L6-v2, offline) or a HF name/folder",
    )
    num_labels: int = arg(2, help="number of classes")
    bottleneck: bool = arg(True, help="IB head (false: dropout + linear classifier on [CLS], the baseline)")
    h_dim: int = arg(500, help="dimension of the bottleneck code z")
    dropout: float = arg(0.1, help="dropout on z (on [CLS] without the bottleneck)")
    prior: Literal["learnable", "standard"] = arg(
        "learnable", help="learnable Gaussian prior N(mu_r, sigma_r) or fixed N(0, I)"
    )
    prior_sigma: Literal["softplus", "raw"] = arg(
        "softplus",
        help="sigma_r = softplus(rho) (kept positive, the fix) or raw (official code: can reach <= 0)",
    )
    init_sigma: float = arg(
        0.0,
        help="0: the official initialisation; > 0: the sigma half of the bias starts so that sigma is about this",
    )
    deterministic_eval: bool = arg(True, help="z = mu in eval mode (false: sample z, as the official code)")
    vocab_size: int = arg(0, help="tiny encoder only: vocabulary size (0: set from the tokenizer)")
    tiny_hidden: int = arg(64, help="tiny encoder: hidden size")
    tiny_layers: int = arg(2, help="tiny encoder: layers")
    tiny_heads: int = arg(2, help="tiny encoder: attention heads")
    max_length: int = arg(128, help="maximum tokens per text (training and attack)")
    init_from: str = arg(
        "",
        help="start the encoder from this run folder's weights (and use its tokenizer), e.g. a clean tiny model "
        "standing in for a pre-trained encoder",
    )

    def __post_init__(self):
        _check(bool(self.encoder), "model.encoder must name an encoder")
        _check(self.num_labels >= 2, f"model.num_labels must be >= 2, got {self.num_labels}")
        _check(self.h_dim >= 1, f"model.h_dim must be >= 1, got {self.h_dim}")
        _check(0 <= self.dropout < 1, f"model.dropout must be in [0, 1), got {self.dropout}")
        _check(self.init_sigma >= 0, f"model.init_sigma must be >= 0, got {self.init_sigma}")
        _check(self.vocab_size >= 0, f"model.vocab_size must be >= 0, got {self.vocab_size}")
        _check(self.tiny_hidden >= 2 and self.tiny_layers >= 1 and self.tiny_heads >= 1,
               "model.tiny_hidden >= 2, tiny_layers >= 1 and tiny_heads >= 1 are required")  # fmt: skip
        _check(
            self.tiny_hidden % self.tiny_heads == 0,
            "model.tiny_hidden must be a multiple of model.tiny_heads",
        )
        _check(8 <= self.max_length <= 4096, f"model.max_length must be in [8, 4096], got {self.max_length}")


@dataclass
class ObjectiveConfig:
    """loss = CE + beta * KL(N(mu, sigma) || prior)."""

    beta: float = arg(0.1, help="weight of the KL term (0: plain cross-entropy)")
    kl_reduction: Literal["mean", "sum"] = arg(
        "mean",
        help="mean over batch and dims (official code; effective beta = beta / h_dim) or sum over dims",
    )
    alternating: bool = arg(
        False, help="official schedule: even epochs update encoder + IB layers, odd epochs only the prior"
    )

    def __post_init__(self):
        _check(self.beta >= 0, f"objective.beta must be >= 0, got {self.beta}")


@dataclass
class AdvConfig:
    """Embedding-space adversarial training (FreeLB) on top of the objective; steps = 0 turns it off."""

    method: Literal["none", "freelb", "pgd"] = arg("freelb", help="none, freelb (IB+FreeLB) or pgd")
    steps: int = arg(3, help="ascent steps K")
    init_mag: float = arg(0.08, help="initial perturbation magnitude (scaled by 1/sqrt(len*d))")
    step_size: float = arg(0.04, help="ascent step size (L2-normalised gradient)")
    max_norm: float = arg(
        0.0, help="projection radius (0: none); the official code uses init_mag when -amn is unset"
    )
    norm: Literal["l2", "linf"] = arg("l2", help="norm of the perturbation")

    def __post_init__(self):
        _check(self.steps >= 0, f"adv.steps must be >= 0, got {self.steps}")
        _check(self.init_mag >= 0 and self.step_size >= 0 and self.max_norm >= 0,
               "adv.init_mag, adv.step_size and adv.max_norm must be >= 0")  # fmt: skip

    @property
    def active(self) -> bool:
        return self.method != "none" and self.steps > 0


def _default_train() -> TrainConfig:
    return TrainConfig(out_dir="runs/ibrobust", max_epochs=10, monitor="val_acc", mode="max", grad_clip=1.0)


@dataclass
class TrainCommand:
    """Train one model: IB (adv.method none), IB+FreeLB (default, as the official code), or the baselines
    (model.bottleneck false: plain fine-tuning, or FreeLB)."""

    model: IBConfig = arg(factory=IBConfig)
    data: DataConfig = arg(factory=lambda: DataConfig(batch_size=64))
    objective: ObjectiveConfig = arg(factory=ObjectiveConfig)
    adv: AdvConfig = arg(factory=AdvConfig)
    train: TrainConfig = arg(factory=_default_train)
    optim: OptimConfig = arg(factory=lambda: OptimConfig(name="adam", lr=2e-5))


@dataclass
class EvaluateCommand:
    """Clean accuracy of a trained run, deterministic (z = mu) and sampled."""

    run: str = arg("runs/ibrobust", help="run folder written by train")
    data: DataConfig = arg(factory=lambda: DataConfig(batch_size=64))
    split: Literal["dev", "test"] = arg("test", help="split to evaluate")
    samples: int = arg(5, help="sampled evaluations (their mean accuracy and spread are reported)")
    seed: int = arg(0, help="seed of the sampled evaluations")


@dataclass
class AttackCommand:
    """Attack a trained run under the shared protocol: deterministic model, sampled model, sampled model with EOT."""

    run: str = arg("runs/ibrobust", help="run folder written by train")
    data: DataConfig = arg(factory=lambda: DataConfig(batch_size=64))
    attack: AttackConfig = arg(factory=AttackConfig)
    modes: list[str] = arg(["deterministic"], help="any of deterministic, sampled, eot")
    out: str = arg("", help="records folder (default: RUN/attack)")

    def __post_init__(self):
        bad = set(self.modes) - {"deterministic", "sampled", "eot"}
        _check(
            not bad, f"modes: unknown mode {sorted(bad)[0] if bad else ''!r} (deterministic, sampled, eot)"
        )
        _check(bool(self.modes), "modes must name at least one mode")


@dataclass
class SweepBetaCommand:
    """Train one IB model per beta, attack each, plot clean accuracy and accuracy under attack against beta."""

    betas: list[float] = arg([0.0, 1e-3, 1e-2, 1e-1], help="values of beta")
    model: IBConfig = arg(factory=IBConfig)
    data: DataConfig = arg(factory=lambda: DataConfig(batch_size=64))
    objective: ObjectiveConfig = arg(factory=ObjectiveConfig)
    adv: AdvConfig = arg(factory=lambda: AdvConfig(method="none"))
    train: TrainConfig = arg(factory=_default_train)
    optim: OptimConfig = arg(factory=lambda: OptimConfig(name="adam", lr=2e-5))
    attack: AttackConfig = arg(factory=AttackConfig)
    out: str = arg("runs/ibrobust-sweep", help="output folder (one run per beta, table, plot)")

    def __post_init__(self):
        _check(bool(self.betas) and all(b >= 0 for b in self.betas), "betas: a non-empty list of values >= 0")


@dataclass
class DemoCommand:
    """Embedded demo: synthetic sentiment, base vs IB vs IB+FreeLB, 100 attacked examples."""

    out: str = arg("runs/ibrobust-demo", help="output folder (metrics.json, report.md, plots)")
    seeds: int = arg(1, help="training seeds per model")
    pretrain_epochs: int = arg(6, help="clean pre-training of the tiny encoder (the stand-in for BERT)")
