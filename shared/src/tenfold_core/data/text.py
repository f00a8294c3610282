"""Text-classification data from a hub id or a local file, with one label mapping shared by every split.

Local formats: ``.tsv`` (``text<TAB>label``, optional header), ``.csv``, ``.jsonl``/``.json`` (one object a line),
``.parquet``. A folder holding ``train.*`` (and optionally ``dev.*``/``validation.*`` and ``test.*``) gives the splits;
a single file is split deterministically (seeded) into train/dev/test. Bad rows raise :class:`DataError` naming the
file and the line.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tenfold_core.errors import DataError

SPLIT_ALIASES = {"train": ("train",), "dev": ("dev", "validation", "valid", "val"), "test": ("test",)}
EXTENSIONS = (".tsv", ".csv", ".jsonl", ".json", ".parquet", ".txt")


@dataclass
class TextSplit:
    texts: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.texts)

    def __post_init__(self):
        if len(self.texts) != len(self.labels):
            raise ValueError("texts and labels differ in length")


@dataclass
class TextClassificationData:
    """train / dev / test splits and the label names (index i <-> label_names[i])."""

    train: TextSplit
    dev: TextSplit
    test: TextSplit
    label_names: list[str] = field(default_factory=list)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def splits(self) -> dict[str, TextSplit]:
        return {"train": self.train, "dev": self.dev, "test": self.test}


# ------------------------------------------------------------------------------------------------------ readers
def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})") from None


Row = tuple[int, str, object]  # (line number, text, raw label)


def _check_cols(
    path: Path, cols: Sequence[str], text_col: str, label_col: str, line: int | None = None
) -> None:
    where = f"{path} line {line}" if line else str(path)
    for c in (text_col, label_col):
        if c not in cols:
            raise DataError(f"{where}: missing column '{c}' (found: {', '.join(map(str, cols)) or 'none'})")


def _read_tsv(path: Path, text_col: str, label_col: str) -> list[Row]:
    rows: list[Row] = []
    lines = _read_text(path).splitlines()
    start = 0
    if lines:
        head = lines[0].split("\t")
        if len(head) == 2 and (head[0].strip().lower(), head[1].strip().lower()) in {
            (text_col.lower(), label_col.lower()),
            ("sentence", "label"),
            ("text", "label"),
        }:
            start = 1
    for i, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            continue
        parts = line.rsplit("\t", 1)
        if len(parts) != 2:
            raise DataError(f"{path} line {i}: expected 'text<TAB>label', found no tab")
        rows.append((i, parts[0], parts[1].strip()))
    return rows


def _read_csv(path: Path, text_col: str, label_col: str) -> list[Row]:
    reader = csv.DictReader(_read_text(path).splitlines())
    _check_cols(path, reader.fieldnames or [], text_col, label_col)
    rows = []
    for r in reader:
        line = reader.line_num
        if r.get(text_col) is None or r.get(label_col) is None:
            raise DataError(f"{path} line {line}: row has fewer fields than the header")
        rows.append((line, r[text_col], r[label_col].strip()))
    return rows


def _read_jsonl(path: Path, text_col: str, label_col: str) -> list[Row]:
    text = _read_text(path)
    stripped = text.lstrip()
    if stripped.startswith("["):  # a JSON array of objects
        try:
            objs = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path} line {e.lineno}: invalid JSON ({e.msg})") from None
        items = list(enumerate(objs, start=1))
    else:
        items = []
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append((i, json.loads(line)))
            except json.JSONDecodeError as e:
                raise DataError(f"{path} line {i}: invalid JSON ({e.msg})") from None
    rows = []
    for i, obj in items:
        if not isinstance(obj, dict):
            raise DataError(f"{path} line {i}: expected a JSON object")
        _check_cols(path, list(obj), text_col, label_col, line=i)
        rows.append((i, obj[text_col], obj[label_col]))
    return rows


def _read_parquet(path: Path, text_col: str, label_col: str) -> list[Row]:
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises many types for a bad file
        raise DataError(f"{path}: not a readable parquet file ({type(e).__name__})") from None
    _check_cols(path, table.column_names, text_col, label_col)
    texts, labels = table.column(text_col).to_pylist(), table.column(label_col).to_pylist()
    return [(i + 1, t, lab) for i, (t, lab) in enumerate(zip(texts, labels))]


def read_rows(path: str | Path, text_column: str = "text", label_column: str = "label") -> list[Row]:
    """Raw ``(line, text, label)`` rows of one local file; raises DataError on malformed input."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    ext = path.suffix.lower()
    reader = {
        ".tsv": _read_tsv,
        ".txt": _read_tsv,
        ".csv": _read_csv,
        ".jsonl": _read_jsonl,
        ".json": _read_jsonl,
        ".parquet": _read_parquet,
    }.get(ext)
    if reader is None:
        raise DataError(f"{path}: unsupported extension '{ext}' (expected one of {', '.join(EXTENSIONS)})")
    rows = reader(path, text_column, label_column)
    if not rows:
        raise DataError(f"{path}: no rows (empty file)")
    for line, text, _ in rows:
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path} line {line}: empty or non-text '{text_column}'")
    return rows


