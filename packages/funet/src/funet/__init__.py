"""Frame-UNet (FUnet): real-time video segmentation for endoscopic surgery (arXiv 2307.10955), trainable end to end.

from funet import FUnet, FUnetConfig
model = FUnet(FUnetConfig(encoder_name="resnet18"))  # clip [B, 5, 3, H, W] -> logits [B, 5, 1, H, W]
logits, gates = model(clip, return_gates=True)       # gates [B, 5] in (0, 1)

``import funet`` is cheap: the configs load eagerly, everything that needs torch on first use.
"""

__version__ = "0.2.0"

from funet.config import (
    BenchmarkCommand,
    DataConfig,
    DemoCommand,
    EvaluateCommand,
    ExportCommand,
    FUnetConfig,
    PredictCommand,
    TrainCommand,
)

_LAZY = {
    "funet.model": ["FUnet", "PerFrameUNet", "LightRFB", "ChannelSelfAttention", "FrameAttention", "CSAUNet",
                    "build_encoder", "build_model", "load_encoder_weights", "StreamStep", "StreamingPredictor"],
    "funet.data": ["ClipDataset", "EpochClipSampler", "SyntheticConfig", "Video", "clip_starts", "frame_sort_key",
                   "iter_video_frames", "make_synthetic_video", "make_synthetic_videos", "scan_videos", "write_videos"],
    "funet.losses": ["SegLoss", "soft_dice_loss"],
    "funet.train": ["SegModule", "run_training", "load_funet_run", "make_datasets", "clip_loader"],
    "funet.evaluate": ["evaluate_model", "evaluate_frames", "predict_video", "Calibration", "measure_speed",
                       "compare_speed"],
    "funet.predict": ["run_evaluate", "run_predict", "run_benchmark", "run_export", "export_stream_step"],
}  # fmt: skip
_WHERE = {name: mod for mod, names in _LAZY.items() for name in names}


def __getattr__(name):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'funet' has no attribute {name!r}")


__all__ = [
    "BenchmarkCommand", "DataConfig", "DemoCommand", "EvaluateCommand", "ExportCommand", "FUnetConfig",
    "PredictCommand", "TrainCommand", "__version__", *_WHERE,
]  # fmt: skip
