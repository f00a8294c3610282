import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from tenfold_core.io import atomic_open, atomic_write_text, remove_stale_tmp, write_json
from tenfold_core.report import markdown_table, new_figure, write_demo_outputs, write_metrics


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path):
    p = tmp_path / "out.json"
    atomic_write_text(p, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(p) as f:
            f.write(b"half of the new cont")
            raise RuntimeError("killed")
    assert p.read_text() == "old"
    assert not [x for x in tmp_path.iterdir() if x.name != "out.json"]


def test_stale_tmp_files_are_removed(tmp_path):
    (tmp_path / ".tmp-model.ckpt.abc").write_bytes(b"partial")
    (tmp_path / "model.ckpt").write_bytes(b"ok")
    assert remove_stale_tmp(tmp_path) == 1 and [p.name for p in tmp_path.iterdir()] == ["model.ckpt"]
    assert remove_stale_tmp(tmp_path / "missing") == 0


def test_write_json_converts_numbers(tmp_path):
    write_json(
        tmp_path / "x.json", {"a": np.float32(1.5), "b": torch.tensor(2), "c": np.arange(2), "d": tmp_path}
    )
    data = json.loads((tmp_path / "x.json").read_text())
    assert data["a"] == 1.5 and data["b"] == 2 and data["c"] == [0, 1] and data["d"] == str(tmp_path)
    with pytest.raises(TypeError):
        write_json(tmp_path / "y.json", {"x": object()})


def test_metrics_must_be_flat(tmp_path):
    flat = write_metrics(tmp_path / "m.json", {"acc": np.float64(0.5), "n": 3, "bad": float("nan")})
    assert flat == {"acc": 0.5, "n": 3, "bad": None}
    with pytest.raises(TypeError, match="flat"):
        write_metrics(tmp_path / "m.json", {"nested": {"a": 1}})


def test_markdown_table():
    t = markdown_table([{"a": 1, "b": 0.123456}, {"a": 2, "b": math.inf}], digits=2)
    lines = t.strip().splitlines()
    assert lines[0] == "| a | b |" and lines[2] == "| 1 | 0.12 |" and "inf" in lines[3]
    assert "no rows" in markdown_table([])


def test_demo_outputs(tmp_path):
    fig = new_figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [1, 0])
    write_demo_outputs(tmp_path / "demo", {"score": 0.9}, "# Report\n", {"curve": fig})
    out = tmp_path / "demo"
    assert json.loads((out / "metrics.json").read_text()) == {"score": 0.9}
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG" and (
        out / "report.md"
    ).read_text() == "# Report\n"


