"""Hierarchical key and value encoders (HSTSG section 3.1, STCN-style).

Key encoder: ResNet stem + layer1..3 -> features at 1/4, 1/8, 1/16 and 64-d keys at each level
(3x3 projection at 1/16 as STCN; 1x1 at 1/8 and 1/4, where a 3x3 over the large maps costs more than the
rest of the read). Keys depend on pixels only, which is what lets the engine cache them per frame.

Value encoder: a ResNet18 topology over the frame's mask and alpha, fused at every level with the key
encoder's features of the same frame (STCN fuses at 1/16 only; HSTSG needs values at all three levels).
- `full`: own 7x7 stem over image (normalised) + mask + alpha, full-width layers.
- `lite`: no second stem over the image: the key encoder's 1/4 features stand in for it, and mask + alpha
  enter at 1/4 by space-to-depth (4x4 pixels -> 16 channels each), which keeps sub-pixel edge detail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .deferred import deferred as later
from .effnet import EfficientNetLiteTrunk
from .refine import cat_channels_last, cat_for_conv
from .resnet import BLOCKS, BasicBlock, Trunk, conv_bn, make_stem


@dataclass
class KeyFeatures:
    """Per-frame output of the key encoder: keys [B, Ck, h, w] and backbone features at 1/16, 1/8, 1/4."""

    key16: torch.Tensor
    key8: torch.Tensor
    key4: torch.Tensor
    feat16: torch.Tensor
    feat8: torch.Tensor
    feat4: torch.Tensor

    def keys(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.key16, self.key8, self.key4

    def key(self, level: int) -> torch.Tensor:
        """The key at ``level`` 0 (1/16), 1 (1/8) or 2 (1/4); ``DeferredKeys`` project that level alone."""
        return getattr(self, ("key16", "key8", "key4")[level])

    def to_dict(self) -> dict[str, torch.Tensor]:
        """CPU tensors by field name (what the runner caches on disk)."""
        return {f.name: getattr(self, f.name).detach().cpu().contiguous() for f in fields(self)}

    def to_dict_lazy(self) -> dict[str, torch.Tensor]:
        """The tensors by field name, as they are (no copy, same device)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, torch.Tensor], device: torch.device | str | None = None) -> KeyFeatures:
        return cls(**{f.name: (d[f.name] if device is None else d[f.name].to(device)) for f in fields(cls)})

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> KeyFeatures:
        return KeyFeatures(**{f.name: getattr(self, f.name).to(device, dtype) for f in fields(self)})

    def select(self, i: int | slice) -> KeyFeatures:
        """Index the batch axis (forward_clip encodes all frames of a clip at once)."""
        return KeyFeatures(**{f.name: getattr(self, f.name)[i] for f in fields(self)})

    def key_channels(self) -> tuple[int, int, int]:
        """The keys' channels at 1/16, 1/8, 1/4."""
        return self.key16.shape[1], self.key8.shape[1], self.key4.shape[1]

    def projected(self) -> bool:
        """Whether the keys exist yet (always, except for ``DeferredKeys`` that nothing has read)."""
        return True


class DeferredKeys(KeyFeatures):
    """KeyFeatures whose keys are projected from the features when something first reads them, level by level.

    At inference the keys serve the memory match and CFAR's attention weights only, and a render whose roto
    alone changed takes the matches and CFAR's weights at 1/16 and 1/4 from its cache: its frames read the 1/8
    key only (for CFAR's weights there), and the other projections (with CFAR's and the memory's layouts of
    them) are skipped. Read later (a step whose cached entries are gone, a saved memory state), they are
    computed then, from the same features by the same convolutions: the same values as projected at once.
    """

    def __init__(self, project: tuple[Callable[[], torch.Tensor], Callable[[], torch.Tensor],
                                      Callable[[], torch.Tensor]],
                 feat16: torch.Tensor, feat8: torch.Tensor, feat4: torch.Tensor,
                 key_channels: tuple[int, int, int]) -> None:  # not the dataclass __init__: keys are properties
        self.feat16, self.feat8, self.feat4 = feat16, feat8, feat4
        self._project: list[Callable[[], torch.Tensor] | None] = list(project)  # (1/16, 1/8, 1/4)
        self._keys: list[torch.Tensor | None] = [None, None, None]
        self._channels = key_channels
        self.codes: dict[str, Any] | None = None  # the engine's 8-bit codes of the features, kept for its cache

    def _key(self, level: int) -> torch.Tensor:
        key = self._keys[level]
        if key is None:
            project = self._project[level]
            assert project is not None
            key = self._keys[level] = project()
            self._project[level] = None
        return key

    key16 = property(lambda self: self._key(0))  # type: ignore[assignment]
    key8 = property(lambda self: self._key(1))  # type: ignore[assignment]
    key4 = property(lambda self: self._key(2))  # type: ignore[assignment]

    def key_channels(self) -> tuple[int, int, int]:
        return self._channels

    def projected(self) -> bool:
        return all(k is not None for k in self._keys)


