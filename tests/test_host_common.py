"""The host adapters' stdlib copies of vom's grammars (``host/blender_addon/common.py``, used by the Nuke adapter
and the Blender add-on) agree with vom's own: a value a node accepts is one vom accepts, read the same way."""

from __future__ import annotations

import pytest
import yaml

from vom_plugin import grammar
from vom_plugin.errors import InputError
from vom_plugin.host.blender_addon import common
from vom_plugin.io.sequence import frame_path, parse_frame_range

RANGES = [
    "1001-1100", "1001-1100x2", "1001-1100:2", "1001,1005,1010-1020", "1001-1050 1060-1100", "1 - 50",
    "1-100 x 2", "-10 -5", "-3--1 2", "1 2", "1-4 6", "1001- 1003", "7", "-7", "1-1", "1-10x4", "0-0x3",
    # refused by both
    "", "  ", "10-1", "1001-100", "5x2", "5:2", "1-10x0", "1-10:0", "1-10y2", "1-10x-2", "1-10x1.5", "1.5",
    "a-b", "1--", "x2", "1-10x", "1,,", "1-2-3",
]


def _vom(text: str) -> list[int] | None:
    try:
        return parse_frame_range(text)
    except InputError:
        return None


@pytest.mark.parametrize("text", RANGES)
def test_a_frame_range_is_read_by_the_hosts_as_vom_reads_it(text: str) -> None:
    frames = _vom(text)
    bounds = common.frame_bounds(text)
    if frames is None:
        assert bounds is None
        with pytest.raises(ValueError):
            common.shift_frames(text, 0, ValueError)
        return
    assert bounds == (frames[0], frames[-1])
    for delta in (0, 1000, -1005):
        assert parse_frame_range(common.shift_frames(text, delta, ValueError)) == [f + delta for f in frames]


