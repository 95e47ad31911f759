"""vom: video object matting for compositing pipelines.

The public Python API lives here; heavy modules (torch, OpenImageIO) are imported lazily so that
``import vom_plugin`` and ``vom --version`` stay fast.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# Worker threads that wait for each other sleep instead of spinning. vom runs beside Nuke and on shared
# farm nodes; spinning OpenMP threads there burn the cores other processes need and wait whole time slices
# for each other: on the 2-core dev machine under load, a 60-frame propagation took 21 s with spinning
# threads and 1.9 s without. Set here, in the top package, because it only works before torch is first
# imported and every entry point (CLI, API, training) imports this package first. A user's value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

# name -> module that defines it; filled in as the layers land.
_LAZY = {
    "Shot": "vom_plugin.engine.shot",
    "render": "vom_plugin.engine.runner",
    "RenderResult": "vom_plugin.engine.runner",
    "VomError": "vom_plugin.errors",
    "InputError": "vom_plugin.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vom_plugin' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
