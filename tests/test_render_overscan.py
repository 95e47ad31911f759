"""A plate's overscan is matted with the picture: the network sees the keyframes' overscan, not only the display
window, so an object that crosses the frame's edge is matted where it is, and no edge is smeared outwards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
from test_io_support import write_image

from vom_plugin.engine.runner import render
from vom_plugin.engine.shot import Shot

W, H, OS = 96, 64, 16  # display 96x64, 16 px of overscan on the left


def _disc(frame: int) -> np.ndarray:
    """Over the data window (x from -16): a disc of radius 14.5 centred 2 + frame px right of the left edge of
    the display window, so a third of it lies in the overscan."""
    yy, xx = np.mgrid[0:H, -OS:W].astype(np.float32)
    return np.clip(14.5 - np.hypot(xx - (2 + frame), yy - 32), 0, 1)


def _shot(root: Path) -> Shot:
    yy, xx = np.mgrid[0:H, -OS:W].astype(np.float32)
    bg = np.stack([0.1 + 0.2 * (xx + OS) / (W + OS), 0.2 + 0.2 * yy / H, 0.15 * np.ones_like(xx)], axis=2)
    fg = np.array([0.9, 0.6, 0.3], np.float32)
    for f in (1, 2, 3):
        a = _disc(f)[..., None]
        write_image(root / f"p.{f:04d}.exr", fg * a + bg * (1 - a), data_origin=(-OS, 0), display=(0, 0, W, H))
    # drawn with the plate's windows (a comp's roto over the overscan plate): the disc's overscan part too
    write_image(root / "r.0001.exr", (_disc(1) > 0.5).astype(np.float32), ("A",), data_origin=(-OS, 0),
                display=(0, 0, W, H))
    return Shot(plate=str(root / "p.####.exr"), out=str(root / "o" / "a.####.exr"),
                keyframes={1: str(root / "r.0001.exr")}, working_size=128, cache=str(root / "c"))


def _alphas(root: Path) -> dict[int, np.ndarray]:
    out = {}
    for f in (1, 2, 3):
        buf = oiio.ImageBuf(str(root / "o" / f"a.{f:04d}.exr"))
        spec = buf.spec()
        assert (spec.x, spec.y, spec.width, spec.height) == (-OS, 0, W + OS, H)
        assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == (0, 0, W, H)
        out[f] = buf.get_pixels(oiio.FLOAT)[..., 0]
    return out


def test_an_object_crossing_into_the_overscan_is_matted_there_with_the_shipped_weights(tmp_path: Path) -> None:
    """Before, the alpha in the overscan was the display window's edge column extended outwards: across the
    disc's rows that was alpha 1 out to x = -16, where the disc ends at x = -11."""
    shot = _shot(tmp_path)
    first = render(shot)
    alphas = _alphas(tmp_path)
    for f in (2, 3):
        a, truth = alphas[f], _disc(f)
        assert a[32, :3].max() < 0.1, (f, a[32, :8])  # x -16..-14: background beside the disc, in the overscan
        # x -4..-1: the disc, in the overscan, as solid as the disc is inside the display window (0.85-0.87 there)
        assert a[32, 12:16].min() > 0.95 * a[truth >= 0.999].mean(), (f, a[32, :16])
        assert a[:, :OS][truth[:, :OS] == 0].max() < 0.1  # no smear anywhere in the overscan
        assert np.abs(a - truth).mean() < 0.02, (f, np.abs(a - truth).mean())
    # the overscan's place is part of the cache's addresses: a second render reads every step back, same pixels
    again = render(shot)
    assert again.cache["steps_computed"] == 0 and again.cache["steps_cached"] == first.cache["steps_computed"] > 0
    for f, a in _alphas(tmp_path).items():
        np.testing.assert_array_equal(a, alphas[f])


