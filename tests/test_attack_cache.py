"""Attacks on and through the per-shot cache: it touches only what vom wrote, and no cache state can fail
a render or change one pixel of it.

Every render here is compared with a clean render of the same shot (fresh cache): equal pixels, and at
most one warning line saying what the cache did.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save
from test_runner_render import make_shot_dir, outputs, read_alpha

from vom_plugin.cli import main
from vom_plugin.engine import cache as vc
from vom_plugin.engine.runner import render
from vom_plugin.engine.shot import Shot
from vom_plugin.errors import InputError

N = 8


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shot_dir(tmp_path_factory.mktemp("attack_cache"))


def _shot(root: Path, out: Path, cache: Path, **kw: object) -> Shot:
    fields = {"plate": str(root / "plate" / "p.####.exr"), "keyframes": {1: str(root / "roto" / "r.0001.exr")},
              "out": str(out / "a.####.exr"), "model": str(root / "model.safetensors"), "device": "cpu",
              "working_size": 128, "cache": str(cache), **kw}
    return Shot(**fields)


@pytest.fixture(scope="module")
def clean(root: Path) -> dict[str, np.ndarray]:
    """A render of frames 1-N on a fresh cache (root/cache_ref): the pixels every attack must reproduce."""
    r = render(_shot(root, root / "ref", root / "cache_ref"))
    assert r.frames == list(range(1, N + 1)) and not r.warnings
    return outputs(root / "ref")


def _cache_copy(root: Path, tmp: Path) -> Path:
    dst = tmp / "cache"
    shutil.copytree(root / "cache_ref", dst)
    return dst


def _shot_dir(cache: Path) -> Path:
    return next(p for p in cache.iterdir() if p.name.startswith("plate_p-"))


def _files(cache: Path, kind: str) -> list[Path]:
    shot_dir = _shot_dir(cache)
    if kind == "keys":
        return sorted((shot_dir / "keys").glob("*.safetensors"))
    return sorted((shot_dir / "steps").glob(f"*.{kind}.safetensors"))


def _header_end(data: bytes) -> int:
    return 8 + int.from_bytes(data[:8], "little")


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])


def _garbage(p: Path) -> None:
    p.write_bytes(os.urandom(p.stat().st_size))


def _flip(p: Path) -> None:
    """One byte of tensor data flipped, the header intact: the file still loads as safetensors."""
    data = bytearray(p.read_bytes())
    start = _header_end(data)
    data[start + (len(data) - start) // 2] ^= 0x40
    p.write_bytes(bytes(data))


def _forge(p: Path) -> None:
    """A well-formed safetensors file with the same tensor names and shapes, all ones: the matte an
    attacker with write access to a shared cache would set."""
    from safetensors.torch import load

    tensors = load(p.read_bytes())
    p.write_bytes(save({k: torch.ones_like(v) for k, v in tensors.items()}))


def _swap(files: list[Path]) -> None:
    """Entries of other steps, valid in themselves, moved under each other's names."""
    data = [f.read_bytes() for f in files]
    for f, d in zip(files, data[1:] + data[:1], strict=True):
        f.write_bytes(d)


def _nested(p: Path) -> None:
    """A header of 5000 nested JSON arrays: Python's json parser recurses, and its RecursionError, not a ValueError,
    was a traceback of every render of the shot, `vom cache info` and `vom cache clear` (QA)."""
    header = b"[" * 5000 + b"]" * 5000
    p.write_bytes(len(header).to_bytes(8, "little") + header)


DAMAGES: dict[str, Callable[[Path], None]] = {"truncated": _truncate, "garbage": _garbage,
                                               "flipped": _flip, "forged": _forge, "nested": _nested}


def _prepare(root: Path, tmp: Path, kind: str) -> Path:
    """A cache in which the render must read entries of ``kind``."""
    if kind == "state":  # a chunk 1-4 leaves the memory state the full render resumes from
        cache = tmp / "cache"
        render(_shot(root, tmp / "chunk", cache, frames="1-4"))
        return cache
    cache = _cache_copy(root, tmp)
    if kind in ("keys", "affinity"):  # the steps must be recomputed, from cached keys and affinities
        for f in _files(cache, "alpha") + _files(cache, "state"):
            f.unlink()
    return cache


def _assert_clean(r: object, out: Path, clean: dict[str, np.ndarray]) -> None:
    got = outputs(out)
    assert got.keys() == clean.keys()
    assert all(np.array_equal(got[k], clean[k]) for k in clean), "pixels differ from a clean render"


@pytest.mark.parametrize("damage", list(DAMAGES))
@pytest.mark.parametrize("kind", ["alpha", "state", "keys", "affinity"])
def test_a_damaged_entry_is_a_miss_and_the_pixels_equal_a_clean_render(
        root: Path, clean: dict[str, np.ndarray], tmp_path: Path, kind: str, damage: str) -> None:
    cache = _prepare(root, tmp_path, kind)
    victims = _files(cache, kind)
    assert victims
    for f in victims:
        DAMAGES[damage](f)
    r = render(_shot(root, tmp_path / "out", cache))
    _assert_clean(r, tmp_path / "out", clean)
    assert len(r.warnings) == 1 and "damaged" in r.warnings[0], r.warnings
    # the bad entries were dropped and recomputed: the next render reads them back, without a warning
    again = render(_shot(root, tmp_path / "again", cache))
    _assert_clean(again, tmp_path / "again", clean)
    assert not again.warnings and again.cache["steps_computed"] == 0


def test_an_entry_grown_far_beyond_its_header_is_dropped_unread(root: Path, clean: dict[str, np.ndarray],
                                                                tmp_path: Path) -> None:
    """An entry extended to a terabyte (sparse: no disk): it was read whole, MemoryError, exit 1 on every render
    until `vom cache clear`. Its size is checked against its header first."""
    cache = _prepare(root, tmp_path, "alpha")
    victim = _files(cache, "alpha")[0]
    try:
        os.truncate(victim, 1 << 40)
    except OSError as e:  # a file system that holds no sparse terabyte
        pytest.skip(f"cannot grow a sparse file here: {e}")
    r = render(_shot(root, tmp_path / "out", cache))
    _assert_clean(r, tmp_path / "out", clean)
    assert len(r.warnings) == 1 and "damaged" in r.warnings[0] and "where its header describes" in r.warnings[0]


def test_a_folder_at_an_entrys_path_leaves_that_entry_uncached_and_the_rest_cached(
        root: Path, clean: dict[str, np.ndarray], tmp_path: Path) -> None:
    """It turned the cache off for the rest of every render ("Is a directory", naming a temporary)."""
    cache = _prepare(root, tmp_path, "keys")
    folder = _files(cache, "keys")[0]
    folder.unlink()
    folder.mkdir()
    r = render(_shot(root, tmp_path / "out", cache))
    _assert_clean(r, tmp_path / "out", clean)
    assert len(r.warnings) == 1 and f"a folder vom did not make is at its path (first: {folder})" in r.warnings[0]
    assert folder.is_dir() and r.cache["keys_hit"] == N - 1
    again = render(_shot(root, tmp_path / "again", cache))  # the steps were cached: the cache stayed on
    _assert_clean(again, tmp_path / "again", clean)
    assert not again.warnings and again.cache["steps_computed"] == 0


