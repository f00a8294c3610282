"""Data loading: local JSONL, CEM's pickle, bad rows as one line naming file:line, the CLI's exit status 2."""

import json
import pickle
import subprocess
import sys

import pytest
from dcks.config import RELATIONS, DataConfig
from dcks.data import load_cem, load_dialogues, read_jsonl, synthetic_dialogues

from tenfold_core.errors import DataError


def _row(**kw):
    r = {"context": ["i got the job", "that is great"], "target": "congratulations", "emotion": "proud",
         "knowledge": {r: f"text {r}" for r in RELATIONS}}  # fmt: skip
    r.update(kw)
    return r


def _write(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_jsonl_folder_roundtrip(tmp_path):
    for s in ("train", "dev", "test"):
        _write(tmp_path / f"{s}.jsonl", [_row(id=f"{s}{i}") for i in range(3)])
    d = load_dialogues(DataConfig(source="jsonl", path=str(tmp_path)))
    assert [len(d.train), len(d.dev), len(d.test)] == [3, 3, 3]
    assert d.test[0].id == "test0" and d.train[0].knowledge["xReact"] == "text xReact"


def test_missing_relation_names_file_and_line(tmp_path):
    bad = _row()
    del bad["knowledge"]["xWant"]
    p = _write(tmp_path / "d.jsonl", [_row(), bad])
    with pytest.raises(DataError, match=r"d\.jsonl:2: missing relation 'xWant'"):
        read_jsonl(p)


def test_unknown_emotion_names_file_and_line(tmp_path):
    p = _write(tmp_path / "d.jsonl", [_row(), _row(), _row(emotion="hangry")])
    with pytest.raises(DataError, match=r"d\.jsonl:3: unknown emotion label 'hangry'"):
        read_jsonl(p)


class Lang:  # stands in for CEM's vocabulary class inside the pickle
    def __init__(self):
        self.word2index = {"a": 1}


def test_cem_pickle_with_restricted_unpickler(tmp_path):
    split = {
        "context": [[["i", "lost", "my", "dog"]], [["exam", "went", "well"], ["nice"]]],
        "target": [["so", "sorry"], ["well", "done"]],
        "emotion": ["sad", "proud"],
        "utt_cs": [[[["to", "find", "it"], ["none"]]] * 5, [[["relief"]]] * 5],
    }
    p = tmp_path / "dataset_preproc.p"
    p.write_bytes(pickle.dumps([split, split, split, Lang()]))
    d = load_cem(DataConfig(source="cem", path=str(p)))
    assert d.train[0].context == ["i lost my dog"] and d.train[0].target == "so sorry"
    assert d.train[0].knowledge["xIntent"] == "to find it"  # "none" generations dropped
    assert d.train[1].emotion == "proud"
    bad = dict(split, utt_cs=[[[["x"]]] * 4, [[["y"]]] * 5])
    p.write_bytes(pickle.dumps([bad, split, split, Lang()]))
    with pytest.raises(DataError, match="missing relation 'xReact'"):
        load_cem(DataConfig(source="cem", path=str(p)))


def test_synthetic_corpus_puts_the_emotion_in_one_relation_only():
    d = synthetic_dialogues(DataConfig(n_train=200, n_dev=10, n_test=10, informative_relation="xReact"))
    from dcks.data import _EMOTION_WORDS

    word_of = {w: e for e, ws in _EMOTION_WORDS.items() for w in ws}

    def emo_in(text):
        return next((word_of[w] for w in text.split() if w in word_of), None)

    agree = {r: sum(emo_in(x.knowledge[r]) == x.emotion for x in d.train) / 200 for r in RELATIONS}
    assert agree["xReact"] == 1.0
    assert all(agree[r] < 0.5 for r in RELATIONS if r != "xReact")
    assert not any(w in word_of for x in d.train for u in x.context for w in u.split())  # neutral contexts


def test_cli_bad_data_is_one_line_exit_2(tmp_path):
    p = _write(tmp_path / "d.jsonl", [_row(), _row(emotion="hangry"), _row()])
    r = subprocess.run(
        [sys.executable, "-m", "dcks.cli", "train", "--data.source", "jsonl", "--data.path", str(p),
         "--model.backbone", "tiny", "--train.out_dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "d.jsonl:2: unknown emotion" in r.stderr


def test_monitor_on_test_is_refused():
    from tenfold_core.config import TrainConfig

    with pytest.raises(ValueError, match="test"):
        TrainConfig(monitor="test_loss")
