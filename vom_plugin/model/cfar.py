"""Cross-frame attention refinement, CFAR (HSTSG section 3.3, eq. 4-6).

    K_bar = [K_t, K_t-1, K_t-2]      (query keys of the current and 2 previous frames)
    V_bar = [V_t, V_t-1, V_t-2]      (their memory read-outs, before refinement)
    V_attn  = V_t + softmax(Attn(K_t, K_bar)) . L1(V_bar)        (eq. 4-5)
    V_cross = FFN(V_attn) + V_attn                                (eq. 6)

Choices where the paper is vague:
- Only the current frame's pixels are refined (the rows of eq. 4 for frame t); refining the previous
  frames again would change outputs already written.
- Attn is STCN's L2 similarity between keys after a shared learned 1x1 projection (identity at init).
- L1(.) normalises V_bar along the memory (position) axis per channel; we multiply back by the number
  of positions, i.e. divide by the mean absolute value, so the magnitude stays O(1) at every size.
- At 1/16 the attention is dense over the 3 frames (chunked over queries). At 1/8 and 1/4 a dense
  3-frame attention is quadratic (at working size 960: 1/4 has ~30 k pixels, 90 k keys): there each
  pixel attends to a (2r+1)^2 window around the same position in each of the 3 frames (r = 1: 27
  positions). Neighbouring frames of a shot move little at 1/8-1/4 of the working size, and the coarse
  level's dense attention already carries the large motion.
- With fewer than 2 previous frames (start of a pass) the attention uses what exists.
- FFN: 1x1 conv C -> 2C, GELU, 1x1 conv 2C -> C, last layer zero-initialised so CFAR starts near
  V_t + attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .memory_read import MAX_ELEMS, l2_affinity


def l1_normalise(v: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Divide by the mean absolute value over `dims` (L1 normalisation times the number of positions)."""
    return v / (v.abs().mean(dim=dims, keepdim=True) + 1e-6)


class CFAR(nn.Module):
    def __init__(self, key_dim: int, value_dim: int, window: int | None) -> None:
        super().__init__()
        self.window = window  # None: dense over all pixels of the frames; r: local (2r+1)^2 window
        self.proj = nn.Conv2d(key_dim, key_dim, 1)
        with torch.no_grad():
            self.proj.weight.copy_(torch.eye(key_dim).view(key_dim, key_dim, 1, 1))
            self.proj.bias.zero_()
        self.ffn = nn.Sequential(
            nn.Conv2d(value_dim, 2 * value_dim, 1), nn.GELU(), nn.Conv2d(2 * value_dim, value_dim, 1)
        )
        nn.init.zeros_(self.ffn[2].weight)
        nn.init.zeros_(self.ffn[2].bias)

    def forward(
        self,
        key: torch.Tensor,
        value: torch.Tensor,
        hist_keys: list[torch.Tensor],
        hist_values: list[torch.Tensor],
    ) -> torch.Tensor:
        """key [B, C, H, W], value [B, Cv, H, W]; hist_* the previous frames' (newest first) -> [B, Cv, H, W]."""
        keys = torch.stack([key, *hist_keys], 2)  # [B, C, F, H, W]
        values = torch.stack([value, *hist_values], 2)  # [B, Cv, F, H, W]
        values = l1_normalise(values, (2, 3, 4))
        b, c, f, h, w = keys.shape
        pk = self.proj(keys.transpose(1, 2).reshape(b * f, c, h, w)).view(b, f, c, h, w).transpose(1, 2)
        if self.window is None:
            attn = self._dense(pk, values)
        else:
            attn = self._local(pk, values, self.window)
        out = value + attn
        return out + self.ffn(out)

    @staticmethod
    def _dense(pk: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = pk.shape
        q = pk[:, :, 0].reshape(b, c, h * w)
        mk = pk.reshape(b, c, f * h * w)
        mv = values.reshape(b, values.shape[1], f * h * w)
        chunk = max(1, MAX_ELEMS // max(1, b * f * h * w))
        outs = []
        for s in range(0, h * w, chunk):
            a = torch.softmax(l2_affinity(mk, q[:, :, s : s + chunk]), dim=1)  # [B, F*H*W, n]
            outs.append(torch.bmm(mv, a))
        return torch.cat(outs, 2).view(b, -1, h, w)

    @staticmethod
    def _local(pk: torch.Tensor, values: torch.Tensor, r: int) -> torch.Tensor:
        b, c, f, h, w = pk.shape
        q = pk[:, :, 0]
        scale = c**-0.5
        kp = F.pad(pk, (r, r, r, r))
        vp = F.pad(values, (r, r, r, r))
        valid = F.pad(torch.ones(1, 1, h, w, device=pk.device, dtype=pk.dtype), (r, r, r, r))
        logits, shifted = [], []
        for t in range(f):
            for dy in range(2 * r + 1):
                for dx in range(2 * r + 1):
                    k = kp[:, :, t, dy : dy + h, dx : dx + w]
                    a = (2.0 * (q * k).sum(1) - k.pow(2).sum(1)) * scale
                    a = a.masked_fill(valid[:, 0, dy : dy + h, dx : dx + w] == 0, float("-inf"))
                    logits.append(a)
                    shifted.append((t, dy, dx))
        wts = torch.softmax(torch.stack(logits, 1), dim=1)  # [B, F*(2r+1)^2, H, W]
        out = torch.zeros_like(values[:, :, 0])
        for i, (t, dy, dx) in enumerate(shifted):
            out = out + wts[:, i : i + 1] * vp[:, :, t, dy : dy + h, dx : dx + w]
        return out
