"""One benchmark of defenses against adversarial word substitution, and FreeLB++ (arXiv 2108.12777)."""

from textdefender.config import (
    DEFENSES,
    MISSING_DEFENSES,
    AttackConfig,
    DataConfig,
    DefenseConfig,
    ModelConfig,
)

__version__ = "0.1.0"

_LAZY = {
    "DefendedClassifier": "textdefender.model",
    "DefenseModule": "textdefender.train",
    "train": "textdefender.train",
    "attack": "textdefender.evaluate",
    "attack_model": "textdefender.evaluate",
    "victims_of": "textdefender.evaluate",
    "load_trained": "textdefender.evaluate",
    "benchmark": "textdefender.benchmark",
    "build_table": "textdefender.benchmark",
    "demo": "textdefender.demo",
    "build_defense": "textdefender.defenses",
    "SynonymIndex": "textdefender.defenses",
    "TokenAwareVAT": "textdefender.defenses",
    "InfoBERT": "textdefender.defenses",
    "ASCC": "textdefender.defenses",
    "DNE": "textdefender.defenses",
    "SAFER": "textdefender.defenses",
    "augmented_training_set": "textdefender.augment",
    "mixup_loss": "textdefender.augment",
}

__all__ = ["DEFENSES", "MISSING_DEFENSES", "AttackConfig", "DataConfig", "DefenseConfig", "ModelConfig",
           "__version__", *_LAZY]  # fmt: skip


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'textdefender' has no attribute {name!r}")
