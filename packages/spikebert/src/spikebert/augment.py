"""Stage-2 data augmentation: the rule-based augmentation of task-specific BERT distillation (Tang et al. 2019,
"Distilling Task-Specific Knowledge from BERT into Simple Neural Networks"), which the official SpikeBERT code consumes
as a ready-made ``data/<task>/train_augment.txt`` (``--data_augment True``; the file is not shipped).

For each training sentence, ``factor - 1`` synthetic sentences are drawn; each one is made by one pass over its units
(words, or characters for ``unit: char``): with probability ``p_mask`` a unit becomes the mask token, otherwise with
probability ``p_pos`` it is replaced by another unit of the same part-of-speech class, drawn from the unigram
distribution of that class (the two are exclusive per unit); then, with probability ``p_ngram``, the whole synthetic
sentence is cut to a random n-gram of it (n uniform in 1..``max_ngram``). A synthetic sentence keeps the label of the
sentence it came from (the ``sentence<TAB>label`` format of ``train_augment.txt``); in stage 2 the teacher's logits on
the synthetic sentence itself are the KL target, so the distillation terms see the teacher's view of it.

Part-of-speech classes (``tagger``): ``brill`` (the default for words) tags every sentence with Brill's tagger
(:mod:`spikebert.tagger`, Penn tags, offline) and a unit is swapped for a word seen with *the tag it has in that
sentence*; ``nltk`` does the same with ``nltk.pos_tag``, as the first author's augmentation script does
(``Lvchangze/snn``, ``data_preprocess/distill_augmentation.py``; nltk's tagger data must be installed); ``induced``
(the default for characters, e.g. Chinese) needs no tagger: each unit is described by the counts of its left and right
neighbours (among the most frequent units, plus sentence start and end) and the units are clustered by seeded k-means
(at most ``pos_classes`` classes; clusters whose centroids have cosine >= 0.9 are merged, so a large class is not split
arbitrarily): units that occur in the same positions (adjectives after "is"/"not", nouns after "the") share a class.

The replacement is drawn by the class's unigram frequencies (``replace: unigram``, Tang et al.'s "unigram distribution
re-normalized by POS tag", another word than the unit where the class has one) or uniformly over its distinct words
(``replace: types``: the script's ``random.choice`` over the words seen with the tag). The script's other choices are
switches: ``keep_original false`` (its file holds variants only), ``redraw false`` (``factor`` draws per sentence,
repeats dropped, instead of exactly ``factor - 1`` distinct variants) and ``labels random`` (it writes a random 0/1
label per variant; stage 2's CE term then fits noise: a bug, off by default).

Everything is deterministic given ``seed``: the same data and configuration give the same augmented set.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import numpy as np

from spikebert.config import AugmentConfig
from tenfold_core.errors import ConfigError, MissingExtra, require

__all__ = ["AugmentConfig", "TagClasses", "WordClasses", "augment_sentences", "augment_split"]

_BOS, _EOS = "\x02<s>", "\x03</s>"


def _units(text: str, unit: str, mask_token: str) -> list[str]:
    if unit != "char":
        return text.split()
    out: list[str] = []  # characters, but the mask token stays one unit
    for piece in text.split():
        while piece:
            if piece.startswith(mask_token):
                out.append(mask_token)
                piece = piece[len(mask_token) :]
            else:
                out.append(piece[0])
                piece = piece[1:]
    return out


def _join(units: Sequence[str], unit: str) -> str:
    return "".join(units) if unit == "char" else " ".join(units)


class WordClasses:
    """Part-of-speech-like classes induced from neighbour counts (seeded k-means), with each class's unigram
    distribution: :meth:`sample` draws a same-class replacement for a unit."""

    def __init__(
        self,
        sentences: Sequence[Sequence[str]],
        n_classes: int = 32,
        n_context: int = 200,
        seed: int = 0,
        merge: float = 0.9,
        replace: str = "unigram",
    ):
        self.replace = replace
        counts = Counter(u for s in sentences for u in s)
        self.vocab = sorted(counts, key=lambda u: (-counts[u], u))
        index = {u: i for i, u in enumerate(self.vocab)}
        context = [_BOS, _EOS, *self.vocab[:n_context]]
        cidx = {u: i for i, u in enumerate(context)}
        C = len(context)
        feats = np.zeros(
            (len(self.vocab), 2 * C), dtype=np.float64
        )  # left-neighbour counts | right-neighbour counts
        for s in sentences:
            padded = [_BOS, *s, _EOS]
            for j in range(1, len(padded) - 1):
                row = index[padded[j]]
                left, right = cidx.get(padded[j - 1]), cidx.get(padded[j + 1])
                if left is not None:
                    feats[row, left] += 1
                if right is not None:
                    feats[row, C + right] += 1
        feats = np.sqrt(feats)  # each side normalised on its own, so left and right context weigh the same
        for half in (feats[:, :C], feats[:, C:]):
            half /= np.maximum(np.linalg.norm(half, axis=1, keepdims=True), 1e-12)
        feats /= np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        self.labels = (
            _merge_similar(feats, _kmeans(feats, min(n_classes, len(self.vocab)), seed), merge)
            if len(self.vocab)
            else np.zeros(0, dtype=np.int64)
        )
        self.class_of = {u: int(self.labels[i]) for i, u in enumerate(self.vocab)}
        self.members = _members(
            {
                c: Counter({u: counts[u] for u in self.vocab if self.class_of[u] == c})
                for c in set(self.class_of.values())
            }
        )

    def keys(self, i: int, units: Sequence[str]) -> list:
        """The class of each unit of sentence ``i`` (a unit's class does not depend on its sentence)."""
        return [self.class_of.get(u) for u in units]

    def draw(self, key, unit: str, rng: random.Random) -> str:
        return _draw(self.members, key, unit, rng, self.replace)

    def sample(self, unit: str, rng: random.Random) -> str:
        """A unit of ``unit``'s class drawn by frequency, other than ``unit`` itself where the class has others."""
        return self.draw(self.class_of.get(unit), unit, rng)


class TagClasses:
    """Replacement classes from a part-of-speech tagger: a unit's class is its tag *in its sentence*; each tag's
    members are the words seen with it, with their counts."""

    def __init__(
        self, sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], replace: str = "unigram"
    ):
        self.tags = [list(t) for t in tags]
        self.replace = replace
        by_tag: dict[str, Counter] = {}
        for units, ts in zip(sentences, self.tags, strict=True):
            if len(units) != len(ts):
                raise ValueError("a tagger returned a tag count unlike the sentence's unit count")
            for u, t in zip(units, ts):
                by_tag.setdefault(t, Counter())[u] += 1
        self.members = _members(by_tag)

    def keys(self, i: int, units: Sequence[str]) -> list:
        return self.tags[i]

    def draw(self, key, unit: str, rng: random.Random) -> str:
        return _draw(self.members, key, unit, rng, self.replace)


