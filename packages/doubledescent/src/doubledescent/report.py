"""Turn a run folder's ``results.csv`` into curves, headline numbers, PNG plots and ``report.md``.

Definitions (per model and noise level, on the seed-averaged curve over widths):
- *interpolation threshold*: the first width whose mean train accuracy (on the observed, noisy labels) reaches
  ``threshold_acc`` (1.0 by default);
- *small-model minimum*: the lowest test loss among widths below the threshold (the classical regime);
- *peak*: the highest test loss at or after the small-model minimum's width;
- ``peak_ratio`` = peak / max(small-model minimum, test loss of the widest model): > 1 only for an interior peak.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tenfold_core.errors import DataError
from tenfold_core.report import markdown_table, new_figure, write_demo_outputs

from .results import read_results

__all__ = ["aggregate", "curve_stats", "build_report", "write_report"]

_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "noisy_memorized", "knn_p")


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, float], list[dict[str, Any]]]:
    """Seed-averaged curves: {(model, noise): [ {width, params, seeds, <metric>, <metric>_std ...} sorted by width ]}."""
    groups: dict[tuple[str, float, int], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["model"], round(r["noise"], 6), r["width"])].append(r)
    curves: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for (model, noise, width), rs in sorted(groups.items()):
        point: dict[str, Any] = {"width": width, "params": rs[0]["params"], "seeds": len(rs)}
        for m in _METRICS:
            vals = np.array([r[m] for r in rs], dtype=float)
            ok = vals[~np.isnan(vals)]
            point[m] = float(ok.mean()) if len(ok) else math.nan
            point[m + "_std"] = float(ok.std()) if len(ok) > 1 else 0.0
        point["test_err"] = 1.0 - point["test_acc"]
        point["train_err"] = 1.0 - point["train_acc"]
        curves[(model, noise)].append(point)
    return dict(curves)


def curve_stats(curve: Sequence[dict[str, Any]], threshold_acc: float = 1.0) -> dict[str, Any]:
    """Headline numbers of one seed-averaged curve (see the module docstring)."""
    if not curve:
        raise DataError("empty curve")
    widths = [c["width"] for c in curve]
    loss = np.array([c["test_loss"] for c in curve])
    thr_idx = next((i for i, c in enumerate(curve) if c["train_acc"] >= threshold_acc - 1e-9), None)
    if thr_idx is None:  # never interpolates: the whole curve is the classical regime
        classical = range(len(curve))
    else:  # widths below the threshold (just the first width if it already interpolates)
        classical = range(max(thr_idx, 1))
    i_min = min(classical, key=lambda i: loss[i])
    i_peak = max(range(i_min, len(curve)), key=lambda i: loss[i])
    largest = loss[-1]
    ratio = float(loss[i_peak] / max(loss[i_min], largest))
    knn = [c["knn_p"] for c in curve]
    return {
        "threshold_width": widths[thr_idx] if thr_idx is not None else None,
        "peak_width": widths[i_peak],
        "peak_test_loss": float(loss[i_peak]),
        "peak_test_acc": curve[i_peak]["test_acc"],
        "min_small_width": widths[i_min],
        "min_small_test_loss": float(loss[i_min]),
        "min_small_test_acc": curve[i_min]["test_acc"],
        "largest_width": widths[-1],
        "largest_width_test_loss": float(largest),
        "largest_width_test_acc": curve[-1]["test_acc"],
        "peak_ratio": ratio,
        "knn_p_threshold": knn[thr_idx] if thr_idx is not None else math.nan,
        "knn_p_peak": knn[i_peak],
        "knn_p_largest": knn[-1],
        "knn_p_min_small": knn[i_min],
    }


def _plots(curves, stats, title: str):
    colors = ["tab:blue", "tab:red", "tab:green", "tab:orange", "tab:purple", "tab:brown"]
    fig = new_figure(11, 4)
    ax_loss, ax_err = fig.subplots(1, 2)
    fig2 = new_figure(6, 4)
    ax_knn = fig2.subplots()
    any_knn = False
    for j, ((model, noise), curve) in enumerate(sorted(curves.items(), key=lambda kv: kv[0][1])):
        col = colors[j % len(colors)]
        w = [c["width"] for c in curve]
        lab = f"{model}, p={noise:g}"
        ax_loss.plot(w, [c["test_loss"] for c in curve], "o-", color=col, ms=3, label=lab)
        ax_err.plot(w, [c["test_err"] for c in curve], "o-", color=col, ms=3, label=f"{lab} test")
        ax_err.plot(w, [c["train_err"] for c in curve], "--", color=col, alpha=0.6, label=f"{lab} train")
        knn = [c["knn_p"] for c in curve]
        has_knn = not all(math.isnan(v) for v in knn)
        if has_knn:
            any_knn = True
            ax_knn.plot(w, knn, "o-", color=col, ms=3, label=f"{lab}: k-NN recovery P")
            ax_knn.plot(
                w, [c["noisy_memorized"] for c in curve], ":", color=col, label=f"{lab}: noisy labels fitted"
            )
        thr = stats[(model, noise)]["threshold_width"]
        if thr is not None:
            for ax in (ax_loss, ax_err, ax_knn) if has_knn else (ax_loss, ax_err):
                ax.axvline(thr, color=col, ls=":", lw=1)
    for ax, ylab in ((ax_loss, "test loss (cross-entropy)"), (ax_err, "error"), (ax_knn, "fraction")):
        ax.set_xscale("log")
        ax.set_xlabel("width (dotted line: interpolation threshold)")
        ax.set_ylabel(ylab)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax_loss.set_title(f"{title}: test loss vs width")
    ax_err.set_title("train / test error vs width")
    ax_knn.set_title("k-NN on learned features recovers true labels of noisy samples")
    figs = {"double_descent": fig}
    if any_knn:
        figs["knn_recovery"] = fig2
    return figs


def build_report(
    rows: Sequence[dict[str, Any]], title: str = "doubledescent", threshold_acc: float = 1.0
) -> tuple[dict, str, dict]:
    """(stats per (model, noise), report markdown, figures) from result rows."""
    if not rows:
        raise DataError("no finished units in results.csv yet")
    curves = aggregate(rows)
    stats = {key: curve_stats(c, threshold_acc) for key, c in curves.items()}
    md = [f"# {title}\n", "Model-wise double descent under label noise (arXiv 2310.13572), seed-averaged.\n"]
    md.append("## Headline numbers\n")
    head = []
    for (model, noise), s in sorted(stats.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        head.append(
            {"model": model, "noise": noise, "seeds": max(c["seeds"] for c in curves[(model, noise)]), **s}
        )
    cols = [
        "model", "noise", "seeds", "threshold_width", "min_small_width", "min_small_test_loss", "peak_width",
        "peak_test_loss", "largest_width", "largest_width_test_loss", "peak_ratio", "knn_p_threshold", "knn_p_largest",
    ]  # fmt: skip
    md.append(markdown_table(head, cols, digits=3))
    md.append(
        "\n*threshold*: first width with train accuracy 1.0 on the noisy labels; *peak_ratio*: peak test loss / "
        "max(small-model minimum, widest model); *knn_p*: fraction of noisy-label training samples whose 5-NN "
        "(cosine, on penultimate features, fitted on the clean samples) predicts their true label.\n"
    )
    for (model, noise), curve in sorted(curves.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        md.append(f"\n## {model}, noise p = {noise:g}\n")
        md.append(
            markdown_table(
                curve,
                [
                    "width",
                    "params",
                    "seeds",
                    "train_acc",
                    "train_loss",
                    "test_loss",
                    "test_acc",
                    "noisy_memorized",
                    "knn_p",
                ],
                digits=3,
            )
        )
    return stats, "\n".join(md), _plots(curves, stats, title)


def write_report(run_dir: str | Path, out_dir: str | Path | None = None, threshold_acc: float = 1.0) -> dict:
    """Write ``report.md``, ``metrics.json`` (headline numbers per noise level) and the PNGs for a run folder."""
    run = Path(run_dir)
    csv_path = run / "results.csv"
    if not csv_path.is_file():
        raise DataError(f"{run}: no results.csv (is this a doubledescent run folder?)")
    rows = read_results(csv_path)
    stats, md, figs = build_report(rows, title=f"doubledescent: {run.name}", threshold_acc=threshold_acc)
    metrics: dict[str, Any] = {"units": len(rows)}
    for (model, noise), s in stats.items():
        for k, v in s.items():
            metrics[f"{model}_p{noise:g}_{k}"] = v
    write_demo_outputs(out_dir or run, metrics, md, figs)
    return metrics
