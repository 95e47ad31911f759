"""The bounded memory bank of one propagation pass.

A pass writes memory frames (keys + values at 1/16, 1/8, 1/4, laid out for reading) as the policy says and
evicts what the policy drops, so it never holds more than ``policy.slots`` frames: RAM and GPU memory stay
flat however long the shot. Policies (``first+prevK``, ``prevK``, ``every-N``, ``first+every-N``; the default
is the node definition's) are parsed in ``vom_plugin.grammar`` (shared with Shot and the training entry
point) and re-exported here.
"""

from __future__ import annotations

import torch

from vom_plugin.grammar import MemoryPolicy, default, parse_memory_policy
from vom_plugin.model import MemoryFrame
from vom_plugin.model.memory_read import LevelMemory

__all__ = ["MemoryBank", "MemoryPolicy", "parse_memory_policy"]

_FIELDS = ("keys", "sqnorm", "values")


class MemoryBank:
    """Frames in propagation order (0 = the keyframe) -> MemoryFrame, bounded by the policy."""

    def __init__(self, policy: MemoryPolicy | str | None = None) -> None:
        if policy is None:
            policy = default("memory")
        self.policy = parse_memory_policy(policy) if isinstance(policy, str) else policy
        self.frames: dict[int, MemoryFrame] = {}

    def __len__(self) -> int:
        return len(self.frames)

    def writes(self, t: int) -> bool:
        return self.policy.writes(t)

    def add(self, t: int, frame: MemoryFrame) -> None:
        """Store frame t (replacing an earlier write of t, e.g. the keyframe's re-encode) and evict."""
        self.frames[t] = frame
        keep = set(self.policy.retain(list(self.frames)))
        self.frames = {k: v for k, v in self.frames.items() if k in keep}

    def ordered(self) -> list[MemoryFrame]:
        return [self.frames[k] for k in sorted(self.frames)]

    def nbytes(self) -> int:
        return sum(f.nbytes() for f in self.frames.values())

    # -- resume ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Flat tensors (CPU), keys ``bank.<t>.<level>.<field>``."""
        out: dict[str, torch.Tensor] = {}
        for t, frame in self.frames.items():
            for i, level in enumerate(frame.levels):
                for name in _FIELDS:
                    out[f"bank.{t}.{i}.{name}"] = getattr(level, name).detach().cpu().contiguous()
        return out

    def load_state_dict(self, state: dict[str, torch.Tensor], device: torch.device | str = "cpu") -> None:
        ts = sorted({int(k.split(".")[1]) for k in state if k.startswith("bank.")})
        self.frames = {}
        for t in ts:
            levels = tuple(
                LevelMemory(*(state[f"bank.{t}.{i}.{name}"].to(device) for name in _FIELDS)) for i in range(3)
            )
            self.frames[t] = MemoryFrame(levels)  # type: ignore[arg-type]
