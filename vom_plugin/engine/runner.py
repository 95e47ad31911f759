"""``render(shot)``: the product's main job, from plate and roto files to EXR alphas, resumable.

The order of work:

1. Validate everything (plate frames on disk, rotos, model, output and cache folders) before any
   frame is computed, so bad input costs nothing and exits 2 from the CLI.
2. Plan the propagation passes over the plate's frames on disk (``engine.schedule.plan``), each cut
   after the last requested frame it serves. Propagating over the plate's own frames (not only the
   requested ones) is what makes a farm chunk 1051-1100 equal to the same frames of a 1001-1100 render.
3. Run each pass with a ``Propagator``. Every step's prediction and the memory bank after it go to the
   per-shot cache under a digest chained over (model, settings, roto, frames so far), so a pass
   resumes from the furthest step already on disk: a killed render, the next farm chunk, or a
   re-render in which nothing upstream changed. Key features are cached per plate frame, so a
   re-render after only the roto changed skips the key encoder.
4. Blend the passes that meet between two keyframes by distance, lift the alpha to plate resolution
   guided by the full-resolution plate, and write it atomically (``io.write_alpha``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import threading
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vom_plugin import __version__
from vom_plugin.engine import frames as fr
from vom_plugin.engine.cache import ShotCache, digest, file_fingerprint
from vom_plugin.engine.progress import ProgressCallback
from vom_plugin.engine.shot import Shot
from vom_plugin.errors import CancelledError, InputError

STAGES = ("read", "keys", "propagate", "cache", "upsample", "write")
# Memory states are big (tens of MB a frame at 960 px), so a pass writes one when the last is this old
# (a killed render redoes at most that much work), at the end of what it was asked for (the next farm
# chunk starts there) and when cancelled; it deletes the one before. 0 writes one every frame.
STATE_INTERVAL_S = 10.0


MAX_PENDING_WRITES = 4
# What the cached tensors hold and at which precision (half-precision features and weights since 2): part of
# every address, so entries of another layout are never looked up and age out.
CACHE_LAYOUT = 2


def _snapshot(state: dict[str, Any]) -> dict[str, Any]:
    """Own copies of CPU tensors: the writer thread serialises them while the pass goes on."""
    return {k: v.clone() if v.device.type == "cpu" else v.cpu() for k, v in state.items()}


def state_interval() -> float:
    """Seconds between saved memory states: ``VOM_STATE_INTERVAL_S``, else STATE_INTERVAL_S."""
    from vom_plugin.envvars import env_float

    return env_float("VOM_STATE_INTERVAL_S", STATE_INTERVAL_S, expected="seconds between saved memory states")


@dataclass
class RenderResult:
    """What a render did. ``timings``: seconds per stage; ``cache``: hit and miss counts."""

    frames: list[int] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    cache: dict[str, int] = field(default_factory=lambda: {
        "keys_hit": 0, "keys_miss": 0, "steps_cached": 0, "steps_computed": 0, "affinity_hit": 0,
        "affinity_miss": 0})
    warnings: list[str] = field(default_factory=list)
    device: str = "cpu"
    elapsed: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {"event": "done", "frames_written": len(self.frames), "elapsed": round(self.elapsed, 4),
                "timings": {k: round(v, 4) for k, v in self.timings.items()}, "cache": dict(self.cache),
                "warnings": list(self.warnings), "device": self.device,
                "first": self.frames[0] if self.frames else None, "last": self.frames[-1] if self.frames else None}


# -- validation -----------------------------------------------------------------------------------------

@dataclass
class _Job:
    shot: Shot
    all_frames: list[int]           # plate frames on disk: the propagation timeline
    frames: list[int]               # requested frames
    plate_seq: Any
    size: tuple[int, int]           # plate display window (width, height)
    geo: fr.Geometry
    rotos: dict[int, np.ndarray]    # keyframe -> (H, W) {0, 1}
    roto_fp: dict[int, str]
    model: Any
    model_id: str
    device: Any
    cache: ShotCache
    cache_off: str | None = None    # why the cache is not used for this render (a warning), None when it is


def _model_identity(model: Any) -> str:
    """A digest of the weights themselves: renamed or copied checkpoints share their cache entries."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(getattr(getattr(model, "config", None), "name", type(model).__name__)).encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _check_out(shot: Shot, frames: list[int], plate_seq: Any) -> None:
    """The output pattern, each output frame against every input file, and its folder: nothing is created."""
    from vom_plugin import io as vio
    from vom_plugin.engine.weights import weights_path
    from vom_plugin.io.output_guard import ProtectedFiles, check_output_folder, check_outputs

    first_path = vio.frame_path(shot.out, frames[0])
    if first_path.suffix.lower() != ".exr":
        raise InputError(f"out {shot.out!r}: expected an .exr file pattern (e.g. alpha.####.exr)")
    protected = ProtectedFiles()
    for f in plate_seq.frames:
        protected.add(f"plate frame {f}", plate_seq.path(f))
    for kf, path in shot.keyframes.items():
        protected.add(f"roto of keyframe {kf}", path)
    if shot.source_file is not None:
        protected.add("shot file", shot.source_file)
    protected.add("weights file", weights_path(shot.model))
    check_outputs(shot.out, frames, protected)
    try:
        check_output_folder(first_path)
    except InputError as e:
        raise InputError(f"out {shot.out!r}: {e}") from None


