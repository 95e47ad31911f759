"""Hierarchical top-k memory read (HSTSG section 3.2, guidance as in HMMN).

Similarity is STCN's negative squared L2 distance without the query term, ``(2 m.q - |m|^2) / sqrt(C)``;
``|m|^2`` is computed once when a frame is written to memory, not at every read.

- 1/16: dense affinity between every query pixel and every memory pixel, top-k, softmax over the k,
  weighted sum of the k values (``dense_topk_read``). Memory positions are frame-major:
  ``index = t * h * w + y * w + x``.
- 1/8 and 1/4 (``guided_topk_read``): the k matches of a coarse query pixel expand to their 2x2 children
  at the finer level: 4k candidates shared by the 2x2 block of fine query pixels under that coarse pixel.
  Each fine pixel takes the top-k of its block's 4k candidates, and those k positions guide the next level.
  To make that a few large gathers, fine memory is stored *blocked* by parent: row ``p`` of the 1/8
  memory holds the 2x2 children of 1/16 position ``p`` ([M_parent, 4, C]). One gather per block fetches
  all 4k candidate keys, a batched matmul scores them, so the cost is linear in query pixels: no
  query x memory matrix exists at 1/8 or 1/4.
- A dense read at a fine level exists for tests and the benchmark only; it chunks the query axis so its
  affinity never exceeds ``max_elems``.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch

# affinity elements per chunk (16 MiB in fp32): temporaries above glibc's 32 MiB mmap ceiling are mapped and
# page-faulted afresh on every call, which costs more than the extra chunks
MAX_ELEMS = 1 << 22


@dataclass
class LevelMemory:
    """One level of memory, frames concatenated frame-major.

    Plain (1/16): keys [B, M, C], sqnorm [B, M], values [B, M, Cv].
    Blocked (1/8, 1/4): keys [B, Mp, 4, C], sqnorm [B, Mp, 4], values [B, Mp, 4, Cv], Mp = parent positions.
    """

    keys: torch.Tensor
    sqnorm: torch.Tensor
    values: torch.Tensor

    @staticmethod
    def cat(levels: list[LevelMemory]) -> LevelMemory:
        if len(levels) == 1:
            return levels[0]
        return LevelMemory(
            torch.cat([m.keys for m in levels], 1),
            torch.cat([m.sqnorm for m in levels], 1),
            torch.cat([m.values for m in levels], 1),
        )

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.keys, self.sqnorm, self.values))


def to_rows(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, H*W, C] (raster order)."""
    return x.flatten(2).transpose(1, 2).contiguous()


def to_blocks(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, (H/2)*(W/2), 4, C]: the 2x2 children of each parent position, order (dy, dx)."""
    b, c, hh, ww = x.shape
    h, w = hh // 2, ww // 2
    return x.reshape(b, c, h, 2, w, 2).permute(0, 2, 4, 3, 5, 1).reshape(b, h * w, 4, c).contiguous()


def from_blocks(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """[B, h*w, 4, C] -> [B, C, 2h, 2w] (inverse of to_blocks)."""
    b, _, _, c = x.shape
    return x.reshape(b, h, w, 2, 2, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, 2 * h, 2 * w)


def level_memory(key: torch.Tensor, value: torch.Tensor, blocked: bool) -> LevelMemory:
    """One frame's key [B, C, H, W] and value [B, Cv, H, W] -> its memory layout."""
    # |k|^2 in fp32 (see _fp32): under fp16 autocast it could also overflow
    if blocked:
        k = to_blocks(key)
        return LevelMemory(k, k.float().pow(2).sum(-1), to_blocks(value))
    k = to_rows(key)
    return LevelMemory(k, k.float().pow(2).sum(-1), to_rows(value))


