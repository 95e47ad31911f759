"""The ``vom`` command.

Each subcommand is a module in ``vom_plugin/commands/`` defining ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``; they are discovered here, so adding a command touches no shared file.
Command modules import heavy dependencies (torch, OpenImageIO) inside ``run`` to keep start-up fast.

Exit codes (DESIGN.md): 0 done, 2 bad input (the message names the file/frame/field), 1 internal error.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import importlib
import io
import json
import os
import pkgutil
import re
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from vom_plugin import __version__, commands
from vom_plugin.engine.stop import reports_stops
from vom_plugin.envvars import FLAGS, env_flag
from vom_plugin.errors import VomError, json_error, one_line, os_error_text, users_file_error


class _Parser(argparse.ArgumentParser):
    """argparse's parser (usage errors exit 2 with its message), without abbreviated flags: ``--prog json`` was
    taken as --progress by argparse but not by what reads the command line before it (the JSON error event, the
    negative frame range of ``--frames``), and a flag added later would change what an abbreviation meant."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


class _Version(argparse.Action):
    """``--version``: the version and the build (``digest.build_id``: two builds of one version are told apart, a
    farm mid-rollout), computed only when asked."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from vom_plugin.digest import build_id

        with contextlib.suppress(OSError):  # a closed or full stdout: as argparse's own version action (review)
            print(f"vom {__version__} (build {build_id()})", flush=True)
        parser.exit()


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``vom`` parser. With ``command``, only that subcommand's arguments are built (the others are listed
    with their help): some build theirs from the node definition, and every ``vom render`` a host or farm
    starts would otherwise pay for all of them (a large share of a render handed to a worker)."""
    parser = _Parser(prog="vom", description="Video object matting for compositing pipelines.")
    parser.add_argument("--version", action=_Version, nargs=0, help="show vom's version and build, and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{commands.__name__}.{info.name}")
        name = getattr(mod, "NAME", info.name)
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if command is None or name == command:
            mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names (its first word that is not an option), or None."""
    return next((a for a in argv if not a.startswith("-")), None)


def _negative_ranges(argv: list[str]) -> list[str]:
    """``--frames -2-1`` as ``--frames=-2-1``: argparse takes a value starting with '-' (other than a plain
    number) for an option and refused the range of a shot with negative frames."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--frames" and i + 1 < len(argv) and re.match(r"-[0-9]", argv[i + 1]):
            out.append(f"--frames={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def _progress_said(argv: Sequence[str]) -> str | None:
    """The ``--progress`` a command with progress (render, demo) was given (the last one: argparse keeps it), where
    the command has that kind (demo has no ``openjd``: a usage error of ``vom demo --progress openjd`` printed an
    ``openjd_fail:`` line, QA)."""
    command = _command(argv)
    if command not in ("render", "demo"):
        return None
    said = [b if a == "--progress" else a.split("=", 1)[1] for a, b in zip(argv, [*argv[1:], ""], strict=True)
            if a == "--progress" or a.startswith("--progress=")]
    if not said or (command == "demo" and said[-1] == "openjd"):
        return None
    return said[-1]



def _error_event(progress: str | None, message: str, code: int, kind: str) -> None:
    """What a reader of the command's progress expects before it exits: the ``error`` event (``--progress json``, a
    host reading stdout), or an Open Job Description failure line (``--progress openjd``: the reason the farm's
    monitor shows for a failed task, which kept the last progress status; one line; a cancel is no failure: its
    message is the task's last status)."""
    with contextlib.suppress(OSError):
        if progress == "json":
            print(json.dumps({"event": "error", "message": message, "exit_code": code, "kind": kind}), flush=True)
        elif progress == "openjd" and code != 130:
            print(f"openjd_fail: {one_line(' '.join(message.split()))}", flush=True)
        elif progress == "openjd":  # the monitor kept the last status, frames behind the stop (QA): what was written
            print(f"openjd_status: {one_line(' '.join(message.split()))}", flush=True)


def _json_error(args: argparse.Namespace | Sequence[str], message: str, code: int, kind: str) -> None:
    """With ``--json`` (info, eval, farm check, cache, bench...), the error as the one JSON object on stdout that a
    pipeline parses: ``{"error", "exit_code", "kind"}`` (QA: stdout was empty on exit 2). A render's ``--progress
    json`` has its error event instead. ``args``: the parsed flags, or the command line where they did not parse."""
    if isinstance(args, argparse.Namespace):
        wants, command = getattr(args, "json", False) is True, args.command
    else:
        wants, command = "--json" in args, _command(list(args))
    if wants and command not in ("render", "demo"):
        with contextlib.suppress(OSError, ValueError):
            print(json.dumps(json_error(message, code, kind)), flush=True)


def _say(text: str, end: str = "\n") -> None:
    """``text`` on stderr, as far as it can be written: a full disk under a log (`2>>log`) lost the message and made
    the command exit 1 as an internal error, whatever it was doing (QA)."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(text + end)
        sys.stderr.flush()


def _said_missing(e: BaseException, who: str, argv: Sequence[str]) -> bool:
    """Whether ``e`` is a render dependency missing from the environment: then said (what to mend, exit 2 to follow),
    as the install's fault, not a bug of vom's to report."""
    from vom_plugin.extras import missing_dependency

    lacking = missing_dependency(e)
    if lacking:
        _say(f"{who}: error: {lacking}")
        _error_event(_progress_said(argv), lacking, 2, "ModuleNotFoundError")
    return lacking is not None


def main(argv: Sequence[str] | None = None) -> int:
    argv = _negative_ranges(sys.argv[1:] if argv is None else list(argv))
    try:
        parser = build_parser(_command(argv))  # the node definition's YAML is read here
    except ModuleNotFoundError as e:
        if _said_missing(e, "vom", argv):  # review: a missing PyYAML was a traceback, exit 1
            return 2
        raise
    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage):  # argparse's own message, said on stderr all the same
            args, unknown = parser.parse_known_args(argv)
            if unknown:  # said by the command's own parser: its usage, not the top level's
                sub = next((a.choices.get(getattr(args, "command", None)) for a in parser._actions
                            if isinstance(a, argparse._SubParsersAction)), None)
                (sub or parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as e:
        if e.code == 2:  # a usage error is a host's error event too
            lines = usage.getvalue().strip().splitlines()
            _error_event(_progress_said(argv), lines[-1] if lines else "usage error", 2, "UsageError")
            _json_error(argv, lines[-1] if lines else "usage error", 2, "UsageError")
        raise
    finally:
        _say(usage.getvalue(), end="")
    if not getattr(args, "_run", None):  # no command: a usage error, said where usage errors go
        parser.print_help(sys.stderr)
        return 2
    from vom_plugin.engine.helper_threads import own_this_process

    own_this_process()  # a vom process: its render's helper threads run at the lowest priority
    started = False  # whether the command itself ran (a render sends its own error event from then on)
    try:
        for name in FLAGS:  # said before any work, whichever command reads them
            env_flag(name)
        started = True
        code = int(args._run(args) or 0)
        # what is left in the buffer, written now: a full disk under a buffered stdout (no PYTHONUNBUFFERED) failed
        # only in the exit's flush, unsaid, exit 0 (a bare clone's test run)
        sys.stdout.flush()
        return code
    except VomError as e:
        if os.environ.get("VOM_TRACEBACK", "").strip() == "1":  # where in vom the input was found wrong (a TD's debug)
            _say(traceback.format_exc(), end="")
        # a traceback keeps its lines, each escaped as any message is (review)
        said = "\n".join(one_line(x) for x in str(e).split("\n")) if e.lines else one_line(e)
        _say(f"vom {args.command}: error: {said}")
        progress = _progress_said(argv)
        # render sends its own JSON event (the worker's too) once it runs; a bad VOM_TRACEBACK came before (QA: no
        # event, stdout empty)
        if progress == "openjd" or args.command == "demo" or not started:
            _error_event(progress, str(e), e.exit_code, type(e).__name__)
        _json_error(args, str(e), e.exit_code, type(e).__name__)
        return e.exit_code
    except KeyboardInterrupt:
        said = _interrupted(args.command)
        _say(f"vom {args.command}: {said}")
        # before the command's own events began (importing torch, reading the shot)
        _error_event(_progress_said(argv), said, 130, "CancelledError")
        _json_error(args, said, 130, "CancelledError")
        return 130
    except BrokenPipeError:  # whoever read our output went away (`| head`, a host that died): stop, quietly
        from vom_plugin.commands._args import stdout_to_null

        stdout_to_null()
        written = getattr(sys.exc_info()[1], "frames_written", None)  # the frames, in order
        if written is not None:
            from vom_plugin.io.sequence import written_list

            said = f"{len(written)} frame{'' if len(written) == 1 else 's'} written{written_list(written)}, complete"
        else:
            said = "any file written is complete"
        _say(f"vom {args.command}: stopped: its output was closed (broken pipe); {said}")
        return 141  # as a process ended by SIGPIPE
    except Exception as e:
        progress = _progress_said(argv)
        if isinstance(e, OSError) and not e.filename and e.errno in (errno.ENOSPC, errno.EDQUOT):
            # a write to an open stream (its standard output sent to a full disk): the user's disk, not a bug
            said = (f"a write failed: {e.strerror or e} (its output, or a file it was writing, is on a full disk or "
                    f"over quota)")
            _say(f"vom {args.command}: error: {said}")
            _error_event(progress, said, 2, "OSError")
            return 2
        if _said_missing(e, f"vom {args.command}", argv):  # QA: "internal error" for a missing zstandard
            return 2
        if users_file_error(e):
            # a file or folder the command was pointed at cannot be made, read or written (a bad --out, a full
            # disk, a read-only mount): the user's to fix, named, not a traceback to report
            said = os_error_text(e)
            if os.environ.get("VOM_TRACEBACK", "").strip() == "1":
                _say(traceback.format_exc(), end="")
            _say(f"vom {args.command}: error: {one_line(said)}")
            _error_event(progress, said, 2, "OSError")
            _json_error(args, said, 2, "OSError")
            return 2
        _say(traceback.format_exc(), end="")  # an internal error: keep the traceback for the bug report
        _say(f"vom {args.command}: internal error (exit 1); please report the traceback above")
        _error_event(progress, f"internal error: {type(e).__name__}: {e}", 1, type(e).__name__)
        _json_error(args, f"internal error: {type(e).__name__}: {e}", 1, type(e).__name__)
        return 1


_SIGNALLED: list[int] = []  # the signals _terminated turned into a KeyboardInterrupt


@reports_stops  # a render it stopped raises CancelledError, said by the command with the frames written (exit 130)
def _terminated(signum: int, frame: object) -> None:
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt


def _interrupted(command: str | None) -> str:
    """What a command stopped by a signal before its own handling began says: which signal and, for a render (whose
    handling begins before its first frame), that no frame was written."""
    name = signal.Signals(_SIGNALLED[-1]).name if _SIGNALLED else "SIGINT"
    return f"interrupted by {name}" + (" before the render began: no frame was written"
                                       if command in ("render", "demo") else "")


def _no_closed_std_streams() -> None:
    """A process started with its standard input, output or error closed (some launchers and daemons start jobs
    so) gets the null device there: Python left that stream None, and every command failed on its first word
    (exit 1, nothing done); and the next file opened would have taken that descriptor, where a library's
    messages to stdout or stderr would have gone into it."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        if getattr(sys, name) is not None:
            continue
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        setattr(sys, name, open(fd, mode, encoding="utf-8", errors="backslashreplace", closefd=False))


def entry() -> NoReturn:
    """The process's entry (the ``vom`` script, ``python -m vom_plugin.cli``): ``main``, then exit.

    The exit does what the interpreter's own would do that can matter to a command, in its order: wait for
    the threads that are not daemons (executors' workers), run the ``atexit`` callbacks (logging, temporary
    folders), flush the standard streams. Then it leaves without tearing the interpreter down: that teardown
    frees the ~190,000 objects importing torch created, one by one (0.5-0.6 s of every command that loaded
    it). An interpreter without those hooks exits the usual way.

    The process is vom's, so glibc keeps the memory a frame frees for the next (``engine.allocator``)."""
    from vom_plugin.engine.allocator import keep_freed_memory
    from vom_plugin.engine.stop import handle_signals

    _no_closed_std_streams()
    keep_freed_memory()
    # SIGTERM before a command installs its own handling (a render's, a worker's) stops it as SIGINT does:
    # "interrupted", exit 130, as the help says, instead of dying by the signal without a word; both are the command
    # line's (``reports_stops``): a render they stop is said by the command, not passed on to this handler
    handle_signals(_terminated)
    try:
        code = main()
    except KeyboardInterrupt:  # before a command's own handling (its parser, its imports): said, not a traceback
        command = _command(sys.argv[1:])
        print(f"vom {command or ''}: {_interrupted(command)}".replace(" :", ":"), file=sys.stderr)
        # a host reading events learns of it as of any other stop
        _error_event(_progress_said(sys.argv[1:]), _interrupted(command), 130, "CancelledError")
        code = 130
    # the command is over and its exit status decided: a signal now (a host pressing Cancel again, a farm's SIGTERM
    # then SIGINT) leaves with that status at once; it raised inside the exit callbacks (a traceback, or the
    # process dying by the signal instead of exiting 130)
    handle_signals(lambda _s, _f: os._exit(code))  # (one the process was started ignoring stays ignored)
    shutdown_threads = getattr(threading, "_shutdown", None)
    run_exit_callbacks = getattr(atexit, "_run_exitfuncs", None)
    if shutdown_threads is None or run_exit_callbacks is None:
        sys.exit(code)
    shutdown_threads()
    run_exit_callbacks()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
