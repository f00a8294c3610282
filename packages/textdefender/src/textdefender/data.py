"""Data: synthetic sentiment language, local files (``text<TAB>label``) or hub data sets; tokenizers; loaders."""

from __future__ import annotations

from pathlib import Path

from tenfold_core.errors import DataError
from textdefender.config import DataConfig, ModelConfig

__all__ = ["load_data", "build_tokenizer", "load_tokenizer", "make_loader"]


def load_data(cfg: DataConfig):
    """A :class:`tenfold_core.data.TextClassificationData` (the core's loader for the shared data section)."""
    from tenfold_core.data import load_text_data

    return load_text_data(cfg)


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
    from tenfold_core.data import make_text_dataloader

    return make_text_dataloader(texts, labels, tokenizer, batch_size=batch_size, max_length=max_length,
                                shuffle=shuffle, seed=seed)  # fmt: skip
