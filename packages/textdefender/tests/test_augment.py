"""ADA / MixADA (textdefender.augment): the training-set attack, the augmented set, its cache, hidden-space mixup."""

import dataclasses
import json

import pytest
import torch
from textdefender.config import DefenseConfig, TrainCommand


def _tiny_model(layers=2):
    from textdefender.model import DefendedClassifier, ModelConfig

    torch.manual_seed(0)
    model = DefendedClassifier(ModelConfig(encoder="tiny", vocab_size=40, tiny_hidden=16, tiny_layers=layers,
                                           max_length=16))  # fmt: skip
    return model.eval()


def test_selection_respects_filter_fraction_and_cap():
    from textdefender.augment import select_for_attack

    texts = ["a b c d e f"] * 30 + ["too short"] * 10
    d = DefenseConfig(name="ada", aug_fraction=0.5)
    idx = select_for_attack(texts, d)
    assert len(idx) == 15 and all(i < 30 for i in idx) and idx == sorted(set(idx))
    assert len(select_for_attack(texts, dataclasses.replace(d, aug_max_examples=4))) == 4
    assert select_for_attack(texts, d) == idx  # seeded
    assert select_for_attack(texts, dataclasses.replace(d, aug_seed=1)) != idx


def test_config_checks_name_the_field():
    with pytest.raises(ValueError, match="aug_fraction"):
        DefenseConfig(name="ada", aug_fraction=0.0)
    with pytest.raises(ValueError, match="aug_recipe"):
        DefenseConfig(name="ada", aug_recipe="hotflip")
    with pytest.raises(ValueError, match="mix_layers"):
        DefenseConfig(name="mixada", mix_layers=[])


def test_mixup_mixes_hidden_states_at_the_chosen_layer():
    """lam = 1 gives x1's logits and lam = 0 x2's (same masks); 0 < lam < 1 gives neither, i.e. the mix really
    happens (TextDefender's copy of MixText never mixes: its mix branch sits in an unreachable ``elif``)."""
    from textdefender.augment import mixed_logits

    model = _tiny_model()
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randint(5, 40, (3, 8), generator=g), torch.randint(5, 40, (3, 8), generator=g)
    m = torch.ones_like(x1)
    with torch.no_grad():
        l1 = model(input_ids=x1, attention_mask=m).logits
        l2 = model(input_ids=x2, attention_mask=m).logits
        for layer in (0, 1, 2, 12):  # 12: clamped to the last of the 2 layers
            assert torch.allclose(mixed_logits(model, x1, m, x2, m, 1.0, layer), l1, atol=1e-5)
            assert torch.allclose(mixed_logits(model, x1, m, x2, m, 0.0, layer), l2, atol=1e-5)
            half = mixed_logits(model, x1, m, x2, m, 0.5, layer)
            assert not torch.allclose(half, l1, atol=1e-4) and not torch.allclose(half, l2, atol=1e-4)
        # after the last layer, the mixture of hidden states is what the pooler sees
        assert not torch.allclose(
            mixed_logits(model, x1, m, x2, m, 0.5, 1), mixed_logits(model, x1, m, x2, m, 0.5, 2)
        )


def test_mixup_loss_targets_and_gradient():
    from textdefender.augment import mixup_loss

    model = _tiny_model(1).train()
    ids = torch.randint(5, 40, (6, 8))
    mask = torch.ones_like(ids)
    y = torch.tensor([0, 1, 0, 1, 1, 0])
    d = DefenseConfig(name="mixada", mix_layers=[0, 1])
    torch.manual_seed(1)
    loss = mixup_loss(model, ids, mask, y, d)
    loss.backward()
    assert loss.item() > 0 and all(p.grad is not None for p in model.net.bert.encoder.parameters())
    # identical pairs (all one class, one input): the target is one-hot, the loss is the plain cross-entropy
    model.eval()
    same = torch.randint(5, 40, (1, 8)).repeat(4, 1)
    with torch.no_grad():
        ce = torch.nn.functional.cross_entropy(model(input_ids=same, attention_mask=torch.ones_like(same)).logits,
                                               torch.zeros(4, dtype=torch.long))  # fmt: skip
        kl = mixup_loss(model, same, torch.ones_like(same), torch.zeros(4, dtype=torch.long), d)
    assert abs(kl.item() - ce.item()) < 1e-5


@pytest.fixture(scope="module")
def victim_and_ada(tmp_path_factory):
    """A tiny victim fine-tuned on the synthetic language, and ADA / MixADA trained from it on clean + adversarial."""
    from textdefender.train import train

    from tenfold_core.cli import load_preset

    root = tmp_path_factory.mktemp("aug")
    base = load_preset("textdefender", "demo", "train")
    data, model = (
        base.data,
        base.model,
    )  # the demo's language (600 sentences) and tiny BERT (d = 64, 2 layers)
    vcfg = TrainCommand(model=model, data=data, defense=DefenseConfig(name="base"),
                        train=dataclasses.replace(base.train, out_dir=str(root / "victim"), max_epochs=6, seed=0),
                        optim=base.optim)  # fmt: skip
    train(vcfg)
    runs = {}
    for name in ("ada", "mixada"):
        d = DefenseConfig(name=name, aug_recipe="textfooler", aug_max_examples=300, mix_layers=[0, 1, 2])
        cfg = dataclasses.replace(vcfg, defense=d, model=dataclasses.replace(model, init_from=str(root / "victim")),
                                  train=dataclasses.replace(vcfg.train, out_dir=str(root / name), max_epochs=2),
                                  optim=dataclasses.replace(base.optim, lr=1e-3))  # fmt: skip
        runs[name] = (cfg, train(cfg))
    return root, vcfg, runs


