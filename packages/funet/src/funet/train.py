"""Training: a Lightning module for ``tenfold_core.train.fit`` (the ``funet train`` verb) and a plain loop for demos.

Recipe (PNS-Net / FUnet): BCE on the mask (``--dice_weight`` adds soft Dice), Adam lr 1e-4, weight decay 1e-4,
gradient clipping 0.5; optional image pre-training (frame gate off, every frame on its own) before clip fine-tuning.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from funet.losses import SegLoss
from funet.model import build_model
from tenfold_core.errors import ModelLoadError
from tenfold_core.metrics.segmentation import dice_iou_per_image
from tenfold_core.train import OptimConfig, TenfoldModule

__all__ = ["SegModule", "train_steps", "load_trained", "PAPER_OPTIM"]

PAPER_OPTIM = {"name": "adam", "lr": 1e-4, "weight_decay": 1e-4}


class SegModule(TenfoldModule):
    """Wraps FUnet or the per-frame U-Net. Batches are dicts from :class:`~funet.data.ClipDataset`.

    ``use_gate=False`` trains without the frame gate (image pre-training stage). Logs ``train_loss``, ``val_loss``,
    ``val_dice``.
    """

    def __init__(
        self,
        kind: str = "funet",
        model: Mapping[str, Any] | None = None,
        optim: OptimConfig | Mapping[str, Any] | None = None,
        bce_weight: float = 1.0,
        dice_weight: float = 0.0,
        use_gate: bool = True,
    ):
        super().__init__(optim if optim is not None else OptimConfig(**PAPER_OPTIM))
        model = dict(model or {})
        self.save_hyperparameters(
            {"kind": kind, "model": model, "bce_weight": bce_weight, "dice_weight": dice_weight}
        )
        self.model = build_model(kind, **model)
        self.loss_fn = SegLoss(bce_weight, dice_weight)
        self.use_gate = use_gate

    def forward(self, frames):
        return self.model(frames, use_gate=self.use_gate)

    def training_step(self, batch, batch_idx):
        loss = self.loss_fn(self(batch["frames"]), batch["masks"])
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["frames"]))
        return loss

    def validation_step(self, batch, batch_idx):
        logits = self(batch["frames"])
        n = len(batch["frames"])
        self.log("val_loss", self.loss_fn(logits, batch["masks"]), prog_bar=True, batch_size=n)
        d, _ = dice_iou_per_image(torch.sigmoid(logits.float()).flatten(0, 2), batch["masks"].flatten(0, 2))
        self.log("val_dice", d.mean(), prog_bar=True, batch_size=n)


def train_steps(
    model: nn.Module,
    loader,
    steps: int,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    grad_clip: float = 0.5,
    loss_fn: nn.Module | None = None,
    use_gate: bool = True,
) -> list[float]:
    """A plain Adam loop over ``loader`` (cycled) for ``steps`` steps; returns the losses (for demos and tests)."""
    loss_fn = loss_fn or SegLoss()
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    losses: list[float] = []
    while len(losses) < steps:
        for batch in loader:
            logits = model(batch["frames"], use_gate=use_gate)
            loss = loss_fn(logits, batch["masks"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            losses.append(float(loss.detach()))
            if len(losses) >= steps:
                break
    model.eval()
    return losses


def load_trained(path: str | Path) -> tuple[nn.Module, dict]:
    """Rebuild a model from a ``funet train`` output folder (``config.json`` + ``model.safetensors``) or a
    ``.safetensors`` file next to its ``config.json``. Returns (model, hparams)."""
    from tenfold_core.models import load_state_dict_checked, load_weights

    p = Path(path)
    folder = p if p.is_dir() else p.parent
    weights = p if p.is_file() else folder / "model.safetensors"
    cfg_path = folder / "config.json"
    if not weights.is_file():
        raise ModelLoadError(f"{weights}: no such weights file (expected a `funet train` output folder)")
    if not cfg_path.is_file():
        raise ModelLoadError(f"{cfg_path}: missing; it records the architecture the weights belong to")
    try:
        hp = json.loads(cfg_path.read_text())["hparams"]
        kind, kwargs = hp["kind"], dict(hp["model"])
    except (KeyError, ValueError, TypeError) as e:
        raise ModelLoadError(f"{cfg_path}: not a funet config ({e})") from None
    kwargs["encoder_weights"] = None  # the trained weights include the encoder
    model = build_model(kind, **kwargs)
    load_state_dict_checked(model, load_weights(weights), strict=True, prefix="model.")
    return model.eval(), hp
