"""Synonym (candidate substitution) sources, all offline and pluggable.

- :class:`EmbeddingSynonyms`: the K nearest neighbours of a word in a word-vector matrix, from a local GloVe /
  word2vec text file (:meth:`~EmbeddingSynonyms.from_vectors_file`), a ``.npy`` matrix plus a vocabulary file
  (:meth:`~EmbeddingSynonyms.from_npy`), or the victim's own input-embedding matrix
  (:meth:`~EmbeddingSynonyms.from_victim`, works for any HF model, no extra file). The neighbour table is computed
  once and cached on disk (keyed by a hash of the matrix, the vocabulary, K and the metric).
- :class:`WordNetSynonyms`: WordNet lemmas through nltk, when the WordNet data is installed locally.
- :class:`MaskedLMSynonyms`: BERT-Attack candidates from any local masked LM (context-dependent).

Every source gives at most ``k`` lower-case candidates, never the word itself; case is restored by the attack.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from tenfold_core.attack.text import WordText, recover_word_case
from tenfold_core.errors import ConfigError, DataError

__all__ = ["SynonymSource", "EmbeddingSynonyms", "WordNetSynonyms", "MaskedLMSynonyms", "DictSynonyms"]

_ALPHA_WORD = re.compile(r"^[a-z][a-z'\-]*$")


class SynonymSource:
    """Base class: ``candidates(word)`` for context-free sources; ``candidates_in_context(text, i)`` for all."""

    name = "synonyms"
    k = 50
    context_dependent = False

    def candidates(self, word: str) -> list[str]:
        raise NotImplementedError

    def candidates_in_context(self, text: WordText, i: int) -> list[str]:
        word = text.words[i]
        return [recover_word_case(c, word) for c in self.candidates(word)]

    def describe(self) -> str:
        return f"{self.name} (K={self.k})"


class DictSynonyms(SynonymSource):
    """A fixed table ``{word: [candidates]}`` (lower-case keys), capped at ``k``."""

    name = "table"

    def __init__(self, table: dict[str, Sequence[str]], k: int = 50):
        self.table = {w.lower(): [c.lower() for c in cs if c.lower() != w.lower()] for w, cs in table.items()}
        self.k = int(k)

    def candidates(self, word: str) -> list[str]:
        return self.table.get(word.lower(), [])[: self.k]


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha1 of a file's bytes (streamed)."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _neighbour_cache_dir() -> Path:
    from tenfold_core.attack.offline import cache_dir

    return cache_dir() / "attack" / "neighbours"


class EmbeddingSynonyms(SynonymSource):
    """K nearest neighbours in a word-vector matrix (``metric`` "cosine" or "euclidean").

    ``cache_key`` (e.g. a digest of the source files) replaces the hash of the matrix in the cache key.
    ``matrix`` ``[V, D]`` and ``words`` (row labels) define the space; neighbours are looked up for the lower-cased
    word. ``min_sim`` optionally drops neighbours whose cosine similarity is below it. ``cache`` (default on) stores
    the neighbour table under the tenfold cache folder (``cache_dir`` to choose another folder).
    """

    name = "embedding"

    def __init__(
        self,
        matrix,
        words: Sequence[str],
        k: int = 50,
        *,
        metric: str = "cosine",
        min_sim: float | None = None,
        cache: bool = True,
        cache_dir: str | Path | None = None,
        name: str | None = None,
        cache_key: str | None = None,
    ):
        m = np.asarray(matrix, dtype=np.float32)
        if m.ndim != 2 or m.shape[0] != len(words):
            raise ConfigError(f"EmbeddingSynonyms: matrix shape {m.shape} does not match {len(words)} words")
        if metric not in ("cosine", "euclidean"):
            raise ConfigError(f"EmbeddingSynonyms: metric must be 'cosine' or 'euclidean', got {metric!r}")
        if k < 1:
            raise ConfigError(f"EmbeddingSynonyms: k must be >= 1, got {k}")
        self.k, self.metric, self.min_sim = int(k), metric, min_sim
        self.words = [w.lower() for w in words]
        self.word2index = {}
        for i, w in enumerate(self.words):
            self.word2index.setdefault(w, i)
        self.matrix = m
        if name:
            self.name = name
        self.cache_path: Path | None = None
        if cache:
            h = hashlib.sha1()
            if cache_key:  # built from files: their digest stands for the matrix (no pass over its bytes)
                h.update(cache_key.encode())
            else:
                h.update(m.tobytes())
                h.update("\n".join(self.words).encode())
            h.update(f"|{self.k}|{metric}".encode())
            folder = Path(cache_dir) if cache_dir else _neighbour_cache_dir()
            self.cache_path = folder / f"nn-{h.hexdigest()[:20]}.npz"
        self.neighbours, self.similarities = self._load_or_compute()

    # ---------------------------------------------------------------------------------------------- table
    def _compute(self, max_block_elems: int = 1 << 26) -> tuple[np.ndarray, np.ndarray]:
        """Top-K neighbours by blocked matrix products: each block of rows scores against the whole vocabulary at
        once (``block x V`` at most ``max_block_elems`` floats, 256 MiB), then ``topk``."""
        x = torch.from_numpy(self.matrix)
        n = x.shape[0]
        k = min(self.k, n - 1)
        xn = torch.nn.functional.normalize(x, dim=1)
        sq = (x * x).sum(1)
        bs = int(max(1, min(4096, max_block_elems // max(n, 1))))
        nbrs = np.zeros((n, k), dtype=np.int32)
        sims = np.zeros((n, k), dtype=np.float32)
        with torch.inference_mode():
            for s in range(0, n, bs):
                e = min(s + bs, n)
                cos = xn[s:e] @ xn.T
                if self.metric == "cosine":
                    score = cos.clone()
                else:  # -squared distance, same order as -distance
                    score = 2 * (x[s:e] @ x.T) - sq[s:e, None] - sq[None, :]
                rows = torch.arange(e - s)
                score[rows, rows + s] = -float("inf")  # never the word itself
                top = score.topk(k, dim=1).indices
                nbrs[s:e] = top.numpy()
                sims[s:e] = cos.gather(1, top).numpy()
        return nbrs, sims

    def _load_or_compute(self) -> tuple[np.ndarray, np.ndarray]:
        if self.cache_path is not None and self.cache_path.is_file():
            try:
                with np.load(self.cache_path) as z:
                    return z["neighbours"], z["similarities"]
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache file is recomputed
        nbrs, sims = self._compute()
        if self.cache_path is not None:
            import io

            from tenfold_core.io import atomic_write_bytes

            buf = io.BytesIO()
            np.savez(buf, neighbours=nbrs, similarities=sims)
            try:
                atomic_write_bytes(self.cache_path, buf.getvalue())
            except OSError:
                pass  # caching is an optimisation
        return nbrs, sims

    def candidates(self, word: str) -> list[str]:
        i = self.word2index.get(word.lower())
        if i is None:
            return []
        out = []
        for j, s in zip(self.neighbours[i], self.similarities[i]):
            if self.min_sim is not None and s < self.min_sim:
                continue
            w = self.words[j]
            if w != self.words[i] and w not in out:
                out.append(w)
        return out[: self.k]

    def describe(self) -> str:
        return f"{self.name} nearest neighbours ({self.metric}, K={self.k}, {len(self.words)} words)"

    # ------------------------------------------------------------------------------------------ builders
    @classmethod
    def from_vectors_file(
        cls, path: str | Path, k: int = 50, max_words: int | None = None, **kw
    ) -> EmbeddingSynonyms:
        """GloVe (``word v1 v2 ...``) or word2vec text (same, after an ``N D`` header line) vectors."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: no such word-vector file")
        words, rows, dim = [], [], None
        with open(path, encoding="utf-8", errors="replace") as f:
            for ln, line in enumerate(f, 1):
                parts = line.rstrip("\n").rstrip().split(" ")
                if ln == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue  # word2vec header
                if len(parts) < 2:
                    continue
                if dim is None:
                    dim = len(parts) - 1
                if len(parts) - 1 != dim:
                    raise DataError(
                        f"{path} line {ln}: expected {dim} numbers after the word, found {len(parts) - 1}"
                    )
                try:
                    rows.append(np.asarray(parts[1:], dtype=np.float32))
                except ValueError:
                    raise DataError(f"{path} line {ln}: vector values must be numbers") from None
                words.append(parts[0])
                if max_words and len(words) >= max_words:
                    break
        if len(words) < 2:
            raise DataError(f"{path}: fewer than two word vectors")
        kw.setdefault("name", path.name)
        kw.setdefault("cache_key", f"{file_digest(path)}|{max_words}")
        return cls(np.stack(rows), words, k, **kw)

    @classmethod
    def from_npy(
        cls,
        matrix_path: str | Path,
        vocab_path: str | Path,
        k: int = 50,
        *,
        words_only: bool = True,
        **kw,
    ) -> EmbeddingSynonyms:
        """A ``.npy`` matrix ``[V, D]`` and a vocabulary file (one word a line, row order).

        With ``words_only`` (default) rows whose word is not alphabetic (punctuation, numbers, "?", "<unk>", ...)
        are dropped before the neighbour table is built, as :meth:`from_victim` does, so they are never
        candidates. The neighbour table is cached under a key made from the two files' contents."""
        matrix_path, vocab_path = Path(matrix_path), Path(vocab_path)
        for p in (matrix_path, vocab_path):
            if not p.is_file():
                raise DataError(f"{p}: no such file")
        m = np.load(matrix_path, allow_pickle=False, mmap_mode="r")
        words = vocab_path.read_text(encoding="utf-8").splitlines()
        if m.ndim != 2 or m.shape[0] != len(words):
            raise DataError(f"{vocab_path}: {len(words)} words but {matrix_path} has shape {m.shape}")
        if words_only:
            keep = [i for i, w in enumerate(words) if _ALPHA_WORD.match(w.lower())]
            if len(keep) < 2:
                raise DataError(f"{vocab_path}: fewer than two alphabetic words")
            if len(keep) < len(words):
                m, words = np.asarray(m[keep]), [words[i] for i in keep]
        kw.setdefault("name", matrix_path.name)
        kw.setdefault("cache_key", f"{file_digest(matrix_path)}|{file_digest(vocab_path)}|{int(words_only)}")
        return cls(np.array(m, dtype=np.float32), words, k, **kw)

    @classmethod
    def from_victim(cls, victim, tokenizer=None, k: int = 50, **kw) -> EmbeddingSynonyms:
        """Neighbours in a victim's input-embedding matrix, restricted to whole alphabetic word tokens (no special
        tokens, no ``##`` pieces; with a byte-level BPE or SentencePiece vocabulary, only word-initial tokens). ``victim`` is a :class:`Victim` or a ``transformers`` model (then give the
        tokenizer)."""
        from tenfold_core.attack.victim import Victim

        if not isinstance(victim, Victim):
            victim = Victim(victim, tokenizer)
        w, tokens = victim.input_embeddings()
        special = set(getattr(victim.tokenizer, "all_special_tokens", []))
        # byte-level BPE ("Ġword") and SentencePiece ("▁word") mark word starts; unmarked pieces continue a word
        marker = next((m for m in ("Ġ", "▁") if sum(t.startswith(m) for t in tokens) > 0.2 * len(tokens)), "")
        keep = [
            i
            for i, t in enumerate(tokens)
            if t and t not in special and t.startswith(marker) and _ALPHA_WORD.match(t[len(marker) :])
        ]
        words = [tokens[i][len(marker) :] for i in keep]
        if len(keep) < 2:
            raise ConfigError("from_victim: the tokenizer has fewer than two whole-word tokens")
        kw.setdefault("name", "victim input embeddings")
        return cls(w[keep], words, k, **kw)


