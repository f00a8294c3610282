"""Images and prompts: scikit-learn digits (offline), any ImageFolder, torchvision data sets (optional).

Every split yields ``(image [3, S, S] float in [0, 1], label)``; models resize further (the SNN to ``input_size``, the
teacher to its own size). Splits: ``test`` (the data set's test split, or ``test_fraction``), then ``val``,
``labelled`` (stage 2) and ``unlabelled`` (stage 1: the rest) from the training images, drawn with ``split_seed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset, TensorDataset

from spikeclip.config import DIGIT_NAMES, DataConfig
from tenfold_core.errors import ConfigError, DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageData",
    "ImageFolderDataset",
    "build_prompts",
    "load_data",
    "load_digits_images",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
TORCHVISION_SETS = ("cifar10", "cifar100", "flowers102", "pets", "caltech101", "stl10")


@dataclass
class ImageData:
    """Class names and the four splits (each a Dataset of ``(image, label)``)."""

    classes: list[str]
    splits: dict[str, Dataset]

    def split(self, name: str) -> Dataset:
        ds = self.splits[name]
        if len(ds) == 0:
            raise DataError(f"data: the '{name}' split is empty (use more images or other fractions)")
        return ds


def build_prompts(classes: list[str], templates: list[str]) -> tuple[list[str], list[int]]:
    """The class x template prompt corpus: ``(texts, class index per text)``."""
    texts, ids = [], []
    for c, name in enumerate(classes):
        for t in templates:
            texts.append(t.format(name))
            ids.append(c)
    return texts, ids


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


def load_digits_images(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 8x8 digits as ``[N, 3, S, S]`` in [0, 1] (bilinear upsampling) and labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = _resize(x, image_size).expand(-1, 3, -1, -1).contiguous()
    return x, torch.tensor(d.target, dtype=torch.long)


class ImageFolderDataset(Dataset):
    """``root/<class>/<image>`` read with Pillow, RGB, resized to ``image_size``; a bad file raises one DataError line."""

    def __init__(self, root: str | Path, image_size: int, classes: list[str] | None = None) -> None:
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"{root}: no such image folder")
        found = sorted(p.name for p in root.iterdir() if p.is_dir())
        self.classes = classes if classes is not None else found
        missing = [c for c in self.classes if not (root / c).is_dir()]
        if missing:
            raise DataError(f"{root}: class folder '{missing[0]}' is missing (found: {', '.join(found)})")
        self.items: list[tuple[Path, int]] = []
        for i, c in enumerate(self.classes):
            for p in sorted((root / c).rglob("*")):
                if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
                    self.items.append((p, i))
        if not self.items:
            raise DataError(f"{root}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in its class folders")
        self.image_size = image_size
        self._check_headers()

    def _check_headers(self) -> None:
        """Open every file's header (cheap): a broken file is reported before any training starts."""
        from PIL import Image, UnidentifiedImageError

        for path, _ in self.items:
            try:
                with Image.open(path) as im:
                    im.size  # noqa: B018
            except (OSError, UnidentifiedImageError, ValueError) as e:
                raise DataError(f"{path}: not a readable image ({type(e).__name__})") from None

    def __len__(self) -> int:
        return len(self.items)

    @property
    def targets(self) -> list[int]:
        return [y for _, y in self.items]

    def __getitem__(self, i: int):
        from PIL import Image, UnidentifiedImageError

        path, y = self.items[i]
        try:
            with Image.open(path) as im:
                im = im.convert("RGB").resize((self.image_size, self.image_size), Image.BILINEAR)
                arr = np.asarray(im, dtype=np.float32) / 255.0
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise DataError(f"{path}: not a readable image ({type(e).__name__}: {str(e)[:120]})") from None
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous(), y


class _TorchvisionSet(Dataset):
    def __init__(self, ds, image_size: int) -> None:
        self.ds, self.image_size = ds, image_size

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        im, y = self.ds[i]
        im = im.convert("RGB").resize((self.image_size, self.image_size))
        arr = np.asarray(im, dtype=np.float32) / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous(), int(y)


