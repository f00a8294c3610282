"""Torch-free configs: the model config (used directly as ``--model``), the data config and one config per verb.

Presets live in ``configs/{tiny,demo,paper}.yaml`` (``funet <verb> --preset NAME``), not in subclasses.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Literal

from tenfold_core.cli import arg
from tenfold_core.config import OptimConfig, TrainConfig

__all__ = [
    "FUnetConfig",
    "DataConfig",
    "TrainCommand",
    "EvaluateCommand",
    "PredictCommand",
    "BenchmarkCommand",
    "ExportCommand",
    "DemoCommand",
    "FUNET_ONLY_FIELDS",
    "BASELINE_ONLY_FIELDS",
    "OptimConfig",
    "TrainConfig",
]


@dataclass
class FUnetConfig:
    """FUnet (``kind=funet``) or a per-frame baseline (``kind=unet``: smp.Unet; ``kind=unet_s8``: the same U-Net
    decoder stopped at stride 8 and upsampled, like FUnet's output). Defaults: the paper's model."""

    kind: Literal["funet", "unet", "unet_s8"] = arg(
        "funet", help="funet, unet (per-frame smp.Unet) or unet_s8 (per-frame U-Net with a stride-8 output)"
    )
    encoder_name: str = arg(
        "tu-res2net50d",
        help="smp encoder (tu-* for timm); tu-res2net50d is Res2Net50-v1b (deep stem, avg-down)",
    )
    encoder_weights: str | None = arg(
        None, help="None (random), an smp weight name such as imagenet (downloads), or a local weights file"
    )
    in_channels: int = arg(3, help="input channels")
    num_frames: int = arg(5, help="frames per clip (the frame gate is built for this many)")
    low_channels: int = arg(24, help="Low_RFB output channels (stride 8)")
    high_channels: int = arg(32, help="High_RFB output channels (stride 16)")
    rfb_mid_channels: int = arg(128, help="LightRFB middle width")
    unet_base: int = arg(64, help="U-Net branch base width (widths base*1..16; 64 in the paper)")
    unet_out_channels: int = arg(32, help="U-Net branch output channels")
    unet_bilinear: bool = arg(False, help="bilinear upsampling in the U-Net branch (official: ConvTranspose)")
    decoder_channels: int = arg(16, help="decoder width")
    csa: bool = arg(True, help="CSA gates after every U-Net up block")
    csa_heads: int = arg(8, help="CSA attention heads")
    pos_size: list[int] = arg([256, 448], help="input size H W the CSA positional embeddings are stored at")
    pos_mode: Literal["interpolate", "fixed"] = arg(
        "interpolate", help="fixed: official behaviour, positional embeddings for pos_size only"
    )
    frame_gate: bool = arg(True, help="FUnet's frame-attention gate on the logits")
    frame_ratio: int = arg(2, help="frame-attention channel reduction ratio")
    temporal_fusion: Literal["none", "gated_mean"] = arg(
        "none", help="ours: gate-weighted cross-frame feature fusion before the U-Net branch"
    )
    dropout: float = arg(0.1, help="Dropout2d before the 1x1 head")
    rfb_bn_momentum: float = arg(
        0.01, help="LightRFB BatchNorm momentum (official 0.01; 0.1 suits short runs)"
    )
    baseline_decoder_channels: list[int] = arg(
        [256, 128, 64, 32, 16], help="smp.Unet decoder widths (kind=unet / unet_s8)"
    )
    baseline_encoder_depth: int = arg(5, help="smp.Unet encoder depth (kind=unet / unet_s8)")

    def __post_init__(self):
        if self.kind not in ("funet", "unet", "unet_s8"):
            raise ValueError(f"model.kind: expected funet, unet or unet_s8, got {self.kind!r}")
        if self.num_frames < 1:
            raise ValueError(f"model.num_frames must be >= 1, got {self.num_frames}")
        if self.in_channels < 1:
            raise ValueError(f"model.in_channels must be >= 1, got {self.in_channels}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if not 0 < self.rfb_bn_momentum <= 1:
            raise ValueError(f"model.rfb_bn_momentum must be in (0, 1], got {self.rfb_bn_momentum}")
        if self.kind == "funet":
            if self.frame_gate and self.num_frames < 2:
                raise ValueError(
                    "model.frame_gate needs model.num_frames >= 2 (set frame_gate false for images)"
                )
            if len(self.pos_size) != 2 or min(self.pos_size) < 16:
                raise ValueError(f"model.pos_size must be [H, W] with H, W >= 16, got {self.pos_size}")
            for name in (
                "unet_base",
                "unet_out_channels",
                "high_channels",
                "low_channels",
                "decoder_channels",
                "rfb_mid_channels",
                "csa_heads",
                "frame_ratio",
            ):
                if getattr(self, name) < 1:
                    raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")
            if self.csa and self.unet_base % self.csa_heads:
                raise ValueError(
                    f"model.unet_base ({self.unet_base}) must be divisible by model.csa_heads ({self.csa_heads})"
                )
            if self.frame_gate and self.num_frames * self.low_channels // self.frame_ratio**2 < 1:
                raise ValueError("model.frame_ratio too large for num_frames * low_channels")
            self._reject_changed(BASELINE_ONLY_FIELDS, "unet or unet_s8")
        else:
            if not 1 <= self.baseline_encoder_depth <= 5:
                raise ValueError(
                    f"model.baseline_encoder_depth must be in 1..5, got {self.baseline_encoder_depth}"
                )
            if self.kind == "unet_s8" and self.baseline_encoder_depth < 3:
                raise ValueError("model.baseline_encoder_depth must be >= 3 for kind=unet_s8")
            if (
                len(self.baseline_decoder_channels) < self.baseline_encoder_depth
                or min(self.baseline_decoder_channels) < 1
            ):
                raise ValueError(
                    f"model.baseline_decoder_channels needs {self.baseline_encoder_depth} widths >= 1, "
                    f"got {self.baseline_decoder_channels}"
                )
            self._reject_changed(FUNET_ONLY_FIELDS, "funet")

    def _reject_changed(self, names: tuple[str, ...], kind: str) -> None:
        defaults = {f.name: f for f in fields(self)}
        for name in names:
            f = defaults[name]
            d = f.default_factory() if f.default_factory is not MISSING else f.default  # type: ignore[misc]
            if getattr(self, name) != d:
                raise ValueError(
                    f"model.{name} applies to model.kind={kind} only (model.kind is {self.kind})"
                )

    @property
    def multiple(self) -> int:
        """Input H and W must be multiples of this."""
        return 16 if self.kind == "funet" else 2**self.baseline_encoder_depth

    @property
    def clip_frames(self) -> int:
        """Frames per forward: the clip for FUnet, 1 for the per-frame baselines."""
        return self.num_frames if self.kind == "funet" else 1


FUNET_ONLY_FIELDS = (
    "low_channels",
    "high_channels",
    "rfb_mid_channels",
    "unet_base",
    "unet_out_channels",
    "unet_bilinear",
    "decoder_channels",
    "csa",
    "csa_heads",
    "pos_mode",
    "frame_gate",
    "frame_ratio",
    "temporal_fusion",
    "dropout",
    "rfb_bn_momentum",
)
BASELINE_ONLY_FIELDS = ("baseline_decoder_channels", "baseline_encoder_depth")


@dataclass
class DataConfig:
    """Where the clips come from, how they are shaped and augmented."""

    root: str = arg(
        "synthetic", help="data folder (SUN-SEG Frame/ + GT/, or <video>/frames + masks), or synthetic"
    )
    val_root: str | None = arg(None, help="validation folder (else a val_fraction of the videos)")
    val_fraction: float = arg(0.2, help="fraction of videos held out for validation when val_root is unset")
    size: list[int] = arg([256, 448], help="frame size H W (multiples of what the model needs: 16 for FUnet)")
    stride: int = arg(1, help="take every stride-th frame inside a clip")
    clip_step: int = arg(1, help="training clips start every clip_step frames")
    batch_size: int = arg(4, help="clips per batch")
    num_workers: int = arg(0, help="data-loader workers (each seeded differently)")
    hflip: bool = arg(True, help="random horizontal flip (the same for every frame of a clip)")
    vflip: bool = arg(True, help="random vertical flip")
    color_jitter: float = arg(0.15, help="random brightness gain +-this and offset +-this/3 (0: off)")
    multiscale: list[float] = arg([], help="random rescale factors, e.g. [0.75, 1, 1.25] (polyp tools; off)")
    random_crop: float = arg(0.0, help="random crop of this fraction of each side, resized back (0: off)")
    rotation: float = arg(0.0, help="random rotation up to +-this many degrees (0: off)")
    synthetic_videos: int = arg(40, help="synthetic videos (root=synthetic)")
    synthetic_frames: int = arg(20, help="frames per synthetic video")
    synthetic_seed: int = arg(0, help="seed of the synthetic videos")
    synthetic_nerve_width: list[float] = arg(
        [0.06, 0.1], help="nerve radius range, fraction of the shorter side"
    )
    synthetic_corrupt_prob: float = arg(0.25, help="probability that a synthetic frame is corrupted")
    synthetic_corrupt_strength: float = arg(
        1.0,
        help="corruption strength (> 1: denser smoke, longer blur, larger glare; the mask keeps the nerve)",
    )

    def __post_init__(self):
        if len(self.size) != 2 or min(self.size) < 16 or self.size[0] % 16 or self.size[1] % 16:
            raise ValueError(f"data.size must be [H, W], multiples of 16, got {self.size}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        for name in ("stride", "clip_step", "batch_size", "synthetic_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name} must be >= 1, got {getattr(self, name)}")
        if self.synthetic_videos < 2:
            raise ValueError(f"data.synthetic_videos must be >= 2, got {self.synthetic_videos}")
        if self.num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {self.num_workers}")
        if not 0 <= self.color_jitter < 1:
            raise ValueError(f"data.color_jitter must be in [0, 1), got {self.color_jitter}")
        if any(not 0.25 <= s <= 4 for s in self.multiscale):
            raise ValueError(f"data.multiscale factors must be in [0.25, 4], got {self.multiscale}")
        if not 0 <= self.random_crop < 0.5:
            raise ValueError(f"data.random_crop must be in [0, 0.5), got {self.random_crop}")
        w = self.synthetic_nerve_width
        if len(w) != 2 or not 0 < w[0] <= w[1] < 0.5:
            raise ValueError(f"data.synthetic_nerve_width must be [lo, hi] with 0 < lo <= hi < 0.5, got {w}")
        if not 0 <= self.synthetic_corrupt_prob <= 1:
            raise ValueError(
                f"data.synthetic_corrupt_prob must be in [0, 1], got {self.synthetic_corrupt_prob}"
            )
        if not 0.5 <= self.synthetic_corrupt_strength <= 4:
            raise ValueError(
                f"data.synthetic_corrupt_strength must be in [0.5, 4], got {self.synthetic_corrupt_strength}"
            )
        if not 0 <= self.rotation <= 180:
            raise ValueError(f"data.rotation must be in [0, 180], got {self.rotation}")


def _paper_optim() -> OptimConfig:
    return OptimConfig(name="adam", lr=1e-4, weight_decay=1e-4)


def _paper_train() -> TrainConfig:
    return TrainConfig(out_dir="runs/funet", max_epochs=20, monitor="val_dice", mode="max")


@dataclass
class TrainCommand:
    model: FUnetConfig = arg(factory=FUnetConfig)
    data: DataConfig = arg(factory=DataConfig)
    train: TrainConfig = arg(factory=_paper_train)
    optim: OptimConfig = arg(factory=_paper_optim)
    bce_weight: float = arg(1.0, help="weight of BCE on the masks (the paper's loss)")
    dice_weight: float = arg(0.0, help="weight of soft Dice (0: the paper's BCE only)")
    grad_clamp: float | None = arg(
        0.5,
        help="clamp every gradient element to +-this (PNS-Net's clip_gradient); train.grad_clip is the norm clip",
    )
    pretrain_epochs: int = arg(
        0, help="image pre-training epochs first (no frame gate built), then clip fine-tuning"
    )

    def __post_init__(self):
        if self.bce_weight < 0 or self.dice_weight < 0 or self.bce_weight + self.dice_weight == 0:
            raise ValueError("bce_weight and dice_weight must be >= 0 and not both 0")
        if self.grad_clamp is not None and not self.grad_clamp > 0:
            raise ValueError(f"grad_clamp must be > 0 (or null), got {self.grad_clamp}")
        if self.pretrain_epochs < 0:
            raise ValueError(f"pretrain_epochs must be >= 0, got {self.pretrain_epochs}")
        if self.pretrain_epochs and self.model.kind != "funet":
            raise ValueError("pretrain_epochs applies to model.kind=funet only")
        m = self.model.multiple
        if self.data.size[0] % m or self.data.size[1] % m:
            raise ValueError(
                f"data.size {self.data.size}: model.kind={self.model.kind} needs multiples of {m}"
            )


@dataclass
class EvaluateCommand:
    run: str = arg(help="a `funet train` output folder (model.safetensors + config.json)", positional=True)
    data: str = arg(help="data folder (SUN-SEG or simple layout)", positional=True)
    protocol: Literal["vps", "frames"] = arg(
        "vps", help="vps: the VPS/SUN-SEG toolbox (per video); frames: our per-clip, raw-probability metrics"
    )
    size: list[int] | None = arg(
        None, help="input size H W; default and only accepted value: the training size"
    )
    stride: int = arg(1, help="frame stride inside a clip")
    batch_size: int = arg(4, help="clips per batch")
    num_thresholds: int = arg(256, help="thresholds of the curve metrics")
    device: str = arg("cpu", help="cpu or cuda")
    out: str | None = arg(None, help="write the metrics (and per-case table) to this JSON file")

    def __post_init__(self):
        if self.batch_size < 1 or self.stride < 1:
            raise ValueError("batch_size and stride must be >= 1")
        if self.num_thresholds < 2:
            raise ValueError(f"num_thresholds must be >= 2, got {self.num_thresholds}")
        if self.size is not None and len(self.size) != 2:
            raise ValueError(f"size must be [H, W], got {self.size}")


@dataclass
class PredictCommand:
    run: str = arg(help="a `funet train` output folder", positional=True)
    video: str = arg(help="a video file, a folder of frames, or a data folder (every video)", positional=True)
    out: str = arg("runs/predict", help="Pred/<method>/<dataset>/<case>/*.png soft maps (and masks) go here")
    method: str = arg("FUnet", help="method name in the toolbox layout")
    dataset: str = arg("data", help="data set name in the toolbox layout")
    stream: bool = arg(False, help="causal streaming: one new frame at a time, gate over the last frames")
    size: list[int] | None = arg(
        None, help="input size H W; default and only accepted value: the training size"
    )
    threshold: float = arg(0.5, help="probability threshold of the binary masks and the overlay")
    masks: bool = arg(False, help="also write binary masks to <out>/Mask/<case>/*.png")
    overlay: bool = arg(
        False, help="also write overlay PNGs (frame, mask tint and outline) to <out>/Overlay/<case>/"
    )
    device: str = arg("cpu", help="cpu or cuda")

    def __post_init__(self):
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1) (a probability), got {self.threshold}")
        if self.size is not None and len(self.size) != 2:
            raise ValueError(f"size must be [H, W], got {self.size}")
        for name in ("method", "dataset"):
            v = getattr(self, name)
            if not v or "/" in v or "\\" in v or v in (".", ".."):
                raise ValueError(f"{name}: expected a plain folder name, got {v!r}")


@dataclass
class BenchmarkCommand:
    model: FUnetConfig = arg(factory=FUnetConfig)
    size: list[int] = arg([256, 448], help="frame size H W")
    repeats: int = arg(5, help="timed repeats (median)")
    device: str = arg("cpu", help="cpu or cuda")
    dtype: Literal["float32", "bfloat16", "float16"] = arg("float32", help="inference dtype")
    threads: int | None = arg(None, help="torch CPU threads (default: torch's)")
    baseline_decoder_channels: list[int] | None = arg(
        None, help="decoder widths of the per-frame U-Nets (default: smp's 256..16)"
    )
    clip: bool = arg(True, help="also time FUnet's clip forward (F frames per call)")
    profile: bool = arg(True, help="also time the stages of the streaming step and of the U-Net")
    out: str | None = arg(None, help="write the numbers to this JSON file")

    def __post_init__(self):
        if len(self.size) != 2 or self.size[0] % 32 or self.size[1] % 32 or min(self.size) < 32:
            raise ValueError(f"size must be [H, W], multiples of 32, got {self.size}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        dec = self.baseline_decoder_channels
        if dec is not None and (len(dec) < 5 or min(dec) < 1):
            raise ValueError(f"baseline_decoder_channels needs 5 widths >= 1, got {dec}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")


@dataclass
class ExportCommand:
    run: str = arg(help="a `funet train` output folder", positional=True)
    out: str = arg(help="output file (.pt for torchscript, .onnx for onnx)", positional=True)
    format: Literal["torchscript", "onnx"] = arg("torchscript", help="torchscript or onnx")

    def __post_init__(self):
        if self.format not in ("torchscript", "onnx"):
            raise ValueError(f"format: expected torchscript or onnx, got {self.format!r}")


@dataclass
class DemoCommand:
    out: str = arg("runs/funet-demo", help="metrics.json, report.md and PNGs go here")
    seeds: int = arg(1, help="training seeds per model (mean and spread reported when > 1)")
    train_preset: str = arg("demo", help="preset whose train section every model starts from")
    ablations: bool = arg(
        False, help="also train FUnet without the gate and with gated_mean fusion (two more runs per seed)"
    )
    threads: int | None = arg(None, help="torch CPU threads (default: torch's)")

    def __post_init__(self):
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
