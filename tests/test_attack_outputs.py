"""Attacks on the inputs through the output pattern: every spelling of an input file is refused, exit 2.

Each test spells an output pattern that lands on a file the render reads (a plate frame, a roto, the shot
file, the weights) in another way than the input's own spelling, and asserts: exit 2, the message names
the file, every input's bytes unchanged, and no output folder or file left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
import yaml
from test_runner_render import make_shot_dir

from vom_plugin.cli import main
from vom_plugin.errors import InputError


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shot_dir(tmp_path_factory.mktemp("attack_out"))


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def _render(root: Path, tmp: Path, out: str, *extra: str, frames: str = "1-2",
            roto: str | None = None, model: str | None = None) -> int:
    return main(["render", "--plate", str(root / "plate" / "p.####.exr"),
                 "--roto", roto or str(root / "roto" / "r.0001.exr"), "--out", out, "--frames", frames,
                 "--model", model or str(root / "model.safetensors"), "--cache", str(tmp / "cache"),
                 "--working-size", "128", "--device", "cpu", "--progress", "none", *extra])


@pytest.mark.parametrize("spelling", ["p.%04d.exr", "p.@@@@.exr", "p.$F4.exr", "../plate/p.%04d.exr",
                                      "./././p.%4d.exr"])
def test_another_spelling_of_the_plate_is_refused(files: Path, tmp_path: Path, spelling: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    before = _digests(files)
    rc = _render(files, tmp_path, str(files / "plate" / spelling))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "p.0001.exr, which is the plate frame 1" in err, err
    assert _digests(files) == before
    assert not (tmp_path / "cache").exists()  # refused before the cache folder was made


@pytest.mark.parametrize("spelling", ["p.#####.exr", "p.%05d.exr"])
def test_the_plates_sequence_with_another_padding_is_refused(files: Path, tmp_path: Path, spelling: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Another padding names other files (p.00001.exr), written among the plate's; with negative frames, the
    plate's p.-0003.exr got a p.-003.exr beside it, and every later render refused frame -3 as spelt twice (QA)."""
    before = _digests(files)
    rc = _render(files, tmp_path, str(files / "plate" / spelling))
    err = capsys.readouterr().err
    assert rc == 2 and f"out '{files / 'plate' / spelling}' names the plate's own sequence" in err, err
    assert _digests(files) == before and not list((files / "plate").glob("p.0000*.exr"))


