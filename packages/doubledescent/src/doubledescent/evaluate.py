"""The paper's learned-feature k-NN probe, loss/accuracy evaluation and feature extraction."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from tenfold_core.errors import ConfigError

__all__ = ["knn_noisy_recovery", "extract_features", "evaluate_model"]


def knn_noisy_recovery(
    features: np.ndarray | torch.Tensor,
    labels_observed: np.ndarray,
    labels_true: np.ndarray,
    k: int = 5,
    metric: str = "cosine",
) -> float:
    """P = fraction of noisy-label samples whose k-NN prediction equals their *true* label.

    A k-NN classifier (``k`` neighbours, ``metric``) is fitted on the features of the clean-label training samples
    (``observed == true``) with their labels and predicts the noisy-label samples (``observed != true``); the score is
    their accuracy against ``labels_true``. Returns NaN when there are no noisy samples.
    """
    from sklearn.neighbors import KNeighborsClassifier

    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    feats = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    obs, true = np.asarray(labels_observed), np.asarray(labels_true)
    if not (len(feats) == len(obs) == len(true)):
        raise ConfigError(
            f"knn_noisy_recovery: features ({len(feats)}), labels_observed ({len(obs)}) and labels_true "
            f"({len(true)}) must have the same length"
        )
    noisy = obs != true
    if not noisy.any():
        return math.nan
    clean = ~noisy
    if clean.sum() < k:
        raise ConfigError(f"knn_noisy_recovery: only {int(clean.sum())} clean samples for k={k}")
    if (
        metric == "cosine"
    ):  # cosine distance is undefined for all-zero vectors (dead ReLU features): nudge them
        zero = np.linalg.norm(feats, axis=1) == 0
        if zero.any():
            feats = feats.copy()
            feats[zero] = 1e-12
    knn = KNeighborsClassifier(n_neighbors=k, metric=metric, algorithm="brute")
    knn.fit(feats[clean], obs[clean])
    return float((knn.predict(feats[noisy]) == true[noisy]).mean())


@torch.no_grad()
def extract_features(model, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Penultimate features of ``x`` (model in eval mode), on the model's device."""
    model.eval()
    return torch.cat([model.features(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


@torch.no_grad()
def evaluate_model(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> dict:
    """Mean cross-entropy, accuracy and per-sample predictions (eval mode)."""
    model.eval()
    loss, preds = 0.0, []
    for i in range(0, len(x), batch_size):
        logits = model(x[i : i + batch_size])
        loss += float(F.cross_entropy(logits.float(), y[i : i + batch_size], reduction="sum"))
        preds.append(logits.argmax(-1))
    pred = torch.cat(preds)
    return {"loss": loss / len(y), "acc": float((pred == y).double().mean()), "pred": pred}
