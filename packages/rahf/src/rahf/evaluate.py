"""Evaluation: win rate by log-likelihood margin on held-out pairs, perplexity drift on neutral text, an optional
reward model, greedy samples.

Win rate: the fraction of held-out pairs where log p(chosen | x) > log p(rejected | x) (ties count one half), with the
plain chat template (no system prompt). For GPU users the README gives lm-evaluation-harness and AlpacaEval commands.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from rahf.config import EvaluateCommand, PrefDataConfig
from rahf.data import Pair, encode, get_splits, neutral_texts

__all__ = ["loglik", "win_rate", "perplexity", "samples", "reward_scores", "evaluate"]


@torch.no_grad()
def loglik(model, tok, prompts, responses, dcfg: PrefDataConfig, mean: bool = False, batch_size: int = 64):
    from rahf.losses import token_logprobs

    model.eval()
    out = []
    for s in range(0, len(prompts), batch_size):
        enc = encode(tok, prompts[s : s + batch_size], responses[s : s + batch_size], dcfg)
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        tot, n, _ = token_logprobs(logits, enc["input_ids"], enc["response_mask"])
        out.append(tot / n if mean else tot)
    return torch.cat(out)


def win_rate(model, tok, pairs: Sequence[Pair], dcfg: PrefDataConfig, margin: str = "sum") -> float:
    prompts = [p.prompt for p in pairs]
    c = loglik(model, tok, prompts, [p.chosen for p in pairs], dcfg, margin == "mean")
    r = loglik(model, tok, prompts, [p.rejected for p in pairs], dcfg, margin == "mean")
    return float(((c > r).float() + 0.5 * (c == r).float()).mean())


def perplexity(model, tok, rows: Sequence[tuple[str, str]], dcfg: PrefDataConfig) -> float:
    """exp(mean NLL per response token) of (prompt, text) rows."""
    from rahf.losses import token_logprobs

    model.eval()
    tot, cnt = 0.0, 0.0
    with torch.no_grad():
        for s in range(0, len(rows), 64):
            chunk = rows[s : s + 64]
            enc = encode(tok, [r[0] for r in chunk], [r[1] for r in chunk], dcfg)
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
            lp, n, _ = token_logprobs(logits, enc["input_ids"], enc["response_mask"])
            tot += float(lp.sum())
            cnt += float(n.sum())
    return math.exp(-tot / max(cnt, 1.0))


@torch.no_grad()
def samples(model, tok, prompts: Sequence[str], dcfg: PrefDataConfig, max_new_tokens: int = 24) -> list[str]:
    model.eval()
    enc = encode(tok, list(prompts), None, dcfg, padding_side="left")
    out = model.generate(
        input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], max_new_tokens=max_new_tokens,
        do_sample=False, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
    )  # fmt: skip
    return [tok.decode(o[enc["input_ids"].shape[1] :], skip_special_tokens=True).strip() for o in out]


@torch.no_grad()
def reward_scores(reward_dir: str, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
    """Scores of a sequence-classification reward model (logit of its first label) on ``prompt + response``."""
    from transformers import AutoModelForSequenceClassification

    from tenfold_core.models import load_pretrained

    rm, rtok = load_pretrained(reward_dir, AutoModelForSequenceClassification, with_tokenizer=True)
    rm.eval()
    if rtok.pad_token is None:
        rtok.pad_token = rtok.eos_token
    texts = [f"{p}\n\n{r}" for p, r in zip(prompts, responses, strict=True)]
    scores = []
    for s in range(0, len(texts), 16):
        enc = rtok(texts[s : s + 16], return_tensors="pt", padding=True, truncation=True, max_length=512)
        scores += rm(**enc).logits[:, 0].float().tolist()
    return scores


def evaluate(cfg: EvaluateCommand) -> dict:
    from rahf.model import load_policy
    from tenfold_core.io import write_json

    model, tok = load_policy(cfg.run)
    test = get_splits(cfg.data)["test"]
    out: dict = {
        "run": cfg.run,
        "test_pairs": len(test),
        "win_rate": win_rate(model, tok, test, cfg.data, cfg.margin),
    }
    neutral = neutral_texts() if cfg.data.source == "synthetic" else [(p.prompt, p.chosen) for p in test[:64]]
    out["perplexity"] = perplexity(model, tok, neutral, cfg.data)
    if cfg.reference:
        ref, rtok = load_policy(cfg.reference)
        out["reference_win_rate"] = win_rate(ref, rtok, test, cfg.data, cfg.margin)
        out["reference_perplexity"] = perplexity(ref, rtok, neutral, cfg.data)
        out["perplexity_ratio"] = out["perplexity"] / out["reference_perplexity"]
        del ref
    prompts = [p.prompt for p in test[: cfg.samples]]
    gens = samples(model, tok, prompts, cfg.data, cfg.max_new_tokens) if prompts else []
    out["samples"] = [{"prompt": p, "response": g} for p, g in zip(prompts, gens, strict=True)]
    if cfg.reward_model:
        out["reward_mean"] = sum(reward_scores(cfg.reward_model, prompts, gens)) / max(len(gens), 1)
    write_json(Path(cfg.out) if cfg.out else Path(cfg.run) / "eval.json", out)
    return out
