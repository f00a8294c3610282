"""``sweep-beta``: one IB model per beta, each evaluated clean (deterministic and sampled) and under attack; a
markdown + CSV table and a plot of clean accuracy and accuracy under attack against beta."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from ibrobust.config import SweepBetaCommand, TrainCommand
from tenfold_core.io import is_rank_zero

__all__ = ["sweep_beta"]


def sweep_beta(cfg: SweepBetaCommand) -> dict:
    from ibrobust.data import load_data
    from ibrobust.evaluate import attack_model, clean_accuracy, load_trained
    from ibrobust.train import train
    from tenfold_core.io import atomic_write_text
    from tenfold_core.report import markdown_table, new_figure, save_figure

    out = Path(cfg.out)
    data = load_data(cfg.data)
    rows = []
    for beta in cfg.betas:
        run_dir = out / f"beta-{beta:g}"
        tcfg = TrainCommand(
            model=cfg.model, data=cfg.data, objective=dataclasses.replace(cfg.objective, beta=beta), adv=cfg.adv,
            train=dataclasses.replace(cfg.train, out_dir=str(run_dir)), optim=cfg.optim,
        )  # fmt: skip
        info = train(tcfg)
        if not is_rank_zero():
            continue
        model, tok, _ = load_trained(run_dir)
        clean = clean_accuracy(
            model, tok, data.test.texts, data.test.labels, max_length=model.config.max_length
        )
        att = attack_model(model, tok, data.test.texts, data.test.labels, cfg.attack, ["deterministic"],
                           synthetic=cfg.data.source == "synthetic", out_dir=run_dir / "attack")  # fmt: skip
        s = att["deterministic"]
        rows.append({
            "beta": beta, "clean_det": clean["clean_acc_deterministic"],
            "clean_sampled": clean.get("clean_acc_sampled", math.nan), "Clean%": s["clean_acc"],
            "AUA%": s["aua"], "Suc%": s["success_rate"], "#Query": s["mean_queries"], "seconds": info["seconds"],
        })  # fmt: skip
    if not is_rank_zero():
        return {}
    table = markdown_table(rows)
    protocol = att["deterministic"]["protocol"] if rows else ""
    atomic_write_text(out / "sweep.md", f"Protocol: {protocol}\n\n{table}")
    cols = list(rows[0]) if rows else []
    atomic_write_text(
        out / "sweep.csv",
        "\n".join([",".join(cols)] + [",".join(str(r[c]) for c in cols) for r in rows]) + "\n",
    )
    fig = new_figure(5, 3.5)
    ax = fig.subplots()
    xs = [max(r["beta"], 1e-5) for r in rows]
    ax.plot(xs, [r["clean_det"] for r in rows], "o-", label="clean (z = mu)")
    ax.plot(xs, [r["AUA%"] for r in rows], "s-", label="accuracy under attack")
    ax.set_xscale("log")
    ax.set_xlabel("beta (0 plotted at 1e-5)")
    ax.set_ylabel("%")
    ax.legend()
    save_figure(fig, out / "sweep_beta.png")
    return {"out": str(out), "rows": rows, "plot": str(out / "sweep_beta.png"), "protocol": protocol}
