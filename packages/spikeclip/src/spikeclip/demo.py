"""``spikeclip demo``: the whole recipe offline on CPU, on scikit-learn digits with a mini-CLIP teacher.

train-teacher -> align-text -> finetune-teacher (shared), then per seed: align-image -> dual-finetune (SpikeCLIP),
dual-finetune from random init (no alignment, stage 2 only) and CE-only from random init (scratch); each student is
scored with ``evaluate``. Writes metrics.json (mean, std and per-seed values), report.md and plots.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from spikeclip.config import DemoConfig
from tenfold_core.cli import load_preset

__all__ = ["run_demo"]

STUDENTS = ("spikeclip", "no_align", "scratch")


def _quiet(out: Path) -> dict[str, Any]:
    return {"train.out_dir": str(out), "train.progress_bar": False, "train.loggers": []}


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    from spikeclip.evaluate import run_evaluate
    from spikeclip.train import align_image, align_text, dual_finetune, finetune_teacher, train_teacher

    out = Path(cfg.out)
    runs = out / "runs"
    t0 = time.perf_counter()
    times: dict[str, float] = {}

    def timed(name, fn, c):
        s = time.perf_counter()
        r = fn(c)
        times[name] = times.get(name, 0.0) + time.perf_counter() - s
        return r

    teacher_dir, text_dir, ft_dir = runs / "teacher", runs / "align-text", runs / "teacher-ft"
    timed(
        "train-teacher", train_teacher, load_preset("spikeclip", "demo", "train-teacher", _quiet(teacher_dir))
    )
    timed("align-text", align_text,
          load_preset("spikeclip", "demo", "align-text", {**_quiet(text_dir), "teacher": str(teacher_dir)}))  # fmt: skip
    timed("finetune-teacher", finetune_teacher,
          load_preset("spikeclip", "demo", "finetune-teacher",
                      {**_quiet(ft_dir), "teacher": str(teacher_dir), "text": str(text_dir)}))  # fmt: skip

    per_seed: dict[str, list[dict]] = {k: [] for k in STUDENTS}
    teacher_eval = None
    for seed in range(cfg.seeds):
        img_dir = runs / f"align-image-s{seed}"
        timed("align-image", align_image,
              load_preset("spikeclip", "demo", "align-image",
                          {**_quiet(img_dir), "teacher": str(teacher_dir), "train.seed": seed}))  # fmt: skip
        variants = {
            "spikeclip": {"init": str(img_dir)},
            "no_align": {"init": ""},
            "scratch": {"init": "", "loss.kl_weight": 0.0},
        }
        for name, extra in variants.items():
            d = runs / f"{name}-s{seed}"
            timed("dual-finetune", dual_finetune,
                  load_preset("spikeclip", "demo", "dual-finetune",
                              {**_quiet(d), "teacher": str(ft_dir), "text": str(text_dir), "train.seed": seed,
                               **extra}))  # fmt: skip
            ev_over = {"student": str(d), "text": str(text_dir)}
            if name == "spikeclip" and seed == 0:
                ev_over["teacher"] = str(teacher_dir)
            ev = timed("evaluate", run_evaluate, load_preset("spikeclip", "demo", "evaluate", ev_over))
            if "teacher_top1" in ev:
                teacher_eval = ev
            per_seed[name].append(ev)

    metrics: dict[str, Any] = {"seeds": cfg.seeds, "chance_acc": per_seed["spikeclip"][0]["chance"]}
    metrics["teacher_acc"] = teacher_eval["teacher_top1"] if teacher_eval else None
    metrics["teacher_snn_text_acc"] = teacher_eval["teacher_snn_text_top1"] if teacher_eval else None
    for name in STUDENTS:
        accs = [e["top1"] for e in per_seed[name]]
        m, s = _mean_std(accs)
        metrics[f"{name}_acc"], metrics[f"{name}_acc_std"] = m, s
        for i, a in enumerate(accs):
            metrics[f"{name}_acc_seed{i}"] = a
    sc = per_seed["spikeclip"]
    metrics["spikeclip_top5"] = _mean_std([e["top5"] for e in sc])[0]
    metrics["open_vocab_acc"], metrics["open_vocab_acc_std"] = _mean_std(
        [e["open_vocab_replace_top1"] for e in sc]
    )
    metrics["open_vocab_replaced_classes_acc"] = _mean_std(
        [e["open_vocab_replaced_classes_top1"] or 0.0 for e in sc]
    )[0]
    metrics["open_vocab_expand_acc"] = _mean_std([e["open_vocab_expand_top1"] for e in sc])[0]
    metrics["energy_ratio_vs_same_size_ann"] = _mean_std([e["energy_ratio_vs_same_size_ann"] for e in sc])[0]
    metrics["snn_energy_uj_per_image"] = sc[0]["energy"]["snn_uj"]
    metrics["ann_energy_uj_per_image"] = sc[0]["energy"]["ann_uj"]
    metrics["mean_firing_rate"] = _mean_std([e["mean_firing_rate"] for e in sc])[0]
    metrics["min_attention_firing_rate"] = min(e["min_attention_firing_rate"] or 0.0 for e in sc)
    for k, v in sc[0]["firing_rates"].items():
        metrics[f"firing_rate.{k}"] = v
    metrics["two_stage_beats_no_align_seeds"] = sum(
        a["top1"] > b["top1"] for a, b in zip(sc, per_seed["no_align"], strict=True)
    )
    for k, v in times.items():
        metrics[f"time_s.{k}"] = round(v, 2)
    metrics["wall_time_s"] = round(time.perf_counter() - t0, 2)

    _write(out, metrics, sc[0])
    return metrics


def _write(out: Path, metrics: dict[str, Any], ev: dict[str, Any]) -> None:
    from tenfold_core.report import markdown_table, new_figure, write_demo_outputs

    rows = [
        {"model": "mini-CLIP teacher (ANN)", "top-1": metrics["teacher_acc"], "std": None},
        *[
            {"model": label, "top-1": metrics[f"{k}_acc"], "std": metrics[f"{k}_acc_std"]}
            for k, label in (
                ("spikeclip", "SpikeCLIP (align-image + dual-finetune)"),
                ("no_align", "no alignment (stage 2 only)"),
                ("scratch", "scratch (random init, CE only)"),
            )
        ],
        {"model": "chance (majority class)", "top-1": metrics["chance_acc"], "std": None},
    ]
    md = [
        "# SpikeCLIP demo (digits, mini-CLIP teacher, CPU)\n",
        f"Seeds: {metrics['seeds']}; test images: {ev['images']}; wall time {metrics['wall_time_s']} s.\n",
        markdown_table(rows, ["model", "top-1", "std"]),
        "\n## Open vocabulary (SpikeCLIP student)\n",
        markdown_table(
            [
                {"test": "two class names replaced by synonyms", "top-1": metrics["open_vocab_acc"]},
                {"test": "replaced classes only", "top-1": metrics["open_vocab_replaced_classes_acc"]},
                {"test": "10 distractor classes added", "top-1": metrics["open_vocab_expand_acc"]},
            ]
        ),  # fmt: skip
        "\n## Energy per image (fp32, 4.6 / 0.9 pJ)\n",
        f"SNN {metrics['snn_energy_uj_per_image']:.4f} uJ vs same-size ANN {metrics['ann_energy_uj_per_image']:.4f} uJ "
        f"(ratio {metrics['energy_ratio_vs_same_size_ann']:.3f}).\n\n```\n{ev['energy_table']}\n```\n",
        "\n## Firing rates (seed 0)\n",
        markdown_table([{"layer": k, "rate": v} for k, v in ev["firing_rates"].items()]),
    ]
    fig = new_figure(6, 3.5)
    ax = fig.add_subplot(1, 1, 1)
    names = ["teacher", "spikeclip", "no_align", "scratch"]
    vals = [metrics["teacher_acc"] or 0.0] + [metrics[f"{k}_acc"] for k in names[1:]]
    errs = [0.0] + [metrics[f"{k}_acc_std"] for k in names[1:]]
    ax.bar(names, vals, yerr=errs, color=["grey", "tab:blue", "tab:orange", "tab:red"])
    ax.axhline(metrics["chance_acc"], ls="--", c="k", lw=1)
    ax.set_ylabel("test top-1")
    fig2 = new_figure(7, 3.5)
    ax2 = fig2.add_subplot(1, 1, 1)
    rates = ev["firing_rates"]
    ax2.barh(list(rates), list(rates.values()))
    ax2.set_xlabel("firing rate")
    write_demo_outputs(out, metrics, "\n".join(md), {"accuracy": fig, "firing_rates": fig2})
