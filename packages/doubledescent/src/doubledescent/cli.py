"""``doubledescent train | sweep | evaluate | report | tsne | demo`` (thin: the verbs import their modules lazily)."""

from __future__ import annotations

import contextlib

from tenfold_core.cli import App

from . import __version__
from .config import (
    DemoCommand,
    EvaluateCommand,
    ReportCommand,
    SweepCommand,
    TrainCommand,
    TsneCommand,
    is_rank_zero,
)

app = App(
    "doubledescent",
    "Model-wise double descent under label noise + learned-feature k-NN (arXiv 2310.13572)",
    version=__version__,
    package="doubledescent",
)

_quiet = [0]


@contextlib.contextmanager
def quiet():
    """Kept for callers of the verb functions (the demo calling sweep and report): the functions return their
    results and never print; the App prints a verb's result (JSON, rank 0) only when it runs from the command line."""
    _quiet[0] += 1
    try:
        yield
    finally:
        _quiet[0] -= 1


app.command("train", TrainCommand, help="train one unit (model width, noise, seed) into a run folder", trains=True,
            run="doubledescent.train:run_train")  # fmt: skip


@app.command(
    "sweep",
    SweepCommand,
    help="train widths x noise levels x seeds; resumable; results.csv + report",
    trains=True,
)
def sweep(cfg: SweepCommand) -> dict:
    from .report import write_report
    from .sweep import run_sweep

    run = run_sweep(cfg)
    if not is_rank_zero():
        return {}
    metrics = write_report(run, threshold_acc=cfg.threshold_acc)
    return {"results": str(run / "results.csv"), "report": str(run / "report.md"), **metrics}


@app.command(
    "evaluate", EvaluateCommand, help="metrics of a unit's run folder (train's out_dir or a sweep's units/X)"
)
def evaluate(cfg: EvaluateCommand) -> dict:
    from .evaluate import evaluate_run

    return evaluate_run(cfg.run_dir, cfg.knn_k, cfg.knn_metric)


@app.command("report", ReportCommand, help="plots, report.md and headline numbers from a run folder")
def report(cfg: ReportCommand) -> dict:
    from .report import write_report

    return write_report(cfg.run_dir, cfg.out, cfg.threshold_acc)


@app.command("tsne", TsneCommand, help="t-SNE of learned features for a few widths of a sweep's stored units")
def tsne(cfg: TsneCommand) -> dict:
    from .tsne import feature_tsne

    return {"png": str(feature_tsne(cfg))}


app.command("demo", DemoCommand, help="offline CPU demo: the sweep and report verbs with the demo preset",
            run="doubledescent.demo:run_demo")  # fmt: skip

main = app.main