@dataclass
class ValueFeatures:
    value16: torch.Tensor
    value8: torch.Tensor
    value4: torch.Tensor

    def values(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.value16, self.value8, self.value4


class Adapters(nn.Module):
    """The pretrained trunk's taps -> the widths the rest of the network reads (conv + ReLU per level)."""

    def __init__(self, cin: tuple[int, int, int], cout: tuple[int, int, int]) -> None:
        super().__init__()
        self.a4 = nn.Conv2d(cin[0], cout[0], 1)  # 1x1 at 1/4: a 3x3 at that resolution is dear
        self.a8 = nn.Conv2d(cin[1], cout[1], 3, padding=1)
        self.a16 = nn.Conv2d(cin[2], cout[2], 3, padding=1)

    def forward(self, f4: torch.Tensor, f8: torch.Tensor, f16: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # NCHW-contiguous out: the memory read and the caches flatten these by view
        return tuple(F.relu(a(f)).contiguous() for a, f in ((self.a4, f4), (self.a8, f8), (self.a16, f16)))


class KeyEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.pretrained_trunk = cfg.key_backbone == "effnet_lite0"
        if self.pretrained_trunk:
            self.stem = None
            self.trunk = EfficientNetLiteTrunk()
            self.adapt = Adapters(self.trunk.channels, cfg.key_widths)
            c4, c8, c16 = cfg.key_widths
        else:
            self.stem = make_stem(3, cfg.key_widths[0])
            self.trunk = Trunk(cfg.key_backbone, cfg.key_widths[0], cfg.key_widths)
            self.adapt = None
            c4, c8, c16 = self.trunk.channels
        self.channels = (c4, c8, c16)
        self.proj16 = nn.Conv2d(c16, cfg.key_dim, 3, padding=1)
        self.proj8 = nn.Conv2d(c8, cfg.key_dim, 1)
        self.proj4 = nn.Conv2d(c4, cfg.key_dim, 1)
        for p in (self.proj16, self.proj8, self.proj4):
            nn.init.orthogonal_(p.weight.view(p.weight.shape[0], -1))  # STCN: orthogonal key projection
            nn.init.zeros_(p.bias)

    def forward(self, x: torch.Tensor) -> KeyFeatures:
        """x: the image as the trunk expects it (HSTSG.encode_key scales it)."""
        return self.project(*self.features(x))

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The backbone's features (f4, f8, f16): all of the encoder's cost, and all a cache must keep."""
        if self.adapt is not None:
            # channels-last: faster for these memory-bound depthwise layers on CPU
            return self.adapt(*self.trunk(x.contiguous(memory_format=torch.channels_last)))
        return self.trunk(self.stem(x))

    def project(self, f4: torch.Tensor, f8: torch.Tensor, f16: torch.Tensor, *, deferred: bool = False) -> KeyFeatures:
        """Features -> KeyFeatures: the keys are cheap projections of the features they travel with;
        ``deferred``: projected when first read (``DeferredKeys``)."""
        if deferred:
            device = f16.device.type
            project = (later(lambda: self.proj16(f16), device), later(lambda: self.proj8(f8), device),
                       later(lambda: self.proj4(f4), device))
            return DeferredKeys(project, f16, f8, f4,
                                (self.proj16.out_channels, self.proj8.out_channels, self.proj4.out_channels))
        return KeyFeatures(self.proj16(f16), self.proj8(f8), self.proj4(f4), f16, f8, f4)


class Fuse(nn.Module):
    """1x1 conv over [value features, key features] -> value dim; plus a residual 3x3 block if `deep`."""

    def __init__(self, cin: int, cout: int, deep: bool) -> None:
        super().__init__()
        self.mix = conv_bn(cin, cout, 1)
        self.block = BasicBlock(cout, cout) if deep else None

    def forward(self, v: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        x = self.mix(cat_for_conv([v, f]))
        return x if self.block is None else self.block(x)


class ValueEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig, key_channels: tuple[int, int, int]) -> None:
        super().__init__()
        self.shared_stem = cfg.value_stem == "shared"
        w = cfg.value_widths
        if self.shared_stem:
            self.stem = conv_bn(key_channels[0] + 32, w[0], 1)
        else:
            self.stem = make_stem(5, w[0])
        block, counts = BLOCKS["resnet18"]
        self.trunk = Trunk("resnet18", w[0], w)
        v4, v8, v16 = self.trunk.channels
        d16, d8, d4 = cfg.value_dims
        c4, c8, c16 = key_channels
        self.fuse16 = Fuse(v16 + c16, d16, deep=True)
        self.fuse8 = Fuse(v8 + c8, d8, deep=not self.shared_stem)
        self.fuse4 = Fuse(v4 + c4, d4, deep=False)

    def forward(
        self, image_n: torch.Tensor | None, keys: KeyFeatures, mask: torch.Tensor, alpha: torch.Tensor
    ) -> ValueFeatures:
        """image_n: normalised image [B, 3, H, W] (None with the shared stem, which does not read it); mask, alpha
        [B, 1, H, W] in [0, 1]."""
        ma = torch.cat([mask, alpha], 1)
        if self.shared_stem:
            # concatenated channels-last, the layout of the features and of what the stem's convolution takes
            # (NCHW, torch.cat's output for the mixed layouts here, had the convolution lay it out again; the
            # same values)
            x = self.stem(cat_channels_last([keys.feat4, F.pixel_unshuffle(ma, 4)]))
        else:
            if image_n is None:
                raise ValueError("the value encoder's own stem reads the normalised image")
            x = self.stem(torch.cat([image_n, ma * 2.0 - 1.0], 1))
        v4, v8, v16 = self.trunk(x)
        return ValueFeatures(self.fuse16(v16, keys.feat16), self.fuse8(v8, keys.feat8), self.fuse4(v4, keys.feat4))
