"""Atomic file writes: a file appears whole under its name, or the old one stays; never half a file.

Every writer of vom (frames, weights, checkpoints, job bundles, the gizmo, plots, reports) goes through
``atomic_path``: the data is written to a hidden temporary file in the same folder, flushed to disk, and
renamed over the target (``os.replace``: atomic within a file system); on any error, or an interrupt, the
temporary file is removed and the target is untouched. A process killed outright (SIGKILL, power loss)
cannot clean up; the next atomic write of the same file removes such a temporary when it names this host and
a process that no longer runs here, or another host and was not touched for an hour (``remove_stale_temps``).
Stand-alone copies remain only where vom cannot be imported: ``install.py`` and the Nuke adapter
(``host/nuke.py``, standard library only inside Nuke).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path


def _host_tag() -> str:
    """Who may judge a temporary's writer dead: the host's short name (for people reading a listing) and a
    digest of its full name and PID namespace. A process id means nothing outside its namespace: two containers
    of one farm node, or hosts whose short names match (node01.rackA / node01.rackB), writing to one folder
    would otherwise each take the other's live temporaries for a dead process's."""
    full = socket.gethostname()
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:  # no procfs (macOS, Windows): the host's full name alone
        namespace = ""
    short = re.sub(r"[^A-Za-z0-9_]", "_", full.split(".")[0])[:16] or "host"
    return f"{short}-{hashlib.sha1(f'{full} {namespace}'.encode()).hexdigest()[:8]}"


# The writer's host tag and process id are in every temporary's name, so that a later write can tell a temporary
# left by a dead process of this host (safe to remove) from one a live process, maybe on another farm host
# sharing the folder, is still writing (never touched).
_HOST = _host_tag()
# A temporary's name holds its target's; a long target name is shortened there (its start, a digest, its
# extension) so that the temporary stays within the file system's 255-byte names whenever the target does.
_NAME_KEPT = 150
# Another host's temporary untouched this long is a killed writer's (a frame is written in seconds, and a writer's
# temporary is modified as it is written): removed by the next write, as this host's dead ones are at once.
OTHER_HOST_STALE_S = 3600.0


def _embedded(name: str) -> str:
    raw = os.fsencode(name)  # bytes as the file system stores them (a name need not be UTF-8)
    if len(raw) <= _NAME_KEPT:
        return name
    suffix = Path(name).suffix if len(Path(name).suffix) <= 16 else ""
    cut = _NAME_KEPT - 30
    while cut > 0 and (raw[cut] & 0xC0) == 0x80:  # not inside a UTF-8 character: its half made a name OpenImageIO
        cut -= 1  # refused (a surrogate escape), exit 1 after the frame was computed (QA)
    head = os.fsdecode(raw[:cut])
    return f"{head}~{hashlib.sha1(raw).hexdigest()[:12]}{suffix}"


def temp_name(path: str | os.PathLike[str]) -> Path:
    """A hidden name beside ``path``, unique across hosts, processes and threads, ending in the real extension
    (so writers that choose the format by extension, OpenImageIO, OpenCV, matplotlib, choose the right one)."""
    path = Path(path)
    return path.with_name(f".{_embedded(path.name)}.{_HOST}~{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")


def _running(pid: int) -> bool:
    """Whether process ``pid`` of this host runs; True where that cannot be told (a live writer's temporary is never
    removed). The Blender and Nuke add-on keeps a stdlib copy (host/blender_addon/common.py), tested to agree."""
    if os.name == "nt":  # os.kill(pid, 0) there is TerminateProcess: a live writer would be killed; the system is asked
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
    except OSError:  # exists, owned by someone else
        return True
    try:  # a zombie (a killed worker its vom render has not reaped yet) writes nothing more (QA)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


# .NAME.HOST~PID-HEX.tmpEXT, as temp_name makes it (EXT: NAME's own extension, checked by the caller)
_TEMP = re.compile(r"\.(?P<name>.+)\.(?P<host>[A-Za-z0-9_-]+)~(?P<pid>[0-9]+)-[0-9a-f]{8}\.tmp(?P<ext>(\.[^.]*)?)$")


_EXR_MAGIC = b"\x76\x2f\x31\x01"


def _begun_exr(path: Path) -> bool:
    """Empty, or an EXR's first bytes: what a killed writer of an EXR leaves (a user's file named alike is not)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head in (b"", _EXR_MAGIC)


