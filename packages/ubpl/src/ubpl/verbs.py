"""The verbs behind the CLI: build-lexicon, make-corpus, generate (streams), evaluate, compare."""

from __future__ import annotations

import time
from pathlib import Path

from ubpl.config import (
    BuildLexiconCommand,
    CompareCommand,
    EvaluateCommand,
    GenerateCommand,
    MakeCorpusCommand,
    SteerConfig,
    parse_lambdas,
)

__all__ = ["build_lexicon_cmd", "make_corpus", "generate", "evaluate", "compare", "PERSONA"]

PERSONA = "You are a person with very {level} {name}. Answer as that person would."


def build_lexicon_cmd(cfg: BuildLexiconCommand) -> dict:
    from ubpl.data import synthetic_corpus
    from ubpl.lexicon import build_lexicon, check_coverage, load_corpus, save_lexicon

    if cfg.corpus == "synthetic":
        rows = [(r["trait"], r["pole"], r["text"]) for r in synthetic_corpus()]
        check_coverage(rows, sorted({r[0] for r in rows}), "synthetic")
    else:
        rows = load_corpus(cfg.corpus)
    lex = build_lexicon(rows, cfg.lexicon)
    save_lexicon(lex, cfg.out)
    return {"out": cfg.out, "sizes": {f"{t}_{s}": len(w) for t, p in lex.items() for s, w in p.items()},
            "top": {f"{t}_{s}": list(w)[:5] for t, p in lex.items() for s, w in p.items()}}  # fmt: skip


def make_corpus(cfg: MakeCorpusCommand) -> dict:
    from ubpl.data import SITUATIONS, llm_corpus, synthetic_corpus, write_corpus

    sits = _lines(cfg.situations, "situations") if cfg.situations else SITUATIONS
    if cfg.model == "synthetic":
        rows = synthetic_corpus(cfg.per_situation, cfg.seed, cfg.traits)
    else:
        from ubpl.train import load_model

        model, tok = load_model(cfg.model, cfg.dtype, cfg.device)
        rows = llm_corpus(model, tok, sits, cfg.traits, cfg.per_situation, cfg.max_new_tokens, cfg.temperature,
                          cfg.seed)  # fmt: skip
    write_corpus(rows, cfg.out)
    return {"out": cfg.out, "rows": len(rows)}


def generate(cfg: GenerateCommand) -> dict:
    import sys

    from transformers import TextStreamer

    from ubpl.evaluate import generate_texts
    from ubpl.lexicon import load_lexicon
    from ubpl.model import build_processor
    from ubpl.train import load_model

    lex = load_lexicon(cfg.lexicon)
    model, tok = load_model(cfg.model.base, cfg.model.dtype, cfg.model.device)
    proc = build_processor(lex, tok, cfg.steer, model.config.vocab_size)
    streamer = TextStreamer(tok, skip_prompt=True, skip_special_tokens=True) if cfg.stream else None
    t0 = time.perf_counter()
    text = generate_texts(model, tok, [cfg.prompt], proc, cfg.max_new_tokens, chat=cfg.chat, sample=cfg.sample,
                          seed=cfg.seed, streamer=streamer, temperature=cfg.temperature, top_p=cfg.top_p)[0]  # fmt: skip
    if streamer is not None:
        sys.stdout.flush()
    return {"text": text, "seconds": time.perf_counter() - t0, "lambdas": parse_lambdas(cfg.steer.lambdas)}


def _lines(path: str, what: str) -> list[str]:
    """The non-blank lines of a text file, stripped (DataError naming ``what`` if it is missing)."""
    from tenfold_core.errors import DataError

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such {what} file")
    return [s.strip() for s in p.read_text(encoding="utf-8").splitlines() if s.strip()]


def _prompts(path: str | None) -> list[str]:
    from ubpl.data import OPEN_PROMPTS

    return list(OPEN_PROMPTS) if path is None else _lines(path, "prompts")


def run_condition(model, tok, lex, prompts, items, processor=None, persona=None, max_new_tokens=40, traits=("E",),
                  questionnaire_on=True) -> dict:  # fmt: skip
    from ubpl.evaluate import distinct_n, generate_texts, lexicon_scores, perplexity, questionnaire

    t0 = time.perf_counter()
    texts = generate_texts(model, tok, prompts, processor, max_new_tokens, persona=persona)
    out: dict = {"gen_seconds": time.perf_counter() - t0}
    for t in traits:
        for k, v in lexicon_scores(texts, lex, t).items():
            out[f"{t}_{k}"] = v
    out["perplexity"] = perplexity(model, tok, prompts, [x if x.strip() else "." for x in texts])
    out["distinct_2"] = distinct_n(texts, 2)
    if questionnaire_on:
        for k, v in questionnaire(model, tok, items, processor, persona).items():
            out[f"mpi_{k}"] = v
    out["samples"] = texts[:3]
    return out


def evaluate(cfg: EvaluateCommand) -> dict:
    from tenfold_core.io import write_json
    from ubpl.data import load_items
    from ubpl.lexicon import load_lexicon
    from ubpl.model import build_processor
    from ubpl.train import load_model

    lex = load_lexicon(cfg.lexicon)
    model, tok = load_model(cfg.model.base, cfg.model.dtype, cfg.model.device)
    proc = build_processor(lex, tok, cfg.steer, model.config.vocab_size)
    lam = parse_lambdas(cfg.steer.lambdas)
    res = run_condition(model, tok, lex, _prompts(cfg.prompts), load_items(cfg.items), proc, cfg.persona,
                        cfg.max_new_tokens, traits=sorted(lam) or ["E"], questionnaire_on=cfg.questionnaire)  # fmt: skip
    if cfg.out:
        write_json(cfg.out, res)
    return res


def compare(cfg: CompareCommand) -> dict:
    from tenfold_core.io import atomic_write_text, write_json
    from tenfold_core.report import markdown_table
    from ubpl.config import TRAIT_NAMES
    from ubpl.data import load_items
    from ubpl.lexicon import load_lexicon
    from ubpl.model import build_processor
    from ubpl.train import load_model

    lex = load_lexicon(cfg.lexicon)
    model, tok = load_model(cfg.model.base, cfg.model.dtype, cfg.model.device)
    prompts, items = _prompts(cfg.prompts), load_items(cfg.items)
    sign = 1 if cfg.level == "high" else -1
    steer = SteerConfig(lambdas=f"{cfg.trait}={sign}", gamma=cfg.gamma)
    persona = PERSONA.format(level=cfg.level, name=TRAIT_NAMES[cfg.trait])
    conds = {
        "none": (None, None),
        "persona prompt": (None, persona),
        "lexicon steering": (build_processor(lex, tok, steer, model.config.vocab_size), None),
    }
    rows = []
    for name, (proc, pers) in conds.items():
        r = run_condition(model, tok, lex, prompts, items, proc, pers, cfg.max_new_tokens, traits=[cfg.trait])
        rows.append({"condition": name, f"mpi_{cfg.trait}": r[f"mpi_{cfg.trait}_mean"],
                     "trait_score": r[f"{cfg.trait}_trait_score"], f"hit_{cfg.level}": r[f"{cfg.trait}_hit_{cfg.level}"],
                     "perplexity": r["perplexity"], "distinct_2": r["distinct_2"], "sample": r["samples"][0][:80]})  # fmt: skip
    table = markdown_table(rows)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "compare.md", table)
    write_json(out / "compare.json", rows)
    return {"rows": rows, "table": table}
