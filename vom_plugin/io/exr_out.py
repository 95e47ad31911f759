"""Writing the alpha: half-float EXR with the plate's windows, pixel aspect and metadata, atomically.

Overscan: a render mattes the plate's overscan with the rest of the picture (``info.picture_window``), so the
alpha arrives over that window and the data window is cut from it. Where the data window reaches beyond the
alpha given (arrays over the display window, from the Python API; overscan past ``MAX_OVERSCAN``) each pixel
there takes the value of the nearest pixel it has: zero would cut an object that crosses the edge with a hard
line that lens distortion or a reformat in the comp would pull into view. Where the data window is smaller
than the display window, only the data window is written, like the plate.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from vom_plugin import import_oiio
from vom_plugin.atomic import atomic_path
from vom_plugin.errors import InputError
from vom_plugin.grammar import channel_names, default, parse_value
from vom_plugin.io.info import ImageInfo, Window
from vom_plugin.io.reader import extend
from vom_plugin.nodedef import load_node_def

# The settings' values are the node definition's (the grammar Shot validates with); OIIO takes these names.
COMPRESSIONS = load_node_def().knob("compression").choices
OUTPUTS = load_node_def().knob("output").choices
# Attributes that describe the plate's file, not its picture: the writer sets its own. The capture date (DateTime,
# with its utcOffset) is the picture's, as its time code is: carried, so a matte says when its frame was shot.
_NOT_CARRIED = {
    "compression",
    "PixelAspectRatio",
    "multiView",  # a stereo plate's views: the matte holds its default view's alone
    "Software",
    "name",
    "type",
    "version",
    "chunkCount",
    "tiles",
    "channels",
    "dataWindow",
    "displayWindow",
    "lineOrder",
    # a texture's (maketx): told that it is a MIP-mapped texture, the EXR writer expects levels vom never
    # writes, and every frame came out with chunks missing
    "textureformat",
    "wrapmodes",
    "fovcot",
    "envlayout",
    # an ACES container's promise (ACES channel names, no compression), which OpenImageIO then enforces: every
    # write of an ACES plate's matte was refused (QA); a matte is no ACES container
    "acesImageContainerFlag",
}
# "vom:": what vom says of this file, set again by the writer (a plate that is an earlier vom output said
# vom:output rgba over a matte holding A alone); "cryptomatte/": manifests of channels the matte does not hold
_NOT_CARRIED_PREFIXES = ("oiio:", "openexr:", "exr:", "tiff:", "png:", "dpx:", "jpeg:", "ICCProfile", "Exif:", "vom:",
                         "cryptomatte/")
# What the plate's RGB is: said of a file that carries it (rgba), not of a matte, which has no colour space (an alpha
# file read back as oiio:ColorSpace lin_ap1_scene).
_RGB_ATTRIBUTES = {"colorInteropID", "chromaticities", "adoptedNeutral", "whiteLuminance"}
# a colour interop ID: <encoding>_<primaries>_<scene|display> (lin_ap1_scene, srgb_rec709_scene, acescct_ap1_scene)
_INTEROP_ID = re.compile(r"\A(?:data|[a-z0-9]+_[a-z0-9]+_(?:scene|display))\Z")


def _metadata_value(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (str, int, float)):
        return value
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float, str)) for v in value):
        return ",".join(str(v) for v in value)
    return str(value)


def _metadata_name(key: str) -> str:
    """EXR attribute name of a caller's key: "model" and "vom/model" -> "vom:model"; "shot:name" kept."""
    if ":" in key:
        return key
    if "/" in key:
        namespace, _, rest = key.partition("/")
        return f"{namespace}:{rest}"
    return f"vom:{key}"


def _frame_rate(metadata: dict[str, Any]) -> tuple[int, int] | None:
    """A DPX plate's frame rate (``dpx:FrameRate``, which OpenImageIO gives no ``FramesPerSecond``: the matte lost it,
    QA) as the rational an EXR carries: the NTSC rates as n*1000/1001 (23.976 is 24000/1001), others to 1/1000."""
    from fractions import Fraction

    try:
        rate = float(metadata.get("dpx:FrameRate") or metadata.get("dpx:TemporalFrameRate") or 0)  # film or TV header
    except (TypeError, ValueError):
        return None
    if not 0 < rate < 1000:
        return None
    for base in (24, 30, 48, 60, 120):
        if abs(rate - base * 1000 / 1001) < 0.005:
            return base * 1000, 1001
    f = Fraction(rate).limit_denominator(1000)
    return f.numerator, f.denominator


