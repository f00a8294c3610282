"""Data sets as in-memory arrays: digits (default, offline), a synthetic Gaussian mixture, MNIST / CIFAR-10 (through
torchvision, for users with network) and any local ``.npz`` with ``x_train, y_train, x_test, y_test``.

The training subset is fixed by the data configuration alone (never by the unit's seed), as in the paper: every width,
noise level and seed trains on the same inputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tenfold_core.errors import ConfigError, DataError, UserError

from .config import DataConfig

__all__ = ["DataConfig", "ArrayData", "load_data", "check_labels", "train_loader", "DATA_NAMES"]

DATA_NAMES = ("digits", "synthetic", "mnist", "cifar10", "npz")


@dataclass
class ArrayData:
    """Float32 inputs (N, *input_shape) and int64 labels in [0, num_classes)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        return len(self.y_train)


def _take(x: np.ndarray, n: int | None, what: str) -> np.ndarray:
    if n is None:
        return x
    if n > len(x):
        raise ConfigError(f"data.{what}: asked for {n} samples, the data set has {len(x)}")
    return x[:n]


def _digits(cfg: DataConfig) -> ArrayData:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(cfg.data_seed).permutation(len(y))
    n_train = cfg.n_train if cfg.n_train is not None else 1000
    if n_train >= len(y):
        raise ConfigError(
            f"data.n_train: digits has {len(y)} samples; leave some for the test set (got {n_train})"
        )
    tr, te = perm[:n_train], perm[n_train:]
    te = _take(te, cfg.n_test, "n_test")
    return ArrayData("digits", x[tr], y[tr], x[te], y[te], 10)


def _synthetic(cfg: DataConfig) -> ArrayData:
    """Gaussian mixture: class means ~ N(0, I_d), unit-variance noise, standardised with training statistics."""
    rng = np.random.default_rng(cfg.data_seed)
    c, d = cfg.synthetic_classes, cfg.synthetic_dim
    if c < 2 or d < 1:
        raise ConfigError(f"data.synthetic_classes must be >= 2 and synthetic_dim >= 1, got {c}, {d}")
    means = rng.normal(size=(c, d))
    n_train = cfg.n_train if cfg.n_train is not None else 1000
    n_test = cfg.n_test if cfg.n_test is not None else 4000
    if (n_train + n_test) * d > 50_000_000:
        raise ConfigError(
            f"data: the synthetic mixture of {n_train} + {n_test} samples x {d} dims would take "
            f"{(n_train + n_test) * d * 8 / 1e9:.1f} GB; the limit is 5e7 values"
        )

    def draw(n):
        y = rng.integers(0, c, size=n)
        return means[y] + rng.normal(size=(n, d)), y

    xtr, ytr = draw(n_train)
    xte, yte = draw(n_test)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-8
    f = lambda a: ((a - mu) / sd).astype(np.float32)  # noqa: E731
    return ArrayData("synthetic", f(xtr), ytr.astype(np.int64), f(xte), yte.astype(np.int64), c)


def _torchvision(cfg: DataConfig) -> ArrayData:
    try:
        import torchvision  # noqa: F401
        from torchvision import datasets
    except ImportError:
        raise UserError(
            f"data.name={cfg.name} needs torchvision: pip install 'tenfold-doubledescent[torchvision]' "
            "(or convert the data to an .npz and use data.name=npz)"
        ) from None
    root = os.path.expanduser(cfg.root)
    cls = datasets.MNIST if cfg.name == "mnist" else datasets.CIFAR10
    try:
        train = cls(root, train=True, download=cfg.download)
        test = cls(root, train=False, download=cfg.download)
    except RuntimeError as e:  # "Dataset not found. You can use download=True ..."
        raise DataError(f"data.name={cfg.name} (root {root}): {str(e).splitlines()[0]}") from None
    except OSError as e:  # no network
        raise DataError(f"data.name={cfg.name}: could not download to {root} ({e})") from None

    def arrays(ds):
        x = np.asarray(ds.data)
        y = np.asarray(ds.targets, dtype=np.int64)
        if x.ndim == 3:  # MNIST (N, 28, 28) uint8 -> ToTensor: (N, 1, 28, 28) in [0, 1]
            return (x.astype(np.float32) / 255.0)[:, None], y
        x = x.astype(np.float32).transpose(0, 3, 1, 2) / 255.0  # CIFAR (N, 32, 32, 3) -> Normalize(0.5, 0.5)
        return (x - 0.5) / 0.5, y

    xtr, ytr = arrays(train)
    xte, yte = arrays(test)
    n_train = cfg.n_train if cfg.n_train is not None else (4000 if cfg.name == "mnist" else None)
    return ArrayData(
        cfg.name,
        _take(xtr, n_train, "n_train"),
        _take(ytr, n_train, "n_train"),
        _take(xte, cfg.n_test, "n_test"),
        _take(yte, cfg.n_test, "n_test"),
        10,
    )


