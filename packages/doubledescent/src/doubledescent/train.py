"""Training of one (model, width, noise, seed) unit.

Paper defaults: SGD (no momentum, no weight decay), lr0 = 0.05, batch 128, cross-entropy, fixed epochs, and the step
schedule ``lr = lr0 / sqrt(1 + epoch // 50)`` (``schedule="inv_sqrt"``, MNIST). ``schedule="inv_sqrt_cifar"`` is the
official CIFAR code's ``lr = lr0 / sqrt(1 + 10 * 50 * (epoch // 50))``. For CPU sweeps, ``optimizer="adam"`` with
``batch_size=0`` (full batch) trains the same models in seconds.

The default ``engine="loop"`` keeps the whole data set on the device and runs a plain PyTorch loop: the units are tiny
and a Lightning step would cost more than the model. ``engine="lightning"`` trains through ``tenfold_core.train.fit``
(per-unit checkpoints and resume, bf16, multi-GPU), for the long CIFAR runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from tenfold_core.cli import arg
from tenfold_core.errors import ConfigError, TrainingDiverged

from .evaluate import evaluate_model, extract_features, knn_noisy_recovery
from .model import SimpleFC

__all__ = [
    "TrainSettings",
    "lr_at_epoch",
    "train_unit",
    "train_packed_fc",
    "PackedSimpleFC",
    "resolve_device",
    "unit_seed",
]


@dataclass
class TrainSettings:
    optimizer: Literal["sgd", "adam"] = arg("sgd", help="sgd (paper) or adam (fast CPU sweeps)")
    lr: float = arg(0.05, help="initial learning rate (paper: 0.05)")
    momentum: float = arg(0.0, help="SGD momentum (paper: none)")
    weight_decay: float = arg(0.0, help="L2 weight decay (paper: none)")
    batch_size: int = arg(128, help="minibatch size (paper: 128); 0 = full batch")
    epochs: int = arg(4000, help="training epochs (paper: 4000 on MNIST, 200 on CIFAR-10)")
    schedule: Literal["inv_sqrt", "inv_sqrt_cifar", "constant"] = arg(
        "inv_sqrt",
        help="lr schedule: inv_sqrt = lr0/sqrt(1+epoch//E) (paper MNIST), inv_sqrt_cifar, constant",
    )
    decay_every: int = arg(50, help="E: the schedule changes the lr every E epochs (paper: 50)")
    eval_every: int = arg(
        0, help="also record train/test metrics every N epochs into history (0: only at the end)"
    )
    device: str = arg("auto", help="auto (cuda if available), cpu, cuda, cuda:1, mps")
    engine: Literal["loop", "lightning"] = arg(
        "loop",
        help="loop (plain PyTorch, data on device) or lightning (tenfold_core.train: checkpoints, bf16, DDP)",
    )
    precision: str = arg("32-true", help="lightning engine only: 32-true (paper), bf16-mixed, auto")

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr}")
        if self.epochs < 1:
            raise ValueError(f"train.epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 0:
            raise ValueError(f"train.batch_size must be >= 0 (0 = full batch), got {self.batch_size}")
        if self.decay_every < 1:
            raise ValueError(f"train.decay_every must be >= 1, got {self.decay_every}")


def lr_at_epoch(s: TrainSettings, epoch: int) -> float:
    """Learning rate used during ``epoch`` (0-based)."""
    block = epoch // s.decay_every
    if s.schedule == "constant":
        return s.lr
    if s.schedule == "inv_sqrt":
        return s.lr / math.sqrt(1 + block)
    if s.schedule == "inv_sqrt_cifar":
        return s.lr / math.sqrt(1 + 10 * block * s.decay_every)
    raise ConfigError(f"train.schedule: unknown schedule {s.schedule!r}")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device: not a device name: {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name}: CUDA is not available on this machine (use auto or cpu)")
    return dev


def unit_seed(seed: int, width: int) -> int:
    """Seed of a unit's initialisation and batch order: independent of which other units ran before."""
    return (int(seed) * 1_000_003 + int(width) * 7919) % (2**31 - 1)


