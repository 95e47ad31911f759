"""The persistent per-shot cache: key features and memory-bank states on disk, safe for many processes.

Layout under a cache root (``Shot.cache`` or the user cache)::

    <root>/.vom-cache.lock              one lock for writers, eviction and clearing
    <root>/<shot-id>/shot.json          what the folder belongs to (for ``vom cache info``)
    <root>/<shot-id>/keys/<frame>.<digest>.safetensors      key-encoder features of one plate frame
    <root>/<shot-id>/steps/<digest>.alpha.safetensors       one pass's prediction at one frame
    <root>/<shot-id>/steps/<digest>.state.safetensors       the memory bank after that frame
    <root>/<shot-id>/steps/<digest>.affinity.safetensors    that step's key-only memory read matches

Entries are addressed by digests of everything that influences them (the runner computes them), so a
change of plate, roto, model or setting simply addresses other entries; stale ones age out by LRU
(file mtime is the use time: every hit touches its file). Affinities are addressed without the roto: they
depend on the pixels, the model and the settings only, so a render whose roto alone changed reuses them.
Writes go to a unique temporary name and are ``os.replace``d, so a reader never sees half a file even if
the writer is killed; a reader that loses a race with eviction sees a miss.

What may go wrong with a cache only ever costs time (DESIGN, Safety):
- each entry is verified on read (``cache_entry``: a digest of its address and tensors); a bad one is
  deleted and is a miss, so the runner recomputes it;
- vom touches only what it wrote: a shot folder is vom's when it is named like one and holds vom's
  ``shot.json`` for it; a file is an entry when it is named like one and carries vom's marker. Eviction and
  ``clear`` delete nothing else, and no link below the root is followed;
- a cache that cannot be used raises ``CacheUnavailable`` from ``prepare`` and the runner renders without it;
  one that holds the shot's folder and cannot be written (read-only, its disk below VOM_CACHE_MIN_FREE_GB) is read,
  not written (``read_only`` says why).
Tensors are stored with safetensors (no pickle).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vom_plugin.engine.cache_entry import (
    BadEntry,
    OtherKey,
    decode,
    encode,
    file_is_marked,
    signed_by_another_key,
)
from vom_plugin.engine.lockfile import open_lock as _open_lock
from vom_plugin.engine.lockfile import share_fd as _share_fd
from vom_plugin.engine.lockfile import still_at as _still_at
from vom_plugin.errors import InputError, VomError

LOCK_NAME = ".vom-cache.lock"
# made at a store's first write since its last eviction and removed by an eviction: a render that ended without
# one (stopped, failed, killed) leaves it, and the next render evicts even where it writes nothing itself (renders
# that write nothing, after an eviction, skip the scan)
DIRTY_NAME = ".vom-cache.dirty"
_LOCK_TEMP = re.compile(r"\A\.vom-cache\.lock\.[0-9a-f]{32}\.tmp\Z")
SHOT_MARKER = "shot.json"
SHOT_FORMAT = "vom-cache-shot-1"
DEFAULT_MIN_FREE_BYTES = 2**30  # left free on the cache's disk (VOM_CACHE_MIN_FREE_GB)
DEFAULT_MAX_BYTES = 20 * 2**30
_LOCK_TIMEOUT_S = 120.0
# What vom writes, by name. A file is an entry only if its name matches AND it carries vom's marker.
_SHOT_ID = re.compile(r"\A[A-Za-z0-9_-]{1,48}-[0-9a-f]{12}\Z")
_KEY_NAME = re.compile(r"\A-?[0-9]+\.[0-9a-f]{32}\.safetensors\Z")
_STEP_NAME = re.compile(r"\A[0-9a-f]{32}\.(?:alpha|state|affinity|digest)\.safetensors\Z")
_TEMP_NAME = re.compile(r"\A\.(?P<entry>.+)\.[0-9a-f]{32}\.tmp\Z")
_STALE_TEMP_S = 3600.0  # a writer's temporary older than this belongs to a killed process
KEYS_PER_FRAME = 3  # key-feature entries kept per plate frame (settings that alternate in one cache)


class CacheUnavailable(InputError):
    """The cache cannot be used (not writable, full, a link, a folder vom did not make): render without it."""


def max_bytes_from_env() -> int:
    """The size cap: ``VOM_CACHE_MAX_GB`` (a number of GiB, fractions allowed), else 20 GiB."""
    from vom_plugin.envvars import env_float

    gb = env_float("VOM_CACHE_MAX_GB", DEFAULT_MAX_BYTES / 2**30, expected="a number of GiB, e.g. 20",
                   allow_zero=False)
    # 1e300 GiB overflowed to infinity in bytes (a crash, exit 1); 1e-12 GiB was 0 bytes (every write evicting all)
    if not 2**-30 <= gb <= 2**32:
        raise InputError(f"VOM_CACHE_MAX_GB {os.environ.get('VOM_CACHE_MAX_GB', '').strip()!r}: expected a number of "
                         f"GiB from 1 byte (9.3e-10) to 2**32 (4.3e9), e.g. 20")
    return int(gb * 2**30)


def min_free_bytes_from_env() -> int:
    """The free space the cache leaves on its disk: ``VOM_CACHE_MIN_FREE_GB`` (GiB, 0 for none), else 1 GiB. A
    cache on the outputs' disk took its last bytes: the frame after failed, and every render again after it (QA)."""
    from vom_plugin.envvars import env_float

    gb = env_float("VOM_CACHE_MIN_FREE_GB", DEFAULT_MIN_FREE_BYTES / 2**30, expected="a number of GiB, e.g. 1 (0: "
                   "none)")
    if gb > 2**32:
        raise InputError(f"VOM_CACHE_MIN_FREE_GB {os.environ.get('VOM_CACHE_MIN_FREE_GB', '').strip()!r}: expected a "
                         f"number of GiB up to 2**32 (4.3e9), e.g. 1")
    return int(gb * 2**30)


def free_bytes(folder: str | os.PathLike[str]) -> int | None:
    """The free space of the disk holding ``folder`` (for an unprivileged writer), or that its nearest existing
    folder is on where it is not made yet (QA: a new cache below VOM_CACHE_MIN_FREE_GB was made, its shot folder
    too, and said only at its first write); None where it cannot be told."""
    path = _nearest_existing(folder)
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    # no blocks at all: a pseudo file system (/proc, /sys), whose "0 free" is no disk's (QA: `--cache /proc/nocache`
    # was refused as a full disk, where it cannot be made)
    return usage.free if usage.total else None


