"""doubledescent: model-wise double descent under label noise, explained through learned-feature k-NN
(Gu, Zheng, Aste, arXiv 2310.13572).

``import doubledescent`` is cheap: the torch-free configs are imported eagerly, everything else on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from .config import (
    PAPER_CNN_WIDTHS,
    PAPER_FC_WIDTHS,
    DataConfig,
    DemoCommand,
    EvaluateCommand,
    ReportCommand,
    SweepCommand,
    TrainCommand,
    TsneCommand,
    WidthModelConfig,
    cnn_params,
    estimate_params,
    resnet18_params,
    simple_fc_params,
)

_LAZY = {
    "ArrayData": "data",
    "load_data": "data",
    "evaluate_model": "evaluate",
    "extract_features": "evaluate",
    "knn_noisy_recovery": "evaluate",
    "measure": "evaluate",
    "evaluate_run": "evaluate",
    "WidthModel": "model",
    "SimpleFC": "model",
    "FiveLayerCNN": "model",
    "PreActResNet18": "model",
    "build_model": "model",
    "model_config_for": "model",
    "NoisyLabels": "noise",
    "inject_label_noise": "noise",
    "noisy_labels_for": "noise",
    "aggregate": "report",
    "build_report": "report",
    "curve_stats": "report",
    "write_report": "report",
    "read_results": "results",
    "run_sweep": "sweep",
    "WidthClassifier": "train",
    "PackedSimpleFC": "train",
    "fit_unit": "train",
    "train_packed": "train",
    "run_train": "train",
    "lr_at_epoch": "train",
    "feature_tsne": "tsne",
    "run_demo": "demo",
}

__all__ = [
    "__version__",
    "PAPER_CNN_WIDTHS",
    "PAPER_FC_WIDTHS",
    "DataConfig",
    "DemoCommand",
    "EvaluateCommand",
    "ReportCommand",
    "SweepCommand",
    "TrainCommand",
    "TsneCommand",
    "WidthModelConfig",
    "cnn_params",
    "estimate_params",
    "resnet18_params",
    "simple_fc_params",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'doubledescent' has no attribute {name!r}")
