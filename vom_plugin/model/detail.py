"""Learned detail refinement at working resolution (issue 14, item 4): the matte's fine structure from the image.

The decoder's alpha comes from 1/4-resolution features, sharpened by a guided filter that can only follow the
colour linearly within a window (refine.py): strands of fur and hair thinner than a 1/4 pixel, and the faint
alpha around them, are mostly lost there. This module looks at the full-resolution image next to the decoder's
alpha and mask and adds a residual, after Deep Image Matting's refinement stage: a small encoder-decoder (full
resolution and 1/2, dilated at 1/2, so each output sees about 18 pixels in every direction).

The residual is gated to the band where the decoder is unsure (0.01 < alpha < 0.99, grown by 8 to 12
pixels on a 4-pixel grid): where the decoder says exactly 0 or 1, far from any edge, nothing is added (no
haze can appear in a clear background), and at inference the module runs only on the band's bounding box plus
a margin wider than its receptive field, which gives the same values as the whole frame at a fraction of the
cost when the object is small.

It is applied to what is published, never to what memory is written from: memory keeps reading the decoder's
alpha, so the module is a per-frame step that cannot make a shot drift, and it can be trained on its own with
the rest of the network frozen (``vom train --train-only detail``). Its last layer starts at zero, so a network
extended with it renders exactly what it rendered before; weights files without it load without it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .refine import cat_channels_last, conv_relu

BAND = (0.01, 0.99)  # the decoder's alpha counts as unsure strictly between these
CELL = 4  # the gate's grid (pixels): the band is found and grown on it, and crops start on it (even: stride 2)
GROW = 2  # cells the band grows by on each side (8-12 pixels)
HALO = 6 * CELL  # a crop's margin around the gate: wider than the receptive field's reach (about 18 pixels)


class DetailRefiner(nn.Module):
    def __init__(self, width: int = 12, inner: int = 24) -> None:
        super().__init__()
        self.full1 = nn.Conv2d(3 + 1 + 1, width, 3, padding=1)
        self.down = nn.Conv2d(width, inner, 3, stride=2, padding=1)
        self.half1 = nn.Conv2d(inner, inner, 3, padding=2, dilation=2)
        self.half2 = nn.Conv2d(inner, inner, 3, padding=4, dilation=4)
        self.fuse = nn.Conv2d(width + inner, width, 1)
        self.out = nn.Conv2d(width, 1, 3, padding=1)
        self.zero_last()

    def zero_last(self) -> None:
        """Zero the output layer: the module then adds nothing (see the module docstring)."""
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @staticmethod
    def gate(alpha: torch.Tensor) -> torch.Tensor:
        """[B, 1, H, W] alpha -> the band where the residual may be non-zero, at CELL resolution [B, 1, h, w]
        (ceil), 1.0 inside."""
        lo, hi = BAND
        unsure = ((alpha > lo) & (alpha < hi)).float()
        h, w = alpha.shape[-2:]
        cells = F.max_pool2d(unsure, CELL, ceil_mode=True) if h >= CELL and w >= CELL else \
            unsure.amax(dim=(-2, -1), keepdim=True).expand(-1, -1, -(-h // CELL), -(-w // CELL))
        return F.max_pool2d(cells, 2 * GROW + 1, stride=1, padding=GROW)

    def forward(self, image: torch.Tensor, alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """image [B, 3, H, W] in [0, 1], alpha and mask (probabilities) [B, 1, H, W] -> the residual to add to
        alpha [B, 1, H, W], fp32, zero outside the gate."""
        h, w = alpha.shape[-2:]
        with torch.no_grad():
            cells = self.gate(alpha.float())
            full_gate = F.interpolate(cells, scale_factor=CELL, mode="nearest")[..., :h, :w]
        if torch.is_grad_enabled() or alpha.shape[0] != 1:
            return self.residual(image, alpha, mask) * full_gate
        # inference, one frame: only the gate's bounding box plus HALO; outside it the residual is zero anyway
        out = torch.zeros_like(alpha, dtype=torch.float32)
        rows = cells[0, 0].amax(1).nonzero()
        if rows.numel() == 0:
            return out
        cols = cells[0, 0].amax(0).nonzero()
        y0, y1 = max(0, int(rows[0]) * CELL - HALO), min(h, (int(rows[-1]) + 1) * CELL + HALO)
        x0, x1 = max(0, int(cols[0]) * CELL - HALO), min(w, (int(cols[-1]) + 1) * CELL + HALO)
        crop = (..., slice(y0, y1), slice(x0, x1))
        out[crop] = self.residual(image[crop], alpha[crop], mask[crop]) * full_gate[crop]
        return out

    def residual(self, image: torch.Tensor, alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The ungated residual of the whole given area."""
        with torch.autocast(device_type=image.device.type, enabled=False):
            x = cat_channels_last([image.float(), alpha.float(), mask.float()])
            full = conv_relu(self.full1, x)
            half = conv_relu(self.down, full)
            half = conv_relu(self.half2, conv_relu(self.half1, half))
            up = F.interpolate(half, size=full.shape[-2:], mode="bilinear", align_corners=False)
            fused = conv_relu(self.fuse, cat_channels_last([full, up]))
            return self.out(fused)
