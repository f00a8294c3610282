"""The attack harness on a tiny victim trained in seconds: it works, respects every constraint, counts queries
exactly, resumes after a kill, and its pieces (victim, synonym sources, similarity, defense wrappers) behave."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tenfold_core.attack import (
    STOPWORDS,
    AttackProtocol,
    DictSynonyms,
    EmbeddingSynonyms,
    EnsembleVictim,
    EOTVictim,
    GreedyWordSwapAttack,
    MaskedLMSynonyms,
    SimilarityConstraint,
    Victim,
    WordText,
    WordVectorMeanEncoder,
    random_mask_perturbation,
    read_records,
    run_attack,
    sample_examples,
    summarize,
    summary_table,
)
from tenfold_core.attack.toy import train_toy_victim
from tenfold_core.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def toy():
    model, tok, data = train_toy_victim(0)
    victim = Victim(model, tok)
    syn = EmbeddingSynonyms.from_victim(victim, k=50)
    enc = WordVectorMeanEncoder.from_synonyms(syn)
    return model, tok, data, victim, syn, enc


def _check_constraints(rec, syn, proto, victim):
    orig, pert = WordText.from_text(rec["original"]), WordText.from_text(rec["perturbed"])
    assert len(orig) == len(pert)
    changed = [i for i in range(len(orig)) if orig.words[i] != pert.words[i]]
    assert changed == rec["perturbed_indices"] and len(changed) == rec["perturbed_words"] >= 1
    assert len(changed) <= min(math.ceil(r * len(orig)) for r in proto.max_rates())  # TextAttack rounds up
    for i in changed:
        assert orig.words[i].lower() not in STOPWORDS  # stop words untouched
        assert pert.words[i].lower() in syn.candidates(orig.words[i])  # only candidates from the source
    assert rec["queries"] <= proto.budget(len(orig))
    victim.clear_cache()
    assert (
        int(victim.predict([rec["perturbed"]])[0])
        != rec["label"]
        == int(victim.predict([rec["original"]])[0])
    )


@pytest.mark.parametrize("recipe", ["textfooler", "pwws", "textbugger"])
def test_attack_flips_predictions_within_every_constraint(toy, recipe):
    model, tok, data, victim, syn, enc = toy
    proto = AttackProtocol(recipe, n_examples=25)
    attack = GreedyWordSwapAttack(victim, syn, proto, enc)
    recs = run_attack(attack, data.test.texts, data.test.labels)
    s = summarize(recs)
    assert s["n"] == 25 and s["clean_acc"] > 50  # the victim learned something
    assert s["succeeded"] >= 1  # at least one prediction flips
    for r in recs:
        assert r["queries"] <= proto.budget(r["num_words"])
        if r["status"] == "succeeded":
            _check_constraints(r, syn, proto, victim)
        elif r["status"] == "skipped":
            assert r["original_pred"] != r["label"]


def test_similarity_constraint_is_enforced(toy):
    model, tok, data, victim, syn, enc = toy
    # a 3-word window makes the short synthetic texts subject to the constraint
    proto = AttackProtocol("pwws", n_examples=20, similarity_threshold=0.9, similarity_window=3)
    recs = run_attack(GreedyWordSwapAttack(victim, syn, proto, enc), data.test.texts, data.test.labels)
    con = SimilarityConstraint(enc, 0.9, "angular", 3, False, True)
    n_ok = 0
    for r in (r for r in recs if r["status"] == "succeeded"):
        orig = WordText.from_text(r["original"])
        cur = orig
        for i in r["perturbed_indices"]:  # replay the substitutions; each step must pass vs the previous text
            nxt = cur.replace(i, WordText.from_text(r["perturbed"]).words[i])
            s1 = con.scores(cur, [nxt], i)[0]
            s2 = con.scores(nxt, [cur], i)[0]
            n_ok += 1
            assert max(s1, s2) >= 0.9 - 1e-6
            cur = nxt
    impossible = AttackProtocol("pwws", n_examples=20, similarity_threshold=1.01, similarity_window=3)
    recs2 = run_attack(GreedyWordSwapAttack(victim, syn, impossible, enc), data.test.texts, data.test.labels)
    s2 = summarize(recs2)
    assert s2["succeeded"] == 0 and s2["aua"] == s2["clean_acc"]


def test_bert_attack_with_a_local_masked_lm(toy):
    from transformers import BertForMaskedLM

    from tenfold_core.models import tiny_bert_config

    model, tok, data, victim, syn, enc = toy
    torch.manual_seed(0)
    mlm = BertForMaskedLM(tiny_bert_config(vocab_size=len(tok), hidden=32, layers=1, heads=2, max_len=40))
    source = MaskedLMSynonyms(mlm, tok, k=50)
    text = WordText.from_text("the movie was really good")
    cands = source.candidates_in_context(text, 4)
    assert 0 < len(cands) <= 50 and "good" not in cands
    assert all(c not in tok.all_special_tokens for c in cands)
    proto = AttackProtocol("bert-attack", n_examples=15)
    recs = run_attack(GreedyWordSwapAttack(victim, source, proto, enc), data.test.texts, data.test.labels)
    for r in recs:
        assert r["queries"] <= proto.budget(r["num_words"])
        if r["status"] == "succeeded":
            assert r["perturbed_words"] <= math.ceil(0.3 * r["num_words"])
            assert all(o.lower() not in STOPWORDS for o, _ in r["substitutions"])


def test_budget_stops_at_exactly_factor_times_words():
    calls = []

    def constant(texts):  # ignores its input: the attack can never succeed
        calls.append(len(texts))
        return torch.tensor([[0.1, 0.9]] * len(texts))

    words = [f"w{i}" for i in range(20)]
    table = DictSynonyms({w: [f"{w}x{j}" for j in range(60)] for w in words}, k=60)
    # similarity threshold 0: every candidate passes (the 20-word text is longer than the 15-word window)
    proto = AttackProtocol(
        "textfooler", k=60, max_modification_rate=1.0, query_factor=50, similarity_threshold=0.0
    )
    attack = GreedyWordSwapAttack(
        Victim(constant), table, proto, encoder=WordVectorMeanEncoder(np.eye(2), ["a", "b"])
    )
    r5 = attack.attack(" ".join(words[:5]), 1)
    r20 = attack.attack(" ".join(words), 1)
    assert r5["status"] == r20["status"] == "failed"
    assert r5["queries"] == 50 * 5 == r5["query_budget"]
    assert r20["queries"] == 50 * 20 == r20["query_budget"]
    assert r5["queries"] != r20["queries"]
    recs = [r5, r20, attack.attack("w1 w2 w3 w4 w5", 0)]
    s = summarize(recs)
    assert s["aua"] == pytest.approx(s["clean_acc"])  # a model that ignores its input: AUA = Clean
    assert recs[2]["status"] == "skipped"


def test_keyword_classifier_is_broken_only_when_the_table_allows():
    def keyword(texts):  # positive iff "good" occurs
        return torch.tensor([[0.0, 5.0] if "good" in t.split() else [5.0, 0.0] for t in texts])

    proto = AttackProtocol("textfooler", max_modification_rate=1.0)
    enc = WordVectorMeanEncoder(np.eye(2), ["a", "b"])
    ok = GreedyWordSwapAttack(Victim(keyword), DictSynonyms({"good": ["fine", "decent"]}), proto, enc)
    r = ok.attack("the movie was good today", 1)
    assert (
        r["status"] == "succeeded" and r["perturbed"] == "the movie was decent today"
    )  # first by text, as TA
    assert r["substitutions"] == [["good", "decent"]]
    blocked = GreedyWordSwapAttack(Victim(keyword), DictSynonyms({"movie": ["film"]}), proto, enc)
    assert blocked.attack("the movie was good today", 1)["status"] == "failed"


def test_resume_after_a_kill_gives_the_same_table(toy, tmp_path):
    model, tok, data, victim, syn, enc = toy
    proto = AttackProtocol("textfooler", n_examples=16)
    idx = sample_examples(data.test.texts, 16, 5, 42)
    ref = run_attack(GreedyWordSwapAttack(Victim(model, tok), syn, proto, enc), data.test.texts, data.test.labels,
                     out=tmp_path / "ref.jsonl")  # fmt: skip
    out = tmp_path / "run.jsonl"
    part = run_attack(GreedyWordSwapAttack(Victim(model, tok), syn, proto, enc), data.test.texts, data.test.labels,
                      out=out, max_examples=6)  # fmt: skip
    assert len(part) == 6 and len(read_records(out)) == 6
    with open(out, "a", encoding="utf-8") as f:
        f.write('{"index": 99, "status": "fail')  # killed mid-write
    seen = []
    final = run_attack(GreedyWordSwapAttack(Victim(model, tok), syn, proto, enc), data.test.texts, data.test.labels,
                       out=out, progress=lambda i, n, r: seen.append(r["index"]))  # fmt: skip
    assert len(seen) == 10  # only the missing examples were attacked
    on_disk = read_records(out)
    assert [r["index"] for r in on_disk] == idx
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in final]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in ref]
    assert summary_table({"tf": on_disk}) == summary_table({"tf": read_records(tmp_path / "ref.jsonl")})
    with pytest.raises(ConfigError, match="another protocol"):
        run_attack(GreedyWordSwapAttack(victim, syn, AttackProtocol("pwws", n_examples=16), enc),
                   data.test.texts, data.test.labels, out=out)  # fmt: skip


def test_victim_batches_caches_and_counts(toy):
    model, tok, data, victim, syn, enc = toy
    v = Victim(model, tok, batch_size=4)
    texts = data.test.texts[:10]
    p = v.probs(texts + texts[:3])
    assert p.shape == (13, 2) and np.allclose(p.sum(1), 1)
    assert v.num_queries == 13 and v.num_forward == 10
    with torch.no_grad():
        enc_in = tok(texts, padding=True, return_tensors="pt")
        direct = (
            model(**{k: x for k, x in enc_in.items() if k != "token_type_ids"}).logits.softmax(-1).numpy()
        )
    assert np.allclose(p[:10], direct, atol=1e-5)
    v.clear_cache()
    v.probs(texts[:2])
    assert v.num_forward == 12
    f = Victim(lambda ts: [[2.0, 0.0] for _ in ts])  # a plain function returning logits as lists
    assert np.allclose(f.probs(["a"]), [[math.e**2 / (math.e**2 + 1), 1 / (math.e**2 + 1)]])
    g = Victim(lambda ts: np.array([[0.25, 0.75]] * len(ts)))  # probabilities are kept as they are
    assert np.allclose(g.probs(["a", "b"]), [[0.25, 0.75]] * 2)
    with pytest.raises(ConfigError, match="tokenizer"):
        Victim(model)


def test_ensemble_and_eot_wrappers():
    def base(texts):  # class 1 iff the text has no [MASK]
        return torch.tensor([[0.0, 10.0] if "[MASK]" not in t else [10.0, 0.0] for t in texts])

    ens = EnsembleVictim(base, random_mask_perturbation(0.5), n=200, mode="vote", seed=0)
    p = ens.probs(["a b c d e f"])[0]
    assert p[1] == pytest.approx(0.5**6, abs=0.03)  # P(no token masked)
    assert np.array_equal(ens.probs(["a b c d e f"]), p[None])  # same query, same answer
    assert ens.num_queries == 2 and ens.num_forward == 1
    avg = EnsembleVictim(base, random_mask_perturbation(0.0), n=5, mode="logits")
    assert avg.probs(["x y"])[0][1] > 0.99

    gen = torch.Generator().manual_seed(0)

    def stochastic(texts):
        z = torch.rand(len(texts), generator=gen)
        return torch.stack([z, 1 - z], 1)  # probabilities with mean (0.5, 0.5)

    eot = EOTVictim(stochastic, n=400)
    assert eot.probs(["t"])[0][0] == pytest.approx(0.5, abs=0.05)
    with pytest.raises(ConfigError):
        EnsembleVictim(base, random_mask_perturbation(), mode="mean")


def test_embedding_synonyms_from_files_and_cache(tmp_path, monkeypatch):
    m = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [-1, 0]], dtype=np.float32)
    words = ["good", "great", "bad", "awful", "meh"]
    glove = tmp_path / "vec.txt"
    glove.write_text("".join(f"{w} {a} {b}\n" for w, (a, b) in zip(words, m)))
    s = EmbeddingSynonyms.from_vectors_file(glove, k=2, cache_dir=tmp_path / "c")
    assert s.candidates("good") == ["great", "awful"] and s.candidates("Bad") == ["awful", "great"]
    assert s.candidates("unknown") == []
    w2v = tmp_path / "w2v.txt"
    w2v.write_text("5 2\n" + glove.read_text())
    assert EmbeddingSynonyms.from_vectors_file(w2v, k=1, cache=False).candidates("bad") == ["awful"]
    np.save(tmp_path / "m.npy", m)
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    s2 = EmbeddingSynonyms.from_npy(tmp_path / "m.npy", tmp_path / "vocab.txt", k=2, cache_dir=tmp_path / "c")
    assert s2.candidates("good") == ["great", "awful"] and s2.cache_path.is_file()
    EmbeddingSynonyms(m, words, k=2, cache_dir=tmp_path / "c")  # a matrix-keyed table

    def boom(self):
        raise AssertionError("the cached table should have been used")

    monkeypatch.setattr(EmbeddingSynonyms, "_compute", boom)
    # files unchanged: their digest finds the cached table
    again = EmbeddingSynonyms.from_npy(
        tmp_path / "m.npy", tmp_path / "vocab.txt", k=2, cache_dir=tmp_path / "c"
    )
    assert again.cache_path == s2.cache_path and again.candidates("bad") == ["awful", "great"]
    assert (
        EmbeddingSynonyms.from_vectors_file(glove, k=2, cache_dir=tmp_path / "c").cache_path == s.cache_path
    )
    assert EmbeddingSynonyms(m, words, k=2, cache_dir=tmp_path / "c").candidates("good") == ["great", "awful"]
    assert EmbeddingSynonyms(m, words, k=2, min_sim=0.5, cache_dir=tmp_path / "c").candidates("good") == [
        "great"
    ]
    monkeypatch.undo()
    glove.write_text(glove.read_text() + "fine 0.95 0.05\n")  # another file: another key
    assert (
        EmbeddingSynonyms.from_vectors_file(glove, k=2, cache_dir=tmp_path / "c").cache_path != s.cache_path
    )
    bad = tmp_path / "bad.txt"
    bad.write_text("good 1 0\nbad 1\n")
    with pytest.raises(DataError, match="bad.txt line 2"):
        EmbeddingSynonyms.from_vectors_file(bad)


def test_victim_embedding_source_has_only_whole_words(toy):
    model, tok, data, victim, syn, enc = toy
    assert all(w.isalpha() for w in syn.words) and "[PAD]" not in syn.words
    assert len(syn.candidates("good")) == min(50, len(syn.words) - 1)
    row = syn.word2index["good"]
    m = torch.nn.functional.normalize(torch.from_numpy(syn.matrix), dim=1)
    sims = (m @ m[row]).numpy()
    sims[row] = -np.inf
    assert syn.candidates("good")[0] == syn.words[int(sims.argmax())]


def test_many_examples_in_flight_give_the_same_records(toy):
    model, tok, data, victim, syn, enc = toy
    proto = AttackProtocol("textfooler", n_examples=24)
    seq = run_attack(
        GreedyWordSwapAttack(Victim(model, tok), syn, proto, enc), data.test.texts, data.test.labels
    )
    v = Victim(model, tok)
    batched = run_attack(
        GreedyWordSwapAttack(v, syn, proto, enc), data.test.texts, data.test.labels, batch_examples=8
    )
    assert [r["index"] for r in batched] == [r["index"] for r in seq]
    key = ("status", "perturbed", "queries", "queries_at_result")
    same = sum([a[k] for k in key] == [b[k] for k in key] for a, b in zip(seq, batched))
    assert same >= 22  # identical up to floating-point ties between differently padded batches
    assert v.num_queries == sum(r["queries"] for r in batched)  # per-example counts add up to the victim's
    for r in batched:
        assert r["queries"] <= proto.budget(r["num_words"])


def test_text_without_words_is_classified_not_attacked():
    attack = GreedyWordSwapAttack(
        Victim(lambda ts: torch.tensor([[3.0, 0.0]] * len(ts))), DictSynonyms({}), AttackProtocol(),
        WordVectorMeanEncoder(np.eye(2), ["a", "b"]),
    )  # fmt: skip
    r = attack.attack("?!", 0)
    assert (r["status"], r["queries"], r["num_words"]) == ("failed", 1, 0)


def test_victim_embedding_source_on_a_bpe_style_vocabulary():
    class FakeVictim(Victim):
        def __init__(self):
            pass

        def input_embeddings(self):
            toks = ["<s>", "Ġgood", "Ġgreat", "ing", "Ġbad", "Ġ123", "ly"]
            return np.random.default_rng(0).normal(size=(len(toks), 4)).astype(np.float32), toks

        tokenizer = type("T", (), {"all_special_tokens": ["<s>"]})()

    syn = EmbeddingSynonyms.from_victim(FakeVictim(), k=5, cache=False)
    assert syn.words == ["good", "great", "bad"]  # word-initial alphabetic tokens only


def test_masked_lm_candidates_for_a_multi_piece_word():
    from transformers import BertForMaskedLM, BertTokenizerFast

    from tenfold_core.models import tiny_bert_config

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "was", "good", "great", "un", "re",
             "##believ", "##view", "##able", "##ed"]  # fmt: skip
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)})
    torch.manual_seed(0)
    mlm = BertForMaskedLM(tiny_bert_config(vocab_size=len(vocab), hidden=16, layers=1, heads=2, max_len=32))
    src = MaskedLMSynonyms(mlm, tok, k=6)
    text = WordText.from_text("the movie was unbelievable")
    assert tok.tokenize(text.text)[3:] == ["un", "##believ", "##able"]
    cands = src.candidates_in_context(text, 3)
    assert 0 < len(cands) <= 6 and "unbelievable" not in cands
    whole = {"the", "movie", "was", "good", "great", "un", "re"}
    pieces = {"believ", "view", "able", "ed"}
    for c in cands:  # one whole-word token followed by two '##' pieces
        assert any(c.startswith(w) and c[len(w) :] and _splits(c[len(w) :], pieces, 2) for w in whole), c
    single = src.candidates_in_context(text, 1)  # "movie": one token, whole-word candidates only
    assert single and set(single) <= whole - {"movie"}


def _splits(rest: str, pieces: set, n: int) -> bool:
    if n == 0:
        return rest == ""
    return any(rest.startswith(p) and _splits(rest[len(p) :], pieces, n - 1) for p in pieces)


def test_from_npy_drops_non_word_tokens(tmp_path):
    m = np.array([[1, 0], [0.99, 0.01], [0.98, 0.02], [0.97, 0.03], [0.9, 0.1], [0, 1]], dtype=np.float32)
    words = ["love", "?", "<unk>", "1999", "adore", "hate"]
    np.save(tmp_path / "m.npy", m)
    (tmp_path / "v.txt").write_text("\n".join(words) + "\n")
    s = EmbeddingSynonyms.from_npy(tmp_path / "m.npy", tmp_path / "v.txt", k=3, cache=False)
    assert s.candidates("love") == ["adore", "hate"]  # "?", "<unk>", "1999" are never candidates
    assert s.words == ["love", "adore", "hate"]
    raw = EmbeddingSynonyms.from_npy(
        tmp_path / "m.npy", tmp_path / "v.txt", k=3, cache=False, words_only=False
    )
    assert raw.candidates("love") == ["?", "<unk>", "1999"]  # the old behaviour, on request


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_blocked_topk_matches_brute_force(metric):
    rng = np.random.default_rng(0)
    m = rng.normal(size=(300, 8)).astype(np.float32)
    words = [f"w{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(300)]
    s = EmbeddingSynonyms(m, words, k=5, metric=metric, cache=False)
    small = s._compute(max_block_elems=7 * 300)  # blocks of 7 rows
    if metric == "cosine":
        x = m / np.linalg.norm(m, axis=1, keepdims=True)
        score = x @ x.T
    else:
        score = -((m[:, None, :] - m[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(score, -np.inf)
    ref = np.argsort(-score, axis=1, kind="stable")[:, :5]
    assert np.array_equal(small[0], ref) and np.array_equal(s.neighbours, ref)
