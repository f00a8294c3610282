"""The method works: the demo (a small CPU sweep on digits) shows the double-descent peak at 20 % label noise (and not
at 0 %), and the k-NN probe recovers more true labels in the widest model than at the interpolation threshold."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from doubledescent import DataConfig, SweepCommand, build_report, read_results, run_sweep
from doubledescent.cli import app
from doubledescent.noise import inject_label_noise
from doubledescent.train import fit_unit, train_packed

from tenfold_core.cli import load_preset
from tenfold_core.config import OptimConfig, TrainConfig
from tenfold_core.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    # the real demo verb, averaged over two seeds (calibrated on seeds 0-2)
    out = tmp_path_factory.mktemp("dd") / "demo"
    app.run(["demo", "--out", str(out), "--seeds", "0,1", "--progress", "false"])
    return out


@pytest.mark.slow
def test_double_descent_peak_at_20pct_noise_and_none_at_0(demo_out):
    rows = read_results(demo_out / "run" / "results.csv")
    stats, md, figs = build_report(rows)
    s = stats[("fc", 0.2)]
    thr, peak = s["threshold_width"], s["peak_width"]
    assert thr is not None and thr / 2 <= peak <= thr * 2, s
    assert s["peak_test_loss"] > 1.3 * s["min_small_test_loss"], s
    assert s["peak_test_loss"] > 1.3 * s["largest_width_test_loss"], s
    assert s["knn_p_largest"] > s["knn_p_threshold"], s
    assert s["largest_width_test_acc"] > s["peak_test_acc"]  # test error descends again
    s0 = stats[("fc", 0.0)]
    assert s0["peak_ratio"] < 1.3, s0
    assert "knn_recovery" in figs and "Headline numbers" in md


def test_demo_outputs_and_readme_metric_names(demo_out, capsys):
    metrics = json.loads((demo_out / "metrics.json").read_text())
    assert (
        metrics["units"] == 48 and metrics["seeds"] == 2 and metrics["double_descent_at_noise_only"] is True
    )
    assert metrics["fc_p0.2_peak_test_loss"] >= metrics["fc_p0.2_min_small_test_loss"] > 0
    assert (demo_out / "double_descent.png").stat().st_size > 1000 and (
        demo_out / "knn_recovery.png"
    ).is_file()
    assert (
        "| width |" in (demo_out / "report.md").read_text()
        and "Verdict" in (demo_out / "report.md").read_text()
    )
    # `report RUN_DIR` regenerates the same numbers from results.csv alone
    rep = app.run(["report", str(demo_out / "run"), "--out", str(demo_out / "rep")])
    assert rep["fc_p0.2_peak_width"] == metrics["fc_p0.2_peak_width"]
    assert {k for k in rep} <= set(metrics)
    # every metric key the README names is one the report/demo writes (one set of names)
    named = set(re.findall(r"`((?:fc|cnn|resnet18)_p[0-9.]+_[a-z_]+|[a-z_]+)`", README.read_text()))
    keys = {k for k in named if re.match(r"(fc|cnn|resnet18)_p[0-9.]+_", k)}
    assert len(keys) >= 8 and keys <= set(metrics), keys - set(metrics)


def test_every_width_saw_the_same_noisy_labels(demo_out):
    rows = [r for r in read_results(demo_out / "run" / "results.csv") if r["noise"] == 0.2]
    for seed in (0, 1):
        mine = [r for r in rows if r["seed"] == seed]
        assert len({r["labels_sha1"] for r in mine}) == 1 and len(mine) == 12
        assert len({r["n_noisy"] for r in mine}) == 1 and 0.8 * 100 <= mine[0]["n_noisy"] <= 100
    assert len({r["labels_sha1"] for r in rows}) == 2  # each seed draws its own noise


def test_plots_tick_actual_widths_with_a_parameter_axis_and_seed_spread(demo_out):
    rows = read_results(demo_out / "run" / "results.csv")
    _, _, figs = build_report(rows)
    ax = figs["double_descent"].axes[0]
    widths = sorted({r["width"] for r in rows})
    assert [round(t) for t in ax.get_xticks()] == widths and ax.get_xscale() == "log"
    tops = [a for a in ax.child_axes if a.get_xlabel() == "parameters"]
    assert tops, "no parameter-count axis"
    from matplotlib.collections import PolyCollection

    assert any(isinstance(c, PolyCollection) for c in ax.collections)  # the +-1 sd band over the two seeds
    one_seed = [r for r in rows if r["seed"] == 0]
    ax1 = build_report(one_seed)[2]["double_descent"].axes[0]
    assert not any(isinstance(c, PolyCollection) for c in ax1.collections)


def _units_cfg(out, **kw):
    base = load_preset("doubledescent", "tiny", "sweep")
    d = dict(train={"out_dir": str(out), "max_epochs": 60}, widths=[2, 4, 8, 16], noise=[0.2], seeds=[0, 1],
             data={"n_train": 300, "n_test": None, "batch_size": 0}, engine="packed", pack=4)  # fmt: skip
    d.update(kw)
    return load_preset("doubledescent", "tiny", "sweep", d, config=type(base))


def _tiny_data(n=120, d=10, c=3):
    rng = np.random.default_rng(0)
    x, y = rng.random((n, d)).astype(np.float32), rng.integers(0, c, n)
    from doubledescent.data import ArrayData

    return ArrayData("t", x, y, x, y, c), inject_label_noise(y, 0.0, c, 0)


def test_packed_engine_equals_fit_under_the_same_config(tmp_path):
    data, noisy = _tiny_data()
    for optim, decay in (
        (OptimConfig(name="adam", lr=1e-2), "optim"),
        (OptimConfig(name="sgd", lr=0.5, momentum=0.0), "inv_sqrt"),
    ):
        s = SweepCommand(train=TrainConfig(max_epochs=30, monitor=None, loggers=[], progress_bar=False,
                                           accelerator="cpu", out_dir=str(tmp_path)),
                         optim=optim, lr_decay=decay, decay_every=10, data=DataConfig(batch_size=0))  # fmt: skip
        packed = train_packed(s, data, noisy, [2, 5], seed=0)
        for w, (_, pres) in zip((2, 5), packed):
            _, fres = fit_unit(s, data, noisy, w, tmp_path / f"{optim.name}{w}", tmp_path / "n.npz", seed=0)
            assert abs(fres["train_loss"] - pres["train_loss"]) < 1e-4, (optim.name, w)


def test_packed_progress_moves_per_step(tmp_path, monkeypatch):
    # a packed unit used to show 0/N for minutes: the bar now advances on every optimizer step
    import doubledescent.sweep as sw

    seen = []

    class Bar(sw._Progress):
        def __init__(self, total, initial, enabled):
            super().__init__(total, initial, False)
            seen.append(("total", total))

        def step(self, n=1):
            seen.append(n)

    monkeypatch.setattr(sw, "_Progress", Bar)
    run_sweep(_units_cfg(tmp_path / "r", seeds=[0], widths=[2, 4, 8], pack=3))
    assert seen[0] == ("total", 3 * 60) and seen[1:] == [3] * 60


def _rows_equal(a, b):
    assert [(r["width"], r["seed"], r["labels_sha1"]) for r in a] == [
        (r["width"], r["seed"], r["labels_sha1"]) for r in b
    ]
    for ra, rb in zip(a, b):
        for k in ("train_loss", "test_loss", "train_acc", "test_acc", "knn_p"):
            assert ra[k] == pytest.approx(rb[k], rel=1e-5, abs=1e-6), (k, ra, rb)


def test_shards_cover_the_sweep_and_rerun_skips(tmp_path):
    whole = run_sweep(_units_cfg(tmp_path / "whole"))
    a = read_results(whole / "results.csv")
    assert len(a) == 8 and (whole / "units" / "fc-w16-p0.2-s1" / "model.safetensors").is_file()
    mtime = (whole / "results.csv").stat().st_mtime_ns
    run_sweep(_units_cfg(tmp_path / "whole"))  # nothing left to do
    assert (whole / "results.csv").stat().st_mtime_ns == mtime
    for i in range(3):
        run_sweep(_units_cfg(tmp_path / "sharded", shard=f"{i}/3", pack=1))
    b = read_results(tmp_path / "sharded" / "results.csv")
    key = lambda r: (r["seed"], r["width"])  # noqa: E731
    _rows_equal(sorted(a, key=key), sorted(b, key=key))
    with pytest.raises(ConfigError, match="different settings.*knn_k"):
        run_sweep(_units_cfg(tmp_path / "whole", knn_k=3))
    with pytest.raises(ConfigError, match="shard"):
        _units_cfg(tmp_path / "x", shard="3/3")
    # evaluate rebuilds a stored unit (load_run) and reproduces its results.csv row
    row = next(r for r in a if (r["width"], r["seed"]) == (8, 1))
    ev = app.run(["evaluate", str(whole / "units" / "fc-w8-p0.2-s1")])
    for k in ("train_loss", "test_loss", "knn_p"):
        assert ev[k] == pytest.approx(row[k], rel=1e-5)
    # tsne reads the stored units (nothing retrained)
    res = app.run(["tsne", str(whole), "--widths", "2,16", "--max_points", "150"])
    assert Path(res["png"]).stat().st_size > 5000


def test_train_verb_and_threshold_flag_on_sweep(tmp_path, capsys):
    m = app.run(
        ["train", "--preset", "tiny", "--train.out_dir", str(tmp_path / "t"), "--train.max_epochs", "5"]
    )
    assert (tmp_path / "t" / "model.safetensors").is_file() and m["width"] == 8 and 0 <= m["knn_p"] <= 1
    ev = app.run(["evaluate", str(tmp_path / "t")])
    assert ev["test_loss"] == pytest.approx(m["test_loss"], rel=1e-5)
    cfg = _units_cfg(tmp_path / "s", seeds=[0], widths=[2, 4])
    capsys.readouterr()
    r = app.run(["sweep", "--preset", "tiny", "--train.out_dir", str(tmp_path / "s"), "--widths", "2,4",
                 "--engine", "packed", "--data.batch_size", "0", "--threshold_acc", "0.5"])  # fmt: skip
    assert (
        r["threshold_acc"] == 0.5
        and json.loads((tmp_path / "s" / "metrics.json").read_text())["threshold_acc"] == 0.5
    )
    assert cfg.threshold_acc == 0.999
    printed = json.loads(capsys.readouterr().out)  # verb output is one JSON object; NaN is written as null
    assert printed["threshold_acc"] == 0.5 and printed["units"] == 2


@pytest.mark.slow
def test_resume_after_kill_gives_the_same_results(tmp_path):
    args = ["sweep", "--preset", "tiny", "--train.out_dir", str(tmp_path / "killed"), "--widths", "2,4,8,16",
            "--seeds", "0,1", "--data.n_train", "300", "--data.n_test", "null", "--data.batch_size", "0",
            "--train.max_epochs", "150", "--engine", "packed", "--progress", "false"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    code = "import sys; from doubledescent.cli import main; main(sys.argv[1:])"
    proc = subprocess.Popen([sys.executable, "-c", code, *args], env=env, start_new_session=True)
    csv = tmp_path / "killed" / "results.csv"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if csv.is_file() and len(csv.read_text().splitlines()) >= 3:  # header + 2 units
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = read_results(csv)
    assert 2 <= len(partial) < 8
    app.run(args)  # resume in-process
    resumed = read_results(csv)
    full = read_results(run_sweep(_units_cfg(tmp_path / "full", pack=1, train={"out_dir": str(tmp_path / "full"),
                                                                              "max_epochs": 150})) / "results.csv")  # fmt: skip
    _rows_equal(resumed, full)
    assert (tmp_path / "killed" / "report.md").is_file() and (
        tmp_path / "killed" / "double_descent.png"
    ).is_file()


def test_a_non_zero_rank_leaves_temporary_files_and_the_noise_file_to_rank_zero(tmp_path, monkeypatch):
    """Regression (DDP, 2 processes): rank 0's stale-file sweep unlinked rank 1's noise file in flight. A non-zero
    rank neither removes temporary files nor writes the noise file."""
    import doubledescent.sweep as sw

    from tenfold_core.io import TMP_PREFIX

    run = tmp_path / "r"
    (run / "noise").mkdir(parents=True)
    in_flight = run / "noise" / f"{TMP_PREFIX}noise-p0.2-seed0-random.npz.x"
    in_flight.write_bytes(b"another rank is writing this")
    monkeypatch.setattr(sw, "is_rank_zero", lambda: False)
    run_sweep(_units_cfg(run, seeds=[0], widths=[2], train={"out_dir": str(run), "max_epochs": 2}))
    assert in_flight.exists()
    assert not list((run / "noise").glob("noise-*.npz"))
