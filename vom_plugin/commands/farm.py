"""``vom farm``: render-farm jobs from a shot file (Open Job Description bundle, OpenCue outline)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable

from vom_plugin.errors import one_line

HELP = "write a render-farm job for a shot: openjd (Deadline Cloud bundle) | opencue (outline XML) | check"
DESCRIPTION = """\
Write a render-farm job for a shot file (the keys of `vom render SHOT.yaml`).

The shot's frames are cut into spans served by the same keyframes (before the first keyframe,
between two keyframes, after the last); spans run in parallel, each one task of
`vom render SHOT.yaml --frames=A-B` (a span is one propagation: each frame reads the frames before it;
a task killed or requeued resumes from the per-shot cache). `--chunk N` cuts a span into tasks of at most N
frames, each continuing from the state the one before it left: worth it only where the farm runs a
span's tasks one after another (run at once, each propagates from its keyframe again). A last step
(`vom farm check`) fails when a frame's output is missing, not a readable EXR, not the size of its plate
frame, without the alpha channel or with values no matte has (NaN, above 1), with a soft mask channel
(as vom wrote it before its mask was made hard), not written by vom, another frame's
or another object's, or rendered from other keyframes, rotos, settings or weights than the shot's (an output of
an earlier version of the shot), by another vom version's arithmetic, or from a plate frame, a picture
(overscan) or an exposure the shot's plate no longer has; and where the shot's weights or a roto cannot be read
here (the outputs cannot be compared with them). With --json, what was not checked is in its "notes".

  vom farm openjd SHOT.yaml --out bundle/     then: deadline bundle submit bundle/
  vom farm opencue SHOT.yaml --out job.xml    then: submit job.xml with cuesubmit/pycue
  vom farm check SHOT.yaml                               exit 2 and the missing or bad frames, if any
