"""``spikebert`` command line (thin; heavy imports happen when a verb runs): pretrain-teacher, finetune-teacher,
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


def _plain_items(res: dict) -> dict:
    """The JSON-friendly entries of a result (the energy reports print as tables)."""
    return {k: v for k, v in res.items() if v is None or isinstance(v, (bool, int, float, str, list, dict))}


app = App(
    "spikebert", "SpikeBERT: spiking Transformer text classifier distilled from BERT", version=__version__,
    package="spikebert",
)  # fmt: skip

app.command("pretrain-teacher", PretrainTeacherConfig, help="masked-LM pre-training of a (tiny) BERT teacher",
            trains=True, run="spikebert.train:pretrain_teacher")  # fmt: skip
app.command("finetune-teacher", FinetuneTeacherConfig, help="stage 0: fine-tune a BERT-family teacher",
            trains=True, run="spikebert.train:finetune_teacher")  # fmt: skip
app.command("distill-pretrain", DistillPretrainConfig, help="stage 1: hidden-state distillation on raw text",
            trains=True, run="spikebert.train:distill_pretrain")  # fmt: skip
app.command("distill-task", DistillTaskConfig, help="stage 2: task distillation from the fine-tuned teacher",
            trains=True, run="spikebert.train:distill_task")  # fmt: skip
app.command("train-direct", TrainDirectConfig, help="baseline: the same student trained with CE only",
            trains=True, run="spikebert.train:train_direct")  # fmt: skip
app.command("evaluate", EvaluateConfig,
            help="accuracy/MCC, firing rates and energy vs a same-size ANN and the teacher",
            run="spikebert.evaluate:run_evaluate", show=lambda res, cfg: _plain_items(res))  # fmt: skip
app.command("demo", DemoConfig, help="offline CPU demo on the synthetic sentiment language (the demo preset)",
            run="spikebert.demo:run_demo")  # fmt: skip

main = app.main

if __name__ == "__main__":
    raise SystemExit(main())
