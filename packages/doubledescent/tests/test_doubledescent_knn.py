import math

import numpy as np
import pytest
import torch
from doubledescent import knn_noisy_recovery

from tenfold_core.errors import ConfigError


def _clustered(n_per=60, c=10, d=16, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(c, d)) * 5
    y = np.repeat(np.arange(c), n_per)
    x = centers[y] + rng.normal(size=(len(y), d)) * 0.1
    return x, y


def _noisy(y, frac=0.2, c=10, seed=1):
    rng = np.random.default_rng(seed)
    obs = y.copy()
    idx = rng.choice(len(y), int(frac * len(y)), replace=False)
    obs[idx] = (y[idx] + rng.integers(1, c, len(idx))) % c
    return obs


def test_perfect_clusters_recover_every_true_label():
    x, y = _clustered()
    obs = _noisy(y)
    assert (obs != y).sum() == 120
    assert knn_noisy_recovery(x, obs, y, k=5, metric="cosine") == 1.0
    assert knn_noisy_recovery(torch.tensor(x), obs, y, k=5, metric="euclidean") == 1.0


def test_shuffled_features_give_chance_level():
    x, y = _clustered(n_per=200)
    obs = _noisy(y, frac=0.3)
    scores = []
    for s in range(3):
        perm = np.random.default_rng(10 + s).permutation(len(y))
        scores.append(knn_noisy_recovery(x[perm], obs, y, k=5))
    assert abs(np.mean(scores) - 0.1) < 0.04


def test_features_that_encode_the_noisy_label_recover_nothing():
    # a model that memorised the wrong label in its features: the probe must not credit it
    x, y = _clustered()
    obs = _noisy(y)
    centers = np.random.default_rng(3).normal(size=(10, 16)) * 5
    x_mem = centers[obs] + np.random.default_rng(4).normal(size=x.shape) * 0.1
    assert knn_noisy_recovery(x_mem, obs, y) == 0.0


def test_no_noisy_samples_is_nan_and_bad_lengths_fail():
    x, y = _clustered(n_per=10)
    assert math.isnan(knn_noisy_recovery(x, y, y))
    with pytest.raises(ConfigError, match="same length"):
        knn_noisy_recovery(x[:-1], y, y)


def test_all_zero_features_do_not_crash_cosine():
    x, y = _clustered(n_per=20)
    obs = _noisy(y)
    x[:5] = 0.0
    p = knn_noisy_recovery(x, obs, y)
    assert 0.9 <= p <= 1.0
