"""Plates in, alpha out: frame sequences, OpenImageIO plate and roto reading, colour, EXR writing.

io never sees model tensors: everything here is numpy arrays and file headers (``ImageInfo``).
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule. Imported on first use (PEP 562), so a `vom render` handing its shot to a worker parses
# frame ranges (sequence) without loading numpy, OpenImageIO and OpenColorIO (0.2 s of that process).
_WHERE = {
    "COLORSPACES": "color", "compress_highlights": "color", "linear_to_network": "color", "to_network": "color",
    "plate_colour_note": "color", "exposure_gain": "color", "frames_to_network": "color",
    "COMPRESSIONS": "exr_out", "OUTPUTS": "exr_out", "ensure_output_folder": "exr_out",
    "write_alpha": "exr_out", "write_exr": "exr_out", "write_layers": "exr_out", "rgb_colour_id": "exr_out",
    "RgbColour": "exr_out",
    "ImageInfo": "info", "MAX_OVERSCAN": "info", "Window": "info", "picture_window": "info", "placed_at": "info",
    "Plate": "plate", "plate_info": "plate", "plate_views": "plate", "read_plate": "plate",
    "read_info": "reader",
    "read_roto": "roto", "roto_over_data_window": "roto", "roto_layer_of": "roto",
    "PlateSequence": "sequence", "existing_frame_path": "sequence",
    "format_frames": "sequence", "padding_hint": "sequence", "frame_from_path": "sequence",
    "frame_path": "sequence", "open_sequence": "sequence", "parse_frame_range": "sequence",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f"vom_plugin.io.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vom_plugin.io' has no attribute {name!r}")


__all__ = sorted(_WHERE)


def __dir__() -> list[str]:
    return sorted(__all__)
