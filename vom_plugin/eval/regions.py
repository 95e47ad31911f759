"""Where a matte is scored: the whole frame, or the unknown band of a trimap dilated from the ground truth.

The band follows TCVOM's ``calc_metric.py`` on VideoMatting108: the pixels where 0 < g < 1 in 8 bits, grown by a
square max-pool (dilation) of radius r; narrow / medium / wide are r = 5 / 12 / 20 pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from vom_plugin.errors import InputError

REGIONS: dict[str, int | None] = {"whole": None, "narrow": 5, "medium": 12, "wide": 20}


def unknown_band(gt: np.ndarray, radius: int) -> np.ndarray:
    """bool (H, W): the soft pixels of ``gt`` dilated by a (2r+1) x (2r+1) square. Soft as in TCVOM's 8-bit ground
    truth: strictly between 0 and 1 once rounded to 8 bits (a float EXR's render noise, 1e-6 over the clear
    background, made every pixel soft and the band the whole frame: QA)."""
    codes = np.rint(np.asarray(gt, np.float64) * 255.0)
    soft = ((codes > 0) & (codes < 255)).astype(np.uint8)
    if radius <= 0:
        return soft.astype(bool)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(soft, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def region_mask(gt: np.ndarray, region: str) -> np.ndarray | None:
    """The mask of ``region`` for one GT frame; None for the whole frame."""
    if region not in REGIONS:
        raise InputError(f"region {region!r} is not known; expected one of {', '.join(REGIONS)}")
    radius = REGIONS[region]
    return None if radius is None else unknown_band(gt, radius)
