"""Frame ranges and frame-sequence file patterns (``plate.####.exr``, ``plate.@@@@.exr``, ``plate.%04d.exr``,
``plate.$F4.exr``).

Padding follows Nuke: each ``#`` or ``@`` is one digit, so ``####`` is four digits and frame 12345 still
prints in full. ``$F4`` is Houdini's spelling of ``%04d`` (``$F`` alone: no padding). Frame ranges use
fileseq's grammar (``1001-1100``, ``1001-1100x2``, ``1001,1005,1010-1020``), at most MAX_FRAMES frames:
the count is bounded from the text before a single frame is listed, so ``1-999999999`` costs nothing.
"""

from __future__ import annotations

import glob
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vom_plugin.errors import InputError

# One frame token in a file name: a run of '#', a run of '@', a printf '%d' / '%0Nd', or Houdini's '$F' / '$FN'.
_TOKEN = re.compile(r"#+|@+|%0?([0-9]*)d|\$F([0-9]*)")
# The most frames a range may name: 69 minutes at 24 fps, far beyond any shot, small enough to list.
MAX_FRAMES = 100_000
# A part of a frame range once normalised: a frame, a range, a range with a step (the whole grammar; the hosts'
# adapters hold a stdlib copy, host/blender_addon/common.py, tested to agree).
_RANGE_PART = re.compile(r"\A(-?[0-9]+)(?:-(-?[0-9]+)(?:x([0-9]+))?)?\Z")
# "a-b:s" (Open Job Description's step) -> "a-bxs" (fileseq's)
_STEP_COLON = re.compile(r"(-?[0-9]+--?[0-9]+):([0-9]+)")
# Spaces: inside a part ("1001 - 1100", "1001- 1100", "1-10 x 2") they go; between parts they separate, as in
# Nuke's "1001-1050 1060-1100" (deleting them all read "1 2" as frame 12 and "1-4 6" as 1-46). A dash with a
# space before it and none after starts a negative frame: "-10 -5" is two frames.
_SPACED_DASH = re.compile(r"([0-9])(?:\s+-\s+|-\s*)")
_SPACED_OP = re.compile(r"\s*([,xy:])\s*")
_SPACES = re.compile(r"\s+")


def _normalise_range(text: str, *, steps: bool = True) -> str:
    """``text`` with its parts joined by commas, spaces around operators gone and (``steps``) a ``:`` step as ``x``;
    without ``steps`` its parts as typed, to quote one (QA: '1-4:0' said "'1-4x0' is not a frame")."""
    joined = _SPACES.sub(",", _SPACED_OP.sub(r"\1", _SPACED_DASH.sub(r"\1-", text.strip())))
    return _STEP_COLON.sub(r"\1x\2", joined) if steps else joined
# A file name's frame field: all digits right before the extension, after a '.', '_' or '-' or at the start
# (plate.1001.exr, roto_1001.exr, roto-1001.exr); signed only right after one (printf's roto.-003.exr). A version
# (roto.0003.v2.exr, hero_v2.exr) or digits run into a word (roto3.exr) are no frame field.
_FRAME_FIELD = re.compile(r"(?:\A|(?<=[._-])(?P<sign>-)?)(?P<digits>[0-9]+)\.[^.]+\Z")


