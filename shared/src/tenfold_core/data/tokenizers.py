"""Tokenizers and loaders for text classifiers, shared by the packages that fine-tune one (torch-free at import;
transformers, from the ``[text]`` extra, is imported inside the functions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tenfold_core.errors import DataError

__all__ = ["encoder_path", "build_tokenizer", "load_run_tokenizer", "make_loader"]


def encoder_path(name: str) -> str:
    """``minilm`` (or ``all-minilm-l6-v2``) -> the local all-MiniLM-L6-v2 folder; anything else unchanged."""
    if name.lower() in ("minilm", "all-minilm-l6-v2"):
        from tenfold_core.models import minilm_path

        return minilm_path()
    return name


def build_tokenizer(encoder: str, texts: Any, max_length: int) -> Any:
    """``encoder == "tiny"``: a word-level tokenizer built from the training texts (for a random tiny encoder);
    otherwise the encoder's own tokenizer (``AutoTokenizer``; ``minilm`` is the local all-MiniLM-L6-v2)."""
    if encoder == "tiny":
        from tenfold_core.models import word_level_tokenizer

        return word_level_tokenizer(texts, max_length=max_length)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(encoder_path(encoder))


def load_run_tokenizer(run_dir: str | Path, producer: str = "train") -> Any:
    """The tokenizer a training verb saved in ``run_dir/tokenizer``; a one-line :class:`DataError` naming
    ``producer`` (e.g. ``"ibrobust train"``) when the folder is not such a run."""
    path = Path(run_dir) / "tokenizer"
    if not path.is_dir():
        raise DataError(f"{run_dir}: no tokenizer folder (not a run written by {producer})")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def make_loader(
    texts, labels, tokenizer, batch_size: int, max_length: int, shuffle: bool = False, seed: int = 0
):
    """Batches of ``{input_ids, attention_mask, labels}``: :func:`tenfold_core.data.make_text_dataloader` with
    positional sizes."""
    from tenfold_core.data.loader import make_text_dataloader

    return make_text_dataloader(texts, labels, tokenizer, batch_size=batch_size, max_length=max_length,
                                shuffle=shuffle, seed=seed)  # fmt: skip
