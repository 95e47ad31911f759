"""engine.heap: a vom process reuses freed memory instead of faulting fresh pages in every frame."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A "frame" allocates, touches and frees ten 3 MB blocks (a frame's tensors); prints the minor page faults
# of frames 2-8. Untuned, glibc mmaps such blocks afresh and each frame faults in 7680 pages again.
_PROBE = r"""
import json, resource, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from vom_plugin.engine.heap import retain_freed_memory
applied = retain_freed_memory() if sys.argv[2] == "tuned" else None
def frame():
    blocks = [np.ones(3 << 20, np.uint8) for _ in range(10)]
    del blocks
frame()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(7):
    frame()
print(json.dumps({"applied": applied, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0}))
"""


def _probe(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE, str(ROOT), mode], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_freed_frames_are_reused_not_faulted_in_again():
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the C library is not glibc: retain_freed_memory leaves it alone")
    plain, tuned = _probe("plain"), _probe("tuned")
    assert tuned["applied"] is True
    pages = 7 * 10 * (3 << 20) // 4096
    assert plain["faults"] >= 0.5 * pages  # the blocks faulted in afresh, frame after frame
    assert tuned["faults"] < 0.05 * pages  # the first frame's pages reused


def test_not_applied_without_glibc(monkeypatch):
    from vom_plugin.engine import heap

    monkeypatch.setattr(heap.sys, "platform", "darwin")
    assert heap.retain_freed_memory() is False
