"""DCKS vs plain BART of the same size: generation tokens/s (same decoding), and the selection step's cost per batch
as a fraction of a training step. One thread, side by side in one run; prints ratios.

    OMP_NUM_THREADS=1 python packages/dcks/bench/speed.py
"""

from __future__ import annotations

import time

import torch
from dcks.config import DCKSConfig, DecodeConfig, LossConfig
from dcks.losses import dcks_loss
from dcks.model import DCKS, relation_gradients, selection_shift
from transformers import BartForConditionalGeneration


def main(d=128, layers=2, B=8, T=32, L=16, new=24, reps=3):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = DCKSConfig(backbone="tiny", vocab_size=2000, d_model=d, layers=layers, heads=4, num_emotions=32)
    m = DCKS(cfg).eval()
    plain = BartForConditionalGeneration(
        m.bart.config.__class__(**{**m.bart.config.to_dict(), "dcks_knowledge_in_decoder": False})
    ).eval()
    ids = torch.randint(5, 2000, (B, T))
    am = torch.ones_like(ids)
    kids = torch.randint(5, 2000, (B, 5, L))
    km = torch.ones_like(kids)
    dec = DecodeConfig(num_beams=5, max_new_tokens=new, repetition_penalty=1.5)
    kw = dict(num_beams=5, max_new_tokens=new, min_new_tokens=new, repetition_penalty=1.5)

    def t_dcks():
        return m.generate(ids, am, kids, km, dec, min_new_tokens=new)["sequences"]

    def t_plain():
        return plain.generate(input_ids=ids, attention_mask=am, **kw)

    res = {}
    for name, fn in (("dcks", t_dcks), ("bart", t_plain)):
        fn()
        t0 = time.perf_counter()
        for _ in range(reps):
            n = fn().shape[1] - 1
        res[name] = B * n * reps / (time.perf_counter() - t0)
    print(
        f"generation tokens/s  dcks {res['dcks']:.0f}  bart {res['bart']:.0f}  ratio {res['dcks'] / res['bart']:.2f}"
    )

    # selection cost vs a training step
    m.train()
    dec_ids = torch.randint(5, 2000, (B, 16))
    opt = torch.optim.AdamW(m.parameters(), 1e-4)
    emo = torch.randint(0, 32, (B,))

    def step():
        logits, enc = m(ids, am, kids, km, dec_ids, emotion_labels=emo)
        loss = dcks_loss(logits, dec_ids, enc, emo, LossConfig())["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    u = torch.randn(B, 5, d)
    step()
    t0 = time.perf_counter()
    for _ in range(reps):
        step()
    t_step = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(reps * 10):
        losses, grads = relation_gradients(u, m.emo_lin.weight, emo)
        selection_shift(losses, grads)
    t_sel = (time.perf_counter() - t0) / (reps * 10)
    print(
        f"selection {t_sel * 1e3:.2f} ms per batch = {t_sel / t_step:.3f} of a training step ({t_step * 1e3:.0f} ms)"
    )


if __name__ == "__main__":
    main()
