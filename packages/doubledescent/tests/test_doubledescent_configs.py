from pathlib import Path

import pytest
from doubledescent import PAPER_CNN_WIDTHS, PAPER_FC_WIDTHS, SweepConfig
from doubledescent.train import TrainSettings, lr_at_epoch

from tenfold_core.cli import parse_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", ["mnist_fc", "cifar10_cnn", "cifar10_resnet18", "digits_fast"])
def test_shipped_configs_parse(name):
    cfg = parse_config(SweepConfig, {}, str(CONFIGS / f"{name}.yaml"))
    if name == "mnist_fc":
        assert cfg.widths == PAPER_FC_WIDTHS and len(cfg.widths) == 35 and cfg.data.n_train == 4000
        assert (cfg.train.optimizer, cfg.train.lr, cfg.train.batch_size, cfg.train.epochs) == (
            "sgd",
            0.05,
            128,
            4000,
        )
    if name.startswith("cifar10"):
        assert cfg.widths == PAPER_CNN_WIDTHS and cfg.train.epochs == 200


def test_paper_schedules():
    mnist = TrainSettings()  # the defaults are the paper's MNIST protocol
    assert lr_at_epoch(mnist, 0) == lr_at_epoch(mnist, 49) == 0.05
    assert lr_at_epoch(mnist, 50) == pytest.approx(0.05 / 2**0.5)
    assert lr_at_epoch(mnist, 3999) == pytest.approx(0.05 / 80**0.5)  # 0.0056 at the end, as in the paper
    cifar = TrainSettings(schedule="inv_sqrt_cifar", epochs=200)
    assert lr_at_epoch(cifar, 49) == 0.05 and lr_at_epoch(cifar, 50) == pytest.approx(0.00223, abs=1e-5)