def _open_cache(shot: Shot) -> tuple[ShotCache, str | None]:
    """The shot's cache, and why it is off for this render (None when usable): a cache never fails a render."""
    from vom_plugin.engine.cache import CacheUnavailable
    from vom_plugin.locations import default_cache_dir

    cache = ShotCache(shot.cache or default_cache_dir(), shot.plate)
    try:
        cache.prepare()
    except CacheUnavailable as e:
        return cache, f"rendering without the cache: {e}"
    return cache, None


def prepare(shot: Shot) -> _Job:
    """Every check that can fail on bad input, in order of cost; raises InputError before any work.

    The output folder is created last, once everything else has been accepted.
    """
    from vom_plugin import io as vio
    from vom_plugin.engine.device import resolve_device
    from vom_plugin.engine.weights import load_model

    on_disk = vio.open_sequence(shot.plate)
    frames = list(shot.frames) if shot.frames is not None else list(on_disk.frames)
    seq = vio.open_sequence(shot.plate, frames)  # names the missing frames
    span = f"{on_disk.frames[0]}-{on_disk.frames[-1]}"
    for kf, path in shot.keyframes.items():
        if kf not in on_disk.frames:
            raise InputError(f"keyframes: roto {path} is for frame {kf}, which is not a frame of the plate "
                             f"{shot.plate} (frames on disk: {span})")
        if not path.is_file():
            raise InputError(f"keyframes: roto file {path} (frame {kf}) does not exist")
    _check_out(shot, frames, on_disk)
    first = vio.read_plate(seq.path(frames[0]))
    size = tuple(first.size)
    rotos = {kf: vio.read_roto(path, size) for kf, path in shot.keyframes.items()}
    roto_fp = {kf: file_fingerprint(path, full=True) for kf, path in shot.keyframes.items()}
    device = resolve_device(shot.device)
    model = load_model(shot.model, device=device)
    model.eval()
    cache, cache_off = _open_cache(shot)
    try:
        vio.ensure_output_folder(vio.frame_path(shot.out, frames[0]))
    except InputError as e:
        raise InputError(f"out {shot.out!r}: {e}") from None
    return _Job(shot=shot, all_frames=list(on_disk.frames), frames=frames, plate_seq=on_disk, size=size,
                geo=fr.geometry(size[0], size[1], shot.working_size), rotos=rotos, roto_fp=roto_fp, model=model,
                model_id=_model_identity(model), device=device, cache=cache, cache_off=cache_off)


