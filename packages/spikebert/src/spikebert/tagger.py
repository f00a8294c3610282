"""A Penn Treebank part-of-speech tagger that runs offline: Brill's transformation-based tagger, driven by the rule
and lexicon files of Brill's tagger v1.14 as distributed (BSD) with Pattern and TextBlob.

The stage-2 augmentation swaps a word for another word *of the same tag*; the first author's augmentation script
(`Lvchangze/snn`, ``data_preprocess/distill_augmentation.py``) tags with ``nltk.pos_tag``, whose model is not on
PyPI. Brill's tagger gives the same Penn tag set from data that is: TextBlob's wheel ships the three files
(``en-lexicon.txt``, ``en-morphology.txt``, ``en-context.txt``). Only the files are read; ``textblob`` is never
imported (importing it imports nltk, which imports scikit-learn and pandas: ~8 s here).

Tagging, as Brill describes it (Brill 1995, "Transformation-based error-driven learning"):
1. a known word gets its lexicon tag (the word as written, else lower-cased);
2. an unknown word starts as ``CD`` (a number), ``NNP`` (capitalised) or ``NN``, then the lexical rules of
   ``en-morphology.txt`` run in order (suffix / prefix / character / neighbouring-word tests);
3. the contextual rules of ``en-context.txt`` run in order, each over the whole sentence left to right, changing a
   tag where the rule's context (neighbouring tags and words; ``STAART`` beyond the ends) matches.

One approximation: Brill lets a contextual rule move a *known* word only to a tag the word was seen with in training
(his ``RESTRICT_MOVE``), but the shipped lexicon keeps one tag per word. Unrestricted, a rule such as "JJ -> VBD before
a determiner" turns sentence-initial "overall" into a past-tense verb; so a known word moves only within the Penn
ambiguity classes its lexicon tag belongs to (``_MOVES``: VBD/VBN, VB/VBP/NN, NNS/VBZ, IN/RB/RP, ...). Unknown words,
whose first tag is a guess, move freely; word-specific rules (``CURWD``, ``* -> tag``) always apply.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path

from tenfold_core.errors import MissingExtra

__all__ = ["BrillTagger", "brill_tagger"]

_NUMBER = re.compile(r"^[+-]?(\d+([.,:/]\d+)*|\d*\.\d+)%?$")
_EDGE = "STAART"
# tags one English word form commonly carries (Penn ambiguity classes): a known word moves only within these
_MOVES = [
    {"VBD", "VBN"}, {"VB", "VBP", "NN"}, {"NN", "NNP", "JJ"}, {"NNS", "VBZ"}, {"IN", "RB", "RP"},
    {"DT", "IN", "WDT", "RB"}, {"JJ", "VBN", "VBG"}, {"VBG", "NN"}, {"JJ", "RB"}, {"JJR", "RBR"}, {"JJS", "RBS"},
    {"PRP", "PRP$"}, {"NNS", "NNPS"}, {"NNP", "NNPS"},
]  # fmt: skip
_ALLOWED = {t: set().union(*(g for g in _MOVES if t in g)) for g in _MOVES for t in g}


def _data_dir() -> Path:
    spec = importlib.util.find_spec("textblob")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtra(
            "the Brill tagger's rule files come with the 'textblob' package: pip install textblob "
            "(or --data.augment.tagger induced)"
        )
    d = Path(next(iter(spec.submodule_search_locations))) / "en"
    for name in ("en-lexicon.txt", "en-morphology.txt", "en-context.txt"):
        if not (d / name).is_file():
            raise MissingExtra(f"{d / name}: missing (reinstall textblob, or --data.augment.tagger induced)")
    return d


def _rows(path: Path) -> list[list[str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith(";;;"):
            out.append(line.split())
    return out


class BrillTagger:
    """``tag(words) -> list of Penn tags``, one per word (words as already split; nothing is re-tokenised)."""

    def __init__(self, lexicon: dict[str, str], lexical: list[list[str]], contextual: list[list[str]]):
        self.lexicon = lexicon
        self.lexical = lexical
        self.contextual = contextual

    @classmethod
    def from_dir(cls, d: Path) -> BrillTagger:
        lexicon = {}
        for row in _rows(d / "en-lexicon.txt"):
            if len(row) >= 2:
                lexicon.setdefault(row[0], row[1])
        return cls(lexicon, _rows(d / "en-morphology.txt"), _rows(d / "en-context.txt"))

    def known(self, word: str) -> str | None:
        return self.lexicon.get(word) or self.lexicon.get(word.lower())

    def _unknown(self, word: str, prev: str, nxt: str) -> str:
        if _NUMBER.match(word):
            return "CD"
        tag = "NNP" if word[:1].isupper() else "NN"
        for rule in self.lexical:
            if rule[2].startswith("f"):  # "FROM x fcmd [n] TO x": only applies to a word now tagged FROM
                if tag != rule[0]:
                    continue
                x, cmd, rest = rule[1], rule[2][1:], rule[3:]
            else:  # "x cmd [n] TO x"
                x, cmd, rest = rule[0], rule[1], rule[2:]
            to = (
                rest[1]
                if cmd in ("hassuf", "haspref", "addsuf", "addpref", "deletesuf", "deletepref")
                else rest[0]
            )
            if self._lexical_match(cmd, x, word, prev, nxt):
                tag = to
        return tag

    def _lexical_match(self, cmd: str, x: str, word: str, prev: str, nxt: str) -> bool:
        if cmd == "hassuf":
            return word.endswith(x) and len(word) > len(x)
        if cmd == "haspref":
            return word.startswith(x) and len(word) > len(x)
        if cmd == "addsuf":
            return self.known(word + x) is not None
        if cmd == "addpref":
            return self.known(x + word) is not None
        if cmd == "deletesuf":
            return word.endswith(x) and len(word) > len(x) and self.known(word[: -len(x)]) is not None
        if cmd == "deletepref":
            return word.startswith(x) and len(word) > len(x) and self.known(word[len(x) :]) is not None
        if cmd == "char":
            return x in word
        if cmd == "goodright":  # the word appears to the right of x
            return prev == x
        if cmd == "goodleft":  # the word appears to the left of x
            return nxt == x
        return False

    def tag(self, words: Sequence[str]) -> list[str]:
        words = list(words)
        n = len(words)
        tags, allowed = [], []
        for i, w in enumerate(words):
            t = self.known(w)
            allowed.append(None if t is None else _ALLOWED.get(t, {t}))
            if t is None:
                t = self._unknown(w, words[i - 1] if i else _EDGE, words[i + 1] if i + 1 < n else _EDGE)
            tags.append(t)
        present = set(tags)
        for rule in self.contextual:
            frm, to, cmd, args = rule[0], rule[1], rule[2], rule[3:]
            if frm != "*" and frm not in present:  # most rules cannot fire: skip them in O(1)
                continue
            for i in range(n):
                if frm != "*" and (tags[i] != frm or (allowed[i] is not None and to not in allowed[i])):
                    continue
                if self._context_match(cmd, args, words, tags, i):
                    tags[i] = to
                    present.add(to)
        return tags

    @staticmethod
    def _context_match(cmd: str, a: list[str], words: list[str], tags: list[str], i: int) -> bool:
        n = len(words)

        def t(k: int) -> str:
            return tags[k] if 0 <= k < n else _EDGE

        def w(k: int) -> str:
            return words[k] if 0 <= k < n else _EDGE

        if cmd == "PREVTAG":
            return t(i - 1) == a[0]
        if cmd == "NEXTTAG":
            return t(i + 1) == a[0]
        if cmd == "PREV2TAG":
            return t(i - 2) == a[0]
        if cmd == "NEXT2TAG":
            return t(i + 2) == a[0]
        if cmd == "PREV1OR2TAG":
            return a[0] in (t(i - 1), t(i - 2))
        if cmd == "NEXT1OR2TAG":
            return a[0] in (t(i + 1), t(i + 2))
        if cmd == "PREV1OR2OR3TAG":
            return a[0] in (t(i - 1), t(i - 2), t(i - 3))
        if cmd == "NEXT1OR2OR3TAG":
            return a[0] in (t(i + 1), t(i + 2), t(i + 3))
        if cmd == "SURROUNDTAG":
            return t(i - 1) == a[0] and t(i + 1) == a[1]
        if cmd == "PREVBIGRAM":
            return t(i - 2) == a[0] and t(i - 1) == a[1]
        if cmd == "NEXTBIGRAM":
            return t(i + 1) == a[0] and t(i + 2) == a[1]
        if cmd == "CURWD":
            return words[i] == a[0]
        if cmd == "PREVWD":
            return w(i - 1) == a[0]
        if cmd == "NEXTWD":
            return w(i + 1) == a[0]
        if cmd == "PREV2WD":
            return w(i - 2) == a[0]
        if cmd == "NEXT2WD":
            return w(i + 2) == a[0]
        if cmd == "PREV1OR2WD":
            return a[0] in (w(i - 1), w(i - 2))
        if cmd == "NEXT1OR2WD":
            return a[0] in (w(i + 1), w(i + 2))
        if cmd == "WDPREVTAG":  # previous tag, current word
            return t(i - 1) == a[0] and words[i] == a[1]
        if cmd == "WDNEXTTAG":  # current word, next tag
            return words[i] == a[0] and t(i + 1) == a[1]
        if cmd == "WDAND2TAGBFR":
            return t(i - 2) == a[0] and words[i] == a[1]
        if cmd == "WDAND2TAGAFT":
            return words[i] == a[0] and t(i + 2) == a[1]
        if cmd == "LBIGRAM":
            return w(i - 1) == a[0] and words[i] == a[1]
        if cmd == "RBIGRAM":
            return words[i] == a[0] and w(i + 1) == a[1]
        if cmd == "WDAND2BFR":
            return w(i - 2) == a[0] and words[i] == a[1]
        if cmd == "WDAND2AFT":
            return words[i] == a[0] and w(i + 2) == a[1]
        return False


@functools.lru_cache(maxsize=1)
def brill_tagger() -> BrillTagger:
    """The process's tagger, read once from textblob's data files."""
    return BrillTagger.from_dir(_data_dir())
