"""The Blender add-on (vom_plugin/host/blender_addon) and install.py --blender.

The Blender-free half (core.py) is tested here directly: frame mapping, shot files, the render job against
small fake ``vom`` scripts (progress, SIGTERM, SIGKILL, exit-2 reports). The rest runs in a real
``blender -b``: install.py installs and enables the add-on in a temporary Blender user folder, then
``tests/blender_e2e.py`` builds compositor trees on the demo shot, runs the operator (the real ``vom
render``) and renders the composite, whose alpha must be vom's alpha. Skipped where Blender is absent.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from vom_plugin.host import blender_knobs
from vom_plugin.host.blender_addon import common, core
from vom_plugin.nodedef import load_node_def

REPO = Path(__file__).resolve().parents[1]
ADDON_SRC = REPO / "vom_plugin" / "host" / "blender_addon"
DEMO = REPO / "vom_plugin" / "data" / "demo"
BLENDER = os.environ.get("BLENDER") or shutil.which("blender")
VOM = Path(sys.executable).parent / "vom"
NO_BLENDER = "blender is not installed (Debian: apt-get install blender; .ci/run installs it)"
needs_blender = pytest.mark.skipif(BLENDER is None, reason=NO_BLENDER)


def test_ci_has_blender() -> None:
    """Under CI (which installs it) a missing Blender fails the suite, as a missing exrheader or tclsh does: the
    tests that need it would otherwise all skip, and the add-on go untested with a green run."""
    from vom_plugin.train.clips import find_blender

    missing = [what for what, found in (("$BLENDER or blender on the PATH (the add-on's tests)", BLENDER),
                                        ("$VOM_BLENDER or blender on the PATH (training clips)", find_blender()))
               if found is None]
    if missing:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"{NO_BLENDER}: no {'; no '.join(missing)}")
# Optional: a Python with PyPI's `bpy` (Blender 4.x as a module) runs the end-to-end test against 4.x too.
BPY_PYTHON = os.environ.get("VOM_TEST_BPY_PYTHON")


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!{sys.executable}\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


# ------------------------------------------------------------------------------- the Blender-free half


def test_addon_imports_only_stdlib_and_bpy() -> None:
    for path in ADDON_SRC.glob("*.py"):
        tree = ast.parse(path.read_text(), feature_version=(3, 10))  # Blender 3.x bundles Python 3.10
        mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        mods |= {n.module.split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
        assert mods - {"bpy", "__future__"} <= set(sys.stdlib_module_names), (path.name, mods)
    # bl_info is read by Blender without running the module: it must be a literal
    init = ast.parse((ADDON_SRC / "__init__.py").read_text())
    bl_info = next(n.value for n in init.body if isinstance(n, ast.Assign) and n.targets[0].id == "bl_info")  # type: ignore
    info = ast.literal_eval(bl_info)
    assert info["blender"] == (3, 4, 0) and info["category"] == "Compositing"


def test_addon_keeps_to_blender_3s_python() -> None:
    """The language check above misses the standard library's API: vermin reads both (common.py also runs inside
    Nuke 13, under 3.7: tests/test_host_nuke.py)."""
    pytest.importorskip("vermin", reason="vermin (the dev extra) checks the Python version the code needs")
    r = subprocess.run([sys.executable, "-c", "import sys, vermin; sys.exit(vermin.main())", "--no-tips", "-q",
                        "--violations", "-t=3.10-", *sorted(map(str, ADDON_SRC.glob("*.py")))],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_frames_outside_the_plate_node_are_said_in_scene_frames() -> None:
    """A QA pass: Frames 95-105 of a plate shown from scene frame 101 came back from vom as "missing frames -5-0",
    a keyframe 99 as "frame -1": numbers the artist never typed. Now refused first, in scene frames."""
    timing = core.Timing(start=101, offset=0, duration=24)  # scene frames 101-124
    core.check_scene_frames(timing, "Plate", "101-124", {None: [101]})
    core.check_scene_frames(timing, "Plate", "", {"hero": [101, 124]})
    with pytest.raises(core.HostError, match=r"Frames 95-105: the plate node 'Plate' shows scene frames 101-124"):
        core.check_scene_frames(timing, "Plate", "95-105", {None: [101]})
    with pytest.raises(core.HostError, match=r"Frames 101-130x2: the plate node"):
        core.check_scene_frames(timing, "Plate", "101-130x2", {None: [101]})
    with pytest.raises(core.HostError, match=r"Keyframes: scene frame 99 is outside the scene frames 101-124"):
        core.check_scene_frames(timing, "Plate", "101-110", {None: [99]})
    with pytest.raises(core.HostError, match=r"Objects \(dog\): scene frame 125 is outside"):
        core.check_scene_frames(timing, "Plate", "", {"hero": [101], "dog": [125]})


def test_frames_without_a_plate_file_are_said_in_scene_frames(tmp_path: Path) -> None:
    """QA: an Image node over 24 files with Frame Duration 30 at Start 101 was refused by vom as "missing frames
    25-30 ... scene frame 101 is file frame 1", and with Offset -3 by file name (plate.-002.exr): file frames where the
    panel speaks of scene frames. The add-on lists the plate's folder first and says which scene frames lack a file."""
    plate = tmp_path / "p" / "plate.####.exr"
    plate.parent.mkdir()
    for f in range(1, 25):  # only listed, never opened
        Path(core.frame_path(str(plate), f)).touch()
    folder = plate.parent
    with pytest.raises(core.HostError) as e:
        core.check_plate_files(str(plate), core.Timing(101, 0, 30), "Plate", "", list(range(101, 131)), {None: [101]})
    assert str(e.value) == (
        f"Frames (empty: scene frames 101-130, those of the scene the plate node shows): scene frames 125-130 have no "
        f"plate file ({folder}/plate.0025.exr ... plate.0030.exr); the plate node 'Plate' has files for scene frames "
        f"101-124: set Frames within them, or the node's own Frames, Start and Offset to its files")
    with pytest.raises(core.HostError) as e:
        core.check_plate_files(str(plate), core.Timing(101, -3, 30), "Plate", "101-130x1", list(range(101, 131)),
                               {None: [104]})
    assert str(e.value).startswith(
        f"Frames 101-130x1: scene frames 101-103,128-130 have no plate file ({folder}/plate.-002.exr ... "
        f"plate.0027.exr); the plate node 'Plate' has files for scene frames 104-127: ")
    # the frames asked for are there, a keyframe (an object's) is not
    with pytest.raises(core.HostError, match=re.escape(
            f"Keyframes: scene frame 130 has no plate file ({folder}/plate.0030.exr); the plate node 'Plate' has files "
            f"for scene frames 101-124: set Keyframes within them")):
        core.check_plate_files(str(plate), core.Timing(101, 0, 30), "Plate", "101-110", list(range(101, 111)),
                               {None: [101, 130]})
    with pytest.raises(core.HostError, match=r"^Objects \(dog\): scene frame 127 has no plate file .*: set the "
                                             r"keyframes of 'dog' in Objects within them"):
        core.check_plate_files(str(plate), core.Timing(101, 0, 30), "Plate", "", list(range(101, 111)),
                               {"hero": [101], "dog": [127]})
    core.check_plate_files(str(plate), core.Timing(101, 0, 30), "Plate", "", list(range(101, 125)), {None: [124]})
    # a negative frame spelt -0002 (which vom reads too) is a file; no file of the pattern at all, or a folder that
    # is not there, is left to vom, which says why (padding, folder)
    (folder / "plate.-0002.exr").touch()
    core.check_plate_files(str(plate), core.Timing(101, -3, 24), "Plate", "", [101], {None: [101]})
    core.check_plate_files(str(folder / "other.####.exr"), core.Timing(1, 0, 5), "Plate", "", [1], {None: [1]})
    core.check_plate_files(str(tmp_path / "gone" / "plate.####.exr"), core.Timing(1, 0, 5), "Plate", "", [1],
                           {None: [1]})


def test_knob_table_is_current_and_is_the_node_definition() -> None:
    assert blender_knobs.default_path().read_text(encoding="utf-8") == blender_knobs.generate(), \
        "node_def.json is stale: run `vom gizmo`"
    node = load_node_def()
    table = core.node_def()["knobs"]
    assert [k["name"] for k in table] == [k.name for k in node.knobs] == list(core.shot_knob_names())
    for row, knob in zip(table, node.knobs, strict=True):
        assert (row["type"], row["default"], tuple(row["choices"]), row["required"]) == \
            (knob.type, knob.default, knob.choices, knob.required)
        assert (tuple(row["range"]) if row["range"] else None) == knob.range
    # the Blender wording speaks of scene frames and nodes
    assert "Scene frame" in next(k["help"] for k in table if k["name"] == "keyframes")
    assert "Plate node" in next(k["help"] for k in table if k["name"] == "plate")


def test_gizmo_check_covers_the_knob_table(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "gizmo", "--check"], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "node_def.json is current" in r.stdout


def test_sequence_pattern_and_frame_path() -> None:
    assert core.sequence_pattern("/p/sh010_v2.0101.exr") == ("/p/sh010_v2.####.exr", 101, 4)
    assert core.sequence_pattern("/p/plate_7.exr") == ("/p/plate_#.exr", 7, 1)
    with pytest.raises(core.HostError, match="no frame number"):
        core.sequence_pattern("/p/plate.exr")
    assert core.frame_path("/o/a.####.exr", 7) == "/o/a.0007.exr"
    assert core.frame_path("/o/a.@@@@.exr", 12345) == "/o/a.12345.exr"
    assert core.frame_path("/o/a.%03d.exr", 7) == "/o/a.007.exr"
    assert [core.pattern_digits(p) for p in ("a.####.exr", "a.@@.exr", "a.%05d.exr", "a.%d.exr")] == [4, 2, 5, 1]


def test_an_output_that_is_the_plates_own_files_is_found_through_links_and_padding(tmp_path: Path) -> None:
    """Review: the Output-over-the-plate check compared pattern strings at three frames; an Output through a linked
    folder, or with another padding (# over ####, the same file from frame 1000 on), passed it, and the add-on wrote
    its shot file beside the plate before vom refused."""
    plates = tmp_path / "plates"
    plates.mkdir()
    for f in (999, 1000, 1001):
        (plates / f"sh.{f:04d}.exr").write_bytes(b"plate")
    (tmp_path / "link").symlink_to(plates)
    plate = str(plates / "sh.####.exr")
    assert common.writes_over(plate, str(tmp_path / "link" / "sh.####.exr"), [999, 1000]) == 999
    assert common.writes_over(plate, str(plates / "sh.#.exr"), [999, 1000, 1001]) == 1000
    assert common.writes_over(plate, str(plates / "sh.#.exr"), [1, 999]) is None
    assert common.writes_over(plate, str(tmp_path / "out" / "sh.####.exr"), [999, 1000, 1001]) is None


