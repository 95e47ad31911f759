"""The worker's side: listen on the private socket, render one shot at a time with the weights kept loaded.

Per connection: the peer must be this user; its first message is the render request (the shot's fields and
the client's ``environment()``). The worker answers ``refused`` (with the reason) when it is busy or the
environment differs, the client then renders in its own process; else ``accepted``, then every progress
event of the render, then ``exit`` with the exit code, the error's kind and message. A ``cancel`` message
(the signal the client received), or the client going away, stops the render after the frame in hand; so does a
signal to the worker itself, whose ``exit`` then says ``worker_stopped`` (the client finishes the render).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import stat
import struct
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from vom_plugin.engine.allocator import release_freed_memory
from vom_plugin.engine.stop import handle_signals
from vom_plugin.errors import CancelledError, InputError, VomError
from vom_plugin.worker import environment, make_private_folder, recv_lines, send

REQUEST_TIMEOUT_S = 10.0  # a connection that sends no request in this time is closed


def peer_uid(conn: socket.socket) -> int | None:
    """The user id of the process at the other end (Linux SO_PEERCRED), None where the OS does not say."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        return None  # the socket's private folder is the guard there
    _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i")))
    return uid


def shot_from_request(fields: dict[str, Any], source_file: str | None, whole_frames: list[int] | None = None) -> Any:
    """The client's Shot again (JSON turned the keyframes' frame numbers into text)."""
    from vom_plugin.engine.shot import Shot

    fields = dict(fields)
    if fields.get("keyframes") is not None:
        fields["keyframes"] = {int(k): v for k, v in fields["keyframes"].items()}
    if fields.get("objects") is not None:
        fields["objects"] = {n: {int(k): v for k, v in kf.items()} for n, kf in fields["objects"].items()}
    shot = Shot(**fields)
    if source_file:
        shot.source_file = Path(source_file)
    if isinstance(whole_frames, list) and all(isinstance(f, int) and not isinstance(f, bool) for f in whole_frames):
        shot.whole_frames = whole_frames
    return shot


_LOCK_MARK = b"vom worker\n"  # written into a socket's lock once a worker bound the socket
PROBE_TIMEOUT_S = 2.0  # a worker that answers takes a connection at once, busy or not


SELF = "the vom worker"  # whom a signal to this process was sent to, as its messages say


_LABELS = {"cpus": "number of usable CPUs (taskset, a farm slot's affinity: its thread count)",
           "groups": "group or group list (files are made with the group, folders opened by them)",
           "farm_threads": "threads from OpenCue's $CUE_THREADS (the cores booked; no OMP_NUM_THREADS set)"}


def _shown(key: str, value: Any) -> str:
    if value is None:
        return "unset"
    if key == "umask" and isinstance(value, int):
        return f"{value:03o}"
    if key.startswith("$") and any(w in key.upper() for w in ("KEY", "SECRET", "TOKEN", "PASSWORD")):
        return "set"  # a signing key is not written to a log
    if key == "groups" and isinstance(value, list) and len(value) == 2:
        return f"group {value[0]}, groups {','.join(str(g) for g in value[1])}"
    return repr(value) if isinstance(value, str) else str(value)


