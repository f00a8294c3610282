"""Crash-safe file output: every write goes to a temporary file in the same folder, is fsynced, then renamed.

A kill at any moment leaves either the old file or the new one, never a partial file under the final name.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

TMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[BinaryIO]:
    """Open a temporary sibling of ``path`` for writing; on success fsync it and rename it over ``path``."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open supports 'w' and 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + path.name + ".", dir=path.parent)
    try:
        os.fchmod(
            fd, 0o666 & ~current_umask()
        )  # mkstemp creates 0600; outputs respect the umask like open() does
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        with contextlib.suppress(OSError):  # make the rename durable (not supported on every filesystem)
            dirfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dirfd)
            finally:
                os.close(dirfd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask would briefly set it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    """Write ``obj`` as JSON atomically (numpy / torch scalars become Python numbers; NaN and infinities, which JSON
    does not have, become ``null``)."""
    text = json.dumps(json_safe(obj), indent=indent, sort_keys=False, allow_nan=False)
    atomic_write_text(path, text + "\n")


def json_safe(o: Any, fallback: Callable[[Any], Any] | None = None) -> Any:
    """``o`` as plain JSON data: non-finite floats -> None, numpy/torch values -> Python numbers and lists, paths ->
    strings, dataclasses -> dicts. Anything else raises ``TypeError``, or becomes ``fallback(o)`` when given (the
    CLI passes ``str``)."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, (str, int, bool)) or o is None:
        return o
    if isinstance(o, dict):
        return {
            str(k) if not isinstance(k, (str, int, float, bool)) else k: json_safe(v, fallback)
            for k, v in o.items()
        }
    if isinstance(o, (list, tuple)):
        return [json_safe(v, fallback) for v in o]
    try:
        plain = _json_default(o)
    except TypeError:
        if fallback is None:
            raise
        return fallback(o)
    return json_safe(plain, fallback)


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist") and callable(o.tolist):  # numpy / torch scalars and arrays
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def remove_stale_tmp(folder: str | os.PathLike) -> int:
    """Delete temporary files left by a killed writer in ``folder``; returns how many were removed."""
    n = 0
    folder = Path(folder)
    if folder.is_dir():
        for p in folder.glob(TMP_PREFIX + "*"):
            with contextlib.suppress(OSError):
                p.unlink()
                n += 1
    return n


def is_rank_zero() -> bool:
    """True unless this process is a non-zero rank of a distributed run: the process that writes run outputs, prints
    results and takes locks. Reads the environment that Lightning's launcher, torchrun, SLURM or LSF set (``RANK``,
    ``SLURM_PROCID``, ``JSM_NAMESPACE_RANK``, else ``LOCAL_RANK`` and ``NODE_RANK``); cheap and import-free."""
    for key in ("RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        value = os.environ.get(key)
        if value not in (None, ""):
            return int(value) == 0
    return os.environ.get("LOCAL_RANK", "0") in ("", "0") and os.environ.get("NODE_RANK", "0") in ("", "0")
