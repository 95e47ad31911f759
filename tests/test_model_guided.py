"""The fast guided filter at the end of the decoder: exact on what it models, snaps mattes to image edges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vom_plugin.model.guided import fast_guided_filter


def _image(h: int = 64, w: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    base = torch.rand(1, 3, 1, 1, generator=g)
    ramp = torch.linspace(0, 1, w).view(1, 1, 1, w) * torch.tensor([0.6, -0.3, 0.2]).view(1, 3, 1, 1)
    return (base + ramp + 0.05 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)


def test_constant_alpha_stays_constant():
    out = fast_guided_filter(_image(), torch.full((1, 1, 64, 64), 0.7), radius=3, eps=1e-3)
    torch.testing.assert_close(out, torch.full_like(out, 0.7), atol=1e-4, rtol=0)


def test_alpha_linear_in_the_colours_is_reproduced():
    """The colour-line model itself (alpha = a . I + b everywhere) is the filter's fixed point."""
    image = _image()
    coef = torch.tensor([0.8, -0.5, 0.3]).view(1, 3, 1, 1)
    alpha = (coef * image).sum(1, keepdim=True) + 0.1
    out = fast_guided_filter(image, alpha, radius=3, eps=1e-7, scale=1)
    torch.testing.assert_close(out, alpha, atol=2e-3, rtol=0)


def test_a_noisy_matte_is_cleaned_and_its_edge_stays_on_the_colour_edge():
    h = w = 256  # windows (37 px at r = 4, 1/4 resolution) away from the edge see one colour
    image = torch.zeros(1, 3, h, w)
    image[..., : w // 2] = torch.tensor([0.9, 0.2, 0.1]).view(1, 3, 1, 1)  # red left, blue right
    image[..., w // 2 :] = torch.tensor([0.1, 0.2, 0.8]).view(1, 3, 1, 1)
    truth = torch.zeros(1, 1, h, w)
    truth[..., : w // 2] = 1.0
    noisy = truth + 0.2 * torch.randn(1, 1, h, w, generator=torch.Generator().manual_seed(1))
    out = fast_guided_filter(image, noisy, radius=4, eps=1e-3)
    assert (out - truth).abs().mean() < 0.2 * (noisy - truth).abs().mean()
    edge = out[0, 0, 32:-32]  # the step is kept: no ramp across the colour edge
    assert float(edge[:, w // 2 - 1].min()) > 0.9 and float(edge[:, w // 2].max()) < 0.1


def test_gradients_reach_the_alpha():
    alpha = torch.rand(1, 1, 32, 32, requires_grad=True)
    fast_guided_filter(_image(32, 32), alpha, radius=2, eps=1e-3).sum().backward()
    assert alpha.grad is not None and torch.isfinite(alpha.grad).all() and alpha.grad.abs().sum() > 0


def test_decoder_applies_it_per_config():
    from vom_plugin.model import build_model

    model = build_model("lite")
    assert model.config.guided_radius > 0 and model.decoder.guided_radius == model.config.guided_radius


def _without_guided(path: Path) -> Path:
    from safetensors.torch import load_file, save_file

    from vom_plugin.engine.weights import read_weights_metadata

    meta, state = read_weights_metadata(path), load_file(str(path))
    del state["decoder.guided"]
    save_file(state, str(path), metadata=meta)
    return path


def test_the_guided_filter_travels_with_the_weights(tmp_path: Path):
    """(radius, eps) are saved with the weights and used by the render path; files from before load with the
    config's values; a broken setting is refused naming the file."""
    from vom_plugin.engine.passes import run_clip
    from vom_plugin.engine.weights import load_model, save_weights
    from vom_plugin.errors import InputError
    from vom_plugin.model import build_model
    from vom_plugin.model.config import CONFIGS

    torch.manual_seed(3)
    model = build_model("lite")
    with torch.no_grad():  # a refinement that does something, so the filter's setting shows in the alpha
        for conv in (model.decoder.refine.coef3, model.decoder.refine.fine2):
            conv.weight.normal_(0, 0.05)
    save_weights(model, tmp_path / "plain.safetensors")
    old = load_model(_without_guided(tmp_path / "plain.safetensors"))
    cfg = CONFIGS["lite"]
    assert (old.decoder.guided_radius, old.decoder.guided_eps) == (cfg.guided_radius, pytest.approx(cfg.guided_eps))
    model.decoder.set_guided(9, 2e-4)
    save_weights(model, tmp_path / "set.safetensors", fp16=True)
    loaded = load_model(tmp_path / "set.safetensors")
    assert loaded.decoder.guided_radius == 9 and loaded.decoder.guided_eps == pytest.approx(2e-4, rel=1e-3)

    rng = np.random.default_rng(0)
    frames = rng.random((2, 64, 64, 3)).astype(np.float32)
    roto = np.zeros((64, 64), np.float32)
    roto[16:48, 20:44] = 1
    a_old, a_new = (run_clip(m, frames, {0: roto}, working_size=960, memory="first+prev2", top_k=8)
                    for m in (old, loaded))
    assert np.abs(a_old - a_new).max() > 1e-2

    bad_settings = (((2.5, 1e-3), "whole radius"), ((6, 0.0), "eps > 0"),
                    ((0, 1e-3), r"whole radius >= 1 \(the network is built with the filter\)"))  # not: alpha 0
    for bad, why in bad_settings:
        model.decoder.guided.copy_(torch.tensor(bad))
        save_weights(model, tmp_path / "bad.safetensors")
        with pytest.raises(InputError, match=f"bad.safetensors.*guided filter radius.*{why}"):
            load_model(tmp_path / "bad.safetensors")


def test_a_state_cannot_switch_the_guided_filter_on_or_off():
    """The refinement is built on the filter: a network built without one refuses a radius, and keeps 0."""
    import dataclasses

    from vom_plugin.model.config import CONFIGS
    from vom_plugin.model.hstsg import HSTSG

    plain = HSTSG(dataclasses.replace(CONFIGS["lite"], guided_radius=0))
    assert plain.decoder.refine is None and plain.decoder.guided_radius == 0
    state = plain.state_dict()
    state["decoder.guided"] = torch.tensor([8.0, 1e-4])
    with pytest.raises(ValueError, match=r"radius 8, eps 0.0001: expected radius 0 \(the network is built without"):
        plain.load_state_dict(state)
    state["decoder.guided"] = torch.tensor([0.0, 1e-4])
    plain.load_state_dict(state)
    assert plain.decoder.guided_radius == 0 and plain.decoder.guided_eps == pytest.approx(1e-4)


def test_clamp_inward_passes_only_gradients_that_point_back_into_range():
    """Outside [0, 1] a loss may pull the raw alpha back, never push it further out (the drift's cause)."""
    from vom_plugin.model.decoder import clamp_inward

    x = torch.tensor([-2.0, -2.0, 0.5, 3.0, 3.0], requires_grad=True)
    y = clamp_inward(x)
    assert torch.equal(y.detach(), torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0]))
    upstream = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0])  # descent moves x by -grad
    y.backward(upstream)
    # -2 pushed further down (grad +1): blocked; pulled up (grad -1): passes; inside: passes;
    # 3 pulled down (grad +1): passes; pushed up (grad -1): blocked
    assert torch.equal(x.grad, torch.tensor([0.0, -1.0, 1.0, 1.0, 0.0]))


def test_box_is_the_mean_over_the_clipped_window():
    """Running-sum box filter against the definition, including a radius wider than the map."""
    from vom_plugin.model.guided import box

    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 9, 14, generator=g, dtype=torch.float64)
    for r in (1, 6, 20):
        want = torch.empty_like(x)
        for i in range(9):
            for j in range(14):
                want[..., i, j] = x[..., max(0, i - r): i + r + 1, max(0, j - r): j + r + 1].mean((-2, -1))
        torch.testing.assert_close(box(x, r), want, atol=1e-12, rtol=0)
    # fp32 at a 1/4-res map of working size 960 (240 wide): within 1e-5 of the fp64 result
    big = torch.rand(1, 6, 136, 240, generator=g)
    torch.testing.assert_close(box(big, 6), box(big.double(), 6).float(), atol=1e-5, rtol=0)


