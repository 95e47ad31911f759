"""Helpers for the io tests: small images written with OIIO directly (not with vom's writer), and the
reference tools nobody here wrote. Imported by the other test_io_* modules; also checks the tools exist.

oiiotool comes with the OpenImageIO wheel (this environment's bin folder), so it is always there;
exrheader comes from Debian's `openexr` only: tests that need it skip, saying so, where it is absent
(`.ci/run` installs it, and under CI its absence is a failure)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

# Where each reference tool comes from, for the skip message.
TOOL_SOURCES = {
    "oiiotool": "the OpenImageIO wheel's bin folder, or Debian's openimageio-tools",
    "exrheader": "Debian's openexr package; .ci/run installs it",
    "tclsh": "Debian's tcl package; .ci/run installs it",
    "blender": "Debian's blender package; .ci/run installs it (the Blender add-on's and clip renderer's tests)",
}


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
    for key, value in (attributes or {}).items():  # a (TypeDesc, value) pair for an array (multiView)
        spec.attribute(key, *value) if isinstance(value, tuple) and isinstance(value[0], oiio.TypeDesc) \
            else spec.attribute(key, value)
    out = oiio.ImageOutput.create(str(path))
    assert out is not None, oiio.geterror()
    assert out.open(str(path), spec), out.geterror()
    assert out.write_image(np.ascontiguousarray(pixels)), out.geterror()
    out.close()
    return path


def find_tool(name: str) -> str | None:
    """A reference tool: the copy a Python package put beside this interpreter (the OpenImageIO wheel's
    oiiotool), else the one on PATH; None when neither exists."""
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return shutil.which(name)


def require_tool(name: str) -> str:
    """The tool's path, or skip the calling test with the reason (a failure under CI, which installs them)."""
    path = find_tool(name)
    if path is None:
        message = f"{name} is not installed (it comes from {TOOL_SOURCES[name]})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def tool(name: str, *args: str) -> str:
    """Run a reference tool and return its stdout (skips when it is absent, fails the test when it fails)."""
    args = (require_tool(name), *args)
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{args} failed: {result.stderr}"
    return result.stdout


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary files left in a folder (the atomic writer's temp names start with '.')."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or ".tmp" in p.name)


def test_oiiotool_comes_with_the_python_packages():
    assert find_tool("oiiotool"), "oiiotool missing: the OpenImageIO wheel ships it in the environment's bin folder"
    assert "oiiotool" in tool("oiiotool", "--help")
    import OpenEXR  # noqa: F401  (the dev extra's independent EXR reader)


@pytest.mark.parametrize("name", ["exrheader", "tclsh", "blender"])
def test_debian_reference_tools(name):
    # Under CI (.ci/run installs them) a missing one fails, so CI always runs the checks that need them.
    require_tool(name)
