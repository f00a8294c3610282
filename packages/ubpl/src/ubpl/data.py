"""Persona corpora (our templated SJT-style generator, or any chat LLM role-playing personas), the questionnaire
items (MPI csv format; only items we wrote ship), open prompts."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from tenfold_core.errors import DataError
from ubpl.config import TRAIT_NAMES, TRAITS

__all__ = [
    "SITUATIONS",
    "POLE_WORDS",
    "synthetic_corpus",
    "llm_corpus",
    "write_corpus",
    "load_items",
    "OPEN_PROMPTS",
]

SITUATIONS = [
    "a friend invites you to a crowded party", "your team must finish a project by friday",
    "a stranger asks you for directions", "you get an unexpected free weekend", "a colleague criticises your work",
    "you are offered a job in another country", "your neighbour plays loud music at night",
    "you must give a talk to many people", "a friend forgets your birthday", "you find a wallet on the street",
    "your plans for the holiday are cancelled", "someone new joins your class",
]  # fmt: skip

# planted characteristic words per (trait, pole): the synthetic corpus is built from them
POLE_WORDS = {
    ("O", "high"): "curious imagine explore art novel ideas creative wonder".split(),
    ("O", "low"): "routine familiar usual traditional practical plain habit simple".split(),
    ("C", "high"): "plan organised careful schedule finish prepare tidy diligent".split(),
    ("C", "low"): "later messy forget whatever skip careless lazy improvise".split(),
    ("E", "high"): "party friends talk excited cheerful loud fun crowd".split(),
    ("E", "low"): "quiet alone home book calm silence private reserved".split(),
    ("A", "high"): "kind help forgive gentle share trust warm thank".split(),
    ("A", "low"): "rude blame demand argue selfish cold refuse insult".split(),
    ("N", "high"): "worry anxious nervous upset afraid stress panic tense".split(),
    ("N", "low"): "relaxed steady secure fine composed unbothered confident stable".split(),
}
_FILLER = "i would feel and then maybe just so really think it is that".split()

OPEN_PROMPTS = [
    "Tell me about your weekend.", "How do you deal with a busy week?", "What do you do when you meet new people?",
    "Describe your ideal holiday.", "How do you react when plans change?", "What would you do at a party?",
]  # fmt: skip

_ITEMS = [  # our own MPI-style items: (text, trait, key)
    ("enjoy being the centre of attention", "E", 1), ("talk to a lot of different people at parties", "E", 1),
    ("prefer to spend time alone", "E", -1), ("keep in the background", "E", -1),
    ("trust what people say", "A", 1), ("like to help others", "A", 1),
    ("insult people", "A", -1), ("hold grudges", "A", -1),
    ("get chores done right away", "C", 1), ("make plans and stick to them", "C", 1),
    ("leave a mess in my room", "C", -1), ("often forget to put things back", "C", -1),
    ("love to think up new ways of doing things", "O", 1), ("enjoy art and music", "O", 1),
    ("avoid philosophical discussions", "O", -1), ("do not like new food", "O", -1),
    ("worry about things", "N", 1), ("get stressed out easily", "N", 1),
    ("am relaxed most of the time", "N", -1), ("seldom feel blue", "N", -1),
]  # fmt: skip


def synthetic_corpus(per_situation: int = 2, seed: int = 0, traits=TRAITS) -> list[dict]:
    """Templated SJT-style responses: a situation, then a reply mixing the (trait, pole) words with filler."""
    rng = random.Random(seed)
    rows = []
    for t in traits:
        for s in ("high", "low"):
            bank = POLE_WORDS[(t, s)]
            for sit in SITUATIONS:
                for _ in range(per_situation):
                    words = rng.sample(bank, 3) + rng.sample(_FILLER, 4)
                    rng.shuffle(words)
                    rows.append(
                        {"trait": t, "pole": s, "situation": sit, "text": f"when {sit} , " + " ".join(words)}
                    )
    return rows


def llm_corpus(model, tok, situations=SITUATIONS, traits=TRAITS, per_situation: int = 1, max_new_tokens: int = 48,
               temperature: float = 0.8, seed: int = 0) -> list[dict]:  # fmt: skip
    """The SJTs4LLM recipe with any chat LLM: role-play a person very high / very low in a trait in each situation."""
    import torch

    from tenfold_core.llm import encode_prompt_response

    torch.manual_seed(seed)
    rows = []
    for t in traits:
        for s in ("high", "low"):
            system = (f"You are role-playing a person with very {s} {TRAIT_NAMES[t]}. Answer in the first person, in "
                      "two sentences, saying what you would do and feel.")  # fmt: skip
            prompts = [f"Situation: {sit}. What do you do?" for sit in situations]
            for _ in range(per_situation):
                enc = encode_prompt_response(tok, prompts, None, system=system, padding_side="left")
                enc = {k: v.to(next(model.parameters()).device) for k, v in enc.items()}
                with torch.no_grad():
                    out = model.generate(
                        input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], do_sample=True,
                        temperature=temperature, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id,
                    )  # fmt: skip
                for sit, o in zip(situations, out, strict=True):
                    text = tok.decode(o[enc["input_ids"].shape[1] :], skip_special_tokens=True).strip()
                    rows.append({"trait": t, "pole": s, "situation": sit, "text": text})
    return rows


def write_corpus(rows: list[dict], path: str | Path) -> Path:
    from tenfold_core.io import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
    return Path(path)


def load_items(path: str | Path | None = None) -> list[tuple[str, str, int]]:
    """Questionnaire items ``(text, trait, key)``. ``path``: a CSV in the public MPI format (columns ``text``,
    ``label_ocean`` and ``key`` = +1/-1, e.g. jianggy/MPI inventories/mpi_120.csv); default: our own 20 items."""
    if path is None:
        return list(_ITEMS)
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such items file")
    items = []
    with p.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        for field in ("text", "label_ocean", "key"):
            if field not in (reader.fieldnames or []):
                raise DataError(f"{p}:1: missing column '{field}' (MPI format: text, label_ocean, key)")
        for i, r in enumerate(reader, 2):
            t = str(r["label_ocean"]).strip().upper()
            if t not in TRAITS:
                raise DataError(
                    f"{p}:{i}: label_ocean must be one of O, C, E, A, N, got {r['label_ocean']!r}"
                )
            try:
                key = int(float(r["key"]))
            except ValueError:
                raise DataError(f"{p}:{i}: key must be 1 or -1, got {r['key']!r}") from None
            if key not in (1, -1):
                raise DataError(f"{p}:{i}: key must be 1 or -1, got {key}")
            items.append((r["text"].strip(), t, key))
    return items
