"""Cross-frame attention refinement, CFAR (HSTSG section 3.3, eq. 4-6).

    K_bar = [K_t, K_t-1, K_t-2]      (query keys of the current and 2 previous frames)
    V_bar = [V_t, V_t-1, V_t-2]      (their memory read-outs, before refinement)
    V_attn  = V_t + softmax(Attn(K_t, K_bar)) . L1(V_bar)        (eq. 4-5)
    V_cross = FFN(V_attn) + V_attn                                (eq. 6)

Choices where the paper is vague:
- Only the current frame's pixels are refined (the rows of eq. 4 for frame t); refining the previous
  frames again would change outputs already written.
- Attn is STCN's L2 similarity between keys after a shared learned 1x1 projection to `dim` channels
  (projected once per frame; the history keeps projected keys).
- L1(.) normalises V_bar along the memory (position) axis per channel; we multiply back by the number
  of positions, i.e. divide by the mean absolute value, so the magnitude stays O(1) at every size.
- Window: `window=0` is dense attention over every pixel of the 3 frames (chunked over queries;
  quadratic). `window=r` attends to the (2r+1)^2 pixels around the same position in each of the 3 frames:
  linear in pixels. A dense 3-frame attention at 1/8 and 1/4 is unaffordable at working size 960
  (1/4 has ~30 k pixels: 30 k x 90 k affinities); neighbouring frames move little at those scales, and
  the coarse levels carry the large motion. Out-of-image window positions are excluded, not zero-padded.
- With fewer than 2 previous frames (start of a pass) the attention uses what exists.
- FFN: 1x1 conv C -> 2C, GELU, 1x1 conv 2C -> C, last layer zero-initialised (starts as V_attn).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from .memory_read import csr_rows, sparse_ok
from .refine import channels_last

MAX_ELEMS = 1 << 22  # dense attention chunk (16 MiB fp32), see memory_read.MAX_ELEMS


class CFAR(nn.Module):
    def __init__(self, key_dim: int, value_dim: int, window: int, dim: int) -> None:
        super().__init__()
        self.window = window
        self.proj = nn.Conv2d(key_dim, dim, 1)
        self.ffn = nn.Sequential(
            nn.Conv2d(value_dim, 2 * value_dim, 1), nn.GELU(), nn.Conv2d(2 * value_dim, value_dim, 1)
        )
        nn.init.zeros_(self.ffn[2].weight)
        nn.init.zeros_(self.ffn[2].bias)

    def forward(
        self, key: torch.Tensor, value: torch.Tensor, hist_pkeys: list[torch.Tensor], hist_values: list[torch.Tensor],
        weights: torch.Tensor | None = None, pk: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """key [B, C, H, W], value [B, Cv, H, W]; hist_pkeys / hist_values: the previous frames' *projected*
        keys [B, dim, H, W] and read-outs (newest first). Returns (refined value, this frame's projected key),
        the latter to be handed back as history: each frame's key is projected once.

        ``weights``: the attention weights ``attention_weights`` gave for the same keys (a local window's
        depend on keys only, so a render whose roto alone changed reuses them); None computes them.
        ``pk``: ``project(key)`` when the caller has it already; None projects here.
        """
        if pk is None:
            pk = self.project(key)
        pks = [pk, *hist_pkeys]
        if self.window == 0:
            values = [value, *hist_values]
            out = channels_last(value + self._dense(pks, values) * self._scale(values))  # see with_weights
            return out + self.ffn(out), pk
        if weights is None:
            weights = self._local_weights(pks, self.window)
        return self.with_weights(value, hist_values, weights), pk

    def with_weights(self, value: torch.Tensor, hist_values: list[torch.Tensor], weights: torch.Tensor
                     ) -> torch.Tensor:
        """``forward`` for a local window whose attention ``weights`` are known: no key is read."""
        values = [value, *hist_values]
        # channels-last, the layout the convolutions after it (the FFN, the decoder) take: left NCHW, each of
        # them re-laid it out and the decoder concatenated mixed layouts (same values); at CPU inference the
        # sparse window read gives it so already
        out = channels_last(value + self._local_apply(weights, values, self.window) * self._scale(values))
        return out + self.ffn(out)

    @staticmethod
    def _scale(values: list[torch.Tensor]) -> torch.Tensor:
        """L1 normalisation over all positions of all frames, per channel (see module docstring). Summed over
        rows (``_rows``), whatever the read-outs' layout: the same sums for a history restored from a state."""
        b, c, h, w = values[0].shape
        total = _rows(values[0]).abs().sum(1)
        for v in values[1:]:  # in order, as the sum has always been taken
            total = total + _rows(v).abs().sum(1)
        return (1.0 / (total / (len(values) * h * w) + 1e-6)).view(b, c, 1, 1)

    def project(self, key: torch.Tensor) -> torch.Tensor:
        """The attention key of a frame: projected once, kept as history by the frames after it."""
        return self.proj(key).contiguous()  # NCHW: the history (and a resumed state) has one fixed layout

    def attention_weights(self, pk: torch.Tensor, hist_pkeys: list[torch.Tensor]) -> torch.Tensor | None:
        """The local window's softmax weights [B, F*(2r+1)^2, H, W] (fp32) for the projected key ``pk``, or
        None for dense attention, whose weights (quadratic in pixels) are not worth keeping."""
        if self.window == 0:
            return None
        return self._local_weights([pk, *hist_pkeys], self.window)

    def check_weights(self, weights: torch.Tensor, batch: int, frames: int, size: tuple[int, int]) -> None:
        """ValueError unless ``weights`` are this level's local attention weights for a batch of ``batch`` query
        frames, each with ``frames`` frames (itself and its history) of ``size`` (h, w): weights read back from
        a cache are checked before use (an entry of another shape could otherwise be reshaped into place)."""
        s = 2 * self.window + 1
        want = (batch, frames * s * s, *size)
        if self.window == 0 or tuple(weights.shape) != want:
            raise ValueError(f"CFAR weights of shape {tuple(weights.shape)} do not fit {frames} frames of "
                             f"{size[0]}x{size[1]} with a {s}x{s} window (expected {want})")

    @staticmethod
    def _dense(pks: list[torch.Tensor], values: list[torch.Tensor]) -> torch.Tensor:
        b, d, h, w = pks[0].shape
        n = h * w
        q = pks[0].flatten(2).transpose(1, 2)  # [B, N, d]
        mk = torch.cat([k.flatten(2) for k in pks], 2)  # [B, d, F*N]
        mv = torch.cat([v.flatten(2) for v in values], 2)  # [B, Cv, F*N]
        sq = mk.pow(2).sum(1, keepdim=True)  # [B, 1, F*N]
        chunk = max(1, MAX_ELEMS // max(1, b * mk.shape[2]))
        outs = []
        for s in range(0, n, chunk):
            a = torch.baddbmm(sq, q[:, s : s + chunk], mk, beta=-1.0, alpha=2.0)  # [B, n, F*N]
            a = torch.softmax(a.float() / math.sqrt(d), dim=-1).to(mv.dtype)
            outs.append(torch.bmm(mv, a.transpose(1, 2)))  # [B, Cv, n]
        return torch.cat(outs, 2).view(b, -1, h, w)

    @staticmethod
    def _local_weights(pks: list[torch.Tensor], r: int) -> torch.Tensor:
        """Windowed attention weights as a loop over the (2r+1)^2 shifts of each frame: views of padded maps, no
        unfold copies. Squared norms are padded with +inf, so out-of-image positions get weight exactly 0."""
        # one fixed (NCHW) layout: results must not depend on whether a tensor came from a channels_last conv
        # or from a resumed state, or a resumed render would drift from an uninterrupted one
        pks = [k.contiguous() for k in pks]
        if _batched_windows(pks[0]):
            return _local_weights_batched(pks, r)
        b, d, h, w = pks[0].shape
        size = 2 * r + 1
        q = pks[0]
        n_pos = len(pks) * size * size
        logits = torch.empty(b, n_pos, h, w, device=q.device, dtype=torch.float32)
        i = 0
        for k in pks:
            kp = F.pad(k, (r, r, r, r))
            sqp = F.pad(k.pow(2).sum(1), (r, r, r, r), value=float("inf"))
            for dy in range(size):
                for dx in range(size):
                    dot = (q * kp[:, :, dy : dy + h, dx : dx + w]).sum(1)
                    logits[:, i] = dot.mul_(2.0).sub_(sqp[:, dy : dy + h, dx : dx + w])
                    i += 1
        return torch.softmax(logits.mul_(1.0 / math.sqrt(d)), dim=1)

    @staticmethod
    def _local_apply(weights: torch.Tensor, values: list[torch.Tensor], r: int) -> torch.Tensor:
        b, c, h, w = values[0].shape
        size = 2 * r + 1
        if weights.shape[1] != len(values) * size * size:
            raise ValueError(f"CFAR weights cover {weights.shape[1]} positions; {len(values)} frames with a "
                             f"{size}x{size} window need {len(values) * size * size}")
        if sparse_ok(values[0]):
            # one sparse product over the frames' rows (the read-outs are channels-last, so rows are views), the
            # output channels-last: faster than the loop below, which is 75 small ops at 1/16
            n = len(values) * h * w
            cols = _window_columns(len(values), h, w, r, values[0].device)
            if b > 1:
                cols = (cols + (torch.arange(b, device=cols.device) * n).view(b, 1, 1)).reshape(b * h * w, -1)
            rows = torch.cat([_rows(v) for v in values], 1).reshape(b * n, c)
            wts = weights.permute(0, 2, 3, 1).reshape(b * h * w, -1)
            return csr_rows(cols, wts, rows).view(b, h, w, c).permute(0, 3, 1, 2)
        values = [v.contiguous() for v in values]
        wts = weights.to(values[0].dtype)
        if _batched_windows(values[0]):
            return _local_apply_batched(wts, values, r)
        out = torch.zeros_like(values[0], memory_format=torch.contiguous_format)
        i = 0
        for v in values:
            vp = F.pad(v, (r, r, r, r))
            for dy in range(size):
                for dx in range(size):
                    out.addcmul_(wts[:, i : i + 1], vp[:, :, dy : dy + h, dx : dx + w])
                    i += 1
        return out


def _batched_windows(x: torch.Tensor) -> bool:
    """Whether a window is read as one product per frame instead of a loop over its shifts: training on an
    accelerator. There the loop's small ops cost their launches (most of a frame's ops are these loops),
    where on a CPU they are cheap and their sums are what every cached and resumed render was computed with;
    inference keeps the loop everywhere, so no cached value changes."""
    return x.device.type != "cpu" and torch.is_grad_enabled()


def _windows(x: torch.Tensor, r: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, H, W, 2r+1, 2r+1]: each pixel's window of the map zero-padded by r (a view)."""
    s = 2 * r + 1
    return F.pad(x, (r, r, r, r)).unfold(2, s, 1).unfold(3, s, 1)


def _local_weights_batched(pks: list[torch.Tensor], r: int) -> torch.Tensor:
    """``CFAR._local_weights`` with one product per frame: the same logits in the same (frame, dy, dx) order."""
    b, d, h, w = pks[0].shape
    s = 2 * r + 1
    q = pks[0]
    logits = []
    for k in pks:
        dot = torch.einsum("bdhw,bdhwij->bijhw", q, _windows(k, r)).reshape(b, s * s, h, w)
        sq = F.pad(k.pow(2).sum(1), (r, r, r, r), value=float("inf")).unfold(1, s, 1).unfold(2, s, 1)
        logits.append(2.0 * dot.float() - sq.permute(0, 3, 4, 1, 2).reshape(b, s * s, h, w).float())
    return torch.softmax(torch.cat(logits, 1) * (1.0 / math.sqrt(d)), dim=1)


def _local_apply_batched(weights: torch.Tensor, values: list[torch.Tensor], r: int) -> torch.Tensor:
    """``CFAR._local_apply``'s window sum with one product per frame."""
    b, _, h, w = values[0].shape
    s = 2 * r + 1
    out = None
    for f, v in enumerate(values):
        wf = weights[:, f * s * s : (f + 1) * s * s].reshape(b, s, s, h, w)
        part = torch.einsum("bchwij,bijhw->bchw", _windows(v, r), wf)
        out = part if out is None else out + part
    assert out is not None
    return out


def _rows(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, H*W, C] contiguous: a view of a channels-last map, a copy of any other (so sums over
    them run the same kernel in the same order whatever the map's layout)."""
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c).contiguous()


@functools.lru_cache(maxsize=16)
def _window_columns(frames: int, h: int, w: int, r: int, device: torch.device) -> torch.Tensor:
    """For each pixel (raster order), the rows of its window in each frame's [H*W] rows: [H*W, F*(2r+1)^2], in
    the attention weights' order (frame, dy, dx). A position outside the image is sent to the nearest edge
    pixel: its weight is exactly 0 (its logit is -inf), so it adds nothing, as the zero padding did."""
    s = 2 * r + 1
    y = torch.arange(h, device=device).view(h, 1, 1, 1, 1)
    x = torch.arange(w, device=device).view(1, w, 1, 1, 1)
    f = torch.arange(frames, device=device).view(1, 1, frames, 1, 1)
    d = torch.arange(-r, r + 1, device=device)
    yy = (y + d.view(1, 1, 1, s, 1)).clamp(0, h - 1)
    xx = (x + d.view(1, 1, 1, 1, s)).clamp(0, w - 1)
    return (f * (h * w) + yy * w + xx).reshape(h * w, frames * s * s)
