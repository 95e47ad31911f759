"""``render(shot)``: the product's main job, from plate and roto files to EXR alphas, resumable.

1. Validate everything (plate frames on disk, rotos, model, output and cache folders) before any frame is
   computed (``engine.prepare``), so bad input costs nothing and exits 2 from the CLI.
2. Run the shot through the pass runner (``engine.passes``) over the plate's frames on disk, with the
   per-shot cache (``engine.step_cache``): a killed render, the next farm chunk, or a re-render in which
   nothing upstream changed resumes from the furthest step on disk; after a roto edit, key features and
   the memory read's top-k matches come from the cache.
3. Write each frame's alpha atomically (``io.write_alpha``) as the runner delivers it, with a progress
   event; SIGINT/SIGTERM stop after the frame in hand.
"""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from vom_plugin import __version__
from vom_plugin.digest import build_id
from vom_plugin.engine.file_source import FileSource
from vom_plugin.engine.helper_threads import lower_this_thread
from vom_plugin.engine.memo import Memo
from vom_plugin.engine.models import LoadedModels
from vom_plugin.engine.passes import STAGES, PassRunner, RenderResult, Timer
from vom_plugin.engine.prepare import Job, prepare, remove_empty_folders, shares_roto
from vom_plugin.engine.progress import ProgressCallback
from vom_plugin.engine.resume import PREDICTION_ARITHMETIC
from vom_plugin.engine.shot import Shot, keyframes_stamp
from vom_plugin.engine.shot_plate import gain_stamp, picture_stamp
from vom_plugin.engine.step_cache import StepCache, state_interval
from vom_plugin.engine.stop import Stop, signals
from vom_plugin.errors import CancelledError, InputError, VomError, attached_result, users_file_error
from vom_plugin.grammar import object_channel
from vom_plugin.io.output_claim import OutputClaim
from vom_plugin.io.output_guard import identity as folder_identity
from vom_plugin.io.sequence import written_list

__all__ = ["STAGES", "LoadedModels", "RenderResult", "Stop", "prepare", "render", "state_interval"]
MAX_PENDING_OUTPUTS = 2  # frames handed to the output thread and not yet on disk (bounds the memory held)

# -- the render --------------------------------------------------------------------------------------------

# A keyframe's matte under this everywhere is empty: warned as such, not as a matte off its roto
EMPTY_MATTE = 0.1


