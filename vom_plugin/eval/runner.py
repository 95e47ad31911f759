"""The benchmark runner: every method on every clip from the same first-frame roto, scored the same way.

A method is a function ``(frames, roto, gt) -> alpha``: ``frames`` float32 [T, H, W, 3] display-referred in
[0, 1] (``io.to_network`` of the linear plate), ``roto`` float32 [H, W] {0, 1} on frame 0, ``gt`` the GT
alphas (only the oracle may look), ``alpha`` float32 [T, H, W]. The vom model runs through the render's own
pass runner (``engine.passes.run_clip``): the same working size, padding, propagation, blend and guided lift
as ``vom render``, with the frames in memory instead of files.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vom_plugin.errors import InputError
from vom_plugin.eval.baselines import BASELINE_NAMES, MAX_MATTING_SIDE, TRIMAP_RADIUS, baseline
from vom_plugin.eval.clips import EvalClip, coarse_roto
from vom_plugin.eval.scores import ClipScores, evaluate_clip, gt_flows, json_number, mean_over_clips, units
from vom_plugin.grammar import default, parse_value

MethodFn = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], np.ndarray]
# called with (clip, method name, alphas [T, H, W]) after each method, e.g. to save the alphas
AlphaSink = Callable[[EvalClip, str, np.ndarray], None]
DEFAULT_METHODS = ("vom", "static", "flow", "flow_cf", "oracle_cf")
TABLE_METRICS = ("MAD", "MSE", "Grad", "Conn", "dtSSD", "MESSDdt", "Core", "Clear")


def vom_method(model: Any, *, device: str = "cpu", working_size: int | None = None,
               memory: str | None = None, top_k: int | None = None) -> MethodFn:
    """The HSTSG network as a benchmark method, run by the render's pass runner (torch and the engine are
    imported on first use). ``working_size``, ``memory`` and ``top_k`` default to the node definition's:
    what a render uses."""
    working_size = parse_value("working_size", default("working_size") if working_size is None else working_size)
    memory = parse_value("memory", default("memory") if memory is None else memory)
    top_k = parse_value("top_k", default("top_k") if top_k is None else top_k)

    def run(frames: np.ndarray, roto: np.ndarray, gt: np.ndarray | None = None) -> np.ndarray:
        from vom_plugin.engine.passes import run_clip

        return run_clip(model, frames, {0: roto}, working_size=working_size, memory=memory, top_k=top_k,
                        device=device)

    return run


def make_methods(names: Sequence[str], *, model: Any = None, device: str = "cpu",
                 working_size: int | None = None, matting_side: int = MAX_MATTING_SIDE,
                 trimap_radius: int = TRIMAP_RADIUS) -> dict[str, MethodFn]:
    """name -> method for ``names`` (baselines: static, flow, flow_cf, oracle_cf; "vom" needs ``model``).

    ``matting_side`` caps the closed-form solves' long side; ``trimap_radius`` is their unknown band (px).
    """
    out: dict[str, MethodFn] = {}
    for name in names:
        if name == "vom":
            if model is None:
                raise InputError("method 'vom' needs a model (--model NAME|PATH)")
            out[name] = vom_method(model, device=device, working_size=working_size)
        elif name in BASELINE_NAMES:
            out[name] = baseline(name, max_side=matting_side, radius=trimap_radius)
        else:
            raise InputError(f"method {name!r} is not known; expected some of {', '.join(DEFAULT_METHODS)}")
    return out


def _fit(clip: EvalClip, max_side: int | None) -> EvalClip:
    """The clip downscaled (area filter) so its long side is at most ``max_side``; scoring happens there."""
    t, h, w = clip.gt.shape
    if not max_side or max(h, w) <= max_side:
        return clip
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    plate = np.stack([cv2.resize(p, size, interpolation=cv2.INTER_AREA) for p in clip.plate])
    gt = np.stack([cv2.resize(g, size, interpolation=cv2.INTER_AREA) for g in clip.gt])
    roto = None
    if clip.roto is not None:
        roto = (cv2.resize(clip.roto, size, interpolation=cv2.INTER_AREA) >= 0.5).astype(np.float32)
    return EvalClip(clip.name, plate, gt, clip.frames, roto, clip.colorspace, clip.gt_checked)


@dataclass
class ClipResult:
    name: str
    frames: list[int]
    size: tuple[int, int]  # (width, height) scored at
    roto_source: str  # "file" (the shot's roto) or "coarsened GT"
    scores: dict[str, ClipScores] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    colorspace: str = "lin_rec709"  # what the plate was read as (a shot's shot.yaml may say)


@dataclass
class BenchmarkResult:
    region: str
    methods: list[str]
    clips: list[ClipResult] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def mean(self) -> dict[str, dict[str, float]]:
        return {m: mean_over_clips([c.scores[m] for c in self.clips if m in c.scores]) for m in self.methods}

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "units": units(self.region),
            "methods": self.methods,
            "settings": self.settings,
            "mean": {m: {k: json_number(v) for k, v in ms.items()} for m, ms in self.mean().items()},
            "clips": [{"name": c.name, "frames": c.frames, "size": list(c.size), "roto": c.roto_source,
                       "colorspace": c.colorspace, "seconds": c.seconds,
                       "methods": {m: s.to_dict() for m, s in c.scores.items()}}
                      for c in self.clips],
        }


def run_clip(clip: EvalClip, methods: dict[str, MethodFn], *, region: str = "whole",
             metrics: Sequence[str] | None = None, progress: Callable[[str], None] | None = None,
             on_alpha: AlphaSink | None = None) -> ClipResult:
    from vom_plugin.io import frames_to_network

    frames = frames_to_network(clip.plate, clip.colorspace)  # the roto's frame first: the render's first keyframe
    roto = clip.roto if clip.roto is not None else coarse_roto(clip.gt[0])
    t, h, w = clip.gt.shape
    result = ClipResult(clip.name, list(clip.frames), (w, h), "file" if clip.roto is not None else "coarsened GT",
                        colorspace=clip.colorspace)
    flows = gt_flows(clip.gt) if metrics is None or "MESSDdt" in metrics else None  # shared by all methods
    for name, fn in methods.items():
        if progress:
            progress(f"{clip.name}: {name}")
        start = time.perf_counter()
        alpha = np.asarray(fn(frames, roto, clip.gt), dtype=np.float32)
        result.seconds[name] = round(time.perf_counter() - start, 3)
        if alpha.shape != clip.gt.shape:
            raise RuntimeError(f"method {name} returned alphas of shape {alpha.shape}, expected {clip.gt.shape}")
        if on_alpha:
            on_alpha(clip, name, alpha)
        result.scores[name] = evaluate_clip(alpha, clip.gt, region=region, frames=clip.frames, metrics=metrics,
                                            name=f"{clip.name} ({name})", flows=flows)
    return result


def run_benchmark(clips: Iterable[EvalClip], methods: dict[str, MethodFn], *, region: str = "whole",
                  metrics: Sequence[str] | None = None, max_side: int | None = None,
                  progress: Callable[[str], None] | None = None, on_alpha: AlphaSink | None = None
                  ) -> BenchmarkResult:
    result = BenchmarkResult(region=region, methods=list(methods))
    for clip in clips:
        _refuse_bad_gt(clip)  # before any method renders it, in the clip's own pixels (not --size's)
        result.clips.append(run_clip(_fit(clip, max_side), methods, region=region, metrics=metrics,
                                     progress=progress, on_alpha=on_alpha))
    if not result.clips:
        raise InputError("the benchmark data holds no clips")
    return result


def _refuse_bad_gt(clip: EvalClip) -> None:
    """InputError naming the clip and the frame where its ground truth has NaN/Inf or values far outside 0-1 (found
    after every method had rendered it, unnamed, with a numpy warning from the flows, QA)."""
    from vom_plugin.eval.scores import value_problem

    if clip.gt_checked:  # by load_shot, naming the file
        return
    for f, g in zip(clip.frames, clip.gt, strict=True):
        problem = value_problem(g)
        if problem:
            raise InputError(f"clip {clip.name}: ground truth frame {f}: {problem}")


def clip_notes(result: BenchmarkResult) -> list[str]:
    """Each clip's scoring notes (ground truth clipped to 0-1, a value not defined in some frames) as lines that name
    the clip, and the method where not every method has the note."""
    lines = []
    for c in result.clips:
        said: dict[str, list[str]] = {}  # note -> the methods that have it, in order
        for m, s in c.scores.items():
            for note in s.notes:
                said.setdefault(note, []).append(m)
        for note, methods in said.items():
            who = c.name if len(methods) == len(c.scores) else f"{c.name} ({', '.join(methods)})"
            lines.append(f"{who}: {note}")
    return lines


def alpha_saver(folder: str | Path) -> AlphaSink:
    """An ``on_alpha`` that writes ``<folder>/<clip>/<method>/alpha.####.exr`` (half float, channel A), so the
    mattes can be compared in a viewer or in Nuke."""
    root = Path(folder)

    def save(clip: EvalClip, method: str, alpha: np.ndarray) -> None:
        from vom_plugin.atomic import check_replaceable, make_folder
        from vom_plugin.io import ImageInfo, frame_path, write_alpha

        # made or entered only as plain folders (a link there led the frames out of --out, over a user's files)
        for folder in (root / clip.name, root / clip.name / method):
            if folder.is_symlink():
                raise InputError(f"--save-alphas: {folder} is a link; vom writes its frames into folders of its own "
                                 "under --out")
            make_folder(folder, "--save-alphas")
        out = root / clip.name / method
        info = ImageInfo.for_size(alpha.shape[2], alpha.shape[1])
        paths = [frame_path(out / "alpha.####.exr", f) for f in clip.frames]
        for path in paths:  # before any is written: an EXR of the user's of that name stays as it is
            check_replaceable(path, lambda start: b"vom:benchmark_method" in start, "--save-alphas")
        for path, a in zip(paths, alpha, strict=True):
            write_alpha(path, a, info, metadata={"benchmark_method": method})

    return save


def format_table(result: BenchmarkResult, metrics: Sequence[str] = TABLE_METRICS) -> str:
    """A paper-style table: one row per (clip, method), then the mean over clips per method."""
    u = units(result.region)
    cols = [m for m in metrics if any(m in s.mean for c in result.clips for s in c.scores.values())]
    head = ["clip", "method"] + [f"{m} {u[m]}" for m in cols] + ["sec"]
    rows: list[list[str]] = []
    for c in result.clips:
        for m, s in c.scores.items():
            rows.append([c.name, m] + [_cell(s.mean[k]) for k in cols] + [f"{c.seconds.get(m, 0.0):.1f}"])
    means = result.mean()
    fewer = []  # a metric not defined on every clip (Core without a solid part): its mean is over fewer clips
    for m in result.methods:
        ran = [c for c in result.clips if m in c.seconds]
        secs = sum(c.seconds[m] for c in ran) / max(len(ran), 1)  # a clip's, as in the rows above
        rows.append([f"MEAN ({len(result.clips)})", m] + [_cell(means[m].get(k, float('nan'))) for k in cols]
                    + [f"{secs:.1f}"])
        for k in cols:  # a clip the method did not score, or where the metric is not defined
            left = [c.name for c in result.clips if m not in c.scores or c.scores[m].mean.get(k, float("nan"))
                    != c.scores[m].mean.get(k, float("nan"))]
            if left and len(left) < len(result.clips):
                fewer.append(f"{m} {k}: the mean of {len(result.clips) - len(left)} of {len(result.clips)} clips "
                             f"(not defined on {', '.join(left)})")
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]

    def line(r: list[str]) -> str:
        return "  ".join(v.ljust(widths[i]) if i < 2 else v.rjust(widths[i]) for i, v in enumerate(r))

    sep = "-" * len(line(head))
    body = [line(r) for r in rows]
    n_clip_rows = len(rows) - len(result.methods)
    title = f"region: {result.region}"
    st = result.settings
    if st:  # what made these numbers, with them: a table pasted from a quick run must not read as a full one
        weights = (st.get("weights") or {}).get("digest")
        # without the vom method there is no model and no working size to state
        ran = sorted({tuple(v) for v in (st.get("network_size") or {}).values()})
        # where the network ran: the working size is a cap (a small clip is enlarged 2x at most: "working size 960"
        # was said of a network that ran at 128x128, QA)
        at = (f" (the network at {', '.join(f'{w}x{h}' for w, h in ran)})" if ran and len(ran) <= 3 else
              f" (the network at {len(ran)} sizes)" if ran else "")
        made = (f"; model {st.get('model')}" + (f" ({weights})" if weights else "")
                + f", working size {st.get('working_size')}{at}") if st.get("model") is not None else ""
        # the size the clips were scored at (Grad, Conn, SAD and the bands move with it: a --size 128 table read as
        # the full-size one, QA), and where the network ran
        sizes = sorted({tuple(c.size) for c in result.clips})
        scored = ", ".join(f"{w}x{h}" for w, h in sizes) if len(sizes) <= 3 else f"{len(sizes)} sizes"
        title += (f"; data {st.get('data')}{made}; frames {st.get('frames') or 'all'}; scored at {scored or '-'}"
                  + (f"; device {st.get('device')}" if st.get("device") else "")
                  + f"; plates read as {', '.join(st.get('colorspace') or []) or '-'}"
                  + f"; rotos: {', '.join(sorted({c.roto_source for c in result.clips})) or '-'}")
    return "\n".join([title, line(head), sep] + body[:n_clip_rows] + [sep] + body[n_clip_rows:] + fewer)


def _cell(value: float) -> str:
    return "-" if value != value else f"{value:.3f}"  # NaN: not defined (no frame of the clip has it)