# -- planning ---------------------------------------------------------------------------------------------

@dataclass
class _Pass:
    keyframe: int
    direction: int
    frames: list[int]          # propagation order, starting at the keyframe, cut after the last frame served
    serves: set[int]           # requested frames this pass contributes to


def plan_passes(all_frames: list[int], keyframes: list[int], requested: list[int]) -> list[_Pass]:
    """engine.plan over the plate's frames, keeping each pass only as far as the requested frames need it."""
    from vom_plugin.engine.schedule import plan

    want = set(requested)
    kfs = set(keyframes)
    out: list[_Pass] = []
    kf_served: set[int] = set()
    for p in plan(all_frames, sorted(keyframes)):
        frames = list(p.frames)
        # A keyframe's alpha comes from the first pass leaving it (its roto), never from a pass arriving
        # from another keyframe, nor twice (forward and backward passes both start with it).
        serves = [i for i, f in enumerate(frames)
                  if f in want and (f not in kfs or (f == p.keyframe and f not in kf_served))]
        kf_served.update(frames[i] for i in serves if frames[i] in kfs)
        if not serves:
            continue
        cut = frames[: serves[-1] + 1]
        out.append(_Pass(p.keyframe, p.direction, cut, {frames[i] for i in serves}))
    return out


def _weights(frame: int, sources: list[int]) -> list[float]:
    """Blend weights of the passes (identified by their keyframes) that meet at ``frame``."""
    from vom_plugin.engine.schedule import blend_weight

    if frame in sources:
        return [1.0 / sources.count(frame) if k == frame else 0.0 for k in sources]
    if len(sources) == 1:
        return [1.0]
    if len(sources) == 2 and sources[0] != sources[1]:
        w = float(blend_weight(frame, sources[0], sources[1]))
        return [w, 1.0 - w]
    return [1.0 / len(sources)] * len(sources)


# -- the render --------------------------------------------------------------------------------------------

class _Stop:
    """Set by SIGINT/SIGTERM; the render stops after the frame in hand, leaving only complete files."""

    def __init__(self) -> None:
        self.signal: int | None = None


@contextlib.contextmanager
def _signals() -> Iterator[_Stop]:
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be installed from the main thread; hosts cancel otherwise
        return

    def handler(signum: int, _frame: Any) -> None:
        stop.signal = signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class _Timer:
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


