"""SpikeBERT (arXiv 2308.15122): a spiking Transformer for text classification, distilled from BERT in two stages.

Public API::

    from spikebert import SpikeBERT, SpikeBertConfig, stride_layer_map, load_student
    model = SpikeBERT(SpikeBertConfig(vocab_size=28996, dim=768, depth=12, time_steps=4))
    out = model(input_ids, attention_mask)        # out.logits [B, C] = mean over T of out.step_logits [B, T, C]
"""

__version__ = "0.1.0"

from spikebert.losses import StageWeights, embedding_mse, hidden_mse, logit_kl, rep_loss, task_distill_loss
from spikebert.model import (
    SpikeBERT,
    SpikeBertConfig,
    SpikeBertOutput,
    average_over_time,
    load_stage1_weights,
    load_student,
    stride_layer_map,
)
from spikebert.train import PretrainDistillModule, TaskDistillModule, TeacherModule, quick_fit

__all__ = [
    "PretrainDistillModule",
    "SpikeBERT",
    "SpikeBertConfig",
    "SpikeBertOutput",
    "StageWeights",
    "TaskDistillModule",
    "TeacherModule",
    "__version__",
    "average_over_time",
    "embedding_mse",
    "hidden_mse",
    "load_stage1_weights",
    "load_student",
    "logit_kl",
    "quick_fit",
    "rep_loss",
    "stride_layer_map",
    "task_distill_loss",
]
