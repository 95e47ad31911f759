"""Evaluation clips: plates, ground-truth alphas and a first-frame roto, from the layouts a studio may own.

``--data`` specs of ``vom benchmark``:
- ``synth:N``     N synthetic clips of the training generator (seeds 0..N-1; deterministic).
- ``shots:PATH``  a folder of shot folders ``<name>/plate.####.exr``, ``gt.####.exr`` (alpha in A) and an
                  optional ``roto.####.exr`` on the first frame (the artist's roto; coarsened GT otherwise).
- ``folder:PATH`` the same layout, or PATH itself one shot folder; plates and GT may also be PNG/JPG/TIFF.
- ``dvm:PATH``    DVM generated clips ``v/<name>/%05d.jpg`` (composite) and ``a/<name>/%05d.jpg`` (alpha).
- ``vm108:PATH``  VideoMatting108 ``FG_done/<cat>/<clip>/*.png`` (RGBA) over ``BG_done`` frames listed by
                  ``frame_corr.json``; ``val_videos.txt`` picks the clips when present.
Plates are float32 [T, H, W, 3] in their clip's ``colorspace``, as ``vom render`` would read the files: a shot
folder's as its shot.yaml says, else linear Rec.709 for EXR and sRGB code values for other plates; DVM's and
VideoMatting108's 8-bit frames as sRGB code values (a render's default for them); alphas [T, H, W].
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vom_plugin.errors import InputError

_IMAGE_EXTS = (".exr", ".png", ".jpg", ".jpeg", ".tif", ".tiff")


@dataclass
class EvalClip:
    name: str
    plate: np.ndarray  # float32 [T, H, W, 3] in ``colorspace``
    gt: np.ndarray  # float32 [T, H, W]
    frames: list[int]
    roto: np.ndarray | None = None  # float32 [H, W] {0, 1} on frames[0]; None: coarsened from gt[0]
    colorspace: str = "lin_rec709"
    # the GT's values were refused where bad as it was read (load_shot, naming the file): run_benchmark need not
    # check them again
    gt_checked: bool = False


def coarse_roto(alpha: np.ndarray, *, dilate: int = 3, kernel: int = 5) -> np.ndarray:
    """An artist's quick roto of ``alpha`` [H, W], deterministic: threshold 0.5, open then close with a
    ``kernel``-pixel ellipse (specks and hair strands vanish, holes close), dilate ``dilate`` pixels (rotos
    are drawn a little loose)."""
    m = (np.asarray(alpha) >= 0.5).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel))
    m = cv2.morphologyEx(cv2.morphologyEx(m, cv2.MORPH_OPEN, k), cv2.MORPH_CLOSE, k)
    if dilate > 0:
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1, 2 * dilate + 1)))
    if not m.any():  # a thin or faint object vanishes under the opening: keep its strongest pixels
        m = (np.asarray(alpha) >= max(float(np.max(alpha)), 1e-6) * 0.5).astype(np.uint8)
    return m.astype(np.float32)


def _colour_channel(name: str) -> bool:
    """R, G, B or Y, of a layer or not (hero.R): a picture's channel, never a ground truth's matte by default."""
    return name.rsplit(".", 1)[-1] in ("R", "G", "B", "Y", "r", "g", "b", "red", "green", "blue")


def read_alpha(path: str | os.PathLike[str], *, role: str = "alpha", channel: str | None = None,
               preferred: str | None = None, flag: str | None = None) -> np.ndarray:
    """One alpha image as float32 (H, W) over its display window, NOT cleaned of NaN (scoring must see them).

    The channel is ``channel`` when given, else ``preferred`` where the file has it and it is not a colour channel
    (the prediction's channel, for its ground truth: its hero.A, where a prediction's R, a matte saved as opaque
    RGBA, made a ground truth with an alpha score its red, QA), else A / alpha / the only ``<layer>.A``, else the
    only channel (or Y), else R of an image whose R, G and B are equal (a grey matte saved as RGB, as some datasets
    do). RGB that differs per channel is a
    plate, not a matte, and several layered alphas (a render of several objects) are several mattes: InputError;
    so is an A of 1 everywhere beside R = G = B holding a matte (an opaque RGBA matte, as Nuke and datasets save
    them: its A would be scored), in a file vom did not write. ``flag``: the option that names the channel, for
    the messages.
    """
    from vom_plugin.io.reader import find_rgb, open_image, read_channels, to_display
    from vom_plugin.io.roto import is_data_channel

    def name_it(what: str) -> str:
        return f"name the channel to score ({flag} NAME)" if flag else f"save the {what} as channel A"

    with open_image(path, role) as img:
        ch = list(img.info.channels)
        if channel is not None:
            if channel not in ch:
                raise InputError(f"{role} {path} has no channel {channel!r} (channels {', '.join(ch)})")
            pick: int | None = ch.index(channel)
        elif preferred is not None and preferred in ch and not _colour_channel(preferred):
            pick = ch.index(preferred)
        else:  # by name: OpenImageIO's alpha_channel is the first *.A of a file of objects (dog.A before hero.A)
            pick = next((i for i, c in enumerate(ch) if c in ("A", "a", "alpha", "Alpha")), None)
            layered = [i for i, c in enumerate(ch) if c.endswith((".A", ".alpha"))]
            if pick is None and len(layered) > 1:
                # no one of them suggested: the first (dog.A) is as likely the wrong object as the right one
                raise InputError(f"{role} {path} holds several alphas ({', '.join(ch[i] for i in layered)}); "
                                 f"{name_it('one to score')}")
            if pick is None and len(layered) == 1:
                pick = layered[0]
            if pick is None and len(ch) == 1:
                if is_data_channel(ch[0]):  # a depth or motion pass given by mistake: its values scored as a matte
                    raise InputError(f"{role} {path}: its only channel {ch[0]!r} is a data pass (depth, normals, "
                                     f"motion...), not a matte; {name_it('matte')}")
                pick = 0
            if pick is None and "Y" in ch:
                pick = ch.index("Y")
        rgb_idx = find_rgb(tuple(ch), "")
        if pick is None:
            if rgb_idx is None:
                raise InputError(f"{role} {path}: no A, alpha, Y or single channel to read "
                                 f"(channels {', '.join(ch)}); expected an alpha image")
            rgb = read_channels(img, rgb_idx)
            if _spread(rgb) > 1e-3:
                raise InputError(f"{role} {path} has colour R, G, B and no alpha channel; expected an alpha "
                                 "(channel A) or a grey single-channel matte")
            values = rgb[..., 0]
        else:
            values = read_channels(img, [pick])[:, :, 0]
            if channel is None and rgb_idx is not None and pick not in rgb_idx:
                _refuse_opaque_rgba(img, rgb_idx, values, f"{role} {path}", ch[pick], flag)
        return np.ascontiguousarray(to_display(values, img.info), dtype=np.float32)


def _spread(rgb: np.ndarray) -> float:
    """How far R, G and B of an image part from each other at most (0: a grey image)."""
    finite = np.nan_to_num(rgb)
    return float((finite.max(axis=2) - finite.min(axis=2)).max()) if finite.size else 0.0


def _refuse_opaque_rgba(img: Any, rgb_idx: Any, alpha: np.ndarray, what: str, name: str, flag: str | None) -> None:
    """InputError where the alpha read is 1 everywhere while R = G = B hold a matte: an opaque RGBA matte
    (Nuke's Write of a matte shuffled into rgb, a dataset's PNGs) scored by its A was a plausible, wrong number
    (MAD 832 for a matte at 22), with no word; likewise beside a colour picture (a plate or comp given for the
    matte)."""
    from vom_plugin.io.reader import read_channels

    finite = np.nan_to_num(alpha)
    # opaque: 1 everywhere (an A of 0 beside a grey picture is vom's rgba output of a black-and-white plate with the
    # object out of frame, review); and never a file vom wrote, whose A is its matte
    if finite.size == 0 or finite.min() != 1.0 or finite.max() != 1.0 or "vom:version" in img.info.metadata:
        return
    rgb = read_channels(img, rgb_idx)
    grey = np.nan_to_num(rgb[..., 0])
    if _spread(rgb) > 1e-3:  # a colour picture with an opaque alpha: a plate (or a comp) given for the matte (QA)
        how = f"name the channel to score ({flag} {name} if it is)" if flag else "save the matte as channel A"
        raise InputError(f"{what}: its {name} is 1 in every pixel beside a colour picture in R, G, B: a plate, not a "
                         f"matte; {how}")
    if grey.max() - grey.min() < 1e-3:  # no matte in the RGB either
        return
    how = (f"name the channel to score: {flag} R for the matte, {flag} {name} for the {name}" if flag else
           "save the matte as channel A or as a one-channel image")
    raise InputError(f"{what}: its {name} is 1 in every pixel while R = G = B hold a matte "
                     f"(values {float(grey.min()):g} to {float(grey.max()):g}); {how}")


def read_alpha_sequence(pattern: str, frames: list[int] | None = None, *, role: str = "alpha",
                        size: tuple[int, int] | None = None, channel: str | None = None,
                        preferred: str | None = None, flag: str | None = None) -> tuple[list[int], np.ndarray]:
    """(frames, float32 [T, H, W]) of an alpha sequence; InputError names missing or mis-sized frames.

    ``size`` (width, height) is what every frame must be; default: the first frame's. ``channel``, ``preferred``,
    ``flag``: as ``read_alpha``'s.
    """
    from vom_plugin.io import open_sequence
    from vom_plugin.io.sequence import is_still

    if is_still(pattern):
        # one file stands for a still plate's every frame; an alpha scored against a sequence must be one too (a
        # pattern missing its #### scored one frame against every frame of the other, with no word)
        if not pattern.strip():
            raise InputError(f"{role}: no file given (an empty pattern)")
        if Path(pattern).is_dir():  # it exists: "does not exist" sent the user looking for a typo (QA)
            raise InputError(f"{role} {pattern} is a folder; give the {role}'s file pattern (alpha.####.exr)")
        if not Path(pattern).is_file():
            raise InputError(f"{role} file {pattern} does not exist")
        if frames is not None and len(set(frames)) > 1:
            raise InputError(f"{role} {pattern}: one file, with no frame token (####, %04d, @@@@), for "
                             f"{len(set(frames))} frames; give the {role} sequence's pattern (alpha.####.exr)")
    try:
        seq = open_sequence(pattern, frames, role="")
    except InputError as e:  # which side lacks them (QA: "sequence r/alpha.####.exr: missing frames 5-24")
        hint = "; score fewer with --frames" if frames is not None and role == "prediction" else ""
        raise InputError(f"{role}: {e}{hint}") from None
    out = []
    for f in seq.frames:
        a = read_alpha(seq.path(f), role=role, channel=channel, preferred=preferred, flag=flag)
        if size is None:
            size = (a.shape[1], a.shape[0])
        if (a.shape[1], a.shape[0]) != tuple(size):
            raise InputError(f"{role} frame {f} ({seq.path(f)}) is {a.shape[1]}x{a.shape[0]}; "
                             f"expected {size[0]}x{size[1]}")
        out.append(a)
    return list(seq.frames), np.stack(out)


def _pattern_in(folder: Path, stem: str) -> str | None:
    """``folder/stem.####.ext`` when such files exist (the first extension found), else None."""
    for ext in _IMAGE_EXTS:
        if any(folder.glob(f"{stem}.[0-9]*{ext}")):
            digits = len(next(iter(sorted(folder.glob(f"{stem}.[0-9]*{ext}")))).name.split(".")[-2])
            return str(folder / f"{stem}.{'#' * digits}{ext}")
    return None