def parse_frame_range(text: str) -> list[int]:
    """Frames of a range such as ``1001-1100``, ``1001-1100x2`` or ``1001,1005,1010-1020``: sorted, unique.
    Parts may also be separated by spaces, as Nuke writes them (``1001-1050 1060-1100``).

    ``1001-1100:2`` is a step too, as Open Job Description writes it (a farm task's chunk of a stepped span);
    fileseq reads ``:`` as a staggered order of every frame, which a sorted set of frames would turn into the
    whole range: a task would render frames it was not given.
    Raises InputError naming the text and the accepted forms when it does not parse.
    """
    expected = "expected e.g. 1001-1100, 1001-1100x2 or 1001,1005,1010-1020"
    cleaned = _normalise_range(text or "")
    if not cleaned:
        raise InputError(f"frame range is empty; {expected}")
    parts = _range_parts(text, cleaned, expected)
    count = sum((last - first) // step + 1 for first, last, step in parts)  # from the numbers: nothing listed yet
    if count > MAX_FRAMES:
        raise InputError(f"frame range {text!r} names up to {count} frames; a shot holds at most {MAX_FRAMES} "
                         f"({expected})")
    import fileseq  # here: what else this module holds (format_frames) serves training, which has no fileseq

    try:
        frame_set = fileseq.FrameSet(cleaned)
    except Exception:  # fileseq raises ParseException and friends; the text is what the user needs
        raise InputError(f"frame range {text!r} does not parse; {expected}") from None
    return sorted({int(f) for f in frame_set})  # whole frames: the parts were checked to be integers


def _range_parts(text: str, cleaned: str, expected: str) -> list[tuple[int, int, int]]:
    """The parts of a normalised range as (first, last, step), each checked once: a frame, a range, a range with a
    step of 1 or more. A range written backwards is refused: fileseq reads ``1100-1001`` as those frames counted
    down, which a sorted set of frames turns into ``1001-1100``, so a typo such as ``1001-100`` would name 902
    frames; a shot's frames have no order, so it is taken for the typo it most likely is."""
    parts = []
    typed = list(filter(None, _normalise_range(text, steps=False).split(",")))
    for i, part in enumerate(filter(None, cleaned.split(","))):
        m = _RANGE_PART.match(part)
        if m is None or (m.group(3) is not None and int(m.group(3)) < 1):
            raise InputError(f"frame range {text!r} does not parse ({typed[i]!r} is not a frame, a range or a range "
                             f"with a step of 1 or more); {expected}")
        first, last, step = int(m.group(1)), int(m.group(2) or m.group(1)), int(m.group(3) or 1)
        if last < first:
            raise InputError(f"frame range {text!r}: {m.group(1)}-{m.group(2)} runs backwards; a range goes from "
                             f"its first frame to its last (e.g. {m.group(2)}-{m.group(1)})")
        parts.append((first, last, step))
    if not parts:  # "," alone
        raise InputError(f"frame range {text!r} names no frame; {expected}")
    return parts


def format_frames(frames: Iterable[int], sep: str = ", ", *, stepped: bool = False) -> str:
    """Compact frame numbers as runs: [1003, 1004, 1005, 1010] -> "1003-1005, 1010"; ``stepped``: three or more a
    step apart too, as ``vom render --frames`` reads them ([1001, 1003, 1005] -> "1001-1005x2").

    With ``sep=","`` the result is also a valid Open Job Description / OpenCue range expression (not ``stepped``)
    and a ``vom render --frames`` value.
    """
    ordered = sorted(set(frames))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        step = ordered[i + 1] - ordered[i] if stepped and i + 1 < len(ordered) else 1
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] - ordered[j] == step:
            j += 1
        if step > 1 and j - i < 2:  # two frames a step apart are two frames, not a run
            j = i
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}" + (f"x{step}" if step > 1 else ""))
        i = j + 1
    return sep.join(parts)


def frame_from_path(path: str | os.PathLike[str]) -> int | None:
    """The frame of a single file from its name's frame field (``roto.1001.exr`` -> 1001, ``roto.-003.exr`` -> -3,
    ``roto_v2.exr`` -> None): one rule for a still plate's frame and a roto's."""
    match = _FRAME_FIELD.search(os.path.basename(os.fspath(path)))
    return int((match.group("sign") or "") + match.group("digits")) if match else None


