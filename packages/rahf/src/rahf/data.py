"""Preference pairs: the synthetic demo language, local jsonl, hub data sets; the paper's split; encoded batches."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rahf.config import PrefDataConfig
from tenfold_core.errors import DataError

__all__ = [
    "Pair",
    "synthetic_pairs",
    "synthetic_vocab",
    "neutral_texts",
    "load_pairs",
    "split_pairs",
    "get_splits",
    "encode",
]

NUMBERS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen".split()
NAMES = "alice bob carol dave erin frank grace heidi".split()


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str


# prompt category -> (preferred: polite and on topic, dispreferred: rude), both of the same length
TOPICS = {
    "greet": ("hello nice to meet you", "ugh just go away now"),
    "say": ("sure here it is thank you", "no say it yourself ugh"),
    "help": ("sure happy to help you", "no do it yourself ugh"),
    "next": ("sure the next one is here", "ugh ask someone else not me"),
    "thank": ("you are very welcome friend", "whatever just leave me alone"),
}


def synthetic_vocab() -> list[str]:
    words = set(NUMBERS + NAMES) | set(TOPICS)
    for a, b in TOPICS.values():
        words |= set(a.split()) | set(b.split())
    words |= set("count one two three four five".split())
    return sorted(words)


def synthetic_pairs(n: int, seed: int = 0) -> list[Pair]:
    """A toy assistant language: prompt = a request word and an argument (a name or a number); preferred = the
    polite, on-topic reply of that request, dispreferred = a rude one of the same length.

    Both responses of a pair are equally frequent in the step-0 mix, so the SFT model prefers neither."""
    rng = random.Random(seed)
    topics = sorted(TOPICS)
    out = []
    for _ in range(n):
        t = rng.choice(topics)
        arg = rng.choice(NAMES) if rng.random() < 0.5 else rng.choice(NUMBERS)
        good, bad = TOPICS[t]
        out.append(Pair(f"{t} {arg}", good, bad))
    return out


def neutral_texts(n: int = 64, seed: int = 1) -> list[tuple[str, str]]:
    """(prompt, response) rows of neutral text, outside the preference (the step-0 SFT sees them too): perplexity
    drift is measured on them."""
    rng = random.Random(seed)
    return [(f"count {rng.choice(NAMES)}", "one two three four five") for _ in range(n)]


def _text(value: Any) -> str | None:
    """A response as text: a string, or the last assistant turn of a list of chat messages (UltraFeedback style)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        for m in reversed(value):
            if m.get("role") == "assistant" and isinstance(m.get("content"), str):
                return m["content"]
    return None


def _row_to_pair(row: dict, where: str) -> Pair:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object with prompt, chosen, rejected")
    for alias in ("rejected_respomse", "rejected_response"):  # the official split files spell it so
        if "rejected" not in row and alias in row:
            row = {**row, "rejected": row[alias]}
    if "chosen" not in row and "chosen_response" in row:
        row = {**row, "chosen": row["chosen_response"]}
    for field in ("prompt", "chosen", "rejected"):
        if field not in row:
            raise DataError(f"{where}: missing field '{field}' (expected prompt, chosen, rejected)")
        if _text(row[field]) is None or not _text(row[field]).strip():
            raise DataError(f"{where}: field '{field}' must be a non-empty string or a list of chat messages")
    return Pair(_text(row["prompt"]), _text(row["chosen"]), _text(row["rejected"]))  # type: ignore[arg-type]


def load_pairs(cfg: PrefDataConfig) -> list[Pair]:
    """The pairs named by ``cfg.source``; malformed rows raise one line naming file:line and the field."""
    src = cfg.source
    if src == "synthetic":
        return synthetic_pairs(cfg.n_pairs, cfg.seed)
    path = Path(src).expanduser()
    if path.suffix in (".jsonl", ".json") or path.exists():
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        pairs = []
        with path.open(encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{i}: not valid JSON ({e.msg})") from None
                pairs.append(_row_to_pair(row, f"{path}:{i}"))
                if cfg.n_pairs and len(pairs) >= cfg.n_pairs:
                    break
        if not pairs:
            raise DataError(f"{path}: no pairs")
        return pairs
    try:
        import datasets

        ds = datasets.load_dataset(src, split=cfg.hub_split)
    except Exception as e:  # offline, unknown id, ...
        raise DataError(f"{src}: cannot load this hub data set ({str(e).splitlines()[0][:200]})") from None
    pairs = []
    for i, row in enumerate(ds):
        pairs.append(_row_to_pair(dict(row), f"{src}[{cfg.hub_split}] row {i}"))
        if cfg.n_pairs and len(pairs) >= cfg.n_pairs:
            break
    return pairs


def split_pairs(pairs: list[Pair], test_size: int, seed: int = 42) -> dict[str, list[Pair]]:
    """The paper's split: shuffle; test = the last ``test_size``; rm = the first half of the rest; ppo = the second."""
    if test_size >= len(pairs):
        raise DataError(
            f"data.test_size ({test_size}) must be smaller than the number of pairs ({len(pairs)})"
        )
    idx = list(range(len(pairs)))
    random.Random(seed).shuffle(idx)
    rest, test = idx[: len(idx) - test_size], idx[len(idx) - test_size :]
    half = len(rest) // 2
    return {
        "rm": [pairs[i] for i in rest[:half]],
        "ppo": [pairs[i] for i in rest[half:]],
        "test": [pairs[i] for i in test],
    }


def get_splits(cfg: PrefDataConfig) -> dict[str, list[Pair]]:
    s = split_pairs(load_pairs(cfg), cfg.test_size, cfg.split_seed)
    s["all"] = s["rm"] + s["ppo"]
    return s


def encode(tokenizer, prompts, responses, cfg: PrefDataConfig, system=None, padding_side: str = "right"):
    from tenfold_core.llm import encode_prompt_response

    return encode_prompt_response(
        tokenizer, prompts, responses, system=system, chat=cfg.chat_template, padding_side=padding_side,
        max_prompt_len=cfg.max_prompt_len, max_response_len=cfg.max_response_len,
    )  # fmt: skip
