"""Stage-1 corpus shards (streamed, memory independent of corpus size), the Chinese character-level recipe, and the
official checkpoint key map."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from spikebert import SpikeBERT, SpikeBertConfig
from spikebert.config import CorpusConfig
from spikebert.data import ShardDataset, char_level_tokenizer, corpus_loaders, write_shards
from spikebert.official import load_official_checkpoint, official_config, official_key_map

from tenfold_core.errors import ModelLoadError
from tenfold_core.models import word_level_tokenizer


def test_shards_round_trip_and_are_reused(tmp_path):
    tok = word_level_tokenizer(["a b c d e f g"], max_length=8)
    texts = ["a b", "c d e", "f g a b c d e f g", "g"]
    meta = write_shards(iter(texts), tok, 6, tmp_path / "s", block=3)
    assert meta["sentences"] == 4
    ds = ShardDataset(tmp_path / "s")
    for i, t in enumerate(texts):
        assert ds[i].tolist() == tok(t, truncation=True, max_length=6)["input_ids"]
    assert len(ShardDataset(tmp_path / "s", 1, 3)) == 2
    mtime = (tmp_path / "s" / "tokens.bin").stat().st_mtime_ns
    write_shards(iter(texts), tok, 6, tmp_path / "s")  # same tokenizer and length: reused, not rewritten
    assert (tmp_path / "s" / "tokens.bin").stat().st_mtime_ns == mtime


def test_corpus_loaders_hold_out_a_minimum(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(f"w{i % 7} w{i % 5}" for i in range(1500)) + "\n")
    tok = word_level_tokenizer([f"w{i}" for i in range(7)], max_length=8)
    cfg = CorpusConfig(corpus=str(corpus), dev_fraction=0.01, dev_min=200, max_length=8, batch_size=32)
    train, dev, info = corpus_loaders(cfg, tok, tmp_path / "shards")
    assert info["dev_sentences"] == 200 and info["sentences"] == 1500  # not 1 % = 15
    b = next(iter(train))
    assert set(b) == {"input_ids", "attention_mask"} and b["input_ids"].shape[0] == 32


_RSS = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    from spikebert.config import CorpusConfig
    from spikebert.data import corpus_loaders
    from tenfold_core.models import word_level_tokenizer
    n, folder = int(sys.argv[1]), Path(sys.argv[2])
    words = [f"w{i}" for i in range(300)]
    corpus = folder / "c.txt"
    with corpus.open("w") as f:
        for i in range(n):
            f.write(" ".join(words[(i * 7 + j * 13) % 300] for j in range(12)) + "\\n")
    tok = word_level_tokenizer(words, max_length=32)
    cfg = CorpusConfig(corpus=str(corpus), max_length=32, batch_size=64, dev_min=10)
    train, dev, info = corpus_loaders(cfg, tok, folder / "shards")
    seen = sum(b["input_ids"].shape[0] for b in train)
    assert seen == info["sentences"] - info["dev_sentences"]
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """
)


@pytest.mark.slow
def test_stage1_peak_memory_does_not_grow_with_the_corpus(tmp_path):
    rss = {}
    for n in (3_000, 30_000):
        d = tmp_path / str(n)
        d.mkdir()
        r = subprocess.run(
            [sys.executable, "-c", _RSS, str(n), str(d)], capture_output=True, text=True, timeout=300
        )
        assert r.returncode == 0, r.stderr[-2000:]
        rss[n] = int(r.stdout.strip().splitlines()[-1])
    assert rss[30_000] < 1.2 * rss[3_000], rss  # the old in-memory path: ~254 B/token, about +100 MB here


