"""``plmwatermark demo``: rare-word watermark, multi-task (WLM) vs single-task (EP-style), survives 3 epochs of the
user's fine-tuning on a held-out downstream task; verified against a clean control with a binomial test."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from plmwatermark.config import DemoCommand
from tenfold_core.cli import load_preset
from tenfold_core.report import markdown_table, write_demo_outputs

__all__ = ["run_demo"]

PRESET = "demo"
EPOCHS = 3


def run_demo(cfg: DemoCommand) -> dict[str, Any]:
    from plmwatermark.evaluate import run_verify
    from plmwatermark.grid import plot, run_control, run_pipeline

    out = Path(cfg.out)
    per_seed, all_rows, control_rows = [], [], []
    for seed in range(cfg.seeds):
        m: dict[str, Any] = {}
        pipes = {}
        for regime in ("multi", "single"):
            p = run_pipeline(out / f"seed{seed}", "rare", regime, EPOCHS, PRESET, seed)
            pipes[regime] = p
            all_rows += [dict(r, seed=seed) for r in p["rows"]]
            by_ep = {r["epochs"]: r for r in p["rows"]}
            m[f"wesr_{regime}_ep0"], m[f"wesr_{regime}_ep{EPOCHS}"] = by_ep[0]["wesr"], by_ep[EPOCHS]["wesr"]
            m[f"clean_acc_{regime}_ep{EPOCHS}"] = by_ep[EPOCHS]["clean_acc"]
            m[f"false_trigger_{regime}_ep0"] = by_ep[0]["false_trigger"]
            m[f"false_trigger_{regime}_ep{EPOCHS}"] = by_ep[EPOCHS]["false_trigger"]
        multi = pipes["multi"]
        ctrl = run_control(out / f"seed{seed}", multi["clean"], multi["key_file"], EPOCHS, PRESET, seed)
        d = multi["downstream"]
        last = ctrl["history"][-1]
        m["control_wesr"], m["control_clean_acc"] = last[f"wesr_{d}"], last[f"clean_acc_{d}"]
        m["control_base_rate"] = last[f"base_rate_{d}"]
        control_rows += [{"epochs": h["epoch"], "wesr": h[f"wesr_{d}"], "clean_acc": h[f"clean_acc_{d}"]}
                         for h in ctrl["history"]]  # fmt: skip
        m["clean_acc_delta_multi"] = m[f"clean_acc_multi_ep{EPOCHS}"] - m["control_clean_acc"]
        m["clean_acc_delta_single"] = m[f"clean_acc_single_ep{EPOCHS}"] - m["control_clean_acc"]
        m[f"wesr_multi_minus_single_ep{EPOCHS}"] = m[f"wesr_multi_ep{EPOCHS}"] - m[f"wesr_single_ep{EPOCHS}"]
        vcfg = load_preset("plmwatermark", PRESET, "verify", {
            "suspect": multi["finetuned"], "key_file": multi["key_file"], "control": ctrl["dir"], "seed": seed,
            "out": str(out / f"seed{seed}" / "verify"),
        })  # fmt: skip
        rep = run_verify(vcfg)
        m["p_value"], m["control_p_value"] = rep["p_value"], rep["control_p_value"]
        m["verify_wesr"], m["verify_false_trigger_rate"] = rep["wesr"], rep["false_trigger_rate"]
        per_seed.append(m)

    metrics: dict[str, Any] = {
        "seeds": cfg.seeds,
        "finetune_epochs": EPOCHS,
        "trigger": "rare",
        "test": "binomial",
        "single_task": pipes["single"]["tasks"][0],
        "multi_tasks": ",".join(pipes["multi"]["tasks"]),
        "multi_beats_single_seeds": sum(s[f"wesr_multi_minus_single_ep{EPOCHS}"] > 0 for s in per_seed),
    }
    for k in per_seed[0]:
        xs = [float(s[k]) for s in per_seed if s[k] is not None]
        metrics[f"{k}_mean"] = statistics.fmean(xs) if xs else None
        metrics[f"{k}_std"] = statistics.stdev(xs) if len(xs) > 1 else 0.0
    rows = [dict(seed=i, **s) for i, s in enumerate(per_seed)]
    cols = ["seed", "wesr_multi_ep0", f"wesr_multi_ep{EPOCHS}", "wesr_single_ep0", f"wesr_single_ep{EPOCHS}",
            "control_wesr", "clean_acc_delta_multi", "verify_false_trigger_rate", "p_value", "control_p_value"]  # fmt: skip
    ecfg = load_preset("plmwatermark", PRESET, "embed")  # the report's setup line, read from the preset
    report = (
        f"# plmwatermark demo\n\nTiny BERT ({ecfg.model.layers} layers, d={ecfg.model.hidden}), rare-word trigger "
        f"({'/'.join(ecfg.trigger.words)}), poison stage on the {ecfg.scope} model for the same number of optimizer "
        f"steps in both arms; proxy tasks {metrics['multi_tasks']} (multi-task) or {metrics['single_task']} only "
        f"(single-task); the user fine-tunes all weights with a new head on {pipes['multi']['downstream']} in "
        f"another domain for {EPOCHS} epochs. Control: the clean proxy model fine-tuned the same way.\n\n"
        + markdown_table(rows, cols)
        + "\n![](wesr_vs_epochs.png)\n"
    )
    seed0 = [r for r in all_rows if r["seed"] == 0]
    ctrl0 = control_rows[:EPOCHS]
    write_demo_outputs(out, metrics, report, {"wesr_vs_epochs": plot(seed0, ctrl0)})
    return metrics
