"""The SpikeBERT student: a Spikformer-style spiking Transformer for text classification.

::

    ids [B, L] -> Embedding (+ optional learned positions) -> Heaviside with ATan surrogate (spikes = emb >= 0)
       -> repeated over T -> [T, B, L, D]
       -> depth x SpikingTransformerBlock (x = x + SSA(x); x = x + MLP(x); Linear -> LayerNorm -> LIF everywhere,
          LIF tau 2, V_th 1, attention V_th 0.5, softmax-free (Q Kᵀ) V * qk_scale: 0.125 "paper", or "auto")
          each block i also gives a distillation representation rep_i = LN(Linear(mean_T x_i)) [B, L, teacher_dim]
       -> LayerNorm -> mean over tokens -> Linear per time step -> logits [B, T, C], averaged over T

Neurons and blocks come from :mod:`tenfold_core.spiking` (one ``NeuronConfig`` for every LIF). Padding is masked in
attention, pooling and the representation losses by default (``mask_padding=True``, a fix; without an
``attention_mask`` the mask is built from ``pad_token_id``); ``mask_padding=False`` with max-length padding
reproduces the official code, where padding tokens take part in attention and in the mean pooling. Modules a stage
does not use are not built (``num_labels=0``: no classifier; ``distill_heads=False``; no embedding projection unless
the embedding loss needs one), so DDP never sees unused parameters.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spikebert.config import NeuronConfig, SpikeBertConfig
from tenfold_core.errors import ConfigError, ModelLoadError
from tenfold_core.models import load_state_dict_checked, load_weights, register_model, strip_prefixes
from tenfold_core.spiking import Heaviside, SpikingTransformerBlock

__all__ = [
    "NeuronConfig",
    "SpikeBertConfig",
    "SpikeBERT",
    "SpikeBertOutput",
    "average_over_time",
    "stride_layer_map",
    "load_student",
    "load_stage1_weights",
    "padding_mask",
]


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


def padding_mask(
    input_ids: torch.Tensor, attention_mask: torch.Tensor | None, pad_token_id: int
) -> torch.Tensor:
    """``[B, L]`` bool, True at real tokens: ``attention_mask`` when given, else ``input_ids != pad_token_id``."""
    if attention_mask is not None:
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask {tuple(attention_mask.shape)} differs from input_ids {tuple(input_ids.shape)}"
            )
        return attention_mask.to(torch.bool)
    return input_ids != pad_token_id


@register_model
class SpikeBERT(nn.Module):
    """Spiking Transformer text classifier (SpikeBERT). ``SpikeBERT(SpikeBertConfig(...))``;
    ``forward(input_ids, attention_mask=None)`` -> :class:`SpikeBertOutput`."""

    config_class = SpikeBertConfig

    def __init__(self, config: SpikeBertConfig):
        super().__init__()
        if isinstance(config, Mapping):
            config = SpikeBertConfig(**dict(config))
        if config.vocab_size < 1:
            raise ConfigError(
                "model.vocab_size is 0: set it, or let a training verb take it from the tokenizer"
            )
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.dim)
        self.position_embedding = (
            nn.Embedding(c.max_position_embeddings, c.dim) if c.max_position_embeddings > 0 else None
        )
        self.input_spikes_encoder = Heaviside(c.neuron.surrogate, c.neuron.alpha)
        self.blocks = nn.ModuleList(
            SpikingTransformerBlock(
                c.dim,
                c.num_heads,
                c.mlp_ratio,
                qk_scale=c.scale_value(),
                norm="layer",
                attn_v_threshold=c.attn_v_threshold,
                lif_position="post",
                neuron=c.neuron,
            )  # fmt: skip
            for _ in range(c.depth)
        )
        self.distill_heads = (
            nn.ModuleList(DistillHead(c.dim, c.rep_dim) for _ in range(c.depth)) if c.distill_heads else None
        )
        # a narrower student matches the teacher's word embeddings through a learned projection
        self.embedding_projection = (
            nn.Linear(c.dim, c.rep_dim, bias=False) if c.rep_dim != c.dim and c.embedding_projection else None
        )
        self.final_norm = nn.LayerNorm(c.dim) if c.num_labels > 0 else None
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
        if self.embedding_projection is not None:
            return self.embedding_projection(w)
        if self.config.rep_dim != self.config.dim:
            raise ConfigError("the embedding loss needs model.embedding_projection when dim != teacher_dim")
        return w

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
        return self.input_spikes_encoder(x)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        return_representations: bool = True,
        labels: torch.Tensor | None = None,  # accepted (and ignored) so dict batches can be splatted
    ) -> SpikeBertOutput:
        c = self.config
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [B, L], got {tuple(input_ids.shape)}")
        real = padding_mask(input_ids, attention_mask, c.pad_token_id)
        mask = real if c.mask_padding else torch.ones_like(real)
        pad_mask = ~mask if c.mask_padding else None  # [B, L], True = padding
        s = self.input_spikes(input_ids)
        x = s.unsqueeze(0).expand(c.time_steps, *s.shape)  # [T, B, L, D]
        reps = []
        want_reps = return_representations and self.distill_heads is not None
        for i, blk in enumerate(self.blocks):
            x = blk(x, pad_mask)
            if want_reps:
                reps.append(self.distill_heads[i](x.mean(0)))
        step_logits = logits = None
        if self.classifier is not None:
            h = self.final_norm(x)  # [T, B, L, D]
            w = mask.to(h.dtype)[None, :, :, None]
            pooled = (h * w).sum(2) / w.sum(2).clamp_min(1.0)  # [T, B, D]
            step_logits = self.classifier(pooled).transpose(0, 1)  # [B, T, C]
            logits = average_over_time(step_logits)
        return SpikeBertOutput(logits, step_logits, reps, mask.to(torch.long))


# ------------------------------------------------------------------------------------------------ loading
#: parts of a student that a later stage may add or drop: the classifier (stage 2 adds it), the embedding
#: projection (only with the embedding loss) and the distillation heads (only with a hidden-state loss)
OPTIONAL_PREFIXES = ("classifier.", "final_norm.", "embedding_projection.", "distill_heads.")


def _strip_student(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # Lightning modules keep the student as ``model.`` (older runs: ``student.``); plain saves have no prefix
    state = strip_prefixes(state)
    for prefix in ("model.", "student."):
        if state and all(k.startswith(prefix) for k in state):
            return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def load_student(path: str | os.PathLike, **overrides: Any) -> tuple[SpikeBERT, dict[str, Any]]:
    """Load a student run folder (``config.json`` + ``model.safetensors``) through
    :func:`tenfold_core.models.load_run`. ``overrides`` change parameter-free settings (``time_steps``,
    ``mask_padding``...). Returns the model (eval mode) and the run's config.json as a dict."""
    import dataclasses

    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    from tenfold_core.models import load_run

    run = load_run(folder)
    if not isinstance(run.model, SpikeBERT):
        raise ModelLoadError(f"{folder}: not a SpikeBERT student run ({type(run.model).__name__})")
    model, conf, cfg = run.model, dict(run.config), run.model_config
    if overrides:
        state = model.state_dict()
        model = SpikeBERT(dataclasses.replace(cfg, **overrides))
        model.load_state_dict(state)
    return model.eval(), conf


