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
Per-frame values are averaged over the frames of the clip; clips are averaged with equal weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vom_plugin.errors import InputError
from vom_plugin.eval import metrics as M
from vom_plugin.eval.regions import REGIONS, region_mask

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

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "region": self.region, "units": units(self.region), "frames": self.frames,
                "mean": self.mean, "per_frame": self.per_frame}


def _as_stack(x: np.ndarray | Sequence[np.ndarray], what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise InputError(f"{what} has shape {arr.shape}; expected (T, H, W) alphas")
    return arr


def evaluate_clip(pred: np.ndarray | Sequence[np.ndarray], gt: np.ndarray | Sequence[np.ndarray], *,
                  region: str = "whole", frames: Sequence[int] | None = None,
                  metrics: Sequence[str] | None = None, name: str = "clip",
                  flows: Sequence[np.ndarray] | None = None) -> ClipScores:
    """Score predicted alphas [T, H, W] against GT [T, H, W] (values in [0, 1]).

    ``flows`` (optional, from ``gt_flows(gt)``) are the GT flows of MESSDdt, computed once when several
    methods are scored on the same clip.

    ``frames`` are the frame numbers used in error messages and the output (default 0..T-1). A prediction
    with NaN/Inf, or whose size or frame count differs from the GT, raises InputError naming the frame.
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
            raise InputError(f"{name}: frame {n}: {e}") from None

    whole = region == "whole"
    if "MESSDdt" in wanted and flows is None:
        flows = gt_flows(g)
    masks = [region_mask(g[i], region) for i in range(len(g))]
    out: dict[str, list[float]] = {m: [] for m in wanted}
    for i in range(len(g)):
        pi, gi, mi = p[i], g[i], masks[i]
        if "MAD" in out:
            out["MAD"].append(M.mad(pi, gi, mi) * 1e3)
        if "MSE" in out:
            out["MSE"].append(M.mse(pi, gi, mi) * 1e3)
        if "SAD" in out:
            out["SAD"].append(M.sad(pi, gi, mi) / 1e3)
        if "SSDA" in out:
            out["SSDA"].append(M.ssda(pi, gi, mi))
        if "Grad" in out:
            out["Grad"].append(M.grad(pi, gi, mi) / 1e3)
        if "Conn" in out:
            out["Conn"].append(M.conn(pi, gi, mi) / 1e3)
        # solid interior and clear background: their own regions, whatever ``region`` is
        if "Core" in out:
            out["Core"].append(M.core(pi, gi) * 1e3)
        if "Clear" in out:
            out["Clear"].append(M.clear(pi, gi) * 1e3)
        # temporal measures: whole frame looks back (RVM), the band looks forward (TCVOM)
        if whole:
            j0, j1 = i - 1, i
        else:
            j0, j1 = i, i + 1
        has_pair = j0 >= 0 and j1 < len(g)
        if "dtSSD" in out:
            if not has_pair:
                out["dtSSD"].append(0.0)
            elif whole:
                out["dtSSD"].append(M.dtssd(p[j0], p[j1], g[j0], g[j1]) * 1e2)
            else:
                out["dtSSD"].append(M.dtssd(p[j0], p[j1], g[j0], g[j1], masks[j0], normalise=False))
        if "MESSDdt" in out:
            if not has_pair:
                out["MESSDdt"].append(0.0)
            elif whole:
                out["MESSDdt"].append(M.messddt(p[j0], p[j1], g[j0], g[j1], flow=flows[j0]) / gi.size * 1e3)
            else:
                out["MESSDdt"].append(M.messddt(p[j0], p[j1], g[j0], g[j1], masks[j0], masks[j1],
                                                     flow=flows[j0]))
    mean = {m: float(np.mean(v)) for m, v in out.items()}
    return ClipScores(name=name, region=region, frames=[int(n) for n in nums], per_frame=out, mean=mean)


def gt_flows(gt: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """Farneback flow from each GT frame to the next (len T-1), as MESSDdt uses it."""
    g = _as_stack(gt, "ground truth")
    return [M.farneback_flow(g[i], g[i + 1]) for i in range(len(g) - 1)]


def mean_over_clips(clips: Sequence[ClipScores]) -> dict[str, float]:
    """Equal-weight mean of each metric over clips (the reference evaluations' final number)."""
    if not clips:
        return {}
    keys = [k for k in clips[0].mean if all(k in c.mean for c in clips)]
    return {k: float(np.mean([c.mean[k] for c in clips])) for k in keys}