def load_shot(folder: str | os.PathLike[str], *, max_frames: int | None = None) -> EvalClip:
    """A shot folder: plate.####.ext + gt.####.ext (+ optional roto.<first>.ext). The plate's pixels are read as
    ``vom render`` reads them (code values) and are in the ``colorspace`` a ``shot.yaml`` beside them says (what
    ``vom render shot.yaml`` would read them as), else linear Rec.709 for EXR plates and sRGB for the others (PNG,
    TIFF, JPEG: display-encoded as a rule). An 8-bit plate was decoded here and then decoded again by the colour
    setting its shot.yaml gave, so the benchmark matted another picture than ``vom render`` (QA).

    The shot's frames are every frame from the plate's first to its last, in its step (a plate on twos: every other
    frame, as ``vom render`` reads it), the first ``max_frames`` of them: a frame of the plate or the ground truth
    missing among them, a frame of another size and a ground truth with NaN/Inf or values
    far outside 0-1 are InputErrors naming the shot, the file and the frame (``check_shot``)."""
    from vom_plugin.io import existing_frame_path, read_plate

    folder = Path(folder)
    plate_pat, gt_pat, frames = _shot_frames(folder, max_frames)
    colorspace = _shot_colorspace(folder, plate_pat)
    w, h = _plate_size(folder, plate_pat, frames)
    plate = np.stack([read_plate(existing_frame_path(plate_pat, f)).rgb for f in frames])
    gt = _shot_gt(folder, gt_pat, frames, (w, h))
    return EvalClip(_shot_name(folder), plate.astype(np.float32), gt, list(frames),
                    _shot_roto(folder, frames[0], (w, h)), colorspace, gt_checked=True)


