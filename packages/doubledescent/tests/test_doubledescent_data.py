import sys

import numpy as np
import pytest
from doubledescent import DataConfig, load_data
from doubledescent.results import COLUMNS, append_row, read_results

from tenfold_core.errors import ConfigError, DataError, UserError


def test_digits_split_is_fixed_and_disjoint():
    a = load_data(DataConfig(name="digits", n_train=500))
    b = load_data(DataConfig(name="digits", n_train=500))
    assert a.x_train.shape == (500, 1, 8, 8) and len(a.y_test) == 1797 - 500
    assert np.array_equal(a.x_train, b.x_train) and a.num_classes == 10
    assert 0.0 <= a.x_train.min() and a.x_train.max() <= 1.0
    with pytest.raises(ConfigError, match="n_train"):
        load_data(DataConfig(name="digits", n_train=5000))


def test_synthetic_mixture():
    d = load_data(
        DataConfig(name="synthetic", n_train=300, n_test=200, synthetic_dim=12, synthetic_classes=4)
    )
    assert d.x_train.shape == (300, 12) and d.x_test.shape == (200, 12) and d.num_classes == 4
    assert abs(d.x_train.mean()) < 1e-5


def test_npz_loader_and_its_errors(tmp_path):
    rng = np.random.default_rng(0)
    good = tmp_path / "good.npz"
    np.savez(good, x_train=rng.normal(size=(40, 5)), y_train=rng.integers(0, 3, 40),
             x_test=rng.normal(size=(10, 5)), y_test=rng.integers(0, 3, 10))  # fmt: skip
    d = load_data(DataConfig(name="npz", path=str(good)))
    assert d.x_train.dtype == np.float32 and d.input_shape == (5,) and d.num_classes == 3
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.zeros((4, 2)), y_train=np.zeros(4, int))
    with pytest.raises(DataError, match="missing array"):
        load_data(DataConfig(name="npz", path=str(bad)))
    with pytest.raises(DataError, match="no such file"):
        load_data(DataConfig(name="npz", path=str(tmp_path / "nope.npz")))
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(DataError, match="not a readable"):
        load_data(DataConfig(name="npz", path=str(tmp_path / "junk.npz")))
    with pytest.raises(DataError, match="is a folder"):  # was "no such file"
        load_data(DataConfig(name="npz", path=str(tmp_path)))


def _npz(path, ytr, yte, n=40):
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.normal(size=(len(ytr), 3)), y_train=np.asarray(ytr),
             x_test=rng.normal(size=(len(yte), 3)), y_test=np.asarray(yte))  # fmt: skip
    return DataConfig(name="npz", path=str(path))


def test_npz_label_sets_are_checked(tmp_path):
    # one label of 10^9 among 40 rows used to build a 10^9-class output layer (~12 GB and climbing)
    y = np.arange(40) % 3
    y[7] = 10**9
    with pytest.raises(DataError, match=r"y_train label 1000000000.*0\.\.K-1") as e:
        load_data(_npz(tmp_path / "huge.npz", y, [0, 1, 2]))
    assert str(tmp_path / "huge.npz") in str(e.value)
    with pytest.raises(DataError, match="y_test label 7 does not occur in y_train"):
        load_data(_npz(tmp_path / "stray.npz", np.arange(40) % 3, [0, 1, 7]))
    with pytest.raises(DataError, match="integer class labels"):
        load_data(_npz(tmp_path / "frac.npz", (np.arange(40) % 3) + 0.7, [0, 1]))
    with pytest.raises(DataError, match="label -1"):
        load_data(_npz(tmp_path / "neg.npz", np.r_[np.arange(39) % 3, -1], [0, 1]))
    ok = load_data(_npz(tmp_path / "floats.npz", (np.arange(40) % 4).astype(float), [0.0, 3.0]))
    assert ok.num_classes == 4 and ok.y_train.dtype == np.int64


def test_torchvision_missing_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)
    with pytest.raises(UserError, match="needs torchvision"):
        load_data(DataConfig(name="mnist"))


