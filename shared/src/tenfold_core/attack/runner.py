"""Attack runs: example sampling, per-example JSONL records written as the run goes, resume, summary table.

Each attacked example appends one JSON line (``index``, ``original``, ``perturbed``, ``label``, ``original_pred``,
``perturbed_pred``, ``queries``, ``num_words``, ``perturbed_words``, ``substitutions``, ``status``, ...) followed by
flush + fsync, so a killed run loses at most the example in flight. On resume the records already in the file are
kept, a partial last line (the kill happened mid-write) is cut off, and only the missing examples are attacked. The
protocol is stored beside the records (``<records>.protocol.json``) and a resume under another protocol is refused.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tenfold_core.attack.recipes import AttackProtocol
from tenfold_core.errors import ConfigError, DataError
from tenfold_core.io import write_json
from tenfold_core.metrics import robustness_summary
from tenfold_core.report import markdown_table

__all__ = [
    "sample_examples",
    "read_records",
    "RecordWriter",
    "run_attack",
    "summarize",
    "summary_table",
    "summary_report",
]


def sample_examples(texts: Sequence[str], n: int = 1000, min_words: int = 5, seed: int = 42) -> list[int]:
    """Indices of ``n`` texts with at least ``min_words`` whitespace tokens, sampled without replacement with
    ``seed`` (all of them, in a seeded order, when fewer qualify)."""
    pool = [i for i, t in enumerate(texts) if len(t.split()) >= min_words]
    rng = random.Random(seed)
    return rng.sample(pool, min(n, len(pool)))


def read_records(path: str | os.PathLike, repair: bool = False) -> list[dict]:
    """Records of a JSONL file. A last line without its newline (a kill mid-write) is ignored — and cut off the
    file with ``repair`` — any other bad line is a :class:`DataError` naming the line."""
    path = Path(path)
    if not path.is_file():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1  # bytes up to the last complete line
    if repair and end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
    records = []
    for ln, line in enumerate(data[:end].decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path} line {ln}: not a JSON record ({e.msg})") from None
        if not isinstance(rec, dict) or "status" not in rec:
            raise DataError(f"{path} line {ln}: a record needs a 'status' field")
        records.append(rec)
    return records


class RecordWriter:
    """Append one JSON record per line; each line is flushed and fsynced before the next example starts."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, record: Mapping) -> None:
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _protocol_path(records_path: Path) -> Path:
    return records_path.with_name(records_path.name + ".protocol.json")


def run_attack(
    attack,
    texts: Sequence[str],
    labels: Sequence[int],
    out: str | os.PathLike | None = None,
    *,
    indices: Sequence[int] | None = None,
    resume: bool = True,
    progress: Callable[[int, int, dict], None] | None = None,
    max_examples: int | None = None,
    batch_examples: int = 1,
) -> list[dict]:
    """Attack ``texts`` (``indices`` of them; default: the protocol's seeded sample) and return every record.

    ``attack`` is a :class:`~tenfold_core.attack.search.GreedyWordSwapAttack` (or anything with ``attack(text,
    label) -> record`` and a ``protocol``). With ``out`` (a ``.jsonl`` path) records are appended as they are made and
    a second call resumes. ``max_examples`` stops after that many new examples (used to simulate a kill in tests).
    ``batch_examples > 1`` attacks that many examples at once, their queries batched together
    (:meth:`~tenfold_core.attack.search.GreedyWordSwapAttack.attack_many`); records are then written in the order the
    examples finish, and the returned list is still in ``indices`` order.
    """
    if len(texts) != len(labels):
        raise ConfigError(f"{len(texts)} texts but {len(labels)} labels")
    proto: AttackProtocol = attack.protocol
    if indices is None:
        indices = sample_examples(texts, proto.n_examples, proto.min_words, proto.seed)
    done: dict[int, dict] = {}
    writer = None
    if out is not None:
        out = Path(out)
        ppath = _protocol_path(out)
        meta = {"protocol": proto.to_dict(), "backend": getattr(attack, "backend", "tenfold")}
        if out.exists() and resume:
            if ppath.is_file():
                old = json.loads(ppath.read_text(encoding="utf-8"))
                if old.get("protocol") != meta["protocol"]:
                    raise ConfigError(
                        f"{out}: records were made under another protocol ({ppath}); use a new output file"
                    )
            for r in read_records(out, repair=True):
                if "index" in r:
                    done[int(r["index"])] = r
        elif out.exists():
            out.unlink()
        write_json(ppath, meta)
        writer = RecordWriter(out)
    todo = [int(i) for i in indices if int(i) not in done]
    if max_examples is not None:
        todo = todo[:max_examples]
    made: dict[int, dict] = {}

    def keep(idx: int, rec: dict, t0: float) -> None:
        rec = {"index": idx, **rec, "seconds": round(time.perf_counter() - t0, 4)}
        if writer is not None:
            writer.write(rec)
        made[idx] = rec
        if progress is not None:
            progress(len(done) + len(made), len(indices), rec)

    try:
        if batch_examples > 1 and hasattr(attack, "attack_many"):
            t0 = time.perf_counter()
            pairs = [(texts[i], int(labels[i])) for i in todo]
            for pos, rec in attack.attack_many(pairs, width=batch_examples):
                keep(todo[pos], rec, t0)  # seconds: since the batch started
        else:
            for idx in todo:
                t0 = time.perf_counter()
                keep(idx, attack.attack(texts[idx], int(labels[idx])), t0)
    finally:
        if writer is not None:
            writer.close()
    return [done.get(int(i)) or made[int(i)] for i in indices if int(i) in done or int(i) in made]


