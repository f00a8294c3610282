"""Big-Five personality control at decoding time with unsupervisedly built lexicons (arXiv 2310.16582).

``import ubpl`` is cheap: the torch-side API loads on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "build_lexicon": "ubpl.lexicon", "load_lexicon": "ubpl.lexicon", "save_lexicon": "ubpl.lexicon",
    "load_corpus": "ubpl.lexicon", "map_lexicon": "ubpl.model", "PersonalityLogitsProcessor": "ubpl.model",
    "build_processor": "ubpl.model", "questionnaire": "ubpl.evaluate", "lexicon_scores": "ubpl.evaluate",
    "distinct_n": "ubpl.evaluate", "perplexity": "ubpl.evaluate", "generate_texts": "ubpl.evaluate",
    "synthetic_corpus": "ubpl.data", "llm_corpus": "ubpl.data", "load_items": "ubpl.data",
    "train_lm": "ubpl.train", "load_model": "ubpl.train", "demo": "ubpl.demo",
}  # fmt: skip
_CONFIG = ["LexiconConfig", "SteerConfig", "LMConfig", "parse_lambdas", "TRAITS", "TRAIT_NAMES"]
__all__ = ["__version__", *_CONFIG, *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _CONFIG:
        return getattr(importlib.import_module("ubpl.config"), name)
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ubpl' has no attribute {name!r}")
