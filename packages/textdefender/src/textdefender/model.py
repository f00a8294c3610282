"""The victim: a Hugging Face sequence classifier (tiny BERT, all-MiniLM-L6-v2 or any HF encoder) behind one
config, so ``load_run`` can rebuild it."""

from __future__ import annotations

from torch import nn

from tenfold_core.data.tokenizers import encoder_path  # re-exported (run folders, tests)
from textdefender.config import DataConfig, ModelConfig

try:
    from tenfold_core.models import register_model
except ImportError:  # pragma: no cover - older core

    def register_model(cls):
        return cls


__all__ = ["ModelConfig", "DataConfig", "DefendedClassifier", "encoder_path"]


@register_model
class DefendedClassifier(nn.Module):
    """``AutoModelForSequenceClassification`` (or a random tiny BERT) returning HF outputs with ``.logits``."""

    config_class = ModelConfig

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            if config.encoder == "tiny":
                from transformers import BertForSequenceClassification

                from tenfold_core.models import tiny_bert_config

                if config.vocab_size < 8:
                    raise ValueError("model.vocab_size must be set (>= 8) for the tiny encoder")
                self.net = BertForSequenceClassification(tiny_bert_config(
                    vocab_size=config.vocab_size, hidden=config.tiny_hidden, layers=config.tiny_layers,
                    heads=config.tiny_heads, max_len=config.max_length, num_labels=config.num_labels))  # fmt: skip
            else:
                from transformers import AutoModelForSequenceClassification

                from tenfold_core.models import load_pretrained

                self.net = load_pretrained(encoder_path(config.encoder), AutoModelForSequenceClassification,
                                           num_labels=config.num_labels)  # fmt: skip
        finally:
            hf_logging.set_verbosity(verbosity)

    def get_input_embeddings(self):
        return self.net.get_input_embeddings()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        inputs_embeds=None,
        token_type_ids=None,
        labels=None,
        output_hidden_states: bool = False,
    ):
        kw = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            kw["token_type_ids"] = token_type_ids
        if output_hidden_states:  # InfoBERT reads the embedding-layer output and the last layer
            kw["output_hidden_states"] = True
        if inputs_embeds is not None:
            return self.net(inputs_embeds=inputs_embeds, **kw)
        return self.net(input_ids=input_ids, **kw)
