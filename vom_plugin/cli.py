"""The ``vom`` command.

Each subcommand is a module in ``vom_plugin/commands/`` defining ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``; they are discovered here, so adding a command touches no shared file.
Command modules import heavy dependencies (torch, OpenImageIO) inside ``run`` to keep start-up fast.

Exit codes (DESIGN.md): 0 done, 2 bad input (the message names the file/frame/field), 1 internal error.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback
from collections.abc import Sequence

from vom_plugin import __version__, commands
from vom_plugin.errors import VomError


class _Parser(argparse.ArgumentParser):
    # argparse exits 2 on usage errors already; keep its message but name the program consistently.
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vom", description="Video object matting for compositing pipelines.")
    parser.add_argument("--version", action="version", version=f"vom {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{commands.__name__}.{info.name}")
        name = getattr(mod, "NAME", info.name)
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except VomError as e:
        print(f"vom {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"vom {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception:  # an internal error: keep the traceback for the bug report
        traceback.print_exc()
        print(f"vom {args.command}: internal error (exit 1); please report the traceback above",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
