"""``ubpl`` command line (thin): each verb imports its implementation inside the function."""

from __future__ import annotations

from tenfold_core.cli import App
from ubpl import __version__
from ubpl.config import (
    BuildLexiconCommand,
    CompareCommand,
    DemoCommand,
    EvaluateCommand,
    GenerateCommand,
    MakeCorpusCommand,
    TrainLMCommand,
)

app = App("ubpl", "Big-Five personality control at decoding time with unsupervised lexicons", version=__version__,
          package="ubpl")  # fmt: skip


def _print(out):
    import json

    print(json.dumps(out, indent=2, default=str))
    return out


@app.command(
    "build-lexicon", BuildLexiconCommand, help="per (trait, pole) word weights from a persona corpus"
)
def build_lexicon_cmd(cfg: BuildLexiconCommand):
    from ubpl.verbs import build_lexicon_cmd as run

    return _print(run(cfg))


@app.command(
    "make-corpus", MakeCorpusCommand, help="a persona corpus: templated, or role-played by any chat LLM"
)
def make_corpus_cmd(cfg: MakeCorpusCommand):
    from ubpl.verbs import make_corpus

    return _print(make_corpus(cfg))


@app.command("train-lm", TrainLMCommand, help="train a tiny GPT-2 + BPE tokenizer on a corpus (the demo LM)",
             trains=True)  # fmt: skip
def train_lm_cmd(cfg: TrainLMCommand):
    from ubpl.train import train_lm

    return _print(train_lm(cfg))


@app.command("generate", GenerateCommand, help="generate with personality steering (streams tokens)")
def generate_cmd(cfg: GenerateCommand):
    from ubpl.verbs import generate

    out = generate(cfg)
    if not cfg.stream:
        _print(out)
    return out


@app.command("evaluate", EvaluateCommand, help="questionnaire, lexicon scores, perplexity, distinct-n")
def evaluate_cmd(cfg: EvaluateCommand):
    from ubpl.verbs import evaluate

    return _print(evaluate(cfg))


@app.command("compare", CompareCommand, help="lexicon steering vs persona prompt vs no control: one table")
def compare_cmd(cfg: CompareCommand):
    from ubpl.verbs import compare

    out = compare(cfg)
    print(out["table"])
    return out


@app.command("demo", DemoCommand, help="the embedded offline CPU demo (metrics.json, report.md, plots)")
def demo_cmd(cfg: DemoCommand):
    from ubpl.demo import demo

    return _print(demo(cfg))


main = app.main
