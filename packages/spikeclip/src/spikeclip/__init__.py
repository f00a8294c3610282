"""SpikeCLIP: spiking CLIP with alignment pre-training and dual-loss fine-tuning (arXiv 2310.06488).

``import spikeclip`` is cheap: the torch-backed names load on first use."""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

from spikeclip.config import (
    AlignImageConfig,
    AlignTextConfig,
    DataConfig,
    DemoConfig,
    DualFinetuneConfig,
    DualLossConfig,
    EvaluateConfig,
    FinetuneTeacherConfig,
    HFTeacherConfig,
    ImageEncoderConfig,
    MiniCLIPConfig,
    TextEncoderConfig,
    TrainTeacherConfig,
)

_LAZY = {
    "SpikingImageEncoder": "spikeclip.model",
    "SpikingTextEncoder": "spikeclip.model",
    "ANNImageEncoder": "spikeclip.model",
    "MiniCLIP": "spikeclip.model",
    "CLIPTeacher": "spikeclip.model",
    "TimeWeighting": "spikeclip.model",
    "cosine_alignment_loss": "spikeclip.losses",
    "class_logits": "spikeclip.losses",
    "dual_loss": "spikeclip.losses",
    "kl_teacher_student": "spikeclip.losses",
    "gradient_angle": "spikeclip.losses",
    "load_data": "spikeclip.data",
    "build_prompts": "spikeclip.data",
    "train_teacher": "spikeclip.train",
    "align_text": "spikeclip.train",
    "align_image": "spikeclip.train",
    "finetune_teacher": "spikeclip.train",
    "dual_finetune": "spikeclip.train",
    "class_embeddings": "spikeclip.train",
    "load_run_dir": "spikeclip.train",
    "run_evaluate": "spikeclip.evaluate",
    "energy_report": "spikeclip.evaluate",
    "run_demo": "spikeclip.demo",
}

__all__ = [
    "AlignImageConfig", "AlignTextConfig", "DataConfig", "DemoConfig", "DualFinetuneConfig", "DualLossConfig",
    "EvaluateConfig", "FinetuneTeacherConfig", "HFTeacherConfig", "ImageEncoderConfig", "MiniCLIPConfig",
    "TextEncoderConfig", "TrainTeacherConfig", "__version__", *_LAZY,
]  # fmt: skip


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'spikeclip' has no attribute {name!r}")
