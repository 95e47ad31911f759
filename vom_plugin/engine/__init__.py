"""The engine: runs the HSTSG network over a shot (keyframes, directions, memory policy, device, weights).

Names are imported lazily so that ``import vom_plugin.engine.shot`` (no torch) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "resolve_device": "vom_plugin.engine.device",
    "load_model": "vom_plugin.engine.weights",
    "save_weights": "vom_plugin.engine.weights",
    "read_weights_metadata": "vom_plugin.engine.weights_header",
    "Propagator": "vom_plugin.engine.propagate",
    "StepOutput": "vom_plugin.engine.propagate",
    "propagate_clip": "vom_plugin.engine.propagate",
    "run_clip": "vom_plugin.engine.passes",
    "PassRunner": "vom_plugin.engine.passes",
    "MemoryBank": "vom_plugin.engine.memory",
    "parse_memory_policy": "vom_plugin.engine.memory",
    "Pass": "vom_plugin.engine.schedule",
    "plan": "vom_plugin.engine.schedule",
    "blend_weight": "vom_plugin.engine.schedule",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vom_plugin.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
