"""An output never lands on an input: checks made on the files themselves, before anything is written.

Comparing pattern strings is not enough: ``plate.%04d.exr`` and ``plate.####.exr`` name the same files, as
do a symlinked folder, a ``..`` detour, a hard link, or another case on a file system that folds it. So each
output frame's path is compared with every input file twice: by identity (``st_dev``, ``st_ino``), which sees
through links and case folding whenever the output already exists, and by normalised real path (symlinks
and ``..`` resolved, case folded where the platform folds it), which needs no file at all.

A file already at an output path is replaced only when vom wrote it (``replace_problem``), and two outputs
of one render never share a file (``check_distinct``).

Folders are checked without being created (``check_output_folder``): a render refused for any reason
leaves no trace on disk; the renderer creates the folder once every check has passed.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from collections.abc import Collection, Iterable
from pathlib import Path

from vom_plugin.atomic import temp_name
from vom_plugin.errors import InputError
from vom_plugin.io.sequence import frame_path


def identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(device, inode) of ``path``, links followed; None where it is not there. A folder removed and made again is
    another."""
    try:
        st = os.stat(path)  # follows links: a link to the plate is the plate
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.normcase(os.path.realpath(os.path.abspath(os.fspath(path))))


def _place(folder: str | os.PathLike[str]) -> str:
    """A folder as one key however it is reached: its device and inode where it exists (a bind mount, one export
    mounted at two paths: no link for ``realpath`` to resolve, QA), else its real path."""
    ident = identity(folder)
    # an inode of 0 names nothing (some SMB, FUSE and FAT mounts give every file one): the real path then
    return f"\0{ident[0]}:{ident[1]}" if ident is not None and ident[1] else _real(folder)


class ProtectedFiles:
    """The files a render reads (plate frames, rotos, shot file, weights), each with a label for messages."""

    def __init__(self) -> None:
        self._by_id: dict[tuple[int, int], tuple[str, Path]] = {}
        self._by_path: dict[str, tuple[str, Path]] = {}

    def add(self, label: str, path: str | os.PathLike[str]) -> None:
        p = Path(path)
        ident = identity(p)
        if ident is not None:
            self._by_id.setdefault(ident, (label, p))
        self._by_path.setdefault(_real(p), (label, p))

    def add_all(self, label: str, paths: Iterable[str | os.PathLike[str]]) -> None:
        for p in paths:
            self.add(label, p)

    def match(self, path: str | os.PathLike[str]) -> tuple[str, Path] | None:
        """(label, input path) when ``path`` is, or would overwrite, one of the protected files."""
        ident = identity(path)
        if ident is not None and ident in self._by_id:
            return self._by_id[ident]
        return self._by_path.get(_real(path))


def check_outputs(out_pattern: str, frames: Iterable[int], protected: ProtectedFiles,
                  objects: frozenset[str] | None = None, plate: str | None = None) -> None:
    """InputError naming the frame and the file when an output frame is a protected file, a folder, a name too
    long for its file system, or an existing file vom may not replace (``replace_problem``; ``objects``: the
    object layers the render writes into each file, None for one unnamed matte; ``plate``: the render's plate
    pattern, whose sequence vom's mattes there must be of)."""
    name_max = None
    for frame in frames:
        path = frame_path(out_pattern, frame)
        hit = protected.match(path)
        if hit is not None:
            label, source = hit
            raise InputError(f"out {out_pattern!r}: frame {frame} would be written to {path}, which is the {label} "
                             f"{source}; the render would overwrite its own input. Choose another output pattern")
        if name_max is None:
            name_max = _name_max(path)
        name_len, temp_len = len(os.fsencode(path.name)), len(os.fsencode(temp_name(path).name))
        if name_len > name_max:
            raise InputError(f"out {out_pattern!r}: frame {frame}'s file name {path.name!r} is {name_len} bytes; "
                             f"its file system allows {name_max}")
        if temp_len > name_max:
            raise InputError(f"out {out_pattern!r}: frame {frame}'s file name {path.name!r} is {name_len} bytes; "
                             f"with the hidden temporary it is written to first ({temp_len} bytes) it passes the "
                             f"{name_max} its file system allows: shorten it")
        problem = existing_problem(path, frame, objects, plate)
        if problem:
            raise InputError(f"out {out_pattern!r}: frame {frame} {problem}")
    if plate is not None:
        check_not_plate_sequence(out_pattern, plate)


