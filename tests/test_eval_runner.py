"""Baselines, clip loading, the benchmark runner and the ``vom eval`` / ``vom benchmark`` commands (tiny data)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import OpenImageIO as oiio
import pytest

from vom_plugin.cli import main
from vom_plugin.errors import InputError
from vom_plugin.eval import baselines as B
from vom_plugin.eval.clips import EvalClip, coarse_roto, iter_clips, load_shot
from vom_plugin.eval.plot import plot_clip
from vom_plugin.eval.runner import format_table, make_methods, run_benchmark, vom_method
from vom_plugin.io import frames_to_network


def _moving_square(t: int = 4, h: int = 40, w: int = 56, step: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Textured grey background, a bright textured square moving ``step`` px right per frame; soft 1-px rim."""
    rng = np.random.default_rng(1)
    bg = 0.2 + 0.1 * rng.random((h, w, 3), dtype=np.float32)
    tex = 0.7 + 0.2 * rng.random((h, w, 3), dtype=np.float32)
    frames, alphas = [], []
    for i in range(t):
        a = np.zeros((h, w), np.float32)
        x0 = 12 + step * i
        a[12:28, x0:x0 + 16] = 1.0
        a[11, x0:x0 + 16] = 0.5  # a soft top edge, so the unknown band is not empty
        frames.append(tex * a[..., None] + bg * (1 - a[..., None]))
        alphas.append(a)
    return np.stack(frames).astype(np.float32), np.stack(alphas)


def test_static_and_flow_roto_follow_the_object():
    frames, gt = _moving_square()
    roto = (gt[0] >= 0.5).astype(np.float32)
    static = B.static_roto(frames, roto)
    assert static.shape == gt.shape and (static == roto).all()
    carried = B.flow_roto(frames, roto)
    assert set(np.unique(carried)) <= {0.0, 1.0}
    truth = gt[-1] >= 0.5
    iou = (carried[-1].astype(bool) & truth).sum() / (carried[-1].astype(bool) | truth).sum()
    iou_static = (roto.astype(bool) & truth).sum() / (roto.astype(bool) | truth).sum()
    assert iou > 0.85 and iou > iou_static + 0.1


def test_trimap_and_closed_form():
    mask = np.zeros((20, 20), np.float32)
    mask[5:15, 5:15] = 1
    tri = B.trimap_around(mask, 2)
    assert tri[10, 10] == 1.0 and tri[0, 0] == 0.0 and tri[5, 5] == 0.5 and tri[3, 10] == 0.5
    # white square on black: the solved alpha is the image itself (0 or 1), known regions untouched
    img = np.repeat(mask[..., None], 3, axis=2)
    alpha = B.closed_form(img, tri)
    np.testing.assert_allclose(alpha, mask, atol=0.05)
    # a trimap with no unknown pixel needs no solve
    assert (B.closed_form(img, (mask >= 0.5).astype(np.float64)) == mask).all()
    # an object thinner than the trimap's erosion (no solid part to anchor the solve): the mask itself, not the band
    # dilated around it taken as solid (a QA pass: the oracle scored below its own thresholded mask on thin objects)
    thin = np.zeros((20, 20), np.float32)
    thin[9:11, 4:16] = 1
    gt = np.zeros((1, 20, 20), np.float32)
    gt[0] = thin
    frames = np.repeat(thin[None, ..., None], 3, axis=3)
    got = B.oracle_cf(frames, gt, radius=2)
    assert (got[0] == thin).all() and B.trimap_around(thin, 2).max() == 0.5
    # one whose solid core the shrink to the matting size loses (a review: pymatting raised, the benchmark stopped)
    wide = np.zeros((54, 192), np.float32)
    wide[20:33, 10:180] = 1  # 13 px tall: eroded by 6, a row of solid part, which a quarter of the size misses
    tri = B.trimap_around(wide, 6)
    assert (tri == 1.0).any() and not (cv2.resize(tri, (48, 14), interpolation=cv2.INTER_NEAREST) == 1.0).any()
    got = B.closed_form(np.repeat(wide[..., None], 3, axis=2), tri, max_side=48, mask=wide)
    assert (got == wide).all()


def test_coarse_roto_is_binary_loose_and_drops_strands():
    a = np.zeros((40, 40), np.float32)
    a[10:30, 10:30] = 1.0
    a[5:35, 35] = 1.0  # a one-pixel strand
    r = coarse_roto(a, dilate=3, kernel=5)
    assert set(np.unique(r)) == {0.0, 1.0}
    assert r[20, 35] == 0.0  # the strand is gone (opened away)
    assert r[20, 31] == 1.0 and r[20, 34] == 0.0  # 3 px looser than the square's edge at x=29
    assert coarse_roto(np.full((8, 8), 0.3, np.float32)).all()  # faint: keeps its strongest pixels


def _clip() -> EvalClip:
    frames, gt = _moving_square()
    linear = np.where(frames <= 0.04045, frames / 12.92, ((frames + 0.055) / 1.055) ** 2.4).astype(np.float32)
    return EvalClip("square", linear, gt, [1001, 1002, 1003, 1004])


