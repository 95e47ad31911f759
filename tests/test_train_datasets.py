"""Dataset loaders on tiny fake layouts built by the tests: VideoMatting108, DVM, plain folders."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vom_plugin.errors import InputError
from vom_plugin.train.datasets import open_dataset, pseudo_clip
from vom_plugin.train.synth import srgb_to_linear

H, W = 40, 48


def _alpha(i: int) -> np.ndarray:
    a = np.zeros((H, W), np.float32)
    a[10:30, 8 + i:28 + i] = 1.0  # a square moving right one pixel per frame
    a[10:30, 28 + i] = 0.5  # with a soft column
    return a


def _png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    u8 = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    if u8.ndim == 3:  # RGB(A) -> BGR(A) for OpenCV
        u8 = u8[..., [2, 1, 0, 3]] if u8.shape[2] == 4 else u8[..., ::-1]
    assert cv2.imwrite(str(path), u8)


FG_RGB = np.array([0.8, 0.2, 0.1], np.float32)  # sRGB-encoded values as stored in 8-bit files
BG_RGB = np.array([0.1, 0.3, 0.9], np.float32)


def _check_clip(clip, frames: int, size: tuple[int, int]) -> None:
    assert clip.plate.shape == (frames, *size, 3) and clip.alpha.shape == (frames, *size)
    assert clip.alpha.max() == pytest.approx(1.0, abs=1e-3) and clip.alpha.min() == pytest.approx(0.0, abs=1e-3)
    # Linear-light compositing of the linearised colours: solid pixels are exactly fg, empty ones bg.
    fg_lin, bg_lin = srgb_to_linear(np.round(FG_RGB * 255) / 255), srgb_to_linear(np.round(BG_RGB * 255) / 255)
    solid, empty = clip.alpha > 0.999, clip.alpha < 0.001
    assert solid.any() and empty.any()
    assert np.allclose(clip.plate[solid], fg_lin, atol=0.02)
    assert np.allclose(clip.plate[empty], bg_lin, atol=0.02)


def test_vm108_layout(tmp_path: Path):
    root = tmp_path / "VideoMatting108"
    corr = {}
    for clip in ("cat/clipA", "cat/clipB"):
        for i in range(4):
            key = f"{clip}/{i:05d}.png"
            _png(root / "FG_done" / key, np.dstack([np.broadcast_to(FG_RGB, (H, W, 3)), _alpha(i)]))
            _png(root / "BG_done" / f"bg_{clip.replace('/', '_')}" / f"{i:05d}.png", np.broadcast_to(BG_RGB, (H, W, 3)))
            corr[key] = f"bg_{clip.replace('/', '_')}/{i:05d}.png"
    (root / "frame_corr.json").write_text(json.dumps(corr))
    (root / "train_videos.txt").write_text("cat/clipA\n")
    (root / "val_videos.txt").write_text("cat/clipB\n")
    ds = open_dataset("vm108", root, seed=1)
    assert [v.name for v in ds.videos] == ["cat/clipA"] and len(ds.videos[0].frames) == 4
    assert [v.name for v in open_dataset("vm108", root, split="val").videos] == ["cat/clipB"]
    clip = ds.clip(0, 0, frames=3, size=(32, 32), static=False)
    _check_clip(clip, 3, (32, 32))
    assert np.array_equal(clip.plate, ds.clip(0, 0, frames=3, size=(32, 32)).plate)  # deterministic


def test_vm108_missing_frame_corr_names_it(tmp_path: Path):
    (tmp_path / "FG_done").mkdir()
    (tmp_path / "BG_done").mkdir()
    (tmp_path / "train_videos.txt").write_text("x/y\n")
    with pytest.raises(InputError, match="frame_corr.json"):
        open_dataset("vm108", tmp_path)
    for text, said in (("[" * 5000 + "]" * 5000, "not valid JSON"), ("[1, 2]", "expected a JSON object")):
        (tmp_path / "frame_corr.json").write_text(text)  # [[[...]]]: json's RecursionError, not a ValueError
        with pytest.raises(InputError, match=rf"frame_corr\.json: {said}"):
            open_dataset("vm108", tmp_path)


def test_dvm_layout_with_premultiplied_foreground(tmp_path: Path):
    for i in range(3):
        a = _alpha(i)
        fg = np.broadcast_to(FG_RGB, (H, W, 3))
        bg = np.broadcast_to(BG_RGB, (H, W, 3))
        _png(tmp_path / "a" / "0000" / f"{i:05d}.png", a)
        _png(tmp_path / "b" / "0000" / f"{i:05d}.png", bg)
        # f/ holds fg * alpha and v/ the composite (both as DVM writes them, here in 8-bit sRGB)
        _png(tmp_path / "f" / "0000" / f"{i:05d}.png", fg * (a[..., None] > 0.99))
        _png(tmp_path / "v" / "0000" / f"{i:05d}.png", np.where(a[..., None] > 0.99, fg, bg))
    ds = open_dataset("dvm", tmp_path)
    assert len(ds.videos) == 1 and len(ds.videos[0].frames) == 3
    fs = ds.videos[0].frames[0]
    assert fs.comp.parent.name == "0000" and fs.comp.parent.parent.name == "v"
    clip = ds.clip(3, 0, frames=3, size=(24, 24))
    assert clip.plate.shape == (3, 24, 24, 3)
    solid = clip.alpha > 0.999
    fg_lin = srgb_to_linear(np.round(FG_RGB * 255) / 255)
    assert np.allclose(clip.fg[solid], fg_lin, atol=0.02)  # un-premultiplied back to the true colour


def test_folder_layout_fg_bg_and_comp(tmp_path: Path):
    for i in range(3):
        _png(tmp_path / "shotA" / "fg" / f"f.{i:04d}.png", np.broadcast_to(FG_RGB, (H, W, 3)))
        _png(tmp_path / "shotA" / "alpha" / f"a.{i:04d}.png", _alpha(i))
        _png(tmp_path / "shotB" / "alpha" / f"a.{i:04d}.png", _alpha(i))
        _png(tmp_path / "shotB" / "comp" / f"c.{i:04d}.png",
             np.where(_alpha(i)[..., None] > 0.99, FG_RGB, BG_RGB))
    _png(tmp_path / "shotA" / "bg" / "still.png", np.broadcast_to(BG_RGB, (H, W, 3)))  # one still background
    ds = open_dataset("folder", tmp_path, seed=3)
    assert sorted(v.name for v in ds.videos) == ["shotA", "shotB"]
    seen = set()
    for step in range(12):
        clip = ds.clip(step, 0, frames=3, size=(32, 32))
        seen.add(clip.name)
        assert clip.plate.shape == (3, 32, 32, 3)
    assert seen == {"folder/shotA", "folder/shotB"}
    shot_a = next(v for v in ds.videos if v.name == "shotA")
    assert all(f.bg.name == "still.png" for f in shot_a.frames)


def test_folder_layout_errors_name_the_clip(tmp_path: Path):
    _png(tmp_path / "bad" / "alpha" / "a.0001.png", _alpha(0))
    with pytest.raises(InputError, match="bad.*neither comp/ nor fg/"):
        open_dataset("folder", tmp_path)
    _png(tmp_path / "bad" / "fg" / "f.0001.png", np.zeros((H, W, 3)))
    _png(tmp_path / "bad" / "fg" / "f.0002.png", np.zeros((H, W, 3)))
    _png(tmp_path / "bad" / "bg" / "b.png", np.zeros((H, W, 3)))
    with pytest.raises(InputError, match="1 alpha frames but 2 in fg/"):
        open_dataset("folder", tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        open_dataset("folder", tmp_path / "nope")


def test_a_foreground_of_another_size_than_its_alpha_is_refused_a_background_resized(tmp_path: Path):
    """A QA pass: a 40x50 fg beside 80x96 alphas was resized onto them and trained on, misaligned, unsaid. A
    foreground (or composite) is drawn over its alpha pixel for pixel; a background photo of another size is scaled."""
    from vom_plugin.train.datasets import load_frame

    for i in range(3):
        _png(tmp_path / "shot" / "fg" / f"f.{i:04d}.png", np.broadcast_to(FG_RGB, (H, W, 3)))
        _png(tmp_path / "shot" / "alpha" / f"a.{i:04d}.png", _alpha(i))
    _png(tmp_path / "shot" / "bg" / "still.png", np.broadcast_to(BG_RGB, (2 * H, 2 * W, 3)))  # a bigger photo
    ds = open_dataset("folder", tmp_path, seed=3)
    _check_clip(ds.clip(0, 0, frames=3, size=(H, W)), 3, (H, W))
    _png(tmp_path / "shot" / "fg" / "f.0001.png", np.broadcast_to(FG_RGB, (H // 2, W // 2, 3)))
    frame = open_dataset("folder", tmp_path, seed=3).videos[0].frames[1]
    with pytest.raises(InputError, match=rf"f\.0001\.png: {W // 2}x{H // 2}, where its alpha \(\S+a\.0001\.png\) is "
                                         rf"{W}x{H}; a foreground or composite must match its alpha"):
        load_frame(frame)
    from vom_plugin.train.datasets import FrameSet  # premultiplied (DVM's): it crashed on the division (review)

    with pytest.raises(InputError, match=r"f\.0001\.png: \d+x\d+, where its alpha"):
        load_frame(FrameSet(fg=frame.fg, alpha=frame.alpha, bg=frame.bg, fg_premultiplied=True))


def test_pseudo_clip_moves_a_still_composite():
    rng = np.random.default_rng(0)
    a = _alpha(0)
    fg = np.broadcast_to(FG_RGB, (H, W, 3)).astype(np.float32)
    bg = np.random.default_rng(1).random((H, W, 3)).astype(np.float32)
    plate, alpha, f, b = pseudo_clip(a[..., None].repeat(3, 2) * fg + (1 - a[..., None]) * bg, a, fg, bg, rng, 4)
    assert plate.shape == (4, H, W, 3) and alpha.shape == (4, H, W)
    assert np.allclose(alpha[0], a)
    assert np.abs(alpha[3] - alpha[0]).sum() > 1.0  # it moved
    assert np.allclose(plate, alpha[..., None] * f + (1 - alpha[..., None]) * b, atol=1e-5)


def _exr(path: Path, img: np.ndarray) -> None:
    import OpenImageIO as oiio

    path.parent.mkdir(parents=True, exist_ok=True)
    img = img if img.ndim == 3 else img[..., None]
    out = oiio.ImageOutput.create(str(path))
    assert out is not None
    out.open(str(path), oiio.ImageSpec(img.shape[1], img.shape[0], img.shape[2], "float"))
    assert out.write_image(np.ascontiguousarray(img, np.float32))
    out.close()


@pytest.mark.parametrize("what", ["nan", "0-255", "fg_nan"])
def test_a_matte_with_nan_or_in_0_255_is_refused_naming_its_file(tmp_path: Path, what: str):
    """QA: a studio matte with NaN (clipped, it stayed NaN: the step's loss NaN, skipped, the file never named) or of
    0-255 float values (clipped to a hard binary target) was trained on without a word; `vom eval` refuses both."""
    from vom_plugin.train.datasets import FrameSet, load_frame

    a = _alpha(0)
    fg = np.broadcast_to(FG_RGB, (H, W, 3)).copy()
    if what == "nan":
        a[12, 20] = np.nan
    elif what == "0-255":
        a = a * 255
    else:
        fg[3, 5, 1] = np.inf
    _exr(tmp_path / "alpha" / "0007.exr", a)
    _exr(tmp_path / "fg" / "0007.exr", fg)
    _png(tmp_path / "bg" / "0007.png", np.broadcast_to(BG_RGB, (H, W, 3)))
    fs = FrameSet(fg=tmp_path / "fg" / "0007.exr", alpha=tmp_path / "alpha" / "0007.exr",
                  bg=tmp_path / "bg" / "0007.png")
    says = {"nan": r"alpha/0007\.exr: its alpha has 1 NaN/Inf pixel\(s\) \(first at x=20, y=12\)",
            "0-255": r"alpha/0007\.exr: its alpha has values up to 255: .*divide it by 255",
            "fg_nan": r"fg/0007\.exr: 1 NaN/Inf pixel\(s\) \(first at x=5, y=3\); expected finite colour values"}[what]
    with pytest.raises(InputError, match=says):
        load_frame(fs)


def test_float_tiffs_are_read_as_stored_and_integers_scaled(tmp_path: Path) -> None:
    """A float TIFF matte in 0-1 was divided by 255 as an 8-bit image is (read as 0-0.004: a target of nothing, past
    the range check); 8- and 16-bit files are code values scaled to 0-1."""
    from vom_plugin.train.datasets import read_image

    a = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    assert cv2.imwrite(str(tmp_path / "f.tif"), a)
    assert cv2.imwrite(str(tmp_path / "b.png"), (a * 255).round().astype(np.uint8))
    assert cv2.imwrite(str(tmp_path / "w.png"), (a * 65535).round().astype(np.uint16))
    np.testing.assert_allclose(read_image(tmp_path / "f.tif")[..., 0], a)
    np.testing.assert_allclose(read_image(tmp_path / "b.png")[..., 0], a, atol=1 / 255)
    np.testing.assert_allclose(read_image(tmp_path / "w.png")[..., 0], a, atol=1 / 65535)


def test_a_float_tiffs_colour_is_linear_as_stored_and_an_8_bit_files_is_decoded(tmp_path: Path) -> None:
    """Review: a float TIFF foreground (linear, as rendered) was decoded as sRGB code values, darker, without a word."""
    from vom_plugin.train.datasets import _linear_rgb, read_image

    rgb = np.full((2, 2, 3), 0.5, np.float32)
    assert cv2.imwrite(str(tmp_path / "f.tif"), rgb)
    assert cv2.imwrite(str(tmp_path / "b.png"), np.full((2, 2, 3), 128, np.uint8))
    np.testing.assert_allclose(_linear_rgb(tmp_path / "f.tif", read_image(tmp_path / "f.tif")), 0.5)
    np.testing.assert_allclose(_linear_rgb(tmp_path / "b.png", read_image(tmp_path / "b.png")),
                               srgb_to_linear(np.full((2, 2, 3), 128 / 255, np.float32)))
