"""Video segmentation data: folder layouts, a clip sampler, and a synthetic endoscopy generator.

Layouts read by :func:`scan_videos` (frames and masks are matched by file stem):

- SUN-SEG: ``ROOT/Frame/<video>/*.jpg`` and ``ROOT/GT/<video>/*.png``
- simple:  ``ROOT/<video>/frames/*.png`` (or .jpg) and ``ROOT/<video>/masks/*.png``

:class:`ClipDataset` yields clips of ``F`` consecutive frames taken every ``stride`` frames:
``{"frames": [F, 3, H, W] float (ImageNet-normalised), "masks": [F, 1, H, W] in {0, 1}, "corrupted": [F] bool}``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from tenfold_core.errors import DataError

__all__ = [
    "Video",
    "scan_videos",
    "ClipDataset",
    "clip_starts",
    "SyntheticConfig",
    "make_synthetic_video",
    "make_synthetic_videos",
    "write_videos",
    "normalize",
    "denormalize",
    "IMAGE_EXTS",
    "VIDEO_EXTS",
    "read_video_file",
    "iter_video_frames",
    "frame_sort_key",
    "EpochClipSampler",
    "find_splits",
]

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """[..., 3, H, W] in [0, 1] -> ImageNet-normalised."""
    return (x - MEAN.to(x)) / STD.to(x)


def denormalize(x: torch.Tensor) -> torch.Tensor:
    return (x * STD.to(x) + MEAN.to(x)).clamp(0, 1)


# ------------------------------------------------------------------------------------------------ videos
@dataclass
class Video:
    """One video: frame files (sorted) and, when known, one mask file per frame; or in-memory arrays."""

    name: str
    frames: list = field(default_factory=list)  # paths, or an array [T, H, W, 3] uint8/float
    masks: list | None = None  # paths, or an array [T, H, W]
    corrupted: list[bool] | None = None

    def __len__(self) -> int:
        return len(self.frames)


def frame_sort_key(path: Path) -> tuple:
    """Natural order: the numbers in the name compare as numbers (SUN-SEG ``case1_a2_..._image10`` after
    ``..._image9``; a non-padded ``aK`` keeps its temporal place)."""
    parts = re.split(r"(\d+)", path.stem)
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in parts if t) + (path.suffix,)


def _images(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS), key=frame_sort_key
    )


def _pair(name: str, frame_dir: Path, mask_dir: Path | None, require_masks: bool) -> Video:
    frames = _images(frame_dir)
    if not frames:
        raise DataError(f"{frame_dir}: no image files ({', '.join(IMAGE_EXTS)})")
    if mask_dir is None or not mask_dir.is_dir():
        if require_masks:
            raise DataError(f"{mask_dir}: mask folder missing for video {name!r}")
        return Video(name, frames, None)
    by_stem = {p.stem: p for p in _images(mask_dir)}
    masks = []
    for f in frames:
        m = by_stem.get(f.stem)
        if m is None:
            if require_masks:
                raise DataError(f"{mask_dir / (f.stem + '.png')}: missing mask for frame {f}")
            return Video(name, frames, None)
        masks.append(m)
    return Video(name, frames, masks)


def scan_videos(root: str | Path, require_masks: bool = True) -> list[Video]:
    """Find the videos under ``root`` (SUN-SEG or simple layout, or ``root`` itself being one frames folder)."""
    videos = _scan(Path(root), require_masks)
    flags_file = Path(root) / "corrupted.json"
    if flags_file.is_file():
        import json

        try:
            flags = json.loads(flags_file.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise DataError(f"{flags_file}: not valid JSON ({e})") from None
        for v in videos:
            f = flags.get(v.name) if isinstance(flags, dict) else None
            if isinstance(f, list) and len(f) == len(v):
                v.corrupted = [bool(x) for x in f]
    return videos


def _scan(root: Path, require_masks: bool) -> list[Video]:
    if not root.is_dir():
        raise DataError(f"{root}: no such data folder")
    if (root / "Frame").is_dir():
        vids = [d for d in sorted((root / "Frame").iterdir(), key=frame_sort_key) if d.is_dir()]
        if not vids:
            raise DataError(f"{root / 'Frame'}: no video folders")
        return [_pair(d.name, d, root / "GT" / d.name, require_masks) for d in vids]
    if (root / "frames").is_dir():
        return [_pair(root.name, root / "frames", root / "masks", require_masks)]
    vids = [d for d in sorted(root.iterdir(), key=frame_sort_key) if d.is_dir() and (d / "frames").is_dir()]
    if vids:
        return [_pair(d.name, d / "frames", d / "masks", require_masks) for d in vids]
    if not require_masks and _images(root):
        return [Video(root.parent.name if root.name == "frames" else root.name, _images(root), None)]
    raise DataError(
        f"{root}: expected Frame/<video>/*.jpg + GT/<video>/*.png (SUN-SEG) or <video>/frames/*.png + "
        "<video>/masks/*.png"
    )


def find_splits(root: str | Path) -> dict[str, Path] | None:
    """The SUN-SEG test splits under ``root``: ``{"TestEasyDataset/Seen": path, ...}``, or None for one data set.

    SUN-SEG's test layout is ``TestEasyDataset/{Seen,Unseen}/{Frame,GT}/<case>/`` and the same for
    ``TestHardDataset`` (older releases: ``TestEasyDataset/{Frame,GT}`` without Seen/Unseen). A split is every folder
    up to two levels below ``root`` that holds a ``Frame/`` folder; ``root`` pointing at ``TestEasyDataset`` (splits
    ``Seen``, ``Unseen``) or at the SUN-SEG root (``TestEasyDataset/Seen`` ...) both work. ``root`` that holds
    ``Frame/`` itself is one data set (None). Next to test splits, ``Train*`` folders are left out.
    """
    root = Path(root)
    if not root.is_dir() or (root / "Frame").is_dir():
        return None
    found: dict[str, Path] = {}
    for d in sorted((p for p in root.iterdir() if p.is_dir()), key=frame_sort_key):
        if (d / "Frame").is_dir():
            found[d.name] = d
            continue
        for e in sorted((p for p in d.iterdir() if p.is_dir()), key=frame_sort_key):
            if (e / "Frame").is_dir():
                found[f"{d.name}/{e.name}"] = e
    test = {k: v for k, v in found.items() if not k.lower().startswith("train")}
    return (test or found) or None  # a SUN-SEG root: its TrainDataset is not a test split


VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg")


def read_video_file(path: str | Path) -> Video:
    """Decode a video file with PyAV (``pip install av``) into an in-memory :class:`Video` (no masks)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such video file")
    try:
        import av
    except ImportError:
        raise DataError(
            f"{path}: reading video files needs PyAV (pip install av); or extract the frames to a folder"
        ) from None
    try:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except Exception as e:  # PyAV raises many error types for broken files
        raise DataError(f"{path}: cannot decode video ({type(e).__name__}: {e})") from None
    if not frames:
        raise DataError(f"{path}: no video frames")
    return Video(path.stem, np.stack(frames), None)