class _Render:
    def __init__(self, job: _Job, progress: ProgressCallback | None, stop: _Stop) -> None:
        import torch

        self.torch = torch
        self.job = job
        self.shot = job.shot
        self.progress = progress
        self.stop = stop
        self.result = RenderResult(device=str(job.device))
        self.timer = _Timer(self.result)
        self.settings = {"working_size": self.shot.working_size, "colorspace": self.shot.colorspace,
                         "memory": self.shot.memory, "top_k": self.shot.top_k, "device": job.device.type,
                         "padded": job.geo.padded, "vom": __version__.split(".")[0],
                         "cache_layout": CACHE_LAYOUT}
        self.key_id = digest("keys", job.model_id, self.settings["working_size"], self.settings["colorspace"],
                             job.device.type, job.geo.padded, CACHE_LAYOUT)
        self._fp: dict[int, str] = {}
        self._plates: OrderedDict[int, tuple[Any, np.ndarray]] = OrderedDict()
        self.pending: dict[int, list[tuple[int, np.ndarray]]] = defaultdict(list)
        self.expected: dict[int, int] = {}
        self.done = 0
        self.cache_ok = job.cache_off is None
        if job.cache_off:
            self.result.warnings.append(job.cache_off)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vom-cache-writer")
        self._pending: deque[Future] = deque()
        self.state_interval = state_interval()

    # - inputs -

    def fingerprint(self, frame: int) -> str:
        if frame not in self._fp:
            self._fp[frame] = file_fingerprint(self.job.plate_seq.path(frame))
        return self._fp[frame]

    def plate(self, frame: int) -> tuple[Any, np.ndarray]:
        """(Plate, full-res display-referred RGB); the last few are kept, a frame is read once per use."""
        if frame in self._plates:
            self._plates.move_to_end(frame)
            return self._plates[frame]
        from vom_plugin import io as vio

        with self.timer("read"):
            p = vio.read_plate(self.job.plate_seq.path(frame))
            if tuple(p.size) != self.job.size:
                raise InputError(f"plate frame {frame} ({self.job.plate_seq.path(frame)}) is {p.size[0]}x"
                                 f"{p.size[1]}; the shot's other frames are {self.job.size[0]}x{self.job.size[1]}")
            display = vio.to_network(p.rgb, self.shot.colorspace)
        self._plates[frame] = (p, display)
        while len(self._plates) > 3:
            self._plates.popitem(last=False)
        return p, display

    def image(self, frame: int) -> Any:
        _, display = self.plate(frame)
        with self.timer("read"):
            arr = fr.image_to_working(display, self.job.geo)
            return self.torch.from_numpy(arr)[None].to(self.job.device)

    def keys(self, prop: Any, frame: int, image: Any, *, use_cache: bool = True) -> Any:
        key = digest(self.key_id, self.fingerprint(frame))
        with self.timer("keys"):
            cached = self.job.cache.get_keys(frame, key) if self.cache_ok and use_cache else None
            if cached is not None:
                try:
                    feats = prop.keys_from_features(cached)
                except Exception as e:  # verified, but not this version's layout: recompute (and overwrite)
                    self.job.cache.drop_keys(frame, key, f"key features do not load ({type(e).__name__}: {e})")
                else:
                    self.result.cache["keys_hit"] += 1
                    return feats
            self.result.cache["keys_miss"] += 1
            with self.torch.inference_mode():
                feats = prop.encode_keys(image)
        with self.timer("cache"):
            self._cache_put(self.job.cache.put_keys, frame, key, prop.key_features(feats))
        return feats

    def affinity(self, key: str) -> Any:
        """A step's cached key-only read/CFAR weights (from a render with another roto), or None."""
        from vom_plugin.model import Affinity

        if not self.cache_ok:
            return None
        with self.timer("cache"):
            got = self.job.cache.get_affinity(key)
        if got is None:
            self.result.cache["affinity_miss"] += 1
            return None
        try:
            aff = Affinity.from_dict(got, self.job.device)
        except Exception as e:  # verified, but not this version's layout: recompute (and overwrite it)
            self.job.cache.drop("affinity", key, f"affinity does not load ({type(e).__name__}: {e})")
            self.result.cache["affinity_miss"] += 1
            return None
        self.result.cache["affinity_hit"] += 1
        return aff

    def _cache_put(self, fn: Any, *args: Any) -> None:
        """Queue a cache write on the writer thread (FIFO), so serialising and disk time overlap compute."""
        if not self.cache_ok:
            return
        self._pending.append(self._writer.submit(fn, *args))
        while len(self._pending) > MAX_PENDING_WRITES:  # bound the memory held by queued tensors
            self._reap(self._pending.popleft())

    def _reap(self, fut: Future) -> None:
        try:
            fut.result()
        except Exception as e:  # a full, read-only or vanished cache slows this render, it never fails it
            if self.cache_ok:
                self.cache_ok = False
                self.result.warnings.append(f"cache disabled for the rest of the render: {e}")

    def flush(self) -> None:
        """Wait for every queued cache write (before reading the cache again, and before returning)."""
        with self.timer("cache"):
            while self._pending:
                self._reap(self._pending.popleft())

    # - outputs -

    def deliver(self, frame: int, source: int, alpha: np.ndarray) -> None:
        self.pending[frame].append((source, alpha))
        if len(self.pending[frame]) < self.expected[frame]:
            return
        parts = sorted(self.pending.pop(frame), key=lambda p: p[0])
        weights = _weights(frame, [s for s, _ in parts])
        blended = sum(w * a for w, (_, a) in zip(weights, parts, strict=True)) if len(parts) > 1 else parts[0][1]
        self.write(frame, np.asarray(blended, dtype=np.float32))

    def write(self, frame: int, alpha_work: np.ndarray) -> None:
        from vom_plugin import io as vio

        plate, display = self.plate(frame)
        with self.timer("upsample"):
            alpha = fr.alpha_to_plate(alpha_work, self.job.geo, display)
        path = vio.frame_path(self.shot.out, frame)
        meta = {"vom/version": __version__, "vom/model": self.shot.model, "vom/frame": str(frame),
                "vom/keyframes": ",".join(str(k) for k in self.shot.keyframes),
                "vom/working_size": str(self.shot.working_size)}
        with self.timer("write"):
            vio.write_alpha(path, alpha, plate.info, channel=self.shot.channel, compression=self.shot.compression,
                            output=self.shot.output, rgb=plate.rgb if self.shot.output != "alpha" else None,
                            metadata=meta)
        self.result.frames.append(frame)
        self.result.paths.append(Path(path))
        self.done += 1
        if self.progress:
            self.progress({"event": "frame", "frame": frame, "done": self.done, "total": len(self.job.frames),
                           "path": str(path), "timings": self.timer.take()})

    def check_stop(self) -> None:
        if self.stop.signal is not None:
            name = signal.Signals(self.stop.signal).name
            raise CancelledError(f"stopped by {name} after {self.done} of {len(self.job.frames)} frames; "
                                 f"the frames written are complete and the next render resumes from the cache")

    # - passes -

    def run_pass(self, p: _Pass) -> None:
        cache, job = self.job.cache, self.job
        self.flush()  # what earlier passes queued is on disk before this one looks for it
        chain = digest("pass", job.model_id, self.settings, p.keyframe, job.roto_fp[p.keyframe], p.direction)
        # the same chain without the roto: the key-only weights of each step (see ShotCache)
        aff_chain = digest("affinity", job.model_id, self.settings, p.keyframe, p.direction)
        hashes, aff_hashes = [], []
        for f in p.frames:
            chain = digest(chain, f, self.fingerprint(f))
            aff_chain = digest(aff_chain, f, self.fingerprint(f))
            hashes.append(chain)
            aff_hashes.append(aff_chain)
        n = len(p.frames)
        start, prop = self._resume_point(hashes, n)
        deliver_from = 0
        for i in range(start):  # predictions on disk: delivered without computing
            f = p.frames[i]
            if f not in p.serves:
                continue
            alpha = self._cached_alpha(hashes[i])
            if alpha is None:  # damaged, or evicted since the check: compute from a state before it
                start, prop = self._resume_point(hashes, i)
                deliver_from = i
                break
            self.result.cache["steps_cached"] += 1
            self.deliver(f, p.keyframe, alpha)
            self.check_stop()
        if start == n:
            return
        if prop is None:
            prop = self._propagator()
        written_states: list[int] = []
        last_state_t = time.perf_counter()
        for i in range(start, n):
            f = p.frames[i]
            image = self.image(f)
            hits = self.result.cache["keys_hit"]
            keys = self.keys(prop, f, image)
            affinity = self.affinity(aff_hashes[i])
            try:
                out = self._step(prop, i, f, image, keys, affinity)
            except Exception as e:
                if self.result.cache["keys_hit"] == hits and affinity is None:
                    raise  # nothing came from the cache: a real error
                # Verified entries that do not fit this step (a forger who knows the format, or another
                # version's layout): drop them and compute the step from the pixels alone.
                why = f"does not fit step {i} ({type(e).__name__}: {e})"
                cache.drop_keys(f, digest(self.key_id, self.fingerprint(f)), f"key features {why}")
                if affinity is not None:
                    cache.drop("affinity", aff_hashes[i], f"affinity {why}")
                keys, affinity = self.keys(prop, f, image, use_cache=False), None
                out = self._step(prop, i, f, image, keys, None)
            with self.timer("propagate"):
                alpha = out.alpha[0, 0].detach().float().cpu().contiguous()
            self.result.cache["steps_computed"] += 1
            if affinity is None and out.affinity is not None:
                with self.timer("cache"):
                    self._cache_put(cache.put_affinity, aff_hashes[i], out.affinity.to_dict())
            save_state = self.cache_ok and (i == n - 1 or self.stop.signal is not None
                                            or time.perf_counter() - last_state_t >= self.state_interval)
            with self.timer("cache"):
                self._cache_put(cache.put_alpha, hashes[i], {"alpha": alpha})
                if save_state:
                    self._cache_put(cache.put_state, hashes[i], _snapshot(prop.state_dict()))
                    if written_states:  # one mid-pass state per pass is enough to resume: keep the disk bounded
                        self._cache_put(cache.drop_state, hashes[written_states[-1]])
                    written_states.append(i)
                    last_state_t = time.perf_counter()
            if f in p.serves and i >= deliver_from:  # frames before deliver_from came from the cache already
                self.deliver(f, p.keyframe, alpha.numpy())
            self.check_stop()

    def _step(self, prop: Any, i: int, frame: int, image: Any, keys: Any, affinity: Any) -> Any:
        with self.timer("propagate"), self.torch.inference_mode():
            if i == 0:
                mask = self.torch.from_numpy(fr.mask_to_working(self.job.rotos[frame], self.job.geo))[None]
                return prop.add_keyframe(image, keys, mask.to(self.job.device), affinity)
            return prop.step(image, keys, affinity)

    def _propagator(self) -> Any:
        from vom_plugin.engine.propagate import Propagator

        job = self.job
        return Propagator(job.model, memory=self.shot.memory, top_k=self.shot.top_k, device=job.device)

    def _resume_point(self, hashes: list[str], limit: int) -> tuple[int, Any]:
        """(index to compute from, a Propagator holding the memory state there or None for a fresh one).

        The furthest step below ``limit`` whose memory state is on disk and loads, with every earlier
        prediction there too; ``limit`` itself when every prediction of the pass is on disk.
        """
        if not self.cache_ok:
            return 0, None
        cache = self.job.cache
        with self.timer("cache"):
            have = [cache.has_alpha(h) for h in hashes[:limit]]
        first_missing = have.index(False) if False in have else limit
        if first_missing == len(hashes):
            return first_missing, None
        for i in range(first_missing - 1, -1, -1):
            if not cache.has_state(hashes[i]):
                continue
            with self.timer("cache"):
                state = cache.get_state(hashes[i])
            if state is None:
                continue
            prop = self._propagator()
            try:
                prop.load_state_dict({k: v.to(self.job.device) for k, v in state.items()})
                if prop.t != i + 1 or not len(prop.bank):  # a state after step i has seen i + 1 frames
                    raise ValueError(f"it holds {len(prop.bank)} memory frames after {prop.t} steps, "
                                     f"expected step {i + 1}")
            except Exception as e:  # verified bytes of a layout this version does not read: a miss
                cache.drop("state", hashes[i], f"memory state does not load ({type(e).__name__}: {e})")
                continue
            return i + 1, prop
        return 0, None

    def _cached_alpha(self, key: str) -> np.ndarray | None:
        """A step's cached prediction, checked for the shape this render computes; None when unusable."""
        with self.timer("cache"):
            got = self.job.cache.get_alpha(key) if self.cache_ok else None
        if got is None:
            return None
        alpha = got.get("alpha")
        w, h = self.job.geo.padded
        if alpha is None or tuple(alpha.shape) != (h, w) or alpha.dtype != self.torch.float32:
            shape = None if alpha is None else tuple(alpha.shape)
            self.job.cache.drop("alpha", key, f"prediction of shape {shape}, expected {(h, w)} float32")
            return None
        return alpha.numpy()

    def run(self) -> RenderResult:
        job = self.job
        passes = plan_passes(job.all_frames, list(self.shot.keyframes), job.frames)
        for p in passes:
            for f in p.serves:
                self.expected[f] = self.expected.get(f, 0) + 1
        unserved = [f for f in job.frames if f not in self.expected]
        if unserved:  # plan() covers every frame; this guards the invariant rather than writing nothing
            raise RuntimeError(f"no propagation pass reaches frames {unserved[:5]}")
        if self.progress:
            self.progress({"event": "start", "total": len(job.frames), "frames": [job.frames[0], job.frames[-1]],
                           "device": str(job.device), "shot": self.shot.plate, "out": self.shot.out,
                           "cache": str(job.cache.dir)})
        from vom_plugin.engine.device import oom_guard

        with oom_guard(self.shot.working_size):  # a CUDA OOM names the working size to lower (exit 2)
            for p in passes:
                self.run_pass(p)
        self.flush()
        with self.timer("cache"):
            if self.cache_ok:
                try:
                    job.cache.evict()
                except Exception as e:  # eviction is housekeeping: the frames are written, say so and go on
                    self.result.warnings.append(f"cache eviction failed: {e}")
        dropped = job.cache.dropped
        if dropped:
            self.result.warnings.append(f"cache: {len(dropped)} damaged entr{'y' if len(dropped) == 1 else 'ies'} "
                                        f"dropped and recomputed (first: {dropped[0]})")
        return self.result


