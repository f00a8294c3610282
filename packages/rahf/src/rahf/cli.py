"""``rahf`` command line (thin): each verb imports its implementation inside the function."""

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


def _print(out):
    import json

    print(json.dumps(out, indent=2, default=str))
    return out


@app.command("sft", SFTCommand, help="supervised fine-tuning on prompt/response pairs (step 0)", trains=True)
def sft_cmd(cfg: SFTCommand):
    from rahf.train import sft

    return _print(sft(cfg))


@app.command("scit", SCITCommand, help="RAHF-SCIT step 1: contrastive instruction tuning", trains=True)
def scit_cmd(cfg: SCITCommand):
    from rahf.train import scit

    return _print(scit(cfg))


@app.command("dual", DualCommand, help="RAHF-DUAL step 1: a good and a bad SFT model", trains=True)
def dual_cmd(cfg: DualCommand):
    from rahf.train import dual

    return _print(dual(cfg))


@app.command("align", AlignCommand, help="RAHF step 2: cache directions, fit a LoRA to A_base + alpha v, merge",
             trains=True)  # fmt: skip
def align_cmd(cfg: AlignCommand):
    from rahf.train import align

    return _print(align(cfg))


@app.command("dpo", DPOCommand, help="the DPO baseline on the same pairs", trains=True)
def dpo_cmd(cfg: DPOCommand):
    from rahf.train import dpo

    return _print(dpo(cfg))


@app.command("evaluate", EvaluateCommand, help="win rate, perplexity drift, reward model, samples")
def evaluate_cmd(cfg: EvaluateCommand):
    from rahf.evaluate import evaluate

    return _print(evaluate(cfg))


@app.command("compare", CompareCommand, help="RAHF-SCIT vs RAHF-DUAL vs DPO on the same data: table + plot")
def compare_cmd(cfg: CompareCommand):
    from rahf.compare import compare

    return _print(compare(cfg))


@app.command("demo", DemoCommand, help="the embedded offline CPU demo (metrics.json, report.md, plots)")
def demo_cmd(cfg: DemoCommand):
    from rahf.demo import demo

    return _print(demo(cfg))


main = app.main
