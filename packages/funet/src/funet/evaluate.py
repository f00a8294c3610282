"""Evaluation and speed measurement.

``protocol="vps"`` (default) is the VPS / SUN-SEG toolbox (``tenfold_core.metrics.segmentation.VPSEvaluator``): every
frame of a video is predicted in temporal order, its probability map is resized to the ground-truth size and quantised
to 8 bits (what ``funet predict`` writes), min-max normalised; the first and last frame of every *video* are skipped;
measures are averaged per video, then across videos; an empty prediction on an empty mask scores 0.

``protocol="frames"`` is the earlier behaviour: raw probabilities at the network size, the first and last frame of
every *clip* skipped, Dice / IoU at 0.5, maxDice / maxIoU over 256 thresholds (streamed with the core's
``DiceIoUCurves``), S-measure and max E-measure averaged over frames; an empty prediction on an empty mask scores 1.

Both split the scores into corrupted / clean frames when the data says which frames are corrupted, report the frame
gate per group and its AUROC at telling them apart (FUnet), and calibration (ECE, NLL) of the raw probabilities.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from funet.data import ClipDataset, Video, _load_mask, clip_starts
from tenfold_core.metrics import dice_iou_per_image, e_measure_curve, s_measure
from tenfold_core.metrics.segmentation import DiceIoUCurves, VPSEvaluator

__all__ = [
    "predict_video",
    "evaluate_model",
    "evaluate_frames",
    "evaluate_splits",
    "split_groups",
    "Calibration",
    "measure_speed",
    "compare_speed",
    "to_uint8",
]


def model_frames(model: nn.Module) -> int:
    """Frames per forward: FUnet's clip length, 1 for the per-frame baselines."""
    return model.config.clip_frames if hasattr(model.config, "clip_frames") else 1


