import math

import numpy as np
import pytest
import torch

from tenfold_core import metrics as M


def test_accuracy_and_logits():
    assert M.accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == 0.5
    logits = torch.tensor([[0.1, 0.9], [2.0, -1.0], [0.0, 1.0]])
    assert M.accuracy(logits, [1, 0, 0]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="differ in length"):
        M.accuracy([1, 0], [1])


def test_macro_f1_hand_computed():
    # class 0: tp=1 fp=1 fn=1 -> f1=0.5 ; class 1: tp=2 fp=1 fn=1 -> f1=2/3
    preds, labels = [0, 0, 1, 1, 1], [0, 1, 1, 1, 0]
    assert M.macro_f1(preds, labels) == pytest.approx((0.5 + 2 / 3) / 2)


def test_mcc_binary_hand_computed_and_degenerate():
    # tp=2 tn=1 fp=1 fn=1 -> (2*1-1*1)/sqrt(3*3*2*2) = 1/6
    preds, labels = [1, 1, 1, 0, 0], [1, 1, 0, 1, 0]
    assert M.mcc(preds, labels) == pytest.approx(1 / 6)
    assert M.mcc([1, 1, 1], [1, 1, 1]) == 0.0
    assert M.mcc([0, 1, 2], [0, 1, 2]) == pytest.approx(1.0)


def test_dice_iou_at_threshold():
    target = np.zeros((4, 4))
    target[:2] = 1  # 8 pixels
    half = np.zeros((4, 4))
    half[:1] = 1  # 4 predicted, all inside
    d, i = M.dice_iou_per_image(half, target)
    assert float(d) == pytest.approx(2 * 4 / (4 + 8)) and float(i) == pytest.approx(4 / 8)
    assert M.dice(target, target) == 1.0 and M.iou(target, target) == 1.0
    assert M.dice(np.zeros((4, 4)), target) == 0.0
    assert M.dice(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0  # both empty: correct "nothing"
    with pytest.raises(ValueError):
        M.dice(np.zeros((3, 3)), target)


def test_max_dice_over_thresholds():
    target = torch.zeros(1, 4, 4)
    target[0, :2] = 1
    prob = torch.where(target > 0, torch.tensor(0.3), torch.tensor(0.1))  # 0.5 misses all; 0.2 is perfect
    rep = M.segmentation_report(prob, target)
    assert rep["dice"] == 0.0
    assert rep["max_dice"] == pytest.approx(1.0) and rep["max_iou"] == pytest.approx(1.0)
    thr, d, _ = M.dice_iou_curves(prob, target)
    assert len(thr) == 256 and d.max() >= d[128]


def test_perplexities_hand_computed():
    nll, n = [math.log(2) * 2, math.log(8) * 1], [2, 1]
    assert M.corpus_perplexity(nll, n) == pytest.approx(math.exp((2 * math.log(2) + math.log(8)) / 3))
    assert M.mean_sentence_perplexity(nll, n) == pytest.approx((2 + 8) / 2)


def test_sequence_nll_uniform_logits():
    logits = torch.zeros(2, 5, 10)
    labels = torch.randint(0, 10, (2, 5))
    labels[1, 3:] = -100
    nll, n = M.sequence_nll(logits, labels)
    assert n.tolist() == [4, 2]
    assert nll[0].item() == pytest.approx(4 * math.log(10), rel=1e-5)
    assert M.corpus_perplexity(nll.tolist(), n.tolist()) == pytest.approx(10, rel=1e-5)


def test_distinct_n():
    assert M.distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert M.distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert M.distinct_n([["x", "y"], ["x", "z"]], 1) == pytest.approx(3 / 4)
    assert M.distinct_n([], 2) == 0.0


def test_bleu():
    assert M.corpus_bleu_n(["the cat sat on the mat"], ["the cat sat on the mat"], 4) == pytest.approx(1.0)
    # unigram precision 3/4, one reference of equal length -> BLEU-1 = 0.75
    assert M.corpus_bleu_n(["a b c d"], ["a b c e"], 1) == pytest.approx(0.75)
    assert M.corpus_bleu_n(["x y z w"], [["a b c d", "x y q w"]], 1) == pytest.approx(0.75)
    rep = M.generation_report(["a b c d"], ["a b c e"])
    assert rep["bleu_1"] > rep["bleu_2"] > rep["bleu_4"] and rep["dist_1"] == 1.0
    with pytest.raises(ValueError):
        M.corpus_bleu_n(["a"], ["a", "b"], 1)


def test_robustness_summary_hand_computed():
    recs = (
        [{"status": "skipped", "queries": 1}] * 2
        + [{"status": "succeeded", "queries": 10, "perturbed_words": 1, "num_words": 10}] * 5
        + [{"status": "failed", "queries": 40}] * 3
    )
    s = M.robustness_summary(recs)
    assert s["clean_acc"] == pytest.approx(80.0)
    assert s["aua"] == pytest.approx(30.0)
    assert s["success_rate"] == pytest.approx(62.5)
    assert s["mean_queries"] == pytest.approx((5 * 10 + 3 * 40) / 8)
    assert s["perturbed_word_pct"] == pytest.approx(10.0)
    with pytest.raises(ValueError, match="status"):
        M.robustness_summary([{"status": "oops"}])


def test_watermark_metrics():
    preds = [1, 1, 0, 1, 1]
    labels = [0, 0, 0, 1, 1]  # only the first three count (true label != target 1)
    assert M.wesr(preds, labels, target_label=1) == pytest.approx(2 / 3)
    assert M.false_trigger_rate([0, 0, 1], [0, 0, 0], 1) == pytest.approx(1 / 3)
    assert math.isnan(M.wesr([1], [1], 1))
