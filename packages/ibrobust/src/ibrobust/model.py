"""The IB classifier: any Hugging Face encoder + a variational information bottleneck on [CLS].

    h      = encoder(x)[CLS]                        (any AutoModel; BERT for the paper)
    a      = W1 h + b1                              (H -> H, no activation, as the official code)
    mu, s  = split(We a + be)                       (H -> 2 h_dim)
    sigma  = softplus(s)
    z      = mu + sigma * eps, eps ~ N(0, I)        (training, or eval with deterministic_eval false)
    z      = mu                                     (eval with deterministic_eval true: repeatable predictions)
    logits = W2 dropout(z)

The prior r(z) = N(mu_r, diag sigma_r^2) is learnable (``nn.Parameter`` mu_r ~ N(0, 1), sigma_r ~ U(0, 1) at init);
sigma_r = softplus(rho_r) keeps it positive (``prior_sigma: raw`` reproduces the official unconstrained tensor).
``bottleneck: false`` gives the baseline: dropout + a linear classifier on [CLS].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ibrobust.config import DataConfig, IBConfig
from tenfold_core.data.tokenizers import encoder_path  # re-exported (run folders, tests)

try:  # the core's model registry (load_run rebuilds models from it)
    from tenfold_core.models import register_model
except ImportError:  # pragma: no cover - older core

    def register_model(cls):
        return cls


__all__ = ["IBConfig", "DataConfig", "IBClassifier", "IBOutput", "build_encoder", "encoder_path"]


def build_encoder(config: IBConfig) -> nn.Module:
    """A ``transformers`` encoder without a pooler (its weights would get no gradient under DDP)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        if config.encoder == "tiny":
            from transformers import BertModel

            from tenfold_core.models import tiny_bert_config

            if config.vocab_size < 8:
                raise ValueError("model.vocab_size must be set (>= 8) for the tiny encoder")
            cfg = tiny_bert_config(
                vocab_size=config.vocab_size, hidden=config.tiny_hidden, layers=config.tiny_layers,
                heads=config.tiny_heads, max_len=config.max_length,
            )  # fmt: skip
            return BertModel(cfg, add_pooling_layer=False)
        from transformers import AutoModel

        from tenfold_core.models import load_pretrained

        try:
            return load_pretrained(encoder_path(config.encoder), AutoModel, add_pooling_layer=False)
        except TypeError:  # encoders without a pooler option
            return load_pretrained(encoder_path(config.encoder), AutoModel)
    finally:
        hf_logging.set_verbosity(verbosity)


def _inv_softplus(x: torch.Tensor) -> torch.Tensor:
    return x + torch.log(-torch.expm1(-x))


@dataclass
class IBOutput:
    logits: torch.Tensor
    mu: torch.Tensor | None = None
    sigma: torch.Tensor | None = None
    z: torch.Tensor | None = None


@register_model
class IBClassifier(nn.Module):
    config_class = IBConfig

    def __init__(self, config: IBConfig):
        super().__init__()
        self.config = config
        self.encoder = build_encoder(config)
        hidden = self.encoder.config.hidden_size
        self.dropout = nn.Dropout(config.dropout)
        if config.bottleneck:
            self.pre = nn.Linear(hidden, hidden)
            self.stats = nn.Linear(hidden, 2 * config.h_dim)
            self.classifier = nn.Linear(config.h_dim, config.num_labels)
            if config.init_sigma > 0:  # small initial noise: the tiny encoders' [CLS] has a small scale
                with torch.no_grad():
                    self.stats.weight[config.h_dim :].mul_(0.01)
                    self.stats.bias[config.h_dim :].fill_(
                        float(_inv_softplus(torch.tensor(config.init_sigma)))
                    )
            if config.prior == "learnable":
                self.prior_mu = nn.Parameter(torch.randn(config.h_dim))
                u = torch.rand(config.h_dim).clamp(1e-3, 1.0)
                self.prior_rho = nn.Parameter(_inv_softplus(u) if config.prior_sigma == "softplus" else u)
        else:
            self.classifier = nn.Linear(hidden, config.num_labels)

    # ------------------------------------------------------------------------------------------------- prior
    def prior(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu_r, sigma_r) of the prior."""
        h = self.config.h_dim
        if self.config.prior == "standard" or not self.config.bottleneck:
            z = self.classifier.weight.new_zeros(h)
            return z, z + 1.0
        sigma = F.softplus(self.prior_rho) if self.config.prior_sigma == "softplus" else self.prior_rho
        return self.prior_mu, sigma

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    # ----------------------------------------------------------------------------------------------- forward
    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        inputs_embeds=None,
        sample: bool | None = None,
        labels=None,
    ) -> IBOutput:
        kw = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            kw["token_type_ids"] = token_type_ids
        if inputs_embeds is not None:
            out = self.encoder(inputs_embeds=inputs_embeds, **kw)
        else:
            out = self.encoder(input_ids=input_ids, **kw)
        h = out.last_hidden_state[:, 0]
        if not self.config.bottleneck:
            return IBOutput(self.classifier(self.dropout(h)))
        mu, s = self.stats(self.pre(h)).chunk(2, dim=-1)
        sigma = F.softplus(s)
        if sample is None:
            sample = self.training or not self.config.deterministic_eval
        z = mu + sigma * torch.randn_like(sigma) if sample else mu
        return IBOutput(self.classifier(self.dropout(z)), mu, sigma, z)
