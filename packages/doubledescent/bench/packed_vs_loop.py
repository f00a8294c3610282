"""Packed full-batch training of many SimpleFC widths vs one model at a time (same maths; see the README).

OMP_NUM_THREADS=1 python packages/doubledescent/bench/packed_vs_loop.py [--epochs 200]
"""

import argparse
import time

import numpy as np
import torch
from doubledescent import DataConfig, SimpleFC, TrainSettings, load_data, train_packed_fc, train_unit
from doubledescent.demo import DEMO_WIDTHS
from doubledescent.noise import inject_label_noise
from doubledescent.train import unit_seed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=200)
    a = ap.parse_args()
    d = load_data(DataConfig(name="digits", n_train=500))
    nz = inject_label_noise(d.y_train, 0.2, 10, 0)
    s = TrainSettings(
        optimizer="adam", lr=1e-2, batch_size=0, epochs=a.epochs, schedule="constant", device="cpu"
    )

    def models():
        out = []
        for w in DEMO_WIDTHS:
            torch.manual_seed(unit_seed(0, w))
            out.append(SimpleFC(w, 64, 10))
        return out

    warm = TrainSettings(optimizer="adam", lr=1e-2, batch_size=0, epochs=2, schedule="constant", device="cpu")
    train_unit(
        SimpleFC(4, 64, 10), d.x_train, nz.observed, nz.true, d.x_test, d.y_test, warm
    )  # imports, caches
    t = time.perf_counter()
    alone = [train_unit(m, d.x_train, nz.observed, nz.true, d.x_test, d.y_test, s) for m in models()]
    t_alone = time.perf_counter() - t
    t = time.perf_counter()
    packed = train_packed_fc(models(), d.x_train, nz.observed, nz.true, d.x_test, d.y_test, s)
    t_packed = time.perf_counter() - t
    diff = max(abs(a["test_loss"] - b["test_loss"]) for a, b in zip(alone, packed))
    print(
        f"{len(DEMO_WIDTHS)} widths x {a.epochs} full-batch Adam steps on digits (n=500), threads={torch.get_num_threads()}"
    )
    print(f"one at a time: {t_alone:7.2f} s")
    print(
        f"packed:        {t_packed:7.2f} s   speed-up x{t_alone / t_packed:.2f}   max |test-loss diff| {diff:.2e}"
    )
    print("test loss per width:", np.round([r["test_loss"] for r in packed], 3).tolist())


if __name__ == "__main__":
    main()
