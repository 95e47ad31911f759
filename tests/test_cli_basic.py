"""The `vom` entry point: version, info, exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vom_plugin import __version__
from vom_plugin.cli import main


def test_version_prints_package_version_and_build(tmp_path) -> None:
    """Two builds of one version (an editable install updated by a checkout, a farm mid-rollout) said 0.1.0 alike
    (QA): the build is a digest of vom's code, the same for the same files wherever they are."""
    import shutil

    from vom_plugin.digest import build_id

    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0
    assert r.stdout.strip() == f"vom {__version__} (build {build_id()})"
    repo = Path(__file__).resolve().parents[1]
    copy = tmp_path / "elsewhere"
    shutil.copytree(repo / "vom_plugin", copy / "vom_plugin", ignore=shutil.ignore_patterns("data", "weights",
                                                                                            "__pycache__"))
    shutil.copytree(repo / "node_defs", copy / "node_defs")
    ask = [sys.executable, "-c", "from vom_plugin.digest import build_id; print(build_id())"]
    assert subprocess.run(ask, cwd=copy, capture_output=True, text=True).stdout.strip() == build_id()
    with open(copy / "vom_plugin" / "engine" / "passes.py", "a") as f:
        f.write("\n# another build\n")
    assert subprocess.run(ask, cwd=copy, capture_output=True, text=True).stdout.strip() != build_id()


