"""One benchmark of defenses against adversarial word substitution, and FreeLB++ (arXiv 2108.12777)"""

__version__ = "0.1.0"
