"""The resumable width x noise x seed sweep (``doubledescent sweep``).

Every (model, width, noise, seed) is one *unit*. Units run in a fixed order (noise, then seed, then width), each row is
appended to ``RUN_DIR/results.csv`` as soon as its unit finishes, and a rerun skips the units already there, so a
killed sweep loses at most the unit in flight (with ``engine: fit`` not even that: the unit resumes from its
``last.ckpt``). ``shard="i/n"`` runs every n-th unit starting at i (0-based), so n processes (or GPUs) can share one run
folder. The noisy labels of each (noise, seed) are drawn once and stored under ``RUN_DIR/noise/``: every width sees the
same labels. Each unit's weights are a run folder ``RUN_DIR/units/<unit>/`` (``doubledescent evaluate`` and ``tsne``
read it). ``RUN_DIR/sweep.json`` records the settings; rerunning a folder with different data/model/training settings is
refused (widths, noise levels and seeds may be extended). ``RUN_DIR`` is ``--train.out_dir``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from tenfold_core.cli import config_to_dict
from tenfold_core.errors import ConfigError
from tenfold_core.io import remove_stale_tmp, write_json

from .config import SweepCommand, parse_shard
from .data import ArrayData, load_data
from .model import model_config_for
from .noise import labels_digest, noise_file, noisy_labels_for
from .results import append_row, read_results, unit_key
from .train import (
    _noise_info,
    _run_config,
    check_knn,
    check_size,
    export_unit,
    fit_unit,
    is_rank_zero,
    resolve_engine,
    snapshot,
    train_packed,
)

__all__ = ["run_sweep", "plan_units", "unit_name", "PAPER_FC_WIDTHS", "PAPER_CNN_WIDTHS"]

from .config import PAPER_CNN_WIDTHS, PAPER_FC_WIDTHS

# keys that do not change a unit's numbers: a rerun may change them freely
_RUN_ONLY = ("widths", "noise", "seeds", "shard", "progress", "pack", "eval_every", "threshold_acc", "engine")
_RUN_ONLY_TRAIN = ("out_dir", "devices", "accelerator", "strategy", "num_nodes", "progress_bar", "loggers", "resume",
                   "log_every_n_steps", "checkpoint_every_n_steps", "export")  # fmt: skip
_RUN_ONLY_DATA = ("root", "download")


def unit_name(kind: str, width: int, p: float, seed: int) -> str:
    return f"{kind}-w{width}-p{p:g}-s{seed}"


def plan_units(cfg: SweepCommand) -> list[tuple[str, int, float, int]]:
    """All units of the sweep in run order (noise, seed, width), de-duplicated, before sharding."""
    units: list[tuple[str, int, float, int]] = []
    for p in cfg.noise:
        for s in cfg.seeds:
            for w in cfg.widths:
                key = unit_key(cfg.model.kind, w, p, s)
                if key not in units:
                    units.append(key)
    return units


def _fingerprint(cfg: SweepCommand) -> dict[str, Any]:
    d = config_to_dict(cfg)
    for k in _RUN_ONLY:
        d.pop(k, None)
    for k in _RUN_ONLY_TRAIN:
        d["train"].pop(k, None)
    for k in _RUN_ONLY_DATA:
        d["data"].pop(k, None)
    return d


def _changed_keys(old: dict, new: dict) -> list[str]:
    """Keys (``section.key`` one level deep, as the configs are) whose values differ."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k, "<unset>"), new.get(k, "<unset>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += [
                f"{k}.{kk}" for kk in sorted(set(a) | set(b)) if a.get(kk, "<unset>") != b.get(kk, "<unset>")
            ]
        elif a != b:
            out.append(k)
    return out


