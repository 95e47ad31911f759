"""Validation during training: the fixed held-out synthetic set and the rendered shots (never trained on).

Metrics follow the conventions in NOTES.md (MAD and MSE x1e3 over the whole frame, dtSSD x1e2 with the
first frame counting 0), averaged over frames then clips: ``vom eval``'s implementation, on predictions made by
the render's pass runner, so that training numbers and benchmark numbers are the same numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vom_plugin.engine.passes import run_clip
from vom_plugin.errors import InputError
from vom_plugin.eval.scores import evaluate_clip
from vom_plugin.grammar import default
from vom_plugin.train.data import (
    HARD_SEED_OFFSET,
    encode_clip,
    hard_validation_clips,
    network_encoder,
    validation_clips,
)
from vom_plugin.train.synth import coarse_roto


def clip_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """MAD, MSE (per frame, averaged) and dtSSD of a [T, H, W] prediction: ``vom eval``'s numbers."""
    m = evaluate_clip(pred, gt, metrics=["MAD", "MSE", "dtSSD"]).mean
    # a one-frame clip has no temporal measure (vom eval says so); for the selection score it has no flicker
    dtssd = 0.0 if math.isnan(m["dtSSD"]) else m["dtSSD"]
    return {"mad": m["MAD"], "mse": m["MSE"], "dtssd": dtssd}


def predict_clip(model: torch.nn.Module, frames: torch.Tensor, roto: torch.Tensor, device: torch.device
                 ) -> torch.Tensor:
    """Alpha [T, H, W] for frames [T, 3, H, W] in network space and roto [1, H, W] of frame 0, computed by the
    render's own pass runner (``engine.passes.run_clip``: what `vom render` computes, with the node definition's
    memory, top_k and working size), so that what selection measures is what ships."""
    model.eval()
    with torch.no_grad():
        alpha = run_clip(model, frames.permute(0, 2, 3, 1).float().cpu().numpy(), {0: roto[0].float().cpu().numpy()},
                         working_size=default("working_size"), memory=default("memory"), top_k=default("top_k"),
                         device=device)
    return torch.from_numpy(alpha).float().clamp(0, 1)


@dataclass
class ValSet:
    name: str
    frames: torch.Tensor  # [T, 3, H, W]
    roto: torch.Tensor  # [1, H, W]
    gt: np.ndarray  # [T, H, W]


def _synthetic(clips: list, rng_offset: int) -> list[ValSet]:
    enc = network_encoder()
    out = []
    for i, clip in enumerate(clips):
        net = encode_clip(clip.plate, enc)
        roto = coarse_roto(clip.alpha[0], np.random.default_rng(rng_offset + i))
        out.append(ValSet(clip.name, torch.from_numpy(net).permute(0, 3, 1, 2).float(),
                          torch.from_numpy(roto)[None], clip.alpha))
    return out


def synthetic_valsets(n: int = 8, frames: int = 8, size: int = 256) -> list[ValSet]:
    """The held-out synthetic set (``data.validation_clips``: difficulty spread 0.4 -> 1.0)."""
    return _synthetic(validation_clips(n, frames, (size, size)), 0)


def hard_valsets(n: int = 8, frames: int = 8, size: int = 256) -> list[ValSet]:
    """The held-out synthetic set at full difficulty (``data.hard_validation_clips``). The spread set alone
    under-weights what the benchmark and real plates are made of: on it the shipped file was level with
    the oracle at 160 px while behind it on ``synth:8``."""
    return _synthetic(hard_validation_clips(n, frames, (size, size)), HARD_SEED_OFFSET)


def library_valsets(root: Path, frames: int = 8, size: int = 256, limit: int | None = None) -> list[ValSet]:
    """One validation clip per held-out rendered clip of a library (``clips.is_validation_clip``; the first
    ``limit`` by name), composited over the built-in photographs only (so the set does not depend on what a
    machine has installed)."""
    from vom_plugin.train.backgrounds import BackgroundBank
    from vom_plugin.train.clips import ClipLibrary, LibrarySource
    from vom_plugin.train.data import VAL_SEED_BASE

    enc = network_encoder()
    lib = ClipLibrary(root, "val", flag="--val-library")
    bank = BackgroundBank(files=[])
    out = []
    for i, rec in enumerate(lib.clips[:limit]):
        clip = LibrarySource(lib.subset([rec]), VAL_SEED_BASE, bank).clip(0, i, frames=frames, size=(size, size))
        net = encode_clip(clip.plate, enc)
        roto = coarse_roto(clip.alpha[0], np.random.default_rng(i))
        out.append(ValSet(rec.name, torch.from_numpy(net).permute(0, 3, 1, 2).float(),
                          torch.from_numpy(roto)[None], clip.alpha))
    return out