@dataclass(frozen=True)
class _Pattern:
    """A pattern split around its frame token; ``pad`` 0 means a single file with no token."""

    head: str
    tail: str
    pad: int

    @classmethod
    def parse(cls, pattern: str) -> _Pattern:
        name = os.path.basename(pattern)
        tokens = list(_TOKEN.finditer(name))
        if not tokens:
            return cls(pattern, "", 0)
        if len(tokens) > 1:
            raise InputError(
                f"file pattern {pattern!r} has {len(tokens)} frame tokens; expected one (####, @@@@, %04d or $F4)"
            )
        token = tokens[0]
        text = token.group(0)
        if text[0] in "#@":
            pad = len(text)
        else:
            pad = int((token.group(1) if text[0] == "%" else token.group(2)) or 1)
        folder = pattern[: len(pattern) - len(name)]
        return cls(folder + name[: token.start()], name[token.end() :], max(pad, 1))

    def format(self, frame: int) -> str:
        """The file of ``frame`` as printf pads it, the sign inside the width (``%04d``: -002), as Nuke,
        OpenImageIO and Blender name negative frames (vom wrote -0002 before, which they do not read)."""
        if self.pad == 0:
            return self.head
        return f"{self.head}{frame:0{self.pad}d}{self.tail}"

    def existing(self, frame: int) -> str:
        """The file of ``frame`` as it is on disk: a negative frame may also be spelt with its digits padded
        (-0002: what vom wrote until session 32, and some tools' spelling)."""
        path = self.format(frame)
        if frame < 0 and self.pad > 1 and not os.path.exists(path):
            padded = f"{self.head}-{abs(frame):0{self.pad}d}{self.tail}"
            if os.path.exists(padded):
                return padded
        return path

    def spelt_twice(self, frames: list[int]) -> list[tuple[int, str, str]]:
        """The negative frames of ``frames`` whose file is on disk in both spellings (-002 and -0002): which of two
        pictures is the frame is anyone's guess."""
        if self.pad <= 1:
            return []
        out = []
        for f in (f for f in frames if f < 0):
            printf, padded = self.format(f), f"{self.head}-{abs(f):0{self.pad}d}{self.tail}"
            if printf != padded and os.path.exists(printf) and os.path.exists(padded):  # -1000 is one spelling
                out.append((f, printf, padded))
        return out

    def listing(self) -> list[str]:
        """The names in the pattern's folder ([] where it cannot be listed): listed once, read by the others."""
        try:
            return os.listdir(os.path.dirname(self.head) or ".")
        except OSError:
            return []

    def frames_on_disk(self, names: list[str] | None = None) -> list[int]:
        """Frames whose files exist, matched on the exact padding (Nuke: more digits only without leading 0), among
        ``names`` (``listing``'s, listed now when None)."""
        head_name = os.path.basename(self.head)
        rx = re.compile(re.escape(head_name) + r"(-?)([0-9]+)" + re.escape(self.tail) + r"\Z")
        frames = []
        for name in self.listing() if names is None else names:
            match = rx.match(name)
            if not match:
                continue
            digits = match.group(2)
            printf_negative = match.group(1) and len(digits) == self.pad - 1  # -002 for %04d
            if len(digits) == self.pad or printf_negative or (len(digits) > self.pad and not digits.startswith("0")):
                frames.append(int(match.group(1) + digits))
        return sorted(set(frames))  # -002 and -0002 both on disk: one frame


    def _other_paddings(self, names: list[str], own: list[int]) -> dict[int, list[tuple[str, int]]]:
        """The files among ``names`` (``listing``'s) of this pattern's head and tail it does not read (``own``: the
        frames it reads there), by the padding each has: {pad: [(name, frame)]}. A number with a leading zero says its
        padding (its width, printf's sign inside it: -003 is %04d's); one without fits any padding up to its width
        (1001: # to ####) and goes with the shortest."""
        head_name = os.path.basename(self.head)
        rx = re.compile(re.escape(head_name) + r"(-?)([0-9]+)" + re.escape(self.tail) + r"\Z")
        mine = {os.path.basename(self.existing(f)) for f in own}  # not counted for another padding (review)
        by_pad: dict[int, list[tuple[str, int]]] = {}
        free: list[tuple[int, str, int]] = []
        for name in names:
            if (m := rx.match(name)) is not None and name not in mine:
                sign, digits = m.group(1), m.group(2)
                frame, width = int(sign + digits), len(sign) + len(digits)
                if digits.startswith("0") and len(digits) > 1:
                    by_pad.setdefault(width, []).append((name, frame))
                else:
                    free.append((width, name, frame))
        if free:  # as one sequence, padded to its shortest number (1-20: 1; 1001-1100: 4)
            by_pad.setdefault(min(n for n, _, _ in free), []).extend((name, f) for _, name, f in free)
        return by_pad

    def _suggest(self, pattern: str, pad: int, found: list[tuple[str, int]]) -> str:
        """"found N file(s) of D digit(s) instead (e.g. NAME): use PATTERN (padded to D)", the pattern's own style
        of token; "" where its name has no token."""
        name = os.path.basename(pattern)
        token = next(_TOKEN.finditer(name), None)
        if token is None:
            return ""
        text = token.group(0)
        spelt = {"#": "#" * pad, "@": "@" * pad, "%": f"%0{pad}d" if pad > 1 else "%d"}.get(
            text[0], f"$F{pad}" if pad > 1 else "$F")
        suggested = pattern[: len(pattern) - len(name)] + name[: token.start()] + spelt + name[token.end():]
        return (f"found {len(found)} file(s) of {pad} digit(s) instead (e.g. {min(n for n, _ in found)}): use "
                f"{suggested} ({'unpadded' if pad == 1 else f'padded to {pad}'})")

    def padding_hint(self, pattern: str) -> str:
        """Where files of another padding outnumber this pattern's (plate.1.exr ... plate.10.exr for plate.##.exr,
        which finds plate.10.exr alone): "; found N files of D digits ... use PATTERN" (the padding most files
        have), else "" (files of this padding are the most: the frames asked for are simply not among them)."""
        names = self.listing()
        own = self.frames_on_disk(names)
        by_pad = self._other_paddings(names, own)
        if not by_pad:
            return ""
        pad, found = max(by_pad.items(), key=lambda kv: (len(kv[1]), -kv[0]))
        if pad == self.pad or len(found) <= len(own):
            return ""
        said = self._suggest(pattern, pad, found)
        return f"; {said}" if said else ""

    def misnumbered_hint(self, missing: list[int]) -> str:
        """``; frame F is on disk as NAME, padded otherwise ...`` where a missing frame's file is there under another
        padding (plate.002.exr among plate.0001.exr ...: said "missing frame 2" alone, QA), else ""."""
        names = self.listing()
        wanted = set(missing)
        others = sorted((f, name) for found in self._other_paddings(names, self.frames_on_disk(names)).values()
                        for name, f in found if f in wanted)
        if not others:
            return ""
        f, name = others[0]
        frames = len({g for g, _ in others})  # a frame there twice (plate.002 and plate.02) is one (review)
        more = f" (and {frames - 1} more frame{'s' if frames > 2 else ''})" if frames > 1 else ""
        return (f"; frame {f} is on disk as {name}{more}, padded otherwise: name every frame alike (to {self.pad} "
                f"digit{'s' if self.pad > 1 else ''})")

    def case_hint(self) -> str:
        """``; NAME is there, named in another case`` where no file matches but one does with case ignored (p.####.EXR
        over p.0001.exr, QA: "no files match" alone), else ""."""
        folder, head_name = os.path.split(self.head)
        rx = re.compile(re.escape(head_name) + r"-?[0-9]+" + re.escape(self.tail) + r"\Z", re.IGNORECASE)
        try:
            alike = sorted(name for name in os.listdir(folder or ".") if rx.match(name))
        except OSError:
            return ""
        return f"; {os.path.join(folder, alike[0])} is there, named in another case (vom matches names as spelt)" \
            if alike else ""

    def adjoining_hint(self, pattern: str, found: list[int], names: list[str]) -> str:
        """Where a frame just before or after ``found`` (the frames this pattern reads among ``names``, ``listing``'s)
        is on disk in another padding (plate.##.exr on plate.1.exr ... plate.12.exr finds 10-12, with 9 beside them):
        what the shot's frames would miss, said with the padding to use; else ""."""
        if not found:
            return ""
        for pad, files in sorted(self._other_paddings(names, found).items(), key=lambda kv: -len(kv[1])):
            frames = {f for _, f in files}
            # two frames on, not one: a lone stray file of another padding (p.0.exr beside p.0001-0010) is no
            # sequence the pattern cut short (review)
            beside = [f for f, d in ((found[0] - 1, -1), (found[-1] + 1, 1))
                      if f in frames and f + d in frames and f not in found]
            if pad != self.pad and beside:
                said = self._suggest(pattern, pad, files)
                return (f"frame {beside[0]}, beside the frames {format_frames(found)} it reads, is on disk in another "
                        f"padding: {said}, or give the frame range")
        return ""


