"""Attacks through the farm: shot names a scheduler would evaluate or reject, and output frames that exist
but are not a complete matte.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio
import pytest
import yaml

from vom_plugin.cli import main
from vom_plugin.farm.names import MAX_LENGTH, farm_name
from vom_plugin.farm.spans import load_farm_shot
from vom_plugin.io import ImageInfo, read_info, write_alpha

HOSTILE = ["{{Param.Vom}}", "sh 010 ünïcödé {{ Task.Param.Frame }}", "sh010-comp.v003", "x" * 200,
           "1001_starts_with_a_digit", "tab\there", "{{", "ünï"]


def _shot_file(folder: Path, stem: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.yaml"
    path.write_text(yaml.safe_dump({"plate": "/plates/sh.####.exr", "frames": "1001-1010",
                                    "keyframes": {1001: "/roto/r.1001.exr"}, "out": "/out/a.####.exr"}))
    return path


@pytest.mark.parametrize("stem", HOSTILE)
def test_a_hostile_shot_name_makes_a_valid_openjd_job_with_no_template_expression(tmp_path: Path, stem: str) -> None:
    from openjd.model import ParameterValue, ParameterValueType, create_job, decode_job_template

    from vom_plugin.farm.openjd import build_template

    shot = load_farm_shot(_shot_file(tmp_path, stem))
    t = build_template(shot, chunk=5)
    assert "{{" not in t["name"] and "}}" not in t["name"]
    assert all("{{" not in s["description"] for s in t["steps"]) and "{{" not in t["description"]
    template = decode_job_template(template=t, supported_extensions=["TASK_CHUNKING"])
    job = create_job(job_template=template, job_parameter_values={
        "ShotFile": ParameterValue(type=ParameterValueType.PATH, value=str(shot.path)),
        "Vom": ParameterValue(type=ParameterValueType.STRING, value="/opt/vom/bin/vom")})
    assert job.name == t["name"]  # nothing in it was evaluated
    assert re.fullmatch(r"vom [A-Za-z][A-Za-z0-9_]*", job.name) and len(job.name) <= MAX_LENGTH + 4


@pytest.mark.parametrize("stem", HOSTILE)
def test_a_hostile_shot_name_makes_a_valid_opencue_job(tmp_path: Path, stem: str) -> None:
    out = tmp_path / "job.xml"
    assert main(["farm", "opencue", str(_shot_file(tmp_path / "shots", stem)), "--out", str(out),
                 "--user", "nobody"]) == 0
    root = ET.fromstring(out.read_text())
    job = root.find("job")
    assert job is not None
    # OpenCue names a job show-shot-name: no hyphens in the shot, no spaces or non-ASCII anywhere, bounded
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", root.findtext("shot") or "")
    assert re.fullmatch(r"vom_[A-Za-z][A-Za-z0-9_]*", job.get("name") or "")
    assert len(job.get("name") or "") <= MAX_LENGTH + 4


def test_farm_names_stay_readable_and_distinct() -> None:
    assert farm_name("sh010") == "sh010" and farm_name("sh010-comp.v003") == "sh010_comp_v003"
    # Cuebot refuses a shot name under 3 characters ([\w.]{3,}): s1.yaml made one, exit 0
    assert farm_name("s1") == "shot_s1" and farm_name("a") == "shot_a" and farm_name("abc") == "abc"
    long_a, long_b = "a" * 100 + "_one", "a" * 100 + "_two"
    assert farm_name(long_a) != farm_name(long_b) and len(farm_name(long_a)) == MAX_LENGTH


def test_an_opencue_show_that_is_not_a_name_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["farm", "opencue", str(_shot_file(tmp_path, "sh010")), "--out", str(tmp_path / "j.xml"),
               "--show", "my-show/../x"])
    assert rc == 2 and "--show 'my-show/../x'" in capsys.readouterr().err
    assert not (tmp_path / "j.xml").exists()


def test_an_opencue_job_carries_its_users_uid_and_an_unknown_user_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A QA pass: --user changed the job's user but PyOutline wrote this process's uid (0 in a root container, which
    Cuebot refuses even with --user alice); --user was not checked."""
    import os
    import pwd

    shot = _shot_file(tmp_path / "shots", "sh010")
    assert main(["farm", "opencue", str(shot), "--out", str(tmp_path / "j.xml"), "--user", "nobody"]) == 0
    root = ET.fromstring((tmp_path / "j.xml").read_text())
    assert root.findtext("user") == "nobody" and root.findtext("uid") == str(pwd.getpwnam("nobody").pw_uid)
    capsys.readouterr()
    assert main(["farm", "opencue", str(shot), "--out", str(tmp_path / "k.xml"), "--user", "no_such_artist"]) == 2
    assert "--user no_such_artist: this machine has no account of that name" in capsys.readouterr().err
    assert main(["farm", "opencue", str(shot), "--out", str(tmp_path / "k.xml"), "--user", "a b;rm"]) == 2
    assert not (tmp_path / "k.xml").exists()
    monkeypatch.setattr(os, "getuid", lambda: 0)  # submitted as root, no --user: said
    assert main(["farm", "opencue", str(shot), "--out", str(tmp_path / "r.xml")]) == 0
    assert "Cuebot refuses jobs launched as root" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["missing", "not_an_image"])
def test_a_job_whose_roto_every_task_would_fail_on_is_refused(tmp_path: Path, case: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A QA pass: a roto that did not exist, or was not an image, made a job (exit 0) whose every task exited 2."""
    demo = Path(__file__).resolve().parents[1] / "vom_plugin" / "data" / "demo"
    roto = tmp_path / "roto.0001.exr"
    if case == "not_an_image":
        roto.write_text("not an image")
    shot = tmp_path / "sh010.yaml"
    shot.write_text(yaml.safe_dump({"plate": str(demo / "plate.####.exr"), "frames": "1-4",
                                    "keyframes": {1: str(roto)}, "out": str(tmp_path / "out" / "a.####.exr")}))
    for farm in ("openjd", "opencue"):
        assert main(["farm", farm, str(shot), "--out", str(tmp_path / farm), "--user", "nobody"][
            :None if farm == "opencue" else -2]) == 2
        err = capsys.readouterr().err
        assert f"keyframes: roto file {roto} (frame 1)" in err, err
        assert ("does not exist" in err) == (case == "missing")
        assert not (tmp_path / farm).exists()


@pytest.mark.parametrize("case", ["truncated", "empty", "whole_frame", "one_object_empty"])
def test_a_job_whose_roto_pixels_every_task_would_refuse_is_refused(tmp_path: Path, case: str,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """QA: a truncated roto, an empty one and one covering the whole frame passed the job's check (their headers
    read), and every task exited 2 on them. Their pixels are read as a render reads them, the render's words said."""
    demo = Path(__file__).resolve().parents[1] / "vom_plugin" / "data" / "demo"
    good = demo / "roto.0001.exr"
    roto = tmp_path / "roto.0001.exr"
    if case == "truncated":
        roto.write_bytes(good.read_bytes()[:1000])
    else:
        spec = oiio.ImageSpec(480, 270, 1, oiio.HALF)
        spec.channelnames = ["A"]
        out = oiio.ImageOutput.create(str(roto))
        assert out.open(str(roto), spec)
        assert out.write_image(np.full((270, 480, 1), 1.0 if case == "whole_frame" else 0.0, np.float32))
        out.close()
    shot = tmp_path / "sh010.yaml"
    out_folder = tmp_path / "o"
    if case == "one_object_empty":
        keys: dict = {"objects": {"hero": {1: str(good)}, "dog": {1: str(roto)}},
                      "out": str(out_folder / "{object}.####.exr")}
    else:
        keys = {"keyframes": {1: str(roto)}, "out": str(out_folder / "a.####.exr")}
    shot.write_text(yaml.safe_dump({"plate": str(demo / "plate.####.exr"), "frames": "1-4", **keys}))
    want = {"truncated": f"roto {roto} is damaged or truncated", "empty": f"roto {roto} is empty",
            "whole_frame": f"roto {roto} covers the whole frame",
            "one_object_empty": f"objects.dog (keyframe 1): roto {roto} is empty"}[case]
    for farm in ("openjd", "opencue"):
        assert main(["farm", farm, str(shot), "--out", str(tmp_path / farm), "--user", "nobody"][
            :None if farm == "opencue" else -2]) == 2
        err = capsys.readouterr().err
        assert f"vom farm: error: {shot}: {want}" in err, err
        assert not (tmp_path / farm).exists()
    assert main(["render", str(shot), "--frames", "1", "--no-worker", "--progress", "none"]) == 2
    assert want in capsys.readouterr().err  # what the job's tasks would have said


# -- vom farm check ------------------------------------------------------------------------------------

def _exr(path: Path, w: int, h: int, channels: list[str]) -> None:
    spec = oiio.ImageSpec(w, h, len(channels), oiio.HALF)
    spec.channelnames = channels
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec)
    assert out.write_image(np.full((h, w, len(channels)), 0.5, np.float32))
    out.close()


@pytest.fixture
def farm_shot(tmp_path: Path) -> Path:
    (tmp_path / "plate").mkdir()
    (tmp_path / "out").mkdir()
    for f in range(1, 9):
        _exr(tmp_path / "plate" / f"p.{f:04d}.exr", 32, 16, ["R", "G", "B"])
    roto = np.zeros((16, 32), np.float32)
    roto[4:12, 8:20] = 1.0  # a roto a render takes (the plate, grey all over, covers the whole frame: refused)
    write_alpha(tmp_path / "roto.0001.exr", roto, read_info(tmp_path / "plate" / "p.0001.exr"))
    path = tmp_path / "shot.yaml"
    path.write_text(yaml.safe_dump({"plate": str(tmp_path / "plate" / "p.####.exr"), "frames": "1-8",
                                    "keyframes": {1: str(tmp_path / "roto.0001.exr")},
                                    "out": str(tmp_path / "out" / "a.####.exr")}))
    return path


def _good(folder: Path, frame: int, stamps: bool = True) -> Path:
    """A frame as a render of the farm_shot writes it (its frame and keyframes stamped), or, without ``stamps``,
    as vom's io writes it for other code."""
    plate = read_info(folder / "plate" / f"p.{frame:04d}.exr")
    path = folder / "out" / f"a.{frame:04d}.exr"
    meta = {"frame": frame, "keyframes": "1"} if stamps else None
    write_alpha(path, np.full((16, 32), 0.25, np.float32), plate, metadata=meta)
    return path


