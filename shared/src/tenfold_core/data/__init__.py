"""Data loading (hub ids and local files), text batches for classifiers, tiny synthetic generators.

``make_text_dataloader`` (and the rest of :mod:`tenfold_core.data.loader`) imports torch, so it is loaded lazily.
"""

from tenfold_core.data.sources import HUB_ALIASES, load_text_data
from tenfold_core.data.synthetic import (
    make_sentiment_data,
    make_sentiment_split,
    sentiment_corpus,
    sentiment_sentence,
    sentiment_vocabulary,
)
from tenfold_core.data.text import (
    TextClassificationData,
    TextSplit,
    build_label_names,
    load_text_classification,
    read_rows,
    split_indices,
    write_tsv,
)
from tenfold_core.data.tokenizers import build_tokenizer, encoder_path, load_run_tokenizer

__all__ = [
    "HUB_ALIASES",
    "load_text_data",
    "build_tokenizer",
    "encoder_path",
    "load_run_tokenizer",
    "make_text_dataloader",
    "LengthBucketSampler",
    "check_labels",
    "TextClassificationData",
    "TextSplit",
    "build_label_names",
    "load_text_classification",
    "make_sentiment_data",
    "make_sentiment_split",
    "read_rows",
    "sentiment_corpus",
    "sentiment_sentence",
    "sentiment_vocabulary",
    "split_indices",
    "write_tsv",
]

_LAZY = {"make_text_dataloader", "LengthBucketSampler", "check_labels", "TokenizedTextDataset", "pad_collate",
         "padding_fraction"}  # fmt: skip


def __getattr__(name: str):
    if name in _LAZY:
        from tenfold_core.data import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'tenfold_core.data' has no attribute {name!r}")
