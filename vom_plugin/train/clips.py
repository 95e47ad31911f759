"""The library of path-traced training clips: rendering it with Blender, reading it back for training.

Layout of a library folder (default ``locations.clip_library_dir()``, ``--data-dir`` to override):

  library.json          the settings every clip shares: frames, size, samples, spec version
  textures/             scikit-image's photographs as PNG, the renderer's textures and environment maps
  clip_000042/          one finished clip: clip.json (seed, scene spec, tags, Blender version, render
                        seconds), rgba.0001.exr ... (target, premultiplied linear RGBA, half float) and, when
                        the clip has an occluder, occ.0001.exr ...
  .partial/             clips being rendered; a clip is renamed into place only once every frame is
                        written and read back, so a killed render leaves no clip that looks finished

Rendering is resumable: finished clips are skipped, so the same command continues an interrupted run.
A clip's content is a function of its seed (``clip_spec``) and the Blender version.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vom_plugin.atomic import atomic_path, write_text_atomic
from vom_plugin.errors import InputError
from vom_plugin.train.clip_spec import SPEC_VERSION, clip_spec, features
from vom_plugin.train.synth import Clip

SCRIPT = Path(__file__).with_name("blender_scene.py")
LIBRARY_FILE = "library.json"
CLIP_FILE = "clip.json"


def find_blender(explicit: str | None = None) -> str | None:
    """The Blender executable: ``explicit``, else ``VOM_BLENDER``, else ``blender`` on the PATH."""
    name = explicit or os.environ.get("VOM_BLENDER") or "blender"
    return shutil.which(name)


@functools.lru_cache(maxsize=4)
def blender_version(blender: str) -> str:
    out = subprocess.run([blender, "-b", "--factory-startup", "--version"], capture_output=True, text=True,
                         timeout=120)
    for line in out.stdout.splitlines():
        if line.startswith("Blender "):
            return line.split()[1]
    return "unknown"


def clip_name(seed: int) -> str:
    return f"clip_{seed:06d}"


def write_textures(folder: Path) -> list[Path]:
    """scikit-image's photographs as 8-bit sRGB PNG in ``folder`` (written once, atomically): the only
    images the renderer uses, so a library rebuilds identically on any machine with the same packages."""
    import cv2

    from vom_plugin.train.synth import _PHOTOS_GRAY, _PHOTOS_RGB

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in _PHOTOS_RGB + _PHOTOS_GRAY:
        dest = folder / f"{name}.png"
        if not dest.exists():
            import warnings

            import skimage.data as skd

            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    im = np.asarray(getattr(skd, name)())
            except Exception:  # a trimmed scikit-image: fewer textures, same code
                continue
            if im.ndim == 2:
                im = np.repeat(im[..., None], 3, axis=2)
            im = np.ascontiguousarray(im[..., :3][..., ::-1]).astype(np.uint8)
            with atomic_path(dest, fsync=False) as tmp:
                if not cv2.imwrite(str(tmp), im):
                    raise InputError(f"{dest}: cannot write a PNG there")
        paths.append(dest)
    return paths


@dataclass
class LibrarySettings:
    frames: int = 12
    size: tuple[int, int] = (256, 256)  # height, width
    samples: int = 20

    def to_json(self) -> dict[str, Any]:
        return {"frames": self.frames, "size": list(self.size), "samples": self.samples, "spec_version": SPEC_VERSION}


def _check_settings(root: Path, settings: LibrarySettings) -> None:
    """A library holds clips of one kind: refuse to mix settings (write library.json on first use)."""
    path = root / LIBRARY_FILE
    want = settings.to_json()
    if path.exists():
        try:
            have = json.loads(path.read_text())
        except (OSError, ValueError, RecursionError) as e:
            raise InputError(f"{path}: unreadable ({e})") from None
        diff = [k for k in ("frames", "size", "samples", "spec_version") if have.get(k) != want[k]]
        if diff:
            raise InputError(f"--data-dir {root}: its clips were rendered with "
                             + ", ".join(f"{k}={have.get(k)}" for k in diff) + "; asked for "
                             + ", ".join(f"{k}={want[k]}" for k in diff) + ". Use the same settings or another "
                             "--data-dir")
        return
    root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(want, indent=1) + "\n")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_PARTIAL = re.compile(r"\Aclip_\d+\.(\d+)\Z")  # .partial/<clip>.<pid>: a renderer's work folder


def _clean_partials(root: Path) -> None:
    """Remove half-rendered clips left by processes that are gone (a live renderer's are kept)."""
    part = root / ".partial"
    if not part.is_dir():
        return
    for d in part.iterdir():
        m = _PARTIAL.match(d.name)  # a folder of another name is not a renderer's: left as it is
        if m and d.is_dir() and not d.is_symlink() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(d, ignore_errors=True)


def _read_rgba(path: Path) -> np.ndarray:
    """A library frame: R, G, B, A in that order, finite; through the io package's checked reader."""
    from vom_plugin.io.reader import open_image, read_channels

    with open_image(path, "library frame") as img:
        names = list(img.spec.channelnames)
        if names[:4] != ["R", "G", "B", "A"]:
            raise InputError(f"{path}: expected channels R, G, B, A, found {', '.join(names)}")
        rgba = read_channels(img, [0, 1, 2, 3])
    if not np.isfinite(rgba).all():
        raise InputError(f"{path}: not a finite RGBA image")
    return rgba


def _children_cpu() -> float:
    """CPU seconds used by finished child processes: the render's cost even on a machine shared with others."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def frame_files(folder: Path, layer: str, frames: int) -> list[Path]:
    return [folder / f"{layer}.{i:04d}.exr" for i in range(1, frames + 1)]


def render_clip(root: Path, seed: int, settings: LibrarySettings, *, blender: str, photos: list[Path],
                threads: int = 2, timeout: float = 3600.0, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """Render clip ``seed`` into ``root`` atomically; returns its clip.json record. Raises RuntimeError when
    Blender fails (with the end of its log). ``spec`` replaces the seed's scene (tests, hand-made scenes)."""
    name = clip_name(seed)
    if spec is None:
        spec = clip_spec(seed, frames=settings.frames, size=settings.size, samples=settings.samples,
                         photos=len(photos))
    work = root / ".partial" / f"{name}.{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    job = {"spec": spec, "photos": [str(p) for p in photos], "out": str(work), "threads": int(threads)}
    (work / "job.json").write_text(json.dumps(job, indent=1))
    t0, cpu0 = time.monotonic(), _children_cpu()
    cmd = [blender, "-b", "--factory-startup", "--python-exit-code", "1", "-P", str(SCRIPT), "--",
           str(work / "job.json")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    seconds, cpu = time.monotonic() - t0, _children_cpu() - cpu0
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        shutil.rmtree(work, ignore_errors=True)
        raise RuntimeError(f"Blender failed on {name} (exit {proc.returncode}):\n{tail}")
    layers = ["rgba"] + (["occ"] if spec["occluder"] else [])
    for layer in layers:  # every frame present and readable before the clip counts as finished
        for f in frame_files(work, layer, settings.frames):
            if not f.exists():
                shutil.rmtree(work, ignore_errors=True)
                raise RuntimeError(f"Blender finished {name} without writing {f.name}")
            _read_rgba(f)
    record = {"name": name, "seed": seed, "frames": settings.frames, "size": list(settings.size),
              "layers": layers, "tags": features(spec), "render_s": round(seconds, 2),
              "cpu_s": round(cpu, 2),
              "blender": blender_version(blender), "spec": spec}
    (work / "job.json").unlink()
    (work / CLIP_FILE).write_text(json.dumps(record, indent=1) + "\n")
    dest = root / name
    if os.path.lexists(dest) and not (dest / CLIP_FILE).exists():
        # frames without the clip's record: a clip render's of old, or a user's folder of that name; nothing says
        # which, so it is never deleted (a user's EXRs were, by their names alone: QA)
        shutil.rmtree(work, ignore_errors=True)
        held = sorted(p.name for p in dest.iterdir())[:5] if dest.is_dir() and not dest.is_symlink() else []
        raise InputError(f"{dest} exists without a clip's {CLIP_FILE} ({', '.join(held) or 'a file or a link'}); "
                         "vom does not replace it: move it away, or give --data-dir a folder of vom's clips")
    try:
        os.rename(work, dest)
    except OSError:  # another renderer finished the same clip first: keep theirs
        shutil.rmtree(work, ignore_errors=True)
    return record


def require_blender(blender: str | None) -> str:
    """The Blender to render clips with (``--blender``, else ``VOM_BLENDER``, else ``blender`` on PATH); InputError
    naming where it was looked for."""
    exe = find_blender(blender)
    if exe is None:
        env = os.environ.get("VOM_BLENDER", "").strip()
        where = f"--blender {blender}" if blender else f"VOM_BLENDER {env}" if env else "blender on PATH"
        raise InputError(f"Blender not found ({where}); install it (Debian: apt-get install blender) or pass "
                         f"--blender PATH")
    return exe


def render_library(root: Path, count: int, settings: LibrarySettings, *, seed_base: int = 0,
                   blender: str | None = None, threads: int = 2, log: Callable[[str], None] = print
                   ) -> dict[str, Any]:
    """Render clips ``seed_base .. seed_base + count - 1`` into ``root``, skipping finished ones."""
    exe = require_blender(blender)
    _check_settings(root, settings)
    _clean_partials(root)
    # a clip's folder without its record, found before a night's render rather than after a clip's hour (render_clip
    # refuses it too): an empty one is removed, anything else is not vom's to replace
    taken = []
    for seed in range(seed_base, seed_base + count):
        dest = root / clip_name(seed)
        if os.path.lexists(dest) and not (dest / CLIP_FILE).exists():
            if dest.is_dir() and not dest.is_symlink() and not any(dest.iterdir()):
                dest.rmdir()
            else:
                taken.append(dest.name)
    if taken:
        raise InputError(f"{root}: {', '.join(taken[:5])}{' ...' if len(taken) > 5 else ''} exist without a clip's "
                         f"{CLIP_FILE}; vom does not replace them: move them away, or give --data-dir a folder of "
                         f"vom's clips")
    photos = write_textures(root / "textures")
    done, rendered, seconds, cpu, failed = 0, 0, 0.0, 0.0, []
    for i in range(count):
        seed = seed_base + i
        if (root / clip_name(seed) / CLIP_FILE).exists():
            done += 1
            continue
        try:
            rec = render_clip(root, seed, settings, blender=exe, photos=photos, threads=threads)
        except (RuntimeError, subprocess.TimeoutExpired) as e:  # one bad scene must not stop a night's render
            failed.append(clip_name(seed))
            log(f"{clip_name(seed)}  FAILED: {e}")
            continue
        rendered += 1
        seconds += rec["render_s"]
        cpu += rec["cpu_s"]
        log(f"{rec['name']}  {rec['render_s']:6.1f} s ({rec['cpu_s']:.1f} CPU s)  {','.join(rec['tags'])}  "
            f"({done + rendered}/{count}, mean {seconds / rendered:.1f} s/clip, {cpu / rendered:.1f} CPU s/clip)")
    size = library_bytes(root)
    return {"rendered": rendered, "skipped": done, "failed": failed, "seconds": seconds, "cpu_seconds": cpu,
            "seconds_per_clip": seconds / rendered if rendered else None,
            "cpu_seconds_per_clip": cpu / rendered if rendered else None, "bytes": size}


@dataclass
class ClipRecord:
    folder: Path
    name: str
    frames: int
    has_occluder: bool
    tags: list[str]
    render_s: float
    cpu_s: float


VAL_EVERY = 10  # clips whose seed is 9 mod 10 are validation clips: never trained on (ClipLibrary split "train")


def is_validation_clip(name: str) -> bool:
    m = re.fullmatch(r"clip_(\d+)", name)
    return bool(m) and int(m.group(1)) % VAL_EVERY == VAL_EVERY - 1


class ClipLibrary:
    """The finished clips of a library folder (``.partial`` and anything without clip.json are ignored).

    ``split``: "train" leaves out the validation clips (``is_validation_clip``), "val" keeps only them.
    """

    def __init__(self, root: Path, split: str = "all", flag: str = "--library") -> None:
        root = Path(root)
        if not root.is_dir():
            raise InputError(f"{flag} {root}: not a folder (render one with `vom clips render --data-dir "
                             f"{root}`)")
        self.root = root
        self.clips: list[ClipRecord] = []
        for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            meta = d / CLIP_FILE
            if not meta.exists():
                continue
            try:
                rec = json.loads(meta.read_text())
                self.clips.append(ClipRecord(d, rec["name"], int(rec["frames"]), "occ" in rec["layers"],
                                             list(rec.get("tags", [])), float(rec.get("render_s", 0.0)),
                                             float(rec.get("cpu_s", 0.0))))
            except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
                raise InputError(f"{meta}: not a clip record ({e})") from None
        if split != "all":
            self.clips = [c for c in self.clips if is_validation_clip(c.name) == (split == "val")]
        if not self.clips:
            raise InputError(f"{flag} {root}: holds no finished {'' if split == 'all' else split + ' '}clips "
                             "(clip_*/clip.json)")

    def __len__(self) -> int:
        return len(self.clips)

    def subset(self, clips: list[ClipRecord]) -> ClipLibrary:
        """The same library restricted to ``clips`` (e.g. one validation clip)."""
        out = object.__new__(ClipLibrary)
        out.root, out.clips = self.root, list(clips)
        return out

    def load(self, clip: ClipRecord, frames: list[int]) -> tuple[np.ndarray, np.ndarray | None]:
        """(target [n, H, W, 4], occluder [n, H, W, 4] or None) for 0-based frame indices."""
        tgt = np.stack([_read_rgba(clip.folder / f"rgba.{i + 1:04d}.exr") for i in frames])
        occ = None
        if clip.has_occluder:
            occ = np.stack([_read_rgba(clip.folder / f"occ.{i + 1:04d}.exr") for i in frames])
        return tgt, occ


def pick_frames(n: int, frames: int, rng: np.random.Generator) -> list[int]:
    """``frames`` indices into a clip of ``n``: a run of consecutive (or every other) frames, maybe
    backwards; a clip shorter than asked plays forth and back."""
    stride = 2 if n >= 2 * frames - 1 and rng.random() < 0.3 else 1
    if frames > n:
        idx = frames_from(n, 0, frames)
    else:
        span = (frames - 1) * stride + 1
        start = int(rng.integers(0, n - span + 1))
        idx = [start + i * stride for i in range(frames)]
    return idx[::-1] if rng.random() < 0.5 else idx


class LibrarySource:
    """Training clips from a rendered library, composited over background photographs by
    ``composite.composite_clip``; a pure function of (seed, step, index), like ``SynthSource``."""

    name = "library"

    def __init__(self, library: ClipLibrary, seed: int, backgrounds=None) -> None:
        from vom_plugin.train.backgrounds import default_bank

        self.library = library
        self.seed = int(seed)
        self.backgrounds = backgrounds if backgrounds is not None else default_bank()

    def clip(self, step: int, index: int, *, frames: int, size: tuple[int, int], difficulty: float = 1.0,
             static: bool = False) -> Clip:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(step), int(index), 1515]))
        rec = self.library.clips[int(rng.integers(len(self.library)))]
        for _ in range(MAX_PICKS):
            if static:  # stage 1: one rendered frame, moved by a slow drift
                idx = [int(rng.integers(rec.frames))] * frames
            else:
                idx = pick_frames(rec.frames, frames, rng)
            clip = self._composite(rec, idx, rng, size, difficulty, static)
            if shows_object_first(clip.alpha):
                return clip
        # No pick started on the object: it enters and leaves within every window of this length (a clip as
        # long as the render starts and ends without it). Start on the frame that shows most of it.
        tgt, _ = self.library.load(rec, list(range(rec.frames)))
        first = int(tgt[..., 3].reshape(rec.frames, -1).sum(1).argmax())
        idx = [first] * frames if static else frames_from(rec.frames, first, frames)
        return self._composite(rec, idx, rng, size, difficulty, static)

    def _composite(self, rec: Any, idx: list[int], rng: np.random.Generator, size: tuple[int, int],
                   difficulty: float, static: bool) -> Clip:
        from vom_plugin.train.composite import composite_clip

        uniq = sorted(set(idx))
        tgt, occ = self.library.load(rec, uniq)
        where = [uniq.index(i) for i in idx]
        tgt = tgt[where]
        occ = occ[where] if occ is not None else None
        photo = self.backgrounds.get(int(rng.integers(1 << 30)))
        return composite_clip(tgt, occ, photo, rng, size=size, difficulty=difficulty, drift=static,
                              name=f"library/{rec.name}")


