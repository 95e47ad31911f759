"""Learned detail refinement at working resolution (issue 14, item 4): the matte's fine structure from the image.

The decoder's alpha comes from 1/4-resolution features, sharpened by a guided filter that can only follow the
colour linearly within a window (refine.py). Strands of fur and hair thinner than a 1/4 pixel, and the faint
alpha around them, are mostly lost there (on the validation shots, 57% of the MAD is in the pixels where
0 < alpha < 1, and the prediction there is mostly too low). This module looks at the full-resolution image
next to the decoder's alpha and mask and adds a residual, after Deep Image Matting's refinement stage: a
small encoder-decoder (full resolution and 1/2, dilated at 1/2 for a receptive field of about 25 pixels).

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

    def forward(self, image: torch.Tensor, alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """image [B, 3, H, W] in [0, 1], alpha and mask (probabilities) [B, 1, H, W] -> the residual to add to
        alpha [B, 1, H, W], fp32."""
        with torch.autocast(device_type=image.device.type, enabled=False):
            x = cat_channels_last([image.float(), alpha.float(), mask.float()])
            full = conv_relu(self.full1, x)
            half = conv_relu(self.down, full)
            half = conv_relu(self.half2, conv_relu(self.half1, half))
            up = F.interpolate(half, size=full.shape[-2:], mode="bilinear", align_corners=False)
            fused = conv_relu(self.fuse, cat_channels_last([full, up]))
            return self.out(fused)
