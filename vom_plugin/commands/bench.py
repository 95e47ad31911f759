"""``vom bench``: how fast the network runs here, stage by stage, and whether its memory stays flat."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping

HELP = ("time the network per stage (random weights): fps, peak memory, guided vs dense read; --cache / --objects: "
        "time `vom render` processes (the shipped weights)")


def _memory_policy(text: str) -> str:
    """``--memory``'s grammar, its error said once under argparse's "argument --memory:" (QA: the flag twice)."""
    from vom_plugin.errors import InputError
    from vom_plugin.grammar import parse_memory_policy

    try:
        return parse_memory_policy(text, "--memory").text
    except InputError as e:
        raise InputError(str(e).removeprefix("--memory ")) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", choices=["lite", "lite2", "full"], default="lite",
                   help="network configuration (default lite, what the shipped weights are)")
    p.add_argument("--size", type=int, choices=[480, 1080], default=480,
                   help="frames of 864x480 (480) or 1920x1080 (1080, padded to 1920x1088), width x height")
    from vom_plugin.commands._args import knob_type
    from vom_plugin.grammar import arg_type, default, parse_device
    from vom_plugin.nodedef import load_node_def

    p.add_argument("--device", default="auto", type=arg_type(parse_device), metavar="auto|cpu|cuda|cuda:N",
                   help="default auto")
    p.add_argument("--frames", type=int, default=30, metavar="N", help="propagated frames to time (>= 12; default 30)")
    p.add_argument("--top-k", type=knob_type(load_node_def().knob("top_k"), int), default=None,
                   metavar="N", help=f"memory matches kept per pixel at 1/16 (default: the node's, {default('top_k')})")
    p.add_argument("--memory", type=arg_type(_memory_policy), default=None,
                   metavar="POLICY",
                   help=f"memory policy (default: the node's, {default('memory')})")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--detail", action=argparse.BooleanOptionalAction, default=None,
                   help="with or without the learned detail residual (model/detail.py); default: as the shipped "
                        "weights of --config")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--cache", action="store_true",
                   help="instead: time `vom render` of a shot with a cold cache, then after only its roto changed "
                        "(the cache's speed-up; each render a process); uses --device, --threads")
    p.add_argument("--objects", type=int, default=None, metavar="N",
                   help="instead: time N objects in one `vom render` against N renders of one object (each a "
                        "process on an empty cache; the objects are the shot's roto dilated by 0, 4, 8... px); "
                        "takes the --cache options below")
    p.add_argument("--shot", default=None, metavar="SHOT.yaml",
                   help="with --cache or --objects: the shot (default: the demo)")
    p.add_argument("--model", default="default", metavar="NAME|PATH|random",
                   help="with --cache: weights to use (default: the shipped weights; random: seeded random "
                        "weights of --config)")
    p.add_argument("--plate-size", default=None, metavar="WxH",
                   help="with --cache: resample the shot's plates and roto to this size (e.g. 864x480)")
    p.add_argument("--length", type=int, default=None, metavar="N",
                   help="with --cache: extend the shot to N frames (its frames forward, back, forward...)")
    p.add_argument("--worker", action="store_true",
                   help="with --cache: also time the same renders handed to a `vom worker` (started by the bench; "
                        "CPU seconds include the worker's)")
    p.add_argument("--repeat", type=int, default=3, metavar="N",
                   help="with --cache: renders of each kind; the minimum is reported (default: 3)")


# the flags of each kind of bench, with their defaults: one of another kind's is refused, not ignored
_STAGE_FLAGS = {"size": 480, "frames": 30, "top_k": None, "memory": None, "detail": None}
_RENDER_FLAGS = {"shot": None, "model": "default", "plate_size": None, "length": None, "repeat": 3, "worker": False}


def _check_flags(args: argparse.Namespace) -> None:
    from vom_plugin.errors import InputError

    if args.top_k == "":  # blank: the node's default, as vom render reads it (knob_type leaves "" to the Shot)
        args.top_k = None

    def given(flags: Mapping[str, object]) -> list[str]:
        return ["--" + k.replace("_", "-") for k, default in flags.items() if getattr(args, k) != default]

    if args.cache and args.objects is not None:
        raise InputError("--cache and --objects: choose one bench")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads {args.threads}: expected 1 or more (leave it out for torch's choice)")
    if args.objects is not None and args.worker:
        raise InputError("--worker is a --cache option (the objects bench times `vom render` processes only)")
    renders = args.cache or args.objects is not None
    wrong = given(_STAGE_FLAGS) if renders else given(_RENDER_FLAGS)
    if wrong:
        kind = "--cache and --objects" if renders else "the stage bench (without --cache or --objects)"
        what = "is not an option" if len(wrong) == 1 else "are not options"
        raise InputError(f"{', '.join(wrong)} {what} of {kind}; see vom bench --help")


def run(args: argparse.Namespace) -> int:
    _check_flags(args)
    if args.objects is not None:
        from vom_plugin.engine.bench_cache import format_objects_bench, run_objects_bench

        r = run_objects_bench(args.objects, config=args.config, model=args.model, shot_file=args.shot,
                              device=args.device, threads=args.threads, plate_size=args.plate_size,
                              length=args.length, repeat=args.repeat)
        print(json.dumps(r) if args.json else format_objects_bench(r))
        return 0
    if args.cache:
        from vom_plugin.engine.bench_cache import format_cache_bench, run_cache_bench

        r = run_cache_bench(config=args.config, model=args.model, shot_file=args.shot, device=args.device,
                            threads=args.threads, plate_size=args.plate_size, length=args.length,
                            repeat=args.repeat, worker=args.worker)
        print(json.dumps(r) if args.json else format_cache_bench(r))
        return 0
    from vom_plugin.engine.bench import format_text, run_bench

    result = run_bench(args.config, args.size, args.device, frames=args.frames, top_k=args.top_k,
                       memory=args.memory, threads=args.threads, detail=args.detail)
    print(json.dumps(result) if args.json else format_text(result))
    return 0
