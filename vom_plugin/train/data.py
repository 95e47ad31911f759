"""Turning clips into training tensors: colour conversion, coarse roto, curriculum, batches.

Every batch is a pure function of (run seed, step), so a resumed run sees exactly the batches an
uninterrupted run would have seen, and no data-loader state needs checkpointing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vom_plugin.train.synth import Clip, coarse_roto, make_clip


def _fallback_to_network(rgb: np.ndarray) -> np.ndarray:
    """Stand-in for io.to_network when the io layer is not importable: soft highlight shoulder + sRGB curve."""
    x = np.maximum(rgb, 0.0)
    knee = 0.8
    x = np.where(x > knee, knee + (1 - knee) * np.tanh((x - knee) / (1 - knee)), x)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def network_encoder() -> Callable[[np.ndarray], np.ndarray]:
    """The plate -> network colour transform inference uses, so training sees the same.

    Synthetic composites are linear with Rec.709 primaries (photos decoded from sRGB), so they take the
    lin_rec709 path of io.to_network, not the ACEScg default: treating them as ACEScg would shift every
    colour through the ACEScg -> Rec.709 gamut matrix.
    """
    try:
        from vom_plugin.io import linear_to_network

        linear_to_network(np.zeros((2, 2, 3), np.float32))  # fails early if OCIO config is missing
        return linear_to_network
    except Exception:
        return _fallback_to_network


@dataclass
class Batch:
    frames: torch.Tensor  # [B, T, 3, H, W] network space in [0, 1]
    first_mask: torch.Tensor  # [B, 1, H, W] coarse roto of frame 0
    alpha: torch.Tensor  # [B, T, 1, H, W]
    fg: torch.Tensor  # [B, T, 3, H, W] linear
    bg: torch.Tensor  # [B, T, 3, H, W] linear

    def to(self, device: torch.device) -> Batch:
        return Batch(*(t.to(device, non_blocking=True) for t in
                       (self.frames, self.first_mask, self.alpha, self.fg, self.bg)))


def encode_clip(plate: Any, encode: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """A clip's linear Rec.709 frames (T, H, W, 3) as a render gives them to the network (``io.frames_to_network``):
    at one exposure, the gain ``io.exposure_gain`` takes from its first frame (the roto's: a render's first
    keyframe), then ``encode``d and clipped to [0, 1]. Training and its validation see what a render feeds."""
    from vom_plugin.io.color import exposure_gain

    gain = np.float32(exposure_gain(plate[0], "lin_rec709"))
    return np.stack([np.clip(encode(f * gain), 0.0, 1.0) for f in plate])


def clip_to_tensors(clip: Clip, roto_rng: np.random.Generator, encode: Callable[[np.ndarray], np.ndarray]
                    ) -> tuple[torch.Tensor, ...]:
    net = encode_clip(clip.plate, encode)
    roto = coarse_roto(clip.alpha[0], roto_rng)
    return (torch.from_numpy(net).permute(0, 3, 1, 2).float(), torch.from_numpy(roto)[None].float(),
            torch.from_numpy(clip.alpha)[:, None].float(), torch.from_numpy(clip.fg).permute(0, 3, 1, 2).float(),
            torch.from_numpy(clip.bg).permute(0, 3, 1, 2).float())


def collate(clips: list[Clip], roto_rng: np.random.Generator, encode: Callable[[np.ndarray], np.ndarray]) -> Batch:
    parts = [clip_to_tensors(c, roto_rng, encode) for c in clips]
    return Batch(*(torch.stack([p[i] for p in parts]) for i in range(5)))


@dataclass
class Curriculum:
    """Stage 1 (rigid single-image composites under affine motion) then stage 2 (video), easy to hard."""

    stage1_steps: int = 400
    ramp_steps: int = 3000
    start_difficulty: float = 0.25
    static_share: float = 0.2  # stage-2 batches that stay stage-1 style, to keep the image-matting skill

    def at(self, step: int, rng: np.random.Generator) -> tuple[float, bool]:
        """(difficulty, static_object) for ``step``."""
        if step < self.stage1_steps:
            frac = step / max(1, self.stage1_steps)
            return self.start_difficulty + 0.25 * frac, True
        frac = min(1.0, (step - self.stage1_steps) / max(1, self.ramp_steps))
        d = self.start_difficulty + (1.0 - self.start_difficulty) * frac
        return d, bool(rng.random() < self.static_share)


def step_rng(seed: int, step: int, stream: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(step), int(stream)]))


class SynthSource:
    """Synthetic clips from train/synth.py with seeds in [10**6, 10**9). Held out: seeds below 10**6 (what
    ``vom benchmark --data synth:N`` renders) and from 2*10**9 (the training run's own validation set)."""

    name = "synth"

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def clip(self, step: int, index: int, *, frames: int, size: tuple[int, int], difficulty: float,
             static: bool) -> Clip:
        h = int(np.random.SeedSequence([self.seed, step, index]).generate_state(1)[0])
        s = 10 ** 6 + h % (10 ** 9 - 10 ** 6)
        return make_clip(s, frames=frames, size=size, difficulty=difficulty, static_object=static)


def make_batch(source, step: int, *, seed: int, batch: int, frames: int, size: tuple[int, int],
               curriculum: Curriculum, encode: Callable[[np.ndarray], np.ndarray]) -> tuple[Batch, float, bool]:
    rng = step_rng(seed, step, 1)
    d, static = curriculum.at(step, rng)
    clips = [source.clip(step, i, frames=frames, size=size, difficulty=d, static=static) for i in range(batch)]
    return collate(clips, step_rng(seed, step, 2), encode), d, static


VAL_SEED_BASE = 2_000_000_000


def validation_clips(n: int = 8, frames: int = 8, size: tuple[int, int] = (256, 256)) -> list[Clip]:
    """The FIXED held-out synthetic set: seeds no training run draws, difficulty spread 0.4 -> 1.0."""
    diffs = np.linspace(0.4, 1.0, n) if n > 1 else np.array([1.0])
    return [make_clip(VAL_SEED_BASE + i, frames=frames, size=size, difficulty=float(d)) for i, d in enumerate(diffs)]


HARD_SEED_OFFSET = 1000


def hard_validation_clips(n: int = 8, frames: int = 8, size: tuple[int, int] = (256, 256)) -> list[Clip]:
    """The FIXED held-out synthetic set at full difficulty (as ``synth:N`` is): seeds
    ``VAL_SEED_BASE + HARD_SEED_OFFSET + i``, which no training run, benchmark clip or spread validation clip draws."""
    return [make_clip(VAL_SEED_BASE + HARD_SEED_OFFSET + i, frames=frames, size=size, difficulty=1.0)
            for i in range(n)]
