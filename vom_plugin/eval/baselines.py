"""Baselines every vom number is printed next to: what an artist gets without a matting network.

All take the network-space frames (float32 [T, H, W, 3] display-referred in [0, 1]) and the first frame's
roto (float32 [H, W] of {0, 1}) and return alphas float32 [T, H, W]:

- ``static_roto``: the keyframe roto held on every frame (what you get by doing nothing).
- ``flow_roto``: the roto carried frame to frame by dense optical flow (OpenCV DIS), re-binarised at 0.5
  after each warp so it does not blur away over the clip.
- ``flow_cf``: ``flow_roto`` plus closed-form matting (Levin et al., pymatting ``estimate_alpha_cf``) on a
  trimap whose unknown band straddles the carried roto's edge.
- ``oracle_cf`` (needs GT): the GT thresholded at 0.5, then refined by closed-form matting on a trimap
  around it: what a perfect tracker plus a classical matting solve would reach.

Closed-form matting solves a sparse system over the unknown band; its cost grows quickly with the band's
area, so the solve runs at most ``max_side`` pixels on the long side (the alpha is resized back, and the
known regions re-imposed at full resolution).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

import cv2
import numpy as np

TRIMAP_RADIUS = 6  # half-width of the unknown band, pixels at the clip's resolution
MAX_MATTING_SIDE = 480


def _gray8(frame: np.ndarray) -> np.ndarray:
    rgb = np.clip(np.asarray(frame, np.float32), 0.0, 1.0)
    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.rint(gray * 255.0).astype(np.uint8)


def _binary(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x) >= 0.5).astype(np.float32)


def static_roto(frames: np.ndarray, roto: np.ndarray) -> np.ndarray:
    t = len(frames)
    return np.repeat(_binary(roto)[None], t, axis=0)


def carry_mask(prev_frame: np.ndarray, frame: np.ndarray, prev_mask: np.ndarray,
               dis: cv2.DISOpticalFlow | None = None) -> np.ndarray:
    """``prev_mask`` moved onto ``frame``: backward DIS flow (frame -> prev_frame), bilinear lookup, >= 0.5."""
    dis = dis or cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    # backward flow: for each pixel of the new frame, where it came from, so every pixel gets a value
    flow = dis.calc(_gray8(frame), _gray8(prev_frame), None)
    h, w = prev_mask.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    moved = cv2.remap(prev_mask.astype(np.float32), xs + flow[..., 0], ys + flow[..., 1],
                      interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return _binary(moved)


def flow_roto(frames: np.ndarray, roto: np.ndarray) -> np.ndarray:
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    out = [_binary(roto)]
    for t in range(1, len(frames)):
        out.append(carry_mask(frames[t - 1], frames[t], out[-1], dis))
    return np.stack(out).astype(np.float32)


def trimap_around(mask: np.ndarray, radius: int = TRIMAP_RADIUS) -> np.ndarray:
    """float64 trimap {0, 0.5, 1}: 1 inside the eroded mask, 0 outside the dilated one, 0.5 between."""
    m = _binary(mask).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    fg = cv2.erode(m, k, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    maybe = cv2.dilate(m, k, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    tri = np.where(fg > 0, 1.0, np.where(maybe > 0, 0.5, 0.0))
    return tri.astype(np.float64)


def closed_form(image: np.ndarray, trimap: np.ndarray, max_side: int = MAX_MATTING_SIDE,
                mask: np.ndarray | None = None) -> np.ndarray:
    """Closed-form alpha (float32 [H, W]) of ``image`` [H, W, 3] in [0, 1] given a {0, 0.5, 1} trimap; ``mask``:
    the binary mask the trimap was drawn around, the answer where there is nothing to solve."""
    from vom_plugin.extras import require

    estimate_alpha_cf = require("pymatting", "closed-form matting (flow_cf, oracle_cf)").estimate_alpha_cf

    h, w = trimap.shape
    unknown = trimap == 0.5
    # nothing to solve (pymatting would fail on an empty system), or only one known side to anchor a solution (an
    # object thinner than the trimap's erosion): the mask itself. Not ``trimap >= 0.5``, the band dilated around it
    # taken as solid, which scored the oracle below its own thresholded mask on thin objects (QA)
    if not unknown.any() or not (trimap == 1.0).any() or not (trimap == 0.0).any():
        fallback = mask if mask is not None else trimap
        return (np.asarray(fallback) >= 0.5).astype(np.float32)
    scale = min(1.0, max_side / max(h, w))
    img, tri = np.asarray(image, np.float64), trimap
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        tri = cv2.resize(trimap, size, interpolation=cv2.INTER_NEAREST)
        # a thin object's solid core can vanish in the shrink: the same answer as above (pymatting raised)
        if not (tri == 0.5).any() or not (tri == 1.0).any() or not (tri == 0.0).any():
            fallback = mask if mask is not None else trimap
            return (np.asarray(fallback) >= 0.5).astype(np.float32)
    # pymatting prints its solver's warnings to stdout, where `vom benchmark --json` writes its one JSON object
    with contextlib.redirect_stdout(sys.stderr):
        alpha = estimate_alpha_cf(np.clip(img, 0.0, 1.0), tri)
    if scale < 1.0:
        alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
    alpha = np.where(trimap == 1.0, 1.0, np.where(trimap == 0.0, 0.0, alpha))
    return np.clip(alpha, 0.0, 1.0).astype(np.float32)


def matte_masks(frames: np.ndarray, masks: np.ndarray, radius: int = TRIMAP_RADIUS,
                max_side: int = MAX_MATTING_SIDE) -> np.ndarray:
    return np.stack([closed_form(frames[t], trimap_around(masks[t], radius), max_side, _binary(masks[t]))
                     for t in range(len(frames))]).astype(np.float32)


def flow_cf(frames: np.ndarray, roto: np.ndarray, *, radius: int = TRIMAP_RADIUS,
            max_side: int = MAX_MATTING_SIDE) -> np.ndarray:
    return matte_masks(frames, flow_roto(frames, roto), radius, max_side)


def oracle_cf(frames: np.ndarray, gt: np.ndarray, *, radius: int = TRIMAP_RADIUS,
              max_side: int = MAX_MATTING_SIDE) -> np.ndarray:
    return matte_masks(frames, _binary(gt), radius, max_side)


BASELINE_NAMES = ("static", "flow", "flow_cf", "oracle_cf")


def baseline(name: str, *, max_side: int = MAX_MATTING_SIDE, radius: int = TRIMAP_RADIUS
             ) -> Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]:
    """The baseline ``name`` as a benchmark method ``(frames, roto, gt) -> alpha``; only oracle_cf reads gt."""
    if name == "static":
        return lambda f, r, g: static_roto(f, r)
    if name == "flow":
        return lambda f, r, g: flow_roto(f, r)
    if name == "flow_cf":
        return lambda f, r, g: flow_cf(f, r, radius=radius, max_side=max_side)
    if name == "oracle_cf":
        def oracle(f: np.ndarray, r: np.ndarray, g: np.ndarray | None) -> np.ndarray:
            if g is None:
                raise ValueError("oracle_cf needs the ground truth")
            return oracle_cf(f, g, radius=radius, max_side=max_side)
        return oracle
    raise KeyError(name)
