"""Plate frames: scene-linear RGB over the display window, chosen by channel name (layers included)."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from vom_plugin.errors import InputError
from vom_plugin.io.info import ImageInfo, Window
from vom_plugin.io.reader import (
    DEFAULT_LAYERS,
    INT32_FORMATS,
    RGB_NAMES,
    OpenImage,
    extend,
    find_rgb,
    layers_of,
    on_part,
    open_image,
    part_specs,
    place,
    read_channels,
    repair,
    subimage_names,
    to_display,
)


@dataclass
class Plate:
    """One frame of a plate.

    ``rgb``: float32 (H, W, 3) over the DISPLAY window (the data window placed into it, 0 where it has no
    pixels, overscan cropped), NaN/Inf replaced by their neighbours' mean (``reader.sanitize``). ``data_rgb``: the
    same pixels over the DATA window (the very same array when the windows coincide), for outputs that keep the
    overscan.
    """

    rgb: np.ndarray
    info: ImageInfo
    data_rgb: np.ndarray
    dead: int = 0  # pixels of the file that were NaN or Inf (in any channel), repaired as ``reader.sanitize`` says

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the display window."""
        return self.info.size

    def over(self, window: Window) -> np.ndarray:
        """The RGB over ``window`` (image space; it holds the display window): ``rgb`` for the display window,
        else the data window's pixels placed there, overscan included. Where the window reaches past both the
        display and the data window (a frame with less overscan than the shot's), the frame's edge is extended:
        a black band there was an edge the network matted against. Inside the display window a pixel the file
        does not hold is 0, as a reader shows it."""
        disp, dw = self.info.display_window, self.info.data_window
        if window == disp:
            return self.rgb
        x0, y0 = max(window.x, min(disp.x, dw.x)), max(window.y, min(disp.y, dw.y))
        x1 = min(window.x_end, max(disp.x_end, dw.x_end))
        y1 = min(window.y_end, max(disp.y_end, dw.y_end))
        held = Window(x0, y0, x1 - x0, y1 - y0)  # the window's part the frame speaks for: its display and data
        return extend(place(self.data_rgb, dw, held), held, window)


# Names a single-channel picture goes by (the part after the last '.'; case ignored): OpenImageIO calls the
# channel of a grey PNG/TIFF/DPX/EXR "Y". Any other lone channel (Z, depth, A, N.x...) is data, not a picture.
GREY_NAMES = frozenset({"y", "l", "luminance", "lum", "luma", "gray", "grey", "mono", "r", "g", "b", "red", "green",
                        "blue"})


def is_grey_name(channel: str) -> bool:
    return channel.rsplit(".", 1)[-1].lower() in GREY_NAMES


def _describe_layers(channels: tuple[str, ...]) -> str:
    names = [layer or "(plain R, G, B)" for layer in layers_of(channels)]
    return ", ".join(names)


def _default_rgb(channels: tuple[str, ...], *, only_layer: bool = True) -> list[int] | None:
    """R, G, B with no layer named: plain, else a usual beauty layer (``rgba``, ``beauty``, ``combined``, or one
    ending so: Blender's ``ViewLayer.Combined``), else (``only_layer``) the only layer that has them."""
    for candidate in ("", *DEFAULT_LAYERS):
        found = find_rgb(channels, candidate)
        if found is not None:
            return found
    with_rgb = [lay for lay in layers_of(channels) if find_rgb(channels, lay) is not None]
    beauty = [lay for lay in with_rgb if lay.rsplit(".", 1)[-1] in DEFAULT_LAYERS]
    if len(beauty) == 1:
        return find_rgb(channels, beauty[0])
    return find_rgb(channels, with_rgb[0]) if only_layer and len(with_rgb) == 1 else None


_BEAUTY_PARTS = frozenset(name.lower() for name in DEFAULT_LAYERS)


def _listed_views(listed: object) -> list[str]:
    """The views a ``multiView`` attribute lists, the default first (OpenImageIO gives a tuple; a string of them
    too is read); [] for none."""
    names = [str(v) for v in listed] if isinstance(listed, tuple | list) else re.split(r"[,\s]+", str(listed or ""))
    return [v for v in names if v]


