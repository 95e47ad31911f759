"""Atomic file writes: a file appears whole under its name, or the old one stays; never half a file.

Every writer of vom (frames, weights, checkpoints, job bundles, the gizmo, plots, reports) goes through
``atomic_path``: the data is written to a hidden temporary file in the same folder, flushed to disk, and
renamed over the target (``os.replace``: atomic within a file system); on any error, or an interrupt, the
temporary file is removed and the target is untouched. Stand-alone copies remain only where vom cannot be
imported: ``install.py`` and the Nuke adapter (``host/nuke.py``, standard library only inside Nuke).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


def temp_name(path: str | os.PathLike[str]) -> Path:
    """A hidden name beside ``path``, unique across processes and threads, ending in the real extension (so
    writers that choose the format by extension, OpenImageIO, OpenCV, matplotlib, choose the right one)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")


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
