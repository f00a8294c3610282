"""Encoders for any T, the time weighting, losses (KL reductions, cosine), the gradient-angle gate."""

import math

import pytest
import torch
from spikeclip.config import DualLossConfig, ImageEncoderConfig, TextEncoderConfig, paper_time_weights
from spikeclip.losses import (
    class_logits,
    cosine_alignment_loss,
    dual_loss,
    gradient_angle,
    kl_teacher_student,
)
from spikeclip.model import SpikingImageEncoder, SpikingTextEncoder, TimeWeighting
from spikeclip.train import DualFinetuneModule

TINY_IMAGE = dict(
    input_size=8, stem_channels=[8, 16], pools=1, depth=1, num_heads=2, qk_scale="auto", out_dim=12
)


@pytest.mark.parametrize("T", [1, 3, 4, 8])
def test_image_encoder_any_T(T):
    torch.manual_seed(0)
    m = SpikingImageEncoder(ImageEncoderConfig(time_steps=T, **TINY_IMAGE))
    x = torch.rand(3, 3, 12, 12)  # resized to input_size inside
    y = m(x)
    assert y.shape == (3, 12)
    assert m.time_weight.weight.shape == (T,)
    y.pow(2).sum().backward()
    assert m.time_weight.weight.grad.abs().sum() > 0
    assert m.stem[0].conv.weight.grad.abs().sum() > 0  # surrogate gradients reach the first conv


@pytest.mark.parametrize("T", [1, 3, 4, 8])
def test_text_encoder_any_T(T):
    cfg = TextEncoderConfig(tokenizer="word", vocab=["a", "one", "two"], vocab_size=5, embed_dim=6, max_length=4,
                            hidden_dim=16, out_dim=7, time_steps=T)  # fmt: skip
    m = SpikingTextEncoder(cfg)
    with torch.no_grad():
        m.embed.token.weight.mul_(100)  # make the input LIF fire
    y = m.encode(["a one", "two"])
    assert y.shape == (2, 7)
    y.sum().backward()
    assert m.fc1.weight.grad.abs().sum() > 0


def test_time_weights_reproduce_official_init_at_T4():
    assert paper_time_weights(4) == pytest.approx([math.log(v) for v in (0.1, 0.2, 0.4, 0.8)])
    tw = TimeWeighting(3)
    x = torch.randn(3, 2, 5)
    ref = sum(tw.weight[t] * x[t] for t in range(3))
    assert torch.allclose(tw(x), ref)
    with pytest.raises(ValueError, match="time steps"):
        tw(torch.randn(4, 2, 5))


def test_kl_reductions_differ_as_documented():
    torch.manual_seed(0)
    for b in (1, 4, 16):
        zt, zs = torch.randn(b, 10), torch.randn(b, 10)
        bm = kl_teacher_student(zt, zs, "batchmean")
        s = kl_teacher_student(zt, zs, "sum")
        assert float(s) == pytest.approx(b * float(bm), rel=1e-5)  # sum grows with the batch size
        manual = (zt.softmax(-1) * (zt.log_softmax(-1) - zs.log_softmax(-1))).sum(-1).mean()
        assert float(bm) == pytest.approx(float(manual), rel=1e-5)  # batchmean is the per-sample KL
    zt, zs = torch.randn(8, 10), torch.randn(8, 10)
    assert float(kl_teacher_student(zt, zs, "sum")) > 2 * float(kl_teacher_student(zt, zs, "batchmean"))
    with pytest.raises(ValueError):
        kl_teacher_student(zt, zs, "mean")


def test_dual_loss_and_logits():
    torch.manual_seed(0)
    f, w = torch.randn(4, 8), torch.randn(3, 8)
    z = class_logits(f, w, 1.0)
    assert z.abs().max() <= 1.0 + 1e-6  # official: plain cosines, no temperature
    assert torch.allclose(class_logits(f, w, 20.0), 20 * z)
    y = torch.tensor([0, 1, 2, 0])
    total, ce, kl = dual_loss(z, torch.randn(4, 3), y, kl_weight=0.5)
    assert float(total) == pytest.approx(float(ce + 0.5 * kl))
    total0, _, kl0 = dual_loss(z, None, y)
    assert float(kl0) == 0 and float(total0) == pytest.approx(float(ce))


def test_cosine_alignment_loss():
    a = torch.randn(5, 4)
    assert float(cosine_alignment_loss(a, 3 * a)) == pytest.approx(0.0, abs=1e-6)
    assert float(cosine_alignment_loss(a, -a)) == pytest.approx(2.0, abs=1e-6)


def test_gradient_angle_and_gate():
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    assert gradient_angle(
        (p * torch.tensor([1.0, 0])).sum(), (p * torch.tensor([2.0, 0])).sum(), [p]
    ) == pytest.approx(0.0, abs=1e-3)
    assert gradient_angle(p.sum(), -p.sum(), [p]) == pytest.approx(180.0, abs=1e-3)
    assert gradient_angle(
        (p * torch.tensor([1.0, 0])).sum(), (p * torch.tensor([0, 1.0])).sum(), [p]
    ) == pytest.approx(90.0)
    # the gate switches the module to manual optimisation; off (official -90) keeps automatic optimisation
    m = SpikingImageEncoder(ImageEncoderConfig(**TINY_IMAGE))
    w = torch.randn(3, 12)
    assert DualFinetuneModule(m, None, w, DualLossConfig()).automatic_optimization
    assert not DualFinetuneModule(m, None, w, DualLossConfig(boundary_angle=90)).automatic_optimization


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="qk_scale"):
        ImageEncoderConfig(qk_scale="big")
    with pytest.raises(ValueError, match="num_heads"):
        ImageEncoderConfig(num_heads=5)
    with pytest.raises(ValueError, match="input_size"):
        ImageEncoderConfig(input_size=30, pools=2)
    with pytest.raises(ValueError, match="kl_weight"):
        DualLossConfig(ce_weight=0, kl_weight=0)