def header_view(metadata: dict) -> str:
    """The view a plate frame's header says it is of: its ``multiView``'s default (first) view, else its ``view``
    attribute; "" for none (a frame of one part; a multi-part file's views are its parts')."""
    listed = _listed_views(metadata.get("multiView"))
    return listed[0] if listed else str(metadata.get("view") or "")


def _pick_part(img: OpenImage, parts: list[str]) -> tuple[OpenImage, list[int]] | None:
    """In a multi-part EXR, the part holding the picture: of a stereo file's default view (the first in its
    ``multiView``), the one named as a beauty (rgba, beauty, combined, or ending so, or whose R, G, B are a beauty
    layer's), else the only part with R, G, B (an AOV such as depth beside it). None for other formats (a TIFF's
    pages: the first, as before) and when no part has R, G, B. Every part's channels are usually plain R, G, B, so
    a part's name says what it is: several picture parts and no beauty among them (diffuse, specular) is refused
    rather than guessed. The headers are read through ``img``'s own input (no file opened again per part)."""
    if img.input.format_name() != "openexr":
        return None
    specs = part_specs(img, len(parts))
    if len(specs) != len(parts):
        return None
    views = _views_of(specs)
    names = _listed_views(specs[0].getattribute("multiView"))
    default_view = next(iter(names), views[0]) if any(views) else ""
    found: dict[int, list[int]] = {}
    for index, spec in enumerate(specs):
        rgb = _default_rgb(tuple(spec.channelnames))
        if rgb is not None and views[index] in ("", default_view):
            found[index] = rgb
    beauty = [i for i in found if parts[i].rsplit(".", 1)[-1].lower() in _BEAUTY_PARTS
              or any(find_rgb(tuple(specs[i].channelnames), layer) for layer in DEFAULT_LAYERS)]
    chosen = beauty if len(beauty) == 1 else list(found) if len(found) == 1 else None
    if chosen is None:
        if not found:
            return None
        names = ", ".join(repr(parts[i]) for i in found)
        first = next(iter(found))
        raise InputError(
            f"{img.role} {img.path}: a multi-part EXR whose parts {names} all hold R, G, B and "
            f"{'several' if beauty else 'none'} of them is named as a beauty (rgba, beauty, combined); write the "
            f"one to use as a plate of its own (oiiotool {img.path.name} --subimage {parts[first] or first} "
            f"-o OUT.exr; from Python, read_plate(path, layer=PART))")
    index = chosen[0]
    return on_part(img, index), found[index]  # the part read gets open_image's checks too


def _pick_rgb(img: OpenImage, layer: str | None) -> tuple[OpenImage, list[int]]:
    """``_pick_channels``, refusing channels that hold numbers rather than a picture: 32-bit integers (EXR's
    UINT: object IDs, sample counts) would be divided by 2^32 - 1 into a black plate."""
    img, indices = _pick_channels(img, layer)
    ints = [img.info.channels[i] for i in indices if str(img.spec.channelformat(i)) in INT32_FORMATS]
    if ints:
        img.close()
        are = f"channel {ints[0]} is a 32-bit integer" if len(ints) == 1 else \
            f"channels {', '.join(ints)} are 32-bit integers"
        raise InputError(f"{img.role} {img.path}: its {are} (an ID or count pass, not a picture); a plate is half "
                         f"or float (or 8/16-bit) RGB")
    return img, indices


# How many bits a channel format holds, to tell the widest of the picture's channels
_BITS = {"uint8": 8, "int8": 8, "uint16": 16, "int16": 16, "half": 16.5, "float": 32, "double": 64}


