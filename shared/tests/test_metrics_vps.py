"""The VPS / SUN-SEG toolbox protocol against an independent, deliberately naive re-implementation of the toolbox's
formulas (explicit thresholds, explicit pixel loops where the toolbox uses histograms), agreement within 1e-3."""

import numpy as np
import pytest
from scipy import ndimage

from tenfold_core.metrics.segmentation import DiceIoUCurves, VPSEvaluator, dice_iou_curves, vps_frame_metrics

EPS = np.spacing(1)


# ------------------------------------------------------------------------------------------------ reference
def ref_prepare(pred_u8, gt_u8):
    g = gt_u8 > 128
    x = pred_u8 / 255.0
    if x.max() != x.min():
        x = (x - x.min()) / (x.max() - x.min())
    return x, g


def ref_s_measure(x, g):
    y = g.mean()
    if y == 0:
        return 1 - x.mean()
    if y == 1:
        return x.mean()

    def obj(v):
        return 2 * v.mean() / (v.mean() ** 2 + 1 + v.std(ddof=1) + EPS)

    o = y * obj(x[g]) + (1 - y) * obj(1 - x[~g])
    h, w = g.shape
    rows, cols = np.arange(h), np.arange(w)
    cx = int(np.round((g.sum(0) * cols).sum() / g.sum())) + 1
    cy = int(np.round((g.sum(1) * rows).sum() / g.sum())) + 1
    total = 0.0
    for rs, cs in ((slice(0, cy), slice(0, cx)), (slice(0, cy), slice(cx, w)),
                   (slice(cy, h), slice(0, cx)), (slice(cy, h), slice(cx, w))):  # fmt: skip
        p, q = x[rs, cs], g[rs, cs].astype(float)
        if p.size == 0:
            continue
        n = p.size
        mx, my = p.mean(), q.mean()
        sx, sy = ((p - mx) ** 2).sum() / (n - 1), ((q - my) ** 2).sum() / (n - 1)
        sxy = ((p - mx) * (q - my)).sum() / (n - 1)
        a, b = 4 * mx * my * sxy, (mx**2 + my**2) * (sx + sy)
        ss = a / (b + EPS) if a != 0 else (1.0 if b == 0 else 0.0)
        total += n / (h * w) * ss
    return max(0.0, 0.5 * o + 0.5 * total)


def ref_em(binary, g):
    n = g.size
    if g.sum() == 0:
        enh = 1.0 - binary
    elif g.all():
        enh = binary.astype(float)
    else:
        ap, ag = binary - binary.mean(), g - g.mean()
        align = 2 * ap * ag / (ap * ap + ag * ag + EPS)
        enh = (align + 1) ** 2 / 4
    return enh.sum() / (n - 1 + EPS)


def ref_fm(binary, g):
    tp = (binary & g).sum()
    if tp == 0:
        return 0.0
    p, r = tp / binary.sum(), tp / g.sum()
    return 1.3 * p * r / (0.3 * p + r)


def ref_wfm(x, g):
    if not g.any():
        return 0.0
    dst, idx = ndimage.distance_transform_edt(g == 0, return_indices=True)
    e = np.abs(x - g)
    et = e.copy()
    for i, j in zip(*np.nonzero(~g), strict=True):
        et[i, j] = e[idx[0][i, j], idx[1][i, j]]
    yy, xx = np.mgrid[-3:4, -3:4]
    k = np.exp(-(xx**2 + yy**2) / 50.0)
    k /= k.sum()
    ea = ndimage.convolve(et, k, mode="constant", cval=0)
    m = np.where(g & (ea < e), ea, e)
    b = np.where(~g, 2 - np.exp(np.log(0.5) / 5 * dst), 1.0)
    ew = m * b
    tpw = g.sum() - ew[g].sum()
    fpw = ew[~g].sum()
    r = 1 - ew[g].mean()
    p = tpw / (tpw + fpw + EPS)
    return 2 * r * p / (r + p + EPS)


def ref_medical(x, g, t):
    b = x >= t
    tp = (b & g).sum()
    if tp == 0:
        return 0.0, 0.0, 0.0, 0.0
    fn, fp = g.sum() - tp, b.sum() - tp
    tn = (~b).sum() - fn
    return tp / g.sum(), tn / (tn + fp), 2 * tp / (g.sum() + b.sum()), tp / (fn + b.sum())


def ref_frame(pred_u8, gt_u8):
    x, g = ref_prepare(pred_u8, gt_u8)
    q = (x * 255).astype(np.uint8)
    em = [ref_em(q >= v, g) for v in range(255, -1, -1)]
    fm = [ref_fm(q >= v, g) for v in range(255, -1, -1)]
    med = np.array([ref_medical(x, g, t) for t in np.linspace(1, 0, 256)])
    return {
        "S_measure": ref_s_measure(x, g), "wF_measure": ref_wfm(x, g), "MAE": np.abs(x - g).mean(),
        "E": np.array(em), "F": np.array(fm), "sen": med[:, 0], "spe": med[:, 1], "dice": med[:, 2],
        "iou": med[:, 3],
    }  # fmt: skip


