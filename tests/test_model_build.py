"""build_model / forward_clip: both configs run on a short 256x256 clip, parameter counts are bounded."""

from __future__ import annotations

import pytest
import torch

from vom_plugin.errors import InputError
from vom_plugin.model import build_model, count_parameters


def _clip(b: int, t: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(b, t, 3, size, size, generator=g)
    mask = torch.zeros(b, 1, size, size)
    mask[..., size // 4 : size // 2, size // 4 : 3 * size // 4] = 1.0
    return frames, mask


@pytest.mark.parametrize(("name", "frames", "low", "high"), [("lite", 2, 0.5e6, 8e6), ("full", 2, 15e6, 60e6)])
def test_forward_clip_shapes_ranges_and_parameter_count(name: str, frames: int, low: float, high: float) -> None:
    torch.manual_seed(0)
    model = build_model(name)
    n = count_parameters(model)
    print(f"{name}: {n:,} parameters")
    assert low <= n <= high
    assert model.config.name == name
    x, m = _clip(1, frames, 256)
    with torch.no_grad():
        out = model.eval().forward_clip(x, m)
    assert out["mask_logits"].shape == (1, frames, 1, 256, 256)
    assert out["alpha"].shape == (1, frames, 1, 256, 256)
    assert torch.isfinite(out["mask_logits"]).all()
    assert out["alpha"].min() >= 0.0 and out["alpha"].max() <= 1.0


def test_lite_fp16_weights_fit_in_16_mib() -> None:
    assert count_parameters(build_model("lite")) * 2 <= 16 * 2**20


def test_gradients_flow_through_the_memory_write_of_predictions() -> None:
    torch.manual_seed(0)
    model = build_model("lite").train()
    x, m = _clip(2, 3, 32)
    out = model.forward_clip(x, m)
    # a loss on frame 2 only: it reads memory written from frame 1's *prediction*
    out["alpha"][:, 2].mean().backward()
    # the decoder's head that produced frame 1's alpha gets gradient only through that memory write
    assert model.decoder.head.weight.grad is not None and model.decoder.head.weight.grad.abs().sum() > 0
    assert model.value_encoder.fuse4.mix[0].weight.grad.abs().sum() > 0
    assert model.key_encoder.proj4.weight.grad.abs().sum() > 0


def test_prediction_depends_on_the_first_mask() -> None:
    torch.manual_seed(0)
    model = build_model("lite").eval()
    x, m = _clip(1, 2, 64)
    with torch.no_grad():
        a = model.forward_clip(x, m)["alpha"]
        b = model.forward_clip(x, 1.0 - m)["alpha"]
    assert (a - b).abs().max() > 1e-4


def test_memory_policies_run_and_bad_names_are_input_errors() -> None:
    model = build_model("lite").eval()
    x, m = _clip(1, 3, 32)
    with torch.no_grad():
        for policy in ("first+prev2", "prev2", "every-2", "first+every-2"):
            assert model.forward_clip(x, m, memory=policy, top_k=4)["alpha"].shape == (1, 3, 1, 32, 32)
    with pytest.raises(InputError, match="every-0"):
        model.forward_clip(x, m, memory="every-0")


def test_unknown_config_is_an_input_error() -> None:
    with pytest.raises(InputError, match="'huge'.*lite, lite2, full"):
        build_model("huge")


def test_top_k_is_the_coarse_reads_and_the_guided_reads_keep_their_own() -> None:
    """The node's top_k matches per pixel at 1/16 guide the 1/8 and 1/4 reads, which keep
    ``config.guided_top_k`` of the 4k candidates handed down (a wide coarse read, narrow fine ones)."""
    from vom_plugin.model.hstsg import stack_memory

    torch.manual_seed(0)
    model = build_model("lite").eval()
    x, m = _clip(1, 2, 128)
    with torch.no_grad():
        keys = [model.encode_key(x[:, i]) for i in range(2)]
        mem = stack_memory([model.memory_frame(x[:, 0], keys[0], m, m)])
        for top_k in (4, 40):
            idx16, w16, sel8, w8, sel4, w4 = model.match_memory(keys[1], mem, top_k)
            assert idx16.shape == (1, 64, top_k) and w16.shape == idx16.shape  # 8x8 positions at 1/16
            fine = min(model.config.guided_top_k, 4 * top_k)
            assert sel8.shape == (1, 64, 4, fine) and sel4.shape == (1, 256, 4, fine)
            assert torch.allclose(w8.sum(-1), torch.ones(1)) and torch.allclose(w4.sum(-1), torch.ones(1))
    assert model.config.guided_top_k == 8
