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
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from funet.config import FUnetConfig
from tenfold_core.errors import ConfigError, ModelLoadError
from tenfold_core.models import register_model

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
    "StreamStep",
    "StreamingPredictor",
]


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
    _drop_unused(enc, in_channels)
    if local:
        load_encoder_weights(enc, weights)
    return enc


def _drop_unused(encoder: nn.Module, in_channels: int) -> None:
    """Replace the encoder's sub-modules that never reach an output by ``nn.Identity``.

    smp keeps ResNet's layer4 at depth 4 and timm's feature wrappers may run a block past the last returned stage:
    parameters that produce no loss make DDP fail ("parameters that were not used in producing the loss") and cost
    time. Found with one probe forward/backward at 64x64; the outputs are checked to be unchanged.
    """
    was_training = encoder.training
    encoder.eval()
    x = torch.zeros(1, in_channels, 64, 64)
    feats = encoder(x)
    sum(f.float().sum() for f in feats).backward()
    unused = {n for n, p in encoder.named_parameters() if p.grad is None}
    shapes = [f.shape for f in feats]
    for p in encoder.parameters():
        p.grad = None
    if unused:
        dropped: list[str] = []
        for name, mod in list(encoder.named_modules()):
            if not name or any(name.startswith(d + ".") for d in dropped):
                continue
            names = [f"{name}.{n}" for n, _ in mod.named_parameters()]
            if names and all(n in unused for n in names):
                parent = encoder.get_submodule(name.rpartition(".")[0]) if "." in name else encoder
                setattr(parent, name.rpartition(".")[2], nn.Identity())
                dropped.append(name)
        with torch.no_grad():
            after = [f.shape for f in encoder(x)]
        if after != shapes:  # pragma: no cover - an encoder whose unused part still shapes an output
            raise ConfigError(f"encoder: cannot drop its unused modules {dropped} safely")
    encoder.train(was_training)


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


