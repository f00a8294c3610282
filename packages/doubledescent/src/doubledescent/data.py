"""Data sets as in-memory arrays: digits (default, offline), a synthetic Gaussian mixture, MNIST / CIFAR-10 (through
torchvision, for users with network) and any local ``.npz`` with ``x_train, y_train, x_test, y_test``.

The training subset is fixed by the data configuration alone (never by the unit's seed), as in the paper: every width,
noise level and seed trains on the same inputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from tenfold_core.cli import arg
from tenfold_core.errors import ConfigError, DataError, UserError

__all__ = ["DataConfig", "ArrayData", "load_data", "DATA_NAMES"]

DATA_NAMES = ("digits", "synthetic", "mnist", "cifar10", "npz")


@dataclass
class DataConfig:
    name: Literal["digits", "synthetic", "mnist", "cifar10", "npz"] = arg(
        "digits", help="digits (sklearn, offline), synthetic, mnist, cifar10 (torchvision download) or npz"
    )
    n_train: int | None = arg(
        None,
        help="training subset size (first n; null: digits 1000, synthetic 1000, mnist 4000, cifar10 all)",
    )
    n_test: int | None = arg(None, help="test set size (null: all; synthetic 4000)")
    path: str | None = arg(None, help="the .npz file for name=npz (arrays x_train, y_train, x_test, y_test)")
    root: str = arg("data", help="download/cache folder for mnist and cifar10")
    download: bool = arg(True, help="let torchvision download mnist/cifar10 when missing")
    data_seed: int = arg(0, help="seed of the digits split and of the synthetic mixture (not the noise seed)")
    synthetic_dim: int = arg(30, help="input dimension of the synthetic mixture")
    synthetic_classes: int = arg(10, help="classes of the synthetic mixture")

    def __post_init__(self):
        if self.n_train is not None and self.n_train < 2:
            raise ValueError(f"data.n_train must be >= 2, got {self.n_train}")
        if self.n_test is not None and self.n_test < 1:
            raise ValueError(f"data.n_test must be >= 1, got {self.n_test}")


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


def _npz(cfg: DataConfig) -> ArrayData:
    if not cfg.path:
        raise ConfigError("data.path: name=npz needs the path of an .npz file")
    p = Path(cfg.path)
    if not p.is_file():
        raise DataError(f"data.path {p}: no such file")
    try:
        z = np.load(p, allow_pickle=False)
    except Exception as e:  # zipfile.BadZipFile, ValueError ...
        raise DataError(f"data.path {p}: not a readable .npz file ({type(e).__name__})") from None
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z.files]
    if missing:
        raise DataError(f"data.path {p}: missing array(s) {', '.join(missing)} (found: {', '.join(z.files)})")
    xtr, ytr, xte, yte = (z[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    for name, x, y in (("train", xtr, ytr), ("test", xte, yte)):
        if y.ndim != 1 or len(x) != len(y):
            raise DataError(f"data.path {p}: x_{name} has {len(x)} rows but y_{name} has shape {y.shape}")
        if not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
            raise DataError(f"data.path {p}: y_{name} must hold non-negative integer class labels")
        if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
            raise DataError(f"data.path {p}: x_{name} must be finite numbers")
    if xtr.shape[1:] != xte.shape[1:]:
        raise DataError(
            f"data.path {p}: x_train rows have shape {xtr.shape[1:]}, x_test rows {xte.shape[1:]}"
        )
    c = int(max(ytr.max(), yte.max())) + 1
    if c < 2:
        raise DataError(f"data.path {p}: need at least 2 classes")
    return ArrayData(
        p.stem,
        _take(xtr.astype(np.float32), cfg.n_train, "n_train"),
        _take(ytr.astype(np.int64), cfg.n_train, "n_train"),
        _take(xte.astype(np.float32), cfg.n_test, "n_test"),
        _take(yte.astype(np.int64), cfg.n_test, "n_test"),
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
