"""Plate resolution <-> working resolution: what the network sees and how its alpha comes back.

Down: the display-referred plate is resized (area filter, the picture's aspect kept: an anamorphic plate's pixels
desqueezed) so its long side is ``working_size``
(a smaller plate is enlarged, by at most ``MAX_UPSCALE``), then padded on the right and bottom by edge
replication to a multiple of 16, as the network's strides need. Up: the padding is cropped and the alpha is
brought to the plate's size with a fast guided filter (He & Sun 2015): a local linear model
alpha ~ a * guide + b is fitted at working resolution, its coefficients are resized bilinearly and applied to
the full-resolution guide, so matte edges follow the plate's own image instead of a blurry bilinear zoom.

Why small plates are enlarged: upscaling adds no detail, but the network reads memory at 1/16, 1/8 and 1/4 of
what it is given, and an object a few dozen pixels across is a few cells at 1/16. On the validation shots
(480x270) the shipped network scored better run at twice the plate's size (model card, "Session 18":
bilinear enlargement or an area-averaged way back scored no better there). A plate at or above the
working size computes exactly what it did before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vom_plugin import import_cv2

cv2 = import_cv2()
MULTIPLE = 16


@dataclass(frozen=True)
class Geometry:
    """Sizes are (width, height). ``size`` is the resized image, ``padded`` what the network gets."""

    plate: tuple[int, int]
    size: tuple[int, int]
    padded: tuple[int, int]

    @property
    def scaled(self) -> bool:
        return self.size != self.plate

    @property
    def pad(self) -> tuple[int, int]:
        """(right, bottom) padding in pixels."""
        return self.padded[0] - self.size[0], self.padded[1] - self.size[1]


# How much a plate smaller than the working size is enlarged at most (chosen on the validation shots: model card,
# "Session 18"); 1 would never enlarge.
MAX_UPSCALE = 2.0


def geometry(width: int, height: int, working_size: int, long_side: float | None = None,
             pixel_aspect: float = 1.0) -> Geometry:
    """The network's sizes for a picture of ``width`` x ``height`` pixels of ``pixel_aspect`` (width / height of a
    pixel), scaled so that ``long_side`` (the display window's, desqueezed, when the picture takes in a plate's
    overscan too; the picture's own when None) is ``working_size``: overscan adds pixels around the frame, it never
    takes detail from it. An anamorphic plate is desqueezed for the network, which learnt objects of their own
    shape (QA: a 2x squeezed plate matted as it was stored came out at IoU 0.88 against 0.95 desqueezed); its
    alpha is squeezed back to the plate's pixels on the way up."""
    scale = min(MAX_UPSCALE, working_size / (long_side or max(width * pixel_aspect, height)))
    w = max(1, round(width * pixel_aspect * scale))
    h = max(1, round(height * scale))
    pw = -(-w // MULTIPLE) * MULTIPLE
    ph = -(-h // MULTIPLE) * MULTIPLE
    return Geometry(plate=(width, height), size=(w, h), padded=(pw, ph))


def _resize(img: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    if (img.shape[1], img.shape[0]) == size:
        return img
    return cv2.resize(img, size, interpolation=interpolation)


def _pad(img: np.ndarray, geo: Geometry) -> np.ndarray:
    right, bottom = geo.pad
    if not (right or bottom):
        return img
    widths = [(0, bottom), (0, right)] + [(0, 0)] * (img.ndim - 2)
    return np.pad(img, widths, mode="edge")


def image_to_working(display: np.ndarray, geo: Geometry) -> np.ndarray:
    """(H, W, 3) display-referred float32 at plate size -> (ph, pw, 3) float32 in [0, 1], padded.

    Pixel-interleaved as it comes: the network takes its images channels-last, which is this memory viewed
    as (3, ph, pw) (``torch.from_numpy(x).permute(2, 0, 1)``), with no copy."""
    small = _resize(np.ascontiguousarray(display, dtype=np.float32), geo.size, cv2.INTER_AREA)
    out = _pad(small, geo)
    if np.shares_memory(out, display):  # neither resized nor padded: the caller's frame, never written
        return np.clip(out, 0.0, 1.0)
    return np.clip(out, 0.0, 1.0, out=out)


def mask_to_working(mask: np.ndarray, geo: Geometry) -> np.ndarray:
    """(H, W) {0, 1} roto at plate size -> (1, ph, pw) {0, 1}: area-resized then re-binarised at 0.5."""
    small = _resize(np.ascontiguousarray(mask, dtype=np.float32), geo.size, cv2.INTER_AREA)
    return (_pad(small, geo) >= 0.5).astype(np.float32)[None]


def _box(img: np.ndarray, r: int) -> np.ndarray:
    # Mean over a (2r+1)^2 window; border handled by reflection so edge pixels get full windows.
    return cv2.blur(img, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def guided_upsample(alpha_lr: np.ndarray, guide_lr: np.ndarray, guide_hr: np.ndarray, *,
                    radius: int = 2, eps: float = 1e-4) -> np.ndarray:
    """Fast guided filter upsampling of a (h, w) alpha with a grey guide at low and full resolution.

    Both guides are (h, w) / (H, W) float32; the returned alpha is (H, W) float32 clipped to [0, 1]. The
    arithmetic runs in place where a result is not read again: the same values as the plain expressions, in
    under half the time (it runs for every frame of every render, a re-render's too).
    """
    x, y = np.asarray(guide_lr, np.float32), np.asarray(alpha_lr, np.float32)
    mean_x, mean_y = _box(x, radius), _box(y, radius)
    var_x = _box(x * x, radius)
    var_x -= mean_x * mean_x
    cov_xy = _box(x * y, radius)
    cov_xy -= mean_x * mean_y
    var_x += np.float32(eps)
    a = np.divide(cov_xy, var_x, out=cov_xy)
    b = mean_y
    b -= a * mean_x
    # Smooth the coefficients as the guided filter does, then lift them: they vary slowly, the guide does not.
    size = (guide_hr.shape[1], guide_hr.shape[0])
    out = cv2.resize(_box(a, radius), size, interpolation=cv2.INTER_LINEAR)
    out *= np.asarray(guide_hr, np.float32)
    out += cv2.resize(_box(b, radius), size, interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0, out=out)


def grey(display: np.ndarray) -> np.ndarray:
    """The mean of the three channels, float32 (H, W). Summed plane by plane in the order numpy's ``mean`` over
    the last axis takes them, (R + G) + B, then divided by 3: the same values, much faster (numpy reduces a
    3-wide last axis pixel by pixel)."""
    rgb = np.asarray(display, dtype=np.float32)
    out = np.add(rgb[..., 0], rgb[..., 1])
    out += rgb[..., 2]
    out /= np.float32(3)
    return out


def alpha_to_plate(alpha: np.ndarray, geo: Geometry, display: np.ndarray) -> np.ndarray:
    """(ph, pw) working alpha -> (H, W) plate alpha; ``display`` is the full-res display-referred plate."""
    w, h = geo.size
    crop = np.ascontiguousarray(alpha[:h, :w], dtype=np.float32)
    if not geo.scaled:
        return np.clip(crop, 0.0, 1.0)
    guide_hr = grey(display)
    guide_lr = _resize(guide_hr, geo.size, cv2.INTER_AREA)
    return guided_upsample(crop, guide_lr, guide_hr)
