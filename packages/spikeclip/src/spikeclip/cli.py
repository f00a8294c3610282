"""``spikeclip`` command line (thin): train-teacher, align-text, align-image, finetune-teacher, dual-finetune,
evaluate, demo. Each verb's implementation is imported when the verb runs, so ``spikeclip --help`` stays fast."""

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

app.command("train-teacher", TrainTeacherConfig, help="demo teacher: contrastive mini-CLIP on images with captions",
            trains=True, run="spikeclip.train:train_teacher")  # fmt: skip
app.command("align-text", AlignTextConfig, help="stage 1: text SNN <- 1 - cos to the teacher's text features",
            trains=True, run="spikeclip.train:align_text")  # fmt: skip
app.command("align-image", AlignImageConfig, help="stage 1: image SNN <- 1 - cos to the teacher's image features",
            trains=True, run="spikeclip.train:align_image")  # fmt: skip
app.command("finetune-teacher", FinetuneTeacherConfig,
            help="stage 2: CE fine-tuning of the teacher on text-SNN class weights", trains=True,
            run="spikeclip.train:finetune_teacher")  # fmt: skip
app.command("dual-finetune", DualFinetuneConfig, help="stage 2: image SNN <- CE + KL(teacher || student)",
            trains=True, run="spikeclip.train:dual_finetune")  # fmt: skip
app.command("evaluate", EvaluateConfig, help="top-1/top-5, open vocabulary, firing rates, energy vs the ANN tower",
            run="spikeclip.evaluate:run_evaluate")  # fmt: skip
app.command("demo", DemoConfig, help="offline CPU demo on digits with a mini-CLIP teacher",
            run="spikeclip.demo:run_demo")  # fmt: skip

main = app.main

if __name__ == "__main__":
    raise SystemExit(main())
