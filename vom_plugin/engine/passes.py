"""The pass runner: how every alpha vom publishes is computed, from frames in to plate-resolution alphas out.

``render()`` (plate files in, EXR files out, with the per-shot cache), ``vom eval``/``vom benchmark``'s vom
method and training validation (``run_clip``: frames and alphas in memory, no cache) all run shots here,
so a published number measures what users run.

1. Plan the propagation passes over the timeline (``schedule.plan``), each cut after the last requested
   frame it serves. Propagating over the whole timeline (not only the requested frames) is what makes a
   farm chunk 1051-1100 equal to the same frames of a 1001-1100 render.
2. Run each pass with a ``Propagator``: the frame in working resolution (``frames``), its key features,
   one step. With a cache (``StepCache``), each step's prediction and, now and then, the memory bank after
   it are stored under chained addresses (``resume``), so a pass resumes from the furthest step on disk;
   key features and the memory read's matches depend on the pixels only, so a re-render after a roto edit
   skips the key encoder, the top-k matching and CFAR's attention at 1/16 and 1/4 (at 1/8, where its weights
   cost more bytes than time, it is recomputed).
3. Blend the passes that meet between two keyframes (``schedule.blend``), lift the alpha to plate
   resolution guided by the full-resolution frame, and hand it to the sink.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vom_plugin.engine import frames as fr
from vom_plugin.engine.pending import PendingStore
from vom_plugin.engine.schedule import Pass, blend, plan

# Steps read ahead of the one computing, on helper threads: their plate frames (decoded, colour-converted) and
# their cache entries (key features, affinities: reading, inflating and checking them was a large share of a
# re-render's time). The entries (2-7 MB a step) go further ahead than the plates (up to 100 MB
# a 4K frame): the reader runs at nice 19 in the gaps the network leaves, and with 2 steps of lead the network
# still waited for it (far less with 4).
READ_AHEAD = 2
CACHE_READ_AHEAD = 4

STAGES = ("read", "keys", "propagate", "cache", "upsample", "write")


@dataclass
class RenderResult:
    """What a render did: ``frames``, the frames whose files are complete on disk, in frame order; ``paths``, a
    file a frame (the first object's, where each object has a sequence of its own); ``files``, every file written,
    each object's, in frame order; ``timings``, seconds per stage; ``cache``, hit and miss counts; ``warnings``,
    what the render said along the way (a plate read as another colour space, the cache turned off...);
    ``device``; ``elapsed``, seconds. An exception a render raised after it began carries one as
    ``render_result``."""

    frames: list[int] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)  # a file a frame (the first object's, when each has a sequence)
    files: list[Path] = field(default_factory=list)  # every file written, each object's sequence too
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    cache: dict[str, int] = field(default_factory=lambda: {
        "keys_hit": 0, "keys_miss": 0, "steps_cached": 0, "steps_computed": 0, "affinity_hit": 0,
        "affinity_miss": 0})
    warnings: list[str] = field(default_factory=list)
    device: str = "cpu"
    elapsed: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {"event": "done", "frames_written": len(self.frames), "files_written": len(self.files),
                "elapsed": round(self.elapsed, 4),
                "timings": {k: round(v, 4) for k, v in self.timings.items()}, "cache": dict(self.cache),
                "warnings": list(self.warnings), "device": self.device,
                "first": self.frames[0] if self.frames else None, "last": self.frames[-1] if self.frames else None}


class Timer:
    """Seconds per stage, in total (``result.timings``) and since the last ``take`` (progress events)."""

    def __init__(self, result: RenderResult) -> None:
        self.result = result
        self.since_event: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t
            self.result.timings[stage] = self.result.timings.get(stage, 0.0) + dt
            self.since_event[stage] += dt

    def take(self) -> dict[str, float]:
        out = {k: round(v, 4) for k, v in self.since_event.items()}
        self.since_event.clear()
        return out


class FrameSource(Protocol):
    """Frames of a shot at plate resolution, display-referred: files (``render``) or arrays (``run_clip``)."""

    def display(self, frame: int) -> np.ndarray:
        """(H, W, 3) float32 display-referred RGB of ``frame`` at plate size."""
        ...

    def fingerprint(self, frame: int) -> str:
        """What identifies the frame's pixels for the cache (only called with a cache)."""
        ...

    def read_ahead(self, frames: list[int]) -> None:
        """These frames come next: a source may start reading them (a hint; nothing is returned)."""
        ...

    def working(self, frame: int, display: np.ndarray, geo: fr.Geometry) -> np.ndarray:
        """``frames.image_to_working(display, geo)`` for ``frame``'s ``display`` (a source may have made it ahead);
        an array of the caller's own."""
        ...


@dataclass
class Matte:
    """One object's result for one frame at plate resolution: its alpha and, when asked, its semantic mask."""

    alpha: np.ndarray
    mask: np.ndarray | None = None
    # at one of its keyframes, of a shot of several objects: its alpha before the others took their share of the
    # pixels (the keyframe check judges the matte against its roto on it: QA, an object drawn inside another)
    own: np.ndarray | None = None


# (frame, {object name (None: the one unnamed object): Matte}) -> None: the sink writes, keeps or scores them
Sink = Callable[[int, dict[Any, Matte]], None]
_OPAQUE = 1.0 - 1e-6  # alphas are clamped here for their logits: an opaque pixel's logit stays finite


def aggregate(alphas: list[np.ndarray]) -> list[np.ndarray]:
    """Soft aggregation of several objects' alphas of one frame, so that they never sum above 1.

    Where the alphas of a pixel already fit (sum <= 1: one object, soft edges, the faint halo of another
    object) they are kept exactly (to one half-float step where, written as halves, they would sum above 1).
    Where they claim more than the pixel, every object's logit is lowered by the same amount t,
    a_i' = sigmoid(logit(a_i) - t), with t such that they sum to 1: a softmax-like sharing in logit space, as
    STM/STCN aggregate, in which a confident alpha (near 0 or 1) moves least and two equally opaque objects
    share the pixel (0.5 each). STCN's own rule (softmax over logit(a_i) and the background's
    logit(prod(1 - a_j))) is not used: it squares a lone object's odds (0.7 becomes 0.84) and eats every soft
    edge wherever another object's matte has a faint halo, which a compositor would see."""
    if len(alphas) < 2:
        return list(alphas)
    out = np.stack([np.clip(np.nan_to_num(np.asarray(a, np.float32), nan=0.0), 0.0, 1.0) for a in alphas])
    over = out.sum(axis=0) > 1.0
    if over.any():
        a = np.clip(out[:, over].astype(np.float64), 0.0, _OPAQUE)
        with np.errstate(divide="ignore"):
            logits = np.log(a) - np.log1p(-a)  # -inf where an object is absent: it stays 0
        lo = np.zeros(a.shape[1])
        hi = np.full(a.shape[1], float(np.log(_OPAQUE / (1 - _OPAQUE))) + np.log(len(alphas)) + 1.0)
        for _ in range(48):  # bisection on t: the sum falls as t grows; hi always has sum <= 1
            mid = (lo + hi) / 2
            fits = (1.0 / (1.0 + np.exp(mid - logits))).sum(axis=0) <= 1.0
            hi, lo = np.where(fits, mid, hi), np.where(fits, lo, mid)
        shared = 1.0 / (1.0 + np.exp(hi - logits))
        shared /= np.maximum(1.0, shared.sum(axis=0))  # rounding
        out[:, over] = shared.astype(np.float32)
    # alphas that fit in float (as they were, or shared just now) but not as the halves they are written as
    # (0.40063 + 0.59937 = 1 becomes 1.00024): one of them a half step lower
    written = out.astype(np.float16).astype(np.float64).sum(axis=0) > 1.0
    if written.any():
        out[:, written] = _on_half_grid(out[:, written].astype(np.float64))
    return list(out)


def aggregate_named(names: list[Any], alphas: list[np.ndarray]) -> list[np.ndarray]:
    """``aggregate`` of the objects ``names``' alphas (returned in that order), shared in the order of the names,
    not the order the objects were listed in: where a pixel's halves are lowered a step, the first of the tied largest
    is, which must not move when a shot file's objects are reordered (a QA pass)."""
    order = sorted(range(len(names)), key=lambda i: str(names[i]))
    shared = aggregate([alphas[i] for i in order])
    return [shared[order.index(i)] for i in range(len(names))]


def _on_half_grid(alphas: np.ndarray) -> np.ndarray:
    """Alphas (objects x pixels, summing to 1 at most) on the half-float grid they are written on, so that they
    still sum to 1 at most as written: rounded to nearest, 0.40063 + 0.59961 made 1.00024 (a 1 - sum background
    matte went negative). Where the rounded sum is over, the largest is lowered a step at a time."""
    h = alphas.astype(np.float16)
    for _ in range(len(h) + 1):  # each step takes off the largest alpha's step: the biggest rounding error
        over = np.flatnonzero(h.astype(np.float64).sum(axis=0) > 1.0)
        if not len(over):
            break
        top = h[:, over].argmax(axis=0)
        h[top, over] = np.nextafter(h[top, over], np.float16(0))
    return h.astype(np.float32)


@dataclass
class PlannedPass:
    plan: Pass                 # schedule's pass: keyframe, direction, the keyframe it meets, blend weight
    frames: list[int]          # propagation order, starting at the keyframe, cut after the last frame served
    serves: set[int]           # requested frames this pass contributes to (a weight > 0 there)

    @property
    def keyframe(self) -> int:
        return self.plan.keyframe

    @property
    def direction(self) -> int:
        return self.plan.direction

    @property
    def toward(self) -> int | None:
        """The keyframe at the pass's far end: its roto is read at every step (``Propagator.anchor``)."""
        return self.plan.toward


def plan_passes(timeline: list[int], keyframes: list[int], requested: list[int]) -> list[PlannedPass]:
    """schedule.plan over the timeline, keeping each pass only as far as the requested frames need it.

    A pass serves the requested frames where its blend weight is above 0: a keyframe's alpha comes from
    its forward pass (its roto), never from a pass arriving from another keyframe, nor twice."""
    want = set(requested)
    out: list[PlannedPass] = []
    for p in plan(timeline, sorted(keyframes)):
        serves = [i for i, f in enumerate(p.frames) if f in want and p.weight(f) > 0]
        if serves:
            out.append(PlannedPass(p, list(p.frames[: serves[-1] + 1]), {p.frames[i] for i in serves}))
    return out


@dataclass
class _Lane:
    """One object's run through a pass: its own memory (Propagator) and cached chain."""

    name: Any
    steps: list[str] | None = None   # its chain of step addresses (with a cache)
    start: int = 0                   # first step to compute (those before are on disk)
    prop: Any = None
    deliver_from: int = 0            # first computed step to deliver (earlier ones came from the cache)
    done: int | None = None          # the last step computed by this run, whose memory ``prop`` holds
    stepping: bool = False           # inside the network's step (its memory may be half-updated)


class PassRunner:
    """Runs the planned passes of one shot, for each of its objects, and hands each requested frame's
    plate-resolution mattes to a sink.

    ``rotos``: keyframe -> (H, W) {0, 1} at plate size for one unnamed object, or {object name: {keyframe:
    roto}} for several (each object has its own keyframes). Objects with the same keyframes run their passes
    side by side: each frame's key features (and its key-only read/CFAR weights) are computed once for all of
    them; each object has its own memory and its own cached chain, so a roto edit recomputes that object
    only. The objects' alphas of a frame are soft-aggregated (``aggregate``) at plate resolution.
    ``mask``: also deliver the semantic masks. ``cache``: a ``StepCache`` or None (nothing is stored or
    looked up). ``check_stop``: called after each step (raises to stop, e.g. CancelledError). ``result``:
    where timings and cache counters go (a fresh RenderResult by default).
    """

    def __init__(self, model: Any, device: Any, source: FrameSource, geo: fr.Geometry, rotos: dict[Any, Any],
                 sink: Sink, *, memory: str, top_k: int, cache: Any = None, result: RenderResult | None = None,
                 timer: Timer | None = None, check_stop: Callable[[], None] | None = None, mask: bool = False,
                 roto_fp: dict[Any, dict[int, str]] | None = None,
                 on_work: Callable[[dict[str, int]], None] | None = None) -> None:
        import torch

        self.torch = torch
        self.model = model
        self.device = device
        self.source = source
        self.geo = geo
        self.objects: dict[Any, dict[int, np.ndarray]] = (
            {None: dict(rotos)} if all(isinstance(v, np.ndarray) for v in rotos.values()) else
            {name: dict(kf) for name, kf in rotos.items()})
        self.roto_fp = roto_fp or {}
        self.sink = sink
        self.memory = memory
        self.top_k = int(top_k)
        self.want_mask = mask
        self.cache = cache
        self.result = result if result is not None else RenderResult(device=str(device))
        self.timer = timer or Timer(self.result)
        self.check_stop = check_stop or (lambda: None)
        # the work of a render: one step per object per frame of every pass, read back from the cache or computed;
        # frames are written in bursts (a frame between two keyframes waits for both passes), steps are steady
        self.work = {"steps_done": 0, "steps_total": 0, "steps_cached": 0}
        self.on_work = on_work
        self._displays: OrderedDict[int, np.ndarray] = OrderedDict()
        self.pending = PendingStore()  # (object, frame) -> the passes' predictions that wait for the others'
        self.expected: dict[tuple[Any, int], int] = {}
        self.whole: tuple[int, int] | None = None  # ``run``'s

    # - inputs -

    def display(self, frame: int) -> np.ndarray:
        """The frame at plate size, display-referred; the last few are kept (each is used twice: in, up)."""
        if frame in self._displays:
            self._displays.move_to_end(frame)
            return self._displays[frame]
        with self.timer("read"):
            d = self.source.display(frame)
        self._displays[frame] = d
        while len(self._displays) > 3:
            self._displays.popitem(last=False)
        return d

    def image(self, frame: int) -> Any:
        display = self.display(frame)
        with self.timer("read"):
            arr = self.source.working(frame, display, self.geo)  # (ph, pw, 3): a channels-last image as it is
            return self.torch.from_numpy(arr).permute(2, 0, 1)[None].to(self.device)

    def propagator(self) -> Any:
        from vom_plugin.engine.propagate import Propagator

        return Propagator(self.model, memory=self.memory, top_k=self.top_k, device=self.device)

    def keys(self, prop: Any, frame: int, image: Any, *, use_cache: bool = True) -> Any:
        if self.cache is not None and use_cache:
            with self.timer("keys"):
                feats = self.cache.keys(prop, frame)
            if feats is not None:
                return feats
        with self.timer("keys"), self.torch.inference_mode():
            feats = prop.encode_keys(image)
        self.result.cache["keys_miss"] += 1
        if self.cache is not None:
            with self.timer("cache"):
                self.cache.put_keys(prop, frame, feats)
        return feats

    # - passes -

    def groups(self) -> list[tuple[list[int], list[Any]]]:
        """(keyframes, the objects that have exactly these keyframes): each group's passes run side by side."""
        out: dict[tuple[int, ...], list[Any]] = {}
        for name, kf in self.objects.items():
            out.setdefault(tuple(sorted(kf)), []).append(name)
        return [(list(k), names) for k, names in out.items()]

    def run(self, timeline: list[int], keyframes: list[int] | None, requested: list[int],
            whole: list[int] | None = None) -> None:
        """Render ``requested`` over ``timeline``. ``keyframes``: the one unnamed object's (as given to the
        constructor), or None: each object's own. ``whole``: the frames of the shot ``requested`` is part of (None:
        the timeline's): a pass cut short at their end keeps no memory state, as no render goes on from there."""
        self.whole = (min(whole), max(whole)) if whole else None
        if keyframes is not None and list(self.objects) == [None]:
            self.objects = {None: {k: self.objects[None][k] for k in keyframes}}
        planned = [(plan_passes(timeline, kfs, requested), names) for kfs, names in self.groups()]
        self.expected = {}  # this run's (a runner run again counts afresh)
        for passes, names in planned:
            for name in names:
                for p in passes:
                    for f in p.serves:
                        self.expected[(name, f)] = self.expected.get((name, f), 0) + 1
        unserved = [f for f in requested for name in self.objects if (name, f) not in self.expected]
        if unserved:  # plan() covers every frame; this guards the invariant rather than delivering nothing
            raise RuntimeError(f"no propagation pass reaches frames {unserved[:5]}")
        self.work["steps_total"] = sum(len(p.frames) * len(names) for passes, names in planned for p in passes)
        try:
            for passes, names in planned:
                for p in passes:
                    self.run_pass(p, names)
        finally:
            if self.pending.file_error is not None:
                self.result.warnings.append(
                    f"the temporary folder could not take the predictions waiting for another pass or object "
                    f"({self.pending.file_error}): they were held in memory; point TMPDIR at a folder with room")
            self.pending.close()

    def run_pass(self, p: PlannedPass, names: list[Any] | None = None) -> None:
        """One pass for each of ``names`` (objects with this pass's keyframes; default: every object), side by
        side: each lane resumes from its own furthest cached step, and a frame's keys serve every lane."""
        cache = self.cache
        n = len(p.frames)
        # the requested frames end before the pass would: a later render goes on, unless the shot ends there (a shot
        # file's frames inside the plate's: its last chunk kept a 76 MB state no render reads, QA)
        cut = n < len(p.plan.frames) and (self.whole is None or self.whole[0] <= p.plan.frames[n] <= self.whole[1])
        affs = None
        lanes = []
        for name in (list(self.objects) if names is None else names):
            lane = _Lane(name)
            if cache is not None:
                fps = self.roto_fp.get(name, {})
                lane.steps, affs = cache.addresses(p, self.source.fingerprint, fps.get(p.keyframe, ""),
                                                   fps.get(p.toward, ""))
            lanes.append(lane)
        if cache is not None:
            self._cached_steps(p, lanes)
        lanes = [lane for lane in lanes if lane.start < n]
        if not lanes:
            return
        anchor: tuple[Any, Any] | None = None  # the far keyframe's image and keys, for every lane
        for lane in lanes:
            if lane.prop is None:
                lane.prop = self.propagator()
            if p.toward is not None:  # fresh or resumed from a saved state (which does not hold it)
                if anchor is None:
                    image = self.image(p.toward)
                    anchor = image, self.keys(lane.prop, p.toward, image)
                with self.timer("propagate"), self.torch.inference_mode():
                    lane.prop.anchor(*anchor, self.roto(lane.name, p.toward))
        try:
            self._steps(p, lanes, affs, n, cut)
        except Exception:
            # a plate frame that does not read, an output that cannot be written: the steps done are kept as a
            # cancel keeps them, so the next render goes on from the last instead of from the keyframe
            if cache is not None and not any(lane.stepping for lane in lanes):
                for lane in lanes:
                    if lane.done is not None and lane.prop is not None:
                        cache.before_error(lane.prop, lane.steps, lane.done)
            raise

    def _steps(self, p: PlannedPass, lanes: list[_Lane], affs: list[str] | None, n: int, cut: bool) -> None:
        """The pass's steps, from its lanes' first to compute up to ``n``."""
        cache = self.cache
        for i in range(min(lane.start for lane in lanes), n):
            f = p.frames[i]
            self.source.read_ahead(p.frames[i + 1 : i + 1 + READ_AHEAD])  # decoded while this step computes
            if cache is not None:  # this step's cache entries and the next ones'
                ahead = slice(i, i + 1 + CACHE_READ_AHEAD)
                cache.read_ahead(p.frames[ahead], None if affs is None else affs[ahead])
            image = self.image(f)
            keys = affinity = None
            for lane in lanes:
                if i < lane.start:
                    continue
                lane.stepping = True  # a failure from here on may leave its memory half-updated
                if keys is None:  # the first lane at this step: keys (and affinity) from the cache or computed
                    out, keys, cached = self._step(lane, p, i, f, image, None if affs is None else affs[i])
                    # stored only when computed here: one read from the cache is on disk already
                    affinity, fresh = out.affinity, (None if cached else out.affinity)
                else:  # the others read the same keys with the same weights: only their values differ
                    out = self._network(lane, i, f, image, keys, affinity)
                    fresh = None  # stored once, by the first lane (the address has no roto in it)
                lane.stepping = False
                with self.timer("propagate"):
                    # half precision, as the cache keeps it (the EXR is half float too): cached == cold
                    alpha = out.alpha[0, 0].detach().to(self.torch.float16).cpu().contiguous()
                    mask = (out.mask[0, 0].detach().to(self.torch.float16).cpu().contiguous()
                            if self.want_mask else None)
                self.result.cache["steps_computed"] += 1
                if cache is not None:
                    with self.timer("cache"):
                        cache.after_step(lane.prop, lane.steps, affs, i, n, alpha, fresh, mask=mask, cut=cut)
                lane.done = i
                if f in p.serves and i >= lane.deliver_from:  # earlier frames came from the cache already
                    self.deliver(lane.name, f, p.plan, alpha.numpy(), None if mask is None else mask.numpy())
                self._worked(1)
            if cache is not None:
                for lane in lanes:
                    if i >= lane.start:
                        cache.before_stop(lane.prop, lane.steps, i)
            self.check_stop()
        if cache is not None and not cut:
            for lane in lanes:
                cache.pass_complete(lane.steps)

    def _skipped(self, steps: int) -> None:
        """``steps`` of the plan that a memory state on disk spares: out of the total (they are not work done)."""
        self.work["steps_total"] -= steps
        if self.on_work is not None:
            self.on_work(dict(self.work))

    def _worked(self, steps: int, *, cached: bool = False) -> None:
        """Count ``steps`` more done."""
        if steps == 0:
            return
        self.work["steps_done"] += steps
        if cached:
            self.work["steps_cached"] += steps
        if self.on_work is not None:
            self.on_work(dict(self.work))

    def _cached_steps(self, p: PlannedPass, lanes: list[_Lane]) -> None:
        """Deliver the lanes' predictions on disk, step by step across the lanes (an object's frame is complete
        when every object has delivered it: lane after lane, the first lanes' frames waited in memory for the
        last's); set each lane's step to compute from, its Propagator (None: a fresh one) and its first step to
        deliver. Steps before a lane's memory state that serve no frame of this render are skipped: not read,
        not done, out of the total."""
        n = len(p.frames)
        served = [f in p.serves for f in p.frames]
        for lane in lanes:
            with self.timer("cache"):
                lane.start, lane.prop = self.cache.resume(lane.steps, n, self.propagator, served)
            lane.deliver_from = 0
        skipped = 0  # steps spared, said in one event per run of them (QA: 450 step events before any work)

        def flush() -> None:
            nonlocal skipped
            if skipped:
                self._skipped(skipped)
                skipped = 0

        for i in range(max((lane.start for lane in lanes), default=0)):
            f = p.frames[i]
            for lane in lanes:
                if i >= lane.start:
                    continue
                if f not in p.serves:
                    skipped += 1
                    continue
                flush()
                ahead = [p.frames[j] for j in range(i + 1, min(n, i + 1 + 4 * READ_AHEAD))
                         if p.frames[j] in p.serves and self._completes(p.frames[j], [x.name for x in lanes
                                                                                       if j < x.start])]
                self.source.read_ahead(ahead[:READ_AHEAD])
                with self.timer("cache"):
                    got = self.cache.alpha(lane.steps[i], self.geo.padded, mask=self.want_mask)
                if got is None:  # damaged, or evicted since the check: compute from a state before it
                    with self.timer("cache"):
                        lane.start, lane.prop = self.cache.resume(lane.steps, i, self.propagator, served)
                    # steps start..i-1 are computed again to rebuild the memory: those read back are more work,
                    # not less done (the bar went backwards), and in both counters of the result; those skipped
                    # are work again
                    self.work["steps_total"] += i - lane.start
                    lane.deliver_from = i
                    continue
                self._worked(1, cached=True)
                self.result.cache["steps_cached"] += 1
                self.deliver(lane.name, f, p.plan, *got)
            if i % 64 == 63:  # a long run of them still moves the bar now and then
                flush()
            self.check_stop()
        flush()

    def _completes(self, frame: int, delivering: list[Any]) -> bool:
        """Whether ``frame`` is complete once the objects ``delivering`` have delivered it from this pass: only then
        is its plate frame read (one read ahead for a frame that waits for another pass stays in memory until
        then: a two-keyframe re-render held every plate frame of the span)."""
        return all(self.expected.get((name, frame), 0) - self.pending.count((name, frame))
                   - (name in delivering) <= 0 for name in self.objects)

    def _step(self, lane: _Lane, p: PlannedPass, i: int, frame: int, image: Any, aff_address: str | None
              ) -> tuple[Any, Any, bool]:
        """The step of the first lane at this frame: (its StepOutput, the frame's keys, whether its affinity
        came from the cache)."""
        hits = self.result.cache["keys_hit"]
        keys = self.keys(lane.prop, frame, image)
        affinity = None
        if aff_address is not None:
            with self.timer("cache"):
                affinity = self.cache.affinity(aff_address)
        try:
            return self._network(lane, i, frame, image, keys, affinity), keys, affinity is not None
        except Exception as e:
            if self.result.cache["keys_hit"] == hits and affinity is None:
                raise  # nothing came from the cache: a real error
            # Verified entries that do not fit this step (a forger who knows the format, or another
            # version's layout): drop them and compute the step from the pixels alone.
            self.cache.drop_step_inputs(frame, aff_address if affinity is not None else None,
                                        f"does not fit step {i} ({type(e).__name__}: {e})")
            keys = self.keys(lane.prop, frame, image, use_cache=False)
            return self._network(lane, i, frame, image, keys, None), keys, False

    def _network(self, lane: _Lane, i: int, frame: int, image: Any, keys: Any, affinity: Any) -> Any:
        with self.timer("propagate"), self.torch.inference_mode():
            if i == 0:
                return lane.prop.add_keyframe(image, keys, self.roto(lane.name, frame), affinity)
            return lane.prop.step(image, keys, affinity)

    def roto(self, name: Any, frame: int) -> Any:
        """Object ``name``'s roto at keyframe ``frame`` as the network takes it: [1, 1, ph, pw] on the device."""
        return self.torch.from_numpy(fr.mask_to_working(self.objects[name][frame], self.geo))[None].to(self.device)

    # - outputs -

    def deliver(self, name: Any, frame: int, source: Pass, alpha: np.ndarray, mask: np.ndarray | None) -> None:
        """One pass's prediction of an object at a frame (half precision, as computed and cached); once every pass
        of every object has delivered the frame, each object's passes are blended, lifted to plate resolution,
        aggregated and handed to the sink. Until then the prediction waits as it came in ``PendingStore``
        (compressed, past a budget on disk): a frame between two keyframes waits for the second pass, and an object
        of other keyframes runs its passes after the first object's, so the memory stays flat whatever waits."""
        # the frame's predictions still to come, this one among them
        if sum(self.expected[(n, frame)] - self.pending.count((n, frame)) for n in self.objects) > 1:
            self.pending.add((name, frame), source, alpha, mask)
            return
        names = list(self.objects)
        blended, blended_masks = [], []
        for n in names:  # the frame's last prediction completes it: that one is never stored
            parts = [*self.pending.take((n, frame)), *([(source, alpha, mask)] if n == name else [])]
            blended.append(blend(frame, [(src, np.asarray(a, np.float32)) for src, a, _ in parts]))
            blended_masks.append(blend(frame, [(src, np.asarray(m, np.float32)) for src, _, m in parts])
                                 if self.want_mask else None)
        display = self.display(frame)
        with self.timer("upsample"):
            lifted = [fr.alpha_to_plate(a, self.geo, display) for a in blended]
            alphas = aggregate_named(names, lifted)
            masks = [None if m is None else hard_mask(fr.alpha_to_plate(m, self.geo, display))
                     for m in blended_masks]
        owns = [a if len(names) > 1 and frame in self.objects[n] else None for n, a in zip(names, lifted, strict=True)]
        self.sink(frame, {n: Matte(a, m, own) for n, a, m, own in zip(names, alphas, masks, owns, strict=True)})


def hard_mask(probability: np.ndarray) -> np.ndarray:
    """The mask channel's matte from the network's object probability at plate resolution: 1 where it is at
    least 0.5, else 0. Written as it came, it was a soft map whose background never reached 0 (0.6-3.5%) and whose
    object never reached 1: as a holdout it took a few percent off every pixel of the plate (QA)."""
    return (probability >= 0.5).astype(np.float32)


class ArraySource:
    """Frames held in memory: (T, H, W, 3) float32 display-referred, addressed by index."""

    def __init__(self, frames: np.ndarray) -> None:
        self.frames = frames

    def read_ahead(self, frames: list[int]) -> None:
        """In memory already."""

    def display(self, frame: int) -> np.ndarray:
        return self.frames[frame]

    def working(self, frame: int, display: np.ndarray, geo: fr.Geometry) -> np.ndarray:
        return fr.image_to_working(display, geo)

    def fingerprint(self, frame: int) -> str:  # pragma: no cover - in-memory runs have no cache
        raise RuntimeError("in-memory frames are not cached")


def run_clip(model: Any, frames: np.ndarray, keyframes: dict[int, np.ndarray], *, working_size: int,
             memory: str, top_k: int, device: Any = "cpu") -> np.ndarray:
    """The render path over frames in memory (no files, no cache): ``vom eval`` and training validation.

    ``frames``: (T, H, W, 3) float32 display-referred in [0, 1]; ``keyframes``: index -> (H, W) {0, 1}
    roto. Returns the alphas (T, H, W) float32 at the frames' size, exactly as ``render`` computes them.
    """
    from vom_plugin.engine.device import resolve_device

    frames = np.ascontiguousarray(frames, dtype=np.float32)
    t, h, w = frames.shape[:3]
    dev = resolve_device(device)
    out = np.zeros((t, h, w), np.float32)

    def keep(frame: int, mattes: dict[Any, Matte]) -> None:
        out[frame] = mattes[None].alpha

    runner = PassRunner(model, dev, ArraySource(frames), fr.geometry(w, h, working_size),
                        {int(k): np.asarray(v, np.float32) for k, v in keyframes.items()}, keep,
                        memory=memory, top_k=top_k)
    runner.run(list(range(t)), None, list(range(t)))
    return out
