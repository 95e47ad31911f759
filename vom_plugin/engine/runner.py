"""``render(shot)``: the product's main job, from plate and roto files to EXR alphas, resumable.

1. Validate everything (plate frames on disk, rotos, model, output and cache folders) before any frame is
   computed (``prepare``), so bad input costs nothing and exits 2 from the CLI.
2. Run the shot through the pass runner (``engine.passes``) over the plate's frames on disk, with the
   per-shot cache (``engine.step_cache``): a killed render, the next farm chunk, or a re-render in which
   nothing upstream changed resumes from the furthest step on disk; after a roto edit, key features and
   the memory read's top-k matches come from the cache.
3. Write each frame's alpha atomically (``io.write_alpha``) as the runner delivers it, with a progress
   event; SIGINT/SIGTERM stop after the frame in hand.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vom_plugin import __version__
from vom_plugin.atomic import remove_stale_temps_in
from vom_plugin.digest import build_id
from vom_plugin.engine import frames as fr
from vom_plugin.engine.cache import ShotCache, file_fingerprint
from vom_plugin.engine.file_source import FileSource, check_size, file_identity, read_plate
from vom_plugin.engine.helper_threads import lower_this_thread
from vom_plugin.engine.memo import Memo
from vom_plugin.engine.models import LoadedModels
from vom_plugin.engine.passes import STAGES, PassRunner, RenderResult, Timer
from vom_plugin.engine.progress import ProgressCallback
from vom_plugin.engine.resume import PREDICTION_ARITHMETIC
from vom_plugin.engine.shot import OBJECT_TOKEN, Shot, check_roto_file, keyframes_stamp, recipe_stamp
from vom_plugin.engine.step_cache import StepCache, state_interval
from vom_plugin.engine.stop import Stop, signals
from vom_plugin.engine.weights_header import read_weights_metadata
from vom_plugin.errors import CancelledError, InputError, users_file_error
from vom_plugin.grammar import object_channel
from vom_plugin.io.color import EXPOSURE_GAIN_RANGE
from vom_plugin.locations import weights_path

__all__ = ["STAGES", "LoadedModels", "RenderResult", "Stop", "prepare", "render", "state_interval"]
MAX_PENDING_OUTPUTS = 2  # frames handed to the output thread and not yet on disk (bounds the memory held)

# -- validation -----------------------------------------------------------------------------------------

@dataclass
class _Job:
    shot: Shot
    all_frames: list[int]           # plate frames on disk: the propagation timeline
    frames: list[int]               # requested frames
    plate_seq: Any
    size: tuple[int, int]           # plate display window (width, height)
    picture: Any                    # what the network sees: the display window and the plate's overscan, as a
    #                                 Window relative to each frame's display window origin (io.placed_at)
    geo: fr.Geometry
    rotos: dict[str | None, dict[int, np.ndarray]]  # object (None: the unnamed one) -> keyframe -> (H, W) {0, 1}
    #                                 over ``picture``
    roto_fp: dict[str | None, dict[int, str]]
    model: Any
    model_id: str
    device: Any
    cache: ShotCache
    cache_off: str | None = None    # why the cache is not used for this render (a warning), None when it is
    memo: Memo | None = None        # a worker's decoded plate frames, kept between renders
    # the plate frames prepare() decoded (the first requested, to check it before any work; the first keyframe, for
    # the exposure), which the source starts with instead of decoding them again
    plates: dict[int, Any] = field(default_factory=dict)
    plate_ids: dict[int, Any] = field(default_factory=dict)  # their files' identities before they were read
    plate_fps: dict[int, str] = field(default_factory=dict)  # and their cache fingerprints, of what was read
    recipe: str = ""                # vom:recipe of every output file (shot.recipe_stamp)
    gain: float = 1.0               # the network input's exposure gain (io.exposure_gain of the first keyframe)
    # an rgba output's colour tag (io.RgbColour), the first keyframe's plate frame's for every frame and every farm
    # chunk: a frame untagged among tagged ones was named by the setting, and a reader trusting the tag flickered (QA)
    rgb_colour: Any = None
    trained: bool = False           # weights `vom train` made (their mattes follow the roto; random ones' do not)
    made_folders: list[Path] = field(default_factory=list)  # output folders prepare made, innermost first
    notes: list[str] = field(default_factory=list)  # warnings found while preparing (a plate's colour space)


def _read_held(path: Path, frame: int, memo: Memo | None, ids: dict[int, Any], fps: dict[int, str]) -> Any:
    """A plate frame prepare() decodes, with its file's identity before the read (``ids``: see FileSource.plate_stamp)
    and its cache fingerprint (``fps``) taken while the file is what was read: fingerprinted later (at the first
    pass), a file delivered again meanwhile had features of the old pixels cached under the new file's address
    (review). InputError where the file changed while it was read."""
    ids.setdefault(frame, file_identity(path))

    def fingerprint() -> str:  # once (a worker's memo asks it first, to look the frame up)
        if frame not in fps:
            fps[frame] = file_fingerprint(path)
        return fps[frame]

    plate = read_plate(path, memo, fingerprint)
    fingerprint()
    if file_identity(path) != ids[frame]:
        raise InputError(f"plate frame {frame} ({path}) changed while this render read it (delivered again "
                         f"meanwhile): nothing was rendered; render again once the plate is complete")
    return plate


def _check_keyframe_picture(plate: Any, frame: int, path: Path) -> None:
    """InputError where the first keyframe's plate frame is NaN or Inf nearly everywhere (a failed render's frame):
    every frame's matte follows from it, and the render went on to write an empty matte for the whole shot, exit 0
    (QA). Not where a picture is left: an unpremultiplied CG element is NaN wherever its alpha is 0 (review)."""
    n, total = getattr(plate, "dead", 0), plate.data_rgb.shape[0] * plate.data_rgb.shape[1]
    if total and n >= 0.99 * total:
        share = "all" if n >= total else f"{100 * n / total:.3g}%"
        raise InputError(f"plate frame {frame} ({path}), the first keyframe's, is {share} NaN or Inf pixels: it has no "
                         f"picture to start the matte from, and every frame's matte follows from it; fix the plate's "
                         f"render, or put the first keyframe on a frame with a picture")


def _read_roto(name: str | None, keyframe: int, path: Path, size: tuple[int, int], aspect: float,
               windows: tuple[Any, Any], notes: list[str], picture: Any) -> tuple[np.ndarray, str | None]:
    """``read_roto`` of the object's own layer (``roto_layer_of``: ``hero.A`` of a file of several), and that
    layer; with several objects its error says whose roto it is (one file may serve several)."""
    from vom_plugin import io as vio

    try:
        layer = vio.roto_layer_of(path, name)
        return vio.read_roto(path, size, channel=layer, pixel_aspect=aspect, plate_windows=windows, notes=notes,
                             picture=picture), layer
    except InputError as e:
        if name is None:
            raise
        raise InputError(f"objects.{name} (keyframe {keyframe}): {e}") from None


def _check_rotos_seen(rotos: dict[Any, dict[int, np.ndarray]], shot: Any, geo: Any) -> None:
    """InputError for a roto that holds pixels at the plate's size and none at the network's (a speck smaller than
    half a working pixel, as an empty roto would be: its object got no matte, silently)."""
    for name, kfs in rotos.items():
        for kf, roto in kfs.items():
            if not fr.mask_to_working(roto, geo).any():
                whose = "keyframes" if name is None else f"objects.{name}"
                raise InputError(
                    f"{whose}: the roto of keyframe {kf} ({shot.rotos()[name][kf]}) covers {int(roto.sum())} plate "
                    f"pixel(s), less than one pixel of the network's {geo.size[0]}x{geo.size[1]} (working_size "
                    f"{shot.working_size}): the network would see no object there; draw it larger or raise "
                    f"working_size")


# Below these the network's coarsest read (1/16) has next to nothing to hold the object: a roto of fewer working
# pixels than one 1/16 cell, or a picture under 32 px on a side, came out at a mean alpha of 0.01-0.08 inside the
# roto, exit 0 (QA: 17x9 and 32x18 plates, a 8000x600 panorama at working_size 128; 96x54 and 63x64 plates, a
# roto of 700-900 working pixels, came out at 0.4-0.5)
SMALL_ROTO_PX = 256
SMALL_PICTURE_PX = 32


SAME_ROTO_IOU = 0.9  # two objects' rotos this alike are one object drawn twice


def _small_object_notes(rotos: dict[Any, dict[int, np.ndarray]], shot: Any, geo: Any, notes: list[str]) -> None:
    """Warnings for an object the network sees too small to matte (``SMALL_ROTO_PX``, ``SMALL_PICTURE_PX``)."""
    w, h = geo.size
    # a plate enlarged as far as vom enlarges one: no working_size makes it larger (review)
    capped = geo.size[1] >= fr.MAX_UPSCALE * geo.plate[1] - 1  # its scale (overscan or not) at the cap (review;
    # heights: an anamorphic plate's width is desqueezed too)
    fix = ("raise working_size" if not capped else
           f"the plate ({geo.plate[0]}x{geo.plate[1]}) is enlarged {fr.MAX_UPSCALE:g}x at most, so a larger "
           f"working_size does not help")
    if min(w, h) < SMALL_PICTURE_PX:
        notes.append(f"the network sees the plate at {w}x{h} pixels (working_size {shot.working_size}), under "
                     f"{SMALL_PICTURE_PX} on a side: mattes come out faint or empty at that size; {fix}")
        return
    for name, kfs in rotos.items():
        for kf, roto in kfs.items():
            px = int(fr.mask_to_working(roto, geo).sum())
            if px < SMALL_ROTO_PX:
                whose = "keyframes" if name is None else f"objects.{name}"
                notes.append(f"{whose}: the roto of keyframe {kf} ({shot.rotos()[name][kf]}) covers {px} of the "
                             f"network's {w}x{h} pixels (working_size {shot.working_size}): an object this small for "
                             f"the network comes out faint or not at all; {fix}")


def _shared_roto_notes(rotos: dict[Any, dict[int, np.ndarray]], notes: list[str]) -> None:
    """A warning where two objects' rotos of one keyframe are (nearly) the same shape: the objects' alphas are shared
    where they overlap, so each came out at half, exit 0, without a word (QA: one Roto copied to two layers)."""
    names = [n for n in rotos if n is not None]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for kf in sorted(set(rotos[a]) & set(rotos[b])):
                ma, mb = rotos[a][kf] > 0.5, rotos[b][kf] > 0.5
                if ma.shape != mb.shape:
                    continue
                union = int(np.count_nonzero(ma | mb))
                iou = int(np.count_nonzero(ma & mb)) / union if union else 0.0
                if iou >= SAME_ROTO_IOU:
                    notes.append(f"objects {a} and {b}: their rotos of keyframe {kf} are the same shape ({iou:.0%} "
                                 f"overlap): objects share the alpha where they overlap, so each comes out at a "
                                 f"share of it (two: half); give each object the roto of its own part of the picture")


def _check_seen(frame: int, path: Path, info: Any, picture: Any) -> None:
    """InputError for a plate frame whose pixels (its data window) lie wholly outside what the network sees (the
    display window and the overscan it takes): its matte came out all 0, silently."""
    from vom_plugin import io as vio

    dw, seen = info.data_window, vio.placed_at(picture, info.display_window)
    if dw.width and dw.height and (dw.x >= seen.x_end or dw.x_end <= seen.x or dw.y >= seen.y_end
                                   or dw.y_end <= seen.y):
        raise InputError(f"plate frame {frame} ({path}): its pixels (data window {tuple(dw)}) lie outside its display "
                         f"window {tuple(info.display_window)} and the overscan the network takes ({tuple(seen)}, "
                         f"up to {vio.MAX_OVERSCAN:.0%} of the display beyond each side): there is nothing to matte")


def _windows(info: Any) -> tuple[Any, Any]:
    return info.display_window, info.data_window


_FORMATS = {"openexr": "an OpenEXR", "png": "a PNG", "dpx": "a DPX", "tiff": "a TIFF", "jpeg": "a JPEG"}


def _check_like_first(frame: int, path: Path, info: Any, first: Any, first_frame: tuple[int, Path],
                      colorspace: str) -> None:
    """InputError when a plate frame's picture comes from other channels than the first frame's (a grey Y frame, an
    AOV layer, another part: a frame of another pass dropped into the sequence) or its header says another colour
    encoding (a log frame among linear ones): each was matted as it came, exit 0, where the first frame's same
    header is refused or read otherwise. Every header is read already (sizes); this compares them."""
    f0, p0 = first_frame
    if info.file_format and first.file_format and info.file_format != first.file_format:
        # a PNG saved under the sequence's .exr name: its colour tag was refused as a change of colour space, and an
        # untagged one was read as the EXRs are (QA)
        this, theirs = (_FORMATS.get(f, "a " + f) for f in (info.file_format, first.file_format))
        raise InputError(f"plate frame {frame} ({path}) is {this} file, and frame {f0} ({p0}), the first this render "
                         f"reads, {theirs}: a frame of another format in the sequence; write it as the others are")

    def source(picture: str) -> tuple[str, str]:  # (part, channels): "part 'rgba': R, G, B" -> ("'rgba'", "R, G, B")
        part, _, channels = picture.partition(": ") if picture.startswith("part ") else ("", "", picture)
        return part, channels

    (part, channels), (part0, channels0) = source(info.picture), source(first.picture)
    # the same channels of another part, or of a file of one part among multi-part ones (a frame patched by
    # another writer), are the same picture
    if channels != channels0 or (part and part0 and part != part0):
        raise InputError(f"plate frame {frame} ({path}) is read from its channels {info.picture}, and frame {f0} "
                         f"({p0}), the first this render reads, from {first.picture}: a frame of another pass or "
                         "layout in the sequence; write it as the others are")
    from vom_plugin.io.color import declared_space, plate_colour_note, said_of_colour

    space, first_space = declared_space(info.metadata), declared_space(first.metadata)
    if space and space != first_space:
        # a frame saying nothing is read as set, as an untagged plate is (a paint fix from another tool among tagged
        # frames was refused, QA); one saying another space than the first's, or than the setting, is refused
        note = plate_colour_note(info.metadata, info.pixel_type, colorspace, path)  # a log frame: refused, saying so
        if first_space or note:
            raise InputError(f"plate frame {frame} ({path}) {said_of_colour(info.metadata)}, and frame {f0} ({p0}), "
                             f"the first this render reads, {said_of_colour(first.metadata)}: every frame is read as "
                             f"{colorspace}; write the sequence in one colour space")


def picture_stamp(picture: Any) -> str:
    """An output's ``vom:picture``: the window the network saw, ``x,y,width,height`` (``vom farm check`` compares it
    with the shot's window now)."""
    return ",".join(str(int(v)) for v in picture)


