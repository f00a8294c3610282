"""Torch-free configuration of SpikeCLIP: one dataclass per model, the data settings and one config per verb.

Every field is a CLI flag (``--model.time_steps 8``, ``--loss.kl_reduction sum``); presets live in ``configs/*.yaml``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from tenfold_core.cli import arg

try:  # the contract moves these into the torch-free tenfold_core.config
    from tenfold_core.config import OptimConfig, TrainConfig
except ImportError:  # pragma: no cover - older core
    from tenfold_core.train import OptimConfig, TrainConfig

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "DIGIT_NAMES",
    "DIGIT_TEMPLATES",
    "AlignImageConfig",
    "AlignTextConfig",
    "DataConfig",
    "DemoConfig",
    "DualFinetuneConfig",
    "DualLossConfig",
    "EvaluateConfig",
    "HFTeacherConfig",
    "FinetuneTeacherConfig",
    "ImageEncoderConfig",
    "MiniCLIPConfig",
    "OptimConfig",
    "TextEncoderConfig",
    "TrainConfig",
    "TrainTeacherConfig",
    "parse_qk_scale",
    "paper_time_weights",
]

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DIGIT_TEMPLATES = [
    "a photo of the number {}.",
    "a handwritten {}.",
    "a drawing of the digit {}.",
    "a blurry picture of a {}.",
    "a black and white image of the number {}.",
]
SURROGATES = ("atan", "sigmoid")


def paper_time_weights(time_steps: int) -> list[float]:
    """The official init ``ln(0.1, 0.2, 0.4, 0.8)`` generalised to any T: ``ln(0.8 * 2^-(T-1-t))``."""
    return [math.log(0.8 * 2.0 ** -(time_steps - 1 - t)) for t in range(time_steps)]


def parse_qk_scale(value: str) -> float | str:
    """``"paper"`` -> 0.125 (the official constant), ``"auto"`` -> ``"auto"`` (the core chooses), else a number."""
    v = str(value).strip().lower()
    if v == "paper":
        return 0.125
    if v == "auto":
        return "auto"
    try:
        f = float(v)
    except ValueError:
        raise ValueError(
            f"model.qk_scale must be 'paper', 'auto' or a positive number, got {value!r}"
        ) from None
    if not f > 0 or not math.isfinite(f):
        raise ValueError(f"model.qk_scale must be 'paper', 'auto' or a positive number, got {value!r}")
    return f


def _check_neuron(cfg, where: str = "model") -> None:
    if cfg.tau <= 1.0:
        raise ValueError(f"{where}.tau must be > 1, got {cfg.tau}")
    if cfg.v_threshold <= 0:
        raise ValueError(f"{where}.v_threshold must be > 0, got {cfg.v_threshold}")
    if cfg.surrogate not in SURROGATES:
        raise ValueError(f"{where}.surrogate must be one of {SURROGATES}, got {cfg.surrogate!r}")
    if cfg.alpha <= 0:
        raise ValueError(f"{where}.alpha must be > 0, got {cfg.alpha}")
    if not 1 <= cfg.time_steps <= 64:
        raise ValueError(f"{where}.time_steps must be in 1..64, got {cfg.time_steps}")


# ------------------------------------------------------------------------------------------------------ models
@dataclass
class ImageEncoderConfig:
    """Spiking image encoder (Spikformer-style, BatchNorm variant) with a CLIP-space head. Defaults: the paper's 4-384."""

    input_size: int = arg(32, help="images are resized (bilinear) to input_size x input_size (paper: 32)")
    in_channels: int = arg(3, help="image channels")
    stem_channels: list[int] = arg(
        [48, 96, 192, 384], help="conv3x3-BN-LIF patch stem widths; the last is the token width D"
    )
    pools: int = arg(
        2, help="MaxPool(3,2,1) in the last `pools` stem convs: N = (input_size / 2^pools)^2 tokens"
    )
    depth: int = arg(4, help="spiking Transformer blocks L")
    num_heads: int = arg(8, help="attention heads")
    mlp_ratio: float = arg(4.0, help="MLP hidden width / D")
    qk_scale: str = arg("paper", help="attention scale: paper (0.125), auto (core-chosen) or a number")
    attn_v_threshold: float = arg(0.5, help="threshold of the attention LIF")
    time_steps: int = arg(4, help="time steps T (the image is repeated T times: direct encoding)")
    out_dim: int = arg(512, help="CLIP embedding width (0: take it from the teacher)")
    tau: float = arg(2.0, help="LIF membrane time constant")
    v_threshold: float = arg(1.0, help="LIF threshold (all but the attention LIF)")
    surrogate: str = arg("sigmoid", help="surrogate gradient: sigmoid (official, alpha 4) or atan")
    alpha: float = arg(4.0, help="surrogate sharpness")
    detach_reset: bool = arg(True, help="detach the reset term (official)")
    backend: str = arg("auto", help="LIF kernel backend (auto, torch, numba, triton ...)")
    mean: list[float] = arg(list(CLIP_MEAN), help="per-channel normalisation mean (CLIP's)")
    std: list[float] = arg(list(CLIP_STD), help="per-channel normalisation std (CLIP's)")

    def __post_init__(self):
        if self.input_size < 4:
            raise ValueError(f"model.input_size must be >= 4, got {self.input_size}")
        if not self.stem_channels or any(c < 1 for c in self.stem_channels):
            raise ValueError(
                f"model.stem_channels must be a non-empty list of positive widths, got {self.stem_channels}"
            )
        if not 0 <= self.pools <= len(self.stem_channels):
            raise ValueError(f"model.pools must be in 0..{len(self.stem_channels)}, got {self.pools}")
        if self.input_size % (2**self.pools):
            raise ValueError(
                f"model.input_size {self.input_size} must be divisible by 2^pools = {2**self.pools}"
            )
        if self.depth < 0:
            raise ValueError(f"model.depth must be >= 0, got {self.depth}")
        if self.num_heads < 1 or self.stem_channels[-1] % self.num_heads:
            raise ValueError(
                f"model.num_heads {self.num_heads} must divide the token width {self.stem_channels[-1]}"
            )
        if self.mlp_ratio <= 0:
            raise ValueError(f"model.mlp_ratio must be > 0, got {self.mlp_ratio}")
        parse_qk_scale(self.qk_scale)
        if self.attn_v_threshold <= 0:
            raise ValueError(f"model.attn_v_threshold must be > 0, got {self.attn_v_threshold}")
        if self.out_dim < 0:
            raise ValueError(f"model.out_dim must be >= 0, got {self.out_dim}")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels or min(self.std) <= 0:
            raise ValueError(f"model.mean/std need {self.in_channels} values (std > 0)")
        _check_neuron(self)

    @property
    def dim(self) -> int:
        return self.stem_channels[-1]

    @property
    def num_tokens(self) -> int:
        return (self.input_size // 2**self.pools) ** 2


@dataclass
class TextEncoderConfig:
    """Spiking text encoder: an MLP over the teacher's token embeddings (the paper's choice), weighted over T.

    Fields left at 0 / empty are filled from the teacher by ``align-text`` (tokenizer, vocabulary, widths)."""

    tokenizer: str = arg(
        "", help="tokenizer: word (own word-level), minilm, or a hub id / local dir ('': teacher's)"
    )
    vocab: list[str] = arg([], help="word-level vocabulary (tokenizer: word)")
    vocab_size: int = arg(0, help="token-embedding rows (0: the teacher's)")
    embed_dim: int = arg(0, help="token-embedding width E (0: the teacher's)")
    embed_layer_norm: bool = arg(
        False, help="LayerNorm after token + position embedding (BERT-style teachers)"
    )
    max_length: int = arg(20, help="prompt length L (padded/truncated; paper: 20)")
    hidden_dim: int = arg(2048, help="hidden width of the spiking MLP (paper: 2048)")
    out_dim: int = arg(0, help="CLIP embedding width (0: the teacher's)")
    time_steps: int = arg(4, help="time steps T")
    train_embeddings: bool = arg(True, help="train the copied token embeddings (official: yes)")
    tau: float = arg(2.0, help="LIF membrane time constant")
    v_threshold: float = arg(1.0, help="LIF threshold")
    surrogate: str = arg("sigmoid", help="surrogate gradient: sigmoid or atan")
    alpha: float = arg(4.0, help="surrogate sharpness")
    detach_reset: bool = arg(True, help="detach the reset term")
    backend: str = arg("auto", help="LIF kernel backend")

    def __post_init__(self):
        for name in ("vocab_size", "embed_dim", "out_dim"):
            if getattr(self, name) < 0:
                raise ValueError(f"model.{name} must be >= 0, got {getattr(self, name)}")
        if self.max_length < 1:
            raise ValueError(f"model.max_length must be >= 1, got {self.max_length}")
        if self.hidden_dim < 1:
            raise ValueError(f"model.hidden_dim must be >= 1, got {self.hidden_dim}")
        _check_neuron(self)


@dataclass
class HFTeacherConfig:
    """A Hugging Face ``CLIPModel`` teacher: ``source`` (hub id or local dir) and its config (filled when saved)."""

    source: str = arg("openai/clip-vit-base-patch16", help="hub id or local folder of a CLIPModel")
    clip_config: dict = arg(
        {}, help="the CLIPConfig as a dict (filled from the source; used to rebuild a run)"
    )
    tokenizer: str = arg("", help="tokenizer hub id / dir ('': the source's)")


@dataclass
class MiniCLIPConfig:
    """The demo teacher: a small CNN image tower and a text tower (frozen all-MiniLM-L6-v2 + linear, or a word bag)."""

    image_size: int = arg(16, help="teacher input size")
    in_channels: int = arg(3, help="image channels")
    channels: list[int] = arg(
        [32, 64, 128], help="CNN widths (conv3x3-BN-ReLU, 2x2 max-pool after all but the last)"
    )
    embed_dim: int = arg(64, help="joint embedding width")
    text_backbone: Literal["minilm", "bag"] = arg(
        "minilm",
        help="minilm: frozen all-MiniLM-L6-v2 + linear; bag: trainable word embeddings + MLP (no download)",
    )
    vocab: list[str] = arg([], help="word vocabulary of the bag text tower (filled from the prompt corpus)")
    word_dim: int = arg(32, help="word-embedding width of the bag text tower")
    max_length: int = arg(16, help="tokens per caption")
    init_logit_scale: float = arg(2.6593, help="initial log temperature (CLIP: ln(1/0.07))")
    mean: list[float] = arg(list(CLIP_MEAN), help="normalisation mean")
    std: list[float] = arg(list(CLIP_STD), help="normalisation std")

    def __post_init__(self):
        if self.image_size < 4:
            raise ValueError(f"model.image_size must be >= 4, got {self.image_size}")
        if not self.channels or any(c < 1 for c in self.channels):
            raise ValueError(f"model.channels must be positive widths, got {self.channels}")
        if self.embed_dim < 1 or self.word_dim < 1 or self.max_length < 1:
            raise ValueError("model.embed_dim, model.word_dim and model.max_length must be >= 1")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels or min(self.std) <= 0:
            raise ValueError(f"model.mean/std need {self.in_channels} values (std > 0)")


# -------------------------------------------------------------------------------------------------------- data
@dataclass
class DataConfig:
    """Images and prompts. Splits: test (official test split, or test_fraction), then val, labelled and unlabelled
    (the rest) from the training images, drawn with split_seed."""

    dataset: str = arg(
        "digits",
        help="digits (sklearn, offline), imagefolder:PATH, or a torchvision set: "
        "cifar10, cifar100, flowers102, pets, caltech101, stl10",
    )
    root: str = arg("data", help="torchvision download/cache folder")
    download: bool = arg(False, help="let torchvision download the data set")
    image_size: int = arg(32, help="images are loaded at this size in [0, 1] (models resize further)")
    split_seed: int = arg(0, help="seed of the random splits")
    test_fraction: float = arg(0.25, help="test share when the data set has no test split")
    val_fraction: float = arg(0.1, help="validation share of the training images")
    labelled_fraction: float = arg(
        0.3, help="labelled share (stage 2) of the training images; the rest is unlabelled"
    )
    max_images: int = arg(0, help="use at most this many images per split (0: all)")
    batch_size: int = arg(64, help="batch size")
    num_workers: int = arg(0, help="data-loader workers")
    classes: list[str] = arg([], help="class names used in prompts (default: the data set's)")
    templates: list[str] = arg(list(DIGIT_TEMPLATES), help="prompt templates, '{}' is the class name")

    def __post_init__(self):
        if self.image_size < 4:
            raise ValueError(f"data.image_size must be >= 4, got {self.image_size}")
        for name in ("test_fraction", "val_fraction", "labelled_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"data.{name} must be in (0, 1), got {getattr(self, name)}")
        if self.val_fraction + self.labelled_fraction >= 1:
            raise ValueError(
                "data.val_fraction + data.labelled_fraction must be < 1 (the rest is unlabelled)"
            )
        if self.batch_size < 1 or self.max_images < 0 or self.num_workers < 0:
            raise ValueError("data.batch_size must be >= 1; data.max_images and data.num_workers >= 0")
        if not self.templates or any("{}" not in t for t in self.templates):
            raise ValueError("data.templates: every template must contain '{}'")


# ------------------------------------------------------------------------------------------------------- verbs
_TEACHER_HELP = (
    "teacher: a train-teacher / finetune-teacher run folder, a Hugging Face CLIPModel (hub id or local dir), "
    "or tiny-random (a random mini-CLIP built in place)"
)
_TEXT_HELP = "align-text run folder (class embeddings), or tiny-random (built in place)"


@dataclass
class TrainTeacherConfig:
    """`train-teacher`: the demo's mini-CLIP, contrastive (image, caption) training on the non-test images."""

    model: MiniCLIPConfig = arg(factory=MiniCLIPConfig, help="mini-CLIP")
    data: DataConfig = arg(factory=DataConfig, help="data")
    train: TrainConfig = arg(factory=lambda: TrainConfig(out_dir="runs/teacher"), help="training")
    optim: OptimConfig = arg(factory=OptimConfig, help="optimizer")


@dataclass
class AlignTextConfig:
    """`align-text` (stage 1): 1 - cos(text SNN(prompt), teacher text features) on the class x template corpus."""

    model: TextEncoderConfig = arg(factory=TextEncoderConfig, help="text SNN")
    data: DataConfig = arg(factory=DataConfig, help="data (class names and templates)")
    teacher: str = arg("tiny-random", help=_TEACHER_HELP)
    teacher_model: MiniCLIPConfig = arg(
        factory=MiniCLIPConfig, help="mini-CLIP built when teacher is tiny-random"
    )
    train: TrainConfig = arg(factory=lambda: TrainConfig(out_dir="runs/align-text"), help="training")
    optim: OptimConfig = arg(factory=OptimConfig, help="optimizer")


@dataclass
class AlignImageConfig:
    """`align-image` (stage 1): 1 - cos(image SNN(x at input_size), teacher image features) on unlabelled images."""

    model: ImageEncoderConfig = arg(factory=ImageEncoderConfig, help="image SNN")
    data: DataConfig = arg(factory=DataConfig, help="data")
    teacher: str = arg("tiny-random", help=_TEACHER_HELP)
    teacher_model: MiniCLIPConfig = arg(
        factory=MiniCLIPConfig, help="mini-CLIP built when teacher is tiny-random"
    )
    train: TrainConfig = arg(factory=lambda: TrainConfig(out_dir="runs/align-image"), help="training")
    optim: OptimConfig = arg(factory=OptimConfig, help="optimizer")


@dataclass
class DualLossConfig:
    """Stage-2 loss: ce_weight * CE(z_s, y) + kl_weight * KL(softmax(z_t) || softmax(z_s)), z = logit_scale * cos."""

    kl_reduction: Literal["batchmean", "sum"] = arg(
        "batchmean",
        help="batchmean (per-sample KL, the math) or sum (official code: grows with the batch size)",
    )
    kl_weight: float = arg(1.0, help="weight of the KL term (0: CE only)")
    ce_weight: float = arg(1.0, help="weight of the CE term")
    logit_scale: float = arg(1.0, help="multiplies the cosine logits (official: 1.0, no temperature)")
    boundary_angle: float = arg(
        -90.0,
        help="gradient-angle gate in degrees (<= 0: off, official -90); angle(dCE, dKL) <= it -> CE step, else skip",
    )

    def __post_init__(self):
        if self.kl_weight < 0 or self.ce_weight < 0 or self.ce_weight + self.kl_weight == 0:
            raise ValueError("loss.ce_weight and loss.kl_weight must be >= 0 and not both 0")
        if not self.logit_scale > 0:
            raise ValueError(f"loss.logit_scale must be > 0, got {self.logit_scale}")
        if self.boundary_angle > 180:
            raise ValueError(f"loss.boundary_angle must be <= 180 degrees, got {self.boundary_angle}")


@dataclass
class FinetuneTeacherConfig:
    """`finetune-teacher` (stage 2): CE fine-tuning of the teacher's image tower on logits against the text-SNN class
    embeddings."""

    model: MiniCLIPConfig = arg(factory=MiniCLIPConfig, help="mini-CLIP built when teacher is tiny-random")
    data: DataConfig = arg(factory=DataConfig, help="data (labelled split)")
    teacher: str = arg("tiny-random", help=_TEACHER_HELP)
    text: str = arg("tiny-random", help=_TEXT_HELP)
    text_model: TextEncoderConfig = arg(
        factory=TextEncoderConfig, help="text SNN built when text is tiny-random"
    )
    logit_scale: float = arg(1.0, help="multiplies the cosine logits (official: 1.0)")
    train: TrainConfig = arg(factory=lambda: TrainConfig(out_dir="runs/teacher-ft"), help="training")
    optim: OptimConfig = arg(factory=lambda: OptimConfig(lr=5e-6), help="optimizer (paper: lr 5e-6)")

    def __post_init__(self):
        if not self.logit_scale > 0:
            raise ValueError(f"logit_scale must be > 0, got {self.logit_scale}")


@dataclass
class DualFinetuneConfig:
    """`dual-finetune` (stage 2): the image SNN trained with CE + KL to the (fine-tuned) teacher on prompt logits."""

    model: ImageEncoderConfig = arg(factory=ImageEncoderConfig, help="image SNN (ignored when init is a run)")
    data: DataConfig = arg(factory=DataConfig, help="data (labelled split)")
    init: str = arg(
        "", help="align-image run folder to start from ('': random init, the no-alignment ablation)"
    )
    teacher: str = arg("tiny-random", help=_TEACHER_HELP + "; unused when loss.kl_weight is 0")
    teacher_model: MiniCLIPConfig = arg(
        factory=MiniCLIPConfig, help="mini-CLIP built when teacher is tiny-random"
    )
    text: str = arg("tiny-random", help=_TEXT_HELP)
    text_model: TextEncoderConfig = arg(
        factory=TextEncoderConfig, help="text SNN built when text is tiny-random"
    )
    loss: DualLossConfig = arg(factory=DualLossConfig, help="dual loss")
    train: TrainConfig = arg(factory=lambda: TrainConfig(out_dir="runs/dual-finetune"), help="training")
    optim: OptimConfig = arg(factory=OptimConfig, help="optimizer")


@dataclass
class EvaluateConfig:
    """`evaluate`: top-1/top-5 with prompt ensembles, open-vocabulary tests, firing rates, energy vs the ANN tower."""

    student: str = arg("", help="dual-finetune (or align-image) run folder", positional=True)
    text: str = arg("", help="align-text run folder (class embeddings)")
    teacher: str = arg(
        "", help="optional teacher to evaluate side by side (same prompts, teacher text tower)"
    )
    data: DataConfig = arg(factory=DataConfig, help="data (test split)")
    split: Literal["test", "val"] = arg("test", help="split to evaluate")
    replace: list[str] = arg(["zero=nought", "eight=8"], help="open vocabulary: class=synonym replacements")
    distractors: list[str] = arg(
        ["letter a", "letter x", "cat", "dog", "car", "tree", "house", "star", "circle", "square"],
        help="open vocabulary: extra class names added as distractors",
    )
    energy_precision: Literal["fp32", "fp16", "int8"] = arg("fp32", help="E_MAC/E_AC preset")
    energy_images: int = arg(32, help="images used for firing rates and the energy estimate")
    out: str = arg("", help="write the metrics JSON here too ('': print only)")

    def __post_init__(self):
        for r in self.replace:
            if r.count("=") != 1 or not all(p.strip() for p in r.split("=")):
                raise ValueError(f"replace: expected class=synonym, got {r!r}")
        if self.energy_images < 1:
            raise ValueError(f"energy_images must be >= 1, got {self.energy_images}")


@dataclass
class DemoConfig:
    """`demo`: offline CPU run of every verb on digits with a mini-CLIP teacher."""

    out: str = arg("runs/spikeclip-demo", help="output folder (metrics.json, report.md, plots)")
    seeds: int = arg(1, help="student seeds (--seeds 3 for the spread in the README; ~3x the time)")

    def __post_init__(self):
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