def check_shot(folder: str | os.PathLike[str], *, max_frames: int | None = None) -> None:
    """What ``load_shot`` refuses, without reading the plate's pixels: run over every shot before the first is
    rendered (a ground truth of 0-255 values in the last shot stopped a run after every other shot was matted, QA)."""
    folder = Path(folder)
    plate_pat, gt_pat, frames = _shot_frames(folder, max_frames)
    _shot_colorspace(folder, plate_pat)
    size = _plate_size(folder, plate_pat, frames)
    _shot_gt(folder, gt_pat, frames, size)
    _shot_roto(folder, frames[0], size)


def _shot_frames(folder: Path, max_frames: int | None) -> tuple[str, str, list[int]]:
    """(plate pattern, GT pattern, frames) of a shot folder. The frames run from the plate's first to its last in the
    plate's step (``vom render``'s rule, ``engine.shot_plate.plate_step``: a plate on twos has no holes): a hole was
    skipped, the network run across it as if the frames beside it were adjacent (QA); it is refused, as a
    ground-truth frame missing among them is."""
    from vom_plugin.engine.shot_plate import plate_step
    from vom_plugin.io import open_sequence
    from vom_plugin.io.sequence import PlateSequence, format_frames

    plate_pat, gt_pat = _pattern_in(folder, "plate"), _pattern_in(folder, "gt")
    if plate_pat is None or gt_pat is None:
        raise InputError(f"shot folder {folder}: expected plate.####.exr and gt.####.exr (or .png) in it")
    name = _shot_name(folder)
    on_disk = open_sequence(plate_pat, role=f"shot {name}: plate")
    frames = list(range(on_disk.frames[0], on_disk.frames[-1] + 1, plate_step(on_disk)))
    if max_frames:
        frames = frames[:max_frames]
    for pattern, what, why in (
            (plate_pat, "plate", "the benchmark mattes a shot's frames in order, as adjacent frames"),
            (gt_pat, "ground truth", "every plate frame is scored")):
        missing = PlateSequence(pattern, frames).missing()
        if missing:
            before = frames.index(missing[0])  # --frames N scores the first N: those before the first hole
            fewer = (f", or give --frames {before} to score {format_frames(frames[:before])} only" if before else "")
            raise InputError(f"shot {name}: {what} {pattern} has no frame {format_frames(missing)} of "
                             f"{format_frames(frames, stepped=True)} ({why}); supply the missing frame(s){fewer}")
    return plate_pat, gt_pat, frames


