"""Decoder: refined read-outs + key-encoder skips -> mask logits and alpha at working resolution.

STCN's decoder shape (1/16 -> 1/8 -> 1/4, then x4), with the read-out of each level entering at its own
scale (HSTSG: "fed into the decoder through shortcut connections at the corresponding scale").
Choices where the paper is vague:
- Two outputs from a shared 1/4 head: mask logits (the semantic mask) and an alpha. Both are upsampled
  x4 bilinearly to working resolution.
- A small full-resolution head (two 3x3 convs over the image and the upsampled outputs) adds a residual
  to the alpha so soft edges can follow the image rather than the bilinear ramp. It is cheap (8 channels).
- Alpha is clamped to [0, 1], not squashed by a sigmoid: compositing needs exact 0 and 1 away from edges.
  The clamp's gradient is one-sided (``clamp_inward``): a pixel outside [0, 1] is pulled back by a loss
  that wants it inside, never pushed further out. A plain straight-through clamp let losses that a
  clamped pixel can never satisfy push the raw alpha (and the 1/4 features) without bound, and the mask
  logits, read from the same features, drifted with it. A hard clamp (no gradient outside) would leave a
  pixel stuck at a wrong 0 for good.
- Then a fast guided filter (guided.py) makes the alpha locally linear in the image's colour, so edges sit
  on the image's edges instead of the 1/4-resolution head's blobs; clamped again after it. With
  ``edge_refine`` the filter is the learned one of refine.py (the plain filter plus two corrections that
  start at zero); weights files trained before it existed run the plain filter.
- No normalisation layers in the decoder (as STCN): nothing depends on batch statistics here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .guided import fast_guided_filter
from .refine import EdgeRefiner, cat_channels_last, cat_for_conv, conv_relu


class ResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


def up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class Decoder(nn.Module):
    def __init__(
        self,
        feat_channels: tuple[int, int, int],  # key encoder (c4, c8, c16)
        value_dims: tuple[int, int, int],  # read-outs at (1/16, 1/8, 1/4)
        dims: tuple[int, int, int],  # decoder widths at (1/16, 1/8, 1/4)
        guided_radius: int = 0,
        guided_eps: float = 1e-3,
        edge_refine: bool = False,
    ) -> None:
        super().__init__()
        self.guided_radius = int(guided_radius)
        self._filtered = self.guided_radius > 0
        # The guided filter's (radius, eps) travel with the weights (``set_guided``, chosen on validation by
        # ``vom train --calibrate``): the refinement learns its corrections for one setting. A state without
        # them keeps the module's own (a fresh network's: the config's, what files from before were trained with).
        self.register_buffer("guided", torch.tensor([float(guided_radius), float(guided_eps)]))
        # the eps as the buffer holds it (float32), as a loaded copy of this network will have it: the filter's
        # float64 solves tell 1e-4 from float32's 1e-4 apart
        self.guided_eps = float(self.guided[1])
        self._register_load_state_dict_pre_hook(self._default_guided)
        self.register_load_state_dict_post_hook(lambda module, _keys: module._sync_guided())
        c4, c8, c16 = feat_channels
        v16, v8, v4 = value_dims
        d16, d8, d4 = dims
        self.thin16 = nn.Conv2d(c16, d16, 1)
        self.in16 = nn.Conv2d(v16 + d16, d16, 3, padding=1)
        self.res16 = ResBlock(d16)
        self.in8 = nn.Conv2d(d16 + c8 + v8, d8, 1)
        self.res8 = ResBlock(d8)
        self.in4 = nn.Conv2d(d8 + c4 + v4, d4, 1)
        self.res4 = ResBlock(d4)
        self.head = nn.Conv2d(d4, 2, 3, padding=1)
        self.fine1 = nn.Conv2d(3 + 2, 8, 3, padding=1)
        self.fine2 = nn.Conv2d(8, 1, 3, padding=1)
        nn.init.zeros_(self.fine2.weight)
        nn.init.zeros_(self.fine2.bias)
        with torch.no_grad():
            self.head.bias.copy_(torch.tensor([0.0, 0.5]))  # alpha starts mid-range, not clamped flat
        self.refine: EdgeRefiner | None = EdgeRefiner(d4) if edge_refine and self.guided_radius > 0 else None

    def _default_guided(self, state: dict, prefix: str, *args: object) -> None:
        state.setdefault(prefix + "guided", self.guided.detach().clone())

    def _sync_guided(self) -> None:
        # Whether there is a filter at all is the network's structure (the refinement is built on it), fixed by
        # its config: a file may move the radius, never switch the filter on or off.
        radius, eps = (float(v) for v in self.guided)
        whole = abs(radius - round(radius)) <= 1e-3  # fp16 files, weight averages
        fits = round(radius) >= 1 if self._filtered else round(radius) == 0
        if not whole or not fits or not eps > 0:
            want = "a whole radius >= 1 (the network is built with the filter)" if self._filtered else \
                "radius 0 (the network is built without the filter)"
            raise ValueError(f"guided filter radius {radius:g}, eps {eps:g}: expected {want}, eps > 0")
        self.guided_radius, self.guided_eps = int(round(radius)), eps

    def set_guided(self, radius: int, eps: float) -> None:
        """Set the guided filter's radius (at 1/4 resolution) and eps; saved with the weights."""
        with torch.no_grad():
            self.guided.copy_(torch.tensor([float(radius), float(eps)]))
        self._sync_guided()

    def forward(
        self,
        image: torch.Tensor,
        feats: tuple[torch.Tensor, torch.Tensor, torch.Tensor],  # (f16, f8, f4)
        readouts: tuple[torch.Tensor, torch.Tensor, torch.Tensor],  # (r16, r8, r4)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image [B, 3, H, W] in [0, 1]. Returns (mask_logits, alpha), each [B, 1, H, W]."""
        f16, f8, f4 = feats
        r16, r8, r4 = readouts
        x = F.relu(self.in16(cat_for_conv([r16, self.thin16(f16)])))
        x = self.res16(x)
        x = self.res8(F.relu(self.in8(cat_for_conv([up2(x), f8, r8]))))
        x = self.res4(F.relu(self.in4(cat_for_conv([up2(x), f4, r4]))))
        hidden = F.relu(x)
        out = self.head(hidden)
        out = F.interpolate(_planar(out), size=image.shape[-2:], mode="bilinear", align_corners=False)
        mask_logits, alpha_raw = out[:, :1], out[:, 1:]
        alpha_raw = alpha_raw + self.fine2(conv_relu(self.fine1, cat_channels_last([image, out])))
        alpha = clamp_inward(alpha_raw)
        if self.refine is not None:
            alpha = clamp_inward(self.refine(image, alpha, hidden, self.guided_radius, self.guided_eps).to(alpha.dtype))
        elif self.guided_radius > 0:
            alpha = clamp_inward(fast_guided_filter(image, alpha, self.guided_radius, self.guided_eps))
        return mask_logits, alpha


def _planar(x: torch.Tensor) -> torch.Tensor:
    """A few-channel map in NCHW before a bilinear upsampling: from channels-last (what a convolution leaves on
    the CPU) torch upsamples 2-4 channels several times slower."""
    return x.contiguous() if x.shape[1] <= 4 else x


class _ClampInward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return x.clamp(0.0, 1.0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        # descent moves x by -grad: below 0 only a negative gradient moves it up, above 1 only a positive one
        blocked = ((x < 0) & (grad > 0)) | ((x > 1) & (grad < 0))
        return grad.masked_fill(blocked, 0.0)


def clamp_inward(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1]; outside it, only gradients that point back into [0, 1] pass."""
    return _ClampInward.apply(x)
