"""The SpikeBERT student: a Spikformer-style spiking Transformer for text classification.

::

    ids [B, L] -> Embedding (+ optional learned positions) -> Heaviside with ATan surrogate (spikes = emb >= 0)
       -> repeated over T -> [T, B, L, D]
       -> depth x SpikingTransformerBlock (x = x + SSA(x); x = x + MLP(x); Linear -> LayerNorm -> LIF everywhere,
          LIF tau 2, V_th 1, attention V_th 0.5, softmax-free (Q Kᵀ) V * 0.125)
          each block i also gives a distillation representation rep_i = LN(Linear(mean_T x_i)) [B, L, teacher_dim]
       -> LayerNorm -> mean over tokens -> Linear per time step -> logits [B, T, C], averaged over T

Neurons and blocks come from :mod:`tenfold_core.spiking`. Padding is masked in attention, pooling and the
representation losses by default (``mask_padding=True``, a fix); ``mask_padding=False`` reproduces the official
code, where padding tokens take part in attention and in the mean pooling.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tenfold_core.errors import ConfigError, ModelLoadError
from tenfold_core.models import load_state_dict_checked, load_weights, strip_prefixes
from tenfold_core.spiking import SpikingTransformerBlock, heaviside

__all__ = [
    "SpikeBertConfig",
    "SpikeBERT",
    "SpikeBertOutput",
    "average_over_time",
    "stride_layer_map",
    "load_student",
    "load_stage1_weights",
]


@dataclass
class SpikeBertConfig:
    """Architecture and neuron settings of the student (defaults: the paper's stage-2 setting on BERT-base).

    ``vocab_size`` must be the teacher tokenizer's; ``teacher_dim`` (default ``dim``) is the width of the
    distillation representations, so the student may be narrower than the teacher.
    """

    vocab_size: int = 28996
    dim: int = 768
    depth: int = 12
    num_heads: int = 8
    mlp_ratio: float = 4.0
    num_labels: int = 2
    time_steps: int = 4
    tau: float = 2.0
    v_threshold: float = 1.0
    attn_v_threshold: float = 0.5
    qk_scale: float = 0.125
    surrogate: str = "atan"
    alpha: float | None = None
    detach_reset: bool = True
    teacher_dim: int | None = None
    mask_padding: bool = True
    max_position_embeddings: int = 0
    pad_token_id: int = 0
    backend: str = "auto"

    def __post_init__(self):
        for name in ("vocab_size", "dim", "depth", "num_heads", "time_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        if self.num_labels < 0:
            raise ValueError(f"num_labels must be >= 0 (0: no classifier), got {self.num_labels}")
        if not self.tau > 1.0:
            raise ValueError(f"tau must be > 1, got {self.tau}")
        if self.max_position_embeddings < 0:
            raise ValueError("max_position_embeddings must be >= 0 (0: no position embeddings, as the paper)")

    @property
    def rep_dim(self) -> int:
        return self.teacher_dim or self.dim

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpikeBertConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ModelLoadError(f"student config: unknown key '{sorted(unknown)[0]}'")
        return cls(**d)


@dataclass
class SpikeBertOutput:
    """``logits`` [B, C] (mean over T of ``step_logits`` [B, T, C]); ``representations``: one [B, L, teacher_dim]
    per block; ``attention_mask`` [B, L] (1 = token) as used for pooling and the representation losses."""

    logits: torch.Tensor | None
    step_logits: torch.Tensor | None
    representations: list[torch.Tensor] = field(default_factory=list)
    attention_mask: torch.Tensor | None = None


def average_over_time(step_logits: torch.Tensor) -> torch.Tensor:
    """The prediction of a spiking classifier: per-step logits ``[B, T, C]`` averaged over T -> ``[B, C]``."""
    if step_logits.dim() != 3:
        raise ValueError(f"expected per-step logits [B, T, C], got {tuple(step_logits.shape)}")
    return step_logits.mean(dim=1)


def stride_layer_map(teacher_layers: int, student_depth: int, align: str = "stride") -> list[int]:
    """Teacher hidden-state index for each student block (``hidden_states[0]`` is the embedding output).

    ``"stride"`` (the official code: ``hidden_states[1:][::teacher_layers // depth]``): student block i <- teacher
    layer ``1 + i * stride``, e.g. depth 6 on 12 layers -> 1, 3, 5, 7, 9, 11 (not the top layer).
    ``"top"`` (TinyBERT's convention): block i <- layer ``(i + 1) * stride``, so the last block sees the top layer.
    """
    if student_depth < 1 or teacher_layers < 1:
        raise ConfigError("layer map: teacher layers and student depth must be >= 1")
    if student_depth > teacher_layers:
        raise ConfigError(
            f"layer map: the student has {student_depth} blocks but the teacher only {teacher_layers} layers"
        )
    stride = teacher_layers // student_depth
    if align == "stride":
        return [1 + i * stride for i in range(student_depth)]
    if align == "top":
        return [(i + 1) * stride for i in range(student_depth)]
    raise ConfigError(f"layer map: align must be 'stride' or 'top', got {align!r}")


class DistillHead(nn.Module):
    """``LayerNorm(Linear(x))``: maps a block's time-averaged output to the teacher's hidden size."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.fc = nn.Linear(dim, out_dim)
        self.ln = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(self.fc(x))


class SpikeBERT(nn.Module):
    """Spiking Transformer text classifier (SpikeBERT). ``SpikeBERT(SpikeBertConfig(...))`` or
    ``SpikeBERT(vocab_size=..., dim=..., depth=...)``; ``forward(input_ids, attention_mask=None)`` ->
    :class:`SpikeBertOutput`."""

    def __init__(self, config: SpikeBertConfig | None = None, **kwargs: Any):
        super().__init__()
        if config is None:
            config = SpikeBertConfig(**kwargs)
        elif kwargs:
            config = dataclasses.replace(config, **kwargs)
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.dim)
        self.position_embedding = (
            nn.Embedding(c.max_position_embeddings, c.dim) if c.max_position_embeddings > 0 else None
        )
        self.blocks = nn.ModuleList(
            SpikingTransformerBlock(
                c.dim,
                c.num_heads,
                c.mlp_ratio,
                qk_scale=c.qk_scale,
                norm="layer",
                attn_v_threshold=c.attn_v_threshold,
                lif_position="post",
                tau=c.tau,
                v_threshold=c.v_threshold,
                v_reset=0.0,
                surrogate=c.surrogate,
                alpha=c.alpha,
                detach_reset=c.detach_reset,
                backend=c.backend,
            )  # fmt: skip
            for _ in range(c.depth)
        )
        self.distill_heads = nn.ModuleList(DistillHead(c.dim, c.rep_dim) for _ in range(c.depth))
        # a narrower student matches the teacher's word embeddings through a learned projection
        self.embedding_projection = nn.Linear(c.dim, c.rep_dim, bias=False) if c.rep_dim != c.dim else None
        self.final_norm = nn.LayerNorm(c.dim)
        self.classifier = nn.Linear(c.dim, c.num_labels) if c.num_labels > 0 else None
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # as the official code: N(0, 0.02) linears, unit LayerNorms; the word embedding keeps PyTorch's N(0, 1)
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def embedding_matrix(self) -> torch.Tensor:
        """The word-embedding matrix in the teacher's width ``[V, teacher_dim]`` (for the embedding loss)."""
        w = self.embedding.weight
        return self.embedding_projection(w) if self.embedding_projection is not None else w

    def input_spikes(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Embeddings -> spikes ``[B, L, D]`` (Heaviside forward, surrogate backward), identical at every step."""
        x = self.embedding(input_ids)
        if self.position_embedding is not None:
            L = input_ids.shape[1]
            if L > self.config.max_position_embeddings:
                raise ValueError(
                    f"sequence length {L} exceeds max_position_embeddings {self.config.max_position_embeddings}"
                )
            x = x + self.position_embedding(torch.arange(L, device=input_ids.device))
        return heaviside(x, self.config.surrogate, self.config.alpha)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        return_representations: bool = True,
    ) -> SpikeBertOutput:
        c = self.config
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [B, L], got {tuple(input_ids.shape)}")
        if attention_mask is None or not c.mask_padding:
            mask = torch.ones_like(input_ids, dtype=torch.bool)
        else:
            mask = attention_mask.to(torch.bool)
        pad_mask = None if not c.mask_padding else ~mask  # [B, L], True = padding
        s = self.input_spikes(input_ids)
        x = s.unsqueeze(0).expand(c.time_steps, *s.shape)  # [T, B, L, D]
        reps = []
        for blk, head in zip(self.blocks, self.distill_heads):
            x = blk(x, pad_mask)
            if return_representations:
                reps.append(head(x.mean(0)))
        step_logits = logits = None
        if self.classifier is not None:
            h = self.final_norm(x)  # [T, B, L, D]
            w = mask.to(h.dtype)[None, :, :, None]
            pooled = (h * w).sum(2) / w.sum(2).clamp_min(1.0)  # [T, B, D]
            step_logits = self.classifier(pooled).transpose(0, 1)  # [B, T, C]
            logits = average_over_time(step_logits)
        return SpikeBertOutput(logits, step_logits, reps, mask.to(torch.long))


# ------------------------------------------------------------------------------------------------ loading
CONFIG_KEY = "spikebert_student"


def _read_run_config(folder: Path) -> dict[str, Any]:
    p = folder / "config.json"
    if not p.is_file():
        raise ModelLoadError(f"{folder}: no config.json (expected a folder written by a spikebert stage)")
    try:
        conf = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"{p} line {e.lineno}: invalid JSON ({e.msg})") from None
    if CONFIG_KEY not in conf:
        raise ModelLoadError(f"{p}: no '{CONFIG_KEY}' entry (not a spikebert student run)")
    return conf


def _strip_student(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # Lightning modules keep the student as ``student.``; plain saves have no prefix
    state = strip_prefixes(state)
    if any(k.startswith("student.") for k in state):
        state = {k[len("student.") :]: v for k, v in state.items() if k.startswith("student.")}
    return state


def _student_state(path: Path) -> dict[str, torch.Tensor]:
    return _strip_student(load_weights(path))


def load_student(path: str | os.PathLike, **overrides: Any) -> tuple[SpikeBERT, dict[str, Any]]:
    """Load a student written by a spikebert stage (a run folder with ``config.json`` + ``model.safetensors``).

    ``overrides`` change parameter-free settings (``time_steps``, ``tau``, ``mask_padding``...). Returns the model
    (eval mode) and the run's config.json.
    """
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    conf = _read_run_config(folder)
    cfg = SpikeBertConfig.from_dict(conf[CONFIG_KEY])
    if overrides:
        cfg = dataclasses.replace(cfg, **overrides)
    model = SpikeBERT(cfg)
    load_state_dict_checked(model, _student_state(folder / "model.safetensors"), strict=True)
    return model.eval(), conf


def load_stage1_weights(
    model: SpikeBERT, path: str | os.PathLike | Mapping[str, torch.Tensor]
) -> dict[str, list[str]]:
    """Load pre-distilled (stage-1) weights into a stage-2 student, strictly.

    Wrapper prefixes (``module.`` from DataParallel/DDP, ``_orig_mod.``) are stripped; every tensor of the student
    except the (new) classifier must be present with the same shape, and the checkpoint may hold nothing else. A
    depth or width mismatch fails loudly instead of loading a subset (the official ``strict=False`` load of a
    ``module.``-prefixed checkpoint silently loaded nothing).
    """
    if isinstance(path, Mapping):
        weights, state = "stage-1 state dict", _strip_student(dict(path))
    else:
        p = Path(path)
        weights = p / "model.safetensors" if p.is_dir() else p
        state = _student_state(weights)
    report = load_state_dict_checked(model, state, strict=False)
    missing = [k for k in report["missing"] if not k.startswith("classifier.")]
    unexpected = [k for k in report["unexpected"] if not k.startswith("classifier.")]
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise ModelLoadError(
            f"{weights}: stage-1 weights do not fit this student ({len(missing)} missing, {len(unexpected)} "
            f"unexpected; {what}); use the same depth, dim, heads and mlp_ratio in both stages"
        )
    return report
