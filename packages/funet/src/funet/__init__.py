"""Frame-UNet (FUnet): real-time video segmentation for endoscopic surgery (arXiv 2307.10955), trainable end to end.

from funet import FUnet, PerFrameUNet
model = FUnet(encoder_name="resnet18")          # clip [B, 5, 3, H, W] -> logits [B, 5, 1, H, W]
logits, gates = model(clip, return_gates=True)  # gates [B, 5] in (0, 1)
"""

__version__ = "0.1.0"

from funet.data import (
    ClipDataset,
    SyntheticConfig,
    Video,
    clip_starts,
    make_synthetic_video,
    make_synthetic_videos,
    scan_videos,
    write_videos,
)
from funet.evaluate import (
    collect_predictions,
    compare_speed,
    evaluate_model,
    measure_speed,
    segmentation_metrics,
)
from funet.losses import SegLoss, soft_dice_loss
from funet.model import (
    ChannelSelfAttention,
    CSAUNet,
    FrameAttention,
    FUnet,
    FUnetConfig,
    LightRFB,
    PerFrameUNet,
    build_encoder,
    build_model,
)
from funet.train import SegModule, load_trained, train_steps

__all__ = [
    "CSAUNet",
    "ChannelSelfAttention",
    "ClipDataset",
    "FUnet",
    "FUnetConfig",
    "FrameAttention",
    "LightRFB",
    "PerFrameUNet",
    "SegLoss",
    "SegModule",
    "SyntheticConfig",
    "Video",
    "__version__",
    "build_encoder",
    "build_model",
    "clip_starts",
    "collect_predictions",
    "compare_speed",
    "evaluate_model",
    "load_trained",
    "make_synthetic_video",
    "make_synthetic_videos",
    "measure_speed",
    "scan_videos",
    "segmentation_metrics",
    "soft_dice_loss",
    "train_steps",
    "write_videos",
]
