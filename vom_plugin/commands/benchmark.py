"""``vom benchmark``: the vom model and the baselines on a data set, in a paper-style table, JSON and plots."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HELP = ("run vom and the baselines (static roto, optical flow, flow + closed-form, ground truth + closed-form) on "
        "clips and score them")
DESCRIPTION = """Render each clip from its first-frame roto with every method and score it against ground truth.

  vom benchmark --data shots:/path/to/shots --out bench/
  vom benchmark --data synth:8 --frames 8 --size 256 --methods vom static flow --json

Data: synth:N (generated clips), shots:PATH / folder:PATH (<shot>/plate.####.exr, gt.####.exr, optional
roto.<first>.exr), dvm:PATH (v/<clip>/, a/<clip>/), vm108:PATH (VideoMatting108 FG_done/BG_done).
The first-frame roto is the shot's roto file when it has one, else the GT coarsened like an artist's quick
roto (threshold 0.5, open/close 5 px, dilate 3 px). Methods: vom (the model; --model), static (the roto
held), flow (the roto carried by DIS optical flow), flow_cf (flow + closed-form matting on a trimap around
it), oracle_cf (GT > 0.5 refined by closed-form matting: an upper bound for a classical pipeline).
Closed-form matting runs at most --matting-side px on the long side (it is slow). --out DIR writes
benchmark.json and one <clip>.png of per-frame MAD and dtSSD per method. A shot's frames are every one from its
plate's first to its last in its step (a plate on twos: every other frame, as vom render reads it, with no
dtSSD or MESSDdt: no two frames adjacent): a plate or GT frame missing, a frame of another size and a GT with
NaN/Inf or values above 2 or below -1 are refused (exit 2) before any shot is rendered. How a clip was scored (GT
clipped to 0-1, values not defined in some frames) is noted on stderr.

