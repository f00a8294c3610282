"""Dialogues with COMET knowledge: a synthetic corpus, local JSONL, CEM's preprocessed pickle, or a hub data set.

One example = ``{"id", "context": [utterances], "target": str, "emotion": str, "knowledge": {relation: text}}``.
Local JSONL rows have exactly these keys (``context`` may also be one string); a row with a missing relation or an
unknown emotion raises :class:`DataError` naming ``file:line``. Splits: train / dev / test; checkpoints are selected on
dev only.
"""

from __future__ import annotations

import json
import pickle
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcks.config import ED_EMOTIONS, RELATIONS, DataConfig
from tenfold_core.errors import DataError

SPLITS = ("train", "dev", "test")


@dataclass
class Example:
    id: str
    context: list[str]
    target: str
    emotion: str
    knowledge: dict[str, str]


@dataclass
class DialogueData:
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    emotions: list[str] = field(default_factory=lambda: list(ED_EMOTIONS))
    relations: list[str] = field(default_factory=lambda: list(RELATIONS))

    def split(self, name: str) -> list[Example]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}")
        return getattr(self, name)


# ------------------------------------------------------------------------------------------------ synthetic
_TOPICS = (
    "exam",
    "trip",
    "dog",
    "party",
    "job",
    "car",
    "garden",
    "concert",
    "game",
    "house",
    "letter",
    "recipe",
)
_NEUTRAL = (
    "the",
    "a",
    "my",
    "today",
    "yesterday",
    "with",
    "about",
    "after",
    "we",
    "they",
    "some",
    "long",
    "new",
)
_EMOTION_WORDS = {
    "surprised": ("shocked", "astonished", "unexpected", "stunned"),
    "excited": ("thrilled", "eager", "pumped", "buzzing"),
    "annoyed": ("irritated", "bothered", "fed-up", "grumpy"),
    "proud": ("accomplished", "honored", "triumphant", "dignified"),
    "angry": ("furious", "mad", "enraged", "livid"),
    "sad": ("gloomy", "tearful", "heartbroken", "blue"),
    "grateful": ("thankful", "blessed", "appreciative", "indebted"),
    "lonely": ("isolated", "alone", "abandoned", "solitary"),
}
_REPLIES = {
    "surprised": "wow i did not see that coming with the {t}",
    "excited": "that is awesome enjoy the {t}",
    "annoyed": "that sounds so frustrating about the {t}",
    "proud": "you should be proud of the {t}",
    "angry": "i would be mad too about the {t}",
    "sad": "i am so sorry about the {t}",
    "grateful": "it is lovely to be thankful for the {t}",
    "lonely": "i am here for you after the {t}",
}
_RELATION_STEMS = {
    "xIntent": "to deal with",
    "xNeed": "to prepare for",
    "xWant": "to talk about",
    "xEffect": "thinks about",
    "xReact": "feels",
}


def synthetic_dialogues(cfg: DataConfig) -> DialogueData:
    """An ED-like corpus in which only ``cfg.informative_relation`` carries the emotion: contexts are neutral,
    the informative relation names an emotion word, the other relations name emotion words of random emotions."""
    emotions = list(ED_EMOTIONS[: cfg.n_emotions])
    lex = {e: _EMOTION_WORDS.get(e, (e, e + "-ish", "very-" + e, e + "-like")) for e in emotions}
    rng = random.Random(cfg.seed)

    def one(i: int) -> Example:
        emo = rng.choice(emotions)
        topic = rng.choice(_TOPICS)
        ctx = [
            " ".join(rng.sample(_NEUTRAL, 3) + ["the", topic] + rng.sample(_NEUTRAL, 2)),
            " ".join(["it", "was", "about", "the", topic] + rng.sample(_NEUTRAL, 2)),
        ][: rng.choice((1, 2))]
        know = {}
        for r in RELATIONS:
            if r == cfg.informative_relation:
                word = rng.choice(lex[emo])
            elif rng.random() < cfg.distractor_emotion_rate:
                word = rng.choice(lex[rng.choice(emotions)])
            else:
                word = rng.choice(_TOPICS)
            know[r] = f"{_RELATION_STEMS[r]} {word} . {rng.choice(_NEUTRAL)} {topic}"
        reply = _REPLIES.get(emo, "i understand how " + emo + " the {t} makes you").format(t=topic)
        return Example(f"syn-{i}", ctx, reply, emo, know)

    n = cfg.n_train + cfg.n_dev + cfg.n_test
    rows = [one(i) for i in range(n)]
    tr, dv = cfg.n_train, cfg.n_train + cfg.n_dev
    return DialogueData(rows[:tr], rows[tr:dv], rows[dv:], emotions=emotions)


