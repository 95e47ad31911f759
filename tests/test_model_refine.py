"""The learned edge refinement (model/refine.py): adds nothing until trained, learns, loads all-or-nothing."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vom_plugin.errors import InputError
from vom_plugin.model import build_model
from vom_plugin.model.decoder import clamp_inward
from vom_plugin.model.guided import fast_guided_filter
from vom_plugin.model.refine import EdgeRefiner


def _decoder_inputs(h: int = 64, w: int = 96):
    g = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, h, w, generator=g)
    feats = tuple(torch.rand(1, c, h // s, w // s, generator=g) for c, s in ((128, 16), (64, 8), (32, 4)))
    reads = tuple(torch.rand(1, c, h // s, w // s, generator=g) for c, s in ((128, 16), (64, 8), (32, 4)))
    return image, feats, reads


def test_a_fresh_refinement_renders_exactly_the_plain_guided_filter():
    torch.manual_seed(0)
    model = build_model("lite").eval()
    assert model.decoder.refine is not None
    plain = copy.deepcopy(model)
    plain.decoder.refine = None
    with torch.no_grad():
        a = model.decoder(*_decoder_inputs())
        b = plain.decoder(*_decoder_inputs())
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_it_learns_detail_the_plain_filter_cannot_hold():
    """One-pixel stripes of alpha on a flat grey image: no colour line holds them, the learned
    full-resolution residual (fed the unfiltered alpha) brings them back."""
    torch.manual_seed(0)
    image = torch.full((1, 3, 32, 32), 0.5)
    target = torch.zeros(1, 1, 32, 32)
    target[..., ::4] = 1.0
    hidden = torch.zeros(1, 16, 8, 8)
    ref = EdgeRefiner(16)
    plain = F.l1_loss(fast_guided_filter(image, target, 2, 1e-3).clamp(0, 1), target).item()
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        loss = F.l1_loss(clamp_inward(ref(image, target, hidden, 2, 1e-3)), target)
        loss.backward()
        opt.step()
    assert plain > 0.3 and loss.item() < 0.5 * plain


def test_gradients_reach_the_zero_initialised_output_layers():
    model = build_model("lite")
    image, feats, reads = _decoder_inputs()
    _, alpha = model.decoder(image, feats, reads)
    (alpha - 0.3).abs().mean().backward()
    ref = model.decoder.refine
    assert ref.coef3.weight.grad.abs().sum() > 0 and ref.fine2.weight.grad.abs().sum() > 0


def test_weights_without_the_refinement_load_without_it_and_with_it_round_trip(tmp_path: Path):
    from vom_plugin.engine.weights import load_model, save_weights

    torch.manual_seed(3)
    old = build_model("lite")
    old.decoder.refine = None  # a network trained before the refinement existed
    save_weights(old, tmp_path / "old.safetensors", fp16=False)
    loaded = load_model(tmp_path / "old.safetensors")
    assert loaded.decoder.refine is None
    new = build_model("lite")
    with torch.no_grad():
        new.decoder.refine.fine2.bias.fill_(0.125)
    save_weights(new, tmp_path / "new.safetensors", fp16=False)
    back = load_model(tmp_path / "new.safetensors")
    assert back.decoder.refine is not None and float(back.decoder.refine.fine2.bias.detach()) == 0.125
    # a file with part of the module is damaged, not old: refused with the tensors named
    from safetensors.torch import load_file, save_file

    state = load_file(str(tmp_path / "new.safetensors"))
    del state["decoder.refine.coef1.weight"]
    save_file(state, str(tmp_path / "part.safetensors"), metadata={"config": "lite"})
    with pytest.raises(InputError, match="decoder.refine.coef1.weight"):
        load_model(tmp_path / "part.safetensors")


def test_a_run_started_from_old_weights_gets_a_live_refinement(tmp_path: Path):
    """--init from a file without the module: everything else loaded, the module fresh (first layers random,
    output layers zero) so training can grow it; all-zero first layers would never receive a gradient."""
    from vom_plugin.engine.weights import save_weights
    from vom_plugin.train import loop as L

    torch.manual_seed(5)
    old = build_model("lite")
    old.decoder.refine = None
    save_weights(old, tmp_path / "old.safetensors", fp16=False)
    model = build_model("lite")
    L.init_from_weights(model, tmp_path / "old.safetensors", "lite")
    ref = model.decoder.refine
    assert ref is not None and ref.coef1.weight.abs().sum() > 0 and ref.coef3.weight.abs().sum() == 0
    assert torch.equal(model.decoder.head.weight, old.decoder.head.weight)


def test_conv_relu_is_relu_of_the_convolution_at_inference_and_in_training() -> None:
    import torch.nn.functional as F

    from vom_plugin.model.refine import conv_relu

    torch.manual_seed(3)
    conv = torch.nn.Conv2d(5, 8, 3, padding=1)
    x = torch.randn(1, 5, 40, 72)
    for layout in (torch.contiguous_format, torch.channels_last):
        xi = x.contiguous(memory_format=layout)
        with torch.inference_mode():
            got, want = conv_relu(conv, xi), F.relu(conv(xi))
        assert got.shape == (1, 8, 40, 72) and (got >= 0).all() and (got == 0).any()
        assert torch.allclose(got, want, atol=1e-6, rtol=0)
    # with gradients it is the plain path: the convolution's weights learn through it
    out = conv_relu(conv, x.requires_grad_())
    out.sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_concatenations_for_convolutions_keep_values_and_lay_out_channels_last():
    """cat_channels_last / cat_for_conv: the values of torch.cat along channels whatever the inputs' layouts and
    dtypes; at CPU inference laid out channels-last, with gradients the plain concatenation (training's layout)."""
    from vom_plugin.model.refine import cat_channels_last, cat_for_conv

    g = torch.Generator().manual_seed(3)
    image = torch.rand(1, 20, 24, 3, generator=g).permute(0, 3, 1, 2)  # an image viewed from HWC pixels
    planar = torch.rand(1, 2, 20, 24, generator=g)
    wide = torch.rand(1, 5, 20, 24, generator=g).contiguous(memory_format=torch.channels_last)
    half = torch.rand(1, 1, 20, 24, generator=g).half()
    xs = [image, planar, wide, half]
    want = torch.cat([x.float() for x in xs], 1)
    with torch.no_grad():
        for out in (cat_channels_last(xs), cat_for_conv(xs)):
            assert out.dtype == torch.float32 and out.shape == (1, 11, 20, 24)
            assert out.is_contiguous(memory_format=torch.channels_last) and torch.equal(out, want)
    trained = [x.float().requires_grad_() for x in xs]
    out = cat_for_conv(trained)
    assert out.requires_grad and out.is_contiguous() and torch.equal(out.detach(), want)
