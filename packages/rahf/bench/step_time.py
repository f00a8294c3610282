"""RAHF align step vs DPO step: wall time per example on the same model and batch (forward + backward, one thread),
and the model state DUAL holds at once (2 models + the direction cache) vs the official code's 4 models.

    OMP_NUM_THREADS=1 python packages/rahf/bench/step_time.py [--hidden 128 --layers 6 --batch 16]
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(1)
    from rahf.config import LMConfig, PrefDataConfig
    from rahf.data import encode, synthetic_pairs
    from rahf.model import add_lora, param_bytes, start_model
    from rahf.train import AlignModule, DPOModule

    cfg = LMConfig(hidden=a.hidden, layers=a.layers, heads=4)
    d = PrefDataConfig(max_response_len=16)
    pairs = synthetic_pairs(a.batch, 0)
    model, tok = start_model(cfg, None, pairs)
    top = a.layers // 2 + 1
    layers = [top - 1, top]
    peft = add_lora(model, 8, 16, 0.0, ["q_proj", "v_proj"], top)
    prompts = [p.prompt for p in pairs]
    enc_c = encode(tok, prompts, [p.chosen for p in pairs], d)
    enc_r = encode(tok, prompts, [p.rejected for p in pairs], d)
    r = int(enc_c["response_mask"].sum(1).max())
    batch = dict(enc_c, v=torch.randn(a.batch, r, len(layers), a.hidden) * 0.1,
                 v_valid=torch.ones(a.batch, r, dtype=torch.bool))  # fmt: skip
    align = AlignModule(peft, None, layers, 1.0, "sq_l2", "masked")
    dpo = DPOModule(peft, None, 0.1)

    def timeit(fn):
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(a.steps):
                peft.zero_grad()
                fn().backward()
            best = min(best, (time.perf_counter() - t) / (a.steps * a.batch))
        return best

    t_align = timeit(lambda: align.training_step(batch, 0))
    t_dpo = timeit(lambda: dpo.training_step({"chosen": enc_c, "rejected": enc_r}, 0))
    one = param_bytes(model)
    cache = int(enc_c["response_mask"].sum()) * len(layers) * a.hidden * 2
    print(f"align step  {1e3 * t_align:.3f} ms/example")
    print(f"DPO step    {1e3 * t_dpo:.3f} ms/example")
    print(f"ratio align/DPO = {t_align / t_dpo:.3f}  (goal <= 1)")
    print(
        f"DUAL model state: 2 models + cache = {(2 * one + cache) / 2**20:.2f} MiB vs official 4 models = "
        f"{4 * one / 2**20:.2f} MiB (ratio {(2 * one + cache) / (4 * one):.3f})"
    )


if __name__ == "__main__":
    main()
