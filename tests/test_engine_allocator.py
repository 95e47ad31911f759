"""engine.allocator: freed memory stays in the heap for the next frame, in vom's processes only, and the user's
malloc settings win."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vom_plugin.engine import allocator
from vom_plugin.engine.allocator import _libc

ROOT = Path(__file__).resolve().parents[1]
glibc_only = pytest.mark.skipif(_libc() is None, reason="the allocator is tuned on Linux with glibc only")

# A frame's pattern: temporaries written, then freed (at the heap's top), 20 times: two 16 MB maps (864x480)
# and one 64 MB map (an 8-channel float map at 1920x1088, above glibc's 32 MB mmap ceiling of old).
_LOOP = """
import resource, sys
import numpy as np
from vom_plugin.engine.allocator import keep_freed_memory, release_freed_memory
tuned = keep_freed_memory() if sys.argv[1] == "1" else False
def frame():
    a = np.ones(4 << 20, np.float32); b = np.ones(4 << 20, np.float32); c = np.ones(16 << 20, np.float32)
    return float(a[-1] + b[-1] + c[-1])
frame()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    frame()
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
release_freed_memory()
"""


def _clean_env(**env: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    return {**clean, "PYTHONPATH": str(ROOT), **env}


def _run(tune: str, **env: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", _LOOP, tune], env=_clean_env(**env), capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0] == "True", int(out[1])


@glibc_only
def test_freed_frames_are_reused_without_page_faults() -> None:
    tuned, faults = _run("1")
    untuned, faults_before = _run("0")
    assert tuned and not untuned
    # untuned, every frame faulted its maps in afresh (about 1,500 faults a frame measured, numpy's large arrays
    # partly in 2 MB pages); tuned, none: with glibc's old 32 MB mmap ceiling the 64 MB map alone would fault
    assert faults_before > 20 * 500
    assert faults < 500


@glibc_only
def test_the_users_malloc_settings_win() -> None:
    tuned, faults = _run("1", MALLOC_TRIM_THRESHOLD_="0")
    assert not tuned
    assert faults > 20 * 500  # trimmed and mmapped as glibc does by default, as the user asked


@glibc_only
def test_a_vom_process_is_tuned_and_an_importing_one_is_not() -> None:
    # `vom` (cli.entry) tunes its own process; importing vom and rendering from a host's Python does not
    probe = ("import atexit, sys\n"
             "from vom_plugin.engine import allocator\n"
             "atexit.register(lambda: print('kept', allocator._state.get('kept')))\n"
             "sys.argv = ['vom', '--version']\n"
             "from vom_plugin.cli import entry\n"
             "entry()\n")
    done = subprocess.run([sys.executable, "-c", probe], env=_clean_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "kept True"
    probe = ("from vom_plugin.engine import allocator, device\n"
             "import vom_plugin.engine.runner, torch\n"
             "device.prepare_model(torch.nn.Conv2d(1, 1, 1), torch.device('cpu'))\n"
             "print('kept', allocator._state.get('kept'))\n")
    done = subprocess.run([sys.executable, "-c", probe], env=_clean_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["kept", "None"]


def test_not_applied_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    monkeypatch.setattr(allocator, "_state", {})
    assert allocator.keep_freed_memory() is False
    allocator.release_freed_memory()  # nothing kept: nothing to hand back, no error
