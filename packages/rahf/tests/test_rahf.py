import dataclasses
import json

import pytest
import torch
from rahf.config import AlignCommand, AlignLossConfig, LMConfig, PrefDataConfig, SCITCommand, SFTCommand
from rahf.data import encode, get_splits, load_pairs, split_pairs, synthetic_pairs
from rahf.losses import align_loss, dpo_loss, scit_loss

from tenfold_core.config import OptimConfig, TrainConfig
from tenfold_core.errors import DataError

MODEL = LMConfig(hidden=32, layers=3, heads=2)
DATA = PrefDataConfig(n_pairs=500, test_size=60, batch_size=16, max_response_len=12)


def _train(out, epochs=1):
    return TrainConfig(out_dir=str(out), max_epochs=epochs, progress_bar=False, loggers=[], monitor=None,
                       accelerator="cpu", devices="1", log_every_n_steps=1000)  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """SFT on both responses, then SCIT: the tiny pipeline the tests below share."""
    from rahf.train import scit, sft

    root = tmp_path_factory.mktemp("rahf")
    sft(SFTCommand(model=MODEL, data=DATA, train=_train(root / "sft", 4), optim=OptimConfig(lr=3e-3)))
    scit(SCITCommand(model=MODEL, data=DATA, init=str(root / "sft"), train=_train(root / "scit", 3),
                     optim=OptimConfig(lr=3e-3)))  # fmt: skip
    return root


def _align(runs, name, alpha, epochs=2, **kw):
    from rahf.train import align

    cfg = AlignCommand(model=MODEL, data=DATA, source=str(runs / "scit"), train=_train(runs / name, epochs),
                       optim=OptimConfig(lr=3e-3), align=AlignLossConfig(alpha=alpha, target_layers=[1, 2], **kw))  # fmt: skip
    return cfg, align(cfg)


# ----------------------------------------------------------------------------------------------------- losses
def test_align_loss_matches_hand_computation_on_2x3():
    h = torch.tensor(
        [[[[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]], [[1.0, 1.0], [0.0, 0.0], [5.0, 5.0]]]]
    )  # [1, 2, 3, 2]
    t = torch.zeros_like(h)
    valid = torch.tensor([[True, True, False], [True, False, False]])
    # per-token norms on valid tokens: 1, 2, sqrt(2); squared: 1, 4, 2
    assert align_loss(h, t, valid, "l2", "masked").item() == pytest.approx((1 + 2 + 2**0.5) / 3)
    assert align_loss(h, t, valid, "sq_l2", "masked").item() == pytest.approx(7 / 3)
    assert align_loss(h, t, valid, "l2", "code").item() == pytest.approx((1 + 2 + 2**0.5) / 6)


def test_scit_and_dpo_losses_match_formulas():
    s_m, n_m = torch.tensor([-2.0, -6.0]), torch.tensor([2.0, 3.0])
    s_o, n_o = torch.tensor([-4.0, -3.0]), torch.tensor([2.0, 3.0])
    tok = torch.zeros(2, 4)
    loss, parts = scit_loss((s_m, n_m, tok), (s_o, n_o, tok), eps=0.2)
    pm, po = torch.exp(s_m / n_m), torch.exp(s_o / n_o)
    q = pm / (pm + po)
    contrast = (-(0.8 * torch.log(q) + 0.2 * torch.log(1 - q))).mean()
    assert parts["contrast"].item() == pytest.approx(contrast.item(), rel=1e-5)
    assert loss.item() == pytest.approx(8 / 5 + contrast.item(), rel=1e-5)
    l, acc = dpo_loss(
        torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-2.0]), 0.5
    )
    assert l.item() == pytest.approx(-torch.nn.functional.logsigmoid(torch.tensor(1.0)).item())
    assert acc.item() == 1.0


# ------------------------------------------------------------------------------------------------------- data
def test_split_is_reproducible_and_disjoint():
    pairs = synthetic_pairs(100, 0)
    a, b = split_pairs(pairs, 10, 42), split_pairs(pairs, 10, 42)
    assert a == b
    assert (len(a["rm"]), len(a["ppo"]), len(a["test"])) == (45, 45, 10)
    assert split_pairs(pairs, 10, 1)["test"] != a["test"]


