"""Reading images through OpenImageIO: header to ImageInfo, channels by name, data window to display window.

Shared by the plate and roto readers. Every failure becomes an InputError that names the file, because a
compositor's first question is always "which frame?".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vom_plugin import import_oiio
from vom_plugin.errors import InputError
from vom_plugin.io.info import ImageInfo, Window
from vom_plugin.io.sequence import missing_file

oiio = import_oiio()

# The largest window read: 16K x 16K (a 16K plate is 15360x8640). Reading allocates float32 per pixel.
MAX_PIXELS = 16384 * 16384
# Layers tried, in order, when the caller names none and the file has no plain R, G, B.
DEFAULT_LAYERS = ("rgba", "rgb", "beauty", "Beauty", "combined", "Combined")
RGB_NAMES = (("r", "red"), ("g", "green"), ("b", "blue"))


@dataclass
class OpenImage:
    """An open image: the OIIO input positioned on a subimage, its header, and what the caller called it."""

    input: Any  # oiio.ImageInput
    spec: Any  # oiio.ImageSpec
    info: ImageInfo
    subimage: int
    role: str  # "plate", "roto": used in messages

    @property
    def path(self) -> Path:
        assert self.info.path is not None
        return self.info.path

    def close(self) -> None:
        self.input.close()

    def __enter__(self) -> OpenImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _oiio_error(source: Any = None) -> str:
    message = ""
    if source is not None:
        message = source.geterror()
    message = message or oiio.geterror()
    return " ".join(message.split()) or "unknown OpenImageIO error"


# OpenImageIO's names of 32-bit integer channel formats (EXR's UINT): numbers (IDs, counts), never a picture or a
# shape; read as float they are divided by 2^32 - 1
INT32_FORMATS = ("uint", "int", "uint32", "int32")


def type_name(t: Any) -> str:
    """An attribute's OpenImageIO type as a name ``exr_out`` builds it back from: OpenImageIO's own where it reads
    back ("float[8]", "matrix"), else its parts ("DOUBLE,MATRIX44,NOXFORM,0"): "matrixd", "vector2i" and a box's
    "vector2i[2]" read back as an unknown type, and a double camera matrix was dropped from every output (QA)."""
    oiio = import_oiio()

    name = str(t)
    if oiio.TypeDesc(name) == t:
        return name
    return f"{t.basetype.name},{t.aggregate.name},{t.vecsemantics.name},{t.arraylen}"


def info_from_spec(spec: Any, path: Path | None, file_format: str = "") -> ImageInfo:
    metadata: dict[str, Any] = {}
    types: dict[str, str] = {}
    for attrib in spec.extra_attribs:
        metadata[attrib.name] = attrib.value
        types[attrib.name] = type_name(attrib.type)
    # a pixel aspect is the picture's where the format stores one (EXR, DPX); OpenImageIO derives one for PNG, JPEG
    # and TIFF from their print resolution (dots per inch), which says nothing of the picture (review: 300 x 150 dpi
    # read 2.0 from a JPEG, 0.49996 from a PNG, and the plate would be stretched for the network)
    aspect = spec.getattribute("PixelAspectRatio") if file_format in ("openexr", "dpx", "") else None
    return ImageInfo(
        display_window=Window(spec.full_x, spec.full_y, spec.full_width, spec.full_height),
        data_window=Window(spec.x, spec.y, spec.width, spec.height),
        pixel_aspect=float(aspect) if aspect else 1.0,
        channels=tuple(spec.channelnames),
        metadata=metadata,
        metadata_types=types,
        pixel_type=str(spec.format),
        path=path,
        file_format=file_format,
    )


# The file's own values: OpenImageIO premultiplies a straight-alpha PNG (or TIFF) by its alpha as it reads, so a plate
# with a soft alpha was seen darkened by the network and its "own" RGB came out premultiplied in rgba outputs.
_UNASSOCIATED = oiio.ImageSpec()
_UNASSOCIATED.attribute("oiio:UnassociatedAlpha", 1)


def open_image(path: str | os.PathLike[str], role: str, subimage: int = 0) -> OpenImage:
    """Open an image's header. InputError when it is missing, unreadable, or not an image OIIO knows."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{role} {p} {missing_file(p)}")
    if not p.is_file():
        raise InputError(f"{role} {p} is not a file")
    inp = oiio.ImageInput.open(str(p), _UNASSOCIATED)
    if inp is None:
        why = _oiio_error()
        if "ubsampled" in why:  # an EXR channel at less than full size: OIIO reads none
            raise InputError(_subsampled(role, p, why))
        if p.stat().st_size == 0:  # said as such, not as the format library's read error (QA)
            raise InputError(f"{role} {p} is empty (0 bytes: a failed copy or render?)")
        raise InputError(f"{role} {p} cannot be read as an image: {why}")
    if subimage and not inp.seek_subimage(subimage, 0):
        inp.close()
        raise InputError(f"{role} {p} has no part {subimage}")
    spec = inp.spec()
    check_spec(inp, spec, role, p)
    return OpenImage(inp, spec, info_from_spec(spec, p, str(inp.format_name())), subimage, role)


