"""Stage-2 data augmentation (Tang et al.'s masking / POS-guided replacement / n-gram sampling, the official
``train_augment.txt`` path): labels kept, seeded, grows by the factor, each rule does what it says, presets."""

from __future__ import annotations

import dataclasses
import json
import types

import pytest
from spikebert.augment import WordClasses, augment_sentences
from spikebert.config import AugmentConfig
from spikebert.tagger import brill_tagger

from tenfold_core.cli import load_preset
from tenfold_core.data import make_sentiment_data
from tenfold_core.data.synthetic import NEGATIVE, POSITIVE

DATA = make_sentiment_data(120, 10, 10, seed=3, but_prob=0.0)
TEXTS, LABELS = DATA.train.texts, DATA.train.labels


def test_augmented_set_keeps_labels_and_grows_by_the_factor():
    t, y = augment_sentences(TEXTS, LABELS, AugmentConfig(factor=5, seed=1))
    n = len(TEXTS)
    assert len(t) == len(y) == 5 * n
    assert t[:n] == TEXTS and y[:n] == LABELS  # the originals come first, unchanged
    for i in range(n):  # variants of sentence i follow in order, each with sentence i's label
        variants = t[n + 4 * i : n + 4 * i + 4]
        assert y[n + 4 * i : n + 4 * i + 4] == [LABELS[i]] * 4
        assert all(v != TEXTS[i] for v in variants)  # redrawn when a variant repeats the original
    assert sum(v != TEXTS[i // 4] for i, v in enumerate(t[n:])) == 4 * n
    assert augment_sentences(TEXTS, LABELS, AugmentConfig(factor=1)) == (TEXTS, LABELS)  # off


def test_augmentation_is_seeded():
    a = augment_sentences(TEXTS, LABELS, AugmentConfig(factor=3, seed=7))
    b = augment_sentences(TEXTS, LABELS, AugmentConfig(factor=3, seed=7))
    c = augment_sentences(TEXTS, LABELS, AugmentConfig(factor=3, seed=8))
    assert a == b
    assert a[0][len(TEXTS) :] != c[0][len(TEXTS) :]
    # a sentence's masks and cuts do not depend on the rest of the data (its own random stream)
    mask_only = AugmentConfig(factor=3, seed=7, p_pos=0.0)
    d = augment_sentences(TEXTS[:10], LABELS[:10], mask_only)
    assert d[0][10:14] == augment_sentences(TEXTS, LABELS, mask_only)[0][len(TEXTS) : len(TEXTS) + 4]


def test_each_rule():
    n = len(TEXTS)
    masked, _ = augment_sentences(TEXTS, LABELS, AugmentConfig(factor=2, p_mask=1.0, p_pos=0.0, p_ngram=0.0))
    assert all(
        set(v.split()) == {"[MASK]"} and len(v.split()) == len(s.split()) for v, s in zip(masked[n:], TEXTS)
    )

    swap = AugmentConfig(factor=2, p_mask=0.0, p_pos=1.0, p_ngram=0.0, tagger="induced")
    swapped, _ = augment_sentences(TEXTS, LABELS, swap)
    classes = WordClasses([s.split() for s in TEXTS], 32)
    for v, s in zip(swapped[n:], TEXTS):
        a, b = v.split(), s.split()
        assert len(a) == len(b) and all(classes.class_of[x] == classes.class_of[z] for x, z in zip(a, b))
    assert any(v != s for v, s in zip(swapped[n:], TEXTS))

    # the default for words: a word is swapped for one seen with the Penn tag it has in its sentence
    tagged = [brill_tagger().tag(s.split()) for s in TEXTS]
    seen = {(w, t) for s, ts in zip(TEXTS, tagged) for w, t in zip(s.split(), ts)}
    swapped, _ = augment_sentences(TEXTS, LABELS, dataclasses.replace(swap, tagger="auto"))
    changed = 0
    for v, s, ts in zip(swapped[n:], TEXTS, tagged):
        a, b = v.split(), s.split()
        assert len(a) == len(b) and all((x, t) in seen for x, t in zip(a, ts))
        changed += sum(x != z for x, z in zip(a, b))
    assert changed > n  # swaps happen (another word of the tag, where the tag has one)

    cut, _ = augment_sentences(
        TEXTS, LABELS, AugmentConfig(factor=2, p_mask=0.0, p_pos=0.0, p_ngram=1.0, max_ngram=2)
    )
    for v, s in zip(cut[n:], TEXTS):
        a = v.split()
        assert 1 <= len(a) <= 2 and f" {v} " in f" {s} "  # a contiguous n-gram of the sentence


def test_induced_classes_behave_like_parts_of_speech():
    texts = make_sentiment_data(1000, 10, 10, seed=3, but_prob=0.0).train.texts
    c = WordClasses([s.split() for s in texts]).class_of  # default: up to 32 classes, similar ones merged
    adjectives, nouns = (
        {c[w] for w in POSITIVE + NEGATIVE},
        {c[w] for w in ("movie", "film", "plot", "story")},
    )
    verbs = {c[w] for w in ("was", "is", "felt", "seemed", "looked")}
    assert len(adjectives) == len(nouns) == len(verbs) == 1
    assert len(adjectives | nouns | verbs | {c["the"], c["not"]}) == 5


def test_brill_tagger_penn_tags():
    tag = brill_tagger().tag
    assert tag("the actors were great but the plot is not good".split()) == [
        "DT", "NNS", "VBD", "JJ", "CC", "DT", "NN", "VBZ", "RB", "JJ",
    ]  # fmt: skip
    assert (
        tag("this plugin will time each test".split())[3] == "VB"
    )  # a contextual rule: NN -> VB after a modal
    assert tag("a dull film that never works".split())[3:] == ["WDT", "RB", "VBZ"]
    # unknown words: number, suffix rules
    assert tag("it grossed 42 million".split())[2] == "CD"
    assert tag("the flimsiness is unwatchable".split()) == ["DT", "NN", "VBZ", "JJ"]
    # a known word moves only within its ambiguity class: "JJ -> VBD before a determiner" leaves "overall" an adjective
    assert tag("overall the script looked dull".split())[0] == "JJ"
    assert tag([]) == []


def test_the_author_script_switches():
    n = len(TEXTS)
    script = AugmentConfig(
        factor=6, keep_original=False, redraw=False, replace="types", labels="random", seed=4
    )
    t, y = augment_sentences(TEXTS, LABELS, script)
    assert n < len(t) < 6 * n and len(t) == len(y)  # 6 draws per sentence, repeats dropped
    assert t[:n] != TEXTS and set(y) == {0, 1}
    # every unit masked: one distinct variant per sentence, and no original kept
    all_masked = dataclasses.replace(script, p_mask=1.0, p_pos=0.0, p_ngram=0.0)
    t, _ = augment_sentences(TEXTS, LABELS, all_masked)
    assert len(t) == n and all(set(v.split()) == {"[MASK]"} for v in t)
    assert len(augment_sentences(TEXTS, LABELS, dataclasses.replace(all_masked, redraw=True))[0]) == 6 * n
    # with every source label 1, "source" keeps 1 and "random" draws from the labels present (only 1 here)
    ones = [1] * n
    assert set(augment_sentences(TEXTS, ones, dataclasses.replace(script, labels="source"))[1]) == {1}
    mixed = augment_sentences(TEXTS, LABELS, dataclasses.replace(script, labels="random"))[1]
    agree = sum(a == b for a, b in zip(mixed, [LABELS[i] for i in range(n) for _ in range(6)]))
    assert agree < 0.9 * len(mixed)  # not the source labels

    # replace: unigram favours frequent words, types draws each distinct word of a class alike
    words = [["good"]] * 95 + [["bad"], ["fine"], ["poor"], ["nice"], ["okay"]]
    import random

    from spikebert.augment import TagClasses

    for mode, lo, hi in (("unigram", 0.0, 0.05), ("types", 0.1, 0.3)):
        cl = TagClasses(words, [["JJ"]] * len(words), mode)
        rng = random.Random(0)
        draws = [cl.draw("JJ", "bad", rng) for _ in range(2000)]
        share = sum(d == "okay" for d in draws) / len(draws)
        assert lo <= share <= hi, (mode, share)  # unigram: 1/99 of draws (never "bad" itself); types: 1/6


def test_nltk_tagger_without_its_data_is_one_line(monkeypatch):
    import spikebert.augment as aug

    from tenfold_core.errors import ConfigError, MissingExtra

    def pos_tag(_words):
        raise LookupError("Resource averaged_perceptron_tagger_eng not found")

    monkeypatch.setattr(aug, "require", lambda *a, **k: types.SimpleNamespace(pos_tag=pos_tag))
    with pytest.raises(MissingExtra, match="averaged_perceptron_tagger_eng") as e:
        augment_sentences(TEXTS, LABELS, AugmentConfig(factor=2, tagger="nltk"))
    assert "\n" not in str(e.value)
    monkeypatch.setattr(
        aug, "require", lambda *a, **k: types.SimpleNamespace(pos_tag=lambda w: [(x, "NN") for x in w])
    )
    t, _ = augment_sentences(TEXTS, LABELS, AugmentConfig(factor=2, tagger="nltk", p_pos=1.0, p_mask=0.0))
    assert len(t) == 2 * len(TEXTS)
    with pytest.raises(ConfigError, match="data.augment.tagger brill"):
        augment_sentences(["好看"], [1], AugmentConfig(factor=2, tagger="brill", unit="char"))


def test_character_units_for_chinese():
    texts, labels = ["这部电影很好看", "服务太差了", "味道不错", "送餐很慢"], [1, 0, 1, 0]
    t, y = augment_sentences(texts, labels, AugmentConfig(factor=3, unit="char", p_mask=0.3, seed=2))
    assert len(t) == 12 and y[4:] == [1, 1, 0, 0, 1, 1, 0, 0]
    assert any("[MASK]" in v for v in t[4:]) and all(" " not in v for v in t[4:])
    from spikebert.data import char_level_tokenizer

    tok = char_level_tokenizer(texts)
    ids = tok("好[MASK]看")["input_ids"]
    assert tok.mask_token_id in ids and len(ids) == 5  # [CLS] 好 [MASK] 看 [SEP]: the mask stays one token


def test_config_validation():
    for bad in (
        {"factor": 0},
        {"factor": 10**6},
        {"p_mask": 1.5},
        {"p_mask": 0.6, "p_pos": 0.6},
        {"max_ngram": 0},
    ):
        with pytest.raises(ValueError, match="data.augment"):
            AugmentConfig(**bad)


def test_presets_paper_and_official_augment_and_official_decays_everything():
    for preset in ("paper", "official"):
        assert load_preset("spikebert", preset, "distill-task").data.augment.factor > 1
    paper = load_preset("spikebert", "paper", "distill-task").data.augment
    official = load_preset("spikebert", "official", "distill-task").data.augment
    assert (paper.tagger, paper.replace, paper.keep_original, paper.redraw, paper.labels) == (
        "auto", "unigram", True, True, "source",
    )  # fmt: skip
    assert (official.tagger, official.replace, official.keep_original, official.redraw, official.labels) == (
        "nltk", "types", False, False, "random",
    )  # fmt: skip
    for preset in ("demo", "tiny"):
        assert load_preset("spikebert", preset, "distill-task").data.augment.factor == 1
    for verb in ("finetune-teacher", "distill-pretrain", "distill-task", "train-direct"):
        assert load_preset("spikebert", "official", verb).optim.decay_all, verb
        assert not load_preset("spikebert", "paper", verb).optim.decay_all, verb


def test_distill_task_trains_on_the_augmented_set(tmp_path):
    from spikebert.train import distill_task

    cfg = load_preset(
        "spikebert", "tiny", "distill-task", {"train.out_dir": str(tmp_path), "data.augment.factor": 3}
    )
    m = distill_task(cfg)
    assert m["train_sentences"] == 64 and m["train_sentences_augmented"] == 192
    lines = (tmp_path / "train_augment.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 192 and all(len(x.split("\t")) == 2 and x.split("\t")[1] in "01" for x in lines)
    rc = json.loads((tmp_path / "config.json").read_text())
    assert rc["data"]["augment"]["factor"] == 3
