"""``vom render``: render a shot's alpha from flags or a YAML shot file.

The flags are generated from the node definition's knobs (name, help, choices), so the command line,
the Nuke node and the Python ``Shot`` cannot disagree.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from vom_plugin.commands._args import knob_type
from vom_plugin.engine.progress import KINDS as PROGRESS_KINDS
from vom_plugin.errors import one_line
from vom_plugin.locations import MODEL_ALIASES
from vom_plugin.nodedef import Knob, load_node_def

HELP = "render a shot's alpha (from flags or a SHOT.yaml)"
DESCRIPTION = """Render the alpha of every requested frame of a shot.

  vom render --plate plate.####.exr --roto roto.1001.exr --frames 1001-1100 --out alpha.####.exr
  vom render shot.yaml --frames 1051-1100       # flags given with a shot file override its fields

A roto's frame comes from its file name's frame field (roto.1001.exr, roto_1001.exr: the digits before the
extension; a version such as roto_v2.exr is none) or from PATH@FRAME. Paths given as flags read ~user and
$SHOW / ${SHOW} as a shot file's do (an unset variable is refused; $$ is a $ of the path itself).
When a `vom worker` of this user runs with the same vom and environment, the render runs there (torch and
the weights already loaded) with the same progress, files and exit codes; --no-worker renders here, and
--start-worker starts one in the background when none listens (what the Nuke and Blender nodes do).
Exit codes: 0 done, 2 bad input or a file that cannot be made, read or written (found before any frame is
written where it can be; a plate frame damaged behind an intact header, a full disk, a read-only mount or a
file put at an output path meanwhile stop the render there, the frames written before complete), 1 internal
error, 130 stopped
(SIGINT/SIGTERM; the frames written are complete and the next render resumes from the cache), 141 its output
pipe was closed (a `| head`, a host that went away; the frames written are complete)."""



def _dest(knob: Knob) -> str:
    return f"knob_{knob.name}"


def _number(x: float) -> str:
    return f"{x:g}"


def add_knob_arguments(p: argparse.ArgumentParser) -> None:
    """One flag per knob of the node definition; defaults stay None so a shot file's values are kept."""
    for knob in load_node_def().knobs:
        if knob.type == "objects":
            continue  # named rotos share the keyframes' flag: --roto NAME=PATH[@FRAME]
        said = [] if knob.range is None else [f"{_number(knob.range[0])} to {_number(knob.range[1])}"]
        said += [] if knob.default in (None, "") else [f"default: {knob.default}"]
        default = f" ({'; '.join(said)})" if said else ""
        # argparse %-formats help texts; the knob help mentions %04d patterns.
        kw: dict[str, Any] = {"dest": _dest(knob), "default": None, "help": (knob.help + default).replace("%", "%%")}
        if knob.type == "keyframes":  # also the objects' flag (NAME=PATH): one help for both
            objects = next((k for k in load_node_def().knobs if k.type == "objects" and k.flag == knob.flag), None)
            if objects is not None:
                kw["help"] = kw["help"] + " " + objects.help.replace("%", "%%")
            kw.update(action="append", metavar="[NAME=]PATH[@FRAME]")
        elif knob.type == "int":
            kw.update(type=knob_type(knob, int), metavar="N")
        elif knob.type == "float":
            kw.update(type=float, metavar="X")
        elif knob.type == "bool":
            kw.update(action=argparse.BooleanOptionalAction)
        elif knob.type == "enum" and not knob.grammar:  # parsed, not argparse's choices: blank is the default
            kw.update(metavar="{" + ",".join(knob.choices) + "}", type=knob_type(knob))
        elif knob.type == "frame_range":
            kw.update(metavar="RANGE")
        elif knob.type == "path":
            kw.update(metavar="PATH" if knob.name == "cache" else "PATTERN")
        elif knob.choices:  # suggested values, read by a grammar (memory: first+every-N; device: cuda:N)
            more = "|cuda:N" if knob.name == "device" else ""  # the hosts' menus offer the first three
            kw.update(metavar="|".join(knob.choices) + more, type=knob_type(knob))
        else:
            kw.update(metavar=knob.name.upper(), type=knob_type(knob))
        p.add_argument(knob.flag, **kw)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("shot", nargs="?", metavar="SHOT.yaml", help="a YAML shot file (keys = the knob names)")
    add_knob_arguments(p)
    p.add_argument("--progress", choices=PROGRESS_KINDS, default="bar",
                   help="bar (the default): a progress bar on stderr; json: one JSON line per event (start, step, "
                        "frame, warning, done, or error) on stdout, for hosts; openjd: openjd_progress and "
                        "openjd_status lines, for an Open Job Description task (vom farm openjd); none: only the "
                        "closing line and warnings")
    p.add_argument("--worker", action=argparse.BooleanOptionalAction, default=True,
                   help="hand the render to a running `vom worker` (torch and the weights already loaded), when "
                        "one listens and runs with this environment; else render in this process "
                        "(default: --worker)")
    p.add_argument("--start-worker", action="store_true",
                   help="when no `vom worker` listens, start one in the background (it exits after 30 minutes "
                        "without a render) and render there, so the next render skips loading torch and the "
                        "weights; the Nuke and Blender nodes pass this")


