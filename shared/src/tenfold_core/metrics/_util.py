from __future__ import annotations

import numpy as np


def to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def as_numpy_labels(preds, labels) -> tuple[np.ndarray, np.ndarray]:
    p, y = to_numpy(preds), to_numpy(labels).reshape(-1)
    if p.ndim == 2:  # logits / probabilities
        p = p.argmax(-1)
    p = p.reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"predictions ({p.shape[0]}) and labels ({y.shape[0]}) differ in length")
    return p, y
