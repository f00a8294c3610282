"""Adversarial robustness of text classifiers through an information bottleneck (arXiv 2206.05511)."""

from ibrobust.config import (
    AdvConfig,
    AttackConfig,
    DataConfig,
    IBConfig,
    ObjectiveConfig,
)

__version__ = "0.1.0"

_LAZY = {
    "IBClassifier": "ibrobust.model",
    "IBOutput": "ibrobust.model",
    "gaussian_kl": "ibrobust.losses",
    "ib_loss": "ibrobust.losses",
    "IBModule": "ibrobust.train",
    "train": "ibrobust.train",
    "evaluate": "ibrobust.evaluate",
    "attack": "ibrobust.evaluate",
    "attack_model": "ibrobust.evaluate",
    "clean_accuracy": "ibrobust.evaluate",
    "load_trained": "ibrobust.evaluate",
    "sweep_beta": "ibrobust.sweep",
    "demo": "ibrobust.demo",
}

__all__ = ["AdvConfig", "AttackConfig", "DataConfig", "IBConfig", "ObjectiveConfig", "__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ibrobust' has no attribute {name!r}")
