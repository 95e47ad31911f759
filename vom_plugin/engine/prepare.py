"""``prepare(shot)``: every check of a render's input that can fail, before any work, and the job it makes: the plate
frames on disk, the rotos read and placed, the window and geometry the network sees, the model, the cache and the
output folders (made last, once everything else has been accepted)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vom_plugin.atomic import remove_stale_temps_in
from vom_plugin.engine import frames as fr
from vom_plugin.engine.cache import ShotCache, file_fingerprint
from vom_plugin.engine.file_source import file_identity, read_plate
from vom_plugin.engine.memo import Memo
from vom_plugin.engine.models import LoadedModels
from vom_plugin.engine.shot import OBJECT_TOKEN, Shot, check_roto_file, recipe_stamps
from vom_plugin.engine.shot_plate import (
    first_keyframe,
    holes_beside,
    plate_heads,
    read_spans,
    shot_exposure_gain,
    shot_picture,
)
from vom_plugin.engine.weights_header import read_weights_metadata
from vom_plugin.errors import InputError
from vom_plugin.io.color import EXPOSURE_GAIN_RANGE
from vom_plugin.io.output_claim import OutputClaim
from vom_plugin.io.output_guard import identity as folder_identity
from vom_plugin.locations import weights_path


@dataclass
class Job:
    """A render that passed every check: what ``runner.render`` runs."""

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
    recipe: str = ""                # vom:recipe of every output file (shot.recipe_stamps)
    roto_stamps: str = ""           # vom:rotos of every output file (shot.recipe_stamps)
    settings_stamp: str = ""        # vom:settings of every output file (shot.recipe_stamps)
    gain: float = 1.0               # the network input's exposure gain (io.exposure_gain of the first keyframe)
    # an rgba output's colour tag (io.RgbColour), the first keyframe's plate frame's for every frame and every farm
    # chunk: a frame untagged among tagged ones was named by the setting, and a reader trusting the tag flickered (QA)
    rgb_colour: Any = None
    trained: bool = False           # weights `vom train` made (their mattes follow the roto; random ones' do not)
    made_folders: list[Path] = field(default_factory=list)  # output folders prepare made, innermost first
    made_ids: dict[Path, Any] = field(default_factory=dict)  # and their identities (output_guard.identity) then
    # its claim on the frames it writes, taken by runner.render and held to its end (a Job prepared and never
    # rendered holds none)
    claim: OutputClaim = field(default_factory=OutputClaim)
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
               windows: tuple[Any, Any], notes: list[str], picture: Any, view: str | None,
               reads: list[Any]) -> tuple[np.ndarray, str | None]:
    """``read_roto`` of the object's own layer (``roto_layer_of``: ``hero.A`` of a file of several; of a stereo roto,
    the plate's ``view``'s, added to ``reads``), and that layer; with several objects its error says whose roto it is
    (one file may serve several)."""
    from vom_plugin import io as vio

    try:
        layer = vio.roto_layer_of(path, name, view, reads=reads)
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


def plate_view(path: str | os.PathLike[str]) -> str | None:
    """The view a render mattes of a plate frame (``image_view``: a stereo file's default, ``plate_views``' first, or
    the view a file of one view names), None for a file that names none; a stereo roto is read in it, and a roto
    of one view is compared with it. Every stereo frame a render reads has the first one's (``_check_like_first``)."""
    from vom_plugin.io.plate import image_view
    from vom_plugin.io.reader import open_image

    with open_image(path, "plate") as img:
        return image_view(img)


