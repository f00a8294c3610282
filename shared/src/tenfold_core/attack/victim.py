"""Victim models for attacks: one query interface over HF classifiers and plain functions, plus randomised defenses.

A victim maps a list of texts to class probabilities. :class:`Victim` batches the texts, runs the model under
``torch.inference_mode`` on its device, caches outputs per text (cleared per attacked example by the runner, so memory
stays bounded) and counts both the texts asked for (``num_queries``, the attack's query count) and the texts the model
really ran (``num_forward``). :class:`EnsembleVictim` (SAFER / RanMASK / DNE style: average logits or vote over N random
perturbations of each query) and :class:`EOTVictim` (expectation over the randomness of a stochastic model, e.g. an IB
model that samples z at test time) wrap any victim or function.
"""

from __future__ import annotations

import hashlib
import random
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
import torch

from tenfold_core.errors import ConfigError

__all__ = [
    "Victim",
    "EnsembleVictim",
    "EOTVictim",
    "random_mask_perturbation",
    "random_synonym_perturbation",
    "as_victim",
]


def _to_probs(out, n: int) -> np.ndarray:
    if hasattr(out, "logits"):
        out = out.logits
    if isinstance(out, (list, tuple)):
        out = torch.as_tensor(np.asarray(out, dtype=np.float32))
    out = torch.as_tensor(out).detach().float().cpu()
    if out.ndim != 2 or out.shape[0] != n:
        raise ValueError(f"victim returned shape {tuple(out.shape)} for {n} texts; expected [N, num_classes]")
    # logits -> probabilities; rows that already are probabilities are kept (TextAttack does the same check)
    rows_sum = out.sum(-1)
    is_prob = bool((out >= 0).all().item()) and torch.allclose(rows_sum, torch.ones_like(rows_sum), atol=1e-4)
    return (out if is_prob else out.softmax(-1)).numpy().astype(np.float64)


