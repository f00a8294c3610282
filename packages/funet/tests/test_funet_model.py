import pytest
import torch
from funet import FUnet, FUnetConfig, PerFrameUNet, build_encoder, build_model
from funet.model import ChannelSelfAttention, StreamingPredictor, StreamStep

from tenfold_core.errors import ConfigError, ModelLoadError


@pytest.mark.parametrize("hw", [(128, 224), (96, 96), (64, 96), (32, 64)])
def test_funet_output_shape_any_multiple_of_16(tiny, hw):
    m = FUnet(**tiny).eval()  # pos-embeddings stored for 256x448 (official), interpolated otherwise
    x = torch.randn(1, 5, 3, *hw)
    with torch.no_grad():
        logits, gates = m(x, return_gates=True)
    assert logits.shape == (1, 5, 1, *hw)
    assert gates.shape == (1, 5)
    assert torch.isfinite(logits).all()


def test_default_config_is_the_paper_model():
    c = FUnetConfig()
    assert c.encoder_name == "tu-res2net50d" and c.num_frames == 5 and c.encoder_weights is None
    assert (c.low_channels, c.high_channels, c.unet_base, c.decoder_channels) == (24, 32, 64, 16)
    assert c.pos_size == [256, 448]


def test_csa_positional_embedding_interpolation_and_fixed_mode():
    csa = ChannelSelfAttention(16, (16, 28), num_heads=8)
    assert csa.pos_embedding.shape == (1, 16 * 28, 16)  # the official layout
    assert csa.positional(16, 28) is csa.pos_embedding
    assert csa.positional(20, 20).shape == (1, 400, 16)
    g = csa(torch.randn(2, 16, 20, 20))
    assert g.shape == (2, 16, 20, 20) and (g > 0).all() and (g < 1).all()  # a sigmoid gate
    fixed = ChannelSelfAttention(16, (16, 28), num_heads=8, pos_mode="fixed")
    with pytest.raises(ConfigError, match="fixed at 16x28"):
        fixed(torch.randn(1, 16, 20, 20))


def test_bilinear_unet_branch_works(tiny):
    m = FUnet(**tiny, unet_bilinear=True).eval()  # crashes in the official code (no CSA built)
    with torch.no_grad():
        assert m(torch.randn(1, 5, 3, 64, 64)).shape == (1, 5, 1, 64, 64)


def test_gates_in_unit_interval_and_sensitive_to_a_corrupted_frame(tiny):
    m = FUnet(**tiny).eval()
    x = torch.randn(2, 5, 3, 64, 64)
    with torch.no_grad():
        _, g = m(x, return_gates=True)
        x2 = x.clone()
        x2[0, 2] = 2.0  # a washed-out (hazy) frame in the first clip only
        _, g2 = m(x2, return_gates=True)
    assert ((g > 0) & (g < 1)).all()
    assert (g2[0] - g[0]).abs().max() > 1e-5  # the clip's gates react to the corrupted frame
    assert torch.allclose(g2[1], g[1])  # the other clip is untouched


def test_gate_only_scales_logits(tiny):
    """The paper's inter-frame information: one positive factor per frame on that frame's logits."""
    m = FUnet(**tiny).eval()
    x = torch.randn(1, 5, 3, 64, 64)
    with torch.no_grad():
        gated, g = m(x, return_gates=True)
        plain = m(x, use_gate=False)
        x2 = x.clone()
        x2[0, 2] = 2.0
        plain2 = m(x2, use_gate=False)
    assert torch.allclose(gated, plain * g[0].view(1, 5, 1, 1, 1), atol=1e-5)
    assert torch.equal(gated > 0, plain > 0)  # the mask at probability 0.5 does not depend on the gate
    assert torch.allclose(
        plain2[:, [0, 1, 3, 4]], plain[:, [0, 1, 3, 4]], atol=1e-5
    )  # no cross-frame features


def test_temporal_fusion_variant_mixes_frames(tiny):
    m = FUnet(**tiny, temporal_fusion="gated_mean").eval()
    torch.nn.init.normal_(m.fusion.weight, std=5.0)  # zero-initialised: give it something to do
    x = torch.randn(1, 5, 3, 64, 64)
    with torch.no_grad():
        a = m(x, use_gate=False)
        x2 = x.clone()
        x2[0, 2] = 2.0
        b = m(x2, use_gate=False)
    assert (a[:, 0] - b[:, 0]).abs().max() > 1e-4  # frame 0 now sees frame 2's features


def test_per_frame_unets_and_input_checks(tiny):
    cfg = FUnetConfig(kind="unet", encoder_name="resnet18", baseline_decoder_channels=[32, 16, 16, 8, 8])
    u = build_model(cfg).eval()
    assert isinstance(u, PerFrameUNet)
    s8 = build_model(FUnetConfig(**{**cfg.__dict__, "kind": "unet_s8"})).eval()
    assert len(s8.unet.decoder.blocks) == 2  # stops at stride 8: the last three up blocks are not built
    with torch.no_grad():
        assert u(torch.randn(2, 3, 3, 64, 96)).shape == (2, 3, 1, 64, 96)
        z = s8(torch.randn(1, 2, 3, 64, 96))
    assert z.shape == (1, 2, 1, 64, 96)
    blocks = z[0, 0, 0].unfold(0, 8, 8).unfold(1, 8, 8)  # a stride-8 map upsampled: smooth inside 8x8 cells
    assert blocks.std(dim=(-1, -2)).mean() < z.std()
    with pytest.raises(ValueError, match="divisible by 32"):
        u(torch.randn(1, 3, 3, 48, 64))
    m = FUnet(**tiny)
    with pytest.raises(ValueError, match=r"\[B, F, C, H, W\]"):
        m(torch.randn(5, 3, 64, 64))
    with pytest.raises(ValueError, match="5 frames"):
        m(torch.randn(1, 3, 3, 64, 64))


