"""What a shot's plate says that every render of it and a farm job read alike: the spans of frames a render's passes
read and their headers, the window the network sees, the first keyframe and the exposure it sets, and the stamps
that record them in each output file (``vom farm check`` compares them)."""

from __future__ import annotations

import itertools
import math
from typing import Any

from vom_plugin.engine.file_source import check_size
from vom_plugin.engine.shot import Shot
from vom_plugin.errors import InputError


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

    reach, unread, reach_frames = [], [], []
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
            reach_frames.append(f)
    if unread:
        more = f" (and {len(unread) - 1} more)" if len(unread) > 1 else ""
        notes.append(f"the overscan the network sees leaves out plate frames it cannot read: {unread[0]}{more}")
    picture = vio.picture_window(vio.Window(0, 0, *first.size), reach)
    # overscan past the network's reach: its matte is the picture's edge extended, not matted (QA: a camera sweep's
    # data window of 3x the frame came out as solid bars of the edge's alpha, without a word)
    beyond = [(f, r) for f, r in zip(reach_frames, reach, strict=True) if r.width > 0 and r.height > 0 and (
        r.x < picture.x or r.y < picture.y or r.x_end > picture.x_end or r.y_end > picture.y_end)]
    if beyond:
        f, r = beyond[0]
        frames = vio.format_frames([f for f, _ in beyond])
        notes.append(f"plate frame{'s' if len(beyond) > 1 else ''} {frames}: the data window reaches past the "
                     f"overscan vom mattes ({vio.MAX_OVERSCAN:.0%} of the frame beyond each side: "
                     f"{picture.exr_box()} relative to the display window; frame {f}'s is {r.exr_box()}): beyond it "
                     f"the matte is the picture's edge extended, not matted; crop the plate's data window to the "
                     f"overscan the comp uses")
    return picture


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


def plate_step(on_disk: Any) -> int:
    """The step of the plate on disk: 2 for a plate on twos (every frame a multiple of 2 apart), else 1. Two frames
    two apart are a frame missing between them, not a plate on twos: that takes three frames. ``vom benchmark``
    reads a shot's frames by it too."""
    have = sorted(set(on_disk.frames))
    if len(have) < 3:
        return 1
    step = 0
    for a, b in itertools.pairwise(have):
        step = math.gcd(step, b - a)
    return max(step, 1)


def holes(on_disk: Any, lo: int, hi: int) -> list[int]:
    """The frames from ``lo`` to ``hi`` missing from the plate on disk (``check_no_holes``' rule: a plate on twos
    has none between its frames, ``plate_step``)."""
    have = sorted(set(on_disk.frames))
    if len(have) < 2:  # a still standing for every frame (the Python API's), or one frame: nothing to cross
        return []
    step = plate_step(on_disk)
    on = set(have)
    return [f for f in range(lo, hi + 1, step) if f not in on] if lo % step == have[0] % step else []


def holes_beside(on_disk: Any, frames: list[int], keyframe_sets: list[list[int]]) -> str:
    """For a render some of whose requested ``frames`` are missing: "; and frames ..., which the propagation
    reads..." naming the frames missing in its passes' spans that are not requested, else "" (they were said
    only once the requested ones were delivered, QA: a second round of the same error)."""
    import types

    from vom_plugin import io as vio

    asked = set(frames)
    # the passes planned as if the requested frames were there (review: with none of them on disk, the holes on the
    # way were still said one round later)
    planned = types.SimpleNamespace(frames=sorted(set(on_disk.frames) | asked))
    beside = sorted({f for lo, hi in read_spans(planned, sorted(asked), keyframe_sets) for f in holes(on_disk, lo, hi)}
                    - asked)
    if not beside:
        return ""
    return (f"; and frame{'s' if len(beside) > 1 else ''} {vio.format_frames(beside)}, which the propagation reads "
            f"on its way between the keyframes and the requested frames")


def check_no_holes(plate: str, on_disk: Any, lo: int, hi: int) -> None:
    """The frames a render's passes read run from the first keyframe or requested frame to the last, over the
    plate as it is on disk: a hole there (a farm render that left frames out) is refused, not skipped (a pass
    that jumped from frame 2 to 15 gave another matte, silently). A plate rendered on twos (every frame on disk
    a multiple of the same step apart) has no holes."""
    from vom_plugin import io as vio

    missing = holes(on_disk, lo, hi)
    if missing:
        raise InputError(f"sequence {plate}: missing frame{'s' if len(missing) > 1 else ''} "
                         f"{vio.format_frames(missing)}, which the propagation reads on its way between the keyframes "
                         f"and the requested frames (frames {lo}-{hi}; e.g. {on_disk.path(missing[0])})")


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
