"""vom: video object matting for compositing pipelines.

The public Python API lives here; heavy modules (torch, OpenImageIO) are imported lazily so that
``import vom_plugin`` and ``vom --version`` stay fast.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any


def _runnable_now(samples: int = 8, interval_s: float = 0.002) -> float | None:
    """Threads on the machine ready to run besides the caller, averaged over a few readings of the kernel's run
    queue (``/proc/loadavg``'s fourth field, which counts the reading thread itself); None where unreadable."""
    counts = []
    try:
        for i in range(samples):
            if i:
                time.sleep(interval_s)
            with open("/proc/loadavg", encoding="ascii") as f:
                counts.append(int(f.read().split()[3].split("/")[0]) - 1)
    except (OSError, ValueError, IndexError):
        return None
    return sum(counts) / len(counts)


# What vom put in os.environ for libgomp, which reads it once, as torch loads. Set only while torch loads
# (``_TorchLoad``) and put back once it has, so that a host process calling the API does not pass vom's choice on to
# every program it starts (QA: set at ``import vom_plugin``, it reached Nuke launched by a tool that only built Shots);
# a value changed since by someone else is theirs, left.
_OPENMP_SET: dict[str, tuple[str | None, str]] = {}  # name -> (the value before, None for unset; vom's)
# renders may start on several threads of a host at once: one chooses, loads torch and gives the values back
_OPENMP_LOCK = threading.RLock()


def _set_openmp_env(name: str, value: str) -> None:
    with _OPENMP_LOCK:
        before = _OPENMP_SET[name][0] if name in _OPENMP_SET else os.environ.get(name)
        _OPENMP_SET[name] = (before, value)
        os.environ[name] = value


def _restore_openmp_env() -> None:
    with _OPENMP_LOCK:
        for name, (before, ours) in _OPENMP_SET.items():
            if os.environ.get(name) != ours:  # changed since by someone else: theirs now
                continue
            if before is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = before
        _OPENMP_SET.clear()


def _openmp_wait_default() -> None:
    """How torch's OpenMP worker threads wait for each other, chosen before torch is first imported.

    On an idle machine a short spin (GOMP_SPINCOUNT=10000) is much faster than sleeping threads
    (OMP_WAIT_POLICY=PASSIVE), for renders and training alike; with the cores busy with another process the
    short spin is slower (spinning threads wait whole time slices for each other; libgomp's default spin far
    worse). So: short spin when the cores are free at start, sleep when they are not (Nuke or other farm tasks
    on the host). The load average says "free" cheaply; where it says "busy" the run queue is read too,
    because the load average trails by minutes: a render started within a minute or two of the previous one
    ending (a roto tweak, the next farm task) found the machine idle yet slept its threads, and ran slower.
    Chosen as torch loads (``_TorchLoad``: libgomp reads these once, then), not at vom's import: a host may import vom
    hours before its first render. A user's OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
    """
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    limit = max(0.5, cores - 1.5)  # busy when fewer than ~1.5 cores are left to us
    try:
        busy = os.getloadavg()[0] > limit
    except (AttributeError, OSError):  # no load average (Windows): be the good neighbour
        busy = True
    if busy:
        runnable = _runnable_now()
        busy = runnable is None or runnable > limit
    if busy:
        _set_openmp_env("OMP_WAIT_POLICY", "PASSIVE")
    else:
        _set_openmp_env("GOMP_SPINCOUNT", "10000")


def _openmp_static_threads() -> None:
    """OpenMP's dynamic thread count (``OMP_DYNAMIC=true``) turned off before torch loads: with it, MKL's QR (the
    model's orthogonal initialisation, run as it is built) never returned, a render hung at 100% CPU deaf to
    SIGTERM; and a thread count that moves with the load changes float sums, which the cache's addresses and
    farm chunks that continue each other rely on (they are keyed by the thread count)."""
    if os.environ.get("OMP_DYNAMIC", "").strip().lower() not in ("", "false", "0", "no", "off"):
        _set_openmp_env("OMP_DYNAMIC", "false")


def farm_threads() -> int | None:
    """The cores an OpenCue host booked for this task (``CUE_THREADS``, which RQD sets and OpenImageIO reads too),
    where the user set no OMP_NUM_THREADS or MKL_NUM_THREADS: torch otherwise takes every core of the host, however
    many tasks it runs (and a chunk continues the one before it only on as many threads). None: torch's choice."""
    if os.environ.get("OMP_NUM_THREADS", "").strip() or os.environ.get("MKL_NUM_THREADS", "").strip():
        return None
    try:
        n = int(os.environ.get("CUE_THREADS", "").strip())
    except ValueError:
        return None
    return n if n >= 1 else None


def _take_farm_threads(torch: Any) -> None:
    """``farm_threads`` given to torch just loaded (it reads OMP_NUM_THREADS lazily, after vom gives the environment
    back: set here)."""
    threads = farm_threads()
    if threads:
        torch.set_num_threads(threads)


# Whether this process has rendered (read plates, loaded a model: torch's OpenMP pool and OpenEXR's threads have
# started) when it forks a child (a multiprocessing pool's default start method on Linux): those pools keep
# believing in threads that stayed in the parent, and a render in the child waits for them forever
# (``engine.runner.check_not_forked``). A process that only imported them forks safely (Celery, gunicorn
# --preload); VOM_ALLOW_FORK=1 lets a child render anyway.
_POOLS = {"started": False, "inherited": False}


def _after_fork_in_child() -> None:
    global _OPENMP_LOCK
    _POOLS["inherited"] = _POOLS["started"]
    _OPENMP_LOCK = threading.RLock()  # one held by another thread at the fork would never be released here


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM noted while the block runs, then delivered as usual (its usual handler: exit 130): an
    extension's import calls back into Python from C++, and a KeyboardInterrupt raised there by a signal (a farm's
    SIGTERM, Ctrl-C at the start) aborted the process (SIGABRT: "terminate called after throwing an instance of
    pybind11::error_already_set" in torch's, "Critical nanobind error" in OpenImageIO's, a bare clone's test run)
    instead of stopping it with exit 130. Only in the main thread, where Python runs signal handlers."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # Python runs a signal's handler in the main thread whichever thread the OS gave it to (numpy's and OpenEXR's
    # threads run by now): the handlers only note it during the block, and it is sent again afterwards
    noted: list[int] = []
    old: dict[int, Any] = {}
    try:
        for s in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(s) is not None:  # None: the embedding application's C handler, which stays (and
                old[s] = signal.signal(s, lambda signum, _frame: noted.append(signum))  # could not be put back)
        yield
    finally:
        for kind, handler in old.items():
            signal.signal(kind, handler)
        for kind in dict.fromkeys(noted):  # each kind once, now in plain Python: its usual handler (exit 130)
            if signal.getsignal(kind) is not signal.SIG_IGN:  # a SIGINT ignored (nohup, &) must not hide a SIGTERM
                signal.raise_signal(kind)


def _choose_openmp() -> None:
    """The OpenMP settings chosen now, as torch is about to load (what vom set at its import given back first)."""
    with _OPENMP_LOCK:
        _restore_openmp_env()
        _openmp_wait_default()
        _openmp_static_threads()


@contextlib.contextmanager
def _openmp_while_torch_loads() -> Iterator[None]:
    """The OpenMP settings chosen from the load now and in the environment while the block loads torch (libgomp
    reads them then), given back after."""
    with _OPENMP_LOCK:
        try:
            _choose_openmp()
            yield
        finally:
            _restore_openmp_env()


@contextlib.contextmanager
def _in_a_folder_that_exists() -> Iterator[None]:
    """The block run from / where the working folder has been deleted, and the process back in it after: torch's
    import from a deleted folder ends the process ("Intel oneMKL FATAL ERROR: Cannot load libtorch_cpu.so", QA: a
    daemon's render whose paths were all absolute killed it, and `vom render` exited 2 naming nothing)."""
    try:
        os.getcwd()
    except OSError:  # gone (or, on some systems, no longer readable)
        pass
    else:
        yield
        return
    try:  # the deleted folder itself, to go back to (relative paths then fail as before); O_PATH needs no permission
        gone: int | None = os.open(".", getattr(os, "O_PATH", os.O_RDONLY) | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        gone = None  # it cannot be held: the process stays in /, where a relative path fails all the same
    try:
        os.chdir("/")
        yield
    finally:
        if gone is not None:
            os.fchdir(gone)
            os.close(gone)


class _TorchLoad(importlib.abc.MetaPathFinder):
    """torch's first import in this process, wherever it comes from (``import_torch``, a model module's ``import
    torch``, a host's own): the OpenMP settings are chosen from the load now, set in the environment only while torch
    loads (libgomp reads them then) and given back after; SIGINT and SIGTERM are held back until it is done
    (``signals_held``). Installed at vom's import unless torch is loaded already (then nothing vom sets would count).

    It finds nothing itself: the spec is what the finders after it give (a host's own finder of torch included),
    its loader wrapped; asking whether torch is there (``importlib.util.find_spec``) changes nothing (review: the
    hook left ``sys.meta_path`` at that question, and the import after it loaded torch without the settings)."""

    def __init__(self) -> None:
        self._asking = threading.local()  # this thread's search through the finders after this one

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "torch" or "torch" in sys.modules or getattr(self._asking, "now", False):
            return None
        self._asking.now = True
        try:
            finders = list(sys.meta_path)
            spec = None
            for finder in finders[finders.index(self) + 1:] if self in finders else finders:
                find = getattr(finder, "find_spec", None)
                spec = find(fullname, path, target) if find is not None else None
                if spec is not None:
                    break
        finally:
            self._asking.now = False
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _TorchLoader(spec.loader, self)
        return spec


class _TorchLoader(importlib.abc.Loader):
    """torch's own loader, run with the OpenMP settings in the environment and the signals held (``_TorchLoad``)."""

    def __init__(self, real: Any, hook: _TorchLoad) -> None:
        self._real, self._hook = real, hook

    def create_module(self, spec: Any) -> Any:
        return self._real.create_module(spec)

    def exec_module(self, module: Any) -> None:
        module.__spec__.loader = module.__loader__ = self._real  # torch sees its own loader
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self._hook)  # torch loads once a process (no finder loop is running now)
        with signals_held(), _openmp_while_torch_loads(), _in_a_folder_that_exists():
            self._real.exec_module(module)
            _take_farm_threads(module)

    def __getattr__(self, name: str) -> Any:  # what else importlib asks a loader (is_package, resources)
        return getattr(self._real, name)


if "torch" not in sys.modules:
    sys.meta_path.insert(0, _TorchLoad())


def import_torch() -> Any:
    """``import torch`` with SIGINT and SIGTERM held back until it is done (``signals_held``); the OpenMP settings
    chosen as it loads (``_TorchLoad``; here, where a host rebuilt ``sys.meta_path`` without it)."""
    with signals_held():
        if "torch" not in sys.modules and not any(isinstance(f, _TorchLoad) for f in sys.meta_path):
            with _openmp_while_torch_loads(), _in_a_folder_that_exists():
                import torch

                _take_farm_threads(torch)
        import torch
    return torch


@contextlib.contextmanager
def _environment_kept(*names: str) -> Iterator[None]:
    """The variables ``names`` of os.environ as they were before the block (set, changed or removed in it): what an
    extension's import sets for itself there, which only child processes read, is not passed on to every program a
    host starts after a render (QA)."""
    saved = {k: os.environ.get(k) for k in names}
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _imported(name: str) -> Any:
    """The module ``name`` where its import is complete, else None: a first import under way in another thread
    leaves a half-made module in sys.modules (QA: threads' first renders failed on "partially initialized module
    'OpenImageIO' has no attribute 'ImageBuf'"); an import statement waits for it."""
    module = sys.modules.get(name)
    if module is None or getattr(getattr(module, "__spec__", None), "_initializing", False):
        return None
    return module


_IMPORT_LOCK = threading.Lock()  # one thread at a time sets and gives back the variables an extension's import sets


def import_cv2() -> Any:
    """``import cv2`` with the environment given back: OpenCV's loader prepends its folder to LD_LIBRARY_PATH (PATH
    on Windows)."""
    module = _imported("cv2")
    if module is not None:
        return module
    with _IMPORT_LOCK, _environment_kept("LD_LIBRARY_PATH", "PATH"):
        import cv2
    return cv2


def import_oiio() -> Any:
    """``import OpenImageIO`` with SIGINT and SIGTERM held back (``signals_held``: its import calls back into Python,
    and a signal there aborted the process) and the environment given back: the wheel sets OpenImageIO_ROOT to its
    own folder where it is unset, which a host's child processes then inherited (another OpenImageIO install keeps a
    value already set, so a program the host started read vom's)."""
    module = _imported("OpenImageIO")
    if module is not None:
        return module
    with _IMPORT_LOCK, signals_held(), _environment_kept("OpenImageIO_ROOT"):
        import OpenImageIO

        root = os.environ.get("OpenImageIO_ROOT")
    if root is not None and "OpenImageIO_ROOT" not in os.environ:  # the wheel's, given back: its fonts (read as text
        # is drawn, a host's burn-ins and slates) found as the variable found them (review: render_text failed)
        fonts = os.path.join(root, "share", "fonts", "OpenImageIO")
        if os.path.isdir(fonts):
            OpenImageIO.attribute("font_searchpath", fonts)
    return OpenImageIO


__version__ = "0.1.0"

# name -> module that defines it; filled in as the layers land.
_LAZY = {
    "Shot": "vom_plugin.engine.shot",
    "render": "vom_plugin.engine.runner",
    "RenderResult": "vom_plugin.engine.passes",  # where each is defined: `from vom_plugin import Stop` loads no
    "Stop": "vom_plugin.engine.stop",  # numpy, OpenImageIO or OpenCV (0.4 s through the runner, QA)
    "CancelledError": "vom_plugin.errors",
    "VomError": "vom_plugin.errors",
    "InputError": "vom_plugin.errors",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # what __getattr__ gives, for type checkers (imported on first use at run time)
    from vom_plugin.engine.passes import RenderResult as RenderResult
    from vom_plugin.engine.runner import render as render
    from vom_plugin.engine.shot import Shot as Shot
    from vom_plugin.engine.stop import Stop as Stop
    from vom_plugin.errors import CancelledError as CancelledError
    from vom_plugin.errors import InputError as InputError
    from vom_plugin.errors import VomError as VomError


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vom_plugin' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