def summarize(records: Sequence[Mapping]) -> dict[str, float]:
    """Clean %, AUA %, Suc %, mean #Query (non-skipped examples, all queries spent) and perturbed-word % through
    :func:`tenfold_core.metrics.robustness_summary`."""
    return robustness_summary(records)


def summary_table(rows: Mapping[str, Sequence[Mapping]] | Sequence[Mapping], digits: int = 2) -> str:
    """A markdown table: one row per named record list (``{"textfooler": records, ...}``) or per summary dict."""
    items = (
        rows.items()
        if isinstance(rows, Mapping)
        else [(r.get("name", str(i)), r) for i, r in enumerate(rows)]
    )
    table = []
    for name, recs in items:
        s = summarize(recs) if not isinstance(recs, Mapping) else recs
        table.append({
            "attack": name,
            "n": s["n"],
            "Clean%": s["clean_acc"],
            "AUA%": s["aua"],
            "Suc%": s["success_rate"],
            "#Query": s["mean_queries"],
            "Pert%": s["perturbed_word_pct"],
        })  # fmt: skip
    return markdown_table(table, digits=digits)


def summary_report(
    rows: Mapping[str, Sequence[Mapping]],
    protocol: AttackProtocol | Mapping[str, AttackProtocol],
    synonyms=None,
    encoder=None,
    digits: int = 2,
) -> str:
    """One row per recipe, and under the table one protocol line per recipe (recipe, synonym source and K, rho_max,
    encoder and the similarity threshold used, budget, example filter and seed) plus the number of examples attacked
    of those requested: numbers are only comparable under the same protocol.

    ``protocol`` is one :class:`AttackProtocol` (its recipe is replaced by each row's name when that names a recipe)
    or a mapping ``{row name: protocol}``."""
    import dataclasses

    from tenfold_core.attack.recipes import RECIPES, get_recipe

    lines = []
    for name, recs in rows.items():
        if isinstance(protocol, Mapping):
            if name not in protocol:
                raise ConfigError(f"summary_report: no protocol for row {name!r}")
            proto = protocol[name]
        else:
            proto = protocol
            try:
                recipe = get_recipe(name).name
            except ConfigError:
                recipe = None
            if recipe in RECIPES and recipe != proto.recipe_spec.name:
                proto = dataclasses.replace(proto, recipe=recipe)
        n = len(recs) if not isinstance(recs, Mapping) else recs.get("n")
        lines.append(
            f"- {name}: {proto.describe(synonyms, encoder)}; attacked {n} of {proto.n_examples} requested examples"
        )
    return summary_table(rows, digits) + "\nProtocol per row:\n" + "\n".join(lines) + "\n"
