"""Progress reporting of a render: events in, a bar (artists), JSON lines (hosts), an Open Job Description task's
progress lines (farms) or nothing out.

``render(shot, progress=cb)`` calls ``cb(event)`` with plain dicts, so a TD can pass ``print`` and a
host can parse them:

- ``{"event": "start", "total": N, "frames": [first, last], "device": "cpu", "shot": "...", "out": "...",
  "cache": "..."}`` (``total``: the frames to write, e.g. 12 for ``1-23x2``; ``cache``: the shot's cache folder, null
  when the render runs without the cache, and then ``cache_off`` says why, as ``done``'s warnings do: a render
  stopped before its end resumes from nothing; ``cache_read_only``: why the cache is read and not written, so that
  nothing this render computes is kept for the next)
- ``{"event": "frame", "frame": F, "done": i, "total": N, "path": "...", "timings": {stage: s}, "steps_done": d,
  "steps_total": t, "steps_cached": c}`` once per frame written (timings: seconds spent on that frame in each
  stage since the previous event; ``write`` is the output thread's, which overlaps the next frames' work, so the
  stages of a render add up to more than its ``elapsed``); a render of several objects into one sequence per object
  (``{object}`` in ``out``) adds ``"paths": [...]``, every object's file of the frame (``path`` is the first's)
- ``{"event": "step", "frames_done": i, "steps_done": d, "steps_total": t, "steps_cached": c}`` after every
  propagation step (one per object per frame of every pass; ``steps_cached``: read back from the cache, not
  computed). Frames are written in bursts (between two keyframes a frame waits for the second pass), steps
  steadily: progress and time left are the steps'. ``steps_done`` never goes down; ``steps_total`` can go up,
  when steps read back must be computed again to rebuild the memory (a damaged cache entry after them), and
  down, when a memory state in the cache spares the steps before it that write no frame of this render (a farm
  chunk going on from the one before).
- ``{"event": "warning", "message": "..."}`` as each warning arises (a keyframe's matte lying off its roto, the cache
  turned off or no longer written, ...), so a host or a log shows it while the render can still be stopped; ``done``
  lists every one again
- ``{"event": "done", "frames_written": N, "files_written": n, "elapsed": s, "timings": {...}, "cache": {...},
  "warnings": [], "device": "cpu", "first": F, "last": L}`` (``first``, ``last``: the lowest and highest frame
  written, null for none; ``files_written``: every object's file of them, N times the objects where each has a
  sequence)
  (``worker_start``, only where ``vom render --start-worker`` started the worker: the seconds that took, counted in
  ``elapsed``)
  (``cache``: counters; ``steps_cached`` counts the predictions delivered from the cache, ``steps_computed`` the
  steps computed, so a step read back and computed again after a damaged entry counts in both; ``keys_hit`` and
  ``keys_miss`` count lookups of a frame's key features, each pass's and object's: a frame whose features one pass
  computed is a hit of the next, so a cold render has hits too, and ``keys_miss`` is the frames encoded)
- ``vom render --progress json`` alone: ``{"event": "error", "message": "...", "exit_code": 2, "kind": "InputError"}``
  before a failed render exits (hosts read stdout only), instead of ``done``; also for a usage error (``kind``
  "UsageError") and an interrupt before the render began (exit_code 130, "CancelledError"). Other kinds: "OSError"
  (a file or folder named cannot be made, read or written: exit 2), "WorkerError" (the ``vom worker`` that took the
  render failed: exit 1, its traceback in the message; one that died during it, killed or crashed, leaves the
  render to this process, which resumes it from the cache: one ``start``, each frame once, as one render) and,
  for an internal error (exit 1), the exception's class name.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from vom_plugin.errors import one_line

ProgressCallback = Callable[[dict[str, Any]], None]
KINDS = ("bar", "json", "openjd", "none")


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def files_of(done: dict[str, Any]) -> str:
    """" (48 files)" where a ``done`` event's frames are several files each (one sequence per object), else "" (QA:
    "16 frames written to .../{object}.####.exr" for 48 files)."""
    n, files = done.get("frames_written"), done.get("files_written")
    return f" ({files} files)" if isinstance(n, int) and isinstance(files, int) and files > n else ""


class BarProgress:
    """A one-line bar on stderr: done/total, frames per second, time left; redrawn per frame written.

    When stderr is not a terminal (a farm log, a CI console) carriage returns would pile up into one huge
    line, so the bar is written as plain lines instead: at most one per 10% of the shot or per 10 s.
    """

    LOG_EVERY_S = 10.0

    def __init__(self, stream: TextIO | None = None, width: int = 30, tty: bool | None = None,
                 command: str = "") -> None:
        self.stream = stream or sys.stderr
        self.command = command  # "vom render": its warnings say so, as its errors do (a log grepped for it)
        self.width = width
        self.t0 = time.perf_counter()
        self.first_frame_t: float | None = None
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self._last_log_t = -1e9
        self._last_log_tenth = -1
        self.total = 0
        self.done = 0
        self.frame: int | None = None
        self.out: str | None = None
        self.work: dict[str, int] = {}
        self._first_step: tuple[float, int] | None = None  # (time, computed steps) at the first computed step
        self._step_t = 0.0  # when the step count last went up
        self.line_open = False  # a terminal bar drawn without its newline
        self._shown = 0.0  # the share drawn last
        self._said: set[str] = set()  # the warnings written as they came (a worker's render resumed here repeats them)

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "start":
            self.t0 = time.perf_counter()
            self.total = event["total"]
            self.out = event.get("out")
            self._draw()
        elif kind in ("frame", "step"):
            if kind == "frame":
                self.done, self.frame = event["done"], event["frame"]
            # a frame's event says the steps as they were when its frame was done, and may come a step after the
            # step's own event: taken back, it made the time left jump up (QA: ETA 0:16 with 6 s left, then 0:06)
            if "steps_total" in event and int(event["steps_done"]) >= self.work.get("steps_done", -1):
                now = time.perf_counter()
                if int(event["steps_done"]) > self.work.get("steps_done", -1):
                    self._step_t = now
                self.work = {k: int(event[k]) for k in ("steps_done", "steps_total", "steps_cached")}
                computed = self.work["steps_done"] - self.work["steps_cached"]
                if self._first_step is None and computed > 0:
                    self._first_step = (now, computed)
            self._draw()
        elif kind == "warning":
            self._warn(str(event.get("message", "")))
            if self.tty and self.total:
                self._draw()  # the bar again, under the warning
        elif kind == "done":
            n, elapsed = event["frames_written"], event["elapsed"]
            self.end_line()
            if self.work:  # the steps counted as the render went (those of frames not written included)
                cached, steps = self.work["steps_cached"], self.work["steps_total"]
            else:
                cache = event.get("cache") or {}
                cached = int(cache.get("steps_cached", 0) or 0)
                steps = cached + int(cache.get("steps_computed", 0) or 0)
            read_back = f"; {cached} of {steps} steps read back from the cache" if cached else ""
            where = f" to {one_line(self.out)}" if self.out else ""  # where they went, as --progress none says too
            for w in event.get("warnings", []):  # those not said as they came, before the closing line (the last)
                self._warn(str(w))
            start = event.get("worker_start")
            started = f"; {start:.1f} s of it starting the vom worker" if isinstance(start, (int, float)) else ""
            self._write(f"{n} frame{'' if n == 1 else 's'}{files_of(event)} written{where} in {_clock(elapsed)} "
                        f"({n / max(elapsed, 1e-9):.2f} frames/s{read_back}{started})\n")

    def _warn(self, text: str) -> None:
        """A warning on a line of its own, once."""
        if text in self._said:
            return
        self._said.add(text)
        self.end_line()
        self._write(f"{self.command + ': ' if self.command else ''}warning: {one_line(text)}\n")

    def _write(self, text: str) -> None:
        """``text`` on the stream, as far as it can be written: a full disk under the log (`2>>log`) stopped the
        render with its first bar line (QA); the frames matter, the bar does not."""
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def end_line(self) -> None:
        """End the terminal bar's line, so what follows (the summary, an error) starts on its own."""
        if self.line_open:
            self._write("\n")
            self.line_open = False

    def _fraction(self) -> float:
        if self.work.get("steps_total"):
            # the last steps end before their frames are written: 100% only once every frame is on disk
            steps = self.work["steps_done"] / self.work["steps_total"]
            return min(steps, 0.99) if self.done < self.total else steps
        return self.done / self.total if self.total else 1.0

    def _eta(self) -> str:
        """Time left from the steps computed so far (steps read back from the cache cost next to nothing, and
        frames come in bursts); before the second computed step, unknown."""
        now = time.perf_counter()
        if self.work.get("steps_total") and self._first_step is not None:
            t1, c1 = self._first_step
            computed = self.work["steps_done"] - self.work["steps_cached"]
            if computed > c1:
                # the pace of the steps done, less the time since the last one ended: the time left goes down
                # steadily between events, and one that comes late does not stretch the pace
                pace = (self._step_t - t1) / (computed - c1)
                left = pace * (self.work["steps_total"] - self.work["steps_done"]) - (now - self._step_t)
                return _clock(max(left, 0.0))
            return "--:--"
        if not self.work and self.done:  # events of a vom without step counts
            return _clock((self.total - self.done) * (now - self.t0) / self.done)
        return "--:--"

    def _progress(self) -> float:
        """The share to show: never back (the steps' total grows where damaged cache entries are computed again:
        the bar went from 30% to 27% as the artist watched, QA)."""
        self._shown = max(self._shown, min(max(self._fraction(), 0.0), 1.0))
        return self._shown

    def _draw(self) -> None:
        fraction = self._progress()
        fill = int(self.width * fraction)
        bar = "#" * fill + "." * (self.width - fill)
        where = f" frame {self.frame}" if self.frame is not None else ""
        line = f"[{bar}] {self.done}/{self.total} frames{where}  {100 * fraction:3.0f}%  ETA {self._eta()}"
        if self.tty:
            self._write(f"\r{line}  ")
            self.line_open = True
        elif self._log_due(fraction):
            self._write(line + "\n")

    def _log_due(self, fraction: float, force: bool = False) -> bool:
        """Whether a log line is due (one per tenth of the shot, or every LOG_EVERY_S, and the last; ``force``: due
        now); noted as said."""
        tenth, now = int(10 * fraction), time.perf_counter()
        if (not force and tenth == self._last_log_tenth and now - self._last_log_t < self.LOG_EVERY_S
                and self.done < self.total):
            return False
        self._last_log_tenth, self._last_log_t = tenth, now
        return True


