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