def _rotos(texts: list[str], flag: str) -> dict[str, Any]:
    """The --roto values: {"keyframes": {frame: path}} for unnamed rotos, {"objects": {name: {frame: path}}}
    for NAME=PATH ones (in the order given); a mix, or a frame given twice for an object, is an error."""
    from vom_plugin.engine.shot import expand_user, expand_vars, parse_object_roto_arg
    from vom_plugin.errors import InputError

    rotos: dict[str | None, dict[int, str]] = {}
    folded: dict[str, str] = {}
    for text in texts:
        # $SHOW read before the frame is (review: --roto '$R' said "no frame number in the file name ... $R@1001");
        # names and frames hold no $, and ~user starts the path only
        name, frame, path = parse_object_roto_arg(expand_vars(text, flag), field=flag)
        path = expand_user(path, flag)
        if name is not None and folded.setdefault(name.lower(), name) != name:
            raise InputError(f"{flag}: object {name!r} is also given as {folded[name.lower()]!r}; object names "
                             f"must differ, also in case")
        kf = rotos.setdefault(name, {})
        if frame in kf:
            what = f"object {name!r}: frame {frame}" if name else f"frame {frame}"
            raise InputError(f"{flag}: {what} is given twice ({kf[frame]} and {path})")
        kf[frame] = path
    if None in rotos and len(rotos) > 1:
        named = next(n for n in rotos if n is not None)
        raise InputError(f"{flag}: rotos with a name ({named}=...) and without one ({rotos[None][min(rotos[None])]}) "
                         f"are mixed; with several objects give every roto as NAME=PATH")
    if None in rotos:
        return {"keyframes": rotos[None]}
    return {"objects": rotos}


def shot_from_args(args: argparse.Namespace) -> Any:
    """The Shot the flags describe (with SHOT.yaml underneath when given); InputError names the flag."""
    from vom_plugin.commands._args import flag_path
    from vom_plugin.engine.shot import Shot, absolute, escape_file_paths
    from vom_plugin.errors import InputError

    values: dict[str, Any] = {}
    for knob in load_node_def().knobs:
        v = getattr(args, _dest(knob), None)
        if v is None:
            continue
        if knob.type == "keyframes":
            values.update(_rotos(v, knob.flag))
            continue
        values[knob.name] = v
    # Paths on the command line are relative to the working folder (a shot file's, to the file's folder), and read
    # as a shot file's are: ~user, and $SHOW where no shell expanded it (a farm template's argument, a quoted
    # '$SHOW/...'), an unset variable refused (QA: --out '$SHOW/a.####.exr' wrote into a folder named $SHOW, and
    # --cache '~nouser/x' made one named ~nouser, exit 0)
    flags = {k.name: k.flag for k in load_node_def().knobs}
    for name in ("plate", "out", "cache"):
        if values.get(name) and str(values[name]).strip():  # blank: no path (the cache's: the user cache)
            values[name] = flag_path(values[name], flags[name])
    if values.get("model") and values["model"] not in MODEL_ALIASES:  # a checkpoint's path, not a shipped name
        values["model"] = flag_path(values["model"], flags["model"])
    if "keyframes" in values:  # read by _rotos already
        values["keyframes"] = {f: absolute(p) for f, p in values["keyframes"].items()}
    if "objects" in values:
        values["objects"] = {n: {f: absolute(p) for f, p in kf.items()} for n, kf in values["objects"].items()}
    if args.shot:
        # read above, naming the flag: final paths, which from_yaml's overrides would expand again ('o$$1' is o$1)
        shot = Shot.from_yaml(args.shot, **escape_file_paths(values))
        if "keyframes" in values or "objects" in values:
            _say_rotos_dropped(args.shot, shot)
        return shot
    missing = [k.flag for k in load_node_def().knobs if k.required and str(values.get(k.name) or "").strip() == ""
               and not (k.name == "keyframes" and "objects" in values)]
    if missing:
        raise InputError(f"missing {', '.join(missing)} (or give a SHOT.yaml); see vom render --help")
    return Shot.from_dict(values, source="vom render")


