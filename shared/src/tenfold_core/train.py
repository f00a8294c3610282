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

import bisect
import contextlib
import dataclasses
import io
import json
import math
import os
import random
import socket
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from weakref import proxy

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from tenfold_core.cli import config_to_dict
from tenfold_core.config import OptimConfig, TrainConfig, parse_devices
from tenfold_core.errors import ConfigError, TrainingDiverged
from tenfold_core.io import atomic_write_bytes, is_rank_zero, remove_stale_tmp, write_json
from tenfold_core.models import save_weights

__all__ = [
    "OptimConfig",
    "TrainEvalMode",
    "TerminateCheckpoint",
    "RunLock",
    "check_devices",
    "class_path",
    "logits_of",
    "prepare_out_dir",
    "set_train_mode",
    "split_batch",
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

_NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def _drop_failing_nvml_check() -> None:
    """Undo Lightning's ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` where NVML is absent (no NVIDIA driver).

    Lightning sets it on import so that ``torch.cuda.is_available()`` asks NVML instead of initialising CUDA. Without
    NVML, torch then dlopens libnvidia-ml, fails, and asks the CUDA runtime anyway, on every call; every ``torch.optim``
    step makes that call: ~30 us per optimizer step on a CPU machine, for the answer the runtime gives directly. Where
    NVML answers (a GPU machine) the variable stays.
    """
    if os.environ.get(_NVML_CHECK) != "1" or not torch.backends.cuda.is_built():
        return
    try:
        failed = torch.cuda._device_count_nvml() < 0  # the very fallback condition torch uses
    except Exception:  # a private torch helper: if it moves, leave Lightning's setting as it is
        return
    if failed:
        del os.environ[_NVML_CHECK]


_drop_failing_nvml_check()


# ----------------------------------------------------------------------------------------------- optimization
def build_optimizer(
    model: nn.Module, cfg: OptimConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, Any]:
    """Optimizer (no weight decay on 0/1-d parameters unless ``cfg.decay_all``) and a LambdaLR for ``cfg.schedule``.

    ``total_steps`` counts the scheduler's intervals (optimizer steps, or epochs with ``cfg.interval == "epoch"``);
    warm-up and milestones count the same unit."""
    params = [p for p in model.parameters() if p.requires_grad]
    if (
        cfg.decay_all or cfg.weight_decay == 0
    ):  # one group: the optimizer's per-group work is done once per step
        groups = [{"params": params, "weight_decay": cfg.weight_decay}]
    else:
        groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
    groups = [g for g in groups if g["params"]]
    if cfg.name == "adamw":
        opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))
    elif cfg.name == "adam":
        opt = torch.optim.Adam(groups, lr=cfg.lr, betas=tuple(cfg.betas))
    else:
        opt = torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0
        )
    total = max(int(total_steps), 1)
    warm = cfg.warmup_steps if cfg.warmup_steps > 0 else int(cfg.warmup_ratio * total)

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if cfg.schedule == "constant":
            return 1.0
        if cfg.schedule == "step":
            return cfg.gamma ** bisect.bisect_right(cfg.milestones, step)
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

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets this plain string around every hook call (~44 times a training step): skip nn.Module's
        # parameter/buffer/submodule bookkeeping for it (1.2 us -> 0.1 us a call)
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    #: progress-bar values of per-step training metrics are refreshed every this many steps
    prog_bar_every: int = 10

    def log_train(self, name: str, value: Any, **kwargs: Any) -> None:
        """``self.log`` for per-step training values, called only on the steps the loggers write
        (``log_every_n_steps``) and every ``prog_bar_every`` steps when shown in the progress bar: Lightning's ``log``
        costs ~1-4 ms per call on CPU, more than a tiny model's whole step."""
        trainer = self._trainer
        if trainer is None:
            self.log(name, value, **kwargs)
            return
        step = trainer.global_step
        if step % max(trainer.log_every_n_steps, 1) == 0 or (
            kwargs.get("prog_bar")
            and trainer.progress_bar_callback is not None
            and step % max(self.prog_bar_every, 1) == 0
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
        cfg = self.optim_config
        if self._trainer is None:
            total = 1
        elif cfg.interval == "epoch":
            epochs = self.trainer.max_epochs
            total = epochs if epochs and epochs > 0 else 10**9
        else:
            total = self.trainer.estimated_stepping_batches
            total = int(total) if math.isfinite(total) else 10**9
        opt, sched = build_optimizer(self, cfg, total)
        if cfg.schedule == "constant" and cfg.warmup_steps == 0 and int(cfg.warmup_ratio * total) == 0:
            return {"optimizer": opt}  # a constant lr needs no scheduler stepping every batch (~0.04 ms/step)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": cfg.interval}}


def split_batch(batch: Any) -> tuple[Any, torch.Tensor]:
    """``(x, y)`` tuples or dicts with ``labels`` (the rest are the model's keyword inputs) -> (inputs, labels)."""
    if isinstance(batch, Mapping):
        if "labels" not in batch:
            raise KeyError("a dict batch needs a 'labels' entry")
        return {k: v for k, v in batch.items() if k != "labels"}, batch["labels"]
    x, y = batch
    return x, y


def logits_of(output: Any) -> torch.Tensor:
    """The logits of a model output: a tensor, a Hugging Face output (``.logits``) or a tuple whose first item."""
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "logits"):
        return output.logits
    if isinstance(output, (tuple, list)):
        return output[0]
    raise TypeError(f"cannot find logits in a {type(output).__name__}")