def read_rotos(shot: Shot, first: Any, windows: dict[int, tuple[Any, Any]], picture: Any, notes: list[str],
               view: str | None = None
               ) -> tuple[dict[Any, dict[int, np.ndarray]], dict[Any, dict[int, str | None]], fr.Geometry]:
    """Every object's rotos read and checked as a render reads them (``first``: the first plate frame's header;
    ``windows``: each keyframe's plate frame's (display, data) windows; ``picture``: ``shot_picture``; ``view``:
    ``plate_view``, the view of a stereo roto read, said once for them all): (masks, the layer each was read from,
    the network's geometry). ``vom farm`` asks the same before a job is made."""
    from vom_plugin import io as vio
    from vom_plugin.io.roto import views_notes

    size, aspect = tuple(first.size), first.pixel_aspect
    if not PIXEL_ASPECTS[0] <= aspect <= PIXEL_ASPECTS[1]:
        # said as what it is, not as a roto too small for the network's 960x1 that the plate was desqueezed to (QA)
        raise InputError(f"plate {first.path}: pixel aspect {aspect:g} in its header (PixelAspectRatio) is no "
                         f"picture's; vom desqueezes a plate by it for the network (anamorphic plates are 1.33-2), and "
                         f"takes {PIXEL_ASPECTS[0]:g}-{PIXEL_ASPECTS[1]:g}: fix the header (oiiotool IN --attrib "
                         f"PixelAspectRatio 1.0 -o OUT)")
    reads: list[Any] = []
    read = {name: {kf: _read_roto(name, kf, path, size, aspect, windows[kf], notes,
                                  vio.placed_at(picture, windows[kf][0]), view, reads)
                   for kf, path in kfs.items()}
            for name, kfs in shot.rotos().items()}
    notes.extend(views_notes(reads))
    rotos = {name: {kf: mask for kf, (mask, _) in kfs.items()} for name, kfs in read.items()}
    layers = {name: {kf: layer for kf, (_, layer) in kfs.items()} for name, kfs in read.items()}  # read once
    geo = fr.geometry(picture.width, picture.height, shot.working_size, max(size[0] * aspect, size[1]), aspect)
    _check_rotos_seen(rotos, shot, geo)
    return rotos, layers, geo


def keyframe_windows(shot: Shot, heads: dict[int, Any]) -> dict[int, tuple[Any, Any]]:
    """Each keyframe's plate frame's (display, data) windows, from ``heads`` (its header among them)."""
    return {kf: _windows(heads[kf]) for kfs in shot.rotos().values() for kf in kfs}


PIXEL_ASPECTS = (0.25, 4.0)  # what a plate's pixel aspect may be (squeezed 2x either way, with room)

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


