"""Compositing rendered foregrounds over photographs as a camera would have recorded them, in linear light.

Input: the target's premultiplied linear RGBA frames (exact alpha from the renderer), optionally an
occluder's, and one background photograph (linear Rec.709). Output: a ``Clip`` whose plate went through
what a real plate goes through, in this order:

1. placement: the rendered clip is scaled, rotated, flipped and positioned in the frame (one transform for
   the whole clip, plus a slow drift for stage-1 pseudo-clips built from one frame);
2. the background: a crop of the photograph that pans and zooms over the clip (the camera moves), then
   defocused with a disc (lens) kernel, as a background behind a focused subject is;
3. light levels: the foreground is brought to a random brightness relative to the background (renders and
   photographs come with unrelated exposures), then the camera's exposure, white balance and vignetting
   apply to everything together;
4. camera shake: a random walk of small translations and rotations applied to foreground and background
   alike (so the matte shakes with the plate);
5. over: ``plate = C_occ + C_target + (1 - A_target - A_occ) * bg`` with premultiplied colours C; the
   occluder was a holdout in the target's render, so the two coverages do not overlap;
6. the sensor: signal-dependent shot noise plus read noise, spatially correlated (grain) and partly shared
   by the channels, added to the finished plate, so foreground and background carry the same noise.

The plate stays scene-linear: ``train/data.py`` sends it through ``io.linear_to_network``, the transform
inference uses. ``alpha``, ``fg`` (un-premultiplied) and ``bg`` are the noise-free truths; exposure, white
balance, vignetting and shake apply to them too, so ``alpha * fg + (1 - alpha) * bg`` is the plate before
noise wherever no occluder covers it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from vom_plugin.train.synth import Clip

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def _affine(scale: float = 1.0, angle: float = 0.0, tx: float = 0.0, ty: float = 0.0, flip: bool = False
            ) -> np.ndarray:
    """3x3 matrix: optional mirror of x about the origin, then rotation and scale, then translation."""
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    m = np.array([[c, -s, tx], [s, c, ty], [0, 0, 1]], np.float64)
    if flip:
        m = m @ np.diag([-1.0, 1.0, 1.0])
    return m


def _flip_x(width: int, flip: bool) -> np.ndarray:
    """Mirror image columns (x -> width - x) when ``flip``."""
    return np.array([[-1, 0, width], [0, 1, 0], [0, 0, 1]], np.float64) if flip else np.eye(3)


def touches_border(target: np.ndarray, occluder: np.ndarray | None, level: float = 0.01) -> bool:
    """Whether any frame's alpha reaches the edge of the render (the object is cut by the frame)."""
    for layer in (target, occluder):
        if layer is None:
            continue
        a = layer[..., 3]
        edges = (a[:, 0, :], a[:, -1, :], a[:, :, 0], a[:, :, -1])
        if max(float(e.max()) for e in edges) > level:
            return True
    return False


def _translate(tx: float, ty: float) -> np.ndarray:
    return _affine(tx=tx, ty=ty)


def _about(m: np.ndarray, cx: float, cy: float) -> np.ndarray:
    """``m`` applied about the point (cx, cy) instead of the origin."""
    return _translate(cx, cy) @ m @ _translate(-cx, -cy)


def _warp(img: np.ndarray, m: np.ndarray, size: tuple[int, int], border: int) -> np.ndarray:
    h, w = size
    return cv2.warpAffine(img, m[:2].astype(np.float32), (w, h), flags=cv2.INTER_LINEAR, borderMode=border,
                          borderValue=0)