def _load_rgb(p: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            return np.array(im.convert("RGB"))
    except (OSError, UnidentifiedImageError) as e:
        raise DataError(f"{p}: cannot read image ({e})") from None


def _load_mask(p: Path) -> np.ndarray:
    """A binary mask (> 127 after conversion to grey). A mask that is far from binary (an RGB photo or noise saved
    as a mask: many pixels neither near 0 nor near 255) is still binarised, with a warning naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            a = np.asarray(im.convert("L"))
    except (OSError, UnidentifiedImageError) as e:
        raise DataError(f"{p}: cannot read mask ({e})") from None
    grey = ((a > 32) & (a < 223)).mean()
    if grey > 0.05:
        warnings.warn(
            f"{p}: not a binary mask ({100 * grey:.0f}% of pixels are neither black nor white); binarised at 127",
            stacklevel=2,
        )
    return (a > 127).astype(np.float32)


def clip_starts(n_frames: int, num_frames: int, stride: int = 1, step: int | None = None) -> list[int]:
    """Start indices of clips of ``num_frames`` frames every ``stride`` frames; clips start every ``step`` frames
    (default: non-overlapping). A video shorter than one clip gives one clip with its last frame repeated."""
    span = (num_frames - 1) * stride + 1
    step = step or span
    if n_frames <= span:
        return [0]
    starts = list(range(0, n_frames - span + 1, step))
    if starts[-1] != n_frames - span:
        starts.append(n_frames - span)  # cover the tail
    return starts


class ClipDataset(Dataset):
    """Clips of ``num_frames`` frames from :class:`Video` s, resized to ``size`` (H, W), optionally augmented.

    Augmentation (the same for every frame of a clip) is drawn from ``(seed, epoch, clip index)`` only: a data set
    object per model, workers that never repeat each other, and identical draws after a restart. The epoch comes in
    with the index from :class:`EpochClipSampler` (index ``epoch * len + i``); a plain index means epoch 0.
    Options: ``hflip``/``vflip`` (p = 0.5), ``color_jitter`` (gain and offset), ``multiscale`` (random rescale
    factors, the output resized back), ``random_crop`` (fraction of each side), ``rotation`` (degrees).
    """

    def __init__(
        self,
        videos: list[Video],
        num_frames: int = 5,
        stride: int = 1,
        step: int | None = None,
        size: tuple[int, int] | list[int] | None = (256, 448),
        augment: bool = False,
        seed: int = 0,
        hflip: bool = True,
        vflip: bool = True,
        color_jitter: float = 0.15,
        multiscale: tuple[float, ...] | list[float] = (),
        random_crop: float = 0.0,
        rotation: float = 0.0,
    ):
        if not videos:
            raise DataError("no videos to make clips from")
        self.videos, self.num_frames, self.stride = videos, num_frames, stride
        self.size = tuple(size) if size else None
        self.augment, self.seed = augment, seed
        self.hflip, self.vflip, self.color_jitter = hflip, vflip, color_jitter
        self.multiscale, self.random_crop, self.rotation = tuple(multiscale), random_crop, rotation
        self.index = [
            (vi, s) for vi, v in enumerate(videos) for s in clip_starts(len(v), num_frames, stride, step)
        ]

    def __len__(self) -> int:
        return len(self.index)

    def frame_ids(self, i: int) -> tuple[int, list[int]]:
        vi, s = self.index[i]
        n = len(self.videos[vi])
        return vi, [min(s + k * self.stride, n - 1) for k in range(self.num_frames)]

    def _frame(self, v: Video, j: int) -> torch.Tensor:
        a = _load_rgb(v.frames[j]) if isinstance(v.frames[j], Path) else np.asarray(v.frames[j])
        t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float()
        return t / 255.0 if a.dtype == np.uint8 else t

    def _mask(self, v: Video, j: int) -> torch.Tensor:
        m = v.masks[j]
        m = _load_mask(m) if isinstance(m, Path) else (np.asarray(m) > 0.5).astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(m))[None]

    def _augment(self, frames, masks, rng):
        if self.hflip and rng.random() < 0.5:
            frames, masks = frames.flip(-1), masks.flip(-1)
        if self.vflip and rng.random() < 0.5:
            frames, masks = frames.flip(-2), masks.flip(-2)
        h, w = frames.shape[-2:]
        if self.rotation or self.random_crop or self.multiscale:
            ang = np.deg2rad(rng.uniform(-self.rotation, self.rotation)) if self.rotation else 0.0
            scale = float(rng.choice(self.multiscale)) if self.multiscale else 1.0
            c = self.random_crop
            zoom = 1.0 / (1.0 - rng.uniform(0, c)) if c else 1.0
            ty, tx = (rng.uniform(-c, c), rng.uniform(-c, c)) if c else (0.0, 0.0)
            k = zoom * scale
            cos, sin = np.cos(ang) / k, np.sin(ang) / k
            theta = torch.tensor([[cos, -sin * h / w, tx], [sin * w / h, cos, ty]], dtype=frames.dtype)
            grid = F.affine_grid(
                theta[None].expand(len(frames), 2, 3), list(frames.shape), align_corners=False
            )
            frames = F.grid_sample(frames, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            masks = (F.grid_sample(masks, grid, mode="nearest", align_corners=False) > 0.5).float()
        if self.color_jitter:
            cj = self.color_jitter
            frames = (frames * rng.uniform(1 - cj, 1 + cj) + rng.uniform(-cj / 3, cj / 3)).clamp(0, 1)
        return frames, masks

    def __getitem__(self, idx: int) -> dict:
        epoch, i = divmod(int(idx), len(self))
        vi, ids = self.frame_ids(i)
        v = self.videos[vi]
        frames = torch.stack([self._frame(v, j) for j in ids])  # [F, 3, h, w]
        if v.masks is not None:
            masks = [self._mask(v, j) for j in ids]
            for j, m in zip(ids, masks, strict=True):
                if m.shape[-2:] != frames.shape[-2:]:
                    where = v.masks[j] if isinstance(v.masks[j], Path) else f"video {v.name!r} frame {j}"
                    raise DataError(
                        f"{where}: mask size {tuple(m.shape[-2:])} (H, W) != frame size {tuple(frames.shape[-2:])}"
                        f" of {v.frames[j] if isinstance(v.frames[j], Path) else 'its frame'}"
                    )
            masks = torch.stack(masks)
        else:
            masks = torch.zeros(len(ids), 1, *frames.shape[-2:])
        if self.size and tuple(frames.shape[-2:]) != self.size:
            frames = F.interpolate(frames, size=self.size, mode="bilinear", align_corners=False)
            masks = F.interpolate(masks, size=self.size, mode="nearest")
        if self.augment:
            frames, masks = self._augment(frames, masks, np.random.default_rng([self.seed, epoch, i]))
        corrupted = torch.tensor([bool(v.corrupted[j]) if v.corrupted else False for j in ids])
        return {
            "frames": normalize(frames),
            "masks": masks,
            "corrupted": corrupted,
            "video": vi,
            "start": ids[0],
        }


class EpochClipSampler(torch.utils.data.Sampler):
    """Shuffled (or ordered) clip indices drawn from (seed, epoch), yielded as ``epoch * n + i`` so that
    :class:`ClipDataset` seeds each clip's augmentation by epoch and index. Lightning calls ``set_epoch`` (also
    through its distributed wrapper)."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True):
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        order = (
            np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
            if self.shuffle
            else range(self.n)
        )
        base = self.epoch * self.n
        return iter([base + int(i) for i in order])

    def __len__(self) -> int:
        return self.n


