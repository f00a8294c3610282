"""S-measure and E-measure against values computed by hand on 4x4 masks."""

import numpy as np
import pytest
import torch

from tenfold_core.metrics import e_measure, e_measure_curve, max_e_measure, s_measure, s_measure_per_image

N = 16  # pixels in a 4x4 mask


def left_half():
    g = np.zeros((4, 4))
    g[:, :2] = 1
    return g


def top_half():
    p = np.zeros((4, 4))
    p[:2, :] = 1
    return p


def test_s_measure_perfect_and_empty():
    g = left_half()
    assert s_measure(g, g) == pytest.approx(1.0, abs=1e-6)
    z = np.zeros((4, 4))
    assert s_measure(z, z) == pytest.approx(1.0)
    assert s_measure(np.full((4, 4), 0.3), z) == pytest.approx(0.7)  # empty gt: 1 - mean(pred)
    assert s_measure(np.full((4, 4), 0.3), np.ones((4, 4))) == pytest.approx(0.3)  # full gt: mean(pred)


def test_s_measure_uniform_prediction_by_hand():
    # S_object: both regions have mean 0.5, std 0 -> 2*0.5/(0.25+1) = 0.8; S_region: every quadrant constant -> 1
    assert s_measure(np.full((4, 4), 0.5), left_half()) == pytest.approx(0.5 * 0.8 + 0.5 * 1.0, abs=1e-6)


def test_s_measure_half_overlap_by_hand():
    # gt = left half, pred = top half. Object term: fg values {1,1,1,1,0,0,0,0}: mean 0.5, sd (ddof 1) sqrt(2/7)
    o = 2 * 0.5 / (0.25 + 1 + np.sqrt(2 / 7))
    # centroid (1-based, rounded half up): row 3, col 2 -> quadrants 3x2, 3x2, 1x2, 1x2; only the bottom two
    # (constant pred and constant gt) score 1, the top two score 0 -> S_region = 4/16
    expected = 0.5 * o + 0.5 * 4 / N
    assert s_measure(top_half(), left_half()) == pytest.approx(expected, abs=1e-6)
    batch = np.stack([top_half(), left_half()])
    gts = np.stack([left_half(), left_half()])
    per = s_measure_per_image(torch.tensor(batch), torch.tensor(gts))
    assert per == pytest.approx([expected, 1.0], abs=1e-6)


def test_e_measure_by_hand():
    g = left_half()
    assert e_measure(g, g) == pytest.approx(N / (N - 1), abs=1e-6)  # reference's N-1 denominator
    z = np.zeros((4, 4))
    assert e_measure(z, z) == pytest.approx(N / (N - 1))
    # half overlap: TP and TN pixels align perfectly (phi = 1), FP and FN are anti-aligned (phi = 0)
    assert e_measure(top_half(), g) == pytest.approx(8 / (N - 1), abs=1e-6)
    # a full prediction against a half gt: a_p = 0 everywhere -> phi = 1/4
    assert e_measure(np.ones((4, 4)), g) == pytest.approx(0.25 * N / (N - 1), abs=1e-6)


def test_max_e_measure_thresholds():
    g = left_half()
    soft = 0.8 * g
    thr, curve = e_measure_curve(soft, g, num_thresholds=256)
    assert curve[0] == pytest.approx(0.25 * N / (N - 1), abs=1e-6)  # t = 0: everything is foreground
    assert curve[-1] == pytest.approx(0.25 * N / (N - 1), abs=1e-6)  # t = 1: nothing is
    assert max_e_measure(soft, g) == pytest.approx(N / (N - 1), abs=1e-6)
    # on binary predictions the max over thresholds equals the E-measure itself
    assert max_e_measure(top_half(), g) == pytest.approx(e_measure(top_half(), g), abs=1e-9)
    # and the curve matches e_measure of the thresholded prediction at every threshold
    rng = np.random.default_rng(0)
    p = rng.random((2, 4, 4))
    gg = np.stack([g, np.zeros((4, 4))])
    thr, curve = e_measure_curve(p, gg, num_thresholds=11)
    for t, c in zip(thr, curve, strict=True):
        assert c == pytest.approx(e_measure((p >= t).astype(float), gg), abs=1e-9)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        s_measure(np.zeros((4, 4)), np.zeros((4, 5)))
