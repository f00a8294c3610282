"""``ibrobust`` command line: train | evaluate | attack | sweep-beta | demo (thin: the work is in train/evaluate)."""

from __future__ import annotations

from ibrobust import __version__
from ibrobust.config import AttackCommand, DemoCommand, EvaluateCommand, SweepBetaCommand, TrainCommand
from tenfold_core.cli import App


def _emit(result: dict) -> dict:
    """Print a verb's result as one JSON object (rank 0 only under DDP)."""
    import json
    import os

    if os.environ.get("LOCAL_RANK", "0") == "0":
        print(json.dumps(result, indent=1, default=str))
    return result


app = App("ibrobust", "Adversarial robustness by an information bottleneck (arXiv 2206.05511)",
          version=__version__, package="ibrobust")  # fmt: skip


@app.command("train", TrainCommand, help="train IB, IB+FreeLB (default) or a baseline", trains=True)
def train_cmd(cfg: TrainCommand) -> dict:
    from ibrobust.train import train

    return _emit(train(cfg))


@app.command("evaluate", EvaluateCommand, help="clean accuracy, deterministic (z = mu) and sampled")
def evaluate_cmd(cfg: EvaluateCommand) -> dict:
    from ibrobust.evaluate import evaluate

    return _emit(evaluate(cfg))


@app.command(
    "attack", AttackCommand, help="attack a run under the shared protocol (deterministic / sampled / EOT)"
)
def attack_cmd(cfg: AttackCommand) -> dict:
    from ibrobust.evaluate import attack

    return _emit(attack(cfg))


@app.command("sweep-beta", SweepBetaCommand, help="one IB model per beta: clean vs accuracy under attack, plot",
             trains=True)  # fmt: skip
def sweep_cmd(cfg: SweepBetaCommand) -> dict:
    from ibrobust.sweep import sweep_beta

    return _emit(sweep_beta(cfg))


@app.command(
    "demo", DemoCommand, help="embedded demo: base vs IB vs IB+FreeLB on synthetic sentiment, 100 attacks"
)
def demo_cmd(cfg: DemoCommand) -> dict:
    from ibrobust.demo import demo

    return _emit(demo(cfg))


main = app.main

if __name__ == "__main__":
    raise SystemExit(main())