def _nearest_existing(folder: str | os.PathLike[str]) -> Path:
    path = Path(os.path.abspath(folder))
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _gib(n: int) -> str:
    """A size in GiB as a plain number ("100,000 GiB", "0.5 GiB"; QA: ``:g`` wrote "1e+05 GiB"), in bytes where
    that would read 0."""
    text = f"{n / 2**30:,.4f}".rstrip("0").rstrip(".")
    return f"{text} GiB" if text != "0" or not n else f"{n:,} bytes"


def digest(*parts: Any) -> str:
    """A stable 32-hex digest of JSON-able parts (the cache's addressing function)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(parts, sort_keys=True, default=str).encode())
    return h.hexdigest()


def file_fingerprint(path: str | os.PathLike, *, full: bool = False, chunk: int = 1 << 16) -> str:
    """size + mtime_ns + a hash of the content (head, middle and tail, or all of it when ``full``).

    Plates are big and many: the partial hash with size and mtime catches re-renders and edits without
    reading whole frames. Small files that decide the result (rotos) are hashed in full.
    """
    st = os.stat(path)
    h = hashlib.blake2b(digest_size=16)
    # Only part of a plate is read: its change time too, which no tool sets back (an uncompressed EXR edited in
    # place keeps its size, and `touch -r` or a restoring copy its modification time: the old frame's features
    # were reused). A file hashed whole needs no time at all (a roto baked again with the same picture hits).
    partial = not full and st.st_size > 3 * chunk
    # (a roto, hashed whole: its bytes alone; QA: a roto re-exported with the same picture missed every step)
    # and its inode: another file of the same size and times whose changes fall between the samples (a frame
    # re-delivered as a link to another file, its times set alike) reused the old frame's steps (QA)
    h.update(f"{st.st_size}".encode() if full else
             f"{st.st_size}:{st.st_mtime_ns}".encode() + (f":{st.st_ctime_ns}:{st.st_ino}".encode() if partial
                                                          else b""))
    with open(path, "rb") as f:
        _hash_content(h, f, st.st_size, None if not partial else chunk)
    return h.hexdigest()


def _hash_content(h: Any, f: Any, size: int, chunk: int | None) -> None:
    """All of ``f`` into ``h``, or (``chunk``) its head, middle and tail."""
    if chunk is None:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
        return
    for offset in (0, size // 2, size - chunk):
        f.seek(offset)
        h.update(f.read(chunk))


def shot_id(plate_pattern: str, first_frame: str | os.PathLike[str] | None = None) -> str:
    """A readable folder name for a plate: ``<folder>_<stem>-<hash>``.

    The hash is of the plate's first frame on disk (``first_frame``, else looked up: InputError without one),
    its file name and a sample of its bytes, not of the plate's path: machines that mount the plates under
    other roots (farm workers, an artist's workstation) find the same shot folder, so a farm chunk continues
    from the state the chunk before it left on another machine. The folder in the name is the plate's real one (a
    link to it, ``latest`` -> ``v003``, names the same shot; caches of vom before session 48 made through such a link
    are missed once). Two plates with the same first frame share a folder, which is harmless: entries are addressed
    by each frame's own fingerprint."""
    p = Path(os.path.abspath(plate_pattern))
    stem = re.sub(r"[#@]+|%0?[0-9]*d|\$F[0-9]*", "", p.name).split(".")[0].strip("._-") or "plate"
    # the folder as it is, not the link it was reached through (``latest`` -> ``v003``: one shot, QA: a re-render
    # through the link missed every entry of the render through the folder)
    folder = Path(os.path.realpath(p.parent)).name
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", f"{folder}_{stem}").strip("_")[:48] or "shot"
    if first_frame is None:
        from vom_plugin.io.sequence import open_sequence

        seq = open_sequence(plate_pattern)
        first_frame = seq.path(seq.frames[0])
    h = hashlib.blake2b(digest_size=16)
    try:
        # never waiting on a FIFO; a link to a frame is read (plates are often links into a delivery)
        fd = os.open(first_frame, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, "not a regular file", str(first_frame))
            h.update(f"{Path(first_frame).name}:{st.st_size}".encode())
            _hash_content(h, f, st.st_size, None if st.st_size <= 3 << 16 else 1 << 16)
    except OSError:  # a first frame outside the render that cannot be read: named by the plate's path instead
        h = hashlib.blake2b(f"path:{p}".encode(), digest_size=16)
    return f"{name}-{h.hexdigest()[:12]}"


def _atomic_write_bytes(path: Path, data: bytes, shared_as: Path | None = None) -> None:
    # not vom_plugin.atomic: no fsync (an entry is checked as it is read, and a lost one is computed again) and
    # temporaries named by _TEMP_NAME, which eviction and `vom cache clear` tell from entries
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as f:  # "x": never through a link someone left at the temporary name
            f.write(data)
            if shared_as is not None:
                _share_fd(f.fileno(), shared_as)
        os.replace(tmp, path)  # replaces a link at ``path`` itself, never the file it points to
    finally:
        if os.path.lexists(tmp):
            tmp.unlink()


def _touch(path: Path) -> None:
    try:
        os.utime(path, follow_symlinks=False)
    except (OSError, NotImplementedError):  # evicted meanwhile, or a read-only cache: the hit still counts
        pass


def _is_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _open_no_follow(path: Path | str) -> int:
    """A read-only descriptor of ``path`` itself: never through a link, never waiting on a FIFO."""
    return os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))


@contextlib.contextmanager
def _regular_file(path: Path) -> Iterator[tuple[Any, os.stat_result]]:
    """The open file at ``path`` and its stat; IsADirectoryError unless it is a regular file (a folder, a FIFO)."""
    fd = _open_no_follow(path)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file", str(path))
        with os.fdopen(os.dup(fd), "rb") as f:
            yield f, st
    finally:
        os.close(fd)


def _read_no_follow(path: Path) -> bytes:
    with _regular_file(path) as (f, _):
        return f.read()


