import pytest
import torch
from funet import FUnet, FUnetConfig, PerFrameUNet, build_encoder
from funet.model import ChannelSelfAttention

from tenfold_core.errors import ConfigError, ModelLoadError


@pytest.mark.parametrize("hw", [(256, 448), (320, 320), (64, 96), (32, 64)])
def test_funet_output_shape_any_multiple_of_32(tiny, hw):
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


def test_per_frame_unet_and_input_checks(tiny):
    u = PerFrameUNet("resnet18", decoder_channels=(32, 16, 16, 8, 8)).eval()
    with torch.no_grad():
        assert u(torch.randn(2, 3, 3, 64, 96)).shape == (2, 3, 1, 64, 96)
    with pytest.raises(ValueError, match="divisible by 32"):
        u(torch.randn(1, 3, 3, 48, 64))
    m = FUnet(**tiny)
    with pytest.raises(ValueError, match=r"\[B, F, C, H, W\]"):
        m(torch.randn(5, 3, 64, 64))
    with pytest.raises(ValueError, match="5 frames"):
        m(torch.randn(1, 3, 3, 64, 64))


def test_encoder_weights_from_a_local_file(tmp_path, tiny):
    from tenfold_core.models import save_weights

    src = build_encoder("resnet18", 4, None)
    path = save_weights(src.state_dict(), tmp_path / "enc.safetensors")
    m = FUnet(**{**tiny, "encoder_weights": str(path)})
    for k, v in src.state_dict().items():
        assert torch.equal(m.encoder.state_dict()[k], v)
    u = PerFrameUNet("resnet18", encoder_weights=str(path), encoder_depth=4, decoder_channels=(16, 16, 8, 8))
    assert torch.equal(u.unet.encoder.state_dict()["conv1.weight"], src.state_dict()["conv1.weight"])
    with pytest.raises(ModelLoadError, match="no such file"):
        FUnet(**{**tiny, "encoder_weights": str(tmp_path / "missing.pth")})
    with pytest.raises(ConfigError, match="unknown encoder"):
        build_encoder("no-such-encoder")
