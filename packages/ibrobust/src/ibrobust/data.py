"""Data: synthetic sentiment language, local files (``text<TAB>label``) or hub data sets; tokenizers; loaders."""

from __future__ import annotations

from pathlib import Path

from ibrobust.config import IBConfig
from tenfold_core.data import load_text_data as load_data  # the core's loader for the shared data section
from tenfold_core.data import tokenizers as _core_tokenizers
from tenfold_core.data.tokenizers import make_loader

__all__ = ["load_data", "build_tokenizer", "load_tokenizer", "make_loader"]


def build_tokenizer(model_cfg: IBConfig, texts):
    """Word-level tokenizer from the training texts for the tiny encoder; the encoder's own otherwise."""
    return _core_tokenizers.build_tokenizer(model_cfg.encoder, texts, model_cfg.max_length)


def load_tokenizer(run_dir: str | Path):
    return _core_tokenizers.load_run_tokenizer(run_dir, "ibrobust train")
