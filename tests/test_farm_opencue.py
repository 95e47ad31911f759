"""Farm jobs as OpenCue outlines: built with PyOutline, serialised to the job spec XML without a Cuebot."""

from __future__ import annotations

import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from vom_plugin.errors import InputError

REPO = Path(__file__).resolve().parents[1]


def _shot(tmp: Path) -> Path:
    folder = tmp / "my shots"  # a space in the path: commands must stay one argument each
    folder.mkdir()
    path = folder / "sh020.yaml"
    path.write_text(yaml.safe_dump({
        "plate": "/plates/sh020.%04d.exr", "frames": "1001-1100",
        "keyframes": {1020: "/roto/r.1020.exr", 1060: "/roto/r.1060.exr"}, "out": "/out/sh020_alpha.####.exr"}))
    return path


def test_opencue_outline_xml(tmp_path: Path) -> None:
    shot = _shot(tmp_path)
    out = tmp_path / "job.xml"
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "farm", "opencue", str(shot), "--chunk", "15",
                        "--out", str(out), "--show", "demo", "--user", "nobody", "--vom", "/opt/vom env/bin/vom"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    root = ET.fromstring(out.read_text())
    assert root.tag == "spec"
    assert (root.findtext("show"), root.findtext("shot"), root.findtext("user")) == ("demo", "sh020", "nobody")
    job = root.find("job")
    assert job is not None and job.get("name") == "vom_sh020"
    layers = {la.get("name"): la for la in job.iter("layer")}
    assert list(layers) == ["frames_1001_1019", "frames_1020_1059", "frames_1060_1100", "check_outputs"]
    expect = {"frames_1001_1019": "1001-1019", "frames_1020_1059": "1020-1059", "frames_1060_1100": "1060-1100"}
    for name, frame_range in expect.items():
        la = layers[name]
        assert la.findtext("range") == frame_range and la.findtext("chunk") == "15"
        assert shlex.split(la.findtext("cmd") or "") == [
            "/opt/vom env/bin/vom", "render", str(shot), "--frames=#FRAME_START#-#FRAME_END#", "--progress", "json",
            "--no-worker"]
    assert shlex.split(layers["check_outputs"].findtext("cmd") or "") == [
        "/opt/vom env/bin/vom", "farm", "check", str(shot), "--frames=1001-1100"]  # the job's frames (QA)
    deps = {(d.findtext("deplayer"), d.findtext("onlayer"), d.get("type")) for d in root.iter("depend")}
    assert deps == {("check_outputs", n, "LAYER_ON_LAYER") for n in expect}
    # --chunk 15 cuts 41-frame spans into tasks that OpenCue runs at once: said
    assert "--chunk 15 cuts a span into tasks that continue one another's propagation" in r.stderr


def test_by_default_a_span_is_one_task(tmp_path: Path) -> None:
    """A span is one propagation (each frame reads the ones before it) and OpenCue runs a layer's chunks at once,
    each propagating from its keyframe again: the default is one task per layer (chunks of 10 were)."""
    shot = _shot(tmp_path)
    out = tmp_path / "job.xml"
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "farm", "opencue", str(shot), "--out", str(out),
                        "--user", "nobody"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "--chunk" not in r.stderr
    layers = {la.get("name"): la for la in ET.fromstring(out.read_text()).iter("layer")}
    assert {n: (la.findtext("range"), la.findtext("chunk")) for n, la in layers.items() if n != "check_outputs"} == {
        "frames_1001_1019": ("1001-1019", "19"), "frames_1020_1059": ("1020-1059", "40"),
        "frames_1060_1100": ("1060-1100", "41")}


