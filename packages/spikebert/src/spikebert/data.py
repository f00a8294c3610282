"""Data for every stage: labelled task data (tsv ``sentence<TAB>label`` folders as the official code,
csv/jsonl/parquet, hub ids, or the core's synthetic sentiment language), and the unlabelled stage-1 corpus, which is
tokenised once into memory-mapped shards and streamed (peak memory does not grow with the corpus).

Batches are ``{input_ids, attention_mask, labels}`` dicts from :func:`tenfold_core.data.make_text_dataloader`
(length-bucketed, dynamic or max-length padding); the stage-1 shards use the same dict layout.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from spikebert.config import CorpusConfig, DataConfig
from tenfold_core.data import (
    TextClassificationData,
    load_text_classification,
    make_sentiment_data,
    make_sentiment_split,
    read_rows,
    sentiment_vocabulary,
)
from tenfold_core.errors import DataError

__all__ = [
    "DataConfig",
    "CorpusConfig",
    "ShardDataset",
    "build_tokenizer",
    "char_level_tokenizer",
    "corpus_loaders",
    "iter_corpus",
    "load_task_data",
    "text_loader",
    "write_shards",
]


# ------------------------------------------------------------------------------------------- labelled data
def load_task_data(cfg: DataConfig) -> TextClassificationData:
    """The task's train/dev/test splits (``synthetic``: the negation-XOR sentiment language, label = adjective
    polarity XOR "not", so no single word predicts it)."""
    if not cfg.data:
        raise DataError("--data.data is required (a folder, a file, a hub id, or synthetic)")
    if cfg.data == "synthetic":
        return make_sentiment_data(
            n_train=cfg.synthetic_train, n_dev=cfg.synthetic_dev, n_test=cfg.synthetic_test,
            seed=cfg.synthetic_seed, but_prob=0.0,
        )  # fmt: skip
    data = load_text_classification(
        cfg.data, text_column=cfg.text_column, label_column=cfg.label_column, hub_config=cfg.hub_config
    )
    if len(data.label_names) < 2:
        raise DataError(f"{cfg.data}: needs at least 2 labels, found {data.label_names}")
    if not len(data.dev):
        raise DataError(f"{cfg.data}: empty dev split (model selection needs one)")
    return data


def char_level_tokenizer(texts: Iterable[str], max_length: int = 512):
    """A character-level BERT-style tokenizer ([PAD]=0, [UNK], [CLS], [SEP], [MASK]) built from ``texts``: every
    non-space character is a token, as Chinese BERT tokenizers treat CJK characters. Offline, no vocab file."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = sorted({ch for t in texts for ch in t if not ch.isspace()})
    table = {w: i for i, w in enumerate(special + chars)}
    tok = Tokenizer(models.WordLevel(vocab=table, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex("."), behavior="isolated")]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", table["[CLS]"]), ("[SEP]", table["[SEP]"])],
    )  # fmt: skip
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=max_length,
    )  # fmt: skip


def build_tokenizer(
    name: str, texts: Sequence[str], kind: str = "auto", synthetic: bool = False, max_length=512
):
    """``tiny``: a word-level tokenizer (the synthetic language's vocabulary, or the training texts' words), or a
    character-level one with ``kind="char"``; anything else: the tokenizer of a hub id / folder / run folder."""
    if name == "tiny":
        from tenfold_core.models import word_level_tokenizer

        if kind == "char":
            return char_level_tokenizer(texts, max_length)
        if synthetic:
            return word_level_tokenizer(vocab=sentiment_vocabulary(), max_length=max_length)
        return word_level_tokenizer(texts, max_length=max_length)
    from spikebert.teacher import load_tokenizer

    return load_tokenizer(name)


