"""``vom worker``: ``vom render`` hands it the shot and gets the same files, events and exit codes as an
in-process render; bad input, cancel, a busy or mismatched worker, unsafe socket folders, and the worker
that ``vom render --start-worker`` (the Nuke and Blender nodes) starts."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_runner_render import N, make_shot_dir, outputs

from vom_plugin.errors import InputError
from vom_plugin.worker import environment, private_folder_problem, socket_path


@pytest.fixture(scope="module")
def shot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shot_dir(tmp_path_factory.mktemp("wshot"))


def _env(sock: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "VOM_WORKER_SOCKET": str(sock), "VOM_STATE_INTERVAL_S": "0", **extra}


def _start_worker(sock: Path, idle_exit: str) -> subprocess.Popen:
    """A `vom worker` process on ``sock`` (its stderr piped), once it listens; killed if it does not."""
    proc = subprocess.Popen([sys.executable, "-m", "vom_plugin.cli", "worker", "--idle-exit", idle_exit],
                            env=_env(sock), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not sock.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)
    except BaseException:
        proc.kill()
        raise
    return proc


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, subprocess.Popen]]:
    folder = tmp_path_factory.mktemp("wsock")
    folder.chmod(0o700)
    sock = folder / "w.sock"
    proc = _start_worker(sock, "600")
    yield sock, proc
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert not sock.exists()  # the worker removes its socket


def _cmd(root: Path, tag: str, *extra: str, roto: str = "r.0001.exr") -> list[str]:
    return [sys.executable, "-m", "vom_plugin.cli", "render", "--plate", str(root / "plate" / "p.####.exr"),
            "--roto", str(root / "roto" / roto) + "@1", "--out", str(root / tag / "a.####.exr"),
            "--model", str(root / "model.safetensors"), "--working-size", "128", "--device", "cpu",
            "--cache", str(root / f"cache_{tag}"), "--progress", "json", *extra]


def _run(cmd: list[str], env: dict[str, str]) -> tuple[int, list[dict], str]:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    return done.returncode, [json.loads(x) for x in done.stdout.splitlines()], done.stderr


def _worker_cpu(proc: subprocess.Popen) -> float:
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the worker's CPU time from /proc")
def test_a_render_handed_to_the_worker_equals_one_in_process(shot_dir: Path, worker: tuple) -> None:
    sock, proc = worker
    cpu0 = _worker_cpu(proc)
    rc, events, err = _run(_cmd(shot_dir, "w"), _env(sock))
    assert rc == 0, err
    assert _worker_cpu(proc) - cpu0 > 0.05  # the worker computed it
    rc2, events2, err2 = _run(_cmd(shot_dir, "p", "--no-worker"), _env(sock))
    assert rc2 == 0, err2
    # the same events (how steps and frames interleave depends on when the output thread finishes a file)
    assert [e["event"] for e in events if e["event"] != "step"] == ["start"] + ["frame"] * N + ["done"]
    assert [e["event"] for e in events2 if e["event"] != "step"] == ["start"] + ["frame"] * N + ["done"]
    assert [e["steps_done"] for e in events if e["event"] == "step"] == \
        [e["steps_done"] for e in events2 if e["event"] == "step"] == list(range(1, N + 1))
    assert events[-1]["frames_written"] == N and events[-1]["cache"] == events2[-1]["cache"]
    assert [e["path"] for e in events if e["event"] == "frame"] == [str(shot_dir / "w" / f"a.{f:04d}.exr")
                                                                   for f in range(1, N + 1)]
    got, ref = outputs(shot_dir / "w"), outputs(shot_dir / "p")
    assert got.keys() == ref.keys() and len(got) == N
    assert all(np.array_equal(got[k], ref[k]) for k in ref)  # bit-identical
    # a second render reuses the loaded weights and the cache: a roto edit, same pixels as in-process
    rc, events, err = _run(_cmd(shot_dir, "w", roto="wide.0001.exr"), _env(sock))
    assert rc == 0, err
    assert events[-1]["cache"]["keys_hit"] == N and events[-1]["cache"]["affinity_hit"] == N
    rc, _, err = _run(_cmd(shot_dir, "p", "--no-worker", roto="wide.0001.exr"), _env(sock))
    assert rc == 0, err
    got, ref = outputs(shot_dir / "w"), outputs(shot_dir / "p")
    assert all(np.array_equal(got[k], ref[k]) for k in ref)


def test_bad_input_in_the_worker_exits_2_with_the_message_and_writes_nothing(shot_dir: Path, worker: tuple,
                                                                             tmp_path: Path) -> None:
    sock, _ = worker
    cmd = _cmd(shot_dir, "bad", "--frames", "1-9", "--out", str(tmp_path / "o" / "a.####.exr"))
    rc, events, err = _run(cmd, _env(sock))
    assert rc == 2, err
    last = events[-1]
    assert last["event"] == "error" and last["exit_code"] == 2 and "missing frame 9" in last["message"]
    assert "vom render: error:" in err and "missing frame 9" in err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())
    rc, _, err = _run(_cmd(shot_dir, "bad2", "--model", str(shot_dir / "nope.safetensors")), _env(sock))
    assert rc == 2 and "nope.safetensors" in err


def test_sigterm_to_vom_render_stops_the_workers_render_after_the_frame_in_hand(shot_dir: Path, worker: tuple
                                                                                ) -> None:
    sock, proc = worker
    cmd = _cmd(shot_dir, "cancel")
    render = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(sock))
    assert render.stdout is not None and render.stderr is not None
    seen = 0
    for line in render.stdout:
        if json.loads(line).get("event") == "frame":
            seen += 1
        if seen == 2:
            break
    render.send_signal(signal.SIGTERM)
    assert render.wait(timeout=120) == 130
    err = render.stderr.read()
    assert "stopped by SIGTERM" in err, err
    written = sorted(p.name for p in (shot_dir / "cancel").iterdir())
    assert 2 <= len(written) < N and all(not n.startswith(".") for n in written)  # complete files only
    assert proc.poll() is None  # the worker goes on, and the next render resumes from the cache
    rc, events, err = _run(cmd, _env(sock))
    assert rc == 0, err
    assert events[-1]["cache"]["steps_cached"] >= 2
    assert sorted(p.name for p in (shot_dir / "cancel").iterdir()) == [f"a.{f:04d}.exr" for f in range(1, N + 1)]


def test_a_worker_of_another_environment_is_not_used(shot_dir: Path, worker: tuple) -> None:
    sock, proc = worker
    cpu0 = _worker_cpu(proc)
    rc, events, err = _run(_cmd(shot_dir, "env"), _env(sock, OMP_NUM_THREADS="1"))
    assert rc == 0, err
    assert "did not take this render" in err and "rendering in this process" in err, err
    assert re.search(r"another \$OMP_NUM_THREADS \(the worker's [^,]+, this render's '1'\)", err), err  # both values
    assert events[-1]["frames_written"] == N
    assert _worker_cpu(proc) - cpu0 < 0.5  # rendered by vom render itself


def test_a_shot_request_is_the_clients_shot_its_paths_read_once(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The client sends its Shot's final paths (``Shot.from_yaml`` expanded $SHOW, ``$$`` and overrides given as
    text): the worker builds the same Shot, expanding nothing again (a $ of a folder's own, a variable's value)."""
    from vom_plugin.engine.shot import Shot
    from vom_plugin.worker.server import shot_from_request

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QA_SHOW", str(tmp_path / "show$QA_SEQ"))
    monkeypatch.setenv("QA_SEQ", "sq01")
    f = tmp_path / "s.yaml"
    f.write_text("plate: $QA_SHOW/p.####.exr\nkeyframes: {1: r$$QA_SEQ/r.0001.exr}\nout: o/a.####.exr\n")
    shot = Shot.from_yaml(f, out="$QA_SHOW/o$$QA_SEQ/a.####.exr", cache="$QA_SHOW/c")
    sent = json.loads(json.dumps(shot.to_dict()))
    got = shot_from_request(sent, str(shot.source_file))
    assert got == shot and got.source_file == shot.source_file
    assert got.out == str(tmp_path / "show$QA_SEQ" / "o$QA_SEQ" / "a.####.exr")
    assert got.keyframes == {1: tmp_path / "r$QA_SEQ" / "r.0001.exr"}


