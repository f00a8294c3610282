import numpy as np
import pytest
from doubledescent import inject_label_noise, noisy_labels_for
from doubledescent.noise import noise_file

from tenfold_core.errors import DataError


@pytest.fixture
def labels():
    return np.random.default_rng(0).integers(0, 10, 1000)


@pytest.mark.parametrize("p", [0.1, 0.2, 0.4])
def test_exact_count_random_mode(labels, p):
    nz = inject_label_noise(labels, p, 10, seed=3)
    m = round(p * len(labels))
    assert len(nz.selected) == len(set(nz.selected.tolist())) == m
    changed = np.flatnonzero(nz.observed != labels)
    assert set(changed.tolist()) <= set(nz.selected.tolist())  # only selected indices change
    assert 0.8 * m <= nz.n_noisy <= m  # ~1/10 of the redrawn labels stay correct (effective noise ~0.9p)
    assert np.array_equal(nz.true, labels)


def test_always_wrong_mode_changes_exactly_round_pn(labels):
    nz = inject_label_noise(labels, 0.2, 10, seed=3, mode="wrong")
    assert nz.n_noisy == 200
    assert ((nz.observed >= 0) & (nz.observed < 10)).all()


def test_p0_changes_nothing_and_seed_matters(labels):
    nz = inject_label_noise(labels, 0.0, 10, seed=5)
    assert np.array_equal(nz.observed, labels) and nz.n_noisy == 0
    a = inject_label_noise(labels, 0.2, 10, seed=1).observed
    b = inject_label_noise(labels, 0.2, 10, seed=1).observed
    c = inject_label_noise(labels, 0.2, 10, seed=2).observed
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_persisted_once_and_reloaded(tmp_path, labels):
    first = noisy_labels_for(tmp_path, labels, 0.2, 10, seed=7)
    path = noise_file(tmp_path, 0.2, 7, "random")
    assert path.is_file()
    # tamper with the stored file: the run must reuse what is stored, not redraw
    with np.load(path) as z:
        obs = z["observed"].copy()
    obs[0] = (obs[0] + 1) % 10
    np.savez(path, observed=obs, true=labels, selected=first.selected)
    again = noisy_labels_for(tmp_path, labels, 0.2, 10, seed=7)
    assert np.array_equal(again.observed, obs)
    # a different training set under the same run folder is refused
    with pytest.raises(DataError, match="true labels differ"):
        noisy_labels_for(tmp_path, np.roll(labels, 1), 0.2, 10, seed=7)


def test_non_writing_rank_draws_the_same_labels_and_writes_nothing(tmp_path, labels):
    """Under DDP only rank 0 writes the noise file (two writers raced: one's unlink broke the other's rename);
    the other ranks draw the same labels from the seed without writing."""
    quiet = noisy_labels_for(tmp_path / "r1", labels, 0.2, 10, seed=7, save=False)
    assert not noise_file(tmp_path / "r1", 0.2, 7, "random").exists()
    written = noisy_labels_for(tmp_path / "r0", labels, 0.2, 10, seed=7)
    assert noise_file(tmp_path / "r0", 0.2, 7, "random").is_file()
    assert np.array_equal(quiet.observed, written.observed)
    assert np.array_equal(quiet.selected, written.selected)
