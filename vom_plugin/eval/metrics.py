"""Per-frame matting error measures, as the public reference evaluations compute them.

Every function takes float alphas in [0, 1] of shape (H, W) and an optional boolean ``mask`` (H, W) that
restricts the sum/mean to a region (the unknown band, see ``regions.py``); ``mask=None`` is the whole
frame. They return the RAW value (no x1e3 and the like): the scalings of each reporting convention are
applied in one place, ``scores.py``, so a number here can be checked by hand.

Notation: p = prediction, g = ground truth, M = the region (all pixels when mask is None), N = |M|.

- ``sad``  = sum_M |p - g|                                  (DIM; tables print it /1e3)
- ``mad``  = sum_M |p - g| / N                              (RVM's MAD, TCVOM's "mSAD"; tables x1e3)
- ``mse``  = sum_M (p - g)^2 / N                            (tables x1e3)
- ``ssda`` = sqrt(sum_M (p - g)^2)                          (TCVOM; printed raw)
- ``grad`` = sum_M (|G * p'| - |G * g'|)^2                  (tables /1e3), p' and g' min-max normalised to
  [0, 1] first (RVM; a constant image normalises to 0), G the sigma 1.4 Gaussian-derivative pair of
  ``gaussian_derivative_kernels`` applied with replicated borders, |.| the gradient magnitude.
- ``conn`` = sum_M |phi(p) - phi(g)|                        (tables /1e3), phi(x) = 1 - d * [d >= theta],
  d = x - l, l the threshold (step 0.1) just below which a pixel leaves the largest 4-connected component of
  {p >= t} & {g >= t} (Rhemann et al.; theta 0.15).
- ``dtssd`` = sqrt(sum_M ((p1 - p0) - (g1 - g0))^2 / D), D = N (``normalise=True``, RVM, tables x1e2) or
  D = 1 (TCVOM over the band, printed raw).
- ``messddt`` = sum_M0 |e0(x) - e1(x + f(x))| with e = (p - g)^2 and f the Farneback flow from g0 to g1
  (DVM/TCVOM): the error should move with the object, not flicker. Warped lookup is nearest (rounded flow,
  clamped to the frame); the region of frame 1 is looked up the same way.

Two measures of what a compositor sees first (vom's own, not from a paper; both lower is better, tables x1e3):
- ``core``  = mean over C of (1 - p), C = the solid interior: g >= 0.999 eroded by ``SOLID_MARGIN`` px
  (a solid object that comes out at 0.8 scores 200);
- ``clear`` = mean over B of p, B = the clear background: g <= 0.001 farther than ``SOLID_MARGIN`` px from
  any pixel with g > 0.001 (a haze of 0.05 around the object scores 50).
  An empty C or B is not defined (NaN: left out of a clip's mean, with a note), not a perfect 0.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from vom_plugin.errors import InputError

GRAD_SIGMA = 1.4
CONN_STEP = 0.1
CONN_THETA = 0.15
# cv2.calcOpticalFlowFarneback arguments of DVM's evaluation: pyr_scale, levels, winsize, iterations,
# poly_n, poly_sigma (flags = OPTFLOW_FARNEBACK_GAUSSIAN), run on 8-bit GT alphas.
FARNEBACK_PARAMS = (0.5, 5, 10, 2, 7, 1.5)
SOLID_MARGIN = 5


def _eroded(binary: np.ndarray, radius: int) -> np.ndarray:
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.erode(binary.astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)


def core(pred: np.ndarray, gt: np.ndarray, margin: int = SOLID_MARGIN) -> float:
    """Mean shortfall from 1 over the solid interior of the GT (see the module docstring); NaN where the GT has
    none (not a perfect 0, which pulled a clip's mean down)."""
    p, g = check_pair(pred, gt)
    inside = _eroded(g >= 0.999, margin)
    return float((1.0 - p[inside].astype(np.float64)).mean()) if inside.any() else math.nan


def clear(pred: np.ndarray, gt: np.ndarray, margin: int = SOLID_MARGIN) -> float:
    """Mean alpha over the clear background, away from the object (see the module docstring); NaN where the GT
    has none."""
    p, g = check_pair(pred, gt)
    outside = _eroded(g <= 0.001, margin)
    return float(p[outside].astype(np.float64).mean()) if outside.any() else math.nan


def check_pair(pred: np.ndarray, gt: np.ndarray, what: str = "prediction") -> tuple[np.ndarray, np.ndarray]:
    """float64 copies of a (pred, gt) pair after checking shapes and finiteness (InputError otherwise)."""
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.ndim != 2 or p.shape != g.shape:
        raise InputError(f"{what} has shape {p.shape}, ground truth {g.shape}; expected the same (H, W)")
    for name, a in ((what, p), ("ground truth", g)):
        bad = ~np.isfinite(a)
        if bad.any():
            y, x = np.argwhere(bad)[0]
            raise InputError(f"{name} has {int(bad.sum())} NaN/Inf pixel(s) (first at x={x}, y={y}); "
                             "expected finite alpha values")
    return p, g


def _region(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if mask is None:
        return np.ones(shape, dtype=bool)
    m = np.asarray(mask, dtype=bool)
    if m.shape != shape:
        raise InputError(f"region mask has shape {m.shape}; expected {shape}")
    return m


def sad(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    p, g = check_pair(pred, gt)
    return float(np.abs(p - g)[_region(mask, p.shape)].sum())


def mad(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean |p - g| over the region; 0.0 for an empty region (nothing to get wrong)."""
    p, g = check_pair(pred, gt)
    m = _region(mask, p.shape)
    return float(np.abs(p - g)[m].mean()) if m.any() else 0.0


def mse(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    p, g = check_pair(pred, gt)
    m = _region(mask, p.shape)
    return float(((p - g) ** 2)[m].mean()) if m.any() else 0.0


def ssda(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    p, g = check_pair(pred, gt)
    return float(math.sqrt(((p - g) ** 2)[_region(mask, p.shape)].sum()))


@lru_cache(maxsize=4)
def gaussian_derivative_kernels(sigma: float = GRAD_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """(hx, hy): hx[i, j] = gauss(i - h) * dgauss(j - h), L2-normalised, hy = hx^T (DIM/GCA/RVM).

    h = ceil(sigma * sqrt(-2 log(sqrt(2 pi) sigma 0.01))): the kernel reaches out to where the Gaussian has
    fallen to 1% of its peak scale; for sigma 1.4 the kernel is 9x9 (h = 4).
    """
    h = int(math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * 1e-2))))
    r = np.arange(-h, h + 1, dtype=np.float64)
    gauss = np.exp(-(r**2) / (2.0 * sigma**2)) / (sigma * math.sqrt(2.0 * math.pi))
    dgauss = -r * gauss / sigma**2
    hx = np.outer(gauss, dgauss)
    hx /= np.sqrt((hx**2).sum())
    hx.setflags(write=False)
    hy = hx.T.copy()
    hy.setflags(write=False)
    return hx, hy


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    # cv2.normalize(NORM_MINMAX) maps a constant image to the low bound; the reference relies on that.
    return (x - lo) / (hi - lo) if hi - lo > np.finfo(np.float64).eps else np.zeros_like(x)


def gradient_magnitude(alpha: np.ndarray, sigma: float = GRAD_SIGMA) -> np.ndarray:
    hx, hy = gaussian_derivative_kernels(sigma)
    a = np.asarray(alpha, dtype=np.float64)
    gx = cv2.filter2D(a, cv2.CV_64F, hx, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.filter2D(a, cv2.CV_64F, hy, borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(gx**2 + gy**2)


def grad(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, sigma: float = GRAD_SIGMA) -> float:
    p, g = check_pair(pred, gt)
    err = (gradient_magnitude(_minmax(p), sigma) - gradient_magnitude(_minmax(g), sigma)) ** 2
    return float(err[_region(mask, p.shape)].sum())


def _largest_component(binary: np.ndarray) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=4)
    if count <= 1:  # label 0 is the background: no component at all
        return np.zeros(binary.shape, dtype=bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def conn(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None,
         step: float = CONN_STEP, theta: float = CONN_THETA) -> float:
    p, g = check_pair(pred, gt)
    thresholds = np.arange(0.0, 1.0 + step, step)
    level = np.full(p.shape, -1.0)
    for i in range(1, len(thresholds)):
        omega = _largest_component((p >= thresholds[i]) & (g >= thresholds[i]))
        # a pixel's level is the last threshold at which it still belonged to the main component
        leaving = (level == -1) & ~omega
        level[leaving] = thresholds[i - 1]
    level[level == -1] = 1.0
    dp, dg = p - level, g - level
    phi_p = 1.0 - dp * (dp >= theta)
    phi_g = 1.0 - dg * (dg >= theta)
    return float(np.abs(phi_p - phi_g)[_region(mask, p.shape)].sum())


def dtssd(pred0: np.ndarray, pred1: np.ndarray, gt0: np.ndarray, gt1: np.ndarray,
          mask: np.ndarray | None = None, *, normalise: bool = True) -> float:
    """Temporal change error between frames 0 and 1; ``normalise`` divides by N inside the root (RVM)."""
    p0, g0 = check_pair(pred0, gt0)
    p1, g1 = check_pair(pred1, gt1)
    if p0.shape != p1.shape:
        raise InputError(f"consecutive frames differ in size: {p0.shape} then {p1.shape}")
    m = _region(mask, p0.shape)
    total = (((p1 - p0) - (g1 - g0)) ** 2)[m].sum()
    if normalise:
        total = total / m.sum() if m.any() else 0.0
    return float(math.sqrt(total))


def farneback_flow(gt0: np.ndarray, gt1: np.ndarray) -> np.ndarray:
    """Dense flow (H, W, 2: dx, dy) from gt0 to gt1, both alphas in [0, 1] quantised to 8 bits as DVM does."""
    a = np.clip(np.rint(np.asarray(gt0, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    b = np.clip(np.rint(np.asarray(gt1, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    return cv2.calcOpticalFlowFarneback(a, b, None, *FARNEBACK_PARAMS, cv2.OPTFLOW_FARNEBACK_GAUSSIAN)


def messddt(pred0: np.ndarray, pred1: np.ndarray, gt0: np.ndarray, gt1: np.ndarray,
            mask0: np.ndarray | None = None, mask1: np.ndarray | None = None,
            flow: np.ndarray | None = None) -> float:
    """sum over region 0 of |e0(x) - e1(x + f(x))|, e = (p - g)^2; ``flow`` defaults to farneback_flow(g0, g1)."""
    p0, g0 = check_pair(pred0, gt0)
    p1, g1 = check_pair(pred1, gt1)
    h, w = p0.shape
    if p1.shape != (h, w):
        raise InputError(f"consecutive frames differ in size: {p0.shape} then {p1.shape}")
    f = farneback_flow(g0, g1) if flow is None else np.asarray(flow)
    ys, xs = np.mgrid[0:h, 0:w]
    xt = np.clip(xs + np.rint(f[..., 0]).astype(np.int64), 0, w - 1)
    yt = np.clip(ys + np.rint(f[..., 1]).astype(np.int64), 0, h - 1)
    m0 = _region(mask0, (h, w))
    m1 = _region(mask1, (h, w))[yt, xt]
    e0 = (p0 - g0) ** 2 * m0
    e1 = ((p1 - g1) ** 2)[yt, xt] * m1
    return float(np.abs(e0 - e1)[m0].sum())