"""


def _chunk(text: str) -> int | None:
    if text.strip().lower() == "span":
        return None
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of frames, nor `span`") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: expected 1 or more frames per task")
    return n


def _whole(what: str, most: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of {what}") from None
        if not 1 <= n <= most:
            raise argparse.ArgumentTypeError(f"{n}: expected 1-{most} {what}")
        return n
    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="farm_command", metavar="KIND", required=True)
    oj = sub.add_parser("openjd", help="AWS Deadline Cloud job bundle (Open Job Description template)")
    oj.add_argument("shot", metavar="SHOT.yaml")
    oj.add_argument("--out", required=True, metavar="DIR", help="bundle folder (template.yaml, parameter_values.yaml)")
    cue = sub.add_parser("opencue", help="OpenCue job spec XML built with PyOutline (no Cuebot needed)")
    cue.add_argument("shot", metavar="SHOT.yaml")
    cue.add_argument("--out", required=True, metavar="FILE", help="XML file to write")
    cue.add_argument("--show", default="vom", help="OpenCue show (default %(default)s)")
    cue.add_argument("--user", help="OpenCue user (default: the current user)")
    for q in (oj, cue):
        q.add_argument("--chunk", type=_chunk, default=None, metavar="N|span",
                       help="frames per task (default: span, one task per span: its frames depend on each other in "
                            "order, and a farm runs a step's tasks at once, each propagating from its keyframe)")
        q.add_argument("--vom", metavar="PATH", help="the vom command on the workers (default: this environment's)")
        q.add_argument("--cores", type=_whole("cores", 1024), metavar="N",
                       help="CPU cores each render task asks for (OpenCue: books; Open Job Description: the least a "
                            "worker must have), and its threads (OMP_NUM_THREADS in the task's environment; default: "
                            "on OpenCue the cores the show's service books, CUE_THREADS, elsewhere every core of the "
                            "node)")
        q.add_argument("--memory", type=_whole("GB", 4096), metavar="GB",
                       help="memory each render task asks for, in whole GB (OpenCue: books; Open Job Description: the "
                            "least a worker must report; default: the farm's)")
    chk = sub.add_parser("check", help="list the frames of a shot whose output is missing or bad (exit 2 if any)")
    chk.add_argument("shot", metavar="SHOT.yaml")
    chk.add_argument("--json", action="store_true", help="print one JSON object")
    chk.add_argument("--frames", metavar="RANGE", help="check these frames (a job's check step names the job's), "
                     "not the shot's as its file and plate say now")


def run(args: argparse.Namespace) -> int:
    from vom_plugin.farm.spans import (
        check_out_folders,
        check_outputs,
        check_plate,
        compact_range,
        load_farm_shot,
        split_spans,
        summary,
    )

    if args.farm_command == "opencue":  # before reading anything: say which extra is missing first
        from vom_plugin.extras import require

        for module in ("outline", "packaging", "outline.backend.cue"):
            require(module, "OpenCue jobs", extra="farm")
    if args.farm_command != "check":
        from vom_plugin.commands._args import flag_path
        from vom_plugin.errors import InputError

        if not args.out.strip():  # a submitter's empty variable: the job's files went into the working folder (QA)
            raise InputError(f"--out {args.out!r}: blank; expected "
                             f"{'the bundle folder' if args.farm_command == 'openjd' else 'the XML file'} to write")
        args.out = flag_path(args.out, "--out")  # $SHOW and ~user as vom render reads them (review: a folder $NOPE)
    shot = load_farm_shot(args.shot)
    if args.farm_command == "check":
        if args.frames is not None:
            import dataclasses

            from vom_plugin.errors import InputError
            from vom_plugin.io import format_frames, parse_frame_range

            try:
                asked = sorted(set(parse_frame_range(args.frames)))
            except InputError as e:
                raise InputError(f"--frames: {e}") from None
            have = set(shot.frames)
            outside = [f for f in asked if f not in have]
            if outside:  # said as such: they were counted as frames with no output file (QA)
                raise InputError(f"--frames {args.frames}: {format_frames(outside)} "
                                 f"{'is' if len(outside) == 1 else 'are'} not among the frames of {shot.path} "
                                 f"({compact_range(shot.frames)}; a job's check step passes the job's frames: was "
                                 f"the shot file or the plate changed since the job was made?)")
            shot = dataclasses.replace(shot, frames=asked)
        notes: list[str] = []
        problems = check_outputs(shot, notes)
        for note in notes:
            print(f"vom farm check: warning: {one_line(note)}", file=sys.stderr)
        missing = sorted(f for f, why in problems.items() if why.missing)
        bad = {f: problems[f] for f in sorted(problems) if not problems[f].missing}  # in frame order
        if args.json:
            # what was not checked, as stderr says it (QA: a pipeline reading the JSON saw a clean pass)
            print(json.dumps({"shot": str(shot.path), "frames": len(shot.frames), "missing": missing,
                              "bad": {str(f): why for f, why in bad.items()}, "notes": notes}))
        if missing:
            print(f"vom farm check: {len(missing)} of {len(shot.frames)} frames of {one_line(shot.path)} have no "
                  f"output file ({one_line(shot.out)}): {compact_range(missing)}", file=sys.stderr)
            if len(shot.output_channels()) > 1:  # one sequence per object: which object's file
                for f in missing:
                    for path in problems[f].paths:
                        print(f"  frame {f}: {one_line(path)} is missing", file=sys.stderr)
        if bad:
            print(f"vom farm check: {len(bad)} of {len(shot.frames)} frames of {one_line(shot.path)} have a bad "
                  f"output file:",
                  file=sys.stderr)
            for f, why in bad.items():
                print(f"  frame {f}: {one_line(why.path)}: {one_line(why.removeprefix(why.path.name + ': '))}",
                      file=sys.stderr)
            # a render replaces only what it can read as its own output of that frame (QA: a requeued task failed
            # on a truncated file again and again, and nothing said what to do); vom's earlier outputs it replaces,
            # which the advice to move every file away did not say (QA)
            again = [f for f, why in bad.items() if why.replaced and not why.plate]
            kept = [f for f, why in bad.items() if not why.replaced and not why.plate]
            unread = [f for f, why in bad.items() if why.plate]
            if again:
                print(f"  frame{'s' if len(again) > 1 else ''} {compact_range(again)}: vom's earlier output, which a "
                      f"render replaces: requeue the tasks that render {'them' if len(again) > 1 else 'it'}",
                      file=sys.stderr)
            if kept:
                print(f"  frame{'s' if len(kept) > 1 else ''} {compact_range(kept)}: a file a render does not replace "
                      f"(damaged, read-only, another frame's, objects' or plate's, or not vom's): move it away (or "
                      f"make it writable), then requeue the tasks", file=sys.stderr)
            if unread:  # a render of them fails on it too (QA: "requeue" where every task exited 2)
                print(f"  frame{'s' if len(unread) > 1 else ''} {compact_range(unread)}: a render reads "
                      f"{'their plate frames' if len(unread) > 1 else 'its plate frame'} too and fails (exit 2): "
                      f"deliver {'them' if len(unread) > 1 else 'it'} to the plate first, then requeue the tasks",
                      file=sys.stderr)
        if problems:
            return 2
        if not args.json:
            # one sequence per object: a frame is that many files (QA: "all 20 frames" of 40 files)
            sequences = len(shot.output_channels())
            files = f"{len(shot.frames) * sequences} files, " if sequences > 1 else ""
            print(f"all {len(shot.frames)} frames written and readable ({files}{one_line(shot.out)})")
        return 0
    check_out_folders(shot)
    unchecked = check_plate(shot)  # a job whose every task would exit 2 is refused here, before it is submitted
    if unchecked:
        print(f"vom farm: note: {one_line(unchecked)}", file=sys.stderr)
    spans = split_spans(shot.frames, shot.keyframes)
    from vom_plugin.farm.spans import Booking

    booking = Booking(cores=args.cores, memory_gb=args.memory)
    if args.farm_command == "openjd":
        from vom_plugin.farm.openjd import write_bundle

        where = write_bundle(shot, args.out, chunk=args.chunk, vom=args.vom, booking=booking)
        print(f"job bundle: {one_line(where)} (template.yaml, parameter_values.yaml)")
        print(f"submit with: deadline bundle submit {_shell_word(str(where))}")
    else:
        from vom_plugin.farm.opencue import write_outline

        where = write_outline(shot, args.out, chunk=args.chunk, vom=args.vom, show=args.show, user=args.user,
                              booking=booking)
        print(f"OpenCue job spec: {one_line(where)}")
        if args.cores is None:  # RQD says the cores booked in CUE_THREADS, and the render runs on that many (review)
            print("vom farm: note: no --cores: each render runs on the cores the show's service books for its layer "
                  "(CUE_THREADS; a default service books one); give --cores N to book N and render on N threads",
                  file=sys.stderr)
    from vom_plugin.engine.shot import env_vars_of_file

    needed = env_vars_of_file(shot.path)
    if needed:  # read by each task where it runs (QA: a worker without them failed every task, exit 2)
        said = ", ".join(f"${n} (here {os.environ.get(n, '')!r})" for n in needed)
        them = "them" if len(needed) > 1 else "it"
        print(f"vom farm: note: {one_line(shot.path)}'s paths read {one_line(said)}: every worker needs {them} set "
              f"to the same (a worker without {them} fails each task, exit 2)", file=sys.stderr)
    for s in summary(shot, spans)["spans"]:
        print(f"  {one_line(s['name'])}: {one_line(s['description'])}")
    if shot.objects_own_keyframes and len(spans) > 1:
        from vom_plugin.farm.spans import steps_of

        together, alone = steps_of(shot, spans)
        if together > alone:
            print(f"vom farm: note: the shot's objects have keyframes of their own, so its {len(spans)} spans "
                  f"overlap: each span's task propagates every object from that object's keyframes ({together} "
                  f"propagation steps in all, against {alone} for the shot rendered as one task, `vom render "
                  f"{_shell_word(str(shot.path))}`): on a farm of few nodes that one render is done sooner",
                  file=sys.stderr)
    cut = [s for s in spans if args.chunk is not None and args.chunk < len(s.frames)]
    if cut:
        print(f"vom farm: note: {one_line(_chunk_note(args.chunk, cut))}", file=sys.stderr)
    if shot.cache is None:
        print(f"vom farm: warning: {one_line(shot.path)} has no `cache:` folder, so each worker uses its own user "
              "cache and a chunk run on another worker than the chunk before it recomputes the propagation from the "
              "keyframe; set `cache:` to a folder all workers share", file=sys.stderr)
    elif shot.cache_unused:  # every task renders without it (review)
        print(f"vom farm: warning: {one_line(shot.path)}'s `cache:` is not used: {one_line(shot.cache_unused)}; every "
              "task would render without the cache (no chunk goes on from the one before it)", file=sys.stderr)
    elif os.path.lexists(shot.cache) and not os.path.isdir(shot.cache):
        # every task rendered without it, saying so only in its own log (QA: a typo'd shared cache)
        print(f"vom farm: warning: {one_line(shot.path)}'s `cache:` {one_line(shot.cache)} is not a folder: every "
              "task would render without the cache (no chunk goes on from the one before it); set `cache:` to a "
              "folder all workers share", file=sys.stderr)
    return 0


def _chunk_note(chunk: int, cut: list) -> str:
    """What ``--chunk`` costs, for the spans it cuts (``cut``): a pass runs away from its keyframe, so before the first
    keyframe the chunks go on from one another in reverse (QA: the note said "in order", the work on the last chunk,
    where a backward span's fell on its first)."""
    kinds = {s.kind for s in cut}
    ways = []
    if "after" in kinds:
        ways.append("after a keyframe in frame order, each chunk from the one before it")
    if "before" in kinds:
        ways.append("before the first keyframe backward, each chunk from the one after it (run in frame order, the "
                    "first chunk propagates through every later chunk's frames, which then read them from the cache)")
    if "between" in kinds:
        ways.append("between two keyframes from both, each chunk from the chunks on either side")
    far = [w for k, w in (("after", "a span's last chunk after a keyframe"),
                          ("before", "its first before the first keyframe"),
                          ("between", "the first and the last between two keyframes")) if k in kinds]
    longest = max(len(s.frames) for s in cut)
    return (f"--chunk {chunk} cuts a span into tasks that continue one another's propagation away from its "
            f"keyframe: {'; '.join(ways)}. A farm that runs a step's tasks at once has each propagate from its "
            f"keyframe again (no sooner done: the chunk farthest from a keyframe, {', '.join(far)}, propagates "
            f"through up to {-(-longest // chunk)} chunks' frames): limit the step to one task at a time, or leave "
            f"--chunk at span")


def _shell_word(text: str) -> str:
    """``text`` quoted for a POSIX shell on one line: ``shlex.quote``, or where it holds a control character (a
    newline would break the printed command in two) bash's ``$'...'``, whose escapes ``one_line`` writes (review:
    ``'/a\\nb'`` named another folder)."""
    if one_line(text) == text:
        return shlex.quote(text)
    return "$'" + one_line(text.replace("\\", "\\\\").replace("'", "\\'")) + "'"
