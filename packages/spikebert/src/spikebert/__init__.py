"""SpikeBERT (arXiv 2308.15122): a spiking Transformer for text classification, distilled from BERT in two stages.

Public API::

    from spikebert import SpikeBERT, SpikeBertConfig
    model = SpikeBERT(SpikeBertConfig(vocab_size=28996, dim=768, depth=12, time_steps=4))
    out = model(input_ids, attention_mask)        # out.logits [B, C] = mean over T of out.step_logits [B, T, C]

``import spikebert`` is cheap: names that need torch load on first use.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

_LAZY = {
    "SpikeBertConfig": "config",
    "NeuronConfig": "config",
    "TeacherConfig": "config",
    "DataConfig": "config",
    "CorpusConfig": "config",
    "TaskLossConfig": "config",
    "PretrainLossConfig": "config",
    "RateRegConfig": "config",
    "AugmentConfig": "config",
    "TaskDataConfig": "config",
    "SpikeBERT": "model",
    "SpikeBertOutput": "model",
    "average_over_time": "model",
    "load_stage1_weights": "model",
    "load_student": "model",
    "stride_layer_map": "model",
    "padding_mask": "model",
    "StageWeights": "losses",
    "embedding_mse": "losses",
    "hidden_mse": "losses",
    "logit_kl": "losses",
    "rep_loss": "losses",
    "rate_penalty": "losses",
    "task_distill_loss": "losses",
    "PretrainDistillModule": "train",
    "TaskDistillModule": "train",
    "TeacherModule": "train",
    "MLMModule": "train",
    "FiringRateLogger": "train",
    "energy_comparison": "evaluate",
    "same_size_ann": "evaluate",
    "scores_from_confusion": "evaluate",
    "augment_sentences": "augment",
    "augment_split": "augment",
    "TagClasses": "augment",
    "WordClasses": "augment",
    "BrillTagger": "tagger",
    "brill_tagger": "tagger",
    "load_official_checkpoint": "official",
    "official_key_map": "official",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'spikebert' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"spikebert.{mod}"), name)
    globals()[name] = value
    return value
