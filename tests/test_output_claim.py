"""Two renders of one output at once: the second is refused before any work, naming the first (io.output_claim)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vom_plugin.errors import InputError
from vom_plugin.io.output_claim import PREFIX, OutputClaim

HOLDER = textwrap.dedent("""
    import sys, time
    from vom_plugin.io.output_claim import OutputClaim
    claim = OutputClaim.take([sys.argv[1]], list(range(int(sys.argv[2]), int(sys.argv[3]) + 1)), "shot farm.yaml")
    print("held", flush=True)
    sys.stdin.readline()
    claim.release()
""")


def _holder(pattern: Path, first: int, last: int) -> subprocess.Popen[str]:
    """Another process holding a claim on ``first``-``last`` of ``pattern``, until its stdin is closed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(pattern), str(first), str(last)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_a_claim_a_vom_worker_holds_is_named_as_the_worker(tmp_path: Path) -> None:
    """QA: a render refused by frames a `vom worker` was writing named "vm process 32426", and the TD looked for a
    `vom render` of that pid."""
    pattern = tmp_path / "a.####.exr"
    code = HOLDER.replace("from vom_plugin.io.output_claim import OutputClaim",
                          "from vom_plugin.io import output_claim\noutput_claim.PROCESS_KIND = 'vom worker'\n"
                          "from vom_plugin.io.output_claim import OutputClaim")
    proc = subprocess.Popen([sys.executable, "-c", code, str(pattern), "1", "3"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        with pytest.raises(InputError, match=rf"\(shot farm\.yaml; \S+ vom worker {proc.pid}, frames 1-3, since "):
            OutputClaim.take([str(pattern)], [2], "mine")
    finally:
        proc.communicate("\n", timeout=60)


def _claims(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith(PREFIX))


def test_frames_another_living_render_writes_are_refused_naming_it(tmp_path: Path) -> None:
    pattern = tmp_path / "a.####.exr"
    proc = _holder(pattern, 1, 10)
    try:
        with pytest.raises(InputError, match=rf"out .*a\.####\.exr: frames 8-10 are being written by another render "
                                             rf"\(shot farm\.yaml; .* process {proc.pid}, frames 1-10, since .*\): two "
                                             r"renders of one output at once leave a sequence of both"):
            OutputClaim.take([str(pattern)], list(range(8, 13)), "mine")
        assert len(_claims(tmp_path)) == 1  # the refused render's own claim is gone, the holder's stays
        # other frames of the same sequence (the next farm chunk), another sequence in the folder, the same frames
        # named with another frame token: the first two pass, the last is the same files
        OutputClaim.take([str(pattern)], list(range(11, 20)), "chunk 2").release()
        OutputClaim.take([str(tmp_path / "b.####.exr")], list(range(1, 10)), "other").release()
        with pytest.raises(InputError, match=r"frame 3 is being written"):
            OutputClaim.take([str(tmp_path / "a.%04d.exr")], [3], "same files")
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)
    assert _claims(tmp_path) == []  # released: the file goes with it
    OutputClaim.take([str(pattern)], [3], "after").release()


def test_the_claim_of_a_killed_render_is_removed_and_does_not_refuse(tmp_path: Path) -> None:
    pattern = tmp_path / "a.####.exr"
    proc = _holder(pattern, 1, 5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert len(_claims(tmp_path)) == 1  # left behind by the kill
    claim = OutputClaim.take([str(pattern)], [1, 2], "next")
    assert len(_claims(tmp_path)) == 1 and claim.held  # the stale one removed, this one's in its place
    claim.release()
    claim.release()  # twice is harmless
    assert _claims(tmp_path) == []


def test_two_renders_of_one_process_refuse_each_other_too(tmp_path: Path) -> None:
    """Two threads of a TD's tool (or a worker) rendering one output at once."""
    first = OutputClaim.take([str(tmp_path / "a.####.exr")], [1, 2, 3], "thread 1")
    try:
        with pytest.raises(InputError, match=rf"frame 2 is being written by another render \(thread 1; .* process "
                                             rf"{os.getpid()}, frames 1-3"):
            OutputClaim.take([str(tmp_path / "a.####.exr")], [2], "thread 2")
    finally:
        first.release()


def test_a_claim_is_read_whole_readable_by_others_and_its_leftovers_go(tmp_path: Path) -> None:
    """Review: a claim of 200000 frames (1.5 MB) was read to its first MB and skipped; a umask of 077 made it
    unreadable to another user's render (a farm account), which then skipped it; a kill between its writing and its
    naming left a .part nobody removed; a claim whose start time is no number raised (exit 1)."""
    import json
    import time

    pattern = tmp_path / "a.####.exr"
    old = os.umask(0o077)
    try:
        big = OutputClaim.take([str(pattern)], list(range(1, 200001)), "a long shot")
    finally:
        os.umask(old)
    try:
        (claim,) = (tmp_path / n for n in _claims(tmp_path))
        assert claim.stat().st_size > 1 << 20 and claim.stat().st_mode & 0o777 == 0o644
        with pytest.raises(InputError, match=r"frame 199999 is being written by another render \(a long shot;"):
            OutputClaim.take([str(pattern)], [199999], "mine")
    finally:
        big.release()
    part = tmp_path / ".vom-writing.h.1.0123abcd.json.part"
    part.write_text("{")
    fresh = tmp_path / ".vom-writing.h.2.0123abcd.json.part"
    fresh.write_text("{")
    os.utime(part, (time.time() - 7200, time.time() - 7200))
    foreign = tmp_path / ".vom-writing.h.3.0123abcd.json"  # a claim that is no JSON vom wrote, held by a living process
    foreign.write_text(json.dumps({"pattern": "a.####.exr", "list": [5], "started": "soon"}))
    import fcntl

    with open(foreign, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(InputError, match=r"frame 5 is being written by another render .* since \?\)"):
            OutputClaim.take([str(pattern)], [5], "mine")  # its start time is only said: it still refuses
        foreign.write_text("{not json")
        OutputClaim.take([str(pattern)], [5], "mine").release()  # unreadable: not a refusal, not a crash
    assert not part.exists() and fresh.exists()