def _row(width, loss=0.5):
    r = {c: 0 for c in COLUMNS}
    r.update(model="fc", width=width, noise=0.2, seed=0, noise_mode="random", labels_sha1="abc", test_loss=loss,
             train_loss=0.1, train_acc=1.0, test_acc=0.9, noisy_memorized=float("nan"), knn_p=0.5)  # fmt: skip
    return r


def test_results_survive_a_torn_line(tmp_path):
    path = tmp_path / "results.csv"
    append_row(path, _row(1))
    append_row(path, _row(2))
    with open(path, "a") as f:  # a writer killed in the middle of a line
        f.write("fc,3,0,0.2,0,rand")
    assert [r["width"] for r in read_results(path)] == [1, 2]
    append_row(path, _row(4))
    append_row(path, _row(4, loss=9.0))  # duplicates: the first row wins
    rows = read_results(path)
    assert [r["width"] for r in rows] == [1, 2, 4] and rows[-1]["test_loss"] == 0.5
    assert path.read_text().count("\n") == 5 and np.isnan(rows[0]["noisy_memorized"])
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="not a doubledescent results file"):
        read_results(tmp_path / "other.csv")


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe garbage", "not a doubledescent results file"),
        (b"model,width,noise,seed,test_loss,train_acc\nfc,abc,0.2,0,1.0,1.0\n", "line 2: field 'width'"),
        (b"model,width,noise,seed,test_loss,train_acc\nfc,2,0.2\n", "line 2: expected 6 fields"),
        (b"\x00\x00\x00\n", "binary"),
    ],
)
def test_garbage_results_name_the_path(tmp_path, content, needle):
    path = tmp_path / "results.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=needle) as e:
        read_results(path)
    assert str(path) in str(e.value)


def _curve(losses, accs, knn=None):
    knn = knn or [0.5] * len(losses)
    return [
        {"width": 2**i, "test_loss": l, "train_acc": a, "test_acc": 1 - l / 10, "knn_p": k}
        for i, (l, a, k) in enumerate(zip(losses, accs, knn))
    ]


def test_curve_stats_on_hand_made_curves():
    from doubledescent import curve_stats

    s = curve_stats(
        _curve([1.2, 0.8, 1.5, 2.4, 1.6, 1.0], [0.5, 0.7, 0.9, 1.0, 1.0, 1.0], [0.3, 0.4, 0.5, 0.6, 0.8, 0.9])
    )
    assert (s["threshold_width"], s["min_small_width"], s["peak_width"]) == (8, 2, 8)
    assert (
        s["peak_ratio"] == pytest.approx(2.4 / 1.0)
        and s["knn_p_threshold"] == 0.6
        and s["knn_p_largest"] == 0.9
    )
    mono = curve_stats(_curve([1.0, 0.6, 0.4, 0.3, 0.3], [0.8, 1.0, 1.0, 1.0, 1.0]))
    assert mono["peak_ratio"] == 1.0 and mono["threshold_width"] == 2
    never = curve_stats(_curve([1.0, 0.9, 1.3, 1.1], [0.5, 0.6, 0.7, 0.8]))
    assert (
        never["threshold_width"] is None and never["peak_width"] == 4 and np.isnan(never["knn_p_threshold"])
    )
    assert never["peak_steps_from_threshold"] is None


def test_threshold_uses_a_tolerance_and_names_the_peak_relative_to_it():
    from doubledescent import curve_stats

    # one misfit sample out of 4000 at width 8 (train acc 0.99975): the old rule (exactly 1.0) put the threshold two
    # widths later, after the peak, and measured knn_p_threshold there
    c = _curve(
        [1.2, 0.8, 1.5, 2.4, 1.6, 1.0], [0.5, 0.7, 0.9, 0.99975, 0.9999, 1.0], [0.3, 0.4, 0.5, 0.6, 0.8, 0.9]
    )
    s = curve_stats(c)
    assert s["threshold_width"] == 8 and s["knn_p_threshold"] == 0.6
    assert (
        s["peak_width"] == 8 and s["peak_steps_from_threshold"] == 0 and s["peak_width_over_threshold"] == 1.0
    )
    strict = curve_stats(c, threshold_acc=1.0)
    assert strict["threshold_width"] == 32 and strict["peak_steps_from_threshold"] == -2