def _read_entry(path: Path) -> bytes:
    """An entry's bytes, read only when the file is as long as its header says (the header ends with the last
    tensor's end): BadEntry otherwise, before anything of a file of any size is read into memory."""
    from vom_plugin.engine.safetensors_header import BadHeader, read_file_header

    with _regular_file(path) as (f, st):
        try:
            header, n = read_file_header(f)
        except BadHeader as e:
            raise BadEntry(f"no entry header ({e})") from None
        ends = [v.get("data_offsets", [0, 0])[1] for k, v in header.items()
                if k != "__metadata__" and isinstance(v, dict)]
        if not all(isinstance(e, int) for e in ends) or st.st_size != 8 + n + max(ends, default=0):
            raise BadEntry(f"{st.st_size} bytes, where its header describes {8 + n + max(ends, default=0)}")
        f.seek(0)
        return f.read()


def _is_shot_dir(path: Path) -> bool:
    """A shot folder vom made: a real folder (not a link) named like shot_id, holding vom's shot.json for it."""
    if not _SHOT_ID.match(path.name) or os.path.islink(path) or not os.path.isdir(path):  # False where unreadable
        return False
    try:
        meta = json.loads(_read_no_follow(path / SHOT_MARKER))
    except (OSError, ValueError, RecursionError):  # json recurses: [[[...]]] is a RecursionError (QA)
        return False
    return isinstance(meta, dict) and meta.get("id") == path.name


@dataclass
class CacheEntryStats:
    shot_id: str
    plate: str
    files: int
    bytes: int
    last_used: float
    temporaries: int = 0  # left by writers killed over an hour ago: not entries, removed at the next eviction or clear
    temporary_bytes: int = 0


