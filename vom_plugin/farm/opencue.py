"""A shot as an OpenCue job, built with PyOutline and serialised to the job spec XML without a Cuebot.

The same job as the Open Job Description bundle: one layer per span (independent, parallel), each a
``vom render SHOT --frames=#FRAME_START#-#FRAME_END#`` over its frame range (by default one chunk: see openjd.py),
and a check
layer that depends on all of them. Layers run their command directly (no pycuerun wrapper), so the
workers need the vom environment, not PyOutline.
"""

from __future__ import annotations

import getpass
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from vom_plugin.atomic import check_replaceable, make_folder, write_text_atomic
from vom_plugin.errors import InputError
from vom_plugin.farm.names import farm_name
from vom_plugin.farm.spans import NO_BOOKING, Booking, FarmShot, compact_range, default_vom, split_spans
from vom_plugin.io.sequence import parse_frame_range

CHECK_LAYER = "check_outputs"


def _command(*words: str) -> str:
    # OpenCue runs the command through a shell; the frame tokens are substituted by Cuebot beforehand.
    return " ".join(w if w.startswith(("#FRAME", "--frames=#FRAME")) else shlex.quote(w) for w in words)


def _check_command_word(what: str, word: str) -> None:
    """InputError for a path a task's command cannot carry: Cuebot replaces its #TOKEN#s (#FRAME#, #IFRAME#, #JOB#,
    #LAYER#...) in the whole command, quoted or not, so the task would read another file; and the job's XML holds no
    control character (PyOutline's parser failed, exit 1: QA)."""
    token = re.search(r"#[A-Z][A-Z_]*#", word)
    if token:
        raise InputError(f"{what} {word!r} holds {token.group(0)}, which OpenCue replaces in a task's command (quotes "
                         f"do not stop it): every task would read another file; rename it")
    # a $ that starts an expansion ($VAR, ${...}, $(...), $1, $$...); a share's projects$/ stays the path's own
    shell = re.search(r"\$(?=[A-Za-z_{(\[0-9$?!#*@-])|[`\\]", word)
    if shell:
        # RQD's Docker mode runs the command inside a double-quoted `su -c "..."`, escaping only its double quotes:
        # the outer shell expands $(...), `...` and $VAR through our single quotes (QA: a shot folder holding `id`
        # ran it on the render node, and the task read another path)
        raise InputError(f"{what} {word!r} holds {shell.group(0)!r}, which OpenCue's RQD expands in a task's "
                         f"command when it runs tasks in Docker (quotes do not stop it there): rename it")
    if re.search(r"[\x00-\x08\x0b-\x1f]", word):  # XML 1.0 takes a tab and a newline; a CR it reads as a newline
        raise InputError(f"{what} {word!r} holds a control character, which an OpenCue job's XML cannot carry; "
                         f"rename it")


def _layer_ranges(name: str, frames: list[int]) -> list[tuple[str, str, int]]:
    """(layer name, OpenCue range, step) covering ``frames``. A task renders #FRAME_START#-#FRAME_END#, which
    must not take in frames outside the span: a contiguous or evenly stepped span is one layer (the step
    passed on to vom), an irregular one one layer per run of one step (``1001-1099x2,1201-1299x2``: two, where
    a layer per contiguous run made one a frame)."""
    runs: list[list[int]] = []
    for f in frames:
        run = runs[-1] if runs else None
        if run is not None and (len(run) == 1 or f - run[-1] == run[1] - run[0]):
            run.append(f)
        else:
            runs.append([f])
    out = []
    for i, run in enumerate(runs):
        step = run[1] - run[0] if len(run) > 1 else 1
        rng = str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" + (f"x{step}" if step > 1 else "")
        out.append((name if len(runs) == 1 else f"{name}_part{i + 1}", rng, step))
    return out


