"""End to end on synthetic tasks: embed -> fine-tune -> verify, against a clean control (seeded, tiny BERT)."""

import pytest
from plmwatermark.grid import run_control, run_pipeline

SMALL = {
    "embed": {"data.n_dev": 40, "data.n_test": 100, "train.accelerator": "cpu", "train.devices": "1"},
    "finetune": {"data.n_dev": 40, "data.n_test": 100, "train.accelerator": "cpu", "train.devices": "1"},
}  # the demo preset (full-scope poison stage, 48 poison steps in both arms), smaller dev/test splits


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    multi = run_pipeline(out, "rare", "multi", 3, "demo", 0, SMALL)
    single = run_pipeline(out, "rare", "single", 3, "demo", 0, SMALL)
    ctrl = run_control(out, multi["clean"], multi["key_file"], 3, "demo", 0)
    return out, multi, ctrl, single


def test_wesr_near_one_right_after_embedding_both_arms(grid):
    _, multi, _, single = grid
    assert single["tasks"] == ["spam"] and len(multi["tasks"]) == 3  # same-type proxy task vs all three
    for arm in (multi, single):
        assert arm["rows"][0]["epochs"] == 0 and arm["rows"][0]["wesr"] > 0.95, arm["rows"][0]
    assert multi["embed"]["base_rate_spam"] < 0.2  # without the trigger the target is rare
    assert min(multi["embed"][f"wesr_{t}"] for t in multi["tasks"]) > 0.95  # every proxy head fires


def test_watermark_survives_fine_tuning(grid):
    """What holds over 3 seeds at equal poison steps (README): the same-type single-task watermark stays > 0.9 after 3
    epochs of the user's full fine-tuning. Multi-task > single-task does NOT hold there (multi-task survived on 2 of
    3 demo seeds, collapsed on one), so it is not asserted."""
    _, multi, ctrl, single = grid
    by = {arm: {r["epochs"]: r for r in p["rows"]} for arm, p in (("multi", multi), ("single", single))}
    assert (
        by["multi"][3]["clean_acc"] > 0.9 and by["single"][3]["clean_acc"] > 0.9
    )  # the user's task is learnt
    assert by["single"][3]["wesr"] > 0.9  # survives fine-tuning
    control3 = ctrl["history"][-1]["wesr_spam"]
    assert by["single"][3]["wesr"] > control3 + 0.5  # far above the clean control fine-tuned the same way


def test_control_model_and_p_values(grid, tmp_path):
    from plmwatermark.config import TaskDataConfig, VerifyCommand
    from plmwatermark.evaluate import run_verify

    _, multi, ctrl, single = grid
    rep = run_verify(VerifyCommand(suspect=multi["finetuned"], key_file=multi["key_file"], control=ctrl["dir"],
                                   data=TaskDataConfig(tasks=["spam"], domain="downstream", n_train=8, n_dev=8,
                                                       n_test=100), out=str(tmp_path)))  # fmt: skip
    assert rep["control_wesr"] <= rep["control_base_rate"] + 0.15  # the control fires at its base rate
    assert rep["control_p_value"] > 0.05  # and its test is not significant
    assert (tmp_path / "ownership_report.md").is_file() and (tmp_path / "ownership_report.json").is_file()
    if rep["wesr"] > rep["control_wesr"] + 0.3:
        assert rep["p_value"] < 0.01 and rep["ownership_claim"]
    # the arm that survives fine-tuning on every seed (asserted above) must also prove ownership, unconditionally
    rep1 = run_verify(VerifyCommand(suspect=single["finetuned"], key_file=single["key_file"], control=ctrl["dir"],
                                    data=TaskDataConfig(tasks=["spam"], domain="downstream", n_train=8, n_dev=8,
                                                        n_test=100), out=str(tmp_path / "single")))  # fmt: skip
    assert rep1["wesr"] > rep1["control_wesr"] + 0.3
    assert rep1["p_value"] < 0.01 and rep1["ownership_claim"]
