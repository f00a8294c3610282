"""SpikeCLIP: spiking CLIP with alignment pre-training and dual-loss fine-tuning (arXiv 2310.06488)"""

__version__ = "0.1.0"
