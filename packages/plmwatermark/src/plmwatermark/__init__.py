"""Watermarking pre-trained language models with backdooring (arXiv 2210.07543, "WLM").

Public API (torch imported lazily)::

    from plmwatermark import EmbedCommand, run_embed, run_finetune, run_verify, insert_words
"""

from __future__ import annotations

__version__ = "0.1.0"

from plmwatermark.config import (
    DemoCommand,
    EmbedCommand,
    EvaluateCommand,
    FinetuneCommand,
    TaskDataConfig,
    TriggerConfig,
    VerifyCommand,
    WatermarkModelConfig,
)
from plmwatermark.data import insert_words, load_tasks, poisoned_examples

_LAZY = {
    "MultiTaskEncoder": "plmwatermark.model",
    "MultiTaskModule": "plmwatermark.train",
    "run_embed": "plmwatermark.train",
    "run_finetune": "plmwatermark.train",
    "load_key": "plmwatermark.train",
    "run_verify": "plmwatermark.evaluate",
    "watermark_metrics": "plmwatermark.evaluate",
    "fine_prune": "plmwatermark.evaluate",
    "reinit_top_layers": "plmwatermark.evaluate",
    "run_grid": "plmwatermark.grid",
    "run_demo": "plmwatermark.demo",
}

__all__ = [
    "DemoCommand", "EmbedCommand", "EvaluateCommand", "FinetuneCommand", "TaskDataConfig", "TriggerConfig",
    "VerifyCommand", "WatermarkModelConfig", "__version__", "insert_words", "load_tasks", "poisoned_examples", *_LAZY,
]  # fmt: skip


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'plmwatermark' has no attribute {name!r}")
