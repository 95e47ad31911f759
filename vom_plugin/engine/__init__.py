"""The engine: runs the HSTSG network over a shot (keyframes, directions, memory policy, device, weights).

Names are imported lazily so that ``import vom_plugin.engine.shot`` (no torch) stays light.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# Worker threads that wait for each other sleep instead of spinning. vom runs beside Nuke and on shared
# farm nodes; spinning OpenMP threads there burn the cores other processes need and wait whole time slices
# for each other: on the 2-core dev machine under load, a 60-frame propagation took 21 s with spinning
# threads and 1.9 s without. Only effective when set before torch is first imported; a value set by the
# user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_LAZY = {
    "resolve_device": "vom_plugin.engine.device",
    "load_model": "vom_plugin.engine.weights",
    "save_weights": "vom_plugin.engine.weights",
    "read_weights_metadata": "vom_plugin.engine.weights",
    "Propagator": "vom_plugin.engine.propagate",
    "StepOutput": "vom_plugin.engine.propagate",
    "propagate_clip": "vom_plugin.engine.propagate",
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
