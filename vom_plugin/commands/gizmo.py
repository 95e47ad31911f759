"""``vom gizmo``: regenerate the Nuke gizmo from the node definition (or check that it is current)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "regenerate gizmos/VOM_Matte.gizmo from node_defs/vom_matte.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="FILE", type=Path, help="write here instead of gizmos/VOM_Matte.gizmo")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when the gizmo file differs from a fresh generation")
    p.add_argument("--stdout", action="store_true", help="print the gizmo instead of writing it")


def run(args: argparse.Namespace) -> int:
    from vom_plugin.host.gizmo import default_gizmo_path, generate, write_gizmo

    text = generate()
    if args.stdout:
        sys.stdout.write(text)
        return 0
    path = args.out or default_gizmo_path()
    if args.check:
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            print(f"vom gizmo: {path} is out of date with node_defs/; run `vom gizmo` to regenerate",
                  file=sys.stderr)
            return 1
        print(f"{path} is current")
        return 0
    print(write_gizmo(path))
    return 0
