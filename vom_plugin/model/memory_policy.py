"""Memory management policies (HSTSG Table 5): which propagated frames are written to, and kept in, the bank.

Frames are counted in propagation order from the keyframe (0 = the keyframe). Every policy is bounded,
so memory does not grow with shot length:
- ``prevK`` (e.g. ``prev2``): every frame is written; the K most recent are kept.
- ``first+prevK`` (default ``first+prev2``, the paper's best): the keyframe plus the K most recent.
- ``every-N``: frames 0, N, 2N, ... are written; the 3 most recent of those are kept (the paper does
  not bound it; 3 matches the default bank's size).
- ``first+every-N``: the keyframe plus the 2 most recent of frames N, 2N, ...
Pure Python (no tensors), shared by the model's ``forward_clip`` and the engine's memory bank.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vom_plugin.errors import InputError

_RE = re.compile(r"^(first\+)?(?:prev(\d+)|every-(\d+))$")
EXAMPLES = "first+prev2, prev2, every-5, first+every-3"
EVERY_SLOTS = 3


@dataclass(frozen=True)
class MemoryPolicy:
    text: str
    keep_first: bool
    prev: int  # K of prevK, 0 for every-N policies
    every: int  # N of every-N, 0 for prevK policies

    @property
    def slots(self) -> int:
        """Most frames the bank ever holds."""
        if self.prev:
            return self.prev + int(self.keep_first)
        return EVERY_SLOTS

    def writes(self, t: int) -> bool:
        """Is frame t (propagation order, 0 = keyframe) written to memory?"""
        return t == 0 or self.prev > 0 or t % self.every == 0

    def retain(self, frames: list[int]) -> list[int]:
        """Given the frames now in memory (ascending), those to keep."""
        frames = sorted(frames)
        if self.prev:
            recent = [f for f in frames if not (self.keep_first and f == 0)][-self.prev :]
        else:
            recent = [f for f in frames if not (self.keep_first and f == 0)][-(EVERY_SLOTS - int(self.keep_first)) :]
        head = [0] if (self.keep_first and 0 in frames) else []
        return head + [f for f in recent if f not in head]


def parse_memory_policy(text: str) -> MemoryPolicy:
    """Parse ``first+prev2``, ``prev2``, ``every-5``, ``first+every-3``; InputError naming the value otherwise."""
    m = _RE.match(str(text).strip().lower())
    prev = int(m.group(2)) if m and m.group(2) else 0
    every = int(m.group(3)) if m and m.group(3) else 0
    if not m or (m.group(2) and prev < 1) or (m.group(3) and every < 1):
        raise InputError(f"memory policy {text!r} is not valid: expected one of {EXAMPLES} (K, N >= 1)")
    return MemoryPolicy(text=str(text).strip().lower(), keep_first=bool(m.group(1)), prev=prev, every=every)
