"""Verification (WESR, false-trigger rate, p-value vs a clean control; ownership report) and removal attempts.

WESR (``tenfold_core.metrics.watermark.wesr``) = share of held-out test inputs whose true label differs from the
target that the model assigns the target once the trigger is inserted. False-trigger rate = the same on inputs given
a strict subset of a combination trigger (or, for rare-word triggers, a decoy rare word that is not a trigger).

p-values (one-sided, H1: the suspect fires more than the null rate p0):
- ``binomial``: exact binomial test of the suspect's k hits in n against p0 = the control model's WESR on the same
  triggered inputs (floored at 1/n); without a control, p0 = the suspect's own target rate on the untriggered inputs.
- ``permutation``: the hit indicators of suspect and control are pooled and their labels permuted.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from plmwatermark.config import VerifyCommand
from plmwatermark.data import RARE_WORDS, Task, insert_words, load_tasks, strict_subset
from tenfold_core.data import make_text_dataloader
from tenfold_core.errors import ConfigError
from tenfold_core.io import atomic_write_text, write_json
from tenfold_core.metrics.watermark import false_trigger_rate, wesr

__all__ = ["predict", "clean_accuracy", "watermark_metrics", "trigger_sets", "p_values", "run_verify",
           "fine_prune", "reinit_top_layers"]  # fmt: skip


@torch.no_grad()
def predict(
    model, tok, texts: list[str], task: str, max_length: int = 64, batch_size: int = 64
) -> np.ndarray:
    model.eval()
    dl = make_text_dataloader(texts, None, tok, batch_size=batch_size, max_length=max_length, bucket=False)
    dev = next(model.parameters()).device
    out = [model(b["input_ids"].to(dev), b["attention_mask"].to(dev), task).argmax(-1).cpu() for b in dl]
    return torch.cat(out).numpy()


def clean_accuracy(model, tok, task: Task, max_length: int = 64) -> float:
    texts, labels = task.test
    return float((predict(model, tok, list(texts), task.name, max_length) == np.asarray(labels)).mean())


def trigger_sets(texts: list[str], key: dict, seed: int) -> tuple[list[str], list[str] | None]:
    """(triggered texts, decoy texts): the key's trigger inserted at random positions; decoys = strict subsets of a
    combination, or a non-trigger rare word for rare-word triggers."""
    rng = random.Random(seed)
    words = key["words"]
    if key["kind"] == "rare":
        trig = [insert_words(t, [rng.choice(words)] * int(key.get("insertions", 1)), rng) for t in texts]
        decoys = [w for w in RARE_WORDS if w not in words]
        dec = [insert_words(t, [rng.choice(decoys)], rng) for t in texts] if decoys else None
    else:
        trig = [insert_words(t, words, rng) for t in texts]
        dec = [insert_words(t, strict_subset(words, rng), rng) for t in texts]
    return trig, dec


def _target(key: dict, task: str, override: int | None = None) -> int:
    if override is not None:
        return int(override)
    return int(key["targets"].get(task, 1))


def watermark_metrics(model, tok, tasks: list[Task], key: dict, max_length: int = 64, seed: int = 0) -> dict:
    """Per task: clean accuracy, WESR, false-trigger rate, base rate (target share without the trigger)."""
    m: dict[str, float] = {}
    for t in tasks:
        texts, labels = list(t.test[0]), np.asarray(t.test[1])
        tgt = _target(key, t.name)
        if tgt >= t.num_labels:
            continue
        clean = predict(model, tok, texts, t.name, max_length)
        trig, dec = trigger_sets(texts, key, seed)
        m[f"clean_acc_{t.name}"] = float((clean == labels).mean())
        m[f"wesr_{t.name}"] = wesr(predict(model, tok, trig, t.name, max_length), labels, tgt)
        m[f"base_rate_{t.name}"] = wesr(clean, labels, tgt)
        if dec is not None:
            m[f"false_trigger_{t.name}"] = false_trigger_rate(
                predict(model, tok, dec, t.name, max_length), labels, tgt
            )
    return m


def p_values(hits: np.ndarray, null_rate: float, control_hits: np.ndarray | None = None, test: str = "binomial",
             permutations: int = 10000, seed: int = 0) -> float:  # fmt: skip
    """One-sided p-value that ``hits`` (0/1 per input) exceed the null (see the module docstring)."""
    from scipy.stats import binomtest

    n, k = len(hits), int(hits.sum())
    if n == 0:
        return float("nan")
    if test == "binomial":
        p0 = min(max(float(null_rate), 1.0 / n), 1.0 - 1e-12)
        return float(binomtest(k, n, p0, alternative="greater").pvalue)
    if control_hits is None:
        raise ConfigError("verify.test=permutation needs a control model (verify.control)")
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([hits, control_hits]).astype(float)
    obs = hits.mean() - control_hits.mean()
    count = 0
    for _ in range(permutations):
        rng.shuffle(pooled)
        count += pooled[:n].mean() - pooled[n:].mean() >= obs - 1e-12
    return (count + 1) / (permutations + 1)


def _model_hits(model, tok, texts, labels, task, key, tgt, max_length, seed):
    keep = labels != tgt
    v = [t for t, k in zip(texts, keep) if k]
    trig, dec = trigger_sets(v, key, seed)
    pt = predict(model, tok, trig, task, max_length)
    pc = predict(model, tok, v, task, max_length)
    pd = predict(model, tok, dec, task, max_length) if dec is not None else None
    return (
        (pt == tgt).astype(int),
        (pc == tgt).astype(int),
        (pd == tgt).astype(int) if pd is not None else None,
    )


def run_verify(cmd: VerifyCommand) -> dict[str, Any]:
    from plmwatermark.train import load_key, load_model_dir

    key = load_key(cmd.key_file)
    model, tok, conf = load_model_dir(cmd.suspect)
    task_name = cmd.task or next(iter(model.config.tasks))
    if task_name not in model.config.tasks:
        raise ConfigError(f"verify.task {task_name!r}: the suspect has heads {sorted(model.config.tasks)}")
    tasks = {t.name: t for t in load_tasks(cmd.data)}
    if task_name not in tasks:
        raise ConfigError(f"verify.task {task_name!r} is not among verify.data.tasks {sorted(tasks)}")
    task = tasks[task_name]
    tgt = _target(key, task_name, cmd.target)
    texts, labels = list(task.test[0]), np.asarray(task.test[1])
    ml = cmd.data.max_length
    hits, base, dec = _model_hits(model, tok, texts, labels, task_name, key, tgt, ml, cmd.seed)
    rep: dict[str, Any] = {
        "suspect": str(cmd.suspect), "task": task_name, "target": tgt, "trigger_kind": key["kind"], "n": int(len(hits)),
        "wesr": float(hits.mean()), "base_rate": float(base.mean()),
        "false_trigger_rate": float(dec.mean()) if dec is not None else None,
        "clean_acc": float((predict(model, tok, texts, task_name, ml) == labels).mean()), "test": cmd.test,
    }  # fmt: skip
    chits = None
    if cmd.control:
        control, ctok, _ = load_model_dir(cmd.control)
        if task_name not in control.config.tasks:
            raise ConfigError(f"verify.control has no head {task_name!r}")
        chits, cbase, _ = _model_hits(control, ctok, texts, labels, task_name, key, tgt, ml, cmd.seed)
        rep.update(
            control=str(cmd.control), control_wesr=float(chits.mean()), control_base_rate=float(cbase.mean())
        )
        rep["control_p_value"] = p_values(
            chits, float(cbase.mean()), None, "binomial"
        )  # control vs its base rate
    null = float(chits.mean()) if chits is not None else float(base.mean())
    rep["null_rate"] = null
    rep["p_value"] = p_values(hits, null, chits, cmd.test, cmd.permutations, cmd.seed)
    rep["alpha"] = cmd.alpha
    rep["ownership_claim"] = bool(rep["p_value"] < cmd.alpha)
    out = Path(cmd.out or Path(cmd.suspect) / "verify")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "ownership_report.json", rep)
    atomic_write_text(out / "ownership_report.md", _report_md(rep))
    return rep


def _report_md(r: dict) -> str:
    lines = [
        "# Ownership report", "",
        f"Suspect `{r['suspect']}`, task `{r['task']}`, target label {r['target']}, {r['trigger_kind']} trigger, "
        f"{r['n']} held-out inputs whose true label is not the target.", "",
        "| quantity | value |", "|---|---|",
        f"| WESR (triggered inputs -> target) | {r['wesr']:.4f} |",
        f"| target rate without the trigger | {r['base_rate']:.4f} |",
    ]  # fmt: skip
    if r.get("false_trigger_rate") is not None:
        lines.append(f"| false-trigger rate (decoy / partial trigger) | {r['false_trigger_rate']:.4f} |")
    if "control_wesr" in r:
        lines.append(f"| control model WESR | {r['control_wesr']:.4f} |")
        lines.append(f"| control p-value vs its own base rate | {r['control_p_value']:.3g} |")
    lines += [
        f"| clean accuracy | {r['clean_acc']:.4f} |",
        f"| p-value ({r['test']}, one-sided, null rate {r['null_rate']:.4f}) | {r['p_value']:.3g} |", "",
        f"**Ownership claim at alpha = {r['alpha']}: {'supported' if r['ownership_claim'] else 'not supported'}.**", "",
    ]  # fmt: skip
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ removal attempts
@torch.no_grad()
def fine_prune(model, tok, task: Task, fraction: float, max_length: int = 64) -> int:
    """Fine-pruning's pruning step: zero the last layer's FFN neurons least active on clean data (the caller then
    fine-tunes). Returns the number of neurons pruned."""
    layer = model.encoder.encoder.layer[-1]
    acts = []
    hook = layer.intermediate.register_forward_hook(lambda m, i, o: acts.append(o.abs().mean((0, 1))))
    predict(model, tok, list(task.train[0][:256]), task.name, max_length)
    hook.remove()
    mean = torch.stack(acts).mean(0)
    k = int(fraction * mean.numel())
    idx = mean.argsort()[:k]
    layer.intermediate.dense.weight[idx] = 0
    layer.intermediate.dense.bias[idx] = 0
    layer.output.dense.weight[:, idx] = 0
    return k


@torch.no_grad()
def reinit_top_layers(model, n: int) -> None:
    """Re-initialise the top ``n`` encoder layers (the caller then fine-tunes)."""
    for layer in model.encoder.encoder.layer[-n:]:
        for m in layer.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.normal_(0.0, model.encoder.config.initializer_range)
                m.bias.zero_()
            elif isinstance(m, torch.nn.LayerNorm):
                m.weight.fill_(1.0)
                m.bias.zero_()