@needs_blender
def test_a_dotdot_after_a_link_is_read_as_blenders_image_node_reads_it(tmp_path: Path,
                                                                       blender_home: dict[str, str]) -> None:
    """QA: Blender collapses a ``..`` as text (``link/../plates`` is ``plates``, whatever ``link`` points to), and the
    add-on had made paths absolute the system's way since session 53 (the link's target's parent): vom matted another
    plate than the one the Image node showed, and said nothing. The add-on reads a path as Blender's nodes do."""
    import numpy as np
    import OpenImageIO as oiio

    (tmp_path / "real" / "a" / "b").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real" / "a" / "b")
    for folder, value in ((tmp_path / "plates", 0.25), (tmp_path / "real" / "a" / "plates", 0.75)):
        folder.mkdir()
        assert oiio.ImageBuf(np.full((4, 4, 4), value, np.float32)).write(str(folder / "p.0001.exr"))
    path = str(tmp_path / "link" / ".." / "plates" / "p.0001.exr")
    expr = (f"import sys; sys.path.insert(0, {str(ADDON_SRC.parent)!r}); import bpy; "
            f"from blender_addon import ui; img = bpy.data.images.load({path!r}); "
            f"print('VOM_SEEN', img.pixels[0], ui._abspath({path!r}))")
    seen = next(line for line in _blender_expr(blender_home, expr, factory=True).splitlines()
                if line.startswith("VOM_SEEN"))
    value, given = seen.split(" ", 2)[1:]
    assert float(value) == 0.25  # Blender's own reading: the text collapsed
    assert given == str(tmp_path / "plates" / "p.0001.exr")  # what vom is given: the file Blender shows


def test_timing_maps_scene_frames_to_file_frames() -> None:
    t = core.Timing(start=101, offset=0, duration=24)  # plate.0001.exr shown from scene frame 101
    assert (t.file_frame(101), t.file_frame(124), t.scene_frame(1)) == (1, 24, 101)
    assert t.scene_range == (101, 124)
    t = core.Timing(start=1, offset=1000, duration=50)  # plate.1001.exr shown from scene frame 1
    assert (t.file_frame(1), t.scene_frame(1050)) == (1001, 50)
    # a Movie Clip of plate.0001.exr.. with start 201 and offset 1 shows plate.0002 at 201 (checked in Blender below)
    assert core.clip_timing(1, 201, 1, 24).file_frame(201) == 2
    # vom's messages name file frames: said in the scene's terms where the two differ, nothing where they agree
    assert core.file_frames_note(core.Timing(101, 0, 24)) == ("vom numbers frames as the plate's files do: scene "
                                                               "frame 101 is file frame 1")
    assert core.file_frames_note(core.Timing(1, 1000, 50)).endswith("scene frame 1 is file frame 1001")
    assert core.file_frames_note(core.Timing(1, 0, 24)) == core.file_frames_note(core.Timing(1001, 1000, 5)) == ""
    # said only beside vom's words that name a frame (a host's own "scene frame" and "script frames" are not vom's)
    assert [common.names_frames(t) for t in ("keyframe 1005: its matte lies mostly off its roto",
                                             "plate frames 3-5 hold NaN or Inf pixels", "plate frame -3 is blank",
                                             "cache: off (VOM_CACHE_MIN_FREE_GB)", "roto.1001.exr (the Mask at scene "
                                             "frame 101)", "script frames 1001-1010 show an earlier render's")] \
        == [True, True, True, False, False, False]
    assert core.shift_frames("101-124x2, 130,140-141", -100) == "1-24x2,30,40-41"
    # several ranges as Nuke writes them, spaces inside a part, negative frames: read as vom reads them
    assert core.shift_frames("101-124 130 - 131", -100) == "1-24,30-31"
    assert core.shift_frames("-10 -5", 10) == "0,5"
    assert core.frame_bounds("101-124 90") == (90, 124)
    with pytest.raises(core.HostError, match="frames '10-1': 10-1 ends before it starts"):
        core.shift_frames("10-1", 0)
    with pytest.raises(core.HostError, match="frames 'a-b'"):
        core.shift_frames("a-b", 0)
    assert core.default_scene_frames(t, 10, 200) == (10, 50)
    with pytest.raises(core.HostError, match="plate covers scene frames 1-50, outside the scene's range 60-70"):
        core.default_scene_frames(t, 60, 70)
    assert core.parse_keyframes("50, 1 1") == [1, 50]
    with pytest.raises(core.HostError, match="keyframes: 'x' is not a frame number"):
        core.parse_keyframes("1 x")
    with pytest.raises(core.HostError, match="keyframes: empty"):
        core.parse_keyframes(" ")


def test_colorspace_channel_and_default_paths() -> None:
    names = ("Linear", "Linear Rec.709", "ACEScg", "Linear ACEScg", "sRGB", "Non-Color", "Raw", "Linear ACES",
             "ACES2065-1")
    assert [core.colorspace_for(n) for n in names] == ["lin_rec709", "lin_rec709", "ACEScg", "ACEScg", "sRGB", "raw",
                                                       "raw", "ACES2065-1", "ACES2065-1"]
    # a studio's ACES or CG config (OCIO=...), whose names Blender shows instead
    assert [core.colorspace_for(n) for n in ("ACES - ACEScg", "Utility - Linear - sRGB", "Utility - sRGB - Texture",
                                             "Utility - Raw", "ACES - ACES2065-1")] == ["ACEScg", "lin_rec709", "sRGB",
                                                                                       "raw", "ACES2065-1"]
    # names of Blender 3.x and 4.x configs that vom cannot read
    for other in ("Filmic Log", "XYZ", "AgX Log", "Linear Rec.2020"):
        with pytest.raises(core.HostError, match=f"colour space '{other}' .* has no vom equivalent"):
            core.colorspace_for(other)
    assert core.frame_ranges([5, 1, 2, 3, 7, 8, 3]) == "1-3,5,7-8" and core.frame_ranges([]) == ""
    from vom_plugin.io.sequence import format_frames  # the hosts' stdlib copy of it: the same text

    for frames in ([5, 1, 2, 3, 7, 8, 3], [-3, -2, 0, 1001], [7], []):
        assert core.frame_ranges(frames) == format_frames(frames, sep=",")
    assert (core.alpha_socket("A"), core.alpha_socket("vom.A")) == ("Alpha", "vom")
    with pytest.raises(core.HostError, match="channel 'R'"):
        core.alpha_socket("R")
    with pytest.raises(core.HostError, match="render pass"):
        core.alpha_socket("a.b.A")
    assert core.default_out("/shows/x/sh010_comp.v003.blend", "Scene", "Plate_1.001", 4) == \
        "/shows/x/vom/sh010_comp.v003/Scene_Plate_1.001.####.exr"  # file-safe names as they are (as before)
    # scene and plate node names made safe get a tag too: "Фон" and "Герой" were both "plate", "Plate A" met
    # "Plate_A", and the second render was refused with advice to empty an Output that was empty (QA)
    keys = {core.node_key(scene, node) for scene in ("Scene", "Сцена", "Scene 2", "Scene_2")
            for node in ("Фон", "Герой", "Plate A", "Plate_A", "Plate 1 (sh010)", "Image")}
    assert len(keys) == 24, keys
    assert core.node_key("Scene", "Plate_A") == "Scene_Plate_A" and core.node_key("Scene_2", "Image") == "Scene_2_Image"
    assert re.fullmatch(r"Scene_Plate_1_sh010-[0-9a-f]{6}", core.node_key("Scene", "Plate 1 (sh010)"))
    assert re.fullmatch(r"scene-[0-9a-f]{6}_plate-[0-9a-f]{6}", core.node_key("Сцена", "Фон"))
    # a name made safe gets a tag of the name as it was: two .blend files in one folder whose names are made the same
    # wrote each other's mattes (QA: "sh010 v1" and "sh010_v1", two Cyrillic names)
    spaced = core.default_out("/shows/x/sh010 comp.v003.blend", "Scene", "Image", 4)
    assert re.fullmatch(r"/shows/x/vom/sh010_comp\.v003-[0-9a-f]{6}/Scene_Image\.####\.exr", spaced), spaced
    outs = {core.default_out(f"/p/{n}.blend", "Scene", "Image", 4) for n in ("шот", "кадр", "sh010 v1", "sh010_v1")}
    assert len(outs) == 4
    # the work folder is named after the Output: two .blend files with their own Outputs in one folder and a plate
    # node of the same name shared a shot file
    assert core.work_dir("/o/sh010_alpha_v002.####.exr") == Path("/o/sh010_alpha_v002_vom")
    # {object} is no letter: a digest, or it shared object.%04d.exr's folder (QA)
    assert re.fullmatch(r"object-[0-9a-f]{8}_vom", core.work_dir("/o/{object}.%04d.exr").name)
    # a matte loads as data under the names colour configs give it (a studio ACES config has no "Non-Color")
    assert core.data_colorspace(["Linear", "Non-Color", "sRGB"]) == "Non-Color"
    assert core.data_colorspace(["ACES - ACEScg", "Utility - Raw", "Utility - sRGB - Texture"]) == "Utility - Raw"
    assert core.data_colorspace(["ACEScg", "sRGB"]) is None


def test_shot_file_loads_as_a_shot(tmp_path: Path) -> None:
    from vom_plugin.engine.shot import Shot

    for f in (1, 2, 3):
        (tmp_path / f"plate.{f:04d}.exr").write_bytes(b"")
    fields = core.shot_fields({"working_size": 256, "cache": "", "channel": "vom.A", "model": "lite", "top_k": 4,
                               "colorspace": "lin_rec709"},
                              plate=str(tmp_path / "plate.####.exr"), frames="1-3",
                              keyframes={1: str(tmp_path / 'ro "to".0001.exr')}, out=str(tmp_path / "o" / "a.####.exr"))
    shot_file = core.write_text_atomic(tmp_path / "w" / "shot.yaml", core.shot_yaml(fields))
    assert "cache" not in yaml.safe_load(shot_file.read_text())
    shot = Shot.from_yaml(shot_file)
    assert shot.frames == [1, 2, 3] and shot.working_size == 256 and shot.channel == "vom.A"
    assert shot.keyframes == {1: tmp_path / 'ro "to".0001.exr'}
    assert not list((tmp_path / "w").glob(".*tmp"))
    # several objects: each its rotos (the Mask or Image node of its name, rendered or read at its frames)
    objects = {"hero": {1: str(tmp_path / "roto_hero.0001.exr")},
               "stone": {1: str(tmp_path / "roto_stone.0001.exr"), 3: str(tmp_path / "roto_stone.0003.exr")}}
    fields = core.shot_fields({"objects": "hero 1; stone 1 3", "channel": "A"}, plate=str(tmp_path / "plate.####.exr"),
                              frames="1-3", keyframes={}, out=str(tmp_path / "o" / "a.####.exr"), objects=objects)
    shot = Shot.from_yaml(core.write_text_atomic(tmp_path / "w" / "shot.yaml", core.shot_yaml(fields)))
    assert shot.objects == {n: {f: Path(p) for f, p in kf.items()} for n, kf in objects.items()}
    assert shot.keyframes == {}


def test_objects_setting_and_the_mattes_it_makes() -> None:
    assert core.parse_objects("hero 1 50; stone 40\n") == {"hero": [1, 50], "stone": [40]}
    assert core.parse_objects("  ") == {}
    with pytest.raises(core.HostError, match="objects, line 2: 'Mask.001' is not a layer name .*'hero 1 50; dog 40'"):
        core.parse_objects("hero 1; Mask.001 3")
    with pytest.raises(core.HostError, match=r"objects, line 1 \(hero\): keyframes: empty"):
        core.parse_objects("hero")
    shared = {"out": "/o/m.####.exr", "channel": "A", "objects": {"hero": {}, "stone": {}}}
    assert core.mattes(shared) == [("hero", "/o/m.####.exr", "hero.A"), ("stone", "/o/m.####.exr", "stone.A")]
    split = {**shared, "out": "/o/{object}.####.exr", "channel": "vom.A"}
    assert core.mattes(split) == [("hero", "/o/hero.####.exr", "vom.A"), ("stone", "/o/stone.####.exr", "vom.A")]
    assert core.mattes({"out": "/o/a.####.exr", "channel": "A"}) == [(None, "/o/a.####.exr", "A")]
    # in one file with vom.A each object is vom.hero.A, which Blender shows as a render pass: refused before vom
    with pytest.raises(core.HostError, match="render pass"):
        core.alpha_socket(core.mattes({**shared, "channel": "vom.A"})[0][2])


