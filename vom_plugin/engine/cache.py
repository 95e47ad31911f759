"""The persistent per-shot cache: key features and memory-bank states on disk, safe for many processes.

Layout under a cache root (``Shot.cache`` or the user cache)::

    <root>/.vom-cache.lock              one lock for writers, eviction and clearing
    <root>/<shot-id>/shot.json          what the folder belongs to (for ``vom cache info``)
    <root>/<shot-id>/keys/<frame>.<digest>.safetensors      key-encoder features of one plate frame
    <root>/<shot-id>/steps/<digest>.alpha.safetensors       one pass's prediction at one frame
    <root>/<shot-id>/steps/<digest>.state.safetensors       the memory bank after that frame
    <root>/<shot-id>/steps/<digest>.affinity.safetensors    that step's key-only read and CFAR weights

Entries are addressed by digests of everything that influences them (the runner computes them), so a
change of plate, roto, model or setting simply addresses other entries; stale ones age out by LRU
(file mtime is the use time: every hit touches its file). Affinities are addressed without the roto: they
depend on the pixels, the model and the settings only, so a render whose roto alone changed reuses them.
Writes go to a unique temporary name and are ``os.replace``d, so a reader never sees half a file even if
the writer is killed; a reader that loses a race with eviction sees a miss.
Tensors are stored with safetensors (no pickle).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vom_plugin.errors import InputError, VomError

LOCK_NAME = ".vom-cache.lock"
DEFAULT_MAX_BYTES = 20 * 2**30
_LOCK_TIMEOUT_S = 120.0


def max_bytes_from_env() -> int:
    """The size cap: ``VOM_CACHE_MAX_GB`` (a number of GiB, fractions allowed), else 20 GiB."""
    from vom_plugin.envvars import env_float

    gb = env_float("VOM_CACHE_MAX_GB", DEFAULT_MAX_BYTES / 2**30, expected="a number of GiB, e.g. 20",
                   allow_zero=False)
    return int(gb * 2**30)


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
    h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    with open(path, "rb") as f:
        if full or st.st_size <= 3 * chunk:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        else:
            for offset in (0, st.st_size // 2, st.st_size - chunk):
                f.seek(offset)
                h.update(f.read(chunk))
    return h.hexdigest()


def shot_id(plate_pattern: str) -> str:
    """A readable, collision-safe folder name for a plate: ``<folder>_<stem>-<hash of the full path>``."""
    p = Path(os.path.abspath(plate_pattern))
    stem = re.sub(r"[#@]+|%0?\d*d", "", p.name).split(".")[0].strip("._-") or "plate"
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", f"{p.parent.name}_{stem}").strip("_")[:48] or "shot"
    return f"{name}-{hashlib.sha1(str(p).encode()).hexdigest()[:12]}"


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:  # evicted meanwhile, or a read-only cache: the hit still counts
        pass


@dataclass
class CacheEntryStats:
    shot_id: str
    plate: str
    files: int
    bytes: int
    last_used: float


class ShotCache:
    """The cache folder of one shot. Get methods return None on a miss; put methods are atomic."""

    def __init__(self, root: str | os.PathLike, plate_pattern: str, *, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.id = shot_id(plate_pattern)
        self.dir = self.root / self.id
        self.plate = os.path.abspath(plate_pattern)
        self.max_bytes = max_bytes_from_env() if max_bytes is None else max_bytes
        self._written_since_evict = 0

    # -- set-up --------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the folders and check they are writable; InputError names the folder otherwise."""
        try:
            for sub in ("keys", "steps"):
                (self.dir / sub).mkdir(parents=True, exist_ok=True)
            probe = self.dir / f".probe.{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise InputError(f"cache folder {str(self.root)!r} is not writable ({e.strerror or e}); "
                             f"pass --cache DIR (or set VOM_CACHE_DIR) to a writable folder") from None
        info = {"plate": self.plate, "id": self.id}
        meta = self.dir / "shot.json"
        if not meta.exists():
            with self.lock():
                _atomic_write_bytes(meta, json.dumps(info, indent=1).encode())

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
        self._save(path, tensors)
        # One live entry per frame: features of an older plate version or setting are garbage now.
        for old in path.parent.glob(f"{frame}.*.safetensors"):
            if old != path:
                old.unlink(missing_ok=True)

    # -- per-step outputs and memory states ---------------------------------------------------------

    def _step_path(self, key: str, kind: str) -> Path:
        return self.dir / "steps" / f"{key}.{kind}.safetensors"

    def has_alpha(self, key: str) -> bool:
        return self._step_path(key, "alpha").exists()

    def has_state(self, key: str) -> bool:
        return self._step_path(key, "state").exists()

    def get_alpha(self, key: str) -> dict[str, Any] | None:
        return self._load(self._step_path(key, "alpha"))

    def put_alpha(self, key: str, tensors: dict[str, Any]) -> None:
        self._save(self._step_path(key, "alpha"), tensors)

    def get_state(self, key: str) -> dict[str, Any] | None:
        return self._load(self._step_path(key, "state"))

    def put_state(self, key: str, tensors: dict[str, Any]) -> None:
        self._save(self._step_path(key, "state"), tensors)

    def get_affinity(self, key: str) -> dict[str, Any] | None:
        return self._load(self._step_path(key, "affinity"))

    def put_affinity(self, key: str, tensors: dict[str, Any]) -> None:
        self._save(self._step_path(key, "affinity"), tensors)

    def drop_state(self, key: str) -> None:
        self._step_path(key, "state").unlink(missing_ok=True)

    # -- storage -------------------------------------------------------------------------------------

    def _load(self, path: Path) -> dict[str, Any] | None:
        from safetensors.torch import load

        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            # clone(): tensors loaded from bytes sit at whatever offset the header left them, and torch's
            # vectorised CPU kernels round differently on unaligned data; fresh storage is aligned, so a
            # resumed render computes bit-identically to an uninterrupted one.
            tensors = {k: v.clone() for k, v in load(data).items()}
        except Exception:  # a file from another vom version or a damaged disk: a miss, rewritten later
            path.unlink(missing_ok=True)
            return None
        _touch(path)
        return tensors

    def _save(self, path: Path, tensors: dict[str, Any]) -> None:
        from safetensors.torch import save

        data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
        with self.lock():
            _atomic_write_bytes(path, data)
        self._written_since_evict += len(data)
        if self._written_since_evict > self.max_bytes // 10:
            self.evict()

    def evict(self) -> int:
        """Delete least recently used files until the whole root is under the cap; returns bytes freed."""
        self._written_since_evict = 0
        return evict(self.root, self.max_bytes)