class ShotCache:
    """The cache folder of one shot. Get methods return None on a miss; put methods are atomic.

    Reads verify each entry (``cache_entry.decode``); a bad one is deleted, noted in ``dropped`` and
    returned as a miss, so the runner recomputes it.
    """

    def __init__(self, root: str | os.PathLike, plate_pattern: str, *, max_bytes: int | None = None,
                 first_frame: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root)
        self.id = shot_id(plate_pattern, first_frame)
        self.dir = self.root / self.id
        self.plate = os.path.abspath(plate_pattern)
        self.max_bytes = max_bytes_from_env() if max_bytes is None else max_bytes
        self.min_free = min_free_bytes_from_env()
        self._written_since_evict = 0
        self._keys_by_frame: dict[str, set[str]] | None = None  # the keys folder's names by frame, once listed
        self.evicted_own = 0  # entries of this shot the size cap deleted or did not take (during a render of it)
        # the other shots whose entries of the last hour this store's evictions deleted: renders sharing the cache
        # whose shots do not fit its cap together (QA: their next chunks computed from the keyframe, unsaid)
        self.evicted_recent_others: set[str] = set()
        self.dropped: list[str] = []  # "path: why" of each damaged entry deleted on read
        self.foreign: list[str] = []  # "path: why" of each entry signed under another VOM_CACHE_KEY (kept)
        self.unreadable: list[str] = []  # "path: why" of each entry this user may not read (kept)
        self.blocked: list[str] = []  # entry paths taken by a folder: not written (the rest of the cache is)
        self._foreign_paths: set[Path] = set()  # never written over by this render
        # why this render reads the shot's entries and writes none ("" when it writes): its disk below
        # VOM_CACHE_MIN_FREE_GB, or a cache it may not write (a show's cache mounted read-only on a workstation)
        self.read_only = ""

    # -- set-up --------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create (or adopt) the shot's folders; CacheUnavailable says why the cache cannot be used.

        The runner then renders without the cache (or, with ``read_only`` set, reads it and writes nothing): a cache
        that cannot be written makes a render slower, never failed.
        """
        try:
            self.check_room(0)
        except CacheUnavailable as e:  # below the floor: nothing made there; what it holds of the shot is read (QA: a
            # full disk recomputed a warm shot from scratch), and a shot it holds nothing of renders without it
            if not os.access(_nearest_existing(self.dir / "steps"), os.W_OK | os.X_OK):
                # unwritable whatever its room (a read-only mount reports 0 free): tried below, which makes nothing
                # there and says the system's reason, not a full disk (QA). Asked of the shot's own folder where it
                # exists: a team's root may be closed to its users while the shot folders in it are theirs to write
                pass
            elif not _is_shot_dir(self.dir) or self.dir.is_symlink():
                raise
            else:
                self.read_only = str(e)
                return
        try:
            self.root.mkdir(parents=True, exist_ok=True)  # the root itself may be a link: the user chose it
            for attempt in (1, 2):
                with self.lock():  # the probe too: a `vom cache clear` between them removed the empty folder (QA)
                    self._claim()
                    probe = self.dir / "steps" / f".probe.{uuid.uuid4().hex}"
                    try:
                        with open(probe, "xb"):
                            pass
                    except FileNotFoundError:  # removed all the same (a clear that took no lock): claimed again
                        if attempt == 2:
                            raise
                        continue
                    probe.unlink()
                    break
        except OSError as e:
            # the folder that refused: the shot's, made by a teammate whose umask kept it to themselves, is not the
            # root, which the message named (QA)
            # os.path's tests, which say False where pathlib's raise: a folder this user cannot enter (another's
            # cache, mode 700) made them raise here, and the render failed on a bare PermissionError (QA)
            where = Path(e.filename) if e.filename else self.root
            if where != self.root and not os.path.isdir(where):  # a probe, a lock: their folder is what refused
                where = where.parent
            what = "is not a folder" if os.path.exists(self.root) and not os.path.isdir(self.root) else \
                f"cannot be made ({e.strerror or e})" if where == self.root and not os.path.isdir(self.root) else \
                f"cannot be written ({e.strerror or e})"
            if what.startswith("cannot be written") and _is_shot_dir(self.dir) and not os.path.islink(self.dir) \
                    and os.access(self.dir, os.R_OK | os.X_OK):  # this shot's entries are there to be read
                self.read_only = f"cache folder {str(where)!r} {what}"
                return
            refused = Path(e.filename) if e.filename else None
            if refused is not None and refused != self.root and not os.path.isdir(self.root) \
                    and self.root.is_relative_to(refused):
                # a folder above the root that cannot be made: the cache asked for is named, and which folder on its
                # way refused (QA: "cache folder '/' cannot be written" of a farm account whose home is absent)
                raise CacheUnavailable(f"cache folder {str(self.root)!r} cannot be made: {str(refused)!r} cannot be "
                                       f"created ({e.strerror or e}); pass --cache DIR (or set VOM_CACHE_DIR) to a "
                                       f"writable folder") from None
            raise CacheUnavailable(f"cache folder {str(where)!r} {what}; pass --cache DIR (or set VOM_CACHE_DIR) "
                                   f"to a writable folder") from None
        except CacheUnavailable:
            raise
        except VomError as e:  # the lock held by a hung process
            raise CacheUnavailable(str(e)) from None

    def _claim(self) -> None:
        d = self.dir
        if d.is_symlink():
            raise CacheUnavailable(f"cache folder {d} is a symbolic link; vom follows no link out of its cache root")
        if d.exists() and not _is_shot_dir(d):
            if not d.is_dir() or not _only_empty_subfolders(d):
                raise CacheUnavailable(f"cache folder {d} exists but vom did not make it (no {SHOT_MARKER} of its "
                                       f"own); vom leaves it alone. Remove it or pass another --cache")
        d.mkdir(exist_ok=True)
        _share_folder(d, self.root)  # made now, or by this user before (a cache a 077 umask left private)
        if not _is_shot_dir(d):
            info = {"format": SHOT_FORMAT, "id": self.id, "plate": self.plate}
            _atomic_write_bytes(d / SHOT_MARKER, json.dumps(info, indent=1).encode(), shared_as=self.root)
        for sub in ("keys", "steps"):
            p = d / sub
            if p.is_symlink():
                raise CacheUnavailable(f"cache folder {p} is a symbolic link; vom follows no link out of its "
                                       f"cache root")
            p.mkdir(exist_ok=True)
            _share_folder(p, self.root)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """The root's lock, held briefly around writes (eviction and clearing take it too)."""
        with _root_lock(self.root):
            yield

    # -- key features --------------------------------------------------------------------------------

    def _key_path(self, frame: int, key: str) -> Path:
        return self.dir / "keys" / f"{frame}.{key}.safetensors"

    def get_keys(self, frame: int, key: str) -> dict[str, Any] | None:
        return self._load(self._key_path(frame, key))

    def put_keys(self, frame: int, key: str, tensors: dict[str, Any]) -> None:
        path = self._key_path(frame, key)
        # the 8-bit codes of an image of features: as differences from their left neighbours they compress to
        # about half, for little of the writer's and the reader's CPU
        codes = [n for n, t in tensors.items() if str(t.dtype) == "torch.uint8" and t.dim() >= 2]
        self._save(path, tensors, delta=codes)
        # A few live entries per frame: another setting's (working size, thread count: a mixed farm, an artist
        # comparing two sizes) stays for its next re-render; beyond that, the least recently used (an older plate
        # version's features, garbage now) go at once instead of waiting for the size cap.
        # The folder is listed once a render, not at every write (a 5000-frame shot listed 5000 names a frame, 4 ms
        # each: quadratic in the shot's length, QA); another process's entries written since are its to tidy.
        if self._keys_by_frame is None:
            self._keys_by_frame = {}
            with contextlib.suppress(FileNotFoundError):  # a clear removed the folder meanwhile: nothing to tidy
                for e in os.scandir(path.parent):
                    if _KEY_NAME.match(e.name):
                        self._keys_by_frame.setdefault(e.name.split(".", 1)[0], set()).add(e.name)
        names = self._keys_by_frame.setdefault(str(frame), set())
        names.add(path.name)
        others = []
        for name in names - {path.name}:
            with contextlib.suppress(OSError):
                others.append((os.lstat(path.parent / name).st_mtime, name))
        for _, old in sorted(others, reverse=True)[KEYS_PER_FRAME - 1:]:
            names.discard(old)
            if file_is_marked(path.parent / old):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path.parent / old)

    # -- per-step outputs and memory states ---------------------------------------------------------

    def _step_path(self, key: str, kind: str) -> Path:
        return self.dir / "steps" / f"{key}.{kind}.safetensors"

    def has_alpha(self, key: str) -> bool:
        return _is_file(self._step_path(key, "alpha"))

    def has_state(self, key: str) -> bool:
        return _is_file(self._step_path(key, "state"))

    def get_alpha(self, key: str) -> dict[str, Any] | None:
        return self._load(self._step_path(key, "alpha"))

    def put_alpha(self, key: str, tensors: dict[str, Any]) -> None:
        self._save(self._step_path(key, "alpha"), tensors)

    def get_state(self, key: str) -> dict[str, Any] | None:
        return self._load(self._step_path(key, "state"))

    def put_state(self, key: str, tensors: dict[str, Any]) -> bool:
        """Whether it was written. Stored plain: a state is written at the end of every pass, and deflating its tens
        of MB (the keys barely shrink) would hold up the end of every render for the few MB it saves once per pass."""
        return self._save(self._step_path(key, "state"), tensors, compress=False)

    def get_affinity(self, key: str) -> dict[str, Any] | None:
        return self._load(self._step_path(key, "affinity"))

    def put_affinity(self, key: str, tensors: dict[str, Any]) -> None:
        # the memory read's weights only (``Affinity.to_dict``): CFAR's are recomputed from the keys
        self._save(self._step_path(key, "affinity"), tensors)

    def get_digest(self, fingerprint: str) -> str | None:
        """The content digest (``digest.content_digest``) of the plate frame whose cache fingerprint this is, as a
        render that read it whole kept it: what ``vom:through`` names of the frames on a chunk's way that it does
        not write (they were read whole by every chunk after them: about L^2/2N frame reads for a span of L frames
        in chunks of N)."""
        got = self._load(self._step_path(fingerprint, "digest"))
        if got is None:
            return None
        t = got.get("digest")
        if t is None or str(t.dtype) != "torch.uint8" or tuple(t.shape) != (16,):
            self._drop(self._step_path(fingerprint, "digest"), "not a content digest")
            return None
        return bytes(t.numpy().tobytes()).hex()

    def put_digest(self, fingerprint: str, content: str) -> None:
        import torch

        self._save(self._step_path(fingerprint, "digest"),
                   {"digest": torch.frombuffer(bytearray.fromhex(content), dtype=torch.uint8)}, compress=False)

    def drop_state(self, key: str) -> None:
        path = self._step_path(key, "state")
        if path not in self._foreign_paths and not signed_by_another_key(path):  # another key's workers' state
            path.unlink(missing_ok=True)

    def drop(self, kind: str, key: str, why: str) -> None:
        """Delete a step entry the runner found unusable (a shape from another version): a miss from now on."""
        self._drop(self._step_path(key, kind), why)

    def drop_keys(self, frame: int, key: str, why: str) -> None:
        self._drop(self._key_path(frame, key), why)

    # -- storage -------------------------------------------------------------------------------------

    def _address(self, path: Path) -> str:
        return f"{path.parent.name}/{path.name}"  # "keys/1001.<digest>.safetensors": a copy elsewhere fails

    def _load(self, path: Path) -> dict[str, Any] | None:
        try:
            data = _read_entry(path)
        except BadEntry as e:  # its size is not what its header says (a file grown to 50 GB was read whole: exit 1)
            self._drop(path, str(e))
            return None
        except FileNotFoundError:
            return None
        except PermissionError as e:  # another user's entry in a shared cache (their umask): a miss, theirs kept
            self.unreadable.append(f"{path}: {e.strerror or e}")
            return None
        except OSError as e:  # a link, a folder: not an entry vom can trust
            self._drop(path, f"not readable as a file ({e.strerror or e})")
            return None
        try:
            tensors = decode(self._address(path), data)
        except OtherKey as e:  # another worker's sound entry: a miss here, kept for the workers with its key
            self.foreign.append(f"{path}: {e}")
            if e.signed:
                self._foreign_paths.add(path)
            return None
        except BadEntry as e:
            self._drop(path, str(e))
            return None
        _touch(path)
        return tensors

    def _drop(self, path: Path, why: str) -> None:
        if os.path.isdir(path) and not os.path.islink(path):  # a folder vom did not make: kept, and not written over
            if str(path) not in self.blocked:  # a few, said once each
                self.blocked.append(str(path))
            return
        self.dropped.append(f"{path}: {why}")
        if self.read_only:  # a cache this render does not write: the entry stays (and is said as such)
            return
        try:
            os.unlink(path)  # unlinks a link itself, never its target
        except OSError:
            pass

    def _save(self, path: Path, tensors: dict[str, Any], *, compress: bool | Callable[[str], bool] = True,
              delta: Collection[str] = ()) -> bool:
        """Write an entry; whether it was written (the cap, another key's entry or a folder in its way: not)."""
        # the workers holding its key keep it; this render computes its own (read or not: a render that resumes
        # from elsewhere never loads the entries it then writes)
        if path in self._foreign_paths or (os.path.lexists(path) and signed_by_another_key(path)):
            return False
        if os.path.isdir(path) and not os.path.islink(path):  # a folder vom did not make: that entry is not cached
            self._drop(path, "a folder")
            return False
        data = encode(self._address(path), tensors, compress=compress, delta=delta)
        if len(data) > self.max_bytes:
            # it could never stay: written, it had every other entry evicted (other shots' too) and then itself (a
            # memory state of 19 MB under a 7 MB cap emptied the shots that fitted, QA); not cached, said as a cut
            self.evicted_own += 1
            return False
        self.check_room(len(data))
        with self.lock():
            if not path.parent.is_dir():  # a `vom cache clear` removed the shot's empty folder as the render began
                self._claim()
            _atomic_write_bytes(path, data, shared_as=self.root)  # a teammate reads it whatever my umask (QA)
        if not self._written_since_evict:  # the first since an eviction: marked at once (a kill leaves it)
            self._mark_unevicted()
        self._written_since_evict += len(data)
        if self._written_since_evict > self.max_bytes // 10:
            self.evict()
        return True

    def check_room(self, size: int) -> None:
        """CacheUnavailable where writing ``size`` bytes would leave the cache's disk with less than ``min_free``:
        the outputs' room, where they share it (the runner then goes on without the cache)."""
        if not self.min_free:
            return
        free = free_bytes(self.root)
        if free is not None and free - size < self.min_free:
            # one unit, and the write that did not fit (QA: "76,154.6 MiB free, and the cache leaves 74.3695 GiB"
            # read as room enough: the entry's size was not said); none before the first write (QA: "a 0.0 MiB entry")
            what = f": a {size / 2**20:,.1f} MiB entry would leave less than" if size else ", less than"
            raise CacheUnavailable(f"the disk holding {self.root} has {free / 2**30:,.4f} GiB free{what} the "
                                   f"{_gib(self.min_free)} the cache leaves free for the outputs "
                                   f"(VOM_CACHE_MIN_FREE_GB); free space there or pass --cache DIR on another disk")

    @property
    def wrote_since_evict(self) -> bool:
        """Whether this store wrote an entry since it last evicted (or at all)."""
        return self._written_since_evict > 0

    @property
    def evict_due(self) -> bool:
        """Whether an eviction is due: this store wrote, or a render that wrote ended without evicting."""
        return self.wrote_since_evict or (self.root / DIRTY_NAME).exists()

    def _mark_unevicted(self) -> None:
        """Leave an eviction to do to whichever render ends next (this one may be stopped or killed first)."""
        with contextlib.suppress(OSError):  # made or left as it is; never through a link left at its name
            os.close(os.open(self.root / DIRTY_NAME, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0),
                             0o666))

    def evict(self) -> int:
        """Delete entries until the whole root is under the cap (``evict``); returns bytes freed. Those of this
        shot are counted in ``evicted_own``: the cap is smaller than what the shot needs kept."""
        recent: list[str] = []  # entries used within the hour that went: another render's, perhaps running now
        freed, gone = evict(self.root, self.max_bytes, recent)
        folders = {Path(p).parent.parent for p in recent} - {self.dir}
        self.evicted_recent_others |= {_plate_of(d) or d.name for d in folders}  # a TD knows a shot by its plate
        self._written_since_evict = 0
        with contextlib.suppress(OSError):  # after the scan that took its entries into account
            os.unlink(self.root / DIRTY_NAME)
        self.evicted_own += sum(1 for path in gone if Path(path).parent.parent == self.dir
                                and not _TEMP_NAME.match(os.path.basename(path)))  # a killed writer's is no entry
        return freed


