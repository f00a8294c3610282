"""Demo and run outputs: flat ``metrics.json``, ``report.md`` and PNG plots, all written atomically."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tenfold_core.io import atomic_write_bytes, atomic_write_text, write_json

__all__ = ["write_metrics", "save_figure", "markdown_table", "write_demo_outputs", "new_figure"]


def _flat_number(k: str, v: Any) -> float | int | str | bool | None:
    if hasattr(v, "item") and callable(v.item):
        v = v.item()
    if isinstance(v, (bool, int, str)) or v is None:
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    raise TypeError(f"metrics.json must be flat: '{k}' is a {type(v).__name__}")


def write_metrics(path: str | os.PathLike, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Write a flat JSON object of headline numbers (non-finite floats become null)."""
    flat = {str(k): _flat_number(str(k), v) for k, v in metrics.items()}
    write_json(path, flat)
    return flat


def new_figure(width: float = 6.0, height: float = 4.0):
    """A matplotlib figure on the non-interactive Agg backend (safe on machines without a display)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Save a matplotlib figure as PNG atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def _fmt(v: Any, digits: int) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}f}" if math.isfinite(v) and abs(v) < 1e6 else f"{v:.3g}"
    return "" if v is None else str(v)


def markdown_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, digits: int = 4
) -> str:
    """Rows of dicts as a GitHub markdown table."""
    if not rows:
        return "_(no rows)_\n"
    columns = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c), digits) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_demo_outputs(
    out_dir: str | os.PathLike,
    metrics: Mapping[str, Any],
    report_md: str,
    figures: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``metrics.json``, ``report.md`` and every figure (name -> matplotlib figure) as ``name.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in (figures or {}).items():
        save_figure(fig, out / (name if name.endswith(".png") else name + ".png"))
    flat = write_metrics(out / "metrics.json", metrics)
    nulled = [k for k, v in flat.items() if v is None and metrics.get(k) is not None]
    if nulled:  # JSON has no NaN/inf: say which numbers were not finite
        report_md = report_md.rstrip("\n") + (
            "\n\n_Not finite (NaN or infinite), written as null in metrics.json: "
            + ", ".join(nulled)
            + "._\n"
        )
    atomic_write_text(out / "report.md", report_md)
    return out
