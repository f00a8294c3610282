"""Attacks under the shared protocol (``tenfold_core.attack``). Randomised defenses (RanMASK) are attacked two ways:
``ensemble`` (the ensemble's randomness seeded by the text, so a query always gets the same answer: TextDefender's
wrapper) and ``eot`` (a fresh random ensemble per call, averaged over ``attack.eot`` calls per query)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from tenfold_core.errors import DataError
from textdefender.config import AttackCommand, AttackConfig

__all__ = ["load_trained", "protocol_of", "victims_of", "attack_model", "attack", "clean_accuracy"]


def load_trained(run_dir):
    from transformers import AutoTokenizer

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or not (run_dir / "tokenizer").is_dir():
        raise DataError(
            f"{run_dir}: no config.json / tokenizer (not a run folder written by textdefender train)"
        )
    from tenfold_core.models import load_run

    run = load_run(run_dir)
    model, conf = run.model, run.config
    model.eval()
    if (run_dir / "synonyms.json").is_file() and isinstance(conf.get("defense"), dict):
        conf["defense"]["synonym_file"] = str(run_dir / "synonyms.json")  # the defender's table (SAFER, DNE)
    return model, AutoTokenizer.from_pretrained(str(run_dir / "tokenizer")), conf


def protocol_of(acfg: AttackConfig):
    """The attack section as the harness's protocol (the core's :meth:`AttackConfig.protocol`)."""
    return acfg.protocol()


def _aggregate(p: np.ndarray, mode: str) -> np.ndarray:
    """``p [texts, copies, classes]`` -> per-text probabilities: the mean (``mode="logits"``) or the vote shares."""
    if mode == "logits":
        return p.mean(1)
    votes = np.stack([np.bincount(r, minlength=p.shape[2]) for r in p.argmax(-1)]).astype(np.float64)
    return votes / votes.sum(-1, keepdims=True)


class _FreshEnsemble:
    """RanMASK ensemble with fresh randomness on every call (for EOT)."""

    def __init__(self, base, perturb, n, mode, seed=0):
        self.base, self.perturb, self.n, self.mode = base, perturb, n, mode
        self.rng = random.Random(seed)

    def __call__(self, texts):
        copies = [self.perturb(t, self.rng) for t in texts for _ in range(self.n)]
        return _aggregate(self.base.probs(copies).reshape(len(texts), self.n, -1), self.mode)


def victims_of(model, tokenizer, defense: dict, eot: int = 4) -> dict:
    """``{mode: victim}``: ``plain`` for deterministic defenses; ``ensemble`` and ``eot`` for RanMASK."""
    from tenfold_core.attack import EnsembleVictim, EOTVictim, Victim, random_mask_perturbation

    base = Victim(model, tokenizer, max_length=model.config.max_length)
    if defense.get("name") in ("safer", "dne"):  # synonym ensembles (textdefender.defenses)
        from textdefender.defenses import defense_victims

        return defense_victims(model, tokenizer, defense, eot)
    if defense.get("name") != "ranmask":
        return {"plain": base}
    perturb = random_mask_perturbation(defense.get("mask_rate", 0.9), tokenizer.mask_token or "[MASK]")
    n, mode = int(defense.get("ensemble", 100)), defense.get("vote", "logits")
    ens = EnsembleVictim(base, perturb, n=n, mode=mode)
    ens.input_embeddings = base.input_embeddings
    fresh = EOTVictim(_FreshEnsemble(base, perturb, n, mode), n=eot, seed=0)
    fresh.input_embeddings = base.input_embeddings
    return {"ensemble": ens, "eot": fresh}


def clean_accuracy(victim, texts, labels) -> float:
    pred = victim.predict(list(texts))
    return 100.0 * float(np.mean(pred == np.asarray(labels))) if len(labels) else float("nan")


def attack_model(model, tokenizer, texts, labels, acfg: AttackConfig, defense: dict, *, synthetic=False,
                 out_dir=None, modes=None) -> dict:  # fmt: skip
    from tenfold_core.attack import Victim
    from tenfold_core.attack.evaluation import attack_summary, default_local_encoder, resolve_synonyms

    plain = Victim(model, tokenizer, max_length=model.config.max_length)
    synonyms = resolve_synonyms(acfg.synonyms, plain, synthetic=synthetic, k=acfg.k)
    encoder = default_local_encoder(plain, synonyms)
    proto = protocol_of(acfg)
    res = {}
    for mode, victim in victims_of(model, tokenizer, defense, acfg.eot).items():
        if modes and mode not in modes:
            continue
        out = Path(out_dir) / f"{acfg.recipe}-{mode}.jsonl" if out_dir else None
        res[mode] = attack_summary(victim, texts, labels, proto, synonyms, encoder, out=out, width=acfg.width)
    return res


def attack(cfg: AttackCommand) -> dict:
    from textdefender.data import load_data

    model, tok, conf = load_trained(cfg.run)
    trained = (conf.get("data") or {}).get("source")
    if trained is not None and trained != cfg.data.source:
        from tenfold_core.errors import ConfigError

        raise ConfigError(f"data.source is {cfg.data.source!r} but the run was trained on {trained!r}")
    test = load_data(cfg.data).test
    if len(test) == 0:
        raise DataError(f"{cfg.data.source}: no test split")
    out = cfg.out or str(Path(cfg.run) / "attack")
    res = attack_model(model, tok, test.texts, test.labels, cfg.attack, conf.get("defense") or {},
                       synthetic=cfg.data.source == "synthetic", out_dir=out)  # fmt: skip
    return {"run": str(cfg.run), "records": out, "defense": (conf.get("defense") or {}).get("name"), **res}
