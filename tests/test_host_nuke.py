"""The Nuke adapter (vom_plugin/host/nuke.py) against a small fake ``nuke`` module.

Only what the adapter touches is faked: nodes with knobs and inputs, a Write that "renders" by creating
the frame files, ProgressTask, message. The subprocess side (JSON progress, cancel) runs for real
against small fake ``vom`` scripts.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import stat
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fake_nuke import FakeKnob, FakeNode, FakeRoot, make_fake_nuke
from fake_nuke import FakeTask as Task


@pytest.fixture
def fake_nuke(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    nk = make_fake_nuke()
    monkeypatch.setitem(sys.modules, "nuke", nk)
    return nk


@pytest.fixture
def host(fake_nuke: types.ModuleType) -> types.ModuleType:
    import vom_plugin.host.nuke as mod

    return importlib.reload(mod)


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!{sys.executable}\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _gizmo(tmp: Path, **knobs: Any) -> FakeNode:
    values = {"plate": "", "frames": "", "keyframes": "5", "out": str(tmp / "out" / "alpha.####.exr"),
              "channel": "A", "output": "alpha", "compression": "zip", "working_size": 960,
              "colorspace": "ACEScg", "model": "default", "device": "auto", "memory": "first+prev2",
              "top_k": 8, "cache": ""}
    from vom_plugin.host.gizmo import RENDERED_KNOBS

    values.update({name: default for name, _, default in RENDERED_KNOBS})  # what the gizmo file sets
    values.update(knobs)
    node = FakeNode("Gizmo", "VOM_Matte1", values)
    node.children = {"AlphaRead": FakeNode("Read", "AlphaRead", {"file": "[value parent.alpha_file]"}),
                     "CopyAlpha": FakeNode("Copy", "CopyAlpha", {"from0": "rgba.alpha", "to0": "rgba.alpha"})}
    return node


def _prepared(host: types.ModuleType, node: FakeNode) -> tuple[Path, dict[str, Any]]:
    p = host.prepare_shot(node)
    return p.shot_file, p.fields


# ------------------------------------------------------------------------------------------------ tests


def test_adapter_imports_only_stdlib_and_nuke(host: types.ModuleType) -> None:
    import ast

    tree = ast.parse(Path(host.__file__).read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    # PyOpenColorIO: Nuke's own (it ships it), imported where the adapter reads a studio's config, optional there
    assert mods - {"nuke", "__future__", "PyOpenColorIO"} <= set(sys.stdlib_module_names), mods


def test_parse_progress(host: types.ModuleType) -> None:
    p = host.parse_progress('{"frame": 1005, "done": 5, "total": 20, "stage": "propagate"}\n')
    assert (p.frame, p.done, p.total, p.percent) == (1005, 5, 20, 25)
    assert p.message == "frame 1005 (5/20) propagate"
    assert host.parse_progress("Loading model...") is None
    assert host.parse_progress("{not json") is None
    assert host.parse_progress("[1, 2]") is None
    assert host.parse_progress('{"event": "start"}').percent is None
    # the runner's events (vom_plugin/engine/progress.py)
    start = host.parse_progress('{"event": "start", "total": 24, "frames": [1, 2], "device": "cpu"}')
    assert start.message == "starting: 24 frames on cpu" and start.percent is None
    frame = host.parse_progress('{"event": "frame", "frame": 7, "done": 6, "total": 24, "timings": {"read": 0.1}}')
    assert (frame.message, frame.percent) == ("frame 7 (6/24)", 25)
    assert host.parse_progress('{"event": "done", "frames_written": 24}').message == "done: 24 frames written"
    assert host.parse_progress('{"done": 30, "total": 20}').percent == 100
    warned = host.parse_progress('{"event": "warning", "message": "keyframe 1: its matte is empty"}')
    assert (warned.message, warned.percent) == ("warning: keyframe 1: its matte is empty", None)


def test_parse_keyframes_and_frame_bounds(host: types.ModuleType) -> None:
    assert host.parse_keyframes("1050, 1001 1001") == [1001, 1050]
    with pytest.raises(host.HostError, match=r"^Keyframes: 'ten' is not a frame number"):  # the knob's label
        host.parse_keyframes("1001 ten")
    with pytest.raises(host.HostError, match="Keyframes: empty"):
        host.parse_keyframes("  ")
    assert host.frame_bounds("1001-1100x2") == (1001, 1099)  # the last frame the step reaches
    assert host.frame_bounds("1001,1005,1010-1020") == (1001, 1020)
    assert host.frame_bounds("garbage") is None
    # Nuke's own spelling of several ranges, and spaces inside a part: the bounds vom's parser gives
    assert host.frame_bounds("1001-1004 1006") == (1001, 1006)
    assert host.frame_bounds("1001 - 1004, 990") == (990, 1004)
    assert host.frame_bounds("-3--1 2") == (-3, 2)
    from vom_plugin.io.sequence import parse_frame_range

    for text in ("1001-1004 1006", "1001 - 1004, 990", "-3--1 2", "1 2", "-10 -5", "1-4 -6", "1001- 1003"):
        frames = parse_frame_range(text)
        assert host.frame_bounds(text) == (frames[0], frames[-1])


def test_channel_and_pattern_mapping(host: types.ModuleType) -> None:
    assert host.exr_channel_to_nuke("A") == "rgba.alpha"
    assert host.exr_channel_to_nuke("vom.A") == "vom.alpha"
    assert host.nuke_pattern("/a/alpha.@@@@.exr") == "/a/alpha.%04d.exr"
    assert host.nuke_pattern("/a/alpha.####.exr") == "/a/alpha.####.exr"


def test_shot_yaml_round_trips(host: types.ModuleType) -> None:
    fields = host.shot_fields({"channel": "vom.A", "working_size": 512, "cache": "  ", "model": None,
                               "top_k": 4},
                              plate='/p/we "ird": #1/plate.####.exr', frames="1-24",
                              keyframes={12: "/r/roto.0012.exr", 1: "/r/roto.0001.exr"}, out="/o/a.####.exr")
    loaded = yaml.safe_load(host.shot_yaml(fields))
    assert loaded == {"plate": '/p/we "ird": #1/plate.####.exr', "frames": "1-24",
                      "keyframes": {1: "/r/roto.0001.exr", 12: "/r/roto.0012.exr"}, "out": "/o/a.####.exr",
                      "channel": "vom.A", "working_size": 512, "top_k": 4}


def test_run_with_progress_drives_the_task(host: types.ModuleType, tmp_path: Path) -> None:
    vom = _script(tmp_path / "vom", (
        "import json, sys\n"
        "print('warming up', flush=True)\n"
        "for i in range(1, 5):\n"
        "    print(json.dumps({'frame': 100 + i, 'done': i, 'total': 4}), flush=True)\n"
        "print('a warning', file=sys.stderr)\n"
    ))
    task = Task()
    seen: list[int] = []
    r = host.run_with_progress([str(vom)], task, poll_s=0.01, on_progress=lambda p: seen.append(p.frame))
    assert r.returncode == 0 and not r.cancelled
    assert task.progress == [25, 50, 75, 100]
    assert seen == [101, 102, 103, 104]
    assert task.messages[1] == "frame 101 (1/4)"  # no rate before a second frame is written
    assert any(m.startswith("frame 104 (4/4), ") and m.endswith(" s/frame, 0:00 left") for m in task.messages)
    assert "warming up" in r.output_tail and "a warning" in r.output_tail


def test_a_warning_shows_on_the_task_as_it_comes_in_the_scripts_terms(host: types.ModuleType,
                                                                      tmp_path: Path) -> None:
    """A ``warning`` event is the task's message at once, in the closing message's words (review: vom's raw words,
    the baked roto's path, replaced one step later by the next frame's message); the messages after it say how many
    there were until the render ends."""
    vom = _script(tmp_path / "vom", (
        "import json\n"
        "print(json.dumps({'event': 'start', 'total': 2}), flush=True)\n"
        "print(json.dumps({'event': 'warning', 'message': 'keyframe 1: its matte is empty where its roto '\n"
        "                  '(/w/r.0001.exr) covers 4% of the frame'}), flush=True)\n"
        "for i in (1, 2):\n"
        "    print(json.dumps({'event': 'frame', 'frame': i, 'done': i, 'total': 2}), flush=True)\n"
    ))
    task = Task()
    r = host.run_with_progress([str(vom)], task, poll_s=0.01, frame_offset=1000,
                               in_script_terms=lambda w: w.replace("/w/r.0001.exr", "the Roto input at frame 1001"))
    assert r.returncode == 0
    assert "warning: keyframe 1: its matte is empty where its roto (the Roto input at frame 1001) covers 4% of the " \
           "frame" in task.messages, task.messages
    assert task.messages[-1].startswith("frame 1002 (2/2)") and task.messages[-1].endswith(
        " (1 warning, listed when it ends)"), task.messages


def test_the_nuke_progress_bar_does_not_go_back_when_the_steps_total_grows(host: types.ModuleType,
                                                                           tmp_path: Path) -> None:
    """Damaged cache entries computed again grow the steps' total (7/23 -> 8/30): the bar went back (QA)."""
    vom = _script(tmp_path / "vom", (
        "import json\n"
        "print(json.dumps({'event': 'start', 'total': 12}), flush=True)\n"
        "for d, t in ((7, 23), (8, 30), (12, 30)):\n"
        "    print(json.dumps({'event': 'step', 'frames_done': 0, 'steps_done': d, 'steps_total': t,\n"
        "                      'steps_cached': 7}), flush=True)\n"
    ))
    task = Task()
    r = host.run_with_progress([str(vom)], task, poll_s=0.01)
    assert r.returncode == 0 and task.progress == [30, 30, 40], task.progress


def test_cancel_sends_sigterm_and_waits(host: types.ModuleType, tmp_path: Path) -> None:
    marker = tmp_path / "terminated"
    vom = _script(tmp_path / "vom", (
        "import json, signal, sys, time\n"
        # as vom does: the frame in hand is finished and said before it exits
        "def stop(*_):\n"
        "    print(json.dumps({'event': 'frame', 'frame': 1002, 'done': 2, 'total': 100}), flush=True)\n"
        f"    open({str(marker)!r}, 'w').write('clean'); sys.exit(130)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print(json.dumps({'event': 'frame', 'frame': 1001, 'done': 1, 'total': 100}), flush=True)\n"
        "time.sleep(60)\n"
    ))
    t0 = time.monotonic()
    r = host.run_with_progress([str(vom)], Task(cancel_after=1), poll_s=0.01, terminate_timeout=20)
    assert r.cancelled and r.returncode == 130
    assert r.written == [1001, 1002]  # the cancel message counts them (it gave no count: QA)
    assert marker.read_text() == "clean"  # the render got SIGTERM and shut down itself
    assert time.monotonic() - t0 < 30


def test_cancel_kills_a_render_that_ignores_sigterm(host: types.ModuleType, tmp_path: Path) -> None:
    vom = _script(tmp_path / "vom", (
        "import json, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print(json.dumps({'done': 1, 'total': 10}), flush=True)\n"
        "time.sleep(60)\n"
    ))
    r = host.run_with_progress([str(vom)], Task(cancel_after=1), poll_s=0.01, terminate_timeout=0.5)
    assert r.cancelled and r.returncode == -9


def test_prepare_shot_from_upstream_read(host: types.ModuleType, fake_nuke: types.ModuleType,
                                         tmp_path: Path) -> None:
    read = FakeNode("Read", "Read1", {"file": "/plates/sh010.%04d.exr", "first": 1001, "last": 1024})
    roto = FakeNode("Roto", "Roto1")
    node = _gizmo(tmp_path, keyframes="1001 1012", channel="vom.A")
    node.inputs = [FakeNode("Dot", "Dot1", inputs=[read]), roto]
    shot_file, fields = _prepared(host, node)
    assert shot_file == tmp_path / "out" / "alpha_vom" / "shot.yaml"  # named after the Output, not the node
    loaded = yaml.safe_load(shot_file.read_text())
    work = shot_file.parent
    assert loaded["plate"] == "/plates/sh010.%04d.exr"
    assert loaded["frames"] == "1001-1024"
    assert loaded["keyframes"] == {1001: str(work / "roto.1001.exr"), 1012: str(work / "roto.1012.exr")}
    assert loaded["channel"] == "vom.A" and loaded["working_size"] == 960 and "cache" not in loaded
    # the roto was rendered (alpha only) at the keyframes, and the temporary Write removed
    assert [(c, src, f) for c, src, f, _ in fake_nuke.renders] == [("alpha", "Roto1", 1001), ("alpha", "Roto1", 1012)]
    # rendered beside their files, then moved into place (or dropped where the file had the same picture)
    assert all(Path(p.replace(".new.", ".")).is_file() and not Path(p).exists() for *_, p in fake_nuke.renders)
    assert len(fake_nuke.deleted) == 1


def test_the_temporary_write_ignores_a_studios_write_defaults(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                              tmp_path: Path) -> None:
    """A studio's knobDefaults for Writes (DWAA, a lossy compression; autocrop) applied to the Write that bakes the
    roto and the plate: vom would have matted a plate with DWAA's blocks in it."""
    fake_nuke.write_defaults = {"compression": "DWAA", "datatype": "32 bit float", "autocrop": True}
    read = FakeNode("Read", "Read1", {"file": "/plates/sh010.%04d.exr", "first": 1001, "last": 1024})
    node = _gizmo(tmp_path, keyframes="1001", channel="vom.A")
    node.inputs = [read, FakeNode("Roto", "Roto1")]
    _prepared(host, node)
    assert fake_nuke.written_with == [{"datatype": "16 bit half", "compression": "Zip (1 scanline)", "autocrop": False}]


def test_a_stereo_read_is_refused_before_anything_is_baked(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                           tmp_path: Path) -> None:
    """A Read of a stereo pair (%V in its file) was taken as the plate: vom got the letters %V and failed, after
    the roto had been baked, with "plate not found"."""
    read = FakeNode("Read", "Read1", {"file": "/plates/sh010_%V.%04d.exr", "first": 1001, "last": 1024})
    node = _gizmo(tmp_path, keyframes="1001")
    node.inputs = [read, FakeNode("Roto", "Roto1")]
    with pytest.raises(host.HostError, match=r"Read1: file /plates/sh010_%V.%04d.exr holds both views .* OneView"):
        _prepared(host, node)
    assert fake_nuke.renders == []


def test_two_vom_nodes_writing_one_output_are_refused(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                       tmp_path: Path) -> None:
    """Two VOM Matte nodes with one Output (a copied node): the second render replaced the first's frames, and
    the first node's Read showed the other matte; both said done. Another spelling of the same files is caught."""
    read = FakeNode("Read", "Read1", {"file": "/plates/sh010.%04d.exr", "first": 1001, "last": 1024})
    node = _gizmo(tmp_path, keyframes="1005")  # a frame the Read shows
    node.inputs = [read, FakeNode("Roto", "Roto1")]
    other = _gizmo(tmp_path, out=str(tmp_path / "out" / "alpha.%04d.exr"))
    other._name = "VOM_Matte2"
    fake_nuke.all_nodes = [node, other]
    with pytest.raises(host.HostError, match=r"VOM_Matte1: Output .*alpha\.####\.exr is also the Output of "
                                             r"VOM_Matte2; each VOM Matte node needs its own"):
        host.prepare_shot(node)
    assert not fake_nuke.renders  # refused before the roto was baked
    other.knobs["out"].setValue(str(tmp_path / "out" / "other.####.exr"))
    host.prepare_shot(node)
    # other files, one work folder (shot file, baked rotos, farm bundle): refused too
    other.knobs["out"].setValue(str(tmp_path / "out" / "alpha_####.exr"))
    with pytest.raises(host.HostError, match=r"VOM_Matte1: Output .*alpha\.####\.exr and VOM_Matte2's Output "
                                             r".*alpha_####\.exr name the same work folder \(.*alpha_vom"):
        host.prepare_shot(node)


def test_outputs_that_differ_only_in_replaced_characters_get_their_own_work_folders() -> None:
    """A QA pass: "hero matte" and "hero_matte", or two outputs named in Chinese, shared one work folder."""
    from vom_plugin.host.blender_addon import common

    assert common.work_dir("/o/sh010_alpha.####.exr") == Path("/o/sh010_alpha_vom")  # plain names as before
    pairs = [("/o/hero matte.####.exr", "/o/hero_matte.####.exr"), ("/o/人物.####.exr", "/o/背景.####.exr")]
    for a, b in pairs:
        assert common.work_dir(a) != common.work_dir(b), (a, b)
    assert common.work_dir("/o/人物.####.exr") == Path("/o/人物_vom")
    assert re.fullmatch(r"hero_matte-[0-9a-f]{8}_vom", common.work_dir("/o/hero matte.####.exr").name)
    # {object} is no letter either: sh010_{object} shared sh010_object's folder, shot file and rotos (QA)
    assert re.fullmatch(r"sh010_object-[0-9a-f]{8}_vom", common.work_dir("/s/sh010_{object}.####.exr").name)
    assert common.work_dir("/s/sh010_object.####.exr") == Path("/s/sh010_object_vom")