class _Render:
    """One render: the pass runner with the plate files in, the cache, and EXR files and progress out."""

    def __init__(self, job: Job, progress: ProgressCallback | None, stop: Stop) -> None:
        self.job = job
        self.shot = job.shot
        self.progress = progress
        self.stop = stop
        self.result = RenderResult(device=str(job.device))
        self.timer = Timer(self.result)
        self.source = FileSource(job)
        self.done = 0
        self.files_of: dict[int, list[Path]] = {}  # frame -> its files, for the result in frame order
        # the output folders prepare made or found, by identity: one removed and made again meanwhile is another
        self.folders = {Path(p).parent: folder_identity(Path(p).parent) for p in self.shot.out_patterns().values()}
        self._out = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vom-exr-writer",
                                       initializer=lower_this_thread)
        self._writes: deque[tuple[int, list[Path], Future]] = deque()
        self._digests: dict[int, str | None] = {}  # plate frame -> vom:plate, taken once (output thread)
        # plate frames on the way that this render does not write -> their digests, as the cache kept them
        self._kept_digests: dict[int, str] = {}
        self._new_digests: deque[tuple[str, str]] = deque()  # (fingerprint, digest) for the cache (main thread)
        self._writes_frames = set(job.frames)
        self._passes: list[Any] | None = None  # every object's passes over the timeline (vom:through)
        self.cache: StepCache | None = None
        self._warned = 0  # the warnings sent as events so far
        self.result.warnings.extend(job.notes)
        if job.cache_off:
            self.result.warnings.append(job.cache_off)
        else:
            import torch

            # a CPU's thread count splits the float sums another way (1 and 2 threads differ by up to 2.4e-4): a
            # render on another number of threads neither reuses nor continues from what this one caches
            threads = torch.get_num_threads() if job.device.type == "cpu" else 0
            from vom_plugin.engine.device import arithmetic_identity
            from vom_plugin.io.reader import PLATE_READING

            # the machine's arithmetic too (its CPU's kernels, torch's version): a farm node of another CPU generation
            # neither reuses nor continues from another's entries (QA: mattes neither machine computes cold)
            arithmetic = arithmetic_identity(job.device)
            settings = {"working_size": self.shot.working_size, "colorspace": self.shot.colorspace,
                        "memory": self.shot.memory, "top_k": self.shot.top_k, "device": job.device.type,
                        "padded": job.geo.padded, "size": job.geo.size, "vom": __version__.split(".")[0],
                        "threads": threads, "plate_reading": PLATE_READING, "arithmetic": arithmetic}
            # the resized size too: a plate just under the working size is enlarged now (frames.MAX_UPSCALE)
            # into the same padded size its edge-padded self had
            key_settings = [self.shot.working_size, self.shot.colorspace, job.device.type, job.geo.padded,
                            job.geo.size, threads, PLATE_READING, arithmetic]
            # the network input's exposure (a raw plate's keys as before, and an sRGB one's not brought up: it is taken
            # as it is, as before session 47)
            if job.gain != 1.0:
                settings["exposure_gain"] = job.gain
                key_settings.append(repr(job.gain))
            from vom_plugin.engine.models import network_revision

            for name, value in network_revision(getattr(getattr(job.model, "config", None), "name", "")).items():
                settings[name] = value
                key_settings.append(f"{name}={value}")
            if tuple(job.picture) != (0, 0, *job.size):  # the overscan seen, where (a plain plate's keys as before)
                settings["picture"] = list(job.picture)
                key_settings.append(settings["picture"])
            self.cache = StepCache(job.cache, model_id=job.model_id, settings=settings, key_settings=key_settings,
                                   device=job.device, result=self.result, stopping=self._stopping)
        self.runner = PassRunner(job.model, job.device, self.source, job.geo, job.rotos, self.write,
                                 memory=self.shot.memory, top_k=self.shot.top_k, cache=self.cache,
                                 result=self.result, timer=self.timer, check_stop=self.check_stop,
                                 mask=self.shot.mask_channel is not None, roto_fp=job.roto_fp,
                                 on_work=self._on_work if progress else None)

    def _on_work(self, work: dict[str, int]) -> None:
        """A step done (or read back from the cache): how far the render's work is, between the frames (which
        come in bursts: a frame between two keyframes is written when the second pass reaches it)."""
        self.reap()  # frames complete by now are announced first
        self.say_warnings()
        self.progress({"event": "step", "frames_done": self.done, **work})

    def say_warnings(self) -> None:
        """Each warning not yet sent, as a ``warning`` event (``done`` lists them all again): an artist reads "its
        matte lies mostly off its roto" at the keyframe and can stop, not after the whole shot (QA)."""
        while self.progress and self._warned < len(self.result.warnings):
            self._warned += 1
            self.progress({"event": "warning", "message": self.result.warnings[self._warned - 1]})

    def _metadata(self, frame: int, names: list[str | None]) -> dict[str, Any]:
        from vom_plugin.io.output_guard import plate_folder_stamp, plate_sequence_stamp

        objects = self.shot.objects
        # numbers as numbers (a pipeline's reader of vom:frame got the text "1001", QA)
        meta: dict[str, Any] = {"vom/version": __version__, "vom/build": build_id(),  # two builds of one version
                                "vom/model": self.shot.model, "vom/frame": frame,
                "vom/keyframes": keyframes_stamp({None: self.shot.keyframes} if objects is None
                                                 else {n: objects[n] for n in names if n}),
                "vom/working_size": self.shot.working_size,
                "vom/colorspace": self.shot.colorspace,  # what the plate was read as, for the network
                # the plate's sequence: a render into another shot's mattes is refused (QA)
                "vom/plate_sequence": plate_sequence_stamp(self.shot.plate),
                "vom/plate_folder": plate_folder_stamp(self.shot.plate),  # tells two shots' generic names apart
                # which weights made it, by their tensors: "default" names another file once the default changes
                "vom/weights": self.job.model_id,
                "vom/recipe": self.job.recipe,  # as ``prepare`` computed it, from the rotos it read
                "vom/rotos": self.job.roto_stamps,  # each roto's part of it: the check names the one that changed
                # the rest of it, setting by setting: the check names each one changed, and where the rotos alone
                # changed, flags only the frames that read one
                "vom/settings": self.job.settings_stamp,
                # the window the network saw (the display window and the overscan of the plate frames on disk, relative
                # to the display window's origin): frames delivered with other overscan later change it
                "vom/picture": picture_stamp(self.job.picture),
                "vom/exposure_gain": gain_stamp(self.job.gain),  # how the network saw the plate (io.exposure_gain)
                # which arithmetic computed it: a vom whose code gives other values for the same inputs (an upgrade
                # mid-show, a farm mid-rollout) is told apart by `vom farm check` (QA: the weights and recipe alike)
                "vom/arithmetic": PREDICTION_ARITHMETIC}
        if objects is not None:
            meta["vom/objects"] = ",".join(n for n in names if n)
        if self.shot.output != "alpha":
            # an EXR's colour is taken as premultiplied by its alpha: say which this RGB is (prepare refuses
            # rgba-premult for a file the objects share, which has no one alpha to premultiply by)
            meta["vom/output"] = self.shot.output
            meta["vom/premultiplied"] = int(self.shot.output == "rgba-premult")
        return meta

    def write(self, frame: int, mattes: dict[str | None, Any]) -> None:
        """The pass runner's sink: the frame's EXR files (one, or one per object) are written on the output
        thread while the next frame is computed (compressing and syncing them to disk need no network); its
        progress event follows once they are complete."""
        from vom_plugin import io as vio

        shot = self.shot
        if self.job.trained:
            self._check_keyframe_matte(frame, mattes)
        plate = self.source.plate(frame)
        rgb = plate.data_rgb if shot.output != "alpha" else None  # the data window: a real overscan is kept
        picture = vio.placed_at(self.job.picture, plate.info.display_window)  # the window the mattes are over
        files = []  # (path, the objects in it)
        shared = shot.objects is not None and None in shot.out_patterns()  # every object's layer in one file
        for name, pattern in shot.out_patterns().items():
            files.append((vio.frame_path(pattern, frame), list(mattes) if name is None else [name]))

        def guard(names: list[str | None]) -> Callable[[Path], None]:
            """The start's check of a file vom may not replace, asked again as the frame takes its name: a file put
            there while the render ran was replaced, a read-only one too, exit 0 (QA)."""
            from vom_plugin.io.output_guard import existing_problem

            writes = None if shot.objects is None else frozenset(n for n in names if n)

            def check(path: Path) -> None:
                self._check_folder(Path(path).parent)
                problem = existing_problem(path, frame, writes, shot.plate)
                if problem:
                    raise InputError(f"out: frame {frame} {problem} (it was put there while this render ran)")
            return check

        checks = {path: guard(names) for path, names in files}

        def write_files() -> float:
            try:
                return write_all()
            except InputError:  # as the folder went (the file's write failed first, as it happened): said so
                for path in checks:
                    self._check_folder(Path(path).parent)
                raise

        def write_all() -> float:
            t = time.perf_counter()
            for path, check in checks.items():  # each file of the frame before any takes its name: none half replaced
                check(Path(path))
            # the plate frame's bytes, on this (output) thread: `vom farm check` tells a matte of a plate re-delivered
            # since from one of the plate as it is (the recipe holds no plate pixels)
            plate_digest = self._plate_digest(frame)
            through = self._through(frame)
            for path, names in files:
                meta = self._metadata(frame, names)
                if plate_digest is not None:
                    meta["vom/plate"] = plate_digest
                if through is not None:
                    meta["vom/through"] = through
                if not shared:  # one object's file, as a single render writes it (an {object} sequence, even of a
                    # shot of one object: A and its mask, premultiplied for rgba-premult)
                    m = mattes[names[0]]
                    extra = None if m.mask is None else {object_channel(shot.channel, None, shot.mask_channel): m.mask}
                    vio.write_alpha(path, m.alpha, plate.info, channel=shot.channel, compression=shot.compression,
                                    output=shot.output, rgb=rgb, metadata=meta, extra=extra, sweep=False,
                                    window=picture, guard=checks[path], rgb_colour=self.job.rgb_colour)
                    continue
                layers = {}
                for n in names:
                    layers[object_channel(shot.channel, n, "A")] = mattes[n].alpha
                    if mattes[n].mask is not None:
                        layers[object_channel(shot.channel, n, shot.mask_channel)] = mattes[n].mask
                vio.write_layers(path, layers, plate.info, compression=shot.compression, rgb=rgb, metadata=meta,
                                 sweep=False, window=picture, guard=checks[path], rgb_colour=self.job.rgb_colour)
            return time.perf_counter() - t

        self._writes.append((frame, [Path(p) for p, _ in files], self._out.submit(write_files)))
        self.reap(wait=len(self._writes) > MAX_PENDING_OUTPUTS)

    def _plate_digest(self, frame: int) -> str | None:
        """The frame's ``vom:plate`` (``plate_stamp``), taken once a render (output thread), and kept in the cache
        under the frame's fingerprint for the renders that do not write it."""
        from vom_plugin.engine.file_source import CHANGED_SINCE_READ

        if frame not in self._digests:
            d = self._digests[frame] = self.source.plate_stamp(frame)
            fp = self.source.fingerprinted(frame)
            if self.cache is not None and d is not None and d != CHANGED_SINCE_READ and fp is not None:
                self._new_digests.append((fp, d))
        return self._digests[frame]

    def _digest_on_the_way(self, frame: int) -> str | None:
        """The content digest of a plate frame on a written frame's way (``vom:through``): one this render writes is
        read whole (``_plate_digest``); another's is the cache's, kept by the render that read it whole under the
        fingerprint this render's steps were addressed by (a chunk re-read every frame from the keyframe: quadratic in
        a span's length), where the file is still the one this render fingerprinted (else CHANGED_SINCE_READ, as
        ``plate_stamp`` says of a frame it writes: review, a frame replaced while read and put back passed the
        check). A frame changed under the same fingerprint before the render was matted from its old picture where
        the cache's steps served it, which the old digest names; `vom farm check`, reading the plate, then fails it."""
        from vom_plugin.engine.file_source import CHANGED_SINCE_READ

        if frame in self._writes_frames or self.cache is None:
            return self._plate_digest(frame)
        if frame not in self._kept_digests:
            fp = self.source.fingerprinted(frame)
            kept = None if fp is None else self.cache.plate_digest(fp)
            if kept is None:
                return self._plate_digest(frame)
            # as plate_stamp: the file is still the one this render fingerprinted and read (one stat a frame)
            self._kept_digests[frame] = kept if self.source.unchanged(frame) else CHANGED_SINCE_READ
        return self._kept_digests[frame]

    def _through(self, frame: int) -> str | None:
        """``vom:through``: a digest of the bytes of every plate frame whose picture reaches the frame's matte (the
        passes that serve it, from their keyframes): `vom farm check` recomputes it from the plate as it is, so a
        frame matted through a picture since delivered again fails even once that frame's own matte was rendered
        again (QA: a check after requeuing only the changed frame's task passed frames 0.08 off). None where a
        frame says no digest (a source in memory)."""
        from vom_plugin.engine.file_source import CHANGED_SINCE_READ
        from vom_plugin.engine.schedule import all_passes, frames_through, through_stamp

        if self._passes is None:
            self._passes = all_passes(self.job.all_frames, [sorted(kfs) for kfs in self.job.rotos.values()])
        digests = {}
        for p in frames_through(frame, self._passes):
            d = self._digest_on_the_way(p)
            if d is None or d == CHANGED_SINCE_READ:
                return d
            digests[p] = d
        return through_stamp(digests)

    def _check_folder(self, folder: Path) -> None:
        """InputError where the output ``folder`` is no longer the one the render began with: removed (the frames
        written went with it), or removed and made again (by hand, by another render's start: this render's claim
        went with the old one, review)."""
        now, then = folder_identity(folder), self.folders.get(folder)
        if then is not None and now != then:
            again = " (the folder there now is another)" if now is not None else ""
            raise InputError(f"output folder {folder} was removed while this render wrote into it, with the frames "
                             f"it had written there{again}; render again once the folder is where it should be")

    def _check_keyframe_matte(self, frame: int, mattes: dict[str | None, Any]) -> None:
        """A warning where a keyframe's own matte lies mostly off its roto: a roto of another frame (drawn on frame
        1, given as keyframe 12) mattes the object where it was, and rendered without a word (QA: the matte over
        0.5 overlapped the roto nowhere, 42% of its alpha inside it; right rotos: 77-85% overlap, 74-99% inside).
        Trained weights only: an untrained network's matte follows no roto."""
        for name, m in mattes.items():
            roto = self.job.rotos.get(name, {}).get(frame)
            if roto is None or roto.shape != m.alpha.shape:  # a keyframe's only: no copy of every frame's alpha
                continue
            if shares_roto(self.job.rotos, name, frame):  # its matte a share of the object's: said at the start (QA:
                continue  # three objects of one roto were each said to lie off it as well, "0% overlap")
            alpha = np.clip(np.asarray(m.alpha if m.own is None else m.own, np.float32), 0, 1)
            inside, solid = roto > 0.5, alpha >= 0.5
            whose = "" if name is None else f" of object {name}"
            if inside.any() and float(alpha.max()) < EMPTY_MATTE:  # not "off its roto": there is no matte (QA)
                self.result.warnings.append(
                    f"keyframe {frame}{whose}: its matte is empty (alpha {float(alpha.max()):.2g} at most) where its "
                    f"roto ({self.shot.rotos()[name][frame]}) covers {100 * float(inside.mean()):.2g}% of the frame: "
                    f"the network sees no object there (a blank or flat plate frame?)")
                continue
            union = int((inside | solid).sum())
            overlap = int((inside & solid).sum()) / union if union else 1.0
            total = float(alpha.sum())
            share = float(alpha[inside].sum()) / total if total > 0 else 1.0
            if overlap < 0.2 and share < 0.5:
                self.result.warnings.append(
                    # (QA: "0% overlap, 43% of the matte inside it" read as a contradiction: the first is of the
                    # solid part's area, the second of the alpha's whole sum)
                    f"keyframe {frame}{whose}: its matte lies mostly off its roto (its solid part, alpha 0.5 and "
                    f"over, shares {overlap:.0%} of its area with the roto; {share:.0%} of all its alpha lies inside "
                    f"the roto): is the roto ({self.shot.rotos()[name][frame]}) drawn on frame {frame}? A roto of "
                    f"another frame mattes the object where it was")

    def reap(self, *, wait: bool = False, everything: bool = False) -> None:
        """Report the frames whose files are complete, in the order they were handed over; ``wait`` for the
        oldest, or for ``everything``. A write's error is raised here."""
        while self._writes and (everything or wait or self._writes[0][2].done()):
            frame, paths, fut = self._writes.popleft()
            self._written(frame, paths, fut.result())  # the output thread's seconds (overlapping the next frame)
            wait = False
        while self._new_digests and self.cache is not None:
            fp, d = self._new_digests.popleft()
            if self.cache.plate_digest(fp) != d:  # kept already: a render that reads its cache back writes nothing
                self.cache.put_plate_digest(fp, d)

    def _written(self, frame: int, paths: list[Path], seconds: float) -> None:
        """A frame whose files are complete: its timings, counters and progress event."""
        self.say_warnings()  # a keyframe's, found as it was handed to the writer, before the frame's event
        self.timer.since_event["write"] += seconds
        self.result.timings["write"] += seconds
        self.result.frames.append(frame)
        self.result.paths.append(paths[0])  # the frame's file (the first object's, one sequence per object)
        self.files_of[frame] = paths  # every file of the frame (each object's sequence): result.files, by _sorted
        self.done += 1
        if self.progress:
            event = {"event": "frame", "frame": frame, "done": self.done, "total": len(self.job.frames),
                     "path": str(paths[0]), "timings": self.timer.take(), **self.runner.work}
            if len(paths) > 1:
                event["paths"] = [str(p) for p in paths]
            self.progress(event)

    def _stopping(self) -> bool:
        """A stop asked for (a signal, Stop.set()), or the caller's progress callback raised."""
        return self.stop.signal is not None or getattr(self.progress, "error", None) is not None

    def check_stop(self) -> None:
        if self._stopping():
            self.reap(everything=True)  # every frame handed over is complete before we say how many
            if self.stop.signal is None:  # the progress callback raised: render() raises its error instead
                raise CancelledError("stopped by the progress callback's error")
            if self.done == len(self.job.frames):
                # every frame written: the render is done, whatever asked it to stop meanwhile (a worker's client
                # said "stopped after 3 of 3 frames ... resumes from the cache", exit 130, for a complete render; QA)
                return
            name = getattr(self.stop, "by", "") or signal.Signals(self.stop.signal).name
            # which frames: with two keyframes those written are not a run from the first (QA: "6 of 12" left a farm
            # wrapper to guess which to requeue)
            raise CancelledError(f"stopped by {name} after {self.done} of {len(self.job.frames)} frames"
                                 f"{written_list(self.result.frames)}; the frames written are complete and "
                                 f"{self.next_render()}", by=name)

    def next_render(self) -> str:
        """What the next render of the shot does about the frames this one did not finish."""
        if self.cache is None:  # off (a cache folder that cannot be used): said among the warnings
            return "the next render computes every frame again (this one ran without the cache)"
        if not self.cache.writing:  # not written, from the start or part-way (a full or read-only cache): said
            # among the warnings
            how = "did not write to it" if self.cache.store.read_only else "stopped writing to it"
            return f"the next render resumes from what the cache holds (this render {how})"
        if self.cache.store.evicted_own:
            return ("the next render resumes from what the cache kept: its size cap "
                    f"({self.cache.store.max_bytes / 2**30:.3g} GiB, VOM_CACHE_MAX_GB) deleted or did not take some "
                    "of this shot's entries")
        return "the next render resumes from the cache"

    def run(self) -> RenderResult:
        job = self.job
        self.check_stop()  # a stop that came before the render: no frame
        if self.progress:
            self.progress({"event": "start", "total": len(job.frames), "frames": [job.frames[0], job.frames[-1]],
                           "device": str(job.device), "shot": self.shot.plate, "out": self.shot.out,
                           "cache": None if self.cache is None else str(job.cache.dir),
                           **({"cache_off": job.cache_off} if job.cache_off else {}),
                           # read, not written: what this render computes is not kept for the next (hosts say so)
                           **({"cache_read_only": job.cache.read_only}
                              if self.cache is not None and job.cache.read_only else {})})
            self.say_warnings()
            self.check_stop()  # the callback raised at the start: no work
        from vom_plugin.engine.device import oom_guard

        with oom_guard(self.shot.working_size):  # a CUDA OOM names the working size to lower (exit 2)
            self.runner.run(job.all_frames, None, job.frames, self.shot.whole_frames)
        self.reap(everything=True)
        dead = self.source.dead_pixels_warning()
        if dead and self.shot.output != "alpha":  # QA: the RGB written is not the plate's there, unsaid
            dead += f"; the {self.shot.output} output's RGB holds them filled too"
        for said in (dead, self.source.blank_frames_warning()):
            if said:
                self.result.warnings.append(said)
        if self.cache is not None:
            with self.timer("cache"):
                self.cache.finish()
        self.say_warnings()
        return self.result

    def close(self) -> None:
        """Also on cancel or error: the files handed over are complete, and the state saved for the frame in
        hand reaches the disk, before we exit."""
        try:
            self.source.close()
            self._out.shutdown(wait=True)
            # after an error, every file that did reach the disk is announced before the error is (a host must
            # learn of each one); a write that failed is not a frame
            for frame, paths, fut in self._writes:
                if fut.exception() is None:
                    self._written(frame, paths, fut.result())
            self._writes.clear()
        finally:
            if self.cache is not None:
                with self.timer("cache"):
                    self.cache.close()