def _shot_name(folder: Path) -> str:
    """The shot's name in messages and results: its folder's, of the folder resolved where it was given as ``.``
    (folder:. printed "shot :"), its path where that has none (/)."""
    return folder.name or folder.resolve().name or str(folder.resolve())


def _shot_colorspace(folder: Path, plate_pat: str) -> str:
    """What the plate is read as: its shot.yaml's colorspace (``vom render shot.yaml``'s, the node's default if it
    says none), else linear Rec.709 for an EXR and sRGB for the others."""
    from vom_plugin import safe_yaml
    from vom_plugin.grammar import default, parse_value

    colorspace = "lin_rec709" if plate_pat.lower().endswith(".exr") else "sRGB"
    if (folder / "shot.yaml").is_file():
        data = safe_yaml.load_file(folder / "shot.yaml", f"shot file {folder / 'shot.yaml'}") or {}
        value = data.get("colorspace") if isinstance(data, dict) else None
        colorspace = parse_value("colorspace", value if value is not None else default("colorspace"),
                                 f"{folder / 'shot.yaml'}: colorspace")
    return colorspace


def _plate_size(folder: Path, plate_pat: str, frames: list[int]) -> tuple[int, int]:
    """(width, height) of the plate's display window, the same on every frame (InputError naming the frame)."""
    from vom_plugin.io import existing_frame_path, read_info

    size = None
    for f in frames:
        info = read_info(existing_frame_path(plate_pat, f))
        if size is None:
            size = (info.width, info.height)
        elif (info.width, info.height) != size:
            raise InputError(f"shot {_shot_name(folder)}: plate frame {f} ({existing_frame_path(plate_pat, f)}) is "
                             f"{info.width}x{info.height}; expected {size[0]}x{size[1]} as frame {frames[0]}")
    assert size is not None  # _shot_frames gives one frame at least
    return size


