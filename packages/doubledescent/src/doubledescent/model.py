"""The paper's width-k model families, each exposing its penultimate features.

Every model has ``features(x)`` (the representation the k-NN probe reads) and ``head(features)`` (the final linear
layer), so ``forward(x) == head(features(x))``; ``forward(x, return_features=True)`` returns both.

- :class:`SimpleFC`: flatten -> Linear(d, N) -> ReLU -> Linear(N, C). Parameters ``(d + 1) N + (N + 1) C``
  (795 N + 10 on MNIST). Paper init: weights ~ N(0, 0.1^2), Xavier-uniform when N = 1; biases PyTorch's default.
- :class:`FiveLayerCNN`: Nakkiran et al.'s 5-layer CNN, conv widths k, 2k, 4k, 8k (3x3, bias, BN, ReLU) with max-pools,
  then Linear(8k, C). Parameters ``378 k^2 + 152 k + 10`` on 3-channel input (540 at k = 1, 1,558,026 at k = 64).
- :class:`PreActResNet18`: Nakkiran et al.'s pre-activation ResNet18 with widths k, 2k, 4k, 8k, final BN-ReLU and global
  average pooling, then Linear(8k, C). Parameters ``2724 k^2 + 229 k + 10`` on 3-channel input (11,172,170 at k = 64).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from tenfold_core.errors import ConfigError

__all__ = [
    "WidthModel",
    "SimpleFC",
    "FiveLayerCNN",
    "PreActResNet18",
    "build_model",
    "MODEL_NAMES",
    "simple_fc_params",
    "cnn_params",
    "resnet18_params",
]

MODEL_NAMES = ("fc", "cnn", "resnet18")


class WidthModel(nn.Module):
    """Base class: ``forward = head(features(x))``."""

    width: int

    def features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def head(self, f: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor, return_features: bool = False):
        f = self.features(x)
        logits = self.head(f)
        return (logits, f) if return_features else logits


class SimpleFC(WidthModel):
    """One hidden ReLU layer of ``width`` units (the paper's MNIST model)."""

    def __init__(
        self,
        width: int,
        in_features: int = 784,
        num_classes: int = 10,
        init: Literal["paper", "torch"] = "paper",
    ):
        super().__init__()
        if width < 1:
            raise ConfigError(f"SimpleFC width must be >= 1, got {width}")
        self.width = width
        self.hidden = nn.Linear(in_features, width)
        self.classifier = nn.Linear(width, num_classes)
        if init == "paper":
            if width == 1:
                nn.init.xavier_uniform_(self.hidden.weight)
                nn.init.xavier_uniform_(self.classifier.weight)
            else:
                nn.init.normal_(self.hidden.weight, 0.0, 0.1)
                nn.init.normal_(self.classifier.weight, 0.0, 0.1)
        elif init != "torch":
            raise ConfigError(f"SimpleFC init must be 'paper' or 'torch', got {init!r}")

    def features(self, x):
        return F.relu(self.hidden(x.flatten(1)))

    def head(self, f):
        return self.classifier(f)


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=True), nn.BatchNorm2d(cout), nn.ReLU()]


