"""Shot: fields and defaults from the node definition, YAML loading, and a clear message per bad field."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from vom_plugin.engine.shot import Shot, parse_roto_arg
from vom_plugin.errors import InputError
from vom_plugin.nodedef import load_node_def

BASE = {"plate": "/p/plate.####.exr", "keyframes": {1001: "/p/roto.1001.exr"}, "out": "/o/alpha.####.exr"}


def test_fields_and_defaults_are_the_node_knobs() -> None:
    node = load_node_def()
    assert [f.name for f in dataclasses.fields(Shot)] != []
    assert {f.name for f in dataclasses.fields(Shot)} == {k.name for k in node.knobs}
    shot = Shot(**BASE)
    for knob in node.knobs:
        if knob.name not in BASE and knob.name != "frames":
            assert getattr(shot, knob.name) == knob.default, knob.name
    assert shot.frames is None
    assert shot.keyframes == {1001: Path("/p/roto.1001.exr")}


def test_yaml_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    f = tmp_path / "sub" / "shot.yaml"
    f.write_text("plate: plate/sh010.####.exr\nframes: 1001-1010x2\nkeyframes: {1001: roto/r.1001.exr}\n"
                 "out: ../out/a.%04d.exr\nworking_size: 512\ncache: .cache\n")
    shot = Shot.from_yaml(f)
    assert shot.plate == str(tmp_path / "sub" / "plate" / "sh010.####.exr")
    assert shot.out == str(tmp_path / "out" / "a.%04d.exr")
    assert shot.keyframes == {1001: tmp_path / "sub" / "roto" / "r.1001.exr"}
    assert shot.frames == [1001, 1003, 1005, 1007, 1009]
    assert shot.working_size == 512
    assert shot.cache == tmp_path / "sub" / ".cache"
    # overrides (the CLI's flags) win over the file
    assert Shot.from_yaml(f, frames="1005-1006", top_k=4).frames == [1005, 1006]
    assert Shot.from_dict(shot.to_dict()) == shot


def test_a_dot_dot_after_a_link_is_the_links_targets_parent_as_the_system_reads_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A QA pass: --out sl/../p.####.exr, sl a link to plate/sub, was written beside sl (the name before .. dropped
    as text), where the shell, Nuke's Read and ls read plate/p.####.exr: a Read of the path typed found no frames."""
    (tmp_path / "plate" / "sub").mkdir(parents=True)
    (tmp_path / "sl").symlink_to("plate/sub")
    monkeypatch.chdir(tmp_path)
    shot = Shot(plate="plate/sub/p.####.exr", out="sl/../o/a.####.exr", keyframes={1: "sl/../r.0001.exr"},
                cache="sl/../c")
    assert shot.out == str(tmp_path / "plate" / "o" / "a.####.exr")
    assert shot.keyframes == {1: tmp_path / "plate" / "r.0001.exr"}
    assert shot.cache == tmp_path / "plate" / "c"
    assert Shot(plate="plate/./sub//p.####.exr", out="x/../o/a.####.exr", keyframes={1: "r.0001.exr"}).out == \
        str(tmp_path / "o" / "a.####.exr")  # a .. after a folder: as before
    (tmp_path / "mnt" / "sh010" / "comp").mkdir(parents=True)  # a link earlier in the path keeps its spelling
    (tmp_path / "show").symlink_to(tmp_path / "mnt")  # (review: /show became the mount's path)
    assert Shot(plate="plate/sub/p.####.exr", out="show/sh010/comp/../o/a.####.exr", keyframes={1: "r.0001.exr"}
                ).out == str(tmp_path / "show" / "sh010" / "o" / "a.####.exr")
    (tmp_path / "mnt" / "sh010" / "clink").symlink_to("comp")  # a link before .. is followed as it is spelt
    assert Shot(plate="plate/sub/p.####.exr", out="show/sh010/clink/../o/a.####.exr", keyframes={1: "r.0001.exr"}
                ).out == str(tmp_path / "show" / "sh010" / "o" / "a.####.exr")
    (tmp_path / "loop").symlink_to("loop")  # a loop ends (the system says ELOOP)
    assert Shot(plate="plate/sub/p.####.exr", out="loop/../o/a.####.exr", keyframes={1: "r.0001.exr"}).out
    f = tmp_path / "sl" / "shot.yaml"  # in a shot file too
    f.write_text("plate: p.####.exr\nkeyframes: {1: ../r.0001.exr}\nout: ../o/a.####.exr\n")
    assert Shot.from_yaml(f).out == str(tmp_path / "plate" / "o" / "a.####.exr")
    import argparse  # and on the command line (the flags were made absolute as text before the Shot saw them)

    from vom_plugin.commands.render import add_arguments, shot_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    got = shot_from_args(parser.parse_args(["--plate", "sl/../p.####.exr", "--out", "sl/../o/b.####.exr",
                                            "--roto", "sl/../r.0001.exr", "--cache", "sl/../c"]))
    assert (got.plate, got.out, got.keyframes, got.cache) == (
        str(tmp_path / "plate" / "p.####.exr"), str(tmp_path / "plate" / "o" / "b.####.exr"),
        {1: tmp_path / "plate" / "r.0001.exr"}, tmp_path / "plate" / "c")


def test_a_misspelt_override_of_from_yaml_is_the_callers_not_the_files(tmp_path: Path) -> None:
    """QA: ``Shot.from_yaml(f, colourspace=...)`` said "shot file 'f': unknown field(s) 'colourspace'", blaming a
    file that was fine, without the hint ``Shot(colourspace=...)`` gives."""
    f = tmp_path / "sh010.yaml"
    f.write_text("plate: p.####.exr\nkeyframes: {1: r.0001.exr}\nout: o/a.####.exr\n")
    with pytest.raises(InputError) as e:
        Shot.from_yaml(f, colourspace="ACEScg")
    assert str(e.value).startswith("Shot.from_yaml: unknown override(s) 'colourspace' ('colourspace': did you mean "
                                   "'colorspace'?); expected only plate"), e.value
    assert "shot file" not in str(e.value)


