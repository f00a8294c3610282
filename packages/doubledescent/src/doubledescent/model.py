"""The paper's width-k model families, each exposing its penultimate features.

Every model takes one :class:`~doubledescent.config.WidthModelConfig` (``kind``, ``width``, ``input_shape``,
``num_classes``) and has ``features(x)`` (the representation the k-NN probe reads) and ``head(features)`` (the final
linear layer), so ``forward(x) == head(features(x))``; ``forward(x, return_features=True)`` returns both.

- :class:`SimpleFC`: flatten -> Linear(d, N) -> ReLU -> Linear(N, C). Parameters ``(d + 1) N + (N + 1) C``
  (795 N + 10 on MNIST). Paper init: weights ~ N(0, 0.1^2), Xavier-uniform when N = 1; biases PyTorch's default.
- :class:`FiveLayerCNN`: Nakkiran et al.'s 5-layer CNN, conv widths k, 2k, 4k, 8k (3x3, bias, BN, ReLU) with max-pools,
  then Linear(8k, C). Parameters ``378 k^2 + 152 k + 10`` on 3-channel input (540 at k = 1, 1,558,026 at k = 64).
- :class:`PreActResNet18`: Nakkiran et al.'s pre-activation ResNet18 with widths k, 2k, 4k, 8k, final BN-ReLU and global
  average pooling, then Linear(8k, C). Parameters ``2724 k^2 + 229 k + 10`` on 3-channel input (11,172,170 at k = 64).
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from tenfold_core.errors import ConfigError
from tenfold_core.models import register_model

from .config import (
    MODEL_KINDS,
    DataConfig,
    WidthModelConfig,
    cnn_params,
    estimate_params,
    resnet18_params,
    simple_fc_params,
)

__all__ = [
    "WidthModelConfig",
    "DataConfig",
    "WidthModel",
    "SimpleFC",
    "FiveLayerCNN",
    "PreActResNet18",
    "build_model",
    "model_config_for",
    "MODEL_KINDS",
    "simple_fc_params",
    "cnn_params",
    "resnet18_params",
    "estimate_params",
]


def _require(config: WidthModelConfig, name: str) -> tuple[int, tuple[int, ...], int]:
    if config.width is None or config.input_shape is None or config.num_classes is None:
        raise ConfigError(
            f"{name}: model.width, input_shape and num_classes must be set (see model_config_for)"
        )
    if config.width < 1:
        raise ConfigError(f"{name} width must be >= 1, got {config.width}")
    return int(config.width), tuple(int(d) for d in config.input_shape), int(config.num_classes)


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


@register_model
class SimpleFC(WidthModel):
    """One hidden ReLU layer of ``width`` units (the paper's MNIST model)."""

    config_class = WidthModelConfig

    def __init__(self, config: WidthModelConfig):
        super().__init__()
        width, shape, num_classes = _require(config, "SimpleFC")
        self.config = config
        self.width = width
        self.hidden = nn.Linear(math.prod(shape), width)
        self.classifier = nn.Linear(width, num_classes)
        if config.init == "paper":
            if width == 1:
                nn.init.xavier_uniform_(self.hidden.weight)
                nn.init.xavier_uniform_(self.classifier.weight)
            else:
                nn.init.normal_(self.hidden.weight, 0.0, 0.1)
                nn.init.normal_(self.classifier.weight, 0.0, 0.1)

    def features(self, x):
        return F.relu(self.hidden(x.flatten(1)))

    def head(self, f):
        return self.classifier(f)


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=True), nn.BatchNorm2d(cout), nn.ReLU()]


@register_model
class FiveLayerCNN(WidthModel):
    """Conv(k) -> Conv(2k) -> pool -> Conv(4k) -> pool -> Conv(8k) -> pool -> global max-pool -> Linear(8k, C).

    ``pooling="nakkiran"`` (default) pools after conv 2, 3 and 4 (32 -> 16 -> 8 -> 4) then max-pools the 4x4 map, as in
    Nakkiran et al.; ``pooling="official"`` reproduces the paper's code (no pool after conv 2; 32 -> 32 -> 16 -> 8, then
    an 8x8 max-pool). Both have the same parameters; features are the flattened 8k-vector after the last pool.
    """

    config_class = WidthModelConfig

    def __init__(self, config: WidthModelConfig):
        super().__init__()
        k, shape, num_classes = _require(config, "FiveLayerCNN")
        if len(shape) != 3:
            raise ConfigError(f"FiveLayerCNN needs image inputs (channels, height, width), got {shape}")
        self.config = config
        self.width = k
        in_channels, pooling = shape[0], config.pooling
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


@register_model
class PreActResNet18(WidthModel):
    """Pre-activation ResNet18 of width k (stages k, 2k, 4k, 8k; two blocks each), Nakkiran et al.'s model."""

    config_class = WidthModelConfig

    def __init__(self, config: WidthModelConfig):
        super().__init__()
        k, shape, num_classes = _require(config, "PreActResNet18")
        if len(shape) != 3:
            raise ConfigError(f"PreActResNet18 needs image inputs (channels, height, width), got {shape}")
        self.config = config
        self.width = k
        in_channels = shape[0]
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


_CLASSES = {"fc": SimpleFC, "cnn": FiveLayerCNN, "resnet18": PreActResNet18}


def model_config_for(
    config: WidthModelConfig, width: int | None, input_shape: tuple[int, ...], num_classes: int
) -> WidthModelConfig:
    """``config`` with the width and the data's input shape / class count filled in (as stored in a run folder)."""
    if config.input_shape is not None and tuple(config.input_shape) != tuple(input_shape):
        raise ConfigError(
            f"model.input_shape {list(config.input_shape)} does not match the data's {list(input_shape)}"
        )
    if config.num_classes is not None and config.num_classes != num_classes:
        raise ConfigError(
            f"model.num_classes {config.num_classes} does not match the data's {num_classes} classes"
        )
    if config.kind != "fc" and len(input_shape) != 3:
        raise ConfigError(
            f"model '{config.kind}' needs image inputs (channels, height, width); "
            f"this data set has shape {tuple(input_shape)}"
        )
    try:
        return dataclasses.replace(
            config,
            width=int(width if width is not None else config.width),
            input_shape=[int(d) for d in input_shape],
            num_classes=int(num_classes),
        )
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None


def build_model(config: WidthModelConfig) -> WidthModel:
    """The model of ``config.kind`` (fc, cnn, resnet18) described by a filled-in config."""
    if config.kind not in _CLASSES:
        raise ConfigError(f"model.kind: expected one of {', '.join(MODEL_KINDS)}, got {config.kind!r}")
    return _CLASSES[config.kind](config)
