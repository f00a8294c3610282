"""Loading checkpoints of the official SpikeBERT code (``model/new_spikformer.py``) into :class:`SpikeBERT`.

The official module names map one to one onto ours (LIF nodes hold no tensors)::

    emb                                  -> embedding
    blocks.i.attn.{q,k,v}_m / _ln        -> blocks.i.attn.{q,k,v}.linear / .norm.norm
    blocks.i.attn.last_m / last_ln       -> blocks.i.attn.proj.linear / .norm.norm
    blocks.i.mlp.fc1 / ln1 / fc2 / ln2   -> blocks.i.mlp.fc1.linear / fc1.norm.norm / fc2.linear / fc2.norm.norm
    transforms.i.fc / ln                 -> distill_heads.i.fc / ln
    last_ln                              -> final_norm
    classifier                           -> classifier

``module.`` (DataParallel) and ``_orig_mod.`` prefixes are stripped first. Every tensor is checked: a checkpoint
that does not cover the student, or holds anything else, is a one-line error (the official ``strict=False`` load
silently loaded nothing from a ``module.``-prefixed checkpoint).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from spikebert.config import SpikeBertConfig
from spikebert.model import SpikeBERT
from tenfold_core.errors import ModelLoadError
from tenfold_core.models import load_state_dict_checked, strip_prefixes

__all__ = ["official_key_map", "official_config", "load_official_checkpoint", "read_official_state"]

_RULES = [
    (r"^emb\.", "embedding."),
    (r"^blocks\.(\d+)\.attn\.([qkv])_m\.", r"blocks.\1.attn.\2.linear."),
    (r"^blocks\.(\d+)\.attn\.([qkv])_ln\.", r"blocks.\1.attn.\2.norm.norm."),
    (r"^blocks\.(\d+)\.attn\.last_m\.", r"blocks.\1.attn.proj.linear."),
    (r"^blocks\.(\d+)\.attn\.last_ln\.", r"blocks.\1.attn.proj.norm.norm."),
    (r"^blocks\.(\d+)\.mlp\.fc([12])\.", r"blocks.\1.mlp.fc\2.linear."),
    (r"^blocks\.(\d+)\.mlp\.ln([12])\.", r"blocks.\1.mlp.fc\2.norm.norm."),
    (r"^transforms\.(\d+)\.(fc|ln)\.", r"distill_heads.\1.\2."),
    (r"^last_ln\.", "final_norm."),
    (r"^classifier\.", "classifier."),
]


def official_key_map(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official state dict's keys to :class:`SpikeBERT`'s; an unknown key is a ``ModelLoadError``."""
    out = {}
    for k, v in strip_prefixes(dict(state)).items():
        for pat, rep in _RULES:
            new, n = re.subn(pat, rep, k)
            if n:
                out[new] = v
                break
        else:
            raise ModelLoadError(f"official checkpoint: unknown key {k!r} (not a new_spikformer state dict)")
    return out


def official_config(state: Mapping[str, torch.Tensor], **settings) -> SpikeBertConfig:
    """The :class:`SpikeBertConfig` of an official (renamed or not) state dict: vocab, width, depth, MLP width and
    classes from the tensor shapes; ``settings`` give what shapes cannot tell (``num_heads``, ``time_steps``, the
    neuron; the official code: 8 heads, unmasked padding)."""
    s = official_key_map(state) if "emb.weight" in strip_prefixes(dict(state)) else dict(state)
    vocab, dim = s["embedding.weight"].shape
    depth = 1 + max(int(k.split(".")[1]) for k in s if k.startswith("blocks."))
    hidden = s["blocks.0.mlp.fc1.linear.weight"].shape[0]
    num_labels = s["classifier.weight"].shape[0] if "classifier.weight" in s else 0
    base = dict(
        vocab_size=int(vocab), dim=int(dim), depth=depth, mlp_ratio=hidden / dim, num_labels=int(num_labels),
        distill_heads=any(k.startswith("distill_heads.") for k in s), mask_padding=False,
    )  # fmt: skip
    base.update(settings)
    return SpikeBertConfig(**base)


def read_official_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from an official ``.pt``/``.pth``/``.bin`` (``torch.load(weights_only=True)``) or ``.safetensors``."""
    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(f"{p}: no such checkpoint")
    if p.suffix == ".safetensors":
        from tenfold_core.models import load_weights

        return load_weights(p)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelLoadError(f"{p}: not a readable PyTorch state dict ({type(e).__name__})") from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(torch.is_tensor(v) for v in obj.values()):
        raise ModelLoadError(f"{p}: not a state dict of tensors")
    return dict(obj)


def load_official_checkpoint(
    source: str | os.PathLike | Mapping[str, torch.Tensor], model: SpikeBERT | None = None, **settings
) -> SpikeBERT:
    """Load an official SpikeBERT checkpoint (path or state dict) into ``model`` (built from the checkpoint's shapes
    and ``settings`` when None), strictly: every tensor must be present with the same shape, nothing left over."""
    state = read_official_state(source) if not isinstance(source, Mapping) else dict(source)
    renamed = official_key_map(state)
    if model is None:
        model = SpikeBERT(official_config(renamed, **settings))
    report = load_state_dict_checked(model, renamed, strict=False)
    if report["missing"] or report["unexpected"]:
        what = (
            f"missing {report['missing'][:3]}"
            if report["missing"]
            else f"unexpected {report['unexpected'][:3]}"
        )
        raise ModelLoadError(f"official checkpoint does not fit the student ({what})")
    return model.eval()
