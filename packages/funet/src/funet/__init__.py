"""Frame-UNet (FUnet) video segmentation."""

__version__ = "0.1.0"
