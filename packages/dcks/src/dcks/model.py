"""DCKS (arXiv 2306.04657): BART with a commonsense-knowledge encoder, gated knowledge cross-attention in every decoder
layer, a joint emotion classifier and adaptive knowledge selection. Read top to bottom:

1. ``KnowledgeAttention`` and ``DCKSDecoderLayer``: BART's decoder layer plus a cross-attention over the tokens of all
   relations, mixed back with a gated residual  x <- (1 - w) x_res + w x_katt,  w = sigmoid(W_k [x_katt ; x_res]).
2. ``DCKSBart``: ``BartForConditionalGeneration`` whose decoder layers are ``DCKSDecoderLayer``; its ``forward`` takes
   ``knowledge_states`` / ``knowledge_mask``, so Hugging Face ``generate`` (beams, sampling, streamers) works unchanged.
3. ``EmotionEncoder``: the 1-layer MoEL-style encoder of the emotion head.
4. ``DCKS``: context encoder (BART's), knowledge encoder (a second BART encoder sharing the token embeddings,
   initialised from BART's encoder unless ``init_knowledge_from_bart=False``), per-relation first-token states, the
   adaptive selection (simplex QP over per-relation emotion-loss gradients w.r.t. the emotion classifier), the token
   gate, the emotion head, and the per-example relation ranking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BartConfig, BartForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.bart.modeling_bart import BartDecoderLayer, BartEncoder

from dcks.config import DCKSConfig, DecodeConfig, LossConfig
from dcks.qp import solve_simplex_qp

try:
    from tenfold_core.models import register_model
except ImportError:  # pragma: no cover - core without the model registry yet

    def register_model(cls):
        return cls


__all__ = [
    "DCKS",
    "DCKSBart",
    "DCKSConfig",
    "DCKSDecoderLayer",
    "DCKSEncoding",
    "DecodeConfig",
    "EmotionEncoder",
    "KnowledgeAttention",
    "LossConfig",
    "build_bart_config",
    "relation_gradients",
    "selection_shift",
]


# --------------------------------------------------------------------------------------- 1. decoder layer
class KnowledgeAttention(nn.Module):
    """Multi-head cross-attention from decoder states to knowledge tokens (same parameter names as BART's attention,
    so it can be initialised from ``encoder_attn``). Keys/values can be computed once per ``generate`` call."""

    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.head_dim, self.dropout = heads, d_model // heads, dropout
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def keys_values(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, n, _ = states.shape
        k = self.k_proj(states).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(states).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        return k, v

    def forward(
        self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor
    ) -> torch.Tensor:
        b, t, d = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k, v = kv
        if k.shape[0] != b:  # beams share the knowledge of their example
            rep = b // k.shape[0]
            k, v, mask = (z.repeat_interleave(rep, dim=0) for z in (k, v, mask))
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask[:, None, None, :], dropout_p=self.dropout if self.training else 0.0
        )
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class DCKSDecoderLayer(BartDecoderLayer):
    """self-attn -> cross-attn over the context -> gated knowledge cross-attn -> FFN (post-norm, as BART)."""

    def __init__(self, config: BartConfig, layer_idx: int):
        super().__init__(config, layer_idx)
        self.layer_idx = layer_idx
        d = config.d_model
        self.knowledge_attn = KnowledgeAttention(d, config.decoder_attention_heads, config.attention_dropout)
        self.knowledge_attn_layer_norm = nn.LayerNorm(d)
        self.knowledge_gate = nn.Linear(2 * d, 1)
        self.knowledge: dict[str, Any] | None = None  # set by DCKSBart.forward for the duration of one call

    def init_from_cross_attention(self) -> None:
        """Copy BART's context cross-attention into the knowledge cross-attention (the code's unused helper)."""
        self.knowledge_attn.load_state_dict(self.encoder_attn.state_dict(), strict=False)
        self.knowledge_attn_layer_norm.load_state_dict(self.encoder_attn_layer_norm.state_dict())

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cache=None,
        use_cache: bool | None = True,
        **kwargs,
    ) -> torch.Tensor:
        know = self.knowledge
        if know is None:
            raise RuntimeError("DCKSDecoderLayer called without knowledge states (use DCKSBart.forward)")
        drop = self.dropout
        # self-attention (BART)
        residual = hidden_states
        x, _ = self.self_attn(hidden_states, cache=cache, attention_mask=attention_mask, **kwargs)
        x = self.self_attn_layer_norm(residual + F.dropout(x, p=drop, training=self.training))
        # cross-attention over the context (BART)
        if encoder_hidden_states is not None:
            residual = x
            x, _ = self.encoder_attn(
                x,
                key_value_states=encoder_hidden_states,
                attention_mask=encoder_attention_mask,
                cache=cache,
                **kwargs,
            )
            x = self.encoder_attn_layer_norm(residual + F.dropout(x, p=drop, training=self.training))
        # knowledge cross-attention with a gated residual (DCKS)
        residual = x
        kv = know.get("kv", {}).get(self.layer_idx)
        if kv is None:
            kv = self.knowledge_attn.keys_values(know["states"])
            if know.get("reuse"):
                know.setdefault("kv", {})[self.layer_idx] = kv
        x_k = F.dropout(self.knowledge_attn(x, kv, know["mask"]), p=drop, training=self.training)
        w = torch.sigmoid(self.knowledge_gate(torch.cat([x_k, residual], dim=-1)))
        x = self.knowledge_attn_layer_norm((1 - w) * residual + w * x_k)
        # feed-forward (BART)
        residual = x
        x = self.activation_fn(self.fc1(x))
        x = F.dropout(x, p=self.activation_dropout, training=self.training)
        x = F.dropout(self.fc2(x), p=drop, training=self.training)
        return self.final_layer_norm(residual + x)


# ---------------------------------------------------------------------------------------------- 2. DCKSBart
class DCKSBart(BartForConditionalGeneration):
    """``BartForConditionalGeneration`` with DCKS decoder layers; ``generate`` passes the knowledge through
    ``model_kwargs`` (``knowledge_states`` [B, N, d], ``knowledge_mask`` [B, N] bool), expanded for beams by HF."""

    def __init__(self, config: BartConfig):
        super().__init__(config)
        if getattr(config, "dcks_knowledge_in_decoder", True):
            layers = self.model.decoder.layers
            for i in range(len(layers)):
                new = DCKSDecoderLayer(config, i)
                new.load_state_dict(layers[i].state_dict(), strict=False)
                layers[i] = new

    def knowledge_layers(self) -> list[DCKSDecoderLayer]:
        return [m for m in self.model.decoder.layers if isinstance(m, DCKSDecoderLayer)]

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        decoder_input_ids=None,
        decoder_attention_mask=None,
        encoder_outputs=None,
        cache=None,
        inputs_embeds=None,
        decoder_inputs_embeds=None,
        labels=None,
        use_cache=None,
        knowledge_states: torch.Tensor | None = None,
        knowledge_mask: torch.Tensor | None = None,
        knowledge_cache: dict | None = None,
        **kwargs,
    ):
        layers = self.knowledge_layers()
        if layers and knowledge_states is None:
            raise ValueError("DCKSBart needs knowledge_states and knowledge_mask")
        shared = knowledge_cache if knowledge_cache is not None else {}
        shared.update(
            states=knowledge_states, mask=knowledge_mask.bool() if knowledge_mask is not None else None
        )
        for layer in layers:
            layer.knowledge = shared
        try:
            return super().forward(
                input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
                decoder_attention_mask=decoder_attention_mask, encoder_outputs=encoder_outputs, cache=cache,
                inputs_embeds=inputs_embeds, decoder_inputs_embeds=decoder_inputs_embeds, labels=labels,
                use_cache=use_cache, **kwargs,
            )  # fmt: skip
        finally:
            for layer in layers:
                layer.knowledge = None


def build_bart_config(cfg: DCKSConfig) -> BartConfig:
    """The backbone's BartConfig: the saved one, a tiny one, or the pretrained one's (read from its folder/hub)."""
    if cfg.bart_config:
        bc = BartConfig(**cfg.bart_config)
    elif cfg.backbone == "tiny":
        from tenfold_core.models import tiny_bart_config

        bc = tiny_bart_config(
            vocab_size=cfg.vocab_size, hidden=cfg.d_model, layers=cfg.layers, heads=cfg.heads, max_len=512,
            pad_token_id=cfg.pad_token_id, bos_token_id=cfg.bos_token_id, eos_token_id=cfg.eos_token_id,
            decoder_start_token_id=cfg.eos_token_id, forced_bos_token_id=None, forced_eos_token_id=None,
        )  # fmt: skip
    else:
        bc = BartConfig.from_pretrained(cfg.backbone)
    if cfg.dropout is not None:
        bc.dropout = cfg.dropout
    bc.dcks_knowledge_in_decoder = cfg.knowledge_in_decoder
    return bc


# ------------------------------------------------------------------------------------------ 3. emotion head
class EmotionEncoder(nn.Module):
    """One MoEL-style transformer layer (pre-norm; total key/value depth ``key_depth``, FFN width ``filter``)."""

    def __init__(self, d_model: int, heads: int, key_depth: int, filter_size: int, dropout: float = 0.0):
        super().__init__()
        self.heads, self.head_dim = heads, key_depth // heads
        self.norm_attn = nn.LayerNorm(d_model)
        self.q = nn.Linear(d_model, key_depth, bias=False)
        self.k = nn.Linear(d_model, key_depth, bias=False)
        self.v = nn.Linear(d_model, key_depth, bias=False)
        self.o = nn.Linear(key_depth, d_model, bias=False)
        self.norm_ffn = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, filter_size), nn.ReLU(), nn.Linear(filter_size, d_model))
        self.norm_out = nn.LayerNorm(d_model)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h = self.norm_attn(x)
        q, k, v = (
            f(h).view(b, t, self.heads, self.head_dim).transpose(1, 2) for f in (self.q, self.k, self.v)
        )
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.bool()[:, None, None, :])
        x = x + F.dropout(self.o(a.transpose(1, 2).reshape(b, t, -1)), self.dropout, self.training)
        x = x + F.dropout(self.ffn(self.norm_ffn(x)), self.dropout, self.training)
        return self.norm_out(x)


# ------------------------------------------------------------------------------------- 4. adaptive selection
def relation_gradients(u: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, cumulative: bool = False):
    """Per-relation emotion losses l_r = CE(W u_r, e) (batch mean) and their gradients w.r.t. W, in closed form.

    ``u`` [B, R, d], ``weight`` [E, d], ``labels`` [B]. Returns ``(losses [R], grads [R, E, d])``; with
    ``cumulative`` the gradients are g_1, g_1+g_2, ... as in the official code (``.grad`` never zeroed).
    """
    u, weight = u.detach().float(), weight.detach().float()
    b = u.shape[0]
    logits = torch.einsum("brd,ed->bre", u, weight)
    logp = logits.log_softmax(-1)
    onehot = F.one_hot(labels, weight.shape[0]).to(logits.dtype)
    losses = -(logp * onehot[:, None, :]).sum(-1).mean(0)
    resid = logp.exp() - onehot[:, None, :]  # dCE/dlogits
    grads = torch.einsum("bre,brd->red", resid, u) / b
    if cumulative:
        grads = grads.cumsum(0)
    return losses, grads


def selection_shift(losses: torch.Tensor, grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve min 1/2 lam^T (G G^T) lam - l^T lam on the simplex; d = -G^T lam; delta = mean of d over emotions.

    Returns ``(delta [d], lam [R])`` (no gradient flows through the QP, as in the code).
    """
    r = grads.shape[0]
    g = grads.reshape(r, -1).double()
    gram = (g @ g.T).cpu().numpy()
    lam = solve_simplex_qp(gram, losses.double().cpu().numpy())
    lam_t = torch.as_tensor(lam, dtype=grads.dtype, device=grads.device)
    d = -(lam_t[:, None, None] * grads).sum(0)  # [E, d]
    return d.mean(0), lam_t