def _shot_gt(folder: Path, gt_pat: str, frames: list[int], size: tuple[int, int]) -> np.ndarray:
    """The shot's ground truth [T, H, W], refused where a frame has NaN/Inf or values far outside 0-1, in the file's
    own pixels (found after every method had rendered, the shot and file unnamed, x and y of the --size picture)."""
    from vom_plugin.eval.scores import value_problem
    from vom_plugin.io import existing_frame_path

    _, gt = read_alpha_sequence(gt_pat, frames, role=f"shot {_shot_name(folder)}: ground truth", size=size)
    for i, f in enumerate(frames):
        problem = value_problem(gt[i])
        if problem:
            raise InputError(f"shot {_shot_name(folder)}: ground truth {gt_pat} frame {f} "
                             f"({existing_frame_path(gt_pat, f)}): {problem}")
    return gt


def _shot_roto(folder: Path, first: int, size: tuple[int, int]) -> np.ndarray | None:
    """The roto on the shot's first frame, None when it has none (the GT is coarsened then)."""
    from vom_plugin.io import existing_frame_path, read_roto

    roto_pat = _pattern_in(folder, "roto")
    if roto_pat is not None and existing_frame_path(roto_pat, first).is_file():
        return read_roto(existing_frame_path(roto_pat, first), size)
    return None


def _shot_folders(root: Path) -> list[Path]:
    if _pattern_in(root, "plate") and _pattern_in(root, "gt"):
        return [root]
    # hidden folders are not shots: `vom clips shots` writes each shot into a hidden sibling first, and one
    # left by a killed export must not be scored
    found = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                   and _pattern_in(p, "plate") and _pattern_in(p, "gt"))
    if not found:
        raise InputError(f"{root}: no shot folders (with plate.####.exr and gt.####.exr) found")
    return found


def _frame_files(folder: Path, count: int | None) -> list[Path]:
    """A folder's first ``count`` image files by name (all: None)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_EXTS)[:count]


def _read_alphas(folder: Path, count: int | None) -> list[np.ndarray]:
    """A folder's first ``count`` 8-bit mattes by name, [0, 1]."""
    out = []
    for p in _frame_files(folder, count):
        im = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if im is None:
            raise InputError(f"{p} cannot be read as an image")
        out.append(im.astype(np.float32) / 255.0)
    return out


def _read_plates(folder: Path, count: int | None) -> list[np.ndarray]:
    """A folder's first ``count`` frames by name (all: None), read as ``vom render`` reads a plate (OpenImageIO's
    decoding, code values)."""
    from vom_plugin.io import read_plate

    return [read_plate(p).rgb for p in _frame_files(folder, count)]


def _dvm_clips(root: Path, max_frames: int | None) -> Iterator[EvalClip]:
    if not (root / "v").is_dir() or not (root / "a").is_dir():
        raise InputError(f"dvm:{root}: expected the generated layout v/<clip>/%05d.jpg and a/<clip>/%05d.jpg")
    for clip in sorted(p for p in (root / "v").iterdir() if p.is_dir()):
        rgb = _read_plates(clip, max_frames)
        alpha = _read_alphas(root / "a" / clip.name, max_frames)
        if len(rgb) != len(alpha) or not rgb:
            raise InputError(f"dvm clip {clip.name}: {len(rgb)} composite and {len(alpha)} alpha frames")
        # sRGB code values: what ``vom render`` reads a JPEG plate as (decoded to linear here, a bright clip was
        # brought to the network's exposure, which a render of the same frames never does)
        yield EvalClip(clip.name, np.stack(rgb), np.stack(alpha), list(range(len(rgb))), colorspace="sRGB")


