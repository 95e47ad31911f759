"""Frame ranges and sequence patterns (vom_plugin.io.sequence)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vom_plugin.errors import InputError
from vom_plugin.io import (
    PlateSequence,
    format_frames,
    frame_from_path,
    frame_path,
    open_sequence,
    parse_frame_range,
)


@pytest.mark.parametrize(
    "text, frames",
    [
        ("1001-1005", [1001, 1002, 1003, 1004, 1005]),
        ("1001-1009x2", [1001, 1003, 1005, 1007, 1009]),
        ("1001,1005,1010-1012", [1001, 1005, 1010, 1011, 1012]),
        ("1010-1012, 1001", [1001, 1010, 1011, 1012]),
        ("7", [7]),
        ("-3--1", [-3, -2, -1]),
        # Open Job Description's step (a farm chunk of a span on twos), not fileseq's stagger of every frame
        ("1001-1005:2", [1001, 1003, 1005]),
        ("1001-1005:2,1009", [1001, 1003, 1005, 1009]),
        ("-5--1:2", [-5, -3, -1]),
        # spaces separate parts, as Nuke writes several ranges (deleting them read "1 2" as 12, "1-4 6" as 1-46)
        ("1 2", [1, 2]),
        ("1-4 6", [1, 2, 3, 4, 6]),
        ("1001-1002  1005-1006", [1001, 1002, 1005, 1006]),
        # ... and go inside a part
        ("1001 - 1003", [1001, 1002, 1003]),
        ("1-7 x 3 , 9", [1, 4, 7, 9]),
        ("-3 - -1", [-3, -2, -1]),
        # a dash with a space before it and none after starts a negative frame
        ("-10 -5", [-10, -5]),
        ("1-4 -6", [-6, 1, 2, 3, 4]),
    ],
)
def test_parse_frame_range(text, frames):
    assert parse_frame_range(text) == frames


@pytest.mark.parametrize("text", ["", "abc", "1001-", "1-5x0", "1.5-3"])
def test_parse_frame_range_rejects_bad_text(text):
    with pytest.raises(InputError) as err:
        parse_frame_range(text)
    assert "1001-1100x2" in str(err.value)  # says what was expected
    if text:
        assert repr(text) in str(err.value)  # and names the bad value


@pytest.mark.parametrize(("text", "bad", "fix"), [("1001-100", "1001-100", "100-1001"), ("4-1", "4-1", "1-4"),
                                                   ("1-3, -1--3", "-1--3", "-3--1"), ("9-5x2", "9-5", "5-9")])
def test_parse_frame_range_refuses_a_range_written_backwards(text, bad, fix):
    # fileseq counts it down, and a sorted set made "1001-100" (a typo for 1001-1100) 902 frames
    with pytest.raises(InputError) as err:
        parse_frame_range(text)
    assert f"{bad} runs backwards" in str(err.value) and fix in str(err.value) and repr(text) in str(err.value)


def test_format_frames_compacts_runs():
    assert format_frames([1010, 1003, 1004, 1005, 1001]) == "1001, 1003-1005, 1010"
    assert format_frames([]) == ""


def test_frame_from_path():
    assert frame_from_path("/x/roto.1001.exr") == 1001
    assert frame_from_path("roto_0012.png") == 12
    assert frame_from_path("roto.exr") is None


def test_frame_path_padding_styles(tmp_path):
    for pattern in ("plate.####.exr", "plate.@@@@.exr", "plate.%04d.exr"):
        assert frame_path(tmp_path / pattern, 7).name == "plate.0007.exr"
        assert frame_path(tmp_path / pattern, 12345).name == "plate.12345.exr"
    assert frame_path("p.#.exr", 5).name == "p.5.exr"
    assert frame_path("p.%d.exr", 5).name == "p.5.exr"
    assert frame_path("p.####.exr", -3).name == "p.-003.exr"  # as printf, Nuke and OpenImageIO spell it
    assert frame_path("still.exr", 9).name == "still.exr"


def _touch(folder, names):
    for name in names:
        (folder / name).write_bytes(b"")


@pytest.mark.parametrize("pattern", ["plate.####.exr", "plate.@@@@.exr", "plate.%04d.exr"])
def test_open_sequence_finds_frames_on_disk(tmp_path, pattern):
    _touch(tmp_path, ["plate.1001.exr", "plate.1002.exr", "plate.1004.exr", "plate.001.exr", "other.1003.exr"])
    seq = open_sequence(str(tmp_path / pattern))
    assert seq.frames == [1001, 1002, 1004]  # "001" has the wrong padding; "other" is another sequence
    assert seq.path(1002) == tmp_path / "plate.1002.exr"
    assert (seq.first, seq.last, len(seq)) == (1001, 1004, 3)


@pytest.mark.parametrize("pattern", ["plate.####.exr", "plate.%04d.exr"])
def test_negative_frames_spelt_as_printf_pads_them_are_found(tmp_path, pattern):
    """printf's %04d writes -2 as -002 (the sign inside the width), as vom does since session 32; -0002 (what vom
    wrote before) is read too: the printf spelling was "missing frames -2--1" (and "frames on disk: 0-0")."""
    _touch(tmp_path, ["plate.-002.exr", "plate.-001.exr", "plate.0000.exr", "plate.0001.exr"])
    seq = open_sequence(str(tmp_path / pattern))
    assert seq.frames == [-2, -1, 0, 1]
    assert seq.path(-2) == tmp_path / "plate.-002.exr" and seq.path(1) == tmp_path / "plate.0001.exr"
    assert open_sequence(str(tmp_path / pattern), [-2, -1, 0]).missing() == []
    _touch(tmp_path, ["plate.-0003.exr"])  # the padded spelling is read too
    seq = open_sequence(str(tmp_path / pattern))
    assert seq.frames == [-3, -2, -1, 0, 1] and seq.path(-3) == tmp_path / "plate.-0003.exr"
    # both spellings of one frame: two pictures, either of which could be the frame (a QA pass: -002 was taken,
    # without a word); refused, naming both, whether the range is given or found
    _touch(tmp_path, ["plate.-0002.exr"])
    for frames in (None, [-3, -2, -1]):
        with pytest.raises(InputError, match=r"frame -2 is on disk twice, as .*\.-002\.exr and .*\.-0002\.exr"):
            open_sequence(str(tmp_path / pattern), frames)
    assert open_sequence(str(tmp_path / pattern), [-1, 0]).frames == [-1, 0]  # the frames asked for are one file each
    # digits that fill the padding have one spelling: not "on disk twice, as p.-1000.exr and p.-1000.exr" (review)
    (tmp_path / "wide").mkdir()
    _touch(tmp_path / "wide", ["plate.-1000.exr", "plate.-999.exr"])
    assert open_sequence(str(tmp_path / "wide" / pattern)).frames == [-1000, -999]


def test_a_frame_that_is_a_dangling_link_is_said_to_be_one(tmp_path):
    """A QA pass: a plate folder of links, one into a render that went: "missing frame 1004" while the listing
    shows the file. The message says it is a link, and to what."""
    from vom_plugin.io.reader import open_image

    _touch(tmp_path, ["plate.1001.exr"])
    (tmp_path / "plate.1002.exr").symlink_to(tmp_path / "gone.exr")
    with pytest.raises(InputError, match=r"missing frame 1002 .*plate\.1002\.exr, a link to .*gone\.exr, which "
                                         r"does not exist\)"):
        open_sequence(str(tmp_path / "plate.####.exr"), [1001, 1002])
    with pytest.raises(InputError, match=r"plate .*plate\.1002\.exr is a link to .*gone\.exr, which does not exist"):
        open_image(tmp_path / "plate.1002.exr", "plate")
    with pytest.raises(InputError, match=r"plate file .*plate\.1002\.exr is a link to"):
        open_sequence(str(tmp_path / "plate.1002.exr"))


def test_open_sequence_lists_missing_frames_by_number(tmp_path):
    _touch(tmp_path, [f"plate.{f}.exr" for f in range(1001, 1021) if f not in (1003, 1004, 1005, 1010)])
    pattern = str(tmp_path / "plate.####.exr")
    with pytest.raises(InputError) as err:
        open_sequence(pattern, parse_frame_range("1001-1020"))
    message = str(err.value)
    assert "missing frames 1003-1005, 1010" in message
    assert pattern in message
    seq = open_sequence(pattern, parse_frame_range("1011-1020x3"))
    assert seq.frames == [1011, 1014, 1017, 1020]


def test_open_sequence_without_files_names_the_pattern(tmp_path):
    with pytest.raises(InputError, match="^plate: no files match the sequence pattern '.*plate.####.exr'"):
        open_sequence(str(tmp_path / "plate.####.exr"))
    with pytest.raises(InputError, match="does not exist"):
        open_sequence(str(tmp_path / "nowhere" / "plate.####.exr"))
    # a folder a Mac wrote (its name decomposed) named composed in a shot file: both print alike (QA)
    import unicodedata

    decomposed = tmp_path / unicodedata.normalize("NFD", "café") / "sh"
    decomposed.mkdir(parents=True)
    (decomposed / "plate.0001.exr").write_bytes(b"")
    composed = tmp_path / unicodedata.normalize("NFC", "café") / "sh" / "plate.####.exr"
    with pytest.raises(InputError) as e:
        open_sequence(str(composed))
    assert f"does not exist; {decomposed.parent} is there, the same name in another Unicode form" in str(e.value)


def test_open_sequence_single_file(tmp_path):
    _touch(tmp_path, ["still.exr", "plate.1001.exr"])
    seq = open_sequence(str(tmp_path / "still.exr"), [5, 6])
    assert seq.is_single_file and seq.frames == [5, 6] and seq.path(6) == tmp_path / "still.exr"
    assert open_sequence(str(tmp_path / "plate.1001.exr")).frames == [1001]
    with pytest.raises(InputError, match="missing.exr does not exist"):
        open_sequence(str(tmp_path / "missing.exr"))


def test_pattern_with_two_tokens_is_an_error(tmp_path):
    with pytest.raises(InputError, match="2 frame tokens"):
        open_sequence(str(tmp_path / "plate.####.%04d.exr"))


def test_plate_sequence_is_plain_data():
    seq = PlateSequence("/a/b.####.exr", [1, 2])
    assert list(seq) == [1, 2]
    assert str(seq.path(2)) == "/a/b.0002.exr"


def test_a_pattern_of_another_padding_than_the_files_says_which_to_use(tmp_path):
    for name in ("p.1.exr", "p.2.exr", "p.10.exr", "q.0001.exr", "q.0002.exr"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(InputError, match=r"no files match the sequence pattern '.*p\.####\.exr'; found 3 "
                                         r"file\(s\) of 1 digit\(s\) instead \(e\.g\. p\.1\.exr\): use .*p\.#\.exr "
                                         r"\(unpadded\)"):
        open_sequence(tmp_path / "p.####.exr")
    with pytest.raises(InputError, match=r"missing frame 1 .*found 2 file\(s\) of 4 digit\(s\) instead .*: use "
                                         r".*q\.####\.exr \(padded to 4\)"):
        open_sequence(tmp_path / "q.##.exr", [1])
    with pytest.raises(InputError) as e:  # the padding is right, the frame is not there: no hint
        open_sequence(tmp_path / "q.####.exr", [5])
    assert "instead" not in str(e.value)
    assert open_sequence(tmp_path / "p.#.exr").frames == [1, 2, 10]
    # the pattern's own token style; files of the pattern's padding there: no hint (a stray of another padding aside)
    with pytest.raises(InputError, match=r"use .*p\.%d\.exr \(unpadded\)"):
        open_sequence(tmp_path / "p.%04d.exr")
    for f in (1001, 1002, 1003):  # numbers above 9 without padding: padded to 4 all the same
        (tmp_path / f"s.{f}.exr").write_bytes(b"")
    with pytest.raises(InputError, match=r"found 3 file\(s\) of 4 digit\(s\) instead .*use .*s\.####\.exr "
                                         r"\(padded to 4\)"):
        open_sequence(tmp_path / "s.#####.exr")
    (tmp_path / "q.7.exr").write_bytes(b"")
    with pytest.raises(InputError) as e:
        open_sequence(tmp_path / "q.####.exr", [20, 21])
    assert "instead" not in str(e.value)


def test_a_pattern_finding_a_few_files_of_many_is_told_the_padding_of_the_many(tmp_path):
    """plate.##.exr over plate.1.exr ... plate.10.exr finds plate.10.exr alone: the hint was given only where no file
    matched at all (QA)."""
    from vom_plugin.io import padding_hint

    for f in range(1, 11):
        (tmp_path / f"p.{f}.exr").write_bytes(b"")
    assert open_sequence(tmp_path / "p.##.exr").frames == [10]
    assert padding_hint(tmp_path / "p.##.exr").startswith("; found 9 file(s) of 1 digit(s) instead")
    with pytest.raises(InputError, match=r"missing frames 1-9 \(9 of the 10 requested.*found 9 file\(s\) of 1 "
                                         r"digit\(s\) instead .*: use .*p\.#\.exr \(unpadded\)"):
        open_sequence(tmp_path / "p.##.exr", list(range(1, 11)))
    assert padding_hint(tmp_path / "p.#.exr") == "" and padding_hint(tmp_path / "p.exr") == ""
    # a stray short file beside a sequence of the pattern's padding: the frames asked for are simply not there
    for f in range(1001, 1011):
        (tmp_path / f"q.{f}.exr").write_bytes(b"")
    (tmp_path / "q.5.exr").write_bytes(b"")
    with pytest.raises(InputError) as e:
        open_sequence(tmp_path / "q.####.exr", list(range(1001, 1013)))
    assert "missing frames 1011-1012" in str(e.value) and "instead" not in str(e.value)



def test_a_missing_frame_there_as_another_format_is_said(tmp_path):
    """QA: frames re-delivered as DPX among EXRs were said to be "missing", beside the file of the frame."""
    for f, ext in ((1, "exr"), (2, "dpx"), (3, "exr")):
        (tmp_path / f"plate.{f:04d}.{ext}").write_bytes(b"x")
    (tmp_path / "plate.0003.exr.bak").write_bytes(b"x")  # a backup of a frame that is there: no note
    with pytest.raises(InputError, match=r"missing frame 2 \(1 of the 3 requested, .*\); .*plate\.0002\.dpx is there, "
                                         r"with another extension: one sequence is one format$"):
        open_sequence(tmp_path / "plate.####.exr", [1, 2, 3])
    (tmp_path / "plate.0002.dpx").unlink()
    (tmp_path / "plate.0002.exr.bak").write_bytes(b"x")
    with pytest.raises(InputError, match=r"missing frame 2 \(1 of the 3 requested, e\.g\. \S*plate\.0002\.exr\)$"):
        open_sequence(tmp_path / "plate.####.exr", [1, 2, 3])
    # no extension: nothing to differ (review: frame 1's file was named as "another extension" of frame 2)
    for f in (1, 3):
        (tmp_path / f"bare.{f:04d}").write_bytes(b"x")
    with pytest.raises(InputError, match=r"e\.g\. \S*bare\.0002\)$"):
        open_sequence(tmp_path / "bare.####", [1, 2, 3])
    (tmp_path / "plate.0002.EXR").write_bytes(b"x")  # another case, on a case-sensitive file system another file
    with pytest.raises(InputError, match=r"plate\.0002\.EXR is there, its extension spelt \.EXR: name every frame "
                                         r"alike$"):
        open_sequence(tmp_path / "plate.####.exr", [1, 2, 3])
    for f in (1, 3):  # a name with a digit and no extension: sh010.0002's suffix is its frame (review)
        (tmp_path / f"sh010.{f:04d}").write_bytes(b"x")
    with pytest.raises(InputError, match=r"e\.g\. \S*sh010\.0002\)$"):
        open_sequence(tmp_path / "sh010.####", [1, 2, 3])
    for f in (-3, -1):  # negative frames without an extension: another frame, not another extension (review)
        (tmp_path / f"neg.{f:04d}").write_bytes(b"x")
    with pytest.raises(InputError, match=r"e\.g\. \S*neg\.-002\)$"):
        open_sequence(tmp_path / "neg.####", [-3, -2, -1])


def test_with_no_range_a_frame_beside_the_pattern_in_another_padding_is_refused(tmp_path):
    """p.##.exr over p.1.exr ... p.12.exr with no frame range: frames 10-12 were rendered and the shot ended there,
    exit 0 (QA). Refused naming the frame beside them and the padding to use; a range given asks for its frames."""
    for f in range(1, 13):
        (tmp_path / f"p.{f}.exr").write_bytes(b"")
    with pytest.raises(InputError, match=r"^plate: sequence '.*p\.##\.exr': frame 9, beside the frames 10-12 it "
                                         r"reads, is on disk in another padding: found 9 file\(s\) of 1 digit\(s\) "
                                         r"instead \(e\.g\. p\.1\.exr\): use .*p\.#\.exr \(unpadded\), or give the "
                                         r"frame range$"):
        open_sequence(tmp_path / "p.##.exr", whole=True)
    assert open_sequence(tmp_path / "p.##.exr").frames == [10, 11, 12]  # its frames, where a range will follow
    assert open_sequence(tmp_path / "p.#.exr", whole=True).frames == list(range(1, 13))
    # a stray file of another padding away from the sequence is no frame of it, nor one lone file beside it (review)
    for f in range(1001, 1004):
        (tmp_path / f"q.{f}.exr").write_bytes(b"")
    (tmp_path / "q.5.exr").write_bytes(b"")
    assert open_sequence(tmp_path / "q.####.exr", whole=True).frames == [1001, 1002, 1003]
    for f in range(1, 11):
        (tmp_path / f"s.{f:04d}.exr").write_bytes(b"")
    (tmp_path / "s.0.exr").write_bytes(b"")
    assert open_sequence(tmp_path / "s.####.exr", whole=True).frames == list(range(1, 11))


def test_printfs_sign_counts_in_the_padding_hint(tmp_path):
    """Frames -3 to 2 written as %04d (p.-003.exr ... p.0002.exr): p.#.exr was told to use p.###.exr (the digits
    after the sign counted), which reads -3 to -1 alone (QA)."""
    for f in range(-3, 3):
        (tmp_path / f"p.{f:04d}.exr").write_bytes(b"")
    with pytest.raises(InputError, match=r"use .*p\.####\.exr \(padded to 4\)"):
        open_sequence(tmp_path / "p.#.exr", [-3, -2, -1, 0, 1, 2])
    with pytest.raises(InputError, match=r"frame 0, beside the frames -3--1 it reads, is on disk in another padding: "
                                         r"found 3 file\(s\) of 4 digit\(s\).*use .*p\.####\.exr"):
        open_sequence(tmp_path / "p.###.exr", whole=True)
    assert open_sequence(tmp_path / "p.####.exr", whole=True).frames == list(range(-3, 3))


def test_a_render_with_no_range_refuses_a_pattern_that_reads_part_of_the_plate(tmp_path):
    """Through render(): nothing read, no output folder made (the CLI and the farm's job builder alike)."""
    from vom_plugin import Shot, render
    from vom_plugin.farm.spans import load_farm_shot

    for f in range(1, 13):
        (tmp_path / f"p.{f}.exr").write_bytes(b"")
    (tmp_path / "roto.10.exr").write_bytes(b"")
    shot = Shot(plate=str(tmp_path / "p.##.exr"), keyframes=[str(tmp_path / "roto.10.exr")],
                out=str(tmp_path / "out" / "a.####.exr"))
    with pytest.raises(InputError, match=r"frame 9, beside the frames 10-12 it reads, is on disk in another padding"):
        render(shot)
    assert not (tmp_path / "out").exists()
    (tmp_path / "shot.yaml").write_text(f"plate: {tmp_path}/p.##.exr\nkeyframes: [{tmp_path}/roto.10.exr]\n"
                                        f"out: {tmp_path}/out/a.####.exr\n")
    with pytest.raises(InputError, match=r"frame 9, beside the frames 10-12"):
        load_farm_shot(tmp_path / "shot.yaml")


def test_no_match_names_a_file_named_in_another_case(tmp_path):
    """p.####.EXR over p.0001.exr said "no files match" alone (QA)."""
    for f in (1, 2):
        (tmp_path / f"P.{f:04d}.exr").write_bytes(b"")
    with pytest.raises(InputError, match=r"^plate: no files match the sequence pattern '.*p\.####\.EXR'; "
                                         r".*P\.0001\.exr is there, named in another case "
                                         r"\(vom matches names as spelt\)$"):
        open_sequence(tmp_path / "p.####.EXR")


def test_a_stopped_renders_frames_are_said_as_runs() -> None:
    """QA: a render of 1001-1199x2 stopped half-way listed every frame it wrote; runs a step apart are written as
    --frames reads them."""
    from vom_plugin.io.sequence import written_list

    assert written_list(range(1001, 1200, 2)) == " (1001-1199x2)"
    assert written_list([1, 13, 15, 17, 19]) == " (1,13-19x2)"
    assert written_list([12, 1, 8, 9, 10, 11, 12]) == " (1,8-12)"
    assert written_list([1, 3]) == " (1,3)" and written_list([5]) == " (5)" and written_list([]) == ""
    assert written_list([1, 2, 3, 10, 20, 30, 31, None]) == " (1-3,10-30x10,31)"


def test_a_missing_frame_on_disk_under_another_padding_is_said(tmp_path: Path) -> None:
    """QA: plate.0001, plate.002, plate.0003, plate.0004: "missing frame 2 (e.g. plate.0002.exr)" alone, where the frame
    is there, padded to 3. Said, with the file's name."""
    for name in ("plate.0001.exr", "plate.002.exr", "plate.02.exr", "plate.0003.exr", "plate.0004.exr", "plate.05.exr"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(InputError) as e:
        open_sequence(tmp_path / "plate.####.exr", [1, 2, 3, 4, 5])
    assert str(e.value).endswith("; frame 2 is on disk as plate.002.exr (and 1 more frame), padded otherwise: name "
                                 "every frame alike (to 4 digits)"), str(e.value)
    with pytest.raises(InputError) as e:  # a frame not there at all: nothing more said
        open_sequence(tmp_path / "plate.####.exr", [3, 4, 6])
    assert "padded otherwise" not in str(e.value)


@pytest.mark.parametrize(("text", "part"), [("1001-1004:0", "1001-1004:0"), ("1001, 1003-1004:0", "1003-1004:0"),
                                            ("1001-1004x0", "1001-1004x0"), ("1001 abc", "abc")])
def test_a_part_that_does_not_parse_is_quoted_as_typed(text: str, part: str) -> None:
    """QA: --frames=1001-1004:0 was refused quoting '1001-1004x0', a text the user never typed."""
    with pytest.raises(InputError) as e:
        parse_frame_range(text)
    assert str(e.value).startswith(f"frame range {text!r} does not parse ({part!r} is not a frame, a range or a range "
                                   f"with a step of 1 or more)"), str(e.value)
