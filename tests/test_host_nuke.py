"""The Nuke adapter (vom_plugin/host/nuke.py) against a small fake ``nuke`` module.

Only what the adapter touches is faked: nodes with knobs and inputs, a Write that "renders" by creating
the frame files, ProgressTask, message. The subprocess side (JSON progress, cancel) runs for real
against small fake ``vom`` scripts.
"""

from __future__ import annotations

import importlib
import json
import os
import stat
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

# ------------------------------------------------------------------------------------------- fake nuke


class FakeKnob:
    def __init__(self, value: Any = None) -> None:
        self._value = value
        self.executed = 0

    def value(self) -> Any:
        return self._value

    def setValue(self, value: Any) -> None:
        self._value = value

    def execute(self) -> None:
        self.executed += 1


class FakeNode:
    def __init__(self, cls: str, name: str, knobs: dict[str, Any] | None = None,
                 inputs: list[FakeNode | None] | None = None) -> None:
        self._cls, self._name = cls, name
        self.knobs = {k: FakeKnob(v) for k, v in (knobs or {}).items()}
        self.inputs = list(inputs or [])
        self.children: dict[str, FakeNode] = {}

    def Class(self) -> str:
        return self._cls

    def name(self) -> str:
        return self._name

    def knob(self, name: str) -> FakeKnob | None:
        return self.knobs.get(name)

    def __getitem__(self, name: str) -> FakeKnob:
        return self.knobs.setdefault(name, FakeKnob())

    def input(self, i: int) -> FakeNode | None:
        return self.inputs[i] if i < len(self.inputs) else None

    def setInput(self, i: int, node: FakeNode | None) -> None:
        while len(self.inputs) <= i:
            self.inputs.append(None)
        self.inputs[i] = node

    def node(self, name: str) -> FakeNode | None:
        return self.children.get(name)


def make_fake_nuke(script_path: str = "/shows/x/sh010/comp/sh010_comp_v001.nk") -> types.ModuleType:
    nk = types.ModuleType("nuke")
    nk.renders = []  # type: ignore[attr-defined]
    nk.messages = []  # type: ignore[attr-defined]
    nk.tasks = []  # type: ignore[attr-defined]
    nk.deleted = []  # type: ignore[attr-defined]
    nk.Node = FakeNode  # type: ignore[attr-defined]
    nk.Group = FakeNode  # type: ignore[attr-defined]
    nk.Script_Knob = FakeKnob  # type: ignore[attr-defined]

    class Root:
        def name(self) -> str:
            return script_path

        def firstFrame(self) -> int:
            return 1

        def lastFrame(self) -> int:
            return 24

    class Nodes:
        def Write(self, **knobs: Any) -> FakeNode:
            return FakeNode("Write", "Write1", knobs)

    class ProgressTask:
        def __init__(self, title: str) -> None:
            self.title, self.messages, self.progress, self.cancel_after = title, [], [], None
            nk.tasks.append(self)  # type: ignore[attr-defined]

        def setMessage(self, m: str) -> None:
            self.messages.append(m)

        def setProgress(self, p: int) -> None:
            self.progress.append(p)

        def isCancelled(self) -> bool:
            return self.cancel_after is not None and len(self.progress) >= self.cancel_after

    def execute(node: FakeNode, first: int, last: int) -> None:
        # "render" the Write: create the frame files, recording what was asked
        for f in range(first, last + 1):
            path = Path(node["file"].value().replace("%04d", f"{f:04d}"))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(getattr(node.input(0), "pixels", b"exr"))  # what the input shows
            nk.renders.append((node["channels"].value(), node.input(0).name(), f, str(path)))  # type: ignore

    nk.root = Root  # type: ignore[attr-defined]
    nk.nodes = Nodes()  # type: ignore[attr-defined]
    nk.ProgressTask = ProgressTask  # type: ignore[attr-defined]
    nk.execute = execute  # type: ignore[attr-defined]
    nk.filename = lambda node, *a: node["file"].value()  # type: ignore[attr-defined]
    nk.delete = lambda node: nk.deleted.append(node)  # type: ignore[attr-defined]
    nk.message = lambda m: nk.messages.append(m)  # type: ignore[attr-defined]
    nk.executeInMainThread = lambda fn, args=(), kwargs=None: fn(*args, **(kwargs or {}))  # type: ignore
    nk.thisNode = lambda: None  # type: ignore[attr-defined]
    nk.all_nodes = []  # type: ignore[attr-defined]  # what allNodes finds (the tests' other nodes)
    def all_nodes(cls: str | None = None, group: Any = None, recurseGroups: bool = False) -> list[FakeNode]:
        # Nuke searches the context group unless told where: the adapter must name the root, recursively
        assert group is not None and recurseGroups, (group, recurseGroups)
        return [n for n in nk.all_nodes if cls is None or n.Class() == cls]  # type: ignore[attr-defined]

    nk.allNodes = all_nodes  # type: ignore[attr-defined]
    return nk


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


