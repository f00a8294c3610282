import dataclasses
import json

import numpy as np
import pytest
import torch
from funet import SegLoss, SyntheticConfig, make_synthetic_videos, write_videos
from funet.cli import app
from funet.config import FUnetConfig, TrainCommand

from tenfold_core.cli import load_preset
from tenfold_core.errors import ConfigError


def tiny_cfg(tmp_path, **over) -> TrainCommand:
    cfg = load_preset("funet", "tiny", "train")
    return dataclasses.replace(
        cfg,
        pretrain_epochs=over.pop("pretrain_epochs", 0),
        train=dataclasses.replace(cfg.train, out_dir=str(tmp_path / "run"), resume="never", **over),
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny FUnet run (clips of 3 frames, 32x32) shared by the predict tests."""
    from funet.train import run_training

    return run_training(tiny_cfg(tmp_path_factory.mktemp("tiny"), max_epochs=1)).out_dir


def test_training_through_fit_lowers_the_loss_and_beats_the_untrained_model(tmp_path):
    from funet.evaluate import evaluate_model
    from funet.model import build_model
    from funet.train import load_funet_run, load_videos, run_training

    cfg = tiny_cfg(tmp_path, max_epochs=-1, max_steps=16, monitor=None)  # export the last weights
    cfg = dataclasses.replace(cfg, dice_weight=1.0, optim=dataclasses.replace(cfg.optim, lr=3e-3))
    train_v, val_v = load_videos(cfg.data)
    torch.manual_seed(0)
    before = evaluate_model(build_model(cfg.model), val_v, cfg.data.size, "frames")
    res = run_training(cfg)
    model, conf = load_funet_run(res.out_dir)
    after = evaluate_model(model, val_v, cfg.data.size, "frames")
    assert conf["model_class"] == "funet.model:FUnet" and conf["data"]["size"] == [32, 32]
    assert conf["loss"]["grad_clamp"] == 0.5
    assert after["nll"] < before["nll"] - 0.01  # pixel BCE on the held-out videos
    assert after["s_measure"] > before["s_measure"]


def test_grad_clamp_clamps_every_element():
    from funet.train import SegModule

    lin = torch.nn.Linear(3, 1)
    mod = SegModule(lin, grad_clamp=0.5)
    lin.weight.grad = torch.tensor([[3.0, -0.2, -7.0]])
    opt = torch.optim.SGD(lin.parameters(), lr=1.0)
    mod.on_before_optimizer_step(opt)
    want = torch.tensor([[0.5, -0.2, -0.5]])  # PNS-Net's clip_gradient, not a norm clip
    assert torch.allclose(lin.weight.grad, want)


def test_pretrain_stage_builds_no_gate_and_starts_the_clip_stage(tmp_path):
    from funet.train import load_funet_run, run_training

    res = run_training(tiny_cfg(tmp_path, max_epochs=1, pretrain_epochs=1))
    pre, pre_conf = load_funet_run(res.out_dir / "pretrain")
    assert pre.frame_attention is None and pre_conf["stage"] == "pretrain"
    full, _ = load_funet_run(res.out_dir)
    assert full.frame_attention is not None


def test_loss_bce_and_dice():
    z = torch.tensor([[10.0, -10.0]])
    t = torch.tensor([[1.0, 0.0]])
    assert SegLoss()(z, t) < 1e-3
    assert SegLoss(0, 1)(z[None], t[None]) < 1e-3
    assert SegLoss(0, 1)(-z[None], t[None]) > 0.5
    with pytest.raises(ValueError):
        SegLoss(0, 0)


def test_cli_train_evaluate_predict_export(tmp_path, capsys):
    data = tmp_path / "data"
    write_videos(make_synthetic_videos(3, SyntheticConfig(32, 32, 6), seed=9), data, "sunseg")
    out = tmp_path / "run"
    app.run(["train", "--preset", "tiny", "--data.root", str(data), "--train.out_dir", str(out),
             "--pretrain_epochs", "0"])  # fmt: skip
    conf = json.loads((out / "config.json").read_text())
    assert conf["model_class"] == "funet.model:FUnet" and conf["model"]["num_frames"] == 3
    m = app.run(["evaluate", str(out), str(data), "--out", str(tmp_path / "m.json")])
    assert m["protocol"] == "vps" and m["num_frames"] == 3 * 4 and 0 <= m["max_dice"] <= 1
    assert json.loads((tmp_path / "m.json").read_text())["num_cases"] == 3
    with pytest.raises(ConfigError, match="trained at 32x32, got 64x64"):
        app.run(["evaluate", str(out), str(data), "--size", "64,64"])
    r = app.run(["predict", str(out), str(data), "--out", str(tmp_path / "pred"), "--masks", "true"])
    soft = sorted((tmp_path / "pred" / "Pred" / "FUnet" / "data" / "video_000").iterdir())
    assert len(soft) == 6 and r["cases"]["video_000"]["frames"] == 6
    assert len(list((tmp_path / "pred" / "Mask" / "video_000").iterdir())) == 6
    from PIL import Image

    arr = np.asarray(Image.open(soft[2]))
    assert (
        arr.dtype == np.uint8 and arr.shape == (32, 32) and set(np.unique(arr)) - {0, 255}
    )  # soft, not binary
    e = app.run(["export", str(out), str(tmp_path / "s.pt")])
    assert e["format"] == "torchscript" and (tmp_path / "s.pt").is_file()
    with pytest.raises(ConfigError, match=r"threshold must be in \(0, 1\)"):
        app.run(["predict", str(out), str(data), "--threshold", "7"])


def test_stride8_unet_trains_and_has_no_streaming_export(tmp_path):
    from funet.demo import MODELS, _variant
    from funet.train import load_funet_run, run_training

    cfg = tiny_cfg(tmp_path, max_epochs=1)
    cfg = dataclasses.replace(cfg, model=_variant(cfg.model, MODELS["unet_s8"]))
    res = run_training(cfg)
    model, conf = load_funet_run(res.out_dir)
    assert conf["model_class"] == "funet.model:PerFrameUNet" and model.out_stride == 8
    with pytest.raises(ConfigError, match="streaming step exists for model.kind=funet"):
        app.run(["export", str(res.out_dir), str(tmp_path / "s.pt")])


def test_streaming_predict_memory_does_not_grow_with_the_video(tmp_path, tiny_run):
    """A generated long video predicted frame by frame: peak traced memory is the same for 30 and 120 frames."""
    import tracemalloc

    from funet.config import PredictCommand
    from funet.predict import run_predict
    from PIL import Image

    rng = np.random.default_rng(0)
    peaks = {}
    for n in (30, 120):
        frames = tmp_path / f"long{n}" / "frames"
        frames.mkdir(parents=True)
        for t in range(n):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3)).astype(np.uint8)).save(frames / f"{t}.png")
        tracemalloc.start()
        r = run_predict(
            PredictCommand(run=str(tiny_run), video=str(frames), out=str(tmp_path / f"p{n}"), stream=True)
        )
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert r["cases"][f"long{n}"]["frames"] == n and r["cases"][f"long{n}"]["ms_per_frame"] > 0
    assert peaks[120] < 1.5 * peaks[30]
    names = sorted(p.name for p in (tmp_path / "p120" / "Pred" / "FUnet" / "data" / "long120").iterdir())
    assert len(names) == 120


def test_streaming_predict_matches_clip_mode_on_full_windows(tmp_path, tiny_run):
    from funet.config import PredictCommand
    from funet.predict import run_predict
    from PIL import Image

    data = tmp_path / "v" / "frames"
    write_videos(make_synthetic_videos(1, SyntheticConfig(32, 32, 6), seed=3), tmp_path / "v0", "simple")
    (tmp_path / "v").mkdir()
    (tmp_path / "v0" / "video_000" / "frames").rename(data)
    run_predict(PredictCommand(run=str(tiny_run), video=str(data), out=str(tmp_path / "s"), stream=True))
    run_predict(PredictCommand(run=str(tiny_run), video=str(data), out=str(tmp_path / "c")))
    # clip mode predicts frames 0-2 and 3-5 as clips: the last frame of each clip has the same causal window
    for stem in ("00002", "00005"):
        a = np.asarray(Image.open(tmp_path / "s" / "Pred" / "FUnet" / "data" / "v" / f"{stem}.png"), float)
        b = np.asarray(Image.open(tmp_path / "c" / "Pred" / "FUnet" / "data" / "v" / f"{stem}.png"), float)
        assert np.abs(a - b).max() <= 1


def test_benchmark_and_export_from_cli(tmp_path):
    r = app.run(["benchmark", "--preset", "tiny", "--out", str(tmp_path / "b.json")])
    assert {"funet_stream_ms_per_frame", "unet_ms_per_frame", "stream_over_unet_latency"} <= set(r)
    assert r["funet_clip_frames_per_s"] > 0 and json.loads((tmp_path / "b.json").read_text())["size"] == [
        64,
        64,
    ]


def test_onnx_export_of_the_streaming_step_matches_pytorch(tmp_path, tiny_run):
    """`funet export --format onnx`, run by onnxruntime frame after frame (the history carried between calls) gives
    the streaming predictor's maps and gates."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from funet.model import StreamingPredictor
    from funet.predict import example_stream_inputs
    from funet.train import load_funet_run

    e = app.run(["export", str(tiny_run), str(tmp_path / "step.onnx"), "--format", "onnx"])
    assert e["format"] == "onnx" and e["inputs"] == ["frame", "low_hist", "high_hist"]
    sess = ort.InferenceSession(str(tmp_path / "step.onnx"), providers=["CPUExecutionProvider"])
    model, conf = load_funet_run(tiny_run)
    size = tuple(conf["data"]["size"])
    sp = StreamingPredictor(model)
    frames = torch.randn(5, 3, *size)
    _, low, high = example_stream_inputs(model, size)
    with torch.no_grad():  # the predictor fills its buffer with the first frame: do the same for onnxruntime
        lo, hi = model.features(frames[:1])
    low, high = (t[:, None].expand_as(h).contiguous().numpy() for t, h in ((lo, low), (hi, high)))
    for k in range(len(frames)):
        prob, gate = sp.push(frames[k])
        z, g, low, high = sess.run(
            None, {"frame": frames[k : k + 1].numpy(), "low_hist": low, "high_hist": high}
        )
        assert np.abs(1 / (1 + np.exp(-z[0, 0])) - prob.numpy()).max() < 1e-4
        assert abs(float(g[0]) - gate) < 1e-5 and 0 < gate < 1


def test_evaluate_a_sunseg_test_folder_reports_splits_groups_and_cases(tmp_path, tiny_run, sunseg_test):
    root, SUNSEG = sunseg_test
    m = app.run(["evaluate", str(tiny_run), str(root), "--out", str(tmp_path / "m.json")])
    assert list(m["splits"]) == list(SUNSEG) and m["groups"]["all"]["num_cases"] == 5
    assert {"TestEasyDataset/*", "TestHardDataset/*", "*/Seen", "*/Unseen"} <= set(m["groups"])
    assert set(m["cases"]) == {f"{s}/{c}" for s, cases in SUNSEG.items() for c in cases}
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["splits"]["TestHardDataset/Seen"]["num_cases"] == 2 and 0 <= saved["mean_dice"] <= 1
    one = app.run(["evaluate", str(tiny_run), str(root / "TestHardDataset" / "Seen")])  # one data set
    assert one["mean_dice"] == pytest.approx(m["splits"]["TestHardDataset/Seen"]["mean_dice"])


def test_config_errors_are_one_line():
    with pytest.raises(ConfigError, match="num_frames must be >= 1"):
        app.run(["train", "--preset", "tiny", "--model.num_frames", "0"])
    with pytest.raises(ConfigError, match="applies to model.kind=funet only"):
        app.run(["train", "--model.kind", "unet", "--model.unet_base", "8"])
    with pytest.raises(ConfigError, match="multiples of 16"):
        app.run(["train", "--data.size", "40,40"])
    with pytest.raises(ConfigError, match="needs multiples of 32"):
        app.run(["train", "--model.kind", "unet", "--data.size", "48,48"])
    assert FUnetConfig(kind="unet").multiple == 32 and FUnetConfig().multiple == 16


@pytest.mark.slow
def test_demo_writes_outputs(tmp_path):
    from funet.config import DemoCommand
    from funet.demo import run_demo

    m = run_demo(DemoCommand(out=str(tmp_path / "demo"), train_preset="tiny"))
    for f in ("metrics.json", "report.md", "overlay.png", "metrics.png"):
        assert (tmp_path / "demo" / f).is_file()
    saved = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert saved["funet_mean_dice"] == pytest.approx(m["funet_mean_dice"])
    assert 0 < m["stride8_oracle_mean_dice"] <= 1 and m["eval_frames"] > 0