class _CalledUntilItRaises:
    """A caller's progress callback that raised stops the render as a Stop does: the frame in hand is finished,
    the memory state saved for the next render to resume from, and then its exception is raised (``raise_error``).
    It is not called again while the render winds down. KeyboardInterrupt and SystemExit go up at once."""

    def __init__(self, callback: ProgressCallback) -> None:
        self.callback: ProgressCallback | None = callback
        self.error: Exception | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        callback = self.callback
        if callback is None:
            return
        try:
            callback(event)
        except Exception as e:
            self.callback, self.error = None, e
        except BaseException:
            self.callback = None
            raise

    def raise_error(self, result: RenderResult, total: int, next_render: str, *, finished: str = "") -> None:
        """The callback's exception, if it raised, with a note of the frames written (its own frame events stopped
        with it) and ``next_render`` (``_Render.next_render``); ``finished``: where it raised with the render
        complete ("at the closing 'done' event"). ``render_result`` on it is the render's result."""
        e = self.error
        if e is None:
            return
        from vom_plugin.io.sequence import format_frames

        done = sorted(set(result.frames))
        e.render_result = result  # type: ignore[attr-defined]
        if isinstance(e, BrokenPipeError):  # the progress reader went away: the caller says which frames are whole
            e.frames_written = done  # type: ignore[attr-defined]
        listed = f" ({format_frames(done, sep=',', stepped=True)}, each complete)" if done else ""
        if finished:
            e.add_note(f"vom: the progress callback raised {finished}; the render was complete: {len(done)} of "
                       f"{total} frames written{listed}")
        else:
            e.add_note(f"vom: the render stopped after the progress callback raised: {len(done)} of {total} frames "
                       f"written{listed}; {next_render}")
        raise e


