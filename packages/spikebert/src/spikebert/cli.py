"""``spikebert`` command line: finetune-teacher, distill-pretrain, distill-task, train-direct, evaluate, demo."""

from __future__ import annotations

from spikebert import __version__
from spikebert.demo import DemoConfig, run_demo
from spikebert.evaluate import EvaluateConfig, run_evaluate
from spikebert.stages import (
    DistillPretrainConfig,
    DistillTaskConfig,
    FinetuneTeacherConfig,
    TrainDirectConfig,
    distill_pretrain,
    distill_task,
    finetune_teacher,
    train_direct,
)
from tenfold_core.cli import App

app = App("spikebert", "SpikeBERT: spiking Transformer text classifier distilled from BERT", __version__)

app.command("finetune-teacher", FinetuneTeacherConfig, help="stage 0: fine-tune a BERT-family teacher")(
    finetune_teacher
)
app.command("distill-pretrain", DistillPretrainConfig, help="stage 1: hidden-state distillation on raw text")(
    distill_pretrain
)
app.command("distill-task", DistillTaskConfig, help="stage 2: task distillation from the fine-tuned teacher")(
    distill_task
)
app.command("train-direct", TrainDirectConfig, help="baseline: the same student trained with CE only")(
    train_direct
)
app.command("evaluate", EvaluateConfig, help="accuracy/MCC, firing rates and energy vs the teacher")(
    run_evaluate
)
app.command("demo", DemoConfig, help="offline CPU demo on the synthetic sentiment language")(run_demo)

main = app.main

if __name__ == "__main__":
    raise SystemExit(main())
