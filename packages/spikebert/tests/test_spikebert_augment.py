"""Stage-2 data augmentation (Tang et al.'s masking / POS-guided replacement / n-gram sampling, the official
``train_augment.txt`` path): labels kept, seeded, grows by the factor, each rule does what it says, presets."""

from __future__ import annotations

import json

import pytest
from spikebert.augment import WordClasses, augment_sentences
from spikebert.config import AugmentConfig

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

    swapped, _ = augment_sentences(TEXTS, LABELS, AugmentConfig(factor=2, p_mask=0.0, p_pos=1.0, p_ngram=0.0))
    classes = WordClasses([s.split() for s in TEXTS], 32)
    for v, s in zip(swapped[n:], TEXTS):
        a, b = v.split(), s.split()
        assert len(a) == len(b) and all(classes.class_of[x] == classes.class_of[z] for x, z in zip(a, b))
    assert any(v != s for v, s in zip(swapped[n:], TEXTS))

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