def _only_empty_subfolders(d: Path) -> bool:
    """A folder left by a run killed between creating a shot folder and writing its shot.json."""
    for e in os.scandir(d):
        if e.name not in ("keys", "steps") or not e.is_dir(follow_symlinks=False) or any(os.scandir(e.path)):
            return False
    return True


# -- whole-cache operations (``vom cache``) ----------------------------------------------------------

@contextlib.contextmanager
def _root_lock(root: Path) -> Iterator[None]:
    path = root / LOCK_NAME
    if path.is_symlink():  # older filelock versions open (and truncate) the link's target
        raise CacheUnavailable(f"cache lock {path} is a symbolic link; vom follows no link inside its cache")
    try:
        import fcntl
    except ImportError:  # Windows
        with _portable_lock(path, root):
            yield
        return
    deadline = time.monotonic() + _LOCK_TIMEOUT_S
    while True:
        fd = _open_lock(path)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise _locked(root) from None
                    time.sleep(0.05)
            if not _still_at(fd, path):  # a clear that emptied the cache removed the file waited on: lock the new one
                fcntl.flock(fd, fcntl.LOCK_UN)
                if time.monotonic() > deadline:  # a mount whose fstat and stat never agree: not forever (review)
                    raise _locked(root)
                continue
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            return
        finally:
            os.close(fd)


