"""Decoding-time personality control: lexicon words -> token ids for any tokenizer, and a transformers
``LogitsProcessor`` that adds one precomputed bias vector per step (no Python loop over the lexicon per token).

    logits'_v = logits_v + gamma * sum_t |lambda_t| w_{t, sign lambda_t}(v) - gamma' * sum_t |lambda_t| w_{t, -sign}(v)

[infer] the paper's exact adjustment is not public: logit-space addition, the opposite-pole penalty gamma' and the
top-k / top-p restriction are our reconstruction, all parameters. Special tokens (EOS included) are never biased.
Multi-token words: ``first`` biases the first sub-token; ``sequence`` also biases sub-token k+1 right after the word's
sub-tokens 1..k were generated (the last tokens matched against every word prefix at once, no Python loop per step).
"""

from __future__ import annotations

import inspect
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
    they came (bit-identical). Works batched, greedy or sampling, with any causal LM's ``generate``.

    Per step (profiled, bench/README.md): one cached lookup of the bias already on the scores' device and dtype and
    one out-of-place add (the caller's logits are never written: ``generate(output_logits=True)`` keeps the raw
    ones). ``sequence`` mode adds one vectorised prefix match of the last tokens against every multi-token word
    and one ``scatter_add``; the top-k / top-p restriction finds each row's threshold with ``topk`` (doubling k
    for top-p) instead of sorting the vocabulary, and compares only the lexicon's tokens against it."""

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
        if multi_token not in ("first", "sequence"):
            raise ValueError(f"multi_token must be 'first' or 'sequence', got {multi_token!r}")
        self.lambdas = {t: float(v) for t, v in lambdas.items() if float(v) != 0.0}
        self.restrict_top_k, self.restrict_top_p = int(restrict_top_k), float(restrict_top_p)
        special = {int(i) for i in special_ids if i is not None and 0 <= int(i) < vocab_size}
        bias = torch.zeros(vocab_size, dtype=torch.float32)
        cont: dict[
            tuple[tuple[int, ...], int], float
        ] = {}  # (prefix, next sub-token) -> bonus, summed over traits
        for t, lam in self.lambdas.items():
            pole, other = ("high", "low") if lam > 0 else ("low", "high")
            for key, sign, scale in (((t, pole), 1.0, gamma), ((t, other), -1.0, opposite_penalty)):
                if scale == 0:
                    continue
                first: dict[int, float] = {}  # a token counts once per (trait, pole): its largest weight
                nxt: dict[tuple[tuple[int, ...], int], float] = {}
                for ids, w in mapped.get(key, []):
                    if ids[0] < vocab_size:
                        first[ids[0]] = max(first.get(ids[0], 0.0), w)
                    if multi_token == "sequence" and sign > 0:
                        for k in range(1, len(ids)):
                            if ids[k] < vocab_size and ids[k] not in special:
                                e = (tuple(ids[:k]), ids[k])
                                nxt[e] = max(nxt.get(e, 0.0), w)
                for i, w in first.items():
                    bias[i] += sign * scale * abs(lam) * w
                for e, w in nxt.items():
                    cont[e] = cont.get(e, 0.0) + scale * abs(lam) * w
        bias[sorted(special)] = 0.0
        self.bias = bias
        self.index = bias.nonzero().flatten()  # the tokens the bias touches
        # sequence mode: unique prefixes, right-aligned in a (P, L) table padded with -1
        prefixes = list(dict.fromkeys(p for p, _ in cont))
        width = max((len(p) for p in prefixes), default=0)
        pref = torch.full((len(prefixes), width), -1, dtype=torch.long)
        for r, p in enumerate(prefixes):
            pref[r, width - len(p) :] = torch.tensor(p)
        row = {p: r for r, p in enumerate(prefixes)}
        self.prefixes, self.prefix_len = pref, torch.tensor([len(p) for p in prefixes], dtype=torch.long)
        self.cont_prefix = torch.tensor([row[p] for p, _ in cont], dtype=torch.long)
        self.cont_token = torch.tensor([b for _, b in cont], dtype=torch.long)
        self.cont_value = torch.tensor(list(cont.values()), dtype=torch.float32)
        self.active = bool(self.lambdas) and (len(self.index) > 0 or len(cont) > 0)
        self._cache: dict = {}

    def _tensors(self, scores: torch.Tensor) -> dict:
        """The bias and tables on ``scores``' device and dtype, built once per (device, dtype, vocab width)."""
        key = (scores.device, scores.dtype, scores.shape[-1])
        c = self._cache.get(key)
        if c is None:
            v = scores.shape[-1]
            dense = torch.zeros(v, dtype=torch.float32)
            n = min(v, self.bias.shape[0])
            dense[:n] = self.bias[:n]
            idx = self.index[self.index < v]
            ok = self.cont_token < v
            c = {
                "bias": dense.to(device=scores.device, dtype=scores.dtype),
                "index": idx.to(scores.device),
                "values": self.bias[idx].to(device=scores.device, dtype=scores.dtype),
                "prefixes": self.prefixes.to(scores.device),
                "prefix_len": self.prefix_len.to(scores.device),
                "cont_prefix": self.cont_prefix[ok].to(scores.device),
                "cont_token": self.cont_token[ok].to(scores.device),
                "cont_value": self.cont_value[ok].to(device=scores.device, dtype=scores.dtype),
            }
            c["sequence"] = bool(len(c["cont_token"]))
            self._cache[key] = c
        return c

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if not self.active:
            return scores
        c = self._tensors(scores)
        restrict = self.restrict_top_k > 0 or self.restrict_top_p < 1.0
        if not restrict:
            out = scores + c["bias"]  # out of place: the caller's logits stay as they were
        else:
            thr = self._threshold(scores)
            add = c["values"] * (scores[:, c["index"]] >= thr)
            out = scores.index_add(-1, c["index"], add)
        if c["sequence"] and input_ids.shape[1] > 0:
            pref = c["prefixes"]
            w = min(pref.shape[1], input_ids.shape[1])
            if w < pref.shape[1]:
                pref = pref[:, pref.shape[1] - w :]
            # a prefix matches when all its (right-aligned) ids equal the last ids: padding (-1) never equals an id,
            # so "number of equal positions == prefix length" is the test (a prefix longer than the history fails)
            match = (input_ids[:, None, -w:] == pref).sum(-1) == c["prefix_len"]  # (B, P)
            tok = c["cont_token"].expand(scores.shape[0], -1)
            add = c["cont_value"] * match[:, c["cont_prefix"]]
            if restrict:
                add = add * (scores.gather(-1, tok) >= thr)
            out.scatter_add_(-1, tok, add)  # our own tensor
        return out

    sort_below = (
        4096  # top-p threshold: vocabularies up to this size are sorted, larger ones use a growing top-k
    )

    def _threshold(self, scores: torch.Tensor) -> torch.Tensor:
        """(B, 1): the lowest score still inside the original top-k and the original top-p nucleus of each row."""
        v = scores.shape[-1]
        thr = torch.full((scores.shape[0], 1), -float("inf"), device=scores.device, dtype=scores.dtype)
        if self.restrict_top_k > 0:
            thr = scores.topk(min(self.restrict_top_k, v), dim=-1).values[:, -1:]
        if self.restrict_top_p < 1.0:
            s = scores.float()
            if v <= self.sort_below:  # small vocabulary: one sort is cheapest
                k, top = v, s.sort(dim=-1, descending=True).values
                cum = top.softmax(-1).cumsum(-1)
            else:  # the nucleus is usually small: grow k until its mass is reached, sort only when it is not
                lse, k = s.logsumexp(-1, keepdim=True), min(64, v)
                while True:
                    top = s.topk(k, dim=-1).values if k < v else s.sort(dim=-1, descending=True).values
                    cum = (top - lse).exp().cumsum(-1)
                    if k == v or bool((cum[:, -1] >= self.restrict_top_p).all()):
                        break
                    k = 4 * k if 16 * k <= v else v
            last = (cum < self.restrict_top_p).sum(-1, keepdim=True).clamp(max=k - 1)  # first rank reaching p
            thr = torch.maximum(thr, top.gather(-1, last).to(scores.dtype))
        return thr


# transformers' LogitsProcessorList calls inspect.signature(processor.__call__) at every step (~24 us here);
# a precomputed signature makes that lookup ~4x cheaper
PersonalityLogitsProcessor.__call__.__signature__ = inspect.signature(PersonalityLogitsProcessor.__call__)


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
