"""Evaluation: MPI-style questionnaire per trait, lexicon hit rate and trait score of generated text, perplexity
under the unmodified model, distinct-n; ``compare`` = lexicon steering vs a persona prompt vs no control.

Questionnaire [infer, MPI protocol]: prompt "Given a statement of you: 'You {item}.' ... (A) Very Accurate ...
(E) Very Inaccurate. Answer:"; the next-token distribution over the option letters, after the steering processor,
gives the expected answer (A = 5 ... E = 1, reversed for key = -1); a trait's score is the mean over its items.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ubpl.lexicon import words_of

__all__ = ["generate_texts", "lexicon_scores", "distinct_n", "perplexity", "questionnaire", "MPI_TEMPLATE"]

MPI_TEMPLATE = (
    'Given a statement of you: "You {item}." Please choose from the following options to identify how accurately '
    "this statement describes you.\nOptions:\n(A) Very Accurate\n(B) Moderately Accurate\n"
    "(C) Neither Accurate Nor Inaccurate\n(D) Moderately Inaccurate\n(E) Very Inaccurate\nAnswer: ("
)


def _device(model):
    return next(model.parameters()).device


def _encode(tok, prompts, persona, chat, device=None):
    from tenfold_core.llm import encode_prompt_response

    use_chat = chat and bool(getattr(tok, "chat_template", None))
    if not use_chat and persona:
        prompts = [f"{persona}\n{p}" for p in prompts]
    enc = encode_prompt_response(tok, prompts, None, system=persona if use_chat else None, chat=use_chat,
                                 padding_side="left")  # fmt: skip
    return {k: v.to(device) for k, v in enc.items()} if device is not None else enc


@torch.no_grad()
def generate_texts(model, tok, prompts: Sequence[str], processor=None, max_new_tokens: int = 40,
                   persona: str | None = None, chat: bool = True, sample: bool = False, seed: int = 0,
                   streamer=None, temperature: float = 1.0, top_p: float = 1.0) -> list[str]:  # fmt: skip
    from transformers import LogitsProcessorList

    enc = _encode(tok, list(prompts), persona, chat, _device(model))
    torch.manual_seed(seed)
    kw = {"temperature": temperature, "top_p": top_p} if sample else {}
    out = model.generate(
        input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], max_new_tokens=max_new_tokens,
        do_sample=sample, logits_processor=LogitsProcessorList([processor] if processor is not None else []),
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, streamer=streamer, **kw,
    )  # fmt: skip
    return [tok.decode(o[enc["input_ids"].shape[1] :], skip_special_tokens=True) for o in out]


def lexicon_scores(texts: Sequence[str], lexicon: dict, trait: str) -> dict[str, float]:
    """hit rates of the trait's high / low words per generated word, and the weighted trait score
    (sum of high weights - sum of low weights) per word."""
    hi, lo = lexicon.get(trait, {}).get("high", {}), lexicon.get(trait, {}).get("low", {})
    n = h = l_ = 0
    score = 0.0
    for t in texts:
        for w in words_of(t):
            n += 1
            if w in hi:
                h += 1
                score += hi[w]
            if w in lo:
                l_ += 1
                score -= lo[w]
    n = max(n, 1)
    return {"hit_high": h / n, "hit_low": l_ / n, "trait_score": score / n}


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    grams, total = set(), 0
    for t in texts:
        w = t.split()
        for i in range(len(w) - n + 1):
            grams.add(tuple(w[i : i + n]))
            total += 1
    return len(grams) / total if total else 0.0


@torch.no_grad()
def perplexity(model, tok, prompts: Sequence[str], texts: Sequence[str], chat: bool = True) -> float:
    """Perplexity of the generated ``texts`` given their prompts under the (unmodified) ``model``."""
    from tenfold_core.llm import encode_prompt_response, sequence_logprobs

    use_chat = chat and bool(getattr(tok, "chat_template", None))
    enc = encode_prompt_response(tok, list(prompts), list(texts), chat=use_chat, add_eos=False)
    enc = {k: v.to(_device(model)) for k, v in enc.items()}
    s, n = sequence_logprobs(model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits,
                             enc["input_ids"], enc["response_mask"])  # fmt: skip
    return math.exp(-float(s.sum()) / max(float(n.sum()), 1.0))


@torch.no_grad()
def questionnaire(model, tok, items, processor=None, persona: str | None = None, chat: bool = True) -> dict:
    """Mean score (1-5) per trait and the per-trait SD of item scores."""
    letters = []
    for c in "ABCDE":
        ids = tok(c, add_special_tokens=False)["input_ids"]
        letters.append(ids[0])
    values = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0])
    per: dict[str, list[float]] = {}
    prompts = [MPI_TEMPLATE.format(item=text) for text, _, _ in items]
    for s in range(0, len(prompts), 16):
        enc = _encode(tok, prompts[s : s + 16], persona, chat, _device(model))
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits[:, -1].float()
        if processor is not None:
            logits = processor(enc["input_ids"], logits)
        p = logits[:, letters].float().softmax(-1)
        exp = (p * values.to(p.device)).sum(-1)
        for (_, trait, key), e in zip(items[s : s + 16], exp.tolist(), strict=True):
            per.setdefault(trait, []).append(e if key == 1 else 6.0 - e)
    out = {}
    for t, v in per.items():
        m = sum(v) / len(v)
        out[f"{t}_mean"] = m
        out[f"{t}_sd"] = math.sqrt(sum((x - m) ** 2 for x in v) / len(v))
    return out
