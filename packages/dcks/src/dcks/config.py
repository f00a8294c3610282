"""Torch-free configuration of every ``dcks`` verb (the CLI sections; presets live in ``configs/*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tenfold_core.cli import arg

try:  # the core contract moved the shared training settings to a torch-free module
    from tenfold_core.config import OptimConfig, TrainConfig
except ImportError:  # pragma: no cover - older core
    from tenfold_core.train import OptimConfig, TrainConfig

RELATIONS = ("xIntent", "xNeed", "xWant", "xEffect", "xReact")

# EmpatheticDialogues' 32 emotions, in the order of the MoEL/CEM/DCKS EMO_MAP
ED_EMOTIONS = (
    "surprised", "excited", "annoyed", "proud", "angry", "sad", "grateful", "lonely", "impressed", "afraid",
    "disgusted", "confident", "terrified", "hopeful", "anxious", "disappointed", "joyful", "prepared", "guilty",
    "furious", "nostalgic", "jealous", "anticipating", "embarrassed", "content", "devastated", "sentimental",
    "caring", "trusting", "ashamed", "apprehensive", "faithful",
)  # fmt: skip


@dataclass
class DCKSConfig:
    """The DCKS network: BART + knowledge encoder + knowledge cross-attention + emotion head + adaptive selection."""

    backbone: str = arg(
        "facebook/bart-base",
        help="BART hub id or local folder; 'tiny' builds a small random BART (tests, demo)",
    )
    bart_config: dict[str, Any] | None = arg(
        None,
        help="a saved BartConfig (filled by training; rebuilds the network without loading the backbone)",
    )
    vocab_size: int = arg(1000, help="tiny backbone only: vocabulary size (set from the tokenizer)")
    d_model: int = arg(64, help="tiny backbone only: hidden size")
    layers: int = arg(2, help="tiny backbone only: encoder and decoder layers")
    heads: int = arg(2, help="tiny backbone only: attention heads")
    pad_token_id: int = arg(1, help="tiny backbone only: padding id (set from the tokenizer)")
    bos_token_id: int = arg(0, help="tiny backbone only: begin-of-sequence id")
    eos_token_id: int = arg(2, help="tiny backbone only: end-of-sequence id (also the decoder start)")
    relations: list[str] = arg(list(RELATIONS), help="COMET relations, in the order of the knowledge input")
    num_emotions: int = arg(32, help="emotion classes (32 in EmpatheticDialogues)")
    init_knowledge_from_bart: bool = arg(
        True,
        help="initialise the knowledge encoder / knowledge attention from BART's encoder / cross-attention "
        "(false: random, as the official code, whose init helper is never called)",
    )
    emotion_source: Literal["context+knowledge", "context", "knowledge"] = arg(
        "context+knowledge",
        help="emotion head input (the code's --woKnowledge = context, --woContext = knowledge)",
    )
    knowledge_in_decoder: bool = arg(True, help="gated knowledge cross-attention in every decoder layer")
    selection: bool = arg(
        True, help="adaptive knowledge selection (the QP over per-relation emotion gradients)"
    )
    cumulative_grad_bug: bool = arg(
        False, help="reproduce the code: per-relation gradients accumulate (g_r = g_1 + ... + g_r)"
    )
    selection_label: Literal["context", "final"] = arg(
        "context",
        help="emotion label for the selection at inference (no gold): argmax of the emotion head on the "
        "context state (code) or the final prediction of a first pass",
    )
    rank_order: Literal["ascending", "descending"] = arg(
        "ascending",
        help="relation ranking by per-relation emotion loss: ascending = most emotion-consistent first; "
        "descending = the code's sort(reverse=True)",
    )
    emo_heads: int = arg(2, help="emotion encoder (MoEL-style, 1 layer) heads")
    emo_key_depth: int = arg(40, help="emotion encoder total key/value depth")
    emo_filter: int = arg(50, help="emotion encoder feed-forward width")
    dropout: float | None = arg(None, help="override BART's dropout (null: keep the backbone's)")

    def __post_init__(self):
        if not self.relations:
            raise ValueError("model.relations must name at least one relation")
        if len(set(self.relations)) != len(self.relations):
            raise ValueError(f"model.relations has duplicates: {self.relations}")
        if self.num_emotions < 2:
            raise ValueError(f"model.num_emotions must be >= 2, got {self.num_emotions}")
        for name in ("vocab_size", "d_model", "layers", "heads", "emo_heads", "emo_key_depth", "emo_filter"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.heads:
            raise ValueError(
                f"model.d_model ({self.d_model}) must be divisible by model.heads ({self.heads})"
            )
        if self.emo_key_depth % self.emo_heads:
            raise ValueError("model.emo_key_depth must be divisible by model.emo_heads")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            if getattr(self, name) < 0:
                raise ValueError(f"model.{name} must be >= 0")


@dataclass
class LossConfig:
    """L = L_gen + emotion_weight * L_emo + aux_relation_loss_weight * sum_r l_r (+ diversity_weight * L_div)."""

    emotion_weight: float = arg(1.0, help="weight of the emotion cross-entropy")
    ignore_padding: bool = arg(
        True, help="generation loss ignores padded label positions (false: the code, pads count)"
    )
    aux_relation_loss_weight: float = arg(
        1.0,
        help="per-relation emotion losses on the knowledge encoder (the code's backward calls inside forward "
        "amount to weight 1.0; 0 removes it)",
    )
    diversity_weight: float = arg(0.0, help="CEM-style frequency-weighted NLL (0: off, as the code)")

    def __post_init__(self):
        for name in ("emotion_weight", "aux_relation_loss_weight", "diversity_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"loss.{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class DataConfig:
    """Where the dialogues come from and how they are tokenised."""

    source: Literal["synthetic", "jsonl", "cem", "hub"] = arg(
        "synthetic",
        help="synthetic (generated), jsonl (a folder of train/dev/test.jsonl or one file), cem (CEM's "
        "preprocessed pickle), hub (a Hugging Face data set id + a local knowledge file)",
    )
    path: str | None = arg(None, help="jsonl folder/file, CEM pickle, or hub id")
    knowledge_file: str | None = arg(
        None,
        help="hub source: JSONL of {id, knowledge: {relation: text}} (COMET output, one line per example)",
    )
    tokenizer: str | None = arg(
        None,
        help="tokenizer folder or hub id (null: the backbone's; the tiny backbone builds a word-level one)",
    )
    max_source_len: int = arg(256, help="context tokens")
    max_target_len: int = arg(64, help="reply tokens")
    max_knowledge_len: int = arg(256, help="tokens per relation")
    utterance_separator: str = arg(" </s> ", help="joins context utterances")
    batch_size: int = arg(10, help="training batch size")
    eval_batch_size: int = arg(32, help="evaluation batch size")
    train_fraction: float = arg(1.0, help="use this fraction of the training split (the code's --data_ratio)")
    # synthetic corpus
    n_train: int = arg(400, help="synthetic: training dialogues")
    n_dev: int = arg(100, help="synthetic: dev dialogues")
    n_test: int = arg(100, help="synthetic: test dialogues")
    n_emotions: int = arg(4, help="synthetic: emotions (the first N of ED's 32)")
    informative_relation: str = arg(
        "xReact", help="synthetic: the one relation that carries the emotion evidence"
    )
    distractor_emotion_rate: float = arg(
        0.0, help="synthetic: chance that a non-informative relation names a random emotion's word (noise)"
    )
    seed: int = arg(0, help="synthetic corpus seed")

    def __post_init__(self):
        for name in (
            "max_source_len",
            "max_target_len",
            "max_knowledge_len",
            "batch_size",
            "eval_batch_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.train_fraction <= 1:
            raise ValueError(f"data.train_fraction must be in (0, 1], got {self.train_fraction}")
        if self.source != "synthetic" and not self.path:
            raise ValueError(f"data.path is required for data.source={self.source}")
        if self.n_train < 2 or self.n_dev < 1 or self.n_test < 1:
            raise ValueError("data.n_train must be >= 2 and data.n_dev, data.n_test >= 1")
        if not 2 <= self.n_emotions <= len(ED_EMOTIONS):
            raise ValueError(f"data.n_emotions must be in [2, {len(ED_EMOTIONS)}], got {self.n_emotions}")
        if self.informative_relation not in RELATIONS:
            raise ValueError(f"data.informative_relation must be one of {RELATIONS}")


@dataclass
class DecodeConfig:
    """Decoding: beam 5, repetition penalty 1.5, max length 64 by default (the paper's settings)."""

    num_beams: int = arg(5, help="beam size (1: greedy or sampling)")
    do_sample: bool = arg(False, help="sample instead of beam search")
    top_p: float = arg(1.0, help="nucleus sampling")
    temperature: float = arg(1.0, help="sampling temperature")
    repetition_penalty: float = arg(1.5, help="repetition penalty")
    max_new_tokens: int = arg(64, help="longest reply")
    early_stopping: bool = arg(True, help="beam search stops when all beams are done")

    def __post_init__(self):
        if self.num_beams < 1 or self.max_new_tokens < 1:
            raise ValueError("decode.num_beams and decode.max_new_tokens must be >= 1")
        if self.repetition_penalty <= 0 or self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ValueError("decode.repetition_penalty, decode.temperature > 0 and decode.top_p in (0, 1]")


@dataclass
class TrainCommand:
    """dcks train: fine-tune DCKS with checkpoint selection on the dev split."""

    model: DCKSConfig = field(default_factory=DCKSConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(out_dir="runs/dcks", monitor="val_loss"))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-5, schedule="linear"))


