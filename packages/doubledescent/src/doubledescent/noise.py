"""Label noise, drawn once per (noise level, seed) and persisted so that every width trains on the same labels.

Paper / official code: ``round(p n)`` training indices are chosen without replacement and each gets a label drawn
uniformly from *all* classes, so about 1/C of them keep their true label (effective noise ~ 0.9 p on 10 classes).
``mode="wrong"`` draws the new label from the other C - 1 classes instead, so exactly ``round(p n)`` labels change.
The "noisy set" used by the k-NN probe is always ``observed != true``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tenfold_core.errors import ConfigError, DataError
from tenfold_core.io import atomic_open

__all__ = [
    "NoisyLabels",
    "inject_label_noise",
    "noisy_labels_for",
    "load_noisy_labels",
    "labels_digest",
    "noise_file",
]


@dataclass
class NoisyLabels:
    observed: np.ndarray  # labels the model trains on
    true: np.ndarray  # original labels
    selected: np.ndarray  # indices whose label was redrawn (sorted)
    p: float
    seed: int
    mode: str

    @property
    def noisy_mask(self) -> np.ndarray:
        return self.observed != self.true

    @property
    def n_noisy(self) -> int:
        return int(self.noisy_mask.sum())


def inject_label_noise(
    labels: np.ndarray, p: float, num_classes: int, seed: int, mode: str = "random"
) -> NoisyLabels:
    """Redraw the labels of ``round(p * n)`` indices chosen without replacement (see the module docstring).

    The draw depends only on ``(seed, p, mode, n, num_classes)``; for one seed the selected sets are nested across p.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"noise level must be in [0, 1], got {p}")
    if mode not in ("random", "wrong"):
        raise ConfigError(f"noise_mode must be 'random' or 'wrong', got {mode!r}")
    n = len(labels)
    m = int(round(p * n))
    rng = np.random.default_rng(seed)
    selected = np.sort(rng.permutation(n)[:m])
    observed = labels.copy()
    if m:
        if mode == "random":
            observed[selected] = rng.integers(0, num_classes, size=m)
        else:  # a uniformly random *other* class
            shift = rng.integers(1, num_classes, size=m)
            observed[selected] = (labels[selected] + shift) % num_classes
    return NoisyLabels(observed, labels.copy(), selected, float(p), int(seed), mode)


def labels_digest(labels: np.ndarray) -> str:
    """Short SHA-1 of a label vector (written to results.csv so one can check all widths saw the same labels)."""
    return hashlib.sha1(np.ascontiguousarray(labels, dtype=np.int64).tobytes()).hexdigest()[:12]


def noise_file(run_dir: str | Path, p: float, seed: int, mode: str) -> Path:
    return Path(run_dir) / "noise" / f"noise-p{p:g}-seed{seed}-{mode}.npz"


def load_noisy_labels(path: str | Path, labels: np.ndarray) -> NoisyLabels:
    """The noisy labels stored at ``path``; fails (one line, naming the file) if it is unreadable or its true labels
    differ from ``labels`` (the data changed under the run)."""
    path = Path(path)
    labels = np.asarray(labels, dtype=np.int64)
    if not path.is_file():
        raise DataError(f"{path}: no such noisy-label file")
    try:
        with np.load(path, allow_pickle=False) as z:
            observed, true, selected = z["observed"], z["true"], z["selected"]
    except Exception as e:
        raise DataError(
            f"{path}: unreadable noisy-label file ({type(e).__name__}); delete it to redraw"
        ) from None
    if true.shape != labels.shape or not np.array_equal(true, labels):
        raise DataError(
            f"{path}: the stored true labels differ from the current training labels "
            "(the data configuration changed); use a new run folder"
        )
    m = _NAME.match(path.name)
    p, seed, mode = (float(m[1]), int(m[2]), m[3]) if m else (float("nan"), -1, "random")
    return NoisyLabels(observed.astype(np.int64), true.astype(np.int64), selected, p, seed, mode)


_NAME = re.compile(r"noise-p([0-9.e+-]+)-seed(-?\d+)-(random|wrong)\.npz$")


def noisy_labels_for(
    run_dir: str | Path,
    labels: np.ndarray,
    p: float,
    num_classes: int,
    seed: int,
    mode: str = "random",
    save: bool = True,
) -> NoisyLabels:
    """The persisted noisy labels of ``run_dir`` for (p, seed, mode): drawn and saved atomically the first time, loaded
    afterwards. Fails if the stored true labels differ from ``labels`` (the data changed under the run). ``save=False``
    (the non-zero ranks of a distributed sweep) draws without writing: the draw depends only on ``seed``, so every
    rank holds the same labels, and one writer cannot race another."""
    path = noise_file(run_dir, p, seed, mode)
    if path.is_file():
        return load_noisy_labels(path, labels)
    noisy = inject_label_noise(labels, p, num_classes, seed, mode)
    if save:
        with atomic_open(path, "wb") as f:
            np.savez(f, observed=noisy.observed, true=noisy.true, selected=noisy.selected)
    return noisy