def test_farm_check_fails_on_frames_that_exist_but_are_not_a_matte(farm_shot: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    for f in (1, 2, 3, 4, 5, 6, 7):
        _good(tmp_path, f)
    data = (out / "a.0002.exr").read_bytes()
    (out / "a.0002.exr").write_bytes(data[:-16])  # cut short: the header reads, pixels do not
    (out / "a.0003.exr").write_bytes(b"\x00" * 4096)  # garbage
    write_alpha(out / "a.0004.exr", np.ones((8, 8), np.float32), ImageInfo.for_size(8, 8))  # not the plate's size
    _exr(out / "a.0005.exr", 32, 16, ["R", "G", "B"])  # an EXR of the plate's size without the alpha
    buf = oiio.ImageBuf(str(tmp_path / "plate" / "p.0006.exr"))
    assert buf.write(str(out / "a.0006.png.tmp.png"))
    (out / "a.0006.png.tmp.png").rename(out / "a.0006.exr")  # a PNG with an .exr name
    # frame 7 is good, frame 8 is missing
    rc = main(["farm", "check", str(farm_shot)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "1 of 8 frames" in err and ": 8" in err  # the missing one
    lines = {int(m.group(1)): m.group(2) for m in re.finditer(r"frame (\d+): \S+: (.*)", err)}
    assert set(lines) == {2, 3, 4, 5, 6}, err
    assert "damaged or truncated" in lines[2]
    assert "cannot be read" in lines[3] or "not an EXR" in lines[3]
    assert "display window 8x8" in lines[4] and "32x16" in lines[4]
    assert "no channel A" in lines[5]
    assert "not an EXR" in lines[6]


def test_farm_check_of_a_jobs_frames_and_a_jobs_name(farm_shot: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A QA pass: a job's check step read the shot's frames as they were when it ran (plate frames delivered after
    the job was written failed it on frames no task renders: requeueing never cleared it); and a job from the Nuke
    node's frozen copy (<work>/farm/<time>/shot.yaml) was named after the time."""
    from vom_plugin.farm.openjd import build_template
    from vom_plugin.farm.spans import load_farm_shot

    for f in range(1, 5):
        _good(tmp_path, f)
    assert main(["farm", "check", str(farm_shot)]) == 2  # frames 5-8 have no output
    capsys.readouterr()
    assert main(["farm", "check", str(farm_shot), "--frames=1-4"]) == 0
    assert "all 4 frames written and readable" in capsys.readouterr().out
    assert main(["farm", "check", str(farm_shot), "--frames=2-x"]) == 2
    assert "--frames: " in capsys.readouterr().err
    # frames the shot does not have: said as such (QA: "11 of 11 frames have no output file")
    assert main(["farm", "check", str(farm_shot), "--frames=7-12"]) == 2
    assert f"--frames 7-12: 9-12 are not among the frames of {farm_shot} (1-8; a job" in capsys.readouterr().err
    shot = load_farm_shot(farm_shot)
    assert build_template(shot)["steps"][-1]["script"]["actions"]["onRun"]["args"][-1] == "--frames=1-8"
    snap = tmp_path / "sh010_alpha_vom" / "farm" / "20261206-015500-a1b2c3"
    snap.mkdir(parents=True)
    (snap / "shot.yaml").write_text(farm_shot.read_text())  # its paths are absolute
    assert load_farm_shot(snap / "shot.yaml").name == "sh010_alpha"


def test_farm_check_passes_complete_frames(farm_shot: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    for f in range(1, 9):
        _good(tmp_path, f)
    assert main(["farm", "check", str(farm_shot)]) == 0
    assert "all 8 frames written and readable" in capsys.readouterr().out
    assert main(["farm", "check", str(farm_shot), "--json"]) == 0
    assert '"missing": [], "bad": {}' in capsys.readouterr().out
    # a task killed mid-write on another node left its temporary beside the frames: said, not a failure
    from vom_plugin import atomic

    left = tmp_path / "out" / ".a.0004.exr.node07-0123abcd~4242-89abcdef.tmp.exr"
    left.write_bytes(b"half a frame")
    (tmp_path / "out" / ".a.0004.exr.notes").write_bytes(b"the user's")
    assert atomic.temporaries_of(tmp_path / "out", ["a.0004.exr", "a.0005.exr"]) == [left]
    assert main(["farm", "check", str(farm_shot)]) == 0
    err = capsys.readouterr().err
    assert f"1 temporary file(s) beside the frames (e.g. {left}): a write in progress, or a killed one's" in err, err
    # and in --json, where a pipeline reads what was not checked (QA: only stderr said it)
    assert main(["farm", "check", str(farm_shot), "--json"]) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert len(notes) == 2 and notes[0].startswith("frames 1-8 carry no vom:arithmetic"), notes
    assert notes[1].startswith(f"1 temporary file(s) beside the frames (e.g. {left})"), notes


def test_farm_check_of_a_plate_no_render_can_read_says_so_once_and_advises_no_requeue(
        farm_shot: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA: with the plate moved, the check said a line a frame ("its plate frame cannot be read to compare with") and
    advised requeueing the tasks, each of which exits 2 on the plate. Said once, as a render says it, exit 2; a plate
    frame missing alone is said with its frame, to be delivered before a requeue."""
    for f in range(1, 9):
        _good(tmp_path, f)
    (tmp_path / "plate").rename(tmp_path / "moved")
    assert main(["farm", "check", str(farm_shot)]) == 2
    err = capsys.readouterr().err
    assert err == (f"vom farm: error: {farm_shot}: plate: no files match the sequence pattern "
                   f"'{tmp_path / 'plate' / 'p.####.exr'}' (folder {tmp_path / 'plate'} does not exist)\n"), err
    (tmp_path / "moved").rename(tmp_path / "plate")
    (tmp_path / "plate" / "p.0005.exr").unlink()
    assert main(["farm", "check", str(farm_shot)]) == 2
    err = capsys.readouterr().err
    assert "  frame 5: " in err and "its plate frame cannot be read" in err and "requeue the tasks that" not in err
    assert "  frame 5: a render reads its plate frame too and fails (exit 2): deliver it to the plate first, then " \
           "requeue the tasks" in err, err


def test_farm_check_fails_on_a_file_vom_did_not_write(farm_shot: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Right size, right channel, whole pixels, and still not a matte: an EXR that vom did not write (a plate
    copied with A = 1) has no vom:version in its header."""
    out = tmp_path / "out"
    for f in range(1, 9):
        _good(tmp_path, f)
    _exr(out / "a.0003.exr", 32, 16, ["R", "G", "B", "A"])
    _good(tmp_path, 5, stamps=False)  # vom's io called by other code: no frame or keyframes of a render
    assert main(["farm", "check", str(farm_shot)]) == 2
    err = capsys.readouterr().err
    lines = {int(m.group(1)): m.group(2) for m in re.finditer(r"frame (\d+): \S+: (.*)", err)}
    assert lines == {3: "not written by vom (no vom:version attribute)",
                     5: "not written by a vom render (no vom:frame or vom:keyframes attribute)"}, err


def _four_frame_shot(path: Path, root: Path, tmp_path: Path, *, plate: Path | None = None, roto: str = "r.0001.exr",
                     out: str = "o/a.####.exr", working_size: int = 128) -> Path:
    """A shot file of frames 1-4 of the render tests' shot in ``root`` (``make_shot_dir``), its plate in ``plate``
    (a copy a test changes) or the shot's own, one roto on frame 1, outputs and cache under ``tmp_path``."""
    path.write_text(yaml.safe_dump({"plate": str((plate or root / "plate") / "p.####.exr"), "frames": "1-4",
                                    "keyframes": {1: str(root / "roto" / roto)}, "out": str(tmp_path / out),
                                    "model": str(root / "model.safetensors"), "device": "cpu",
                                    "working_size": working_size, "cache": str(tmp_path / "c")}))
    return path


def test_farm_check_names_the_object_whose_roto_changed_and_every_missing_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA: one object's roto redrawn failed every frame as "hero.0001.exr: rendered from other rotos, settings or
    weights" (the first object's file, whose roto had not changed), and with an object renamed (no file of it on
    disk) --json listed no frame as missing and the text never named it. The roto that changed is named, and every
    object's missing file."""
    import shutil

    from test_runner_render import make_shot_dir

    root = make_shot_dir(tmp_path / "s")
    shutil.copy(root / "roto" / "wide.0001.exr", tmp_path / "dog.0001.exr")

    def shot_file(name: str, objects: dict) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"plate": str(root / "plate" / "p.####.exr"), "frames": "1-3",
                                        "objects": objects, "out": str(tmp_path / "o" / "{object}.####.exr"),
                                        "model": str(root / "model.safetensors"), "device": "cpu",
                                        "working_size": 128, "cache": str(tmp_path / "c")}))
        return path

    hero = {1: str(root / "roto" / "r.0001.exr")}
    shot = shot_file("shot", {"hero": hero, "dog": {1: str(tmp_path / "dog.0001.exr")}})
    assert main(["render", str(shot), "--progress", "none", "--no-worker"]) == 0
    assert main(["farm", "check", str(shot)]) == 0
    # a frame is two files (QA: "all 20 frames written and readable" of 40 files)
    assert capsys.readouterr().out == (f"all 3 frames written and readable (6 files, "
                                       f"{tmp_path / 'o' / '{object}.####.exr'})\n")
    shutil.copy(root / "roto" / "r.0001.exr", tmp_path / "dog.0001.exr")  # dog's roto redrawn
    assert main(["farm", "check", str(shot)]) == 2
    lines = re.findall(r"  frame (\d+): (\S+): (.*)", capsys.readouterr().err)
    assert [int(f) for f, _, _ in lines] == [1, 2, 3]
    for f, path, why in lines:  # dog's file, whose roto changed, not hero's that shares its pixels (QA)
        assert path == str(tmp_path / "o" / f"dog.000{f}.exr"), path
        assert why.startswith(f"rendered from another roto than object dog's of keyframe 1 "
                              f"({tmp_path / 'dog.0001.exr'}, redrawn, replaced or placed differently since, or the "
                              f"shot names another file now); this frame's matte depends on that keyframe (vom:rotos "
                              f"differs"), why
    renamed = shot_file("renamed", {"hero": hero, "cat": {1: str(tmp_path / "dog.0001.exr")}})
    assert main(["farm", "check", str(renamed), "--json"]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out)["missing"] == [1, 2, 3]
    assert [f"  frame {f}: {tmp_path / 'o' / f'cat.000{f}.exr'} is missing" for f in (1, 2, 3)] == \
        [line for line in err.splitlines() if line.startswith("  frame")], err
    # dog taken out of the shot, its files left beside hero's: the render warns that the alphas may sum above 1
    # there, and the job's check passed without a word (QA): said by the check too (a note: the frames are whole)
    alone = shot_file("alone", {"hero": hero})
    assert main(["render", str(alone), "--progress", "none", "--no-worker"]) == 0
    capsys.readouterr()
    assert main(["farm", "check", str(alone)]) == 0
    err = capsys.readouterr().err
    assert (f"vom farm check: warning: files of objects this shot does not have are beside its outputs: 3 of object "
            f"'dog' ({tmp_path / 'o' / 'dog.0001.exr'}, ...): an earlier render's") in err, err
    assert main(["farm", "check", str(renamed)]) == 2  # cat's files missing, dog's beside: said as well
    assert "3 of object 'dog'" in capsys.readouterr().err


def test_farm_check_says_a_file_a_render_refuses_before_another_objects_missing_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Review: with one object's file missing and another's a file vom did not write, the check said "missing" alone
    (requeue), and the requeued task exited 2 on the other file every time. That file is said first, with its advice
    to move it away, and the missing one beside it."""
    import pickle
    import shutil

    from test_runner_render import make_shot_dir

    from vom_plugin.farm.spans import check_outputs, load_farm_shot

    root = make_shot_dir(tmp_path / "s")
    path = tmp_path / "shot.yaml"
    path.write_text(yaml.safe_dump({"plate": str(root / "plate" / "p.####.exr"), "frames": "1-3",
                                    "objects": {"hero": {1: str(root / "roto" / "r.0001.exr")},
                                                "box": {1: str(root / "roto" / "wide.0001.exr")}},
                                    "out": str(tmp_path / "o" / "{object}.####.exr"),
                                    "model": str(root / "model.safetensors"), "device": "cpu", "working_size": 128,
                                    "cache": str(tmp_path / "c")}))
    assert main(["render", str(path), "--progress", "none", "--no-worker"]) == 0
    (tmp_path / "o" / "box.0002.exr").unlink()
    shutil.copy(root / "plate" / "p.0002.exr", tmp_path / "o" / "hero.0002.exr")  # not a matte: not replaced
    (tmp_path / "o" / "box.0003.exr").unlink()  # missing alone: requeue
    shutil.copy(root / "plate" / "p.0001.exr", tmp_path / "o" / "box.0001.exr")  # the other order (review: the
    (tmp_path / "o" / "hero.0001.exr").unlink()  # missing file after the refused one went unsaid)
    capsys.readouterr()
    assert main(["farm", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"frame 2: {tmp_path / 'o' / 'hero.0002.exr'}: no channel A" in err and "box.0002.exr missing too" in err
    assert "frames 1-2: a file a render does not replace" in err and "move it away" in err, err
    assert f"frame 3: {tmp_path / 'o' / 'box.0003.exr'} is missing" in err
    assert f"frame 1: {tmp_path / 'o' / 'box.0001.exr'}: no channel A" in err and "hero.0001.exr missing too" in err
    problems = check_outputs(load_farm_shot(path))
    assert not problems[2].missing and not problems[2].replaced and problems[3].missing
    again = pickle.loads(pickle.dumps(problems[2]))  # a problem keeps its fields through pickling
    assert (again, again.path, again.missing, again.replaced) == (problems[2], problems[2].path, False, False)


def test_farm_check_reads_a_roto_stamp_it_cannot_parse_as_the_recipe_alone() -> None:
    """Review: a vom:rotos that vom does not write (a hand edit, another tool) crashed the check (exit 1). QA: the
    words said the shot's roto was redrawn after the render where the shot named an older one (a roto reverted, or
    another file): they say which rotos differ, true whichever is newer."""
    from vom_plugin.farm.spans import _rotos_changed

    assert _rotos_changed("x=1", "hero:1=ab", {}) == "" and _rotos_changed("hero:one=ab", "hero:1=ab", {}) == ""
    assert _rotos_changed("hero:1=ab;dog:12=cd", "hero:1=ab;cat:12=cd", {"cat:12": "/r/cat.exr"}) == (
        "without object cat's roto of keyframe 12 (/r/cat.exr), which the shot has now, and with object dog's roto "
        "of keyframe 12, which the shot no longer has")
    assert _rotos_changed(":-3=ab", ":-3=ef", {":-3": "/r/roto.exr"}) == (
        "from another roto than the shot's of keyframe -3 (/r/roto.exr, redrawn, replaced or placed differently "
        "since, or the shot names another file now)")
    assert _rotos_changed(":5=ab", "", {}) == "with a roto of keyframe 5, which the shot no longer has"
    assert _rotos_changed("", ":5=ab", {":5": "/r/roto.exr"}) == (
        "without a roto of keyframe 5 (/r/roto.exr), which the shot has now")


def test_farm_check_fails_on_frames_of_an_earlier_version_of_the_shot(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The same keyframes, another roto drawn on one, or another working size: the frame is an earlier version's
    (a chunk that did not re-render after a roto fix) and the matte pops there. vom:recipe says so."""
    import shutil

    from test_runner_render import make_shot_dir

    root = make_shot_dir(tmp_path / "s")

    def shot_file(name: str, roto: str, out: str, working_size: int = 128) -> Path:
        return _four_frame_shot(tmp_path / f"{name}.yaml", root, tmp_path, roto=roto, out=out,
                                working_size=working_size)

    shot = shot_file("shot", "r.0001.exr", "o/a.####.exr")
    assert main(["render", str(shot), "--progress", "none", "--no-worker"]) == 0
    assert main(["farm", "check", str(shot)]) == 0
    capsys.readouterr()
    other_roto = shot_file("roto_fix", "wide.0001.exr", "old/a.####.exr")
    larger = shot_file("larger", "r.0001.exr", "small/a.####.exr", working_size=160)
    for f in (other_roto, larger):
        assert main(["render", str(f), "--progress", "none", "--no-worker"]) == 0
    shutil.copy(tmp_path / "old" / "a.0002.exr", tmp_path / "o" / "a.0002.exr")
    shutil.copy(tmp_path / "small" / "a.0003.exr", tmp_path / "o" / "a.0003.exr")
    assert main(["farm", "check", str(shot)]) == 2
    err = capsys.readouterr().err
    lines = {int(m.group(1)): m.group(2) for m in re.finditer(r"frame (\d+): \S+: (.*)", err)}
    assert set(lines) == {2, 3}, err
    # frame 2 was rendered from wide.0001.exr, which the shot does not name: the words say the roto differs, not
    # that the shot's r.0001.exr is the newer (QA: "rendered before ... r.0001.exr was redrawn" read so)
    assert lines[2].startswith(f"rendered from another roto than the shot's of keyframe 1 "
                               f"({root / 'roto' / 'r.0001.exr'}, redrawn, replaced or placed differently since, or "
                               f"the shot names another file now); this frame's matte depends on that keyframe "
                               f"(vom:rotos differs"), lines[2]
    # a setting the header states is named (QA: "vom:recipe differs" alone)
    assert lines[3].startswith("rendered with working_size 160 (the shot's 128) (vom:recipe differs"), lines[3]


def _pixels(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: oiio.ImageBuf(str(p)).get_pixels(oiio.FLOAT) for p in sorted(folder.glob("[!.]*.exr"))}


@pytest.mark.parametrize("objects", [False, True])
def test_farm_check_flags_only_the_frames_that_read_a_redrawn_roto(tmp_path: Path, objects: bool,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """QA: keyframes 1001, 1013, 1023 and the roto of 1023 redrawn: the check flagged all 12 frames, where a render
    changed 1015-1023 alone; a two-object shot's redraw of hero's roto flagged every frame and every object's file.
    Only the frames whose mattes read the roto are flagged (the passes serving them and the keyframes those run
    toward), and the file of the object whose roto changed is named. Proved against a render of the changed shot:
    every frame called current is bit-identical to it, every frame that differs is flagged."""
    from test_runner_render import make_shot_dir

    root = make_shot_dir(tmp_path / "s")
    last = tmp_path / "last.0008.exr"
    shutil.copy(root / "roto" / "r.0008.exr", last)
    keyframes = {1: str(root / "roto" / "r.0001.exr"), 5: str(root / "roto" / "wide.0001.exr"), 8: str(last)}
    out = "o/{object}.####.exr" if objects else "o/a.####.exr"
    fields = {"plate": str(root / "plate" / "p.####.exr"), "frames": "1-8", "model": str(root / "model.safetensors"),
              "device": "cpu", "working_size": 128}
    if objects:
        fields["objects"] = {"hero": keyframes, "dog": {3: str(root / "roto" / "r.0001.exr")}}
    else:
        fields["keyframes"] = keyframes

    def shot_file(name: str, out: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**fields, "out": str(tmp_path / out), "cache": str(tmp_path / f"c_{name}")}))
        return path

    shot = shot_file("shot", out)
    assert main(["render", str(shot), "--progress", "none", "--no-worker"]) == 0
    shutil.copy(root / "roto" / "wide.0001.exr", last)  # keyframe 8's roto redrawn
    capsys.readouterr()
    assert main(["farm", "check", str(shot), "--json"]) == 2
    printed, err = capsys.readouterr()
    flagged = {int(f): why for f, why in json.loads(printed)["bad"].items()}
    assert set(flagged) == {6, 7, 8}, flagged  # 6-7 read it as their forward pass's far keyframe; 1-5 never
    whose = "object hero's" if objects else "the shot's"
    for f, why in flagged.items():
        assert f"rendered from another roto than {whose} of keyframe 8 ({last}, redrawn, replaced or placed " \
               f"differently since, or the shot names another file now); this frame's matte depends on that " \
               f"keyframe (vom:rotos differs)" in why, why
        assert "every object's file" not in why and "keyframe 1 " not in why and "keyframe 5" not in why
        if objects:
            assert why.startswith(f"hero.000{f}.exr: "), why  # the file of the object whose roto changed
    assert "frames 6-8: vom's earlier output, which a render replaces: requeue" in err, err
    fresh = shot_file("fresh", out.replace("o/", "fresh/"))
    assert main(["render", str(fresh), "--progress", "none", "--no-worker"]) == 0
    before, after = _pixels(tmp_path / "o"), _pixels(tmp_path / "fresh")
    assert set(before) == set(after) and len(before) == (16 if objects else 8)
    differ = {int(name.split(".")[1]) for name in before if not np.array_equal(before[name], after[name])}
    assert differ and differ <= set(flagged), (differ, flagged)  # conservative: every changed frame is flagged
    assert 8 in differ  # and the redraw did change what it reaches