def _subsampled(role: str, p: Path, why: str) -> str:
    """The refusal of an EXR with subsampled channels, naming them as OpenImageIO's error does: OpenEXR's
    luminance/chroma form (Y full size, RY and BY at half) as such, other channels as they are (an RGB EXR with B
    alone subsampled was called luminance/chroma, QA)."""
    sampled = dict(re.findall(r'channel "([^"]+)" has sampling (\d+\s*,\s*\d+)', why))
    if not sampled or {"RY", "BY"} & set(sampled):
        return (f"{role} {p} is a luminance/chroma EXR with subsampled chroma (Y, RY, BY), which vom cannot read; "
                f"write the plate as R, G, B (Nuke reads this file and writes RGB)")
    listed = ", ".join(f"{c} at {'x'.join(s.replace(' ', '').split(','))}" for c, s in sampled.items())
    return (f"{role} {p} has subsampled channels ({listed}), which vom cannot read; write it with every channel at "
            f"full size (Nuke reads this file and writes it so)")


def check_spec(inp: Any, spec: Any, role: str, p: Path) -> None:
    """InputError (the input closed) for a header vom must not read pixels by: deep, empty or huge windows."""
    if spec.deep:  # samples per pixel, not a picture: read flat it would be scrambled
        inp.close()
        raise InputError(f"{role} {p} is a deep image (several samples per pixel); flatten it first "
                         f"(oiiotool {p.name} --flatten -o flat.exr)")
    if spec.width <= 0 or spec.height <= 0 or spec.full_width <= 0 or spec.full_height <= 0:
        inp.close()
        raise InputError(f"{role} {p} has an empty data or display window")
    for which, w, h in (("data", spec.width, spec.height), ("display", spec.full_width, spec.full_height)):
        if w * h > MAX_PIXELS:  # a header of a few bytes must not make us allocate terabytes
            inp.close()
            raise InputError(f"{role} {p}: {which} window {w}x{h} ({w * h} pixels); vom reads images of at most "
                             f"{MAX_PIXELS} pixels (16384x16384)")


def read_info(path: str | os.PathLike[str]) -> ImageInfo:
    """The header of an image (windows, pixel aspect, channels, metadata) without reading its pixels."""
    with open_image(path, "image") as img:
        return img.info


def subimage_names(img: OpenImage) -> list[str]:
    """Names of the parts of a multi-part file ("" for unnamed parts); leaves the input on its subimage."""
    if img.spec.get_int_attribute("oiio:subimages", 0) == 1 or not img.input.supports("multiimage"):
        # what EXR headers say, or a format of one image: no seeking (a WebP reader sought to subimage 1 and back
        # could no longer decode subimage 0, QA)
        return [str(img.spec.getattribute("name") or "")]
    names = []
    index = 0
    while img.input.seek_subimage(index, 0):
        names.append(str(img.input.spec().getattribute("name") or ""))
        index += 1
    img.input.geterror()  # the failed seek past the last part is not an error of the file's (TIFF keeps it)
    img.input.seek_subimage(img.subimage, 0)
    return names


def part_specs(img: OpenImage, count: int) -> list[Any]:
    """The headers of a multi-part file's first ``count`` parts, read through ``img``'s own input (no file opened
    again per part); the input is left on its subimage. Fewer where a part cannot be read."""
    specs = []
    for index in range(count):
        if img.input.seek_subimage(index, 0):
            specs.append(img.input.spec())
    img.input.seek_subimage(img.subimage, 0)
    return specs


def on_part(img: OpenImage, index: int) -> OpenImage:
    """``img`` moved onto part ``index`` (itself when it is there already), with open_image's checks of its header."""
    if index == img.subimage:
        return img
    img.input.seek_subimage(index, 0)
    spec = img.input.spec()
    check_spec(img.input, spec, img.role, img.path)
    return OpenImage(img.input, spec, info_from_spec(spec, img.path, str(img.input.format_name())), index, img.role)


def find_rgb(channels: tuple[str, ...], layer: str | None) -> list[int] | None:
    """Indices of the R, G, B channels of ``layer`` ("" or None: the plain R, G, B), by name, else None."""
    prefix = f"{layer}." if layer else ""
    lowered = [c.lower() for c in channels]
    indices = []
    for aliases in RGB_NAMES:
        found = next((i for i, c in enumerate(lowered) for a in aliases if c == (prefix + a).lower()), None)
        if found is None:
            return None
        indices.append(found)
    return indices


def layers_of(channels: tuple[str, ...]) -> list[str]:
    """Layer names present in channel names ("beauty.R" -> "beauty"); the plain channels are layer ""."""
    seen: list[str] = []
    for c in channels:
        layer = c.rsplit(".", 1)[0] if "." in c else ""
        if layer not in seen:
            seen.append(layer)
    return seen


