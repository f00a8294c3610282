"""``textdefender demo``: base vs FreeLB vs FreeLB++ (tiny BERT, synthetic sentiment), TextFooler-style attack on
100 examples, through the package's own ``benchmark`` verb (resumable)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from textdefender.config import DemoCommand

__all__ = ["demo"]


def demo(cfg: DemoCommand) -> dict:
    from tenfold_core.cli import load_preset
    from tenfold_core.report import write_demo_outputs
    from textdefender.benchmark import benchmark

    out = Path(cfg.out)
    bcfg = load_preset("textdefender", "demo", "benchmark")
    bcfg = dataclasses.replace(bcfg, out=str(out / "benchmark"), seeds=list(range(cfg.seeds)))
    res = benchmark(bcfg)
    metrics = {"n_attacked": bcfg.attack.n_examples, "seeds": cfg.seeds}
    for r in res["rows"]:
        d = r["defense"]
        metrics[f"{d}_clean"] = r["Clean%"]
        metrics[f"{d}_aua"] = r["AUA%"]
        metrics[f"{d}_suc"] = r["Suc%"]
        metrics[f"{d}_queries"] = r["#Query"]
        metrics[f"{d}_cost"] = r["Cost"]
    if "freelbpp_aua" in metrics and "base_aua" in metrics:
        metrics["freelbpp_minus_base_aua"] = metrics["freelbpp_aua"] - metrics["base_aua"]
    table = (out / "benchmark" / "table.md").read_text()
    report = ("# textdefender demo\n\nSynthetic sentiment language, tiny BERT, base vs FreeLB vs FreeLB++ under one "
              f"protocol ({bcfg.attack.n_examples} attacked examples, {cfg.seeds} seed(s)).\n\n{table}\n")  # fmt: skip
    import shutil

    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "benchmark" / "benchmark.png", out / "benchmark.png")
    write_demo_outputs(out, metrics, report)
    return metrics
