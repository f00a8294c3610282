"""The embedded demo (offline, CPU): runs the package's own verbs with ``configs/demo.yaml`` — a tiny BERT teacher
(masked-LM on unlabelled text, then fine-tuned), then per seed three students with the same architecture and T = 4:
stage 1 + stage 2 (SpikeBERT), stage 2 only, and direct CE training — then ``evaluate`` on the seed-0 two-stage
student (firing rates, energy against a same-size ANN and the teacher, both accountings). Writes metrics.json,
report.md and plots."""

from __future__ import annotations

import csv
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

from spikebert.config import DemoConfig

__all__ = ["DemoConfig", "run_demo"]

STUDENTS = {
    "two_stage": "SpikeBERT: stage 1 + stage 2",
    "task_only": "stage 2 only",
    "direct": "direct (CE only)",
}


def _last_epoch_terms(run_dir: Path) -> dict[str, float]:
    """The weighted loss terms of the last epoch from the run's CSV log."""
    p = run_dir / "logs" / "metrics.csv"
    if not p.is_file():
        return {}
    last: dict[str, float] = {}
    with p.open() as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                if k.startswith("train_") and k.endswith("_weighted") and v not in ("", None):
                    last[k[len("train_") :]] = float(v)
    return last


def _dev_curve(run_dir: Path) -> list[float]:
    p = run_dir / "logs" / "metrics.csv"
    if not p.is_file():
        return []
    with p.open() as f:
        return [float(r["val_acc"]) for r in csv.DictReader(f) if r.get("val_acc") not in ("", None)]


