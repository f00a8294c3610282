"""Evaluation: clean accuracy (deterministic z = mu and sampled z), attacks under the shared protocol
(``tenfold_core.attack``) against the deterministic model, the sampled model (one draw per query, as TextAttack's
cache sees the official code's model) and the sampled model under EOT (mean probability over ``attack.eot`` draws per
query: the attack sees the expectation)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ibrobust.config import AttackCommand, AttackConfig, EvaluateCommand
from tenfold_core.errors import ConfigError, DataError

__all__ = [
    "load_trained",
    "SampledView",
    "predict_logits",
    "accuracy",
    "clean_accuracy",
    "evaluate",
    "make_victims",
    "protocol_of",
    "attack",
    "attack_model",
]


def load_trained(run_dir: str | Path):
    """``(model, tokenizer, config dict)`` of a run folder written by ``ibrobust train``."""
    from ibrobust.data import load_tokenizer

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise DataError(f"{run_dir}: no config.json (not a run folder written by ibrobust train)")
    from tenfold_core.models import load_run

    run = load_run(run_dir)
    model, conf = run.model, run.config
    model.eval()
    return model, load_tokenizer(run_dir), conf


class SampledView(nn.Module):
    """The same network, always sampling z (the official code's inference)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def forward(self, **kw):
        return self.model(**kw, sample=True)


@torch.inference_mode()
def predict_logits(
    model, tokenizer, texts, sample: bool = False, batch_size: int = 128, max_length: int = 128
):
    model.eval()
    dev = next(model.parameters()).device
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[i : i + batch_size]), padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")  # fmt: skip
        out.append(
            model(
                input_ids=enc["input_ids"].to(dev),
                attention_mask=enc["attention_mask"].to(dev),
                sample=sample,
            )
            .logits.float()
            .cpu()  # fmt: skip
        )
    return torch.cat(out) if out else torch.zeros(0, 2)


def accuracy(logits: torch.Tensor, labels) -> float:
    return (
        100.0 * float((logits.argmax(-1) == torch.as_tensor(labels)).float().mean())
        if len(labels)
        else math.nan
    )


def clean_accuracy(
    model, tokenizer, texts, labels, *, samples: int = 5, seed: int = 0, max_length: int = 128
):
    """Deterministic accuracy, sampled accuracy (mean and std over ``samples`` draws) and whether two deterministic
    passes agree exactly."""
    det = predict_logits(model, tokenizer, texts, False, max_length=max_length)
    det2 = predict_logits(model, tokenizer, texts, False, max_length=max_length)
    accs = []
    if model.config.bottleneck:
        torch.manual_seed(seed)
        for _ in range(samples):
            accs.append(
                accuracy(predict_logits(model, tokenizer, texts, True, max_length=max_length), labels)
            )
    res = {
        "clean_acc_deterministic": accuracy(det, labels),
        "deterministic_repeatable": bool(torch.equal(det, det2)),
    }
    if accs:
        res["clean_acc_sampled"] = float(np.mean(accs))
        res["clean_acc_sampled_std"] = float(np.std(accs))
        res["sampled_minus_deterministic"] = res["clean_acc_sampled"] - res["clean_acc_deterministic"]
    return res


def _split(data, split):
    s = data.test if split == "test" else data.dev
    if len(s) == 0:
        raise DataError(f"the data set has no {split} split")
    return s


def _check_data(conf: dict, data_cfg) -> None:
    trained = (conf.get("data") or {}).get("source")
    if trained is not None and trained != data_cfg.source:
        raise ConfigError(f"data.source is {data_cfg.source!r} but the run was trained on {trained!r}")


def evaluate(cfg: EvaluateCommand) -> dict:
    from ibrobust.data import load_data

    model, tok, conf = load_trained(cfg.run)
    _check_data(conf, cfg.data)
    split = _split(load_data(cfg.data), cfg.split)
    res = clean_accuracy(model, tok, split.texts, split.labels, samples=cfg.samples, seed=cfg.seed,
                         max_length=model.config.max_length)  # fmt: skip
    return {"run": str(cfg.run), "split": cfg.split, "n": len(split), **res}


def protocol_of(acfg: AttackConfig):
    """The attack section as the harness's protocol (the core's :meth:`AttackConfig.protocol`)."""
    return acfg.protocol()


def make_victims(model, tokenizer, modes, eot: int = 10, seed: int = 0):
    """``{mode: victim}`` for deterministic / sampled / eot."""
    from tenfold_core.attack import EOTVictim, Victim

    ml = model.config.max_length
    out = {}
    for m in modes:
        if m == "deterministic":
            out[m] = Victim(model, tokenizer, max_length=ml)
        elif not model.config.bottleneck:
            continue  # a plain classifier has nothing to sample
        elif m == "sampled":
            out[m] = Victim(SampledView(model), tokenizer, max_length=ml)
        else:
            out[m] = EOTVictim(Victim(SampledView(model), tokenizer, max_length=ml), n=eot, seed=seed)
    return out


def attack_model(model, tokenizer, texts, labels, acfg: AttackConfig, modes=("deterministic",), *,
                 synthetic: bool = False, out_dir: str | Path | None = None) -> dict:  # fmt: skip
    """``{mode: summary}`` under the shared protocol; one synonym table and encoder for every mode."""
    from tenfold_core.attack import Victim
    from tenfold_core.attack.evaluation import attack_summary, default_local_encoder, resolve_synonyms

    base = Victim(model, tokenizer, max_length=model.config.max_length)
    synonyms = resolve_synonyms(acfg.synonyms, base, synthetic=synthetic, k=acfg.k)
    encoder = default_local_encoder(base, synonyms)
    proto = protocol_of(acfg)
    results = {}
    for mode, victim in make_victims(model, tokenizer, modes, acfg.eot).items():
        out = Path(out_dir) / f"{acfg.recipe}-{mode}.jsonl" if out_dir else None
        width = 1 if mode == "sampled" else acfg.width  # one draw per query, examples in order
        results[mode] = attack_summary(victim, texts, labels, proto, synonyms, encoder, out=out, width=width)
    return results


def attack(cfg: AttackCommand) -> dict:
    from ibrobust.data import load_data

    model, tok, conf = load_trained(cfg.run)
    _check_data(conf, cfg.data)
    split = _split(load_data(cfg.data), "test")
    out = cfg.out or str(Path(cfg.run) / "attack")
    res = attack_model(model, tok, split.texts, split.labels, cfg.attack, cfg.modes,
                       synthetic=cfg.data.source == "synthetic", out_dir=out)  # fmt: skip
    return {"run": str(cfg.run), "records": out, **{f"{m}": s for m, s in res.items()}}
