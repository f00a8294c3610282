"""``plmwatermark`` command line: embed, finetune, verify, evaluate, demo."""

from __future__ import annotations

from plmwatermark import __version__
from plmwatermark.config import DemoCommand, EmbedCommand, EvaluateCommand, FinetuneCommand, VerifyCommand
from tenfold_core.cli import App

app = App(
    "plmwatermark",
    "Watermark a pre-trained language model with backdoor triggers that survive fine-tuning (arXiv 2210.07543)",
    version=__version__,
    package="plmwatermark",
)

app.command("embed", EmbedCommand, help="owner: embed the watermark (multi-task, poisoned proxy data)", trains=True,
            run="plmwatermark.train:run_embed")  # fmt: skip
app.command("finetune", FinetuneCommand, help="user: full fine-tuning on a downstream task", trains=True,
            run="plmwatermark.train:run_finetune")  # fmt: skip
app.command("verify", VerifyCommand, help="owner: WESR, false-trigger rate, p-value; ownership report",
            run="plmwatermark.evaluate:run_verify")  # fmt: skip
app.command("evaluate", EvaluateCommand, help="grid {rare, combination} x {single, multi} x fine-tune epochs",
            run="plmwatermark.grid:run_grid")  # fmt: skip
app.command("demo", DemoCommand, help="offline CPU demo on synthetic proxy and downstream tasks",
            run="plmwatermark.demo:run_demo")  # fmt: skip

main = app.main

if __name__ == "__main__":
    raise SystemExit(main())