def _type_desc(name: str) -> Any:
    """The OpenImageIO type ``reader.type_name`` named; a double one as its float kind (OpenImageIO's Python sets no
    double attribute: a double camera matrix, worldToCamera M44d, is carried at float precision, as Nuke writes it)."""
    oiio = import_oiio()

    if "," not in name:
        return oiio.TypeDesc(name)
    base, aggregate, semantics, length = name.split(",")
    return oiio.TypeDesc(oiio.FLOAT if base == "DOUBLE" else getattr(oiio.BASETYPE, base),
                         getattr(oiio.AGGREGATE, aggregate), getattr(oiio.VECSEMANTICS, semantics), int(length))


class RgbColour(NamedTuple):
    """The colour tag of an rgba output's RGB: its ``colorInteropID`` ("" for none) and ``chromaticities`` (None)."""

    interop: str
    chromaticities: tuple[float, ...] | None

    @classmethod
    def of(cls, metadata: dict[str, Any], colorspace: str) -> RgbColour:
        """The tag a plate frame with this header gives the RGB copied from it (``rgb_colour_id``)."""
        xy = metadata.get("chromaticities")
        return cls(rgb_colour_id(metadata, colorspace) or "", tuple(float(v) for v in xy) if xy is not None else None)


# the attributes that say what colour the RGB is (a sequence's, ``RgbColour``); the others are carried per frame
_TAGS = frozenset({"colorInteropID", "chromaticities"})


def rgb_colour_id(metadata: dict[str, Any], colorspace: str) -> str | None:
    """The colorInteropID of the RGB an rgba output copies from a plate frame with this header, read as the
    ``colorspace`` setting: the plate's own; else the colour space its format declares (the RGB of a PNG, TIFF or DPX
    plate is its own encoding, sRGB, log...: said, so that an EXR reader does not take it for linear); else, where the
    plate says nothing (no chromaticities either), the setting's (a 16-bit TIFF read as sRGB wrote its code values
    into an EXR an EXR reader takes for linear, QA). A DPX's declared space is OpenImageIO's reading of its transfer,
    which says nothing of its primaries (a linear DPX read as ACEScg went out as Rec.709, QA), and OpenImageIO's own
    labels (KodakLog) are no colour interop ID, which a reader looks up (oiiotool: "could not be found"): neither
    counts; nor does the setting where the DPX's transfer contradicts it (a linear or log DPX read as sRGB went out
    tagged sRGB, QA): then no tag."""
    from vom_plugin.io.color import INTEROP_IDS, interop_id_of_name, transfer_contradicts

    if metadata.get("colorInteropID"):
        return str(metadata["colorInteropID"])
    if transfer_contradicts(str(metadata.get("dpx:Transfer") or ""), colorspace):
        return None
    declared = str(metadata.get("oiio:ColorSpace") or "").removeprefix("ocio:")
    if "dpx:Transfer" not in metadata and _INTEROP_ID.match(declared):
        return declared
    if "dpx:Transfer" not in metadata and declared.strip():
        # a name vom reads as one of its spaces is that space's ID, whatever the setting (QA: a plate of 'sRGB -
        # Linear' read as ACEScg went out tagged lin_ap1_scene over its Rec.709 values); a name it does not read (P3,
        # a log) is no ID rather than a wrong one; a role (scene_linear) says nothing
        said = interop_id_of_name(declared)
        if said != "":
            return said
    if "chromaticities" in metadata:
        return None
    return INTEROP_IDS.get(colorspace)