@dataclass
class EvaluateCommand:
    """dcks evaluate: PPL (corpus and mean per-sentence), emotion accuracy, Dist-1/2, BLEU-1..4, ROUGE-L."""

    run: str = arg("runs/dcks", help="training run folder (model.safetensors + config.json)")
    split: Literal["dev", "test"] = arg("test", help="split to evaluate (reported, never used for selection)")
    data: DataConfig | None = arg(None, help="data override (default: the run's data settings)")
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    max_examples: int | None = arg(None, help="evaluate at most this many examples")
    generate: bool = arg(True, help="generate replies (Dist, BLEU, ROUGE-L); false: PPL and emotion only")
    out: str | None = arg(
        None, help="write metrics.json and generations.jsonl here (default: RUN/eval_SPLIT)"
    )
    seed: int = arg(0, help="seed (sampling)")


@dataclass
class ChatCommand:
    """dcks chat: reply, predicted emotion and ranked relations, interactively or for an --input file."""

    run: str = arg("runs/dcks", help="training run folder")
    input: str | None = arg(
        None, help="JSONL of {context, knowledge} (null: read contexts from stdin, knowledge by keywords)"
    )
    decode: DecodeConfig = field(default_factory=DecodeConfig)


@dataclass
class DemoCommand:
    """dcks demo: the offline CPU demo (tiny BART, synthetic empathetic dialogues)."""

    out: str = arg("runs/dcks-demo", help="output folder")
    seeds: int = arg(3, help="training seeds (spread reported)")
