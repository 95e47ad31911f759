"""What the Nuke adapter and the Blender add-on share. Standard library only: both run inside their host's Python.

The add-on folder is copied whole into Blender (``install.py --blender``), which imports this as ``.common``; Nuke
loads its adapter (``host/nuke.py``) from the checkout, which loads this file beside it there.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

_PRINTF = re.compile(r"%0?(\d*)d")


def frame_path(pattern: str, frame: int) -> str:
    """The file of ``frame`` in a vom pattern (``####``, ``@@@@``, ``%04d``: the padding is the minimum)."""
    folder, name = os.path.split(pattern)
    m = re.search(r"#+|@+", name)
    if m:
        width = m.end() - m.start()
        name = name[:m.start()] + f"{frame:0{width}d}" + name[m.end():]
    else:
        p = _PRINTF.search(name)
        if p is None:
            return pattern
        width = int(p.group(1) or 0)
        name = name[:p.start()] + f"{frame:0{width}d}" + name[p.end():]
    return os.path.join(folder, name)


def subprocess_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the vom subprocess: the host's own Python settings must not leak into vom's Python (a
    host's ``PYTHONHOME`` made it fail to start, "No module named 'encodings'"; a ``PYTHONPATH`` made for the host's
    Python 3.9 or 3.10 would come before vom's own packages)."""
    env = dict(os.environ if base is None else base)
    for name in ("PYTHONHOME", "PYTHONPATH"):
        env.pop(name, None)
    return env


def same_files(a: str, b: str) -> bool:
    """Whether two output patterns (``####``, ``%04d``, ``@@@@``) name the same files."""
    return all(os.path.normpath(frame_path(a, f)) == os.path.normpath(frame_path(b, f)) for f in (1, 1001, 12345))


def range_parts(text: str) -> list[str]:
    """The parts of a frame range as vom reads it (``io.sequence``): commas or spaces between parts
    (``1-50 60-100``, as Nuke writes them), spaces inside one dropped (``1 - 50``, ``1-100 x 2``); a dash after a
    space and before a digit starts a negative frame (``-10 -5``)."""
    joined = re.sub(r"\s*([,x:])\s*", r"\1", re.sub(r"(\d)(?:\s+-\s+|-\s*)", r"\1-", text.strip()))
    return [p for p in re.split(r"[\s,]+", joined) if p] or [""]


def shift_frames(text: str, delta: int, error: type[Exception], what: str = "frames", steps: str = "x") -> str:
    """A frame range (``1-100``, ``1-100x2``, ``1,5,10-20``, ``1-50 60-100``) with every frame number moved by
    ``delta`` (a host's frames -> the plate's file frames); ``steps``: the step signs taken (Nuke's knob also
    ``:``, as vom reads it). ``error`` (the host's) names a part that is not a range or runs backwards."""
    part_rx = re.compile(r"^(-?\d+)(?:-(-?\d+))?(?:([" + re.escape(steps) + r"])(\d+))?$")
    parts = []
    for part in range_parts(text):
        m = part_rx.match(part)
        if m is None:
            raise error(f"{what} {text!r}: expected a range such as 1-100, 1-100x2, 1,5,10-20 or 1-50 60-100")
        a, b, sign, step = m.groups()
        s = str(int(a) + delta)
        if b is not None:
            if int(b) < int(a):
                raise error(f"{what} {text!r}: {a}-{b} ends before it starts")
            s += f"-{int(b) + delta}"
        if step is not None:
            s += f"{sign}{int(step)}"
        parts.append(s)
    return ",".join(parts)


def exr_header(data: bytes) -> tuple[dict[bytes, tuple[bytes, bytes]], int] | None:
    """An EXR file's header attributes ({name: (type, value)}) and where its header ends, else None."""
    if data[:4] != b"\x76\x2f\x31\x01":
        return None
    attrs: dict[bytes, tuple[bytes, bytes]] = {}
    pos = 8
    while pos < len(data):
        end = data.find(b"\0", pos)
        if end < 0:
            return None
        if end == pos:  # the empty name that ends the header
            return attrs, pos + 1
        kind_end = data.find(b"\0", end + 1)
        if kind_end < 0 or kind_end + 5 > len(data):
            return None
        size = int.from_bytes(data[kind_end + 1:kind_end + 5], "little", signed=True)
        start = kind_end + 5
        if size < 0 or start + size > len(data):  # damaged: never loop back or read past the end
            return None
        attrs[data[pos:end]] = (data[end + 1:kind_end], data[start:start + size])
        pos = start + size
    return None


def same_picture(a: Path, b: Path) -> bool:
    """The same picture: equal files, or EXRs equal but for the values of text attributes (a render's time
    stamp, Nuke's node hash); windows, channels, compression and every pixel byte must be equal."""
    x, y = a.read_bytes(), b.read_bytes()
    if len(x) != len(y):
        return False
    hx, hy = exr_header(x), exr_header(y)
    if hx is None or hy is None or hx[1] != hy[1] or hx[0].keys() != hy[0].keys():
        return x == y
    if any(kind != b"string" and (kind, value) != hy[0][name] for name, (kind, value) in hx[0].items()):
        return False
    return x[hx[1]:] == y[hy[1]:]


def keep_unless_changed(new: Path, path: Path) -> None:
    """Move the freshly rendered ``new`` to ``path``, or drop it where ``path`` holds the same picture: a file
    written again gets a new modification time, which vom's cache takes for another plate (every frame encoded
    again) or another roto (every step computed again)."""
    if path.is_file() and same_picture(new, path):
        new.unlink()
    else:
        os.replace(new, path)


_OBJECT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")  # vom checks it again (grammar.parse_object_name)


def parse_objects(text: str, parse_keyframes: Callable[[str], list[int]], error: type[Exception],
                  example: str) -> dict[str, list[int]]:
    """The ``objects`` setting of a host: one object a line (or ``;``-separated part: Blender's text fields hold
    one line), its name then the frames at which it is drawn, e.g. ``hero 1001 1050`` and ``dog 1040``; {} when
    empty. ``parse_keyframes`` reads the frames and raises ``error``, which is raised here too."""
    out: dict[str, list[int]] = {}
    for n, line in enumerate(re.split(r"[\n;]", text), start=1):
        words = line.replace(",", " ").split()
        if not words:
            continue
        name = words[0]
        if not _OBJECT_NAME.match(name):
            raise error(f"objects, line {n}: {name!r} is not a layer name (letters, digits, _); expected e.g. "
                        f"{example!r}")
        if name.lower() in {o.lower() for o in out}:
            raise error(f"objects, line {n}: {name!r} is given twice")
        try:
            out[name] = parse_keyframes(" ".join(words[1:]))
        except error as e:
            raise error(f"objects, line {n} ({name}): {e}") from None
    return out


def percent(raw: Mapping[str, Any], done: int | None, total: int | None) -> int | None:
    """A progress event's share of the render: its steps' when it has them (frames come in bursts between two
    keyframes), else its frames' (``done`` of ``total``)."""
    steps, steps_total = raw.get("steps_done"), raw.get("steps_total")
    if isinstance(steps, int) and isinstance(steps_total, int) and steps_total > 0:
        return max(0, min(100, int(100 * steps / steps_total)))
    if done is None or not total:
        return None
    return max(0, min(100, int(100 * done / total)))


class StepClock:
    """Time left from the steps a render reports (``step`` and ``frame`` events): measured over the computed steps
    since the first one seen (steps read back from the cache cost next to nothing)."""

    def __init__(self) -> None:
        self.first: tuple[float, int] | None = None  # (time, computed steps) at the first computed step
        self.work: tuple[int, int, int] | None = None  # (computed, done, total) steps

    def update(self, raw: Mapping[str, Any]) -> bool:
        """Take an event's step counts; False when it has none (an event of a vom without them)."""
        done, total = raw.get("steps_done"), raw.get("steps_total")
        if not isinstance(done, int) or not isinstance(total, int):
            return False
        computed = done - int(raw.get("steps_cached") or 0)
        if self.first is None and computed > 0:
            self.first = (time.monotonic(), computed)
        self.work = (computed, done, total)
        return True

    def left(self) -> float | None:
        """Seconds left, or None before the second computed step."""
        if self.first is None or self.work is None:
            return None
        computed, done, total = self.work
        if computed <= self.first[1]:
            return None
        return (time.monotonic() - self.first[0]) / (computed - self.first[1]) * max(total - done, 0)
