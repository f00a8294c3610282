"""A tiny victim trained in seconds on the synthetic sentiment language (tests, benchmark, examples).

A 1-layer BERT (d = 32) over a word-level tokenizer, trained with a plain PyTorch loop on the language without "but"
clauses (negation only; ~85 % test accuracy in a few CPU seconds); deterministic for a seed.
"""

from __future__ import annotations

import functools

import torch

from tenfold_core.data import make_sentiment_data
from tenfold_core.models import tiny_bert_config, word_level_tokenizer

__all__ = ["train_toy_victim", "sentiment_synonyms"]


@functools.lru_cache(maxsize=4)
def train_toy_victim(seed: int = 0, n_train: int = 1000, epochs: int = 6, hidden: int = 32, layers: int = 1):
    """Returns ``(model, tokenizer, data)``: a trained ``BertForSequenceClassification`` (eval mode, CPU), its
    tokenizer and the :func:`~tenfold_core.data.make_sentiment_data` splits it was trained on."""
    from transformers import BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    data = make_sentiment_data(n_train=n_train, n_dev=100, n_test=300, seed=seed, but_prob=0.0)
    tok = word_level_tokenizer(data.train.texts + data.test.texts + data.dev.texts, max_length=40)
    torch.manual_seed(seed)
    cfg = tiny_bert_config(
        vocab_size=len(tok), hidden=hidden, layers=layers, heads=2, max_len=40, num_labels=2
    )
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = BertForSequenceClassification(cfg)
    finally:
        hf_logging.set_verbosity(verbosity)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    enc = tok(data.train.texts, padding=True, truncation=True, return_tensors="pt")
    y = torch.tensor(data.train.labels)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for s in range(0, len(y), 32):
            b = perm[s : s + 32]
            out = model(input_ids=enc["input_ids"][b], attention_mask=enc["attention_mask"][b], labels=y[b])
            opt.zero_grad()
            out.loss.backward()
            opt.step()
    model.eval()
    return model, tok, data


def sentiment_synonyms(k: int = 50):
    """A label-preserving synonym table for the synthetic sentiment language (:mod:`tenfold_core.data.synthetic`):
    every word may be replaced by the other words of its group (positive adjectives by positive adjectives, negative
    by negative, subject nouns, verbs, intensifiers, fillers), so a substitution never changes the true label; "not"
    and "but" have no candidates. Returns a :class:`~tenfold_core.attack.synonyms.DictSynonyms`."""
    from tenfold_core.attack.synonyms import DictSynonyms
    from tenfold_core.data import synthetic as S

    groups = [
        S.POSITIVE,
        S.NEGATIVE,
        [s.split()[-1] for s in S.SUBJECTS],
        S.VERBS,
        [w for w in S.INTENSIFIERS if w],
        [w for w in S.FILLERS if w and " " not in w],
    ]
    table: dict[str, list[str]] = {}
    for g in groups:
        for w in g:
            table[w] = [c for c in g if c != w]
    syn = DictSynonyms(table, k=k)
    syn.name = "synthetic-sentiment groups"
    return syn