def read_channels(img: OpenImage, indices: list[int]) -> np.ndarray:
    """The data window of the chosen channels as float32 (h, w, len(indices)); ints normalised to [0, 1].

    Reads only the contiguous channel span that covers them, so a 40-AOV EXR costs little more than RGB.
    """
    begin, end = min(indices), max(indices) + 1
    pixels = img.input.read_image(img.subimage, 0, begin, end, oiio.FLOAT)
    if pixels is None or img.input.has_error:
        raise InputError(f"{img.role} {img.path} is damaged or truncated: {_oiio_error(img.input)}")
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[:2] != (img.spec.height, img.spec.width):
        raise InputError(f"{img.role} {img.path} returned pixels of shape {pixels.shape}, not its data window")
    picked = [i - begin for i in indices]
    if picked == list(range(pixels.shape[2])):
        return pixels
    return np.ascontiguousarray(pixels[:, :, picked])


def to_display(data: np.ndarray, info: ImageInfo, fill: float = 0.0) -> np.ndarray:
    """Place a data-window array into the display window: crop what lies outside, fill what is missing."""
    return place(data, info.data_window, info.display_window, fill)


def place(data: np.ndarray, data_window: Window, window: Window, fill: float = 0.0) -> np.ndarray:
    """An array over ``data_window`` placed into ``window`` (both in image space): cropped where it lies
    outside, ``fill`` where it has no pixels; ``data`` itself when the windows are the same."""
    dw, win = data_window, window
    if win == dw:
        return data
    out = np.full((win.height, win.width) + data.shape[2:], fill, dtype=data.dtype)
    x0, y0 = max(win.x, dw.x), max(win.y, dw.y)
    x1, y1 = min(win.x_end, dw.x_end), min(win.y_end, dw.y_end)
    if x1 > x0 and y1 > y0:
        out[y0 - win.y : y1 - win.y, x0 - win.x : x1 - win.x] = data[y0 - dw.y : y1 - dw.y, x0 - dw.x : x1 - dw.x]
    return out


def extend(data: np.ndarray, data_window: Window, window: Window) -> np.ndarray:
    """An array over ``data_window`` brought to ``window`` (both in image space): cropped where it lies outside,
    its edge extended outwards where ``window`` reaches past it (each pixel there takes the nearest one's value);
    ``data`` itself when the windows are the same."""
    dw = data_window
    if window == dw:
        return data
    left, top = max(0, dw.x - window.x), max(0, dw.y - window.y)
    right, bottom = max(0, window.x_end - dw.x_end), max(0, window.y_end - dw.y_end)
    if left or top or right or bottom:
        data = np.pad(data, [(top, bottom), (left, right)] + [(0, 0)] * (data.ndim - 2), mode="edge")
    x0, y0 = window.x - (dw.x - left), window.y - (dw.y - top)
    return data[y0 : y0 + window.height, x0 : x0 + window.width]


# How a plate's pixels become what the network sees, where the file alone does not say (2: NaN/Inf take their
# neighbours' mean; 1: they were 0): part of the cache's addresses, so no entry made from the old reading is reused.
PLATE_READING = 2


def sanitize(pixels: np.ndarray, rounds: int = 4) -> np.ndarray:
    """NaN and +/-Inf (a renderer's or denoiser's dead pixels) replaced in place by the mean of their finite 3x3
    neighbours, channel by channel; a cluster wider than 2 x ``rounds`` pixels keeps 0 at its heart. Set to 0
    alone, a dead pixel was a black dot that the network took for an edge (a speck of alpha 0.05-0.1)."""
    repair(pixels, rounds)
    return pixels


def repair(pixels: np.ndarray, rounds: int = 4) -> int:
    """``sanitize`` that says how many pixels it repaired (one with any channel NaN or Inf counts once)."""
    bad = ~np.isfinite(pixels)
    if not bad.any():
        return 0
    pixels[bad] = 0.0
    if pixels.ndim != 3:
        return int(np.count_nonzero(bad))
    dead_px = bad.any(axis=2)
    # only the window around the dead pixels (a 4K frame with one NaN: not nine full-frame sums per round)
    ys, xs = np.nonzero(dead_px)
    dead = len(ys)
    y0, y1 = max(int(ys.min()) - rounds - 1, 0), int(ys.max()) + rounds + 2
    x0, x1 = max(int(xs.min()) - rounds - 1, 0), int(xs.max()) + rounds + 2
    win, wbad = pixels[y0:y1, x0:x1], bad[y0:y1, x0:x1]
    known = (~wbad).astype(np.float32)
    for _ in range(rounds):
        sums, counts = _box3(win * known), _box3(known)
        fill = wbad & (counts > 0)
        if not fill.any():
            break
        win[fill] = sums[fill] / counts[fill]
        known[fill] = 1.0
        wbad &= ~fill
    return dead


def _box3(x: np.ndarray) -> np.ndarray:
    """Sums over each pixel's 3x3 neighbourhood of an (H, W, C) array (outside the image: 0)."""
    p = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    h, w = x.shape[:2]
    out = np.zeros_like(x)
    for i in range(3):
        for j in range(3):
            out += p[i:i + h, j:j + w]
    return out
