"""Checking a rendered frame on disk: a readable EXR with the plate's windows and the alpha channel.

``vom farm check`` runs this on every frame of a shot, so a farm job fails on a truncated, foreign or
mis-sized file and not only on a missing one. Every pixel of the alpha channel is read: a file cut short
after its header only shows itself there, and an alpha with NaN, Inf or values outside 0-1 is not vom's (it
writes none). Pixels edited within 0-1 keeping vom's header are not detected.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vom_plugin.errors import InputError
from vom_plugin.grammar import default
from vom_plugin.io.info import ImageInfo
from vom_plugin.io.reader import open_image, read_channels


def _window(w: object) -> str:
    x, y, width, height = w  # type: ignore[misc]
    return f"{width}x{height} at ({x}, {y})"


def output_problem(path: str | os.PathLike[str], expected: ImageInfo | None, channel: str | None = None, *,
                   hard: bool = False) -> str | None:
    """Why ``path`` is not a complete vom output for a plate frame of header ``expected`` (None: windows not
    compared); None when it is. ``channel``: the node definition's default when None; ``hard``: a mask channel,
    which holds 0 or 1 only."""
    channel = default("channel") if channel is None else channel
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
            values = read_channels(img, [info.channels.index(channel)])
            bad = int(np.count_nonzero(~np.isfinite(values)))
            if bad:  # vom writes none (NaN/Inf become 0 or 1): a later edit or another tool's file
                return f"its {channel} has {bad} NaN or infinite pixels"
            lo, hi = float(values.min()), float(values.max())
            if lo < 0.0 or hi > 1.0:
                return f"its {channel} runs from {lo:g} to {hi:g}, outside 0-1"
            if hard:
                # vom before its mask was made hard wrote the network's probability there: in a sequence mixing
                # both, a holdout by the mask takes a few percent off some frames and not others
                soft = int(np.count_nonzero((values > 0.0) & (values < 1.0)))
                if soft:
                    return (f"its mask channel {channel} is soft ({soft} pixels between 0 and 1): an earlier vom "
                            f"wrote the network's probability there, this one writes a hard mask (0 or 1)")
    except InputError as e:
        return str(e).replace(f"output {p} ", "", 1)
    return None
