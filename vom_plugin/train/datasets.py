"""Loaders for matting datasets a studio may own, all producing the same ``Clip`` the generator makes.

- VideoMatting108 (``vm108:ROOT``): ``FG_done/<category>/<clip>/<frame>.png`` RGBA (RGB foreground, A the
  matte), ``BG_done/...`` backgrounds paired per frame by ``frame_corr.json`` (FG path -> BG path, both
  relative to their folders), clip lists in ``train_videos.txt`` / ``val_videos.txt``.
- DVM (``dvm:ROOT``): generated clips ``{v,a,f,b}/<name>/<frame>.<ext>`` = composite, alpha,
  foreground x alpha, background.
- Plain folders (``folder:ROOT``): ``<clip>/fg`` + ``<clip>/alpha`` + ``<clip>/bg`` (or ``<clip>/comp``,
  the finished composite), frames sorted by name. EXR is read as scene-linear; 8-bit images as sRGB.

A training sample is a random run of consecutive frames, cropped and resized to the training size.
Stage 1 (``static=True``) takes ONE frame and moves it by random affine motion into a pseudo-clip.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vom_plugin.errors import InputError
from vom_plugin.train.synth import Clip, srgb_to_linear

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".exr", ".tif", ".tiff")


def read_image(path: Path) -> np.ndarray:
    """float32 [H, W, C]: EXR and float TIFFs as stored (linear), 8/16-bit images scaled to [0, 1] (still
    sRGB-encoded)."""
    if path.suffix.lower() == ".exr":
        from vom_plugin import import_oiio

        oiio = import_oiio()

        inp = oiio.ImageInput.open(str(path))
        if inp is None:
            raise InputError(f"{path}: cannot be read as an image ({oiio.geterror()})")
        try:
            img = np.asarray(inp.read_image("float"), np.float32)
        finally:
            inp.close()
        return img if img.ndim == 3 else img[..., None]
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{path}: cannot be read as an image")
    # integer code values scaled to [0, 1]; a float TIFF holds its values as they are (QA: divided by 255, a matte in
    # 0-1 was read as 0-0.004, a target of nothing that no range check sees)
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(img.dtype)
    if scale is None and not np.issubdtype(img.dtype, np.floating):
        raise InputError(f"{path}: {img.dtype} pixels; expected 8- or 16-bit integers or floats")
    img = img.astype(np.float32) / (scale or 1.0)
    if img.ndim == 2:
        return img[..., None]
    # OpenCV stores BGR(A); the rest of vom is RGB(A).
    return img[..., [2, 1, 0, 3]] if img.shape[2] == 4 else img[..., ::-1].copy()


def _linear_rgb(path: Path, img: np.ndarray) -> np.ndarray:
    rgb = img[..., :3] if img.shape[2] >= 3 else np.repeat(img[..., :1], 3, axis=2)
    bad = ~np.isfinite(rgb)
    if bad.any():  # (an EXR's NaN made the step's loss NaN: the update skipped, the file never named)
        y, x = np.argwhere(bad.any(axis=2))[0]
        raise InputError(f"{path}: {int(bad.any(axis=2).sum())} NaN/Inf pixel(s) (first at x={x}, y={y}); expected "
                         f"finite colour values")
    return rgb if _stored_linear(path) else srgb_to_linear(rgb)


def _stored_linear(path: Path) -> bool:
    """Whether ``path``'s colour is stored linear: an EXR, or a float TIFF (its values as rendered; decoded as sRGB code
    values, it came out darker, review); 8/16-bit files hold sRGB-encoded code values."""
    suffix = path.suffix.lower()
    if suffix == ".exr":
        return True
    if suffix not in (".tif", ".tiff"):
        return False
    from vom_plugin import import_oiio

    oiio = import_oiio()
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise InputError(f"{path}: cannot be read as an image ({oiio.geterror()})")
    try:
        return inp.spec().format.basetype in (oiio.FLOAT, oiio.HALF, oiio.DOUBLE)
    finally:
        inp.close()


def _alpha(img: np.ndarray, path: Path | None) -> np.ndarray:
    """The matte in ``img`` (its A channel, else its first), clipped to 0-1; InputError naming ``path`` where it
    holds NaN/Inf or values far outside 0-1, as `vom eval` refuses a GT (``scores.value_problem``): clipped, NaN
    stayed NaN (each step that drew it skipped, the file never named) and a 0-255 float matte became a hard binary
    target (QA)."""
    from vom_plugin.eval.scores import value_problem

    a = img[..., 3] if img.shape[2] == 4 else img[..., 0]
    problem = value_problem(a)
    if problem is not None:
        raise InputError(f"{path}: its alpha{' (A channel)' if img.shape[2] == 4 else ''} has {problem}")
    return np.clip(a, 0.0, 1.0)


def _frames_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS) if folder.is_dir() else []


@dataclass
class FrameSet:
    """One frame's files: a foreground (RGB, alpha maybe in A), an alpha, and a background or composite."""

    fg: Path | None
    alpha: Path | None  # None: alpha is fg's A channel
    bg: Path | None
    comp: Path | None = None
    fg_premultiplied: bool = False


