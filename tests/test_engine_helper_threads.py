"""The render's helper threads (EXR output, cache writes) run at nice 19 on Linux, the render's own at its nice."""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from vom_plugin.engine import helper_threads
from vom_plugin.engine.helper_threads import HELPER_NICE, lower_this_thread


@pytest.fixture
def own_process(monkeypatch):
    monkeypatch.setitem(helper_threads._OWN_PROCESS, "lower", True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_a_helper_thread_is_lowered_and_the_calling_thread_is_not(own_process) -> None:
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    with ThreadPoolExecutor(1, initializer=lower_this_thread) as pool:
        nice = pool.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result()
    assert nice == HELPER_NICE
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_a_render_writes_its_exrs_and_cache_entries_on_lowered_threads(tmp_path, monkeypatch, own_process) -> None:
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_a_render_called_from_a_hosts_python_leaves_its_threads_priorities_alone(tmp_path) -> None:
    """A QA pass: OpenEXR's and OpenImageIO's pools, started from vom's lowered helper threads, inherited nice 19 and
    outlived the render, so the host's own image I/O ran at nice 19 afterwards. In a fresh process (no pool yet) a
    render through the API leaves every thread at the process's nice; ``vom render`` still lowers its helpers."""
    import json
    import subprocess

    if os.getpriority(os.PRIO_PROCESS, 0) >= HELPER_NICE:
        pytest.skip(f"the tests run at nice {HELPER_NICE} already: nothing to tell apart")
    code = """
import json, os, sys
from vom_plugin.engine.runner import render
from vom_plugin.engine.shot import Shot
from vom_plugin.locations import demo_dir
def nices():
    return sorted({int(open(f"/proc/self/task/{t}/stat").read().rsplit(")", 1)[1].split()[16])
                   for t in os.listdir("/proc/self/task")})
# the demo's DWAA plates: OpenEXR starts its pool for them (the synthetic test plates start none)
render(Shot.from_yaml(demo_dir() / "shot.yaml", frames="1-2", out=sys.argv[1] + "/a.####.exr",
                      cache=sys.argv[1] + "/cache", working_size=128))
print(json.dumps({"process": os.getpriority(os.PRIO_PROCESS, 0), "threads": nices()}))
"""
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    said = json.loads(r.stdout.strip().splitlines()[-1])
    assert said["threads"] == [said["process"]], said
