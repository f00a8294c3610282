"""The user-facing verbs end to end on a tiny data set (Lightning fit, checkpoints, strict stage-1 loading)."""

from __future__ import annotations

import json

import pytest
from spikebert.cli import app, main

from tenfold_core.data import make_sentiment_data, write_tsv

COMMON = ["--train.progress_bar", "false", "--train.loggers", "[]", "--train.accelerator", "cpu"]
STUDENT = ["--student.depth", "2", "--student.dim", "32", "--student.num_heads", "4"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("spikebert")
    data = make_sentiment_data(n_train=96, n_dev=32, n_test=32, seed=3)
    folder = root / "data"
    folder.mkdir()
    for name, split in (("train", data.train), ("validation", data.dev), ("test", data.test)):
        write_tsv(folder / f"{name}.txt", split)  # the official 'sentence<TAB>label' .txt layout
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(data.train.texts + data.dev.texts) + "\n")
    d = ["--data.data", str(folder), "--data.max_length", "24", "--data.batch_size", "16"]
    teacher = root / "teacher"
    m0 = app.run(["finetune-teacher", "--teacher.name", "tiny", "--teacher.tiny_layers", "2", *d,
                  "--train.out_dir", str(teacher), "--train.max_epochs", "1", "--optim.lr", "1e-3", *COMMON])  # fmt: skip
    s1 = root / "stage1"
    m1 = app.run(["distill-pretrain", "--teacher", str(teacher), "--corpus", str(corpus), "--max_length", "24",
                  "--dev_fraction", "0.1", *STUDENT, "--train.out_dir", str(s1), "--train.max_epochs", "1", *COMMON])  # fmt: skip
    s2 = root / "stage2"
    m2 = app.run(["distill-task", "--teacher", str(teacher), "--init", str(s1), *d, *STUDENT,
                  "--train.out_dir", str(s2), "--train.max_epochs", "1", *COMMON])  # fmt: skip
    return {"root": root, "data": d, "teacher": teacher, "s1": s1, "s2": s2, "m0": m0, "m1": m1, "m2": m2}


def test_stages_write_their_outputs(runs):
    assert (runs["teacher"] / "teacher" / "config.json").is_file()
    assert 0.0 <= runs["m0"]["test_accuracy"] <= 1.0
    assert runs["m1"]["layer_map"] == [1, 2]  # depth 2 on a 2-layer teacher: stride 1
    for folder in (runs["s1"], runs["s2"]):
        conf = json.loads((folder / "config.json").read_text())
        assert conf["spikebert_student"]["depth"] == 2
        assert (folder / "model.safetensors").is_file() and (folder / "tokenizer").is_dir()
    metrics = json.loads((runs["s2"] / "metrics.json").read_text())
    assert {"dev_accuracy", "test_accuracy", "dev_mcc"} <= set(metrics)
    # the exported weights are the student's only (the frozen teacher is not saved with it)
    from tenfold_core.models import load_weights

    keys = load_weights(runs["s2"] / "model.safetensors").keys()
    assert keys and all(k.startswith("student.") for k in keys)


def test_evaluate_reports_energy_and_firing_rates(runs, tmp_path):
    out = tmp_path / "eval.json"
    res = app.run(["evaluate", str(runs["s2"]), *runs["data"], "--teacher", str(runs["teacher"]),
                   "--out", str(out)])  # fmt: skip
    saved = json.loads(out.read_text())
    assert saved["accuracy"] == res["accuracy"]
    assert 0 < res["firing_rate"] < 1
    assert res["energy_ratio_vs_teacher"] > 0 and res["teacher_energy_mj"] > res["student_energy_mj"] * 0
    assert "teacher_accuracy" in res


def test_train_direct_runs(runs, tmp_path):
    m = app.run(["train-direct", "--tokenizer", str(runs["teacher"]), *runs["data"], *STUDENT,
                 "--train.out_dir", str(tmp_path / "direct"), "--train.max_epochs", "1", *COMMON])  # fmt: skip
    assert m["stage"] == "train-direct" and 0 <= m["test_accuracy"] <= 1


def test_stage1_architecture_mismatch_is_a_clear_error(runs, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["distill-task", "--teacher", str(runs["teacher"]), "--init", str(runs["s1"]), *runs["data"],
              "--student.depth", "1", "--student.dim", "32", "--student.num_heads", "4",
              "--train.out_dir", str(tmp_path / "x"), *COMMON])  # fmt: skip
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "depth" in err and "Traceback" not in err


def test_bad_data_file_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "train.tsv"
    bad.write_text("a sentence without a tab\n")
    with pytest.raises(SystemExit) as e:
        main(
            [
                "train-direct",
                "--tokenizer",
                "tiny",
                "--data.data",
                str(bad),
                "--train.out_dir",
                str(tmp_path / "o"),
            ]
        )
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "train.tsv line 1" in err and len(err.strip().splitlines()) == 1


def test_monitor_on_test_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(
            [
                "train-direct",
                "--tokenizer",
                "tiny",
                "--data.data",
                str(tmp_path),
                "--train.monitor",
                "test_acc",
            ]
        )
    assert e.value.code == 2
