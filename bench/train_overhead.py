"""Overhead of tenfold_core.train (Lightning) over a raw PyTorch loop: same model, data, optimizer, steps.

Prints, side by side in one run (median of interleaved repeats; columns raw torch, bare Lightning = a minimal
LightningModule on a ``lightning.Trainer`` with no callbacks/loggers, and tenfold_core ``fit``):
- steady-state time per step (first 20 steps excluded) and the overhead ratio (goal: <= 1.03 on CPU),
- whole-run wall time including Trainer set-up, checkpointing and export.
- a tiny 50-step run (a 16-32-2 MLP, batch 16, one validation pass): ``fit``'s wall time with its default
  TrainConfig (CSV log, checkpoints, export, progress bar) against a raw loop doing the same steps, the first fit of
  the process (Lightning's lazy imports included) and a second one (goal: within 1.5 s of the raw loop).
Run: OMP_NUM_THREADS=1 python bench/train_overhead.py [--steps 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import lightning as L
import torch
from torch import nn
from torch.utils.data import TensorDataset

from tenfold_core.train import ClassifierModule, OptimConfig, TrainConfig, fit, make_dataloader

WARMUP = 20


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


def dataset(steps, batch):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(steps * batch, 256, generator=g)
    return TensorDataset(x, torch.randint(0, 10, (steps * batch,), generator=g))


def raw_loop(ds, steps, batch):
    m = model()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    dl = make_dataloader(ds, batch, shuffle=True)
    stamps = []
    t0 = time.perf_counter()
    for i, (x, y) in enumerate(dl):
        if i == steps:
            break
        loss = nn.functional.cross_entropy(m(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        stamps.append(time.perf_counter())
    return (stamps[-1] - stamps[WARMUP]) / (len(stamps) - 1 - WARMUP), time.perf_counter() - t0


class Stamps(L.Callback):
    def __init__(self):
        self.t = []

    def on_train_batch_end(self, *a):
        self.t.append(time.perf_counter())


class BareModule(L.LightningModule):
    """The floor: a minimal LightningModule (no logging), plain AdamW."""

    def __init__(self):
        super().__init__()
        self.model = model()

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.model(x), y)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.model.parameters(), lr=1e-3)


def bare_lightning_loop(ds, steps, batch):
    """A bare ``lightning.Trainer``: no callbacks, loggers, checkpoints or progress bar; same model/data/steps."""
    stamps = Stamps()
    with tempfile.TemporaryDirectory() as d:
        trainer = L.Trainer(
            default_root_dir=d, accelerator="cpu", devices=1, max_epochs=1, max_steps=steps, logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[stamps],
        )  # fmt: skip
        t0 = time.perf_counter()
        trainer.fit(BareModule(), make_dataloader(ds, batch, shuffle=True))
        total = time.perf_counter() - t0
    t = stamps.t
    return (t[-1] - t[WARMUP]) / (len(t) - 1 - WARMUP), total


def tenfold_loop(ds, steps, batch):
    stamps = Stamps()
    with tempfile.TemporaryDirectory() as d:
        cfg = TrainConfig(
            out_dir=d,
            max_epochs=1,
            max_steps=steps,
            accelerator="cpu",
            progress_bar=False,
            monitor=None,
            resume="never",
        )
        t0 = time.perf_counter()
        fit(
            ClassifierModule(model(), OptimConfig(lr=1e-3)),
            cfg,
            make_dataloader(ds, batch, shuffle=True),
            callbacks=[stamps],
        )
        total = time.perf_counter() - t0
    t = stamps.t
    return (t[-1] - t[WARMUP]) / (len(t) - 1 - WARMUP), total


def tiny_start(steps: int = 50, batch: int = 16) -> tuple[float, float, float]:
    """(raw loop s, first fit s, second fit s) for a tiny run, measured in this process."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(steps * batch, 16, generator=g)
    ds = TensorDataset(x, (x[:, 0] > 0).long())

    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))

    def raw() -> float:
        t0 = time.perf_counter()
        m = net()
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
        for xb, yb in make_dataloader(ds, batch, shuffle=True):
            loss = nn.functional.cross_entropy(m(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            for xb, _ in make_dataloader(ds, 256):
                m(xb)
        return time.perf_counter() - t0

    def ours() -> float:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            fit(ClassifierModule(net(), OptimConfig(lr=1e-3)), TrainConfig(out_dir=d, max_epochs=1, accelerator="cpu"),
                make_dataloader(ds, batch, shuffle=True), make_dataloader(ds, 256))  # fmt: skip
            return time.perf_counter() - t0

    r = raw()
    first = ours()
    second = ours()
    return min(r, raw()), first, second


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    ds = dataset(a.steps, a.batch)
    raw, bare, ours = [], [], []
    bare_lightning_loop(ds, min(a.steps, WARMUP + 5), a.batch)  # Lightning's lazy imports, outside the timing
    for _ in range(a.repeats):  # interleaved: raw, bare Lightning, tenfold_core in every repeat
        raw.append(raw_loop(ds, a.steps, a.batch))
        bare.append(bare_lightning_loop(ds, a.steps, a.batch))
        ours.append(tenfold_loop(ds, a.steps, a.batch))
    r_step, b_step, o_step = (statistics.median(x[0] for x in v) for v in (raw, bare, ours))
    r_tot, b_tot, o_tot = (statistics.median(x[1] for x in v) for v in (raw, bare, ours))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"threads={torch.get_num_threads()} steps={a.steps} batch={a.batch} repeats={a.repeats} load={load:.1f}"
    )
    print(
        f"{'':24s}{'raw torch':>12s}{'bare Lightning':>16s}{'tenfold_core':>14s}{'bare/raw':>10s}{'ours/raw':>10s}"
    )
    print(f"{'ms / step (steady)':24s}{r_step * 1e3:12.3f}{b_step * 1e3:16.3f}{o_step * 1e3:14.3f}"
          f"{b_step / r_step:10.3f}{o_step / r_step:10.3f}")  # fmt: skip
    print(
        f"{'whole run (s)':24s}{r_tot:12.2f}{b_tot:16.2f}{o_tot:14.2f}{b_tot / r_tot:10.3f}{o_tot / r_tot:10.3f}"
    )
    print(f"steady-state overhead: {100 * (o_step / r_step - 1):+.1f}% (goal <= +3%); Lightning's floor "
          f"{100 * (b_step / r_step - 1):+.1f}%, ours over bare Lightning {100 * (o_step / b_step - 1):+.1f}% "
          f"({(o_step - b_step) * 1e3:+.3f} ms/step)")  # fmt: skip
    raw_s, first, second = tiny_start()
    print(f"tiny 50-step run: raw {raw_s:.2f} s, fit first {first:.2f} s (+{first - raw_s:.2f}), "
          f"fit again {second:.2f} s (+{second - raw_s:.2f}) (goal: within +1.5 s)")  # fmt: skip


if __name__ == "__main__":
    main()