@register_model
class FUnet(nn.Module):
    """Frame-UNet. ``forward(clip)`` -> logits ``[B, F, 1, H, W]``; ``return_gates=True`` also returns ``[B, F]``.

    ``FUnet(FUnetConfig(...))``; keyword overrides (``FUnet(encoder_name="resnet18")``) are a shortcut for scripts.
    """

    config_class = FUnetConfig

    def __init__(self, config: FUnetConfig | None = None, **overrides):
        super().__init__()
        cfg = config or FUnetConfig()
        if overrides:
            from dataclasses import asdict

            cfg = FUnetConfig(**{**asdict(cfg), **overrides})
        if cfg.kind != "funet":
            raise ConfigError(f"model.kind={cfg.kind!r}: FUnet needs kind=funet (use build_model)")
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

    # the three stages, shared by the clip forward and the streaming step
    def features(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-frame features ``[N, 3, H, W]`` -> (low ``[N, C_low, H/8, W/8]``, high ``[N, C_high, H/16, W/16]``)."""
        feats = self.encoder(frames)
        return self.low_rfb(feats[3]), self.high_rfb(feats[4])

    def fuse(self, high: torch.Tensor, gates: torch.Tensor | None) -> torch.Tensor:
        """``temporal_fusion=gated_mean``: add a projected, gate-weighted clip mean to every frame. ``high`` [B, F, ...]."""
        if self.fusion is None:
            return high
        wts = gates if gates is not None else high.new_ones(high.shape[:2])
        ctx = (high * wts[:, :, None, None, None]).sum(1) / wts.sum(1).clamp_min(1e-6)[:, None, None, None]
        return high + self.fusion(ctx)[:, None]

    def frame_logits(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """Per-frame stride-8 logits ``[N, 1, H/8, W/8]`` (before the gate)."""
        high = self.seg_branch(high)
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(self.decoder(low, high))

    def forward(self, x: torch.Tensor, return_gates: bool = False, use_gate: bool = True):
        _check_clip(x, 16)
        b, f = x.shape[:2]
        low, high = self.features(x.flatten(0, 1))
        gates = None
        if self.frame_attention is not None and use_gate:
            if f != self.config.num_frames:
                raise ValueError(f"the frame gate was built for {self.config.num_frames} frames, got {f}")
            gates = self.frame_attention(low.reshape(b, f * low.shape[1], *low.shape[2:]))  # [B, F]
        if self.fusion is not None:
            high = self.fuse(high.reshape(b, f, *high.shape[1:]), gates).flatten(0, 1)
        z = self.frame_logits(low, high)
        if gates is not None:
            z = z * gates.reshape(b * f, 1, 1, 1)
        z = F.interpolate(z, size=x.shape[-2:], mode="bilinear", align_corners=False)
        z = z.reshape(b, f, 1, *x.shape[-2:])
        return (z, gates) if return_gates else z


@register_model
class PerFrameUNet(nn.Module):
    """Baselines on every frame of the clip independently (same clip interface as FUnet).

    ``kind=unet``: ``smp.Unet`` (full-resolution output). ``kind=unet_s8``: the same U-Net with its decoder stopped at
    stride 8 (the last ``depth - 3`` up blocks are not built), a 3x3 head and a bilinear upsample: FUnet's output
    resolution, like for like.
    """

    config_class = FUnetConfig

    def __init__(self, config: FUnetConfig | None = None, **overrides):
        super().__init__()
        import segmentation_models_pytorch as smp
        from segmentation_models_pytorch.base import SegmentationHead

        cfg = config or FUnetConfig(kind="unet")
        if overrides:
            from dataclasses import asdict

            cfg = FUnetConfig(**{**asdict(cfg), **overrides})
        if cfg.kind not in ("unet", "unet_s8"):
            raise ConfigError(f"model.kind={cfg.kind!r}: PerFrameUNet needs kind=unet or unet_s8")
        self.config = cfg
        depth = cfg.baseline_encoder_depth
        dec = list(cfg.baseline_decoder_channels)[:depth]
        self.unet = smp.Unet(
            cfg.encoder_name, encoder_depth=depth, encoder_weights=None, decoder_channels=dec,
            in_channels=cfg.in_channels, classes=1,
        )  # fmt: skip
        self.out_stride = 1
        if cfg.kind == "unet_s8":
            keep = depth - 3
            self.unet.decoder.blocks = self.unet.decoder.blocks[:keep]
            self.unet.segmentation_head = SegmentationHead(dec[keep - 1], 1, kernel_size=3)
            self.out_stride = 8
        _drop_unused(self.unet.encoder, cfg.in_channels)  # smp keeps ResNet's layer4 at depth 4
        w = cfg.encoder_weights
        if w is not None:
            if _is_local_weights(w):
                load_encoder_weights(self.unet.encoder, w)
            else:
                src = build_encoder(cfg.encoder_name, depth, w, cfg.in_channels)
                self.unet.encoder.load_state_dict(src.state_dict())
        self.multiple = 2**depth

    def frame_logits(self, frames: torch.Tensor) -> torch.Tensor:
        z = self.unet.segmentation_head(self.unet.decoder(self.unet.encoder(frames)))
        if self.out_stride != 1:
            z = F.interpolate(z, size=frames.shape[-2:], mode="bilinear", align_corners=False)
        return z

    def forward(self, x: torch.Tensor, return_gates: bool = False, use_gate: bool = True):
        _check_clip(x, self.multiple)
        b, f = x.shape[:2]
        z = self.frame_logits(x.flatten(0, 1)).reshape(b, f, 1, *x.shape[-2:])
        return (z, None) if return_gates else z


def build_model(config: FUnetConfig | None = None, **overrides) -> nn.Module:
    """The model a :class:`FUnetConfig` describes: ``FUnet`` (kind=funet) or ``PerFrameUNet`` (kind=unet / unet_s8)."""
    cfg = config or FUnetConfig()
    if overrides:
        from dataclasses import asdict

        cfg = FUnetConfig(**{**asdict(cfg), **overrides})
    return FUnet(cfg) if cfg.kind == "funet" else PerFrameUNet(cfg)


# ------------------------------------------------------------------------------------------------ streaming
class StreamStep(nn.Module):
    """One causal streaming step of a trained FUnet, a pure function of tensors (scriptable / exportable).

    ``forward(frame [1, 3, H, W], low_hist [1, F-1, C_low, H/8, W/8], high_hist [1, F-1, C_high, H/16, W/16])``
    -> ``(logits [1, 1, H, W], gate [1], low_hist', high_hist')``. Only the new frame goes through the encoder; the
    gate sees the cached low-level features of the last ``F - 1`` frames and the new one, with the new frame last
    (causal: no look-ahead). In a clip forward the last frame's gate sees exactly the same window, so the streaming
    output of frame t equals the clip output of the last frame of clip ``[t-F+1 .. t]``.
    """

    def __init__(self, model: FUnet):
        super().__init__()
        self.model = model
        self.gated = model.frame_attention is not None
        self.fused = model.fusion is not None

    def forward(self, frame: torch.Tensor, low_hist: torch.Tensor, high_hist: torch.Tensor):
        m = self.model
        low, high = m.features(frame)
        lows = torch.cat([low_hist, low[:, None]], 1)
        highs = torch.cat([high_hist, high[:, None]], 1)
        gate = torch.ones(1, dtype=frame.dtype, device=frame.device)
        gates = None
        if self.gated:
            assert m.frame_attention is not None
            gates = m.frame_attention(lows.flatten(1, 2))  # [1, F]
            gate = gates[:, -1]
        if self.fused:
            high = m.fuse(highs, gates)[:, -1]
        z = m.frame_logits(low, high) * gate.reshape(1, 1, 1, 1)
        z = F.interpolate(z, size=frame.shape[-2:], mode="bilinear", align_corners=False)
        return z, gate, lows[:, 1:], highs[:, 1:]


class StreamingPredictor:
    """Frames in one at a time -> probability maps, with a ring buffer of per-frame encoder features.

    ``push(frame [3, H, W] normalised)`` -> ``(prob [H, W], gate)``. Memory is the buffer (F - 1 frames of features),
    independent of the video length. Until F - 1 frames have been seen the buffer holds copies of the first frame
    (as a clip at the start of a video repeats a frame). Per-frame baselines have no buffer.
    """

    def __init__(
        self, model: nn.Module, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ):
        self.model = model.eval().to(device=device, dtype=dtype)
        self.device, self.dtype = torch.device(device), dtype
        self.step = StreamStep(model) if isinstance(model, FUnet) else None
        self.low: torch.Tensor | None = None
        self.high: torch.Tensor | None = None

    def reset(self) -> None:
        self.low = self.high = None

    @torch.inference_mode()  # no autograd bookkeeping at all: the cheapest per-call path on CPU
    def push(self, frame: torch.Tensor) -> tuple[torch.Tensor, float]:
        x = frame.to(self.device, self.dtype)[None]
        if self.step is None:
            return torch.sigmoid(self.model.frame_logits(x).float())[0, 0], float("nan")
        if self.low is None:
            low, high = self.model.features(x)
            n = self.model.config.num_frames - 1
            self.low = low[:, None].expand(1, n, *low.shape[1:]).contiguous()
            self.high = high[:, None].expand(1, n, *high.shape[1:]).contiguous()
        z, gate, self.low, self.high = self.step(x, self.low, self.high)
        return torch.sigmoid(z.float())[0, 0], float(gate[0])