def disc_kernel(radius: float) -> np.ndarray:
    """Normalised anti-aliased disc (a lens's circle of confusion) of ``radius`` pixels."""
    r = max(float(radius), 0.0)
    n = int(math.ceil(r)) + 1
    ss = 4  # supersampled coverage: a smooth kernel for fractional radii
    g = (np.arange(-n * ss, (n + 1) * ss) + 0.5) / ss - 0.5
    yy, xx = np.meshgrid(g, g, indexing="ij")
    inside = ((xx ** 2 + yy ** 2) <= max(r, 0.5) ** 2).astype(np.float32)
    k = inside.reshape(2 * n + 1, ss, 2 * n + 1, ss).mean(axis=(1, 3))
    return (k / k.sum()).astype(np.float32)


def defocus(img: np.ndarray, radius: float) -> np.ndarray:
    """Disc blur in linear light (highlights spread into bokeh as a lens spreads them)."""
    if radius < 0.3:
        return img
    return cv2.filter2D(img, -1, disc_kernel(radius), borderType=cv2.BORDER_REFLECT101)


def over(target: np.ndarray, occluder: np.ndarray | None, bg: np.ndarray) -> np.ndarray:
    """Premultiplied ``target`` (..., 4) and ``occluder`` over ``bg`` (..., 3), in linear light."""
    cov = target[..., 3:4]
    rgb = target[..., :3]
    if occluder is not None:
        cov = cov + occluder[..., 3:4]
        rgb = rgb + occluder[..., :3]
    return rgb + np.clip(1.0 - cov, 0.0, 1.0) * bg