def check_not_forked() -> None:
    """InputError in a process forked from one that had rendered (``multiprocessing``'s default start method on
    Linux): OpenMP's and OpenEXR's thread pools wait there for threads that stayed in the parent, so the render
    would hang (torch's first parallel operation, the first EXR write), and setting them up again after the fork
    crashes OpenImageIO. Said before any work; then marks this process as one whose pools run."""
    import vom_plugin
    from vom_plugin.envvars import env_flag

    if vom_plugin._POOLS["inherited"] and not env_flag("VOM_ALLOW_FORK"):
        raise InputError(
            "render: this process was forked from one that had rendered (multiprocessing's default start method on "
            "Linux), and torch's and OpenEXR's thread pools do not survive a fork: the render would hang. Start the "
            "processes with multiprocessing.get_context('spawn') (or 'forkserver'), or render only in the children "
            "(VOM_ALLOW_FORK=1 renders anyway)")
    vom_plugin._POOLS["started"] = True  # from here on this process's pools may run: a child of it would hang


def _sorted(r: _Render, *, on_disk: bool = False) -> RenderResult:
    """The render's result with each frame once, in frame order, and its files in their frames' order (passes
    finish frames out of order, and a recomputed pass may rewrite one). ``on_disk``: only the frames whose files are
    all there (a render that failed as its output folder was removed said the frames written into it complete)."""
    result = r.result
    written = dict(sorted(zip(result.frames, result.paths, strict=True)))
    if on_disk:
        written = {f: p for f, p in written.items() if all(os.path.exists(q) for q in r.files_of[f])}
    result.frames, result.paths = list(written), list(written.values())
    result.files = [p for f in result.frames for p in r.files_of[f]]
    return result


