"""``embed`` (owner) and ``finetune`` (user), both through :func:`tenfold_core.train.fit`.

embed = clean multi-task stage (full model, clean proxy data) -> poison stage (clean + poisoned + negative data; the
trigger embedding rows only, norms restored after every step, or the full model). The owner's key (triggers, targets,
seed) is written to ``key_file``, which must lie outside the model folder.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import CombinedLoader

from plmwatermark.config import EmbedCommand, FinetuneCommand, TriggerConfig, WatermarkModelConfig
from plmwatermark.data import Task, check_trigger_tokens, load_tasks, poisoned_examples, synthetic_vocabulary
from plmwatermark.losses import multitask_loss
from plmwatermark.model import MultiTaskEncoder, encoder_config_for, resolve_backbone
from tenfold_core.config import OptimConfig
from tenfold_core.data import make_text_dataloader
from tenfold_core.errors import ConfigError, DataError
from tenfold_core.io import write_json
from tenfold_core.train import TenfoldModule, fit

__all__ = ["MultiTaskModule", "run_embed", "run_finetune", "load_key", "build_tokenizer", "task_loaders"]

KEY_VERSION = 1


class MultiTaskModule(TenfoldModule):
    """Sum of per-task cross-entropies over a dict batch ``{task: {input_ids, attention_mask, labels}}``.

    ``trigger_ids`` set: only those rows of the word-embedding matrix train (every other parameter frozen, the
    other rows' gradients zeroed) and after each optimizer step their L2 norms are reset to the original ones.
    """

    def __init__(self, model: MultiTaskEncoder, optim: OptimConfig, trigger_ids: list[int] | None = None):
        super().__init__(optim)
        self.model = model
        self.trigger_ids = sorted(set(trigger_ids)) if trigger_ids else None
        if self.trigger_ids is not None:
            emb = model.word_embeddings.weight
            for p in model.parameters():
                p.requires_grad_(False)
            emb.requires_grad_(True)
            idx = torch.tensor(self.trigger_ids)
            self.register_buffer("_trig_idx", idx, persistent=False)
            self.register_buffer("_trig_norms", emb.detach()[idx].norm(dim=1).clone(), persistent=False)
            mask = torch.zeros(emb.shape[0], 1)
            mask[idx] = 1.0
            self.register_buffer("_row_mask", mask, persistent=False)
            emb.register_hook(lambda g: g * self._row_mask.to(g.dtype))

    def _losses(self, batch: dict) -> tuple[torch.Tensor, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
        return multitask_loss(self.model, batch)

    def training_step(self, batch, batch_idx):
        loss, _ = self._losses(batch)
        self.log_train("train_loss", loss, prog_bar=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self.trigger_ids is not None:  # EP: keep the trigger rows' norms
            with torch.no_grad():
                emb = self.model.word_embeddings.weight
                rows = emb[self._trig_idx]
                emb[self._trig_idx] = (
                    rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12) * self._trig_norms[:, None]
                )

    def validation_step(self, batch, batch_idx):
        loss, out = self._losses(batch)
        n = sum(int(y.numel()) for _, y in out.values())
        acc = sum(float((lg.argmax(-1) == y).sum()) for lg, y in out.values()) / max(n, 1)
        self.log("val_loss", loss, prog_bar=True, sync_dist=True, batch_size=n)
        self.log("val_acc", torch.tensor(acc), prog_bar=True, sync_dist=True, batch_size=n)


# ------------------------------------------------------------------------------------------------ helpers
def build_tokenizer(
    backbone: str, tasks: list[Task], trigger: TriggerConfig | None = None, max_length: int = 128
):
    if backbone == "tiny":
        from tenfold_core.models import word_level_tokenizer

        # a fixed vocabulary (the generator's words, both domains) plus any other word of the given texts
        vocab = synthetic_vocabulary()
        known = set(vocab)
        texts = [t for task in tasks for split in (task.train, task.dev, task.test) for t in split[0]]
        extra = {w for t in texts for w in t.lower().split()} | {
            w.lower() for w in (trigger.words if trigger else [])
        }
        return word_level_tokenizer(vocab=vocab + sorted(extra - known), max_length=max_length)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_backbone(backbone))


def task_loaders(tasks_data: dict[str, tuple[list[str], list[int]]], tok, batch_size: int, max_length: int,
                 shuffle: bool, seed: int, mode: str) -> CombinedLoader:  # fmt: skip
    loaders = {
        name: make_text_dataloader(
            texts, labels, tok, batch_size=batch_size, max_length=max_length, shuffle=shuffle, seed=seed
        )  # fmt: skip
        for name, (texts, labels) in tasks_data.items()
    }
    return CombinedLoader(loaders, mode=mode)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def load_key(path: str | Path) -> dict[str, Any]:
    """The owner's key file, checked; any problem is one line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"key_file {p}: no such file")
    try:
        key = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(
            f"key_file {p}: not a valid key file (corrupt JSON: {getattr(e, 'msg', e)})"
        ) from None
    if not isinstance(key, dict):
        raise DataError(f"key_file {p}: not a valid key file (expected a JSON object)")
    for field, typ in (("kind", str), ("words", list), ("targets", dict), ("seed", int)):
        if not isinstance(key.get(field), typ):
            raise DataError(f"key_file {p}: field '{field}' missing or not a {typ.__name__}")
    if key["kind"] not in ("rare", "combination") or not key["words"]:
        raise DataError(f"key_file {p}: field 'kind' must be rare/combination and 'words' non-empty")
    return key


def restore_best(model: torch.nn.Module, result) -> None:
    """Load the checkpoint ``fit`` selected (and exported) back into ``model``, so what we measure and what the next
    stage starts from is the exported model, not the last epoch's weights."""
    best = result.best_checkpoint
    if best is None or not Path(best).is_file():
        return
    state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    model.load_state_dict({k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")})


def _completed_model_config(cfg: WatermarkModelConfig, tok, tasks: list[Task]) -> WatermarkModelConfig:
    m = cfg
    if m.backbone == "tiny":
        m = dataclasses.replace(m, vocab_size=len(tok))
    m = dataclasses.replace(m, tasks={t.name: t.num_labels for t in tasks})
    return dataclasses.replace(m, encoder_config=encoder_config_for(m))


# -------------------------------------------------------------------------------------------------- embed
def run_embed(cmd: EmbedCommand) -> dict[str, Any]:
    out = Path(cmd.train.out_dir)
    key_path = Path(cmd.key_file)
    if _inside(key_path, out):
        raise ConfigError(
            f"key_file {key_path} lies inside the model folder {out}: the owner's key must be kept apart"
        )
    tasks = load_tasks(cmd.data)
    tok = build_tokenizer(cmd.model.backbone, tasks, cmd.trigger, cmd.data.max_length)
    trig_ids = check_trigger_tokens(tok, cmd.trigger.words)
    mcfg = _completed_model_config(cmd.model, tok, tasks)
    targets = {t.name: int(cmd.trigger.targets.get(t.name, 1)) for t in tasks}
    for t in tasks:
        if not 0 <= targets[t.name] < t.num_labels:
            raise ConfigError(f"trigger.targets.{t.name}={targets[t.name]} is not a label of that task")
    with torch.random.fork_rng():  # the same initial weights for a given train.seed in every process
        torch.manual_seed(cmd.train.seed)
        model = MultiTaskEncoder(mcfg)
    if mcfg.backbone != "tiny":
        model.load_backbone_weights()
    dev = {t.name: t.dev for t in tasks}
    run_config = {"model": mcfg, "data": cmd.data, "scope": cmd.scope, "stage": "watermarked"}

    if cmd.clean_epochs > 0:  # clean proxy stage: full model, clean data
        ccfg = dataclasses.replace(cmd.train, out_dir=str(out / "clean_stage"), max_epochs=cmd.clean_epochs,
                                   max_steps=-1, resume="never")  # fmt: skip
        copt = OptimConfig(name="adamw", lr=cmd.clean_lr)
        cres = fit(MultiTaskModule(model, copt), ccfg,
            task_loaders({t.name: t.train for t in tasks}, tok, cmd.data.batch_size, cmd.data.max_length, True,
                         cmd.train.seed, "max_size_cycle"),
            task_loaders(dev, tok, cmd.data.batch_size, cmd.data.max_length, False, 0, "max_size_cycle"),
            run_config={**run_config, "stage": "clean"})  # fmt: skip
        restore_best(model, cres)  # poison the exported clean model (the control's starting point)
        if cres.trainer is None or cres.trainer.is_global_zero:
            tok.save_pretrained(str(out / "clean_stage" / "tokenizer"))

    rng = random.Random(cmd.train.seed)
    train, pdev = {}, {}
    for t in tasks:
        pt, py = poisoned_examples(*t.train, targets[t.name], cmd.trigger, rng)
        train[t.name] = (list(t.train[0]) + pt, list(t.train[1]) + py)
        # validation on clean + poisoned dev copies: with clean dev data alone, embedding-only poisoning leaves
        # val_loss constant and checkpoint selection kept the first poison epoch
        pt, py = poisoned_examples(*t.dev, targets[t.name], cmd.trigger, rng)
        pdev[t.name] = (list(t.dev[0]) + pt, list(t.dev[1]) + py)
    module = MultiTaskModule(model, cmd.optim, trig_ids if cmd.scope == "embedding" else None)
    result = fit(module, cmd.train,
                 task_loaders(train, tok, cmd.data.batch_size, cmd.data.max_length, True, cmd.train.seed,
                              "max_size_cycle"),
                 task_loaders(pdev, tok, cmd.data.batch_size, cmd.data.max_length, False, 0, "max_size_cycle"),
                 run_config=run_config)  # fmt: skip
    restore_best(model, result)
    key = {"version": KEY_VERSION, "kind": cmd.trigger.kind, "words": list(cmd.trigger.words),
           "token_ids": trig_ids, "targets": targets, "seed": cmd.train.seed, "insertions": cmd.trigger.insertions,
           "model": str(out.resolve())}  # fmt: skip
    if result.trainer is None or result.trainer.is_global_zero:
        tok.save_pretrained(str(out / "tokenizer"))
        key_path.parent.mkdir(parents=True, exist_ok=True)
        write_json(key_path, key)
    from plmwatermark.evaluate import watermark_metrics

    model.eval()
    # every rank measures with the key it built (as written: a JSON round trip), not by reading the file, which
    # only rank 0 writes (under DDP rank 1 could get there first: "key_file ...: no such file")
    metrics = watermark_metrics(
        model, tok, tasks, json.loads(json.dumps(key)), cmd.data.max_length, seed=cmd.train.seed
    )
    return {"out_dir": str(out), "key_file": str(key_path), "scope": cmd.scope, **metrics}


# ----------------------------------------------------------------------------------------------- finetune
class EpochWatermarkProbe(Callback):
    """WESR and clean accuracy on the downstream test split at the end of every training epoch (rank 0)."""

    def __init__(self, tok, tasks, key, max_length):
        self.tok, self.tasks, self.key, self.max_length, self.history = tok, tasks, key, max_length, []

    def on_train_epoch_end(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        from plmwatermark.evaluate import watermark_metrics

        was = pl_module.model.training
        pl_module.model.eval()
        m = watermark_metrics(pl_module.model, self.tok, self.tasks, self.key, self.max_length, seed=0)
        pl_module.model.train(was)
        self.history.append({"epoch": trainer.current_epoch + 1, **m})


def load_model_dir(path: str | Path):
    from transformers import AutoTokenizer

    from tenfold_core.models import load_run

    run = load_run(path)
    tok_dir = Path(path) / "tokenizer"
    if not tok_dir.is_dir():
        raise ConfigError(f"{path}: no tokenizer/ folder (not a plmwatermark model folder)")
    return run.model, AutoTokenizer.from_pretrained(str(tok_dir)), run.config


def _build_tiny_model(cmd: FinetuneCommand):
    """A random tiny encoder + tokenizer built in place, the same on every rank (seeded; nothing is written, so DDP
    ranks never wait for each other's files)."""
    tasks = load_tasks(cmd.data)
    tok = build_tokenizer("tiny", tasks, None, cmd.data.max_length)
    mcfg = _completed_model_config(
        WatermarkModelConfig(backbone="tiny", hidden=32, layers=1, heads=2), tok, tasks
    )
    with torch.random.fork_rng():
        torch.manual_seed(cmd.train.seed)
        model = MultiTaskEncoder(mcfg)
    return model, tok


def run_finetune(cmd: FinetuneCommand, key: dict | None = None) -> dict[str, Any]:
    """Full fine-tuning of a (watermarked) model on downstream task(s); new heads unless ``reinit_head=false``."""
    if cmd.build_if_missing and not (Path(cmd.model_dir) / "model.safetensors").is_file():
        old, tok = _build_tiny_model(cmd)
    else:
        old, tok, _ = load_model_dir(cmd.model_dir)
    tasks = load_tasks(cmd.data)
    mcfg = dataclasses.replace(old.config, tasks={t.name: t.num_labels for t in tasks})
    with torch.random.fork_rng():  # the new heads' initial weights follow train.seed
        torch.manual_seed(cmd.train.seed)
        model = MultiTaskEncoder(mcfg)
    model.encoder.load_state_dict(old.encoder.state_dict())
    if not cmd.reinit_head:
        for t in tasks:
            if t.name in old.heads and old.heads[t.name].out_features == t.num_labels:
                model.heads[t.name].load_state_dict(old.heads[t.name].state_dict())
    module = MultiTaskModule(model, cmd.optim)
    probe = [EpochWatermarkProbe(tok, tasks, key, cmd.data.max_length)] if key else []
    result = fit(module, cmd.train,
                 task_loaders({t.name: t.train for t in tasks}, tok, cmd.data.batch_size, cmd.data.max_length, True,
                              cmd.train.seed, "max_size_cycle"),
                 task_loaders({t.name: t.dev for t in tasks}, tok, cmd.data.batch_size, cmd.data.max_length, False, 0,
                              "max_size_cycle"),
                 callbacks=probe, run_config={"model": mcfg, "data": cmd.data, "stage": "finetuned",
                                              "parent": str(cmd.model_dir)})  # fmt: skip
    out = Path(cmd.train.out_dir)
    restore_best(model, result)
    if result.trainer is None or result.trainer.is_global_zero:
        tok.save_pretrained(str(out / "tokenizer"))
    from plmwatermark.evaluate import clean_accuracy

    model.eval()
    acc = {f"clean_acc_{t.name}": clean_accuracy(model, tok, t, cmd.data.max_length) for t in tasks}
    return {"out_dir": str(out), **acc, "history": probe[0].history if probe else []}
