"""``spikebert`` command line (thin; heavy imports happen inside the verbs): pretrain-teacher, finetune-teacher,
distill-pretrain, distill-task, train-direct, evaluate, demo. ``spikebert <verb> --preset demo|paper|tiny|official``."""

from __future__ import annotations

from spikebert import __version__
from spikebert.config import (
    DemoConfig,
    DistillPretrainConfig,
    DistillTaskConfig,
    EvaluateConfig,
    FinetuneTeacherConfig,
    PretrainTeacherConfig,
    TrainDirectConfig,
)
from tenfold_core.cli import App

app = App(
    "spikebert", "SpikeBERT: spiking Transformer text classifier distilled from BERT", version=__version__,
    package="spikebert",
)  # fmt: skip


@app.command(
    "pretrain-teacher",
    PretrainTeacherConfig,
    help="masked-LM pre-training of a (tiny) BERT teacher",
    trains=True,
)
def pretrain_teacher(cfg: PretrainTeacherConfig):
    from spikebert.train import pretrain_teacher as run

    return run(cfg)


@app.command(
    "finetune-teacher", FinetuneTeacherConfig, help="stage 0: fine-tune a BERT-family teacher", trains=True
)
def finetune_teacher(cfg: FinetuneTeacherConfig):
    from spikebert.train import finetune_teacher as run

    return run(cfg)


@app.command(
    "distill-pretrain",
    DistillPretrainConfig,
    help="stage 1: hidden-state distillation on raw text",
    trains=True,
)
def distill_pretrain(cfg: DistillPretrainConfig):
    from spikebert.train import distill_pretrain as run

    return run(cfg)


@app.command(
    "distill-task",
    DistillTaskConfig,
    help="stage 2: task distillation from the fine-tuned teacher",
    trains=True,
)
def distill_task(cfg: DistillTaskConfig):
    from spikebert.train import distill_task as run

    return run(cfg)


@app.command(
    "train-direct", TrainDirectConfig, help="baseline: the same student trained with CE only", trains=True
)
def train_direct(cfg: TrainDirectConfig):
    from spikebert.train import train_direct as run

    return run(cfg)


@app.command(
    "evaluate",
    EvaluateConfig,
    help="accuracy/MCC, firing rates and energy vs a same-size ANN and the teacher",
)
def evaluate(cfg: EvaluateConfig):
    from spikebert.evaluate import run_evaluate

    return run_evaluate(cfg)


@app.command(
    "demo", DemoConfig, help="offline CPU demo on the synthetic sentiment language (the demo preset)"
)
def demo(cfg: DemoConfig):
    from spikebert.demo import run_demo

    return run_demo(cfg)


main = app.main

if __name__ == "__main__":
    raise SystemExit(main())
