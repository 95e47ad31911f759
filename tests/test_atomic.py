"""vom_plugin.atomic: a file appears whole under its name or the old one stays; nothing is left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from vom_plugin.atomic import atomic_path, temp_name, write_text_atomic


def test_write_replaces_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "job.yaml"
    write_text_atomic(target, "old\n")
    write_text_atomic(target, "new ✓\n")
    assert target.read_text(encoding="utf-8") == "new ✓\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.yaml"]


def test_an_error_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    target = tmp_path / "alpha.1001.exr"
    target.write_bytes(b"previous frame")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a fr")
        raise RuntimeError("killed mid-write")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a fr")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"previous frame"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alpha.1001.exr"]


def test_temp_is_hidden_unique_and_keeps_the_extension(tmp_path: Path) -> None:
    a, b = temp_name(tmp_path / "plot.png"), temp_name(tmp_path / "plot.png")
    assert a != b and a.parent == tmp_path and a.name.startswith(".plot.png.") and a.suffix == ".png"


def test_permissions_follow_the_umask_not_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "template.yaml", "x")
    finally:
        os.umask(old)
    # other users (farm workers, the comp) can read what vom writes: no 0600 from mkstemp
    assert stat.S_IMODE((tmp_path / "template.yaml").stat().st_mode) == 0o644


def test_a_dead_writers_temp_is_removed_by_the_next_write_others_are_kept(tmp_path: Path) -> None:
    """SIGKILL leaves the temporary of the file in flight; the next write of that file removes it when its
    writer ran on this host and is gone. A live process's temp, another host's and other files stay."""
    import subprocess
    import sys

    from vom_plugin import atomic

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    target = tmp_path / "alpha.1001.exr"
    stale = tmp_path / f".alpha.1001.exr.{atomic._HOST}~{dead_pid}-0123abcd.tmp.exr"
    live = tmp_path / f".alpha.1001.exr.{atomic._HOST}~{os.getpid()}-0123abcd.tmp.exr"
    other_host = tmp_path / f".alpha.1001.exr.{atomic._HOST}x~{dead_pid}-0123abcd.tmp.exr"
    other_frame = tmp_path / f".alpha.1002.exr.{atomic._HOST}~{dead_pid}-0123abcd.tmp.exr"
    user_file = tmp_path / f".alpha.1001.exr.{atomic._HOST}~{dead_pid}-notours.tmp.exr"
    for p in (stale, live, other_host, other_frame, user_file):
        p.write_bytes(b"half a frame")
    write_text_atomic(target, "frame")
    assert not stale.exists()
    assert all(p.read_bytes() == b"half a frame" for p in (live, other_host, other_frame, user_file))
    assert target.read_text() == "frame"
    assert temp_name(target).name.startswith(f".alpha.1001.exr.{atomic._HOST}~{os.getpid()}-")
    # another host's untouched for over an hour: a farm task killed there and retried here (a QA pass found one
    # left for good beside the frames); a live one of this host stays however old
    import time

    old = time.time() - atomic.OTHER_HOST_STALE_S - 60
    for p in (other_host, live, user_file):
        os.utime(p, (old, old))
    write_text_atomic(target, "frame again")
    assert not other_host.exists() and live.exists() and user_file.exists()


def test_a_folder_sweep_removes_every_dead_writers_temp_and_keeps_the_rest(tmp_path: Path) -> None:
    """``remove_stale_temps_in``: what ``remove_stale_temps`` removes for one file, for every file of the folder
    in one listing; ``atomic_path(sweep=False)`` (a render's frames, after that sweep) lists nothing."""
    import subprocess
    import sys

    from vom_plugin import atomic

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = [tmp_path / f".alpha.{f}.exr.{atomic._HOST}~{dead_pid}-0123abcd.tmp.exr" for f in (1001, 1002)]
    kept = [tmp_path / f".alpha.1003.exr.{atomic._HOST}~{os.getpid()}-0123abcd.tmp.exr",  # a live writer
            tmp_path / f".alpha.1003.exr.{atomic._HOST}x~{dead_pid}-0123abcd.tmp.exr",  # another host
            tmp_path / f".alpha.1003.exr.{atomic._HOST}~{dead_pid}-0123abcd.tmp.png",  # not its extension
            tmp_path / f".alpha.1003.exr.{atomic._HOST}~{dead_pid}-notours.tmp.exr",
            # not an EXR's (the sweep is an output folder's, of EXRs): a user's notes named alike (QA)
            tmp_path / f".shot.yaml.{atomic._HOST}~{dead_pid}-89abcdef.tmp.yaml",
            tmp_path / "alpha.1003.exr", tmp_path / ".hidden"]
    for p in stale + kept:
        p.write_bytes(b"\x76\x2f\x31\x01half a frame")
    notes = tmp_path / f".alpha.1004.exr.{atomic._HOST}~{dead_pid}-0123abcd.tmp.exr"  # an EXR's name, not its bytes
    notes.write_bytes(b"my notes")
    kept.append(notes)
    empty = tmp_path / f".alpha.1005.exr.{atomic._HOST}~{dead_pid}-0123abcd.tmp.exr"  # killed as it was made
    empty.write_bytes(b"")
    stale.append(empty)
    target = tmp_path / "alpha.1001.exr"
    with atomic_path(target, sweep=False) as tmp:
        tmp.write_text("frame")
    assert all(p.exists() for p in stale)  # not swept by a write that was told the folder is swept
    assert sorted(atomic.remove_stale_temps_in(tmp_path)) == sorted(stale)
    assert not any(p.exists() for p in stale)
    assert all(p.read_bytes() in (b"\x76\x2f\x31\x01half a frame", b"my notes") for p in kept)
    assert target.read_text() == "frame"
    assert atomic.remove_stale_temps_in(tmp_path / "missing") == []


def test_a_temp_of_another_pid_namespace_with_this_hosts_short_name_is_never_swept(tmp_path: Path) -> None:
    """Two containers of one farm node (or node01.rackA and node01.rackB) share a short host name, not a PID
    namespace: a pid that is dead here may be a live writer there, so its temporaries are not this host's."""
    import subprocess
    import sys

    from vom_plugin import atomic

    short = atomic._HOST.split("-")[0]
    assert atomic._HOST != short and atomic._HOST.startswith(short + "-")
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    other_ns = tmp_path / f".alpha.1001.exr.{short}-00000000~{dead}-0123abcd.tmp.exr"
    legacy = tmp_path / f".alpha.1001.exr.{short}~{dead}-0123abcd.tmp.exr"  # as earlier versions named it
    for p in (other_ns, legacy):
        p.write_bytes(b"another container's frame in flight")
    write_text_atomic(tmp_path / "alpha.1001.exr", "frame")
    assert atomic.remove_stale_temps_in(tmp_path) == []
    assert other_ns.exists() and legacy.exists()


def test_the_temp_of_a_long_name_stays_within_255_bytes_and_is_swept(tmp_path: Path) -> None:
    import subprocess
    import sys

    from vom_plugin import atomic

    name = "a" * 230 + ".1001.exr"  # 239 bytes: a legal name whose temporary used to pass 255
    tmp = temp_name(tmp_path / name)
    assert len(tmp.name.encode()) <= 255 and tmp.suffix == ".exr" and tmp.name.startswith(".aaaa")
    write_text_atomic(tmp_path / name, "frame")
    assert (tmp_path / name).read_text() == "frame"
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    stale = tmp.with_name(tmp.name.replace(f"~{os.getpid()}-", f"~{dead}-"))
    stale.write_bytes(b"half")
    assert atomic.remove_stale_temps(tmp_path / name) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_the_temp_of_a_long_name_is_cut_between_characters(tmp_path: Path) -> None:
    """QA: a 170-byte name of two-byte characters was cut inside one: the temporary's name held a surrogate escape,
    which OpenImageIO refused (a TypeError, exit 1, after the frame was computed)."""
    from vom_plugin import atomic

    for lead in ("x", ""):
        name = lead + "\u00e9" * 80 + ".1001.exr"
        tmp = temp_name(tmp_path / name)
        tmp.name.encode("utf-8")  # whole characters only
        assert len(tmp.name.encode()) <= 255 and tmp.name.startswith("." + lead + "\u00e9")
        write_text_atomic(tmp_path / name, "frame")
        assert (tmp_path / name).read_text() == "frame"
        stale = tmp.with_name(tmp.name.replace(f"~{os.getpid()}-", "~999999999-"))
        stale.write_bytes(b"half")
        assert atomic.remove_stale_temps(tmp_path / name) == [stale]


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "alpha.1001.exr"
    target.write_text("old")
    target.chmod(0o664)  # group-writable, as a show's folder has it
    old = os.umask(0o022)
    try:
        write_text_atomic(target, "new")
    finally:
        os.umask(old)
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o664


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="giving a file another group needs root")
def test_a_replaced_file_keeps_its_group(tmp_path: Path) -> None:
    target = tmp_path / "alpha.1001.exr"
    target.write_text("old")
    os.chown(target, -1, 12345)  # the show's group
    target.chmod(0o640)
    write_text_atomic(target, "new")
    assert target.read_text() == "new" and target.stat().st_gid == 12345
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_the_bytes_reach_the_disk_before_the_rename_shows_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync of the temporary, holding the whole content, before os.replace (a farm file server or a power cut
    must never leave a named frame without its bytes); fsync=False skips it."""
    from vom_plugin import atomic

    order: list[tuple[str, bytes]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        order.append(("fsync", os.pread(fd, 100, 0)))
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        order.append(("replace", b""))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    write_text_atomic(tmp_path / "job.yaml", "whole\n")
    assert order == [("fsync", b"whole\n"), ("replace", b"")]
    order.clear()
    write_text_atomic(tmp_path / "job.yaml", "again\n", fsync=False)
    assert order == [("replace", b"")]
