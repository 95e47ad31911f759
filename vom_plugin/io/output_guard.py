"""An output never lands on an input: checks made on the files themselves, before anything is written.

Comparing pattern strings is not enough: ``plate.%04d.exr`` and ``plate.####.exr`` name the same files, as
do a symlinked folder, a ``..`` detour, a hard link, or another case on a file system that folds it. So each
output frame's path is compared with every input file twice: by identity (``st_dev``, ``st_ino``), which sees
through links and case folding whenever the output already exists, and by normalised real path (symlinks
and ``..`` resolved, case folded where the platform folds it), which needs no file at all.

Folders are checked without being created (``check_output_folder``): a render refused for any reason
leaves no trace on disk; the renderer creates the folder once every check has passed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from vom_plugin.errors import InputError
from vom_plugin.io.sequence import frame_path


def _identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    try:
        st = os.stat(path)  # follows links: a link to the plate is the plate
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.normcase(os.path.realpath(os.path.abspath(os.fspath(path))))


class ProtectedFiles:
    """The files a render reads (plate frames, rotos, shot file, weights), each with a label for messages."""

    def __init__(self) -> None:
        self._by_id: dict[tuple[int, int], tuple[str, Path]] = {}
        self._by_path: dict[str, tuple[str, Path]] = {}

    def add(self, label: str, path: str | os.PathLike[str]) -> None:
        p = Path(path)
        ident = _identity(p)
        if ident is not None:
            self._by_id.setdefault(ident, (label, p))
        self._by_path.setdefault(_real(p), (label, p))

    def add_all(self, label: str, paths: Iterable[str | os.PathLike[str]]) -> None:
        for p in paths:
            self.add(label, p)

    def match(self, path: str | os.PathLike[str]) -> tuple[str, Path] | None:
        """(label, input path) when ``path`` is, or would overwrite, one of the protected files."""
        ident = _identity(path)
        if ident is not None and ident in self._by_id:
            return self._by_id[ident]
        return self._by_path.get(_real(path))


def check_outputs(out_pattern: str, frames: Iterable[int], protected: ProtectedFiles) -> None:
    """InputError naming the frame and both files when an output frame is a protected file, or a folder."""
    for frame in frames:
        path = frame_path(out_pattern, frame)
        hit = protected.match(path)
        if hit is not None:
            label, source = hit
            raise InputError(f"out {out_pattern!r}: frame {frame} would be written to {path}, which is the {label} "
                             f"{source}; the render would overwrite its own input. Choose another output pattern")
        try:
            is_dir = stat.S_ISDIR(os.stat(path).st_mode)
        except OSError:
            is_dir = False
        if is_dir:
            raise InputError(f"out {out_pattern!r}: frame {frame} would be written to {path}, which is a folder")


def check_output_folder(out_path: str | os.PathLike[str]) -> Path:
    """The folder of ``out_path`` can be created (or exists) and written; checked without creating anything.

    Returns the folder. InputError names it and the reason otherwise.
    """
    folder = Path(os.path.abspath(os.fspath(out_path))).parent
    probe = folder
    while not os.path.lexists(probe):
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        what = "is a file" if probe.exists() else "does not exist"
        if probe == folder:
            raise InputError(f"output folder {folder} cannot be created: it {what}")
        raise InputError(f"output folder {folder} cannot be created: {probe} {what}")
    if not os.access(probe, os.W_OK | os.X_OK):
        if probe == folder:
            raise InputError(f"output folder {folder} is not writable")
        raise InputError(f"output folder {folder} cannot be created: {probe} is not writable")
    return folder
