"""Batches made ahead by worker processes are the batches the loop would make itself."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from vom_plugin.train import loop as L
from vom_plugin.train.data import Curriculum, make_batch, network_encoder
from vom_plugin.train.prefetch import BatchPrefetcher, BatchSpec, default_workers, open_source


def _spec(tmp_path: Path, **kw) -> BatchSpec:
    from test_train_clips import make_library

    base = dict(data="synth", seed=5, size=32, frames=3, batch=2, curriculum=Curriculum(stage1_steps=2, ramp_steps=4),
                library_share=0.5)
    base.update(kw)
    if "library" not in kw:
        base["library"] = make_library(tmp_path / "lib", n=12, frames=4, size=40, occluder_in=())
    return BatchSpec(**base)


def _same(a, b) -> bool:
    (ba, da, sa), (bb, db, sb) = a, b
    return da == db and sa == sb and all(torch.equal(getattr(ba, f.name), getattr(bb, f.name))
                                         for f in dataclasses.fields(ba))


def test_workers_make_exactly_the_batches_of_the_loop_in_any_order(tmp_path: Path):
    spec = _spec(tmp_path)
    source, encode = open_source(spec), network_encoder()

    def serial(step: int):
        return make_batch(source, step, seed=spec.seed, batch=spec.batch, frames=spec.frames,
                          size=(spec.size, spec.size), curriculum=spec.curriculum, encode=encode)

    with BatchPrefetcher(spec, workers=2, depth=3) as pf:
        got = {s: pf.get(s) for s in (3, 4, 5, 9, 10)}  # a resume at 3, then a jump (queued 6-8 dropped)
    for s, batch in got.items():
        assert _same(batch, serial(s)), s
    assert not _same(got[3], got[4])  # steps differ (the check above can fail)
    # the library took part: some clip of these steps came from it (its discs are pure white on the plate)
    assert spec.library is not None


def test_a_worker_error_reaches_the_loop_with_its_message(tmp_path: Path):
    spec = _spec(tmp_path, library_share=1.0)
    with BatchPrefetcher(spec, workers=1, depth=1) as pf:
        pf.get(0)
        for f in spec.library.glob("*/rgba.*.exr"):  # the library loses its frames under a running job
            f.unlink()
        with pytest.raises(Exception, match="rgba"):
            pf.get(1)
    bad = _spec(tmp_path, data="folder:" + str(tmp_path / "missing"), library=None)
    with BatchPrefetcher(bad, workers=1) as pf, pytest.raises(Exception, match="missing: path does not exist"):
        pf.get(0)


def test_default_workers_none_on_cpu():
    assert default_workers(torch.device("cpu")) == 0
    assert default_workers(torch.device("cuda")) >= 1


def test_a_run_with_workers_trains_on_the_same_batches(tmp_path: Path, monkeypatch):
    # (weights are not compared: the learning rate follows the wall-clock budget, so no two runs are bit-equal)
    from test_train_loop import TinyClipNet

    monkeypatch.setattr(L, "build", lambda config: TinyClipNet())
    seen: dict[str, list[torch.Tensor]] = {"serial": [], "ahead": []}
    run = ["serial"]
    real = L.clip_losses

    def recording(out, alpha, fg, bg):
        seen[run[0]].append(torch.cat([alpha.flatten(), fg.flatten(), bg.flatten()]))
        return real(out, alpha, fg, bg)

    monkeypatch.setattr(L, "clip_losses", recording)
    shots = tmp_path / "no_shots"
    shots.mkdir()
    common = dict(minutes=5, max_steps=4, batch=2, size=32, frames=3, val_minutes=0, log_every=1, shots=shots,
                  curriculum=Curriculum(stage1_steps=2, ramp_steps=4))
    L.train(L.TrainArgs(out=tmp_path / "serial", data_workers=0, **common), log=lambda m: None)
    run[0] = "ahead"
    logs: list[str] = []
    L.train(L.TrainArgs(out=tmp_path / "ahead", data_workers=2, **common), log=logs.append)
    assert any("made ahead by 2 worker" in m for m in logs)
    assert len(seen["serial"]) == len(seen["ahead"]) == 4
    assert all(torch.equal(a, b) for a, b in zip(seen["serial"], seen["ahead"], strict=True))
    assert not torch.equal(seen["serial"][0], seen["serial"][1])  # the steps' batches differ: the check can fail


def test_a_negative_worker_count_is_refused(tmp_path: Path, capsys):
    from vom_plugin.cli import main

    assert main(["train", "--out", str(tmp_path / "run"), "--data-workers", "-1", "--max-steps", "1"]) == 2
    assert "--data-workers -1: expected 0 (none) or more" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="the parent-death signal is Linux's (prctl)")
def test_workers_end_with_a_training_process_killed_hard(tmp_path: Path):
    """kill -9 of a training process left its batch workers blocked, orphaned, for good (QA): they are sent
    SIGTERM when it dies."""
    import os
    import signal
    import subprocess
    import sys
    import time

    code = ("import sys, time\n"
            "from vom_plugin.train.data import Curriculum\n"
            "from vom_plugin.train.prefetch import BatchPrefetcher, BatchSpec\n"
            "spec = BatchSpec(data='synth', seed=5, size=32, frames=3, batch=2,\n"
            "                 curriculum=Curriculum(stage1_steps=2, ramp_steps=4))\n"
            "pf = BatchPrefetcher(spec, workers=1, depth=1)\n"
            "pf.get(0)\n"
            "print(*pf._pool._processes, flush=True)\n"
            "time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    workers = [int(p) for p in proc.stdout.readline().split()]
    assert workers
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] if Path(f"/proc/{pid}").exists() \
            else "X"
        return state not in ("Z", "X")  # a zombie left for init to reap has ended

    deadline = time.monotonic() + 30
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in workers if alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, "batch workers outlived the training process"


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="the parent-death signal is Linux's (prctl)")
def test_a_worker_of_a_training_process_that_is_pid_1_lives(tmp_path: Path):
    """In a container without an init, the training process is pid 1: its workers took a parent of pid 1 for a
    dead one and exited at their start, every batch failing (review). A worker exits only when its parent is not
    the training process any more."""
    import os
    import shutil
    import subprocess
    import sys

    code = "import os\nfrom vom_plugin.train.prefetch import _die_with_parent\n_die_with_parent({});print('alive')\n"
    assert subprocess.run([sys.executable, "-c", code.format("os.getppid()")], capture_output=True, text=True,
                          timeout=60).stdout.strip() == "alive"
    gone = subprocess.run([sys.executable, "-c", code.format("os.getppid() + 1")], capture_output=True, text=True,
                          timeout=60)
    assert gone.returncode == 1 and "alive" not in gone.stdout  # its parent is not the one it was started by
    unshare = shutil.which("unshare")
    if unshare is None:
        return
    pid1 = subprocess.run([unshare, "--user", "--map-root-user", "--pid", "--fork", "--mount-proc", sys.executable,
                           "-c", "import os, subprocess, sys\nassert os.getpid() == 1\n"
                           f"print(subprocess.run([sys.executable, '-c', {code.format('1')!r}], "
                           "capture_output=True, text=True).stdout.strip())"],
                          capture_output=True, text=True, timeout=60, env={**os.environ})
    if pid1.returncode != 0 and "unshare" in pid1.stderr:  # namespaces not allowed here
        return
    assert pid1.stdout.strip() == "alive", pid1.stderr