def _vm108_clips(root: Path, max_frames: int | None) -> Iterator[EvalClip]:
    corr_path = root / "frame_corr.json"
    if not corr_path.is_file() or not (root / "FG_done").is_dir():
        raise InputError(f"vm108:{root}: expected FG_done/ and frame_corr.json (VideoMatting108 layout)")
    try:
        corr: dict[str, str] = json.loads(corr_path.read_text())
    except (ValueError, RecursionError) as e:  # (a traceback, as training's reader of the same file does not give)
        raise InputError(f"{corr_path}: not valid JSON ({e})") from None
    if not isinstance(corr, dict):
        raise InputError(f"{corr_path}: expected a JSON object of foreground frame -> background frame")
    clips: dict[str, list[str]] = {}
    for key in sorted(corr):
        clips.setdefault(os.path.dirname(key), []).append(key)
    wanted = None
    if (root / "val_videos.txt").is_file():
        wanted = {line.strip() for line in (root / "val_videos.txt").read_text().splitlines() if line.strip()}
    for clip, keys in clips.items():
        if wanted is not None and clip not in wanted:
            continue
        plates, alphas = [], []
        for key in keys[:max_frames]:
            fg = cv2.imread(str(root / "FG_done" / key), cv2.IMREAD_UNCHANGED)
            bg_path = root / "BG_done" / corr[key]
            if not bg_path.is_file():  # some backgrounds were re-saved as PNG (TCVOM's loader does the same)
                bg_path = bg_path.with_suffix(".png")
            bg = cv2.imread(str(bg_path), cv2.IMREAD_COLOR)
            if fg is None or bg is None or fg.ndim != 3 or fg.shape[2] != 4:
                raise InputError(f"vm108 frame {key}: missing or not RGBA foreground / unreadable background")
            bg = cv2.resize(bg, (fg.shape[1], fg.shape[0]), interpolation=cv2.INTER_AREA)
            a = fg[..., 3].astype(np.float32) / 255.0
            # composite on the 8-bit sRGB values as the dataset's reference loader does (so scores are
            # comparable with published ones); kept as sRGB code values, as a render reads such a frame
            a3 = a[..., None]
            comp = fg[..., 2::-1].astype(np.float32) * a3 + bg[..., ::-1].astype(np.float32) * (1 - a3)
            plates.append(np.floor(comp + 0.5).astype(np.float32) * np.float32(1 / 255))  # as OIIO reads 8 bits
            alphas.append(a)
        yield EvalClip(clip.replace("/", "_"), np.stack(plates), np.stack(alphas), list(range(len(plates))),
                       colorspace="sRGB")


def _synth_clips(n: int, frames: int, size: int) -> Iterator[EvalClip]:
    try:
        from vom_plugin.train.synth import make_clip
    except ImportError as e:  # the generator ships with vom; a broken install is an internal error
        raise RuntimeError(f"synthetic clips need vom_plugin.train.synth: {e}") from e
    for seed in range(n):
        c = make_clip(seed, frames=frames, size=(size, size))
        yield EvalClip(f"synth{seed:03d}", c.plate.astype(np.float32), c.alpha.astype(np.float32),
                       list(range(len(c.alpha))))


def iter_clips(spec: str, *, frames: int | None = None, size: int = 256) -> Iterator[EvalClip]:
    """Clips of a ``--data`` spec (see the module doc). ``frames`` caps each clip's length; ``size`` is the
    synthetic clips' side."""
    kind, sep, arg = spec.partition(":")
    if not sep or not arg:
        raise InputError(f"--data {spec!r}: expected synth:N, shots:PATH, folder:PATH, dvm:PATH or vm108:PATH")
    if kind == "synth":
        try:
            n = int(arg)
        except ValueError:
            n = 0
        if n <= 0:
            raise InputError(f"--data {spec!r}: N must be a positive number of clips")
        yield from _synth_clips(n, frames or 8, size)
        return
    if kind not in ("shots", "folder", "dvm", "vm108"):
        raise InputError(f"--data {spec!r}: unknown kind {kind!r}; expected synth, shots, folder, dvm or vm108")
    root = Path(arg).expanduser()
    if not root.is_dir():
        raise InputError(f"--data {spec!r}: folder {root} does not exist")
    if kind in ("shots", "folder"):
        folders = _shot_folders(root)
        # every shot's files checked before the first is rendered: the first loaded (its ground truth read once), the
        # others' read twice (all of them held at once could be gigabytes)
        first = load_shot(folders[0], max_frames=frames)
        for folder in folders[1:]:
            check_shot(folder, max_frames=frames)
        yield first
        for folder in folders[1:]:
            yield load_shot(folder, max_frames=frames)
    elif kind == "dvm":
        yield from _dvm_clips(root, frames)
    elif kind == "vm108":
        yield from _vm108_clips(root, frames)
