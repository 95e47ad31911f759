"""The synthetic clip generator: determinism, exact linear compositing, curriculum, coarse roto."""

from __future__ import annotations

import numpy as np
import pytest

from vom_plugin.train.synth import coarse_roto, make_clip


def test_same_seed_same_clip_other_seed_other_clip():
    a = make_clip(7, frames=3, size=(64, 80), difficulty=1.0)
    b = make_clip(7, frames=3, size=(64, 80), difficulty=1.0)
    c = make_clip(8, frames=3, size=(64, 80), difficulty=1.0)
    assert np.array_equal(a.plate, b.plate) and np.array_equal(a.alpha, b.alpha)
    assert not np.array_equal(a.plate, c.plate)


def test_shapes_types_and_ranges():
    c = make_clip(3, frames=4, size=(48, 64), difficulty=0.7)
    assert c.plate.shape == (4, 48, 64, 3) and c.fg.shape == c.plate.shape and c.bg.shape == c.plate.shape
    assert c.alpha.shape == (4, 48, 64)
    for x in (c.plate, c.alpha, c.fg, c.bg):
        assert x.dtype == np.float32 and np.isfinite(x).all()
    assert c.alpha.min() >= 0.0 and c.alpha.max() <= 1.0
    assert (c.alpha > 0.5).any() and (c.alpha < 0.5).any()  # an object and a background in view


def test_easy_static_clip_is_a_linear_composite():
    # difficulty 0, rigid: no blur, occluder, lighting change or motion, so plate = a*fg + (1-a)*bg exactly.
    c = make_clip(11, frames=3, size=(64, 64), difficulty=0.0, static_object=True)
    a = c.alpha[..., None]
    inside = c.alpha > 1e-3
    comp = a * c.fg + (1 - a) * c.bg
    assert np.allclose(c.plate[inside], comp[inside], atol=1e-4)
    assert np.allclose(c.plate[~inside], c.bg[~inside], atol=1e-3)
    assert np.array_equal(c.alpha[0], c.alpha[-1])  # nothing moves at difficulty 0


def test_hard_clips_move_and_have_soft_alpha():
    moved, soft = 0, []
    for seed in range(6):
        c = make_clip(seed, frames=4, size=(96, 96), difficulty=1.0)
        moved += int(np.abs(c.alpha[0] - c.alpha[-1]).mean() > 1e-3)
        soft.append(((c.alpha > 0.05) & (c.alpha < 0.95)).mean())
    assert moved >= 5
    # A hard clip carries far more partial alpha than a sharp-edged easy one.
    easy = make_clip(0, frames=1, size=(96, 96), difficulty=0.0)
    assert np.mean(soft) > 3 * ((easy.alpha > 0.05) & (easy.alpha < 0.95)).mean()


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="frames"):
        make_clip(0, frames=0)
    with pytest.raises(ValueError, match="size"):
        make_clip(0, size=(8, 8))


def test_coarse_roto_is_binary_and_covers_the_object():
    c = make_clip(5, frames=1, size=(96, 96), difficulty=0.8)
    rng = np.random.default_rng(0)
    rotos = [coarse_roto(c.alpha[0], rng) for _ in range(8)]
    core = c.alpha[0] > 0.9
    for r in rotos:
        assert r.dtype == np.float32 and set(np.unique(r)) <= {0.0, 1.0}
        assert r.sum() > 0
        assert (r[core] > 0).mean() > 0.8  # an artist's roto marks the solid body
    # it is not just the thresholded alpha: at least one roto differs (looser or tighter)
    assert any(not np.array_equal(r, (c.alpha[0] > 0.5).astype(np.float32)) for r in rotos)


def test_coarse_roto_never_empty():
    alpha = np.zeros((32, 32), np.float32)
    alpha[10, 10] = 0.3  # only a faint pixel: the roto still marks something
    assert coarse_roto(alpha, np.random.default_rng(1)).sum() >= 1
