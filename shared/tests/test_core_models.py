import pytest
import torch
from torch import nn

from tenfold_core.errors import ModelLoadError
from tenfold_core.models import (
    count_parameters,
    load_pretrained,
    load_state_dict_checked,
    load_weights,
    save_weights,
    strip_prefixes,
    tiny_bart_config,
    tiny_bert_config,
    tiny_clip_config,
    tiny_gpt2_config,
    tiny_llama_config,
    word_level_tokenizer,
)


def small():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def test_prefixed_checkpoint_loads(tmp_path):
    src = small()
    state = {"module._orig_mod." + k: v for k, v in src.state_dict().items()}
    torch.save(state, tmp_path / "ddp.pt")
    dst = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    load_state_dict_checked(dst, tmp_path / "ddp.pt")
    for a, b in zip(src.parameters(), dst.parameters()):
        assert torch.equal(a, b)


def test_nothing_matched_fails_loudly():
    dst = small()
    with pytest.raises(ModelLoadError, match="no parameter name matches"):
        load_state_dict_checked(dst, {"encoder.weight": torch.zeros(8, 4)})
    with pytest.raises(ModelLoadError, match="shape mismatch"):
        load_state_dict_checked(dst, {"0.weight": torch.zeros(3, 4)})
    partial = {k: v for k, v in small().state_dict().items() if k.startswith("0.")}
    with pytest.raises(ModelLoadError, match="2 missing"):
        load_state_dict_checked(dst, partial, min_fraction=0.0)
    info = load_state_dict_checked(dst, partial, strict=False, min_fraction=0.5)
    assert info["missing"] == ["2.weight", "2.bias"]
    with pytest.raises(ModelLoadError, match="only 1 of 4"):
        load_state_dict_checked(dst, {"0.weight": partial["0.weight"]}, strict=False)


def test_lightning_prefix(tmp_path):
    src = small()
    ckpt = {"state_dict": {"model." + k: v for k, v in src.state_dict().items()}, "epoch": 3}
    torch.save(ckpt, tmp_path / "x.ckpt")
    dst = small()
    nn.init.zeros_(dst[0].weight)
    load_state_dict_checked(dst, tmp_path / "x.ckpt", prefix="model.")
    assert torch.equal(dst[0].weight, src[0].weight)


def test_safetensors_roundtrip_and_weights_only(tmp_path):
    m = small()
    p = save_weights(m, tmp_path / "w.safetensors", config={"width": 8})
    assert (tmp_path / "w.json").read_text().strip().startswith("{")
    state = load_weights(p)
    assert set(state) == set(m.state_dict())

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ModelLoadError, match="not a readable checkpoint"):
        load_weights(tmp_path / "evil.pt")
    with pytest.raises(ModelLoadError, match="no such checkpoint"):
        load_weights(tmp_path / "none.pt")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(ModelLoadError):
        load_weights(tmp_path / "junk.safetensors")


def test_tied_weights_save(tmp_path):
    emb = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)
    head.weight = emb.weight
    m = nn.ModuleDict({"emb": emb, "head": head})
    save_weights(m, tmp_path / "t.safetensors")
    assert torch.equal(load_weights(tmp_path / "t.safetensors")["head.weight"], emb.weight.detach())


def test_strip_prefixes():
    assert list(strip_prefixes({"module.module.a": 1, "_orig_mod.b": 2, "c": 3})) == ["a", "b", "c"]


def test_tiny_configs_build_models():
    from transformers import (
        AutoModel,
        BartModel,
        BertForSequenceClassification,
        CLIPModel,
        GPT2LMHeadModel,
        LlamaForCausalLM,
    )

    assert count_parameters(BertForSequenceClassification(tiny_bert_config())) < 500_000
    GPT2LMHeadModel(tiny_gpt2_config())
    LlamaForCausalLM(tiny_llama_config())
    BartModel(tiny_bart_config())
    clip = CLIPModel(tiny_clip_config())
    out = clip(input_ids=torch.tensor([[1, 2, 3]]), pixel_values=torch.randn(1, 3, 32, 32))
    assert out.logits_per_image.shape == (1, 1)
    AutoModel.from_config(tiny_bert_config(vocab_size=50))


def test_word_level_tokenizer():
    tok = word_level_tokenizer(["the movie was good", "the plot was bad"], max_length=8)
    enc = tok(["the movie was great"], padding="max_length", truncation=True, max_length=8)
    ids = enc["input_ids"][0]
    assert ids[0] == tok.cls_token_id and tok.unk_token_id in ids and ids[-1] == tok.pad_token_id
    assert tok.pad_token_id == 0 and tok.decode(ids, skip_special_tokens=True).split()[:3] == [
        "the",
        "movie",
        "was",
    ]


def test_load_pretrained_local_and_offline(tmp_path, monkeypatch):
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification(tiny_bert_config(vocab_size=30))
    model.save_pretrained(tmp_path / "m")
    tok = word_level_tokenizer(vocab=["a", "b"])
    tok.save_pretrained(tmp_path / "m")
    m2, t2 = load_pretrained(tmp_path / "m", BertForSequenceClassification, with_tokenizer=True)
    assert torch.equal(
        m2.bert.embeddings.word_embeddings.weight, model.bert.embeddings.word_embeddings.weight
    )
    assert t2.convert_tokens_to_ids("a") == tok.convert_tokens_to_ids("a")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as e:
        load_pretrained("some-org/not-a-cached-model-xyz")
    assert "local model folder" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="no such model folder"):
        load_pretrained("./missing-folder")