@pytest.mark.parametrize("kind", ["alpha", "keys", "affinity"])
def test_valid_entries_under_each_others_names_are_a_miss(root: Path, clean: dict[str, np.ndarray],
                                                         tmp_path: Path, kind: str) -> None:
    cache = _prepare(root, tmp_path, kind)
    _swap(_files(cache, kind))
    r = render(_shot(root, tmp_path / "out", cache))
    _assert_clean(r, tmp_path / "out", clean)
    assert len(r.warnings) == 1 and "damaged" in r.warnings[0]


def _shrunk(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same names and dtypes, every tensor cut to a corner: loads, then does not fit the step."""
    return {k: v[(slice(None),) * (v.dim() - 1) + (slice(0, max(1, v.shape[-1] // 2)),)].clone() if v.dim() else v
            for k, v in tensors.items()}


ALIEN: dict[str, tuple[str, Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]]] = {
    "alpha-size": ("alpha", lambda t: {"alpha": torch.ones(3, 5)}),
    "state-empty-bank": ("state", lambda t: {"t": torch.tensor(4)}),
    "keys-missing-levels": ("keys", lambda t: {"f16": t["f16"]}),
    "keys-shapes": ("keys", _shrunk),
    # the session-20 layout (half-precision features under the same names), and one scale for a whole tensor
    "keys-half": ("keys", lambda t: {n: (t[n].float() * t[n + "_scale"] + t[n + "_lo"]).half() for n in
                                     ("f4", "f8", "f16")}),
    "keys-one-scale": ("keys", lambda t: {**t, "f8_scale": t["f8_scale"].amax().reshape(1, 1, 1, 1)}),
    "affinity-missing": ("affinity", lambda t: {"w16": torch.ones(2)}),
    "affinity-shapes": ("affinity", _shrunk),
    # the matches fit; CFAR's 1/16 weights are laid out h x w the wrong way round (as many values: a reshape
    # alone would take them), or cover fewer frames than the window
    "affinity-cfar-transposed": ("affinity", lambda t: {**t, **{n: t[n].transpose(-1, -2).contiguous() for n in (
        "cfar16", "cfar16_scale")}}),
    "affinity-cfar-frames": ("affinity", lambda t: {**t, "cfar16": t["cfar16"][:, :25].contiguous()}),
    # the same at 1/4, which the cache keeps too (layout 5)
    "affinity-cfar4-transposed": ("affinity", lambda t: {**t, **{n: t[n].transpose(-1, -2).contiguous() for n in (
        "cfar4", "cfar4_scale")}}),
    "affinity-cfar4-frames": ("affinity", lambda t: {**t, "cfar4": t["cfar4"][:, :9].contiguous(),
                                                     "cfar4_scale": t["cfar4_scale"]}),
}


@pytest.mark.parametrize("variant", list(ALIEN))
def test_a_verified_entry_of_another_layout_is_a_miss(root: Path, clean: dict[str, np.ndarray], tmp_path: Path,
                                                      variant: str) -> None:
    """Entries with a valid digest but tensors this version does not read (another vom, or a forger who
    knows the format): an alpha of another size, a state with an empty memory bank, keys or affinities
    missing tensors or of other shapes (these load, then fail inside the step)."""
    from vom_plugin.engine.cache_entry import decode, encode

    kind, alien = ALIEN[variant]
    cache = _prepare(root, tmp_path, kind)
    for f in _files(cache, kind):
        address = f"{f.parent.name}/{f.name}"
        f.write_bytes(encode(address, alien(decode(address, f.read_bytes()))))
    r = render(_shot(root, tmp_path / "out", cache))
    _assert_clean(r, tmp_path / "out", clean)
    assert len(r.warnings) == 1 and "damaged" in r.warnings[0], r.warnings


def test_a_folder_where_an_entry_should_be_never_fails_a_render(root: Path, clean: dict[str, np.ndarray],
                                                               tmp_path: Path) -> None:
    cache = _cache_copy(root, tmp_path)
    victims = _files(cache, "alpha")
    for f in victims:
        f.unlink()
        f.mkdir()
        (f / "inside.txt").write_text("someone's")
    r = render(_shot(root, tmp_path / "out", cache))
    _assert_clean(r, tmp_path / "out", clean)
    assert len(r.warnings) == 1 and "not cached: a folder vom did not make is at their paths" in r.warnings[0], \
        r.warnings
    assert all((f / "inside.txt").read_text() == "someone's" for f in victims)


def test_flipped_alpha_through_the_cli_exits_0_with_one_warning(root: Path, clean: dict[str, np.ndarray],
                                                                 tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cache = _cache_copy(root, tmp_path)
    for f in _files(cache, "alpha"):
        _flip(f)
    rc = main(["render", "--plate", str(root / "plate" / "p.####.exr"), "--roto", str(root / "roto" / "r.0001.exr"),
               "--out", str(tmp_path / "out" / "a.####.exr"), "--model", str(root / "model.safetensors"),
               "--cache", str(cache), "--working-size", "128", "--device", "cpu", "--progress", "none"])
    err = capsys.readouterr().err
    assert rc == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("vom render: warning:")]
    assert len(warnings) == 1 and "damaged entry dropped and recomputed" in warnings[0], err
    _assert_clean(None, tmp_path / "out", clean)


def test_a_keyed_cache_refuses_entries_written_without_the_key(root: Path, clean: dict[str, np.ndarray],
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = _cache_copy(root, tmp_path)  # written without VOM_CACHE_KEY: as forged as any for a keyed farm
    monkeypatch.setenv("VOM_CACHE_KEY", "site secret")
    r = render(_shot(root, tmp_path / "out", cache))
    _assert_clean(r, tmp_path / "out", clean)
    assert r.cache["steps_cached"] == 0 and len(r.warnings) == 1, r.warnings
    assert "written without VOM_CACHE_KEY, which is set here" in r.warnings[0]
    assert "the same VOM_CACHE_KEY" in r.warnings[0] and "damaged" not in r.warnings[0]
    assert render(_shot(root, tmp_path / "out", cache)).cache["steps_computed"] == 0


@pytest.mark.parametrize("writer, reader, says", [
    ("site secret", "another secret", "signed with another VOM_CACHE_KEY"),
    ("site secret", None, "signed with a VOM_CACHE_KEY, which is not set here"),
])
def test_an_entry_under_another_key_is_a_miss_kept_for_its_workers(
        root: Path, clean: dict[str, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        writer: str, reader: str | None, says: str) -> None:
    """A worker with another key (or none) recomputes and says why; it does not delete the entries that the
    workers with the right key can use (a damaged entry is deleted)."""
    monkeypatch.setenv("VOM_CACHE_KEY", writer)
    cache = tmp_path / "cache"
    render(_shot(root, tmp_path / "first", cache))
    entry = _files(cache, "alpha")[0]
    before = entry.read_bytes()
    if reader is None:
        monkeypatch.delenv("VOM_CACHE_KEY")
    else:
        monkeypatch.setenv("VOM_CACHE_KEY", reader)
    from vom_plugin.engine.cache import ShotCache
    from vom_plugin.engine.cache_entry import OtherKey, decode

    with pytest.raises(OtherKey, match=says):
        decode(f"{entry.parent.name}/{entry.name}", before)
    store = ShotCache(cache, str(root / "plate" / "p.####.exr"))
    assert store._load(entry) is None and entry.read_bytes() == before  # a miss, the file untouched
    assert store.foreign and not store.dropped
    r = render(_shot(root, tmp_path / "out", cache))
    _assert_clean(r, tmp_path / "out", clean)
    assert r.cache["steps_cached"] == 0 and len(r.warnings) == 1 and says in r.warnings[0], r.warnings
    assert entry.read_bytes() == before  # not written over by the recomputation either


def test_an_entry_claiming_the_key_without_its_digest_is_damaged(
        root: Path, clean: dict[str, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The header's key field only names a key: whoever lacks the secret cannot forge an entry by copying it."""
    from safetensors.torch import load, save

    from vom_plugin.engine.cache_entry import key_id, read_header

    cache = _cache_copy(root, tmp_path)  # written without a key
    monkeypatch.setenv("VOM_CACHE_KEY", "site secret")
    for f in _files(cache, "alpha"):
        data = f.read_bytes()
        meta = dict(read_header(data)["__metadata__"], key=key_id())
        f.write_bytes(save(load(data), metadata=meta))
    r = render(_shot(root, tmp_path / "out", cache))
    _assert_clean(r, tmp_path / "out", clean)
    assert any("damaged" in w and "digest does not match" in w for w in r.warnings), r.warnings


# -- a cache that cannot be written -----------------------------------------------------------------

@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_an_unwritable_cache_on_a_new_shot_renders_uncached(root: Path, clean: dict[str, np.ndarray], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str], code: int) -> None:
    def fail(path: Path, data: bytes, **kw: Any) -> None:
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(vc, "_atomic_write_bytes", fail)
    rc = main(["render", "--plate", str(root / "plate" / "p.####.exr"), "--roto", str(root / "roto" / "r.0001.exr"),
               "--out", str(tmp_path / "out" / "a.####.exr"), "--model", str(root / "model.safetensors"),
               "--cache", str(tmp_path / "new_cache"), "--working-size", "128", "--device", "cpu",
               "--progress", "none"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert err.count("warning:") == 1 and "rendering without the cache" in err and os.strerror(code) in err
    _assert_clean(None, tmp_path / "out", clean)


def test_a_cache_filling_up_during_the_render_warns_once(root: Path, clean: dict[str, np.ndarray], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    render(_shot(root, tmp_path / "first", cache, frames="1-2"))  # the shot's folders exist already

    write = vc._atomic_write_bytes

    def full(path: Path, data: bytes, **kw: object) -> None:  # the disk fills after the shot folder was made
        if path.parent.name not in ("keys", "steps"):
            return write(path, data, **kw)
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(vc, "_atomic_write_bytes", full)
    r = render(_shot(root, tmp_path / "out", cache))
    _assert_clean(r, tmp_path / "out", clean)
    assert len(r.warnings) == 1 and r.warnings[0].startswith(  # which disk filled: the cache folder is named
        f"cache {cache} not written for the rest of the render (what it holds is still read): [Errno 28] No space "
        f"left on device"), r.warnings
    assert r.cache["steps_cached"] == 2  # frames 1-2, which the first render left, read back all the same


def test_a_cache_vanishing_during_the_render(root: Path, clean: dict[str, np.ndarray], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fired = []

    def vanish(event: dict) -> None:
        if event.get("event") == "frame" and event["done"] == 2:
            fired.append(cache.is_dir())  # the cache was there to vanish
            # the render's writer thread may add files while the folder goes (its queue drains while this
            # callback holds the render up): keep deleting until it is gone once (the writer may make it again
            # right after: checking a second time raced with it)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                shutil.rmtree(cache, ignore_errors=True)
                if not cache.exists():
                    break
                time.sleep(0.001)
            else:
                raise AssertionError(f"{cache} could not be removed in 30 s")

    r = render(_shot(root, tmp_path / "out", cache), progress=vanish)
    assert fired == [True]
    _assert_clean(r, tmp_path / "out", clean)
    assert len(r.warnings) <= 1 and all("cache" in w for w in r.warnings), r.warnings


def test_a_stuck_lock_slows_but_never_fails_a_render(root: Path, clean: dict[str, np.ndarray], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from filelock import FileLock

    cache = tmp_path / "cache"
    render(_shot(root, tmp_path / "first", cache, frames="1"))
    monkeypatch.setattr(vc, "_LOCK_TIMEOUT_S", 0.05)
    held = FileLock(str(cache / vc.LOCK_NAME))
    held.acquire()
    try:
        r = render(_shot(root, tmp_path / "out", cache))
    finally:
        held.release()
    _assert_clean(r, tmp_path / "out", clean)
    assert len(r.warnings) == 1 and "locked" in r.warnings[0]


def test_the_lock_of_a_shared_cache_is_made_for_the_umask_and_another_users_read_only_one_still_locks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A studio's shared cache (group folder, umask 002): the lock file is group-writable as the umask says; a lock
    another user made under umask 022 (read-only to us) is locked through a read-only descriptor. Opened for
    writing, it turned every render of the other users uncached ("cannot be written") and their `vom cache clear`
    into exit 2."""
    import fcntl

    cache = tmp_path / "cache"
    cache.mkdir()
    old = os.umask(0o002)
    try:
        with vc._root_lock(cache):
            pass
    finally:
        os.umask(old)
    lock = cache / vc.LOCK_NAME
    assert stat.S_IMODE(lock.stat().st_mode) == 0o664
    real_open = os.open

    def open_as_another_user(path: Any, flags: int, *args: Any) -> int:  # root's open is never refused: made here
        if Path(path) == lock and flags & (os.O_WRONLY | os.O_RDWR):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", open_as_another_user)
    monkeypatch.setattr(vc, "_LOCK_TIMEOUT_S", 0.2)
    with vc._root_lock(cache):  # taken through a read-only descriptor: it excludes another holder
        with open(lock, "rb") as other:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(lock, "rb") as other:  # and it is released
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(vc.VomError, match="locked by another process"):
            with vc._root_lock(cache):
                pass


def test_another_users_unreadable_entries_are_a_miss_and_clear_says_it_cannot_tell_them(
        root: Path, clean: dict[str, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries another user made under umask 077 in a shared cache: a render took them for damaged ("dropped")
    and deleted them; `vom cache clear` said "vom did not write" them and exited 0. Now: a miss, recomputed, said
    as unreadable; clear names them as not removed (exit 2)."""
    cache = _cache_copy(root, tmp_path)
    for p in _files(cache, "alpha") + _files(cache, "state"):  # the steps computed again: the key entries are read
        p.unlink()
    theirs = _files(cache, "keys")[:2]
    real_open = os.open

    def open_as_another_user(path: Any, flags: int, *args: Any) -> int:  # root's open is never refused: made here
        if str(path) in {str(p) for p in theirs}:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", open_as_another_user)
    r = render(_shot(root, tmp_path / "out", cache))
    _assert_clean(r, tmp_path / "out", clean)
    assert not any("damaged" in w for w in r.warnings), r.warnings
    assert [w for w in r.warnings if "this user may not read" in w], r.warnings
    assert all(p.exists() for p in theirs)
    report = vc.clear(cache)
    assert sorted(p for p, _ in report.failed) == sorted(str(p) for p in theirs)
    assert all("cannot be read by this user" in why for _, why in report.failed)
    assert not report.left_alone and all(p.exists() for p in theirs)


def test_another_users_unreadable_shot_folder_and_cache_are_named_not_hidden(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A teammate's shot folder made under umask 077 in a shared cache: `vom cache info` said "0 shots, 0 B" and
    named nothing, `vom cache clear` said vom did not write it (QA); an unreadable cache root said "0 shots" too."""
    from vom_plugin.cli import main

    cache = tmp_path / "cache"
    theirs = cache / "plate_sh010-0123456789ab"
    (theirs / "steps").mkdir(parents=True)
    (cache / vc.LOCK_NAME).write_bytes(b"")  # a cache vom has used
    real_access, real_scandir = os.access, os.scandir
    hidden = {str(theirs)}

    def access(path: Any, mode: int, *a: Any, **k: Any) -> bool:  # root may read anything: another user made here
        return False if str(path) in hidden else real_access(path, mode, *a, **k)

    def scandir(path: Any = ".") -> Any:
        if str(path) in hidden:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(vc.os, "scandir", scandir)
    assert vc.unreadable_shot_folders(cache) == [theirs]
    assert main(["cache", "info", "--cache", str(cache)]) == 0
    assert "plate_sh010-0123456789ab  not used: this user cannot read it (another user's" in capsys.readouterr().out
    report = vc.clear(cache)
    assert report.failed == [(str(theirs), "a shot folder this user cannot read (another user's)")]
    assert not report.left_alone and theirs.is_dir()
    hidden.add(str(cache))
    for command in ("info", "clear"):
        assert main(["cache", command, "--cache", str(cache)]) == 2
        assert "cannot be read by this user" in capsys.readouterr().err


# -- links and folders vom did not make -------------------------------------------------------------

def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_lock_that_is_a_link_never_touches_its_target(root: Path, clean: dict[str, np.ndarray],
                                                        tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("a week of notes")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / vc.LOCK_NAME).symlink_to(precious)
    r = render(_shot(root, tmp_path / "out", cache))
    _assert_clean(r, tmp_path / "out", clean)
    assert precious.read_text() == "a week of notes"
    assert len(r.warnings) == 1 and "symbolic link" in r.warnings[0]


@pytest.mark.parametrize("where", ["shot", "keys", "steps"])
def test_links_out_of_the_cache_are_never_followed(root: Path, clean: dict[str, np.ndarray], tmp_path: Path,
                                                   where: str) -> None:
    cache = _cache_copy(root, tmp_path)
    shot_dir = _shot_dir(cache)
    outside = tmp_path / "projects"
    shutil.copytree(shot_dir if where == "shot" else shot_dir / where, outside)
    (outside / "my_notes.txt").write_text("mine")
    before = _tree(outside)
    target = shot_dir if where == "shot" else shot_dir / where
    shutil.rmtree(target)
    target.symlink_to(outside, target_is_directory=True)
    r = render(_shot(root, tmp_path / "out", cache))
    _assert_clean(r, tmp_path / "out", clean)
    assert len(r.warnings) == 1 and "symbolic link" in r.warnings[0]
    assert main(["cache", "clear", "--cache", str(cache)]) == 0
    assert _tree(outside) == before  # neither the render nor clear wrote, read or deleted through the link


def test_a_folder_named_like_a_shot_but_not_made_by_vom_is_left_alone(root: Path, clean: dict[str, np.ndarray],
                                                                      tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    shot = _shot(root, tmp_path / "out", cache)
    theirs = cache / vc.shot_id(shot.plate)
    (theirs / "steps").mkdir(parents=True)
    (theirs / "steps" / "their_render.exr").write_bytes(b"not vom's")
    (theirs / "shot.json").write_text("{not json")
    before = _tree(theirs)
    r = render(shot)
    _assert_clean(r, tmp_path / "out", clean)
    assert len(r.warnings) == 1 and "vom did not make it" in r.warnings[0]
    assert main(["cache", "clear", "--cache", str(cache)]) == 0
    assert _tree(theirs) == before


def _plant(cache: Path, outside: Path) -> dict[str, Path]:
    """Files vom did not write, put where a careless user or another tool would put them."""
    shot_dir = _shot_dir(cache)
    plant = {
        "root file": cache / "README.txt",
        "root folder file": cache / "renders" / "beauty.0001.exr",
        "shot-like folder": cache / "sh010_plate-0123456789ab" / "steps" / ("f" * 32 + ".alpha.safetensors"),
        "in shot folder": shot_dir / "notes.txt",
        "in keys": shot_dir / "keys" / "todo.txt",
        "entry name, no marker": shot_dir / "keys" / f"1.{'a' * 32}.safetensors",
        "steps entry name, no marker": shot_dir / "steps" / f"{'b' * 32}.alpha.safetensors",
        "in steps": shot_dir / "steps" / "mine.safetensors",
    }
    for name, p in plant.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(save({"x": torch.ones(4)}) if p.suffix == ".safetensors" else name.encode())
    # a shot folder's name and a shot.json that is valid but names another folder: not vom's own marker
    other = cache / "sh030_plate-0123456789ab"
    (other / "steps").mkdir(parents=True)
    plant["marker of another folder"] = other / "shot.json"
    plant["marker of another folder"].write_text(json.dumps({"id": "sh031_plate-ba9876543210", "plate": "/p.exr"}))
    outside.mkdir()
    (outside / "keep.txt").write_text("outside")
    (shot_dir / "steps" / f"{'c' * 32}.state.safetensors").symlink_to(outside / "keep.txt")
    (cache / "link_to_outside").symlink_to(outside, target_is_directory=True)
    return plant


def test_clear_removes_only_what_vom_wrote_and_says_so(root: Path, clean: dict[str, np.ndarray], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    cache = _cache_copy(root, tmp_path)
    vom_entries = [p for p in cache.rglob("*.safetensors")]
    plant = _plant(cache, tmp_path / "outside")
    # --older-than: every entry was used just now, so nothing at all goes
    assert main(["cache", "clear", "--cache", str(cache), "--older-than", "30"]) == 0
    out = capsys.readouterr().out
    assert "cleared 0 entries not used for 30 days" in out
    assert all(p.exists() for p in vom_entries) and all(p.exists() for p in plant.values())
    # all: exactly vom's entries go, the count printed is the count removed, the rest is listed as left alone
    assert main(["cache", "clear", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert f"cleared {len(vom_entries)} entries" in out and "left alone" in out
    assert not any(p.exists() for p in vom_entries)
    assert all(p.exists() for p in plant.values()), [k for k, p in plant.items() if not p.exists()]
    assert (tmp_path / "outside" / "keep.txt").read_text() == "outside"
    assert (cache / "link_to_outside").is_symlink()


def test_clear_removes_a_killed_writers_temporaries_but_not_a_file_named_like_one(
        root: Path, clean: dict[str, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = _cache_copy(root, tmp_path)
    keys = _shot_dir(cache) / "keys"
    entry = next(keys.iterdir())
    hour_ago = time.time() - 2 * 3600
    killed = {  # what a writer of ours left when it was killed: nothing yet, or an entry's marked start
        "empty": keys / f".{entry.name}.{'1' * 32}.tmp",
        "begun": keys / f".{entry.name}.{'2' * 32}.tmp",
    }
    killed["empty"].write_bytes(b"")
    killed["begun"].write_bytes(entry.read_bytes()[: len(entry.read_bytes()) // 2])
    users = keys / f".{entry.name}.{'3' * 32}.tmp"  # named alike, holding something else
    users.write_bytes(b"my notes on the plate")
    for p in [*killed.values(), users]:
        os.utime(p, (hour_ago, hour_ago))
    live = keys / f".{entry.name}.{'4' * 32}.tmp"  # a writer at work now: neither removed nor reported
    begun = entry.read_bytes()[:100]
    live.write_bytes(begun)
    assert main(["cache", "clear", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert str(users) in out and str(live) not in out  # the user's file listed as left alone
    assert not any(p.exists() for p in killed.values())
    assert live.read_bytes() == begun
    assert users.read_bytes() == b"my notes on the plate"


def test_eviction_during_a_render_deletes_only_vom_entries(root: Path, clean: dict[str, np.ndarray], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cache = _cache_copy(root, tmp_path)
    for f in _files(cache, "alpha"):
        f.unlink()  # so the render computes and writes, and evicts as it writes
    plant = _plant(cache, tmp_path / "outside")
    monkeypatch.setenv("VOM_CACHE_MAX_GB", str(4096 / 2**30))  # 4 kB: every write evicts
    r = render(_shot(root, tmp_path / "out", cache))
    _assert_clean(r, tmp_path / "out", clean)
    assert all(p.exists() for p in plant.values()), [k for k, p in plant.items() if not p.exists()]
    assert (tmp_path / "outside" / "keep.txt").read_text() == "outside"
    shot_dir = _shot_dir(cache)
    left = [p for p in shot_dir.rglob("*.safetensors") if vc.file_is_marked(p)]
    assert sum(p.stat().st_size for p in left) <= 4096 * 2  # vom's own entries were evicted
    # and the user is told, once (a QA pass: a cap smaller than one shot's cache was found out by renders that
    # read nothing back)
    capped = [w for w in r.warnings if "size cap" in w]
    assert len(capped) == 1 and capped[0].startswith("cache: the size cap (3.81e-06 GiB, VOM_CACHE_MAX_GB) deleted ")
    assert "of this shot as it rendered: the next render computes them again; raise the cap" in capped[0]


def test_info_counts_only_what_vom_wrote(root: Path, clean: dict[str, np.ndarray], tmp_path: Path) -> None:
    cache = _cache_copy(root, tmp_path)
    n = len(list(cache.rglob("*.safetensors")))
    _plant(cache, tmp_path / "outside")
    [s] = vc.cache_info(cache)
    assert s.files == n and s.plate.endswith("p.####.exr")


def test_a_clean_cache_still_hits(root: Path, clean: dict[str, np.ndarray], tmp_path: Path) -> None:
    cache = _cache_copy(root, tmp_path)
    r = render(_shot(root, tmp_path / "out", cache))
    assert r.cache["steps_cached"] == N and r.cache["steps_computed"] == 0 and not r.warnings
    assert all(np.array_equal(read_alpha(p), clean[p.name]) for p in r.paths)


def test_clear_refuses_a_nan_age_and_a_cache_that_is_not_a_folder(root: Path, clean: dict[str, np.ndarray],
                                                                   tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`--older-than nan` compared false with every age and cleared everything; a mistyped --cache read as an
    empty cache, "cleared"."""
    cache = _cache_copy(root, tmp_path)
    entries = list(cache.rglob("*.safetensors"))
    for age in ("nan", "inf", "-1"):
        assert main(["cache", "clear", "--cache", str(cache), "--older-than", age]) == 2
        assert "expected a number of days >= 0" in capsys.readouterr().err
    assert all(p.exists() for p in entries)
    assert main(["cache", "clear", "--cache", str(cache), "--older-than", "-0"]) == 0  # 0 days, not "-0" (QA)
    assert "not used for 0 days" in capsys.readouterr().out
    assert main(["cache", "clear", "--cache", str(cache), "--older-than", "1000000"]) == 0  # not "1e+06 days"
    assert "not used for 1000000 days" in capsys.readouterr().out
    assert main(["cache", "clear", "--cache", str(cache), "--older-than", "0.25"]) == 0
    assert "not used for 0.25 days" in capsys.readouterr().out
    (tmp_path / "afile").write_text("mine")
    for action in ("clear", "info"):
        assert main(["cache", action, "--cache", str(tmp_path / "nowhere")]) == 2
        assert f"--cache {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err
        assert main(["cache", action, "--cache", str(tmp_path / "afile")]) == 2
        assert "is not a folder" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "mine"


def test_clear_names_the_plate_of_a_shot_folder_it_removes(root: Path, clean: dict[str, np.ndarray], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    cache = _cache_copy(root, tmp_path)
    assert main(["cache", "clear", "--cache", str(cache)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "shot folder removed" in line]
    assert lines and all(line.rstrip().endswith("p.####.exr") for line in lines), lines


def test_info_names_a_shot_folder_whose_marker_is_damaged(root: Path, clean: dict[str, np.ndarray], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A damaged shot.json: vom cannot tell the folder from a user's, so renders go uncached and clear leaves it;
    `cache info` said "0 shots, 0 B" over 21 MiB. It now names the folder and what to do."""
    cache = _cache_copy(root, tmp_path)
    [shot] = [p for p in cache.iterdir() if (p / "shot.json").is_file()]
    (shot / "shot.json").write_text("{garbage")
    n = len(list(cache.rglob("*.safetensors")))
    assert main(["cache", "info", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "0 shots" in out and f"{shot.name}  not used: its shot.json is missing or damaged" in out, out
    assert f"remove {shot} to cache that shot again" in out
    assert main(["cache", "info", "--cache", str(cache), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unreadable"] == [str(shot)]
    assert main(["cache", "clear", "--cache", str(cache)]) == 0  # still never deleted
    assert len(list(cache.rglob("*.safetensors"))) == n


def test_info_and_clear_take_entries_and_markers_of_nested_json(root: Path, clean: dict[str, np.ndarray],
                                                               tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """QA: an entry or a shot.json of [[[...]]] (Python's json recurses) was a traceback of info and clear."""
    cache = _cache_copy(root, tmp_path)
    entry = _files(cache, "alpha")[0]
    _nested(entry)
    assert main(["cache", "info", "--cache", str(cache)]) == 0
    assert "1 shot" in capsys.readouterr().out
    assert main(["cache", "clear", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    # not provably vom's (no entry header): left, and said, as any file of the user's in a shot folder
    assert entry.exists() and "left alone" in out and not list(cache.rglob("*.alpha.safetensors"))[1:], out
    cache = _cache_copy(root, tmp_path / "second")
    [shot] = [p for p in cache.iterdir() if (p / "shot.json").is_file()]
    (shot / "shot.json").write_text("[" * 5000 + "]" * 5000)
    n = len(list(cache.rglob("*.safetensors")))
    assert main(["cache", "info", "--cache", str(cache)]) == 0
    assert "its shot.json is missing or damaged" in capsys.readouterr().out
    assert main(["cache", "clear", "--cache", str(cache)]) == 0  # not vom's to tell: never deleted
    assert len(list(cache.rglob("*.safetensors"))) == n


def test_clear_on_a_folder_without_a_cache_leaves_it_as_it_was(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`vom cache clear --cache ~/work` by mistake: nothing deleted, and no lock file left among the user's."""
    home = tmp_path / "work"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    (home / "0123456789abcdef").mkdir()  # named like a shot folder, not vom's
    assert main(["cache", "clear", "--cache", str(home)]) == 0
    assert "left alone: 2 files or folders vom did not write" in capsys.readouterr().out
    assert sorted(p.name for p in home.iterdir()) == ["0123456789abcdef", "notes.txt"]


def test_clear_says_what_it_could_not_remove_and_a_read_only_cache(root: Path, clean: dict[str, np.ndarray],
                                                                   tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry clear may not delete (another user's in a shared cache, an immutable file) stopped it half-way with a
    traceback and exit 1, saying nothing of what it had removed; a read-only cache failed on its lock the same way."""
    cache = _cache_copy(root, tmp_path)
    entries = sorted(cache.rglob("*.safetensors"))
    stuck = entries[len(entries) // 2]
    real_unlink = os.unlink

    def unlink(path: Any, *a: Any, **k: Any) -> None:
        if Path(path) == stuck:
            raise PermissionError(1, "Operation not permitted", str(path))
        real_unlink(path, *a, **k)

    monkeypatch.setattr(vc.os, "unlink", unlink)
    assert main(["cache", "clear", "--cache", str(cache)]) == 2
    out, err = capsys.readouterr()
    assert f"cleared {len(entries) - 1} entries" in out
    assert f"1 entry could not be removed (e.g. {stuck}: Operation not permitted)" in err
    assert [p for p in cache.rglob("*.safetensors")] == [stuck]
    monkeypatch.undo()

    def read_only(_root: Path) -> Any:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(vc, "_root_lock", read_only)
    assert main(["cache", "clear", "--cache", str(cache)]) == 2
    assert f"cache {cache} cannot be cleared: its lock" in capsys.readouterr().err
    assert stuck.exists()


def test_a_cache_folder_from_the_environment_that_is_a_file_is_refused(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """VOM_CACHE_DIR naming a file read as an empty cache, "cleared 0 entries" (--cache was checked, it was not)."""
    (tmp_path / "afile").write_text("mine")
    monkeypatch.setenv("VOM_CACHE_DIR", str(tmp_path / "afile"))
    for action in ("clear", "info"):
        assert main(["cache", action]) == 2
        assert f"VOM_CACHE_DIR {tmp_path / 'afile'} is not a folder" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "mine"
    # a folder no render has made yet, or a mistyped one: said (QA: a farm's VOM_CACHE_DIR=/mnt/cahce was "cleared 0
    # entries", exit 0)
    monkeypatch.setenv("VOM_CACHE_DIR", str(tmp_path / "not_yet"))
    assert main(["cache", "info"]) == 2 and "not_yet does not exist" in capsys.readouterr().err
    # $SHOW in it read as in a shot file; an unset one refused (QA: a folder named "$NOPE" was made where vom ran)
    (tmp_path / "show_cache").mkdir()
    monkeypatch.setenv("SHOW_ROOT", str(tmp_path))
    monkeypatch.setenv("VOM_CACHE_DIR", "${SHOW_ROOT}/show_cache")
    assert main(["cache", "info"]) == 0 and f"cache {tmp_path / 'show_cache'}:" in capsys.readouterr().out
    monkeypatch.setenv("VOM_CACHE_DIR", "$NOPE_NOT_SET/x")
    monkeypatch.chdir(tmp_path)
    assert main(["cache", "info"]) == 2
    assert "VOM_CACHE_DIR '$NOPE_NOT_SET/x': $NOPE_NOT_SET is not set" in capsys.readouterr().err
    assert not (tmp_path / "$NOPE_NOT_SET").exists()


def test_progress_never_goes_back_when_a_damaged_prediction_is_computed_again(
        root: Path, clean: dict[str, np.ndarray], tmp_path: Path) -> None:
    """Predictions read back, then one damaged: the steps before it are computed again to rebuild the memory. The
    bar went backwards (steps_done 21 -> 15); now the work grows (steps_total) and the bar ends at 100%."""
    cache = _cache_copy(root, tmp_path)
    for f in _files(cache, "alpha")[::2]:
        _flip(f)
    events: list[dict] = []
    r = render(_shot(root, tmp_path / "out", cache), progress=events.append)
    _assert_clean(r, tmp_path / "out", clean)
    steps = [e for e in events if e["event"] in ("step", "frame")]
    done = [e["steps_done"] for e in steps]
    assert done == sorted(done), done
    assert steps[-1]["steps_done"] == steps[-1]["steps_total"] >= len(clean)  # some steps twice, when read back first


@pytest.mark.parametrize("name,value,needle", [
    ("VOM_TRACEBACK", "yes", "VOM_TRACEBACK 'yes': expected 1 (on) or 0 (off)"),
    ("VOM_ALLOW_FORK", "true", "VOM_ALLOW_FORK 'true': expected 1 (on) or 0 (off)"),
    ("VOM_CACHE_KEY", "   ", "VOM_CACHE_KEY is blank"),
])
def test_a_malformed_switch_or_a_blank_cache_key_is_refused_before_work(
        root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        name: str, value: str, needle: str) -> None:
    """`yes` was taken for off, silently; a key of spaces signed entries that every unkeyed render then recomputed."""
    monkeypatch.setenv(name, value)
    s = _shot(root, tmp_path / "out", tmp_path / "cache")
    rc = main(["render", "--plate", s.plate, "--roto", str(s.keyframes[1]), "--out", s.out, "--model", s.model,
               "--cache", str(s.cache), "--working-size", "128", "--device", "cpu", "--no-worker",
               "--progress", "none"])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err, err
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv(name, "0" if name != "VOM_CACHE_KEY" else "")
    assert main(["render", "--plate", s.plate, "--roto", str(s.keyframes[1]), "--out", s.out, "--model", s.model,
                 "--cache", str(s.cache), "--working-size", "128", "--device", "cpu", "--no-worker", "--frames", "1",
                 "--progress", "none"]) == 0


def test_a_cache_path_that_is_a_file_renders_uncached_and_says_it_is_not_a_folder(
        root: Path, clean: dict[str, np.ndarray], tmp_path: Path) -> None:
    """It said "cannot be written (File exists)" of a folder that is a file."""
    cache = tmp_path / "passwd"
    cache.write_text("root:x:0:0")
    r = render(_shot(root, tmp_path / "out", cache))
    _assert_clean(r, tmp_path / "out", clean)
    assert len(r.warnings) == 1 and f"cache folder '{cache}' is not a folder" in r.warnings[0], r.warnings
    assert cache.read_text() == "root:x:0:0"



def test_a_plate_mounted_under_another_root_finds_its_shot_folder(root: Path, clean: dict[str, np.ndarray],
                                                                  tmp_path: Path) -> None:
    """A farm's workers (and an artist's workstation) mount the plates under other roots. The shot's folder was
    named by a hash of the plate's path: a chunk on a machine that mounts it elsewhere found none of the state
    the chunk before it left, and propagated from the keyframe again (every chunk of a job a little longer)."""
    cache = tmp_path / "cache"
    mounts = []
    for name in ("mnt", "Volumes"):  # the same files under two roots, as two machines see a file server
        link = tmp_path / name / "proj"
        link.parent.mkdir()
        link.symlink_to(root, target_is_directory=True)
        mounts.append(link)
    half = N // 2
    first = render(_shot(mounts[0], tmp_path / "out", cache, frames=f"1-{half}"))
    assert first.cache["steps_computed"] == half
    second = render(_shot(mounts[1], tmp_path / "out", cache, frames=f"{half + 1}-{N}"))
    assert second.cache["steps_computed"] == N - half, second.cache  # N before: from the keyframe again
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [_shot_dir(cache).name]
    assert all(np.array_equal(read_alpha(p), clean[p.name]) for p in (tmp_path / "out").iterdir())
    assert len(list((tmp_path / "out").iterdir())) == N
    for mount in mounts:
        assert vc.shot_id(str(mount / "plate" / "p.####.exr")) == _shot_dir(cache).name
    # `vom cache clear --shot` finds it by the pattern of a mount that did not make it (its plate read)
    assert main(["cache", "clear", "--cache", str(cache), "--shot", str(mounts[1] / "plate" / "p.####.exr")]) == 0
    assert not any(p.is_dir() for p in cache.iterdir())
    # the plate's folder reached through a link of another name (an artist's `latest` -> the farm's `v003`): one
    # shot, named by the folder itself (QA: the link's name named another shot folder, every entry a miss)
    latest = tmp_path / "latest"
    latest.symlink_to(root / "plate", target_is_directory=True)
    assert vc.shot_id(str(latest / "p.####.exr")) == vc.shot_id(str(root / "plate" / "p.####.exr"))


def test_a_first_plate_frame_that_cannot_be_read_names_the_folder_by_the_plate_s_path(tmp_path: Path) -> None:
    """The shot's folder is named from the plate's first frame on disk, which a render of later frames never reads
    otherwise: one that cannot be read (here a FIFO, which an open for reading would wait on for ever) must not
    hang or fail the render."""
    import threading

    shot_root = make_shot_dir(tmp_path / "shot")
    first = shot_root / "plate" / "p.0001.exr"
    first.unlink()
    os.mkfifo(first)
    done: list[Any] = []
    worker = threading.Thread(target=lambda: done.append(render(_shot(shot_root, tmp_path / "out", tmp_path / "c",
                                                                      frames="2-4", keyframes={2: str(
                                                                          shot_root / "roto" / "r.0001.exr")}))),
                              daemon=True)
    worker.start()
    worker.join(120)
    assert done, "the render waited on the FIFO"
    assert done[0].frames == [2, 3, 4] and done[0].cache["steps_computed"] == 3
    assert [w for w in done[0].warnings if "cache" in w] == []  # the overscan's scan says it skipped the frame
    assert vc.shot_id(str(shot_root / "plate" / "p.####.exr")) == _shot_dir(tmp_path / "c").name


def test_a_render_that_writes_nothing_to_the_cache_does_not_scan_it_for_eviction(
        root: Path, clean: dict[str, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every render ended with an eviction pass: every entry of every shot listed under the cache's lock (3 s at
    90k entries, each other render's writes waiting meanwhile), even one that read every step back (QA)."""
    cache = _cache_copy(root, tmp_path)
    calls: list[object] = []
    real = vc.evict
    monkeypatch.setattr(vc, "evict", lambda *a, **k: calls.append(a) or real(*a, **k))
    r = render(_shot(root, tmp_path / "out", cache))
    assert r.cache["steps_computed"] == 0 and calls == []
    _assert_clean(r, tmp_path / "out", clean)
    for p in _files(cache, "alpha"):  # predictions computed again, and written: this render evicts
        p.unlink()
    r = render(_shot(root, tmp_path / "out2", cache))
    assert r.cache["steps_computed"] > 0 and len(calls) == 1


def test_entries_a_stopped_render_wrote_are_evicted_by_the_next_render_even_if_it_writes_none(
        root: Path, clean: dict[str, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A render stopped before its eviction left what it wrote over the cap until a render that writes came (a
    review: 30 cancelled farm chunks held the cache at 1.8x its cap once renders that write nothing skipped the
    scan). It leaves a mark; the next render evicts, and takes the mark away."""
    cache = _cache_copy(root, tmp_path)
    calls: list[object] = []
    real = vc.evict
    monkeypatch.setattr(vc, "evict", lambda *a, **k: calls.append(a) or real(*a, **k))
    for p in _files(cache, "alpha"):
        p.unlink()

    def stop_at_second_frame(event: dict) -> None:
        if event.get("event") == "frame" and event["done"] == 2:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        render(_shot(root, tmp_path / "out", cache), progress=stop_at_second_frame)
    assert calls == [] and (cache / vc.DIRTY_NAME).exists()
    r = render(_shot(root, tmp_path / "out", cache, frames=[1, 2]))  # reads back what it needs
    assert r.cache["steps_computed"] == 0 and len(calls) == 1 and not (cache / vc.DIRTY_NAME).exists()
    assert vc.clear(cache).left_alone == []  # the mark is vom's


def test_the_cache_leaves_its_disk_room_for_the_outputs(root: Path, clean: dict[str, np.ndarray], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a cache on the outputs' disk took its last bytes; the next frame failed (exit 2), and so did every render
    after it. Here a disk of 1 GiB + 20 kB: the cache stops writing where it would leave under 1 GiB free (the
    default VOM_CACHE_MIN_FREE_GB), said once, and the render completes with the clean pixels."""
    cache = tmp_path / "cache"
    disk = 2**30 + 20_000

    def free(folder: object) -> int:  # what the cache wrote is what the disk lost
        return disk - sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
    monkeypatch.setattr(vc, "free_bytes", free)
    r = render(_shot(root, tmp_path / "out", cache))
    _assert_clean(r, tmp_path / "out", clean)
    said = [w for w in r.warnings if "VOM_CACHE_MIN_FREE_GB" in w]
    assert len(said) == 1 and said[0].startswith(f"cache {cache} not written for the rest of the render (what it "
                                                 f"holds is still read): the disk holding {cache} has "), said
    # in one unit, with the entry that did not fit (QA: "76,154.6 MiB free, and the cache leaves 74.3695 GiB" read
    # as room enough)
    assert re.search(r"has 1\.0000 GiB free: a [0-9.,]+ MiB entry would leave less than the 1 GiB the cache leaves "
                     r"free for the outputs \(VOM_CACHE_MIN_FREE_GB\); free space there or pass --cache DIR on another "
                     r"disk", said[0]), said[0]
    assert free(cache) >= 2**30  # it stopped short of the floor
    assert list(cache.rglob("*.safetensors"))  # and wrote what fitted above it
    # a disk already under the floor: the render says so at its start and reads what the cache holds, writing
    # nothing (QA: it recomputed a warm shot from scratch, as README said it would only stop writing)
    full = _shot(root, tmp_path / "warm", tmp_path / "cache2")
    monkeypatch.setenv("VOM_CACHE_MIN_FREE_GB", "0")
    render(full)
    monkeypatch.delenv("VOM_CACHE_MIN_FREE_GB")
    before = sorted((p, p.read_bytes()) for p in (tmp_path / "cache2").rglob("*.safetensors"))
    disk = 2**30 - 1
    # a shot the cache holds nothing of: rendered without it, nothing made there (review: a shot folder was made)
    r = render(_shot(root, tmp_path / "out_new", tmp_path / "cache_new"))
    assert any(w.startswith("rendering without the cache: the disk holding ") for w in r.warnings), r.warnings
    assert not (tmp_path / "cache_new").exists()
    r = render(_shot(root, tmp_path / "out2", tmp_path / "cache2"))
    _assert_clean(r, tmp_path / "out2", clean)
    assert r.cache["steps_cached"] == N and r.cache["steps_computed"] == 0, r.cache
    assert [w for w in r.warnings if "VOM_CACHE_MIN_FREE_GB" in w] == [
        w for w in r.warnings if w.startswith(f"cache read, not written: the disk holding {tmp_path / 'cache2'}")]
    assert len(r.warnings) == 1, r.warnings
    # the roto changed: what it computes is not written either; the keys it holds are read
    wide = {1: str(root / "roto" / "wide.0001.exr")}
    r = render(_shot(root, tmp_path / "out2b", tmp_path / "cache2", keyframes=wide))
    assert r.cache["keys_hit"] == N and r.cache["steps_computed"] == N, r.cache
    assert sorted((p, p.read_bytes()) for p in (tmp_path / "cache2").rglob("*.safetensors")) == before  # nothing new
    # 0 turns the floor off
    monkeypatch.setenv("VOM_CACHE_MIN_FREE_GB", "0")
    r = render(_shot(root, tmp_path / "out3", tmp_path / "cache3"))
    assert not any("VOM_CACHE_MIN_FREE_GB" in w for w in r.warnings)
    monkeypatch.setenv("VOM_CACHE_MIN_FREE_GB", "-1")
    with pytest.raises(InputError, match="VOM_CACHE_MIN_FREE_GB '-1': expected a number of GiB"):
        render(_shot(root, tmp_path / "out4", tmp_path / "cache4"))


def test_the_start_event_says_why_a_render_runs_without_the_cache(root: Path, tmp_path: Path) -> None:
    """QA: a host told of a cancel said "a new Analyze resumes from the cache" of a render that ran without it; the
    start event said only "cache": null, and the reason came with the done event, which a cancel never sends."""
    (tmp_path / "a_file").write_text("not a folder")
    events: list[dict[str, Any]] = []
    render(_shot(root, tmp_path / "out", tmp_path / "a_file"), progress=events.append)
    start = events[0]
    assert start["event"] == "start" and start["cache"] is None
    assert start["cache_off"].startswith("rendering without the cache: ") and "a_file" in start["cache_off"]
    assert events[-1]["warnings"] == [start["cache_off"]]
    events.clear()
    render(_shot(root, tmp_path / "out2", tmp_path / "cache"), progress=events.append)
    assert events[0]["cache"] is not None and "cache_off" not in events[0]


def test_a_read_only_cache_is_read(root: Path, clean: dict[str, np.ndarray], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A show's cache mounted read-only on a workstation (or one the user may read, not write): its entries are read,
    none written, said once; it was not used at all (every frame computed again, as for no cache)."""
    cache = tmp_path / "cache"
    render(_shot(root, tmp_path / "farm", cache))  # the farm filled it
    before = sorted((p, p.read_bytes()) for p in cache.rglob("*") if p.is_file())

    def read_only(*args: object, **kw: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(args[0]) if args else "")

    monkeypatch.setattr(vc, "_open_lock", read_only)  # the lock, the probe, every write: refused
    monkeypatch.setattr(vc, "_atomic_write_bytes", read_only)
    r = render(_shot(root, tmp_path / "out", cache))
    _assert_clean(r, tmp_path / "out", clean)
    assert r.cache["steps_cached"] == N and r.cache["steps_computed"] == 0, r.cache
    assert len(r.warnings) == 1 and r.warnings[0].startswith("cache read, not written: cache folder ") \
        and "cannot be written (Read-only file system)" in r.warnings[0], r.warnings
    # another roto: its keys are read, its steps computed and not written
    r = render(_shot(root, tmp_path / "out2", cache, keyframes={1: str(root / "roto" / "wide.0001.exr")}))
    assert r.cache["keys_hit"] == N and r.cache["steps_computed"] == N, r.cache
    assert sorted((p, p.read_bytes()) for p in cache.rglob("*") if p.is_file()) == before
    # a shot it holds nothing of: rendered without it, as before
    r = render(_shot(root, tmp_path / "out3", tmp_path / "empty_cache"))
    assert any(w.startswith("rendering without the cache: cache folder ") for w in r.warnings), r.warnings
    # a damaged entry is recomputed and left as it is, said so (review: "dropped", of a file still there)
    damaged = _files(cache, "alpha")[0]
    damaged.write_bytes(damaged.read_bytes()[:700])
    events: list[dict] = []
    r = render(_shot(root, tmp_path / "out4", cache), progress=events.append)
    _assert_clean(r, tmp_path / "out4", clean)
    assert damaged.stat().st_size == 700
    assert [w for w in r.warnings if "damaged" in w][0].startswith(
        "cache: 1 damaged entry not used and recomputed (left in the cache, which this render does not write)")
    # the start event says the cache is read, not written: a host's cancel must not promise a resume (review)
    assert events[0]["cache_read_only"].startswith("cache folder ") and "Read-only file system" in \
        events[0]["cache_read_only"]


def test_no_cache_among_the_plates_rotos_or_outputs(root: Path, clean: dict[str, np.ndarray], tmp_path: Path) -> None:
    """QA: --cache swapped with the plate's folder (or pointed at the output's) put a lock and a shot folder among a
    published plate's frames, without a word. Said, and the render runs without the cache."""
    import shutil

    shutil.copytree(root / "plate", tmp_path / "plate")
    shutil.copytree(root / "roto", tmp_path / "roto")
    before = {p.name for p in (tmp_path / "plate").iterdir()}
    base = {"plate": str(tmp_path / "plate" / "p.####.exr"), "keyframes": {1: str(tmp_path / "roto" / "r.0001.exr")}}
    for folder, whose in ((tmp_path / "plate", "the plate's"), (tmp_path / "out", "the output's"),
                          (tmp_path / "roto", "a roto's")):
        r = render(_shot(root, tmp_path / "out", folder, **base))
        _assert_clean(r, tmp_path / "out", clean)
        assert r.warnings == [f"rendering without the cache: cache folder {str(folder)!r} is {whose} folder, where vom "
                              f"writes no cache; pass --cache DIR (or set VOM_CACHE_DIR) to a folder of its own"]
    assert {p.name for p in (tmp_path / "plate").iterdir()} == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"a.{f:04d}.exr" for f in range(1, N + 1)]
    assert sorted(p.name for p in (tmp_path / "roto").iterdir()) == sorted(p.name for p in (root / "roto").iterdir())


def unprivileged_prefix() -> list[str]:
    """The command prefix that runs a process as this user without root's permission overrides, so that file modes
    hold for it ([] where this is not root); skips the test where root cannot drop them (no setpriv)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("runs as root, and setpriv (util-linux), which drops root's permission overrides, is absent")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner,-chown"]


def test_a_cache_folder_this_user_cannot_enter_renders_without_it(tmp_path: Path) -> None:
    """QA: a cache folder this user may not enter (another user's, mode 700) failed the render with a bare
    "PermissionError: .../.vom-cache.lock: Permission denied" (exit 2, no frame; a raw PermissionError from render()),
    where a cache that cannot be used is a warning and a render without it. Run as a process without root's
    permission overrides (setpriv), or as the user it is."""
    import subprocess
    import sys

    prefix = unprivileged_prefix()
    cache = tmp_path / "theirs"
    cache.mkdir()
    cache.chmod(0o000)
    repo = Path(__file__).resolve().parents[1]
    try:
        r = subprocess.run([*prefix, sys.executable, "-m", "vom_plugin.cli", "render",
                            str(repo / "vom_plugin" / "data" / "demo" / "shot.yaml"), "--frames", "1-2",
                            "--working-size", "128", "--cache", str(cache), "--no-worker", "--progress", "none",
                            "--out", str(tmp_path / "o" / "a.####.exr")],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(repo)})
    finally:
        cache.chmod(0o755)
    assert r.returncode == 0, r.stderr
    assert f"rendering without the cache: cache folder '{cache}' cannot be written (Permission denied)" in r.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.0001.exr", "a.0002.exr"]
