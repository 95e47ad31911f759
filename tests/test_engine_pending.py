"""PendingStore: predictions waiting for other passes or objects, the newest as they came, older ones compressed and
past a budget in an unlinked temporary file; the values come back bit for bit, in order, and the memory they hold is
bounded."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from vom_plugin.engine import pending
from vom_plugin.engine.pending import PendingStore


def _alpha(seed: int, shape: tuple[int, int] = (48, 64)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = np.clip(rng.normal(0.5, 0.6, shape), 0, 1)  # exact 0 and 1 with soft values between, as an alpha is
    return a.astype(np.float16)


# as they came; all in the file; compressed in memory and in the file; as they came and compressed in memory
@pytest.mark.parametrize(("budget", "raw"), [(None, None), (0, 0), (3000, 0), (None, 20_000)])
def test_parts_come_back_bit_for_bit_in_order_and_are_forgotten(budget: int | None, raw: int | None) -> None:
    store = PendingStore(budget, raw)
    want = {}
    for frame in range(6):
        for obj in ("hero", None):
            key = (obj, frame)
            parts = [("fwd", _alpha(10 * frame + 1), _alpha(10 * frame + 2)), ("back", _alpha(10 * frame + 3), None)]
            for source, alpha, mask in parts:
                store.add(key, source, alpha, mask)
            want[key] = parts
            assert store.count(key) == 2
    assert len(store) == 12
    for key, parts in want.items():
        got = store.take(key)
        assert [g[0] for g in got] == [p[0] for p in parts]
        for (_, ga, gm), (_, wa, wm) in zip(got, parts, strict=True):
            assert ga.dtype == wa.dtype and ga.shape == wa.shape and np.array_equal(ga, wa)
            assert (gm is None) == (wm is None) and (gm is None or np.array_equal(gm, wm))
        assert store.count(key) == 0 and store.take(key) == []
    assert len(store) == 0 and store.bytes_in_memory == 0
    store.close()


def test_memory_held_stays_within_the_budgets_and_the_file_is_written_again_once_emptied() -> None:
    budget, raw = 20_000, 3 * _alpha(0).nbytes
    store = PendingStore(budget, raw)
    for frame in range(40):
        store.add(frame, "fwd", _alpha(frame), None)
        assert store.bytes_in_memory <= budget + raw
    assert store._file is not None  # most of the span went to the file
    size = os.fstat(store._file.fileno()).st_size
    for frame in range(40):
        store.take(frame)
    for frame in range(40):  # the next span: the same bytes again, from the file's start
        store.add(frame, "fwd", _alpha(frame), None)
    assert os.fstat(store._file.fileno()).st_size == size
    assert np.array_equal(store.take(39)[0][1], _alpha(39))
    store.close()
    assert store._file is None


def test_the_temporary_file_has_no_name_to_leave_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    store = PendingStore(0, 0)
    store.add(1, "fwd", _alpha(1), None)
    assert store._file is not None and list(tmp_path.iterdir()) == []  # unlinked from the start
    assert np.array_equal(store.take(1)[0][1], _alpha(1))
    store.close()


def test_a_file_cut_short_under_the_store_is_an_error_not_other_values() -> None:
    store = PendingStore(0, 0)
    store.add(1, "fwd", _alpha(1), None)
    assert store._file is not None
    os.ftruncate(store._file.fileno(), 10)
    with pytest.raises(OSError, match="temporary file of pending predictions"):
        store.take(1)
    store.close()


def test_the_default_budgets_are_read_when_a_store_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pending, "RAW_BUDGET", 0)
    monkeypatch.setattr(pending, "RAM_BUDGET", 0)
    store = PendingStore()
    store.add(1, "fwd", _alpha(1), None)
    assert store.bytes_in_memory == 0 and store._file is not None
    store.close()


def test_parts_taken_back_soon_are_never_compressed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Objects predicted side by side: one object's frame waits for the other's at the same step."""
    packed: list[object] = []
    real = PendingStore._pack
    monkeypatch.setattr(PendingStore, "_pack", lambda self, kept: (packed.append(kept), real(self, kept)))
    store = PendingStore(raw_budget=2 * _alpha(0).nbytes)
    for frame in range(100):
        a = _alpha(frame)
        store.add(("hero", frame), "fwd", a, a)
        got = store.take(("hero", frame))
        assert got[0][1] is a and got[0][2] is a  # the arrays themselves
    assert packed == [] and store.bytes_in_memory == 0 and store._raw == {}
    store.close()


