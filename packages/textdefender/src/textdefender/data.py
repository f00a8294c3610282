"""Data: synthetic sentiment language, local files (``text<TAB>label``) or hub data sets; tokenizers; loaders."""

from __future__ import annotations

from pathlib import Path

from tenfold_core.errors import DataError
from textdefender.config import DataConfig, ModelConfig

__all__ = ["HUB_ALIASES", "load_data", "build_tokenizer", "load_tokenizer", "make_loader"]

# name -> (hub id, hub config, text column, label column)
HUB_ALIASES = {
    "ag_news": ("ag_news", None, "text", "label"),
    "agnews": ("ag_news", None, "text", "label"),
    "imdb": ("imdb", None, "text", "label"),
    "sst2": ("glue", "sst2", "sentence", "label"),
    "sst-2": ("glue", "sst2", "sentence", "label"),
}


def load_data(cfg: DataConfig):
    """A :class:`tenfold_core.data.TextClassificationData`."""
    from tenfold_core.data import load_text_classification, make_sentiment_data

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
        from tenfold_core.data import TextSplit

        data.train = TextSplit(data.train.texts[: cfg.max_train], data.train.labels[: cfg.max_train])
    if len(data.train) < 2:
        raise DataError(f"{cfg.source}: fewer than two training examples")
    return data


def build_tokenizer(model_cfg: ModelConfig, texts):
    """Word-level tokenizer from the training texts for the tiny encoder; the encoder's own otherwise."""
    if model_cfg.encoder == "tiny":
        from tenfold_core.models import word_level_tokenizer

        return word_level_tokenizer(texts, max_length=model_cfg.max_length)
    from transformers import AutoTokenizer

    from textdefender.model import encoder_path

    return AutoTokenizer.from_pretrained(encoder_path(model_cfg.encoder))


def load_tokenizer(run_dir: str | Path):
    from transformers import AutoTokenizer

    path = Path(run_dir) / "tokenizer"
    if not path.is_dir():
        raise DataError(f"{run_dir}: no tokenizer folder (not a run written by textdefender train)")
    return AutoTokenizer.from_pretrained(str(path))


def make_loader(texts, labels, tokenizer, batch_size, max_length, shuffle=False, seed=0):
    """Batches of ``{input_ids, attention_mask, labels}`` through the core's text loader."""
    try:
        from tenfold_core.data import make_text_dataloader
    except ImportError:  # pragma: no cover - core without the text loader yet
        return _fallback_loader(texts, labels, tokenizer, batch_size, max_length, shuffle, seed)
    return make_text_dataloader(texts, labels, tokenizer, batch_size=batch_size, max_length=max_length,
                                shuffle=shuffle, seed=seed)  # fmt: skip


def _fallback_loader(texts, labels, tokenizer, batch_size, max_length, shuffle, seed):  # pragma: no cover
    import torch

    from tenfold_core.train import make_dataloader

    enc = tokenizer(
        list(texts), padding="max_length", truncation=True, max_length=max_length, return_tensors="pt"
    )
    rows = [
        {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
         **({"labels": torch.tensor(int(labels[i]))} if labels is not None else {})}
        for i in range(len(texts))
    ]  # fmt: skip
    return make_dataloader(rows, batch_size, shuffle=shuffle, seed=seed)