@dataclass
class VideoRecord:
    name: str
    frames: list[FrameSet]


def _same_size(layer: np.ndarray, path: Path | None, alpha: np.ndarray, alpha_path: Path | None) -> None:
    """A foreground or composite is drawn over its alpha pixel for pixel: InputError where its size differs (QA: one
    of another size was resized onto the alpha and trained on misaligned, unsaid; a premultiplied one crashed)."""
    if layer.shape[:2] != alpha.shape:
        raise InputError(f"{path}: {layer.shape[1]}x{layer.shape[0]}, where its alpha ({alpha_path}) is "
                         f"{alpha.shape[1]}x{alpha.shape[0]}; a foreground or composite must match its alpha")


def load_frame(fs: FrameSet) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(plate, alpha, fg, bg) of one frame, linear. Without a clean plate bg falls back to the composite."""
    a_img = read_image(fs.alpha) if fs.alpha is not None else None
    if fs.fg is not None:
        fimg = read_image(fs.fg)
        fg = _linear_rgb(fs.fg, fimg)
        alpha = _alpha(a_img, fs.alpha) if a_img is not None else _alpha(fimg, fs.fg)
        _same_size(fg, fs.fg, alpha, fs.alpha)
        if fs.fg_premultiplied:
            fg = np.where(alpha[..., None] > 1e-3, fg / np.maximum(alpha[..., None], 1e-3), 0.0).astype(np.float32)
    else:
        if a_img is None:
            raise InputError("a frame needs an alpha: none found")
        alpha = _alpha(a_img, fs.alpha)
        fg = None
    bg = _linear_rgb(fs.bg, read_image(fs.bg)) if fs.bg is not None else None
    comp = _linear_rgb(fs.comp, read_image(fs.comp)) if fs.comp is not None else None
    h, w = alpha.shape

    if comp is not None:
        _same_size(comp, fs.comp, alpha, fs.alpha or fs.fg)

    def fit(x: np.ndarray | None) -> np.ndarray | None:  # a background of another size (a bigger photo) is resized
        return x if x is None or x.shape[:2] == (h, w) else cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR)

    bg = fit(bg)
    if comp is None:
        if fg is None or bg is None:
            raise InputError(f"frame {fs.alpha or fs.fg}: needs fg + bg or a composite")
        comp = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    if fg is None:
        fg = comp  # best available estimate: the composite where the object is
    if bg is None:
        bg = comp
    return comp.astype(np.float32), alpha.astype(np.float32), fg.astype(np.float32), bg.astype(np.float32)


def _crop_resize(arrs: list[np.ndarray], rng: np.random.Generator, size: tuple[int, int],
                 alpha: np.ndarray) -> list[np.ndarray]:
    """Same random crop (biased to contain the object) and resize for every array of a clip."""
    h, w = alpha.shape[:2]
    th, tw = size
    scale = rng.uniform(0.5, 1.0)
    ch = max(1, min(h, int(round(min(h, w) * scale))))
    cw = max(1, min(w, int(round(ch * tw / th))))
    ys, xs = np.nonzero(alpha > 0.5)
    if len(ys) and rng.random() < 0.9:  # centre near the object so most crops have a matte to learn
        i = int(rng.integers(len(ys)))
        y0, x0 = ys[i] - ch // 2, xs[i] - cw // 2
    else:
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    y0, x0 = int(np.clip(y0, 0, h - ch)), int(np.clip(x0, 0, w - cw))
    out = []
    for a in arrs:
        c = a[..., y0:y0 + ch, x0:x0 + cw, :] if a.ndim == 4 else a[..., y0:y0 + ch, x0:x0 + cw]
        frames = [cv2.resize(f, (tw, th), interpolation=cv2.INTER_AREA) for f in c]
        out.append(np.stack(frames).astype(np.float32))
    return out


def pseudo_clip(plate: np.ndarray, alpha: np.ndarray, fg: np.ndarray, bg: np.ndarray, rng: np.random.Generator,
                frames: int) -> tuple[np.ndarray, ...]:
    """Stage 1: one composite moved by a random affine drift (fg and bg separately) into a short clip."""
    h, w = alpha.shape
    outs: dict[str, list[np.ndarray]] = {"plate": [], "alpha": [], "fg": [], "bg": []}
    v_fg, v_bg = rng.normal(0, 0.02, 2) * (w, h), rng.normal(0, 0.01, 2) * (w, h)
    rot, zoom = rng.normal(0, 0.02), rng.normal(0, 0.015)
    for t in range(frames):
        mf = cv2.getRotationMatrix2D((w / 2, h / 2), math.degrees(rot * t), math.exp(zoom * t))
        mf[:, 2] += v_fg * t
        mb = np.float32([[1, 0, v_bg[0] * t], [0, 1, v_bg[1] * t]])
        a = cv2.warpAffine(alpha, mf, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
        f = cv2.warpAffine(fg, mf, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        b = cv2.warpAffine(bg, mb, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        outs["plate"].append(a[..., None] * f + (1 - a[..., None]) * b)
        outs["alpha"].append(a)
        outs["fg"].append(f)
        outs["bg"].append(b)
    return tuple(np.stack(outs[k]).astype(np.float32) for k in ("plate", "alpha", "fg", "bg"))


class VideoDataset:
    """Clips of consecutive frames from a list of ``VideoRecord`` (any of the layouts above)."""

    def __init__(self, name: str, videos: list[VideoRecord], seed: int = 0) -> None:
        videos = [v for v in videos if v.frames]
        if not videos:
            raise InputError(f"{name}: no clips with frames found")
        self.name = name
        self.videos = videos
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.videos)

    def clip(self, step: int, index: int, *, frames: int, size: tuple[int, int], difficulty: float = 1.0,
             static: bool = False) -> Clip:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, step, index, 108]))
        vid = self.videos[int(rng.integers(len(self.videos)))]
        n = len(vid.frames)
        if static or n == 1:
            fs = vid.frames[int(rng.integers(n))]
            parts = pseudo_clip(*load_frame(fs), rng, frames)
        else:
            stride = int(rng.integers(1, 3)) if n >= 2 * frames else 1
            span = (frames - 1) * stride + 1
            start = int(rng.integers(0, max(1, n - span + 1)))
            idx = [min(n - 1, start + i * stride) for i in range(frames)]
            if rng.random() < 0.5:  # played backwards is a valid clip too
                idx = idx[::-1]
            loaded = [load_frame(vid.frames[i]) for i in idx]
            parts = tuple(np.stack([f[k] for f in loaded]) for k in range(4))
        plate, alpha, fg, bg = _crop_resize(list(parts), rng, size, parts[1][0])
        if rng.random() < 0.5:
            plate, alpha, fg, bg = (np.ascontiguousarray(x[:, :, ::-1]) for x in (plate, alpha, fg, bg))
        return Clip(name=f"{self.name}/{vid.name}", plate=plate, alpha=np.clip(alpha, 0, 1), fg=fg, bg=bg)


def vm108_videos(root: Path, split: str = "train") -> list[VideoRecord]:
    corr_path = root / "frame_corr.json"
    split_path = root / f"{split}_videos.txt"
    for p in (corr_path, split_path, root / "FG_done", root / "BG_done"):
        if not p.exists():
            raise InputError(f"vm108:{root}: {p.name} not found; expected a VideoMatting108 folder "
                             "(FG_done, BG_done, frame_corr.json, train_videos.txt, val_videos.txt)")
    try:
        corr = json.loads(corr_path.read_text())
    except (ValueError, RecursionError) as e:
        raise InputError(f"{corr_path}: not valid JSON ({e})") from None
    if not isinstance(corr, dict):
        raise InputError(f"{corr_path}: expected a JSON object of foreground frame -> background frame")
    by_clip: dict[str, list[str]] = {}
    for key in sorted(corr):
        by_clip.setdefault(str(Path(key).parent), []).append(key)
    videos = []
    for line in split_path.read_text().splitlines():
        clip = line.strip()
        if not clip:
            continue
        keys = by_clip.get(clip, [])
        frames = [FrameSet(fg=root / "FG_done" / k, alpha=None, bg=root / "BG_done" / corr[k]) for k in keys]
        videos.append(VideoRecord(clip, frames))
    return videos


def _sibling(root: Path, kind: str, clip: str, frame: Path) -> Path | None:
    """The file of the same frame (same stem, any image extension) in another DVM folder, if any."""
    d = root / kind / clip
    hits = sorted(p for p in d.glob(frame.stem + ".*") if p.suffix.lower() in IMAGE_EXTS) if d.is_dir() else []
    return hits[0] if hits else None


def dvm_videos(root: Path) -> list[VideoRecord]:
    for sub in ("v", "a"):
        if not (root / sub).is_dir():
            raise InputError(f"dvm:{root}: folder {sub}/ not found; expected DVM's generated v/ a/ f/ b/ folders")
    videos = []
    for clip_dir in sorted(p for p in (root / "a").iterdir() if p.is_dir()):
        name = clip_dir.name
        frames = []
        for a in _frames_in(clip_dir):
            frames.append(FrameSet(fg=_sibling(root, "f", name, a), alpha=a, bg=_sibling(root, "b", name, a),
                                   comp=_sibling(root, "v", name, a), fg_premultiplied=True))
        videos.append(VideoRecord(name, frames))
    return videos


def _pick(lst: list[Path], i: int, n: int) -> Path | None:
    return (lst[i] if len(lst) == n else lst[0]) if lst else None


def folder_videos(root: Path) -> list[VideoRecord]:
    if not root.is_dir():
        raise InputError(f"folder:{root}: not a folder")
    videos = []
    for clip_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        alphas = _frames_in(clip_dir / "alpha")
        if not alphas:
            continue
        fgs, bgs, comps = (_frames_in(clip_dir / k) for k in ("fg", "bg", "comp"))
        if not comps and not (fgs and bgs):
            raise InputError(f"folder:{root}: clip {clip_dir.name} has alpha/ but neither comp/ nor fg/ + bg/")
        n = len(alphas)
        for kind, lst in (("fg", fgs), ("bg", bgs), ("comp", comps)):
            if lst and len(lst) not in (1, n):
                raise InputError(f"folder:{root}: clip {clip_dir.name} has {n} alpha frames but {len(lst)} in "
                                 f"{kind}/; expected {n} (or 1 for a still background)")

        frames = [FrameSet(fg=_pick(fgs, i, n), alpha=alphas[i], bg=_pick(bgs, i, n), comp=_pick(comps, i, n))
                  for i in range(n)]
        videos.append(VideoRecord(clip_dir.name, frames))
    if not videos:
        raise InputError(f"folder:{root}: no <clip>/alpha/ folders with images found")
    return videos


def open_dataset(kind: str, root: Path, *, seed: int = 0, split: str = "train") -> VideoDataset:
    """``kind`` is vm108, dvm or folder. Raises InputError naming what is missing."""
    if not root.exists():
        raise InputError(f"{kind}:{root}: path does not exist")
    if kind == "vm108":
        return VideoDataset(f"vm108-{split}", vm108_videos(root, split), seed)
    if kind == "dvm":
        return VideoDataset("dvm", dvm_videos(root), seed)
    if kind == "folder":
        return VideoDataset("folder", folder_videos(root), seed)
    raise InputError(f"dataset kind {kind!r}: expected vm108, dvm or folder")
