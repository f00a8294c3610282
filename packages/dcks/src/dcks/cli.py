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

app.command("train", TrainCommand, help="train DCKS (checkpoint selected on dev)", trains=True,
            run="dcks.train:run_train")  # fmt: skip
app.command("evaluate", EvaluateCommand, help="PPL (corpus + mean sentence), emotion acc, Dist, BLEU, ROUGE-L",
            run="dcks.evaluate:run_evaluate")  # fmt: skip
app.command(
    "chat",
    ChatCommand,
    help="reply + predicted emotion + ranked relations (stdin or --input FILE)",
    run="dcks.evaluate:run_chat",
    show=lambda result, cfg: None,
)  # fmt: skip  (chat prints its replies)
app.command("demo", DemoCommand, help="offline CPU demo: tiny BART on synthetic empathetic dialogues",
            run="dcks.demo:run_demo")  # fmt: skip

main = app.main

if __name__ == "__main__":
    raise SystemExit(main())
