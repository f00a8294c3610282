import numpy as np
import pytest
import torch
from funet import (
    ClipDataset,
    SyntheticConfig,
    clip_starts,
    make_synthetic_video,
    make_synthetic_videos,
    scan_videos,
    write_videos,
)

from tenfold_core.errors import DataError


def test_synthetic_video_has_a_moving_nerve_and_corrupted_frames():
    v = make_synthetic_video(SyntheticConfig(64, 64, 20, corrupt_prob=0.3), seed=3)
    assert v.frames.shape == (20, 64, 64, 3) and v.frames.dtype == np.uint8
    assert v.masks.shape == (20, 64, 64)
    area = v.masks.reshape(20, -1).sum(1)
    assert (area > 20).all()  # the nerve is visible in every frame
    assert (v.masks[0] != v.masks[-1]).sum() > 10  # and it moves / bends
    assert 1 <= sum(v.corrupted) <= 15
    assert (v.frames[:, 0, 0] == 0).all()  # outside the circular aperture is black
    again = make_synthetic_video(SyntheticConfig(64, 64, 20, corrupt_prob=0.3), seed=3)
    assert np.array_equal(v.frames, again.frames)  # deterministic in the seed


def test_clip_starts():
    assert clip_starts(10, 5) == [0, 5]
    assert clip_starts(12, 5) == [0, 5, 7]  # the tail is covered
    assert clip_starts(3, 5) == [0]
    assert clip_starts(20, 5, stride=2) == [0, 9, 11]
    assert clip_starts(7, 5, step=1) == [0, 1, 2]


@pytest.mark.parametrize("layout", ["simple", "sunseg"])
def test_folder_layouts_roundtrip(tmp_path, layout):
    vids = make_synthetic_videos(2, SyntheticConfig(64, 96, 7), seed=1)
    write_videos(vids, tmp_path, layout)
    found = scan_videos(tmp_path)
    assert [v.name for v in found] == ["video_000", "video_001"]
    assert len(found[0]) == 7 and len(found[0].masks) == 7
    ds = ClipDataset(found, num_frames=5, size=(64, 96))
    assert len(ds) == 4  # clips start at 0 and 2 in each 7-frame video
    item = ds[1]
    assert item["frames"].shape == (5, 3, 64, 96) and item["masks"].shape == (5, 1, 64, 96)
    assert torch.equal(item["masks"][:, 0], torch.from_numpy(vids[0].masks[2:7]).float())
    resized = ClipDataset(found, num_frames=3, stride=2, size=(32, 64))[0]
    assert resized["frames"].shape == (3, 3, 32, 64)


def test_missing_mask_names_the_file(tmp_path):
    write_videos(make_synthetic_videos(1, SyntheticConfig(32, 32, 4), seed=2), tmp_path, "simple")
    (tmp_path / "video_000" / "masks" / "00002.png").unlink()
    with pytest.raises(DataError, match=r"masks/00002\.png: missing mask for frame .*frames/00002\.png"):
        scan_videos(tmp_path)
    assert scan_videos(tmp_path, require_masks=False)[0].masks is None  # prediction needs no masks


def test_missing_gt_folder_and_bad_root(tmp_path):
    write_videos(make_synthetic_videos(1, SyntheticConfig(32, 32, 3), seed=2), tmp_path, "sunseg")
    for p in (tmp_path / "GT" / "video_000").iterdir():
        p.unlink()
    (tmp_path / "GT" / "video_000").rmdir()
    with pytest.raises(DataError, match=r"GT/video_000: mask folder missing"):
        scan_videos(tmp_path)
    with pytest.raises(DataError, match="no such data folder"):
        scan_videos(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="expected Frame"):
        scan_videos(tmp_path / "empty")


def test_video_file_errors_are_one_line(tmp_path):
    from funet.data import read_video_file

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(DataError, match=r"broken\.mp4: (reading video files needs PyAV|cannot decode)"):
        read_video_file(bad)
    with pytest.raises(DataError, match="no such video file"):
        read_video_file(tmp_path / "missing.mp4")


