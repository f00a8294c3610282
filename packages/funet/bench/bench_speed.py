"""Batch-1 speed of FUnet vs the per-frame U-Net with the same encoder, in one run (prints side-by-side ratios).

python packages/funet/bench/bench_speed.py                      # paper widths, tu-res2net50d, 256x448
python packages/funet/bench/bench_speed.py --encoder resnet18 --widths small --size 64 64
"""

from __future__ import annotations

import argparse
from types import SimpleNamespace

from funet.runner import run_benchmark

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--encoder", default="tu-res2net50d")
    p.add_argument("--size", type=int, nargs=2, default=[256, 448])
    p.add_argument("--widths", default="paper", choices=["paper", "small"])
    p.add_argument("--frames", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    run_benchmark(
        SimpleNamespace(
            encoder_name=a.encoder,
            size=a.size,
            num_frames=a.frames,
            widths=a.widths,
            repeats=a.repeats,
            device=a.device,
            threads=a.threads,
            out=None,
        )
    )
