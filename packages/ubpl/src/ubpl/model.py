"""Decoding-time personality control: lexicon words -> token ids for any tokenizer, and a transformers
``LogitsProcessor`` that adds one precomputed bias vector per step (no Python loop over the lexicon per token).

    logits'_v = logits_v + gamma * sum_t |lambda_t| w_{t, sign lambda_t}(v) - gamma' * sum_t |lambda_t| w_{t, -sign}(v)

[infer] the paper's exact adjustment is not public: logit-space addition, the opposite-pole penalty gamma' and the
top-k / top-p restriction are our reconstruction, all parameters. Special tokens (EOS included) are never biased.
Multi-token words: ``first`` biases the first sub-token; ``sequence`` also biases sub-token k+1 right after sub-token k
was generated (a table keyed by the previous token: one lookup per row per step).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from transformers import LogitsProcessor

from ubpl.config import TRAITS, parse_lambdas

__all__ = ["word_forms", "map_lexicon", "PersonalityLogitsProcessor", "build_processor"]


def word_forms(word: str, forms: Sequence[str] = ("space", "plain", "capital")) -> list[str]:
    out = []
    if "space" in forms:
        out.append(" " + word)
    if "plain" in forms:
        out.append(word)
    if "capital" in forms:
        out += [" " + word.capitalize(), word.capitalize()] if "space" in forms else [word.capitalize()]
    return list(dict.fromkeys(out))


def map_lexicon(lexicon: Mapping, tokenizer, forms: Sequence[str] = ("space", "plain", "capital")) -> dict:
    """``{(trait, pole): [(token ids of a word form, weight), ...]}`` (unknown-token pieces dropped)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    out: dict = {}
    for t, poles in lexicon.items():
        for s, words in poles.items():
            seqs = []
            for w, x in words.items():
                for f in word_forms(w, forms):
                    ids = tokenizer(f, add_special_tokens=False)["input_ids"]
                    if ids and (unk is None or unk not in ids):
                        seqs.append((tuple(int(i) for i in ids), float(x)))
            out[(t, s)] = list(dict.fromkeys(seqs))
    return out


class PersonalityLogitsProcessor(LogitsProcessor):
    """Adds a precomputed bias to the next-token logits. ``lambdas = {}`` or all zeros: the scores are returned as
    they came (bit-identical). Works batched, greedy or sampling, with any causal LM's ``generate``."""

    def __init__(
        self,
        mapped: Mapping,
        vocab_size: int,
        lambdas: Mapping[str, float],
        gamma: float = 5.0,
        opposite_penalty: float = 0.0,
        special_ids: Sequence[int] = (),
        multi_token: str = "first",
        restrict_top_k: int = 0,
        restrict_top_p: float = 1.0,
    ):
        for t, lam in lambdas.items():
            if t not in TRAITS or not -1.0 <= float(lam) <= 1.0:
                raise ValueError(f"lambda for {t!r} must be a trait in O, C, E, A, N with a value in [-1, 1]")
        self.lambdas = {t: float(v) for t, v in lambdas.items() if float(v) != 0.0}
        self.restrict_top_k, self.restrict_top_p = int(restrict_top_k), float(restrict_top_p)
        bias = torch.zeros(vocab_size, dtype=torch.float32)
        self.next_table: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        nxt: dict[int, dict[int, float]] = {}
        for t, lam in self.lambdas.items():
            pole, other = ("high", "low") if lam > 0 else ("low", "high")
            for key, sign, scale in (((t, pole), 1.0, gamma), ((t, other), -1.0, opposite_penalty)):
                if scale == 0:
                    continue
                first: dict[int, float] = {}
                for ids, w in mapped.get(key, []):
                    if ids[0] < vocab_size:
                        first[ids[0]] = max(
                            first.get(ids[0], 0.0), w
                        )  # a token counts once per (trait, pole)
                    if multi_token == "sequence" and sign > 0:
                        for a, b in zip(ids[:-1], ids[1:], strict=True):
                            row = nxt.setdefault(a, {})
                            row[b] = row.get(b, 0.0) + scale * abs(lam) * w
                for i, w in first.items():
                    bias[i] += sign * scale * abs(lam) * w
        special = [i for i in special_ids if i is not None and 0 <= i < vocab_size]
        bias[special] = 0.0
        for a, row in nxt.items():
            ids = torch.tensor([b for b in row if b not in set(special)], dtype=torch.long)
            if len(ids):
                self.next_table[a] = (ids, torch.tensor([row[int(b)] for b in ids], dtype=torch.float32))
        self.bias = bias
        self.active = bool(self.lambdas) and bool(bias.abs().sum() > 0 or self.next_table)
        self._cache: dict = {}

    def _bias_for(self, scores: torch.Tensor) -> torch.Tensor:
        key = (scores.device, scores.dtype)
        if key not in self._cache:
            b = self.bias.to(device=scores.device, dtype=scores.dtype)
            if b.shape[0] < scores.shape[-1]:
                b = torch.nn.functional.pad(b, (0, scores.shape[-1] - b.shape[0]))
            self._cache[key] = b[: scores.shape[-1]]
        return self._cache[key]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if not self.active:
            return scores
        bias = self._bias_for(scores).expand_as(scores)
        if self.next_table and input_ids.shape[1] > 0:
            extra = torch.zeros_like(scores)
            for r, last in enumerate(input_ids[:, -1].tolist()):
                hit = self.next_table.get(last)
                if hit is not None:
                    extra[r, hit[0].to(scores.device)] = hit[1].to(scores.device, scores.dtype)
            bias = bias + extra
        if self.restrict_top_k > 0 or self.restrict_top_p < 1.0:
            bias = bias * self._allowed(scores)
        return scores + bias

    def _allowed(self, scores: torch.Tensor) -> torch.Tensor:
        keep = torch.ones_like(scores, dtype=torch.bool)
        if self.restrict_top_k > 0:
            k = min(self.restrict_top_k, scores.shape[-1])
            kth = scores.topk(k, dim=-1).values[..., -1:]
            keep &= scores >= kth
        if self.restrict_top_p < 1.0:
            sorted_s, idx = scores.sort(dim=-1, descending=True)
            cum = sorted_s.softmax(-1).cumsum(-1)
            drop_sorted = (cum - sorted_s.softmax(-1)) >= self.restrict_top_p
            drop = torch.zeros_like(keep).scatter(-1, idx, drop_sorted)
            keep &= ~drop
        return keep.to(scores.dtype)


def build_processor(
    lexicon: Mapping, tokenizer, steer, vocab_size: int | None = None
) -> PersonalityLogitsProcessor:
    """A processor from a lexicon, a tokenizer and a :class:`~ubpl.config.SteerConfig`."""
    mapped = map_lexicon(lexicon, tokenizer, steer.forms)
    return PersonalityLogitsProcessor(
        mapped, vocab_size or len(tokenizer), parse_lambdas(steer.lambdas), steer.gamma, steer.opposite_penalty,
        special_ids=list(getattr(tokenizer, "all_special_ids", [])) + [tokenizer.eos_token_id],
        multi_token=steer.multi_token, restrict_top_k=steer.restrict_top_k, restrict_top_p=steer.restrict_top_p,
    )  # fmt: skip
