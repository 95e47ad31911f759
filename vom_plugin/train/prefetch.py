"""Training batches made ahead, in worker processes.

A batch is a pure function of the run's seed and its step (``data.make_batch``: the step's own random
streams pick the clips, crops and roto), so workers may make them in any order and the loop still gets
exactly the batch it would have made itself: a run trains on the same batches whatever the worker count
(tested).

Why: on a GPU the network's step takes tens of milliseconds, and making a batch takes most of a second on
one core (4 clips x 10 frames at 224 px, most read from the rendered library and composited), so a loop that
makes its own batches leaves the accelerator waiting. On the 2-core development CPU the network's step takes
seconds and workers would only take cores from it, so there the default is none.
"""

from __future__ import annotations

import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vom_plugin.train.data import Batch, Curriculum, make_batch, network_encoder


@dataclass(frozen=True)
class BatchSpec:
    """Everything that decides a run's batches (what a worker needs to make them)."""

    data: str
    seed: int
    size: int
    frames: int
    batch: int
    curriculum: Curriculum
    library: Path | None = None
    library_share: float = 0.5

    def make(self, source: Any, step: int, encode: Any) -> tuple[Batch, float, bool]:
        """``make_batch``'s result for ``step`` of this run, from ``open_source(self)``'s source."""
        return make_batch(source, step, seed=self.seed, batch=self.batch, frames=self.frames,
                          size=(self.size, self.size), curriculum=self.curriculum, encode=encode)


def open_source(spec: BatchSpec) -> Any:
    """The run's clip source: ``--data``, mixed with the rendered library when there is one."""
    from vom_plugin.train.clips import with_library
    from vom_plugin.train.loop import make_source

    source = make_source(spec.data, spec.seed, spec.size, spec.frames)
    return with_library(source, spec.library, spec.library_share, spec.seed) if spec.library is not None else source


def default_workers(device: torch.device) -> int:
    """Workers when the run does not say: none on a CPU (they would take its cores from the network), on a GPU
    all cores but two (the loop's own thread and the system), at most 16."""
    if device.type == "cpu":
        return 0
    return max(1, min(16, (os.cpu_count() or 1) - 2))


_worker: dict[str, Any] = {}


def _die_with_parent(parent: int) -> None:
    """On Linux, SIGTERM this worker when the training process (``parent``) dies: killed with SIGKILL (the OOM
    killer, a farm's hard stop), it left its workers blocked forever, orphaned (QA)."""
    if not os.path.exists("/proc/self"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    # it died before the request took effect (the training process may itself be pid 1, in a container: review)
    if os.getppid() != parent:
        os._exit(1)


def _start_worker(spec: BatchSpec, parent: int) -> None:
    _die_with_parent(parent)
    # Ctrl-C reaches the terminal's whole process group: the training process checkpoints and stops the pool;
    # a worker killed by it first made the next batch raise KeyboardInterrupt there, and no checkpoint was written
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)  # one core per worker: the pool is the parallelism
    try:
        _worker.update(spec=spec, source=open_source(spec), encode=network_encoder())
    except Exception as e:  # raised by the first batch asked for: a failing initializer only breaks the pool
        _worker["error"] = e


def _make(step: int) -> tuple[Batch, float, bool]:
    if "error" in _worker:
        raise _worker["error"]
    return _worker["spec"].make(_worker["source"], step, _worker["encode"])


class BatchPrefetcher:
    """``get(step)`` returns ``make_batch``'s result for that step, made ahead by ``workers`` processes.

    Steps are asked for in increasing order (a resumed run starts anywhere); up to ``depth`` batches past the
    one asked for are in flight. A worker's error (an unreadable library clip) is raised by ``get``. Use as a
    context manager, or call ``close``; batches travel through shared memory (torch's tensor pickling)."""

    def __init__(self, spec: BatchSpec, workers: int, depth: int | None = None) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        import torch.multiprocessing as tmp

        # spawn, not fork: the parent's OpenMP threads do not survive a fork (workers would hang in torch ops)
        self._pool = ProcessPoolExecutor(workers, mp_context=tmp.get_context("spawn"), initializer=_start_worker,
                                         initargs=(spec, os.getpid()))
        self.depth = depth if depth is not None else 2 * workers
        self._futures: dict[int, Future] = {}

    def get(self, step: int) -> tuple[Batch, float, bool]:
        for s in [s for s in self._futures if s < step]:  # a resume or a caller that skipped ahead
            self._futures.pop(s).cancel()
        for s in range(step, step + max(1, self.depth)):
            if s not in self._futures:
                self._futures[s] = self._pool.submit(_make, s)
        return self._futures.pop(step).result()

    def close(self) -> None:
        for f in self._futures.values():
            f.cancel()
        self._futures.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> BatchPrefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
