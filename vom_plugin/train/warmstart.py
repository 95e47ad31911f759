"""Starting a network with a pretrained key trunk from an older network's weights.

`lite2` is `lite` with EfficientNet-lite0 (ImageNet) as the key trunk plus small adapters. A new run:
1. loads the ImageNet weights into the trunk (``effnet.load_pretrained_lite0``);
2. copies every other tensor whose name and shape match from the older network (value encoder, key
   projections, CFAR, decoder: everything downstream of the key features);
3. fits the adapters alone, trunk frozen, so that the new key features equal the old ones on synthetic
   frames (least squares per level, each channel scaled by its spread). The old downstream weights then
   read features they know, and end-to-end training starts from the old model's quality instead of from
   an untrained decoder, with the pretrained trunk's features underneath to improve on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from vom_plugin.model import HSTSG


def transplant(dst: HSTSG, src: HSTSG) -> list[str]:
    """Copy src's tensors into dst where the name and shape match; returns the names of dst's left out."""
    src_state = src.state_dict()
    dst_state = dst.state_dict()
    kept = []
    for name, t in dst_state.items():
        s = src_state.get(name)
        if s is not None and s.shape == t.shape and not name.startswith(("key_encoder.trunk.", "key_encoder.stem.")):
            dst_state[name] = s.to(t.dtype)
        else:
            kept.append(name)
    dst.load_state_dict(dst_state)
    return kept


def _features(model: HSTSG, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    k = model.encode_key(frames)
    return k.feat4, k.feat8, k.feat16


def distill_adapters(dst: HSTSG, src: HSTSG, frames_at: Callable[[int], torch.Tensor], steps: int,
                     lr: float = 3e-3, log: Callable[[str], None] = print) -> float:
    """Fit dst's key adapters (trunk frozen) to reproduce src's key features; returns the final loss.

    ``frames_at(step)`` gives a batch of images [N, 3, H, W] in network space. The loss is the MSE per level
    with each target channel divided by its standard deviation over the batch (levels weigh alike).
    """
    adapt = dst.key_encoder.adapt
    if adapt is None:
        raise ValueError("distill_adapters needs a network with a pretrained key trunk (config lite2)")
    src.eval()
    dst.eval()  # trunk BN statistics stay the pretrained ones
    first_batch = frames_at(0)
    with torch.no_grad():  # start at the targets' channel means (normalised MSE 1) instead of Kaiming noise
        first = _features(src, first_batch)
        for conv, t in zip((adapt.a4, adapt.a8, adapt.a16), first, strict=True):
            conv.weight.mul_(0.01)
            conv.bias.copy_(t.mean(dim=(0, 2, 3)))
    opt = torch.optim.Adam(adapt.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
    loss_v = float("nan")
    for step in range(steps):
        x = first_batch if step == 0 else frames_at(step)
        with torch.no_grad():
            target = first if step == 0 else _features(src, x)
            trunk = dst.key_encoder.trunk(dst.key_input(x))
        pred = adapt(*trunk)
        loss = sum(F.mse_loss(p, t) / t.var(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6).mean()
                   for p, t in zip(pred, target, strict=True)) / 3
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_v = float(loss.detach())
        if step % 25 == 0 or step == steps - 1:
            log(f"distill step {step}: normalised feature MSE {loss_v:.4f}")
    return loss_v


def warm_start(dst: HSTSG, src_weights: Path, frames_at: Callable[[int], torch.Tensor], steps: int,
               log: Callable[[str], None] = print) -> None:
    """ImageNet trunk + the older network's weights + fitted adapters (module doc) into ``dst``."""
    from vom_plugin.engine.weights import load_model
    from vom_plugin.model.effnet import load_pretrained_lite0

    src = load_model(src_weights)
    load_pretrained_lite0(dst.key_encoder.trunk)
    left = transplant(dst, src)
    log(f"warm start: ImageNet EfficientNet-lite0 trunk; {len(dst.state_dict()) - len(left)} tensors from "
        f"{src_weights} ({src.config.name}); fresh: {sorted({n.split('.')[1] for n in left})}")
    if steps > 0:
        distill_adapters(dst, src, frames_at, steps, log=log)
