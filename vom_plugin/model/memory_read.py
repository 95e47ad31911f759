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
- Every read has a key half (``*_match``: which positions, what weights; the engine caches it) and a value
  half (``*_gather``), which is all a render whose roto alone changed computes. At CPU inference the 1/16
  value half is one sparse matrix product, and a fine level gathers only the candidates a pixel kept.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from collections.abc import Callable

import torch

# affinity elements per chunk (16 MiB in fp32): temporaries above glibc's 32 MiB mmap ceiling are mapped and
# page-faulted afresh on every call, which costs more than the extra chunks
MAX_ELEMS = 1 << 22


class LevelMemory:
    """One level of memory, frames concatenated frame-major.

    Plain (1/16): keys [B, M, C], sqnorm [B, M], values [B, M, Cv].
    Blocked (1/8, 1/4): keys [B, Mp, 4, C], sqnorm [B, Mp, 4], values [B, Mp, 4, Cv], Mp = parent positions.
    Keys and sqnorm may be ``pending`` (``level_memory`` of a key that is not projected yet): laid out when
    first read, which a render whose matches all come from its cache never does.
    """

    def __init__(self, keys: torch.Tensor | None, sqnorm: torch.Tensor | None, values: torch.Tensor, *,
                 pending: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None) -> None:
        if pending is None and (keys is None or sqnorm is None):
            raise ValueError("LevelMemory needs keys and sqnorm, or a pending computation of them")
        self._keys, self._sqnorm, self.values, self._pending = keys, sqnorm, values, pending

    def _laid_out(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._pending is not None:
            self._keys, self._sqnorm = self._pending()
            self._pending = None
        return self._keys, self._sqnorm  # type: ignore[return-value]

    @property
    def keys(self) -> torch.Tensor:
        return self._laid_out()[0]

    @property
    def sqnorm(self) -> torch.Tensor:
        return self._laid_out()[1]

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
        """Bytes held (keys still pending count nothing)."""
        held = [self.values] if self._pending is not None else [self._keys, self._sqnorm, self.values]
        return sum(t.numel() * t.element_size() for t in held if t is not None)


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


def level_memory(key: torch.Tensor | Callable[[], torch.Tensor], value: torch.Tensor, blocked: bool,
                 bonus: float = 0.0) -> LevelMemory:
    """One frame's key [B, C, H, W] and value [B, Cv, H, W] -> its memory layout. ``key`` may be a function
    that gives it: then the key's layout is made when the memory's keys are first read.

    ``bonus``: added to the softmax logit of every position of this frame in every read (stored as
    ``|k|^2 - bonus * sqrt(C)``, so reads are unchanged); it also favours the frame in the top-k."""
    layout = to_blocks if blocked else to_rows

    def keys_and_sqnorm() -> tuple[torch.Tensor, torch.Tensor]:
        k = layout(key() if callable(key) else key)
        sq = k.float().pow(2).sum(-1)  # |k|^2 in fp32 (see _fp32): under fp16 autocast it could overflow
        return k, (sq - bonus * math.sqrt(k.shape[-1])) if bonus else sq

    if callable(key):
        return LevelMemory(None, None, layout(value), pending=keys_and_sqnorm)
    return LevelMemory(*keys_and_sqnorm(), layout(value))


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


def _dense_chunk(b: int, m: int, max_elems: int) -> int:
    return max(1, max_elems // max(1, b * m))


def dense_topk_match(
    q: torch.Tensor, mem: LevelMemory, top_k: int, max_elems: int = MAX_ELEMS
) -> tuple[torch.Tensor, torch.Tensor]:
    """The key half of a dense top-k read: q [B, N, C] -> (idx [B, N, k], weights [B, N, k] fp32).

    Depends on keys only (memory keys and the query's), not on values: a render whose roto alone changed
    reuses it (the engine caches it per frame). k = min(top_k, M); each row's matches in memory order.
    """
    b, n, c = q.shape
    m = mem.keys.shape[1]
    k = min(top_k, m)
    chunk = _dense_chunk(b, m, max_elems)
    ws, idxs = [], []
    scale = 1.0 / math.sqrt(c)
    for s in range(0, n, chunk):
        qs = q[:, s : s + chunk].float()
        with _fp32(qs):
            aff = torch.baddbmm(
                mem.sqnorm.float().unsqueeze(1), qs, mem.keys.float().transpose(1, 2), beta=-1.0, alpha=2.0
            )
            vals, idx = aff.topk(k, dim=-1, sorted=False)  # [B, n, k]
        # in memory order: one order whatever topk returns, and runs of neighbouring positions that the engine's
        # cache deflates well
        idx, order = idx.sort(dim=-1)
        vals = vals.gather(-1, order)
        ws.append(torch.softmax(vals.float() * scale, dim=-1))
        idxs.append(idx)
    return torch.cat(idxs, 1), torch.cat(ws, 1)


def dense_gather(values: torch.Tensor, idx: torch.Tensor, weights: torch.Tensor, max_elems: int = MAX_ELEMS
                 ) -> torch.Tensor:
    """The value half: memory values [B, M, Cv] -> the weighted sum of the k matched ones [B, N, Cv]."""
    b, n, _ = idx.shape
    if sparse_ok(values):
        return _sparse_gather(values, idx, weights)
    chunk = _dense_chunk(b, values.shape[1], max_elems)
    outs = []
    for s in range(0, n, chunk):
        w = weights[:, s : s + chunk].to(values.dtype)
        v = _gather_rows(values, idx[:, s : s + chunk])  # [B, n, k, Cv]
        outs.append(torch.matmul(w.unsqueeze(-2), v).squeeze(-2))
    return torch.cat(outs, 1)


def sparse_ok(values: torch.Tensor) -> bool:
    """Whether the read can be a sparse-times-dense product: CPU inference in fp32 (training keeps the gather,
    whose gradient is plain autograd; other devices and dtypes keep the path they were measured with)."""
    return values.device.type == "cpu" and values.dtype == torch.float32 and not torch.is_grad_enabled()


def csr_rows(cols: torch.Tensor, weights: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``out[r] = sum_j weights[r, j] * rows[cols[r, j]]`` for cols, weights [R, n] and rows [M, C]: one CSR
    matrix of n entries per row times ``rows``. The rows are summed where they lie, never copied out first
    (R x n x C floats: 17 MB at 1/16 of 480x272 with k = 64); each output row is summed in ``j`` order."""
    r, n = cols.shape
    crow = _row_starts(r, n, cols.dtype, cols.device)
    a = torch.sparse_csr_tensor(crow, cols.reshape(-1), weights.reshape(-1).to(rows.dtype), (r, rows.shape[0]),
                                check_invariants=False)
    return a @ rows


def _beta_warning_given() -> None:
    """torch warns once a process that sparse CSR tensors are in beta: given here, on import, with the warning
    ignored, so no read sets the process's warning filters aside while it runs (``catch_warnings`` is not
    thread-safe: a filter a host set on another thread meanwhile was lost, QA) and nobody is shown it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        torch.sparse_csr_tensor(torch.tensor([0, 1]), torch.tensor([0]), torch.ones(1), (1, 1), check_invariants=False)


_beta_warning_given()


@functools.lru_cache(maxsize=16)
def _row_starts(rows: int, per_row: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A CSR matrix's row starts with ``per_row`` entries in every row (the same few shapes every frame)."""
    return torch.arange(0, rows * per_row + 1, per_row, dtype=dtype, device=device)


def _sparse_gather(values: torch.Tensor, idx: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``dense_gather`` as ``csr_rows``: same sums in the same order, the results equal the gather's."""
    b, n, k = idx.shape
    m = values.shape[1]
    cols = idx + (torch.arange(b, device=idx.device) * m).view(b, 1, 1) if b > 1 else idx
    return csr_rows(cols.reshape(b * n, k), weights.reshape(b * n, k), values.reshape(b * m, -1)).view(b, n, -1)


def dense_topk_read(
    q: torch.Tensor, mem: LevelMemory, top_k: int, max_elems: int = MAX_ELEMS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense top-k read over plain memory. q [B, N, C] -> (readout [B, N, Cv], idx [B, N, k]).

    k = min(top_k, M); with k >= M it is the plain softmax read over all memory.
    """
    idx, w = dense_topk_match(q, mem, top_k, max_elems)
    return dense_gather(mem.values, idx, w, max_elems), idx


def child_positions(idx: torch.Tensor, coarse_hw: tuple[int, int], child: torch.Tensor | None = None) -> torch.Tensor:
    """Coarse memory positions [B, N, k] -> fine positions of their children [B, N, k, 4] (order dy, dx); with
    ``child`` (0-3, idx's shape), the position of that child only (idx's shape).

    Position ``p = (t*h + y)*w + x`` has its first child at ``(t*2h + 2y)*2w + 2x = 4p - 2x``: one remainder,
    no divisions (the frame t and row y need not be known)."""
    _, w = coarse_hw
    base = idx * 4 - torch.remainder(idx, w) * 2
    if child is not None:
        return base + (child >> 1) * (2 * w) + (child & 1)
    offs = torch.tensor([0, 1, 2 * w, 2 * w + 1], device=idx.device, dtype=idx.dtype)
    return base.unsqueeze(-1) + offs


GUIDED_MAX_ELEMS = 1 << 21


def _guided_step(b: int, k: int, c: int, max_elems: int) -> int:
    return max(1, max_elems // max(1, b * 4 * k * c))


def guided_topk_match(
    q: torch.Tensor, mem: LevelMemory, coarse_idx: torch.Tensor, top_k: int, max_elems: int = GUIDED_MAX_ELEMS
) -> tuple[torch.Tensor, torch.Tensor]:
    """The key half of a guided read at a fine level.

    q [B, C, H, W] fine query keys (H = 2h, W = 2w); mem blocked by the coarse level's positions;
    coarse_idx [B, h*w, k] memory positions chosen at the coarse level for each coarse query pixel.
    Returns (sel [B, h*w, 4, k'], weights [B, h*w, 4, k'] fp32): for each fine pixel of each 2x2 block, which
    of the block's 4k candidates it keeps (k' = min(top_k, 4k)) and their softmax weights. Keys only.

    Blocks are processed in chunks whose gathered keys stay under `max_elems` (8 MiB in fp32): besides
    cache locality, temporaries above glibc's 32 MiB mmap ceiling would be mapped and page-faulted afresh
    at every frame.
    """
    b, c = q.shape[:2]
    nc, k = coarse_idx.shape[1], coarse_idx.shape[2]
    kk = min(top_k, 4 * k)
    qb = to_blocks(q)  # [B, Nc, 4, C]
    sels, wts = [], []
    step = _guided_step(b, k, c, max_elems)
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
        wts.append(torch.softmax(vals.float() * scale, dim=-1))
        sels.append(sel)
    return torch.cat(sels, 1), torch.cat(wts, 1)


def guided_fine_idx(coarse_idx: torch.Tensor, sel: torch.Tensor, coarse_hw: tuple[int, int]) -> torch.Tensor:
    """The fine memory positions a guided match kept: [B, H*W, k'] (they guide the next finer level)."""
    h, w = coarse_hw
    # the kept candidates' parents, then their children: k' positions a pixel, not the block's 4k
    chosen = child_positions(_kept_parents(coarse_idx, sel), (h, w), sel & 3)  # [B, Nc, 4, k']
    return from_blocks(chosen, h, w).flatten(2).transpose(1, 2).contiguous()


def guided_gather(
    values: torch.Tensor, coarse_idx: torch.Tensor, sel: torch.Tensor, weights: torch.Tensor,
    coarse_hw: tuple[int, int], key_dim: int, max_elems: int = GUIDED_MAX_ELEMS,
) -> torch.Tensor:
    """The value half of a guided read: blocked memory values [B, Mp, 4, Cv] -> readout [B, Cv, H, W].
    Chunks match ``guided_topk_match``'s (``key_dim`` sizes them). At CPU inference in fp32 the readout is
    laid out channels-last (see ``_sparse_guided_gather``)."""
    if sparse_ok(values):
        return _sparse_guided_gather(values, coarse_idx, sel, weights, coarse_hw)
    b, nc, k = coarse_idx.shape
    h, w = coarse_hw
    cv = values.shape[-1]
    kept = sel.shape[-1]
    rows_of = values.reshape(b, -1, cv)  # row = coarse position * 4 + child (the blocked layout)
    outs = []
    step = _guided_step(b, k, key_dim, max_elems)
    for s in range(0, nc, step):
        e = min(nc, s + step)
        n = e - s
        wts = weights[:, s:e].to(values.dtype)
        if kept < k:
            # each fine pixel keeps k' of its block's 4k candidates: gather just those (8 rows of 256 at 1/8
            # with k = 64 at 1/16), a product and a sum (batched [1, k'] x [k', Cv] matmuls are slower)
            v = _gather_rows(rows_of, _kept_rows(coarse_idx[:, s:e], sel[:, s:e]))  # [B, n, 4, k', Cv]
            outs.append((v * wts.unsqueeze(-1)).sum(-2))  # [B, n, 4, Cv]
        else:
            # the four pixels of a block keep most of its 4k candidates: gather the block's once and weight
            # them with a (mostly non-zero) [4, 4k] matrix
            cand = _gather_rows(values, coarse_idx[:, s:e]).view(b, n, 4 * k, cv)
            sparse = cand.new_zeros(b, n, 4, 4 * k).scatter_(-1, sel[:, s:e], wts)
            outs.append(torch.matmul(sparse, cand))  # [B, n, 4, Cv]
    out = outs[0] if len(outs) == 1 else torch.cat(outs, 1)
    return from_blocks(out, h, w)


def _kept_parents(coarse_idx: torch.Tensor, sel: torch.Tensor) -> torch.Tensor:
    """The coarse positions [B, n, 4, k'] whose children a guided match kept: ``sel`` indexes a block's 4k
    candidates, ordered (parent j, child), so candidate ``s`` is child ``s & 3`` of parent ``s >> 2``."""
    b, n, k = coarse_idx.shape
    return torch.gather(coarse_idx.unsqueeze(2).expand(b, n, 4, k), -1, sel >> 2)


def _kept_rows(coarse_idx: torch.Tensor, sel: torch.Tensor) -> torch.Tensor:
    """The blocked memory rows [B, n, 4, k'] (row = parent * 4 + child) a guided match kept."""
    return (_kept_parents(coarse_idx, sel) << 2) | (sel & 3)


def _sparse_guided_gather(values: torch.Tensor, coarse_idx: torch.Tensor, sel: torch.Tensor, weights: torch.Tensor,
                          coarse_hw: tuple[int, int]) -> torch.Tensor:
    """``guided_gather`` as ``csr_rows``, one row per fine pixel in raster order: the readout comes out as
    [B, H*W, Cv] rows, i.e. channels-last, which is what CFAR's sparse read and the decoder's convolutions
    take, so none of them lays it out again. Each pixel's k' products are summed in the same order as the
    gather sums them; the results agree to about 1e-6, not always bit for bit."""
    b, nc, _ = coarse_idx.shape
    h, w = coarse_hw
    cv = values.shape[-1]
    kept = sel.shape[-1]
    cols = _kept_rows(coarse_idx, sel)
    if b > 1:
        cols = cols + (torch.arange(b, device=cols.device) * values.shape[1] * 4).view(b, 1, 1, 1)

    def raster(t: torch.Tensor) -> torch.Tensor:  # (block y, x, child dy, dx) -> pixel (2y + dy, 2x + dx)
        return t.view(b, h, w, 2, 2, kept).permute(0, 1, 3, 2, 4, 5).reshape(b * 4 * h * w, kept)

    out = csr_rows(raster(cols), raster(weights), values.reshape(-1, cv))
    return out.view(b, 2 * h, 2 * w, cv).permute(0, 3, 1, 2)


def guided_topk_read(
    q: torch.Tensor, mem: LevelMemory, coarse_idx: torch.Tensor, top_k: int, max_elems: int = GUIDED_MAX_ELEMS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Guided read at a fine level (see ``guided_topk_match``).

    Returns (readout [B, Cv, H, W], fine_idx [B, H*W, k'] fine memory positions), k' = min(top_k, 4k).
    """
    hw = (q.shape[2] // 2, q.shape[3] // 2)
    sel, w = guided_topk_match(q, mem, coarse_idx, top_k, max_elems)
    return (guided_gather(mem.values, coarse_idx, sel, w, hw, q.shape[1], max_elems),
            guided_fine_idx(coarse_idx, sel, hw))
