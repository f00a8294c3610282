"""Packed full-batch training of many SimpleFC widths vs one unit at a time through ``tenfold_core.train.fit``
(same config, same maths; see the README). Prints the wall-time ratio, measured side by side in one process.

OMP_NUM_THREADS=1 python packages/doubledescent/bench/packed_vs_loop.py [--epochs 200]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from doubledescent.data import load_data
from doubledescent.demo import DemoCommand, demo_sweep_config
from doubledescent.noise import inject_label_noise
from doubledescent.train import fit_unit, train_packed

from tenfold_core.cli import load_preset


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=200)
    a = ap.parse_args()
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp())
    cfg = demo_sweep_config(DemoCommand(progress=False), tmp / "run")
    cfg = load_preset("doubledescent", "demo", "sweep", {"train.out_dir": str(tmp), "train.max_epochs": a.epochs,
                                                         "progress": False}, config=type(cfg))  # fmt: skip
    data = load_data(cfg.data)
    nz = inject_label_noise(data.y_train, 0.2, 10, 0)
    fit_unit(cfg, data, nz, 4, tmp / "warm", tmp / "n.npz", seed=0)  # imports, caches
    t = time.perf_counter()
    alone = [fit_unit(cfg, data, nz, w, tmp / f"w{w}", tmp / "n.npz", seed=0)[1] for w in cfg.widths]
    t_alone = time.perf_counter() - t
    t = time.perf_counter()
    packed = [r for _, r in train_packed(cfg, data, nz, cfg.widths, seed=0)]
    t_packed = time.perf_counter() - t
    diff = max(abs(x["test_loss"] - y["test_loss"]) for x, y in zip(alone, packed))
    print(
        f"{len(cfg.widths)} widths x {a.epochs} full-batch Adam steps on digits (n={data.n_train}), threads=1"
    )
    print(f"fit, one unit at a time: {t_alone:7.2f} s")
    print(
        f"packed engine:           {t_packed:7.2f} s   speed-up x{t_alone / t_packed:.2f}   max |test-loss diff| {diff:.2e}"
    )
    print("test loss per width:", np.round([r["test_loss"] for r in packed], 3).tolist())


if __name__ == "__main__":
    main()
