"""Config dataclasses shared by the CLI verbs (model and data options)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tenfold_core.cli import arg
from tenfold_core.errors import ConfigError
from tenfold_core.train import OptimConfig, TrainConfig

__all__ = ["ModelOptions", "DataOptions", "PaperOptim", "FunetTrainConfig"]


@dataclass
class ModelOptions:
    """Which model and its sizes. Defaults: the paper's FUnet (Res2Net50-v1b, widths of the official code)."""

    kind: Literal["funet", "unet"] = arg("funet", help="funet, or unet (per-frame smp.Unet baseline)")
    encoder_name: str = arg("tu-res2net50d", help="any segmentation-models-pytorch encoder (tu-* for timm)")
    encoder_weights: str | None = arg(
        None, help="None (random), an smp weight name such as imagenet (downloads), or a local weights file"
    )
    num_frames: int = arg(5, help="frames per clip (FUnet's frame gate is built for this many)")
    unet_base: int = arg(64, help="FUnet U-Net branch base width (widths base*1..16)")
    rfb_mid_channels: int = arg(128, help="LightRFB middle width")
    low_channels: int = arg(24, help="Low_RFB output channels (stride 8)")
    high_channels: int = arg(32, help="High_RFB output channels (stride 16)")
    unet_out_channels: int = arg(32, help="U-Net branch output channels")
    decoder_channels: int = arg(16, help="decoder width")
    pos_size: list[int] = arg([256, 448], help="input size the CSA positional embeddings are stored at")
    pos_mode: Literal["interpolate", "fixed"] = arg(
        "interpolate", help="fixed: official behaviour, one input size"
    )
    frame_gate: bool = arg(True, help="FUnet's frame-attention gate on the logits")
    temporal_fusion: Literal["none", "gated_mean"] = arg(
        "none", help="ours: cross-frame feature fusion variant"
    )
    rfb_bn_momentum: float = arg(0.01, help="LightRFB BatchNorm momentum (official 0.01)")
    baseline_decoder_channels: list[int] = arg([256, 128, 64, 32, 16], help="smp.Unet decoder widths (unet)")
    baseline_encoder_depth: int = arg(5, help="smp.Unet encoder depth (unet)")

    def build_kwargs(self) -> tuple[str, dict]:
        if self.kind == "unet":
            return "unet", {
                "encoder_name": self.encoder_name,
                "encoder_weights": self.encoder_weights,
                "encoder_depth": self.baseline_encoder_depth,
                "decoder_channels": list(self.baseline_decoder_channels),
            }
        return "funet", {
            "encoder_name": self.encoder_name,
            "encoder_weights": self.encoder_weights,
            "num_frames": self.num_frames,
            "unet_base": self.unet_base,
            "rfb_mid_channels": self.rfb_mid_channels,
            "low_channels": self.low_channels,
            "high_channels": self.high_channels,
            "unet_out_channels": self.unet_out_channels,
            "decoder_channels": self.decoder_channels,
            "pos_size": list(self.pos_size),
            "pos_mode": self.pos_mode,
            "frame_gate": self.frame_gate,
            "temporal_fusion": self.temporal_fusion,
            "rfb_bn_momentum": self.rfb_bn_momentum,
        }


@dataclass
class DataOptions:
    """Where the clips come from and how they are shaped."""

    root: str = arg(
        "synthetic", help="data folder (SUN-SEG or <video>/frames + <video>/masks), or 'synthetic'"
    )
    val_root: str | None = arg(None, help="validation folder (else a val_fraction of the videos)")
    val_fraction: float = arg(0.2, help="fraction of videos held out for validation when val_root is unset")
    size: list[int] = arg([256, 448], help="frame size H W (multiples of 32)")
    stride: int = arg(1, help="take every stride-th frame inside a clip")
    clip_step: int = arg(1, help="training clips start every clip_step frames")
    batch_size: int = arg(4, help="clips per batch")
    num_workers: int = arg(0, help="data-loader workers")
    augment: bool = arg(True, help="flips and brightness, the same for every frame of a clip")
    synthetic_videos: int = arg(40, help="synthetic videos (root=synthetic)")
    synthetic_frames: int = arg(20, help="frames per synthetic video")

    def __post_init__(self):
        if len(self.size) != 2 or self.size[0] % 32 or self.size[1] % 32:
            raise ValueError(f"data.size must be [H, W], multiples of 32, got {self.size}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")


@dataclass
class PaperOptim(OptimConfig):
    """Adam, lr 1e-4, weight decay 1e-4 (PNS-Net / FUnet)."""

    name: Literal["adamw", "adam", "sgd"] = arg("adam", help="optimizer")
    lr: float = arg(1e-4, help="peak learning rate")
    weight_decay: float = arg(1e-4, help="weight decay (L2 for Adam); never on biases and norms")


@dataclass
class FunetTrainConfig(TrainConfig):
    out_dir: str = arg("runs/funet", help="checkpoints, logs and exported weights go here")
    max_epochs: int = arg(20, help="epochs")
    grad_clip: float | None = arg(0.5, help="clip gradient norm to this value (paper: 0.5)")
    monitor: str | None = arg("val_dice", help="validation metric that selects the best checkpoint")
    mode: Literal["min", "max"] = arg("max", help="maximise val_dice")


def check_kind(kind: str) -> None:
    if kind not in ("funet", "unet"):
        raise ConfigError(f"model.kind: expected funet or unet, got {kind!r}")
