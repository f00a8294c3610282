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


@app.command(
    "embed", EmbedCommand, help="owner: embed the watermark (multi-task, poisoned proxy data)", trains=True
)
def embed(cfg: EmbedCommand):
    from plmwatermark.train import run_embed

    return _show(run_embed(cfg))


@app.command("finetune", FinetuneCommand, help="user: full fine-tuning on a downstream task", trains=True)
def finetune(cfg: FinetuneCommand):
    from plmwatermark.train import run_finetune

    return _show(run_finetune(cfg))


@app.command("verify", VerifyCommand, help="owner: WESR, false-trigger rate, p-value; ownership report")
def verify(cfg: VerifyCommand):
    from plmwatermark.evaluate import run_verify

    return _show(run_verify(cfg))


@app.command(
    "evaluate", EvaluateCommand, help="grid {rare, combination} x {single, multi} x fine-tune epochs"
)
def evaluate(cfg: EvaluateCommand):
    from plmwatermark.grid import run_grid

    return _show(run_grid(cfg))


@app.command("demo", DemoCommand, help="offline CPU demo on synthetic proxy and downstream tasks")
def demo(cfg: DemoCommand):
    from plmwatermark.demo import run_demo

    return _show(run_demo(cfg))


def _show(result) -> int:
    import json

    print(json.dumps(result, indent=2, default=str))
    return 0


main = app.main

if __name__ == "__main__":
    raise SystemExit(main())