def _share_folder(folder: Path, root: Path) -> None:
    """``_share_fd`` of a folder, opened without following a link."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(folder, flags)
    except OSError:
        return
    try:
        _share_fd(fd, root)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _portable_lock(path: Path, root: Path) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock = FileLock(str(path), timeout=_LOCK_TIMEOUT_S, mode=0o666)
    try:
        lock.acquire()
    except Timeout:
        raise _locked(root) from None
    try:
        yield
    finally:
        lock.release()


def _locked(root: Path) -> VomError:
    return VomError(f"cache {root} is locked by another process for more than {_LOCK_TIMEOUT_S:.0f} s; "
                    f"is a `vom cache clear` hanging?")


def _shot_dirs(root: Path) -> list[Path]:
    try:
        found = [Path(e.path) for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    return sorted(p for p in found if _is_shot_dir(p))


def _entries(shot: Path, *, stale_temps: bool = True) -> Iterator[tuple[str, os.stat_result]]:
    """(path, lstat) of each file vom wrote in a shot folder: named like an entry and marked as one. With
    ``stale_temps``, also the temporaries of writers killed over an hour ago."""
    now = time.time()
    for sub, rx in (("keys", _KEY_NAME), ("steps", _STEP_NAME)):
        d = shot / sub
        if d.is_symlink() or not d.is_dir():
            continue
        try:
            listing = list(os.scandir(d))
        except OSError:
            continue
        for e in listing:
            try:
                if not e.is_file(follow_symlinks=False):
                    continue
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if rx.match(e.name):
                if file_is_marked(e.path):
                    yield e.path, st
            elif stale_temps:
                m = _TEMP_NAME.match(e.name)
                # named like a temporary of ours, and holding what a writer of ours began (nothing yet, or an
                # entry's marked header): a file a user named alike is never taken for one
                if (m and rx.match(m.group("entry")) and now - st.st_mtime > _STALE_TEMP_S
                        and (st.st_size == 0 or file_is_marked(e.path))):
                    yield e.path, st


RECENT_S = 3600  # an entry used within this long is a render's of now: the cap deleting it is said


def _eviction_order(entry: tuple[float, int, str]) -> tuple[bool, float]:
    """A shot's entries as eviction takes them (sorted by this, reversed): the most recently used first, its memory
    states (one a chain) last and the oldest of them first, so a render goes on from the newest whatever predictions
    before it went (QA: a shot over the cap lost every chunk-end state first, being newest, and each farm chunk
    propagated from the keyframe again: 100, 100, 300, 400, 500 steps)."""
    mtime, _, path = entry
    state = path.endswith(".state.safetensors")
    return not state, -mtime if state else mtime


def evict(root: str | os.PathLike, max_bytes: int, recent: list[str] | None = None,
          sizes: dict[str, int] | None = None, failed: list[tuple[str, str]] | None = None,
          settle: bool = False) -> tuple[int, list[str]]:
    """Delete entries until the cache at ``root`` holds at most ``max_bytes``: (bytes freed, paths deleted);
    ``recent`` receives those of them used within ``RECENT_S``, ``sizes`` the size of each. An entry that cannot be
    deleted (another user's, immutable) is passed over for the next (one such shot, least recently used, stopped the
    whole eviction: second review): ``failed`` receives (path, reason) of each; without it the first is raised as an
    OSError once the rest are done. ``settle``: the eviction a render left due (``DIRTY_NAME``) is marked done, under
    the lock, where the cache ended within the cap.

    Shots go least recently used first (a shot's last use: its newest entry, reads touch them); within a shot its
    most recently used entries go first, its memory states (one a chain) last. A pass goes on from a memory state
    with every prediction before it that the render delivers on disk (``resume_point``), so a chain is cut from its
    end: a render goes on from a state below the cut where there is one, and the frames' key features stay.
    Deleting the oldest first took a chain's first steps, and every state and prediction after them, kept and
    counted against the cap, could no longer be used."""
    root = Path(root)
    if not root.is_dir():
        return 0, []
    errors: list[tuple[str, str]] = [] if failed is None else failed
    first_error: OSError | None = None
    freed = 0
    gone: list[str] = []

    def delete(path: str, size: int, mtime: float | None = None) -> None:
        nonlocal freed, first_error
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        except OSError as e:
            errors.append((path, e.strerror or str(e)))
            first_error = first_error or e
            return
        freed += size
        gone.append(path)
        if sizes is not None:
            sizes[path] = size
        if recent is not None and mtime is not None and mtime > since:
            recent.append(path)

    since = time.time() - RECENT_S
    with _root_lock(root):
        shots = [[(st.st_mtime, st.st_size, path) for path, st in _entries(shot)] for shot in _shot_dirs(root)]
        # what writers killed over an hour ago left (a 76 MB state's temporary, QA: kept until the cap was reached,
        # and counted by no `vom cache info`) goes first, whatever the cap: no render reads it
        for files in shots:
            for entry in [f for f in files if _TEMP_NAME.match(os.path.basename(f[2]))]:
                files.remove(entry)
                delete(entry[2], entry[1])
        shots = [files for files in shots if files]
        total = sum(size for files in shots for _, size, _ in files) + freed
        for files in sorted(shots, key=lambda files: max(files)[0]):
            for mtime, size, path in sorted(files, key=_eviction_order, reverse=True):
                if total - freed <= max_bytes:
                    break
                delete(path, size, mtime)
            if total - freed <= max_bytes:
                break
        if settle and total - freed <= max_bytes:
            with contextlib.suppress(OSError):
                os.unlink(root / DIRTY_NAME)
    if failed is None and first_error is not None:
        raise first_error
    return freed, gone


def _plate_of(shot: Path) -> str:
    try:
        return str(json.loads(_read_no_follow(shot / SHOT_MARKER)).get("plate", ""))
    except (OSError, ValueError, AttributeError, RecursionError):
        return ""


def cache_info(root: str | os.PathLike) -> list[CacheEntryStats]:
    """One line per shot folder vom made under ``root``: plate, number of entries, bytes, last use."""
    root = Path(root)
    out: list[CacheEntryStats] = []
    if not root.is_dir():
        return out
    _check_readable(root)
    for shot in _shot_dirs(root):
        files = size = temps = temp_size = 0
        last = 0.0
        for path, st in _entries(shot):
            if _TEMP_NAME.match(os.path.basename(path)):
                temps, temp_size = temps + 1, temp_size + st.st_size
                continue
            files += 1
            size += st.st_size
            last = max(last, st.st_mtime)
        if not last:
            try:
                last = shot.stat().st_mtime
            except FileNotFoundError:  # emptied and removed by a `vom cache clear` since it was listed
                continue
        out.append(CacheEntryStats(shot.name, _plate_of(shot), files, size, last, temps, temp_size))
    return out


def _check_readable(root: Path) -> None:
    """InputError for a cache root this user cannot read (another user's: `vom cache info` said "0 shots, 0 B" and
    clear a bare "Permission denied", QA)."""
    if not os.access(root, os.R_OK | os.X_OK):
        raise InputError(f"cache {root} cannot be read by this user (mode {stat.S_IMODE(root.stat().st_mode):o}, "
                         f"its owner's); set VOM_CACHE_DIR to a cache of yours or ask them to share it")


def unreadable_shot_folders(root: str | os.PathLike) -> list[Path]:
    """Folders under ``root`` named like vom's shot folders whose shot.json is missing or damaged: vom cannot
    tell them from a user's, so it neither uses nor deletes them (``cache info`` names them)."""
    root = Path(root)
    try:
        named = [p for p in root.iterdir() if _SHOT_ID.match(p.name) and not p.is_symlink() and p.is_dir()]
    except OSError:
        return []
    out = []
    for p in named:
        try:
            if not _is_shot_dir(p) and not _only_empty_subfolders(p):
                out.append(p)
        except OSError:  # one this user cannot look into (a teammate's, umask 077): named, not all hidden (QA)
            out.append(p)
    return sorted(out)


@dataclass
class ClearedShot:
    shot_id: str
    plate: str
    files: int
    bytes: int
    folder_removed: bool


@dataclass
class ClearReport:
    """What ``clear`` removed, shot by shot, and what it found there that vom did not write (left alone)."""

    root: Path
    shots: list[ClearedShot] = field(default_factory=list)
    left_alone: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (entry, why) that could not be removed
    recent: list[str] = field(default_factory=list)  # trim: removed entries used within RECENT_S (a running render's?)
    # what killed writers left (an entry's temporary, a lock's), removed and said apart from the entries: `vom cache
    # info` counts entries only, and the two disagreed (QA)
    temporaries: int = 0

    @property
    def files(self) -> int:
        return sum(s.files for s in self.shots)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.shots)


