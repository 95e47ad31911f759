"""Keep freed memory in a render process instead of handing it back to the OS after every frame.

Every frame allocates and frees the same large tensors (images, features, read-outs, the decoder's
activations). glibc's malloc serves blocks above its mmap threshold (128 kB, raised on the fly up to 32 MB)
with fresh ``mmap``s and trims its heap top back to the OS when it is freed, so each frame faults in the
same pages again: at 864x480 a re-render spent a third of its CPU time in the kernel zero-filling pages.
Raising the thresholds keeps those blocks in the heap for the next frame. Only for a process that vom
owns (``vom render``, ``vom demo``, a farm task): a host application's allocator is left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt(3) parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLDS = (256 << 20, 32 << 20)  # blocks below this come from the heap (older glibc caps it at 32 MB)
TRIM_THRESHOLD = 512 << 20  # free memory kept at the heap's top before it is returned
TOP_PAD = 64 << 20  # extra asked of the OS per heap growth, so a growing heap grows in fewer steps


def retain_freed_memory() -> bool:
    """Tune glibc's malloc to reuse freed memory (see the module's docstring). True if applied; False
    where the C library has no ``mallopt`` (macOS, musl) or refuses a value: then nothing changes."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 on a refused value (which leaves that parameter as it was)
    if not any(mallopt(_M_MMAP_THRESHOLD, v) == 1 for v in MMAP_THRESHOLDS):
        return False
    return mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and mallopt(_M_TOP_PAD, TOP_PAD) == 1
