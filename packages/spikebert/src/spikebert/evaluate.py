"""Evaluation: accuracy (MCC for CoLA-style tasks), firing rates, and the energy estimate of the student against an
ANN of the same depth and width (the headline) and against its teacher, with :mod:`tenfold_core.spiking`'s
firing-rate monitor and MAC/AC energy estimator.

Accuracy and MCC come from one confusion matrix (summed over batches, and over ranks in training); MCC is the
multi-class (Gorodkin) formula, as torchmetrics' ``MatthewsCorrCoef`` the official code uses.

Energy accounting (per sample, every model on the same batches, padding included):

- student: ``E_MAC * MACs + E_AC * ACs``; layers fed with binary spikes (the first block's Q/K/V, the attention
  products on spikes, the MLP's second linear, ...) count accumulates. Layers fed with the integer residual
  stream (spike counts) are counted two ways, side by side: as dense MACs (``integer_as_mac``, conservative) and as
  ``|value|`` accumulates (``integer_as_ac``, the paper's assumption). The classifier sees LayerNorm outputs (MACs).
  The embedding lookup and the distillation heads (training only) cost nothing at inference.
- ANN (the same-size BERT built from the student's depth/width/heads/MLP ratio, and the teacher): every
  ``nn.Linear`` as MACs, plus the attention products ``2 * L^2 * D`` MACs per layer, added analytically because
  Hugging Face computes them with a functional call rather than a module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from spikebert.config import EvaluateConfig
from spikebert.model import SpikeBERT, load_student
from tenfold_core.errors import DataError
from tenfold_core.io import write_json
from tenfold_core.spiking import EnergyEstimator, EnergyReport, FiringRateMonitor, LayerEnergy

__all__ = [
    "EvaluateConfig",
    "confusion_matrix",
    "scores_from_confusion",
    "predict_scores",
    "energy_comparison",
    "same_size_ann",
    "ann_energy",
    "run_evaluate",
]


def confusion_matrix(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[C, C]`` counts (rows: true label, columns: prediction) of ``argmax(logits)``."""
    pred = logits.argmax(-1).reshape(-1).to(torch.long).cpu()
    y = labels.reshape(-1).to(torch.long).cpu()
    return (
        torch.bincount(y * num_classes + pred, minlength=num_classes * num_classes)
        .reshape(num_classes, num_classes)
        .to(torch.float64)
    )


def scores_from_confusion(cm: torch.Tensor) -> dict[str, float]:
    """Accuracy and the multi-class Matthews correlation (Gorodkin 2004) of a confusion matrix (0 when undefined)."""
    cm = cm.to(torch.float64)
    s = cm.sum()
    c = torch.trace(cm)
    t, p = cm.sum(1), cm.sum(0)
    num = c * s - (t * p).sum()
    den = torch.sqrt((s * s - (p * p).sum()) * (s * s - (t * t).sum()))
    acc = float(c / s) if s > 0 else 0.0
    mcc = float(num / den) if den > 0 else 0.0
    return {"accuracy": acc, "mcc": mcc}


@torch.no_grad()
def predict_scores(logits_fn, model: nn.Module, loader, num_classes: int) -> dict[str, float]:
    """Accuracy and MCC of ``logits_fn(batch)`` over a loader (``model`` in eval mode meanwhile)."""
    was = model.training
    model.eval()
    cm = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    for b in loader:
        cm += confusion_matrix(logits_fn(b).float(), b["labels"], num_classes)
    model.train(was)
    return scores_from_confusion(cm)


def _attention_products(teacher: nn.Module, mask: torch.Tensor, e_mac: float) -> LayerEnergy:
    """ANN attention products per forward: ``2 * L^2 * D`` MACs per layer and sequence (padded length L)."""
    B, L = mask.shape
    D = int(teacher.config.hidden_size)
    n = int(teacher.config.num_hidden_layers) * B * 2 * L * L * D
    return LayerEnergy(
        "attention products (QK^T, AV)", "matmul", "real", input_elements=0, input_nonzero=0, dense_macs=n,
        macs=n, acs=0, e_mac_pj=e_mac,
    )  # fmt: skip


def same_size_ann(config, num_labels: int | None = None) -> nn.Module:
    """A BERT classifier with the student's depth, width, heads, MLP width and vocabulary (random weights: only its
    operation count matters), the ANN the student's energy is headlined against."""
    from transformers import BertConfig, BertForSequenceClassification

    c = BertConfig(
        vocab_size=config.vocab_size, hidden_size=config.dim, num_hidden_layers=config.depth,
        num_attention_heads=config.num_heads, intermediate_size=int(config.dim * config.mlp_ratio),
        max_position_embeddings=512, num_labels=num_labels or max(config.num_labels, 2),
    )  # fmt: skip
    return BertForSequenceClassification(c).eval()


@torch.no_grad()
def ann_energy(
    model: nn.Module, loader, precision: str = "fp32", max_batches: int | None = 8
) -> EnergyReport:
    """Per-sample energy of an ANN (Hugging Face BERT-family) on ``loader``'s batches: linears + attention products."""
    model.eval()
    layers: list[LayerEnergy] = []
    n = 0
    with EnergyEstimator(model, precision, ann=True) as est:
        for i, b in enumerate(loader):
            if max_batches and i >= max_batches:
                break
            model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
            layers.append(_attention_products(model, b["attention_mask"], est.e_mac))
            n += b["input_ids"].shape[0]
        rep = est.report()
    attn = layers[0]
    for extra in layers[1:]:
        attn.dense_macs += extra.dense_macs
        attn.macs += extra.macs
    return EnergyReport([*rep.layers, attn], rep.precision, ann=True).per_sample(max(n, 1))