def _members(by_class: dict) -> dict:
    """class -> (words sorted by frequency then spelling, cumulative unigram distribution)."""
    out = {}
    for c, cnt in by_class.items():
        words = sorted(cnt, key=lambda u: (-cnt[u], u))
        w = np.asarray([cnt[u] for u in words], dtype=np.float64)
        out[c] = (words, np.cumsum(w) / w.sum())
    return out


def _draw(members: dict, key, unit: str, rng: random.Random, replace: str) -> str:
    if key not in members:
        return unit
    words, cdf = members[key]
    if replace == "types":  # uniform over the distinct words of the class, the unit itself included
        return words[rng.randrange(len(words))]
    if len(words) == 1:
        return unit
    for _ in range(8):
        w = words[min(int(np.searchsorted(cdf, rng.random(), side="right")), len(words) - 1)]
        if w != unit:
            return w
    return unit


def _kmeans(x: np.ndarray, k: int, seed: int, iters: int = 25) -> np.ndarray:
    """Seeded k-means++ then Lloyd iterations on the rows of ``x`` (cosine geometry: rows are unit vectors)."""
    rng = np.random.default_rng(seed)
    n = len(x)
    centres = [x[rng.integers(n)]]
    d2 = np.sum((x - centres[0]) ** 2, axis=1)
    for _ in range(1, k):
        total = d2.sum()
        i = int(rng.choice(n, p=d2 / total)) if total > 0 else int(rng.integers(n))
        centres.append(x[i])
        d2 = np.minimum(d2, np.sum((x - x[i]) ** 2, axis=1))
    c = np.stack(centres)
    labels = np.zeros(n, dtype=np.int64)
    for it in range(iters):
        new = np.argmax(x @ c.T, axis=1)
        if it and np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = x[labels == j]
            if len(members):
                m = members.mean(axis=0)
                c[j] = m / max(np.linalg.norm(m), 1e-12)
    return labels


