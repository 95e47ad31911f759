"""Matting metrics against values worked out by hand on tiny arrays, plus the reference scalings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vom_plugin.errors import InputError
from vom_plugin.eval import metrics as M
from vom_plugin.eval.regions import region_mask, unknown_band
from vom_plugin.eval.scores import evaluate_clip, mean_over_clips

P = np.array([[0.0, 1.0], [0.5, 0.5]])
G = np.array([[0.0, 0.0], [1.0, 0.5]])  # errors: 0, +1, -0.5, 0


def test_pixel_errors_by_hand():
    assert M.sad(P, G) == pytest.approx(1.5)
    assert M.mad(P, G) == pytest.approx(0.375)
    assert M.mse(P, G) == pytest.approx(1.25 / 4)
    assert M.ssda(P, G) == pytest.approx(math.sqrt(1.25))
    top = np.array([[True, True], [False, False]])
    assert M.mad(P, G, top) == pytest.approx(0.5)
    assert M.mse(P, G, top) == pytest.approx(0.5)
    assert M.sad(P, G, top) == pytest.approx(1.0)
    empty = np.zeros((2, 2), bool)
    assert M.mad(P, G, empty) == 0.0 and M.mse(P, G, empty) == 0.0


def test_dtssd_by_hand():
    z = np.zeros((2, 2))
    p1 = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert M.dtssd(z, p1, z, z) == pytest.approx(math.sqrt(1 / 4))  # RVM: divided by N inside the root
    assert M.dtssd(z, p1, z, z, normalise=False) == pytest.approx(1.0)  # TCVOM: raw over the band
    # the same change in GT and prediction is not an error
    assert M.dtssd(z, p1, z, p1) == 0.0
    # an opposite change is (a prediction brightening where the GT darkens): 2 at one pixel of 4 (QA: a dtSSD of
    # the changes' sizes alone passed every test here)
    assert M.dtssd(z, p1, p1, z) == pytest.approx(math.sqrt(4 / 4))


def test_the_mean_over_clips_weighs_each_clip_once_whatever_its_length():
    """The reference evaluations' final number: per frame, then per clip, then clips weighed equally (QA: a mean over
    every frame of every clip passed every test here)."""
    short, long = np.zeros((2, 4, 4), np.float32), np.zeros((6, 4, 4), np.float32)
    bad_short = short.copy()
    bad_short[:, 0, 0] = 1.0  # MAD 62.5 on each of its 2 frames; the long clip is perfect
    scores = [evaluate_clip(bad_short, short, metrics=["MAD"]), evaluate_clip(long, long, metrics=["MAD"])]
    assert mean_over_clips(scores)["MAD"] == pytest.approx(62.5 / 2)  # not 62.5 * 2 / 8


def test_conn_by_hand():
    # pixel 1 drops out of the main component above t=0.5 -> level 0.5; d_g = 0.5 >= theta, d_p = 0 -> 0.5
    assert M.conn(np.array([[1.0, 0.5, 1.0]]), np.array([[1.0, 1.0, 1.0]])) == pytest.approx(0.5)
    # two components of size 1: the first is kept, the others leave at t=0.1 (level 0); phi differs at 1 px
    assert M.conn(np.array([[1.0, 0.0, 1.0]]), np.array([[1.0, 1.0, 1.0]])) == pytest.approx(1.0)
    a = np.random.default_rng(0).random((6, 7))
    assert M.conn(a, a) == 0.0
    # 4-connected: a pixel touching the main component at a corner only is its own component and leaves at level
    # 0 (d_p = 0.55, d_g = 1: |0.45 - 0| = 0.45); 8-connected it would stay to level 0.5 (d_p < theta: |1 - 0.5|)
    assert M.conn(np.array([[1.0, 0.0], [0.0, 0.55]]), np.array([[1.0, 0.0], [0.0, 1.0]])) == pytest.approx(0.45)


def test_gaussian_derivative_kernel():
    hx, hy = M.gaussian_derivative_kernels(1.4)
    # h = ceil(1.4 * sqrt(-2 ln(sqrt(2 pi) * 1.4 * 0.01))) = ceil(3.62) = 4
    assert hx.shape == (9, 9)
    assert np.sqrt((hx**2).sum()) == pytest.approx(1.0)
    np.testing.assert_allclose(hy, hx.T)
    np.testing.assert_allclose(hx[:, ::-1], -hx)  # odd along x: a derivative
    r = np.arange(-4, 5)
    g = np.exp(-(r**2) / (2 * 1.4**2))
    expected = np.outer(g, -r * g)
    np.testing.assert_allclose(hx, expected / np.sqrt((expected**2).sum()))


def test_grad_of_a_step_edge_matches_a_direct_sum():
    gt = np.zeros((12, 16))
    gt[:, 8:] = 1.0
    pred = np.zeros_like(gt)
    hx, _ = M.gaussian_derivative_kernels(1.4)
    # with replicated borders each row sees the same step: response(x) = sum_ij hx[i,j] * step(x + j - 4)
    resp = np.array([sum(hx[i, j] for i in range(9) for j in range(9) if min(max(x + j - 4, 0), 15) >= 8)
                     for x in range(16)])
    expected = 12 * float((resp**2).sum())  # pred is constant: its gradient is 0
    assert M.grad(pred, gt) == pytest.approx(expected, rel=1e-9)
    # min-max normalisation: a matte scaled to half strength has the same normalised gradients
    assert M.grad(0.5 * gt, gt) == pytest.approx(0.0, abs=1e-12)
    assert M.grad(pred, np.zeros_like(gt)) == 0.0  # all-zero alpha on both sides


def test_messddt_by_hand_with_a_given_flow():
    p0, g0 = np.array([[0.5, 0.0, 0.0]]), np.zeros((1, 3))
    p1, g1 = np.array([[0.0, 0.5, 0.0]]), np.zeros((1, 3))
    still = np.zeros((1, 3, 2), np.float32)
    # without motion the error moved: |0.25 - 0| + |0 - 0.25| = 0.5
    assert M.messddt(p0, p1, g0, g1, flow=still) == pytest.approx(0.5)
    right = still.copy()
    right[..., 0] = 1.0  # every pixel moves 1 px right (clamped at the border)
    assert M.messddt(p0, p1, g0, g1, flow=right) == pytest.approx(0.0)


def test_messddt_uses_farneback_on_the_gt():
    g = np.zeros((32, 32))
    g[8:24, 8:24] = 1.0
    flow = M.farneback_flow(g, g)
    assert flow.shape == (32, 32, 2) and np.abs(flow).max() < 0.5
    p0 = g.copy()
    p1 = g.copy()
    p1[0, 0] = 1.0
    assert M.messddt(p0, p1, g, g) == pytest.approx(1.0, abs=1e-6)


def test_nan_in_prediction_is_a_clear_error():
    p = P.copy()
    p[1, 0] = np.nan
    with pytest.raises(InputError, match=r"NaN/Inf.*x=0, y=1"):
        M.mad(p, G)
    clip = np.zeros((4, 5, 6), np.float32)
    bad = clip.copy()
    bad[2, 3, 3] = np.inf
    with pytest.raises(InputError, match=r"shot: frame 1003: prediction has 1 NaN/Inf"):
        evaluate_clip(bad, clip, frames=[1001, 1002, 1003, 1004], name="shot")
    # a NaN ground truth would give NaN scores that the means leave out without a word
    with pytest.raises(InputError, match=r"shot: frame 1003: ground truth has 1 NaN/Inf pixel\(s\) "
                                         r"\(first at x=3, y=3\)"):
        evaluate_clip(clip, bad, frames=[1001, 1002, 1003, 1004], name="shot")
    # named by the ground truth's file where the caller gives it (QA: `vom eval` named the prediction's)
    with pytest.raises(InputError, match=r"^gt\.####\.exr: frame 1003: ground truth has 1 NaN/Inf"):
        evaluate_clip(clip, bad, frames=[1001, 1002, 1003, 1004], name="pred.####.exr", gt_name="gt.####.exr")
    with pytest.raises(InputError, match=r"^pred\.####\.exr: frame 1003: prediction has 1 NaN/Inf"):
        evaluate_clip(bad, clip, frames=[1001, 1002, 1003, 1004], name="pred.####.exr", gt_name="gt.####.exr")


def test_size_and_count_mismatch_name_the_frame():
    with pytest.raises(InputError, match=r"frame 7: prediction is 6x5, ground truth 4x5"):
        evaluate_clip(np.zeros((1, 5, 6)), np.zeros((1, 5, 4)), frames=[7])
    with pytest.raises(InputError, match=r"2 predicted frame\(s\), 3 ground-truth"):
        evaluate_clip(np.zeros((2, 4, 4)), np.zeros((3, 4, 4)))


def test_unknown_band():
    g = np.zeros((9, 9))
    g[4, 4] = 0.5
    g[:, 8] = 1.0  # opaque pixels are not in the band by themselves
    band = unknown_band(g, 2)
    assert band.sum() == 25 and band[2:7, 2:7].all()
    # a float EXR's render noise (1e-6 over the clear background, 1 - 1e-6 inside) is not soft, as in TCVOM's 8-bit
    # ground truth (a QA pass: the band became the whole frame)
    noisy = np.where(g == 1.0, 1.0 - 1e-6, g + 1e-6)
    assert (unknown_band(noisy, 2) == band).all()
    assert unknown_band(np.full((3, 3), 1.0 / 255), 0).all()  # one 8-bit code above 0 is soft
    assert region_mask(g, "whole") is None
    assert region_mask(g, "narrow").sum() == 81  # r=5 covers the 9x9 frame
    with pytest.raises(InputError, match="region 'huge'.*whole, narrow, medium, wide"):
        region_mask(g, "huge")


def test_evaluate_clip_scalings_whole_frame():
    gt = np.zeros((3, 2, 2), np.float32)
    pred = gt.copy()
    pred[1, 0, 0] = 1.0  # one wrong pixel on the middle frame
    s = evaluate_clip(pred, gt, frames=[1, 2, 3])
    assert s.per_frame["MAD"] == pytest.approx([0.0, 250.0, 0.0])  # 1/4 x 1e3
    assert s.per_frame["MSE"] == pytest.approx([0.0, 250.0, 0.0])
    assert s.per_frame["SAD"] == pytest.approx([0.0, 1e-3, 0.0])
    # RVM: dtSSD against the previous frame, first 0: sqrt(1/4) x 1e2 on frames 2 and 3
    assert s.per_frame["dtSSD"] == pytest.approx([0.0, 50.0, 50.0])
    assert s.mean["MAD"] == pytest.approx(250.0 / 3)
    assert s.to_dict()["units"]["dtSSD"] == "x1e2"


def test_evaluate_clip_band_looks_forward():
    gt = np.zeros((2, 5, 5), np.float32)
    gt[:, 2, 2] = 0.5
    pred = gt.copy()
    pred[0, 2, 2] = 0.0  # error 0.5 on frame 0, inside the band
    s = evaluate_clip(pred, gt, region="narrow", metrics=["MSE", "SSDA", "dtSSD"])
    assert s.per_frame["MSE"] == pytest.approx([0.25 / 25 * 1e3, 0.0])  # band = whole 5x5 here
    assert s.per_frame["SSDA"] == pytest.approx([0.5, 0.0])
    assert s.per_frame["dtSSD"] == pytest.approx([0.5, 0.0])  # TCVOM: next frame, raw, last 0


def test_single_frame_and_all_zero():
    z = np.zeros((1, 8, 8), np.float32)
    s = evaluate_clip(z, z)
    assert set(s.mean) == set(M_ALL) and math.isnan(s.mean["Core"])  # no solid interior: not a perfect 0
    # one frame has no temporal measure (its convention 0 alone read as perfect stability)
    assert math.isnan(s.mean["dtSSD"]) and math.isnan(s.mean["MESSDdt"])
    assert all(v == 0.0 for m, v in s.mean.items() if m not in ("Core", "dtSSD", "MESSDdt"))
    assert s.to_dict()["mean"]["Core"] is None and any("Core not defined in frame(s) 0" in n for n in s.notes)
    # an empty band is not scored (it was 0: a hard-edged GT scored any prediction perfect), nor counted in means
    band = evaluate_clip(z, z, region="wide")
    assert all(math.isnan(band.mean[m]) for m in ("MAD", "MSE", "Grad", "Conn", "SAD", "SSDA"))
    both = mean_over_clips([s, s])
    assert all(both[m] == v or (math.isnan(both[m]) and math.isnan(v)) for m, v in s.mean.items())


def test_undefined_frames_are_left_out_of_the_means_not_scored_0(tmp_path):
    """--frames 1,2,7,8: frame 7's dtSSD was measured against frame 2; a constant 0.5 against a hard-edged GT in the
    narrow band scored a perfect 0; a prediction below 0 scored Clear below 0 ("better than perfect")."""
    g = np.zeros((4, 48, 48), np.float32)
    g[:, 12:36, 12:36] = 1.0
    p = g.copy()
    p[2] = 0.3 * g[2]
    s = evaluate_clip(p, g, frames=[1, 2, 7, 8], metrics=["dtSSD", "MAD"])
    assert s.per_frame["dtSSD"][0] == 0.0 and s.per_frame["dtSSD"][1] == 0.0  # RVM: the first frame counts 0
    assert math.isnan(s.per_frame["dtSSD"][2]) and s.per_frame["dtSSD"][3] > 0  # 7 is not 2's next frame
    assert s.mean["dtSSD"] == pytest.approx(s.per_frame["dtSSD"][3] / 3)
    assert any("dtSSD not defined in frame(s) 7" in n for n in s.notes)
    stepped = evaluate_clip(p, g, frames=[1, 3, 5, 7], metrics=["dtSSD"])  # no adjacent pair: none measured
    assert math.isnan(stepped.mean["dtSSD"])  # (its first frame's 0 alone read as perfect stability)
    hard = evaluate_clip(np.full((1, 48, 48), 0.5, np.float32), g[:1], region="narrow", metrics=["MAD"])
    assert math.isnan(hard.mean["MAD"]) and "no unknown band" in hard.notes[0]
    neg = evaluate_clip(g[:1] - 0.1, g[:1], metrics=["Clear"])
    assert neg.mean["Clear"] == 0.0 and "outside 0-1 clipped" in neg.notes[0]


M_ALL = ("MAD", "MSE", "Grad", "Conn", "dtSSD", "MESSDdt", "SAD", "SSDA", "Core", "Clear")


def test_core_and_clear_by_hand():
    """A solid 20x20 square rendered at 0.8 with a 0.05 haze around it: Core 200, Clear 50 (x1e3), measured
    only in the interior eroded by 5 px and the background farther than 5 px from the object."""
    gt = np.zeros((40, 40))
    gt[10:30, 10:30] = 1.0
    pred = np.full_like(gt, 0.05)
    pred[10:30, 10:30] = 0.8
    pred[10:15, 10:30] = 0.0  # a wrong rim inside the 5 px margin: not the interior's business
    pred[5:10, 10:30] = 0.9  # a glow inside the 5 px margin outside: not the background's either
    assert M.core(pred, gt) == pytest.approx(0.2)
    assert M.clear(pred, gt) == pytest.approx(0.05)
    s = evaluate_clip(np.stack([pred, gt]), np.stack([gt, gt]), metrics=["Core", "Clear"], region="narrow")
    assert s.per_frame["Core"] == pytest.approx([200.0, 0.0]) and s.per_frame["Clear"] == pytest.approx([50.0, 0.0])
    assert s.to_dict()["units"]["Core"] == "x1e3"
    thin = np.zeros((40, 40))
    thin[:, 20] = 1.0  # a 1-px pole has no interior, and a frame full of object no clear background
    assert math.isnan(M.core(np.zeros_like(thin), thin)) and math.isnan(M.clear(np.ones_like(gt), np.ones_like(gt)))


def test_the_cli_offers_every_metric():
    from vom_plugin.commands.eval_cmd import METRIC_CHOICES
    from vom_plugin.eval.scores import ALL_METRICS

    assert METRIC_CHOICES == ALL_METRICS == M_ALL


def test_an_empty_band_has_no_temporal_measure_and_a_ground_truth_past_one_is_clipped():
    # three frames with no band at all: dtSSD and MESSDdt read a perfect 0 (the last frame's convention alone)
    z = np.zeros((3, 16, 16), np.float32)
    band = evaluate_clip(z, z, region="narrow", metrics=["MAD", "dtSSD", "MESSDdt"])
    assert math.isnan(band.mean["dtSSD"]) and math.isnan(band.mean["MESSDdt"]) and math.isnan(band.mean["MAD"])
    # an EXR ground truth overshooting to 1.05 scored a perfect prediction MAD 25 and a solid interior as missed
    g = np.zeros((2, 32, 32), np.float32)
    g[:, 4:28, 4:28] = 1.05
    s = evaluate_clip(np.clip(g, 0, 1), g, metrics=["MAD", "Core"])
    assert s.mean["MAD"] == 0.0 and s.mean["Core"] == 0.0
    assert any("ground-truth values outside 0-1 clipped to it in frame(s) 0-1" in n for n in s.notes)
    # a matte of 0-255 values is a unit mistake, not an overshoot: refused, naming it (QA: clipped, it scored MAD 484)
    with pytest.raises(InputError, match=r"prediction frame 0: values up to 255.*0-255.*\(frames 0-1 are far outside"):
        evaluate_clip(np.clip(g, 0, 1) * 255, np.clip(g, 0, 1), metrics=["MAD"])
    with pytest.raises(InputError, match=r"ground-truth frame 0: values down to -255"):
        evaluate_clip(np.clip(g, 0, 1), -255 * np.clip(g, 0, 1), metrics=["MAD"])
    mixed = np.clip(g, 0, 1) * np.array([-5, 255], np.float32)[:, None, None]
    with pytest.raises(InputError) as e:  # each frame's own words (review: frame 1's 255 read as "down to -5")
        evaluate_clip(mixed, np.clip(g, 0, 1), metrics=["MAD"])
    assert str(e.value).startswith("prediction frame 0: values down to -5") and "frames 0-1 are far outside" in \
        str(e.value)


def test_messddt_in_a_clip_by_hand_whole_frame_and_band():
    """MESSDdt as ``evaluate_clip`` reports it, against a per-pixel sum written out here: the whole frame's mean x1e3
    looking back, the band's raw sum over frame t's band looking forward, frame t+1's error and band taken where the
    flow carries each pixel. The two frames have different bands and errors everywhere, so which band, whether it
    is warped and the scaling all change the number."""
    from vom_plugin.eval.regions import region_mask

    h, w, dx = 24, 32, 3
    gt = np.zeros((2, h, w), np.float32)
    gt[0, 6:18, 4:12] = 1.0
    gt[0, 10, 12] = 0.5
    gt[1, 6:18, 12:20] = 1.0  # moved right by 8: another band
    gt[1, 10, 20] = 0.5
    rng = np.random.default_rng(5)
    pred = np.clip(gt + rng.normal(0, 0.2, gt.shape), 0, 1).astype(np.float32)
    flow = np.zeros((h, w, 2), np.float32)
    flow[..., 0] = dx  # every pixel carried 3 px right
    err = (pred.astype(np.float64) - gt) ** 2

    def by_hand(mask0, mask1):
        total = 0.0
        for y in range(h):
            for x in range(w):
                if mask0[y, x]:
                    xt = min(x + dx, w - 1)
                    total += abs(err[0, y, x] - (err[1, y, xt] if mask1[y, xt] else 0.0))
        return total

    whole = evaluate_clip(pred, gt, metrics=["MESSDdt"], flows=[flow])
    everything = np.ones((h, w), bool)
    assert whole.per_frame["MESSDdt"] == pytest.approx([0.0, by_hand(everything, everything) / (h * w) * 1e3])
    band = evaluate_clip(pred, gt, region="narrow", metrics=["MESSDdt"], flows=[flow])
    m0, m1 = region_mask(gt[0], "narrow"), region_mask(gt[1], "narrow")
    assert not np.array_equal(m0, m1)
    assert band.per_frame["MESSDdt"] == pytest.approx([by_hand(m0, m1), 0.0])
    assert by_hand(m0, m1) != pytest.approx(by_hand(m0, m0))  # the test tells the bands apart
