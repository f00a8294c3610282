"""Defect 6 (issue 10): the Lightning path builds its optimizer and schedule from the OptimConfig it is given."""

import math

import pytest
import torch
from doubledescent import DataConfig, TrainCommand, WidthModelConfig, build_model
from doubledescent.data import train_loader
from doubledescent.train import WidthClassifier, resolve_engine

from tenfold_core.config import OptimConfig, TrainConfig
from tenfold_core.errors import ConfigError
from tenfold_core.train import fit


def _lrs_of_a_fit(tmp_path, optim, lr_decay="optim", decay_every=50, epochs=4):
    from lightning.pytorch.callbacks import Callback

    s = TrainCommand(optim=optim, lr_decay=lr_decay, decay_every=decay_every, data=DataConfig(batch_size=50),
                     train=TrainConfig(out_dir=str(tmp_path), max_epochs=epochs, monitor=None, loggers=[],
                                       progress_bar=False, accelerator="cpu"))  # fmt: skip
    torch.manual_seed(0)
    model = build_model(WidthModelConfig(kind="fc", width=4, input_shape=[6], num_classes=3))
    x, y = torch.rand(200, 6).numpy(), torch.randint(0, 3, (200,)).numpy()
    seen = []

    class Rec(Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            opt = trainer.optimizers[0]
            seen.append((type(opt).__name__, opt.param_groups[0]["lr"], opt.param_groups[0].get("momentum")))

    fit(WidthClassifier(model, s), s.train, train_loader(x, y, 50, 0), callbacks=[Rec()])
    return seen


def test_fit_engine_uses_optim_config_and_step_decay_per_epoch(tmp_path):
    optim = OptimConfig(
        name="sgd", lr=0.1, momentum=0.9, schedule="step", milestones=[2], gamma=0.1, interval="epoch"
    )
    seen = _lrs_of_a_fit(tmp_path / "a", optim)
    assert [s[0] for s in seen] == ["SGD"] * 4 and {s[2] for s in seen} == {0.9}
    assert [s[1] for s in seen] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01]
    )  # per epoch, not per step (4 steps/epoch)
    adam = _lrs_of_a_fit(tmp_path / "b", OptimConfig(name="adam", lr=0.02), epochs=1)
    assert adam[0][:2] == ("Adam", 0.02)


def test_paper_inverse_sqrt_schedule_on_the_fit_engine(tmp_path):
    seen = _lrs_of_a_fit(tmp_path, OptimConfig(name="sgd", lr=0.1, momentum=0.0), "inv_sqrt", decay_every=2)
    assert [s[1] for s in seen] == pytest.approx([0.1, 0.1, 0.1 / math.sqrt(2), 0.1 / math.sqrt(2)])


def test_engine_choice():
    full = dict(model=WidthModelConfig(kind="fc", width=4), data=DataConfig(batch_size=0))
    assert resolve_engine(TrainCommand(**full), pack=4) == "packed"
    assert resolve_engine(TrainCommand(**full), pack=1) == "fit"
    ddp = TrainCommand(**full, train=TrainConfig(devices="2", strategy="ddp", monitor=None))
    assert (
        resolve_engine(ddp, pack=4) == "fit"
    )  # several devices: the Lightning path (devices are never fixed to 1)
    with pytest.raises(ConfigError, match="one device"):
        resolve_engine(TrainCommand(**{**full, "engine": "packed"}, train=ddp.train))
