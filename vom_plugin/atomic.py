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


def remove_stale_temps(path: str | os.PathLike[str]) -> list[Path]:
    """Remove vom's temporaries of ``path`` whose writer was a process of this host that is no longer running
    (killed mid-write); those of live processes and of other hosts are left. Returns what was removed."""
    path = Path(path)
    prefix = f".{path.name}."
    pattern = re.compile(re.escape(prefix) + r"(?P<host>[A-Za-z0-9_-]+)~(?P<pid>\d+)-[0-9a-f]{8}\.tmp"
                         + re.escape(path.suffix) + "$")
    removed = []
    try:
        entries = [e.name for e in os.scandir(path.parent) if e.name.startswith(prefix)]
    except OSError:
        return removed
    for name in entries:
        m = pattern.match(name)
        if m is None or m["host"] != _HOST or _running(int(m["pid"])):
            continue
        with contextlib.suppress(OSError):
            (path.parent / name).unlink()
            removed.append(path.parent / name)
    return removed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; on leaving the block it replaces ``path``.

    ``fsync``: the bytes reach the disk before the rename makes them visible (farm file servers, power
    loss); a reader then never sees a named file with missing content. The temporary file is created by
    the caller's writer, so it gets the usual permissions (umask), not a private 0600 mode.
    """
    target = Path(path)
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