def _say_rotos_dropped(path: str, shot: Any) -> None:
    """A note of the shot file's keyframes that ``--roto`` left out: rotos given replace an object's rotos, so an
    artist who re-drew the roto of frame 1 of an object keyed on 1 and 12 rendered it without 12, unsaid (QA)."""
    from vom_plugin.engine.shot import Shot
    from vom_plugin.errors import InputError
    from vom_plugin.io import format_frames

    try:
        before = Shot.from_yaml(path).rotos()
    except (InputError, OSError):  # the file alone does not make a shot (its roto is what --roto replaces)
        return
    def key(n: str | None) -> str | None:
        return None if n is None else n.lower()  # --roto Hero= replaces the file's hero

    now = {key(n): kfs for n, kfs in shot.rotos().items()}
    for name, kfs in before.items():
        dropped = sorted(set(kfs) - set(now.get(key(name), kfs)))
        if dropped:
            who = "" if name is None else f"{name}'s "
            print(f"vom render: note: --roto gives {who}rotos, so the shot file's {who}keyframe"
                  f"{'s' if len(dropped) > 1 else ''} {format_frames(dropped)} {'are' if len(dropped) > 1 else 'is'} "
                  f"not used (give {'their rotos' if len(dropped) > 1 else 'its roto'} too to keep "
                  f"{'them' if len(dropped) > 1 else 'it'})", file=sys.stderr)


def _end_bar(progress: Any) -> None:
    """End a terminal bar's line, so what is said next (an error, a note) starts on its own."""
    end_line = getattr(progress, "end_line", None)
    if end_line is not None:
        end_line()


def _stopped_after_resume(e: BaseException, events: Any) -> Any:
    """A stop of the render this process took over from a worker that died: said of the whole render's frames
    (the runner counted its own; a stop before its handling began said "no frame was written", QA)."""
    import signal

    from vom_plugin.errors import CancelledError

    if isinstance(e, KeyboardInterrupt):
        from vom_plugin.cli import _SIGNALLED  # SIGTERM's KeyboardInterrupt is noted there; SIGINT's is not

        name = signal.Signals(_SIGNALLED[-1]).name if _SIGNALLED else "SIGINT"
    else:
        name = getattr(e, "by", None) or "a stop"
    from vom_plugin.io.sequence import written_list

    total = f" of {events.total}" if events.total is not None else ""
    return CancelledError(f"stopped by {name} after {len(events.frames)}{total} frames{written_list(events.frames)} "
                          f"(the vom worker's and this process's); the frames written are complete and the next render "
                          f"resumes from the cache")


def run(args: argparse.Namespace) -> int:
    from vom_plugin.engine.progress import JsonProgress, Resumable, files_of, make_progress
    from vom_plugin.errors import CancelledError, InputError, VomError

    progress = make_progress(args.progress, "vom render")
    events = Resumable(progress)  # a worker's render that this process finishes reads as one render
    try:
        shot = shot_from_args(args)
        summary = None
        if args.start_worker and not args.worker:
            raise InputError("--start-worker and --no-worker: choose one (start a worker and render there, or "
                             "render in this process)")
        if args.worker:
            # the render's own settings from the environment, checked here first: a bad one is this command's
            # error, not a worker that "did not take this render (another VOM_CACHE_MAX_GB)" and then the error
            from vom_plugin.engine.cache import max_bytes_from_env, min_free_bytes_from_env
            from vom_plugin.engine.step_cache import state_interval
            from vom_plugin.worker.client import WorkerGone, reap_started, render_in_worker

            max_bytes_from_env()
            min_free_bytes_from_env()
            state_interval()

            try:
                summary = render_in_worker(shot, events, start=args.start_worker)
            except WorkerGone as e:  # killed or crashed: the render goes on here, from the cache (it was exit 1)
                reap_started()
                if events.done is not None:  # gone between its done and its exit: the render is whole
                    summary = events.done
                else:
                    events.resumed = True
                    _end_bar(progress)
                    with contextlib.suppress(OSError, ValueError):
                        print(f"vom render: {e}; rendering the rest in this process (the frames written are "
                              f"complete; the render resumes from the cache)", file=sys.stderr, flush=True)
        if summary is None:
            from vom_plugin.engine.runner import render

            try:
                summary = render(shot, progress=events if events.resumed else progress).summary()
                if events.resumed:  # the whole render's time, the worker's part too
                    summary["elapsed"] = events.elapsed()
            except (CancelledError, KeyboardInterrupt) as e:
                if not events.resumed:
                    raise
                raise _stopped_after_resume(e, events) from None
    except BaseException as e:
        _end_bar(progress)
        if not isinstance(e, VomError):
            raise
        if isinstance(progress, JsonProgress):  # hosts read stdout only: tell them why too
            progress({"event": "error", "message": str(e), "exit_code": e.exit_code,
                      "kind": type(e).__name__})
        raise
    if args.progress == "none":
        n = summary["frames_written"]
        said = [f"vom render: warning: {one_line(w)}" for w in summary["warnings"]]
        start = summary.get("worker_start")
        started = f" ({start:.1f} s of it starting the vom worker)" if isinstance(start, (int, float)) else ""
        said.append(f"vom render: {n} frame{'' if n == 1 else 's'}{files_of(summary)} written to "
                    f"{one_line(shot.out)} in {summary['elapsed']:.1f} s{started}")
        with contextlib.suppress(OSError, ValueError):  # a log on a full disk: the frames are written all the same
            print("\n".join(said), file=sys.stderr)
    return 0