def test_an_output_among_a_negative_plates_other_spelling_is_refused(files: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    plate = tmp_path / "neg"
    plate.mkdir()
    for f in (1, 2, 3):
        (plate / f"p.-{4 - f:04d}.exr").write_bytes((files / "plate" / f"p.{f:04d}.exr").read_bytes())
    rc = main(["render", "--plate", str(plate / "p.####.exr"), "--roto", f"{files / 'roto' / 'r.0001.exr'}@-3",
               "--out", str(plate / "p.%04d.exr"), "--model", str(files / "model.safetensors"), "--cache",
               str(tmp_path / "cache"), "--working-size", "128", "--device", "cpu", "--progress", "none"])
    err = capsys.readouterr().err
    assert rc == 2 and "names the plate's own sequence" in err, err
    assert sorted(p.name for p in plate.iterdir()) == ["p.-0001.exr", "p.-0002.exr", "p.-0003.exr"]


def test_a_relative_spelling_of_the_plate_is_refused(files: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    before = _digests(files)
    monkeypatch.chdir(files / "roto")
    rc = _render(files, tmp_path, "../roto/../plate/p.%04d.exr")
    assert rc == 2 and "which is the plate frame 1" in capsys.readouterr().err
    assert _digests(files) == before


def test_a_symlinked_folder_to_the_plate_is_refused(files: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    before = _digests(files)
    (tmp_path / "renders").symlink_to(files / "plate", target_is_directory=True)
    rc = _render(files, tmp_path, str(tmp_path / "renders" / "p.####.exr"))
    err = capsys.readouterr().err
    assert rc == 2 and "which is the plate frame 1" in err, err
    assert _digests(files) == before


@pytest.fixture
def bind_mount(tmp_path: Path):
    """``bind_mount(source, target)``: ``source`` mounted again at ``target`` (one storage reached by two paths, as
    autofs, a container volume or one export mounted twice do); skipped where this user may not mount."""
    import shutil
    import subprocess

    mounted: list[Path] = []

    def bind(source: Path, target: Path) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        tool = shutil.which("mount")
        done = subprocess.run([tool, "--bind", str(source), str(target)], capture_output=True, text=True) \
            if tool else None
        if done is None or done.returncode != 0:
            pytest.skip(f"a bind mount is not allowed here ({done.stderr.strip() if done else 'no mount command'})")
        mounted.append(target)
        return target

    yield bind
    for target in reversed(mounted):
        subprocess.run(["umount", str(target)], check=False)


def test_the_plates_folder_through_a_bind_mount_is_refused(files: Path, tmp_path: Path, bind_mount,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """QA: the plate folder mounted again elsewhere (no link to resolve) and the plate's sequence with another
    padding there: the mattes were written among the plate's frames, exit 0."""
    plate = tmp_path / "take1"
    plate.mkdir()
    for f in (1, 2):
        (plate / f"p.{f:04d}.exr").write_bytes((files / "plate" / f"p.{f:04d}.exr").read_bytes())
    there = bind_mount(plate, tmp_path / "mnt")
    rc = main(["render", "--plate", str(plate / "p.####.exr"), "--roto", str(files / "roto" / "r.0001.exr"),
               "--out", str(there / "p.#####.exr"), "--frames", "1-2", "--model", str(files / "model.safetensors"),
               "--cache", str(tmp_path / "cache"), "--working-size", "128", "--device", "cpu", "--progress", "none"])
    err = capsys.readouterr().err
    assert rc == 2 and "names the plate's own sequence" in err, err
    assert sorted(p.name for p in plate.iterdir()) == ["p.0001.exr", "p.0002.exr"]


def test_two_objects_folders_that_are_one_folder_are_refused_before_work(files: Path, tmp_path: Path, bind_mount,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """QA: each object's folder a mount of one folder: hero's frames were written, then the render stopped at dog's
    first frame saying hero's file was "put there while this render ran". Refused before any work now."""
    shared = tmp_path / "shared"
    shared.mkdir()
    bind_mount(shared, tmp_path / "o" / "hero")
    bind_mount(shared, tmp_path / "o" / "dog")
    roto = str(files / "roto" / "r.0001.exr")
    rc = main(["render", "--plate", str(files / "plate" / "p.####.exr"), "--roto", f"hero={roto}", "--roto",
               f"dog={roto}", "--out", str(tmp_path / "o" / "{object}" / "a.####.exr"), "--frames", "1-2",
               "--model", str(files / "model.safetensors"), "--cache", str(tmp_path / "cache"), "--working-size",
               "128", "--device", "cpu", "--progress", "none"])
    err = capsys.readouterr().err
    assert rc == 2 and "object hero's frame 1 and object dog's frame 1 would both be written to one file: " in err, err
    assert "are one (a link or a mount between their folders); give each a folder of its own" in err, err
    assert not list(shared.iterdir())


def test_two_objects_folders_linked_to_one_are_said_to_be_one_file(tmp_path: Path) -> None:
    """QA: o/dog a link to o/hero: refused, but said as two frames written "to o/dog/a.0001.exr", with advice about
    frame tokens and separators that did not apply."""
    from vom_plugin.io import output_guard as og

    (tmp_path / "o" / "hero").mkdir(parents=True)
    (tmp_path / "o" / "dog").symlink_to("hero")
    with pytest.raises(InputError, match=r"object (hero|dog)'s frame 1 and object (hero|dog)'s frame 1 would both be "
                                         r"written to one file: \S+/o/(hero|dog)/a\.0001\.exr and \S+/o/(hero|dog)/"
                                         r"a\.0001\.exr are one \(a link or a mount between their folders\)"):
        og.check_distinct({"hero": str(tmp_path / "o" / "hero" / "a.####.exr"),
                           "dog": str(tmp_path / "o" / "dog" / "a.####.exr")}, [1, 2])
    with pytest.raises(InputError, match=r"frame 1 and frame 2 would both be written to \S*m\.exr; give each its own "
                                         r"file \(a frame token"):  # one name: the advice as before
        og.check_distinct({None: str(tmp_path / "m.exr")}, [1, 2])


def test_folders_are_one_by_their_device_and_inode_where_they_have_one(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The bind-mount cases above where this user may not mount (a CI container): two folder paths of one device and
    inode are one folder to the sequence and distinct-output checks; an inode of 0 (SMB, FUSE) tells nothing, so the
    paths decide."""
    from vom_plugin.io import output_guard as og

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    same = {str(a): (7, 42), str(b): (7, 42)}
    monkeypatch.setattr(og, "identity", lambda p: same.get(os.fspath(p)))
    assert og.same_sequence_name(str(a / "p.####.exr"), str(b / "p.#####.exr"))
    with pytest.raises(InputError, match=r"object hero's frame 1 and object dog's frame 1 would both be written to"):
        og.check_distinct({"hero": str(a / "x.####.exr"), "dog": str(b / "x.####.exr")}, [1])
    same.update({str(a): (7, 0), str(b): (7, 0)})
    assert not og.same_sequence_name(str(a / "p.####.exr"), str(b / "p.#####.exr"))
    og.check_distinct({"hero": str(a / "x.####.exr"), "dog": str(b / "x.####.exr")}, [1])


def test_an_output_frame_that_is_a_link_to_a_plate_frame_is_refused(files: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    before = _digests(files)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "a.0002.exr").symlink_to(files / "plate" / "p.0007.exr")
    rc = _render(files, tmp_path, str(tmp_path / "o" / "a.####.exr"))
    err = capsys.readouterr().err
    assert rc == 2 and "which is the plate frame 7" in err, err
    assert _digests(files) == before and not (tmp_path / "o" / "a.0001.exr").exists()


def test_a_hard_link_to_a_plate_frame_is_refused(files: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # Identity (st_dev, st_ino), not the path: the same check sees one file under two case spellings on a
    # case-folding file system, which this machine's file system is not.
    (tmp_path / "o").mkdir()
    os.link(files / "plate" / "p.0001.exr", tmp_path / "o" / "a.0001.exr")
    rc = _render(files, tmp_path, str(tmp_path / "o" / "a.####.exr"))
    assert rc == 2 and "which is the plate frame 1" in capsys.readouterr().err


def test_an_output_pattern_naming_the_roto_is_refused(files: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    before = _digests(files)
    rc = _render(files, tmp_path, str(files / "roto" / "r.%04d.exr"), frames="1")
    err = capsys.readouterr().err
    assert rc == 2 and "r.0001.exr, which is the roto of keyframe 1" in err, err
    assert _digests(files) == before


def test_an_output_pattern_naming_the_shot_file_is_refused(files: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    shot_file = tmp_path / "job.0001.exr"  # a shot file may have any name
    shot_file.write_text(yaml.safe_dump({
        "plate": str(files / "plate" / "p.####.exr"), "keyframes": {1: str(files / "roto" / "r.0001.exr")},
        "frames": "1", "out": "job.####.exr", "model": str(files / "model.safetensors"), "working_size": 128,
        "device": "cpu", "cache": str(tmp_path / "cache")}))
    text = shot_file.read_text()
    rc = main(["render", str(shot_file), "--progress", "none"])
    err = capsys.readouterr().err
    assert rc == 2 and "job.0001.exr, which is the shot file" in err, err
    assert shot_file.read_text() == text


def test_an_output_pattern_naming_the_weights_is_refused(files: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    weights = tmp_path / "w.0001.exr"
    weights.write_bytes((files / "model.safetensors").read_bytes())
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    rc = _render(files, tmp_path, str(tmp_path / "w.####.exr"), frames="1", model=str(weights))
    err = capsys.readouterr().err
    assert rc == 2 and "w.0001.exr, which is the weights file" in err, err
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == digest


def test_an_output_frame_that_is_a_folder_is_refused_before_work(files: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "o" / "a.0002.exr").mkdir(parents=True)
    rc = _render(files, tmp_path, str(tmp_path / "o" / "a.####.exr"))
    assert rc == 2 and "a.0002.exr, which is a folder" in capsys.readouterr().err
    assert not (tmp_path / "o" / "a.0001.exr").exists() and not (tmp_path / "cache").exists()


def test_a_refused_render_creates_no_output_folder(files: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "deep" / "new" / "a.####.exr"
    rc = _render(files, tmp_path, str(out), model=str(tmp_path / "no_such_weights.safetensors"))
    assert rc == 2 and "no_such_weights" in capsys.readouterr().err
    assert not (tmp_path / "deep").exists() and not (tmp_path / "cache").exists()


def test_a_clean_render_beside_the_plate_is_allowed(files: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    before = _digests(files / "plate")
    rc = _render(files, tmp_path, str(files / "plate" / "alpha.$F4.exr"), frames="1")
    assert rc == 0, capsys.readouterr().err
    assert (files / "plate" / "alpha.0001.exr").is_file()
    (files / "plate" / "alpha.0001.exr").unlink()
    assert _digests(files / "plate") == before


def test_a_file_vom_did_not_write_at_an_output_path_is_refused_before_work(files: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """An artist's roto for a later keyframe, another tool's matte, a note: not this render's inputs, still not
    vom's to replace. Its own earlier outputs it replaces (a re-render after a roto tweak)."""
    import shutil

    out = tmp_path / "o"
    out.mkdir()
    shutil.copy(files / "roto" / "r.0001.exr", out / "a.0002.exr")  # an EXR without vom:version
    before = (out / "a.0002.exr").read_bytes()
    rc = _render(files, tmp_path, str(out / "a.####.exr"))
    err = capsys.readouterr().err
    assert rc == 2 and "would replace" in err and "a.0002.exr, which vom did not write (no vom:version" in err, err
    assert (out / "a.0002.exr").read_bytes() == before and not (out / "a.0001.exr").exists()
    assert not (tmp_path / "cache").exists()
    (out / "a.0002.exr").write_text("notes")  # not an image at all
    rc = _render(files, tmp_path, str(out / "a.####.exr"))
    err = capsys.readouterr().err
    assert rc == 2 and "which does not read as an image (" in err and "cannot tell whether it wrote it" in err, err
    assert (out / "a.0002.exr").read_text() == "notes"
    (out / "a.0002.exr").unlink()
    # a link to such a file: the message names the file the link leads to (QA: only the link's name was said)
    precious = tmp_path / "precious" / "hero_plate.exr"
    precious.parent.mkdir()
    shutil.copy(files / "roto" / "r.0001.exr", precious)
    (out / "a.0002.exr").symlink_to(precious)
    rc = _render(files, tmp_path, str(out / "a.####.exr"))
    err = capsys.readouterr().err
    assert rc == 2 and f"would replace {out / 'a.0002.exr'} (a link to {precious}), which vom did not write" in err, err
    (out / "a.0002.exr").unlink()
    assert _render(files, tmp_path, str(out / "a.####.exr")) == 0
    first = {f: (out / f"a.000{f}.exr").stat().st_ino for f in (1, 2)}
    assert _render(files, tmp_path, str(out / "a.####.exr")) == 0, capsys.readouterr().err  # its own: replaced
    assert all((out / f"a.000{f}.exr").stat().st_ino != first[f] for f in (1, 2))


def test_a_read_only_output_is_refused_before_work(files: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A locked (published) frame: renaming over it would succeed, as root or not; vom refuses instead."""
    out = tmp_path / "o"
    assert _render(files, tmp_path, str(out / "a.####.exr")) == 0
    locked = out / "a.0002.exr"
    locked.chmod(0o444)
    before = locked.read_bytes()
    rc = _render(files, tmp_path, str(out / "a.####.exr"), roto=str(files / "roto" / "r.0001.exr"), frames="1-2")
    err = capsys.readouterr().err
    assert rc == 2 and "a.0002.exr, which is read-only" in err, err
    assert locked.read_bytes() == before and stat.S_IMODE(locked.stat().st_mode) == 0o444
    # writable by its group only (a show's shared folder): not locked, replaced as vom's own frame
    locked.chmod(0o464)
    inode = locked.stat().st_ino
    rc = _render(files, tmp_path, str(out / "a.####.exr"), roto=str(files / "roto" / "r.0001.exr"), frames="1-2")
    assert rc == 0, capsys.readouterr().err
    assert locked.stat().st_ino != inode and stat.S_IMODE(locked.stat().st_mode) == 0o464  # written anew, its mode kept


def test_two_objects_sequences_that_name_one_file_are_refused() -> None:
    """``m{object}#.exr`` with objects h and h1: h's frame 11 and h1's frame 1 are both mh11.exr; the second
    write would replace the first. Checked with the other output checks, before any work."""
    from vom_plugin.errors import InputError
    from vom_plugin.io.output_guard import check_distinct

    with pytest.raises(InputError, match=r"object h's frame 11 and object h1's frame 1 would both be written to "
                                         r"\S*mh11\.exr"):
        check_distinct({"h": "/o/mh#.exr", "h1": "/o/mh1#.exr"}, [1, 11])
    check_distinct({"h": "/o/mh.#.exr", "h1": "/o/mh1.#.exr"}, [1, 11])  # a separator: distinct
    with pytest.raises(InputError, match=r"frame 1 and frame 2 would both be written to \S*m\.exr"):
        check_distinct({None: "/o/m.exr"}, [1, 2])
    with pytest.raises(InputError, match=r"mh11\.exr; give each"):  # both frames rendered: no note
        check_distinct({"h": "/o/mh#.exr", "h1": "/o/mh1#.exr"}, [1, 11], [1, 11])


def test_an_output_name_too_long_for_the_file_system_is_refused_before_work(files: Path, tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    rc = _render(files, tmp_path, str(tmp_path / "o" / ("a" * 260 + ".####.exr")))
    err = capsys.readouterr().err
    assert rc == 2 and "bytes; its file system allows 255" in err, err
    assert not (tmp_path / "o").exists()
    rc = _render(files, tmp_path, str(tmp_path / "o" / ("a" * 240 + ".####.exr")), frames="1")  # 249: fits
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a" * 240 + ".0001.exr"]


def test_what_decides_whether_an_existing_output_is_replaced(files: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Mode bits lock a frame, not the user's write access to it (a rename needs the folder's: a 0644 frame of
    the farm's account in a shared folder is replaced); a link is replaced, never its target; a matte another
    tool made from a vom output (its metadata kept) and another frame's output are not this frame's."""
    import OpenImageIO as oiio

    out = tmp_path / "o"
    assert _render(files, tmp_path, str(out / "a.####.exr")) == 0
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if mode == os.W_OK else real_access(p, mode, **k))
    assert _render(files, tmp_path, str(out / "a.####.exr")) == 0, capsys.readouterr().err
    monkeypatch.undo()

    published = tmp_path / "published.0002.exr"
    (out / "a.0002.exr").rename(published)
    published.chmod(0o444)
    (out / "a.0002.exr").symlink_to(published)  # a link to a locked frame: the link goes, the frame stays
    before = published.read_bytes()
    assert _render(files, tmp_path, str(out / "a.####.exr")) == 0, capsys.readouterr().err
    assert not (out / "a.0002.exr").is_symlink() and published.read_bytes() == before

    graded = oiio.ImageBuf(str(out / "a.0002.exr"))  # a grade of vom's matte: oiiotool keeps vom:version
    graded.specmod().attribute("Software", "OpenImageIO 3.2.2.0 : oiiotool a.0002.exr --mulc 0.5")
    assert graded.write(str(tmp_path / "graded.exr"))
    os.replace(tmp_path / "graded.exr", out / "a.0002.exr")
    rc = _render(files, tmp_path, str(out / "a.####.exr"))
    err = capsys.readouterr().err
    assert rc == 2 and "which vom did not write (Software 'OpenImageIO" in err, err
    os.replace(out / "a.0001.exr", out / "a.0002.exr")  # frame 1's output at frame 2's name
    rc = _render(files, tmp_path, str(out / "a.####.exr"), frames="2")
    err = capsys.readouterr().err
    assert rc == 2 and "which is vom's matte of frame 1, not of frame 2 (copied or renamed?)" in err, err


def test_reports_weights_and_gizmos_never_replace_a_file_vom_did_not_write(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`vom gizmo --out`, `vom train --export --to` and `vom benchmark --out` wrote over whatever their path named
    (the node definition itself, a user's notes)."""
    notes = tmp_path / "notes.safetensors"
    notes.write_text("my notes\n")
    gizmo = tmp_path / "mine.gizmo"
    gizmo.write_text("# my own gizmo\nGizmo {\n}\n")
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "benchmark.json").write_text('{"mine": 1}')
    before = {p: p.read_bytes() for p in (notes, gizmo, bench / "benchmark.json")}
    assert main(["gizmo", "--out", str(gizmo)]) == 2
    assert "mine.gizmo: exists and was not written by vom" in capsys.readouterr().err
    ckpt = tmp_path / "last.pt"
    ckpt.write_bytes(b"not read: the destination is checked first")
    assert main(["train", "--export", str(ckpt), "--to", str(notes)]) == 2
    assert "notes.safetensors: exists and was not written by vom" in capsys.readouterr().err
    assert main(["benchmark", "--data", "synth:1", "--methods", "flow_cf", "--out", str(bench)]) == 2
    assert "benchmark.json: exists and was not written by vom" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before
    # vom's own: replaced (a gizmo written by vom gizmo; the shipped weights' header)
    ours = tmp_path / "ours.gizmo"
    assert main(["gizmo", "--out", str(ours)]) == 0 and main(["gizmo", "--out", str(ours)]) == 0
    from vom_plugin.commands.train import _vom_weights
    from vom_plugin.locations import weights_path

    assert _vom_weights(weights_path("default").read_bytes()[:16 << 20])
    from vom_plugin.commands.benchmark import _a_report

    # a report of many clips, cut at the first bytes read: known by how it opens, not by parsing it
    assert _a_report(b'{\n  "region": "whole",\n  "units": {"MAD": "x1e3"') and not _a_report(b'{"mine": 1}')
    capsys.readouterr()


def test_a_benchmark_stopped_before_its_report_can_be_run_again_into_its_folder(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch,
                                                                               capsys: pytest.CaptureFixture[str]
                                                                               ) -> None:
    # --save-alphas writes while the run goes: a run stopped before benchmark.json left a folder vom then refused
    import numpy as np

    import vom_plugin.eval.runner as er
    from vom_plugin.errors import InputError

    def stopped(*a, on_alpha=None, **k):
        on_alpha("clip", "flow_cf", np.zeros((1, 8, 8), np.float32))  # the first alphas, then a stop
        raise InputError("stopped")

    monkeypatch.setattr(er, "run_benchmark", stopped)
    monkeypatch.setattr(er, "alpha_saver", lambda folder: lambda *a: (Path(folder) / "clip").mkdir(exist_ok=True))
    argv = ["benchmark", "--data", "synth:1", "--methods", "flow_cf", "--out", str(tmp_path / "bo"), "--save-alphas"]
    assert main(argv) == 2 and "stopped" in capsys.readouterr().err
    assert yaml.safe_load((tmp_path / "bo" / "benchmark.json").read_text()) == {"region": "whole", "complete": False}
    assert main(argv) == 2 and "stopped" in capsys.readouterr().err  # its own folder: not refused
    (tmp_path / "file").write_text("x")
    assert main([*argv[:-2], str(tmp_path / "file")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err


def test_another_users_frame_in_a_sticky_folder_is_refused_before_work(files: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A shared drop folder (mode 3777): only a file's owner may rename over it, which the first write found out
    (exit 2) after the frames were computed. Refused up front; the folder's owner or the file's own is not."""
    out = tmp_path / "drop"
    out.mkdir()
    assert _render(files, tmp_path, str(out / "a.####.exr")) == 0
    out.chmod(0o3777)
    before = _digests(out)
    monkeypatch.setattr(os, "geteuid", lambda: 4242)  # another user than the frames' and the folder's (root)
    rc = _render(files, tmp_path, str(out / "a.####.exr"))
    err = capsys.readouterr().err
    assert rc == 2 and "a.0001.exr, which belongs to another user (uid 0)" in err and "sticky, mode 3777" in err, err
    assert _digests(out) == before
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert _render(files, tmp_path, str(out / "a.####.exr")) == 0, capsys.readouterr().err


def test_a_benchmark_folder_keeps_the_users_pictures_frames_and_links(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A QA pass: once --out held a vom benchmark.json, a later benchmark wrote its plots and saved alphas over a
    user's picture and EXR of those names, followed a linked clip folder out of --out, and deleted a user's
    <clip>.png left from no earlier run. Plots carry a mark now; only marked plots and marked frames are replaced
    or removed, and the folders it writes into are its own."""
    pytest.importorskip("matplotlib")
    out = tmp_path / "u"
    # (--replace-alphas: each run here replaces the one before's saved alphas, as it means to)
    argv = ["benchmark", "--data", "synth:1", "--frames", "3", "--size", "32", "--methods", "static",
            "--replace-alphas", "--out", str(out)]
    assert main([*argv, "--save-alphas"]) == 0, capsys.readouterr().err
    assert main([*argv, "--save-alphas"]) == 0  # its own plot and frames are replaced
    capsys.readouterr()
    plot, frame = out / "synth000.png", out / "synth000" / "static" / "alpha.0001.exr"
    plot.write_bytes(b"my own plot")
    assert main(argv) == 2 and "synth000.png: exists and was not written by vom" in capsys.readouterr().err
    assert plot.read_bytes() == b"my own plot"
    plot.unlink()
    frame.write_bytes(b"my exr")
    assert main([*argv, "--save-alphas"]) == 2 and "was not written by vom" in capsys.readouterr().err
    assert frame.read_bytes() == b"my exr"
    import shutil

    shutil.rmtree(out / "synth000")
    (tmp_path / "elsewhere" / "static").mkdir(parents=True)
    (out / "synth000").symlink_to(tmp_path / "elsewhere")
    assert main([*argv, "--save-alphas"]) == 2 and "is a link" in capsys.readouterr().err
    assert not list((tmp_path / "elsewhere" / "static").iterdir())
    (out / "synth000").unlink()
    (out / "old.png").write_bytes(b"a user's picture named like a clip")
    report = json.loads((out / "benchmark.json").read_text())
    report["clips"].append({**report["clips"][0], "name": "old"})  # an earlier run listed a clip "old"
    (out / "benchmark.json").write_text(json.dumps(report))
    assert main(argv) == 0, capsys.readouterr().err
    assert (out / "old.png").read_bytes() == b"a user's picture named like a clip"  # not vom's: not removed
    # an unmarked Matplotlib PNG of a clip the folder's report lists is a user's own plot, neither replaced nor
    # removed (QA: taken for one vom wrote before the mark, and deleted); a refusal comes before anything is written
    # (a review: the report was replaced, then the plots refused)
    import shutil as sh

    older = tmp_path / "older"
    sh.copytree(out, older)
    (older / "synth000.png").write_bytes(b"\x89PNG...Software\x00Matplotlib version3.9")
    assert main([*argv[:-1], str(older)]) == 2
    assert "synth000.png: exists and was not written by vom" in capsys.readouterr().err
    assert (older / "synth000.png").read_bytes() == b"\x89PNG...Software\x00Matplotlib version3.9"
    (older / "mine.png").write_bytes(b"\x89PNG...Software\x00Matplotlib version3.9")
    listed = json.loads((older / "benchmark.json").read_text())
    listed["clips"].append({**listed["clips"][0], "name": "mine"})
    (older / "benchmark.json").write_text(json.dumps(listed))
    (older / "synth000.png").unlink()
    assert main([*argv[:-1], str(older)]) == 0, capsys.readouterr().err
    assert (older / "mine.png").read_bytes() == b"\x89PNG...Software\x00Matplotlib version3.9"  # not removed
    assert b"vom benchmark plot" in (older / "synth000.png").read_bytes()
    (older / "synth000.png").write_bytes(b"mine")
    marked = json.loads((older / "benchmark.json").read_text())
    marked["settings"]["note"] = "the earlier run's"  # so that a report written again would show
    (older / "benchmark.json").write_text(json.dumps(marked))
    report = (older / "benchmark.json").read_bytes()
    assert main([*argv[:-1], str(older)]) == 2 and "synth000.png: exists and was not written by vom" in \
        capsys.readouterr().err
    assert (older / "benchmark.json").read_bytes() == report  # not replaced before the refusal
    # with --save-alphas the clip's plot path is checked before its first frame is written (review)
    sh.rmtree(older / "synth000", ignore_errors=True)
    assert main([*argv[:-1], str(older), "--save-alphas"]) == 2
    assert "synth000.png: exists and was not written by vom" in capsys.readouterr().err
    assert not (older / "synth000").exists() and (older / "benchmark.json").read_bytes() == report


def test_objects_sequences_naming_one_file_at_any_plate_frame_are_refused_by_the_first_chunk(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Objects h and h1 into m{object}#.exr collide at h's frame 11 only: a first farm chunk of frames 1-3 rendered,
    and the chunk with frame 11 was refused (QA). Every frame of the plate is checked, so the first is refused."""
    import numpy as np
    from test_io_support import write_image

    for f in range(1, 13):
        write_image(tmp_path / f"p.{f:04d}.exr", np.zeros((12, 16, 3), np.float32), ("R", "G", "B"))
    roto = np.zeros((12, 16), np.float32)
    roto[3:9, 4:12] = 1
    write_image(tmp_path / "r.0001.exr", roto, ("A",))
    rc = main(["render", "--plate", str(tmp_path / "p.####.exr"), "--roto", f"h={tmp_path / 'r.0001.exr'}",
               "--roto", f"h1={tmp_path / 'r.0001.exr'}", "--out", str(tmp_path / "o" / "m{object}#.exr"),
               "--frames", "1-3", "--progress", "none", "--no-worker", "--cache", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert rc == 2 and "object h's frame 11 and object h1's frame 1 would both be written to" in err, err
    # frame 11 is not this render's: said to be a later render's (QA: read as a frame outside --frames 1-3)
    assert "mh11.exr (a plate frame this render does not write: a later render or farm chunk of it would)" in err
    assert not (tmp_path / "o").exists()


def test_other_objects_files_are_found_by_the_whole_pattern(tmp_path: Path) -> None:
    import numpy as np
    from test_io_support import write_image

    from vom_plugin.io import ImageInfo, write_alpha
    from vom_plugin.io.output_guard import other_objects_files

    for rel, obj in (("m_hero.0001.exr", "hero"), ("m_both.0001.exr", "both"), ("m_both.0002.exr", "both"),
                     ("mh21.exr", "h"), ("mx3.exr", "x"), ("hero/m_hero.0001.exr", "hero"),
                     ("both/m_both.0001.exr", "both"), ("both/m_hero.0001.exr", "hero")):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        write_alpha(tmp_path / rel, np.zeros((4, 6), np.float32), ImageInfo.for_size(6, 4),
                    metadata={"vom/objects": obj})
    # no object's: a one-object render's matte (no vom:objects) and a file holding several objects' layers (QA: the
    # natural move from sh010_alpha to sh010_{object} was told to delete sh010_alpha, "an object 'alpha'")
    write_alpha(tmp_path / "m_alpha.0001.exr", np.zeros((4, 6), np.float32), ImageInfo.for_size(6, 4))
    write_alpha(tmp_path / "m_mattes.0001.exr", np.zeros((4, 6), np.float32), ImageInfo.for_size(6, 4),
                metadata={"vom/objects": "hero,dog"})
    (tmp_path / "notes.txt").write_text("")
    # not vom's mattes, or the render's own inputs, are never said to be an object's (review: a roto named
    # m_roto_hero.0001.exr beside the output was, with the advice to delete it)
    write_image(tmp_path / "m_plate.0001.exr", np.zeros((4, 6, 3), np.float32))
    write_alpha(tmp_path / "m_roto.0001.exr", np.zeros((4, 6), np.float32), ImageInfo.for_size(6, 4))
    got = other_objects_files(str(tmp_path / "m_{object}.####.exr"), "{object}", ["hero", "dog"],
                              [tmp_path / "m_roto.0001.exr"])
    assert got == {"both": [tmp_path / "m_both.0001.exr", tmp_path / "m_both.0002.exr"]}
    # every {object} one name: both/m_hero is nobody's; hero/ is this shot's
    got = other_objects_files(str(tmp_path / "{object}" / "m_{object}.####.exr"), "{object}", ["hero"])
    assert got == {"both": [tmp_path / "both" / "m_both.0001.exr"]}
    # an object name beside the frame number: mh21.exr is h's frame 21, not an object h2's frame 1
    assert other_objects_files(str(tmp_path / "m{object}#.exr"), "{object}", ["h"]) == {"x": [tmp_path / "mx3.exr"]}


def test_a_path_holding_control_characters_is_printed_on_one_line(files: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """QA: an output folder named with a newline broke the closing line in two, and on a farm (--progress openjd)
    forged an `openjd_fail:` line the task's session read as its own; an escape sequence reached the terminal."""
    from vom_plugin.errors import one_line

    assert one_line("a\nb\x1b[31mc\x07d\té") == "a\\nb\\x1b[31mc\\x07d\\té"
    out = tmp_path / "x\nopenjd_fail: INJECTED\n\x1b[31m" / "a.####.exr"
    rc = _render(files, tmp_path, str(out), "--progress", "openjd")
    got = capsys.readouterr()
    assert rc == 0, got.err
    lines = (got.out + got.err).splitlines()
    assert not [x for x in lines if x.startswith("openjd_fail")], lines
    assert "\x1b" not in got.err and "x\\nopenjd_fail: INJECTED\\n\\x1b[31m" in got.err, got.err
    assert sorted(p.name for p in out.parent.iterdir()) == ["a.0001.exr", "a.0002.exr"]
