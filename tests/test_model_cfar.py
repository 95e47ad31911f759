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


def _window_weights(frames: int, r: int, b: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Softmax weights over each pixel's windows, exactly 0 outside the image (as ``_local_weights`` gives)."""
    g = torch.Generator().manual_seed(seed)
    s = 2 * r + 1
    logits = torch.randn(b, frames * s * s, h, w, generator=g)
    y, x = torch.arange(h).view(h, 1), torch.arange(w).view(1, w)
    for i in range(frames * s * s):
        dy, dx = divmod(i % (s * s), s)
        yy, xx = y + dy - r, x + dx - r
        logits[:, i][:, (yy < 0) | (yy >= h) | (xx < 0) | (xx >= w)] = float("-inf")
    return torch.softmax(logits, 1)


@pytest.mark.parametrize("frames, r, b", [(3, 1, 1), (3, 2, 2), (2, 2, 1), (1, 1, 1)])
def test_sparse_window_read_equals_the_training_loop(frames: int, r: int, b: int) -> None:
    # CPU inference reads the windows with one sparse product; training (gradients) keeps the loop of shifted
    # multiply-adds over zero-padded maps; out-of-image positions (weight 0) add nothing in either
    g = torch.Generator().manual_seed(7)
    values = [torch.randn(b, 5, 6, 7, generator=g) for _ in range(frames)]
    wts = _window_weights(frames, r, b, 6, 7, seed=8)
    with torch.enable_grad():
        looped = CFAR._local_apply(wts, values, r)
    with torch.inference_mode():
        sparse = CFAR._local_apply(wts, values, r)
    assert sparse.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(sparse, looped, rtol=1e-6, atol=1e-6)
    # every window position is read: moving one value inside a pixel's window changes that pixel
    values[-1][0, :, 0, 0] += 1.0
    with torch.inference_mode():
        moved = CFAR._local_apply(wts, values, r)
    assert (moved - sparse)[0, :, : r + 1, : r + 1].abs().min() > 0
    assert torch.equal(moved[0, :, r + 1 :, :], sparse[0, :, r + 1 :, :])


def test_history_read_outs_give_the_same_bits_in_either_layout() -> None:
    # a render keeps read-outs channels-last; a resumed one restores them from a state in NCHW: CFAR must
    # compute the same bits from both, or a resumed render would drift from an uninterrupted one
    torch.manual_seed(0)
    cfar = CFAR(key_dim=8, value_dim=6, window=1, dim=4).eval()
    k, v, k1, v1, k2, v2 = _inputs(4, h=6, w=8)
    cl = [t.contiguous(memory_format=torch.channels_last) for t in (v, v1, v2)]
    with torch.inference_mode():
        hist = [cfar.proj(k1), cfar.proj(k2)]
        a, _ = cfar(k, cl[0], hist, cl[1:])
        b, _ = cfar(k, cl[0], hist, [v1.contiguous(), v2.contiguous()])
    assert not cl[1].is_contiguous() and v1.is_contiguous()
    assert torch.equal(a, b)


@pytest.mark.parametrize(("frames", "r", "b"), [(1, 1, 1), (3, 1, 2), (2, 2, 1)])
def test_batched_windows_equal_the_loop_with_their_gradients(frames: int, r: int, b: int) -> None:
    """Training on an accelerator reads a window as one product per frame: the same weights, the same output
    and the same gradients as the loop (checked here on the CPU, where the loop runs)."""
    from vom_plugin.model import cfar as C

    g = torch.Generator().manual_seed(frames * 10 + r)
    pks = [torch.randn(b, 4, 6, 9, generator=g, requires_grad=True) for _ in range(frames)]
    values = [torch.randn(b, 5, 6, 9, generator=g, requires_grad=True) for _ in range(frames)]
    got_w = C._local_weights_batched(pks, r)
    want_w = CFAR._local_weights(pks, r)  # the loop: grad enabled on the CPU
    torch.testing.assert_close(got_w, want_w)
    got = C._local_apply_batched(got_w, values, r)
    want = CFAR._local_apply(want_w, values, r)
    torch.testing.assert_close(got, want)
    probe = torch.randn(got.shape, generator=g)
    got_grads = torch.autograd.grad((got * probe).sum(), [*pks, *values])
    want_grads = torch.autograd.grad((want * probe).sum(), [*pks, *values])
    for a, e in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(a, e)
    assert not C._batched_windows(pks[0])  # the CPU keeps the loop (and its cached sums)
    assert C._batched_windows(torch.empty(1, 4, 6, 9, device="meta"))  # training on an accelerator
    with torch.no_grad():  # inference anywhere keeps the loop
        assert not C._batched_windows(torch.empty(1, 4, 6, 9, device="meta"))