def test_info_json_names_versions_and_locations(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("VOM_CACHE_DIR", str(tmp_path / "c"))
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    import OpenImageIO
    import torch

    assert info["vom"] == __version__
    assert info["torch"] == torch.__version__
    assert info["OpenImageIO"] == OpenImageIO.__version__
    assert info["cache_dir"] == str(tmp_path / "c")
    assert info["devices"][0] == "cpu"
    assert "weights_dir" in info


def test_info_says_versions_without_a_version_attribute_and_missing_default_weights(capsys, monkeypatch,
                                                                                    tmp_path) -> None:
    """QA: OpenImageIO 3.0 (no ``__version__``) was shown as unknown; and a worker whose VOM_WEIGHTS_DIR held no
    weights passed vom info, exit 0, then failed every render."""
    import sys
    import types
    from importlib import metadata

    from vom_plugin.commands.info import _version

    monkeypatch.setitem(sys.modules, "vom_fake_lib", types.ModuleType("vom_fake_lib"))
    assert _version("vom_fake_lib", "numpy") == metadata.version("numpy")
    monkeypatch.setenv("VOM_WEIGHTS_DIR", str(tmp_path))
    assert main(["info", "--json"]) == 2
    got = capsys.readouterr()
    said = (f"no weights of the default model: {tmp_path / 'lite.safetensors'} does not exist (VOM_WEIGHTS_DIR names "
            f"{tmp_path}); a render that names no --model fails")
    # the --json error contract's keys beside the report's own (QA: the bare report, no "error", on exit 2)
    report = json.loads(got.out)
    assert {k: report[k] for k in ("error", "exit_code", "kind")} == {"error": said, "exit_code": 2,
                                                                     "kind": "InputError"}, got.out
    assert report["weights"] == [] and report["weights_dir"] == str(tmp_path), got.out
    assert (f"vom info: error: no weights of the default model: {tmp_path / 'lite.safetensors'} does not exist "
            f"(VOM_WEIGHTS_DIR names {tmp_path}); a render that names no --model fails") in got.err, got.err


def test_a_folder_variable_of_no_users_home_is_refused_as_a_shot_files_path(capsys, monkeypatch, tmp_path) -> None:
    """QA: VOM_CACHE_DIR='~nouserxyz/c' (or XDG_CACHE_HOME) made a folder named ~nouserxyz in the working folder and
    cached there, where --cache with the same value, and a shot file, refuse it."""
    monkeypatch.chdir(tmp_path)
    for name in ("VOM_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv("VOM_CACHE_DIR", raising=False)
        monkeypatch.setenv(name, "~nouserxyz/c")
        assert main(["info", "--json"]) == 2
        got = capsys.readouterr()
        assert f"{name} '~nouserxyz/c': ~nouserxyz is no user's home folder on this machine" in got.err, got.err
    monkeypatch.setenv("VOM_CACHE_DIR", "~/c")  # one's own home: expanded as ever
    from vom_plugin.locations import default_cache_dir

    assert default_cache_dir() == Path.home() / "c"
    assert not list(tmp_path.iterdir())  # no folder named ~nouserxyz made here


def test_info_reports_everything_beside_a_folder_variable_naming_an_unset_var(capsys, monkeypatch) -> None:
    """vom info stopped at VOM_CACHE_DIR='$NOPE/cache' with exit 2 and said nothing else (QA): a TD runs it to find
    what is wrong. It reports every field, the bad one as unknown with the reason, then the error, exit 2."""
    monkeypatch.delenv("NOPE", raising=False)
    monkeypatch.setenv("VOM_CACHE_DIR", "$NOPE/cache")
    monkeypatch.delenv("VOM_WEIGHTS_DIR", raising=False)
    assert main(["info", "--json"]) == 2
    got = capsys.readouterr()
    info = json.loads(got.out)
    assert info["cache_dir"].startswith("unknown (VOM_CACHE_DIR '$NOPE/cache': $NOPE is not set")
    assert info["weights"] == ["lite.safetensors"] and info["devices"][0] == "cpu"
    assert "vom info: error: VOM_CACHE_DIR '$NOPE/cache': $NOPE is not set" in got.err
    assert main(["info"]) == 2
    text = capsys.readouterr().out
    import re

    assert re.search(r"^cache_dir +unknown \(VOM_CACHE_DIR", text, re.M) and \
        re.search(r"^weights +lite.safetensors$", text, re.M), text


def test_info_checks_the_settings_a_render_reads_from_the_environment(capsys, monkeypatch) -> None:
    """QA: VOM_CACHE_MAX_GB=abc (and the other numbers a render reads) passed vom info, exit 0, and failed the next
    render: each is shown as a render reads it, a bad one said, exit 2."""
    for name in ("VOM_CACHE_MAX_GB", "VOM_CACHE_MIN_FREE_GB", "VOM_STATE_INTERVAL_S", "VOM_WORKER_MEMO_MB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VOM_CACHE_MAX_GB", "0.5")
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cache_max"] == "0.5 GiB (VOM_CACHE_MAX_GB)" and info["cache_min_free"].startswith("1 GiB")
    assert info["state_interval"].endswith("s (VOM_STATE_INTERVAL_S)") and info["worker_memo"] == \
        "2048 MB (VOM_WORKER_MEMO_MB)"
    for name, value in (("VOM_CACHE_MAX_GB", "abc"), ("VOM_CACHE_MIN_FREE_GB", "-1"), ("VOM_STATE_INTERVAL_S", "nan"),
                        ("VOM_WORKER_MEMO_MB", "lots")):
        monkeypatch.setenv(name, value)
        assert main(["info", "--json"]) == 2, name
        got = capsys.readouterr()
        assert f"vom info: error: {name} {value!r}: expected" in got.err, got.err
        report = json.loads(got.out)  # the --json error contract's keys beside the report's (QA: no "error" key)
        assert report["exit_code"] == 2 and report["kind"] == "InputError" and \
            report["error"].startswith(f"{name} {value!r}: expected"), got.out
        shown = [v for v in report.values() if isinstance(v, str)]
        assert any(v.startswith(f"unknown ({name} {value!r}") for v in shown), got.out
        monkeypatch.delenv(name)


def test_unknown_command_is_usage_error() -> None:
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2
    assert "invalid choice: 'frobnicate'" in r.stderr


def test_process_exit_keeps_what_a_normal_exit_does(tmp_path) -> None:
    """`entry` leaves without the interpreter's teardown: a non-daemon thread still finishes its file, atexit
    callbacks run, buffered output arrives, and the command's exit code is the process's."""
    marker = tmp_path / "late.txt"
    code = (
        "import atexit, sys, threading, time\n"
        "from pathlib import Path\n"
        "from vom_plugin.cli import entry\n"
        "def late():\n"
        "    time.sleep(1.0)\n"  # longer than the command takes
        f"    Path({str(marker)!r}).write_text('done')\n"
        "threading.Thread(target=late).start()\n"
        "atexit.register(lambda: print('atexit ran'))\n"
        "sys.stdout.write('buffered ' * 1000)\n"  # no newline: sits in the buffer until the exit flushes it
        f"sys.argv = ['vom', 'render', {str(tmp_path / 'missing.yaml')!r}]\n"
        "entry()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONUNBUFFERED": "0"})
    assert r.returncode == 2
    assert "missing.yaml" in r.stderr
    assert marker.read_text() == "done"
    assert r.stdout.count("buffered ") == 1000
    assert r.stdout.rstrip().endswith("atexit ran")


def test_the_suite_never_writes_to_the_users_cache() -> None:
    """conftest points VOM_CACHE_DIR at a folder of its own: renders that take the default cache land there."""
    from vom_plugin.locations import default_cache_dir

    assert default_cache_dir().name.startswith("vom-test-cache-")
    assert not str(default_cache_dir()).startswith(str(Path.home()))


def test_an_unknown_option_is_refused_with_the_commands_own_usage(capsys) -> None:
    from vom_plugin.cli import main

    with pytest.raises(SystemExit) as e:
        main(["render", "--bogus"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("usage: vom render") and "unrecognized arguments: --bogus" in err


def test_an_interrupt_before_the_command_runs_is_exit_130_without_a_traceback() -> None:
    """SIGINT while the parser was built (the first 0.1 s of `vom render`) printed a KeyboardInterrupt traceback and
    the process died by the signal, not the documented exit 130."""
    code = ("import sys, vom_plugin.cli as c\n"
            "def main():\n    raise KeyboardInterrupt\n"
            "c.main = main\nsys.argv = ['vom', 'render', 'x.yaml']\nc.entry()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 130, r.stderr
    assert r.stderr.strip() == "vom render: interrupted by SIGINT before the render began: no frame was written"
    # a farm's SIGTERM says which signal it was (QA: the same bare "interrupted" as a SIGINT)
    term = code.replace("raise KeyboardInterrupt", "import os, signal, time; os.kill(os.getpid(), signal.SIGTERM); "
                                                   "time.sleep(5)")
    r = subprocess.run([sys.executable, "-c", term], capture_output=True, text=True, timeout=60)
    assert r.returncode == 130, r.stderr
    assert r.stderr.strip() == "vom render: interrupted by SIGTERM before the render began: no frame was written"


def test_torch_is_imported_with_sigterm_and_sigint_held_back() -> None:
    """A SIGTERM (a farm's cancel) landing in torch's import raised KeyboardInterrupt inside a C++ callback: the
    process aborted (SIGABRT, "terminate called ... pybind11::error_already_set") instead of exiting 130. A signal
    during the import is noted and delivered once it is done, from another thread too (numpy's and OpenEXR's run
    by then)."""
    code = ("import builtins, os, signal, threading, time\n"
            "real, phase = builtins.__import__, []\n"
            "def imp(name, *a, **k):\n"
            "    if name == 'torch' and not phase:\n"
            "        phase.append('importing')\n"
            "        t = threading.Thread(target=lambda: os.kill(os.getpid(), signal.SIGTERM))\n"
            "        t.start(); t.join(); time.sleep(0.05)\n"
            "    return real(name, *a, **k)\n"
            "def handler(signum, frame):\n"
            "    print('handled after import' if 'torch' in __import__('sys').modules else 'handled DURING import')\n"
            "signal.signal(signal.SIGTERM, handler)\n"
            "builtins.__import__ = imp\n"
            "import vom_plugin\n"
            "vom_plugin.import_torch()\n"
            "print(signal.getsignal(signal.SIGTERM) is handler)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.split("\n")[:2] == ["handled after import", "True"], r.stdout + r.stderr
    # SIGINT ignored (a command started with & or nohup), then SIGTERM, both during the import: the SIGTERM is
    # delivered after it (only the first signal was sent again, the ignored SIGINT, and the SIGTERM was lost)
    both = code.replace("t = threading.Thread(target=lambda: os.kill(os.getpid(), signal.SIGTERM))",
                        "t = threading.Thread(target=lambda: (os.kill(os.getpid(), signal.SIGINT), "
                        "os.kill(os.getpid(), signal.SIGTERM)))")
    both = both.replace("signal.signal(signal.SIGTERM, handler)\n",
                        "signal.signal(signal.SIGTERM, handler)\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n")
    r = subprocess.run([sys.executable, "-c", both], capture_output=True, text=True, timeout=120)
    assert r.stdout.split("\n")[:2] == ["handled after import", "True"], r.stdout + r.stderr


def test_an_output_that_cannot_be_written_is_exit_2_naming_it_not_a_traceback(tmp_path, capsys) -> None:
    """A QA pass: --out under a file, or on a read-only mount, was a FileNotFoundError traceback (exit 1,
    "please report") in vom gizmo, vom farm, vom benchmark and vom train."""
    (tmp_path / "afile").write_text("mine")
    shot = Path(__file__).resolve().parents[1] / "vom_plugin" / "data" / "demo" / "shot.yaml"
    for argv, named in (
            (["gizmo", "--out", str(tmp_path / "afile" / "x" / "y.gizmo")], f"--out {tmp_path / 'afile' / 'x'}"),
            (["farm", "openjd", str(shot), "--out", str(tmp_path / "afile" / "bundle")], "is a file"),
            (["farm", "opencue", str(shot), "--out", str(tmp_path / "afile" / "job.xml")], "is a file"),
            (["gizmo", "--out", "/proc/vom_test.gizmo"], "/proc/vom_test.gizmo: No such file or directory")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert named in err and "Traceback" not in err and "internal error" not in err, err
    assert (tmp_path / "afile").read_text() == "mine"


def test_json_progress_gets_an_error_event_for_a_usage_error_and_an_early_interrupt(tmp_path, capsys,
                                                                                   monkeypatch) -> None:
    """A QA pass: a host reading --progress json got nothing on stdout when argparse refused a value or a SIGINT
    came before the render began (validation errors did send their event)."""
    import pytest

    with pytest.raises(SystemExit) as e:
        main(["render", "--progress", "json", str(tmp_path / "s.yaml"), "--working-size", "abc"])
    out, err = capsys.readouterr()
    event = json.loads(out.strip().splitlines()[-1])
    assert e.value.code == 2 and event["event"] == "error" and event["exit_code"] == 2
    assert "--working-size" in event["message"] and "--working-size" in err
    from vom_plugin.commands import render as render_cmd

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(render_cmd, "shot_from_args", interrupted)
    assert main(["render", "--progress=json", str(tmp_path / "s.yaml")]) == 130
    out, err = capsys.readouterr()
    assert [json.loads(line) for line in out.splitlines()] == [
        {"event": "error", "message": "interrupted by SIGINT before the render began: no frame was written",
         "exit_code": 130, "kind": "CancelledError"}]
    assert main(["render", str(tmp_path / "s.yaml")]) == 130  # not asked for: nothing on stdout
    assert capsys.readouterr().out == ""


def test_train_refuses_flags_of_another_of_its_jobs(tmp_path, capsys) -> None:
    """A QA pass: `vom train --calibrate W --export C --to T` started calibrating, --levels-only without
    --calibrate trained a run (a minute of CPU each), --export with --resume said nothing."""
    w = str(tmp_path / "w.safetensors")
    for argv, said in ((["--calibrate", w, "--export", w, "--to", w], "--calibrate and --export: choose one"),
                       (["--export", w, "--to", w, "--resume", "--out", str(tmp_path / "r")],
                        "--export takes a checkpoint and --to, not --resume or --out"),
                       (["--levels-only", "--out", str(tmp_path / "r"), "--minutes", "1"],
                        "--levels-only is a --calibrate option"),
                       # (QA: these started a training run, ten minutes of it for a --to meaning an export)
                       (["--out", str(tmp_path / "r"), "--to", w, "--guided-radii", "6"],
                        "--guided-radii, --to: not an option of a training run"),
                       (["--out", str(tmp_path / "r"), "--library-share", "0.3"],
                        "--library-share: the share of clips from --library, which is not given"),
                       (["--export", w, "--to", w, "--minutes", "5"], "--minutes: not an option of --export"),
                       (["--calibrate", w, "--to", w, "--out", str(tmp_path / "r"), "--minutes", "3"],
                        "--minutes, --out: not an option of --calibrate")):
        assert main(["train", *argv]) == 2, argv
        assert said in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_gizmo_cache_and_bench_refuse_flags_they_would_ignore(capsys) -> None:
    for argv, said in ((["gizmo", "--check", "--stdout"], "--stdout and --check: choose one"),
                       (["gizmo", "--stdout", "--out", "x.gizmo"], "--stdout and --out: choose one"),
                       (["cache", "info", "--older-than", "3"], "--older-than is a clear option"),
                       (["cache", "clear", "--json"], "--json is an info option"),
                       (["bench", "--plate-size", "160x90"], "--plate-size is not an option of the stage bench"),
                       (["bench", "--cache", "--frames", "12", "--size", "1080"],
                        "--size, --frames are not options of --cache and --objects"),
                       (["bench", "--objects", "2", "--worker"], "--worker is a --cache option"),
                       (["bench", "--cache", "--objects", "2"], "--cache and --objects: choose one"),
                       (["bench", "--threads", "0"], "--threads 0: expected 1 or more")):
        assert main(argv) == 2, argv
        out, err = capsys.readouterr()
        # with --json asked, the error is stdout's one JSON object too
        assert said in err and (out == "" if "--json" not in argv else said in json.loads(out)["error"]), (argv, err)


def test_cache_commands_name_a_relative_cache_by_its_absolute_folder(tmp_path, capsys, monkeypatch) -> None:
    """QA: --cache cache was said back as typed: "cleared 0 entries (0 B) from cache", "cache cache: 0 shots"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cache").mkdir()
    for action in ("clear", "info"):
        assert main(["cache", action, "--cache", "cache"]) == 0
        out = capsys.readouterr().out
        assert str(tmp_path / "cache") in out, out
    assert main(["cache", "info", "--cache", "nope"]) == 2
    assert f"--cache {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    # a folder VOM_CACHE_DIR names must be there too (QA: a farm's mistyped VOM_CACHE_DIR was "cleared 0 entries",
    # exit 0); the default one may not have been made yet
    monkeypatch.setenv("VOM_CACHE_DIR", str(tmp_path / "cahce"))
    for action in ("clear", "info"):
        assert main(["cache", action]) == 2
        assert f"VOM_CACHE_DIR {tmp_path / 'cahce'} does not exist" in capsys.readouterr().err
    monkeypatch.delenv("VOM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert main(["cache", "info"]) == 0 and "0 shots" in capsys.readouterr().out
    # --cache reads ~user and $SHOW as vom render's does
    monkeypatch.setenv("VOM_T_ROOT", str(tmp_path))
    assert main(["cache", "info", "--cache", "$VOM_T_ROOT/cache"]) == 0
    assert str(tmp_path / "cache") in capsys.readouterr().out
    monkeypatch.delenv("VOM_T_UNSET", raising=False)
    assert main(["cache", "clear", "--cache", "$VOM_T_UNSET/cache"]) == 2
    assert "VOM_T_UNSET is not set" in capsys.readouterr().err


def test_the_cli_net_a_full_disk_json_events_and_an_internal_error(tmp_path, capsys, monkeypatch) -> None:
    """A review: a full disk (ENOSPC names no file) was still a traceback; an OSError or internal error of a
    --progress json render sent no event; a command without JSON progress got one for a usage error."""
    import errno as errno_mod

    import pytest

    from vom_plugin import atomic
    from vom_plugin.commands import render as render_cmd

    real_fsync = atomic._fsync

    def full(path):
        raise OSError(errno_mod.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "_fsync", full)
    assert main(["gizmo", "--out", str(tmp_path / "x.gizmo")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'x.gizmo'}: No space left on device" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing half-written, no temporary
    monkeypatch.setattr(atomic, "_fsync", real_fsync)

    def boom(args):
        raise OSError(errno_mod.EACCES, "Permission denied", "/shows/x")

    monkeypatch.setattr(render_cmd, "shot_from_args", boom)
    assert main(["render", "s.yaml", "--progress", "json"]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out) == {"event": "error", "message": "/shows/x: Permission denied", "exit_code": 2,
                               "kind": "OSError"}

    def bug(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(render_cmd, "shot_from_args", bug)
    assert main(["render", "s.yaml", "--progress", "json", "--progress", "json"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["exit_code"] == 1 and "Traceback" in err and "internal error" in err
    assert main(["render", "s.yaml", "--progress", "json", "--progress", "bar"]) == 1  # the last one given
    assert capsys.readouterr().out == ""
    with pytest.raises(SystemExit):
        main(["cache", "--progress", "json"])  # no JSON progress in this command: no event
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_while_the_process_exits_leaves_with_the_commands_status(sig: str) -> None:
    """A second Cancel (a host pressing it again, a farm's SIGTERM then SIGINT) that came while the exit callbacks
    ran raised inside them: "Exception ignored ... KeyboardInterrupt", or the process died by the signal (-2, -15)
    instead of exiting 130."""
    script = ("import atexit, os, signal, sys, time\nimport vom_plugin.cli as cli\n"
              f"atexit.register(lambda: (os.kill(os.getpid(), signal.{sig}), time.sleep(2), print('late')))\n"
              "cli.main = lambda argv=None: 130\ncli.entry()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, (done.returncode, done.stderr)
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr and "late" not in done.stdout


def test_a_render_stopped_by_sigterm_then_sigint_says_the_first() -> None:
    """The stop message named the last signal (SIGINT) of a farm's SIGTERM-then-SIGINT."""
    import signal

    from vom_plugin.engine.stop import signals

    got: list[int] = []
    host = {s: signal.signal(s, lambda signum, _f: got.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with signals() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGINT)
            assert got == []  # held for the render's stop, not the host's handler
    finally:
        for s, h in host.items():
            signal.signal(s, h)
    assert stop.by == "SIGTERM"
    assert got == [signal.SIGTERM, signal.SIGINT]  # then passed on to the host's handlers, in order


def test_a_handler_the_embedding_application_installed_is_left_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A render called from the Python of an application that installed its SIGTERM handler in C (``getsignal``
    says None there): vom took the signal and its restore raised TypeError (``signal.signal(s, None)``), leaving
    vom's handler installed for good. Such a signal is the application's: not taken, nothing to restore."""
    import signal

    from vom_plugin.engine.stop import signals

    real = signal.getsignal
    monkeypatch.setattr(signal, "getsignal", lambda s: None if s == signal.SIGTERM else real(s))
    before = real(signal.SIGTERM)
    with signals() as stop:
        assert real(signal.SIGTERM) is before  # not taken
        assert real(signal.SIGINT) is not signal.default_int_handler  # Python's own handler is: taken for the stop
    assert real(signal.SIGINT) is signal.default_int_handler and not stop.is_set()
    import vom_plugin

    with vom_plugin.signals_held():  # an extension's import (torch's, OpenImageIO's) raised TypeError on the way out
        assert real(signal.SIGTERM) is before
    assert real(signal.SIGTERM) is before and real(signal.SIGINT) is signal.default_int_handler


def test_vom_traceback_adds_the_traceback_to_a_bad_input_error(tmp_path: Path, monkeypatch, capsys) -> None:
    """README: exit 2 bad input, `VOM_TRACEBACK=1` adds the traceback; it did so only for file-system errors, not for
    the InputError of most exit-2 errors (QA)."""
    argv = ["eval", "--pred", str(tmp_path / "nope.####.exr"), "--gt", str(tmp_path / "gt.####.exr")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error: ground truth: no files match" in err
    monkeypatch.setenv("VOM_TRACEBACK", "1")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "InputError" in err
    assert "error: ground truth: no files match" in err


def test_closed_or_full_standard_streams_do_not_stop_a_command(tmp_path: Path) -> None:
    """A QA pass: started with stderr or stdout closed (some launchers and daemons start jobs so), every command
    exited 1 before doing anything (Python leaves the stream None); stdout on a full disk was "internal error"."""
    import os as os_mod

    def run(args: list[str], close: int | None = None, **kw: object) -> subprocess.CompletedProcess:
        pre = (lambda: os_mod.close(close)) if close is not None else None
        return subprocess.run([sys.executable, "-m", "vom_plugin.cli", *args], preexec_fn=pre, text=True,
                              timeout=120, **kw)

    r = run(["--version"], close=2, stdout=subprocess.PIPE)
    assert r.returncode == 0 and r.stdout.strip().startswith(f"vom {__version__} (build ")
    if Path("/dev/full").exists():  # unbuffered onto a full disk: argparse's own action said nothing (review)
        with open("/dev/full", "w") as full:
            r = subprocess.run([sys.executable, "-u", "-m", "vom_plugin.cli", "--version"], stdout=full,
                               stderr=subprocess.PIPE, text=True, timeout=120)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    r = run(["gizmo", "--out", str(tmp_path / "g.gizmo")], close=2, stdout=subprocess.PIPE)
    assert r.returncode == 0 and (tmp_path / "g.gizmo").is_file()  # the work is done, said or not
    r = run(["info", "--json"], close=1, stderr=subprocess.PIPE)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    if Path("/dev/full").exists():
        # buffered or not (a bare environment has no PYTHONUNBUFFERED: the write came in the exit's flush, exit 0)
        for unbuffered in ("1", None):
            env = {k: v for k, v in os_mod.environ.items() if k != "PYTHONUNBUFFERED"}
            if unbuffered:
                env["PYTHONUNBUFFERED"] = unbuffered
            with open("/dev/full", "w") as full:
                r = run(["info", "--json"], stdout=full, stderr=subprocess.PIPE, env=env)
            assert r.returncode == 2 and "Traceback" not in r.stderr, (unbuffered, r.stderr)
            assert "error: a write failed: No space left on device" in r.stderr


def test_no_command_is_a_usage_error_on_stderr_and_flags_are_never_abbreviated(capsys) -> None:
    """A QA pass: `vom` alone printed its help on stdout (exit 2); `--prog json` was taken as --progress by argparse,
    but not by the JSON error event nor the negative ranges of --frames read before it."""
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "usage: vom" in err
    with pytest.raises(SystemExit) as e:
        main(["render", "--prog", "json", "s.yaml"])
    assert e.value.code == 2 and "unrecognized arguments: --prog" in capsys.readouterr().err


def test_an_interrupt_before_the_command_runs_sends_the_json_error_event() -> None:
    """A QA pass: a SIGINT while the parser was built gave exit 130 but no error event to a host reading JSON."""
    code = ("import sys, vom_plugin.cli as c\n"
            "def main():\n    raise KeyboardInterrupt\n"
            "c.main = main\nsys.argv = ['vom', 'render', 'x.yaml', '--progress', 'json']\nc.entry()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 130, r.stderr
    assert json.loads(r.stdout) == {"event": "error", "message": "interrupted by SIGINT before the render began: no "
                                    "frame was written", "exit_code": 130, "kind": "CancelledError"}


def test_a_refused_flag_value_names_the_flag_once(capsys) -> None:
    """A QA pass: "argument --working-size: --working-size 5: out of range"."""
    cases = (("--working-size", "5", "argument --working-size: 5: out of range; expected 128 to 4096"),
             ("--device", "cuda:x", "argument --device: 'cuda:x': expected auto, cpu, cuda or cuda:N"))
    for flag, value, said in cases:
        with pytest.raises(SystemExit):
            main(["render", "s.yaml", flag, value])
        assert said in capsys.readouterr().err
    with pytest.raises(SystemExit):  # vom bench's too (QA: "argument --memory: --memory 'bogus'")
        main(["bench", "--memory", "bogus"])
    assert "argument --memory: 'bogus': expected first+prevK" in capsys.readouterr().err



def test_a_workers_traceback_is_printed_as_it_reads_and_other_errors_on_one_line(capsys, monkeypatch) -> None:
    """Messages are printed on one line, control characters escaped (a path with a newline forged lines); a
    worker's internal error carries its traceback, which stays the lines it is (review: it came out as one line of
    \\n escapes, for a bug report)."""
    import vom_plugin.commands.cache as cache_cmd
    from vom_plugin.errors import InputError
    from vom_plugin.worker.client import WorkerError

    def worker_failed(args):
        raise WorkerError("internal error in the vom worker:\nTraceback (most recent call last):\nZeroDivisionError"
                          "\x1b[31m")

    monkeypatch.setattr(cache_cmd, "run", worker_failed)
    assert main(["cache", "info"]) == 1
    assert "vom worker:\nTraceback (most recent call last):\nZeroDivisionError\\x1b[31m\n" in capsys.readouterr().err

    def bad_path(args):
        raise InputError("plate /x/a\nopenjd_fail: forged\x1b[31m/p.####.exr: missing")

    monkeypatch.setattr(cache_cmd, "run", bad_path)
    assert main(["cache", "info"]) == 2
    err = capsys.readouterr().err
    assert err == "vom cache: error: plate /x/a\\nopenjd_fail: forged\\x1b[31m/p.####.exr: missing\n", err


def test_messages_name_what_was_given(tmp_path, capsys, monkeypatch) -> None:
    """QA: --model /dev/null "does not exist" (it does: it is no file); an over-long VOM_WORKER_SOCKET was said as
    --socket, which was not given."""
    from vom_plugin.locations import demo_dir

    monkeypatch.chdir(tmp_path)
    demo = demo_dir()
    rc = main(["render", "--plate", str(demo / "plate.####.exr"), "--roto", str(demo / "roto.0001.exr"), "--out",
               "o/a.####.exr", "--model", "/dev/null", "--no-worker", "--progress", "none"])
    err = capsys.readouterr().err
    assert rc == 2 and "weights file '/dev/null' is not a regular file" in err, err
    long = str(tmp_path / ("s" * 120) / "w.sock")
    monkeypatch.setenv("VOM_WORKER_SOCKET", long)
    assert main(["worker"]) == 2
    assert f"VOM_WORKER_SOCKET {long!r}: a Unix socket path must be under 100 bytes" in capsys.readouterr().err
    assert main(["worker", "--socket", long]) == 2
    assert f"--socket {long!r}: a Unix socket path" in capsys.readouterr().err


def test_other_commands_read_path_flags_as_vom_render_does(tmp_path, capsys, monkeypatch) -> None:
    """Review: vom farm openjd --out '$NOPE/bundle' made a folder named $NOPE (exit 0), and vom demo --cache '$NOPE/c'
    a cache there, where vom render refuses an unset variable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VOM_T_UNSET", raising=False)
    shot = tmp_path / "shot.yaml"
    shot.write_text("plate: p.####.exr\nout: o.####.exr\nkeyframes: {1: r.0001.exr}\n")
    for argv, flag in ((["farm", "openjd", str(shot), "--out", "$VOM_T_UNSET/bundle"], "--out"),
                       (["demo", "--cache", "$VOM_T_UNSET/c"], "--cache"),
                       (["demo", "--out", "$VOM_T_UNSET/d"], "--out"),
                       (["demo", "--model", "~vom_no_such_user/w.safetensors"], "--model")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"{flag} '" in err and ("VOM_T_UNSET is not set" in err or "no user's home folder" in err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.yaml"]


def test_info_model_shows_a_weights_files_metadata_and_the_digest_renders_stamp(capsys, tmp_path) -> None:
    """QA: an export's lineage, settings and initial weights could be read only from Python; and nothing said which
    vom:weights digest a file's renders stamp (the export's initial_weights gives files' sha256)."""
    import torch

    from vom_plugin.engine.models import model_identity
    from vom_plugin.engine.weights import load_model, save_weights
    from vom_plugin.model import build_model

    torch.manual_seed(0)
    path = tmp_path / "w.safetensors"
    save_weights(build_model("lite"), path, metadata={"lineage": "a test -> its export"})
    assert main(["info", "--model", str(path), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["file"] == str(path) and got["bytes"] == path.stat().st_size
    assert got["digest"] == model_identity(load_model(path))
    # and it is what a render with the file stamps (review: the line above repeats the implementation)
    import OpenImageIO as oiio

    from vom_plugin import Shot, render

    plate = np.zeros((32, 48, 3), np.float32)
    roto = np.zeros((32, 48, 1), np.float32)
    roto[8:24, 12:36] = 1
    for name, px in (("p.0001.exr", plate), ("r.0001.exr", roto)):
        assert oiio.ImageBuf(px).write(str(tmp_path / name), oiio.HALF)
    r = render(Shot(plate=str(tmp_path / "p.####.exr"), out=str(tmp_path / "o" / "a.####.exr"),
                    keyframes={1: str(tmp_path / "r.0001.exr")}, model=str(path), working_size=128, device="cpu",
                    cache=str(tmp_path / "c")))
    spec = oiio.ImageBuf(str(r.paths[0])).spec()
    assert spec.getattribute("vom:weights") == got["digest"]
    # and the file's digest, which vom:settings carries and vom farm check compares (QA: no command printed it)
    assert json.loads(spec.getattribute("vom:settings"))["weights"] == got["file_digest"] != got["digest"]
    assert got["metadata"]["lineage"] == "a test -> its export" and got["metadata"]["config"] == "lite"
    assert main(["info", "--model", str(path)]) == 0
    text = capsys.readouterr().out
    assert re.search(rf"^digest +{got['digest']} \(vom:weights: of the tensors\)$", text, re.M), text
    # in the short form the check's message names it by ("rendered with other weights (a file of digest ...")
    from vom_plugin.farm.spans import _settings_stamp_differing

    said = _settings_stamp_differing(json.dumps({"weights": got["file_digest"]}), json.dumps({"weights": "0" * 32}))
    short = re.search(r"a file of digest (\w+);", said or "")
    assert short and re.search(rf"^file_digest +{short[1]} \(vom:settings' weights, which vom farm check compares: "
                               rf"of the file's bytes, metadata too; in full {got['file_digest']}\)$", text, re.M), text
    assert "metadata:\n" in text and "  lineage" in text and "a test -> its export" in text
    (tmp_path / "notes.txt").write_text("not weights")
    assert main(["info", "--model", str(tmp_path / "notes.txt")]) == 2
    assert "notes.txt" in capsys.readouterr().err


def test_json_commands_say_their_error_as_json_and_a_bad_flag_before_a_render_as_its_event(capsys, monkeypatch,
                                                                                            tmp_path) -> None:
    """QA: `vom info --model X --json`, `vom eval --json`, `vom farm check --json` left stdout empty on exit 2 (a
    pipeline's json.loads failed on nothing); and a bad VOM_TRACEBACK under `vom render --progress json` sent no
    error event, where every other bad VOM_* value did."""
    (tmp_path / "notes.txt").write_text("not weights")
    assert main(["info", "--model", str(tmp_path / "notes.txt"), "--json"]) == 2
    out = capsys.readouterr().out
    got = json.loads(out)
    assert got["exit_code"] == 2 and got["kind"] == "InputError" and "notes.txt" in got["error"], out
    assert main(["info", "--model", str(tmp_path / "notes.txt")]) == 2
    assert capsys.readouterr().out == ""  # without --json: stderr only, as before
    with pytest.raises(SystemExit) as e:  # a usage error too (second review)
        main(["info", "--json", "--bogus"])
    assert e.value.code == 2
    got = json.loads(capsys.readouterr().out)
    assert got["kind"] == "UsageError" and "--bogus" in got["error"], got
    monkeypatch.setenv("VOM_TRACEBACK", "yes")
    assert main(["render", "--plate", str(tmp_path / "p.####.exr"), "--roto", str(tmp_path / "r.exr"), "--out",
                 str(tmp_path / "o" / "a.####.exr"), "--progress", "json", "--no-worker"]) == 2
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == ["error"] and "VOM_TRACEBACK 'yes'" in events[0]["message"], events
