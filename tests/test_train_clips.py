"""Scene specs of the clip renderer, and the clip library without Blender: reading a library the test
writes, training sources built on it, settings checks, the ``vom clips`` and ``vom train --library`` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vom_plugin.cli import main
from vom_plugin.errors import InputError
from vom_plugin.train import clips as C
from vom_plugin.train.clip_spec import KINDS, SPEC_VERSION, clip_spec, features
from vom_plugin.train.data import Curriculum, SynthSource, make_batch, network_encoder
from vom_plugin.train.synth import Clip


def _write_exr(path: Path, rgba: np.ndarray) -> None:
    import OpenImageIO as oiio

    spec = oiio.ImageSpec(rgba.shape[1], rgba.shape[0], 4, "half")
    spec.channelnames = ("R", "G", "B", "A")
    out = oiio.ImageOutput.create(str(path))
    out.open(str(path), spec)
    out.write_image(rgba.astype(np.float32))
    out.close()


def make_library(root: Path, n: int = 2, frames: int = 4, size: int = 40, occluder_in: tuple[int, ...] = (1,)
                 ) -> Path:
    """A tiny library as `vom clips render` lays it out: discs moving right, one clip with an occluder."""
    root.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size]
    for k in range(n):
        d = root / C.clip_name(k)
        d.mkdir()
        layers = ["rgba"] + (["occ"] if k in occluder_in else [])
        for f in range(frames):
            a = np.clip(size * 0.2 - np.hypot(yy - size / 2, xx - size / 3 - 2 * f) + 0.5, 0, 1).astype(np.float32)
            rgba = np.dstack([a * 0.5, a * 0.4, a * (0.1 + 0.2 * k), a])
            _write_exr(d / f"rgba.{f + 1:04d}.exr", rgba)
            if "occ" in layers:
                o = np.zeros((size, size, 4), np.float32)
                o[:, f * 3:f * 3 + 4] = (0.2, 0.2, 0.2, 1.0)
                _write_exr(d / f"occ.{f + 1:04d}.exr", o)
        (d / C.CLIP_FILE).write_text(json.dumps({"name": d.name, "seed": k, "frames": frames, "size": [size, size],
                                                 "layers": layers, "tags": ["rigid", "fast"], "render_s": 3.0,
                                                 "cpu_s": 2.0}))
    (root / ".partial" / "clip_000099.1").mkdir(parents=True)  # being rendered: not part of the library
    (root / "clip_000098").mkdir()  # no clip.json: unfinished
    return root


def test_clip_spec_is_a_pure_function_of_seed_and_covers_every_kind():
    a, b = clip_spec(3, photos=18), clip_spec(3, photos=18)
    assert a == b and json.loads(json.dumps(a)) == a
    assert clip_spec(4, photos=18) != a
    assert a["version"] == SPEC_VERSION and a["frames"] == 12 and a["size"] == [256, 256]
    drawn = {clip_spec(s)["main"] for s in range(300)}
    assert drawn == set(KINDS)
    specs = [clip_spec(s) for s in range(300)]
    assert 0.15 < np.mean([s["occluder"] is not None for s in specs]) < 0.45
    assert 0.5 < np.mean([s["camera"]["motion_blur"] is not None for s in specs]) < 0.9
    assert 0.2 < np.mean([s["camera"]["dof"] is not None for s in specs]) < 0.5
    assert any("hair" in s["parts"][0] for s in specs if s["main"] in ("rigid", "deform", "glass"))
    for kind in KINDS:
        s = clip_spec(1, kind=kind, frames=8, size=(256, 384), photos=0)
        assert s["main"] == kind and s["size"] == [256, 384] and s["frames"] == 8
        assert kind in features(s)
        assert all(t["type"] != "photo" for t in _textures(s)), "no photo index without photos"
    hair = [p["hair"] for s in specs for p in s["parts"] if "hair" in p]
    assert max(h["count"] * max(1, h["children"]) for h in hair) <= 6000
    with pytest.raises(ValueError, match="kind 'smoke'"):
        clip_spec(1, kind="smoke")


def _textures(spec: dict) -> list[dict]:
    out = []
    for p in spec["parts"]:
        for key in ("material", "stem_material"):
            if key in p:
                out.append(p[key]["texture"])
    return out


def test_library_lists_finished_clips_and_loads_frames(tmp_path: Path):
    lib = C.ClipLibrary(make_library(tmp_path / "lib"))
    assert [c.name for c in lib.clips] == ["clip_000000", "clip_000001"]
    assert [c.has_occluder for c in lib.clips] == [False, True]
    tgt, occ = lib.load(lib.clips[1], [0, 2])
    assert tgt.shape == (2, 40, 40, 4) and occ is not None and occ.shape == (2, 40, 40, 4)
    assert float(tgt[..., 3].max()) == 1.0 and float(occ[1, 5, 7, 3]) == 1.0
    assert lib.load(lib.clips[0], [1])[1] is None


def test_library_errors_name_the_folder(tmp_path: Path):
    with pytest.raises(InputError, match="not a folder"):
        C.ClipLibrary(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no finished clips"):
        C.ClipLibrary(tmp_path / "empty")
    bad = tmp_path / "bad" / "clip_000001"
    bad.mkdir(parents=True)
    (bad / "clip.json").write_text("{")
    with pytest.raises(InputError, match="clip_000001/clip.json"):
        C.ClipLibrary(tmp_path / "bad")


def test_pick_frames_runs_and_ping_pongs():
    for s in range(30):
        rng = np.random.default_rng(s)
        idx = C.pick_frames(12, 3, rng)
        steps = {b - a for a, b in zip(idx, idx[1:], strict=False)}
        assert len(idx) == 3 and len(steps) == 1 and steps.pop() in (1, 2, -1, -2)
        assert all(0 <= i < 12 for i in idx)
    short = C.pick_frames(3, 7, np.random.default_rng(0))
    assert len(short) == 7 and set(short) == {0, 1, 2}


def test_library_source_is_deterministic_and_gives_training_clips(tmp_path: Path):
    from vom_plugin.train.backgrounds import BackgroundBank

    lib = C.ClipLibrary(make_library(tmp_path / "lib"))
    src = C.LibrarySource(lib, seed=5, backgrounds=BackgroundBank([]))
    a = src.clip(3, 0, frames=3, size=(32, 32), difficulty=1.0)
    b = src.clip(3, 0, frames=3, size=(32, 32), difficulty=1.0)
    assert isinstance(a, Clip) and a.name.startswith("library/clip_00000")
    assert a.plate.shape == (3, 32, 32, 3) and a.alpha.shape == (3, 32, 32)
    np.testing.assert_array_equal(a.plate, b.plate)
    others = [src.clip(s, i, frames=3, size=(32, 32)).plate for s in range(3) for i in range(2)]
    assert not all(np.array_equal(a.plate, o) for o in others)
    static = src.clip(0, 1, frames=4, size=(32, 32), static=True)
    assert static.alpha.shape == (4, 32, 32) and float(static.alpha.max()) > 0


def test_mixed_source_follows_the_share(tmp_path: Path):
    from vom_plugin.train.backgrounds import BackgroundBank

    lib = C.LibrarySource(C.ClipLibrary(make_library(tmp_path / "lib")), 0, backgrounds=BackgroundBank([]))
    kw = dict(frames=3, size=(32, 32), difficulty=0.5, static=False)
    names = [C.MixedSource(SynthSource(0), lib, 0.5, 0).clip(s, i, **kw).name for s in range(6) for i in range(4)]
    share = np.mean([n.startswith("library/") for n in names])
    assert 0.2 < share < 0.8
    assert all(C.MixedSource(SynthSource(0), lib, 1.0, 0).clip(s, 0, **kw).name.startswith("library/")
               for s in range(4))
    assert C.with_library("src", None, 0.5, 0) == "src"
    with pytest.raises(InputError, match="--library-share 1.5"):
        C.MixedSource(SynthSource(0), lib, 1.5, 0)
    # A batch through the same path as training: network colour, a roto, the shapes the model expects.
    mixed = C.with_library(SynthSource(0), tmp_path / "lib", 0.5, 0)
    batch, _, _ = make_batch(mixed, 2, seed=0, batch=3, frames=3, size=(32, 32),
                             curriculum=Curriculum(stage1_steps=0), encode=network_encoder())
    again, _, _ = make_batch(mixed, 2, seed=0, batch=3, frames=3, size=(32, 32),
                             curriculum=Curriculum(stage1_steps=0), encode=network_encoder())
    assert batch.frames.shape == (3, 3, 3, 32, 32) and torch.equal(batch.frames, again.frames)
    assert 0.0 <= float(batch.frames.min()) and float(batch.frames.max()) <= 1.0


def test_render_library_refuses_mixed_settings_and_missing_blender(tmp_path: Path):
    root = make_library(tmp_path / "lib")
    C._check_settings(root, C.LibrarySettings(frames=4, size=(40, 40), samples=20))
    assert json.loads((root / "library.json").read_text())["frames"] == 4
    with pytest.raises(InputError, match=r"frames=4.*asked for frames=12"):
        C._check_settings(root, C.LibrarySettings(frames=12, size=(40, 40), samples=20))
    with pytest.raises(InputError, match="Blender not found"):
        C.render_library(root, 1, C.LibrarySettings(), blender=str(tmp_path / "no-blender"))


def test_stale_partial_clips_are_removed_live_ones_kept(tmp_path: Path):
    import os

    part = tmp_path / ".partial"
    (part / "clip_000001.999999999").mkdir(parents=True)
    (part / f"clip_000002.{os.getpid()}").mkdir()
    (part / "mystuff").mkdir()  # not a renderer's: a QA pass saw it deleted with what it held
    (part / "mystuff" / "a.txt").write_text("keep\n")
    C._clean_partials(tmp_path)
    assert sorted(p.name for p in part.iterdir()) == [f"clip_000002.{os.getpid()}", "mystuff"]
    assert (part / "mystuff" / "a.txt").read_text() == "keep\n"


def test_cli_clips_info_and_errors(tmp_path: Path, capsys):
    root = make_library(tmp_path / "lib")
    assert main(["clips", "info", "--data-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "2 clips, 8 frames" in out and "rigid 2" in out and "3.0 s/clip" in out
    assert main(["clips", "info", "--data-dir", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["clips"] == 2
    assert main(["clips", "info", "--data-dir", str(tmp_path / "none")]) == 2
    assert f"--data-dir {tmp_path / 'none'}: no such folder" in capsys.readouterr().err
    # named by what set it (a QA pass: "--library X", a flag clips info does not have)
    (tmp_path / "afile").write_text("x")
    import os

    os.environ["VOM_CLIPS_DIR"] = str(tmp_path / "afile")
    try:
        assert main(["clips", "info"]) == 2
        assert f"VOM_CLIPS_DIR {tmp_path / 'afile'}: not a folder" in capsys.readouterr().err
    finally:
        del os.environ["VOM_CLIPS_DIR"]
    assert main(["clips", "render", "--data-dir", str(tmp_path / "new"), "--blender", str(tmp_path / "nope")]) == 2
    out, err = capsys.readouterr()
    assert f"Blender not found (--blender {tmp_path / 'nope'})" in err and "rendering" not in out
    assert main(["clips", "render", "--size", "8", "--data-dir", str(tmp_path / "x")]) == 2
    assert "at least 16 px" in capsys.readouterr().err
    # QA: a negative seed made clip_-00005, which every reader of the library's names then refused
    assert main(["clips", "render", "--seed-base", "-5", "--data-dir", str(tmp_path / "x")]) == 2
    assert "--seed-base -5: expected a seed from 0" in capsys.readouterr().err and not (tmp_path / "x").exists()
    # a folder with no finished clips, named by the flag that gave it (QA: "--library", vom train's flag)
    (tmp_path / "empty").mkdir()
    assert main(["clips", "info", "--data-dir", str(tmp_path / "empty")]) == 2
    assert f"--data-dir {tmp_path / 'empty'}: holds no finished clips" in capsys.readouterr().err
    # its size on disk is every file's, the textures' too (QA: 9.2 KiB said of an 8.3 MB library)
    (root / "textures").mkdir(exist_ok=True)
    (root / "textures" / "brick.png").write_bytes(b"x" * 5000)
    assert main(["clips", "info", "--data-dir", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bytes"] == sum(
        f.stat().st_size for f in root.rglob("*") if f.is_file())
    # another action's flag is refused, not ignored (QA: render --json printed text, info --to wrote nothing)
    for argv, said in ((["render", "--json", "--sheet", "s.png"], "--json, --sheet: not an option of vom clips render"),
                       (["info", "--to", "x", "--count", "5"], "--count, --to: not an option of vom clips info")):
        assert main(["clips", *argv, "--data-dir", str(root)]) == 2
        assert said in capsys.readouterr().err


def test_cli_train_library_option_reaches_the_loop(tmp_path: Path, monkeypatch):
    import vom_plugin.train.loop as L

    seen = {}
    def fake_train(args, log=print, given=None):
        seen.update(args=args, given=given)
        return {"step": 0}

    monkeypatch.setattr(L, "train", fake_train)
    monkeypatch.setenv("VOM_CLIPS_DIR", str(tmp_path / "default-lib"))
    assert main(["train", "--out", str(tmp_path / "run"), "--library"]) == 0
    assert seen["args"].library == tmp_path / "default-lib" and seen["args"].library_share == 0.5
    assert seen["given"] == {"library"}  # what a resume may not change; the rest left to the run
    seen.clear()
    assert main(["train", "--out", str(tmp_path / "run"), "--library", str(tmp_path / "lib"),
                 "--library-share", "0.3"]) == 0
    assert seen["args"].library == tmp_path / "lib" and seen["args"].library_share == 0.3
    assert seen["given"] == {"library", "library_share"}
    seen.clear()
    assert main(["train", "--out", str(tmp_path / "run")]) == 0
    assert seen["args"].library is None and seen["args"].val_library is None
    seen.clear()
    assert main(["train", "--out", str(tmp_path / "run"), "--val-library"]) == 0
    assert seen["args"].val_library == tmp_path / "default-lib" and seen["args"].library is None
    assert main(["train", "--out", str(tmp_path / "run"), "--library-share", "2"]) == 2


FAKE_BLENDER = '''#!{python}
"""Stands in for Blender: answers --version, renders a job as flat discs; fails on seed 2 when asked to."""
import json, os, sys
if "--version" in sys.argv:
    print("Blender 9.9.9")
    sys.exit(0)
import numpy as np
import OpenImageIO as oiio
job = json.load(open(sys.argv[-1]))
spec = job["spec"]
if spec["seed"] == 2 and os.environ.get("FAKE_BLENDER_FAIL"):
    print("Error: Python: simulated crash")
    sys.exit(1)
h, w = spec["size"]
for layer in ["rgba"] + (["occ"] if spec["occluder"] else []):
    for f in range(1, spec["frames"] + 1):
        img = np.zeros((h, w, 4), np.float32)
        img[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 0.5 if layer == "rgba" else 1.0
        s = oiio.ImageSpec(w, h, 4, "half")
        s.channelnames = ("R", "G", "B", "A")
        out = oiio.ImageOutput.create(job["out"] + f"/{{layer}}.{{f:04d}}.exr")
        out.open(job["out"] + f"/{{layer}}.{{f:04d}}.exr", s)
        out.write_image(img)
        out.close()
with open(os.environ["FAKE_BLENDER_LOG"], "a") as log:
    log.write(f"{{spec['seed']}}\\n")
'''


def test_render_library_is_atomic_resumable_and_survives_a_failed_clip(tmp_path: Path, monkeypatch, capsys):
    import sys

    fake = tmp_path / "fake-blender"
    fake.write_text(FAKE_BLENDER.format(python=sys.executable))
    fake.chmod(0o755)
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("FAKE_BLENDER_LOG", str(calls))
    monkeypatch.setenv("FAKE_BLENDER_FAIL", "1")
    root = tmp_path / "lib"
    argv = ["clips", "render", "--count", "4", "--frames", "2", "--size", "32", "48", "--data-dir", str(root),
            "--blender", str(fake)]
    assert main(argv) == 1  # clip 2 failed: reported, the others finished
    out = capsys.readouterr().out
    assert "clip_000002  FAILED" in out and "simulated crash" in out
    assert "rendered 3 clips (0 already there)" in out and "s/clip" in out
    assert sorted(p.name for p in root.glob("clip_*")) == ["clip_000000", "clip_000001", "clip_000003"]
    assert not any((root / ".partial").iterdir()), "a failed clip leaves no work folder behind"
    rec = json.loads((root / "clip_000001" / "clip.json").read_text())
    assert rec["blender"] == "9.9.9" and rec["frames"] == 2 and rec["size"] == [32, 48]
    photos = list((root / "textures").glob("*.png"))  # scikit-image's photographs, as PNG
    assert len(photos) >= 9
    assert rec["spec"] == clip_spec(1, frames=2, size=(32, 48), samples=20, photos=len(photos))
    monkeypatch.delenv("FAKE_BLENDER_FAIL")
    calls.write_text("")
    assert main(argv) == 0  # resumed: only the missing clip is rendered
    assert calls.read_text().split() == ["2"]
    assert "rendered 1 clips (3 already there)" in capsys.readouterr().out
    lib = C.ClipLibrary(root)
    assert len(lib) == 4 and lib.load(lib.clips[0], [1])[0].shape == (1, 32, 48, 4)
    assert main([*argv, "--frames", "3"]) == 2  # the library's clips have 2 frames: no mixing
    assert "frames=2" in capsys.readouterr().err
    # a clip folder without its clip.json is never removed: nothing says it is a render's (a QA pass: a user's folder
    # of rgba.####.exr files of that name was deleted by their names alone); refused, every file kept
    import shutil

    shutil.rmtree(root / "clip_000002")
    (root / "clip_000002" / "renders").mkdir(parents=True)
    (root / "clip_000002" / "renders" / "beauty.0001.exr").write_text("precious")
    calls.write_text("")
    assert main(argv) == 2
    assert "clip_000002 exist without a clip's clip.json" in capsys.readouterr().err
    assert calls.read_text() == ""  # refused before any clip was rendered (a review: after that clip's render)
    assert (root / "clip_000002" / "renders" / "beauty.0001.exr").read_text() == "precious"
    shutil.rmtree(root / "clip_000002" / "renders")
    (root / "clip_000002" / "rgba.0001.exr").write_text("mine, named as a render's")
    assert main(argv) == 2 and "move them away" in capsys.readouterr().err
    assert (root / "clip_000002" / "rgba.0001.exr").read_text() == "mine, named as a render's"
    shutil.rmtree(root / "clip_000002")
    (root / "clip_000002").mkdir()  # an empty one (a render killed as it began) is removed and rendered
    assert main(argv) == 0 and (root / "clip_000002" / "clip.json").is_file()


def test_contact_sheet_shows_every_clip_and_its_alpha(tmp_path: Path, capsys):
    import cv2

    root = make_library(tmp_path / "lib", n=3)
    sheet = tmp_path / "sheet.png"
    assert main(["clips", "info", "--data-dir", str(root), "--sheet", str(sheet)]) == 0
    assert "contact sheet of 3 clips" in capsys.readouterr().out
    img = cv2.imread(str(sheet))
    assert img.shape == (256, 8 * 128, 3)
    alpha_row = img[128:, :3 * 128]
    assert alpha_row.max() == 255 and alpha_row.min() == 0  # each tile's disc is opaque on empty film
    assert img[128:, 3 * 128:].max() == 0  # unused tiles stay black
    assert not list(tmp_path.glob(".sheet.png*")), "written through a temporary name"
    assert main(["clips", "info", "--data-dir", str(root), "--sheet", str(sheet)]) == 0  # its own: replaced
    nested = tmp_path / "new" / "dir" / "s.png"  # a folder not there yet is made (it failed with an empty reason)
    assert main(["clips", "info", "--data-dir", str(root), "--sheet", str(nested)]) == 0 and nested.is_file()
    # a user's picture, a link or another format named as --sheet: refused before any work, left as it is (QA: the
    # sheet replaced a user's PNG or TIFF, and a .txt was an internal error)
    photo = tmp_path / "my_photo.png"
    photo.write_bytes(b"\x89PNG a photo of mine")
    (tmp_path / "link.png").symlink_to(photo)
    capsys.readouterr()
    for dest, said in ((photo, "exists and was not written by vom"), (tmp_path / "link.png", "a link"),
                       (tmp_path / "notes.txt", "expected a .png file")):
        assert main(["clips", "info", "--data-dir", str(root), "--sheet", str(dest)]) == 2, dest
        assert said in capsys.readouterr().err, dest
    assert photo.read_bytes() == b"\x89PNG a photo of mine" and not (tmp_path / "notes.txt").exists()


def test_validation_clips_are_held_out_of_training(tmp_path: Path):
    """Clips whose seed is 9 mod 10 form the rendered validation set; training never draws them."""
    root = make_library(tmp_path / "lib", n=12, frames=3, occluder_in=())
    assert [c.name for c in C.ClipLibrary(root, "val").clips] == ["clip_000009"]
    train = C.ClipLibrary(root, "train")
    assert len(train) == 11 and "clip_000009" not in {c.name for c in train.clips}
    assert len(C.ClipLibrary(root)) == 12
    mixed = C.with_library(SynthSource(0), root, 1.0, seed=0)
    assert mixed.library.library.clips == train.clips
    from vom_plugin.train.validate import library_valsets

    sets = library_valsets(root, frames=3, size=32)
    assert [s.name for s in sets] == ["clip_000009"]
    assert sets[0].frames.shape == (3, 3, 32, 32) and sets[0].gt.shape == (3, 32, 32)
    assert 0 < float(sets[0].gt.max()) <= 1 and set(np.unique(sets[0].roto.numpy())) <= {0.0, 1.0}
    with pytest.raises(InputError, match="no finished val clips"):
        C.ClipLibrary(make_library(tmp_path / "small", n=2), "val")


def test_clips_start_on_a_frame_that_shows_the_object(tmp_path: Path):
    """An object that enters the frame late: the clips drawn from it (training and validation) start where
    the roto frame shows it, since a first frame without the object asks for one never shown."""
    from vom_plugin.train.backgrounds import BackgroundBank

    root = make_library(tmp_path / "lib", n=1, frames=6, size=40, occluder_in=())
    d = root / C.clip_name(0)
    for f in (1, 2, 3):  # the object is out of frame for the first half of the render
        _write_exr(d / f"rgba.{f:04d}.exr", np.zeros((40, 40, 4), np.float32))
    assert not C.shows_object_first(np.stack([np.zeros((8, 8)), np.ones((8, 8))]))
    assert C.shows_object_first(np.stack([np.ones((8, 8)), np.zeros((8, 8))]))
    src = C.LibrarySource(C.ClipLibrary(root), 3, backgrounds=BackgroundBank([]))
    firsts = []
    for step in range(12):
        clip = src.clip(step, 0, frames=3, size=(32, 32))
        assert clip.alpha.shape == (3, 32, 32)
        firsts.append(float(clip.alpha[0].sum()))
        assert C.shows_object_first(clip.alpha), (step, clip.alpha.reshape(3, -1).sum(1))
    assert min(firsts) > 0


def test_a_clip_as_long_as_a_render_that_starts_and_ends_without_the_object_starts_where_it_is(tmp_path: Path):
    """An object that enters and leaves: no window of the render's length starts on it (session 8 found two
    rendered validation clips that, taken whole, started empty and got a roto of the whole frame). The clip
    then starts on the frame that shows most of it and plays forth and back from there."""
    from vom_plugin.train.backgrounds import BackgroundBank
    from vom_plugin.train.validate import library_valsets

    root = make_library(tmp_path / "lib", n=10, frames=6, size=40, occluder_in=())
    d = root / C.clip_name(9)  # the validation clip
    for f in (1, 2, 5, 6):  # in frame for frames 3-4 only
        _write_exr(d / f"rgba.{f:04d}.exr", np.zeros((40, 40, 4), np.float32))
    assert C.frames_from(6, 3, 6) == [3, 4, 5, 4, 3, 2] and C.frames_from(6, 0, 3) == [0, 1, 2]
    src = C.LibrarySource(C.ClipLibrary(root, "val"), 5, backgrounds=BackgroundBank([]))
    for step in range(4):
        clip = src.clip(step, 0, frames=6, size=(32, 32))
        assert clip.alpha.shape == (6, 32, 32) and float(clip.alpha[0].sum()) > 0, step
    (valset,) = library_valsets(root, frames=6, size=32)
    assert 0 < float(valset.roto.mean()) < 0.5  # the object, not the whole frame
    assert float(valset.gt[0].sum()) > 0