def frames_from(n: int, start: int, frames: int) -> list[int]:
    """``frames`` indices into a clip of ``n`` from ``start`` on, playing forth and back (0..n-1, n-2..1, ...)."""
    cycle = list(range(n)) + list(range(n - 2, 0, -1)) or [0]
    return [cycle[(start + i) % len(cycle)] for i in range(frames)]


# A rendered object may enter the frame late or leave it: a clip whose first frame (the roto's) shows little
# of it asks the network to find an object it was never shown. Such picks are drawn again.
MAX_PICKS = 8
MIN_FIRST_AREA = 0.002  # of the frame
MIN_FIRST_SHARE = 0.3  # of the clip's largest coverage


def shows_object_first(alpha: np.ndarray) -> bool:
    """alpha [T, H, W]: does frame 0 show enough of the object to start from it?"""
    cover = alpha.reshape(alpha.shape[0], -1).sum(1)
    return bool(cover[0] >= max(MIN_FIRST_AREA * alpha[0].size, MIN_FIRST_SHARE * cover.max()))


class MixedSource:
    """Each clip of a batch from ``library`` with probability ``share``, else from ``base``."""

    def __init__(self, base, library: LibrarySource, share: float, seed: int) -> None:
        if not 0.0 <= share <= 1.0:
            raise InputError(f"--library-share {share}: expected a fraction in [0, 1]")
        self.base, self.library, self.share, self.seed = base, library, float(share), int(seed)
        self.name = f"{getattr(base, 'name', 'data')}+library"

    def clip(self, step: int, index: int, **kw: Any) -> Clip:
        u = np.random.default_rng(np.random.SeedSequence([self.seed, int(step), int(index), 1516])).random()
        return (self.library if u < self.share else self.base).clip(step, index, **kw)