--out into an earlier benchmark's folder replaces its report and removes its plots of clips this run does not
plot (a folder holds one run's files), and says so. Where the earlier run saved alphas (--save-alphas), they are
a render's output: the run is refused (exit 2, naming them) before any work unless --replace-alphas lets it
write over or remove them."""

METHODS = ("vom", "static", "flow", "flow_cf", "oracle_cf")


def _at_least(low: int) -> Callable[[str], int | float]:
    """An argparse type: a whole number >= ``low``."""
    from vom_plugin.commands._args import _number

    return _number(int, lambda v: v >= low, f"a whole number >= {low}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from vom_plugin.commands._args import positive

    p.add_argument("--data", required=True, metavar="KIND:ARG",
                   help="synth:N | shots:PATH | folder:PATH | dvm:PATH | vm108:PATH")
    p.add_argument("--model", default="default", metavar="NAME|PATH", help="weights for the vom method (default)")
    p.add_argument("--methods", nargs="+", choices=METHODS, metavar="NAME",
                   help=f"methods to run (default: {' '.join(METHODS)}; vom is skipped when no weights exist)")
    p.add_argument("--frames", type=positive(int), metavar="N",
                   help="at most N frames per clip (synth: clip length, 8)")
    p.add_argument("--size", type=_at_least(16), metavar="S",
                   help="synth: clip side (default 256); files: downscale so the long side is at most S")
    p.add_argument("--region", default="whole", choices=("whole", "narrow", "medium", "wide"),
                   help="where the metrics are taken: the whole frame (default; as RVM reports), or the unknown band "
                        "of that width around the edge (as TCVOM reports on VideoMatting108)")
    from vom_plugin.grammar import arg_type, default, parse_device, parse_value

    p.add_argument("--device", default="auto", type=arg_type(parse_device), metavar="auto|cpu|cuda|cuda:N",
                   help="device of the vom method (default auto)")
    p.add_argument("--working-size", type=arg_type(lambda t: parse_value("working_size", int(t), "--working-size")),
                   default=None, metavar="N",
                   help=f"long side at which the network runs (default: the node's, {default('working_size')})")
    p.add_argument("--matting-side", type=_at_least(16), default=480, metavar="N",
                   help="closed-form matting resolution cap, long side (default 480)")
    p.add_argument("--trimap-radius", type=positive(int), default=6, metavar="PX",
                   help="half-width of the closed-form trimap's unknown band, pixels (default 6)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object instead of a table")
    p.add_argument("--out", metavar="DIR", help="write benchmark.json and per-clip PNG plots here")
    p.add_argument("--save-alphas", action="store_true",
                   help="also write every method's alphas to DIR/<clip>/<method>/alpha.####.exr (needs --out)")
    p.add_argument("--replace-alphas", action="store_true",
                   help="with --out: write over or remove the alphas an earlier benchmark saved in DIR (without it, "
                        "a folder holding them is refused)")


def _load_vom(args: argparse.Namespace, explicit: bool):
    """(model, device) or (None, reason) when the default run has no weights to use."""
    from vom_plugin.errors import InputError

    try:
        from vom_plugin.engine.device import resolve_device
        from vom_plugin.engine.weights import load_model, weights_path

        device = resolve_device(args.device)
        if not explicit and args.model == "default" and not weights_path("default").is_file():
            return None, f"no shipped weights at {weights_path('default')}"
        return load_model(args.model, device=device), str(device)
    except ImportError as e:
        if explicit:
            raise InputError(f"method vom is not available in this install: {e}") from e
        return None, f"the engine is not available ({e})"


def _require_extras(names: list[str], args: argparse.Namespace) -> None:
    """Fail before rendering anything when the benchmark would need an extra that is not installed."""
    from vom_plugin.extras import require

    if {"flow_cf", "oracle_cf"} & set(names):
        require("pymatting", "the closed-form matting baselines (flow_cf, oracle_cf)", extra="eval")
    if args.out:
        require("matplotlib", "the benchmark's plots (--out)", extra="eval")
    if args.data.startswith("synth:"):
        require("skimage", "synthetic clips (--data synth:N)", extra="eval")


def run(args: argparse.Namespace) -> int:
    from vom_plugin.errors import InputError
    from vom_plugin.eval.clips import iter_clips
    from vom_plugin.eval.runner import alpha_saver, clip_notes, format_table, make_methods, run_benchmark

    if args.save_alphas and not args.out:
        raise InputError("--save-alphas needs --out DIR (where to write the alphas)")
    names = list(args.methods or METHODS)
    _require_extras(names, args)
    earlier_alphas: dict[tuple[str, str], list[Path]] = {}  # what an earlier run saved in --out, found before the work
    if args.out:  # before the work: a folder of the user's is refused, not written over at the end
        from vom_plugin.atomic import check_replaceable

        out_dir = Path(args.out)
        if out_dir.exists() and not out_dir.is_dir():
            raise InputError(f"--out {out_dir}: exists and is not a folder")
        check_replaceable(out_dir / "benchmark.json", _a_report, "--out")
        try:
            taken = out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / "benchmark.json").is_file()
            if taken:  # its plots (<clip>.png) and --save-alphas frames would replace files of those names
                raise InputError(f"--out {out_dir}: holds files and no benchmark.json of vom's; give an empty or new "
                                 "folder, or one an earlier vom benchmark wrote")
        except OSError as e:
            raise InputError(f"--out {out_dir}: {e.strerror or e}") from None
        # an earlier run's saved mattes are kept unless the user says otherwise (QA: a second run into the folder, to
        # compare another model, removed the first one's 8 EXRs, saying only that it wrote its report)
        earlier_alphas = _earlier_alphas(out_dir, _earlier_clips(out_dir / "benchmark.json"))
        if earlier_alphas and not args.replace_alphas:
            raise InputError(f"--out {out_dir}: holds the alphas an earlier benchmark saved "
                             f"({_earlier_run(out_dir / 'benchmark.json')}): {_said_alphas(earlier_alphas)}; this run "
                             "would write over or remove them: pass --replace-alphas to let it, or give another --out")
    elif args.replace_alphas:
        raise InputError("--replace-alphas is an --out option (the folder whose earlier saved alphas it may replace)")

    model, device = None, "cpu"
    notes = []
    if "vom" in names:
        model, info = _load_vom(args, explicit="vom" in (args.methods or ()))
        if model is None:
            names.remove("vom")
            notes.append(f"vom skipped: {info}")
        else:
            device = info
    weights = None
    if model is not None:  # which weights made the numbers ("default" names another file once the default changes):
        # the digest a render stamps as vom:weights, of the tensors as stored (before the method prepares them)
        from vom_plugin.engine.models import model_identity
        from vom_plugin.engine.weights import weights_path

        # absolute: the file is read later from anywhere (QA: a relative --model was recorded as given)
        weights = {"path": os.path.abspath(weights_path(args.model)), "digest": model_identity(model)}
    from vom_plugin.grammar import default

    working = args.working_size or default("working_size")
    methods = make_methods(names, model=model, device=device, working_size=working,
                           matting_side=args.matting_side, trimap_radius=args.trimap_radius)
    synth = args.data.startswith("synth:")
    clips = iter_clips(args.data, frames=args.frames, size=args.size or 256)
    quiet = args.json

    def progress(msg: str) -> None:
        if not quiet:
            print(f"  ... {msg}", file=sys.stderr, flush=True)

    result = run_benchmark(clips, methods, region=args.region, max_side=None if synth else args.size,
                           progress=progress, on_alpha=_marking(alpha_saver(args.out), Path(args.out), args.region)
                           if args.save_alphas else None)
    result.settings = {"data": args.data, "model": args.model if model is not None else None, "device": device,
                       "colorspace": sorted({c.colorspace for c in result.clips}),
                       "working_size": working, "matting_side": args.matting_side,
                       "trimap_radius": args.trimap_radius, "frames": args.frames,
                       "size": args.size, "notes": notes, **_made_on()}
    if "vom" in names:  # what else the network ran with (the node's: a default that moves must show in the file)
        from vom_plugin.engine.frames import geometry

        result.settings.update(
            top_k=default("top_k"), memory=default("memory"),
            # the size the network ran at, per clip: a small clip is enlarged 2x at most, not to the working size
            network_size={c.name: list(geometry(*c.size, working).size) for c in result.clips})
    if weights is not None:
        result.settings["weights"] = weights
    backgrounds = _shots_backgrounds(args.data)
    if backgrounds is not None:  # which pictures the shots are: the same command elsewhere makes other ones
        result.settings["backgrounds"] = backgrounds
        notes.append(f"shots composited over background set {backgrounds} (shots.json)")
    payload = result.to_dict()
    for line in clip_notes(result):  # on stderr as vom eval's, with --json too (they were only in the JSON, QA)
        print(f"vom benchmark: note: {line}", file=sys.stderr)
    if args.out:
        from vom_plugin.atomic import check_replaceable, make_folder, write_text_atomic
        from vom_plugin.eval.plot import plot_clip, plot_replaceable

        out = make_folder(args.out, "--out")
        earlier = _earlier_clips(out / "benchmark.json")
        # what this run replaces, said as `vom train --export` says the weights it replaced
        replaced = _earlier_run(out / "benchmark.json") if earlier else None
        for c in result.clips:  # every plot's path before the report and the plots are written (saved alphas: above)
            check_replaceable(out / f"{c.name}.png", plot_replaceable(), "--out")
        write_text_atomic(out / "benchmark.json", json.dumps(payload, indent=2))
        for c in result.clips:
            plot_clip(c, out / f"{c.name}.png", region=args.region)
        kept = {(c.name, m) for c in result.clips for m in c.scores} if args.save_alphas else set()
        plots_removed, alphas_removed = _remove_earlier(out, earlier, {c.name for c in result.clips}, kept,
                                                        earlier_alphas)
        written = [p for (clip, method), frames in earlier_alphas.items() if (clip, method) in kept for p in frames
                   if p.is_file()]
        said = f"wrote {Path(args.out) / 'benchmark.json'} and {len(result.clips)} plot(s)"
        if replaced:
            said += (f"; replaced the earlier run's report ({replaced}): {plots_removed} plot(s) and {alphas_removed} "
                     f"saved alpha(s) of it removed, {len(written)} saved alpha(s) written over")
    if args.json:
        print(json.dumps(payload, indent=2))
        if args.out and replaced:  # stdout is the JSON: what was replaced goes beside the notes
            print(f"vom benchmark: {said}", file=sys.stderr)
        return 0
    for n in notes:
        print(f"note: {n}")
    print(format_table(result))
    if args.out:
        print(said)
    return 0


def _earlier_clips(report: Path) -> list[str]:
    """The clips an earlier benchmark.json in the folder lists (none when there is none, or it does not read)."""
    try:
        clips = json.loads(report.read_text()).get("clips") or []
        return [str(c["name"]) for c in clips if isinstance(c, dict) and "name" in c]
    except (OSError, ValueError, AttributeError, TypeError, RecursionError):
        return []


def _earlier_run(report: Path) -> str:
    """The earlier run whose report is ``report``, as the messages say it: when it was written, its clips and
    methods."""
    import time

    try:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(report.stat().st_mtime))
        data = json.loads(report.read_text())
        clips = _earlier_clips(report)
        methods = [str(m) for m in data.get("methods") or []]
    except (OSError, ValueError, AttributeError, TypeError, RecursionError):
        return f"{report}, which does not read"
    shown = ", ".join(clips[:5]) + (f" and {len(clips) - 5} more" if len(clips) > 5 else "")
    return (f"written {when}, clip(s) {shown or 'none'}, method(s) {', '.join(methods) or 'none'}"
            if data.get("complete", True) else f"written {when}, stopped before its report")


def _plain_name(name: str) -> bool:
    """A clip name from the report that is a plain file name (one of another's could point anywhere)."""
    return Path(name).name == name and name not in ("", ".", "..")


def _earlier_alphas(out: Path, earlier: list[str]) -> dict[tuple[str, str], list[Path]]:
    """The alphas an earlier benchmark saved in ``out`` for the clips its report lists: frames marked with
    vom:benchmark_method in plain ``<clip>/<method>/`` folders, by (clip, method). A frame that does not read is not
    known to be ours and is not among them."""
    from vom_plugin.io import read_info

    found: dict[tuple[str, str], list[Path]] = {}
    for name in earlier:
        folder = out / name
        if not _plain_name(name) or not folder.is_dir() or folder.is_symlink():
            continue
        for method_dir in sorted(folder.iterdir()):
            if not method_dir.is_dir() or method_dir.is_symlink():
                continue
            for frame in sorted(method_dir.glob("alpha.*.exr")):
                try:
                    ours = read_info(frame).metadata.get("vom:benchmark_method") == method_dir.name
                except Exception:
                    ours = False
                if ours:
                    found.setdefault((name, method_dir.name), []).append(frame)
    return found


def _said_alphas(alphas: dict[tuple[str, str], list[Path]]) -> str:
    """``{(clip, method): frames}`` as a message says it: each folder, its frame count and its first frame."""
    parts = [f"{frames[0].parent} ({len(frames)} frame(s), {frames[0].name} ...)" for frames in alphas.values()]
    return ", ".join(parts[:6]) + (f" and {len(parts) - 6} more folder(s)" if len(parts) > 6 else "")


def _remove_earlier(out: Path, earlier: list[str], plotted: set[str], saved: set[tuple[str, str]],
                    alphas: dict[tuple[str, str], list[Path]]) -> tuple[int, int]:
    """What an earlier benchmark wrote into ``out`` that this one did not write again: its clips' plots and its
    saved alphas (``_earlier_alphas``), which beside the new benchmark.json read as this run's (QA: a folder of an
    earlier run's plots and alphas, its new report listing one clip). Nothing else is touched. Returns how many plots
    and alphas it removed."""
    import contextlib

    from vom_plugin.eval.plot import is_vom_plot

    plots = removed = 0
    for name in earlier:
        plot = out / f"{name}.png"
        if _plain_name(name) and name not in plotted and is_vom_plot(plot):  # a picture of the user's of that name
            plot.unlink()
            plots += 1
    for (name, method), frames in alphas.items():
        if (name, method) in saved:
            continue
        for frame in frames:
            with contextlib.suppress(FileNotFoundError):
                frame.unlink()
                removed += 1
        with contextlib.suppress(OSError):
            frames[0].parent.rmdir()  # only when nothing of anyone else's is left in it
        with contextlib.suppress(OSError):
            frames[0].parent.parent.rmdir()
    return plots, removed


def _shots_backgrounds(data: str) -> str | None:
    """The background set digest that ``vom clips shots`` recorded beside the shots of ``shots:DIR``, if any."""
    kind, _, arg = data.partition(":")
    if kind not in ("shots", "folder") or not arg:
        return None
    try:
        record = json.loads((Path(arg) / "shots.json").read_text())
        return str(record["backgrounds"]["digest"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None


def _a_report(start: bytes) -> bool:
    """A benchmark.json vom wrote: a JSON object that opens with its region (``BenchmarkResult.to_dict``'s first key;
    a report of many clips is too long to parse for this)."""
    return start.lstrip().startswith(b"{") and start.lstrip()[1:].lstrip().startswith(b'"region"')


def _marking(save: Callable[..., None], out_dir: Path, region: str) -> Callable[..., None]:
    """``save`` that first marks ``out_dir`` as a benchmark's with an incomplete ``benchmark.json`` (the alphas are
    written while the run goes: a run stopped before its report leaves a folder the next run knows as its own)."""
    marked = [False]
    checked: set[str] = set()

    def saving(clip: Any, *a: object, **k: object) -> None:
        from vom_plugin.atomic import check_replaceable, make_folder, write_text_atomic
        from vom_plugin.eval.plot import plot_replaceable

        name = str(getattr(clip, "name", clip))
        if name not in checked:  # the clip's plot path before its first frame: a refusal writes none of them
            check_replaceable(out_dir / f"{name}.png", plot_replaceable(), "--out")
            checked.add(name)
        if not marked[0]:
            make_folder(out_dir, "--out")
            if not (out_dir / "benchmark.json").is_file():
                write_text_atomic(out_dir / "benchmark.json", json.dumps({"region": region, "complete": False},
                                                                         indent=2))
            marked[0] = True
        save(clip, *a, **k)

    return saving


def _made_on() -> dict[str, object]:
    """Which vom, torch and machine made the numbers (the sec column, and synth clips of a generator that may change
    between versions: the report said neither, QA)."""
    import platform

    import torch

    from vom_plugin import __version__
    from vom_plugin.engine.bench import _cpu_name

    return {"vom_version": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "machine": f"{platform.system()} {platform.machine()}, {_cpu_name()}", "threads": torch.get_num_threads()}
