"""Embedding-space adversarial training: pass counts, projection, equivalences, surrogate gradient."""

import pytest
import torch
import torch.nn.functional as F

from tenfold_core.adversarial import (
    EmbeddingAdversary,
    ascent_step,
    init_delta,
    input_embedding_layer,
    project,
    surrogate_loss,
)
from tenfold_core.errors import ConfigError


def _tiny(seed=0):
    from transformers import BertForSequenceClassification

    from tenfold_core.models import tiny_bert_config

    torch.manual_seed(seed)
    m = BertForSequenceClassification(
        tiny_bert_config(vocab_size=50, hidden=16, layers=1, heads=2, max_len=16)
    )
    m.eval()  # no dropout: exact comparisons
    ids = torch.randint(5, 50, (4, 8))
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    y = torch.tensor([0, 1, 1, 0])
    return m, ids, mask, y


def _loss_fn(m, mask, y, counter=None):
    def f(embeds):
        if counter is not None:
            counter.append(1)
        return F.cross_entropy(m(inputs_embeds=embeds, attention_mask=mask).logits, y)

    return f


@pytest.mark.parametrize("method,k,expected", [("freelb", 1, 1), ("freelb", 7, 7), ("pgd", 5, 6)])
def test_pass_counts(method, k, expected):
    m, ids, mask, y = _tiny()
    calls = []
    bw = []
    m.classifier.register_full_backward_hook(lambda *a: bw.append(1))
    adv = EmbeddingAdversary(method, steps=k, init_mag=0.05, step_size=0.03, max_norm=0.0)
    adv.loss(m, _loss_fn(m, mask, y, calls), ids, mask)
    assert adv.forward_passes == expected == len(calls)
    assert adv.backward_passes == expected == len(bw)


def test_no_projection_when_max_norm_zero():
    m, ids, mask, y = _tiny()
    free = EmbeddingAdversary("freelb", steps=10, init_mag=0.05, step_size=0.5, max_norm=0.0)
    free.gradients(m, _loss_fn(m, mask, y), ids, mask)
    norms = free.last.delta_norms
    assert all(b > a for a, b in zip(norms, norms[1:]))  # keeps growing
    assert norms[-1] > 1.0  # far beyond the 0.3 bound below
    bound = EmbeddingAdversary("freelb", steps=10, init_mag=0.05, step_size=0.5, max_norm=0.3)
    bound.gradients(m, _loss_fn(m, mask, y), ids, mask)
    per_ex = bound.last.delta.reshape(4, -1).norm(dim=1)
    assert (per_ex <= 0.3 + 1e-5).all()
    d = torch.randn(3, 4, 5)
    assert torch.equal(project(d, 0.0), d)


def test_freelb_one_step_no_init_is_plain_gradient():
    m, ids, mask, y = _tiny()
    params = [p for p in m.parameters() if p.requires_grad]
    loss = F.cross_entropy(m(input_ids=ids, attention_mask=mask).logits, y)
    ref = torch.autograd.grad(loss, params, allow_unused=True)
    adv = EmbeddingAdversary("freelb", steps=1, init_mag=0.0, step_size=0.1)
    res = adv.gradients(m, _loss_fn(m, mask, y), ids, mask, params)
    assert torch.allclose(res.loss, loss.detach())
    for a, b in zip(ref, res.grads):
        if a is None:
            assert b is None
        else:
            assert torch.allclose(a, b, atol=1e-6)


def test_surrogate_carries_accumulated_gradient_and_value():
    m, ids, mask, y = _tiny()
    params = [p for p in m.parameters() if p.requires_grad]
    adv = EmbeddingAdversary("freelb", steps=3, init_mag=0.08, step_size=0.04)
    torch.manual_seed(1)
    res = adv.gradients(m, _loss_fn(m, mask, y), ids, mask, params)
    s = surrogate_loss(res.loss, params, res.grads)
    assert torch.allclose(s, res.loss)
    m.zero_grad()
    s.backward()
    for p, g in zip(params, res.grads):
        if g is not None:
            assert torch.allclose(p.grad, g)
    # the mean of three ascent steps' losses is what the surrogate reports
    assert abs(float(res.loss) - sum(res.losses) / 3) < 1e-5


def test_adversarial_loss_is_higher_than_clean():
    m, ids, mask, y = _tiny()
    clean = float(F.cross_entropy(m(input_ids=ids, attention_mask=mask).logits, y).detach())
    adv = EmbeddingAdversary("pgd", steps=5, init_mag=0.0, step_size=1.0, max_norm=0.0)
    res = adv.gradients(m, _loss_fn(m, mask, y), ids, mask)
    assert res.losses[-1] > clean + 1e-3  # the ascent raises the loss


def test_init_and_step_shapes_and_mask():
    e = torch.zeros(2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    d = init_delta(e, mask, 0.1, generator=torch.Generator().manual_seed(0))
    assert torch.all(d[0, 3:] == 0)
    # |U(-1,1)| <= 1, scaled by init / sqrt(len * D)
    assert d[0].abs().max() <= 0.1 / (3 * 4) ** 0.5 + 1e-7
    g = torch.randn(2, 5, 4)
    s = ascent_step(torch.zeros_like(g), g, 0.5)
    assert torch.allclose(s.reshape(2, -1).norm(dim=1), torch.full((2,), 0.5))
    assert torch.equal(ascent_step(torch.zeros_like(g), g, 0.5, "linf").abs(), torch.full_like(g, 0.5))


def test_bad_settings_and_embedding_lookup():
    with pytest.raises(ConfigError):
        EmbeddingAdversary("fgsm")
    with pytest.raises(ConfigError):
        EmbeddingAdversary("freelb", steps=0)
    with pytest.raises(ConfigError):
        input_embedding_layer(torch.nn.Linear(2, 2))
    m, *_ = _tiny()
    assert input_embedding_layer(m) is m.bert.embeddings.word_embeddings