def shot_picture(on_disk: Any, heads: dict[int, Any], first: Any, notes: list[str]) -> Any:
    """What the network sees of every frame, relative to its display window's origin: the display window grown
    by the overscan of every frame of the plate on disk (``heads``: the headers a render read already; the
    others are read here, a few hundredths of a millisecond each). One window for the whole shot whatever a
    render asks for (a farm chunk, one object, another keyframe: the same key features, the same pixels), and a
    slate or a frame without overscan does not take the others' away. A frame of another size (a slate) says
    nothing of the shot's windows; one that cannot be read is said, and left out."""
    from vom_plugin import io as vio

    reach, unread = [], []
    for f in on_disk.frames:
        info = heads.get(f)
        if info is None:
            try:
                info = vio.plate_info(on_disk.path(f))
            except InputError as e:  # a frame this render does not read
                unread.append(str(e))
                continue
        if info.size == first.size:
            d = info.display_window  # each frame's overscan relative to its own display window
            reach.append(vio.Window(info.data_window.x - d.x, info.data_window.y - d.y, *info.data_window[2:]))
    if unread:
        more = f" (and {len(unread) - 1} more)" if len(unread) > 1 else ""
        notes.append(f"the overscan the network sees leaves out plate frames it cannot read: {unread[0]}{more}")
    return vio.picture_window(vio.Window(0, 0, *first.size), reach)


