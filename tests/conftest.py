"""Shared fixtures. Tests run on the CPU with small sizes; nothing here needs a GPU or the network."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

_TORCH_THREADS = torch.get_num_threads()  # torch's default here, before any test sets it

# Tests need nothing outside the checkout: data is made by the tests or ships in it (the demo shot,
# vom_plugin/data/demo, is the furry_cube validation shot).
REPO = Path(__file__).resolve().parents[1]

# Two cores are shared by the whole suite; keep torch from oversubscribing them.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Waiting threads sleep instead of spinning: on the shared, oversubscribed machine spinning made a
# 60-frame propagation test take 21 s instead of 1.9 s (see vom_plugin/engine/__init__.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# A `vom render --start-worker` (what the Nuke and Blender nodes run) started by a test starts its worker
# here, never on the user's own socket, and is stopped after that test: a worker left listening would take
# the renders of later tests.
_WORKER_DIR = Path(tempfile.mkdtemp(prefix="vom-test-worker-"))  # 0700
os.environ["VOM_WORKER_SOCKET"] = str(_WORKER_DIR / "worker.sock")
# A render a test leaves on the default cache (no --cache) writes here, not to the user's ~/.cache/vom: the
# suite left its shots there, each naming a plate under /tmp/pytest-of-*.
_USER_CACHE = Path(tempfile.mkdtemp(prefix="vom-test-cache-"))
os.environ["VOM_CACHE_DIR"] = str(_USER_CACHE)


def stop_started_workers(folder: Path = _WORKER_DIR) -> list[int]:
    """SIGTERM every worker that logged its start in a log of ``folder`` (``<socket>.log``) and wait for it; their
    pids."""
    pids = [int(p) for log in sorted(folder.glob("*.log")) if log.is_file()
            for p in re.findall(r"\(pid (\d+),", log.read_text(errors="replace"))]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
    for log in folder.glob("*.log"):
        log.unlink(missing_ok=True)
    return pids


@pytest.fixture(autouse=True)
def _no_worker_left_behind() -> Iterator[None]:
    yield
    stop_started_workers()


@pytest.fixture(autouse=True)
def _torch_threads_as_they_were() -> Iterator[None]:
    # `vom train --threads 1` run in-process sets torch's thread count for the whole process; a render compared
    # with a subprocess's (which has torch's default) must sum in the same order
    yield
    import torch

    if torch.get_num_threads() != _TORCH_THREADS:
        torch.set_num_threads(_TORCH_THREADS)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop_started_workers()
    shutil.rmtree(_WORKER_DIR, ignore_errors=True)
    shutil.rmtree(_USER_CACHE, ignore_errors=True)


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def python() -> str:
    return sys.executable


@pytest.fixture
def inst() -> types.ModuleType:
    """install.py loaded as a module (it is a script next to the package, not part of it)."""
    spec = importlib.util.spec_from_file_location("vom_install_under_test", REPO / "install.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def small_clip() -> tuple[np.ndarray, np.ndarray]:
    """Five 64x48 noise frames and a box roto: enough for memory writes and reads past the keyframe's."""
    rng = np.random.default_rng(0)
    frames = rng.random((5, 48, 64, 3)).astype(np.float32)
    roto = np.zeros((48, 64), np.float32)
    roto[10:30, 20:40] = 1
    return frames, roto


@pytest.fixture
def tiny_calibration(monkeypatch):
    """`vom train --calibrate` on a tiny selection set: returns ``args(weights, frames)``, which makes the
    synthetic set 2 clips of ``frames`` frames (one guided filter candidate: radius 2, eps 1e-3) and gives the
    command line up to --to, at 32 px on one thread with no full-difficulty or long clips."""
    from vom_plugin.train import validate as V

    real = V.synthetic_valsets
    monkeypatch.setattr(V, "GUIDED_RADII", (2,))
    monkeypatch.setattr(V, "GUIDED_EPS", (1e-3,))

    def args(weights: Path, frames: int) -> list[str]:
        monkeypatch.setattr(V, "synthetic_valsets", lambda n, f, size: real(2, frames, size))
        return ["train", "--calibrate", str(weights), "--size", "32", "--threads", "1", "--val-hard", "0",
                "--val-long", "0"]

    return args


@pytest.fixture
def pending_adds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, int]]:
    """The keys (object, frame) of the predictions a render put in its PendingStore to wait, in order."""
    from vom_plugin.engine import pending

    added: list[tuple[object, int]] = []
    real_add = pending.PendingStore.add

    def counting(self, key, *args):  # type: ignore[no-untyped-def]
        added.append(key)
        real_add(self, key, *args)

    monkeypatch.setattr(pending.PendingStore, "add", counting)
    return added