def to_uint8(prob: torch.Tensor, size: tuple[int, int] | None = None) -> np.ndarray:
    """A probability map ``[h, w]`` -> 8-bit ``[H, W]`` (bilinear resize to ``size`` first), as written to PNG."""
    p = prob.float()
    if size is not None and tuple(p.shape[-2:]) != tuple(size):
        p = F.interpolate(p[None, None], size=tuple(size), mode="bilinear", align_corners=False)[0, 0]
    return (p.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


@torch.no_grad()
def predict_video(
    model: nn.Module,
    video: Video,
    size: tuple[int, int] | list[int],
    device: str | torch.device = "cpu",
    batch_size: int = 4,
    use_gate: bool = True,
) -> Iterator[tuple[int, torch.Tensor, float]]:
    """``(frame index, probability [H, W] at the network size, gate)`` for every frame in temporal order (clip mode).

    Clips of F frames tile the video; the tail clip, which overlaps the previous one, only contributes its new frames.
    Memory: ``batch_size`` clips.
    """
    nf = model_frames(model)
    ds = ClipDataset([video], nf, 1, None, size)
    starts = clip_starts(len(video), nf, 1, None)
    n = len(video)
    model.eval().to(device)
    done = 0
    for b0 in range(0, len(ds), batch_size):
        idx = list(range(b0, min(len(ds), b0 + batch_size)))
        x = torch.stack([ds[i]["frames"] for i in idx]).to(device)
        logits, g = model(x, return_gates=True, use_gate=use_gate)
        p = torch.sigmoid(logits.float())[:, :, 0].cpu()
        for bi, i in enumerate(idx):
            for k in range(nf):
                j = starts[i] + k
                if j >= done and j < n:
                    yield j, p[bi, k], float(g[bi, k]) if g is not None else float("nan")
                    done = j + 1


class Calibration:
    """Pixel-level expected calibration error (15 equal-width bins) and NLL of probabilities, streamed."""

    def __init__(self, bins: int = 15):
        self.bins = bins
        self.count = np.zeros(bins)
        self.conf = np.zeros(bins)
        self.pos = np.zeros(bins)
        self.nll = 0.0
        self.n = 0

    def update(self, prob: torch.Tensor, mask: torch.Tensor) -> None:
        p = prob.double().flatten().clamp(1e-6, 1 - 1e-6)
        y = (mask.flatten() > 0.5).double()
        b = (p * self.bins).long().clamp(max=self.bins - 1).numpy()
        self.count += np.bincount(b, minlength=self.bins)
        self.conf += np.bincount(b, weights=p.numpy(), minlength=self.bins)
        self.pos += np.bincount(b, weights=y.numpy(), minlength=self.bins)
        self.nll += float(-(y * p.log() + (1 - y) * (1 - p).log()).sum())
        self.n += p.numel()

    def results(self) -> dict[str, float]:
        if not self.n:
            return {}
        ece = float(np.abs(self.conf - self.pos).sum() / self.n)
        return {"ece": ece, "nll": self.nll / self.n}


def _auroc(labels: list[bool], scores: list[float]) -> float | None:
    y = np.asarray(labels, bool)
    s = np.asarray(scores, float)
    ok = ~np.isnan(s)
    y, s = y[ok], s[ok]
    if not len(y) or y.all() or not y.any():
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def _gt_mask(video: Video, j: int) -> np.ndarray:
    m = video.masks[j]
    return _load_mask(m) if isinstance(m, Path) else (np.asarray(m) > 0.5).astype(np.float32)


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    videos: list[Video],
    size: tuple[int, int] | list[int],
    protocol: str = "vps",
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    use_gate: bool = True,
    hold_tau: float | None = None,
    also: Sequence[VPSEvaluator] = (),
    case_prefix: str = "",
) -> dict:
    """Every metric of ``model`` on ``videos`` under ``protocol`` ("vps" or "frames", see the module docstring).

    ``use_gate=False`` switches FUnet's frame gate off at inference; ``hold_tau`` keeps the previous frame's map when
    a frame's gate is below tau (the one use of the gate that can change a thresholded mask). ``also``: more
    toolbox evaluators that receive every scored frame as case ``case_prefix + video name`` (split groups).
    """
    if protocol == "frames":
        nf = model_frames(model)
        return evaluate_frames(
            model, ClipDataset(videos, nf, 1, None, size), batch_size, True, device, use_gate
        )
    if protocol != "vps":
        raise ValueError(f"protocol must be 'vps' or 'frames', got {protocol!r}")
    ev_all, ev_c, ev_k = VPSEvaluator(), VPSEvaluator(), VPSEvaluator()
    cal_all, cal_c = Calibration(), Calibration()
    corr, gates = [], []
    held = 0
    for v in videos:
        if v.masks is None:
            raise ValueError(f"video {v.name!r} has no masks to evaluate against")
        n = len(v)
        prev = None
        for j, prob, g in predict_video(model, v, size, device, batch_size, use_gate):
            if hold_tau is not None and prev is not None and not np.isnan(g) and g < hold_tau:
                prob = prev
                held += 1
            prev = prob
            if j == 0 or j == n - 1:  # the toolbox skips the first and last frame of every video
                continue
            gt = _gt_mask(v, j)
            u8 = to_uint8(prob, gt.shape)
            ev_all.update(v.name, u8, gt)
            for ev in also:
                ev.update(case_prefix + v.name, u8, gt)
            small = torch.from_numpy(gt)[None, None]
            small = F.interpolate(small, size=prob.shape[-2:], mode="nearest")[0, 0]
            cal_all.update(prob, small)
            is_c = bool(v.corrupted[j]) if v.corrupted else False
            (ev_c if is_c else ev_k).update(v.name, u8, gt)
            if is_c:
                cal_c.update(prob, small)
            corr.append(is_c)
            gates.append(g)
    res = ev_all.results()
    out: dict = {"protocol": "vps", **{k: v for k, v in res.items() if k != "cases"}}
    out.update(cal_all.results())
    if any(corr) and not all(corr):
        rc, rk = ev_c.results(), ev_k.results()
        for key in ("mean_dice", "max_dice", "S_measure", "max_E_measure", "wF_measure"):
            out[f"{key}_corrupted"] = rc[key]
            out[f"{key}_clean"] = rk[key]
        out["corrupted_frames"] = int(sum(corr))
        out.update({f"{k}_corrupted": v for k, v in cal_c.results().items()})
    ga = np.asarray(gates, float)
    if len(ga) and not np.isnan(ga).all():
        out["gate_mean"] = float(np.nanmean(ga))
        c = np.asarray(corr, bool)
        if c.any() and (~c).any():
            out["gate_corrupted_frames"] = float(np.nanmean(ga[c]))
            out["gate_clean_frames"] = float(np.nanmean(ga[~c]))
            out["gate_auroc"] = _auroc(corr, list(-ga))  # a low gate should flag a corrupted frame
    if hold_tau is not None:
        out["held_frames"] = held
    out["cases"] = res["cases"]
    return out