def _gather_rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x [B, M, *rest], idx [B, *shape] of row indices -> [B, *shape, *rest]."""
    b, m = x.shape[:2]
    rest = x.shape[2:]
    offset = (torch.arange(b, device=idx.device) * m).view(b, *([1] * (idx.dim() - 1)))
    return x.reshape(b * m, *rest).index_select(0, (idx + offset).reshape(-1)).view(*idx.shape, *rest)


def _fp32(t: torch.Tensor) -> contextlib.AbstractContextManager:
    """Affinities that feed a top-k are computed in fp32 even under autocast: in bf16 (8-bit mantissa) the
    L2 similarities, O(100) in size, are only resolved to ~0.5 and the ranking becomes noise."""
    return torch.autocast(device_type=t.device.type, enabled=False)


def dense_topk_read(
    q: torch.Tensor, mem: LevelMemory, top_k: int, max_elems: int = MAX_ELEMS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense top-k read over plain memory. q [B, N, C] -> (readout [B, N, Cv], idx [B, N, k]).

    k = min(top_k, M); with k >= M it is the plain softmax read over all memory.
    """
    b, n, c = q.shape
    m = mem.keys.shape[1]
    k = min(top_k, m)
    chunk = max(1, max_elems // max(1, b * m))
    outs, idxs = [], []
    scale = 1.0 / math.sqrt(c)
    for s in range(0, n, chunk):
        qs = q[:, s : s + chunk].float()
        with _fp32(qs):
            aff = torch.baddbmm(
                mem.sqnorm.float().unsqueeze(1), qs, mem.keys.float().transpose(1, 2), beta=-1.0, alpha=2.0
            )
            vals, idx = aff.topk(k, dim=-1)  # [B, n, k]
        w = torch.softmax(vals.float() * scale, dim=-1).to(mem.values.dtype)
        v = _gather_rows(mem.values, idx)  # [B, n, k, Cv]
        outs.append(torch.matmul(w.unsqueeze(-2), v).squeeze(-2))
        idxs.append(idx)
    return torch.cat(outs, 1), torch.cat(idxs, 1)


def child_positions(idx: torch.Tensor, coarse_hw: tuple[int, int]) -> torch.Tensor:
    """Coarse memory positions [B, N, k] -> fine positions of their children [B, N, k, 4] (order dy, dx)."""
    h, w = coarse_hw
    t = torch.div(idx, h * w, rounding_mode="floor")
    r = idx - t * (h * w)
    y = torch.div(r, w, rounding_mode="floor")
    x = r - y * w
    base = t * (4 * h * w) + (2 * y) * (2 * w) + 2 * x
    offs = torch.tensor([0, 1, 2 * w, 2 * w + 1], device=idx.device, dtype=idx.dtype)
    return base.unsqueeze(-1) + offs


def guided_topk_read(
    q: torch.Tensor, mem: LevelMemory, coarse_idx: torch.Tensor, top_k: int, max_elems: int = 1 << 21
) -> tuple[torch.Tensor, torch.Tensor]:
    """Guided read at a fine level.

    q [B, C, H, W] fine query keys (H = 2h, W = 2w); mem blocked by the coarse level's positions;
    coarse_idx [B, h*w, k] memory positions chosen at the coarse level for each coarse query pixel.
    Returns (readout [B, Cv, H, W], fine_idx [B, H*W, k'] fine memory positions), k' = min(top_k, 4k).

    Blocks are processed in chunks whose gathered keys stay under `max_elems` (8 MiB in fp32): besides
    cache locality, temporaries above glibc's 32 MiB mmap ceiling would be mapped and page-faulted afresh
    at every frame (measured: a 53 MB gather took 2.5x longer than the same gather into reused memory).
    """
    b, c, hh, ww = q.shape
    h, w = hh // 2, ww // 2
    nc, k = coarse_idx.shape[1], coarse_idx.shape[2]
    kk = min(top_k, 4 * k)
    cv = mem.values.shape[-1]
    qb = to_blocks(q)  # [B, Nc, 4, C]
    cand_all = child_positions(coarse_idx, (h, w)).view(b, nc, 1, 4 * k)
    outs, chosen_parts = [], []
    step = max(1, max_elems // max(1, b * 4 * k * c))
    scale = 1.0 / math.sqrt(c)
    for s in range(0, nc, step):
        e = min(nc, s + step)
        n = e - s
        idx = coarse_idx[:, s:e]
        keys = _gather_rows(mem.keys, idx).view(b, n, 4 * k, c)  # candidates, order (j, child)
        sq = _gather_rows(mem.sqnorm, idx).view(b, n, 1, 4 * k)
        with _fp32(keys):
            aff = torch.matmul(qb[:, s:e].float(), keys.float().transpose(-1, -2)).mul_(2.0).sub_(sq.float())
            vals, sel = aff.topk(kk, dim=-1)  # aff [B, n, 4, 4k]
        wts = torch.softmax(vals.float() * scale, dim=-1).to(mem.values.dtype)
        values = _gather_rows(mem.values, idx).view(b, n, 4 * k, cv)
        sparse = torch.zeros_like(aff, dtype=wts.dtype).scatter_(-1, sel, wts)  # top-k weights, zeros elsewhere
        outs.append(torch.matmul(sparse, values))  # [B, n, 4, Cv]
        chosen_parts.append(torch.gather(cand_all[:, s:e].expand(b, n, 4, 4 * k), -1, sel))
    out = outs[0] if len(outs) == 1 else torch.cat(outs, 1)
    chosen = chosen_parts[0] if len(chosen_parts) == 1 else torch.cat(chosen_parts, 1)
    fine_idx = from_blocks(chosen, h, w).flatten(2).transpose(1, 2)  # [B, H*W, k']
    return from_blocks(out, h, w), fine_idx.contiguous()
