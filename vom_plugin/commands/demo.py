"""``vom demo``: render the shipped demo shot with the shipped weights, and show what came out."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vom_plugin.grammar import arg_type, default, parse_device

if TYPE_CHECKING:
    import numpy as np

HELP = "render the shipped demo shot into ./vom_demo_out and write a contact sheet"

SHEET_FRAMES = 4
SHEET_MARK = "vom demo contact sheet"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default", metavar="NAME|PATH",
                   help="weights to demo (default: the shipped vom_plugin/weights/lite.safetensors)")
    p.add_argument("--out", default="vom_demo_out", metavar="DIR", help="output folder (default: ./vom_demo_out)")
    p.add_argument("--device", default=default("device"), type=arg_type(parse_device), metavar="auto|cpu|cuda|cuda:N",
                   help=f"default: {default('device')}")
    p.add_argument("--cache", default=None, metavar="DIR", help="cache root (default: the user cache)")
    from vom_plugin.commands._args import knob_type
    from vom_plugin.nodedef import load_node_def

    working = load_node_def().knob("working_size")
    # as `vom render` takes it (QA: refused here, so a quick demo on a slow machine rendered at the default's size)
    p.add_argument("--working-size", type=knob_type(working, int), default=None, metavar="N",
                   help=f"the network's working size, as vom render's (default: the demo shot's, {working.default}); "
                        f"the MAD said is then that size's")
    p.add_argument("--progress", choices=("bar", "json", "none"), default="bar", help="default: bar")


def _checker(h: int, w: int, cell: int = 16) -> np.ndarray:
    import numpy as np

    yy, xx = np.mgrid[0:h, 0:w]
    c = (((yy // cell) + (xx // cell)) % 2).astype(np.float32)
    return np.repeat((0.35 + 0.3 * c)[..., None], 3, axis=2)


def contact_sheet(rows: list[tuple[np.ndarray, np.ndarray]], path: str) -> None:
    """rows of (display-referred plate (H, W, 3), alpha (H, W)) -> PNG: plate | alpha | comp over a checker."""
    import numpy as np

    tiles = []
    for display, alpha in rows:
        h, w = alpha.shape
        a = alpha[..., None]
        comp = display * a + _checker(h, w) * (1 - a)
        row = np.concatenate([display, np.repeat(a, 3, axis=2), comp], axis=1)
        tiles.append(np.pad(row, ((2, 2), (0, 0), (0, 0))))
    sheet = np.clip(np.concatenate(tiles, axis=0), 0, 1)
    img = (sheet * 255 + 0.5).astype(np.uint8)
    from vom_plugin import import_oiio

    oiio = import_oiio()

    from vom_plugin.atomic import atomic_path

    spec = oiio.ImageSpec(img.shape[1], img.shape[0], 3, oiio.UINT8)
    spec.attribute("Software", SHEET_MARK)  # a PNG text chunk: the next vom demo knows the file as its own
    with atomic_path(path) as tmp:
        out = oiio.ImageOutput.create(str(tmp))
        if out is None or not out.open(str(tmp), spec) or not out.write_image(img) or not out.close():
            raise OSError(f"could not write {path}")


def _sheet_is_ours(out_dir: Path) -> Callable[[bytes], bool]:
    """A contact sheet vom demo wrote: marked. (Before session 32 an alpha.0001.exr that vom wrote beside it
    vouched for it too: any vom render's, so a folder of a shot's frames gave a user's sheet away: QA.)"""
    def ours(start: bytes) -> bool:
        return SHEET_MARK.encode() in start
    return ours


def result_cache_off(result: Any) -> str | None:
    """Why the render ran without the cache (its warning, ``prepare``'s), else None."""
    from vom_plugin.engine.prepare import CACHE_OFF

    return next((w.removeprefix(CACHE_OFF) for w in result.warnings if w.startswith(CACHE_OFF)), None)


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    import numpy as np

    from vom_plugin import io as vio
    from vom_plugin.engine.progress import make_progress
    from vom_plugin.engine.runner import render
    from vom_plugin.engine.shot import Shot, escape_file_paths
    from vom_plugin.errors import InputError
    from vom_plugin.locations import MODEL_ALIASES, demo_dir, weights_dir

    demo = demo_dir()
    if not (demo / "shot.yaml").is_file():
        raise InputError(f"the demo shot is missing from {demo} (a broken install?); reinstall vom")
    if args.model in ("default", "lite") and not (weights_dir() / "lite.safetensors").is_file():
        import os

        if os.environ.get("VOM_WEIGHTS_DIR", "").strip():  # the folder the user's variable chose, not the package's
            raise InputError(f"the weights {weights_dir() / 'lite.safetensors'} are not there (the folder "
                             f"VOM_WEIGHTS_DIR names); unset it to demo the shipped weights, or pass --model PATH")
        raise InputError(f"the shipped weights {weights_dir() / 'lite.safetensors'} are not there yet (they are "
                         f"trained by `vom train` and committed with the package); pass --model PATH to demo a "
                         f"checkpoint of your own")
    # blank is the default, as a blank setting is everywhere: `--out "$OUT"` with OUT unset wrote the demo's 25 files
    # into the working folder (QA)
    from vom_plugin.commands._args import flag_path

    # paths given here are the working folder's (as `vom render`'s), not the shipped shot file's folder, and read as
    # vom render reads them ($SHOW, ~user)
    out_dir = Path(flag_path(args.out, "--out") if args.out.strip() else "vom_demo_out").resolve()
    cache = str(Path(flag_path(args.cache, "--cache")).resolve()) if args.cache else None
    model = args.model if args.model in MODEL_ALIASES else str(Path(flag_path(args.model, "--model")).resolve())
    from vom_plugin.atomic import check_replaceable

    check_replaceable(out_dir / "contact_sheet.png", _sheet_is_ours(out_dir), "--out")  # before the render
    # read above as flags are: final paths, which from_yaml would expand again (a folder's own $)
    paths = escape_file_paths({"out": str(out_dir / "alpha.####.exr"), "model": model, "cache": cache})
    shot = Shot.from_yaml(demo / "shot.yaml", **paths, device=args.device, working_size=args.working_size or None)
    result = render(shot, progress=make_progress(args.progress, "vom demo"))

    # Accuracy against the renderer's ground truth, and a contact sheet to look at.
    mads, rows = [], []
    pick = set(np.linspace(0, len(result.frames) - 1, SHEET_FRAMES).round().astype(int).tolist())
    for i, (frame, path) in enumerate(zip(result.frames, result.paths, strict=True)):
        alpha = _read_alpha(path)
        gt_path = demo / f"gt.{frame:04d}.exr"
        if gt_path.is_file():
            mads.append(float(np.abs(alpha - _read_alpha(gt_path)).mean()))
        if i in pick:
            plate = vio.read_plate(vio.frame_path(shot.plate, frame))
            rows.append((vio.to_network(plate.rgb, shot.colorspace), alpha))
    sheet = out_dir / "contact_sheet.png"
    contact_sheet(rows, str(sheet))
    from vom_plugin.locations import default_cache_dir

    summary = {"event": "demo", "shot": str(demo), "frames": [result.frames[0], result.frames[-1]],
               "weights": args.model, "alpha": str(out_dir / "alpha.####.exr"), "sheet": str(sheet),
               "seconds": round(result.elapsed, 2), "device": str(result.device),
               "cache": str(shot.cache or default_cache_dir()), "cache_off": result_cache_off(result),
               "keys_hit": result.cache["keys_hit"],
               "steps_cached": result.cache["steps_cached"],
               "mad_x1e3": round(1e3 * float(np.mean(mads)), 3) if mads else None}
    if args.progress == "json":  # one more JSON line, so the stream stays JSON for a host that reads it
        sys.stdout.write(json.dumps(summary) + "\n")
        return 0
    say = sys.stdout.write
    if args.progress == "none":  # as `vom render --progress none` says them (QA: a quiet demo said none)
        from vom_plugin.errors import one_line

        for w in result.warnings:
            print(f"vom demo: warning: {one_line(w)}", file=sys.stderr)
    say(f"demo shot  {demo} (furry_cube: 480x270, frames {result.frames[0]}-{result.frames[-1]}, roto on frame "
        f"{next(iter(shot.keyframes))})\n")
    say(f"weights    {args.model}\n")
    say(f"alpha      {out_dir / 'alpha.####.exr'} ({len(result.frames)} frames, {result.elapsed:.1f} s on "
        f"{result.device})\n")
    say(f"sheet      {sheet} (plate | alpha | comp over a checkerboard)\n")
    if summary["cache_off"]:  # not "read back for 0 frames" of a folder that was never made (QA)
        say(f"cache      {summary['cache']}: not used ({summary['cache_off']})\n")
    else:
        say(f"cache      {summary['cache']} (key features read back for {result.cache['keys_hit']} frames, "
            f"{result.cache['steps_cached']} frames read back whole; vom cache info)\n")
    if mads:
        say(f"MAD vs GT  {summary['mad_x1e3']:.2f} x1e-3 (the alpha's mean absolute error against the rendered "
            f"truth over {len(mads)} frames; lower is better)\n")
    return 0


def _read_alpha(path: str | object) -> np.ndarray:
    """The A channel (or the last channel) of a written frame or a GT image, via the io package's reader."""
    from vom_plugin.io.reader import open_image, read_channels

    with open_image(path, "image") as img:
        names = list(img.spec.channelnames)
        idx = names.index("A") if "A" in names else len(names) - 1
        return read_channels(img, [idx])[:, :, 0]
