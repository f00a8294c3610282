"""A small cache of large CPU buffers for the fused kernels' outputs (spikes, membrane, input gradient).

Why: glibc serves every allocation above its mmap threshold (at most 32 MiB, often far less) with a fresh
mapping, so each large output tensor of a plain ``torch.empty`` is faulted in page by page and zeroed by the
kernel on first touch. On the machines measured here that cost 2-3 us per 4 KiB page: more than the LIF kernel
itself at T = 16. This module keeps the memory of outputs that died and hands it out again:

- a block is an anonymous ``mmap`` aligned to 2 MiB and advised ``MADV_HUGEPAGE`` where the OS has it (on the
  machine measured here that did not make the first touch of a fresh block cheaper: ~25 ms per 32 MiB either
  way; the saving comes from reuse);
- a tensor handed out is ``torch.from_numpy`` of a view of a block; when its storage dies (the view is
  collected), a ``weakref.finalize`` puts the block back (most recently freed first, so it may still be in cache);
- the cache keeps at most ``max_bytes`` of idle blocks (least recently freed evicted first; default 1 GiB, env
  ``TENFOLD_LIF_CACHE_MB``, ``set_cache_limit``; 0 switches caching off). Only tensors of at least ``MIN_BYTES``
  are served from it; smaller ones come from ``torch.empty`` as usual.

It never affects results: a block is reused only after every tensor that viewed it is gone. Tensors from it are
ordinary CPU tensors except that their storage is not resizable (``resize_`` to a larger size fails).
"""

from __future__ import annotations

import collections
import contextlib
import mmap
import os
import threading
import weakref

import numpy as np
import torch

__all__ = ["MIN_BYTES", "bypass", "cache_info", "clear", "empty", "set_cache_limit"]

MIN_BYTES = 1 << 20
_GRAIN = 2 << 20  # size classes and alignment: one huge page
_lock = threading.RLock()
_free: dict[int, list] = collections.defaultdict(list)  # size class -> idle blocks, most recent last
_order: collections.OrderedDict = collections.OrderedDict()  # id(block) -> (size class, block), oldest first
_state = {"idle_bytes": 0, "hits": 0, "misses": 0}


def _default_limit() -> int:
    try:
        return int(float(os.environ.get("TENFOLD_LIF_CACHE_MB", "1024")) * (1 << 20))
    except ValueError:
        return 1 << 30


_limit = [_default_limit()]
_bypass = threading.local()


@contextlib.contextmanager
def bypass():
    """Within this block ``empty`` allocates with plain ``torch.empty`` (benchmarks: the uncached figure); the
    idle blocks stay cached."""
    before = getattr(_bypass, "on", False)
    _bypass.on = True
    try:
        yield
    finally:
        _bypass.on = before


class _Block:
    """One anonymous mapping; ``array`` is its 2 MiB-aligned ``uint8`` view of ``size`` bytes."""

    __slots__ = ("mm", "array", "size")

    def __init__(self, size: int):
        mm = mmap.mmap(-1, size + _GRAIN)
        raw = np.frombuffer(mm, dtype=np.uint8)
        offset = (-raw.ctypes.data) % _GRAIN
        advise = getattr(mmap, "MADV_HUGEPAGE", None)
        if advise is not None:
            try:
                mm.madvise(advise, offset, size)
            except (OSError, ValueError):  # pragma: no cover - depends on the kernel
                pass
        self.mm, self.array, self.size = mm, raw[offset : offset + size], size


def set_cache_limit(max_bytes: int) -> int:
    """Keep at most ``max_bytes`` of idle buffers (0: no caching). Returns the previous limit."""
    with _lock:
        before = _limit[0]
        _limit[0] = max(0, int(max_bytes))
        _evict()
    return before


def clear() -> None:
    """Drop every idle buffer (the memory goes back to the OS) and reset the hit/miss counts."""
    with _lock:
        _free.clear()
        _order.clear()
        _state.update(idle_bytes=0, hits=0, misses=0)


def cache_info() -> dict:
    """Idle bytes held, the limit, and hit/miss counts of ``empty``."""
    with _lock:
        return dict(_state, limit=_limit[0], idle_blocks=len(_order))


def _evict() -> None:
    while _state["idle_bytes"] > _limit[0] and _order:
        _, (size, block) = _order.popitem(last=False)
        _free[size].remove(block)
        _state["idle_bytes"] -= size


def _release(block: _Block) -> None:
    with _lock:
        if _limit[0] <= 0:
            return
        _free[block.size].append(block)
        _order[id(block)] = (block.size, block)
        _state["idle_bytes"] += block.size
        _evict()


def empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised contiguous CPU tensor, served from the cache when it is large enough."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    n = 1
    for d in shape:
        n *= int(d)
    nbytes = n * itemsize
    if nbytes < MIN_BYTES or _limit[0] <= 0 or getattr(_bypass, "on", False):
        return torch.empty(shape, dtype=dtype)
    size = -(-nbytes // _GRAIN) * _GRAIN
    with _lock:
        blocks = _free.get(size)
        if blocks:
            block = blocks.pop()
            del _order[id(block)]
            _state["idle_bytes"] -= size
            _state["hits"] += 1
        else:
            block = None
            _state["misses"] += 1
    if block is None:
        block = _Block(size)
    view = block.array[:nbytes].view(_NP[dtype]).reshape(shape)
    fin = weakref.finalize(view, _release, block)
    fin.atexit = False
    return torch.from_numpy(view)


_NP = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16, torch.uint8: np.uint8}
