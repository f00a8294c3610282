"""The attack protocol (TextDefender's, the default) and the four recipes, as plain data.

Every attack here is TextAttack's greedy word swap with word-importance ranking (``GreedyWordSwapWIR``); the recipes
differ only in the ranking method, the candidate source and their own constraints, exactly as TextDefender ran them
(the transformation of TextFooler / PWWS / TextBugger replaced by one embedding swap with K = 50 candidates, BERT-Attack
by masked-LM top-50):

| recipe | word ranking | candidates | recipe constraints (besides repeat / stop words) |
|---|---|---|---|
| textfooler | delete | embedding K | USE angular >= 0.8408, window 15, vs previous text, short texts skipped (POS dropped) |
| pwws | weighted saliency | embedding K | none |
| textbugger | delete | embedding K | USE angular >= 0.8 over the whole text vs original |
| bert-attack | [UNK] | masked LM K | max 40 % words; USE cosine >= 0.2, whole text vs original |

The protocol then appends: at most ``max_modification_rate`` of the words changed (TextAttack's ``MaxWordsPerturbed``:
``ceil(rate * #words)``), similarity >= ``similarity_threshold`` (angular, window 15, vs previous text, short texts
skipped), and a query budget of ``query_factor * #words`` per example.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from tenfold_core.attack.similarity import USE_THRESHOLD
from tenfold_core.errors import ConfigError

__all__ = ["AttackProtocol", "Recipe", "SimilaritySpec", "RECIPES", "get_recipe"]


@dataclass(frozen=True)
class SimilaritySpec:
    threshold: float
    metric: str = "angular"
    window: int | None = 15
    compare_against_original: bool = False
    skip_short: bool = True


@dataclass(frozen=True)
class Recipe:
    name: str
    wir: str  # "delete", "unk" or "weighted-saliency"
    candidates: str  # "embedding" (any context-free source) or "mlm"
    max_rate: float | None = None
    similarity: tuple[SimilaritySpec, ...] = ()


RECIPES: dict[str, Recipe] = {
    # TextFooler's own USE constraint is exactly the protocol's (angular 0.8408, window 15): it is represented by it,
    # so a threshold recalibrated for a local encoder applies to both
    "textfooler": Recipe("textfooler", "delete", "embedding"),
    "pwws": Recipe("pwws", "weighted-saliency", "embedding"),
    "textbugger": Recipe(
        "textbugger", "delete", "embedding", None, (SimilaritySpec(0.8, "angular", None, True, False),)
    ),
    "bert-attack": Recipe(
        "bert-attack", "unk", "mlm", 0.4, (SimilaritySpec(0.2, "cosine", None, True, False),)
    ),
}


def get_recipe(name: str) -> Recipe:
    key = name.lower().replace("_", "-")
    key = {"bertattack": "bert-attack", "bae": "bert-attack"}.get(
        key, key
    )  # TextDefender calls BERT-Attack "bae"
    if key not in RECIPES:
        raise ConfigError(f"unknown attack recipe {name!r}; choose from {', '.join(RECIPES)}")
    return RECIPES[key]


@dataclass
class AttackProtocol:
    """One fixed attack protocol (defaults: TextDefender's). Printed with every result."""

    recipe: str = "textfooler"
    k: int = 50  # candidates per word
    max_modification_rate: float = 0.3
    similarity_threshold: float = USE_THRESHOLD  # calibrated for USE; recalibrate for a local encoder
    similarity_window: int = 15
    query_factor: int = 50  # budget = factor * #words per example; 0 = unlimited
    n_examples: int = 1000
    min_words: int = 5  # keep test texts with more than 4 whitespace tokens
    seed: int = 42
    recipe_constraints: bool = True  # keep each recipe's own similarity / rate constraints
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        get_recipe(self.recipe)
        if not 0 < self.max_modification_rate <= 1:
            raise ConfigError(f"max_modification_rate must be in (0, 1], got {self.max_modification_rate}")
        if self.k < 1:
            raise ConfigError(f"k must be >= 1, got {self.k}")
        if self.query_factor < 0:
            raise ConfigError(f"query_factor must be >= 0, got {self.query_factor}")

    @property
    def recipe_spec(self) -> Recipe:
        return get_recipe(self.recipe)

    def similarity_specs(self) -> list[SimilaritySpec]:
        specs = list(self.recipe_spec.similarity) if self.recipe_constraints else []
        specs.append(
            SimilaritySpec(self.similarity_threshold, "angular", self.similarity_window, False, True)
        )
        return specs

    def max_rates(self) -> list[float]:
        rates = [self.max_modification_rate]
        if self.recipe_constraints and self.recipe_spec.max_rate is not None:
            rates.insert(0, self.recipe_spec.max_rate)
        return rates

    def budget(self, num_words: int) -> int | None:
        return self.query_factor * num_words if self.query_factor else None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self, synonyms=None, encoder=None) -> str:
        parts = [
            f"recipe={self.recipe_spec.name}",
            f"K={self.k}",
            f"rho_max={self.max_modification_rate}",
            f"sim>={self.similarity_threshold:.4f} (angular, window {self.similarity_window})",
            f"budget={self.query_factor}x#words" if self.query_factor else "budget=none",
            f"examples={self.n_examples} with >{self.min_words - 1} words, seed {self.seed}",
        ]
        if self.extra.get("similarity_calibration"):
            parts.append(f"threshold calibration: {self.extra['similarity_calibration']}")
        if synonyms is not None:
            parts.append(f"synonyms={synonyms.describe() if hasattr(synonyms, 'describe') else synonyms}")
        if encoder is not None:
            parts.append(f"encoder={getattr(encoder, 'name', type(encoder).__name__)}")
        return "; ".join(parts)
