"""``vom render``'s side: hand the shot to a running worker and relay what it reports, or say it cannot.

``render_in_worker`` returns None when no worker takes the render (none listening, busy, another vom or
environment): the caller renders in its own process. Otherwise it feeds the worker's progress events to the
caller's callback and returns the summary, or raises the worker's error as the same VomError subclass, so
exit codes, messages and JSON error events are those of an in-process render. SIGINT/SIGTERM received
meanwhile are passed on: the worker stops after the frame in hand, reports ``stopped by SIG...`` and
``vom render`` exits 130; a second signal exits 130 at once, without waiting for the worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vom_plugin.engine.stop import handle_signals
from vom_plugin.errors import CancelledError, InputError, VomError
from vom_plugin.io.sequence import written_list
from vom_plugin.worker import environment, private_folder_problem, recv_lines, send, socket_path

CONNECT_TIMEOUT_S = 2.0
START_TIMEOUT_S = 120.0  # a cold start imports torch and loads the weights: seconds, more on a busy machine
STARTED_IDLE_EXIT_S = 1800.0  # a worker started by `vom render --start-worker` exits after 30 idle minutes


class WorkerError(VomError):
    """The worker's render failed with an internal error (exit 1); the message carries its traceback."""

    lines = True  # the traceback as it reads, for the bug report


class WorkerGone(WorkerError):
    """The worker ended during the render (killed, crashed, out of memory, or stopped by a signal of its own): the
    render is not over. The frames it wrote are complete, and a render in this process resumes from the cache."""


_ERRORS: dict[str, type[VomError]] = {"InputError": InputError, "CancelledError": CancelledError}


def _connect() -> tuple[socket.socket | None, str | None]:
    """A connection to the worker, or (None, why not: None when simply no worker is running)."""
    path = socket_path()
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None, None
    except OSError as e:  # a folder this user may not look into (another user's, after `su` without `-`)
        return None, f"not using the worker socket {path}: {private_folder_problem(path.parent) or e.strerror}"
    if stat.S_ISDIR(st.st_mode):  # said first: the folder above it being shared was the message (QA)
        return None, (f"not using the worker socket {path}: it is a folder, not a socket; set VOM_WORKER_SOCKET to a "
                      f"file in it (e.g. {path / 'vom-worker.sock'})")
    if not stat.S_ISSOCK(st.st_mode):  # a worker never replaces it: starting one was 2 s of torch for nothing (QA)
        what = "a link" if stat.S_ISLNK(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a file"
        return None, (f"not using the worker socket {path}: it is {what}, not a socket, which a worker does not "
                      f"replace; move it away or set VOM_WORKER_SOCKET to another path")
    problem = private_folder_problem(path.parent)
    if problem:
        return None, f"not using the worker socket {path}: {problem}"
    # a full queue of connections answers at once (EAGAIN): a worker taking a burst of renders frees it within a
    # moment, a stopped one never does
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT_S)
        try:
            sock.connect(str(path))
        except (BlockingIOError, TimeoutError):  # a worker is there but takes no connection
            sock.close()
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            return None, (f"the vom worker at {path} does not answer (stopped, or stuck: its queue of connections "
                          f"stayed full for {CONNECT_TIMEOUT_S:g} s); see {worker_log(path)}")
        except OSError:  # a socket left by a worker that was killed: nobody listens
            sock.close()
            return None, None
        return sock, None


_CANCELLED: list[int] = []  # the signals sent on to the worker as a cancel: a render it left is not resumed here
_WRITTEN: list[int] = []  # the frames the worker said written in this render: a stop here names them