def test_yaml_overrides_paths_are_the_working_folders_as_on_the_command_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Shot.from_yaml(f, out=...)`` is ``vom render f --out ...``: a relative path given beside the file is the
    working folder's, not the file's (a TD's frames went to another folder than the CLI's, without a word)."""
    (tmp_path / "sh010").mkdir()
    f = tmp_path / "sh010" / "sh010.yaml"
    f.write_text("plate: plate/p.####.exr\nkeyframes: {1001: roto/r.1001.exr}\nout: out/a.####.exr\n")
    monkeypatch.chdir(tmp_path)
    shot = Shot.from_yaml("sh010/sh010.yaml", out="renders/a.####.exr", keyframes={1001: "sh010/roto/r.1001.exr"},
                          cache="c", model="w/m.safetensors", objects=None)
    assert shot.out == str(tmp_path / "renders" / "a.####.exr")
    assert shot.keyframes == {1001: tmp_path / "sh010" / "roto" / "r.1001.exr"}
    assert shot.cache == tmp_path / "c"
    assert shot.model == str(tmp_path / "w" / "m.safetensors")
    assert shot.plate == str(tmp_path / "sh010" / "plate" / "p.####.exr")  # the file's own: its folder's
    (tmp_path / "sh010" / "objects.yaml").write_text("plate: plate/p.####.exr\nobjects: {hero: {1001: roto/h.exr}}\n"
                                                     "out: out/a.####.exr\n")
    named = Shot.from_yaml("sh010/objects.yaml", objects={"hero": {1001: "r/h.exr"}})
    assert named.objects == {"hero": {1001: tmp_path / "r" / "h.exr"}}
    assert Shot.from_yaml(f, model="default").model == "default"  # a shipped name is no path
    gone = tmp_path / "gone"  # a working folder removed: a shot file's own paths do not need it (review)
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert Shot.from_yaml(f).out == str(tmp_path / "sh010" / "out" / "a.####.exr")


@pytest.mark.parametrize("field,value,needle", [
    ("working_size", 64, "working_size 64: out of range; expected 128 to 4096"),
    ("working_size", "big", "working_size 'big': expected a whole number from 128 to 4096"),
    ("top_k", 0, "top_k 0: out of range; expected 1 to 256"),
    ("device", "tpu", "device 'tpu': expected auto, cpu, cuda or cuda:N"),
    ("colorspace", "rec2020", "colorspace 'rec2020': expected one of ACEScg, lin_rec709, sRGB, raw, ACES2065-1"),
    ("memory", "first+every-0", "memory 'first+every-0': expected first+prevK, prevK, every-N or first+every-N"),
    ("memory", "last3", "memory 'last3': expected first+prevK"),
    # a number where the grammar reads text: the grammar says what it takes, not the knob's whole help (QA)
    ("memory", 5, "memory '5': expected first+prevK, prevK, every-N or first+every-N (K, N from 1"),
    ("model", ["x"], "model ['x']: expected a non-empty string (Shipped model name (default, lite) or the path of "
                     "a .safetensors checkpoint)"),
    ("frames", "10-x", "frames: frame range '10-x' does not parse"),
    ("out", "/o/alpha.exr", "out '/o/alpha.exr': no frame number token"),
    ("keyframes", {"first": "r.exr"}, "keyframes: key 'first' is not a frame number"),
    # digits are ASCII digits everywhere (as in a file name vom writes): fullwidth 1001 is no frame
    ("keyframes", {"\uff11\uff10\uff10\uff11": "r.exr"}, "is not a frame number"),
    ("frames", "\uff11\uff10\uff10\uff11", "does not parse"),
    ("keyframes", ["/p/roto.exr@\u0661\u0660\u0660\u0661"], "keyframes entry"),
    ("keyframes", ["@-1"], "keyframes entry '@-1': no roto file before the '@'; expected PATH@FRAME (e.g. "
                           "roto.exr@-1)"),
    ("keyframes", {}, "keyframes: empty"),
    ("channel", "A B", "channel 'A B': expected a channel name A or <layer>.A"),
    ("channel", "matte", "channel 'matte': expected a channel name A or <layer>.A"),
    ("channel", "v\u00f6m.A", "channel 'v\u00f6m.A': expected a channel name A or <layer>.A"),
    ("channel", "vom.alpha", "channel 'vom.alpha': expected a channel name A or <layer>.A"),
])
def test_bad_field_names_field_value_and_expectation(field: str, value: object, needle: str) -> None:
    with pytest.raises(InputError) as e:
        Shot(**{**BASE, field: value})
    assert needle in str(e.value)


def test_yaml_unknown_and_missing_keys(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("plate: p.####.exr\nkeyframes: {1: r.0001.exr}\nout: o.####.exr\nworkingsize: 5\n")
    with pytest.raises(InputError, match=r"unknown field\(s\) 'workingsize'; expected only plate, frames"):
        Shot.from_yaml(f)
    f.write_text("plate: p.####.exr\nframes: 1-3\n")
    with pytest.raises(InputError, match=r"missing required field\(s\) keyframes, out"):
        Shot.from_yaml(f)
    f.write_text("plate: [unclosed\n")
    with pytest.raises(InputError, match="not valid YAML"):
        Shot.from_yaml(f)
    # ${SHOW} in the README's flow style: YAML reads its { as a mapping; the message says to quote it (QA)
    f.write_text("plate: ${SHOW}/p.####.exr\nkeyframes: {1: ${SHOW}/r.0001.exr}\nout: o.####.exr\n")
    with pytest.raises(InputError, match=r"line 2, column 17: .*; a value holding \$\{VAR\} inside \{ \} or \[ \] must "
                                         r"be quoted: \"\$\{VAR\}/\.\.\.\" \(or write \$VAR\)$"):
        Shot.from_yaml(f)
    f.write_text("plate: p.####.exr\nkeyframes: {\n  1: ${SHOW}/r.0001.exr,\n  5: r.0005.exr}\nout: o.####.exr\n")
    with pytest.raises(InputError, match=r"line 3, column 7: .*must be quoted"):  # a mapping over several lines
        Shot.from_yaml(f)
    f.write_text("plate: p.####.exr\nkeyframes: {1: r.0001.exr: x} # ${SHOW}\nout: o.####.exr\n")  # not at ${
    with pytest.raises(InputError, match=r"not valid YAML \(line 2, column 26: [^;]*; [^;]*\)$"):
        Shot.from_yaml(f)
    # safe loading only: a python tag is refused, not executed
    f.write_text("plate: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(InputError, match="not valid YAML"):
        Shot.from_yaml(f)


def test_a_roto_given_as_a_pattern_is_named_so(tmp_path: Path) -> None:
    """QA: roto.####.exr@1003 said "does not exist" while roto.1003.exr was there: a roto is one file."""
    from vom_plugin.engine.shot import check_roto_file

    (tmp_path / "roto.1003.exr").write_bytes(b"x")
    with pytest.raises(InputError, match=r"keyframes: roto file .*roto\.####\.exr \(frame 1003\) does not exist: a "
                                         r"roto is one file, not a pattern; name the keyframe's file "
                                         r"\(.*roto\.1003\.exr exists\)"):
        check_roto_file("keyframes", 1003, tmp_path / "roto.####.exr")
    with pytest.raises(InputError, match=r"does not exist: a roto is one file, not a pattern; name the keyframe's "
                                         r"file$"):
        check_roto_file("keyframes", 1004, tmp_path / "roto.%04d.exr")
    # two frame tokens: the field and keyframe still named (the pattern's own error named neither)
    with pytest.raises(InputError, match=r"^objects\.hero: roto file .*ro\.####\.####\.exr \(frame 1\) does not "
                                         r"exist: a roto is one file, not a pattern"):
        check_roto_file("objects.hero", 1, tmp_path / "ro.####.####.exr")


