"""Colour: scene-linear plate RGB -> the display-referred [0, 1] RGB the network eats.

The transform, for the linear input spaces (``ACEScg``, ``lin_rec709``):

1. NaN / +-Inf -> 0 (renders and denoisers leave them).
2. OCIO: input space -> ``lin_rec709`` (Linear Rec.709 (sRGB)), the gamut the network was trained in.
   Negative values (out-of-gamut colours after the matrix) are clamped to 0.
3. Highlights compressed smoothly: values up to ``KNEE`` (0.8) are untouched, above it, with
   ``t = (x - KNEE) / (1 - KNEE)``, ``KNEE + (1 - KNEE) * t / (1 + t)`` (a Reinhard shoulder): continuous,
   slope 1 at the knee, and approaching 1 slowly enough that a specular of 50 still reads brighter than
   one of 2 instead of both clipping to the same white (2 -> 0.971, 8 -> 0.995, 50 -> 0.9992 linear).
4. OCIO: ``lin_rec709`` -> ``srgb_tx`` (sRGB Encoded Rec.709), the display encoding of the network's
   training images.

``sRGB`` plates are already display-referred and ``raw`` means "no colour management": both are only
cleaned (step 1) and clipped to [0, 1]. The config is OCIO's built-in CG config, so nothing is read from
disk or the environment ($OCIO is deliberately ignored: the network's input must not change per site).

This is for the network input only: the plate RGB written in an ``rgba`` output is never compressed.
Steps 3-4 are ``linear_to_network``, which the training generator calls on its linear Rec.709 composites
so that training and inference images go through exactly the same transform.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from vom_plugin.errors import InputError

CONFIG_URI = "ocio://cg-config-latest"
# vom's setting -> the colour space in the built-in config (None: no conversion, already display-referred).
COLORSPACES: dict[str, str | None] = {
    "ACEScg": "ACEScg",
    "lin_rec709": "lin_rec709",
    "sRGB": None,
    "raw": None,
}
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
    over = rgb > knee
    if over.any():
        span = 1.0 - knee
        t = (rgb[over] - knee) / span
        rgb[over] = knee + span * (t / (1.0 + t))
    return rgb


def linear_to_network(rgb_lin_rec709: np.ndarray) -> np.ndarray:
    """Linear Rec.709 RGB (..., 3) -> network input (..., 3) float32 in [0, 1]: compress, then sRGB-encode.

    No inverse transform is involved, so the training generator can call it on any linear composite.
    """
    rgb = _as_rgb(rgb_lin_rec709, "linear_to_network")
    compress_highlights(rgb)
    _apply(_processor(NETWORK_LINEAR, NETWORK_ENCODED), rgb)
    return np.clip(rgb, 0.0, 1.0, out=rgb)


def check_colorspace(colorspace: str) -> str:
    """The setting itself when vom knows it, else InputError listing the choices."""
    if colorspace not in COLORSPACES:
        raise InputError(f"colour space {colorspace!r} is not supported; expected one of {', '.join(COLORSPACES)}")
    return colorspace


def to_network(rgb_linear: np.ndarray, colorspace: str = "ACEScg") -> np.ndarray:
    """Plate RGB (H, W, 3) in ``colorspace`` -> float32 (H, W, 3) display-referred in [0, 1] for the network.

    See the module documentation for the exact transform. The input array is not modified.
    """
    source = COLORSPACES[check_colorspace(colorspace)]
    rgb = _as_rgb(rgb_linear, "to_network")
    if source is None:
        return np.clip(rgb, 0.0, 1.0, out=rgb)
    if source != NETWORK_LINEAR:
        _apply(_processor(source, NETWORK_LINEAR), rgb)
    compress_highlights(rgb)
    _apply(_processor(NETWORK_LINEAR, NETWORK_ENCODED), rgb)
    return np.clip(rgb, 0.0, 1.0, out=rgb)
