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
