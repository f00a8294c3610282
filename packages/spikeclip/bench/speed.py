"""Images/s of the spiking image encoder (T = 4) vs the same-size ANN image tower, side by side in one run, with the
energy estimate (fp32, 4.6 / 0.9 pJ). CPU at one thread by default; on a GPU the LIF runs through the core's fused
(Triton) path.

    python bench/speed.py                     # demo size (16x16, D 64, 1 block) and paper size (32x32, 4-384)
    python bench/speed.py --sizes paper --device cuda --batch 256
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from spikeclip.config import ImageEncoderConfig
from spikeclip.evaluate import energy_report
from spikeclip.model import ANNImageEncoder, SpikingImageEncoder

SIZES = {
    "demo": dict(
        input_size=16, stem_channels=[16, 32, 64], pools=2, depth=1, num_heads=4, qk_scale="auto", out_dim=64
    ),
    "paper": dict(
        input_size=32, stem_channels=[48, 96, 192, 384], pools=2, depth=4, num_heads=8, out_dim=512
    ),
}


@torch.no_grad()
def images_per_s(model, x, seconds: float) -> float:
    model(x)  # warm-up
    if x.is_cuda:
        torch.cuda.synchronize()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        model(x)
        n += x.shape[0]
    if x.is_cuda:
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="demo,paper")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    for name in a.sizes.split(","):
        cfg = ImageEncoderConfig(time_steps=4, **SIZES[name])
        torch.manual_seed(0)
        snn, ann = SpikingImageEncoder(cfg).eval(), ANNImageEncoder(cfg).eval()
        x = torch.rand(a.batch, 3, cfg.input_size, cfg.input_size)
        energy = energy_report(snn, x[:8])  # untrained weights: firing rates (and energy) of a random init
        snn, ann, x = snn.to(a.device), ann.to(a.device), x.to(a.device)
        s, n = images_per_s(snn, x, a.seconds), images_per_s(ann, x, a.seconds)
        rows.append(dict(size=name, device=a.device, threads=a.threads, batch=a.batch, snn_images_s=round(s, 1),
                         ann_images_s=round(n, 1), snn_over_ann_speed=round(s / n, 3),
                         snn_uj=round(energy["snn_uj"], 3), ann_uj=round(energy["ann_uj"], 3),
                         energy_ratio=round(energy["ratio"], 3)))  # fmt: skip
        print(json.dumps(rows[-1]))


if __name__ == "__main__":
    main()
