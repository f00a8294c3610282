import math

import pytest
from doubledescent import PAPER_CNN_WIDTHS, PAPER_FC_WIDTHS
from doubledescent.cli import app
from doubledescent.train import paper_lr_factor

from tenfold_core.cli import load_preset


@pytest.mark.parametrize(
    "preset", ["paper", "demo", "tiny", "cifar10_cnn", "cifar10_resnet18", "digits_fast"]
)
def test_presets_parse(preset):
    cfg = load_preset("doubledescent", preset, "sweep")
    if preset == "paper":
        assert cfg.widths == PAPER_FC_WIDTHS and len(cfg.widths) == 35 and cfg.data.n_train == 4000
        o = cfg.optim
        assert (o.name, o.lr, o.momentum, o.weight_decay, cfg.data.batch_size, cfg.train.max_epochs) == (
            "sgd", 0.05, 0.0, 0.0, 128, 4000)  # fmt: skip
        assert cfg.lr_decay == "inv_sqrt" and cfg.knn_k == 5 and cfg.knn_metric == "cosine"
    if preset.startswith("cifar10"):
        assert (
            cfg.widths == PAPER_CNN_WIDTHS
            and cfg.train.max_epochs == 200
            and cfg.lr_decay == "inv_sqrt_cifar"
        )


def test_every_verb_has_a_section_in_the_shipped_presets():
    for preset in ("demo", "paper", "tiny"):
        for verb in app.commands:
            load_preset("doubledescent", preset, verb)
    assert set(app.training_verbs) == {"train", "sweep"}


def test_paper_schedules():
    f = lambda e: paper_lr_factor("inv_sqrt", 50, e)  # noqa: E731  (the paper's MNIST schedule)
    assert f(0) == f(49) == 1.0 and f(50) == pytest.approx(1 / math.sqrt(2))
    assert 0.05 * f(3999) == pytest.approx(0.05 / 80**0.5)  # 0.0056 at the end, as in the paper
    c = lambda e: paper_lr_factor("inv_sqrt_cifar", 50, e)  # noqa: E731
    assert c(49) == 1.0 and 0.05 * c(50) == pytest.approx(0.00223, abs=1e-5)


def test_shared_train_keys(capsys):
    # the README promises --train.max_epochs / --train.devices as in every package; the old keys are gone
    app.run(["sweep", "--train.max_epochs", "7", "--train.devices", "1", "--print-config"])
    out = capsys.readouterr().out
    assert "max_epochs: 7" in out and "monitor: null" in out  # preset defaults survive a nested flag
    from tenfold_core.errors import ConfigError

    with pytest.raises((ConfigError, SystemExit)):
        app.run(["sweep", "--train.epochs", "5", "--print-config"])
    from doubledescent import SweepCommand

    assert (
        "epochs" not in SweepCommand.__dataclass_fields__["train"].type
    )  # no private TrainSettings any more
