"""Score a clip (a sequence of predicted alphas against ground truth) with the reference scalings.

Whole frame (``region="whole"``), as RVM's ``evaluate_lr.py`` and MatAnyone report a trimap-free method:
  MAD x1e3, MSE x1e3, Grad /1e3, Conn /1e3, dtSSD x1e2 (normalised by the pixel count, computed against the
  PREVIOUS frame, first frame 0), SAD /1e3, SSDA raw, MESSDdt = mean over pixels x1e3 (against the previous
  frame; it is a difference of squared errors, so it is scaled like MSE).
Unknown band (``narrow``/``medium``/``wide``), as TCVOM's ``calc_metric.py`` on VideoMatting108:
  MAD ("mSAD") x1e3 and MSE x1e3 (means over the band), SSDA raw, dtSSD and MESSDdt raw sums over the band of
  frame t against the NEXT frame (the last frame counts 0), SAD /1e3, Grad /1e3, Conn /1e3 over the band.
Core and Clear (x1e3, ``metrics.core``/``metrics.clear``) use their own regions in every mode: the solid
interior's shortfall from 1 and the alpha left on the clear background.
Per-frame values are averaged over the frames of the clip; clips are averaged with equal weight. A value that
is not defined for a frame is NaN (None in JSON) and left out of the means, not counted as a perfect 0: a band
or a Core/Clear region the GT does not have in that frame, and a temporal measure whose neighbour frame is not
the next (or previous) frame number (``--frames 1-24x2``, a gap). Predictions outside 0-1 are clipped to it
(``ClipScores.notes`` says where): a lobe below 0 scored "better than perfect" on Clear.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vom_plugin.errors import InputError
from vom_plugin.eval import metrics as M
from vom_plugin.eval.regions import REGIONS, region_mask
from vom_plugin.io.sequence import format_frames

ALL_METRICS = ("MAD", "MSE", "Grad", "Conn", "dtSSD", "MESSDdt", "SAD", "SSDA", "Core", "Clear")
DEFAULT_METRICS = ALL_METRICS

_WHOLE_UNITS = {"MAD": "x1e3", "MSE": "x1e3", "Grad": "/1e3", "Conn": "/1e3", "dtSSD": "x1e2",
                "MESSDdt": "x1e3 (mean)", "SAD": "/1e3", "SSDA": "raw", "Core": "x1e3", "Clear": "x1e3"}
_BAND_UNITS = {"MAD": "x1e3", "MSE": "x1e3", "Grad": "/1e3", "Conn": "/1e3", "dtSSD": "raw",
               "MESSDdt": "raw", "SAD": "/1e3", "SSDA": "raw", "Core": "x1e3", "Clear": "x1e3"}


def units(region: str) -> dict[str, str]:
    return dict(_WHOLE_UNITS if region == "whole" else _BAND_UNITS)


@dataclass
class ClipScores:
    """Scores of one clip: ``per_frame[metric][i]`` for ``frames[i]``, ``mean[metric]`` over the clip."""

    name: str
    region: str
    frames: list[int]
    per_frame: dict[str, list[float]] = field(default_factory=dict)
    mean: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "region": self.region, "units": units(self.region), "frames": self.frames,
                "mean": {m: json_number(v) for m, v in self.mean.items()},
                "per_frame": {m: [json_number(v) for v in vs] for m, vs in self.per_frame.items()}, "notes": self.notes}


def json_number(value: float) -> float | None:
    """A score as JSON has it: NaN (not defined) as null (json.dumps would write NaN, which is not JSON)."""
    return None if math.isnan(value) else value


def _mean(values: Sequence[float]) -> float:
    """The mean of the values defined (NaN: not defined there); NaN when none is."""
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if defined else math.nan


def _as_stack(x: np.ndarray | Sequence[np.ndarray], what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise InputError(f"{what} has shape {arr.shape}; expected (T, H, W) alphas")
    return arr


# past these an alpha is a matte in other units (0-255, 0-65535), which clipping to 0-1 would score as nonsense
_FAR_HIGH, _FAR_LOW = 2.0, -1.0
_UNITS_HINT = "alpha is scored in 0-1 (a matte of 0-255 or 0-65535 values? divide it by 255 or 65535)"


def value_problem(alpha: np.ndarray) -> str | None:
    """What makes one alpha frame (H, W) unscorable, said for a message about it (NaN/Inf with the first pixel's x, y
    in the array's own coordinates; values far outside 0-1), else None. Values a little outside 0-1 are clipped by
    ``evaluate_clip`` with a note, not a problem."""
    a = np.asarray(alpha)
    bad = ~np.isfinite(a)
    if bad.any():
        y, x = np.argwhere(bad)[0]
        return f"{int(bad.sum())} NaN/Inf pixel(s) (first at x={x}, y={y}); expected finite alpha values"
    if a.size and (a.max() > _FAR_HIGH or a.min() < _FAR_LOW):
        worst = f"up to {float(a.max()):.4g}" if a.max() > _FAR_HIGH else f"down to {float(a.min()):.4g}"
        return f"values {worst}: {_UNITS_HINT}"
    return None


def _clipped(alphas: np.ndarray, nums: Sequence[int], what: str, notes: list[str]) -> np.ndarray:
    """``alphas`` clipped to 0-1, with a note naming the frames that were outside (by more than 1e-3); InputError for
    values far outside (``value_problem``), a matte in other units (0-255, 0-65535) that clipping would score as
    nonsense."""
    far = [(n, problem) for n, a in zip(nums, alphas, strict=True) if (problem := value_problem(a))]
    if far:  # the first frame's words, and which frames are so (review: -5 in frame 0 read as frame 1's 255's)
        n, problem = far[0]
        more = f" (frames {format_frames([m for m, _ in far])} are far outside 0-1)" if len(far) > 1 else ""
        raise InputError(f"{what} frame {n}: {problem}{more}")
    outside = [n for i, n in enumerate(nums) if alphas[i].min() < -1e-3 or alphas[i].max() > 1 + 1e-3]
    if outside:
        notes.append(f"{what} values outside 0-1 clipped to it in frame(s) {format_frames(outside)}")
    return np.clip(alphas, 0.0, 1.0)


def evaluate_clip(pred: np.ndarray | Sequence[np.ndarray], gt: np.ndarray | Sequence[np.ndarray], *,
                  region: str = "whole", frames: Sequence[int] | None = None,
                  metrics: Sequence[str] | None = None, name: str = "clip",
                  flows: Sequence[np.ndarray] | None = None, gt_name: str | None = None) -> ClipScores:
    """Score predicted alphas [T, H, W] against GT [T, H, W] (values in [0, 1]).

    ``flows`` (optional, from ``gt_flows(gt)``) are the GT flows of MESSDdt, computed once when several
    methods are scored on the same clip.

    ``frames`` are the frame numbers used in error messages and the output (default 0..T-1). A prediction
    with NaN/Inf, or whose size or frame count differs from the GT, raises InputError naming the frame; a GT
    with NaN/Inf names ``gt_name`` where given (the GT's file, not the prediction's: QA).
    """
    if region not in REGIONS:
        raise InputError(f"region {region!r} is not known; expected one of {', '.join(REGIONS)}")
    wanted = list(metrics or DEFAULT_METRICS)
    unknown = [m for m in wanted if m not in ALL_METRICS]
    if unknown:
        raise InputError(f"metric(s) {', '.join(unknown)} not known; expected some of {', '.join(ALL_METRICS)}")
    p = _as_stack(pred, "prediction")
    g = _as_stack(gt, "ground truth")
    nums = list(frames) if frames is not None else list(range(len(g)))
    if len(p) != len(g) or len(nums) != len(g):
        raise InputError(f"{name}: {len(p)} predicted frame(s), {len(g)} ground-truth frame(s), "
                         f"{len(nums)} frame number(s); expected as many of each")
    for i, n in enumerate(nums):
        if p[i].shape != g[i].shape:
            raise InputError(f"{name}: frame {n}: prediction is {p[i].shape[1]}x{p[i].shape[0]}, ground truth "
                             f"{g[i].shape[1]}x{g[i].shape[0]}; expected the same size")
        try:
            M.check_pair(p[i], g[i])
        except InputError as e:
            whose = gt_name if gt_name is not None and str(e).startswith("ground truth") else name
            raise InputError(f"{whose}: frame {n}: {e}") from None
    notes: list[str] = []
    p = _clipped(p, nums, "prediction", notes)
    g = _clipped(g, nums, "ground-truth", notes)  # an EXR render's overshoot scored a perfect prediction as wrong

    whole = region == "whole"
    if "MESSDdt" in wanted and flows is None:
        flows = gt_flows(g)
    masks = [region_mask(g[i], region) for i in range(len(g))]
    out: dict[str, list[float]] = {m: [] for m in wanted}
    spatial = {"MAD": lambda pi, gi, mi: M.mad(pi, gi, mi) * 1e3, "MSE": lambda pi, gi, mi: M.mse(pi, gi, mi) * 1e3,
               "SAD": lambda pi, gi, mi: M.sad(pi, gi, mi) / 1e3, "SSDA": lambda pi, gi, mi: M.ssda(pi, gi, mi),
               "Grad": lambda pi, gi, mi: M.grad(pi, gi, mi) / 1e3,
               "Conn": lambda pi, gi, mi: M.conn(pi, gi, mi) / 1e3}
    for i in range(len(g)):
        pi, gi, mi = p[i], g[i], masks[i]
        band_empty = not whole and not mi.any()  # no unknown band in this frame (a hard-edged GT, the object away)
        for m, fn in spatial.items():
            if m in out:
                out[m].append(math.nan if band_empty else fn(pi, gi, mi))
        # solid interior and clear background: their own regions, whatever ``region`` is (NaN where absent)
        if "Core" in out:
            out["Core"].append(M.core(pi, gi) * 1e3)
        if "Clear" in out:
            out["Clear"].append(M.clear(pi, gi) * 1e3)
        # temporal measures: whole frame looks back (RVM: the first frame counts 0), the band looks forward
        # (TCVOM: the last frame counts 0); a neighbour that is not the adjacent frame number: not defined
        j0, j1 = (i - 1, i) if whole else (i, i + 1)
        if j0 < 0 or j1 >= len(g):
            edge = math.nan if band_empty else 0.0  # no band at all: not a perfect 0
        elif nums[j1] - nums[j0] != 1:
            edge = math.nan
        else:
            edge = None
        if "dtSSD" in out:
            if edge is not None:
                out["dtSSD"].append(edge)
            elif whole:
                out["dtSSD"].append(M.dtssd(p[j0], p[j1], g[j0], g[j1]) * 1e2)
            else:
                out["dtSSD"].append(M.dtssd(p[j0], p[j1], g[j0], g[j1], masks[j0], normalise=False)
                                    if masks[j0].any() else math.nan)
        if "MESSDdt" in out:
            if edge is not None:
                out["MESSDdt"].append(edge)
            elif whole:
                out["MESSDdt"].append(M.messddt(p[j0], p[j1], g[j0], g[j1], flow=flows[j0]) / gi.size * 1e3)
            else:
                out["MESSDdt"].append(M.messddt(p[j0], p[j1], g[j0], g[j1], masks[j0], masks[j1],
                                                flow=flows[j0]) if masks[j0].any() else math.nan)
    adjacent = any(b - a == 1 for a, b in zip(nums, nums[1:], strict=False))
    for m in ("dtSSD", "MESSDdt"):  # the edge frame's convention 0 only beside measured pairs: alone it read perfect
        if m in out and not adjacent:
            out[m] = [math.nan] * len(out[m])
    for m, values in out.items():
        missing = [n for n, v in zip(nums, values, strict=True) if math.isnan(v)]
        if missing:
            why = _WHY.get(m, _WHY["band"])
            if m in ("dtSSD", "MESSDdt") and not adjacent:  # a single frame, or frames on twos: not the band's fault
                why = "no two of the scored frames are adjacent frame numbers"
            elif m in ("dtSSD", "MESSDdt") and whole:  # the whole frame has no band to be empty
                why = "the frame before it is not among the scored frames"
            elif m in ("dtSSD", "MESSDdt"):
                why = "the frame after it is not among the scored frames, or the band is empty"

            notes.append(f"{m} not defined in frame(s) {format_frames(missing)} ({why}): left out of the mean")
    mean = {m: _mean(v) for m, v in out.items()}
    return ClipScores(name=name, region=region, frames=[int(n) for n in nums], per_frame=out, mean=mean, notes=notes)


_WHY = {"Core": "the ground truth has no solid interior there",
        "Clear": "the ground truth has no clear background there",
        "band": "the ground truth has no unknown band there"}


def gt_flows(gt: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """Farneback flow from each GT frame to the next (len T-1), as MESSDdt uses it."""
    g = _as_stack(gt, "ground truth")
    return [M.farneback_flow(g[i], g[i + 1]) for i in range(len(g) - 1)]


def mean_over_clips(clips: Sequence[ClipScores]) -> dict[str, float]:
    """Equal-weight mean of each metric over clips (the reference evaluations' final number)."""
    if not clips:
        return {}
    keys = [k for k in clips[0].mean if all(k in c.mean for c in clips)]
    return {k: _mean([c.mean[k] for c in clips]) for k in keys}