def _described(shot: Shot) -> str:
    """How another render's refusal names this one: its shot file, or its plate, and its rotos (the artist's new roto
    and a farm task's old one are one shot file and one plate)."""
    rotos = sorted({str(p) for kfs in shot.rotos().values() for p in kfs.values()})
    listed = ", ".join(rotos[:2]) + (f" and {len(rotos) - 2} more" if len(rotos) > 2 else "")
    what = f"shot file {shot.source_file}" if shot.source_file is not None else f"plate {shot.plate}"
    return f"{what}, roto{'s' if len(rotos) > 1 else ''} {listed}"


def render(shot: Shot | str | os.PathLike[str], progress: ProgressCallback | None = None, *, stop: Stop | None = None,
           models: LoadedModels | None = None, memo: Memo | None = None) -> RenderResult:
    """Render ``shot`` (a Shot, or a shot file's path): validate everything, then propagate, lift and write every
    requested frame.

    ``progress`` receives event dicts (see ``engine.progress``). Raises InputError on bad input before
    any work, CancelledError when ``stop`` was set (after the frame in hand is complete). SIGINT/SIGTERM in the main
    thread stop it the same way, then go to the handler they replaced (``stop.signals``: Python's SIGINT handler
    raises KeyboardInterrupt, a default SIGTERM ends the process, a host's own handler runs then; vom's command
    line keeps the CancelledError); an exception raised once frames are being rendered carries ``render_result``,
    the RenderResult of the frames whose files are complete (a callback's that raised, too: it stops the render as a
    Stop), and one raised before any work (a KeyboardInterrupt while prepare loads torch) an empty one. ``stop``:
    set from another thread to stop the same way; ``models``: weights kept loaded between renders;
    ``memo``: decoded plate frames kept between renders (both a ``vom worker``'s).
    """
    t0 = time.perf_counter()
    job: Job | None = None
    working = False  # whether _render_job began: before, nothing is written (it says what is on disk after)
    try:
        if isinstance(shot, str | os.PathLike):  # a shot file's path, as `vom render SHOT.yaml` takes it
            shot = Shot.from_yaml(shot)
        if not isinstance(shot, Shot):
            raise TypeError(f"render: expected a Shot or a shot file's path, got {type(shot).__name__}")
        # checked again as a new Shot: a field set after it was made (shot.frames = "1-2") is parsed and checked as
        # one given to Shot(...) is, before any work, not found (or crashed on) half-way
        shot = shot.checked()
        if progress is not None and not callable(progress):
            raise TypeError(f"render: progress must be a function taking an event dict, got "
                            f"{type(progress).__name__}")
        if stop is not None and not isinstance(stop, Stop):  # QA: stop=1 failed deep inside, 'int' has no is_set
            raise TypeError(f"render: stop must be a vom_plugin.Stop (set it from another thread to stop the render), "
                            f"got {type(stop).__name__}")
        check_not_forked()
        if stop is not None and stop.is_set():  # before the model is loaded and the output folders made
            raise CancelledError(f"stopped by {stop.by or 'Stop.set()'} before the render started: no frame was "
                                 f"written", by=stop.by or "Stop.set()")
        if progress is not None:
            progress = _CalledUntilItRaises(progress)
        if memo is not None:
            memo.begin_render()
        job = prepare(shot, models, memo)
        try:
            # held to the render's end: another render writing these frames refuses this one, before any work
            job.claim = OutputClaim.take(shot.out_patterns().values(), job.frames, _described(shot))
            working = True
            return _render_job(job, shot, progress, stop, t0)
        finally:
            job.claim.release()  # (its file gone first: a folder holding it is not empty)
    except BaseException as e:
        if not working and attached_result(e) is None and not isinstance(e, VomError):  # (a VomError has its own)
            # a Ctrl-C while prepare loads torch, or as the claim is taken: the README's KeyboardInterrupt carries
            # `.render_result` (QA: a host reading it got AttributeError); no frame, no file
            e.render_result = RenderResult()  # type: ignore[attr-defined]
        if job is not None:
            # stopped before any frame (a callback that raised at the start, Ctrl-C in it): no empty folder left
            # (QA); a folder with a frame in it is not empty, and stays
            remove_empty_folders(job.made_folders, job.made_ids)
        raise


