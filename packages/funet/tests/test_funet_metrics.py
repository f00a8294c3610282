import numpy as np
import pytest
import torch
from funet.config import FUnetConfig
from funet.data import Video
from funet.evaluate import Calibration, compare_speed, evaluate_frames, evaluate_model, measure_speed
from torch import nn


class Replay(nn.Module):
    """Fixed logits: the left half of every frame is foreground, except frames whose index in the video is listed in
    ``wrong`` (predicted empty). Reads the frame index from the input's first pixel; gate 0.2 on frames with a
    bright first pixel ("corrupted")."""

    config = FUnetConfig()  # clip_frames 5

    def forward(self, x, return_gates=False, use_gate=True):
        b, f, _, h, w = x.shape
        idx = x[:, :, 1, 0, 0].round().long()  # channel 1 carries the frame index
        z = torch.full((b, f, 1, h, w), -10.0)
        z[..., : w // 2] = 10.0
        z[(idx % 4 == 3)] = -10.0  # every 4th frame: an empty prediction
        g = torch.where(x[:, :, 0, 0, 0] > 0.5, 0.2, 0.9)
        if use_gate:
            z = z * g[:, :, None, None, None]
        return (z, g) if return_gates else z


def video(name, n, corrupt=()):
    frames = np.zeros((n, 8, 8, 3), np.float32)
    frames[:, :, :, 1] = np.arange(n)[:, None, None]
    masks = np.zeros((n, 8, 8), np.float32)
    masks[:, :, :4] = 1
    flags = [t in corrupt for t in range(n)]
    for t in corrupt:
        frames[t, :, :, 0] = 1.0
    return Video(name, frames, masks, flags)


def test_vps_protocol_skips_video_ends_and_averages_per_video(monkeypatch):
    import funet.evaluate as E

    monkeypatch.setattr(E, "normalize", lambda t: t, raising=False)
    import funet.data as D

    monkeypatch.setattr(D, "normalize", lambda t: t)  # the replay model reads raw frame values
    vids = [video("a", 12, corrupt=(5,)), video("b", 6)]
    r = evaluate_model(Replay(), vids, (8, 8), "vps", batch_size=2)
    assert r["num_frames"] == 10 + 4  # first and last frame of each *video* skipped (not of each clip)
    # video a scores frames 1..10: frames 3 and 7 predicted empty -> mean Dice curve 8/10; video b: frames 1..4,
    # frame 3 empty -> 3/4; across videos: mean of the two (not of the 14 frames)
    assert r["max_dice"] == pytest.approx((0.8 + 0.75) / 2, abs=1e-6)
    assert r["cases"]["a"]["frames"] == 10 and r["cases"]["b"]["max_dice"] == pytest.approx(0.75)
    assert r["corrupted_frames"] == 1 and r["gate_auroc"] == pytest.approx(1.0)  # the low gate flags it
    frames = evaluate_model(Replay(), vids, (8, 8), "frames", batch_size=2)
    # the frames protocol scores the 3 middle frames of every 5-frame clip: a has clips at 0, 5, 7; b at 0, 1
    assert frames["frames"] == 3 * 3 + 2 * 3


def test_empty_prediction_on_empty_mask_scores_zero_under_vps_and_one_under_frames(monkeypatch):
    import funet.data as D

    monkeypatch.setattr(D, "normalize", lambda t: t)
    v = video("c", 7)
    v.masks[:] = 0
    v.frames[:, :, :, 1] = 3  # every frame predicted empty
    vps = evaluate_model(Replay(), [v], (8, 8), "vps")
    assert vps["max_dice"] == 0.0
    fr = evaluate_model(Replay(), [v], (8, 8), "frames")
    assert fr["dice"] == 1.0


def test_hold_previous_map_when_the_gate_is_low(monkeypatch):
    import funet.data as D

    monkeypatch.setattr(D, "normalize", lambda t: t)
    v = video("d", 10, corrupt=(3, 7))  # the corrupted frames are also the wrongly predicted ones
    plain = evaluate_model(Replay(), [v], (8, 8), "vps")
    held = evaluate_model(Replay(), [v], (8, 8), "vps", hold_tau=0.5)
    assert held["held_frames"] == 2
    assert held["mean_dice"] == pytest.approx(1.0, abs=2e-3) and plain["mean_dice"] < 0.8


def test_calibration_by_hand():
    c = Calibration(bins=2)
    c.update(torch.tensor([0.9, 0.9, 0.2, 0.2]), torch.tensor([1.0, 0.0, 0.0, 0.0]))
    r = c.results()
    # bin [0.5, 1): confidence 0.9, accuracy 0.5; bin [0, 0.5): 0.2 vs 0 -> ECE = (2*0.4 + 2*0.2) / 4
    assert r["ece"] == pytest.approx(0.3)
    assert r["nll"] == pytest.approx(-(np.log(0.9) + np.log(0.1) + 2 * np.log(0.8)) / 4)


def test_frames_protocol_streams_like_the_core_functions():
    from tenfold_core.metrics import max_dice_iou, s_measure

    g = torch.Generator().manual_seed(0)
    probs = torch.rand(2, 5, 1, 16, 16, generator=g)
    masks = (torch.rand(2, 5, 1, 16, 16, generator=g) > 0.6).float()

    class Fixed(nn.Module):
        def forward(self, x, return_gates=False, use_gate=True):
            z = torch.logit(probs[: len(x)].clamp(1e-6, 1 - 1e-6))
            return (z, None) if return_gates else z

    data = [{"frames": torch.zeros(5, 3, 16, 16), "masks": masks[i], "corrupted": torch.zeros(5, dtype=torch.bool)}
            for i in range(2)]  # fmt: skip
    r = evaluate_frames(Fixed(), data, batch_size=2)
    kept_p, kept_m = probs[:, 1:4, 0].flatten(0, 1), masks[:, 1:4, 0].flatten(0, 1)
    md, mi = max_dice_iou(kept_p, kept_m)
    assert r["frames"] == 6
    assert r["max_dice"] == pytest.approx(md, abs=1e-5) and r["max_iou"] == pytest.approx(mi, abs=1e-5)
    assert r["s_measure"] == pytest.approx(s_measure(kept_p, kept_m), abs=1e-6)


def test_speed_reports_frames_and_clips():
    r = measure_speed(Replay(), (8, 8), num_frames=5, repeats=2, warmup=1)
    assert r["frames_per_s"] == pytest.approx(5 * r["clips_per_s"])
    both = compare_speed({"a": Replay(), "b": Replay()}, (8, 8), num_frames=4, repeats=3, warmup=1)
    assert set(both) == {"a", "b"}


class BrightIsEmpty(nn.Module):
    """The left eighth is foreground, except on bright frames (mean of the red channel > 0.5): predicted empty."""

    config = FUnetConfig(num_frames=3)

    def forward(self, x, return_gates=False, use_gate=True):
        b, f, _, h, w = x.shape
        z = torch.full((b, f, 1, h, w), -10.0)
        z[..., : w // 8] = 10.0
        z[x[:, :, 0].mean((-2, -1)) > 0.5] = -10.0
        return (z, None) if return_gates else z


def test_sunseg_splits_per_split_group_and_case(sunseg_test, monkeypatch):
    import funet.data as D
    from funet.data import find_splits, scan_videos
    from funet.evaluate import evaluate_splits, split_groups

    monkeypatch.setattr(D, "normalize", lambda t: t)
    root, SUNSEG = sunseg_test
    splits = find_splits(root)
    assert list(splits) == list(SUNSEG)  # TrainDataset left out
    assert list(find_splits(root / "TestHardDataset")) == ["Seen", "Unseen"]
    assert find_splits(root / "TestHardDataset" / "Seen") is None  # one data set
    assert set(split_groups(list(splits))) == {
        "TestEasyDataset/*", "TestHardDataset/*", "*/Seen", "*/Unseen", "all"
    }  # fmt: skip
    r = evaluate_splits(BrightIsEmpty(), {k: scan_videos(p) for k, p in splits.items()}, (16, 16), 2)
    case = {"e1": 1.0, "e2": 0.75, "h1": 0.6, "h2": 1.0, "h3": 0.25}
    for split, cases in SUNSEG.items():
        for c in cases:
            assert r["cases"][f"{split}/{c}"]["max_dice"] == pytest.approx(case[c], abs=1e-6)
            assert r["cases"][f"{split}/{c}"]["frames"] == cases[c][0] - 2  # video ends skipped
        want = np.mean([case[c] for c in cases])  # per video, then across the split's videos
        assert r["splits"][split]["max_dice"] == pytest.approx(want, abs=1e-6)
    # groups average over the union of their splits' videos (not over the splits)
    assert r["groups"]["TestHardDataset/*"]["max_dice"] == pytest.approx((0.6 + 1.0 + 0.25) / 3, abs=1e-6)
    assert r["groups"]["*/Unseen"]["max_dice"] == pytest.approx((0.75 + 0.25) / 2, abs=1e-6)
    assert r["groups"]["all"]["max_dice"] == pytest.approx(3.6 / 5, abs=1e-6)
    assert r["max_dice"] == r["groups"]["all"]["max_dice"] and r["groups"]["all"]["num_cases"] == 5