def _optimizer(model, s: TrainSettings) -> torch.optim.Optimizer:
    if s.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
    if s.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    raise ConfigError(f"train.optimizer: expected sgd or adam, got {s.optimizer!r}")


def _snapshot(model, xtr, ytr_obs, xte, yte, noisy_mask) -> dict[str, float]:
    tr = evaluate_model(model, xtr, ytr_obs)
    te = evaluate_model(model, xte, yte)
    noisy = torch.as_tensor(noisy_mask, device=xtr.device)
    mem = float((tr["pred"][noisy] == ytr_obs[noisy]).double().mean()) if noisy.any() else math.nan
    return {
        "train_loss": tr["loss"],
        "train_acc": tr["acc"],
        "test_loss": te["loss"],
        "test_acc": te["acc"],
        "noisy_memorized": mem,
    }


def _loop(model, s: TrainSettings, xtr, ytr, gen: torch.Generator, on_epoch=None) -> None:
    opt = _optimizer(model, s)
    n = len(ytr)
    bs = n if s.batch_size == 0 else min(s.batch_size, n)
    for epoch in range(s.epochs):
        lr = lr_at_epoch(s, epoch)
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        order = torch.randperm(n, generator=gen).to(xtr.device) if bs < n else None
        for i in range(0, n, bs):
            idx = order[i : i + bs] if order is not None else slice(None)
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss is {loss.item()} at epoch {epoch} (width {getattr(model, 'width', '?')}); "
                    "lower train.lr"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if on_epoch is not None:
            on_epoch(epoch + 1)


def _measure(model, xtr, ytr, xte, yte, y_observed, y_true, knn_k, knn_metric, history) -> dict[str, Any]:
    noisy_mask = np.asarray(y_observed) != np.asarray(y_true)
    final = {"epoch": -1, **_snapshot(model, xtr, ytr, xte, yte, noisy_mask)}
    history.append(final)
    feats = extract_features(model, xtr)
    knn_p = (
        knn_noisy_recovery(feats, y_observed, y_true, k=knn_k, metric=knn_metric)
        if noisy_mask.any()
        else math.nan
    )
    return {**{k: v for k, v in final.items() if k != "epoch"}, "knn_p": knn_p, "history": history}


def _tensors(dev, x_train, y_observed, x_test, y_test):
    return (
        torch.as_tensor(x_train, dtype=torch.float32, device=dev),
        torch.as_tensor(y_observed, dtype=torch.long, device=dev),
        torch.as_tensor(x_test, dtype=torch.float32, device=dev),
        torch.as_tensor(y_test, dtype=torch.long, device=dev),
    )


