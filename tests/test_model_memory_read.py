"""The hierarchical top-k read: guided == dense when candidates cover memory; top-k == softmax when k >= M."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from vom_plugin.model.memory_read import (
    LevelMemory,
    child_positions,
    dense_gather,
    dense_topk_read,
    from_blocks,
    guided_gather,
    guided_topk_read,
    level_memory,
    to_blocks,
    to_rows,
)


def _frames(t: int, c: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(t, 1, c, h, w, generator=g)


def test_topk_read_equals_softmax_read_when_k_covers_memory() -> None:
    keys, values = _frames(2, 8, 3, 4, 0), _frames(2, 5, 3, 4, 1)
    mem = LevelMemory.cat([level_memory(keys[i], values[i], blocked=False) for i in range(2)])
    q = torch.randn(1, 7, 8)
    out, idx = dense_topk_read(q, mem, top_k=100)
    assert idx.shape == (1, 7, 24)
    # plain softmax read over all 24 memory pixels, written out independently
    mk = torch.cat([keys[i].flatten(2) for i in range(2)], 2)[0]  # [C, M]
    mv = torch.cat([values[i].flatten(2) for i in range(2)], 2)[0]  # [Cv, M]
    aff = (2 * q[0] @ mk - (mk**2).sum(0)) / math.sqrt(8)  # [N, M]
    expected = torch.softmax(aff, 1) @ mv.T
    torch.testing.assert_close(out[0], expected, rtol=1e-4, atol=1e-5)
    # with a small k the result differs (it really filters)
    small, _ = dense_topk_read(q, mem, top_k=2)
    assert not torch.allclose(small, out, atol=1e-3)


def test_block_layout_round_trip_and_children() -> None:
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    torch.testing.assert_close(from_blocks(to_blocks(x), 2, 3), x)
    # parent (t=1, y=1, x=2) of a 2x3 coarse grid -> its 4 children in a 4x6 fine grid of frame 1
    kids = child_positions(torch.tensor([[[1 * 6 + 1 * 3 + 2]]]), (2, 3))
    assert kids.flatten().tolist() == [24 + 2 * 6 + 4, 24 + 2 * 6 + 5, 24 + 3 * 6 + 4, 24 + 3 * 6 + 5]


@pytest.mark.parametrize("frames", [1, 2])
def test_guided_read_equals_dense_topk_when_candidates_cover_memory(frames: int) -> None:
    c, cv, h, w = 6, 4, 2, 3  # coarse memory of h*w*frames pixels
    keys, values = _frames(frames, c, 2 * h, 2 * w, 2), _frames(frames, cv, 2 * h, 2 * w, 3)
    m_coarse = frames * h * w
    q = torch.randn(1, c, 2 * h, 2 * w)
    # every coarse query pixel "chose" every coarse memory pixel: candidates = all fine memory pixels
    coarse_idx = torch.arange(m_coarse).view(1, 1, m_coarse).expand(1, h * w, m_coarse).contiguous()
    blocked = LevelMemory.cat([level_memory(keys[i], values[i], blocked=True) for i in range(frames)])
    plain = LevelMemory.cat([level_memory(keys[i], values[i], blocked=False) for i in range(frames)])
    for k in (1, 3, 4 * m_coarse):
        guided, fine_idx = guided_topk_read(q, blocked, coarse_idx, top_k=k)
        dense, dense_idx = dense_topk_read(to_rows(q), plain, top_k=k)
        torch.testing.assert_close(guided, dense.transpose(1, 2).reshape(1, cv, 2 * h, 2 * w), rtol=1e-4, atol=1e-5)
        # the guided read reports the same memory positions as the dense one
        assert torch.equal(fine_idx.sort(-1).values, dense_idx.sort(-1).values)


def test_guided_read_only_looks_at_the_children_of_the_coarse_matches() -> None:
    c, h, w = 4, 2, 2
    keys = torch.randn(1, c, 2 * h, 2 * w)
    values = torch.zeros(1, 1, 2 * h, 2 * w)
    values[..., :2, :2] = 1.0  # children of coarse position 0 carry 1, all others 0
    mem = level_memory(keys, values, blocked=True)
    q = torch.randn(1, c, 2 * h, 2 * w)
    idx = torch.zeros(1, h * w, 1, dtype=torch.long)  # every query block guided to coarse position 0 only
    out, fine_idx = guided_topk_read(q, mem, idx, top_k=2)
    torch.testing.assert_close(out, torch.ones_like(out))
    assert set(fine_idx.flatten().tolist()) <= {0, 1, 4, 5}


def test_topk_ranking_is_computed_in_fp32_under_autocast() -> None:
    # bf16 inputs (as under CUDA autocast): the affinities must still rank like fp32 ones
    g = torch.Generator().manual_seed(0)
    keys = (torch.randn(1, 64, 8, 8, generator=g) * 3).bfloat16()
    values = torch.randn(1, 8, 8, 8, generator=g).bfloat16()
    q = (torch.randn(1, 50, 64, generator=g) * 3).bfloat16()
    _, ref = dense_topk_read(q.float(), level_memory(keys.float(), values.float(), blocked=False), 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, idx = dense_topk_read(q, level_memory(keys, values, blocked=False), 8)
        blocked = level_memory(keys, values, blocked=True)
        coarse = torch.arange(16).view(1, 1, 16).expand(1, 16, 16).contiguous()
        _, fine = guided_topk_read(keys, blocked, coarse, 8)
    assert torch.equal(idx.sort(-1).values, ref.sort(-1).values)
    _, fine_ref = dense_topk_read(to_rows(keys.float()), level_memory(keys.float(), values.float(), blocked=False), 8)
    assert torch.equal(fine.sort(-1).values, fine_ref.sort(-1).values)


def test_dense_gather_at_inference_is_the_training_gather_exactly() -> None:
    # CPU inference reads through a sparse matrix; training gathers the rows (autograd): the same weighted sums.
    # Not bit for bit: which order the library adds a row's k terms in is its own (torch 2.11 on AMD agreed to
    # the bit, torch 2.13's MKL on an AVX-512 Xeon differs by one unit in the last place)
    g = torch.Generator().manual_seed(4)
    values = torch.randn(2, 40, 6, generator=g)
    idx = torch.randint(0, 40, (2, 9, 5), generator=g)
    w = torch.softmax(torch.randn(2, 9, 5, generator=g), -1)
    expected = torch.stack([torch.stack([(w[b, n, :, None] * values[b, idx[b, n]]).sum(0) for n in range(9)])
                            for b in range(2)])
    with torch.enable_grad():
        trained = dense_gather(values.requires_grad_(), idx, w)
    with torch.inference_mode():
        inferred = dense_gather(values.detach(), idx, w)
    torch.testing.assert_close(trained.detach(), expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(inferred, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(inferred, trained.detach(), rtol=0, atol=4e-7)


@pytest.mark.parametrize("inference", [False, True])
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("coarse_k, kept", [(6, 3), (2, 8)])
def test_guided_gather_sums_the_kept_candidates_of_each_pixel(coarse_k: int, kept: int, batch: int,
                                                             inference: bool) -> None:
    # (6, 3): each pixel keeps fewer candidates than its block has parents (gathered one by one);
    # (2, 8): it keeps all of them (the block's candidates gathered once, weighted by a matrix);
    # at CPU inference both are one sparse product, whose read-out comes out channels-last
    g = torch.Generator().manual_seed(5)
    h, w, cv, frames = 2, 3, 4, 2
    mp = frames * h * w
    values = torch.randn(batch, mp, 4, cv, generator=g)
    coarse_idx = torch.stack([torch.stack([torch.randperm(mp, generator=g)[:coarse_k] for _ in range(h * w)])
                              for _ in range(batch)])
    sel = torch.stack([torch.randperm(4 * coarse_k, generator=g)[:kept] for _ in range(batch * h * w * 4)])
    sel = sel.view(batch, h * w, 4, kept)
    wts = torch.softmax(torch.randn(batch, h * w, 4, kept, generator=g), -1)
    with torch.inference_mode(inference):
        out = guided_gather(values, coarse_idx, sel, wts, (h, w), key_dim=8)
    assert out.shape == (batch, cv, 2 * h, 2 * w)
    assert out.is_contiguous(memory_format=torch.channels_last) == inference
    for b in range(batch):
        for p in range(h * w):
            for child in range(4):
                cands = values[b, coarse_idx[b, p]].reshape(4 * coarse_k, cv)  # order (parent j, child)
                expected = (wts[b, p, child, :, None] * cands[sel[b, p, child]]).sum(0)
                y, x = 2 * (p // w) + child // 2, 2 * (p % w) + child % 2
                torch.testing.assert_close(out[b, :, y, x], expected, rtol=1e-5, atol=1e-6)


def test_the_sparse_read_leaves_the_warning_filters_alone() -> None:
    """A QA pass: every sparse read set the process's warning filters aside (``warnings.catch_warnings``, not
    thread-safe) to hide torch's beta warning; a filter a host set on another thread meanwhile was lost. torch gives
    that warning once a process: given on import now, with nothing shown, and a read never touches the filters."""
    code = """
import warnings
warnings.simplefilter("error")  # a host that makes warnings errors: torch's beta warning would raise
import torch
import vom_plugin.model.memory_read as mr
def swapped(*a, **k):
    raise AssertionError("a read set the warning filters aside")
warnings.catch_warnings = swapped
filters = list(warnings.filters)
cols = torch.tensor([[0, 1], [1, 2]]); w = torch.tensor([[0.5, 0.5], [1.0, 0.0]]); rows = torch.eye(3)
out = mr.csr_rows(cols, w, rows)
assert torch.equal(out, torch.tensor([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]])), out
assert warnings.filters == filters
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok" and not r.stderr.strip(), r.stderr
