import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from tenfold_core.errors import ConfigError, TrainingDiverged
from tenfold_core.models import load_weights
from tenfold_core.train import (
    ClassifierModule,
    EpochSeededSampler,
    OptimConfig,
    TrainConfig,
    build_optimizer,
    build_trainer,
    fit,
    make_dataloader,
    resolve_precision,
)

SCRIPT = Path(__file__).with_name("_train_script.py")


def data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    return TensorDataset(x, (x[:, :3].sum(1) > 0).long())


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))


def quiet(tmp_path, **kw):
    kw = {"accelerator": "cpu", "progress_bar": False, "loggers": [], **kw}
    return TrainConfig(out_dir=str(tmp_path), **kw)


@pytest.mark.parametrize("schedule", ["constant", "cosine", "linear", "inverse_sqrt"])
def test_schedules_with_warmup(schedule):
    model = nn.Linear(3, 3)
    opt, sched = build_optimizer(
        model, OptimConfig(lr=1.0, schedule=schedule, warmup_steps=4, min_lr_ratio=0.1), 20
    )
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    if schedule == "constant":
        assert lrs[-1] == 1.0
    else:
        assert lrs[-1] < 0.5 and all(a >= b for a, b in zip(lrs[4:], lrs[5:]))
    if schedule in ("cosine", "linear"):
        assert lrs[-1] >= 0.1 - 1e-9


def test_no_weight_decay_on_bias_and_norm():
    model = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3))
    opt, _ = build_optimizer(model, OptimConfig(name="sgd", weight_decay=0.1), 10)
    wd = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert wd[id(model[0].weight)] == 0.1 and wd[id(model[0].bias)] == 0.0 and wd[id(model[1].weight)] == 0.0
    opt, _ = build_optimizer(model, OptimConfig(name="sgd", weight_decay=0.1, decay_all=True), 10)
    wd = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert set(wd.values()) == {0.1} and len(wd) == 4


def test_config_validation():
    with pytest.raises(ValueError, match="test metric"):
        TrainConfig(monitor="test_acc")
    with pytest.raises(ValueError, match="accumulate"):
        TrainConfig(accumulate=0)
    with pytest.raises(ValueError, match="lr"):
        OptimConfig(lr=0)
    with pytest.raises(ValueError, match="devices"):
        TrainConfig(devices="two")
    with pytest.raises(ConfigError, match="this machine has"):  # issue 21: used to wait forever for 98 ranks
        build_trainer(TrainConfig(devices="99", accelerator="cpu"))
    with pytest.raises(ConfigError, match="needs train.monitor"):
        build_trainer(TrainConfig(monitor=None, early_stopping_patience=2))
    assert resolve_precision("auto", "cpu") == "32-true" and resolve_precision("16-mixed") == "16-mixed"


def test_fit_learns_selects_best_on_validation_and_exports(tmp_path):
    ds = data()
    res = fit(ClassifierModule(mlp(), OptimConfig(lr=0.02)), quiet(tmp_path, max_epochs=4, monitor="val_acc", mode="max", loggers=["csv"]),
              make_dataloader(ds, 32, shuffle=True), make_dataloader(data(128, 1), 64))  # fmt: skip
    assert res.best_score > 0.8
    assert res.best_checkpoint.is_file() and res.last_checkpoint.name == "last.ckpt"
    weights = load_weights(tmp_path / "model.safetensors")
    best = torch.load(res.best_checkpoint, weights_only=True)["state_dict"]
    # the exported file holds module.model's weights (keys without the LightningModule's "model." prefix)
    assert set(weights) == {k.removeprefix("model.") for k in best}
    assert all(torch.equal(weights[k.removeprefix("model.")], best[k]) for k in best)
    import json

    conf = json.loads((tmp_path / "config.json").read_text())
    assert conf["monitor"] == "val_acc" and conf["best_score"] == pytest.approx(res.best_score)
    assert (tmp_path / "logs" / "metrics.csv").is_file()
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
    # optimiser state is kept only where resuming needs it (issue 20: run folders were 1.3 GB)
    assert "optimizer_states" not in torch.load(res.best_checkpoint, weights_only=True)
    assert torch.load(res.last_checkpoint, weights_only=True)["optimizer_states"]


def test_resume_auto_continues(tmp_path):
    ds = data()
    fit(
        ClassifierModule(mlp()),
        quiet(tmp_path, max_epochs=2),
        make_dataloader(ds, 64, True),
        make_dataloader(ds, 64),
    )
    res = fit(
        ClassifierModule(mlp()),
        quiet(tmp_path, max_epochs=3),
        make_dataloader(ds, 64, True),
        make_dataloader(ds, 64),
    )
    assert res.resumed_from is not None and res.trainer.current_epoch == 3 and res.trainer.global_step == 12
    never = fit(
        ClassifierModule(mlp()),
        quiet(tmp_path / "n", max_epochs=1, resume="never"),
        make_dataloader(ds, 64, True),
        make_dataloader(ds, 64),
    )
    assert never.resumed_from is None
    with pytest.raises(ConfigError, match="no such checkpoint"):
        fit(
            ClassifierModule(mlp()), quiet(tmp_path, resume=str(tmp_path / "x.ckpt")), make_dataloader(ds, 64)
        )


