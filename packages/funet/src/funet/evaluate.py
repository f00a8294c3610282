"""Evaluation (VPS conventions) and speed measurement.

Per-frame probabilities are collected clip by clip; following PNS-Net / PNS+ (after DAVIS) the first and last frame of
every clip are skipped (``skip_ends=True``). Reported: Dice and IoU at 0.5, maxDice / maxIoU over 256 thresholds,
S-measure (alpha 0.5), max E-measure, each on all frames and split into corrupted / clean frames when the data says
which frames are corrupted, plus the mean frame gate of each group (FUnet).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tenfold_core.metrics import max_dice_iou, max_e_measure, s_measure
from tenfold_core.metrics.segmentation import dice_iou_per_image

__all__ = [
    "Predictions",
    "collect_predictions",
    "segmentation_metrics",
    "evaluate_model",
    "measure_speed",
    "compare_speed",
]


@dataclass
class Predictions:
    probs: torch.Tensor  # [N, H, W] probabilities
    masks: torch.Tensor  # [N, H, W] in {0, 1}
    corrupted: torch.Tensor  # [N] bool
    gates: torch.Tensor  # [N] frame gates (NaN for models without one)


@torch.no_grad()
def collect_predictions(
    model: nn.Module, dataset, batch_size: int = 4, skip_ends: bool = True, device: str | torch.device = "cpu"
) -> Predictions:
    from torch.utils.data import DataLoader

    model.eval().to(device)
    probs, masks, corr, gates = [], [], [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        logits, g = model(batch["frames"].to(device), return_gates=True)
        p = torch.sigmoid(logits.float()).cpu()[:, :, 0]  # [B, F, H, W]
        f = p.shape[1]
        keep = slice(1, f - 1) if skip_ends and f > 2 else slice(0, f)
        probs.append(p[:, keep].flatten(0, 1))
        masks.append(batch["masks"][:, keep, 0].flatten(0, 1))
        corr.append(batch["corrupted"][:, keep].flatten(0, 1))
        gg = g.float().cpu() if g is not None else torch.full(p.shape[:2], float("nan"))
        gates.append(gg[:, keep].flatten(0, 1))
    return Predictions(torch.cat(probs), torch.cat(masks), torch.cat(corr), torch.cat(gates))


def segmentation_metrics(probs: torch.Tensor, masks: torch.Tensor, prefix: str = "") -> dict[str, float]:
    if len(probs) == 0:
        return {}
    d, i = dice_iou_per_image(probs, masks, 0.5)
    md, mi = max_dice_iou(probs, masks)
    return {
        f"{prefix}dice": float(d.mean()),
        f"{prefix}iou": float(i.mean()),
        f"{prefix}max_dice": md,
        f"{prefix}max_iou": mi,
        f"{prefix}s_measure": s_measure(probs, masks),
        f"{prefix}max_e_measure": max_e_measure(probs, masks),
    }


def evaluate_model(
    model: nn.Module, dataset, batch_size: int = 4, skip_ends: bool = True, device="cpu"
) -> dict:
    """All metrics on ``dataset`` (a :class:`~funet.data.ClipDataset`), plus corrupted/clean splits and gates."""
    pr = collect_predictions(model, dataset, batch_size, skip_ends, device)
    out = {"frames": len(pr.probs), **segmentation_metrics(pr.probs, pr.masks)}
    c = pr.corrupted
    if c.any() and (~c).any():
        out["corrupted_frames"] = int(c.sum())
        d_c = dice_iou_per_image(pr.probs[c], pr.masks[c])[0].mean()
        d_k = dice_iou_per_image(pr.probs[~c], pr.masks[~c])[0].mean()
        out["dice_corrupted_frames"] = float(d_c)
        out["dice_clean_frames"] = float(d_k)
        out["max_dice_corrupted_frames"] = max_dice_iou(pr.probs[c], pr.masks[c])[0]
        out["s_measure_corrupted_frames"] = s_measure(pr.probs[c], pr.masks[c])
        if not torch.isnan(pr.gates).all():
            out["gate_corrupted_frames"] = float(pr.gates[c].mean())
            out["gate_clean_frames"] = float(pr.gates[~c].mean())
    if not torch.isnan(pr.gates).all():
        out["gate_mean"] = float(pr.gates.mean())
    return out


@torch.no_grad()
def measure_speed(
    model: nn.Module,
    size: tuple[int, int] = (256, 448),
    num_frames: int = 5,
    repeats: int = 10,
    warmup: int = 2,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Batch-1 speed: one clip ``[1, F, 3, H, W]`` per forward. Returns frames/s and clips/s (median time)."""
    model.eval().to(device)
    x = torch.randn(1, num_frames, 3, *size, device=device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    for _ in range(warmup):
        model(x)
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model(x)
        sync()
        times.append(time.perf_counter() - t)
    sec = float(np.median(times))
    return {"seconds_per_clip": sec, "clips_per_s": 1.0 / sec, "frames_per_s": num_frames / sec}


@torch.no_grad()
def compare_speed(
    models: dict[str, nn.Module],
    size: tuple[int, int] = (256, 448),
    num_frames: int = 5,
    repeats: int = 10,
    warmup: int = 2,
    device: str | torch.device = "cpu",
) -> dict[str, dict[str, float]]:
    """Batch-1 speed of several models measured *interleaved* (A, B, A, B, ...) so that load changes on a shared
    machine hit all of them alike; median time per model. Returns {name: {frames_per_s, clips_per_s, ...}}."""
    x = torch.randn(1, num_frames, 3, *size, device=device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    for m in models.values():
        m.eval().to(device)
        for _ in range(warmup):
            m(x)
    sync()
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(repeats):
        for name, m in models.items():
            t = time.perf_counter()
            m(x)
            sync()
            times[name].append(time.perf_counter() - t)
    out = {}
    for name, ts in times.items():
        sec = float(np.median(ts))
        out[name] = {"seconds_per_clip": sec, "clips_per_s": 1.0 / sec, "frames_per_s": num_frames / sec}
    return out
