"""`funet train | evaluate | predict | benchmark | export | demo` (thin: each verb imports its module when it runs)."""

from __future__ import annotations

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


@app.command(
    "train", TrainCommand, help="train FUnet or a per-frame U-Net (Lightning: resume, bf16, DDP)", trains=True
)
def train_cmd(cfg: TrainCommand) -> dict:
    from funet.train import run_training

    res = run_training(cfg)
    out = {"out_dir": str(res.out_dir), "weights": str(res.weights) if res.weights else None}
    out["best_score"] = res.best_score
    out["monitor"] = cfg.train.monitor
    return out


def _summary(metrics: dict, cfg: EvaluateCommand) -> dict:
    return {k: v for k, v in metrics.items() if k != "cases"} | {"cases": len(metrics.get("cases", {}))}


app.command("evaluate", EvaluateCommand, help="VPS/SUN-SEG toolbox metrics (or --protocol frames) on a data folder",
            run="funet.predict:run_evaluate", show=_summary)  # fmt: skip
app.command("predict", PredictCommand, help="soft maps Pred/<method>/<dataset>/<case>/*.png, clip or --stream",
            run="funet.predict:run_predict")  # fmt: skip
app.command("benchmark", BenchmarkCommand, help="batch-1 latency: FUnet clip and streaming vs per-frame U-Nets",
            run="funet.predict:run_benchmark")  # fmt: skip
app.command("export", ExportCommand, help="export the causal streaming step (torchscript or onnx)",
            run="funet.predict:run_export")  # fmt: skip
app.command("demo", DemoCommand, help="offline CPU demo: FUnet vs per-frame U-Nets on synthetic endoscopy clips",
            run="funet.demo:run_demo",
            show=lambda m, cfg: {k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()})  # fmt: skip

main = app.main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