class OpenJDProgress(BarProgress):
    """For a task of an Open Job Description job (AWS Deadline Cloud, ``openjd run``): ``openjd_progress: <percent>``
    and ``openjd_status: <text>`` lines, which the session running the task reads from its output and the farm's
    monitor shows (a task printing anything else sat at 0% until it ended: a span of hundreds of frames looked
    hung). As often as the bar's log lines (each tenth of the shot, or every 10 s), and as each frame is written; the
    warnings and the closing line as the bar writes them, on stderr."""

    def __init__(self, updates: TextIO | None = None, stream: TextIO | None = None, command: str = "") -> None:
        super().__init__(stream=stream, tty=False, command=command)
        self.updates = updates or sys.stdout
        self._said_done: int | None = None  # the frames written, as the last status said them

    def _draw(self) -> None:
        fraction = self._progress()  # never back on a farm's monitor either
        # a frame written is said at once: one whose share fell in the tenth just said was dropped, and the last
        # status before a failure said a frame fewer than were on disk (QA)
        if not self._log_due(fraction, force=self.done != self._said_done):
            return
        self._said_done = self.done
        where = f", last frame {self.frame}" if self.frame is not None else ""
        self.updates.write(f"openjd_progress: {100 * fraction:.1f}\n"
                           f"openjd_status: {self.done}/{self.total} frames written{where}, ETA {self._eta()}\n")
        self.updates.flush()

    def __call__(self, event: dict[str, Any]) -> None:
        super().__call__(event)
        if event.get("event") == "done" and self._shown < 1.0:  # the render is whole: the monitor says so
            self._shown = 1.0
            n = event["frames_written"]
            self.updates.write(f"openjd_progress: 100.0\nopenjd_status: {n} frame{'' if n == 1 else 's'} written\n")
            self.updates.flush()


