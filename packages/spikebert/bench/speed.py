"""SpikeBERT student speed on CPU: training step (fwd+bwd) and inference, fused vs reference LIF backend, T = 4 vs 1,
and the ANN teacher of the same width, all in one process. Prints ratios (not a timed test).

    OMP_NUM_THREADS=1 python packages/spikebert/bench/speed.py
"""

from __future__ import annotations

import time

import torch
from spikebert import NeuronConfig, SpikeBERT, SpikeBertConfig

from tenfold_core.models import tiny_bert_config


def bench(fn, reps: int = 5) -> float:
    fn()  # warm-up (kernel compilation)
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps * 1e3


def main() -> None:
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    B, L, D, depth, V = 32, 64, 256, 4, 8000
    ids = torch.randint(5, V, (B, L))
    mask = torch.ones(B, L, dtype=torch.long)
    rows = []
    for backend in ("auto", "reference"):
        for T in (4, 1):
            m = SpikeBERT(
                SpikeBertConfig(
                    vocab_size=V,
                    dim=D,
                    depth=depth,
                    num_heads=8,
                    num_labels=2,
                    time_steps=T,
                    neuron=NeuronConfig(backend=backend),
                )  # fmt: skip
            )

            def step(m=m):
                m.zero_grad()
                m(ids, mask).logits.sum().backward()

            def infer(m=m):
                with torch.no_grad():
                    m(ids, mask, return_representations=False)

            rows.append((f"SpikeBERT T={T} LIF={backend}", bench(step), bench(infer)))
    bert = BertForSequenceClassification(
        tiny_bert_config(vocab_size=V, hidden=D, layers=depth, heads=8, max_len=L)
    )

    def bstep():
        bert.zero_grad()
        bert(input_ids=ids, attention_mask=mask).logits.sum().backward()

    def binfer():
        with torch.no_grad():
            bert(input_ids=ids, attention_mask=mask)

    rows.append(("BERT (ANN teacher, same width)", bench(bstep), bench(binfer)))
    base = rows[0]
    print(f"batch {B} x {L} tokens, width {D}, depth {depth}, {torch.get_num_threads()} thread(s)")
    print(f"{'model':<36} {'train ms':>9} {'infer ms':>9} {'train x':>8} {'infer x':>8}")
    for name, tr, inf in rows:
        print(f"{name:<36} {tr:9.1f} {inf:9.1f} {tr / base[1]:8.2f} {inf / base[2]:8.2f}")


if __name__ == "__main__":
    main()
