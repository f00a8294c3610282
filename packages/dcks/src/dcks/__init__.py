"""DCKS (arXiv 2306.04657): empathetic response generation with dynamically selected commonsense knowledge.

Public API (torch is imported lazily)::

    from dcks import DCKS, DCKSConfig, solve_simplex_qp
    model = DCKS(DCKSConfig(backbone="tiny", num_emotions=4))
    out = model.generate(input_ids, attention_mask, knowledge_input_ids, knowledge_attention_mask)
    # out["sequences"], out["emotion"], out["relation_ranking"]
"""

from __future__ import annotations

__version__ = "0.1.0"

from dcks.config import (
    ED_EMOTIONS,
    RELATIONS,
    ChatCommand,
    DataConfig,
    DCKSConfig,
    DecodeConfig,
    DemoCommand,
    EvaluateCommand,
    LossConfig,
    TrainCommand,
)

_LAZY = {
    "DCKS": "dcks.model",
    "DCKSBart": "dcks.model",
    "DCKSDecoderLayer": "dcks.model",
    "relation_gradients": "dcks.model",
    "selection_shift": "dcks.model",
    "solve_simplex_qp": "dcks.qp",
    "DCKSModule": "dcks.train",
    "run_train": "dcks.train",
    "run_evaluate": "dcks.evaluate",
    "evaluate_examples": "dcks.evaluate",
    "load_dcks": "dcks.evaluate",
    "respond": "dcks.evaluate",
    "dcks_loss": "dcks.losses",
    "load_dialogues": "dcks.data",
    "synthetic_dialogues": "dcks.data",
    "run_demo": "dcks.demo",
}

__all__ = [
    "ED_EMOTIONS", "RELATIONS", "ChatCommand", "DCKSConfig", "DataConfig", "DecodeConfig", "DemoCommand",
    "EvaluateCommand", "LossConfig", "TrainCommand", "__version__", *_LAZY,
]  # fmt: skip


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dcks' has no attribute {name!r}")
