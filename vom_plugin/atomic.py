"""Atomic file writes: a file appears whole under its name, or the old one stays; never half a file.

Every writer of vom (frames, weights, checkpoints, job bundles, the gizmo, plots, reports) goes through
``atomic_path``: the data is written to a hidden temporary file in the same folder, flushed to disk, and
renamed over the target (``os.replace``: atomic within a file system); on any error, or an interrupt, the
temporary file is removed and the target is untouched. A process killed outright (SIGKILL, power loss)
cannot clean up; the next atomic write of the same file removes such a temporary when it names this host and
a process that no longer runs here (``remove_stale_temps``). Stand-alone copies remain only where vom cannot be
imported: ``install.py`` and the Nuke adapter (``host/nuke.py``, standard library only inside Nuke).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

# The writer's host and process id are in every temporary's name, so that a later write can tell a temporary
# left by a dead process of this host (safe to remove) from one a live process, maybe on another farm host
# sharing the folder, is still writing (never touched).
_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname().split(".")[0])[:32] or "host"


def temp_name(path: str | os.PathLike[str]) -> Path:
    """A hidden name beside ``path``, unique across hosts, processes and threads, ending in the real extension
    (so writers that choose the format by extension, OpenImageIO, OpenCV, matplotlib, choose the right one)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{_HOST}~{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


# .NAME.HOST~PID-HEX.tmpEXT, as temp_name makes it (EXT: NAME's own extension, checked by the caller)
_TEMP = re.compile(r"\.(?P<name>.+)\.(?P<host>[A-Za-z0-9_-]+)~(?P<pid>\d+)-[0-9a-f]{8}\.tmp(?P<ext>(\.[^.]*)?)$")


def _remove_dead(folder: Path, names: list[str], target: str | None) -> list[Path]:
    """Remove those of ``names`` that are temporaries (of ``target``, or of any file when None) written by a
    process of this host that no longer runs."""
    removed = []
    for name in names:
        m = _TEMP.match(name)
        if (m is None or m["host"] != _HOST or (target is not None and m["name"] != target)
                or Path(m["name"]).suffix != m["ext"] or _running(int(m["pid"]))):
            continue
        with contextlib.suppress(OSError):
            (folder / name).unlink()
            removed.append(folder / name)
    return removed


def remove_stale_temps(path: str | os.PathLike[str]) -> list[Path]:
    """Remove vom's temporaries of ``path`` whose writer was a process of this host that is no longer running
    (killed mid-write); those of live processes and of other hosts are left. Returns what was removed."""
    path = Path(path)
    prefix = f".{path.name}."
    try:
        entries = [e.name for e in os.scandir(path.parent) if e.name.startswith(prefix)]
    except OSError:
        return []
    return _remove_dead(path.parent, entries, path.name)


def remove_stale_temps_in(folder: str | os.PathLike[str]) -> list[Path]:
    """``remove_stale_temps`` for every file of ``folder`` at once: one listing of the folder. A render sweeps
    its output folder once before its first frame and then writes frames with ``sweep=False``; a listing per
    frame grows with the shot (a 1000-frame folder: 0.8 ms a frame here, more on a file server)."""
    folder = Path(folder)
    try:
        entries = [e.name for e in os.scandir(folder) if e.name.startswith(".") and ".tmp" in e.name]
    except OSError:
        return []
    return _remove_dead(folder, entries, None)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True, sweep: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; on leaving the block it replaces ``path``.

    ``fsync``: the bytes reach the disk before the rename makes them visible (farm file servers, power
    loss); a reader then never sees a named file with missing content. ``sweep``: first remove the stale
    temporaries of ``path`` (``remove_stale_temps``); False where the caller swept the folder already
    (``remove_stale_temps_in``). The temporary file is created by the caller's writer, so it gets the usual
    permissions (umask), not a private 0600 mode.
    """
    target = Path(path)
    if sweep:
        remove_stale_temps(target)
    tmp = temp_name(target)
    try:
        yield tmp
        if fsync:
            _fsync(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> Path:
    with atomic_path(path, fsync=fsync) as tmp, open(tmp, "xb") as f:
        f.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str, *, fsync: bool = True) -> Path:
    """``text`` as UTF-8 at ``path``, atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"), fsync=fsync)