def test_farm_check_names_every_setting_that_decides_pixels(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """QA: working_size and colorspace were named, `top_k: 64` and `memory: first+prev3` only "vom:recipe differs".
    An output stamps every setting of its recipe (vom:settings): each one changed is named with both values."""
    from test_runner_render import make_shot_dir

    root = make_shot_dir(tmp_path / "s")
    shot = _four_frame_shot(tmp_path / "shot.yaml", root, tmp_path)
    assert main(["render", str(shot), "--progress", "none", "--no-worker"]) == 0
    fields = yaml.safe_load(shot.read_text())
    shot.write_text(yaml.safe_dump({**fields, "top_k": 64, "memory": "first+prev3"}))
    capsys.readouterr()
    assert main(["farm", "check", str(shot), "--json"]) == 2
    bad = json.loads(capsys.readouterr()[0])["bad"]
    assert sorted(bad) == ["1", "2", "3", "4"]
    for why in bad.values():
        assert why.startswith("rendered with memory first+prev2 (the shot's first+prev3), top_k 128 (the shot's 64) "
                              "(vom:recipe differs"), why


def test_a_settings_stamp_of_nested_json_is_not_vom_s_and_no_traceback() -> None:
    """QA: `vom farm check` on an output whose vom:settings was [[[...]]] (json recurses): a traceback, exit 1."""
    from vom_plugin.farm.spans import _settings_stamp_differing

    assert _settings_stamp_differing("[" * 5000 + "]" * 5000, json.dumps({"top_k": 128})) is None


def test_farm_check_fails_on_a_frame_matted_before_its_plate_was_delivered_again(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A QA pass: a matte of another plate (the same roto, settings and weights) passed the check: a plate re-delivered
    at the same path left old and new mattes mixed, every header alike. Each output now says its plate frame's
    bytes (vom:plate)."""
    import shutil

    from test_runner_render import make_shot_dir

    root = make_shot_dir(tmp_path / "s")
    shot = _four_frame_shot(tmp_path / "shot.yaml", root, tmp_path)
    assert main(["render", str(shot), "--progress", "none", "--no-worker"]) == 0
    assert main(["farm", "check", str(shot)]) == 0
    capsys.readouterr()
    frame3 = root / "plate" / "p.0003.exr"  # delivered again: the same size and header, other pixels
    buf = oiio.ImageBuf(str(frame3))
    flipped = oiio.ImageBufAlgo.flop(buf)
    assert flipped.write(str(tmp_path / "new.exr"), oiio.HALF)
    shutil.copy(tmp_path / "new.exr", frame3)
    assert main(["farm", "check", str(shot)]) == 2
    err = capsys.readouterr().err
    assert re.search(r"frame 3: \S+: matted from another picture than its plate frame .*p\.0003\.exr holds now", err)
    # frame 4 came after it in the pass: matted through its earlier picture, with stamps that pass (QA: requeueing
    # frame 3's task left it 0.095 off); a render replaces both, and the advice says so (it said to move them away).
    # Its vom:through (the bytes of every plate frame on its passes' way) says so exactly
    assert re.search(r"frame 4: \S+: matted through other pictures than plate frames 1-4 hold now \(vom:through",
                     err), err
    assert not re.search(r"frame [12]:", err), err
    assert "frames 3-4: vom's earlier output, which a render replaces: requeue the tasks that render them" in err
    assert "move it away" not in err
    # an output of vom before the stamp (none on it): found by the outputs' times, as before
    out4 = tmp_path / "o" / "a.0004.exr"
    stamped = out4.read_bytes()
    buf = oiio.ImageBuf(str(out4))
    buf.specmod().erase_attribute("vom:through")
    assert buf.write(str(tmp_path / "old4.exr"), oiio.HALF)
    shutil.copy(tmp_path / "old4.exr", out4)
    os.utime(out4, (time.time() - 3600, time.time() - 3600))  # written before frame 3 was delivered again
    assert main(["farm", "check", str(shot)]) == 2
    assert re.search(r"frame 4: \S+: matted through plate frame 3, which was changed or delivered again",
                     capsys.readouterr().err)
    out4.write_bytes(stamped)
    # frame 3's task alone requeued: frame 4 still fails (QA: the check passed it then, its matte 0.08 off), where
    # the outputs' times can no longer tell
    assert main(["render", str(shot), "--frames", "3", "--progress", "none", "--no-worker"]) == 0
    assert main(["farm", "check", str(shot)]) == 2
    err = capsys.readouterr().err
    assert re.search(r"frame 4: \S+: matted through other pictures than plate frames 1-4 hold now", err), err
    assert not re.search(r"frame [123]:", err), err
    assert main(["render", str(shot), "--progress", "none", "--no-worker"]) == 0  # rendered again: it passes
    assert main(["farm", "check", str(shot)]) == 0


def test_chunks_of_a_span_read_each_plate_frame_on_their_way_once_for_vom_through(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """vom:through names every plate frame from the keyframe: each chunk of a span read the bytes of all of them
    again (about L^2/2N frame reads for a span of L frames in chunks of N: a farm's file server read 1000 4K frames
    50 times over). Their digests are kept in the shot's cache under each frame's fingerprint, so a chunk reads
    whole only the frames it writes; the stamps are those of one render of the span, and a plate frame delivered
    again after the chunks still fails the check."""
    from test_runner_render import N, make_shot_dir

    import vom_plugin.digest as dg

    root = make_shot_dir(tmp_path / "s")
    shot = _four_frame_shot(tmp_path / "shot.yaml", root, tmp_path)
    shot.write_text(shot.read_text().replace("frames: 1-4", f"frames: 1-{N}"))
    reads: list[str] = []
    real = dg.content_digest

    def counted(path: Any) -> str:
        reads.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(dg, "content_digest", counted)
    for a in range(1, N + 1, 2):
        assert main(["render", str(shot), "--frames", f"{a}-{a + 1}", "--progress", "none", "--no-worker"]) == 0
    plates = [r for r in reads if r.startswith("p.")]
    assert sorted(plates) == [f"p.{f:04d}.exr" for f in range(1, N + 1)], plates  # each once (N^2/4 before)
    stamps = {f: read_info(tmp_path / "o" / f"a.{f:04d}.exr").metadata["vom:through"] for f in range(1, N + 1)}
    monkeypatch.setattr(dg, "content_digest", real)
    one = str(tmp_path / "one" / "a.####.exr")
    assert main(["render", str(shot), "--progress", "none", "--no-worker", "--out", one]) == 0
    assert {f: read_info(tmp_path / "one" / f"a.{f:04d}.exr").metadata["vom:through"]
            for f in range(1, N + 1)} == stamps
    assert main(["farm", "check", str(shot)]) == 0
    capsys.readouterr()
    frame2 = root / "plate" / "p.0002.exr"  # delivered again after the chunks: every frame after it fails
    buf = oiio.ImageBuf(str(frame2))
    assert oiio.ImageBufAlgo.flop(buf).write(str(tmp_path / "new.exr"), oiio.HALF)
    shutil.copy(tmp_path / "new.exr", frame2)
    assert main(["farm", "check", str(shot)]) == 2
    err = capsys.readouterr().err
    assert {int(f) for f in re.findall(r"frame (\d+): ", err)} == set(range(2, N + 1)), err


def test_a_kept_digest_is_not_trusted_for_a_plate_frame_changed_while_the_chunk_read_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A review: a digest kept in the cache named a plate frame on the chunk's way with no check that the file was
    still the one the chunk fingerprinted: frame 2 replaced while the chunk read it, then its bytes put back, and the
    check passed frame 3, matted through the other picture. It is CHANGED_SINCE_READ, as a frame the chunk writes."""
    from test_runner_render import make_shot_dir

    from vom_plugin.engine import file_source as fsm

    root = make_shot_dir(tmp_path / "s")
    shot = _four_frame_shot(tmp_path / "shot.yaml", root, tmp_path)
    assert main(["render", str(shot), "--frames", "1-2", "--progress", "none", "--no-worker"]) == 0
    for p in (tmp_path / "c").rglob("*.safetensors"):  # the steps went (a cap, another size): the digests stay
        if not p.name.endswith(".digest.safetensors"):
            p.unlink()
    f2 = root / "plate" / "p.0002.exr"
    original = f2.read_bytes()
    assert oiio.ImageBufAlgo.flop(oiio.ImageBuf(str(f2))).write(str(tmp_path / "x.exr"), oiio.HALF)
    other = (tmp_path / "x.exr").read_bytes()
    real = fsm.FileSource._read

    def swapped(self: Any, frame: int) -> Any:
        if frame != 2:
            return real(self, frame)
        f2.write_bytes(other)  # delivered again while the chunk reads it...
        try:
            return real(self, frame)
        finally:
            f2.write_bytes(original)  # ...and put back

    monkeypatch.setattr(fsm.FileSource, "_read", swapped)
    assert main(["render", str(shot), "--frames", "3-4", "--progress", "none", "--no-worker"]) == 0
    monkeypatch.setattr(fsm.FileSource, "_read", real)
    assert read_info(tmp_path / "o" / "a.0003.exr").metadata["vom:through"] == "changed-since-read"
    capsys.readouterr()
    assert main(["farm", "check", str(shot), "--frames", "3-4"]) == 2
    assert re.search(r"frame 3: \S+: matted while a plate frame whose picture reaches it was changed",
                     capsys.readouterr().err)


def test_a_stamp_the_check_cannot_recompute_is_judged_by_the_times(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A review: outputs carrying vom:through skipped the time rule even where the check could not recompute the stamp
    (a plate frame on the way unreadable on this node): frames matted through a re-delivered frame passed, exit 0."""
    from test_runner_render import make_shot_dir

    from vom_plugin.farm import spans

    root = make_shot_dir(tmp_path / "s")
    shot = _four_frame_shot(tmp_path / "shot.yaml", root, tmp_path)
    assert main(["render", str(shot), "--progress", "none", "--no-worker"]) == 0
    f2 = root / "plate" / "p.0002.exr"
    assert oiio.ImageBufAlgo.flop(oiio.ImageBuf(str(f2))).write(str(tmp_path / "x.exr"), oiio.HALF)
    shutil.copy(tmp_path / "x.exr", f2)  # delivered again after the render
    real = spans._Through.digest

    def unreadable_first(self: Any, frame: int, path: Path | None = None) -> str:
        if frame == 1:
            raise PermissionError(13, "Permission denied", str(root / "plate" / "p.0001.exr"))
        return real(self, frame, path)

    monkeypatch.setattr(spans._Through, "digest", unreadable_first)
    capsys.readouterr()
    assert main(["farm", "check", str(shot), "--frames", "3-4"]) == 2
    err = capsys.readouterr().err
    assert {int(f) for f in re.findall(r"frame (\d+): ", err)} == {3, 4}, err
    assert "matted through plate frame 2, which was changed or delivered again" in err, err


def test_frames_rendered_after_a_version_swapped_in_by_a_link_pass_by_their_stamp(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A QA pass: a plate version swapped in by a folder link (cur -> v1, then v2, whose frame 3 was made before the
    render), then the chunk after frame 3 rendered again: its frames failed as "matted through plate frame 3, which
    was changed ... after this frame was rendered", their vom:through and pixels equal to a cold render of v2 (the
    outputs' times judged them, which is for outputs before session 52). Their stamp decides; frame 3 still fails."""
    from test_runner_render import make_shot_dir

    root = make_shot_dir(tmp_path / "s")
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    shutil.copytree(root / "plate", v1)
    shutil.copytree(root / "plate", v2)
    buf = oiio.ImageBuf(str(v2 / "p.0003.exr"))
    assert oiio.ImageBufAlgo.flop(buf).write(str(tmp_path / "new.exr"), oiio.HALF)
    shutil.copy(tmp_path / "new.exr", v2 / "p.0003.exr")
    old = time.time() - 3600  # delivered long before the render
    for f in v2.iterdir():
        os.utime(f, (old, old))
    (tmp_path / "cur").symlink_to("v1")
    shot = _four_frame_shot(tmp_path / "shot.yaml", root, tmp_path, plate=tmp_path / "cur")
    assert main(["render", str(shot), "--progress", "none", "--no-worker"]) == 0
    (tmp_path / "cur").unlink()
    (tmp_path / "cur").symlink_to("v2")
    assert main(["render", str(shot), "--frames", "4", "--progress", "none", "--no-worker"]) == 0
    capsys.readouterr()
    assert main(["farm", "check", str(shot)]) == 2
    err = capsys.readouterr().err
    assert {int(f) for f in re.findall(r"frame (\d+): ", err)} == {3}, err
    assert "matted from another picture than its plate frame" in err, err
    assert main(["render", str(shot), "--frames", "3", "--progress", "none", "--no-worker"]) == 0
    assert main(["farm", "check", str(shot)]) == 0


def test_farm_check_flags_the_frames_a_pass_carried_a_redelivered_plate_frame_to(farm_shot: Path,
                                                                                 tmp_path: Path) -> None:
    """Which frames carry a plate frame's picture: before the first keyframe the frames before it (the backward
    pass), after the last the frames after it, between two keyframes every frame between them (both passes are
    blended), a keyframe's both spans; never a keyframe's own frame; each object by its own keyframes, every
    object's file (they are aggregated); only outputs written before the plate frame changed, all of them where the
    file's times are older than its output (a version swapped in by a link); and from a re-delivered frame outside
    the frames checked (review)."""
    import dataclasses

    from vom_plugin.farm.spans import OutputProblem, _stale_through

    base = load_farm_shot(farm_shot)
    shot = dataclasses.replace(base, object_keyframes=((None, (3, 6)),))
    now = time.time()
    for f in range(1, 9):
        os.utime(_good(tmp_path, f), (now - 100, now - 100))  # rendered before the plate frame changed

    def flagged(p: int, on: object = shot, output_time: float = now - 100) -> list[int]:
        problems = {p: OutputProblem("redelivered", tmp_path / "out" / f"a.{p:04d}.exr", False)}
        _stale_through(on, problems, {p: output_time})
        assert all("matted through plate frame" in problems[f] for f in problems if f != p)
        return sorted(set(problems) - {p})

    assert flagged(2) == [1] and flagged(4) == [5] and flagged(5) == [4] and flagged(7) == [8]
    assert flagged(3) == [1, 2, 4, 5] and flagged(6) == [4, 5, 7, 8]
    # two objects of their own keyframes: what either object's passes reach (hero from 1, dog from 6)
    two = dataclasses.replace(base, object_keyframes=(("hero", (1,)), ("dog", (6,))))
    assert flagged(3, two) == [1, 2, 4, 5, 6, 7, 8]  # 6 is dog's keyframe, but hero's pass reached it
    os.utime(tmp_path / "out" / "a.0008.exr", (now + 100, now + 100))  # rendered again since: its pass read it new
    assert flagged(7) == []
    # other bytes under times older than the output (a link to another version's folder): when is not known
    assert flagged(7, output_time=now + 1000) == [8]
    # checked frames 6-8 only: frame 5 outside them, its output of other bytes, was read on their way
    write_alpha(tmp_path / "out" / "a.0005.exr", np.full((16, 32), 0.25, np.float32),
                read_info(tmp_path / "plate" / "p.0005.exr"), metadata={"frame": 5, "keyframes": "1", "plate": "x"})
    os.utime(tmp_path / "out" / "a.0005.exr", (now - 100, now - 100))
    part = dataclasses.replace(base, frames=[6, 7])  # keyframe 1
    problems: dict = {}
    _stale_through(part, problems, {})
    assert sorted(problems) == [6, 7] and "plate frame 5" in problems[6]

def test_a_plate_frame_delivered_again_while_the_render_reads_it_is_not_stamped_with_the_new_bytes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA: a plate re-delivered during the render (frames read ahead of the one being written): each output's
    vom:plate was a digest of the file when the output was written, the new bytes over a matte of the old, and
    `vom farm check` passed it. The file's identity is taken before it is read; changed by the time the output is
    written, the stamp says so, and the check fails the frame."""
    import shutil

    from test_runner_render import make_shot_dir

    from vom_plugin.digest import content_digest
    from vom_plugin.engine.file_source import CHANGED_SINCE_READ, FileSource
    from vom_plugin.engine.runner import prepare
    from vom_plugin.engine.shot import Shot

    root = make_shot_dir(tmp_path / "s")
    plate = tmp_path / "plate"
    shutil.copytree(root / "plate", plate)
    shot_file = _four_frame_shot(tmp_path / "shot.yaml", root, tmp_path, plate=plate)
    source = FileSource(prepare(Shot.from_yaml(shot_file)))
    try:
        source.plate(2)
        source.plate(3)
        frame3 = plate / "p.0003.exr"
        flipped = oiio.ImageBufAlgo.flop(oiio.ImageBuf(str(frame3)))
        assert flipped.write(str(tmp_path / "new.exr"), oiio.HALF)
        shutil.copy(tmp_path / "new.exr", frame3)  # delivered again after it was read
        assert source.plate_stamp(3) == CHANGED_SINCE_READ
        assert source.plate_stamp(2) == content_digest(plate / "p.0002.exr")  # unchanged: its bytes
        assert source.plate_stamp(1) == content_digest(plate / "p.0001.exr")  # read by prepare(): the same
    finally:
        source.close()
    # a frame whose steps all come from the cache is read only to be written: its identity is taken with its cache
    # fingerprint, at the pass's start (review: taken at that late read, an old matte got the new file's stamp)
    source = FileSource(prepare(Shot.from_yaml(shot_file)))
    try:
        source.fingerprint(4)
        frame4 = plate / "p.0004.exr"
        flipped4 = oiio.ImageBufAlgo.flop(oiio.ImageBuf(str(frame4)))
        assert flipped4.write(str(tmp_path / "new4.exr"), oiio.HALF)
        shutil.copy(tmp_path / "new4.exr", frame4)
        source.plate(4)
        assert source.plate_stamp(4) == CHANGED_SINCE_READ
    finally:
        source.close()
    # through a render: frame 3's matte is either of the new bytes (read after the change) or said to be of other
    # bytes, never the old matte passed as the new plate's
    shutil.copytree(root / "plate", plate, dirs_exist_ok=True)

    def redeliver(event: dict) -> None:
        if event["event"] == "frame" and event["done"] == 1:
            shutil.copy(tmp_path / "new.exr", plate / "p.0003.exr")

    from vom_plugin.engine.runner import render

    render(Shot.from_yaml(shot_file, cache=str(tmp_path / "c2")), progress=redeliver)
    clean = render(Shot.from_yaml(shot_file, out=str(tmp_path / "clean" / "a.####.exr"), cache=str(tmp_path / "c3")))
    got = oiio.ImageBuf(str(tmp_path / "o" / "a.0003.exr")).get_pixels(oiio.FLOAT)
    want = oiio.ImageBuf(str(clean.paths[2])).get_pixels(oiio.FLOAT)
    capsys.readouterr()
    rc = main(["farm", "check", str(shot_file)])
    err = capsys.readouterr().err
    assert np.array_equal(got, want) or (rc == 2 and re.search(r"frame 3: \S+: matted from another picture", err)), err


def test_farm_check_fails_on_frames_matted_at_the_exposure_of_a_first_keyframe_frame_since_redelivered(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A QA pass: the plate frame of the shot's first keyframe sets the exposure every frame is matted at. Delivered
    again brighter and only its own frame re-rendered, the check passed a sequence with an exposure step in it
    (every other frame stale, none of them reading frame 3's pixels)."""
    import shutil

    from test_runner_render import make_shot_dir

    root = make_shot_dir(tmp_path / "s")
    plate = tmp_path / "plate"
    shutil.copytree(root / "plate", plate)
    shot = _four_frame_shot(tmp_path / "shot.yaml", root, tmp_path, plate=plate)
    assert main(["render", str(shot), "--progress", "none", "--no-worker"]) == 0
    assert main(["farm", "check", str(shot)]) == 0
    capsys.readouterr()
    brighter = oiio.ImageBufAlgo.mul(oiio.ImageBuf(str(plate / "p.0001.exr")), 4.0)
    assert brighter.write(str(tmp_path / "new.exr"), oiio.HALF)
    shutil.copy(tmp_path / "new.exr", plate / "p.0001.exr")
    assert main(["render", str(shot), "--progress", "none", "--no-worker", "--frames", "1"]) == 0
    assert main(["farm", "check", str(shot)]) == 2
    err = capsys.readouterr().err
    lines = {int(m.group(1)): m.group(2) for m in re.finditer(r"frame (\d+): \S+: (.*)", err)}
    assert set(lines) == {2, 3, 4}, err
    assert all(v.startswith("matted at exposure gain ") and "the plate frame of its first keyframe" in v
               for v in lines.values()), lines
    assert main(["render", str(shot), "--progress", "none", "--no-worker"]) == 0  # rendered again: it passes
    assert main(["farm", "check", str(shot)]) == 0


def test_chunks_place_the_roto_as_one_render_does_when_data_windows_change_along_the_shot(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A roto the size of its keyframe's data window is placed over that frame's window, not over the first
    requested frame's: a farm chunk starting where the data window differs got another matte (and the check
    flagged it for good)."""
    from test_runner_render import H, W, make_shot_dir

    from vom_plugin.farm.spans import check_outputs, load_farm_shot

    root = make_shot_dir(tmp_path / "s")
    for f in range(1, 5):  # frames 1-4 store a cropped data window (144x48 at 24,8); 5-8 the whole frame
        path = root / "plate" / f"p.{f:04d}.exr"
        px = oiio.ImageBuf(str(path)).get_pixels(oiio.FLOAT)
        spec = oiio.ImageSpec(144, 48, 3, oiio.HALF)
        spec.x, spec.y = 24, 8
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = 0, 0, W, H
        out = oiio.ImageBuf(spec)
        out.set_pixels(oiio.ROI(24, 168, 8, 56, 0, 1, 0, 3), px[8:56, 24:168].copy())
        assert out.write(str(path))
    roto = np.zeros((48, 144, 1), np.float32)  # drawn over frame 1's stored pixels (as Blender shows them)
    roto[10:40, 30:100] = 1
    spec = oiio.ImageSpec(144, 48, 1, oiio.HALF)
    spec.channelnames = ("A",)
    buf = oiio.ImageBuf(spec)
    buf.set_pixels(oiio.ROI(0, 144, 0, 48, 0, 1, 0, 1), roto)
    assert buf.write(str(tmp_path / "roto.0001.exr"))
    shot = tmp_path / "shot.yaml"

    def write_shot(out: str) -> None:
        shot.write_text(yaml.safe_dump({"plate": str(root / "plate" / "p.####.exr"), "frames": "1-8",
                                        "keyframes": {1: str(tmp_path / "roto.0001.exr")}, "out": str(tmp_path / out),
                                        "model": str(root / "model.safetensors"), "device": "cpu",
                                        "working_size": 128, "cache": str(tmp_path / "c")}))

    write_shot("chunks/a.####.exr")
    for span in ("1-4", "5-8"):  # as the farm renders it
        assert main(["render", str(shot), f"--frames={span}", "--progress", "none", "--no-worker"]) == 0
    assert check_outputs(load_farm_shot(shot)) == {}
    write_shot("whole/a.####.exr")
    assert main(["render", str(shot), "--progress", "none", "--no-worker"]) == 0
    for f in range(1, 9):
        a = oiio.ImageBuf(str(tmp_path / "chunks" / f"a.{f:04d}.exr")).get_pixels(oiio.FLOAT)
        b = oiio.ImageBuf(str(tmp_path / "whole" / f"a.{f:04d}.exr")).get_pixels(oiio.FLOAT)
        assert np.array_equal(a, b), f


def _shot_with_own_roto(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The render tests' shot (8 frames, random weights) with frames 1-3 and a roto of its own to replace or
    remove: (shot folder, roto, shot file)."""
    from test_runner_render import make_shot_dir

    root = make_shot_dir(tmp_path / "s")
    roto = tmp_path / "roto.0001.exr"
    roto.write_bytes((root / "roto" / "r.0001.exr").read_bytes())
    shot = tmp_path / "shot.yaml"
    shot.write_text(yaml.safe_dump({"plate": str(root / "plate" / "p.####.exr"), "frames": "1-3",
                                    "keyframes": {1: str(roto)}, "out": str(tmp_path / "o" / "a.####.exr"),
                                    "model": str(root / "model.safetensors"), "device": "cpu", "working_size": 128,
                                    "cache": str(tmp_path / "c")}))
    return root, roto, shot


def test_farm_check_fails_where_the_shots_rotos_or_weights_cannot_be_read(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """QA: with a roto gone from this node (a cleaned work folder) or the shot's weights missing or not weights, the
    check passed, exit 0 ("all 3 frames written and readable"), on a stderr warning with a raw "[Errno 2]", and its
    --json said nothing: a job whose outputs could not be verified passed. Exit 2, said once, naming the field and
    the file (a render of the shot fails on them too)."""
    root, roto, shot = _shot_with_own_roto(tmp_path)
    assert main(["render", str(shot), "--progress", "none", "--no-worker"]) == 0
    assert main(["farm", "check", str(shot)]) == 0
    fields = yaml.safe_load(shot.read_text())
    why = ("the outputs' recipe (vom:recipe: the shot's rotos, settings and weights) cannot be checked without it, "
           "and a render of the shot fails on it too")
    (tmp_path / "notes.txt").write_text("not weights")
    for model, said in ((tmp_path / "nope.safetensors",
                         f"model: weights file '{tmp_path / 'nope.safetensors'}' does not exist: expected a "
                         f".safetensors file written by vom"),
                        (tmp_path / "notes.txt",
                         f"model: weights file '{tmp_path / 'notes.txt'}' is not a readable safetensors file")):
        shot.write_text(yaml.safe_dump({**fields, "model": str(model)}))
        capsys.readouterr()
        assert main(["farm", "check", str(shot)]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.startswith(f"vom farm: error: {shot}: {said}") and err.endswith(f"; {why}\n"), err
        assert err.count("\n") == 1 and "Errno" not in err, err
        assert main(["farm", "check", str(shot), "--json"]) == 2
        got = json.loads(capsys.readouterr().out)
        assert got["exit_code"] == 2 and got["error"].startswith(f"{shot}: {said}"), got
    shot.write_text(yaml.safe_dump(fields))
    roto.unlink()
    assert main(["farm", "check", str(shot)]) == 2
    assert capsys.readouterr().err == (f"vom farm: error: {shot}: keyframes: roto file {roto} (frame 1) does not "
                                       f"exist; {why}\n")
    roto.write_text("not an image")
    assert main(["farm", "check", str(shot)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vom farm: error: {shot}: keyframes: roto file {roto} (frame 1): ") and why in err, err
    assert {p.name for p in (tmp_path / "o").iterdir()} == {"a.0001.exr", "a.0002.exr", "a.0003.exr"}  # untouched


def test_farm_check_says_a_recipe_it_cannot_compute_as_a_note_in_its_json_too(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """What is left unchecked once the rotos and weights read (a file failing mid-read) is a note, on stderr and in
    --json's "notes" (QA: --json had none), an OSError said as vom says one, not as "[Errno 5] ..."."""
    from vom_plugin.farm import spans

    _, _, shot = _shot_with_own_roto(tmp_path)
    assert main(["render", str(shot), "--progress", "none", "--no-worker"]) == 0

    def failing(*_: object) -> None:
        raise OSError(5, "Input/output error", str(tmp_path / "w.safetensors"))

    monkeypatch.setattr(spans, "_recipe", failing)
    capsys.readouterr()
    assert main(["farm", "check", str(shot), "--json"]) == 0
    out, err = capsys.readouterr()
    said = (f"outputs not compared with the shot's rotos, settings and weights (vom:recipe): "
            f"{tmp_path / 'w.safetensors'}: Input/output error")
    assert json.loads(out)["notes"] == [said], out
    assert err == f"vom farm check: warning: {said}\n", err


def test_the_recipe_is_of_the_roto_the_render_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A roto replaced while a render runs (an artist's new Analyze beside a farm job): the frames came from the
    old roto, so their recipe must say so (it was computed at the first write, from the new file, and passed)."""
    import vom_plugin.engine.runner as runner
    from vom_plugin.farm.spans import check_outputs, load_farm_shot

    root, roto, shot = _shot_with_own_roto(tmp_path)
    real = runner.prepare

    def prepare_then_redraw(*a, **k):
        job = real(*a, **k)
        roto.write_bytes((root / "roto" / "wide.0001.exr").read_bytes())  # the new roto lands mid-render
        return job

    monkeypatch.setattr(runner, "prepare", prepare_then_redraw)
    assert main(["render", str(shot), "--progress", "none", "--no-worker"]) == 0
    assert set(check_outputs(load_farm_shot(shot))) == {1, 2, 3}  # rendered from the old roto: stale now


def test_farm_check_says_an_srgb_frame_may_be_of_a_vom_that_did_not_bring_it_up(
        farm_shot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a dark sRGB plate is brought up since session 47; the frames an older vom matted at gain 1 failed `vom
    farm check` rightly, saying the plate frame had been delivered again, which nobody had done. Said as it may be."""
    import vom_plugin.engine.prepare as prepare
    from vom_plugin.farm.spans import check_outputs, load_farm_shot

    shot = yaml.safe_load(farm_shot.read_text())
    roto = np.zeros((16, 32), np.float32)
    roto[4:12, 8:20] = 1.0
    write_alpha(tmp_path / "roto.0001.exr", roto, ImageInfo.for_size(32, 16))
    (tmp_path / "dark").mkdir()
    for f in (1, 2):
        buf = oiio.ImageBuf(str(tmp_path / "plate" / f"p.{f:04d}.exr"))
        px = buf.get_pixels(oiio.FLOAT) * 0.1  # code values 0.05: dark, brought up now
        px[4:12, 8:20] *= 3
        spec = oiio.ImageSpec(32, 16, 3, oiio.HALF)
        out = oiio.ImageOutput.create(str(tmp_path / "dark" / f"p.{f:04d}.exr"))
        assert out.open(str(tmp_path / "dark" / f"p.{f:04d}.exr"), spec) and out.write_image(px)
        out.close()
    for space in ("sRGB", "lin_rec709"):
        path = tmp_path / f"{space}.yaml"
        path.write_text(yaml.safe_dump({**shot, "plate": str(tmp_path / "dark" / "p.####.exr"), "colorspace": space,
                                        "frames": "1-2", "working_size": 128, "cache": str(tmp_path / "c"),
                                        "keyframes": {1: str(tmp_path / "roto.0001.exr")},
                                        "out": str(tmp_path / space / "a.####.exr")}))
        with monkeypatch.context() as m:
            m.setattr(prepare, "shot_exposure_gain", lambda *a, **k: 1.0)  # as vom before session 47 read sRGB
            assert main(["render", str(path), "--progress", "none", "--no-worker"]) == 0
        said = {f: str(p) for f, p in check_outputs(load_farm_shot(path)).items()}
        assert set(said) == {1, 2} and "matted at exposure gain 1; the shot's is " in said[1], said
        assert ("or vom rendered it before it brought up dark sRGB plates)" in said[1]) == (space == "sRGB"), said[1]


def test_farm_check_fails_on_frames_of_another_vom_versions_arithmetic(
        farm_shot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: frames of a vom whose code gives other values for the same inputs (an upgrade mid-show, a farm
    mid-rollout), with the same weights and shot, carried nothing that told them apart: a folder of both passed
    `vom farm check`. Each output says the arithmetic that computed it (``resume.PREDICTION_ARITHMETIC``)."""
    import vom_plugin.engine.resume as resume
    from vom_plugin.farm.spans import check_outputs, load_farm_shot

    shot = yaml.safe_load(farm_shot.read_text())
    roto = np.zeros((16, 32), np.float32)
    roto[4:12, 8:20] = 1.0
    write_alpha(tmp_path / "roto.0001.exr", roto, ImageInfo.for_size(32, 16))
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**shot, "frames": "1-2", "working_size": 128, "cache": str(tmp_path / "c"),
                                    "keyframes": {1: str(tmp_path / "roto.0001.exr")}}))
    assert main(["render", str(path), "--progress", "none", "--no-worker"]) == 0
    stamp = oiio.ImageBuf(str(tmp_path / "out" / "a.0001.exr")).spec().getattribute("vom:arithmetic")
    assert stamp == resume.PREDICTION_ARITHMETIC  # a number, as the other numbers vom stamps
    assert check_outputs(load_farm_shot(path)) == {}
    monkeypatch.setattr(resume, "PREDICTION_ARITHMETIC", resume.PREDICTION_ARITHMETIC + 1)  # the next version
    said = {f: str(p) for f, p in check_outputs(load_farm_shot(path)).items()}
    assert set(said) == {1, 2} and said[1] == (
        f"computed by another vom version's arithmetic (vom:arithmetic {stamp}; this vom's is {stamp + 1}): its "
        "pixels differ from what this vom renders"), said
    monkeypatch.undo()
    # a frame of a vom before the stamp passes, said in a note (QA: the folder read as wholly this version's)
    frame2 = tmp_path / "out" / "a.0002.exr"
    buf = oiio.ImageBuf(str(frame2))
    buf.specmod().erase_attribute("vom:arithmetic")
    assert buf.write(str(tmp_path / "old.exr"))
    (tmp_path / "old.exr").replace(frame2)
    notes: list[str] = []
    assert check_outputs(load_farm_shot(path), notes) == {}
    assert notes == ["frame 2 carries no vom:arithmetic (vom before session 48 rendered it): not compared with this "
                     "vom's arithmetic; render again to be sure every frame is this version's"], notes


def test_farm_check_fails_on_an_alpha_vom_cannot_have_written(farm_shot: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A frame rewritten with vom's header kept (a Write passing metadata through) and NaN or values above 1 in its
    alpha passed; vom writes neither."""
    out = tmp_path / "out"
    for f in range(1, 9):
        _good(tmp_path, f)
    for frame, value in ((3, np.nan), (4, 5.0)):
        buf = oiio.ImageBuf(str(out / f"a.{frame:04d}.exr"))
        px = buf.get_pixels(oiio.FLOAT)
        px[2:4, 5:9] = value
        buf.set_pixels(buf.roi, px)
        assert buf.write(str(out / f"edit.{frame}.exr"))
        (out / f"edit.{frame}.exr").replace(out / f"a.{frame:04d}.exr")
    assert main(["farm", "check", str(farm_shot)]) == 2
    err = capsys.readouterr().err
    lines = {int(m.group(1)): m.group(2) for m in re.finditer(r"frame (\d+): \S+: (.*)", err)}
    assert lines == {3: "its A has 8 NaN or infinite pixels", 4: "its A runs from 0.25 to 5, outside 0-1"}, err


def test_a_job_for_frames_or_keyframes_the_plate_lacks_is_refused_before_it_is_made(
        farm_shot: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every task of such a job exited 2 on the farm, after submission."""
    shot = yaml.safe_load(farm_shot.read_text())
    for name, change, says in (("frames", {"frames": "1-10"}, "missing frames 9-10"),
                               ("keyframe", {"keyframes": {9: shot["keyframes"][1]}},
                                "keyframes: frame 9 is not a frame of the plate")):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**shot, **change}))
        for kind in ("openjd", "opencue"):
            assert main(["farm", kind, str(path), "--out", str(tmp_path / f"job_{name}_{kind}")]) == 2
            err = capsys.readouterr().err
            assert says in err and "ask for frames" not in err, err
            assert not (tmp_path / f"job_{name}_{kind}").exists()
    # a plate on twos asked for every frame: the stepped range that names its frames (QA: the even ones listed alone)
    for f in (2, 4, 6, 8):
        (tmp_path / "plate" / f"p.{f:04d}.exr").unlink()
    path = tmp_path / "twos.yaml"
    path.write_text(yaml.safe_dump({**shot, "frames": "1-7"}))
    assert main(["farm", "openjd", str(path), "--out", str(tmp_path / "job_twos")]) == 2
    assert "missing frames 2, 4, 6 (3 of the 7 requested, e.g. " in (err := capsys.readouterr().err), err
    assert err.rstrip().endswith("; the plate's frames among them are every 2nd: ask for frames 1-7x2"), err


def test_a_job_whose_spans_cross_a_hole_or_a_slate_is_refused_before_it_is_made(
        farm_shot: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """frames: left out, the job took the frames on disk: a hole (frames 4-5 missing) made a span whose later
    chunks exit 2, and a slate of another size one whose every task does, which `vom farm check` then wanted (QA).
    Refused when the job is made, as `vom render` says it."""
    shot = yaml.safe_load(farm_shot.read_text())
    del shot["frames"]
    plate = tmp_path / "plate"
    path = tmp_path / "ondisk.yaml"
    path.write_text(yaml.safe_dump(shot))
    (plate / "p.0004.exr").rename(tmp_path / "p4.exr")
    (plate / "p.0005.exr").rename(tmp_path / "p5.exr")
    for kind in ("openjd", "opencue"):
        assert main(["farm", kind, str(path), "--out", str(tmp_path / f"hole_{kind}")]) == 2
        err = capsys.readouterr().err
        assert "missing frames 4-5, which the propagation reads" in err and str(path) in err
        assert not (tmp_path / f"hole_{kind}").exists()
    # frames after a second keyframe beyond the hole come from it alone: nothing reads the hole (refused, QA)
    after = dict(shot, frames="6-8", keyframes={**shot["keyframes"], 6: next(iter(shot["keyframes"].values()))})
    (tmp_path / "after.yaml").write_text(yaml.safe_dump(after))
    assert main(["farm", "openjd", str(tmp_path / "after.yaml"), "--out", str(tmp_path / "after")]) == 0, \
        capsys.readouterr().err
    (tmp_path / "p4.exr").rename(plate / "p.0004.exr")
    (tmp_path / "p5.exr").rename(plate / "p.0005.exr")
    _exr(plate / "p.0000.exr", 64, 32, ["R", "G", "B"])  # a slate, larger
    assert main(["farm", "openjd", str(path), "--out", str(tmp_path / "slate")]) == 2
    err = capsys.readouterr().err
    assert "plate frame 1" in err and "is 32x16, and frame 0" in err and "is 64x32" in err
    shot["frames"] = "1-8"  # the frames asked for leave the slate out: made
    path.write_text(yaml.safe_dump(shot))
    assert main(["farm", "openjd", str(path), "--out", str(tmp_path / "ok")]) == 0


@pytest.mark.parametrize("spelling", ["{f:04d}", "-{a:04d}"])
def test_farm_check_finds_negative_plate_frames_as_the_render_does(tmp_path: Path, spelling: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Plate frames -3..4, spelt as printf pads them (-003) or with their digits padded (-0003): the render reads
    either, and so must the check (it said the plate frames did not exist, and dropped the recipe check)."""
    from test_runner_render import make_shot_dir

    from vom_plugin.farm.spans import check_outputs, load_farm_shot

    root = make_shot_dir(tmp_path / "s")
    plate = tmp_path / "plate"
    plate.mkdir()
    for f in range(1, 9):
        n = f - 4
        name = spelling.format(f=n, a=abs(n)) if n < 0 else f"{n:04d}"
        (plate / f"p.{name}.exr").write_bytes((root / "plate" / f"p.{f:04d}.exr").read_bytes())
    shot = tmp_path / "shot.yaml"
    shot.write_text(yaml.safe_dump({"plate": str(plate / "p.####.exr"), "frames": "-3-4",
                                    "keyframes": {-3: str(root / "roto" / "r.0001.exr")},
                                    "out": str(tmp_path / "o" / "a.####.exr"), "model": str(root / "model.safetensors"),
                                    "device": "cpu", "working_size": 128, "cache": str(tmp_path / "c")}))
    for span in ("-3--1", "0-4"):
        assert main(["render", str(shot), f"--frames={span}", "--progress", "none", "--no-worker"]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir())[:3] == ["a.-001.exr", "a.-002.exr", "a.-003.exr"]
    notes: list[str] = []
    assert check_outputs(load_farm_shot(shot), notes) == {} and notes == []


def _digest(path: Path) -> bytes:
    return path.read_bytes()


def test_farm_job_files_never_replace_a_file_vom_did_not_write(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """An --out typo named the shot file, a plate frame or the user's own bundle: `vom farm opencue` wrote its XML over
    them and `vom farm openjd` its template over a shot file called template.yaml."""
    shot = _shot_file(tmp_path / "shots", "sh010")
    plate = tmp_path / "plate.0001.exr"
    plate.write_bytes(b"\x76\x2f\x31\x01 a plate")
    keep = {p: _digest(p) for p in (shot, plate)}
    for out in (shot, plate):
        assert main(["farm", "opencue", str(shot), "--out", str(out)]) == 2
        assert "exists and was not written by vom" in capsys.readouterr().err
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "template.yaml").write_bytes(shot.read_bytes())  # a shot file that happens to be called so
    keep[bundle / "template.yaml"] = _digest(bundle / "template.yaml")
    assert main(["farm", "openjd", str(bundle / "template.yaml"), "--out", str(bundle)]) == 2
    assert "template.yaml: exists and was not written by vom" in capsys.readouterr().err
    assert not (bundle / "parameter_values.yaml").exists()
    assert {p: _digest(p) for p in keep} == keep
    # vom's own files are replaced when written again, also those of a vom before the marker
    job, jobs = tmp_path / "job.xml", tmp_path / "jobs"
    for _ in range(2):
        assert main(["farm", "opencue", str(shot), "--out", str(job)]) == 0
        assert main(["farm", "openjd", str(shot), "--out", str(jobs)]) == 0
    assert job.read_text().startswith('<?xml version="1.0"?><!-- written by vom farm opencue -->')
    for name in ("template.yaml", "parameter_values.yaml"):
        text = (jobs / name).read_text()
        assert text.startswith("# written by vom farm openjd\n")
        (jobs / name).write_text(text.split("\n", 1)[1])  # as a vom before session 32 wrote it
    job.write_text(job.read_text().replace("<!-- written by vom farm opencue -->", ""))
    assert main(["farm", "opencue", str(shot), "--out", str(job)]) == 0
    assert main(["farm", "openjd", str(shot), "--out", str(jobs)]) == 0
    capsys.readouterr()


def test_a_shot_on_one_gpu_of_several_asks_the_farm_for_a_gpu(tmp_path: Path) -> None:
    from vom_plugin.farm.openjd import build_template

    shot = _shot_file(tmp_path, "sh010")
    shot.write_text(shot.read_text() + "device: cuda:1\n")
    t = build_template(load_farm_shot(shot), chunk=5)
    render = [s for s in t["steps"] if s["name"].startswith("frames_")]
    assert render and all("hostRequirements" in s and "gpu" in str(s["hostRequirements"]) for s in render)
    # and renders on the GPU the farm gives the task (cuda:1 was the artist's second card)
    assert all(s["script"]["actions"]["onRun"]["args"][-2:] == ["--device", "cuda"] for s in render)


def test_an_older_vom_bundle_of_many_keyframes_is_replaced(tmp_path: Path) -> None:
    # a bundle written before the marker, longer than a first read of 4 kB: its YAML cut short read as the user's
    import yaml as _yaml

    from vom_plugin.farm.openjd import _ours

    template = {"specificationVersion": "jobtemplate-2023-09", "name": "vom sh010",
                "steps": [{"name": f"frames_{i}_{i + 1}", "script": {"actions": {"onRun": {
                          "command": "{{Param.Vom}}", "args": ["render", "{{Param.ShotFile}}"]}}}} for i in range(80)]}
    text = _yaml.safe_dump(template, sort_keys=False).encode()
    assert len(text) > 8192 and _ours(text)
    assert not _ours(b"plate: p.####.exr\nframes: 1-10\n")
    # a user's own job named "vom ...", with a step of theirs: not vom's, never replaced (QA)
    mine = b"specificationVersion: jobtemplate-2023-09\nname: vom my hand-tuned job\nsteps:\n- name: custom\n"
    assert not _ours(mine)


def test_farm_check_says_a_matte_of_another_plate_is_another_shots(farm_shot: Path) -> None:
    """QA: mattes of another shot copied or rendered over the output read as "an output of an earlier version of
    the shot ... requeue", which a requeue does not fix (a render refuses to replace them)."""
    from vom_plugin.farm.spans import _stamp_problem

    shot = load_farm_shot(farm_shot)
    meta = {"vom:version": "0.1.0", "vom:frame": "1", "vom:keyframes": "1", "vom:plate_sequence": "sh020.####.exr"}
    assert _stamp_problem(meta, 1, shot) == "holds vom's matte of another plate (sh020.####.exr; the shot's is " \
                                           "plate/p.####.exr)"
    assert _stamp_problem({**meta, "vom:plate_sequence": "p.%04d.exr"}, 1, shot) is None


def test_a_plate_pattern_no_render_can_read_refuses_the_job(farm_shot: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """QA: a plate pattern of several frame tokens (p#IFRAME#.####.exr) was a note, "the plate is not checked here",
    and every task of the job then exited 2 on the farm."""
    shot = yaml.safe_load(farm_shot.read_text())
    shot["plate"] = str(tmp_path / "plate" / "p@@.####.exr")
    path = tmp_path / "tokens.yaml"
    path.write_text(yaml.safe_dump(shot))
    assert main(["farm", "openjd", str(path), "--out", str(tmp_path / "job")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: plate: file pattern" in err and "has 2 frame tokens" in err, err
    assert not (tmp_path / "job").exists()


@pytest.mark.parametrize("out", ["/plates/sh.#####.exr", "/plates/sh.%04d.exr", "/plates/../plates/sh.$F6.exr"])
def test_a_job_whose_output_is_the_plates_sequence_is_refused(tmp_path: Path, out: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Review: `vom render` refused an output naming the plate's sequence with another padding, `vom farm` made the
    job, and every task exited 2 on it."""
    shot = _shot_file(tmp_path, "sh010")
    data = yaml.safe_load(shot.read_text())
    shot.write_text(yaml.safe_dump({**data, "out": out}))
    for kind in ("openjd", "opencue"):
        dest = tmp_path / f"job_{kind}"
        assert main(["farm", kind, str(shot), "--out", str(dest)]) == 2
        err = capsys.readouterr().err
        assert f"{shot}: out " in err and "names the plate's own sequence /plates/sh.####.exr" in err, err
        assert not dest.exists()


def test_a_shot_folder_with_a_newline_keeps_each_printed_line_whole(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Review: `vom farm` printed the bundle, the span lines and its cache warning with the path's newline in them,
    each line broken in two (`vom farm check` escaped it)."""
    shot = _shot_file(tmp_path / "nl\nfolder", "sh010")
    assert main(["farm", "openjd", str(shot), "--out", str(tmp_path / "nl\nfolder" / "b")]) == 0
    captured = capsys.readouterr()
    for line in (captured.out + captured.err).splitlines():
        assert not line.startswith("folder"), line  # no line begins where the path broke
    assert "nl\\nfolder/b (template.yaml" in captured.out and "nl\\nfolder/sh010.yaml has no `cache:`" in captured.err
    # the submit command still names the bundle for a shell (bash's $'...'; review: '/a\\nb' named another folder)
    [submit] = [line for line in captured.out.splitlines() if line.startswith("submit with: ")]
    if shutil.which("bash"):
        word = submit.removeprefix("submit with: deadline bundle submit ")
        said = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True, text=True, check=True).stdout
        assert said == str(tmp_path / "nl\nfolder" / "b")


def _rgba_shot_of_a_tagged_plate(tmp_path: Path, tag: Callable[[int, Any], None]) -> Path:
    """A four-frame rgba shot (read as ACEScg: a plate said to be otherwise is warned of, and rendered) of the render
    tests' plate written again, ``tag(frame, spec)`` setting each frame's colour attributes."""
    from test_runner_render import make_shot_dir

    root = make_shot_dir(tmp_path / "s")
    plate = tmp_path / "plate"
    plate.mkdir()
    for f in range(1, 5):
        buf = oiio.ImageBuf(str(root / "plate" / f"p.{f:04d}.exr"))
        spec = buf.spec()
        for name in ("colorInteropID", "chromaticities"):
            spec.erase_attribute(name)
        tag(f, spec)
        out = oiio.ImageOutput.create(str(plate / f"p.{f:04d}.exr"))
        assert out.open(str(plate / f"p.{f:04d}.exr"), spec)
        assert out.write_image(buf.get_pixels(oiio.FLOAT)) and out.close()
    shot = _four_frame_shot(tmp_path / "shot.yaml", root, tmp_path, plate=plate)
    shot.write_text(yaml.safe_dump({**yaml.safe_load(shot.read_text()), "output": "rgba", "colorspace": "ACEScg"}))
    return shot


def test_an_rgba_sequence_carries_one_colour_tag_and_the_check_fails_another(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A plate whose frame 2 names no colour space among frames that do: the rgba output's frame 2 was tagged by the
    setting (lin_ap1_scene) among lin_rec709_scene ones, and a reader trusting the tag flickered there; a frame of
    another vom's tag (a DPX plate's RGB named by OpenImageIO's guess) passed the check (QA). One tag for the
    sequence, its first keyframe's plate frame's; the check fails a frame of another."""
    def tag(frame: int, spec: Any) -> None:
        if frame != 2:
            spec.attribute("colorInteropID", "lin_rec709_scene")

    shot = _rgba_shot_of_a_tagged_plate(tmp_path, tag)
    assert main(["render", str(shot), "--progress", "none", "--no-worker"]) == 0
    tags = [oiio.ImageInput.open(str(tmp_path / "o" / f"a.{f:04d}.exr")).spec().getattribute("colorInteropID")
            for f in range(1, 5)]
    assert tags == ["lin_rec709_scene"] * 4, tags
    assert main(["farm", "check", str(shot)]) == 0
    capsys.readouterr()
    # frame 3 as another vom tagged it
    buf = oiio.ImageBuf(str(tmp_path / "o" / "a.0003.exr"))
    buf.specmod().attribute("colorInteropID", "lin_ap1_scene")
    assert buf.write(str(tmp_path / "o" / "b.exr")) and not buf.has_error
    (tmp_path / "o" / "b.exr").replace(tmp_path / "o" / "a.0003.exr")
    assert main(["farm", "check", str(shot)]) == 2
    err = capsys.readouterr().err
    assert re.search(r"frame 3: \S*a\.0003\.exr: its RGB is tagged colorInteropID 'lin_ap1_scene'; a render of the "
                     r"shot now tags it 'lin_rec709_scene'", err), err


def test_an_rgba_sequence_takes_its_chromaticities_from_its_first_keyframe_too(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Plate frames with Rec.709 chromaticities and no colorInteropID, frame 2 with neither: the runner's one tag was
    "none", and the writer then named frame 2 by the setting (lin_ap1_scene), which the check failed on every render
    (review). Every frame carries the first keyframe's tag: its chromaticities, no interop ID."""
    rec709 = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)

    def tag(frame: int, spec: Any) -> None:
        if frame != 2:
            spec.attribute("chromaticities", oiio.TypeDesc("float[8]"), rec709)

    shot = _rgba_shot_of_a_tagged_plate(tmp_path, tag)
    assert main(["render", str(shot), "--progress", "none", "--no-worker"]) == 0
    for f in range(1, 5):
        spec = oiio.ImageInput.open(str(tmp_path / "o" / f"a.{f:04d}.exr")).spec()
        assert spec.getattribute("colorInteropID") is None, f
        np.testing.assert_allclose(spec.getattribute("chromaticities"), rec709, atol=1e-6)
    assert main(["farm", "check", str(shot)]) == 0, capsys.readouterr().err
