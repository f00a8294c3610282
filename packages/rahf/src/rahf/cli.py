"""``rahf`` command line (thin): each verb's implementation is imported when the verb runs."""

from __future__ import annotations

from rahf import __version__
from rahf.config import (
    AlignCommand,
    CompareCommand,
    DemoCommand,
    DPOCommand,
    DualCommand,
    EvaluateCommand,
    SCITCommand,
    SFTCommand,
)
from tenfold_core.cli import App

app = App("rahf", "Representation Alignment from Human Feedback (SCIT, DUAL) and DPO", version=__version__,
          package="rahf")  # fmt: skip

app.command("sft", SFTCommand, help="supervised fine-tuning on prompt/response pairs (step 0)", trains=True,
            run="rahf.train:sft")  # fmt: skip
app.command("scit", SCITCommand, help="RAHF-SCIT step 1: contrastive instruction tuning", trains=True,
            run="rahf.train:scit")  # fmt: skip
app.command("dual", DualCommand, help="RAHF-DUAL step 1: a good and a bad SFT model", trains=True,
            run="rahf.train:dual")  # fmt: skip
app.command("align", AlignCommand, help="RAHF step 2: cache directions, fit a LoRA to A_base + alpha v, merge",
            trains=True, run="rahf.train:align")  # fmt: skip
app.command("dpo", DPOCommand, help="the DPO baseline on the same pairs", trains=True, run="rahf.train:dpo")
app.command("evaluate", EvaluateCommand, help="win rate, perplexity drift, reward model, samples",
            run="rahf.evaluate:evaluate")  # fmt: skip
app.command("compare", CompareCommand, help="RAHF-SCIT vs RAHF-DUAL vs DPO on the same data: table + plot",
            run="rahf.compare:compare")  # fmt: skip
app.command("demo", DemoCommand, help="the embedded offline CPU demo (metrics.json, report.md, plots)",
            run="rahf.demo:demo")  # fmt: skip

main = app.main
