"""ResNet trunks up to layer3 (He et al. 2016), our own definitions: no torchvision, no pretrained weights.

Only what the encoders need: a stem (7x7/2 conv + 3x3/2 max-pool, output at 1/4) and layers 1-3
returning features at 1/4, 1/8 and 1/16. The last BatchNorm of every residual branch starts at zero so
each block begins as an identity: it makes training from scratch (we have no ImageNet weights) stable.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, relu: bool = True, zero_bn: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if zero_bn:
        nn.init.zeros_(layers[1].weight)
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.branch = nn.Sequential(conv_bn(cin, width, 3, stride), conv_bn(width, cout, 3, relu=False, zero_bn=True))
        self.down = conv_bn(cin, cout, 1, stride, relu=False) if (stride != 1 or cin != cout) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.down is None else self.down(x)
        return torch.relu(self.branch(x) + skip)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.branch = nn.Sequential(
            conv_bn(cin, width, 1),
            conv_bn(width, width, 3, stride),
            conv_bn(width, cout, 1, relu=False, zero_bn=True),
        )
        self.down = conv_bn(cin, cout, 1, stride, relu=False) if (stride != 1 or cin != cout) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.down is None else self.down(x)
        return torch.relu(self.branch(x) + skip)


BLOCKS = {"resnet18": (BasicBlock, (2, 2, 2)), "resnet50": (Bottleneck, (3, 4, 6))}


def make_stem(cin: int, width: int) -> nn.Sequential:
    """7x7/2 conv + BN + ReLU + 3x3/2 max-pool: image -> 1/4."""
    return nn.Sequential(conv_bn(cin, width, 7, 2), nn.MaxPool2d(3, 2, 1))


def make_layer(block: type[nn.Module], cin: int, width: int, n: int, stride: int) -> tuple[nn.Sequential, int]:
    blocks = [block(cin, width, stride)]
    cout = width * block.expansion
    blocks += [block(cout, width, 1) for _ in range(n - 1)]
    return nn.Sequential(*blocks), cout


class Trunk(nn.Module):
    """layer1..layer3 of a ResNet over a 1/4 input. Returns (f4, f8, f16); `.channels` their widths."""

    def __init__(self, backbone: str, cin: int, widths: tuple[int, int, int]) -> None:
        super().__init__()
        block, counts = BLOCKS[backbone]
        self.layer1, c4 = make_layer(block, cin, widths[0], counts[0], 1)
        self.layer2, c8 = make_layer(block, c4, widths[1], counts[1], 2)
        self.layer3, c16 = make_layer(block, c8, widths[2], counts[2], 2)
        self.channels = (c4, c8, c16)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f4 = self.layer1(x)
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        return f4, f8, f16


def init_weights(module: nn.Module) -> None:
    """Kaiming init for convs (from scratch); BN gammas that were zeroed on purpose stay zero."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
