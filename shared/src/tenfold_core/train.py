"""Training loops on Lightning, with the defaults every Tenfold package shares.

- :class:`TenfoldModule`: a LightningModule base whose optimizer and schedule come from an :class:`OptimConfig`
  (AdamW / Adam / SGD; constant / cosine / linear with warm-up; no weight decay on biases and norms).
- :func:`build_trainer`: ``accelerator="auto"``, precision ``auto`` (bf16-mixed on GPUs that support it, 32-true on CPU),
  seed and deterministic switch, gradient clipping and accumulation, checkpoints in ``out_dir/checkpoints`` written
  atomically, the best one chosen on a *validation* metric, early stopping, CSV + TensorBoard loggers, a progress bar,
  a guard that stops on a NaN/inf loss (the last good checkpoint is kept), strategy passthrough (ddp, fsdp, devices,
  num_nodes).
- :func:`fit`: ``resume="auto"`` continues from ``out_dir/checkpoints/last.ckpt`` when it exists (checkpoints are loaded
  with ``weights_only=True``); the final weights (best on validation when there is a monitor) are exported as
  ``out_dir/model.safetensors`` plus ``out_dir/config.json``.
- :func:`make_dataloader`: shuffling seeded by (seed, epoch), so a resumed run sees the same batches.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import random
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from tenfold_core.cli import config_to_dict
from tenfold_core.config import OptimConfig, TrainConfig
from tenfold_core.errors import ConfigError, TrainingDiverged
from tenfold_core.io import atomic_write_bytes, remove_stale_tmp, write_json
from tenfold_core.models import save_weights

__all__ = [
    "OptimConfig",
    "TrainConfig",
    "TenfoldModule",
    "ClassifierModule",
    "FitResult",
    "build_optimizer",
    "build_trainer",
    "fit",
    "make_dataloader",
    "EpochSeededSampler",
    "NaNGuard",
    "EpochReseed",
    "AtomicCheckpointIO",
    "resolve_precision",
    "seed_everything",
]


# ----------------------------------------------------------------------------------------------- optimization
def build_optimizer(
    model: nn.Module, cfg: OptimConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, Any]:
    """Optimizer (no weight decay on 0/1-d parameters) and a per-step LambdaLR for ``cfg.schedule``."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if cfg.name == "adamw":
        opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))
    elif cfg.name == "adam":
        opt = torch.optim.Adam(groups, lr=cfg.lr, betas=tuple(cfg.betas))
    else:
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    total = max(int(total_steps), 1)
    warm = cfg.warmup_steps if cfg.warmup_steps > 0 else int(cfg.warmup_ratio * total)

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if cfg.schedule == "constant":
            return 1.0
        if cfg.schedule == "inverse_sqrt":
            return 1.0 / math.sqrt(max(step - warm, 0) + 1)
        progress = min(max(step - warm, 0) / max(total - warm, 1), 1.0)
        if cfg.schedule == "cosine":
            return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * (1 - progress)

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


