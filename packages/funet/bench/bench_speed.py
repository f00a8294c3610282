"""Batch-1 latency per frame, models side by side in one run: FUnet streaming (one new frame, ring buffer of
features), FUnet clip mode, the per-frame U-Net and the stride-8 U-Net with the same encoder. Prints the ratios.

python packages/funet/bench/bench_speed.py                                   # paper widths, tu-res2net50d, 256x448
python packages/funet/bench/bench_speed.py --preset demo --size 96,160       # the demo's model
"""

from __future__ import annotations

import argparse
import json

from funet.config import BenchmarkCommand
from funet.predict import run_benchmark

from tenfold_core.cli import load_preset

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="paper", help="whose train.model section to time (paper, demo, tiny)")
    p.add_argument("--size", default="256,448")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    a = p.parse_args()
    model = load_preset("funet", a.preset, "train").model
    h, w = (int(v) for v in a.size.split(","))
    cfg = BenchmarkCommand(model=model, size=[h, w], repeats=a.repeats, stream_frames=5, device=a.device,
                           dtype=a.dtype, threads=a.threads)  # fmt: skip
    r = run_benchmark(cfg)
    print(json.dumps(r, indent=1))
    print(f"streaming FUnet / per-frame U-Net latency per frame: {r['stream_over_unet_latency']:.2f}")
