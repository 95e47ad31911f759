"""Training losses: zero at the truth, and each term reacts to the error it exists for."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vom_plugin.train.losses import (
    MASK_SMOOTHING,
    LossWeights,
    clip_losses,
    composition_loss,
    gradient_loss,
    laplacian_loss,
    laplacian_pyramid,
    mask_bce,
    temporal_loss,
)


def _clip(seed: int = 0, b: int = 2, t: int = 3, h: int = 32, w: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, t, 1, h, w, generator=g)


def test_all_terms_zero_at_ground_truth():
    gt = _clip()
    fg, bg = torch.rand(2, 3, 3, 32, 32), torch.rand(2, 3, 3, 32, 32)
    target = MASK_SMOOTHING + (1 - 2 * MASK_SMOOTHING) * gt
    out = {"alpha": gt.clone(), "mask_logits": torch.logit(target)}
    losses = clip_losses(out, gt, fg, bg)
    for k in ("l1", "laplacian", "gradient", "composition", "temporal"):
        assert float(losses[k]) < 1e-6, k
    # the soft target's optimum: the BCE equals the target's own entropy, and any other logit is worse
    entropy = -(target * target.log() + (1 - target) * (1 - target).log()).mean()
    assert torch.isclose(losses["bce"], entropy, atol=1e-5)
    assert float(mask_bce(torch.logit(target) + 0.5, gt)) > float(losses["bce"]) + 1e-3


def test_laplacian_pyramid_levels_sum_back_to_the_image():
    x = torch.rand(1, 1, 32, 32)
    levels = laplacian_pyramid(x, 4)
    assert len(levels) == 4 and levels[-1].shape[-1] == 4
    rec = levels[-1]
    for band in reversed(levels[:-1]):
        rec = F.interpolate(rec, size=band.shape[-2:], mode="bilinear", align_corners=False) + band
    assert torch.allclose(rec, x, atol=1e-5)
    assert float(laplacian_loss(x[None], (x + 0.1)[None])) > 0


def test_gradient_loss_ignores_offsets_but_sees_edges():
    gt = _clip(1)
    assert float(gradient_loss(gt + 0.2, gt)) < 1e-6  # same edges, shifted level
    blurred = F.avg_pool2d(gt.flatten(0, 1), 3, 1, 1).view_as(gt)
    assert float(gradient_loss(blurred, gt)) > 0.05


def test_temporal_loss_punishes_flicker_not_steady_error():
    gt = _clip(2)
    steady = gt + 0.1  # wrong, but wrong the same way every frame
    flicker = gt + 0.1 * torch.tensor([1.0, -1.0, 1.0]).view(1, 3, 1, 1, 1)
    assert float(temporal_loss(steady, gt)) < 1e-6
    assert abs(float(temporal_loss(flicker, gt)) - 0.2) < 1e-5
    assert float(temporal_loss(gt[:, :1], gt[:, :1])) == 0.0


def test_composition_loss_is_blind_where_fg_equals_bg():
    gt = _clip(3)
    same = torch.full((2, 3, 3, 32, 32), 0.5)
    assert float(composition_loss(1 - gt, gt, same, same)) < 1e-6
    fg, bg = torch.ones_like(same), torch.zeros_like(same)
    assert float(composition_loss(1 - gt, gt, fg, bg)) > 0.01


def test_mask_bce_matches_the_formula():
    logits = torch.tensor([[[[0.0, 2.0]]]])
    gt = torch.tensor([[[[1.0, 0.0]]]])  # soft targets 0.99 and 0.01
    t = torch.tensor([0.99, 0.01])
    x = torch.tensor([0.0, 2.0])
    expected = (-(t * torch.nn.functional.logsigmoid(x) + (1 - t) * torch.nn.functional.logsigmoid(-x))).mean()
    assert torch.isclose(mask_bce(logits, gt), expected)


def test_mask_bce_optimum_is_finite():
    """The logit that minimises the BCE of an opaque pixel is bounded (|logit| <= 4.6), so it cannot drift."""
    gt = torch.ones(1, 1, 1, 1)
    losses = [float(mask_bce(torch.full((1, 1, 1, 1), v), gt)) for v in (2.0, 4.6, 8.0, 20.0)]
    assert losses[1] < losses[0] and losses[1] < losses[2] < losses[3]


def test_total_is_the_weighted_sum_and_backpropagates():
    gt = _clip(4)
    pred = torch.rand_like(gt, requires_grad=True)
    out = {"alpha": pred, "mask_logits": pred * 4 - 2}
    w = LossWeights()
    losses = clip_losses(out, gt, torch.rand(2, 3, 3, 32, 32), torch.rand(2, 3, 3, 32, 32), w)
    names = ("l1", "laplacian", "gradient", "bce", "composition", "temporal")
    expect = sum(getattr(w, k) * float(losses[k].detach()) for k in names)
    assert abs(float(losses["total"].detach()) - expect) < 1e-5
    losses["total"].backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