def test_cores_and_memory_are_booked_and_the_cores_are_the_render_s_threads(tmp_path: Path) -> None:
    """QA: the layers booked the show's default (a core) while torch took every core of the node: a node running
    several tasks was oversubscribed. --cores books that many and gives the render as many threads."""
    shot = _shot(tmp_path)
    out = tmp_path / "job.xml"
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "farm", "opencue", str(shot), "--out", str(out),
                        "--user", "nobody", "--cores", "4", "--memory", "6"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    layers = {la.get("name"): la for la in ET.fromstring(out.read_text()).iter("layer")}
    for name, la in layers.items():
        env = {k.get("name"): k.text for k in la.iter("key")}
        if name == "check_outputs":  # reads headers: the farm's default
            assert la.find("cores") is None and la.find("memory") is None and env == {}
        else:
            assert (la.findtext("cores"), la.findtext("memory")) == ("4.0", "6g")
            assert env == {"OMP_NUM_THREADS": "4"}
    assert "no --cores" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "farm", "opencue", str(shot), "--out", str(out),
                        "--user", "nobody"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "no --cores: each render runs on the cores the show's service books" in r.stderr
    for flag, value, said in (("--cores", "0", "0: expected 1-1024 cores"), ("--memory", "1.5", "'1.5' is not a "
                                                                                               "whole number of GB")):
        r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "farm", "opencue", str(shot), "--out",
                            str(tmp_path / "other.xml"), flag, value], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and said in r.stderr and not (tmp_path / "other.xml").exists(), r.stderr


def test_opencue_out_must_be_a_file(tmp_path: Path) -> None:
    shot = _shot(tmp_path)
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "farm", "opencue", str(shot), "--out",
                        str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "is a folder" in r.stderr
    # a link at --out is refused, not written through (a QA pass: it replaced the link's target, a job vom wrote)
    job = tmp_path / "job.xml"
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "farm", "opencue", str(shot), "--out", str(job)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    (tmp_path / "b.xml").symlink_to(job)
    before = job.read_bytes()
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "farm", "opencue", str(shot), "--out",
                        str(tmp_path / "b.xml")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "b.xml: exists and is not a file vom wrote (a link" in r.stderr, r.stderr
    assert job.read_bytes() == before and (tmp_path / "b.xml").is_symlink()


def test_cuda_shot_layers_ask_for_a_gpu(tmp_path: Path) -> None:
    shot = _shot(tmp_path)
    shot.write_text(shot.read_text() + "device: cuda\n")
    out = tmp_path / "job.xml"
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "farm", "opencue", str(shot), "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    layers = {la.get("name"): la for la in ET.fromstring(out.read_text()).iter("layer")}
    assert all(la.findtext("gpus") == "1" for n, la in layers.items() if n != "check_outputs")
    assert layers["check_outputs"].find("gpus") is None


def test_stepped_and_irregular_frames_never_render_extra_frames(tmp_path: Path) -> None:
    from vom_plugin.farm.opencue import _layer_ranges

    assert _layer_ranges("s", [1, 2, 3]) == [("s", "1-3", 1)]
    assert _layer_ranges("s", [7]) == [("s", "7", 1)]
    assert _layer_ranges("s", [1, 3, 5, 7]) == [("s", "1-7x2", 2)]
    assert _layer_ranges("s", [1, 2, 3, 10, 11, 20]) == [("s_part1", "1-3", 1), ("s_part2", "10-11", 1),
                                                         ("s_part3", "20", 1)]
    # two runs on twos with a gap: two stepped layers (QA: a layer per frame, 101 layers for 100 frames)
    twos = list(range(1001, 1100, 2)) + list(range(1201, 1300, 2))
    assert _layer_ranges("s", twos) == [("s_part1", "1001-1099x2", 2), ("s_part2", "1201-1299x2", 2)]
    assert _layer_ranges("s", [1, 2, 3, 5, 7, 9]) == [("s_part1", "1-3", 1), ("s_part2", "5-9x2", 2)]
    shot = _shot(tmp_path)
    shot.write_text(shot.read_text().replace("frames: 1001-1100", "frames: 1001-1100x3"))
    out = tmp_path / "job.xml"
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "farm", "opencue", str(shot), "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    layers = {la.get("name"): la for la in ET.fromstring(out.read_text()).iter("layer")}
    assert layers["frames_1001_1019"].findtext("range") == "1001-1019x3"
    assert shlex.split(layers["frames_1001_1019"].findtext("cmd") or "")[3] == "--frames=#FRAME_START#-#FRAME_END#x3"
    from vom_plugin.io import parse_frame_range

    # what a chunk of that layer asks vom for: exactly the span's frames in it
    assert parse_frame_range("1001-1010x3") == [1001, 1004, 1007, 1010]