def test_roto_argument_forms() -> None:
    assert parse_roto_arg("/r/roto.1001.exr") == (1001, "/r/roto.1001.exr")
    assert parse_roto_arg("/r/roto_v2.exr@1050") == (1050, "/r/roto_v2.exr")
    with pytest.raises(InputError, match=r"--roto 'roto\.exr': no frame number.*roto\.exr@1001"):
        parse_roto_arg("roto.exr")
    # a pattern: PATH@FRAME of it, which the message suggested, is refused as a pattern too (QA)
    for pattern in ("rseq/roto.####.exr", "rseq/roto.%04d.exr", "rseq/roto.@@@@.exr"):
        with pytest.raises(InputError, match=rf"^--roto '{re.escape(pattern)}': a roto is one file, not a pattern; "
                                             r"name the keyframe's file \(e\.g\. rseq/roto\.1001\.exr\)$"):
            parse_roto_arg(pattern)
    # PATH@abc: was read as a file named roto.0001.exr@abc, "does not exist" (QA)
    with pytest.raises(InputError, match=r"--roto 'roto\.0001\.exr@abc': 'abc' after the '@' is not a frame number; "
                                         r"expected PATH@FRAME \(e\.g\. roto\.0001\.exr@1001\)"):
        parse_roto_arg("roto.0001.exr@abc")
    # the frame field: the digits before the extension after '.', '_' or '-', signed only right after one
    for name, frame in (("roto_1001.exr", 1001), ("roto-0003.exr", 3), ("roto.-003.exr", -3), ("roto--003.exr", -3),
                        ("/shots/sh010.v2/roto.0007.exr", 7), ("hero_v2.0012.exr", 12)):
        assert parse_roto_arg(name) == (frame, name)
    # a QA pass: a version number was taken for the frame (roto.0003.v2.exr on frame 2, exit 0), and roto-0003.exr
    # for frame -3; a version or digits run into a word are no frame field
    for name in ("roto.0003.v2.exr", "hero_v2.exr", "sh003_roto_v1.exr", "roto3.exr"):
        with pytest.raises(InputError, match=rf"--roto '{re.escape(name)}': no frame number in the file name"):
            parse_roto_arg(name)
    shot = Shot(**{**BASE, "keyframes": ["/r/a.0005.exr", "/r/b.exr@9"]})
    assert shot.keyframes == {5: Path("/r/a.0005.exr"), 9: Path("/r/b.exr")}


def test_a_roto_file_whose_name_holds_an_equals_sign_is_that_file(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from vom_plugin.engine.shot import parse_object_roto_arg

    monkeypatch.chdir(tmp_path)
    (tmp_path / "red_v=2.1001.exr").write_bytes(b"")
    assert parse_object_roto_arg("red_v=2.1001.exr") == (None, 1001, "red_v=2.1001.exr")
    assert parse_object_roto_arg("red_v=2.1001.exr@1005") == (None, 1005, "red_v=2.1001.exr")
    # NAME=PATH still names an object when no such file exists
    assert parse_object_roto_arg("hero=2.1001.exr") == ("hero", 1001, "2.1001.exr")


def test_a_shot_file_field_error_names_the_file_and_a_yaml_boolean_name_says_to_quote(tmp_path: Path) -> None:
    roto = tmp_path / "r.0001.exr"
    roto.write_bytes(b"")
    f = tmp_path / "sh010.yaml"
    f.write_text(f"plate: p.####.exr\nout: o.####.exr\nworking_size: -3\nkeyframes: [{roto}]\n")
    with pytest.raises(InputError, match=r"^shot file '.*sh010\.yaml': working_size -3: out of range"):
        Shot.from_yaml(f)
    # a value given on the command line is not the file's: no file name in front
    with pytest.raises(InputError, match=r"^working_size 50: out of range"):
        Shot.from_yaml(f, working_size=50)
    f.write_text(f"plate: p.####.exr\nout: o.####.exr\nobjects:\n  yes: {roto}\n")
    with pytest.raises(InputError, match=r"sh010\.yaml': objects: object name True is how YAML reads an unquoted "
                                         r"yes.*quote the name"):
        Shot.from_yaml(f)
    f.write_text(f"plate: p.####.exr\nout: o.####.exr\nobjects:\n  null: {{1: {roto}}}\n")
    with pytest.raises(InputError, match=r"sh010\.yaml': objects: an object name is missing, or is how YAML reads an "
                                         r"unquoted null or ~"):
        Shot.from_yaml(f)


def test_environment_variables_in_a_shot_files_paths_are_expanded_once_and_an_unset_one_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A QA pass: ``out: $QA_SHOW/vom/a.####.exr`` made a folder literally named ``$QA_SHOW`` beside the shot file.
    Expanded once, on what the file says: a $ in the shot file's folder or in a variable's value is the path's own,
    ``$$`` writes one, ``$F4`` stays a frame token, and a Shot's paths are final (``to_dict`` round-trips)."""
    folder = tmp_path / "my$x"  # the shot file's own folder has a $
    folder.mkdir()
    monkeypatch.setenv("QA_SHOW", str(tmp_path / "show$b"))  # so does the variable's value
    monkeypatch.setenv("QA_SEQ", "sq01")
    monkeypatch.delenv("b", raising=False)
    monkeypatch.delenv("x", raising=False)
    f = folder / "s.yaml"
    f.write_text("plate: ${QA_SHOW}/$QA_SEQ/p.$F4_v1.exr\nkeyframes: {1: $QA_SHOW/r.0001.exr}\n"
                 "out: vom/a$$1.####.exr\ncache: $QA_SHOW/cache\n")
    shot = Shot.from_yaml(f)
    show = tmp_path / "show$b"
    assert (shot.plate, shot.out, shot.cache) == (f"{show}/sq01/p.$F4_v1.exr", f"{folder}/vom/a$1.####.exr",
                                                  show / "cache")
    assert shot.keyframes == {1: show / "r.0001.exr"}
    again = Shot(**shot.to_dict())
    assert (again.plate, again.out, again.cache, again.keyframes) == (shot.plate, shot.out, shot.cache,
                                                                      shot.keyframes)
    monkeypatch.delenv("QA_SHOW")
    with pytest.raises(InputError, match=r"s\.yaml': plate '\$\{QA_SHOW\}/\$QA_SEQ/p\.\$F4_v1\.exr': \$QA_SHOW is "
                                         r"not set in the environment \(a \$ of the path itself is written \$\$\)"):
        Shot.from_yaml(f)
    assert not any(p.name.startswith("$") for p in tmp_path.rglob("*"))


def test_from_yamls_text_overrides_expand_environment_variables_as_the_flags_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A QA pass: ``Shot.from_yaml(f, out='$SHOW/o/a.####.exr')`` gave ``<cwd>/$SHOW/o/a.####.exr`` (a render then
    made a folder named ``$SHOW``), where ``vom render f --out '$SHOW/...'`` writes under $SHOW. Text overrides are
    read as the flags are; a ``Path`` built in Python is a path as it is, its ``$`` its own."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    show = tmp_path / "show$b"  # a $ in a variable's value is the path's own
    monkeypatch.setenv("QA_SHOW", str(show))
    monkeypatch.delenv("QA_UNSET", raising=False)
    monkeypatch.delenv("b", raising=False)
    f = tmp_path / "s.yaml"
    f.write_text("plate: p.####.exr\nkeyframes: {1: r.0001.exr}\nout: o/a.####.exr\n")
    shot = Shot.from_yaml(f, plate="$QA_SHOW/p.$F4.exr", out="${QA_SHOW}/o/a.####.exr", cache="$QA_SHOW/c",
                          model="$QA_SHOW/m.safetensors", keyframes={1: "$QA_SHOW/r.0001.exr"})
    assert (shot.plate, shot.out, shot.cache, shot.model) == (f"{show}/p.$F4.exr", f"{show}/o/a.####.exr",
                                                              show / "c", f"{show}/m.safetensors")
    assert shot.keyframes == {1: show / "r.0001.exr"}
    assert Shot.from_yaml(f, keyframes=["$QA_SHOW/r.0001.exr@7"]).keyframes == {7: show / "r.0001.exr"}
    assert Shot.from_yaml(f, objects={"hero": "$QA_SHOW/h.0003.exr"}, out="o2/a.####.exr").objects == {
        "hero": {3: show / "h.0003.exr"}}
    assert Shot.from_yaml(f, objects={"hero": {3: "$QA_SHOW/h.exr"}}, out="o2/a.####.exr").objects == {
        "hero": {3: show / "h.exr"}}
    assert Shot.from_yaml(f, out="o$$1/a.####.exr").out == str(work / "o$1" / "a.####.exr")  # $$: a $ of the path
    literal = tmp_path / "lit$QA_SHOW"  # a Path: as built
    shot = Shot.from_yaml(f, out=literal / "a.####.exr", keyframes={1: literal / "r.0001.exr"}, cache=literal)
    assert (shot.out, shot.keyframes, shot.cache) == (str(literal / "a.####.exr"), {1: literal / "r.0001.exr"},
                                                      literal)
    for field, value, said in (
            ("out", "$QA_UNSET/o/a.####.exr", "out '$QA_UNSET/o/a.####.exr': "),
            ("cache", "$QA_UNSET/c", "cache '$QA_UNSET/c': "),
            ("keyframes", {1: "$QA_UNSET/r.0001.exr"}, "keyframes[1] '$QA_UNSET/r.0001.exr': ")):
        with pytest.raises(InputError) as e:
            Shot.from_yaml(f, **{field: value})
        assert str(e.value).startswith(said) and "$QA_UNSET is not set in the environment" in str(e.value), e.value
    assert list(work.iterdir()) == []