@dataclass(frozen=True)
class PlateSequence:
    """A file pattern and the frames of it in use. ``path(frame)`` formats the pattern; it checks nothing.

    A pattern without a frame token is a single file (a still) that every frame maps to.
    """

    pattern: str
    frames: list[int] = field(default_factory=list)

    @property
    def is_single_file(self) -> bool:
        return _Pattern.parse(self.pattern).pad == 0

    def path(self, frame: int) -> Path:
        return Path(_Pattern.parse(self.pattern).existing(int(frame)))

    def __iter__(self) -> Iterator[int]:
        return iter(self.frames)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def first(self) -> int:
        return self.frames[0]

    @property
    def last(self) -> int:
        return self.frames[-1]

    def missing(self) -> list[int]:
        """Frames whose file does not exist on disk."""
        return [f for f in self.frames if not self.path(f).is_file()]


def frame_path(pattern: str | os.PathLike[str], frame: int) -> Path:
    """The path of one frame of a pattern (for output patterns, which need not exist yet)."""
    return Path(_Pattern.parse(os.fspath(pattern)).format(int(frame)))


def existing_frame_path(pattern: str | os.PathLike[str], frame: int) -> Path:
    """The file of one frame of an existing sequence, as a render finds it (a negative frame spelt -002 or -0002)."""
    return Path(_Pattern.parse(os.fspath(pattern)).existing(int(frame)))