def clear(root: str | os.PathLike, *, older_than_days: float | None = None,
          shots: Collection[str] | None = None) -> ClearReport:
    """Delete the entries vom wrote (all, or those of the shots not used for ``older_than_days``: a shot's last use
    is its newest entry; of every shot, or of the shot folders named in ``shots``), and the shot folders left with
    nothing else in them. Nothing vom did not write is
    deleted, and no link is followed."""
    root = Path(root)
    report = ClearReport(root)
    if not root.is_dir():
        return report
    cutoff = time.time() - older_than_days * 86400 if older_than_days is not None else None
    _check_readable(root)
    if not _shot_dirs(root) and not (root / LOCK_NAME).exists():
        # no cache here (a folder of the user's, named by mistake): nothing to lock, and no lock file left in it
        report.left_alone.extend(e.path for e in os.scandir(root))
        return report
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(_root_lock(root))
        except OSError as e:  # a read-only cache (a mount, another user's folder): nothing can be removed
            raise InputError(f"cache {root} cannot be cleared: its lock {root / LOCK_NAME} cannot be made "
                             f"({e.strerror or e})") from None
        found = _shot_dirs(root)
        shot_names = {p.name for p in found}
        if shots is None:
            for e in os.scandir(root):
                if _LOCK_TEMP.match(e.name) and _stale_empty(e):  # a killed process's, as it made the first lock
                    with contextlib.suppress(OSError):
                        os.unlink(e.path)
                        report.temporaries += 1
                    continue
                if e.name not in (LOCK_NAME, DIRTY_NAME) and e.name not in shot_names:
                    if _SHOT_ID.match(e.name) and e.is_dir(follow_symlinks=False) \
                            and not os.access(e.path, os.R_OK | os.X_OK):
                        # a teammate's shot folder made under umask 077: vom's, but not this user's to look into
                        report.failed.append((e.path, "a shot folder this user cannot read (another user's)"))
                    else:
                        report.left_alone.append(e.path)
        for shot in found:
            if shots is not None and shot.name not in shots:
                continue
            files = freed = 0
            plate = _plate_of(shot)  # read before shot.json may go with the folder
            entries = list(_entries(shot))
            # an age is the shot's, as eviction's is (its newest entry): a re-render read its steps back and left the
            # key features and matches a roto tweak reuses untouched, and a nightly clear took them from a shot in
            # use (QA); a killed writer's temporary goes by its own age
            temps = {path for path, _ in entries if _TEMP_NAME.match(os.path.basename(path))}
            in_use = cutoff is not None and any(st.st_mtime >= cutoff for path, st in entries if path not in temps)
            for path, st in entries:
                if cutoff is not None and (st.st_mtime >= cutoff or (in_use and path not in temps)):
                    continue
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    continue
                except OSError as e:  # another user's entry in a shared cache, an immutable file: said, the rest goes
                    report.failed.append((str(path), e.strerror or str(e)))
                    continue
                if path in temps:
                    report.temporaries += 1
                    continue
                files += 1
                freed += st.st_size
            removed = _remove_if_empty(shot)
            if not removed:
                for path in _foreign(shot):
                    why = _unreadable_entry(path)
                    if why:  # named as ours, but whether vom wrote it cannot be read: not removed, and said so
                        report.failed.append((path, f"{why}: whether vom wrote it cannot be read by this user"))
                    else:
                        report.left_alone.append(path)
            if files or removed:
                report.shots.append(ClearedShot(shot.name, plate, files, freed, removed))
        emptied = not _shot_dirs(root)
        if emptied:  # nothing left to evict
            with contextlib.suppress(OSError):
                os.unlink(root / DIRTY_NAME)
        if emptied and report.left_alone:
            # nothing of the cache left in a folder of the user's named as --cache: its marker and lock go too, and
            # the folder is as it was (QA). Removed while held: a process waiting on it locks the file made next
            # (``_root_lock``). A folder of vom's alone keeps its lock: a vom before this one waiting on it could not
            # tell it was removed, and would hold it beside the next (review: a farm mid-rollout shares a cache)
            with contextlib.suppress(OSError):
                os.unlink(root / LOCK_NAME)
    return report