def test_vom_names_the_rotos_by_the_mask_or_node_they_came_from() -> None:
    """QA: a refused or doubtful roto was named by the file the add-on baked from a Mask, which the artist never
    chose; each is followed by the Mask (or Image node) and scene frame it came from."""
    masks = core.roto_sources({None: {12: "/w/sh_vom/roto.0013.exr"}}, True, "roto_a", "Roto")
    said = "keyframe 13: roto /w/sh_vom/roto.0013.exr looks inverted (ends in /w/sh_vom/roto.0013.exr)"
    assert common.name_rotos(said, masks) == (
        "keyframe 13: roto /w/sh_vom/roto.0013.exr (the Mask 'roto_a' at scene frame 12) looks inverted (ends in "
        "/w/sh_vom/roto.0013.exr)")
    objects = core.roto_sources({"hero": {1: "/w/r_hero.0001.exr"}, "dog": {40: "/w/r_dog.0040.exr"}}, False, "",
                                "Roto")
    assert objects == {"/w/r_hero.0001.exr": "the Image node 'hero' at scene frame 1",
                       "/w/r_dog.0040.exr": "the Image node 'dog' at scene frame 40"}
    shared = core.roto_sources({"hero": {1: "/w/r.0001.exr"}, "dog": {1: "/w/r.0001.exr"}}, True, "", "")
    assert shared == {"/w/r.0001.exr": "the Mask 'hero' at scene frame 1 and the Mask 'dog' at scene frame 1"}
    text = common.name_rotos("a\nroto /w/r_dog.0040.exr is empty\nb", objects)
    assert text == "a\nroto /w/r_dog.0040.exr (the Image node 'dog' at scene frame 40) is empty\nb"
    # vom's own "(frame 1)" after the file gives way to the host's words, which name the frame (QA: "roto file
    # /x/roto.0001.exr (the Image node 'Roto' at scene frame 1) (frame 1) does not exist")
    roto = {"/x/roto.0001.exr": "the Image node 'Roto' at scene frame 101"}
    assert common.name_rotos("keyframes: roto file /x/roto.0001.exr (frame 1) does not exist", roto) == (
        "keyframes: roto file /x/roto.0001.exr (the Image node 'Roto' at scene frame 101) does not exist")
    assert common.name_rotos("sh.yaml: keyframes: roto file /x/roto.0001.exr (frame 1): not an image", roto) == (
        "sh.yaml: keyframes: roto file /x/roto.0001.exr (the Image node 'Roto' at scene frame 101): not an image")
    assert common.name_rotos("roto /x/roto.0001.exr (frame 1 of 3) is empty", roto) == (  # not only a frame's
        "roto /x/roto.0001.exr (the Image node 'Roto' at scene frame 101) (frame 1 of 3) is empty")
    windows = {r"C:\sh\1\roto.0001.exr": "the Roto input at frame 1001"}
    assert common.name_rotos(r"roto file C:\sh\1\roto.0001.exr (frame 1) does not exist", windows) == (
        r"roto file C:\sh\1\roto.0001.exr (the Roto input at frame 1001) does not exist")


def test_vom_executable_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_vom, pref_vom, rec_vom = (_script(tmp_path / n, "") for n in ("env_vom", "pref_vom", "rec_vom"))
    recorded = tmp_path / "vom_env.json"
    recorded.write_text(json.dumps({"vom": str(rec_vom)}))
    monkeypatch.setattr(core, "ENV_FILE", recorded)
    monkeypatch.setenv("VOM_EXECUTABLE", str(env_vom))
    assert core.vom_executable(str(pref_vom)) == str(env_vom)
    # a stale VOM_EXECUTABLE: said to be the environment's (it told the artist to set the preference, which was
    # set and passed over: QA)
    monkeypatch.setenv("VOM_EXECUTABLE", "/opt/old_vom/bin/vom")
    with pytest.raises(core.HostError, match=r"'/opt/old_vom/bin/vom' does not exist \(from the environment's "
                                             r"VOM_EXECUTABLE, which the add-on's preference does not override"):
        core.vom_executable(str(pref_vom))
    monkeypatch.delenv("VOM_EXECUTABLE")
    assert core.vom_executable(str(pref_vom)) == str(pref_vom)
    assert core.vom_executable("") == str(rec_vom)
    monkeypatch.setattr(core, "ENV_FILE", tmp_path / "absent.json")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(core.HostError, match="install.py --blender"):
        core.vom_executable("")
    with pytest.raises(core.HostError, match="'/nope/vom' does not exist"):
        core.vom_executable("/nope/vom")
    pref_vom.chmod(0o644)  # there, but not a program: an error report in Blender, not a traceback at start
    with pytest.raises(core.HostError, match="pref_vom' is not executable"):
        core.vom_executable(str(pref_vom))
    assert core.subprocess_env({"PYTHONHOME": "/blender/python", "PYTHONPATH": "/blender/lib", "A": "1"}) == {"A": "1"}


def test_render_job_progress_and_status(tmp_path: Path) -> None:
    vom = _script(tmp_path / "vom", (
        "import json, sys, time\n"
        "print('loading', flush=True)\n"
        "print(json.dumps({'event': 'start', 'total': 4, 'device': 'cpu'}), flush=True)\n"
        "for i in range(1, 5):\n"
        "    time.sleep(0.05)\n"
        "    print(json.dumps({'event': 'frame', 'frame': 100 + i, 'done': i, 'total': 4}), flush=True)\n"
        "print(json.dumps({'event': 'done', 'frames_written': 4}), flush=True)\n"
        "print('a warning', file=sys.stderr)\n"
    ))
    job = core.RenderJob([str(vom)])
    assert job.status().startswith("VOM Matte: starting vom")
    seen: list[tuple[str, int | None]] = []
    statuses: list[str] = []

    def on(p: core.Progress) -> None:
        seen.append((p.event, p.percent))
        statuses.append(job.status(p))

    assert job.wait(on_progress=on, poll_s=0.01) == 0
    assert seen == [("start", None), ("frame", 25), ("frame", 50), ("frame", 75), ("frame", 100), ("done", None)]
    assert statuses[0] == "VOM Matte: 4 frames on cpu... Esc cancels"
    assert statuses[1] == "VOM Matte: frame 101 (1/4). Esc cancels"  # no rate before a second frame
    assert statuses[4].startswith("VOM Matte: frame 104 (4/4), ") and " s/frame, 0:00 left" in statuses[4]
    assert statuses[5] == job.status() == "VOM Matte: done, 4 frames written"
    shifted = core.RenderJob([str(vom)], frame_offset=-100)  # the plate's file frame 101 shown at scene frame 1
    texts: list[str] = []
    assert shifted.wait(on_progress=lambda p: texts.append(shifted.status(p)), poll_s=0.01) == 0
    assert texts[1] == "VOM Matte: frame 1 (1/4). Esc cancels" and texts[4].startswith("VOM Matte: frame 4 (4/4), ")
    assert "loading" in job.output_tail and "a warning" in job.output_tail
    assert not job.running and not job.cancelled
    # the bar Blender shows never goes back: damaged cache entries computed again grow the steps' total (QA: 30% ->
    # 27%)
    steps = _script(tmp_path / "vom_steps", (
        "import json, time\n"
        "for d, t in ((7, 23), (8, 30), (12, 30)):\n"
        "    print(json.dumps({'event': 'step', 'steps_done': d, 'steps_total': t}), flush=True)\n"
        "    time.sleep(0.3)\n"
    ))
    steps_job = core.RenderJob([str(steps)])
    shown: list[int | None] = []
    assert steps_job.wait(on_progress=lambda p: shown.append(steps_job.percent()), poll_s=0.01) == 0
    assert shown == [30, 30, 40], shown


def test_render_job_knows_a_render_without_the_cache(tmp_path: Path) -> None:
    """A cancel's report said "the next render resumes from the cache" of a render that ran without it (QA, in Nuke):
    the job keeps the start event's reason, which the report says instead."""
    off = "rendering without the cache: /c is a file"
    # a cache read and not written keeps nothing of the render either (review: a cancel promised a resume)
    full = "the disk holding /c has 1 MiB free"
    for start, said in (({"cache": None, "cache_off": off}, "/c is a file"), ({"cache": "/c/shot"}, ""), ({}, ""),
                        ({"cache": "/c/shot", "cache_read_only": full}, f"it was read, not written: {full}")):
        vom = _script(tmp_path / "vom", (
            "import json\n"
            f"print(json.dumps(dict(event='start', total=1, **{start!r})), flush=True)\n"
            "print(json.dumps({'event': 'done', 'frames_written': 1}), flush=True)\n"))
        job = core.RenderJob([str(vom)])
        assert job.wait(poll_s=0.01) == 0 and job.started
        assert job.cache_off == said, start


def test_render_job_cancel_sigterm_then_sigkill(tmp_path: Path) -> None:
    marker = tmp_path / "terminated"
    polite = _script(tmp_path / "polite", (
        "import json, signal, sys, time\n"
        f"def stop(*_):\n    open({str(marker)!r}, 'w').write('clean'); sys.exit(130)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print(json.dumps({'event': 'frame', 'frame': 1, 'done': 1, 'total': 100}), flush=True)\n"
        "time.sleep(60)\n"
    ))
    job = core.RenderJob([str(polite)], terminate_timeout=20)
    assert job.wait(poll_s=0.01, should_cancel=lambda: job.last is not None) == 130
    assert job.cancelled and marker.read_text() == "clean" and job.status() == "VOM Matte: cancelling..."

    stubborn = _script(tmp_path / "stubborn", (
        "import json, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print(json.dumps({'done': 1, 'total': 10}), flush=True)\n"
        "time.sleep(60)\n"
    ))
    t0 = time.monotonic()
    job = core.RenderJob([str(stubborn)], terminate_timeout=0.5)
    assert job.wait(poll_s=0.01, should_cancel=lambda: job.last is not None) == -9
    assert time.monotonic() - t0 < 30


def test_render_job_failure_is_vom_own_message(tmp_path: Path) -> None:
    bad = _script(tmp_path / "vom", (
        "import sys\nprint('{\"event\": \"error\", \"message\": \"plate: missing frames 3-5\", \"exit_code\": 2}', "
        "flush=True)\nsys.exit(2)\n"))
    job = core.RenderJob([str(bad)])
    assert job.wait(poll_s=0.01) == 2
    assert job.failure() == "vom render failed (bad input, exit 2): plate: missing frames 3-5"
    crash = _script(tmp_path / "crash", "import sys\nprint('Traceback: boom', file=sys.stderr)\nsys.exit(1)\n")
    job = core.RenderJob([str(crash)])
    job.wait(poll_s=0.01)
    assert job.failure() == "vom render failed (internal error, exit 1): Traceback: boom"