def read_spans(on_disk: Any, frames: list[int], keyframe_sets: list[list[int]]) -> list[tuple[int, int]]:
    """The spans of plate frames a render's passes read (first, last), each object's keyframes planned over the
    plate on disk: a pass runs from its keyframe to the last requested frame it serves. Frames after the last
    keyframe come from it alone, frames before the first from the first: a frame outside every span is never read
    (QA: a hole between two keyframes refused a render of the frames after the second)."""
    from vom_plugin.engine.passes import plan_passes

    timeline = sorted(set(on_disk.frames))
    spans = sorted({(min(p.frames), max(p.frames)) for kfs in keyframe_sets
                    for p in plan_passes(sorted(set(timeline) | set(kfs)), sorted(kfs), frames)})
    merged: list[tuple[int, int]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def plate_heads(plate: str, on_disk: Any, spans: list[tuple[int, int]], first: int, first_info: Any,
                keyframes: list[int] | tuple[int, ...] = ()) -> dict[int, Any]:
    """The headers of the plate frames on disk in ``spans`` (``read_spans``: what a render's passes read) and of
    the ``keyframes``, ``first``'s being ``first_info``: InputError for a hole in a span (``check_no_holes``) or a
    frame of another size than ``first``'s (a slate), naming it. What `vom render` and `vom farm` (for a job's
    spans) both refuse."""
    from vom_plugin import io as vio

    for lo, hi in spans:
        check_no_holes(plate, on_disk, lo, hi)
    heads = {first: first_info}
    wanted = set(keyframes)
    for f in on_disk.frames:
        if f != first and (f in wanted or any(lo <= f <= hi for lo, hi in spans)):
            info = heads[f] = vio.plate_info(on_disk.path(f))
            check_size(f, on_disk.path(f), info.size, first_info.size, (first, on_disk.path(first)))
    return heads


def check_no_holes(plate: str, on_disk: Any, lo: int, hi: int) -> None:
    """The frames a render's passes read run from the first keyframe or requested frame to the last, over the
    plate as it is on disk: a hole there (a farm render that left frames out) is refused, not skipped (a pass
    that jumped from frame 2 to 15 gave another matte, silently). A plate rendered on twos (every frame on disk
    a multiple of the same step apart) has no holes."""
    from vom_plugin import io as vio

    have = sorted(set(on_disk.frames))
    if len(have) < 2:  # a still standing for every frame (the Python API's), or one frame: nothing to cross
        return
    step = 0
    for a, b in itertools.pairwise(have):
        step = math.gcd(step, b - a)
    # two frames two apart are a frame missing between them, not a plate on twos: that takes three frames
    step = max(step, 1) if len(have) >= 3 else 1
    on = set(have)
    missing = [f for f in range(lo, hi + 1, step) if f not in on] if lo % step == have[0] % step else []
    if missing:
        raise InputError(f"sequence {plate}: missing frame{'s' if len(missing) > 1 else ''} "
                         f"{vio.format_frames(missing)}, which the propagation reads on its way between the keyframes "
                         f"and the requested frames (frames {lo}-{hi}; e.g. {on_disk.path(missing[0])})")


def _check_out(shot: Shot, frames: list[int], plate_seq: Any) -> None:
    """The output pattern, each output frame against every input file, and its folder: nothing is created."""
    from vom_plugin import io as vio
    from vom_plugin.io.output_guard import ProtectedFiles, check_distinct, check_output_folder, check_outputs

    patterns = shot.out_patterns()  # an .exr pattern, rgba-premult of one object a file: Shot said so already
    protected = ProtectedFiles()
    for f in plate_seq.frames:
        protected.add(f"plate frame {f}", plate_seq.path(f))
    for name, keyframes in shot.rotos().items():
        for kf, path in keyframes.items():
            protected.add(f"roto of keyframe {kf}" + (f" of object {name}" if name else ""), path)
    if shot.source_file is not None:
        protected.add("shot file", shot.source_file)
    protected.add("weights file", weights_path(shot.model))
    # objects' sequences over every frame of the plate, not this render's only: objects h and h1 of m{object}#.exr
    # collide at h's frame 11, which a first farm chunk of frames 1-6 never wrote, and the next chunk was refused (QA)
    check_distinct(patterns, sorted(set(frames) | set(plate_seq.frames)) if len(patterns) > 1 else frames, frames)
    for name, pattern in patterns.items():
        writes = None if shot.objects is None else frozenset([name] if name is not None else shot.objects)
        check_outputs(pattern, frames, protected, writes, shot.plate)
        try:
            check_output_folder(vio.frame_path(pattern, frames[0]))
        except InputError as e:
            raise InputError(f"out {shot.out!r}: {e}") from None


def _open_cache(shot: Shot, first_frame: Path) -> tuple[ShotCache, str | None]:
    """The shot's cache (its folder named from the plate's ``first_frame`` on disk), and why it is off for this
    render (None when usable): a cache never fails a render."""
    from vom_plugin.engine.cache import CacheUnavailable
    from vom_plugin.locations import default_cache_dir

    cache = ShotCache(shot.cache or default_cache_dir(), shot.plate, first_frame=first_frame)
    try:
        cache.prepare()
    except CacheUnavailable as e:
        return cache, f"rendering without the cache: {e}"
    return cache, None


def first_keyframe(shot: Shot) -> int:
    """The shot's first keyframe, of every object's."""
    return min(kf for kfs in shot.rotos().values() for kf in kfs)


def shot_exposure_gain(shot: Shot, on_disk: Any, plate: Any = None) -> float:
    """The shot's exposure for the network (``io.exposure_gain``) from the plate frame of its first keyframe, of
    every object (``plate``: that frame, read already): a frame the artist drew on (never a slate or a fade from
    black), which every render of the shot, a farm chunk, a keyframe's pass or the whole shot, reads the same."""
    from vom_plugin import io as vio

    if plate is None:
        plate = vio.read_plate(on_disk.path(first_keyframe(shot)))
    return vio.exposure_gain(plate.rgb, shot.colorspace)


def gain_stamp(gain: float) -> str:
    """``vom:exposure_gain`` as a render writes it."""
    return f"{gain:.6g}"


def prepare(shot: Shot, models: LoadedModels | None = None, memo: Memo | None = None) -> _Job:
    """Every check that can fail on bad input, in order of cost; raises InputError before any work.

    ``models``: weights kept loaded between renders (a worker's), None to load them for this render.
    ``memo``: decoded plate frames kept between renders (a worker's, ``engine.memo``).
    The output folder is created last, once everything else has been accepted.
    """
    from vom_plugin import io as vio
    from vom_plugin.engine.cache_entry import key_id

    key_id()  # VOM_CACHE_KEY (the cache's writer and reader threads read it later)
    on_disk = vio.open_sequence(shot.plate, whole=shot.frames is None)  # no range: its frames beside too
    frames = list(shot.frames) if shot.frames is not None else list(on_disk.frames)
    seq = vio.open_sequence(shot.plate, frames)  # names the missing frames
    # the runs on disk (the first and last frames hid the hole a keyframe fell on, QA), few enough to read
    runs = vio.format_frames(on_disk.frames).split(", ")
    span = ", ".join(runs) if len(runs) <= 8 else f"{', '.join(runs[:4])}, ... {', '.join(runs[-2:])}"
    for name, keyframes in shot.rotos().items():
        field = "keyframes" if name is None else f"objects.{name}"
        for kf, path in keyframes.items():
            if kf not in on_disk.frames:
                raise InputError(f"{field}: roto {path} is for frame {kf}, which is not a frame of the plate "
                                 f"{shot.plate} (frames on disk: {span}){vio.padding_hint(shot.plate)}")
            check_roto_file(field, kf, path)
    # each roto is read three times (its pixels, its cache fingerprint, the outputs' recipe): one saved meanwhile
    # gave frames of the old roto under the new one's addresses in the cache, which later renders then reused (QA)
    roto_files = {path: file_identity(path) for kfs in shot.rotos().values() for path in kfs.values()}
    _check_out(shot, frames, on_disk)
    plate_ids: dict[int, Any] = {}
    plate_fps: dict[int, str] = {}
    first = _read_held(seq.path(frames[0]), frames[0], memo, plate_ids, plate_fps)
    colour_note = vio.plate_colour_note(first.info.metadata, first.info.pixel_type, shot.colorspace,
                                        seq.path(frames[0]))
    size = tuple(first.size)
    # Every frame the passes will read (each object's, ``read_spans``) and every keyframe's, by its header: a frame
    # of another size or without a picture is refused now, not after the frames before it were written.
    keyframes = [sorted(kfs) for kfs in shot.rotos().values()]
    heads = plate_heads(shot.plate, on_disk, read_spans(on_disk, frames, keyframes), frames[0], first.info,
                        [kf for kfs in keyframes for kf in kfs])  # also for the picture below
    aspect = first.info.pixel_aspect  # a roto drawn over the desqueezed picture of an anamorphic plate fits too
    for f, info in heads.items():
        if f != frames[0]:
            if abs(info.pixel_aspect - aspect) > 1e-4 * aspect:  # the matte would be written squeezed otherwise
                raise InputError(f"plate frame {f} ({on_disk.path(f)}) has pixel aspect {info.pixel_aspect:g}, and "
                                 f"frame {frames[0]} ({seq.path(frames[0])}), the first this render reads, "
                                 f"{aspect:g}: a plate's frames share one pixel aspect")
            _check_like_first(f, on_disk.path(f), info, first.info, (frames[0], seq.path(frames[0])), shot.colorspace)
    # a roto the size of an overscan or cropped plate's data window was drawn over the stored pixels (Blender):
    # those of its own keyframe's plate frame (data windows may change along a shot; a farm chunk's first frame
    # placed the roto differently from the whole render's)
    windows = {kf: _windows(heads[kf]) for kfs in shot.rotos().values() for kf in kfs}  # keyframes have heads
    notes = [colour_note] if colour_note else []
    if shot.output == "rgba-premult" and shot.colorspace == "sRGB":
        # code values times alpha: a comp premultiplies linear values, and linearising these darkens soft edges (QA)
        notes.append("--output rgba-premult multiplies the plate's sRGB-encoded code values by the alpha; a comp "
                     "premultiplies linear values (sRGB(x) * a is not sRGB(x * a) at soft edges): for a comp, write "
                     "rgba and premultiply after the Read linearises it")
    if shot.objects is not None and OBJECT_TOKEN in shot.out:
        from vom_plugin.io.output_guard import other_objects_files

        inputs = [*(on_disk.path(f) for f in on_disk.frames),
                  *(p for kfs in shot.rotos().values() for p in kfs.values())]
        for name, files in other_objects_files(shot.out, OBJECT_TOKEN, shot.objects, inputs).items():
            notes.append(f"{len(files)} file{'s' if len(files) > 1 else ''} of an object {name!r}, which this shot "
                         f"does not have, {'are' if len(files) > 1 else 'is'} beside its output ({files[0]}"
                         f"{', ...' if len(files) > 1 else ''}): an earlier render's; delete "
                         f"{'them' if len(files) > 1 else 'it'} if that object is gone (its matte was shared out with "
                         f"other objects than this render's)")
    views = vio.plate_views(seq.path(frames[0]))
    if views:  # a stereo EXR: its default view's R, G, B are read (a multi-part one's first part's, if it lists none)
        notes.append(f"plate {seq.path(frames[0])} holds the views {', '.join(views)}: vom mattes the default one, "
                     f"{views[0]!r}; for another view, render a plate of that view alone")
    picture = shot_picture(on_disk, heads, first.info, notes)
    for f, info in heads.items():
        _check_seen(f, on_disk.path(f), info, picture)
    read = {name: {kf: _read_roto(name, kf, path, size, aspect, windows[kf], notes,
                                  vio.placed_at(picture, windows[kf][0]))
                   for kf, path in kfs.items()}
            for name, kfs in shot.rotos().items()}
    rotos = {name: {kf: mask for kf, (mask, _) in kfs.items()} for name, kfs in read.items()}
    layers = {name: {kf: layer for kf, (_, layer) in kfs.items()} for name, kfs in read.items()}  # read once
    geo = fr.geometry(picture.width, picture.height, shot.working_size, max(size[0] * aspect, size[1]), aspect)
    _check_rotos_seen(rotos, shot, geo)
    _small_object_notes(rotos, shot, geo, notes)
    _shared_roto_notes(rotos, notes)
    first_kf = first_keyframe(shot)
    at_kf = first if first_kf == frames[0] else _read_held(on_disk.path(first_kf), first_kf, memo, plate_ids,
                                                            plate_fps)
    _check_keyframe_picture(at_kf, first_kf, on_disk.path(first_kf))
    gain = shot_exposure_gain(shot, on_disk, at_kf)
    if gain >= EXPOSURE_GAIN_RANGE[1]:  # brought up as far as it goes, and still darker than the network knows
        notes.append(f"plate frame {first_kf} ({on_disk.path(first_kf)}), the first keyframe's, from which the shot's "
                     f"exposure is set, is nearly black: the network sees the shot {gain:g}x brighter, the most vom "
                     f"brings a plate up, and mattes it worse; put the first keyframe on a frame with a picture")
    # the file's bytes, and how it was placed: the same file read another way is another roto
    # (one file's layers are several objects' rotos: which one is read is part of it)
    roto_fp = {name: {kf: file_fingerprint(path, full=True)
                      + (":over-data-window" if vio.roto_over_data_window(path, windows[kf],
                                                                          channel=layers[name][kf]) else "")
                      + (f":channel={layers[name][kf]}" if layers[name][kf] else "")
                      for kf, path in kfs.items()}
               for name, kfs in shot.rotos().items()}
    weights_meta = read_weights_metadata(weights_path(shot.model))  # a missing or foreign file, before torch too
    import vom_plugin

    vom_plugin.import_torch()  # a signal during its import stops the render (130), not aborts the process
    # vom:recipe of the output files, from the rotos and weights as they are now, not when a file is written
    recipe = recipe_stamp(shot, windows, layers)
    for path, identity in roto_files.items():
        if file_identity(path) != identity:
            raise InputError(f"roto {path} changed while this render read it (saved meanwhile): nothing was rendered; "
                             f"render again once it is saved")
    from vom_plugin.engine.device import resolve_device

    device = resolve_device(shot.device)
    model, model_id = (models or LoadedModels(keep=0)).get(shot.model, device)
    cache, cache_off = _open_cache(shot, Path(on_disk.path(on_disk.frames[0])))
    made: list[Path] = []  # the output folders this render makes, innermost first: removed if it writes no frame
    try:
        for pattern in shot.out_patterns().values():
            p = Path(vio.frame_path(pattern, frames[0])).parent
            while not p.exists() and p.parent != p and p not in made:
                made.append(p)
                p = p.parent
            try:
                folder = vio.ensure_output_folder(vio.frame_path(pattern, frames[0]))
            except InputError as e:
                raise InputError(f"out {shot.out!r}: {e}") from None
            remove_stale_temps_in(folder)  # once here; the frames are written without a listing each
    except BaseException:  # another object's folder that cannot be made: the ones made before it go too
        remove_empty_folders(made)
        raise
    return _Job(shot=shot, all_frames=list(on_disk.frames), frames=frames, plate_seq=on_disk, size=size,
                picture=picture, geo=geo,
                rotos=rotos, roto_fp=roto_fp, model=model,
                model_id=model_id, device=device, cache=cache, cache_off=cache_off, memo=memo,
                plates={frames[0]: first, first_kf: at_kf}, plate_ids=plate_ids, plate_fps=plate_fps,
                notes=notes, recipe=recipe, gain=gain, made_folders=made,
                trained=weights_meta.get("source") == "vom train",
                rgb_colour=vio.RgbColour.of(at_kf.info.metadata, shot.colorspace) if shot.output != "alpha" else None)


# -- the render --------------------------------------------------------------------------------------------

# A keyframe's matte under this everywhere is empty: warned as such, not as a matte off its roto
EMPTY_MATTE = 0.1


class _Render:
    """One render: the pass runner with the plate files in, the cache, and EXR files and progress out."""

    def __init__(self, job: _Job, progress: ProgressCallback | None, stop: Stop) -> None:
        self.job = job
        self.shot = job.shot
        self.progress = progress
        self.stop = stop
        self.result = RenderResult(device=str(job.device))
        self.timer = Timer(self.result)
        self.source = FileSource(job)
        self.done = 0
        self.files_of: dict[int, list[Path]] = {}  # frame -> its files, for the result in frame order
        self._out = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vom-exr-writer",
                                       initializer=lower_this_thread)
        self._writes: deque[tuple[int, list[Path], Future]] = deque()
        self.cache: StepCache | None = None
        self.result.warnings.extend(job.notes)
        if job.cache_off:
            self.result.warnings.append(job.cache_off)
        else:
            import torch

            # a CPU's thread count splits the float sums another way (1 and 2 threads differ by up to 2.4e-4): a
            # render on another number of threads neither reuses nor continues from what this one caches
            threads = torch.get_num_threads() if job.device.type == "cpu" else 0
            from vom_plugin.io.reader import PLATE_READING

            settings = {"working_size": self.shot.working_size, "colorspace": self.shot.colorspace,
                        "memory": self.shot.memory, "top_k": self.shot.top_k, "device": job.device.type,
                        "padded": job.geo.padded, "size": job.geo.size, "vom": __version__.split(".")[0],
                        "threads": threads, "plate_reading": PLATE_READING}
            # the resized size too: a plate just under the working size is enlarged now (frames.MAX_UPSCALE)
            # into the same padded size its edge-padded self had
            key_settings = [self.shot.working_size, self.shot.colorspace, job.device.type, job.geo.padded,
                            job.geo.size, threads, PLATE_READING]
            # the network input's exposure (a raw plate's keys as before, and an sRGB one's not brought up: it is taken
            # as it is, as before session 47)
            if job.gain != 1.0:
                settings["exposure_gain"] = job.gain
                key_settings.append(repr(job.gain))
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
        self.progress({"event": "step", "frames_done": self.done, **work})

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
                problem = existing_problem(path, frame, writes, shot.plate)
                if problem:
                    raise InputError(f"out: frame {frame} {problem} (it was put there while this render ran)")
            return check

        checks = {path: guard(names) for path, names in files}

        def write_files() -> float:
            t = time.perf_counter()
            for path, check in checks.items():  # each file of the frame before any takes its name: none half replaced
                check(Path(path))
            # the plate frame's bytes, on this (output) thread: `vom farm check` tells a matte of a plate re-delivered
            # since from one of the plate as it is (the recipe holds no plate pixels)
            plate_digest = self.source.plate_stamp(frame)
            for path, names in files:
                meta = self._metadata(frame, names)
                if plate_digest is not None:
                    meta["vom/plate"] = plate_digest
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

    def _check_keyframe_matte(self, frame: int, mattes: dict[str | None, Any]) -> None:
        """A warning where a keyframe's own matte lies mostly off its roto: a roto of another frame (drawn on frame
        1, given as keyframe 12) mattes the object where it was, and rendered without a word (QA: the matte over
        0.5 overlapped the roto nowhere, 42% of its alpha inside it; right rotos: 77-85% overlap, 74-99% inside).
        Trained weights only: an untrained network's matte follows no roto."""
        for name, m in mattes.items():
            roto = self.job.rotos.get(name, {}).get(frame)
            if roto is None or roto.shape != m.alpha.shape:  # a keyframe's only: no copy of every frame's alpha
                continue
            alpha = np.clip(np.asarray(m.alpha, np.float32), 0, 1)
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
                    f"keyframe {frame}{whose}: its matte lies mostly off its roto ({overlap:.0%} overlap, "
                    f"{share:.0%} of the matte inside it): is the roto ({self.shot.rotos()[name][frame]}) drawn on "
                    f"frame {frame}? A roto of another frame mattes the object where it was")

    def reap(self, *, wait: bool = False, everything: bool = False) -> None:
        """Report the frames whose files are complete, in the order they were handed over; ``wait`` for the
        oldest, or for ``everything``. A write's error is raised here."""
        while self._writes and (everything or wait or self._writes[0][2].done()):
            frame, paths, fut = self._writes.popleft()
            self._written(frame, paths, fut.result())  # the output thread's seconds (overlapping the next frame)
            wait = False

    def _written(self, frame: int, paths: list[Path], seconds: float) -> None:
        """A frame whose files are complete: its timings, counters and progress event."""
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
            raise CancelledError(f"stopped by {name} after {self.done} of {len(self.job.frames)} frames; the frames "
                                 f"written are complete and {self.next_render()}", by=name)

    def next_render(self) -> str:
        """What the next render of the shot does about the frames this one did not finish."""
        if self.cache is None:  # off (a cache folder that cannot be used): said among the warnings
            return "the next render computes every frame again (this one ran without the cache)"
        if not self.cache.ok:  # turned off part-way (a full or read-only cache): said among the warnings
            return "the next render resumes from what the cache took before it was turned off"
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
                           "cache": None if self.cache is None else str(job.cache.dir)})
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
        if isinstance(e, BrokenPipeError):  # the progress reader went away: the caller says how many frames are whole
            e.frames_written = len(done)  # type: ignore[attr-defined]
        listed = f" ({format_frames(done, sep=',')}, each complete)" if done else ""
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


