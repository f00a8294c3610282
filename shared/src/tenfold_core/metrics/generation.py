"""Generation metrics: corpus and mean per-sentence perplexity, Dist-n, corpus BLEU-1..4, ROUGE-L."""

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


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences (dynamic programming, O(len a * len b))."""
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l_sentence(
    hypothesis: str | Sequence[str], reference: str | Sequence[str], beta: float = 1.0
) -> float:
    """Sentence ROUGE-L F-measure: P = LCS/|hyp|, R = LCS/|ref|, F = (1+beta^2) P R / (R + beta^2 P).

    ``beta = 1`` (F1) is Google's ``rouge_score`` rougeL used by the empathetic-dialogue papers. Texts are tokenized
    with :func:`simple_tokenize`; token lists are used as given. Empty hypothesis or reference gives 0.
    """
    h = simple_tokenize(hypothesis) if isinstance(hypothesis, str) else list(hypothesis)
    r = simple_tokenize(reference) if isinstance(reference, str) else list(reference)
    lcs = lcs_length(h, r)
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(h), lcs / len(r)
    b2 = beta * beta
    return (1 + b2) * p * rec / (rec + b2 * p)


def rouge_l(
    hypotheses: Sequence[str | Sequence[str]],
    references: Sequence[str | Sequence[str] | Sequence[Sequence[str]]],
    beta: float = 1.0,
) -> float:
    """Mean sentence ROUGE-L F (a fraction; x100 for the papers' tables). As in :func:`corpus_bleu_n`, each
    reference entry is one text, a list of alternative texts, or a list of alternative token lists; with
    alternatives the best-matching one counts. Hypotheses are texts or token lists."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        return float("nan")
    scores = []
    for h, r in zip(hypotheses, references):
        alts = [r] if isinstance(r, str) else list(r)
        scores.append(max((rouge_l_sentence(h, a, beta) for a in alts), default=0.0))
    return sum(scores) / len(scores)
