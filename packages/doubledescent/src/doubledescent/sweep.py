"""The resumable width x noise x seed sweep.

Every (model, width, noise, seed) is one *unit*. Units run in a fixed order (noise, then seed, then width), each row is
appended to ``RUN_DIR/results.csv`` as soon as its unit finishes, and a rerun skips the units already there, so a
killed sweep loses at most the unit in flight. ``shard="i/n"`` runs every n-th unit starting at i (0-based), so n
processes (or GPUs) can share one run folder. The noisy labels of each (noise, seed) are drawn once and stored under
``RUN_DIR/noise/``: every width sees the same labels. ``RUN_DIR/sweep.json`` records the settings; rerunning a folder
with different data/model/training settings is refused (widths, noise levels and seeds may be extended).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from tenfold_core.cli import arg, config_to_dict
from tenfold_core.errors import ConfigError
from tenfold_core.io import remove_stale_tmp, write_json
from tenfold_core.models import count_parameters

from .data import ArrayData, DataConfig, load_data
from .model import build_model
from .noise import labels_digest, noisy_labels_for
from .results import append_row, read_results, unit_key
from .train import TrainSettings, train_packed_fc, train_unit, unit_seed

__all__ = ["SweepConfig", "run_sweep", "plan_units", "parse_shard", "PAPER_FC_WIDTHS", "PAPER_CNN_WIDTHS"]

PAPER_FC_WIDTHS = [*range(1, 11), *range(12, 23, 2), 25, *range(30, 61, 5)]
PAPER_FC_WIDTHS += [70, 80, 90, 100, 120, 150, 200, 400, 600, 800, 1000]
PAPER_CNN_WIDTHS = [1, 2, 3, 4, 5, 6, *range(8, 21, 2), *range(24, 65, 4)]


@dataclass
class SweepConfig:
    out: str = arg("runs/sweep", help="run folder: results.csv, noise/, sweep.json, history/ go here")
    model: Literal["fc", "cnn", "resnet18"] = arg(
        "fc", help="fc (SimpleFC), cnn (5-layer CNN), resnet18 (preact)"
    )
    widths: list[int] = arg(
        [1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 20, 25, 30, 40, 50, 64, 100, 200, 400],
        help="model widths: hidden units N (fc) or k (cnn, resnet18)",
    )
    noise: list[float] = arg([0.0, 0.2], help="label-noise levels p")
    seeds: list[int] = arg([0], help="seeds: each draws its own noisy labels, initialisation and batch order")
    noise_mode: Literal["random", "wrong"] = arg(
        "random", help="random: new label uniform over all classes (paper); wrong: always a different class"
    )
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainSettings = field(default_factory=TrainSettings)
    knn_k: int = arg(5, help="neighbours of the k-NN probe (paper: 5)")
    knn_metric: str = arg("cosine", help="distance of the k-NN probe (paper: cosine)")
    fc_init: Literal["paper", "torch"] = arg(
        "paper", help="SimpleFC init: paper (N(0, 0.1)) or torch's default"
    )
    cnn_pooling: Literal["nakkiran", "official"] = arg(
        "nakkiran", help="5-layer CNN pooling: nakkiran (pool after convs 2-4) or official (the paper's code)"
    )
    shard: str = arg("0/1", help="i/n: run every n-th unit starting at i (0-based), for parallel processes")
    progress: bool = arg(True, help="show a progress bar over units")
    save_history: bool = arg(False, help="write each unit's per-eval_every metrics to history/<unit>.json")
    pack: int = arg(
        1,
        help="fc with full-batch loop training only: train up to this many widths of one (noise, seed) at once",
    )

    def __post_init__(self):
        if not self.widths:
            raise ValueError("widths: give at least one width")
        if any(w < 1 for w in self.widths):
            raise ValueError(f"widths must be >= 1, got {self.widths}")
        if not self.noise or any(not 0 <= p <= 1 for p in self.noise):
            raise ValueError(f"noise levels must be in [0, 1], got {self.noise}")
        if not self.seeds:
            raise ValueError("seeds: give at least one seed")
        if self.knn_k < 1:
            raise ValueError(f"knn_k must be >= 1, got {self.knn_k}")
        if self.pack < 1:
            raise ValueError(f"pack must be >= 1, got {self.pack}")
        parse_shard(self.shard)


def parse_shard(shard: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in str(shard).split("/"))
    except ValueError:
        raise ConfigError(f"shard: expected i/n such as 0/4, got {shard!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"shard: expected 0 <= i < n, got {shard!r}")
    return i, n


def plan_units(cfg: SweepConfig) -> list[tuple[str, int, float, int]]:
    """All units of the sweep in run order (noise, seed, width), de-duplicated, before sharding."""
    units: list[tuple[str, int, float, int]] = []
    for p in cfg.noise:
        for s in cfg.seeds:
            for w in cfg.widths:
                key = unit_key(cfg.model, w, p, s)
                if key not in units:
                    units.append(key)
    return units


def _fingerprint(cfg: SweepConfig) -> dict[str, Any]:
    d = config_to_dict(cfg)
    for k in ("out", "widths", "noise", "seeds", "shard", "progress", "save_history", "pack"):
        d.pop(k, None)
    d["train"].pop("device", None)
    d["train"].pop("eval_every", None)
    d["data"].pop("root", None)
    d["data"].pop("download", None)
    return d


def _check_run_dir(cfg: SweepConfig, run: Path) -> None:
    meta = run / "sweep.json"
    fp = _fingerprint(cfg)
    if meta.is_file():
        try:
            old = json.loads(meta.read_text(encoding="utf-8"))["settings"]
        except (ValueError, KeyError):
            raise ConfigError(f"{meta}: unreadable; delete it or use a new out folder") from None
        if old != fp:
            diff = sorted(
                k
                for k in set(_flat(old)) | set(_flat(fp))
                if _flat(old).get(k, "<unset>") != _flat(fp).get(k, "<unset>")
            )
            raise ConfigError(
                f"out {run}: this run folder was made with different settings ({', '.join(diff[:4])}); "
                "use a new out folder or the original settings"
            )
    else:
        write_json(meta, {"settings": fp, "config": config_to_dict(cfg)})


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


def _progress(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="unit", desc="sweep")


def _build(cfg: SweepConfig, data: ArrayData, width: int, seed: int):
    torch.manual_seed(unit_seed(seed, width))
    return build_model(cfg.model, width, data.input_shape, data.num_classes, cfg.fc_init, cfg.cnn_pooling)


def _row(cfg: SweepConfig, data: ArrayData, model, p: float, seed: int, noisy, res: dict) -> dict[str, Any]:
    return {
        "model": cfg.model,
        "width": int(model.width),
        "params": count_parameters(model),
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
        "history": res["history"],
    }


def run_unit(
    cfg: SweepConfig, data: ArrayData, run: Path, width: int, p: float, seed: int, noisy=None
) -> dict:
    """Train and measure one unit; returns its results.csv row (plus ``history``)."""
    if noisy is None:
        noisy = noisy_labels_for(run, data.y_train, p, data.num_classes, seed, cfg.noise_mode)
    model = _build(cfg, data, width, seed)
    res = train_unit(
        model,
        data.x_train,
        noisy.observed,
        noisy.true,
        data.x_test,
        data.y_test,
        cfg.train,
        seed=unit_seed(seed, width),
        knn_k=cfg.knn_k,
        knn_metric=cfg.knn_metric,
        work_dir=run / "units" / f"{cfg.model}-w{width}-p{p:g}-s{seed}",
    )
    return _row(cfg, data, model, p, seed, noisy, res)


def run_pack(cfg: SweepConfig, data: ArrayData, widths: list[int], p: float, seed: int, noisy) -> list[dict]:
    """Train several SimpleFC widths of one (noise, seed) together (full batch); one row per width."""
    models = [_build(cfg, data, w, seed) for w in widths]
    results = train_packed_fc(
        models,
        data.x_train,
        noisy.observed,
        noisy.true,
        data.x_test,
        data.y_test,
        cfg.train,
        knn_k=cfg.knn_k,
        knn_metric=cfg.knn_metric,
    )
    return [_row(cfg, data, m, p, seed, noisy, r) for m, r in zip(models, results)]


def _packable(cfg: SweepConfig) -> bool:
    return cfg.pack > 1 and cfg.model == "fc" and cfg.train.batch_size == 0 and cfg.train.engine == "loop"


def _work_items(cfg: SweepConfig, mine: list) -> list[list]:
    """Units grouped into work items: single units, or fixed packs of up to ``cfg.pack`` widths of one (p, seed).
    Packs depend only on the plan (not on what is already done), so a resumed sweep reproduces the same numbers."""
    if not _packable(cfg):
        return [[u] for u in mine]
    groups: dict[tuple[float, int], list] = {}
    for u in mine:
        groups.setdefault((u[2], u[3]), []).append(u)
    return [g[i : i + cfg.pack] for g in groups.values() for i in range(0, len(g), cfg.pack)]


def run_sweep(cfg: SweepConfig, data: ArrayData | None = None) -> Path:
    """Run (or resume) the sweep described by ``cfg``; returns the run folder. ``data`` overrides ``cfg.data``."""
    run = Path(cfg.out)
    run.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(run)
    remove_stale_tmp(run / "noise")
    _check_run_dir(cfg, run)
    data = data if data is not None else load_data(cfg.data)
    build_model(
        cfg.model, min(cfg.widths), data.input_shape, data.num_classes, cfg.fc_init, cfg.cnn_pooling
    )  # check
    i, n = parse_shard(cfg.shard)
    mine = plan_units(cfg)[i::n]
    csv_path = run / "results.csv"
    done = {unit_key(r["model"], r["width"], r["noise"], r["seed"]) for r in read_results(csv_path)}
    noisy_cache: dict[tuple[float, int], Any] = {}
    with _progress(len(mine), sum(u in done for u in mine), cfg.progress) as bar:
        for item in _work_items(cfg, mine):
            if all(u in done for u in item):
                continue
            _, _, p, seed = item[0]
            if (p, seed) not in noisy_cache:
                noisy_cache[(p, seed)] = noisy_labels_for(
                    run, data.y_train, p, data.num_classes, seed, cfg.noise_mode
                )
            noisy = noisy_cache[(p, seed)]
            t0 = time.time()
            if len(item) > 1:
                rows = run_pack(cfg, data, [u[1] for u in item], p, seed, noisy)
            else:
                rows = [run_unit(cfg, data, run, item[0][1], p, seed, noisy)]
            for u, row in zip(item, rows):
                if u in done:
                    continue
                history = row.pop("history")
                if cfg.save_history:
                    write_json(run / "history" / f"{cfg.model}-w{row['width']}-p{p:g}-s{seed}.json", history)
                append_row(csv_path, row)
                done.add(u)
                bar.set_postfix(
                    width=row["width"], p=p, test_loss=_short(row["test_loss"]), secs=f"{time.time() - t0:.1f}",
                    refresh=False,
                )  # fmt: skip
                bar.update(1)
    return run


def _short(v: float) -> str:
    return "nan" if isinstance(v, float) and math.isnan(v) else f"{v:.3f}"
