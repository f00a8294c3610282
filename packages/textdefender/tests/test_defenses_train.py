"""TA-VAT, InfoBERT, ASCC, DNE, SAFER train the tiny task through ``train`` (tenfold_core.train.fit) to above chance.

The package's protocol for tiny encoders trained from scratch (the demo's, the benchmark's ``pretrain_epochs``): a
clean tiny model stands in for the pre-trained encoder and every defense fine-tunes from it (embedding-space
adversarial training from a random tiny BERT stays at chance, FreeLB's included). The pre-trained stand-in is
itself trained here, and each defense is checked with its own test-time inference (ensembles for DNE / SAFER).
"""

import dataclasses

import pytest
import torch
from textdefender.defenses import NEW_DEFENSES


def _cfg(out, name="base", epochs=4, lr=3e-3, init_from=""):
    from tenfold_core.cli import load_preset

    cfg = load_preset("textdefender", "tiny", "train")
    data = dataclasses.replace(cfg.data, n_train=384, n_dev=64, n_test=96, but_prob=0.0, negation_prob=0.2,
                               batch_size=16)  # fmt: skip
    defense = dataclasses.replace(cfg.defense, name=name, ensemble=10, dne_ensemble=4)
    return dataclasses.replace(
        cfg, data=data, defense=defense, model=dataclasses.replace(cfg.model, init_from=init_from),
        train=dataclasses.replace(cfg.train, out_dir=str(out), max_epochs=epochs, seed=0),
        optim=dataclasses.replace(cfg.optim, lr=lr),
    )  # fmt: skip


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    from textdefender.train import train

    root = tmp_path_factory.mktemp("td-defenses")
    info = train(_cfg(root / "pretrain"))
    return root, info


@pytest.mark.parametrize("name", NEW_DEFENSES)
def test_defense_trains_tiny_task_above_chance(pretrained, name):
    from textdefender.data import load_data
    from textdefender.evaluate import clean_accuracy, load_trained, victims_of
    from textdefender.train import train

    root, pre = pretrained
    cfg = _cfg(root / name, name, epochs=2, lr=5e-4, init_from=pre["out_dir"])
    info = train(cfg)
    assert info["defense"] == name and info["best_val_acc"] is not None
    model, tok, conf = load_trained(info["out_dir"])
    init, _, _ = load_trained(pre["out_dir"])
    moved = sum(float((a - b).abs().sum()) for a, b in zip(model.parameters(), init.parameters()))
    assert moved > 0  # the defense really trained the exported weights
    test = load_data(cfg.data).test
    victims = victims_of(model, tok, conf["defense"], eot=2)
    assert set(victims) == ({"ensemble", "eot"} if name in ("safer", "dne") else {"plain"})
    for mode, v in victims.items():
        acc = clean_accuracy(v, test.texts, test.labels)
        assert acc >= 70.0, (name, mode, acc)  # chance is 50 %
    if name in ("ascc", "dne", "safer"):  # the defender's table is kept with the run (the ensembles use it)
        assert (root / name / "synonyms.json").is_file()
    assert all(torch.isfinite(p).all() for p in model.parameters())
