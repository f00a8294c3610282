"""Robustness metrics from per-example attack records (TextDefender protocol).

A record is a mapping with at least ``status`` in {"skipped", "succeeded", "failed"} (skipped = the clean input was
already misclassified), and optionally ``queries`` (model queries spent), ``perturbed_words`` and ``num_words``.
With n = all attacked examples: Clean% = (succeeded + failed) / n, AUA% = failed / n,
Suc% = succeeded / (succeeded + failed), #Query = mean queries over the non-skipped examples,
perturbed-word% = mean over succeeded examples of perturbed_words / num_words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

STATUSES = ("skipped", "succeeded", "failed")


def robustness_summary(records: Iterable[Mapping]) -> dict[str, float]:
    recs = list(records)
    counts = dict.fromkeys(STATUSES, 0)
    for i, r in enumerate(recs):
        s = r.get("status")
        if s not in counts:
            raise ValueError(f"record {i}: status must be one of {STATUSES}, got {s!r}")
        counts[s] += 1
    n = len(recs)
    attacked = counts["succeeded"] + counts["failed"]
    nan = float("nan")
    queries = [float(r.get("queries", 0)) for r in recs if r["status"] != "skipped"]
    pert = [
        100.0 * float(r["perturbed_words"]) / float(r["num_words"])
        for r in recs
        if r["status"] == "succeeded" and r.get("num_words")
    ]
    return {
        "n": n,
        "skipped": counts["skipped"],
        "succeeded": counts["succeeded"],
        "failed": counts["failed"],
        "clean_acc": 100.0 * attacked / n if n else nan,
        "aua": 100.0 * counts["failed"] / n if n else nan,
        "success_rate": 100.0 * counts["succeeded"] / attacked if attacked else nan,
        "mean_queries": sum(queries) / len(queries) if queries else nan,
        "perturbed_word_pct": sum(pert) / len(pert) if pert else nan,
    }