def check_labels(path: Path, y_train: np.ndarray, y_test: np.ndarray) -> int:
    """Class labels must be integers 0..K-1, every one present in y_train, and y_test must hold no class that y_train
    lacks; returns K. One-line :class:`DataError` naming the file, the array and the offending value otherwise."""
    for name, y in (("y_train", y_train), ("y_test", y_test)):
        if y.ndim != 1:
            raise DataError(
                f"data.path {path}: {name} must be a 1-d array of class labels, got shape {y.shape}"
            )
        if y.dtype.kind == "f" and len(y) and np.isfinite(y).all() and (y == np.round(y)).all():
            continue  # integral floats (e.g. saved from pandas) are accepted
        if not np.issubdtype(y.dtype, np.integer):
            bad = (
                next((v for v in y.tolist() if not float(v).is_integer()), None)
                if y.dtype.kind in "fc"
                else None
            )
            what = f" (e.g. {bad!r})" if bad is not None else f" (dtype {y.dtype})"
            raise DataError(f"data.path {path}: {name} must hold integer class labels{what}")
    ytr, yte = y_train.astype(np.int64), y_test.astype(np.int64)
    if not len(ytr):
        raise DataError(f"data.path {path}: y_train is empty")
    classes = np.unique(ytr)
    k = len(classes)
    if k < 2:
        raise DataError(f"data.path {path}: y_train has a single class ({int(classes[0])}); need at least 2")
    if classes[0] != 0 or classes[-1] != k - 1:
        bad = int(classes[0]) if classes[0] != 0 else int(classes[-1])
        raise DataError(
            f"data.path {path}: y_train label {bad}: labels must be the contiguous classes 0..K-1 "
            f"(found {k} distinct values from {int(classes[0])} to {int(classes[-1])})"
        )
    unseen = np.setdiff1d(np.unique(yte), classes)
    if len(unseen):
        raise DataError(
            f"data.path {path}: y_test label {int(unseen[0])} does not occur in y_train (classes 0..{k - 1})"
        )
    return k


def _npz(cfg: DataConfig) -> ArrayData:
    if not cfg.path:
        raise ConfigError("data.path: name=npz needs the path of an .npz file")
    p = Path(cfg.path)
    if p.is_dir():
        raise DataError(f"data.path {p}: is a folder, expected an .npz file")
    if not p.is_file():
        raise DataError(f"data.path {p}: no such file")
    try:
        z = np.load(p, allow_pickle=False)
        files = list(z.files)
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in files]
        if missing:
            raise DataError(
                f"data.path {p}: missing array(s) {', '.join(missing)} (found: {', '.join(files)})"
            )
        xtr, ytr, xte, yte = (z[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    except DataError:
        raise
    except Exception as e:  # zipfile.BadZipFile, ValueError (object arrays need pickle), OSError ...
        raise DataError(f"data.path {p}: not a readable .npz file ({type(e).__name__})") from None
    for name, x, y in (("train", xtr, ytr), ("test", xte, yte)):
        if y.ndim != 1 or x.ndim < 2 or len(x) != len(y):
            raise DataError(f"data.path {p}: x_{name} has shape {x.shape} but y_{name} has shape {y.shape}")
        if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x) or not np.isfinite(x).all():
            raise DataError(f"data.path {p}: x_{name} must be finite real numbers")
    if xtr.shape[1:] != xte.shape[1:]:
        raise DataError(
            f"data.path {p}: x_train rows have shape {xtr.shape[1:]}, x_test rows {xte.shape[1:]}"
        )
    if not len(yte):
        raise DataError(f"data.path {p}: x_test is empty")
    ytr_n = _take(ytr, cfg.n_train, "n_train")
    yte_n = _take(yte, cfg.n_test, "n_test")
    c = check_labels(p, ytr_n, yte_n)
    return ArrayData(
        p.stem,
        _take(xtr.astype(np.float32), cfg.n_train, "n_train"),
        ytr_n.astype(np.int64),
        _take(xte.astype(np.float32), cfg.n_test, "n_test"),
        yte_n.astype(np.int64),
        c,
    )


def load_data(cfg: DataConfig | None = None) -> ArrayData:
    """Load the data set named by ``cfg`` as arrays (see the module docstring)."""
    cfg = cfg or DataConfig()
    if cfg.name == "digits":
        return _digits(cfg)
    if cfg.name == "synthetic":
        return _synthetic(cfg)
    if cfg.name in ("mnist", "cifar10"):
        return _torchvision(cfg)
    if cfg.name == "npz":
        return _npz(cfg)
    raise ConfigError(f"data.name: expected one of {', '.join(DATA_NAMES)}, got {cfg.name!r}")


def train_loader(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
    """A seeded (seed, epoch) shuffling DataLoader over in-memory arrays; ``batch_size=0`` = one full batch."""
    import torch
    from torch.utils.data import TensorDataset

    from tenfold_core.train import make_dataloader

    ds = TensorDataset(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long))
    bs = len(ds) if batch_size == 0 else min(batch_size, len(ds))
    return make_dataloader(ds, bs, shuffle=bs < len(ds), seed=seed)