def ref_protocol(videos):
    """videos: {case: [(pred_u8, gt_u8), ...]} in temporal order -> toolbox summary."""
    per_case = []
    for frames in videos.values():
        rows = [ref_frame(p, g) for p, g in frames[1:-1]]  # first and last frame skipped
        per_case.append({k: np.mean([r[k] for r in rows], axis=0) for k in rows[0]})
    avg = {k: np.mean([c[k] for c in per_case], axis=0) for k in per_case[0]}
    return {
        "S_measure": avg["S_measure"], "wF_measure": avg["wF_measure"], "MAE": avg["MAE"],
        "mean_E_measure": avg["E"].mean(), "max_E_measure": avg["E"].max(), "max_F_measure": avg["F"].max(),
        "mean_sensitivity": avg["sen"].mean(), "mean_specificity": avg["spe"].mean(),
        "mean_dice": avg["dice"].mean(), "max_dice": avg["dice"].max(), "mean_iou": avg["iou"].mean(),
        "max_iou": avg["iou"].max(),
    }  # fmt: skip


def blob(h, w, cy, cx, r):
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy - cy) ** 2 + (xx - cx) ** 2) <= r * r


def make_videos(seed=0):
    rng = np.random.default_rng(seed)
    videos = {}
    for c in range(3):
        frames = []
        for t in range(5):
            h, w = 24, 32
            g = blob(h, w, 8 + t + c, 10 + 2 * t, 4 + c)
            if c == 2 and t == 2:
                g[:] = False  # an empty mask inside the scored frames
            soft = np.clip(0.7 * blob(h, w, 9 + t + c, 11 + 2 * t, 5) + rng.uniform(0, 0.4, (h, w)), 0, 1)
            frames.append(((soft * 255).round().astype(np.uint8), (g * 255).astype(np.uint8)))
        videos[f"case{c + 1}"] = frames
    return videos


# ------------------------------------------------------------------------------------------------ tests
def test_vps_protocol_matches_reference_within_1e3():
    videos = make_videos()
    ev = VPSEvaluator()
    for case, frames in videos.items():
        for p, g in frames[1:-1]:
            ev.update(case, p, g)
    got = ev.results()
    exp = ref_protocol(videos)
    assert got["num_cases"] == 3 and got["num_frames"] == 9
    for k, v in exp.items():
        assert got[k] == pytest.approx(v, abs=1e-3), k
    assert set(got["cases"]) == set(videos)
    assert 0 < got["mean_dice"] < got["max_dice"] <= 1


def test_vps_frame_matches_reference_on_random_maps():
    rng = np.random.default_rng(3)
    for _ in range(3):
        g = (blob(20, 20, *rng.integers(5, 15, 2), rng.integers(3, 6)) * 255).astype(np.uint8)
        p = rng.integers(0, 256, (20, 20)).astype(np.uint8)
        got, exp = vps_frame_metrics(p, g), ref_frame(p, g)
        for k, ek in (("S_measure", "S_measure"), ("wF_measure", "wF_measure"), ("MAE", "MAE")):
            assert got[k] == pytest.approx(exp[ek], abs=1e-3), k
        for k, ek in (("E_curve", "E"), ("F_curve", "F"), ("dice_curve", "dice"), ("iou_curve", "iou"),
                      ("sensitivity_curve", "sen"), ("specificity_curve", "spe")):  # fmt: skip
            np.testing.assert_allclose(got[k], exp[ek], atol=1e-3, err_msg=k)


def test_vps_conventions_min_max_and_empty():
    g = np.zeros((8, 8), np.uint8)
    empty = vps_frame_metrics(np.zeros((8, 8), np.uint8), g)
    assert empty["dice_curve"].max() == 0.0  # empty prediction on an empty mask scores 0 (toolbox)
    g[2:6, 2:6] = 255
    p = np.where(g > 0, 0.3, 0.1)  # low but well ordered probabilities
    m = vps_frame_metrics(p, g)
    assert m["dice_curve"].max() == pytest.approx(1.0)  # min-max normalised: some threshold separates them
    assert m["MAE"] == pytest.approx(0.0, abs=1e-6)


def test_dice_iou_curves_streaming_equals_batch():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, (6, 16, 16)).astype(np.float32)
    t = (rng.uniform(0, 1, (6, 16, 16)) > 0.6).astype(np.float32)
    thr, d, i = dice_iou_curves(p, t, 32)
    acc = DiceIoUCurves(32)
    for k in range(6):
        acc.update(p[k], t[k])
    _, d2, i2 = acc.compute()
    np.testing.assert_allclose(d.numpy(), d2.numpy(), atol=1e-6)
    # naive reference at one threshold
    b = p >= thr[10].item()
    ref = np.mean([2 * (b[k] & (t[k] > 0)).sum() / (b[k].sum() + t[k].sum()) for k in range(6)])
    assert d[10].item() == pytest.approx(ref, abs=1e-5)
