"""Evaluation: accuracy (MCC for CoLA-style tasks), firing rates, and the energy estimate of the student against
its teacher's ANN energy, with :mod:`tenfold_core.spiking`'s firing-rate monitor and MAC/AC energy estimator.

Energy accounting (per sample, both models on the same batches, padding included for both):

- student: ``E_MAC * MACs + E_AC * ACs``; layers fed with binary spikes (the first block's Q/K/V, the attention
  products on spikes, the MLP's second linear, ...) count accumulates, layers fed with real or integer values (the
  residual stream holds integer spike counts; the classifier sees LayerNorm outputs) count MACs, unless
  ``integer_as_ac`` (then ``|value|`` accumulates). The embedding lookup and the distillation heads (training only)
  cost nothing at inference.
- teacher: every ``nn.Linear`` as MACs, plus the attention products ``2 * L^2 * D`` MACs per layer, added
  analytically because Hugging Face computes them with a functional call rather than a module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spikebert.data import DataArgs, load_task_data
from spikebert.model import SpikeBERT, load_student
from spikebert.teacher import load_teacher
from tenfold_core.cli import arg
from tenfold_core.io import write_json
from tenfold_core.spiking import EnergyEstimator, EnergyReport, FiringRateMonitor, LayerEnergy

__all__ = ["EvaluateConfig", "evaluate_student", "energy_comparison", "run_evaluate"]


@dataclass
class EvaluateConfig:
    checkpoint: str = arg("", help="student run folder (distill-task / train-direct output)", positional=True)
    data: DataArgs = arg(factory=DataArgs)
    split: str = arg("test", help="dev or test")
    teacher: str | None = arg(
        None, help="fine-tuned teacher (run folder, model folder): its score and ANN energy"
    )
    precision: str = arg("fp32", help="energy preset: fp32, fp16 or int8")
    integer_as_ac: bool = arg(False, help="count integer-valued (residual) inputs as accumulates, not MACs")
    energy_batches: int = arg(8, help="batches used for firing rates and energy (0: all)")
    time_steps: int | None = arg(None, help="evaluate with another number of time steps")
    out: str | None = arg(None, help="write the results as JSON here")

    def __post_init__(self):
        if self.split not in ("dev", "test"):
            raise ValueError(f"split must be dev or test, got {self.split!r}")
        if self.precision not in ("fp32", "fp16", "int8"):
            raise ValueError(f"precision must be fp32, fp16 or int8, got {self.precision!r}")


@torch.no_grad()
def evaluate_student(student: SpikeBERT, loader, metric: str = "accuracy") -> dict[str, float]:
    from spikebert.train import score

    student.eval()
    logits, labels = [], []
    for b in loader:
        logits.append(student(b["input_ids"], b["attention_mask"], return_representations=False).logits)
        labels.append(b["labels"])
    lg, lb = torch.cat(logits), torch.cat(labels)
    return {"accuracy": score(lg, lb, "accuracy"), "mcc": score(lg, lb, "mcc"), metric: score(lg, lb, metric)}


def _attention_products(teacher: nn.Module, mask: torch.Tensor, e_mac: float) -> LayerEnergy:
    """ANN attention products per forward: ``2 * L^2 * D`` MACs per layer and sequence (padded length L)."""
    B, L = mask.shape
    D = int(teacher.config.hidden_size)
    n = int(teacher.config.num_hidden_layers) * B * 2 * L * L * D
    return LayerEnergy(
        "attention products (QK^T, AV)", "matmul", "real", input_elements=0, input_nonzero=0, dense_macs=n,
        macs=n, acs=0, e_mac_pj=e_mac,
    )  # fmt: skip


@torch.no_grad()
def energy_comparison(
    student: SpikeBERT,
    loader,
    teacher: nn.Module | None = None,
    precision: str = "fp32",
    integer_as_ac: bool = False,
    max_batches: int | None = 8,
) -> dict[str, Any]:
    """Firing rates and per-sample energy of the student (and of the teacher as an ANN) on ``loader``'s batches."""
    student.eval()
    n = 0
    with (
        EnergyEstimator(student, precision, integer_as_ac=integer_as_ac) as est,
        FiringRateMonitor(student) as mon,
    ):
        for i, b in enumerate(loader):
            if max_batches and i >= max_batches:
                break
            student(b["input_ids"], b["attention_mask"], return_representations=False)
            n += b["input_ids"].shape[0]
        snn = est.report().per_sample(max(n, 1))
        rates = mon.rates()
        mean_rate = mon.mean_rate()
    out: dict[str, Any] = {
        "firing_rate": mean_rate,
        "firing_rates": rates,
        "student_energy_mj": snn.energy_mj,
        "student_macs": snn.macs,
        "student_acs": snn.acs,
        "student_report": snn,
        "samples": n,
    }
    if teacher is not None:
        teacher.eval()
        layers: list[LayerEnergy] = []
        with EnergyEstimator(teacher, precision, ann=True) as est_t:
            for i, b in enumerate(loader):
                if max_batches and i >= max_batches:
                    break
                teacher(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
                layers.append(_attention_products(teacher, b["attention_mask"], est_t.e_mac))
            rep = est_t.report()
        attn = layers[0]
        for extra in layers[1:]:
            attn.dense_macs += extra.dense_macs
            attn.macs += extra.macs
        ann = EnergyReport([*rep.layers, attn], rep.precision, ann=True).per_sample(max(n, 1))
        out.update(
            teacher_energy_mj=ann.energy_mj,
            teacher_macs=ann.macs,
            teacher_report=ann,
            energy_ratio_vs_teacher=snn.ratio_to(ann),
        )
    return out


def run_evaluate(cfg: EvaluateConfig) -> dict[str, Any]:
    """The ``evaluate`` verb: score, firing rates and energy of a trained student on the dev or test split."""
    from spikebert.stages import _loader, load_tokenizer
    from spikebert.train import TeacherModule, predict_logits, score

    overrides = {"time_steps": cfg.time_steps} if cfg.time_steps else {}
    student, conf = load_student(cfg.checkpoint, **overrides)
    tok = load_tokenizer(cfg.checkpoint)
    data = load_task_data(cfg.data)
    if data.num_labels != student.config.num_labels:
        from tenfold_core.errors import DataError

        raise DataError(
            f"{cfg.data.data}: {data.num_labels} labels, the student was trained on {student.config.num_labels}"
        )
    split = data.dev if cfg.split == "dev" else data.test
    if not len(split):
        from tenfold_core.errors import DataError

        raise DataError(f"{cfg.data.data}: the {cfg.split} split is empty")
    dl = _loader(tok, split, cfg.data.max_length, cfg.data.batch_size, False, 0)
    res: dict[str, Any] = {"split": cfg.split, **evaluate_student(student, dl, cfg.data.metric)}
    teacher = None
    if cfg.teacher:
        teacher, _ = load_teacher(cfg.teacher, num_labels=data.num_labels)
        logits, labels = predict_logits(TeacherModule(teacher), dl)
        res["teacher_accuracy"] = score(logits, labels, "accuracy")
        res[f"teacher_{cfg.data.metric}"] = score(logits, labels, cfg.data.metric)
    e = energy_comparison(student, dl, teacher, cfg.precision, cfg.integer_as_ac, cfg.energy_batches or None)
    print(e["student_report"].table())
    if teacher is not None:
        print(e["teacher_report"].table())
    res.update({k: v for k, v in e.items() if not k.endswith("_report")})
    summary = {k: v for k, v in res.items() if not isinstance(v, dict)}
    print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()))
    if cfg.out:
        write_json(Path(cfg.out), res)
    return res
