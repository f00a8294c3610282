"""Empathetic response generation with dynamically selected commonsense knowledge (arXiv 2306.04657)"""

__version__ = "0.1.0"
