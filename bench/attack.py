"""Benchmark: the same victim, data and attack through stock TextAttack vs the tenfold_core.attack harness.

(a) stock TextAttack 0.3.11: ``textattack.Attacker`` over an ``Attack`` composed with the protocol's components,
    the victim behind TextAttack's own ``HuggingFaceModelWrapper`` (its default per-batch model calls, padding to
    max_length, its LRU cache);
(b) the harness: ``GreedyWordSwapAttack`` with a batched, cached ``Victim``, one example at a time;
(c) the same with ``--width`` examples in flight, their queries batched together (``run_attack(batch_examples=)``).
Both use the same toy victim (tiny BERT on the synthetic sentiment language), the same victim-embedding synonym
table (K = 50), the same local sentence encoder and the same TextDefender protocol. Prints examples/s, the ratio and
whether the two runs agree example by example (status, adversarial text, query count at the result).

    .venv/bin/python bench/attack.py [--n 100] [--recipes textfooler,pwws,textbugger] [--device cpu] [--width 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="examples to attack per recipe")
    ap.add_argument("--recipes", default="textfooler,pwws,textbugger")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=16, help="examples in flight for the batched harness run")
    args = ap.parse_args(argv)

    import torch

    import tenfold_core.attack as A
    from tenfold_core.attack.toy import train_toy_victim

    t0 = time.perf_counter()
    from tenfold_core.attack import textattack_backend as TB

    t_import = time.perf_counter() - t0
    from textattack.models.wrappers import HuggingFaceModelWrapper

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    model, tok, data = train_toy_victim(args.seed)
    model.to(args.device)
    texts, labels = data.test.texts, data.test.labels
    victim = A.Victim(model, tok, device=args.device)
    synonyms = A.EmbeddingSynonyms.from_victim(victim, k=50)
    encoder = A.WordVectorMeanEncoder.from_synonyms(synonyms)
    print(f"textattack import: {t_import:.1f} s (not timed below); device: {args.device}; "
          f"torch threads: {torch.get_num_threads()}")  # fmt: skip

    rows, tables = [], {}
    for recipe in args.recipes.split(","):
        proto = A.AttackProtocol(recipe, n_examples=args.n)
        print("protocol:", proto.describe(synonyms, encoder))
        idx = A.sample_examples(texts, proto.n_examples, proto.min_words, proto.seed)

        ta_attack = TB.build_textattack_attack(HuggingFaceModelWrapper(model, tok), synonyms, proto, encoder)
        t = time.perf_counter()
        ta_recs = TB.run_textattack(ta_attack, texts, labels, idx)
        t_ta = time.perf_counter() - t

        ours = A.GreedyWordSwapAttack(A.Victim(model, tok, device=args.device), synonyms, proto, encoder)
        t = time.perf_counter()
        our_recs = A.run_attack(ours, texts, labels, indices=idx)
        t_ours = time.perf_counter() - t

        many = A.GreedyWordSwapAttack(A.Victim(model, tok, device=args.device), synonyms, proto, encoder)
        t = time.perf_counter()
        many_recs = A.run_attack(many, texts, labels, indices=idx, batch_examples=args.width)
        t_many = time.perf_counter() - t

        agree = sum(
            a["status"] == b["status"] and a["perturbed"] == b["perturbed"]
            and a["queries_at_result"] == b["queries_at_result"]
            for a, b in zip(our_recs, ta_recs)
        )  # fmt: skip
        agree_many = sum(
            (a["status"], a["perturbed"]) == (b["status"], b["perturbed"]) for a, b in zip(many_recs, ta_recs)
        )
        for a, b in zip(our_recs, ta_recs):
            if (a["status"], a["perturbed"]) != (b["status"], b["perturbed"]):
                pa = victim.probs([a["perturbed"] or a["original"], b["perturbed"] or b["original"]])[
                    :, a["label"]
                ]
                print(f"  differs: {a['original']!r}: harness {a['perturbed']!r} vs TextAttack {b['perturbed']!r}; "
                      f"p(true label) {pa[0]:.9f} vs {pa[1]:.9f}")  # fmt: skip
        n = len(idx)
        rows.append(
            (recipe, n, n / t_ta, n / t_ours, t_ta / t_ours, agree, n / t_many, t_ta / t_many, agree_many)
        )
        tables[f"{recipe} (TextAttack)"] = ta_recs
        tables[f"{recipe} (harness)"] = our_recs

    print()
    w = args.width
    print(f"| recipe | n | TextAttack ex/s | harness ex/s | speed-up | identical | harness, {w} in flight, ex/s "
          "| speed-up | identical |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r, n, a, b, ratio, agree, c, ratio_c, agree_c in rows:
        print(
            f"| {r} | {n} | {a:.1f} | {b:.1f} | {ratio:.2f}x | {agree}/{n} | {c:.1f} | {ratio_c:.2f}x | {agree_c}/{n} |"
        )
    print()
    print(
        "identical = same status, adversarial text (and, sequential harness, query count at the result) as TextAttack;"
    )
    print(
        "each differing example is listed above with the victim's p(true label) for both adversarial texts."
    )
    print()
    print(
        "#Query: TextAttack reports the queries spent when its final result was found; the harness reports every"
    )
    print("query spent (both are in each record: 'queries_at_result' and 'queries').")
    print(A.summary_table(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