def render(shot: Shot, progress: ProgressCallback | None = None) -> RenderResult:
    """Render ``shot``: validate everything, then propagate, lift and write every requested frame.

    ``progress`` receives event dicts (see ``engine.progress``). Raises InputError on bad input before
    any work, CancelledError when SIGINT/SIGTERM arrived (after the frame in hand is complete).
    """
    t0 = time.perf_counter()
    job = prepare(shot)
    with _signals() as stop:
        r = _Render(job, progress, stop)
        try:
            result = r.run()
        finally:
            # Also on cancel: the state saved for the frame in hand reaches the disk before we exit.
            r.flush()
            r._writer.shutdown(wait=True)
            r.result.elapsed = time.perf_counter() - t0
    # Passes finish frames out of order (and a recomputed pass may rewrite one): report each once, sorted.
    written = dict(sorted(zip(result.frames, result.paths, strict=True)))
    result.frames, result.paths = list(written), list(written.values())
    if progress:
        progress(result.summary())
    return result


def bench_cache(shot: Shot, *, dilate_px: int = 3) -> dict[str, Any]:
    """Cold render vs a re-render after only the roto changed (the key and affinity caches' job), fresh cache.

    The shot's cache and out are replaced by temporary folders; the changed roto is the first keyframe's
    roto dilated by ``dilate_px``. Returns seconds, the speed-up and the cache counters of both renders.
    """
    import dataclasses
    import tempfile

    import cv2

    from vom_plugin import io as vio

    with tempfile.TemporaryDirectory(prefix="vom-bench-cache-") as tmp:
        tmp_path = Path(tmp)
        base = dataclasses.replace(shot, cache=tmp_path / "cache", out=str(tmp_path / "out" / "a.####.exr"))
        kf, roto_path = next(iter(base.keyframes.items()))
        first = vio.read_plate(vio.open_sequence(base.plate, [kf]).path(kf))
        mask = vio.read_roto(roto_path, tuple(first.size))
        kernel = np.ones((2 * dilate_px + 1, 2 * dilate_px + 1), np.uint8)
        grown = cv2.dilate(mask.astype(np.uint8), kernel).astype(np.float32)
        changed = tmp_path / f"roto_dilated.{kf:04d}.exr"
        vio.write_alpha(changed, grown, first.info)
        # Warm the process up first (thread pools, allocator, the prepared network) on a throwaway cache,
        # so "cold" means a cold cache, not a cold process.
        seq = vio.open_sequence(base.plate, base.frames)
        warm_frames = [f for f in seq.frames if f >= kf][:4] or [kf]
        render(dataclasses.replace(base, frames=warm_frames, cache=tmp_path / "warmup",
                                   out=str(tmp_path / "w.####.exr")))
        # CPU seconds as well as wall seconds: on a shared machine the wall clock mostly measures the neighbours.
        c0 = time.process_time()
        cold = render(base)
        c1 = time.process_time()
        warm = render(dataclasses.replace(base, keyframes={**base.keyframes, kf: changed}))
        c2 = time.process_time()
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"frames": len(cold.frames), "plate_size": list(first.size), "working_size": base.working_size,
            "device": cold.device, "cold_s": round(cold.elapsed, 3), "roto_changed_s": round(warm.elapsed, 3),
            "speedup": round(cold.elapsed / max(warm.elapsed, 1e-9), 2),
            "cold_cpu_s": round(c1 - c0, 3), "roto_changed_cpu_s": round(c2 - c1, 3),
            "speedup_cpu": round((c1 - c0) / max(c2 - c1, 1e-9), 2), "load_average_1min": load,
            "cold_timings": {k: round(v, 3) for k, v in cold.timings.items()},
            "roto_changed_timings": {k: round(v, 3) for k, v in warm.timings.items()},
            "cold_cache": cold.cache, "roto_changed_cache": warm.cache}


