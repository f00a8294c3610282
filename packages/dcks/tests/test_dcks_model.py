"""The DCKS network on a tiny random BART: generation (beams, sampling, streaming), init switch, losses."""

import pytest
import torch
from dcks.config import DCKSConfig, DecodeConfig, LossConfig
from dcks.losses import dcks_loss, diversity_weights, generation_loss
from dcks.model import DCKS, DCKSDecoderLayer

B, R, L, T = 3, 5, 6, 7


def _model(**kw):
    torch.manual_seed(0)
    cfg = DCKSConfig(backbone="tiny", vocab_size=60, d_model=32, layers=2, heads=2, num_emotions=4,
                     emo_key_depth=16, emo_filter=32, **kw)  # fmt: skip
    return DCKS(cfg).eval()


def _inputs():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 60, (B, T), generator=g)
    kids = torch.randint(5, 60, (B, R, L), generator=g)
    kmask = torch.ones(B, R, L, dtype=torch.long)
    kmask[:, :, -2:] = 0
    return ids, torch.ones(B, T, dtype=torch.long), kids, kmask


def test_knowledge_encoder_initialised_from_bart_unless_switched_off():
    m = _model()
    enc, kenc = m.bart.model.encoder, m.knowledge_encoder
    assert torch.equal(enc.layers[0].self_attn.q_proj.weight, kenc.layers[0].self_attn.q_proj.weight)
    layer = m.bart.model.decoder.layers[1]
    assert isinstance(layer, DCKSDecoderLayer)
    assert torch.equal(layer.encoder_attn.k_proj.weight, layer.knowledge_attn.k_proj.weight)
    r = _model(init_knowledge_from_bart=False)
    assert not torch.equal(
        r.bart.model.encoder.layers[0].fc1.weight, r.knowledge_encoder.layers[0].fc1.weight
    )
    # the knowledge encoder shares BART's token embeddings (it has none of its own)
    assert m.knowledge_encoder.embed_tokens is None


def test_generate_with_beams_sampling_and_streamer_on_cpu():
    m = _model()
    ids, am, kids, km = _inputs()
    out = m.generate(ids, am, kids, km, DecodeConfig(num_beams=4, max_new_tokens=6))
    assert out["sequences"].shape[0] == B and out["sequences"].shape[1] <= 7
    assert out["relation_ranking"].shape == (B, R)
    assert sorted(out["relation_ranking"][0].tolist()) == list(range(R))
    assert out["emotion"].shape == (B,)
    torch.manual_seed(0)
    s1 = m.generate(ids, am, kids, km, DecodeConfig(num_beams=1, do_sample=True, max_new_tokens=6))[
        "sequences"
    ]
    torch.manual_seed(0)
    s2 = m.generate(ids, am, kids, km, DecodeConfig(num_beams=1, do_sample=True, max_new_tokens=6))[
        "sequences"
    ]
    assert torch.equal(s1, s2)

    class Collect:
        def __init__(self):
            self.chunks = []

        def put(self, x):
            self.chunks.append(x)

        def end(self):
            self.chunks.append("end")

    st = Collect()
    m.generate(ids[:1], am[:1], kids[:1], km[:1], DecodeConfig(num_beams=1, max_new_tokens=4), streamer=st)
    assert st.chunks[-1] == "end" and len(st.chunks) >= 3


def test_cached_generation_equals_the_full_forward():
    """Greedy generation with the KV/knowledge cache picks the argmax of a full teacher-forced forward."""
    m = _model()
    ids, am, kids, km = _inputs()
    seq = m.generate(ids, am, kids, km, DecodeConfig(num_beams=1, max_new_tokens=5, repetition_penalty=1.0))[
        "sequences"
    ]
    logits, _ = m(ids, am, kids, km, seq[:, :-1])
    assert torch.equal(logits.argmax(-1)[:, :], seq[:, 1:])


def test_knowledge_changes_the_decoder_output():
    m = _model()
    ids, am, kids, km = _inputs()
    dec = torch.randint(5, 60, (B, 4))
    a, _ = m(ids, am, kids, km, dec)
    kids2 = kids.clone()
    kids2[:, 4] = (kids2[:, 4] + 7) % 55 + 5
    b, _ = m(ids, am, kids2, km, dec)
    assert not torch.allclose(a, b)
    # masked knowledge tokens do not matter
    kids3 = kids.clone()
    kids3[:, :, -1] = 9
    c, _ = m(ids, am, kids3, km, dec)
    torch.testing.assert_close(a, c)


def test_generation_loss_ignores_padding_unless_code_mode():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 10)
    labels = torch.tensor([[3, 4, 5, 1], [6, 7, 1, 1]])  # pad id 1
    ignored = labels.masked_fill(labels == 1, -100)
    l1 = generation_loss(logits, ignored)
    logits2 = logits.clone()
    logits2[0, 3] = torch.randn(10) * 5  # change logits at a padded position
    logits2[1, 2:] = torch.randn(2, 10) * 5
    assert generation_loss(logits2, ignored) == pytest.approx(l1.item())
    assert generation_loss(logits2, labels) != pytest.approx(generation_loss(logits, labels).item())


def test_total_loss_parts_and_backward_reaches_every_parameter():
    m = _model().train()
    ids, am, kids, km = _inputs()
    dec = torch.randint(5, 60, (B, 4))
    labels = torch.randint(5, 60, (B, 4))
    emo = torch.tensor([0, 1, 2])
    logits, enc = m(ids, am, kids, km, dec, emotion_labels=emo)
    parts = dcks_loss(logits, labels, enc, emo, LossConfig(diversity_weight=0.5), torch.ones(60))
    assert set(parts) == {"gen_loss", "emo_loss", "aux_loss", "div_loss", "loss"}
    parts["loss"].backward()
    unused = [n for n, p in m.named_parameters() if p.grad is None]
    assert unused == [], unused  # DDP needs every parameter used
    assert enc.selection_weights is not None and enc.selection_weights.sum().item() == pytest.approx(1.0)


def test_context_ablation_builds_no_emotion_encoder():
    m = _model(emotion_source="context")
    assert m.emo_encoder is None


def test_diversity_weights_downweight_frequent_tokens():
    w = diversity_weights(torch.tensor([10.0, 5.0, 0.0, 0.0]))
    assert w[0] == 0 and w[1] < w[2] and w.mean().item() == pytest.approx(1.0)
