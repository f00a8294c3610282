"""t-SNE of the learned features for a few widths (the paper's qualitative figure).

Models are not stored by a sweep; the units are retrained from the run folder's settings and persisted noisy labels,
which reproduces them (each unit is seeded by (seed, width)).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tenfold_core.cli import arg, parse_config
from tenfold_core.errors import DataError
from tenfold_core.report import new_figure, save_figure

from .data import load_data
from .evaluate import extract_features
from .noise import noisy_labels_for
from .sweep import SweepConfig, _build
from .train import resolve_device, train_unit, unit_seed

__all__ = ["TsneConfig", "feature_tsne"]


@dataclass
class TsneConfig:
    run_dir: str = arg(help="a sweep's run folder (with sweep.json)", positional=True)
    widths: list[int] = arg([4, 16, 128], help="widths to show (the paper: small, threshold, large)")
    noise: float = arg(0.2, help="noise level")
    seed: int = arg(0, help="seed")
    max_points: int = arg(1000, help="embed at most this many training samples (all noisy ones are kept)")
    out: str | None = arg(None, help="PNG path (default RUN_DIR/tsne_p<noise>_s<seed>.png)")


def feature_tsne(cfg: TsneConfig) -> Path:
    from sklearn.manifold import TSNE

    run = Path(cfg.run_dir)
    meta = run / "sweep.json"
    if not meta.is_file():
        raise DataError(f"{run}: no sweep.json (is this a doubledescent run folder?)")
    sweep_cfg = json.loads(meta.read_text(encoding="utf-8"))["config"]
    scfg = _from_dict(sweep_cfg)
    data = load_data(scfg.data)
    noisy = noisy_labels_for(run, data.y_train, cfg.noise, data.num_classes, cfg.seed, scfg.noise_mode)
    rng = np.random.default_rng(0)
    noisy_idx = np.flatnonzero(noisy.noisy_mask)
    clean_idx = np.flatnonzero(~noisy.noisy_mask)
    keep = max(cfg.max_points - len(noisy_idx), 0)
    idx = np.sort(np.concatenate([noisy_idx, rng.permutation(clean_idx)[:keep]]))
    fig = new_figure(4.2 * len(cfg.widths), 4.2)
    axes = np.atleast_1d(fig.subplots(1, len(cfg.widths)))
    for ax, w in zip(axes, cfg.widths):
        model = _build(scfg, data, w, cfg.seed)
        res = train_unit(
            model, data.x_train, noisy.observed, noisy.true, data.x_test, data.y_test, scfg.train,
            seed=unit_seed(cfg.seed, w), knn_k=scfg.knn_k, knn_metric=scfg.knn_metric,
            work_dir=run / "units" / f"{scfg.model}-w{w}-p{cfg.noise:g}-s{cfg.seed}",
        )  # fmt: skip
        dev = resolve_device(scfg.train.device)
        x = torch.as_tensor(data.x_train[idx], dtype=torch.float32, device=dev)
        feats = extract_features(model, x).cpu().numpy().astype(np.float64)
        emb = TSNE(
            n_components=2, init="pca", perplexity=min(30, len(idx) - 1), random_state=0
        ).fit_transform(feats)
        is_noisy = noisy.noisy_mask[idx]
        ax.scatter(
            emb[~is_noisy, 0], emb[~is_noisy, 1], c=noisy.true[idx][~is_noisy], cmap="tab10", s=4, alpha=0.5
        )
        ax.scatter(emb[is_noisy, 0], emb[is_noisy, 1], c=noisy.true[idx][is_noisy], cmap="tab10", s=28,
                   marker="x", linewidths=1.2)  # fmt: skip
        ax.set_title(f"width {w}: test loss {res['test_loss']:.2f}, k-NN P {res['knn_p']:.2f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"t-SNE of learned features (colour = true label, x = noisy-label sample), p = {cfg.noise:g}"
    )
    out = Path(cfg.out) if cfg.out else run / f"tsne_p{cfg.noise:g}_s{cfg.seed}.png"
    return save_figure(fig, out)


def _from_dict(d: dict) -> SweepConfig:
    flat: dict = {}

    def walk(v, prefix=""):
        for k, x in v.items():
            if isinstance(x, dict):
                walk(x, prefix + k + ".")
            else:
                flat[prefix + k] = x

    walk(d)
    return parse_config(SweepConfig, flat)