def _check_run_dir(cfg: SweepCommand, run: Path) -> None:
    meta = run / "sweep.json"
    fp = _fingerprint(cfg)
    if meta.is_file():
        try:
            old = json.loads(meta.read_text(encoding="utf-8"))["settings"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise ConfigError(f"{meta}: unreadable; delete it or use a new train.out_dir") from None
        if old != fp:
            diff = _changed_keys(old, fp) if isinstance(old, dict) else ["settings"]
            raise ConfigError(
                f"train.out_dir {run}: this run folder was made with different settings ({', '.join(diff[:4])}); "
                "use a new train.out_dir or the original settings"
            )
    elif is_rank_zero():
        write_json(meta, {"settings": fp, "config": config_to_dict(cfg)})


class _Progress:
    """A bar over training *steps* of all pending units (a packed step advances every unit of its pack)."""

    def __init__(self, total: int, initial: int, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=initial, disable=not enabled, unit="step", desc="sweep",
                        dynamic_ncols=True, smoothing=0.05)  # fmt: skip

    def step(self, n: int = 1) -> None:
        self.bar.update(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()


def _steps_per_unit(cfg: SweepCommand, data: ArrayData) -> int:
    bs = data.n_train if cfg.data.batch_size == 0 else min(cfg.data.batch_size, data.n_train)
    per_epoch = math.ceil(data.n_train / bs)
    steps = cfg.train.max_epochs * per_epoch
    return min(steps, cfg.train.max_steps) if cfg.train.max_steps > 0 else steps


def _work_items(cfg: SweepCommand, mine: list, engine: str) -> list[list]:
    """Units grouped into work items: single units, or fixed packs of up to ``cfg.pack`` widths of one (p, seed).
    Packs depend only on the plan (not on what is already done), so a resumed sweep reproduces the same numbers."""
    if engine != "packed":
        return [[u] for u in mine]
    groups: dict[tuple[float, int], list] = {}
    for u in mine:
        groups.setdefault((u[2], u[3]), []).append(u)
    return [g[i : i + cfg.pack] for g in groups.values() for i in range(0, len(g), cfg.pack)]


def _row(cfg: SweepCommand, data: ArrayData, model, p: float, seed: int, noisy, res: dict) -> dict[str, Any]:
    return {
        "model": cfg.model.kind,
        "width": int(model.width),
        "params": sum(t.numel() for t in model.parameters()),
        "noise": float(p),
        "seed": int(seed),
        "noise_mode": cfg.noise_mode,
        "n_train": data.n_train,
        "n_noisy": noisy.n_noisy,
        "labels_sha1": labels_digest(noisy.observed),
        **{
            k: res[k]
            for k in ("train_loss", "train_acc", "test_loss", "test_acc", "noisy_memorized", "knn_p")
        },
    }


def run_sweep(cfg: SweepCommand, data: ArrayData | None = None) -> Path:
    """Run (or resume) the sweep described by ``cfg``; returns the run folder. ``data`` overrides ``cfg.data``."""
    run = Path(cfg.train.out_dir)
    if run.exists() and not run.is_dir():
        raise ConfigError(f"train.out_dir {run}: is a file, expected a run folder")
    run.mkdir(parents=True, exist_ok=True)
    rank0 = is_rank_zero()
    if rank0:  # another rank's file in flight is not stale (under DDP a rank 0 unlink broke rank 1's rename)
        remove_stale_tmp(run)
        remove_stale_tmp(run / "noise")
    data = data if data is not None else load_data(cfg.data)
    model_config_for(
        cfg.model, min(cfg.widths), data.input_shape, data.num_classes
    )  # fails early on a mismatch
    check_size(cfg, data, [max(cfg.widths)])
    engine = resolve_engine(cfg, cfg.pack)
    _check_run_dir(cfg, run)
    i, n = parse_shard(cfg.shard)
    mine = plan_units(cfg)[i::n]
    items = _work_items(cfg, mine, engine)
    for item in items:
        check_size(cfg, data, [u[1] for u in item])
    csv_path = run / "results.csv"
    done = {unit_key(r["model"], r["width"], r["noise"], r["seed"]) for r in read_results(csv_path)}
    per_unit = _steps_per_unit(cfg, data)
    noisy_cache: dict[tuple[float, int], Any] = {}
    with _Progress(
        len(mine) * per_unit, sum(u in done for u in mine) * per_unit, cfg.progress and rank0
    ) as bar:
        for item in items:
            if all(u in done for u in item):
                continue
            _, _, p, seed = item[0]
            if (p, seed) not in noisy_cache:
                noisy_cache[(p, seed)] = noisy_labels_for(
                    run, data.y_train, p, data.num_classes, seed, cfg.noise_mode, save=rank0
                )
            noisy = noisy_cache[(p, seed)]
            check_knn(cfg, noisy)
            npath = noise_file(run, p, seed, cfg.noise_mode)
            widths = [u[1] for u in item]
            histories: dict[int, list] = {w: [] for w in widths}
            t0 = time.time()
            if engine == "packed":

                def on_epoch(epoch, models, _h=histories, _n=noisy):
                    for m in models:
                        _h[m.width].append({"epoch": epoch, **snapshot(m, data, _n)})

                results = train_packed(cfg, data, noisy, widths, seed, bar.step, on_epoch, cfg.eval_every)
                if rank0:
                    for model, _ in results:
                        udir = run / "units" / unit_name(cfg.model.kind, model.width, p, seed)
                        mcfg = model_config_for(cfg.model, model.width, data.input_shape, data.num_classes)
                        export_unit(
                            model, udir, cfg.train, _run_config(cfg, mcfg, _noise_info(noisy, npath), udir)
                        )
            else:
                w = widths[0]
                udir = run / "units" / unit_name(cfg.model.kind, w, p, seed)

                def on_epoch(epoch, model, _h=histories, _w=w, _n=noisy):
                    _h[_w].append({"epoch": epoch, **snapshot(model, data, _n)})

                results = [
                    fit_unit(cfg, data, noisy, w, udir, npath, seed, bar.step, on_epoch, cfg.eval_every)
                ]
            for u, (model, res) in zip(item, results):
                if u in done:
                    continue
                row = _row(cfg, data, model, p, seed, noisy, res)
                if rank0:
                    if cfg.eval_every:
                        hist = [*histories[model.width], {"epoch": cfg.train.max_epochs, **res}]
                        write_json(
                            run / "history" / f"{unit_name(cfg.model.kind, model.width, p, seed)}.json", hist
                        )
                    append_row(csv_path, row)
                done.add(u)
                bar.bar.set_postfix(width=row["width"], p=p, test_loss=_short(row["test_loss"]),
                                    secs=f"{time.time() - t0:.1f}", refresh=False)  # fmt: skip
    return run


def _short(v: float) -> str:
    return "nan" if isinstance(v, float) and math.isnan(v) else f"{v:.3f}"