def validation_sets(frames: int, size: int, *, synthetic: int, hard: int, library: Path | None,
                    library_limit: int | None = 10) -> dict[str, list[ValSet]]:
    """The selection set's clips at one length: ``synthetic`` spread clips, ``hard`` full-difficulty ones (none
    for 0) and a library's held-out clips (the first ``library_limit``; none without ``library``)."""
    sets = {"synthetic": synthetic_valsets(synthetic, frames, size)}
    if hard > 0:
        sets["hard"] = hard_valsets(hard, frames, size)
    if library is not None:
        sets["library"] = library_valsets(library, frames, size, limit=library_limit)
    return sets


def load_shot(folder: Path) -> ValSet:
    """One shot folder (plate.####.exr, gt.####.exr, roto of its first frame) as a validation set, read by the
    benchmark's own reader (``eval.clips.load_shot``)."""
    from vom_plugin.eval.clips import load_shot as read_shot

    clip = read_shot(folder)
    if clip.roto is None:
        raise InputError(f"shot folder {folder}: no roto of its first frame (roto.{clip.frames[0]:04d}.exr)")
    from vom_plugin.io import frames_to_network

    # as `vom benchmark` reads it (eval.runner): in the shot's own colour space, at the render's exposure
    net = np.clip(frames_to_network(clip.plate, clip.colorspace), 0, 1)
    return ValSet(clip.name, torch.from_numpy(net).permute(0, 3, 1, 2).float(),
                  torch.from_numpy((clip.roto > 0.5).astype(np.float32))[None], np.clip(clip.gt, 0, 1))


def shot_valsets(root: Path) -> list[ValSet]:
    if not root.is_dir():
        return []
    return [load_shot(d) for d in sorted(root.iterdir())
            if d.is_dir() and not d.name.startswith(".") and any(d.glob("plate.*.exr"))]  # as eval.clips


def validation_shots(root: Path, library: Path | None = None) -> list[ValSet]:
    """The validation shots in ``root`` (``vom clips shots``: rendered clips never trained on, laid out as the
    test shots); a folder without any is an input error, not an empty set that would score 0. ``library``: the
    run's training library; a shot exported from one of the clips it trains on is refused (it would choose the
    checkpoint that learned it, QA)."""
    root = Path(root)
    if library is not None and root.is_dir():
        from vom_plugin.train.clips import ClipLibrary

        trained = {c.name for c in ClipLibrary(library, "train").clips}
        # by the folder a link names too (review: a link of another name to a trained clip's export passed)
        drawn = sorted(d.name for d in root.iterdir() if d.is_dir() and (d.name in trained
                                                                          or d.resolve().name in trained))
        if drawn:
            raise InputError(f"--val-shots {root}: {', '.join(drawn[:3])}{' ...' if len(drawn) > 3 else ''} "
                             f"{'is a clip' if len(drawn) == 1 else 'are clips'} this run trains on (--library "
                             f"{library}); validation shots come from clips training never draws (its held-out "
                             f"ones, or another library's seeds)")
    if root.is_dir():
        for d in sorted(root.iterdir()):
            # by the folder's own name too: a link named clip_<n> to a test shot passed (QA)
            if (d.is_dir() and not d.name.startswith(".") and any(d.glob("plate.*.exr"))
                    and not (re.fullmatch(r"clip_\d+", d.name) and re.fullmatch(r"clip_\d+", d.resolve().name))):
                # (a dot folder: an export in progress, shot_valsets) the selection set takes only `vom clips shots`
                # exports (clip_<seed>): the rendered test shots (furry_cube, ribbon_pole) are reported, never chosen
                name = d.name if d.resolve().name == d.name else f"{d.name} (a link to {d.resolve()})"
                raise InputError(f"--val-shots {root}: {name} is not a validation shot (`vom clips shots` names "
                                 f"them clip_<seed>); the test shots are reported with --shots, never chosen by")
    if not root.is_dir():  # QA: said as a folder holding no shots
        raise InputError(f"--val-shots {root}: {'not a folder' if root.exists() else 'no such folder'}; make the "
                         f"validation shots with `vom clips shots --data-dir LIBRARY --to DIR`")
    sets = shot_valsets(root)
    if not sets:
        raise InputError(f"--val-shots {root}: no shot folders (plate.####.exr, gt.####.exr, roto.0001.exr) in it; "
                         "make them with `vom clips shots --data-dir LIBRARY --to DIR`")
    return sets


