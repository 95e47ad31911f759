"""Progress reporting of a render: events in, a bar (artists), JSON lines (hosts) or nothing out.

``render(shot, progress=cb)`` calls ``cb(event)`` with plain dicts, so a TD can pass ``print`` and a
host can parse them:

- ``{"event": "start", "total": N, "frames": [...], "device": "cpu", "shot": "..."}``
- ``{"event": "frame", "frame": F, "done": i, "total": N, "path": "...", "timings": {stage: s}}``
  once per frame written (timings: seconds spent on that frame in each stage since the previous event)
- ``{"event": "done", "frames_written": N, "elapsed": s, "timings": {...}, "cache": {...}, "warnings": []}``
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

ProgressCallback = Callable[[dict[str, Any]], None]
KINDS = ("bar", "json", "none")


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class BarProgress:
    """A one-line bar on stderr: done/total, frames per second, time left; redrawn per frame written.

    When stderr is not a terminal (a farm log, a CI console) carriage returns would pile up into one huge
    line, so the bar is written as plain lines instead: at most one per 10% of the shot or per 10 s.
    """

    LOG_EVERY_S = 10.0

    def __init__(self, stream: TextIO | None = None, width: int = 30, tty: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.t0 = time.perf_counter()
        self.first_frame_t: float | None = None
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self._last_log_t = -1e9
        self._last_log_tenth = -1

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "start":
            self.t0 = time.perf_counter()
            self._draw(0, event["total"], None)
        elif kind == "frame":
            self._draw(event["done"], event["total"], event["frame"])
        elif kind == "done":
            n, elapsed = event["frames_written"], event["elapsed"]
            end_bar = "\n" if self.tty else ""  # the terminal bar has no newline of its own
            self.stream.write(f"{end_bar}{n} frames in {_clock(elapsed)} ({n / max(elapsed, 1e-9):.2f} frames/s)\n")
            for w in event.get("warnings", []):
                self.stream.write(f"warning: {w}\n")
            self.stream.flush()

    def _draw(self, done: int, total: int, frame: int | None) -> None:
        elapsed = time.perf_counter() - self.t0
        fill = int(self.width * done / total) if total else self.width
        bar = "#" * fill + "." * (self.width - fill)
        rate = done / elapsed if done and elapsed > 0 else 0.0
        eta = _clock((total - done) / rate) if rate else "--:--"
        where = f" frame {frame}" if frame is not None else ""
        line = f"[{bar}] {done}/{total}{where}  {rate:.2f} frames/s  ETA {eta}"
        if self.tty:
            self.stream.write(f"\r{line}  ")
        else:
            tenth = int(10 * done / total) if total else 10
            now = time.perf_counter()
            if tenth == self._last_log_tenth and now - self._last_log_t < self.LOG_EVERY_S and done < total:
                return
            self._last_log_tenth, self._last_log_t = tenth, now
            self.stream.write(line + "\n")
        self.stream.flush()


class JsonProgress:
    """One JSON object per line on stdout (flushed), for host adapters reading a subprocess."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: dict[str, Any]) -> None:
        self.stream.write(json.dumps(event, default=str) + "\n")
        self.stream.flush()


def make_progress(kind: str) -> ProgressCallback | None:
    if kind == "bar":
        return BarProgress()
    if kind == "json":
        return JsonProgress()
    if kind == "none":
        return None
    raise ValueError(f"progress kind {kind!r}: expected one of {', '.join(KINDS)}")