class WordNetSynonyms(SynonymSource):
    """Single-word WordNet lemmas of every synset of the word (nltk; needs the local ``wordnet`` corpus)."""

    name = "wordnet"

    def __init__(self, k: int = 50):
        try:
            import nltk
            from nltk.corpus import wordnet

            nltk.data.find("corpora/wordnet")
            wordnet.ensure_loaded()
        except (ImportError, LookupError, OSError):
            raise ConfigError(
                "WordNetSynonyms: nltk's WordNet data is not installed locally "
                "(run python -m nltk.downloader wordnet once on a connected machine, or use another source)"
            ) from None
        self._wn = wordnet
        self.k = int(k)
        self._memo: dict[str, list[str]] = {}

    def candidates(self, word: str) -> list[str]:
        w = word.lower()
        if w not in self._memo:
            out = []
            for syn in self._wn.synsets(w):
                for lemma in syn.lemma_names():
                    c = lemma.lower()
                    if "_" not in c and c != w and c not in out and _ALPHA_WORD.match(c):
                        out.append(c)
            self._memo[w] = out
        return self._memo[w][: self.k]


class MaskedLMSynonyms(SynonymSource):
    """BERT-Attack candidates from a local masked LM (``transformers`` ``*ForMaskedLM`` + fast tokenizer).

    As in BERT-Attack, the *unmasked* text is fed once and the top-K tokens at each word's sub-token positions are the
    candidates: single-token words take the K best whole-word tokens; multi-token words take the K best combinations of
    the per-position top-K tokens ranked by summed log-probability (TextAttack computes that ranking but does not use
    it, a bug fixed here). One MLM forward per distinct text, cached.
    """

    name = "masked-lm"
    context_dependent = True

    def __init__(
        self, model, tokenizer, k: int = 50, *, device=None, max_length: int = 512, cache_size: int = 256
    ):
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError("MaskedLMSynonyms needs a fast tokenizer (offset mapping)")
        self.model, self.tokenizer, self.k = model, tokenizer, int(k)
        self.device = torch.device(device) if device else next(model.parameters()).device
        self.model.to(self.device).eval()
        self.max_length = max_length
        self._cache: OrderedDict[str, tuple] = OrderedDict()
        self.cache_size = cache_size
        vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        special = set(tokenizer.all_special_tokens)
        self._whole = np.array(
            [bool(t) and t not in special and bool(_ALPHA_WORD.match(t.lower())) for t in vocab]
        )
        self._piece = np.array([bool(t) and t.startswith("##") and t[2:].isalpha() for t in vocab])
        self._vocab = vocab

    def describe(self) -> str:
        return f"masked-LM top-K (K={self.k}, {type(self.model).__name__})"

    def _analyse(self, text: WordText):
        key = text.text
        if key in self._cache:
            return self._cache[key]
        raw = text.text
        enc = self.tokenizer(raw, return_offsets_mapping=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")  # fmt: skip
        offsets = enc.pop("offset_mapping")[0].tolist()
        enc = {k: v.to(self.device) for k, v in enc.items()}
        with torch.inference_mode():
            logp = self.model(**enc).logits[0].float().log_softmax(-1).cpu()
        # word char spans -> token positions
        spans, pos = [], len(text.seps[0])
        for w, sep in zip(text.words, text.seps[1:]):
            spans.append((pos, pos + len(w)))
            pos += len(w) + len(sep)
        word_tokens: list[list[int]] = []
        for s, e in spans:
            word_tokens.append([t for t, (a, b) in enumerate(offsets) if b > a and a >= s and b <= e])
        result = (logp, word_tokens)
        self._cache[key] = result
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return result

    def candidates(self, word: str) -> list[str]:
        raise ConfigError("MaskedLMSynonyms is context-dependent: use candidates_in_context(text, i)")

    def candidates_in_context(self, text: WordText, i: int) -> list[str]:
        logp, word_tokens = self._analyse(text)
        toks = word_tokens[i] if i < len(word_tokens) else []
        word = text.words[i]
        if not toks:
            return []
        k = self.k
        if len(toks) == 1:
            scores = logp[toks[0]].clone()
            scores[torch.from_numpy(~self._whole)] = -float("inf")
            out = []
            for t in scores.topk(min(len(scores), k + 1)).indices.tolist():
                if not np.isfinite(float(scores[t])):
                    break
                c = self._vocab[t].lower()
                if c != word.lower() and c not in out:
                    out.append(c)
            return [recover_word_case(c, word) for c in out[:k]]
        # multi-token word: beam over positions, first piece whole-word, later pieces '##'
        beams: list[tuple[float, list[int]]] = [(0.0, [])]
        for j, t in enumerate(toks):
            scores = logp[t].clone()
            allowed = self._whole if j == 0 else self._piece
            scores[torch.from_numpy(~allowed)] = -float("inf")
            top = scores.topk(min(k, len(scores)))
            cand = [(float(v), int(ix)) for v, ix in zip(top.values, top.indices) if np.isfinite(float(v))]
            beams = sorted(((b + v, ids + [ix]) for b, ids in beams for v, ix in cand), key=lambda x: -x[0])[
                :k
            ]
        out = []
        for _, ids in beams:
            pieces = [self._vocab[ix] for ix in ids]
            c = (pieces[0] + "".join(p[2:] for p in pieces[1:])).lower()
            if c != word.lower() and c not in out:
                out.append(c)
        return [recover_word_case(c, word) for c in out[:k]]