def test_a_compressed_part_holds_its_compressed_size_in_memory() -> None:
    """python-zstandard's result kept the allocation of the worst case: each part of 50 kB held 1 MB."""
    import tracemalloc

    yy, xx = np.mgrid[0:544, 0:960]
    disc = np.clip(200.5 - np.hypot(xx - 480, yy - 272), 0, 1).astype(np.float16)  # an alpha: mostly 0 and 1
    store = PendingStore(raw_budget=0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for frame in range(20):
            store.add(frame, "fwd", disc, None)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert 0 < store.bytes_in_memory < 20 * disc.nbytes / 10
    assert held < 1.5 * store.bytes_in_memory + 100_000, (held, store.bytes_in_memory)
    assert np.array_equal(store.take(7)[0][1], disc)
    store.close()


def test_a_temporary_folder_that_cannot_take_the_parts_leaves_them_in_memory_and_says_why(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    def full(*_args: object, **_kw: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "TemporaryFile", full)
    store = PendingStore(0, 0)
    for frame in range(5):
        store.add(frame, "fwd", _alpha(frame), _alpha(frame + 50))
    assert store.file_error is not None and "No space left on device" in store.file_error
    assert tempfile.gettempdir() in store.file_error
    for frame in range(5):
        (_, alpha, mask), = store.take(frame)
        assert np.array_equal(alpha, _alpha(frame)) and np.array_equal(mask, _alpha(frame + 50))
    store.close()
    assert store.file_error is None


def test_a_disk_that_fills_part_way_through_a_write_loses_no_part(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A review: through a buffered file, a write that did not fit failed at the next seek, after its part was counted
    as on disk, and every later read (and the close, masking the render's own error) raised."""
    import errno
    import io

    class Filling(io.FileIO):
        room = 300  # bytes the disk takes, then a short write, then ENOSPC

        def write(self, b) -> int:  # type: ignore[no-untyped-def, override]
            if Filling.room <= 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            n = min(len(b), Filling.room)
            Filling.room -= n
            return super().write(bytes(b)[:n])

    monkeypatch.setattr(tempfile, "TemporaryFile", lambda **_kw: Filling(tmp_path / "spill", "w+b"))
    store = PendingStore(0, 0)
    zero = np.zeros((48, 64), np.float16)  # an absent object's alpha: a few dozen bytes compressed
    store.add(0, "fwd", zero, None)
    store.add(1, "fwd", _alpha(1), None)  # does not fit: its start written, then the disk is full
    store.add(2, "fwd", _alpha(2), None)
    assert store.file_error is not None and "No space left on device" in store.file_error
    assert np.array_equal(store.take(0)[0][1], zero)  # from the file
    assert np.array_equal(store.take(2)[0][1], _alpha(2)) and np.array_equal(store.take(1)[0][1], _alpha(1))
    store.close()  # nothing raised


def test_no_usable_temporary_folder_is_said_and_loses_no_part(monkeypatch: pytest.MonkeyPatch) -> None:
    def none(**_kw: object) -> None:
        raise FileNotFoundError(2, "No usable temporary directory found")

    monkeypatch.setattr(tempfile, "TemporaryFile", none)
    monkeypatch.setattr(tempfile, "gettempdir", none)
    store = PendingStore(0, 0)
    store.add(0, "fwd", _alpha(0), None)
    assert store.file_error is not None and store.file_error.startswith("no temporary folder")
    assert np.array_equal(store.take(0)[0][1], _alpha(0))
    store.close()


def test_without_zstandard_the_parts_are_compressed_with_zlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training's environment (a lent GPU machine) has none of the render's modules, zstandard among them: the
    store (which training's validation runs through the pass runner) takes the standard library's zlib."""
    import sys

    monkeypatch.setitem(sys.modules, "zstandard", None)  # import zstandard raises ImportError
    store = PendingStore(raw_budget=0)
    store.add(0, "fwd", _alpha(0), _alpha(1))
    kept = store._parts[0][0][1]
    assert kept.data is not None and kept.data[:2] == b"\x78\x01"  # zlib's header at level 1 (zstd's: 28 b5 2f fd)
    assert 0 < store.bytes_in_memory < 2 * _alpha(0).nbytes
    (_, alpha, mask), = store.take(0)
    assert np.array_equal(alpha, _alpha(0)) and np.array_equal(mask, _alpha(1))
    store.close()
