"""The ``evaluate``, ``predict``, ``benchmark`` and ``export`` verbs (cli.py stays thin).

``predict`` writes soft maps in the VPS toolbox layout ``<out>/Pred/<method>/<dataset>/<case>/<frame>.png`` (8-bit
probability at the frame's own size), so the official toolbox can score our output. Frames are decoded, predicted and
written one at a time: memory does not grow with the video length. ``--stream`` is the causal real-time mode (one
new frame per step, a ring buffer of the last F - 1 frames' encoder features; see ``funet.model.StreamStep``).
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from funet.config import BenchmarkCommand, EvaluateCommand, ExportCommand, FUnetConfig, PredictCommand
from funet.data import (
    IMAGE_EXTS,
    VIDEO_EXTS,
    find_splits,
    frame_sort_key,
    iter_video_frames,
    normalize,
    scan_videos,
)
from funet.evaluate import evaluate_model, evaluate_splits, model_frames, to_uint8
from funet.model import FUnet, StreamingPredictor, StreamStep, build_model
from funet.train import load_funet_run
from tenfold_core.errors import ConfigError, DataError
from tenfold_core.io import atomic_write_bytes, write_json

__all__ = ["run_evaluate", "run_predict", "run_benchmark", "run_export", "overlay", "trained_size"]


def trained_size(conf: dict, asked: list[int] | None, where: str = "size") -> tuple[int, int]:
    """The input size the run was trained at; asking for another one is an error (no silent interpolation)."""
    try:
        size = tuple(int(v) for v in conf["data"]["size"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(
            "the run's config.json records no data.size; pass a `funet train` output folder"
        ) from None
    if asked is not None and tuple(asked) != size:
        raise ConfigError(
            f"{where}: the model was trained at {size[0]}x{size[1]}, got {asked[0]}x{asked[1]} "
            "(resize your frames, or retrain at that size)"
        )
    return size  # type: ignore[return-value]


def run_evaluate(cfg: EvaluateCommand) -> dict:
    model, conf = load_funet_run(cfg.run)
    size = trained_size(conf, cfg.size)
    splits = find_splits(cfg.data)
    try:
        if splits is None:
            metrics = evaluate_model(
                model, scan_videos(cfg.data), size, cfg.protocol, cfg.batch_size, cfg.device
            )
        elif (
            cfg.protocol == "vps"
        ):  # SUN-SEG test layout: per split, Easy / Hard / Seen / Unseen groups, per case
            metrics = evaluate_splits(model, {k: scan_videos(p) for k, p in splits.items()}, size, cfg.batch_size,
                                      cfg.device)  # fmt: skip
        else:
            metrics = {"protocol": "frames", "splits": {}}
            for k, p in splits.items():
                metrics["splits"][k] = evaluate_model(
                    model, scan_videos(p), size, "frames", cfg.batch_size, cfg.device
                )
    except ValueError as e:
        raise DataError(f"{cfg.data}: {e}") from None
    if cfg.out:
        write_json(cfg.out, metrics)
    return metrics


def overlay(frame: np.ndarray, prob: np.ndarray, threshold: float = 0.5, color=(0, 255, 80)) -> np.ndarray:
    """RGB uint8 frame with the predicted mask tinted in and its outline drawn."""
    m = prob >= threshold
    out = frame.astype(np.float32).copy()
    out[m] = 0.55 * out[m] + 0.45 * np.array(color, dtype=np.float32)
    edge = m & ~(np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1))
    out[edge] = color
    return out.clip(0, 255).astype(np.uint8)


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _cases(src: Path) -> list[tuple[str, Iterator[tuple[str, np.ndarray]]]]:
    """(case name, lazy frame iterator) for a video file, a frames folder, or a data folder of videos."""
    if src.is_file():
        if src.suffix.lower() not in VIDEO_EXTS:
            raise DataError(f"{src}: expected a video file ({', '.join(VIDEO_EXTS)}) or a folder of frames")
        return [(src.stem, iter_video_frames(src))]
    if not src.is_dir():
        raise DataError(f"{src}: no such video file or folder")
    if any(p.suffix.lower() in IMAGE_EXTS for p in src.iterdir() if p.is_file()):
        return [(src.parent.name if src.name == "frames" else src.name, iter_video_frames(src))]
    videos = scan_videos(src, require_masks=False)
    return [(v.name, ((f.stem, _rgb(f)) for f in v.frames)) for v in videos]


def _rgb(path: Path) -> np.ndarray:
    from funet.data import _load_rgb

    return _load_rgb(path)


def _to_input(rgb: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0
    if tuple(t.shape[-2:]) != tuple(size):
        t = F.interpolate(t[None], size=size, mode="bilinear", align_corners=False)[0]
    return normalize(t)


def _clip_probs(model, frames: Iterator[tuple[str, np.ndarray]], size, nf: int, device):
    """Clip mode, streamed: F frames at a time (the last clip padded with its last frame)."""
    buf: list[tuple[str, np.ndarray]] = []

    def flush():
        x = torch.stack([_to_input(rgb, size) for _, rgb in buf])
        while len(x) < nf:
            x = torch.cat([x, x[-1:]])
        t = time.perf_counter()
        with torch.no_grad():
            logits, g = model(x[None].to(device), return_gates=True)
        dt = (time.perf_counter() - t) / len(buf)
        p = torch.sigmoid(logits.float())[0, :, 0].cpu()
        for k, (stem, rgb) in enumerate(buf):
            yield stem, rgb, p[k], float(g[0, k]) if g is not None else float("nan"), dt

    for item in frames:
        buf.append(item)
        if len(buf) == nf:
            yield from flush()
            buf = []
    if buf:
        yield from flush()


def _stream_probs(model, frames: Iterator[tuple[str, np.ndarray]], size, device):
    sp = StreamingPredictor(model, device)
    for stem, rgb in frames:
        t = time.perf_counter()
        prob, gate = sp.push(_to_input(rgb, size))
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        yield stem, rgb, prob.cpu(), gate, time.perf_counter() - t


def run_predict(cfg: PredictCommand) -> dict:
    """Every frame of every case -> soft PNG maps (and optionally masks / overlays); returns timing per case."""
    model, conf = load_funet_run(cfg.run)
    size = trained_size(conf, cfg.size)
    model.to(cfg.device)
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out: {out} exists and is not a folder")
    pred_root = out / "Pred" / cfg.method / cfg.dataset
    summary: dict = {"pred_root": str(pred_root), "mode": "stream" if cfg.stream else "clip", "cases": {}}
    for case, frames in _cases(Path(cfg.video)):
        if cfg.stream:
            gen = _stream_probs(model, frames, size, cfg.device)
        else:
            gen = _clip_probs(model, frames, size, model_frames(model), cfg.device)
        lat, n = [], 0
        for stem, rgb, prob, _gate, dt in gen:
            hw = rgb.shape[:2]
            u8 = to_uint8(prob, hw)
            atomic_write_bytes(pred_root / case / f"{stem}.png", _png(u8))
            if cfg.masks:
                atomic_write_bytes(
                    out / "Mask" / case / f"{stem}.png",
                    _png(((u8 / 255.0 >= cfg.threshold) * 255).astype(np.uint8)),
                )
            if cfg.overlay:
                atomic_write_bytes(
                    out / "Overlay" / case / f"{stem}.png", _png(overlay(rgb, u8 / 255.0, cfg.threshold))
                )
            lat.append(dt)
            n += 1
            if n % 100 == 0:
                ms = 1000 * float(np.median(lat[-100:]))
                print(f"{case}: {n} frames, {ms:.1f} ms/frame ({1000 / ms:.1f} frames/s)", file=sys.stderr)
        if n == 0:
            raise DataError(f"{case}: no frames")
        med = float(np.median(lat[1:] if len(lat) > 1 else lat))
        summary["cases"][case] = {"frames": n, "ms_per_frame": 1000 * med, "frames_per_s": 1.0 / med}
    return summary


# ------------------------------------------------------------------------------------------------ benchmark
@torch.no_grad()
def stream_latency(model: FUnet, size, frames: int, repeats: int, device="cpu", dtype=torch.float32) -> float:
    """Median seconds per new frame of the streaming predictor (warm buffer)."""
    sp = StreamingPredictor(model, device, dtype)
    x = torch.randn(frames, 3, *size)
    sp.push(x[0])
    times = []
    for _ in range(repeats):
        for k in range(frames):
            t = time.perf_counter()
            sp.push(x[k])
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    return float(np.median(times))


def time_interleaved(fns: dict, repeats: int, warmup: int = 1, device="cpu") -> dict[str, float]:
    """Median seconds of each callable, measured round-robin (A, B, C, A, B, C, ...) so that load changes on a
    shared machine hit all of them alike."""
    cuda = torch.device(device).type == "cuda"
    times: dict[str, list[float]] = {k: [] for k in fns}
    with torch.inference_mode():
        for r in range(warmup + repeats):
            for name, fn in fns.items():
                if cuda:
                    torch.cuda.synchronize()
                t = time.perf_counter()
                fn()
                if cuda:
                    torch.cuda.synchronize()
                if r >= warmup:
                    times[name].append(time.perf_counter() - t)
    return {k: float(np.median(v)) for k, v in times.items()}


def run_benchmark(cfg: BenchmarkCommand) -> dict:
    """Batch-1 latency per frame at one size, every model timed in one interleaved loop: FUnet streaming (one new
    frame through the encoder, the gate over the cached window), FUnet clip mode (a clip forward / F; the paper's
    convention counts clips/s), the per-frame U-Net and the stride-8 U-Net with the same encoder. With
    ``profile`` also the stages of the streaming step (encoder, the two LightRFBs, the frame gate over the window,
    CSA U-Net branch + stride-8 decoder) and of the U-Net (encoder, decoder), so the extra cost has names."""
    import dataclasses

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dtype = getattr(torch, cfg.dtype)
    dev = torch.device(cfg.device)
    h, w = cfg.size
    mcfg = dataclasses.replace(cfg.model, kind="funet")
    base = {f: getattr(FUnetConfig(), f) for f in ("baseline_decoder_channels", "baseline_encoder_depth")}
    if cfg.baseline_decoder_channels:
        base["baseline_decoder_channels"] = list(cfg.baseline_decoder_channels)
    unet_cfg = FUnetConfig(kind="unet", encoder_name=mcfg.encoder_name, **base)
    funet = build_model(mcfg).eval().to(dev, dtype)
    unet = build_model(unet_cfg).eval().to(dev, dtype)
    unet_s8 = build_model(dataclasses.replace(unet_cfg, kind="unet_s8")).eval().to(dev, dtype)
    nf = mcfg.num_frames
    x = torch.randn(1, 3, h, w, device=dev, dtype=dtype)
    clip = torch.randn(1, nf, 3, h, w, device=dev, dtype=dtype)
    sp = StreamingPredictor(funet, dev, dtype)
    sp.push(x[0])  # fills the ring buffer
    fns = {
        "funet_stream": lambda: sp.push(x[0]),
        "unet": lambda: unet.frame_logits(x),
        "unet_s8": lambda: unet_s8.frame_logits(x),
    }
    if cfg.clip:
        fns["funet_clip"] = lambda: funet(clip)
    if cfg.profile:
        with torch.inference_mode():
            feats = funet.encoder(x)
            low, high = funet.low_rfb(feats[3]), funet.high_rfb(feats[4])
            window = low.repeat(1, nf, 1, 1)
            ufeats = unet.unet.encoder(x)
        fns.update({
            "stage_encoder": lambda: funet.encoder(x),
            "stage_light_rfb": lambda: (funet.low_rfb(feats[3]), funet.high_rfb(feats[4])),
            "stage_frame_gate": (lambda: funet.frame_attention(window)) if funet.frame_attention else (lambda: None),
            "stage_unet_branch_decoder": lambda: funet.frame_logits(low, high),
            "unet_stage_encoder": lambda: unet.unet.encoder(x),
            "unet_stage_decoder": lambda: unet.unet.segmentation_head(unet.unet.decoder(ufeats)),
        })  # fmt: skip
    sec = time_interleaved(fns, cfg.repeats, 1, dev)
    if "funet_clip" in sec:
        sec["funet_clip"] /= nf
    devname = torch.cuda.get_device_name() if dev.type == "cuda" else f"cpu x{torch.get_num_threads()}"
    result: dict = {
        "device": devname,
        "encoder": mcfg.encoder_name,
        "size": [h, w],
        "dtype": cfg.dtype,
        "num_frames": nf,
        "repeats": cfg.repeats,
    }
    for k in ("funet_stream", "funet_clip", "unet", "unet_s8"):
        if k in sec:
            result[f"{k}_ms_per_frame"] = 1000 * sec[k]
            result[f"{k}_frames_per_s"] = 1 / sec[k]
    if "funet_clip" in sec:
        result["funet_clips_per_s"] = 1 / (nf * sec["funet_clip"])
    result.update({f"{k}_ms": 1000 * v for k, v in sec.items() if "stage_" in k})
    result["stream_over_unet_latency"] = sec["funet_stream"] / sec["unet"]
    result["stream_over_unet_s8_latency"] = sec["funet_stream"] / sec["unet_s8"]
    if cfg.out:
        write_json(cfg.out, result)
    return result


# ------------------------------------------------------------------------------------------------ export
def example_stream_inputs(model: FUnet, size) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        low, high = model.features(torch.zeros(1, 3, *size))
    n = model.config.num_frames - 1
    return (
        torch.randn(1, 3, *size),
        torch.randn(1, n, *low.shape[1:]),
        torch.randn(1, n, *high.shape[1:]),
    )


def export_stream_step(model: FUnet, size, path: str | Path, fmt: str = "torchscript") -> Path:
    """The streaming step as TorchScript (traced) or ONNX (needs the onnx package)."""
    step = StreamStep(model.eval()).eval()
    ex = example_stream_inputs(model, size)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "torchscript":
        with torch.no_grad():
            traced = torch.jit.trace(step, ex, check_trace=False)
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
        atomic_write_bytes(path, buf.getvalue())
        return path
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401
        except ImportError:
            raise ConfigError(
                "format onnx needs the onnx package: pip install 'tenfold-funet[export]'"
            ) from None
        import warnings

        tmp = path.with_name(path.name + ".part")
        with (
            warnings.catch_warnings()
        ):  # tracer notes on shape-dependent Python branches (fixed at export size)
            warnings.simplefilter("ignore")
            torch.onnx.export(
                step, ex, str(tmp), input_names=["frame", "low_hist", "high_hist"],
                output_names=["logits", "gate", "low_hist_out", "high_hist_out"], dynamo=False,
            )  # fmt: skip
        tmp.replace(path)  # a crash mid-export leaves no half-written model behind
        return path
    raise ConfigError(f"format: expected torchscript or onnx, got {fmt!r}")


def run_export(cfg: ExportCommand) -> dict:
    model, conf = load_funet_run(cfg.run)
    if not isinstance(model, FUnet):
        raise ConfigError(
            "export: the streaming step exists for model.kind=funet (a per-frame U-Net is one forward)"
        )
    size = trained_size(conf, None)
    p = export_stream_step(model, size, cfg.out, cfg.format)
    return {"exported": str(p), "format": cfg.format, "inputs": ["frame", "low_hist", "high_hist"],
            "size": list(size), "num_frames": model.config.num_frames}  # fmt: skip


def main_json(result) -> None:
    print(json.dumps(result, indent=1, default=float))


__all__ += ["frame_sort_key", "stream_latency", "export_stream_step", "example_stream_inputs", "main_json"]