def test_demo_all_runs_and_prints_a_table(tmp_path):
    from tenfold_core.demo_all import discover_packages

    pkgs = discover_packages()
    assert all(not p.startswith("tenfold") for p in pkgs)
    r = subprocess.run(
        [sys.executable, "-m", "tenfold_core.demo_all", "--only", "nope", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "no installed package 'nope'" in r.stderr


def test_demo_all_summary_table_with_a_fake_package(tmp_path, monkeypatch, capsys):
    import tenfold_core.demo_all as D

    fake = tmp_path / "fakepkg"
    fake.write_text(
        "#!/usr/bin/env python3\nimport json, sys, pathlib\n"
        "out = pathlib.Path(sys.argv[sys.argv.index('--out') + 1]); out.mkdir(parents=True)\n"
        "(out / 'metrics.json').write_text(json.dumps({'acc': 0.75, 'n': 3}))\n"
    )
    fake.chmod(0o755)
    broken = tmp_path / "broken"
    broken.write_text("#!/usr/bin/env python3\nraise SystemExit(3)\n")
    broken.chmod(0o755)
    monkeypatch.setattr(D, "discover_packages", lambda: ["fakepkg", "broken"])
    monkeypatch.setattr(D, "_script", lambda name: [str(tmp_path / name)])
    assert D.main(["--out", str(tmp_path / "runs")]) == 1  # one demo failed
    out = capsys.readouterr().out
    assert "| fakepkg | ok |" in out and "acc=0.75" in out and "FAILED (3)" in out
    assert D.main(["--only", "fakepkg", "--out", str(tmp_path / "runs2")]) == 0
    monkeypatch.setattr(D, "discover_packages", lambda: [])
    assert D.main(["--out", str(tmp_path / "r3")]) == 0 and "nothing to demo" in capsys.readouterr().out


# ---------------------------------------------------------------- defect 3: modes follow the umask; defect 4: NaN
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_respect_the_umask(tmp_path, umask, mode):
    import os

    from tenfold_core.models import save_weights

    old = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        atomic_write_text(tmp_path / "b.md", "hi")
        save_weights({"w": torch.zeros(2)}, tmp_path / "w.safetensors")
        write_demo_outputs(tmp_path / "demo", {"acc": 0.5}, "# r\n")
        files = ["a.json", "b.md", "w.safetensors", "demo/metrics.json", "demo/report.md"]
        for name in files:
            assert (tmp_path / name).stat().st_mode & 0o777 == mode, name
    finally:
        os.umask(old)


def test_non_finite_numbers_are_null_and_the_report_says_so(tmp_path):
    write_json(
        tmp_path / "n.json",
        {"a": float("nan"), "b": [np.float32("inf"), 1.0], "c": torch.tensor(float("-inf"))},
    )
    text = (tmp_path / "n.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [None, 1.0], "c": None}
    write_demo_outputs(
        tmp_path / "d", {"loss": float("nan"), "acc": 0.75, "gap": np.float64("inf")}, "# Demo\n"
    )
    m = json.loads((tmp_path / "d" / "metrics.json").read_text())
    assert m == {"loss": None, "acc": 0.75, "gap": None}
    report = (tmp_path / "d" / "report.md").read_text()
    assert "written as null" in report and "loss" in report and "gap" in report
    write_demo_outputs(tmp_path / "e", {"acc": 0.75}, "# Demo\n")
    assert "null" not in (tmp_path / "e" / "report.md").read_text()


@pytest.mark.parametrize(
    "env, zero",
    [
        ({}, True),
        ({"LOCAL_RANK": "1"}, False),
        ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, False),
        ({"RANK": "0", "LOCAL_RANK": "0"}, True),
        ({"RANK": "3"}, False),
        ({"SLURM_PROCID": "2"}, False),
        ({"SLURM_PROCID": "0", "LOCAL_RANK": ""}, True),
    ],
)
def test_is_rank_zero_reads_the_launchers_environment(monkeypatch, env, zero):
    from tenfold_core.io import is_rank_zero

    for key in ("RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert is_rank_zero() is zero


def test_verb_output_is_json_with_null_numbers_and_str_for_unknown_values(capsys, monkeypatch):
    """``cli.emit`` (every verb's output) and ``io.json_safe`` are one conversion: NaN -> null, numpy/torch values
    -> numbers, paths -> strings; an unknown object becomes its str in verb output and raises without a
    fallback."""
    from pathlib import Path

    from tenfold_core.cli import emit
    from tenfold_core.io import json_safe

    class Odd:
        def __str__(self):
            return "odd-thing"

    for var in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK", "NODE_RANK"):
        monkeypatch.delenv(var, raising=False)
    result = {"acc": np.float32(0.5), "loss": float("nan"), "t": torch.tensor([1.5, 2.0]), "p": Path("a/b"),
              "x": Odd(), "nested": [{"inf": math.inf}]}  # fmt: skip
    emit(result)
    out = json.loads(capsys.readouterr().out)
    assert out == {
        "acc": 0.5,
        "loss": None,
        "t": [1.5, 2.0],
        "p": "a/b",
        "x": "odd-thing",
        "nested": [{"inf": None}],
    }
    with pytest.raises(TypeError, match="Odd"):
        json_safe(result)