def test_ada_adds_successful_adversarial_examples_with_true_labels(victim_and_ada):
    from textdefender.data import load_data
    from textdefender.evaluate import load_trained

    from tenfold_core.attack import Victim

    root, vcfg, runs = victim_and_ada
    cfg, _ = runs["ada"]
    summary = json.loads((root / "ada" / "augment" / "summary.json").read_text())
    adv = [json.loads(ln) for ln in (root / "ada" / "augment" / "adversarial.jsonl").read_text().splitlines()]
    assert summary["attacked"] == 300 and summary["succeeded"] == len(adv) >= 5, summary
    data = load_data(vcfg.data)
    model, tok, _ = load_trained(root / "victim")
    victim = Victim(model, tok, max_length=model.config.max_length)
    pred = victim.predict([a["text"] for a in adv])
    for a, p in zip(adv, pred):
        clean = data.train.texts[a["index"]]
        assert a["label"] == data.train.labels[a["index"]] != p  # true label kept; the victim is fooled
        changed = sum(u != v for u, v in zip(clean.split(), a["text"].split()))
        assert len(clean.split()) == len(a["text"].split()) and 1 <= changed <= 0.3 * len(clean.split()) + 1
    # the effect: the ADA model, trained on them, gets most of the victim's adversarial examples right
    ada, atok, _ = load_trained(root / "ada")
    fixed = (
        Victim(ada, atok, max_length=32).predict([a["text"] for a in adv]) == [a["label"] for a in adv]
    ).mean()
    assert fixed >= 0.6, fixed


def test_augmented_set_is_cached_and_keyed(victim_and_ada, monkeypatch):
    import textdefender.augment as aug
    from textdefender.data import load_data

    root, vcfg, runs = victim_and_ada
    cfg, _ = runs["ada"]
    data = load_data(cfg.data)

    def boom(*a, **k):
        raise AssertionError("attacked again")

    monkeypatch.setattr(aug, "adversarial_examples", boom)
    texts, labels, info = aug.augmented_training_set(cfg, data)  # same settings: read from the cache
    assert len(texts) == 600 + info["aug_added"] and texts[:600] == list(data.train.texts)
    assert labels[600:] == [json.loads(ln)["label"] for ln in
                            (root / "ada" / "augment" / "adversarial.jsonl").read_text().splitlines()]  # fmt: skip
    only = dataclasses.replace(cfg, defense=dataclasses.replace(cfg.defense, aug_data="adv"))
    assert len(aug.augmented_training_set(only, data)[0]) == info["aug_added"]
    other = dataclasses.replace(cfg, defense=dataclasses.replace(cfg.defense, aug_k=5))
    with pytest.raises(AssertionError, match="attacked again"):  # another protocol: another fingerprint
        aug.augmented_training_set(other, data)


def test_mixada_trains_from_the_same_augmented_set(victim_and_ada):
    root, _, runs = victim_and_ada
    a = (root / "ada" / "augment" / "adversarial.jsonl").read_text()
    assert (root / "mixada" / "augment" / "adversarial.jsonl").read_text() == a  # same victim, same protocol
    assert runs["mixada"][1]["best_val_acc"] > 0.6


def test_benchmark_attacks_the_training_set_under_its_own_protocol():
    """In a benchmark, ADA / MixADA attack with the benchmark's synonyms / K / rho_max / similarity / budget, against
    that seed's base run when base is benchmarked before them (else the pre-trained stage, model.init_from)."""
    from textdefender.benchmark import _defense_cfg
    from textdefender.config import AttackConfig, BenchmarkCommand

    attack = AttackConfig(k=7, max_rate=0.2, query_factor=10, similarity_threshold=0.5, synonyms="victim")
    cfg = BenchmarkCommand(defenses=["base", "ada", "mixada"], attack=attack, out="B")
    d = _defense_cfg(cfg, "mixada", 3)
    assert (d.aug_k, d.aug_max_rate, d.aug_query_factor, d.aug_similarity, d.aug_synonyms) == (
        7,
        0.2,
        10,
        0.5,
        "victim",
    )
    assert d.aug_victim.endswith("runs/base-seed3") and d.aug_recipe == "pwws"
    late = BenchmarkCommand(defenses=["ada", "base"], attack=attack, out="B")
    assert _defense_cfg(late, "ada", 3).aug_victim == ""
    assert _defense_cfg(cfg, "base", 3).aug_k == 50  # other defenses keep their own section