def test_render_job_takes_bytes_that_are_not_utf8_without_hanging(tmp_path: Path) -> None:
    """QA (the Nuke node's reader, which this shares): a Latin-1 byte on stderr killed the reader thread, the pipe
    filled and vom waited for ever."""
    vom = _script(tmp_path / "vom", (
        "import sys\n"
        "sys.stderr.buffer.write(b'cannot open plate_\\xe9t\\xe9.0003.exr\\n' + b'x' * 300000 + b'\\n')\n"
        "sys.stderr.flush()\n"
        "print('{\"event\": \"error\", \"message\": \"plate frame 3 missing\", \"exit_code\": 2}', flush=True)\n"
        "sys.exit(2)\n"))
    job = core.RenderJob([str(vom)])
    t0 = time.monotonic()
    assert job.wait(poll_s=0.01, should_cancel=lambda: time.monotonic() - t0 > 60) == 2
    assert not job.cancelled and job.failure() == "vom render failed (bad input, exit 2): plate frame 3 missing"
    # the bar does not reach 100 on a step event before every frame is written (shared with the Nuke node)
    step = core.parse_progress('{"event": "step", "frames_done": 2, "steps_done": 5, "steps_total": 5}')
    assert step is not None and step.percent == 99


def test_real_vom_bad_roto_names_the_file(tmp_path: Path) -> None:
    if not VOM.exists():
        pytest.skip("vom is not installed in this environment")
    fields = core.shot_fields({}, plate=str(DEMO / "plate.####.exr"), frames="1-2",
                              keyframes={1: str(tmp_path / "nope" / "roto.0001.exr")}, out=str(tmp_path / "o.####.exr"))
    shot = core.write_text_atomic(tmp_path / "shot.yaml", core.shot_yaml(fields))
    job = core.RenderJob(core.build_render_command(str(VOM), shot), env=_vom_env(os.environ))
    assert job.wait(poll_s=0.05) == 2
    assert str(tmp_path / "nope" / "roto.0001.exr") in job.failure() and "exit 2" in job.failure()
    assert not list(tmp_path.glob("o.*"))