def _pick_channels(img: OpenImage, layer: str | None) -> tuple[OpenImage, list[int]]:
    """(image positioned on the right part, indices of R, G, B, or of one grey channel) chosen by name.

    ``layer`` may name a channel prefix (``beauty`` for ``beauty.R``) or a part of a multi-part EXR. The
    input given is closed when another part is returned.
    """
    channels = img.info.channels
    if layer:
        found = find_rgb(channels, layer)
        if found is not None:
            return img, found
        # A multi-part EXR keeps each layer in its own part, named for it.
        parts = subimage_names(img)
        if layer in parts and parts.index(layer) != img.subimage:
            other = open_image(img.path, img.role, subimage=parts.index(layer))
            found = find_rgb(other.info.channels, layer) or find_rgb(other.info.channels, "")
            if found is not None:
                img.close()
                return other, found
            other.close()
        raise InputError(
            f"{img.role} {img.path}: no layer {layer!r} with R, G, B channels; "
            f"its layers are: {_describe_layers(channels)} (channels {', '.join(channels)})"
        )
    parts = subimage_names(img)
    if len(parts) > 1:  # the part's name decides, not the order (a diffuse part first is an AOV)
        picked = _pick_part(img, parts)
        if picked is not None:
            return picked
    found = _default_rgb(channels)
    if found is not None:
        return img, found
    views = _listed_views(img.info.metadata.get("multiView"))
    if views and (found := find_rgb(channels, views[0])) is not None:
        # a one-part stereo EXR whose views are all prefixed (left.R, right.R): its default view, as plate_views says
        return img, found
    if {"RY", "BY"} <= set(channels):  # a luminance/chroma EXR: Y alone would be taken for a grey plate
        raise InputError(f"{img.role} {img.path}: a luminance/chroma EXR (Y, RY, BY); vom reads R, G, B, and Y alone "
                         f"would lose the colour: write the plate as R, G, B (its channels: {', '.join(channels)})")
    grey = [i for i, c in enumerate(channels) if c in ("Y", "y", "L")]
    if grey:
        # beside an alpha, or other layers' passes, Y is a grey picture; beside other plain channels it is one of
        # CIE X, Y, Z or of a position / normal pass's axes, and reading it as grey mattes the wrong picture
        siblings = [c for i, c in enumerate(channels)
                    if i != grey[0] and "." not in c and c.lower() not in ("a", "alpha")]
        if not siblings:
            return img, [grey[0]]
        raise InputError(
            f"{img.role} {img.path}: its channel {channels[grey[0]]!r} sits beside {', '.join(siblings)}: a CIE XYZ "
            f"picture or a data pass (position, normal), not a grey plate; expected R, G, B (or a layer with them) or "
            f"one grey channel such as Y, with an alpha at most (channels {', '.join(channels)})"
        )
    if len(channels) == 1:
        if is_grey_name(channels[0]):
            return img, [0]
        raise InputError(
            f"{img.role} {img.path}: its only channel {channels[0]!r} is not a picture (depth, alpha or another "
            f"data pass); expected R, G, B (or a layer with them) or one grey channel such as Y "
            f"(channels {', '.join(channels)})"
        )
    with_rgb = [lay for lay in layers_of(channels) if find_rgb(channels, lay) is not None]
    hint = (f"its layers {', '.join(with_rgb)} are not a beauty layer (rgba, beauty, combined); write the one to "
            f"use as R, G, B (oiiotool IN --ch {with_rgb[0]}.R,{with_rgb[0]}.G,{with_rgb[0]}.B --chnames R,G,B -o OUT)"
            if with_rgb else _rgb_lacking(channels))
    raise InputError(
        f"{img.role} {img.path}: cannot tell which channels are the RGB; {hint} (channels {', '.join(channels)})"
    )


def _rgb_lacking(channels: list[str] | tuple[str, ...]) -> str:
    """What a plate without a picture lacks: "it has R, G but no B" (or "its layer 'diffuse' has ...") where a layer
    has some of them (a writer that dropped a channel); "it has no R, G, B channels" else."""
    lowered = {c.lower() for c in channels}
    for layer in layers_of(tuple(channels)):
        prefix = f"{layer}." if layer else ""
        have = [names[0].upper() for names in RGB_NAMES if any(f"{prefix}{n}".lower() in lowered for n in names)]
        if have:  # (not all three: a layer with them is a picture)
            whose = f"its layer {layer!r} has" if layer else "it has"
            return f"{whose} {', '.join(have)} but no {', '.join(c for c in 'RGB' if c not in have)}"
    return "it has no R, G, B channels"


def _views_of(specs: list[Any]) -> list[str]:
    """The ``view`` each part's header (``part_specs``) names ("" for none)."""
    return [str(spec.getattribute("view") or "") for spec in specs]