class FiveLayerCNN(WidthModel):
    """Conv(k) -> Conv(2k) -> pool -> Conv(4k) -> pool -> Conv(8k) -> pool -> global max-pool -> Linear(8k, C).

    ``pooling="nakkiran"`` (default) pools after conv 2, 3 and 4 (32 -> 16 -> 8 -> 4) then max-pools the 4x4 map, as in
    Nakkiran et al.; ``pooling="official"`` reproduces the paper's code (no pool after conv 2; 32 -> 32 -> 16 -> 8, then
    an 8x8 max-pool). Both have the same parameters; features are the flattened 8k-vector after the last pool.
    """

    def __init__(
        self,
        width: int,
        in_channels: int = 3,
        num_classes: int = 10,
        pooling: Literal["nakkiran", "official"] = "nakkiran",
    ):
        super().__init__()
        if width < 1:
            raise ConfigError(f"FiveLayerCNN width must be >= 1, got {width}")
        if pooling not in ("nakkiran", "official"):
            raise ConfigError(f"FiveLayerCNN pooling must be 'nakkiran' or 'official', got {pooling!r}")
        k = self.width = width
        pool_after_2 = [nn.MaxPool2d(2)] if pooling == "nakkiran" else []
        self.body = nn.Sequential(
            *_conv_bn(in_channels, k),
            *_conv_bn(k, 2 * k),
            *pool_after_2,
            *_conv_bn(2 * k, 4 * k),
            nn.MaxPool2d(2),
            *_conv_bn(4 * k, 8 * k),
            nn.MaxPool2d(2),
            nn.AdaptiveMaxPool2d(1),
        )
        self.fc = nn.Linear(8 * k, num_classes)

    def features(self, x):
        return self.body(x).flatten(1)

    def head(self, f):
        return self.fc(f)


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3 with an identity (or 1x1-conv) shortcut, as in He et al. 2016b."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, padding=1, bias=False)
        self.shortcut = (
            nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else nn.Identity()
        )

    def forward(self, x):
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if not isinstance(self.shortcut, nn.Identity) else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class PreActResNet18(WidthModel):
    """Pre-activation ResNet18 of width k (stages k, 2k, 4k, 8k; two blocks each), Nakkiran et al.'s model."""

    def __init__(self, width: int, in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        if width < 1:
            raise ConfigError(f"PreActResNet18 width must be >= 1, got {width}")
        k = self.width = width
        self.conv1 = nn.Conv2d(in_channels, k, 3, 1, padding=1, bias=False)
        stages, cin = [], k
        for i, cout in enumerate((k, 2 * k, 4 * k, 8 * k)):
            stride = 1 if i == 0 else 2
            stages += [PreActBlock(cin, cout, stride), PreActBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(8 * k)
        self.linear = nn.Linear(8 * k, num_classes)

    def features(self, x):
        out = self.layers(self.conv1(x))
        out = F.relu(self.bn(out))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)

    def head(self, f):
        return self.linear(f)


# ------------------------------------------------------------------------------------------ parameter formulas
def simple_fc_params(width: int, in_features: int = 784, num_classes: int = 10) -> int:
    return (in_features + 1) * width + (width + 1) * num_classes


def cnn_params(k: int, in_channels: int = 3, num_classes: int = 10) -> int:
    """Convs (with bias) + BN (2 per channel) + FC: ``378 k^2 + (9 in + 45 + 8 C) k + C``; 378k^2+152k+10 on CIFAR."""
    convs = (9 * in_channels * k + k) + (18 * k * k + 2 * k) + (72 * k * k + 4 * k) + (288 * k * k + 8 * k)
    bns = 2 * (k + 2 * k + 4 * k + 8 * k)
    return convs + bns + 8 * k * num_classes + num_classes


def resnet18_params(k: int, in_channels: int = 3, num_classes: int = 10) -> int:
    """``2724 k^2 + (9 in + 122 + 8 C) k + C`` (no conv biases); 2724k^2 + 229k + 10 on CIFAR-10."""
    return 2724 * k * k + (9 * in_channels + 122 + 8 * num_classes) * k + num_classes


def build_model(
    name: str,
    width: int,
    input_shape: tuple[int, ...],
    num_classes: int,
    fc_init: str = "paper",
    cnn_pooling: str = "nakkiran",
) -> WidthModel:
    """A model of the family ``name`` (fc, cnn, resnet18) and width ``width`` for inputs of ``input_shape``."""
    if name == "fc":
        return SimpleFC(width, math.prod(input_shape), num_classes, init=fc_init)  # type: ignore[arg-type]
    if name in ("cnn", "resnet18"):
        if len(input_shape) != 3:
            raise ConfigError(
                f"model '{name}' needs image inputs (channels, height, width); this data set has shape {tuple(input_shape)}"
            )
        if name == "cnn":
            return FiveLayerCNN(width, input_shape[0], num_classes, pooling=cnn_pooling)  # type: ignore[arg-type]
        return PreActResNet18(width, input_shape[0], num_classes)
    raise ConfigError(f"model: expected one of {', '.join(MODEL_NAMES)}, got {name!r}")
