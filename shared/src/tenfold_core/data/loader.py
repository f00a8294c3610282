"""Batches for Hugging Face classifiers: tokenize once, length-bucketed shuffling seeded by (seed, epoch), pad-collate.

:func:`make_text_dataloader` is the one way every Tenfold package feeds text to a ``transformers`` classifier (or any
model taking ``input_ids`` / ``attention_mask``). Its batches are dicts ``{input_ids, attention_mask, labels}``, which
:class:`tenfold_core.train.ClassifierModule` passes as ``model(**inputs)``.

- Shuffled loaders draw a permutation from (seed, epoch), cut it into pools of ``pool_batches`` batches, sort each pool
  by length and shuffle the batch order: batches hold texts of similar length (little padding), the epoch order is
  random, and a resumed run sees the same batches. Lightning calls ``set_epoch``; under DDP it gives each rank every
  ``world_size``-th index of this order, so each rank's batches stay length-homogeneous.
- Unshuffled loaders keep the input order (predictions line up with ``texts``) and pad each batch to its longest.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from tenfold_core.errors import ConfigError, DataError

__all__ = [
    "make_text_dataloader",
    "LengthBucketSampler",
    "TokenizedTextDataset",
    "pad_collate",
    "check_labels",
]


def check_labels(labels: Sequence[Any], num_labels: int | None = None, where: str = "labels") -> list[int]:
    """Class labels as ints in ``0..K-1``: a non-integer, negative or out-of-range value is a one-line DataError."""
    out = []
    for i, y in enumerate(labels):
        v = y.item() if hasattr(y, "item") and callable(y.item) else y
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or (isinstance(v, float) and not v.is_integer())
        ):
            raise DataError(f"{where}[{i}]: label {y!r} is not an integer class index")
        v = int(v)
        if v < 0 or (num_labels is not None and v >= num_labels):
            rng = f"0..{num_labels - 1}" if num_labels is not None else ">= 0"
            raise DataError(f"{where}[{i}]: label {v} is outside the label set ({rng})")
        out.append(v)
    return out


class TokenizedTextDataset(Dataset):
    """Token ids (truncated, unpadded) and optional labels."""

    def __init__(self, ids: list[list[int]], labels: list[int] | None = None):
        if labels is not None and len(labels) != len(ids):
            raise DataError(f"{len(ids)} texts but {len(labels)} labels")
        self.ids, self.labels = ids, labels

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[list[int], int | None]:
        return self.ids[i], (None if self.labels is None else self.labels[i])

    @property
    def lengths(self) -> list[int]:
        return [len(x) for x in self.ids]


class LengthBucketSampler(Sampler[int]):
    """Index order for a DataLoader with ``batch_size``: seeded by (seed, epoch); with ``bucket``, consecutive
    ``batch_size`` chunks hold texts of similar length. See the module docstring."""

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        bucket: bool = True,
        pool_batches: int = 50,
    ):
        self.lengths = list(lengths)
        self.batch_size, self.shuffle, self.seed, self.bucket = int(batch_size), shuffle, int(seed), bucket
        self.pool_batches = int(pool_batches)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        n = len(self.lengths)
        if not self.shuffle:
            return iter(range(n))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(n, generator=g).tolist()
        if not self.bucket:
            return iter(order)
        world = 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            world = torch.distributed.get_world_size()
        chunk = self.batch_size * world  # under DDP each rank takes every world-th index of a chunk
        pool = chunk * max(self.pool_batches, 1)
        chunks: list[list[int]] = []
        for start in range(0, n, pool):
            part = sorted(order[start : start + pool], key=lambda i: -self.lengths[i])
            chunks.extend(part[j : j + chunk] for j in range(0, len(part), chunk))
        last = chunks.pop() if chunks and len(chunks[-1]) < chunk else None  # a short chunk stays last
        perm = torch.randperm(len(chunks), generator=g).tolist()
        out = [i for c in perm for i in chunks[c]]
        return iter(out + (last or []))


def pad_collate(items, pad_id: int, pad_to: int | None = None) -> dict[str, torch.Tensor]:
    """Pad ``(ids, label)`` items to the longest (or to ``pad_to``): ``input_ids``, ``attention_mask``, ``labels``."""
    width = pad_to or max(len(ids) for ids, _ in items)
    input_ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for i, (ids, _) in enumerate(items):
        input_ids[i, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
        mask[i, : len(ids)] = 1
    out = {"input_ids": input_ids, "attention_mask": mask}
    if items[0][1] is not None:
        out["labels"] = torch.tensor([y for _, y in items], dtype=torch.long)
    return out


class _Collate:  # picklable (worker processes)
    def __init__(self, pad_id: int, pad_to: int | None):
        self.pad_id, self.pad_to = pad_id, pad_to

    def __call__(self, items):
        return pad_collate(items, self.pad_id, self.pad_to)


def make_text_dataloader(
    texts: Sequence[str],
    labels: Sequence[int] | None,
    tokenizer: Any,
    *,
    batch_size: int,
    max_length: int = 128,
    shuffle: bool = False,
    seed: int = 0,
    bucket: bool = True,
    padding: Literal["longest", "max_length"] = "longest",
    num_labels: int | None = None,
    num_workers: int = 0,
    pool_batches: int = 50,
) -> DataLoader:
    """A DataLoader of ``{input_ids, attention_mask, labels}`` dicts (``labels`` omitted when ``labels`` is None).

    Texts are tokenized once (truncated to ``max_length``, special tokens added). ``padding="longest"`` pads each batch
    to its longest text, ``"max_length"`` to ``max_length``. Labels must be class indices (``0..num_labels-1`` when
    ``num_labels`` is given): anything else is a one-line :class:`DataError`.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if max_length < 1:
        raise ConfigError(f"max_length must be >= 1, got {max_length}")
    if padding not in ("longest", "max_length"):
        raise ConfigError(f"padding: expected 'longest' or 'max_length', got {padding!r}")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise DataError(f"texts[{i}]: expected a string, got {type(t).__name__}")
    if not texts:
        raise DataError("no texts to make batches of")
    ys = check_labels(labels, num_labels) if labels is not None else None
    if ys is not None and len(ys) != len(texts):
        raise DataError(f"{len(texts)} texts but {len(ys)} labels")
    pad_id = getattr(tokenizer, "pad_token_id", None)
    if pad_id is None:
        raise ConfigError("the tokenizer has no pad token (set tokenizer.pad_token, e.g. to its eos token)")
    enc = tokenizer(texts, truncation=True, max_length=max_length, padding=False)
    ids = [list(x) for x in enc["input_ids"]]
    ds = TokenizedTextDataset(ids, ys)
    sampler = LengthBucketSampler(
        ds.lengths, batch_size, shuffle=shuffle, seed=seed, bucket=bucket, pool_batches=pool_batches
    )
    return DataLoader(
        ds,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=_Collate(int(pad_id), max_length if padding == "max_length" else None),
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )


def padding_fraction(loader: DataLoader) -> float:
    """Share of padded positions over one pass of ``loader`` (for benchmarks and tests of bucketing)."""
    pad = total = 0
    for b in loader:
        m = b["attention_mask"]
        pad += int((m == 0).sum())
        total += m.numel()
    return pad / max(total, 1) if total else math.nan