def check_not_plate_sequence(out_pattern: str, plate: str) -> None:
    """InputError where an output pattern names the plate's own sequence with another frame token: another padding
    writes other files among the plate's (plate.-003.exr beside plate.-0003.exr made every later read of the plate
    refuse frame -3 as spelt twice, QA); the same padding is caught file by file (``check_outputs``)."""
    if same_sequence_name(out_pattern, plate):
        raise InputError(f"out {out_pattern!r} names the plate's own sequence {plate} (the same folder and name, "
                         f"another frame token): the render would write its mattes among the plate's files. Choose "
                         f"another output pattern")


def same_sequence_name(a: str, b: str) -> bool:
    """Whether two patterns name one sequence's files but for their frame tokens (plate.%04d.exr, plate.#####.exr):
    the same folder (``_place``) and the same name around the token."""
    from vom_plugin.io.sequence import around_token

    try:
        pa, pb = around_token(a), around_token(b)
    except InputError:  # a pattern of two tokens is refused where it is read
        return False
    if pa is None or pb is None:
        return False

    def split(parts: tuple[str, str]) -> tuple[str, str, str]:
        folder, head = os.path.split(parts[0])
        return _place(folder or "."), os.path.normcase(head), os.path.normcase(parts[1])
    return split(pa) == split(pb)