def roto_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two rotos (over 0.5); 0 for rotos of other sizes or none drawn."""
    ma, mb = a > 0.5, b > 0.5
    if ma.shape != mb.shape:
        return 0.0
    union = int(np.count_nonzero(ma | mb))
    return int(np.count_nonzero(ma & mb)) / union if union else 0.0


def shares_roto(rotos: dict[Any, dict[int, np.ndarray]], name: Any, kf: int) -> bool:
    """Whether object ``name``'s roto of keyframe ``kf`` is (nearly) another object's (``_shared_roto_notes``)."""
    mine = rotos.get(name, {}).get(kf)
    return mine is not None and any(
        n != name and kf in r and roto_overlap(mine, r[kf]) >= SAME_ROTO_IOU for n, r in rotos.items())


def _shared_roto_notes(rotos: dict[Any, dict[int, np.ndarray]], notes: list[str]) -> None:
    """A warning where two objects' rotos of one keyframe are (nearly) the same shape: the objects' alphas are shared
    where they overlap, so each came out at half, exit 0, without a word (QA: one Roto copied to two layers)."""
    names = [n for n in rotos if n is not None]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for kf in sorted(set(rotos[a]) & set(rotos[b])):
                iou = roto_overlap(rotos[a][kf], rotos[b][kf])
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
    from vom_plugin.io.plate import header_view

    view, view0 = header_view(info.metadata), header_view(first.metadata)
    if view and view0 and view != view0:
        # a frame of the other eye dropped into a one-eye sequence was matted as it came, exit 0 (review); a frame
        # naming no view (a paint fix from another tool) is read as the others
        raise InputError(f"plate frame {frame} ({path}) is of the view {view!r} (its header's), and frame {f0} ({p0}), "
                         f"the first this render reads, of {view0!r}: a frame of another view in the sequence; write "
                         f"it as the others are")
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


def cache_among_files(shot: Shot, root: str | os.PathLike[str]) -> str | None:
    """Why the cache folder ``root`` is not used for ``shot``: it is the folder of its plate, a roto or an output,
    where vom writes no cache (QA: a swapped --cache put a lock and a shot folder among a published plate's frames
    without a word); None where it is a folder of its own."""
    real = os.path.realpath(root)
    theirs = [("the plate's", shot.plate), *(("the output's", p) for p in shot.out_patterns().values())]
    theirs += [("a roto's", str(p)) for kf in shot.rotos().values() for p in kf.values()]
    for whose, path in theirs:
        if os.path.realpath(os.path.dirname(os.path.abspath(path))) == real:
            return (f"cache folder {str(root)!r} is {whose} folder, where vom writes no cache; pass --cache DIR (or "
                    f"set VOM_CACHE_DIR) to a folder of its own")
    return None


CACHE_OFF = "rendering without the cache: "  # how the warning of a render the cache is off for begins


def _open_cache(shot: Shot, first_frame: Path) -> tuple[ShotCache, str | None]:
    """The shot's cache (its folder named from the plate's ``first_frame`` on disk), and why it is off for this
    render (None when usable): a cache never fails a render."""
    from vom_plugin.engine.cache import CacheUnavailable
    from vom_plugin.locations import default_cache_dir

    cache = ShotCache(shot.cache or default_cache_dir(), shot.plate, first_frame=first_frame)
    among = cache_among_files(shot, cache.root)
    if among:
        return cache, f"{CACHE_OFF}{among}"
    try:
        cache.prepare()
    except CacheUnavailable as e:
        return cache, f"{CACHE_OFF}{e}"
    return cache, None


def prepare(shot: Shot, models: LoadedModels | None = None, memo: Memo | None = None) -> Job:
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
    try:
        seq = vio.open_sequence(shot.plate, frames)  # names the missing frames
    except InputError as e:
        have = set(on_disk.frames)
        if any(f not in have for f in frames):  # with the holes the passes would read, in one message
            raise InputError(f"{e}{holes_beside(on_disk, frames, [sorted(k) for k in shot.rotos().values()])}"
                             ) from None
        raise
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
    windows = keyframe_windows(shot, heads)  # keyframes have heads
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
                         f"{', ...' if len(files) > 1 else ''}): another render's, whose matte was not shared out with "
                         f"this render's objects, so where they overlap the alphas may sum above 1; render "
                         f"every object in one shot, or delete {'them' if len(files) > 1 else 'it'} if that object "
                         f"is gone")
    views = vio.plate_views(seq.path(frames[0]))
    if views:  # a stereo EXR: its default view's R, G, B are read (a multi-part one's first part's, if it lists none)
        notes.append(f"plate {seq.path(frames[0])} holds the views {', '.join(views)}: vom mattes the default one, "
                     f"{views[0]!r}; for another view, render a plate of that view alone")
    picture = shot_picture(on_disk, heads, first.info, notes)
    for f, info in heads.items():
        _check_seen(f, on_disk.path(f), info, picture)
    # a stereo roto is read in the plate's view (QA: its default one was, a right-eye plate matted from the left's)
    rotos, layers, geo = read_rotos(shot, first.info, windows, picture, notes, plate_view(seq.path(frames[0])))
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
    recipe, roto_stamps, settings_stamp = recipe_stamps(shot, windows, layers)
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
    return Job(shot=shot, all_frames=list(on_disk.frames), frames=frames, plate_seq=on_disk, size=size,
                picture=picture, geo=geo,
                rotos=rotos, roto_fp=roto_fp, model=model,
                model_id=model_id, device=device, cache=cache, cache_off=cache_off, memo=memo,
                plates={frames[0]: first, first_kf: at_kf}, plate_ids=plate_ids, plate_fps=plate_fps,
                notes=notes, recipe=recipe, roto_stamps=roto_stamps,
                settings_stamp=settings_stamp, gain=gain, made_folders=made,
                made_ids={q: folder_identity(q) for q in made},
                trained=weights_meta.get("source") == "vom train",
                rgb_colour=vio.RgbColour.of(at_kf.info.metadata, shot.colorspace) if shot.output != "alpha" else None)


def remove_empty_folders(folders: list[Path], ids: dict[Path, Any] | None = None) -> None:
    """Remove ``folders`` (innermost first) that are empty: those a render made and wrote nothing into; with ``ids``
    (``output_guard.identity`` when made), only those that are still the ones it made (not another's made since)."""
    for folder in sorted(folders, key=lambda q: -len(q.parts)):
        if ids is not None and folder_identity(folder) != ids.get(folder):
            continue
        with contextlib.suppress(OSError):
            folder.rmdir()
