"""Adversarial robustness of text classifiers through an information bottleneck (arXiv 2206.05511)"""

__version__ = "0.1.0"
