"""``textdefender`` command line: train | attack | benchmark | demo (thin)."""

from __future__ import annotations

from tenfold_core.cli import App
from textdefender import __version__
from textdefender.config import AttackCommand, BenchmarkCommand, DemoCommand, TrainCommand

app = App("textdefender", "Benchmark of defenses against adversarial word substitution, and FreeLB++ (arXiv 2108.12777)",
          version=__version__, package="textdefender")  # fmt: skip

app.command("train", TrainCommand, help="train one defense (base, pgd, freelb, freelbpp, ranmask)", trains=True,
            run="textdefender.train:train")  # fmt: skip
app.command("attack", AttackCommand, help="attack a trained defense under the shared protocol",
            run="textdefender.evaluate:attack")  # fmt: skip
app.command("benchmark", BenchmarkCommand, help="defenses x attacks x seeds, resumable; table, CSV, plot",
            trains=True, run="textdefender.benchmark:benchmark")  # fmt: skip
app.command("demo", DemoCommand, help="embedded demo: base vs FreeLB vs FreeLB++ on synthetic sentiment",
            run="textdefender.demo:demo")  # fmt: skip

main = app.main

if __name__ == "__main__":
    raise SystemExit(main())
