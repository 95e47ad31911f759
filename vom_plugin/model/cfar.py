"""Cross-frame attention refinement, CFAR (HSTSG section 3.3, eq. 4-6).

    K_bar = [K_t, K_t-1, K_t-2]      (query keys of the current and 2 previous frames)
    V_bar = [V_t, V_t-1, V_t-2]      (their memory read-outs, before refinement)
    V_attn  = V_t + softmax(Attn(K_t, K_bar)) . L1(V_bar)        (eq. 4-5)
    V_cross = FFN(V_attn) + V_attn                                (eq. 6)

Choices where the paper is vague:
- Only the current frame's pixels are refined (the rows of eq. 4 for frame t); refining the previous
  frames again would change outputs already written.
- Attn is STCN's L2 similarity between keys after a shared learned 1x1 projection to `dim` channels.
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

import math

import torch
import torch.nn.functional as F
from torch import nn

MAX_ELEMS = 1 << 25


def l1_normalise(v: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Divide by the mean absolute value over `dims` (L1 normalisation times the number of positions)."""
    return v / (v.abs().mean(dim=dims, keepdim=True) + 1e-6)


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
        self, key: torch.Tensor, value: torch.Tensor, hist_keys: list[torch.Tensor], hist_values: list[torch.Tensor]
    ) -> torch.Tensor:
        """key [B, C, H, W], value [B, Cv, H, W]; hist_* the previous frames' (newest first) -> [B, Cv, H, W]."""
        keys = torch.cat([key, *hist_keys], 0)  # [F*B, C, H, W], frame-major
        values = torch.stack([value, *hist_values], 0)  # [F, B, Cv, H, W]
        values = l1_normalise(values, (0, 3, 4))
        pk = self.proj(keys)
        nf = values.shape[0]
        pk = pk.view(nf, -1, *pk.shape[1:])  # [F, B, d, H, W]
        attn = self._dense(pk, values) if self.window == 0 else self._local(pk, values, self.window)
        out = value + attn
        return out + self.ffn(out)

    @staticmethod
    def _dense(pk: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        nf, b, d, h, w = pk.shape
        n = h * w
        q = pk[0].flatten(2).transpose(1, 2)  # [B, N, d]
        mk = pk.permute(1, 2, 0, 3, 4).reshape(b, d, nf * n)  # [B, d, F*N]
        mv = values.permute(1, 2, 0, 3, 4).reshape(b, -1, nf * n)  # [B, Cv, F*N]
        sq = mk.pow(2).sum(1, keepdim=True)  # [B, 1, F*N]
        chunk = max(1, MAX_ELEMS // max(1, b * nf * n))
        outs = []
        for s in range(0, n, chunk):
            a = torch.baddbmm(sq, q[:, s : s + chunk], mk, beta=-1.0, alpha=2.0)  # [B, n, F*N]
            a = torch.softmax(a.float() / math.sqrt(d), dim=-1).to(mv.dtype)
            outs.append(torch.bmm(mv, a.transpose(1, 2)))  # [B, Cv, n]
        return torch.cat(outs, 2).view(b, -1, h, w)

    @staticmethod
    def _local(pk: torch.Tensor, values: torch.Tensor, r: int) -> torch.Tensor:
        nf, b, d, h, w = pk.shape
        n, size = h * w, 2 * r + 1
        s = size * size
        q = pk[0].reshape(b, d, 1, n)
        ones = torch.ones(1, 1, h, w, device=pk.device, dtype=pk.dtype)
        invalid = F.unfold(ones, size, padding=r) == 0  # [1, s, N]: window positions outside the image
        logits = []
        for t in range(nf):
            k = pk[t]
            ku = F.unfold(k, size, padding=r).view(b, d, s, n)
            sq = F.unfold(k.pow(2).sum(1, keepdim=True), size, padding=r)  # [B, s, N]
            a = (q * ku).sum(1).mul_(2.0).sub_(sq)
            logits.append(a.masked_fill_(invalid, float("-inf")))
        wts = torch.softmax(torch.cat(logits, 1).float() / math.sqrt(d), dim=1).to(values.dtype)  # [B, F*s, N]
        out = None
        for t in range(nf):
            vu = F.unfold(values[t], size, padding=r).view(b, -1, s, n)
            part = (wts[:, t * s : (t + 1) * s].unsqueeze(1) * vu).sum(2)
            out = part if out is None else out + part
        return out.view(b, -1, h, w)
