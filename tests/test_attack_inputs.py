"""Attacks through inputs that cost unbounded time or memory: refused at once, exit 2, with the reason.

The command-line cases run in a subprocess with a time limit and an address-space limit, so that on a
version without the bound they fail by timing out instead of taking the machine down.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vom_plugin import safe_yaml
from vom_plugin.engine.shot import Shot
from vom_plugin.errors import InputError
from vom_plugin.io.sequence import MAX_FRAMES, parse_frame_range


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


def _vom(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vom_plugin.cli", *args], capture_output=True, text=True,
                          timeout=timeout, preexec_fn=_limited)


@pytest.fixture
def plate(tmp_path: Path) -> Path:
    from test_runner_render import make_shot_files

    make_shot_files(tmp_path)
    return tmp_path


@pytest.mark.parametrize("text", ["1-999999999", "1-9999999", "1-200000x1", "1-100,5-999999", "-99999999--1"])
def test_a_frame_range_beyond_any_shot_is_refused_before_listing_it(text: str) -> None:
    with pytest.raises(InputError, match=rf"frame range '{text}' names up to \d+ frames; a shot holds at most"):
        parse_frame_range(text)


def test_ranges_a_shot_can_hold_still_parse() -> None:
    assert len(parse_frame_range(f"1-{MAX_FRAMES}")) == MAX_FRAMES
    assert parse_frame_range("1-999999999x100000000") == [1, 100000001, 200000001, 300000001, 400000001,
                                                          500000001, 600000001, 700000001, 800000001, 900000001]


def test_a_huge_frame_range_on_the_command_line_exits_2_at_once(plate: Path, tmp_path: Path) -> None:
    r = _vom("render", "--plate", str(plate / "plate" / "p.####.exr"), "--roto", str(plate / "roto" / "r.0001.exr"),
             "--out", str(tmp_path / "o" / "a.####.exr"), "--frames", "1-9999999", "--progress", "none")
    assert r.returncode == 2, r.stderr
    assert "frame range '1-9999999' names up to 9999999 frames; a shot holds at most 100000" in r.stderr
    assert not (tmp_path / "o").exists()


def test_a_frame_list_beyond_any_shot_is_refused(plate: Path) -> None:
    with pytest.raises(InputError, match="frames: a list of 100001 frames; a shot holds at most 100000"):
        Shot(plate=str(plate / "plate" / "p.####.exr"), keyframes={1: str(plate / "roto" / "r.0001.exr")},
             out=str(plate / "o.####.exr"), frames=list(range(MAX_FRAMES + 1)))
    # a range is counted, not listed: a trillion frames is refused at once
    with pytest.raises(InputError, match="frames: a list of 1000000000000 frames; a shot holds at most 100000"):
        Shot(plate=str(plate / "plate" / "p.####.exr"), keyframes={1: str(plate / "roto" / "r.0001.exr")},
             out=str(plate / "o.####.exr"), frames=range(10**12))


def _bomb(field: str) -> str:
    """``field: {a0: &a0 [10 x "lol"], a1: &a1 [10 x *a0], ..., a9: [10 x *a8]}``: 10**10 strings once expanded,
    a few hundred bytes as text (a "billion laughs")."""
    parts = ['a0: &a0 [' + ", ".join(['"lol"'] * 10) + "]"]
    parts += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    return f"{field}: {{{', '.join(parts)}}}\n"


@pytest.mark.parametrize("field", ["frames", "out", "channel"])
def test_a_yaml_alias_bomb_is_refused_at_once(plate: Path, tmp_path: Path, field: str) -> None:
    shot = {"plate": str(plate / "plate" / "p.####.exr"), "keyframes": {1: str(plate / "roto" / "r.0001.exr")},
            "out": str(tmp_path / "o" / "a.####.exr")}
    path = tmp_path / "bomb.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in shot.items() if k != field}) + _bomb(field))
    r = _vom("render", str(path), "--progress", "none")
    assert r.returncode == 2, r.stderr[-2000:]
    assert "bomb.yaml" in r.stderr and "alias *a" in r.stderr and "not accepted" in r.stderr, r.stderr[-2000:]


def test_safe_yaml_names_the_line_of_the_alias() -> None:
    with pytest.raises(InputError, match=r"shot: not valid YAML \(line 2: alias \*x"):
        safe_yaml.load_text("a: &x 1\nb: *x\n", "shot")
    assert safe_yaml.load_text("plate: p.####.exr\nframes: 1-10\n", "shot") == {"plate": "p.####.exr",
                                                                                 "frames": "1-10"}


def test_deeply_nested_values_are_refused_naming_the_file(plate: Path, tmp_path: Path) -> None:
    """QA: 500 levels of [ ] (a kilobyte) ran PyYAML out of stack: a traceback and exit 1, in vom render and vom
    farm."""
    base = {"plate": str(plate / "plate" / "p.####.exr"), "keyframes": {1: str(plate / "roto" / "r.0001.exr")},
            "out": str(tmp_path / "o" / "a.####.exr")}
    for depth, said in ((40, "nest 41 levels deep; expected at most 32"), (5000, "nest deeper than Python's stack")):
        path = tmp_path / f"deep{depth}.yaml"
        path.write_text(yaml.safe_dump(base) + "x: " + "[" * depth + "]" * depth + "\n")
        for args in (("render", str(path), "--progress", "none"), ("farm", "check", str(path))):
            r = _vom(*args)
            assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr[-2000:])
            assert f"deep{depth}.yaml" in r.stderr and said in r.stderr, (args, r.stderr[-2000:])
        assert not (tmp_path / "o").exists()
    # three levels, as objects: name: frame: roto nests, and a few more, are a shot file's
    assert safe_yaml.load_text("a: {b: {c: [[1]]}}\n", "shot") == {"a": {"b": {"c": [[1]]}}}


@pytest.mark.parametrize(("text", "said"), [
    ("plate: a\n\tout: b\n", r"line 2, column 1: while scanning for the next token; found character '\\t' that "
                             r"cannot start any token\)$"),
    ("frames: [1, 2\nout: x\n", r"line 2, column 4: while parsing a flow sequence; expected ',' or '\]'"),
    ("a: 1\n---\nb: 2\n", r"line 2, column 1: expected a single document in the stream; but found another"),
    ("plate: x\n<<: {top_k: 5}\n", r"line 2: a merge key << \(YAML merge keys, anchors and aliases are not "
                                    r"accepted here; write the fields out\)\)$")])
def test_a_yaml_error_is_one_line_naming_where(text: str, said: str) -> None:
    """PyYAML's errors were several lines quoting the text, naming "<unicode string>" (a JSON progress line carried
    them with their newlines); a merge key failed as "could not determine a constructor" (QA)."""
    with pytest.raises(InputError, match=r"^shot: not valid YAML \(" + said) as e:
        safe_yaml.load_text(text, "shot")
    assert "\n" not in str(e.value) and "unicode string" not in str(e.value)


def test_a_key_given_twice_is_refused_naming_its_lines() -> None:
    """YAML keeps the last of two equal keys silently: a second `out:` wrote somewhere else, a second roto for
    frame 1 replaced the first."""
    with pytest.raises(InputError, match=r"shot: not valid YAML \(line 3: 'out' is given twice \(first on line 1\)"):
        safe_yaml.load_text("out: a/a.####.exr\nframes: 1-2\nout: b/a.####.exr\n", "shot")
    with pytest.raises(InputError, match=r"line 1: 1 is given twice"):
        safe_yaml.load_text("keyframes: {1: a.exr, 1: b.exr}\n", "shot")


def test_frame_numbers_in_a_shot_file_are_decimal_whatever_their_padding(tmp_path: Path) -> None:
    """A QA pass: YAML 1.1 read a keyframe keyed ``0010`` as octal 8 (the frame-10 roto went on frame 8, exit 0)
    and ``frames: 1:24`` as the sexagesimal 84."""
    got = safe_yaml.load_text("keyframes: {0010: a.exr, 0012: b.exr, -0003: c.exr, 0008: d.exr, 0019: e.exr}\n"
                              "frames: 1:24\nx: 0x1A\nlist: [0007, 0008, 0009, 0010]\n", "shot")
    assert got == {"keyframes": {10: "a.exr", 12: "b.exr", -3: "c.exr", 8: "d.exr", 19: "e.exr"}, "frames": "1:24",
                   "x": "0x1A", "list": [7, 8, 9, 10]}
    import yaml

    assert yaml.safe_load("a: 0008\nb: 010\n") == {"a": "0008", "b": 8}  # PyYAML's own loader is left as it is
    with pytest.raises(InputError, match=r"line 1: 10 is given twice"):
        safe_yaml.load_text("keyframes: {0010: a.exr, 10: b.exr}\n", "shot")
    (tmp_path / "r.0010.exr").write_bytes(b"")
    shot_file = tmp_path / "s.yaml"
    shot_file.write_text("plate: p.####.exr\nkeyframes: {0010: r.0010.exr}\nout: o/a.####.exr\nframes: 0007-0012\n")
    shot = Shot.from_yaml(shot_file)
    assert list(shot.keyframes) == [10] and list(shot.frames) == [7, 8, 9, 10, 11, 12]
    shot_file.write_text("plate: p.####.exr\nkeyframes: {10: r.0010.exr}\nout: o/a.####.exr\nframes: 1:24\n")
    with pytest.raises(InputError, match=r"frames: frame range '1:24' does not parse"):
        Shot.from_yaml(shot_file)


def test_a_shot_file_too_big_to_be_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("frames: [" + ", ".join(["1"] * 400_000) + "]\n")
    with pytest.raises(InputError, match="huge.yaml.*characters; expected at most 1048576"):
        Shot.from_yaml(path)


def _tiny_exr_claiming(path: Path, full: int) -> None:
    """An 8x8-pixel EXR of a few hundred bytes whose display window claims full x full pixels."""
    import numpy as np
    import OpenImageIO as oiio

    spec = oiio.ImageSpec(8, 8, 3, oiio.HALF)
    spec.full_width = spec.full_height = full
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec)
    assert out.write_image(np.zeros((8, 8, 3), np.float32))
    out.close()


@pytest.mark.parametrize("role", ["plate", "roto"])
def test_a_tiny_file_claiming_a_huge_window_is_refused(plate: Path, tmp_path: Path, role: str) -> None:
    bomb = tmp_path / f"{role}_bomb.0001.exr"
    _tiny_exr_claiming(bomb, 200_000)  # 4e10 pixels: 480 GB as float32 RGB
    args = {"plate": str(plate / "plate" / "p.####.exr"), "roto": str(plate / "roto" / "r.0001.exr")}
    args[role] = str(tmp_path / f"{role}_bomb.####.exr") if role == "plate" else str(bomb)
    r = _vom("render", "--plate", args["plate"], "--roto", args["roto"], "--frames", "1",
             "--out", str(tmp_path / "o" / "a.####.exr"), "--progress", "none")
    assert r.returncode == 2, r.stderr[-2000:]
    assert "bomb.0001.exr: display window 200000x200000" in r.stderr and "at most" in r.stderr, r.stderr[-2000:]
