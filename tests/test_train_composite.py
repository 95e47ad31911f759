"""Training-time compositing: linear-light maths, the camera's noise, defocus and shake, determinism, ranges;
the background photograph bank."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vom_plugin.train import backgrounds as B
from vom_plugin.train import composite as K

QUIET = {"fg_to_bg": 1.0, "occ_to_bg": 1.0, "exposure": 1.0, "white_balance": [1.0, 1.0, 1.0], "vignette": 0.0,
         "defocus": 0.0, "shake": 0.0, "shot": 0.0, "read": 0.0, "grain": 0.0, "chroma": 0.3}


def _disc_rgba(t: int = 3, size: int = 64, radius: float = 14.0, colour=(0.6, 0.3, 0.1)) -> np.ndarray:
    """Premultiplied RGBA frames of an anti-aliased disc moving right by 2 px a frame."""
    out = np.zeros((t, size, size, 4), np.float32)
    for i in range(t):
        m = np.zeros((size * 4, size * 4), np.uint8)
        cv2.circle(m, (int((size / 2 + 2 * i) * 4), size * 2), int(radius * 4), 255, -1, cv2.LINE_AA)
        a = cv2.resize(m.astype(np.float32) / 255, (size, size), interpolation=cv2.INTER_AREA)
        out[i, ..., 3] = a
        out[i, ..., :3] = a[..., None] * np.asarray(colour, np.float32)
    return out


def _photo(seed: int = 0, h: int = 180, w: int = 240) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.uniform(0.02, 0.9, (9, 12, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(base, 0.01, None)


def test_over_is_premultiplied_linear_light():
    tgt = np.array([[0.3, 0.2, 0.1, 0.5]], np.float32)
    occ = np.array([[0.1, 0.1, 0.1, 0.25]], np.float32)
    bg = np.array([[1.0, 0.5, 0.0]], np.float32)
    np.testing.assert_allclose(K.over(tgt, None, bg), [[0.8, 0.45, 0.1]], rtol=1e-6)
    np.testing.assert_allclose(K.over(tgt, occ, bg), [[0.65, 0.425, 0.2]], rtol=1e-6)
    # Monte-Carlo noise may make the two coverages sum past 1: the background never goes negative.
    full = np.array([[0.0, 0.0, 0.0, 0.7]], np.float32)
    np.testing.assert_allclose(K.over(full, np.array([[0, 0, 0, 0.4]], np.float32), bg), [[0, 0, 0]])
    np.testing.assert_allclose(K.unpremultiply(tgt), [[0.6, 0.4, 0.2]], rtol=1e-6)
    assert np.all(K.unpremultiply(np.zeros((1, 4), np.float32)) == 0)


def test_disc_defocus_keeps_energy_and_flat_fields():
    k = K.disc_kernel(3.3)
    assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert abs(float(k.sum()) - 1) < 1e-5 and float(k[k.shape[0] // 2, k.shape[0] // 2]) == float(k.max())
    flat = np.full((40, 40, 3), 0.37, np.float32)
    np.testing.assert_allclose(K.defocus(flat, 4.0), flat, rtol=1e-5)
    spot = np.zeros((41, 41, 3), np.float32)
    spot[20, 20] = 100.0  # a highlight spreads into a disc and keeps its energy (linear light)
    blurred = K.defocus(spot, 5.0)
    assert abs(float(blurred.sum()) - 300.0) < 1e-2
    assert float(blurred[20, 24, 0]) > 0.5 and abs(float(blurred[20, 27, 0])) < 1e-6
    assert K.defocus(spot, 0.1) is spot


def test_sensor_noise_variance_follows_signal():
    rng = np.random.default_rng(0)
    plate = np.concatenate([np.full((1, 64, 128, 3), 0.05, np.float32), np.full((1, 64, 128, 3), 0.8, np.float32)])
    n = K.sensor_noise(plate, rng, shot=0.004, read=0.003, grain=0.0, chroma=0.4)
    for i, level in enumerate((0.05, 0.8)):
        want = np.sqrt(0.004 * level + 0.003 ** 2)
        assert abs(float(n[i].std()) / want - 1) < 0.08
        assert abs(float(n[i].mean())) < want * 0.05
    grainy = K.sensor_noise(plate, np.random.default_rng(1), shot=0.004, read=0.003, grain=1.0, chroma=0.4)
    # Grain: neighbouring pixels correlate; overall variance is kept.
    assert np.corrcoef(grainy[1, :, :-1, 0].ravel(), grainy[1, :, 1:, 0].ravel())[0, 1] > 0.5
    assert abs(float(n.std()) / float(grainy.std()) - 1) < 0.25
    # Shared (luma) noise: channels correlate when chroma is low.
    mono = K.sensor_noise(plate, np.random.default_rng(2), shot=0.0, read=0.01, grain=0.0, chroma=0.1)
    assert np.corrcoef(mono[..., 0].ravel(), mono[..., 1].ravel())[0, 1] > 0.9
    zero = K.sensor_noise(plate, rng, shot=0.0, read=0.0, grain=0.5, chroma=0.5)
    assert np.all(zero == 0)


def test_quiet_camera_plate_is_the_linear_composite_of_its_layers():
    tgt = _disc_rgba()
    clip = K.composite_clip(tgt, None, _photo(), np.random.default_rng(3), size=(48, 48), camera=QUIET)
    assert clip.plate.shape == (3, 48, 48, 3) and clip.alpha.shape == (3, 48, 48)
    a = clip.alpha[..., None]
    np.testing.assert_allclose(clip.plate, a * clip.fg + (1 - a) * clip.bg, atol=2e-4)
    assert 0.0 < float(clip.alpha.max()) <= 1.0 and float(clip.alpha.min()) >= 0.0
    assert (clip.alpha == 1.0).any() and (clip.alpha == 0.0).any()


def test_camera_settings_apply_to_plate_fg_and_bg_alike():
    cam = dict(QUIET, exposure=2.0, white_balance=[1.3, 1.0, 0.7], vignette=0.3)
    tgt = _disc_rgba()
    base = K.composite_clip(tgt, None, _photo(), np.random.default_rng(4), size=(48, 48), camera=QUIET)
    lit = K.composite_clip(tgt, None, _photo(), np.random.default_rng(4), size=(48, 48), camera=cam)
    np.testing.assert_array_equal(base.alpha, lit.alpha)
    c = 24  # centre pixel: vignette ~0, so exposure x white balance exactly
    np.testing.assert_allclose(lit.bg[0, c, c] / base.bg[0, c, c], [2.6, 2.0, 1.4], rtol=2e-3)
    a = lit.alpha[..., None]
    np.testing.assert_allclose(lit.plate, a * lit.fg + (1 - a) * lit.bg, atol=1e-3)
    assert float(lit.bg[0, 0, 0].sum()) < float(base.bg[0, 0, 0].sum()) * 2.0 * 1.05  # the corner is vignetted


def test_noise_lands_on_the_plate_only_and_is_shared_by_fg_and_bg():
    cam = dict(QUIET, shot=0.004, read=0.004, grain=0.0)
    tgt = _disc_rgba(size=96, radius=30)
    clip = K.composite_clip(tgt, None, np.full((200, 200, 3), 0.2, np.float32), np.random.default_rng(5),
                            size=(96, 96), camera=dict(cam, fg_to_bg=1.0))
    a = clip.alpha[..., None]
    resid = clip.plate - (a * clip.fg + (1 - a) * clip.bg)
    inside, outside = resid[clip.alpha == 1.0], resid[clip.alpha == 0.0]
    assert inside.size > 1000 and outside.size > 1000
    assert 0.5 < float(inside.std()) / float(outside.std()) < 2.0, "matched noise on fg and bg"


def test_composite_is_deterministic_by_seed_and_ranges_are_sane():
    tgt = _disc_rgba(t=4)
    occ = np.zeros_like(tgt)
    occ[:, 20:30, :, 3] = 1.0  # a bar crossing the frame (it touches the render's borders)
    occ[:, 20:30, :, :3] = 0.2
    tgt[:, 20:30] = 0.0  # holdout: the target is cut where the bar covers it
    photo = _photo(7)
    runs = [K.composite_clip(tgt, occ, photo, np.random.default_rng(s), size=(64, 64), difficulty=1.0)
            for s in (11, 11, 12)]
    for f in ("plate", "alpha", "fg", "bg"):
        np.testing.assert_array_equal(getattr(runs[0], f), getattr(runs[1], f))
    assert not np.array_equal(runs[0].plate, runs[2].plate)
    for c in runs:
        assert all(np.isfinite(getattr(c, f)).all() for f in ("plate", "alpha", "fg", "bg"))
        assert float(c.alpha.min()) >= 0.0 and float(c.alpha.max()) <= 1.0
        assert float(c.bg.min()) >= 0.0 and float(c.fg.min()) >= 0.0
        assert float(c.plate.min()) > -0.2 and float(np.median(c.plate)) < 10.0
        assert c.plate.dtype == np.float32


def test_a_render_cut_by_its_frame_always_covers_the_output():
    tgt = np.zeros((2, 64, 64, 4), np.float32)
    tgt[..., 3] = 1.0  # an object bigger than the render: its alpha reaches every edge
    tgt[..., :3] = 0.5
    assert K.touches_border(tgt, None)
    assert not K.touches_border(_disc_rgba(size=64, radius=10), None)
    for seed in range(6):
        cam = dict(QUIET, shake=2.0)
        clip = K.composite_clip(tgt, None, _photo(), np.random.default_rng(seed), size=(48, 48), camera=cam)
        assert float(clip.alpha.min()) == pytest.approx(1.0, abs=1e-6), "no edge of the render may show"


def test_sampled_camera_scales_with_difficulty():
    easy = [K.sample_camera(np.random.default_rng(s), 0.0) for s in range(50)]
    hard = [K.sample_camera(np.random.default_rng(s), 1.0) for s in range(50)]
    assert all(c["shot"] == 0 and c["read"] == 0 and c["vignette"] == 0 for c in easy)
    assert all(c["white_balance"][1] == 1.0 for c in hard)
    assert np.mean([c["defocus"] for c in hard]) > np.mean([c["defocus"] for c in easy])
    assert np.mean([c["shake"] for c in hard]) > np.mean([c["shake"] for c in easy])


def test_background_files_are_found_and_kde_resolutions_deduplicated(tmp_path: Path, monkeypatch):
    img = (np.random.default_rng(0).uniform(0, 255, (400, 500, 3))).astype(np.uint8)
    (tmp_path / "a").mkdir()
    cv2.imwrite(str(tmp_path / "a" / "photo.jpg"), img)
    kde = tmp_path / "Path" / "contents" / "images"
    kde.mkdir(parents=True)
    cv2.imwrite(str(kde / "640x400.png"), img)
    cv2.imwrite(str(kde / "1280x800.png"), cv2.resize(img, (1280, 800)))
    cv2.imwrite(str(tmp_path / "Path" / "contents" / "screenshot.png"), img)
    (tmp_path / "notes.txt").write_text("not an image")
    files = B.background_files([str(tmp_path)])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["Path/contents/images/1280x800.png", "a/photo.jpg"]
    monkeypatch.setenv("VOM_BACKGROUNDS", str(tmp_path / "a"))
    assert tmp_path / "a" / "photo.jpg" in B.background_files()


def test_background_bank_loads_linear_photos_and_survives_bad_files(tmp_path: Path):
    img = np.full((400, 600, 3), 128, np.uint8)
    good = tmp_path / "grey.png"
    cv2.imwrite(str(good), img)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    bank = B.BackgroundBank([good, bad])
    n = len(bank.builtin)
    assert len(bank) == n + 2
    photo = bank.get(n)
    assert photo.dtype == np.float32 and photo.shape == (400, 600, 3)
    np.testing.assert_allclose(photo[0, 0], [0.2158605] * 3, rtol=1e-4)  # sRGB 128 in linear light
    fallback = bank.get(n + 1)
    assert fallback.ndim == 3 and np.isfinite(fallback).all()
    assert bank.get(0) is bank.builtin[0]
