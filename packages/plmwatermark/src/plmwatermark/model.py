"""A shared BERT-like encoder with one linear head per task (hard parameter sharing), on the [CLS] state."""

from __future__ import annotations

import torch
from torch import nn

from plmwatermark.config import TaskDataConfig, TriggerConfig, WatermarkModelConfig

try:
    from tenfold_core.models import register_model
except ImportError:  # pragma: no cover

    def register_model(cls):
        return cls


__all__ = [
    "MultiTaskEncoder",
    "WatermarkModelConfig",
    "TaskDataConfig",
    "TriggerConfig",
    "encoder_config_for",
]


def encoder_config_for(cfg: WatermarkModelConfig) -> dict:
    """The encoder's transformers config as a dict (tiny, MiniLM's, or a hub/folder model's)."""
    if cfg.encoder_config:
        return dict(cfg.encoder_config)
    if cfg.backbone == "tiny":
        from tenfold_core.models import tiny_bert_config

        return tiny_bert_config(vocab_size=cfg.vocab_size, hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads,
                                max_len=128).to_dict()  # fmt: skip
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(resolve_backbone(cfg.backbone)).to_dict()


def resolve_backbone(name: str) -> str:
    if name == "minilm":
        from tenfold_core.models import minilm_path

        return minilm_path()
    return name


@register_model
class MultiTaskEncoder(nn.Module):
    """``forward(input_ids, attention_mask, task) -> logits`` of that task's head."""

    config_class = WatermarkModelConfig

    def __init__(self, config: WatermarkModelConfig):
        super().__init__()
        from transformers import AutoConfig, AutoModel

        self.config = config
        d = encoder_config_for(config)
        enc_cfg = AutoConfig.for_model(d.pop("model_type", "bert"), **d)
        self.encoder = AutoModel.from_config(enc_cfg, add_pooling_layer=False)
        h = enc_cfg.hidden_size
        self.dropout = nn.Dropout(config.dropout)
        self.heads = nn.ModuleDict({t: nn.Linear(h, int(n)) for t, n in config.tasks.items()})

    @property
    def word_embeddings(self) -> nn.Embedding:
        return self.encoder.get_input_embeddings()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, task: str) -> torch.Tensor:
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0]
        return self.heads[task](self.dropout(h))

    def load_backbone_weights(self) -> None:
        """Load pretrained encoder weights for ``config.backbone`` (not for 'tiny')."""
        from transformers import AutoModel

        src = AutoModel.from_pretrained(resolve_backbone(self.config.backbone), add_pooling_layer=False)
        missing = self.encoder.load_state_dict(src.state_dict(), strict=False)
        if missing.missing_keys:
            raise RuntimeError(f"backbone weights missing {missing.missing_keys[:3]}")
