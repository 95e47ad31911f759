"""The Nuke adapter behind the VOM_Matte gizmo's buttons. Standard library and ``nuke`` only.

Nuke ships its own Python, and torch does not belong inside it: Analyze prepares the inputs in Nuke
(the plate's file pattern, the roto rendered at the keyframes), writes a shot file and runs the
project environment's ``vom render SHOT --progress json`` as a subprocess, turning its JSON lines into
a ``nuke.ProgressTask``; cancel stops the subprocess with SIGTERM (then SIGKILL if it does not exit).
Submit-to-farm writes the same shot file and a farm job bundle with ``vom farm openjd``.

``install.py --nuke`` loads this file into Nuke as the module ``vom_nuke`` and sets ``VOM_EXECUTABLE``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import stat
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import nuke

try:
    from typing import Protocol  # novermin (3.8; the except below is 3.7's)
except ImportError:  # Nuke 13's Python 3.7: TaskLike is only a type, any base serves at run time
    Protocol = object  # type: ignore[assignment]

# The gizmo knobs that are Shot fields (names = Shot fields = node_defs/vom_matte.yaml knobs; a test
# checks this tuple against the node definition, since this module cannot read YAML inside Nuke).
SHOT_KNOBS = ("plate", "frames", "keyframes", "objects", "out", "channel", "mask_channel", "output", "compression",
              "working_size", "colorspace", "model", "device", "memory", "top_k", "cache")
TERMINATE_TIMEOUT_S = 10.0


def _load_common() -> Any:
    """``blender_addon/common.py``, what this adapter shares with the Blender add-on (standard library only): Nuke
    loads this file from the checkout, outside any package, so the module is loaded from its path."""
    import importlib.util

    path = Path(__file__).resolve().parent / "blender_addon" / "common.py"
    spec = importlib.util.spec_from_file_location("vom_nuke_common", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_common = _load_common()


class HostError(Exception):
    """A problem the artist can fix (a knob, an input, a missing install); shown with nuke.message."""


class TaskLike(Protocol):
    """What run_with_progress needs of ``nuke.ProgressTask`` (tests pass a small fake)."""

    def setMessage(self, message: str) -> Any: ...
    def setProgress(self, percent: int) -> Any: ...
    def isCancelled(self) -> Any: ...


@dataclass
class Progress:
    """One JSON line of ``vom render --progress json``."""

    done: int | None = None
    total: int | None = None
    frame: int | None = None
    message: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def percent(self) -> int | None:
        """The render's work done (its steps: frames come in bursts between two keyframes), else its frames."""
        return _common.percent(self.raw, self.done, self.total)


@dataclass
class RunResult:
    returncode: int
    cancelled: bool
    last: Progress | None
    output_tail: list[str]
    written: list[int] = field(default_factory=list)  # the file frames whose outputs vom said are complete
    started: bool = False  # vom read the shot and began (its start event): a failure before it wrote nothing
    cache_off: str = ""  # why the render ran without the cache (its start event): a new one computes every frame


# ---------------------------------------------------------------------------------------------- pure logic


def vom_executable() -> str:
    """The project environment's ``vom``: ``VOM_EXECUTABLE`` (set by install.py --nuke), else PATH."""
    exe = os.environ.get("VOM_EXECUTABLE") or shutil.which("vom")
    if not exe or not Path(exe).is_file():
        raise HostError("vom is not installed for Nuke: run `python3 install.py --nuke` from the vom checkout "
                        f"(VOM_EXECUTABLE={os.environ.get('VOM_EXECUTABLE', '(unset)')!r})")
    return exe


def parse_objects(text: str) -> dict[str, list[int]]:
    """The ``objects`` knob: one object a line, its name (the Roto input's layer holding it) then the frames
    at which it is drawn, e.g. ``hero 1001 1050`` and ``dog 1040``. Empty: no objects."""
    return dict(_common.parse_objects(text, lambda words: parse_keyframes(words, "frames"), HostError,
                                      "hero 1001 1050", "Objects"))


def parse_keyframes(text: str, what: str = "Keyframes") -> list[int]:
    """The ``keyframes`` knob (labelled ``what``): frame numbers separated by spaces or commas, e.g. ``1001 1050``."""
    return list(_common.parse_keyframes(text, HostError, "1001 1050", what))


def parse_progress(line: str, frame_offset: int = 0) -> Progress | None:
    """Parse one line of ``vom render --progress json``; None for a line that is not a JSON object. The message
    names frames in script frames (``frame_offset``: script frame minus the plate's file frame, which vom says)."""
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

    done, total, frame = _int("done"), _int("total"), _int("frame")
    event = str(obj.get("event") or "")
    message = str(obj.get("message") or obj.get("stage") or "")
    if event == "warning":  # shown on the task as it comes (the closing message lists every one again)
        message = f"warning: {message}"
    if not message and event == "start" and total:
        message = f"starting: {total} frames" + (f" on {obj['device']}" if obj.get("device") else "")
    elif not message and event == "done":
        message = f"done: {obj.get('frames_written', '?')} frames written"
    elif not message and event not in ("frame", "step"):  # a step moves the bar, it has no words of its own
        message = event
    if frame is not None and total:
        message = (f"frame {frame + frame_offset} ({done if done is not None else '?'}/{total})"
                   + (f" {message}" if message else ""))
    return Progress(done=done, total=total, frame=frame, message=message, raw=obj)


def build_render_command(vom: str, shot_file: str | Path, frames: str | None = None) -> list[str]:
    # an artist re-renders after each roto tweak: keep torch and the weights loaded between them
    cmd = [vom, "render", str(shot_file), "--progress", "json", "--start-worker"]
    if frames:
        cmd += ["--frames", frames]
    return cmd


def build_farm_command(vom: str, shot_file: str | Path, bundle_dir: str | Path, chunk: int | None = None) -> list[str]:
    # no chunk: vom farm's default, one task per span (a span's frames are one propagation)
    chunked = ["--chunk", str(chunk)] if chunk else []
    return [vom, "farm", "openjd", str(shot_file), *chunked, "--out", str(bundle_dir)]


def shot_yaml(fields: Mapping[str, Any]) -> str:
    """A shot file (issue 5's keys) from field values; ``keyframes`` is {frame: roto path}."""
    return str(_common.shot_yaml(fields, "written by the VOM_Matte node in Nuke; `vom render` this file to render "
                                         "the shot"))


def write_text_atomic(path: Path, text: str) -> Path:
    return Path(_common.write_text_atomic(path, text))


def shot_fields(knobs: Mapping[str, Any], *, plate: str, frames: str, keyframes: Mapping[int, str],
                out: str, objects: Mapping[str, Mapping[int, str]] | None = None) -> dict[str, Any]:
    """Shot fields from the node's knob values and the resolved inputs; empty optional knobs are left out."""
    return dict(_common.shot_fields(knobs, SHOT_KNOBS, plate=plate, frames=frames, keyframes=keyframes, out=out,
                                    objects=objects))


def nuke_pattern(pattern: str) -> str:
    """A vom pattern as Nuke's Read reads it: ``@@@@`` and ``$F4`` become ``%04d`` (Nuke reads #### and %0Nd)."""
    return pattern if "#" in os.path.basename(pattern) else str(_common.printf_pattern(pattern))


def exr_channel_to_nuke(channel: str) -> str:
    """vom's output channel (``A`` or ``layer.A``) as the Nuke channel a Read shows it as."""
    layer, _, name = channel.rpartition(".")
    name = "alpha" if name in ("A", "a", "alpha") else name
    return f"{layer or 'rgba'}.{name}"