def load_stage1_weights(
    model: SpikeBERT, path: str | os.PathLike | Mapping[str, torch.Tensor]
) -> dict[str, list[str]]:
    """Load pre-distilled (stage-1) weights into a stage-2 student, strictly.

    Wrapper prefixes (``module.`` from DataParallel/DDP, ``_orig_mod.``, ``model.``) are stripped; every tensor of the
    student except its optional parts (classifier, embedding projection) must be present with the same shape, and
    the checkpoint may hold nothing else except distillation heads the stage-2 student does not build. A depth or
    width mismatch fails loudly instead of loading a subset (the official ``strict=False`` load of a
    ``module.``-prefixed checkpoint silently loaded nothing).
    """
    if isinstance(path, Mapping):
        weights, state = "stage-1 state dict", _strip_student(dict(path))
    else:
        p = Path(path)
        weights = p / "model.safetensors" if p.is_dir() else p
        state = _strip_student(load_weights(weights))
    if model.distill_heads is None:
        state = {k: v for k, v in state.items() if not k.startswith("distill_heads.")}
    report = load_state_dict_checked(model, state, strict=False)
    missing = [k for k in report["missing"] if not k.startswith(OPTIONAL_PREFIXES)]
    unexpected = list(report["unexpected"])
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise ModelLoadError(
            f"{weights}: stage-1 weights do not fit this student ({len(missing)} missing, {len(unexpected)} "
            f"unexpected; {what}); use the same depth, dim, heads and mlp_ratio in both stages"
        )
    return report