def test_malformed_jsonl_names_file_line_and_field(tmp_path, capsys):
    from rahf.cli import main

    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "hi", "chosen": "a", "rejected": "b"}\n{"prompt": "hi", "chosen": "a"}\n')
    with pytest.raises(DataError, match=r"p.jsonl:2: missing field 'rejected'"):
        load_pairs(PrefDataConfig(source=str(f)))
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(tmp_path), "--data.source", str(f)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_response_tokens_line_up_across_instruction_rows():
    from rahf.model import start_model

    from tenfold_core.llm import gather_response

    pairs = get_splits(DATA)["rm"][:6]
    _, tok = start_model(MODEL, None, pairs)
    prompts, resp = [p.prompt for p in pairs], [p.chosen for p in pairs]
    rows = [encode(tok, prompts, resp, DATA, system="good", padding_side="left"),
            encode(tok, prompts, resp, DATA, system="bad bad bad", padding_side="right"),
            encode(tok, prompts, resp, DATA, padding_side="right")]  # fmt: skip
    packed = [gather_response(e["input_ids"].unsqueeze(-1), e["response_mask"]) for e in rows]
    assert all(torch.equal(packed[0][0], p[0]) and torch.equal(packed[0][1], p[1]) for p in packed)
    first = tok.convert_ids_to_tokens(packed[0][0][0, :, 0].tolist())
    assert first[: len(resp[0].split())] == resp[0].split()


# ------------------------------------------------------------------------------------------------ the method
def test_cache_round_trip_equals_on_the_fly(runs, tmp_path):
    from rahf.cache import DirectionCache
    from rahf.model import load_policy
    from rahf.train import align_rows, build_direction_cache, directions

    cfg = AlignCommand(model=MODEL, data=DATA, source=str(runs / "scit"), cache_dir=str(tmp_path),
                       align=AlignLossConfig(target_layers=[1, 3]))  # fmt: skip
    rows = align_rows(get_splits(DATA)["ppo"][:20], "random", 0)
    model, tok = load_policy(runs / "scit")
    cache = build_direction_cache(cfg, rows, model, tok)
    live = list(
        directions(model, model, tok, rows, DATA, [1, 3], cfg.align.good_prompt, cfg.align.bad_prompt, 7)
    )
    assert len(cache) == len(live) == 20
    reopened = DirectionCache(cache.path)
    assert isinstance(reopened.v, __import__("numpy").memmap) and reopened.v.dtype.name == "float16"
    for i in range(20):
        assert reopened[i].shape == live[i].shape
        assert torch.allclose(reopened[i], live[i], atol=2e-3, rtol=2e-3)
    assert max(float(v.abs().max()) for v in live) > 1e-3  # a real direction, not zeros
    assert build_direction_cache(cfg, rows, model, tok).path == cache.path  # reused


def test_alpha_zero_leaves_the_model_unchanged(runs):
    from rahf.model import load_policy

    _, info = _align(runs, "a0", 0.0, epochs=1)
    a, _ = load_policy(runs / "a0")
    b, _ = load_policy(runs / "scit")
    sb = b.state_dict()
    assert info["align_loss_first"] == 0.0
    assert all(torch.equal(v, sb[k]) for k, v in a.state_dict().items())


def test_align_loss_decreases_states_move_along_v_and_win_rate_rises(runs):
    from rahf.evaluate import win_rate
    from rahf.model import load_policy

    cfg, info = _align(runs, "a3", 1.0, epochs=3)
    assert info["align_loss_last"] < 0.7 * info["align_loss_first"]
    assert info["cos_dA_v"] > 0.5  # 0 before training (the LoRA starts as the identity)
    test = get_splits(DATA)["test"]
    base, tok = load_policy(runs / "sft")
    aligned, tok2 = load_policy(runs / "a3")
    before, after = win_rate(base, tok, test, DATA), win_rate(aligned, tok2, test, DATA)
    assert after > before + 0.15, (before, after)
    conf = json.loads((runs / "a3" / "config.json").read_text())
    assert conf["rahf"]["merged"] is True and "lora" not in " ".join(aligned.state_dict())


def test_squared_and_code_switches_train(runs):
    _, info = _align(runs, "a_code", 3.0, epochs=1, norm="l2", reduction="code")
    assert info["align_loss_last"] < info["align_loss_first"]


def test_dpo_raises_the_margin(runs):
    from rahf.config import DPOCommand
    from rahf.evaluate import win_rate
    from rahf.model import load_policy
    from rahf.train import dpo

    dpo(DPOCommand(model=MODEL, data=DATA, init=str(runs / "sft"), train=_train(runs / "dpo", 1),
                   optim=OptimConfig(lr=1e-3)))  # fmt: skip
    test = get_splits(DATA)["test"]
    base, tok = load_policy(runs / "sft")
    pol, _ = load_policy(runs / "dpo")
    assert win_rate(pol, tok, test, DATA) > win_rate(base, tok, test, DATA)


def test_lora_skips_blocks_above_the_top_target_layer():
    from rahf.model import add_lora, start_model

    model, _ = start_model(dataclasses.replace(MODEL, layers=3), None, [])
    peft_model = add_lora(model, 4, 8, 0.0, ["q_proj", "v_proj"], 2)
    names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert names and all(".layers.0." in n or ".layers.1." in n for n in names)
