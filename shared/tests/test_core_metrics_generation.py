"""ROUGE-L (LCS F-measure) against hand-computed values."""

import math

import pytest

from tenfold_core.metrics.generation import lcs_length, rouge_l, rouge_l_sentence


def test_lcs_length_hand_values():
    assert lcs_length("a b c d".split(), "b d e".split()) == 2
    assert lcs_length("a b c".split(), "c b a".split()) == 1
    assert lcs_length([], ["a"]) == 0
    assert lcs_length("x a y b z c".split(), "a b c".split()) == 3


def test_rouge_l_sentence_hand_values():
    # LCS "the cat on the mat" = 5 of 6 tokens on both sides: P = R = F = 5/6
    assert rouge_l_sentence("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    # LCS "b d" = 2; P = 2/4, R = 2/3; F1 = 2PR/(P+R) = 4/7
    assert rouge_l_sentence("a b c d", "b d e") == pytest.approx(4 / 7)
    # beta = 2: F = 5PR/(R+4P) = 5*(1/3)/(8/3) = 5/8
    assert rouge_l_sentence("a b c d", "b d e", beta=2.0) == pytest.approx(5 / 8)
    assert rouge_l_sentence("", "a b") == 0.0
    assert rouge_l_sentence("q r", "a b") == 0.0
    # tokenisation lower-cases and splits punctuation
    assert rouge_l_sentence("Hello, World!", "hello , world !") == pytest.approx(1.0)


def test_rouge_l_corpus_mean_and_alternatives():
    hyps = ["the cat sat on the mat", "a b c d"]
    refs = ["the cat is on the mat", "b d e"]
    assert rouge_l(hyps, refs) == pytest.approx((5 / 6 + 4 / 7) / 2)
    # alternatives: the best one counts
    assert rouge_l(["a b c d"], [["q", "a b c d"]]) == pytest.approx(1.0)
    assert rouge_l(["a b c d"], [[["b", "d", "e"], ["z"]]]) == pytest.approx(4 / 7)
    assert math.isnan(rouge_l([], []))
    with pytest.raises(ValueError):
        rouge_l(["a"], [])
