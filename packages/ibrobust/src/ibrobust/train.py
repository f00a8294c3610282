"""Training through ``tenfold_core.train.fit``: IB, IB+FreeLB, the baselines (plain, FreeLB), optional alternating
model/prior schedule.

One LightningModule (:class:`IBModule`) covers every variant:

- the loss is CE + beta * KL (beta = 0 or ``bottleneck: false``: plain cross-entropy);
- with ``adv.method`` freelb / pgd the step is :class:`tenfold_core.adversarial.EmbeddingAdversary` on the word
  embeddings with that same loss (IB+FreeLB; the official code's default);
- with ``objective.alternating`` even epochs update encoder + IB layers and odd epochs only the prior (the official
  schedule), by dropping the frozen group's gradients before the optimizer step (DDP-safe: every parameter still
  takes part in every backward).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ibrobust.config import TrainCommand
from ibrobust.losses import ib_loss
from tenfold_core.io import is_rank_zero
from tenfold_core.train import TenfoldModule

__all__ = ["IBModule", "train", "build_model"]


class IBModule(TenfoldModule):
    def __init__(self, model, objective, adv, optim):
        super().__init__(optim)
        from tenfold_core.adversarial import EmbeddingAdversary

        self.model = model
        self.objective = objective
        self.adv = (
            EmbeddingAdversary(adv.method, adv.steps, adv.init_mag, adv.step_size, adv.max_norm, adv.norm)
            if adv.active
            else None
        )

    def _loss(self, out, labels):
        return ib_loss(out, labels, self.model.prior(), self.objective.beta, self.objective.kl_reduction)

    def training_step(self, batch, batch_idx):
        labels = batch["labels"]
        mask = batch["attention_mask"]
        if self.adv is None:
            loss, kl = self._loss(self.model(input_ids=batch["input_ids"], attention_mask=mask), labels)
        else:
            kls = []

            def loss_fn(embeds):
                lo, k = self._loss(self.model(inputs_embeds=embeds, attention_mask=mask), labels)
                kls.append(k.detach())
                return lo

            loss = self.adv.loss(self.model, loss_fn, batch["input_ids"], mask)
            kl = torch.stack(kls).mean()
        self.log_train("train_loss", loss.detach(), prog_bar=True)
        self.log_train("train_kl", kl)
        return loss

    def validation_step(self, batch, batch_idx):
        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        loss, _ = self._loss(out, batch["labels"])
        acc = (out.logits.argmax(-1) == batch["labels"]).float().mean()
        self.log("val_loss", loss, prog_bar=True, sync_dist=True)
        self.log("val_acc", acc, prog_bar=True, sync_dist=True)

    def _prior_params(self):
        return [p for n, p in self.model.named_parameters() if n.startswith("prior_")]

    def on_before_optimizer_step(self, optimizer):
        if not self.objective.alternating or not self.model.config.bottleneck:
            return
        prior_ids = {id(p) for p in self._prior_params()}
        prior_epoch = self.current_epoch % 2 == 1
        for p in self.model.parameters():
            if (id(p) in prior_ids) != prior_epoch:
                p.grad = None  # AdamW / Adam skip parameters without a gradient


def build_model(cfg: TrainCommand, tokenizer):
    """The model of a training config (the tiny encoder's vocabulary comes from the tokenizer)."""
    import dataclasses

    from ibrobust.model import IBClassifier

    model_cfg = cfg.model
    if model_cfg.encoder == "tiny" and model_cfg.vocab_size == 0:
        model_cfg = dataclasses.replace(model_cfg, vocab_size=len(tokenizer))
    return IBClassifier(model_cfg)


def _load_encoder(model, source, where: str) -> None:
    """Copy the encoder (every ``encoder.*`` weight, strictly) and, when the heads match, the rest."""
    from tenfold_core.errors import ConfigError

    src = source.state_dict()
    dst = model.state_dict()
    enc = {k: v for k, v in src.items() if k.startswith("encoder.")}
    missing = [k for k in dst if k.startswith("encoder.") and k not in enc]
    bad = [k for k, v in enc.items() if k not in dst or dst[k].shape != v.shape]
    if missing or bad:
        raise ConfigError(f"model.init_from {where}: its encoder does not fit ({(missing + bad)[0]})")
    same_head = set(src) == set(dst) and all(src[k].shape == dst[k].shape for k in src)
    model.load_state_dict(src if same_head else {**dst, **enc})


def train(cfg: TrainCommand) -> dict:
    """Train one model; writes ``out_dir/model.safetensors``, ``config.json`` and ``tokenizer/``; returns a JSON
    summary (best validation accuracy, seconds, seconds per epoch)."""
    import dataclasses

    from ibrobust.data import build_tokenizer, load_data, make_loader
    from tenfold_core.errors import ConfigError
    from tenfold_core.train import fit

    data = load_data(cfg.data)
    if data.num_labels != cfg.model.num_labels:
        raise ConfigError(
            f"model.num_labels is {cfg.model.num_labels} but {cfg.data.source} has {data.num_labels} labels"
        )
    init = None
    if cfg.model.init_from:
        from ibrobust.evaluate import load_trained

        init, tok, _ = load_trained(cfg.model.init_from)
    else:
        tok = build_tokenizer(cfg.model, data.train.texts)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, tok)
    if init is not None:
        _load_encoder(model, init, cfg.model.init_from)
    cfg = dataclasses.replace(cfg, model=model.config)
    out = Path(cfg.train.out_dir)
    if is_rank_zero():
        tok.save_pretrained(str(out / "tokenizer"))
    ml = cfg.model.max_length
    train_dl = make_loader(
        data.train.texts, data.train.labels, tok, cfg.data.batch_size, ml, True, cfg.train.seed
    )
    val_dl = make_loader(data.dev.texts, data.dev.labels, tok, cfg.data.eval_batch_size, ml)
    module = IBModule(model, cfg.objective, cfg.adv, cfg.optim)
    t0 = time.perf_counter()
    result = fit(module, cfg.train, train_dl, val_dl, run_config=_run_config(cfg))
    seconds = time.perf_counter() - t0
    epochs = max(result.trainer.current_epoch, 1) if result.trainer is not None else 1
    return {
        "out_dir": str(out),
        "best_val_acc": result.best_score,
        "seconds": round(seconds, 3),
        "seconds_per_epoch": round(seconds / epochs, 3),
        "variant": variant_name(cfg),
    }


def _run_config(cfg: TrainCommand) -> dict:
    return {"model": cfg.model, "data": cfg.data, "objective": cfg.objective, "adv": cfg.adv}


def variant_name(cfg) -> str:
    ib = cfg.model.bottleneck
    adv = cfg.adv.active
    if ib:
        return f"IB+{cfg.adv.method.upper() if cfg.adv.method == 'pgd' else 'FreeLB'}" if adv else "IB"
    return ("FreeLB" if cfg.adv.method == "freelb" else "PGD") if adv else "base"