def split_groups(names: Sequence[str]) -> dict[str, list[str]]:
    """Groups of SUN-SEG splits worth reporting together: ``TestEasyDataset/*`` (Easy, Seen and Unseen),
    ``*/Unseen`` (Easy and Hard), and ``all``; only groups of more than one split."""
    groups: dict[str, list[str]] = {}
    for n in names:
        parts = n.split("/")
        if len(parts) == 2:
            groups.setdefault(f"{parts[0]}/*", []).append(n)
            groups.setdefault(f"*/{parts[1]}", []).append(n)
    if len(names) > 1:
        groups["all"] = list(names)
    return {k: v for k, v in groups.items() if len(v) > 1}


@torch.no_grad()
def evaluate_splits(
    model: nn.Module,
    splits: dict[str, list[Video]],
    size: tuple[int, int] | list[int],
    batch_size: int = 4,
    device: str | torch.device = "cpu",
) -> dict:
    """The VPS protocol per SUN-SEG split (``{"TestEasyDataset/Seen": videos, ...}``): every split scored as its own
    data set, exactly as the toolbox scores one (``splits``); the groups of :func:`split_groups` (Easy = Easy Seen +
    Easy Unseen, Unseen = Easy Unseen + Hard Unseen, all) averaged per video over their splits' videos, the curves
    before mean / max as for one data set (``groups``); one row per case as ``split/case`` (``cases``). The top-level
    metrics are those of ``all``."""
    groups = split_groups(list(splits))
    group_ev = {g: VPSEvaluator() for g in groups}
    out: dict = {"protocol": "vps", "splits": {}, "groups": {}, "cases": {}}
    for name, videos in splits.items():
        evs = [group_ev[g] for g, members in groups.items() if name in members]
        r = evaluate_model(model, videos, size, "vps", batch_size, device, also=evs, case_prefix=f"{name}/")
        out["cases"].update({f"{name}/{c}": row for c, row in r.pop("cases").items()})
        out["splits"][name] = r
    for g, ev in group_ev.items():
        out["groups"][g] = {k: v for k, v in ev.results().items() if k != "cases"}
    top = out["groups"].get("all") or next(iter(out["splits"].values()))
    out.update({k: v for k, v in top.items() if k not in out})
    return out


