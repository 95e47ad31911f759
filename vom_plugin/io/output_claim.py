"""A render's claim on the frames it writes: two renders of one output at once are refused, not interleaved.

A farm task still running the old roto while the artist renders the new one into the same Output left a sequence
of both, frame by frame as each got there first, and both said "done" (QA). Each render now puts a claim in each
of its output folders (``.vom-writing.<host>.<pid>.<token>.json``: its sequence, frames, host, process and what
it renders) and holds an exclusive ``flock`` on it while it runs. A render whose frames meet a claim held by a
living process is refused before any work, naming it; a claim nobody holds (its process killed) is removed.

Farm chunks of one job write other frames of the same sequence, and pass. Locks are advisory and best effort: a
folder whose file system takes no lock, or a claim that cannot be written, leaves the render unclaimed, as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vom_plugin.errors import InputError
from vom_plugin.io.sequence import format_frames, frame_path

PREFIX = ".vom-writing."
SUFFIX = ".json"
STALE_PART_S = 3600.0
# what this process is, as another render's refusal names it: a `vom worker` sets it (QA: "vm process 32426" sent a TD
# hunting for a `vom render` where the worker was writing the frames)
PROCESS_KIND = "process"


def _lock(fd: int, shared: bool = False) -> bool:
    """Whether the lock was taken without waiting; True where the system takes no locks (nothing to tell)."""
    try:
        import fcntl
    except ImportError:  # no flock on this platform: unclaimed
        return True
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a file system without locks (some network mounts): nothing held, nothing to tell
        return True
    return True


def _names(pattern: str, frames: Iterable[int]) -> dict[str, int]:
    """The file names of ``frames`` in ``pattern`` (case folded where the platform folds it) -> frame."""
    return {os.path.normcase(os.path.basename(frame_path(pattern, f))): f for f in frames}


class OutputClaim:
    """The claims of one render, taken by ``take`` and given back by ``release`` (idempotent)."""

    def __init__(self) -> None:
        self.held: list[tuple[Path, int]] = []  # (claim file, its open descriptor holding the lock)

    @classmethod
    def take(cls, patterns: Iterable[str], frames: list[int], what: str) -> OutputClaim:
        """Claim ``frames`` of each of ``patterns`` (their folders exist); InputError naming the render that holds
        any of them. ``what``: how another render names this one (its shot file, or its plate)."""
        claim = cls()
        try:
            for pattern in patterns:
                folder = Path(pattern).parent
                mine = claim._put(folder, {"pattern": os.path.basename(pattern), "frames": format_frames(frames),
                                           "list": sorted(set(frames)), "host": socket.gethostname(),
                                           "pid": os.getpid(), "started": time.time(), "what": what,
                                           "by": PROCESS_KIND})
                _check_others(folder, pattern, frames, mine)
        except BaseException:
            claim.release()
            raise
        return claim

    def _put(self, folder: Path, record: dict[str, Any]) -> Path | None:
        """Write and lock this render's claim in ``folder`` (a complete file under its name, locked before it
        takes it); None where it cannot be written (a folder of someone else's, read-only for us)."""
        name = f"{PREFIX}{record['host']}.{record['pid']}.{secrets.token_hex(4)}{SUFFIX}"
        temp, path = folder / (name + ".part"), folder / name
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError:
            return None
        try:
            with contextlib.suppress(OSError):  # readable whatever the umask: another user's render checks it (a
                os.fchmod(fd, 0o644)  # mount that takes no modes keeps its own)
            os.write(fd, json.dumps(record).encode())
            _lock(fd)
            os.replace(temp, path)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temp)
            return None
        self.held.append((path, fd))
        return path

    def release(self) -> None:
        for path, fd in self.held:
            with contextlib.suppress(OSError):
                os.unlink(path)
            with contextlib.suppress(OSError):
                os.close(fd)  # the lock goes with it
        self.held = []


def _kind(by: object) -> str:
    """How a claim's process is named: ``vom worker`` where it says so, else ``process`` (a claim of an earlier vom,
    or one that says something else, is a process)."""
    return "vom worker" if by == "vom worker" else "process"


def _check_others(folder: Path, pattern: str, frames: list[int], mine: Path | None) -> None:
    """InputError where a living render's claim in ``folder`` holds a file of ``frames`` of ``pattern``; claims
    nobody holds are removed (where we may)."""
    try:
        listed = [n for n in os.listdir(folder) if n.startswith(PREFIX)]
    except OSError:
        return
    names = [n for n in listed if n.endswith(SUFFIX)]
    for n in listed:  # a claim's file a writer killed before it took its name: gone after an hour
        with contextlib.suppress(OSError):
            if n.endswith(SUFFIX + ".part") and time.time() - os.stat(folder / n).st_mtime > STALE_PART_S:
                os.unlink(folder / n)
    wanted = _names(pattern, frames)
    for name in names:
        path = folder / name
        if mine is not None and path == mine:
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # gone meanwhile (released), or not ours to read
            continue
        try:
            if _lock(fd, shared=True):  # nobody holds it: a render that was killed
                with contextlib.suppress(OSError):
                    os.unlink(path)
                continue
            try:
                with os.fdopen(os.dup(fd), "rb") as f:  # whole, however long its frame list
                    record = json.loads(f.read().decode())
                theirs = _names(str(record["pattern"]), record["list"])
            except (ValueError, KeyError, TypeError, OSError, RecursionError):
                continue
            try:  # said only: a start time that is no number does not keep the claim from refusing
                since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(record.get("started") or 0)))
            except (ValueError, TypeError, OverflowError, OSError):
                since = "?"
            both = sorted(f for n, f in wanted.items() if n in theirs)
            if both:
                raise InputError(
                    f"out {pattern}: frame{'s' if len(both) > 1 else ''} {format_frames(both, sep=',')} "
                    f"{'are' if len(both) > 1 else 'is'} being written by another render ({record.get('what')}; "
                    f"{record.get('host')} {_kind(record.get('by'))} {record.get('pid')}, frames "
                    f"{record.get('frames')}, since "
                    f"{since}): two renders of one output at once leave a sequence of both; wait for it to end or "
                    f"stop it, or render to another output")
        finally:
            os.close(fd)
