"""Hierarchical top-k memory read (HSTSG section 3.2, guidance as in HMMN).

Similarity is STCN's negative squared L2 distance without the query term, ``(2 m.q - |m|^2) / sqrt(C)``.

- 1/16: dense affinity between every query pixel and every memory pixel, top-k, softmax over the k,
  weighted sum of the k values (``dense_topk_read``). Memory pixels are indexed frame-major:
  ``index = t * h * w + y * w + x``.
- 1/8 and 1/4 (``guided_topk_read``): the k matches of a coarse query pixel expand to their 2x2 children
  at the finer level: 4k candidates shared by the 2x2 block of fine query pixels under that coarse pixel.
  Each fine pixel takes the top-k of its block's 4k candidates, and those k indices guide the next level.
  Keys are gathered once per block ([blocks, 4k, C]) and compared with a batched matmul, so the cost is
  linear in query pixels; no query x memory matrix exists at 1/8 or 1/4.
- Dense reads at fine levels exist only for tests and the benchmark; they chunk the query axis so their
  affinity never exceeds ``max_elems``.
"""

from __future__ import annotations

import math

import torch

MAX_ELEMS = 1 << 25  # affinity elements per chunk (128 MiB in fp32)


def l2_affinity(mk: torch.Tensor, qk: torch.Tensor) -> torch.Tensor:
    """mk [B, C, M], qk [B, C, N] -> [B, M, N] similarity (higher is closer)."""
    c = mk.shape[1]
    a = torch.baddbmm(-mk.pow(2).sum(1).unsqueeze(2), mk.transpose(1, 2), qk, beta=1.0, alpha=2.0)
    return a / math.sqrt(c)


def _gather_columns(mv: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """mv [B, Cv, M], idx [B, ...] of memory indices -> [B, ..., Cv]."""
    b, cv, m = mv.shape
    rows = mv.transpose(1, 2).reshape(b * m, cv)
    offset = (torch.arange(b, device=idx.device) * m).view(b, *([1] * (idx.dim() - 1)))
    return rows.index_select(0, (idx + offset).reshape(-1)).view(*idx.shape, cv)


def dense_topk_read(
    qk: torch.Tensor, mk: torch.Tensor, mv: torch.Tensor, top_k: int, max_elems: int = MAX_ELEMS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense top-k read. qk [B, C, N], mk [B, C, M], mv [B, Cv, M] -> (readout [B, Cv, N], idx [B, k, N]).

    k = min(top_k, M); with k >= M this is the plain softmax read over all memory.
    """
    b, _, n = qk.shape
    m = mk.shape[2]
    k = min(top_k, m)
    chunk = max(1, max_elems // max(1, b * m))
    outs, idxs = [], []
    for s in range(0, n, chunk):
        aff = l2_affinity(mk, qk[:, :, s : s + chunk])  # [B, M, n]
        vals, idx = aff.topk(k, dim=1)  # [B, k, n]
        w = torch.softmax(vals, dim=1)
        v = _gather_columns(mv, idx)  # [B, k, n, Cv]
        outs.append(torch.einsum("bkn,bknc->bcn", w, v))
        idxs.append(idx)
    return torch.cat(outs, 2), torch.cat(idxs, 2)


def child_indices(idx: torch.Tensor, coarse_hw: tuple[int, int]) -> torch.Tensor:
    """Coarse memory indices [B, k, Nc] -> the 2x2 children at the finer level [B, Nc, 4k]."""
    h, w = coarse_hw
    t = idx // (h * w)
    r = idx - t * (h * w)
    y = r // w
    x = r - y * w
    base = t * (4 * h * w) + (2 * y) * (2 * w) + 2 * x  # [B, k, Nc]
    offs = torch.tensor([0, 1, 2 * w, 2 * w + 1], device=idx.device, dtype=idx.dtype)
    kids = base.unsqueeze(-1) + offs  # [B, k, Nc, 4]
    return kids.permute(0, 2, 1, 3).reshape(idx.shape[0], idx.shape[2], -1)


def guided_topk_read(
    qk: torch.Tensor,
    mk: torch.Tensor,
    mv: torch.Tensor,
    coarse_idx: torch.Tensor,
    top_k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Guided read at a fine level.

    qk [B, C, H, W] (fine query keys, H = 2h, W = 2w), mk [B, C, M], mv [B, Cv, M] (fine memory, frame-major
    over frames of H x W), coarse_idx [B, k, h*w] (memory indices of the coarse level).
    Returns (readout [B, Cv, H, W], fine_idx [B, k', H*W]) with k' = min(top_k, 4k).
    """
    b, c, hh, ww = qk.shape
    h, w = hh // 2, ww // 2
    cand = child_indices(coarse_idx, (h, w))  # [B, Nc, 4k]
    nc, k4 = cand.shape[1], cand.shape[2]
    # fine queries grouped by their 2x2 block: [B, Nc, 4, C], block order (dy, dx)
    q = qk.view(b, c, h, 2, w, 2).permute(0, 2, 4, 3, 5, 1).reshape(b, nc, 4, c)
    keys = _gather_columns(mk, cand)  # [B, Nc, 4k, C]
    aff = torch.matmul(q, keys.transpose(-1, -2)) * 2.0 - keys.pow(2).sum(-1).unsqueeze(-2)
    aff = aff / math.sqrt(c)  # [B, Nc, 4, 4k]
    k = min(top_k, k4)
    vals, sel = aff.topk(k, dim=-1)  # [B, Nc, 4, k]
    wts = torch.softmax(vals, dim=-1)
    chosen = torch.gather(cand.unsqueeze(2).expand(b, nc, 4, k4), -1, sel)  # memory indices [B, Nc, 4, k]
    v = _gather_columns(mv, chosen)  # [B, Nc, 4, k, Cv]
    out = torch.einsum("bnqk,bnqkc->bnqc", wts, v)  # [B, Nc, 4, Cv]
    cv = out.shape[-1]
    out = out.view(b, h, w, 2, 2, cv).permute(0, 5, 1, 3, 2, 4).reshape(b, cv, hh, ww)
    fine_idx = chosen.view(b, h, w, 2, 2, k).permute(0, 5, 1, 3, 2, 4).reshape(b, k, hh * ww)
    return out, fine_idx


def flatten_memory(x: torch.Tensor) -> torch.Tensor:
    """[B, C, T, H, W] memory -> [B, C, T*H*W], frame-major as the indices above expect."""
    return x.flatten(2)
