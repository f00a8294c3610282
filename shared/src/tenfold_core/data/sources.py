"""One entry point for text-classification data named in a :class:`tenfold_core.config.TextDataConfig`."""

from __future__ import annotations

from pathlib import Path

from tenfold_core.config import TextDataConfig
from tenfold_core.data.synthetic import make_sentiment_data
from tenfold_core.data.text import TextClassificationData, TextSplit, load_text_classification
from tenfold_core.errors import DataError

__all__ = ["HUB_ALIASES", "load_text_data"]

# short name -> (hub id, hub config, text column, label column)
HUB_ALIASES = {
    "ag_news": ("ag_news", None, "text", "label"),
    "agnews": ("ag_news", None, "text", "label"),
    "imdb": ("imdb", None, "text", "label"),
    "sst2": ("glue", "sst2", "sentence", "label"),
    "sst-2": ("glue", "sst2", "sentence", "label"),
}


def load_text_data(cfg: TextDataConfig) -> TextClassificationData:
    """The synthetic sentiment language, a hub alias (a local path of that name wins), or a local file/folder."""
    if cfg.source == "synthetic":
        data = make_sentiment_data(cfg.n_train, cfg.n_dev, cfg.n_test, seed=cfg.seed, but_prob=cfg.but_prob,
                                   negation_prob=cfg.negation_prob)  # fmt: skip
    elif cfg.source.lower() in HUB_ALIASES and not Path(cfg.source).exists():
        hub, conf, text_col, label_col = HUB_ALIASES[cfg.source.lower()]
        data = load_text_classification(hub, hub_config=conf, text_column=text_col, label_column=label_col,
                                        seed=cfg.seed)  # fmt: skip
    else:
        data = load_text_classification(cfg.source, text_column=cfg.text_column, label_column=cfg.label_column,
                                        seed=cfg.seed)  # fmt: skip
    if cfg.max_train and len(data.train) > cfg.max_train:
        data.train = TextSplit(data.train.texts[: cfg.max_train], data.train.labels[: cfg.max_train])
    if len(data.train) < 2:
        raise DataError(f"{cfg.source}: fewer than two training examples")
    return data