PATTERNS = ["/s/a.####.exr", "/s/a.#.exr", "/s/a.@@@.exr", "/s/a.%04d.exr", "/s/a.%d.exr", "/s/a_$F4.exr",
            "/s/a.$F.exr", "rel/a.%06d.exr", "/s/still.exr"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_frame_file_is_named_by_the_hosts_as_vom_names_it(pattern: str) -> None:
    for frame in (-1001, -12, -2, 0, 7, 1001, 123456):
        assert common.frame_path(pattern, frame) == str(frame_path(pattern, frame))
    assert common.frame_path(pattern, -2) != common.frame_path(pattern, 2) or "still" in pattern


def test_negative_frames_are_named_as_printf_pads_them() -> None:
    # Nuke, OpenImageIO and Blender read -2 of a 4-digit sequence as -002 (vom wrote -0002 until session 32)
    assert str(frame_path("/s/a.####.exr", -2)) == "/s/a.-002.exr"
    assert str(frame_path("/s/a.$F4.exr", -2)) == "/s/a.-002.exr"
    assert common.same_files("/s/a.####.exr", "/s/a.$F4.exr")
    assert common.same_files("/s/a.%04d.exr", "/s/a.@@@@.exr")
    assert not common.same_files("/s/a.####.exr", "/s/a.###.exr")
    assert common.printf_pattern("/s/a_$F4.exr") == "/s/a_%04d.exr" == common.printf_pattern("/s/a_@@@@.exr")
    assert [common.pattern_digits(p) for p in ("a.####.exr", "a.%06d.exr", "a.$F3.exr", "a.$F.exr", "a.exr")] == [
        4, 6, 3, 1, 1]


NAMES = ["hero", "dog_2", "_x", "on", "yes", "null", "True", "off", "alpha", "RGBA", "depth", "a", "B", "2dog",
         "he-ro", "x" * 64, "x" * 65]


@pytest.mark.parametrize("name", NAMES)
def test_an_object_name_a_host_takes_is_one_vom_takes_from_the_shot_file_it_writes(name: str) -> None:
    try:
        common.parse_objects(f"{name} 1001", lambda t: [int(w) for w in t.split()], ValueError, "hero 1001")
        host_ok = True
    except ValueError:
        host_ok = False
    text = common.shot_yaml({"plate": "p.####.exr", "frames": "1001-1010", "out": "o.####.exr",
                             "objects": {name: {1001: "r.1001.exr"}}}, "test")
    (written,) = yaml.safe_load(text)["objects"]  # quoted: on, yes and null stay names
    assert written == name
    try:
        grammar.parse_object_name(written)
        vom_ok = True
    except InputError:
        vom_ok = False
    assert host_ok == vom_ok
    assert common.RESERVED_LAYERS == grammar.RESERVED_LAYERS


def test_keyframes_and_atomic_text(tmp_path) -> None:
    assert common.parse_keyframes("1050, 1001 1001", ValueError, "1001 1050") == [1001, 1050]
    with pytest.raises(ValueError, match=r"'ten' is not a frame number; expected frames such as '1 50'"):
        common.parse_keyframes("1 ten", ValueError, "1 50")
    with pytest.raises(ValueError, match=r"empty; .* e.g. '1'"):
        common.parse_keyframes(" ", ValueError, "1 50")
    path = tmp_path / "sub" / "shot.yaml"
    common.write_text_atomic(path, "a: 1\n")
    assert path.read_text() == "a: 1\n" and [p.name for p in path.parent.iterdir()] == ["shot.yaml"]
    with pytest.raises(TypeError):  # a write that fails once the temporary is made: the file as it was, no leftover
        common.write_bytes_atomic(path, None)  # type: ignore[arg-type]
    assert path.read_text() == "a: 1\n" and [p.name for p in path.parent.iterdir()] == ["shot.yaml"]


def test_a_host_writes_its_text_files_through_no_link_and_keeps_their_mode(tmp_path, monkeypatch) -> None:
    import os

    victim = tmp_path / "plate.0001.exr"
    victim.write_bytes(b"plate")
    work = tmp_path / "work"
    work.mkdir()
    for pid in range(os.getpid() - 2, os.getpid() + 3):  # the names a temporary once had (.NAME.PID.tmp)
        (work / f".shot.yaml.{pid}.tmp").symlink_to(victim)
    path = work / "shot.yaml"
    common.write_text_atomic(path, "a: 1\n")
    assert victim.read_bytes() == b"plate" and path.read_text() == "a: 1\n" and not path.is_symlink()
    assert sorted(p.name for p in work.iterdir() if not p.is_symlink()) == ["shot.yaml"]
    # a link at the very name the temporary will have (its random part pinned): refused, never written through
    import secrets

    monkeypatch.setattr(secrets, "token_hex", lambda n=None: "0badcafe")
    (work / f".shot.yaml.{os.getpid()}-0badcafe.tmp").symlink_to(victim)
    with pytest.raises(FileExistsError):
        common.write_text_atomic(path, "a: 3\n")
    assert victim.read_bytes() == b"plate" and path.read_text() == "a: 1\n"
    monkeypatch.undo()
    old = os.umask(0o027)
    try:
        fresh = work / "fresh.yaml"
        common.write_text_atomic(fresh, "x")
        assert fresh.stat().st_mode & 0o777 == 0o640  # the umask's, not a private temporary's 0600
        path.chmod(0o664)
        common.write_text_atomic(path, "a: 2\n")
        assert path.stat().st_mode & 0o777 == 0o664 and path.read_text() == "a: 2\n"
    finally:
        os.umask(old)


def check_header_names(table: dict[str, str]) -> None:
    """Every colour space a host adapter maps (``table``: its name -> vom's), named in a plate's header, is warned
    about when the plate is read as another space and not when read as its own (raw aside: data says nothing)."""
    from vom_plugin.io.color import plate_colour_note

    for name, vom in table.items():
        if vom == "raw":
            continue
        other = "sRGB" if vom != "sRGB" else "ACEScg"
        note = plate_colour_note({"colorInteropID": name}, "half", other, "p.exr")
        assert note is not None and f"({vom})" in note, name
        assert plate_colour_note({"colorInteropID": name}, "half", vom, "p.exr") is None, name


def test_the_colour_spaces_blender_names_are_the_ones_a_plates_header_is_checked_against() -> None:
    # 'Utility - sRGB - Texture' or 'Linear ACEScg' in a plate's header read as another space said nothing
    from vom_plugin.host.blender_addon import core

    check_header_names(core.COLORSPACES)


def test_work_undo_puts_the_work_folder_back_and_removes_only_what_it_made(tmp_path) -> None:
    """What an Analyze vom refused wrote is taken back: the folders it made, the rotos baked into new names, the
    shot file; an earlier render's shot file and rotos are put back as they were (review: its rotos were left
    re-baked, so its shot file rendered another roto); a shot file that could not be read is never removed, nor
    is a file of the user's."""
    fresh = tmp_path / "shots" / "sh010" / "a_vom"
    undo = common.WorkUndo(fresh)
    fresh.mkdir(parents=True)
    (fresh / "roto.0001.exr").write_bytes(b"baked")
    (fresh / "shot.yaml").write_text("new")
    undo.undo()
    assert not (tmp_path / "shots").exists()

    work = tmp_path / "b_vom"
    work.mkdir()
    (work / "shot.yaml").write_text("good")
    (work / "roto.0001.exr").write_bytes(b"good roto")
    (work / "notes.txt").write_text("mine")
    import os

    os.utime(work / "roto.0001.exr", ns=(10**18, 10**18))
    os.chmod(work / "roto.0001.exr", 0o640)
    undo = common.WorkUndo(work)

    def bake(name: str, data: bytes) -> None:  # as the hosts do: a new file renamed into place
        (work / "new.tmp").write_bytes(data)
        os.replace(work / "new.tmp", work / name)

    common.write_text_atomic(work / "shot.yaml", "refused")
    bake("roto.0001.exr", b"refused roto")
    bake("roto_hero.0005.exr", b"new object")
    bake("plate.0001.exr", b"baked plate")
    undo.wrote()
    (work / "later.txt").write_text("the user's, meanwhile")
    undo.undo()
    assert sorted(p.name for p in work.iterdir()) == ["later.txt", "notes.txt", "roto.0001.exr", "shot.yaml"]
    assert (work / "shot.yaml").read_text() == "good" and (work / "roto.0001.exr").read_bytes() == b"good roto"
    st = (work / "roto.0001.exr").stat()  # the same file back: its time and mode, which the cache's fingerprint reads
    assert st.st_mtime_ns == 10**18 and st.st_mode & 0o777 == 0o640
    # accepted: nothing put back, nothing left aside
    undo = common.WorkUndo(work)
    bake("roto.0001.exr", b"accepted roto")
    undo.wrote()
    undo.discard()
    assert sorted(p.name for p in work.iterdir()) == ["later.txt", "notes.txt", "roto.0001.exr", "shot.yaml"]
    # a file another host wrote after this Analyze's (a second Analyze of the Output, accepted): theirs, left
    undo = common.WorkUndo(work)
    common.write_text_atomic(work / "shot.yaml", "refused")
    undo.wrote()
    common.write_text_atomic(work / "shot.yaml", "the other host's")
    undo.undo()
    assert (work / "shot.yaml").read_text() == "the other host's"
    assert not [p for p in work.iterdir() if p.name.endswith(".vom-undo")]
    # two sessions' Analyzes of one Output, overlapping: each puts back what it found (review: they shared the
    # names things were kept aside under, and one's discard took the other's)
    common.write_text_atomic(work / "shot.yaml", "OLD")
    a = common.WorkUndo(work)
    common.write_text_atomic(work / "shot.yaml", "A")
    a.wrote()
    b = common.WorkUndo(work)
    common.write_text_atomic(work / "shot.yaml", "B")
    b.wrote()
    a.discard()  # A accepted
    b.undo()  # B refused: A's stays
    assert (work / "shot.yaml").read_text() == "A"
    assert not [p for p in work.iterdir() if p.name.endswith(".vom-undo")]

    odd = tmp_path / "c_vom"
    (odd / "shot.yaml").mkdir(parents=True)  # there, but not readable as a file
    common.WorkUndo(odd).undo()
    assert (odd / "shot.yaml").is_dir()
    assert common.refused_before_start(2, False, False) and common.refused_before_start(None, False, True)
    assert not common.refused_before_start(1, False, False)  # a crash: kept, its command reproduces it
    assert not common.refused_before_start(2, True, False) and not common.refused_before_start(2, False, False, [3])


def test_why_a_render_did_not_run_in_a_worker_is_read_from_vom_s_stderr() -> None:
    """Both nodes show vom's stderr only on failure: a worker that could not be started (a shared socket folder)
    made every Blender Analyze load torch again, unsaid (QA); a worker that did not take the render, or died."""
    from vom_plugin.host.blender_addon.common import worker_note

    cannot = ("vom render: cannot start a vom worker at /tmp/x/w.sock: worker socket folder: /tmp/x can be entered by "
              "other users (mode 755; expected 700); rendering in this process")
    assert worker_note(["vom render: note: something", cannot]) == [cannot[len("vom render: "):]]
    died = ("vom render: the vom worker ended during the render; rendering the rest in this process (the frames "
            "written are complete; the render resumes from the cache)")
    assert worker_note([died]) == [died[len("vom render: "):]]
    assert worker_note(["24 frames written", "vom render: note: --roto gives rotos"]) == []


def test_frame_tokens_counts_the_tokens_of_a_file_name() -> None:
    from vom_plugin.host.blender_addon.common import frame_tokens

    assert [frame_tokens(p) for p in ("/a#1/alpha.####.exr", "alpha_#2.####.exr", "a.%04d.exr", "a.exr",
                                      "a.$F4_@@.exr")] == [1, 2, 1, 0, 2]


SETTINGS = {
    "memory": ["first+prev2", "prev3", "PREV3", " every-5 ", "first+every-1", "prev02", "prev0", "prev 2", "prev",
               "first+", "every-", "prev٣", "last+prev2", 5, "first+prev2\n"],
    "channel": ["A", "vom.A", "matte.fg.A", "my-matte.A", "a", "alpha", "vom.alpha", "vöm.A", ".A", "vom..A", " A"],
    "mask_channel": ["mask", "Mask_2", "A", "alpha", "Red", "b", "rgba.alpha", "mask.A", "2mask", "x" * 64, "x" * 65],
    "device": ["auto", "cpu", "cuda", "CUDA:1", "cuda:0", "cuda:01", "cuda:99", "cuda:100", "gpu", "cuda:"],
    "working_size": [128, 4096, 960, 127, 4097, 0, True, 960.0],
    "top_k": [1, 256, 0, 257, 128],
    "output": ["alpha", "rgba", "rgba-premult", "RGBA", "premult"],
    "compression": ["zip", "dwaa", "piz", "none", "ZIP", "b44"],
    "colorspace": ["ACEScg", "lin_rec709", "sRGB", "raw", "ACES2065-1", "acescg", "linear"],
}


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, vs in SETTINGS.items() for v in vs])
def test_a_setting_a_host_takes_is_one_vom_takes(name: str, value: object) -> None:
    """Each knob's value as a host checks it before anything is baked (common.setting_problem, from node_def.json)
    agrees with vom's grammar of the value the host writes (a string stripped): taken by both, or refused by both."""
    (row,) = [k for k in common.load_knob_table()["knobs"] if k["name"] == name]
    problem = common.setting_problem(row, value)
    try:
        grammar.parse_value(name, value.strip() if isinstance(value, str) else value)
        vom_ok = True
    except InputError:
        vom_ok = False
    assert (problem is None) == vom_ok, (value, problem)
    if problem is not None:
        assert problem.startswith(f"{row['label']} {value.strip() if isinstance(value, str) else value!r}:")


