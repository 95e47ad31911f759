"""Colour: scene-linear plate RGB -> the display-referred [0, 1] RGB the network eats.

The transform, for the linear input spaces (``ACEScg``, ``lin_rec709``, ``ACES2065-1``):

1. NaN / +-Inf -> 0 (renders and denoisers leave them).
2. OCIO: input space -> ``lin_rec709`` (Linear Rec.709 (sRGB)), the gamut the network was trained in.
   Negative values (out-of-gamut colours after the matrix) are clamped to 0. Then the shot's exposure gain
   (``exposure_gain``, one number for the whole shot, from its first keyframe's frame): the network sees every
   shot at one exposure.
3. Highlights compressed smoothly: values up to ``KNEE`` (0.8) are untouched, above it, with
   ``t = (x - KNEE) / (1 - KNEE)``, ``KNEE + (1 - KNEE) * t / (1 + t)`` (a Reinhard shoulder): continuous,
   slope 1 at the knee, and approaching 1 slowly enough that a specular of 50 still reads brighter than
   one of 2 instead of both clipping to the same white (2 -> 0.971, 8 -> 0.995, 50 -> 0.9992 linear).
4. OCIO: ``lin_rec709`` -> ``srgb_tx`` (sRGB Encoded Rec.709), the display encoding of the network's
   training images.

``sRGB`` plates are display-referred: cleaned (step 1) and clipped to [0, 1], and taken as they are unless the shot is
darker than the network's exposure: then they are decoded to linear Rec.709 (OCIO's ``srgb_tx``, looked up in a
table as steps 3-4 are), brought up by the shot's gain and encoded as the linear spaces are (``exposure_gain``: lifting
only; just above a gain of 1 the shoulder of step 3 takes the brightest code values a little down, 1.0 to 0.955, which
at a gain of 1 stay as they are). Chosen on 16 validation shots as 8-bit sRGB (model card, session 47): brought up,
the very dark ones were matted nearly as well as the linear shots (at 5% of their exposure 15.41 against 20.78 as they
were; linear 15.20); brought down, as linear plates are, the bright ones worse (their clipped highlights turned grey:
21.06 against 20.74).
``raw`` means "no colour management": only cleaned and clipped to [0, 1], never re-exposed. The config is OCIO's
built-in CG config, so nothing is read from disk or the environment ($OCIO is deliberately ignored: the network's
input must not change per site).

This is for the network input only: the plate RGB written in an ``rgba`` output is never compressed.
Steps 3-4 are ``linear_to_network``, which the training generator calls on its linear Rec.709 composites
so that training and inference images go through the same transform; ``train.data.encode_clip`` first brings each
training clip to the render's exposure (``exposure_gain`` of its first frame), as ``frames_to_network`` does for the
benchmark and validation.

Speed (a 1080p frame per rendered frame on 2 CPU cores): OCIO is asked once per process for each
transform, then the work is numpy. Step 2 is linear, so OCIO's result on the three unit vectors is its
3x3 matrix (checked on random colours; a non-linear transform would be applied through OCIO itself).
Steps 3-4 are a function of one channel value, so they are tabulated once per process over every float32
rounded to 11 mantissa bits (2^20 entries, each computed by ``compress_highlights`` and OCIO's sRGB
encoding) and looked up by bit pattern: the precision of a half float (relative error <= 2^-12, far below
what the network resolves) without half's overflow at 65504.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np

from vom_plugin.errors import InputError
from vom_plugin.grammar import default, parse_value

CONFIG_URI = "ocio://cg-config-latest"
# vom's setting -> the colour space in the built-in config (None: ``sRGB``, whose encoding ``_source`` names for a dark
# plate's decoding, and ``raw``, taken as it is).
COLORSPACES: dict[str, str | None] = {
    "ACEScg": "ACEScg",
    "lin_rec709": "lin_rec709",
    "sRGB": None,
    "raw": None,
    "ACES2065-1": "ACES2065-1",
}
SCENE_LINEAR = tuple(k for k, v in COLORSPACES.items() if v)  # the scene-linear settings: gamut-converted, rolled off
DISPLAY_ENCODED = "sRGB"  # a dark one decoded to linear and brought up (``exposure_gain``); ``raw`` never
NETWORK_LINEAR = "lin_rec709"
NETWORK_ENCODED = "srgb_tx"
KNEE = 0.8


@functools.cache
def _config() -> Any:
    import PyOpenColorIO as ocio

    try:
        return ocio.Config.CreateFromFile(CONFIG_URI)
    except Exception:  # an OCIO older than the "latest" alias: its default built-in is the CG config
        return ocio.Config.CreateFromFile("ocio://default")


@functools.cache
def _processor(source: str, target: str) -> Any:
    return _config().getProcessor(source, target).getDefaultCPUProcessor()


def _apply(processor: Any, rgb: np.ndarray) -> np.ndarray:
    """Apply an OCIO CPU processor in place to a float32 C-contiguous (..., 3) array."""
    processor.applyRGB(rgb.reshape(-1, 3))
    return rgb


@functools.cache
def _gamut_matrix(source: str, target: str) -> np.ndarray | None:
    """The 3x3 matrix M (out = M @ rgb) of a linear OCIO conversion, or None when it is not a matrix."""
    processor = _processor(source, target)
    basis = np.eye(3, dtype=np.float32)
    _apply(processor, basis)
    matrix = basis.T.astype(np.float64)  # row i of the result is M @ e_i, i.e. column i of M
    probe = np.random.default_rng(0).random((16, 3)).astype(np.float32) * 4 - 1
    expected = probe @ matrix.T
    _apply(processor, probe)
    if not np.allclose(probe, expected, rtol=1e-4, atol=1e-5):
        return None
    return matrix.astype(np.float32)


# The curve table is indexed by the top 20 bits of a float32 (sign, exponent, 11 mantissa bits), rounded:
# the precision of a half float without its range limits.
_DROP_BITS = 12
_ROUND = np.uint32(1 << (_DROP_BITS - 1))


@functools.cache
def _curve_table() -> np.ndarray:
    """Network value for every float32 rounded to 11 mantissa bits: compression, then OCIO's sRGB encoding.

    Only the positive half is computed (every negative pattern compresses to 0), and OCIO encodes three table
    entries per pixel (the encoding is per channel): the same table as one entry per pixel, built much faster
    (a cost every `vom render` process pays)."""
    half = 1 << (31 - _DROP_BITS)  # the patterns with the sign bit clear
    patterns = np.arange(half, dtype=np.uint32) << np.uint32(_DROP_BITS)
    with np.errstate(invalid="ignore"):
        values = patterns.view(np.float32).astype(np.float64)
    # Inputs are cleaned of NaN/Inf first, so the Inf pattern is only reached by rounding a huge value up.
    values = np.nan_to_num(values, nan=0.0, posinf=np.finfo(np.float32).max, neginf=0.0)
    flat = np.zeros(-(-(half + 1) // 3) * 3, np.float32)  # entry ``half``: the negatives' value, from 0
    flat[:half] = compress_highlights(values)
    _apply(_processor(NETWORK_LINEAR, NETWORK_ENCODED), flat.reshape(-1, 3))
    table = np.empty(2 * half, np.float32)
    table[:half] = flat[:half]
    table[half:] = flat[half]
    return np.clip(table, 0.0, 1.0)


@functools.cache
def _decode_table() -> np.ndarray:
    """Linear Rec.709 value of every float32 in [0, 1] rounded to 11 mantissa bits, read as sRGB-encoded (OCIO's
    ``srgb_tx`` -> ``lin_rec709``); indexed as ``_curve_table`` is. Patterns above 1 take 1's value and the
    negatives 0's (inputs are clipped to [0, 1] first)."""
    one = int(np.float32(1.0).view(np.uint32) >> np.uint32(_DROP_BITS))
    patterns = np.arange(one + 1, dtype=np.uint32) << np.uint32(_DROP_BITS)
    flat = np.zeros(-(-(one + 1) // 3) * 3, np.float32)
    flat[: one + 1] = patterns.view(np.float32)
    _apply(_processor(NETWORK_ENCODED, NETWORK_LINEAR), flat.reshape(-1, 3))
    table = np.empty(1 << (32 - _DROP_BITS), np.float32)
    table[: one + 1] = np.maximum(flat[: one + 1], 0.0)
    table[one + 1 :] = table[one]
    table[1 << (31 - _DROP_BITS) :] = 0.0
    return table


def _decode_display(rgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded RGB (..., 3) float32, finite -> linear Rec.709 (new array), through ``_decode_table``."""
    return _lookup(_decode_table(), np.clip(rgb, 0.0, 1.0))


def _as_rgb(rgb: np.ndarray, what: str) -> np.ndarray:
    arr = np.array(rgb, dtype=np.float32, order="C", copy=True)
    if arr.ndim < 1 or arr.shape[-1] != 3:
        raise ValueError(f"{what}: expected an array of shape (..., 3), got {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        arr[bad] = 0.0
    return arr


def compress_highlights(rgb: np.ndarray, knee: float = KNEE) -> np.ndarray:
    """Negative -> 0; identity up to ``knee``; above it a shoulder that approaches 1 (see module doc). In place."""
    np.maximum(rgb, 0.0, out=rgb)
    # Branch-free: t is 0 below the knee, where the shoulder term vanishes and min() keeps the value.
    span = 1.0 - knee
    t = np.maximum(rgb - knee, 0.0) / span
    np.minimum(rgb, knee, out=rgb)
    rgb += span * (t / (1.0 + t))
    return rgb


def _lookup(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``table``'s entry for each float32 of ``values`` rounded to 11 mantissa bits (``_curve_table``'s indexing)."""
    # No contiguous copy: the einsum result is laid out plane by plane, and element-wise work does not care.
    bits = np.asarray(values, dtype=np.float32).view(np.uint32)
    index = bits + _ROUND  # wraps only for NaN patterns, which were cleaned before
    index >>= np.uint32(_DROP_BITS)
    return np.take(table, index)


def _encode(rgb_lin_rec709: np.ndarray) -> np.ndarray:
    """Steps 3-4 through the half-domain table: (..., 3) float32 -> float32 in [0, 1]."""
    return _lookup(_curve_table(), rgb_lin_rec709)


def linear_to_network(rgb_lin_rec709: np.ndarray) -> np.ndarray:
    """Linear Rec.709 RGB (..., 3) -> network input (..., 3) float32 in [0, 1]: compress, then sRGB-encode.

    No inverse transform is involved, so the training generator can call it on any linear composite.
    """
    return _encode(_as_rgb(rgb_lin_rec709, "linear_to_network"))


def check_colorspace(colorspace: str) -> str:
    """The setting itself when vom knows it (the node definition's choices), else InputError listing them."""
    return parse_value("colorspace", colorspace)


def _to_network_linear(rgb: np.ndarray, source: str) -> np.ndarray:
    """Gamut conversion ``source`` -> lin_rec709 of a float32 (..., 3) array (may return a new array); an sRGB
    picture's ``source`` (``NETWORK_ENCODED``) is decoded."""
    if source == NETWORK_ENCODED:
        return _decode_display(rgb)
    if source == NETWORK_LINEAR:
        return rgb
    matrix = _gamut_matrix(source, NETWORK_LINEAR)
    if matrix is None:
        return _apply(_processor(source, NETWORK_LINEAR), rgb)
    # einsum with optimize=True: faster than `rgb @ matrix.T` on (N, 3) arrays.
    flat = np.einsum("nc,kc->nk", rgb.reshape(-1, 3), matrix, optimize=True)
    return flat.reshape(rgb.shape)


def _source(colorspace: str | None) -> str | None:
    """The OCIO space a plate in ``colorspace`` is converted from to linear Rec.709 (sRGB: its encoding, decoded), or
    None for ``raw``, which is taken as it is."""
    setting = check_colorspace(default("colorspace") if colorspace is None else colorspace)
    return NETWORK_ENCODED if setting == DISPLAY_ENCODED else COLORSPACES[setting]


def to_network(rgb_linear: np.ndarray, colorspace: str | None = None, *, gain: float = 1.0) -> np.ndarray:
    """Plate RGB (H, W, 3) in ``colorspace`` -> float32 (H, W, 3) display-referred in [0, 1] for the network.

    See the module documentation for the exact transform; ``gain`` (``exposure_gain``) scales the linear Rec.709
    values first (``raw`` ignores it; an ``sRGB`` plate is taken as it is at a gain of 1 or less: ``exposure_gain``
    gives it no less than 1). The input array is not modified.
    """
    source = _source(colorspace)
    rgb = _as_rgb(rgb_linear, "to_network")
    if source is None or (source == NETWORK_ENCODED and gain <= 1.0):
        return np.clip(rgb, 0.0, 1.0, out=rgb)
    lin = _to_network_linear(rgb, source)
    if gain != 1.0:
        lin *= np.float32(gain)
    return _encode(lin)


# The network sees every shot at one exposure: the plate scaled so that the 99th percentile of the luminance of one
# frame (the render's: its first keyframe) is EXPOSURE_P99. Chosen on 16 validation shots in session 36 (library
# clips of seeds 7,000,000-7,000,015; model card, "Session 36"): at 3% of their exposure they were matted far worse
# (22.75 against 17.10), and at their own a little worse than at 0.1-0.35 (0.2: 16.15, the best).
EXPOSURE_P99 = 0.2
# A black frame is brought up 64x at most (a render warns); a bright plate is brought down as far as it takes (a CG
# plate in absolute units, p99 in the thousands: 1/64 left it blown out and matted empty, exit 0: QA)
EXPOSURE_GAIN_RANGE = (2.0 ** -20, 64.0)
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # Rec.709


def exposure_gain(rgb_linear: np.ndarray, colorspace: str | None = None) -> float:
    """The gain ``to_network`` takes for a shot whose frame ``rgb_linear`` (H, W, 3) in ``colorspace`` is: the 99th
    percentile of its luminance in linear Rec.709 (every other pixel and row; an sRGB frame decoded) brought to
    EXPOSURE_P99; for an sRGB frame never below 1 (brought up only: see the module documentation); 1 for ``raw``,
    which is not re-exposed."""
    source = _source(colorspace)
    if source is None:
        return 1.0
    rgb = _as_rgb(np.asarray(rgb_linear)[::2, ::2], "exposure_gain")
    lum = np.maximum(_to_network_linear(rgb, source), 0.0) @ _LUMA
    p99 = float(np.percentile(lum, 99)) if lum.size else 0.0
    lo, hi = EXPOSURE_GAIN_RANGE
    if source == NETWORK_ENCODED:
        lo = 1.0
    return float(np.clip(EXPOSURE_P99 / p99, lo, hi)) if p99 > 0 else hi


def frames_to_network(frames: Any, colorspace: str | None = None) -> np.ndarray:
    """A shot's frames (T, H, W, 3) in ``colorspace``, the first being its first keyframe's, as a render gives them
    to the network: at one exposure (``exposure_gain`` of that frame), float32 (T, H, W, 3). What the benchmark and
    training's validation feed the pass runner with."""
    gain = exposure_gain(frames[0], colorspace)
    return np.stack([to_network(f, colorspace, gain=gain) for f in frames]).astype(np.float32, copy=False)


# The names a header gives its colour space (OpenImageIO's oiio:ColorSpace, OpenEXR's colorInteropID, OCIO configs'
# and the hosts'), as _declared_key spells them -> vom's; the Nuke and Blender adapters' tables of the same names are
# tested to agree. A scene_linear or reference of unknown family says nothing.
_DECLARED = {
    "linap1scene": "ACEScg", "linap1": "ACEScg", "acescg": "ACEScg", "acesacescg": "ACEScg", "linearacescg": "ACEScg",
    "acescgacesap1": "ACEScg",
    "linap0scene": "ACES2065-1", "linap0": "ACES2065-1", "aces20651": "ACES2065-1", "acesaces20651": "ACES2065-1",
    "linearaces": "ACES2065-1",
    "linrec709scene": "lin_rec709", "linrec709": "lin_rec709", "linear": "lin_rec709", "linsrgb": "lin_rec709",
    "linearrec709srgb": "lin_rec709", "linearrec709": "lin_rec709", "utilitylinearsrgb": "lin_rec709",
    "utilitylinearrec709": "lin_rec709", "linrec709srgb": "lin_rec709",
    "srgbrec709scene": "sRGB", "srgbtx": "sRGB", "srgb": "sRGB", "srgbtexture": "sRGB", "utilitysrgbtexture": "sRGB",
    "srgbencodedrec709srgb": "sRGB", "srgbrec709": "sRGB", "inputgenericsrgbtexture": "sRGB", "outputsrgb": "sRGB",
    # OCIO's sRGB display encoding is the same curve over the same primaries
    "srgbrec709display": "sRGB", "srgbdisplay": "sRGB",
    # other spellings of the same spaces (review: warned as spaces vom does not convert)
    "linearsrgb": "lin_rec709", "srgblinear": "lin_rec709", "linearbt709": "lin_rec709", "linbt709": "lin_rec709",
    "linearap1": "ACEScg", "acesap1": "ACEScg", "acescgap1": "ACEScg", "linearap0": "ACES2065-1",
    "acesap0": "ACES2065-1",
    # a gamma 2.2 texture (OpenImageIO's reading of a PNG's gAMA): sRGB's curve within a few code values; no setting
    # of vom's is nearer, so read as sRGB it says nothing
    "g22rec709scene": "sRGB", "g22rec709": "sRGB", "gamma22rec709": "sRGB", "gamma22encodedrec709": "sRGB",
    # the ACES configs' alias of ACES2065-1 (cg and studio configs v2.2.0 on; QA: said to be a space vom does not
    # convert)
    "aces": "ACES2065-1",
}
# vom's settings as OpenEXR's colorInteropID names them: what an rgba output's RGB is, where its plate says nothing
INTEROP_IDS = {"ACEScg": "lin_ap1_scene", "lin_rec709": "lin_rec709_scene", "sRGB": "srgb_rec709_scene",
               "ACES2065-1": "lin_ap0_scene"}
# names that say nothing of which space (a config's role: its linear is another per config), and names of data
_SAYS_NOTHING = {"scenelinear", "compositinglinear", "reference", "default", "unknown", "unspecified"}
_DATA = {"data", "raw", "noncolor", "utilityraw", "none"}


def _declared_key(name: str) -> str:
    """A colour space's name without case, spaces and punctuation (``ACES - ACEScg`` -> ``acesacescg``)."""
    return re.sub(r"[\s_\-().]+", "", name).lower()


def interop_id_of_name(name: str) -> str | None:
    """What a colour space a header names is, as OpenEXR's colorInteropID says it: ``""`` for a name that says
    nothing of which space (a config's role: ``scene_linear``), the ID of vom's space for any spelling of it (``sRGB -
    Linear``: ``lin_rec709_scene``), None for a name vom does not read as one of its spaces (P3, a log, data)."""
    key = _declared_key(name)
    if key in _SAYS_NOTHING or not key:
        return ""
    vom = _DECLARED.get(key)
    return INTEROP_IDS.get(vom) if vom else None


# camera and grading log encodings, also those whose names hold no "log" (QA: DaVinci Intermediate, BMDFilm,
# ACESproxy, Protune Flat and ADX were warned of and matted as scene-linear)
# (QA, from every space of OCIO's built-in configs: DaVinci Intermediate's interop ID davinci_dwg_scene, and RED's
# Log3G10 alias rl3g10_rwg, were matted as scene-linear)
_LOG = re.compile(r"log|cineon|acescct|acescc|acesproxy|davinci[ _]?(intermediate|dwg)|bmd[ _]?film|"
                  r"blackmagic[ _]?film|protune|(?<![a-z])adx|(?<![a-z])r?l3g1[02]", re.IGNORECASE)
# encodings for an HDR display (SMPTE ST 2084 "PQ", HLG): as far from linear as log is
_HDR = re.compile(r"(?<![a-z])(pq|st2084|hlg)(?![a-z])", re.IGNORECASE)


# An EXR's chromaticities (red, green, blue, white x y), where its header names no colour space: the linear spaces
# they are (an EXR's values are linear), by OpenImageIO's names for them.
_PRIMARIES = {
    "lin_rec709_scene": (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290),
    "lin_ap1_scene": (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767),
    "lin_ap0_scene": (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.0770, 0.32168, 0.33767),
    # spaces vom does not convert, named so that a plate in them is said (QA: read as ACEScg without a word)
    "lin_rec2020_scene": (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.3290),
    "lin_p3d65_scene": (0.680, 0.320, 0.265, 0.690, 0.150, 0.060, 0.3127, 0.3290),
}


def _by_primaries(chromaticities: Any) -> str:
    try:
        xy = np.asarray(chromaticities, np.float64).reshape(8)
    except (TypeError, ValueError):
        return ""
    return next((name for name, ref in _PRIMARIES.items() if np.allclose(xy, ref, atol=2e-3)), "")


def declared_colour(metadata: dict[str, Any]) -> tuple[str, str]:
    """What an image's header says of its colour: (colour space, DPX transfer), "" where it says nothing. An EXR
    naming none says it with its chromaticities (Rec.709 primaries read as ACEScg said nothing, QA)."""
    transfer = str(metadata.get("dpx:Transfer") or "").strip()
    # a DPX's colour space is OpenImageIO's reading of its transfer, which says nothing of its primaries
    declared = str(metadata.get("colorInteropID") or ("" if transfer else metadata.get("oiio:ColorSpace")) or "")
    if not declared.strip() and "chromaticities" in metadata:
        declared = _by_primaries(metadata["chromaticities"])
    return declared.strip(), transfer


_PRIMARIES_NAMED = {"lin_rec709_scene": "Rec.709", "lin_ap1_scene": "ACES AP1", "lin_ap0_scene": "ACES AP0",
                    "lin_rec2020_scene": "Rec.2020", "lin_p3d65_scene": "P3-D65"}


def said_of_colour(metadata: dict[str, Any]) -> str:
    """What a header says of its colour, for a message: "says its colour space is 'X'", "has the chromaticities of
    Rec.709" (it names none: a header naming lin_rec709_scene was said of it, review), "says no colour space"."""
    declared, transfer = declared_colour(metadata)
    named = metadata.get("colorInteropID") or (not transfer and metadata.get("oiio:ColorSpace"))
    if declared and not named and not transfer:
        return f"has the chromaticities of {_PRIMARIES_NAMED.get(declared, declared)}"
    if declared or transfer:
        return "says its colour space is " + " / ".join(repr(t) for t in (declared, transfer) if t)
    return "says no colour space"


def declared_space(metadata: dict[str, Any]) -> str:
    """What an image's header says of its colour as one name: vom's where vom knows it (``ACEScg`` and
    ``lin_ap1_scene`` are one), else what it says (``"name / transfer"``); "" where it says nothing."""
    declared, transfer = declared_colour(metadata)
    vom = _DECLARED.get(_declared_key(declared)) if declared and not transfer else None
    return vom or " / ".join(filter(None, (declared, transfer)))


def _log_transfer(transfer: str) -> bool:
    """Whether a DPX's transfer is a log encoding (Nuke's log DPX says "Printing density")."""
    return transfer.strip().lower().startswith(("log", "printing density", "adx"))


def transfer_contradicts(transfer: str, colorspace: str) -> bool:
    """Whether a DPX's ``dpx:Transfer`` says its values are other than the ``colorspace`` setting reads them: a log
    transfer whatever the setting, a linear one read as sRGB (an rgba output was tagged sRGB over them, QA). A
    transfer that says nothing (User defined, Undefined) contradicts nothing."""
    if _log_transfer(transfer):
        return True
    return transfer.strip().lower() == "linear" and colorspace == DISPLAY_ENCODED


def plate_colour_note(metadata: dict[str, Any], pixel_type: str, colorspace: str, path: Any) -> str | None:
    """A warning when a plate's header says it is in another colour space than ``colorspace``, or it holds 8- or
    16-bit integers (display-encoded as a rule) read as scene-linear; InputError for a log-encoded plate, which
    vom cannot read as any of its spaces (an sRGB PNG or a log DPX was read as linear ACEScg, saying nothing)."""
    declared, transfer = declared_colour(metadata)
    log = _log_transfer(transfer) or bool(_LOG.search(declared))
    hdr = not log and (bool(_HDR.search(declared)) or "2084" in _declared_key(declared))  # "SMPTE ST 2084"
    if log or hdr:
        said = f"dpx:Transfer {transfer}" if transfer else f"colour space {declared!r}"
        how = "log-encoded" if log else "encoded for an HDR display (PQ or HLG)"
        if colorspace in SCENE_LINEAR:
            raise InputError(f"plate {path} is {how} ({said}) and would be read as scene-linear {colorspace}: "
                             "convert it to linear EXR first (e.g. oiiotool --colorconvert), or read its code values "
                             "as they are with colorspace raw")
        if colorspace == DISPLAY_ENCODED:  # a dark one is decoded and brought up: not "as they are" (QA)
            return (f"plate {path} is {how} ({said}); read as sRGB, its code values as an sRGB picture's (decoded "
                    f"with sRGB's curve and brought up where the shot is dark): convert it to linear EXR first, or set "
                    f"colorspace raw to read its code values as they are")
        return f"plate {path} is {how} ({said}); read as {colorspace}, its code values as they are"
    if transfer_contradicts(transfer, colorspace):  # a linear DPX read as sRGB (log refused or said above), QA
        return (f"plate {path} says its transfer is linear (dpx:Transfer {transfer}) and is read as sRGB code values "
                f"(the colorspace setting): decoded with sRGB's curve where the shot is dark; set colorspace "
                f"lin_rec709 or ACEScg if it is linear")
    key = _declared_key(declared)
    vom = _DECLARED.get(key)
    if vom is not None and vom != colorspace:  # sRGB and raw too: a dark sRGB plate is brought up, a raw one is not
        return (f"plate {path} {said_of_colour(metadata)} ({vom}) and is read as {colorspace} (the colorspace "
                f"setting); if it is {vom}, set colorspace {vom}")
    if vom is None and declared and not transfer and key not in _SAYS_NOTHING:
        # a space vom does not convert (Rec.2020, P3, a gamma 2.2 texture...): read as the setting, unsaid (QA)
        if key in _DATA:
            if colorspace == "raw":
                return None
            return (f"plate {path} {said_of_colour(metadata)}: data, not a picture; read as {colorspace} (the "
                    f"colorspace setting)")
        return (f"plate {path} {said_of_colour(metadata)}, which vom does not convert, and is read as {colorspace} "
                f"(the colorspace setting): convert it to one of vom's colour spaces first (e.g. oiiotool "
                f"--colorconvert), or set the colorspace it is")
    if vom is None and colorspace == DISPLAY_ENCODED and pixel_type in ("half", "float") and not transfer \
            and key not in _DATA:
        # an EXR's floats are scene-linear as a rule: read as sRGB code values, everything above 1 is lost (QA: an
        # untagged float copy of the demo matted worse, without a word, where integers read as linear are warned of)
        kind = "half-float" if pixel_type == "half" else "32-bit float"
        return (f"plate {path} holds {kind} values, scene-linear as a rule, and is read as sRGB code values (the "
                f"colorspace setting), values above 1 clipped; set colorspace lin_rec709 or ACEScg if it is linear")
    if vom is None and colorspace in SCENE_LINEAR and pixel_type in ("uint8", "uint16") \
            and transfer.lower() != "linear":
        bits = 8 if pixel_type == "uint8" else 16
        try:  # a 10- or 12-bit DPX is read as 16-bit integers; its header says how many bits it holds
            bits = int(metadata.get("oiio:BitsPerSample") or bits)
        except (TypeError, ValueError):
            pass
        return (f"plate {path} holds {bits}-bit integers, display-encoded as a rule, and is read as scene-linear "
                f"{colorspace} (the colorspace setting); set colorspace sRGB if it is an sRGB picture")
    return None