def train_unit(
    model,
    x_train: np.ndarray,
    y_observed: np.ndarray,
    y_true: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    settings: TrainSettings,
    seed: int = 0,
    knn_k: int = 5,
    knn_metric: str = "cosine",
    work_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train ``model`` (already initialised) on ``(x_train, y_observed)`` and measure it.

    Returns train/test loss and accuracy (train against the observed, noisy labels), ``noisy_memorized`` (fraction of
    noisy samples predicted as their *noisy* label), ``knn_p`` (the paper's k-NN recovery on penultimate features) and
    ``history`` (a list of per-``eval_every`` snapshots, the final one last). The caller seeds the initialisation;
    ``seed`` drives the batch order.
    """
    dev = resolve_device(settings.device)
    model = model.to(dev)
    xtr, ytr, xte, yte = _tensors(dev, x_train, y_observed, x_test, y_test)
    noisy_mask = np.asarray(y_observed) != np.asarray(y_true)
    history: list[dict[str, float]] = []

    def on_epoch(epoch: int) -> None:
        if settings.eval_every and epoch % settings.eval_every == 0 and epoch < settings.epochs:
            history.append({"epoch": epoch, **_snapshot(model, xtr, ytr, xte, yte, noisy_mask)})

    if settings.engine == "loop":
        gen = torch.Generator().manual_seed(int(seed))
        _loop(model, settings, xtr, ytr, gen, on_epoch)
    elif settings.engine == "lightning":
        from .lightning_engine import fit_lightning

        model = fit_lightning(model, settings, x_train, y_observed, seed, work_dir, on_epoch).to(dev)
    else:
        raise ConfigError(f"train.engine: expected loop or lightning, got {settings.engine!r}")
    res = _measure(model, xtr, ytr, xte, yte, y_observed, y_true, knn_k, knn_metric, history)
    res["history"][-1]["epoch"] = settings.epochs
    return res


class PackedSimpleFC(torch.nn.Module):
    """Several :class:`SimpleFC` models trained as one: their hidden layers are concatenated into one matmul and
    the loss is the *sum* of their losses, so every model gets exactly its own gradient (and, with full-batch
    training, its own trajectory). ``unpack()`` copies the weights back into the original models."""

    def __init__(self, models: list[SimpleFC]):
        super().__init__()
        self.models = models
        self.w1 = torch.nn.Parameter(torch.cat([m.hidden.weight.detach() for m in models]).clone())
        self.b1 = torch.nn.Parameter(torch.cat([m.hidden.bias.detach() for m in models]).clone())
        self.w2 = torch.nn.ParameterList(
            [torch.nn.Parameter(m.classifier.weight.detach().clone()) for m in models]
        )
        self.b2 = torch.nn.ParameterList(
            [torch.nn.Parameter(m.classifier.bias.detach().clone()) for m in models]
        )
        ends = np.cumsum([m.width for m in models])
        self.bounds = list(zip([0, *ends[:-1].tolist()], ends.tolist()))

    def forward(self, x):  # (n, M, C)
        h = F.relu(F.linear(x.flatten(1), self.w1, self.b1))
        return torch.stack(
            [F.linear(h[:, a:b], w, b_) for (a, b), w, b_ in zip(self.bounds, self.w2, self.b2)], dim=1
        )

    @torch.no_grad()
    def unpack(self) -> list[SimpleFC]:
        for (a, b), m, w, b_ in zip(self.bounds, self.models, self.w2, self.b2):
            m.hidden.weight.copy_(self.w1[a:b])
            m.hidden.bias.copy_(self.b1[a:b])
            m.classifier.weight.copy_(w)
            m.classifier.bias.copy_(b_)
        return self.models


def train_packed_fc(
    models: list[SimpleFC],
    x_train: np.ndarray,
    y_observed: np.ndarray,
    y_true: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    settings: TrainSettings,
    knn_k: int = 5,
    knn_metric: str = "cosine",
) -> list[dict[str, Any]]:
    """Full-batch training of several SimpleFC models at once (same result as training each alone, up to float
    rounding); returns one :func:`train_unit`-style result per model. Only the final metrics are recorded."""
    if settings.batch_size != 0 or settings.engine != "loop":
        raise ConfigError("packed training needs train.batch_size=0 (full batch) and train.engine=loop")
    dev = resolve_device(settings.device)
    xtr, ytr, xte, yte = _tensors(dev, x_train, y_observed, x_test, y_test)
    packed = PackedSimpleFC(models).to(dev)
    opt = _optimizer(packed, settings)
    n, m = len(ytr), len(models)
    target = ytr.repeat_interleave(m)
    for epoch in range(settings.epochs):
        for g in opt.param_groups:
            g["lr"] = lr_at_epoch(settings, epoch)
        logits = packed(xtr)
        loss = F.cross_entropy(logits.reshape(n * m, -1), target, reduction="sum") / n
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"loss is {loss.item()} at epoch {epoch} (packed SimpleFC); lower train.lr"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    out = []
    for model in packed.unpack():
        model.to(dev)
        res = _measure(model, xtr, ytr, xte, yte, y_observed, y_true, knn_k, knn_metric, [])
        res["history"][-1]["epoch"] = settings.epochs
        out.append(res)
    return out