def _build_spec(info: ImageInfo, names: list[str], compression: str, metadata: dict[str, Any] | None,
                alpha_index: int | None = None, plate_rgb: int = 0, rgb_colour: RgbColour | None = None) -> Any:
    """``plate_rgb``: the first channels that carry the plate's own RGB. They keep a float plate's precision
    (in half, 1e5 becomes Inf and 16-bit codes lose bits); mattes, and the RGB of a half plate, are half."""
    oiio = import_oiio()

    from vom_plugin import __version__

    dw, disp = info.data_window, info.display_window
    spec = oiio.ImageSpec(dw.width, dw.height, len(names), oiio.HALF)
    if plate_rgb and info.pixel_type != "half":
        spec.channelformats = tuple([oiio.FLOAT] * plate_rgb + [oiio.HALF] * (len(names) - plate_rgb))
    spec.x, spec.y = dw.x, dw.y
    spec.full_x, spec.full_y, spec.full_width, spec.full_height = disp.x, disp.y, disp.width, disp.height
    spec.channelnames = tuple(names)
    spec.alpha_channel = len(names) - 1 if alpha_index is None else alpha_index
    for name, value in info.metadata.items():
        if name in _NOT_CARRIED or name.startswith(_NOT_CARRIED_PREFIXES):
            continue
        if name == "utcOffset" and "DateTime" not in info.metadata:
            continue  # the offset of a capture date the plate lacks
        if name in _RGB_ATTRIBUTES and (not plate_rgb or (rgb_colour is not None and name in _TAGS)):
            continue  # a matte has no colour; a sequence's RGB has its tag, not each frame's (``rgb_colour``)
        if name == "smpte:KeyCode" and not _valid_key_code(value):
            continue  # OpenEXR's readers refuse the whole file over it (OpenImageIO's keep it): the matte goes without
        type_name = info.metadata_types.get(name)
        try:
            if type_name:
                spec.attribute(name, _type_desc(type_name), value)
            if not type_name or spec.getattribute(name) is None:  # an unknown type sets nothing, and says nothing
                spec.attribute(name, _metadata_value(value))
        except Exception:  # an attribute OIIO cannot round-trip is not worth failing a frame for
            continue
    rate = _frame_rate(info.metadata)
    if rate is not None and "FramesPerSecond" not in info.metadata:
        spec.attribute("FramesPerSecond", oiio.TypeRational, rate)
    if plate_rgb and rgb_colour is not None:
        if rgb_colour.interop:
            spec.attribute("colorInteropID", rgb_colour.interop)
        if rgb_colour.chromaticities is not None:
            spec.attribute("chromaticities", oiio.TypeDesc("float[8]"), tuple(rgb_colour.chromaticities))
    elif plate_rgb and "colorInteropID" not in info.metadata:
        said = rgb_colour_id(info.metadata, str((metadata or {}).get("vom/colorspace", "")))
        if said:
            spec.attribute("colorInteropID", said)
    spec.attribute("compression", default("compression") if compression is None else compression)
    spec.attribute("PixelAspectRatio", float(info.pixel_aspect))
    spec.attribute("Software", f"vom {__version__}")
    spec.attribute("vom:version", __version__)
    for key, value in (metadata or {}).items():
        spec.attribute(_metadata_name(key), _metadata_value(value))
    return spec


# OpenEXR's ranges of a KeyCode's fields (ImfKeyCode.h), in OpenImageIO's order of its 7 ints: film manufacturer
# code, film type, prefix, count, perforation offset, perforations per frame, perforations per count
_KEY_CODE_RANGES = ((0, 99), (0, 99), (0, 999999), (0, 9999), (0, 119), (1, 15), (20, 120))


def _valid_key_code(value: Any) -> bool:
    try:
        fields = [int(v) for v in value]
    except (TypeError, ValueError):
        return False
    return len(fields) == 7 and all(lo <= v <= hi for v, (lo, hi) in zip(fields, _KEY_CODE_RANGES, strict=True))


