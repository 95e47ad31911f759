"""The render's helper threads (EXR output, cache writes) run at the lowest CPU priority.

torch's OpenMP threads take every core, and between the many small operations of a frame they wait for
each other by spinning (a short spin, see ``vom_plugin._openmp_wait_default``). A helper thread at the same
priority that takes a core in the middle of that makes the spinning threads wait whole time slices for each
other, and the network runs many times slower. At nice 19 the helpers run in the gaps the network leaves and
wherever the render waits for them (a full output queue, the end of a render), so their work is still done, in
the same order, with nothing lost.

Only on Linux, where a thread has its own nice value; elsewhere (macOS: ``setpriority`` takes a process id)
nothing is changed. And only in vom's own processes (``vom render``, the worker: ``own_this_process``): the
threads OpenEXR and OpenImageIO start from a lowered thread (their pools, made at first use) inherit its nice
value and outlive the render, so a host calling ``render()`` did its own image I/O at nice 19 afterwards (QA).
"""

from __future__ import annotations

import os
import sys
import threading

HELPER_NICE = 19
_OWN_PROCESS = {"lower": False}


def own_this_process() -> None:
    """Called by vom's own entry points (the CLI): the process is vom's, its helper threads may be lowered."""
    _OWN_PROCESS["lower"] = True


def lower_this_thread() -> None:
    """``ThreadPoolExecutor`` initializer: the calling thread to nice ``HELPER_NICE`` (never raised)."""
    if not sys.platform.startswith("linux") or not _OWN_PROCESS["lower"]:
        return
    try:
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < HELPER_NICE:
            os.setpriority(os.PRIO_PROCESS, tid, HELPER_NICE)
    except (AttributeError, OSError):  # a sandbox that forbids it: the thread runs as it is
        pass
