"""``ibrobust`` command line: train | evaluate | attack | sweep-beta | demo (thin: the work is in train/evaluate)."""

from __future__ import annotations

from ibrobust import __version__
from ibrobust.config import AttackCommand, DemoCommand, EvaluateCommand, SweepBetaCommand, TrainCommand
from tenfold_core.cli import App

app = App("ibrobust", "Adversarial robustness by an information bottleneck (arXiv 2206.05511)",
          version=__version__, package="ibrobust")  # fmt: skip

app.command("train", TrainCommand, help="train IB, IB+FreeLB (default) or a baseline", trains=True,
            run="ibrobust.train:train")  # fmt: skip
app.command("evaluate", EvaluateCommand, help="clean accuracy, deterministic (z = mu) and sampled",
            run="ibrobust.evaluate:evaluate")  # fmt: skip
app.command("attack", AttackCommand, help="attack a run under the shared protocol (deterministic / sampled / EOT)",
            run="ibrobust.evaluate:attack")  # fmt: skip
app.command("sweep-beta", SweepBetaCommand, help="one IB model per beta: clean vs accuracy under attack, plot",
            trains=True, run="ibrobust.sweep:sweep_beta")  # fmt: skip
app.command("demo", DemoCommand, help="embedded demo: base vs IB vs IB+FreeLB on synthetic sentiment, 100 attacks",
            run="ibrobust.demo:demo")  # fmt: skip

main = app.main

if __name__ == "__main__":
    raise SystemExit(main())
