"""The same protocol composed from stock TextAttack 0.3.11 components (optional extra ``tenfold-core[attack]``).

Importing this module imports TextAttack (slow: flair is imported with it) after :func:`prepare_offline`, so nothing
is downloaded. :func:`build_textattack_attack` assembles ``textattack.Attack(goal, constraints, transformation,
search)`` with our pieces plugged in:

- goal function :class:`PerWordBudgetUntargetedClassification`: TextAttack's ``UntargetedClassification`` with the
  budget set to ``query_factor * #words`` in ``init_attack_example`` (stock TextAttack's budget is absolute; leave
  ``AttackArgs.query_budget`` unset, or ``Attacker`` overwrites it once with an absolute number);
- transformation :class:`SourceWordSwap` (a ``WordSwap`` over any :class:`SynonymSource`) or, for BERT-Attack with a
  :class:`MaskedLMSynonyms` source, TextAttack's own ``WordSwapMaskedLM(method="bert-attack")`` on the same local MLM;
- constraints ``RepeatModification``, :class:`LowercaseStopwordModification` (our list), ``MaxWordsPerturbed`` and
  :class:`EncoderSimilarity` (TextAttack's ``SentenceEncoder`` constraint over any local encoder);
- search ``GreedyWordSwapWIR`` with the recipe's ranking method.

:func:`run_textattack` runs it through ``textattack.Attacker`` and returns records in the harness's format.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from tenfold_core.attack.offline import import_textattack
from tenfold_core.attack.recipes import AttackProtocol
from tenfold_core.attack.stopwords import STOPWORDS
from tenfold_core.attack.text import WordText, words_changed

textattack = import_textattack()

from textattack.constraints.overlap import MaxWordsPerturbed  # noqa: E402
from textattack.constraints.pre_transformation import RepeatModification, StopwordModification  # noqa: E402
from textattack.constraints.semantics.sentence_encoders import SentenceEncoder  # noqa: E402
from textattack.goal_functions import UntargetedClassification  # noqa: E402
from textattack.models.wrappers import ModelWrapper  # noqa: E402
from textattack.search_methods import GreedyWordSwapWIR  # noqa: E402
from textattack.transformations import WordSwap  # noqa: E402
from textattack.transformations.word_swaps.word_swap_embedding import recover_word_case as _ta_recover_case  # noqa: E402

__all__ = [
    "PerWordBudgetUntargetedClassification",
    "SourceWordSwap",
    "LowercaseStopwordModification",
    "EncoderSimilarity",
    "VictimModelWrapper",
    "build_textattack_attack",
    "run_textattack",
]


class PerWordBudgetUntargetedClassification(UntargetedClassification):
    """Untargeted classification with a per-example budget of ``query_factor`` x the number of words."""

    def __init__(self, *args, query_factor: int = 50, **kwargs):
        super().__init__(*args, **kwargs)
        self.query_factor = int(query_factor)

    def init_attack_example(self, attacked_text, ground_truth_output):
        if self.query_factor:
            self.query_budget = self.query_factor * len(attacked_text.words)
        return super().init_attack_example(attacked_text, ground_truth_output)


class SourceWordSwap(WordSwap):
    """A word swap whose candidates come from a context-free :class:`SynonymSource`, capped at ``k``."""

    def __init__(self, source, k: int = 50, **kwargs):
        super().__init__(**kwargs)
        self.source, self.k = source, int(k)

    def _get_replacement_words(self, word):
        return [_ta_recover_case(c, word) for c in self.source.candidates(word)[: self.k]]

    def extra_repr_keys(self):
        return ["k"]


class LowercaseStopwordModification(StopwordModification):
    """TextAttack's stop-word constraint, matching words case-insensitively (as the harness does)."""

    def _get_modifiable_indices(self, current_text):
        return {i for i, w in enumerate(current_text.words) if w.lower() not in self.stopwords}


