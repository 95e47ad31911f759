"""Which propagation passes a shot needs, and how to blend two passes that meet.

Given the frames of the timeline and the keyframes (frames with a roto):
- frames after the last keyframe: one forward pass from it;
- frames before the first keyframe: one backward pass from it;
- frames between two keyframes: a forward pass from the earlier and a backward pass from the later one,
  blended by distance (``blend_weight``), so the matte does not jump when the next keyframe arrives.
Every pass lists its frames in propagation order, starting with its keyframe (the memory is written from
it). Each keyframe has a forward pass (possibly just the keyframe itself); its backward pass exists when
frames lie before it. Distances are in frame numbers, so stepped ranges (1001-1100x2) blend correctly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vom_plugin.errors import InputError


@dataclass(frozen=True)
class Pass:
    keyframe: int
    direction: int  # +1 forward, -1 backward
    frames: list[int] = field(default_factory=list)  # propagation order, frames[0] == keyframe
    toward: int | None = None  # the keyframe at the far end (whose pass this one is blended with), if any

    def weight(self, frame: int) -> float:
        """This pass's blend weight at `frame` (the weights of the passes covering a frame sum to 1)."""
        if frame == self.keyframe:
            return 1.0 if self.direction > 0 else 0.0  # the forward pass owns the keyframe's own frame
        if self.toward is None:
            return 1.0
        # one number per frame, the earlier keyframe's weight: the later one's is its exact complement
        early, late = sorted((self.keyframe, self.toward))
        w = blend_weight(frame, early, late)
        return w if self.keyframe == early else 1.0 - w


def blend(frame: int, parts: list[tuple[Pass, Any]]) -> Any:
    """The alphas of the passes covering ``frame`` blended by their weights (in keyframe order); one pass's
    alpha is returned as it is. The one blend rule of every render, evaluation and validation."""
    if len(parts) == 1:
        return parts[0][1]
    parts = sorted(parts, key=lambda pa: (pa[0].keyframe, pa[0].direction))
    return sum(p.weight(frame) * a for p, a in parts)


def blend_weight(frame: int, kf_from: int, kf_to: int | None) -> float:
    """Weight of the pass coming from `kf_from` at `frame`, when the pass from `kf_to` also covers it.

    Linear in distance: 1 at kf_from, 0 at kf_to; 1 when there is no other pass.
    """
    if kf_to is None or kf_to == kf_from:
        return 1.0
    w = (kf_to - frame) / (kf_to - kf_from)
    return float(min(1.0, max(0.0, w)))


def plan(frames: list[int], keyframes: list[int]) -> list[Pass]:
    """Passes covering every frame of `frames` (keyframes not in `frames` are added to the timeline)."""
    if not keyframes:
        raise InputError("keyframes: none given; expected at least one frame with a roto")
    kfs = sorted(set(int(k) for k in keyframes))
    timeline = sorted(set(int(f) for f in frames) | set(kfs))
    passes: list[Pass] = []
    for i, kf in enumerate(kfs):
        prev_kf = kfs[i - 1] if i > 0 else None
        next_kf = kfs[i + 1] if i + 1 < len(kfs) else None
        fwd = [f for f in timeline if f >= kf and (next_kf is None or f < next_kf)]
        passes.append(Pass(kf, +1, fwd, next_kf))
        back = [f for f in reversed(timeline) if f <= kf and (prev_kf is None or f > prev_kf)]
        if len(back) > 1:
            passes.append(Pass(kf, -1, back, prev_kf))
    return passes


def all_passes(timeline: list[int], keyframe_sets: list[list[int]]) -> list[Pass]:
    """Every object's passes over the timeline (``keyframe_sets``: each object's keyframes)."""
    return [p for kfs in keyframe_sets for p in plan(timeline, kfs)]


def keyframes_read(frame: int, keyframes: list[int]) -> set[int]:
    """The keyframes whose rotos one object's matte of ``frame`` reads, that object's keyframes ``keyframes``: the
    keyframe of every pass that serves it and, after that keyframe's own step, the keyframe at the pass's far end
    (``Propagator.anchor``). A roto redrawn on another keyframe leaves the frame's matte as it was: `vom farm check`
    flags only the frames whose matte reads it (QA: a redraw at the last keyframe flagged every frame)."""
    out: set[int] = set()
    for p in plan([frame], keyframes):  # where the frame lies among the keyframes decides it, not the timeline
        if frame in p.frames and p.weight(frame) > 0:
            out.add(p.keyframe)
            if p.toward is not None and frame != p.keyframe:
                out.add(p.toward)
    return out


def frames_through(frame: int, passes: list[Pass]) -> list[int]:
    """The plate frames whose pictures reach ``frame``'s matte, of ``passes`` (``all_passes``): the frames of every
    pass that serves it, from the pass's keyframe to it, and the keyframe at the pass's far end, whose roto and
    picture every step after the keyframe's own reads; every object's (objects share each pixel out). What a
    matte's ``vom:through`` digests and ``vom farm check`` recomputes from the plate as it is."""
    out: set[int] = set()
    for p in passes:
        if frame in p.frames and p.weight(frame) > 0:
            out.update(p.frames[: p.frames.index(frame) + 1])
            if p.toward is not None and frame != p.keyframe:  # a keyframe's own step reads no anchor (review)
                out.add(p.toward)
    return sorted(out)


def through_stamp(digests: dict[int, str]) -> str:
    """``vom:through`` of the plate frames ``digests`` (frame -> its file's content digest) name."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for f in sorted(digests):
        h.update(f"{f}:{digests[f]};".encode())
    return h.hexdigest()
