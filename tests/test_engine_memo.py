"""A vom worker's memo of decoded plate frames: bounded, never a stale frame, never a different pixel."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from test_runner_render import N, _write, make_shot_dir, outputs, shot

from vom_plugin.engine.memo import Memo, memo_bytes_from_env
from vom_plugin.engine.runner import LoadedModels, render
from vom_plugin.errors import InputError


def test_a_full_memo_drops_what_other_renders_used_and_keeps_the_current_renders_frames() -> None:
    m = Memo(max_bytes=300)
    m.begin_render()
    assert m.put(("a",), "A", 100) and m.put(("b",), "B", 100) and m.put(("c",), "C", 100)
    assert not m.put(("d",), "D", 100)  # full of this render's frames: d is not kept, a-c stay
    assert (m.get(("a",)), m.get(("d",)), m.bytes) == ("A", None, 300)
    m.begin_render()
    assert m.get(("c",)) == "C"  # used by the new render: kept; a and b are dropped first (a used longest ago)
    assert m.put(("e",), "E", 150)
    assert m.get(("a",)) is None and m.get(("b",)) is None and m.get(("c",)) == "C" and m.get(("e",)) == "E"
    assert m.bytes == 250 and len(m) == 2
    assert not m.put(("big",), "X", 301)  # larger than the whole memo: never kept
    off = Memo(max_bytes=0)
    assert not off.put(("a",), "A", 1) and off.get(("a",)) is None


def test_a_files_new_content_drops_its_old_from_the_memo() -> None:
    """QA: a plate re-delivered between renders (another fingerprint) left its old frames in the memo until it filled:
    RSS grew render after render. A key (kind, path, fingerprint, ...) drops those of its kind and path with another
    fingerprint; another kind, another path or the same content read another way stay."""
    m = Memo(max_bytes=10_000)
    m.begin_render()
    assert m.put(("plate", "/p.1.exr", "fp1"), "old", 100) and m.put(("display", "/p.1.exr", "fp1", "ACEScg"), "d", 50)
    assert m.put(("plate", "/p.2.exr", "fp1"), "other frame", 100)
    assert m.put(("display", "/p.1.exr", "fp1", "sRGB"), "d2", 50)  # the same content read as another colour space
    assert len(m) == 4 and m.bytes == 300
    assert m.put(("plate", "/p.1.exr", "fp2"), "new", 100)  # the file rewritten
    assert m.get(("plate", "/p.1.exr", "fp1")) is None and m.get(("plate", "/p.1.exr", "fp2")) == "new"
    assert m.get(("display", "/p.1.exr", "fp1", "ACEScg")) == "d"  # another kind: its own turn comes
    assert m.get(("plate", "/p.2.exr", "fp1")) == "other frame" and m.bytes == 300 - 100 + 100


def test_the_memo_size_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOM_WORKER_MEMO_MB", "1.5")
    assert memo_bytes_from_env() == 3 << 19
    monkeypatch.setenv("VOM_WORKER_MEMO_MB", "lots")
    with pytest.raises(InputError, match="VOM_WORKER_MEMO_MB 'lots'"):
        memo_bytes_from_env()


def test_renders_through_the_memo_give_the_same_pixels_and_see_an_edited_plate(tmp_path: Path) -> None:
    root = make_shot_dir(tmp_path / "shot")
    models, memo = LoadedModels(), Memo()
    render(shot(root, "ref"))
    ref = outputs(root / "ref")
    render(shot(root, "m1"), models=models, memo=memo)
    assert len(memo) == 2 * N  # each frame's plate and its display-referred pixels
    held = [v[0] for v in memo._items.values()]
    arrays = [a for v in held for a in ((v.rgb, v.data_rgb) if hasattr(v, "rgb") else (v,))]
    assert len(arrays) >= 2 * N and not any(a.flags.writeable for a in arrays)
    # a second render (another cache: everything computed again) reads every frame from the memo
    hits = memo.hits
    render(shot(root, "m2"), models=models, memo=memo)
    assert memo.hits - hits == 2 * N
    for tag in ("m1", "m2"):
        got = outputs(root / tag)
        assert got.keys() == ref.keys() and all(np.array_equal(got[k], ref[k]) for k in ref)
    # a plate frame replaced on disk is read again, never served from the memo
    p3 = root / "plate" / "p.0003.exr"
    dark = np.full((64, 192, 3), 0.05, np.float32)
    shutil.copy(p3, tmp_path / "p3.orig.exr")
    _write(p3, dark, ["R", "G", "B"])
    render(shot(root, "m3"), models=models, memo=memo)
    render(shot(root, "fresh"))
    got, fresh = outputs(root / "m3"), outputs(root / "fresh")
    assert all(np.array_equal(got[k], fresh[k]) for k in fresh)
    assert not np.array_equal(got["a.0003.exr"], ref["a.0003.exr"])


def test_weights_copied_over_in_place_with_the_old_time_are_loaded_again(tmp_path: Path) -> None:
    """``cp -p new.safetensors lite.safetensors`` (or rsync -t --inplace) keeps the inode, the size and the
    modification time: the worker kept rendering with the old weights. The change time moves."""
    import os
    import shutil
    import time

    import torch

    from vom_plugin.engine.weights import save_weights
    from vom_plugin.model import build_model

    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    for seed, path in ((0, a), (1, b)):
        torch.manual_seed(seed)
        save_weights(build_model("lite"), path)
    assert a.stat().st_size == b.stat().st_size
    models = LoadedModels()
    first, first_id = models.get(str(a), torch.device("cpu"))
    st = a.stat()
    time.sleep(0.05)
    shutil.copyfile(b, a)  # in place: the same inode
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old modification time
    assert (a.stat().st_ino, a.stat().st_size, a.stat().st_mtime_ns) == (st.st_ino, st.st_size, st.st_mtime_ns)
    second, second_id = models.get(str(a), torch.device("cpu"))
    assert second is not first and second_id != first_id
