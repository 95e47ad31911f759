"""Synthetic matting clips with exact alpha, made on the fly and deterministic by seed.

A clip is a textured foreground sprite (blob, hair-like strands, thin poles, semi-transparent areas, soft
edges) moving and deforming over a moving textured background, composited in LINEAR light. Motion blur
integrates alpha and colour over sub-frame positions; an occluder may pass in front (it cuts the
target's alpha, as a real occluder cuts a real matte); lighting may change over the clip.

Textures come from the sample photographs scikit-image ships (offline) and from procedural patterns.
``difficulty`` in [0, 1] drives a curriculum: 0 is a static, sharp, high-contrast blob; 1 adds everything.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

# Photographs scikit-image ships inside its wheel (no download); others need pooch and a network.
_PHOTOS_RGB = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
               "colorwheel", "cat", "retina")
_PHOTOS_GRAY = ("brick", "camera", "grass", "gravel", "moon", "coins", "page", "clock", "text")


@dataclass
class Clip:
    """One training clip. ``plate``/``fg``/``bg`` are scene-linear float32 [T, H, W, 3]; ``alpha`` [T, H, W]."""

    name: str
    plate: np.ndarray
    alpha: np.ndarray
    fg: np.ndarray
    bg: np.ndarray


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _photo_bank() -> tuple[np.ndarray, ...]:
    """Linear float32 RGB photographs, loaded once per process (a few MB)."""
    import warnings

    from vom_plugin.extras import require

    skd = require("skimage.data", "synthetic clips (their photographic textures)", extra="train")

    out = []
    for name in _PHOTOS_RGB + _PHOTOS_GRAY:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                im = getattr(skd, name)()
        except Exception:  # a trimmed scikit-image install: procedural textures still work
            continue
        im = np.asarray(im)
        if im.ndim == 2:
            im = np.repeat(im[..., None], 3, axis=2)
        im = im[..., :3].astype(np.float32) / 255.0
        # Big photographs are shrunk so a crop holds structure at our 256-px training scale.
        scale = 600.0 / max(im.shape[:2])
        if scale < 1.0:
            im = cv2.resize(im, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        out.append(srgb_to_linear(im))
    return tuple(out)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float, channels: int = 1) -> np.ndarray:
    """Value noise in [-1, 1] with features about ``cell`` pixels wide (random grid, bicubic upsampling)."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    g = rng.uniform(-1, 1, (gh, gw, channels)).astype(np.float32)
    up = cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
    return up.reshape(h, w, channels)