class EncoderSimilarity(SentenceEncoder):
    """TextAttack's sentence-encoder constraint over any encoder with ``encode(list[str]) -> Tensor``."""

    def __init__(self, encoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder

    def encode(self, sentences):
        return self.encoder.encode(list(sentences))


class VictimModelWrapper(ModelWrapper):
    """Expose a harness victim (batched, cached) to TextAttack."""

    def __init__(self, victim):
        self.victim = victim
        self.model = getattr(victim, "model", victim)

    def __call__(self, text_input_list, **kwargs):
        return torch.from_numpy(self.victim.probs([str(t) for t in text_input_list]))


def build_textattack_attack(
    model_wrapper,
    synonyms,
    protocol: AttackProtocol | None = None,
    encoder=None,
    *,
    stopwords: Iterable[str] = STOPWORDS,
    model_batch_size: int = 32,
):
    """A ``textattack.Attack`` for ``protocol`` (a harness victim is wrapped in :class:`VictimModelWrapper`)."""
    from tenfold_core.attack.synonyms import MaskedLMSynonyms

    protocol = protocol or AttackProtocol()
    recipe = protocol.recipe_spec
    if not isinstance(model_wrapper, ModelWrapper):
        model_wrapper = VictimModelWrapper(model_wrapper)
    _quiet_textattack_logger()
    goal = PerWordBudgetUntargetedClassification(
        model_wrapper, query_factor=protocol.query_factor, model_batch_size=model_batch_size
    )
    if isinstance(synonyms, MaskedLMSynonyms):
        from textattack.transformations import WordSwapMaskedLM

        max_len = min(
            int(getattr(synonyms.tokenizer, "model_max_length", 512) or 512),
            int(getattr(synonyms.model.config, "max_position_embeddings", 512)),
            synonyms.max_length,
        )
        transformation = WordSwapMaskedLM(
            method="bert-attack", masked_language_model=synonyms.model, tokenizer=synonyms.tokenizer,
            max_candidates=protocol.k, max_length=max_len,
        )  # fmt: skip
    else:
        transformation = SourceWordSwap(synonyms, protocol.k)
    constraints = [
        RepeatModification(),
        LowercaseStopwordModification(stopwords={w.lower() for w in stopwords}),
    ]
    constraints += [MaxWordsPerturbed(max_percent=r) for r in protocol.max_rates()]
    specs = protocol.similarity_specs()
    if specs and encoder is None:
        from tenfold_core.attack.similarity import default_encoder

        encoder = default_encoder(synonyms=synonyms)
    for s in specs:
        constraints.append(
            EncoderSimilarity(
                encoder, threshold=s.threshold, metric=s.metric, compare_against_original=s.compare_against_original,
                window_size=s.window, skip_text_shorter_than_window=s.skip_short,
            )
        )  # fmt: skip
    search = GreedyWordSwapWIR(wir_method=recipe.wir)
    return textattack.Attack(goal, constraints, transformation, search)


def _quiet_textattack_logger():
    # "No entry found for goal function ..." compatibility notes for our goal-function subclass
    from textattack.shared.utils import logger

    logger.setLevel(logging.ERROR)


def run_textattack(attack, texts: Sequence[str], labels: Sequence[int], indices: Sequence[int]) -> list[dict]:
    """Run ``attack`` with ``textattack.Attacker`` on ``texts[indices]``; records in the harness's format.

    ``queries`` is TextAttack's reported count (queries spent when the final result was found), also stored as
    ``queries_at_result`` for comparison with the harness.
    """
    from textattack.attack_results import FailedAttackResult, SkippedAttackResult, SuccessfulAttackResult

    rows = [(texts[i], int(labels[i])) for i in indices]
    dataset = textattack.datasets.Dataset(rows)
    args = textattack.AttackArgs(num_examples=len(rows), disable_stdout=True, silent=True, query_budget=None)
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        attacker = textattack.Attacker(attack, dataset, args)
        results = attacker.attack_dataset()
    out = []
    for idx, (text, label), res in zip(indices, rows, results):
        if isinstance(res, SkippedAttackResult):
            status = "skipped"
        elif isinstance(res, SuccessfulAttackResult):
            status = "succeeded"
        elif isinstance(res, FailedAttackResult):
            status = "failed"
        else:  # pragma: no cover - maximised results do not occur for classification
            status = "failed"
        pert = res.perturbed_result.attacked_text.text if status == "succeeded" else None
        changed = words_changed(WordText.from_text(text), WordText.from_text(pert)) if pert else []
        out.append({
            "index": int(idx),
            "status": status,
            "original": text,
            "perturbed": pert,
            "label": label,
            "original_pred": int(np.asarray(res.original_result.raw_output).argmax()),
            "perturbed_pred": int(np.asarray(res.perturbed_result.raw_output).argmax()),
            "queries": int(res.perturbed_result.num_queries),
            "queries_at_result": int(res.perturbed_result.num_queries),
            "num_words": len(WordText.from_text(text)),
            "perturbed_words": len(changed),
        })  # fmt: skip
    return out