def test_early_stopping(tmp_path):
    ds = data()
    res = fit(ClassifierModule(mlp(), OptimConfig(lr=1e-9)), quiet(tmp_path, max_epochs=30, early_stopping_patience=2),
              make_dataloader(ds, 64, True), make_dataloader(ds, 64))  # fmt: skip
    assert res.trainer.current_epoch < 10


class Exploding(ClassifierModule):
    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        return loss * float("nan") if self.global_step >= 10 else loss


def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path):
    ds = data()
    with pytest.raises(TrainingDiverged, match=r"loss is nan at step 10 .*last good checkpoint kept"):
        fit(
            Exploding(mlp()),
            quiet(tmp_path, max_epochs=5),
            make_dataloader(ds, 32, True),
            make_dataloader(ds, 64),
        )
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 8
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert not (tmp_path / "model.safetensors").exists()


def test_sampler_depends_on_seed_and_epoch():
    s = EpochSeededSampler(20, seed=1)
    a = list(s)
    s.set_epoch(1)
    b = list(s)
    s.set_epoch(0)
    assert list(s) == a and a != b and sorted(b) == list(range(20))
    assert list(EpochSeededSampler(5, shuffle=False)) == [0, 1, 2, 3, 4]


def _run(args, env=None):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300
    )


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def test_kill9_mid_epoch_then_resume_gives_same_weights(tmp_path):
    ref = _run([str(tmp_path / "ref"), "0", "1", "auto", "4"], _env())
    assert ref.returncode == 0, ref.stderr[-2000:]
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(out), "0.05", "1", "auto", "4"],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    killed_at = None
    for line in proc.stdout:
        if line.startswith("epoch 2 batch 3"):
            proc.send_signal(signal.SIGKILL)
            killed_at = line.strip()
            break
    proc.wait(timeout=60)
    assert killed_at and proc.returncode == -signal.SIGKILL
    assert not (out / "model.safetensors").exists()
    ckpts = out / "checkpoints"
    assert torch.load(ckpts / "last.ckpt", weights_only=True)["epoch"] == 1  # completed epochs 0 and 1
    for p in ckpts.iterdir():  # every checkpoint file is complete and loadable
        if p.suffix == ".ckpt":
            torch.load(p, weights_only=True)
    again = _run([str(out), "0", "1", "auto", "4"], _env())
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resumed=True" in again.stdout and "epoch 0 " not in again.stdout
    a, b = load_weights(tmp_path / "ref" / "model.safetensors"), load_weights(out / "model.safetensors")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_ddp_two_cpu_processes(tmp_path):
    r = _run([str(tmp_path / "ddp"), "0", "2", "ddp", "1"], _env())
    assert r.returncode == 0, r.stderr[-3000:]
    assert "DONE world=2" in r.stdout
    assert "rank 1" in r.stdout  # the second process trained too
    single = _run([str(tmp_path / "one"), "0", "1", "auto", "1"], _env())
    a, b = (
        load_weights(tmp_path / "ddp" / "model.safetensors"),
        load_weights(tmp_path / "one" / "model.safetensors"),
    )
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    # each DDP rank sees half the data: half the optimizer steps per epoch
    assert r.stdout.count("rank 0") == single.stdout.count("rank 0") // 2


def test_shared_attack_section_validates_and_builds_the_protocol():
    from tenfold_core.attack import USE_THRESHOLD
    from tenfold_core.config import AttackConfig

    with pytest.raises(ValueError, match="attack.recipe"):
        AttackConfig(recipe="nope")
    with pytest.raises(ValueError, match="attack.eot"):
        AttackConfig(eot=0)
    with pytest.raises(ValueError, match="attack.max_rate"):
        AttackConfig(max_rate=0)
    p = AttackConfig(recipe="pwws", k=7, max_rate=0.2, n_examples=3, seed=5).protocol()
    assert (p.k, p.max_modification_rate, p.n_examples, p.seed) == (7, 0.2, 3, 5)
    assert p.similarity_threshold == USE_THRESHOLD
    assert AttackConfig(similarity_threshold=0.5).protocol().similarity_threshold == 0.5


def test_attack_config_recipe_names_match_the_harness():
    # config.ATTACK_RECIPES is a torch-free copy of the harness's names: every one must resolve, every recipe listed
    from tenfold_core.attack import RECIPES, get_recipe
    from tenfold_core.config import ATTACK_RECIPES

    assert set(RECIPES) <= set(ATTACK_RECIPES)
    for name in ATTACK_RECIPES:
        assert get_recipe(name).name in RECIPES


def test_failing_nvml_check_is_dropped_and_a_working_one_kept(monkeypatch):
    import tenfold_core.train as tr

    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    monkeypatch.setattr(torch.cuda, "_device_count_nvml", lambda: 2)  # NVML answers: keep Lightning's setting
    tr._drop_failing_nvml_check()
    assert os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1"
    monkeypatch.setattr(
        torch.cuda, "_device_count_nvml", lambda: -1
    )  # NVML absent: torch would fall back anyway
    tr._drop_failing_nvml_check()
    assert "PYTORCH_NVML_BASED_CUDA_CHECK" not in os.environ


def test_module_setattr_fast_path_keeps_nn_module_registration():
    m = ClassifierModule(nn.Linear(2, 2))
    m._current_fx_name = "training_step"
    assert m._current_fx_name == "training_step" and "_current_fx_name" not in m._modules
    m.extra = nn.Linear(2, 3)  # everything else still goes through nn.Module
    assert "extra" in m._modules and any(p.shape == (3, 2) for p in m.parameters())
