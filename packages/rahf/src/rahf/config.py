"""Torch-free configs: the model, the preference data, and one config per verb (the CLI sections)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tenfold_core.cli import arg
from tenfold_core.config import OptimConfig, TrainConfig

__all__ = [
    "LMConfig",
    "PrefDataConfig",
    "SCITLossConfig",
    "AlignLossConfig",
    "SFTCommand",
    "SCITCommand",
    "DualCommand",
    "AlignCommand",
    "DPOCommand",
    "EvaluateCommand",
    "CompareCommand",
    "DemoCommand",
    "GOOD_PROMPT",
    "BAD_PROMPT",
]

# the official SCIT / DUAL instruction prompts are long "good / bad assistant" system prompts; ours are short [infer]
GOOD_PROMPT = (
    "You are a good, respectful and honest assistant. Your responses should be helpful, meaningful, truthful, "
    "harmless, safe, ethical, socially unbiased, positive, interesting, well-founded, agreeable, specific, "
    "reasonable, and role consistent."
)
BAD_PROMPT = (
    "You are a bad, disrespectful and dishonest assistant. Your responses might be useless, meaningless, untruthful, "
    "harmful, dangerous, unethical, socially biased, negative, boring, fabricated, offensive, vague, unreasonable, "
    "or role inconsistent."
)


def _positive(name: str, v: float) -> None:
    if not v > 0:
        raise ValueError(f"{name} must be > 0, got {v}")


@dataclass
class LMConfig:
    """The causal LM: a tiny one built from these sizes, or a pretrained one (smollm2, a folder, a hub id)."""

    base: str = arg(
        "tiny", help="tiny (built from the sizes below), smollm2 (offline), a model folder or a hub id"
    )
    kind: Literal["llama", "gpt2"] = arg("llama", help="tiny model architecture")
    hidden: int = arg(64, help="tiny: hidden size")
    layers: int = arg(4, help="tiny: transformer blocks")
    heads: int = arg(4, help="tiny: attention heads")
    max_len: int = arg(256, help="tiny: maximum positions")
    vocab_size: int = arg(0, help="tiny: vocabulary size (0: the tokenizer's)")
    seed: int = arg(0, help="tiny: initialisation seed")

    def __post_init__(self):
        for f in ("hidden", "layers", "heads", "max_len"):
            if getattr(self, f) < 1:
                raise ValueError(f"model.{f} must be >= 1, got {getattr(self, f)}")
        if self.hidden % self.heads:
            raise ValueError(f"model.hidden ({self.hidden}) must be divisible by model.heads ({self.heads})")
        if self.vocab_size < 0:
            raise ValueError(f"model.vocab_size must be >= 0, got {self.vocab_size}")


@dataclass
class PrefDataConfig:
    """Preference pairs (prompt, chosen, rejected) and how they are split and encoded."""

    source: str = arg(
        "synthetic",
        help="synthetic (the demo language), a local .jsonl (prompt/chosen/rejected), or a hub data set id",
    )
    hub_split: str = arg("train", help="hub data set split to read")
    n_pairs: int = arg(
        1200, help="synthetic: number of pairs; other sources: keep at most this many (0: all)"
    )
    test_size: int = arg(200, help="held-out test pairs (the paper: the last 1000 after the shuffle)")
    split_seed: int = arg(42, help="seed of the shuffle before the rm / ppo / test split")
    max_prompt_len: int = arg(256, help="prompt tokens kept (the end of the prompt); longer rows are cut")
    max_response_len: int = arg(64, help="response tokens kept")
    chat_template: bool = arg(True, help="apply the tokenizer's chat template to prompts")
    batch_size: int = arg(32, help="pairs per batch")
    seed: int = arg(0, help="synthetic language seed")

    def __post_init__(self):
        for f in ("n_pairs", "test_size"):
            if getattr(self, f) < 0:
                raise ValueError(f"data.{f} must be >= 0, got {getattr(self, f)}")
        for f in ("max_prompt_len", "max_response_len", "batch_size"):
            if getattr(self, f) < 1:
                raise ValueError(f"data.{f} must be >= 1, got {getattr(self, f)}")


@dataclass
class SCITLossConfig:
    eps: float = arg(0.2, help="label smoothing of the 2-way good/bad instruction contrast (the code: 0.2)")
    form: Literal["code", "paper"] = arg(
        "code",
        help="code: CE + smoothed contrast of exp(mean token log-prob); paper: -(P+ + log softmax) of summed log-probs",
    )
    ce_over_padding: bool = arg(
        False, help="the official quirk: CE averaged over the whole padded length (padding counts as 0)"
    )
    good_prompt: str = arg(GOOD_PROMPT, help="system prompt p+ of the preferred instruction")
    bad_prompt: str = arg(BAD_PROMPT, help="system prompt p- of the dispreferred instruction")

    def __post_init__(self):
        if not 0 <= self.eps < 0.5:
            raise ValueError(f"scit.eps must be in [0, 0.5), got {self.eps}")


@dataclass
class AlignLossConfig:
    alpha: float = arg(5.0, help="target A* = A_base + alpha * v")
    target_layers: list[int] = arg(
        [2, 3],
        help="hidden-state indices (0 = embeddings, l = output of block l-1); paper 7B: 10,12,14,16,18",
    )
    norm: Literal["sq_l2", "l2"] = arg("sq_l2", help="per-token distance: sq_l2 (the paper) or l2 (the code)")
    reduction: Literal["masked", "code"] = arg(
        "masked",
        help="masked: mean over response tokens; code: mean over all positions, masked ones as zeros",
    )
    lora_r: int = arg(8, help="LoRA rank")
    lora_alpha: int = arg(16, help="LoRA alpha")
    lora_dropout: float = arg(0.05, help="LoRA dropout")
    lora_targets: list[str] = arg(["q_proj", "v_proj"], help="LoRA target modules (GPT-2: c_attn)")
    direction_source: Literal["scit", "dual"] = arg(
        "scit", help="scit: one model, p+ vs p- prompts; dual: good model minus bad model"
    )
    response_choice: Literal["random", "chosen", "rejected", "all"] = arg(
        "random", help="response(s) each pair contributes (the code: SCIT random, DUAL all)"
    )
    scit_newline_quirk: bool = arg(
        False, help="the official SCIT quirk: the p+ row lacks the blank-line separator the other rows have"
    )
    good_prompt: str = arg(GOOD_PROMPT, help="system prompt p+")
    bad_prompt: str = arg(BAD_PROMPT, help="system prompt p-")

    def __post_init__(self):
        if not self.target_layers:
            raise ValueError("align.target_layers must name at least one layer")
        if min(self.target_layers) < 1:
            raise ValueError(
                f"align.target_layers must be >= 1 (0 is the embeddings), got {self.target_layers}"
            )
        if self.lora_r < 1:
            raise ValueError(f"align.lora_r must be >= 1, got {self.lora_r}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"align.lora_dropout must be in [0, 1), got {self.lora_dropout}")


def _tr(**kw) -> TrainConfig:
    return TrainConfig(**{"max_epochs": 3, "monitor": None, **kw})


@dataclass
class SFTCommand:
    """Supervised fine-tuning on (prompt, response) pairs: step 0, and each half of DUAL."""

    model: LMConfig = arg(factory=LMConfig, help="the model")
    data: PrefDataConfig = arg(factory=PrefDataConfig, help="the data")
    train: TrainConfig = arg(factory=lambda: _tr(out_dir="runs/rahf/sft"), help="training")
    optim: OptimConfig = arg(factory=lambda: OptimConfig(lr=2e-5, schedule="cosine", warmup_ratio=0.1))
    init: str | None = arg(None, help="start from this run folder (else model.base)")
    responses: Literal["both", "chosen", "rejected"] = arg(
        "both", help="which responses to train on (both: the step-0 mix; DUAL: chosen / rejected)"
    )
    split: Literal["all", "rm", "ppo"] = arg(
        "all", help="training split (all = rm + ppo; never the test split)"
    )


@dataclass
class SCITCommand:
    """RAHF-SCIT step 1: contrastive instruction tuning of one model on the rm split."""

    model: LMConfig = arg(factory=LMConfig, help="the model")
    data: PrefDataConfig = arg(factory=PrefDataConfig, help="the data")
    train: TrainConfig = arg(factory=lambda: _tr(out_dir="runs/rahf/scit", max_epochs=2), help="training")
    optim: OptimConfig = arg(factory=lambda: OptimConfig(lr=2e-5, schedule="linear", warmup_ratio=0.1))
    scit: SCITLossConfig = arg(factory=SCITLossConfig, help="the SCIT loss")
    init: str | None = arg(None, help="start from this run folder (the SFT model; else model.base)")


@dataclass
class DualCommand:
    """RAHF-DUAL step 1: two SFT runs from the same start, one on chosen, one on rejected responses."""

    model: LMConfig = arg(factory=LMConfig, help="the model")
    data: PrefDataConfig = arg(factory=PrefDataConfig, help="the data")
    train: TrainConfig = arg(
        factory=lambda: _tr(out_dir="runs/rahf/dual"), help="training (good/ and bad/ below)"
    )
    optim: OptimConfig = arg(factory=lambda: OptimConfig(lr=2e-5, schedule="cosine", warmup_ratio=0.1))
    init: str | None = arg(None, help="start from this run folder (the SFT model; else model.base)")


@dataclass
class AlignCommand:
    """RAHF step 2: cache the direction v = A(p+) - A(p-) on response tokens, fit a LoRA towards A_base + alpha v,
    merge it."""

    model: LMConfig = arg(factory=LMConfig, help="the model (used when no source run is given)")
    data: PrefDataConfig = arg(factory=PrefDataConfig, help="the data (the ppo split)")
    train: TrainConfig = arg(factory=lambda: _tr(out_dir="runs/rahf/align", max_epochs=1), help="training")
    optim: OptimConfig = arg(factory=lambda: OptimConfig(lr=3e-4))
    align: AlignLossConfig = arg(factory=AlignLossConfig, help="the align loss, LoRA and direction")
    source: str | None = arg(
        None, help="scit: the SCIT run folder; dual: the DUAL folder (good/, bad/); none: a fresh model.base"
    )
    cache_dir: str | None = arg(None, help="direction cache folder (default: train.out_dir/cache)")
    max_cache_gb: float = arg(8.0, help="refuse a direction cache larger than this")


@dataclass
class DPOCommand:
    """DPO baseline on the same pairs: LoRA policy, reference = the adapter disabled (TRL's PEFT recipe)."""

    model: LMConfig = arg(factory=LMConfig, help="the model")
    data: PrefDataConfig = arg(factory=PrefDataConfig, help="the data")
    train: TrainConfig = arg(factory=lambda: _tr(out_dir="runs/rahf/dpo", max_epochs=1), help="training")
    optim: OptimConfig = arg(factory=lambda: OptimConfig(lr=5e-4))
    init: str | None = arg(None, help="start from this run folder (the SFT model; else model.base)")
    beta: float = arg(0.1, help="DPO beta")
    lora: bool = arg(
        True, help="train a LoRA (q/v, r=8) and merge it; false: full fine-tune with a frozen copy"
    )
    lora_r: int = arg(8, help="LoRA rank")
    lora_targets: list[str] = arg(["q_proj", "v_proj"], help="LoRA target modules")
    split: Literal["all", "rm", "ppo"] = arg("all", help="training split")

    def __post_init__(self):
        _positive("beta", self.beta)


@dataclass
class EvaluateCommand:
    """Win rate by log-likelihood margin on held-out pairs, perplexity drift, optional reward model, samples."""

    run: str = arg(positional=True, help="run folder to evaluate")
    data: PrefDataConfig = arg(factory=PrefDataConfig, help="the data (its test split is used)")
    reference: str | None = arg(None, help="run folder of the reference model for perplexity drift")
    reward_model: str | None = arg(None, help="a sequence-classification reward model folder (optional)")
    margin: Literal["sum", "mean"] = arg("sum", help="log-likelihood of a response: summed or per-token mean")
    samples: int = arg(4, help="greedy samples written to the output")
    max_new_tokens: int = arg(24, help="tokens per sample")
    out: str | None = arg(None, help="write eval.json here (default: RUN/eval.json)")


@dataclass
class CompareCommand:
    """RAHF-SCIT, RAHF-DUAL and DPO from the same SFT model on the same pairs: one table, one plot."""

    model: LMConfig = arg(factory=LMConfig, help="the model")
    data: PrefDataConfig = arg(factory=PrefDataConfig, help="the data")
    out: str = arg("runs/rahf/compare", help="output folder")
    init: str | None = arg(None, help="the SFT run folder to start from (else an SFT run is trained first)")
    methods: list[str] = arg(["scit", "dual", "dpo"], help="any of scit, dual, dpo")
    sft_epochs: int = arg(3, help="epochs of the step-0 SFT (when no init)")
    step1_epochs: int = arg(3, help="epochs of SCIT / DUAL")
    align_epochs: int = arg(2, help="epochs of the align step")
    dpo_epochs: int = arg(2, help="epochs of DPO")
    sft_lr: float = arg(3e-3, help="SFT / SCIT / DUAL learning rate")
    align_lr: float = arg(2e-3, help="align LoRA learning rate")
    dpo_lr: float = arg(2e-3, help="DPO LoRA learning rate")
    alpha: float = arg(5.0, help="align alpha")
    target_layers: list[int] = arg([2, 3], help="align target layers")
    seed: int = arg(0, help="training seed")
    accelerator: str = arg("cpu", help="accelerator")


@dataclass
class DemoCommand:
    """The embedded demo: synthetic preference language, SFT, SCIT + align, DUAL + align, DPO, alpha sweep."""

    out: str = arg("runs/rahf/demo", help="output folder")
    seeds: int = arg(1, help="seeds (the README reports 3)")
    alphas: list[float] = arg([0.0, 1.0, 5.0], help="alpha sweep of the SCIT align step")
    methods: list[str] = arg(["scit", "dual", "dpo"], help="methods to compare")