def unpremultiply(rgba: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    a = rgba[..., 3:4]
    return np.where(a > eps, rgba[..., :3] / np.maximum(a, eps), 0.0).astype(np.float32)


def sensor_noise(plate: np.ndarray, rng: np.random.Generator, *, shot: float, read: float, grain: float,
                 chroma: float) -> np.ndarray:
    """Noise to add to a linear plate [T, H, W, 3]: variance ``shot * signal + read**2`` per pixel; the
    underlying unit noise is blurred by ``grain`` pixels (sigma, 0 = white) and is a ``chroma`` : 1 - chroma
    mix of per-channel and shared (luminance) noise, renormalised to unit variance."""
    t, h, w, _ = plate.shape
    mono = rng.standard_normal((t, h, w, 1), dtype=np.float32)
    col = rng.standard_normal((t, h, w, 3), dtype=np.float32)
    unit = (1.0 - chroma) * mono + chroma * col
    unit /= math.sqrt((1.0 - chroma) ** 2 + chroma ** 2)
    if grain > 0.05:
        for i in range(t):
            unit[i] = cv2.GaussianBlur(unit[i], (0, 0), grain)
        unit /= max(float(unit.std()), 1e-6)
    var = shot * np.maximum(plate, 0.0) + read * read
    return (np.sqrt(var) * unit).astype(np.float32)


def sample_camera(rng: np.random.Generator, difficulty: float) -> dict[str, float | list[float]]:
    """The camera's random settings for one clip; ``difficulty`` in [0, 1] scales how far they stray."""
    d = float(np.clip(difficulty, 0.0, 1.0))
    noisy = rng.random() < 0.4 + 0.5 * d
    wb = np.exp(rng.normal(0.0, 0.1 * d, 3))
    wb /= wb[1]  # white balance moves red and blue against green
    return {
        "fg_to_bg": float(np.exp(rng.normal(0.0, 0.35 + 0.35 * d))),  # foreground brightness relative to the bg
        "occ_to_bg": float(np.exp(rng.normal(0.0, 0.5))),
        "exposure": float(np.exp(rng.normal(0.0, 0.15 + 0.35 * d))),
        "white_balance": [float(x) for x in wb],
        "vignette": float(rng.uniform(0.0, 0.35 * d)),
        "defocus": float(rng.uniform(0.0, 1.5 + 5.0 * d) if rng.random() < 0.45 + 0.35 * d else 0.0),
        "shake": float(rng.uniform(0.0, 0.4 + 2.0 * d) if rng.random() < 0.3 + 0.5 * d else 0.0),
        "shot": float(rng.uniform(0.0, 0.004) * d if noisy else 0.0),
        "read": float(rng.uniform(0.0, 0.004) * d if noisy else 0.0),
        "grain": float(rng.uniform(0.0, 1.2)),
        "chroma": float(rng.uniform(0.1, 0.6)),
    }


def _mean_luma(rgb: np.ndarray, weight: np.ndarray | None = None) -> float:
    y = rgb @ LUMA
    if weight is None:
        return float(y.mean())
    return float((y * weight).sum() / max(float(weight.sum()), 1e-6))


def _level_gain(rgba: np.ndarray, level: float) -> float:
    """Gain that brings the median luminance of a premultiplied layer's solid pixels to ``level``; bounded,
    so a nearly black render is not lifted until its specular highlights reach hundreds."""
    a = rgba[..., 3]
    solid = a > 0.5
    if solid.sum() < 16:
        solid = a > 1e-3
    if not solid.any():
        return 1.0
    y = (rgba[..., :3][solid] @ LUMA) / a[solid]
    return float(np.clip(level / max(float(np.median(y)), 1e-6), 0.05, 20.0))


def composite_clip(target: np.ndarray, occluder: np.ndarray | None, photo: np.ndarray, rng: np.random.Generator,
                   *, size: tuple[int, int], difficulty: float = 1.0, drift: bool = False, name: str = "clip",
                   camera: dict | None = None) -> Clip:
    """``target`` / ``occluder``: premultiplied linear RGBA [T, h, w, 4]; ``photo``: linear RGB [Hp, Wp, 3].

    ``drift`` moves the foreground by a slow random similarity over the frames (stage-1 pseudo-clips made
    of one repeated frame). ``camera`` overrides ``sample_camera`` (tests). Deterministic given ``rng``.
    """
    t_n, h, w = target.shape[:3]
    oh, ow = int(size[0]), int(size[1])
    d = float(np.clip(difficulty, 0.0, 1.0))
    cam = camera if camera is not None else sample_camera(rng, d)
    cx, cy = ow / 2.0, oh / 2.0

    # 1. placement: the object's centre (alpha centroid of the first frame) lands near the frame centre.
    a0 = target[0, ..., 3]
    total = float(a0.sum())
    if total > 1e-3:
        yy, xx = np.mgrid[0:h, 0:w]
        oc = (float((xx * a0).sum() / total), float((yy * a0).sum() / total))
    else:
        oc = (w / 2.0, h / 2.0)
    flip = bool(rng.random() < 0.5)
    if touches_border(target, occluder):
        # The render is cut at its frame: it must cover the whole output (plus room for shake), unrotated,
        # or its border would show as a straight edge in the matte.
        margin = 4.0 + 3.0 * cam["shake"] * math.sqrt(t_n)
        scale = max((oh + 2 * margin) / h, (ow + 2 * margin) / w) * math.exp(rng.uniform(0.0, 0.3))
        lo_x, hi_x = ow + margin - scale * (w - oc[0]), scale * oc[0] - margin
        lo_y, hi_y = oh + margin - scale * (h - oc[1]), scale * oc[1] - margin
        dest = (rng.uniform(min(lo_x, hi_x), max(lo_x, hi_x)), rng.uniform(min(lo_y, hi_y), max(lo_y, hi_y)))
        angle, drift = 0.0, False
    else:
        scale = min(oh / h, ow / w) * math.exp(rng.uniform(-0.45, 0.25))
        dest = (cx + rng.uniform(-0.2, 0.2) * ow, cy + rng.uniform(-0.2, 0.2) * oh)
        angle = rng.normal(0.0, 0.12)
    if flip:  # mirror about the object's centre, so the centre still lands on dest
        oc = (w - oc[0], oc[1])
    place = _translate(*dest) @ _affine(scale, angle) @ _translate(-oc[0], -oc[1]) @ _flip_x(w, flip)
    drift_v = (rng.normal(0, 0.015, 2) * (ow, oh), rng.normal(0, 0.015), rng.normal(0, 0.01)) if drift else None

    # 2. background: a crop of the photograph panning and zooming (camera motion).
    ph, pw = photo.shape[:2]
    zoom = max(ow, oh) / (min(ph, pw) * rng.uniform(0.35, 0.95))
    margin = 0.5 * max(ow, oh) / zoom
    pc = (rng.uniform(min(margin, pw / 2), max(pw - margin, pw / 2)), rng.uniform(min(margin, ph / 2),
                                                                                  max(ph - margin, ph / 2)))
    pan_v = rng.normal(0.0, 0.004 + 0.012 * d, 2) * (ow, oh)
    zoom_v = rng.normal(0.0, 0.004 * d)
    flip_bg = bool(rng.random() < 0.5)

    # 4. shake: a random walk of translation and rotation (pixels, radians), the same for fg and bg.
    steps = rng.normal(0.0, 1.0, (t_n, 3)) * (cam["shake"], cam["shake"], cam["shake"] * 0.002)
    walk = np.cumsum(steps, axis=0)
    walk -= walk[0]

    fg_frames = np.empty((t_n, oh, ow, 4), np.float32)
    occ_frames = np.empty((t_n, oh, ow, 4), np.float32) if occluder is not None else None
    bg_frames = np.empty((t_n, oh, ow, 3), np.float32)
    for i in range(t_n):
        shake = _about(_affine(1.0, walk[i, 2], walk[i, 0], walk[i, 1]), cx, cy)
        m = place
        if drift_v is not None:
            m = _about(_affine(math.exp(drift_v[2] * i), drift_v[1] * i, *(drift_v[0] * i)), cx, cy) @ m
        fg_frames[i] = _warp(target[i], shake @ m, (oh, ow), cv2.BORDER_CONSTANT)
        if occ_frames is not None:
            occ_frames[i] = _warp(occluder[i], shake @ m, (oh, ow), cv2.BORDER_CONSTANT)
        pan = _translate(cx + pan_v[0] * i, cy + pan_v[1] * i) @ _affine(zoom * math.exp(zoom_v * i), flip=flip_bg) \
            @ _translate(-pc[0], -pc[1])
        bg_frames[i] = defocus(_warp(photo, shake @ pan, (oh, ow), cv2.BORDER_REFLECT101), cam["defocus"])

    # 3. light levels: foreground relative to background, then the camera's exposure, white balance, vignette.
    bg_level = max(_mean_luma(bg_frames), 1e-4)
    fg_frames[..., :3] *= _level_gain(fg_frames, cam["fg_to_bg"] * bg_level)
    if occ_frames is not None:
        occ_frames[..., :3] *= _level_gain(occ_frames, cam["occ_to_bg"] * bg_level)
    yy, xx = np.mgrid[0:oh, 0:ow].astype(np.float32)
    r2 = ((xx - cx + 0.5) ** 2 + (yy - cy + 0.5) ** 2) / (cx * cx + cy * cy)
    light = (1.0 - cam["vignette"] * r2)[..., None] * (cam["exposure"] * np.asarray(cam["white_balance"], np.float32))
    fg_frames[..., :3] *= light
    bg_frames *= light
    if occ_frames is not None:
        occ_frames[..., :3] *= light

    # 5. over, 6. sensor noise.
    plate = over(fg_frames, occ_frames, bg_frames)
    if cam["shot"] > 0 or cam["read"] > 0:
        plate += sensor_noise(plate, rng, shot=cam["shot"], read=cam["read"], grain=cam["grain"],
                              chroma=cam["chroma"])
    alpha = np.clip(fg_frames[..., 3], 0.0, 1.0)
    return Clip(name=name, plate=plate.astype(np.float32), alpha=alpha.astype(np.float32),
                fg=unpremultiply(fg_frames), bg=bg_frames)