def test_config_rejects_options_of_the_other_model():
    with pytest.raises(ValueError, match=r"model.unet_base applies to model.kind=funet only"):
        FUnetConfig(kind="unet", unet_base=16)
    with pytest.raises(ValueError, match=r"model.baseline_encoder_depth applies to model.kind=unet"):
        FUnetConfig(baseline_encoder_depth=4)
    with pytest.raises(ValueError, match="num_frames must be >= 1"):
        FUnetConfig(num_frames=0)
    with pytest.raises(ValueError, match="kind"):
        FUnetConfig(kind="transformer")


@pytest.mark.parametrize("kind", ["funet", "unet", "unet_s8"])
def test_every_parameter_gets_a_gradient(tiny, kind):
    """DDP fails on parameters that produce no loss: smp keeps ResNet's layer4 at depth 4; it must be dropped."""
    cfg = FUnetConfig(**tiny) if kind == "funet" else FUnetConfig(kind=kind, encoder_name="resnet18")
    m = build_model(cfg).train()
    m(torch.randn(1, 5 if kind == "funet" else 2, 3, 64, 64)).mean().backward()
    assert [n for n, p in m.named_parameters() if p.grad is None] == []
    nogate = build_model(FUnetConfig(**{**tiny, "frame_gate": False}))
    assert nogate.frame_attention is None  # the image pre-training stage builds no gate


def test_streaming_equals_the_last_frame_of_the_clip(tiny):
    """Causal streaming: frame t through the ring buffer == the last frame of clip [t-4..t] in clip mode."""
    m = FUnet(**tiny, temporal_fusion="gated_mean").eval()
    torch.nn.init.normal_(m.fusion.weight, std=0.5)
    x = torch.randn(1, 8, 3, 64, 64)
    sp = StreamingPredictor(m)
    outs = [sp.push(x[0, t]) for t in range(8)]
    with torch.no_grad():
        for t in (4, 6, 7):
            z, g = m(x[:, t - 4 : t + 1], return_gates=True)
            assert torch.allclose(outs[t][0], torch.sigmoid(z[0, -1, 0]), atol=1e-5)
            assert outs[t][1] == pytest.approx(float(g[0, -1]), abs=1e-5)
    # before 5 frames have arrived the buffer repeats the first frame (as a clip at the video start does)
    with torch.no_grad():
        z0 = m(x[:, [0, 0, 0, 0, 1]])
    assert torch.allclose(outs[1][0], torch.sigmoid(z0[0, -1, 0]), atol=1e-5)
    u = build_model(FUnetConfig(kind="unet", encoder_name="resnet18")).eval()
    p, g = StreamingPredictor(u).push(x[0, 0])
    with torch.no_grad():
        assert torch.allclose(p, torch.sigmoid(u(x[:, :1]))[0, 0, 0], atol=1e-5) and g != g  # NaN: no gate


def test_torchscript_export_of_the_streaming_step(tmp_path, tiny):
    from funet.predict import example_stream_inputs, export_stream_step

    m = FUnet(**tiny).eval()
    path = export_stream_step(m, (64, 64), tmp_path / "step.pt", "torchscript")
    loaded = torch.jit.load(str(path))
    ex = example_stream_inputs(m, (64, 64))
    with torch.no_grad():
        ref = StreamStep(m)(*ex)
        got = loaded(*ex)
    for a, b in zip(ref, got, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_encoder_weights_from_a_local_file(tmp_path, tiny):
    from tenfold_core.models import save_weights

    src = build_encoder("resnet18", 4, None)
    path = save_weights(src.state_dict(), tmp_path / "enc.safetensors")
    m = FUnet(**{**tiny, "encoder_weights": str(path)})
    for k, v in src.state_dict().items():
        assert torch.equal(m.encoder.state_dict()[k], v)
    u = build_model(FUnetConfig(kind="unet", encoder_name="resnet18", encoder_weights=str(path),
                                baseline_encoder_depth=4, baseline_decoder_channels=[16, 16, 8, 8]))  # fmt: skip
    assert torch.equal(u.unet.encoder.state_dict()["conv1.weight"], src.state_dict()["conv1.weight"])
    with pytest.raises(ModelLoadError, match="no such file"):
        FUnet(**{**tiny, "encoder_weights": str(tmp_path / "missing.pth")})
    with pytest.raises(ConfigError, match="unknown encoder"):
        build_encoder("no-such-encoder")


def test_res2net50_v1b_weights_saved_by_timm_load(tmp_path):
    """The paper's encoder: a state dict saved from timm's own res2net50d loads through load_encoder_weights."""
    timm = pytest.importorskip("timm")
    ref = timm.create_model("res2net50d", pretrained=False)
    torch.nn.init.normal_(ref.conv1[0].weight)  # something a random init would not reproduce
    torch.save(ref.state_dict(), tmp_path / "res2net50d.pth")
    enc = build_encoder("tu-res2net50d", 4, str(tmp_path / "res2net50d.pth"))
    got = dict(enc.named_parameters())
    assert torch.equal(got["model.conv1.0.weight"], ref.conv1[0].weight)
    assert torch.equal(got["model.layer3.0.convs.0.weight"], ref.layer3[0].convs[0].weight)