def test_chinese_character_level_recipe(tmp_path):
    tok = char_level_tokenizer(["这家店很好吃", "不好吃", "服务很差"])
    ids = tok("不好吃")["input_ids"]
    assert len(ids) == 5 and tok.convert_ids_to_tokens(ids[1:4]) == ["不", "好", "吃"]
    # a tiny ChnSenti-style folder, trained end to end with the character tokenizer
    pos = ["很好吃", "服务很好", "味道不错", "非常满意", "好吃又便宜", "环境很好"]
    neg = ["不好吃", "服务很差", "味道太差", "非常失望", "又贵又难吃", "环境很差"]
    rows = [f"{t}\t1" for t in pos] + [f"{t}\t0" for t in neg]
    folder = tmp_path / "chn"
    folder.mkdir()
    for split in ("train", "validation", "test"):
        (folder / f"{split}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    from spikebert.cli import app

    m = app.run(["train-direct", "--preset", "tiny", "--tokenizer", "tiny", "--data.tokenizer", "char",
                 "--data.data", str(folder), "--train.out_dir", str(tmp_path / "run")])  # fmt: skip
    assert 0 <= m["test_accuracy"] <= 1
    from transformers import AutoTokenizer

    saved = AutoTokenizer.from_pretrained(str(tmp_path / "run" / "tokenizer"))
    assert saved.convert_ids_to_tokens(saved("难吃")["input_ids"][1:3]) == ["难", "吃"]


def _official_state(depth=2, dim=16, hidden=64, vocab=30, classes=3):
    """A state dict with the official ``new_spikformer`` module names (written from its layout, not ours)."""
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    s = {"module.emb.weight": r(vocab, dim), "module.last_ln.weight": r(dim), "module.last_ln.bias": r(dim),
         "module.classifier.weight": r(classes, dim), "module.classifier.bias": r(classes)}  # fmt: skip
    for i in range(depth):
        for p in ("q", "k", "v"):
            s[f"module.blocks.{i}.attn.{p}_m.weight"], s[f"module.blocks.{i}.attn.{p}_m.bias"] = (
                r(dim, dim),
                r(dim),
            )
            s[f"module.blocks.{i}.attn.{p}_ln.weight"], s[f"module.blocks.{i}.attn.{p}_ln.bias"] = (
                r(dim),
                r(dim),
            )
        s[f"module.blocks.{i}.attn.last_m.weight"], s[f"module.blocks.{i}.attn.last_m.bias"] = (
            r(dim, dim),
            r(dim),
        )
        s[f"module.blocks.{i}.attn.last_ln.weight"], s[f"module.blocks.{i}.attn.last_ln.bias"] = (
            r(dim),
            r(dim),
        )
        s[f"module.blocks.{i}.mlp.fc1.weight"], s[f"module.blocks.{i}.mlp.fc1.bias"] = (
            r(hidden, dim),
            r(hidden),
        )
        s[f"module.blocks.{i}.mlp.ln1.weight"], s[f"module.blocks.{i}.mlp.ln1.bias"] = r(hidden), r(hidden)
        s[f"module.blocks.{i}.mlp.fc2.weight"], s[f"module.blocks.{i}.mlp.fc2.bias"] = r(dim, hidden), r(dim)
        s[f"module.blocks.{i}.mlp.ln2.weight"], s[f"module.blocks.{i}.mlp.ln2.bias"] = r(dim), r(dim)
        s[f"module.transforms.{i}.fc.weight"], s[f"module.transforms.{i}.fc.bias"] = r(dim, dim), r(dim)
        s[f"module.transforms.{i}.ln.weight"], s[f"module.transforms.{i}.ln.bias"] = r(dim), r(dim)
    return s


def test_official_checkpoint_loads_every_tensor(tmp_path):
    state = _official_state()
    cfg = official_config(state, num_heads=2, time_steps=2)
    assert (cfg.vocab_size, cfg.dim, cfg.depth, cfg.mlp_ratio, cfg.num_labels) == (30, 16, 2, 4.0, 3)
    path = tmp_path / "official.pt"
    torch.save(state, path)
    m = load_official_checkpoint(path, num_heads=2, time_steps=2)
    assert torch.equal(m.blocks[1].attn.proj.linear.weight, state["module.blocks.1.attn.last_m.weight"])
    assert torch.equal(m.blocks[0].mlp.fc1.norm.norm.bias, state["module.blocks.0.mlp.ln1.bias"])
    assert torch.equal(m.distill_heads[1].ln.weight, state["module.transforms.1.ln.weight"])
    assert torch.equal(m.final_norm.weight, state["module.last_ln.weight"])
    ids = torch.randint(1, 30, (2, 5))
    assert m(ids).logits.shape == (2, 3)
    with pytest.raises(ModelLoadError, match="unknown key"):
        official_key_map({"module.encoder.layer.0.weight": torch.zeros(1)})
    with pytest.raises(ModelLoadError, match="does not fit"):
        load_official_checkpoint(
            state, SpikeBERT(SpikeBertConfig(vocab_size=30, dim=16, depth=3, num_heads=2, num_labels=3))
        )
