"""engine.allocator: freed memory stays in the heap for the next frame, and the user's malloc settings win."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vom_plugin.engine.allocator import _libc

pytestmark = pytest.mark.skipif(_libc() is None, reason="the allocator is tuned on Linux with glibc only")

# A frame's pattern: two 16 MB temporaries written, then both freed (32 MB free at the heap's top), 20 times.
_LOOP = """
import resource, sys
import numpy as np
from vom_plugin.engine.allocator import keep_freed_memory, release_freed_memory
tuned = keep_freed_memory() if sys.argv[1] == "1" else False
def frame():
    a = np.ones(4 << 20, np.float32); b = np.ones(4 << 20, np.float32)
    return float(a[-1] + b[-1])
frame()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    frame()
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
release_freed_memory()
"""


def _run(tune: str, **env: str) -> tuple[bool, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", _LOOP, tune], env={**clean, **env}, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0] == "True", int(out[1])


def test_freed_frames_are_reused_without_page_faults() -> None:
    tuned, faults = _run("1")
    untuned, faults_before = _run("0")
    assert tuned and not untuned
    # untuned, every frame faulted fresh pages in again (about 1,000 a frame measured); tuned, none
    assert faults_before > 20 * 500
    assert faults < 500


def test_the_users_malloc_settings_win() -> None:
    tuned, faults = _run("1", MALLOC_TRIM_THRESHOLD_="0")
    assert not tuned
    assert faults > 20 * 500  # trimmed as glibc does by default, as the user asked