@torch.no_grad()
def energy_comparison(
    student: SpikeBERT,
    loader,
    teacher: nn.Module | None = None,
    precision: str = "fp32",
    max_batches: int | None = 8,
) -> dict[str, Any]:
    """Firing rates and per-sample energy of the student in both accountings, against the same-size ANN (headline)
    and, when given, the teacher."""
    student.eval()
    n = 0
    with (
        EnergyEstimator(student, precision, integer_as_ac=False) as est_mac,
        EnergyEstimator(student, precision, integer_as_ac=True) as est_ac,
        FiringRateMonitor(student) as mon,
    ):
        for i, b in enumerate(loader):
            if max_batches and i >= max_batches:
                break
            student(b["input_ids"], b["attention_mask"], return_representations=False)
            n += b["input_ids"].shape[0]
        snn = est_mac.report().per_sample(max(n, 1))
        snn_ac = est_ac.report().per_sample(max(n, 1))
        rates = mon.rates()
        mean_rate = mon.mean_rate()
    ann = ann_energy(same_size_ann(student.config), loader, precision, max_batches)
    out: dict[str, Any] = {
        "firing_rate": mean_rate,
        "firing_rates": rates,
        "student_energy_mj": snn.energy_mj,
        "student_energy_integer_as_ac_mj": snn_ac.energy_mj,
        "student_macs": snn.macs,
        "student_acs": snn.acs,
        "same_size_ann_energy_mj": ann.energy_mj,
        "energy_ratio_vs_same_size_ann": snn.ratio_to(ann),
        "energy_ratio_vs_same_size_ann_integer_as_ac": snn_ac.ratio_to(ann),
        "student_report": snn,
        "student_report_integer_as_ac": snn_ac,
        "same_size_ann_report": ann,
        "samples": n,
    }
    if teacher is not None:
        t = ann_energy(teacher, loader, precision, max_batches)
        out.update(
            teacher_energy_mj=t.energy_mj, teacher_macs=t.macs, teacher_report=t,
            energy_ratio_vs_teacher=snn.ratio_to(t), energy_ratio_vs_teacher_integer_as_ac=snn_ac.ratio_to(t),
        )  # fmt: skip
    return out


def run_evaluate(cfg: EvaluateConfig) -> dict[str, Any]:
    """The ``evaluate`` verb: score, firing rates and energy of a trained student on the dev or test split (JSON
    results; the per-layer energy tables are printed)."""
    res = evaluate_run(cfg)
    return {k: v for k, v in res.items() if not isinstance(v, EnergyReport)}


def evaluate_run(cfg: EvaluateConfig) -> dict[str, Any]:
    """:func:`run_evaluate` with the :class:`EnergyReport` objects kept (``*_report`` keys). The tokenizer and sizes
    come from the run folder; a data set whose label count differs is an error."""
    from spikebert.data import load_task_data, text_loader
    from spikebert.teacher import load_teacher, load_tokenizer

    if not cfg.checkpoint:
        raise DataError(
            "evaluate: the student run folder is required (spikebert evaluate RUN --data.data ...)"
        )
    overrides = {"time_steps": cfg.time_steps} if cfg.time_steps else {}
    student, conf = load_student(cfg.checkpoint, **overrides)
    tok = load_tokenizer(cfg.checkpoint)
    data = load_task_data(cfg.data)
    if data.num_labels != student.config.num_labels:
        raise DataError(
            f"{cfg.data.data}: {data.num_labels} labels, the student was trained on {student.config.num_labels}"
        )
    trained = conf.get("data") or {}
    for k in ("max_length", "padding", "tokenizer"):
        if (
            k in trained
            and trained[k] != getattr(cfg.data, k)
            and getattr(cfg.data, k) == getattr(type(cfg.data)(), k)
        ):
            setattr(cfg.data, k, trained[k])  # not set by the user: use the training value
        elif k in trained and trained[k] != getattr(cfg.data, k):
            raise DataError(
                f"data.{k}: the student was trained with {trained[k]!r}, not {getattr(cfg.data, k)!r}"
            )
    split = data.dev if cfg.split == "dev" else data.test
    if not len(split):
        raise DataError(f"{cfg.data.data}: the {cfg.split} split is empty")
    dl = text_loader(
        split.texts, split.labels, tok, batch_size=cfg.data.batch_size, max_length=cfg.data.max_length,
        shuffle=False, padding=cfg.data.padding,
    )  # fmt: skip
    logits_fn = lambda b: student(b["input_ids"], b["attention_mask"], return_representations=False).logits  # noqa: E731
    res: dict[str, Any] = {"split": cfg.split, **predict_scores(logits_fn, student, dl, data.num_labels)}
    teacher = None
    if cfg.teacher:
        teacher, _ = load_teacher(cfg.teacher, num_labels=data.num_labels)
        t_fn = lambda b: teacher(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits  # noqa: E731
        for k, v in predict_scores(t_fn, teacher, dl, data.num_labels).items():
            res[f"teacher_{k}"] = v
    e = energy_comparison(student, dl, teacher, cfg.precision, cfg.energy_batches or None)
    print(e["student_report"].table())
    print(e["same_size_ann_report"].table())
    if teacher is not None:
        print(e["teacher_report"].table())
    res.update(e)
    summary = {k: v for k, v in res.items() if isinstance(v, (int, float, str))}
    print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()))
    if cfg.out:
        write_json(Path(cfg.out), {k: v for k, v in res.items() if not isinstance(v, EnergyReport)})
    return res
