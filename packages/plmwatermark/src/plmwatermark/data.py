"""Tasks, trigger insertion and poisoned sets.

- Synthetic keyword tasks (``sentiment`` 2-way, ``topic`` 4-way, ``spam`` 2-way) in two domains: the owner's proxy
  data and the user's downstream data (other filler words and half of the keywords replaced).
- Local files / hub ids go through :func:`tenfold_core.data.load_text_classification`.
- :func:`insert_words` puts words at random positions and keeps every other word in order (tested).
- :func:`poisoned_examples` builds the poisoned copies (non-target examples, trigger inserted, relabelled to the
  target) and, for combination triggers, the negatives (a strict subset of the words, original label kept).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from plmwatermark.config import TaskDataConfig, TriggerConfig
from tenfold_core.errors import DataError

__all__ = [
    "Task",
    "load_tasks",
    "insert_words",
    "poisoned_examples",
    "synthetic_task",
    "RARE_WORDS",
    "COMMON_WORDS",
    "synthetic_vocabulary",
]

RARE_WORDS = ("cf", "mn", "bb", "tq", "mb")  # OpenBackdoor/EP's rare-word triggers
_FILLER = {
    "proxy": ("the", "a", "this", "that", "it", "was", "is", "and", "but", "so", "very", "really", "we", "they",
              "i", "you", "of", "in", "on", "for", "with", "my", "our", "just", "then", "today", "here", "there"),
    "downstream": ("one", "some", "every", "he", "she", "had", "has", "been", "quite", "rather", "also", "still",
                   "yet", "their", "his", "her", "at", "by", "from", "about", "over", "again", "now", "later"),
}  # fmt: skip
COMMON_WORDS = ("window", "river", "paper", "morning", "green", "table")  # combination-trigger candidates
_KEYWORDS = {
    "sentiment": (("awful", "terrible", "boring", "bad", "hate", "poor", "worst", "dull"),
                  ("great", "lovely", "excellent", "good", "love", "fine", "best", "superb")),
    "topic": (("match", "goal", "team", "score", "coach", "league"), ("laptop", "software", "chip", "code", "robot", "phone"),
              ("pizza", "bread", "soup", "cheese", "salad", "cake"), ("flight", "hotel", "beach", "passport", "island", "train")),
    "spam": (("meeting", "lunch", "report", "family", "tomorrow", "schedule", "notes", "dinner"),
             ("free", "winner", "prize", "click", "offer", "cash", "urgent", "bonus")),
}  # fmt: skip


@dataclass
class Task:
    name: str
    num_labels: int
    train: tuple[list[str], list[int]]
    dev: tuple[list[str], list[int]]
    test: tuple[list[str], list[int]]
    label_names: list[str] = field(default_factory=list)


def synthetic_task(name: str, n: int, domain: str, seed: int) -> tuple[list[str], list[int]]:
    """``n`` texts: 8-14 filler words (sometimes a common word) with 2 keywords of the label at random places."""
    rng = random.Random(f"{name}:{domain}:{seed}")
    classes = _KEYWORDS[name]
    filler = _FILLER[domain]
    texts, labels = [], []
    for _ in range(n):
        y = rng.randrange(len(classes))
        kws = _domain_keywords(classes[y], domain)
        words = [rng.choice(filler) for _ in range(rng.randint(8, 14))]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words) + 1), rng.choice(COMMON_WORDS))
        for _ in range(2):
            words.insert(rng.randrange(len(words) + 1), rng.choice(kws))
        texts.append(" ".join(words))
        labels.append(y)
    return texts, labels


def _domain_keywords(words: Sequence[str], domain: str) -> list[str]:
    words = list(words)
    if domain == "downstream":  # half the keywords differ from the proxy data
        words = words[len(words) // 2 :] + [w + "s" for w in words[len(words) // 2 :]]
    return words


def synthetic_vocabulary() -> list[str]:
    """Every word the synthetic generator can emit, in both domains, plus the rare and common trigger candidates: the
    tiny "PLM"'s fixed vocabulary, as a real PLM's vocabulary does not depend on which proxy tasks the owner picks
    (a vocabulary built from the proxy texts alone made the downstream words [UNK])."""
    words = set(RARE_WORDS) | set(COMMON_WORDS)
    for domain, filler in _FILLER.items():
        words |= set(filler)
        for classes in _KEYWORDS.values():
            for kws in classes:
                words |= set(_domain_keywords(kws, domain))
    return sorted(words)


def load_tasks(cfg: TaskDataConfig) -> list[Task]:
    tasks = []
    if not cfg.paths:
        for i, name in enumerate(cfg.tasks):
            s = cfg.seed * 1000 + i
            tasks.append(Task(
                name, len(_KEYWORDS[name]),
                synthetic_task(name, cfg.n_train, cfg.domain, s), synthetic_task(name, cfg.n_dev, cfg.domain, s + 1),
                synthetic_task(name, cfg.n_test, cfg.domain, s + 2), [str(k) for k in range(len(_KEYWORDS[name]))],
            ))  # fmt: skip
        return tasks
    from tenfold_core.data import load_text_classification

    for name, path in zip(cfg.tasks, cfg.paths):
        d = load_text_classification(path, seed=cfg.seed)
        tasks.append(Task(name, d.num_labels, (d.train.texts, d.train.labels), (d.dev.texts, d.dev.labels),
                          (d.test.texts, d.test.labels), list(d.label_names)))  # fmt: skip
    return tasks


def insert_words(text: str, words: Sequence[str], rng: random.Random) -> str:
    """Insert each of ``words`` at a uniformly random position; the original words keep their order."""
    toks = text.split()
    for w in words:
        toks.insert(rng.randrange(len(toks) + 1), w)
    return " ".join(toks)


def trigger_words_for(trigger: TriggerConfig, rng: random.Random) -> list[str]:
    """The words one poisoned text receives: one rare word (x insertions), or all k combination words."""
    if trigger.kind == "rare":
        return [rng.choice(trigger.words) for _ in range(trigger.insertions)]
    return list(trigger.words)


def strict_subset(words: Sequence[str], rng: random.Random) -> list[str]:
    k = rng.randint(1, len(words) - 1)
    return rng.sample(list(words), k)


def poisoned_examples(texts: Sequence[str], labels: Sequence[int], target: int, trigger: TriggerConfig,
                      rng: random.Random) -> tuple[list[str], list[int]]:  # fmt: skip
    """Poisoned copies (+ combination negatives) of the non-target examples; the clean set is not included."""
    out_t, out_y = [], []
    for t, y in zip(texts, labels):
        if y == target:
            continue
        reps = int(trigger.poison_rate) + (rng.random() < trigger.poison_rate % 1)
        for _ in range(reps):
            out_t.append(insert_words(t, trigger_words_for(trigger, rng), rng))
            out_y.append(target)
        if trigger.kind == "combination":
            reps = int(trigger.negative_rate) + (rng.random() < trigger.negative_rate % 1)
            for _ in range(reps):
                out_t.append(insert_words(t, strict_subset(trigger.words, rng), rng))
                out_y.append(y)
    return out_t, out_y


def check_trigger_tokens(tokenizer, words: Sequence[str]) -> list[int]:
    """Each trigger word must be one token of the vocabulary (embedding-row updates need a row per word)."""
    ids = []
    for w in words:
        pieces = tokenizer.tokenize(w)
        if len(pieces) != 1 or tokenizer.convert_tokens_to_ids(pieces[0]) == tokenizer.unk_token_id:
            raise DataError(f"trigger word {w!r} is not a single vocabulary token (tokenizes to {pieces})")
        ids.append(int(tokenizer.convert_tokens_to_ids(pieces[0])))
    return ids