class Victim:
    """Query interface to a classifier.

    ``model`` is a ``transformers`` sequence classifier (give its ``tokenizer``) or any callable
    ``f(list[str]) -> logits or probabilities [N, C]`` (tensor, array or nested list). ``max_length`` truncates
    tokenised inputs (default: the tokenizer's ``model_max_length`` capped at 512). A module is moved to ``device``
    (default: where its parameters are) and put in eval mode.
    """

    def __init__(
        self,
        model: Callable | torch.nn.Module,
        tokenizer=None,
        *,
        batch_size: int = 128,
        max_length: int | None = None,
        device: str | torch.device | None = None,
        cache_size: int = 2**16,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = int(batch_size)
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.num_queries = 0
        self.num_forward = 0
        self.is_module = isinstance(model, torch.nn.Module)
        if self.is_module and tokenizer is None:
            raise ConfigError("Victim: an nn.Module victim needs its tokenizer (or pass a function of texts)")
        if self.is_module:
            if device is None:
                try:
                    device = next(model.parameters()).device
                except StopIteration:
                    device = "cpu"
            self.device = torch.device(device)
            model.to(self.device).eval()
            tmax = getattr(tokenizer, "model_max_length", 512) or 512
            self.max_length = int(max_length or min(int(tmax), 512))
        else:
            self.device = torch.device(device or "cpu")
            self.max_length = max_length

    # -------------------------------------------------------------------------------------------- model calls
    def _forward(self, texts: list[str]) -> np.ndarray:
        if not self.is_module:
            return _to_probs(self.model(list(texts)), len(texts))
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        enc = {
            k: v.to(self.device) for k, v in enc.items() if k != "token_type_ids" or self._takes_token_types
        }
        with torch.inference_mode():
            out = self.model(**enc)
        return _to_probs(out, len(texts))

    @property
    def _takes_token_types(self) -> bool:
        return getattr(getattr(self.model, "config", None), "type_vocab_size", 0) > 1

    def probs(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities ``[N, C]`` for ``texts`` (cached per text; counts ``len(texts)`` queries)."""
        texts = list(texts)
        self.num_queries += len(texts)
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        for i in range(0, len(todo), self.batch_size):
            chunk = todo[i : i + self.batch_size]
            out = self._forward(chunk)
            self.num_forward += len(chunk)
            for t, p in zip(chunk, out):
                self._cache[t] = p
        result = np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 0))
        for t in todo:
            self._cache.move_to_end(t)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return result

    __call__ = probs

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.probs(texts).argmax(-1)

    def clear_cache(self) -> None:
        self._cache.clear()

    def reset_counts(self) -> None:
        self.num_queries = 0
        self.num_forward = 0

    # --------------------------------------------------------------------------------------- embedding access
    def input_embeddings(self) -> tuple[np.ndarray, list[str]]:
        """The victim's input-embedding matrix and the token of each row (HF models only)."""
        if not self.is_module or not hasattr(self.model, "get_input_embeddings"):
            raise ConfigError(
                "input_embeddings: the victim is not a transformers model with input embeddings"
            )
        w = self.model.get_input_embeddings().weight.detach().float().cpu().numpy()
        vocab = self.tokenizer.get_vocab()
        tokens = [""] * w.shape[0]
        for tok, i in vocab.items():
            if 0 <= i < len(tokens):
                tokens[i] = tok
        return w, tokens


def as_victim(model, tokenizer=None, **kw) -> Victim:
    """``model`` itself when it already is a victim, else ``Victim(model, tokenizer, **kw)``."""
    if isinstance(model, (Victim, EnsembleVictim, EOTVictim)):
        return model
    return Victim(model, tokenizer, **kw)


# ----------------------------------------------------------------------------------------- randomised defenses
def _text_rng(text: str, seed: int, k: int) -> random.Random:
    h = hashlib.blake2b(f"{seed}|{k}|{text}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(h, "little"))


def random_mask_perturbation(
    rate: float = 0.9, mask_token: str = "[MASK]"
) -> Callable[[str, random.Random], str]:
    """RanMASK-style: each whitespace token is replaced by ``mask_token`` with probability ``rate``."""

    def perturb(text: str, rng: random.Random) -> str:
        return " ".join(mask_token if rng.random() < rate else w for w in text.split())

    return perturb


def random_synonym_perturbation(synonyms, rate: float = 1.0) -> Callable[[str, random.Random], str]:
    """SAFER-style: each word that has candidates in ``synonyms`` (a :class:`SynonymSource` or a dict) is replaced
    by a uniformly chosen member of {word} + its candidates, with probability ``rate``."""
    lookup = synonyms.candidates if hasattr(synonyms, "candidates") else (lambda w: list(synonyms.get(w, [])))

    def perturb(text: str, rng: random.Random) -> str:
        out = []
        for w in text.split():
            cands = lookup(w.lower()) if rng.random() < rate else []
            out.append(rng.choice([w, *cands]) if cands else w)
        return " ".join(out)

    return perturb


class _WrapperBase:
    """Shared cache/count behaviour of defense wrappers (they are victims themselves)."""

    def __init__(self, base, cache_size: int = 2**16):
        self.base = base
        self.num_queries = 0
        self.num_forward = 0
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def _base_probs(self, texts: list[str]) -> np.ndarray:
        if hasattr(self.base, "probs"):
            return self.base.probs(texts)
        return _to_probs(self.base(texts), len(texts))

    def _compute_many(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def probs(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        self.num_queries += len(texts)
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            for t, p in zip(todo, self._compute_many(todo)):
                self._cache[t] = p
            self.num_forward += len(todo)
        out = np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 0))
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    __call__ = probs

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.probs(texts).argmax(-1)

    def clear_cache(self) -> None:
        self._cache.clear()
        if hasattr(self.base, "clear_cache"):
            self.base.clear_cache()

    def reset_counts(self) -> None:
        self.num_queries = 0
        self.num_forward = 0


class EnsembleVictim(_WrapperBase):
    """Answer every query with an ensemble over ``n`` random perturbations of the text (SAFER, RanMASK, DNE).

    ``perturb(text, rng) -> text``; ``mode="logits"`` averages the base probabilities, ``"vote"`` returns the vote
    shares of the base predictions. The perturbations of a text are drawn from an RNG seeded by ``(seed, text)``, so
    the same query gets the same answer (TextDefender's attacker also sees one answer per text through its cache).
    """

    def __init__(self, base, perturb: Callable[[str, random.Random], str], n: int = 100, mode: str = "logits",
                 seed: int = 0):  # fmt: skip
        super().__init__(base)
        if mode not in ("logits", "vote"):
            raise ConfigError(f"EnsembleVictim: mode must be 'logits' or 'vote', got {mode!r}")
        if n < 1:
            raise ConfigError(f"EnsembleVictim: n must be >= 1, got {n}")
        self.perturb, self.n, self.mode, self.seed = perturb, int(n), mode, int(seed)

    def _compute_many(self, texts: list[str]) -> np.ndarray:
        copies = []
        for t in texts:
            rng = _text_rng(t, self.seed, 0)
            copies.extend(self.perturb(t, rng) for _ in range(self.n))
        p = self._base_probs(copies).reshape(len(texts), self.n, -1)
        if self.mode == "logits":
            return p.mean(1)
        votes = np.stack([np.bincount(row, minlength=p.shape[2]) for row in p.argmax(-1)]).astype(np.float64)
        return votes / votes.sum(-1, keepdims=True)


class EOTVictim(_WrapperBase):
    """Expectation over transformation for a stochastic model: the mean probability over ``n`` calls.

    ``base`` is a function of texts (or a victim) whose output is random (e.g. samples z at test time); it is
    called ``n`` times per batch of new texts. With ``seed`` set, ``torch`` is re-seeded from the batch's texts so
    repeated runs give the same answers.
    """

    def __init__(self, base, n: int = 10, seed: int | None = 0):
        super().__init__(base)
        if n < 1:
            raise ConfigError(f"EOTVictim: n must be >= 1, got {n}")
        self.n, self.seed = int(n), seed

    def _compute_many(self, texts: list[str]) -> np.ndarray:
        if self.seed is not None:
            torch.manual_seed(_text_rng("\n".join(texts), self.seed, 1).getrandbits(63))
        total = None
        for _ in range(self.n):
            if hasattr(self.base, "clear_cache"):
                self.base.clear_cache()  # a cached base would return the same draw n times
            p = self._base_probs(texts)
            total = p if total is None else total + p
        return total / self.n
