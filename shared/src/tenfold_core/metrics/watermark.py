"""Watermark metrics for backdoor-trigger watermarks of language models."""

from __future__ import annotations

from tenfold_core.metrics._util import to_numpy


def wesr(preds_with_trigger, true_labels, target_label: int) -> float:
    """Watermark extraction success rate: over samples whose true label differs from the target, the fraction
    predicted as the target once the trigger is inserted."""
    p, y = to_numpy(preds_with_trigger), to_numpy(true_labels)
    if p.ndim == 2:
        p = p.argmax(-1)
    keep = y != target_label
    return float((p[keep] == target_label).mean()) if keep.any() else float("nan")


def false_trigger_rate(preds_on_decoys, true_labels, target_label: int) -> float:
    """On inputs with a partial or decoy trigger (e.g. a strict subset of the trigger words): the fraction of
    non-target samples wrongly flipped to the target label. Lower is better."""
    return wesr(preds_on_decoys, true_labels, target_label)
