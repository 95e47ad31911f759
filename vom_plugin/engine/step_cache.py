"""The pass runner's use of the per-shot cache: what a step reads, what it stores, on a writer thread.

Per plate frame: key features (``Propagator.key_features``). Per step of a pass: the prediction, the
memory read's matches and CFAR's weights at 1/16 and 1/4 (``Affinity.to_dict``) and, now and then, the memory bank
(see ``STATE_INTERVAL_S``). Writes run on one writer thread in order, so serialising and disk time overlap
compute; a write that fails stops the writes for the rest of the run with one warning (the reads go on), never the run.
Anything read that does not fit is dropped (``ShotCache.drop``) and computed from the pixels: a cache can
make a run slower, never different.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Sized
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from vom_plugin.engine.cache import ShotCache, digest
from vom_plugin.engine.helper_threads import lower_this_thread
from vom_plugin.engine.resume import resume_point, step_addresses

# Memory states are big (tens of MB a frame at 960 px), so a pass writes one when the last is this old
# (a killed render redoes at most that much work), at the end of what it was asked for when that cuts the
# pass short (the next farm chunk starts there) and when cancelled; it deletes the one before. 0 writes one
# every frame. A pass that ran its whole course saves none at its end: no render resumes after it (it ends
# at the timeline's end or at the keyframe it meets), and writing it held up the end of every render (the
# render waits for the writer thread), and the states it saved on its
# way are removed when it ends (``pass_complete``).
STATE_INTERVAL_S = 10.0
MAX_PENDING_WRITES = 4
# What the cached tensors hold and at which precision (half-precision features and weights in 2; 8-bit codes of
# the features, the 1/16 read's weights and CFAR's coarse weights in 3; in 4 CFAR's weights at 1/16 only; since 5
# at 1/16 and 1/4):
# part of every address, so entries of another layout are never looked up and age out.
CACHE_LAYOUT = 5


def state_interval() -> float:
    """Seconds between saved memory states: ``VOM_STATE_INTERVAL_S``, else STATE_INTERVAL_S."""
    from vom_plugin.envvars import env_float

    return env_float("VOM_STATE_INTERVAL_S", STATE_INTERVAL_S, expected="seconds between saved memory states")


def _snapshot(state: dict[str, Any]) -> dict[str, Any]:
    """Own copies of CPU tensors, laid out as they are stored: the writer thread serialises them while the pass
    goes on, and a copy made there (channels-last read-outs made contiguous) would run a torch kernel on a second
    thread, whose second OpenMP team competes with the render's for the cores."""
    import torch

    return {k: v.clone(memory_format=torch.contiguous_format) if v.device.type == "cpu" else v.cpu().contiguous()
            for k, v in state.items()}


def _entries(items: Sized, kind: str = "") -> str:
    """"1 entry", "3 damaged entries": how many of ``items``, for the warnings at the end of a run."""
    return f"{len(items)} {kind + ' ' if kind else ''}entr{'y' if len(items) == 1 else 'ies'}"