# ---------------------------------------------------------------------------------------------------- labelling
def _label_key(v: object) -> str:
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def build_label_names(values: Sequence[object]) -> list[str]:
    """Label names in a stable order: integers numerically (0..C-1 keep their index), strings alphabetically."""
    keys = sorted({_label_key(v) for v in values})
    if keys and all(k.lstrip("-").isdigit() for k in keys):
        ints = sorted(int(k) for k in keys)
        if ints[0] >= 0 and ints[-1] < 1000:  # 0..max, so a label's value is its index
            return [str(i) for i in range(ints[-1] + 1)]
        return [str(i) for i in ints]
    return keys


def label_names_from_rows(path: str, rows: list[Row]) -> list[str]:
    """The label set of a training file, checked: integer labels must be exactly 0..K-1 (a stray ``7`` among 0/1 or a
    ``10**9`` would otherwise become new classes), and a file of integer labels may not hold a non-integer (``positive``,
    ``0.7``). Strings sort alphabetically. DataError naming the file, the line and the value."""
    keys = [(line, _label_key(lab), lab) for line, _, lab in rows]
    is_int = [k.lstrip("-").isdigit() for _, k, _ in keys]
    if any(is_int) and not all(is_int):
        n_int = sum(is_int)
        if n_int >= len(keys) / 2:  # mostly integers: the odd ones out are errors
            line, _, lab = next(x for x, ok in zip(keys, is_int) if not ok)
            raise DataError(f"{path} line {line}: label {lab!r} is not an integer class like the others "
                            "(or pass the label names explicitly)")  # fmt: skip
        line, _, lab = next(x for x, ok in zip(keys, is_int) if ok)
        raise DataError(f"{path} line {line}: label {lab!r} is a number among named labels")
    if keys and all(is_int):
        values = sorted({int(k) for _, k, _ in keys})
        k = len(values)
        if values != list(range(k)):
            bad = next(v for v in values if v < 0 or v >= k)
            line = next(ln for ln, key, _ in keys if int(key) == bad)
            raise DataError(
                f"{path} line {line}: label {bad} breaks the label set: integer labels must be 0..K-1 "
                f"(found {', '.join(map(str, values[:8]))}{' ...' if k > 8 else ''}; or pass the label names)"
            )
        return [str(i) for i in values]
    return sorted({k for _, k, _ in keys})


def _encode(path: str, rows: list[Row], index: dict[str, int]) -> TextSplit:
    texts, labels = [], []
    for line, text, lab in rows:
        k = _label_key(lab)
        if k not in index:
            known = ", ".join(index) if len(index) <= 20 else f"{len(index)} names"
            raise DataError(f"{path} line {line}: label '{lab}' is not a known label ({known})")
        texts.append(text)
        labels.append(index[k])
    return TextSplit(texts, labels)


