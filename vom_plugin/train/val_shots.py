"""Shot folders made from rendered library clips, laid out as the test shots are: ``plate.####.exr`` (linear
RGB, half), ``gt.####.exr`` (the renderer's alpha, channel A) and ``roto.0001.exr`` (an artist's quick roto of
the first frame), every frame of the clip in order at the clip's own size.

Rendered at the test shots' size and length (``vom clips render --size 270 480 --frames 24`` into a folder of
its own, from seeds the training library never uses), they are a validation set that stands for the shots:
they go through the render's pass runner at the node's working size, where the 256 px, 8-frame validation
clips did not show what thin parts and fur do over a whole shot (model card, sessions 14 and 15).
"""

from __future__ import annotations

import json
import re
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vom_plugin.atomic import write_text_atomic
from vom_plugin.errors import InputError
from vom_plugin.io.exr_out import write_exr

# The test shots' roto recipe (shared/data/shots/README.md): GT alpha > 0.5, opened and closed by 3 px,
# dilated by 2 px.
ROTO_KERNEL = 7
ROTO_DILATE = 2
_SALT = 7301
# Camera motion, shake and sensor noise at half of training's full difficulty: plates carry some grain and
# shake, rarely as much as the hardest training clips.
DIFFICULTY = 0.5
# Beside the shot folders: the background set they were composited over and each shot's photograph.
RECORD = "shots.json"


def first_in_view(alpha: np.ndarray) -> int | None:
    """The first frame of ``alpha`` [T, H, W] that shows enough of the object to start a shot from (as training
    clips must: ``clips.shows_object_first``); None when none does."""
    from vom_plugin.train.clips import MIN_FIRST_AREA, MIN_FIRST_SHARE

    cover = alpha.reshape(alpha.shape[0], -1).sum(1)
    need = max(MIN_FIRST_AREA * alpha[0].size, MIN_FIRST_SHARE * float(cover.max()), 1e-6)
    hits = np.flatnonzero(cover >= need)
    return int(hits[0]) if hits.size else None


def shot_of_clip(library: Any, rec: Any, seed: int, backgrounds: Any) -> tuple[np.ndarray, np.ndarray, str] | None:
    """The clip ``rec`` of ``library`` composited over a photograph at its own size (camera motion, shake and
    sensor noise at ``DIFFICULTY``), as (plate [T, H, W, 3], alpha [T, H, W], the photograph's identity). A clip
    whose object enters late starts where it is in view and plays on forth and back to its length
    (``clips.frames_from``); None when no composite tried shows the object."""
    from vom_plugin.train.clips import MAX_PICKS, frames_from
    from vom_plugin.train.composite import composite_clip

    tgt, occ = library.load(rec, list(range(rec.frames)))
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(rec.name.encode()), _SALT]))
    for _ in range(MAX_PICKS):
        pick = int(rng.integers(1 << 30))
        photo = backgrounds.get(pick)
        clip = composite_clip(tgt, occ, photo, rng, size=tgt.shape[1:3], difficulty=DIFFICULTY, name=rec.name)
        start = first_in_view(clip.alpha)
        if start is not None:
            idx = frames_from(rec.frames, start, rec.frames)
            return clip.plate[idx], clip.alpha[idx], backgrounds.identity(pick)
    return None