class ClassifierModule(TenfoldModule):
    """Cross-entropy training of any ``nn.Module`` mapping inputs to logits.

    Batches are ``(x, y)`` tuples (``model(x)``) or dicts with ``labels`` (``model(**inputs)``, e.g. the batches of
    :func:`tenfold_core.data.make_text_dataloader`); a Hugging Face output's ``.logits`` is used. Logs ``train_loss``
    and, synced across processes, ``val_loss`` and ``val_acc``. The exported network is ``self.model``.
    """

    def __init__(self, model: nn.Module, optim: OptimConfig | Mapping[str, Any] | None = None):
        super().__init__(optim)
        self.model = model

    def forward(self, inputs):
        out = self.model(**inputs) if isinstance(inputs, Mapping) else self.model(inputs)
        return logits_of(out)

    def training_step(self, batch, batch_idx):
        x, y = split_batch(batch)
        loss = nn.functional.cross_entropy(self(x), y)
        self.log_train("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = split_batch(batch)
        logits = self(x)
        n = y.shape[0]
        self.log(
            "val_loss", nn.functional.cross_entropy(logits, y), prog_bar=True, sync_dist=True, batch_size=n
        )
        acc = (logits.argmax(-1) == y).float().mean()
        self.log("val_acc", acc, prog_bar=True, sync_dist=True, batch_size=n)


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
        value = loss.detach()
        # one scalar read for the usual 0-d loss (two tensor ops and a bool() cost ~0.09 ms/step on CPU)
        finite = math.isfinite(float(value)) if value.numel() == 1 else bool(torch.isfinite(value).all())
        if not finite:
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


class _FitHooks(Callback):
    """What :func:`fit` adds to every run, as one callback: the hooks of :class:`NaNGuard`, :class:`EpochReseed`,
    :class:`TrainEvalMode` and :class:`TerminateCheckpoint`. Lightning dispatches every hook to every callback (a
    profiler context and a name string per callback, ~5 us each, ~7 hooks a step), so four callbacks cost four
    dispatches per hook; this one costs one."""

    def __init__(self, seed: int, ckpt_dir: Path, terminate: bool = True):
        self._nan, self._reseed, self._mode = NaNGuard(), EpochReseed(seed), TrainEvalMode()
        self.term = TerminateCheckpoint(ckpt_dir) if terminate else None

    def on_train_start(self, trainer, pl_module):
        self._mode.on_train_start(trainer, pl_module)

    def on_train_epoch_start(self, trainer, pl_module):
        self._mode.on_train_epoch_start(trainer, pl_module)

    def on_validation_start(self, trainer, pl_module):
        self._mode.on_validation_start(trainer, pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._reseed.on_train_batch_start(trainer, pl_module, batch, batch_idx)

    def on_before_backward(self, trainer, pl_module, loss):
        self._nan.on_before_backward(trainer, pl_module, loss)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.term is not None:
            self.term.on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_exception(self, trainer, pl_module, exception):
        if self.term is not None:
            self.term.on_exception(trainer, pl_module, exception)


def set_train_mode(module: nn.Module) -> nn.Module:
    """``module.train()``, except sub-networks that have parameters and none of them trainable (a frozen teacher, a
    frozen encoder): those stay in eval mode, so their dropout and batch-norm statistics stay fixed."""

    def visit(m: nn.Module) -> None:
        for child in m.children():
            params = list(child.parameters())
            if params and not any(p.requires_grad for p in params):
                child.eval()
            else:
                visit(child)

    module.train()
    visit(module)
    return module


class TrainEvalMode(Callback):
    """Train mode when training starts and at every training epoch (Lightning >= 2.2 keeps the mode a module arrives
    in, and ``from_pretrained`` returns eval mode: a fine-tune would run with dropout off); validation runs in eval
    mode (Lightning switches and restores)."""

    def on_train_start(self, trainer, pl_module):
        set_train_mode(pl_module)

    def on_train_epoch_start(self, trainer, pl_module):
        set_train_mode(pl_module)

    def on_validation_start(self, trainer, pl_module):
        pl_module.eval()


class TerminateCheckpoint(Callback):
    """On SIGTERM: stop after the current batch, write ``checkpoints/last.ckpt`` and let :func:`fit` exit with 143.

    (Lightning alone finishes the epoch, then exits 0 with nothing exported.)"""

    def __init__(self, ckpt_dir: Path):
        self.ckpt_dir = Path(ckpt_dir)
        self.saved: Path | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.received_sigterm and trainer.world_size == 1:
            raise SIGTERMException()  # multi-process runs: Lightning broadcasts and raises on every rank

    def on_exception(self, trainer, pl_module, exception):
        if isinstance(exception, SIGTERMException) and trainer.state.fn == "fit" and trainer.global_step > 0:
            path = self.ckpt_dir / "last.ckpt"
            with contextlib.suppress(Exception):
                trainer.save_checkpoint(str(path))
                self.saved = path


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
    try:
        return parse_devices(devices)  # type: ignore[arg-type]
    except ValueError as e:
        raise ConfigError(str(e)) from None


def check_devices(cfg: TrainConfig) -> None:
    """Refuse device requests the machine cannot meet (Lightning would wait forever for the missing ranks)."""
    devices = _devices(cfg.devices)
    acc = str(cfg.accelerator).lower()
    want = len(devices) if isinstance(devices, list) else devices
    if acc in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.accelerator {cfg.accelerator}: no CUDA GPU is available (use cpu or auto)")
    on_gpu = acc in ("gpu", "cuda") or (acc == "auto" and torch.cuda.is_available())
    if acc == "mps" or acc not in ("auto", "cpu", "gpu", "cuda"):
        return  # let Lightning judge other accelerators
    if on_gpu:
        have, what = torch.cuda.device_count(), "CUDA GPU(s)"
    else:
        have = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        have, what = max(have, 2), "CPU core(s)"
    if isinstance(devices, list):
        bad = [d for d in devices if d >= (have if on_gpu else 10**9)]
        if bad:
            raise ConfigError(f"train.devices {cfg.devices}: device {bad[0]} does not exist ({have} {what})")
    elif isinstance(want, int) and want > have:
        raise ConfigError(f"train.devices {cfg.devices}: this machine has {have} {what} (use at most {have})")


def seed_everything(seed: int, deterministic: bool = False) -> None:
    L.seed_everything(seed, workers=True, verbose=False)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


class _Checkpoint(ModelCheckpoint):
    """Optimiser and loop state only in ``last.ckpt`` (what resuming needs); the best-on-validation checkpoints keep
    the weights alone, so a run folder holds one full checkpoint, not two. ``state_key`` is computed once (Lightning
    builds it, a dict repr, on every hook call of every step)."""

    @property
    def state_key(self) -> str:
        key = self.__dict__.get("_state_key_cache")
        if key is None:
            key = self.__dict__["_state_key_cache"] = super().state_key
        return key

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # the common case decided in two comparisons (Lightning first checks the trainer state on every batch)
        n = self._every_n_train_steps
        if self._train_time_interval is None and (n < 1 or trainer.global_step % n != 0):
            return
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        weights_only = self.save_weights_only or not Path(filepath).name.startswith(self.CHECKPOINT_NAME_LAST)
        trainer.save_checkpoint(filepath, weights_only)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:  # as ModelCheckpoint does: tell the loggers
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))


