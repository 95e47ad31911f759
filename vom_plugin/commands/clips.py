"""``vom clips render|info|shots``: the library of path-traced training clips (rendered with Blender)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vom_plugin.commands._args import human_size, named_flags, positive

HELP = "render or describe the library of path-traced training clips (needs Blender), or export it as shots"
DESCRIPTION = """Render training clips with Blender (Cycles, transparent film: exact alpha) into a library folder,
or summarise one. Rendering is resumable: run the same command again to continue; finished clips are
skipped. Run it niced next to a training run, e.g.

  nice -n 19 vom clips render --count 200
  vom clips info --sheet library.png
  vom train --out runs/x --library ~/.cache/vom-clips --library-share 0.5

`shots` writes every clip of a library as a shot folder (plate.####.exr, gt.####.exr, roto.0001.exr: the
test shots' layout) composited over a photograph at the clip's own size: a validation set that runs through
the render's path. Render its library in a folder of its own at the shots' size and length, from seeds the
training library never uses, e.g.

  vom clips render --data-dir val-lib --count 16 --seed-base 7000000 --frames 24 --size 270 480
  vom clips shots --data-dir val-lib --to val-shots
  vom train --calibrate lite.safetensors --to cal.safetensors --val-shots val-shots

The photographs come from scikit-image and the wallpaper packages installed (and VOM_BACKGROUNDS): the same
command on a machine with other packages makes other pictures. shots.json beside the shots records the set
(its digest, also in `vom benchmark`'s settings) and each shot's photograph; a folder never takes shots of
another set.

Default folder: VOM_CLIPS_DIR, else $XDG_CACHE_HOME/vom-clips (~/.cache/vom-clips). Blender: --blender,
VOM_BLENDER, else `blender`.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("render", "info", "shots"),
                   help="render: add clips; info: summarise the library; shots: export it as shot folders (--to)")
    p.add_argument("--data-dir", type=Path, default=None, help="library folder (default VOM_CLIPS_DIR, else "
                   "$XDG_CACHE_HOME/vom-clips, ~/.cache/vom-clips)")
    p.add_argument("--count", type=positive(int), default=40,
                   help="clips of seeds --seed-base .. --seed-base + COUNT - 1, those already rendered skipped "
                        "(default 40)")
    p.add_argument("--seed-base", type=int, default=0, help="seed of the first clip (default 0)")
    p.add_argument("--frames", type=positive(int), default=12, help="frames per clip (default 12)")
    p.add_argument("--size", type=positive(int), nargs="+", default=[256], metavar="PX",
                   help="frame size: one value (square) or HEIGHT WIDTH (default 256)")
    p.add_argument("--samples", type=positive(int), default=20, help="Cycles samples per pixel (default 20)")
    p.add_argument("--threads", type=positive(int), default=2, help="Blender render threads (default 2)")
    p.add_argument("--blender", default=None, help="Blender executable (default VOM_BLENDER or blender)")
    p.add_argument("--json", action="store_true", help="info: one JSON object")
    p.add_argument("--sheet", type=Path, default=None, metavar="PNG",
                   help="info: also write a contact sheet (each clip's middle frame and its alpha)")
    p.add_argument("--to", type=Path, default=None, metavar="DIR",
                   help="shots: the folder to write the shot folders into (shots already there are kept)")


def run(args: argparse.Namespace) -> int:
    import json

    from vom_plugin.errors import InputError
    from vom_plugin.locations import clip_library_dir
    from vom_plugin.train import clips

    # each action's own flags: one of another action's was a mistake said nothing of (--json on render: text out)
    named = named_flags(args, add_arguments, [args.action])
    takes = {"render": {"count", "seed_base", "frames", "size", "samples", "threads", "blender"},
             "info": {"json", "sheet"}, "shots": {"to"}}[args.action] | {"action", "data_dir"}
    if named - takes:
        flags = ", ".join("--" + n.replace("_", "-") for n in sorted(named - takes))
        raise InputError(f"{flags}: not an option of vom clips {args.action}")
    root = args.data_dir if args.data_dir is not None else clip_library_dir()
    given = "--data-dir" if args.data_dir is not None else \
        "VOM_CLIPS_DIR" if os.environ.get("VOM_CLIPS_DIR", "").strip() else "the library folder"
    if root.exists() and not root.is_dir():
        raise InputError(f"{given} {root}: not a folder")
    if args.action in ("info", "shots") and not root.is_dir():
        raise InputError(f"{given} {root}: no such folder (render clips into it with `vom clips render`)")
    if args.action == "shots":
        from vom_plugin.train.val_shots import export_shots

        if args.to is None:
            raise InputError("vom clips shots needs --to DIR (the folder to write the shot folders into)")
        r = export_shots(root, args.to, log=lambda m: print(m, flush=True))
        print(f"wrote {r['written']} shots ({r['kept']} already there, {len(r['skipped'])} skipped) in {args.to}")
        return 0
    if args.action == "info":
        if args.sheet is not None:
            clips.check_sheet_destination(args.sheet)
        s = clips.library_summary(root, flag=given)
        if args.json:
            if args.sheet is not None:
                clips.contact_sheet(root, args.sheet)
            print(json.dumps(s, indent=1))
            return 0
        spc = (f"{s['seconds_per_clip']:.1f} s/clip to render ({s['cpu_seconds_per_clip']:.1f} CPU s)"
               if s["seconds_per_clip"] else "")
        print(f"library {s['root']}: {s['clips']} clips, {s['frames']} frames, {human_size(s['bytes'])}; {spc}")
        print("  " + "  ".join(f"{k} {v}" for k, v in s["tags"].items()))
        if args.sheet is not None:
            n = clips.contact_sheet(root, args.sheet)
            print(f"contact sheet of {n} clips: {args.sheet}")
        return 0
    if args.seed_base < 0:  # clip_-00005: refused by every reader of the library's names (QA)
        raise InputError(f"--seed-base {args.seed_base}: expected a seed from 0 (clips are named clip_<seed>)")
    if len(args.size) > 2:
        raise InputError(f"--size {' '.join(map(str, args.size))}: expected one value or HEIGHT WIDTH")
    size = (args.size[0], args.size[-1])
    if min(size) < 16:
        raise InputError(f"--size {size[0]} {size[1]}: frames must be at least 16 px")
    settings = clips.LibrarySettings(frames=args.frames, size=size, samples=args.samples)
    from vom_plugin.extras import require

    # before the library's files are written (QA: a traceback after library.json and textures/ were made)
    require("skimage", "the clips' textures (scikit-image's sample photographs)", extra="train")
    clips.require_blender(args.blender)  # before saying it renders
    print(f"rendering up to {args.count} clips ({args.frames} frames, {size[1]}x{size[0]}, {args.samples} samples) "
          f"into {root}", flush=True)
    r = clips.render_library(root, args.count, settings, seed_base=args.seed_base, blender=args.blender,
                             threads=args.threads, log=lambda m: print(m, flush=True))
    spc = (f", {r['seconds_per_clip']:.1f} s/clip ({r['cpu_seconds_per_clip']:.1f} CPU s/clip)"
           if r["seconds_per_clip"] else "")
    print(f"rendered {r['rendered']} clips ({r['skipped']} already there){spc}; "
          f"library {human_size(r['bytes'])} in {root}")
    if r["failed"]:
        print(f"{len(r['failed'])} clips failed: {', '.join(r['failed'])}", flush=True)
        return 1
    return 0
