"""``textdefender demo``: base vs FreeLB vs FreeLB++ (and the other defenses of the demo preset) on the synthetic
sentiment language with a tiny BERT, one TextFooler-protocol attack on every test text with > 4 words, through the
package's own ``benchmark`` verb (resumable). ``--seeds N`` repeats it over N training seeds; ``metrics.json`` then
holds means, spreads and the per-seed paired differences (the seeds share nothing but the protocol)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from textdefender.config import DemoCommand

__all__ = ["demo", "demo_metrics"]

ORDER = ("base", "freelb", "freelbpp")


def demo_metrics(cells, defenses, n_requested: int) -> dict:
    """Flat metrics from the benchmark's finished cells: per defense the mean Clean / AUA / Suc / #Query / Cost over
    seeds (``_std``: population spread when > 1 seed), the paired AUA differences per seed (FreeLB - base, FreeLB++ -
    FreeLB, FreeLB++ - base: mean, spread, min) and on how many seeds FreeLB++ >= FreeLB >= base holds."""
    cells = [c for c in cells if c.get("mode", "plain") in ("plain", "ensemble")]
    seeds = sorted({int(c["seed"]) for c in cells})
    by = {(c["defense"], int(c["seed"])): c for c in cells}
    base_cost = [by[("base", s)]["train_seconds_per_epoch"] for s in seeds if ("base", s) in by]
    m: dict = {"seeds": len(seeds), "n_requested": n_requested}
    m["n_attacked"] = int(by[next(iter(by))]["n"]) if by else 0
    for d in defenses:
        vals = [by[(d, s)] for s in seeds if (d, s) in by]
        if not vals:
            continue
        for key, col in (("clean", "clean"), ("aua", "aua"), ("suc", "suc"), ("queries", "queries")):
            x = np.array([float(c[key]) for c in vals])
            m[f"{d}_{col}"] = round(float(x.mean()), 2)
            if len(x) > 1:
                m[f"{d}_{col}_std"] = round(float(x.std()), 2)
        if base_cost:
            cost = np.mean([c["train_seconds_per_epoch"] for c in vals]) / np.mean(base_cost)
            m[f"{d}_cost"] = round(float(cost), 2)
    pairs = (("freelb", "base"), ("freelbpp", "freelb"), ("freelbpp", "base"))
    for a, b in pairs:
        diffs = np.array(
            [by[(a, s)]["aua"] - by[(b, s)]["aua"] for s in seeds if (a, s) in by and (b, s) in by]
        )
        if len(diffs):
            m[f"{a}_minus_{b}_aua"] = round(float(diffs.mean()), 2)
            m[f"{a}_minus_{b}_aua_min"] = round(float(diffs.min()), 2)
            if len(diffs) > 1:
                m[f"{a}_minus_{b}_aua_std"] = round(float(diffs.std()), 2)
    if all((d, s) in by for d in ORDER for s in seeds) and seeds:
        holds = [
            by[("freelbpp", s)]["aua"] >= by[("freelb", s)]["aua"] >= by[("base", s)]["aua"] for s in seeds
        ]
        m["ordering_holds_seeds"] = int(sum(holds))
    return m


def demo(cfg: DemoCommand) -> dict:
    import shutil

    from tenfold_core.attack import read_records
    from tenfold_core.cli import load_preset
    from tenfold_core.report import write_demo_outputs
    from textdefender.benchmark import benchmark

    out = Path(cfg.out)
    bcfg = load_preset("textdefender", "demo", "benchmark")
    bcfg = dataclasses.replace(bcfg, out=str(out / "benchmark"), seeds=list(range(cfg.seeds)))
    benchmark(bcfg)
    cells = [c for c in read_records(out / "benchmark" / "cells.jsonl") if int(c["seed"]) in bcfg.seeds]
    metrics = demo_metrics(cells, bcfg.defenses, bcfg.attack.n_examples)
    table = (out / "benchmark" / "table.md").read_text()
    diffs = "\n".join(
        f"- {a} - {b}: {metrics[f'{a}_minus_{b}_aua']:+.2f} AUA points (min over seeds {metrics[f'{a}_minus_{b}_aua_min']:+.2f})"
        for a, b in (("freelb", "base"), ("freelbpp", "freelb"), ("freelbpp", "base"))
        if f"{a}_minus_{b}_aua" in metrics
    )
    holds = metrics.get("ordering_holds_seeds")
    report = (
        "# textdefender demo\n\nSynthetic sentiment language, tiny BERT (clean pre-training stage, then each defense "
        f"fine-tuned from it) under one protocol: {metrics['n_attacked']} attacked test texts, {cfg.seeds} seed(s).\n\n"
        f"{table}\n\nPaired AUA differences (same seed, same pre-trained model):\n\n{diffs}\n"
        + (f"\nFreeLB++ >= FreeLB >= base on {holds} of {metrics['seeds']} seed(s).\n" if holds is not None else "")
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "benchmark" / "benchmark.png", out / "benchmark.png")
    write_demo_outputs(out, metrics, report)
    return metrics