class StepCache:
    """One run's view of a ``ShotCache``. ``result``: the run's RenderResult (counters, warnings)."""

    def __init__(self, store: ShotCache, *, model_id: str, settings: dict[str, Any], key_settings: list[Any],
                 device: Any, result: Any, stopping: Callable[[], bool]) -> None:
        self.store = store
        self.model_id = model_id
        self.settings = {**settings, "cache_layout": CACHE_LAYOUT}
        self.key_id = digest("keys", model_id, *key_settings, CACHE_LAYOUT)
        self.device = device
        self.result = result
        self.stopping = stopping
        # entries are always read (each verified: a cache never changes a pixel); written unless the store cannot
        # be, and until a write fails (which stops the writes, not the reads)
        self.writing = not store.read_only
        if store.read_only:
            result.warnings.append(f"cache read, not written: {store.read_only}")
        self.fingerprint: Callable[[int], str] = str
        self.state_interval = state_interval()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vom-cache-writer",
                                          initializer=lower_this_thread)
        self._pending: deque[Future] = deque()
        # at nice 19 like the writer: it reads in the gaps the network leaves, never between its threads
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vom-cache-reader",
                                          initializer=lower_this_thread)
        self._ahead: dict[tuple[str, str], Future] = {}
        # per chain (an object's run through a pass, named by its first step's address): the step of its
        # mid-pass state on disk, and when it was written
        self._states: dict[str, list[int]] = {}
        self._last_state_t: dict[str, float] = {}

    # - addresses and resuming -

    def addresses(self, p: Any, fingerprint: Callable[[int], str], roto_fp: str, anchor_fp: str = ""
                  ) -> tuple[list[str], list[str]]:
        """Start an object's run through a pass (``roto_fp``: its keyframe roto's fingerprint; ``anchor_fp``:
        that of the keyframe the pass runs toward, which it reads too): what earlier passes queued reaches the
        disk, then its step addresses. The object's name is not in them: the same roto computes the same
        pixels under any name, or alone."""
        self.flush()
        self._forget_reads()  # read before this pass's writes reached the disk, or never used: read again
        self.fingerprint = fingerprint
        anchor = None if p.toward is None else (p.toward, anchor_fp)
        steps, affs = step_addresses(self.model_id, self.settings, p.keyframe, roto_fp, p.direction, p.frames,
                                     fingerprint, anchor)
        if steps:
            self._states[steps[0]], self._last_state_t[steps[0]] = [], time.perf_counter()
        return steps, affs

    def resume(self, steps: list[str], limit: int, new_propagator: Callable[[], Any],
               served: list[bool] | None = None) -> tuple[int, Any]:
        start, prop = resume_point(self.store, steps, limit, new_propagator, self.device, served)
        if prop is not None:  # the state it goes on from is the chain's on disk: the next one saved replaces it
            states = self._states.setdefault(steps[0], [])
            if start - 1 not in states:
                states.append(start - 1)
        return start, prop

    # - reads -

    def _key_address(self, frame: int) -> str:
        return digest(self.key_id, self.fingerprint(frame))

    def read_ahead(self, frames: list[int], affs: list[str] | None) -> None:
        """Start reading the entries of coming steps on the reader thread (each frame's key features, and each
        step's affinity at ``affs`` unless None); ``keys`` and ``affinity`` take them from there. An entry that
        is not on disk yet reads as a miss, as it would have when looked up then."""
        for j, frame in enumerate(frames):
            key = self._key_address(frame)
            if ("keys", key) not in self._ahead:
                self._ahead[("keys", key)] = self._reader.submit(self.store.get_keys, frame, key)
            if affs is not None and ("affinity", affs[j]) not in self._ahead:
                self._ahead[("affinity", affs[j])] = self._reader.submit(self.store.get_affinity, affs[j])

    def _read(self, kind: str, address: str, read: Callable[[], Any]) -> Any:
        fut = self._ahead.pop((kind, address), None)
        return read() if fut is None else fut.result()

    def _forget_reads(self) -> None:
        for fut in self._ahead.values():
            fut.cancel()
        for fut in self._ahead.values():
            with contextlib.suppress(Exception):  # a read's error is raised where the entry is used, or nowhere
                fut.result()
        self._ahead.clear()

    def keys(self, prop: Any, frame: int) -> Any:
        """The frame's KeyFeatures from the cache, or None (counted as a hit here; misses by the caller)."""
        key = self._key_address(frame)
        cached = self._read("keys", key, lambda: self.store.get_keys(frame, key))
        if cached is None:
            return None
        try:
            feats = prop.keys_from_features(cached)
        except Exception as e:  # verified, but not this version's layout: recompute (and overwrite)
            self.store.drop_keys(frame, key, f"key features do not load ({type(e).__name__}: {e})")
            return None
        self.result.cache["keys_hit"] += 1
        return feats

    def affinity(self, address: str) -> Any:
        """A step's cached key-only memory matches and CFAR's weights at 1/16 (from a render with another roto;
        those at 1/8 and 1/4 are computed by the step), or None."""
        from vom_plugin.model import Affinity

        got = self._read("affinity", address, lambda: self.store.get_affinity(address))
        if got is None:
            self.result.cache["affinity_miss"] += 1
            return None
        try:
            aff = Affinity.from_dict(got, self.device)
        except Exception as e:  # verified, but not this version's layout: recompute (and overwrite it)
            self.store.drop("affinity", address, f"affinity does not load ({type(e).__name__}: {e})")
            self.result.cache["affinity_miss"] += 1
            return None
        self.result.cache["affinity_hit"] += 1
        return aff

    def alpha(self, address: str, padded: tuple[int, int], *, mask: bool = False
              ) -> tuple[np.ndarray, np.ndarray | None] | None:
        """A step's cached prediction (alpha, and its semantic mask when ``mask``, else None), in half precision as
        a computed step delivers it, checked for the shape this run computes; None when unusable."""
        import torch

        got = self.store.get_alpha(address)
        if got is None:
            return None
        w, h = padded
        out = []
        if mask and "mask" not in got:
            return None  # rendered without the mask: a miss (the step is computed again and stored with it)
        for name in ("alpha", "mask") if mask else ("alpha",):
            t = got.get(name)
            if t is None or tuple(t.shape) != (h, w) or t.dtype != torch.float16:
                shape = None if t is None else tuple(t.shape)
                self.store.drop("alpha", address, f"{name} of shape {shape}, expected {(h, w)} float16")
                return None
            out.append(t.numpy())  # half, as a computed step delivers it
        return out[0], (out[1] if mask else None)

    def drop_step_inputs(self, frame: int, affinity: str | None, why: str) -> None:
        """Verified key features (and affinity) that loaded, then did not fit the step: a miss from now on."""
        self.store.drop_keys(frame, self._key_address(frame), f"key features {why}")
        if affinity is not None:
            self.store.drop("affinity", affinity, f"affinity {why}")

    # - writes -

    def put_keys(self, prop: Any, frame: int, feats: Any) -> None:
        self._put(self.store.put_keys, frame, self._key_address(frame), prop.key_features(feats))

    def after_step(self, prop: Any, steps: list[str], affs: list[str], i: int, n: int, alpha: Any,
                   affinity: Any, *, mask: Any = None, cut: bool = True) -> None:
        """Store step ``i``'s prediction (alpha, and its semantic ``mask`` when the render writes it), its
        freshly computed ``affinity`` (None when it came from the cache or another object stored it) and the
        memory bank when it is time (see STATE_INTERVAL_S); one mid-pass state is kept per chain. ``cut``:
        the pass stops at step ``n - 1`` short of its planned end (a state is saved there to go on from)."""
        if affinity is not None:
            self._put(self.store.put_affinity, affs[i], affinity.to_dict())
        self._put(self.store.put_alpha, steps[i], {"alpha": alpha} if mask is None else {"alpha": alpha, "mask": mask})
        chain = steps[0]
        if self.writing and ((cut and i == n - 1) or self.stopping()
                        or time.perf_counter() - self._last_state_t.get(chain, 0.0) >= self.state_interval):
            self._save_state(prop, steps, i)

    def before_stop(self, prop: Any, steps: list[str], i: int) -> None:
        """The render stops after step ``i``: its memory state is saved if a stop that came after ``after_step``
        (while the frame was delivered, as a host reacting to its progress event sends one) found none there,
        so the next render resumes from it instead of from the keyframe."""
        if self.stopping():
            self._save_unless_saved(prop, steps, i)

    def before_error(self, prop: Any, steps: list[str], i: int) -> None:
        """The render fails after step ``i`` (a plate frame that does not read, an output that cannot be written):
        its memory state is saved unless it is already, so the next render goes on from there, as after a cancel."""
        self._save_unless_saved(prop, steps, i)

    def _save_unless_saved(self, prop: Any, steps: list[str], i: int) -> None:
        states = self._states.get(steps[0], [])
        if self.writing and (not states or states[-1] != i):
            self._save_state(prop, steps, i)

    def pass_complete(self, steps: list[str]) -> None:
        """A pass ran its whole course (to the timeline's end or the keyframe it meets) with every prediction
        stored: a render with this roto reads them all and one with another roto addresses other states, so the
        chain's memory states only took room (76 MB at 960x540, 40 times a frame's entries) and go."""
        self.flush()  # states still queued reach the disk first, to be seen and removed
        if not self.writing:
            return
        for key in steps:
            if self.store.has_state(key):
                self._put(self.store.drop_state, key)
        self._states.pop(steps[0], None)

    def _save_state(self, prop: Any, steps: list[str], i: int) -> None:
        chain = steps[0]
        states = self._states.setdefault(chain, [])
        # one mid-pass state per chain is enough to resume: keep the disk bounded. Also the one this render
        # went on from (a farm chunk's predecessor's): each chunk of a pass left its own, 76 MB at 960x540. Those
        # before it go once it is written (one the size cap did not take left the chain without any: review)
        self._put(self._put_state_then_drop, steps[i], _snapshot(prop.state_dict()),
                  [steps[j] for j in states if j != i])
        states[:] = [i]
        self._last_state_t[chain] = time.perf_counter()

    def _put_state_then_drop(self, key: str, tensors: dict[str, Any], older: list[str]) -> None:
        # the older ones go only once the new one is on disk: the size cap's eviction, run as it was written, may
        # have taken it (review: the chain was left without any, and every other farm chunk began at its keyframe)
        if self.store.put_state(key, tensors) and self.store.has_state(key):
            for k in older:
                self.store.drop_state(k)

    def plate_digest(self, fingerprint: str) -> str | None:
        """A plate frame's content digest kept under its fingerprint (``ShotCache.get_digest``), or None."""
        try:
            return self.store.get_digest(fingerprint)
        except OSError:  # the memo is a saving: a cache that cannot be read reads the frame instead
            return None

    def put_plate_digest(self, fingerprint: str, content: str) -> None:
        """Keep a plate frame's content digest under its fingerprint (main thread: the writer's queue is its)."""
        self._put(self.store.put_digest, fingerprint, content)

    def _put(self, fn: Any, *args: Any) -> None:
        """Queue a cache write on the writer thread (FIFO)."""
        if not self.writing:
            return
        self._pending.append(self._writer.submit(fn, *args))
        while len(self._pending) > MAX_PENDING_WRITES:  # bound the memory held by queued tensors
            self._reap(self._pending.popleft())

    def _reap(self, fut: Future) -> None:
        try:
            fut.result()
        except Exception as e:  # a full, read-only or vanished cache slows this run, it never fails it
            if self.writing:  # what it holds is still read: each entry is verified as it is read
                self.writing = False
                self.result.warnings.append(f"cache {self.store.root} not written for the rest of the render (what "
                                            f"it holds is still read): {e}")

    def cap_note(self) -> str:
        """What the size cap did to this shot's entries ("" when nothing)."""
        n = self.store.evicted_own
        if not n:
            return ""
        return (f"the size cap ({self.store.max_bytes / 2**30:.3g} GiB, VOM_CACHE_MAX_GB) deleted or did not take "
                f"{_entries(range(n))} of this shot as it rendered: the next render computes them again; raise "
                f"the cap to keep a shot's cache")

    def flush(self) -> None:
        """Wait for every queued write (before reading the cache again, and before returning)."""
        while self._pending:
            self._reap(self._pending.popleft())

    def close(self) -> None:
        """Flush, shut the writer and the reader down (what was written and not evicted is marked in the cache's
        root as it was written: the next render evicts it)."""
        self.flush()
        self._writer.shutdown(wait=True)
        self._forget_reads()
        self._reader.shutdown(wait=True)

    def finish(self) -> None:
        """At the end of a run: evict to the size cap, and say which entries it could not use or write (damaged,
        taken by a folder, unreadable to this user, signed with another key)."""
        self.flush()
        # a render that wrote nothing, after renders that evicted, adds nothing to cap (it scanned every entry of
        # every shot under the lock, 3 s at 90k: QA)
        if self.writing and self.store.evict_due:
            try:
                self.store.evict()
            except Exception as e:  # eviction is housekeeping: the frames are written, say so and go on
                self.result.warnings.append(f"cache eviction failed: {e}")
        store, warn = self.store, self.result.warnings.append
        if store.evicted_own:
            warn(f"cache: {self.cap_note()}")
        if store.evicted_recent_others:  # a farm's renders sharing a cache too small for their shots together (QA)
            others = sorted(store.evicted_recent_others)
            warn(f"cache: to stay under its size cap ({store.max_bytes / 2**30:.3g} GiB, VOM_CACHE_MAX_GB) this render "
                 f"deleted entries of {len(others)} other shot{'s' if len(others) > 1 else ''} used within the hour "
                 f"({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}): renders sharing this cache need "
                 f"more than it holds, and theirs compute those steps again; raise the cap")
        if store.dropped:
            left = " (left in the cache, which this render does not write)" if store.read_only else ""
            warn(f"cache: {_entries(store.dropped, 'damaged')} {'not used' if left else 'dropped'} and recomputed"
                 f"{left} (first: {store.dropped[0]})")
        if store.blocked:
            one = len(store.blocked) == 1
            warn(f"cache: {_entries(store.blocked)} not cached: a folder vom did not make is at "
                 f"{'its path' if one else 'their paths'} (first: {store.blocked[0]}); "
                 f"remove {'it' if one else 'them'}")
        if store.unreadable:
            warn(f"cache: {_entries(store.unreadable)} this user may not read were recomputed (first: "
                 f"{store.unreadable[0]}); in a cache shared by several users, every one needs a umask that lets the "
                 f"others read (002)")
        if store.foreign:
            path, why = store.foreign[0].rsplit(": ", 1)
            warn(f"cache: {_entries(store.foreign)} not used and recomputed: {why} (first: {path}); every render "
                 f"sharing this cache needs the same VOM_CACHE_KEY")