def test_a_refusal_says_both_values_of_what_differs() -> None:
    """QA: a refusal named the variable ("another $OMP_NUM_THREADS") but neither value, so the artist could not tell
    what to set; a signing key's value is never said (the worker's log keeps the reason)."""
    from vom_plugin.worker.server import differences

    ours = {"vom": "1", "umask": 0o022, "cpus": 2, "groups": [100, [100, 27]],
            "env": {"OMP_NUM_THREADS": "4", "VOM_CACHE_KEY": "s3cret", "VOM_CACHE_DIR": "/a"}}
    theirs = {"vom": "1", "umask": 0o002, "cpus": 1, "groups": [100, [100]],
              "env": {"VOM_CACHE_KEY": "other", "VOM_CACHE_DIR": "/b", "VOM_CACHE_MAX_GB": "5"}}
    got = differences(ours, theirs)
    assert got == [
        "number of usable CPUs (taskset, a farm slot's affinity: its thread count) (the worker's 2, this render's 1)",
        "group or group list (files are made with the group, folders opened by them) (the worker's group 100, groups "
        "100,27, this render's group 100, groups 100)",
        "umask (the worker's 022, this render's 002)",
        "$OMP_NUM_THREADS (the worker's '4', this render's unset)",
        "$VOM_CACHE_DIR (the worker's '/a', this render's '/b')",
        "$VOM_CACHE_KEY (both set, to other values)",
        "$VOM_CACHE_MAX_GB (the worker's unset, this render's '5')"], got
    assert "s3cret" not in " ".join(got) and "other" not in " ".join(differences(ours, {**ours, "env": {}}))


def test_no_worker_or_a_dead_one_renders_in_process(shot_dir: Path, tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    stale = tmp_path / "dead.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))
    s.close()  # a socket file nobody listens on, as a killed worker leaves it
    for sock in (tmp_path / "none.sock", stale):
        rc, events, err = _run(_cmd(shot_dir, f"solo_{sock.stem}"), _env(sock))
        assert rc == 0, err
        assert events[-1]["frames_written"] == N and "worker" not in err


def test_a_socket_folder_this_user_cannot_look_into_is_not_used(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Another user's 0700 folder (XDG_RUNTIME_DIR kept by `su` without `-`): looking for the socket there raises
    PermissionError, which stopped every default render with exit 2; the render goes on in its own process."""
    from vom_plugin.worker import client

    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    sock = theirs / "vom-worker.sock"
    monkeypatch.setenv("VOM_WORKER_SOCKET", str(sock))
    real_lstat = os.lstat

    def lstat(path: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(path) == sock:  # as root the kernel would let us in: the refusal a user gets, made here
            raise PermissionError(13, "Permission denied", str(path))
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", lstat)
    notes: list[str] = []
    assert client.render_in_worker(object(), note=notes.append) is None
    assert notes == [f"not using the worker socket {sock}: Permission denied; rendering in this process"]


def test_the_socket_folder_must_be_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    open_folder = tmp_path / "open"
    open_folder.mkdir(mode=0o755)
    open_folder.chmod(0o755)
    assert "can be entered by other users (mode 755" in (private_folder_problem(open_folder) or "")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert private_folder_problem(private) is None
    # the worker refuses to listen there (exit 2, nothing created), and vom render will not connect there
    done = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "worker", "--socket", str(open_folder / "w.sock")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "can be entered by other users" in done.stderr
    assert not (open_folder / "w.sock").exists()
    monkeypatch.setenv("VOM_WORKER_SOCKET", str(open_folder / "w.sock"))
    assert socket_path() == open_folder / "w.sock"
    # VOM_WORKER_SOCKET naming a folder: said so, not that the folder above it is shared (QA)
    from vom_plugin.worker.client import _connect

    monkeypatch.setenv("VOM_WORKER_SOCKET", str(open_folder))
    sock, why = _connect()
    assert sock is None and why == (f"not using the worker socket {open_folder}: it is a folder, not a socket; set "
                                    f"VOM_WORKER_SOCKET to a file in it (e.g. {open_folder / 'vom-worker.sock'})")
    # a file or a link there: said, so that --start-worker does not start a worker bound to fail (QA: 2 s of torch
    # on every Analyze, unsaid)
    (private / "file.sock").write_text("important")
    (private / "link.sock").symlink_to(private / "file.sock")
    for name, what in (("file.sock", "a file"), ("link.sock", "a link")):
        monkeypatch.setenv("VOM_WORKER_SOCKET", str(private / name))
        sock, why = _connect()
        assert sock is None and why == (f"not using the worker socket {private / name}: it is {what}, not a socket, "
                                        f"which a worker does not replace; move it away or set VOM_WORKER_SOCKET to "
                                        f"another path"), why
    assert (private / "file.sock").read_text() == "important"


def test_a_file_or_folder_at_the_socket_path_is_never_deleted(tmp_path: Path) -> None:
    """Only a stale socket is replaced: a user's file there was unlinked (and a folder raised a traceback)."""
    from vom_plugin.worker.server import Worker

    folder = tmp_path / "s"
    folder.mkdir(mode=0o700)
    notes = folder / "notes.txt"
    notes.write_text("my notes")
    (folder / "adir").mkdir()
    (folder / "link").symlink_to(notes)
    for path, what in ((notes, "a file"), (folder / "adir", "a folder"), (folder / "link", "a link")):
        with pytest.raises(InputError, match=rf"worker socket {re.escape(str(path))} is {what}, not a socket"):
            Worker(path).bind()
    assert notes.read_text() == "my notes" and (folder / "adir").is_dir() and (folder / "link").is_symlink()
    assert not list(folder.glob("*.lock"))  # no lock file left beside a path that is refused
    # a link at the lock's name is not followed (it made its target, outside the private folder)
    outside = tmp_path / "outside_created"
    (folder / "w2.sock.lock").symlink_to(outside)
    with pytest.raises(InputError, match="lock .* cannot be used"):
        Worker(folder / "w2.sock").bind()
    assert not outside.exists()
    # a socket left by a killed worker (its lock beside it) is replaced
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(folder / "w.sock"))
    stale.close()
    (folder / "w.sock.lock").write_bytes(b"vom worker\n")  # the mark a worker leaves once it bound
    Worker(folder / "w.sock").bind().close()
    # a file of the user's at the lock's name is neither truncated nor taken (QA: cut to the mark)
    (folder / "w3.sock.lock").write_text("important user data")
    with pytest.raises(InputError, match=r"lock .*w3\.sock\.lock cannot be used \(it is a file vom did not write\)"):
        Worker(folder / "w3.sock").bind()
    assert (folder / "w3.sock.lock").read_text() == "important user data"


def test_a_second_worker_on_the_same_socket_is_refused(worker: tuple) -> None:
    sock, _ = worker
    done = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "worker"], env=_env(sock), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "listens on" in done.stderr and "already" in done.stderr
    assert sock.exists()