def with_library(source, library: Path | None, share: float, seed: int):
    """``source`` mixed with the clip library at ``library`` (``source`` itself when ``library`` is None)."""
    if library is None or share <= 0:
        return source
    return MixedSource(source, LibrarySource(ClipLibrary(library, "train"), seed), share, seed)


def library_bytes(root: Path) -> int:
    """A library's size on disk: every file in it, its textures too (not what links point at)."""
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink())


def library_summary(root: Path, flag: str = "--library") -> dict[str, Any]:
    """What ``vom clips info`` says of a library; ``bytes``: every file in it, its textures too (its size on disk)."""
    lib = ClipLibrary(root, flag=flag)
    tags: dict[str, int] = {}
    for c in lib.clips:
        for t in c.tags:
            tags[t] = tags.get(t, 0) + 1
    size = library_bytes(Path(root))
    secs = [c.render_s for c in lib.clips if c.render_s > 0]
    cpus = [c.cpu_s for c in lib.clips if c.cpu_s > 0]
    return {"root": str(root), "clips": len(lib), "frames": sum(c.frames for c in lib.clips), "bytes": size,
            "seconds_per_clip": float(np.mean(secs)) if secs else None,
            "cpu_seconds_per_clip": float(np.mean(cpus)) if cpus else None, "tags": dict(sorted(tags.items()))}