# ------------------------------------------------------------------------------------------------ frames protocol
class _FrameScores:
    def __init__(self, num_thresholds: int = 256):
        self.curves = DiceIoUCurves(num_thresholds)
        self.e_sum = np.zeros(num_thresholds)
        self.k = num_thresholds
        self.dice, self.iou, self.s = [], [], []

    def update(self, p: torch.Tensor, m: torch.Tensor) -> None:
        d, i = dice_iou_per_image(p, m)
        self.dice.append(float(d[0]))
        self.iou.append(float(i[0]))
        self.curves.update(p, m)
        self.s.append(s_measure(p.numpy(), m.numpy()))
        self.e_sum += e_measure_curve(p.numpy(), m.numpy(), self.k)[1]

    def results(self, prefix: str = "") -> dict[str, float]:
        if not self.dice:
            return {}
        _, dc, ic = self.curves.compute()
        return {
            f"{prefix}dice": float(np.mean(self.dice)),
            f"{prefix}iou": float(np.mean(self.iou)),
            f"{prefix}max_dice": float(dc.max()),
            f"{prefix}max_iou": float(ic.max()),
            f"{prefix}s_measure": float(np.mean(self.s)),
            f"{prefix}max_e_measure": float((self.e_sum / len(self.dice)).max()),
        }


@torch.no_grad()
def evaluate_frames(
    model: nn.Module, dataset: ClipDataset, batch_size: int = 4, skip_ends: bool = True, device="cpu",
    use_gate: bool = True,
) -> dict:  # fmt: skip
    """The ``frames`` protocol on a :class:`~funet.data.ClipDataset` (clip ends skipped), streamed."""
    from torch.utils.data import DataLoader

    model.eval().to(device)
    every, cor, cln = _FrameScores(), _FrameScores(), _FrameScores()
    cal, gates, corr = Calibration(), [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        logits, g = model(batch["frames"].to(device), return_gates=True, use_gate=use_gate)
        p = torch.sigmoid(logits.float()).cpu()[:, :, 0]
        f = p.shape[1]
        keep = list(range(1, f - 1)) if skip_ends and f > 2 else list(range(f))
        for bi in range(p.shape[0]):
            for k in keep:
                pk, mk = p[bi, k], batch["masks"][bi, k, 0]
                every.update(pk, mk)
                cal.update(pk, mk)
                c = bool(batch["corrupted"][bi, k])
                (cor if c else cln).update(pk, mk)
                corr.append(c)
                gates.append(float(g[bi, k]) if g is not None else float("nan"))
    out: dict = {"protocol": "frames", "frames": len(every.dice), **every.results(), **cal.results()}
    if any(corr) and not all(corr):
        out["corrupted_frames"] = int(sum(corr))
        out.update(cor.results(prefix="corrupted_"))
        out.update(cln.results(prefix="clean_"))
    ga = np.asarray(gates)
    if len(ga) and not np.isnan(ga).all():
        out["gate_mean"] = float(ga.mean())
        if any(corr) and not all(corr):
            c = np.asarray(corr)
            out["gate_corrupted_frames"] = float(ga[c].mean())
            out["gate_clean_frames"] = float(ga[~c].mean())
            out["gate_auroc"] = _auroc(corr, list(-ga))
    return out


# ------------------------------------------------------------------------------------------------ speed
def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


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
    return compare_speed({"m": model}, size, num_frames, repeats, warmup, device)["m"]


@torch.no_grad()
def compare_speed(
    models: dict[str, nn.Module],
    size: tuple[int, int] = (256, 448),
    num_frames: int = 5,
    repeats: int = 10,
    warmup: int = 2,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> dict[str, dict[str, float]]:
    """Batch-1 speed of several models measured *interleaved* (A, B, A, B, ...) so that load changes on a shared
    machine hit all of them alike; median time per model. Returns {name: {frames_per_s, clips_per_s, ...}}."""
    x = torch.randn(1, num_frames, 3, *size, device=device, dtype=dtype)
    for m in models.values():
        m.eval().to(device=device, dtype=dtype)
        for _ in range(warmup):
            m(x)
    _sync(device)
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(repeats):
        for name, m in models.items():
            t = time.perf_counter()
            m(x)
            _sync(device)
            times[name].append(time.perf_counter() - t)
    out = {}
    for name, ts in times.items():
        sec = float(np.median(ts))
        out[name] = {"seconds_per_clip": sec, "clips_per_s": 1.0 / sec, "frames_per_s": num_frames / sec}
    return out
