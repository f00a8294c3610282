"""Word view of a text for word-substitution attacks.

Words follow TextAttack's ``words_from_text`` rule for Latin text: runs of word characters plus the inner characters
``' - _ * @`` (stripped at the ends of a word); everything between words (spaces, punctuation) is kept verbatim, so a
substitution changes exactly one word and leaves punctuation and spacing alone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_WORD = re.compile(r"[\w'\-_*@]+")
_EDGE = "'-_*@"


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the words of ``text``."""
    spans = []
    for m in _WORD.finditer(text):
        s, e = m.start(), m.end()
        while s < e and text[s] in _EDGE:
            s += 1
        while e > s and text[e - 1] in _EDGE:
            e -= 1
        if e > s:
            spans.append((s, e))
    return spans


def num_words(text: str) -> int:
    return len(word_spans(text))


@dataclass(frozen=True)
class WordText:
    """A text split into ``words`` and the ``seps`` around them (``len(seps) == len(words) + 1``)."""

    words: tuple[str, ...]
    seps: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str) -> WordText:
        spans = word_spans(text)
        words, seps, last = [], [], 0
        for s, e in spans:
            seps.append(text[last:s])
            words.append(text[s:e])
            last = e
        seps.append(text[last:])
        return cls(tuple(words), tuple(seps))

    @property
    def text(self) -> str:
        out = [self.seps[0]]
        for w, s in zip(self.words, self.seps[1:]):
            out.append(w)
            out.append(s)
        return "".join(out)

    def __len__(self) -> int:
        return len(self.words)

    def replace(self, i: int, word: str) -> WordText:
        words = list(self.words)
        words[i] = word
        return WordText(tuple(words), self.seps)

    def delete(self, i: int) -> WordText:
        """The text without word ``i`` (and one separator next to it)."""
        words = list(self.words)
        seps = list(self.seps)
        del words[i]
        # keep the separator before the word unless the word was first (then keep the one after)
        del seps[i + 1 if i > 0 else 0]
        if i == 0 and seps:
            seps[0] = self.seps[0]
        return WordText(tuple(words), tuple(seps))

    def window(self, index: int, size: int) -> str:
        """Text of the ``size``-word window centred on word ``index`` (TextAttack's ``text_window_around_index``)."""
        n = len(self.words)
        if n == 0:
            return ""
        half = (size - 1) / 2.0
        if index - half < 0:
            start, end = 0, min(size - 1, n - 1)
        elif index + half >= n:
            start, end = max(0, n - size), n - 1
        else:
            start, end = index - math.ceil(half), index + math.floor(half)
        parts = [self.words[start]]
        for j in range(start + 1, end + 1):
            parts.append(self.seps[j])
            parts.append(self.words[j])
        return "".join(parts)


def words_changed(original: WordText, perturbed: WordText) -> list[int]:
    """Indices where the two word sequences differ (over the common length, as TextAttack's ``all_words_diff``)."""
    return [i for i, (a, b) in enumerate(zip(original.words, perturbed.words)) if a != b]


def recover_word_case(word: str, reference: str) -> str:
    """Give ``word`` the case pattern of ``reference`` (lower, UPPER or Capitalised; otherwise unchanged)."""
    if reference.islower():
        return word.lower()
    if reference.isupper() and len(reference) > 1:
        return word.upper()
    if reference[:1].isupper() and reference[1:].islower():
        return word.capitalize()
    return word
