"""doubledescent: model-wise double descent under label noise, explained through learned-feature k-NN
(Gu, Zheng, Aste, arXiv 2310.13572)."""

__version__ = "0.1.0"

from .data import ArrayData, DataConfig, load_data
from .evaluate import evaluate_model, extract_features, knn_noisy_recovery
from .model import (
    FiveLayerCNN,
    PreActResNet18,
    SimpleFC,
    build_model,
    cnn_params,
    resnet18_params,
    simple_fc_params,
)
from .noise import NoisyLabels, inject_label_noise, noisy_labels_for
from .report import aggregate, build_report, curve_stats, write_report
from .results import read_results
from .sweep import PAPER_CNN_WIDTHS, PAPER_FC_WIDTHS, SweepConfig, run_sweep
from .train import PackedSimpleFC, TrainSettings, lr_at_epoch, train_packed_fc, train_unit
from .tsne import TsneConfig, feature_tsne

__all__ = [
    "ArrayData",
    "DataConfig",
    "FiveLayerCNN",
    "NoisyLabels",
    "PAPER_CNN_WIDTHS",
    "PAPER_FC_WIDTHS",
    "PackedSimpleFC",
    "PreActResNet18",
    "SimpleFC",
    "SweepConfig",
    "TrainSettings",
    "__version__",
    "aggregate",
    "build_model",
    "build_report",
    "cnn_params",
    "curve_stats",
    "evaluate_model",
    "extract_features",
    "feature_tsne",
    "TsneConfig",
    "inject_label_noise",
    "knn_noisy_recovery",
    "load_data",
    "lr_at_epoch",
    "noisy_labels_for",
    "read_results",
    "resnet18_params",
    "run_sweep",
    "simple_fc_params",
    "train_packed_fc",
    "train_unit",
    "write_report",
]
