"""The models: any Hugging Face causal LM (a tiny Llama/GPT-2 from LMConfig, SmolLM2 offline, a folder, a hub id),
LoRA on q/v of the blocks below the highest target layer, merging, and run folders (``load_run`` rebuilds them).

A run folder holds ``model.safetensors`` + ``config.json`` (written by ``tenfold_core.train.fit``, or by
:func:`save_policy` after a LoRA merge) and the tokenizer in ``tokenizer/``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from rahf.config import LMConfig, PrefDataConfig

__all__ = [
    "LMConfig",
    "PrefDataConfig",
    "build_tokenizer",
    "build_lm",
    "start_model",
    "load_policy",
    "save_policy",
    "add_lora",
    "merge_lora",
    "hidden_at",
    "param_bytes",
]


def build_tokenizer(cfg: LMConfig, words: Sequence[str] | None = None):
    """The tokenizer: a word-level chat tokenizer over ``words`` for tiny models, else the pretrained one."""
    if cfg.base == "tiny":
        from rahf.data import synthetic_vocab
        from tenfold_core.llm import chat_word_tokenizer

        return chat_word_tokenizer(sorted(set(words or synthetic_vocab())), max_length=cfg.max_len)
    from tenfold_core.llm import load_causal_lm

    return load_causal_lm(cfg.base)[1]


def build_lm(cfg: LMConfig, tokenizer) -> nn.Module:
    """A fresh tiny LM (seeded) or the pretrained ``cfg.base``."""
    if cfg.base == "tiny":
        from tenfold_core.llm import tiny_causal_lm

        return tiny_causal_lm(
            cfg.vocab_size or len(tokenizer), kind=cfg.kind, hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads,
            max_len=cfg.max_len, seed=cfg.seed, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )  # fmt: skip
    from tenfold_core.llm import load_causal_lm

    return load_causal_lm(cfg.base)[0]


def pair_words(pairs) -> list[str]:
    return sorted({w for p in pairs for t in (p.prompt, p.chosen, p.rejected) for w in t.split()})


def start_model(cfg: LMConfig, init: str | None, pairs=()):
    """``(model, tokenizer)`` from a run folder ``init``, else a fresh ``cfg.base`` (tiny: vocabulary of the pairs)."""
    if init:
        return load_policy(init)
    words = None
    if cfg.base == "tiny":
        from rahf.config import BAD_PROMPT, GOOD_PROMPT
        from rahf.data import synthetic_vocab

        words = sorted(
            set(synthetic_vocab()) | set(pair_words(pairs)) | set((GOOD_PROMPT + " " + BAD_PROMPT).split())
        )
    tok = build_tokenizer(cfg, words)
    return build_lm(cfg, tok), tok


def load_policy(run_dir: str | Path):
    """``(model, tokenizer)`` of a run folder written by a rahf verb."""
    from transformers import AutoTokenizer

    from tenfold_core.errors import ModelLoadError
    from tenfold_core.models import load_run

    run = load_run(run_dir)
    tdir = Path(run_dir) / "tokenizer"
    if not tdir.is_dir():
        raise ModelLoadError(f"{run_dir}: no tokenizer/ folder (not a rahf run)")
    tok = AutoTokenizer.from_pretrained(str(tdir))
    return run.model, tok


def save_policy(model: nn.Module, tokenizer, out_dir: str | Path, extra: dict | None = None) -> Path:
    """Write a plain HF causal LM as a run folder (what ``load_run`` reads) plus its tokenizer."""
    from tenfold_core.io import write_json
    from tenfold_core.models import save_weights
    from tenfold_core.train import class_path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    conf_path = out / "config.json"
    conf = json.loads(conf_path.read_text()) if conf_path.is_file() else {}
    conf.update(extra or {})
    conf["model_class"] = class_path(model)
    conf["model"] = None
    conf["hf_config"] = json.loads(model.config.to_json_string(use_diff=False))
    save_weights(model.state_dict(), out / "model.safetensors")
    write_json(conf_path, conf)
    save_tokenizer(tokenizer, out)
    return out


def save_tokenizer(tokenizer, out_dir: str | Path) -> None:
    tdir = Path(out_dir) / "tokenizer"
    if not (tdir / "tokenizer_config.json").is_file():
        tokenizer.save_pretrained(str(tdir))


def _block_count(model) -> int:
    c = model.config
    return int(getattr(c, "num_hidden_layers", None) or c.n_layer)


def add_lora(
    model: nn.Module, r: int, alpha: int, dropout: float, targets: Sequence[str], top_layer: int | None
):
    """Wrap ``model`` in a peft LoRA on ``targets`` of blocks ``0 .. top_layer - 1`` (all blocks when None).

    Hidden state ``l`` is the output of block ``l - 1``, so blocks ``>= top_layer`` cannot move any target layer;
    the official code also adapts block ``top_layer``, whose LoRA then gets no gradient (and fails DDP)."""
    from peft import LoraConfig, get_peft_model

    n = _block_count(model)
    layers = list(range(min(top_layer, n))) if top_layer is not None else list(range(n))
    names = {name.split(".")[-1] for name, _ in model.named_modules()}
    targets = [t for t in targets if t in names] or (["c_attn"] if "c_attn" in names else list(targets))
    conf = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets), layers_to_transform=layers,
        bias="none", task_type="CAUSAL_LM",
    )  # fmt: skip
    return get_peft_model(model, conf)


def merge_lora(model: nn.Module) -> nn.Module:
    """A plain model with the LoRA folded into its weights."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def hidden_at(model, batch: dict, layers: Sequence[int]) -> torch.Tensor:
    """Hidden states ``[L, B, T, H]`` at the given ``output_hidden_states`` indices."""
    out = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True
    )
    hs = out.hidden_states
    return torch.stack([hs[i] for i in layers])


def param_bytes(model: nn.Module) -> int:
    seen, total = set(), 0
    for p in list(model.parameters()) + list(model.buffers()):
        if p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            total += p.numel() * p.element_size()
    return total