class JsonProgress:
    """One JSON object per line on stdout (flushed), for host adapters reading a subprocess."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: dict[str, Any]) -> None:
        self.stream.write(json.dumps(event, default=str) + "\n")
        self.stream.flush()


def make_progress(kind: str, command: str = "") -> ProgressCallback | None:
    """``command``: the command rendering ("vom render"), named in the bar's warnings."""
    if kind == "bar":
        return BarProgress(command=command)
    if kind == "json":
        return JsonProgress()
    if kind == "openjd":
        return OpenJDProgress(command=command)
    if kind == "none":
        return None
    raise ValueError(f"progress kind {kind!r}: expected one of {', '.join(KINDS)}")


class Resumable:
    """The progress of one render that a second run may finish (a ``vom worker`` that ended during it, then this
    process, resuming from the cache): one ``start``, each frame's event once with ``done`` counting the frames
    of both, ``steps_done`` never going back; the first run's events pass as they are."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress
        self.frames: set[Any] = set()
        self.steps = 0
        self.steps_total = 0
        self.resumed = False
        self.started = False  # a worker killed before its start event: the second run's is the render's
        self.total: int | None = None  # the frames to write, from the start event
        self.done: dict[str, Any] | None = None  # the first run's done event: the render was whole
        self.began = time.monotonic()  # the render's start (the first run's start event), for its elapsed time
        self.warned: set[str] = set()  # the warnings passed on: the second run says the first's again

    def elapsed(self) -> float:
        """Seconds since the render began: both runs' (the second run's done said its own, QA)."""
        return time.monotonic() - self.began

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "start":
            if self.started:
                return
            self.started, self.total, self.began = True, event.get("total"), time.monotonic()
        if kind == "warning":
            if event.get("message") in self.warned:
                return  # said by the first run (review: a host showed each twice)
            self.warned.add(event.get("message"))
        if kind == "done":
            self.done = event
            if self.resumed and isinstance(event.get("elapsed"), (int, float)):
                event = {**event, "elapsed": round(self.elapsed(), 4)}
        if kind == "frame":
            if self.resumed and event.get("frame") in self.frames:
                return  # written again from the cache, as it was
            self.frames.add(event.get("frame"))
            if self.resumed:
                event = {**event, "done": len(self.frames)}
        done, total = event.get("steps_done"), event.get("steps_total")
        if isinstance(done, int) and isinstance(total, int):
            if self.resumed and total > 0:
                # the second run's steps as a share of the first's total (it may count fewer: the steps before its
                # memory state are spared), never below what was shown (it went back, and a host's 100% to 99%;
                # an absolute count stalled a bar, a smaller total jumped it to 100%: QA, review)
                shown = max(self.steps, round(done / total * max(self.steps_total, total)))
                if kind == "step" and shown <= self.steps:
                    return  # steps read back to where the first run was: nothing new to show
                event = {**event, "steps_done": shown, "steps_total": max(self.steps_total, total, shown)}
                if kind == "step":
                    event["frames_done"] = len(self.frames)
            self.steps = max(self.steps, event["steps_done"])
            self.steps_total = max(self.steps_total, event["steps_total"])
        if self.progress is not None:
            self.progress(event)