# ------------------------------------------------------------------------------------------------- local
def _row_to_example(
    obj: Any, where: str, emotions: Sequence[str], relations: Sequence[str], idx: int
) -> Example:
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object")
    for key in ("context", "target", "emotion", "knowledge"):
        if key not in obj:
            raise DataError(f"{where}: missing field '{key}'")
    ctx = obj["context"]
    ctx = [ctx] if isinstance(ctx, str) else ctx
    if not isinstance(ctx, list) or not ctx or not all(isinstance(u, str) for u in ctx):
        raise DataError(f"{where}: field 'context' must be a string or a non-empty list of strings")
    if not isinstance(obj["target"], str):
        raise DataError(f"{where}: field 'target' must be a string")
    emo = str(obj["emotion"]).strip().lower()
    if emo not in emotions:
        raise DataError(
            f"{where}: unknown emotion label {obj['emotion']!r} (expected one of the {len(emotions)} ED emotions)"
        )
    know = obj["knowledge"]
    if not isinstance(know, dict):
        raise DataError(f"{where}: field 'knowledge' must map relation -> text")
    out = {}
    for r in relations:
        if r not in know:
            raise DataError(f"{where}: missing relation '{r}' in field 'knowledge'")
        v = know[r]
        out[r] = " . ".join(x for x in v if x.strip().lower() != "none") if isinstance(v, list) else str(v)
    return Example(str(obj.get("id", idx)), ctx, obj["target"], emo, out)


