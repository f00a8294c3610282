"""Representation Alignment from Human Feedback (SCIT and DUAL) with LoRA, side by side with DPO (arXiv 2312.15997)"""

__version__ = "0.1.0"
