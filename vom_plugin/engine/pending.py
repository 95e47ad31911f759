"""Predictions waiting for others, kept off the heap.

A frame is delivered once every pass of every object has predicted it: a frame between two keyframes waits for
the second pass, and an object whose keyframes differ from the first object's runs its passes after them, so the
first object's predictions of the whole shot wait. Held as arrays they grew with the wait (1 MB a frame at
960x544, twice that with the masks: 1-2 GB over 1000 frames) where a render's memory is otherwise flat. The newest
are kept as they came (objects predicted side by side are taken back at the same step); older ones are compressed
(zstd, or zlib where it is not installed; lossless: the values come back bit for bit) and, past a budget, moved to
an unlinked temporary file (``tempfile``'s folder: ``TMPDIR``), which the system removes however the process ends.
Where that folder cannot take them (full, read-only), they stay in memory and ``file_error`` says why.
"""

from __future__ import annotations

import contextlib
import errno
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

# the newest parts as they came (a few dozen frames at the default working size), then compressed ones in memory
# (a few hundred), then the file
RAW_BUDGET = 32 << 20
RAM_BUDGET = 64 << 20


@dataclass(eq=False)
class _Array:
    shape: tuple[int, ...]
    dtype: np.dtype
    raw: np.ndarray | None = None  # as it came
    data: bytes | None = None  # compressed, in memory
    offset: int = 0  # else compressed, ``size`` bytes at ``offset`` of the file
    size: int = 0


class PendingStore:
    """Parts (the pass, an alpha, a mask or None) by key (object, frame), in arrival order."""

    def __init__(self, ram_budget: int | None = None, raw_budget: int | None = None) -> None:
        self._parts: dict[Any, list[tuple[Any, _Array, _Array | None]]] = {}
        self._raw_budget = RAW_BUDGET if raw_budget is None else raw_budget
        self._budget = RAM_BUDGET if ram_budget is None else ram_budget
        self._raw: dict[int, _Array] = {}  # the arrays held as they came, oldest first
        self._raw_bytes = 0
        self._in_ram = 0
        self._file: IO[bytes] | None = None
        self._end = 0  # the file's next free byte
        self._in_file = 0  # arrays in the file not yet taken: none left, it is written from its start again
        self._codec: tuple[Callable[[Any], bytes], Callable[[bytes, int], bytes]] | None = None  # at the first part
        # why the file could not take parts (they were then held in memory): for the render's warnings
        self.file_error: str | None = None

    def count(self, key: Any) -> int:
        return len(self._parts.get(key, ()))

    def __len__(self) -> int:
        return len(self._parts)

    @property
    def bytes_in_memory(self) -> int:
        """What the parts hold in memory: those kept as they came and the compressed ones."""
        return self._raw_bytes + self._in_ram

    def add(self, key: Any, source: Any, alpha: np.ndarray, mask: np.ndarray | None) -> None:
        """Keep a part of ``key``."""
        self._parts.setdefault(key, []).append((source, self._keep(alpha), None if mask is None else self._keep(mask)))

    def take(self, key: Any) -> list[tuple[Any, np.ndarray, np.ndarray | None]]:
        """``key``'s parts, as they were added, and forget them."""
        parts = self._parts.pop(key, [])
        return [(source, self._load(a), None if m is None else self._load(m)) for source, a, m in parts]

    def close(self) -> None:
        self.file_error = None
        self._parts.clear()
        self._raw.clear()
        self._raw_bytes = self._in_ram = self._end = self._in_file = 0
        if self._file is not None:
            with contextlib.suppress(OSError):  # unbuffered, it has nothing to flush; an error must not hide the
                self._file.close()  # one that ended the render
            self._file = None

    def _keep(self, array: np.ndarray) -> _Array:
        array = np.ascontiguousarray(array)
        kept = _Array(array.shape, array.dtype, raw=array)
        self._raw[id(kept)] = kept
        self._raw_bytes += array.nbytes
        while self._raw_bytes > self._raw_budget:  # the oldest first: the longest to wait, as a rule
            self._pack(self._raw.pop(next(iter(self._raw))))
        return kept

    def _pack(self, kept: _Array) -> None:
        """Compress an array kept as it came; in memory within the budget, else in the file."""
        assert kept.raw is not None
        if self._codec is None:
            self._codec = _codec()
        data = self._codec[0](kept.raw)
        self._raw_bytes -= kept.raw.nbytes
        kept.raw, kept.data = None, data  # in memory until it is on disk
        if self._in_ram + len(data) <= self._budget or self.file_error is not None:
            self._in_ram += len(data)
            return
        try:
            if self._file is None:
                # unbuffered: a write that fails (a full disk) fails here, not at a later seek, read or close
                self._file = tempfile.TemporaryFile(prefix="vom-pending-", buffering=0)
            if self._in_file == 0:
                self._end = 0
            self._file.seek(self._end)
            view, written = memoryview(data), 0
            while written < len(data):
                n = self._file.write(view[written:])
                if not n:
                    raise OSError(errno.ENOSPC, "nothing written")
                written += n
        except OSError as e:  # a full or unwritable temporary folder: held in memory, as before the file existed
            self.file_error = f"{_temp_folder()}: {e.strerror or e}"
            self._in_ram += len(data)
            return
        kept.data, kept.offset, kept.size = None, self._end, len(data)
        self._end += len(data)
        self._in_file += 1

    def _load(self, kept: _Array) -> np.ndarray:
        if kept.raw is not None:
            del self._raw[id(kept)]
            self._raw_bytes -= kept.raw.nbytes
            return kept.raw
        if kept.data is not None:
            self._in_ram -= len(kept.data)
            data = kept.data
        else:
            assert self._file is not None
            self._file.seek(kept.offset)
            data = self._file.read(kept.size)
            if len(data) != kept.size:
                raise OSError(f"vom's temporary file of pending predictions ended at byte {kept.offset + len(data)}"
                              f" where {kept.offset + kept.size} were written")
            self._in_file -= 1
        assert self._codec is not None
        raw = self._codec[1](data, int(np.prod(kept.shape)) * kept.dtype.itemsize)
        return np.frombuffer(raw, dtype=kept.dtype).reshape(kept.shape)  # read-only: blended into new arrays


def _temp_folder() -> str:
    """The temporary folder, for a message: ``tempfile.gettempdir()``, which raises where there is none."""
    try:
        return tempfile.gettempdir()
    except OSError as e:
        return f"no temporary folder ({e})"


def _codec() -> tuple[Callable[[Any], bytes], Callable[[bytes, int], bytes]]:
    """(compress, decompress(data, size)): zstd, ~1 ms for 1 MB, far below a step; where it is not installed
    (training's environment on a lent GPU machine needs none of the render's modules) the standard library's zlib."""
    try:
        import zstandard
    except ImportError:
        import zlib

        return (lambda b: zlib.compress(b, 1)), (lambda data, _size: zlib.decompress(data))
    c, d = zstandard.ZstdCompressor(level=1), zstandard.ZstdDecompressor()
    # copied out at its own size: python-zstandard's result keeps the allocation of the worst case (the input's
    # size and more), so a part of 150 kB held 1 MB
    return ((lambda b: memoryview(c.compress(b)).tobytes()),
            (lambda data, size: d.decompress(data, max_output_size=size)))