class TenfoldModule(L.LightningModule):
    """LightningModule base: subclasses write ``training_step``/``validation_step``; the optimizer comes from config.

    Keep ``self.hparams`` to plain data (numbers, strings, lists, dicts) so checkpoints load with ``weights_only=True``.
    """

    def __init__(self, optim: OptimConfig | Mapping[str, Any] | None = None):
        super().__init__()
        if optim is None:
            optim = OptimConfig()
        elif isinstance(optim, Mapping):
            optim = OptimConfig(**optim)
        self.optim_config = optim

    def log_train(self, name: str, value: Any, **kwargs: Any) -> None:
        """``self.log`` for per-step training values, called only on the steps the loggers write
        (``log_every_n_steps``) or when shown in the progress bar: Lightning's ``log`` costs ~1 ms per call on CPU."""
        trainer = self._trainer
        if (
            trainer is None
            or trainer.global_step % max(trainer.log_every_n_steps, 1) == 0
            or (kwargs.get("prog_bar") and trainer.progress_bar_callback is not None)
        ):
            self.log(name, value, **kwargs)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        # fast path: a flat tuple/list/dict of tensors already on the device needs no traversal
        items = (
            batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (tuple, list)) else None
        )
        if items is not None and all(isinstance(t, torch.Tensor) and t.device == device for t in items):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def configure_optimizers(self):
        total = self.trainer.estimated_stepping_batches if self._trainer is not None else 1
        total = int(total) if math.isfinite(total) else 10**9
        opt, sched = build_optimizer(self, self.optim_config, total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class ClassifierModule(TenfoldModule):
    """Cross-entropy training of any ``nn.Module`` mapping ``x`` to logits; batches are ``(x, y)`` tuples.

    Logs ``train_loss``, ``val_loss`` and ``val_acc``.
    """

    def __init__(self, model: nn.Module, optim: OptimConfig | Mapping[str, Any] | None = None):
        super().__init__(optim)
        self.model = model

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self.model(x), y)
        self.log_train("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.model(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y), prog_bar=True)
        self.log("val_acc", (logits.argmax(-1) == y).float().mean(), prog_bar=True)


# ------------------------------------------------------------------------------------------------------- data
class EpochSeededSampler(Sampler[int]):
    """A random permutation drawn from (seed, epoch): the same batches after a restart. Lightning calls ``set_epoch``."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True):
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def make_dataloader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    **kwargs: Any,
) -> DataLoader:
    """A DataLoader whose shuffling depends only on (seed, epoch), for exact resumption."""
    sampler = EpochSeededSampler(len(dataset), seed, shuffle)  # type: ignore[arg-type]
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
        **kwargs,
    )


# -------------------------------------------------------------------------------------------------- callbacks
class NaNGuard(Callback):
    """Stop with :class:`TrainingDiverged` as soon as the loss is NaN/inf, before it reaches the weights.

    Raised before the backward pass, so no checkpoint is written from the diverged state: the last good one stays.
    """

    def on_before_backward(self, trainer, pl_module, loss):
        if not torch.isfinite(loss.detach()).all():
            ckpt_dir = Path(trainer.default_root_dir) / "checkpoints"
            last = ckpt_dir / "last.ckpt"
            kept = (
                f"last good checkpoint kept: {last}"
                if last.exists()
                else "no checkpoint had been written yet"
            )
            raise TrainingDiverged(
                f"loss is {loss.detach().float().flatten()[0].item()} at step {trainer.global_step} "
                f"(epoch {trainer.current_epoch}); training stopped ({kept}). Lower the learning rate or clip gradients."
            )


class EpochReseed(Callback):
    """Reseed python, numpy and torch from (seed, epoch) at the first batch of every epoch.

    Dropout and other random draws then depend only on the seed and the epoch, so a run resumed from an epoch-end
    checkpoint ends with exactly the weights of an uninterrupted run (deterministic CPU), whatever RNG draws Lightning
    made while restoring (sanity validation, data-loader iterators).
    """

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            s = (self.seed * 1_000_003 + trainer.current_epoch) % 2**32
            random.seed(s)
            np.random.seed(s)
            torch.manual_seed(s)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints serialized in memory, written to a temporary file, fsynced and renamed: a kill never leaves a
    partial ``.ckpt``. Loading uses ``weights_only=True``."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        buf = io.BytesIO()
        torch.save(checkpoint, buf)
        atomic_write_bytes(path, buf.getvalue())

    def load_checkpoint(self, path, map_location=None, weights_only=True):
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)


# ---------------------------------------------------------------------------------------------------- trainer
def resolve_precision(precision: str, accelerator: str = "auto") -> str:
    if precision != "auto":
        return precision
    if (
        accelerator in ("auto", "gpu", "cuda")
        and torch.cuda.is_available()
        and torch.cuda.is_bf16_supported()
    ):
        return "bf16-mixed"
    return "32-true"


def _devices(devices: str | int | Sequence[int]) -> Any:
    if isinstance(devices, (int, list, tuple)):
        return devices
    s = str(devices).strip()
    if s == "auto":
        return "auto"
    if "," in s:
        return [int(x) for x in s.split(",") if x.strip()]
    if s.lstrip("-").isdigit():
        return int(s)
    raise ConfigError(f"train.devices: expected auto, a count or a comma-separated list, got {devices!r}")


def seed_everything(seed: int, deterministic: bool = False) -> None:
    L.seed_everything(seed, workers=True, verbose=False)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def build_trainer(
    cfg: TrainConfig | None = None, callbacks: Sequence[Callback] = (), **overrides: Any
) -> L.Trainer:
    """A Lightning Trainer with Tenfold's defaults (see the module docstring). ``overrides`` go to ``L.Trainer``."""
    cfg = cfg or TrainConfig()
    out = Path(cfg.out_dir)
    ckpt_dir = out / "checkpoints"
    remove_stale_tmp(ckpt_dir)
    cbs: list[Callback] = [NaNGuard(), EpochReseed(cfg.seed)]
    monitor = cfg.monitor or None
    cbs.append(
        ModelCheckpoint(
            dirpath=ckpt_dir,
            filename="best-{epoch}-{step}",
            monitor=monitor,
            mode=cfg.mode,
            save_top_k=1 if monitor else 0,
            save_last=True,
            every_n_train_steps=cfg.checkpoint_every_n_steps,
        )  # fmt: skip
    )
    if cfg.early_stopping_patience is not None:
        if not monitor:
            raise ConfigError("train.early_stopping_patience needs train.monitor (a validation metric)")
        cbs.append(EarlyStopping(monitor=monitor, mode=cfg.mode, patience=cfg.early_stopping_patience))
    cbs.extend(callbacks)
    loggers: list[Any] = []
    if "csv" in cfg.loggers:
        loggers.append(L.pytorch.loggers.CSVLogger(str(out), name="logs", version=""))
    if "tensorboard" in cfg.loggers:
        try:
            loggers.append(
                L.pytorch.loggers.TensorBoardLogger(
                    str(out), name="tensorboard", version="", default_hp_metric=False
                )
            )
        except ModuleNotFoundError:  # pragma: no cover - tensorboard is a core dependency
            warnings.warn("tensorboard is not installed: TensorBoard logging is off", stacklevel=2)
    kwargs: dict[str, Any] = dict(
        default_root_dir=str(out), accelerator=cfg.accelerator, devices=_devices(cfg.devices), strategy=cfg.strategy,
        num_nodes=cfg.num_nodes, precision=resolve_precision(cfg.precision, cfg.accelerator), max_epochs=cfg.max_epochs,
        max_steps=cfg.max_steps, gradient_clip_val=cfg.grad_clip, accumulate_grad_batches=cfg.accumulate,
        deterministic=cfg.deterministic or None, callbacks=cbs, logger=loggers or False,
        log_every_n_steps=cfg.log_every_n_steps, enable_progress_bar=cfg.progress_bar, enable_model_summary=False,
        check_val_every_n_epoch=cfg.val_every_n_epochs, plugins=[AtomicCheckpointIO()],
    )  # fmt: skip
    kwargs.update(overrides)
    return L.Trainer(**kwargs)


@dataclass
class FitResult:
    out_dir: Path
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    best_score: float | None
    weights: Path | None
    resumed_from: Path | None
    trainer: Any = field(repr=False, default=None)


def _resume_path(cfg: TrainConfig) -> Path | None:
    if cfg.resume == "never":
        return None
    if cfg.resume == "auto":
        last = Path(cfg.out_dir) / "checkpoints" / "last.ckpt"
        return last if last.is_file() else None
    p = Path(cfg.resume)
    if not p.is_file():
        raise ConfigError(f"train.resume: {p}: no such checkpoint (use auto, never or a .ckpt path)")
    return p


def fit(
    module: L.LightningModule,
    cfg: TrainConfig | None = None,
    train_dataloaders: Any = None,
    val_dataloaders: Any = None,
    datamodule: Any = None,
    callbacks: Sequence[Callback] = (),
    export_config: Mapping[str, Any] | None = None,
    **trainer_overrides: Any,
) -> FitResult:
    """Seed, build the trainer, resume if asked, fit, then export the selected weights as safetensors + JSON."""
    cfg = cfg or TrainConfig()
    seed_everything(cfg.seed, cfg.deterministic)
    trainer = build_trainer(cfg, callbacks, **trainer_overrides)
    resume = _resume_path(cfg)
    trainer.fit(
        module, train_dataloaders, val_dataloaders, datamodule=datamodule, ckpt_path=resume, weights_only=True
    )
    ckpt_cb = trainer.checkpoint_callback
    best = Path(ckpt_cb.best_model_path) if ckpt_cb and ckpt_cb.best_model_path else None
    last = Path(ckpt_cb.last_model_path) if ckpt_cb and ckpt_cb.last_model_path else None
    score = ckpt_cb.best_model_score if ckpt_cb is not None else None
    score_f = float(score) if score is not None else None
    weights = None
    if cfg.export and trainer.is_global_zero:
        state = module.state_dict()
        if best is not None and best.is_file():
            state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        conf = {
            "hparams": _plain(dict(module.hparams)) if hasattr(module, "hparams") else {},
            "train": config_to_dict(cfg),
            "best_checkpoint": str(best) if best else None,
            "best_score": score_f,
            "monitor": cfg.monitor,
            **(dict(export_config) if export_config else {}),
        }
        weights = save_weights(state, Path(cfg.out_dir) / "model.safetensors")
        write_json(Path(cfg.out_dir) / "config.json", conf)
    return FitResult(Path(cfg.out_dir), best, last, score_f, weights, resume, trainer)


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return config_to_dict(obj)
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (int, float, str, bool)) or obj is None:
        return obj
    return repr(obj)
