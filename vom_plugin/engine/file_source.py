"""The plate's frames on disk as a render reads them: decoded ahead on a reader thread, shared through a
worker's memo, each checked against the size the render was prepared for."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vom_plugin.engine import frames as fr
from vom_plugin.engine.cache import file_fingerprint
from vom_plugin.engine.helper_threads import lower_this_thread
from vom_plugin.engine.memo import Memo
from vom_plugin.errors import InputError

if TYPE_CHECKING:
    from vom_plugin.engine.prepare import Job


def file_identity(path: Path) -> tuple[int, ...] | None:
    """What changes with any change to a file: its size, modification and change times (a save that replaces it or
    writes it in place: no tool sets the change time back; not its inode, which some network file systems renumber);
    None for a file that cannot be looked at (gone, its folder unreadable)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns)


# what a matte's vom:plate says where its plate frame's file changed after the render read it: a digest of no file's
# bytes, so `vom farm check` says the matte is not of the plate as it is
CHANGED_SINCE_READ = "changed-since-read"


def check_size(frame: int, path: Any, got: Any, size: tuple[int, int], first: tuple[int, Any]) -> None:
    """``size``: that of ``first`` (frame, path), the first frame the render reads, which may be the odd one out
    (a slate): both are named."""
    if tuple(got) != tuple(size):
        raise InputError(f"plate frame {frame} ({path}) is {got[0]}x{got[1]}, and frame {first[0]} ({first[1]}), "
                         f"the first this render reads, is {size[0]}x{size[1]}: a plate's frames share one size (a "
                         f"slate among them? leave it out of the frames rendered, --frames)")