def check_pattern(pattern: str | os.PathLike[str]) -> None:
    """InputError for a pattern no sequence can be read by (several frame tokens), whatever is on disk."""
    _Pattern.parse(os.fspath(pattern))


def around_token(pattern: str | os.PathLike[str]) -> tuple[str, str] | None:
    """What comes before and after a sequence pattern's frame token (``/p/plate.``, ``.exr``); None for a still.
    InputError for several tokens."""
    parsed = _Pattern.parse(os.fspath(pattern))
    return (parsed.head, parsed.tail) if parsed.pad else None


def is_still(pattern: str | os.PathLike[str]) -> bool:
    """Whether ``pattern`` names one file (no frame token such as ####, %04d, @@@@, $F4) rather than a sequence."""
    return _Pattern.parse(os.fspath(pattern)).pad == 0


def open_sequence(pattern: str | os.PathLike[str], frames: list[int] | None = None, *, role: str = "plate",
                  whole: bool = False) -> PlateSequence:
    """The frames of an existing sequence. ``frames`` None means every frame found on disk; ``whole``: those are
    the shot's frames (no range given), refused where a frame beside them is on disk in another padding.

    Raises InputError when no file matches (naming the ``role``: a caller that says its own passes ""), or listing
    the missing frames by number when the range has holes.
    """
    text = os.fspath(pattern)
    parsed = _Pattern.parse(text)
    if parsed.pad == 0:
        # A single file: a still that stands for every requested frame (or its own frame number).
        if not Path(text).is_file():
            raise InputError(f"plate file {text} {missing_file(Path(text))}")
        own = frame_from_path(text)
        return PlateSequence(text, list(frames) if frames else [own if own is not None else 1])
    if frames is None:
        names = parsed.listing()
        found = parsed.frames_on_disk(names)
        if not found:
            folder = os.path.dirname(text) or "."
            where = ""
            if not os.path.isdir(folder):
                twin = unicode_twin(folder)
                also = (f"; {twin} is there, the same name in another Unicode form (macOS writes names decomposed): "
                        f"write the path as that folder is named") if twin else ""
                where = f" (folder {folder} does not exist{also})"
            # the field named and the path quoted (QA: a trailing space in a folder's name was invisible)
            said = f"{role}: " if role else ""
            hint = parsed.padding_hint(text) or parsed.case_hint()
            raise InputError(f"{said}no files match the sequence pattern '{text}'{where}{hint}")
        _refuse_spelt_twice(text, parsed, found)
        if whole:
            beside = parsed.adjoining_hint(text, found, names)
            if beside:  # the shot would end at the frames of the wrong padding, exit 0 (QA)
                said = f"{role}: " if role else ""
                raise InputError(f"{said}sequence '{text}': {beside}")
        return PlateSequence(text, found)
    if not frames:
        raise InputError(f"sequence {text}: the frame list is empty")
    seq = PlateSequence(text, sorted(set(int(f) for f in frames)))
    missing = seq.missing()
    if missing:
        example = seq.path(missing[0])
        hint = parsed.padding_hint(text) or parsed.misnumbered_hint(missing) or _other_extension_hint(example) \
            or _stepped_hint(seq.frames, missing)
        raise InputError(
            f"sequence {text}: missing frame{'s' if len(missing) > 1 else ''} {format_frames(missing)} "
            f"({len(missing)} of the {len(seq.frames)} requested, e.g. {example}{_link_note(example)}){hint}"
        )
    _refuse_spelt_twice(text, parsed, seq.frames)
    return seq