def describe_sets(sets: dict[str, list[ValSet]]) -> str:
    """What a selection was made on, for the weights' metadata: each set's name, clips, frames and size."""
    parts = []
    for name, v in sets.items():
        t, _, h, w = v[0].frames.shape
        size = f"{w} px" if h == w else f"{w}x{h}"
        parts.append(f"{name}({len(v)} clips, {t} frames, {size})")
    return "+".join(parts)


class ValidationStopped(Exception):
    """A validation given up between two clips: the run was asked to stop (``evaluate``'s ``stop``)."""


def evaluate(model: torch.nn.Module, sets: list[ValSet], device: torch.device,
             stop: Callable[[], bool] | None = None) -> dict[str, dict[str, float]]:
    """Per-set metrics plus their mean under the key ``mean``; ValidationStopped before a clip where ``stop()``
    says so (a preempted run's grace period is spent on its checkpoint, not on the rest of a validation)."""
    res = {}
    for s in sets:
        if stop is not None and stop():
            raise ValidationStopped
        res[s.name] = clip_metrics(predict_clip(model, s.frames, s.roto, device).numpy(), s.gt)
    if res:
        res["mean"] = {k: float(np.mean([r[k] for r in res.values()])) for k in ("mad", "mse", "dtssd")}
    return res


def static_roto_metrics(sets: list[ValSet]) -> dict[str, dict[str, float]]:
    """The trivial baseline: the frame-0 roto held for every frame."""
    res = {s.name: clip_metrics(np.repeat(s.roto.numpy(), s.gt.shape[0], 0), s.gt) for s in sets}
    if res:
        res["mean"] = {k: float(np.mean([r[k] for r in res.values()])) for k in ("mad", "mse", "dtssd")}
    return res


# Candidate black and white points of the published alpha (HSTSG.publish), searched on validation clips.
LEVELS_LO = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2)
LEVELS_HI = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75)


