"""t-SNE of the learned features for a few widths (the paper's qualitative figure), from a sweep's stored units.

Every sweep unit is a run folder ``RUN_DIR/units/<kind>-w<width>-p<noise>-s<seed>/`` (``model.safetensors`` +
``config.json``); this verb loads those, nothing is retrained.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from tenfold_core.cli import parse_config
from tenfold_core.errors import DataError
from tenfold_core.report import new_figure, save_figure

from .config import SweepCommand, TsneCommand
from .data import load_data
from .evaluate import extract_features, load_unit, measure
from .noise import noisy_labels_for

__all__ = ["feature_tsne"]


def _sweep_config(run: Path) -> SweepCommand:
    meta = run / "sweep.json"
    if run.is_file():
        raise DataError(f"{run}: is a file, expected a sweep's run folder")
    if not meta.is_file():
        raise DataError(f"{run}: no sweep.json (is this a doubledescent run folder?)")
    try:
        return parse_config(SweepCommand, json.loads(meta.read_text(encoding="utf-8"))["config"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise DataError(f"{meta}: unreadable sweep settings") from None


def feature_tsne(cfg: TsneCommand) -> Path:
    from sklearn.manifold import TSNE

    from .sweep import unit_name

    run = Path(cfg.run_dir)
    scfg = _sweep_config(run)
    units = [run / "units" / unit_name(scfg.model.kind, w, cfg.noise, cfg.seed) for w in cfg.widths]
    missing = [u.name for u in units if not (u / "model.safetensors").is_file()]
    if missing:
        raise DataError(
            f"{run}: no stored unit(s) {', '.join(missing)} (run the sweep with those widths first)"
        )
    data = load_data(scfg.data)
    noisy = noisy_labels_for(run, data.y_train, cfg.noise, data.num_classes, cfg.seed, scfg.noise_mode)
    rng = np.random.default_rng(0)
    noisy_idx = np.flatnonzero(noisy.noisy_mask)
    clean_idx = np.flatnonzero(~noisy.noisy_mask)
    keep = max(cfg.max_points - len(noisy_idx), 0)
    idx = np.sort(np.concatenate([noisy_idx, rng.permutation(clean_idx)[:keep]]))
    fig = new_figure(4.2 * len(cfg.widths), 4.2)
    axes = np.atleast_1d(fig.subplots(1, len(cfg.widths)))
    for ax, w, udir in zip(axes, cfg.widths, units):
        model, _ = load_unit(udir)
        res = measure(model, data, noisy, scfg.knn_k, scfg.knn_metric)
        x = torch.as_tensor(data.x_train[idx], dtype=torch.float32)
        feats = extract_features(model, x).numpy().astype(np.float64)
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
    if out.is_dir():
        raise DataError(f"out {out}: is a folder, expected a PNG path")
    return save_figure(fig, out)
