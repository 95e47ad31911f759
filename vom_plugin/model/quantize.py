"""8-bit storage of what the engine caches per frame: a tensor as uint8 codes and a float32 step (and offset)
per channel, row or position.

The engine rounds these tensors this way on every path, computed or read back, and keeps the codes with the
values so a cached entry holds exactly what a cold render used: the cache cannot change a pixel. At 960x544
a frame's backbone features are 1.8 MB this way (3.7 MB in half precision); see the model card ("Session 21")
for what the rounding does to the mattes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

LEVELS = 255


@dataclass(frozen=True)
class Packed:
    """``q * scale + lo`` (``lo`` None: 0), computed in float32. ``q`` uint8; ``scale`` and ``lo`` float32 with
    ``q``'s rank and size 1 along the axes that were reduced."""

    q: torch.Tensor
    scale: torch.Tensor
    lo: torch.Tensor | None = None

    def unpack(self) -> torch.Tensor:
        x = self.q.to(self.scale.dtype) * self.scale
        return x if self.lo is None else x + self.lo

    def to_dict(self, name: str) -> dict[str, torch.Tensor]:
        """CPU tensors under ``name``, ``name_scale`` (and ``name_lo``)."""
        out = {name: self.q, f"{name}_scale": self.scale}
        if self.lo is not None:
            out[f"{name}_lo"] = self.lo
        return {k: v.detach().cpu().contiguous() for k, v in out.items()}

    @staticmethod
    def from_dict(d: dict[str, torch.Tensor], name: str, reduced: tuple[int, ...], *, offset: bool,
                  device: torch.device | str | None = None) -> Packed:
        """The tensors ``to_dict`` stored, checked: codes uint8, scale (and lo) float32 of the codes' shape with
        1 along ``reduced``, finite, steps positive. ValueError (naming the tensor) otherwise."""
        names = [name, f"{name}_scale"] + ([f"{name}_lo"] if offset else [])
        missing = [n for n in names if n not in d]
        if missing:
            raise ValueError(f"entry lacks {', '.join(map(repr, missing))}")
        q = d[name]
        if q.dtype != torch.uint8:
            raise ValueError(f"{name!r} is {q.dtype}, expected uint8 codes")
        red = {r % q.dim() for r in reduced} if q.dim() else set()
        expect = tuple(1 if i in red else s for i, s in enumerate(q.shape))
        for n in names[1:]:
            t = d[n]
            if t.dtype != torch.float32 or tuple(t.shape) != expect:
                raise ValueError(f"{n!r} is {t.dtype} {tuple(t.shape)}, expected float32 {expect}")
            if not bool(torch.isfinite(t).all()) or (n == names[1] and not bool((t > 0).all())):
                raise ValueError(f"{n!r} holds {'steps that are not positive' if n == names[1] else 'offsets'} "
                                 f"or values that are not finite")
        move = (lambda t: t) if device is None else (lambda t: t.to(device))
        return Packed(move(q), move(d[names[1]]), move(d[names[2]]) if offset else None)


def pack(x: torch.Tensor, dims: tuple[int, ...], *, offset: bool) -> Packed:
    """``x`` as 8-bit codes over its range along ``dims`` (per remaining index): ``[min, max]`` with ``offset``,
    else ``[0, max]`` (for non-negative values such as attention weights, where 0 stays exactly 0).

    The step is a power of two and the offset a multiple of it: codes times steps are exact in float32, and values
    that differ in their last bits (the same network summed in another order: another thread count, another
    machine sharing the cache) get the same codes and steps but for the rare value on a rounding boundary. A
    range snapped to min/255 would move every value of the channel with its extremes. The cost: 128-255 levels
    over the range instead of 255."""
    x = x.detach().float()
    hi = x.amax(dim=dims, keepdim=True)
    lo = x.amin(dim=dims, keepdim=True) if offset else torch.zeros_like(hi)
    span = torch.where(hi > lo, hi - lo, lo.abs())  # a constant row: steps fine enough for its value
    _, e = torch.frexp(span / (LEVELS - 1))  # 2**e > span / 254: room for the offset's snap below
    step = torch.where(span > 0, torch.ldexp(torch.ones_like(span), e), torch.ones_like(span))
    if offset:
        lo = torch.floor(lo / step) * step
    q = ((x - lo) / step).round_().clamp_(0, LEVELS).to(torch.uint8)
    return Packed(q, step, lo if offset else None)
