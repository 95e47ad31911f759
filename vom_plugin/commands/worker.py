"""``vom worker``: keep torch and the weights loaded; ``vom render`` hands its renders to it."""

from __future__ import annotations

import argparse
import math
import os

HELP = "keep torch and the weights loaded, and render what `vom render` hands over"
DESCRIPTION = """Start a worker that renders the shots `vom render` hands it, one at a time.

  vom worker &                 # then every `vom render` of this user (and the Nuke/Blender nodes) uses it
  vom render shot.yaml         # validated here, rendered in the worker; --no-worker renders in-process

A `vom render` process spends over a second importing torch and loading the weights before its first frame;
the worker pays that once. It listens on a local socket only its user can reach (VOM_WORKER_SOCKET, else
$XDG_RUNTIME_DIR/vom-worker.sock, else $TMPDIR/vom-UID/worker.sock, /tmp without TMPDIR) and takes a render
only from a `vom render` of the same vom and the same environment (VOM_*, OMP_* and thread settings, the CPUs it
may use, HOME, XDG_CACHE_HOME, TMPDIR, umask, groups: see the README); otherwise, or when busy, `vom render`
renders in its own process and says why. SIGTERM (and SIGINT, unless the worker was started with it
ignored, as `vom worker &` from a script is) stops the worker after the frame in hand of its render, which that
render's `vom render` then finishes in its own process from the cache (to stop the render, signal `vom render`).
Its log: the terminal, or `<socket>.log` for one `vom render --start-worker` started.
Exit codes: 0 stopped (or, started by `vom render --start-worker`, a vom worker listened there already: another
render's), 2 bad socket path or a program already listening there."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--socket", metavar="PATH", default=None,
                   help="where to listen (default: VOM_WORKER_SOCKET, else the user's runtime folder); a client "
                        "finds it through the same VOM_WORKER_SOCKET")
    p.add_argument("--idle-exit", type=float, metavar="SECONDS", default=3600.0,
                   help="exit after this long without a render (0: never; default: 3600)")
    # set by `vom render --start-worker`: a vom worker found listening is another render's, started at the same time
    p.add_argument("--started-by-render", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    import socket
    from pathlib import Path

    from vom_plugin.errors import InputError

    if not hasattr(socket, "AF_UNIX"):
        raise InputError("vom worker listens on a Unix socket, which this system's Python lacks (Windows): "
                         "`vom render` renders in its own process here")
    from vom_plugin.worker import socket_path
    from vom_plugin.worker.server import Worker

    if not math.isfinite(args.idle_exit) or args.idle_exit < 0:  # nan compared false: a worker that never left
        raise InputError(f"--idle-exit {args.idle_exit:g}: expected seconds >= 0 (0: never)")
    path = Path(args.socket).expanduser().absolute() if args.socket else socket_path()
    if len(str(path).encode()) > 100:  # named as it was given (QA: VOM_WORKER_SOCKET's was said as --socket)
        given = "--socket" if args.socket else "VOM_WORKER_SOCKET" if os.environ.get("VOM_WORKER_SOCKET", "").strip() \
            else "socket"
        raise InputError(f"{given} {str(path)!r}: a Unix socket path must be under 100 bytes")
    return Worker(path, idle_exit_s=args.idle_exit, started_by_render=args.started_by_render).serve()
