"""Training through ``tenfold_core.train.fit`` (the ``funet train`` verb; the demo calls the same function).

Recipe (PNS-Net / FUnet): BCE on the mask logits (``dice_weight`` adds soft Dice), Adam lr 1e-4, weight decay 1e-4,
every gradient element clamped to +-0.5 (PNS-Net's ``clip_gradient``; ``train.grad_clip`` is a norm clip on top);
optional image pre-training (a FUnet built without the frame gate, every frame on its own) before clip fine-tuning.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from funet.config import DataConfig, OptimConfig, TrainCommand
from funet.data import (
    ClipDataset,
    EpochClipSampler,
    SyntheticConfig,
    Video,
    make_synthetic_videos,
    scan_videos,
)
from funet.losses import SegLoss
from funet.model import FUnet, build_model
from tenfold_core.errors import DataError, ModelLoadError
from tenfold_core.metrics.segmentation import dice_iou_per_image
from tenfold_core.train import TenfoldModule, fit

__all__ = ["SegModule", "run_training", "load_funet_run", "split_videos", "make_datasets", "clip_loader"]


class SegModule(TenfoldModule):
    """Trains ``self.model`` (FUnet or a per-frame baseline) on clip batches from :class:`~funet.data.ClipDataset`.

    Logs ``train_loss`` and, synced across processes, ``val_loss`` and ``val_dice`` (Dice@0.5 per frame).
    ``grad_clamp`` clamps each gradient element to +-grad_clamp before the optimizer step (PNS-Net).
    """

    def __init__(
        self,
        model: nn.Module,
        optim: OptimConfig | Mapping[str, Any] | None = None,
        bce_weight: float = 1.0,
        dice_weight: float = 0.0,
        grad_clamp: float | None = 0.5,
    ):
        super().__init__(optim if optim is not None else OptimConfig(name="adam", lr=1e-4, weight_decay=1e-4))
        self.model = model
        self.loss_fn = SegLoss(bce_weight, dice_weight)
        self.grad_clamp = grad_clamp

    def forward(self, frames):
        return self.model(frames)

    def training_step(self, batch, batch_idx):
        loss = self.loss_fn(self(batch["frames"]), batch["masks"])
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["frames"]))
        return loss

    def on_before_optimizer_step(self, optimizer):
        if self.grad_clamp:
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad.clamp_(-self.grad_clamp, self.grad_clamp)

    def validation_step(self, batch, batch_idx):
        logits = self(batch["frames"])
        n = len(batch["frames"])
        self.log(
            "val_loss", self.loss_fn(logits, batch["masks"]), prog_bar=True, batch_size=n, sync_dist=True
        )
        d, _ = dice_iou_per_image(torch.sigmoid(logits.float()).flatten(0, 2), batch["masks"].flatten(0, 2))
        self.log("val_dice", d.mean(), prog_bar=True, batch_size=n, sync_dist=True)


# ------------------------------------------------------------------------------------------------ data
def split_videos(videos: list[Video], val_fraction: float, seed: int) -> tuple[list[Video], list[Video]]:
    if len(videos) < 2:
        raise DataError("need at least 2 videos to hold some out for validation (or pass data.val_root)")
    order = np.random.default_rng(seed).permutation(len(videos))
    n_val = max(1, int(round(val_fraction * len(videos))))
    return [videos[i] for i in order[n_val:]], [videos[i] for i in order[:n_val]]


def load_videos(d: DataConfig) -> tuple[list[Video], list[Video]]:
    """(train, validation) videos of a data config."""
    if d.root == "synthetic":
        h, w = d.size
        syn = SyntheticConfig(
            h, w, d.synthetic_frames, d.synthetic_corrupt_prob, tuple(d.synthetic_nerve_width),
            corrupt_strength=d.synthetic_corrupt_strength,
        )  # fmt: skip
        vids = make_synthetic_videos(d.synthetic_videos, syn, d.synthetic_seed)
        return split_videos(vids, d.val_fraction, d.synthetic_seed)
    vids = scan_videos(d.root)
    if d.val_root:
        return vids, scan_videos(d.val_root)
    return split_videos(vids, d.val_fraction, 0)


def make_datasets(
    d: DataConfig, num_frames: int, seed: int, videos: tuple[list[Video], list[Video]] | None = None
) -> tuple[ClipDataset, ClipDataset]:
    """A fresh (train, val) pair of data set objects; augmentation drawn from (seed, epoch, clip index)."""
    train_v, val_v = videos or load_videos(d)
    aug = dict(
        hflip=d.hflip, vflip=d.vflip, color_jitter=d.color_jitter, multiscale=d.multiscale,
        random_crop=d.random_crop, rotation=d.rotation,
    )  # fmt: skip
    augment = bool(d.hflip or d.vflip or d.color_jitter or d.multiscale or d.random_crop or d.rotation)
    step = d.clip_step if num_frames > 1 else 1  # single frames: every frame, as the clips cover them
    train_ds = ClipDataset(train_v, num_frames, d.stride, step, d.size, augment, seed, **aug)
    val_ds = ClipDataset(val_v, num_frames, d.stride, None, d.size)
    return train_ds, val_ds


def clip_loader(
    ds: ClipDataset, batch_size: int, shuffle: bool, seed: int, num_workers: int = 0
) -> DataLoader:
    """Training loaders (``shuffle``) drop a last batch smaller than ``batch_size`` (BatchNorm on one 1x1 map)."""
    drop = shuffle and len(ds) > batch_size
    return DataLoader(
        ds, batch_size=batch_size, sampler=EpochClipSampler(len(ds), seed, shuffle), num_workers=num_workers,
        drop_last=drop,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------ fit
def _fit(module, train_cfg, train_dl, val_dl, run_config: dict):
    return fit(module, train_cfg, train_dl, val_dl, run_config=run_config)


def run_training(cfg: TrainCommand, videos: tuple[list[Video], list[Video]] | None = None):
    """Fit ``cfg.model`` on ``cfg.data``; with ``pretrain_epochs`` first an image stage (no frame gate is built,
    single frames), whose weights start the clip stage. Returns the core's ``FitResult`` of the last stage."""
    d, mcfg = cfg.data, cfg.model
    videos = videos or load_videos(d)
    seed = cfg.train.seed
    nf = mcfg.clip_frames
    run_config = {
        "model": dataclasses.replace(mcfg, encoder_weights=None),  # the trained weights include the encoder
        "encoder_init": mcfg.encoder_weights,
        "data": d,
        "loss": {"bce_weight": cfg.bce_weight, "dice_weight": cfg.dice_weight, "grad_clamp": cfg.grad_clamp},
        "optim": cfg.optim,
    }
    start_state = None
    if cfg.pretrain_epochs > 0:
        pre_cfg = dataclasses.replace(mcfg, frame_gate=False)
        pre_model = build_model(pre_cfg)
        pre = SegModule(pre_model, cfg.optim, cfg.bce_weight, cfg.dice_weight, cfg.grad_clamp)
        pre_train = dataclasses.replace(
            cfg.train, out_dir=str(Path(cfg.train.out_dir) / "pretrain"), max_epochs=cfg.pretrain_epochs
        )
        tr, va = make_datasets(d, 1, seed, videos)
        _fit(
            pre,
            pre_train,
            clip_loader(tr, d.batch_size * mcfg.num_frames, True, seed, d.num_workers),
            clip_loader(va, d.batch_size * mcfg.num_frames, False, seed),
            {**run_config, "model": dataclasses.replace(pre_cfg, encoder_weights=None), "stage": "pretrain"},
        )
        start_state = pre_model.state_dict()
    model = build_model(mcfg)
    if start_state is not None:
        missing, unexpected = model.load_state_dict(start_state, strict=False)
        if unexpected or any(not k.startswith("frame_attention.") for k in missing):
            raise ModelLoadError(f"pre-training weights do not fit the clip model (missing {missing[:3]})")
    module = SegModule(model, cfg.optim, cfg.bce_weight, cfg.dice_weight, cfg.grad_clamp)
    tr, va = make_datasets(d, nf, seed, videos)
    bs = (
        d.batch_size if nf > 1 else d.batch_size * mcfg.num_frames
    )  # per-frame models: as many frames per step
    return _fit(
        module,
        cfg.train,
        clip_loader(tr, bs, True, seed, d.num_workers),
        clip_loader(va, bs, False, seed),
        run_config,
    )


# ------------------------------------------------------------------------------------------------ runs
def load_funet_run(path: str | Path, map_location: str = "cpu"):
    """``tenfold_core.models.load_run`` of a ``funet train`` folder -> (model in eval mode, all of config.json)."""
    from tenfold_core.models import load_run

    run = load_run(Path(path), map_location=map_location)
    return run.model.eval(), run.config


def stream_capable(model: nn.Module) -> bool:
    return isinstance(model, FUnet)