class Task:
    def __init__(self, cancel_after: int | None = None) -> None:
        self.messages: list[str] = []
        self.progress: list[int] = []
        self.cancel_after = cancel_after

    def setMessage(self, m: str) -> None:
        self.messages.append(m)

    def setProgress(self, p: int) -> None:
        self.progress.append(p)

    def isCancelled(self) -> bool:
        return self.cancel_after is not None and len(self.progress) >= self.cancel_after


def _gizmo(tmp: Path, **knobs: Any) -> FakeNode:
    values = {"plate": "", "frames": "", "keyframes": "5", "out": str(tmp / "out" / "alpha.####.exr"),
              "channel": "A", "output": "alpha", "compression": "zip", "working_size": 960,
              "colorspace": "ACEScg", "model": "default", "device": "auto", "memory": "first+prev2",
              "top_k": 8, "cache": ""}
    values.update(knobs)
    node = FakeNode("Gizmo", "VOM_Matte1", values)
    node.children = {"AlphaRead": FakeNode("Read", "AlphaRead", {"file": "[value parent.out]"}),
                     "CopyAlpha": FakeNode("Copy", "CopyAlpha", {"from0": "rgba.alpha", "to0": "rgba.alpha"})}
    return node


# ------------------------------------------------------------------------------------------------ tests


def test_adapter_imports_only_stdlib_and_nuke(host: types.ModuleType) -> None:
    import ast

    tree = ast.parse(Path(host.__file__).read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert mods - {"nuke", "__future__"} <= set(sys.stdlib_module_names), mods


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


def test_parse_keyframes_and_frame_bounds(host: types.ModuleType) -> None:
    assert host.parse_keyframes("1050, 1001 1001") == [1001, 1050]
    with pytest.raises(host.HostError, match=r"keyframes: 'ten' is not a frame number"):
        host.parse_keyframes("1001 ten")
    with pytest.raises(host.HostError, match="keyframes: empty"):
        host.parse_keyframes("  ")
    assert host.frame_bounds("1001-1100x2") == (1001, 1100)
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


def test_cancel_sends_sigterm_and_waits(host: types.ModuleType, tmp_path: Path) -> None:
    marker = tmp_path / "terminated"
    vom = _script(tmp_path / "vom", (
        "import json, signal, sys, time\n"
        f"def stop(*_):\n    open({str(marker)!r}, 'w').write('clean'); sys.exit(130)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print(json.dumps({'frame': 1, 'done': 1, 'total': 100}), flush=True)\n"
        "time.sleep(60)\n"
    ))
    t0 = time.monotonic()
    r = host.run_with_progress([str(vom)], Task(cancel_after=1), poll_s=0.01, terminate_timeout=20)
    assert r.cancelled and r.returncode == 130
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
    shot_file, fields = host.prepare_shot(node)
    assert shot_file == tmp_path / "out" / "VOM_Matte1_vom" / "shot.yaml"
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


def test_two_vom_nodes_writing_one_output_are_refused(host: types.ModuleType, fake_nuke: types.ModuleType,
                                                       tmp_path: Path) -> None:
    """Two VOM Matte nodes with one Output (a copied node): the second render replaced the first's frames, and
    the first node's Read showed the other matte; both said done. Another spelling of the same files is caught."""
    read = FakeNode("Read", "Read1", {"file": "/plates/sh010.%04d.exr", "first": 1001, "last": 1024})
    node = _gizmo(tmp_path)
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


def test_prepare_shot_bakes_a_processed_source(host: types.ModuleType, fake_nuke: types.ModuleType,
                                              tmp_path: Path) -> None:
    grade = FakeNode("Grade", "Grade1", inputs=[FakeNode("Read", "Read1", {"file": "/p.%04d.exr"})])
    node = _gizmo(tmp_path, out="", frames="3-5")
    node.inputs = [grade, FakeNode("Roto", "Roto1")]
    fake_nuke.root = lambda: type("R", (), {"name": lambda s: str(tmp_path / "comp" / "s.nk"),
                                           "firstFrame": lambda s: 1, "lastFrame": lambda s: 6})()
    shot_file, fields = host.prepare_shot(node)
    assert fields["out"] == str(tmp_path / "comp" / "vom" / "VOM_Matte1.####.exr")
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
    shot_file, fields = host.prepare_shot(node)
    plate = [Path(fields["plate"].replace("%04d", f"{f:04d}")) for f in (1, 2, 3)]
    first = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in plate]
    grade.pixels = exr(px, "2026:12:04 11:30:00")  # baked again: same picture, another time stamp
    host.prepare_shot(node)
    assert [(p.stat().st_ino, p.stat().st_mtime_ns) for p in plate] == first
    grade.pixels = exr(px * 0.5, "2026:12:04 12:00:00")  # the grade changed: every frame is replaced
    host.prepare_shot(node)
    assert all(p.read_bytes() == grade.pixels for p in plate)
    assert sorted(p.name for p in shot_file.parent.iterdir() if "plate" in p.name) == [p.name for p in plate]