def test_the_picture_is_the_shots_whatever_a_render_asks_for(tmp_path: Path) -> None:
    """The overscan seen is every frame's on disk, for every render of the shot: a farm chunk (which starts at
    another frame, here one whose display window sits elsewhere in image space) gives the whole render's pixels,
    and another object's or another keyframe's windows do not move it (an object's matte, and the cache's key
    features, were those of the union of every keyframe's overscan); a slate of another size, a frame that
    cannot be read (said) or one without overscan take nothing away."""
    import dataclasses

    from vom_plugin.engine.runner import prepare

    shot = _shot(tmp_path)
    moved = tmp_path / "p.0003.exr"  # frame 3's windows 6 px right and 4 down, the same pixels in them
    buf = oiio.ImageBuf(str(moved))
    pixels = buf.get_pixels(oiio.FLOAT)
    moved.unlink()
    write_image(moved, pixels, data_origin=(-OS + 6, 4), display=(6, 4, W, H))
    # a frame with 8 px more overscan, which a chunk of frame 2 alone never reads, and a second keyframe on it
    write_image(tmp_path / "p.0004.exr", pixels[:, :1].repeat(W + OS + 8, axis=1), data_origin=(-OS - 8, 0),
                display=(0, 0, W, H))
    write_image(tmp_path / "p.0005.exr", pixels[:, OS:], display=(0, 0, W, H))  # no overscan
    write_image(tmp_path / "p.0000.exr", np.zeros((20, 30, 3), np.float32))  # a slate of another size
    (tmp_path / "p.0006.exr").symlink_to(tmp_path / "gone.exr")  # a link to nothing
    write_image(tmp_path / "r.0004.exr", (_disc(1) > 0.5).astype(np.float32), ("A",), data_origin=(-OS, 0),
                display=(0, 0, W, H))
    jobs = [prepare(dataclasses.replace(shot, **kw)) for kw in (
        {"frames": [1, 2, 3]}, {"frames": [2]}, {"frames": [4]},
        {"keyframes": {1: str(tmp_path / "r.0001.exr"), 4: str(tmp_path / "r.0004.exr")}, "frames": [1, 2, 3, 4]},
        {"keyframes": None, "objects": {"hero": {1: str(tmp_path / "r.0001.exr")},
                                        "dog": {4: str(tmp_path / "r.0004.exr")}}, "frames": [1, 2, 3, 4]})]
    assert {tuple(job.picture) for job in jobs} == {(-OS - 8, 0, W + OS + 8, H)}
    assert all(any("leaves out plate frames it cannot read" in n and "p.0006.exr" in n for n in job.notes)
               for job in jobs)
    whole = render(dataclasses.replace(shot, frames=[1, 2, 3]))
    chunk = render(dataclasses.replace(shot, frames=[3], out=str(tmp_path / "chunk" / "a.####.exr"),
                                       cache=str(tmp_path / "c2")))
    a, b = (oiio.ImageBuf(str(r.paths[-1])) for r in (whole, chunk))
    assert (a.spec().x, a.spec().y, a.spec().full_x, a.spec().full_y) == (-OS + 6, 4, 6, 4)
    np.testing.assert_array_equal(a.get_pixels(oiio.FLOAT), b.get_pixels(oiio.FLOAT))
    assert a.get_pixels(oiio.FLOAT)[32, 12:16, 0].min() > 0.8  # the disc, in frame 3's overscan (0.86-0.91)


