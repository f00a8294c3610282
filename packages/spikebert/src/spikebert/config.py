"""Torch-free configuration of SpikeBERT: the model config (used directly as the ``--model.*`` section), data,
teacher and loss sections, and one config per CLI verb. Presets live in ``configs/*.yaml``
(``spikebert <verb> --preset demo|paper|tiny|official``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from tenfold_core.cli import arg
from tenfold_core.config import OptimConfig, TrainConfig
from tenfold_core.spiking.config import NeuronConfig

__all__ = [
    "NeuronConfig",
    "SpikeBertConfig",
    "TeacherConfig",
    "DataConfig",
    "AugmentConfig",
    "TaskDataConfig",
    "CorpusConfig",
    "PretrainLossConfig",
    "TaskLossConfig",
    "RateRegConfig",
    "PretrainTeacherConfig",
    "FinetuneTeacherConfig",
    "DistillPretrainConfig",
    "DistillTaskConfig",
    "TrainDirectConfig",
    "EvaluateConfig",
    "DemoConfig",
    "PAPER_QK_SCALE",
    "MAX_PARAMETERS",
]

#: SpikeBERT's fixed attention scale (``qk_scale: paper``).
PAPER_QK_SCALE = 0.125
#: Models estimated above this many parameters are refused before anything is allocated.
MAX_PARAMETERS = 3_000_000_000


def _positive(name: str, value, minimum=1) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < minimum
    ):
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")


@dataclass
class SpikeBertConfig:
    """The SpikeBERT student (defaults: the paper's stage-2 setting on BERT-base: depth 12, width 768, 8 heads,
    T = 4, LIF tau 2, V_th 1, attention V_th 0.5, scale 0.125, no position embeddings).

    ``vocab_size``, ``num_labels``, ``teacher_dim`` and ``pad_token_id`` are filled in by the training verbs from
    the tokenizer, the data and the teacher when left at 0; a run folder's ``config.json`` holds the final values.
    """

    vocab_size: int = arg(0, help="vocabulary size (0: the tokenizer's)")
    dim: int = arg(768, help="width D (may be narrower than the teacher: learned projections)")
    depth: int = arg(12, help="spiking Transformer blocks")
    num_heads: int = arg(8, help="attention heads (dim must be divisible by it)")
    mlp_ratio: float = arg(4.0, help="MLP hidden width / D")
    num_labels: int = arg(0, help="classes (0: from the data; stage 1 has no classifier)")
    time_steps: int = arg(4, help="time steps T")
    neuron: NeuronConfig = arg(factory=NeuronConfig, help="neuron settings shared by every LIF")
    attn_v_threshold: float = arg(0.5, help="threshold of the LIF after the attention product")
    qk_scale: str = arg(
        "paper",
        help="scale of (Q K^T) V: paper (0.125), auto (by head width and real keys: size- and padding-free), "
        "or a number",
    )
    teacher_dim: int = arg(0, help="width of the distillation targets (0: dim; the verbs use the teacher's)")
    mask_padding: bool = arg(
        True, help="mask padding in attention, pooling and losses (false: official code)"
    )
    max_position_embeddings: int = arg(0, help="learned position embeddings (0: none, as the paper)")
    pad_token_id: int = arg(0, help="padding id (the mask is built from it when no attention_mask is given)")
    distill_heads: bool = arg(
        True, help="build the per-block distillation heads (false: no hidden-state loss)"
    )
    embedding_projection: bool = arg(
        True, help="build the embedding projection when dim != teacher_dim (false: no embedding loss)"
    )

    def __post_init__(self):
        if isinstance(self.neuron, dict):
            self.neuron = NeuronConfig(**self.neuron)
        for name in ("dim", "depth", "num_heads", "time_steps"):
            _positive(f"model.{name}", getattr(self, name))
        for name in ("vocab_size", "num_labels", "teacher_dim", "max_position_embeddings", "pad_token_id"):
            _positive(f"model.{name}", getattr(self, name), 0)
        _positive("model.mlp_ratio", self.mlp_ratio, 1e-9)
        if self.dim % self.num_heads:
            raise ValueError(f"model.dim {self.dim} is not divisible by model.num_heads {self.num_heads}")
        if int(self.dim * self.mlp_ratio) < 1:
            raise ValueError(f"model.mlp_ratio {self.mlp_ratio} gives an empty MLP at dim {self.dim}")
        if not math.isfinite(self.attn_v_threshold):
            raise ValueError(f"model.attn_v_threshold must be finite, got {self.attn_v_threshold}")
        self.scale_value()  # validates qk_scale
        n = self.estimated_parameters()
        if n > MAX_PARAMETERS:
            raise ValueError(
                f"model: about {n / 1e9:.1f} G parameters (dim {self.dim}, depth {self.depth}, vocab "
                f"{self.vocab_size}); refusing sizes above {MAX_PARAMETERS / 1e9:.0f} G"
            )

    def scale_value(self) -> float | str:
        """``qk_scale`` as the blocks take it: a number or ``"auto"``."""
        s = str(self.qk_scale).strip().lower()
        if s == "paper":
            return PAPER_QK_SCALE
        if s == "auto":
            return "auto"
        try:
            v = float(s)
        except ValueError:
            raise ValueError(
                f"model.qk_scale must be paper, auto or a number, got {self.qk_scale!r}"
            ) from None
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"model.qk_scale must be a positive number, got {self.qk_scale!r}")
        return v

    @property
    def rep_dim(self) -> int:
        return self.teacher_dim or self.dim

    def estimated_parameters(self) -> int:
        d, h = self.dim, int(self.dim * self.mlp_ratio)
        block = 4 * (d * d + d) + 2 * d * h + h + d + 12 * d
        heads = (d * self.rep_dim + 3 * self.rep_dim) if self.distill_heads else 0
        emb = (self.vocab_size + self.max_position_embeddings) * d
        return self.depth * (block + heads) + emb + d * max(self.num_labels, 0)


@dataclass
class TeacherConfig:
    """A BERT-family teacher: a hub id, a model folder, a spikebert teacher run folder, ``minilm`` (the offline
    all-MiniLM-L6-v2) or ``tiny`` (a tiny random BERT built in place with a word-level tokenizer: tests, presets)."""

    name: str = arg("bert-base-cased", help="hub id, folder, teacher run folder, minilm or tiny")
    tiny_hidden: int = arg(64, help="tiny teacher: hidden size")
    tiny_layers: int = arg(4, help="tiny teacher: layers")
    tiny_heads: int = arg(4, help="tiny teacher: heads")
    dropout: float | None = arg(None, help="override the teacher's dropout (null: keep the checkpoint's)")

    def __post_init__(self):
        for k in ("tiny_hidden", "tiny_layers", "tiny_heads"):
            _positive(f"teacher.{k}", getattr(self, k))
        if self.tiny_hidden % self.tiny_heads:
            raise ValueError(
                f"teacher.tiny_hidden {self.tiny_hidden} is not divisible by tiny_heads {self.tiny_heads}"
            )
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError(f"teacher.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class DataConfig:
    """Labelled task data: a folder of train/validation/test files (``sentence<TAB>label`` .txt/.tsv as the
    official code, .csv, .jsonl, .parquet), one file (split 80/10/10), a hub id, or ``synthetic`` (the core's
    negation-XOR sentiment language, offline)."""

    data: str = arg("", help="folder, file, hub id, or synthetic")
    text_column: str = arg("text", help="text column (csv/jsonl/parquet/hub; sst2 on the hub: sentence)")
    label_column: str = arg("label", help="label column")
    hub_config: str | None = arg(None, help="hub data-set configuration name")
    tokenizer: Literal["auto", "char"] = arg(
        "auto", help="auto (the teacher's) or char (character level: Chinese without a downloaded vocab)"
    )
    max_length: int = arg(128, help="tokens per sentence (truncated beyond)")
    batch_size: int = arg(32, help="batch size")
    padding: Literal["longest", "max_length"] = arg(
        "longest", help="pad each batch to its longest sentence, or to max_length (the official code)"
    )
    metric: Literal["accuracy", "mcc"] = arg(
        "accuracy", help="model-selection metric: accuracy or mcc (CoLA)"
    )
    synthetic_train: int = arg(1000, help="synthetic: training sentences")
    synthetic_dev: int = arg(300, help="synthetic: dev sentences")
    synthetic_test: int = arg(500, help="synthetic: test sentences")
    synthetic_seed: int = arg(0, help="synthetic: generator seed")

    def __post_init__(self):
        _positive("data.max_length", self.max_length, 2)
        _positive("data.batch_size", self.batch_size)
        for k in ("synthetic_train", "synthetic_dev"):
            _positive(f"data.{k}", getattr(self, k))
        _positive("data.synthetic_test", self.synthetic_test, 0)


@dataclass
class AugmentConfig:
    """Stage-2 augmentation of the training split (Tang et al. 2019's rules, what the official ``train_augment.txt``
    holds): per unit, mask with ``p_mask`` or else swap for a same-class unit with ``p_pos``; then, with ``p_ngram``,
    keep a random n-gram (n <= ``max_ngram``). ``factor`` N: the training set becomes N times its size (the originals
    plus N - 1 variants each, labels kept); 1 is off. Deterministic given ``seed``. ``tagger`` picks the
    part-of-speech classes; ``replace``, ``keep_original``, ``redraw`` and ``labels`` reproduce the first author's
    augmentation script where it differs (:mod:`spikebert.augment`)."""

    factor: int = arg(1, help="training set size multiplier (1: off; Tang et al. / TinyBERT: 20)")
    p_mask: float = arg(0.1, help="probability that a unit becomes the mask token")
    p_pos: float = arg(0.1, help="probability that a unit is swapped for another of its part-of-speech class")
    p_ngram: float = arg(0.25, help="probability that a synthetic sentence is cut to a random n-gram")
    max_ngram: int = arg(5, help="longest n-gram kept by the n-gram sampling")
    pos_classes: int = arg(32, help="part-of-speech classes induced from neighbour counts (seeded k-means)")
    unit: Literal["auto", "word", "char"] = arg(
        "auto",
        help="units: word (whitespace), char (Chinese), auto (char with data.tokenizer char, else word)",
    )
    tagger: Literal["auto", "brill", "nltk", "induced"] = arg(
        "auto",
        help="part-of-speech classes: brill (Brill's Penn tagger, offline), nltk (nltk.pos_tag, as the author's "
        "script; needs nltk's tagger data), induced (neighbour-count clusters), auto (brill for words, induced "
        "for characters)",
    )
    replace: Literal["unigram", "types"] = arg(
        "unigram",
        help="a swap draws by the class's unigram frequencies (Tang et al.) or uniformly over its distinct words "
        "(types: the author's script)",
    )
    keep_original: bool = arg(
        True, help="keep the original sentences (false: variants only, as the script writes)"
    )
    redraw: bool = arg(
        True,
        help="redraw a repeated variant (false: the script's factor draws per sentence, repeats dropped)",
    )
    labels: Literal["source", "random"] = arg(
        "source", help="a variant's label: its source sentence's, or random (the script's random 0/1: a bug)"
    )
    seed: int = arg(0, help="augmentation seed (the augmented set is fixed by it, like a train_augment.txt)")

    def __post_init__(self):
        _positive("data.augment.factor", self.factor)
        if self.factor > 1000:
            raise ValueError(f"data.augment.factor must be <= 1000, got {self.factor}")
        _positive("data.augment.max_ngram", self.max_ngram)
        _positive("data.augment.pos_classes", self.pos_classes)
        for k in ("p_mask", "p_pos", "p_ngram"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise ValueError(f"data.augment.{k} must be in [0, 1], got {v!r}")
        if self.p_mask + self.p_pos > 1:
            raise ValueError(
                f"data.augment.p_mask + p_pos must be <= 1 (they exclude each other), got {self.p_mask + self.p_pos}"
            )


@dataclass
class TaskDataConfig(DataConfig):
    """Stage-2 task data: :class:`DataConfig` plus the training-split augmentation (``--data.augment.*``)."""

    augment: AugmentConfig = arg(factory=AugmentConfig, help="stage-2 data augmentation (factor 1: off)")

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.augment, dict):
            self.augment = AugmentConfig(**self.augment)


@dataclass
class CorpusConfig:
    """Unlabelled text for stage 1 (and the teacher's masked-LM): a ``.txt`` file (a sentence a line), a labelled
    file/folder (its texts), a hub id, a folder of pre-tokenised shards (``shards/``), or ``synthetic``."""

    corpus: str = arg("", help=".txt file, labelled file/folder, hub id, shard folder, or synthetic")
    text_column: str = arg("text", help="text column of a csv/jsonl/hub corpus")
    hub_config: str | None = arg(None, help="hub data-set configuration (e.g. 20220301.en for wikipedia)")
    max_samples: int | None = arg(None, help="use at most this many sentences")
    dev_fraction: float = arg(0.01, help="held-out fraction for model selection (val_loss)")
    dev_min: int = arg(200, help="at least this many held-out sentences (never more than half the corpus)")
    max_length: int = arg(256, help="tokens per sentence (official stage 1: 256)")
    batch_size: int = arg(16, help="batch size (official: 16)")
    padding: Literal["longest", "max_length"] = arg("longest", help="longest or max_length (official)")
    stream: bool = arg(
        True,
        help="tokenise once into memory-mapped shards under the run folder and stream them (memory O(1))",
    )
    synthetic_size: int = arg(2000, help="synthetic: sentences")
    synthetic_seed: int = arg(7919, help="synthetic: generator seed")

    def __post_init__(self):
        if not 0 < self.dev_fraction < 0.5:
            raise ValueError(f"data.dev_fraction must be in (0, 0.5), got {self.dev_fraction}")
        _positive("data.dev_min", self.dev_min, 0)
        _positive("data.max_length", self.max_length, 2)
        _positive("data.batch_size", self.batch_size)
        _positive("data.synthetic_size", self.synthetic_size, 4)
        if self.max_samples is not None:
            _positive("data.max_samples", self.max_samples, 2)


@dataclass
class RateRegConfig:
    """Optional spike-rate regulariser: ``weight * mean_l (rate_l - target)^2`` over every LIF (off by default)."""

    weight: float = arg(0.0, help="weight of the firing-rate penalty (0: off)")
    target: float = arg(0.1, help="target firing rate of every LIF")

    def __post_init__(self):
        _positive("rate_reg.weight", self.weight, 0)
        if not 0 < self.target < 1:
            raise ValueError(f"rate_reg.target must be in (0, 1), got {self.target}")


@dataclass
class PretrainLossConfig:
    """Stage 1: ``rep * sum_i MSE(rep_i, h^T_map(i))`` [/ B with rep_batch_div, as the official code]."""

    rep: float = arg(1.0, help="weight of the representation loss")
    rep_batch_div: bool = arg(True, help="divide the representation loss by the batch size (official code)")
    layer_align: Literal["stride", "top"] = arg(
        "stride", help="teacher layer of block i: stride (official: 1+i*s) or top (TinyBERT: (i+1)*s)"
    )

    def __post_init__(self):
        _positive("loss.rep", self.rep, 1e-12)


@dataclass
class TaskLossConfig:
    """Stage 2 weights (the official script's defaults: CE 0.1, KL 1, embeddings 0.1, hidden states 0.1 with the
    extra 1/B). Note: at these defaults the hidden-state term is a few thousandths of the total loss (issue 20):
    the KL term does most of the work; every weighted term is logged per epoch."""

    ce: float = arg(0.1, help="weight of the cross-entropy on labels")
    logit: float = arg(1.0, help="weight of KL(teacher || student) on T-averaged logits")
    emb: float = arg(0.1, help="weight of the word-embedding MSE")
    rep: float = arg(0.1, help="weight of the hidden-representation MSE")
    rep_batch_div: bool = arg(True, help="divide the representation loss by the batch size (official code)")
    layer_align: Literal["stride", "top"] = arg("stride", help="teacher layer of block i: stride or top")

    def __post_init__(self):
        for k in ("ce", "logit", "emb", "rep"):
            _positive(f"loss.{k}", getattr(self, k), 0)
        if not (self.ce or self.logit or self.emb or self.rep):
            raise ValueError("loss: every weight is 0")


def _train(out_dir: str, monitor: str, mode: str, epochs: int) -> TrainConfig:
    return TrainConfig(out_dir=out_dir, monitor=monitor, mode=mode, max_epochs=epochs)


@dataclass
class PretrainTeacherConfig:
    """Masked-LM pre-training of a (tiny) BERT teacher: the stand-in for a pre-trained BERT offline."""

    model: TeacherConfig = arg(factory=lambda: TeacherConfig(name="tiny"))
    data: CorpusConfig = arg(factory=lambda: CorpusConfig(max_length=64, batch_size=64))
    mask_prob: float = arg(0.15, help="masked-token fraction")
    train: TrainConfig = arg(factory=lambda: _train("runs/spikebert/mlm", "val_loss", "min", 1))
    optim: OptimConfig = arg(factory=lambda: OptimConfig(lr=1e-3, weight_decay=0.01))

    def __post_init__(self):
        if not 0 < self.mask_prob < 1:
            raise ValueError(f"mask_prob must be in (0, 1), got {self.mask_prob}")


@dataclass
class FinetuneTeacherConfig:
    """Stage 0: fine-tune the teacher classifier (official: AdamW 5e-5, batch 128, 10 epochs)."""

    model: TeacherConfig = arg(factory=TeacherConfig)
    data: DataConfig = arg(factory=DataConfig)
    train: TrainConfig = arg(factory=lambda: _train("runs/spikebert/teacher", "val_acc", "max", 4))
    optim: OptimConfig = arg(
        factory=lambda: OptimConfig(lr=5e-5, weight_decay=0.01, schedule="linear", warmup_ratio=0.1)
    )


@dataclass
class DistillPretrainConfig:
    """Stage 1: hidden-state distillation from a frozen pre-trained (not fine-tuned) teacher on unlabelled text."""

    model: SpikeBertConfig = arg(factory=SpikeBertConfig)
    teacher: TeacherConfig = arg(factory=TeacherConfig)
    data: CorpusConfig = arg(factory=CorpusConfig)
    loss: PretrainLossConfig = arg(factory=PretrainLossConfig)
    rate_reg: RateRegConfig = arg(factory=RateRegConfig)
    train: TrainConfig = arg(factory=lambda: _train("runs/spikebert/stage1", "val_loss", "min", 1))
    optim: OptimConfig = arg(factory=lambda: OptimConfig(lr=5e-5, weight_decay=5e-3, schedule="cosine"))


@dataclass
class DistillTaskConfig:
    """Stage 2: task distillation from the fine-tuned teacher, optionally from stage-1 weights (``--init``)."""

    model: SpikeBertConfig = arg(factory=SpikeBertConfig)
    teacher: TeacherConfig = arg(factory=lambda: TeacherConfig(name=""))
    init: str | None = arg(
        None, help="stage-1 run folder or weights file (loaded strictly); null: from scratch"
    )
    init_partial: bool = arg(
        False,
        help="load only the stage-1 tensors whose names and shapes fit (the official strict=False load)",
    )
    data: TaskDataConfig = arg(factory=TaskDataConfig)
    loss: TaskLossConfig = arg(factory=TaskLossConfig)
    rate_reg: RateRegConfig = arg(factory=RateRegConfig)
    train: TrainConfig = arg(factory=lambda: _train("runs/spikebert/stage2", "val_acc", "max", 30))
    optim: OptimConfig = arg(factory=lambda: OptimConfig(lr=5e-4, weight_decay=5e-3, schedule="cosine"))


@dataclass
class TrainDirectConfig:
    """The directly trained baseline: the same student, cross-entropy only, no teacher."""

    model: SpikeBertConfig = arg(factory=SpikeBertConfig)
    tokenizer: str = arg("bert-base-cased", help="tokenizer: hub id, folder, run folder, minilm, or tiny")
    data: DataConfig = arg(factory=DataConfig)
    rate_reg: RateRegConfig = arg(factory=RateRegConfig)
    train: TrainConfig = arg(factory=lambda: _train("runs/spikebert/direct", "val_acc", "max", 30))
    optim: OptimConfig = arg(factory=lambda: OptimConfig(lr=5e-4, weight_decay=5e-3, schedule="cosine"))


@dataclass
class EvaluateConfig:
    """Score, firing rates and energy of a trained student (sizes and tokenizer come from its run folder)."""

    checkpoint: str = arg("", help="student run folder (distill-task / train-direct output)", positional=True)
    data: DataConfig = arg(factory=DataConfig)
    split: Literal["dev", "test"] = arg("test", help="dev or test")
    teacher: str | None = arg(
        None, help="fine-tuned teacher (run folder, model folder): its score and ANN energy"
    )
    precision: Literal["fp32", "fp16", "int8"] = arg("fp32", help="energy preset: fp32, fp16 or int8")
    energy_batches: int = arg(8, help="batches used for firing rates and energy (0: all)")
    time_steps: int | None = arg(None, help="evaluate with another number of time steps")
    out: str | None = arg(None, help="write the results as JSON here")

    def __post_init__(self):
        _positive("energy_batches", self.energy_batches, 0)
        if self.time_steps is not None:
            _positive("time_steps", self.time_steps)


@dataclass
class DemoConfig:
    out: str = arg("runs/spikebert-demo", help="output folder")
    seeds: int = arg(1, help="student seeds (mean and spread are reported; the README's numbers: --seeds 3)")
    threads: int = arg(0, help="torch threads (0: leave as is)")

    def __post_init__(self):
        _positive("seeds", self.seeds)
        _positive("threads", self.threads, 0)
