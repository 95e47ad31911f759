"""Background photographs for training composites: scikit-image's samples plus any installed wallpapers.

scikit-image's 18 photographs are always there (they ship in its wheel). More come from folders of
photographs when present: ``VOM_BACKGROUNDS`` (folders separated by ``os.pathsep``) and the folders that
Debian's wallpaper packages install into. Packages checked for their licences (all allow use and
modification):

  mate-backgrounds             /usr/share/backgrounds/mate     GPL-2+, CC-BY-SA-4.0 (nature photographs)
  plasma-workspace-wallpapers  /usr/share/wallpapers           GPL-2+ / LGPL (KDE; photographs and renders)
  gnome-backgrounds            /usr/share/backgrounds/gnome    CC-BY-SA-3.0
  ukui-wallpapers              /usr/share/backgrounds          CC-BY-SA-3.0

``apt-get install mate-backgrounds plasma-workspace-wallpapers gnome-backgrounds ukui-wallpapers`` adds
about 90 images. Nothing needs them: without them the bank is scikit-image's photographs alone.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vom_plugin.train.synth import _photo_bank, srgb_to_linear

SYSTEM_DIRS = ("/usr/share/backgrounds", "/usr/share/wallpapers")
EXTS = (".jpg", ".jpeg", ".png")
MAX_SIDE = 1024  # photographs are kept at this size: crops at 256-384 px still get detail and defocus room
MIN_SIDE = 320


def _candidates(root: Path) -> list[Path]:
    out = []
    for dirpath, _dirs, files in os.walk(root, followlinks=False):
        for f in files:
            if f.lower().endswith(EXTS) and not f.lower().startswith("screenshot"):
                out.append(Path(dirpath) / f)
    return out


def _dedupe(paths: list[Path]) -> list[Path]:
    """One image per KDE wallpaper package (``<name>/contents/images*/<WxH>.ext`` holds resolutions of one
    picture): the one with the most pixels by its file name, else the biggest file."""
    groups: dict[str, list[Path]] = {}
    singles = []
    for p in paths:
        parts = p.parts
        if "contents" in parts:
            i = parts.index("contents")
            groups.setdefault(str(Path(*parts[:i + 2])), []).append(p)
        else:
            singles.append(p)

    def pixels(p: Path) -> int:
        w, _, h = p.stem.partition("x")
        return int(w) * int(h) if w.isdigit() and h.isdigit() else p.stat().st_size

    return sorted(singles + [max(g, key=pixels) for g in groups.values()])


def background_files(dirs: list[str] | None = None) -> list[Path]:
    """Image files of the background folders that exist (``VOM_BACKGROUNDS`` first, then the system ones)."""
    if dirs is None:
        env = [d for d in os.environ.get("VOM_BACKGROUNDS", "").split(os.pathsep) if d]
        dirs = env + list(SYSTEM_DIRS)
    found: list[Path] = []
    for d in dirs:
        root = Path(d)
        if root.is_dir():
            found.extend(_candidates(root))
    return _dedupe(list(dict.fromkeys(found)))


class BackgroundBank:
    """Linear Rec.709 float32 photographs by index: scikit-image's first, then ``files`` (loaded lazily,
    shrunk to ``MAX_SIDE``, kept as 8-bit sRGB in a bounded cache). Unreadable files are skipped."""

    def __init__(self, files: list[Path] | None = None, *, cache_size: int = 160) -> None:
        self.builtin = _photo_bank()
        self.files = list(background_files() if files is None else files)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.builtin) + len(self.files)

    def _load(self, i: int) -> np.ndarray | None:
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        img = cv2.imread(str(self.files[i]), cv2.IMREAD_COLOR)
        if img is None or min(img.shape[:2]) < MIN_SIDE:
            return None
        s = MAX_SIDE / max(img.shape[:2])
        if s < 1:
            img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        img = np.ascontiguousarray(img[..., ::-1])
        self._cache[i] = img
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return img

    def identity(self, index: int) -> str:
        """Which photograph ``get(index)`` gives (after it was called): ``scikit-image:N`` or the file's path."""
        i = index % len(self)
        if i < len(self.builtin):
            return f"scikit-image:{i}"
        j = i - len(self.builtin)
        return f"scikit-image:{index % len(self.builtin)}" if j in self._bad else str(self.files[j])

    def signature(self) -> dict[str, Any]:
        """What decides which photograph an index picks: the built-in count and the files (path and size), with
        a short digest of them. Composites made over banks of another digest are other pictures: a validation
        set rebuilt where other wallpaper packages are installed is another set (model card, session 28)."""
        files = []
        for f in self.files:
            try:
                files.append((str(f), f.stat().st_size))
            except OSError:
                files.append((str(f), -1))
        text = json.dumps({"builtin": len(self.builtin), "files": files})
        return {"digest": hashlib.blake2b(text.encode(), digest_size=6).hexdigest(), "builtin": len(self.builtin),
                "files": len(files)}

    def get(self, index: int) -> np.ndarray:
        """Photograph ``index % len(self)`` as linear float32 RGB; a broken file falls back to a built-in one."""
        n = len(self)
        if n == 0:
            raise RuntimeError("no background photographs: scikit-image's samples are missing")
        i = index % n
        if i < len(self.builtin):
            return self.builtin[i]
        j = i - len(self.builtin)
        img = None if j in self._bad else self._load(j)
        if img is None:
            self._bad.add(j)
            return self.builtin[index % len(self.builtin)] if self.builtin else np.full((64, 64, 3), 0.18, np.float32)
        return _SRGB8_TO_LINEAR[img]


_SRGB8_TO_LINEAR = srgb_to_linear(np.arange(256, dtype=np.float32) / 255.0)


@functools.lru_cache(maxsize=1)
def default_bank() -> BackgroundBank:
    """The process-wide bank (one scan of the folders, one cache)."""
    return BackgroundBank()