def _procedural(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    kind = rng.integers(0, 4)
    c0, c1 = rng.uniform(0.02, 0.9, 3), rng.uniform(0.02, 0.9, 3)
    if kind == 0:  # fractal noise
        n = sum(_smooth_noise(rng, h, w, cell, 1) * (0.5 ** i) for i, cell in enumerate((64, 24, 8, 3)))
        t = np.clip(0.5 + 0.4 * n, 0, 1)
    elif kind == 1:  # stripes, bent by noise
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ang, freq = rng.uniform(0, math.pi), rng.uniform(0.03, 0.3)
        warp = 8 * _smooth_noise(rng, h, w, 48)[..., 0]
        t = (0.5 + 0.5 * np.sin(freq * (xx * math.cos(ang) + yy * math.sin(ang)) + warp))[..., None]
    elif kind == 2:  # checker
        s = int(rng.integers(6, 40))
        yy, xx = np.mgrid[0:h, 0:w]
        t = (((yy // s) + (xx // s)) % 2).astype(np.float32)[..., None]
    else:  # smooth gradient with noise
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = (xx / max(w, 1) * rng.uniform(-1, 1) + yy / max(h, 1) * rng.uniform(-1, 1))[..., None]
        t = np.clip(t - t.min() + 0.2 * _smooth_noise(rng, h, w, 16), 0, None)
        t = t / max(float(t.max()), 1e-6)
    return (c0 * (1 - t) + c1 * t).astype(np.float32)


def _texture(rng: np.random.Generator, h: int, w: int, photo_p: float = 0.65) -> np.ndarray:
    """A linear RGB texture of size (h, w): a tinted, scaled, flipped crop of a photo, or a procedural one."""
    bank = _photo_bank()
    if bank and rng.random() < photo_p:
        im = bank[int(rng.integers(len(bank)))]
        s = rng.uniform(0.6, 1.6)
        s = max(s, (h + 2) / im.shape[0], (w + 2) / im.shape[1])
        im = cv2.resize(im, (int(im.shape[1] * s) + 1, int(im.shape[0] * s) + 1), interpolation=cv2.INTER_LINEAR)
        y = int(rng.integers(0, im.shape[0] - h + 1))
        x = int(rng.integers(0, im.shape[1] - w + 1))
        t = im[y:y + h, x:x + w]
        if rng.random() < 0.5:
            t = t[:, ::-1]
        tint = rng.uniform(0.5, 1.5, 3).astype(np.float32)
        t = t * tint
        if rng.random() < 0.3:
            t = t[..., rng.permutation(3)]
        return np.ascontiguousarray(t, dtype=np.float32)
    return _procedural(rng, h, w)


def _blob_alpha(rng: np.random.Generator, h: int, w: int, ss: int) -> np.ndarray:
    """A random star-shaped blob drawn at ``ss`` x supersampling then area-averaged: an anti-aliased edge."""
    H, W = h * ss, w * ss
    cy, cx = H / 2, W / 2
    r0 = min(H, W) * rng.uniform(0.16, 0.3)
    n = 128
    th = np.linspace(0, 2 * math.pi, n, endpoint=False)
    r = np.full(n, r0)
    for k in range(1, 7):  # a few random harmonics: lumpy but not self-intersecting
        r += r0 * rng.uniform(0, 0.35 / k) * np.cos(k * th + rng.uniform(0, 2 * math.pi))
    if rng.random() < 0.3:  # elongated (a body, a pole-like object)
        ax = rng.uniform(1.2, 2.2)
        pts = np.stack([cx + r * np.cos(th) * ax, cy + r * np.sin(th) / ax], 1)
    else:
        pts = np.stack([cx + r * np.cos(th), cy + r * np.sin(th)], 1)
    m = np.zeros((H, W), np.uint8)
    cv2.fillPoly(m, [np.round(pts * 4).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=2)
    return m.astype(np.float32) / 255.0, pts  # supersampled alpha, contour points (supersampled coords)


def _add_strands(rng: np.random.Generator, a: np.ndarray, pts: np.ndarray, amount: float, ss: int) -> None:
    """Hair/fur-like strands grown outward from the contour: thin (sub-pixel after downsampling), curved."""
    H, W = a.shape
    cy, cx = H / 2, W / 2
    n = int(amount * rng.integers(20, 400))
    if n == 0:
        return
    layer = np.zeros_like(a)
    p0 = pts[rng.integers(0, len(pts), n)].astype(np.float64)
    ang0 = np.arctan2(p0[:, 1] - cy, p0[:, 0] - cx) + rng.normal(0, 0.4, n)
    length = rng.uniform(4, 16 + 70 * min(amount, 1.0) * rng.random(), n) * ss
    curl = rng.normal(0, 0.08, n)
    steps = 8
    ang = ang0[:, None] + curl[:, None] * np.arange(1, steps + 1)[None]
    step = (length / steps)[:, None]
    xs = p0[:, :1] + np.cumsum(step * np.cos(ang), 1)
    ys = p0[:, 1:] + np.cumsum(step * np.sin(ang), 1)
    poly = np.stack([np.concatenate([p0[:, :1], xs], 1), np.concatenate([p0[:, 1:], ys], 1)], 2)
    poly = np.round(poly * 4).astype(np.int32)
    level = rng.integers(0, 3, n)  # three strand densities; one draw call each
    for lv, val in enumerate((0.3, 0.6, 1.0)):
        sel = [poly[i] for i in np.flatnonzero(level == lv)]
        if sel:
            cv2.polylines(layer, sel, False, val, thickness=1, lineType=cv2.LINE_AA, shift=2)
    np.maximum(a, np.clip(layer, 0, 1), out=a)


def _add_pole(rng: np.random.Generator, a: np.ndarray, ss: int) -> None:
    """A thin straight structure (antenna, pole, rope) attached to the object, 1-4 px wide."""
    H, W = a.shape
    c = np.array([W / 2, H / 2])
    ang = rng.uniform(0, 2 * math.pi)
    length = rng.uniform(0.3, 0.5) * min(H, W)
    p1 = c + length * np.array([math.cos(ang), math.sin(ang)])
    thick = int(rng.integers(1, 4 * ss))
    cv2.line(a, tuple(np.round(c).astype(int)), tuple(np.round(p1).astype(int)), 1.0, thickness=max(1, thick),
             lineType=cv2.LINE_AA)


def _sprite(rng: np.random.Generator, h: int, w: int, d: float) -> tuple[np.ndarray, np.ndarray]:
    """Foreground sprite: (alpha [h, w], linear colour [h, w, 3]) centred in an h x w canvas."""
    ss = 2
    a, pts = _blob_alpha(rng, h, w, ss)
    if rng.random() < 0.15 + 0.6 * d:
        _add_strands(rng, a, pts, 0.3 + d, ss)
    if rng.random() < 0.1 + 0.3 * d:
        _add_pole(rng, a, ss)
    a = cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.1 + 0.5 * d:  # soft edge (defocus / fuzzy boundary)
        s = rng.uniform(0.5, 1.0 + 3.0 * d)
        a = cv2.GaussianBlur(a, (0, 0), s)
    if rng.random() < 0.1 + 0.4 * d:  # semi-transparent region (glass, smoke, thin cloth)
        hole = 0.5 + 0.5 * _smooth_noise(rng, h, w, rng.uniform(12, 48))[..., 0]
        hole = np.clip((hole - rng.uniform(0.3, 0.6)) * 4, 0, 1)
        a = a * (1 - hole * rng.uniform(0.3, 0.85))
    col = _texture(rng, h, w)
    col = col * rng.uniform(0.5, 2.0)  # exposure: scene-linear, may exceed 1
    return np.clip(a, 0, 1).astype(np.float32), col.astype(np.float32)


@dataclass
class _Motion:
    """Similarity transform over time (frame units): centre offset, rotation, log-scale; linear + jitter."""

    t0: np.ndarray
    v: np.ndarray
    acc: np.ndarray
    rot0: float
    rotv: float
    ls0: float
    lsv: float

    def at(self, t: float) -> tuple[float, float, float, float]:
        p = self.t0 + self.v * t + 0.5 * self.acc * t * t
        return float(p[0]), float(p[1]), self.rot0 + self.rotv * t, math.exp(self.ls0 + self.lsv * t)


def _random_motion(rng: np.random.Generator, d: float, speed: float, size: int) -> _Motion:
    sp = speed * d * size
    return _Motion(t0=rng.uniform(-0.12, 0.12, 2) * size * min(1.0, 0.3 + d),
                   v=rng.normal(0, 1, 2) * sp, acc=rng.normal(0, 1, 2) * sp * 0.2,
                   rot0=rng.uniform(-0.3, 0.3) * d, rotv=rng.normal(0, 0.06 * d),
                   ls0=rng.uniform(-0.25, 0.2), lsv=rng.normal(0, 0.03 * d))


def _maps(h: int, w: int, m: tuple[float, float, float, float], disp: np.ndarray | None,
          grid: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Sampling maps (frame pixel -> sprite pixel) for the inverse of a similarity about the centre."""
    tx, ty, rot, sc = m
    yy, xx = grid
    cx, cy = (w - 1) / 2, (h - 1) / 2
    x, y = xx - cx - tx, yy - cy - ty
    c, s = math.cos(-rot) / sc, math.sin(-rot) / sc
    mx = c * x - s * y + cx
    my = s * x + c * y + cy
    if disp is not None:
        mx = mx + disp[..., 0]
        my = my + disp[..., 1]
    return mx.astype(np.float32), my.astype(np.float32)


def _warp(img: np.ndarray, maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return cv2.remap(img, maps[0], maps[1], interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                     borderValue=0)


def _warp_reflect(img: np.ndarray, maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return cv2.remap(img, maps[0], maps[1], interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def make_clip(seed: int, *, frames: int = 8, size: tuple[int, int] = (256, 256), difficulty: float = 1.0,
              static_object: bool = False) -> Clip:
    """A deterministic synthetic clip. ``size`` is (height, width); ``difficulty`` in [0, 1].

    ``static_object`` gives the paper's stage-1 data: a rigid single-image composite moved by affine
    motion only (no deformation, occluder or lighting change).
    """
    h, w = int(size[0]), int(size[1])
    if frames < 1 or h < 16 or w < 16:
        raise ValueError(f"make_clip: need frames >= 1 and size >= 16x16, got frames={frames} size={size}")
    d = float(np.clip(difficulty, 0.0, 1.0))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 8]))
    grid = tuple(np.mgrid[0:h, 0:w].astype(np.float32))

    alpha_s, col_s = _sprite(rng, h, w, d)
    # Background: a bigger canvas so camera motion never runs off it (reflect padding as a last resort).
    bg_tex = _texture(rng, h, w, photo_p=0.75) * rng.uniform(0.4, 1.6)
    if rng.random() < 0.3 * d:  # camouflage: background shares the foreground's look
        bg_tex = 0.5 * bg_tex + 0.5 * col_s[:, ::-1] * rng.uniform(0.7, 1.3)
    obj = _random_motion(rng, d, 0.025, min(h, w))
    cam = _random_motion(rng, d if not static_object else d * 0.5, 0.012, min(h, w))
    cam.ls0 = rng.uniform(0.0, 0.15)  # zoomed in a little: fewer reflected borders
    cam.rot0 *= 0.3
    cam.rotv *= 0.3

    deform = None
    if not static_object and rng.random() < 0.2 + 0.6 * d:  # smooth non-rigid deformation, changing over time
        amp = rng.uniform(1.0, 2.0 + 5.0 * d)
        deform = (amp * _smooth_noise(rng, h, w, 64, 2), amp * _smooth_noise(rng, h, w, 64, 2))

    occ = None
    if not static_object and rng.random() < 0.35 * d:
        oa, oc = _sprite(rng, h, w, 0.2)
        oa = cv2.resize(oa, None, fx=0.6, fy=0.6)
        pad_y, pad_x = (h - oa.shape[0]) // 2, (w - oa.shape[1]) // 2
        oa = cv2.copyMakeBorder(oa, pad_y, h - oa.shape[0] - pad_y, pad_x, w - oa.shape[1] - pad_x,
                                cv2.BORDER_CONSTANT, value=0)
        start = rng.uniform(-0.7, 0.7, 2) * (w, h)
        vel = -np.sign(start) * rng.uniform(0.04, 0.12, 2) * (w, h)
        occ = (oa, oc, _Motion(start, vel, np.zeros(2), 0.0, rng.normal(0, 0.05), 0.0, 0.0))

    light = np.ones(frames, np.float32)
    if not static_object and rng.random() < 0.4 * d:
        kind = rng.integers(0, 2)
        t = np.arange(frames, dtype=np.float32)
        if kind == 0:
            light = np.exp(np.linspace(0, rng.normal(0, 0.4), frames)).astype(np.float32)
        else:
            light = (1 + rng.uniform(0.05, 0.25) * np.sin(t * rng.uniform(0.5, 2.0))).astype(np.float32)

    blur_p = 0.5 * d
    sub = int(rng.integers(3, 6)) if rng.random() < blur_p else 1
    shutter = rng.uniform(0.5, 1.5)

    plate = np.empty((frames, h, w, 3), np.float32)
    alpha = np.empty((frames, h, w), np.float32)
    fg = np.empty((frames, h, w, 3), np.float32)
    bg = np.empty((frames, h, w, 3), np.float32)
    # Premultiplied RGBA sprites: one remap warps colour and alpha together, and premultiplied
    # colour is what integrates correctly over a shutter interval.
    sprite = np.dstack([col_s * alpha_s[..., None], alpha_s])
    occ_sprite = None if occ is None else np.dstack([occ[1] * occ[0][..., None], occ[0]])
    for f in range(frames):
        acc_pf = np.zeros((h, w, 3), np.float32)  # visible premultiplied target colour
        acc_a = np.zeros((h, w), np.float32)  # visible target alpha
        acc_bg = np.zeros((h, w, 3), np.float32)
        acc_o = np.zeros((h, w, 3), np.float32)  # occluder colour over (target over bg) remainder
        for s in range(sub):
            t = f + (shutter * ((s + 0.5) / sub - 0.5) if sub > 1 else 0.0)
            disp = None
            if deform is not None:
                ph = 2 * math.pi * t / max(frames, 4)
                disp = deform[0] * math.cos(ph) + deform[1] * math.sin(ph)
            rgba = _warp(sprite, _maps(h, w, obj.at(t), disp, grid))
            a, pc = rgba[..., 3], rgba[..., :3]
            b = _warp_reflect(bg_tex, _maps(h, w, cam.at(t), None, grid))
            if occ_sprite is not None:  # the occluder cuts the target's alpha and covers the plate
                orgba = _warp(occ_sprite, _maps(h, w, occ[2].at(t), None, grid))
                keep = 1 - orgba[..., 3:4]
                acc_o += orgba[..., :3]
                acc_pf += pc * keep
                acc_a += a * keep[..., 0]
                acc_bg += b * keep * (1 - a[..., None])
            else:
                acc_pf += pc
                acc_a += a
                acc_bg += b * (1 - a[..., None])
        inv = 1.0 / sub
        plate[f] = (acc_pf + acc_bg + acc_o) * (inv * light[f])
        alpha[f] = acc_a * inv
        # Un-premultiplied foreground colour where alpha > 0; the clean plate is the background texture.
        fg[f] = np.where(acc_a[..., None] > 1e-4, acc_pf / np.maximum(acc_a[..., None], 1e-4), 0) * light[f]
        bg[f] = _warp_reflect(bg_tex, _maps(h, w, cam.at(f), None, grid)) * light[f]
    np.clip(alpha, 0, 1, out=alpha)
    return Clip(name=f"synth_{seed}", plate=plate, alpha=alpha, fg=fg, bg=bg)


def coarse_roto(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An artist's quick roto of ``alpha`` [H, W]: binary, holes and strands closed, usually a bit loose.

    Threshold at 0.5, open/close with a small kernel, then dilate a few pixels (sometimes erode), so the
    model learns to turn a coarse roto into a soft matte rather than to copy the roto.
    """
    m = (alpha > rng.uniform(0.3, 0.7)).astype(np.uint8)
    k = int(rng.integers(1, 4)) * 2 + 1
    ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, ker)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, ker)
    r = int(rng.integers(0, 5))
    if r:
        ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        m = cv2.erode(m, ker) if rng.random() < 0.25 else cv2.dilate(m, ker)
    if m.sum() == 0:  # a roto always marks something
        m = (alpha > 0.5).astype(np.uint8) if (alpha > 0.5).any() else (alpha >= alpha.max()).astype(np.uint8)
    return m.astype(np.float32)
