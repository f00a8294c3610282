"""Spiking Transformer blocks: shapes (odd N, D), the attention formula, key-padding invariance."""

import pytest
import torch

from tenfold_core.spiking import (
    SpikingMLP,
    SpikingSelfAttention,
    SpikingTransformerBlock,
    TokenNorm,
    lif_multi_step,
)


def _x(T=2, B=3, N=7, D=15, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, N, D, generator=g) < 0.3).float() * 2 + torch.randn(
        T, B, N, D, generator=g
    ) * 0.3


@pytest.mark.parametrize("norm", ["layer", "batch"])
@pytest.mark.parametrize("lif_position", ["post", "pre"])
@pytest.mark.parametrize(("N", "D", "heads"), [(7, 15, 3), (1, 5, 5), (9, 21, 1)])
def test_block_shapes_odd_sizes_and_backward(norm, lif_position, N, D, heads):
    torch.manual_seed(0)
    blk = SpikingTransformerBlock(D, heads, mlp_ratio=2.0, norm=norm, lif_position=lif_position)
    x = _x(N=N, D=D).requires_grad_(True)
    y = blk(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert blk.attn.q.linear.weight.grad is not None
    assert blk.mlp.fc1.linear.weight.grad.abs().sum() > 0


def test_post_branches_emit_spikes_and_residual_counts():
    torch.manual_seed(1)
    ssa = SpikingSelfAttention(16, 4)
    mlp = SpikingMLP(16, 24, out_dim=10)
    x = _x(D=16)
    a = ssa(x)
    m = mlp(x)
    assert m.shape == (2, 3, 7, 10)
    assert set(a.unique().tolist()) <= {0.0, 1.0} and set(m.unique().tolist()) <= {0.0, 1.0}
    s = (x > 0).float()  # spike input -> the residual stream holds integer counts
    blk = SpikingTransformerBlock(16, 4)
    y = blk(s)
    assert torch.equal(y, torch.round(y)) and y.max() <= 3


def test_attention_formula_matches_manual_computation():
    torch.manual_seed(2)
    D, H = 12, 3
    ssa = SpikingSelfAttention(D, H, qk_scale=0.25, attn_v_threshold=0.5, surrogate="sigmoid")
    x = _x(D=D)
    q, k, v = ssa.q(x), ssa.k(x), ssa.v(x)
    T, B, N, _ = x.shape
    qh, kh, vh = (t.reshape(T, B, N, H, D // H) for t in (q, k, v))
    prod = torch.einsum("tbnhd,tbmhd->tbhnm", qh, kh)
    out = torch.einsum("tbhnm,tbmhd->tbnhd", prod, vh).reshape(T, B, N, D) * 0.25
    expected = ssa.proj(lif_multi_step(out, v_threshold=0.5, surrogate="sigmoid"))
    assert torch.equal(ssa(x), expected)
    assert ssa.attn_lif.v_threshold == 0.5 and ssa.q.lif.v_threshold == 1.0


def _excite(module):
    """Raise the firing rates (norm gain 3, bias 0.5) so the attention branch is busy and leaks are visible."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, TokenNorm):
                m.norm.weight.fill_(3.0)
                m.norm.bias.fill_(0.5)
    return module


def _padded_pair(B=3, N=9, D=16, seed=3):
    x = _x(B=B, N=N, D=D, seed=seed)
    lengths = torch.tensor([N, 5, 2])[:B]
    pad = torch.arange(N)[None, :] >= lengths[:, None]  # True = padded
    garbage = x.clone()
    garbage[:, pad] = torch.randn(x.shape[0], int(pad.sum()), D) * 5 + 3
    return x, garbage, pad


@pytest.mark.parametrize("norm", ["layer", "batch"])
@pytest.mark.parametrize("lif_position", ["post", "pre"])
def test_padding_does_not_change_non_padded_outputs(norm, lif_position):
    torch.manual_seed(4)
    blk = _excite(SpikingTransformerBlock(16, 4, qk_scale=1.0, norm=norm, lif_position=lif_position).train())
    x, garbage, pad = _padded_pair()
    keep = ~pad
    assert blk.attn(x, key_padding_mask=pad)[:, keep].mean() > 0.05  # the attention branch is active
    y1 = blk(x, key_padding_mask=pad)
    y2 = blk(garbage, key_padding_mask=pad)
    torch.testing.assert_close(y1[:, keep], y2[:, keep], rtol=1e-5, atol=1e-5)
    # without the mask the garbage does leak into the real tokens (so the check above can fail)
    n1, n2 = blk(x), blk(garbage)
    assert not torch.allclose(n1[:, keep], n2[:, keep])


def test_masked_equals_truncated_sequence():
    torch.manual_seed(5)
    ssa = _excite(SpikingSelfAttention(16, 2, qk_scale=1.0))
    x = _x(B=1, N=8, D=16, seed=6)
    pad = torch.zeros(1, 8, dtype=torch.bool)
    pad[0, 5:] = True
    full = ssa(x, key_padding_mask=pad)
    short = ssa(x[:, :, :5])
    assert torch.equal(full[:, :, :5], short)
    assert short.mean() > 0.05
    assert not torch.equal(ssa(x)[:, :, :5], short)  # unmasked padding would change them


def test_batchnorm_masked_statistics_use_valid_tokens_only():
    norm = TokenNorm(4, "batch").train()
    x = torch.randn(2, 2, 3, 4)
    pad = torch.tensor([[False, False, True], [False, True, True]])
    y = norm(x, pad)
    valid = x[:, ~pad]  # [T, M, D]
    ref = torch.nn.functional.batch_norm(valid.reshape(-1, 4), None, None, training=True)
    torch.testing.assert_close(y[:, ~pad].reshape(-1, 4), ref)
    assert torch.equal(y[:, pad], torch.zeros_like(y[:, pad]))
    with pytest.raises(ValueError):
        TokenNorm(4, "group")


def test_bad_arguments():
    with pytest.raises(ValueError, match="divisible"):
        SpikingSelfAttention(10, 3)
    ssa = SpikingSelfAttention(8, 2)
    with pytest.raises(ValueError, match="key_padding_mask"):
        ssa(torch.zeros(2, 1, 4, 8), key_padding_mask=torch.zeros(1, 5, dtype=torch.bool))
    with pytest.raises(ValueError):
        SpikingMLP(8, lif_position="middle")


@pytest.mark.parametrize("lif_position", ["post", "pre"])
def test_block_fast_and_reference_backends_agree(lif_position):
    torch.manual_seed(7)
    fast = _excite(SpikingTransformerBlock(16, 4, qk_scale=1.0, lif_position=lif_position, backend="fast"))
    ref = SpikingTransformerBlock(16, 4, qk_scale=1.0, lif_position=lif_position, backend="reference")
    ref.load_state_dict(fast.state_dict())
    x = _x(D=16, seed=8)
    outs = []
    for blk in (fast, ref):
        xx = x.clone().requires_grad_(True)
        y = blk(xx)
        y.pow(2).sum().backward()
        outs.append((y.detach(), xx.grad, blk.attn.q.linear.weight.grad))
    assert torch.equal(outs[0][0], outs[1][0])
    torch.testing.assert_close(outs[0][1], outs[1][1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(outs[0][2], outs[1][2], rtol=1e-4, atol=1e-5)
    assert outs[0][1].abs().sum() > 0
