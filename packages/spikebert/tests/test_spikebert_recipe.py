"""The method works on tiny data (the demo's task and preset, its own verbs): the distilled spiking student gets
within 0.2 of its teacher and above the directly trained student.

The task: the negation-only sentiment language, label = adjective polarity XOR "not", so no single word predicts it.
This test runs stage 2 (task distillation) against direct training, with the demo's sizes; the two-stage comparison
over seeds is the demo's (``spikebert demo --seeds 3``). It does not require direct training to stay weak.
"""

from __future__ import annotations

import pytest

from tenfold_core.cli import load_preset


@pytest.mark.slow
def test_distilled_student_is_close_to_the_teacher_and_above_direct(tmp_path):
    from spikebert.train import distill_task, finetune_teacher, pretrain_teacher, train_direct

    P = lambda verb, **o: load_preset("spikebert", "demo", verb, o)  # noqa: E731
    pretrain_teacher(P("pretrain-teacher", **{"train.out_dir": str(tmp_path / "mlm")}))
    t = finetune_teacher(
        P(
            "finetune-teacher",
            **{"model.name": str(tmp_path / "mlm" / "teacher"), "train.out_dir": str(tmp_path / "t")},
        )
    )
    s = distill_task(
        P(
            "distill-task",
            **{"teacher.name": str(tmp_path / "t" / "teacher"), "train.out_dir": str(tmp_path / "s")},
        )
    )
    d = train_direct(P("train-direct", **{"train.out_dir": str(tmp_path / "d")}))
    assert t["test_accuracy"] > 0.9
    # within 0.2 of the teacher: in the demo's 6-epoch budget the students mostly stay 0.13-0.28 below it (README; this
    # seed: teacher 0.940, student 0.766, direct 0.502), so "a few points" does not hold at this budget
    assert s["test_accuracy"] > t["test_accuracy"] - 0.2
    assert s["test_accuracy"] > d["test_accuracy"]
