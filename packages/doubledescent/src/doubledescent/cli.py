"""``doubledescent sweep | report | demo``."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from tenfold_core.cli import App, arg

from . import __version__
from .demo import DemoConfig, run_demo
from .report import write_report
from .sweep import SweepConfig, run_sweep
from .tsne import TsneConfig, feature_tsne

app = App(
    "doubledescent",
    "Model-wise double descent under label noise + learned-feature k-NN (arXiv 2310.13572)",
    __version__,
)


@app.command(
    "sweep", SweepConfig, help="train widths x noise levels x seeds; resumable; results.csv + report"
)
def sweep(cfg: SweepConfig):
    run = run_sweep(cfg)
    write_report(run)
    print(f"results: {run / 'results.csv'}; report: {run / 'report.md'}")


@dataclass
class ReportConfig:
    run_dir: str = arg(help="a sweep's run folder (with results.csv)", positional=True)
    out: str | None = arg(
        None, help="where to write report.md, metrics.json and PNGs (default: the run folder)"
    )
    threshold_acc: float = arg(1.0, help="train accuracy that defines the interpolation threshold")


@app.command("report", ReportConfig, help="plots, report.md and headline numbers from a run folder")
def report(cfg: ReportConfig):
    metrics = write_report(cfg.run_dir, cfg.out, cfg.threshold_acc)
    json.dump(metrics, sys.stdout, indent=1)
    print()


@app.command("demo", DemoConfig, help="offline CPU demo: SimpleFC on digits at 20 % and 0 % noise")
def demo(cfg: DemoConfig):
    metrics = run_demo(cfg)
    json.dump(metrics, sys.stdout, indent=1)
    print()


@app.command(
    "tsne", TsneConfig, help="t-SNE of learned features for a few widths of a run (retrains those units)"
)
def tsne(cfg: TsneConfig):
    print(feature_tsne(cfg))


main = app.main