@contextlib.contextmanager
def _forward_signals(sock: socket.socket) -> Iterator[None]:
    """SIGINT/SIGTERM to this process become a cancel message to the worker (main thread only); a second one
    stops waiting for it (a worker that hangs, or was stopped with SIGSTOP, held the client forever)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = 0

    def handler(signum: int, _frame: Any) -> None:
        nonlocal received
        received += 1
        _CANCELLED.append(signum)
        with contextlib.suppress(OSError):
            send(sock, {"op": "cancel", "signal": signum})
        if received > 1:
            n = len(set(_WRITTEN))
            raise CancelledError(f"stopped by {signal.Signals(signum).name} again after {n} "
                                 f"frame{'' if n == 1 else 's'}{written_list(_WRITTEN)}: not waiting for the vom "
                                 f"worker to finish the frame in hand (it stops after it); the frames written are "
                                 f"complete")

    old = handle_signals(handler)  # an ignored SIGINT is not sent on to the worker
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


_LOG_HEAD = b"vom worker"  # how a worker log begins: the line written when it is made, or (older ones) a worker's


def _open_log(path: Path) -> Any:
    """The worker log at ``path`` for appending: made with a first line saying whose it is, or one vom made; never
    through a link, never a file of someone else's at that name (one was appended to: QA)."""
    if path.is_symlink():
        raise InputError(f"{path} is a link; the worker's log is a file vom makes there")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_CLOEXEC", 0), 0o600)
    log = os.fdopen(fd, "ab")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path} is not a file; the worker's log is a file vom makes there")
        if st.st_size == 0:
            log.write(_LOG_HEAD + b" log: the vom workers started for the socket beside it\n")
            log.flush()
        else:  # (an older worker's log may begin with a library's warning: its own lines say whose it is)
            with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as f:
                if _LOG_HEAD not in f.read(1 << 16):
                    raise InputError(f"{path} is not a vom worker's log; it is left as it is (remove it, or set "
                                     f"VOM_WORKER_SOCKET elsewhere)")
    except BaseException:
        log.close()
        raise
    return log


def worker_log(sock: Path) -> Path:
    """The log of the worker listening on ``sock``: beside it, named for it."""
    return sock.with_name(sock.name + ".log")


_STARTED: list[Any] = []  # the workers this process started (its children until they end)


def reap_started() -> None:
    """Reap the workers this process started that have ended (one killed stayed a zombie, its temporary files taken
    for a live writer's, QA); never another child of the process (a host's)."""
    import subprocess

    for proc in _STARTED:  # a killed one may not be a zombie yet when its socket reads the end: waited for briefly
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5)


