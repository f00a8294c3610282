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

from tenfold_core.metrics import e_measure_curve, s_measure

__all__ = [
    "Predictions",
    "collect_predictions",
    "segmentation_metrics",
    "frame_stats",
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


THRESHOLDS = 256


def frame_stats(prob, mask, num_thresholds: int = THRESHOLDS) -> dict:
    """Per-frame scores with O(H*W) memory: Dice/IoU at 0.5, Dice/IoU/E-measure curves over thresholds, S-measure.

    Curves use ``prob >= t`` for ``num_thresholds`` values of t in [0, 1] (VPS convention); an empty prediction of an
    empty mask scores Dice = IoU = 1 (as ``tenfold_core.metrics.segmentation``).
    """
    p = np.asarray(prob, dtype=np.float64)
    g = np.asarray(mask) > 0.5
    thr = np.linspace(0, 1, num_thresholds)
    fg, bg = np.sort(p[g]), np.sort(p[~g])
    tp = fg.size - np.searchsorted(fg, thr, side="left")
    fp = bg.size - np.searchsorted(bg, thr, side="left")
    fn = fg.size - tp
    den, union = 2 * tp + fp + fn, tp + fp + fn
    dice_c = np.where(den == 0, 1.0, 2 * tp / np.maximum(den, 1))
    iou_c = np.where(union == 0, 1.0, tp / np.maximum(union, 1))
    b = p >= 0.5
    tp5, ps, ts = float((b & g).sum()), float(b.sum()), float(g.sum())
    d5 = 1.0 if ps + ts == 0 else 2 * tp5 / (ps + ts)
    i5 = 1.0 if ps + ts == 0 else tp5 / (ps + ts - tp5)
    return {
        "dice": d5,
        "iou": i5,
        "dice_curve": dice_c,
        "iou_curve": iou_c,
        "s_measure": s_measure(p, g),
        "e_curve": e_measure_curve(p, g, num_thresholds)[1],
    }


def _aggregate(stats: list[dict], prefix: str = "") -> dict[str, float]:
    if not stats:
        return {}
    return {
        f"{prefix}dice": float(np.mean([s["dice"] for s in stats])),
        f"{prefix}iou": float(np.mean([s["iou"] for s in stats])),
        f"{prefix}max_dice": float(np.mean([s["dice_curve"] for s in stats], 0).max()),
        f"{prefix}max_iou": float(np.mean([s["iou_curve"] for s in stats], 0).max()),
        f"{prefix}s_measure": float(np.mean([s["s_measure"] for s in stats])),
        f"{prefix}max_e_measure": float(np.mean([s["e_curve"] for s in stats], 0).max()),
    }


def segmentation_metrics(probs, masks, prefix: str = "") -> dict[str, float]:
    """Dice, IoU (at 0.5), maxDice, maxIoU, S-measure, max E-measure of ``[N, H, W]`` probabilities vs masks."""
    probs, masks = torch.as_tensor(probs).float(), torch.as_tensor(masks).float()
    return _aggregate([frame_stats(probs[i].numpy(), masks[i].numpy()) for i in range(len(probs))], prefix)


@torch.no_grad()
def evaluate_model(
    model: nn.Module, dataset, batch_size: int = 4, skip_ends: bool = True, device="cpu"
) -> dict:
    """All metrics on ``dataset`` (a :class:`~funet.data.ClipDataset`), plus corrupted/clean splits and gates.

    Streams: only per-frame scores are kept, so large test sets (SUN-SEG) fit in memory.
    """
    from torch.utils.data import DataLoader

    model.eval().to(device)
    stats, corrupted, gates = [], [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        logits, g = model(batch["frames"].to(device), return_gates=True)
        p = torch.sigmoid(logits.float()).cpu()[:, :, 0]
        f = p.shape[1]
        keep = list(range(1, f - 1)) if skip_ends and f > 2 else list(range(f))
        for bi in range(p.shape[0]):
            for k in keep:
                stats.append(frame_stats(p[bi, k].numpy(), batch["masks"][bi, k, 0].numpy()))
                corrupted.append(bool(batch["corrupted"][bi, k]))
                gates.append(float(g[bi, k]) if g is not None else float("nan"))
    c = np.array(corrupted, dtype=bool)
    gt = np.array(gates)
    out = {"frames": len(stats), **_aggregate(stats)}
    if c.any() and (~c).any():
        out["corrupted_frames"] = int(c.sum())
        sc = [s for s, ci in zip(stats, c, strict=True) if ci]
        sk = [s for s, ci in zip(stats, c, strict=True) if not ci]
        a_c, a_k = _aggregate(sc), _aggregate(sk)
        out["dice_corrupted_frames"] = a_c["dice"]
        out["dice_clean_frames"] = a_k["dice"]
        out["max_dice_corrupted_frames"] = a_c["max_dice"]
        out["s_measure_corrupted_frames"] = a_c["s_measure"]
        if not np.isnan(gt).all():
            out["gate_corrupted_frames"] = float(gt[c].mean())
            out["gate_clean_frames"] = float(gt[~c].mean())
    if len(gt) and not np.isnan(gt).all():
        out["gate_mean"] = float(gt.mean())
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
