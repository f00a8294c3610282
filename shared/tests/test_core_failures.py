"""Issue 21 at the core: where training fails, it fails with one line, an exit status, and nothing corrupted."""

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from tenfold_core.cli import App, arg
from tenfold_core.config import OptimConfig, TrainConfig
from tenfold_core.errors import ConfigError
from tenfold_core.train import ClassifierModule, fit, make_dataloader

SCRIPT = Path(__file__).with_name("_train_script.py")


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def data(n=128):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long())


def tiny_fit(out, **kw):
    torch.manual_seed(0)
    cfg = TrainConfig(out_dir=str(out), accelerator="cpu", progress_bar=False, loggers=[], max_epochs=1, **kw)
    return fit(ClassifierModule(nn.Linear(8, 2), OptimConfig(lr=0.1)), cfg, make_dataloader(data(), 32),
               make_dataloader(data(64), 64))  # fmt: skip


@dataclass
class Verb:
    train: TrainConfig = arg(factory=lambda: TrainConfig(accelerator="cpu", progress_bar=False, loggers=[]))


def app_main(argv, capsys):
    app = App("toy")

    @app.command("train", Verb, trains=True)
    def train(cfg):
        torch.manual_seed(0)
        fit(
            ClassifierModule(nn.Linear(8, 2)),
            cfg.train,
            make_dataloader(data(), 32),
            make_dataloader(data(64), 64),
        )

    with pytest.raises(SystemExit) as e:
        app.main(argv)
    err = capsys.readouterr().err
    return e.value.code, err


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_bad_last_checkpoint_is_one_line_naming_the_file(tmp_path, how, capsys):
    tiny_fit(tmp_path / "run")
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    raw = last.read_bytes()
    last.write_bytes(b"\x00garbage" * 50 if how == "garbage" else raw[: len(raw) // 2])
    code, err = app_main(
        ["train", "--train.out_dir", str(tmp_path / "run"), "--train.max_epochs", "2"], capsys
    )
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert str(last) in err and "--train.resume never" in err and "weights_only=False" not in err
    # the offered way out works
    tiny_fit(tmp_path / "run", resume="never")
    with pytest.raises(ConfigError, match="no such checkpoint"):
        tiny_fit(tmp_path / "run", resume=str(tmp_path / "missing.ckpt"))
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ConfigError, match=r"bad\.ckpt: not a readable checkpoint"):
        tiny_fit(tmp_path / "other", resume=str(bad))


def test_out_dir_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    for out in (f, f / "sub"):
        code, err = app_main(["train", "--train.out_dir", str(out)], capsys)
        assert code == 2 and "is a file, not a folder" in err and err.count("\n") == 1


def test_lock_refuses_a_second_training_and_takes_over_a_stale_one(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        (out / "train.lock").write_text(f"{sleeper.pid} {socket.gethostname()}\n")
        with pytest.raises(ConfigError, match=f"another training is running there \\(pid {sleeper.pid}"):
            tiny_fit(out)
        assert not (out / "model.safetensors").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    res = tiny_fit(out)  # the owner is gone: the lock is stale and taken over
    assert res.weights.is_file() and not (out / "train.lock").exists()  # released at the end


def test_devices_beyond_the_machine_is_one_line(tmp_path, capsys):
    code, err = app_main(["train", "--train.out_dir", str(tmp_path), "--train.devices", "99"], capsys)
    assert code == 2 and "this machine has" in err and err.count("\n") == 1


@pytest.mark.parametrize("flag, value", [("--train.max_epochs", "0"), ("--optim.lr", "nan")])
def test_silent_nonsense_is_refused(flag, value, capsys):
    @dataclass
    class V:
        train: TrainConfig = arg(factory=TrainConfig)
        optim: OptimConfig = arg(factory=OptimConfig)

    app = App("toy")
    app.command("train", V)(lambda c: 0)
    with pytest.raises(SystemExit) as e:
        app.main(["train", flag, value])
    err = capsys.readouterr().err
    assert e.value.code == 2 and flag.lstrip("-") in err and err.count("\n") == 1


def test_sigterm_writes_last_checkpoint_and_exits_143(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(out), "0.05", "1", "auto", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())  # fmt: skip
    step = None
    for line in proc.stdout:
        if line.startswith("epoch 0 batch 3"):
            step = int(line.split()[5])
            proc.send_signal(signal.SIGTERM)
            break
    proc.stdout.read()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert step is not None and proc.returncode == 143, err[-2000:]
    assert "terminated by SIGTERM" in err
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] >= step  # written after the signal, mid-epoch (not the epoch-end one)
    assert not (out / "model.safetensors").exists() and not (out / "train.lock").exists()
    again = subprocess.run([sys.executable, str(SCRIPT), str(out), "0", "1", "auto", "3"],
                           capture_output=True, text=True, env=_env(), timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resumed=True" in again.stdout and (out / "model.safetensors").is_file()
