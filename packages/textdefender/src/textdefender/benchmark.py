"""``benchmark``: defenses x attacks x seeds in one resumable run.

Layout under ``out``: ``runs/<defense>-seed<s>/`` (a trained run; its ``train.json`` holds the training time),
``records/<defense>-seed<s>/<recipe>-<mode>.jsonl`` (per-example attack records, resumable), ``cells.jsonl`` (one
line per finished cell, fsynced). A rerun skips finished cells, resumes a killed training (``last.ckpt``) or attack
(records), and rebuilds the table from ``cells.jsonl`` only, so it is identical after a resume. Table: Clean / AUA /
Suc / #Query (mean over seeds, std when > 1 seed) and Cost (training seconds per epoch relative to base).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tenfold_core.io import is_rank_zero
from textdefender.config import BenchmarkCommand, TrainCommand

__all__ = ["benchmark", "build_table"]


def _defense_cfg(cfg: BenchmarkCommand, name: str, seed: int | None = None):
    """The defense section of one run. ADA / MixADA attack the training set under the benchmark's own protocol
    (synonyms, K, rho_max, similarity, budget from ``attack``; recipe and sample from ``defense.aug_*``), against
    this seed's base run when base is benchmarked before them (else ``model.init_from``: the pre-trained stage)."""
    d = dataclasses.replace(cfg.defense, name=name)
    if name in ("ada", "mixada"):
        a = cfg.attack
        d = dataclasses.replace(d, aug_synonyms=a.synonyms, aug_k=a.k, aug_max_rate=a.max_rate,
                                aug_query_factor=a.query_factor, aug_similarity=a.similarity_threshold)  # fmt: skip
        names = list(cfg.defenses)
        if (
            seed is not None
            and "base" in names
            and names.index("base") < names.index(name)
            and not d.aug_victim
        ):
            d = dataclasses.replace(d, aug_victim=str(Path(cfg.out) / "runs" / f"base-seed{seed}"))
    return d


def benchmark(cfg: BenchmarkCommand, max_cells: int | None = None) -> dict:
    """Run (or resume) the benchmark; ``max_cells`` stops after that many new cells (a simulated kill)."""
    from tenfold_core.attack import RecordWriter, read_records
    from tenfold_core.io import write_json
    from textdefender.data import load_data
    from textdefender.evaluate import attack_model, load_trained
    from textdefender.train import train

    out = Path(cfg.out)
    cells_path = out / "cells.jsonl"
    done = {(c["defense"], c["recipe"], c["seed"], c["mode"]) for c in read_records(cells_path, repair=True)}
    data = load_data(cfg.data)
    new = 0
    for seed in cfg.seeds:
        model_cfg = cfg.model
        if cfg.pretrain_epochs > 0:
            pre_dir = out / "runs" / f"pretrain-seed{seed}"
            if not (pre_dir / "train.json").is_file():
                pcfg = TrainCommand(model=cfg.model, data=cfg.data, defense=_defense_cfg(cfg, "base"),
                                    train=dataclasses.replace(cfg.train, out_dir=str(pre_dir), seed=seed,
                                                              max_epochs=cfg.pretrain_epochs),
                                    optim=dataclasses.replace(cfg.optim, lr=cfg.pretrain_lr))  # fmt: skip
                pinfo = train(pcfg)
                if is_rank_zero():
                    write_json(pre_dir / "train.json", pinfo)
            model_cfg = dataclasses.replace(cfg.model, init_from=str(pre_dir))
        for name in cfg.defenses:
            run_dir = out / "runs" / f"{name}-seed{seed}"
            info_path = run_dir / "train.json"
            needs = [r for r in cfg.recipes if not any(k[:3] == (name, r, seed) for k in done)]
            if not needs:
                continue
            if not info_path.is_file():
                tcfg = TrainCommand(model=model_cfg, data=cfg.data, defense=_defense_cfg(cfg, name, seed),
                                    train=dataclasses.replace(cfg.train, out_dir=str(run_dir), seed=seed),
                                    optim=cfg.optim)  # fmt: skip
                info = train(tcfg)
                if is_rank_zero():
                    write_json(info_path, info)
            if not is_rank_zero():
                continue
            info = json.loads(info_path.read_text())
            model, tok, conf = load_trained(run_dir)
            for recipe in needs:
                if max_cells is not None and new >= max_cells:
                    return {"out": str(out), "stopped": True, "cells": len(done)}
                acfg = dataclasses.replace(cfg.attack, recipe=recipe)
                res = attack_model(model, tok, data.test.texts, data.test.labels, acfg, conf.get("defense") or {},
                                   synthetic=cfg.data.source == "synthetic",
                                   out_dir=out / "records" / f"{name}-seed{seed}")  # fmt: skip
                with RecordWriter(cells_path) as w:
                    for mode, s in res.items():
                        cell = {"status": "done", "defense": name, "recipe": recipe, "seed": seed, "mode": mode,
                                "clean": s["clean_acc"], "aua": s["aua"], "suc": s["success_rate"],
                                "queries": s["mean_queries"], "n": s["n"], "protocol": s["protocol"],
                                "train_seconds_per_epoch": info["seconds_per_epoch"]}  # fmt: skip
                        w.write(cell)
                        done.add((name, recipe, seed, mode))
                new += 1
    if not is_rank_zero():
        return {}
    table, rows = build_table(read_records(cells_path), cfg.defenses)
    from tenfold_core.io import atomic_write_text

    atomic_write_text(out / "table.md", table)
    cols = list(rows[0]) if rows else []
    atomic_write_text(
        out / "table.csv",
        "\n".join([",".join(cols)] + [",".join(str(r[c]) for c in cols) for r in rows]) + "\n",
    )
    _plot(rows, out / "benchmark.png")
    return {"out": str(out), "stopped": False, "cells": len(done), "rows": rows}