def _render_job(job: Job, shot: Shot, progress: Any, stop: Stop | None, t0: float) -> RenderResult:
    """``render``'s work once the job is prepared."""
    with signals(stop) as stopping:
        r = _Render(job, progress, stopping)
        try:
            try:
                result = r.run()
            finally:
                try:
                    r.close()  # every file on disk announced (r.done) before the error is
                    r.result.elapsed = time.perf_counter() - t0
                finally:
                    # every file written: given back before a signal goes on to a handler that ends the process
                    job.claim.release()
        except Exception as e:
            by_callback = isinstance(progress, _CalledUntilItRaises) and progress.error is not None
            if isinstance(e, CancelledError) and by_callback:
                result = r.result  # stopped by the callback's error, raised below (outside this handler: its own)
            else:
                # what is on disk is the caller's to know however the render ended: a stop, a disk that filled
                announced = len(set(r.result.frames))  # written, whether their files are still there or not
                result = _sorted(r, on_disk=True)
                e.render_result = result  # type: ignore[attr-defined]
                file_error = users_file_error(e)  # a user's file (a plate frame moved away): bad input, a worker's too
                if not file_error and not (isinstance(e, InputError) and r.done):
                    raise
                said = f"{e.filename}: {e.strerror or e}" if file_error else str(e)
                if r.done:
                    # a frame damaged behind an intact header is only found by reading it, after frames before it
                    # were written: say which, so exit 2 never reads as "nothing was rendered" when files are on disk
                    from vom_plugin.io.sequence import format_frames

                    done = result.frames
                    gone = "" if len(done) == announced else f"{len(done) or 'none'} of them on disk now"
                    runs = format_frames(done, sep=",", stepped=True)  # a render on twos as --frames reads it
                    listed = f"{gone}{': ' if gone and done else ''}{runs}, complete; " if done else f"{gone}; "
                    said += (f"; found while rendering: {announced} of {len(job.frames)} frames were written "
                             f"({listed}{r.next_render()})")
                err = InputError(said)
                err.render_result = result  # type: ignore[attr-defined]
                raise err from None
        except BaseException as e:  # KeyboardInterrupt or SystemExit from the progress callback, which go up at once:
            # with what is on disk (the frames in hand were finished, more than the callback saw; QA)
            if attached_result(e) is None:
                e.render_result = _sorted(r, on_disk=True)  # type: ignore[attr-defined]
            raise
        # for a signal passed on as the block ends (one during the last frame: the render finished all the same)
        result = stopping.result = _sorted(r)
    if isinstance(progress, _CalledUntilItRaises):
        # also where it raised at the last frame's event, after the last check: every frame written
        last = "at the last frame's event" if len(set(result.frames)) == len(job.frames) else ""
        r.say_warnings()  # any the closing of the cache added
        progress.raise_error(result, len(job.frames), r.next_render(), finished=last)
        progress(result.summary())
        progress.raise_error(result, len(job.frames), r.next_render(), finished="at the closing 'done' event")
    return result
