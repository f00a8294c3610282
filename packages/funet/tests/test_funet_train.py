import json

import pytest
import torch
from funet import (
    ClipDataset,
    FUnet,
    SegLoss,
    SyntheticConfig,
    make_synthetic_videos,
    train_steps,
    write_videos,
)
from funet.cli import app
from funet.evaluate import evaluate_model
from torch.utils.data import DataLoader


def test_few_steps_lower_the_loss_and_beat_the_untrained_model(tiny):
    vids = make_synthetic_videos(2, SyntheticConfig(64, 64, 9, corrupt_prob=0.0), seed=4)
    ds = ClipDataset(vids, 3, 1, 3, size=None)  # 6 clips of 3 frames
    model = FUnet(**tiny, pos_size=[64, 64], num_frames=3)
    before = evaluate_model(model, ds)
    loss_fn = SegLoss(1.0, 1.0)
    losses = train_steps(model, DataLoader(ds, batch_size=2, shuffle=True), 30, lr=3e-3, loss_fn=loss_fn)
    after = evaluate_model(model, ds)
    assert sum(losses[-5:]) / 5 < 0.9 * sum(losses[:5]) / 5
    assert after["max_dice"] > before["max_dice"] + 0.1
    assert after["dice"] > before["dice"]


def test_loss_bce_and_dice():
    z = torch.tensor([[10.0, -10.0]])
    t = torch.tensor([[1.0, 0.0]])
    assert SegLoss()(z, t) < 1e-3
    assert SegLoss(0, 1)(z[None], t[None]) < 1e-3
    assert SegLoss(0, 1)(-z[None], t[None]) > 0.5
    with pytest.raises(ValueError):
        SegLoss(0, 0)


def test_cli_train_evaluate_predict(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    write_videos(make_synthetic_videos(3, SyntheticConfig(64, 64, 6), seed=9), data, "sunseg")
    out = tmp_path / "run"
    small = ["--model.encoder_name", "resnet18", "--model.unet_base", "8", "--model.rfb_mid_channels", "8"]
    small += ["--model.low_channels", "8", "--model.high_channels", "8", "--model.pos_size", "64,64"]
    app.run(
        ["train", "--data.root", str(data), "--data.size", "64,64", "--data.clip_step", "5"]
        + small
        + ["--train.max_epochs", "1", "--train.out_dir", str(out), "--train.progress_bar", "false"]
        + ["--train.loggers", "[]", "--pretrain_epochs", "1"]
    )
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["hparams"]["kind"] == "funet" and cfg["train"]["grad_clip"] == 0.5
    assert (out / "model.safetensors").is_file() and (out / "pretrain" / "model.safetensors").is_file()
    app.run(["evaluate", str(out), str(data), "--size", "64,64", "--out", str(tmp_path / "m.json")])
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["frames"] == 3 * 2 * 3 and 0 <= m["max_dice"] <= 1 and 0 < m["gate_mean"] < 1
    app.run(
        [
            "predict",
            str(out),
            str(data / "Frame" / "video_001"),
            "--size",
            "64,64",
            "--out",
            str(tmp_path / "p"),
        ]
    )
    pngs = sorted((tmp_path / "p" / "video_001").glob("*.png"))
    assert len(pngs) == 6 and (tmp_path / "p" / "video_001.gif").is_file()
    # a video file (decoded by PyAV when installed; here replaced by in-memory frames of another size)
    import funet.runner

    clip = make_synthetic_videos(1, SyntheticConfig(48, 80, 7), seed=3)[0]
    clip.name, clip.masks = "clip", None
    monkeypatch.setattr(funet.runner, "read_video_file", lambda p: clip)
    app.run(
        ["predict", str(out), str(tmp_path / "clip.mp4"), "--size", "64,64", "--out", str(tmp_path / "v")]
    )
    from PIL import Image

    masks = sorted((tmp_path / "v" / "clip").glob("*.png"))
    assert len(masks) == 7 and Image.open(masks[0]).size == (80, 48)  # back at the video's own size
    # user errors: one line, exit 2
    with pytest.raises(SystemExit) as e:
        app.main(["evaluate", str(tmp_path / "nope"), str(data)])
    assert e.value.code == 2
    assert "no such weights file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        app.main(["train", "--data.size", "60,64"])
    assert e.value.code == 2


def test_demo_writes_outputs(tmp_path):
    out = tmp_path / "demo"
    app.run(
        [
            "demo",
            "--out",
            str(out),
            "--train_videos",
            "2",
            "--test_videos",
            "1",
            "--frames",
            "6",
            "--steps",
            "2",
        ]
    )
    m = json.loads((out / "metrics.json").read_text())
    for k in ("funet_dice", "unet_dice", "funet_dice_corrupted_frames", "unet_dice_corrupted_frames"):
        assert k in m and (m[k] is None or 0 <= m[k] <= 1)
    assert m["funet_dice"] is not None
    assert m["funet_frames_per_s"] > 0 and m["unet_frames_per_s"] > 0
    assert (out / "overlay.png").is_file() and (out / "report.md").is_file()


def test_load_trained_roundtrip_for_the_unet_baseline(tmp_path):
    from funet import SegModule, load_trained

    from tenfold_core.io import write_json
    from tenfold_core.models import save_weights

    module = SegModule(
        "unet", {"encoder_name": "resnet18", "encoder_depth": 4, "decoder_channels": [16, 16, 8, 8]}
    )
    module.eval()
    save_weights(module.state_dict(), tmp_path / "model.safetensors")
    write_json(tmp_path / "config.json", {"hparams": dict(module.hparams)})
    model, hp = load_trained(tmp_path)
    assert hp["kind"] == "unet"
    x = torch.randn(1, 2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), module(x), atol=1e-6)
