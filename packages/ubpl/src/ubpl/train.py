"""Models: SmolLM2 / any HF causal LM, or the demo's tiny GPT-2 with a byte-level BPE tokenizer trained on a corpus
(through ``tenfold_core.train.fit``; multi-token words exist, as with real tokenizers)."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from tenfold_core.train import TenfoldModule, fit, make_dataloader
from ubpl.config import TrainLMCommand
from ubpl.losses import causal_lm_loss

__all__ = ["train_bpe", "LMModule", "train_lm", "load_model"]


def train_bpe(texts, vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)  # fmt: skip
    tok.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   bos_token="<|endoftext|>")  # fmt: skip


class LMModule(TenfoldModule):
    def __init__(self, model, optim=None):
        super().__init__(optim)
        self.model = model

    def training_step(self, batch, batch_idx):
        loss = causal_lm_loss(self.model(input_ids=batch).logits, batch)  # packed blocks: no padding
        self.log_train("train_loss", loss, prog_bar=True)
        return loss


def _texts(corpus: str) -> list[str]:
    if corpus == "synthetic":
        from ubpl.data import synthetic_corpus

        return [r["text"] for r in synthetic_corpus(per_situation=8)]
    from ubpl.lexicon import load_corpus

    return [t for _, _, t in load_corpus(corpus, traits=())]


def train_lm(cfg: TrainLMCommand) -> dict:
    from tenfold_core.llm import tiny_causal_lm

    t0 = time.perf_counter()
    texts = _texts(cfg.corpus)
    tok = train_bpe(texts, cfg.vocab_size)
    ids: list[int] = []
    for t in texts:
        ids += tok(t)["input_ids"] + [tok.eos_token_id]
    n = len(ids) // cfg.block
    data = torch.tensor(ids[: n * cfg.block]).view(n, cfg.block)
    model = tiny_causal_lm(len(tok), kind="gpt2", hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads,
                           max_len=max(256, cfg.block), seed=cfg.train.seed, pad_token_id=tok.pad_token_id,
                           eos_token_id=tok.eos_token_id)  # fmt: skip
    loader = make_dataloader(data, cfg.batch_size, shuffle=True, seed=cfg.train.seed)
    result = fit(
        LMModule(model, cfg.optim),
        cfg.train,
        loader,
        run_config={"model": None, "data": {"corpus": cfg.corpus}},
    )
    if result.trainer is None or result.trainer.is_global_zero:
        tok.save_pretrained(str(Path(cfg.train.out_dir) / "tokenizer"))
    return {
        "out_dir": cfg.train.out_dir,
        "sequences": n,
        "vocab": len(tok),
        "seconds": time.perf_counter() - t0,
    }


def load_model(base: str, dtype: str = "float32", device: str = "cpu"):
    """``(model, tokenizer)``: a ``train-lm`` run folder, ``smollm2``, a model folder or a hub id (eval mode), in
    ``dtype`` on ``device`` (``auto``: cuda when available). Inputs follow the model's device in ubpl.evaluate."""
    from tenfold_core.errors import ConfigError

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"model.device={device}: no CUDA device here (use cpu or auto)")
    p = Path(base)
    if (p / "config.json").is_file() and (p / "tokenizer").is_dir():
        from transformers import AutoTokenizer

        from tenfold_core.models import load_run

        model, tok = load_run(p).model.eval(), AutoTokenizer.from_pretrained(str(p / "tokenizer"))
        model = model.to(dtype=getattr(torch, dtype))
    else:
        from tenfold_core.llm import load_causal_lm

        model, tok = load_causal_lm(base, dtype=getattr(torch, dtype))
    return model.to(device), tok
