"""End to end on synthetic tasks: embed -> fine-tune -> verify, against a clean control (seeded, tiny BERT)."""

import pytest
from plmwatermark.grid import run_control, run_pipeline

SMALL = {
    "embed": {"data.n_dev": 40, "data.n_test": 100, "scope": "full", "optim.lr": 0.001, "train.max_epochs": 3, "train.accelerator": "cpu",
              "train.devices": "1"},
    "finetune": {"data.n_dev": 40, "data.n_test": 100, "train.accelerator": "cpu",
                 "train.devices": "1"},
}  # fmt: skip


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    multi = run_pipeline(out, "rare", "multi", 3, "demo", 0, SMALL)
    ctrl = run_control(out, multi["clean"], multi["key_file"], 3, "demo", 0)
    return out, multi, ctrl


def test_wesr_near_one_right_after_embedding(grid):
    _, multi, _ = grid
    assert multi["rows"][0]["epochs"] == 0 and multi["rows"][0]["wesr"] > 0.9
    assert multi["embed"]["base_rate_spam"] < 0.2  # without the trigger the target is rare


def test_control_model_and_p_values(grid, tmp_path):
    from plmwatermark.config import TaskDataConfig, VerifyCommand
    from plmwatermark.evaluate import run_verify

    _, multi, ctrl = grid
    rep = run_verify(VerifyCommand(suspect=multi["finetuned"], key_file=multi["key_file"], control=ctrl["dir"],
                                   data=TaskDataConfig(tasks=["spam"], domain="downstream", n_train=8, n_dev=8,
                                                       n_test=100), out=str(tmp_path)))  # fmt: skip
    assert rep["control_wesr"] <= rep["control_base_rate"] + 0.15  # the control fires at its base rate
    assert rep["control_p_value"] > 0.05  # and its test is not significant
    assert (tmp_path / "ownership_report.md").is_file() and (tmp_path / "ownership_report.json").is_file()
    if rep["wesr"] > rep["control_wesr"] + 0.3:
        assert rep["p_value"] < 0.01 and rep["ownership_claim"]