def _with_picture(img: OpenImage, indices: list[int]) -> ImageInfo:
    """``img``'s header saying which channels (of which part) the picture is read from."""
    names = ", ".join(img.info.channels[i] for i in indices)
    parts = img.spec.get_int_attribute("oiio:subimages", 1)
    if parts > 1:
        names = f"part {str(img.spec.getattribute('name') or '') or '#' + str(img.subimage)!r}: {names}"
    # of a stereo file, which eye: a frame whose default view is the other one (a patch written right-eye first, a
    # stereo frame among mono ones) read its R, G, B from the other eye, matted mirrored without a word (QA)
    listed = _listed_views(img.info.metadata.get("multiView") or img.spec.getattribute("multiView"))
    view = str(img.spec.getattribute("view") or "") if parts > 1 else ""
    stereo = len(set(listed)) > 1 or (parts > 1 and len({v for v in _views_of(part_specs(img, parts)) if v}) > 1)
    if stereo:
        names += f" (view {view or listed[0]!r})"
    # the pixel type of the picture's channels, not the file's widest (a half RGB beside a float Z is a half
    # picture: an rgba output keeps its RGB in half)
    kinds = [str(img.spec.channelformat(i)) for i in indices]
    return dataclasses.replace(img.info, picture=names, pixel_type=max(kinds, key=lambda k: _BITS.get(k, 32)))


def plate_info(path: str | os.PathLike[str]) -> ImageInfo:
    """The header of a plate frame as ``read_plate`` reads it (the part holding its RGB), without its pixels:
    InputError naming the file when it is not an image, is deep or has no picture channels."""
    img = open_image(path, "plate")
    try:
        img, indices = _pick_rgb(img, None)
        return _with_picture(img, indices)
    finally:
        img.close()


def plate_views(path: str | os.PathLike[str]) -> list[str]:
    """The views of a stereo (multi-view) EXR frame, the one ``read_plate`` mattes first: those its ``multiView``
    lists (the default view first), else those its parts name (a multi-part stereo file need not list them: then
    the first part's view is matted, QA); [] for a file of one view."""
    img = open_image(path, "plate")
    try:
        return image_views(img)
    finally:
        img.close()


def image_views(img: OpenImage) -> list[str]:
    """``plate_views`` of an open image (a roto's too: its views are read as a plate's)."""
    names = _listed_views(img.info.metadata.get("multiView"))
    if not names:
        parts = subimage_names(img)
        names = _views_of(part_specs(img, len(parts))) if len(parts) > 1 else []
    return list(dict.fromkeys(v for v in names if v)) if len(set(filter(None, names))) > 1 else []


def image_view(img: OpenImage) -> str | None:
    """The view an open image is of: a stereo file's default (``image_views``' first), else the one view a file of
    one view names (OpenEXR's: its header's ``view``, a ``multiView`` of one, its parts' one view); None for a file
    that names none. A right-eye plate so written counted as no view: a stereo roto's left eye was read over it
    (review)."""
    views = image_views(img)
    if views:
        return views[0]
    parts = subimage_names(img)
    named = _listed_views(img.info.metadata.get("multiView")) + \
        (_views_of(part_specs(img, len(parts))) if len(parts) > 1 else [str(img.spec.getattribute("view") or "")])
    one = set(filter(None, named))
    return one.pop() if len(one) == 1 else None


def read_plate(path: str | os.PathLike[str], *, layer: str | None = None) -> Plate:
    """Read one plate frame (EXR, DPX, TIFF, PNG, ...) as scene-linear RGB over its display window.

    RGB is found by channel name: plain R, G, B, else the layer ``layer`` (``beauty`` -> ``beauty.R``, or a
    part of that name), else a usual beauty layer (rgba, beauty, ...); a grey image is replicated.
    Half, float and integer pixels are all returned as float32 (integers normalised to [0, 1]).
    Raises InputError naming the file when it is missing, damaged, or has no such channels.
    """
    img = open_image(path, "plate")
    try:
        img, indices = _pick_rgb(img, layer)
        data = read_channels(img, indices)
        if data.shape[2] == 1:
            data = np.repeat(data, 3, axis=2)
        dead = repair(data)
        rgb = to_display(data, img.info)
        return Plate(rgb=rgb, info=_with_picture(img, indices), data_rgb=data, dead=dead)
    finally:
        img.close()
