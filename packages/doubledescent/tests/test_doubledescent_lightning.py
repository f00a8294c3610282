"""The paper-faithful minibatch path through tenfold_core.train (Lightning): trains, checkpoints, resumes."""

import math

import pytest
from doubledescent import DataConfig, SweepConfig, TrainSettings, read_results, run_sweep


@pytest.mark.slow
def test_lightning_engine_unit_trains_and_checkpoints(tmp_path):
    cfg = SweepConfig(
        out=str(tmp_path / "run"), model="cnn", widths=[4], noise=[0.2], seeds=[0], progress=False,
        data=DataConfig(name="digits", n_train=256, n_test=128),
        train=TrainSettings(optimizer="sgd", lr=0.05, batch_size=64, epochs=10, engine="lightning", device="cpu"),
    )  # fmt: skip
    run_sweep(cfg)
    (row,) = read_results(tmp_path / "run" / "results.csv")
    assert row["model"] == "cnn" and row["params"] == 378 * 16 + (9 + 45 + 80) * 4 + 10
    assert row["train_acc"] > 0.6 and math.isfinite(row["test_loss"]) and 0 <= row["knn_p"] <= 1
    assert (tmp_path / "run" / "units" / "cnn-w4-p0.2-s0" / "checkpoints" / "last.ckpt").is_file()
