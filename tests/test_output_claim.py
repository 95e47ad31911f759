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