def differences(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """What differs between the worker's ``environment()`` and a client's, each with both values (QA: "another
    $OMP_NUM_THREADS" said which variable but not what to set it to)."""
    pairs = {k: (ours.get(k), theirs.get(k)) for k in sorted(set(ours) | set(theirs))
             if k != "env" and ours.get(k) != theirs.get(k)}
    mine, yours = ours.get("env", {}), theirs.get("env", {})
    pairs.update({f"${k}": (mine.get(k), yours.get(k)) for k in sorted(set(mine) | set(yours))
                  if mine.get(k) != yours.get(k)})
    out = []
    for k, (a, b) in pairs.items():
        if k.startswith("$") and "set" == _shown(k, a) == _shown(k, b):
            out.append(f"{k} (both set, to other values)")
        else:
            out.append(f"{_LABELS.get(k, k)} (the worker's {_shown(k, a)}, this render's {_shown(k, b)})")
    return out


class _Listening(InputError):
    """A program listens on the worker's socket path already."""


class Worker:
    """Serves renders on ``path`` until SIGINT/SIGTERM, or ``idle_exit_s`` without a request (0: never).
    ``started_by_render``: started by ``vom render --start-worker``, where a vom worker found listening is one another
    render started at the same time, and this one leaves without an error."""

    def __init__(self, path: Path, *, idle_exit_s: float = 0.0, log: Any = None,
                 started_by_render: bool = False) -> None:
        from vom_plugin.engine.memo import Memo
        from vom_plugin.engine.models import LoadedModels

        self.path = path
        self.idle_exit_s = idle_exit_s
        self.started_by_render = started_by_render
        self.log = log or sys.stderr
        self.models = LoadedModels()
        self.memo = Memo()  # decoded plate frames (VOM_WORKER_MEMO_MB)
        self.env = environment()
        from vom_plugin.digest import build_id

        self.build = build_id()  # read now: what it runs (read at its first render, a checkout since was named)
        self.busy = threading.Lock()
        self.closing = False
        self.signalled: int | None = None  # the signal that stopped it, said in its log as it leaves
        self._say_lock = threading.Lock()
        self.stop: Any = None  # the running render's Stop
        self.last_request = time.monotonic()
        self.handling = 0  # requests accepted and not yet answered
        self._count = threading.Lock()
        self._threads = 0

    def say(self, text: str) -> None:
        """A line in the worker's log: whole (one write, under a lock: request threads say things too), and never
        an error of its own (a full disk, a closed pipe: the worker and its renders go on without the line)."""
        with self._say_lock, contextlib.suppress(OSError, ValueError):
            self.log.write(f"vom worker: {text}\n")
            self.log.flush()

    def bind(self) -> socket.socket:
        try:
            folder = self.path.is_dir() and not self.path.is_symlink()
        except PermissionError:  # a folder of another user's on the way: said by the folder check below (QA)
            folder = False
        if folder:
            raise InputError(f"worker socket {self.path} is a folder, not a socket; expected the path of the socket to "
                             f"make (e.g. VOM_WORKER_SOCKET={self.path / 'worker.sock'})")
        make_private_folder(self.path.parent)
        # probe, remove a stale socket, bind, listen: one worker at a time. Two workers starting together
        # (two hosts' first Analyze) both found the stale socket dead; the second removed the first's new one
        # and bound its own, leaving the first listening where no client could reach it, torch loaded.
        self._refuse_other_file()  # before a lock file is made beside a path that is refused anyway
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:  # never through a link left at that name (it created its target outside the private folder)
            # read-only (flock needs no more) and not blocking on a FIFO left at that name
            fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0), 0o600)
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                os.close(fd)
                raise OSError(0, "not a regular file")
            # empty (made now, or by a try that was refused) or a worker's mark: a file of the user's at that name
            # was truncated to the mark (QA)
            if st.st_size and (st.st_size > len(_LOCK_MARK) or os.pread(fd, len(_LOCK_MARK), 0) != _LOCK_MARK):
                os.close(fd)
                raise OSError(0, "it is a file vom did not write")
        except OSError as e:
            raise InputError(f"worker socket's lock {lock_path} cannot be used ({e.strerror}); remove it or "
                             "choose another path (--socket or VOM_WORKER_SOCKET)") from None
        with os.fdopen(fd, "r") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            sock = self._bind(self._a_workers_socket(lock_path))
            # marked once bound, under the lock: a socket found later with this beside it is a worker's
            mark = os.open(lock_path, os.O_WRONLY | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(mark, "wb") as f:
                f.write(_LOCK_MARK)
            return sock

    def _a_workers_socket(self, lock_path: Path) -> bool:
        """Whether a socket at the path is a vom worker's: one bound it (its mark in the lock; a lock alone is made by
        any try, one that was refused too), or its log says one listened there (a worker from before the mark)."""
        listened = f"vom worker: listening on {self.path} ".encode()
        for path, found in ((lock_path, lambda data: data.startswith(_LOCK_MARK)),
                            (self.path.with_name(self.path.name + ".log"), lambda data: listened in data),
                            (self.path.with_name("worker.log"), lambda data: listened in data)):  # an older vom's log
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
            except OSError:
                continue
            with os.fdopen(fd, "rb") as f:
                if stat.S_ISREG(os.fstat(f.fileno()).st_mode) and found(f.read(1 << 20)):
                    return True
        return False

    def _refuse_other_file(self) -> None:
        if os.path.lexists(self.path):
            # only a socket is ours to replace: a user's file (or a link, a folder) at that path is never deleted
            mode = os.lstat(self.path).st_mode
            if not stat.S_ISSOCK(mode):
                what = "a folder" if stat.S_ISDIR(mode) else "a link" if stat.S_ISLNK(mode) else "a file"
                raise InputError(f"worker socket {self.path} is {what}, not a socket; choose another path "
                                 "(--socket or VOM_WORKER_SOCKET)")

    def preflight(self) -> None:
        """What ``bind`` would refuse at the path as it is now, before torch is imported (seconds): a dead socket no
        worker is known to have bound was found only after, and every --start-worker of a host paid for it (QA).
        Nothing is made or removed here; ``bind`` asks again under the lock."""
        try:
            if not os.path.lexists(self.path) or self.path.is_dir():
                return  # nothing there, or a folder: bind says so
        except OSError:  # a folder of another user's on the way: bind says so
            return
        self._probe(self._a_workers_socket(self.path.with_name(self.path.name + ".lock")))

    def _bind(self, ours: bool = True) -> socket.socket:
        """Bind the socket; ``ours``: a socket found at the path is a vom worker's (its lock was beside it), so a dead
        one is removed; another program's is never."""
        if (self.path.exists() or self.path.is_symlink()) and self._probe(ours):
            self.path.unlink()  # left by a worker that was killed
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is created 0600
        try:
            sock.bind(str(self.path))
        except OSError as e:
            sock.close()
            raise InputError(f"worker socket {self.path} cannot be created: {e.strerror}") from None
        finally:
            os.umask(old)
        sock.listen(8)
        sock.settimeout(0.5)
        return sock

    def _probe(self, ours: bool) -> bool:
        """Whether what is at the path is a dead socket of a vom worker's (``ours``), to be replaced; InputError for
        anything else: not a socket, one that listens, a dead one no worker is known to have bound."""
        self._refuse_other_file()
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # non-blocking then, with a timeout: a stopped worker's full queue blocked the probe forever (QA); a full
        # queue answers at once (EAGAIN), a listener that takes nothing within the timeout is as stuck
        probe.settimeout(PROBE_TIMEOUT_S)
        try:
            probe.connect(str(self.path))
        except (BlockingIOError, TimeoutError):
            raise InputError(f"a program listens on {self.path} but takes no connection (a vom worker stopped or "
                             "stuck?); it is left as it is: stop it, or choose another path (--socket or "
                             "VOM_WORKER_SOCKET)") from None
        except OSError:
            if not ours:  # (it was deleted without a word: QA)
                raise InputError(f"worker socket {self.path} is a dead socket that no vom worker is known to have "
                                 "bound (another program's, or an older vom's worker's); it is left as "
                                 f"it is: remove it if it was a vom worker's (rm {self.path}), or choose another "
                                 "path (--socket or VOM_WORKER_SOCKET)") from None
            return True
        else:
            raise _Listening(f"a program listens on {self.path} already (a vom worker, or another program's "
                             "socket); choose another path (--socket or VOM_WORKER_SOCKET) for another worker")
        finally:
            probe.close()

    def serve(self) -> int:
        try:
            return self._serve()
        except _Listening:
            # two --start-worker renders at once start two workers and one binds: the other's log said an error
            # and told the user to choose another path, for the outcome wanted (QA). A worker started by hand, or
            # a listener not known as a vom worker's, is still refused as before.
            if not (self.started_by_render and self._a_workers_socket(self.path.with_name(self.path.name + ".lock"))):
                raise
            self.say(f"a vom worker listens on {self.path} already (started by another render at the same time): "
                     f"renders go to it; this one exits")
            return 0

    def _serve(self) -> int:
        import vom_plugin

        self.preflight()
        torch = vom_plugin.import_torch()  # loaded once, here: what the worker is for

        import vom_plugin.engine.runner  # the engine's imports, before the first request
        from vom_plugin.io import output_claim

        output_claim.PROCESS_KIND = "vom worker"  # another render refused by this one's outputs names it so
        self.threads = torch.get_num_threads()
        sock = self.bind()
        ino = os.stat(self.path).st_ino
        old = handle_signals(self._on_signal)
        self.say(f"listening on {self.path} (pid {os.getpid()}, torch {torch.__version__}, "
                 f"{self.threads} threads)")
        self.last_request = time.monotonic()  # idle from now, not from before torch was imported
        try:
            while not self.closing:
                # idle: no render since the last one ended (a refused request is not one: a worker that cannot
                # serve its clients left, so that --start-worker starts one that can), and no request in hand
                if (self.idle_exit_s and not self.busy.locked() and not self.handling
                        and time.monotonic() - self.last_request > self.idle_exit_s):
                    self.say(f"idle for {self.idle_exit_s:g} s: exiting")
                    break
                try:
                    conn, _ = sock.accept()
                except (TimeoutError, InterruptedError):
                    continue
                with self._count:  # counted until answered: the idle exit does not drop a request in hand
                    self.handling += 1
                threading.Thread(target=self.handle, args=(conn,), daemon=True,
                                 name="vom-worker-request").start()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == ino:  # still ours (not a newer worker's)
                    self.path.unlink()
            sock.close()
            with self.busy:  # the render in hand stops after its frame and reports to its client
                pass
            if self.signalled is not None:
                self.say(f"{signal.Signals(self.signalled).name}: exited")
        return 0

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.signalled is None:  # said in the log by the serve loop as it leaves (not here: a write to the log
            self.signalled = signum  # that the handler interrupted would be entered twice)
        self.closing = True
        if self.stop is not None and not self.stop.is_set():  # a client's cancel stays the client's
            self.stop.set(signum, to=SELF)  # not the client's own signal: say whose

    def handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                uid = peer_uid(conn)
                if uid is not None and uid != os.getuid():
                    return  # another user's process: no answer at all
                conn.settimeout(REQUEST_TIMEOUT_S)
                buffer = bytearray()
                got = recv_lines(conn, buffer)
                if not got or got[0].get("op") != "render":
                    return
                self.request(conn, got[0], buffer)
            except (OSError, ValueError):
                return  # the client went away or spoke nonsense: nothing of ours to clean up
            finally:
                with self._count:
                    self.handling -= 1

    def _as_installed(self) -> bool:
        """Whether vom's files and the libraries are still as they were when this worker started."""
        from vom_plugin.worker import code_fingerprint, library_versions

        return code_fingerprint() == self.env["code"] and library_versions() == self.env["libraries"]

    def refuse(self, conn: socket.socket, reason: str) -> None:
        send(conn, {"event": "refused", "reason": reason})

    def request(self, conn: socket.socket, req: dict[str, Any], buffer: bytearray) -> None:
        env = req.get("environment") or {}
        # the same folder is the same installation, whatever version it has now (a checkout that bumped it was
        # refused as "another vom installation's", naming the client's own folder: QA)
        same_install = env.get("package") == self.env["package"]
        libraries = env.get("libraries") or {}
        upgraded = sorted(n for n in set(libraries) | set(self.env["libraries"])
                          if libraries.get(n) != self.env["libraries"].get(n))
        rebuilt = (env.get("vom"), env.get("code")) != (self.env["vom"], self.env["code"])
        current = same_install and (rebuilt or upgraded) and self._as_installed()
        if current and rebuilt:
            # the client is the one that changed, and not on disk (its code's digest is read from disk, its version
            # is the one it loaded): a process that loaded vom before an upgrade (a host's Python session running the
            # CLI in-process, a render started just before it). This worker runs the installation as it is; leaving
            # would only let that client stop each worker started after it. A client whose libraries alone differ
            # (another environment sharing this checkout) is refused below, both versions named (review).
            build = f" (build {req['build']})" if isinstance(req.get("build"), str) else ""
            self.say(f"refused a render: a client of vom {env.get('vom', '?')}{build}, loaded before the installation "
                     f"changed")
            self.refuse(conn, f"the client runs vom {env.get('vom', '?')}{build}, loaded before the installation "
                              f"changed to the vom {self.env['vom']} (build {self.build}) this worker (pid "
                              f"{os.getpid()}) runs; restart the client's process to render with it")
            return
        if same_install and (rebuilt or upgraded) and not current:
            # vom's code or a library changed since this worker started (a checkout updated under an editable
            # install, torch upgraded by pip): it can never serve this installation again, so it leaves and the
            # next --start-worker starts afresh
            if rebuilt and env.get("vom") == self.env["vom"] and req.get("build") == self.build:
                # the code's files were written again, the same build (a checkout and back, a reinstall): "vom 1.2
                # (build abc) ... to vom 1.2 (build abc)" read as no change at all (review)
                what = f"vom {self.env['vom']} (build {self.build})"
                now = " (its files were written again, the same build)"
            elif rebuilt:  # both builds, so a TD sees which is whose (`vom info` shows this installation's)
                what = f"vom {self.env['vom']} (build {self.build})"
                build = f" (build {req['build']})" if isinstance(req.get("build"), str) else ""
                now = f", to vom {env.get('vom', '?')}{build}"
            else:
                what, now = ", ".join(f"{n} {self.env['libraries'].get(n) or '?'}" for n in upgraded), ""
            self.refuse(conn, f"it runs {what} as it was when it started; the installation has changed since{now}, "
                              f"so the worker (pid {os.getpid()}) exits: the next `vom render --start-worker` (what "
                              f"the Nuke and Blender nodes run) or `vom worker` starts one of this installation")
            self.say(f"{what} changed since this worker started{now}: exiting")
            self.closing = True
            return
        if env != self.env:
            if any(env.get(k) != self.env.get(k) for k in ("vom", "package", "code")):
                # another installation (a side-by-side install, an older vom): its other keys are another vom's, not
                # a difference of this user's setup (an older client sends no groups, and "group list" was blamed, QA)
                why = (f"it is another vom installation's ({self.env['package']}, pid {os.getpid()}); stop it, or set "
                       f"VOM_WORKER_SOCKET to another path for this one")
                self.say(f"refused a render: a client of another vom installation ({env.get('package', '?')})")
                self.refuse(conn, why)
                return
            why = f"it runs with another {', '.join(differences(self.env, env))}"
            self.say(f"refused a render: {why}")
            self.refuse(conn, why)
            return
        if self.closing or not self.busy.acquire(blocking=False):
            why = "it is busy with another render" if not self.closing else "it is exiting"
            self.say(f"refused a render: {why}")
            self.refuse(conn, why)
            return
        self.last_request = time.monotonic()
        try:
            self.render(conn, req, buffer)
        finally:
            self.busy.release()
            self.last_request = time.monotonic()

    def render(self, conn: socket.socket, req: dict[str, Any], buffer: bytearray) -> None:
        import torch

        from vom_plugin.engine.runner import Stop, render

        torch.set_num_threads(self.threads)  # as the worker's main thread (OpenMP settings are per thread)
        stop = Stop()
        self.stop = stop
        gone = threading.Event()
        send(conn, {"event": "accepted", "pid": os.getpid()})

        def listen() -> None:  # the client's cancel, or its end: stop after the frame in hand
            try:
                while True:
                    got = recv_lines(conn, buffer)
                    if got is None:
                        break
                    for m in got:
                        if m.get("op") == "cancel":
                            stop.set(int(m.get("signal") or signal.SIGTERM))
            except (OSError, ValueError):
                pass
            gone.set()
            if stop.signal is None:  # no signal was sent: the client went away (killed, its output closed)
                stop.set(signal.SIGTERM, why="its vom render going away")

        # set up here, not in the thread: a render that ended at once had its connection closed by then (EBADF)
        conn.settimeout(None)
        listener = threading.Thread(target=listen, daemon=True, name="vom-worker-client")
        listener.start()

        def relay(event: dict[str, Any]) -> None:
            if not gone.is_set():
                with contextlib.suppress(OSError):
                    send(conn, {"event": "progress", "data": event})

        out: dict[str, Any] = {"event": "exit", "code": 0}
        t0 = time.monotonic()
        # its log says what it did (it said "listening" and "exiting" only: a problem left nothing to read there)
        what = str((req.get("shot") or {}).get("plate", "?"))
        self.say(f"render of {what} began")
        try:
            shot = shot_from_request(req["shot"], req.get("source_file"), req.get("whole_frames"))
            if self.closing and not stop.is_set():  # a client's cancel that came first stays the client's (review)
                # the signal it got (SIGINT said as SIGTERM: review); closing without one: its installation changed
                stop.set(self.signalled or signal.SIGTERM, to=SELF)
            result = render(shot, progress=relay, stop=stop, models=self.models, memo=self.memo)
            self.say(f"render of {what}: {len(result.frames)} frames in {time.monotonic() - t0:.1f} s")
        except VomError as e:
            out.update(code=e.exit_code, kind=type(e).__name__, message=str(e))
            if isinstance(e, CancelledError) and stop.signal is not None and stop.by.endswith(f" to {SELF}"):
                # the worker was stopped (a logout, a pkill), not the render: its client finishes it from the cache,
                # as when the worker is killed (QA: SIGKILL resumed the render, SIGTERM failed it with exit 130)
                # (closing with no signal: its installation changed, and it exits: said so, not as a SIGTERM, review)
                out["worker_stopped"] = (signal.Signals(stop.signal).name if self.signalled is not None
                                         else "its installation changing")
            self.say(f"render of {what} ended with exit {e.exit_code}: {e}")
        except Exception as e:  # an internal error: the client shows the traceback, the worker goes on
            out.update(code=1, kind=type(e).__name__, message=str(e), traceback=traceback.format_exc())
            self.say(f"render of {what} failed (internal error):\n{out['traceback']}")
        finally:
            self.stop = None
        with contextlib.suppress(OSError):
            send(conn, out)
            conn.shutdown(socket.SHUT_RD)  # the listener's read ends (what was sent still reaches the client)
        listener.join(timeout=5)  # before the connection is closed under it
        release_freed_memory()  # what the render's frames kept for reuse, while the worker waits
