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


#: split -> case -> (frames, bright frame indices); expected maxDice per case = correct scored frames / scored frames
#: (an empty map scores 2/9 at threshold 0, where every pixel is foreground: below every case's fraction)
SUNSEG = {
    "TestEasyDataset/Seen": {"e1": (6, ())},  # 1.0
    "TestEasyDataset/Unseen": {"e2": (6, (2,))},  # frames 1-4 scored: 3/4
    "TestHardDataset/Seen": {"h1": (7, (2, 3)), "h2": (6, ())},  # 3/5 and 1.0
    "TestHardDataset/Unseen": {"h3": (6, (1, 2, 3))},  # 1/4
}


def write_sunseg_test(root):
    """A miniature SUN-SEG test folder: <split>/Frame/<case>/<case>_a1_image<N>.jpg and GT/<case>/*.png."""
    import numpy as np
    from PIL import Image

    for split, cases in SUNSEG.items():
        for case, (n, bright) in cases.items():
            fdir, gdir = root / split / "Frame" / case, root / split / "GT" / case
            fdir.mkdir(parents=True)
            gdir.mkdir(parents=True)
            for t in range(n):
                img = np.full((16, 16, 3), 230 if t in bright else 20, np.uint8)
                Image.fromarray(img).save(fdir / f"{case}_a1_image{t + 1}.jpg", quality=95)
                m = np.zeros((16, 16), np.uint8)
                m[:, :2] = 255
                Image.fromarray(m).save(gdir / f"{case}_a1_image{t + 1}.png")
    (root / "TrainDataset" / "Frame" / "t1").mkdir(parents=True)  # a SUN-SEG root also holds the training set
    return root


@pytest.fixture
def sunseg_test(tmp_path):
    """(root, SUNSEG): a miniature SUN-SEG test folder and what it holds."""
    return write_sunseg_test(tmp_path / "SUN-SEG"), SUNSEG