def write_shot(folder: Path, plate: np.ndarray, alpha: np.ndarray) -> None:
    """``plate`` [T, H, W, 3] linear and ``alpha`` [T, H, W] as a shot folder (frames 1..T), written into a
    hidden sibling and renamed: the folder appears whole or not at all."""
    from vom_plugin.eval.clips import coarse_roto

    partial = folder.with_name(f".{folder.name}.partial")
    if partial.is_dir() and not partial.is_symlink():  # an earlier export's, cut short: only its own frames in it
        if any(not (p.is_file() and re.fullmatch(r"(plate|gt|roto)\.\d{4}\.exr|\..*\.tmp\.exr", p.name))
               for p in partial.iterdir()):
            raise InputError(f"{partial} holds files an export did not write; move it aside")
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        for i, (rgb, a) in enumerate(zip(plate, alpha, strict=True), start=1):
            write_exr(partial / f"plate.{i:04d}.exr", rgb, ("R", "G", "B"))
            write_exr(partial / f"gt.{i:04d}.exr", a, ("A",))
        roto = coarse_roto(alpha[0], dilate=ROTO_DILATE, kernel=ROTO_KERNEL)
        write_exr(partial / "roto.0001.exr", roto, ("A",))
        partial.rename(folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def export_shots(library_root: Path, dest: Path, *, seed: int = 0, backgrounds: Any = None,
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every clip of the library at ``library_root`` as a shot folder in ``dest`` (named as the clip); shots
    already there are kept (run it again after rendering more clips). Returns counts and the folders."""
    from vom_plugin.train.backgrounds import default_bank
    from vom_plugin.train.clips import ClipLibrary

    missing = InputError(f"--data-dir {library_root}: no finished clips to export (render some with `vom clips "
                         f"render --data-dir {library_root}`)")
    try:
        library = ClipLibrary(Path(library_root))
    except InputError:  # its message names --library, an option of vom train
        raise missing from None
    if not library.clips:
        raise missing
    dest = Path(dest)
    if dest.resolve() == Path(library_root).resolve():
        raise InputError(f"--to {dest}: is the library itself; export the shots to another folder")
    if dest.exists() and not dest.is_dir():
        raise InputError(f"--to {dest}: is a file, not a folder for the shot folders")
    dest.mkdir(parents=True, exist_ok=True)
    bank = backgrounds if backgrounds is not None else default_bank()
    sig = bank.signature()
    log(f"backgrounds: {sig['builtin']} scikit-image photographs + {sig['files']} files from VOM_BACKGROUNDS and "
        f"the wallpaper folders (set {sig['digest']})")
    record_path = dest / RECORD
    record = _read_record(record_path)
    kept_here = [rec.name for rec in library.clips if (dest / rec.name).is_dir()]
    if kept_here and record is not None and record.get("backgrounds", {}).get("digest") != sig["digest"]:
        was = record.get("backgrounds", {})
        raise InputError(
            f"--to {dest}: its shots were composited over another set of background photographs (set "
            f"{was.get('digest')}: {was.get('builtin')} scikit-image + {was.get('files')} files; here set "
            f"{sig['digest']}: {sig['builtin']} + {sig['files']}), so shots added now would be pictures of another "
            "set; export into a new folder, or install the same backgrounds (the wallpaper packages, "
            "VOM_BACKGROUNDS) first")
    if kept_here and record is None:
        log(f"{dest}: {len(kept_here)} shot(s) there were exported before vom recorded their backgrounds "
            f"({RECORD}): whether they match the ones added now is not known")
    shots_bg = dict(record.get("shots", {})) if record is not None else {}
    unrecorded = kept_here if record is None else list(record.get("unrecorded", []))

    def save() -> None:
        out = {"seed": seed, "backgrounds": sig, "shots": dict(sorted(shots_bg.items()))}
        if unrecorded:
            out["unrecorded"] = unrecorded  # shots exported before this record existed: backgrounds unknown
        write_text_atomic(record_path, json.dumps(out, indent=1) + "\n")

    written, kept, skipped = [], [], []
    try:
        for rec in library.clips:
            folder = dest / rec.name
            if folder.is_dir():
                kept.append(folder)
                continue
            shot = shot_of_clip(library, rec, seed, bank)
            if shot is None:
                skipped.append(rec.name)
                log(f"{rec.name}: skipped (the object is out of view in every composite tried)")
                continue
            plate, alpha, background = shot
            write_shot(folder, plate, alpha)
            shots_bg[rec.name] = background
            written.append(folder)
            log(f"{rec.name}: {len(alpha)} frames, {alpha.shape[2]}x{alpha.shape[1]} over {background} -> {folder}")
    except BaseException:
        if written:  # the shots that did reach the disk keep their record
            save()
        raise
    if written or record is None:
        save()
    return {"written": len(written), "kept": len(kept), "skipped": skipped, "backgrounds": sig,
            "shots": sorted(str(p) for p in written + kept)}


def _read_record(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as e:
        raise InputError(f"{path}: unreadable record of the shots' backgrounds ({e}); move it aside") from None
    # vom's own: the backgrounds' digest and the shots' photographs (another tool's shots.json was merged into)
    if not (isinstance(rec, dict) and isinstance(rec.get("backgrounds"), dict) and "digest" in rec["backgrounds"]
            and isinstance(rec.get("shots"), dict)):
        raise InputError(f"{path}: not vom's record of the shots' backgrounds; move it aside, or export into "
                         "another folder")
    return rec