def build_table(cells, defenses=None) -> tuple[str, list[dict]]:
    """Markdown table (with the protocol line) and rows from finished cells; deterministic in the cells."""
    import numpy as np

    from tenfold_core.report import markdown_table

    groups: dict[tuple, list[dict]] = {}
    for c in cells:
        groups.setdefault((c["defense"], c["recipe"], c["mode"]), []).append(c)
    order = {d: i for i, d in enumerate(defenses or [])}
    keys = sorted(groups, key=lambda k: (order.get(k[0], len(order)), k[0], k[1], k[2]))
    base_cost = [c["train_seconds_per_epoch"] for c in cells if c["defense"] == "base"]
    base_cost = float(np.mean(base_cost)) if base_cost else None
    rows = []
    for k in keys:
        g = sorted(groups[k], key=lambda c: c["seed"])
        row = {"defense": k[0], "attack": k[1], "mode": k[2], "seeds": len(g)}
        for key, col in (("clean", "Clean%"), ("aua", "AUA%"), ("suc", "Suc%"), ("queries", "#Query")):
            vals = [c[key] for c in g]
            row[col] = round(float(np.mean(vals)), 2)
            if len(g) > 1:
                row[col + " std"] = round(float(np.std(vals)), 2)
        cost = float(np.mean([c["train_seconds_per_epoch"] for c in g]))
        row["Cost"] = round(cost / base_cost, 2) if base_cost else None
        rows.append(row)
    protocols = sorted({c["protocol"] for c in cells})
    head = "\n".join(f"Protocol: {p}" for p in protocols)
    return f"{head}\n\n{markdown_table(rows)}", rows


def _plot(rows, path):
    from tenfold_core.report import new_figure, save_figure

    if not rows:
        return
    fig = new_figure(6, 3.5)
    ax = fig.subplots()
    labels = [f"{r['defense']}\n{r['attack']}/{r['mode']}" for r in rows]
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r["Clean%"] for r in rows], 0.4, label="Clean%")
    ax.bar([i + 0.2 for i in x], [r["AUA%"] for r in rows], 0.4, label="AUA%")
    ax.set_xticks(list(x), labels, fontsize=7)
    ax.legend()
    save_figure(fig, path)
