"""What a plate's header says: windows, pixel aspect, channels, metadata. Plain data, no OIIO objects kept."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple


class Window(NamedTuple):
    """A pixel rectangle in OpenEXR's image space: origin (x, y) and size; the last pixel is x + width - 1."""

    x: int
    y: int
    width: int
    height: int

    @property
    def x_end(self) -> int:
        """One past the last column."""
        return self.x + self.width

    @property
    def y_end(self) -> int:
        """One past the last row."""
        return self.y + self.height

    def exr_box(self) -> tuple[int, int, int, int]:
        """(xmin, ymin, xmax, ymax) inclusive, as exrheader prints it."""
        return (self.x, self.y, self.x_end - 1, self.y_end - 1)


# How far the network's picture reaches past the display window into a plate's overscan, at most, as a share of
# the display's width (left and right) and height (top and bottom): a CG render's overscan of 10-20% is seen
# whole; a data window several times the frame (a render's whole camera sweep) would multiply the network's
# work and memory for pixels no comp shows, and beyond this reach the matte is the picture's edge extended.
MAX_OVERSCAN = 0.25


def picture_window(display: Window, data_windows: Iterable[Window]) -> Window:
    """What the network sees of a plate: its display window grown to take in the overscan of ``data_windows``
    (where they reach outside the display window; cropped data windows add nothing), at most ``MAX_OVERSCAN``
    of the display's size beyond each side."""
    reach_x, reach_y = int(MAX_OVERSCAN * display.width), int(MAX_OVERSCAN * display.height)
    x0, y0, x1, y1 = display.x, display.y, display.x_end, display.y_end
    for dw in data_windows:
        if dw.width <= 0 or dw.height <= 0:
            continue
        x0, y0 = min(x0, max(dw.x, display.x - reach_x)), min(y0, max(dw.y, display.y - reach_y))
        x1, y1 = max(x1, min(dw.x_end, display.x_end + reach_x)), max(y1, min(dw.y_end, display.y_end + reach_y))
    return Window(x0, y0, x1 - x0, y1 - y0)


def placed_at(picture: Window, display: Window) -> Window:
    """``picture``, given relative to a display window's origin, placed at ``display``'s origin (image space)."""
    return Window(display.x + picture.x, display.y + picture.y, picture.width, picture.height)


@dataclass(frozen=True)
class ImageInfo:
    """The header of an image as vom uses it.

    ``display_window`` is the frame the artist sees; ``data_window`` is where the pixels are stored, which may
    be smaller, offset, or larger (overscan: the network sees it too, ``picture_window``). ``metadata`` holds the file's
    other attributes by name and ``metadata_types`` their OIIO type names, so a writer can carry them over
    with the right types.
    """

    display_window: Window
    data_window: Window
    pixel_aspect: float = 1.0
    channels: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    metadata_types: dict[str, str] = field(default_factory=dict)
    pixel_type: str = "half"
    path: Path | None = None
    # where a plate's picture is read from, as read_plate / plate_info chose it ("R, G, B", "beauty.R, beauty.G,
    # beauty.B", "Y", with "part 'rgba': " in front in a multi-part file); "" for other images
    picture: str = ""
    file_format: str = ""  # OpenImageIO's name of the file's format ("openexr", "png"); "" for images made in memory

    @classmethod
    def for_size(cls, width: int, height: int, *, pixel_aspect: float = 1.0) -> ImageInfo:
        """A plain header (data window = display window at the origin) for images made in memory."""
        window = Window(0, 0, int(width), int(height))
        return cls(display_window=window, data_window=window, pixel_aspect=float(pixel_aspect))

    @property
    def width(self) -> int:
        return self.display_window.width

    @property
    def height(self) -> int:
        return self.display_window.height

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the display window: what ``read_roto`` takes and the network sees."""
        return (self.display_window.width, self.display_window.height)

    @property
    def has_overscan(self) -> bool:
        d, w = self.data_window, self.display_window
        return d.x < w.x or d.y < w.y or d.x_end > w.x_end or d.y_end > w.y_end
