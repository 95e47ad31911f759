"""glibc's allocator told to keep the memory a frame frees for the next frame (Linux).

A frame's large temporaries (13 MB full-resolution maps at 864x480) are freed and allocated again many times
a frame. By default glibc hands memory at the top of its heap back to the system once more than twice the
largest freed block lies free there, so the next allocation of that size takes fresh pages from the kernel:
a page fault per 4 kB, with both of torch's threads waiting. Measured on the 2-core dev VM at 864x480: the
decoder took 46-48 ms a frame with 10,500-10,900 page faults, 33-35 ms with none; the full-resolution head
alone 15.6 ms against 8.2 ms.

``keep_freed_memory`` raises the trim threshold (and fixes the mmap threshold at glibc's largest, so the
dynamic adjustment cannot lower it again): the heap keeps up to ``TRIM_MB`` of freed memory. It grows to the
render's peak and stays there, flat over the shot (measured peak RSS of renders in one process: 530 -> 600 MB
at 480x270, 830 -> 920 MB at 864x480; ``vom bench --size 480``: 524 MB after 10 frames, 541 MB after 30).
``release_freed_memory`` gives it back (a ``vom worker`` between renders). Nothing is changed where the user
set glibc's MALLOC_* variables or GLIBC_TUNABLES, outside glibc, or on other systems.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

TRIM_MB = 256
MMAP_MB = 32  # glibc's own ceiling for its dynamic mmap threshold on 64-bit systems
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")

_lock = threading.Lock()
_state: dict[str, bool] = {}


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the C library this process already runs on
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl's mallopt does nothing)
        return libc
    except (OSError, AttributeError):
        return None


def keep_freed_memory() -> bool:
    """Tune the allocator once per process (see the module docstring); whether it is tuned."""
    with _lock:
        if "kept" not in _state:
            libc = None if any(v in os.environ for v in _USER_SETTINGS) else _libc()
            _state["kept"] = bool(libc is not None
                                  and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_MB << 20)
                                  and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_MB << 20))
        return _state["kept"]


def release_freed_memory() -> None:
    """Hand the freed memory the heap keeps back to the system (after a render, before waiting for the next)."""
    if _state.get("kept"):
        libc = _libc()
        if libc is not None:
            libc.malloc_trim(0)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def heap_mb() -> tuple[float, float] | None:
    """(MB that malloc has handed out and not had back, MB freed but kept in its heaps) from glibc's
    ``mallinfo2``; None without it (glibc < 2.33, other systems). What a leak grows is the first: the second is
    what ``keep_freed_memory`` keeps on purpose (up to ``TRIM_MB`` at a heap's top, more between live blocks),
    and it moves the process's resident set without anything growing per frame."""
    libc = _libc()
    info = getattr(libc, "mallinfo2", None) if libc is not None else None
    if info is None:
        return None
    info.restype = _MallInfo2
    m = info()
    return (m.uordblks + m.hblkhd) / 2**20, m.fordblks / 2**20
