"""``train.engine=lightning``: one unit trained through ``tenfold_core.train.fit`` (Lightning).

Same loss, optimizer and per-epoch schedule as the plain loop, plus what the core trainer gives: a ``last.ckpt`` per
epoch under ``RUN_DIR/units/<unit>/checkpoints`` (a killed unit resumes from its last epoch), bf16 / multi-GPU through
``train.precision`` and the core's NaN guard. Use it for the long CIFAR-10 units on GPUs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from tenfold_core.train import OptimConfig, TenfoldModule, TrainConfig, fit, make_dataloader

from .train import TrainSettings, lr_at_epoch

__all__ = ["fit_lightning", "PaperModule"]


class PaperModule(TenfoldModule):
    """Cross-entropy on (x, y) batches; SGD/Adam with the paper's per-epoch learning-rate schedule."""

    def __init__(self, model: torch.nn.Module, settings: TrainSettings, on_epoch=None):
        super().__init__(OptimConfig(name=settings.optimizer, lr=settings.lr, momentum=settings.momentum))
        self.model = model
        self.settings = settings
        self._on_epoch = on_epoch

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        s = self.settings
        if s.optimizer == "sgd":
            opt = torch.optim.SGD(
                self.parameters(), lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay
            )
        else:
            opt = torch.optim.Adam(self.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: lr_at_epoch(s, epoch) / s.lr)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def on_train_epoch_end(self):
        if self._on_epoch is not None:
            self._on_epoch(self.current_epoch + 1)


def _accelerator(device: str) -> tuple[str, str]:
    if device == "auto":
        return "auto", "1"
    if device == "cpu":
        return "cpu", "1"
    if device.startswith("cuda"):
        idx = device.partition(":")[2]
        return "gpu", (idx + ",") if idx else "1"
    return device, "1"


def fit_lightning(model, settings: TrainSettings, x_train, y_observed, seed: int, work_dir, on_epoch=None):
    """Train ``model`` with Lightning in ``work_dir`` (resuming from its last checkpoint); returns the model."""
    if work_dir is None:
        raise ValueError("the lightning engine needs a work_dir for its checkpoints")
    ds = TensorDataset(
        torch.as_tensor(np.asarray(x_train), dtype=torch.float32),
        torch.as_tensor(np.asarray(y_observed), dtype=torch.long),
    )
    bs = len(ds) if settings.batch_size == 0 else settings.batch_size
    dl = make_dataloader(ds, bs, shuffle=True, seed=seed)
    accel, devices = _accelerator(settings.device)
    cfg = TrainConfig(
        out_dir=str(Path(work_dir)),
        max_epochs=settings.epochs,
        seed=int(seed),
        accelerator=accel,
        devices=devices,
        precision=settings.precision,
        monitor=None,
        loggers=[],
        progress_bar=False,
        export=False,
        resume="auto",
    )
    module = PaperModule(model, settings, on_epoch)
    fit(module, cfg, dl, enable_checkpointing=True, num_sanity_val_steps=0, limit_val_batches=0)
    return module.model