def test_run_benchmark_table_json_and_plot(tmp_path, monkeypatch):
    methods = make_methods(["static", "flow", "flow_cf", "oracle_cf"], matting_side=64, trimap_radius=2)
    result = run_benchmark([_clip()], methods)
    mean = result.mean()
    assert mean["oracle_cf"]["MAD"] < mean["static"]["MAD"] and mean["flow"]["MAD"] < mean["static"]["MAD"]
    c = result.clips[0]
    assert c.roto_source == "coarsened GT" and c.size == (56, 40) and c.frames == [1001, 1002, 1003, 1004]
    assert c.scores["static"].per_frame["dtSSD"][0] == 0.0
    d = json.loads(json.dumps(result.to_dict()))
    assert d["units"]["MAD"] == "x1e3" and set(d["mean"]) == {"static", "flow", "flow_cf", "oracle_cf"}
    table = format_table(result)
    assert "MEAN (1)" in table and "square" in table and "MAD x1e3" in table
    import matplotlib.pyplot as plt

    figures = []
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig: (figures.append(fig), close(fig)))
    png = plot_clip(c, tmp_path / "plots" / "square.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ticks = figures[0].axes[-1].get_xticks()  # frame numbers only (QA: 0.5, 1.5, ... over 4 frames)
    assert len(ticks) and all(t == int(t) for t in ticks)


def test_the_tables_mean_rows_say_a_clips_seconds_and_what_a_mean_leaves_out():
    """A QA pass: the MEAN row's sec was the clips' total under a column of a clip's seconds, and a mean over fewer
    clips (Core, not defined where the truth has no solid part) read as over all of them."""
    from vom_plugin.eval.runner import BenchmarkResult, ClipResult
    from vom_plugin.eval.scores import ClipScores

    result = BenchmarkResult(region="whole", methods=["vom"])
    for name, core, secs in (("a", 30.0, 1.0), ("b", float("nan"), 3.0)):
        c = ClipResult(name=name, frames=[1], size=(8, 8), roto_source="file")
        c.scores["vom"] = ClipScores(name, "whole", [1], {"MAD": [10.0], "Core": [core]}, {"MAD": 10.0, "Core": core})
        c.seconds["vom"] = secs
        result.clips.append(c)
    table = format_table(result, metrics=("MAD", "Core"))
    mean_row = next(line for line in table.splitlines() if line.startswith("MEAN (2)"))
    assert mean_row.split()[-1] == "2.0"  # (1 + 3) / 2, a clip's seconds as in the rows above
    assert table.splitlines()[-1] == "vom Core: the mean of 1 of 2 clips (not defined on b)"
    result.clips.append(ClipResult(name="c", frames=[1], size=(8, 8), roto_source="file"))  # vom did not run on it
    table = format_table(result, metrics=("MAD", "Core"))
    assert next(line for line in table.splitlines() if line.startswith("MEAN (3)")).split()[-1] == "2.0"
    assert "vom MAD: the mean of 2 of 3 clips (not defined on c)" in table  # (review)


def test_unknown_method_and_vom_without_model():
    from vom_plugin.errors import InputError

    with pytest.raises(InputError, match="method 'magic' is not known"):
        make_methods(["magic"])
    with pytest.raises(InputError, match="needs a model"):
        make_methods(["vom"])


def test_vom_method_is_the_render_path(tmp_path: Path):
    """The benchmark's vom method runs what `vom render` runs: the same clip written as plate files and
    rendered gives the same alphas (to the half float of the EXR), with a resize to the working size, padding
    to 16 and the guided lift back to the clip's size all exercised (200x80 at working size 128)."""
    import torch

    from vom_plugin import io as vio
    from vom_plugin.engine.runner import render
    from vom_plugin.engine.shot import Shot
    from vom_plugin.engine.weights import save_weights
    from vom_plugin.model import build_model

    frames, gt = _moving_square(t=4, h=80, w=200)
    roto = (gt[0] >= 0.5).astype(np.float32)
    (tmp_path / "plate").mkdir()
    for i, f in enumerate(frames):
        _write(tmp_path / "plate" / f"p.{i + 1:04d}.exr", f, ["R", "G", "B"])
    _write(tmp_path / "roto.0001.exr", roto, ["A"])
    torch.manual_seed(0)
    model = build_model("lite").eval()
    save_weights(model, tmp_path / "m.safetensors", fp16=False)
    shot = Shot(plate=str(tmp_path / "plate" / "p.####.exr"), keyframes={1: str(tmp_path / "roto.0001.exr")},
                out=str(tmp_path / "out" / "a.####.exr"), model=str(tmp_path / "m.safetensors"), device="cpu",
                working_size=128, colorspace="lin_rec709", cache=str(tmp_path / "cache"))
    rendered = np.stack([oiio.ImageBuf(str(p)).get_pixels(oiio.FLOAT)[..., 0] for p in render(shot).paths])
    plates = [vio.read_plate(tmp_path / "plate" / f"p.{i + 1:04d}.exr").rgb for i in range(len(frames))]
    gain = vio.exposure_gain(plates[0], "lin_rec709")  # the shot's exposure, from its keyframe, as run_clip takes it
    assert gain != 1.0
    display = np.stack([vio.to_network(p, "lin_rec709", gain=gain) for p in plates])
    alpha = vom_method(model, working_size=128)(display, roto, None)
    assert alpha.shape == (4, 80, 200) and alpha.dtype == np.float32
    assert np.ptp(alpha[2]) > 0
    np.testing.assert_array_equal(rendered, alpha.astype(np.float16).astype(np.float32))


# ---- files and commands ----------------------------------------------------------------------------------


def _write(path: Path, pixels: np.ndarray, channels: list[str]) -> None:
    pixels = np.asarray(pixels, np.float32)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], pixels.shape[2], oiio.HALF)
    spec.channelnames = tuple(channels)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec)
    assert out.write_image(pixels)
    out.close()


def _shot(folder: Path, *, roto: bool = True) -> tuple[np.ndarray, np.ndarray]:
    folder.mkdir(parents=True)
    frames, gt = _moving_square(t=3, h=32, w=48)
    for i in range(3):
        _write(folder / f"plate.{1001 + i:04d}.exr", frames[i] ** 2.2, ["R", "G", "B"])
        _write(folder / f"gt.{1001 + i:04d}.exr", gt[i], ["A"])
    if roto:
        _write(folder / "roto.1001.exr", (gt[0] >= 0.5).astype(np.float32), ["A"])
    return frames, gt


def test_load_shot_and_iter_clips(tmp_path):
    _, gt = _shot(tmp_path / "shots" / "a")
    _shot(tmp_path / "shots" / "b", roto=False)
    clips = list(iter_clips(f"shots:{tmp_path / 'shots'}"))
    assert [c.name for c in clips] == ["a", "b"]
    assert clips[0].frames == [1001, 1002, 1003] and clips[0].plate.shape == (3, 32, 48, 3)
    np.testing.assert_allclose(clips[0].gt, gt, atol=1e-3)  # half float
    assert clips[0].roto is not None and clips[1].roto is None
    assert load_shot(tmp_path / "shots" / "a", max_frames=2).gt.shape == (2, 32, 48)


def test_load_shot_reads_a_png_plate_as_vom_render_does(tmp_path):
    """QA: a PNG plate was sRGB-decoded by the loader and then again by the colour setting its shot.yaml gave (sRGB
    decodes since session 47), so the benchmark matted another picture than `vom render shot.yaml`. The loader keeps
    the code values and says the colour space: the shot file's, else sRGB for a PNG and linear Rec.709 for an EXR."""
    from vom_plugin.io import read_plate

    frames, gt = _moving_square(t=3, h=32, w=48)
    for name, said in (("bare", None), ("srgb", "sRGB"), ("linear", "lin_rec709")):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(3):
            buf = oiio.ImageBuf(oiio.ImageSpec(48, 32, 3, oiio.UINT8))
            buf.set_pixels(oiio.ROI(), np.round(frames[i] * 255) / 255)
            assert buf.write(str(folder / f"plate.{1001 + i:04d}.png"), oiio.UINT8)
            _write(folder / f"gt.{1001 + i:04d}.exr", gt[i], ["A"])
        if said:
            (folder / "shot.yaml").write_text(f"colorspace: {said}\n")
        clip = load_shot(folder)
        assert clip.colorspace == (said or "sRGB")
        np.testing.assert_array_equal(clip.plate[1], read_plate(folder / "plate.1002.png").rgb)
    _shot(tmp_path / "exr")
    assert load_shot(tmp_path / "exr").colorspace == "lin_rec709"


