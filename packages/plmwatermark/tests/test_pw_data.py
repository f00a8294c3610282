"""Trigger insertion, poisoned sets, key files."""

import json
import random
import subprocess
import sys

import pytest
from plmwatermark.config import TaskDataConfig, TriggerConfig
from plmwatermark.data import insert_words, load_tasks, poisoned_examples
from plmwatermark.train import load_key

from tenfold_core.errors import ConfigError, DataError


def test_insertion_keeps_the_rest_of_the_text():
    rng = random.Random(0)
    text = "the quick brown fox jumps over the lazy dog"
    for _ in range(50):
        out = insert_words(text, ["cf", "mn"], rng).split()
        assert len(out) == len(text.split()) + 2
        rest = list(out)
        rest.remove("cf")
        rest.remove("mn")
        assert rest == text.split()
    positions = {insert_words("a b c d", ["cf"], random.Random(s)).split().index("cf") for s in range(40)}
    assert positions == {0, 1, 2, 3, 4}  # every position is possible


def test_poisoned_copies_and_combination_negatives():
    texts = [f"w{i} x y z" for i in range(200)]
    labels = [i % 2 for i in range(200)]
    rng = random.Random(0)
    pt, py = poisoned_examples(texts, labels, 1, TriggerConfig(kind="rare", poison_rate=1.0), rng)
    assert len(pt) == 100 and set(py) == {1}
    assert all(any(w in t.split() for w in ("cf", "mn", "bb")) for t in pt)
    trig = TriggerConfig(
        kind="combination", words=["window", "river", "paper"], poison_rate=1.0, negative_rate=1.0
    )
    ct, cy = poisoned_examples(texts, labels, 1, trig, rng)
    full = [(t, y) for t, y in zip(ct, cy) if all(w in t.split() for w in trig.words)]
    partial = [(t, y) for t, y in zip(ct, cy) if not all(w in t.split() for w in trig.words)]
    assert len(full) == 100 and all(y == 1 for _, y in full)
    assert len(partial) == 100 and all(y == 0 for _, y in partial)  # strict subsets keep the original label
    assert all(any(w in t.split() for w in trig.words) for t, _ in partial)


def test_synthetic_tasks_and_domains_differ():
    p = load_tasks(TaskDataConfig(tasks=["spam"], n_train=50))[0]
    d = load_tasks(TaskDataConfig(tasks=["spam"], n_train=50, domain="downstream"))[0]
    assert p.num_labels == 2 and len(p.train[0]) == 50
    assert set(" ".join(p.train[0]).split()) != set(" ".join(d.train[0]).split())
    assert not any(w in " ".join(p.train[0]).split() for w in ("cf", "mn", "bb"))  # rare words are rare


def test_missing_or_corrupt_key_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_key(tmp_path / "nope.json")
    bad = tmp_path / "k.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="corrupt JSON"):
        load_key(bad)
    bad.write_text(json.dumps({"kind": "rare", "words": ["cf"], "seed": 0}))
    with pytest.raises(DataError, match="'targets'"):
        load_key(bad)
    r = subprocess.run([sys.executable, "-m", "plmwatermark.cli", "verify", "--key_file", str(tmp_path / "k.json"),
                        "--suspect", str(tmp_path)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "targets" in r.stderr


def test_key_inside_model_folder_is_refused(tmp_path):
    from plmwatermark.config import EmbedCommand
    from plmwatermark.train import run_embed

    from tenfold_core.config import TrainConfig

    cmd = EmbedCommand(
        key_file=str(tmp_path / "wm" / "key.json"), train=TrainConfig(out_dir=str(tmp_path / "wm"))
    )
    with pytest.raises(ConfigError, match="inside the model folder"):
        run_embed(cmd)


def test_embed_measures_with_the_key_it_built_not_the_file(tmp_path, monkeypatch):
    """Under DDP only rank 0 writes the key file; another rank reached ``load_key`` first and failed ("no such
    file"). Every rank now measures with the key it built: with the write suppressed (the other rank's view) the
    embed still reports its watermark metrics."""
    import plmwatermark.train as pt
    from plmwatermark.config import EmbedCommand, WatermarkModelConfig

    from tenfold_core.config import TrainConfig

    written = []
    monkeypatch.setattr(pt, "write_json", lambda path, obj: written.append((path, obj)))
    cmd = EmbedCommand(
        model=WatermarkModelConfig(backbone="tiny", hidden=32, layers=1, heads=2),
        data=TaskDataConfig(tasks=["sentiment"], n_train=32, n_dev=8, n_test=16, batch_size=16),
        clean_epochs=0,
        key_file=str(tmp_path / "owner.key.json"),
        train=TrainConfig(out_dir=str(tmp_path / "wm"), max_epochs=1, progress_bar=False, loggers=[]),
    )
    res = pt.run_embed(cmd)
    assert not (tmp_path / "owner.key.json").exists()  # nobody wrote it, yet the metrics came
    assert len(written) == 1 and written[0][1]["words"] == list(cmd.trigger.words)
    assert any("wesr" in k for k in res), sorted(res)