def _remove_dead(folder: Path, names: list[str], target: str | None, exr_only: bool = False) -> list[Path]:
    """Remove those of ``names`` that are temporaries (of ``target``, or of any file when None; with ``exr_only``,
    of EXRs only, holding nothing or an EXR's beginning) written by a process of this host that no longer runs."""
    removed = []
    now = time.time()
    for name in names:
        m = _TEMP.match(name)
        if m is None or (target is not None and m["name"] != _embedded(target)) or Path(m["name"]).suffix != m["ext"]:
            continue
        if exr_only and (m["ext"].lower() != ".exr" or not _begun_exr(folder / name)):
            continue
        if m["host"] == _HOST:
            if _running(int(m["pid"])):
                continue
        else:  # another host's (a farm task killed there and retried here): dead once untouched for long
            try:
                st = os.lstat(folder / name)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < OTHER_HOST_STALE_S:
                continue
        with contextlib.suppress(OSError):
            (folder / name).unlink()
            removed.append(folder / name)
    return removed


def temporaries_of(folder: str | os.PathLike[str], names: Collection[str]) -> list[Path]:
    """vom's temporaries in ``folder`` of the files named ``names``, whoever wrote them (live or killed, any
    host): what ``vom farm check`` lists beside the frames it checks."""
    wanted = {_embedded(n) for n in names}
    try:
        entries = [e.name for e in os.scandir(folder) if e.name.startswith(".")]
    except OSError:
        return []
    return sorted(Path(folder) / n for n in entries if (m := _TEMP.match(n)) and m["name"] in wanted
                  and Path(m["name"]).suffix == m["ext"])


def remove_stale_temps(path: str | os.PathLike[str]) -> list[Path]:
    """Remove vom's temporaries of ``path`` whose writer was a process of this host that is no longer running
    (killed mid-write), or of another host untouched for OTHER_HOST_STALE_S; those of live processes and other
    hosts' recent ones are left. Returns what was removed."""
    path = Path(path)
    prefix = f".{_embedded(path.name)}."
    try:
        entries = [e.name for e in os.scandir(path.parent) if e.name.startswith(prefix)]
    except OSError:
        return []
    return _remove_dead(path.parent, entries, path.name)