def test_a_shot_file_with_path_flags_reads_each_flag_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flags are read before ``Shot.from_yaml``, which reads text overrides as flags: passed on as final paths,
    ``--out 'o$$QA_SEQ/...'`` is ``o$QA_SEQ`` (not a second expansion's ``osq01``), nor is a variable's value read
    again."""
    import argparse

    from vom_plugin.commands.render import add_arguments, shot_from_args

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QA_SHOW", str(tmp_path / "show$QA_SEQ"))
    monkeypatch.setenv("QA_SEQ", "sq01")
    f = tmp_path / "s.yaml"
    f.write_text("plate: p.####.exr\nkeyframes: {1: r.0001.exr}\nout: o/a.####.exr\n")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    got = shot_from_args(parser.parse_args([str(f), "--out", "o$$QA_SEQ/a.####.exr", "--cache", "$QA_SHOW/c",
                                            "--roto", "r$$QA_SEQ/r.0001.exr", "--model", "m$$QA_SEQ.safetensors"]))
    assert (got.out, got.cache) == (str(tmp_path / "o$QA_SEQ" / "a.####.exr"), tmp_path / "show$QA_SEQ" / "c")
    assert got.keyframes == {1: tmp_path / "r$QA_SEQ" / "r.0001.exr"}
    assert got.model == str(tmp_path / "m$QA_SEQ.safetensors")


@pytest.mark.parametrize("out, said", [
    ("${QA_SHOW/vom/a.####.exr", r"out '\$\{QA_SHOW/vom/a\.####\.exr': the \$\{ at '\$\{QA_SHOW/vo' closes no "
                                 r"variable \(write \$\{NAME\}; a \$ of the path itself is written \$\$\)"),
    ("$QA_EMPTY/vom/a.####.exr", r"out '\$QA_EMPTY/vom/a\.####\.exr': \$QA_EMPTY is set but empty in the "
                                 r"environment: the path would lose its root"),
    ("~qa_no_such_user_48/vom/a.####.exr", r"s\.yaml': out '~qa_no_such_user_48/vom/a\.####\.exr': "
                                           r"~qa_no_such_user_48 is no "
                                           r"user's home folder on this machine \(a folder of that name is written "
                                           r"\./~qa_no_such_user_48\)"),
])
def test_a_path_that_would_land_elsewhere_than_it_says_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  out: str, said: str) -> None:
    """A QA pass: ``${SHOW/vom`` (its brace missing) made a folder ``${SHOW``; an empty ``$ROOT`` turned
    ``$ROOT/tmp/...`` into a path from ``/`` (a farm node's ``export ROOT=`` writing into ``/vom``); ``~nosuchuser``
    made a folder of that name beside the shot file. Each is refused, naming the field, before anything is made."""
    monkeypatch.setenv("QA_SHOW", str(tmp_path))
    monkeypatch.setenv("QA_EMPTY", "")
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({"plate": str(tmp_path / "p.####.exr"), "keyframes": {1: str(tmp_path / "r.exr")},
                                 "out": out}))
    with pytest.raises(InputError, match=said):
        Shot.from_yaml(f)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_a_dollar_of_a_share_and_an_empty_suffix_are_paths_as_written(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The review of the refusals above: a Windows admin or hidden share's ``$`` (``//nas/projects$/...``) starts no
    name and is the path's own, and an empty variable inside a name (an optional ``${VARIANT}``) loses no root."""
    monkeypatch.setenv("QA_VARIANT", "")
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({"plate": "//nas/projects$/sh/p${QA_VARIANT}.####.exr",
                                 "keyframes": {1: str(tmp_path / "r.exr")}, "out": "o$/a.####.exr"}))
    shot = Shot.from_yaml(f)
    assert shot.plate == "//nas/projects$/sh/p.####.exr" and shot.out == str(tmp_path / "o$" / "a.####.exr")


def test_a_host_shot_file_keeps_a_dollar_in_its_paths(tmp_path: Path) -> None:
    from vom_plugin.host.blender_addon import common

    roto = tmp_path / "r$HOME" / "roto.0001.exr"
    text = common.shot_yaml({"plate": str(tmp_path / "p$USER.####.exr"), "keyframes": {1: str(roto)},
                             "out": str(tmp_path / "o$F" / "a.####.exr"), "working_size": 256}, "test")
    (tmp_path / "s.yaml").write_text(text)
    shot = Shot.from_yaml(tmp_path / "s.yaml")
    assert shot.plate == str(tmp_path / "p$USER.####.exr") and shot.keyframes == {1: roto}
    assert shot.out == str(tmp_path / "o$F" / "a.####.exr")


def test_a_path_beyond_the_bmp_reads_back_from_a_host_or_json_written_shot_file(tmp_path: Path) -> None:
    """QA: a plate folder named with an emoji, in a shot file a Nuke or Blender node wrote (JSON's surrogate pair,
    "\\ud83c\\udfac"), was read as two lone surrogates: an internal error, exit 1. The host writes YAML's \\U
    escape, and a pair (any JSON writer's) reads as the character; a lone surrogate is refused naming the field."""
    from vom_plugin.host.blender_addon import common

    folder = tmp_path / "\U0001F3AC sh010"
    text = common.shot_yaml({"plate": str(folder / "p.####.exr"), "keyframes": {1: str(folder / "r.0001.exr")},
                             "out": str(folder / "o" / "a.####.exr")}, "test")
    assert text.isascii() and "\\U0001f3ac" in text
    (tmp_path / "s.yaml").write_text(text)
    assert Shot.from_yaml(tmp_path / "s.yaml").plate == str(folder / "p.####.exr")
    # and the host reads its own shot file's Output back (its work folder is found by it: review)
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "shot.yaml").write_text(text)
    assert common._folder_output(tmp_path / "work") == str(folder / "o" / "a.####.exr")
    rest = f'out: "{tmp_path}/o.####.exr"\nkeyframes: {{1: "{tmp_path}/r.0001.exr"}}\n'
    (tmp_path / "j.yaml").write_text(f'plate: "{tmp_path}/\\ud83c\\udfac sh010/p.####.exr"\n{rest}')
    assert Shot.from_yaml(tmp_path / "j.yaml").plate == str(folder / "p.####.exr")
    (tmp_path / "lone.yaml").write_text(f'plate: "{tmp_path}/\\ud83c sh010/p.####.exr"\n{rest}')
    with pytest.raises(InputError, match=r"plate .*\\ud83c sh010/p\.####\.exr: the path is not UTF-8 text"):
        Shot.from_yaml(tmp_path / "lone.yaml")


def test_to_yaml_gives_a_shot_file_that_reads_back_as_the_same_shot(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A QA pass: to_dict() dumped to a shot file read a folder named v$ER back as v + $ER (another plate, another
    output folder when ER was set; refused when not). to_yaml escapes the paths' own $."""
    folder = tmp_path / "v$ER"
    monkeypatch.setenv("ER", "_other")
    shots = [
        Shot(plate=str(folder / "plate.####.exr"), out=str(folder / "out" / "a.####.exr"),
             keyframes={1001: str(folder / "roto.1001.exr")}, frames=[1001, 1002, 1003, 1007],
             cache=str(folder / "cache"), model=str(folder / "w.safetensors"), working_size=480),
        Shot(plate=str(folder / "p.####.exr"), out=str(folder / "{object}.####.exr"), frames=None,
             objects={"hero": {1: str(folder / "h.exr")}, "on": {2: str(folder / "o.exr")}}),
    ]
    for i, shot in enumerate(shots):
        text = shot.to_yaml()
        assert "$$ER" in text and "_other" not in text
        path = tmp_path / "elsewhere" / f"shot{i}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        back = Shot.from_yaml(path)
        assert back == shot and back.to_dict() == shot.to_dict()
    assert "working_size: 480" in shots[0].to_yaml() and "working_size" not in shots[1].to_yaml()  # defaults left out
    # but the plate's colour space, what its files hold: an archived shot file means the same under another default
    assert "colorspace: ACEScg" in shots[1].to_yaml()
    assert "frames: 1001-1003,1007" in shots[0].to_yaml()


@pytest.mark.parametrize("field", ["plate", "out", "keyframes", "model"])
def test_a_path_that_is_not_utf8_is_refused_by_field_before_any_work(field: str, tmp_path: Path) -> None:
    """A folder named in Latin-1 on a UTF-8 system: OpenImageIO failed with a TypeError (exit 1), for an output
    only once the frames were computed."""
    import os
    import subprocess
    import sys

    bad = os.fsdecode(bytes(tmp_path) + b"/lat\xe9in")
    paths = {"plate": f"{bad}/plate.####.exr", "out": f"{bad}/alpha.####.exr",
             "keyframes": {1001: f"{bad}/roto.1001.exr"}, "model": f"{bad}/lite.safetensors"}
    with pytest.raises(InputError, match=rf"^{field}(\[1001\])? .*lat\\xe9in.*: the path is not UTF-8 text"):
        Shot(**{**BASE, field: paths[field]})
    if field == "out":  # on the command line: exit 2, the message naming the field, nothing made
        done = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "render", "--plate", "/p/plate.####.exr",
                               "--roto", "/p/roto.1001.exr", "--out", paths["out"], "--no-worker"],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and "out " in done.stderr and "not UTF-8" in done.stderr, done.stderr
        assert list(tmp_path.iterdir()) == []


def test_an_empty_cache_means_the_user_cache_as_the_knobs_help_says(tmp_path: Path) -> None:
    """node_defs: "Empty means the user cache"; `cache: ""` and `--cache ""` (a wrapper's empty $SHOW_CACHE) were
    refused."""
    assert load_node_def().knob("cache").help.startswith("Folder of the persistent per-shot cache. Empty means")
    for empty in ("", "  "):
        assert Shot(**BASE, cache=empty).cache is None
    f = tmp_path / "shot.yaml"
    f.write_text('plate: p.####.exr\nkeyframes: {1: r.0001.exr}\nout: a.####.exr\ncache: ""\n')
    assert Shot.from_yaml(f).cache is None


def test_the_readmes_api_type_checks_and_the_package_says_it_is_typed(tmp_path: Path) -> None:
    """A QA pass: a pipeline TD's type checker flagged the README's own `frames=range(...)` and str roto paths (the
    fields' types are what a Shot holds once checked, not what it takes), and found no types at all (no py.typed,
    and the names came from a lazy __getattr__). A wrong type is still flagged."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    assert (repo / "vom_plugin" / "py.typed").is_file()
    mypy = Path(sys.executable).parent / "mypy"
    if not mypy.exists():
        pytest.skip("mypy (the dev extra) is not installed")
    (tmp_path / "user.py").write_text(
        "from pathlib import Path\n"
        "from vom_plugin import Shot, Stop, render\n"
        "s = Shot(plate='p.####.exr', out='o/a.####.exr', keyframes={1001: 'roto.1001.exr'},\n"
        "         frames=range(1001, 1101))\n"
        "s2 = Shot(plate=Path('p.####.exr'), out='o/{object}.####.exr', objects={'hero': {1001: 'h.1001.exr'}},\n"
        "          frames='1001-1100', cache=Path('/tmp/c'), working_size=480)\n"
        "s3 = Shot(plate='p.####.exr', out='o/a.####.exr', keyframes=['roto.1001.exr'])\n"
        "frames: list[int] = render(s, stop=Stop()).frames\n"
        "text: str = s.to_yaml()\n"
        "wrong = Shot(plate='p', out='o', keyframes=['r.1.exr'], working_size='480')\n"
        "from vom_plugin import CancelledError, InputError\n"  # QA: a TD's typed code had to getattr() what was on disk
        "try:\n    files: list[Path] = render(s).files\n"
        "except CancelledError as e:\n    files = e.render_result.paths + e.render_result.files\n"
        # empty before the render began (a Stop already set): declared as always there, it was absent then (QA)
        "except InputError as e:\n    files = e.render_result.paths\n")
    env = {**os.environ, "MYPYPATH": str(repo), "MYPY_CACHE_DIR": str(repo / ".mypy_cache")}
    r = subprocess.run([str(mypy), "--python-version", "3.11", "--follow-imports=silent", "user.py"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300, env=env)
    errors = [line for line in r.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and 'user.py:10: error: Argument "working_size" to "Shot"' in errors[0], r.stdout


def test_what_only_the_first_write_refused_is_refused_by_the_shot(tmp_path: Path) -> None:
    """A Shot (and so a shot file, a farm job) accepted an output that is not an EXR, rgba-premult with the objects in
    one file, and a channel name longer than an EXR holds: the first refused at the first write after the compute,
    the farm made a job whose every task exited 2, and the last wrote a cut name, exit 0 (QA)."""
    with pytest.raises(InputError, match=r"out '/o/alpha\.####\.png': expected an \.exr file pattern"):
        Shot(**{**BASE, "out": "/o/alpha.####.png"})
    objects = {"keyframes": None, "objects": {"hero": {1001: "/p/h.1001.exr"}, "dog": {1001: "/p/d.1001.exr"}}}
    with pytest.raises(InputError, match=r"output rgba-premult: the objects share one file"):
        Shot(**{**BASE, **objects, "output": "rgba-premult"})
    Shot(**{**BASE, **objects, "output": "rgba-premult", "out": "/o/{object}.####.exr"})  # a sequence each: fine
    with pytest.raises(InputError, match=r"is 257 bytes long, more than the 255 an EXR channel name holds"):
        Shot(**{**BASE, "channel": "a" * 255 + ".A"})
    with pytest.raises(InputError, match=r"more than the 255 an EXR channel name holds"):  # with an object's name
        Shot(**{**BASE, **objects, "channel": "a" * 249 + ".A"})  # a....hero.A: 256 bytes
    Shot(**{**BASE, "channel": "a" * 253 + ".A"})  # 255 bytes: written whole
    # a farm job of such a shot is refused when it is made
    from vom_plugin.cli import main

    f = tmp_path / "png.yaml"
    f.write_text(yaml.safe_dump({**BASE, "out": str(tmp_path / "a.####.png")}))
    assert main(["farm", "openjd", str(f), "--out", str(tmp_path / "job")]) == 2
    assert not (tmp_path / "job").exists()


def test_a_blank_cache_is_the_user_cache_on_every_surface(tmp_path: Path) -> None:
    """cache: "  " was the user cache from Python, a folder named two spaces beside a shot file, and one in the
    working folder from --cache (QA)."""
    import argparse

    from vom_plugin.commands.render import add_arguments, shot_from_args

    assert Shot(**{**BASE, "cache": "  "}).cache is None
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({**BASE, "cache": "  "}))
    assert Shot.from_yaml(f).cache is None
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--plate", BASE["plate"], "--roto", "/p/roto.1001.exr", "--out", BASE["out"],
                              "--cache", "  "])
    assert shot_from_args(args).cache is None


def test_a_brace_token_in_out_other_than_object_is_refused(tmp_path: Path) -> None:
    """A QA pass: ``{obj}`` (a misspelt ``{object}``) or a pipeline's template left unfilled (``{shot}``) was written
    as a file of that literal name, one for every object. ``${VAR}`` is an environment variable's (a Shot's path
    holds it as its own once the shot file expanded it)."""
    base = {"plate": str(tmp_path / "p.####.exr"), "keyframes": {1: str(tmp_path / "r.exr")}}
    for out, token in (("{obj}/a.####.exr", "{obj}"), ("x/{Object}.####.exr", "{Object}"),
                       ("{shot}/v1/a.####.exr", "{shot}"), ("{{ object }}/x.####.exr", "{{ object }}"),
                       ("m_{ object }.####.exr", "{ object }"), ("{{ shot }}/a.####.exr", "{{ shot }}"),
                       ("{shot.name}/a.####.exr", "{shot.name}"), ("d_{{object}}.####.exr", "{{object}}")):
        with pytest.raises(InputError, match=re.escape(f"{token} is no token of vom's, which expands {{object}}")):
            Shot(**base, out=str(tmp_path / out))
    for out in ("${SHOW}/a.####.exr", "a{}.####.exr", "a{1}.####.exr", "{D3E34B21-4C1A-4F8B}/a.####.exr"):
        assert Shot(**base, out=str(tmp_path / out)).out == str(tmp_path / out)
    # a folder of that name that exists is a real folder (a review: a show's {v1} folder was refused)
    (tmp_path / "{v1}").mkdir()
    assert Shot(**base, out=str(tmp_path / "{v1}" / "a.####.exr")).out == str(tmp_path / "{v1}" / "a.####.exr")
    with pytest.raises(InputError, match=re.escape("{v1} is no token of vom's")):
        Shot(**base, out=str(tmp_path / "{v1}" / "{v1}.####.exr"))  # the file's own name is no folder
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({**base, "out": "{obj}.####.exr"}))
    with pytest.raises(InputError, match=r"s\.yaml'.*\{obj\} is no token"):
        Shot.from_yaml(f)


def test_what_the_type_hints_promise_a_td_is_taken(tmp_path: Path) -> None:
    """A QA pass as a pipeline TD: ``model=Path(...)`` was refused ("expected a non-empty string") though the hint
    says a path; ``frames`` as a set, generator, dict view or fileseq FrameSet (``Iterable[int]``) was refused; a
    keyframe key numpy gave (``np.int64``) was "not a frame number"; ``keyframes="roto.1001.exr"`` was refused
    while ``objects`` took one path; a NUL in a path passed the Shot and raised a bare ValueError in the render."""
    import fileseq
    import numpy as np

    roto = {1001: "/r/roto.1001.exr"}
    assert Shot(**{**BASE, "keyframes": roto, "model": tmp_path / "w.safetensors"}).model == \
        str(tmp_path / "w.safetensors")
    shot_file = tmp_path / "s.yaml"
    shot_file.write_text(yaml.safe_dump({"plate": "p.####.exr", "out": "o/a.####.exr", "keyframes": roto}))
    assert Shot.from_yaml(shot_file, model=Path("w.safetensors")).model == str(Path.cwd() / "w.safetensors")
    for frames, listed in (({1003, 1001}, [1001, 1003]), ((f for f in (1002, 1001)), [1001, 1002]),
                           ({1001: 0, 1004: 0}.keys(), [1001, 1004]),
                           (fileseq.FrameSet("1001-1005x2"), [1001, 1003, 1005]),
                           (np.array([1002, 1001]), [1001, 1002]), (np.int64(1001), [1001])):
        assert Shot(**{**BASE, "keyframes": roto, "frames": frames}).frames == listed
    for frames in ({"a": 1}, np.zeros((2, 2), int), 1001.5, ["1001"], iter(range(10 ** 9))):
        with pytest.raises(InputError, match=r"^frames"):
            Shot(**{**BASE, "keyframes": roto, "frames": frames})
    assert Shot(**{**BASE, "keyframes": {np.int64(1001): "/r/roto.1001.exr"}}).keyframes == {
        1001: Path("/r/roto.1001.exr")}
    for one in ("/r/roto.1001.exr", Path("/r/roto.1001.exr"), "/r/roto.exr@1001"):
        assert Shot(**{**BASE, "keyframes": one}).keyframes == {1001: Path(str(one).split("@")[0])}
    for field, value in (("out", "/o/a\0b.####.exr"), ("plate", "/p/p\0.####.exr"), ("cache", "/c\0"),
                         ("keyframes", {1001: "/r/r\0.exr"}), ("model", "/m/w\0.safetensors")):
        with pytest.raises(InputError, match=rf"^{field}(\[1001\])? '.*<NUL>.*': the path holds a NUL"):
            Shot(**{**BASE, "keyframes": roto, field: value})


def test_numpy_integers_are_whole_numbers(tmp_path: Path) -> None:
    """QA: a TD's numpy int was refused as "working_size np.int64(256): expected a whole number from 128 to 4096";
    frames and keyframes took them already. Stored as Python ints; numpy's bool is still no number."""
    import numpy as np

    base = {"plate": str(tmp_path / "p.####.exr"), "out": str(tmp_path / "o.####.exr"),
            "keyframes": {1: str(tmp_path / "r.exr")}}
    s = Shot(**base, working_size=np.int64(256), top_k=np.int32(20))
    assert (s.working_size, s.top_k) == (256, 20) and type(s.working_size) is int and type(s.top_k) is int
    with pytest.raises(InputError, match=r"working_size np\.True_: expected a whole number from 128 to 4096"):
        Shot(**base, working_size=np.bool_(True))
    with pytest.raises(InputError, match=r"top_k 9000: out of range"):
        Shot(**base, top_k=np.uint16(9000))
    # whole numbers as text (a host's knob read as a string, a quoted YAML value), as keyframe keys are taken: QA, it
    # was "working_size '480': expected a whole number from 128 to 4096", which read as a range error
    s = Shot(**base, working_size="480", top_k=" 20 ")
    assert (s.working_size, s.top_k) == (480, 20) and type(s.working_size) is int
    with pytest.raises(InputError, match=r"working_size 100: out of range"):
        Shot(**base, working_size="100")
    with pytest.raises(InputError, match=r"working_size '480.5': expected a whole number from 128 to 4096"):
        Shot(**base, working_size="480.5")
    with pytest.raises(InputError, match=r"working_size '9999\d*': expected a whole number"):
        Shot(**base, working_size="9" * 5000)  # beyond what int() reads (review: a ValueError traceback)


def test_a_shot_files_path_is_normalised_as_its_fields_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: Shot.from_yaml("a/../demo/shot.yaml").source_file kept the "a/.." every path field had lost."""
    (tmp_path / "a").mkdir()
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "shot.yaml").write_text(yaml.safe_dump(
        {"plate": "p.####.exr", "out": "o/a.####.exr", "keyframes": {1: "r.exr"}}))
    monkeypatch.chdir(tmp_path)
    shot = Shot.from_yaml("a/../demo/shot.yaml")
    assert shot.source_file == (tmp_path / "demo" / "shot.yaml").resolve() and ".." not in str(shot.source_file)
    # through a link: the file read, as its fields are resolved (review: a path that did not exist)
    (tmp_path / "link").symlink_to(tmp_path / "demo")
    linked = Shot.from_yaml("link/shot.yaml")
    assert linked.source_file.is_file() and linked.source_file == shot.source_file
    assert shot.plate == str(tmp_path / "demo" / "p.####.exr")


def test_a_nul_in_the_files_out_with_an_out_given_is_no_traceback(tmp_path: Path) -> None:
    """Review: the comparison of the two outs crashed on a NUL in the file's (exit 1, a traceback)."""
    f = tmp_path / "nul.yaml"
    f.write_text('plate: p.####.exr\nkeyframes: {1: r.exr}\nout: "vom/a\\0.####.exr"\n')
    shot = Shot.from_yaml(f, out=str(tmp_path / "b.####.exr"))  # the render's own out replaces the file's
    assert shot.out == str(tmp_path / "b.####.exr")
    with pytest.raises(InputError, match="NUL"):
        Shot.from_yaml(f)


@pytest.mark.parametrize("blank", ["", " "])
def test_a_blank_frame_range_is_the_plates_through_the_api_as_in_a_shot_file(blank: str) -> None:
    """``Shot(frames='')`` raised "frame range is empty" where ``frames: ""`` in a shot file, ``--frames=`` and a
    host's cleared knob all mean the plate's range (QA: a TD's ``frames=os.environ.get("FRAMES", "")``)."""
    assert Shot(**{**BASE, "frames": blank}).frames is None
    assert Shot.from_dict({**BASE, "frames": blank}).frames is None


def test_blank_rotos_are_none_given(tmp_path: Path) -> None:
    """QA: ``objects: ''`` beside keyframes was "keyframes and objects are both given", and ``keyframes: ''`` was read
    as a roto at the shot file's folder ("no frame number in the file name ... /shots@1001"); blank is none given, as
    for every other field."""
    f = tmp_path / "s.yaml"
    for extra in ("objects: ''\n", "objects: '  '\n"):
        f.write_text(f"plate: p.####.exr\nout: o.####.exr\nkeyframes: {{1: r.0001.exr}}\n{extra}")
        assert Shot.from_yaml(f).objects is None and Shot.from_yaml(f).keyframes == {1: tmp_path / "r.0001.exr"}
    f.write_text("plate: p.####.exr\nout: o.####.exr\nkeyframes: ''\n")
    with pytest.raises(InputError, match=r"missing required field\(s\) keyframes$"):
        Shot.from_yaml(f)
    f.write_text("plate: p.####.exr\nout: o.####.exr\nkeyframes: ' '\nobjects: {hero: r.0001.exr}\n")
    assert list(Shot.from_yaml(f).objects) == ["hero"]
    assert Shot(**{**BASE, "objects": ""}).objects is None
    # an empty mapping or list, as a template writes them, is none given too (QA: "both given")
    for empty in ({}, []):
        assert Shot(**{**BASE, "objects": empty}).objects is None
        assert list(Shot(plate=BASE["plate"], out=BASE["out"], keyframes=empty,
                         objects={"hero": "r.0001.exr"}).objects) == ["hero"]
    # a blank entry is said as blank (QA: it was read as the shot file's folder)
    for body in ("keyframes: {1: ''}\n", "keyframes: ['', r.0001.exr]\n", "objects: {hero: {1: ''}}\n"):
        f.write_text(f"plate: p.####.exr\nout: o.####.exr\n{body}")
        with pytest.raises(InputError, match=r"(keyframes\[1\] ''|keyframes entry ''): expected") as e:
            Shot.from_yaml(f)
        assert str(tmp_path) + "'" not in str(e.value), e.value
    with pytest.raises(InputError, match="keyframes: missing"):
        Shot(plate=BASE["plate"], out=BASE["out"], keyframes=" ")


def test_object_name_refusals_say_the_rule_in_full() -> None:
    """A 65-character name was "not a layer name; expected a letter or _ ..." with no word of the 64 it passed, and
    ``objects={}`` was "expected a mapping", which it is (QA)."""
    with pytest.raises(InputError, match=r"object name 'a{65}' is not a layer name; .* 64 at most"):
        Shot(**{**BASE, "keyframes": None, "objects": {"a" * 65: {1001: "/p/r.1001.exr"}}})
    Shot(**{**BASE, "keyframes": None, "objects": {"a" * 64: {1001: "/p/r.1001.exr"}}})
    with pytest.raises(InputError, match=r"^objects \{\}: no object in it; expected a mapping"):
        Shot(**{**BASE, "keyframes": None, "objects": {}})


def test_a_field_set_after_the_shot_was_made_is_read_by_to_yaml_and_eq_as_render_reads_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: README's own `shot.frames = "1-2"` renders, but to_yaml() crashed on it (TypeError), wrote a relative `out`
    set afterwards as relative (read back against the shot file's folder: another output), and == said the Shot
    differed from Shot(frames="1-2")."""
    monkeypatch.chdir(tmp_path)
    shot = Shot(plate="p.####.exr", out="o/a.####.exr", keyframes={1: "r.0001.exr"})
    shot.frames = "2-3"  # type: ignore[assignment]  # as README shows it
    shot.out = "o2/b.####.exr"
    shot.keyframes[4] = "r.0004.exr"  # type: ignore[assignment]
    made = Shot(plate="p.####.exr", out="o2/b.####.exr", keyframes={1: "r.0001.exr", 4: "r.0004.exr"}, frames="2-3")
    assert shot == made and made == shot
    assert shot != Shot(plate="p.####.exr", out="o2/b.####.exr", keyframes={1: "r.0001.exr"}, frames="2-3")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "shot.yaml").write_text(shot.to_yaml())
    back = Shot.from_yaml(tmp_path / "sub" / "shot.yaml")
    assert back == made
    assert back.out == str(tmp_path / "o2" / "b.####.exr") and back.frames == [2, 3]
    assert back.keyframes == {1: tmp_path / "r.0001.exr", 4: tmp_path / "r.0004.exr"}
    assert shot.to_dict()["frames"] == [2, 3]
    checked = shot.checked()
    assert checked.frames == [2, 3] and shot.frames == "2-3"  # the Shot itself is left as the caller set it
    shot.memory = "bogus"
    with pytest.raises(InputError, match="memory 'bogus'"):
        shot.to_yaml()  # as render refuses it, before any work
    assert shot != made and shot == shot  # a refused value compares as it stands
    with pytest.raises(TypeError, match="unhashable"):
        hash(shot)


def test_a_relative_path_set_afterwards_is_the_working_folders_when_it_is_set(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a relative out (or plate, roto, cache, model) set after Shot(...) was read against the working folder at
    render time: a host that changed folder in between wrote the mattes elsewhere, and == of two Shots changed with
    the working folder. It is the folder's when it is set, as Shot(...) reads one."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    made = Shot(plate="p.####.exr", out="out/m.####.exr", keyframes={1: "r.0001.exr"}, cache="c")
    later = Shot(plate="/x/p.####.exr", out="/x/m.####.exr", keyframes={1: "/x/r.0001.exr"})
    later.plate, later.out, later.cache = "p.####.exr", Path("out/m.####.exr"), "c"  # type: ignore[assignment]
    later.keyframes = {1: "r.0001.exr"}  # type: ignore[assignment]
    later.model = "w/m.safetensors"
    assert later.out == str(tmp_path / "a" / "out" / "m.####.exr") and later.model == str(tmp_path / "a" / "w" /
                                                                                          "m.safetensors")
    monkeypatch.chdir(tmp_path / "b")
    later.model = "default"  # a name, not a path
    assert later == made
    checked = later.checked()
    assert checked.out == str(tmp_path / "a" / "out" / "m.####.exr") and checked.cache == tmp_path / "a" / "c"
    assert checked.keyframes == {1: tmp_path / "a" / "r.0001.exr"}
    assert checked.plate == str(tmp_path / "a" / "p.####.exr") and checked.model == "default"
    # as Paths too, the type the fields hold (review: a relative Path roto was left to the render's folder)
    monkeypatch.chdir(tmp_path / "a")
    later.keyframes = {1: Path("r.0001.exr")}  # type: ignore[assignment]
    later.objects = None
    later.cache = Path("c")  # type: ignore[assignment]
    monkeypatch.chdir(tmp_path / "b")
    assert later == made and later.checked().keyframes == {1: tmp_path / "a" / "r.0001.exr"}
    hero = Shot(plate="/x/p.####.exr", out="/x/{object}.####.exr", objects={"hero": {1: "/x/h.exr"}})
    hero.objects = {"hero": Path("h.0001.exr")}  # type: ignore[assignment]
    assert hero.checked().objects == {"hero": {1: tmp_path / "b" / "h.0001.exr"}}
    # a working folder that is gone: an absolute path is set as ever, a relative one refused naming the field
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    later.out = "/y/o.####.exr"
    later.cache = None
    with pytest.raises(InputError, match=r"^out: a relative path, and the working folder it would be read in no "):
        later.out = "o.####.exr"
    # and Shot(...) itself (second review: a bare FileNotFoundError from its own absolute paths' check)
    Shot(plate="/x/p.####.exr", out="/x/o.####.exr", keyframes={1: "/x/r.exr"}, cache="/x/c")
    with pytest.raises(InputError, match=r"^plate: a relative path, and the working folder"):
        Shot(plate="p.####.exr", out="/x/o.####.exr", keyframes={1: "/x/r.exr"})
    with pytest.raises(InputError, match=r"^keyframes\[1\]: a relative path, and the working folder"):
        Shot(plate="/x/p.####.exr", out="/x/o.####.exr", keyframes={1: "r.exr"})


def test_a_fileseq_sequence_is_taken_as_a_pattern(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a pipeline's fileseq.FileSequence (fileseq is one of vom's dependencies) was refused as plate: it is read
    as its pattern (the padding as # per digit), its own frame range not the shot's."""
    import fileseq

    monkeypatch.chdir(tmp_path)
    shot = Shot(plate=fileseq.FileSequence(str(tmp_path / "a b" / "plate.1001-1010#.exr")),
                out=fileseq.FileSequence("out/m.1-5@@@.exr"), keyframes={1001: "r.exr"})
    assert shot.plate == str(tmp_path / "a b" / "plate.####.exr") and shot.out == str(tmp_path / "out" / "m.###.exr")
    assert shot.frames is None
    shot.plate = fileseq.FileSequence("p2.%05d.exr")
    assert shot.plate == str(tmp_path / "p2.#####.exr")

    class StudioSequence(fileseq.FileSequence):  # a pipeline's own subclass, defined outside fileseq
        pass
    shot.plate = StudioSequence("p3.1-9#.exr")
    assert shot.plate == str(tmp_path / "p3.####.exr")
    with pytest.raises(InputError, match=r"plate '.*one\.exr': a fileseq sequence without frame padding"):
        Shot(plate=fileseq.FileSequence(str(tmp_path / "one.exr")), out="o.####.exr", keyframes={1: "r.exr"})
    # relative, from a mapping with a base folder: that folder's, as a text path is (review: the working folder's)
    got = Shot.from_dict({"plate": fileseq.FileSequence("plates/p.1001-1010#.exr"), "out": "o.####.exr",
                          "keyframes": {1001: "r.exr"}}, base_dir=tmp_path / "sh010")
    assert got.plate == str(tmp_path / "sh010" / "plates" / "p.####.exr") and got.out == str(tmp_path / "sh010" /
                                                                                              "o.####.exr")


def test_a_stereo_view_token_is_refused_as_the_nuke_node_refuses_it() -> None:
    """QA: --plate 'plate_%V.####.exr' found no files without a word of views, and --out 'alpha_%V.####.exr' wrote
    files named alpha_%V.0001.exr, which a Read of that path (left, right) shows black; the Nuke node refused both."""
    with pytest.raises(InputError, match=r"plate '.*plate_%V\.####\.exr': %V is a stereo view token \(Nuke's\), which "
                                         r"vom does not fill in: it mattes one sequence; name one eye's, e\.g\. "
                                         r"'.*plate_left\.####\.exr'"):
        Shot(**{**BASE, "plate": "/show/plate_%V.####.exr"})
    with pytest.raises(InputError, match=r"out '.*a_%v\.####\.exr': %v is a stereo view token .* it writes one "
                                         r"sequence; name one eye's, e\.g\. '.*a_l\.####\.exr'"):
        Shot(**{**BASE, "out": "/show/a_%v.####.exr"})