def split_indices(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> list[list[int]]:
    """Deterministic shuffled split of ``range(n)`` into parts with the given fractions."""
    if abs(sum(fractions) - 1.0) > 1e-6 or any(f < 0 for f in fractions):
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {list(fractions)}")
    idx = list(range(n))
    random.Random(seed).shuffle(idx)
    cuts, acc = [], 0.0
    for f in fractions[:-1]:
        acc += f
        cuts.append(round(acc * n))
    bounds = [0, *cuts, n]
    return [idx[bounds[i] : bounds[i + 1]] for i in range(len(fractions))]


def _find_split_files(folder: Path) -> dict[str, Path]:
    found = {}
    for split, aliases in SPLIT_ALIASES.items():
        for a in aliases:
            for ext in EXTENSIONS:
                if (folder / f"{a}{ext}").is_file():
                    found.setdefault(split, folder / f"{a}{ext}")
    return found


def load_text_classification(
    source: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    label_names: Sequence[str] | None = None,
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    hub_config: str | None = None,
) -> TextClassificationData:
    """Load a text-classification data set from a local file or folder, or from a hub id through ``datasets``.

    Missing splits are carved deterministically from train (dev) or from the single file (dev and test). The label
    set comes from the training file (integers must be 0..K-1); a dev/test label unseen in train is a DataError.
    ``label_names`` fixes the label order; otherwise integers keep their value and strings are sorted.
    """
    src = Path(source)
    if src.is_file():
        rows = read_rows(src, text_column, label_column)
        names = list(label_names) if label_names else label_names_from_rows(str(src), rows)
        data = _encode(str(src), rows, {n: i for i, n in enumerate(names)})
        parts = split_indices(len(data), split_fractions, seed)
        sub = [TextSplit([data.texts[i] for i in p], [data.labels[i] for i in p]) for p in parts]
        return TextClassificationData(sub[0], sub[1], sub[2], names)
    if src.is_dir():
        files = _find_split_files(src)
        if "train" not in files:
            raise DataError(f"{src}: no train file (expected train.tsv/.csv/.jsonl/.parquet)")
        rows = {k: read_rows(p, text_column, label_column) for k, p in files.items()}
        # the label set comes from train: a dev/test label unseen in train is an error, not a new class
        names = (
            list(label_names) if label_names else label_names_from_rows(str(files["train"]), rows["train"])
        )
        index = {n: i for i, n in enumerate(names)}
        enc = {k: _encode(str(files[k]), rs, index) for k, rs in rows.items()}
        train = enc["train"]
        if "dev" not in enc:  # carve a dev split from train, deterministically
            frac = split_fractions[1] / max(split_fractions[0] + split_fractions[1], 1e-9)
            tr, dv = split_indices(len(train), (1 - frac, frac), seed)
            enc["dev"] = TextSplit([train.texts[i] for i in dv], [train.labels[i] for i in dv])
            train = TextSplit([train.texts[i] for i in tr], [train.labels[i] for i in tr])
        test = enc.get("test", TextSplit([], []))
        return TextClassificationData(train, enc["dev"], test, names)
    if str(source).startswith((".", "/", "~")) or src.suffix.lower() in EXTENSIONS:
        raise DataError(f"{source}: no such file or folder")
    return _load_hub(str(source), text_column, label_column, label_names, split_fractions, seed, hub_config)


def _load_hub(
    name, text_column, label_column, label_names, split_fractions, seed, hub_config
) -> TextClassificationData:
    from tenfold_core.errors import require

    datasets = require("datasets", purpose=f"loading the hub data set {name}")
    try:
        ds = datasets.load_dataset(name, hub_config)
    except Exception as e:
        offline = (
            "offline" in str(e).lower() or "connect" in str(e).lower() or "couldn't reach" in str(e).lower()
        )
        hint = "; pass a local file or folder instead" if offline else ""
        raise DataError(
            f"{name}: cannot load this hub data set ({type(e).__name__}: {str(e).splitlines()[0][:200]}){hint}"
        ) from None
    splits = {}
    for split, aliases in SPLIT_ALIASES.items():
        for a in aliases:
            if a in ds:
                splits[split] = ds[a]
                break
    if "train" not in splits:
        raise DataError(f"{name}: the hub data set has no train split (has: {', '.join(ds)})")
    cols = splits["train"].column_names
    _check_cols(Path(name), cols, text_column, label_column)
    feat = splits["train"].features.get(label_column)
    names = list(label_names) if label_names else (list(feat.names) if hasattr(feat, "names") else None)
    raw = {k: [(i + 1, r[text_column], r[label_column]) for i, r in enumerate(v)] for k, v in splits.items()}
    if names is None:
        names = build_label_names([r[2] for rs in raw.values() for r in rs])
    index = {n: i for i, n in enumerate(names)}
    if hasattr(feat, "names"):  # ClassLabel ints -> names
        raw = {
            k: [(ln, t, feat.names[lab] if isinstance(lab, int) and lab >= 0 else lab) for ln, t, lab in rs]
            for k, rs in raw.items()
        }
    # hub test splits often hide labels (-1): drop such rows, then carve what is missing
    raw = {k: [r for r in rs if _label_key(r[2]) in index] for k, rs in raw.items()}
    enc = {k: _encode(f"{name}[{k}]", rs, index) for k, rs in raw.items() if rs}
    train = enc["train"]
    if "dev" not in enc:
        tr, dv = split_indices(len(train), (0.9, 0.1), seed)
        enc["dev"] = TextSplit([train.texts[i] for i in dv], [train.labels[i] for i in dv])
        train = TextSplit([train.texts[i] for i in tr], [train.labels[i] for i in tr])
    if (
        "test" not in enc
    ):  # keep test untouched by model selection: use dev as test, carve a new dev from train
        enc["test"] = enc["dev"]
        tr, dv = split_indices(len(train), (0.9, 0.1), seed)
        enc["dev"] = TextSplit([train.texts[i] for i in dv], [train.labels[i] for i in dv])
        train = TextSplit([train.texts[i] for i in tr], [train.labels[i] for i in tr])
    return TextClassificationData(train, enc["dev"], enc["test"], names)


def write_tsv(path: str | Path, split: TextSplit, label_names: Sequence[str] | None = None) -> None:
    """Write a split as ``text<TAB>label`` lines (labels as names when given)."""
    from tenfold_core.io import atomic_write_text

    lines = ["text\tlabel"]
    for t, y in zip(split.texts, split.labels):
        lines.append(f"{t.replace(chr(9), ' ')}\t{label_names[y] if label_names else y}")
    atomic_write_text(path, "\n".join(lines) + "\n")
