"""Frame-UNet (FUnet) and the per-frame U-Net baseline, both taking clips ``[B, F, 3, H, W]``.

FUnet (Peng et al., MICCAI 2023, arXiv 2307.10955), as in the official code:

    frames [B*F, 3, H, W] -> encoder (smp/timm, default Res2Net50-v1b = timm ``res2net50d``) up to stride 16
      stride-8 feature  -> LightRFB -> low  [B*F, 24, H/8,  W/8 ]
      stride-16 feature -> LightRFB -> high [B*F, 32, H/16, W/16]
    high -> U-Net (4 down / 4 up, every up block gated by CSA) -> [B*F, 32, H/16, W/16] -> upsample to stride 8
    low  -> (view as [B, F*24, H/8, W/8]) -> FrameAttention -> one gate g_f in (0, 1) per frame
    decoder(low, up(high)) -> 1x1 conv -> logit map z_f;  output logits = g_f * z_f, upsampled to H x W

"Inter-frame information" is therefore *only* the gate: a positive scalar per frame, computed from all F frames'
low-level features, that multiplies that frame's logits. It never changes the sign of a logit, so the mask at
threshold 0.5 is the same with or without it; it changes the confidence (the probabilities move towards 0.5 when
g_f is small). There is no cross-frame feature fusion in the paper's model. ``temporal_fusion="gated_mean"`` (off
by default, ours) adds one: each frame's stride-16 feature receives a 1x1-projected, gate-weighted mean of the
clip's features before the U-Net, which *can* change the mask of a corrupted frame.

CSA ("ChannleSelfAttention" in the official code) is spatial multi-head self-attention over the h*w positions of
a decoder feature map (tokens of C channels, learned positional embedding, no output projection), then LayerNorm,
sigmoid, and an elementwise gate ``x * sigmoid(LN(attn(x + pos)))``. The official code sizes the positional
embeddings for a 256x448 input only; here they are stored at a reference size (``pos_size``, default 256x448, so
official-shaped weights load) and bilinearly interpolated to the actual feature size (``pos_mode="fixed"``
reproduces the official fixed size and rejects other inputs).
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from tenfold_core.errors import ConfigError, ModelLoadError

__all__ = [
    "FUnetConfig",
    "FUnet",
    "PerFrameUNet",
    "LightRFB",
    "ChannelSelfAttention",
    "FrameAttention",
    "CSAUNet",
    "build_encoder",
    "build_model",
]


# ------------------------------------------------------------------------------------------------ config
@dataclass
class FUnetConfig:
    """Every architectural choice; the defaults are the paper's / official code's model."""

    encoder_name: str = (
        "tu-res2net50d"  # Res2Net50-v1b (deep stem, avg-down) in timm; any smp encoder name works
    )
    encoder_weights: str | None = (
        None  # None, an smp weight name ("imagenet", fetched from the HF hub), or a file
    )
    in_channels: int = 3
    num_frames: int = 5
    low_channels: int = 24  # Low_RFB output (stride 8)
    high_channels: int = 32  # High_RFB output (stride 16)
    rfb_mid_channels: int = 128
    unet_base: int = 64  # U-Net widths base * (1, 2, 4, 8, 16): 64..1024 in the paper
    unet_out_channels: int = 32
    unet_bilinear: bool = (
        False  # official default (ConvTranspose); True crashes in the official code, works here
    )
    decoder_channels: int = 16
    csa: bool = True
    csa_heads: int = 8
    pos_size: list[int] = field(
        default_factory=lambda: [256, 448]
    )  # input size the pos-embeddings are stored at
    pos_mode: Literal["interpolate", "fixed"] = "interpolate"
    frame_gate: bool = True
    frame_ratio: int = 2
    temporal_fusion: Literal["none", "gated_mean"] = "none"
    dropout: float = 0.1
    rfb_bn_momentum: float = 0.01  # official BasicConv BN momentum (PyTorch convention); 0.1 suits short runs

    def __post_init__(self):
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.frame_gate and self.num_frames < 2:
            raise ValueError("frame_gate needs num_frames >= 2 (set frame_gate=False for single images)")
        if len(self.pos_size) != 2 or min(self.pos_size) < 16:
            raise ValueError(f"pos_size must be [H, W] with H, W >= 16, got {self.pos_size}")
        for name in ("unet_base", "unet_out_channels", "high_channels", "low_channels", "decoder_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.csa and self.unet_base % self.csa_heads:
            raise ValueError(
                f"unet_base ({self.unet_base}) must be divisible by csa_heads ({self.csa_heads})"
            )

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------------ encoder
def _is_local_weights(weights: str | None) -> bool:
    return weights is not None and (
        os.path.sep in weights
        or Path(weights).suffix in (".pth", ".pt", ".bin", ".safetensors", ".ckpt")
        or Path(weights).is_file()
    )


def build_encoder(name: str, depth: int = 4, weights: str | None = None, in_channels: int = 3) -> nn.Module:
    """An smp encoder; ``weights`` is None (random), an smp weight name (downloaded), or a local weights file."""
    import segmentation_models_pytorch as smp

    local = _is_local_weights(weights)
    try:
        enc = smp.encoders.get_encoder(
            name, in_channels=in_channels, depth=depth, weights=None if local else weights
        )
    except KeyError as e:
        raise ConfigError(f"encoder_name: unknown encoder {name!r} ({e})") from None
    except Exception as e:  # network / hub failures for named weights
        if weights is None:
            raise
        raise ModelLoadError(
            f"encoder_weights={weights!r} for {name!r} could not be loaded ({type(e).__name__}: {e}); "
            "offline, pass a local weights file instead"
        ) from None
    if local:
        load_encoder_weights(enc, weights)
    return enc


def load_encoder_weights(encoder: nn.Module, path: str | os.PathLike) -> None:
    """Load a local encoder checkpoint (safetensors or a torch file, weights_only); classifier keys are ignored."""
    from tenfold_core.models import load_state_dict_checked, load_weights

    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(f"encoder_weights: {p}: no such file")
    state = load_weights(p)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    own = encoder.state_dict()
    keys = set(own)
    # smp encoders keep timm models under "model."; accept plain timm / torchvision keys too
    fixed = {}
    for k, v in state.items():
        for cand in (k, "model." + k, k.removeprefix("encoder.")):
            if cand in keys:
                fixed[cand] = v
                break
    load_state_dict_checked(encoder, fixed, strict=False, min_fraction=0.9)


# ------------------------------------------------------------------------------------------------ LightRFB
class _HSigmoid(nn.Module):
    def forward(self, x):
        return F.relu6(x + 3.0) / 6.0


class _SE(nn.Module):
    """Squeeze-excitation with a hard sigmoid (reduction 4), as in LightRFB."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels), _HSigmoid()
        )

    def forward(self, x):
        w = self.fc(x.mean((2, 3)))
        return x * w[:, :, None, None]


