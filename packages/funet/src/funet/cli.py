"""`funet train | evaluate | predict | benchmark | demo`."""

from __future__ import annotations

from dataclasses import dataclass, field

from funet import __version__
from funet.options import DataOptions, FunetTrainConfig, ModelOptions, PaperOptim
from tenfold_core.cli import App, arg

app = App("funet", "Frame-UNet (FUnet) video segmentation for endoscopic surgery", version=__version__)


@dataclass
class TrainCmd:
    data: DataOptions = field(default_factory=DataOptions)
    model: ModelOptions = field(default_factory=ModelOptions)
    optim: PaperOptim = field(default_factory=PaperOptim)
    train: FunetTrainConfig = field(default_factory=FunetTrainConfig)
    bce_weight: float = arg(1.0, help="weight of BCE on the masks")
    dice_weight: float = arg(0.0, help="weight of soft Dice (0: the paper's BCE only)")
    pretrain_epochs: int = arg(
        0, help="image pre-training epochs first (frame gate off), then clip fine-tuning"
    )


@app.command(
    "train", TrainCmd, help="train FUnet or the per-frame U-Net (Lightning: resume, bf16, multi-GPU)"
)
def train_cmd(cfg: TrainCmd):
    from funet.runner import run_training

    res = run_training(cfg)
    print(f"weights: {res.weights}  best val_dice: {res.best_score}")
    return 0


@dataclass
class EvaluateCmd:
    checkpoint: str = arg(
        help="a `funet train` output folder (model.safetensors + config.json)", positional=True
    )
    data: str = arg(help="data folder (SUN-SEG or simple layout)", positional=True)
    size: list[int] = arg([256, 448], help="frame size H W")
    stride: int = arg(1, help="frame stride inside a clip")
    batch_size: int = arg(4, help="clips per batch")
    skip_ends: bool = arg(True, help="skip the first and last frame of each clip (VPS convention)")
    device: str = arg("cpu", help="cpu or cuda")
    out: str | None = arg(None, help="write the metrics to this JSON file")


@app.command(
    "evaluate", EvaluateCmd, help="Dice/IoU@0.5, maxDice/maxIoU, S-measure, max E-measure on a folder"
)
def evaluate_cmd(cfg: EvaluateCmd):
    from funet.runner import run_evaluate

    metrics = run_evaluate(cfg)
    for k, v in metrics.items():
        print(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}")
    return 0


@dataclass
class PredictCmd:
    checkpoint: str = arg(help="a `funet train` output folder", positional=True)
    video: str = arg(help="a folder of frames (or a dataset folder: every video in it)", positional=True)
    out: str = arg("runs/predict", help="mask PNGs and overlay.gif go here")
    size: list[int] = arg([256, 448], help="network input size H W (masks are resized back)")
    threshold: float = arg(0.5, help="probability threshold for the masks")
    gif_fps: float = arg(10.0, help="overlay GIF frame rate")
    device: str = arg("cpu", help="cpu or cuda")


@app.command("predict", PredictCmd, help="a video folder -> mask PNGs and an overlay GIF")
def predict_cmd(cfg: PredictCmd):
    from funet.runner import run_predict

    out = run_predict(cfg)
    print(f"wrote {out}")
    return 0


@dataclass
class BenchmarkCmd:
    encoder_name: str = arg("tu-res2net50d", help="encoder shared by FUnet and the per-frame U-Net")
    size: list[int] = arg([256, 448], help="frame size H W")
    num_frames: int = arg(5, help="frames per clip")
    widths: str = arg("paper", help="paper (official widths, smp.Unet defaults) or small (the demo's widths)")
    repeats: int = arg(5, help="timed forwards (median)")
    device: str = arg("cpu", help="cpu or cuda")
    threads: int | None = arg(None, help="torch CPU threads (default: torch's)")
    out: str | None = arg(None, help="write the numbers to this JSON file")


@app.command(
    "benchmark", BenchmarkCmd, help="batch-1 frames/s and clips/s: FUnet vs per-frame U-Net, same run"
)
def benchmark_cmd(cfg: BenchmarkCmd):
    from funet.runner import run_benchmark

    run_benchmark(cfg)
    return 0


@dataclass
class DemoCmd:
    out: str = arg("runs/funet-demo", help="metrics.json, report.md and PNGs go here")
    seed: int = arg(0, help="seed")
    size: int = arg(64, help="square frame size (multiple of 32)")
    train_videos: int = arg(24, help="synthetic training videos")
    test_videos: int = arg(8, help="synthetic test videos")
    frames: int = arg(15, help="frames per video")
    steps: int = arg(50, help="training steps per model")
    encoder_name: str = arg("resnet18", help="encoder for both models")
    threads: int | None = arg(None, help="torch CPU threads (default: torch's)")


@app.command("demo", DemoCmd, help="offline CPU demo: FUnet vs per-frame U-Net on synthetic endoscopy clips")
def demo_cmd(cfg: DemoCmd):
    from funet.demo import run_demo

    metrics = run_demo(cfg)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
    return 0


main = app.main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
