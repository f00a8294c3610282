"""Watermark a pre-trained language model with backdoor triggers that survive fine-tuning (arXiv 2210.07543)"""

__version__ = "0.1.0"