class FileSource:
    """The plate's frames on disk, display-referred, over the picture the network sees (the display window and
    the plate's overscan); every frame must have the first frame's size.

    ``read_ahead`` decodes coming frames on a reader thread (nice 19, like the other helpers) while the
    network computes: reading and converting a frame was 6% of a cold render in a ``vom render`` process."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self._fp: dict[int, str] = dict(job.plate_fps)  # prepare()'s, of the frames it read
        self._plates: OrderedDict[int, Any] = OrderedDict()
        self._plates.update(job.plates)  # read once already, by prepare()
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vom-plate-reader",
                                          initializer=lower_this_thread)
        self._ahead: dict[int, Future] = {}  # frame -> (Plate, display-referred pixels)
        self._displays: dict[int, np.ndarray] = {}  # read ahead, not yet asked for
        self._workings: dict[int, np.ndarray] = {}  # the same frames as the network takes them
        self._ids: dict[int, Any] = dict(job.plate_ids)  # frame -> its file's identity before it was read
        self.dead: dict[int, tuple[int, int]] = {}  # frame -> (its NaN / Inf pixels, its pixels), repaired
        # frame -> the one colour all its pixels hold (a failed render's black frame, a "missing frame" card)
        self.blank: dict[int, tuple[float, ...]] = {}
        for f, p in job.plates.items():
            self._note_dead(f, p)

    def read_ahead(self, frames: list[int]) -> None:
        for f in frames:
            if f not in self._plates and f not in self._ahead and f not in self._displays:
                self._ahead[f] = self._reader.submit(self._load, f)

    def _load(self, frame: int) -> tuple[Any, np.ndarray, np.ndarray]:
        p = self._read(frame)
        d = self._display_of(frame, p)
        return p, d, fr.image_to_working(d, self.job.geo)

    def _note_dead(self, frame: int, plate: Any) -> None:
        if getattr(plate, "dead", 0):
            self.dead[frame] = (plate.dead, plate.data_rgb.shape[0] * plate.data_rgb.shape[1])
        rgb = plate.data_rgb  # the overscan too: a picture there is a picture
        if not rgb.size or frame in self.dead or frame in self.blank:  # NaN pixels are said as such; once a frame
            return
        one = rgb[0, 0]
        # every 7th pixel first: the whole frame is compared only where those are all one colour (4K: ~20 ms a frame)
        if (rgb[::7, ::7] == one).all() and (rgb == one).all():
            self.blank[frame] = tuple(float(v) for v in one)

    def dead_pixels_warning(self) -> str | None:
        """The warning a render gives for the plate frames it read with NaN or Inf pixels (a renderer's or
        denoiser's dead pixels, repaired from their neighbours; a frame all or mostly dead mattes as nothing)."""
        if not self.dead:
            return None
        from vom_plugin.io import format_frames

        frames = sorted(self.dead)
        worst = max(frames, key=lambda f: self.dead[f][0] / self.dead[f][1])
        n, total = self.dead[worst]
        share = f"{100 * n / total:.3g}%" if n < total else "all"
        many = len(frames) > 1
        text = (f"plate frame{'s' if many else ''} {format_frames(frames)} {'hold' if many else 'holds'} NaN or Inf "
                f"pixels, filled from their neighbours (frame {worst}: {share} of its {total} pixels, "
                f"{self.job.plate_seq.path(worst)})")
        if 2 * n >= total:
            text += "; a frame mostly of such pixels has no picture to matte: check the plate's render"
        return text

    def blank_frames_warning(self) -> str | None:
        """The warning a render gives for plate frames with no picture, every pixel one value (QA: a failed render's
        black frame mid-shot came out as an empty matte without a word; a NaN frame was said)."""
        if not self.blank:
            return None
        from vom_plugin.io import format_frames

        frames = sorted(self.blank)
        colours = set(self.blank.values())
        one = next(iter(colours))
        held = ("one colour each" if len(colours) > 1 else f"{one[0]:g}" if len(set(one)) == 1
                else f"({', '.join(f'{v:g}' for v in one)})")
        many = len(frames) > 1
        return (f"plate frame{'s' if many else ''} {format_frames(frames)} {'are' if many else 'is'} blank (every "
                f"pixel {held}; {self.job.plate_seq.path(frames[0])}): no picture to matte there: check the plate's "
                f"render (a failed or missing frame?)")

    def close(self) -> None:
        for fut in self._ahead.values():
            fut.cancel()
        self._reader.shutdown(wait=True)
        self._ahead.clear()

    def plate(self, frame: int) -> Any:
        """The frame's Plate (pixels and image info), read once per use; the last few are kept. A frame read
        ahead comes from the reader thread (with its error, if reading it failed)."""
        if frame in self._plates:
            self._plates.move_to_end(frame)
            return self._plates[frame]
        fut = self._ahead.pop(frame, None)
        if fut is not None:
            p, self._displays[frame], self._workings[frame] = fut.result()
            for kept in (self._displays, self._workings):
                while len(kept) > 3:  # read ahead, then never asked for (the shot ended short)
                    kept.pop(next(iter(kept)))
        else:
            p = self._read(frame)
        self._note_dead(frame, p)
        self._plates[frame] = p
        while len(self._plates) > 3:
            self._plates.popitem(last=False)
        return p

    def _read(self, frame: int) -> Any:
        path = self.job.plate_seq.path(frame)
        # before the read (on the reader thread too), the first one's (a frame two passes read): see plate_stamp
        self._ids.setdefault(frame, file_identity(path))
        p = read_plate(path, self.job.memo, lambda: self.fingerprint(frame))
        first = self.job.frames[0]  # again: the file may have changed since prepare()
        check_size(frame, path, p.size, self.job.size, (first, self.job.plate_seq.path(first)))
        return p

    def display(self, frame: int) -> np.ndarray:
        if frame in self._ahead:
            self.plate(frame)
        got = self._displays.pop(frame, None)
        return self._display_of(frame, self.plate(frame)) if got is None else got

    def _display_of(self, frame: int, plate: Any) -> np.ndarray:
        from vom_plugin import io as vio

        memo, picture = self.job.memo, vio.placed_at(self.job.picture, plate.info.display_window)
        if memo is None:
            return vio.to_network(plate.over(picture), self.job.shot.colorspace, gain=self.job.gain)
        key = ("display", str(self.job.plate_seq.path(frame)), self.fingerprint(frame), self.job.shot.colorspace,
               tuple(picture), self.job.gain)
        got = memo.get(key)
        if got is None:
            got = vio.to_network(plate.over(picture), self.job.shot.colorspace, gain=self.job.gain)
            memo.put(key, got, read_only(got))
        return got

    def working(self, frame: int, display: np.ndarray, geo: fr.Geometry) -> np.ndarray:
        """``display`` as the network takes it (``frames.image_to_working``), made on the reader thread with the
        frame when it was read ahead: the padding and clipping a re-render otherwise spent time on between its
        network steps. A private array (never a worker's memo's): the network's
        input is its own."""
        if frame in self._ahead:
            self.plate(frame)
        got = self._workings.pop(frame, None)
        return fr.image_to_working(display, geo) if got is None or geo != self.job.geo else got

    def plate_stamp(self, frame: int) -> str | None:
        """The frame's ``vom:plate``: a digest of its file's bytes, read now, where the file is as it was before this
        render read it; else CHANGED_SINCE_READ. Taken only when the output is written (reading every byte of the
        plate frame again): a plate re-delivered while read ahead was stamped with the new file's bytes over a
        matte of the old, which `vom farm check` then passed (QA)."""
        from vom_plugin.digest import content_digest

        if not self.unchanged(frame):
            return CHANGED_SINCE_READ
        try:
            digest = content_digest(self.job.plate_seq.path(frame))
        except OSError:  # gone meanwhile (its folder moved): the next read says so, naming it
            return CHANGED_SINCE_READ
        return digest if self.unchanged(frame) else CHANGED_SINCE_READ

    def unchanged(self, frame: int) -> bool:
        """Whether the frame's file is still the one this render fingerprinted and read (one stat; false before)."""
        before = self._ids.get(frame)
        return before is not None and file_identity(self.job.plate_seq.path(frame)) == before

    def fingerprinted(self, frame: int) -> str | None:
        """The frame's cache fingerprint where this render took it (its steps were addressed by it), else None."""
        return self._fp.get(frame)

    def fingerprint(self, frame: int) -> str:
        """The frame's cache fingerprint, taken once a render (at its first pass, before the frame is read); its
        file's identity is taken first, so that a file delivered again after it reads as changed (review)."""
        if frame not in self._fp:
            path = self.job.plate_seq.path(frame)
            self._ids.setdefault(frame, file_identity(path))
            self._fp[frame] = file_fingerprint(path)
        return self._fp[frame]


def read_plate(path: Path, memo: Memo | None, fingerprint: Callable[[], str]) -> Any:
    """A plate frame from a worker's memo (looked up by path and file fingerprint), else decoded (and kept)."""
    from vom_plugin import io as vio

    if memo is None:
        return vio.read_plate(path)
    key = ("plate", str(path), fingerprint())
    p = memo.get(key)
    if p is None:
        p = vio.read_plate(path)
        memo.put(key, p, read_only(p.rgb, p.data_rgb))
    return p


def read_only(*arrays: np.ndarray) -> int:
    """Lock arrays shared through a worker's memo against writes; their bytes (an array given twice counts once)."""
    unique = {id(a): a for a in arrays}.values()
    for a in unique:
        a.flags.writeable = False
    return sum(a.nbytes for a in unique)
