"""End to end on real digits (seeded): alignment lowers the cosine loss; the two-stage student beats the
no-alignment ablation and chance; every attention LIF fires; the energy report adds up per layer."""

import json

import pytest
import torch
from spikeclip.config import EvaluateConfig, ImageEncoderConfig
from spikeclip.data import load_data
from spikeclip.evaluate import energy_report, firing_rates, run_evaluate
from spikeclip.losses import cosine_alignment_loss
from spikeclip.model import SpikingImageEncoder
from spikeclip.train import (
    align_image,
    align_text,
    dual_finetune,
    load_run_dir,
    train_teacher,
)

from tenfold_core.cli import load_preset

TEACHER = {"image_size": 8, "channels": [16, 32], "embed_dim": 16, "text_backbone": "bag", "word_dim": 16}
DATA = {"dataset": "digits", "image_size": 8, "batch_size": 32, "max_images": 0}
IMAGE = {"input_size": 8, "stem_channels": [16, 32], "pools": 1, "depth": 1, "num_heads": 2, "qk_scale": "auto",
         "time_steps": 4, "out_dim": 0}  # fmt: skip


def _over(out, epochs, **kw):
    return {"train.out_dir": str(out), "train.max_epochs": epochs, "data": DATA, **kw}


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    return build_recipe(tmp_path_factory.mktemp("recipe"))


def build_recipe(root):
    train_teacher(load_preset("spikeclip", "tiny", "train-teacher",
                              {**_over(root / "teacher", 6), "model": TEACHER, "optim.lr": 5e-3}))  # fmt: skip
    align_text(load_preset("spikeclip", "tiny", "align-text",
                           {**_over(root / "text", 8), "teacher": str(root / "teacher"), "optim.lr": 3e-3}))  # fmt: skip
    align_image(load_preset("spikeclip", "tiny", "align-image",
                            {**_over(root / "image", 3), "model": IMAGE, "teacher": str(root / "teacher"),
                             "optim.lr": 5e-3}))  # fmt: skip
    common = {"model": IMAGE, "teacher": str(root / "teacher"), "text": str(root / "text"), "optim.lr": 3e-3,
              "loss.logit_scale": 20.0}  # fmt: skip
    dual_finetune(load_preset("spikeclip", "tiny", "dual-finetune",
                              {**_over(root / "two-stage", 2), **common, "init": str(root / "image")}))  # fmt: skip
    dual_finetune(
        load_preset("spikeclip", "tiny", "dual-finetune", {**_over(root / "no-align", 2), **common})
    )
    return root


def _eval(root, student):
    return run_evaluate(EvaluateConfig(student=str(root / student), text=str(root / "text"),
                                       teacher=str(root / "teacher"), energy_images=16))  # fmt: skip


def test_alignment_lowers_the_cosine_loss(recipe):
    data = load_data(load_preset("spikeclip", "tiny", "align-image", {"data": DATA}).data)
    x = torch.stack([data.split("val")[i][0] for i in range(64)])
    teacher, _ = load_run_dir(recipe / "teacher")
    aligned, conf = load_run_dir(recipe / "image")
    torch.manual_seed(0)  # the same seed and config as the run's initial weights
    initial = SpikingImageEncoder(ImageEncoderConfig(**conf["model"])).eval()
    with torch.no_grad():
        target = teacher.encode_image(x)
        before = float(cosine_alignment_loss(initial(x), target))
        after = float(cosine_alignment_loss(aligned(x), target))
    assert after < before - 0.1, (before, after)


def test_two_stage_beats_no_alignment_and_chance(recipe):
    two = _eval(recipe, "two-stage")
    none = _eval(recipe, "no-align")
    assert two["teacher_top1"] > 0.6  # the teacher itself learned the task
    assert two["top1"] > none["top1"] + 0.05, (two["top1"], none["top1"])
    assert two["top1"] > two["chance"] + 0.3
    assert 0 <= two["open_vocab_expand_top1"] <= 1 and two["top5"] >= two["top1"]
    # every attention LIF of the trained student fires
    attn = {k: v for k, v in two["firing_rates"].items() if k.endswith("attn_lif")}
    assert attn and min(attn.values()) > 1e-3, attn
    assert (
        json.loads((recipe / "two-stage" / "config.json").read_text())["loss"]["kl_reduction"] == "batchmean"
    )


def test_attention_fires_on_the_demo_model_and_not_with_the_paper_constant():
    cfg = load_preset("spikeclip", "demo", "align-image").model
    data = load_data(load_preset("spikeclip", "demo", "align-image").data)
    x = torch.stack([data.split("test")[i][0] for i in range(32)])

    def calibrated(**kw):  # a fresh demo-size model with BatchNorm statistics of digits (one cumulative pass)
        torch.manual_seed(0)
        m = SpikingImageEncoder(type(cfg)(**{**cfg.__dict__, "out_dim": 64, **kw}))
        for mod in m.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.momentum = None
        with torch.no_grad():
            m.train()(x)
        return m

    rates = firing_rates(calibrated(), x)
    attn = {k: v for k, v in rates.items() if "attn" in k or "mlp.input_lif" in k}
    assert len(attn) == 6 and min(attn.values()) > 1e-3, attn
    assert (
        firing_rates(calibrated(qk_scale="paper"), x)["blocks.0.attn.attn_lif"] < 1e-3
    )  # why the demo uses qk_scale auto


def test_energy_report_adds_up_per_layer():
    cfg = ImageEncoderConfig(**{**IMAGE, "out_dim": 16})
    torch.manual_seed(0)
    m = SpikingImageEncoder(cfg)
    x = torch.rand(4, 3, 8, 8)
    rep = energy_report(m, x)
    layers = rep["layers"]
    assert rep["snn_uj"] == pytest.approx(sum(l["energy_pj"] for l in layers) * 1e-6)
    for l in layers:
        assert l["energy_pj"] == pytest.approx(4.6 * l["macs"] + 0.9 * l["acs"])
    first = layers[0]
    T, S, c1 = cfg.time_steps, cfg.input_size, cfg.stem_channels[0]
    assert first["name"] == "stem.0.conv" and first["input"] == "real"
    assert first["macs"] == pytest.approx(T * S * S * c1 * 3 * 9)  # real-valued input: dense MACs, T times
    assert all(l["macs"] == 0 for l in layers if l["input"] == "spike")  # spikes cost accumulates only
    ann = rep["ann_layers"]
    assert rep["ann_uj"] == pytest.approx(sum(l["energy_pj"] for l in ann) * 1e-6)
    proj = next(l for l in ann if l["name"] == "proj")
    assert proj["macs"] == cfg.dim * cfg.out_dim  # one token-mean vector per image
    assert 0 < rep["ratio"] < 1
