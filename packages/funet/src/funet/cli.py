"""`funet train | evaluate | predict | benchmark | export | demo` (thin: each verb imports its module inside)."""

from __future__ import annotations

import json

from funet import __version__
from funet.config import (
    BenchmarkCommand,
    DemoCommand,
    EvaluateCommand,
    ExportCommand,
    PredictCommand,
    TrainCommand,
)
from tenfold_core.cli import App

app = App(
    "funet",
    "Frame-UNet (FUnet) video segmentation for endoscopic surgery",
    version=__version__,
    package="funet",
)


def _print(result: dict) -> None:
    print(json.dumps(result, indent=1, default=float))


@app.command(
    "train", TrainCommand, help="train FUnet or a per-frame U-Net (Lightning: resume, bf16, DDP)", trains=True
)
def train_cmd(cfg: TrainCommand):
    from funet.train import run_training

    res = run_training(cfg)
    out = {"out_dir": str(res.out_dir), "weights": str(res.weights) if res.weights else None}
    out["best_score"] = res.best_score
    out["monitor"] = cfg.train.monitor
    _print(out)
    return out


@app.command(
    "evaluate", EvaluateCommand, help="VPS/SUN-SEG toolbox metrics (or --protocol frames) on a data folder"
)
def evaluate_cmd(cfg: EvaluateCommand):
    from funet.predict import run_evaluate

    metrics = run_evaluate(cfg)
    _print({k: v for k, v in metrics.items() if k != "cases"} | {"cases": len(metrics.get("cases", {}))})
    return metrics


@app.command(
    "predict", PredictCommand, help="soft maps Pred/<method>/<dataset>/<case>/*.png, clip or --stream"
)
def predict_cmd(cfg: PredictCommand):
    from funet.predict import run_predict

    out = run_predict(cfg)
    _print(out)
    return out


@app.command(
    "benchmark", BenchmarkCommand, help="batch-1 latency: FUnet clip and streaming vs per-frame U-Nets"
)
def benchmark_cmd(cfg: BenchmarkCommand):
    from funet.predict import run_benchmark

    out = run_benchmark(cfg)
    _print(out)
    return out


@app.command("export", ExportCommand, help="export the causal streaming step (torchscript or onnx)")
def export_cmd(cfg: ExportCommand):
    from funet.predict import run_export

    out = run_export(cfg)
    _print(out)
    return out


@app.command(
    "demo", DemoCommand, help="offline CPU demo: FUnet vs per-frame U-Nets on synthetic endoscopy clips"
)
def demo_cmd(cfg: DemoCommand):
    from funet.demo import run_demo

    metrics = run_demo(cfg)
    _print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
    return metrics


main = app.main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
