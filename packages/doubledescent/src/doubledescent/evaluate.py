"""The paper's learned-feature k-NN probe, loss/accuracy of a unit, and the ``evaluate`` verb on a run folder."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tenfold_core.errors import ConfigError, DataError
from tenfold_core.metrics import accuracy

__all__ = ["knn_noisy_recovery", "extract_features", "evaluate_model", "measure", "evaluate_run", "load_unit"]


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
    return {"loss": loss / len(y), "acc": accuracy(pred, y), "pred": pred}


def _device_of(model) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def measure(model, data, noisy, knn_k: int = 5, knn_metric: str = "cosine") -> dict[str, float]:
    """Final metrics of a unit: train loss/accuracy on the *observed* (noisy) labels, test loss/accuracy,
    ``noisy_memorized`` (noisy samples predicted as their noisy label) and the k-NN recovery ``knn_p``."""
    dev = _device_of(model)
    xtr = torch.as_tensor(data.x_train, dtype=torch.float32, device=dev)
    ytr = torch.as_tensor(noisy.observed, dtype=torch.long, device=dev)
    xte = torch.as_tensor(data.x_test, dtype=torch.float32, device=dev)
    yte = torch.as_tensor(data.y_test, dtype=torch.long, device=dev)
    tr, te = evaluate_model(model, xtr, ytr), evaluate_model(model, xte, yte)
    mask = torch.as_tensor(noisy.noisy_mask, device=dev)
    mem = float((tr["pred"][mask] == ytr[mask]).double().mean()) if bool(mask.any()) else math.nan
    knn = (
        knn_noisy_recovery(
            extract_features(model, xtr), noisy.observed, noisy.true, k=knn_k, metric=knn_metric
        )
        if noisy.n_noisy
        else math.nan
    )
    return {
        "train_loss": tr["loss"],
        "train_acc": tr["acc"],
        "test_loss": te["loss"],
        "test_acc": te["acc"],
        "noisy_memorized": mem,
        "knn_p": knn,
    }


def load_unit(run_dir: str | Path):
    """(model, run config dict) of a unit's run folder, rebuilt with ``tenfold_core.models.load_run``."""
    from tenfold_core.models import load_run

    run = Path(run_dir)
    if run.is_file():
        raise DataError(f"{run}: is a file, expected a unit's run folder (model.safetensors + config.json)")
    if not (run / "config.json").is_file() or not (run / "model.safetensors").is_file():
        raise DataError(f"{run}: not a doubledescent unit folder (needs model.safetensors and config.json)")
    r = load_run(run, map_location="cpu")
    if "noise" not in r.config or "data" not in r.config:
        raise DataError(f"{run / 'config.json'}: not a doubledescent unit (no 'noise' / 'data' section)")
    return r.model, r.config


def evaluate_run(
    run_dir: str | Path, knn_k: int | None = None, knn_metric: str | None = None
) -> dict[str, Any]:
    """Rebuild a unit from its run folder and measure it on the data and noisy labels it was trained with."""
    from tenfold_core.cli import parse_config

    from .config import DataConfig
    from .data import load_data
    from .noise import load_noisy_labels

    run = Path(run_dir)
    model, conf = load_unit(run)
    data_cfg = parse_config(DataConfig, conf["data"])
    data = load_data(data_cfg)
    if (
        list(data.input_shape) != list(model.config.input_shape)
        or data.num_classes != model.config.num_classes
    ):
        raise DataError(
            f"{run}: the model was trained on inputs {list(model.config.input_shape)} with "
            f"{model.config.num_classes} classes; the data now has {list(data.input_shape)} and {data.num_classes}"
        )
    nz = conf["noise"]
    noisy = load_noisy_labels(run / nz["file"], data.y_train)
    k = knn_k if knn_k is not None else int(conf.get("knn", {}).get("k", 5))
    metric = knn_metric if knn_metric is not None else str(conf.get("knn", {}).get("metric", "cosine"))
    out = measure(model, data, noisy, k, metric)
    return {"run_dir": str(run), "width": model.width, "noise": nz["p"], "seed": nz["seed"], **out}
