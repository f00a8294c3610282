"""The streaming latency goal, side by side: CPU, batch 1, one thread, 256x448 (the paper's size), FUnet's causal
streaming step (one new frame through the encoder, the gate over the cached 5-frame window) against the per-frame
U-Net with the same encoder, and the stride-8 U-Net. Two encoders: the paper's Res2Net50-v1b (``tu-res2net50d``,
random weights: speed does not depend on them) with the paper's widths, and the demo's small model. Every model and
stage is timed in one interleaved loop (``funet.predict.time_interleaved``); ~1 minute on an idle 2-core machine.

python packages/funet/bench/bench_speed.py                    # both encoders, 256x448, 1 thread
python packages/funet/bench/bench_speed.py --presets demo --repeats 5 --size 96,160
"""

from __future__ import annotations

import argparse
import json
import time

from funet.config import BenchmarkCommand
from funet.demo import MODELS
from funet.predict import run_benchmark

from tenfold_core.cli import load_preset

GOAL = 1.2  # streaming cost per new frame <= 1.2x the per-frame U-Net's (issue 11)

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--presets", default="paper,demo", help="whose train.model sections to time")
    p.add_argument("--size", default="256,448")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument(
        "--clip", action=argparse.BooleanOptionalAction, default=True, help="time the clip forward"
    )
    a = p.parse_args()
    h, w = (int(v) for v in a.size.split(","))
    rows = []
    for preset in a.presets.split(","):
        t = time.time()
        model = load_preset("funet", preset, "train").model
        # the demo's U-Nets are trained with the demo's narrow decoder; the paper comparison uses smp's default
        dec = MODELS["unet"]["baseline_decoder_channels"] if preset == "demo" else None
        cfg = BenchmarkCommand(model=model, size=[h, w], repeats=a.repeats, device=a.device, dtype=a.dtype,
                               threads=a.threads, clip=a.clip, baseline_decoder_channels=dec)  # fmt: skip
        r = run_benchmark(cfg)
        r["preset"], r["wall_s"] = preset, time.time() - t
        print(json.dumps(r, indent=1))
        rows.append(r)
    print(f"\n{h}x{w}, batch 1, {a.threads} thread(s), ms per new frame (median of {a.repeats}, interleaved)")
    print("| preset | encoder | FUnet stream | FUnet clip/F | U-Net | U-Net s8 | stream/U-Net | goal |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        clip = f"{r['funet_clip_ms_per_frame']:.0f}" if "funet_clip_ms_per_frame" in r else "-"
        ok = "met" if r["stream_over_unet_latency"] <= GOAL else "missed"
        print(f"| {r['preset']} | {r['encoder']} | {r['funet_stream_ms_per_frame']:.0f} | {clip} | "
              f"{r['unet_ms_per_frame']:.0f} | {r['unet_s8_ms_per_frame']:.0f} | "
              f"{r['stream_over_unet_latency']:.2f} | <= {GOAL} {ok} |")  # fmt: skip
    print("\nstages (ms): " + "; ".join(
        f"{r['preset']}: " + ", ".join(f"{k.removesuffix('_ms')} {v:.0f}" for k, v in r.items() if "stage_" in k and k.endswith("_ms"))
        for r in rows
    ))  # fmt: skip
