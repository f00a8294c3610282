"""``textdefender`` command line: train | attack | benchmark | demo (thin)."""

from __future__ import annotations

from tenfold_core.cli import App
from textdefender import __version__
from textdefender.config import AttackCommand, BenchmarkCommand, DemoCommand, TrainCommand


def _emit(result: dict) -> dict:
    import json
    import os

    if os.environ.get("LOCAL_RANK", "0") == "0" and result:
        print(json.dumps(result, indent=1, default=str))
    return result


app = App("textdefender", "Benchmark of defenses against adversarial word substitution, and FreeLB++ (arXiv 2108.12777)",
          version=__version__, package="textdefender")  # fmt: skip


@app.command(
    "train", TrainCommand, help="train one defense (base, pgd, freelb, freelbpp, ranmask)", trains=True
)
def train_cmd(cfg: TrainCommand) -> dict:
    from textdefender.train import train

    return _emit(train(cfg))


@app.command("attack", AttackCommand, help="attack a trained defense under the shared protocol")
def attack_cmd(cfg: AttackCommand) -> dict:
    from textdefender.evaluate import attack

    return _emit(attack(cfg))


@app.command("benchmark", BenchmarkCommand, help="defenses x attacks x seeds, resumable; table, CSV, plot",
             trains=True)  # fmt: skip
def benchmark_cmd(cfg: BenchmarkCommand) -> dict:
    from textdefender.benchmark import benchmark

    return _emit(benchmark(cfg))


@app.command("demo", DemoCommand, help="embedded demo: base vs FreeLB vs FreeLB++ on synthetic sentiment")
def demo_cmd(cfg: DemoCommand) -> dict:
    from textdefender.demo import demo

    return _emit(demo(cfg))


main = app.main

if __name__ == "__main__":
    raise SystemExit(main())