def test_vom_eval_json_and_table(tmp_path, capsys):
    _, gt = _shot(tmp_path / "s")
    pred = gt.copy()
    pred[1, 0, :16] = 1.0  # 16 wrong pixels of 32x48 on frame 1002
    for i in range(3):
        _write(tmp_path / f"pred.{1001 + i:04d}.exr", pred[i], ["A"])
    argv = ["eval", "--pred", str(tmp_path / "pred.####.exr"), "--gt", str(tmp_path / "s" / "gt.####.exr")]
    assert main(argv + ["--json", "--metrics", "MAD", "dtSSD"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["frames"] == [1001, 1002, 1003]
    assert d["per_frame"]["MAD"] == pytest.approx([0.0, 16 / (32 * 48) * 1e3, 0.0], abs=1e-6)
    assert set(d["mean"]) == {"MAD", "dtSSD"}
    assert main(argv + ["--frames", "1002-1003", "--region", "narrow"]) == 0
    out = capsys.readouterr().out
    assert "2 frame(s), region narrow" in out and "mean" in out and "1002" in out


def test_vom_eval_errors_name_the_frame(tmp_path, capsys):
    _, gt = _shot(tmp_path / "s")
    gt_pat = str(tmp_path / "s" / "gt.####.exr")
    _write(tmp_path / "p.1001.exr", gt[0], ["A"])
    _write(tmp_path / "p.1002.exr", np.zeros((16, 16), np.float32), ["A"])
    assert main(["eval", "--pred", str(tmp_path / "p.####.exr"), "--gt", gt_pat]) == 2
    err = capsys.readouterr().err  # which side lacks it, and what to do (QA: "sequence ...: missing frame 1003")
    assert "error: prediction: sequence " in err and "missing frame 1003" in err and "score fewer with --frames" in err
    assert main(["eval", "--pred", str(tmp_path / "p.####.exr"), "--gt", gt_pat, "--frames", "1001-1002"]) == 2
    err = capsys.readouterr().err
    assert "prediction frame 1002" in err and "is 16x16; expected 48x32" in err
    bad = gt[0].copy()
    bad[3, 4] = np.nan
    _write(tmp_path / "n.1001.exr", bad, ["A"])
    assert main(["eval", "--pred", str(tmp_path / "n.####.exr"), "--gt", gt_pat, "--frames", "1001"]) == 2
    err = capsys.readouterr().err
    assert "frame 1001" in err and "NaN/Inf" in err and "x=4, y=3" in err
    # a prediction pattern that lost its ####: one file scored against all 3 frames, dtSSD of a still, no word (QA)
    assert main(["eval", "--pred", str(tmp_path / "p.1001.exr"), "--gt", gt_pat]) == 2
    err = capsys.readouterr().err
    assert f"prediction {tmp_path / 'p.1001.exr'}: one file, with no frame token (####, %04d, @@@@), for 3 frames" \
        in err
    assert main(["eval", "--pred", str(tmp_path / "p.1001.exr"), "--gt", gt_pat, "--frames", "1001"]) == 0  # one: fine
    capsys.readouterr()
    assert main(["eval", "--pred", str(tmp_path / "gone.exr"), "--gt", gt_pat]) == 2
    assert f"prediction file {tmp_path / 'gone.exr'} does not exist" in capsys.readouterr().err  # was "plate file"
    # a folder exists: "does not exist" sent the user looking for a typo; an empty --gt named no file (QA)
    assert main(["eval", "--pred", str(tmp_path), "--gt", gt_pat]) == 2
    assert f"prediction {tmp_path} is a folder; give the prediction's file pattern" in capsys.readouterr().err
    assert main(["eval", "--pred", gt_pat, "--gt", ""]) == 2
    assert "ground truth: no file given (an empty pattern)" in capsys.readouterr().err
    # a GT frame missing where the prediction has one: refused by number (a QA pass: scored as a clip of fewer
    # frames, exit 0); a GT and a prediction on twos are no gap
    (tmp_path / "gap").mkdir()
    for f in (1, 2, 3, 4, 5):
        _write(tmp_path / "gap" / f"p.{f:04d}.exr", gt[0], ["A"])
        if f != 3:
            _write(tmp_path / "gap" / f"g.{f:04d}.exr", gt[0], ["A"])
    gap = ["eval", "--pred", str(tmp_path / "gap" / "p.####.exr"), "--gt", str(tmp_path / "gap" / "g.####.exr")]
    assert main(gap) == 2
    assert "g.####.exr: no frame 3, where the prediction" in capsys.readouterr().err
    assert main([*gap, "--frames", "1,2,4,5"]) == 0
    (tmp_path / "gap" / "p.0003.exr").unlink()
    capsys.readouterr()
    assert main(gap) == 0
    assert "note: prediction frame" not in capsys.readouterr().err
    # a ground truth short of the prediction's ends: its frames scored, the others said (QA: left out unsaid)
    (tmp_path / "gap" / "g.0005.exr").unlink()
    assert main(gap) == 0
    out, err = capsys.readouterr()
    assert "3 frame(s)" in out and "note: prediction frame(s) 5 have no ground truth: not scored" in err
    # a GT on twos beside a prediction on ones: every other frame scored, as before (a review)
    (tmp_path / "twos").mkdir()
    for f in (1, 2, 3, 4, 5):
        _write(tmp_path / "twos" / f"p.{f:04d}.exr", gt[0], ["A"])
        if f % 2:
            _write(tmp_path / "twos" / f"g.{f:04d}.exr", gt[0], ["A"])
    assert main(["eval", "--pred", str(tmp_path / "twos" / "p.####.exr"), "--gt",
                 str(tmp_path / "twos" / "g.####.exr")]) == 0
    assert "3 frame(s)" in capsys.readouterr().out


def test_vom_eval_says_a_prediction_numbered_from_another_start(tmp_path, capsys):
    """QA: a prediction numbered 1-4 against a GT numbered 1001-1004 read "prediction frame(s) 1-4 have no ground
    truth" then "missing frames 1001-1004 ... score fewer with --frames": the two are offset, and that is said."""
    _, gt = _shot(tmp_path / "s")
    for i in range(3):
        _write(tmp_path / f"p.{1 + i:04d}.exr", gt[i], ["A"])
    argv = ["eval", "--pred", str(tmp_path / "p.####.exr"), "--gt", str(tmp_path / "s" / "gt.####.exr")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (f"the prediction {tmp_path / 'p.####.exr'} is numbered 1-3 and the ground truth "
            f"{tmp_path / 's' / 'gt.####.exr'} 1001-1003: no frame in common; renumber one") in err
    assert "no ground truth" not in err and "score fewer" not in err
    # no frame in common and another count (0-4 against 1001-1003): the same two confusing messages (a review);
    # both numberings said, and no renumbering suggested where it would not line them up
    for f in (0, 4):
        _write(tmp_path / f"p.{f:04d}.exr", gt[0], ["A"])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (f"the prediction {tmp_path / 'p.####.exr'} is numbered 0-4 and the ground truth "
            f"{tmp_path / 's' / 'gt.####.exr'} 1001-1003: no frame in common (5 frames against 3); check they are "
            "of the same shot and frame range") in err
    assert "renumber" not in err and "no ground truth" not in err and "score fewer" not in err
    # one frame in common: the prediction's frames the GT lacks are said as before
    _write(tmp_path / "p.1001.exr", gt[0], ["A"])
    assert main(argv) == 2  # the GT's 1002, 1003 the prediction lacks
    assert "missing frames 1002-1003" in capsys.readouterr().err


def test_vom_eval_of_a_render_of_several_objects_names_the_alpha(tmp_path, capsys):
    """OpenImageIO's alpha channel of a file holding dog.A and hero.A is dog.A: hero's render was scored as dog's,
    exit 0. Several alphas are refused; --channel picks one. Frames without a value print "-" with a note."""
    _, gt = _shot(tmp_path / "s")
    gt_pat = str(tmp_path / "s" / "gt.####.exr")
    for i, f in enumerate((1001, 1002, 1003)):
        _write(tmp_path / f"m.{f}.exr", np.stack([np.zeros_like(gt[i]), gt[i]], axis=2), ["dog.A", "hero.A"])
    argv = ["eval", "--pred", str(tmp_path / "m.####.exr"), "--gt", gt_pat, "--metrics", "MAD", "dtSSD"]
    assert main(argv) == 2
    assert "holds several alphas (dog.A, hero.A); name the channel to score (--channel NAME)" in capsys.readouterr().err
    assert main(argv + ["--channel", "hero.A", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mean"]["MAD"] == 0.0
    assert main(argv + ["--channel", "cat.A"]) == 2
    assert "has no channel 'cat.A'" in capsys.readouterr().err
    # the same file as the ground truth: --gt-channel (the message names the flag of its role)
    gt_argv = ["eval", "--pred", gt_pat, "--gt", str(tmp_path / "m.####.exr"), "--metrics", "MAD"]
    assert main(gt_argv) == 2
    # no one object suggested: the hint named dog.A, the first, whichever the user was scoring (QA)
    err = capsys.readouterr().err
    assert "ground truth" in err and "(dog.A, hero.A); name the channel to score (--gt-channel NAME)" in err
    assert main(gt_argv + ["--gt-channel", "hero.A", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mean"]["MAD"] == 0.0
    assert main(argv + ["--channel", "hero.A", "--frames", "1001,1003"]) == 0  # 1003 is not 1001's next frame
    out, err = capsys.readouterr()
    assert out.splitlines()[-2].split()[-1] == "-"
    assert ("dtSSD not defined in frame(s) 1001, 1003 (no two of the scored frames are adjacent frame numbers)"
            in err)
    # --channel alone: a ground truth of the same objects is read at the same channel, as the help says (it was
    # refused, suggesting dog.A); against itself hero.A scores 0, dog.A does not
    both = ["eval", "--pred", str(tmp_path / "m.####.exr"), "--gt", str(tmp_path / "m.####.exr"), "--metrics", "MAD",
            "--json"]
    assert main(both + ["--channel", "hero.A"]) == 0
    assert json.loads(capsys.readouterr().out)["mean"]["MAD"] == 0.0
    assert main(both + ["--channel", "hero.A", "--gt-channel", "dog.A"]) == 0
    assert json.loads(capsys.readouterr().out)["mean"]["MAD"] > 100


def test_vom_eval_refuses_an_opaque_rgba_matte_naming_the_channels(tmp_path, capsys):
    """A ground truth saved as an opaque RGBA image, the matte in R = G = B and A 1 everywhere (Nuke's Write of a
    shuffled matte, datasets' PNGs), was scored against its A: MAD 832 for a matte at 22, exit 0 (QA). Refused,
    naming the flags; --gt-channel R scores the matte and --gt-channel A the A, as asked."""
    _, gt = _shot(tmp_path / "s")
    for i, f in enumerate((1001, 1002, 1003)):
        px = np.concatenate([np.repeat(gt[i][..., None], 3, axis=2), np.ones_like(gt[i])[..., None]], axis=2)
        buf = oiio.ImageBuf(oiio.ImageSpec(px.shape[1], px.shape[0], 4, oiio.UINT8))
        buf.set_pixels(oiio.ROI(), np.ascontiguousarray(px, np.float32))
        assert buf.write(str(tmp_path / f"g.{f}.png"))
    argv = ["eval", "--pred", str(tmp_path / "s" / "gt.####.exr"), "--gt", str(tmp_path / "g.####.png"),
            "--metrics", "MAD", "--json"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "g.1001.png: its A is 1 in every pixel while R = G = B hold a matte" in err
    assert "--gt-channel R for the matte, --gt-channel A for the A" in err
    assert main(argv + ["--gt-channel", "R"]) == 0
    assert json.loads(capsys.readouterr().out)["mean"]["MAD"] < 3  # the 8-bit rounding of the same matte
    assert main(argv + ["--gt-channel", "A"]) == 0
    assert json.loads(capsys.readouterr().out)["mean"]["MAD"] > 100
    # the prediction saved so, scored with the advice's --channel R: its ground truth keeps its A (it scored the
    # ground truth's red, 0.8 x the matte, MAD 131 for a matte at 0.2, QA)
    for i, f in enumerate((1001, 1002, 1003)):
        _write(tmp_path / f"rgba_gt.{f}.exr", np.stack([0.8 * gt[i], 0.3 * gt[i], 0.1 * gt[i], gt[i]], axis=2),
               ["R", "G", "B", "A"])
    pred = ["eval", "--pred", str(tmp_path / "g.####.png"), "--gt", str(tmp_path / "rgba_gt.####.exr"),
            "--metrics", "MAD", "--json"]
    assert main(pred) == 2
    assert "--channel R for the matte" in capsys.readouterr().err
    assert main(pred + ["--channel", "R"]) == 0
    assert json.loads(capsys.readouterr().out)["mean"]["MAD"] < 3
    # an A of 0 beside a grey picture (vom's rgba output of a black-and-white plate, the object out of frame) is a
    # matte of 0, not an opaque RGBA matte (review); nor is a file vom wrote, whatever its A
    from vom_plugin.eval.clips import read_alpha

    grey = np.repeat(gt[0][..., None], 3, axis=2)
    _write(tmp_path / "empty.exr", np.concatenate([grey, np.zeros_like(gt[0])[..., None]], axis=2),
           ["R", "G", "B", "A"])
    assert read_alpha(tmp_path / "empty.exr").max() == 0.0
    from vom_plugin.io import ImageInfo, write_alpha

    write_alpha(tmp_path / "vom.exr", np.ones_like(gt[0]), ImageInfo.for_size(gt.shape[2], gt.shape[1]),
                output="rgba", rgb=grey)
    assert read_alpha(tmp_path / "vom.exr").min() == 1.0


def test_vom_benchmark_writes_json_and_plots(tmp_path, capsys):
    _shot(tmp_path / "shots" / "a")
    out = tmp_path / "bench"
    rc = main(["benchmark", "--data", f"shots:{tmp_path / 'shots'}", "--methods", "static", "flow",
               "--out", str(out), "--save-alphas"])
    assert rc == 0
    saved = sorted(p.name for p in (out / "a" / "flow").iterdir())
    assert saved == ["alpha.1001.exr", "alpha.1002.exr", "alpha.1003.exr"]
    from vom_plugin.eval.clips import read_alpha

    assert set(np.unique(read_alpha(out / "a" / "static" / "alpha.1003.exr"))) == {0.0, 1.0}
    text = capsys.readouterr().out
    assert "MEAN (1)" in text and "static" in text and "flow" in text
    d = json.loads((out / "benchmark.json").read_text())
    assert d["methods"] == ["static", "flow"] and d["clips"][0]["roto"] == "file"
    assert (out / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["benchmark", "--data", "synth:1", "--save-alphas"]) == 2
    assert "--save-alphas needs --out" in capsys.readouterr().err
    assert main(["benchmark", "--data", "nowhere:1"]) == 2
    assert "unknown kind 'nowhere'" in capsys.readouterr().err
    assert main(["benchmark", "--data", f"shots:{tmp_path / 'missing'}", "--methods", "static"]) == 2
    capsys.readouterr()
    # a shot.yaml beside the plate says how it is read (as `vom render shot.yaml` reads it); the table says what
    # made it (a table pasted from a quick run read like a full default one)
    (tmp_path / "shots" / "a" / "shot.yaml").write_text("colorspace: ACEScg\n")
    assert main(["benchmark", "--data", f"shots:{tmp_path / 'shots'}", "--methods", "static", "--frames", "2",
                 "--out", str(out), "--replace-alphas"]) == 0
    title = capsys.readouterr().out.splitlines()[0]
    assert f"data shots:{tmp_path / 'shots'}" in title and "frames 2" in title and "plates read as ACEScg" in title
    assert "model" not in title and "working size" not in title  # no vom method: it said "model None"
    d = json.loads((out / "benchmark.json").read_text())
    assert d["clips"][0]["colorspace"] == "ACEScg" and d["settings"]["colorspace"] == ["ACEScg"]
    (tmp_path / "shots" / "a" / "shot.yaml").write_text("frames: 1001-1003\n")  # as vom render reads it: ACEScg
    assert main(["benchmark", "--data", f"shots:{tmp_path / 'shots'}", "--methods", "static", "--out", str(out)]) == 0
    assert json.loads((out / "benchmark.json").read_text())["clips"][0]["colorspace"] == "ACEScg"
    capsys.readouterr()
    (tmp_path / "shots" / "a" / "shot.yaml").write_text("colorspace: Log\n")
    assert main(["benchmark", "--data", f"shots:{tmp_path / 'shots'}", "--methods", "static"]) == 2
    assert "shot.yaml: colorspace" in capsys.readouterr().err


def test_a_benchmark_into_an_earlier_ones_folder_leaves_none_of_its_results(tmp_path, capsys):
    """Plots and saved alphas of an earlier run stayed beside a new benchmark.json that listed other clips, read as
    this run's by whoever browsed or globbed the folder (QA). They go; a file of someone else's there stays."""
    _shot(tmp_path / "one" / "a")
    _shot(tmp_path / "two" / "b")
    out = tmp_path / "bench"
    assert main(["benchmark", "--data", f"shots:{tmp_path / 'one'}", "--methods", "static", "flow", "--out", str(out),
                 "--save-alphas"]) == 0
    assert (out / "a.png").is_file() and len(list((out / "a" / "flow").glob("alpha.*.exr"))) == 3
    (out / "a" / "flow" / "notes.txt").write_text("mine")
    assert main(["benchmark", "--data", f"shots:{tmp_path / 'two'}", "--methods", "static", "--out", str(out),
                 "--replace-alphas"]) == 0
    said = capsys.readouterr().out.splitlines()[-1]
    assert re.search(r"; replaced the earlier run's report \(written \d{4}-\d\d-\d\d \d\d:\d\d, clip\(s\) a, "
                     r"method\(s\) static, flow\): 1 plot\(s\) and 6 saved alpha\(s\) of it removed, 0 saved "
                     r"alpha\(s\) written over$", said), said
    assert [c["name"] for c in json.loads((out / "benchmark.json").read_text())["clips"]] == ["b"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "a", "a/flow", "a/flow/notes.txt", "b.png", "benchmark.json"]


def test_a_benchmark_into_a_folder_of_saved_alphas_is_refused_unless_told(tmp_path, capsys):
    """QA: a second benchmark into the folder (to compare another model) removed the first run's saved mattes, 8 EXRs,
    saying only "wrote .../benchmark.json and 1 plot(s)". A render's output is kept: the run is refused before any
    work, naming the frames and the flag; with --replace-alphas it goes on and says what it replaced and removed."""
    _shot(tmp_path / "shots" / "a")
    out = tmp_path / "bench"
    argv = ["benchmark", "--data", f"shots:{tmp_path / 'shots'}", "--out", str(out)]
    assert main([*argv, "--methods", "static", "flow", "--save-alphas"]) == 0
    capsys.readouterr()
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert len([p for p in before if p.suffix == ".exr"]) == 6
    for again in (["--methods", "static"], ["--methods", "static", "flow", "--save-alphas"]):
        assert main([*argv, *again]) == 2
        err = capsys.readouterr().err
        assert f"--out {out}: holds the alphas an earlier benchmark saved (written " in err, err
        assert "clip(s) a, method(s) static, flow)" in err
        assert f"{out / 'a' / 'flow'} (3 frame(s), alpha.1001.exr ...)" in err
        assert f"{out / 'a' / 'static'} (3 frame(s), alpha.1001.exr ...)" in err
        assert "pass --replace-alphas to let it, or give another --out" in err
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing lost
    assert main([*argv, "--methods", "static", "--save-alphas", "--replace-alphas"]) == 0
    said = capsys.readouterr().out.splitlines()[-1]
    assert said.endswith("0 plot(s) and 3 saved alpha(s) of it removed, 3 saved alpha(s) written over"), said
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.exr")) == [
        f"a/static/alpha.100{i}.exr" for i in (1, 2, 3)]
    assert main(["benchmark", "--data", "synth:1", "--replace-alphas"]) == 2
    assert "--replace-alphas is an --out option" in capsys.readouterr().err


def test_a_hole_in_a_shots_plate_or_ground_truth_is_refused_before_any_render(tmp_path, capsys):
    """QA: plate.0003 missing, the benchmark scored frames 1, 2, 4 with the network run across the gap as if they were
    adjacent, exit 0, a JSON note the only word. A hole in the plate or the GT is refused naming the shot, the
    pattern and the frames; in shots:ROOT before the first shot is rendered."""
    _shot(tmp_path / "shots" / "a")
    _shot(tmp_path / "shots" / "b")
    (tmp_path / "shots" / "b" / "plate.1002.exr").unlink()
    data = ["benchmark", "--data", f"shots:{tmp_path / 'shots'}", "--methods", "static", "flow"]
    assert main(data) == 2
    err = capsys.readouterr().err
    assert (f"shot b: plate {tmp_path / 'shots' / 'b' / 'plate.####.exr'} has no frame 1002 of 1001-1003" in err
            and "--frames 1 to score 1001 only" in err)
    assert "a: static" not in err  # nothing rendered: shot a's work is not lost at the end
    with pytest.raises(InputError, match="shot b: plate .* has no frame 1002 of 1001-1003"):
        load_shot(tmp_path / "shots" / "b")
    assert load_shot(tmp_path / "shots" / "b", max_frames=1).frames == [1001]  # the frames before the hole
    (tmp_path / "shots" / "b" / "plate.1003.exr").unlink()  # no hole now: a 1-frame shot
    assert load_shot(tmp_path / "shots" / "b").frames == [1001]
    (tmp_path / "shots" / "a" / "gt.1001.exr").unlink()
    assert main(["benchmark", "--data", f"folder:{tmp_path / 'shots' / 'a'}", "--methods", "static"]) == 2
    err = capsys.readouterr().err
    assert f"shot a: ground truth {tmp_path / 'shots' / 'a' / 'gt.####.exr'} has no frame 1001 of 1001-1003" in err
    assert "--frames" not in err  # no frame before the hole to score
    # a plate frame of another size: named (numpy's "all input arrays must have the same shape", exit 1)
    _shot(tmp_path / "sized" / "c")
    _write(tmp_path / "sized" / "c" / "plate.1002.exr", np.zeros((16, 16, 3), np.float32), ["R", "G", "B"])
    assert main(["benchmark", "--data", f"folder:{tmp_path / 'sized'}", "--methods", "static"]) == 2
    assert (f"shot c: plate frame 1002 ({tmp_path / 'sized' / 'c' / 'plate.1002.exr'}) is 16x16; expected 48x32 as "
            "frame 1001") in capsys.readouterr().err


def _shot_on(folder: Path, numbers: list[int]) -> np.ndarray:
    """A shot folder whose plate and ground truth are the frames ``numbers`` (on twos: 1001, 1003, 1005)."""
    folder.mkdir(parents=True)
    frames, gt = _moving_square(t=len(numbers), h=32, w=48)
    for i, f in enumerate(numbers):
        _write(folder / f"plate.{f:04d}.exr", frames[i] ** 2.2, ["R", "G", "B"])
        _write(folder / f"gt.{f:04d}.exr", gt[i], ["A"])
    return gt


def test_a_shot_on_twos_is_scored_on_its_frames_and_a_hole_in_its_step_refused(tmp_path, capsys, monkeypatch):
    """Review: a plate on twos (1001, 1003, 1005) was refused as missing 1002 and 1004, where `vom render` reads it
    as having no holes (engine.shot_plate.holes: the step of three frames or more); before the session it loaded as
    its three frames. It is scored on them; a frame missing in its step, of the plate or the GT, is still refused."""
    gt = _shot_on(tmp_path / "shots" / "twos", [1001, 1003, 1005])
    clip = load_shot(tmp_path / "shots" / "twos")
    assert clip.frames == [1001, 1003, 1005] and clip.plate.shape == (3, 32, 48, 3)
    np.testing.assert_allclose(clip.gt, gt, atol=1e-3)
    _shot_on(tmp_path / "shots" / "ones", [1001, 1002, 1003])
    out = tmp_path / "bench"
    assert main(["benchmark", "--data", f"shots:{tmp_path / 'shots'}", "--methods", "static", "--out", str(out)]) == 0
    capsys.readouterr()
    clips = {c["name"]: c for c in json.loads((out / "benchmark.json").read_text())["clips"]}
    assert clips["twos"]["frames"] == [1001, 1003, 1005]
    static = clips["twos"]["methods"]["static"]
    assert len(static["per_frame"]["MAD"]) == 3 and static["mean"]["MAD"] > 0
    # its frames are not adjacent frame numbers: no temporal score, said (a plate on twos, not a hole)
    assert static["mean"]["dtSSD"] is None and clips["ones"]["methods"]["static"]["mean"]["dtSSD"] is not None
    assert load_shot(tmp_path / "shots" / "twos", max_frames=2).frames == [1001, 1003]
    # a real hole in a plate on twos: 1005 between 1003 and 1007
    _shot_on(tmp_path / "holed" / "h", [1001, 1003, 1007])
    with pytest.raises(InputError, match=r"shot h: plate .*plate.####.exr has no frame 1005 of 1001-1007x2 .*"
                                         r"give --frames 2 to score 1001, 1003 only"):
        load_shot(tmp_path / "holed" / "h")
    # the GT is checked on the plate's frames: one of them missing is refused, one between them is not needed
    (tmp_path / "shots" / "twos" / "gt.1003.exr").unlink()
    with pytest.raises(InputError, match=r"shot twos: ground truth .*gt.####.exr has no frame 1003 of 1001-1005x2"):
        load_shot(tmp_path / "shots" / "twos")
    # a shot given as a relative folder (folder:.) is named by its folder's name, not "shot :"
    monkeypatch.chdir(tmp_path / "shots" / "twos")
    with pytest.raises(InputError, match=r"^shot twos: ground truth gt.####.exr has no frame 1003"):
        load_shot(Path("."))
    monkeypatch.chdir(tmp_path / "shots" / "ones")
    assert load_shot(Path(".")).name == "ones"


def test_a_bad_ground_truth_is_refused_at_load_naming_the_shot_and_file(tmp_path, capsys):
    """QA: a GT of 0-255 values or with NaN was found after every method had rendered the clip, the multi-shot run
    stopped with no report, the message named neither the shot nor the file (x, y of the --size picture), and numpy
    warned of an invalid cast. It is refused before any render, in the file's own pixels, with no warning."""
    import warnings

    _, gt = _shot(tmp_path / "shots" / "a")
    _shot(tmp_path / "shots" / "b")
    bad = gt[1].copy()
    bad[10, 20] = np.nan
    _write(tmp_path / "shots" / "b" / "gt.1002.exr", bad, ["A"])
    data = ["benchmark", "--data", f"shots:{tmp_path / 'shots'}", "--methods", "static", "--size", "24"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*data, "--json"]) == 2
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    out, err = capsys.readouterr()
    gt_b = tmp_path / "shots" / "b"
    assert (f"shot b: ground truth {gt_b / 'gt.####.exr'} frame 1002 ({gt_b / 'gt.1002.exr'}): 1 NaN/Inf pixel(s) "
            "(first at x=20, y=10)" in err)
    assert json.loads(out)["exit_code"] == 2 and "a: static" not in err  # no table: the error is the one JSON object
    _write(gt_b / "gt.1002.exr", gt[1] * 255, ["A"])
    assert main(data) == 2
    err = capsys.readouterr().err
    assert f"shot b: ground truth {gt_b / 'gt.####.exr'} frame 1002 ({gt_b / 'gt.1002.exr'}): values up to 255" in err
    assert "divide it by 255" in err
    # clips made in Python: refused before a method runs, naming the clip, in its own pixels (not the --size ones)
    frames, alphas = _moving_square()
    alphas[2, 10, 20] = np.inf
    ran = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError, match=r"clip sq: ground truth frame 3: 1 NaN/Inf pixel\(s\) \(first at x=20, "
                                             r"y=10\)"):
            run_benchmark([EvalClip("sq", frames, alphas, [1, 2, 3, 4])],
                          {"m": lambda f, r, g: ran.append(1) or np.zeros(g.shape, np.float32)}, max_side=28)
    assert not ran and not [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_shots_ground_truths_are_read_and_checked_no_more_than_needed(tmp_path, monkeypatch):
    """Review: with shots: each ground truth was read twice and its values checked three times (check_shot, load_shot,
    run_benchmark). The first shot is loaded before the others are checked (read once), and a shot's values are
    checked once a read, not again by run_benchmark."""
    from vom_plugin.eval import clips as C
    from vom_plugin.eval import runner as R
    from vom_plugin.eval import scores as S

    _shot(tmp_path / "shots" / "a")
    _shot(tmp_path / "shots" / "b")
    reads: list[str] = []
    checked: list[int] = []
    read, problem = C.read_alpha_sequence, S.value_problem
    monkeypatch.setattr(C, "read_alpha_sequence", lambda pat, *a, **k: reads.append(Path(pat).parent.name)
                        or read(pat, *a, **k))
    monkeypatch.setattr(S, "value_problem", lambda a: checked.append(1) or problem(a))
    clips = list(iter_clips(f"shots:{tmp_path / 'shots'}"))
    assert sorted(reads) == ["a", "b", "b"] and len(checked) == 9  # 3 frames: a once, b twice
    checked.clear()
    for clip in clips:
        R._refuse_bad_gt(clip)
    assert not checked


def test_the_benchmark_prints_each_clips_notes_on_stderr(tmp_path, capsys):
    """QA: the notes the README promises (a ground truth clipped to 0-1, a value not defined in some frames) were only
    in --json's output. They are printed on stderr as vom eval's are, naming the clip, and the method where they
    differ."""
    _, gt = _shot(tmp_path / "shots" / "a")
    over = gt[1].copy()
    over[20, 20] = 1.5
    _write(tmp_path / "shots" / "a" / "gt.1002.exr", over, ["A"])
    data = ["benchmark", "--data", f"shots:{tmp_path / 'shots'}", "--methods", "static", "flow"]
    for extra in ([], ["--json"]):
        assert main(data + extra) == 0
        err = capsys.readouterr().err
        assert "vom benchmark: note: a: ground-truth values outside 0-1 clipped to it in frame(s) 1002" in err
    from vom_plugin.eval.runner import clip_notes

    frames, alphas = _moving_square()
    result = run_benchmark([EvalClip("sq", frames, alphas, [1, 2, 4, 5])],
                           {"held": lambda f, r, g: np.repeat(r[None], len(f), 0),
                            "over": lambda f, r, g: np.repeat(r[None], len(f), 0) * 1.2})
    notes = clip_notes(result)
    assert "sq (over): prediction values outside 0-1 clipped to it in frame(s) 1-2, 4-5" in notes
    assert any(n.startswith("sq: dtSSD not defined in frame(s) 4") for n in notes)  # both methods: the clip's


def test_benchmark_json_names_the_weights_as_renders_stamp_them(tmp_path, capsys, monkeypatch):
    """benchmark.json said model "default": which file that was, after the default changed, nobody could tell."""
    import OpenImageIO as oiio
    import torch

    from vom_plugin import Shot, render
    from vom_plugin.engine.weights import save_weights
    from vom_plugin.model import build_model

    _shot(tmp_path / "shots" / "a")
    torch.manual_seed(0)
    save_weights(build_model("lite"), tmp_path / "w.safetensors")
    out = tmp_path / "bench"
    monkeypatch.chdir(tmp_path)  # a relative --model: recorded as the file it is (QA: as given)
    assert main(["benchmark", "--data", f"shots:{tmp_path / 'shots'}", "--methods", "vom", "--model",
                 "w.safetensors", "--working-size", "128", "--device", "cpu",
                 "--out", str(out)]) == 0
    settings = json.loads((out / "benchmark.json").read_text())["settings"]
    weights = settings["weights"]
    # what else the network ran with is in the file (a QA pass: top_k and memory were not, and "working size 128"
    # was all it said of a small clip the network saw enlarged 2x at most)
    from vom_plugin.engine.frames import geometry
    from vom_plugin.grammar import default

    (name, size), = settings["network_size"].items()
    clip = json.loads((out / "benchmark.json").read_text())["clips"][0]
    assert (settings["top_k"], settings["memory"]) == (default("top_k"), default("memory"))
    assert name == clip["name"] and size == list(geometry(*clip["size"], 128).size)
    # which vom, torch and machine made them (QA: the sec column and synth clips depend on them, the file said neither)
    import platform

    from vom_plugin import __version__

    assert settings["vom_version"] == __version__ and settings["torch"] == torch.__version__
    assert settings["machine"].startswith(f"{platform.system()} {platform.machine()}, ") and settings["threads"] >= 1
    # the table's title says the size the clips were scored at, and the device (a --size 128 table read as full size)
    table = capsys.readouterr().out
    w, h = clip["size"]
    assert f"; scored at {w}x{h}; device cpu;" in table, table
    # and where the network ran, beside the working size (QA: "working size 960" of a network run at 128x128)
    assert f", working size 128 (the network at {size[0]}x{size[1]}); " in table, table
    r = render(Shot(plate=str(tmp_path / "shots" / "a" / "plate.####.exr"), out=str(tmp_path / "o" / "a.####.exr"),
                    keyframes={1001: str(tmp_path / "shots" / "a" / "roto.1001.exr")}, frames="1001",
                    model=str(tmp_path / "w.safetensors"), working_size=128, device="cpu",
                    cache=str(tmp_path / "c")))
    stamped = oiio.ImageBuf(str(r.paths[0])).spec().getattribute("vom:weights")
    assert weights == {"path": str(tmp_path / "w.safetensors"), "digest": stamped}


def test_dvm_and_vm108_layouts(tmp_path):
    import cv2

    rng = np.random.default_rng(0)
    # DVM generated clips: v/<clip>/%05d.jpg composites, a/<clip>/%05d.jpg alphas
    for i in range(3):
        for sub, img in (("v", rng.integers(0, 255, (16, 24, 3), np.uint8)), ("a", np.full((16, 24), 255, np.uint8))):
            (tmp_path / "dvm" / sub / "c1").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / "dvm" / sub / "c1" / f"{i:05d}.jpg"), img)
    (clip,) = iter_clips(f"dvm:{tmp_path / 'dvm'}", frames=2)
    assert clip.name == "c1" and clip.plate.shape == (2, 16, 24, 3) and np.allclose(clip.gt, 1.0, atol=0.02)
    # the methods see the frames as `vom render` reads these JPEGs (sRGB code values, a shot folder's default
    # for them), not decoded to linear and brought to the network's exposure
    shot = tmp_path / "as_shot"
    shot.mkdir()
    for i in range(3):
        shutil.copy(tmp_path / "dvm" / "v" / "c1" / f"{i:05d}.jpg", shot / f"plate.{i + 1:04d}.jpg")
        shutil.copy(tmp_path / "dvm" / "a" / "c1" / f"{i:05d}.jpg", shot / f"gt.{i + 1:04d}.jpg")
    (as_shot,) = iter_clips(f"folder:{shot}", frames=2)
    assert clip.colorspace == as_shot.colorspace == "sRGB"
    np.testing.assert_array_equal(frames_to_network(clip.plate, clip.colorspace),
                                  frames_to_network(as_shot.plate, as_shot.colorspace))
    # VideoMatting108: FG_done RGBA over BG_done, paired by frame_corr.json; val_videos.txt picks clips
    root = tmp_path / "vm"
    corr = {}
    for clip_dir in ("cat/keep", "cat/skip"):
        (root / "FG_done" / clip_dir).mkdir(parents=True)
        (root / "BG_done" / "bgs").mkdir(parents=True, exist_ok=True)
        for i in range(2):
            fg = np.zeros((8, 8, 4), np.uint8)
            fg[..., :3] = 200
            fg[:, 4:, 3] = 255  # right half opaque
            cv2.imwrite(str(root / "FG_done" / clip_dir / f"{i:04d}.png"), fg)
            cv2.imwrite(str(root / "BG_done" / "bgs" / f"{i:04d}.png"), np.zeros((8, 8, 3), np.uint8))
            corr[f"{clip_dir}/{i:04d}.png"] = f"bgs/{i:04d}.jpg"  # missing .jpg -> the .png is used
    (root / "frame_corr.json").write_text(json.dumps(corr))
    (root / "val_videos.txt").write_text("cat/keep\n")
    (clip,) = iter_clips(f"vm108:{root}")
    assert clip.name == "cat_keep" and clip.gt.shape == (2, 8, 8)
    assert clip.gt[0, 0, 0] == 0.0 and clip.gt[0, 0, 7] == 1.0
    assert clip.colorspace == "sRGB"  # composited on the 8-bit values and kept as code values, as a render reads them
    assert clip.plate[0, 0, 7, 0] == pytest.approx(200 / 255, abs=1e-7) and clip.plate.dtype == np.float32
    assert clip.plate[0, 0, 0, 0] == 0.0
    # a frame_corr.json that does not read is named (it was a JSONDecodeError's traceback), as training's reader does
    for text, said in (("{garbage", "not valid JSON"), ("[" * 5000 + "]" * 5000, "not valid JSON"),
                       ("[1, 2]", "expected a JSON object")):
        (root / "frame_corr.json").write_text(text)
        with pytest.raises(InputError, match=rf"frame_corr\.json: {said}"):
            list(iter_clips(f"vm108:{root}"))


def test_benchmark_vom_method_errors_and_skip(tmp_path, capsys, monkeypatch):
    _shot(tmp_path / "shots" / "a")
    data = f"shots:{tmp_path / 'shots'}"
    missing = tmp_path / "nope.safetensors"
    assert main(["benchmark", "--data", data, "--methods", "vom", "--model", str(missing)]) == 2
    assert "nope.safetensors" in capsys.readouterr().err
    # by default vom is skipped (with a note) when no weights ship; the baselines still run
    import vom_plugin.commands.benchmark as bench

    monkeypatch.setattr(bench, "METHODS", ("vom", "static"))
    monkeypatch.setattr("vom_plugin.engine.weights.weights_path", lambda name="default": missing)
    assert main(["benchmark", "--data", data]) == 0
    out = capsys.readouterr().out
    assert "note: vom skipped: no shipped weights" in out and "static" in out


def test_read_alpha_channels(tmp_path):
    from vom_plugin.errors import InputError
    from vom_plugin.eval.clips import read_alpha

    a = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    _write(tmp_path / "rgba.exr", np.dstack([a * 0 + 0.3, a * 0 + 0.2, a * 0 + 0.1, a]), ["R", "G", "B", "A"])
    _write(tmp_path / "layer.exr", np.dstack([a * 0, a]), ["Y", "vom.A"])
    _write(tmp_path / "grey.exr", np.dstack([a, a, a]), ["R", "G", "B"])
    _write(tmp_path / "plate.exr", np.dstack([a, a * 0.5, a * 0]), ["R", "G", "B"])
    for name in ("rgba", "layer", "grey"):
        np.testing.assert_allclose(read_alpha(tmp_path / f"{name}.exr"), a, atol=1e-3)
    with pytest.raises(InputError, match="plate.exr has colour R, G, B and no alpha"):
        read_alpha(tmp_path / "plate.exr", role="prediction")
    # a lone data pass (a depth render given for the matte) was scored as one, without a word (QA)
    _write(tmp_path / "depth.exr", a[..., None] * 40, ["Z"])
    with pytest.raises(InputError, match=r"depth.exr: its only channel 'Z' is a data pass .*not a matte; name the "
                                         r"channel to score \(--channel NAME\)"):
        read_alpha(tmp_path / "depth.exr", role="prediction", flag="--channel")
    np.testing.assert_allclose(read_alpha(tmp_path / "depth.exr", channel="Z"), a * 40, rtol=1e-3)  # named: read
    _write(tmp_path / "matte.exr", a[..., None], ["matte"])  # a lone channel of another name: the matte
    # a plate with an opaque alpha given as the prediction: scored as a matte of 1 everywhere, without a word (QA)
    _write(tmp_path / "comp.exr", np.dstack([a, a * 0.5, a * 0, a * 0 + 1]), ["R", "G", "B", "A"])
    with pytest.raises(InputError, match=r"comp.exr: its A is 1 in every pixel beside a colour picture in R, G, B: a "
                                         r"plate, not a matte; name the channel to score \(--channel A if it is\)"):
        read_alpha(tmp_path / "comp.exr", role="prediction", flag="--channel")
    assert read_alpha(tmp_path / "comp.exr", channel="A").min() == 1.0  # named: read as asked
    np.testing.assert_allclose(read_alpha(tmp_path / "matte.exr"), a, atol=1e-3)


def test_closed_form_keeps_the_solvers_chatter_off_stdout(monkeypatch, capsys):
    """pymatting prints solver warnings with print(); `vom benchmark --json` owns stdout (one JSON object)."""
    import pymatting

    def chatty(image, trimap):
        print("PERFORMANCE WARNING: Thresholded incomplete Cholesky decomposition failed")
        return np.full(trimap.shape, 0.5)

    monkeypatch.setattr(pymatting, "estimate_alpha_cf", chatty)
    mask = np.zeros((20, 20), np.float32)
    mask[5:15, 5:15] = 1
    alpha = B.closed_form(np.repeat(mask[..., None], 3, axis=2), B.trimap_around(mask, 2))
    out = capsys.readouterr()
    assert out.out == "" and "PERFORMANCE WARNING" in out.err
    assert alpha[10, 10] == 1.0 and alpha[0, 0] == 0.0 and alpha[5, 5] == 0.5