def test_the_environment_a_worker_must_share(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOM_CACHE_DIR", "/x")
    monkeypatch.setenv("VOM_WORKER_SOCKET", "/y/w.sock")  # where to find the worker: not part of it
    monkeypatch.setenv("VOM_WORKER_MEMO_MB", "64")  # how much the worker keeps: changes no pixel
    env = environment()
    assert env["env"]["VOM_CACHE_DIR"] == "/x" and "VOM_WORKER_SOCKET" not in env["env"]
    assert "VOM_WORKER_MEMO_MB" not in env["env"]
    assert set(env) == {"vom", "package", "code", "libraries", "env", "umask", "cpus", "groups", "farm_threads"}
    assert env["cpus"] == len(os.sched_getaffinity(0))  # taskset -c 0 changes torch's threads, and the sums
    # the groups files are made with and folders opened by: a group joined since the worker started (QA: its
    # render failed on a folder the client may write, exit 1; through `sg` its files took another group)
    assert env["groups"] == [os.getgid(), sorted(set(os.getgroups()))]
    with monkeypatch.context() as m:
        groups = os.getgroups()
        m.setattr(os, "getgroups", lambda: [*groups, 4242])
        assert environment()["groups"] != env["groups"]
    with monkeypatch.context() as m:
        m.setattr(os, "getgid", lambda: 4242)
        assert environment()["groups"] != env["groups"]
    # OpenMP's wait policy changes speed only, and each vom process picks its own from the machine's load: a
    # worker and a render started from one shell a second apart differed, and the render was refused
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv("GOMP_SPINCOUNT", "10000")
    assert environment() == env
    # OpenCue's booked cores are the render's threads where no OMP_NUM_THREADS says otherwise: compared then only
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setenv("CUE_THREADS", "3")
    assert environment()["farm_threads"] == 3 and "CUE_THREADS" not in environment()["env"]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # that one changes the sums
    assert environment()["env"]["OMP_NUM_THREADS"] == "1" and environment()["farm_threads"] is None


def test_relative_folders_in_the_environment_are_compared_as_the_folders_they_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """VOM_WEIGHTS_DIR=weights means the client's ./weights: a worker started in another folder resolved it
    there and rendered with other weights (exit 0, other pixels)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.setenv("VOM_WEIGHTS_DIR", "weights")
    monkeypatch.setenv("XDG_CACHE_HOME", "cache")
    monkeypatch.chdir(tmp_path / "a")
    in_a = environment()
    assert in_a["env"]["VOM_WEIGHTS_DIR"] == str(tmp_path / "a" / "weights")
    assert in_a["env"]["XDG_CACHE_HOME"] == str(tmp_path / "a" / "cache")
    monkeypatch.chdir(tmp_path / "b")
    assert environment()["env"]["VOM_WEIGHTS_DIR"] != in_a["env"]["VOM_WEIGHTS_DIR"]  # so the worker refuses
    monkeypatch.setenv("VOM_WEIGHTS_DIR", str(tmp_path / "a" / "weights"))
    assert environment()["env"]["VOM_WEIGHTS_DIR"] == in_a["env"]["VOM_WEIGHTS_DIR"]


def test_the_code_fingerprint_follows_the_package_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vom_plugin import locations
    from vom_plugin.worker import code_fingerprint

    (tmp_path / "engine").mkdir()
    src = tmp_path / "engine" / "runner.py"
    src.write_text("x = 1\n")
    monkeypatch.setattr(locations, "PACKAGE_DIR", tmp_path)
    first = code_fingerprint()
    assert code_fingerprint() == first
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 1_000_000))  # a checkout's new file
    assert code_fingerprint() != first
    (tmp_path / "engine" / "new.py").write_text("")
    assert len({first, code_fingerprint()}) == 2


def test_a_worker_whose_code_changed_refuses_and_exits(tmp_path: Path) -> None:
    """An editable install updated by git keeps its version: the worker started before would render with the
    old code. It refuses (the client renders in its own process) and leaves, so the next one starts afresh."""
    import socket

    from vom_plugin.worker import recv_lines
    from vom_plugin.worker.server import Worker

    w = Worker(tmp_path / "w.sock")
    now = dict(w.env)  # the installation as it is: what a client sends
    w.env["code"] = "0" * 16  # the worker's files as they were when it started
    ours, theirs = socket.socketpair()
    with ours, theirs:
        w.request(ours, {"op": "render", "environment": now}, bytearray())
        got = recv_lines(theirs, bytearray())
    assert got and got[0]["event"] == "refused" and "the installation has changed since" in got[0]["reason"]
    assert w.closing and not w.busy.locked()
    # a checkout that changed the version too: the same installation (its folder), not "another vom installation's"
    # naming the client's own folder (QA); both builds said, and how a worker of this one starts
    import io

    log = io.StringIO()
    w = Worker(tmp_path / "w.sock", log=log)
    w.env["code"] = "1" * 16
    ours, theirs = socket.socketpair()
    with ours, theirs:
        w.request(ours, {"op": "render", "environment": {**now, "vom": "9.9.9"}, "build": "feedbeef0000"},
                  bytearray())
        got = recv_lines(theirs, bytearray())
    assert got and got[0]["event"] == "refused" and w.closing
    assert got[0]["reason"] == (f"it runs vom {w.env['vom']} (build {w.build}) as it was when it started; the "
                                f"installation has changed since, to vom 9.9.9 (build feedbeef0000), so the worker "
                                f"(pid {os.getpid()}) exits: the next `vom render --start-worker` (what the Nuke and "
                                f"Blender nodes run) or `vom worker` starts one of this installation")
    assert log.getvalue() == (f"vom worker: vom {w.env['vom']} (build {w.build}) changed since this worker started, to "
                              f"vom 9.9.9 (build feedbeef0000): exiting\n")
    # the files written again, the same version and build (a checkout and back, a reinstall): said as such, not
    # "changed ... to" the very same build (review)
    w = Worker(tmp_path / "w.sock")
    w.env["code"] = "2" * 16
    ours, theirs = socket.socketpair()
    with ours, theirs:
        w.request(ours, {"op": "render", "environment": now, "build": w.build}, bytearray())
        got = recv_lines(theirs, bytearray())
    assert got[0]["reason"].startswith(f"it runs vom {w.env['vom']} (build {w.build}) as it was when it started; the "
                                       f"installation has changed since (its files were written again, the same "
                                       f"build), so the worker"), got[0]["reason"]
    # another installation of the same version (a dev checkout beside the show's): refused, and the worker stays
    w = Worker(tmp_path / "w.sock")
    ours, theirs = socket.socketpair()
    with ours, theirs:
        w.request(ours, {"op": "render", "environment": {**w.env, "package": "/other/vom_plugin", "code": "x"}},
                  bytearray())
        got = recv_lines(theirs, bytearray())
    assert got and got[0]["event"] == "refused" and not w.closing
    assert got[0]["reason"] == (f"it is another vom installation's ({w.env['package']}, pid {os.getpid()}); stop it, "
                                f"or set VOM_WORKER_SOCKET to another path for this one")
    # an older vom's client sends fewer keys (no groups): it is another installation, not another group (QA)
    older = {k: v for k, v in w.env.items() if k != "groups"}
    ours, theirs = socket.socketpair()
    with ours, theirs:
        w.request(ours, {"op": "render", "environment": {**older, "package": "/old/vom_plugin", "code": "y"}},
                  bytearray())
        got = recv_lines(theirs, bytearray())
    assert "another vom installation's" in got[0]["reason"] and "group" not in got[0]["reason"]


def test_a_client_that_loaded_vom_before_an_upgrade_does_not_make_a_current_worker_exit(tmp_path: Path) -> None:
    """Review: a worker took any difference of version or code for its own staleness, so a process that had loaded
    vom before an upgrade (a host's Python session running the CLI in-process) stopped every worker started after
    the upgrade. A worker whose files and libraries are as installed refuses that client and stays."""
    import io
    import socket

    from vom_plugin.worker import recv_lines
    from vom_plugin.worker.server import Worker

    log = io.StringIO()
    w = Worker(tmp_path / "w.sock", log=log)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        w.request(ours, {"op": "render", "environment": {**w.env, "vom": "0.0.9"}, "build": "0ldb0ld0"}, bytearray())
        got = recv_lines(theirs, bytearray())
    assert got and got[0]["event"] == "refused" and not w.closing and not w.busy.locked()
    assert got[0]["reason"] == (f"the client runs vom 0.0.9 (build 0ldb0ld0), loaded before the installation changed "
                                f"to the vom {w.env['vom']} (build {w.build}) this worker (pid {os.getpid()}) runs; "
                                f"restart the client's process to render with it")
    assert log.getvalue() == ("vom worker: refused a render: a client of vom 0.0.9 (build 0ldb0ld0), loaded before "
                              "the installation changed\n")
    # its libraries alone differ (another environment sharing this checkout): no stale client, both torches named
    ours, theirs = socket.socketpair()
    with ours, theirs:
        other = {**w.env["libraries"], "torch": "9.9.9"}
        w.request(ours, {"op": "render", "environment": {**w.env, "libraries": other}, "build": w.build}, bytearray())
        got = recv_lines(theirs, bytearray())
    assert got[0]["event"] == "refused" and not w.closing
    assert "loaded before" not in got[0]["reason"] and "9.9.9" in got[0]["reason"], got[0]["reason"]
    assert got[0]["reason"].startswith("it runs with another libraries (the worker's "), got[0]["reason"]


def test_a_worker_whose_torch_was_upgraded_under_it_refuses_and_exits(tmp_path: Path) -> None:
    """pip upgraded torch in the worker's environment after it started: it would render with the torch it loaded,
    the client with the new one (its code fingerprint covers vom's files only)."""
    import socket
    from importlib import metadata

    from vom_plugin.worker import recv_lines
    from vom_plugin.worker.server import Worker

    w = Worker(tmp_path / "w.sock")
    assert w.env["libraries"]["torch"] == metadata.version("torch")
    now = dict(w.env)
    w.env = {**w.env, "libraries": {**w.env["libraries"], "torch": "0.1.0"}}  # what it loaded, before pip's upgrade
    ours, theirs = socket.socketpair()
    with ours, theirs:
        w.request(ours, {"op": "render", "environment": now}, bytearray())
        got = recv_lines(theirs, bytearray())
    assert got and got[0]["event"] == "refused", got
    assert "it runs torch 0.1.0 as it was when it started" in got[0]["reason"]
    assert w.closing and not w.busy.locked()


def test_start_worker_starts_one_in_the_background_and_the_next_render_uses_it(shot_dir: Path,
                                                                                  tmp_path: Path) -> None:
    from conftest import stop_started_workers

    folder = tmp_path / "sock"  # made by the client, 0700
    env = _env(folder / "w.sock")
    try:
        rc, events, err = _run(_cmd(shot_dir, "started", "--start-worker"), env)
        assert rc == 0, err
        assert "rendering in this process" not in err and events[-1]["frames_written"] == N
        # the worker's start is the render's time too (QA: its closing time left it out)
        assert 0 < events[-1]["worker_start"] < events[-1]["elapsed"], events[-1]
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        log = (folder / "w.sock.log").read_text()  # named for its socket (a bare worker.log in a shared folder)
        assert "listening on" in log and "idle" not in log
        pid = int(re.search(r"\(pid (\d+),", log).group(1))
        os.kill(pid, 0)  # it outlived the `vom render` that started it
        # the next render (no --start-worker needed) is taken by it, and renders the same pixels
        rc, events, err = _run(_cmd(shot_dir, "started2"), env)
        assert rc == 0 and "rendering in this process" not in err, err
        assert "worker_start" not in events[-1]
        log = (folder / "w.sock.log").read_text()
        assert log.count("listening on") == 1  # no second worker
        # what it did is in its log (a QA pass: "listening" and "exiting" were all it ever said)
        assert log.count(f"render of {shot_dir / 'plate' / 'p.####.exr'} began") == 2, log
        assert re.search(rf"render of .*p\.####\.exr: {N} frames in [0-9.]+ s", log), log
        a, b = outputs(shot_dir / "started"), outputs(shot_dir / "started2")
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
        rc, _, err = _run(_cmd(shot_dir, "x", "--start-worker", "--no-worker"), env)
        assert rc == 2 and "--start-worker and --no-worker" in err
    finally:
        assert stop_started_workers(folder)
    assert not (folder / "w.sock").exists()


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_a_bad_idle_exit_is_refused(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    from vom_plugin.cli import main

    assert main(["worker", "--idle-exit", value]) == 2
    assert f"--idle-exit {value}: expected seconds >= 0" in capsys.readouterr().err


def test_a_second_signal_stops_waiting_for_a_worker_that_does_not_answer() -> None:
    """A worker stopped with SIGSTOP (or hung) mid-render never answers the cancel: the first SIGINT is passed
    on, the second ends the wait (exit 130 in `vom render`), and the worker got both cancels."""
    import socket
    import threading

    from vom_plugin.errors import CancelledError
    from vom_plugin.worker import recv_lines
    from vom_plugin.worker.client import _forward_signals, _relay

    ours, worker_end = socket.socketpair()

    def interrupt_twice() -> None:
        for _ in range(2):
            time.sleep(0.3)
            os.kill(os.getpid(), signal.SIGINT)

    with ours, worker_end:
        threading.Thread(target=interrupt_twice, daemon=True).start()
        with pytest.raises(CancelledError, match=r"stopped by SIGINT again after \d+ frames.*: not waiting for the vom "
                                                 r"worker"), \
                _forward_signals(ours):
            _relay(ours, bytearray(), [], None)
        worker_end.settimeout(5)
        got, buffer = [], bytearray()
        while len(got) < 2:
            got += recv_lines(worker_end, buffer) or []
    assert [m["op"] for m in got] == ["cancel", "cancel"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_workers_starting_together_over_a_stale_socket_leave_one_listening(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Probe, remove the stale socket, bind: without a lock a second worker removed the first's new socket and
    bound its own, and the first listened where no client could reach it (torch loaded, for 30 minutes)."""
    import socket
    import threading

    from vom_plugin.errors import InputError
    from vom_plugin.worker.server import Worker

    unlink = Path.unlink

    def slow_unlink(self: Path, *a: Any, **k: Any) -> None:  # the window between the probe and the bind, widened
        time.sleep(0.05)
        unlink(self, *a, **k)

    monkeypatch.setattr(Path, "unlink", slow_unlink)

    folder = tmp_path / "s"
    folder.mkdir(mode=0o700)
    path = folder / "w.sock"
    for _trial in range(5):
        if not path.exists():
            stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            stale.bind(str(path))
            stale.close()  # a socket file nobody listens on: a killed worker's (as the last trial leaves it)
            (folder / "w.sock.lock").write_bytes(b"vom worker\n")  # with the lock the worker marked beside it
        bound: list[socket.socket] = []
        refused: list[str] = []
        gate = threading.Barrier(6)

        def start(gate: threading.Barrier, bound: list[socket.socket], refused: list[str]) -> None:
            gate.wait()
            try:
                bound.append(Worker(path).bind())
            except InputError as e:
                refused.append(str(e))

        threads = [threading.Thread(target=start, args=(gate, bound, refused)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(bound) == 1 and len(refused) == 5 and all("already (a vom worker" in r for r in refused)
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.connect(str(path))  # the one listening is the one at the path
        probe.close()
        bound[0].close()


def test_refused_requests_do_not_keep_an_idle_worker_alive(tmp_path: Path) -> None:
    """A worker that cannot serve its clients (another environment) refused each render and stayed, since a refusal
    reset its idle clock: --start-worker never got to start one that could. A request in hand is answered first."""
    from vom_plugin.worker import recv_lines, send

    tmp_path.chmod(0o700)
    sock = tmp_path / "w.sock"
    proc = _start_worker(sock, "3")
    try:
        answers = []
        stop = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < stop:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(str(sock))
                    send(s, {"op": "render", "environment": {**environment(), "umask": 0o777}, "shot": {}})
                    answers += recv_lines(s, bytearray()) or []
                except OSError:  # it has just closed its socket
                    pass
            time.sleep(0.5)
        assert proc.poll() is not None, "a worker asked every 0.5 s by clients it refuses never idled out"
        assert proc.wait() == 0
        assert answers and all(a["event"] == "refused" and "umask" in a["reason"] for a in answers)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_signal_to_the_worker_is_said_as_the_workers_not_the_clients(tmp_path: Path) -> None:
    """A QA pass: SIGTERM to the worker made its client say "stopped by SIGTERM after 8 of 24 frames", though the
    client had received no signal."""
    from vom_plugin.engine.stop import Stop
    from vom_plugin.worker.server import Worker

    w = Worker(tmp_path / "w.sock")
    w.stop = Stop()
    w._on_signal(signal.SIGTERM, None)
    assert w.closing and w.stop.signal == signal.SIGTERM and w.stop.by == "SIGTERM to the vom worker"
    client = Stop()
    client.set(signal.SIGINT)  # the client's own, forwarded
    assert client.by == "SIGINT"


def test_the_socket_path_is_made_as_given_and_a_folder_is_refused(tmp_path: Path) -> None:
    """A QA pass: VOM_WORKER_SOCKET=/nonexist/dir/w.sock made /nonexist/dir from the root; one naming an existing
    folder was refused as "can be entered by other users" (its parent's mode)."""
    from vom_plugin.errors import InputError
    from vom_plugin.worker import make_private_folder
    from vom_plugin.worker.server import Worker

    with pytest.raises(InputError, match=r"worker socket folder .*missing/dir cannot be created: No such file"):
        make_private_folder(tmp_path / "missing" / "dir")
    assert not (tmp_path / "missing").exists()
    make_private_folder(tmp_path / "mine")
    assert (tmp_path / "mine").stat().st_mode & 0o777 == 0o700
    (tmp_path / "mine" / "sock").mkdir()
    with pytest.raises(InputError, match=r"worker socket .*mine/sock is a folder, not a socket; expected the path"):
        Worker(tmp_path / "mine" / "sock").bind()


def test_without_unix_sockets_renders_run_in_process(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Windows' Python has no AF_UNIX (nor os.getuid): the Nuke and Blender nodes pass --start-worker to every
    render, which then failed with a traceback (an AttributeError, exit 1). Now the render runs in the process
    and `vom worker` says why it cannot listen."""
    import vom_plugin.worker.client as client
    from vom_plugin.cli import main

    monkeypatch.delattr(socket, "AF_UNIX")
    monkeypatch.delattr(os, "getuid")
    monkeypatch.setattr(client, "start_worker", lambda **kw: pytest.fail("no worker can start here"))
    assert client.render_in_worker(object(), start=True) is None
    assert main(["worker"]) == 2
    assert "vom worker listens on a Unix socket, which this system's Python lacks" in capsys.readouterr().err


def test_renders_that_end_at_once_leave_no_traceback_in_the_workers_log(shot_dir: Path, tmp_path: Path) -> None:
    """A QA pass: renders that failed or finished at once in the worker left "Exception in thread
    vom-worker-client ... OSError: [Errno 9] Bad file descriptor" in its log (the worker.log the Nuke and Blender
    nodes keep) about every other time: the connection was closed before its listening thread set it up."""
    tmp_path.chmod(0o700)
    sock = tmp_path / "w.sock"
    proc = _start_worker(sock, "600")
    try:
        for i in range(8):  # a roto that does not exist: refused at once, in the worker
            rc, events, err = _run(_cmd(shot_dir, f"gone{i}", roto="nope.0001.exr"), _env(sock))
            assert rc == 2 and events[-1]["event"] == "error", err
    finally:
        proc.send_signal(signal.SIGTERM)
        _, log = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "Traceback" not in log and "Exception in thread" not in log, log


def test_the_worker_log_is_vom_s_own_never_a_users_file_or_a_link(tmp_path: Path) -> None:
    """A QA pass: `--start-worker` appended the worker's messages to whatever file lay at `<socket>.log`, through a
    link too. The log is made with a first line saying whose it is; another file or a link there is refused (the
    render then runs in its own process, saying why)."""
    from vom_plugin.errors import InputError
    from vom_plugin.worker.client import _open_log

    log = tmp_path / "w.sock.log"
    with _open_log(log) as f:
        f.write(b"vom worker: listening\n")
    with _open_log(log) as f:  # its own: appended to
        f.write(b"vom worker: idle\n")
    assert log.read_text().splitlines()[1:] == ["vom worker: listening", "vom worker: idle"]
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    mine = tmp_path / "x.sock.log"
    mine.write_text("a file of mine")
    (tmp_path / "y.sock.log").symlink_to(notes)
    for path, said in ((mine, "is not a vom worker's log"), (tmp_path / "y.sock.log", "is a link")):
        with pytest.raises(InputError, match=said):
            _open_log(path)
    assert notes.read_text() == "mine" and mine.read_text() == "a file of mine"


def test_a_dead_socket_of_another_program_is_not_removed(tmp_path: Path) -> None:
    """A QA pass: `vom worker --socket PATH` deleted another program's socket that was not listening (taken for a
    killed worker's). Only a socket with a worker's lock beside it is a worker's."""
    from vom_plugin.errors import InputError
    from vom_plugin.worker.server import Worker

    folder = tmp_path / "p"
    folder.mkdir(mode=0o700)
    other = folder / "other.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(other))
    s.close()  # bound, never listening: dead
    for _ in range(2):  # a refused try leaves a lock, which is no worker's mark (a review: the retry deleted it)
        with pytest.raises(InputError, match="is a dead socket that no vom worker is known to have bound"):
            Worker(other).bind()
    assert stat.S_ISSOCK(os.lstat(other).st_mode)
    (folder / "other.sock.log").write_text(f"vom worker: listening on {other} (pid 1, torch 2, 2 threads)\n")
    Worker(other).bind().close()  # a worker listened there (its log says so: one from before the lock's mark)
    assert (folder / "other.sock.lock").read_bytes() == b"vom worker\n"  # and this one marked it


def test_a_start_worker_worker_that_finds_a_vom_worker_listening_leaves_quietly(
        worker: tuple[Path, subprocess.Popen], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: two `--start-worker` renders at once, no worker running: one worker bound, and the other's log said
    "vom worker: error: a program listens on ... already ...; choose another path ... for another worker", for the
    outcome wanted. A worker --start-worker started leaves with one plain line (exit 0); one started by hand, or one
    that finds a listener no vom worker is known to have bound, is refused as before."""
    from vom_plugin.worker import client
    from vom_plugin.worker.server import Worker

    sock, _ = worker
    monkeypatch.setenv("VOM_WORKER_SOCKET", str(sock))
    log = client.worker_log(sock)
    said_from = log.stat().st_size if log.exists() else 0
    notes: list[str] = []
    assert client.start_worker(idle_exit_s=5, note=notes.append) is True and notes == []
    assert client._STARTED[-1].wait(timeout=60) == 0
    with log.open("rb") as f:
        f.seek(said_from)
        said = f.read().decode()
    lines = [line for line in said.splitlines() if not line.startswith("vom worker log: ")]  # the new log's head
    assert lines == [f"vom worker: a vom worker listens on {sock} already (started by another render at the same "
                     f"time): renders go to it; this one exits"], said
    by_hand = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "worker", "--idle-exit", "5"], env=_env(sock),
                             capture_output=True, text=True, timeout=60)
    assert by_hand.returncode == 2 and f"vom worker: error: a program listens on {sock} already" in by_hand.stderr \
        and "choose another path" in by_hand.stderr, by_hand.stderr
    folder = tmp_path / "s"
    folder.mkdir(mode=0o700)
    other = folder / "o.sock"  # another program's listening socket: no vom worker's mark beside it
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(other))
        s.listen(1)
        with pytest.raises(InputError, match=r"a program listens on .*o\.sock already .*choose another path"):
            Worker(other, started_by_render=True).serve()


def test_a_dead_socket_no_worker_bound_is_refused_before_torch_and_said_by_start_worker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a dead socket with no worker's mark beside it (an older vom's killed worker) was found only after the
    worker had imported torch, and `--start-worker` said "did not start (exit 2; see LOG)": every Analyze of a host
    paid ~3 s more and its user never saw why. The worker refuses before importing torch; the client says why."""
    import vom_plugin
    from vom_plugin.errors import InputError
    from vom_plugin.worker import client
    from vom_plugin.worker.server import Worker

    folder = tmp_path / "s"
    folder.mkdir(mode=0o700)
    sock = folder / "w.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(sock))
    s.close()

    def no_torch() -> None:
        raise AssertionError("torch imported before the socket was checked")

    monkeypatch.setattr(vom_plugin, "import_torch", no_torch)
    with pytest.raises(InputError, match="is a dead socket that no vom worker is known to have bound"):
        Worker(sock).serve()
    monkeypatch.undo()
    monkeypatch.setenv("VOM_WORKER_SOCKET", str(sock))
    notes: list[str] = []
    assert client.start_worker(idle_exit_s=5, note=notes.append) is False
    assert len(notes) == 1 and "the vom worker did not start (exit 2: worker socket " in notes[0], notes
    assert "is a dead socket that no vom worker is known to have bound" in notes[0]
    assert f"(rm {sock})" in notes[0] and notes[0].endswith("rendering in this process")
    assert stat.S_ISSOCK(os.lstat(sock).st_mode)  # left as it is


def test_a_worker_that_takes_no_connection_is_said_and_never_waited_for(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A QA pass: a worker stopped (SIGSTOP, Ctrl-Z) with its queue of connections full: `--start-worker` took it
    for no worker, started another, which hung for good in its probe of the socket, and waited 120 s; a plain render
    fell back without a word. Now the client says the worker does not answer (and starts none), and a new worker's
    probe gives up with exit 2."""
    from vom_plugin.errors import InputError
    from vom_plugin.worker import client
    from vom_plugin.worker.server import Worker

    folder = tmp_path / "s"
    folder.mkdir(mode=0o700)
    path = folder / "w.sock"
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.bind(str(path))
    stuck.listen(0)  # never accepts: a stopped worker
    filled = []
    try:
        for _ in range(64):  # fill its queue
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(0.2)
            try:
                c.connect(str(path))
            except OSError:
                c.close()
                break
            filled.append(c)
        monkeypatch.setenv("VOM_WORKER_SOCKET", str(path))
        monkeypatch.setattr(client, "start_worker", lambda **k: pytest.fail("a second worker was started"))
        sock, why = client._connect()
        assert sock is None and why is not None and "does not answer" in why, why
        t0 = time.monotonic()
        with pytest.raises(InputError, match="takes no connection"):
            Worker(path).bind()
        assert time.monotonic() - t0 < 30
    finally:
        for c in filled:
            c.close()
        stuck.close()


def test_a_worker_that_takes_the_connection_and_never_answers_is_said_stopped(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a worker stopped with Ctrl-Z (SIGSTOP) takes the connection into its queue and never answers; the render
    said "did not take this render (no answer)", where README says a stopped worker is said as such."""
    from vom_plugin.engine.shot import Shot
    from vom_plugin.worker import client

    folder = tmp_path / "s"
    folder.mkdir(mode=0o700)
    path = folder / "w.sock"
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.bind(str(path))
    stuck.listen(4)  # takes connections into its queue, never accepts one: a stopped worker
    monkeypatch.setenv("VOM_WORKER_SOCKET", str(path))
    demo = Path(__file__).resolve().parents[1] / "vom_plugin" / "data" / "demo"
    said: list[str] = []
    try:
        got = client.render_in_worker(Shot.from_yaml(demo / "shot.yaml"), note=said.append)
    finally:
        stuck.close()
    assert got is None and len(said) == 1, said
    assert f"did not take this render (no answer in {client.CONNECT_TIMEOUT_S:g} s: stopped (Ctrl-Z) or stuck; see " \
           f"{client.worker_log(path)})" in said[0], said


def test_a_client_that_went_away_is_said_so_in_the_log_not_as_a_signal(shot_dir: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a `vom render` killed (or whose output was closed) mid-render: the worker stopped its render, and its log
    said "stopped by SIGTERM", a signal nobody sent."""
    import socket

    import torch

    from vom_plugin.worker.server import Worker

    w = Worker(tmp_path / "w.sock")
    w.threads = torch.get_num_threads()  # as serve() sets it
    said: list[str] = []
    w.say = said.append  # type: ignore[method-assign]
    fields = {"plate": str(shot_dir / "plate" / "p.####.exr"),
              "keyframes": {"1": str(shot_dir / "roto" / "r.0001.exr")},
              "out": str(tmp_path / "o" / "a.####.exr"), "model": str(shot_dir / "model.safetensors"),
              "working_size": 128, "device": "cpu", "cache": str(tmp_path / "c")}
    import vom_plugin.engine.runner as runner

    real = runner.render

    def once_stopped(shot: object, **kw: object) -> object:  # the render begins once the worker has seen it go
        deadline = time.monotonic() + 30
        while not kw["stop"].is_set() and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.01)
        return real(shot, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "render", once_stopped)
    ours, theirs = socket.socketpair()
    theirs.shutdown(socket.SHUT_WR)  # the client ends its side (killed, its output closed)
    with ours, theirs:
        w.render(ours, {"shot": fields}, bytearray())
    ended = [s for s in said if "ended with exit 130" in s]
    assert ended and "stopped by its vom render going away" in ended[0] and "SIGTERM" not in ended[0], said


def test_a_worker_refuses_clients_whose_cpu_kernels_or_arithmetic_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: ATEN_CPU_CAPABILITY (torch's CPU kernels) and ONEDNN_DEFAULT_FPMATH_MODE (oneDNN's arithmetic) change the
    pixels, and a worker started without them served clients that had them, its own numbers."""
    base = environment()["env"]
    for name, value in (("ATEN_CPU_CAPABILITY", "default"), ("ONEDNN_DEFAULT_FPMATH_MODE", "BF16"),
                        ("DNNL_DEFAULT_FPMATH_MODE", "BF16"), ("NVIDIA_TF32_OVERRIDE", "0")):
        monkeypatch.setenv(name, value)
        assert environment()["env"].get(name) == value and environment()["env"] != base
        monkeypatch.delenv(name)


def _at_the_first_frame_in_a_worker(tmp_path: Path, cmd: list[str], act: Any
                                    ) -> tuple[int, list[dict], str, Path]:
    """``cmd`` (a render, --progress json) through a worker of its own, ``act(worker, render)`` at its first frame
    event: (exit code, events, stderr, socket); the worker is killed at the end whatever happened."""
    folder = tmp_path / "s"
    folder.mkdir(mode=0o700)
    sock = folder / "w.sock"
    proc = _start_worker(sock, "600")
    try:
        render = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(sock))
        assert render.stdout is not None and render.stderr is not None
        events = []
        for line in render.stdout:
            events.append(json.loads(line))
            if events[-1].get("event") == "frame":
                act(proc, render)
                break
        events += [json.loads(x) for x in render.stdout]
        rc = render.wait(timeout=300)
        return rc, events, render.stderr.read(), sock
    finally:
        proc.kill()
        proc.wait(timeout=60)


def test_a_worker_killed_during_a_render_leaves_it_to_vom_render(shot_dir: Path, tmp_path: Path) -> None:
    """A worker killed during a render (OOM killer, a crash) made `vom render` exit 1, as an internal error (QA): the
    render goes on in vom render's process from the cache, and its progress reads as one render (one start, each
    frame once, counts never going back); the pixels are an in-process render's."""
    def kill(worker: subprocess.Popen, _render: subprocess.Popen) -> None:
        worker.send_signal(signal.SIGSTOP)  # no further frame meanwhile
        worker.kill()

    rc, events, err, sock = _at_the_first_frame_in_a_worker(tmp_path, _cmd(shot_dir, "killed"), kill)
    assert rc == 0, err
    assert "the vom worker ended during the render" in err and "rendering the rest in this process" in err, err
    kinds = [e["event"] for e in events if e["event"] != "step"]
    assert kinds == ["start"] + ["frame"] * N + ["done"], kinds
    frames = [e for e in events if e["event"] == "frame"]
    assert sorted(e["frame"] for e in frames) == list(range(1, N + 1))
    assert [e["done"] for e in frames] == list(range(1, N + 1))
    steps = [e["steps_done"] for e in events if "steps_done" in e]
    assert steps == sorted(steps) and events[-1]["cache"]["steps_cached"] >= 1  # the worker's first frame, resumed
    rc, _, err = _run(_cmd(shot_dir, "here", "--no-worker"), _env(sock))
    assert rc == 0, err
    got, ref = outputs(shot_dir / "killed"), outputs(shot_dir / "here")
    assert got.keys() == ref.keys() and all(np.array_equal(got[k], ref[k]) for k in ref)


def test_a_worker_stopped_during_a_render_leaves_it_to_vom_render(shot_dir: Path, tmp_path: Path) -> None:
    """QA: SIGKILL to the worker resumed the render in vom render's process, but SIGTERM (a logout, a pkill, the
    worker's own Ctrl-C) failed it with exit 130, "stopped by SIGTERM to the vom worker", though nobody stopped the
    render: it goes on in vom render's process from the cache; the pixels are an in-process render's."""
    def term(worker: subprocess.Popen, _render: subprocess.Popen) -> None:
        worker.send_signal(signal.SIGTERM)

    rc, events, err, sock = _at_the_first_frame_in_a_worker(tmp_path, _cmd(shot_dir, "termed"), term)
    assert rc == 0, err
    assert "the vom worker was stopped by SIGTERM during the render" in err, err
    assert "rendering the rest in this process" in err, err
    frames = [e for e in events if e["event"] == "frame"]
    assert sorted(e["frame"] for e in frames) == list(range(1, N + 1)) and events[-1]["event"] == "done"
    rc, _, err = _run(_cmd(shot_dir, "termed_here", "--no-worker"), _env(sock))
    assert rc == 0, err
    got, ref = outputs(shot_dir / "termed"), outputs(shot_dir / "termed_here")
    assert got.keys() == ref.keys() and all(np.array_equal(got[k], ref[k]) for k in ref)


def test_the_client_hands_a_stopped_workers_render_back_unless_it_cancelled_it() -> None:
    """The client's half (review): an exit saying ``worker_stopped`` is WorkerGone (the render goes on in vom render)
    for a render nobody cancelled, and the worker's CancelledError (exit 130) for one this client cancelled."""
    from vom_plugin.errors import CancelledError
    from vom_plugin.worker import client

    def relay(cancelled: list[int]) -> BaseException:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            client._CANCELLED[:] = cancelled
            exit_msg = {"event": "exit", "code": 130, "kind": "CancelledError", "worker_stopped": "SIGINT",
                        "message": "stopped by SIGINT to the vom worker after 1 frame"}
            try:
                client._relay(ours, bytearray(), [exit_msg], None)
            except BaseException as e:
                return e
            finally:
                client._CANCELLED.clear()
        raise AssertionError("nothing raised")

    gone = relay([])
    assert isinstance(gone, client.WorkerGone) and "the vom worker was stopped by SIGINT during the render" in str(gone)
    mine = relay([signal.SIGTERM])
    assert type(mine) is CancelledError and mine.exit_code == 130


def test_a_clients_cancel_stays_the_clients_when_the_worker_is_then_signalled(tmp_path: Path) -> None:
    """The worker's own signal after the client's cancel: the render was stopped by the client (exit 130 there),
    not handed back to it."""
    from vom_plugin.engine.stop import Stop
    from vom_plugin.worker.server import Worker

    w = Worker(tmp_path / "w.sock")
    w.stop = Stop()
    w.stop.set(signal.SIGINT)  # the client's, forwarded
    w._on_signal(signal.SIGTERM, None)
    assert w.closing and w.stop.signal == signal.SIGINT and w.stop.by == "SIGINT"


def test_the_progress_of_a_render_a_second_run_finishes_reads_as_one() -> None:
    """engine.progress.Resumable, as vom render wraps a worker's render: one start (the second run's where the worker
    died before its own, review), each frame once with done counting both runs', steps and frames_done never back
    (a second run's steps read back to where the first was are not shown: they went 31 -> 30, and a host's 100% to
    99%, QA)."""
    from vom_plugin.engine.progress import Resumable

    seen: list[dict] = []
    events = Resumable(seen.append)
    events({"event": "step", "steps_done": 1, "steps_total": 4})  # a worker killed before its start (none sent)
    events.resumed = True
    for e in ({"event": "start", "total": 2}, {"event": "step", "steps_done": 1, "steps_total": 4},
              {"event": "frame", "frame": 7, "done": 1}, {"event": "step", "steps_done": 2, "steps_total": 4},
              {"event": "frame", "frame": 8, "done": 2}, {"event": "done", "frames_written": 2}):
        events(e)
    assert [e["event"] for e in seen] == ["step", "start", "frame", "step", "frame", "done"]
    assert events.total == 2
    seen = []
    events = Resumable(seen.append)
    for e in ({"event": "start", "total": 3}, {"event": "step", "steps_done": 3, "steps_total": 4, "frames_done": 0},
              {"event": "frame", "frame": 1, "done": 1}):
        events(e)
    assert events.done is None
    events.resumed = True
    for e in ({"event": "start", "total": 3}, {"event": "step", "steps_done": 1, "steps_total": 3, "frames_done": 0},
              {"event": "frame", "frame": 1, "done": 1}, {"event": "frame", "frame": 2, "done": 1},
              {"event": "step", "steps_done": 3, "steps_total": 3, "frames_done": 1},
              {"event": "frame", "frame": 3, "done": 2}, {"event": "done", "frames_written": 3}):
        events(e)
    assert [(e["event"], e.get("frame"), e.get("done"), e.get("steps_done"), e.get("steps_total"),
             e.get("frames_done")) for e in seen] == [
        ("start", None, None, None, None, None), ("step", None, None, 3, 4, 0), ("frame", 1, 1, None, None, None),
        ("frame", 2, 2, None, None, None), ("step", None, None, 4, 4, 2), ("frame", 3, 3, None, None, None),
        ("done", None, None, None, None, None)]
    assert events.done == {"event": "done", "frames_written": 3}
    # the done event of a render finished here says the whole render's time, the worker's part too (QA: its own 6 s
    # of 8.8)
    seen = []
    events = Resumable(seen.append)
    events({"event": "start", "total": 1})
    events.began -= 10  # the worker ran 10 s before it died
    events.resumed = True
    events({"event": "done", "frames_written": 1, "elapsed": 1.5})
    assert seen[-1]["elapsed"] >= 10 and events.elapsed() >= 10
    assert seen[-1]["elapsed"] == round(seen[-1]["elapsed"], 4)  # to 4 places, as a render's (QA: 2.2257033690002572)
    # a second run counting fewer steps (those before its memory state spared): its share of the first's total, so
    # the bar neither stalls at the first run's count nor jumps to 100% on a smaller total (review)
    seen = []
    events = Resumable(seen.append)
    events({"event": "start", "total": 20})
    events({"event": "step", "steps_done": 35, "steps_total": 40})
    events.resumed = True
    for d in range(1, 21):
        events({"event": "step", "steps_done": d, "steps_total": 20})
    shown = [(e["steps_done"], e["steps_total"]) for e in seen if e["event"] == "step"]
    assert shown == [(35, 40), (36, 40), (38, 40), (40, 40)]



def test_a_socket_in_another_users_folder_is_said_so_not_permission_denied(tmp_path: Path, monkeypatch) -> None:
    """`vom worker --socket /tmp/vom-1001/worker.sock` by another user said only "Permission denied" (Path.is_dir
    raises it there, QA): the folder check says what is wrong."""
    from vom_plugin.worker.server import Worker

    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o755)
    sock = folder / "worker.sock"
    real_is_dir = Path.is_dir

    def is_dir(self: Path) -> bool:
        if self == sock:
            raise PermissionError(13, "Permission denied", str(self))
        return real_is_dir(self)

    monkeypatch.setattr(Path, "is_dir", is_dir)
    with pytest.raises(InputError, match=r"worker socket folder: .*theirs can be entered by other users"):
        Worker(sock, idle_exit_s=0).bind()


def test_a_cancel_sent_to_a_worker_that_then_dies_stops_the_render(shot_dir: Path, tmp_path: Path) -> None:
    """SIGINT to vom render was sent on to the worker; the worker then died (stopped, killed) and vom render
    finished the render itself, exit 0: the cancel was lost (QA). Stopped, exit 130."""
    def cancel_then_kill(worker: subprocess.Popen, render: subprocess.Popen) -> None:
        worker.send_signal(signal.SIGSTOP)  # it cannot answer the cancel
        render.send_signal(signal.SIGINT)
        time.sleep(1.0)
        worker.kill()

    rc, _, err, _ = _at_the_first_frame_in_a_worker(tmp_path, _cmd(shot_dir, "cancel_dead"), cancel_then_kill)
    assert rc == 130, err
    said = r"stopped by SIGINT after \d+ frames?( \([0-9,x-]+\))?; the vom worker ended before it said so"
    assert re.search(said, err), err
    assert "rendering the rest in this process" not in err
    written = sorted(p.name for p in (shot_dir / "cancel_dead").iterdir() if not p.name.startswith("."))
    assert 1 <= len(written) < N
    # the worker killed mid-write may leave the frame in hand as vom's hidden temporary, never under its own name
    # (the next render's sweep takes it); where the kill lands depends on the machine's load
    # the killed worker's claim on the frames stays too, until the next render (nobody holds its lock)
    claims = [p.name for p in (shot_dir / "cancel_dead").iterdir() if p.name.startswith(".vom-writing.")]
    assert len(claims) <= 1 and all(re.fullmatch(r"\.vom-writing\.[\w.-]+\.\d+\.[0-9a-f]{8}\.json", c)
                                    for c in claims), claims
    temps = [p.name for p in (shot_dir / "cancel_dead").iterdir() if p.name.startswith(".") and p.name not in claims]
    assert len(temps) <= 1 and all(re.fullmatch(r"\.a\.\d{4}\.exr\.[\w-]+~\d+-[0-9a-f]{8}\.tmp\.exr", t)
                                   for t in temps), temps


def test_a_stop_of_a_render_taken_over_counts_both_runs_frames() -> None:
    from vom_plugin.commands.render import _stopped_after_resume
    from vom_plugin.engine.progress import Resumable

    events = Resumable(None)
    for e in ({"event": "start", "total": 16}, *({"event": "frame", "frame": f, "done": f} for f in range(1, 15))):
        events(e)
    events.resumed = True
    stop = _stopped_after_resume(KeyboardInterrupt(), events)  # before the second run's own handling began
    # which frames, not only how many (QA: with two keyframes those written are no run from the first)
    assert str(stop).startswith("stopped by SIGINT after 14 of 16 frames (1-14) (the vom worker's and this process's)")
    assert stop.exit_code == 130
    from vom_plugin.errors import CancelledError

    stop = _stopped_after_resume(CancelledError("stopped by SIGTERM after 3 of 16 frames; ...", by="SIGTERM"), events)
    assert str(stop).startswith("stopped by SIGTERM after 14 of 16 frames")


def test_a_killed_writer_not_reaped_yet_is_not_running() -> None:
    """A --start-worker's worker, killed, stays a zombie of its vom render until reaped: its temporary file was kept
    as a live writer's (QA)."""
    from vom_plugin.atomic import _running

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert _running(child.pid)
        child.kill()
        deadline = time.monotonic() + 30
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert not _running(child.pid)  # a zombie: it writes nothing more
    finally:
        child.kill()
        child.wait()


def test_a_warning_the_first_run_said_is_not_said_again_by_the_second() -> None:
    """Review: a render a second run finished (the worker died) sent the notes and the keyframe's warning twice to a
    host reading JSON (only the bar had kept them apart)."""
    from vom_plugin.engine.progress import Resumable

    seen: list[dict] = []
    events = Resumable(seen.append)
    events({"event": "start", "total": 2})
    events({"event": "warning", "message": "keyframe 1: its matte is empty"})
    events.resumed = True
    events({"event": "start", "total": 2})
    events({"event": "warning", "message": "keyframe 1: its matte is empty"})
    events({"event": "warning", "message": "cache eviction failed: disk"})
    assert [e.get("message") for e in seen if e["event"] == "warning"] == [
        "keyframe 1: its matte is empty", "cache eviction failed: disk"]