def _spread(xs: list[float]) -> float:
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    import torch

    from spikebert.evaluate import evaluate_run
    from spikebert.train import (
        distill_pretrain,
        distill_task,
        finetune_teacher,
        pretrain_teacher,
        train_direct,
    )
    from tenfold_core.cli import load_preset
    from tenfold_core.report import markdown_table, new_figure, write_demo_outputs

    t0 = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)

    def preset(verb: str, **overrides):
        return load_preset("spikebert", "demo", verb, {k.replace("__", "."): v for k, v in overrides.items()})

    timings: dict[str, float] = {}
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always", RuntimeWarning)
        t = time.perf_counter()
        pretrain_teacher(preset("pretrain-teacher", train__out_dir=str(out / "mlm")))
        pretrained = str(out / "mlm" / "teacher")
        teacher = finetune_teacher(
            preset("finetune-teacher", model__name=pretrained, train__out_dir=str(out / "teacher"))
        )
        teacher_dir = str(out / "teacher" / "teacher")
        timings["teacher"] = time.perf_counter() - t
        acc: dict[str, list[float]] = {k: [] for k in STUDENTS}
        for seed in range(cfg.seeds):
            sd = out / f"seed{seed}"
            t = time.perf_counter()
            r = train_direct(preset("train-direct", train__seed=seed, train__out_dir=str(sd / "direct")))
            acc["direct"].append(r["test_accuracy"])
            r = distill_task(
                preset(
                    "distill-task",
                    teacher__name=teacher_dir,
                    train__seed=seed,
                    train__out_dir=str(sd / "task_only"),
                )
            )
            acc["task_only"].append(r["test_accuracy"])
            distill_pretrain(
                preset(
                    "distill-pretrain",
                    teacher__name=pretrained,
                    train__seed=seed,
                    train__out_dir=str(sd / "stage1"),
                )
            )
            r = distill_task(
                preset(
                    "distill-task",
                    teacher__name=teacher_dir,
                    init=str(sd / "stage1"),
                    train__seed=seed,
                    train__out_dir=str(sd / "two_stage"),
                )  # fmt: skip
            )
            acc["two_stage"].append(r["test_accuracy"])
            timings[f"seed{seed}"] = time.perf_counter() - t
        ev = evaluate_run(
            preset("evaluate", checkpoint=str(out / "seed0" / "two_stage"), teacher=teacher_dir, split="test")
        )
        caught = sorted({str(w.message) for w in rec if "spikebert: LIF" in str(w.message)})
    from spikebert.data import load_task_data

    test_labels = load_task_data(preset("evaluate").data).test.labels
    chance = max(test_labels.count(c) for c in set(test_labels)) / len(test_labels)
    terms = _last_epoch_terms(out / "seed0" / "two_stage")
    metrics: dict[str, Any] = {
        "teacher_acc": teacher["test_accuracy"],
        "chance_acc": chance,
        "seeds": cfg.seeds,
    }
    for k in STUDENTS:
        metrics[f"{k}_acc_mean"] = statistics.fmean(acc[k])
        metrics[f"{k}_acc_std"] = _spread(acc[k])
        for s, v in enumerate(acc[k]):
            metrics[f"{k}_acc_seed{s}"] = v
    rates = ev["firing_rates"]
    metrics.update(
        firing_rate=ev["firing_rate"],
        min_layer_rate=min(rates.values()),
        embedding_rate=rates.get("input_spikes_encoder"),
        attn_out_rate_block0=rates.get("blocks.0.attn.proj.lif"),
        attn_lif_rate_block0=rates.get("blocks.0.attn.attn_lif"),
        energy_ratio_vs_same_size_ann=ev["energy_ratio_vs_same_size_ann"],
        energy_ratio_vs_same_size_ann_integer_as_ac=ev["energy_ratio_vs_same_size_ann_integer_as_ac"],
        energy_ratio_vs_teacher=ev["energy_ratio_vs_teacher"],
        energy_ratio_vs_teacher_integer_as_ac=ev["energy_ratio_vs_teacher_integer_as_ac"],
        student_energy_uj=ev["student_energy_mj"] * 1e3,
        same_size_ann_energy_uj=ev["same_size_ann_energy_mj"] * 1e3,
        teacher_energy_uj=ev["teacher_energy_mj"] * 1e3,
        silent_or_saturated_warnings=len(caught),
        **{f"loss_{k}": v for k, v in terms.items()},
        seconds=time.perf_counter() - t0,
    )
    rows = [{"model": "teacher (tiny BERT, ANN)", "test accuracy (mean)": metrics["teacher_acc"], "std": 0.0}]
    rows += [
        {"model": name, "test accuracy (mean)": metrics[f"{k}_acc_mean"], "std": metrics[f"{k}_acc_std"]}
        for k, name in STUDENTS.items()
    ]
    fig = new_figure(6, 3.5)
    ax = fig.add_subplot(111)
    ax.bar(range(len(rows)), [r["test accuracy (mean)"] for r in rows], yerr=[r["std"] for r in rows],
           color=["gray", "C0", "C1", "C3"], capsize=4)  # fmt: skip
    ax.axhline(chance, ls="--", color="k", lw=0.8, label="chance (majority label)")
    ax.set_xticks(range(len(rows)), ["teacher", "stage 1+2", "stage 2", "direct"])
    ax.set_ylim(0.4, 1.02)
    ax.set_ylabel("test accuracy")
    ax.legend()
    ax.set_title(f"Synthetic sentiment, student T=4, depth 2, width 64, {cfg.seeds} seed(s)")
    fig2 = new_figure(7, 4)
    ax2 = fig2.add_subplot(111)
    ax2.barh(range(len(rates)), list(rates.values()))
    ax2.set_yticks(range(len(rates)), [k.replace("blocks.", "b") for k in rates], fontsize=7)
    ax2.axvline(1e-3, color="r", lw=0.8)
    ax2.set_xlabel("firing rate")
    ax2.set_title("Firing rate per LIF (seed-0 two-stage student, test set)")
    fig3 = new_figure(6, 3.5)
    ax3 = fig3.add_subplot(111)
    for k in STUDENTS:
        curve = _dev_curve(out / "seed0" / k)
        ax3.plot(range(1, len(curve) + 1), curve, marker="o", label=k)
    ax3.set_xlabel("epoch")
    ax3.set_ylabel("dev accuracy (seed 0)")
    ax3.legend()
    per_seed = [
        {"seed": s, **{STUDENTS[k]: acc[k][s] for k in STUDENTS}, "time (s)": timings[f"seed{s}"]}
        for s in range(cfg.seeds)
    ]
    epochs = preset("distill-task").train.max_epochs
    s1_epochs = preset("distill-pretrain").train.max_epochs
    report = (
        "# SpikeBERT demo\n\n"
        "The package's own verbs with `configs/demo.yaml`: synthetic negation-XOR sentiment language (label = "
        "adjective polarity XOR 'not'), 1000 training / 300 dev / 500 test sentences, 2000 unlabelled sentences. "
        "Teacher: tiny BERT (4 layers x 64), one masked-LM epoch (`pretrain-teacher`, the stage-1 teacher), then 8 "
        "fine-tuning epochs (`finetune-teacher`). Students: depth 2, width 64, 4 heads, T = 4, LIF tau 2, V_th 1 "
        "(attention 0.5), `qk_scale: auto`, padding masked; stage-2 weights CE 0.1, KL 1, embeddings 0.1, hidden "
        f"states 1 (no extra 1/B); {epochs} epochs for every student, best epoch on dev; stage 1: {s1_epochs} epochs.\n\n"
        + markdown_table(rows)
        + "\nPer seed:\n\n"
        + markdown_table(per_seed)
        + f"\nFiring rate (mean over LIFs, seed-0 two-stage student, test set): {metrics['firing_rate']:.3f}; lowest "
        f"layer {metrics['min_layer_rate']:.4f}; embedding spikes {metrics['embedding_rate']:.3f}; block-0 attention "
        f"LIF {metrics['attn_lif_rate_block0']:.3f}, attention output LIF {metrics['attn_out_rate_block0']:.3f}. "
        f"Silent/saturated-layer warnings during training: {len(caught)}"
        + ("" if not caught else " (" + "; ".join(caught[:5]) + ")")
        + ".\n\n## Energy\n\n"
        "| accounting | student / same-size ANN | student / teacher |\n|---|---|---|\n"
        f"| integer residual inputs as MACs | {metrics['energy_ratio_vs_same_size_ann']:.3f} | "
        f"{metrics['energy_ratio_vs_teacher']:.3f} |\n"
        f"| integer inputs as \\|value\\| accumulates (the paper's assumption) | "
        f"{metrics['energy_ratio_vs_same_size_ann_integer_as_ac']:.3f} | {metrics['energy_ratio_vs_teacher_integer_as_ac']:.3f} |\n\n"
        "The same-size ANN is a BERT with the student's depth, width, heads and MLP width (the headline); the teacher "
        "is twice as deep. Any saving rests on the second row's assumption (fp32 45 nm: E_MAC 4.6 pJ, E_AC 0.9 pJ).\n\n"
        "## Loss terms (seed-0 two-stage student, last epoch, weighted)\n\n"
        + ("\n".join(f"- {k}: {v:.4g}" for k, v in terms.items()) or "- (no CSV log)")
        + "\n\n## Student energy (integer inputs as MACs)\n\n```\n"
        + ev_table(ev, "student")
        + "\n```\n\n"
        "## Same-size ANN energy\n\n```\n" + ev_table(ev, "same_size_ann") + "\n```\n\n"
        "## Teacher energy (ANN, its real size)\n\n```\n" + ev_table(ev, "teacher") + "\n```\n\n"
        f"Timings (s): {', '.join(f'{k} {v:.1f}' for k, v in timings.items())}; total {metrics['seconds']:.0f}.\n"
    )
    write_demo_outputs(out, metrics, report, {"accuracy": fig, "firing_rates": fig2, "dev_curves": fig3})
    print(markdown_table(rows))
    print(f"wrote {out}/metrics.json, report.md, accuracy.png ({metrics['seconds']:.0f} s)")
    return metrics


def ev_table(ev: dict, who: str) -> str:
    rep = ev.get(f"{who}_report")
    return rep.table() if rep is not None else "(not measured)"
