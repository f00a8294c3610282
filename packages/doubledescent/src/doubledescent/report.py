"""Turn a run folder's ``results.csv`` into curves, headline numbers, PNG plots and ``report.md``.

Definitions (per model and noise level, on the seed-averaged curve over widths):
- *interpolation threshold*: the first width whose mean train accuracy (on the observed, noisy labels) reaches
  ``threshold_acc`` (0.999 by default: a tolerance, so one misfit sample out of thousands does not move it);
- *small-model minimum*: the lowest test loss among widths below the threshold (the classical regime);
- *peak*: the highest test loss at or after the small-model minimum's width, named relative to the threshold:
  ``peak_steps_from_threshold`` (grid positions: 0 = at the threshold, +1 = the next width, -1 = the width before) and
  ``peak_width_over_threshold`` (peak width / threshold width);
- ``peak_ratio`` = peak / max(small-model minimum, test loss of the widest model): > 1 only for an interior peak.

``metrics.json`` keys are ``<model>_p<noise>_<name>`` for every name of :func:`curve_stats` (e.g.
``fc_p0.2_peak_ratio``), plus ``units`` and ``threshold_acc``.
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

from .config import DEFAULT_THRESHOLD_ACC
from .results import read_results

__all__ = ["aggregate", "curve_stats", "build_report", "report_metrics", "write_report"]

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
        point["test_err_std"], point["train_err_std"] = point["test_acc_std"], point["train_acc_std"]
        curves[(model, noise)].append(point)
    return dict(curves)


def curve_stats(
    curve: Sequence[dict[str, Any]], threshold_acc: float = DEFAULT_THRESHOLD_ACC
) -> dict[str, Any]:
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
        "threshold_train_acc": curve[thr_idx]["train_acc"] if thr_idx is not None else math.nan,
        "peak_width": widths[i_peak],
        "peak_steps_from_threshold": (i_peak - thr_idx) if thr_idx is not None else None,
        "peak_width_over_threshold": widths[i_peak] / widths[thr_idx] if thr_idx is not None else math.nan,
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


def _null_locator():
    from matplotlib.ticker import NullLocator

    return NullLocator()


def _width_axis(ax, widths, params) -> None:
    """Log width axis ticked at the actual widths, with a parameter-count axis on top."""
    ax.set_xscale("log")
    ax.set_xticks(widths)
    ax.set_xticklabels([str(w) for w in widths], fontsize=6, rotation=90)
    ax.xaxis.set_minor_locator(_null_locator())
    if len(widths) >= 2 and all(b > a for a, b in zip(params, params[1:])):
        lw, lp = np.log(np.asarray(widths, float)), np.log(np.asarray(params, float))

        def to_params(w):
            return np.exp(np.interp(np.log(np.clip(w, 1e-9, None)), lw, lp))

        def to_width(q):
            return np.exp(np.interp(np.log(np.clip(q, 1e-9, None)), lp, lw))

        top = ax.secondary_xaxis("top", functions=(to_params, to_width))
        idx = sorted({0, len(widths) // 3, (2 * len(widths)) // 3, len(widths) - 1})
        top.set_xticks([params[i] for i in idx])
        top.set_xticklabels([f"{params[i]:,}" for i in idx], fontsize=6)
        top.xaxis.set_minor_locator(_null_locator())
        top.set_xlabel("parameters", fontsize=7)


def _line(ax, curve, key, col, label, style="o-", alpha=1.0):
    w = [c["width"] for c in curve]
    y = np.array([c[key] for c in curve], dtype=float)
    ax.plot(w, y, style, color=col, ms=3, label=label, alpha=alpha)
    if max(c["seeds"] for c in curve) > 1:  # seed spread: mean +- one standard deviation
        sd = np.array([c.get(key + "_std", 0.0) for c in curve], dtype=float)
        ax.fill_between(w, y - sd, y + sd, color=col, alpha=0.15, lw=0)


def _plots(curves, stats, title: str):
    colors = ["tab:blue", "tab:red", "tab:green", "tab:orange", "tab:purple", "tab:brown"]
    fig = new_figure(11, 4.4)
    ax_loss, ax_err = fig.subplots(1, 2)
    fig2 = new_figure(6, 4.4)
    ax_knn = fig2.subplots()
    any_knn = False
    all_w: dict[int, int] = {}
    for j, ((model, noise), curve) in enumerate(sorted(curves.items(), key=lambda kv: kv[0][1])):
        col = colors[j % len(colors)]
        lab = f"{model}, p={noise:g}"
        all_w.update({c["width"]: c["params"] for c in curve})
        _line(ax_loss, curve, "test_loss", col, lab)
        _line(ax_err, curve, "test_err", col, f"{lab} test")
        _line(ax_err, curve, "train_err", col, f"{lab} train", "--", 0.6)
        has_knn = not all(math.isnan(c["knn_p"]) for c in curve)
        if has_knn:
            any_knn = True
            _line(ax_knn, curve, "knn_p", col, f"{lab}: k-NN recovery P")
            _line(ax_knn, curve, "noisy_memorized", col, f"{lab}: noisy labels fitted", ":")
        thr = stats[(model, noise)]["threshold_width"]
        if thr is not None:
            for ax in (ax_loss, ax_err, ax_knn) if has_knn else (ax_loss, ax_err):
                ax.axvline(thr, color=col, ls=":", lw=1)
    widths = sorted(all_w)
    seeds = max(c["seeds"] for cv in curves.values() for c in cv)
    spread = f" (band: +-1 sd over {seeds} seeds)" if seeds > 1 else ""
    for ax, ylab in ((ax_loss, "test loss (cross-entropy)"), (ax_err, "error"), (ax_knn, "fraction")):
        _width_axis(ax, widths, [all_w[w] for w in widths])
        ax.set_xlabel("width (dotted line: interpolation threshold)")
        ax.set_ylabel(ylab)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax_loss.set_title(f"{title}: test loss vs width{spread}", fontsize=9)
    ax_err.set_title("train / test error vs width", fontsize=9)
    ax_knn.set_title("k-NN on learned features recovers true labels of noisy samples", fontsize=9)
    figs = {"double_descent": fig}
    if any_knn:
        figs["knn_recovery"] = fig2
    return figs


def build_report(
    rows: Sequence[dict[str, Any]], title: str = "doubledescent", threshold_acc: float = DEFAULT_THRESHOLD_ACC
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
        "peak_steps_from_threshold", "peak_test_loss", "largest_width", "largest_width_test_loss", "peak_ratio",
        "knn_p_threshold", "knn_p_largest",
    ]  # fmt: skip
    md.append(markdown_table(head, cols, digits=3))
    md.append(
        f"\n*threshold*: first width with train accuracy >= {threshold_acc:g} on the noisy labels; "
        "*peak_steps_from_threshold*: grid positions from the threshold to the peak; *peak_ratio*: peak test loss / "
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


def report_metrics(stats: dict, rows: Sequence[dict[str, Any]], threshold_acc: float) -> dict[str, Any]:
    """The flat ``metrics.json`` of a sweep: ``<model>_p<noise>_<name>`` for every :func:`curve_stats` name."""
    metrics: dict[str, Any] = {"units": len(rows), "threshold_acc": float(threshold_acc)}
    for (model, noise), s in sorted(stats.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        for k, v in s.items():
            metrics[f"{model}_p{noise:g}_{k}"] = v
    return metrics


def write_report(
    run_dir: str | Path, out_dir: str | Path | None = None, threshold_acc: float = DEFAULT_THRESHOLD_ACC
) -> dict:
    """Write ``report.md``, ``metrics.json`` (headline numbers per noise level) and the PNGs for a run folder."""
    run = Path(run_dir)
    if run.is_file():
        raise DataError(f"{run}: is a file, expected a sweep's run folder (with results.csv)")
    csv_path = run / "results.csv"
    if csv_path.is_dir():
        raise DataError(f"{csv_path}: is a folder, expected the sweep's results file")
    if not csv_path.is_file():
        raise DataError(f"{run}: no results.csv (is this a doubledescent run folder?)")
    out = Path(out_dir) if out_dir else run
    if out.exists() and not out.is_dir():
        raise DataError(f"out {out}: is a file, expected a folder")
    rows = read_results(csv_path)
    if not rows:
        raise DataError(f"{csv_path}: no finished units yet")
    stats, md, figs = build_report(rows, title=f"doubledescent: {run.name}", threshold_acc=threshold_acc)
    metrics = report_metrics(stats, rows, threshold_acc)
    write_demo_outputs(out, metrics, md, figs)
    return metrics