def test_mypy_clean(repo: Path) -> None:
    mypy = Path(sys.executable).parent / "mypy"
    if not mypy.exists():
        pytest.skip("mypy not installed")
    env = {**os.environ, "MYPY_CACHE_DIR": str(repo / ".mypy_cache")}
    # these files, not what they import (the package's public names lead a type checker into the engine)
    r = subprocess.run([str(mypy), "--follow-imports=silent", "vom_plugin/host/blender_addon/core.py",
                        "vom_plugin/host/blender_addon/common.py", "vom_plugin/host/blender_knobs.py"],
                       cwd=repo, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


# --------------------------------------------------------------------------------- install.py --blender


def test_install_copies_the_addon_idempotently_and_uninstalls_exactly(inst: types.ModuleType,
                                                                      tmp_path: Path) -> None:
    addons = tmp_path / "addons"
    (addons / "someone_elses").mkdir(parents=True)
    changed = inst.blender_install(addons, "/env/bin/vom")
    target = addons / "vom_matte"
    assert sorted(p.name for p in changed) == ["__init__.py", "common.py", "core.py", "node_def.json", "ui.py",
                                               "vom_env.json"]
    for name in ("__init__.py", "common.py", "core.py", "ui.py", "node_def.json"):
        assert (target / name).read_bytes() == (ADDON_SRC / name).read_bytes()
    marker = json.loads((target / "vom_env.json").read_text())
    assert marker == {"vom": "/env/bin/vom", "checkout": str(REPO), "files": sorted(p.name for p in changed)}
    before = {p.name: p.stat().st_mtime_ns for p in target.iterdir()}
    assert inst.blender_install(addons, "/env/bin/vom") == []
    assert {p.name: p.stat().st_mtime_ns for p in target.iterdir()} == before
    # a module an older version installed (its marker lists it) goes; a file the artist added stays
    (target / "old_module.py").write_text("# from an older version\n")
    (target / "vom_env.json").write_text(json.dumps({**marker, "files": [*marker["files"], "old_module.py"]}))
    (target / "my_presets.py").write_text("# mine\n")
    # Python's compiled copies of the add-on's modules go with them; anything else in __pycache__ is not install.py's
    # (a QA pass: the folder was removed whole, a user's file with it)
    (target / "__pycache__").mkdir()
    for name in ("core.cpython-311.pyc", "old_module.cpython-311.pyc", "my_presets.cpython-311.pyc", "mine.txt"):
        (target / "__pycache__" / name).write_bytes(b"")
    assert [p.name for p in inst.blender_install(addons, "/moved/bin/vom")] == ["vom_env.json", "old_module.py"]
    assert not (target / "old_module.py").exists() and (target / "my_presets.py").read_text() == "# mine\n"
    assert sorted(p.name for p in (target / "__pycache__").iterdir()) == ["mine.txt", "my_presets.cpython-311.pyc"]
    # the add-on's files go; the artist's file keeps the folder, said as such (not then "removed": QA)
    assert inst.blender_uninstall(addons) == "left"
    assert sorted(p.name for p in target.iterdir()) == ["__pycache__", "my_presets.py", "vom_env.json"]
    assert (addons / "someone_elses").is_dir() and (target / "__pycache__" / "mine.txt").is_file()
    # the folder is still install.py's (its marker lists no add-on file): installing again goes on, where it was
    # refused as "not installed by install.py" (QA), and uninstalling again leaves the artist's files as they are
    assert json.loads((target / "vom_env.json").read_text())["files"] == ["vom_env.json"]
    assert "__init__.py" in [p.name for p in inst.blender_install(addons, "/env/bin/vom")]
    assert (target / "my_presets.py").read_text() == "# mine\n"
    assert inst.blender_uninstall(addons) == "left"
    # a file of the artist's there that bears an add-on file's name is never written over (a review)
    (target / "ui.py").write_text("# my own ui\n")
    with pytest.raises(inst.InstallError, match=r"holds ui.py, which install.py did not put there") as e:
        inst.blender_install(addons, "/env/bin/vom")
    assert e.value.code == 2 and (target / "ui.py").read_text() == "# my own ui\n"
    assert not (target / "__init__.py").exists()
    # the add-on's own file, left by an install stopped before it wrote its marker: not refused (a review)
    (target / "ui.py").write_bytes((ADDON_SRC / "ui.py").read_bytes())
    assert "__init__.py" in [p.name for p in inst.blender_install(addons, "/env/bin/vom")]
    assert inst.blender_uninstall(addons) == "left"
    assert sorted(p.name for p in target.iterdir()) == ["__pycache__", "my_presets.py", "vom_env.json"]
    import shutil

    shutil.rmtree(target / "__pycache__")
    (target / "my_presets.py").unlink()
    assert inst.blender_uninstall(addons) is True  # only the marker was left: the folder goes
    inst.blender_install(addons, "/env/bin/vom")
    # a module the installed version has and this checkout does not: its compiled copy goes too (a review)
    marker = json.loads((target / "vom_env.json").read_text())
    (target / "vom_env.json").write_text(json.dumps({**marker, "files": [*marker["files"], "gone_module.py"]}))
    (target / "gone_module.py").write_text("# from the installed version\n")
    (target / "__pycache__").mkdir()
    (target / "__pycache__" / "gone_module.cpython-311.pyc").write_bytes(b"")
    assert inst.blender_uninstall(addons) is True
    assert not target.exists() and (addons / "someone_elses").is_dir()
    assert inst.blender_uninstall(addons) is False


def test_install_neither_writes_into_nor_removes_a_linked_addon_folder(inst: types.ModuleType,
                                                                       tmp_path: Path) -> None:
    # a developer's copy linked in as vom_matte: the install wrote into it and deleted its other files
    dev = tmp_path / "dev_copy"
    dev.mkdir()
    (dev / "vom_env.json").write_text("{}")
    (dev / "NOTES.md").write_text("mine\n")
    addons = tmp_path / "addons"
    addons.mkdir()
    (addons / "vom_matte").symlink_to(dev)
    for call in (lambda: inst.blender_install(addons, "/v"), lambda: inst.blender_uninstall(addons)):
        with pytest.raises(inst.InstallError, match="is a link to") as e:
            call()
        assert e.value.code == 2
    assert sorted(p.name for p in dev.iterdir()) == ["NOTES.md", "vom_env.json"]


def test_install_refuses_a_folder_it_did_not_write(inst: types.ModuleType, tmp_path: Path) -> None:
    (tmp_path / "vom_matte").mkdir()
    (tmp_path / "vom_matte" / "__init__.py").write_text("# a studio's own add-on\n")
    for call in (lambda: inst.blender_install(tmp_path, "/v"), lambda: inst.blender_uninstall(tmp_path)):
        with pytest.raises(inst.InstallError, match="was not installed by install.py") as e:
            call()
        assert e.value.code == 2
    assert (tmp_path / "vom_matte" / "__init__.py").read_text() == "# a studio's own add-on\n"


def test_install_without_blender_needs_a_folder(inst: types.ModuleType, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(inst, "find_blender", lambda: None)
    with pytest.raises(inst.InstallError, match="pass the add-ons folder") as e:
        inst.register_blender("", sys.executable)
    assert e.value.code == 2
    inst.register_blender(str(tmp_path), sys.executable)
    assert (tmp_path / "vom_matte" / "ui.py").is_file()
    assert "enable 'VOM Matte' in Blender's Preferences" in capsys.readouterr().out
    r = subprocess.run([sys.executable, str(REPO / "install.py"), "--uninstall", "--blender", str(tmp_path)],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "BLENDER": "/nonexistent"},
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr  # $BLENDER names no Blender: only the files are removed
    assert not (tmp_path / "vom_matte").exists() and "removed" in r.stdout


# --------------------------------------------------------------------------------------- real Blender


def _vom_env(base: Any) -> dict[str, str]:
    """The environment Blender (and the vom it starts) runs in: this checkout first on the path."""
    env = dict(base)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("VOM_EXECUTABLE", None)
    return env


@pytest.fixture(scope="module")
def blender_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A throw-away Blender user folder (scripts, config) and HOME: nothing under ~ is touched."""
    root = tmp_path_factory.mktemp("blender_home")
    env = _vom_env(os.environ)
    env.update(HOME=str(root / "home"), BLENDER_USER_SCRIPTS=str(root / "scripts"),
               BLENDER_USER_CONFIG=str(root / "config"), BLENDER_USER_DATAFILES=str(root / "datafiles"))
    (root / "home").mkdir()
    return env


def _blender_expr(env: dict[str, str], expr: str, factory: bool = False) -> str:
    cmd = [str(BLENDER), "-b", *(["--factory-startup"] if factory else []), "--python-exit-code", "1",
           "--python-expr", expr]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


ENABLED = "import bpy; print('VOM_ENABLED=%s' % ('vom_matte' in bpy.context.preferences.addons))"


@pytest.mark.slow
@needs_blender
def test_install_enables_the_addon_in_real_blender(inst: types.ModuleType, blender_home: dict[str, str],
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    if not VOM.exists():
        pytest.skip("vom is not installed in this environment")
    for k, v in blender_home.items():
        monkeypatch.setenv(k, v)
    addons = Path(blender_home["BLENDER_USER_SCRIPTS"]) / "addons"
    assert inst.blender_addons_dir(BLENDER) == addons  # the default folder, asked of Blender
    inst.register_blender("", sys.executable, BLENDER)
    assert "enabled the add-on in Blender's preferences" in capsys.readouterr().out
    assert json.loads((addons / "vom_matte" / "vom_env.json").read_text())["vom"] == str(VOM)
    assert "VOM_ENABLED=True" in _blender_expr(blender_home, ENABLED)  # a plain start: the saved preferences
    prefs = Path(blender_home["BLENDER_USER_CONFIG"]) / "userpref.blend"
    stamp = prefs.stat().st_mtime_ns
    inst.register_blender(str(addons), sys.executable, BLENDER)
    out = capsys.readouterr().out
    assert "is current; nothing to copy" in out and "already enabled" in out
    assert prefs.stat().st_mtime_ns == stamp

    inst.unregister_blender(str(addons), BLENDER)
    assert "disabled the add-on" in capsys.readouterr().out and not (addons / "vom_matte").exists()
    assert "VOM_ENABLED=False" in _blender_expr(blender_home, ENABLED)
    inst.register_blender(str(addons), sys.executable, BLENDER)  # installed again for the end-to-end test


def _read(path: Path, channel: str | None = None) -> Any:
    """The pixels of ``path`` ([H, W, C]), or its channel ``channel`` ([H, W])."""
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(str(path))
    assert not buf.has_error, buf.geterror()
    pixels = buf.get_pixels(oiio.FLOAT)
    return pixels if channel is None else pixels[..., list(buf.spec().channelnames).index(channel)]


@pytest.mark.slow
@pytest.mark.parametrize("runner", [
    pytest.param("blender", marks=needs_blender),
    pytest.param("bpy-module", marks=pytest.mark.skipif(
        not BPY_PYTHON, reason="VOM_TEST_BPY_PYTHON (a Python with PyPI's bpy, Blender 4.x) is not set")),
])
def test_compositor_end_to_end_in_real_blender(runner: str, blender_home: dict[str, str], tmp_path: Path,
                                                installed_addon: None) -> None:
    import numpy as np

    addons = Path(blender_home["BLENDER_USER_SCRIPTS"]) / "addons"
    cases = [
        {"name": "image", "plate": "image", "roto": "image", "scene_frames": [101, 104], "plate_timing": [101, 0, 24],
         "keyframe": 101, "out": str(tmp_path / "out_image" / "alpha.####.exr"),
         "composite": str(tmp_path / "comp_image" / "comp.####.exr")},
        # a Movie Clip shown from scene frame 201 with offset 1 (plate.0002 at 201); the roto is a Mask box
        # drawn around the demo roto's box (x 96-187, rows 145-230 of 480x270)
        {"name": "clip", "plate": "clip", "roto": "mask", "scene_frames": [201, 203], "plate_timing": [201, 1, 24],
         "keyframe": 201, "mask_box": [0.2, 0.39, 0.3, 0.477], "out": str(tmp_path / "out_clip" / "alpha.####.exr"),
         "composite": str(tmp_path / "comp_clip" / "comp.####.exr")},
        # the alpha in a layer beside the plate's RGB (vom.R/G/B/A): Blender shows the layer as one colour pass,
        # whose A must reach Set Alpha (linked as it was, the matte was the plate's grey)
        {"name": "layer", "plate": "image", "roto": "image", "scene_frames": [101, 102],
         "plate_timing": [101, 0, 24], "keyframe": 101, "settings": {"channel": "vom.A", "output": "rgba"},
         "out": "out_layer/alpha.####.exr",  # relative, in an unsaved .blend: Blender's working folder
         "composite": str(tmp_path / "comp_layer" / "comp.####.exr")},
        # two objects, each the Mask of its name: in one file (hero.A, stone.A), then one sequence each
        {"name": "objects", "plate": "image", "roto": "masks", "scene_frames": [101, 102],
         "plate_timing": [101, 0, 24], "objects": "hero 101; stone 101",
         "masks": {"hero": [0.2, 0.39, 0.3, 0.477], "stone": [0.6, 0.8, 0.1, 0.25]},
         "out": str(tmp_path / "out_objects" / "alpha.####.exr"),
         "composite": str(tmp_path / "comp_objects" / "comp.####.exr")},
        {"name": "objects_split", "plate": "image", "roto": "masks", "scene_frames": [101, 102],
         "plate_timing": [101, 0, 24], "objects": "hero 101; stone 101",
         "masks": {"hero": [0.2, 0.39, 0.3, 0.477], "stone": [0.6, 0.8, 0.1, 0.25]},
         "out": str(tmp_path / "out_split" / "{object}.####.exr"),
         "composite": str(tmp_path / "comp_split" / "comp.####.exr")},
    ]
    cfg = {"demo": str(DEMO), "addons": str(addons), "cases": cases, "cache": str(tmp_path / "cache"),
           "working_size": 256, "model": "lite", "bad_roto": str(tmp_path / "nope" / "roto.0001.exr"),
           "screenshot": os.environ.get("VOM_BLENDER_SCREENSHOT") or str(tmp_path / "shot.####.png"),
           "screenshot_frame": 104, "result": str(tmp_path / "result.json"),
           "modal": {"out": str(tmp_path / "out_modal" / "alpha.####.exr"), "frames": "101-124", "working_size": 480},
           "blend": str(tmp_path / "project" / "sh010_comp.blend"),
           "weights": str(REPO / "vom_plugin" / "weights" / "lite.safetensors")}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    script = str(REPO / "tests" / "blender_e2e.py")
    cmd = [str(BLENDER), "-b", "--factory-startup", "--python-exit-code", "1", "-P", script] if runner == "blender" \
        else [str(BPY_PYTHON), script]
    r = subprocess.run([*cmd, "--", str(tmp_path / "cfg.json")], env=blender_home, capture_output=True, text=True,
                       timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((tmp_path / "result.json").read_text())
    assert "exception" not in res, res["exception"]
    assert res["found"] == ["vom_matte"] and res["enabled"] and res["operator"]
    assert runner == "blender" or int(res["blender"].split(".")[0]) >= 4, res["blender"]

    for case in cases:
        if "objects" in case:
            _check_objects_case(case, res[case["name"]])
            continue
    # {object}: a second plate rendered to the first object's sequence is refused (this alpha node loads it); the
    # plate renamed keeps its object nodes (renamed after it); an object removed takes its node with it
    assert "split_collision_run" not in res and "node 'Plate VOM Alpha' loads it" in res["split_collision_error"]
    assert res["split_renamed_run"] == res["split_removed_run"] == ["FINISHED"]
    assert res["split_renamed_nodes"] == ["BG VOM Alpha", "BG VOM Alpha stone", "BG VOM Set Alpha"]
    assert res["split_removed_nodes"] == ["BG VOM Alpha", "BG VOM Set Alpha"]
    # its node had a link of the artist's: said in the report (Blender prints reports to stdout in the background)
    assert "removed BG VOM Alpha stone and its links" in r.stdout + r.stderr, (r.stdout + r.stderr)[-3000:]
    assert "objects: 'ghost' is the name of no node (with Roto: Image node" in res["split_ghost_error"]
    # one file's layers split into a sequence per object: the artist's link from the stone layer moved to its node
    assert res["moved_run"] == ["FINISHED"] and res["moved_links"] == ["Plate VOM Alpha stone:Alpha"], res
    assert "the links from 'Plate VOM Alpha''s output stone now leave its own node" in r.stdout + r.stderr
    for case in cases:
        if "objects" in case:
            continue
        got = res[case["name"]]
        case["out"] = str(tmp_path / case["out"])  # where a relative Output goes: the shot file says so
        assert got["run"] == ["FINISHED"]
        assert got["overlaps"] == [], got["overlaps"]  # placed clear of the Composite and Roto nodes set where
        # its Set Alpha and alpha node would go; in the plate's Frame when it is in one (the clip case)
        assert got["parents"] == (["Frame"] if case["plate"] == "clip" else [""]), got["parents"]
        start, offset, duration = case["plate_timing"]
        timing = core.Timing(start, offset, duration) if case["plate"] == "image" else \
            core.clip_timing(1, start, offset, duration)
        # the alpha node is timed like the plate: same file frame at every scene frame
        assert got["alpha_node"]["timing"] == [timing.start, timing.offset, timing.duration]
        first_file = timing.file_frame(case["scene_frames"][0])
        assert got["alpha_image"] == {"filepath": case["out"].replace("####", f"{first_file:04d}"),
                                      "source": "SEQUENCE", "colorspace": "Non-Color"}
        wired = (["Plate VOM Alpha:vom->Plate VOM Separate Alpha:Image",
                  "Plate VOM Separate Alpha:Alpha->Plate VOM Set Alpha:Alpha"] if case["name"] == "layer"
                 else ["Plate VOM Alpha:Alpha->Plate VOM Set Alpha:Alpha"])
        assert got["links"] == sorted([*wired, "Plate VOM Set Alpha:Image->Composite:Image",
                                       "Plate:Image->Plate VOM Set Alpha:Image"])
        shot = yaml.safe_load(got["shot_yaml"])
        file_frames = [timing.file_frame(f) for f in range(case["scene_frames"][0], case["scene_frames"][1] + 1)]
        assert shot["frames"] == f"{file_frames[0]}-{file_frames[-1]}"
        assert list(shot["keyframes"]) == [timing.file_frame(case["keyframe"])]
        assert shot["plate"] == str(DEMO / "plate.####.exr") and shot["colorspace"] == "lin_rec709"  # from "Linear"
        assert (shot["working_size"], shot["model"], shot["out"]) == (256, "lite", case["out"])
        assert {k: shot[k] for k in case.get("settings", {})} == case.get("settings", {})

        # the composite's alpha is vom's alpha, and its RGB the plate's frame premultiplied by it
        assert len(got["composites"]) == len(file_frames)
        for comp_path, ff in zip(got["composites"], file_frames, strict=True):
            comp = _read(Path(comp_path))
            alpha = _read(Path(case["out"].replace("####", f"{ff:04d}")), "vom.A" if case["name"] == "layer" else "A")
            plate = _read(DEMO / f"plate.{ff:04d}.exr")
            assert comp.shape == (270, 480, 4)
            # a matte, not an empty or full frame (the shipped model at working size 256 peaks near 0.9 here)
            assert 0.01 < alpha.mean() < 0.5 and alpha.max() > 0.8
            np.testing.assert_allclose(comp[..., 3], alpha, atol=1e-3)
            np.testing.assert_allclose(comp[..., :3], plate * alpha[..., None], atol=1e-3, rtol=1e-3)

    # the Mask roto was rendered to EXR at the keyframe, where it was drawn
    key = core.clip_timing(1, 201, 1, 24).file_frame(201)
    roto = _read(tmp_path / "out_clip" / "alpha_vom" / f"roto.{key:04d}.exr")
    ys, xs = np.nonzero(roto[..., 3] > 0.5)
    assert np.abs(np.array([xs.min(), xs.max(), ys.min(), ys.max()]) - [96, 187, 145, 230]).max() <= 2

    # a bad roto path: Blender's error report carries vom's message naming the file; the comp is left as it was
    assert "bad_run" not in res
    err = res["bad_error"]
    assert cfg["bad_roto"] in err and "exit 2" in err and "keyframes" in err
    assert f"{cfg['bad_roto']} (the Image node 'Roto' at scene frame " in err  # the node it came from
    assert "vom numbers frames as the plate's files do: scene frame 101 is file frame 1" in err
    # a warning of vom's (the cache off) is said in the report of the render that finished, without the note of the
    # frames' numbering: it names no frame (the note was added to any warning)
    assert res["warned_run"] == ["FINISHED"]
    said = [line for line in (r.stdout + r.stderr).splitlines() if "VOM_CACHE_MIN_FREE_GB" in line]
    assert said and "vom numbers frames as the plate's files do" not in said[-1], said
    assert "nothing of it was kept" in err and res["bad_kept_shot"]  # QA: the refused shot file replaced the good one
    assert res["relative_out"] == [str(tmp_path), str(tmp_path)]  # QA: Output without // went under the cwd, unsaid
    assert "Plate VOM Set Alpha->Composite" in res["after_bad_links"]
    for ff in range(1, 5):  # the alpha the comp was rendered with is still there, unchanged
        np.testing.assert_array_equal(_read(tmp_path / "out_image" / f"alpha.{ff:04d}.exr")[..., 0],
                                      _read(tmp_path / "comp_image" / f"comp.{ff + 100:04d}.exr")[..., 3]
                                      .astype(np.float16).astype(np.float32))

    assert res["layer_renamed_run"] == ["FINISHED"]
    assert res["layer_renamed_nodes"] == ["Layered VOM Alpha", "Layered VOM Separate Alpha", "Layered VOM Set Alpha"]
    # the plate node renamed and rendered again: one Set Alpha, renamed after it (a second one was chained)
    assert res["renamed_run"] == ["FINISHED"]
    links = res["renamed_links"]
    assert {"BG->BG VOM Set Alpha", "BG VOM Alpha->BG VOM Set Alpha", "BG VOM Set Alpha->Composite"} <= set(links)
    assert [lk for lk in links if lk.startswith("BG->")] == ["BG->BG VOM Set Alpha"], links
    assert [n for n in res["renamed_nodes"] if "VOM" in n] == ["BG VOM Alpha", "BG VOM Set Alpha"], res["renamed_nodes"]
    # another plate node rendered to the Output that node loads: refused, nothing replaced
    assert "shared_out_run" not in res
    assert "node 'BG VOM Alpha' loads it" in res["shared_out_error"] and "Plate2" in res["shared_out_error"]
    assert res["colorspaces"]["Linear ACEScg"] == "ACEScg"
    assert res["colorspaces"].get("Linear ACES", "ACES2065-1") == "ACES2065-1"  # 3.x names AP0 so; 4.x has no such
    assert res["colorspaces"]["Filmic Log"].startswith("error: the plate's colour space 'Filmic Log'")
    assert res["bad_out_error"].startswith("Output ") and "cannot create the folder" in res["bad_out_error"]
    assert "names the plate's own files" in res["plate_out_error"], res.get("plate_out_error")
    assert res["plate_out_left"] == sorted(n for n in os.listdir(DEMO) if not n.startswith("plate."))
    assert not any(n.endswith("_vom") for n in res["plate_out_left"])
    assert res["memory_typo_error"].startswith("Memory policy 'prev 2': expected first+prevK"), res.get(
        "memory_typo_error")
    assert res["memory_typo_left"] is False
    assert res["model_typo_error"].startswith("Model 'Lite': no shipped model has that name (default, lite, full) (the "
                                              "shipped names are lower case: 'lite'), and no weights file is at "), \
        res.get("model_typo_error")
    assert res["model_typo_left"] is False
    assert "the render ended but this frame of its output is not there" in res["gone_error"] and res["gone_nodes_kept"]
    # a // setting of an unsaved .blend is refused (the frames went to Blender's working folder); a Model beside
    # the saved .blend is the file there (it was given to vom as "//weights/...", which vom could not find)
    assert res["unsaved_slashslash_error"] == ("Output //mattes/alpha.####.exr: // means beside the .blend file, "
                                               "which is not saved yet; save it, or give an absolute path")
    assert res["model_beside_blend"] == str(tmp_path / "project" / "weights" / "mine.safetensors")
    # saved .blend, empty Output: vom/<.blend>/<scene>_<plate node>, loaded //-relative; another scene's plate node
    # of the same name rendered there is refused (two scenes, or two .blend files, wrote each other's matte)
    assert res["saved_run"] == ["FINISHED"], res
    assert res["saved_alpha"] == {"filepath": "//vom/sh010_comp/Scene_BG.0001.exr",
                                  "out": "//vom/sh010_comp/Scene_BG.####.exr", "colorspace": "Non-Color"}
    assert (tmp_path / "project" / "vom" / "sh010_comp" / "Scene_BG.0004.exr").is_file()
    assert res["original_after_copy_run"] == ["FINISHED"], res
    assert "copy_run" not in res and "in scene 'Scene' loads it" in res["copy_error"], res.get("copy_error")
    assert "other_scene_run" not in res
    assert "node 'BG VOM Alpha' in scene 'Scene' loads it" in res["other_scene_error"], res["other_scene_error"]

    # Esc in the modal operator: vom got SIGTERM and stopped with complete frames only; a warning, no wiring
    modal = res["modal"]
    assert modal["state"] == ["CANCELLED"] and modal["pass_through"] == ["PASS_THROUGH"]
    assert modal["refused"] and len(modal["second"]) == 1 and "is rendering; wait for it" in modal["second"][0][1]
    assert modal["started_again"]  # released when the first ended
    assert modal["returncode"] == 130, modal
    assert modal["reports"] == [[["WARNING"], modal["reports"][0][1]]] and "cancelled" in modal["reports"][0][1]
    texts = modal["texts"]
    assert any(t and t.startswith("VOM Matte: frame ") and t.endswith("Esc cancels") for t in texts), texts
    # the scene's frames (101-124), not the plate files' (1-24) that vom's progress names (QA)
    shown = [int(t.split()[3]) for t in texts if t and t.startswith("VOM Matte: frame ")]
    assert shown and all(101 <= f <= 124 for f in shown), texts
    assert "VOM Matte: cancelling..." in texts and texts[-1] is None  # the status bar is given back
    written = sorted((tmp_path / "out_modal").glob("alpha.*.exr"))
    assert 1 <= len(written) < 24, written
    kept = f"{len(written)} of 24 frames kept (scene frames 101-{100 + len(written)}, in "  # file frame = scene - 100
    assert kept in modal["reports"][0][1], modal["reports"]
    for path in written:
        assert _read(path).shape == (270, 480, 1)
    assert not [p for p in (tmp_path / "out_modal").iterdir() if p.name.startswith(".")]  # no half-written file

    png = _read(Path(res["screenshot"][0]))
    assert png.shape == (270, 480, 4)


def _check_objects_case(case: dict[str, Any], got: dict[str, Any]) -> None:
    """Several objects from Blender: the shot holds each object's Mask rendered at its keyframe; the plate's Set
    Alpha takes the first object's alpha (the composite's alpha is hero's), the others are in the alpha node's
    outputs (one file) or in a node each (one sequence each)."""
    import numpy as np

    assert got["run"] == ["FINISHED"] and got["overlaps"] == [], got["overlaps"]
    shot = yaml.safe_load(got["shot_yaml"])
    assert "keyframes" not in shot and list(shot["objects"]) == ["hero", "stone"]
    assert all(list(kf) == [1] for kf in shot["objects"].values())  # scene frame 101 is file frame 1
    split = "{object}" in case["out"]
    if split:
        hero, stone = (case["out"].replace("{object}", n) for n in ("hero", "stone"))
        assert got["alpha_image"]["filepath"] == hero.replace("####", "0001")
        assert got["object_nodes"]["Plate VOM Alpha stone"]["filepath"] == stone.replace("####", "0001")
        assert got["object_nodes"]["Plate VOM Alpha stone"]["timing"] == [101, 0, 24]
        wired, layer = "Plate VOM Alpha:Alpha->Plate VOM Set Alpha:Alpha", "A"
    else:
        hero = stone = case["out"]
        assert {"hero", "stone"} <= set(got["alpha_outputs"]) and got["object_nodes"] == {}
        wired, layer = "Plate VOM Alpha:hero->Plate VOM Set Alpha:Alpha", "hero.A"
    assert wired in got["links"], got["links"]
    for comp_path, ff in zip(got["composites"], (1, 2), strict=True):
        alpha = _read(Path(hero.replace("####", f"{ff:04d}")), layer)
        other = _read(Path(stone.replace("####", f"{ff:04d}")), "A" if split else "stone.A")
        assert alpha.max() > 0.8 and not np.array_equal(alpha, other)  # two mattes, of two objects
        np.testing.assert_allclose(_read(Path(comp_path))[..., 3], alpha, atol=1e-3)


@pytest.fixture
def installed_addon(blender_home: dict[str, str], inst: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """The add-on installed in the throw-away Blender folder (also when the install test was deselected)."""
    if not VOM.exists():
        pytest.skip("vom is not installed in this environment")
    for k, v in blender_home.items():
        monkeypatch.setenv(k, v)
    addons = Path(blender_home["BLENDER_USER_SCRIPTS"]) / "addons"
    if BLENDER:
        inst.register_blender(str(addons), sys.executable, BLENDER)
    else:  # the bpy module only: copy the add-on (the e2e script enables it)
        inst.blender_install(addons, VOM)


def test_blender_progress_follows_the_steps_when_vom_reports_them() -> None:
    step = core.parse_progress('{"event": "step", "frames_done": 0, "steps_done": 12, "steps_total": 48}')
    assert step.percent == 25
    assert core.parse_progress('{"event": "frame", "frame": 7, "done": 1, "total": 24}').percent == 4


def test_a_roto_rendered_again_with_the_same_picture_keeps_its_file(tmp_path: Path) -> None:
    """Each render of the add-on renders the Mask to EXR again: the same picture keeps the file (and its
    modification time, which vom's cache fingerprints), another picture replaces it."""
    import numpy as np
    import OpenImageIO as oiio

    def exr(path: Path, value: float, stamp: str) -> Path:
        spec = oiio.ImageSpec(8, 4, 4, oiio.HALF)
        spec.attribute("DateTime", stamp)
        out = oiio.ImageOutput.create(str(path))
        assert out.open(str(path), spec) and out.write_image(np.full((4, 8, 4), value, np.float32)) and out.close()
        return path

    path = exr(tmp_path / "roto.0001.exr", 1.0, "2026:12:04 10:00:00")
    first = (path.stat().st_ino, path.stat().st_mtime_ns)
    common.keep_unless_changed(exr(tmp_path / "roto.new.0001.exr", 1.0, "2026:12:04 11:00:00"), path)
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == first
    common.keep_unless_changed(exr(tmp_path / "roto.new.0001.exr", 0.5, "2026:12:04 12:00:00"), path)
    assert path.stat().st_ino != first[0] and sorted(p.name for p in tmp_path.iterdir()) == ["roto.0001.exr"]
    assert common.exr_header(b"\x76\x2f\x31\x01\x02\0\0\0a\0b\0" + (-9).to_bytes(4, "little", signed=True)) is None


def test_a_narrowed_render_names_the_scene_frames_that_show_an_earlier_matte(tmp_path: Path) -> None:
    # frames 1-8 rendered, then the roto changed and 1-4 rendered again: 5-8 still hold the old roto's matte
    out = str(tmp_path / "alpha.####.exr")
    for f in range(1, 9):
        Path(core.frame_path(out, f)).write_bytes(b"")
    timing = core.Timing(start=101, offset=0, duration=24)  # scene frame 101 shows file frame 1
    assert core.earlier_frames([out], "1-4", timing) == [105, 106, 107, 108]
    assert core.earlier_frames([out], "1-8", timing) == []
    assert core.earlier_frames([out], "1-8x2", timing) == [102, 104, 106, 108]
    # Frames with a step: the frames between with no file have no matte at all (a QA pass: said as nothing)
    assert core.unmatted_frames([out], "1-5x2", timing, (101, 108)) == []  # 2 and 4 still hold an earlier matte
    for f in (2, 4):
        Path(out.replace("####", f"{f:04d}")).unlink(missing_ok=True)
    assert core.unmatted_frames([out], "1-5x2", timing, (101, 108)) == [102, 104]
    # Frames narrower than the plate node, or a scene range that cut it short: the plate's ends have no matte either,
    # where the scene renders (a QA pass: said as a plain success while the comp lost the plate there)
    assert core.unmatted_frames([out], "3-5", timing, (101, 112)) == [102, 109, 110, 111, 112]
    assert core.unmatted_frames([out], "3-5", timing) == [102, *range(109, 125)]  # the plate's 24 frames
    assert core.earlier_frames([str(tmp_path / "other.####.exr")], "1-4", timing) == []


MASK_AT_KEYFRAMES = r'''
import json, sys
from pathlib import Path
import bpy, addon_utils
addon_utils.enable("vom_matte", default_set=True, handle_error=None)
ui, core = sys.modules["vom_matte.ui"], sys.modules["vom_matte.core"]
work = Path(sys.argv[sys.argv.index("--") + 1])
scene = bpy.context.scene
scene.frame_start, scene.frame_end = 1, 10
mask = bpy.data.masks.new("hero")
spline = mask.layers.new(name="roto").splines.new()
spline.points.add(4 - len(spline.points))
spline.use_cyclic = True
for frame, x0 in ((1, 0.1), (9, 0.6)):  # a box keyed at x 0.1-0.3 on frame 1, 0.6-0.8 on frame 9
    for i, (p, co) in enumerate(zip(spline.points, [(x0, 0.3), (x0 + 0.2, 0.3), (x0 + 0.2, 0.45), (x0, 0.45)])):
        p.co = co
        p.handle_left_type = p.handle_right_type = "VECTOR"
        mask.keyframe_insert(f'layers["roto"].splines[0].points[{i}].co', frame=frame)
scene.frame_set(5)  # the playhead between the keys, where the box is at x 0.35-0.55
paths = ui._roto_from_mask(mask, [1, 9], (160, 90), work, core.Timing(1, 0, 10), "roto", scene)
json.dump({"paths": {str(k): v for k, v in paths.items()}, "playhead": scene.frame_current},
          open(work / "result.json", "w"))
'''


@pytest.mark.slow
@needs_blender
def test_an_animated_mask_is_baked_as_it_stands_at_each_keyframe_in_real_blender(
        blender_home: dict[str, str], tmp_path: Path, installed_addon: None) -> None:
    """A Mask keyed to move was baked at every keyframe as it stood at the playhead (the temporary scene's frame
    does not evaluate it), so a two-keyframe shot got two copies of one roto, an object on another frame a roto
    28 px off, without a word (QA). Each keyframe's roto is the Mask at that frame; the playhead is left where it
    was."""
    import numpy as np

    script = tmp_path / "mask.py"
    script.write_text(MASK_AT_KEYFRAMES)
    r = subprocess.run([str(BLENDER), "-b", "--factory-startup", "--python-exit-code", "1", "-P", str(script), "--",
                        str(tmp_path / "work")], env=blender_home, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    got = json.loads((tmp_path / "work" / "result.json").read_text())
    assert got["playhead"] == 5
    for frame, (x0, x1) in (("1", (16, 48)), ("9", (96, 128))):  # 0.1-0.3 and 0.6-0.8 of 160 px
        inside = np.nonzero((_read(Path(got["paths"][frame]), "A") >= 0.5).any(axis=0))[0]
        assert inside.size and abs(inside[0] - x0) <= 2 and abs(inside[-1] + 1 - x1) <= 2, (frame, inside)


GUARD_AFTER_SAVE_AS = r'''
import json, os, shutil, sys
from pathlib import Path
import bpy, addon_utils
addon_utils.enable("vom_matte", default_set=True, handle_error=None)
ui, core = sys.modules["vom_matte.ui"], sys.modules["vom_matte.core"]
work, demo = (Path(a) for a in sys.argv[sys.argv.index("--") + 1:])
got = {}
scene = bpy.context.scene
scene.use_nodes = True
tree = scene.node_tree
plate = tree.nodes.new("CompositorNodeImage")
plate.name = "Plate"
plate.image = bpy.data.images.load(str(demo / "plate.0001.exr"))
plate.image.source = "SEQUENCE"
plate.frame_start, plate.frame_offset, plate.frame_duration = 1, 0, 3
for folder in ("s1", "elsewhere/sub"):
    os.makedirs(work / folder)
bpy.ops.wm.save_as_mainfile(filepath=str(work / "s1" / "comp.blend"))
out = core.default_out(bpy.data.filepath, scene.name, "Plate", 4)  # a render's files: any EXR loads as the matte
os.makedirs(os.path.dirname(out))
for f in (1, 2, 3):
    shutil.copy(demo / f"gt.{f:04d}.exr", core.frame_path(out, f))
plan = ui.Plan(cmd=[], shot_file=Path(out).parent / "shot.yaml", fields={"out": out, "channel": "A"},
               plate_node="Plate", timing=core.Timing(1, 0, 3), first_file_frame=1, scene=scene.name)
alpha = ui.wire_alpha(scene, plan)
other = tree.nodes.new("CompositorNodeImage")
other.name, other.image = "Plate2", plate.image


def guard(plate_node, where):
    try:
        ui.check_output_free(scene, plate_node, where)
        return "free"
    except core.HostError as e:
        return str(e)


got["before"] = guard(other, out)
# File > Save As into another folder: Blender rewrites the image paths relative to it (remap relative), not the
# add-on's custom properties
bpy.ops.wm.save_as_mainfile(filepath=str(work / "elsewhere" / "sub" / "y.blend"))
got["alpha_image"], got["vom_out"] = alpha.image.filepath, alpha["vom_out"]
got["after"] = guard(other, out)
got["own_after"] = guard(plate, out)  # the plate's own alpha node is no other plate's
json.dump(got, open(work / "result.json", "w"))
'''


@pytest.mark.slow
@needs_blender
def test_the_output_guard_survives_save_as_into_another_folder_in_real_blender(
        blender_home: dict[str, str], tmp_path: Path, installed_addon: None) -> None:
    """QA: after File > Save As into another folder, the alpha node's Output tag (a custom property, //-relative, which
    Blender does not remap) named a folder that does not exist; a second plate node's render replaced the matte the
    first one's alpha node loads, both reporting success. What the node loads is read from its image, which Blender
    remaps."""
    script = tmp_path / "guard.py"
    script.write_text(GUARD_AFTER_SAVE_AS)
    r = subprocess.run([str(BLENDER), "-b", "--factory-startup", "--python-exit-code", "1", "-P", str(script), "--",
                        str(tmp_path), str(DEMO)], env=blender_home, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    got = json.loads((tmp_path / "result.json").read_text())
    assert got["alpha_image"] == "//../../s1/vom/comp/Scene_Plate.0001.exr", got  # remapped by Blender
    refused = "node 'Plate VOM Alpha' loads it, the matte of another plate node; rendering 'Plate2' there"
    assert refused in got["before"], got
    assert refused in got["after"], got
    assert got["own_after"] == "free", got


REFUSED_BEFORE_VOM = r'''
import json, os, sys
from pathlib import Path
import bpy, addon_utils
addon_utils.enable("vom_matte", default_set=True, handle_error=None)
work, demo = (Path(a) for a in sys.argv[sys.argv.index("--") + 1:])
scene = bpy.context.scene
scene.frame_start, scene.frame_end = 101, 140
scene.use_nodes = True
tree = scene.node_tree
plate = tree.nodes.new("CompositorNodeImage")
plate.name = "Plate"
plate.image = bpy.data.images.load(str(demo / "plate.0001.exr"))  # 24 files
plate.image.source = "SEQUENCE"
roto = tree.nodes.new("CompositorNodeImage")
roto.name, roto.image = "Roto", bpy.data.images.load(str(demo / "roto.0001.exr"))
s = scene.vom_matte
s.plate_node, s.roto_source, s.roto_node, s.keyframes = "Plate", "NODE", "Roto", "104"
s.cache, s.working_size, s.model = str(work / "cache"), 256, "lite"
got = {}
for case, (offset, duration, out) in {"past_files": (0, 30, "o1/alpha.####.exr"),
                                      "offset": (-3, 30, "o2/alpha.####.exr"),
                                      "no_token": (0, 24, "o3/a.exr"),
                                      "not_exr": (0, 24, "o4/alpha.####.png")}.items():
    plate.frame_start, plate.frame_offset, plate.frame_duration = 101, offset, duration
    s.out = str(work / out)
    try:
        got[case] = sorted(bpy.ops.node.vom_matte_render())
    except RuntimeError as e:  # bpy.ops raises the operator's ERROR report
        got[case] = str(e)
    got[case + "_left"] = sorted(os.listdir(work / os.path.dirname(out))) if (work / os.path.dirname(out)).exists() \
        else None
json.dump(got, open(work / "result.json", "w"))
'''


@pytest.mark.slow
@needs_blender
def test_missing_plate_files_and_an_output_without_a_token_or_exr_are_refused_by_the_addon_in_real_blender(
        blender_home: dict[str, str], tmp_path: Path, installed_addon: None) -> None:
    """QA in Blender 3.4: a plate node whose Frames run past its 24 files was refused by vom in file frames ("missing
    frames 25-30 ... scene frame 101 is file frame 1", with Offset -3 the file plate.-002.exr), and an Output without a
    frame token by vom naming the shot file the add-on had already removed and the shot field `out`. Both are now the
    add-on's refusals, in scene frames and the panel's field, before anything is written. So is an Output that is not
    .exr (vom refused it after the add-on had written its shot file, which it then took back)."""
    script = tmp_path / "refused.py"
    script.write_text(REFUSED_BEFORE_VOM)
    env = {**blender_home, "VOM_CACHE_DIR": str(tmp_path / "cache")}
    r = subprocess.run([str(BLENDER), "-b", "--factory-startup", "--python-exit-code", "1", "-P", str(script), "--",
                        str(tmp_path), str(DEMO)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    got = json.loads((tmp_path / "result.json").read_text())
    assert got["past_files"] == (
        f"Error: VOM Matte: Frames (empty: scene frames 101-130, those of the scene the plate node shows): scene "
        f"frames 125-130 have no plate file ({DEMO}/plate.0025.exr ... plate.0030.exr); the plate node 'Plate' has "
        f"files for scene frames 101-124: set Frames within them, or the node's own Frames, Start and Offset to its "
        f"files\n"), got
    assert got["offset"].startswith(
        f"Error: VOM Matte: Frames (empty: scene frames 101-130, those of the scene the plate node shows): scene "
        f"frames 101-103,128-130 have no plate file ({DEMO}/plate.-002.exr ... plate.0027.exr); the plate node "
        f"'Plate' has files for scene frames 104-127: "), got
    assert got["no_token"] == (
        f"Error: VOM Matte: Output {tmp_path}/o3/a.exr: no frame number token in its file name; vom writes a file a "
        f"frame, numbered where the token is: e.g. a.####.exr (#### or @@@@, one a digit; %04d; $F4)\n"), got
    assert got["not_exr"] == (
        f"Error: VOM Matte: Output {tmp_path}/o4/alpha.####.png: vom writes OpenEXR files (a linear float alpha); end "
        f"the name in .exr: e.g. alpha.####.exr\n"), got
    assert got["past_files_left"] is got["offset_left"] is got["no_token_left"] is got["not_exr_left"] is None


class _Node(dict):
    """A stand-in for a compositor node: custom properties as a dict, an image with a path."""

    def __init__(self, props: dict[str, Any], image_path: str | None, name: str = "Image") -> None:
        super().__init__(props)
        self.image = None if image_path is None else types.SimpleNamespace(filepath=image_path)
        self.name, self.bl_idname = name, "CompositorNodeImage"
        self.outputs = {"Image": types.SimpleNamespace(links=[])}


class _Nodes(list):  # type: ignore[type-arg]
    def get(self, name: str) -> Any:
        return next((n for n in self if n.name == name), None)


@pytest.fixture
def ui(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The add-on's bpy half imported against a stand-in ``bpy`` (its classes bare, ``//`` read against
    ``bpy.data.filepath``), so that what it decides and says is tested without Blender."""
    import importlib

    import vom_plugin.host.blender_addon as package

    bpy = types.ModuleType("bpy")
    bpy.types = types.SimpleNamespace(**{n: type(n, (), {})  # type: ignore[attr-defined]
                                         for n in ("Operator", "Panel", "AddonPreferences", "PropertyGroup")})
    bpy.data = types.SimpleNamespace(filepath="", scenes=[])  # type: ignore[attr-defined]
    bpy.path = types.SimpleNamespace(  # type: ignore[attr-defined]
        abspath=lambda p: os.path.join(os.path.dirname(bpy.data.filepath), p[2:]) if p.startswith("//") else p)
    monkeypatch.setitem(sys.modules, "bpy", bpy)
    name = "vom_plugin.host.blender_addon.ui"
    monkeypatch.delitem(sys.modules, name, raising=False)
    module = importlib.import_module(name)
    yield module
    sys.modules.pop(name, None)  # not left bound to the stand-in
    if getattr(package, "ui", None) is module:
        delattr(package, "ui")


def test_an_alpha_node_loads_the_folder_its_image_names_after_save_as(ui: Any, tmp_path: Path) -> None:
    """QA: File > Save As into another folder remaps the image's relative path, not the node's Output tag; read
    alone, the tag named a folder that does not exist, and another plate's render replaced the matte the node
    loads. The folder is the image's; the name the tag's (a name's own digits are not taken for the frame)."""
    import bpy

    bpy.data.filepath = str(tmp_path / "elsewhere" / "sub" / "y.blend")
    moved = _Node({"vom_out": "//vom/comp/sh010_v2_alpha.####.exr"}, "//../../s1/vom/comp/sh010_v2_alpha.0001.exr")
    assert ui._alpha_pattern(moved) == str(tmp_path / "s1" / "vom" / "comp" / "sh010_v2_alpha.####.exr")
    # the image pointed at another sequence by hand: what it loads
    repointed = _Node({"vom_out": "//vom/comp/sh010_v2_alpha.####.exr"}, "/mattes/hero.1001.exr")
    assert ui._alpha_pattern(repointed) == "/mattes/hero.####.exr"
    # no image: the tag; neither: nothing
    assert ui._alpha_pattern(_Node({"vom_out": "/o/a.%04d.exr"}, None)) == "/o/a.%04d.exr"
    assert ui._alpha_pattern(_Node({}, None)) is None
    assert common.frame_number("/o/a_v2.####.exr", "a_v2.0012.exr") == 12
    assert common.frame_number("/o/a.####.exr", "a.12.exr") is None  # not as vom names frame 12
    assert common.frame_number("/o/a.%04d.exr", "a.-003.exr") == -3


def test_an_empty_output_whose_default_is_taken_is_not_told_to_be_emptied(ui: Any) -> None:
    """QA: refused because another plate's alpha node loads it, a render whose Output was empty was told to "Set
    another Output (empty: one beside the .blend ...)", which changed nothing. Names made safe now get a tag (test
    above); two scene and node names joined by _ can still meet ("S_A" + "B", "S" + "A_B")."""
    import bpy

    blend = "/shows/x/comp.blend"
    taken = core.default_out(blend, "S_A", "B", 4)
    assert taken == core.default_out(blend, "S", "A_B", 4)
    alpha = _Node({"vom_role": "alpha", "vom_out": taken, "vom_owner": "S_A/B"}, core.frame_path(taken, 1),
                  "B VOM Alpha")
    plate = _Node({}, None, "A_B")
    mine = types.SimpleNamespace(name="S", node_tree=types.SimpleNamespace(nodes=_Nodes([plate])))
    bpy.data.scenes = [mine, types.SimpleNamespace(name="S_A", node_tree=types.SimpleNamespace(nodes=_Nodes([alpha])))]
    with pytest.raises(core.HostError) as default:
        ui.check_output_free(mine, plate, taken, default=True)
    assert str(default.value) == (
        f"Output {taken}: node 'B VOM Alpha' in scene 'S_A' loads it, the matte of another plate node; rendering "
        f"'A_B' there would replace that matte. Output is empty, and this is its default (beside the .blend, named "
        f"after the scene and the plate node): set an Output, or delete 'B VOM Alpha'")
    with pytest.raises(core.HostError, match=r"Set another Output \(empty: one beside the .blend"):
        ui.check_output_free(mine, plate, taken)  # a typed Output: emptying it is a way out


def test_esc_before_vom_began_does_not_promise_a_cache(ui: Any, tmp_path: Path) -> None:
    """QA: Esc before vom began said "no frame was complete; the next render resumes from the cache (nothing of it
    was kept)", where nothing was computed, let alone cached. After it began, the cache holds its steps."""
    def cancelled(started: bool) -> list[tuple[list[str], str]]:
        reports: list[tuple[list[str], str]] = []
        plan = ui.Plan(cmd=[], shot_file=tmp_path / "a_vom" / "shot.yaml", fields={"out": str(tmp_path / "a.####.exr")},
                       plate_node="Plate", timing=core.Timing(101, 0, 24), first_file_frame=1)
        job = types.SimpleNamespace(returncode=130 if started else -15, started=started, cancelled=True, written=[],
                                    total=24 if started else None, cache_off="")
        op = types.SimpleNamespace(_job=job, _plan=plan, _release=lambda: None,
                                   report=lambda kind, msg: reports.append((sorted(kind), msg)))
        assert ui.VOM_OT_render_matte._finish(op, None) == {"CANCELLED"}
        return reports

    assert cancelled(started=False) == [(["WARNING"], "VOM Matte: cancelled before vom began rendering; nothing was "
                                                      "rendered, and nothing of it was kept")]
    shot = tmp_path / "a_vom" / "shot.yaml"
    assert cancelled(started=True) == [(["WARNING"], f"VOM Matte: cancelled; no frame was complete; the next render "
                                                     f"resumes from the cache (shot {shot})")]


def test_a_failure_is_said_in_the_node_s_terms(ui: Any, tmp_path: Path) -> None:
    """QA (the Nuke node's, and the add-on's equivalent): a failure said "use --device cpu or auto" and "out '...'"
    (warnings were put in the node's terms, failures were not), and how vom's frame numbers read in the scene was
    added to an error naming no frame (a bad weights file)."""
    def failed(error: str, tail: list[str] | None = None, code: int = 2) -> str:
        reports: list[tuple[list[str], str]] = []
        plan = ui.Plan(cmd=[], shot_file=tmp_path / "a_vom" / "shot.yaml", fields={"out": str(tmp_path / "a.####.exr")},
                       plate_node="Plate", timing=core.Timing(1, 1000, 50), first_file_frame=1001)
        job = types.SimpleNamespace(returncode=code, started=False, cancelled=False, written=[], error=error,
                                    output_tail=tail or [], proc=types.SimpleNamespace(poll=lambda: code))
        job.failure = lambda *said: core.RenderJob.failure(job, *said)
        op = types.SimpleNamespace(_job=job, _plan=plan, _release=lambda: None,
                                   report=lambda kind, msg: reports.append((sorted(kind), msg)))
        assert ui.VOM_OT_render_matte._finish(op, None) == {"CANCELLED"}
        [(kind, said)] = reports
        assert kind == ["ERROR"]
        return str(said)

    shot = "nothing of it was kept"
    assert failed("device 'cuda': CUDA is not available on this machine (torch 2.13.0+cpu); use --device cpu or "
                  "auto") == ("VOM Matte: vom render failed (bad input, exit 2): Device 'cuda': CUDA is not available "
                              f"on this machine (torch 2.13.0+cpu); set Device to cpu or auto [{shot}]")
    assert failed("the GPU ran out of memory at working size 960: lower --working-size (e.g. 720 or 540), free the "
                  "GPU, or use --device cpu").endswith(
        "lower Working size (e.g. 720 or 540), free the GPU, or set Device to cpu [nothing of it was kept]")
    # a frame named: the note stays
    assert failed("out '/o/a.####.exr': frame 1005 would be written to /o/a.1005.exr, which is the plate").endswith(
        "): Output '/o/a.####.exr': frame 1005 would be written to /o/a.1005.exr, which is the plate [nothing of it "
        "was kept; vom numbers frames as the plate's files do: scene frame 1 is file frame 1001]")
    # a crash's last lines, a traceback, as vom printed them (review: they were translated one line at a time)
    trace = ["Traceback (most recent call last):", '  File "/v/vom_plugin/cli.py", line 9, in main',
             '    raise RuntimeError("--device cuda")', "RuntimeError: --device cuda"]
    assert " | ".join(trace) in failed("", trace, 1)


def test_what_prepare_kept_aside_goes_as_soon_as_vom_begins(ui: Any, tmp_path: Path) -> None:
    """Review: the files the render's undo kept aside (``.shot.yaml.<token>.vom-undo``, a roto's) were let go only
    after vom exited, and never where Blender crashed meanwhile. vom's start event means nothing is taken back any
    more: the modal operator (and the blocking one's progress) lets them go then."""
    work = tmp_path / "a_vom"
    work.mkdir()
    (work / "shot.yaml").write_text("the earlier render's")
    plan = ui.Plan(cmd=[], shot_file=work / "shot.yaml", fields={"out": str(tmp_path / "a.####.exr")},
                   plate_node="Plate", timing=core.Timing(101, 0, 24), first_file_frame=1,
                   undo=common.WorkUndo(work))
    common.write_text_atomic(work / "shot.yaml", "this render's")
    job = types.SimpleNamespace(started=False, poll=lambda: [], status=lambda: "", percent=lambda: None, running=True)
    op = types.SimpleNamespace(_job=job, _plan=plan)
    context = types.SimpleNamespace(workspace=types.SimpleNamespace(status_text_set=lambda text: None),
                                    window_manager=types.SimpleNamespace(progress_update=lambda pct: None))
    tick = types.SimpleNamespace(type="TIMER", value="NOTHING")

    def aside() -> list[str]:
        return [p.name for p in work.iterdir() if p.name.endswith(".vom-undo")]

    assert ui.VOM_OT_render_matte.modal(op, context, tick) == {"RUNNING_MODAL"}
    assert len(aside()) == 1  # vom has not read the shot yet: a refusal puts the earlier one back
    job.started = True
    assert ui.VOM_OT_render_matte.modal(op, context, tick) == {"RUNNING_MODAL"}
    assert aside() == [] and (work / "shot.yaml").read_text() == "this render's"
