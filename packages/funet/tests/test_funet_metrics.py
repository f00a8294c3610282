import pytest
import torch
from funet.evaluate import collect_predictions, measure_speed, segmentation_metrics
from torch import nn


def masks():
    gt = torch.zeros(4, 4)
    gt[:, :2] = 1  # left half
    top = torch.zeros(4, 4)
    top[:2] = 1  # top half
    return gt, top


def test_metrics_on_hand_made_masks():
    gt, top = masks()
    perfect = segmentation_metrics(gt[None], gt[None])
    assert perfect["dice"] == pytest.approx(1) and perfect["iou"] == pytest.approx(1)
    assert perfect["max_dice"] == pytest.approx(1) and perfect["s_measure"] == pytest.approx(1, abs=1e-6)
    empty = segmentation_metrics(torch.zeros(1, 4, 4), gt[None])
    assert empty["dice"] == 0 and empty["iou"] == 0
    half = segmentation_metrics(top[None], gt[None])
    assert half["dice"] == pytest.approx(0.5)  # 2*4 / (8 + 8)
    assert half["iou"] == pytest.approx(4 / 12)
    assert half["max_e_measure"] == pytest.approx(8 / 15, abs=1e-6)
    soft = segmentation_metrics((0.3 * gt)[None], gt[None])  # right place, low confidence
    assert soft["dice"] == 0 and soft["max_dice"] == pytest.approx(1)  # maxDice >= Dice@0.5


class Replay(nn.Module):
    """Returns fixed logits; frame k of every clip predicts the ground truth only when k is odd."""

    def forward(self, x, return_gates=False):
        b, f, _, h, w = x.shape
        z = torch.full((b, f, 1, h, w), -10.0)
        z[:, 1::2, :, :, : w // 2] = 10.0
        return (z, torch.full((b, f), 0.5)) if return_gates else z


def test_collect_predictions_skips_first_and_last_frame_of_each_clip():
    gt = torch.zeros(5, 1, 4, 4)
    gt[:, :, :, :2] = 1
    data = [
        {"frames": torch.zeros(5, 3, 4, 4), "masks": gt, "corrupted": torch.tensor([1, 0, 0, 0, 1]).bool()}
    ] * 3
    pr = collect_predictions(Replay(), data, batch_size=2)
    assert len(pr.probs) == 3 * 3  # 3 clips x frames 1..3
    assert not pr.corrupted.any()  # the corrupted frames were the skipped ones
    d = segmentation_metrics(pr.probs, pr.masks)["dice"]
    assert d == pytest.approx(2 / 3)  # frames 1 and 3 right, frame 2 empty
    full = collect_predictions(Replay(), data, batch_size=2, skip_ends=False)
    assert len(full.probs) == 15 and int(full.corrupted.sum()) == 6


def test_measure_speed_reports_frames_and_clips():
    r = measure_speed(Replay(), (32, 32), num_frames=5, repeats=2, warmup=1)
    assert r["frames_per_s"] == pytest.approx(5 * r["clips_per_s"])


def test_compare_speed_interleaved():
    from funet.evaluate import compare_speed

    r = compare_speed({"a": Replay(), "b": Replay()}, (32, 32), num_frames=4, repeats=3, warmup=1)
    assert set(r) == {"a", "b"}
    assert r["a"]["frames_per_s"] == pytest.approx(4 * r["a"]["clips_per_s"])


def test_streamed_metrics_match_the_core_functions():
    from tenfold_core.metrics import max_dice_iou, max_e_measure, s_measure
    from tenfold_core.metrics.segmentation import dice_iou_per_image

    g = torch.Generator().manual_seed(0)
    probs = torch.rand(6, 16, 16, generator=g)
    masks = (torch.rand(6, 16, 16, generator=g) > 0.6).float()
    masks[5] = 0  # an empty mask
    m = segmentation_metrics(probs, masks)
    d, i = dice_iou_per_image(probs, masks)
    md, mi = max_dice_iou(probs, masks)
    assert m["dice"] == pytest.approx(float(d.mean()), abs=1e-6)
    assert m["iou"] == pytest.approx(float(i.mean()), abs=1e-6)
    assert m["max_dice"] == pytest.approx(md, abs=1e-4) and m["max_iou"] == pytest.approx(mi, abs=1e-4)
    assert m["s_measure"] == pytest.approx(s_measure(probs, masks), abs=1e-9)
    assert m["max_e_measure"] == pytest.approx(max_e_measure(probs, masks), abs=1e-9)