def start_worker(idle_exit_s: float = STARTED_IDLE_EXIT_S, note: Any = None) -> bool:
    """Start a ``vom worker`` in the background (its own session: it outlives this process and is not stopped
    with it) and wait until it listens; True when one listens (it, or one that another render started at
    the same time). Its messages go to ``<socket>.log`` beside its socket (``vom-worker.sock.log``: a folder such as
    $XDG_RUNTIME_DIR is every program's, where a bare ``worker.log`` said nothing of whose it was). ``note``: why it
    did not start."""
    import subprocess
    import time

    from vom_plugin.worker import make_private_folder

    note = note or _note
    path = socket_path()
    try:
        make_private_folder(path.parent)
        log = _open_log(worker_log(path))
    except (OSError, VomError) as e:
        note(f"cannot start a vom worker at {path}: {e}; rendering in this process")
        return False
    with log:
        said_from = os.fstat(log.fileno()).st_size  # what this worker writes to its log starts here
        proc = subprocess.Popen([sys.executable, "-m", "vom_plugin.cli", "worker", "--idle-exit", f"{idle_exit_s:g}",
                                 "--started-by-render"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    _STARTED.append(proc)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        exited = proc.poll() is not None  # another render's worker took the socket, or it failed
        if _listening():
            return True
        if exited:
            # its error said here: a host's user never reads the log, and saw only a slower Analyze (QA)
            why = _log_error(worker_log(path), said_from)
            note(f"the vom worker did not start (exit {proc.returncode}{': ' + why if why else ''}; see "
                 f"{worker_log(path)}); rendering in this process")
            return False
        time.sleep(0.05)
    note(f"the vom worker did not listen within {START_TIMEOUT_S:g} s; rendering in this process")
    return False


def _log_error(path: Path, start: int) -> str:
    """The last error a worker wrote to its log from byte ``start`` on (``vom worker: error: ...``), "" if none."""
    prefix = "vom worker: error: "
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as f:
            f.seek(start)
            lines = f.read(1 << 16).decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    said = [line[len(prefix):].strip() for line in lines if line.startswith(prefix)]
    return said[-1] if said else ""


def _listening() -> bool:
    sock, _ = _connect()
    if sock is None:
        return False
    sock.close()
    return True


def _note(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # a log on a full disk: the render goes on
        print(f"vom render: {text}", file=sys.stderr, flush=True)


def render_in_worker(shot: Any, progress: Any = None, *, note: Any = None, start: bool = False
                     ) -> dict[str, Any] | None:
    """Render ``shot`` in the running worker: its "done" summary, or None when no worker takes it. ``note``
    receives one line saying why a worker that exists did not take it (default: stderr). ``start``: when no
    worker listens, start one (``start_worker``) and render there."""
    if not hasattr(socket, "AF_UNIX"):  # Windows' Python: no worker there, the render runs in this process
        return None
    _CANCELLED.clear()  # this render's cancels only (a process may run several: tests, a host's Python)
    _WRITTEN.clear()
    note = note or _note
    sock, why = _connect()
    started = 0.0  # seconds this render waited for the worker it started (paid by this render: said in its time)
    if sock is None and why is None and start:
        t0 = time.monotonic()
        if start_worker(note=note):
            started = time.monotonic() - t0
            sock, why = _connect()
    if sock is None:
        if why:
            note(f"{why}; rendering in this process")
        return None
    with sock:
        try:
            from vom_plugin.digest import build_id

            # the build apart from the environment (not compared): a worker of an older build names both
            send(sock, {"op": "render", "environment": environment(), "build": build_id(), "shot": shot.to_dict(),
                        "source_file": None if shot.source_file is None else str(shot.source_file),
                        "whole_frames": shot.whole_frames})
            buffer = bytearray()
            first = recv_lines(sock, buffer)
        except (OSError, ValueError):
            first = None
        if not first or first[0].get("event") != "accepted":
            # a worker stopped with Ctrl-Z (SIGSTOP) takes the connection in its queue and never answers: said as such
            # (QA: "no answer" alone, where README promises the stopped worker is said)
            reason = first[0].get("reason", "no answer") if first else (
                f"no answer in {CONNECT_TIMEOUT_S:g} s: stopped (Ctrl-Z) or stuck; see {worker_log(socket_path())}")
            note(f"the vom worker at {socket_path()} did not take this render ({reason}); rendering in this process")
            return None
        sock.settimeout(None)
        with _forward_signals(sock):
            return _relay(sock, buffer, first[1:], progress, started)


def _relay(sock: socket.socket, buffer: bytearray, pending: list[dict[str, Any]], progress: Any,
           started: float = 0.0) -> dict[str, Any]:
    """The worker's events to ``progress``; its done event's summary. ``started``: seconds spent starting the worker
    for this render, added to its elapsed time (the closing line said the worker's render alone, QA)."""
    summary: dict[str, Any] | None = None
    while True:
        for m in pending:
            if m.get("event") == "progress":
                data = m["data"]
                if data.get("event") == "frame" and isinstance(data.get("frame"), int):
                    _WRITTEN.append(data["frame"])
                if data.get("event") == "done":
                    if started and isinstance(data.get("elapsed"), (int, float)):
                        data = {**data, "elapsed": round(data["elapsed"] + started, 4),  # as a render's are
                                "worker_start": round(started, 4)}
                    summary = data
                if progress:
                    progress(data)
            elif m.get("event") == "exit":
                code = int(m.get("code", 1))
                if code == 0 and summary is not None:
                    return summary
                if m.get("worker_stopped") and not _CANCELLED:  # stopped itself, not asked to by this render
                    why = str(m["worker_stopped"])
                    raise WorkerGone(f"the vom worker was stopped by {why} during the render" if why.startswith("SIG")
                                     else f"the vom worker exited during the render ({why})")
                message = m.get("message") or "the render failed"
                if m.get("traceback"):
                    raise WorkerError(f"internal error in the vom worker:\n{m['traceback'].rstrip()}")
                err = _ERRORS.get(m.get("kind", ""), VomError)(message)
                err.exit_code = code
                raise err
        try:
            got = recv_lines(sock, buffer)
        except InterruptedError:
            continue
        except ValueError as e:  # what it said cannot be read: it may live on, so nothing is rendered here
            raise WorkerError(f"the vom worker's answer cannot be read ({e}); the frames written are complete and "
                              f"the next render resumes from the cache") from None
        except OSError as e:  # the connection reset: it went away
            got = None
            message = f" ({e})"
        else:
            message = ""
        if got is None:
            if _CANCELLED:  # asked to stop, then gone: stopped (resuming it here lost the cancel, QA)
                name, n = signal.Signals(_CANCELLED[-1]).name, len(set(_WRITTEN))
                raise CancelledError(f"stopped by {name} after {n} frame{'' if n == 1 else 's'}"
                                     f"{written_list(_WRITTEN)}; the vom worker ended before it said so{message}; "
                                     f"the frames written are complete and the next render resumes from the cache")
            raise WorkerGone(f"the vom worker ended during the render{message}")
        pending = got
