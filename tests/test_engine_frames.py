"""engine.frames: the plate <-> working-resolution conversions a render runs every frame."""

from __future__ import annotations

import numpy as np

from vom_plugin.engine import frames as fr


def test_grey_is_numpys_channel_mean_to_the_bit() -> None:
    rng = np.random.default_rng(7)
    display = rng.random((37, 53, 3), dtype=np.float32) * 1.5
    display[0, :3] = [[0.1, 0.2, 0.3], [1e-8, 1.0, 3.0], [0.0, 0.0, 0.0]]  # values where the order shows
    want = display.mean(axis=2, dtype=np.float32)
    got = fr.grey(display)
    assert got.dtype == np.float32 and got.shape == (37, 53) and got.flags["C_CONTIGUOUS"]
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    # a view (a crop of a larger plate) gives the same as its copy
    assert np.array_equal(fr.grey(display[5:20, 7:40]), want[5:20, 7:40])


def test_alpha_to_plate_lifts_a_working_alpha_onto_the_plate_edges() -> None:
    geo = fr.geometry(96, 64, 192)  # a small plate enlarged 2x for the network
    assert geo.scaled and geo.size == (192, 128)
    display = np.zeros((64, 96, 3), np.float32)
    display[:, 40:] = 1.0  # the plate's edge at x = 40
    alpha = np.zeros((geo.padded[1], geo.padded[0]), np.float32)
    alpha[:, 80:] = 1.0  # the same edge at working size
    out = fr.alpha_to_plate(alpha, geo, display)
    assert out.shape == (64, 96) and out.dtype == np.float32
    assert np.all(out[:, :38] < 0.02) and np.all(out[:, 42:] > 0.98)


def test_the_guided_upsampling_is_the_guided_filter_of_its_formula() -> None:
    """guided_upsample computes in place for speed: its values are the plain expressions' of He & Sun's fast
    guided filter, bit for bit (a render's mattes do not change with it), enlarging, reducing and tiny."""
    import cv2

    def plain(alpha, guide_lr, guide_hr, radius):
        def box(im):
            return cv2.blur(im, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)
        mean_x, mean_y = box(guide_lr), box(alpha)
        a = (box(guide_lr * alpha) - mean_x * mean_y) / (box(guide_lr * guide_lr) - mean_x * mean_x + 1e-4)
        b = mean_y - a * mean_x
        size = (guide_hr.shape[1], guide_hr.shape[0])
        a_hr = cv2.resize(box(a), size, interpolation=cv2.INTER_LINEAR)
        return np.clip(a_hr * guide_hr + cv2.resize(box(b), size, interpolation=cv2.INTER_LINEAR), 0.0, 1.0)

    rng = np.random.default_rng(1)
    for hr, lr in (((48, 86), (54, 96)), ((54, 96), (27, 48)), ((9, 17), (16, 32))):
        guide_hr = rng.random(hr, dtype=np.float32)
        guide_lr = cv2.resize(guide_hr, lr[::-1], interpolation=cv2.INTER_AREA)
        alpha = rng.random(lr, dtype=np.float32)
        kept = (alpha.copy(), guide_lr.copy(), guide_hr.copy())
        for radius in (1, 2, 4):
            out = fr.guided_upsample(alpha, guide_lr, guide_hr, radius=radius)
            for before, now in zip(kept, (alpha, guide_lr, guide_hr), strict=True):  # the inputs untouched
                np.testing.assert_array_equal(before, now)
            assert out.dtype == np.float32 and out.shape == hr
            np.testing.assert_array_equal(out, plain(alpha, guide_lr, guide_hr, radius))
            assert not np.shares_memory(out, guide_hr) and not np.shares_memory(out, alpha)
