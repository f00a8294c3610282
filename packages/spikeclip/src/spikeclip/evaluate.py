"""``evaluate``: prompt-ensemble top-1/top-5 (the paper's protocol: class weights = normalised mean of the text-SNN
prompt features over templates, logits = cosines), open-vocabulary tests (class names replaced by synonyms;
distractor classes added), per-layer firing rates, and the energy estimate against the same-size ANN image tower."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch.utils.data import DataLoader

from spikeclip.config import DataConfig, EvaluateConfig, MiniCLIPConfig
from spikeclip.data import build_prompts, load_data
from spikeclip.losses import class_logits
from spikeclip.model import ANNImageEncoder, SpikingImageEncoder, SpikingTextEncoder
from spikeclip.train import class_embeddings, load_run_dir, resolve_teacher
from tenfold_core.errors import ConfigError
from tenfold_core.io import write_json
from tenfold_core.spiking import FiringRateMonitor, estimate_energy

__all__ = ["accuracy_topk", "energy_report", "firing_rates", "predict_features", "run_evaluate"]


@torch.no_grad()
def predict_features(encode, dataset, batch_size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """``encode(images) -> [B, D]`` over a dataset: ``(features [N, D], labels [N])``."""
    feats, labels = [], []
    for x, y in DataLoader(dataset, batch_size=batch_size):
        feats.append(encode(x).float())
        labels.append(torch.as_tensor(y))
    return torch.cat(feats), torch.cat(labels)


def accuracy_topk(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Fraction of rows whose label is among the ``k`` largest logits (``k`` capped at the class count)."""
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    return float((top == labels[:, None]).any(1).float().mean())


@torch.no_grad()
def firing_rates(model: SpikingImageEncoder, images: torch.Tensor) -> dict[str, float]:
    """Firing rate of every LIF (spikes / elements, time steps included) on ``images``."""
    model.eval()
    with FiringRateMonitor(model) as mon:
        model(images)
        return mon.rates()


@torch.no_grad()
def energy_report(
    model: SpikingImageEncoder, images: torch.Tensor, precision: str = "fp32"
) -> dict[str, Any]:
    """Per-image energy of the image SNN (MAC for real-valued inputs, AC per spike) and of the same-size ANN tower
    (all MAC), with the per-layer SNN table. ``snn_uj == sum(layer energy)`` by construction."""
    model.eval()
    b = images.shape[0]
    snn = estimate_energy(model, images, precision=precision).per_sample(b)
    ann_model = ANNImageEncoder(model.config).eval()
    ann = estimate_energy(ann_model, images, precision=precision, ann=True).per_sample(b)
    return {
        "snn_uj": snn.energy_pj * 1e-6,
        "ann_uj": ann.energy_pj * 1e-6,
        "ratio": snn.ratio_to(ann),
        "snn_macs": snn.macs,
        "snn_acs": snn.acs,
        "ann_macs": ann.macs,
        "layers": snn.as_dicts(),
        "ann_layers": ann.as_dicts(),
        "table": snn.table(),
    }


def _replace(classes: list[str], pairs: list[str]) -> list[str]:
    table = dict(p.split("=", 1) for p in pairs)
    unknown = [k for k in table if k not in classes]
    if unknown:
        raise ConfigError(f"replace: class {unknown[0]!r} is not one of the data set's classes")
    return [table.get(c, c) for c in classes]


def run_evaluate(cfg: EvaluateConfig) -> dict[str, Any]:
    """Evaluate a student run (``cfg.student``) with the class embeddings of a text run (``cfg.text``)."""
    if not cfg.student or not cfg.text:
        raise ConfigError("evaluate needs a student run folder and --text (an align-text run folder)")
    student, conf = load_run_dir(cfg.student)
    if not isinstance(student, SpikingImageEncoder):
        raise ConfigError(f"student: {cfg.student} holds a {type(student).__name__}, not an image SNN run")
    text, _ = load_run_dir(cfg.text)
    if not isinstance(text, SpikingTextEncoder):
        raise ConfigError(f"text: {cfg.text} holds a {type(text).__name__}, not an align-text run")
    if text.config.out_dim != student.config.out_dim:
        raise ConfigError(
            f"text: {text.config.out_dim}-d embeddings, the student is {student.config.out_dim}-d"
        )
    # the training run's data settings (splits, classes, templates) are the evaluation's: no silent change
    data_cfg = DataConfig(**conf["data"]) if conf.get("data") else cfg.data
    data_cfg = dataclasses.replace(data_cfg, batch_size=cfg.data.batch_size)
    data = load_data(data_cfg)
    ds = data.split(cfg.split)
    templates = data_cfg.templates
    student.eval()
    feats, labels = predict_features(student, ds, data_cfg.batch_size)
    w = class_embeddings(text, data.classes, templates)
    logits = class_logits(feats, w)
    out: dict[str, Any] = {
        "split": cfg.split,
        "images": len(ds),
        "classes": len(data.classes),
        "top1": accuracy_topk(logits, labels, 1),
        "top5": accuracy_topk(logits, labels, 5),
        "chance": float(torch.bincount(labels).max()) / len(labels),
    }
    # open vocabulary: two class names replaced by synonyms; distractor classes added
    if cfg.replace:
        w_rep = class_embeddings(text, _replace(data.classes, cfg.replace), templates)
        out["open_vocab_replace_top1"] = accuracy_topk(class_logits(feats, w_rep), labels, 1)
        replaced = [data.classes.index(p.split("=")[0]) for p in cfg.replace]
        mask = torch.isin(labels, torch.tensor(replaced))
        out["open_vocab_replaced_classes_top1"] = (
            accuracy_topk(class_logits(feats[mask], w_rep), labels[mask], 1) if mask.any() else None
        )
    if cfg.distractors:
        w_exp = class_embeddings(text, [*data.classes, *cfg.distractors], templates)
        out["open_vocab_expand_top1"] = accuracy_topk(class_logits(feats, w_exp), labels, 1)
    # teacher side by side: its own text tower (zero-shot) and the text-SNN class weights
    if cfg.teacher:
        teacher = resolve_teacher(cfg.teacher, MiniCLIPConfig(), data_cfg, data.classes).eval()
        t_feats, _ = predict_features(teacher.encode_image, ds, data_cfg.batch_size)
        with torch.no_grad():
            w_t = class_embeddings(teacher, data.classes, templates)
        out["teacher_top1"] = accuracy_topk(class_logits(t_feats, w_t), labels, 1)
        out["teacher_snn_text_top1"] = accuracy_topk(class_logits(t_feats, w), labels, 1)
    # firing rates and energy on the first energy_images test images
    n = min(cfg.energy_images, len(ds))
    images = torch.stack([ds[i][0] for i in range(n)])
    rates = firing_rates(student, images)
    out["firing_rates"] = rates
    out["mean_firing_rate"] = sum(rates.values()) / len(rates) if rates else 0.0
    attn = {k: v for k, v in rates.items() if k.endswith("attn_lif")}
    out["min_attention_firing_rate"] = min(attn.values()) if attn else None
    with torch.no_grad(), FiringRateMonitor(text) as mon:
        text.eval().encode(build_prompts(data.classes, templates)[0])
        out["text_firing_rates"] = mon.rates()
    energy = energy_report(student, images, cfg.energy_precision)
    out["energy"] = {k: v for k, v in energy.items() if k != "table"}
    out["energy_ratio_vs_same_size_ann"] = energy["ratio"]
    out["energy_table"] = energy["table"]
    if cfg.out:
        write_json(cfg.out, out)
    return out
