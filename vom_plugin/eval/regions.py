"""Where a matte is scored: the whole frame, or the unknown band of a trimap dilated from the ground truth.

The band follows TCVOM's ``calc_metric.py`` on VideoMatting108: the pixels where 0 < g < 1, grown by a
square max-pool (dilation) of radius r; narrow / medium / wide are r = 5 / 12 / 20 pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from vom_plugin.errors import InputError

REGIONS: dict[str, int | None] = {"whole": None, "narrow": 5, "medium": 12, "wide": 20}


def unknown_band(gt: np.ndarray, radius: int) -> np.ndarray:
    """bool (H, W): the soft pixels of ``gt`` (0 < g < 1) dilated by a (2r+1) x (2r+1) square."""
    g = np.asarray(gt)
    soft = ((g > 0) & (g < 1)).astype(np.uint8)
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
