"""Data loading (hub ids and local files) and tiny synthetic generators for tests and demos."""

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

__all__ = [
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