def test_every_grammar_of_the_node_definition_is_checked_by_the_hosts() -> None:
    """A grammar added to the node definition without a host-side rule would pass the hosts and fail in vom."""
    table = common.load_knob_table()["knobs"]
    assert {k["grammar"] for k in table if k["grammar"]} == set(common._GRAMMARS) == set(grammar.GRAMMARS)


def test_the_shipped_model_names_a_host_knows_are_vom_s(tmp_path) -> None:
    from vom_plugin.locations import MODEL_ALIASES

    assert set(common.SHIPPED_MODELS) == set(MODEL_ALIASES)
    assert common.model_problem("lite", "/nowhere/lite") is None
    (tmp_path / "w.safetensors").write_bytes(b"x")
    assert common.model_problem("w.safetensors", str(tmp_path / "w.safetensors")) is None
    assert common.model_problem("DEFAULT", "/nowhere/DEFAULT") == (
        "Model 'DEFAULT': no shipped model has that name (default, lite, full) (the shipped names are lower case: "
        "'default'), and no weights file is at /nowhere/DEFAULT")


def test_vom_s_advice_is_put_in_the_node_s_terms() -> None:
    """QA: both nodes passed on "pass --cache DIR (or set VOM_CACHE_DIR)" and, where the colour came from the host,
    "set colorspace X" of a knob the artist had not chosen."""
    colour = "plate p.exr says its colour space is 'lin_ap1_scene' (ACEScg) and is read as lin_rec709; if it is " \
             "ACEScg, set colorspace ACEScg"
    assert common.in_node_terms(colour, None, "set the node's Cache folder") == colour  # the knob it names
    assert common.in_node_terms(colour, "set the plate image's Color Space", "x").endswith(
        "set colorspace ACEScg (here: set the plate image's Color Space)")
    for cache in ("cache folder '/x' cannot be written; pass --cache DIR (or set VOM_CACHE_DIR) to a writable folder",
                  "the disk holding /c has 3 MiB free ...; free space there or pass --cache DIR on another disk"):
        said = common.in_node_terms(cache, None, "set the node's Cache folder to a writable folder")
        assert "--cache" not in said and said.endswith("set the node's Cache folder to a writable folder"), said