def test_prepare_shot_errors_name_the_problem(host: types.ModuleType, fake_nuke: types.ModuleType,
                                              tmp_path: Path) -> None:
    node = _gizmo(tmp_path, keyframes="", plate="/p.####.exr")
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    with pytest.raises(host.HostError, match="keyframes: empty"):
        host.prepare_shot(node)
    node = _gizmo(tmp_path, plate="/p.####.exr")
    node.inputs = [None, None]
    with pytest.raises(host.HostError, match="Roto: the input is not connected"):
        host.prepare_shot(node)
    fake_nuke.root = lambda: type("R", (), {"name": lambda s: "Root", "firstFrame": lambda s: 1,
                                           "lastFrame": lambda s: 2})()
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
    assert argv == ["render", str(tmp_path / "out" / "VOM_Matte1_vom" / "shot.yaml"), "--progress", "json",
                    "--start-worker"]
    assert fake_nuke.tasks[0].progress == [33, 66, 100]
    read, copy = node.children["AlphaRead"], node.children["CopyAlpha"]
    assert read["file"].value() == str(tmp_path / "out" / "a.%04d.exr")
    assert (read["first"].value(), read["last"].value()) == (1, 3) and read["reload"].executed == 1
    assert copy["from0"].value() == "vom.alpha"
    assert fake_nuke.messages == []


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
    work = tmp_path / "out" / "VOM_Matte1_vom"
    assert bundle == work / "openjd_bundle"
    assert json.loads(log.read_text()) == ["farm", "openjd", str(work / "shot.yaml"), "--chunk", "5", "--out",
                                           str(bundle)]
    assert "deadline bundle submit" in fake_nuke.messages[0]


def test_mypy_clean_against_types_nuke(repo: Path) -> None:
    mypy = Path(sys.executable).parent / "mypy"
    if not mypy.exists():
        pytest.skip("mypy not installed")
    import subprocess

    env = {**os.environ, "MYPY_CACHE_DIR": str(repo / ".mypy_cache")}
    r = subprocess.run([str(mypy), "vom_plugin/host/nuke.py"], cwd=repo, capture_output=True, text=True,
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
    shot_file, fields = host.prepare_shot(node)
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


@pytest.mark.parametrize("knobs,needle", [
    ({"keyframes": "", "objects": "hero-1 1001"}, "objects, line 1: 'hero-1' is not a layer name"),
    ({"keyframes": "", "objects": "hero 1001\nHero 1002"}, "objects, line 2: 'Hero' is given twice"),
    ({"keyframes": "", "objects": "hero"}, r"objects, line 1 \(hero\): keyframes: empty"),
    ({"keyframes": "1001", "objects": "hero 1001"}, "keyframes and objects are both set"),
])
def test_objects_knob_errors_name_the_line(host: types.ModuleType, fake_nuke: types.ModuleType, tmp_path: Path,
                                           knobs: dict[str, str], needle: str) -> None:
    node = _gizmo(tmp_path, plate="/p.####.exr", **knobs)
    node.inputs = [None, FakeNode("Roto", "Roto1")]
    with pytest.raises(host.HostError, match=needle):
        host.prepare_shot(node)


def test_a_failure_names_the_roto_input_for_the_roto_files_analyze_rendered(host: types.ModuleType) -> None:
    fields = {"keyframes": {1001: "/w/VOM_Matte1_vom/roto.1001.exr"},
              "objects": {"dog": {1040: "/w/VOM_Matte1_vom/roto_dog.1040.exr"}}}
    text = host._name_rendered_rotos("error: roto /w/VOM_Matte1_vom/roto.1001.exr is empty (no pixel above 0.5)\n"
                                     "error: roto /w/VOM_Matte1_vom/roto_dog.1040.exr is empty", fields)
    assert "roto.1001.exr (the Roto input at frame 1001) is empty" in text
    assert "roto_dog.1040.exr (the Roto input at frame 1040, layer dog) is empty" in text


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
    _, fields = host.prepare_shot(node)
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
    with pytest.raises(RuntimeError, match="Cancelled"):
        host._bake(FakeNode("Grade", "Grade1"), pattern, range(1, 4), "Source")
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == []
