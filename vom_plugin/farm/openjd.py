"""A shot as an AWS Deadline Cloud job bundle: an Open Job Description template + parameter values.

One step per span (frames served by the same keyframes; spans do not depend on each other, so they run
in parallel). A span's tasks are frame chunks: a ``CHUNK[INT]`` task parameter (``TASK_CHUNKING``
extension), each task running ``vom render SHOT.yaml --frames={{Task.Param.Frame}}``, which resumes from the
per-shot cache. By default a chunk is the whole span: its frames are one propagation, each reading the ones
before it, and a farm runs a step's tasks at once, where each chunk of N frames would propagate from the
keyframe again (the last one redoing all of the span's work).
A last step, depending on every span, checks that every frame of the shot was written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from vom_plugin.atomic import check_replaceable, make_folder, write_files_atomic
from vom_plugin.errors import InputError
from vom_plugin.farm.names import description, farm_name
from vom_plugin.farm.spans import (
    NO_BOOKING,
    Booking,
    FarmShot,
    Span,
    compact_range,
    default_vom,
    span_description,
    split_spans,
)

SPEC_VERSION = "jobtemplate-2023-09"
CHECK_STEP = "check_outputs"


CANCEL_GRACE_S = 60  # a frame in hand at 4K on a CPU, and the state saved after it, take seconds


def _render_action(frame_expr: str, gpu: bool = False) -> dict[str, Any]:
    # one word: a chunk of negative frames (-3--2) would be read by argparse as an option; on a GPU worker, the GPU
    # the farm gives the task (a shot's cuda:1, the artist's second card, is not the worker's)
    # a cancel, requeue or timeout sends SIGTERM first (the spec's default is SIGKILL at once): vom finishes the frame
    # in hand, saves the memory state and exits 130, so the task's next run resumes instead of starting again.
    # --progress openjd: the progress lines the farm's monitor shows; --no-worker: the task renders in its own
    # process (a `vom worker` an artist left on the node would take it, with its environment, limits and signals)
    return {"command": "{{Param.Vom}}",
            "args": ["render", "{{Param.ShotFile}}", f"--frames={frame_expr}", "--progress", "openjd", "--no-worker",
                     *(["--device", "cuda"] if gpu else [])],
            "cancelation": {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": CANCEL_GRACE_S}}


def _constraint(frames: tuple[int, ...] | list[int]) -> str:
    consecutive = all(b - a == 1 for a, b in zip(frames, frames[1:], strict=False))
    return "CONTIGUOUS" if consecutive else "NONCONTIGUOUS"


def _step(span: Span, chunk: int | None, gpu: bool, said: str, booking: Booking) -> dict[str, Any]:
    step: dict[str, Any] = {
        "name": span.name,
        "description": description(said),
        "parameterSpace": {"taskParameterDefinitions": [{
            "name": "Frame",
            "type": "CHUNK[INT]",
            "range": compact_range(span.frames),
            # CONTIGUOUS: each task gets a range such as 1001-1010, which `vom render --frames` reads as is; a
            # stepped or irregular span has no two consecutive frames, so CONTIGUOUS would make one-frame tasks:
            # there each task gets a list such as 1001,1003
            "chunks": {"defaultTaskCount": chunk or len(span.frames), "rangeConstraint": _constraint(span.frames)},
        }]},
        "script": {"actions": {"onRun": _render_action("{{Task.Param.Frame}}", gpu)}},
    }
    amounts: list[dict[str, Any]] = []
    if gpu:  # device: cuda in the shot: only GPU workers can run it
        amounts.append({"name": "amount.worker.gpu", "min": 1})
    if booking.cores:
        amounts.append({"name": "amount.worker.vcpu", "min": booking.cores})
    if booking.memory_gb:
        amounts.append({"name": "amount.worker.memory", "min": booking.memory_gb * 1024})  # MiB
    if amounts:
        step["hostRequirements"] = {"amounts": amounts}
    threads = booking.thread_env()
    if threads:
        step["stepEnvironments"] = [{"name": "VomThreads", "description": "the render's threads: the cores booked",
                                     "variables": threads}]
    return step


def build_template(shot: FarmShot, chunk: int | None = None, booking: Booking = NO_BOOKING) -> dict[str, Any]:
    """The job template (a plain dict, YAML-ready); ``chunk``: frames per task, None: a span per task; ``booking``:
    what each render task asks for."""
    if chunk is not None and chunk < 1:
        raise InputError(f"--chunk {chunk}: expected a number of frames per task, 1 or more")
    spans = split_spans(shot.frames, shot.keyframes)
    steps = [_step(s, chunk, gpu=shot.device.startswith("cuda"), said=span_description(shot, s),  # cuda or cuda:N
                   booking=booking) for s in spans]
    steps.append({
        "name": CHECK_STEP,
        "description": ("Fails when a frame's output is missing, unreadable, not the plate's size or not a matte, or "
                        "was rendered from other rotos, settings or weights, another plate frame, picture or exposure "
                        "than the shot's now (vom farm --help)."),
        "dependencies": [{"dependsOn": s.name} for s in spans],
        "script": {"actions": {"onRun": {"command": "{{Param.Vom}}",
                                         "args": ["farm", "check", "{{Param.ShotFile}}",
                                                  f"--frames={compact_range(shot.frames)}"]}}},
    })
    return {
        "specificationVersion": SPEC_VERSION,
        "extensions": ["TASK_CHUNKING"],
        "name": f"vom {farm_name(shot.name)}",  # a job name is a format string: no user text unchecked
        "description": description(f"vom matte of {shot.path.name}: frames {compact_range(shot.frames)}, "
                                   f"keyframes {', '.join(map(str, shot.keyframes))}; {len(spans)} independent "
                                   + (f"span(s) in chunks of at most {chunk} frame{'s' if chunk > 1 else ''}."
                                      if chunk else "span(s), one task each.")),
        "parameterDefinitions": [
            # no dataFlow: job attachments would copy the shot file to the worker's session folder, where the
            # plate and out paths it gives relative to itself name other files; vom reads and writes shared storage
            # (a PATH parameter still follows the queue's path mapping rules)
            {"name": "ShotFile", "type": "PATH", "objectType": "FILE",
             "description": "The vom shot file (YAML) to render, on storage every worker sees."},
            {"name": "Vom", "type": "STRING", "default": default_vom(),
             "description": "The vom command on the workers (the project environment's bin/vom)."},
            # no output folder parameter: the frames go where the shot file's out says (one that nothing read
            # looked like a setting, and changing it changed nothing)
        ],
        "steps": steps,
    }


def parameter_values(shot: FarmShot, vom: str | None = None) -> dict[str, Any]:
    """``parameter_values.yaml`` of a Deadline Cloud job bundle."""
    return {"parameterValues": [
        {"name": "ShotFile", "value": str(shot.path)},
        {"name": "Vom", "value": vom or default_vom()},
    ]}


MARKER = "# written by vom farm openjd"  # its first line: an existing file without it is the user's


def _dump(data: dict[str, Any]) -> str:
    return f"{MARKER}\n" + yaml.safe_dump(data, sort_keys=False, width=100, default_flow_style=False)


def _ours(start: bytes) -> bool:
    """A bundle file vom wrote: marked, or (before session 32) a template of a ``vom`` job or the values of its
    parameters."""
    if start.startswith(MARKER.encode()):
        return True
    if len(start) >= 1 << 20:  # not a bundle of vom's (a few kB)
        return False
    try:
        data = yaml.safe_load(start.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):  # only the file's start: a long one reads as cut
        return False
    if not isinstance(data, dict):
        return False
    steps = data.get("steps")
    if str(data.get("name", "")).startswith("vom ") and isinstance(steps, list):
        # and only vom's steps: a user's own job named "vom ..." with a step of theirs was replaced (QA)
        return bool(steps) and all(isinstance(st, dict) and re.fullmatch(r"frames_m?[0-9]+_m?[0-9]+|check_outputs",
                                                                           str(st.get("name", ""))) for st in steps)
    values = data.get("parameterValues")
    return isinstance(values, list) and len(data) == 1 and bool(values) and all(
        isinstance(v, dict) and v.get("name") in ("ShotFile", "Vom", "OutputDir") for v in values)


def write_bundle(shot: FarmShot, out_dir: str | os.PathLike[str], *, chunk: int | None = None,
                 vom: str | None = None, booking: Booking = NO_BOOKING) -> Path:
    """Write ``template.yaml`` and ``parameter_values.yaml`` into ``out_dir``; each file is written to a
    temporary name and renamed, so a failed write never leaves a half file."""
    template = build_template(shot, chunk, booking)
    if vom:
        template["parameterDefinitions"][1]["default"] = vom
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r}: exists and is not a folder")
    files = (("template.yaml", template), ("parameter_values.yaml", parameter_values(shot, vom)))
    for name, _ in files:  # the shot file itself, or a bundle of the user's, named by an --out typo: refused
        check_replaceable(out / name, _ours, "--out", head=1 << 20)  # whole: a bundle is a few kB
    make_folder(out, "--out")
    write_files_atomic({out / name: _dump(data).encode("utf-8") for name, data in files})
    return out