def text_loader(texts, labels, tokenizer, *, batch_size, max_length, shuffle, seed=0, padding="longest"):
    """Batches of ``{input_ids, attention_mask[, labels]}`` (the core's tokenize + pad-collate + bucketing)."""
    from tenfold_core.data import make_text_dataloader

    return make_text_dataloader(
        list(texts), None if labels is None else list(labels), tokenizer, batch_size=batch_size,
        max_length=max_length, shuffle=shuffle, seed=seed, padding=padding,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ stage-1 corpus
def iter_corpus(cfg: CorpusConfig) -> Iterator[str]:
    """Unlabelled sentences, one at a time: a ``.txt`` file (a sentence a line; ``sentence<TAB>label`` keeps the
    sentence), a labelled file/folder (its texts), a hub data set (streamed), or ``synthetic``."""
    source = cfg.corpus
    if not source:
        raise DataError(
            "--data.corpus is required (a text file, a labelled file/folder, a hub id, or synthetic)"
        )
    n = 0
    for text in _iter_source(cfg):
        text = text.strip()
        if text:
            yield text
            n += 1
            if cfg.max_samples and n >= cfg.max_samples:
                return
    if n == 0:
        raise DataError(f"{source}: no sentences")


def _iter_source(cfg: CorpusConfig) -> Iterator[str]:
    source = cfg.corpus
    if source == "synthetic":
        yield from make_sentiment_split(cfg.synthetic_size, seed=cfg.synthetic_seed, but_prob=0.0).texts
        return
    p = Path(source).expanduser()
    if p.is_file() and p.suffix.lower() in (".txt", ".text", ".raw", ""):
        with p.open("r", encoding="utf-8") as f:
            try:
                for line in f:
                    yield line.rsplit("\t", 1)[0] if "\t" in line else line
            except UnicodeDecodeError:
                raise DataError(f"{p}: not UTF-8 text") from None
    elif p.is_file():
        for r in read_rows(p, cfg.text_column, cfg.text_column):
            yield r[1]
    elif p.is_dir():
        yield from load_text_classification(p, text_column=cfg.text_column).train.texts
    elif source.startswith((".", "/", "~")):
        raise DataError(f"{source}: no such file or folder")
    else:
        yield from _hub_texts(source, cfg.text_column, cfg.hub_config)


def _hub_texts(name: str, column: str, hub_config: str | None) -> Iterator[str]:
    try:
        import datasets

        ds = datasets.load_dataset(name, hub_config, split="train", streaming=True)
    except Exception as e:
        raise DataError(
            f"{name}: cannot load this hub data set ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
            "pass a local text file instead"
        ) from None
    for row in ds:
        if column not in row:
            raise DataError(f"{name}: no column '{column}' (found: {', '.join(row)})")
        if isinstance(row[column], str):
            yield row[column]


def _tokenizer_key(tokenizer) -> str:
    vocab = sorted(tokenizer.get_vocab().items())
    return hashlib.sha1(json.dumps(vocab[:50000]).encode()).hexdigest()[:16] + f"-{len(vocab)}"


def write_shards(
    texts: Iterable[str], tokenizer, max_length: int, folder: str | os.PathLike, block: int = 2048
) -> dict:
    """Tokenise ``texts`` block by block into ``folder/tokens.bin`` (int32, all sentences back to back) and
    ``folder/offsets.bin`` (int64 start of each sentence): written once, memory-mapped afterwards, so memory stays
    O(block) whatever the corpus size. Reused when ``meta.json`` matches the tokenizer and ``max_length``."""
    out = Path(folder)
    meta_p = out / "meta.json"
    key = {"tokenizer": _tokenizer_key(tokenizer), "max_length": int(max_length)}
    if meta_p.is_file():
        try:
            meta = json.loads(meta_p.read_text())
            if {k: meta.get(k) for k in key} == key:
                return meta
        except (OSError, json.JSONDecodeError):
            pass
    out.mkdir(parents=True, exist_ok=True)
    # per-process temporary names, then atomic renames: DDP ranks may write the same (identical) shards at once
    tmp_t, tmp_o = out / f"tokens.bin.{os.getpid()}.tmp", out / f"offsets.bin.{os.getpid()}.tmp"
    n = pos = 0
    with tmp_t.open("wb") as ft, tmp_o.open("wb") as fo:
        buf: list[str] = []

        def flush():
            nonlocal n, pos
            enc = tokenizer(buf, truncation=True, max_length=max_length, padding=False)["input_ids"]
            offs = np.empty(len(enc), dtype=np.int64)
            for i, ids in enumerate(enc):
                offs[i] = pos
                pos += len(ids)
            ft.write(np.concatenate([np.asarray(ids, dtype=np.int32) for ids in enc]).tobytes())
            fo.write(offs.tobytes())
            n += len(enc)
            buf.clear()

        for t in texts:
            buf.append(t)
            if len(buf) >= block:
                flush()
        if buf:
            flush()
        fo.write(np.asarray([pos], dtype=np.int64).tobytes())
    os.replace(tmp_t, out / "tokens.bin")
    os.replace(tmp_o, out / "offsets.bin")
    meta = {**key, "sentences": n, "tokens": pos, "pad_token_id": int(tokenizer.pad_token_id or 0)}
    tmp_m = out / f"meta.json.{os.getpid()}.tmp"
    tmp_m.write_text(json.dumps(meta))
    os.replace(tmp_m, meta_p)
    return meta


class ShardDataset(Dataset):
    """Sentences ``[start, stop)`` of a shard folder written by :func:`write_shards` (memory-mapped)."""

    def __init__(self, folder: str | os.PathLike, start: int = 0, stop: int | None = None):
        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text())
        self.folder, self.n_all, self.pad_id = folder, int(meta["sentences"]), int(meta["pad_token_id"])
        self.start, self.stop = start, self.n_all if stop is None else stop
        self._tok = self._off = None

    def _open(self):
        if self._tok is None:  # opened lazily, so DataLoader workers each map the files themselves
            self._tok = np.memmap(self.folder / "tokens.bin", dtype=np.int32, mode="r")
            self._off = np.memmap(self.folder / "offsets.bin", dtype=np.int64, mode="r")

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> torch.Tensor:
        self._open()
        j = self.start + i
        return torch.from_numpy(np.array(self._tok[self._off[j] : self._off[j + 1]], dtype=np.int64))