def terminate(proc: subprocess.Popen[Any], timeout: float = TERMINATE_TIMEOUT_S) -> int:
    """Stop the render cleanly: SIGTERM lets vom finish the frame file it is writing (atomic renames)
    and exit; SIGKILL only if it has not exited after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


class _Eta:
    """Time left: from the computed steps (steps read back from the cache cost next to nothing, and frames come
    in bursts between two keyframes), measured from the first one; else seconds per frame from the first frame
    written (model loading excluded)."""

    def __init__(self) -> None:
        self.t0: float | None = None
        self.done0 = 0
        self.steps = _common.StepClock()
        self.left = ""

    def __call__(self, prog: Progress) -> str:
        if self.steps.update(prog.raw):
            seconds = self.steps.left()
            if seconds is not None:
                self.left = f", {_clock(seconds)} left"
            return self.left
        if prog.done is None or not prog.total or prog.frame is None:
            return ""
        now = time.monotonic()
        if self.t0 is None:
            self.t0, self.done0 = now, prog.done
            return ""
        frames = prog.done - self.done0
        if frames <= 0:
            return ""
        per_frame = (now - self.t0) / frames
        left = per_frame * max(prog.total - prog.done, 0)
        return f", {per_frame:.1f} s/frame, {_clock(left)} left"


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def run_with_progress(cmd: Sequence[str], task: TaskLike, *, poll_s: float = 0.1,
                      terminate_timeout: float = TERMINATE_TIMEOUT_S, env: Mapping[str, str] | None = None,
                      on_progress: Callable[[Progress], None] | None = None, tail: int = 40,
                      frame_offset: int = 0, in_script_terms: Callable[[str], str] | None = None,
                      said_before: Callable[[str], bool] | None = None) -> RunResult:
    """Run ``cmd`` (a ``vom render --progress json``), drive ``task`` from its JSON lines, and stop it when
    the task is cancelled. Returns when the process has exited. ``frame_offset``: the task's messages name script
    frames (``parse_progress``). ``in_script_terms``: a warning's words as the closing message says them (the rotos
    Analyze baked named as the Roto input at a script frame); a warning shows as it comes, and the messages after it
    say how many there were until the render ends, and which the closing message lists: ``said_before`` (vom's words)
    is true of one it does not list again."""
    proc, lines, readers = _common.start_read(cmd, env if env is not None else _common.subprocess_env())
    last: Progress | None = None
    output: deque[str] = deque(maxlen=tail)
    written: list[int] = []
    eta = _Eta()
    cancelled = False

    started = []
    no_cache = []

    def heard(prog: Progress) -> None:
        if prog.raw.get("event") == "start":
            started.append(True)
            no_cache.append(_common.cache_off(prog.raw))
        if prog.raw.get("event") == "frame" and isinstance(prog.raw.get("frame"), int):
            written.append(int(prog.raw["frame"]))

    task.setMessage("starting vom")
    bar = 0
    warned, repeated = 0, 0
    while True:
        while lines:
            tag, line = lines.popleft()
            prog = parse_progress(line, frame_offset) if tag == "out" else None
            if prog is None:
                output.append(line)
                continue
            last = prog
            heard(prog)
            if prog.raw.get("event") == "error":  # vom's own account of a failure: keep it for the message
                output.append(f"error: {prog.raw.get('message', '')}")
            if prog.percent is not None:  # never back (the steps' total grows where cache entries are recomputed)
                bar = max(bar, prog.percent)
                task.setProgress(bar)
            left = eta(prog)  # every step refines it; the message shows it with the next frame
            if prog.raw.get("event") == "warning":
                warned += 1
                repeated += bool(said_before and said_before(str(prog.raw.get("message") or "")))
                words = str(prog.raw.get("message") or "")
                task.setMessage(f"warning: {in_script_terms(words) if in_script_terms else words}")
            elif prog.message:  # the next frame's message replaces the warning: how many there were stays said
                task.setMessage(prog.message + left + _warnings_said(warned, repeated))
            if on_progress:
                on_progress(prog)
        if task.isCancelled():
            cancelled = True
            task.setMessage("cancelling")
            terminate(proc, terminate_timeout)
            break
        if proc.poll() is not None and not any(t.is_alive() for t in readers) and not lines:
            break
        time.sleep(poll_s)
    for t in readers:
        t.join(timeout=5)
    while lines:  # what vom said after a cancel: the frames it completed before it stopped are among them
        tag, line = lines.popleft()
        prog = parse_progress(line) if tag == "out" else None
        if prog is not None:
            heard(prog)
        output.append(line)
    # vom says a failure twice, on stderr and as a JSON error event: the artist reads it once
    said = {line[len("error: "):].split("\n")[0] for line in output if line.startswith("error: ")}
    shown = [line for line in output if not (line.startswith("vom render: error: ")
                                              and line[len("vom render: error: "):] in said)]
    return RunResult(returncode=int(proc.wait()), cancelled=cancelled, last=last, output_tail=shown,
                     written=sorted(set(written)), started=bool(started), cache_off="".join(no_cache[:1]))


def _warnings_said(warned: int, repeated: int) -> str:
    """How many warnings a render gave so far, as the task says it after them: the closing message lists the new ones;
    ``repeated`` of them it does not list again, as at the node's last Analyze (QA: "listed when it ends", and nothing
    was listed)."""
    if not warned:
        return ""
    new = warned - repeated
    count = f"{warned} warning{'s' if warned > 1 else ''}"
    if not repeated:
        return f" ({count}, listed when it ends)"
    if not new:
        return f" ({count}, as at the last Analyze: not listed again)"
    return f" ({count}: {new} listed when it ends, {repeated} as at the last Analyze)"


_SHOWN_WARNINGS: dict[tuple[str, str, str], set[str]] = {}  # (script, node, Output) -> its last Analyze's warnings


def _command_line(cmd: Sequence[str]) -> str:
    """``cmd`` as the artist would paste it into their shell."""
    return subprocess.list2cmdline(list(cmd)) if os.name == "nt" else " ".join(shlex.quote(c) for c in cmd)


def done_warnings(result: RunResult) -> list[str]:
    """The warnings of a finished render (its ``done`` event's), which the artist must read, and why a running
    worker did not take it (vom says so on stderr, which the node showed only on failure: with two hosts in other
    environments, every Analyze of the second loaded torch again, and nobody said why: QA)."""
    raw = result.last.raw if result.last is not None and result.last.raw.get("event") == "done" else {}
    return [str(w) for w in raw.get("warnings") or []] + _common.worker_note(result.output_tail)


# ---------------------------------------------------------------------------------------------- Nuke side


def _knob_value(node: nuke.Node, name: str) -> Any:
    knob = node.knob(name)
    return knob.value() if knob is not None else None


_FRAME_EXPRESSION = re.compile(r"^\s*frame\s*(?:([+-])\s*([0-9]+))?\s*$")


def read_offset(mode: str, text: str, first: int) -> int | None:
    """Script frame minus file frame of a Read whose ``frame_mode`` is ``mode`` and ``frame`` is ``text``: 0 when it
    does not retime; ``start at`` N: N - first; ``offset`` N: N; an expression ``frame+N`` (file frame = script
    frame + N): -N, ``frame-N``: N. None for another expression, a retime vom cannot follow (the Source is baked)."""
    text = text.strip()
    if not text:
        return 0
    if mode in ("start at", "offset"):
        try:
            value = int(text)
        except ValueError:
            return None
        return value - first if mode == "start at" else value
    m = _FRAME_EXPRESSION.match(text)
    if m is None:
        return None
    n = int(m.group(2) or 0)
    return -n if m.group(1) == "+" else n


def _upstream_read(node: nuke.Node) -> tuple[nuke.Node, int, bool] | None:
    """The Read feeding the Source input directly (through Dots only), its offset (script frame minus file frame)
    and whether vom can read its files (a frame sequence; a movie is baked, over the Read's frames); None when there
    is none, it retimes by an expression, or it reads one still: anything else changes the pixels or times."""
    up = node.input(0)
    while up is not None and up.Class() == "Dot":
        up = up.input(0)
    if up is None or up.Class() != "Read":
        return None
    pattern = _read_pattern(up)
    if "%V" in pattern or "%v" in pattern:  # Nuke fills in the view; vom would look for the letters themselves
        raise HostError(f"{up.name()}: file {pattern} holds both views of a stereo plate (%V): vom mattes one "
                        "sequence; put a OneView node after the Read to choose the eye")
    # as Nuke evaluates it ([python ...], [value ...]); a movie (.mov, .mp4): vom reads frame sequences, so it is
    # baked as one, over its own frames; a single still (first = last, with a frame number or not) is no Read of
    # frames: Nuke holds it over the whole shot, and it is baked over the script's frames, as any other Source
    sequence = _common.has_frame_token(pattern)
    if int(_knob_value(up, "first") or 0) == int(_knob_value(up, "last") or 0):  # a still, dmp.exr or dmp.%04d.exr
        return None
    offset = read_offset(str(_knob_value(up, "frame_mode") or ""), str(_knob_value(up, "frame") or ""),
                         int(_knob_value(up, "first") or 0))
    return None if offset is None else (up, offset, sequence)


def _parent_group(node: nuke.Node | None) -> Any:
    """The group ``node`` sits in (the root, or a Group it was put in): where its inputs are."""
    if node is not None:
        path = _full_name(node).rpartition(".")[0]
        group = nuke.toNode(f"root.{path}") if path else None  # from the root: not the button's context
        if group is not None:
            return group
    return nuke.root()


@contextlib.contextmanager
def _in_group_at_full_resolution(node: nuke.Node | None = None) -> Iterator[None]:
    """Nodes made here go to the group ``node`` is in (a button of the gizmo runs with the gizmo as the context
    group, and a Write made there could not take the gizmo's inputs as its own: Nuke links no nodes across groups),
    and files are the full-resolution ones (in proxy mode, nuke.filename gives a Read's proxy file and a Write
    renders at the proxy scale)."""
    root = nuke.root()
    proxy = root.knob("proxy")
    was_on = proxy is not None and bool(proxy.value())
    # neither the proxy toggle nor the temporary Write is the artist's: no undo step (an undo brought the Write
    # back, wired to the Roto and pointing at a temporary file, for "render all Writes" to render)
    undo = getattr(nuke, "Undo", None)
    with _parent_group(node):
        if undo is not None:
            undo.disable()
        try:
            if proxy is not None and was_on:
                proxy.setValue(False)
            try:
                yield
            finally:
                if proxy is not None and was_on:
                    proxy.setValue(True)
        finally:
            if undo is not None:
                undo.enable()


def _read_pattern(read: nuke.Node) -> str:
    with _in_group_at_full_resolution(read):
        pattern = nuke.filename(read) or str(_knob_value(read, "file") or "")
    return _absolute(pattern, f"{read.name()}: file")


def _tcl(text: str, what: str) -> str:
    """``text`` with its Tcl expressions (``[value root.name]``, ``[getenv SHOW]``) evaluated as Nuke would, frame
    tokens (``####``, ``%04d``, ``$F4``) left alone."""
    if "[" not in text:
        return text
    try:
        return str(nuke.tcl("subst", "-nobackslashes", "-novariables", text))
    except Exception as e:  # Nuke raises RuntimeError with Tcl's message
        raise HostError(f"{what}: {text!r} could not be evaluated: {e}") from None


def _filtered(path: str) -> str:
    """``path`` through the studio's filename filters (``nuke.addFilenameFilter``: OS path mapping, $VAR
    expansion), as Nuke passes its own Reads' and Writes' paths."""
    callbacks = getattr(nuke, "callbacks", None)
    fn = getattr(callbacks, "filenameFilter", None)
    if fn is None:
        return path
    try:
        return str(fn(path))
    except Exception:  # a studio's filter that fails: the path as it is
        return path


def _absolute(path: str, what: str) -> str:
    """``path`` evaluated and made absolute as Nuke reads it: a relative path from the project directory (Project
    Settings), else from the script's folder (vom reads a shot file's relative paths from the shot file's folder,
    and Nuke's working folder is anybody's guess)."""
    # vom runs outside Nuke: the studio's filters (OS path mapping, $VAR expansion) are applied here, as Nuke
    # applies them to its own Reads' and Writes' paths
    path = os.path.expanduser(_filtered(_tcl(path.strip(), what)))
    left = re.search(r"\$(?:env\((\w+)\)|\{([A-Za-z_]\w*)\}|(?!F[0-9])(?!F(?!\w))([A-Za-z_]\w*))", path)  # not $F4
    if left:  # written as a literal $ in the shot file ($$): a folder named $SHOW would be made
        name = left.group(1) or left.group(2) or left.group(3)
        raise HostError(f"{what}: {path!r} holds ${name}, which Nuke does not expand in this path; write "
                        f"[getenv {name}] instead")
    if not path or os.path.isabs(path):  # a .. after a link as Nuke's Read reads it (the system's way)
        return str(_common.absolute(path)) if path else path
    root = nuke.root()
    # through the filters too: a script from another OS names its project directory in that OS's terms (QA: Z:/...
    # was joined to the mapped path as a folder named Z:)
    base = _filtered(_tcl(str(_knob_value(root, "project_directory") or "").strip(),
                          "Project Settings: project directory"))
    if not base or not os.path.isabs(os.path.expanduser(base)):
        script = root.name()
        if not script or script == "Root":
            raise HostError(f"{what}: {path!r} is a relative path, and the script is neither saved nor has a project "
                            "directory to read it from; give an absolute path or save the script")
        base = os.path.join(os.path.dirname(script), base)
    return str(_common.absolute(os.path.join(os.path.expanduser(base), path)))


def _path_knob(node: nuke.Node, name: str) -> str:
    """A path knob of ``node``, its Tcl evaluated and made absolute. Not by the knob's ``getEvaluatedValue``: that
    puts the current frame's number in place of ``####``."""
    return _absolute(str(_knob_value(node, name) or ""), f"{node.name()}: {_label(name)}")


def _label(name: str) -> str:
    """A knob's label, as the node shows it (``cache`` is Cache folder): what the artist's messages name."""
    if not _LABELS:
        _LABELS.update((str(row["name"]), str(row.get("label") or row["name"]))
                       for row in _common.load_knob_table()["knobs"])
    return _LABELS.get(name, name)


_LABELS: dict[str, str] = {}  # read from the knob table once


def _script_range() -> tuple[int, int]:
    root = nuke.root()
    return int(root.firstFrame()), int(root.lastFrame())


def _work_dir(out: str) -> Path:
    return Path(_common.work_dir(out))


def _default_out(node: nuke.Node) -> str:
    """``vom/<script>/<node>.####.exr`` beside the script: each version of a comp script (``sh010_comp_v002.nk``) has
    its own, so rendering in one never replaces the frames another reads."""
    script = nuke.root().name()
    if not script or script == "Root":
        raise HostError(f"{node.name()}: the Output knob is empty and the script is not saved; set Output "
                        "(e.g. /shows/x/sh010/vom/sh010_alpha.####.exr) or save the script")
    # the node's full name: a VOM_Matte1 in Group1 and one at the root each get their own
    return str(Path(script).parent / "vom" / Path(script).stem / f"{_full_name(node).replace('.', '_')}.####.exr")


# Nuke's colour space names (nuke-default, ACES and Foundry's CG configs) -> vom's; matched without case, spaces,
# "_", "-", "(" or ")", and without a "default (...)" around them
_COLOUR_SPACES = {
    "linear": "lin_rec709", "linrec709": "lin_rec709", "linearrec709srgb": "lin_rec709",
    "utilitylinearrec709": "lin_rec709", "utilitylinearsrgb": "lin_rec709", "linsrgb": "lin_rec709",
    "linrec709scene": "lin_rec709", "linrec709srgb": "lin_rec709",
    "acescg": "ACEScg", "acesacescg": "ACEScg", "acescgacesap1": "ACEScg", "linap1": "ACEScg", "linap1scene": "ACEScg",
    "aces20651": "ACES2065-1", "acesaces20651": "ACES2065-1", "linap0": "ACES2065-1", "linap0scene": "ACES2065-1",
    "srgb": "sRGB", "outputsrgb": "sRGB", "utilitysrgbtexture": "sRGB", "srgbtexture": "sRGB",
    "srgbencodedrec709srgb": "sRGB", "srgbrec709": "sRGB", "srgbtx": "sRGB", "srgbrec709scene": "sRGB",
    "inputgenericsrgbtexture": "sRGB", "srgbdisplay": "sRGB", "gamma22encodedrec709": "sRGB",
    "raw": "raw", "utilityraw": "raw", "data": "raw",
    # the other spellings vom reads in headers (io/color.py's table, which a test keeps this one a superset of)
    "linearacescg": "ACEScg", "linearap1": "ACEScg", "acesap1": "ACEScg", "acescgap1": "ACEScg",
    "linearaces": "ACES2065-1", "linearap0": "ACES2065-1", "acesap0": "ACES2065-1", "aces": "ACES2065-1",
    "linearrec709": "lin_rec709", "linearsrgb": "lin_rec709", "srgblinear": "lin_rec709", "linearbt709": "lin_rec709",
    "linbt709": "lin_rec709", "srgbrec709display": "sRGB", "g22rec709scene": "sRGB", "g22rec709": "sRGB",
    "gamma22rec709": "sRGB",
}


def vom_colour_space(name: str, config: str = "") -> str | None:
    """vom's colour space for a Nuke colour space ``name`` (a Read's, or the working space) under the OCIO config
    ``config`` (``scene_linear`` is linear Rec.709 in nuke-default, ACEScg in ACES configs); None where vom has
    none (a log or camera encoding, which a bake turns into the working space)."""
    m = re.match(r"^\s*default\s*\((.*)\)\s*$", name)
    bare = m.group(1) if m else name
    # a config file of the studio's or OCIO's built-in ones (ocio://...) says itself what the role or name is, before
    # any guess from the name or the config's path (QA: scene_linear of /shows/abc/config/studio.ocio or
    # ocio://studio-config-latest was "cannot name"; review: /shows/aces_show/config.ocio's own lin_rec709
    # scene_linear was taken for ACEScg by the word "aces" in its path)
    got = _by_config(bare, config)
    if got is not None:
        return got
    key = _colour_key(bare)
    cfg = config.lower()
    # the family by a whole word of the config's name or path ("aces_1.2", "..._aces-v1.3_..."; not "workspaces")
    aces = re.search(r"(?<![a-z])aces(?![a-z])", cfg) is not None
    if key in ("scenelinear", "compositinglinear"):
        return "lin_rec709" if "nuke-default" in cfg or not cfg else "ACEScg" if aces else None
    if key == "reference":  # nuke-default's linear; ACES configs' is ACES2065-1 (AP0)
        return "lin_rec709" if "nuke-default" in cfg or not cfg else "ACES2065-1" if aces else None
    return _COLOUR_SPACES.get(key)


def _colour_key(name: str) -> str:
    return re.sub(r"[\s_\-().]+", "", name or "").lower()


def _by_config(name: str, config: str) -> str | None:
    """vom's colour space for ``name`` (a role or a colour space) as the OCIO config ``config`` (a file or an
    ``ocio://`` URI) defines it: its colour space's interop ID (what the config's author says it is), else its name,
    else its aliases, read through the table above; None where the config says nothing vom can name, or is not
    there or does not load (``_config_trouble`` says why)."""
    loaded = _load_config(config)
    if loaded is None or loaded[0] is None:
        return None
    try:  # whatever the OCIO version: a name it cannot resolve raises in some, is None in others
        space = loaded[0].getColorSpace(name.strip())
    except Exception:
        return None
    if space is None:
        return None
    names = []
    # each asked only where this OCIO has it: interop IDs are recent, aliases came in 2.1 (Nuke 13 ships 2.0: an
    # AttributeError failed Analyze, review)
    for method in ("getInteropID", "getName", "getAliases"):
        ask = getattr(space, method, None)
        if ask is None:
            continue
        try:
            said = ask()
        except Exception:
            continue
        names.extend([said] if isinstance(said, str) else list(said or ()))
    for n in names:
        key = _colour_key(str(n))
        # a bare "linear" or "aces" is itself a guess (a studio's "linear" may be AP1): only a name that says which
        # space it is decides here; else the guess below, as before (review)
        got = _COLOUR_SPACES.get(key) if key not in _GENERIC_NAMES else None
        if got is not None:
            return got
    return None


_GENERIC_NAMES = frozenset({"linear", "aces"})


# the configs read, by file or URI: (its modification time, the config or None, why it did not load); a config was
# parsed again at every colour space asked (review), and is again only once its file changes
_CONFIGS: dict[str, tuple[Any, Any, str]] = {}


def _load_config(config: str) -> tuple[Any, str] | None:
    """(the OCIO config ``config`` names, "") or (None, why it does not load); None where ``config`` is no file and
    no ``ocio://`` URI (a config's name, such as nuke-default, which the table reads)."""
    if config.startswith("ocio://"):
        mtime = None
    else:
        try:
            st = os.stat(config)
        except (OSError, ValueError):  # no such file (a config's name), a NUL in the path
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        mtime = (st.st_mtime_ns, st.st_size, st.st_ino)  # a quick edit on a file system of whole-second times
    cached = _CONFIGS.get(config)
    if cached is not None and cached[0] == mtime:
        return cached[1], cached[2]
    try:
        import PyOpenColorIO as ocio  # type: ignore[import-untyped]  # Nuke's own build of it
    except Exception as e:  # (Nuke ships it: a broken install, or a Python of its own)
        loaded: tuple[Any, str] = (None, f"PyOpenColorIO cannot be imported here ({e})")
    else:
        try:
            loaded = (ocio.Config.CreateFromFile(config), "")
        except Exception as e:  # a YAML error, a missing include, a URI this OCIO does not know (2.2 on)
            loaded = (None, str(e).strip() or type(e).__name__)
    if loaded[0] is not None:  # a failure is asked again next time (a config being written, an NFS hiccup: review)
        _CONFIGS[config] = (mtime, *loaded)
    return loaded


def _config_trouble(config: str) -> str:
    """Why the OCIO config ``config`` said nothing, where it is there but did not load: said with a refusal of a
    colour space vom cannot name (review: "cannot name" only, where the studio's config had a YAML error)."""
    loaded = _load_config(config)
    if loaded is None or loaded[0] is not None:
        return ""
    return f" (its OCIO config {config} did not load: {loaded[1]})"


def _colour_config() -> str:
    root = nuke.root()
    if str(_knob_value(root, "colorManagement") or "") == "Nuke":
        return "nuke-default"
    config = str(_knob_value(root, "OCIO_config") or "")
    if config == "custom":  # a studio's config file: its path says which family it is, if anything does
        return str(_knob_value(root, "customOCIOConfigPath") or "custom")
    return config


# What the temporary Write writes, whatever the script's or the studio's defaults for Writes: lossless half floats
# (vom reads rotos and plates at half precision), the data window as it is.
EXR_WRITE_KNOBS = (("datatype", "16 bit half"), ("compression", "Zip (1 scanline)"), ("autocrop", False))


def _render_write(source: nuke.Node | None, pattern: str, channels: str, frames: Iterable[int],
                  what: str) -> None:
    """Render ``source`` to EXR with a temporary Write node (in the root graph, at full resolution), one call per
    frame. A cancel in Nuke's render progress or an upstream error is a HostError naming the frame."""
    if source is None:
        raise HostError(f"{what}: the input is not connected")
    Path(pattern).parent.mkdir(parents=True, exist_ok=True)
    with _in_group_at_full_resolution(source):
        write = nuke.nodes.Write(file=pattern, file_type="exr", channels=channels, raw=True)
        try:
            # a studio's knobDefaults for Writes (DWAA, a lossy compression; autocrop) would apply to this one too
            for knob, value in EXR_WRITE_KNOBS:
                write[knob].setValue(value)
            if write.setInput(0, source) is False:
                raise HostError(f"{what}: {_full_name(source)} could not be connected to a Write to render it")
            for f in frames:
                try:
                    nuke.execute(write, f, f)
                except RuntimeError as e:  # Nuke's "Cancelled", or an upstream node's error
                    said = str(e).strip() or type(e).__name__
                    raise HostError(f"{what}: rendering frame {f} stopped: {said}") from None
        finally:
            nuke.delete(write)


def _bake(source: nuke.Node | None, pattern: str, frames: Iterable[int], what: str, channels: str = "rgb",
          undo: Any = None) -> None:
    """Render ``source``'s ``channels`` to ``pattern`` at ``frames``, replacing a file only where it changed.

    Written again with the same pixels, a frame got a new modification time, which vom's cache reads as another
    plate (every Analyze encoded every frame afresh, and left dead cache entries behind) or another roto (every
    step computed again). Each frame is rendered beside its file and kept only if it changed
    (``common.keep_unless_changed``); ``undo`` (a ``common.WorkUndo``) keeps each file replaced aside, put back if vom
    refuses the render."""
    frames = list(frames)
    fresh = pattern.replace("%04d", "new.%04d")
    try:
        _render_write(source, fresh, channels, frames, what)
        for f in frames:
            new, old = Path(_frame_path(fresh, f)), Path(_frame_path(pattern, f))
            if not new.is_file():
                raise HostError(f"{what}: rendering frame {f} wrote no {new}")
            _common.keep_unless_changed(new, old, undo)
    finally:  # a cancelled or failed render leaves none of its new files behind
        for f in frames:
            with contextlib.suppress(FileNotFoundError):  # not unlink(missing_ok=True): Nuke 13's Python is 3.7
                Path(_frame_path(fresh, f)).unlink()


def _roto_channels(roto: nuke.Node | None) -> str:
    """What to bake of the Roto input: its alpha, else its mask layer (a RotoPaint drawn into ``mask``), else its
    RGB (a Write fills a missing alpha with 0, an empty roto to vom, which reads a roto without alpha by its
    luminance)."""
    channels = getattr(roto, "channels", None)
    if roto is None or channels is None:
        return "alpha"
    held = channels()
    return "alpha" if "rgba.alpha" in held else "mask" if "mask.a" in held else "rgb"


def _frame_path(pattern: str, frame: int) -> str:
    # the patterns this module writes use %04d
    return pattern.replace("%04d", f"{frame:04d}")


def _full_name(node: nuke.Node) -> str:
    return str(getattr(node, "fullName", node.name)())


def _check_own_output(node: nuke.Node, out: str) -> None:
    """HostError when another VOM Matte node of the script writes ``out``: each would replace the other's frames
    (and its matte in the comp) frame by frame, and both would report success."""
    mine = _work_dir(out)  # once: it may read an earlier version's folder from disk
    mine_shown = str(_knob_value(node, "alpha_file") or "")
    # from the root: Analyze runs from the gizmo's own button, where the context group is the gizmo itself
    for other in nuke.allNodes(node.Class(), nuke.root(), recurseGroups=True):
        if _full_name(other) == _full_name(node):
            continue
        try:
            theirs = _path_knob(other, "out") or _default_out(other)
        except HostError:
            theirs = ""
        if theirs and _common.same_files(theirs, out):
            raise HostError(f"{node.name()}: Output {out} is also the Output of {_full_name(other)}; each VOM Matte "
                            f"node needs its own (one would replace the other's frames)")
        if theirs and _common.same_files(str(_work_dir(theirs)), str(mine)):
            raise HostError(f"{node.name()}: Output {out} and {_full_name(other)}'s Output {theirs} name the same "
                            f"work folder ({mine}: shot file, baked rotos, farm bundle); give one of them "
                            f"another name")
        # what it shows now: the files of its last Analyze (renamed since, or its Output changed), which a render
        # here would replace in its comp
        shown = str(_knob_value(other, "alpha_file") or "")
        # a pasted copy of this node shows this node's own files (its hidden knobs came along, its owner too), which
        # this node shows as well; a node renamed since its Analyze names its old name as owner too, and a new node
        # that took that name (showing nothing yet) is not its original (QA: it rendered over the renamed one's)
        copy_of_mine = (str(_knob_value(other, "alpha_owner") or "") == _full_name(node) and bool(mine_shown)
                        and _common.same_files(mine_shown, shown))
        if shown and _common.same_files(shown, out) and not copy_of_mine:
            raise HostError(f"{node.name()}: Output {out} holds the matte {_full_name(other)} shows (its last "
                            f"Analyze); rendering here would replace it. Set another Output")


@dataclass
class Prepared:
    """What Analyze wrote and how the node reads the matte back: the shot file, its fields (vom's frames are the
    plate's file frames), and the offset at which the node shows them (script frame minus file frame)."""

    shot_file: Path
    fields: dict[str, Any]
    offset: int = 0
    undo: Any = None  # common.WorkUndo: what Analyze wrote, taken back if vom refuses the render


def prepare_shot(node: nuke.Node) -> Prepared:
    """Resolve the node's inputs (plate pattern, roto at the keyframes) and write its shot file.

    Keyframes and the frame range are script frames, as the artist sees them; the shot's are the plate's file
    frames (a Read set to "start at" or "offset" shows file frame f at script frame f + offset). Where it fails
    after writing in the work folder, what it wrote there is taken back (``WorkUndo``)."""
    made: list[Any] = []
    try:
        return _prepare_shot(node, made)
    except BaseException:
        for undo in made:
            undo.undo()
        raise


def _check_frames(node: nuke.Node, frames: str, keyframes: Sequence[int], objects: Mapping[str, Sequence[int]],
                  first: int, last: int, where: str) -> None:
    """HostError where the Frame range, Keyframes or an object's frames (script frames) leave ``first``-``last``,
    the frames the Source has (``where`` says whose they are)."""
    asked = frame_bounds(frames) if frames else None
    if asked is not None and (asked[0] < first or asked[1] > last):
        raise HostError(f"{node.name()}: Frame range {frames}: {where}")
    drawn = [("Keyframes", "Roto input", keyframes)]
    drawn += [(f"Objects, {name}", f"Roto input, layer {name}", fs) for name, fs in objects.items()]
    for knob, roto, fs in drawn:
        outside = [f for f in fs if not first <= f <= last]
        if outside:
            raise HostError(f"{node.name()}: {knob}: keyframe{'s' if len(outside) > 1 else ''} "
                            f"{', '.join(map(str, outside))} ({roto}): {where}")


def _prepare_shot(node: nuke.Node, made: list[Any]) -> Prepared:
    out = _path_knob(node, "out") or _default_out(node)
    name = os.path.basename(out)
    if not _common.has_frame_token(out) or not name.lower().endswith(".exr"):  # vom's refusal came after the bake,
        # which left a work folder beside a misspelt Output (QA)
        stem, ext = os.path.splitext(name)
        stem = stem if ext.lower() in (".exr", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".dpx") else name
        example = stem + ("" if _common.has_frame_token(stem) else ".####") + ".exr"
        raise HostError(f"{node.name()}: Output {out}: expected an EXR frame sequence, e.g. {example} (a frame token: "
                        f"####, %04d, $F4)")
    if _common.frame_tokens(out) > 1:
        raise HostError(f"{node.name()}: Output {out}: {_common.frame_tokens(out)} frame tokens in its file name; "
                        f"expected one (####, %04d or $F4)")
    if "%V" in out or "%v" in out:  # vom writes the letters; the node's Read would look for the view's name: black
        raise HostError(f"{node.name()}: Output {out} names a view (%V): vom writes one matte sequence; give an "
                        "Output without it (one VOM Matte per eye, after a OneView, for stereo)")
    _check_own_output(node, out)
    work = _work_dir(out)
    made.append(_common.WorkUndo(work))  # before anything is written there
    # made before any bake, each said as the Output's (QA: "cannot write /proc/vomout", of which knob?)
    for what, folder in (("its folder", Path(out).parent), ("its work folder", work)):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise HostError(f"{node.name()}: Output {out}: cannot make {what} {folder}: {e.strerror or e}") from None
    keyframes_text = str(_knob_value(node, "keyframes") or "").strip()
    frames = str(_knob_value(node, "frames") or "").strip()
    try:  # said as the node's, by its labels (QA: "keyframes: '1001.5' is not a frame number", of which node?)
        objects = parse_objects(str(_knob_value(node, "objects") or ""))
        if objects and keyframes_text:
            raise HostError("Keyframes and Objects are both set: with Objects, each object's line gives its frames; "
                            "empty Keyframes")
        keyframes = parse_keyframes(keyframes_text) if not objects else []
        if frames:  # before anything is baked: a bad one was said after the bake, as the shot file's `frames`
            _common.range_numbers(frames, HostError, "Frame range")
    except HostError as e:
        raise HostError(f"{node.name()}: {e}") from None
    if "{object}" in out and not objects:  # vom's refusal came after the bake, in its command line's words (QA)
        raise HostError(f"{node.name()}: Output {out}: {{object}} names each object's sequence, and Objects is empty; "
                        "list the objects (one a line: its name, then the frames it is drawn at), or take {object} "
                        "out of Output")
    channel = str(_knob_value(node, "channel") or "A").strip()
    if objects and "." in channel and "{object}" not in out:
        # vom writes vom.hero.A there, which Nuke's EXR reader shows as another layer name (a layer holds no dot)
        raise HostError(f"{node.name()}: Output channel {channel!r} with objects in one file: each object's alpha "
                        f"would be {channel.rpartition('.')[0]}.<object>.A, which Nuke reads under another name; use "
                        "channel A (hero.A, dog.A) or put {object} in Output (a sequence per object)")
    layer = channel.rpartition(".")[0]
    if layer and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", layer):
        # vom writes matte.fg.A or my-matte.A, but Nuke's EXR reader shows such a layer under another name: the
        # matte copied from the channel the node reads would be black, without a word
        raise HostError(f"{node.name()}: Output channel {channel!r}: Nuke reads a layer name of letters, digits and _ "
                        f"only (no dots or dashes); use e.g. "
                        f"{re.sub(r'[^A-Za-z0-9_]+', '_', layer).strip('_') or 'vom'}.A")
    plate = _path_knob(node, "plate")
    knobs = {name: _knob_value(node, name) for name in SHOT_KNOBS}
    knobs["cache"] = _path_knob(node, "cache")
    model = str(knobs.get("model") or "").strip()
    if model and model not in _common.SHIPPED_MODELS:  # a checkpoint's path, read as Nuke reads a path (a bare name
        # was read by vom from the hidden work folder the shot file is in, QA)
        knobs["model"] = _path_knob(node, "model")
        problem = _common.model_problem(model, knobs["model"])
        if problem:
            raise HostError(f"{node.name()}: {problem}")
    problem = _common.settings_problem(_common.load_knob_table(), knobs)  # vom refused a typo only once the Source
    if problem:  # was baked (QA)
        raise HostError(f"{node.name()}: {problem}")
    # else the colour space comes from the Read or the working space (a gizmo without the knob: from the knob)
    chosen = not bool(_knob_value(node, "colorspace_from_nuke") if node.knob("colorspace_from_nuke") else False)
    first, last = _script_range()
    # any other Source is baked over the script's frames (Nuke holds a still, or a Read's ends, past them)
    where = f"the script's frame range is {first}-{last} (Project Settings)"
    found = _upstream_read(node) if not plate else None  # a Plate given by hand: its own frame numbers
    offset = found[1] if found is not None else 0
    if found is not None:  # the Source's Read: its range, and the script frames it shows its files at
        # (a movie's too, which is baked: the script's range baked frames past its end, held, QA)
        first, last = int(_knob_value(found[0], "first")) + offset, int(_knob_value(found[0], "last")) + offset
        where = f"the Read {found[0].name()} shows script frames {first}-{last}"
    if not plate:
        # said in the script frames the artist typed, before any bake: vom's own refusal came after the rotos were
        # baked, in the files' numbers (frames 1009-1012 missing, for a Frame range 1-12 of a Read shown at 1: QA);
        # a baked Source was not checked at all, and a typo baked 9001 frames (keyframe 10001 for 1001: QA)
        _check_frames(node, frames, keyframes, objects, first, last, where)
    if found is not None and not found[2]:  # a movie: baked at the script frames
        found = None
    if plate and not chosen:
        # nothing in Nuke says what a typed file holds: the Input colour space knob's value (ACEScg by default) was
        # used without a word, where the same plate through a Read is read as the Read says (QA)
        raise HostError(f"{node.name()}: Plate is typed by hand ({plate}) and Colour space 'from Nuke' is ticked, but "
                        "no Read says what the file holds; untick 'from Nuke' and set Input colour space to the "
                        "plate's, or connect a Read of it to Source and empty Plate")
    if not plate:
        colour = None
        read = found[0] if found is not None and not chosen else None  # the plate's colour space is the Read's
        raw = read is not None and bool(_knob_value(read, "raw"))
        if read is not None and not raw and read.knob("colorspace") is not None:
            colour = vom_colour_space(str(_knob_value(read, "colorspace")), _colour_config())
            raw = colour == "raw"
            found = found if colour is not None else None  # a log or camera encoding: Nuke's bake converts it
        if raw:
            # "Raw data" ticked, or the colour space raw (Utility - Raw): Nuke passes the file's values through as
            # the working space (a ticked box greys out the colour space knob, which says nothing then): vom reads
            # them as the working space too, or the Source is baked. vom's own raw (code values, display-referred)
            # matted the same plate otherwise than the box did (QA)
            colour = None
            if nuke.root().knob("workingSpaceLUT") is not None:
                colour = vom_colour_space(str(_knob_value(nuke.root(), "workingSpaceLUT")), _colour_config())
            found = found if colour is not None else None
        if found is not None:
            plate = _read_pattern(found[0])
            if colour is not None:
                knobs["colorspace"] = colour
        else:  # not a plain Read: bake the Source input to a linear EXR sequence vom can read
            offset = 0  # baked at the script frames
            plate = str(work / "plate.%04d.exr")
            if not chosen and nuke.root().knob("workingSpaceLUT") is not None:
                working = str(_knob_value(nuke.root(), "workingSpaceLUT"))
                knobs["colorspace"] = vom_colour_space(working, _colour_config())
                if knobs["colorspace"] is None:
                    raise HostError(f"{node.name()}: the Source is rendered in the working space {working!r}, which "
                                    f"vom cannot name{_config_trouble(_colour_config())}; untick 'from Nuke' and set "
                                    "Input colour space to what it is")
            # the frames vom reads: the requested ones and the keyframes, and every frame between them (a Read's
            # own range in script frames when it is baked for its colour space)
            lo, hi = (frame_bounds(frames) if frames else None) or (first, last)
            drawn = keyframes + [f for fs in objects.values() for f in fs]
            _bake(node.input(0), plate, range(min(lo, *drawn), max(hi, *drawn) + 1), f"{node.name()}: Source",
                  undo=made[0])
    frames = shift_range(frames, -offset) if frames else f"{first - offset}-{last - offset}"
    roto = str(work / "roto.%04d.exr")  # rendered at the script frames: the files are named so
    rotos: dict[str, dict[int, str]] = {}
    if objects:  # each object is the Roto input's layer of its name (a Roto node's output set to that layer)
        listed = getattr(node.input(1), "channels", None)
        try:  # a layer is what comes before a channel's last dot (hero.alpha; a.b.alpha is layer a.b)
            layers = {str(c).rpartition(".")[0] for c in listed()} - {""} if listed is not None else None
        except Exception:  # an input that cannot list its channels is baked as before
            layers = None
        missing = [n for n in objects if layers is not None and n not in layers]
        if missing:  # (a typo baked an empty layer, said as a roto of nothing, or rendered as one: QA)
            raise HostError(f"{node.name()}: Objects: the Roto input has no layer {', '.join(missing)} (its layers: "
                            f"{', '.join(sorted(layers or ())) or 'none'}); each object is the Roto input's layer "
                            f"of its name: set a Roto node's output to it")
        for name, frames_of in objects.items():
            pattern = str(work / f"roto_{name}.%04d.exr")
            _bake(node.input(1), pattern, frames_of, f"{node.name()}: Roto (layer {name})", name)
            rotos[name] = {f - offset: _frame_path(pattern, f) for f in frames_of}
    else:
        _bake(node.input(1), roto, keyframes, f"{node.name()}: Roto", _roto_channels(node.input(1)))
    fields = shot_fields(knobs, plate=plate, frames=frames, out=out,
                         keyframes={f - offset: _frame_path(roto, f) for f in keyframes}, objects=rotos)
    shot_file = write_text_atomic(work / "shot.yaml", shot_yaml(fields))
    made[0].wrote()
    return Prepared(shot_file, fields, offset, made[0])


def restore_alpha(node: nuke.Node) -> None:
    """The gizmo's onCreate (a script opened, a node pasted) and the end of Analyze: CopyAlpha copies the channel
    Analyze rendered, which the gizmo keeps in its own ``alpha_channel`` knob (a channel knob takes no expression;
    the Read and the TimeOffset inside follow the gizmo's knobs by expression)."""
    copy = cast(nuke.Group, node).node("CopyAlpha")
    channel = str(_knob_value(node, "alpha_channel") or "rgba.alpha")
    if copy is not None and copy["from0"].value() != channel:
        copy["from0"].setValue(channel)


def _reload_alpha(node: nuke.Node, fields: Mapping[str, Any], first: int, last: int, offset: int = 0) -> None:
    """After Analyze: the node shows the frames just rendered (``_show_matte``), read again from disk."""
    try:
        node.name()
    except ValueError:  # the node was deleted while vom rendered: nothing to point at the frames
        return
    # the knobs that show the matte change together, one undo step: a Ctrl+Z undid some of them (the file, not the
    # channel), and the node showed a mismatched matte until the script was opened again
    undo: Any = getattr(nuke, "Undo", None)
    grouped = hasattr(undo, "begin") and hasattr(undo, "end")
    if grouped:
        undo.begin(f"VOM Matte: show {node.name()}'s matte")
    try:
        shown = _show_matte(node, fields, first, last, offset)
    finally:
        if grouped:
            undo.end()
    if shown:
        read = cast(nuke.Group, node).node("AlphaRead")
        if read is not None:
            cast(nuke.Script_Knob, read["reload"]).execute()


def _show_matte(node: nuke.Node, fields: Mapping[str, Any], first: int, last: int, offset: int = 0) -> bool:
    """Point the gizmo at the shot's frames (``first``-``last``: file frames, shown at script frame + ``offset``)
    through its own knobs, which the script saves, and copy the right channel into the stream. False (said to the
    artist) when the gizmo is too old to have those knobs."""
    objects = list(fields.get("objects") or {})
    channel = str(fields.get("channel") or "A")
    out = str(fields["out"])
    if objects:  # the node's alpha is the first object's; every object's layer is in the files it writes
        layer, _, leaf = channel.rpartition(".")
        channel = f"{layer + '.' if layer else ''}{objects[0]}.{leaf}" if "{object}" not in out else channel
        out = out.replace("{object}", objects[0])
    rendered = {"alpha_file": nuke_pattern(out), "alpha_first": first, "alpha_last": last, "alpha_offset": offset,
                "alpha_channel": exr_channel_to_nuke(channel), "alpha_owner": _full_name(node)}
    for name, value in rendered.items():
        knob = node.knob(name)
        if knob is None:  # runs on Nuke's main thread, after the render: said, not raised
            nuke.message(f"VOM Matte: the matte is at {out}, but {node.name()} has no {name} knob: this "
                         "VOM_Matte gizmo is older than vom's adapter; restart Nuke so that it loads the gizmo again")
            return False
        knob.setValue(value)
    restore_alpha(node)
    return True


def shift_range(frames: str, delta: int) -> str:
    """A frame range (``1-24``, ``1-24x2``, ``1,5,10-20``, ``1-10 20-30``) with every frame moved by ``delta``."""
    return str(_common.shift_frames(frames, delta, HostError, "Frame range"))


def frame_bounds(frames: str) -> tuple[int, int] | None:
    """First and last frame of a range such as ``1001-1100``, ``1001-1100x2``, ``1001,1005,1010-1020`` or
    ``1001-1050 1060-1100`` (parts separated by spaces, as Nuke writes them); None where it does not parse."""
    bounds = _common.frame_bounds(frames)
    return None if bounds is None else (int(bounds[0]), int(bounds[1]))


_IN_FLIGHT: set[str] = set()  # the nodes whose Analyze runs (a second one would bake and render over the first)


def _flight_keys(node: nuke.Node) -> set[str]:
    """What an Analyze in flight holds: its node's name and its work folder (a node renamed while it rendered ran a
    second Analyze of the same Output over the first, baking the rotos it read: QA)."""
    keys = {_full_name(node)}
    try:  # however the Output's path is spelt (a link to its folder: review)
        keys.add(os.path.realpath(_work_dir(_path_knob(node, "out") or _default_out(node))))
    except HostError:  # said by prepare_shot
        pass
    return keys


def analyze(node: nuke.Node | None = None, *, background: bool = True) -> RunResult | None:
    """The Analyze button: render the matte of the node's shot with vom, with a cancellable progress bar."""
    node = node or nuke.thisNode()
    key = _full_name(node)
    keys = _flight_keys(node)
    if keys & _IN_FLIGHT:
        nuke.message(f"VOM Matte: {node.name()} is rendering already; wait for it, or cancel it in its progress bar")
        return None
    try:
        vom = vom_executable()
        prepared = prepare_shot(node)
    except HostError as e:
        nuke.message(f"VOM Matte: {e}")
        return None
    except OSError as e:  # a read-only show folder, an unmounted share: said, not a traceback
        nuke.message(f"VOM Matte: {node.name()}: cannot write {e.filename or ''}: {e.strerror or e}")
        return None
    shot_file, fields = prepared.shot_file, prepared.fields
    cmd = build_render_command(vom, shot_file)
    first, last = frame_bounds(str(fields["frames"])) or _script_range()
    script_range = _script_range()  # on Nuke's main thread
    script = str(nuke.root().name())  # on Nuke's main thread, before the render's own
    title = f"VOM Matte: {node.name()}"  # nodes are asked on the main thread only
    # what the node shows now, asked here: from the render's thread Nuke refuses it, and a node deleted meanwhile
    # raised there, which lost the failure's or the cancel's message (QA)
    shows_out = str(_knob_value(node, "alpha_file") or "") in ("", nuke_pattern(str(fields["out"])))
    seen = (script, key, str(fields["out"]))  # one node of one script (another may have a VOM_Matte1)
    shown_before = set(_SHOWN_WARNINGS.get(seen, ()))
    # vom's advice in the node's terms (QA: "set colorspace ACEScg" where the knob said ACEScg and the colour came from
    # the Read; "pass --cache DIR" inside Nuke)
    from_read = bool(node.knob("colorspace_from_nuke") and _knob_value(node, "colorspace_from_nuke"))
    table = _common.load_knob_table()  # the knobs' labels and flags, read once

    def in_node_terms(warning: str) -> str:  # a failure's words too: its flags by the knobs' labels (QA)
        return str(_common.in_node_terms(warning, "set the Read's colorspace, or untick Colour space 'from Nuke' and "
                                                  "set Input colour space" if from_read else None,
                                         "set the node's Cache folder to a writable folder", table))

    def said_before(warning: str) -> bool:
        """A warning of the node's setup (a plate's header, the cache) said at its last Analyze is not listed again:
        a dialog at every Analyze while the artist keeps the setting. One naming a roto this Analyze rendered (an
        inverted roto, a matte off its roto) is about what was drawn now, and the matte it spoils is this one: listed
        at every Analyze that has it."""
        return in_node_terms(warning) in shown_before and not _names_a_roto(warning, fields)

    def work() -> RunResult | None:
        try:
            return finish(run())
        except BaseException:  # unexpected (a broken progress task): nothing of this Analyze is kept
            if prepared.undo is not None:
                prepared.undo.undo()
            raise
        finally:  # whatever happened: the node and its Output free again, after any undo (review: an unexpected
            # error left them held until Nuke restarted)
            _IN_FLIGHT.difference_update(keys)

    def in_script_terms(warning: str) -> str:  # as the closing message says it
        named = _name_rendered_rotos(warning, fields, prepared.offset)
        return named + (f" {_file_frames_note(prepared.offset).strip()}" if _common.names_frames(warning) else "")

    def began(prog: Progress) -> None:
        # vom read the shot: nothing of this Analyze is taken back now (``refused_before_start`` is false from here),
        # so the files it kept aside go at once: kept till vom exited, a replaced plate frame's old blocks stayed on
        # disk for the whole render, and a Nuke that crashed meanwhile left them for good (review)
        if prog.raw.get("event") == "start" and prepared.undo is not None:
            prepared.undo.discard()

    def run() -> RunResult | None:
        task = nuke.ProgressTask(title)
        try:
            return run_with_progress(cmd, task, frame_offset=prepared.offset, in_script_terms=in_script_terms,
                                     said_before=said_before, on_progress=began)
        except OSError as e:  # the environment vom's script runs in was moved or rebuilt: said, not a traceback
            if prepared.undo is not None:
                prepared.undo.undo()
            nuke.executeInMainThread(nuke.message, (f"VOM Matte: {vom} could not be started: {e}\n"
                                                    "Run `python3 install.py --nuke` from the vom checkout again.",))
            return None
        finally:
            del task  # closes Nuke's progress window

    def finish(result: RunResult | None) -> RunResult | None:
        if result is None:
            return None
        refused = prepared.undo is not None and _common.refused_before_start(
            result.returncode, result.started, result.cancelled, result.written)
        if prepared.undo is not None:  # refused: the work folder as it was (an earlier Analyze's shot file, rotos)
            prepared.undo.undo() if refused else prepared.undo.discard()
        # the node shows every matte frame on disk, not only those rendered now: a fix-up of frames 10-12 after a
        # whole render showed the rest black (the Read's range), without a word (QA); the others are said below
        shown = shown_span(fields, first, last, script_range, prepared.offset)
        if result.written and (result.cancelled or (result.returncode != 0 and shows_out)):
            # the frames that were written are shown: after a Cancel, as the message says they are kept (the node
            # showed no matte, or an earlier render's: QA); after a failure, where the node shows that Output already
            # (not a complete matte of another Output swapped for a few new frames and black: review)
            nuke.executeInMainThread(_reload_alpha, (node, fields, *shown, prepared.offset))
        if result.cancelled:
            kept = [f + prepared.offset for f in result.written]  # in script frames, as the artist typed them
            what = (f"{len(kept)} frame{'s' if len(kept) != 1 else ''} kept (script frames "
                    f"{_common.frame_ranges(kept)}, in {fields['out']})" if kept else "no frame was complete")
            resume = ("nothing of this Analyze was kept" if refused else
                      f"a new Analyze computes every frame again (this one ran without the cache: {result.cache_off}; "
                      f"{shot_file})" if result.cache_off else f"a new Analyze resumes from the cache ({shot_file})")
            nuke.executeInMainThread(nuke.message, (f"VOM Matte: cancelled; {what}; {resume}; the other frames of "
                                                    f"{fields['out']}, if any, are an earlier render's, of the roto "
                                                    f"as it was then",))
        elif result.returncode != 0:
            said = result.output_tail[-12:]
            # the lines together: a crash's traceback is told apart as a whole and kept as it is (review)
            detail = _name_rendered_rotos(in_node_terms("\n".join(said)), fields, prepared.offset)
            if _common.names_frames("\n".join(said)):  # as for warnings: not beside a bad weights file's error (QA)
                detail += _file_frames_note(prepared.offset)
            # refused: the shot file the command names was taken back (review: it named one deleted, or an earlier
            # render's, which renders other settings)
            told = "vom refused the render; nothing of this Analyze was kept" if refused else _command_line(cmd)
            nuke.executeInMainThread(nuke.message, (f"VOM Matte: vom render failed (exit {result.returncode}).\n"
                                                    f"{told}\n\n{detail}",))
        else:
            nuke.executeInMainThread(_reload_alpha, (node, fields, *shown, prepared.offset))
            # a plate read as another colour space than its header says, a cache turned off...: said once a node,
            # not again at every Analyze while it stays the same (``said_before``), as the task said
            raw = done_warnings(result)
            warnings = [in_node_terms(w) for w in raw if not said_before(w)]
            again = len(raw) - len(warnings)
            _SHOWN_WARNINGS[seen] = {in_node_terms(w) for w in raw}
            stale = earlier_frames(fields, *shown)
            if stale:  # said at every Analyze that leaves them: the node shows them as if rendered now
                warnings.append(f"script frames {_common.frame_ranges([f + prepared.offset for f in stale])} show an "
                                f"earlier render's matte (files of {fields['out']} this Analyze did not render, of "
                                f"the roto as it was then): render them too, or delete those files")
            outside = outside_frames(fields, shown)
            if outside:  # the other numbering of the Output (QA: a Read's colour space switched to a log one baked
                # the Source, and the mattes went from the plate's file frames to the script's, beside the first)
                warnings.append(f"{fields['out']} also holds files numbered {_common.frame_ranges(outside)}, beyond "
                                f"this shot's {shown[0]}-{shown[1]}: another render's, which the node does not show "
                                "(numbered by the script's frames where the Source was baked: a colour space or a node "
                                "vom cannot read itself; by the plate's file frames where vom read the Read's files); "
                                "delete them, or give each render its own Output")
            if warnings:
                text = _name_rendered_rotos("\n".join(f"- {w}" for w in warnings), fields, prepared.offset)
                if any(_common.names_frames(w) for w in warnings):  # vom's words name file frames there (QA)
                    text += _file_frames_note(prepared.offset)
                if again:  # as the task said: not gone, only not listed again
                    text += (f"\n\n(and {again} warning{'s' if again > 1 else ''} as at the last Analyze, not listed "
                             "again)")
                nuke.executeInMainThread(nuke.message, (f"VOM Matte: {key} rendered, with warnings:\n{text}",))
        return result

    _IN_FLIGHT.update(keys)
    if not background:
        return work()
    threading.Thread(target=work, name="vom-analyze", daemon=True).start()
    return None


def shown_span(fields: Mapping[str, Any], first: int, last: int, script_range: tuple[int, int],
               offset: int) -> tuple[int, int]:
    """The file frames the node shows after a render of ``first``-``last``: those, widened to the shot's matte files
    on disk within the script's range (``script_range``, script frames: file frame + ``offset``)."""
    lo, hi = min(first, script_range[0] - offset), max(last, script_range[1] - offset)
    there = earlier_frames(fields, lo, hi)
    return min([first, *there]), max([last, *there])


def earlier_frames(fields: Mapping[str, Any], first: int, last: int) -> list[int]:
    """The file frames from ``first`` to ``last`` (what the node shows) that this render did not write but whose
    matte file is there: an earlier render's (QA: a render on twos after a whole one showed the old even frames)."""
    out = str(fields["out"])
    objects = list(fields.get("objects") or {})
    shown = out.replace("{object}", objects[0]) if objects else out  # the sequence the node shows
    return list(_common.earlier_matte_frames([shown], str(fields["frames"]), range(first, last + 1)))


def outside_frames(fields: Mapping[str, Any], shown: tuple[int, int]) -> list[int]:
    """The frames of the Output on disk beyond ``shown`` (file frames), of any object's sequence: another render's."""
    out = str(fields["out"])
    objects = list(fields.get("objects") or {})
    patterns = [out.replace("{object}", o) for o in objects] if "{object}" in out and objects else [out]
    return sorted({f for pattern in patterns for f in _common.frames_on_disk(pattern)
                   if not shown[0] <= f <= shown[1]})


def _file_frames_note(offset: int) -> str:
    """How vom's frame numbers read in the script, where a Read shows the plate's file frames elsewhere (QA: vom's
    "keyframe 2" beside "the Roto input at frame 1002", unsaid after a render with warnings)."""
    if not offset:
        return ""
    return (f"\n\n(vom's frame numbers are the plate's file frames: the script shows file frame F at "
            f"F {'+' if offset > 0 else '-'} {abs(offset)})")


def _rotos(fields: Mapping[str, Any]) -> list[tuple[int, str, str]]:
    """The rotos Analyze rendered for ``fields``: (file frame, path, ", layer <object>" or "")."""
    rotos = [(f, str(p), "") for f, p in (fields.get("keyframes") or {}).items()]
    return rotos + [(f, str(p), f", layer {name}") for name, kf in (fields.get("objects") or {}).items()
                    for f, p in kf.items()]


def _names_a_roto(text: str, fields: Mapping[str, Any]) -> bool:
    return any(path in text for _, path, _ in _rotos(fields))


def _name_rendered_rotos(text: str, fields: Mapping[str, Any], offset: int = 0) -> str:
    """vom names the roto files Analyze rendered; the artist knows them as the Roto input at a (script) frame."""
    return _common.name_rotos(text, _common.roto_names((path, f"the Roto input at frame {frame + offset}{layer}")
                                                       for frame, path, layer in _rotos(fields)))


def _farm_snapshot(prepared: Prepared) -> Path:
    """A frozen copy of the shot file and the rotos Analyze baked for it, in ``<work>/farm/<time>/``: the work
    folder's rotos are replaced by the next Analyze or Submit, and a job reading them would render a roto tweaked
    after it was queued (its chunks mixing two versions). Rotos are copied (a few small files; a hard link would
    change the original's change time, which the cache fingerprints). A baked plate is read where it is: re-baked,
    it changes only where the comp upstream changed, and copying it would cost a plate per submission. The newest
    snapshot is reused when it holds the same shot and rotos."""
    work = prepared.shot_file.parent
    farm = work / "farm"
    names: dict[str, str] = {}  # work folder file -> its name in the snapshot

    def frozen(path: str, snap: Path) -> str:
        src = Path(path)
        if src.parent != work or not src.is_file():  # the artist's own files, a baked plate's pattern
            return path
        names[str(src)] = src.name
        return str(snap / src.name)

    def fields_in(snap: Path) -> dict[str, Any]:
        fields = dict(prepared.fields)
        if fields.get("keyframes"):
            fields["keyframes"] = {f: frozen(str(p), snap) for f, p in fields["keyframes"].items()}
        if fields.get("objects"):
            fields["objects"] = {n: {f: frozen(str(p), snap) for f, p in kf.items()}
                                 for n, kf in fields["objects"].items()}
        return fields

    snaps = sorted((p for p in farm.iterdir() if (p / "shot.yaml").is_file()), key=lambda p: p.name) \
        if farm.is_dir() else []
    if snaps:  # the same shot submitted again: the same frozen files
        newest = snaps[-1]
        text = shot_yaml(fields_in(newest))
        if (newest / "shot.yaml").read_text(encoding="utf-8") == text and all(
                (newest / name).is_file() and (newest / name).read_bytes() == Path(src).read_bytes()
                for src, name in names.items()):
            return newest / "shot.yaml"
    names.clear()
    snap = farm / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    snap.mkdir(parents=True)
    text = shot_yaml(fields_in(snap))
    for src, name in names.items():
        shutil.copy2(src, snap / name)
    return write_text_atomic(snap / "shot.yaml", text)


def _farm_in_node_terms(line: str, node: nuke.Node, shot_file: Path) -> str:
    """A line of ``vom farm``'s in the node's terms, as Analyze says vom's warnings: its shot file is the node's, its
    ``cache:`` the node's Cache folder (QA: "set `cache:` to a folder all workers share" inside Nuke)."""
    line = line.replace(str(shot_file), f"the shot of {node.name()}")
    for words, said in (("no `cache:` folder", "no Cache folder"),
                        ("set `cache:` to", "set the node's Cache folder to"), ("`cache:`", "Cache folder")):
        line = line.replace(words, said)
    return line


def submit_farm(node: nuke.Node | None = None, *, chunk: int | None = None) -> Path | None:
    """The Submit-to-farm button: write the shot file and an Open Job Description job bundle beside it."""
    node = node or nuke.thisNode()
    if _flight_keys(node) & _IN_FLIGHT:  # its bake would replace the rotos the running render reads
        nuke.message(f"VOM Matte: {node.name()} is rendering; wait for it, or cancel it, before submitting to the farm")
        return None
    try:
        vom = vom_executable()
        prepared = prepare_shot(node)
    except HostError as e:
        nuke.message(f"VOM Matte: {e}")
        return None
    except OSError as e:
        nuke.message(f"VOM Matte: {node.name()}: cannot write {e.filename or ''}: {e.strerror or e}")
        return None
    try:
        shot_file = _farm_snapshot(prepared)
    except OSError as e:
        if prepared.undo is not None:
            prepared.undo.undo()
        nuke.message(f"VOM Matte: {node.name()}: cannot write {e.filename or ''}: {e.strerror or e}")
        return None
    bundle = shot_file.parent / "openjd_bundle"
    try:
        proc = subprocess.run(build_farm_command(vom, shot_file, bundle, chunk), capture_output=True, text=True,
                              errors="replace", env=_common.subprocess_env())
    except OSError as e:
        if prepared.undo is not None:
            prepared.undo.undo()
        nuke.message(f"VOM Matte: {vom} could not be started: {e}")
        return None
    if prepared.undo is not None:  # refused (exit 2): the work folder as it was; its frozen copy stays in farm/
        prepared.undo.undo() if proc.returncode == 2 else prepared.undo.discard()
    if proc.returncode != 0:
        nuke.message(f"VOM Matte: vom farm failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        return None
    # the node reads what the farm will write (black until the frames are there, then the matte)
    first, last = frame_bounds(str(prepared.fields["frames"])) or _script_range()
    _reload_alpha(node, prepared.fields, first, last, prepared.offset)
    # what vom farm warned of (no shared cache for the workers, a plate not there yet to check): with the success,
    # where it was read only on a failure (QA)
    warned = [_farm_in_node_terms(line, node, shot_file) for line in proc.stderr.splitlines() if line.strip()]
    said = ("\n\nvom farm says:\n" + "\n".join(f"- {w}" for w in warned[-8:])) if warned else ""
    work = prepared.shot_file.parent
    baked = (f"\n\nThe job reads the Source baked in {work} (not frozen with it, as the rotos are: a plate per "
             f"submission): an Analyze after a change upstream of the Source bakes it again under the queued job; "
             f"wait for the job first." if Path(str(prepared.fields["plate"])).parent == work else "")
    submit = _command_line(["deadline", "bundle", "submit", str(bundle)])  # pasted into a shell as it is (QA)
    out = str(prepared.fields["out"])
    objects = list(prepared.fields.get("objects") or {})
    reads = out.replace("{object}", objects[0]) if objects and "{object}" in out else out  # the first object's (QA)
    others = f" (the other objects' in {out})" if reads != out else ""
    nuke.message(f"VOM Matte: job bundle written to\n{bundle}\n\nSubmit it with:\n"
                 f"{submit}\n\nThe node now reads {reads}{others}: black where the "
                 f"farm has not written a frame yet.{baked}{said}")
    return bundle
