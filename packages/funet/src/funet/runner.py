"""What the CLI verbs do (kept out of cli.py so the CLI stays thin)."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import torch

from funet.data import (
    VIDEO_EXTS,
    ClipDataset,
    SyntheticConfig,
    Video,
    clip_starts,
    make_synthetic_videos,
    read_video_file,
    scan_videos,
)
from funet.evaluate import compare_speed, evaluate_model
from funet.train import SegModule, load_trained
from tenfold_core.errors import ConfigError, DataError
from tenfold_core.io import atomic_write_bytes, write_json
from tenfold_core.train import fit, make_dataloader

__all__ = ["run_training", "run_evaluate", "run_predict", "run_benchmark", "split_videos", "overlay"]


def split_videos(videos: list[Video], val_fraction: float, seed: int) -> tuple[list[Video], list[Video]]:
    if len(videos) < 2:
        raise DataError("need at least 2 videos to hold some out for validation (or pass data.val_root)")
    order = np.random.default_rng(seed).permutation(len(videos))
    n_val = max(1, int(round(val_fraction * len(videos))))
    return [videos[i] for i in order[n_val:]], [videos[i] for i in order[:n_val]]


def _videos(d) -> tuple[list[Video], list[Video]]:
    if d.root == "synthetic":
        h, w = d.size
        vids = make_synthetic_videos(d.synthetic_videos, SyntheticConfig(h, w, d.synthetic_frames), seed=0)
        return split_videos(vids, d.val_fraction, 0)
    vids = scan_videos(d.root)
    if d.val_root:
        return vids, scan_videos(d.val_root)
    return split_videos(vids, d.val_fraction, 0)


def run_training(cfg):
    """Fit with ``tenfold_core.train.fit``; with ``pretrain_epochs`` first train frame by frame (gate off)."""
    d = cfg.data
    kind, kwargs = cfg.model.build_kwargs()
    train_v, val_v = _videos(d)
    nf = cfg.model.num_frames
    train_ds = ClipDataset(train_v, nf, d.stride, d.clip_step, d.size, augment=d.augment, seed=cfg.train.seed)
    val_ds = ClipDataset(val_v, nf, d.stride, None, d.size)
    val_dl = make_dataloader(val_ds, d.batch_size, num_workers=d.num_workers)
    optim = dataclasses.asdict(cfg.optim)
    start_state = None
    if cfg.pretrain_epochs > 0:
        pre = SegModule(kind, kwargs, optim, cfg.bce_weight, cfg.dice_weight, use_gate=False)
        pre_cfg = dataclasses.replace(
            cfg.train, out_dir=str(Path(cfg.train.out_dir) / "pretrain"), max_epochs=cfg.pretrain_epochs
        )
        pre_ds = ClipDataset(
            train_v, 1, 1, 1, d.size, augment=d.augment, seed=cfg.train.seed
        )  # single frames
        pre_val = ClipDataset(val_v, 1, 1, 1, d.size)
        fit(
            pre,
            pre_cfg,
            make_dataloader(pre_ds, d.batch_size * nf, shuffle=True, seed=cfg.train.seed),
            make_dataloader(pre_val, d.batch_size * nf),
        )
        start_state = pre.state_dict()
    module = SegModule(kind, kwargs, optim, cfg.bce_weight, cfg.dice_weight)
    if start_state is not None:
        module.load_state_dict(start_state)
    train_dl = make_dataloader(
        train_ds, d.batch_size, shuffle=True, seed=cfg.train.seed, num_workers=d.num_workers
    )
    return fit(module, cfg.train, train_dl, val_dl, export_config={"data": dataclasses.asdict(d)})


def run_evaluate(cfg) -> dict:
    model, hp = load_trained(cfg.checkpoint)
    nf = hp["model"].get("num_frames", 5)
    ds = ClipDataset(scan_videos(cfg.data), nf, cfg.stride, None, cfg.size)
    metrics = evaluate_model(model, ds, cfg.batch_size, cfg.skip_ends, cfg.device)
    if cfg.out:
        write_json(cfg.out, metrics)
    return metrics


def overlay(frame: np.ndarray, prob: np.ndarray, threshold: float = 0.5, color=(0, 255, 80)) -> np.ndarray:
    """RGB uint8 frame with the predicted mask tinted in and its outline drawn."""
    m = prob >= threshold
    out = frame.astype(np.float32).copy()
    out[m] = 0.55 * out[m] + 0.45 * np.array(color, dtype=np.float32)
    edge = m & ~(
        np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1)
    )  # boundary pixels
    out[edge] = color
    return out.clip(0, 255).astype(np.uint8)


@torch.no_grad()
def run_predict(cfg) -> Path:
    """Every frame of every video under ``cfg.video`` -> ``out/<video>/<stem>.png`` masks and ``out/<video>.gif``."""
    from PIL import Image

    model, hp = load_trained(cfg.checkpoint)
    model.to(cfg.device)
    nf = hp["model"].get("num_frames", 5)
    if hp["kind"] == "unet":
        nf = 1
    out = Path(cfg.out)
    src = Path(cfg.video)
    if src.suffix.lower() in VIDEO_EXTS:
        videos = [read_video_file(src)]
    else:
        videos = [Video(v.name, v.frames, None) for v in scan_videos(src, require_masks=False)]
    for v in videos:
        ds = ClipDataset([v], nf, 1, None, cfg.size)
        n = len(v)
        probs: list[np.ndarray | None] = [None] * n
        for i, s in enumerate(clip_starts(n, nf, 1, None)):
            x = ds[i]["frames"][None].to(cfg.device)
            p = torch.sigmoid(model(x).float())[0, :, 0].cpu().numpy()
            for k in range(nf):
                if s + k < n:
                    probs[s + k] = p[k]
        frames_out = []
        (out / v.name).mkdir(parents=True, exist_ok=True)
        for j, frame in enumerate(v.frames):
            if isinstance(frame, Path):
                with Image.open(frame) as im:
                    rgb = np.asarray(im.convert("RGB"))
                stem = frame.stem
            else:
                rgb, stem = np.asarray(frame), f"{j:05d}"
            prob = (
                np.asarray(
                    Image.fromarray((probs[j] * 255).astype(np.uint8)).resize((rgb.shape[1], rgb.shape[0]), 2)
                )
                / 255.0
            )
            mask = Image.fromarray(((prob >= cfg.threshold) * 255).astype(np.uint8))
            buf = io.BytesIO()
            mask.save(buf, format="PNG")
            atomic_write_bytes(out / v.name / (stem + ".png"), buf.getvalue())
            frames_out.append(Image.fromarray(overlay(rgb, prob, cfg.threshold)))
        buf = io.BytesIO()
        frames_out[0].save(
            buf,
            format="GIF",
            save_all=True,
            append_images=frames_out[1:],
            duration=int(1000 / cfg.gif_fps),
            loop=0,
        )
        atomic_write_bytes(out / f"{v.name}.gif", buf.getvalue())
    return out


def run_benchmark(cfg) -> dict:
    from funet.model import FUnet, PerFrameUNet

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.widths == "paper":
        fkw: dict = {}
        ukw: dict = {}
    elif cfg.widths == "small":
        from funet.demo import SMALL_FUNET, SMALL_UNET

        fkw, ukw = dict(SMALL_FUNET), dict(SMALL_UNET)
    else:
        raise ConfigError(f"widths: expected paper or small, got {cfg.widths!r}")
    h, w = cfg.size
    if h % 32 or w % 32:
        raise ConfigError(f"size: H and W must be multiples of 32, got {h}x{w}")
    fkw["pos_size"] = [h, w] if cfg.widths == "small" else fkw.get("pos_size", [256, 448])
    funet = FUnet(encoder_name=cfg.encoder_name, num_frames=cfg.num_frames, **fkw)
    unet = PerFrameUNet(cfg.encoder_name, **ukw)
    rows = compare_speed(
        {"funet": funet, "unet": unet}, (h, w), cfg.num_frames, cfg.repeats, device=cfg.device
    )
    ratio = rows["funet"]["frames_per_s"] / rows["unet"]["frames_per_s"]
    dev = torch.cuda.get_device_name() if cfg.device.startswith("cuda") else f"cpu x{torch.get_num_threads()}"
    print(
        f"device: {dev}  encoder: {cfg.encoder_name}  clip: 1x{cfg.num_frames}x3x{h}x{w}  widths: {cfg.widths}"
    )
    print(f"{'model':8s} {'frames/s':>10s} {'clips/s':>10s} {'ms/clip':>10s}")
    for name, r in rows.items():
        print(
            f"{name:8s} {r['frames_per_s']:10.2f} {r['clips_per_s']:10.2f} {1000 * r['seconds_per_clip']:10.1f}"
        )
    print(f"FUnet / U-Net frames/s ratio: {ratio:.2f}")
    result = {
        "device": dev,
        "encoder": cfg.encoder_name,
        "size": [h, w],
        "funet_frames_per_s": rows["funet"]["frames_per_s"],
        "funet_clips_per_s": rows["funet"]["clips_per_s"],
        "unet_frames_per_s": rows["unet"]["frames_per_s"],
        "unet_clips_per_s": rows["unet"]["clips_per_s"],
        "ratio": ratio,
    }
    if cfg.out:
        write_json(cfg.out, result)
    return result
