"""``ubpl`` command line (thin): each verb's implementation is imported when the verb runs."""

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

app.command("build-lexicon", BuildLexiconCommand, help="per (trait, pole) word weights from a persona corpus",
            run="ubpl.verbs:build_lexicon_cmd")  # fmt: skip
app.command("make-corpus", MakeCorpusCommand, help="a persona corpus: templated, or role-played by any chat LLM",
            run="ubpl.verbs:make_corpus")  # fmt: skip
app.command("train-lm", TrainLMCommand, help="train a tiny GPT-2 + BPE tokenizer on a corpus (the demo LM)",
            trains=True, run="ubpl.train:train_lm")  # fmt: skip
# a streamed generation has printed its tokens already; compare prints its table
app.command("generate", GenerateCommand, help="generate with personality steering (streams tokens)",
            run="ubpl.verbs:generate", show=lambda out, cfg: None if cfg.stream else out)  # fmt: skip
app.command("evaluate", EvaluateCommand, help="questionnaire, lexicon scores, perplexity, distinct-n",
            run="ubpl.verbs:evaluate")  # fmt: skip
app.command("compare", CompareCommand, help="lexicon steering vs persona prompt vs no control: one table",
            run="ubpl.verbs:compare", show=lambda out, cfg: out["table"])  # fmt: skip
app.command("demo", DemoCommand, help="the embedded offline CPU demo (metrics.json, report.md, plots)",
            run="ubpl.demo:demo")  # fmt: skip

main = app.main
