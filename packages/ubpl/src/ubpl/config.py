"""Torch-free configs of every ubpl verb (the CLI sections)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tenfold_core.cli import arg
from tenfold_core.config import OptimConfig, TrainConfig

__all__ = [
    "TRAITS",
    "TRAIT_NAMES",
    "LexiconConfig",
    "SteerConfig",
    "LMConfig",
    "BuildLexiconCommand",
    "MakeCorpusCommand",
    "TrainLMCommand",
    "GenerateCommand",
    "EvaluateCommand",
    "CompareCommand",
    "DemoCommand",
    "parse_lambdas",
]

TRAITS = ("O", "C", "E", "A", "N")
TRAIT_NAMES = {
    "O": "openness", "C": "conscientiousness", "E": "extraversion", "A": "agreeableness", "N": "neuroticism",
}  # fmt: skip


def parse_lambdas(spec: str) -> dict[str, float]:
    """``"E=1,A=-0.5"`` (letters or full names) -> ``{"E": 1.0, "A": -0.5}``; each value in [-1, 1]."""
    out: dict[str, float] = {}
    by_name = {v: k for k, v in TRAIT_NAMES.items()}
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        if "=" not in part:
            raise ValueError(f"steer.lambdas: expected TRAIT=VALUE items such as E=1,A=-0.5, got {part!r}")
        k, v = (s.strip() for s in part.split("=", 1))
        t = k.upper() if k.upper() in TRAITS else by_name.get(k.lower())
        if t is None:
            raise ValueError(f"steer.lambdas: unknown trait {k!r} (known: O, C, E, A, N or their names)")
        try:
            x = float(v)
        except ValueError:
            raise ValueError(f"steer.lambdas: {k}={v!r} is not a number") from None
        if not -1.0 <= x <= 1.0:
            raise ValueError(f"steer.lambdas: {k}={x} must be in [-1, 1]")
        out[t] = x
    return out


@dataclass
class LexiconConfig:
    method: Literal["log_odds", "tfidf"] = arg(
        "log_odds", help="log_odds: z-scores of the log-odds ratio with an informative Dirichlet prior; tfidf"
    )
    contrast: Literal["opposite", "rest"] = arg(
        "opposite",
        help="score (t, pole) against the opposite pole of t, or against every other (trait, pole)",
    )
    prior_scale: float = arg(
        0.1,
        help="informative prior: alpha_0 = prior_scale * corpus words, prior counts a_w = prior_scale * count(w)",
    )
    min_count: int = arg(3, help="drop words seen fewer times in (t, pole)")
    min_z: float = arg(0.0, help="log_odds: keep words with z above this (1.96: significant at 5 %)")
    top_k: int = arg(50, help="words kept per (trait, pole)")
    stopwords: bool = arg(True, help="drop English stop-words")
    min_length: int = arg(3, help="drop words shorter than this")

    def __post_init__(self):
        if self.prior_scale <= 0:
            raise ValueError(f"lexicon.prior_scale must be > 0, got {self.prior_scale}")
        if self.top_k < 1:
            raise ValueError(f"lexicon.top_k must be >= 1, got {self.top_k}")
        if self.min_count < 1:
            raise ValueError(f"lexicon.min_count must be >= 1, got {self.min_count}")


@dataclass
class SteerConfig:
    lambdas: str = arg("E=1", help="trait intensities in [-1, 1], e.g. E=1,A=-0.5 (positive: high pole)")
    gamma: float = arg(5.0, help="strength: logit bonus of a weight-1 word at |lambda| = 1")
    opposite_penalty: float = arg(0.0, help="gamma' of the opposite pole's words (subtracted)")
    multi_token: Literal["first", "sequence"] = arg(
        "first",
        help="multi-token words: bias the first sub-token, or the whole sequence (each next sub-token)",
    )
    restrict_top_k: int = arg(0, help="bias only tokens in the original top-k (0: off)")
    restrict_top_p: float = arg(1.0, help="bias only tokens in the original nucleus of this mass (1: off)")
    forms: list[str] = arg(
        ["space", "plain", "capital"], help="word forms mapped: ' word', 'word', capitalised"
    )

    def __post_init__(self):
        parse_lambdas(self.lambdas)
        if self.gamma < 0 or self.opposite_penalty < 0:
            raise ValueError("steer.gamma and steer.opposite_penalty must be >= 0")
        if not 0 < self.restrict_top_p <= 1:
            raise ValueError(f"steer.restrict_top_p must be in (0, 1], got {self.restrict_top_p}")
        bad = set(self.forms) - {"space", "plain", "capital"}
        if bad:
            raise ValueError(f"steer.forms: unknown form {sorted(bad)[0]!r} (known: space, plain, capital)")


@dataclass
class LMConfig:
    base: str = arg(
        "smollm2", help="smollm2 (offline), a run folder of `ubpl train-lm`, a model folder or a hub id"
    )
    dtype: Literal["float32", "bfloat16", "float16"] = arg("float32", help="weights dtype (GPU: bfloat16)")
    device: str = arg("cpu", help="cpu, cuda, cuda:N or auto (cuda when available)")

    def __post_init__(self):
        d = self.device
        if not (d in ("cpu", "cuda", "auto", "mps") or (d.startswith("cuda:") and d[5:].isdigit())):
            raise ValueError(f"model.device must be cpu, cuda, cuda:N, mps or auto, got {d!r}")


@dataclass
class BuildLexiconCommand:
    corpus: str = arg(positional=True, help="corpus .jsonl of {trait, pole, text} rows (or 'synthetic')")
    out: str = arg("lexicon.json", help="output JSON {trait: {high: {word: w}, low: {...}}}")
    lexicon: LexiconConfig = arg(factory=LexiconConfig, help="scoring")


@dataclass
class MakeCorpusCommand:
    out: str = arg("corpus.jsonl", help="output corpus .jsonl")
    model: str = arg(
        "synthetic", help="synthetic (templated, no model) or a chat LLM (smollm2, folder, hub id)"
    )
    per_situation: int = arg(1, help="responses per (trait, pole, situation)")
    situations: str | None = arg(None, help="a text file of situations, one per line (default: ours)")
    max_new_tokens: int = arg(48, help="LLM: tokens per response")
    temperature: float = arg(0.8, help="LLM: sampling temperature")
    seed: int = arg(0, help="seed")
    traits: list[str] = arg(list(TRAITS), help="traits to role-play")
    dtype: Literal["float32", "bfloat16", "float16"] = arg(
        "float32", help="LLM: weights dtype (GPU: bfloat16)"
    )
    device: str = arg("cpu", help="LLM: cpu, cuda, cuda:N or auto")


@dataclass
class TrainLMCommand:
    """A tiny GPT-2 (and a BPE tokenizer) trained on a corpus: the demo's LM."""

    corpus: str = arg("synthetic", help="corpus .jsonl (its texts) or 'synthetic'")
    hidden: int = arg(64, help="hidden size")
    layers: int = arg(2, help="blocks")
    heads: int = arg(2, help="heads")
    vocab_size: int = arg(800, help="BPE vocabulary size")
    block: int = arg(48, help="tokens per training sequence")
    batch_size: int = arg(32, help="batch size")
    train: TrainConfig = arg(factory=lambda: TrainConfig(out_dir="runs/ubpl/lm", max_epochs=4, monitor=None))
    optim: OptimConfig = arg(factory=lambda: OptimConfig(lr=3e-3, schedule="cosine", warmup_ratio=0.05))

    def __post_init__(self):
        for f in ("hidden", "layers", "heads", "vocab_size", "block", "batch_size"):
            if getattr(self, f) < 1:
                raise ValueError(f"{f} must be >= 1, got {getattr(self, f)}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")