def build_outline(shot: FarmShot, chunk: int | None = None, *, vom: str | None = None, show: str = "vom",
                  user: str | None = None, booking: Booking = NO_BOOKING) -> Any:
    """The PyOutline ``Outline`` of the shot (layers added, dependencies set); ``chunk``: frames per task, None: a
    layer's frames in one task (see openjd.py: a span is one propagation, and a layer's frames run at once)."""
    if chunk is not None and chunk < 1:
        raise InputError(f"--chunk {chunk}: expected a number of frames per task, 1 or more")
    from vom_plugin.extras import require

    outline = require("outline", "vom farm opencue")
    Shell = require("outline.modules.shell", "vom farm opencue").Shell

    if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", show):
        raise InputError(f"--show {show!r}: expected the name of an OpenCue show (letters, digits, underscores)")
    vom = vom or default_vom()
    for what, path in (("the shot file", str(shot.path)), ("--vom", vom)):
        _check_command_word(what, path)
    name = farm_name(shot.name)  # OpenCue names the job show-shot-name: no hyphens, spaces or non-ASCII
    ol = outline.Outline(f"vom_{name}", shot=name, show=show, user=user or getpass.getuser())
    layers = []
    gpu = shot.device.startswith("cuda")
    extra: dict[str, Any] = {"gpus": 1} if gpu else {}  # a GPU host for device: cuda
    if booking.cores:  # booked (a layer is not threadable unless said): RQD gives these, CUE_THREADS says so
        extra.update(cores=booking.cores, env=booking.thread_env())
    if booking.memory_gb:
        extra["memory"] = f"{booking.memory_gb}g"
    for span in split_spans(shot.frames, shot.keyframes):
        part = None
        for name, frame_range, step in _layer_ranges(span.name, list(span.frames)):
            frames_arg = "#FRAME_START#-#FRAME_END#" + (f"x{step}" if step > 1 else "")
            # one word: a chunk of negative frames (-3--2) would be read by argparse as an option
            # --no-worker: the frame renders in its own process, not in a `vom worker` left on the host (see openjd.py)
            cmd = _command(vom, "render", str(shot.path), f"--frames={frames_arg}", "--progress", "json", "--no-worker",
                           *(["--device", "cuda"] if gpu else []))  # the GPU the farm gives, not the shot's cuda:N
            layer = Shell(name, command=cmd, range=frame_range, chunk=chunk or len(parse_frame_range(frame_range)),
                          **extra)
            ol.add_layer(layer)
            if part is not None:
                # the parts of an irregular span are one propagation: each goes on from the memory the part before
                # it left in the cache (run at once, each propagated the whole span from its keyframes: QA)
                layer.depend_all(part)
            part = layer
            layers.append(layer)
    # the job's frames, not the shot's as they are when it runs (plate frames delivered meanwhile failed the check
    # on frames no task of the job renders, QA)
    check = Shell(CHECK_LAYER, command=_command(vom, "farm", "check", str(shot.path),
                                                f"--frames={compact_range(shot.frames)}"),
                  range=str(shot.frames[0]), chunk=1)
    ol.add_layer(check)
    for layer in layers:
        check.depend_all(layer)
    return ol


def serialize(ol: Any, uid: int | None = None) -> str:
    """The OpenCue job spec XML of an outline, made locally (no Cuebot is contacted); ``uid``: the job's user id
    (PyOutline writes this process's, whatever the outline's user)."""
    from vom_plugin.extras import require

    cue = require("outline.backend.cue", "vom farm opencue")
    cuerun = require("outline.cuerun", "vom farm opencue")
    xml = str(cue.serialize_simple(cuerun.OutlineLauncher(ol)))
    if uid is not None:
        xml, n = re.subn(r"<uid>\d+</uid>", f"<uid>{uid}</uid>", xml, count=1)
        if n != 1:
            raise RuntimeError("PyOutline's job spec has no <uid> to set")
    return xml


def job_uid(user: str | None) -> int:
    """The uid of the job's user: ``user``'s account on this machine (Cuebot runs the frames as that uid), else this
    process's. InputError for a user this machine has no account for: the job would carry another user's uid."""
    if user is None:
        return os.getuid() if hasattr(os, "getuid") else 1
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}", user):
        raise InputError(f"--user {user!r}: expected a user name (letters, digits, '_', '.', '-')")
    try:
        import pwd
    except ImportError:  # Windows: PyOutline writes uid 1 there
        return 1
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        raise InputError(f"--user {user}: this machine has no account of that name to take the job's uid from "
                         f"(Cuebot runs the frames as it); run vom farm opencue where the account is known") from None


MARKER = "<!-- written by vom farm opencue -->"  # an existing file without it (or a vom job) is the user's


def _ours(start: bytes) -> bool:
    """A job file vom wrote: marked, or (before session 32) the spec of a ``vom_`` job."""
    return MARKER.encode() in start or (start.startswith(b"<?xml") and b"<spec>" in start and b'<job name="vom_'
                                        in start)


def write_outline(shot: FarmShot, path: str | os.PathLike[str], *, chunk: int | None = None, vom: str | None = None,
                  show: str = "vom", user: str | None = None, booking: Booking = NO_BOOKING) -> Path:
    uid = job_uid(user)
    if uid == 0:
        print("vom farm: warning: the job's user id is 0 (root): Cuebot refuses jobs launched as root; give "
              "--user NAME", file=sys.stderr)
    xml = serialize(build_outline(shot, chunk, vom=vom, show=show, user=user, booking=booking), uid)
    out = Path(os.path.abspath(path))  # a link at that name is refused below, not followed (as every writer's)
    if out.is_dir() and not out.is_symlink():
        raise InputError(f"--out {str(out)!r}: is a folder; expected the path of the XML file to write")
    check_replaceable(out, _ours, "--out")  # the shot file, a plate frame, a note of the user's, a link: refused
    if xml.startswith("<?xml"):  # the declaration comes first
        end = xml.index("?>") + 2
        xml = f"{xml[:end]}{MARKER}{xml[end:]}"
    else:
        xml = MARKER + xml
    make_folder(out.parent, "--out")
    write_text_atomic(out, xml)
    return out