def build_trainer(
    cfg: TrainConfig | None = None, callbacks: Sequence[Callback] = (), **overrides: Any
) -> L.Trainer:
    """A Lightning Trainer with Tenfold's defaults (see the module docstring). ``overrides`` go to ``L.Trainer``."""
    cfg = cfg or TrainConfig()
    check_devices(cfg)
    out = Path(cfg.out_dir)
    ckpt_dir = out / "checkpoints"
    if is_rank_zero():  # the writer's rank: another rank's file in flight is not stale
        remove_stale_tmp(ckpt_dir)
    hooks = [cb for cb in callbacks if isinstance(cb, _FitHooks)]
    callbacks = [cb for cb in callbacks if not isinstance(cb, _FitHooks)]
    cbs: list[Callback] = hooks[:1] or [_FitHooks(cfg.seed, ckpt_dir, terminate=False)]
    monitor = cfg.monitor or None
    cbs.append(
        _Checkpoint(
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


def _check_checkpoint(p: Path, flag: str) -> None:
    """A checkpoint that cannot be read safely gives one line naming the file (never torch's advice to unpickle)."""
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:
            why = (
                "truncated or corrupt"
                if isinstance(e, (RuntimeError, EOFError, OSError))
                else "not safely loadable"
            )
            raise ConfigError(
                f"{flag}: {p}: not a readable checkpoint ({why}); pass --train.resume never to start over"
            ) from None
    if not isinstance(obj, dict) or "state_dict" not in obj:
        raise ConfigError(
            f"{flag}: {p}: not a Lightning training checkpoint (no state_dict); pass --train.resume never to start over"
        )


def _resume_path(cfg: TrainConfig) -> Path | None:
    if cfg.resume == "never":
        return None
    if cfg.resume == "auto":
        last = Path(cfg.out_dir) / "checkpoints" / "last.ckpt"
        if not last.is_file():
            return None
        _check_checkpoint(last, "train.resume auto")
        return last
    p = Path(cfg.resume)
    if p.is_dir():
        raise ConfigError(f"train.resume: {p}: is a folder, expected a .ckpt file (or auto, never)")
    if not p.is_file():
        raise ConfigError(f"train.resume: {p}: no such checkpoint (use auto, never or a .ckpt path)")
    _check_checkpoint(p, "train.resume")
    return p


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """``out_dir`` as a Path, or one line when a file is in its way (``out_dir`` or a parent is not a folder)."""
    out = Path(out_dir)
    for parent in (out, *out.parents):
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"train.out_dir {out}: {parent} is a file, not a folder")
    return out


def prepare_out_dir(out_dir: str | os.PathLike) -> Path:
    """Create the run folder, or raise one line when it cannot be (a file in the way, no permission)."""
    out = check_out_dir(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"train.out_dir {out}: cannot create it ({e.strerror})") from None
    if not os.access(out, os.W_OK):
        raise ConfigError(f"train.out_dir {out}: not writable")
    return out


LOCK_NAME = "train.lock"


class RunLock:
    """``out_dir/train.lock`` held for the length of a training: a second concurrent training into the same folder is
    refused with one line. A lock left by a killed process (its pid is gone) is taken over."""

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / LOCK_NAME
        self.held = False

    def __enter__(self) -> RunLock:
        me = f"{os.getpid()} {socket.gethostname()}\n"
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._stale():
                    with contextlib.suppress(FileNotFoundError):
                        self.path.unlink()
                    continue
                owner = self.path.read_text(errors="replace").split()[:1] or ["?"]
                raise ConfigError(
                    f"train.out_dir {self.path.parent}: another training is running there (pid {owner[0]}, lock "
                    f"{self.path}); use another --train.out_dir, or delete the lock if that process is gone"
                ) from None
            with os.fdopen(fd, "w") as f:
                f.write(me)
            self.held = True
            return self
        raise ConfigError(f"train.out_dir {self.path.parent}: cannot take the lock {self.path}")

    def _stale(self) -> bool:
        try:
            parts = self.path.read_text(errors="replace").split()
            pid, host = int(parts[0]), parts[1]
        except (OSError, ValueError, IndexError):
            return True  # unreadable or half-written: left by a crash
        if host != socket.gethostname():
            return False
        if pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def __exit__(self, *exc: Any) -> None:
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.held = False


def class_path(obj: Any) -> str:
    """``"package.module:Class"`` of an object or a class (what config.json's ``model_class`` holds)."""
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def _export(module: L.LightningModule, cfg: TrainConfig, best: Path | None, score: float | None,
            run_config: Mapping[str, Any] | None) -> Path:  # fmt: skip
    out = Path(cfg.out_dir)
    net = getattr(module, "model", None)
    net = net if isinstance(net, nn.Module) else None
    if best is not None and best.is_file():
        full = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    else:
        full = module.state_dict()
    if net is not None:
        state = {k[len("model.") :]: v for k, v in full.items() if k.startswith("model.")}
        if not state:  # a state dict saved from the network itself
            state = dict(full)
    else:
        state = dict(full)
    rc = dict(run_config or {})
    conf: dict[str, Any] = {"model_class": class_path(net) if net is not None else None}
    net_cfg = getattr(net, "config", None)
    is_hf = (
        net_cfg is not None
        and type(net_cfg).__module__.startswith("transformers.")
        and hasattr(net_cfg, "to_dict")
    )
    model_cfg = rc.pop("model", None)
    if model_cfg is None and not is_hf and dataclasses.is_dataclass(net_cfg):
        model_cfg = net_cfg
    conf["model"] = _plain(model_cfg) if model_cfg is not None else None
    if is_hf:  # a transformers model: load_run rebuilds it from this
        conf["hf_config"] = json.loads(net_cfg.to_json_string(use_diff=False))
    for k, v in rc.items():
        conf[k] = _plain(v)
    conf["train"] = config_to_dict(cfg)
    if hasattr(module, "optim_config") and "optim" not in conf:
        conf["optim"] = _plain(module.optim_config)
    conf.update(
        {
            "hparams": _plain(dict(module.hparams)) if hasattr(module, "hparams") else {},
            "best_checkpoint": str(best) if best else None,
            "best_score": score,
            "monitor": cfg.monitor,
            "exported": "network" if net is not None else "module",
        }
    )
    weights = save_weights(state, out / "model.safetensors")
    write_json(out / "config.json", conf)
    return weights


def fit(
    module: L.LightningModule,
    cfg: TrainConfig | None = None,
    train_dataloaders: Any = None,
    val_dataloaders: Any = None,
    datamodule: Any = None,
    callbacks: Sequence[Callback] = (),
    run_config: Mapping[str, Any] | None = None,
    export_config: Mapping[str, Any] | None = None,
    **trainer_overrides: Any,
) -> FitResult:
    """Seed, build the trainer, resume if asked, fit, then export the selected weights as safetensors + JSON.

    - The module trains in train mode and validates in eval mode, whatever mode it arrives in.
    - ``run_config`` (``{"model": model_cfg, "data": data_cfg, ...}``, dataclasses or plain data) is written to
      ``out_dir/config.json`` with ``"model_class"`` (``module.model``'s ``"pkg.mod:Class"``) and ``"train"``, so
      :func:`tenfold_core.models.load_run` can rebuild the network; ``model.safetensors`` holds ``module.model``'s
      weights (best on validation when ``cfg.monitor`` is set), or the whole module's when it has no ``.model``.
    - ``out_dir/train.lock`` refuses a second concurrent training into the same folder; a device count the machine
      lacks, a bad checkpoint to resume or an out dir that is a file are one-line :class:`ConfigError` s.
    - SIGTERM: ``checkpoints/last.ckpt`` is written after the current batch, then ``SystemExit(143)``.
    """
    cfg = cfg or TrainConfig()
    child = not is_rank_zero()  # a DDP worker re-running the script: it must not lock or export
    out = prepare_out_dir(cfg.out_dir)
    if export_config:
        run_config = {**dict(export_config), **dict(run_config or {})}
    with contextlib.nullcontext() if child else RunLock(out):
        resume = _resume_path(cfg)
        seed_everything(cfg.seed, cfg.deterministic)
        hooks = _FitHooks(cfg.seed, out / "checkpoints")
        term = hooks.term
        trainer = build_trainer(cfg, [hooks, *callbacks], **trainer_overrides)
        set_train_mode(module)
        try:
            trainer.fit(
                module, train_dataloaders, val_dataloaders, datamodule=datamodule, ckpt_path=resume,
                weights_only=True,
            )  # fmt: skip
        except SIGTERMException:
            if trainer.is_global_zero:
                kept = f"last checkpoint: {term.saved}" if term.saved else "no checkpoint written"
                sys.stderr.write(f"terminated by SIGTERM ({kept}); rerun the same command to resume\n")
            raise SystemExit(143) from None
        ckpt_cb = trainer.checkpoint_callback
        best = Path(ckpt_cb.best_model_path) if ckpt_cb and ckpt_cb.best_model_path else None
        last = Path(ckpt_cb.last_model_path) if ckpt_cb and ckpt_cb.last_model_path else None
        score = ckpt_cb.best_model_score if ckpt_cb is not None else None
        score_f = float(score) if score is not None else None
        weights = None
        if cfg.export and trainer.is_global_zero:
            weights = _export(module, cfg, best, score_f, run_config)
    return FitResult(out, best, last, score_f, weights, resume, trainer)


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
