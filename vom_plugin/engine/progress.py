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
    """A one-line bar on stderr: done/total, frames per second, time left; redrawn per frame written."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.t0 = time.perf_counter()
        self.first_frame_t: float | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "start":
            self.t0 = time.perf_counter()
            self._draw(0, event["total"], None)
        elif kind == "frame":
            self._draw(event["done"], event["total"], event["frame"])
        elif kind == "done":
            self.stream.write(f"\n{event['frames_written']} frames in {_clock(event['elapsed'])}"
                              f" ({event['frames_written'] / max(event['elapsed'], 1e-9):.2f} frames/s)\n")
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
        self.stream.write(f"\r[{bar}] {done}/{total}{where}  {rate:.2f} frames/s  ETA {eta}  ")
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
