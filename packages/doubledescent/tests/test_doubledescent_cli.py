import json

import pytest
from doubledescent.cli import app, main


def test_demo_verb_writes_its_outputs(tmp_path, capsys):
    # a short run of the demo pipeline (the full demo's science is tested in test_doubledescent_sweep.py)
    out = tmp_path / "demo"
    app.run(["demo", "--out", str(out), "--epochs", "30", "--n_train", "300", "--progress", "false"])
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("peak_width", "threshold_width", "peak_test_loss", "min_small_test_loss", "largest_width_test_loss",
                "knn_p_threshold", "knn_p_largest", "peak_ratio_noise0"):  # fmt: skip
        assert key in metrics
    assert metrics["peak_test_loss"] >= metrics["min_small_test_loss"] > 0
    assert (out / "double_descent.png").stat().st_size > 1000 and (out / "knn_recovery.png").is_file()
    assert "| width |" in (out / "report.md").read_text()
    # `report RUN_DIR` regenerates the report from results.csv alone
    capsys.readouterr()
    app.run(["report", str(out / "run"), "--out", str(tmp_path / "rep")])
    rep = json.loads(capsys.readouterr().out)
    assert rep["units"] == 24 and rep["fc_p0.2_peak_width"] == metrics["peak_width"]
    assert (tmp_path / "rep" / "report.md").is_file()


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["report", "/nonexistent/run"], "no results.csv"),
        (
            ["sweep", "--data.name", "npz", "--data.path", "/nonexistent.npz", "--out", "{tmp}/r"],
            "no such file",
        ),
        (["sweep", "--widths", "0,3", "--out", "{tmp}/r"], "widths"),
        (["sweep", "--shard", "2/2", "--out", "{tmp}/r"], "shard"),
        (
            ["sweep", "--model", "resnet18", "--data.name", "synthetic", "--out", "{tmp}/r", "--widths", "1"],
            "image inputs",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, needle):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_tsne_verb_retrains_units_from_a_run(tmp_path):
    from doubledescent import DataConfig, SweepConfig, TrainSettings, run_sweep

    run = run_sweep(
        SweepConfig(
            out=str(tmp_path / "run"),
            widths=[2, 8],
            noise=[0.2],
            progress=False,
            data=DataConfig(name="digits", n_train=200),
            train=TrainSettings(
                optimizer="adam", lr=1e-2, batch_size=0, epochs=40, schedule="constant", device="cpu"
            ),
        )  # fmt: skip
    )
    app.run(["tsne", str(run), "--widths", "2,8", "--max_points", "150"])
    png = run / "tsne_p0.2_s0.png"
    assert png.is_file() and png.stat().st_size > 5000
