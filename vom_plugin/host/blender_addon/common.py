"""What the Nuke adapter and the Blender add-on share. Standard library only: both run inside their host's Python.

The add-on folder is copied whole into Blender (``install.py --blender``), which imports this as ``.common``; Nuke
loads its adapter (``host/nuke.py``) from the checkout, which loads this file beside it there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import stat
import subprocess
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

# One frame token in a file name, as vom reads it (io.sequence): '#'s, '@'s, printf's %d / %0Nd, Houdini's $F / $FN.
_TOKEN = re.compile(r"#+|@+|%0?([0-9]*)d|\$F([0-9]*)")


def frame_path(pattern: str, frame: int) -> str:
    """The file of ``frame`` in a vom pattern (``####``, ``@@@@``, ``%04d``, ``$F4``: the padding is the
    minimum; a negative frame as printf pads it, ``-002``), as ``vom_plugin.io.frame_path`` names it."""
    folder, name = os.path.split(pattern)
    m = _TOKEN.search(name)
    if m is None:
        return pattern
    return os.path.join(folder, name[:m.start()] + f"{frame:0{pattern_digits(name)}d}" + name[m.end():])


def work_dir(out: str) -> Path:
    """The folder of a node's shot file, baked rotos and farm bundle: ``<out folder>/<out name>_vom`` (``sh010_alpha``
    for ``sh010_alpha.####.exr``). Named after the Output, not the node: two scripts, .blend files or groups with a
    node of the same name and their own Outputs in one folder shared a shot file (a farm job of one rendered the
    other's shot)."""
    folder, name = os.path.split(out)
    m = _TOKEN.search(name)
    given = (name[:m.start()] if m else os.path.splitext(name)[0]).rstrip("._-")
    given = unicodedata.normalize("NFC", given)  # macOS spells é as e + accent: one folder for both
    new = Path(folder) / f"{_work_stem(given)}_vom"
    # the folders earlier versions named: ASCII only, no digest; then {object} read as "object", no digest (QA:
    # sh010_{object} shared sh010_object's folder). Still used where it is and the new one is not, so an existing
    # script keeps its baked files (and the cache its plate's)
    spelt = given.replace("{object}", "object")
    for old in (Path(folder) / f"{_work_stem(spelt)}_vom",
                Path(folder) / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', spelt).strip('._-') or 'vom'}_vom"):
        if old != new and old.is_dir() and not new.exists():
            theirs = _folder_output(old)
            if theirs is not None and same_files(theirs, out):  # its shot file says it is this Output's
                return old
    return new


def _work_stem(given: str) -> str:
    """A work folder's name for an Output named ``given`` (before its frame token): where characters other than
    letters (of any script), digits, ``.``, ``_``, ``-`` are replaced, a digest of ``given`` is added: "hero matte"
    and "hero_matte", "sh010_{object}" and "sh010_object" must not share a folder."""
    stem = re.sub(r"[^\w.-]+", "_", given.replace("{object}", "object")).strip("._-") or "vom"
    if stem != given:
        stem += "-" + hashlib.sha1(given.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return stem


def _folder_output(folder: Path) -> str | None:
    """The Output a work folder's shot file names (``out:``, as ``shot_yaml`` writes it), else None."""
    try:
        text = (folder / "shot.yaml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        if line.startswith("out: "):
            try:
                value = _read_yaml_string(line[len("out: "):])
            except (ValueError, RecursionError):  # json recurses: [[[...]]] is a RecursionError
                return None
            return value.replace("$$", "$") if isinstance(value, str) else None
    return None


def has_frame_token(pattern: str) -> bool:
    """Whether a file pattern's name holds a frame token (``####``, ``@@@@``, ``%04d``, ``$F4``): a frame sequence,
    not a movie or a single still."""
    return _TOKEN.search(os.path.basename(pattern)) is not None


def frame_tokens(pattern: str) -> int:
    """How many frame tokens a pattern's name holds: vom reads one (a second made the node bake its rotos into
    another Output's work folder before vom refused it, QA)."""
    return len(_TOKEN.findall(os.path.basename(pattern)))


def pattern_digits(pattern: str) -> int:
    """The padding of a vom pattern's frame token: 4 for ``####``, ``@@@@``, ``%04d`` or ``$F4``; 1 without one."""
    m = _TOKEN.search(os.path.basename(pattern))
    if m is None:
        return 1
    return len(m.group(0)) if m.group(0)[0] in "#@" else int(m.group(1) or m.group(2) or 1)


def printf_pattern(pattern: str) -> str:
    """A vom pattern with its frame token spelt ``%0Nd`` (Nuke's Read knows ``####`` and ``%0Nd`` only)."""
    folder, name = os.path.split(pattern)
    m = _TOKEN.search(name)
    if m is None:
        return pattern
    return os.path.join(folder, f"{name[:m.start()]}%0{pattern_digits(pattern)}d{name[m.end():]}")


def subprocess_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the vom subprocess: the host's own Python settings must not leak into vom's Python (a
    host's ``PYTHONHOME`` made it fail to start, "No module named 'encodings'"; a ``PYTHONPATH`` made for the host's
    Python 3.9 or 3.10 would come before vom's own packages)."""
    env = dict(os.environ if base is None else base)
    for name in ("PYTHONHOME", "PYTHONPATH"):
        env.pop(name, None)
    return env


def same_files(a: str, b: str) -> bool:
    """Whether two output patterns (``####``, ``%04d``, ``@@@@``) name the same files."""
    return all(os.path.normpath(frame_path(a, f)) == os.path.normpath(frame_path(b, f)) for f in (1, 1001, 12345))


def writes_over(plate: str, out: str, frames: Iterable[int]) -> int | None:
    """The first of ``frames`` whose output file is the plate's own file (through a link, another padding, a
    case-folding disk: one file either way), None when none is."""
    try:  # another folder (or one not made yet): no file of it is the plate's, and no frame is looked at (a share)
        if not os.path.samefile(os.path.dirname(plate) or ".", os.path.dirname(out) or "."):
            return None
    except OSError:
        return None
    for f in frames:
        with contextlib.suppress(OSError):  # a plate frame that is not there is not written over
            if os.path.samefile(frame_path(plate, f), frame_path(out, f)):
                return f
    return None


def earlier_matte_frames(outs: Sequence[str], rendered: str, frames: Iterable[int]) -> list[int]:
    """Those of ``frames`` (file frames) that ``rendered`` (the render's frame range) left out but whose matte file is
    there in one of ``outs``: an earlier render's, of the roto as it was then, which the host shows as if current."""
    done: set[int] = set()
    for a, b, step in range_numbers(rendered, ValueError):
        done.update(range(a, b + 1, step))
    return [f for f in frames if f not in done and any(os.path.exists(frame_path(o, f)) for o in outs)]


def frames_on_disk(pattern: str) -> list[int]:
    """The frame numbers of ``pattern``'s files in its folder, as vom names them (``frame_path``: the pattern's
    padding, a sign), sorted; [] where the folder cannot be listed."""
    if not has_frame_token(pattern):
        return []
    try:
        names = os.listdir(os.path.dirname(pattern) or ".")
    except OSError:
        return []
    return sorted(f for f in (frame_number(pattern, n) for n in names) if f is not None)


def frame_number(pattern: str, name: str, any_padding: bool = False) -> int | None:
    """The frame whose file name (no folder) ``name`` is in ``pattern``, as vom names it (``frame_path``: the
    pattern's padding, a sign), or with ``any_padding`` as any tool may have (``-0002``, which vom also reads, ``12``);
    None where it is no frame of the pattern's."""
    pname = os.path.basename(pattern)
    m = _TOKEN.search(pname)
    if m is None:
        return None
    f = re.match(re.escape(pname[:m.start()]) + r"(-?[0-9]+)" + re.escape(pname[m.end():]) + r"\Z", name)
    return int(f.group(1)) if f and (any_padding or frame_path(pname, int(f.group(1))) == name) else None


def range_parts(text: str) -> list[str]:
    """The parts of a frame range as vom reads it (``io.sequence``): commas or spaces between parts
    (``1-50 60-100``, as Nuke writes them), spaces inside one dropped (``1 - 50``, ``1-100 x 2``); a dash after a
    space and before a digit starts a negative frame (``-10 -5``)."""
    joined = re.sub(r"\s*([,x:])\s*", r"\1", re.sub(r"([0-9])(?:\s+-\s+|-\s*)", r"\1-", text.strip()))
    return [p for p in re.split(r"[\s,]+", joined) if p] or [""]


# A part of a frame range: a frame, a range, a range with a step (``x`` or ``:``); vom_plugin.io.sequence's
# grammar, tested to agree.
_RANGE_PART = re.compile(r"^(-?[0-9]+)(?:-(-?[0-9]+)(?:[x:]([0-9]+))?)?$")


def range_numbers(text: str, error: type[Exception], what: str = "frames") -> list[tuple[int, int, int]]:
    """The parts of a frame range (``1-100``, ``1-100x2``, ``1,5,10-20``, ``1-50 60-100``) as (first, last, step);
    ``error`` (the host's) names a part that is not a range, has a step under 1 or runs backwards."""
    parts = []
    for part in range_parts(text):
        m = _RANGE_PART.match(part)
        if m is None or (m.group(3) is not None and int(m.group(3)) < 1):
            raise error(f"{what} {text!r}: expected a range such as 1-100, 1-100x2, 1,5,10-20 or 1-50 60-100")
        a, b, step = m.groups()
        if b is not None and int(b) < int(a):
            raise error(f"{what} {text!r}: {a}-{b} ends before it starts")
        parts.append((int(a), int(a if b is None else b), int(step or 1)))
    return parts


def shift_frames(text: str, delta: int, error: type[Exception], what: str = "frames") -> str:
    """A frame range with every frame number moved by ``delta`` (a host's frames -> the plate's file frames)."""
    parts = []
    for a, b, step in range_numbers(text, error, what):
        parts.append(f"{a + delta}" if a == b else f"{a + delta}-{b + delta}" + (f"x{step}" if step > 1 else ""))
    return ",".join(parts)


def frame_bounds(text: str) -> tuple[int, int] | None:
    """First and last frame a range names (the last a step reaches), None where it does not parse."""
    try:
        parts = range_numbers(text, ValueError)
    except ValueError:
        return None
    return min(a for a, _, _ in parts), max(b - (b - a) % step for a, b, step in parts)


def parse_keyframes(text: str, error: type[Exception], example: str, what: str = "keyframes") -> list[int]:
    """A keyframes setting: frame numbers separated by spaces or commas (``example``: the host's own), sorted;
    ``what``: the setting as the host labels it."""
    frames: list[int] = []
    for word in text.replace(",", " ").split():
        try:
            frames.append(int(word))
        except ValueError:
            raise error(f"{what}: {word!r} is not a frame number; expected frames such as {example!r}") from None
    if not frames:
        raise error(f"{what}: empty; enter the frame(s) at which the roto is drawn, e.g. {example.split()[0]!r}")
    return sorted(set(frames))


def shot_fields(knobs: Mapping[str, Any], names: Iterable[str], *, plate: str, frames: str,
                keyframes: Mapping[int, str], out: str,
                objects: Mapping[str, Mapping[int, str]] | None = None) -> dict[str, Any]:
    """Shot fields from a node's settings (``names``: those that are Shot fields) and the resolved inputs (the
    rotos of ``keyframes``, or of each of the ``objects``: {name: {file frame: roto}}); empty optional settings
    are left out, so the defaults of the node definition apply."""
    fields: dict[str, Any] = {"plate": plate, "frames": frames, "out": out}
    if objects:
        fields["objects"] = {n: dict(kf) for n, kf in objects.items()}
    else:
        fields["keyframes"] = dict(keyframes)
    for name in names:
        if name in fields or name in ("keyframes", "objects"):  # resolved above from the inputs
            continue
        value = knobs.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        fields[name] = value.strip() if isinstance(value, str) else value
    return fields


def absolute(path: str) -> str:
    """``path`` made absolute as the system reads it, a ``..`` after a link being the link's target's parent (a stdlib
    copy of ``vom_plugin.engine.shot.absolute``, tested to agree): the Nuke adapter's (a Read's path collapsed as text
    gave vom another folder than the Read loads, QA). Not Blender's, whose nodes collapse a ``..`` as text."""
    if ".." not in Path(path).parts:
        return os.path.abspath(path)
    return os.path.normpath(_walked(os.path.join(os.getcwd(), path), [40]))


def _walked(path: str, hops: list) -> str:
    parts = Path(path).parts
    cur = parts[0]
    for part in parts[1:]:
        if part == "..":
            while hops[0] > 0 and os.path.islink(cur):
                hops[0] -= 1
                try:
                    target = os.readlink(cur)
                except OSError:
                    break
                cur = _walked(os.path.join(os.path.dirname(cur), target), hops)
            cur = os.path.dirname(cur)
        elif part != ".":
            cur = os.path.join(cur, part)
    return cur


def shot_yaml(fields: Mapping[str, Any], header: str) -> str:
    """A shot file, ``header`` its first comment line. JSON strings and numbers are YAML scalars, so no YAML library
    is needed in the host; object names are quoted too (an object named ``on`` or ``null`` stays a name)."""
    def path(p: Any) -> str:  # the host's paths are final: a $ in one is the path's own, not a variable ($$)
        return _yaml_string(str(p).replace("$", "$$"))

    lines = [f"# {header}"]
    for key, value in fields.items():
        if key == "keyframes":
            lines.append("keyframes:")
            lines += [f"  {int(f)}: {path(p)}" for f, p in sorted(value.items())]
        elif key == "objects":
            lines.append("objects:")
            for name, kf in value.items():
                lines.append(f"  {_yaml_string(str(name))}:")
                lines += [f"    {int(f)}: {path(p)}" for f, p in sorted(kf.items())]
        elif key in ("plate", "out", "cache", "model") and isinstance(value, str):
            lines.append(f"{key}: {path(value)}")
        else:
            lines.append(f"{key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def _yaml_string(text: str) -> str:
    """``text`` as a YAML double-quoted scalar: JSON's, a character beyond the BMP as YAML's ``\\U`` escape (JSON's
    surrogate pair, ``\\ud83c\\udfac``, read back as two lone surrogates, and the render failed, exit 1: QA)."""
    def escape(m: re.Match[str]) -> str:  # escapes taken pairwise: an escaped backslash never starts one
        pair = m.group(1)
        if len(pair) == 1:
            return m.group(0)
        high, low = int(pair[1:5], 16), int(pair[7:11], 16)
        return f"\\U{0x10000 + ((high - 0xD800) << 10) + low - 0xDC00:08x}"
    return re.sub(r"\\(ud[89ab][0-9a-f]{2}\\ud[c-f][0-9a-f]{2}|.)", escape, json.dumps(text))


def _read_yaml_string(text: str) -> object:
    """A scalar ``_yaml_string`` wrote, read back: JSON, with YAML's ``\\U`` escape (JSON has none; the Output read
    as none and the work folder changed between two Analyzes, review)."""
    def escape(m: re.Match[str]) -> str:  # pairwise, as above
        if not m.group(1).startswith("U"):
            return m.group(0)
        code = int(m.group(1)[1:], 16) - 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return json.loads(re.sub(r"\\(U[0-9a-fA-F]{8}|.)", escape, text))


def write_text_atomic(path: Path, text: str) -> Path:
    """``path`` holds ``text`` whole or as it was (vom_plugin.atomic's job, which a host's Python cannot import)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """``path`` holds ``data`` whole or as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # a new file (O_EXCL) of a random name: never written through a link or a file left at a predictable name;
    # the umask's permissions for a new file (not mkstemp's private 0600), a replaced file's own
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        with contextlib.suppress(OSError, AttributeError):  # by the descriptor: never a link swapped in at the name
            os.fchmod(fd, stat.S_IMODE(path.stat().st_mode))
        with os.fdopen(fd, "wb") as f:
            fd = -1
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):  # not unlink(missing_ok=True): Nuke 13's Python is 3.7
            tmp.unlink()
    return path


def _identity(path: Path) -> tuple[int, int, int] | None:
    """(inode, mtime, size) of ``path``, None where there is none: a file replaced since has another."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _host_tag() -> str:
    """Who may judge a kept-aside file's process dead (vom_plugin.atomic's tag, which a host's Python cannot import;
    a test keeps the two equal):
    the machine's short name and a digest of its full name and PID namespace; a process id means nothing on another
    machine, or in another container, sharing the work folder."""
    full = socket.gethostname()
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:  # no procfs (macOS, Windows): the machine's full name alone
        namespace = ""
    short = re.sub(r"[^A-Za-z0-9_]", "_", full.split(".")[0])[:16] or "host"
    return f"{short}-{hashlib.sha1(f'{full} {namespace}'.encode()).hexdigest()[:8]}"


_HOST = _host_tag()


def _running(pid: int) -> bool:
    """Whether process ``pid`` of this machine runs; True where that cannot be told (never a live one's files)."""
    if os.name == "nt":  # os.kill(pid, 0) there sends a Ctrl+C: the system is asked instead
        try:
            import ctypes

            kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
            handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
            if not handle:
                return ctypes.get_last_error() != 87  # type: ignore[attr-defined]  # ERROR_INVALID_PARAMETER: none
            try:
                code = ctypes.c_ulong()
                return not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)) or code.value == 259  # STILL_ACTIVE
            finally:
                kernel32.CloseHandle(handle)
        except Exception:
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # there, another user's
        return True
    try:  # a zombie (a killed host its parent has not reaped yet) does nothing more
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


STALE_AFTER_S = 3600.0  # a set-aside file of a dead host's Analyze is removed once this old


class WorkUndo:
    """What a host's Analyze changes in its work folder before vom has read the shot (the folders made, the rotos
    baked for it, the shot file replaced), taken back when vom refuses the render before it starts (a bad path, a
    missing roto: QA found the folders and shot file left behind, and a good render's shot file, which a farm job or
    the next render reads, replaced by the refused one's). The files the hosts bake there are named by ``BAKED``.

    The shot file and rotos there before are kept aside as hard links (a copy where there are none), so that put
    back they are the same files, with their times and modes, which the cache's fingerprints of rotos read (review).
    A baked plate's frames are kept aside only as a bake replaces them (``keep``: a link, else a rename, never a
    plate's worth of copies): a refused Analyze after a change upstream deleted the earlier render's plate, which its
    shot file and a queued farm job read (QA). Only what this Analyze wrote and nobody replaced since is taken back
    (``wrote``): a second host's accepted files stay (review).

    What is kept aside is let go (``discard``) as soon as vom has begun the render (its start event: from then on
    nothing is taken back): kept until vom exited, a linked plate frame held the old plate's blocks for the whole
    render, and a host that crashed left them for good (review). What a process of this machine that no longer runs
    left aside is removed by the next ``WorkUndo`` of the folder; a live one's, or another machine's sharing the
    folder, is never touched."""

    BAKED = re.compile(r"\A(?:plate|roto(?:_.+)?)\.-?[0-9]+\.exr\Z")  # plate.1001.exr, roto_hero.0012.exr
    ROTO = re.compile(r"\Aroto(?:_.+)?\.-?[0-9]+\.exr\Z")
    KEEP = ".{}.{}.vom-undo"  # a file kept aside while the render is not yet accepted: its name, this undo's own
    # KEEP's names, with the token __init__ makes (HOST~PID-HEX)
    KEPT = re.compile(r"\A\.(?P<name>.+)\.(?P<host>[A-Za-z0-9_-]+)~(?P<pid>[0-9]+)-[0-9a-f]{8}\.vom-undo\Z")

    def __init__(self, work: Path) -> None:
        self.work = Path(work)
        self.made: list[Path] = []  # folders made, innermost first
        p = self.work
        while not p.exists() and p.parent != p:
            self.made.append(p)
            p = p.parent
        try:
            names = self._remove_dead(os.listdir(self.work))
        except OSError:
            names = []
        self.before = {n: _identity(self.work / n) for n in names}
        self.written: dict[str, tuple[int, int, int] | None] | None = None
        self.kept: dict[str, Path] = {}
        # two hosts' Analyzes of one Output keep their own (review); the machine and process say whose it is
        self.token = f"{_HOST}~{os.getpid()}-{secrets.token_hex(4)}"
        for name in names:
            if name != "shot.yaml" and not self.ROTO.match(name):
                continue
            aside = self.work / self.KEEP.format(name, self.token)
            try:
                os.link(self.work / name, aside)
            except OSError:  # no hard links here (FAT, some SMB shares): a copy, with its times and mode
                try:
                    shutil.copy2(self.work / name, aside)
                except OSError:
                    continue
            self.kept[name] = aside

    def _remove_dead(self, names: list[str]) -> list[str]:
        """``names`` (the work folder's) less the files kept aside by a process of this machine that no longer
        runs (a host that crashed, or was killed, before its render began or was refused), which are removed; one
        whose file is missing is put back instead (renamed aside, and the host died before the bake's file took its
        place: the only copy)."""
        left = []
        for name in names:
            m = self.KEPT.match(name)
            if (m is not None and m["host"] == _HOST and (m["name"] == "shot.yaml" or self.BAKED.match(m["name"]))
                    and not _running(int(m["pid"]))):
                try:
                    st = os.lstat(self.work / name)
                    # an hour old at least: a host tag two machines share (default-named laptops, cloned images)
                    # would otherwise take a live Analyze's files for a dead one's (review); none waits that long
                    if stat.S_ISREG(st.st_mode) and time.time() - st.st_ctime > STALE_AFTER_S:
                        if os.path.lexists(self.work / m["name"]):
                            os.unlink(self.work / name)
                        elif self.BAKED.match(m["name"]) and not self.ROTO.match(m["name"]):
                            # a plate frame renamed aside, the host dead before the bake's took its place: the only
                            # copy, put back without replacing one made since (a shot file or roto missing is the
                            # user's deletion: those are only ever linked aside)
                            os.link(self.work / name, self.work / m["name"])
                            os.unlink(self.work / name)
                            left.append(m["name"])
                        else:
                            os.unlink(self.work / name)
                        continue
                except OSError:
                    pass
            left.append(name)
        return list(dict.fromkeys(left))

    def keep(self, path: Path) -> None:
        """Keep ``path``, a file of the work folder, aside before a bake replaces it (``os.replace``), unless it is
        kept already. Linked, the file stays where it is until replaced; where there are no hard links it is renamed
        (the bake puts its new file there at once), not copied: a plate's frames are large."""
        path = Path(path)
        if path.parent != self.work or path.name in self.kept or not path.is_file():
            return
        aside = self.work / self.KEEP.format(path.name, self.token)
        try:
            os.link(path, aside)
        except OSError:
            try:
                os.replace(path, aside)
            except OSError:
                return
        self.kept[path.name] = aside

    def wrote(self) -> None:
        """Note what this Analyze wrote (the host's shot file and bakes that are new or replaced since): called once
        they are all written; what changes after is somebody else's."""
        self.written = {}
        try:
            names = os.listdir(self.work)
        except OSError:
            return
        for name in names:
            if name == "shot.yaml" or self.BAKED.match(name):
                ident = _identity(self.work / name)
                if ident != self.before.get(name):
                    self.written[name] = ident

    def undo(self) -> None:
        """Put back what this Analyze changed: the shot file and rotos as they were, no file baked into a new name,
        no folder made (each removed only if empty). A file replaced since by someone else is left."""
        if self.written is None:
            self.wrote()
        for name, ident in (self.written or {}).items():
            path = self.work / name
            if _identity(path) != ident:
                continue
            with contextlib.suppress(OSError):
                if name not in self.kept:
                    path.unlink()
                else:  # (written in place, the same file as the one kept aside: the rename changes nothing)
                    os.replace(self.kept[name], path)
        self._let_go()
        for folder in self.made:
            try:
                folder.rmdir()
            except OSError:  # not empty (another render's files meanwhile), or not ours to remove
                break

    def discard(self) -> None:
        """The render was accepted (vom began it, or vom farm wrote the job): the files kept aside are let go, and
        nothing is taken back after (an undo then removed the accepted render's shot file and bakes, with nothing kept
        to put back)."""
        self._let_go()
        self.written = {}
        self.made = []

    def _let_go(self) -> None:
        for aside in self.kept.values():
            with contextlib.suppress(OSError):
                aside.unlink()
        self.kept = {}


def roto_names(named: Iterable[tuple[str, str]]) -> dict[str, str]:
    """{roto file: what the artist knows it as} from (file, name) pairs: one file may be several objects' roto, named
    after each (review: named after the last only)."""
    said: dict[str, list[str]] = {}
    for path, what in named:
        said.setdefault(str(path), []).append(what)
    return {path: " and ".join(whats) for path, whats in said.items()}


def name_rotos(text: str, sources: Mapping[str, str]) -> str:
    """vom's words with each roto file it names followed by what the artist knows it as (``sources``: path ->
    "the Mask 'hero' at scene frame 12"): the hosts bake rotos into files the artist never chose. Once a line: an
    OpenImageIO error repeats the path it names. vom's own ``(frame N)`` after the file gives way to those words,
    which name the frame as the host shows it (QA: "roto.0001.exr (the Image node 'Roto' at scene frame 1) (frame 1)
    does not exist")."""
    lines = text.split("\n")
    for path, what in sources.items():
        rule = re.compile(re.escape(path) + r"(?: \((?:key)?frame -?[0-9]+\))?")
        said = f"{path} ({what})".replace("\\", "\\\\")  # a template: a Windows path's backslashes as they are
        lines = [rule.sub(said, line, count=1) for line in lines]
    return "\n".join(lines)


# "frame 12", "frames 3-5", "keyframe 1001" in vom's words: the plate's file frames (a host's own "scene frame 12" or
# "script frames 1001-1010" are not)
_FILE_FRAMES = re.compile(r"(?<!scene )(?<!script )\b(?:key)?frames? -?\d", re.IGNORECASE)


def names_frames(text: str) -> bool:
    """Whether vom's words name a frame by its number: where a host shows the plate's file frames at other frames, a
    note of how the two numberings meet belongs beside those words, not beside a warning of a cache turned off."""
    return bool(_FILE_FRAMES.search(text))


# vom's advice on a cache it cannot use, in command-line terms, as its messages end
_CACHE_ADVICE = ("pass --cache DIR (or set VOM_CACHE_DIR) to a writable folder", "pass --cache DIR on another disk")


# words after a flag that are not its value: "lower --working-size or free the GPU"
_NOT_A_VALUE = r"(?:or|and|to|on|in|of|for|with|instead)\b"


def flag_labels(table: Mapping[str, Any]) -> dict[str, str]:
    """{`vom render` flag: the knob's label} from the knob table (``load_knob_table``; both from node_defs/). A flag
    of several knobs (``--roto``: Keyframes and Objects) names neither alone: left out."""
    labels: dict[str, list[str]] = {}
    for row in table["knobs"]:
        if row.get("flag"):
            labels.setdefault(str(row["flag"]), []).append(str(row.get("label") or row["name"]))
    return {flag: said[0] for flag, said in labels.items() if len(said) == 1}


def in_node_terms(text: str, colour: str | None, cache: str, table: Mapping[str, Any] | None = None) -> str:
    """vom's words (a warning, a failure) with its command-line advice in the node's terms (QA: "set colorspace ACEScg"
    where the node's colour came from the host's Read, "pass --cache DIR", "use --device cpu" inside a host):
    ``colour``, how to set the colour space there (None: the knob the advice names is the node's own), ``cache``, how
    to choose another cache folder. Each flag of a knob is named by the knob's label (``table``, the knob table:
    ``load_knob_table``'s by default), "use --device cpu" read as "set Device to cpu"; a field at the start of a line
    ("out '/x.####.exr': ...", "error: device 'cuda': ...", after the node's own shot file, which vom names and the
    node took back) by its label too. vom's other words are kept, and so is a crash's traceback (what a bug report
    pastes). Never raises: a dialog that failed here would lose vom's words (review)."""
    if any(line.startswith("Traceback (most recent call last):") for line in text.splitlines()):
        return text
    try:
        return _in_node_terms(text, colour, cache, load_knob_table() if table is None else table)
    except Exception:  # (a knob table that cannot be read, an unforeseen text): vom's own words
        return text


def _in_node_terms(text: str, colour: str | None, cache: str, table: Mapping[str, Any]) -> str:
    if colour and "set colorspace" in text:
        text = f"{text} (here: {colour})"
    for advice in _CACHE_ADVICE:
        text = text.replace(advice, cache)
    labels = flag_labels(table)
    if "--cache" in labels:  # the other ways vom's messages ask for another cache folder
        text = text.replace("pass --cache DIR (or set VOM_CACHE_DIR) ", f"set {labels['--cache']} ")
        text = text.replace("pass another --cache", f"set another {labels['--cache']}")
    if labels:
        def flag(m: re.Match[str]) -> str:
            label = labels[m.group(2)]
            if m.group(1):
                return f"set {label}" + (" to " if m.group(3) else "")
            return label + (m.group(3) or "")

        flags = "|".join(re.escape(f) for f in sorted(labels, key=len, reverse=True))
        # not inside a path or a quoted name: '/shows/--out/p.exr' is a folder of that name (review)
        text = re.sub(rf"(?:\b(use|pass|give) )?(?<![\w/\\.'\"-])({flags})(?![\w/\\-])"
                      rf"( (?!{_NOT_A_VALUE})(?=[^\s(]))?", flag, text)
    # the node's own shot file, which a refusal names before the field: the node wrote it and took it back
    text = re.sub(r"(?m)^((?:vom [a-z]+: )?(?:error: )?)shot file '[^'\n]*': ", r"\1", text)
    fields = {str(row["name"]): str(row.get("label") or row["name"]) for row in table["knobs"]}
    names = "|".join(re.escape(n) for n in sorted(fields, key=len, reverse=True))
    return re.sub(rf"(?m)^((?:vom [a-z]+: )?(?:error: )?)({names})(?= ['\"])",
                  lambda m: m.group(1) + fields[m.group(2)], text)


def worker_note(output_tail: Iterable[str]) -> list[str]:
    """Why a render did not run in a vom worker, from vom's stderr (which the nodes show only on failure): a running
    worker that did not take it, or one that could not be started (a shared socket folder, a file at the socket's
    path), so that every Analyze loading torch again is said (QA); the first such line, without its prefix."""
    for line in output_tail:
        if line.startswith("vom render: ") and ("rendering in this process" in line
                                                 or "rendering the rest in this process" in line):
            return [line[len("vom render: "):]]
    return []


def refused_before_start(returncode: int | None, started: bool, cancelled: bool, written: Sequence[int] = ()
                         ) -> bool:
    """Whether a vom render ended without starting: vom read the shot and refused it (exit 2), or was cancelled
    before any work, so what the host wrote for it is taken back (``WorkUndo``). An internal error (exit 1) keeps
    them: the command the host shows reproduces it."""
    return not started and not written and (cancelled or returncode == 2)


def exr_header(data: bytes) -> tuple[dict[bytes, tuple[bytes, bytes]], int] | None:
    """An EXR file's header attributes ({name: (type, value)}) and where its header ends, else None."""
    if data[:4] != b"\x76\x2f\x31\x01":
        return None
    attrs: dict[bytes, tuple[bytes, bytes]] = {}
    pos = 8
    while pos < len(data):
        end = data.find(b"\0", pos)
        if end < 0:
            return None
        if end == pos:  # the empty name that ends the header
            return attrs, pos + 1
        kind_end = data.find(b"\0", end + 1)
        if kind_end < 0 or kind_end + 5 > len(data):
            return None
        size = int.from_bytes(data[kind_end + 1:kind_end + 5], "little", signed=True)
        start = kind_end + 5
        if size < 0 or start + size > len(data):  # damaged: never loop back or read past the end
            return None
        attrs[data[pos:end]] = (data[end + 1:kind_end], data[start:start + size])
        pos = start + size
    return None


def same_picture(a: Path, b: Path) -> bool:
    """The same picture: equal files, or EXRs equal but for the values of text attributes (a render's time
    stamp, Nuke's node hash); windows, channels, compression and every pixel byte must be equal."""
    x, y = a.read_bytes(), b.read_bytes()
    if len(x) != len(y):
        return False
    hx, hy = exr_header(x), exr_header(y)
    if hx is None or hy is None or hx[1] != hy[1] or hx[0].keys() != hy[0].keys():
        return x == y
    if any(kind != b"string" and (kind, value) != hy[0][name] for name, (kind, value) in hx[0].items()):
        return False
    return x[hx[1]:] == y[hy[1]:]


def keep_unless_changed(new: Path, path: Path, undo: WorkUndo | None = None) -> None:
    """Move the freshly rendered ``new`` to ``path``, or drop it where ``path`` holds the same picture: a file
    written again gets a new modification time, which vom's cache takes for another plate (every frame encoded
    again) or another roto (every step computed again). ``undo``: the file replaced is kept aside there first."""
    if path.is_file() and same_picture(new, path):
        new.unlink()
    else:
        if undo is not None:
            undo.keep(path)
        os.replace(new, path)


# vom_plugin.grammar's rule for an object's name (its EXR layer), tested to agree: checked here so that the artist
# hears of a bad name before a roto is baked.
_OBJECT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
RESERVED_LAYERS = frozenset({"rgba", "rgb", "alpha", "depth", "motion", "forward", "backward", "a", "r", "g", "b"})


def parse_objects(text: str, parse_keyframes: Callable[[str], list[int]], error: type[Exception],
                  example: str, what: str = "objects") -> dict[str, list[int]]:
    """The ``objects`` setting of a host: one object a line (or ``;``-separated part: Blender's text fields hold
    one line), its name then the frames at which it is drawn, e.g. ``hero 1001 1050`` and ``dog 1040``; {} when
    empty. ``parse_keyframes`` reads the frames and raises ``error``, which is raised here too."""
    out: dict[str, list[int]] = {}
    for n, line in enumerate(re.split(r"[\n;]", text), start=1):
        words = line.replace(",", " ").split()
        if not words:
            continue
        name = words[0]
        if not _OBJECT_NAME.match(name):
            raise error(f"{what}, line {n}: {name!r} is not a layer name (letters, digits, _); expected e.g. "
                        f"{example!r}")
        if name.lower() in RESERVED_LAYERS:
            raise error(f"{what}, line {n}: {name!r} is a layer the comp already uses "
                        f"({', '.join(sorted(RESERVED_LAYERS))}); choose another name")
        if name.lower() in {o.lower() for o in out}:
            raise error(f"{what}, line {n}: {name!r} is given twice")
        try:
            out[name] = parse_keyframes(" ".join(words[1:]))
        except error as e:
            raise error(f"{what}, line {n} ({name}): {e}") from None
    return out


# vom_plugin.grammar's rules for the settings an artist types (the ``grammar`` of a knob in node_def.json), tested to
# agree: checked before anything is baked (the Nuke node baked every frame of the Source, then vom refused a typo)
_GRAMMARS = {
    "channel": (re.compile(r"\A(?:[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*\.)?A\Z", re.ASCII),
                "expected a channel name A or <layer>.A (e.g. vom.A)"),
    "memory": (re.compile(r"\A(?:first\+)?(?:prev|every-)0*[1-9][0-9]*\Z", re.ASCII),
               "expected first+prevK, prevK, every-N or first+every-N (K, N from 1; e.g. first+prev2, every-5)"),
    "device": (re.compile(r"\A(?:auto|cpu|cuda(?::(?:0|[1-9][0-9]?))?)\Z", re.ASCII),
               "expected auto, cpu, cuda or cuda:N"),
    "mask_channel": (re.compile(r"\A[A-Za-z_][A-Za-z0-9_]{0,63}\Z"),
                     "expected a channel name such as mask (letters, digits, _)"),
}
_CASE_FREE = ("memory", "device")  # read in lower case
MASK_REFUSED = frozenset({"a", "r", "g", "b", "alpha", "red", "green", "blue"})  # the alpha's, the plate's


def setting_problem(knob: Mapping[str, Any], value: Any) -> str | None:
    """What vom would refuse in ``value`` of the setting ``knob`` (a row of ``node_def.json``), as "<Label> <value>:
    expected ...", None when vom takes it. A blank value is the setting's default, which vom takes; a string is read
    stripped, as ``shot_fields`` writes it."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    value = value.strip() if isinstance(value, str) else value
    said = "{} {!r}".format(knob.get("label") or knob["name"], value)
    grammar = knob.get("grammar") or ""
    if grammar in _GRAMMARS:
        rule, expected = _GRAMMARS[grammar]
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
        text = text.lower() if text is not None and grammar in _CASE_FREE else text
        if text is None or not rule.match(text):
            return f"{said}: {expected}"
        if grammar == "mask_channel" and text.lower() in MASK_REFUSED:
            return (f"{said}: that is the alpha's or the plate's channel (hero.alpha is read as hero.A, hero.red as "
                    "hero.R); expected another name such as mask")
        return None
    if knob["type"] == "int" and knob.get("range"):
        lo, hi = knob["range"]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            return f"{said}: expected a whole number from {lo:g} to {hi:g}"
    if knob["type"] == "enum" and knob.get("choices") and value not in knob["choices"]:
        return "{}: expected one of {}".format(said, ", ".join(knob["choices"]))
    return None


def settings_problem(table: Mapping[str, Any], values: Mapping[str, Any]) -> str | None:
    """The first of ``values`` (setting name -> value) that vom would refuse, by the knob ``table``
    (``load_knob_table``), as ``setting_problem`` says it; None where vom takes them all."""
    for row in table["knobs"]:
        problem = setting_problem(row, values[row["name"]]) if row["name"] in values else None
        if problem:
            return problem
    return None


# vom_plugin.locations.MODEL_ALIASES, tested to agree: any other Model is a weights file's path
SHIPPED_MODELS = ("default", "lite", "full")


def model_problem(typed: str, path: str) -> str | None:
    """What is wrong with a Model setting ``typed`` that names no shipped model: its file (``path``, made absolute as
    the host reads paths) must be there. vom read such a name from the host's hidden work folder, and said a weights
    file there did not exist, after the bake. None where the file is (vom checks what it holds)."""
    if typed in SHIPPED_MODELS or os.path.isfile(path):
        return None
    case = f" (the shipped names are lower case: {typed.lower()!r})" if typed.lower() in SHIPPED_MODELS else ""
    return (f"Model {typed!r}: no shipped model has that name ({', '.join(SHIPPED_MODELS)}){case}, and no weights "
            f"file is at {path}")


def load_knob_table(path: Path | None = None) -> dict[str, Any]:
    """The node's knob table (``node_def.json`` beside this file, generated from node_defs/vom_matte.yaml)."""
    with open(path or Path(__file__).resolve().with_name("node_def.json"), encoding="utf-8") as f:
        return dict(json.load(f))


def cache_off(start: Mapping[str, Any]) -> str:
    """Why the render of this start event runs without the cache, or without writing to it ("" where it uses it): one
    stopped before its end then resumes from nothing of its own, which a cancel's message must not promise otherwise."""
    if start.get("event") == "start" and start.get("cache_read_only"):  # read, not written: nothing of it is kept
        return f"it was read, not written: {start['cache_read_only']}"
    if start.get("event") != "start" or "cache" not in start or start.get("cache") is not None:
        return ""
    why = str(start.get("cache_off") or "")
    # vom's warning begins "rendering without the cache: ": the reason alone (said after "ran without the cache")
    return why.split(": ", 1)[1] if why.startswith("rendering without the cache: ") else why or "no reason given"


def percent(raw: Mapping[str, Any], done: int | None, total: int | None) -> int | None:
    """A progress event's share of the render: its steps' when it has them (frames come in bursts between two
    keyframes), else its frames' (``done`` of ``total``)."""
    steps, steps_total = raw.get("steps_done"), raw.get("steps_total")
    if isinstance(steps, int) and isinstance(steps_total, int) and steps_total > 0:
        # the last steps end before their frames are written: 100 only once every frame is on disk (a step event
        # has no frame counts: it took the bar to 100, and the frames after it back to 99: QA)
        finished = raw.get("event") == "done" or (isinstance(done, int) and isinstance(total, int) and done >= total)
        top = 100 if finished else 99
        return max(0, min(top, int(100 * steps / steps_total)))
    if done is None or not total:
        return None
    return max(0, min(100, int(100 * done / total)))


class StepClock:
    """Time left from the steps a render reports (``step`` and ``frame`` events): measured over the computed steps
    since the first one seen (steps read back from the cache cost next to nothing)."""

    def __init__(self) -> None:
        self.first: tuple[float, int] | None = None  # (time, computed steps) at the first computed step
        self.work: tuple[int, int, int] | None = None  # (computed, done, total) steps

    def update(self, raw: Mapping[str, Any]) -> bool:
        """Take an event's step counts; False when it has none (an event of a vom without them)."""
        done, total = raw.get("steps_done"), raw.get("steps_total")
        if not isinstance(done, int) or not isinstance(total, int):
            return False
        computed = done - int(raw.get("steps_cached") or 0)
        if self.first is None and computed > 0:
            self.first = (time.monotonic(), computed)
        self.work = (computed, done, total)
        return True

    def left(self) -> float | None:
        """Seconds left, or None before the second computed step."""
        if self.first is None or self.work is None:
            return None
        computed, done, total = self.work
        if computed <= self.first[1]:
            return None
        return (time.monotonic() - self.first[0]) / (computed - self.first[1]) * max(total - done, 0)


def frame_ranges(frames: Iterable[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3,5"``: a list of frames as a frame range (``io.sequence.format_frames`` with
    ``sep=","``, which the hosts cannot import: they run on the standard library and their own modules alone)."""
    parts: list[str] = []
    ordered = sorted(set(frames))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def start_read(cmd: Sequence[str], env: Mapping[str, str] | None
               ) -> tuple[subprocess.Popen[str], deque[tuple[str, str]], list[threading.Thread]]:
    """``cmd`` (a ``vom render --progress json``) started with its output and errors read line by line on two threads
    into a queue of (``"out"`` or ``"err"``, line), which the host polls without blocking on a pipe: (the process,
    the queue, the reader threads). A byte that is not UTF-8 is replaced: one (a C library printing a Latin-1 file
    name) killed a reader, the pipe filled, and vom and the host waited on each other until a Cancel (QA)."""
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                            errors="replace", env=dict(env) if env is not None else None)
    lines: deque[tuple[str, str]] = deque()
    readers = [threading.Thread(target=_pump, args=(stream, lines, tag), daemon=True)
               for stream, tag in ((proc.stdout, "out"), (proc.stderr, "err"))]
    for t in readers:
        t.start()
    return proc, lines, readers


def _pump(stream: Any, sink: deque[tuple[str, str]], tag: str) -> None:
    for line in iter(stream.readline, ""):
        sink.append((tag, line.rstrip("\n")))
    stream.close()

