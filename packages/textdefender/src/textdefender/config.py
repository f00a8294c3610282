"""Configs of textdefender (torch-free). Defaults follow the official TextDefender code (AdamW lr 2e-5, wd 1e-6,
batch 32, 10 epochs, max_len 128, clip 1.0, best epoch on dev accuracy; PGD/FreeLB K = 5, step 0.03, init 0.05,
max-norm 0; FreeLB++ K = 30, no projection; RanMASK mask rate 0.9, ensemble 100)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tenfold_core.cli import arg
from tenfold_core.config import OptimConfig, TextDataConfig, TrainConfig

# the data section is the core's: synthetic sentiment, local tsv/csv/jsonl, or ag_news / imdb / sst2
DataConfig = TextDataConfig

__all__ = [
    "DEFENSES",
    "MISSING_DEFENSES",
    "ModelConfig",
    "DataConfig",
    "DefenseConfig",
    "AttackConfig",
    "TrainCommand",
    "AttackCommand",
    "BenchmarkCommand",
    "DemoCommand",
]

DEFENSES = ("base", "pgd", "freelb", "freelbpp", "ranmask")
MISSING_DEFENSES = ("tavat", "infobert", "ascc", "dne", "safer", "mixada", "ada")
RECIPES = ("textfooler", "pwws", "textbugger", "bert-attack", "bae", "bertattack")


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


@dataclass
class ModelConfig:
    """A Hugging Face sequence classifier (the victim)."""

    encoder: str = arg(
        "bert-base-uncased", help="tiny (random tiny BERT), minilm (offline) or a HF name/folder"
    )
    num_labels: int = arg(2, help="number of classes")
    vocab_size: int = arg(0, help="tiny encoder only: vocabulary size (0: from the tokenizer)")
    tiny_hidden: int = arg(64, help="tiny encoder: hidden size")
    tiny_layers: int = arg(2, help="tiny encoder: layers")
    tiny_heads: int = arg(2, help="tiny encoder: attention heads")
    max_length: int = arg(128, help="maximum tokens per text (training and attack)")
    init_from: str = arg(
        "",
        help="start from the weights (and tokenizer) of this run folder, e.g. a clean tiny model standing in "
        "for a pre-trained encoder",
    )

    def __post_init__(self):
        _check(bool(self.encoder), "model.encoder must name an encoder")
        _check(self.num_labels >= 2, f"model.num_labels must be >= 2, got {self.num_labels}")
        _check(self.vocab_size >= 0, f"model.vocab_size must be >= 0, got {self.vocab_size}")
        _check(self.tiny_hidden >= 2 and self.tiny_layers >= 1 and self.tiny_heads >= 1,
               "model.tiny_hidden >= 2, tiny_layers >= 1, tiny_heads >= 1 are required")  # fmt: skip
        _check(
            self.tiny_hidden % self.tiny_heads == 0,
            "model.tiny_hidden must be a multiple of model.tiny_heads",
        )
        _check(8 <= self.max_length <= 4096, f"model.max_length must be in [8, 4096], got {self.max_length}")


@dataclass
class DefenseConfig:
    """Which defense trains the model and its hyper-parameters (``-1``: the defense's default)."""

    name: str = arg("base", help="base, pgd, freelb, freelbpp or ranmask")
    pgd_steps: int = arg(5, help="PGD-K: ascent steps K")
    freelb_steps: int = arg(5, help="FreeLB: ascent steps K")
    freelbpp_steps: int = arg(30, help="FreeLB++: ascent steps K (the paper: 10 on IMDB, 30 on AG News)")
    init_mag: float = arg(0.05, help="initial perturbation magnitude (scaled by 1/sqrt(len*d))")
    step_size: float = arg(0.03, help="ascent step size (L2-normalised gradient)")
    max_norm: float = arg(0.0, help="projection radius; 0 = no projection (FreeLB++ always uses 0)")
    norm: Literal["l2", "linf"] = arg("l2", help="perturbation norm")
    mask_rate: float = arg(
        0.9, help="ranmask: fraction of tokens masked in training and in each ensemble member"
    )
    ensemble: int = arg(100, help="ranmask: ensemble size at test time")
    vote: Literal["logits", "vote"] = arg("logits", help="ranmask: average probabilities or majority vote")

    def __post_init__(self):
        _check(self.name in DEFENSES,
               f"defense.name must be one of {', '.join(DEFENSES)} (not implemented yet: {', '.join(MISSING_DEFENSES)}), "
               f"got {self.name!r}")  # fmt: skip
        for f in ("pgd_steps", "freelb_steps", "freelbpp_steps"):
            _check(getattr(self, f) >= 1, f"defense.{f} must be >= 1, got {getattr(self, f)}")
        _check(self.init_mag >= 0 and self.step_size >= 0 and self.max_norm >= 0,
               "defense.init_mag, step_size and max_norm must be >= 0")  # fmt: skip
        _check(0 < self.mask_rate < 1, f"defense.mask_rate must be in (0, 1), got {self.mask_rate}")
        _check(self.ensemble >= 1, f"defense.ensemble must be >= 1, got {self.ensemble}")

    @property
    def k(self) -> int:
        return {"pgd": self.pgd_steps, "freelbpp": self.freelbpp_steps}.get(self.name, self.freelb_steps)

    @property
    def radius(self) -> float:
        return 0.0 if self.name == "freelbpp" else self.max_norm

    @property
    def randomised(self) -> bool:
        return self.name == "ranmask"


@dataclass
class AttackConfig:
    """The shared protocol (TextDefender's: K = 50 synonyms, <= 30 % words, similarity 0.8408, 50 x #words)."""

    recipe: str = arg("textfooler", help="textfooler, pwws, textbugger or bert-attack")
    n_examples: int = arg(1000, help="examples attacked (sampled from the test texts with > 4 words)")
    k: int = arg(50, help="synonym candidates per word")
    max_rate: float = arg(0.3, help="at most this fraction of words changed")
    query_factor: int = arg(50, help="query budget = factor x #words per example (0: none)")
    similarity_threshold: float = arg(-1.0, help="angular similarity threshold (-1: USE's 0.8408)")
    synonyms: str = arg(
        "auto", help="auto (sentiment table on synthetic data, else victim embeddings), victim, or a file"
    )
    seed: int = arg(42, help="example-sampling seed")
    eot: int = arg(4, help="randomised defenses: EOT draws of the whole (unseeded) ensemble per query")
    width: int = arg(8, help="examples in flight (their queries batched)")

    def __post_init__(self):
        _check(self.n_examples >= 1, f"attack.n_examples must be >= 1, got {self.n_examples}")
        _check(self.k >= 1, f"attack.k must be >= 1, got {self.k}")
        _check(0 < self.max_rate <= 1, f"attack.max_rate must be in (0, 1], got {self.max_rate}")
        _check(self.query_factor >= 0, f"attack.query_factor must be >= 0, got {self.query_factor}")
        _check(self.eot >= 1 and self.width >= 1, "attack.eot and attack.width must be >= 1")
        _check(self.recipe.lower().replace("_", "-") in RECIPES,
               f"attack.recipe must be one of {', '.join(RECIPES[:4])}, got {self.recipe!r}")  # fmt: skip


def _default_train() -> TrainConfig:
    return TrainConfig(
        out_dir="runs/textdefender", max_epochs=10, monitor="val_acc", mode="max", grad_clip=1.0
    )


@dataclass
class TrainCommand:
    """Train one defense."""

    model: ModelConfig = arg(factory=ModelConfig)
    data: DataConfig = arg(factory=DataConfig)
    defense: DefenseConfig = arg(factory=DefenseConfig)
    train: TrainConfig = arg(factory=_default_train)
    optim: OptimConfig = arg(
        factory=lambda: OptimConfig(name="adamw", lr=2e-5, weight_decay=1e-6, schedule="cosine")
    )


@dataclass
class AttackCommand:
    """Attack a trained defense under the shared protocol."""

    run: str = arg("runs/textdefender", help="run folder written by train")
    data: DataConfig = arg(factory=DataConfig)
    attack: AttackConfig = arg(factory=AttackConfig)
    out: str = arg("", help="records folder (default: RUN/attack)")


@dataclass
class BenchmarkCommand:
    """defenses x attacks x seeds in one resumable run: table (markdown + CSV), plot, cost column."""

    defenses: list[str] = arg(["base", "pgd", "freelb", "freelbpp"], help="defense names")
    recipes: list[str] = arg(["textfooler"], help="attack recipes")
    seeds: list[int] = arg([0], help="training seeds")
    model: ModelConfig = arg(factory=ModelConfig)
    data: DataConfig = arg(factory=DataConfig)
    defense: DefenseConfig = arg(factory=DefenseConfig)
    train: TrainConfig = arg(factory=_default_train)
    optim: OptimConfig = arg(
        factory=lambda: OptimConfig(name="adamw", lr=2e-5, weight_decay=1e-6, schedule="cosine")
    )
    attack: AttackConfig = arg(factory=AttackConfig)
    pretrain_lr: float = arg(2e-3, help="learning rate of the clean pre-training stage")
    pretrain_epochs: int = arg(
        0,
        help="> 0: first train a clean model this long per seed (the stand-in for a pre-trained encoder, for "
        "tiny encoders trained from scratch) and fine-tune every defense from it",
    )
    out: str = arg("runs/textdefender-benchmark", help="output folder (runs, cells.jsonl, table, plot)")

    def __post_init__(self):
        bad = [d for d in self.defenses if d not in DEFENSES]
        _check(not bad, f"defenses: unknown defense {bad[0] if bad else ''!r} (known: {', '.join(DEFENSES)})")
        _check(
            bool(self.defenses) and bool(self.recipes) and bool(self.seeds),
            "defenses, recipes, seeds: non-empty",
        )


@dataclass
class DemoCommand:
    """Embedded demo: base vs FreeLB vs FreeLB++ on synthetic sentiment, one attack, 100 examples."""

    out: str = arg("runs/textdefender-demo", help="output folder")
    seeds: int = arg(1, help="training seeds")