def _prepare_pixels(
    alpha: np.ndarray, info: ImageInfo, output: str, rgb: np.ndarray | None, window: Window | None = None
) -> np.ndarray:
    disp, dw = window or info.display_window, info.data_window
    alpha = np.asarray(alpha, dtype=np.float32)
    if alpha.ndim == 3 and alpha.shape[-1] == 1:
        alpha = alpha[:, :, 0]
    if alpha.shape != (disp.height, disp.width):
        what = "the display window" if window is None else f"the window {tuple(window)}"
        raise ValueError(f"write_alpha: alpha is {alpha.shape}, expected (H, W) = {(disp.height, disp.width)} "
                         f"of {what}")
    # A matte outside [0, 1] or NaN breaks every merge downstream; the network's output should never be,
    # but the file must not carry it if it is.
    alpha = np.clip(np.nan_to_num(alpha, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    alpha = extend(alpha, disp, dw)  # the data window: cut from the alpha's, its edge extended past it
    if output == "alpha":
        return np.ascontiguousarray(alpha[:, :, None])
    if rgb is None:
        raise ValueError(f"write_alpha: output {output!r} needs the plate rgb")
    rgb = np.asarray(rgb, dtype=np.float32)
    # The plate's own data-window pixels keep a real overscan; display-window RGB is edge-extended like alpha.
    if rgb.shape == (dw.height, dw.width, 3):
        data_rgb = rgb
    elif rgb.shape == (disp.height, disp.width, 3):
        data_rgb = extend(rgb, disp, dw)
    else:
        raise ValueError(
            f"write_alpha: rgb is {rgb.shape}, expected the alpha's window {(disp.height, disp.width, 3)} "
            f"or the data window {(dw.height, dw.width, 3)}"
        )
    if output == "rgba-premult":
        # by the alpha as written (half): unpremultiplying in the comp gives the plate back
        alpha = alpha.astype(np.float16).astype(np.float32)
        data_rgb = data_rgb * alpha[:, :, None]
    return np.ascontiguousarray(np.concatenate([data_rgb, alpha[:, :, None]], axis=2))


def ensure_output_folder(out_path: str | os.PathLike) -> Path:
    """Create the folder an output file goes to and check it is writable; returns it. InputError names it.

    The renderer calls it before any frame is computed, and write_alpha again at write time.
    """
    folder = Path(out_path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"output folder {folder} cannot be created: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"output folder {folder} is not writable")
    return folder


def write_alpha(
    path: str | os.PathLike[str],
    alpha: np.ndarray,
    info: ImageInfo,
    *,
    channel: str | None = None,
    compression: str | None = None,
    output: str | None = None,
    rgb: np.ndarray | None = None,
    metadata: dict[str, Any] | None = None,
    extra: dict[str, np.ndarray] | None = None,
    sweep: bool = True,
    window: Window | None = None,
    guard: Callable[[Path], None] | None = None,
    rgb_colour: RgbColour | None = None,
) -> None:
    """Write ``alpha`` (float32 (H, W) over the display window of ``info``, or over ``window``: a render's
    picture, overscan included) as a half-float EXR frame (the plate's RGB of ``rgba`` outputs in float unless
    the plate is half).

    The alpha is written clipped to [0, 1] (NaN -> 0).

    The file gets ``info``'s display and data windows and pixel aspect, the plate's metadata (its picture
    attributes: timecode, frame rate, camera matrices, ...) and vom's own (``vom:version`` plus ``metadata``,
    whose keys without a namespace get ``vom:``; ``vom/x`` is written ``vom:x``).
    ``channel``, ``compression``, ``output``: the node definition's defaults when None.
    ``output``: ``alpha`` (channel ``A`` or ``<layer>.A``), ``rgba`` (plate ``rgb`` + alpha), ``rgba-premult``
    (rgb * alpha + alpha); ``rgb`` is over the alpha's window or, to keep its overscan pixels, the data
    window (``Plate.data_rgb``).
    ``extra``: more channels, {name: (H, W) over the alpha's window, clipped to [0, 1] like the alpha}
    (the semantic mask), written after it.
    Written to a hidden temporary file in the same folder, then renamed: readers never see half a frame.
    ``sweep``: make the folder and remove the file's temporaries left by killed writers first
    (``atomic.atomic_path``); a render, which made and swept its output folders before any frame, passes False:
    a folder removed since is not made again, and the write is an InputError. ``guard(path)``: called as the
    written file is about to take its name; raising keeps what is there (a render asks whether a file put there
    since it began is one it may replace). ``rgb_colour``: the colour tag of the RGB (an rgba output's), a
    render's for every frame of its sequence; None: this frame's own (``rgb_colour_id``).
    Raises InputError naming the folder or file when it cannot be written, or naming a bad setting.
    """
    out_path = Path(path)
    output = parse_value("output", default("output") if output is None else output)
    compression = parse_value("compression", default("compression") if compression is None else compression)
    if out_path.suffix.lower() != ".exr":
        raise InputError(f"output file {out_path} must end in .exr")
    names = channel_names(default("channel") if channel is None else channel, output)
    pixels = _prepare_pixels(alpha, info, output, rgb, window)
    alpha_index = len(names) - 1
    if extra:
        pixels = np.concatenate([pixels] + [_prepare_pixels(v, info, "alpha", None, window) for v in extra.values()],
                                axis=2)
        names = names + list(extra)
    spec = _build_spec(info, names, compression, metadata, alpha_index, plate_rgb=0 if output == "alpha" else 3,
                       rgb_colour=rgb_colour)
    _write(out_path, np.ascontiguousarray(pixels), spec, sweep, guard)


def write_layers(
    path: str | os.PathLike[str],
    layers: dict[str, np.ndarray],
    info: ImageInfo,
    *,
    compression: str | None = None,
    rgb: np.ndarray | None = None,
    metadata: dict[str, Any] | None = None,
    sweep: bool = True,
    window: Window | None = None,
    guard: Callable[[Path], None] | None = None,
    rgb_colour: RgbColour | None = None,
) -> None:
    """Write several mattes into one half-float EXR frame: ``layers`` is {channel: (H, W) over the display
    window, or over ``window``} (``hero.A``, ``hero.mask``, ``dog.A``), each clipped to [0, 1], in that order;
    ``rgb``: the plate's RGB first as R, G, B (unpremultiplied: there is no one alpha to premultiply by).
    Windows, metadata, atomicity, ``sweep``, ``guard`` and ``rgb_colour`` as ``write_alpha``'s."""
    out_path = Path(path)
    compression = parse_value("compression", default("compression") if compression is None else compression)
    if out_path.suffix.lower() != ".exr":
        raise InputError(f"output file {out_path} must end in .exr")
    names = list(layers)
    planes = [_prepare_pixels(v, info, "alpha", None, window) for v in layers.values()]
    if rgb is not None:
        first = next(iter(layers.values()))
        planes.insert(0, _prepare_pixels(first, info, "rgba", rgb, window)[:, :, :3])
        names = ["R", "G", "B", *names]
    pixels = np.ascontiguousarray(np.concatenate(planes, axis=2))
    _write(out_path, pixels, _build_spec(info, names, compression, metadata, -1, plate_rgb=3 if rgb is not None else 0,
                                         rgb_colour=rgb_colour), sweep, guard)


def write_exr(path: str | os.PathLike, pixels: np.ndarray, channels: tuple[str, ...], *,
              compression: str | None = None) -> Path:
    """A plain half-float EXR of ``pixels`` ([H, W] or [H, W, C], C = len(channels)) at the origin, written as
    renders are (temporary file, fsync, rename). For the files vom makes itself (validation shots, benchmark
    plates); a render's output goes through ``write_alpha`` / ``write_layers``, which keep the plate's windows."""
    oiio = import_oiio()

    px = np.asarray(pixels, np.float32)
    h, w = px.shape[:2]
    px = px.reshape(h, w, -1)
    if px.shape[2] != len(channels):
        raise ValueError(f"write_exr {path}: {px.shape[2]} channel(s) of pixels, {len(channels)} name(s)")
    spec = oiio.ImageSpec(w, h, len(channels), oiio.HALF)
    spec.channelnames = tuple(channels)
    spec.attribute("compression", default("compression") if compression is None else compression)
    out = Path(path)
    _write(out, np.ascontiguousarray(px), spec, sweep=True)
    return out


def _write(out_path: Path, pixels: np.ndarray, spec: Any, sweep: bool,
           guard: Callable[[Path], None] | None = None) -> None:
    oiio = import_oiio()

    # a render made its folders before any frame: one gone since is not made again here (it ended "done" over part of
    # a sequence, QA); the write fails, and the render says the folder went (runner's _check_folder)
    folder = ensure_output_folder(out_path) if sweep else out_path.parent
    if spec.getattribute("DateTime") is None:
        # OpenImageIO dates an undated file with the time it is written: the matte of an undated plate claimed a
        # capture date, and two renders of the same pixels differed in bytes (QA). An empty date writes none.
        spec.attribute("DateTime", "")
    try:
        with atomic_path(out_path, sweep=sweep) as temp:  # fsynced, then renamed: readers never see half a frame
            writer = oiio.ImageOutput.create(str(temp))
            if writer is None:
                raise InputError(f"output file {out_path}: no EXR writer: {oiio.geterror()}")
            if not writer.open(str(temp), spec):
                message = writer.geterror() or oiio.geterror()
                raise InputError(f"output folder {folder} cannot be written ({out_path.name}): {message}")
            ok = writer.write_image(pixels)
            message = writer.geterror()
            closed = writer.close()
            if not ok or not closed:
                raise InputError(f"output file {out_path} could not be written: {message or oiio.geterror()}"
                                 f"{_space_note(folder, pixels.nbytes, temp)}")
            _check_reads_back(temp, out_path)
            if guard is not None:
                guard(out_path)
    except OSError as exc:
        raise InputError(f"output file {out_path} could not be written: {exc.strerror or exc}") from None


def _space_note(folder: Path, needed: int, temp: Path | None = None) -> str:
    """What a failed write's message adds when the disk it went to has less room than the frame's pixels: the
    EXR writer's own error ("Failed to write pixel data") does not say the disk is full. With room, the system's
    reason for refusing a file as far as the writer got (``temp``, the failed write's file), if it refuses one."""
    import shutil

    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return ""
    if free >= needed:
        try:
            reached = temp.stat().st_size if temp is not None else 0
        except OSError:
            reached = 0
        refused = _refused_write(folder, reached + (1 << 20))
        return f"; the file system refuses a file of that size there ({refused})" if refused else ""
    # the pixels' size in memory bounds the file's, which compression makes smaller: said as such (QA: "the frame's
    # 0.518 MB" of a frame that takes 0.09 MB on disk)
    return (f"; the disk holding {folder} has {free / 1e6:.3g} MB free, and the frame's pixels are up to "
            f"{needed / 1e6:.3g} MB before compression: full?")


PROBE_MAX = 64 << 20  # a frame's file, compressed, is far under this; more would only fill a shared disk


def _refused_write(folder: Path, needed: int) -> str:
    """Why ``needed`` bytes (at most PROBE_MAX) cannot be written in ``folder`` as the system says it ("Disk quota
    exceeded", "File too large"), "" where they can: after a failed frame only, whose writer dropped the reason (a
    quota with the disk far from full, a process's file size limit: QA). The probe is named as a killed EXR writer's
    temporary (its first bytes an EXR's), which the next render's sweep removes if a kill leaves it."""
    from vom_plugin.atomic import _EXR_MAGIC, temp_name

    probe = temp_name(folder / "vom-space-probe.exr")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        return e.strerror or str(e)
    try:
        try:
            left = min(needed, PROBE_MAX)
            block = _EXR_MAGIC + b"\0" * ((1 << 20) - len(_EXR_MAGIC))
            while left > 0:
                left -= os.write(fd, block[:left])
            os.fsync(fd)
        except OSError as e:
            return e.strerror or str(e)
        finally:
            with contextlib.suppress(OSError):  # a network file system says a quota at close: the write's said it
                os.close(fd)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)
    return ""


def _check_reads_back(temp: Path, out_path: Path) -> None:
    """Every pixel of the file just written decodes, before it takes the frame's name.

    OpenImageIO's EXR writer reports success for a file whose last bytes never reached the disk: when the disk
    or a quota fills while the file is flushed on close, the file is cut short and the error is lost. Renamed,
    that file would replace a good frame. Reading back costs about a quarter of the write, on the output
    thread."""
    oiio = import_oiio()

    problem = None
    inp = oiio.ImageInput.open(str(temp))
    if inp is None:
        problem = oiio.geterror() or "it does not open"
    else:
        try:
            if inp.read_image(oiio.UNKNOWN) is None or inp.has_error:
                problem = inp.geterror() or "its pixels do not read"
        finally:
            inp.close()
    if problem:
        if not temp.parent.is_dir():  # the output folder removed or replaced while the render ran
            why = f"its folder {temp.parent} is no longer there."
        elif not temp.is_file():
            why = "the file written is gone: did another program remove it?"
        else:
            refused = _refused_write(temp.parent, temp.stat().st_size + (1 << 20))
            why = f"the file system refuses it ({refused})." if refused else "is its disk full or over quota?"
        raise InputError(f"output file {out_path} could not be written completely (the file written does not read "
                         f"back: {problem}); {why} The file there before, if any, is unchanged")
