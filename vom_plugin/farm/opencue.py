"""A shot as an OpenCue job, built with PyOutline and serialised to the job spec XML without a Cuebot.

The same job as the Open Job Description bundle: one layer per span (independent, parallel), each a
``vom render SHOT --frames #FRAME_START#-#FRAME_END#`` over its frame range in chunks, and a check
layer that depends on all of them. Layers run their command directly (no pycuerun wrapper), so the
workers need the vom environment, not PyOutline.
"""

from __future__ import annotations

import getpass
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

from vom_plugin.errors import InputError
from vom_plugin.farm.spans import FarmShot, compact_range, default_vom, split_spans

CHECK_LAYER = "check_outputs"


def _command(*words: str) -> str:
    # OpenCue runs the command through a shell; the frame tokens are substituted by RQD beforehand.
    return " ".join(w if w.startswith("#FRAME") else shlex.quote(w) for w in words)


def build_outline(shot: FarmShot, chunk: int, *, vom: str | None = None, show: str = "vom",
                  user: str | None = None) -> Any:
    """The PyOutline ``Outline`` of the shot (layers added, dependencies set)."""
    if chunk < 1:
        raise InputError(f"--chunk {chunk}: expected a number of frames per task, 1 or more")
    import outline
    from outline.modules.shell import Shell

    vom = vom or default_vom()
    ol = outline.Outline(f"vom_{shot.name}", shot=shot.name, show=show, user=user or getpass.getuser())
    layers = []
    for span in split_spans(shot.frames, shot.keyframes):
        cmd = _command(vom, "render", str(shot.path), "--frames", "#FRAME_START#-#FRAME_END#", "--progress",
                       "json")
        extra: dict[str, Any] = {"gpus": 1} if shot.device == "cuda" else {}  # a GPU host for device: cuda
        layer = Shell(span.name, command=cmd, range=compact_range(span.frames), chunk=chunk, **extra)
        ol.add_layer(layer)
        layers.append(layer)
    check = Shell(CHECK_LAYER, command=_command(vom, "farm", "check", str(shot.path)), range=str(shot.frames[0]),
                  chunk=1)
    ol.add_layer(check)
    for layer in layers:
        check.depend_all(layer)
    return ol


def serialize(ol: Any) -> str:
    """The OpenCue job spec XML of an outline, made locally (no Cuebot is contacted)."""
    import outline.backend.cue as cue
    import outline.cuerun

    return str(cue.serialize_simple(outline.cuerun.OutlineLauncher(ol)))


def write_outline(shot: FarmShot, path: str | os.PathLike[str], *, chunk: int, vom: str | None = None,
                  show: str = "vom", user: str | None = None) -> Path:
    xml = serialize(build_outline(shot, chunk, vom=vom, show=show, user=user))
    out = Path(path).resolve()
    if out.is_dir():
        raise InputError(f"--out {str(out)!r}: is a folder; expected the path of the XML file to write")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(xml)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
