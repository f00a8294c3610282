import pytest
import torch

TINY = {
    "encoder_name": "resnet18",
    "unet_base": 8,
    "rfb_mid_channels": 16,
    "low_channels": 8,
    "high_channels": 16,
    "unet_out_channels": 16,
    "decoder_channels": 8,
    "rfb_bn_momentum": 0.1,
}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def tiny():
    return dict(TINY)
