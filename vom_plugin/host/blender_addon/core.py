"""The Blender-free half of the VOM Matte add-on: standard library only, tested without Blender.

Blender runs its own Python (3.10 in the official 3.x builds, 3.11 from 4.1): this module keeps to syntax
both accept and imports nothing but the standard library. It knows the knob table (``node_def.json``,
generated from ``node_defs/vom_matte.yaml``), where the project's ``vom`` is, how an Image node or Movie
Clip maps scene frames to the file frames of its sequence, how to write a shot file, and how to run
``vom render --progress json`` without blocking Blender (``RenderJob``). ``ui.py`` holds the bpy half.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import common

HERE = Path(__file__).resolve().parent
NODE_DEF_FILE = HERE / "node_def.json"
ENV_FILE = HERE / "vom_env.json"  # written by `install.py --blender`: the project's vom
TERMINATE_TIMEOUT_S = 10.0


class HostError(Exception):
    """A problem the artist can fix (a setting, a node, a missing install); shown as a Blender report."""


# ------------------------------------------------------------------------------------- knobs and vom


@functools.cache
def node_def() -> dict[str, Any]:
    """The knob table of the node (generated from node_defs/vom_matte.yaml by `vom gizmo`)."""
    return common.load_knob_table(NODE_DEF_FILE)


def shot_knob_names() -> tuple[str, ...]:
    return tuple(k["name"] for k in node_def()["knobs"])


def vom_executable(preference: str = "") -> str:
    """The project environment's ``vom``: ``VOM_EXECUTABLE``, else the add-on preference, else the path
    ``install.py --blender`` recorded beside this file, else ``vom`` on PATH."""
    recorded = ""
    if ENV_FILE.is_file():
        try:
            recorded = str(json.loads(ENV_FILE.read_text(encoding="utf-8")).get("vom") or "")
        except (OSError, ValueError, RecursionError):
            recorded = ""
    sources = ((os.environ.get("VOM_EXECUTABLE", ""), "the environment's VOM_EXECUTABLE, which the add-on's "
                "preference does not override: unset it, or point it at a vom that exists"),
               (preference, "the add-on's preference: point it at the vom of the environment install.py made"),
               (recorded, f"recorded by install.py --blender in {ENV_FILE.name}: run `python3 install.py --blender` "
                          "from the vom checkout again, or set the add-on's preference"),
               (shutil.which("vom") or "", "found on PATH"))
    for cand, where in sources:
        if cand:
            exe = os.path.expanduser(cand)
            if Path(exe).is_file():
                if not os.access(exe, os.X_OK):
                    raise HostError(f"vom executable {exe!r} is not executable (from {where.split(':')[0]}): chmod "
                                    "+x it, or point the add-on's preference at the vom of the environment install.py "
                                    "made")
                return exe
            # named with where it came from: a stale VOM_EXECUTABLE was met with "set it in the add-on's preferences",
            # which was set and was being passed over (QA)
            raise HostError(f"vom executable {exe!r} does not exist (from {where})")
    raise HostError("vom is not installed for Blender: run `python3 install.py --blender` from the vom checkout "
                    "(or set the vom executable in Preferences > Add-ons > VOM Matte)")


subprocess_env = common.subprocess_env


# ------------------------------------------------------------------------------- sequences and frames

def sequence_pattern(path: str) -> tuple[str, int, int]:
    """A vom pattern from the path of one frame of a sequence, the way Blender finds the frame number:
    the last run of digits in the file name before its extension. Returns (pattern, number, digits),
    e.g. ``/p/plate.0101.exr`` -> (``/p/plate.####.exr``, 101, 4)."""
    folder, name = os.path.split(path)
    stem_end = name.rfind(".")
    if stem_end <= 0:
        stem_end = len(name)
    runs = list(re.finditer(r"[0-9]+", name[:stem_end]))
    if not runs:
        raise HostError(f"{path}: no frame number in the file name; an image sequence is named like plate.0001.exr")
    m = runs[-1]
    digits = m.end() - m.start()
    return os.path.join(folder, name[:m.start()] + "#" * digits + name[m.end():]), int(m.group()), digits


frame_path = common.frame_path
pattern_digits = common.pattern_digits


@dataclass(frozen=True)
class Timing:
    """How a Blender Image node maps scene frames to the file frames of its sequence (Blender's own rule):
    scene frame ``start`` shows file frame ``1 + offset``, for ``duration`` frames."""

    start: int
    offset: int
    duration: int

    def file_frame(self, scene_frame: int) -> int:
        return scene_frame - self.start + 1 + self.offset

    def scene_frame(self, file_frame: int) -> int:
        return file_frame + self.start - 1 - self.offset

    @property
    def scene_range(self) -> tuple[int, int]:
        return self.start, self.start + max(self.duration, 1) - 1


def file_frames_note(timing: Timing) -> str:
    """How vom's frame numbers read in the scene, where the plate node shows file frame F at another scene frame
    (vom's failures and warnings name file frames: "keyframe 1" beside a Mask drawn at scene frame 101); "" where
    they agree."""
    if timing.file_frame(timing.start) == timing.start:
        return ""
    return (f"vom numbers frames as the plate's files do: scene frame {timing.start} is file frame "
            f"{timing.file_frame(timing.start)}")


def clip_timing(first_number: int, start: int, offset: int, duration: int) -> Timing:
    """A Movie Clip of an image sequence as Image-node timing: the clip's first file (the number in its path)
    is shown at its start frame, shifted by its offset."""
    return Timing(start=start, offset=first_number - 1 + offset, duration=duration)


def parse_objects(text: str) -> dict[str, list[int]]:
    """The ``objects`` setting: ``hero 1 50; dog 40`` (``;`` between objects): each object's name, the Mask or
    Image node holding its roto and the layer its alpha gets, then the scene frames at which it is drawn."""
    return dict(common.parse_objects(text, parse_keyframes, HostError, "hero 1 50; dog 40"))


def parse_keyframes(text: str) -> list[int]:
    """The ``keyframes`` setting: scene frame numbers separated by spaces or commas, e.g. ``1 50``."""
    return common.parse_keyframes(text, HostError, "1 50")


def shift_frames(text: str, delta: int, what: str = "frames") -> str:
    """A frame range (``1-100``, ``1-100x2``, ``1,5,10-20``) with every frame number moved by ``delta``:
    scene frames to the plate's file frames."""
    return common.shift_frames(text, delta, HostError, what)


frame_bounds = common.frame_bounds


def default_scene_frames(timing: Timing, scene_start: int, scene_end: int) -> tuple[int, int]:
    """The scene frames the comp renders that the plate covers."""
    first, last = max(timing.scene_range[0], scene_start), min(timing.scene_range[1], scene_end)
    if first > last:
        raise HostError(f"frames: the plate covers scene frames {timing.scene_range[0]}-{timing.scene_range[1]}, "
                        f"outside the scene's range {scene_start}-{scene_end}; set the frame range")
    return first, last


def check_scene_frames(timing: Timing, node: str, frames: str, drawn: dict[str | None, list[int]]) -> None:
    """HostError, in the scene frames the artist typed, for Frames or a keyframe outside the scene frames the plate
    node shows (vom said it in file frames: "missing frames -5-0" for scene frames 95-100 of a plate shown from 101)."""
    first, last = timing.scene_range
    bounds = frame_bounds(frames) if frames.strip() else None
    if bounds is not None and (bounds[0] < first or bounds[1] > last):
        raise HostError(f"Frames {frames.strip()}: the plate node {node!r} shows scene frames {first}-{last}; set "
                        f"Frames within them (or the node's Start, Offset and Frames)")
    for name, kfs in drawn.items():
        for kf in kfs:
            if not first <= kf <= last:
                where = "Keyframes" if name is None else f"Objects ({name})"
                raise HostError(f"{where}: scene frame {kf} is outside the scene frames {first}-{last} the plate node "
                                f"{node!r} shows")


def check_plate_files(pattern: str, timing: Timing, node: str, frames: str, scene_frames: Sequence[int],
                      drawn: dict[str | None, list[int]]) -> None:
    """HostError, in scene frames, for the frames the render asks for (``scene_frames``: Frames, or the scene's
    frames the node shows where Frames is empty) or a keyframe whose plate file is not on disk: a node whose Frames
    run past its files shows them black, and vom refused them in file frames ("missing frames 25-30 ... scene frame
    101 is file frame 1", QA). One listing of the plate's folder, no file opened. Left to vom where it says more: a
    folder that cannot be listed, or no file of the pattern at all (a wrong padding, a folder that does not exist)."""
    folder, name = os.path.split(pattern)
    if not common.has_frame_token(name):
        return
    try:
        listed = os.listdir(folder or ".")
    except OSError:
        return
    # any padding: the listing only clears frames, it never refuses one vom would read (-0002 for -002); one it
    # clears that vom would not read is still said by vom
    on_disk = {f for f in (common.frame_number(name, n, any_padding=True) for n in listed) if f is not None}
    if not on_disk:
        return

    def missing(scene: Sequence[int]) -> list[int]:
        # not in the listing: asked of the file system before it is refused (a case-folding disk, PLATE.0001.EXR)
        return [s for s in scene if timing.file_frame(s) not in on_disk
                and not os.path.isfile(common.frame_path(pattern, timing.file_frame(s)))]

    shown = sorted(timing.scene_frame(f) for f in on_disk)
    runs = common.frame_ranges(shown).split(",")
    files_at = ",".join(runs) if len(runs) <= 8 else f"{','.join(runs[:4])},...,{','.join(runs[-2:])}"
    lacking = [("Frames " + frames.strip() if frames.strip() else
                f"Frames (empty: scene frames {common.frame_ranges(scene_frames)}, those of the scene the plate node "
                f"shows)", missing(scene_frames))]
    lacking += [("Keyframes" if obj is None else f"Objects ({obj})", missing(kfs)) for obj, kfs in drawn.items()]
    for where, gone in lacking:
        if gone:
            several = len(gone) > 1
            files = common.frame_path(pattern, timing.file_frame(gone[0])) + (
                f" ... {os.path.basename(common.frame_path(pattern, timing.file_frame(gone[-1])))}" if several else "")
            raise HostError(
                f"{where}: scene frame{'s' if several else ''} {common.frame_ranges(gone)} "
                f"{'have' if several else 'has'} no plate file ({files}); the plate node {node!r} has files for "
                f"scene frames {files_at}: set {_what_to_set(where)} within them, or the node's own Frames, Start "
                f"and Offset to its files")


def _what_to_set(where: str) -> str:
    """The field a refusal of ``check_plate_files`` asks to change: Frames, Keyframes, or an object's keyframes
    ("set Objects within them" read as the objects themselves: review)."""
    if where.startswith("Objects ("):
        return f"the keyframes of {where[len('Objects ('):-1]!r} in Objects"
    return where.split(" ")[0]


def safe_name(name: str, empty: str = "plate") -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or empty


def tagged_name(name: str, empty: str = "plate") -> str:
    """``name`` in a file name: as it is where it is made of letters, digits, ``_``, ``.`` and ``-`` (an existing
    default Output stays where it is), else made so with a tag of the name as it was: made safe, two names can meet
    (``sh010 v1`` and ``sh010_v1``, two Cyrillic names: each wrote, or was refused, the other's matte; QA)."""
    safe = safe_name(name, empty)
    return safe if safe == name else f"{safe}-{hashlib.sha1(name.encode('utf-8', 'surrogatepass')).hexdigest()[:6]}"


def node_key(scene_name: str, node_name: str) -> str:
    """A plate node's name in files: its scene's and its own (two scenes of a .blend each have an ``Image``)."""
    return f"{tagged_name(scene_name, 'scene')}_{tagged_name(node_name)}"


def default_out(blend_path: str, scene_name: str, node_name: str, digits: int) -> str:
    """``vom/<.blend name>/<scene>_<plate node>.####.exr`` beside the .blend: two .blend files in one folder, or two
    scenes of one, each with a plate node left as ``Image``, wrote each other's matte."""
    folder, stem = os.path.split(os.path.splitext(blend_path)[0])
    return os.path.join(folder, "vom", tagged_name(stem),
                        f"{node_key(scene_name, node_name)}.{'#' * max(digits, 1)}.exr")


work_dir = common.work_dir


# What a matte is loaded as (data: no view or colour transform), by the names colour configs give it: Blender's
# own, then those of studio ACES and CG configs.
DATA_COLORSPACES = ("Non-Color", "Raw", "Utility - Raw", "raw", "Data", "Generic Data", "Utility - Generic Data")


def data_colorspace(available: Sequence[str]) -> str | None:
    """The data colour space of the configuration that offers ``available``; None when it has none by those names."""
    return next((name for name in DATA_COLORSPACES if name in available), None)


# Blender colour space names (3.x and 4.x configs) -> vom's colorspace knob. 3.x calls linear Rec.709 "Linear",
# ACEScg "Linear ACEScg" and ACES2065-1 "Linear ACES"; 4.x "Linear Rec.709", "ACEScg" and "ACES2065-1".
COLORSPACES = {"Linear": "lin_rec709", "Linear Rec.709": "lin_rec709", "ACEScg": "ACEScg",
               "Linear ACEScg": "ACEScg", "ACES2065-1": "ACES2065-1", "Linear ACES": "ACES2065-1",
               "sRGB": "sRGB", "Non-Color": "raw", "Raw": "raw",
               # the names of studio ACES / CG configs (OCIO=...) Blender shows then
               "ACES - ACEScg": "ACEScg", "ACES - ACES2065-1": "ACES2065-1", "Utility - Linear - sRGB": "lin_rec709",
               "Utility - Linear - Rec.709": "lin_rec709", "Linear Rec.709 (sRGB)": "lin_rec709",
               "Utility - sRGB - Texture": "sRGB", "sRGB - Texture": "sRGB", "Utility - Raw": "raw",
               # OCIO v2's CG and studio configs (QA: their sRGB refused where the Nuke node and the header read it)
               "sRGB Encoded Rec.709 (sRGB)": "sRGB", "Gamma 2.2 Encoded Rec.709": "sRGB",
               "sRGB - Display": "sRGB"}


def colorspace_for(blender_name: str) -> str:
    """vom's name for the colour space Blender shows for the plate; HostError when vom reads no such plate
    (XYZ, a log or display space): the render would take it for another space and say nothing."""
    vom = COLORSPACES.get(blender_name)
    if vom is None:
        raise HostError(f"the plate's colour space {blender_name!r} (its Image's Color Space in Blender) has no vom "
                        f"equivalent: vom reads {', '.join(repr(k) for k in COLORSPACES)}; untick Colour space from "
                        f"plate and set Input colour space to what the pixels are, or convert the plate")
    return vom


def earlier_frames(outs: Sequence[str], rendered: str, timing: Timing) -> list[int]:
    """The scene frames of the plate whose matte files exist but were not rendered now (``rendered``: the shot's
    file-frame range): an earlier render's, of the roto as it was then, which the alpha node shows as if current."""
    first = timing.file_frame(timing.start)
    return [timing.scene_frame(f)
            for f in common.earlier_matte_frames(outs, rendered, range(first, first + max(timing.duration, 1)))]


def unmatted_frames(outs: Sequence[str], rendered: str, timing: Timing,
                    scene_range: tuple[int, int] | None = None) -> list[int]:
    """The scene frames where the plate node shows a picture (within ``scene_range``, the frames the scene renders)
    that have no matte file (``rendered``: the shot's file-frame range): Frames with a step (``1-5x2``) skip some,
    Frames narrower than the plate (or a scene range that cut it short) leave its ends out, and the Set Alpha shows
    the plate transparent there."""
    done: set[int] = set()
    for a, b, step in common.range_numbers(rendered, ValueError):
        done.update(range(a, b + 1, step))
    lo, hi = timing.scene_range
    if scene_range is not None:
        lo, hi = max(lo, scene_range[0]), min(hi, scene_range[1])
    files = (timing.file_frame(f) for f in range(lo, hi + 1))
    return [timing.scene_frame(f) for f in files
            if f not in done and not any(os.path.exists(common.frame_path(o, f)) for o in outs)]


frame_ranges = common.frame_ranges


OBJECT_TOKEN = "{object}"


def mattes(fields: Mapping[str, Any]) -> list[tuple[str | None, str, str]]:
    """(object, output pattern, channel) of each matte a shot writes, the one the plate's Set Alpha takes first:
    the one unnamed matte; else each object's, in its own sequence (``{object}`` in Output; the channel as set) or
    as its layer of one file (``hero.A``; ``vom.hero.A`` for ``vom.A``)."""
    out, channel = str(fields["out"]), str(fields.get("channel") or "A")
    objects = list(fields.get("objects") or {})
    if not objects:
        return [(None, out, channel)]
    if OBJECT_TOKEN in out:
        return [(n, out.replace(OBJECT_TOKEN, n), channel) for n in objects]
    layer = channel[:-1]  # "" or "vom."
    return [(n, out, f"{layer}{n}.A") for n in objects]


def alpha_socket(channel: str) -> str:
    """The Image node output that carries vom's alpha channel: ``A`` -> ``Alpha``; ``vom.A`` makes Blender
    read the file as a multilayer EXR whose pass ``vom`` is the alpha."""
    layer, _, name = channel.rpartition(".")
    if name not in ("A", "a", "alpha"):
        raise HostError(f"channel {channel!r}: the Blender add-on reads an alpha channel, A or <layer>.A")
    if not layer:
        return "Alpha"
    if "." in layer:
        raise HostError(f"channel {channel!r}: Blender shows <layer>.<pass>.A as a render pass; use A or <layer>.A")
    return layer


# ----------------------------------------------------------------------------------------- shot files


def shot_fields(knobs: Mapping[str, Any], *, plate: str, frames: str, keyframes: Mapping[int, str],
                out: str, objects: Mapping[str, Mapping[int, str]] | None = None) -> dict[str, Any]:
    """Shot fields from the settings and the resolved inputs; empty optional settings are left out."""
    return common.shot_fields(knobs, shot_knob_names(), plate=plate, frames=frames, keyframes=keyframes, out=out,
                              objects=objects)


def roto_sources(rotos_of: Mapping[str | None, Mapping[int, str]], masks: bool, mask: str, node: str
                 ) -> dict[str, str]:
    """{roto file: what the artist knows it as}, from {object: {scene keyframe: file}}: with Roto: Mask, each
    object's roto is the Mask of its name (the shot's, ``mask``, without objects); else the Image node of its name
    (the shot's, ``node``)."""
    kind, own = ("Mask", mask) if masks else ("Image node", node)
    return common.roto_names((str(path), f"the {kind} {(name if name is not None else own)!r} at scene frame {k}")
                             for name, frames in rotos_of.items() for k, path in frames.items())


def shot_yaml(fields: Mapping[str, Any]) -> str:
    return common.shot_yaml(fields, "written by the VOM Matte add-on in Blender; `vom render` this file to render "
                                    "the shot")


write_text_atomic = common.write_text_atomic


def build_render_command(vom: str, shot_file: str | Path) -> list[str]:
    # an artist re-renders after each roto tweak: keep torch and the weights loaded between them
    return [vom, "render", str(shot_file), "--progress", "json", "--start-worker"]


# ------------------------------------------------------------------------------------ the render job


@dataclass
class Progress:
    """One JSON line of ``vom render --progress json``."""

    done: int | None = None
    total: int | None = None
    frame: int | None = None
    event: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def percent(self) -> int | None:
        """The render's work done (its steps: frames come in bursts between two keyframes), else its frames."""
        return common.percent(self.raw, self.done, self.total)


def parse_progress(line: str) -> Progress | None:
    """One line of ``vom render --progress json``; None for a line that is not a JSON object."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None

    def _int(key: str) -> int | None:
        v = obj.get(key)
        return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    return Progress(done=_int("done"), total=_int("total"), frame=_int("frame"), event=str(obj.get("event") or ""),
                    raw=obj)


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class RenderJob:
    """``vom render --progress json`` as a subprocess that Blender polls (a timer in the modal operator,
    a loop in ``wait``) without blocking on it. ``cancel`` sends SIGTERM (vom finishes the frame it is
    writing and exits) and, if it has not exited ``terminate_timeout`` seconds later, SIGKILL."""

    def __init__(self, cmd: Sequence[str], env: Mapping[str, str] | None = None, *,
                 terminate_timeout: float = TERMINATE_TIMEOUT_S, tail: int = 40, frame_offset: int = 0) -> None:
        """``frame_offset``: scene frame minus the plate's file frame (vom's progress names file frames; the status
        line names the scene's)."""
        self.cmd = list(cmd)
        self.frame_offset = frame_offset
        self.proc, self._lines, self._readers = common.start_read(self.cmd, env)
        self.terminate_timeout = terminate_timeout
        self.output_tail: deque[str] = deque(maxlen=tail)
        self.last: Progress | None = None
        self._shown: Progress | None = None
        self._percent_shown = 0  # the share the progress bar showed last (``percent``)
        self.error: str = ""  # vom's own account of a failure (its "error" event)
        self.cancelled = False
        self.started = False  # vom read the shot and began (its start event): before it, a failure wrote nothing
        self.cache_off = ""  # why it ran without the cache (its start event): a new render computes every frame
        self.written: list[int] = []  # the file frames whose outputs are complete, as vom reported them
        self.total: int | None = None  # the frames the render was to write
        self._kill_at: float | None = None
        self._t_first: float | None = None
        self._done_first = 0
        self._steps = common.StepClock()  # time left from the steps, not from the bursts of frames

    def poll(self) -> list[Progress]:
        """The progress lines that arrived since the last call; kills a cancelled render that overstays."""
        new: list[Progress] = []
        while self._lines:
            tag, line = self._lines.popleft()
            prog = parse_progress(line) if tag == "out" else None
            if prog is None:
                self.output_tail.append(line)
                continue
            if prog.event == "error":
                self.error = str(prog.raw.get("message") or "")
            if prog.event == "start":
                self.started = True
                self.cache_off = common.cache_off(prog.raw)
            if prog.event == "frame" and prog.frame is not None:
                self.written.append(prog.frame)
            if prog.total is not None:
                self.total = prog.total
            if prog.event == "frame" and self._t_first is None:
                self._t_first, self._done_first = time.monotonic(), prog.done or 0
            self._steps.update(prog.raw)
            self.last = prog
            if prog.event in ("start", "frame", "done") or prog.done is not None:
                self._shown = prog
            new.append(prog)
        if self._kill_at is not None and self.proc.poll() is None and time.monotonic() > self._kill_at:
            self.proc.kill()
        return new

    @property
    def running(self) -> bool:
        return self.proc.poll() is None or any(t.is_alive() for t in self._readers) or bool(self._lines)

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def cancel(self) -> None:
        if self.proc.poll() is None and not self.cancelled:
            self.proc.terminate()
            self._kill_at = time.monotonic() + self.terminate_timeout
        self.cancelled = True

    def wait(self, on_progress: Callable[[Progress], None] | None = None, poll_s: float = 0.1,
             should_cancel: Callable[[], bool] | None = None) -> int:
        """Block until vom exits (scripts and background mode); returns its exit code."""
        while True:
            for prog in self.poll():
                if on_progress:
                    on_progress(prog)
            if should_cancel is not None and not self.cancelled and should_cancel():
                self.cancel()
            if not self.running:
                break
            time.sleep(poll_s)
        for t in self._readers:
            t.join(timeout=5)
        self.poll()
        return int(self.proc.wait())

    def percent(self) -> int | None:
        """The render's share done, never back (the steps' total grows where damaged cache entries are computed
        again: the bar went back as the artist watched, QA)."""
        now = self.last.percent if self.last else None
        if now is not None:
            self._percent_shown = now = max(self._percent_shown, now)
        return now

    def status(self, prog: Progress | None = None) -> str:
        """One line for Blender's status bar about ``prog`` (default: the latest start/frame/done line):
        frame, count, seconds per frame and time left."""
        if self.cancelled:
            return "VOM Matte: cancelling..."
        p = prog or self._shown
        if p is None or (p.event != "done" and p.total is None):
            return "VOM Matte: starting vom (loading the model)... Esc cancels"
        if p.event == "done":
            return f"VOM Matte: done, {p.raw.get('frames_written', '?')} frames written"
        if p.event == "start" or p.done is None:
            return f"VOM Matte: {p.total} frames on {p.raw.get('device', '?')}... Esc cancels"
        frame = p.frame + self.frame_offset if p.frame is not None else "?"
        text = f"VOM Matte: frame {frame} ({p.done}/{p.total})"
        if self._steps.first is not None:  # time left from the steps, not from the bursts of frames
            seconds = self._steps.left()
            if seconds is not None:
                text += f", {_clock(seconds)} left"
        elif self._t_first is not None and p.done > self._done_first:
            per = (time.monotonic() - self._t_first) / (p.done - self._done_first)
            text += f", {per:.1f} s/frame, {_clock(per * max((p.total or 0) - p.done, 0))} left"
        return text + ". Esc cancels"

    def failure(self, said: Callable[[str], str] = str) -> str:
        """The report of a failed render: vom's message (it names the file, frame or field) or its last lines, as
        ``said`` puts them (the host's terms: ``common.in_node_terms``)."""
        code = self.proc.poll()
        if self.error:
            detail = said(self.error)
        else:  # the lines together: a crash's traceback is told apart as a whole and kept as it is (review)
            lines = [line for line in list(self.output_tail)[-6:] if line.strip()]
            detail = " | ".join(said("\n".join(lines)).splitlines()) if lines else ""
        kind = "bad input" if code == 2 else "internal error" if code == 1 else f"exit {code}"
        return f"vom render failed ({kind}, exit {code}): {detail or 'no message'}"
