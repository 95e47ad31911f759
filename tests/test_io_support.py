"""Helpers for the io tests: small images written with OIIO directly (not with vom's writer), and the
reference tools nobody here wrote. Imported by the other test_io_* modules; also checks the tools exist."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import OpenImageIO as oiio


def write_image(
    path: Path,
    pixels: np.ndarray,
    channels: tuple[str, ...] = ("R", "G", "B"),
    *,
    pixel_type: str = "half",
    data_origin: tuple[int, int] = (0, 0),
    display: tuple[int, int, int, int] | None = None,
    pixel_aspect: float | None = None,
    attributes: dict | None = None,
    compression: str | None = None,
) -> Path:
    """Write ``pixels`` (h, w, c) as the data window at ``data_origin``; ``display`` = (x, y, w, h)."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    h, w, c = pixels.shape
    assert c == len(channels)
    spec = oiio.ImageSpec(w, h, c, pixel_type)
    spec.x, spec.y = data_origin
    if display is not None:
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = display
    else:
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = (*data_origin, w, h)
    spec.channelnames = channels
    if pixel_aspect is not None:
        spec.attribute("PixelAspectRatio", float(pixel_aspect))
    if compression:
        spec.attribute("compression", compression)
    for key, value in (attributes or {}).items():
        spec.attribute(key, value)
    out = oiio.ImageOutput.create(str(path))
    assert out is not None, oiio.geterror()
    assert out.open(str(path), spec), out.geterror()
    assert out.write_image(np.ascontiguousarray(pixels)), out.geterror()
    out.close()
    return path


def tool(*args: str) -> str:
    """Run a reference tool and return its stdout (fails the test when the tool fails)."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{args} failed: {result.stderr}"
    return result.stdout


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary files left in a folder (the atomic writer's temp names start with '.')."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or ".tmp" in p.name)


def test_reference_tools_are_installed():
    # CI installs them (.ci/run); the write tests below depend on them, so say so plainly when absent.
    for name in ("exrheader", "oiiotool"):
        assert shutil.which(name), f"{name} is missing: apt-get install openexr openimageio-tools"
    import OpenEXR  # noqa: F401