def _torchvision(cfg: DataConfig) -> tuple[list[str], Dataset, Dataset | None]:
    try:
        import torchvision.datasets as tvd
    except ImportError:
        raise ConfigError(
            f"data.dataset {cfg.dataset}: needs torchvision (pip install tenfold-spikeclip[torchvision])"
        ) from None
    kw = dict(root=cfg.root, download=cfg.download)
    name = cfg.dataset
    try:
        if name in ("cifar10", "cifar100"):
            cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
            train, test = cls(train=True, **kw), cls(train=False, **kw)
            classes = list(train.classes)
        elif (
            name == "flowers102"
        ):  # the official code trains on the 6149-image "test" split, tests on "train"
            train, test = tvd.Flowers102(split="test", **kw), tvd.Flowers102(split="train", **kw)
            classes = [f"flower {i}" for i in range(102)]
        elif name == "pets":
            train, test = tvd.OxfordIIITPet(split="trainval", **kw), tvd.OxfordIIITPet(split="test", **kw)
            classes = list(train.classes)
        elif name == "stl10":
            train, test = tvd.STL10(split="train", **kw), tvd.STL10(split="test", **kw)
            classes = list(train.classes)
        else:  # caltech101: random 80/20 split with seed 42 (official)
            full = tvd.Caltech101(**kw)
            classes = list(full.categories)
            return classes, _TorchvisionSet(full, cfg.image_size), None
    except RuntimeError as e:
        raise DataError(
            f"data.dataset {name} in {cfg.root}: {str(e).splitlines()[0]} (set data.download true)"
        ) from None
    return classes, _TorchvisionSet(train, cfg.image_size), _TorchvisionSet(test, cfg.image_size)


def _cap(idx: np.ndarray, n: int) -> np.ndarray:
    return idx[:n] if n else idx


def load_data(cfg: DataConfig) -> ImageData:
    """The data set named by ``cfg.dataset`` with its splits."""
    rng = np.random.default_rng(cfg.split_seed)
    test: Dataset | None = None
    if cfg.dataset == "digits":
        x, y = load_digits_images(cfg.image_size)
        classes, full = list(DIGIT_NAMES), TensorDataset(x, y)
    elif cfg.dataset.startswith("imagefolder:"):
        root = Path(cfg.dataset.split(":", 1)[1]).expanduser()
        given = cfg.classes or None
        if (root / "train").is_dir() and (root / "test").is_dir():
            full = ImageFolderDataset(root / "train", cfg.image_size)
            test = ImageFolderDataset(root / "test", cfg.image_size, full.classes)
        else:
            full = ImageFolderDataset(root, cfg.image_size)
        classes = given or [c.replace("_", " ") for c in full.classes]
    elif cfg.dataset in TORCHVISION_SETS:
        if cfg.dataset == "caltech101":
            rng = np.random.default_rng(42)
        classes, full, test = _torchvision(cfg)
    else:
        raise ConfigError(
            f"data.dataset: expected digits, imagefolder:PATH or one of {', '.join(TORCHVISION_SETS)}, got {cfg.dataset!r}"
        )
    if cfg.classes:
        if len(cfg.classes) != len(classes):
            raise ConfigError(
                f"data.classes: {len(cfg.classes)} names given, the data set has {len(classes)} classes"
            )
        classes = list(cfg.classes)
    order = rng.permutation(len(full))
    if test is None:
        n_test = max(1, int(round(cfg.test_fraction * len(full))))
        test = Subset(full, _cap(order[:n_test], cfg.max_images).tolist())
        order = order[n_test:]
    elif cfg.max_images:
        test = Subset(
            test, np.random.default_rng(cfg.split_seed).permutation(len(test))[: cfg.max_images].tolist()
        )
    n_val = max(1, int(round(cfg.val_fraction * len(order))))
    n_lab = max(1, int(round(cfg.labelled_fraction * len(order))))
    splits = {
        "val": Subset(full, _cap(order[:n_val], cfg.max_images).tolist()),
        "labelled": Subset(full, _cap(order[n_val : n_val + n_lab], cfg.max_images).tolist()),
        "unlabelled": Subset(full, _cap(order[n_val + n_lab :], cfg.max_images).tolist()),
        "test": test,
    }
    return ImageData(classes, splits)