def run_cache_bench(*, config: str = "lite", model: str | None = None, shot_file: str | None = None,
                    device: str = "auto", threads: int | None = None) -> dict[str, Any]:
    """``vom bench --cache``: bench_cache on a shot file (default: the shipped demo shot).

    ``model`` None uses seeded random weights of ``config`` (the speed-up does not depend on training).
    """
    import tempfile

    import torch

    from vom_plugin.locations import demo_dir

    if threads:
        torch.set_num_threads(threads)
    shot_path = Path(shot_file) if shot_file else demo_dir() / "shot.yaml"
    with tempfile.TemporaryDirectory(prefix="vom-bench-model-") as tmp:
        if model is None:
            from vom_plugin.engine.weights import save_weights
            from vom_plugin.model import build_model

            torch.manual_seed(0)
            model = str(Path(tmp) / f"{config}.safetensors")
            save_weights(build_model(config), model)
            label = f"{config} (random weights)"
        else:
            label = model
        shot = Shot.from_yaml(shot_path, model=model, device=device)
        result = bench_cache(shot)
    result.update({"shot": str(shot_path), "model": label, "threads": torch.get_num_threads()})
    return result


def format_cache_bench(r: dict[str, Any]) -> str:
    w, h = r["plate_size"]
    lines = [f"cache bench: {r['shot']} ({r['frames']} frames, {w}x{h}, working size {r['working_size']}), "
             f"model {r['model']}, {r['device']}, {r['threads']} threads",
             f"  cold cache            {r['cold_s']:8.2f} s   {r['cold_timings']}",
             f"  only the roto changed {r['roto_changed_s']:8.2f} s   {r['roto_changed_timings']}",
             f"  speed-up              {r['speedup']:8.2f} x wall, {r['speedup_cpu']:.2f} x CPU time "
             f"({r['cold_cpu_s']:.1f} -> {r['roto_changed_cpu_s']:.1f} CPU s; load average {r['load_average_1min']})",
             f"  key features: {r['roto_changed_cache']['keys_hit']} hits, {r['roto_changed_cache']['keys_miss']} "
             f"misses; read/CFAR weights: {r['roto_changed_cache']['affinity_hit']} hits, "
             f"{r['roto_changed_cache']['affinity_miss']} misses on the re-render"]
    return "\n".join(lines)
