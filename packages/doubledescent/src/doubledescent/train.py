"""Training of (model, width, noise, seed) units: through ``tenfold_core.train.fit``, or the packed-width engine.

Paper defaults (``configs/paper.yaml`` and the dataclass defaults): SGD (no momentum, no weight decay), lr 0.05,
batch 128, cross-entropy, 4000 epochs, ``lr_decay: inv_sqrt`` = ``lr / sqrt(1 + epoch // 50)`` (MNIST);
``inv_sqrt_cifar`` is the official CIFAR code's ``lr / sqrt(1 + 10 * 50 * (epoch // 50))``; ``lr_decay: optim`` uses the
core schedules of ``--optim.*`` (constant, cosine, step decay at ``optim.milestones`` by ``optim.gamma``, per step or
per epoch with ``optim.interval``).

Two engines read the same sections (``--model``, ``--data``, ``--train``, ``--optim``):

- ``fit``: :class:`WidthClassifier` (the core's :class:`~tenfold_core.train.ClassifierModule` plus the paper's
  per-epoch schedules) trained by :func:`tenfold_core.train.fit` — checkpoints, resume, DDP, precision; exports
  ``model.safetensors`` + ``config.json`` (a run folder ``tenfold_core.models.load_run`` rebuilds).
- ``packed`` (the one documented exception to "training goes through fit"): SimpleFC, full batch, one device; several
  widths are trained as one network whose loss is the *sum* of the models' losses, so each model gets exactly its own
  gradient (same result as training each alone, up to float rounding; measured faster, see bench/). It exports the
  same run folder per unit.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tenfold_core.cli import config_to_dict
from tenfold_core.errors import ConfigError, TrainingDiverged
from tenfold_core.io import write_json
from tenfold_core.models import save_weights
from tenfold_core.train import ClassifierModule, fit

from .config import OptimConfig, TrainCommand, UnitSettings, WidthModelConfig, is_rank_zero
from .data import ArrayData, load_data, train_loader
from .evaluate import evaluate_model, measure
from .losses import packed_cross_entropy
from .model import SimpleFC, build_model, model_config_for
from .noise import NoisyLabels, noisy_labels_for

__all__ = [
    "WidthClassifier",
    "PackedSimpleFC",
    "paper_lr_factor",
    "lr_at_epoch",
    "unit_seed",
    "resolve_engine",
    "check_size",
    "check_knn",
    "fit_unit",
    "train_packed",
    "export_unit",
    "run_train",
    "is_rank_zero",
]


# ------------------------------------------------------------------------------------------------- schedules
def paper_lr_factor(lr_decay: str, decay_every: int, epoch: int) -> float:
    """lr / lr0 during ``epoch`` (0-based) for the paper's per-epoch schedules."""
    block = epoch // decay_every
    if lr_decay == "inv_sqrt":
        return 1.0 / math.sqrt(1 + block)
    if lr_decay == "inv_sqrt_cifar":
        return 1.0 / math.sqrt(1 + 10 * block * decay_every)
    raise ConfigError(f"lr_decay: expected inv_sqrt, inv_sqrt_cifar or optim, got {lr_decay!r}")


def lr_at_epoch(settings: UnitSettings, epoch: int) -> float:
    """The learning rate of ``epoch`` under a paper schedule (``lr_decay`` != optim)."""
    return settings.optim.lr * paper_lr_factor(settings.lr_decay, settings.decay_every, epoch)


def _core_optimizer(module: torch.nn.Module, optim: OptimConfig, total_steps: int):
    from tenfold_core.train import build_optimizer

    return build_optimizer(module, optim, total_steps)


