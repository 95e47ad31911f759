"""glibc's allocator told to keep the memory a frame frees for the next frame (Linux, vom's own processes).

Every frame allocates and frees the same large temporaries (full-resolution maps: 13 MB at 864x480, 67 MB at
1920x1088). By default glibc serves blocks above its mmap threshold (128 kB, raised on the fly up to 32 MB)
with fresh ``mmap``s, and hands memory at the top of its heap back to the system once more than twice the
largest freed block lies free there; either way the next frame takes fresh pages from the kernel: a page
fault per 4 kB, zero-filled, with both of torch's threads waiting: a large part of the decoder's time a
frame, and of the full-resolution head's.

``keep_freed_memory`` raises the mmap threshold (256 MB where glibc accepts it, else its 64-bit ceiling of
32 MB), the trim threshold and the heap's growth step, so freed blocks stay in the heap for the next frame.
It grows to the render's peak and stays there, flat over the shot (the README has what it costs in
resident memory). ``release_freed_memory`` gives it back (a
``vom worker`` between renders). Only a process that is vom's calls it (``cli.entry``: every ``vom``
command, a farm task, a worker): a host application's allocator is left alone, and a pipeline's own Python
process may call it. Nothing is changed where the user set glibc's MALLOC_* variables or GLIBC_TUNABLES,
outside glibc, or on other systems.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

MMAP_THRESHOLDS = (256 << 20, 32 << 20)  # blocks below this come from the heap (older glibc caps it at 32 MB)
TRIM_THRESHOLD = 512 << 20  # free memory kept at the heap's top before it is returned
TOP_PAD = 64 << 20  # extra asked of the OS per heap growth, so a growing heap grows in fewer steps
# mallopt(3) parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
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
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return libc


def _tune(libc: ctypes.CDLL) -> bool:
    # mallopt returns 1 on success, 0 on a refused value (which leaves that parameter as it was)
    if not any(libc.mallopt(_M_MMAP_THRESHOLD, v) == 1 for v in MMAP_THRESHOLDS):
        return False
    return libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and libc.mallopt(_M_TOP_PAD, TOP_PAD) == 1


def keep_freed_memory() -> bool:
    """Tune the allocator once per process (see the module docstring); whether it is tuned."""
    with _lock:
        if "kept" not in _state:
            libc = None if any(v in os.environ for v in _USER_SETTINGS) else _libc()
            _state["kept"] = libc is not None and _tune(libc)
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
    what ``keep_freed_memory`` keeps on purpose (up to ``TRIM_THRESHOLD`` at a heap's top, more between live blocks),
    and it moves the process's resident set without anything growing per frame."""
    libc = _libc()
    info = getattr(libc, "mallinfo2", None) if libc is not None else None
    if info is None:
        return None
    info.restype = _MallInfo2
    m = info()
    return (m.uordblks + m.hblkhd) / 2**20, m.fordblks / 2**20