def _merge_similar(x: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    """Merge clusters whose mean directions have cosine >= ``threshold`` (k-means splits a large natural class when
    ``k`` exceeds the number of classes; the halves keep near-identical centroids)."""
    labels = labels.copy()
    while True:
        ids = np.unique(labels)
        if len(ids) < 2:
            return labels
        c = np.stack([x[labels == j].mean(axis=0) for j in ids])
        c /= np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
        sim = c @ c.T
        np.fill_diagonal(sim, -np.inf)
        a, b = np.unravel_index(int(np.argmax(sim)), sim.shape)
        if sim[a, b] < threshold:
            return labels
        labels[labels == ids[b]] = ids[a]


def _one(
    units: list[str], keys: list, cfg: AugmentConfig, classes, mask: str, rng: random.Random
) -> list[str]:
    out = []
    for u, k in zip(units, keys):
        x = rng.random()
        if x < cfg.p_mask:
            out.append(mask)
        elif x < cfg.p_mask + cfg.p_pos:
            out.append(classes.draw(k, u, rng))
        else:
            out.append(u)
    if out and rng.random() < cfg.p_ngram:
        n = min(rng.randint(1, cfg.max_ngram), len(out))
        start = rng.randint(0, len(out) - n)
        out = out[start : start + n]
    return out


def _classes(split: list[list[str]], cfg: AugmentConfig):
    tagger = cfg.tagger
    if tagger == "auto":
        tagger = "induced" if cfg.unit == "char" else "brill"
    if tagger == "induced":
        return WordClasses(split, cfg.pos_classes, seed=cfg.seed, replace=cfg.replace)
    if cfg.unit == "char":
        raise ConfigError(
            f"data.augment.tagger {tagger}: tags words, not characters (use induced with unit char)"
        )
    if tagger == "brill":
        from spikebert.tagger import brill_tagger

        tag = brill_tagger().tag
        return TagClasses(split, [tag(s) for s in split], cfg.replace)
    nltk = require("nltk", purpose="data.augment.tagger nltk")
    try:
        tags = [[t for _, t in nltk.pos_tag(s)] if s else [] for s in split]
    except LookupError:
        raise MissingExtra(
            "data.augment.tagger nltk: nltk's tagger data is not installed (python -m nltk.downloader "
            "averaged_perceptron_tagger_eng), or use --data.augment.tagger brill"
        ) from None
    return TagClasses(split, tags, cfg.replace)


def augment_sentences(
    texts: Sequence[str], labels: Sequence[int], cfg: AugmentConfig, mask_token: str = "[MASK]"
) -> tuple[list[str], list[int]]:
    """The original sentences followed, for each, by ``factor - 1`` synthetic ones with its label: exactly
    ``factor * len(texts)`` sentences. A synthetic sentence that repeats the original or an earlier variant is redrawn
    (up to 10 times; a very short sentence with few distinct variants may keep a repeat). With ``keep_original
    false`` the originals are left out and each sentence gets ``factor`` variants; with ``redraw false`` a repeat is
    dropped instead of redrawn (so a sentence may get fewer); with ``labels random`` each variant gets a label drawn
    uniformly from the labels present."""
    texts, labels = list(texts), list(labels)
    if len(texts) != len(labels):
        raise ValueError("texts and labels differ in length")
    if cfg.factor <= 1 or not texts:
        return texts, labels
    split = [_units(t, cfg.unit, mask_token) for t in texts]
    classes = _classes(split, cfg)
    label_set = sorted(set(labels))
    out_t, out_y = (list(texts), list(labels)) if cfg.keep_original else ([], [])
    draws = cfg.factor - 1 if cfg.keep_original else cfg.factor
    for i, (units, y) in enumerate(zip(split, labels, strict=True)):
        rng = random.Random(f"{cfg.seed}:{i}")  # one stream per sentence
        keys = classes.keys(i, units)
        seen = {_join(units, cfg.unit)} if cfg.keep_original else set()
        for _ in range(draws):
            s = _join(_one(units, keys, cfg, classes, mask_token, rng), cfg.unit)
            if not cfg.redraw:  # the script: a repeat of an earlier variant is dropped
                if s and s not in seen:
                    seen.add(s)
                    out_t.append(s)
                    out_y.append(rng.choice(label_set) if cfg.labels == "random" else y)
                continue
            for _retry in range(10):
                if s and s not in seen:
                    break
                s = _join(_one(units, keys, cfg, classes, mask_token, rng), cfg.unit)
            if not s:
                s = texts[i]
            seen.add(s)
            out_t.append(s)
            out_y.append(rng.choice(label_set) if cfg.labels == "random" else y)
    return out_t, out_y


def augment_split(split, cfg: AugmentConfig, mask_token: str = "[MASK]"):
    """:func:`augment_sentences` on a :class:`tenfold_core.data.TextSplit`, returning a new split."""
    from tenfold_core.data import TextSplit

    texts, labels = augment_sentences(split.texts, split.labels, cfg, mask_token)
    return TextSplit(texts, labels)
