"""``results.csv``: one row per finished (model, width, noise, seed) unit, appended so that a kill never corrupts it.

Each row is written with a single ``write`` under an exclusive lock (``fcntl.flock`` where available, so several
``--shard`` processes can share one run folder) and fsynced. A torn last line (a kill in the middle of a write) is cut
off before the next append and ignored by the reader; a unit appears at most once (the first row wins).
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tenfold_core.errors import DataError

__all__ = ["COLUMNS", "append_row", "read_results", "unit_key"]

COLUMNS = [
    "model",
    "width",
    "params",
    "noise",
    "seed",
    "noise_mode",
    "n_train",
    "n_noisy",
    "labels_sha1",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "noisy_memorized",
    "knn_p",
]
_INT = {"width", "params", "seed", "n_train", "n_noisy"}
_FLOAT = {"noise", "train_loss", "train_acc", "test_loss", "test_acc", "noisy_memorized", "knn_p"}


def unit_key(model: str, width: int, noise: float, seed: int) -> tuple[str, int, float, int]:
    return (str(model), int(width), round(float(noise), 6), int(seed))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else repr(round(v, 8))
    return str(v)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows: single-process use only
            pass
        yield
    finally:
        os.close(fd)  # closing releases the lock


def append_row(path: str | os.PathLike, row: Mapping[str, Any]) -> None:
    """Append one result row (header first if the file is new), crash-safely."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([_fmt(row[c]) for c in COLUMNS])
    with _locked(path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            data = b""
            if size:
                data = os.pread(fd, size, 0)
                if not data.endswith(b"\n"):  # torn line from a killed writer: drop it
                    size = data.rfind(b"\n") + 1
                    os.ftruncate(fd, size)
                    data = data[:size]
            header = "" if size else ",".join(COLUMNS) + "\n"
            os.lseek(fd, size, os.SEEK_SET)
            os.write(fd, (header + buf.getvalue()).encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)


def _parse(path: Path, lineno: int, rec: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if k in _INT:
            out[k] = int(v)
        elif k in _FLOAT:
            out[k] = float(v)
        else:
            out[k] = v
    return out


def _parses(k: str, v: str) -> bool:
    try:
        (int if k in _INT else float)(v)
        return True
    except (TypeError, ValueError):
        return False


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of ``results.csv`` (typed), skipping a torn last line and duplicate units; [] if there is no file."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a doubledescent results file")
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a doubledescent results file (not UTF-8 text)") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    if "\x00" in text:
        raise DataError(f"{path}: not a doubledescent results file (binary data)")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    lines = text.splitlines()
    if not lines:
        return []
    try:
        header = next(csv.reader([lines[0]]))
    except csv.Error as e:
        raise DataError(f"{path} line 1: not a CSV header ({e})") from None
    missing = [c for c in ("model", "width", "noise", "seed", "test_loss", "train_acc") if c not in header]
    if missing:
        raise DataError(f"{path}: not a doubledescent results file (missing column(s) {', '.join(missing)})")
    rows, seen = [], set()
    reader = csv.DictReader(lines)
    for i in range(2, len(lines) + 2):
        try:
            rec = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise DataError(f"{path} line {i}: not valid CSV ({e})") from None
        if None in rec or any(v is None for v in rec.values()):
            raise DataError(f"{path} line {i}: expected {len(header)} fields")
        try:
            row = _parse(path, i, rec)
        except ValueError:
            bad = next((k for k in rec if k in _INT | _FLOAT and not _parses(k, rec[k])), "?")
            raise DataError(f"{path} line {i}: field '{bad}' is not a number ({rec.get(bad)!r})") from None
        key = unit_key(row["model"], row["width"], row["noise"], row["seed"])
        if key in seen:
            continue
        seen.add(key)
        rows.append(row)
    return rows