def read_jsonl(path: str | Path, emotions: Sequence[str] = ED_EMOTIONS, relations: Sequence[str] = RELATIONS):
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DataError(f"{p}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError:
        raise DataError(f"{p}: not UTF-8 text") from None
    rows = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{p}:{i}: invalid JSON ({e.msg})") from None
        rows.append(_row_to_example(obj, f"{p}:{i}", emotions, relations, i))
    if not rows:
        raise DataError(f"{p}: no examples")
    return rows


def _find(folder: Path, split: str) -> Path | None:
    names = {"dev": ("dev", "valid", "validation")}.get(split, (split,))
    for n in names:
        f = folder / f"{n}.jsonl"
        if f.is_file():
            return f
    return None


def load_jsonl(cfg: DataConfig) -> DialogueData:
    p = Path(cfg.path or "")
    if p.is_dir():
        files = {s: _find(p, s) for s in SPLITS}
        missing = [s for s, f in files.items() if f is None]
        if missing:
            raise DataError(f"{p}: no {missing[0]}.jsonl (a folder needs train/dev/test.jsonl)")
        return DialogueData(*(read_jsonl(files[s]) for s in SPLITS))
    if not p.is_file():
        raise DataError(f"{p}: no such file or folder")
    rows = read_jsonl(p)
    if len(rows) < 3:
        raise DataError(f"{p}: needs at least 3 examples to split into train/dev/test")
    order = list(range(len(rows)))
    random.Random(cfg.seed).shuffle(order)
    n_dev = n_test = max(1, len(rows) // 10)
    pick = [rows[i] for i in order]
    return DialogueData(pick[n_dev + n_test :], pick[:n_dev], pick[n_dev : n_dev + n_test])


# --------------------------------------------------------------------------------------------------- CEM
class _Stub:
    """Stands in for any class inside a pickle (e.g. CEM's ``Lang`` vocabulary): nothing is executed."""

    def __init__(self, *a, **k):
        pass

    def __setstate__(self, state):
        self.__dict__["_state"] = state


class _SafeUnpickler(pickle.Unpickler):
    _ALLOWED = {("builtins", n) for n in ("dict", "list", "tuple", "set", "str", "int", "float", "bool")}
    _ALLOWED |= {("collections", "defaultdict"), ("collections", "OrderedDict")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            import builtins
            import collections

            return getattr(builtins if module == "builtins" else collections, name)
        if module.startswith("numpy"):
            raise pickle.UnpicklingError(f"numpy objects are not accepted ({module}.{name})")
        return _Stub


def _detok(x: Any) -> str:
    return " ".join(x) if isinstance(x, (list, tuple)) else str(x)


def load_cem(cfg: DataConfig) -> DialogueData:
    """CEM's ``dataset_preproc.p``: ``[train, dev, test, vocab]``, each split a dict of lists ``context``
    (utterances as token lists), ``target``, ``emotion``, ``utt_cs`` (5 relations x generations). Loaded with a
    restricted unpickler (plain containers only; any class becomes an inert stub)."""
    p = Path(cfg.path or "")
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    try:
        with p.open("rb") as fh:
            obj = _SafeUnpickler(fh).load()
    except Exception as e:
        raise DataError(f"{p}: not a readable CEM pickle ({type(e).__name__}: {str(e)[:120]})") from None
    if not isinstance(obj, (list, tuple)) or len(obj) < 3 or not all(isinstance(s, dict) for s in obj[:3]):
        raise DataError(f"{p}: expected [train, dev, test, vocab] split dicts (CEM's dataset_preproc.p)")
    splits = []
    for name, d in zip(SPLITS, obj[:3]):
        for key in ("context", "target", "emotion", "utt_cs"):
            if key not in d:
                raise DataError(f"{p}: split {name}: missing key '{key}'")
        rows = []
        for i, (ctx, tgt, emo, cs) in enumerate(zip(d["context"], d["target"], d["emotion"], d["utt_cs"])):
            where = f"{p}: split {name} example {i}"
            if len(cs) < len(RELATIONS):
                raise DataError(f"{where}: missing relation '{RELATIONS[len(cs)]}' in utt_cs")
            know = {r: [_detok(g) for g in gens] for r, gens in zip(RELATIONS, cs)}
            rows.append(
                _row_to_example(
                    {
                        "id": f"{name}-{i}",
                        "context": [_detok(u) for u in ctx],
                        "target": _detok(tgt),
                        "emotion": emo,
                        "knowledge": know,
                    },
                    where,
                    ED_EMOTIONS,
                    RELATIONS,
                    i,
                )  # fmt: skip
            )
        splits.append(rows)
    return DialogueData(*splits)


# --------------------------------------------------------------------------------------------------- hub
def load_hub(cfg: DataConfig) -> DialogueData:
    """A hub EmpatheticDialogues copy (rows: conv_id, utterance_idx, context = emotion, utterance) + a local
    knowledge JSONL ``{"id": "<conv_id>:<turn>", "knowledge": {relation: text}}`` (COMET on the last utterance)."""
    if not cfg.knowledge_file:
        raise DataError(
            "data.knowledge_file is required with data.source=hub (COMET output, one line per example)"
        )
    know: dict[str, dict] = {}
    kp = Path(cfg.knowledge_file)
    try:
        klines = kp.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DataError(f"{kp}: cannot read ({e.strerror})") from None
    for i, line in enumerate(klines, 1):
        if line.strip():
            try:
                o = json.loads(line)
                know[str(o["id"])] = o["knowledge"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DataError(
                    f'{kp}:{i}: expected {{"id": ..., "knowledge": {{relation: text}}}}'
                ) from None
    try:
        import datasets

        ds = datasets.load_dataset(cfg.path)
    except Exception as e:
        raise DataError(
            f"{cfg.path}: cannot load this hub data set ({str(e).splitlines()[0][:200]})"
        ) from None
    names = {"train": "train", "dev": "validation", "test": "test"}
    out = []
    for s in SPLITS:
        if names[s] not in ds:
            raise DataError(f"{cfg.path}: no '{names[s]}' split")
        convs: dict[str, list] = {}
        for row in ds[names[s]]:
            convs.setdefault(str(row["conv_id"]), []).append(row)
        rows = []
        for cid, turns in convs.items():
            turns.sort(key=lambda r: int(r["utterance_idx"]))
            utts = [str(t["utterance"]).replace("_comma_", ",") for t in turns]
            for j in range(1, len(utts), 2):  # listener turns
                key = f"{cid}:{j}"
                if key not in know:
                    raise DataError(f"{kp}: no knowledge line for example {key}")
                rows.append(
                    _row_to_example(
                        {
                            "id": key,
                            "context": utts[:j],
                            "target": utts[j],
                            "emotion": turns[0]["context"],
                            "knowledge": know[key],
                        },
                        f"{kp} (example {key})",
                        ED_EMOTIONS,
                        RELATIONS,
                        j,
                    )  # fmt: skip
                )
        out.append(rows)
    return DialogueData(*out)


def load_dialogues(cfg: DataConfig) -> DialogueData:
    data = {"synthetic": synthetic_dialogues, "jsonl": load_jsonl, "cem": load_cem, "hub": load_hub}[
        cfg.source
    ](cfg)
    if cfg.train_fraction < 1:
        k = max(2, int(round(len(data.train) * cfg.train_fraction)))
        data.train = data.train[:k]
    return data


def write_jsonl(path: str | Path, rows: Sequence[Example]) -> None:
    with Path(path).open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps({"id": r.id, "context": r.context, "target": r.target, "emotion": r.emotion,
                                 "knowledge": r.knowledge}) + "\n")  # fmt: skip


# ----------------------------------------------------------------------------------------------- batches
class DialogueDataset:
    """Pre-tokenised examples; :meth:`collate` pads to the longest in the batch."""

    def __init__(self, rows: Sequence[Example], tokenizer, cfg: DataConfig, emotions: Sequence[str],
                 relations: Sequence[str]):  # fmt: skip
        self.rows = list(rows)
        index = {e: i for i, e in enumerate(emotions)}
        sep = cfg.utterance_separator
        ctx = tokenizer([sep.join(r.context) for r in rows], truncation=True, max_length=cfg.max_source_len)
        tgt = tokenizer([r.target for r in rows], truncation=True, max_length=cfg.max_target_len)
        know = [
            tokenizer([r.knowledge[rel] for r in rows], truncation=True, max_length=cfg.max_knowledge_len)[
                "input_ids"
            ]
            for rel in relations
        ]
        self.items = []
        for i, r in enumerate(rows):
            if r.emotion not in index:
                raise DataError(f"example {r.id}: unknown emotion label {r.emotion!r}")
            self.items.append(
                (ctx["input_ids"][i], tgt["input_ids"][i], [k[i] for k in know], index[r.emotion])
            )
        self.pad = tokenizer.pad_token_id

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]

    def collate(self, batch, *, ignore_padding: bool = True, decoder_start: int = 2):
        import torch

        pad = self.pad
        b = len(batch)
        t = max(len(x[0]) for x in batch)
        n = max(len(x[1]) for x in batch)
        r = len(batch[0][2])
        lk = max(len(k) for x in batch for k in x[2])
        ids = torch.full((b, t), pad, dtype=torch.long)
        tgt = torch.full((b, n), pad, dtype=torch.long)
        kid = torch.full((b, r, lk), pad, dtype=torch.long)
        for i, (c, y, ks, _) in enumerate(batch):
            ids[i, : len(c)] = torch.tensor(c)
            tgt[i, : len(y)] = torch.tensor(y)
            for j, k in enumerate(ks):
                kid[i, j, : len(k)] = torch.tensor(k)
        dec = torch.full_like(tgt, pad)
        dec[:, 0] = decoder_start
        dec[:, 1:] = tgt[:, :-1]
        tmask = tgt != pad
        labels = tgt.masked_fill(~tmask, -100) if ignore_padding else tgt
        return {
            "input_ids": ids, "attention_mask": (ids != pad).long(), "knowledge_input_ids": kid,
            "knowledge_attention_mask": (kid != pad).long(), "decoder_input_ids": dec,
            "decoder_attention_mask": (dec != pad).long().index_fill(1, torch.tensor([0]), 1), "labels": labels,
            "target_mask": tmask, "emotion_labels": torch.tensor([x[3] for x in batch], dtype=torch.long),
        }  # fmt: skip


def build_tokenizer(cfg_tokenizer: str | None, backbone: str, data: DialogueData, max_length: int = 512):
    """The backbone's tokenizer, a saved one, or (tiny backbone) a word-level tokenizer built on the training text."""
    if cfg_tokenizer:
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(cfg_tokenizer)
        except (OSError, ValueError) as e:
            raise DataError(
                f"data.tokenizer {cfg_tokenizer}: cannot load ({str(e).splitlines()[0][:200]})"
            ) from None
    if backbone == "tiny":
        from tenfold_core.models import word_level_tokenizer

        texts = []
        for r in data.train + data.dev:
            texts += r.context + [r.target] + list(r.knowledge.values())
        texts.append("</s> .")
        return word_level_tokenizer(texts, max_length=max_length)
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(backbone)
    except (OSError, ValueError) as e:
        raise DataError(f"{backbone}: cannot load its tokenizer ({str(e).splitlines()[0][:200]})") from None
