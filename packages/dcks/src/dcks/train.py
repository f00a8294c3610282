"""``dcks train``: DCKS fine-tuning through :func:`tenfold_core.train.fit`, checkpoints selected on the dev split."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from dcks.config import DCKSConfig, LossConfig, TrainCommand
from dcks.data import DialogueData, DialogueDataset, build_tokenizer, load_dialogues
from dcks.losses import dcks_loss
from dcks.model import DCKS, build_bart_config
from tenfold_core.cli import config_to_dict
from tenfold_core.train import TenfoldModule, fit, make_dataloader, seed_everything

__all__ = ["DCKSModule", "build_model", "make_loaders", "prepare", "run_train"]

MODEL_KEYS = ("input_ids", "attention_mask", "knowledge_input_ids", "knowledge_attention_mask", "decoder_input_ids",
              "decoder_attention_mask")  # fmt: skip


class DCKSModule(TenfoldModule):
    """Joint generation + emotion training; logs train/val ``loss``, ``gen_loss``, ``emo_loss`` and ``val_emo_acc``."""

    def __init__(self, model: DCKS, loss: LossConfig, optim=None):
        super().__init__(optim)
        self.model = model
        self.loss_cfg = loss
        vocab = model.bart.config.vocab_size
        self.register_buffer("token_freq", torch.zeros(vocab), persistent=False)

    def _step(self, batch):
        inputs = {k: batch[k] for k in MODEL_KEYS}
        emo = batch["emotion_labels"]
        logits, enc = self.model(**inputs, emotion_labels=emo)
        parts = dcks_loss(logits, batch["labels"], enc, emo, self.loss_cfg, self.token_freq)
        return logits, enc, parts

    def training_step(self, batch, batch_idx):
        logits, enc, parts = self._step(batch)
        if self.loss_cfg.diversity_weight > 0:
            with torch.no_grad():
                pred = logits.argmax(-1)[batch["target_mask"]]
                self.token_freq += torch.bincount(pred, minlength=self.token_freq.numel()).float()
        for k, v in parts.items():
            self.log_train(f"train_{k}", v, prog_bar=k == "loss")
        return parts["loss"]

    def validation_step(self, batch, batch_idx):
        logits, enc, parts = self._step(batch)
        n = batch["input_ids"].shape[0]
        for k, v in parts.items():
            self.log(f"val_{k}", v, prog_bar=k == "loss", sync_dist=True, batch_size=n)
        acc = (enc.emotion_logits.argmax(-1) == batch["emotion_labels"]).float().mean()
        self.log("val_emo_acc", acc, prog_bar=True, sync_dist=True, batch_size=n)


def build_model(cfg: DCKSConfig) -> DCKS:
    """A new DCKS: a tiny random backbone, or pretrained BART weights loaded for ``cfg.backbone``."""
    if cfg.backbone == "tiny":
        return DCKS(cfg)
    return DCKS.from_pretrained_backbone(cfg)


def prepare(cmd: TrainCommand) -> tuple[DialogueData, Any, DCKSConfig]:
    """Data, tokenizer and the model config completed with the tokenizer's sizes and the backbone's BartConfig."""
    data = load_dialogues(cmd.data)
    tok = build_tokenizer(cmd.data.tokenizer, cmd.model.backbone, data)
    mcfg = cmd.model
    if mcfg.backbone == "tiny":
        mcfg = dataclasses.replace(
            mcfg, vocab_size=len(tok), pad_token_id=tok.pad_token_id,
            bos_token_id=tok.cls_token_id if tok.bos_token_id is None else tok.bos_token_id,
            eos_token_id=tok.sep_token_id if tok.eos_token_id is None else tok.eos_token_id,
        )  # fmt: skip
    if mcfg.num_emotions != len(data.emotions):
        mcfg = dataclasses.replace(mcfg, num_emotions=len(data.emotions))
    if mcfg.bart_config is None:
        mcfg = dataclasses.replace(mcfg, bart_config=build_bart_config(mcfg).to_dict())
    return data, tok, mcfg


def make_loaders(data: DialogueData, tok, cmd: TrainCommand, mcfg: DCKSConfig, splits=("train", "dev")):
    dec_start = mcfg.bart_config.get("decoder_start_token_id", mcfg.eos_token_id)
    out = []
    for s in splits:
        ds = DialogueDataset(data.split(s), tok, cmd.data, data.emotions, mcfg.relations)

        def collate(b, ds=ds):
            return ds.collate(b, ignore_padding=cmd.loss.ignore_padding, decoder_start=dec_start)

        bs = cmd.data.batch_size if s == "train" else cmd.data.eval_batch_size
        out.append(make_dataloader(ds, bs, shuffle=s == "train", seed=cmd.train.seed, collate_fn=collate))
    return out


def run_train(cmd: TrainCommand) -> dict[str, Any]:
    """Train; the checkpoint is selected on the dev split (``train.monitor``), never on test."""
    data, tok, mcfg = prepare(cmd)
    train_dl, dev_dl = make_loaders(data, tok, cmd, mcfg)  # selection data: dev only
    seed_everything(cmd.train.seed)  # the initialisation depends on the seed only
    model = build_model(mcfg)
    module = DCKSModule(model, cmd.loss, cmd.optim)
    run_config = {
        "model": mcfg, "data": cmd.data, "loss": cmd.loss, "optim": cmd.optim,
        "emotions": list(data.emotions), "selection_split": "dev",
    }  # fmt: skip
    result = fit(module, cmd.train, train_dl, dev_dl, run_config=run_config)
    out = Path(cmd.train.out_dir)
    if result.trainer is None or result.trainer.is_global_zero:
        tok.save_pretrained(str(out / "tokenizer"))
    metrics = {}
    if result.trainer is not None:
        metrics = {k: float(v) for k, v in result.trainer.callback_metrics.items() if v.numel() == 1}
    return {
        "out_dir": str(out), "best_score": result.best_score, "monitor": cmd.train.monitor,
        "selection_split": "dev", **{k: v for k, v in metrics.items() if k.startswith("val_")},
        "model": config_to_dict(mcfg)["backbone"],
    }  # fmt: skip