@dataclass
class GenerateCommand:
    prompt: str = arg(positional=True, help="the user prompt")
    model: LMConfig = arg(factory=LMConfig, help="the model")
    lexicon: str = arg("lexicon.json", help="lexicon JSON (build-lexicon)")
    steer: SteerConfig = arg(factory=SteerConfig, help="steering")
    max_new_tokens: int = arg(64, help="tokens to generate")
    sample: bool = arg(False, help="sample (else greedy)")
    temperature: float = arg(0.8, help="sampling temperature")
    top_p: float = arg(0.95, help="sampling nucleus")
    seed: int = arg(0, help="seed")
    stream: bool = arg(True, help="print tokens as they are generated")
    chat: bool = arg(True, help="apply the tokenizer's chat template")

    def __post_init__(self):
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


@dataclass
class EvaluateCommand:
    model: LMConfig = arg(factory=LMConfig, help="the model")
    lexicon: str = arg("lexicon.json", help="lexicon JSON")
    steer: SteerConfig = arg(factory=SteerConfig, help="steering (lambdas all 0: no control)")
    items: str | None = arg(None, help="questionnaire CSV in the MPI format (default: our own items)")
    persona: str | None = arg(None, help="a persona system prompt instead of / with lexicon steering")
    prompts: str | None = arg(
        None, help="open prompts file (one per line) for the text metrics (default: ours)"
    )
    max_new_tokens: int = arg(40, help="tokens per open answer")
    questionnaire: bool = arg(True, help="score the questionnaire")
    out: str | None = arg(None, help="write the result JSON here")


@dataclass
class CompareCommand:
    model: LMConfig = arg(factory=LMConfig, help="the model")
    lexicon: str = arg("lexicon.json", help="lexicon JSON")
    trait: str = arg("E", help="trait to control")
    level: Literal["high", "low"] = arg("high", help="direction")
    gamma: float = arg(5.0, help="steering strength")
    items: str | None = arg(None, help="questionnaire CSV (MPI format; default: our own items)")
    prompts: str | None = arg(None, help="open prompts file")
    max_new_tokens: int = arg(40, help="tokens per open answer")
    out: str = arg("runs/ubpl/compare", help="output folder")


@dataclass
class DemoCommand:
    out: str = arg("runs/ubpl/demo", help="output folder")
    traits: list[str] = arg(["E", "A"], help="the two traits steered")
    gamma: float = arg(4.0, help="steering strength")
    lm_epochs: int = arg(8, help="epochs of the demo's tiny LM")
    max_new_tokens: int = arg(32, help="tokens per generation")
