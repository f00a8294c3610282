"""Configs of textdefender (torch-free). Defaults follow the official TextDefender code (AdamW lr 2e-5, wd 1e-6,
batch 32, 10 epochs, max_len 128, clip 1.0, best epoch on dev accuracy; PGD/FreeLB K = 5, step 0.03, init 0.05,
max-norm 0; FreeLB++ K = 30, no projection; RanMASK mask rate 0.9, ensemble 100)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tenfold_core.cli import arg
from tenfold_core.config import ATTACK_RECIPES, OptimConfig, TextDataConfig, TrainConfig
from tenfold_core.config import AttackConfig as _SharedAttackConfig

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

DEFENSES = (
    "base",
    "pgd",
    "freelb",
    "freelbpp",
    "ranmask",
    "ada",
    "mixada",
    "tavat",
    "infobert",
    "ascc",
    "dne",
    "safer",
)
MISSING_DEFENSES: tuple[str, ...] = ()
RECIPES = ATTACK_RECIPES


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

    name: str = arg("base", help="one of: " + ", ".join(DEFENSES))
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
    ensemble: int = arg(100, help="ranmask / safer: ensemble size at test time")
    vote: Literal["logits", "vote"] = arg(
        "logits", help="ranmask / safer / dne: average probabilities or majority vote"
    )
    # TA-VAT (official tavat trainer defaults)
    tavat_steps: int = arg(2, help="tavat: ascent steps K")
    tavat_step_size: float = arg(0.05, help="tavat: ascent step size (per-token L2-normalised gradient)")
    tavat_init_mag: float = arg(
        0.2, help="tavat: initial magnitude (sentence part and the global token table)"
    )
    tavat_max_norm: float = arg(0.5, help="tavat: L2 radius of the total perturbation per example (0: none)")
    tavat_global: bool = arg(
        True,
        help="tavat: initialise token perturbations from the accumulated global table (else from the embeddings)",
    )
    tavat_kl: float = arg(
        0.0,
        help="tavat: weight of the virtual term KL(p(x) || p(x + delta)) (0: labels only, as the official code)",
    )
    # InfoBERT (official infobert trainer defaults, on FreeLB)
    infobert_steps: int = arg(3, help="infobert: FreeLB ascent steps K")
    infobert_step_size: float = arg(0.04, help="infobert: ascent step size")
    infobert_init_mag: float = arg(0.08, help="infobert: initial perturbation magnitude")
    infobert_max_norm: float = arg(0.0, help="infobert: projection radius (0: none)")
    infobert_alpha: float = arg(5e-3, help="infobert: weight of the anchored-feature InfoNCE lower bound")
    infobert_beta: float = arg(5e-3, help="infobert: weight of the information-bottleneck (CLUB) upper bound")
    infobert_cl: float = arg(
        0.5, help="infobert: anchored words start at this quantile of the gradient-norm ranking"
    )
    infobert_ch: float = arg(
        0.9, help="infobert: anchored words end at this quantile of the gradient-norm ranking"
    )
    # synonym-based defenses (ASCC, DNE, SAFER): the defender's table
    synonyms: str = arg(
        "auto",
        help="ascc / dne / safer: synonym source, as attack.synonyms (auto: the synthetic-language table on "
        "synthetic data, else the victim's input-embedding neighbours; or a GloVe / word2vec file)",
    )
    synonym_k: int = arg(8, help="ascc / dne / safer: first-order synonyms per word (the official table: 8)")
    ascc_alpha: float = arg(
        10.0, help="ascc: weight of the sparsity (entropy) term of the inner maximisation"
    )
    ascc_beta: float = arg(4.0, help="ascc: weight of KL(p(x) || p(x_hull)) in the training loss")
    ascc_steps: int = arg(5, help="ascc: inner Adam steps on the convex-combination weights")
    ascc_lr: float = arg(1.0, help="ascc: inner Adam learning rate")
    dne_alpha: float = arg(1.0, help="dne: Dirichlet concentration of the word and its synonyms (IMDB: 0.1)")
    dne_decay: float = arg(0.5, help="dne: concentration factor of second-order synonyms (IMDB: 0.1)")
    dne_nbr_num: int = arg(50, help="dne: vertices per word (itself, synonyms, synonyms of synonyms)")
    dne_steps: int = arg(3, help="dne: adversarial ascent iterations on the combination weights")
    dne_step_size: float = arg(10.0, help="dne: ascent step on the weights' logits (L2-normalised per word)")
    dne_ensemble: int = arg(12, help="dne: ensemble size at test time")
    # ADA / MixADA (textdefender.augment): attack the training set, train on clean + adversarial
    aug_recipe: str = arg("pwws", help="ada / mixada: attack recipe run on the training set (official: pwws)")
    aug_fraction: float = arg(1.0, help="ada / mixada: fraction of the training texts (> 4 words) attacked")
    aug_max_examples: int = arg(0, help="ada / mixada: at most this many training texts attacked (0: no cap)")
    aug_data: Literal["clean+adv", "adv"] = arg(
        "clean+adv",
        help="ada / mixada: train on clean + adversarial (official aug_ratio 0.5) or adversarial only",
    )
    aug_victim: str = arg(
        "", help="ada / mixada: run folder of the attacked model (empty: model.init_from, else a base model "
        "fine-tuned first into OUT/victim)"
    )  # fmt: skip
    aug_k: int = arg(50, help="ada / mixada: synonym candidates per word")
    aug_max_rate: float = arg(0.3, help="ada / mixada: at most this fraction of words changed")
    aug_query_factor: int = arg(50, help="ada / mixada: query budget = factor x #words (0: none)")
    aug_similarity: float = arg(-1.0, help="ada / mixada: angular similarity threshold (-1: USE's 0.8408)")
    aug_synonyms: str = arg("auto", help="ada / mixada: synonym source, as attack.synonyms")
    aug_seed: int = arg(42, help="ada / mixada: seed of the sample of training texts attacked")
    mix_alpha: float = arg(2.0, help="mixada: mixup ratio lambda ~ Beta(alpha, alpha)")
    mix_layers: list[int] = arg(
        [7, 9, 12],
        help="mixada: encoder layers (1-based, 0 = embeddings) the mix is drawn from; clamped to the depth",
    )
    mix_weight: float = arg(1.0, help="mixada: weight of the mixup loss (MixADA: 1; TextDefender's code: 0)")

    def __post_init__(self):
        missing = f" (not implemented yet: {', '.join(MISSING_DEFENSES)})" if MISSING_DEFENSES else ""
        _check(
            self.name in DEFENSES,
            f"defense.name must be one of {', '.join(DEFENSES)}{missing}, got {self.name!r}",
        )
        for f in ("pgd_steps", "freelb_steps", "freelbpp_steps"):
            _check(getattr(self, f) >= 1, f"defense.{f} must be >= 1, got {getattr(self, f)}")
        _check(self.init_mag >= 0 and self.step_size >= 0 and self.max_norm >= 0,
               "defense.init_mag, step_size and max_norm must be >= 0")  # fmt: skip
        _check(0 < self.mask_rate < 1, f"defense.mask_rate must be in (0, 1), got {self.mask_rate}")
        _check(self.ensemble >= 1, f"defense.ensemble must be >= 1, got {self.ensemble}")
        for f in ("tavat_steps", "infobert_steps", "ascc_steps", "synonym_k", "dne_nbr_num", "dne_ensemble"):
            _check(getattr(self, f) >= 1, f"defense.{f} must be >= 1, got {getattr(self, f)}")
        _check(self.dne_steps >= 0, f"defense.dne_steps must be >= 0, got {self.dne_steps}")
        for f in ("tavat_step_size", "tavat_init_mag", "tavat_max_norm", "tavat_kl", "infobert_step_size",
                  "infobert_init_mag", "infobert_max_norm", "infobert_alpha", "infobert_beta", "ascc_alpha",
                  "ascc_beta", "dne_step_size"):  # fmt: skip
            v = getattr(self, f)
            _check(v >= 0 and v != float("inf"), f"defense.{f} must be a finite number >= 0, got {v}")
        _check(0 <= self.infobert_cl < self.infobert_ch <= 1,
               f"defense.infobert_cl < infobert_ch must lie in [0, 1], got {self.infobert_cl}, {self.infobert_ch}")  # fmt: skip
        _check(0 < self.ascc_lr < float("inf"), f"defense.ascc_lr must be > 0, got {self.ascc_lr}")
        _check(0 < self.dne_alpha < float("inf"), f"defense.dne_alpha must be > 0, got {self.dne_alpha}")
        _check(0 < self.dne_decay <= 1, f"defense.dne_decay must be in (0, 1], got {self.dne_decay}")
        _check(bool(self.synonyms), "defense.synonyms must name a synonym source")
        _check(0 < self.aug_fraction <= 1, f"defense.aug_fraction must be in (0, 1], got {self.aug_fraction}")
        _check(self.aug_max_examples >= 0 and self.aug_k >= 1 and self.aug_query_factor >= 0,
               "defense.aug_max_examples >= 0, aug_k >= 1 and aug_query_factor >= 0 are required")  # fmt: skip
        _check(0 < self.aug_max_rate <= 1, f"defense.aug_max_rate must be in (0, 1], got {self.aug_max_rate}")
        _check(self.aug_recipe.lower().replace("_", "-") in RECIPES,
               f"defense.aug_recipe must be one of {', '.join(RECIPES[:4])}, got {self.aug_recipe!r}")  # fmt: skip
        _check(bool(self.aug_synonyms), "defense.aug_synonyms must name a synonym source")
        _check(0 < self.mix_alpha < float("inf"), f"defense.mix_alpha must be > 0, got {self.mix_alpha}")
        _check(bool(self.mix_layers) and all(int(m) >= 0 for m in self.mix_layers),
               f"defense.mix_layers must be a non-empty list of layers >= 0, got {self.mix_layers}")  # fmt: skip
        _check(0 <= self.mix_weight < float("inf"), f"defense.mix_weight must be >= 0, got {self.mix_weight}")

    @property
    def k(self) -> int:
        return {"pgd": self.pgd_steps, "freelbpp": self.freelbpp_steps}.get(self.name, self.freelb_steps)

    @property
    def radius(self) -> float:
        return 0.0 if self.name == "freelbpp" else self.max_norm

    @property
    def randomised(self) -> bool:
        return self.name in ("ranmask", "safer", "dne")


@dataclass
class AttackConfig(_SharedAttackConfig):
    """The shared protocol (the core's section; TextDefender's: K = 50 synonyms, <= 30 % words, similarity 0.8408,
    50 x #words); only the EOT default differs."""

    eot: int = arg(4, help="randomised defenses: EOT draws of the whole (unseeded) ensemble per query")


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