def _optimizers(module, settings: UnitSettings, total_steps: int, steps_per_epoch: int):
    """(optimizer, scheduler, interval) for the packed engine and :class:`WidthClassifier`."""
    if settings.lr_decay == "optim":
        total = total_steps if settings.optim.interval == "step" else max(total_steps // steps_per_epoch, 1)
        opt, sched = _core_optimizer(module, settings.optim, total)
        return opt, sched, settings.optim.interval
    opt, _ = _core_optimizer(module, dataclasses.replace(settings.optim, schedule="constant"), total_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda epoch: paper_lr_factor(settings.lr_decay, settings.decay_every, epoch)
    )
    return opt, sched, "epoch"


class WidthClassifier(ClassifierModule):
    """The core's classifier module (cross-entropy on ``(x, y)`` batches, ``module.model`` exported) whose schedule is
    the paper's per-epoch inverse-sqrt decay unless ``lr_decay == "optim"``."""

    def __init__(self, model: torch.nn.Module, settings: UnitSettings):
        super().__init__(model, settings.optim)
        self.lr_decay, self.decay_every = settings.lr_decay, settings.decay_every

    def configure_optimizers(self):
        if self.lr_decay == "optim":
            return super().configure_optimizers()
        opt, _ = _core_optimizer(self, dataclasses.replace(self.optim_config, schedule="constant"), 1)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda epoch: paper_lr_factor(self.lr_decay, self.decay_every, epoch)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


# ------------------------------------------------------------------------------------------------ helpers
def unit_seed(seed: int, width: int) -> int:
    """Seed of a unit's initialisation and batch order: independent of which other units ran before."""
    return (int(seed) * 1_000_003 + int(width) * 7919) % (2**31 - 1)


def _single_device(settings: UnitSettings) -> bool:
    t = settings.train
    return (
        t.strategy in ("auto", "single_device")
        and str(t.devices).strip() in ("auto", "1")
        and t.num_nodes == 1
    )


def resolve_engine(settings: UnitSettings, pack: int = 1) -> str:
    """``packed`` or ``fit`` for these settings; ConfigError when ``engine: packed`` cannot apply."""
    packable = settings.model.kind == "fc" and settings.data.batch_size == 0 and _single_device(settings)
    if settings.engine == "packed":
        if not packable:
            raise ConfigError(
                "engine: packed needs model.kind=fc, data.batch_size=0 (full batch) and one device "
                "(train.devices 1/auto, no strategy); use engine fit"
            )
        t = settings.train
        if t.grad_clip is not None or t.accumulate != 1:
            raise ConfigError("engine: packed does not clip or accumulate gradients; use engine fit")
        if t.precision not in ("auto", "32-true", "32"):
            raise ConfigError(
                f"engine: packed trains in float32 (train.precision {t.precision}); use engine fit"
            )
        return "packed"
    if settings.engine == "fit":
        return "fit"
    t = settings.train
    ok = t.grad_clip is None and t.accumulate == 1 and t.precision in ("auto", "32-true", "32")
    return "packed" if packable and pack > 1 and ok else "fit"


def check_size(settings: UnitSettings, data: ArrayData, widths: Sequence[int]) -> None:
    """Refuse, with the estimate, a unit or pack whose parameter count is above ``max_params`` (before allocating)."""
    cfg = model_config_for(settings.model, min(widths), data.input_shape, data.num_classes)
    total = 0
    for w in widths:
        n = dataclasses.replace(cfg, width=int(w)).params()
        total += n
        if n > settings.max_params:
            raise ConfigError(
                f"width {w}: a {cfg.kind} model of that width has {n:,} parameters (~{n * 16 / 1e9:,.1f} GB to "
                f"train with Adam), above max_params={settings.max_params:,}; lower the width or raise max_params"
            )
    if total > settings.max_params:
        raise ConfigError(
            f"pack: widths {list(widths)} together have {total:,} parameters, above max_params="
            f"{settings.max_params:,}; lower pack or raise max_params"
        )


def check_knn(settings: UnitSettings, noisy: NoisyLabels) -> None:
    """Refuse before training when the k-NN probe could not run on these labels (fewer clean samples than knn_k)."""
    clean = len(noisy.observed) - noisy.n_noisy
    if noisy.n_noisy and clean < settings.knn_k:
        raise ConfigError(f"knn_k={settings.knn_k}: only {clean} clean training samples at noise {noisy.p:g}")


def _epochs(settings: UnitSettings, steps_per_epoch: int) -> int:
    e = settings.train.max_epochs
    if settings.train.max_steps > 0:
        e = min(e, math.ceil(settings.train.max_steps / steps_per_epoch))
    return max(e, 1)


def _run_config(settings: UnitSettings, model_cfg: WidthModelConfig, noise: dict, out_dir: Path) -> dict:
    return {
        "model": config_to_dict(model_cfg),
        "data": config_to_dict(settings.data),
        "optim": config_to_dict(settings.optim),
        "lr_decay": settings.lr_decay,
        "decay_every": settings.decay_every,
        "noise": {**noise, "file": os.path.relpath(noise["path"], out_dir)} if "path" in noise else noise,
        "knn": {"k": settings.knn_k, "metric": settings.knn_metric},
    }


def export_unit(model, out_dir: Path, train_cfg, run_config: dict) -> Path:
    """The run folder layout of ``fit`` (``model.safetensors`` + ``config.json`` with the model class and every
    section), for units the packed engine trained."""
    from tenfold_core.train import class_path

    out_dir.mkdir(parents=True, exist_ok=True)
    conf = {
        "model_class": class_path(model),
        **run_config,
        "train": config_to_dict(train_cfg),
        "exported": "network",
    }
    conf["noise"] = {k: v for k, v in conf["noise"].items() if k != "path"}
    weights = save_weights(model.state_dict(), out_dir / "model.safetensors")
    write_json(out_dir / "config.json", conf)
    return weights


def _noise_info(noisy: NoisyLabels, path: Path) -> dict:
    return {"p": float(noisy.p), "seed": int(noisy.seed), "mode": noisy.mode, "path": str(path)}


# ------------------------------------------------------------------------------------------------ fit engine
class _Hooks:
    """Lightning callback: the sweep's step progress and the ``eval_every`` snapshots."""

    def __new__(cls, on_step=None, on_epoch=None, eval_every=0):
        from lightning.pytorch.callbacks import Callback

        class Hooks(Callback):
            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                if on_step is not None and trainer.is_global_zero:
                    on_step(1)

            def on_train_epoch_end(self, trainer, pl_module):
                e = trainer.current_epoch + 1
                if on_epoch is not None and eval_every and e % eval_every == 0 and e < trainer.max_epochs:
                    was = pl_module.training
                    on_epoch(e, pl_module.model)
                    pl_module.train(was)

        return Hooks()


def fit_unit(
    settings: UnitSettings,
    data: ArrayData,
    noisy: NoisyLabels,
    width: int,
    out_dir: str | Path,
    noise_path: Path,
    seed: int,
    on_step: Callable[[int], None] | None = None,
    on_epoch: Callable[[int, Any], None] | None = None,
    eval_every: int = 0,
) -> tuple[Any, dict[str, float]]:
    """Train one unit with ``tenfold_core.train.fit`` into ``out_dir`` (resuming from its last checkpoint); returns
    the trained model and its :func:`~doubledescent.evaluate.measure` metrics."""
    out_dir = Path(out_dir)
    model_cfg = model_config_for(settings.model, width, data.input_shape, data.num_classes)
    s = unit_seed(seed, width)
    torch.manual_seed(s)
    model = build_model(model_cfg)
    loader = train_loader(data.x_train, noisy.observed, settings.data.batch_size, seed=s)
    train_cfg = dataclasses.replace(settings.train, out_dir=str(out_dir), seed=s, monitor=None)
    module = WidthClassifier(model, settings)
    run_config = _run_config(settings, model_cfg, _noise_info(noisy, noise_path), out_dir)
    run_config["noise"].pop("path", None)
    cbs = [_Hooks(on_step, on_epoch, eval_every)] if (on_step or on_epoch) else []
    fit(module, train_cfg, loader, callbacks=cbs, run_config=run_config)
    model = module.model.cpu()
    return model, measure(model, data, noisy, settings.knn_k, settings.knn_metric)


# --------------------------------------------------------------------------------------------- packed engine
class PackedSimpleFC(torch.nn.Module):
    """Several :class:`SimpleFC` models trained as one: their hidden layers are concatenated into one matmul and
    the loss is the *sum* of their losses, so every model gets exactly its own gradient (and, with full-batch
    training, its own trajectory). ``unpack()`` copies the weights back into the original models."""

    def __init__(self, models: list[SimpleFC]):
        super().__init__()
        self.models = models
        self.w1 = torch.nn.Parameter(torch.cat([m.hidden.weight.detach() for m in models]).clone())
        self.b1 = torch.nn.Parameter(torch.cat([m.hidden.bias.detach() for m in models]).clone())
        self.w2 = torch.nn.ParameterList(
            [torch.nn.Parameter(m.classifier.weight.detach().clone()) for m in models]
        )
        self.b2 = torch.nn.ParameterList(
            [torch.nn.Parameter(m.classifier.bias.detach().clone()) for m in models]
        )
        ends = np.cumsum([m.width for m in models])
        self.bounds = list(zip([0, *ends[:-1].tolist()], ends.tolist()))

    def forward(self, x):  # (n, M, C)
        h = F.relu(F.linear(x.flatten(1), self.w1, self.b1))
        return torch.stack(
            [F.linear(h[:, a:b], w, b_) for (a, b), w, b_ in zip(self.bounds, self.w2, self.b2)], dim=1
        )

    @torch.no_grad()
    def unpack(self) -> list[SimpleFC]:
        for (a, b), m, w, b_ in zip(self.bounds, self.models, self.w2, self.b2):
            m.hidden.weight.copy_(self.w1[a:b])
            m.hidden.bias.copy_(self.b1[a:b])
            m.classifier.weight.copy_(w)
            m.classifier.bias.copy_(b_)
        return self.models


def _packed_device(settings: UnitSettings) -> torch.device:
    acc = settings.train.accelerator
    if acc == "cpu":
        return torch.device("cpu")
    if acc in ("auto", "gpu", "cuda"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if acc != "auto":
            raise ConfigError(
                f"train.accelerator={acc}: CUDA is not available on this machine (use auto or cpu)"
            )
        return torch.device("cpu")
    raise ConfigError(f"train.accelerator={acc}: the packed engine runs on cpu or cuda; use engine fit")


def train_packed(
    settings: UnitSettings,
    data: ArrayData,
    noisy: NoisyLabels,
    widths: Sequence[int],
    seed: int,
    on_step: Callable[[int], None] | None = None,
    on_epoch: Callable[[int, list], None] | None = None,
    eval_every: int = 0,
) -> list[tuple[Any, dict[str, float]]]:
    """Full-batch training of several SimpleFC widths at once (same result as training each alone, up to float
    rounding). ``on_step(n)`` is called after every optimizer step with the number of units it advanced."""
    if resolve_engine(dataclasses.replace(settings, engine="packed")) != "packed":  # pragma: no cover
        raise ConfigError("packed engine not applicable")
    dev = _packed_device(settings)
    cfgs = [model_config_for(settings.model, w, data.input_shape, data.num_classes) for w in widths]
    models = []
    for c in cfgs:
        torch.manual_seed(unit_seed(seed, c.width))
        models.append(build_model(c))
    xtr = torch.as_tensor(data.x_train, dtype=torch.float32, device=dev)
    ytr = torch.as_tensor(noisy.observed, dtype=torch.long, device=dev)
    packed = PackedSimpleFC(models).to(dev)
    epochs = _epochs(settings, 1)
    opt, sched, _ = _optimizers(packed, settings, epochs, 1)
    for epoch in range(epochs):
        packed.train()
        loss = packed_cross_entropy(packed(xtr), ytr)
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"loss is {loss.item()} at epoch {epoch} (packed SimpleFC widths {list(widths)}); lower optim.lr"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if on_step is not None:
            on_step(len(models))
        if on_epoch is not None and eval_every and (epoch + 1) % eval_every == 0 and epoch + 1 < epochs:
            on_epoch(epoch + 1, packed.unpack())
    out = []
    for m in packed.unpack():
        m = m.cpu()
        out.append((m, measure(m, data, noisy, settings.knn_k, settings.knn_metric)))
    return out


def snapshot(model, data: ArrayData, noisy: NoisyLabels) -> dict[str, float]:
    """Train/test loss and accuracy of a model mid-training (for ``eval_every`` histories)."""
    dev = next(model.parameters()).device
    tr = evaluate_model(
        model, torch.as_tensor(data.x_train, device=dev), torch.as_tensor(noisy.observed, device=dev)
    )
    te = evaluate_model(
        model, torch.as_tensor(data.x_test, device=dev), torch.as_tensor(data.y_test, device=dev)
    )
    return {"train_loss": tr["loss"], "train_acc": tr["acc"], "test_loss": te["loss"], "test_acc": te["acc"]}


# ------------------------------------------------------------------------------------------------ the verb
def run_train(cfg: TrainCommand, data: ArrayData | None = None) -> dict[str, Any]:
    """``doubledescent train``: one unit into ``train.out_dir`` (a run folder); returns its metrics."""
    out = Path(cfg.train.out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"train.out_dir {out}: is a file, expected a folder")
    data = data if data is not None else load_data(cfg.data)
    width = int(cfg.model.width)
    check_size(cfg, data, [width])
    noisy = noisy_labels_for(
        out, data.y_train, cfg.noise, data.num_classes, cfg.seed, cfg.noise_mode, save=is_rank_zero()
    )
    from .noise import noise_file

    npath = noise_file(out, cfg.noise, cfg.seed, cfg.noise_mode)
    check_knn(cfg, noisy)
    if resolve_engine(cfg) == "packed":
        ((model, res),) = train_packed(cfg, data, noisy, [width], cfg.seed)
        if is_rank_zero():
            model_cfg = model_config_for(cfg.model, width, data.input_shape, data.num_classes)
            export_unit(model, out, cfg.train, _run_config(cfg, model_cfg, _noise_info(noisy, npath), out))
    else:
        model, res = fit_unit(cfg, data, noisy, width, out, npath, cfg.seed)
    metrics = {"width": width, "params": sum(p.numel() for p in model.parameters()), "noise": cfg.noise,
               "seed": cfg.seed, "n_noisy": noisy.n_noisy, **res}  # fmt: skip
    if is_rank_zero():
        from tenfold_core.report import write_metrics

        write_metrics(out / "metrics.json", metrics)
    return metrics