def _reference_coefficients(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float) -> torch.Tensor:
    """The guided filter's window-averaged (a, b) at 1/4 by the book, in float64: clipped-window means by
    average pooling, every pixel's 3x3 system solved by torch.linalg.solve."""
    import torch.nn.functional as F

    def mean(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)

    i = F.avg_pool2d(guide.double(), 4)
    p = F.avg_pool2d(src.double(), 4)
    mi, mp = mean(i), mean(p)
    cov = mean(i * p) - mi * mp  # [1, 3, h, w]
    sigma = torch.stack([torch.stack([mean(i[:, a] * i[:, b]) - mi[:, a] * mi[:, b] for b in range(3)], -1)
                         for a in range(3)], -2)  # [1, h, w, 3, 3]
    sigma = sigma + eps * torch.eye(3, dtype=torch.float64)
    a = torch.linalg.solve(sigma, cov.permute(0, 2, 3, 1).unsqueeze(-1)).squeeze(-1).permute(0, 3, 1, 2)
    b = mp - (a * mi).sum(1, keepdim=True)
    return mean(torch.cat([a, b], 1))


@pytest.mark.parametrize("eps", [1e-6, 1e-5, 1e-4])
def test_a_grey_texture_with_a_small_eps_gives_the_float64_coefficients_to_1e3_not_nan(eps: float):
    """Three nearly proportional channels make every window's colour covariance nearly singular; solved in
    fp32 the adjugate's cancellations gave determinants of the wrong sign (NaN at eps 1e-6, which the running
    sums then spread over every window after it; a validation shot came out NaN at eps 1e-5)."""
    from vom_plugin.model.guided import guided_coefficients

    g = torch.Generator().manual_seed(1)
    t = torch.nn.functional.interpolate(torch.rand(1, 1, 32, 32, generator=g), size=(256, 256), mode="bilinear")
    guide = (0.2 + 0.6 * t).expand(1, 3, 256, 256) + 0.002 * torch.rand(1, 3, 256, 256, generator=g)
    src = (t > 0.5).float()
    ab, _, _ = guided_coefficients(guide, src, 24, eps)
    assert torch.isfinite(ab).all()
    ref = _reference_coefficients(guide, src, 24, eps)
    scale = ref.abs().amax(dim=(-2, -1), keepdim=True)
    assert float(((ab.double() - ref).abs() / scale).max()) < 1e-3


def test_kept_window_counts_serve_inference_and_training_alike() -> None:
    """The window counts are kept between calls: counts first made under inference mode must not break a
    training step's backward pass after it (an inference tensor cannot be saved for backward)."""
    from vom_plugin.model.guided import _window_counts, box

    _window_counts.cache_clear()
    x = torch.rand(1, 3, 11, 13, dtype=torch.float64)
    with torch.inference_mode():
        want = box(x, 3)
    y = x.clone().requires_grad_()
    got = box(y, 3)
    torch.testing.assert_close(got.detach(), want)
    got.sum().backward()
    assert _window_counts.cache_info().hits >= 2 and y.grad is not None and torch.isfinite(y.grad).all()