# -- whole-cache operations (``vom cache``) ----------------------------------------------------------

@contextlib.contextmanager
def _root_lock(root: Path) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock = FileLock(str(root / LOCK_NAME), timeout=_LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:
        raise VomError(f"cache {root} is locked by another process for more than {_LOCK_TIMEOUT_S:.0f} s; "
                       f"is a `vom cache clear` hanging?") from None
    try:
        yield
    finally:
        lock.release()


def _entry_files(root: Path) -> Iterator[os.DirEntry]:
    for shot in os.scandir(root):
        if not shot.is_dir():
            continue
        for sub in ("keys", "steps"):
            try:
                yield from (e for e in os.scandir(os.path.join(shot.path, sub)) if e.is_file())
            except FileNotFoundError:
                continue


def evict(root: str | os.PathLike, max_bytes: int) -> int:
    root = Path(root)
    if not root.is_dir():
        return 0
    with _root_lock(root):
        files = []
        for e in _entry_files(root):
            try:
                st = e.stat()
            except FileNotFoundError:
                continue
            files.append((st.st_mtime, st.st_size, e.path))
        total = sum(f[1] for f in files)
        freed = 0
        for _, size, path in sorted(files):
            if total - freed <= max_bytes:
                break
            try:
                os.unlink(path)
                freed += size
            except FileNotFoundError:
                pass
        return freed


def cache_info(root: str | os.PathLike) -> list[CacheEntryStats]:
    """One line per shot folder under ``root``: plate, number of files, bytes, last use."""
    root = Path(root)
    out: list[CacheEntryStats] = []
    if not root.is_dir():
        return out
    for shot in sorted(p for p in root.iterdir() if p.is_dir()):
        files = size = 0
        last = 0.0
        for sub in ("keys", "steps"):
            d = shot / sub
            if not d.is_dir():
                continue
            for e in os.scandir(d):
                try:
                    st = e.stat()
                except FileNotFoundError:
                    continue
                files += 1
                size += st.st_size
                last = max(last, st.st_mtime)
        plate = ""
        try:
            plate = json.loads((shot / "shot.json").read_text()).get("plate", "")
        except (OSError, ValueError):
            pass
        out.append(CacheEntryStats(shot.name, plate, files, size, last or shot.stat().st_mtime))
    return out


def clear(root: str | os.PathLike, *, older_than_days: float | None = None) -> tuple[int, int]:
    """Delete cache entries (all, or those not used for ``older_than_days``); returns (files, bytes) freed."""
    root = Path(root)
    if not root.is_dir():
        return 0, 0
    cutoff = time.time() - older_than_days * 86400 if older_than_days is not None else None
    files = freed = 0
    with _root_lock(root):
        for e in list(_entry_files(root)):
            try:
                st = e.stat()
                if cutoff is not None and st.st_mtime >= cutoff:
                    continue
                os.unlink(e.path)
            except FileNotFoundError:
                continue
            files += 1
            freed += st.st_size
        # Shot folders left with no entry go too (their shot.json alone is noise).
        for shot in [p for p in root.iterdir() if p.is_dir()]:
            if not any(any((shot / sub).iterdir()) for sub in ("keys", "steps") if (shot / sub).is_dir()):
                shutil.rmtree(shot, ignore_errors=True)
    return files, freed