def _pad_ids(items: list[torch.Tensor], pad_id: int, length: int | None) -> dict[str, torch.Tensor]:
    L = length or max(len(x) for x in items)
    ids = torch.full((len(items), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), L), dtype=torch.long)
    for i, x in enumerate(items):
        ids[i, : len(x)] = x
        mask[i, : len(x)] = 1
    return {"input_ids": ids, "attention_mask": mask}


class _PadCollate:
    def __init__(self, pad_id: int, length: int | None):
        self.pad_id, self.length = pad_id, length

    def __call__(self, items):
        return _pad_ids(items, self.pad_id, self.length)


def corpus_loaders(cfg: CorpusConfig, tokenizer, shard_dir: str | os.PathLike, seed: int = 0):
    """Stage-1 train and held-out loaders over the shard folder (written on first use). The held-out part is the
    first ``max(dev_fraction * N, dev_min)`` sentences (at most half the corpus)."""
    from tenfold_core.train import make_dataloader

    meta = write_shards(iter_corpus(cfg), tokenizer, cfg.max_length, shard_dir)
    n = meta["sentences"]
    n_dev = min(max(int(n * cfg.dev_fraction), cfg.dev_min, 1), n // 2)
    if n_dev < 1 or n - n_dev < 1:
        raise DataError(f"{cfg.corpus}: too few sentences ({n}) for a training and a held-out part")
    length = cfg.max_length if cfg.padding == "max_length" else None
    collate = _PadCollate(meta["pad_token_id"], length)
    train = make_dataloader(
        ShardDataset(shard_dir, n_dev), cfg.batch_size, shuffle=True, seed=seed, collate_fn=collate
    )
    dev = make_dataloader(
        ShardDataset(shard_dir, 0, n_dev), cfg.batch_size, shuffle=False, collate_fn=collate
    )
    return train, dev, {"sentences": n, "dev_sentences": n_dev, "tokens": meta["tokens"]}
