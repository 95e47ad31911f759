"""CFAR: shapes hold, it is not an identity, the local window equals dense attention when it covers the map."""

from __future__ import annotations

import pytest
import torch

from vom_plugin.model.cfar import CFAR


def _inputs(seed: int, c: int = 8, cv: int = 6, h: int = 5, w: int = 7) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(1, ch, h, w, generator=g) for ch in (c, cv, c, cv, c, cv))


@pytest.mark.parametrize("window", [0, 1, 2])
def test_shapes_and_history_changes_the_output(window: int) -> None:
    torch.manual_seed(0)
    cfar = CFAR(key_dim=8, value_dim=6, window=window, dim=4).eval()
    k, v, k1, v1, k2, v2 = _inputs(0)
    with torch.no_grad():
        out, pk = cfar(k, v, [cfar.proj(k1), cfar.proj(k2)], [v1, v2])
        assert out.shape == v.shape and pk.shape == (1, 4, 5, 7)
        assert not torch.allclose(out, v)  # not an identity
        _, _, k1b, v1b, _, _ = _inputs(1)
        changed, _ = cfar(k, v, [cfar.proj(k1b), cfar.proj(k2)], [v1b, v2])
        assert (changed - out).abs().max() > 1e-3  # previous frames matter
        alone, _ = cfar(k, v, [], [])  # start of a pass: no history
        assert alone.shape == v.shape and torch.isfinite(alone).all()


def test_local_window_covering_the_map_equals_dense_attention() -> None:
    torch.manual_seed(0)
    dense = CFAR(key_dim=8, value_dim=6, window=0, dim=4).eval()
    local = CFAR(key_dim=8, value_dim=6, window=7, dim=4).eval()
    local.load_state_dict(dense.state_dict())
    k, v, k1, v1, k2, v2 = _inputs(2)
    with torch.no_grad():
        hist = [dense.proj(k1), dense.proj(k2)]
        torch.testing.assert_close(local(k, v, hist, [v1, v2])[0], dense(k, v, hist, [v1, v2])[0])


def test_local_window_ignores_far_pixels() -> None:
    torch.manual_seed(0)
    cfar = CFAR(key_dim=8, value_dim=6, window=1, dim=4).eval()
    k, v, k1, v1, k2, v2 = _inputs(3, h=9, w=9)
    # shuffle the previous frame's values far from the corner: the mean |v| (the L1 normalisation) is unchanged
    v1b = v1.clone()
    far = v1b[..., 5:, 5:].flatten(2)
    v1b[..., 5:, 5:] = far[..., torch.randperm(far.shape[-1])].view_as(v1b[..., 5:, 5:])
    with torch.no_grad():
        hist = [cfar.proj(k1), cfar.proj(k2)]
        a, _ = cfar(k, v, hist, [v1, v2])
        b, _ = cfar(k, v, hist, [v1b, v2])
    torch.testing.assert_close(a[..., :3, :3], b[..., :3, :3])  # the 3x3 windows there never reach row/col 5
    assert (a[..., 5:, 5:] - b[..., 5:, 5:]).abs().max() > 1e-3