def test_the_knob_table_names_each_knobs_flag_as_the_node_definition_does() -> None:
    """The hosts name vom's flags by their knobs' labels from one source (node_defs/, through node_def.json): a flag
    of two knobs (--roto: Keyframes, Objects) names neither."""
    from vom_plugin.nodedef import load_node_def

    knobs = load_node_def().knobs
    flags = [k.flag for k in knobs]
    assert common.flag_labels(common.load_knob_table()) == {
        k.flag: k.label for k in knobs if flags.count(k.flag) == 1}
    assert "--roto" not in common.flag_labels(common.load_knob_table())


def test_vom_s_failures_are_put_in_the_node_s_terms() -> None:
    """QA: the nodes' failure dialogs said "use --device cpu or auto", "lower --working-size", "out '...'": a node
    has knobs, not flags or shot-file fields. vom's own words (from its code, where this machine lets them be made)
    with each flag and a leading field named by the knob's label."""
    import torch

    from vom_plugin.engine.device import oom_guard, resolve_device

    with pytest.raises(InputError) as oom:
        with oom_guard(960):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
    assert common.in_node_terms(f"error: {oom.value}", None, "x") == (
        "error: the GPU ran out of memory at working size 960: lower Working size (e.g. 720 or 540), free the GPU, or "
        "set Device to cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError) as no_cuda:
            resolve_device("cuda")
        said = common.in_node_terms(f"error: {no_cuda.value}", None, "x")
        assert said.startswith("error: Device 'cuda': CUDA is not available on this machine (torch ")
        assert said.endswith("); set Device to cpu or auto"), said
    guard = ("out '/x/sh010.####.exr': frame 1001 would be written to /x/sh010.1001.exr, which is the plate "
             "/x/sh010.####.exr; the render would overwrite its own input. Choose another output pattern")
    assert common.in_node_terms(guard, None, "x") == "Output" + guard[len("out"):]
    assert common.in_node_terms("vom render: error: model '/m/w.safetensors': not a checkpoint", None, "x") == (
        "vom render: error: Model '/m/w.safetensors': not a checkpoint")
    assert common.in_node_terms("give --frames 1-10 or --memory prev1; --top-k or --out", None, "x") == (
        "set Frame range to 1-10 or Memory policy prev1; Top-k or Output")
    # the cache's own advice as the host says it; vom's other words, a field not quoted, --roto, as they were
    assert common.in_node_terms("no space; free space there or pass --cache DIR on another disk; pass another --cache",
                                None, "set the node's Cache folder") == (
        "no space; free space there or set the node's Cache folder; set another Cache folder")
    assert common.in_node_terms("cache: off; pass --cache DIR (or set VOM_CACHE_DIR) to a folder of its own", None,
                                "x") == "cache: off; set Cache folder to a folder of its own"
    # a refusal of the node's own shot file, which the node took back: the field the artist set (review)
    said = "vom render: error: shot file '/s/a_vom/shot.yaml': out '/s/p.####.exr' is the plate pattern"
    assert common.in_node_terms(said, None, "x") == "vom render: error: Output '/s/p.####.exr' is the plate pattern"
    for kept in ("plate: frame 7 missing", "cache: off (VOM_CACHE_MIN_FREE_GB)", "keyframes: missing (--roto "
                 "roto.1001.exr)", "vom render --progress json --no-worker", "the output 'x' of --outline",
                 # a flag's name inside a path or a quoted name is part of it (review)
                 "frame 3: /shows/x/--out/p.0003.exr is missing", "a file '--top-k.safetensors' here",
                 "C:\\shots\\--out\\a.exr",
                 # a crash's traceback, as a bug report pastes it (review)
                 'Traceback (most recent call last):\n  File "x.py", line 1\n    p.add_argument("--device")'):
        assert common.in_node_terms(kept, None, "x") == kept
    # a knob table that cannot be read leaves vom's words as they are (a closing dialog must not lose them)
    assert common.in_node_terms("use --device cpu", None, "x", {"no knobs": []}) == "use --device cpu"


def test_the_hosts_absolute_paths_agree_with_voms(tmp_path, monkeypatch) -> None:
    """The hosts' stdlib copy of ``engine.shot.absolute`` reads every path as vom does: a .. after a link as the system
    reads it (the link's target's parent), a link earlier in the path kept as spelt, a loop ended."""
    from vom_plugin.engine.shot import absolute

    (tmp_path / "plate" / "sub").mkdir(parents=True)
    (tmp_path / "mnt" / "sh010" / "comp").mkdir(parents=True)
    (tmp_path / "sl").symlink_to("plate/sub")
    (tmp_path / "show").symlink_to(tmp_path / "mnt")
    (tmp_path / "mnt" / "sh010" / "clink").symlink_to("comp")
    (tmp_path / "plate" / "sub" / "up2").symlink_to("../..")
    (tmp_path / "loop").symlink_to("loop")
    monkeypatch.chdir(tmp_path)
    cases = ["sl/../p.####.exr", "sl/..", "sl/../../z", "x/../y.exr", "a/./b//c.exr", "show/sh010/comp/../o.exr",
             "show/sh010/clink/../o.exr", "plate/sub/up2/../q", "loop/../a", "/../x", str(tmp_path / "sl" / ".." / "o"),
             "", "rel/path.exr"]
    got = {c: common.absolute(c) for c in cases}
    assert got == {c: absolute(c) for c in cases}
    assert got["sl/../p.####.exr"] == str(tmp_path / "plate" / "p.####.exr")
    assert got["show/sh010/clink/../o.exr"] == str(tmp_path / "show" / "sh010" / "o.exr")


def test_work_undo_removes_only_what_a_dead_process_of_this_machine_kept_aside(tmp_path, monkeypatch) -> None:
    """Review: nothing removed the files a WorkUndo kept aside (hidden ``.<file>.<token>.vom-undo``, hard links of a
    replaced plate frame) when Nuke or Blender crashed before letting them go. The next WorkUndo of the folder removes
    those of a process of this machine that no longer runs; a live process's (another host's Analyze of the same
    Output), another machine's (a process id there means nothing here) and a file of the user's stay."""
    import os
    import subprocess
    import sys

    work = tmp_path / "a_vom"
    work.mkdir()
    (work / "plate.0001.exr").write_bytes(b"the plate")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    here = common.WorkUndo(tmp_path / "probe").token.partition("~")[0]  # this machine, as the tokens name it

    def aside(name: str, host: str, pid: int) -> str:
        path = work / f".{name}.{host}~{pid}-0123abcd.vom-undo"
        path.write_bytes(b"kept aside")
        return path.name

    dead = [aside("plate.0001.exr", here, gone.pid), aside("shot.yaml", here, gone.pid),
            aside("roto_hero.0003.exr", here, gone.pid)]
    (work / "shot.yaml").write_text("the render's")
    (work / "roto_hero.0003.exr").write_bytes(b"the render's roto")
    # renamed aside (no hard links), and the host died before the bake's new frame took its place: the only copy
    only = aside("plate.0007.exr", here, gone.pid)
    stay = [aside("plate.0002.exr", here, os.getpid()),  # live
            aside("plate.0001.exr", "render07-1234abcd", gone.pid),  # another machine's
            aside("notes.txt", here, gone.pid)]  # no file a host keeps aside
    assert all((work / n).exists() for n in dead)
    # under an hour old: kept, whoever's (a host tag two machines share would take a live Analyze's for dead: review)
    common.WorkUndo(work).discard()  # (its own kept files let go)
    assert all((work / n).exists() for n in [*dead, only, *stay])
    monkeypatch.setattr(common, "STALE_AFTER_S", -1.0)  # as if an hour had passed
    lost = aside("roto_dog.0005.exr", here, gone.pid)  # its roto missing: the user deleted it, not put back
    undo = common.WorkUndo(work)
    assert not (work / lost).exists() and not (work / "roto_dog.0005.exr").exists()
    mine = sorted(p.name for p in work.iterdir() if undo.token in p.name)  # what this one keeps aside
    assert sorted(p.name for p in work.iterdir() if p.name not in mine) == sorted(
        ["plate.0001.exr", "plate.0007.exr", "roto_hero.0003.exr", "shot.yaml", *stay])
    assert not {*dead, only} & set(undo.before) and "plate.0007.exr" in undo.before
    assert (work / "plate.0007.exr").read_bytes() == b"kept aside"
    assert (work / "shot.yaml").read_text() == "the render's"
    # its own are named so: this machine, this process
    kept = common.WorkUndo.KEPT.match(common.WorkUndo.KEEP.format("plate.0001.exr", undo.token))
    assert kept is not None and kept["host"] == here and kept["pid"] == str(os.getpid())


def test_readme_says_a_crashed_hosts_set_aside_files_go_an_hour_later() -> None:
    """QA: README said the next Analyze of the Output on the same machine removes what a crashed Nuke or Blender set
    aside; it removes them only once STALE_AFTER_S old (on purpose: a host name two machines share). Both hosts'
    sections say the hour."""
    import re
    from pathlib import Path

    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8").split())
    assert common.STALE_AFTER_S == 3600.0  # "an hour" below
    nuke = re.search(r"where Nuke or Blender crashed before, (.*?)\) and runs", readme)
    assert nuke is not None and "on the same machine removes them once they are an hour old" in nuke.group(1), \
        nuke and nuke.group(1)
    assert "what it sets aside for that goes as in Nuke, a crashed Blender's an hour later" in readme  # (lines joined)


def test_work_undo_takes_nothing_back_once_discarded(tmp_path) -> None:
    """Review: the hosts let the kept files go as soon as vom begins the render; an undo after that (Nuke's, on an
    unexpected error after the render's end) removed the accepted render's shot file and baked plate, with nothing
    kept to put back in their place."""
    work = tmp_path / "a_vom"
    work.mkdir()
    (work / "shot.yaml").write_text("the earlier render's")
    (work / "plate.0001.exr").write_bytes(b"earlier plate")
    undo = common.WorkUndo(work)
    common.write_text_atomic(work / "shot.yaml", "accepted")
    (work / "new.exr").write_bytes(b"accepted plate")
    common.keep_unless_changed(work / "new.exr", work / "plate.0001.exr", undo)
    assert len([p for p in work.iterdir() if p.name.endswith(".vom-undo")]) == 2
    undo.discard()
    assert sorted(p.name for p in work.iterdir()) == ["plate.0001.exr", "shot.yaml"]
    undo.undo()
    assert (work / "shot.yaml").read_text() == "accepted"
    assert (work / "plate.0001.exr").read_bytes() == b"accepted plate"


def test_the_hosts_machine_tag_is_vom_plugin_atomics() -> None:
    """The add-on's set-aside files name their machine as vom's temporaries do (a stdlib copy of
    ``vom_plugin.atomic._host_tag``: the hosts' Python has no vom package); a tag of another spelling would take this
    machine's files for another's, never cleaned, or another's for this one's."""
    from vom_plugin import atomic

    assert common._HOST == atomic._HOST == common._host_tag() == atomic._host_tag()


def test_the_hosts_process_check_is_vom_plugin_atomics(monkeypatch) -> None:
    """The add-on's stdlib copy of ``atomic._running`` answers as it does: a live process, a dead one; and on Windows
    neither calls os.kill (there TerminateProcess: a live writer's or host's process would be killed), asking the
    system instead, and a question it cannot answer is "running" (its files kept)."""
    import os
    import subprocess
    import sys

    from vom_plugin import atomic

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for pid, running in ((os.getpid(), True), (gone.pid, False)):
        assert atomic._running(pid) is running and common._running(pid) is running
    killed: list[int] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: killed.append(pid))
    monkeypatch.setattr(os, "name", "nt")  # here ctypes has no WinDLL: it cannot tell
    assert atomic._running(gone.pid) is True and common._running(gone.pid) is True and not killed