def _sorted(r: _Render) -> RenderResult:
    """The render's result with each frame once, in frame order, and its files in their frames' order (passes
    finish frames out of order, and a recomputed pass may rewrite one)."""
    result = r.result
    written = dict(sorted(zip(result.frames, result.paths, strict=True)))
    result.frames, result.paths = list(written), list(written.values())
    result.files = [p for f in result.frames for p in r.files_of[f]]
    return result


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
    Stop). ``stop``: set from another thread to stop the same way; ``models``: weights kept loaded between renders;
    ``memo``: decoded plate frames kept between renders (both a ``vom worker``'s).
    """
    t0 = time.perf_counter()
    if isinstance(shot, str | os.PathLike):  # a shot file's path, as `vom render SHOT.yaml` takes it
        shot = Shot.from_yaml(shot)
    if not isinstance(shot, Shot):
        raise TypeError(f"render: expected a Shot or a shot file's path, got {type(shot).__name__}")
    # checked again as a new Shot: a field set after it was made (shot.frames = "1-2") is parsed and checked as
    # one given to Shot(...) is, before any work, not found (or crashed on) half-way
    checked = dataclasses.replace(shot)
    checked.source_file, checked.whole_frames = shot.source_file, shot.whole_frames
    shot = checked
    if progress is not None and not callable(progress):
        raise TypeError(f"render: progress must be a function taking an event dict, got {type(progress).__name__}")
    check_not_forked()
    if stop is not None and stop.is_set():  # before the model is loaded and the output folders made
        raise CancelledError(f"stopped by {stop.by or 'Stop.set()'} before the render started: no frame was written",
                             by=stop.by or "Stop.set()")
    if progress is not None:
        progress = _CalledUntilItRaises(progress)
    if memo is not None:
        memo.begin_render()
    job = prepare(shot, models, memo)
    try:
        return _render_job(job, shot, progress, stop, t0)
    except BaseException:
        # stopped before any frame (a callback that raised at the start, Ctrl-C in it): no empty folder left (QA); a
        # folder with a frame in it is not empty, and stays
        remove_empty_folders(job.made_folders)
        raise


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove ``folders`` (innermost first) that are empty: those a render made and wrote nothing into."""
    for folder in sorted(folders, key=lambda q: -len(q.parts)):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _render_job(job: _Job, shot: Shot, progress: Any, stop: Stop | None, t0: float) -> RenderResult:
    """``render``'s work once the job is prepared."""
    with signals(stop) as stopping:
        r = _Render(job, progress, stopping)
        try:
            try:
                result = r.run()
            finally:
                r.close()  # every file on disk announced (r.done) before the error is
                r.result.elapsed = time.perf_counter() - t0
        except Exception as e:
            by_callback = isinstance(progress, _CalledUntilItRaises) and progress.error is not None
            if isinstance(e, CancelledError) and by_callback:
                result = r.result  # stopped by the callback's error, raised below (outside this handler: its own)
            else:
                # what is on disk is the caller's to know however the render ended: a stop, a disk that filled
                result = _sorted(r)
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
                    said += (f"; found while rendering: {len(done)} of {len(job.frames)} frames were written before "
                             f"it ({format_frames(done, sep=',')}, complete; {r.next_render()})")
                err = InputError(said)
                err.render_result = result  # type: ignore[attr-defined]
                raise err from None
        # for a signal passed on as the block ends (one during the last frame: the render finished all the same)
        result = stopping.result = _sorted(r)
    if isinstance(progress, _CalledUntilItRaises):
        # also where it raised at the last frame's event, after the last check: every frame written
        last = "at the last frame's event" if len(set(result.frames)) == len(job.frames) else ""
        progress.raise_error(result, len(job.frames), r.next_render(), finished=last)
        progress(result.summary())
        progress.raise_error(result, len(job.frames), r.next_render(), finished="at the closing 'done' event")
    return result