def test_an_earlier_versions_work_folder_is_still_used_where_it_is(tmp_path: Path) -> None:
    from vom_plugin.host.blender_addon import common

    out = str(tmp_path / "hero matte.####.exr")
    new = common.work_dir(out)
    assert new.name.startswith("hero_matte-")
    legacy = tmp_path / "hero_matte_vom"
    legacy.mkdir()  # another Output's (hero_matte.####.exr, analysed by this version): never adopted
    (legacy / "shot.yaml").write_text(common.shot_yaml({"out": str(tmp_path / "hero_matte.####.exr")}, "t"))
    assert common.work_dir(out) == new
    # what an earlier version made for this Output (its shot file says so): still used, its baked files there
    (legacy / "shot.yaml").write_text(common.shot_yaml({"out": out}, "t"))
    assert common.work_dir(out) == legacy
    # the folder the version before named an Output with {object} (no digest), its shot file that Output's: kept
    objects = str(tmp_path / "sh010_{object}.####.exr")
    before = tmp_path / "sh010_object_vom"
    before.mkdir()
    (before / "shot.yaml").write_text(common.shot_yaml({"out": str(tmp_path / "sh010_object.####.exr")}, "t"))
    assert common.work_dir(objects) != before  # another Output's
    (before / "shot.yaml").write_text(common.shot_yaml({"out": objects}, "t"))
    assert common.work_dir(objects) == before
    decomposed = str(tmp_path / "he\u0301ros.####.exr")  # macOS's spelling of héros
    assert common.work_dir(decomposed) == common.work_dir(str(tmp_path / "h\u00e9ros.####.exr"))


def test_a_movie_read_is_baked_as_a_frame_sequence(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                   tmp_path: Path) -> None:
    """A QA pass: a Read of a .mov was passed to vom as the plate, which it refused after the rotos were baked."""
    read = FakeNode("Read", "Read1", {"file": "/plates/sh010_ref.mov", "first": 1, "last": 6})
    node = _gizmo(tmp_path, out=str(tmp_path / "o" / "a.####.exr"), frames="3-5", keyframes="3")
    node.inputs = [read, FakeNode("Roto", "Roto1")]
    shot_file, fields = _prepared(host, node)
    assert fields["plate"] == str(shot_file.parent / "plate.%04d.exr")
    assert [(src, f) for c, src, f, _ in fake_nuke.renders if c == "rgb"] == [("Read1", f) for f in (3, 4, 5)]


def test_prepare_shot_bakes_a_processed_source(host: types.ModuleType, fake_nuke: types.ModuleType,
                                              tmp_path: Path) -> None:
    grade = FakeNode("Grade", "Grade1", inputs=[FakeNode("Read", "Read1", {"file": "/p.%04d.exr"})])
    node = _gizmo(tmp_path, out="", frames="3-5")
    node.inputs = [grade, FakeNode("Roto", "Roto1")]
    fake_nuke.root_node = FakeRoot(fake_nuke, str(tmp_path / "comp" / "s.nk"), 1, 6)
    shot_file, fields = _prepared(host, node)
    # each version of the script its own default (v001 and v002 in one folder replaced each other's frames)
    assert fields["out"] == str(tmp_path / "comp" / "vom" / "s" / "VOM_Matte1.####.exr")
    node.group = "Group1"  # a VOM_Matte1 inside a group: its own default, by its full name
    assert host._default_out(node) == str(tmp_path / "comp" / "vom" / "s" / "Group1_VOM_Matte1.####.exr")
    node.group = "root"
    assert fields["plate"] == str(shot_file.parent / "plate.%04d.exr")
    rgb = [(src, f) for c, src, f, _ in fake_nuke.renders if c == "rgb"]
    assert rgb == [("Grade1", f) for f in range(3, 6)]  # the frames vom reads (3-5, keyframe 5), baked once
    assert fields["frames"] == "3-5"
    node = _gizmo(tmp_path, out="", frames="4", keyframes="2")
    node.inputs = [grade, FakeNode("Roto", "Roto1")]
    fake_nuke.renders.clear()
    host.prepare_shot(node)
    assert [f for c, _, f, _ in fake_nuke.renders if c == "rgb"] == [2, 3, 4]  # from the keyframe to the frame


def test_an_unchanged_baked_source_keeps_its_files_so_the_cache_holds(host: types.ModuleType,
                                                                     fake_nuke: types.ModuleType,
                                                                     tmp_path: Path) -> None:
    """Every Analyze bakes the Source again; a frame whose picture did not change keeps its file (and so its
    modification time, which vom's cache fingerprints): a roto tweak's re-render reuses the cached features."""
    import OpenImageIO as oiio

    def exr(pixels: np.ndarray, stamp: str) -> bytes:
        path = tmp_path / "px.exr"
        spec = oiio.ImageSpec(8, 4, 3, oiio.HALF)
        spec.attribute("DateTime", stamp)  # a time stamp, as writers put in every file
        out = oiio.ImageOutput.create(str(path))
        assert out.open(str(path), spec) and out.write_image(pixels) and out.close()
        return path.read_bytes()

    px = np.linspace(0, 1, 96, dtype=np.float32).reshape(4, 8, 3)
    grade = FakeNode("Grade", "Grade1", inputs=[FakeNode("Read", "Read1", {"file": "/p.%04d.exr"})])
    grade.pixels = exr(px, "2026:12:04 10:00:00")
    node = _gizmo(tmp_path, out=str(tmp_path / "o" / "a.####.exr"), frames="1-3", keyframes="1")
    node.inputs = [grade, FakeNode("Roto", "Roto1")]
    shot_file, fields = _prepared(host, node)
    plate = [Path(fields["plate"].replace("%04d", f"{f:04d}")) for f in (1, 2, 3)]
    first = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in plate]
    grade.pixels = exr(px, "2026:12:04 11:30:00")  # baked again: same picture, another time stamp
    host.prepare_shot(node)
    assert [(p.stat().st_ino, p.stat().st_mtime_ns) for p in plate] == first
    grade.pixels = exr(px * 0.5, "2026:12:04 12:00:00")  # the grade changed: every frame is replaced
    host.prepare_shot(node).undo.discard()  # the render accepted: the earlier plate kept aside is let go
    assert all(p.read_bytes() == grade.pixels for p in plate)
    assert sorted(p.name for p in shot_file.parent.iterdir() if "plate" in p.name) == [p.name for p in plate]


def test_prepare_shot_errors_name_the_problem(host: types.ModuleType, fake_nuke: types.ModuleType,
                                              tmp_path: Path) -> None:
    node = _gizmo(tmp_path, keyframes="", plate="/p.####.exr")
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    with pytest.raises(host.HostError, match="^VOM_Matte1: Keyframes: empty"):
        host.prepare_shot(node)
    node = _gizmo(tmp_path, plate="/p.####.exr")
    node.inputs = [None, None]
    with pytest.raises(host.HostError, match="Roto: the input is not connected"):
        host.prepare_shot(node)
    fake_nuke.root_node = FakeRoot(fake_nuke, "Root", 1, 2)
    node = _gizmo(tmp_path, out="", plate="/p.####.exr")
    with pytest.raises(host.HostError, match="Output knob is empty and the script is not saved"):
        host.prepare_shot(node)


def test_analyze_end_to_end_with_a_fake_vom(host: types.ModuleType, fake_nuke: types.ModuleType,
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "argv.json"
    vom = _script(tmp_path / "vom", (
        "import json, sys\n"
        f"json.dump(sys.argv[1:], open({str(log)!r}, 'w'))\n"
        "for i in range(1, 4):\n"
        "    print(json.dumps({'frame': i, 'done': i, 'total': 3}), flush=True)\n"
    ))
    monkeypatch.setenv("VOM_EXECUTABLE", str(vom))
    node = _gizmo(tmp_path, plate="/plates/p.@@@@.exr", frames="1-3", keyframes="1", channel="vom.A",
                  out=str(tmp_path / "out" / "a.@@@@.exr"))
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    result = host.analyze(node, background=False)
    assert result.returncode == 0 and not result.cancelled
    argv = json.loads(log.read_text())
    assert argv == ["render", str(tmp_path / "out" / "a_vom" / "shot.yaml"), "--progress", "json",
                    "--start-worker"]
    assert fake_nuke.tasks[0].progress == [33, 66, 100]
    # what the matte needs is on the gizmo's own knobs, which the script saves (the inner nodes follow them by
    # expression: Nuke rebuilds a gizmo's inner nodes from its file when the script is opened)
    assert node["alpha_file"].value() == str(tmp_path / "out" / "a.%04d.exr")
    assert node["alpha_owner"].value() == "VOM_Matte1"  # whose Analyze wrote it (a pasted copy carries it)
    assert (node["alpha_first"].value(), node["alpha_last"].value(), node["alpha_offset"].value()) == (1, 3, 0)
    assert node["alpha_channel"].value() == "vom.alpha"
    read, copy = node.children["AlphaRead"], node.children["CopyAlpha"]
    assert read["file"].value() == "[value parent.alpha_file]" and read["reload"].executed == 1
    assert copy["from0"].value() == "vom.alpha"
    assert fake_nuke.messages == []
    # the script saved and opened again: a fresh gizmo with the saved knobs; its onCreate sets the channel again
    reopened = _gizmo(tmp_path, **{k: node[k].value() for k in ("alpha_file", "alpha_first", "alpha_last",
                                                                "alpha_offset", "alpha_channel")})
    assert reopened.children["CopyAlpha"]["from0"].value() == "rgba.alpha"
    from vom_plugin.host.gizmo import ON_CREATE

    monkeypatch.setitem(sys.modules, "vom_nuke", host)  # as install.py's init.py block loads the adapter
    exec(ON_CREATE, {"nuke": types.SimpleNamespace(thisNode=lambda: reopened)})
    assert reopened.children["CopyAlpha"]["from0"].value() == "vom.alpha"


def test_the_knobs_that_show_the_matte_change_in_one_undo_step(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                               tmp_path: Path) -> None:
    steps: list[str] = []
    open_step: list[str] = []

    class Undo:
        @staticmethod
        def begin(name: str) -> None:
            open_step.append(name)

        @staticmethod
        def end() -> None:
            steps.append(open_step.pop())

    fake_nuke.Undo = Undo  # type: ignore[attr-defined]
    node = _gizmo(tmp_path, plate="/p.####.exr", frames="1-3", keyframes="1")
    changed: list[str] = []
    for name in ("alpha_file", "alpha_first", "alpha_channel"):
        knob = node[name]
        real = knob.setValue

        def recording(value: Any, real: Any = real, name: str = name) -> None:
            changed.append(f"{name} in {open_step[-1] if open_step else 'no step'}")
            real(value)

        knob.setValue = recording  # type: ignore[method-assign]
    host._reload_alpha(node, {"out": str(tmp_path / "a.####.exr"), "channel": "A"}, 1, 3)
    assert steps == ["VOM Matte: show VOM_Matte1's matte"] and not open_step
    assert changed and all(c.endswith("in VOM Matte: show VOM_Matte1's matte") for c in changed), changed


def _vom_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, frame: int, warning: str) -> None:
    """A vom (VOM_EXECUTABLE) whose render writes ``frame`` and ends with ``warning``."""
    vom = _script(tmp_path / "vom", (
        "import json\n"
        f"print(json.dumps({{'event': 'frame', 'frame': {frame}, 'done': 1, 'total': 1}}), flush=True)\n"
        f"print(json.dumps({{'event': 'done', 'frames_written': 1, 'warnings': [{warning!r}]}}), flush=True)\n"))
    monkeypatch.setenv("VOM_EXECUTABLE", str(vom))


def test_analyze_shows_the_warnings_of_a_finished_render(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A QA pass: the done event's warnings (a plate read as another colour space than its header says, a cache
    turned off) never reached the artist."""
    _vom_warning(tmp_path, monkeypatch, 1, "plate header says ACEScg, read as lin_rec709")
    node = _gizmo(tmp_path, plate="/p.####.exr", frames="1-1", keyframes="1")
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    assert host.analyze(node, background=False).returncode == 0
    assert node.children["AlphaRead"]["reload"].executed == 1
    assert len(fake_nuke.messages) == 1 and "rendered, with warnings:\n- plate header says ACEScg" in \
        fake_nuke.messages[0]


def test_the_task_says_truly_which_warnings_the_closing_message_lists(
        host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: an inverted roto, Analyze twice: both tasks ended "(1 warning, listed when it ends)", and the second
    listed nothing (a warning is said once a node). A warning naming a roto Analyze rendered is about what was drawn
    and spoils this matte: listed at every Analyze. One of the setup (a plate's header, the cache) is said once a node,
    and the task and the closing message say it was not listed again."""
    out = tmp_path / "o" / "a.####.exr"
    roto = tmp_path / "o" / "a_vom" / "roto.0001.exr"
    inverted = f"roto {roto}: its inside covers 96% of the frame: is it inverted?"
    header = "plate p.0001.exr says its colour space is 'ACEScg' and is read as lin_rec709"

    def vom(*warnings: str) -> None:
        _script(tmp_path / "vom", (
            "import json\n"
            f"for w in {list(warnings)!r}:\n"
            "    print(json.dumps({'event': 'warning', 'message': w}), flush=True)\n"
            "print(json.dumps({'event': 'frame', 'frame': 1, 'done': 1, 'total': 1}), flush=True)\n"
            f"print(json.dumps({{'event': 'done', 'frames_written': 1, 'warnings': {list(warnings)!r}}}),"
            " flush=True)\n"))
        monkeypatch.setenv("VOM_EXECUTABLE", str(tmp_path / "vom"))

    node = _gizmo(tmp_path, plate="/p.####.exr", frames="1-1", keyframes="1", out=str(out))
    node.inputs = [None, FakeNode("Roto", "Roto1")]

    def analyze() -> tuple[str, list[str]]:
        fake_nuke.messages.clear()
        fake_nuke.tasks.clear()
        assert host.analyze(node, background=False).returncode == 0
        return fake_nuke.tasks[-1].messages[-1], list(fake_nuke.messages)

    vom(inverted)
    for _ in range(2):  # the roto's warning, at each Analyze
        task, [said] = analyze()
        assert task.endswith("(1 warning, listed when it ends)") and "is it inverted?" in said, (task, said)
    vom(header)
    task, [said] = analyze()
    assert task.endswith("(1 warning, listed when it ends)") and header in said
    task, said_now = analyze()  # the same setup warning: not listed again, and the task says so
    assert task.endswith("(1 warning, as at the last Analyze: not listed again)") and said_now == [], task
    vom(header, inverted)
    task, [said] = analyze()
    assert task.endswith("(2 warnings: 1 listed when it ends, 1 as at the last Analyze)"), task
    assert "is it inverted?" in said and header not in said
    assert said.endswith("(and 1 warning as at the last Analyze, not listed again)"), said


