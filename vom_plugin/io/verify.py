"""Checking a rendered frame on disk: a readable EXR with the plate's windows and the alpha channel.

``vom farm check`` runs this on every frame of a shot, so a farm job fails on a truncated, foreign or
mis-sized file and not only on a missing one. Every pixel of the alpha channel is read: a file cut short
after its header only shows itself there.
"""

from __future__ import annotations

import os
from pathlib import Path

from vom_plugin.errors import InputError
from vom_plugin.io.info import ImageInfo
from vom_plugin.io.reader import open_image, read_channels


def _window(w: object) -> str:
    x, y, width, height = w  # type: ignore[misc]
    return f"{width}x{height} at ({x}, {y})"


def output_problem(path: str | os.PathLike[str], expected: ImageInfo | None, channel: str = "A") -> str | None:
    """Why ``path`` is not a complete vom output for a plate frame of header ``expected`` (None: windows not
    compared); None when it is."""
    p = Path(path)
    if not p.is_file():
        return "missing" if not os.path.lexists(p) else "not a file"
    try:
        with open_image(p, "output") as img:
            fmt = str(img.input.format_name())
            if fmt != "openexr":
                return f"not an EXR ({fmt or 'unknown format'})"
            info = img.info
            if expected is not None and info.display_window != expected.display_window:
                return (f"display window {_window(info.display_window)}, expected the plate's "
                        f"{_window(expected.display_window)}")
            if expected is not None and info.data_window != expected.data_window:
                return (f"data window {_window(info.data_window)}, expected the plate's "
                        f"{_window(expected.data_window)}")
            if channel not in info.channels:
                return f"no channel {channel} (channels: {', '.join(info.channels) or 'none'})"
            read_channels(img, [info.channels.index(channel)])
    except InputError as e:
        return str(e).replace(f"output {p} ", "", 1)
    return None
