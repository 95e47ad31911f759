"""Roto masks: one image per keyframe (EXR, PNG, TIFF, ...) -> a binary (H, W) mask over the plate's frame."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from vom_plugin.errors import InputError
from vom_plugin.grammar import is_object_name
from vom_plugin.io.info import ImageInfo, Window
from vom_plugin.io.plate import image_view, image_views, is_grey_name
from vom_plugin.io.reader import (
    INT32_FORMATS,
    OpenImage,
    extend,
    find_rgb,
    on_part,
    open_image,
    part_specs,
    place,
    read_channels,
    sanitize,
    subimage_names,
    to_display,
)

THRESHOLD = 0.5
# Rec.709 luma weights: a white-on-black roto reads as 1 whatever its hue.
_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
# Relative aspect difference tolerated as rounding (1920x1080 vs 1000x563 is the same frame).
_ASPECT_TOLERANCE = 0.01
# A roto within this share of the plate's size on each side, yet not its size, is said (not a proxy)
_NEAR_SIZE = 0.1


_ALPHA_NAMES = ("A", "a", "alpha", "Alpha")
_MASK_NAMES = ("mask", "matte")


@dataclass(frozen=True)
class ViewRead:
    """Which view of a stereo roto ``roto_layer_of`` read (``view``, of its ``views``; ``said``: the channel, or its
    channels where the file's rule reads it), and whether the plate named that view (``of_plate``): ``views_notes``
    says a render's in one note."""

    path: str
    views: tuple[str, ...]
    view: str
    said: str
    of_plate: bool


def views_notes(reads: list[ViewRead]) -> list[str]:
    """One note per view read of a render's stereo rotos (``roto_layer_of``'s ``reads``), naming each roto: a note per
    keyframe's roto said the same N times (review)."""
    groups: dict[tuple[tuple[str, ...], str, bool], list[ViewRead]] = {}
    for read in reads:
        groups.setdefault((read.views, read.view, read.of_plate), []).append(read)
    said = []
    for (views, view, of_plate), group in groups.items():
        paths = list(dict.fromkeys(r.path for r in group))
        channels = {r.said for r in group}
        what = group[0].said if len(channels) == 1 else "; ".join(f"{r.path}: {r.said}" for r in group)
        listed, one = ", ".join(views), len(paths) == 1
        rotos = f"roto {paths[0]} holds" if one else f"rotos {', '.join(paths)} hold"
        said.append(f"{rotos} the views {listed}: vom reads {'its' if one else 'their'} view {view!r}, the view of the "
                    f"plate it mattes ({what})" if of_plate else
                    f"{rotos} the views {listed}, the plate none: vom reads the roto{'' if one else 's'}'"
                    f"{'s' if one else ''} default view, {view!r} ({what})")
    return said


def roto_layer_of(path: str | os.PathLike[str], name: str | None, view: str | None = None,
                  notes: list[str] | None = None, *, reads: list[ViewRead] | None = None) -> str | None:
    """The channel object ``name``'s mask is read from in the roto at ``path``: its own layer's alpha (``hero.A``,
    in any part of the file; else one of another case, when only one matches), as the Nuke node's objects read a
    layered roto; None where the file holds no such layer, or it is the file's only alpha (its mask is read as for
    one object).
    ``view``: the view the plate is matted in (``plate.image_view``; None for a plate naming none). Of a stereo roto
    (``plate.image_views``), the alpha of that view (else of its default one; ``_view_channel``), said in ``notes``,
    or, given ``reads``, added there for ``views_notes`` to say once for several rotos. A roto of one view (OpenEXR's
    ``view`` attribute) is refused over a plate matted in another."""
    with open_image(path, "roto") as img:
        views = image_views(img)
        if views:
            found, read = _view_channel(img, views, name, view)
            if reads is not None:
                reads.extend([read] if read not in reads else [])
            elif notes is not None:
                notes.extend(n for n in views_notes([read]) if n not in notes)
            return found
        own_view = image_view(img)
        if own_view is not None and view is not None and own_view != view:
            # a right-eye roto over a plate matted as the left eye was read without a word (review)
            raise InputError(f"roto {path} is of the view {own_view!r} (its header's view), and vom mattes the "
                             f"plate's view {view!r}: a roto drawn for another view; give the roto of the view "
                             f"{view!r}, or render a plate of the view {own_view!r}")
        if not name:
            return None
        parts = subimage_names(img) if img.input.format_name() == "openexr" else [""]
        if len(parts) > 1:
            channels = [c for spec in part_specs(img, len(parts)) for c in spec.channelnames]
        else:
            channels = list(img.info.channels)
    layered = [c for c in channels if "." in c and c.rsplit(".", 1)[1] in _ALPHA_NAMES]
    if len(parts) == 1 and len(layered) == 1 and not any(c in _ALPHA_NAMES for c in channels):
        # its only alpha, which the file's rule reads anyway (its cache entries and recipe unchanged); in a file of
        # parts the rule picks a part by its mask channels, which another part's matte makes ambiguous (review)
        return None
    for same in (lambda layer: layer == name, lambda layer: layer.lower() == name.lower()):
        found = [c for c in layered if same(c.rsplit(".", 1)[0])]
        if len(found) == 1:
            return found[0]
    return None


def _view_channel(img: OpenImage, views: list[str], name: str | None,
                  view: str | None) -> tuple[str | None, ViewRead]:
    """``roto_layer_of`` of a stereo roto: the channel of the plate's ``view`` (else, over a plate naming none, the
    roto's default one) that holds the mask, named as OpenEXR names a one-part file's views (the default view's
    channels plain, another's with its name next to last: ``right.A``, ``hero.right.A``; every view prefixed,
    ``left.A``, is read too), and what was read; None for the default view's plain alpha, read as any roto's. Its
    default view was read whatever the plate's, a right-eye plate matted from the left eye's shape without a word
    (QA). InputError for a roto without the plate's view, for one whose views are parts of their own, for a view with
    no alpha or several layered ones (as ``_alpha_index``), and for a view's channel written twice (A, left.A)."""
    path, listed = img.path, ", ".join(views)
    if view is not None and view not in views:
        raise InputError(f"roto {path} holds the views {listed} and not {view!r}, the view vom mattes of the plate: a "
                         f"roto drawn for another view; give the roto of the plate's view, or render a plate of one "
                         f"of the roto's views")
    chosen = view or views[0]
    parts = subimage_names(img)
    if len(parts) > 1:
        specs = part_specs(img, len(parts))
        part_views = [str(spec.getattribute("view") or "") for spec in specs]
        listing = "; ".join(f"part {i} {parts[i] or '(unnamed)'!r}: {', '.join(spec.channelnames)}"
                            for i, spec in enumerate(specs))
        part = next((parts[i] or str(i) for i, v in enumerate(part_views) if v == chosen), "PART")
        whose = "the plate's" if view else "its default one"
        raise InputError(f"roto {path} holds the views {listed}, each a part of its own ({listing}): vom reads a "
                         f"stereo roto's views from one part (A, right.A); write its view {chosen!r}, {whose}, as a "
                         f"roto of its own (oiiotool {path.name} --subimage {part} -o OUT.exr)")

    def view_of(channel: str) -> str:
        bits = channel.split(".")
        return bits[-2] if len(bits) > 1 and bits[-2] in views else views[0]

    def bare(channel: str) -> str:  # the channel's name without its view: right.A -> A, hero.right.A -> hero.A
        bits = channel.split(".")
        return ".".join(bits[:-2] + bits[-1:]) if len(bits) > 1 and bits[-2] in views else channel

    own: dict[str, list[str]] = {}  # the view's channels by their bare name: A and left.A are both 'left''s A
    for c in img.info.channels:
        if view_of(c) == chosen:
            own.setdefault(bare(c), []).append(c)
    held = ", ".join(c for cs in own.values() for c in cs)
    layered = [b for b in own if "." in b and b.rsplit(".", 1)[1] in _ALPHA_NAMES]
    found = None
    if name:  # the object's own layer in that view
        for same in (lambda layer: layer == name, lambda layer: layer.lower() == name.lower()):
            hits = [b for b in layered if same(b.rsplit(".", 1)[0])]
            if len(hits) == 1:
                found = hits[0]
                break
    if found is None:
        found = next((b for b in own if b in _ALPHA_NAMES), None)
    if found is None and len(layered) > 1:  # one per object, and none this one's (as a roto of one view, review)
        raise _several_alphas(f"holds the views {listed}, and its view {chosen!r} ", path,
                              [own[b][0] for b in layered], [b.rsplit(".", 1)[0] for b in layered])
    found = found or next(iter(layered), None) or next(iter([b for b in own if _names_a_matte(b)][:1]), None)
    if found is not None and len(own[found]) > 1:
        # OpenEXR reads both as the view's: taking one would guess (an object named as a view, review)
        raise InputError(f"roto {path} holds the views {listed}, and its channels {', '.join(own[found])} both read "
                         f"as the channel {found} of its view {chosen!r}: cannot tell which to read; write it once "
                         f"(OpenEXR names the default view's channels plain, {found}, or with the view's name, not "
                         f"both)")
    channel = own[found][0] if found is not None else None
    if channel is None:
        masks = [c for c in img.info.channels if _holds_mask((c,))]
        if chosen != views[0] or masks:  # read as the file's rule reads it, the mask would be another view's
            raise InputError(f"roto {path} holds the views {listed}, and its view {chosen!r} has no alpha (its "
                             f"channels {held or 'none'}); write that view's shape as its alpha")
    said = f"channel {channel}" if channel else f"its channels {held}"
    read = ViewRead(str(path), tuple(views), chosen, said, view is not None)
    return (None if channel is None or (channel == found and channel in _ALPHA_NAMES) else channel), read


def _several_alphas(where: str, path: object, alphas: list[str], layers: list[str]) -> InputError:
    """The refusal of a roto (``where``: of a stereo roto, which view) holding several layered ``alphas`` (of the
    ``layers``) and no plain one: taking the first would matte another object."""
    # only layers an object may be named after (rgba is the comp's own: an object so named is refused, QA)
    named = [layer for layer in layers if is_object_name(layer)]
    how = f"name the object after its layer ({', '.join(named)}: an object reads its own), or " if named else ""
    return InputError(f"roto {path} {where}holds several alphas ({', '.join(alphas)}) and no plain A: cannot tell "
                      f"which object it draws; {how}write the one to use as its own file (oiiotool IN --ch LAYER.A "
                      f"--chnames A -o OUT)")


def _alpha_index(img: OpenImage) -> int | None:
    """The roto's alpha: the plain one (A, alpha), else the only layered one (``hero.A``). Several layered
    alphas and no plain one (one per object) are refused: taking the first would matte another object."""
    channels = img.info.channels
    plain = [i for i, c in enumerate(channels) if c in _ALPHA_NAMES]
    if plain:
        return plain[0]
    layered = [i for i, c in enumerate(channels) if "." in c and c.rsplit(".", 1)[1] in _ALPHA_NAMES]
    if len(layered) > 1:
        raise _several_alphas("", img.path, [channels[i] for i in layered],
                              [channels[i].rsplit(".", 1)[0] for i in layered])
    if layered:
        return layered[0]
    if 0 <= img.spec.alpha_channel < len(channels):  # a file that declares another channel its alpha
        return int(img.spec.alpha_channel)
    return None


# Channel and layer names of data passes (depth, normals, positions, motion, IDs): a lone one is not a drawn shape
_DATA_NAMES = frozenset({"z", "depth", "zdepth", "distance", "n", "normal", "normals", "p", "position", "pref",
                         "motion", "vector", "velocity", "uv", "id", "objectid", "materialid"})


def is_data_channel(channel: str) -> bool:
    """A channel named as a data pass (Z, depth, N.x, motion.u...): values, not a drawn shape or a matte."""
    layer, _, leaf = channel.rpartition(".")
    return leaf.lower() in _DATA_NAMES or layer.lower() in _DATA_NAMES


def _names_a_matte(channel: str) -> bool:
    """A channel named as a matte: ``mask``, ``matte`` (or a layer's: ``hero.matte``), or the alpha of a layer so
    named (Nuke's ``mask.a``)."""
    layer, _, leaf = channel.rpartition(".")
    return leaf.lower() in _MASK_NAMES or (leaf in _ALPHA_NAMES and layer.lower() in _MASK_NAMES)


def _holds_shape(inside: np.ndarray, covers: bool) -> bool:
    """Whether a binarised channel (over its data window; ``covers``: that window holds the display window) draws a
    shape: some pixels inside, and some outside (those beyond a smaller data window are)."""
    return bool(inside.any()) and (not bool(inside.all()) or not covers)


def _holds_mask(channels: tuple[str, ...]) -> bool:
    """Whether a part's channels include an alpha (plain or layered) or a channel named as a matte."""
    return any(c.rsplit(".", 1)[-1] in _ALPHA_NAMES or c.rsplit(".", 1)[-1].lower() in _MASK_NAMES for c in channels)


def _roto_part(img: OpenImage, channel: str | None) -> OpenImage:
    """In a multi-part EXR, the part the mask is read from: the one holding ``channel``, else the one holding an
    alpha or matte channel (a depth or other AOV part may come first), else the one with a picture. Several
    such parts are refused with their names: taking the first could matte the wrong thing. Other files as they
    are (a TIFF's pages: the first)."""
    if img.input.format_name() != "openexr":
        return img
    parts = subimage_names(img)
    if len(parts) <= 1:
        return img
    channels = [tuple(spec.channelnames) for spec in part_specs(img, len(parts))]
    if channel:
        found, what = [i for i, chs in enumerate(channels) if channel in chs], f"a channel {channel!r}"
    else:
        found, what = [i for i, chs in enumerate(channels) if _holds_mask(chs)], "an alpha or matte channel"
        if not found:
            found, what = [i for i, chs in enumerate(channels) if find_rgb(chs, "") is not None
                           or any(is_grey_name(c) for c in chs)], "a picture (R, G, B or Y)"
    listing = "; ".join(f"part {i} {parts[i] or '(unnamed)'!r}: {', '.join(chs)}" for i, chs in enumerate(channels))
    if len(found) != 1:
        how = "none of its parts holds" if not found else f"its parts {', '.join(repr(parts[i]) for i in found)} " \
            "each hold"
        raise InputError(f"roto {img.path}: a multi-part EXR, and {how} {what} ({listing}); write the mask as a "
                         f"file of its own (oiiotool {img.path.name} --subimage PART --ch CHANNEL --chnames A -o OUT)")
    return on_part(img, found[0])


def _read(img: OpenImage, indices: list[int]) -> np.ndarray:
    """``read_channels``, refusing 32-bit integer channels: OpenImageIO divides them by 2^32 - 1, so a mask of
    whole 1s read as nothing (an "empty" roto)."""
    ints = [img.info.channels[i] for i in indices if str(img.spec.channelformat(i)) in INT32_FORMATS]
    if ints:
        raise InputError(f"roto {img.path}: its channel{'s' if len(ints) > 1 else ''} {', '.join(ints)} "
                         f"{'are' if len(ints) > 1 else 'is a'} 32-bit integer{'s' if len(ints) > 1 else ''} (an ID "
                         f"pass?); write the roto as half, float or 8/16-bit (oiiotool IN -d half -o OUT)")
    return read_channels(img, indices)


def _mask_values(img: OpenImage, channel: str | None) -> tuple[np.ndarray, str]:
    """The roto's soft values over its data window, and a description of where they came from."""
    channels = img.info.channels
    if channel:
        if channel not in channels:
            raise InputError(f"roto {img.path} has no channel {channel!r}; its channels are {', '.join(channels)}")
        return _read(img, [channels.index(channel)])[:, :, 0], f"channel {channel}"
    alpha = _alpha_index(img)
    # a matte written under its own name (mask, matte; Nuke's mask.a) beside other channels
    named = [i for i, c in enumerate(channels) if i != alpha and _names_a_matte(c)]
    if alpha is None and len(named) == 1:
        return _read(img, named)[:, :, 0], f"channel {channels[named[0]]}"
    # the RGB beside the alpha: a layered alpha (rgba.A) has its colour in the same layer (rgba.R ...)
    layer = channels[alpha].rsplit(".", 1)[0] if alpha is not None and "." in channels[alpha] else ""
    rgb = find_rgb(channels, layer) or (find_rgb(channels, "") if layer else None)
    # a grey picture: the Y of a grey PNG with alpha (GIMP's, Photoshop's), or a lone channel
    # (a lone channel named as data, Z, depth, N.x, is not a shape: refused below; another name is the shape's)
    lone = len(channels) == 1 and not is_data_channel(channels[0])
    grey = channels.index("Y") if "Y" in channels else 0 if lone else None
    if alpha is not None:
        values = _read(img, [alpha])[:, :, 0]
        # A paint program's PNG often has an opaque alpha and the shape in RGB or grey: then the alpha says
        # nothing. A data window smaller than the frame (an autocropped roto) is not constant over it: 0 outside.
        dw, disp = img.info.data_window, img.info.display_window
        covers = dw.x <= disp.x and dw.y <= disp.y and dw.x_end >= disp.x_end and dw.y_end >= disp.y_end
        constant = values.min() == values.max() and covers
        # the matte channels that hold a shape (a Write of "all" carries a black or copied mask layer beside a right
        # alpha, which was read as before: review)
        mattes = {i: _read(img, [i])[:, :, 0] for i in named}
        shaped = [i for i, v in mattes.items() if _holds_shape(v >= THRESHOLD, covers)]
        other = [i for i in shaped if not np.array_equal(mattes[i] >= THRESHOLD, values >= THRESHOLD)]
        if not constant and other and rgb is not None:
            # another shape drawn into a mask channel beside a picture's own alpha (a Write of rgba and mask): either
            # could be the roto, and reading the alpha mattes another object without a word (QA); an alpha with no
            # picture beside it is a roto's
            listed = ", ".join(channels[i] for i in [alpha, *other])
            raise InputError(
                f"roto {img.path}: its alpha {channels[alpha]} and {'its' if len(other) == 1 else 'the'} matte "
                f"channel{'s' if len(other) > 1 else ''} {', '.join(channels[i] for i in other)} hold two shapes: "
                f"cannot tell which is the roto ({listed}); write the one to use as its own file "
                f"(oiiotool IN --ch {channels[other[0]]} --chnames A -o OUT)")
        if constant and len(shaped) == 1:  # an opaque alpha (the plate's, Nuke's default) says nothing: the matte
            return mattes[shaped[0]], f"channel {channels[shaped[0]]}"
        if (rgb is None and grey in (None, alpha)) or not constant:
            return values, f"channel {channels[alpha]}"
    if rgb is not None:
        return _read(img, rgb) @ _LUMA, "luminance of " + ", ".join(channels[i] for i in rgb)
    if grey is not None:
        return _read(img, [grey])[:, :, 0], f"channel {channels[grey]}"
    if len(channels) == 1:
        raise InputError(f"roto {img.path}: its only channel {channels[0]!r} is a data pass (depth, normals, "
                         f"motion...), not a drawn shape; expected the shape in A (or alpha, mask, matte), R, G, B or "
                         f"one grey channel (if it is the shape: oiiotool IN --chnames A -o OUT)")
    raise InputError(
        f"roto {img.path}: no alpha, R, G, B or single channel to read the mask from (channels {', '.join(channels)}); "
        "write the mask as its own file (oiiotool IN --ch CHANNEL --chnames A -o OUT)"
    )


def roto_over_data_window(path: str | os.PathLike[str], plate_windows: tuple[Window, Window], *,
                          channel: str | None = None) -> bool:
    """Whether ``read_roto`` places the roto at ``path`` (its ``channel``, an object's layer) over the plate's data
    window (its header only): part of the roto's identity wherever what the network was given is remembered (the
    cache)."""
    with open_image(path, "roto") as opened:
        # the part read_roto reads: an object's own (asked without its layer, a file of one part per object was
        # refused as several parts, QA)
        return _drawn_over_data_window(_roto_part(opened, channel).info, plate_windows)


def _drawn_over_data_window(roto: ImageInfo, plate_windows: tuple[Window, Window]) -> bool:
    """A roto with plain windows (data = display, at the origin) the size of the plate's data window, where
    that is not the size of the plate's display window."""
    display, data = plate_windows
    if roto.display_window == data != display:  # its frame is the plate's data window, origin and all (QA)
        return True
    plain = roto.data_window == roto.display_window and roto.display_window[:2] == (0, 0)
    return plain and (data.width, data.height) != (display.width, display.height) and \
        roto.size == (data.width, data.height)


def _resize(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    from vom_plugin import import_cv2

    cv2 = import_cv2()
    shrinking = width < mask.shape[1] or height < mask.shape[0]
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def read_roto(
    path: str | os.PathLike[str], size: tuple[int, int], *, channel: str | None = None, pixel_aspect: float = 1.0,
    plate_windows: tuple[Window, Window] | None = None, notes: list[str] | None = None,
    picture: Window | None = None,
) -> np.ndarray:
    """The roto at ``path`` as float32 (H, W) of {0, 1}, H and W from ``size`` = (width, height) of the plate.

    The mask comes from ``channel`` when given, else the alpha channel (unless it is constant: then a channel
    named as a matte, else the picture; ``_mask_values``), else the luminance of R, G, B, else the only channel;
    it is placed into its display window and binarised at 0.5 (>= 0.5 is inside). A roto of another size with
    the same aspect is resampled first; with the plate's ``pixel_aspect``, a roto drawn over the desqueezed
    picture (square pixels) is too.
    ``plate_windows`` (display, data): a plain roto exactly the size of a plate's data window that differs
    from its display window covers that data window (a host that shows the stored pixels, as Blender does,
    draws its rotos over them), as does one whose display window is that data window.
    ``picture``: the window the network sees (``info.picture_window``: the plate's display window and its
    overscan, in the plate's image space; ``plate_windows`` then required): the mask is returned over it. A
    roto with pixels of its own in that overscan is read there (as everywhere: 0 where it has none); a roto of
    the display window only says nothing of the overscan, and is extended outwards from its edges (an object
    at the frame's edge goes on past it).
    Raises InputError naming the file for another aspect, an empty mask or a missing channel; a warning for the
    render (a roto that looks like 8-bit codes) goes to ``notes``.
    """
    width, height = int(size[0]), int(size[1])
    if width <= 0 or height <= 0:
        raise ValueError(f"read_roto: size must be (width, height) > 0, got {size}")
    with open_image(path, "roto") as opened:
        img = _roto_part(opened, channel)
        values, source = _mask_values(img, channel)
        values = np.ascontiguousarray(values, dtype=np.float32)
        non_finite = int(values.size - np.count_nonzero(np.isfinite(values)))
        values = sanitize(values)
        peak = float(values.max()) if values.size else 0.0
        # 0-255 codes (whole numbers well above 1: rotos merged with "plus" peak at 2 or 3): every anti-aliased
        # edge pixel from 1/255 up is inside
        if peak >= 16 and notes is not None and not np.any(np.abs(values - np.round(values)) > 1e-3):
            notes.append(f"roto {path}: its {source} reaches {peak:g}, not 1 (8-bit codes 0-255?); read as inside "
                         f"where >= {THRESHOLD}, so its soft edge counts as inside: write it as 0-1")
        info = img.info
        if plate_windows is not None and _drawn_over_data_window(info, plate_windows):
            info = ImageInfo(display_window=plate_windows[0], data_window=plate_windows[1])
        data_values = values
        values = to_display(values, info)
        shown = values  # over the display window: a Nuke roto's bbox data window would weigh its soft edge up (review)
        roto_w, roto_h = info.size
    if (roto_w, roto_h) != (width, height):
        plate_aspect, roto_aspect = width / height, roto_w / roto_h
        accepted = (plate_aspect, plate_aspect * float(pixel_aspect))
        if all(abs(roto_aspect - a) > _ASPECT_TOLERANCE * a for a in accepted):
            raise InputError(
                f"roto {path} is {roto_w}x{roto_h} (aspect {roto_aspect:.3f}) but the plate is {width}x{height} "
                f"(aspect {plate_aspect:.3f}); expected a roto of the plate's aspect"
                + (f", or {accepted[1]:.3f}, the picture desqueezed (pixel aspect {float(pixel_aspect):g})"
                   if abs(accepted[1] - plate_aspect) > _ASPECT_TOLERANCE * plate_aspect else "")
            )
        squeezed = plate_aspect * float(pixel_aspect)  # a roto drawn over the desqueezed picture is meant so
        desqueezed = abs(float(pixel_aspect) - 1) > 1e-3 and abs(roto_aspect - squeezed) <= _ASPECT_TOLERANCE * squeezed
        if notes is not None and not desqueezed and max(abs(width / roto_w - 1), abs(height / roto_h - 1)) < _NEAR_SIZE:
            # a proxy (half, quarter size) is scaled as meant; one a few pixels off was made for another format
            notes.append(f"roto {path} is {roto_w}x{roto_h}, the plate {width}x{height}: stretched to the plate's "
                         f"size; a roto a few pixels off the plate's size was made for another format: check that it "
                         f"lines up")
        values = _resize(values, width, height)
    mask = _over_picture((values >= THRESHOLD).astype(np.float32), data_values, info, (width, height),
                         (roto_w, roto_h), plate_windows, picture)
    where = "frame" if mask.shape == (height, width) else "frame and its overscan"
    if not mask.any():
        dw, disp = info.data_window, info.display_window
        if non_finite:
            why = f" ({non_finite} of its pixels are NaN or infinite)"
        elif peak >= THRESHOLD and (dw.x >= disp.x_end or dw.x_end <= disp.x or dw.y >= disp.y_end
                                    or dw.y_end <= disp.y):  # the shape drawn off the frame (QA: said "empty")
            why = (f" (its pixels lie outside its frame: data window {dw.exr_box()}, display window "
                   f"{disp.exr_box()})")
        elif 0 < peak < THRESHOLD:  # a roto drawn at 40% opacity (QA)
            why = f" (its highest value is {peak:.3g}: drawn at less than full opacity?)"
        else:
            why = ""
        raise InputError(
            f"roto {path} is empty: no pixel of its {source} is >= {THRESHOLD} over the {where}{why}; expected the "
            f"object drawn in white"
        )
    if mask.all():  # nothing outside the object: the matte would be the whole frame, every frame
        raise InputError(
            f"roto {path} covers the whole {where}: every pixel of its {source} is >= {THRESHOLD}; expected the "
            f"object drawn in white on black (an opaque alpha with the shape elsewhere: write the shape as the alpha)"
        )
    if notes is not None:
        notes.extend(_roto_doubts(path, source, shown, mask, non_finite))
    return mask


def _roto_doubts(path: str | os.PathLike[str], source: str, values: np.ndarray, mask: np.ndarray,
                 non_finite: int) -> list[str]:
    """Warnings for a roto that reads but is probably not what was meant (each rendered silently before, QA): a
    picture (a Write of RGB only: its luminance taken for the roto), the object black on white, NaN or infinite
    pixels (read as outside)."""
    said = []
    soft = float(np.mean((values > 0.05) & (values < 0.95))) if values.size else 0.0
    if soft > 0.5:  # a roto is 0 and 1 but for its edges; a picture is mostly in between
        why = ("a Write of RGB only? a premultiplied plate?" if source.startswith("luminance of")
               else "a picture in its alpha?")
        said.append(f"roto {path}: {soft:.0%} of its {source} lies between 0.05 and 0.95, as a picture's does, not a "
                    f"matte's ({why}); read as inside where >= {THRESHOLD}")
    coverage = float(mask.mean())
    # the share of the frame's border inside: an inverted roto holds most of it (63-100%: an object, now outside,
    # cut by one or two edges); a close-up's roto, over half the frame and cut by every edge, about half (45-53%)
    border = float(np.concatenate([mask[0], mask[-1], mask[1:-1, 0], mask[1:-1, -1]]).mean()) if mask.size else 0.0
    if coverage > 0.9 or (coverage > 0.5 and border >= 0.6):  # (an opaque alpha with a clear border read: 96%, QA)
        said.append(f"roto {path}: its inside covers {coverage:.0%} of the frame and {border:.0%} of its border: is "
                    f"it inverted (the object black on white), or the wrong channel? vom mattes what is white in its "
                    f"{source}")
    if non_finite:
        said.append(f"roto {path}: {non_finite} of its pixels are NaN or infinite, read as outside")
    return said


def _over_picture(mask: np.ndarray, data_values: np.ndarray, info: ImageInfo, size: tuple[int, int],
                  roto_size: tuple[int, int], plate_windows: tuple[Window, Window] | None,
                  picture: Window | None) -> np.ndarray:
    """The display window's ``mask`` over ``picture`` (``read_roto``'s): the roto's own pixels there (its
    ``data_values`` over its data window, scaled as the display window was when the roto is of another size,
    a proxy's), when it has pixels on a side where the picture has overscan; else its edges extended outwards."""
    if picture is None or plate_windows is None or picture == plate_windows[0]:
        return mask
    display = plate_windows[0]
    # the roto's data window relative to its display window, in the plate's pixels (a proxy roto's scaled up)
    sx, sy = size[0] / roto_size[0], size[1] / roto_size[1]
    rd, rw = info.data_window, info.display_window
    x0, y0 = round((rd.x - rw.x) * sx), round((rd.y - rw.y) * sy)
    x1, y1 = round((rd.x_end - rw.x) * sx), round((rd.y_end - rw.y) * sy)
    px0, py0 = picture.x - display.x, picture.y - display.y
    px1, py1 = px0 + picture.width, py0 + picture.height
    own_overscan = (x0 < 0 > px0 or y0 < 0 > py0 or x1 > size[0] < px1 or y1 > size[1] < py1) and x1 > x0 and y1 > y0
    if own_overscan:
        values = data_values if roto_size == size else _resize(data_values, x1 - x0, y1 - y0)
        data = Window(display.x + x0, display.y + y0, x1 - x0, y1 - y0)
        return (place(values, data, picture) >= THRESHOLD).astype(np.float32)
    return extend(mask, display, picture)
