"""8-bit codes of what the engine caches (``model.quantize``)."""

from __future__ import annotations

import pytest
import torch

from vom_plugin.model.quantize import Packed, pack


def test_codes_are_within_half_a_step_and_use_each_channels_range() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 5, 9, 11, generator=g) * torch.tensor([0.1, 1.0, 7.0, 300.0, 2.0]).view(1, 5, 1, 1)
    x[:, 4] -= 1.0  # negative values too, with an offset
    p = pack(x, (-2, -1), offset=True)
    assert p.q.dtype == torch.uint8 and p.scale.shape == (1, 5, 1, 1) and p.lo is not None
    err = (p.unpack() - x).abs()
    assert bool((err <= p.scale * 0.5 + 1e-6 * x.abs().amax()).all())
    assert torch.equal(p.q.amin(dim=(-2, -1)), torch.zeros(1, 5, dtype=torch.uint8))
    assert torch.equal(p.q.amax(dim=(-2, -1)), torch.full((1, 5), 255, dtype=torch.uint8))


def test_weights_keep_exact_zeros_and_a_constant_row_survives() -> None:
    w = torch.softmax(torch.randn(3, 16), dim=-1)
    w[0, :4] = 0.0
    w[1] = 0.0  # a row of zeros codes as zeros, not NaN
    p = pack(w, (-1,), offset=False)
    back = p.unpack()
    assert p.lo is None and p.scale.shape == (3, 1)
    assert torch.equal(back[0, :4], torch.zeros(4)) and torch.equal(back[1], torch.zeros(16))
    assert bool(torch.isfinite(back).all())
    assert float((back - w).abs().max()) <= float(p.scale.max()) / 2 + 1e-7


def test_unpacking_is_the_same_arithmetic_after_a_round_trip_through_the_cache() -> None:
    x = torch.rand(1, 3, 4, 5) * 3
    p = pack(x, (-2, -1), offset=True)
    again = Packed.from_dict(p.to_dict("f8"), "f8", (-2, -1), offset=True)
    assert torch.equal(again.unpack(), p.unpack())


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.pop("f8_lo"), "entry lacks 'f8_lo'"),
    (lambda d: d.update(f8=d["f8"].half()), "'f8' is torch.float16, expected uint8 codes"),
    (lambda d: d.update(f8_scale=d["f8_scale"].half()),
     r"'f8_scale' is torch.float16 \(1, 3, 1, 1\), expected float32"),
    (lambda d: d.update(f8_scale=d["f8_scale"][:, :2]), r"'f8_scale' is torch.float32 \(1, 2, 1, 1\), expected float32 "
                                                         r"\(1, 3, 1, 1\)"),
])
def test_codes_that_do_not_belong_together_are_refused(change, message: str) -> None:
    d = pack(torch.rand(1, 3, 4, 5), (-2, -1), offset=True).to_dict("f8")
    change(d)
    with pytest.raises(ValueError, match=message):
        Packed.from_dict(d, "f8", (-2, -1), offset=True)
