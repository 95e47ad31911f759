"""``vom gizmo``: regenerate the host files (Nuke gizmo, Blender knob table) from the node definition."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "regenerate gizmos/VOM_Matte.gizmo and the Blender add-on's knob table from node_defs/vom_matte.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="FILE", type=Path, help="write the gizmo here instead of gizmos/VOM_Matte.gizmo "
                   "(the Blender knob table is then left alone)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when a host file differs from a fresh generation")
    p.add_argument("--stdout", action="store_true", help="print the gizmo instead of writing it")


def run(args: argparse.Namespace) -> int:
    from vom_plugin.host import blender_knobs
    from vom_plugin.host.gizmo import default_gizmo_path, generate, write_gizmo

    text = generate()
    if args.stdout:
        sys.stdout.write(text)
        return 0
    path = args.out or default_gizmo_path()
    files = [(path, text, write_gizmo)]
    if args.out is None:
        files.append((blender_knobs.default_path(), blender_knobs.generate(), blender_knobs.write))
    if args.check:
        stale = [p for p, t, _ in files if (p.read_text(encoding="utf-8") if p.is_file() else None) != t]
        for p in stale:
            print(f"vom gizmo: {p} is out of date with node_defs/; run `vom gizmo` to regenerate", file=sys.stderr)
        if stale:
            return 1
        for p, _, _ in files:
            print(f"{p} is current")
        return 0
    for p, _, write in files:
        print(write(p))
    return 0
