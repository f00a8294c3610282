"""Generation metrics: corpus and mean per-sentence perplexity, Dist-n, corpus BLEU-1..4."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def simple_tokenize(text: str, lower: bool = True) -> list[str]:
    """Words and punctuation marks (a dependency-free stand-in for nltk.word_tokenize)."""
    return _TOKEN.findall(text.lower() if lower else text)


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100, shift: bool = True):
    """Per-sequence summed negative log-likelihood and token counts for a causal LM.

    ``logits`` ``[B, L, V]``, ``labels`` ``[B, L]``; with ``shift`` the logits at position t predict label t+1 (HF style).
    Returns ``(nll_sum [B], n_tokens [B])``.
    """
    if shift:
        logits, labels = logits[:, :-1], labels[:, 1:]
    mask = labels != ignore_index
    nll = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.clamp_min(0).reshape(-1), reduction="none"
    )
    nll = (nll.view(labels.shape) * mask).sum(1)
    return nll, mask.sum(1)


def corpus_perplexity(nll_sums: Sequence[float], n_tokens: Sequence[int]) -> float:
    """exp(total NLL / total tokens) over the corpus."""
    tot = float(sum(float(n) for n in n_tokens))
    return math.exp(sum(float(x) for x in nll_sums) / tot) if tot else float("nan")


def mean_sentence_perplexity(nll_sums: Sequence[float], n_tokens: Sequence[int]) -> float:
    """Mean over sentences of exp(sentence NLL / sentence tokens) (sentences with no token are skipped)."""
    vals = [math.exp(float(x) / float(n)) for x, n in zip(nll_sums, n_tokens) if float(n) > 0]
    return sum(vals) / len(vals) if vals else float("nan")


def _tok(corpus: Iterable[str | Sequence[str]]) -> list[list[str]]:
    return [simple_tokenize(s) if isinstance(s, str) else list(s) for s in corpus]


def distinct_n(corpus: Iterable[str | Sequence[str]], n: int) -> float:
    """Corpus-level Dist-n: distinct n-grams / all n-grams (a fraction; multiply by 100 for the papers' tables)."""
    grams = [tuple(toks[i : i + n]) for toks in _tok(corpus) for i in range(len(toks) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def corpus_bleu_n(
    hypotheses: Sequence[str | Sequence[str]],
    references: Sequence[str | Sequence[str] | Sequence[Sequence[str]]],
    n: int,
) -> float:
    """Cumulative corpus BLEU-n (uniform weights over 1..n-grams), nltk with smoothing method1 (epsilon 1e-12).

    Each reference entry is one text, a list of alternative texts, or a list of alternative token lists.
    Hypotheses are texts or token lists. Returns a fraction in [0, 1].
    """
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

    hyps = _tok(hypotheses)
    refs = []
    for r in references:
        refs.append([simple_tokenize(r)] if isinstance(r, str) else _tok(r))
    if len(refs) != len(hyps):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    weights = tuple([1.0 / n] * n)
    return float(
        corpus_bleu(refs, hyps, weights=weights, smoothing_function=SmoothingFunction(epsilon=1e-12).method1)
    )


def generation_report(hypotheses, references) -> dict[str, float]:
    out = {f"bleu_{n}": corpus_bleu_n(hypotheses, references, n) for n in (1, 2, 3, 4)}
    out["dist_1"] = distinct_n(hypotheses, 1)
    out["dist_2"] = distinct_n(hypotheses, 2)
    return out