@dataclass
class DCKSEncoding:
    """Everything the decoder and the losses need from the encoders."""

    encoder_states: torch.Tensor  # [B, T, d]
    attention_mask: torch.Tensor  # [B, T]
    knowledge_states: torch.Tensor  # [B, R*L, d] (shifted, gated)
    knowledge_mask: torch.Tensor  # [B, R*L]
    emotion_logits: torch.Tensor  # [B, E]
    relation_losses: (
        torch.Tensor
    )  # [R] batch-mean per-relation emotion losses (grad -> knowledge encoder only)
    relation_example_losses: torch.Tensor  # [B, R] (no grad)
    relation_ranking: torch.Tensor  # [B, R] relation indices, best first
    selection_weights: torch.Tensor | None  # [R] QP solution
    selection_delta: torch.Tensor | None  # [d]


# ------------------------------------------------------------------------------------------------- 5. DCKS
@register_model
class DCKS(nn.Module):
    """The DCKS network. ``forward`` returns (lm logits, encoding); ``generate`` returns replies + emotion + ranking."""

    config_class = DCKSConfig

    def __init__(self, config: DCKSConfig, bart: DCKSBart | None = None):
        super().__init__()
        self.config = config
        bc = build_bart_config(config)
        self.bart = bart if bart is not None else DCKSBart(bc)
        d = bc.d_model
        self.knowledge_encoder = BartEncoder(bc)
        self.knowledge_encoder.embed_tokens = None  # shares BART's token embeddings (passed as inputs_embeds)
        self.token_gate = nn.Linear(2 * d, 1)
        self.emo_lin = nn.Linear(d, config.num_emotions, bias=False)
        self.emo_encoder = (
            EmotionEncoder(d, config.emo_heads, config.emo_key_depth, config.emo_filter, bc.dropout)
            if config.emotion_source != "context"
            else None
        )
        # PyTorch's default (fan-in scaled) init for the new heads: BART's std 0.02 is scaled for d = 768 and leaves a
        # small model's emotion head with vanishing gradients [reconstructed choice]
        nn.init.zeros_(self.token_gate.bias)
        if config.init_knowledge_from_bart:
            self.init_knowledge_from_bart()

    @classmethod
    def from_pretrained_backbone(cls, config: DCKSConfig) -> DCKS:
        """Load BART weights for ``config.backbone`` (hub id or folder), then build and initialise DCKS around it."""
        from tenfold_core.models import load_pretrained

        bc = build_bart_config(config)
        bart = load_pretrained(config.backbone, DCKSBart, config=bc)
        return cls(config, bart=bart)

    def init_knowledge_from_bart(self) -> None:
        """Knowledge encoder <- BART's encoder; knowledge cross-attention <- each layer's context cross-attention."""
        src = {
            k: v for k, v in self.bart.model.encoder.state_dict().items() if not k.startswith("embed_tokens.")
        }
        self.knowledge_encoder.load_state_dict(src, strict=True)
        for layer in self.bart.knowledge_layers():
            layer.init_from_cross_attention()

    @property
    def relations(self) -> list[str]:
        return list(self.config.relations)

    # -- encoders, selection, gate, emotion head ----------------------------------------------------------------
    def _emotion_logits(self, h_c: torch.Tensor, mask: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        src = self.config.emotion_source
        if src == "context":
            return self.emo_lin(h_c[:, 0])
        z = v[:, None, :].expand_as(h_c) if src == "knowledge" else h_c + v[:, None, :]
        return self.emo_lin(self.emo_encoder(z, mask)[:, 0])

    def _gate(self, h_k: torch.Tensor, u: torch.Tensor, delta: torch.Tensor | None) -> torch.Tensor:
        shifted = h_k + delta if delta is not None else h_k
        uu = u[:, :, None, :].expand_as(h_k)
        alpha = torch.sigmoid(self.token_gate(torch.cat([shifted, uu], dim=-1)))
        return alpha * shifted + (1 - alpha) * uu

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        knowledge_input_ids: torch.Tensor,
        knowledge_attention_mask: torch.Tensor,
        emotion_labels: torch.Tensor | None = None,
    ) -> DCKSEncoding:
        cfg = self.config
        b, r, length = knowledge_input_ids.shape
        if r != len(cfg.relations):
            raise ValueError(f"knowledge_input_ids has {r} relations, the model expects {len(cfg.relations)}")
        h_c = self.bart.model.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        flat_ids = knowledge_input_ids.reshape(b * r, length)
        flat_mask = knowledge_attention_mask.reshape(b * r, length)
        embeds = self.bart.model.shared(flat_ids)
        h_k = self.knowledge_encoder(inputs_embeds=embeds, attention_mask=flat_mask).last_hidden_state
        h_k = h_k.view(b, r, length, -1)
        u = h_k[:, :, 0]  # per-relation first-token states [B, R, d]

        # per-relation emotion losses; the auxiliary loss reaches the knowledge encoder only (W detached)
        w = self.emo_lin.weight
        rel_logits = torch.einsum("brd,ed->bre", u, w.detach())
        delta = lam = None
        if emotion_labels is not None:
            sel_labels = emotion_labels
        elif cfg.selection_label == "context" or not cfg.selection:
            sel_labels = self.emo_lin(h_c[:, 0]).argmax(-1)
        else:  # a first pass without the shift gives the label
            v0 = self._gate(h_k, u, None)[:, :, 0].mean(1)
            sel_labels = self._emotion_logits(h_c, attention_mask, v0).argmax(-1)
        relation_losses = (
            F.cross_entropy(rel_logits.reshape(b * r, -1), sel_labels.repeat_interleave(r), reduction="none")
            .view(b, r)
            .mean(0)
        )
        if cfg.selection:
            with torch.no_grad():
                losses, grads = relation_gradients(u, w, sel_labels, cfg.cumulative_grad_bug)
                delta, lam = selection_shift(losses, grads)
                delta = delta.to(h_k.dtype)

        gated = self._gate(h_k, u, delta)
        v = gated[:, :, 0].mean(1)
        emotion_logits = self._emotion_logits(h_c, attention_mask, v)

        # interpretability: rank relations per example by their emotion loss under the gold (or predicted) label
        with torch.no_grad():
            rank_labels = emotion_labels if emotion_labels is not None else emotion_logits.argmax(-1)
            ex_losses = F.cross_entropy(
                rel_logits.detach().reshape(b * r, -1).float(),
                rank_labels.repeat_interleave(r),
                reduction="none",
            ).view(b, r)
            ranking = ex_losses.argsort(dim=1, descending=cfg.rank_order == "descending", stable=True)
        return DCKSEncoding(
            encoder_states=h_c, attention_mask=attention_mask, knowledge_states=gated.reshape(b, r * length, -1),
            knowledge_mask=flat_mask.reshape(b, r * length).bool(), emotion_logits=emotion_logits,
            relation_losses=relation_losses, relation_example_losses=ex_losses, relation_ranking=ranking,
            selection_weights=lam, selection_delta=delta,
        )  # fmt: skip

    # -- training forward ---------------------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        knowledge_input_ids: torch.Tensor,
        knowledge_attention_mask: torch.Tensor,
        decoder_input_ids: torch.Tensor,
        decoder_attention_mask: torch.Tensor | None = None,
        emotion_labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, DCKSEncoding]:
        enc = self.encode(
            input_ids, attention_mask, knowledge_input_ids, knowledge_attention_mask, emotion_labels
        )
        out = self.bart(
            attention_mask=attention_mask, encoder_outputs=BaseModelOutput(last_hidden_state=enc.encoder_states),
            decoder_input_ids=decoder_input_ids, decoder_attention_mask=decoder_attention_mask, use_cache=False,
            knowledge_states=enc.knowledge_states, knowledge_mask=enc.knowledge_mask,
        )  # fmt: skip
        return out.logits, enc

    # -- generation ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        knowledge_input_ids: torch.Tensor,
        knowledge_attention_mask: torch.Tensor,
        decode: DecodeConfig | None = None,
        **generate_kwargs: Any,
    ) -> dict[str, Any]:
        """Replies (token ids), predicted emotions and per-example relation rankings. ``generate_kwargs`` go to
        Hugging Face ``generate`` (e.g. ``streamer=``) and override ``decode``."""
        decode = decode or DecodeConfig()
        enc = self.encode(input_ids, attention_mask, knowledge_input_ids, knowledge_attention_mask, None)
        kw: dict[str, Any] = dict(
            num_beams=decode.num_beams, do_sample=decode.do_sample, repetition_penalty=decode.repetition_penalty,
            max_new_tokens=decode.max_new_tokens, early_stopping=decode.early_stopping if decode.num_beams > 1 else False,
        )  # fmt: skip
        if decode.do_sample:
            kw.update(top_p=decode.top_p, temperature=decode.temperature)
        kw.update(generate_kwargs)
        bc = self.bart.config
        sequences = self.bart.generate(
            encoder_outputs=BaseModelOutput(last_hidden_state=enc.encoder_states),
            attention_mask=attention_mask, knowledge_states=enc.knowledge_states, knowledge_mask=enc.knowledge_mask,
            knowledge_cache={"reuse": True}, decoder_start_token_id=bc.decoder_start_token_id,
            pad_token_id=bc.pad_token_id, eos_token_id=bc.eos_token_id, bos_token_id=bc.bos_token_id, **kw,
        )  # fmt: skip
        return {
            "sequences": sequences,
            "emotion": enc.emotion_logits.argmax(-1),
            "emotion_probs": enc.emotion_logits.softmax(-1),
            "relation_ranking": enc.relation_ranking,
            "relation_losses": enc.relation_example_losses,
        }