def test_warnings_give_vom_s_advice_in_the_node_s_terms(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: with Colour space 'from Nuke' ticked (the colour from the Read), vom's "set colorspace ACEScg" told the
    artist to set what the node already showed; and "pass --cache DIR" inside Nuke."""
    _vom_warning(tmp_path, monkeypatch, 1, "plate p.0001.exr says its colour space is 'lin_ap1_scene' (ACEScg) and is "
                 "read as lin_rec709 (the colorspace setting); if it is ACEScg, set colorspace ACEScg")
    read = FakeNode("Read", "Read1", {"file": "/plates/p.%04d.exr", "first": 1, "last": 4, "colorspace": "linear"})
    node = _gizmo(tmp_path, keyframes="1", frames="1-1", colorspace_from_nuke=True)
    node.inputs = [read, FakeNode("Roto", "Roto1")]
    assert host.analyze(node, background=False).returncode == 0
    [said] = fake_nuke.messages
    assert "set colorspace ACEScg (here: set the Read's colorspace, or untick Colour space 'from Nuke' and set Input " \
           "colour space)" in said, said
    fake_nuke.messages.clear()
    _vom_warning(tmp_path, monkeypatch, 1, "rendering without the cache: cache folder '/x' cannot be written (Not a "
                 "directory); pass --cache DIR (or set VOM_CACHE_DIR) to a writable folder")
    node.knobs["colorspace_from_nuke"].setValue(False)
    assert host.analyze(node, background=False).returncode == 0
    [said] = fake_nuke.messages
    assert "cannot be written (Not a directory); set the node's Cache folder to a writable folder" in said, said
    assert "--cache" not in said and "(here:" not in said


def test_warnings_say_vom_numbers_file_frames_where_the_read_shows_others(
        host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a Read of files 1001- started at script frame 1: vom's warning said "keyframe 1005" beside "the Roto
    input at frame 5", and only a failure said how the two numberings meet."""
    _vom_warning(tmp_path, monkeypatch, 1005, "keyframe 1005: its matte lies mostly off its roto")
    read = FakeNode("Read", "Read1", {"file": "/plates/sh010.%04d.exr", "first": 1001, "last": 1024,
                                      "frame_mode": "start at", "frame": "1"})
    node = _gizmo(tmp_path, keyframes="5", frames="5-5")
    node.inputs = [read, FakeNode("Roto", "Roto1")]
    assert host.analyze(node, background=False).returncode == 0
    [said] = fake_nuke.messages
    assert "rendered, with warnings:\n- keyframe 1005: its matte lies mostly off its roto" in said
    assert said.endswith("(vom's frame numbers are the plate's file frames: the script shows file frame F at F - 1000)")
    # a warning that names no frame (the cache turned off) gets no such note (it was added to any)
    _vom_warning(tmp_path, monkeypatch, 1005, "cache: off (VOM_CACHE_MIN_FREE_GB): the next render starts afresh")
    fake_nuke.messages.clear()
    assert host.analyze(node, background=False).returncode == 0
    [said] = fake_nuke.messages
    assert said.endswith("- cache: off (VOM_CACHE_MIN_FREE_GB): the next render starts afresh"), said


def test_analyze_reports_a_failed_render(host: types.ModuleType, fake_nuke: types.ModuleType,
                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vom = _script(tmp_path / "vom", "import sys\nprint('{\"event\": \"error\", \"message\": \"plate: frame 7 "
                                    "missing\", \"exit_code\": 2}', flush=True)\nsys.exit(2)\n")
    monkeypatch.setenv("VOM_EXECUTABLE", str(vom))
    node = _gizmo(tmp_path, plate="/p.####.exr", frames="1-3", keyframes="1")
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    result = host.analyze(node, background=False)
    assert result.returncode == 2
    assert len(fake_nuke.messages) == 1 and "exit 2" in fake_nuke.messages[0]
    assert "frame 7 missing" in fake_nuke.messages[0]
    assert node.children["AlphaRead"]["reload"].executed == 0


def _failing_vom(tmp: Path, monkeypatch: pytest.MonkeyPatch, message: str) -> None:
    """A vom that refuses the render with ``message``, said as vom says it: an error event and on stderr."""
    vom = _script(tmp / "vom", f"import json, sys\nm = {message!r}\n"
                               "print(json.dumps({'event': 'error', 'message': m, 'exit_code': 2}), flush=True)\n"
                               "print('vom render: error: ' + m, file=sys.stderr)\nsys.exit(2)\n")
    monkeypatch.setenv("VOM_EXECUTABLE", str(vom))


def test_a_failure_is_said_in_the_node_s_terms(host: types.ModuleType, fake_nuke: types.ModuleType,
                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: the failure dialog said "use --device cpu or auto", "lower --working-size" and "out '...'" (warnings were
    put in the node's terms, failures were not), and added how vom's frame numbers read in the script to an error
    that names no frame (a bad weights file)."""
    read = FakeNode("Read", "Read1", {"file": "/plates/sh010.%04d.exr", "first": 1001, "last": 1024,
                                      "frame_mode": "start at", "frame": "1"})
    node = _gizmo(tmp_path, keyframes="5", frames="5-6", device="cuda")
    node.inputs = [read, FakeNode("Roto", "Roto1")]
    note = "(vom's frame numbers are the plate's file frames: the script shows file frame F at F - 1000)"
    _failing_vom(tmp_path, monkeypatch, "device 'cuda': CUDA is not available on this machine (torch 2.13.0+cpu); "
                                        "use --device cpu or auto")
    assert host.analyze(node, background=False).returncode == 2
    [said] = fake_nuke.messages
    assert said.endswith("\n\nerror: Device 'cuda': CUDA is not available on this machine (torch 2.13.0+cpu); set "
                         "Device to cpu or auto"), said
    assert "--device" not in said and note not in said
    for message, shown in [
            ("the GPU ran out of memory at working size 960: lower --working-size (e.g. 720 or 540), free the GPU, or "
             "use --device cpu", "error: the GPU ran out of memory at working size 960: lower Working size (e.g. 720 "
                                 "or 540), free the GPU, or set Device to cpu"),
            ("cache folder '/c' cannot be written (Read-only file system); pass --cache DIR (or set VOM_CACHE_DIR) "
             "to a writable folder", "error: cache folder '/c' cannot be written (Read-only file system); set the "
                                     "node's Cache folder to a writable folder"),
            ("model '/m/bad.safetensors': not a vom checkpoint", "error: Model '/m/bad.safetensors': not a vom "
                                                                 "checkpoint"),
            # an error naming a frame keeps the note
            ("out '/o/a.####.exr': frame 1005 would be written to /o/a.1005.exr, which is the plate; the render would "
             "overwrite its own input. Choose another output pattern",
             "error: Output '/o/a.####.exr': frame 1005 would be written to /o/a.1005.exr, which is the plate; the "
             f"render would overwrite its own input. Choose another output pattern\n\n{note}")]:
        fake_nuke.messages.clear()
        _failing_vom(tmp_path, monkeypatch, message)
        assert host.analyze(node, background=False).returncode == 2
        [said] = fake_nuke.messages
        assert said.endswith("\n\n" + shown), said
        assert "--" not in said.split("\n\n", 1)[1] and said.count(note) == (note in shown)
    # a crash's traceback, what a bug report pastes, as vom printed it (review: its lines were translated one by one)
    fake_nuke.messages.clear()
    trace = ["Traceback (most recent call last):", '  File "/v/vom_plugin/cli.py", line 9, in main',
             '    raise RuntimeError("--device cuda")', "RuntimeError: --device cuda"]
    crash = f"import sys\nprint({chr(10).join(trace)!r}, file=sys.stderr)\nsys.exit(1)\n"
    monkeypatch.setenv("VOM_EXECUTABLE", str(_script(tmp_path / "vom", crash)))
    assert host.analyze(node, background=False).returncode == 1
    [said] = fake_nuke.messages
    assert "\n".join(trace) in said and "Device" not in said.split("\n\n", 1)[1], said


@pytest.mark.parametrize("blocked", ["output", "work"])
def test_an_output_folder_that_cannot_be_made_names_the_output(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               blocked: str) -> None:
    """QA: "VOM Matte: VOM_Matte1: cannot write /proc/vomout: No such file or directory", which named no knob. The
    Output's folder (or its work folder beside it) that cannot be made is said as the Output's, before any bake."""
    monkeypatch.setenv("VOM_EXECUTABLE", str(_script(tmp_path / "vom", "raise SystemExit(0)\n")))
    (tmp_path / "afile").write_text("a file, not a folder")
    if blocked == "output":
        out, folder = tmp_path / "afile" / "o" / "a.####.exr", tmp_path / "afile" / "o"
    else:  # the Output's folder is there; its work folder's name is taken by a file
        out, folder = tmp_path / "o" / "a.####.exr", tmp_path / "o" / "a_vom"
        folder.parent.mkdir()
        folder.write_text("a file where the work folder goes")
    node = _gizmo(tmp_path, plate="/p.####.exr", frames="1-3", keyframes="1", out=str(out))
    roto = FakeNode("Roto", "Roto1")
    node.inputs = [None, roto]
    assert host.analyze(node, background=False) is None
    what = "its folder" if blocked == "output" else "its work folder"
    assert fake_nuke.messages == [f"VOM Matte: VOM_Matte1: Output {out}: cannot make {what} {folder}: "
                                  f"{'Not a directory' if blocked == 'output' else 'File exists'}"]
    assert fake_nuke.renders == []  # nothing baked for it


def test_a_render_vom_refuses_leaves_the_work_folder_as_it_was(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A QA pass: Analyze made the Output's folder, baked the roto and wrote the shot file before vom read it; a
    render vom refused (a bad path) left them, and replaced the shot file of a good render of the same Output, which
    the next render or a farm job reads. Taken back when vom ends before its start event; kept after it."""
    good = _script(tmp_path / "good", "import json\nprint(json.dumps({'event': 'start', 'total': 1}), flush=True)\n"
                                      "print(json.dumps({'event': 'frame', 'frame': 1, 'done': 1, 'total': 1}))\n")
    refuse = _script(tmp_path / "refuse", "import sys\nprint('{\"event\": \"error\", \"message\": \"plate: no such "
                                          "file\", \"exit_code\": 2}', flush=True)\nsys.exit(2)\n")
    late = _script(tmp_path / "late", "import json, sys\n"
                                      "print(json.dumps({'event': 'start', 'total': 3}), flush=True)\nsys.exit(2)\n")
    out = tmp_path / "shots" / "sh010" / "a.####.exr"
    work = tmp_path / "shots" / "sh010" / "a_vom"

    def analyze(vom: Path, frames: str) -> Any:
        monkeypatch.setenv("VOM_EXECUTABLE", str(vom))
        node = _gizmo(tmp_path, plate="/p.####.exr", frames=frames, keyframes="1", out=str(out))
        node.inputs = [None, FakeNode("Roto", "Roto1")]
        return host.analyze(node, background=False)

    assert analyze(refuse, "1-2").returncode == 2
    assert not (tmp_path / "shots").exists()  # the folders it made are gone with the files
    assert analyze(good, "1-2").returncode == 0
    kept = (work / "shot.yaml").read_text()
    assert 'frames: "1-2"' in kept and sorted(p.name for p in work.iterdir()) == ["roto.0001.exr", "shot.yaml"]
    (work / "roto.0001.exr").write_bytes(b"the good render's roto")
    assert analyze(refuse, "1-3").returncode == 2
    assert (work / "shot.yaml").read_text() == kept and sorted(p.name for p in work.iterdir()) == [
        "roto.0001.exr", "shot.yaml"]
    # the roto it baked over the good render's is put back: its shot file renders what it did (review)
    assert (work / "roto.0001.exr").read_bytes() == b"the good render's roto"
    assert analyze(late, "1-4").returncode == 2  # vom began: the shot file is the render's
    assert 'frames: "1-4"' in (work / "shot.yaml").read_text()


@pytest.mark.parametrize("links", [True, False])
def test_a_refused_render_puts_the_earlier_baked_source_back(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             links: bool) -> None:
    """A QA pass: after a good Analyze of a Grade (baked to plate.####.exr), the Grade changed and vom refused the next
    render (Device cuda on a CPU machine): the undo deleted the earlier plate, and the shot file it restored (and a
    queued farm job) failed on "plate: no files match". The earlier plate's files come back as they were, on a share
    without hard links too (renamed aside, never a copy of a plate)."""
    good = _script(tmp_path / "good", "import json\nprint(json.dumps({'event': 'start', 'total': 3}), flush=True)\n"
                                      "print(json.dumps({'event': 'done', 'frames_written': 3}), flush=True)\n")
    refuse = _script(tmp_path / "refuse", "import sys\nprint('{\"event\": \"error\", \"message\": \"device cuda: "
                                          "CUDA is not available\", \"exit_code\": 2}', flush=True)\nsys.exit(2)\n")
    if not links:
        def no_link(*a: Any, **k: Any) -> None:
            raise OSError(1, "Operation not permitted")

        monkeypatch.setattr(host._common.os, "link", no_link)
    grade = FakeNode("Grade", "Grade1")
    grade.pixels = b"the good render's plate"
    node = _gizmo(tmp_path, out=str(tmp_path / "o" / "a.####.exr"), frames="1-3", keyframes="1")
    node.inputs = [grade, FakeNode("Roto", "Roto1")]
    work = tmp_path / "o" / "a_vom"
    monkeypatch.setenv("VOM_EXECUTABLE", str(good))
    assert host.analyze(node, background=False).returncode == 0
    plate = [work / f"plate.{f:04d}.exr" for f in (1, 2, 3)]
    before = [(p.read_bytes(), p.stat().st_ino, p.stat().st_mtime_ns) for p in plate]
    shot = (work / "shot.yaml").read_text()
    grade.pixels = b"a changed grade"
    node["frames"].setValue("1-4")
    monkeypatch.setenv("VOM_EXECUTABLE", str(refuse))
    assert host.analyze(node, background=False).returncode == 2
    assert "vom refused the render; nothing of this Analyze was kept" in fake_nuke.messages[-1]
    assert [(p.read_bytes(), p.stat().st_ino, p.stat().st_mtime_ns) for p in plate] == before  # the same files
    assert (work / "shot.yaml").read_text() == shot
    assert sorted(p.name for p in work.iterdir()) == ["plate.0001.exr", "plate.0002.exr", "plate.0003.exr",
                                                       "roto.0001.exr", "shot.yaml"]  # frame 4's bake taken back
    # accepted: the new plate stays, nothing is left aside
    monkeypatch.setenv("VOM_EXECUTABLE", str(good))
    assert host.analyze(node, background=False).returncode == 0
    assert all(p.read_bytes() == b"a changed grade" for p in plate)
    assert not [p for p in work.iterdir() if p.name.endswith(".vom-undo")]


def test_what_analyze_kept_aside_goes_as_soon_as_vom_begins(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review: the earlier plate's frames a bake replaced (hard links, ``.plate.NNNN.exr.<token>.vom-undo``) were let go
    only after vom exited: each held the old frame's blocks on disk for the whole render (twice the plate for
    hours), and a Nuke that crashed meanwhile left them for good. vom's start event means nothing is taken back any
    more: they go then. The render below looks for them after its start event."""
    seen = tmp_path / "seen.json"
    good = _script(tmp_path / "good", "import json\nprint(json.dumps({'event': 'start', 'total': 3}), flush=True)\n"
                                      "print(json.dumps({'event': 'done', 'frames_written': 3}), flush=True)\n")
    looks = _script(tmp_path / "looks", (
        "import json, os, sys, time\n"
        "work = os.path.dirname(next(a for a in sys.argv if a.endswith('shot.yaml')))\n"
        "aside = lambda: sorted(n for n in os.listdir(work) if n.endswith('.vom-undo'))\n"
        "before = aside()\n"
        "print(json.dumps({'event': 'start', 'total': 3}), flush=True)\n"
        "t = time.monotonic()\n"
        "while aside() and time.monotonic() - t < 3:\n"
        "    time.sleep(0.05)\n"
        f"open({str(seen)!r}, 'w').write(json.dumps([before, aside()]))\n"
        "print(json.dumps({'event': 'done', 'frames_written': 3}), flush=True)\n"))
    grade = FakeNode("Grade", "Grade1")
    grade.pixels = b"the earlier plate"
    node = _gizmo(tmp_path, out=str(tmp_path / "o" / "a.####.exr"), frames="1-3", keyframes="1")
    node.inputs = [grade, FakeNode("Roto", "Roto1")]
    monkeypatch.setenv("VOM_EXECUTABLE", str(good))
    assert host.analyze(node, background=False).returncode == 0
    grade.pixels = b"a changed grade"
    monkeypatch.setenv("VOM_EXECUTABLE", str(looks))
    assert host.analyze(node, background=False).returncode == 0
    before, during = json.loads(seen.read_text())
    assert len([n for n in before if n.startswith(".plate.")]) == 3  # the replaced frames, kept till vom began
    assert during == []
    work = tmp_path / "o" / "a_vom"
    assert all((work / f"plate.{f:04d}.exr").read_bytes() == b"a changed grade" for f in (1, 2, 3))
    assert not [p for p in work.iterdir() if p.name.endswith(".vom-undo")]


def test_frames_written_before_a_failure_or_a_cancel_are_shown(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    """A QA pass: after a Cancel (or a failure) the message said "4 frames kept", and the node showed no matte (or an
    earlier render's): its knobs were pointed at the frames only after a finished render."""
    vom = _script(tmp_path / "vom", (
        "import json, sys\n"
        "for i in range(1, 3):\n"
        "    print(json.dumps({'event': 'frame', 'frame': i, 'done': i, 'total': 3}), flush=True)\n"
        "print(json.dumps({'event': 'error', 'message': 'plate frame 3 is damaged', 'exit_code': 2}), flush=True)\n"
        "sys.exit(2)\n"))
    monkeypatch.setenv("VOM_EXECUTABLE", str(vom))
    node = _gizmo(tmp_path, plate="/p.####.exr", frames="1-3", keyframes="1", out=str(tmp_path / "o" / "a.####.exr"))
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    result = host.analyze(node, background=False)
    assert result.returncode == 2 and result.written == [1, 2]
    assert node.children["AlphaRead"]["reload"].executed == 1 and node["alpha_file"].value().endswith("a.####.exr")
    # a failure writing to another Output leaves the node on the complete matte it shows (a review: it was swapped
    # for the few new frames and black)
    node["out"].setValue(str(tmp_path / "o2" / "b.####.exr"))
    assert host.analyze(node, background=False).returncode == 2
    assert node.children["AlphaRead"]["reload"].executed == 1 and node["alpha_file"].value().endswith("a.####.exr")


def test_missing_vom_is_a_clear_message(host: types.ModuleType, fake_nuke: types.ModuleType,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOM_EXECUTABLE", str(tmp_path / "nope"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert host.analyze(_gizmo(tmp_path), background=False) is None
    assert "install.py --nuke" in fake_nuke.messages[0]


def test_submit_farm_runs_vom_farm(host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "argv.json"
    vom = _script(tmp_path / "vom", f"import json, sys\njson.dump(sys.argv[1:], open({str(log)!r}, 'w'))\n")
    monkeypatch.setenv("VOM_EXECUTABLE", str(vom))
    node = _gizmo(tmp_path, plate="/p.####.exr", frames="1-3", keyframes="1")
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    bundle = host.submit_farm(node, chunk=5)
    work = tmp_path / "out" / "alpha_vom"
    # a frozen copy of the shot (a QA pass: the job read the work folder's shot file and rotos, which the next
    # Analyze rewrites: a roto tweaked after the job was queued reached its later chunks)
    snap = bundle.parent
    assert bundle.name == "openjd_bundle" and snap.parent == work / "farm"
    assert json.loads(log.read_text()) == ["farm", "openjd", str(snap / "shot.yaml"), "--chunk", "5", "--out",
                                           str(bundle)]
    # the button itself passes no chunk: vom farm's default, a span per task (its frames are one propagation)
    assert host.build_farm_command("vom", "s.yaml", "b") == ["vom", "farm", "openjd", "s.yaml", "--out", "b"]
    assert "deadline bundle submit" in fake_nuke.messages[0] and "bakes it again" not in fake_nuke.messages[0]
    # the command shown pastes into a shell as it is: quoted (QA: a space, a $ or a quote in the Output broke it)
    other = _gizmo(tmp_path, plate="/p.####.exr", frames="1-3", keyframes="1",
                   out=str(tmp_path / "it's $5 out" / "alpha.####.exr"))
    other.inputs = [None, FakeNode("Roto", "Roto1")]
    odd = host.submit_farm(other)
    line = next(x for x in fake_nuke.messages[-1].splitlines() if x.startswith("deadline bundle submit "))
    assert shlex.split(line) == ["deadline", "bundle", "submit", str(odd)]
    import yaml

    frozen = yaml.safe_load((snap / "shot.yaml").read_text())
    assert frozen["keyframes"] == {1: str(snap / "roto.0001.exr")} and frozen["plate"] == "/p.####.exr"
    frozen_fields = {**frozen, "keyframes": {1: str(work / "roto.0001.exr")}}
    assert (snap / "roto.0001.exr").read_bytes() == (work / "roto.0001.exr").read_bytes()
    before = (snap / "roto.0001.exr").read_bytes()
    assert os.stat(snap / "roto.0001.exr").st_ino != os.stat(work / "roto.0001.exr").st_ino  # copied: the work
    # folder's files keep their change time (a hard link changes it, and the cache fingerprints plates by it)
    (work / "new.0001.exr").write_bytes(b"a later roto")  # the next bake replaces the file (a new one renamed)
    os.replace(work / "new.0001.exr", work / "roto.0001.exr")
    assert (snap / "roto.0001.exr").read_bytes() == before != b"a later roto"
    # submitted again with the same roto: the same snapshot; with another: a new one, the first left as it was
    assert host.submit_farm(node, chunk=5) == bundle
    (work / "roto.0001.exr").write_bytes(b"tweaked")
    monkeypatch.setattr(host, "prepare_shot", lambda n: host.Prepared(work / "shot.yaml", {
        **frozen_fields, "keyframes": {1: str(work / "roto.0001.exr")}}, 0))
    again = host.submit_farm(node, chunk=5)
    assert again is not None and again != bundle and (again.parent / "roto.0001.exr").read_bytes() == b"tweaked"
    assert (snap / "roto.0001.exr").read_bytes() == before
    # a Source baked into the work folder is read where it is (not frozen): the message says so (QA: the README
    # said it was frozen with the rotos)
    monkeypatch.setattr(host, "prepare_shot", lambda n: host.Prepared(work / "shot.yaml", {
        **frozen_fields, "plate": str(work / "plate.%04d.exr")}, 0))
    assert host.submit_farm(node, chunk=5) is not None
    assert f"The job reads the Source baked in {work} (not frozen with it" in fake_nuke.messages[-1]


def test_mypy_clean_against_types_nuke(repo: Path) -> None:
    mypy = Path(sys.executable).parent / "mypy"
    if not mypy.exists():
        pytest.skip("mypy not installed")
    import subprocess

    env = {**os.environ, "MYPY_CACHE_DIR": str(repo / ".mypy_cache")}
    # this file, not the package it sits in (whose public names lead a type checker into the engine)
    r = subprocess.run([str(mypy), "--follow-imports=silent", "vom_plugin/host/nuke.py"], cwd=repo,
                       capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_real_vom_render_error_reaches_the_artist(host: types.ModuleType, tmp_path: Path) -> None:
    """The adapter against the real `vom render --progress json`: a bad shot ends with exit 2 and vom's message."""
    vom = Path(sys.executable).parent / "vom"
    if not vom.exists():
        pytest.skip("vom is not installed in this environment")
    fields = host.shot_fields({}, plate=str(tmp_path / "nope" / "plate.####.exr"), frames="1-3",
                              keyframes={1: str(tmp_path / "roto.0001.exr")}, out=str(tmp_path / "o.####.exr"))
    shot = host.write_text_atomic(tmp_path / "shot.yaml", host.shot_yaml(fields))
    r = host.run_with_progress(host.build_render_command(str(vom), shot), Task(), poll_s=0.05)
    assert r.returncode == 2 and not r.cancelled
    assert any("plate" in line and str(tmp_path / "nope") in line for line in r.output_tail), r.output_tail
    assert sum(str(tmp_path / "nope") in line for line in r.output_tail) == 1, r.output_tail  # said once


def test_prepare_shot_with_objects_renders_each_objects_layer(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                              tmp_path: Path) -> None:
    """The objects knob: one line per object (its layer in the Roto input, then its frames); the shot file
    holds every object's rotos and loads as a Shot with those objects."""
    from vom_plugin.engine.shot import Shot

    read = FakeNode("Read", "Read1", {"file": "/plates/sh010.%04d.exr", "first": 1001, "last": 1024})
    node = _gizmo(tmp_path, keyframes="", objects="hero 1001 1012\n\ndog, 1005\n", mask_channel="mask")
    node.inputs = [read, FakeNode("Roto", "Roto1")]
    shot_file, fields = _prepared(host, node)
    work = shot_file.parent
    loaded = yaml.safe_load(shot_file.read_text())
    assert "keyframes" not in loaded and loaded["mask_channel"] == "mask"
    hero = {f: str(work / f"roto_hero.{f}.exr") for f in (1001, 1012)}
    assert loaded["objects"] == {"hero": hero, "dog": {1005: str(work / "roto_dog.1005.exr")}}
    assert [(c, f) for c, _, f, _ in fake_nuke.renders] == [("hero", 1001), ("hero", 1012), ("dog", 1005)]
    shot = Shot.from_yaml(shot_file)
    assert list(shot.objects) == ["hero", "dog"] and shot.keyframes == {}
    # the node shows the first object's alpha
    host._reload_alpha(node, fields, 1001, 1024)
    assert node.node("CopyAlpha")["from0"].value() == "hero.alpha"


@pytest.mark.parametrize("knobs,needle", [  # the node and the knobs' labels, as other knob errors say them (QA)
    ({"keyframes": "", "objects": "hero-1 1001"}, "^VOM_Matte1: Objects, line 1: 'hero-1' is not a layer name"),
    ({"keyframes": "", "objects": "hero 1001\nHero 1002"}, "^VOM_Matte1: Objects, line 2: 'Hero' is given twice"),
    ({"keyframes": "", "objects": "hero"}, r"^VOM_Matte1: Objects, line 1 \(hero\): frames: empty"),
    ({"keyframes": "1001", "objects": "hero 1001"}, "^VOM_Matte1: Keyframes and Objects are both set"),
    ({"keyframes": "1001.5"}, r"^VOM_Matte1: Keyframes: '1001\.5' is not a frame number"),
    ({"frames": "abc"}, r"^VOM_Matte1: Frame range 'abc': expected a range such as 1-100"),
    ({"channel": "vom-x.A"}, r"^VOM_Matte1: Output channel 'vom-x\.A': Nuke reads a layer name"),
    ({"cache": "[getenv NO_SUCH_VOM_VAR]/c"}, r"^VOM_Matte1: Cache folder: '\[getenv NO_SUCH_VOM_VAR\]/c' could not"),
])
def test_objects_knob_errors_name_the_line(host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path,
                                           knobs: dict[str, str], needle: str) -> None:
    node = _gizmo(tmp_path, plate="/p.####.exr", **knobs)
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    with pytest.raises(host.HostError, match=needle):
        host.prepare_shot(node)


def test_an_object_whose_layer_the_roto_input_lacks_is_refused(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                                 tmp_path: Path) -> None:
    """A QA pass: objects were baked from a layer the Roto input does not have (a typo: Hero for hero), and the
    render went on from that."""
    node = _gizmo(tmp_path, plate="/p.####.exr", keyframes="", objects="Hero 1001")
    roto = FakeNode("Roto", "Roto1")
    roto.channels = lambda: ["rgba.red", "rgba.alpha", "hero.alpha"]  # type: ignore[attr-defined]
    node.inputs = [None, roto]
    with pytest.raises(host.HostError, match=r"^VOM_Matte1: Objects: the Roto input has no layer Hero \(its layers: "
                                             r"hero, rgba\)"):
        host.prepare_shot(node)
    node["objects"].setValue("dog 1001")  # a layer is what comes before the last dot: dog.b.alpha is dog.b's (review)
    roto.channels = lambda: ["rgba.alpha", "dog.b.alpha"]  # type: ignore[attr-defined]
    with pytest.raises(host.HostError, match=r"no layer dog \(its layers: dog\.b, rgba\)"):
        host.prepare_shot(node)


def test_a_failure_names_the_roto_input_for_the_roto_files_analyze_rendered(host: types.ModuleType) -> None:
    fields = {"keyframes": {1001: "/w/VOM_Matte1_vom/roto.1001.exr"},
              "objects": {"dog": {1040: "/w/VOM_Matte1_vom/roto_dog.1040.exr"}}}
    text = host._name_rendered_rotos("error: roto /w/VOM_Matte1_vom/roto.1001.exr is empty (no pixel above 0.5)\n"
                                     "error: roto /w/VOM_Matte1_vom/roto_dog.1040.exr is empty", fields)
    assert "roto.1001.exr (the Roto input at frame 1001) is empty" in text
    assert "roto_dog.1040.exr (the Roto input at frame 1040, layer dog) is empty" in text
    # once a line: OpenImageIO's own error repeats the path (a QA pass: the note came twice)
    twice = host._name_rendered_rotos("error: roto /w/VOM_Matte1_vom/roto.1001.exr cannot be read: EXR Error "
                                      "(/w/VOM_Matte1_vom/roto.1001.exr): EXR_ERR_READ_IO", fields)
    assert twice.count("(the Roto input at frame 1001)") == 1


def test_a_damaged_exr_header_is_not_read_past_or_looped_over(host: types.ModuleType) -> None:
    attr = b"name\0string\0" + (-40).to_bytes(4, "little", signed=True)  # a size that points backwards
    assert host._common.exr_header(b"\x76\x2f\x31\x01\x02\0\0\0" + attr + b"x" * 64) is None
    big = b"name\0string\0" + (10**6).to_bytes(4, "little", signed=True)  # past the end
    assert host._common.exr_header(b"\x76\x2f\x31\x01\x02\0\0\0" + big + b"x" * 64) is None


def test_progress_follows_the_steps_when_vom_reports_them(host: types.ModuleType) -> None:
    """Between two keyframes frames come in a burst at the end: the bar moves with the steps instead."""
    step = host.parse_progress('{"event": "step", "frames_done": 0, "steps_done": 12, "steps_total": 48, '
                               '"steps_cached": 0}')
    assert step.percent == 25 and step.message == ""  # moves the bar, says nothing of its own
    frame = host.parse_progress('{"event": "frame", "frame": 7, "done": 1, "total": 24, "steps_done": 36, '
                                '"steps_total": 48, "steps_cached": 0}')
    assert frame.percent == 75 and frame.message == "frame 7 (1/24)"


def test_an_unchanged_roto_keeps_its_file_so_a_second_analyze_reads_every_step_back(
        host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path) -> None:
    """The roto is rendered at its keyframes on every Analyze; a new file (a new modification time) made vom's cache
    take it for another roto and compute every step again."""
    node = _gizmo(tmp_path, plate="/plates/sh010.####.exr", keyframes="1001")
    roto = FakeNode("Roto", "Roto1")
    node.inputs = [FakeNode("Read", "Read1", {"file": "/plates/sh010.%04d.exr", "first": 1001, "last": 1024}), roto]
    roto.pixels = b"roto drawn"
    _, fields = _prepared(host, node)
    path = Path(fields["keyframes"][1001])
    first = (path.stat().st_ino, path.stat().st_mtime_ns)
    host.prepare_shot(node)
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == first
    roto.pixels = b"roto moved"
    host.prepare_shot(node)
    assert path.read_bytes() == b"roto moved"


def test_a_cancelled_bake_leaves_no_new_files(host: types.ModuleType, fake_nuke: types.ModuleType,
                                              tmp_path: Path) -> None:
    real = fake_nuke.execute

    def cancelled_on_the_second(node: FakeNode, first: int, last: int) -> None:
        if first == 2:
            raise RuntimeError("Cancelled")
        real(node, first, last)

    fake_nuke.execute = cancelled_on_the_second
    pattern = str(tmp_path / "w" / "plate.%04d.exr")
    # a cancel in Nuke's render progress is a message for the artist, not a Python traceback
    with pytest.raises(host.HostError, match="Source: rendering frame 2 stopped: Cancelled"):
        host._bake(FakeNode("Grade", "Grade1"), pattern, range(1, 4), "Source")
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == []
    assert fake_nuke.context == ["VOM_Matte1"] and len(fake_nuke.deleted) == 1  # back in the gizmo, Write gone


def test_the_render_runs_without_nukes_python_settings(host: types.ModuleType, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Nuke's PYTHONHOME (and a PYTHONPATH made for its Python) made vom's Python fail to start: exit 1 on every
    Analyze ("No module named 'encodings'")."""
    monkeypatch.setenv("PYTHONHOME", "/opt/Nuke15.1v1")
    monkeypatch.setenv("PYTHONPATH", "/opt/Nuke15.1v1/plugins")
    vom = _script(tmp_path / "vom", "import json, os\nprint(json.dumps({'event': 'start', 'message': "
                                    "repr((os.environ.get('PYTHONHOME'), os.environ.get('PYTHONPATH')))}))\n")
    r = host.run_with_progress([str(vom)], Task(), poll_s=0.01)
    assert r.returncode == 0 and r.last.message == "(None, None)"


def test_read_offsets(host: types.ModuleType) -> None:
    assert host.read_offset("start at", "", 1001) == 0  # no retime
    assert host.read_offset("start at", "1", 1001) == -1000  # file 1001 at script frame 1
    assert host.read_offset("offset", "-1000", 1001) == -1000
    assert host.read_offset("expression", "frame+1000", 1001) == -1000  # file frame = script frame + 1000
    assert host.read_offset("expression", "frame - 10", 1) == 10
    assert host.read_offset("expression", "frame", 1) == 0
    assert host.read_offset("expression", "frame*2", 1) is None  # a retime: baked
    assert host.read_offset("start at", "1.5", 1) is None
    assert host.shift_range("1-24x2, 30 40-41", 1000) == "1001-1024x2,1030,1040-1041"
    assert host.shift_range("-3--1", 3) == "0-2"
    assert host.shift_range("1-5:2", 10) == "11-15x2"  # ':' is read as a step, as vom reads it
    with pytest.raises(host.HostError, match="Frame range '5-1': 5-1 ends before it starts"):
        host.shift_range("5-1", 0)


def test_a_read_that_starts_at_another_frame_maps_script_frames_to_file_frames(
        host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path) -> None:
    """A Read of files 1001-1024 set to start at frame 1: the artist's keyframe 5 is file frame 1005 (vom said frame
    5 is not a frame of the plate), and the node shows file frame 1005 at script frame 5."""
    read = FakeNode("Read", "Read1", {"file": "/plates/sh010.%04d.exr", "first": 1001, "last": 1024,
                                      "frame_mode": "start at", "frame": "1"})
    node = _gizmo(tmp_path, keyframes="5", frames="3-10")
    node.inputs = [read, FakeNode("Roto", "Roto1")]
    prepared = host.prepare_shot(node)
    assert prepared.offset == -1000
    assert prepared.fields["frames"] == "1003-1010"
    work = prepared.shot_file.parent
    assert prepared.fields["keyframes"] == {1005: str(work / "roto.0005.exr")}
    assert [(src, f) for _, src, f, _ in fake_nuke.renders] == [("Roto1", 5)]  # drawn at the script frame
    node.knobs["frames"].setValue("")
    assert host.prepare_shot(node).fields["frames"] == "1001-1024"  # the Read's whole range
    host._reload_alpha(node, prepared.fields, 1003, 1010, prepared.offset)
    assert (node["alpha_first"].value(), node["alpha_last"].value(), node["alpha_offset"].value()) == (1003, 1010,
                                                                                                        -1000)
    read.knobs["frame_mode"].setValue("expression")
    read.knobs["frame"].setValue("frame*2")  # a retime vom cannot follow: the Source is baked instead
    fake_nuke.renders.clear()
    prepared = host.prepare_shot(node)
    assert prepared.offset == 0 and prepared.fields["plate"] == str(work / "plate.%04d.exr")
    assert [f for c, _, f, _ in fake_nuke.renders if c == "rgb"] == list(range(1, 25))


def test_proxy_mode_reads_and_bakes_at_full_resolution(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                       tmp_path: Path) -> None:
    fake_nuke.root_node.knobs["proxy"] = FakeKnob(True)
    fake_nuke.filename = lambda node, *a: (node["proxy"].value() if fake_nuke.root_node["proxy"].value()
                                           else node["file"].value())
    read = FakeNode("Read", "Read1", {"file": "/plates/full.%04d.exr", "proxy": "/plates/half.%04d.exr",
                                      "first": 1, "last": 4})
    node = _gizmo(tmp_path, keyframes="1")
    node.inputs = [read, FakeNode("Roto", "Roto1")]
    assert host.prepare_shot(node).fields["plate"] == "/plates/full.%04d.exr"
    assert fake_nuke.proxy_at_render == [False]  # the roto rendered at full resolution
    assert fake_nuke.root_node["proxy"].value() is True  # and the artist's proxy mode back on


def test_output_plate_and_cache_paths_are_read_as_nuke_reads_them(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                                  tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Tcl in a path knob was used as text (a folder named "[value root.name]" made), and a relative Output was read
    from the shot file's folder by vom (the matte landed in .../VOM_Matte1_vom/vom/) and from Nuke's by the node."""
    script = tmp_path / "comp" / "sh010_v001.nk"
    fake_nuke.root_node = FakeRoot(fake_nuke, str(script))
    monkeypatch.setenv("SHOW_ROOT", str(tmp_path / "show"))
    node = _gizmo(tmp_path, plate="plates/p.####.exr", out="[getenv SHOW_ROOT]/vom/a.####.exr", cache="cache")
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    fields = host.prepare_shot(node).fields
    assert fields["out"] == str(tmp_path / "show" / "vom" / "a.####.exr")
    assert fields["plate"] == str(tmp_path / "comp" / "plates" / "p.####.exr")  # from the script's folder
    assert fields["cache"] == str(tmp_path / "comp" / "cache")
    fake_nuke.root_node.knobs["project_directory"] = FakeKnob(str(tmp_path / "project"))
    assert host.prepare_shot(node).fields["plate"] == str(tmp_path / "project" / "plates" / "p.####.exr")
    # a script from another OS: its project directory is mapped by the studio's filter too (QA: Z:/... was joined
    # to the mapped folder as a folder named Z:)
    fake_nuke.root_node.knobs["project_directory"] = FakeKnob("Z:/shows/x")
    monkeypatch.setattr(fake_nuke, "callbacks", types.SimpleNamespace(
        filenameFilter=lambda p: p.replace("Z:/shows", str(tmp_path / "shows"))), raising=False)
    assert host.prepare_shot(node).fields["plate"] == str(tmp_path / "shows" / "x" / "plates" / "p.####.exr")
    monkeypatch.delattr(fake_nuke, "callbacks", raising=False)
    fake_nuke.root_node.knobs["project_directory"] = FakeKnob(str(tmp_path / "project"))
    node.knobs["out"].setValue("[getenv NO_SUCH_VOM_VAR]/a.####.exr")
    with pytest.raises(host.HostError, match=r"VOM_Matte1: Output: '\[getenv NO_SUCH_VOM_VAR\]/a.####.exr' could not "
                                             r"be evaluated"):
        host.prepare_shot(node)
    # a shell-style $SHOW_ROOT, which Nuke leaves as it is: refused (it made a folder named $SHOW_ROOT) unless the
    # studio's filename filter expands it, as it does for Nuke's own Reads
    node.knobs["out"].setValue("$SHOW_ROOT/vom/a.$F4.exr")
    with pytest.raises(host.HostError, match=r"Output: '\$SHOW_ROOT/vom/a\.\$F4\.exr' holds \$SHOW_ROOT, which Nuke "
                                             r"does not expand in this path; write \[getenv SHOW_ROOT\] instead"):
        host.prepare_shot(node)
    node.knobs["out"].setValue("$env(SHOW_ROOT)/vom/a.####.exr")  # Tcl's spelling, which Nuke does not read here
    with pytest.raises(host.HostError, match=r"holds \$SHOW_ROOT, .*write \[getenv SHOW_ROOT\] instead"):
        host.prepare_shot(node)
    node.knobs["out"].setValue("$SHOW_ROOT/vom/a.$F4.exr")
    monkeypatch.setattr(fake_nuke, "callbacks", types.SimpleNamespace(filenameFilter=os.path.expandvars),
                        raising=False)
    assert host.prepare_shot(node).fields["out"] == str(tmp_path / "show" / "vom" / "a.$F4.exr")
    monkeypatch.delattr(fake_nuke, "callbacks", raising=False)
    # a .. after a link as Nuke's Read reads it (the link's target's parent): collapsed as text, vom was given
    # another folder than the one the comp's Read loads (QA)
    (tmp_path / "plates" / "sub").mkdir(parents=True)
    (tmp_path / "sl").symlink_to(tmp_path / "plates" / "sub")
    node.knobs["out"].setValue(str(tmp_path / "sl" / ".." / "vom" / "a.####.exr"))
    assert host.prepare_shot(node).fields["out"] == str(tmp_path / "plates" / "vom" / "a.####.exr")
    fake_nuke.root_node = FakeRoot(fake_nuke, "Root")
    node.knobs["out"].setValue("vom/a.####.exr")
    with pytest.raises(host.HostError, match="relative path, and the script is neither saved"):
        host.prepare_shot(node)


@pytest.mark.parametrize(("name", "config", "want"), [
    ("default (linear)", "nuke-default", "lin_rec709"), ("linear", "", "lin_rec709"),
    ("ACES - ACEScg", "aces_1.2", "ACEScg"), ("ACEScg", "fn-nuke_cg-config-v1.0.0_aces-v1.3_ocio-v2.1", "ACEScg"),
    ("default (scene_linear)", "fn-nuke_cg-config-v1.0.0_aces-v1.3_ocio-v2.1", "ACEScg"),
    ("scene_linear", "nuke-default", "lin_rec709"), ("sRGB", "nuke-default", "sRGB"),
    ("Output - sRGB", "aces_1.2", "sRGB"), ("Utility - Raw", "aces_1.2", "raw"),
    ("Cineon", "nuke-default", None), ("AlexaV3LogC", "nuke-default", None), ("scene_linear", "studio", None),
    ("reference", "nuke-default", "lin_rec709"), ("reference", "aces_1.2", "ACES2065-1"),
    ("ACES - ACES2065-1", "aces_1.2", "ACES2065-1"), ("ACES2065-1", "studio", "ACES2065-1"),
    ("reference", "studio", None),
    ("scene_linear", "/studio/ocio/aces_1.3/config.ocio", "ACEScg"),
    ("scene_linear", "/jobs/workspaces/show/config.ocio", None),  # "workspaces" is no ACES config
    ("lin_ap1_scene", "studio", "ACEScg"), ("srgb_tx", "studio", "sRGB"), ("lin_rec709_scene", "", "lin_rec709")])
def test_nuke_colour_spaces(host: types.ModuleType, name: str, config: str, want: str | None) -> None:
    assert host.vom_colour_space(name, config) == want


def test_the_nukes_colour_names_hold_every_spelling_vom_reads_in_headers(host: types.ModuleType) -> None:
    """QA: 17 spellings that vom reads in a plate's header (linear_ap1, ACEScg AP1, linear_srgb...) were no colour
    space to the Nuke node (the adapter cannot import vom's table: it runs in Nuke's Python)."""
    from vom_plugin.io import color

    missing = {k: v for k, v in color._DECLARED.items() if host._COLOUR_SPACES.get(k) != v}
    assert not missing, missing


def test_a_studio_configs_roles_and_names_are_read_from_the_config(host: types.ModuleType, tmp_path: Path) -> None:
    """QA: scene_linear of a studio config at an ordinary path, or of OCIO's built-in ACES configs by URI, was a space
    vom "cannot name" (a bake then refused with 'untick from Nuke'): the config itself says what the role is."""
    pytest.importorskip("PyOpenColorIO")
    config = tmp_path / "studio.ocio"
    config.write_text("""ocio_profile_version: 2
roles:
  scene_linear: Show Linear
  reference: Show Linear
  color_picking: Show sRGB
  default: Show Linear
displays: {}
colorspaces:
  - !<ColorSpace>
    name: Show Linear
    aliases: [lin_ap1_scene]
    isdata: false
  - !<ColorSpace>
    name: Show sRGB
    aliases: [srgb_tx]
    isdata: false
  - !<ColorSpace>
    name: Show Log
    isdata: false
""")
    assert host.vom_colour_space("scene_linear", str(config)) == "ACEScg"
    assert host.vom_colour_space("default (scene_linear)", str(config)) == "ACEScg"
    assert host.vom_colour_space("Show sRGB", str(config)) == "sRGB"
    assert host.vom_colour_space("Show Log", str(config)) is None  # a space vom has no name for: baked, as before
    assert host.vom_colour_space("scene_linear", "ocio://studio-config-latest") == "ACEScg"
    assert host.vom_colour_space("scene_linear", str(tmp_path / "gone.ocio")) is None


def test_a_config_files_own_word_comes_before_the_guess_from_its_path(host: types.ModuleType,
                                                                     tmp_path: Path) -> None:
    """Review: the config was asked only where the table or the word "aces" in its path said nothing, so a show's
    config at /shows/aces_show/ whose scene_linear is linear Rec.709 was read as ACEScg, and a space the config's
    author gave an interop ID was read by its name. The config first (interop ID, name, aliases), the guess after."""
    ocio = pytest.importorskip("PyOpenColorIO")
    folder = tmp_path / "aces_show"
    folder.mkdir()
    config = folder / "config.ocio"
    interop = hasattr(ocio.ColorSpace, "getInteropID")
    config.write_text(f"""ocio_profile_version: {"2.5" if interop else "2"}
roles:
  scene_linear: Show Linear
  default: Show Linear
displays: {{}}
colorspaces:
  - !<ColorSpace>
    name: Show Linear
    aliases: [lin_rec709_scene]
    isdata: false
  - !<ColorSpace>
    name: Linear
    {"interop_id: lin_ap1_scene" if interop else "aliases: []"}
    isdata: false
  - !<ColorSpace>
    name: Show Log
    isdata: false
""")
    assert host.vom_colour_space("scene_linear", str(config)) == "lin_rec709"  # the guess said ACEScg
    assert host.vom_colour_space("default (scene_linear)", str(config)) == "lin_rec709"
    if interop:  # the config's author said what its "Linear" is: ACEScg, not the table's linear Rec.709
        assert host.vom_colour_space("Linear", str(config)) == "ACEScg"
    assert host.vom_colour_space("Show Log", str(config)) is None
    assert host.vom_colour_space("reference", str(config)) == "ACES2065-1"  # no such role there: the guess
    # a bare "linear" (no interop ID, no alias saying which) is itself a guess: a studio's may be AP1; the path's word
    # decides then, as before (second review: read as linear Rec.709 without a word)
    vague = folder / "vague.ocio"
    vague.write_text("""ocio_profile_version: 2
roles:
  scene_linear: linear
  default: linear
displays: {}
colorspaces:
  - !<ColorSpace>
    name: linear
    isdata: false
""")
    assert host.vom_colour_space("scene_linear", str(vague)) == "ACEScg"


def _fake_ocio_20(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A PyOpenColorIO as Nuke 13 ships it (OCIO 2.0): no aliases, no interop IDs; the paths it loads are listed."""
    loads: list[str] = []

    class Space:
        def __init__(self, name: str) -> None:
            self.name = name

        def getName(self) -> str:
            return self.name

    class Config:
        @staticmethod
        def CreateFromFile(path: str) -> Config:
            loads.append(path)
            if Path(path).read_text().startswith("broken"):
                raise RuntimeError(f"Error: Loading the OCIO profile '{path}' failed. yaml-cpp: error at line 3")
            return Config()

        def getColorSpace(self, name: str) -> Space | None:
            return {"hero_plate": Space("ACES - ACEScg"), "scene_linear": Space("Show Working"),
                    "Show Working": Space("Show Working")}.get(name)

    monkeypatch.setitem(sys.modules, "PyOpenColorIO", types.SimpleNamespace(Config=Config))
    return loads


def test_a_config_is_read_with_an_ocio_that_has_no_aliases_and_once_while_unchanged(
        host: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review: ColorSpace.getAliases (OCIO 2.1) was called unguarded, so under Nuke 13's OCIO 2.0 a Read's colour space
    outside the table failed Analyze with an AttributeError; and the config was parsed again at every call."""
    loads = _fake_ocio_20(monkeypatch)
    config = tmp_path / "studio.ocio"
    config.write_text("ocio_profile_version: 2\n")
    assert host.vom_colour_space("hero_plate", str(config)) == "ACEScg"
    assert host.vom_colour_space("Show Working", str(config)) is None  # nothing vom can name: baked, as before
    assert host.vom_colour_space("scene_linear", str(config)) is None
    assert loads == [str(config)]  # parsed once
    st = config.stat()
    os.utime(config, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the show's config edited: read again
    assert host.vom_colour_space("hero_plate", str(config)) == "ACEScg"
    assert loads == [str(config)] * 2
    assert host.vom_colour_space("scene_linear", "aces_1.2") == "ACEScg" and len(loads) == 2  # a name: no file
    # a config that did not load is asked again (being written, an NFS hiccup: second review), not failed for good
    good = "ocio_profile_version: 2\n"
    config.write_text("broken: [".ljust(len(good) - 1) + "\n")  # the same size
    st = config.stat()
    assert host.vom_colour_space("hero_plate", str(config)) is None
    config.write_text(good)
    os.utime(config, ns=(st.st_atime_ns, st.st_mtime_ns))  # and time: a whole-second file system's, say
    assert host.vom_colour_space("hero_plate", str(config)) == "ACEScg"


def test_a_config_that_does_not_load_is_named_in_the_refusal(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review: a studio config with a YAML error made the working space one vom "cannot name", without a word of the
    config: the refusal says which config did not load, and OCIO's own error."""
    _fake_ocio_20(monkeypatch)
    config = tmp_path / "studio.ocio"
    config.write_text("broken: [\n")
    fake_nuke.root_node.knobs.update({"colorManagement": FakeKnob("OCIO"), "OCIO_config": FakeKnob("custom"),
                                      "customOCIOConfigPath": FakeKnob(str(config)),
                                      "workingSpaceLUT": FakeKnob("scene_linear")})
    node = _gizmo(tmp_path, keyframes="1", colorspace_from_nuke=True)
    node.inputs = [FakeNode("Grade", "Grade1"), FakeNode("Roto", "Roto1")]
    with pytest.raises(host.HostError) as e:
        host.prepare_shot(node)
    assert str(e.value) == (
        f"VOM_Matte1: the Source is rendered in the working space 'scene_linear', which vom cannot name (its OCIO "
        f"config {config} did not load: Error: Loading the OCIO profile '{config}' failed. yaml-cpp: error at line 3);"
        f" untick 'from Nuke' and set Input colour space to what it is")
    assert not fake_nuke.renders  # refused before any bake


def test_the_plates_colour_space_comes_from_nuke_unless_the_knob_is_set(host: types.ModuleType,
                                                                        fake_nuke: types.ModuleType,
                                                                        tmp_path: Path) -> None:
    """Input colour space stayed at its default (ACEScg) for a nuke-default plate (linear Rec.709), and for a bake
    in Nuke's working space: every colour went through the wrong matrix."""
    fake_nuke.root_node.knobs.update({"colorManagement": FakeKnob("Nuke"), "workingSpaceLUT": FakeKnob("linear")})
    read = FakeNode("Read", "Read1", {"file": "/plates/p.%04d.exr", "first": 1, "last": 4,
                                      "colorspace": "default (linear)"})
    node = _gizmo(tmp_path, keyframes="1", colorspace_from_nuke=True)
    node.inputs = [read, FakeNode("Roto", "Roto1")]
    assert host.prepare_shot(node).fields["colorspace"] == "lin_rec709"
    read.knobs["colorspace"].setValue("Cineon")  # no vom equivalent: Nuke converts it to the working space
    fields = host.prepare_shot(node).fields
    assert fields["plate"].endswith("plate.%04d.exr") and fields["colorspace"] == "lin_rec709"
    # baked over the Read's frames (1-4), not the script's (1-24)
    assert fields["frames"] == "1-4" and [f for c, _, f, _ in fake_nuke.renders if c == "rgb"] == [1, 2, 3, 4]
    fake_nuke.root_node.knobs.update({"colorManagement": FakeKnob("OCIO"), "OCIO_config": FakeKnob("aces_1.2"),
                                      "workingSpaceLUT": FakeKnob("ACES - ACEScg")})
    assert host.prepare_shot(node).fields["colorspace"] == "ACEScg"
    fake_nuke.root_node.knobs["workingSpaceLUT"] = FakeKnob("studio_working_space")
    with pytest.raises(host.HostError, match="working space 'studio_working_space', which vom cannot name; untick "
                                             "'from Nuke' and set Input colour space"):
        host.prepare_shot(node)
    node.knobs["colorspace_from_nuke"].setValue(False)  # the artist's choice, whatever Nuke says (ACEScg too)
    node.knobs["colorspace"].setValue("ACEScg")
    fake_nuke.root_node.knobs["workingSpaceLUT"] = FakeKnob("linear")
    assert host.prepare_shot(node).fields["colorspace"] == "ACEScg"
    # "Raw data" ticked: the file's values pass through as the working space, whatever the greyed-out knob says
    node.knobs["colorspace_from_nuke"].setValue(True)
    fake_nuke.root_node.knobs.update({"colorManagement": FakeKnob("Nuke"), "workingSpaceLUT": FakeKnob("linear")})
    read.knobs["colorspace"].setValue("sRGB")
    read.knobs["raw"] = FakeKnob(True)
    fields = host.prepare_shot(node).fields
    assert fields["colorspace"] == "lin_rec709" and fields["plate"] == "/plates/p.%04d.exr"  # the Read's own files
    # a Plate typed by hand with 'from Nuke' ticked: no Read says what the file holds (it was read as the knob's
    # ACEScg, without a word, where the same plate through a Read was lin_rec709: QA)
    node.knobs["plate"].setValue("/plates/p.%04d.exr")
    with pytest.raises(host.HostError, match=r"VOM_Matte1: Plate is typed by hand \(/plates/p\.%04d\.exr\) and "
                                             r"Colour space 'from Nuke' is ticked, but no Read says what the file"):
        host.prepare_shot(node)
    node.knobs["colorspace_from_nuke"].setValue(False)
    assert host.prepare_shot(node).fields["colorspace"] == "ACEScg"  # the knob's, chosen


@pytest.mark.parametrize(("config", "working", "raw_name", "want"), [
    ("Nuke", "linear", "raw", "lin_rec709"), ("aces_1.2", "ACES - ACEScg", "Utility - Raw", "ACEScg")])
def test_a_read_in_the_raw_colour_space_is_read_as_its_raw_data_box(
        host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path, config: str, working: str,
        raw_name: str, want: str) -> None:
    """In Nuke a Read whose colour space is raw (Utility - Raw) and one with "Raw data" ticked both pass the file's
    values through as the working space; the box was read so, the colour space as vom's raw (code values, read as
    display-referred), and the one plate got two mattes (QA). Both are the working space now."""
    fake_nuke.root_node.knobs.update({"colorManagement": FakeKnob("Nuke" if config == "Nuke" else "OCIO"),
                                      "OCIO_config": FakeKnob(config), "workingSpaceLUT": FakeKnob(working)})
    read = FakeNode("Read", "Read1", {"file": "/plates/p.%04d.exr", "first": 1, "last": 4, "raw": True,
                                      "colorspace": working})
    node = _gizmo(tmp_path, keyframes="1", colorspace_from_nuke=True)
    node.inputs = [read, FakeNode("Roto", "Roto1")]
    ticked = host.prepare_shot(node).fields
    read.knobs.update({"raw": FakeKnob(False), "colorspace": FakeKnob(raw_name)})
    named = host.prepare_shot(node).fields
    assert ticked == named and named["colorspace"] == want and named["plate"] == "/plates/p.%04d.exr"
    # a working space vom cannot name: both baked alike (in it, which vom is told cannot be named)
    fake_nuke.root_node.knobs["workingSpaceLUT"] = FakeKnob("studio_working_space")
    with pytest.raises(host.HostError, match="working space 'studio_working_space', which vom cannot name"):
        host.prepare_shot(node)


def test_a_roto_input_without_alpha_is_baked_as_rgb(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                    tmp_path: Path) -> None:
    """A Write fills a missing alpha with 0: vom saw an empty roto. Without alpha vom reads the roto's luminance."""
    roto = FakeNode("Constant", "Matte1")
    roto.channels = lambda: ["rgba.red", "rgba.green", "rgba.blue"]  # type: ignore[attr-defined]
    node = _gizmo(tmp_path, plate="/p.####.exr", keyframes="1")
    node.inputs = [None, roto]
    host.prepare_shot(node)
    assert [c for c, *_ in fake_nuke.renders] == ["rgb"]
    roto.channels = lambda: ["rgba.red", "rgba.green", "rgba.blue", "rgba.alpha"]  # type: ignore[attr-defined]
    fake_nuke.renders.clear()
    host.prepare_shot(node)
    assert [c for c, *_ in fake_nuke.renders] == ["alpha"]
    # a RotoPaint drawn into the mask layer and no alpha: its mask (black RGB was baked, an empty roto)
    roto.channels = lambda: ["rgba.red", "rgba.green", "rgba.blue", "mask.a"]  # type: ignore[attr-defined]
    fake_nuke.renders.clear()
    host.prepare_shot(node)
    assert [c for c, *_ in fake_nuke.renders] == ["mask"]


def test_a_vom_that_cannot_start_is_a_message(host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A vom script whose environment was moved: Popen raised in the Analyze thread, and the artist saw nothing."""
    vom = tmp_path / "vom"
    vom.write_text("#!/nonexistent/venv/bin/python\n")
    vom.chmod(0o755)
    monkeypatch.setenv("VOM_EXECUTABLE", str(vom))
    node = _gizmo(tmp_path, plate="/p.####.exr", keyframes="1")
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    assert host.analyze(node, background=False) is None
    assert len(fake_nuke.messages) == 1 and "could not be started" in fake_nuke.messages[0]
    assert "install.py --nuke" in fake_nuke.messages[0]


def test_a_vom_node_inside_a_group_bakes_in_that_group(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                       tmp_path: Path) -> None:
    """The Write that renders the roto was made in the root: a VOM Matte inside a Group could not connect it to its
    own inputs (Nuke links no nodes across groups), and no Analyze worked there."""
    fake_nuke.groups["Group1"] = fake_nuke.FakeGroup("Group", "Group1")
    roto = FakeNode("Roto", "Roto1")
    roto.group = "Group1"
    node = _gizmo(tmp_path, plate="/p.####.exr", keyframes="1")
    node.group = "Group1"
    node.inputs = [None, roto]
    host.prepare_shot(node)  # the fake Write checks it was made in Group1
    assert [src for _, src, _, _ in fake_nuke.renders] == ["Roto1"] and fake_nuke.context == ["VOM_Matte1"]


def test_submit_to_farm_points_the_node_at_the_frames_the_farm_writes(host: types.ModuleType,
                                                                      fake_nuke: types.ModuleType, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    vom = _script(tmp_path / "vom", "import sys\n")
    monkeypatch.setenv("VOM_EXECUTABLE", str(vom))
    read = FakeNode("Read", "Read1", {"file": "/plates/sh010.%04d.exr", "first": 1001, "last": 1024,
                                      "frame_mode": "offset", "frame": "-1000"})
    node = _gizmo(tmp_path, keyframes="5", channel="vom.A")
    node.inputs = [read, FakeNode("Roto", "Roto1")]
    assert host.submit_farm(node) is not None
    assert node["alpha_file"].value() == str(tmp_path / "out" / "alpha.####.exr")
    assert (node["alpha_first"].value(), node["alpha_last"].value(), node["alpha_offset"].value()) == (1001, 1024,
                                                                                                        -1000)
    assert node.children["CopyAlpha"]["from0"].value() == "vom.alpha"
    # an {object} Output: the message names the file the node reads, the first object's (QA: it named the pattern)
    fake_nuke.messages.clear()
    node = _gizmo(tmp_path, keyframes="", objects="hero 5\ndog 6", out=str(tmp_path / "objs" / "{object}.####.exr"))
    roto = FakeNode("Roto", "Roto2")
    roto.channels = lambda: ["rgba.alpha", "hero.alpha", "dog.alpha"]  # type: ignore[attr-defined]
    node.inputs = [read, roto]
    assert host.submit_farm(node) is not None
    said = fake_nuke.messages[-1]
    assert f"The node now reads {tmp_path / 'objs' / 'hero.####.exr'} (the other objects' in " \
           f"{tmp_path / 'objs' / '{object}.####.exr'}): black where" in said, said


def test_a_plate_given_by_hand_keeps_its_own_frame_numbers(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                            tmp_path: Path) -> None:
    """A Plate given by hand may be numbered otherwise than the Source's Read (a denoised plate rendered at script
    frames): its frames are its own, not shifted by the Read's offset."""
    read = FakeNode("Read", "Read1", {"file": "/plates/sh010.%04d.exr", "first": 1001, "last": 1024,
                                      "frame_mode": "start at", "frame": "1"})
    node = _gizmo(tmp_path, plate="/plates/denoised/sh010.####.exr", keyframes="5", frames="1-24")
    node.inputs = [read, FakeNode("Roto", "Roto1")]
    prepared = host.prepare_shot(node)
    assert prepared.fields["plate"] == "/plates/denoised/sh010.####.exr"
    assert prepared.offset == 0 and prepared.fields["frames"] == "1-24" and list(prepared.fields["keyframes"]) == [5]


def test_a_layered_channel_with_objects_in_one_file_is_refused(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                               tmp_path: Path) -> None:
    """vom.A with objects in one file writes vom.hero.A, which Nuke's EXR reader shows under another layer name:
    CopyAlpha copied a channel the Read never has (a black matte, no error)."""
    node = _gizmo(tmp_path, plate="/p.####.exr", keyframes="", objects="hero 1", channel="vom.A")
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    with pytest.raises(host.HostError, match="channel 'vom.A' with objects in one file"):
        host.prepare_shot(node)
    assert not fake_nuke.renders
    node.knobs["out"].setValue(str(tmp_path / "o" / "{object}.####.exr"))  # a sequence per object: vom.A in each
    assert host.prepare_shot(node).fields["channel"] == "vom.A"


def test_a_layer_name_nuke_would_show_otherwise_is_refused(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                          tmp_path: Path) -> None:
    """A QA pass: matte.fg.A or my-matte.A (vom's grammar takes them) gave a black matte in Nuke, silently."""
    for channel, hint in (("matte.fg.A", "matte_fg.A"), ("my-matte.A", "my_matte.A")):
        node = _gizmo(tmp_path, plate="/p.####.exr", keyframes="1", channel=channel)
        node.inputs = [None, FakeNode("Roto", "Roto1")]
        with pytest.raises(host.HostError, match=rf"channel '{re.escape(channel)}': Nuke reads a layer name of "
                                                 rf"letters, digits and _ only .*use e\.g\. {re.escape(hint)}"):
            host.prepare_shot(node)
    assert not fake_nuke.renders


def test_a_second_analyze_of_a_node_that_renders_is_refused(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vom = _script(tmp_path / "vom", "import sys\n")
    monkeypatch.setenv("VOM_EXECUTABLE", str(vom))
    node = _gizmo(tmp_path, plate="/p.####.exr", keyframes="1")
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    host._IN_FLIGHT.add("VOM_Matte1")  # its first Analyze still running
    assert host.analyze(node, background=False) is None
    assert "is rendering already" in fake_nuke.messages[-1] and not fake_nuke.renders
    host._IN_FLIGHT.clear()
    assert host.analyze(node, background=False).returncode == 0 and not host._IN_FLIGHT  # done: free again
    # renamed while its Analyze runs: its Output's work folder is still taken (QA: a second Analyze ran over it)
    host._IN_FLIGHT.update(host._flight_keys(node))
    node._name = "VOM_hero"
    assert host.analyze(node, background=False) is None and "is rendering already" in fake_nuke.messages[-1]
    assert host.submit_farm(node) is None and "is rendering" in fake_nuke.messages[-1]
    host._IN_FLIGHT.clear()
    # an unexpected error while it ran: the node is free again (review: held until Nuke restarted)

    def broken(*a: Any, **k: Any) -> Any:
        raise RuntimeError("a Nuke progress task that broke")

    monkeypatch.setattr(host, "run_with_progress", broken)
    with pytest.raises(RuntimeError, match="broke"):
        host.analyze(node, background=False)
    assert not host._IN_FLIGHT
    # one Output spelt through a link to its folder holds the same work folder (review: a second node's Analyze ran)
    (tmp_path / "shots").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "shots")
    a = _gizmo(tmp_path, plate="/p.####.exr", keyframes="1", out=str(tmp_path / "shots" / "a.####.exr"))
    b = _gizmo(tmp_path, plate="/p.####.exr", keyframes="1", out=str(tmp_path / "link" / "a.####.exr"))
    b._name = "VOM_Matte2"
    assert host._flight_keys(a) & host._flight_keys(b) == {str(tmp_path / "shots" / "a_vom")}


def test_the_colour_spaces_nuke_names_are_the_ones_a_plates_header_is_checked_against(host: types.ModuleType) -> None:
    # a plate whose header names a space the Nuke adapter knows is warned about when read as another
    from test_host_common import check_header_names

    check_header_names(host._COLOUR_SPACES)


def test_the_temporary_write_is_made_and_deleted_outside_the_undo_stack(host: types.ModuleType,
                                                                        fake_nuke: types.ModuleType,
                                                                        tmp_path: Path) -> None:
    """Undo after an Analyze brought back the temporary Write, wired to the Roto and pointing at a temporary file
    (for "render all Writes" or a farm submitter to render); with proxy off nothing turned the undo stack off."""
    undo_on = [True]
    seen = []

    class Undo:
        @staticmethod
        def disable() -> None:
            undo_on[0] = False

        @staticmethod
        def enable() -> None:
            undo_on[0] = True

    fake_nuke.Undo = Undo  # type: ignore[attr-defined]
    made = fake_nuke.nodes.Write

    def write(**knobs: Any) -> FakeNode:
        seen.append(undo_on[0])
        return made(**knobs)

    fake_nuke.nodes.Write = write
    deleted = fake_nuke.delete

    def delete(node: Any) -> None:
        seen.append(undo_on[0])
        deleted(node)

    fake_nuke.delete = delete
    node = _gizmo(tmp_path, plate="/p.####.exr", keyframes="1 5")
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    host.prepare_shot(node)
    assert seen == [False, False] and undo_on == [True]  # made and deleted unrecorded; the stack on again after


def test_a_node_whose_output_another_node_shows_is_refused_but_not_its_pasted_copy(
        host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path) -> None:
    """HeroMatte (renamed from VOM_Matte1 after its Analyze) still shows VOM_Matte1's files: a new VOM_Matte1
    rendering there replaced the hero's matte in the comp. A pasted copy shows the original's own files: the
    original's next Analyze is not refused for it."""
    shown = str(tmp_path / "out" / "alpha.%04d.exr")
    hero = _gizmo(tmp_path, out=str(tmp_path / "out" / "hero.####.exr"), alpha_file=shown)
    hero._name = "HeroMatte"
    node = _gizmo(tmp_path, plate="/p.####.exr")
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    fake_nuke.all_nodes = [node, hero]
    with pytest.raises(host.HostError, match="holds the matte HeroMatte shows"):
        host.prepare_shot(node)
    hero.knobs["alpha_owner"].setValue("VOM_Matte1")  # renamed after its Analyze: a new VOM_Matte1 is not its owner
    with pytest.raises(host.HostError, match="holds the matte HeroMatte shows"):  # (QA: it rendered over it)
        host.prepare_shot(node)
    node.knobs["alpha_file"].setValue(shown)  # hero is node's pasted copy: both show node's own files
    host.prepare_shot(node)
    # the copy rendering to what the original shows: refused (the exemption is the owner's alone)
    hero.knobs["alpha_owner"].setValue("HeroMatte")
    node.knobs["alpha_owner"].setValue("HeroMatte")
    with pytest.raises(host.HostError, match="holds the matte HeroMatte shows"):
        host.prepare_shot(node)


def _writing_vom(tmp: Path, frames: list[int]) -> Path:
    """A vom that writes a file for each of ``frames`` of the shot's out and reports them."""
    return _script(tmp / f"vom_{len(frames)}", (
        "import json, os, sys, yaml\n"
        "shot = yaml.safe_load(open(sys.argv[2]))\n"
        f"frames = {list(frames)!r}\n"
        "for i, f in enumerate(frames):\n"
        "    p = shot['out'].replace('####', '%04d' % f)\n"
        "    os.makedirs(os.path.dirname(p), exist_ok=True); open(p, 'w').write('x')\n"
        "    print(json.dumps({'event': 'frame', 'frame': f, 'done': i + 1, 'total': len(frames)}), flush=True)\n"
        "print(json.dumps({'event': 'done', 'frames_written': len(frames)}), flush=True)\n"))


def test_a_narrower_render_says_which_frames_show_an_earlier_matte(host: types.ModuleType,
                                                                   fake_nuke: types.ModuleType, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: Analyze on 1-6, a roto tweak, then Analyze on 1-6x2: the node showed frames 2 and 4 of the first render
    (the old roto) as if current, without a word. Said now, in script frames."""
    out = tmp_path / "out" / "a.####.exr"
    node = _gizmo(tmp_path, plate="/plates/p.####.exr", frames="1-6", keyframes="1", out=str(out),
                  colorspace_from_nuke=False)
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    monkeypatch.setenv("VOM_EXECUTABLE", str(_writing_vom(tmp_path, list(range(1, 7)))))
    assert host.analyze(node, background=False).returncode == 0
    assert not [m for m in fake_nuke.messages if "earlier render" in m]
    node.knobs["frames"].setValue("1-6x2")
    monkeypatch.setenv("VOM_EXECUTABLE", str(_writing_vom(tmp_path, [1, 3, 5])))
    assert host.analyze(node, background=False).returncode == 0
    said = [m for m in fake_nuke.messages if "earlier render" in m]
    assert len(said) == 1 and "script frames 2,4,6 show an earlier render's matte" in said[0], fake_nuke.messages
    # a fix-up of a few frames keeps the rest showing (QA: the Read's range was the fix-up's, the rest black)
    node.knobs["frames"].setValue("3-4")
    monkeypatch.setenv("VOM_EXECUTABLE", str(_writing_vom(tmp_path, [3, 4])))
    assert host.analyze(node, background=False).returncode == 0
    assert (node["alpha_first"].value(), node["alpha_last"].value()) == (1, 6)
    assert "script frames 1-2,5-6 show an earlier render's matte" in fake_nuke.messages[-1], fake_nuke.messages
    # a fix-up that fails after a frame: the rest still shows (review: the range became the fix-up's)
    failing = _script(tmp_path / "vom_fails", (
        "import json, os, sys, yaml\nshot = yaml.safe_load(open(sys.argv[2]))\n"
        "print(json.dumps({'event': 'start', 'total': 2}), flush=True)\n"
        "open(shot['out'].replace('####', '0003'), 'w').write('x')\n"
        "print(json.dumps({'event': 'frame', 'frame': 3, 'done': 1, 'total': 2}), flush=True)\nsys.exit(1)\n"))
    monkeypatch.setenv("VOM_EXECUTABLE", str(failing))
    assert host.analyze(node, background=False).returncode == 1
    assert (node["alpha_first"].value(), node["alpha_last"].value()) == (1, 6)


def test_a_movie_read_is_baked_over_its_own_frames(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                   tmp_path: Path) -> None:
    """QA: a Read of a .mov (baked: vom reads frame sequences) was baked over the script's range, 14 held frames past
    its end, and a keyframe past its end was taken; a Read of a frame sequence had both checked."""
    read = FakeNode("Read", "Read1", {"file": "/plates/sh010.mov", "first": 1, "last": 10, "frame_mode": "",
                                      "frame": "", "colorspace": "linear"})
    node = _gizmo(tmp_path, keyframes="5")
    node.inputs = [read, FakeNode("Roto", "Roto1")]
    p = host.prepare_shot(node)  # the fake script's range is 1-24
    baked = sorted({f for _c, src, f, _ in fake_nuke.renders if src == "Read1"})
    assert p.fields["frames"] == "1-10" and baked == list(range(1, 11))
    for frames, keyframes, what in (("1-24", "5", "Frame range 1-24"), ("", "20", "keyframe 20")):
        late = _gizmo(tmp_path, keyframes=keyframes, frames=frames)
        late.inputs = [read, FakeNode("Roto", "Roto1")]
        with pytest.raises(host.HostError, match=f"{what}.*the Read Read1 shows script frames 1-10"):
            host.prepare_shot(late)
    # a still (a matte painting, a clean plate) is held by Nuke over the whole shot: baked over the script's frames
    fake_nuke.renders.clear()
    fake_nuke.root_node.first, fake_nuke.root_node.last = 1001, 1010
    still = FakeNode("Read", "Read2", {"file": "/plates/dmp.exr", "first": 1, "last": 1, "frame_mode": "",
                                       "frame": "", "colorspace": "linear"})
    held = _gizmo(tmp_path, keyframes="1001", frames="1001-1010")
    held.inputs = [still, FakeNode("Roto", "Roto1")]
    p = host.prepare_shot(held)
    assert p.fields["frames"] == "1001-1010"
    assert sorted({f for _c, src, f, _ in fake_nuke.renders if src == "Read2"}) == list(range(1001, 1011))
    # a still saved with a frame number (dmp.%04d.exr, 1001-1001) is one too (review)
    fake_nuke.renders.clear()
    numbered = FakeNode("Read", "Read3", {"file": "/plates/dmp.%04d.exr", "first": 1001, "last": 1001,
                                          "frame_mode": "", "frame": "", "colorspace": "linear"})
    held.inputs = [numbered, FakeNode("Roto", "Roto1")]
    p = host.prepare_shot(held)
    assert p.fields["frames"] == "1001-1010"
    assert sorted({f for _c, src, f, _ in fake_nuke.renders if src == "Read3"}) == list(range(1001, 1011))


# ------------------------------------------------------------------------ Nuke 13's Python (3.7)

NUKE_13_PYTHON = (3, 7)
REPO = Path(__file__).resolve().parents[1]


def _python37() -> str | None:
    """A Python 3.7 interpreter: $VOM_TEST_PYTHON37, python3.7 on PATH, or pyenv's."""
    import glob
    import shutil
    import subprocess

    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    for cand in (os.environ.get("VOM_TEST_PYTHON37"), shutil.which("python3.7"),
                 *sorted(glob.glob(os.path.join(pyenv, "versions", "3.7*", "bin", "python3.7")))):
        if not cand or not os.access(cand, os.X_OK):
            continue
        try:  # a pyenv shim on PATH may name a version it then refuses to run
            r = subprocess.run([cand, "-c", "import sys; print(sys.version_info[:2] == (3, 7))"], capture_output=True,
                               text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0 and r.stdout.strip() == "True":
            return cand
    return None


def test_the_adapter_keeps_to_nuke_13s_python() -> None:
    """nuke.py and what it loads (common.py) run inside Nuke 13 (Python 3.7): a QA pass found typing.Protocol,
    shlex.join and unlink(missing_ok=True) (3.8) there, which stopped the adapter loading at all. vermin reads the
    language and the standard library's API; the test below runs it where a 3.7 is at hand."""
    pytest.importorskip("vermin", reason="vermin (the dev extra) checks the Python version the code needs")
    import subprocess

    files = [REPO / "vom_plugin" / "host" / "nuke.py", REPO / "vom_plugin" / "host" / "blender_addon" / "common.py",
             Path(__file__).with_name("fake_nuke.py"), Path(__file__).with_name("nuke_py37.py")]
    vermin = [sys.executable, "-c", "import sys, vermin; sys.exit(vermin.main())", "--no-tips", "-q", "--violations"]
    r = subprocess.run([*vermin, "-t={}.{}-".format(*NUKE_13_PYTHON), *map(str, files)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_adapter_runs_under_nuke_13s_python(inst: types.ModuleType, tmp_path: Path) -> None:
    """install.py's init.py block loads the adapter, the gizmo's Analyze button renders through it and a failed
    render is reported, all under Python 3.7 (Nuke 13's), with the fake nuke."""
    py37 = _python37()
    if py37 is None:
        pytest.skip("no Python 3.7 interpreter (Nuke 13's) here: set VOM_TEST_PYTHON37 to run the adapter under it")
    import subprocess

    from vom_plugin.host.gizmo import button_code

    blocks = inst.nuke_blocks(tmp_path / "env" / "bin" / "vom", REPO / "gizmos",
                              REPO / "vom_plugin" / "host" / "nuke.py")
    knobs = {k: v.value() for k, v in _gizmo(tmp_path).knobs.items()}
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"tmp": str(tmp_path), "init_block": blocks["init.py"], "knobs": knobs,
                                "button": button_code("analyze")}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VOM_"))}
    r = subprocess.run([py37, str(Path(__file__).with_name("nuke_py37.py")), str(case)], capture_output=True,
                       text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["python"] == "3.7" and out["loaded"], r.stderr
    shot = tmp_path / "out" / "alpha_vom" / "shot.yaml"
    assert out["argv"] == ["render", str(shot), "--progress", "json", "--start-worker"]
    loaded = yaml.safe_load(out["shot"])
    assert loaded["plate"] == "/plates/sh010.%04d.exr" and loaded["frames"] == "1001-1003"
    assert loaded["keyframes"] == {1001: str(shot.parent / "roto.1001.exr")}
    assert out["renders"] == [["alpha", "Roto1", 1001]]
    assert out["progress"] == [33, 66, 100]
    assert out["alpha_file"] == str(tmp_path / "out" / "alpha.####.exr") and out["alpha_channel"] == "vom.alpha"
    assert out["from0_after_on_create"] == "vom.alpha"
    assert out["failed_returncode"] == 1
    # the command to run again by hand, quoted for a shell (shlex.join is 3.8)
    assert len(out["messages"]) == 1 and "'%s'" % (tmp_path / "vom failing") in out["messages"][0], out["messages"]


def test_frames_outside_the_read_are_refused_in_script_frames_before_any_bake(
        host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path) -> None:
    """A Read of files 1001-1008 shown from script frame 1: Frame range 1-12 was refused by vom after the rotos were
    baked, as "missing frames 1009-1012", numbers the artist never typed (QA)."""
    read = FakeNode("Read", "Read1", {"file": "/plates/p.%04d.exr", "first": 1001, "last": 1008,
                                      "frame_mode": "start at", "frame": "1"})
    node = _gizmo(tmp_path, keyframes="1", frames="1-12")
    node.inputs = [read, FakeNode("Roto", "Roto1")]
    with pytest.raises(host.HostError, match=r"VOM_Matte1: Frame range 1-12: the Read Read1 shows script frames 1-8"):
        host.prepare_shot(node)
    node.knobs["frames"].setValue("1-8")
    node.knobs["keyframes"].setValue("1 20")
    with pytest.raises(host.HostError, match=r"VOM_Matte1: Keyframes: keyframe 20 \(Roto input\): the Read Read1 "
                                             r"shows script frames 1-8"):
        host.prepare_shot(node)
    assert not fake_nuke.renders  # nothing baked
    node.knobs["keyframes"].setValue("1")
    assert host.prepare_shot(node).fields["frames"] == "1001-1008"


@pytest.mark.parametrize(("knobs", "said"), [
    ({"keyframes": "10001"}, "VOM_Matte1: Keyframes: keyframe 10001 (Roto input): the script's frame range is "
                             "1001-1008 (Project Settings)"),
    ({"frames": "1001-10008"}, "VOM_Matte1: Frame range 1001-10008: the script's frame range is 1001-1008"),
    ({"keyframes": "", "objects": "hero 1001\ndog 1004 999"},
     "VOM_Matte1: Objects, dog: keyframe 999 (Roto input, layer dog): the script's frame range is 1001-1008"),
])
@pytest.mark.parametrize("source", ["grade", "still"])
def test_frames_outside_the_script_are_refused_before_a_baked_source_is_baked(
        host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path, knobs: dict[str, str], said: str,
        source: str) -> None:
    """A Source that is not a plain Read (a Grade, a still Read) had no range check: keyframe 10001 typed for 1001
    in a 1001-1008 script baked 9001 frames, Frame range 1001-10008 baked 9008 (QA). Refused before any bake, naming
    the knob and the script's range, as a Read's range is."""
    fake_nuke.root_node.first, fake_nuke.root_node.last = 1001, 1008
    src = FakeNode("Grade", "Grade1") if source == "grade" else FakeNode(
        "Read", "Read1", {"file": "/plates/dmp.exr", "first": 1, "last": 1, "frame_mode": "", "frame": "",
                          "colorspace": "linear"})
    roto = FakeNode("Roto", "Roto1")
    roto.channels = lambda: ["rgba.alpha", "hero.alpha", "dog.alpha"]
    node = _gizmo(tmp_path, **{"keyframes": "1001", **knobs})
    node.inputs = [src, roto]
    with pytest.raises(host.HostError) as e:
        host.prepare_shot(node)
    assert said in str(e.value)
    assert not fake_nuke.renders and not (tmp_path / "out").exists()  # nothing baked, no folder left
    node = _gizmo(tmp_path, keyframes="1001 1008", frames="1001-1008")  # the script's own ends are fine
    node.inputs = [src, roto]
    assert host.prepare_shot(node).fields["frames"] == "1001-1008"


def test_a_worker_that_did_not_take_the_render_is_said_after_a_success(host: types.ModuleType) -> None:
    """vom says on stderr why a running worker did not take a render (another environment, busy); the node showed
    stderr only on failure, so a second host's every Analyze loaded torch again without a word (QA)."""
    done = host.Progress(done=3, total=3, frame=None, message="done",
                         raw={"event": "done", "warnings": ["plate read as ACEScg"]})
    tail = ["warming up", "vom render: the vom worker at /run/user/1/vom-worker.sock did not take this render (it "
            "runs with another $OMP_NUM_THREADS); rendering in this process"]
    r = host.RunResult(returncode=0, cancelled=False, last=done, output_tail=tail)
    assert host.done_warnings(r) == ["plate read as ACEScg", tail[1][len("vom render: "):]]
    assert host.done_warnings(host.RunResult(0, False, done, ["warming up"])) == ["plate read as ACEScg"]
    # a worker that could not be started: said too (QA: a shared socket folder made every Analyze load torch, unsaid)
    tail = ["vom render: cannot start a vom worker at /tmp/x/worker.sock: worker socket folder: /tmp/x can be entered "
            "by other users (mode 755; expected 700); rendering in this process"]
    assert host.done_warnings(host.RunResult(0, False, done, tail)) == ["plate read as ACEScg",
                                                                         tail[0][len("vom render: "):]]


def test_bytes_that_are_not_utf8_from_vom_neither_stop_the_reader_nor_hang_analyze(host: types.ModuleType,
                                                                                   tmp_path: Path) -> None:
    """QA: a Latin-1 byte on stderr killed the reader thread; vom then blocked on the full pipe and Analyze waited
    for it until a Cancel."""
    vom = _script(tmp_path / "vom", (
        "import json, sys\n"
        "print(json.dumps({'event': 'start', 'total': 1}), flush=True)\n"
        "sys.stderr.buffer.write(b'cannot open plate_\\xe9t\\xe9.0003.exr\\n' + b'x' * 300000 + b'\\n')\n"
        "sys.stderr.flush()\n"
        "print(json.dumps({'event': 'error', 'message': 'plate frame 3 missing', 'exit_code': 2}), flush=True)\n"
        "sys.exit(2)\n"
    ))
    done: list[object] = []
    t = threading.Thread(target=lambda: done.append(host.run_with_progress([str(vom)], Task(), poll_s=0.01)),
                         daemon=True)
    t.start()
    t.join(60)
    assert done, "run_with_progress did not return"
    r = done[0]
    assert r.returncode == 2 and any("plate_\ufffdt\ufffd.0003.exr" in line for line in r.output_tail)
    assert "error: plate frame 3 missing" in r.output_tail


def test_the_bar_does_not_reach_100_before_the_last_frame_is_written(host: types.ModuleType) -> None:
    """QA: the last step event (which carries no frame counts) put the bar at 100, the frames written after it back
    at 99."""
    step = host.parse_progress('{"event": "step", "frames_done": 2, "steps_done": 5, "steps_total": 5, '
                               '"steps_cached": 5}')
    assert step.percent == 99
    frame = host.parse_progress('{"event": "frame", "frame": 4, "done": 4, "total": 5, "steps_done": 5, '
                                '"steps_total": 5, "steps_cached": 5}')
    assert frame.percent == 99
    last = host.parse_progress('{"event": "frame", "frame": 5, "done": 5, "total": 5, "steps_done": 5, '
                               '"steps_total": 5, "steps_cached": 5}')
    assert last.percent == 100


def test_a_node_deleted_during_its_render_still_gets_the_failures_message(
        host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: the render's thread asked the node for the matte it shows (which Nuke allows on its main thread only);
    a node deleted meanwhile raised there and the failure's message was lost."""
    vom = _script(tmp_path / "vom", "import sys\nprint('{\"event\": \"error\", \"message\": \"plate: frame 7 "
                                    "missing\", \"exit_code\": 2}', flush=True)\nsys.exit(2)\n")
    monkeypatch.setenv("VOM_EXECUTABLE", str(vom))
    node = _gizmo(tmp_path, plate="/p.####.exr", frames="1-3", keyframes="1")
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    real_run = host.run_with_progress

    def run_then_delete(*args, **kw):  # type: ignore[no-untyped-def]
        result = real_run(*args, **kw)

        def gone(*_a: object, **_k: object) -> None:
            raise ValueError("A PythonObject is not attached to a node")

        monkeypatch.setattr(node, "knob", gone)
        return result

    monkeypatch.setattr(host, "run_with_progress", run_then_delete)
    result = host.analyze(node, background=False)
    assert result.returncode == 2
    assert len(fake_nuke.messages) == 1 and "frame 7 missing" in fake_nuke.messages[0]


def test_an_output_that_names_a_view_is_refused_before_anything_is_baked(
        host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path) -> None:
    """QA: vom wrote a.%V.1001.exr literally; the node's Read looked for a.main.1001.exr and showed black."""
    node = _gizmo(tmp_path, plate="/p.####.exr", frames="1-3", keyframes="1", out=str(tmp_path / "a.%V.####.exr"))
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    with pytest.raises(host.HostError, match=r"names a view \(%V\)"):
        host.prepare_shot(node)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_vom_farms_warnings_are_shown_with_the_bundle(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # (a byte that is not UTF-8 among them, from a C library reading a plate's header, raised UnicodeDecodeError:
    # a review)
    vom = _script(tmp_path / "vom", "import sys\nprint('vom farm: warning: the shot file has no cache: folder, so "
                                    "each worker uses its own user cache', file=sys.stderr)\n"
                                    "sys.stderr.flush()\nsys.stderr.buffer.write(b'plate_\\xe9t\\xe9.0001.exr\\n')\n")
    monkeypatch.setenv("VOM_EXECUTABLE", str(vom))
    node = _gizmo(tmp_path, plate="/p.####.exr", frames="1-3", keyframes="1")
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    assert host.submit_farm(node) is not None
    assert "deadline bundle submit" in fake_nuke.messages[-1]
    assert "vom farm says:\n- vom farm: warning: the shot file has no cache: folder" in fake_nuke.messages[-1]
    assert "- plate_\ufffdt\ufffd.0001.exr" in fake_nuke.messages[-1]
    # vom farm's advice in the node's terms, as Analyze gives vom's (QA: "set `cache:` to a folder all workers share")
    farm = tmp_path / "out" / "alpha_vom" / "farm"
    _script(tmp_path / "vom", "import sys\nprint(f'vom farm: warning: {sys.argv[3]} has no `cache:` folder, so each '\n"
                              "      'worker uses its own user cache; set `cache:` to a folder all workers share', "
                              "file=sys.stderr)\n")
    node.knobs["frames"].setValue("1-2")  # another shot: another snapshot
    assert host.submit_farm(node) is not None
    assert "- vom farm: warning: the shot of VOM_Matte1 has no Cache folder, so each worker uses its own user cache; " \
           "set the node's Cache folder to a folder all workers share" in fake_nuke.messages[-1], fake_nuke.messages
    assert "`cache:`" not in fake_nuke.messages[-1] and str(farm) not in fake_nuke.messages[-1].split("says:")[1]


def test_the_bar_names_script_frames_where_the_read_starts_at_another_frame(host: types.ModuleType,
                                                                            tmp_path: Path) -> None:
    """QA: with a Read set to start at 1 over files 1001-1005 the bar said frame 1002 for script frame 2."""
    assert host.parse_progress('{"event": "frame", "frame": 1002, "done": 2, "total": 5}', -1000).message == \
        "frame 2 (2/5)"
    vom = _script(tmp_path / "vom", (
        "import json\n"
        "for i in range(1, 3):\n"
        "    print(json.dumps({'event': 'frame', 'frame': 1000 + i, 'done': i, 'total': 2}), flush=True)\n"
    ))
    task = Task()
    r = host.run_with_progress([str(vom)], task, poll_s=0.01, frame_offset=-1000)
    assert r.written == [1001, 1002]  # file frames, as the cancel's message converts them itself
    assert task.messages[1] == "frame 1 (1/2)" and task.messages[2].startswith("frame 2 (2/2)")


@pytest.mark.parametrize(("out", "example"), [("a.exr", "a.####.exr"), ("a.####.jpg", "a.####.exr"),
                                              ("a.####", "a.####.exr"), ("a.%04d.png", "a.%04d.exr"),
                                              ("sh010_v1.2_alpha.####.png", "sh010_v1.2_alpha.####.exr"),
                                              ("sh010_alpha_####.jpg", "sh010_alpha_####.exr")])
def test_an_output_that_is_no_exr_sequence_is_refused_before_anything_is_baked(
        host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path, out: str, example: str) -> None:
    """QA: vom refused it only after the roto was baked, which left a work folder beside the Output. The example
    given is the Output as an EXR sequence (a review: it took the name up to its first dot, and added a second frame
    token to one that had one)."""
    node = _gizmo(tmp_path, plate="/p.####.exr", frames="1-3", keyframes="1", out=str(tmp_path / out))
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    with pytest.raises(host.HostError, match=rf"expected an EXR frame sequence, e\.g\. {re.escape(example)} \("):
        host.prepare_shot(node)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_output_of_two_frame_tokens_is_refused_before_anything_is_baked(
        host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path) -> None:
    """QA: alpha_#2.####.exr was taken for alpha's sequence (its first #): the node baked its rotos into the work
    folder of an alpha.####.exr beside it, which vom then refused."""
    node = _gizmo(tmp_path, plate="/p.####.exr", frames="1-3", keyframes="1", out=str(tmp_path / "alpha_#2.####.exr"))
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    with pytest.raises(host.HostError, match=r"alpha_#2\.####\.exr: 2 frame tokens in its file name; expected one"):
        host.prepare_shot(node)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_vom_s_colour_spaces_are_named_alike_by_both_hosts_and_the_header_check(host: types.ModuleType) -> None:
    """Every colour space of OCIO's built-in CG and studio configs that any of the three tables reads as one of vom's
    (the Nuke node's, the Blender add-on's, a plate header's) is read as that one by all three (QA: Blender refused
    the configs' 'sRGB Encoded Rec.709 (sRGB)', which Nuke and the header read as sRGB)."""
    PyOpenColorIO = pytest.importorskip("PyOpenColorIO")
    from vom_plugin.host.blender_addon import core
    from vom_plugin.io import color

    for uri in ("ocio://cg-config-latest", "ocio://studio-config-latest"):
        for space in PyOpenColorIO.Config.CreateFromFile(uri).getColorSpaces():
            for name in (space.getName(), *space.getAliases()):
                said = {"nuke": host.vom_colour_space(name, "aces"), "blender": core.COLORSPACES.get(name),
                        "header": "raw" if color._declared_key(name) in color._DATA
                        else color._DECLARED.get(color._declared_key(name))}
                if space.getName() == name and any(said.values()):  # the name Blender and Nuke show
                    assert len(set(said.values())) == 1, (uri, name, said)
                else:
                    assert len(set(filter(None, said.values()))) <= 1, (uri, name, said)


@pytest.mark.parametrize(("knob", "value", "said"), [
    ("memory", "prev 2", r"Memory policy 'prev 2': expected first\+prevK, prevK"),
    ("working_size", 100, r"Working size 100: expected a whole number from 128 to 4096"),
    ("top_k", 300, r"Top-k 300: expected a whole number from 1 to 256"),
    ("channel", "vom.alpha", r"Output channel 'vom\.alpha': expected a channel name A or <layer>\.A"),
    ("mask_channel", "rgba.alpha", r"Mask channel 'rgba\.alpha': expected a channel name such as mask"),
    ("mask_channel", "A", r"Mask channel 'A': that is the alpha's or the plate's channel"),
])
def test_a_setting_vom_refuses_is_said_before_the_source_is_baked(
        host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path, knob: str, value: object,
        said: str) -> None:
    """QA: a typo in Memory policy, an out-of-range Working size or Top-k, an Output or Mask channel vom refuses: the
    node baked every frame of the Source (and the roto), then vom refused the setting. Said first, naming the knob by
    its label, with nothing baked and no work folder made."""
    node = _gizmo(tmp_path, keyframes="1", **{knob: value})
    node.inputs = [FakeNode("Grade", "Grade1"), FakeNode("Roto", "Roto1")]
    with pytest.raises(host.HostError, match=rf"^VOM_Matte1: {said}"):
        host.prepare_shot(node)
    assert fake_nuke.renders == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("cache", [None, "/c/shot"])
def test_a_cancel_says_a_new_analyze_resumes_from_the_cache_only_where_the_render_used_it(
        host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        cache: str | None) -> None:
    """QA: with the Cache knob naming a file the render ran without the cache (its start event said so), and a cancel
    said "a new Analyze resumes from the cache": it computes every frame again. Said so, with vom's reason."""
    start = {"event": "start", "total": 3, "frames": [1, 3], "cache": cache}
    if cache is None:
        start["cache_off"] = "rendering without the cache: /c is a file"
    vom = _script(tmp_path / "vom", (
        "import json, signal, sys, time\n"
        "def stop(*_):\n"
        "    sys.exit(130)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        f"print(json.dumps({start!r}), flush=True)\n"
        "print(json.dumps({'event': 'frame', 'frame': 1, 'done': 1, 'total': 3}), flush=True)\n"
        "time.sleep(60)\n"))
    monkeypatch.setenv("VOM_EXECUTABLE", str(vom))

    class CancelledTask(fake_nuke.ProgressTask):  # type: ignore[name-defined,misc]
        def __init__(self, title: str) -> None:
            super().__init__(title)
            self.cancel_after = 1

    monkeypatch.setattr(fake_nuke, "ProgressTask", CancelledTask)
    node = _gizmo(tmp_path, plate="/p.####.exr", frames="1-3", keyframes="1", out=str(tmp_path / "o" / "a.####.exr"))
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    result = host.analyze(node, background=False)
    assert result.cancelled and result.written == [1]
    (said,) = fake_nuke.messages
    assert said.startswith("VOM Matte: cancelled; 1 frame kept"), said
    if cache is None:
        assert result.cache_off == "/c is a file"  # the reason, not vom's "rendering without the cache: " again
        assert "a new Analyze computes every frame again (this one ran without the cache: /c is a file; " in said \
            and "resumes" not in said, said
    else:
        assert result.cache_off == "" and "a new Analyze resumes from the cache (" in said, said


@pytest.mark.parametrize(("typed", "said"), [
    ("nosuch", r"Model 'nosuch': no shipped model has that name \(default, lite, full\), and no weights file is at "),
    ("Lite", r"Model 'Lite': no shipped model has that name \(default, lite, full\) \(the shipped names are lower "
             r"case: 'lite'\)"),
    ("weights/gone.safetensors", r"Model 'weights/gone\.safetensors': no shipped model .* no weights file is at "),
])
def test_a_model_that_is_no_shipped_name_is_a_file_beside_the_script_or_refused_before_the_bake(
        host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path, typed: str, said: str) -> None:
    """QA: Model `nosuch` or `Lite` went into the shot file as it was, which vom read as a file in the node's hidden
    work folder, and refused after the bake ("weights file '.../a_vom/nosuch' does not exist", not naming Model)."""
    script = tmp_path / "comp" / "s.nk"
    fake_nuke.root_node = FakeRoot(fake_nuke, str(script), 1, 6)
    node = _gizmo(tmp_path, keyframes="1", model=typed)
    node.inputs = [FakeNode("Grade", "Grade1"), FakeNode("Roto", "Roto1")]
    with pytest.raises(host.HostError, match=rf"^VOM_Matte1: {said}"):
        host.prepare_shot(node)
    assert fake_nuke.renders == [] and not (tmp_path / "out").exists()
    # a checkpoint beside the script, named as a path or a bare file name: read from there, absolute in the shot
    (script.parent / "weights").mkdir(parents=True)
    for name in ("weights/mine.safetensors", "mine2"):
        (script.parent / name).write_bytes(b"weights")
        node = _gizmo(tmp_path, plate="/p.####.exr", frames="1-3", keyframes="1", model=name)
        node.inputs = [None, FakeNode("Roto", "Roto1")]
        assert _prepared(host, node)[1]["model"] == str(script.parent / name)
    node = _gizmo(tmp_path, plate="/p.####.exr", frames="1-3", keyframes="1", model="lite")
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    assert _prepared(host, node)[1]["model"] == "lite"


def test_output_files_of_another_numbering_are_said(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a Read shown at 1001 of files 1-6 rendered to a.0001-0006 (vom read the files); its colour space switched
    to a log one, the Source was baked and rendered to a.1001-1006 (script frames), beside the first six, without a
    word. Files of the Output beyond this render's frames are said."""
    out = tmp_path / "out" / "a.####.exr"
    (tmp_path / "out").mkdir()
    for f in (1, 2, 3, 6):  # the other numbering's, and names of other paddings or sequences, which are not
        (tmp_path / "out" / f"a.{f:04d}.exr").write_text("x")
    for other in ("a.01.exr", "a.0002.exr.tmp", "b.0004.exr", "a.00005.exr"):
        (tmp_path / "out" / other).write_text("x")
    fake_nuke.root_node = FakeRoot(fake_nuke, str(tmp_path / "s.nk"), 1001, 1006)
    node = _gizmo(tmp_path, plate="/plates/p.####.exr", frames="1001-1006", keyframes="1001", out=str(out),
                  colorspace_from_nuke=False)
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    monkeypatch.setenv("VOM_EXECUTABLE", str(_writing_vom(tmp_path, list(range(1001, 1007)))))
    assert host.analyze(node, background=False).returncode == 0
    said = [m for m in fake_nuke.messages if "also holds" in m]
    assert len(said) == 1 and f"{out} also holds files numbered 1-3,6, beyond this shot's 1001-1006: another " \
                               "render's, which the node does not show" in said[0], fake_nuke.messages
    assert host.outside_frames({"out": str(out), "frames": "1001-1006"}, (1, 1006)) == []
    # every object's sequence, not the one the node shows alone (QA: a stray a_dog.0050.exr went unsaid)
    (tmp_path / "out" / "a_dog.0050.exr").write_text("x")
    (tmp_path / "out" / "a_hero.1001.exr").write_text("x")
    objects = {"out": str(tmp_path / "out" / "a_{object}.####.exr"), "objects": {"hero": {}, "dog": {}}}
    assert host.outside_frames(objects, (1001, 1006)) == [50]


def test_an_object_token_without_objects_is_refused_before_the_bake_in_the_node_s_words(
        host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path) -> None:
    """QA: vom refused it after the Source and the roto were baked, saying to give objects with --roto hero=..."""
    node = _gizmo(tmp_path, keyframes="1", out=str(tmp_path / "out" / "a_{object}.####.exr"))
    node.inputs = [FakeNode("Grade", "Grade1"), FakeNode("Roto", "Roto1")]
    with pytest.raises(host.HostError, match=r"^VOM_Matte1: Output .*a_\{object\}\.####\.exr: \{object\} names each "
                                             r"object's sequence, and Objects is empty; list the objects") as e:
        host.prepare_shot(node)
    assert "--roto" not in str(e.value)
    assert fake_nuke.renders == [] and not (tmp_path / "out").exists()
