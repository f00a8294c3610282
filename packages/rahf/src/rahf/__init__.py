"""Representation Alignment from Human Feedback (SCIT and DUAL) with LoRA, side by side with DPO (arXiv 2312.15997).

``import rahf`` is cheap: the torch-side API loads on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "sft": "rahf.train", "scit": "rahf.train", "dual": "rahf.train", "align": "rahf.train", "dpo": "rahf.train",
    "SFTModule": "rahf.train", "SCITModule": "rahf.train", "AlignModule": "rahf.train", "DPOModule": "rahf.train",
    "evaluate": "rahf.evaluate", "win_rate": "rahf.evaluate", "perplexity": "rahf.evaluate",
    "compare": "rahf.compare", "demo": "rahf.demo",
    "scit_loss": "rahf.losses", "align_loss": "rahf.losses", "dpo_loss": "rahf.losses",
    "DirectionCache": "rahf.cache", "load_policy": "rahf.model", "add_lora": "rahf.model",
    "load_pairs": "rahf.data", "split_pairs": "rahf.data", "synthetic_pairs": "rahf.data", "Pair": "rahf.data",
}  # fmt: skip
_CONFIG = [
    "LMConfig", "PrefDataConfig", "SCITLossConfig", "AlignLossConfig", "SFTCommand", "SCITCommand", "DualCommand",
    "AlignCommand", "DPOCommand", "EvaluateCommand", "CompareCommand", "DemoCommand",
]  # fmt: skip
__all__ = ["__version__", *_CONFIG, *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _CONFIG:
        return getattr(importlib.import_module("rahf.config"), name)
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rahf' has no attribute {name!r}")