def existing_problem(path: Path, frame: int, objects: frozenset[str] | None = None,
                     plate: str | None = None, *, anyone: bool = False) -> str | None:
    """Why the file now at an output path must not be replaced (``replace_problem``: what vom did not write, a
    locked file, a folder), as "would replace PATH, which ..."; None where nothing is there or vom may replace it.
    Asked before any work, and again as each frame is written: a file put there while the render ran was replaced,
    a read-only one too, exit 0 (QA)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None  # nothing there yet
    link = ""
    if stat.S_ISLNK(st.st_mode):
        try:
            st = os.stat(path)  # the write replaces the link, never its target; the target says whose it is
        except OSError:
            return None  # a dangling link: replaced, nothing lost
        locked = False
        link = f" (a link to {os.path.realpath(path)})"  # QA: the file refused is the target the link names
    else:
        locked = not st.st_mode & 0o222
    if stat.S_ISDIR(st.st_mode):
        return f"would be written to {path}{link}, which is a folder"
    problem = replace_problem(path, frame, locked=locked, objects=objects, plate=plate, anyone=anyone)
    return f"would replace {path}{link}, {problem}" if problem else None


def check_distinct(patterns: dict[str | None, str], frames: Iterable[int], rendered: Iterable[int] | None = None
                   ) -> None:
    """InputError when two outputs of one render are one file: two frames of a pattern (one without a frame
    token), or two objects' sequences (``m{object}#.exr``: object ``h`` frame 11 and ``h1`` frame 1 are both
    ``mh11.exr``), where the second write would silently replace the first. ``rendered``: the frames this render
    writes, where ``frames`` are more (the plate's): a collision outside them is said to be a later render's."""
    now = None if rendered is None else set(rendered)
    seen: dict[str, tuple[str | None, int]] = {}
    frames = list(frames)
    folders: dict[str, str] = {}  # each folder resolved once (a plate's every frame is checked: 1000s of paths)
    for name, pattern in patterns.items():
        for frame in frames:
            path = frame_path(pattern, frame)
            try:
                link = path.is_symlink()
            except OSError:  # a folder this user cannot look into: refused where the file is checked, with words
                link = False
            if link:
                real = _real(path)
            else:
                parent = str(path.parent)
                if parent not in folders:
                    folders[parent] = _place(parent)
                real = os.path.join(folders[parent], os.path.normcase(path.name))
            first = seen.setdefault(real, (name, frame))
            if first == (name, frame):
                continue
            def what(n: str | None, f: int) -> str:
                return f"frame {f}" if n is None else f"object {n}'s frame {f}"
            later = "" if now is None or {first[1], frame} <= now else \
                " (a plate frame this render does not write: a later render or farm chunk of it would)"
            other = frame_path(patterns[first[0]], first[1])
            if os.path.normpath(other) != os.path.normpath(path):  # two names, one file: a link between their folders
                # (QA: the advice about frame tokens and separators did not apply)
                raise InputError(f"out: {what(*first)} and {what(name, frame)} would both be written to one file: "
                                 f"{other} and {path} are one (a link or a mount between their folders){later}; give "
                                 f"each a folder of its own")
            raise InputError(f"out: {what(*first)} and {what(name, frame)} would both be written to {path}{later}; "
                             f"give each its own file (a frame token such as ####, a separator after {{object}})")


def replace_problem(path: Path, frame: int, *, locked: bool = False, objects: frozenset[str] | None = None,
                    plate: str | None = None, anyone: bool = False) -> str | None:
    """Why the existing file at an output path must not be replaced, or None: vom replaces its own earlier
    outputs of that frame (a re-render after a roto tweak, a farm task run again; with ``plate``, the render's
    plate pattern, those of the same plate sequence, ``same_plate_sequence``) and nothing else. A file it did
    not write (another tool's matte, an artist's roto for another keyframe, a plate of another shot, a matte made
    from a vom output by a tool that kept its metadata) or a ``locked`` one (no write bit for anyone: a published
    frame; renaming over it would succeed even so) is refused before any work. Only the mode bits lock: the
    folder's permission decides a rename, so a 0644 frame of the farm's account in a shared folder is not.
    ``anyone``: only what holds whichever user renders (a farm job made by an artist, rendered by the farm's account,
    which may own a file the artist may neither read nor replace: review)."""
    if locked:
        return "which is read-only; vom does not replace a locked file. Make it writable, or choose another output"
    sticky = None if anyone else _sticky_owner(path)
    if sticky:
        return sticky
    if not os.access(path, os.R_OK):
        if anyone:
            return None
        return "which cannot be read, so vom cannot tell whether it wrote it. Move it away, or choose another output"
    from vom_plugin.io.reader import read_info

    move = "Move the file away (a farm task then renders its frame again), or choose another output pattern"
    try:
        meta = read_info(path).metadata
    except InputError as e:  # a truncated frame of a killed writer elsewhere, or another program's file
        return (f"which does not read as an image ({e}), so vom cannot tell whether it wrote it; vom replaces only "
                f"its own earlier outputs. {move}")
    why = _why_not_vom(meta)
    held = {n for n in str(meta.get("vom:objects") or "").split(",") if n}
    dropped = sorted(held - (objects or set()))
    writes = (f"object{'s' if len(objects) > 1 else ''} {', '.join(sorted(objects))} only" if objects
              else "one unnamed matte")
    if why is None and dropped:  # a file several objects share, rendered again with fewer (or none): their mattes
        # went with the replaced file, exit 0 (QA); a shot file's rotos of the other kind are refused the same way
        return (f"which holds vom's mattes of objects {', '.join(sorted(held))}; this render writes {writes} and "
                f"would drop {', '.join(dropped)}'s: render every object of the file again, or move the files away, "
                f"or choose another output pattern")
    if why is None and not held and objects is not None:  # every vom file of objects says them (vom:objects)
        # one unnamed matte, which a render of named objects replaced with their layers, exit 0 (review)
        return (f"which holds vom's unnamed matte (A); this render writes {writes} and would drop it: move the "
                f"files away, or choose another output pattern")
    stamped = str(meta.get("vom:plate_sequence") or "")
    if (why is None and plate and stamped
            and not same_plate_sequence(stamped, plate, _stamped_folder(meta), path, objects or ())
            and not made_from(meta, plate, frame)):
        # another shot's mattes, of the same frame: a typo'd or pasted output replaced them, exit 0 (QA); a plate
        # delivered again under a new version (v001 -> v002) is the same sequence
        return (f"which is vom's matte of another plate ({stamped_plate(meta)}; this render's is "
                f"{plate_label(plate, meta)}), so probably another shot's: move that sequence's files away (every "
                f"frame of it), or choose another output pattern; if it is this shot's plate under another name, "
                f"move the earlier mattes away")
    if why is None and str(meta.get("vom:frame", frame)) != str(frame):
        # vom's, of another frame (copied or renamed): said as such, not as another program's (QA)
        return (f"which is vom's matte of frame {meta.get('vom:frame')}, not of frame {frame} (copied or renamed?); "
                f"vom replaces only its own earlier output of the same frame. {move}")
    if why is None:
        return None
    return f"which vom did not write ({why}); vom replaces only its own earlier outputs. {move}"


def _stamped_folder(meta: dict) -> str | None:
    return str(meta.get("vom:plate_folder") or "") or None


def stamped_plate(meta: dict) -> str:
    """The plate a matte says it was made from, as a message names it: its whole folder where it says it."""
    stamped = str(meta.get("vom:plate_sequence") or "")
    folder = _stamped_folder(meta)
    return f"{folder.rstrip('/')}/{_folder_and_name(stamped)[1]}" if folder else stamped


def plate_label(plate: str, meta: dict) -> str:
    """This render's plate, named as ``stamped_plate`` names the matte's (a folder beside a folder)."""
    if _stamped_folder(meta):
        return f"{plate_folder_stamp(plate)}/{_folder_and_name(plate)[1]}"
    return plate_sequence_stamp(plate)


def made_from(meta: dict, plate: str, frame: int) -> bool:
    """Whether the matte (its header ``meta``) was made from the very bytes of ``plate``'s frame as it is now: the
    same plate moved or renamed (another server, another folder), whatever the names say. Read only where the names
    say another plate (a refusal's path: one plate frame read)."""
    from vom_plugin.io.sequence import existing_frame_path

    stamp = str(meta.get("vom:plate") or "")
    try:
        path = existing_frame_path(plate, frame)
        if not stamp or not path.is_file():
            return False
        st = os.stat(path)
        return _digest_of(str(path), (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)) == stamp
    except (OSError, ValueError, InputError):
        return False


@functools.lru_cache(maxsize=256)
def _digest_of(path: str, identity: tuple[int, int, int, int]) -> str:
    """``content_digest`` of a file as it is (its identity): a moved plate's first re-render asked it at the start and
    twice more as each frame was written, each a full read of the frame (review)."""
    from vom_plugin.digest import content_digest

    return content_digest(path)


def _folder_and_name(path: str) -> tuple[str, str]:
    """A path's last folder and file name, split at either OS's separator (a Windows workstation's stamp read on a
    Linux farm), in one Unicode form (macOS hands out decomposed names)."""
    import unicodedata

    parts = [x for x in re.split(r"[\\/]", unicodedata.normalize("NFC", str(path))) if x]
    return (parts[-2] if len(parts) > 1 else ""), (parts[-1] if parts else "")


def plate_sequence_stamp(plate: str) -> str:
    """A matte's ``vom:plate_sequence``: its plate pattern's folder and file name (``plates/sh010.####.exr``), not
    the whole path, which a delivered matte need not carry."""
    return "/".join(p for p in _folder_and_name(plate) if p)


def plate_folder_stamp(plate: str) -> str:
    """A matte's ``vom:plate_folder``: its plate pattern's whole folder, links resolved (a "latest" link is the version
    it names), one Unicode form, ``/`` separators: the plate's place, which ``same_shot_folders`` compares."""
    import unicodedata

    return unicodedata.normalize("NFC", os.path.dirname(os.path.realpath(plate))).replace("\\", "/")


# name or folder parts with digits that name no shot: a resolution, a bit depth, a colour space, a camera, an
# element's or a version's number, a number of one or two digits (plate_4k, cam1_plate, bg01, plate_r709: review)
_NOT_A_SHOT_CODE = re.compile(r"v\d+|\d{1,2}|\d+k|\d{3,4}[pi]|\d+x\d+|\d+(?:bit|fps)|(?:r|rec|bt)\d{3,4}|"
                              r"(?:cam|camera|bg|fg|mg|el|elem|element|plate|pl|layer|pass|src|clean)\d{1,2}")


def _shot_code(key: str) -> bool:
    """Whether a normalised name or folder (parts joined by ``_``) holds a part that may be a shot code: digits that
    are none of ``_NOT_A_SHOT_CODE``."""
    return any(re.search(r"\d", part) and not _NOT_A_SHOT_CODE.fullmatch(part) for part in key.split("_"))


def _folder_key(folder: str) -> str:
    k = re.sub(r"(?:^|(?<=[._-]))(?:v|ver|version)\d+(?=$|[._-])", "", folder.lower())  # a version (v002, ver002)
    return re.sub(r"[._-]+", "_", k).strip("_")


def _related(x: str, y: str) -> bool:
    """The same, or one the other with a suffix that starts at a separator (sh010_plate_dn, not shot_10)."""
    return x == y or (bool(x and y) and (x.startswith(y + "_") or y.startswith(x + "_")))


# a delivery's date in a folder's name (20240109, 2024-01-09, vendor_20240109, 20240109_sh010): a re-delivery, as a
# version is; not a year alone, nor digits with one separator (2010, 2000_0110: a sequence's and a shot's numbers)
_DATE = r"(?:19|20)\d{2}(?:(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])|_(?:0[1-9]|1[0-2])_(?:0[1-9]|[12]\d|3[01]))"
_DATE_IN_KEY = re.compile(rf"(?:^|_){_DATE}(?=_|$)")


# the first folders of a path that say where a share is mounted, not what is on it
_MOUNTS = frozenset({"mnt", "volumes", "net", "media", "nfs", "mounts", "shares", "smb", "cifs", "?", "unc"})


def _folders(folder: str) -> list[str]:
    """A folder's keys (``_folder_key``) from the plate upwards, without where it is mounted (/mnt, /Volumes, C:,
    //fs01: a known mount folder, a drive, a UNC server; another first folder, /showA, is the show's and counts:
    review), version folders (v002) and the dates in folder names (20240109_vendor is vendor; a date alone goes)."""
    import unicodedata

    text = unicodedata.normalize("NFC", folder)
    parts = [p for p in re.split(r"[\\/]", text) if p]
    unc = bool(re.match(r"[\\/]{2}[^\\/?]", text))  # //server/share
    while parts and (parts[0].lower() in _MOUNTS or re.fullmatch(r"[A-Za-z]:", parts[0])):
        unc = unc or parts[0].lower() == "unc"  # \\?\UNC\server\share
        wsl = parts[0].lower() == "mnt" and len(parts) > 1 and re.fullmatch(r"[A-Za-z]", parts[1])  # /mnt/c: C:
        parts = parts[2:] if wsl else parts[1:]
    if unc and parts:  # the server
        parts = parts[1:]
    keys = (_DATE_IN_KEY.sub("", _folder_key(p)).strip("_") for p in reversed(parts))
    return [k for k in keys if k]


def same_shot_folders(a: str, b: str) -> bool:
    """Whether two plate folders are one place: the same folders but for version folders and dates (a re-delivery:
    v001/v002, 20240105_vendor/20240109_vendor) and where they are mounted (/mnt/show, //fs01/show, S:/show,
    /mnt/s/show). Anything else is another plate (sh010/sh020, ABC_0100/ABD_0100, left/right, bg/fg, plate/plate_clean,
    dpx/exr, /showA/sh010 and /showB/sh010, and a path of other depth: /mnt/sh010 and /mnt/showB/sh010; heuristics for
    shot codes, then more folders above one path than the other, let one shot's render replace another's mattes in
    one layout after another: reviews), unless its bytes say otherwise (``made_from``)."""
    return _folders(a) == _folders(b)


def _work_folder_name(out_file: str | os.PathLike[str], objects: Collection[str] = ()) -> re.Pattern[str]:
    """The name of the work folder a host keeps beside an Output of this file (``<out name>_vom``: ``hero_vom`` for
    ``hero.0001.exr``; ``object_alpha_vom`` for ``hero_alpha.0001.exr`` of an Output ``{object}_alpha.####.exr``
    writing ``objects`` hero; the host's digest after a name it had to spell otherwise)."""
    import unicodedata

    name = unicodedata.normalize("NFC", os.path.basename(os.fspath(out_file)))  # as the host spells it
    given = re.sub(r"[._-]?-?\d+$", "", os.path.splitext(name)[0]).rstrip("._-")
    names = {given} | {given.replace(o, "object") for o in objects if o and o in given}
    stems = {re.sub(r"[^\w.-]+", "_", g).strip("._-") or "vom" for g in names}
    return re.compile("|".join(rf"(?:{re.escape(st)}(?:-[0-9a-f]{{8}})?_vom)" for st in sorted(stems)))


def _baked_for(folder: str, out_file: str | os.PathLike[str] | None, objects: Collection[str] = ()) -> bool:
    """Whether ``folder`` is the host's work folder of the Output ``out_file`` belongs to, beside it (review: any
    ``_vom`` folder, then any beside the mattes, let another shot's render replace them): named for it, or holding
    the host's shot file of that Output (an older host's spelling, a frame token inside the name, ``{object}``)."""
    if out_file is None:
        return False
    folder = folder.rstrip("/\\").replace("\\", "/")
    out_file = os.fspath(out_file)
    try:
        if not folder.endswith("_vom") or os.path.normcase(os.path.realpath(os.path.dirname(folder))) != \
                os.path.normcase(os.path.realpath(os.path.dirname(out_file))):
            return False
    except ValueError:  # a NUL in a stamp
        return False
    return bool(_work_folder_name(out_file, objects).fullmatch(os.path.basename(folder))) or \
        _shot_file_writes(folder, out_file, objects)


def _shot_file_writes(folder: str, out_file: str, objects: Collection[str]) -> bool:
    """Whether the shot file a host keeps in its work folder ``folder`` names an Output that writes ``out_file``."""
    from vom_plugin import safe_yaml
    from vom_plugin.io.sequence import around_token

    try:
        data = safe_yaml.load_file(os.path.join(folder, "shot.yaml"), "work folder shot file")
        out = str(data["out"]).replace("$$", "$") if isinstance(data, dict) and isinstance(data.get("out"), str) else ""
    except (OSError, InputError, ValueError):
        return False
    name = os.path.basename(out_file)
    for pattern in [out.replace("{object}", o) for o in objects if o] or [out]:
        try:
            parts = around_token(os.path.join(folder, pattern))
        except InputError:
            continue
        if parts is None:
            continue
        head, tail = os.path.basename(parts[0]), parts[1]
        middle = name[len(head):len(name) - len(tail)] if len(name) > len(head) + len(tail) else ""
        try:
            here = os.path.realpath(os.path.dirname(parts[0])) == os.path.realpath(os.path.dirname(out_file))
        except ValueError:
            continue
        if here and name.startswith(head) and name.endswith(tail) and re.fullmatch(r"-?\d+", middle):
            return True
    return False


def same_plate_sequence(stamped: str, plate: str, stamped_folder: str | None = None,
                        out_file: str | os.PathLike[str] | None = None, objects: Collection[str] = ()) -> bool:
    """Whether a matte's ``vom:plate_sequence`` (and ``vom:plate_folder``, ``stamped_folder``) names the sequence of
    ``plate``. With the matte's whole folder: the same name but for case, Unicode normalisation, the frame token's
    spelling (####, %04d, @@@@, $F4), the extension and version numbers (_v001, .v002), in the same place
    (``same_shot_folders``). A matte of vom before it stamped the folder says its last folder and name only: there a
    suffix after a separator is the same plate (sh010_plate_dn; shot_1 and shot_10 are two shots), and a name without
    a shot code is told by that folder. A Source a host baked into the work folder of the Output ``out_file`` belongs
    to (``<Output>_vom/``, beside it) is the same shot as the Read it replaced (an artist's Grade before the node)."""
    (folder_a, name_a), (folder_b, name_b) = _folder_and_name(stamped), _folder_and_name(plate)
    here = plate_folder_stamp(plate)

    def key(name: str) -> str:
        k = name.lower()
        k = re.sub(r"\.[a-z0-9]+$", "", k)  # the extension: a DPX plate converted to EXR is the same
        k = re.sub(r"#+|@+|%0?\d*d|\$f\d*|(?<=[._-])-?\d+$|^-?\d+$", "", k)  # the frame token (or a still's number)
        k = re.sub(r"(?<=[._-])v\d+(?=$|[._-])", "", k)  # versions after a separator (not a shot code v010, bg_v1a)
        return re.sub(r"[._-]+", "_", k).strip("_")

    a, b = key(name_a), key(name_b)
    if stamped_folder:  # the same name (a suffix is another plate beside it: sh010_plate_clean, review) in the same
        # place, a shot code in the name or not (a camera clip's name, A001C003, is two shots' cut from one take)
        same = a == b and same_shot_folders(stamped_folder, here)
    elif not _related(a, b):
        same = False
    else:  # a stamp or pattern without a folder tells nothing (sh010/plate_dn is sh020/plate's no more than
        # sh010/plate is: review)
        same = _shot_code(min(a, b, key=len)) or _related(_folder_key(folder_a), _folder_key(folder_b)) \
            or not (folder_a and folder_b)
    # then a host's baked Source, which only the Output's work folder beside the mattes exempts (review: any _vom
    # folder let any shot's render replace any other's); asked last, as it may read the work folder's shot file
    return same or _baked_for(here, out_file, objects) or (
        _baked_for(stamped_folder, out_file, objects) if stamped_folder
        else out_file is not None and bool(_work_folder_name(out_file, objects).fullmatch(folder_a)))


def _sticky_owner(path: Path) -> str | None:
    """Why another user's file in a sticky folder (a shared drop folder, mode 1777 or 3777) cannot be replaced: only
    its owner, the folder's or root may rename over it, which the first write found out after the frames were
    computed."""
    try:
        folder, st = os.stat(path.parent), os.lstat(path)
    except OSError:
        return None
    me = os.geteuid() if hasattr(os, "geteuid") else 0
    if not folder.st_mode & stat.S_ISVTX or me == 0 or me in (st.st_uid, folder.st_uid):
        return None
    return (f"which belongs to another user (uid {st.st_uid}) in a folder where only a file's owner may replace it "
            f"(sticky, mode {stat.S_IMODE(folder.st_mode):o}). Ask them to move it, or choose another output")


def _name_max(path: Path) -> int:
    """The longest file name (bytes) the file system of ``path``'s folder, or of its nearest existing parent,
    takes; 255 where it cannot be asked."""
    probe = Path(os.path.abspath(path)).parent
    while not probe.is_dir() and probe.parent != probe:
        probe = probe.parent
    try:
        return int(os.pathconf(probe, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def nearest_existing(path: Path) -> Path:
    """``path``, or its nearest parent that exists (a link counts, its target there or not; one that cannot be
    looked at does not): where making ``path`` as a folder would start."""
    probe = path
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent
    return probe


def check_output_folder(out_path: str | os.PathLike[str]) -> Path:
    """The folder of ``out_path`` can be created (or exists) and written; checked without creating anything.

    Returns the folder. InputError names it and the reason otherwise.
    """
    folder = Path(os.path.abspath(os.fspath(out_path))).parent
    probe = nearest_existing(folder)
    if not probe.is_dir():
        what = "is a file" if probe.exists() else "does not exist"
        if probe == folder:
            raise InputError(f"output folder {folder} cannot be created: it {what}")
        raise InputError(f"output folder {folder} cannot be created: {probe} {what}")
    if not os.access(probe, os.W_OK | os.X_OK):
        if probe == folder:
            raise InputError(f"output folder {folder} is not writable")
        raise InputError(f"output folder {folder} cannot be created: {probe} is not writable")
    return folder


def other_objects_files(out: str, token: str, names: Iterable[str],
                        inputs: Iterable[str | os.PathLike[str]] = ()) -> dict[str, list[Path]]:
    """The files of ``out`` (a pattern with ``token``, ``{object}``, in its folder or file name) of objects not in
    ``names``, by object: an earlier render's of an object the shot no longer has, beside its current ones (added
    to them, their mattes summed above 1: QA). Only vom's mattes of that object (the first file of each: written by
    vom, its ``vom:objects`` that object alone: a one-object render's ``sh010_alpha`` or a shared file's
    ``sh010_mattes`` beside ``sh010_{object}`` are no object's, QA), never one of the render's ``inputs`` (a roto
    named like an object's sequence: review)."""
    import glob

    from vom_plugin.io.sequence import _TOKEN

    head, name = os.path.split(out)
    frame = _TOKEN.search(name)
    spans = [name] if frame is None else [name[: frame.start()], name[frame.end():]]
    # a glob of the candidates (each {object} and the frame token any text), then the regex of the whole path:
    # every {object} one name, the first captured and the later ones back-referenced
    name_glob = "*".join(glob.escape(t) for t in spans)
    name_rx = r"-?[0-9]+".join(re.escape(t) for t in spans)
    path_glob = (glob.escape(head + os.sep) if head else "") + name_glob
    path_rx = (re.escape(head + os.sep) if head else "") + name_rx
    pieces = path_rx.split(re.escape(token))
    rx = re.compile(pieces[0] + "".join((r"(?P<object>[A-Za-z_][A-Za-z0-9_]*)" if i == 0 else r"(?P=object)") + p
                                        for i, p in enumerate(pieces[1:])) + r"\Z")
    # a file one of the shot's objects names is theirs (m{object}#.exr: mh21.exr is h's frame 21, not h2's frame 1)
    theirs = [re.compile(re.escape(token).join(pieces).replace(re.escape(token), re.escape(n)) + r"\Z")
              for n in names]
    found: dict[str, list[Path]] = {}
    for path in sorted(glob.glob(path_glob.replace(glob.escape(token), "*"))):
        match = rx.match(path)
        if match and not any(t.match(path) for t in theirs):
            found.setdefault(match.group("object"), []).append(Path(path))
    if not found:
        return found
    skip = {_real(p) for p in inputs}
    return {name: files for name, files in found.items()
            if not any(_real(f) in skip for f in files) and _an_objects_matte(files[0], name)}


def _why_not_vom(meta: dict) -> str | None:
    """Why a file with header ``meta`` is no matte vom wrote, or None."""
    software = str(meta.get("Software", ""))
    if "vom:version" not in meta:
        return "no vom:version attribute"
    if not software.startswith("vom "):
        return f"Software {software!r}: another tool wrote it from a vom output"
    return None


def _an_objects_matte(path: Path, name: str) -> bool:
    """Whether ``path`` is a matte vom wrote of object ``name`` alone (an ``{object}`` sequence's file)."""
    from vom_plugin.io.reader import read_info

    try:
        meta = read_info(path).metadata
    except InputError:
        return False
    return _why_not_vom(meta) is None and str(meta.get("vom:objects", "")) == name
