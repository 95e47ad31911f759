"""The render's helper threads (EXR output, cache writes) run at nice 19 on Linux, the render's own at its nice."""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from vom_plugin.engine.helper_threads import HELPER_NICE, lower_this_thread


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_a_helper_thread_is_lowered_and_the_calling_thread_is_not() -> None:
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    with ThreadPoolExecutor(1, initializer=lower_this_thread) as pool:
        nice = pool.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result()
    assert nice == HELPER_NICE
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_a_render_writes_its_exrs_and_cache_entries_on_lowered_threads(tmp_path, monkeypatch) -> None:
    from test_runner_render import make_shot_dir, shot

    from vom_plugin import io as vio
    from vom_plugin.engine import cache
    from vom_plugin.engine.runner import render

    seen: dict[str, set[int]] = {"exr": set(), "cache": set()}

    def spy(kind, fn):
        def wrapped(*a, **k):
            seen[kind].add(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            return fn(*a, **k)
        return wrapped

    monkeypatch.setattr(vio, "write_alpha", spy("exr", vio.write_alpha))
    monkeypatch.setattr(cache.ShotCache, "_save", spy("cache", cache.ShotCache._save))
    root = make_shot_dir(tmp_path / "shot")
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    render(shot(root, "nice"))
    assert seen == {"exr": {HELPER_NICE}, "cache": {HELPER_NICE}}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before  # the render's own thread
