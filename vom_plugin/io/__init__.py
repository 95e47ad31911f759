"""Plates in, alpha out: frame sequences, OpenImageIO plate and roto reading, colour, EXR writing.

io never sees model tensors: everything here is numpy arrays and file headers (``ImageInfo``).
"""

from __future__ import annotations

from vom_plugin.io.color import COLORSPACES, compress_highlights, linear_to_network, to_network
from vom_plugin.io.exr_out import COMPRESSIONS, OUTPUTS, ensure_output_folder, write_alpha, write_layers
from vom_plugin.io.info import ImageInfo, Window
from vom_plugin.io.plate import Plate, read_plate
from vom_plugin.io.reader import read_info
from vom_plugin.io.roto import read_roto
from vom_plugin.io.sequence import (
    PlateSequence,
    format_frames,
    frame_from_path,
    frame_path,
    open_sequence,
    parse_frame_range,
)

__all__ = [
    "COLORSPACES",
    "COMPRESSIONS",
    "OUTPUTS",
    "ImageInfo",
    "Plate",
    "PlateSequence",
    "Window",
    "compress_highlights",
    "ensure_output_folder",
    "format_frames",
    "frame_from_path",
    "frame_path",
    "linear_to_network",
    "open_sequence",
    "parse_frame_range",
    "read_info",
    "read_plate",
    "read_roto",
    "to_network",
    "write_alpha",
    "write_layers",
]
