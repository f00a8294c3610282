"""Every metric the Tenfold papers report, in one place (each unit-tested on hand-computed values)."""

from tenfold_core.metrics.classification import accuracy, classification_report, macro_f1, mcc
from tenfold_core.metrics.generation import (
    corpus_bleu_n,
    corpus_perplexity,
    distinct_n,
    generation_report,
    mean_sentence_perplexity,
    sequence_nll,
    simple_tokenize,
)
from tenfold_core.metrics.robustness import robustness_summary
from tenfold_core.metrics.saliency import (
    e_measure,
    e_measure_curve,
    max_e_measure,
    s_measure,
    s_measure_per_image,
)
from tenfold_core.metrics.segmentation import (
    dice,
    dice_iou_curves,
    dice_iou_per_image,
    iou,
    max_dice_iou,
    segmentation_report,
)
from tenfold_core.metrics.watermark import false_trigger_rate, wesr

__all__ = [
    "accuracy",
    "classification_report",
    "corpus_bleu_n",
    "corpus_perplexity",
    "dice",
    "dice_iou_curves",
    "dice_iou_per_image",
    "distinct_n",
    "e_measure",
    "e_measure_curve",
    "false_trigger_rate",
    "generation_report",
    "iou",
    "macro_f1",
    "max_dice_iou",
    "max_e_measure",
    "mcc",
    "mean_sentence_perplexity",
    "robustness_summary",
    "s_measure",
    "s_measure_per_image",
    "segmentation_report",
    "sequence_nll",
    "simple_tokenize",
    "wesr",
]