def test_the_parts_of_an_irregular_span_run_one_after_another(tmp_path: Path) -> None:
    """A span of frames 1001,1003-1005 became two layers that OpenCue ran at once, each propagating the span from its
    keyframes (QA): each part waits for the one before it, whose memory state it goes on from."""
    shot = _shot(tmp_path)
    shot.write_text(shot.read_text().replace("frames: 1001-1100", "frames: 1020,1022-1024,1030,1032-1059"))
    out = tmp_path / "job.xml"
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "farm", "opencue", str(shot), "--out", str(out),
                        "--user", "nobody"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    root = ET.fromstring(out.read_text())
    parts = [la.get("name") for la in root.iter("layer") if la.get("name") != "check_outputs"]
    assert len(parts) >= 3 and all("_part" in n for n in parts), parts
    deps = {(d.findtext("deplayer"), d.findtext("onlayer")) for d in root.iter("depend")}
    assert {(b, a) for a, b in zip(parts, parts[1:], strict=False)} <= deps, deps
    assert {("check_outputs", n) for n in parts} <= deps


def test_paths_a_task_command_cannot_carry_are_refused(tmp_path: Path) -> None:
    """QA: Cuebot replaces #IFRAME#, #JOB#... in a task's whole command, quotes or not: a shot file named
    shot#IFRAME#.yaml made every task read shot1.yaml; a control character in a path crashed PyOutline's XML
    (exit 1). Refused, exit 2, no job written; the plate pattern's #### is no such token."""
    folder = tmp_path / "#JOB# x"
    folder.mkdir()
    shot = _shot(tmp_path)
    for path, said in ((folder / "sh020.yaml", "holds #JOB#, which OpenCue replaces in a task's command"),
                       (tmp_path / "shot#IFRAME#.yaml", "holds #IFRAME#, which OpenCue replaces"),
                       (tmp_path / "esc\x1b[31m.yaml", "holds a control character"),
                       # RQD's Docker mode puts the command in double quotes: its shell ran `id` in a path (QA)
                       (tmp_path / "sh $(touch pwned) `id`.yaml", "holds '$', which OpenCue's RQD expands"),
                       (tmp_path / "sh `id`.yaml", "holds '`', which OpenCue's RQD expands"),
                       (tmp_path / "sh \\x.yaml", "holds '\\\\', which OpenCue's RQD expands")):
        path.write_text(shot.read_text())
        out = tmp_path / "job.xml"
        r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "farm", "opencue", str(path), "--out", str(out)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and said in r.stderr, r.stderr
        assert not out.exists()
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "farm", "opencue", str(shot), "--out",
                        str(tmp_path / "ok.xml"), "--vom", "/opt/#FRAME#/vom"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "--vom '/opt/#FRAME#/vom' holds #FRAME#" in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "farm", "opencue", str(shot), "--out",
                        str(tmp_path / "ok.xml"), "--vom", "/opt/$VER/vom"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "--vom '/opt/$VER/vom' holds '$'" in r.stderr, r.stderr
    from vom_plugin.farm.opencue import _check_command_word

    with pytest.raises(InputError, match=r"holds '\$'"):  # bash's $[...] arithmetic, inside double quotes too
        _check_command_word("shot file", "/a/$[1+1]/s.yaml")
    quoted = tmp_path / """'"q" it's;& é projects$.yaml"""  # what single quotes carry in either RQD mode is carried
    # (a $ that starts no expansion too: a share's projects$, review)
    quoted.write_text(shot.read_text())
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "farm", "opencue", str(quoted), "--out",
                        str(tmp_path / "ok.xml")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and (tmp_path / "ok.xml").is_file(), r.stderr
