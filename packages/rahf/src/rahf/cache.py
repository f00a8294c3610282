"""Direction activations on disk: v = A(p+) - A(p-) at the target layers, response tokens only, fp16, memory-mapped.

Layout of a cache folder: ``v.f16`` (``[total response tokens, L, H]``), ``offsets.npy`` (``[N + 1]``: row i owns
tokens ``offsets[i]:offsets[i+1]``) and ``meta.json``. The folder is written under a temporary name and renamed, so a
kill leaves no half cache; a finished one is reused when its key (model, data, layers, lengths) matches.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

__all__ = ["DirectionCache", "write_cache", "cache_key"]


def cache_key(**parts) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class DirectionCache:
    """Read side: ``cache[i]`` is a float32 tensor ``[R_i, L, H]`` read from the memory map."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.meta = json.loads((self.path / "meta.json").read_text())
        self.offsets = np.load(self.path / "offsets.npy")
        total, n_layers, hidden = int(self.offsets[-1]), self.meta["n_layers"], self.meta["hidden"]
        self.v = np.memmap(
            self.path / "v.f16", dtype=np.float16, mode="r", shape=(max(total, 1), n_layers, hidden)
        )

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def length(self, i: int) -> int:
        return int(self.offsets[i + 1] - self.offsets[i])

    def __getitem__(self, i: int) -> torch.Tensor:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return torch.from_numpy(np.array(self.v[a:b], dtype=np.float32))

    @property
    def nbytes(self) -> int:
        return int(self.offsets[-1]) * self.meta["n_layers"] * self.meta["hidden"] * 2


def write_cache(path: str | Path, rows: Iterable[torch.Tensor], n_rows: int, n_layers: int, hidden: int,
                meta: dict | None = None, max_bytes: float | None = None) -> DirectionCache:  # fmt: skip
    """Stream ``rows`` (each ``[R_i, L, H]``) into a cache folder at ``path`` (atomic) and open it."""
    path = Path(path)
    if (path / "meta.json").is_file():
        return DirectionCache(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-" + path.name + ".", dir=path.parent))
    try:
        offsets = [0]
        with open(tmp / "v.f16", "wb") as f:
            for r in rows:
                a = r.detach().to(torch.float16).cpu().numpy()
                if a.ndim != 3 or a.shape[1:] != (n_layers, hidden):
                    raise ValueError(f"cache row of shape {a.shape}, expected [R, {n_layers}, {hidden}]")
                f.write(np.ascontiguousarray(a).tobytes())
                offsets.append(offsets[-1] + a.shape[0])
                if max_bytes is not None and offsets[-1] * n_layers * hidden * 2 > max_bytes:
                    from tenfold_core.errors import ConfigError

                    raise ConfigError(f"direction cache would exceed max_cache_gb ({max_bytes / 1e9:.1f} GB)")
            if offsets[-1] == 0:
                f.write(np.zeros((1, n_layers, hidden), np.float16).tobytes())
            f.flush()
            os.fsync(f.fileno())
        if len(offsets) != n_rows + 1:
            raise ValueError(f"cache got {len(offsets) - 1} rows, expected {n_rows}")
        np.save(tmp / "offsets.npy", np.asarray(offsets, dtype=np.int64))
        (tmp / "meta.json").write_text(json.dumps({"n_layers": n_layers, "hidden": hidden, **(meta or {})}))
        try:
            os.replace(tmp, path)
        except OSError:  # another process finished the same cache first
            if not (path / "meta.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return DirectionCache(path)
