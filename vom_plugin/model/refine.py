"""Learned edge refinement: the decoder's guided filter made trainable (issue 14, item 4).

The parameter-free guided filter (guided.py) fits ``alpha = a . I + b`` in every window by ridge regression
on the network's own alpha, so it can only sharpen what the 1/4-resolution head already found, with one
``eps`` everywhere. Two small learned corrections, after RVM's deep guided filter:

- at 1/4 resolution, a correction of the window coefficients (a, b) from the coefficients themselves, the
  image and alpha at 1/4 and the decoder's last hidden features, so the network decides where the matte
  should follow the colour harder (hair, fur, motion blur) and where not (texture inside a solid object);
- at full resolution, a residual from two 3x3 convolutions over the image, the filtered alpha and the
  alpha before the filter, for detail under one 1/4 pixel that no linear colour model holds.

Both last layers start at zero, so a network extended with this module renders exactly what it rendered
before, and training from existing weights starts where they stand. Weights files without the module's
tensors load without it (``load_model``): the decoder then runs the plain guided filter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .guided import apply_coefficients, guided_coefficients


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """The full-resolution 3x3 convolutions' input (few channels, many pixels) laid out channels-last: faster
    on CPU, same values."""
    return x.contiguous(memory_format=torch.channels_last)


def cat_channels_last(xs: list[torch.Tensor]) -> torch.Tensor:
    """``channels_last(torch.cat(xs, 1))`` in one pass at inference: concatenated straight into a channels-last
    buffer. torch.cat of a channels-last image with one-channel maps writes NCHW, which then had to be laid out
    again; same values. With gradients (an ``out=`` concatenation has none) it takes the plain path."""
    if torch.is_grad_enabled():
        return channels_last(torch.cat(xs, 1))
    n, _, h, w = xs[0].shape
    dtype = xs[0].dtype
    for x in xs[1:]:
        dtype = torch.promote_types(dtype, x.dtype)
    # concatenated along the last axis of NHWC views: torch's contiguous-output path, faster than a channels-last
    # output of a concatenation along channels (a full-resolution image and two maps: 1.7 -> 1.1 ms); the result
    # is that buffer viewed as NCHW, which is the channels-last layout
    out = torch.empty((n, h, w, sum(x.shape[1] for x in xs)), dtype=dtype, device=xs[0].device)
    torch.cat([x.permute(0, 2, 3, 1) for x in xs], 3, out=out)
    return out.permute(0, 3, 1, 2)


def cat_for_conv(xs: list[torch.Tensor]) -> torch.Tensor:
    """``torch.cat(xs, 1)`` for a convolution to read: at CPU inference laid out channels-last (``cat_channels_last``),
    the layout the convolution takes there (a concatenation of mixed layouts wrote NCHW, which the convolution then
    laid out again; the values are the same); training and other devices keep the plain concatenation."""
    if torch.is_grad_enabled() or xs[0].device.type != "cpu":
        return torch.cat(xs, 1)
    return cat_channels_last(xs)


def conv_relu(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``relu(conv(x))``; at inference on the CPU as one oneDNN convolution with the ReLU applied as it writes.

    The separate ReLU over a full-resolution 8-channel map cost nearly as much as the convolution before it:
    it read back a map that had just left the cache. Fused, the values are the same (the ReLU of the same
    sums). Training (gradients) takes the plain path."""
    if (x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled() and _FUSED is not None
            and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)):
        return _FUSED(x, conv.weight, conv.bias, list(conv.padding), list(conv.stride), list(conv.dilation),
                      conv.groups, "relu", [None], "")
    return F.relu(conv(x))


def _fused_op() -> object | None:
    try:
        return torch.ops.mkldnn._convolution_pointwise if torch.backends.mkldnn.is_available() else None
    except (AttributeError, RuntimeError):  # a torch built without oneDNN's fused operators
        return None


_FUSED = _fused_op()


class EdgeRefiner(nn.Module):
    def __init__(self, feat_channels: int, width: int = 16, fine_width: int = 8) -> None:
        super().__init__()
        self.coef1 = nn.Conv2d(4 + 3 + 1 + feat_channels, width, 1)
        self.coef2 = nn.Conv2d(width, width, 1)
        self.coef3 = nn.Conv2d(width, 4, 1)
        self.fine1 = nn.Conv2d(3 + 1 + 1, fine_width, 3, padding=1)
        self.fine2 = nn.Conv2d(fine_width, 1, 3, padding=1)
        self.zero_last()

    def zero_last(self) -> None:
        """Zero the two output layers: the module then adds nothing (see the module docstring)."""
        for conv in (self.coef3, self.fine2):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, image: torch.Tensor, alpha: torch.Tensor, hidden: torch.Tensor, radius: int,
                eps: float) -> torch.Tensor:
        """image [B, 3, H, W], alpha [B, 1, H, W] (the head's, in [0, 1]), hidden [B, C, H/4, W/4] (the
        decoder's last features) -> refined alpha [B, 1, H, W] (unclamped, fp32)."""
        ab, i_lo, p_lo = guided_coefficients(image, alpha, radius, eps)
        with torch.autocast(device_type=image.device.type, enabled=False):
            x = cat_channels_last([ab, i_lo, p_lo, hidden.float()])  # as the 1x1 convolutions take it
            ab = ab + self.coef3(F.relu(self.coef2(F.relu(self.coef1(x)))))
            out = apply_coefficients(ab, image)
            fine = cat_channels_last([image.float(), out, alpha.float()])
            return out + self.fine2(conv_relu(self.fine1, fine))