def _conv_bn_base(cin, cout, k=1, dilation=1, groups=1, act=True, momentum=0.01):
    """conv (no bias) -> BN (momentum 0.01 in the official BasicConv) -> optional PReLU."""
    layers = [
        nn.Conv2d(cin, cout, k, padding=dilation * (k // 2), dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(cout, momentum=momentum),
    ]
    if act:
        layers.append(nn.PReLU())
    return nn.Sequential(*layers)


class LightRFB(nn.Module):
    """Light receptive-field block (PNS-Net): SE -> 1x1 reduce -> 4 depthwise dilated branches (d = 1, 3, 5, 7)
    -> concat with the input -> 1x1 + BN + PReLU."""

    def __init__(
        self,
        channels_in: int = 1024,
        channels_mid: int = 128,
        channels_out: int = 32,
        bn_momentum: float = 0.01,
    ):
        super().__init__()
        m = channels_mid
        _conv_bn = functools.partial(_conv_bn_base, momentum=bn_momentum)
        self.se = _SE(channels_in)
        self.reduce = nn.Sequential(nn.Conv2d(channels_in, m, 1, bias=False), nn.BatchNorm2d(m), nn.PReLU(m))
        self.br0 = nn.Sequential(_conv_bn(m, m, 1), _conv_bn(m, m, 3, groups=m, act=False))
        self.br1 = nn.Sequential(
            _conv_bn(m, m, 3, groups=m, act=False), _conv_bn(m, m, 1), _conv_bn(m, m, 3, 3, m, act=False)
        )
        self.br2 = nn.Sequential(
            _conv_bn(m, m, 5, groups=m, act=False), _conv_bn(m, m, 1), _conv_bn(m, m, 3, 5, m, act=False)
        )
        self.br3 = nn.Sequential(
            _conv_bn(m, m, 7, groups=m, act=False), _conv_bn(m, m, 1), _conv_bn(m, m, 3, 7, m, act=False)
        )
        self.out = _conv_bn(4 * m + channels_in, channels_out, 1)

    def forward(self, x):
        r = self.reduce(self.se(x))
        return self.out(torch.cat([x, self.br0(r), self.br1(r), self.br2(r), self.br3(r)], 1))


# ------------------------------------------------------------------------------------------------ CSA U-Net
def _half(n: int) -> int:
    """Size after a 2x2 max-pool; a side of 1 stays 1 (the official floor pooling crashes below 2)."""
    return n // 2 if n >= 2 else 1


def _pool(x: torch.Tensor) -> torch.Tensor:
    kh, kw = (2 if x.shape[-2] >= 2 else 1), (2 if x.shape[-1] >= 2 else 1)
    return F.max_pool2d(x, (kh, kw))


class ChannelSelfAttention(nn.Module):
    """The official "ChannleSelfAttention": multi-head self-attention over spatial positions, LayerNorm, sigmoid.

    Returns the gate ``sigmoid(LN(attn(tokens + pos)))`` with the input's shape. Positional embeddings are stored as
    ``[1, h0*w0, C]`` (the official layout) for the reference size ``(h0, w0)`` and interpolated when needed.
    """

    def __init__(
        self, channels: int, ref_hw: tuple[int, int], num_heads: int = 8, pos_mode: str = "interpolate"
    ):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"CSA channels ({channels}) must be divisible by num_heads ({num_heads})")
        self.ref_hw = tuple(ref_hw)
        self.num_heads = num_heads
        self.pos_mode = pos_mode
        self.pos_embedding = nn.Parameter(torch.randn(1, ref_hw[0] * ref_hw[1], channels))
        self.qkv = nn.Linear(channels, 3 * channels, bias=False)
        self.norm = nn.LayerNorm(channels)

    def positional(self, h: int, w: int) -> torch.Tensor:
        if (h, w) == self.ref_hw:
            return self.pos_embedding
        if self.pos_mode == "fixed":
            raise ConfigError(
                f"CSA positional embeddings are fixed at {self.ref_hw[0]}x{self.ref_hw[1]} but the feature map is "
                f"{h}x{w}: use pos_mode='interpolate' or set pos_size to the input size"
            )
        c = self.pos_embedding.shape[-1]
        grid = self.pos_embedding.transpose(1, 2).reshape(1, c, *self.ref_hw)
        grid = F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)
        return grid.flatten(2).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2) + self.positional(h, w)  # [B, N, C]
        q, k, v = self.qkv(t).reshape(b, h * w, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v)  # scale (C/heads)^-1/2, as the official code
        a = self.norm(a.transpose(1, 2).reshape(b, h * w, c))
        return torch.sigmoid(a).transpose(1, 2).reshape(b, c, h, w)


