"""vom: video object matting for compositing pipelines.

The public Python API lives here; heavy modules (torch, OpenImageIO) are imported lazily so that
``import vom_plugin`` and ``vom --version`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

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