def iter_video_frames(path: str | Path):
    """Yield ``(stem, rgb uint8 [H, W, 3])`` one frame at a time from a video file (PyAV) or a frames folder, so
    that memory does not grow with the video length."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() in VIDEO_EXTS:
        try:
            import av
        except ImportError:
            raise DataError(
                f"{path}: reading video files needs PyAV (pip install av); or extract the frames"
            ) from None
        try:
            with av.open(str(path)) as container:
                for j, fr in enumerate(container.decode(video=0)):
                    yield f"{j:06d}", fr.to_ndarray(format="rgb24")
        except DataError:
            raise
        except Exception as e:  # PyAV raises many error types for broken files
            raise DataError(f"{path}: cannot decode video ({type(e).__name__}: {e})") from None
        return
    if not path.is_dir():
        raise DataError(f"{path}: no such video file or frames folder")
    files = _images(path)
    if not files:
        raise DataError(f"{path}: no image files ({', '.join(IMAGE_EXTS)})")
    for f in files:
        yield f.stem, _load_rgb(f)


# ------------------------------------------------------------------------------------------------ synthetic
@dataclass
class SyntheticConfig:
    """A synthetic endoscopy video: circular aperture, tissue texture + noise, one tubular "nerve" that drifts and
    bends, specular highlights, a distracting vessel, and corrupted frames (smoke haze, motion blur, specular
    burst) that the neighbouring frames can fix: the mask always keeps the full nerve."""

    height: int = 64
    width: int = 64
    frames: int = 20
    corrupt_prob: float = 0.25
    nerve_width: tuple[float, float] = (0.06, 0.1)  # radius as a fraction of the shorter side
    noise: float = 0.03
    corrupt_strength: float = (
        1.0  # > 1: denser smoke, longer blur, larger glare (the nerve stays in the mask)
    )


def _smooth_noise(rng, h, w, cells=6) -> np.ndarray:
    g = torch.from_numpy(rng.standard_normal((1, 1, cells, cells)).astype(np.float32))
    return F.interpolate(g, size=(h, w), mode="bicubic", align_corners=False)[0, 0].numpy()


def _bezier(p: np.ndarray, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p[0] + 2 * (1 - t) * t * p[1] + t**2 * p[2]


def _tube_distance(pts: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    d = (yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2
    return np.sqrt(d.min(-1))


def _box_blur(img: np.ndarray, k: int, axis: int) -> np.ndarray:
    """Box blur of an [H, W, C] image along one axis (0: vertical, 1: horizontal)."""
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    ks = (k, 1) if axis == 0 else (1, k)
    pad = (k // 2, 0) if axis == 0 else (0, k // 2)
    out = F.avg_pool2d(t, ks, stride=1, padding=pad, count_include_pad=False)
    return out[0].permute(1, 2, 0).numpy()


def make_synthetic_video(cfg: SyntheticConfig | None = None, seed: int = 0) -> Video:
    """One synthetic video as in-memory arrays (frames uint8 [T, H, W, 3], masks [T, H, W], corruption flags)."""
    cfg = cfg or SyntheticConfig()
    rng = np.random.default_rng(seed)
    h, w, s = cfg.height, cfg.width, min(cfg.height, cfg.width)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = h / 2, w / 2
    aperture = np.clip((0.52 * s - np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)) / (0.05 * s), 0, 1)
    tissue = np.array([0.78, 0.38, 0.33]) + rng.uniform(-0.05, 0.05, 3)
    tex = 0.6 * _smooth_noise(rng, h, w, 5) + 0.4 * _smooth_noise(rng, h, w, 12)
    nerve_col = np.array([0.93, 0.86, 0.62]) + rng.uniform(-0.04, 0.04, 3)
    # nerve: three control points across the view, drifting and bending over time
    ang = rng.uniform(0, np.pi)
    d = np.array([np.sin(ang), np.cos(ang)]) * 0.45 * s
    ctr = np.array([cy, cx]) + rng.uniform(-0.12, 0.12, 2) * s
    ctrl = np.stack([ctr - d, ctr + rng.uniform(-0.25, 0.25, 2) * s, ctr + d])
    vel = rng.uniform(-0.012, 0.012, 2) * s
    bend_phase, bend_amp = rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.15) * s
    radius = rng.uniform(*cfg.nerve_width) * s
    # a thin red vessel (not to be segmented)
    vctrl = np.array([cy, cx]) + rng.uniform(-0.4, 0.4, (3, 2)) * s
    vdist = _tube_distance(_bezier(vctrl), yy, xx)
    frames, masks, flags = [], [], []
    for t in range(cfg.frames):
        p = ctrl + vel * t
        p[1] = p[1] + bend_amp * np.sin(bend_phase + 0.35 * t) * np.array([d[1], -d[0]]) / (
            np.linalg.norm(d) + 1e-6
        )
        dist = _tube_distance(_bezier(p), yy, xx)
        mask = dist <= radius
        light = 0.85 + 0.15 * tex
        img = tissue[None, None] * light[..., None]
        img = (
            img
            * (1 - 0.35 * np.exp(-(vdist**2) / (2 * (0.018 * s) ** 2)))[..., None]
            * np.array([1, 0.6, 0.6])
        )
        shade = np.clip(1 - (dist / radius) ** 2, 0, 1)
        alpha = np.clip((radius + 0.7 - dist) / 1.4, 0, 1)[..., None]
        nerve = nerve_col[None, None] * (0.75 + 0.25 * shade[..., None])
        img = img * (1 - alpha) + nerve * alpha
        for _ in range(rng.integers(1, 4)):  # specular highlights
            hy, hx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
            r2 = rng.uniform(0.01, 0.03) * s
            spot = np.exp(-((yy - hy) ** 2 + (xx - hx) ** 2) / (2 * r2**2))
            img = img + spot[..., None] * 0.8
        img = img + rng.normal(0, cfg.noise, img.shape)
        corrupt = rng.random() < cfg.corrupt_prob
        if corrupt:
            kind = rng.integers(3)
            if kind == 0:  # smoke haze
                a = 1 - (1 - rng.uniform(0.6, 0.8)) / cfg.corrupt_strength
                haze = 0.75 + 0.1 * _smooth_noise(rng, h, w, 4)
                img = img * (1 - a) + haze[..., None] * a
            elif kind == 1:  # motion blur
                k = max(3, int(0.2 * s * cfg.corrupt_strength) | 1)
                img = _box_blur(_box_blur(img, k, int(rng.integers(2))), 3, 0)
            else:  # a specular burst: large saturated glare over part of the view (the nerve is still there)
                for _ in range(int(rng.integers(2, 5))):
                    hy, hx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w
                    r2 = rng.uniform(0.08, 0.16) * s * cfg.corrupt_strength**0.5
                    spot = np.exp(-((yy - hy) ** 2 + (xx - hx) ** 2) / (2 * r2**2))
                    img = img * (1 - 0.9 * spot[..., None]) + 0.98 * spot[..., None]
        img = np.clip(img * aperture[..., None], 0, 1)
        frames.append((img * 255).astype(np.uint8))
        masks.append((mask & (aperture > 0.5)).astype(np.uint8))
        flags.append(bool(corrupt))
    return Video(f"synthetic_{seed:04d}", np.stack(frames), np.stack(masks), flags)


def make_synthetic_videos(n: int, cfg: SyntheticConfig | None = None, seed: int = 0) -> list[Video]:
    vids = [make_synthetic_video(cfg, seed * 100_003 + i) for i in range(n)]
    for i, v in enumerate(vids):
        v.name = f"video_{i:03d}"
    return vids


def write_videos(videos: list[Video], root: str | Path, layout: str = "simple") -> Path:
    """Write in-memory videos as PNG folders in the ``simple`` or ``sunseg`` layout (plus ``corrupted.json``, the
    per-frame corruption flags of synthetic videos, which :func:`scan_videos` reads back)."""
    import json

    from PIL import Image

    root = Path(root)
    flags = {v.name: [bool(c) for c in v.corrupted] for v in videos if v.corrupted is not None}
    if flags:
        root.mkdir(parents=True, exist_ok=True)
        (root / "corrupted.json").write_text(json.dumps(flags))
    for v in videos:
        if layout == "sunseg":
            fdir, mdir, ext = root / "Frame" / v.name, root / "GT" / v.name, ".jpg"
        elif layout == "simple":
            fdir, mdir, ext = root / v.name / "frames", root / v.name / "masks", ".png"
        else:
            raise ValueError(f"layout must be 'simple' or 'sunseg', got {layout!r}")
        fdir.mkdir(parents=True, exist_ok=True)
        mdir.mkdir(parents=True, exist_ok=True)
        for t in range(len(v)):
            Image.fromarray(np.asarray(v.frames[t])).save(fdir / f"{t:05d}{ext}", quality=95)
            if v.masks is not None:
                Image.fromarray((np.asarray(v.masks[t]) > 0).astype(np.uint8) * 255).save(
                    mdir / f"{t:05d}.png"
                )
    return root
