"""One call for packages that report robustness: attack a victim under the protocol and return a flat summary.

:func:`resolve_synonyms` picks the synonym source from a short spec ("auto", "victim", "sentiment", a vectors file),
:func:`default_local_encoder` the sentence encoder (mean input embeddings of the victim: offline and cheap; the
threshold used is always written into the summary), and :func:`attack_summary` runs :func:`run_attack` (resumable
records when ``out`` is given) and returns Clean / AUA / Suc / #Query plus the protocol line and the example count.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tenfold_core.attack.recipes import AttackProtocol
from tenfold_core.errors import ConfigError

__all__ = ["resolve_synonyms", "default_local_encoder", "attack_summary"]


def resolve_synonyms(spec: str, victim=None, *, synthetic: bool = False, k: int = 50):
    """``auto``: the synthetic-language table on synthetic data, else the victim's input embeddings; ``victim``;
    ``sentiment``; or a path to a GloVe / word2vec text file (``.npy`` + ``.vocab`` beside it also works)."""
    from tenfold_core.attack.synonyms import EmbeddingSynonyms
    from tenfold_core.attack.toy import sentiment_synonyms

    if spec == "sentiment" or (spec == "auto" and synthetic):
        return sentiment_synonyms(k)
    if spec in ("auto", "victim"):
        if victim is None:
            raise ConfigError("synonyms: 'victim' needs a victim model")
        return EmbeddingSynonyms.from_victim(victim, k=k)
    p = Path(spec)
    if p.suffix == ".npy":
        vocab = p.with_suffix(".vocab")
        if not vocab.is_file():
            vocab = p.with_suffix(".txt")
        return EmbeddingSynonyms.from_npy(p, vocab, k=k)
    return EmbeddingSynonyms.from_vectors_file(p, k=k)


def default_local_encoder(victim, synonyms=None):
    """Mean word vectors of ``synonyms`` (an embedding source) or of the victim's input embeddings."""
    from tenfold_core.attack.similarity import WordVectorMeanEncoder

    if synonyms is not None and hasattr(synonyms, "matrix"):
        return WordVectorMeanEncoder.from_synonyms(synonyms)
    base = victim
    while not hasattr(base, "input_embeddings") and hasattr(base, "base"):
        base = base.base
    if hasattr(base, "input_embeddings"):
        w, tokens = base.input_embeddings()
        return WordVectorMeanEncoder(w, tokens, name="mean input embeddings of the victim")
    raise ConfigError("no local sentence encoder: pass one")


def attack_summary(
    victim,
    texts: Sequence[str],
    labels: Sequence[int],
    protocol: AttackProtocol,
    synonyms,
    encoder=None,
    *,
    out: str | os.PathLike | None = None,
    width: int = 1,
) -> dict:
    """Attack ``protocol.n_examples`` sampled test texts; returns ``{clean_acc, aua, success_rate, mean_queries,
    perturbed_word_pct, n, n_requested, protocol, seconds}`` (percentages as in the paper tables)."""
    import time

    from tenfold_core.attack.runner import run_attack, summarize
    from tenfold_core.attack.search import GreedyWordSwapAttack

    if encoder is None:
        encoder = default_local_encoder(victim, synonyms)
    attack = GreedyWordSwapAttack(victim, synonyms, protocol, encoder)
    t0 = time.perf_counter()
    records = run_attack(attack, texts, labels, out, batch_examples=width)
    s = dict(summarize(records))
    s["n_requested"] = protocol.n_examples
    s["seconds"] = round(time.perf_counter() - t0, 3)
    s["protocol"] = protocol.describe(synonyms, encoder)
    return s