def test_unreadable_image_names_the_file(tmp_path):
    write_videos(make_synthetic_videos(1, SyntheticConfig(32, 32, 3), seed=2), tmp_path, "simple")
    bad = tmp_path / "video_000" / "frames" / "00001.png"
    bad.write_bytes(b"not a png")
    ds = ClipDataset(scan_videos(tmp_path), num_frames=3, size=(32, 32))
    with pytest.raises(DataError, match=r"00001\.png: cannot read image"):
        ds[0]


def test_sunseg_frames_sort_by_their_numbers(tmp_path):
    """SUN-SEG names (case1_a2_..._image10) sort numerically; as strings image10 would come before image9 and a10
    before a9, putting frames out of temporal order."""
    from funet.data import frame_sort_key
    from PIL import Image

    names = [f"case1_a{a}_ayy_image{i}" for a in (9, 10) for i in (8, 9, 10, 11)]
    for d in ("Frame", "GT"):
        (tmp_path / d / "case1").mkdir(parents=True)
    for n in names:
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "Frame" / "case1" / f"{n}.jpg")
        Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "GT" / "case1" / f"{n}.png")
    got = [p.stem for p in scan_videos(tmp_path)[0].frames]
    assert got == names
    assert sorted(names) != names  # string order would be wrong
    assert sorted((tmp_path / "Frame" / "case1").iterdir(), key=frame_sort_key)[1].stem.endswith("image9")


def test_mask_of_another_size_is_named_on_load(tmp_path):
    from PIL import Image

    write_videos(make_synthetic_videos(1, SyntheticConfig(32, 32, 3), seed=2), tmp_path, "simple")
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(tmp_path / "video_000" / "masks" / "00001.png")
    ds = ClipDataset(
        scan_videos(tmp_path), num_frames=3, size=(64, 64)
    )  # resizing must not hide the mismatch
    with pytest.raises(DataError, match=r"masks/00001\.png: mask size \(20, 24\) .* frame size \(32, 32\)"):
        ds[0]


def test_rgb_noise_mask_warns(tmp_path):
    from PIL import Image

    write_videos(make_synthetic_videos(1, SyntheticConfig(32, 32, 3), seed=2), tmp_path, "simple")
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    Image.fromarray(noise).save(tmp_path / "video_000" / "masks" / "00000.png")
    ds = ClipDataset(scan_videos(tmp_path), num_frames=3, size=None)
    with pytest.warns(UserWarning, match=r"00000\.png: not a binary mask"):
        ds[0]


def test_augmentation_is_drawn_from_seed_epoch_and_index():
    from funet.data import EpochClipSampler

    vids = make_synthetic_videos(2, SyntheticConfig(32, 32, 10, corrupt_prob=0.0), seed=1)
    kw = dict(num_frames=5, step=5, size=None, augment=True, seed=7, rotation=20.0, random_crop=0.1)
    a, b = ClipDataset(vids, **kw), ClipDataset(vids, **kw)  # one object per model, same draws
    assert torch.equal(a[1]["frames"], b[1]["frames"])
    assert not torch.equal(a[1]["frames"], a[1 + len(a)]["frames"])  # epoch 1 draws differently
    other = ClipDataset(vids, **{**kw, "seed": 8})
    assert any(not torch.equal(a[i]["frames"], other[i]["frames"]) for i in range(len(a)))
    # frames and masks move together: the augmented mask still covers the bright nerve
    item = a[2]
    m = item["masks"][:, 0] > 0.5
    lum = item["frames"].mean(1)
    assert lum[m].mean() > lum[~m].mean()
    s = EpochClipSampler(len(a), seed=0)
    e0 = list(s)
    s.set_epoch(3)
    e3 = list(s)
    assert sorted(e0) == list(range(len(a))) and sorted(i - 3 * len(a) for i in e3) == list(range(len(a)))


@pytest.mark.slow  # worker start-up is slow on the loaded 2-core machine
def test_workers_draw_different_augmentations():
    from funet.train import clip_loader

    vids = make_synthetic_videos(1, SyntheticConfig(32, 32, 20, corrupt_prob=0.0), seed=1)
    ds = ClipDataset([vids[0]] * 4, num_frames=5, step=20, size=None, augment=True, seed=0, color_jitter=0.3)
    batches = [b["frames"] for b in clip_loader(ds, 1, False, 0, num_workers=2)]
    means = {round(float(x.mean()), 5) for x in batches}
    assert len(batches) == len(ds) == 8 and len(means) == 8  # the same clips x4, all drawn differently
