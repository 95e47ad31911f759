"""Predictions waiting for another pass, kept off the heap.

A frame between two keyframes is delivered once both passes have predicted it, so the first pass's predictions of
the whole span wait for the second pass. Held as arrays they grew with the span (1 MB a frame at 960x544, twice
that with the masks: a 1000-frame span held 1-2 GB) where a render's memory is otherwise flat. Each is kept
compressed (zstd, lossless: the values come back bit for bit) and, past a budget, in an unlinked temporary file
(``tempfile``'s folder: ``TMPDIR``), which the system removes however the process ends.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import zstandard

# compressed bytes held in memory before parts go to the file: a few hundred frames at the default working size
RAM_BUDGET = 64 << 20


@dataclass
class _Array:
    shape: tuple[int, ...]
    dtype: np.dtype
    data: bytes | None  # in memory, or None: ``size`` bytes at ``offset`` of the file
    offset: int = 0
    size: int = 0


class PendingStore:
    """Parts (the pass, an alpha, a mask or None) by key (object, frame), in arrival order."""

    def __init__(self, ram_budget: int | None = None) -> None:
        self._parts: dict[Any, list[tuple[Any, _Array, _Array | None]]] = {}
        self._budget = RAM_BUDGET if ram_budget is None else ram_budget
        self._in_ram = 0
        self._file: IO[bytes] | None = None
        self._end = 0  # the file's next free byte
        self._in_file = 0  # arrays in the file not yet taken: none left, it is written from its start again
        self._compress = zstandard.ZstdCompressor(level=1)  # ~1 ms for 1 MB: far below a step
        self._decompress = zstandard.ZstdDecompressor()

    def count(self, key: Any) -> int:
        return len(self._parts.get(key, ()))

    def __len__(self) -> int:
        return len(self._parts)

    @property
    def bytes_in_memory(self) -> int:
        return self._in_ram

    def add(self, key: Any, source: Any, alpha: np.ndarray, mask: np.ndarray | None) -> None:
        """Keep a part of ``key``."""
        self._parts.setdefault(key, []).append((source, self._keep(alpha), None if mask is None else self._keep(mask)))

    def take(self, key: Any) -> list[tuple[Any, np.ndarray, np.ndarray | None]]:
        """``key``'s parts, as they were added, and forget them."""
        parts = self._parts.pop(key, [])
        return [(source, self._load(a), None if m is None else self._load(m)) for source, a, m in parts]

    def close(self) -> None:
        self._parts.clear()
        self._in_ram = self._end = self._in_file = 0
        if self._file is not None:
            self._file.close()
            self._file = None

    def _keep(self, array: np.ndarray) -> _Array:
        array = np.ascontiguousarray(array)
        data = self._compress.compress(array.tobytes())
        if self._in_ram + len(data) <= self._budget:
            self._in_ram += len(data)
            return _Array(array.shape, array.dtype, data)
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="vom-pending-")
        if self._in_file == 0:
            self._end = 0
        fd = self._file.fileno()
        written = 0
        while written < len(data):  # a short write (a full disk raises OSError instead)
            written += os.pwrite(fd, memoryview(data)[written:], self._end + written)
        kept = _Array(array.shape, array.dtype, None, self._end, len(data))
        self._end += len(data)
        self._in_file += 1
        return kept

    def _load(self, kept: _Array) -> np.ndarray:
        if kept.data is not None:
            self._in_ram -= len(kept.data)
            data = kept.data
        else:
            assert self._file is not None
            data = os.pread(self._file.fileno(), kept.size, kept.offset)
            if len(data) != kept.size:
                raise OSError(f"vom's temporary file of pending predictions ended at byte {kept.offset + len(data)}"
                              f" where {kept.offset + kept.size} were written")
            self._in_file -= 1
        raw = self._decompress.decompress(data, max_output_size=int(np.prod(kept.shape)) * kept.dtype.itemsize)
        return np.frombuffer(raw, dtype=kept.dtype).reshape(kept.shape)  # read-only: blended into new arrays
