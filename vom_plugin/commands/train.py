"""``vom train``: train a model (time-budgeted, checkpointed, resumable) or export a checkpoint as weights."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from vom_plugin.commands._args import count, fraction_below_one, named_flags, non_negative, positive, stdout_to_null

HELP = "train the matting network on synthetic or studio data, or export a checkpoint as shipped weights"
DESCRIPTION = """Train the HSTSG matting network.

Data: synth (generated on the fly), vm108:PATH (VideoMatting108), dvm:PATH (DVM), folder:PATH
(<clip>/fg + <clip>/alpha + <clip>/bg or <clip>/comp); --library mixes in path-traced clips rendered by
`vom clips render`, composited over photographs with camera noise, defocus and shake. Writes checkpoints
(last.pt, best.pt), train.csv and val.csv under --out. Continue an interrupted run with --resume.
SIGTERM or Ctrl-C finishes the step, checkpoints and exits 130 (a second Ctrl-C stops at once).

Export: vom train --export runs/lite/best.pt --to runs/lite.safetensors (render with --model runs/lite.safetensors)
A --to that is a weights file shipped in vom's package (default, lite, full) is refused unless --replace-shipped.
"""


_DEFAULT_LIBRARY = Path("<default>")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, choices=("lite", "lite2", "full"),
                   help="model configuration (default lite, the shipped one; lite2: EfficientNet-lite0 key trunk "
                        "started from ImageNet weights of the train extra)")
    p.add_argument("--data", default=None, help="synth | vm108:PATH | dvm:PATH | folder:PATH (default synth)")
    p.add_argument("--minutes", type=positive(float), default=10.0, metavar="M",
                   help="wall-clock budget of this run's training steps (the last validation comes after it; "
                        "default 10)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="run folder (checkpoints, CSV logs)")
    p.add_argument("--resume", action="store_true", help="continue from DIR/last.pt")
    p.add_argument("--init", type=Path, default=None, metavar="WEIGHTS",
                   help="start a new run from a weights file (default | lite | PATH.safetensors); weights of "
                        "another config start lite2: ImageNet trunk, the rest copied, adapters fitted")
    p.add_argument("--distill-steps", type=count, default=300,
                   help="with --init from another config: steps fitting the new key adapters (default 300)")
    p.add_argument("--ema-decay", type=fraction_below_one, default=None,
                   help="weight EMA (validated, checkpointed, exported); 0 disables (default 0.995)")
    p.add_argument("--trunk-lr-scale", type=positive(float), default=None,
                   help="learning-rate factor of a pretrained key trunk (default 0.3)")
    p.add_argument("--no-refine", action="store_true",
                   help="train without the learned edge refinement (the plain guided filter): the control "
                        "that tells whether the refinement pays")
    p.add_argument("--no-detail", action="store_true",
                   help="train without the learned detail residual (model/detail.py): a file that renders at the "
                        "shipped network's cost")
    p.add_argument("--data-workers", type=int, default=None, metavar="N",
                   help="processes that make training batches ahead (the same batches, so the same run); default "
                        "none on a CPU, all cores but two on a GPU")
    p.add_argument("--train-only", choices=("detail",), default=None,
                   help="train only this part of the network, the rest frozen as loaded (detail: the learned "
                        "full-resolution detail residual, model/detail.py; start from --init WEIGHTS)")
    from vom_plugin.grammar import arg_type, parse_device

    p.add_argument("--device", default="auto", type=arg_type(parse_device),
                   help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--seed", type=int, default=None, help="run seed: data and initialisation (default 0)")
    p.add_argument("--batch", type=positive(int), default=None, help="clips per step (default 4)")
    p.add_argument("--size", type=positive(int), default=None, metavar="N",
                   help="square crop size, multiple of 16 (default 256)")
    p.add_argument("--frames", type=positive(int), default=None, help="frames per training clip, >= 3 (default 3)")
    p.add_argument("--lr", type=positive(float), default=None, help="peak learning rate (default 4e-4)")
    p.add_argument("--threads", type=positive(int), default=2, help="CPU threads for torch (default 2)")
    p.add_argument("--ckpt-minutes", type=positive(float), default=3.0, metavar="M",
                   help="checkpoint interval (default 3)")
    p.add_argument("--val-minutes", type=non_negative, default=10.0, metavar="M",
                   help="validation interval; 0 disables validation, the last one too (no best.pt; default 10)")
    p.add_argument("--stage1-steps", type=count, default=None, help="steps of stage 1 (rigid pseudo-clips)")
    p.add_argument("--ramp-steps", type=count, default=None, help="steps over which difficulty ramps to 1")
    p.add_argument("--max-steps", type=positive(int), default=None, help="stop after this many steps in all")
    p.add_argument("--shots", type=Path, default=None,
                   help="folder of rendered shots to REPORT at each validation (never used to choose checkpoints)")
    p.add_argument("--library", type=Path, nargs="?", const=_DEFAULT_LIBRARY, default=None, metavar="DIR",
                   help="mix in clips from a rendered clip library (`vom clips render`); without DIR the default "
                   "library (VOM_CLIPS_DIR, else $XDG_CACHE_HOME/vom-clips, ~/.cache/vom-clips)")
    p.add_argument("--library-share", type=float, default=None, metavar="F",
                   help="with --library: fraction of training clips taken from it (default 0.5)")
    p.add_argument("--val-library", type=Path, nargs="?", const=_DEFAULT_LIBRARY, default=None, metavar="DIR",
                   help="also validate on a library's held-out clips (seed %% 10 == 9, never trained on) and choose "
                   "best.pt on synthetic + library scores; without DIR the default library")
    p.add_argument("--val-hard", type=count, default=None, metavar="N",
                   help="full-difficulty synthetic validation clips that join the selection set (held-out seeds; "
                   "default 8, 0: none); --calibrate uses them too")
    p.add_argument("--calibrate", type=Path, default=None, metavar="WEIGHTS",
                   help="choose the guided filter (radius, eps) and the output levels (black and white points of the "
                   "published alpha), and the memory mask threshold and keyframe bonus among --memory-masks' and "
                   "--keyframe-bonuses' values where given (else WEIGHTS' are kept), of WEIGHTS on the validation "
                   "clips (synthetic at --size, --val-hard's, plus --val-library's held-out clips; 8 frames and "
                   "--val-long's; plus --val-shots') and write the weights with them to --to")
    p.add_argument("--levels-only", action="store_true",
                   help="with --calibrate: keep WEIGHTS' guided filter, memory mask and keyframe bonus, choose only "
                   "the output levels")
    p.add_argument("--memory-masks", type=_thresholds, default=None, metavar="T,T,...",
                   help="with --calibrate: also search these thresholds of the predicted mask written to memory "
                   "(0: the soft mask; each in [0, 1)); default: keep WEIGHTS' (binarising helped long validation "
                   "clips and hurt the rendered test shots: model card, session 14)")
    p.add_argument("--keyframe-bonuses", type=_bonuses, default=None, metavar="B,B,...",
                   help="with --calibrate: also search these logit bonuses of the keyframe's memory positions in every "
                   "read (0: every memory frame alike; larger leans on the roto's frame over recent predictions); "
                   "default: keep WEIGHTS'")
    p.add_argument("--guided-radii", type=_radii, default=None, metavar="R,R,...",
                   help="with --calibrate: the guided filter radii (at 1/4 resolution) searched; default 6,8,10")
    p.add_argument("--guided-eps", type=_eps, default=None, metavar="E,E,...",
                   help="with --calibrate: the guided filter eps values searched; default 1e-3,3e-4,1e-4")
    p.add_argument("--val-shots", type=Path, default=None, metavar="DIR",
                   help="shot folders made from rendered clips never trained on (`vom clips shots`: the test shots' "
                   "size, length and layout) join the selection set, in training's validation and in --calibrate")
    p.add_argument("--val-long", type=count, default=None, metavar="FRAMES",
                   help="the same validation clips also FRAMES long join the selection set, in training's validation "
                   "and in --calibrate (what memory holds compounds over a shot; default 24, 0: none)")
    p.add_argument("--export", type=Path, default=None, metavar="CKPT", help="export CKPT as fp16 safetensors")
    p.add_argument("--to", type=Path, default=None, metavar="FILE",
                   help="with --export or --calibrate: destination .safetensors")
    p.add_argument("--replace-shipped", action="store_true",
                   help="with --export or --calibrate: let --to replace a weights file shipped in vom's package (what "
                        "every render with the default model uses; no copy of it is kept)")


# The run's settings whose flags default to None: left out, they are TrainArgs' defaults (the one place they are
# written) and a resume takes the run's own; named, a resume refuses a value that changes the run.
_RUN_FLAGS = {"config": "config", "data": "data", "seed": "seed", "batch": "batch", "size": "size", "frames": "frames",
              "lr": "lr", "ema_decay": "ema_decay", "trunk_lr_scale": "trunk_lr_scale",
              "library_share": "library_share", "stage1_steps": "curriculum", "ramp_steps": "curriculum"}


def _given(args: argparse.Namespace) -> set[str]:
    """The run settings named on the command line; fills in the defaults of those that were not."""
    from vom_plugin.train.data import Curriculum
    from vom_plugin.train.loop import TrainArgs

    defaults, curriculum, given = TrainArgs(out=Path()), Curriculum(), set()
    for dest, key in _RUN_FLAGS.items():
        if getattr(args, dest) is None:
            setattr(args, dest, getattr(curriculum if key == "curriculum" else defaults, dest))
        else:
            given.add(key)
            if key == "curriculum":  # which of its fields: a resume compares those, takes the run's others
                given.add(f"curriculum.{dest}")
    for key, named in (("library", args.library is not None), ("train_only", args.train_only is not None),
                       ("refine", args.no_refine), ("detail", args.no_detail)):
        if named:
            given.add(key)
    return given


# the selection set's flags that default to None (named, whatever the value, or not), and their values left out
_VALIDATION_DEFAULTS = {"val_hard": 8, "val_long": 24}


# the flags each job of `vom train` reads (its own and the settings it shares)
_EXPORT_FLAGS = {"export", "to", "replace_shipped"}
_CALIBRATE_FLAGS = {"calibrate", "to", "replace_shipped", "levels_only", "memory_masks", "keyframe_bonuses",
                    "guided_radii", "guided_eps", "size", "threads", "val_hard", "val_library", "val_long", "val_shots"}
_CALIBRATE_ONLY = {"to", "replace_shipped", "levels_only", "memory_masks", "keyframe_bonuses", "guided_radii",
                   "guided_eps"}


def run(args: argparse.Namespace) -> int:
    from vom_plugin.errors import InputError
    from vom_plugin.extras import require

    if args.export is None:  # synthetic clips feed training, validation and calibration, whatever --data
        require("skimage", "training's synthetic clips (their photographic textures)", extra="train")
    from vom_plugin.train.data import Curriculum
    from vom_plugin.train.loop import VALIDATION_FLAGS, TrainArgs, export_weights, train

    named = named_flags(args, add_arguments)
    # named whatever the value, the default's too (a run started with --val-hard 0 resumed with --val-hard 8 kept 0:
    # review); left out, a resume takes the run's
    given = _given(args) | {k for k in VALIDATION_FLAGS if k in named}
    for key, value in _VALIDATION_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    # the three jobs of `vom train` take each other's flags for nothing: a flag of another job is a mistake to say
    if args.calibrate is not None and args.export is not None:
        raise InputError("--calibrate and --export: choose one (calibrate weights, or export a checkpoint)")
    if args.export is not None and (args.resume or args.out is not None):
        raise InputError("--export takes a checkpoint and --to, not --resume or --out (those continue or start a "
                         "training run)")
    if args.levels_only and args.calibrate is None:
        raise InputError("--levels-only is a --calibrate option (keep the file's guided filter, fit the output "
                         "levels only)")
    job, takes = (("--export", _EXPORT_FLAGS) if args.export is not None
                  else ("--calibrate", _CALIBRATE_FLAGS) if args.calibrate is not None else ("a training run", None))
    others = sorted((named - takes if takes is not None else named & _CALIBRATE_ONLY) - {"levels_only"})
    if others:  # (QA: `--to` on a training run, meaning an export, started ten minutes of training)
        flags = ", ".join("--" + n.replace("_", "-") for n in others)
        raise InputError(f"{flags}: not an option of {job} (vom train runs one job: a training run, --export or "
                         f"--calibrate)")
    if "library_share" in named and args.library is None and not args.resume:
        raise InputError("--library-share: the share of clips from --library, which is not given")
    if args.calibrate is not None:
        return _calibrate(args)
    if args.export is not None:
        if args.to is None:
            raise InputError("--export needs --to DEST.safetensors")
        if args.to.resolve() == args.export.resolve():
            raise InputError(f"--to {args.to} is the checkpoint being exported")
        _check_weights_destination(args.to, args.replace_shipped)
        replaced = _weights_said(args.to)
        info = export_weights(args.export, args.to)
        print(f"exported {args.export} (step {info['step']}, {info['config']}) -> {args.to}"
              f"{f' (replaced: {replaced})' if replaced else ''}")
        return 0
    if args.out is None:
        raise InputError("--out is required: the folder for checkpoints and logs (e.g. runs/lite)")
    if args.size % 16:
        raise InputError(f"--size {args.size}: must be a multiple of 16 (the network's stride)")
    if args.size == 16 and args.batch == 1:  # QA: a traceback from batch normalisation after the run had begun
        raise InputError("--size 16 with --batch 1: the network's coarsest features are then one value per channel, "
                         "which batch normalisation cannot train on; use --size 32 or more, or --batch 2 or more")
    if args.seed is not None and not 0 <= args.seed < 2**32:  # numpy's generators take no other (QA: a traceback)
        raise InputError(f"--seed {args.seed}: expected a whole number from 0 to {2**32 - 1}")
    if args.frames < 3:
        raise InputError(f"--frames {args.frames}: clips need at least 3 frames (memory from predictions)")
    if not 0.0 <= args.library_share <= 1.0:
        raise InputError(f"--library-share {args.library_share}: expected a fraction in [0, 1]")
    if args.train_only is not None and args.init is None and not args.resume:
        raise InputError(f"--train-only {args.train_only}: needs --init WEIGHTS (the frozen rest of the network "
                         "would be random)")
    if args.data_workers is not None and args.data_workers < 0:
        raise InputError(f"--data-workers {args.data_workers}: expected 0 (none) or more")
    if args.train_only == "detail" and args.no_detail:
        raise InputError("--train-only detail and --no-detail: the one trains only the module the other leaves out")
    if args.shots is not None and not Path(args.shots).is_dir():  # (a typo reported no shots, exit 0: QA)
        what = "not a folder" if Path(args.shots).exists() else "no such folder"
        raise InputError(f"--shots {args.shots}: {what} (the rendered shots to report, e.g. "
                         f"../shared/data/shots)")
    try:  # shot folders, as shot_valsets reads them (dot folders are not)
        has_shots = args.shots is None or any(d.is_dir() and not d.name.startswith(".") and any(d.glob("plate.*.exr"))
                                              for d in Path(args.shots).iterdir())
    except OSError as e:
        raise InputError(f"--shots {args.shots}: cannot be read ({e.strerror or e})") from None
    if not has_shots:  # (its parent folder reported no shots, exit 0: QA)
        raise InputError(f"--shots {args.shots}: no shot folders (plate.####.exr, gt.####.exr, roto.0001.exr) in it; "
                         "expected the folder of the rendered shots to report, e.g. ../shared/data/shots")
    library, val_library = _library(args.library), _library(args.val_library)
    # absolute, as the run records them: a resume from another working folder read other shots, unsaid (QA)
    val_library = Path(os.path.abspath(val_library)) if val_library is not None else None
    library = Path(os.path.abspath(library)) if library is not None else None
    args.val_shots = Path(os.path.abspath(args.val_shots)) if args.val_shots is not None else None
    args.shots = Path(os.path.abspath(args.shots)) if args.shots is not None else None
    targs = TrainArgs(out=args.out, config=args.config, data=args.data, minutes=args.minutes, resume=args.resume,
                      init=args.init,
                      device=args.device, seed=args.seed, batch=args.batch, size=args.size, frames=args.frames,
                      lr=args.lr, threads=args.threads, ckpt_minutes=args.ckpt_minutes,
                      val_minutes=args.val_minutes, shots=args.shots, max_steps=args.max_steps,
                      distill_steps=args.distill_steps, ema_decay=args.ema_decay, trunk_lr_scale=args.trunk_lr_scale,
                      refine=not args.no_refine, detail=not args.no_detail, data_workers=args.data_workers,
                      train_only=args.train_only,
                      library=library, library_share=args.library_share, val_library=val_library,
                      val_hard=args.val_hard, val_long=args.val_long, val_shots=args.val_shots,
                      curriculum=Curriculum(stage1_steps=args.stage1_steps, ramp_steps=args.ramp_steps))
    made = not args.out.exists()
    try:
        summary = train(targs, log=_print_or_stop, given=given)
    except InputError:  # refused before the run wrote anything (--init, --library): no empty --out folder left
        if made and args.out.is_dir() and not any(args.out.iterdir()):
            args.out.rmdir()
        raise
    if summary.get("stopped"):  # a scheduler tells a preempted run from a finished one by the exit code
        from vom_plugin.errors import CancelledError

        raise CancelledError(f"stopped by {summary['stopped']} at step {summary['step']}, checkpointed in "
                             f"{args.out / 'last.pt'}; continue it with --resume")
    return 0


def _print_or_stop(message: str) -> None:
    """A line of the run's log on stdout; where stdout is gone (a closed pipe, a terminal hung up), the error goes to
    the loop, which stops with a checkpoint, and stdout is pointed at the null device so that the interpreter's
    last flush has nowhere to fail."""
    try:
        print(message, flush=True)
    except OSError:
        stdout_to_null()
        raise


def _weights_said(path: Path) -> str | None:
    """What the vom weights file at ``path`` is, for the line that says it was replaced (an export over the shipped
    file said nothing of it, review); None where there is none."""
    if not path.is_file():
        return None
    from vom_plugin.engine.weights import read_weights_metadata

    try:
        meta = read_weights_metadata(path)
    except Exception:  # _check_weights_destination let it through: vom's, whatever its header says now
        return "an earlier vom weights file"
    step = f", step {meta['step']}" if meta.get("step") else ""
    return f"{meta.get('config', '?')} weights{step}, vom {meta.get('vom_version', '?')}"


def _check_weights_destination(to: Path, replace_shipped: bool = False) -> None:
    """``--to`` of an export or a calibration, before any work: a .safetensors path that is free or holds weights vom
    wrote (a plate, a note or the shot file named by mistake was replaced by 3 MB of weights: QA), and not a weights
    file shipped in the package unless ``replace_shipped`` (the README's own example replaced the shipped weights with
    a 40-step run's, no copy kept, exit 0: QA)."""
    from vom_plugin.atomic import check_replaceable
    from vom_plugin.errors import InputError

    check_replaceable(to, _vom_weights, "--to", head=16 << 20)
    if to.suffix != ".safetensors":
        raise InputError(f"--to {to}: expected a .safetensors file (the weights vom renders with); a training "
                         f"checkpoint (.pt) is written by training itself")
    if to.parent.exists() and not to.parent.is_dir():
        raise InputError(f"--to {to}: its folder {to.parent} is a file")
    shipped = _shipped_weights(to)
    if shipped is not None and not replace_shipped:
        raise InputError(f"--to {to}: is {shipped} ({_weights_said(to)}), which renders use; pass --replace-shipped "
                         f"to replace it (no copy of it is kept), or write another file and render with --model FILE")


def _shipped_weights(to: Path) -> str | None:
    """How the messages name ``to`` where it is a weights file shipped in vom's package (its weights folder, or
    VOM_WEIGHTS_DIR's), followed through links; None where it is not, or there is no file there yet."""
    from vom_plugin.locations import PACKAGE_DIR, weights_dir

    try:
        real = to.resolve()
        if not real.is_file():
            return None
        for folder in (weights_dir(), PACKAGE_DIR / "weights"):
            if real.parent == folder.resolve():
                return f"the shipped weights file {real}" if real != to.absolute() else "the shipped weights file"
    except (OSError, RuntimeError):  # a loop of links: not the shipped file as far as anyone can tell
        return None
    return None


def _vom_weights(start: bytes) -> bool:
    """A weights file vom wrote: a safetensors header whose metadata names its network's config."""
    from vom_plugin.engine.safetensors_header import BadHeader, read_header

    try:
        meta = read_header(start).get("__metadata__")
    except BadHeader:
        return False
    return isinstance(meta, dict) and "config" in meta


def _float_list(what: str, ok: Callable[[float], bool], bounds: str) -> Callable[[str], tuple[float, ...]]:
    """An argparse type: comma-separated floats, each passing ``ok`` (``bounds`` says which, in the error)."""

    def parse(text: str) -> tuple[float, ...]:
        try:
            values = tuple(float(v) for v in text.split(","))
        except ValueError:
            values = ()
        if not values or not all(ok(v) for v in values):
            raise argparse.ArgumentTypeError(f"expected {what} in {bounds} separated by commas, got {text!r}")
        return values

    return parse


# --memory-masks: thresholds of the predicted mask written to memory (0: the soft mask)
_thresholds = _float_list("thresholds", lambda v: 0.0 <= v < 1.0, "[0, 1)")


def _bonuses(text: str) -> tuple[float, ...]:
    """--keyframe-bonuses: logit bonuses of the keyframe's memory positions (the bound's module imports torch:
    only when the option is given)."""
    from vom_plugin.engine.weights import MAX_KEYFRAME_BONUS as top

    return _float_list("bonuses", lambda v: 0.0 <= v <= top, f"[0, {top:g}]")(text)


def _radii(text: str) -> tuple[int, ...]:
    """--guided-radii: whole radii >= 1."""
    values = _float_list("radii", lambda v: v >= 1 and v == int(v), "whole numbers >= 1")(text)
    return tuple(int(v) for v in values)


_eps = _float_list("eps values", lambda v: v > 0, "> 0")


def _library(value: Path | None) -> Path | None:
    """A --library/--val-library value: given without DIR, the default library."""
    from vom_plugin.locations import clip_library_dir

    return clip_library_dir() if value == _DEFAULT_LIBRARY else value


def _cells(row: dict, sets: dict) -> str:
    """A calibration row's per-set MAD / MSE / dtSSD, as --calibrate prints them."""
    return " | ".join(f"{n} {row[n]['mad']:.1f} / {row[n]['mse']:.2f} / {row[n]['dtssd']:.2f}" for n in sets)


def _calibrate(args: argparse.Namespace) -> int:
    import torch

    from vom_plugin.engine.weights import load_model, read_weights_metadata, save_weights, weights_path
    from vom_plugin.errors import InputError
    from vom_plugin.io.output_guard import ProtectedFiles
    from vom_plugin.train import validate as V

    if args.to is None:
        raise InputError("--calibrate needs --to DEST.safetensors")
    if args.levels_only and (args.guided_radii or args.guided_eps):
        raise InputError("--levels-only keeps the file's guided filter: --guided-radii / --guided-eps search it")
    if args.size % 16:
        raise InputError(f"--size {args.size}: must be a multiple of 16 (the network's stride)")
    source = weights_path(args.calibrate)
    protected = ProtectedFiles()
    protected.add("weights file being calibrated", source)
    if protected.match(args.to) is not None:
        raise InputError(f"--to {args.to}: is the weights file being calibrated ({source}); write the calibrated "
                         "weights to another file")
    _check_weights_destination(args.to, args.replace_shipped)
    torch.set_num_threads(max(1, args.threads))
    model = load_model(source)
    clips = {"synthetic": 8, "hard": args.val_hard, "library": _library(args.val_library)}
    sets = V.validation_sets(8, args.size, **clips)
    if args.val_long > 0:
        longer = V.validation_sets(args.val_long, args.size, **clips)
        sets.update({f"{n}-{args.val_long}f": v for n, v in longer.items()})
    if args.val_shots is not None:
        sets["val-shots"] = V.validation_shots(args.val_shots)
    chosen_on = V.describe_sets(sets)
    meta = read_weights_metadata(source)
    meta.pop("format", None)
    if meta.get("chosen_on", "").startswith("{") and not meta.get("checkpoint", "best").startswith("best"):
        # an export of a checkpoint no validation chose, by a vom that claimed the run's set for any (QA): not carried
        from vom_plugin.train.loop import NOT_CHOSEN

        meta["chosen_on"] = f"{NOT_CHOSEN} (exported from {meta['checkpoint']}, which no validation chose)"
    if args.levels_only:
        (lo, hi), rows = V.calibrate_levels(model, sets, torch.device("cpu"))
    else:
        (radius, eps, mm, kb), (lo, hi), guided_rows, rows = V.calibrate_output(
            model, sets, torch.device("cpu"), radii=args.guided_radii, eps=args.guided_eps,
            memory_masks=args.memory_masks, keyframe_bonuses=args.keyframe_bonuses)
        for r in guided_rows:
            chosen = (r["radius"], r["eps"], r["memory_mask"], r["keyframe_bonus"]) == (radius, eps, mm, kb)
            print(f"guided radius {r['radius']} eps {r['eps']:g} memory mask {r['memory_mask']:g} "
                  f"keyframe bonus {r['keyframe_bonus']:g} (lo {r['lo']:.2f} hi {r['hi']:.2f}): {_cells(r, sets)} | "
                  f"score {r['score']:.3f}{'  <- chosen' if chosen else ''}")
        meta.update({"guided_filter": f"{radius},{eps:g}", "guided_chosen_on": chosen_on, "memory_mask": f"{mm:g}",
                     "keyframe_bonus": f"{kb:g}"})
        for key, searched in (("memory_mask", args.memory_masks), ("keyframe_bonus", args.keyframe_bonuses)):
            if searched is not None:
                meta[f"{key}_chosen_on"] = chosen_on
            else:
                meta.pop(f"{key}_chosen_on", None)
        print(f"guided filter radius {radius} (at 1/4 resolution), eps {eps:g}, memory mask {mm:g}, "
              f"keyframe bonus {kb:g}; its output levels:")
    for r in rows:
        print(f"lo {r['lo']:.2f} hi {r['hi']:.2f}: {_cells(r, sets)} | score {r['score']:.3f}"
              f"{'  <- chosen' if (r['lo'], r['hi']) == (lo, hi) else ''}")
    with torch.no_grad():
        model.output_levels.copy_(torch.tensor([lo, hi]))
    meta.update({"output_levels": f"{lo:g},{hi:g}", "levels_chosen_on": chosen_on})
    save_weights(model, args.to, fp16=True, metadata=meta)
    print(f"output levels {lo:g}, {hi:g} chosen on {chosen_on}; wrote {args.to}")
    return 0