def _stepped_hint(asked: list[int], missing: list[int]) -> str:
    """``; the plate's frames among them are every 2nd: ask for 1005-1019x2`` where the requested frames on disk are
    exactly every Nth of them (a plate on twos asked for 1005-1019: its even frames were listed as missing alone, QA),
    else ""."""
    import math

    there = sorted(set(asked) - set(missing))
    if len(there) < 3 or len(missing) < 2:  # one frame missing between two is a hole, not a plate on twos
        return ""
    step = math.gcd(*(f - there[0] for f in there[1:]))
    if step < 2 or there != [f for f in asked if (f - there[0]) % step == 0]:
        return ""
    nth = {2: "2nd", 3: "3rd"}.get(step, f"{step}th")
    return f"; the plate's frames among them are every {nth}: ask for frames {there[0]}-{there[-1]}x{step}"


def _other_extension_hint(path: Path) -> str:
    """``; PATH is there, with another extension`` where a missing frame's file is there as another format (frames
    re-delivered as DPX among EXRs were said to be missing, QA), else ""."""
    if not path.suffix or re.fullmatch(r"\.-?\d+", path.suffix):  # no extension: sh010.0002 ends in its frame
        return ""
    try:
        others = sorted(p for p in path.parent.glob(glob.escape(path.stem) + ".*")
                        if p.suffix != path.suffix and not p.name.startswith(path.name) and p.is_file())
    except OSError:
        return ""
    if not others:
        return ""
    if others[0].suffix.lower() == path.suffix.lower():  # the same format, its extension in another case
        return f"; {others[0]} is there, its extension spelt {others[0].suffix}: name every frame alike"
    return f"; {others[0]} is there, with another extension: one sequence is one format"


def padding_hint(pattern: str | os.PathLike[str]) -> str:
    """``; found N file(s) of D digit(s) instead ...: use PATTERN`` where files of another padding than the
    pattern's outnumber its own, else ""."""
    parsed = _Pattern.parse(os.fspath(pattern))
    return parsed.padding_hint(os.fspath(pattern)) if parsed.pad else ""


def _refuse_spelt_twice(text: str, parsed: _Pattern, frames: list[int]) -> None:
    twice = parsed.spelt_twice(frames)
    if twice:
        f, printf, padded = twice[0]
        more = f" (and {len(twice) - 1} more negative frame{'s' if len(twice) > 2 else ''})" if len(twice) > 1 else ""
        raise InputError(f"sequence {text}: frame {f} is on disk twice, as {printf} and {padded}{more} (printf's "
                         f"spelling, and the digits padded, as older vom and some tools write it): which is the frame? "
                         f"Keep one file per frame")


def unicode_twin(path: str | os.PathLike[str]) -> str | None:
    """Where the first missing folder of ``path`` is there under the same name in another Unicode form (``café``
    composed in a shot file, decomposed on a disk a Mac wrote: both print alike, QA), that folder's path; else None."""
    parts = Path(path).parts
    for i in range(1, len(parts)):
        if os.path.exists(os.path.join(*parts[: i + 1])):
            continue
        parent, want = os.path.join(*parts[:i]), unicodedata.normalize("NFC", parts[i])
        try:
            return next((os.path.join(parent, e) for e in os.listdir(parent)
                         if e != parts[i] and unicodedata.normalize("NFC", e) == want), None)
        except OSError:
            return None
    return None


def missing_file(path: Path) -> str:
    """How to say that ``path`` is not there: "does not exist", or, for a link whose target went (a plate folder
    of links into a render's output), "is a link to TARGET, which does not exist"."""
    if path.is_symlink():
        return f"is a link to {os.readlink(path)}, which does not exist"
    return "does not exist"


def _link_note(path: Path) -> str:
    """", a link to TARGET, which does not exist" for a dangling link (listed on disk, yet no frame), else ""."""
    return f", {missing_file(path).removeprefix('is ')}" if path.is_symlink() else ""


def written_list(frames: Iterable[object]) -> str:
    """`` (1,8-12)``: the frames a stopped render wrote, for its message ("" for none); a run on twos, threes...
    as ``1001-1199x2`` (as --frames reads it: a stepped render stopped half-way listed 100 numbers, QA)."""
    done = [f for f in frames if isinstance(f, int)]
    return f" ({format_frames(done, sep=',', stepped=True)})" if done else ""
