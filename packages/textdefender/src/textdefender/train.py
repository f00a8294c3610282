"""Defenses as trainers on ``tenfold_core.train.fit``: base, PGD-K, FreeLB, FreeLB++ (embedding space, through
``tenfold_core.adversarial``) and RanMASK (random [MASK] training; a mask-and-vote ensemble at test time)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from tenfold_core.io import is_rank_zero
from tenfold_core.train import TenfoldModule
from textdefender.config import TrainCommand
from textdefender.defenses import SYNONYM_DEFENSES
from textdefender.losses import classification_loss, random_mask_ids

__all__ = ["DefenseModule", "train", "adversary_of"]


def adversary_of(defense):
    from tenfold_core.adversarial import EmbeddingAdversary

    if defense.name not in ("pgd", "freelb", "freelbpp"):
        return None
    method = "pgd" if defense.name == "pgd" else "freelb"
    return EmbeddingAdversary(
        method, defense.k, defense.init_mag, defense.step_size, defense.radius, defense.norm
    )


class DefenseModule(TenfoldModule):
    def __init__(self, model, defense, optim, mask_id: int | None = None, special_ids=(), synonym_index=None):
        super().__init__(optim)
        self.model = model
        self.defense = defense
        self.adv = adversary_of(defense)
        self.mask_id, self.special_ids = mask_id, tuple(special_ids)
        # TA-VAT / InfoBERT / ASCC / DNE / SAFER (textdefender.defenses); None for the others
        from textdefender.defenses import build_defense

        self.impl = build_defense(defense, model, synonym_index)

    def training_step(self, batch, batch_idx):
        ids, mask, y = batch["input_ids"], batch["attention_mask"], batch["labels"]
        if self.impl is not None:
            loss = self.impl.training_loss(self, batch)
        elif self.adv is not None:

            def loss_fn(embeds):
                return classification_loss(self.model(inputs_embeds=embeds, attention_mask=mask).logits, y)

            loss = self.adv.loss(self.model, loss_fn, ids, mask)
        else:
            if self.defense.name == "ranmask":
                ids = random_mask_ids(ids, mask, self.mask_id, self.defense.mask_rate, self.special_ids)
            loss = classification_loss(self.model(input_ids=ids, attention_mask=mask).logits, y)
            if self.defense.name == "mixada":  # MixADA: + the hidden-space mixup term (textdefender.augment)
                from textdefender.augment import mixup_loss

                loss = loss + self.defense.mix_weight * mixup_loss(self.model, ids, mask, y, self.defense)
        self.log_train("train_loss", loss.detach(), prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        ids, mask = batch["input_ids"], batch["attention_mask"]
        if self.defense.name == "ranmask":  # select on the training-time input distribution (one masked copy)
            g = torch.Generator().manual_seed(batch_idx)
            ids = random_mask_ids(ids, mask, self.mask_id, self.defense.mask_rate, self.special_ids, g)
        if self.defense.name == "dne":  # DNE: one (seeded) Dirichlet sample, as the official dev evaluation
            logits = self.impl.sample_logits(self.model, ids, mask, generator_seed=batch_idx)
        else:
            logits = self.model(input_ids=ids, attention_mask=mask).logits
        self.log("val_loss", classification_loss(logits, batch["labels"]), prog_bar=True, sync_dist=True)
        self.log(
            "val_acc", (logits.argmax(-1) == batch["labels"]).float().mean(), prog_bar=True, sync_dist=True
        )

    def on_save_checkpoint(self, checkpoint):
        if self.impl is not None and hasattr(self.impl, "extra_state"):
            checkpoint["defense_state"] = self.impl.extra_state()

    def on_load_checkpoint(self, checkpoint):
        if self.impl is not None and hasattr(self.impl, "load_extra_state"):
            self.impl.load_extra_state(checkpoint.get("defense_state") or {})


class EpochTimer:
    """Wall time of every training epoch (the cost column: excludes process start-up, data loading and export)."""

    def __init__(self):
        self.seconds: list[float] = []
        self._t = None

    def on_train_epoch_start(self, trainer, pl_module):
        self._t = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        if self._t is not None:
            self.seconds.append(time.perf_counter() - self._t)


def _timer_callback():
    from lightning.pytorch.callbacks import Callback

    class _Timer(EpochTimer, Callback):
        def __init__(self):
            EpochTimer.__init__(self)
            Callback.__init__(self)

    return _Timer()


def train(cfg: TrainCommand) -> dict:
    from tenfold_core.errors import ConfigError
    from tenfold_core.train import fit
    from textdefender.data import build_tokenizer, load_data, make_loader
    from textdefender.model import DefendedClassifier

    data = load_data(cfg.data)
    if data.num_labels != cfg.model.num_labels:
        raise ConfigError(
            f"model.num_labels is {cfg.model.num_labels} but {cfg.data.source} has {data.num_labels} labels"
        )
    if cfg.model.init_from:
        from textdefender.evaluate import load_trained

        init_model, tok, _ = load_trained(cfg.model.init_from)
    else:
        init_model, tok = None, build_tokenizer(cfg.model, data.train.texts)
    model_cfg = cfg.model
    if model_cfg.encoder == "tiny" and model_cfg.vocab_size == 0:
        model_cfg = dataclasses.replace(model_cfg, vocab_size=len(tok))
    cfg = dataclasses.replace(cfg, model=model_cfg)
    torch.manual_seed(cfg.train.seed)
    model = DefendedClassifier(model_cfg)
    if init_model is not None:
        try:
            model.load_state_dict(init_model.state_dict())
        except RuntimeError as e:
            raise ConfigError(
                f"model.init_from {cfg.model.init_from}: weights do not fit this model ({str(e)[:200]})"
            ) from None
    out = Path(cfg.train.out_dir)
    if is_rank_zero():
        tok.save_pretrained(str(out / "tokenizer"))
    ml = model_cfg.max_length
    train_texts, train_labels = data.train.texts, data.train.labels
    if cfg.defense.name in ("ada", "mixada"):  # clean + adversarial training set (textdefender.augment)
        from textdefender.augment import augmented_training_set

        train_texts, train_labels, _ = augmented_training_set(cfg, data)
    train_dl = make_loader(train_texts, train_labels, tok, cfg.data.batch_size, ml, True, cfg.train.seed)
    val_dl = make_loader(data.dev.texts, data.dev.labels, tok, cfg.data.eval_batch_size, ml)
    index = None
    if cfg.defense.name in SYNONYM_DEFENSES:  # the defender's synonym table, kept with the run
        from textdefender.defenses import defense_synonym_index

        index = defense_synonym_index(cfg.defense, model, tok, synthetic=cfg.data.source == "synthetic")
        if is_rank_zero():
            index.save(out / "synonyms.json")
    module = DefenseModule(model, cfg.defense, cfg.optim, tok.mask_token_id, tok.all_special_ids, index)
    t0 = time.perf_counter()
    timer = _timer_callback()
    result = fit(module, cfg.train, train_dl, val_dl, callbacks=[timer],
                 run_config={"model": model_cfg, "data": cfg.data, "defense": cfg.defense})  # fmt: skip
    seconds = time.perf_counter() - t0
    per_epoch = sum(timer.seconds) / len(timer.seconds) if timer.seconds else seconds
    return {"out_dir": str(out), "defense": cfg.defense.name, "best_val_acc": result.best_score,
            "seconds": round(seconds, 3), "seconds_per_epoch": round(per_epoch, 4)}  # fmt: skip