def apply_levels(alpha: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((alpha - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def level_metrics(pred: np.ndarray, gt: np.ndarray, levels: list[tuple[float, float]]) -> list[dict[str, float]]:
    """``clip_metrics`` of ``pred`` [T, H, W] under each (lo, hi) of ``levels``, in one vectorised pass per
    candidate: the same numbers (MAD and MSE over equal-sized frames are the mean of the frames' means;
    dtSSD looks back, frame 0 counts 0), without the per-frame checks that made a 32-shot search take
    minutes per candidate."""
    p = torch.from_numpy(np.ascontiguousarray(pred, np.float32))
    g = torch.from_numpy(np.ascontiguousarray(gt, np.float32))
    t = p.shape[0]
    out = []
    for lo, hi in levels:
        d = ((p - lo) / (hi - lo)).clamp_(0.0, 1.0).sub_(g)
        dt = 0.0
        if t > 1:
            e = d[1:] - d[:-1]
            dt = float(e.square().flatten(1).mean(1).double().sqrt().sum()) * 1e2 / t
        out.append({"mad": float(d.abs().mean()) * 1e3, "mse": float(d.square().mean()) * 1e3, "dtssd": dt})
    return out


def choose_levels(preds: dict[str, list[np.ndarray]], gts: dict[str, list[np.ndarray]]
                  ) -> tuple[tuple[float, float], list[dict]]:
    """The (lo, hi) of the grid with the lowest summed ``val_score`` over the named sets of clips (each set's
    metrics averaged over its clips, as validation does); returns it and every candidate's row."""
    from vom_plugin.train.loop import val_score

    grid = [(lo, hi) for lo in LEVELS_LO for hi in LEVELS_HI]
    per_clip = {name: [level_metrics(p, g, grid) for p, g in zip(ps, gts[name], strict=True)]
                for name, ps in preds.items()}
    rows = []
    for i, (lo, hi) in enumerate(grid):
        row: dict = {"lo": lo, "hi": hi, "score": 0.0}
        for name, clips in per_clip.items():
            mean = {k: float(np.mean([c[i][k] for c in clips])) for k in ("mad", "mse", "dtssd")}
            row[name] = mean
            row["score"] += val_score(mean)
        rows.append(row)
    best = min(rows, key=lambda r: r["score"])
    return (best["lo"], best["hi"]), rows


def calibrate_levels(model: torch.nn.Module, sets: dict[str, list[ValSet]], device: torch.device
                     ) -> tuple[tuple[float, float], list[dict]]:
    """Choose ``model``'s output levels on validation ``sets``: its alphas are computed once through the
    render path with the identity levels, then every candidate is scored (``choose_levels``)."""
    with torch.no_grad():
        model.output_levels.copy_(torch.tensor([0.0, 1.0]))
    preds = {n: [predict_clip(model, s.frames, s.roto, device).numpy() for s in v] for n, v in sets.items()}
    return choose_levels(preds, {n: [s.gt for s in v] for n, v in sets.items()})


# Candidate guided filter settings (radius at 1/4 resolution, eps), each scored with its best output levels.
# The filter runs inside the network (the memory reads its output), so every candidate is a full prediction.
GUIDED_RADII = (6, 8, 10)
GUIDED_EPS = (1e-3, 3e-4, 1e-4)


def calibrate_output(model: torch.nn.Module, sets: dict[str, list[ValSet]], device: torch.device,
                     radii: tuple[int, ...] | None = None, eps: tuple[float, ...] | None = None,
                     memory_masks: tuple[float, ...] | None = None, keyframe_bonuses: tuple[float, ...] | None = None,
                     ) -> tuple[tuple[int, float, float, float], tuple[float, float], list[dict], list[dict]]:
    """Choose ``model``'s guided filter (radius, eps), output levels and, given ``memory_masks``, the threshold of
    the predicted mask written to memory (``HSTSG.memory_mask_of``), given ``keyframe_bonuses`` the keyframe's
    logit bonus in memory reads (``HSTSG.keyframe_bonus``; without them the model's own are kept) together on
    validation ``sets``: every (radius, eps, threshold, bonus) is a full prediction scored with its own best levels.

    Returns ((radius, eps, threshold, bonus), levels, one row per candidate with its best levels and score, the
    chosen candidate's levels rows). A network without a guided filter (radius 0) keeps it. The model is left
    with the chosen settings."""
    decoder = model.decoder
    radii, eps = radii or GUIDED_RADII, eps or GUIDED_EPS
    guided = [(r, e) for r in radii for e in eps] if decoder.guided_radius > 0 else [(0, decoder.guided_eps)]
    grid = [(r, e, t, b) for r, e in guided for t in (memory_masks or (float(model.memory_mask),))
            for b in (keyframe_bonuses or (float(model.keyframe_bonus),))]
    rows, results = [], []

    def use(radius: int, e: float, threshold: float, bonus: float) -> None:
        decoder.set_guided(radius, e)
        with torch.no_grad():
            model.memory_mask.fill_(threshold)
            model.keyframe_bonus.fill_(bonus)

    for candidate in grid:
        use(*candidate)
        levels, level_rows = calibrate_levels(model, sets, device)
        radius, e, threshold, bonus = candidate
        rows.append({"radius": radius, "eps": e, "memory_mask": threshold, "keyframe_bonus": bonus,
                     **next(r for r in level_rows if (r["lo"], r["hi"]) == levels)})
        results.append((candidate, levels, level_rows))
    chosen, levels, level_rows = results[min(range(len(rows)), key=lambda i: rows[i]["score"])]
    use(*chosen)
    with torch.no_grad():
        model.output_levels.copy_(torch.tensor(levels))
    return chosen, levels, rows, level_rows
