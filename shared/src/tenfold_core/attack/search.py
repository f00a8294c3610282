"""Greedy word swap with word-importance ranking (TextAttack's ``GreedyWordSwapWIR``), re-implemented lean.

Same algorithm, same goal function (untargeted classification: score = 1 - p(true label), success = argmax differs)
and the same query accounting as TextAttack 0.3.11, so the statuses match a TextAttack run on the same victim,
candidates and constraints:

1. The original text is queried (1 query); a misclassified example is *skipped*.
2. Word importance over the modifiable words (not stop words): ``delete`` (score of the text without the word),
   ``unk`` (word replaced by ``[UNK]``) or ``weighted-saliency`` (PWWS: softmax of the ``[UNK]`` scores times the best
   score reachable by one substitution).
3. In that order, every candidate substitution of the word that passes the constraints is queried (candidates sorted
   by text, as TextAttack does); the best one is kept if it raises the score; the attack stops at the first success,
   returning, among the successful candidates of that step, the most similar one.
4. Every text passed to the model counts as one query (cache hits included, as in TextAttack); a batch that would
   exceed the budget is cut at the budget, and the search stops when the budget is used up.

The victim batches each step's candidates into one call and caches outputs per text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from tenfold_core.attack.recipes import AttackProtocol, Recipe
from tenfold_core.attack.similarity import SimilarityConstraint
from tenfold_core.attack.stopwords import STOPWORDS
from tenfold_core.attack.text import WordText, words_changed
from tenfold_core.errors import ConfigError

__all__ = ["GreedyWordSwapAttack", "QueryBudget"]

UNK = "[UNK]"


class QueryBudget:
    """Counts model queries of one example and cuts batches at the budget (TextAttack's goal-function rule)."""

    def __init__(self, label: int, budget: int | None):
        self.label, self.budget = int(label), budget
        self.used = 0

    @property
    def exhausted(self) -> bool:
        return self.budget is not None and self.used >= self.budget

    def query(self, texts: list[WordText]):
        """Generator: yields the texts (the part the budget allows) to be run by the victim, receives their
        probabilities, returns ``(scores, predictions, search_over)``. Use with ``yield from``."""
        if self.budget is not None:
            texts = texts[: max(self.budget - self.used, 0)]
        self.used += len(texts)
        if texts:
            p = yield [t.text for t in texts]
            scores, preds = 1.0 - p[:, self.label], p.argmax(-1)
        else:
            scores, preds = np.zeros(0), np.zeros(0, dtype=int)
        return scores, preds, self.exhausted


@dataclass
class _Step:
    text: WordText
    score: float
    pred: int
    sim: float | None = None
    queries_at: int = 0
    modified: set = field(default_factory=set)


class GreedyWordSwapAttack:
    """One recipe of the protocol against one victim; :meth:`attack` runs one example and returns its record."""

    def __init__(
        self,
        victim,
        synonyms,
        protocol: AttackProtocol | None = None,
        encoder=None,
        *,
        stopwords: Iterable[str] = STOPWORDS,
    ):
        self.victim = victim
        self.synonyms = synonyms
        self.protocol = protocol or AttackProtocol()
        self.recipe: Recipe = self.protocol.recipe_spec  # any source may stand in for BERT-Attack's masked LM
        self.stopwords = frozenset(w.lower() for w in stopwords)
        specs = self.protocol.similarity_specs()
        if specs and encoder is None:
            from tenfold_core.attack.similarity import default_encoder

            encoder = default_encoder(victim=victim, synonyms=synonyms)
        self.encoder = encoder
        self.similarity = [
            SimilarityConstraint(
                encoder, s.threshold, s.metric, s.window, s.compare_against_original, s.skip_short
            )
            for s in specs
        ]
        self.max_rates = self.protocol.max_rates()
        if self.recipe.wir not in ("delete", "unk", "weighted-saliency"):
            raise ConfigError(f"unknown word-importance method {self.recipe.wir!r}")

    # --------------------------------------------------------------------------------------- transformations
    def modifiable(self, text: WordText, modified: set) -> list[int]:
        return [i for i, w in enumerate(text.words) if i not in modified and w.lower() not in self.stopwords]

    def _max_changed(self, n: int) -> int:
        import math

        return min(math.ceil(n * r) for r in self.max_rates)

    def transformations(
        self, current: _Step, original: WordText, i: int
    ) -> tuple[list[WordText], list[float | None]]:
        """Candidate texts for word ``i`` of the current text that pass every constraint, sorted by text."""
        cur = current.text
        words = self.synonyms.candidates_in_context(cur, i)[: self.protocol.k]
        cands = []
        seen = set()
        for w in words:
            if w == cur.words[i] or w in seen:
                continue
            seen.add(w)
            cands.append(cur.replace(i, w))
        cands = [c for c in cands if c.text != cur.text]
        limit = self._max_changed(len(original))
        cands = [c for c in cands if len(words_changed(original, c)) <= limit]
        sims: list[float | None] = [None] * len(cands)
        for con in self.similarity:
            if not cands:
                break
            ref = original if con.compare_against_original else cur
            s = con.scores(ref, cands, i)
            keep = [j for j in range(len(cands)) if s[j] >= con.threshold]
            cands = [cands[j] for j in keep]
            sims = [float(s[j]) for j in keep]  # TextAttack keeps the last similarity constraint's score
        order = sorted(range(len(cands)), key=lambda j: cands[j].text)
        return [cands[j] for j in order], [sims[j] for j in order]

    # ---------------------------------------------------------------------------------------------- ranking
    def _rank(self, original: WordText, q: QueryBudget, init: _Step):
        idx = self.modifiable(original, set())
        if not idx:
            return [], q.exhausted
        wir = self.recipe.wir
        if wir == "delete":
            texts = [original.delete(i) for i in idx]
        else:
            texts = [original.replace(i, UNK) for i in idx]
        scores, _, over = yield from q.query(texts)
        if wir == "weighted-saliency":
            sal = np.exp(scores - scores.max()) if len(scores) else scores
            sal = sal / sal.sum() if len(sal) else sal
            # every word's candidates scored in ONE victim call (TextAttack queries word by word); the budget cut
            # of the concatenated list equals the word-by-word cuts, so statuses and query counts are unchanged
            deltas = [0.0] * len(sal)
            if not over:
                per_word = [self.transformations(init, original, i)[0] for i in idx]
                flat = [c for cands in per_word for c in cands]
                s, _, over = yield from q.query(flat)
                at = 0
                for j, cands in enumerate(per_word):
                    part = s[at : at + len(cands)]
                    at += len(cands)
                    deltas[j] = float(part.max()) if len(part) else 0.0
            scores = sal * np.asarray(deltas[: len(sal)])
        # TextAttack: np.array(indices)[(-scores).argsort()] (numpy's default quicksort, not stable)
        order = np.asarray(idx)[: len(scores)][(-np.asarray(scores)).argsort()]
        return [int(i) for i in order], over

    # ---------------------------------------------------------------------------------------------- attack
    def attack(self, text: str, label: int) -> dict:
        """Attack one example; returns its record (see :mod:`tenfold_core.attack.runner`). The victim's cache is
        cleared first (a per-example cache)."""
        if hasattr(self.victim, "clear_cache"):
            self.victim.clear_cache()
        steps = self.steps(text, label)
        try:
            request = next(steps)
            while True:
                request = steps.send(self.victim.probs(request))
        except StopIteration as stop:
            return stop.value

    def attack_many(self, examples, width: int = 8):
        """Attack ``(text, label)`` pairs with up to ``width`` examples in flight: the queries of every example in
        flight go to the victim as one batch (bigger batches for a GPU). Yields ``(position, record)`` as examples
        finish (not in input order). Each example keeps its own query count and budget; the victim's cache is
        shared by the examples in flight (bounded by its ``cache_size``)."""
        pending = iter(enumerate(examples))
        active: dict[int, tuple] = {}  # position -> (generator, request)

        def start():
            while len(active) < max(1, width):
                item = next(pending, None)
                if item is None:
                    return
                pos, (text, label) = item
                gen = self.steps(text, int(label))
                try:
                    active[pos] = (gen, next(gen))
                except StopIteration as stop:  # pragma: no cover - every attack queries the original text
                    yield pos, stop.value

        yield from start()
        while active:
            order = list(active)
            flat = [t for pos in order for t in active[pos][1]]
            probs = self.victim.probs(flat)
            at = 0
            for pos in order:
                gen, req = active[pos]
                part, at = probs[at : at + len(req)], at + len(req)
                try:
                    active[pos] = (gen, gen.send(part))
                except StopIteration as stop:
                    del active[pos]
                    yield pos, stop.value
            yield from start()

    def steps(self, text: str, label: int):
        """The attack of one example as a generator: yields lists of texts to query, receives their probabilities
        ``[N, C]``, returns the record."""
        original = WordText.from_text(text)
        n = len(original)
        budget = self.protocol.budget(n)
        if budget is not None:
            budget = max(budget, 1)  # a text without words still gets its one clean query
        q = QueryBudget(label, budget)
        s0, p0, over = yield from q.query([original])
        init = _Step(original, float(s0[0]), int(p0[0]), queries_at=q.used)
        if init.pred != int(label):
            return self._record(text, label, init, init, q, "skipped", original)
        if over:
            return self._record(text, label, init, init, q, "failed", original)
        order, over = yield from self._rank(original, q, init)
        cur = init
        for i in order:
            if over:
                break
            cands, sims = self.transformations(cur, original, i)
            if not cands:
                continue
            scores, preds, over = yield from q.query(cands)
            if len(scores) == 0:
                break
            ranked = sorted(
                range(len(scores)), key=lambda j: -scores[j]
            )  # stable, as Python's sorted in TextAttack
            best = ranked[0]
            if scores[best] <= cur.score:
                continue
            cur = _Step(
                cands[best], float(scores[best]), int(preds[best]), sims[best], q.used, cur.modified | {i}
            )
            if cur.pred != int(label):
                best_sim, pick = -float("inf"), best
                for j in ranked:
                    if preds[j] == int(label):
                        break
                    if sims[j] is None:
                        break
                    if sims[j] > best_sim:
                        best_sim, pick = sims[j], j
                cur = _Step(
                    cands[pick], float(scores[pick]), int(preds[pick]), sims[pick], q.used, cur.modified
                )
                return self._record(text, label, init, cur, q, "succeeded", original)
        return self._record(text, label, init, cur, q, "failed", original)

    def _record(self, text, label, init: _Step, final: _Step, q: QueryBudget, status: str, original) -> dict:
        changed = words_changed(original, final.text) if status == "succeeded" else []
        return {
            "status": status,
            "original": text,
            "perturbed": final.text.text if status == "succeeded" else None,
            "label": int(label),
            "original_pred": init.pred,
            "perturbed_pred": final.pred if status != "skipped" else init.pred,
            "queries": q.used,
            "queries_at_result": final.queries_at,
            "query_budget": q.budget,
            "num_words": len(original),
            "perturbed_words": len(changed),
            "perturbed_indices": changed,
            "substitutions": [[original.words[i], final.text.words[i]] for i in changed],
        }
