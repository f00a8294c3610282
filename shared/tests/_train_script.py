"""Training script used by the subprocess tests (kill/resume, DDP). Prints one line per step."""

import sys
import time

import torch
from torch import nn
from torch.utils.data import TensorDataset

from tenfold_core.train import ClassifierModule, OptimConfig, TrainConfig, fit, make_dataloader


class Printer(__import__("lightning").Callback):
    def __init__(self, sleep):
        self.sleep = sleep

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        print(
            f"epoch {trainer.current_epoch} batch {batch_idx} step {trainer.global_step} rank {trainer.global_rank}",
            flush=True,
        )
        time.sleep(self.sleep)


def main(out_dir: str, sleep: float, devices: str, strategy: str, epochs: int):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 16, generator=g)
    y = (x[:, :3].sum(1) > 0).long()
    ds = TensorDataset(x, y)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 2))
    cfg = TrainConfig(
        out_dir=out_dir, max_epochs=epochs, seed=3, deterministic=True, accelerator="cpu", devices=devices,
        strategy=strategy, progress_bar=False, loggers=[], monitor="val_loss",
    )  # fmt: skip
    res = fit(
        ClassifierModule(model, OptimConfig(lr=0.05, schedule="cosine")),
        cfg,
        make_dataloader(ds, 32, shuffle=True, seed=1),
        make_dataloader(ds, 64),
        callbacks=[Printer(sleep)],
    )
    if res.trainer.is_global_zero:
        print(
            f"DONE world={res.trainer.world_size} resumed={res.resumed_from is not None} score={res.best_score}",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