def trim(root: str | os.PathLike, max_bytes: int) -> ClearReport:
    """``evict`` now, as the next render that writes to the cache would: the least recently used entries go until the
    cache at ``root`` holds at most ``max_bytes`` (``vom cache clear --to-cap``; a lowered VOM_CACHE_MAX_GB is
    otherwise applied by that render only, and `vom cache info` showed a cache over its cap with no word, QA)."""
    root = Path(root)
    report = ClearReport(root)
    if not root.is_dir():
        return report
    _check_readable(root)
    if not _shot_dirs(root):  # no cache here: no lock made in a folder of the user's
        return report
    sizes: dict[str, int] = {}
    try:
        # each entry that cannot go (another user's, an immutable one) is said, and the next tried
        _, gone = evict(root, max_bytes, recent=report.recent, sizes=sizes, failed=report.failed, settle=True)
    except OSError as e:
        name = os.path.basename(e.filename or "")
        if name == LOCK_NAME or _LOCK_TEMP.match(name):  # a read-only cache (a mount, another user's folder)
            raise InputError(f"cache {root} cannot be cleared: its lock {root / LOCK_NAME} cannot be made "
                             f"({e.strerror or e})") from None
        raise InputError(f"cache {root} cannot be cleared: {e.filename or root}: {e.strerror or e}") from None
    shots: dict[Path, ClearedShot] = {}
    for path in gone:
        if _TEMP_NAME.match(os.path.basename(path)):
            report.temporaries += 1
            continue
        shot = Path(path).parent.parent
        if shot not in shots:
            shots[shot] = ClearedShot(shot.name, _plate_of(shot), 0, 0, False)
        shots[shot].files += 1
        shots[shot].bytes += sizes[path]
    report.shots = [shots[k] for k in sorted(shots)]
    return report


def _foreign(shot: Path) -> list[str]:
    """What a shot folder holds that vom did not write (reported by clear, never deleted)."""
    ours = {path for path, _ in _entries(shot)}
    out = []
    for e in os.scandir(shot):
        if e.name == SHOT_MARKER:
            continue
        if e.name in ("keys", "steps") and e.is_dir(follow_symlinks=False):
            rx = _KEY_NAME if e.name == "keys" else _STEP_NAME
            out.extend(x.path for x in os.scandir(e.path)
                       if x.path not in ours and not _fresh_temp(x, rx))
        else:
            out.append(e.path)
    return out


def _unreadable_entry(path: str) -> str | None:
    """Why a file named like an entry cannot be opened by this user (another user's, made under umask 077), else
    None."""
    if not (_KEY_NAME.match(os.path.basename(path)) or _STEP_NAME.match(os.path.basename(path))):
        return None
    try:
        os.close(_open_no_follow(path))
    except PermissionError as e:
        return e.strerror or "Permission denied"
    except OSError:
        return None
    return None


def _stale_empty(e: os.DirEntry) -> bool:
    """An empty file older than a writer lives: what a lock's temporary is (a user's file named alike, with
    something in it or recent, was deleted by `vom cache clear`: QA)."""
    try:
        st = e.stat(follow_symlinks=False)
    except OSError:
        return False
    return e.is_file(follow_symlinks=False) and st.st_size == 0 and time.time() - st.st_mtime > _STALE_TEMP_S


def _fresh_temp(e: os.DirEntry, rx: re.Pattern[str]) -> bool:
    """A live writer's temporary (not reported); one older than a writer lives that clear kept is the user's."""
    m = _TEMP_NAME.match(e.name)
    try:
        young = time.time() - e.stat(follow_symlinks=False).st_mtime <= _STALE_TEMP_S
    except OSError:
        return False
    return bool(m and rx.match(m.group("entry")) and young)


def _remove_if_empty(shot: Path) -> bool:
    """Remove a shot folder whose keys/ and steps/ are empty and which holds nothing but them and shot.json."""
    subs = [shot / "keys", shot / "steps"]
    try:
        names = set(os.listdir(shot))
        if not names <= {SHOT_MARKER, "keys", "steps"}:
            return False
        if any(p.is_symlink() or (p.exists() and (not p.is_dir() or os.listdir(p))) for p in subs):
            return False
        for p in subs:
            if p.exists():
                p.rmdir()
        (shot / SHOT_MARKER).unlink(missing_ok=True)
        shot.rmdir()
    except OSError:
        return False
    return True
