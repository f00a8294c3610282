"""The method works on tiny data (the demo's task and preset, its own verbs, seeded by train.seed): the distilled
spiking student gets within a few points (0.05) of its teacher and is not below the directly trained student.

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
    # a few points: at the demo's 12 epochs the distilled students reach 0.99-1.0 on every seed (README; teacher 0.94).
    # At 6 epochs the cosine schedule annealed before the runs converged and they stayed 0.13-0.28 below the teacher.
    assert s["test_accuracy"] >= t["test_accuracy"] - 0.05
    # not below direct training; this does not need direct training to stay weak (both may reach 1.0)
    assert s["test_accuracy"] >= d["test_accuracy"]