def remove_stale_temps_in(folder: str | os.PathLike[str]) -> list[Path]:
    """``remove_stale_temps`` for every EXR of ``folder`` at once: one listing of the folder. A render sweeps its
    output folder once before its first frame and then writes frames with ``sweep=False``; a listing per frame
    grows with the shot (and costs more on a file server). Only EXR temporaries holding nothing or an EXR's start:
    a user's file of another kind named alike was deleted by its name alone (QA)."""
    folder = Path(folder)
    try:
        entries = [e.name for e in os.scandir(folder) if e.name.startswith(".") and ".tmp" in e.name]
    except OSError:
        return []
    return _remove_dead(folder, entries, None, exr_only=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _keep_mode(target: Path, tmp: Path) -> None:
    """A file replaced keeps its permissions and, where this user may set it, its group (a group-writable frame
    in a show's folder stays group-writable, a private one private); a new file gets the umask's."""
    try:
        st = os.lstat(target)
    except OSError:
        return
    if stat.S_ISREG(st.st_mode):
        with contextlib.suppress(OSError, AttributeError):  # its group first: a 0640 frame of the show's group
            os.chown(tmp, -1, st.st_gid)                    # stays readable by it (where we may set it)
        with contextlib.suppress(OSError):
            os.chmod(tmp, stat.S_IMODE(st.st_mode))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True, sweep: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; on leaving the block it replaces ``path``.

    ``fsync``: the bytes reach the disk before the rename makes them visible (farm file servers, power
    loss); a reader then never sees a named file with missing content. ``sweep``: first remove the stale
    temporaries of ``path`` (``remove_stale_temps``); False where the caller swept the folder already
    (``remove_stale_temps_in``). The temporary file is created by the caller's writer, so it gets the usual
    permissions (umask), not a private 0600 mode; a file replaced keeps its own.
    """
    target = Path(path)
    if sweep:
        remove_stale_temps(target)
    tmp = temp_name(target)
    try:
        yield tmp
        if fsync:
            _fsync(tmp)
        _keep_mode(target, tmp)
        os.replace(tmp, target)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        # the file being written is what to name, not its temporary; a write's own error (a full disk) names none
        if e.filename in (str(tmp), os.fspath(tmp)) or e.filename is None:
            raise OSError(e.errno, e.strerror, str(target)) from e
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_failed(path: str | os.PathLike[str], error: BaseException) -> Exception:
    """The InputError naming ``path`` for a library's write that failed with its own error type (torch's
    ``RuntimeError`` from a full disk, safetensors' ``SafetensorError``): an "internal error" with a traceback, exit
    1, was a full disk (QA). Says the disk's free space where it is low."""
    import shutil

    from vom_plugin.errors import InputError

    first = (str(error).splitlines() or [type(error).__name__])[0][:200]
    folder = Path(path).parent
    try:
        free = shutil.disk_usage(folder).free
        room = f"; the disk holding {folder} has {free / 1e6:.3g} MB free: full?" if free < 2**30 else ""
    except OSError:
        room = ""
    return InputError(f"{path} could not be written ({first}){room}")


def make_folder(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` made as a folder (with its parents) for a command's output; InputError naming ``what`` (the flag)
    when it cannot be: a file in the way, no permission, a read-only or missing mount."""
    from vom_plugin.errors import InputError

    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        from vom_plugin.errors import os_error_text

        why = os_error_text(e)
        with contextlib.suppress(OSError):  # what is in the way, where it can be seen
            for q in (*reversed(p.parents), p):
                if q.is_symlink() and not q.exists():
                    why = f"{q} is a link to {os.readlink(q)}, which does not exist"
                    break
                if q.exists() and not q.is_dir():
                    why = f"{q} is a file"
                    break
        raise InputError(f"{what} {p}: the folder cannot be made ({why})") from None
    return p


def check_replaceable(path: str | os.PathLike[str], ours: Callable[[bytes], bool], what: str,
                      head: int = 4096) -> None:
    """InputError unless ``path`` is free or a regular file that vom wrote (``ours`` of its first ``head`` bytes): a
    command's report, job file or weights must never replace a file of the user's (a plate frame, the shot file
    itself, a note), which an ``--out`` or ``--to`` typo would name."""
    from vom_plugin.errors import InputError

    p = Path(path)
    if not os.path.lexists(p):
        return
    if p.is_symlink() or not p.is_file():
        raise InputError(f"{what} {p}: exists and is not a file vom wrote (a link, a folder or a device); choose "
                         "another path")
    try:
        with open(p, "rb") as f:
            start = f.read(head)
    except OSError as e:
        raise InputError(f"{what} {p}: exists and cannot be read ({e.strerror}); choose another path") from None
    if not ours(start):
        raise InputError(f"{what} {p}: exists and was not written by vom; it is left as it is: choose another path, "
                         "or remove it first")


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> Path:
    with atomic_path(path, fsync=fsync) as tmp, open(tmp, "xb") as f:
        f.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str, *, fsync: bool = True) -> Path:
    """``text`` as UTF-8 at ``path``, atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"), fsync=fsync)


def write_files_atomic(files: Mapping[str | os.PathLike[str], bytes], *, fsync: bool = True) -> None:
    """Several files, none replaced before every one is written and synced: a failed write (a full disk) leaves them
    all as they were (a farm bundle's template beside the parameter values of the bundle before it rendered one
    shot's frames from the other's shot file; QA). Then the renames, which need no space."""
    made: list[tuple[Path, Path]] = []  # (temporary, target)
    try:
        for path, data in files.items():
            target = Path(path)
            remove_stale_temps(target)
            made.append((temp_name(target), target))
            with open(made[-1][0], "xb") as f:
                f.write(data)
            if fsync:
                _fsync(made[-1][0])
            _keep_mode(target, made[-1][0])
        while made:
            tmp, target = made[0]
            os.replace(tmp, target)
            made.pop(0)
    except BaseException as e:
        for tmp, _ in made:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if isinstance(e, OSError) and made:  # the file, not its temporary (a write's own error names none)
            named = {str(tmp): target for tmp, target in made}
            if e.filename is None or str(e.filename) in named:
                raise OSError(e.errno, e.strerror, str(named.get(str(e.filename), made[-1][1]))) from e
        raise
