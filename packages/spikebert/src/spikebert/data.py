"""Data for the three stages: labelled task data (tsv ``sentence<TAB>label`` folders as the official code,
csv/jsonl/parquet, hub ids) and unlabelled text for stage 1, tokenized with the teacher's tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from tenfold_core.cli import arg
from tenfold_core.data import TextClassificationData, TextSplit, load_text_classification, read_rows
from tenfold_core.errors import DataError

__all__ = [
    "DataArgs",
    "TokenizedDataset",
    "collate",
    "load_task_data",
    "load_corpus",
    "tokenize",
]


@dataclass
class DataArgs:
    """Where the labelled task data comes from."""

    data: str = arg(
        "",
        help="folder with train/validation(dev)/test files (.txt/.tsv 'sentence<TAB>label' as the official "
        "code, .csv, .jsonl, .parquet), one file (split 80/10/10), or a hub id (e.g. stanfordnlp/sst2)",
    )
    text_column: str = arg("text", help="text column (csv/jsonl/parquet/hub; sst2 on the hub: sentence)")
    label_column: str = arg("label", help="label column")
    hub_config: str | None = arg(None, help="hub data-set configuration name")
    max_length: int = arg(128, help="tokens per sentence (truncated beyond)")
    batch_size: int = arg(32, help="batch size")
    metric: str = arg("accuracy", help="model-selection metric on dev: accuracy or mcc (CoLA-style)")

    def __post_init__(self):
        if self.metric not in ("accuracy", "mcc"):
            raise ValueError(f"data.metric must be accuracy or mcc, got {self.metric!r}")
        if self.max_length < 2 or self.batch_size < 1:
            raise ValueError("data.max_length must be >= 2 and data.batch_size >= 1")


def load_task_data(args: DataArgs) -> TextClassificationData:
    if not args.data:
        raise DataError("--data.data is required (a folder, a file or a hub id)")
    data = load_text_classification(
        args.data, text_column=args.text_column, label_column=args.label_column, hub_config=args.hub_config
    )
    if len(data.label_names) < 2:
        raise DataError(f"{args.data}: needs at least 2 labels, found {data.label_names}")
    if not len(data.dev):
        raise DataError(f"{args.data}: empty dev split (model selection needs one)")
    return data


def load_corpus(
    source: str, text_column: str = "text", max_samples: int | None = None, hub_config: str | None = None
) -> list[str]:
    """Unlabelled sentences for stage 1: a ``.txt`` file (one sentence a line), any labelled file the task loader
    reads (its texts), or a hub data set (its train split's ``text_column``)."""
    p = Path(source)
    if p.is_file() and p.suffix.lower() in (".txt", ".text", ".raw", ""):
        try:
            lines = p.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise DataError(f"{p}: not UTF-8 text") from None
        # a labelled 'sentence<TAB>label' file also works: keep the sentence
        texts = [ln.rsplit("\t", 1)[0].strip() if "\t" in ln else ln.strip() for ln in lines]
        texts = [t for t in texts if t]
    elif p.is_file():
        texts = [r[1] for r in read_rows(p, text_column, text_column)]
    elif p.is_dir():
        data = load_text_classification(p, text_column=text_column)
        texts = data.train.texts
    elif source.startswith((".", "/", "~")):
        raise DataError(f"{source}: no such file or folder")
    else:
        texts = _hub_texts(source, text_column, max_samples, hub_config)
    if not texts:
        raise DataError(f"{source}: no sentences")
    return texts[:max_samples] if max_samples else texts


def _hub_texts(name: str, column: str, max_samples: int | None, hub_config: str | None) -> list[str]:
    try:
        import datasets

        ds = datasets.load_dataset(name, hub_config, split="train", streaming=max_samples is not None)
    except Exception as e:
        raise DataError(
            f"{name}: cannot load this hub data set ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
            "pass a local text file instead"
        ) from None
    out = []
    for row in ds:
        if column not in row:
            raise DataError(f"{name}: no column '{column}' (found: {', '.join(row)})")
        if isinstance(row[column], str) and row[column].strip():
            out.append(row[column])
        if max_samples and len(out) >= max_samples:
            break
    return out


def tokenize(tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids (with [CLS]/[SEP]) of each text, truncated to ``max_length``; no padding."""
    if not texts:
        return []
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    return [list(ids) for ids in enc["input_ids"]]


class TokenizedDataset(Dataset):
    """Token ids and (optional) labels; batches come from :func:`collate` (dynamic padding)."""

    def __init__(self, ids: list[list[int]], labels: Sequence[int] | None = None, pad_id: int = 0):
        if labels is not None and len(labels) != len(ids):
            raise ValueError("ids and labels differ in length")
        self.ids, self.labels, self.pad_id = ids, (list(labels) if labels is not None else None), pad_id

    @classmethod
    def from_split(cls, tokenizer, split: TextSplit, max_length: int) -> TokenizedDataset:
        return cls(tokenize(tokenizer, split.texts, max_length), split.labels, tokenizer.pad_token_id or 0)

    @classmethod
    def from_texts(cls, tokenizer, texts: Sequence[str], max_length: int) -> TokenizedDataset:
        return cls(tokenize(tokenizer, texts, max_length), None, tokenizer.pad_token_id or 0)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int):
        return (self.ids[i], -1 if self.labels is None else self.labels[i], self.pad_id)


def collate(items) -> dict[str, torch.Tensor]:
    """Pad a list of ``(ids, label, pad_id)`` to the longest: ``input_ids``, ``attention_mask``, ``labels``."""
    L = max(len(ids) for ids, _, _ in items)
    pad = items[0][2]
    input_ids = torch.full((len(items), L), pad, dtype=torch.long)
    mask = torch.zeros((len(items), L), dtype=torch.long)
    for i, (ids, _, _) in enumerate(items):
        input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[i, : len(ids)] = 1
    labels = torch.tensor([y for _, y, _ in items], dtype=torch.long)
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}