def test_farm_check_fails_frames_matted_before_plate_frames_with_more_overscan_arrived(tmp_path: Path) -> None:
    """The overscan the network sees is every plate frame's on disk: frames matted while later plate frames (with
    more overscan) were not yet delivered saw another picture than a render of the shot sees now. `vom farm check`
    passed them (QA); each output now says its picture (vom:picture), which the check compares."""
    import dataclasses

    import yaml

    from vom_plugin.farm.spans import check_outputs, load_farm_shot

    shot = _shot(tmp_path)
    later = tmp_path / "p.0003.exr"
    pixels = oiio.ImageBuf(str(later)).get_pixels(oiio.FLOAT)
    later.unlink()  # frame 3 not delivered yet
    f = tmp_path / "shot.yaml"
    f.write_text(yaml.safe_dump({"plate": shot.plate, "out": shot.out, "frames": "1-3", "working_size": 128,
                                 "keyframes": {1: str(tmp_path / "r.0001.exr")}, "cache": str(tmp_path / "c")}))
    render(dataclasses.replace(Shot.from_yaml(f), frames=[1, 2]))
    # delivered with 8 px more overscan on the left, then its chunk rendered
    write_image(later, np.concatenate([pixels[:, :1].repeat(8, axis=1), pixels], axis=1), data_origin=(-OS - 8, 0),
                display=(0, 0, W, H))
    render(dataclasses.replace(Shot.from_yaml(f), frames=[3]))
    stamps = [oiio.ImageBuf(str(tmp_path / "o" / f"a.{i:04d}.exr")).spec().get_string_attribute("vom:picture")
              for i in (1, 2, 3)]
    assert stamps == [f"{-OS},0,{W + OS},{H}"] * 2 + [f"{-OS - 8},0,{W + OS + 8},{H}"]
    problems = check_outputs(load_farm_shot(f))
    assert sorted(problems) == [1, 2]
    assert problems[1] == (f"matted over the picture {-OS},0,{W + OS},{H} (x, y, width, height of the display "
                           "window and the overscan of the plate frames on disk then); the plate's frames make "
                           f"{-OS - 8},0,{W + OS + 8},{H} now (frames with other overscan were delivered or removed "
                           "since it was rendered)")
    render(dataclasses.replace(Shot.from_yaml(f), frames=[1, 2]))  # rendered again: they pass
    assert check_outputs(load_farm_shot(f)) == {}


def test_a_plate_whose_pixels_lie_outside_what_the_network_sees_is_refused(tmp_path: Path) -> None:
    """A data window at (200, 100) beside a 96x64 display window at the origin, beyond the quarter-frame of
    overscan the network takes: the render wrote an all-zero matte with exit 0 and no word (QA)."""
    import pytest

    from vom_plugin.errors import InputError

    for f in (1, 2):
        write_image(tmp_path / f"p.{f:04d}.exr", np.full((H, W, 3), 0.3, np.float32), data_origin=(200, 100),
                    display=(0, 0, W, H))
    write_image(tmp_path / "r.0001.exr", (_disc(1)[:, OS:] > 0.5).astype(np.float32), ("A",))
    s = Shot(plate=str(tmp_path / "p.####.exr"), out=str(tmp_path / "o" / "a.####.exr"),
             keyframes={1: str(tmp_path / "r.0001.exr")}, working_size=128, cache=None)
    with pytest.raises(InputError, match=r"plate frame 1 \(.*p\.0001\.exr\): its pixels \(data window \(200, 100, 96, "
                                         r"64\)\) lie outside its display window \(0, 0, 96, 64\) and the overscan"):
        render(s)
    assert not (tmp_path / "o").exists()


def test_overscan_beyond_what_the_network_sees_is_said(tmp_path: Path) -> None:
    """QA: a data window of three times the frame (a camera sweep's render) came out as solid bars of the picture's
    edge alpha across the overscan beyond the quarter-frame the network takes, exit 0 and no word. Said now, naming
    the frames, the reach and what to do; a plate within the reach says nothing (the shot above)."""
    far = 40  # past 96 * 0.25 = 24 px on the left
    yy, xx = np.mgrid[0:H, -far:W].astype(np.float32)
    for f in (1, 2):
        write_image(tmp_path / f"p.{f:04d}.exr", np.stack([0.1 + 0.002 * xx, 0.2 + 0.002 * yy, 0.15 + 0 * xx], 2),
                    data_origin=(-far, 0), display=(0, 0, W, H))
    write_image(tmp_path / "r.0001.exr", (_disc(1)[:, OS:] > 0.5).astype(np.float32), ("A",))
    r = render(Shot(plate=str(tmp_path / "p.####.exr"), out=str(tmp_path / "o" / "a.####.exr"),
                    keyframes={1: str(tmp_path / "r.0001.exr")}, working_size=128, cache=None))
    said = [w for w in r.warnings if "reaches past the overscan vom mattes" in w]
    assert len(said) == 1 and said[0].startswith("plate frames 1-2: the data window"), r.warnings
    assert "(-24, 0, 95, 63) relative to the display window; frame 1's is (-40, 0, 95, 63)" in said[0]
    (tmp_path / "near").mkdir()
    near = render(_shot(tmp_path / "near"))
    assert not [w for w in near.warnings if "reaches past" in w]