class _DoubleConv(nn.Sequential):
    def __init__(self, cin, cout, mid=None):
        mid = mid or cout
        super().__init__(
            nn.Conv2d(cin, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class _Up(nn.Module):
    def __init__(self, cin, cout, ref_hw, bilinear, csa, heads, pos_mode):
        super().__init__()
        self.bilinear = bilinear
        if bilinear:
            self.up = None
            self.conv = _DoubleConv(cin, cout, cin // 2)
        else:
            self.up = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
            self.conv = _DoubleConv(cin, cout)
        self.csa = ChannelSelfAttention(cout, ref_hw, heads, pos_mode) if csa else None

    def forward(self, x, skip):
        if self.up is None:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            x = self.up(x)
        dy, dx = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])  # negative pad crops (1-pixel sides)
        x = self.conv(torch.cat([skip, x], 1))
        return x * self.csa(x) if self.csa is not None else x


class CSAUNet(nn.Module):
    """The segmentation branch: a 5-level U-Net (widths base*(1..16)) with a CSA gate after every up block."""

    def __init__(
        self, cin, cout, base=64, ref_hw=(16, 28), bilinear=False, csa=True, heads=8, pos_mode="interpolate"
    ):
        super().__init__()
        w = [base * 2**i for i in range(5)]
        f = 2 if bilinear else 1
        sizes = [tuple(ref_hw)]
        for _ in range(4):
            sizes.append((_half(sizes[-1][0]), _half(sizes[-1][1])))
        self.inc = _DoubleConv(cin, w[0])
        self.downs = nn.ModuleList(
            [
                _DoubleConv(w[0], w[1]),
                _DoubleConv(w[1], w[2]),
                _DoubleConv(w[2], w[3]),
                _DoubleConv(w[3], w[4] // f),
            ]
        )
        outs = [w[3] // f, w[2] // f, w[1] // f, w[0]]
        ins = [w[4], w[3], w[2], w[1]]
        self.ups = nn.ModuleList(
            [_Up(ins[i], outs[i], sizes[3 - i], bilinear, csa, heads, pos_mode) for i in range(4)]
        )
        self.outc = nn.Conv2d(w[0], cout, 1)

    def forward(self, x):
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(_pool(skips[-1])))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)


# ------------------------------------------------------------------------------------------------ frame attention
class _AttentionDown(nn.Module):
    def __init__(self, cin, cout, frames, bn_momentum=0.01):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Conv2d(cin, cout, 1, bias=False), nn.ReLU(inplace=True), nn.Conv2d(cout, frames, 1, bias=False)
        )
        self.rfb = LightRFB(cin, (cin + cout) // 2, cout, bn_momentum)

    def forward(self, x):
        return self.mlp(x.mean((2, 3), keepdim=True)), self.rfb(x)


class FrameAttention(nn.Module):
    """Frames stacked as channels ``[B, F*C, h, w]`` -> one gate in (0, 1) per frame, ``[B, F]``.

    Three blocks each emit F frame logits from a pooled MLP and reduce the channels with a LightRFB
    (F*C -> F*C/2 -> F*C/4 -> F); an SE-style block emits a fourth set; a 1x1 conv fuses the 4F logits, then sigmoid.
    """

    def __init__(self, channels_in: int, frames: int, ratio: int = 2, bn_momentum: float = 0.01):
        super().__init__()
        c1, c2 = channels_in // ratio, channels_in // ratio // ratio
        if c2 < 1:
            raise ValueError("FrameAttention: too few channels for the ratio")
        self.block1 = _AttentionDown(channels_in, c1, frames, bn_momentum)
        self.block2 = _AttentionDown(c1, c2, frames, bn_momentum)
        self.block3 = _AttentionDown(c2, frames, frames, bn_momentum)
        hid = max(1, frames // ratio)
        self.block4 = nn.Sequential(
            nn.Conv2d(frames, hid, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hid, frames, 1, bias=False),
        )
        self.fusion = nn.Conv2d(4 * frames, frames, 1)

    def forward(self, x):
        w1, x = self.block1(x)
        w2, x = self.block2(x)
        w3, x = self.block3(x)
        w4 = self.block4(x.mean((2, 3), keepdim=True))
        return torch.sigmoid(self.fusion(torch.cat([w1, w2, w3, w4], 1))).flatten(1)


# ------------------------------------------------------------------------------------------------ decoder
class _DilatedParallelConv(nn.Module):
    """1x1 conv, then half the channels through a 3x3 (d=1) and half through a 3x3 (d=2), concat, BN."""

    def __init__(self, cin, cout):
        super().__init__()
        n = math.ceil(cout / 2)
        self.conv0 = nn.Conv2d(cin, cout, 1, bias=False)
        self.conv1 = nn.Conv2d(n, n, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout - n, cout - n, 3, padding=2, dilation=2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.n = n

    def forward(self, x):
        x = self.conv0(x)
        return self.bn(torch.cat([self.conv1(x[:, : self.n]), self.conv2(x[:, self.n :])], 1))


class _CombineFeature(nn.Module):
    def __init__(self, high, low, out):
        super().__init__()
        self.high = _DilatedParallelConv(high, out)
        self.low = nn.Sequential(nn.Conv2d(low, out, 1, bias=False), nn.BatchNorm2d(out))
        self.act = nn.PReLU(out)
        self.refine = nn.Sequential(
            nn.Conv2d(out, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.PReLU()
        )

    def forward(self, low, high):
        return self.refine(self.act(self.high(high) + self.low(low)))


# ------------------------------------------------------------------------------------------------ FUnet
def _check_clip(x: torch.Tensor, multiple: int) -> None:
    if x.ndim != 5:
        raise ValueError(f"expected a clip [B, F, C, H, W], got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % multiple or w % multiple:
        raise ValueError(f"H and W must be divisible by {multiple}, got {h}x{w}")


class FUnet(nn.Module):
    """Frame-UNet. ``forward(clip)`` -> logits ``[B, F, 1, H, W]``; ``return_gates=True`` also returns ``[B, F]``."""

    def __init__(self, config: FUnetConfig | None = None, **overrides):
        super().__init__()
        cfg = config or FUnetConfig()
        if overrides:
            cfg = FUnetConfig(**{**cfg.to_dict(), **overrides})
        self.config = cfg
        self.encoder = build_encoder(cfg.encoder_name, 4, cfg.encoder_weights, cfg.in_channels)
        ch = self.encoder.out_channels
        self.high_rfb = LightRFB(ch[4], cfg.rfb_mid_channels, cfg.high_channels, cfg.rfb_bn_momentum)
        self.low_rfb = LightRFB(ch[3], cfg.rfb_mid_channels, cfg.low_channels, cfg.rfb_bn_momentum)
        ref = (cfg.pos_size[0] // 16, cfg.pos_size[1] // 16)
        self.seg_branch = CSAUNet(
            cfg.high_channels,
            cfg.unet_out_channels,
            cfg.unet_base,
            ref,
            cfg.unet_bilinear,
            cfg.csa,
            cfg.csa_heads,
            cfg.pos_mode,
        )
        self.frame_attention = (
            FrameAttention(
                cfg.num_frames * cfg.low_channels, cfg.num_frames, cfg.frame_ratio, cfg.rfb_bn_momentum
            )
            if cfg.frame_gate
            else None
        )
        self.fusion = None
        if cfg.temporal_fusion == "gated_mean":
            self.fusion = nn.Conv2d(cfg.high_channels, cfg.high_channels, 1)
            nn.init.zeros_(self.fusion.weight)
            nn.init.zeros_(self.fusion.bias)
        self.decoder = _CombineFeature(cfg.unet_out_channels, cfg.low_channels, cfg.decoder_channels)
        self.head = nn.Sequential(
            nn.Dropout2d(cfg.dropout), nn.Conv2d(cfg.decoder_channels, 1, 1, bias=False)
        )

    def forward(self, x: torch.Tensor, return_gates: bool = False, use_gate: bool = True):
        _check_clip(x, 16)
        b, f = x.shape[:2]
        frames = x.flatten(0, 1)
        feats = self.encoder(frames)
        low = self.low_rfb(feats[3])
        high = self.high_rfb(feats[4])
        gates = None
        if self.frame_attention is not None and use_gate:
            if f != self.config.num_frames:
                raise ValueError(f"the frame gate was built for {self.config.num_frames} frames, got {f}")
            gates = self.frame_attention(low.reshape(b, f * low.shape[1], *low.shape[2:]))  # [B, F]
        if self.fusion is not None:
            hf = high.reshape(b, f, *high.shape[1:])
            wts = gates if gates is not None else hf.new_ones(b, f)
            ctx = (hf * wts[:, :, None, None, None]).sum(1) / wts.sum(1).clamp_min(1e-6)[:, None, None, None]
            high = (hf + self.fusion(ctx)[:, None]).flatten(0, 1)
        high = self.seg_branch(high)
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        z = self.head(self.decoder(low, high))
        if gates is not None:
            z = z * gates.reshape(b * f, 1, 1, 1)
        z = F.interpolate(z, size=x.shape[-2:], mode="bilinear", align_corners=False)
        z = z.reshape(b, f, 1, *x.shape[-2:])
        return (z, gates) if return_gates else z


class PerFrameUNet(nn.Module):
    """Baseline: ``smp.Unet`` applied to every frame of the clip independently (same clip interface as FUnet)."""

    def __init__(
        self,
        encoder_name: str = "tu-res2net50d",
        encoder_weights: str | None = None,
        encoder_depth: int = 5,
        decoder_channels: tuple[int, ...] | list[int] = (256, 128, 64, 32, 16),
        in_channels: int = 3,
    ):
        super().__init__()
        import segmentation_models_pytorch as smp

        local = _is_local_weights(encoder_weights)
        self.unet = smp.Unet(
            encoder_name,
            encoder_depth=encoder_depth,
            encoder_weights=None,
            decoder_channels=list(decoder_channels)[:encoder_depth],
            in_channels=in_channels,
            classes=1,
        )
        if encoder_weights is not None:
            if local:
                load_encoder_weights(self.unet.encoder, encoder_weights)
            else:
                src = build_encoder(encoder_name, encoder_depth, encoder_weights, in_channels)
                self.unet.encoder.load_state_dict(src.state_dict())
        self.multiple = 2**encoder_depth
        self.config = {
            "encoder_name": encoder_name,
            "encoder_depth": encoder_depth,
            "decoder_channels": list(decoder_channels)[:encoder_depth],
            "in_channels": in_channels,
        }

    def forward(self, x: torch.Tensor, return_gates: bool = False, use_gate: bool = True):
        _check_clip(x, self.multiple)
        b, f = x.shape[:2]
        z = self.unet(x.flatten(0, 1)).reshape(b, f, 1, *x.shape[-2:])
        return (z, None) if return_gates else z


def build_model(kind: str, **kwargs) -> nn.Module:
    """``build_model("funet", encoder_name=..., unet_base=...)`` or ``build_model("unet", encoder_name=...)``."""
    if kind == "funet":
        return FUnet(FUnetConfig(**kwargs))
    if kind == "unet":
        return PerFrameUNet(**kwargs)
    raise ConfigError(f"model: expected 'funet' or 'unet', got {kind!r}")
