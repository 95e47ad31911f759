"""8-bit codes of what the engine caches (``model.quantize``)."""

from __future__ import annotations

import pytest
import torch

from vom_plugin.model.quantize import Packed, pack


def test_codes_are_within_half_a_step_of_the_values() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 5, 9, 11, generator=g) * torch.tensor([0.1, 1.0, 7.0, 300.0, 2.0]).view(1, 5, 1, 1)
    x[:, 4] -= 1.0  # negative values too, with an offset
    p = pack(x, (-2, -1), offset=True)
    assert p.q.dtype == torch.uint8 and p.scale.shape == (1, 5, 1, 1) and p.lo is not None
    err = (p.unpack() - x).abs()
    assert bool((err <= p.scale * 0.5 + 1e-6 * x.abs().amax()).all())
    # steps are powers of two, offsets on their grid: codes times steps are exact in float32
    assert torch.equal(torch.frexp(p.scale)[0], torch.full_like(p.scale, 0.5))
    assert torch.equal(torch.remainder(p.lo, p.scale), torch.zeros_like(p.lo))
    # at least half of the 256 codes over each channel's range
    assert bool((p.q.amax(dim=(-2, -1)).int() - p.q.amin(dim=(-2, -1)).int() >= 127).all())


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


def test_values_that_differ_in_their_last_bits_get_the_same_codes() -> None:
    # the same features summed in another order (another thread count, another machine sharing the cache): a
    # range taken as min/255 moved every value of a channel with its extremes
    g = torch.Generator().manual_seed(1)
    x = torch.relu(torch.randn(1, 16, 40, 60, generator=g)) * 1.7 + torch.rand(1, 16, 1, 1, generator=g)
    ulps = torch.randint(-2, 3, x.shape, generator=g).float()
    y = torch.nextafter(x, x + ulps)  # one ulp up or down where ulps says so
    a, b = pack(x, (-2, -1), offset=True), pack(y, (-2, -1), offset=True)
    assert not torch.equal(x, y)
    assert torch.equal(a.scale, b.scale) and torch.equal(a.lo, b.lo)
    assert float((a.q != b.q).float().mean()) < 1e-3


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
    (lambda d: d.update(f8_scale=d["f8_scale"] * float("nan")), "'f8_scale' holds steps that are not positive"),
    (lambda d: d.update(f8_scale=-d["f8_scale"]), "'f8_scale' holds steps that are not positive"),
    (lambda d: d.update(f8_lo=d["f8_lo"] + float("inf")), "'f8_lo' holds offsets or values that are not finite"),
    (lambda d: d.update(f8_scale=d["f8_scale"][:, :2]), r"'f8_scale' is torch.float32 \(1, 2, 1, 1\), expected float32 "
                                                         r"\(1, 3, 1, 1\)"),
])
def test_codes_that_do_not_belong_together_are_refused(change, message: str) -> None:
    d = pack(torch.rand(1, 3, 4, 5), (-2, -1), offset=True).to_dict("f8")
    change(d)
    with pytest.raises(ValueError, match=message):
        Packed.from_dict(d, "f8", (-2, -1), offset=True)
