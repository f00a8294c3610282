"""Classification metrics: accuracy, macro-F1, Matthews correlation (MCC, for CoLA-style tasks)."""

from __future__ import annotations

import numpy as np

from tenfold_core.metrics._util import as_numpy_labels


def accuracy(preds, labels) -> float:
    """Fraction of predictions equal to the labels (``preds`` may be logits ``[N, C]``)."""
    p, y = as_numpy_labels(preds, labels)
    return float((p == y).mean()) if len(y) else float("nan")


def macro_f1(preds, labels, num_classes: int | None = None) -> float:
    """Unweighted mean of per-class F1 over the classes present in labels or predictions (or ``num_classes``)."""
    p, y = as_numpy_labels(preds, labels)
    classes = range(num_classes) if num_classes is not None else np.union1d(p, y)
    f1s = []
    for c in classes:
        tp = np.sum((p == c) & (y == c))
        fp = np.sum((p == c) & (y != c))
        fn = np.sum((p != c) & (y == c))
        denom = 2 * tp + fp + fn
        f1s.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(f1s)) if f1s else float("nan")


def mcc(preds, labels) -> float:
    """Matthews correlation coefficient (multi-class form of Gorodkin); 0.0 when undefined."""
    p, y = as_numpy_labels(preds, labels)
    classes = np.union1d(p, y)
    idx = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    cm = np.zeros((k, k), dtype=np.float64)
    for a, b in zip(y, p):
        cm[idx[a], idx[b]] += 1
    t, pk = cm.sum(1), cm.sum(0)
    c, s = np.trace(cm), cm.sum()
    num = c * s - t @ pk
    den = np.sqrt(s**2 - pk @ pk) * np.sqrt(s**2 - t @ t)
    return float(num / den) if den > 0 else 0.0


def classification_report(preds, labels) -> dict[str, float]:
    return {
        "accuracy": accuracy(preds, labels),
        "macro_f1": macro_f1(preds, labels),
        "mcc": mcc(preds, labels),
    }
