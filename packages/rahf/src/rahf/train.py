"""The training verbs, each a LightningModule trained through ``tenfold_core.train.fit`` (the network at ``.model``).

- :func:`sft`: NLL on response tokens (step 0, and each half of DUAL).
- :func:`scit`: RAHF-SCIT step 1, NLL + label-smoothed contrast between the good and the bad instruction.
- :func:`dual`: RAHF-DUAL step 1, two SFT runs (``good/`` on chosen, ``bad/`` on rejected).
- :func:`align`: RAHF step 2. Pass 1 caches v = A(p+) - A(p-) (SCIT: one model, two prompts; DUAL: good minus bad
  model, then the bad one is freed) on response tokens; pass 2 trains a LoRA so A_LoRA -> A_base + alpha v, A_base
  being the same model with the adapter disabled; the LoRA is merged at the end. At most two models are alive.
- :func:`dpo`: the DPO baseline (LoRA policy, reference = adapter disabled, as TRL does with PEFT).
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from rahf.cache import DirectionCache, cache_key, write_cache
from rahf.config import AlignCommand, DPOCommand, DualCommand, SCITCommand, SFTCommand
from rahf.data import encode, get_splits
from rahf.losses import align_loss, dpo_loss, scit_loss, token_logprobs
from rahf.model import add_lora, hidden_at, merge_lora, save_policy, save_tokenizer, start_model
from tenfold_core.train import TenfoldModule, fit, make_dataloader

__all__ = ["SFTModule", "SCITModule", "AlignModule", "DPOModule", "sft", "scit", "dual", "align", "dpo"]


class _Rows(torch.utils.data.Dataset):
    def __init__(self, rows: Sequence[Any]):
        self.rows = list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Any:
        return self.rows[i]


def _loader(rows, collate, batch_size: int, shuffle: bool, seed: int):
    return make_dataloader(_Rows(rows), batch_size, shuffle=shuffle, seed=seed, collate_fn=collate)


# ------------------------------------------------------------------------------------------------------- SFT
class SFTModule(TenfoldModule):
    """Mean NLL of response tokens given the (chat-templated) prompt."""

    def __init__(self, model, optim=None):
        super().__init__(optim)
        self.model = model

    def training_step(self, batch, batch_idx):
        s, n, _ = token_logprobs(self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                                 batch["input_ids"], batch["response_mask"])  # fmt: skip
        loss = -s.sum() / n.sum()
        self.log_train("train_loss", loss, prog_bar=True)
        return loss


def _sft_collate(tok, dcfg, system=None):
    def collate(rows):
        return encode(tok, [p for p, _ in rows], [r for _, r in rows], dcfg, system=system)

    return collate


def _run_config(cfg, **extra) -> dict:
    return {"model": None, "data": cfg.data, "rahf": {"verb": type(cfg).__name__, **extra}}


def _finish(result, model, tok, out_dir) -> None:
    if result.trainer is None or result.trainer.is_global_zero:
        save_tokenizer(tok, out_dir)


def sft(cfg: SFTCommand) -> dict:
    """Fine-tune on (prompt, response) of the chosen split: both responses (step 0) or one side (DUAL)."""
    t0 = time.perf_counter()
    splits = get_splits(cfg.data)
    pairs = splits[cfg.split]
    model, tok = start_model(cfg.model, cfg.init, splits["all"])
    rows = []
    if cfg.data.source == "synthetic" and cfg.responses == "both":
        from rahf.data import neutral_texts

        rows += neutral_texts(max(len(pairs) // 8, 1), seed=cfg.data.seed + 7)
    for p in pairs:
        if cfg.responses in ("both", "chosen"):
            rows.append((p.prompt, p.chosen))
        if cfg.responses in ("both", "rejected"):
            rows.append((p.prompt, p.rejected))
    loader = _loader(rows, _sft_collate(tok, cfg.data), cfg.data.batch_size, True, cfg.train.seed)
    module = SFTModule(model, cfg.optim)
    result = fit(module, cfg.train, loader, run_config=_run_config(cfg, responses=cfg.responses))
    _finish(result, model, tok, cfg.train.out_dir)
    return {"out_dir": str(cfg.train.out_dir), "rows": len(rows), "seconds": time.perf_counter() - t0}


# ------------------------------------------------------------------------------------------------------ SCIT
class SCITModule(TenfoldModule):
    """Each row: (instruction, prompt, response, opposite instruction); NLL + smoothed 2-way contrast."""

    def __init__(
        self, model, optim=None, eps: float = 0.2, form: str = "code", ce_over_padding: bool = False
    ):
        super().__init__(optim)
        self.model = model
        self.eps, self.form, self.ce_over_padding = eps, form, ce_over_padding

    def _lp(self, enc):
        logits = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        return token_logprobs(logits, enc["input_ids"], enc["response_mask"])

    def training_step(self, batch, batch_idx):
        loss, parts = scit_loss(self._lp(batch["match"]), self._lp(batch["opposite"]), self.eps, self.form,
                                self.ce_over_padding)  # fmt: skip
        self.log_train("train_loss", loss, prog_bar=True)
        self.log_train("train_contrast", parts["contrast"])
        return loss


def scit(cfg: SCITCommand) -> dict:
    t0 = time.perf_counter()
    splits = get_splits(cfg.data)
    model, tok = start_model(cfg.model, cfg.init, splits["all"])
    good, bad = cfg.scit.good_prompt, cfg.scit.bad_prompt
    rows = []
    for p in splits["rm"]:  # hindsight relabelling: (p+, y_w, p-) and (p-, y_l, p+)
        rows.append((good, p.prompt, p.chosen, bad))
        rows.append((bad, p.prompt, p.rejected, good))

    def collate(batch):
        prompts, resp = [r[1] for r in batch], [r[2] for r in batch]
        return {
            "match": encode(tok, prompts, resp, cfg.data, system=[r[0] for r in batch]),
            "opposite": encode(tok, prompts, resp, cfg.data, system=[r[3] for r in batch]),
        }

    loader = _loader(rows, collate, cfg.data.batch_size, True, cfg.train.seed)
    module = SCITModule(model, cfg.optim, cfg.scit.eps, cfg.scit.form, cfg.scit.ce_over_padding)
    result = fit(module, cfg.train, loader, run_config=_run_config(cfg, scit=cfg.scit))
    _finish(result, model, tok, cfg.train.out_dir)
    return {"out_dir": str(cfg.train.out_dir), "rows": len(rows), "seconds": time.perf_counter() - t0}


# ------------------------------------------------------------------------------------------------------ DUAL
def dual(cfg: DualCommand) -> dict:
    """Two SFT runs from the same start on the rm split: ``out_dir/good`` (chosen) and ``out_dir/bad`` (rejected)."""
    import dataclasses

    t0 = time.perf_counter()
    out = Path(cfg.train.out_dir)
    res = {}
    for side, responses in (("good", "chosen"), ("bad", "rejected")):
        sub = SFTCommand(
            model=cfg.model, data=cfg.data, optim=cfg.optim, init=cfg.init, responses=responses, split="rm",
            train=dataclasses.replace(cfg.train, out_dir=str(out / side)),
        )  # fmt: skip
        res[side] = sft(sub)
        gc.collect()
    return {"out_dir": str(out), "good": res["good"]["out_dir"], "bad": res["bad"]["out_dir"],
            "seconds": time.perf_counter() - t0}  # fmt: skip


# ----------------------------------------------------------------------------------------------------- align
def align_rows(pairs, choice: str, seed: int) -> list[tuple[str, str]]:
    """(prompt, response) rows of the align step: chosen, rejected, both ("all") or one at random per pair."""
    rng = random.Random(seed)
    rows = []
    for p in pairs:
        if choice == "all":
            rows += [(p.prompt, p.chosen), (p.prompt, p.rejected)]
        elif choice == "chosen":
            rows.append((p.prompt, p.chosen))
        elif choice == "rejected":
            rows.append((p.prompt, p.rejected))
        else:
            rows.append((p.prompt, p.chosen if rng.random() < 0.5 else p.rejected))
    return rows


@torch.no_grad()
def directions(pos_model, neg_model, tok, rows, dcfg, layers, pos_system, neg_system, batch_size: int = 32):
    """Yield v = A_pos - A_neg (``[R_i, L, H]``) for every row, on its response tokens only.

    SCIT: one model (``neg_model is pos_model``), systems p+ and p-; DUAL: good and bad model, the same input."""
    from tenfold_core.llm import gather_response

    pos_model.eval()
    neg_model.eval()
    for s in range(0, len(rows), batch_size):
        chunk = rows[s : s + batch_size]
        prompts, resp = [r[0] for r in chunk], [r[1] for r in chunk]
        e_pos = encode(tok, prompts, resp, dcfg, system=pos_system)
        e_neg = encode(tok, prompts, resp, dcfg, system=neg_system)
        h_pos, valid = gather_response(
            hidden_at(pos_model, e_pos, layers).permute(1, 2, 0, 3), e_pos["response_mask"]
        )
        h_neg, _ = gather_response(
            hidden_at(neg_model, e_neg, layers).permute(1, 2, 0, 3), e_neg["response_mask"]
        )
        v = (h_pos - h_neg).float()
        for b in range(len(chunk)):
            yield v[b, : int(valid[b].sum())]


class AlignModule(TenfoldModule):
    """LoRA towards A_base + alpha v at the target layers, on response tokens (v read from the cache)."""

    def __init__(self, model, optim, layers: Sequence[int], alpha: float, norm: str, reduction: str):
        super().__init__(optim)
        self.model = model  # a peft model: the adapter disabled gives A_base
        self.layers, self.alpha, self.norm, self.reduction = list(layers), alpha, norm, reduction

    def training_step(self, batch, batch_idx):
        from tenfold_core.llm import gather_response

        with torch.no_grad(), self.model.disable_adapter():
            base = hidden_at(self.model, batch, self.layers).permute(1, 2, 0, 3)
        h = hidden_at(self.model, batch, self.layers).permute(1, 2, 0, 3)
        base_r, valid = gather_response(base, batch["response_mask"])
        h_r, _ = gather_response(h, batch["response_mask"])
        v = batch["v"][:, : h_r.shape[1]]
        target = base_r + self.alpha * v.to(base_r.dtype)
        loss = align_loss(h_r.permute(2, 0, 1, 3), target.permute(2, 0, 1, 3), valid & batch["v_valid"][:, : h_r.shape[1]],
                          self.norm, self.reduction)  # fmt: skip
        self.log_train("train_loss", loss, prog_bar=True)
        return loss


def _align_collate(tok, dcfg, cache: DirectionCache):
    def collate(batch):
        idx = [b[0] for b in batch]
        enc = encode(tok, [b[1] for b in batch], [b[2] for b in batch], dcfg)
        vs = [cache[i] for i in idx]
        r = max([v.shape[0] for v in vs] + [1])
        v = torch.zeros(len(vs), r, *vs[0].shape[1:])
        valid = torch.zeros(len(vs), r, dtype=torch.bool)
        for j, t in enumerate(vs):
            v[j, : t.shape[0]] = t
            valid[j, : t.shape[0]] = True
        enc["v"], enc["v_valid"] = v, valid
        return enc

    return collate


def _weights_id(run_dir: str | None) -> str:
    if not run_dir:
        return "fresh"
    p = Path(run_dir) / "model.safetensors"
    st = p.stat() if p.is_file() else None
    return f"{Path(run_dir).resolve()}:{st.st_size if st else 0}:{st.st_mtime_ns if st else 0}"


def build_direction_cache(cfg: AlignCommand, rows, model, tok, neg_model=None) -> DirectionCache:
    a = cfg.align
    layers = list(a.target_layers)
    hidden = int(model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.n_embd)
    src = cfg.source if cfg.source else f"fresh:{cfg.model}"
    key = cache_key(src=_weights_id(cfg.source) if cfg.source else src, bad=a.direction_source, layers=layers,
                    rows=rows, dp=cfg.data.max_prompt_len, dr=cfg.data.max_response_len, chat=cfg.data.chat_template,
                    good=a.good_prompt, badp=a.bad_prompt, tok=sorted(tok.get_vocab().items()),
                    model=model.config.to_json_string())  # fmt: skip
    root = Path(cfg.cache_dir) if cfg.cache_dir else Path(cfg.train.out_dir) / "cache"
    if a.direction_source == "scit":
        gen = directions(
            model, model, tok, rows, cfg.data, layers, a.good_prompt, a.bad_prompt, cfg.data.batch_size
        )
    else:
        gen = directions(model, neg_model, tok, rows, cfg.data, layers, a.good_prompt, a.good_prompt,
                         cfg.data.batch_size)  # fmt: skip
    return write_cache(root / key, gen, len(rows), len(layers), hidden, meta={"layers": layers, "rows": len(rows)},
                       max_bytes=cfg.max_cache_gb * 1e9)  # fmt: skip


def _source_models(cfg: AlignCommand, splits):
    """(model whose hidden states are aligned, the dispreferred model or None, tokenizer)."""
    if cfg.align.direction_source == "dual":
        if cfg.source:
            good, tok = start_model(cfg.model, str(Path(cfg.source) / "good"), splits["all"])
            bad, _ = start_model(cfg.model, str(Path(cfg.source) / "bad"), splits["all"])
        else:  # tiny preset: two fresh models of different seeds stand in for the DUAL pair
            import dataclasses

            good, tok = start_model(cfg.model, None, splits["all"])
            bad, _ = start_model(dataclasses.replace(cfg.model, seed=cfg.model.seed + 1), None, splits["all"])
        return good, bad, tok
    model, tok = start_model(cfg.model, cfg.source, splits["all"])
    return model, None, tok


def align(cfg: AlignCommand) -> dict:
    from tenfold_core.models import count_parameters

    t0 = time.perf_counter()
    splits = get_splits(cfg.data)
    rows = align_rows(splits["ppo"], cfg.align.response_choice, cfg.train.seed)
    model, neg, tok = _source_models(cfg, splits)
    t1 = time.perf_counter()
    cache = build_direction_cache(cfg, rows, model, tok, neg)
    cache_s = time.perf_counter() - t1
    del neg  # from here on, one model (plus its LoRA)
    gc.collect()
    top = max(cfg.align.target_layers)
    n_blocks = int(getattr(model.config, "num_hidden_layers", 0) or model.config.n_layer)
    if top > n_blocks:
        from tenfold_core.errors import ConfigError

        raise ConfigError(f"align.target_layers: {top} exceeds the model's {n_blocks} blocks")
    a = cfg.align
    peft_model = add_lora(model, a.lora_r, a.lora_alpha, a.lora_dropout, a.lora_targets, top)
    module = AlignModule(peft_model, cfg.optim, a.target_layers, a.alpha, a.norm, a.reduction)
    loader = _loader(list(zip(range(len(rows)), [r[0] for r in rows], [r[1] for r in rows], strict=True)),
                     _align_collate(tok, cfg.data, cache), cfg.data.batch_size, True, cfg.train.seed)  # fmt: skip
    trainable = count_parameters(peft_model, trainable_only=True)
    first = _loss_on(module, loader)
    cfg_train = cfg.train
    result = fit(module, cfg_train, loader, run_config=_run_config(cfg, align=cfg.align, source=cfg.source))
    last = _loss_on(module, loader)
    cos = cos_along_v(peft_model, tok, rows[: min(64, len(rows))], cache, cfg)
    merged = merge_lora(peft_model)
    if result.trainer is None or result.trainer.is_global_zero:
        save_policy(merged, tok, cfg.train.out_dir, {"rahf": {"verb": "AlignCommand", "merged": True}})
    return {
        "out_dir": str(cfg.train.out_dir), "rows": len(rows), "align_loss_first": first, "align_loss_last": last,
        "cos_dA_v": cos, "cache_bytes": cache.nbytes, "cache_seconds": cache_s, "lora_trainable": trainable,
        "seconds": time.perf_counter() - t0,
    }  # fmt: skip


@torch.no_grad()
def _loss_on(module: AlignModule, loader, max_batches: int = 4) -> float:
    was = module.training
    module.eval()
    torch.manual_seed(0)
    vals = []
    for i, b in enumerate(loader):
        if i >= max_batches:
            break
        vals.append(float(module.training_step(b, i)))
    module.train(was)
    return sum(vals) / max(len(vals), 1)


@torch.no_grad()
def cos_along_v(peft_model, tok, rows, cache: DirectionCache, cfg: AlignCommand) -> float:
    """Mean cosine between the hidden-state change the LoRA makes (adapter on minus off) and v, per response token."""
    from tenfold_core.llm import gather_response

    peft_model.eval()
    layers = list(cfg.align.target_layers)
    enc = encode(tok, [r[0] for r in rows], [r[1] for r in rows], cfg.data)
    h = gather_response(hidden_at(peft_model, enc, layers).permute(1, 2, 0, 3), enc["response_mask"])[0]
    with peft_model.disable_adapter():
        hb, valid = gather_response(
            hidden_at(peft_model, enc, layers).permute(1, 2, 0, 3), enc["response_mask"]
        )
    cos = []
    for i in range(len(rows)):
        n = int(valid[i].sum())
        d, v = (h[i, :n] - hb[i, :n]).flatten(1), cache[i][:n].flatten(1)
        cos.append(torch.nn.functional.cosine_similarity(d, v, dim=-1, eps=1e-12))
    c = torch.cat(cos)
    return float(c.mean()) if c.numel() else 0.0


# ------------------------------------------------------------------------------------------------------- DPO
class DPOModule(TenfoldModule):
    def __init__(self, model, optim, beta: float = 0.1, ref=None):
        super().__init__(optim)
        self.model = model
        self.beta = beta
        self._ref = [ref]  # hidden from the state dict (full fine-tune only); None: adapter disabled

    def _lp(self, model, enc):
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        return token_logprobs(logits, enc["input_ids"], enc["response_mask"])[0]

    def training_step(self, batch, batch_idx):
        c, r = batch["chosen"], batch["rejected"]
        with torch.no_grad():
            if self._ref[0] is None:
                with self.model.disable_adapter():
                    ref_c, ref_r = self._lp(self.model, c), self._lp(self.model, r)
            else:
                ref_c, ref_r = self._lp(self._ref[0], c), self._lp(self._ref[0], r)
        loss, acc = dpo_loss(self._lp(self.model, c), self._lp(self.model, r), ref_c, ref_r, self.beta)
        self.log_train("train_loss", loss, prog_bar=True)
        self.log_train("train_reward_acc", acc)
        return loss


def dpo(cfg: DPOCommand) -> dict:
    import copy

    t0 = time.perf_counter()
    splits = get_splits(cfg.data)
    model, tok = start_model(cfg.model, cfg.init, splits["all"])
    ref = None
    if cfg.lora:
        n_blocks = int(getattr(model.config, "num_hidden_layers", 0) or model.config.n_layer)
        policy = add_lora(model, cfg.lora_r, 2 * cfg.lora_r, 0.05, cfg.lora_targets, n_blocks)
    else:
        policy, ref = model, copy.deepcopy(model).eval().requires_grad_(False)

    def collate(batch):
        prompts = [p.prompt for p in batch]
        return {
            "chosen": encode(tok, prompts, [p.chosen for p in batch], cfg.data),
            "rejected": encode(tok, prompts, [p.rejected for p in batch], cfg.data),
        }

    loader = _loader(splits[cfg.split], collate, cfg.data.batch_size, True, cfg.train.seed)
    module = DPOModule(policy, cfg.optim, cfg.beta, ref)
    result = fit(module, cfg.train, loader, run_config=_run_config(cfg, beta=cfg.beta, lora=cfg.lora))
    final = merge_lora(policy)
    if result.trainer is None or result.trainer.is_global_zero:
        if cfg.lora:
            save_policy(final, tok, cfg.train.out_dir, {"rahf": {"verb": "DPOCommand", "merged": True}})
        else:
            save_tokenizer(tok, cfg.train.out_dir)
    return {
        "out_dir": str(cfg.train.out_dir),
        "pairs": len(splits[cfg.split]),
        "seconds": time.perf_counter() - t0,
    }
