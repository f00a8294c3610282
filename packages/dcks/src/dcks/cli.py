"""``dcks`` command line: train, evaluate, chat, demo."""

from __future__ import annotations

from dcks import __version__
from dcks.config import ChatCommand, DemoCommand, EvaluateCommand, TrainCommand
from tenfold_core.cli import App

app = App(
    "dcks",
    "DCKS: empathetic replies with adaptive commonsense-knowledge selection (arXiv 2306.04657)",
    version=__version__,
    package="dcks",
)


@app.command("train", TrainCommand, help="train DCKS (checkpoint selected on dev)", trains=True)
def train(cfg: TrainCommand):
    from dcks.train import run_train

    return _show(run_train(cfg))


@app.command(
    "evaluate", EvaluateCommand, help="PPL (corpus + mean sentence), emotion acc, Dist, BLEU, ROUGE-L"
)
def evaluate(cfg: EvaluateCommand):
    from dcks.evaluate import run_evaluate

    return _show(run_evaluate(cfg))


@app.command("chat", ChatCommand, help="reply + predicted emotion + ranked relations (stdin or --input FILE)")
def chat(cfg: ChatCommand):
    from dcks.evaluate import run_chat

    run_chat(cfg)
    return 0


@app.command("demo", DemoCommand, help="offline CPU demo: tiny BART on synthetic empathetic dialogues")
def demo(cfg: DemoCommand):
    from dcks.demo import run_demo

    return _show(run_demo(cfg))


def _show(result) -> int:
    import json

    print(json.dumps(result, indent=2, default=str))
    return 0


main = app.main

if __name__ == "__main__":
    raise SystemExit(main())
