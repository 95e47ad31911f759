"""The HSTSG network, pure torch: encoders, hierarchical memory read, CFAR, decoder, configs.

``build_model("lite" | "full")`` returns an untrained network; ``vom_plugin.engine.load_model`` loads weights.
"""

from __future__ import annotations

from vom_plugin.errors import InputError
from vom_plugin.grammar import MemoryPolicy, parse_memory_policy

from .config import CONFIGS, ModelConfig
from .encoders import DeferredKeys, KeyFeatures, ValueFeatures
from .hstsg import HSTSG, Affinity, History, MemoryFrame, stack_memory

__all__ = [
    "Affinity",
    "CONFIGS",
    "DeferredKeys",
    "HSTSG",
    "History",
    "KeyFeatures",
    "MemoryFrame",
    "MemoryPolicy",
    "ModelConfig",
    "ValueFeatures",
    "build_model",
    "count_parameters",
    "parse_memory_policy",
    "stack_memory",
]


def build_model(config: str = "lite") -> HSTSG:
    """An untrained HSTSG of the named configuration ("lite" or "full")."""
    cfg = CONFIGS.get(str(config))
    if cfg is None:
        raise InputError(f"model config {config!r} is not known: expected one of {', '.join(CONFIGS)}")
    return HSTSG(cfg)


def count_parameters(model: HSTSG) -> int:
    return sum(p.numel() for p in model.parameters())
