"""Unsupervised personality lexicons from a (trait, pole, text) corpus, torch-free.

Scoring (Monroe, Colaresi & Quinn 2008, "Fightin' Words"): for (t, pole) vs its contrast (the opposite pole of t, or
every other (trait, pole)), with background counts ``a_w = alpha_0 * f_w`` (f = word frequency over the whole corpus, alpha_0 = prior_scale *
corpus size, so a_w = prior_scale * count(w)):

    delta_w = log((y_w + a_w) / (n + a_0 - y_w - a_w)) - log((y'_w + a_w) / (n' + a_0 - y'_w - a_w))
    z_w = delta_w / sqrt(1 / (y_w + a_w) + 1 / (y'_w + a_w))

Words with z above ``min_z``, count >= ``min_count``, not stop-words, are ranked; the top K get weights
``z / max z`` in (0, 1]. The TF-IDF option scores tf(w, doc(t, pole)) * idf over the ten (trait, pole) documents.
The paper's exact statistic is not public [infer]: both are parameters.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

from tenfold_core.errors import DataError
from ubpl.config import TRAIT_NAMES, TRAITS, LexiconConfig

__all__ = ["STOPWORDS", "words_of", "load_corpus", "build_lexicon", "save_lexicon", "load_lexicon"]

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her here hers
    herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves i'm i'd i'll it's don't can't won't""".split()
)
_WORD = re.compile(r"[a-z][a-z']*")
POLES = ("high", "low")


def words_of(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _trait(value: str, where: str) -> str:
    v = str(value).strip()
    if v.upper() in TRAITS:
        return v.upper()
    by_name = {n: k for k, n in TRAIT_NAMES.items()}
    if v.lower() in by_name:
        return by_name[v.lower()]
    raise DataError(f"{where}: field 'trait' must be one of O, C, E, A, N (or their names), got {value!r}")


def load_corpus(path: str | Path, traits=TRAITS) -> list[tuple[str, str, str]]:
    """Rows ``(trait, pole, text)`` of a jsonl corpus; every (trait, pole) of ``traits`` must be present."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such corpus file")
    rows = []
    with p.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{p}:{i}"
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: not valid JSON ({e.msg})") from None
            if not isinstance(r, dict):
                raise DataError(f"{where}: expected an object with trait, pole, text")
            for field in ("trait", "pole", "text"):
                if field not in r:
                    raise DataError(f"{where}: missing field '{field}' (expected trait, pole, text)")
            pole = str(r["pole"]).lower()
            if pole not in POLES:
                raise DataError(f"{where}: field 'pole' must be 'high' or 'low', got {r['pole']!r}")
            if not isinstance(r["text"], str):
                raise DataError(f"{where}: field 'text' must be a string")
            rows.append((_trait(r["trait"], where), pole, r["text"]))
    check_coverage(rows, traits, str(p))
    return rows


def check_coverage(rows, traits, where: str) -> None:
    have = {(t, s) for t, s, _ in rows}
    for t in traits:
        for s in POLES:
            if (t, s) not in have:
                raise DataError(
                    f"{where}: no texts for trait {t} ({TRAIT_NAMES[t]}), pole {s}: every trait needs both"
                )


def _keep(w: str, c: int, cfg: LexiconConfig) -> bool:
    return c >= cfg.min_count and len(w) >= cfg.min_length and not (cfg.stopwords and w in STOPWORDS)


def build_lexicon(rows, cfg: LexiconConfig | None = None, traits=None) -> dict:
    """``{trait: {"high": {word: weight}, "low": {...}}}`` with weights in (0, 1], best first."""
    cfg = cfg or LexiconConfig()
    traits = list(traits or sorted({t for t, _, _ in rows}, key=TRAITS.index))
    check_coverage(rows, traits, "corpus")
    counts: dict[tuple[str, str], Counter] = {(t, s): Counter() for t in traits for s in POLES}
    for t, s, text in rows:
        if (t, s) in counts:
            counts[(t, s)].update(words_of(text))
    total = Counter()
    for c in counts.values():
        total.update(c)
    n_all = sum(total.values())
    a0 = cfg.prior_scale * n_all
    out: dict = {}
    for t in traits:
        out[t] = {}
        for s in POLES:
            mine = counts[(t, s)]
            if cfg.contrast == "opposite":
                other = counts[(t, "low" if s == "high" else "high")]
            else:
                other = Counter()
                for k, c in counts.items():
                    if k != (t, s):
                        other.update(c)
            scores = (
                _log_odds(mine, other, total, n_all, a0) if cfg.method == "log_odds" else _tfidf(t, s, counts)
            )
            ranked = [(w, z) for w, z in scores.items() if _keep(w, mine[w], cfg)]
            if cfg.method == "log_odds":
                ranked = [(w, z) for w, z in ranked if z > cfg.min_z]
            ranked.sort(key=lambda x: (-x[1], x[0]))
            ranked = ranked[: cfg.top_k]
            top = ranked[0][1] if ranked else 1.0
            out[t][s] = {w: round(float(z / top), 6) for w, z in ranked if z > 0}
    return out


def _log_odds(mine: Counter, other: Counter, total: Counter, n_all: int, a0: float) -> dict[str, float]:
    n1, n2 = sum(mine.values()), sum(other.values())
    out = {}
    for w in mine:
        aw = a0 * total[w] / n_all
        y1, y2 = mine[w], other[w]
        d = math.log((y1 + aw) / (n1 + a0 - y1 - aw)) - math.log((y2 + aw) / (n2 + a0 - y2 - aw))
        out[w] = d / math.sqrt(1.0 / (y1 + aw) + 1.0 / (y2 + aw))
    return out


def _tfidf(t: str, s: str, counts: dict) -> dict[str, float]:
    docs = list(counts.values())
    mine = counts[(t, s)]
    n = sum(mine.values()) or 1
    out = {}
    for w, c in mine.items():
        df = sum(1 for d in docs if d[w] > 0)
        out[w] = (c / n) * math.log((1 + len(docs)) / (1 + df))
    return out


def save_lexicon(lex: dict, path: str | Path) -> Path:
    from tenfold_core.io import write_json

    write_json(path, lex)
    return Path(path)


def load_lexicon(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such lexicon file (build one with `ubpl build-lexicon`)")
    try:
        lex = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{p} line {e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(lex, dict):
        raise DataError(f"{p}: expected {{trait: {{high: {{word: weight}}, low: {{...}}}}}}")
    for t, poles in lex.items():
        if t not in TRAITS or not isinstance(poles, dict):
            raise DataError(f"{p}: key {t!r} is not a trait O, C, E, A, N with a mapping of poles")
        for s, words in poles.items():
            if s not in POLES or not isinstance(words, dict):
                raise DataError(f"{p}: {t}.{s}: expected pole high/low with a mapping of word -> weight")
            for w, x in words.items():
                if not isinstance(x, (int, float)) or not 0 <= x <= 1:
                    raise DataError(f"{p}: {t}.{s}.{w}: weight must be a number in [0, 1], got {x!r}")
    return lex