SHEET_MARK = "vom clips contact sheet"


def contact_sheet(root: Path, dest: Path, *, tile: int = 128, columns: int = 8) -> int:
    """A PNG of every clip's middle frame over mid grey, its alpha below it, in the network's display
    encoding: the quickest way to see what a library holds. Returns the number of clips drawn."""
    import cv2

    dest = Path(dest)
    check_sheet_destination(dest)

    from vom_plugin.train.data import network_encoder

    lib = ClipLibrary(root)
    encode = network_encoder()
    tiles = []
    for rec in lib.clips:
        rgba = lib.load(rec, [rec.frames // 2])[0][0]
        comp = encode(np.ascontiguousarray(rgba[..., :3] + (1.0 - rgba[..., 3:4]) * 0.18))
        pair = np.concatenate([comp, np.repeat(rgba[..., 3:4], 3, axis=2)], axis=0)
        tiles.append(cv2.resize(np.clip(pair, 0, 1), (tile, 2 * tile), interpolation=cv2.INTER_AREA))
    rows = [tiles[i:i + columns] for i in range(0, len(tiles), columns)]
    blank = np.zeros_like(tiles[0])
    sheet = np.concatenate([np.concatenate(r + [blank] * (columns - len(r)), axis=1) for r in rows], axis=0)
    from vom_plugin import import_oiio

    oiio = import_oiio()

    img = (sheet * 255 + 0.5).astype(np.uint8)
    spec = oiio.ImageSpec(img.shape[1], img.shape[0], 3, oiio.UINT8)
    spec.attribute("Software", SHEET_MARK)  # a PNG text chunk: the next `vom clips info --sheet` knows it as its own
    with atomic_path(dest, fsync=False) as tmp:
        out = oiio.ImageOutput.create(str(tmp))
        if out is None or not out.open(str(tmp), spec) or not out.write_image(img) or not out.close():
            raise InputError(f"--sheet {dest}: cannot write a PNG there ({oiio.geterror()})")
    return len(tiles)


def check_sheet_destination(dest: Path) -> None:
    """``--sheet``: a .png path that is free or holds a sheet vom wrote, before the library is read (a user's picture
    named by mistake was replaced: QA)."""
    from vom_plugin.atomic import check_replaceable

    if dest.suffix.lower() != ".png":
        raise InputError(f"--sheet {dest}: expected a .png file")
    check_replaceable(dest, lambda start: SHEET_MARK.encode() in start, "--sheet")
    from vom_plugin.atomic import make_folder

    make_folder(dest.parent, "--sheet")  # its folder made here, before the library is read (a missing one failed after)
