"""``spikeclip`` command line (thin): train-teacher, align-text, align-image, finetune-teacher, dual-finetune,
evaluate, demo. Each verb imports its implementation inside the function, so ``spikeclip --help`` stays fast."""

from __future__ import annotations

from spikeclip import __version__
from spikeclip.config import (
    AlignImageConfig,
    AlignTextConfig,
    DemoConfig,
    DualFinetuneConfig,
    EvaluateConfig,
    FinetuneTeacherConfig,
    TrainTeacherConfig,
)
from tenfold_core.cli import App

app = App(
    "spikeclip",
    "SpikeCLIP: spiking CLIP (alignment pre-training + dual-loss fine-tuning), prompt-based image classification",
    version=__version__,
    package="spikeclip",
)


@app.command(
    "train-teacher",
    TrainTeacherConfig,
    help="demo teacher: contrastive mini-CLIP on images with captions",
    trains=True,
)
def train_teacher(cfg: TrainTeacherConfig):
    from spikeclip.train import train_teacher as run

    return _print(run(cfg))


@app.command(
    "align-text",
    AlignTextConfig,
    help="stage 1: text SNN <- 1 - cos to the teacher's text features",
    trains=True,
)
def align_text(cfg: AlignTextConfig):
    from spikeclip.train import align_text as run

    return _print(run(cfg))


@app.command(
    "align-image",
    AlignImageConfig,
    help="stage 1: image SNN <- 1 - cos to the teacher's image features",
    trains=True,
)
def align_image(cfg: AlignImageConfig):
    from spikeclip.train import align_image as run

    return _print(run(cfg))


@app.command(
    "finetune-teacher",
    FinetuneTeacherConfig,
    help="stage 2: CE fine-tuning of the teacher on text-SNN class weights",
    trains=True,
)
def finetune_teacher(cfg: FinetuneTeacherConfig):
    from spikeclip.train import finetune_teacher as run

    return _print(run(cfg))


@app.command(
    "dual-finetune", DualFinetuneConfig, help="stage 2: image SNN <- CE + KL(teacher || student)", trains=True
)
def dual_finetune(cfg: DualFinetuneConfig):
    from spikeclip.train import dual_finetune as run

    return _print(run(cfg))


@app.command(
    "evaluate", EvaluateConfig, help="top-1/top-5, open vocabulary, firing rates, energy vs the ANN tower"
)
def evaluate(cfg: EvaluateConfig):
    from spikeclip.evaluate import run_evaluate

    return _print(run_evaluate(cfg))


@app.command("demo", DemoConfig, help="offline CPU demo on digits with a mini-CLIP teacher")
def demo(cfg: DemoConfig):
    from spikeclip.demo import run_demo

    return _print(run_demo(cfg))


def _print(result) -> int:
    import json
    import sys

    sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    return 0


main = app.main

if __name__ == "__main__":
    raise SystemExit(main())
