"""`vom render` flags from the node definition, `vom demo` without weights, the contact sheet, progress output."""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from vom_plugin.cli import main
from vom_plugin.commands import demo, render
from vom_plugin.engine.progress import BarProgress, JsonProgress
from vom_plugin.nodedef import load_node_def


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    render.add_arguments(p)
    return p


def test_render_flags_are_the_node_knobs() -> None:
    p = _parser()
    flags = {opt for a in p._actions for opt in a.option_strings}
    for knob in load_node_def().knobs:
        assert knob.flag in flags, knob.name
        action = next(a for a in p._actions if knob.flag in a.option_strings)
        if knob.type == "enum" and knob.grammar:  # suggestions the grammar reads (device: cuda:1)
            assert action.choices is None and action.metavar.startswith("|".join(knob.choices))
            assert knob.name != "device" or action.metavar == "auto|cpu|cuda|cuda:N"  # what the grammar also reads
        elif knob.type == "enum":  # parsed by the knob (a blank value is its default), the choices in the metavar
            assert action.choices is None and action.metavar == "{" + ",".join(knob.choices) + "}"
        assert knob.help.replace("%", "%%")[:40] in action.help


def test_flags_override_a_shot_file(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("plate: plate.####.exr\nkeyframes: {1: roto.0001.exr}\nout: out/a.####.exr\ntop_k: 4\n")
    args = _parser().parse_args([str(f), "--frames", "3-5", "--roto", "r2.exr@7", "--working-size", "512"])
    shot = render.shot_from_args(args)
    assert shot.frames == [3, 4, 5] and shot.top_k == 4 and shot.working_size == 512
    assert shot.keyframes == {7: Path.cwd() / "r2.exr"}  # flags are relative to the working folder
    assert shot.plate == str(tmp_path / "plate.####.exr")


def test_a_checkpoint_path_is_the_shot_files_or_the_working_folders(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # a relative checkpoint stayed relative and was opened from whichever folder the render ran in (a worker's)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shots").mkdir()
    f = tmp_path / "shots" / "s.yaml"
    f.write_text("plate: plate.####.exr\nkeyframes: {1: roto.0001.exr}\nout: out/a.####.exr\n"
                 "model: ckpt/mine.safetensors\n")
    shot = render.shot_from_args(_parser().parse_args([str(f)]))
    assert shot.model == str(tmp_path / "shots" / "ckpt" / "mine.safetensors")  # the file's, as its other paths
    shot = render.shot_from_args(_parser().parse_args([str(f), "--model", "other.safetensors"]))
    assert shot.model == str(tmp_path / "other.safetensors")  # a flag: the working folder's
    shot = render.shot_from_args(_parser().parse_args([str(f), "--model", "lite"]))
    assert shot.model == "lite"  # a shipped name stays a name


def test_render_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--plate", "p.####.exr", "--out", "o.####.exr"]) == 2
    assert "missing --roto" in capsys.readouterr().err
    assert main(["render", "--plate", "p.####.exr", "--out", "o.####.exr", "--roto", "roto.exr"]) == 2
    assert "--roto 'roto.exr': no frame number" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["render", "--device", "tpu"])
    assert e.value.code == 2


def test_json_error_event_for_hosts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["render", "--plate", str(tmp_path / "none.####.exr"), "--roto", "r.0001.exr",
               "--out", str(tmp_path / "o.####.exr"), "--progress", "json"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 2
    event = json.loads(out[-1])
    assert event["event"] == "error" and event["exit_code"] == 2 and "none.####.exr" in event["message"]


def test_an_open_job_description_task_that_fails_says_why_in_an_openjd_fail_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A failed farm task left the farm's monitor showing its last progress status (review): ``--progress openjd``
    ends a failure with the ``openjd_fail:`` line the monitor shows as the reason, on one line."""
    rc = main(["render", "--plate", str(tmp_path / "none.####.exr"), "--roto", "r.0001.exr",
               "--out", str(tmp_path / "o.####.exr"), "--progress", "openjd", "--no-worker"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 2 and len(out) == 1 and out[0].startswith("openjd_fail: ") and "none.####.exr" in out[0], out
    with pytest.raises(SystemExit):
        main(["render", "--progress", "openjd", "--frames"])  # a usage error
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("openjd_fail: ") and "--frames" in out[0], out
    # demo has no openjd progress: its usage error is no farm task's failure line (QA)
    with pytest.raises(SystemExit):
        main(["demo", "--progress", "openjd"])
    assert capsys.readouterr().out == ""


def test_a_cancelled_open_job_description_task_says_what_it_wrote_in_its_last_status(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A cancel prints no openjd_fail (it is no failure), and the monitor kept the last progress status, which said
    4/12 frames where the stop had written 5 (QA): the stop's message is the last status."""
    from vom_plugin import cli

    said = "stopped by SIGTERM after 5 of 12 frames; the frames written are complete"
    cli._error_event("openjd", said, 130, "CancelledError")
    assert capsys.readouterr().out == f"openjd_status: {said}\n"
    cli._error_event("bar", said, 130, "CancelledError")
    assert capsys.readouterr().out == ""


def test_demo_without_weights_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VOM_WEIGHTS_DIR", str(tmp_path / "no_weights"))
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 2
    err = capsys.readouterr().err
    # the folder VOM_WEIGHTS_DIR chose is named as such (it said "the shipped weights ... not there yet": QA)
    assert "lite.safetensors are not there (the folder VOM_WEIGHTS_DIR names)" in err and "--model PATH" in err
    assert not (tmp_path / "vom_demo_out").exists()


@pytest.mark.slow
def test_a_quiet_demo_says_its_warnings_and_a_cache_it_could_not_make(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """QA: a farm account whose home does not exist ran `vom demo --progress none` as a smoke test: nothing on
    stderr, and its summary named the cache it never made ("read back for 0 frames"); the render's own warning named
    '/', not the cache folder asked for."""
    import errno
    import os

    home = tmp_path / "nonexistent"
    real_mkdir = os.mkdir

    def refused(path, *a, **kw):  # as for a user who may not write the folder the home would be made in
        if Path(path) == home:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_mkdir(path, *a, **kw)

    monkeypatch.setattr(os, "mkdir", refused)
    monkeypatch.chdir(tmp_path)
    cache = home / ".cache" / "vom"
    assert main(["demo", "--cache", str(cache), "--progress", "none"]) == 0
    got = capsys.readouterr()
    said = (f"rendering without the cache: cache folder '{cache}' cannot be made: '{home}' cannot be created "
            "(Permission denied)")
    assert f"vom demo: warning: {said}" in got.err, got.err
    assert f"cache      {cache}: not used ({said.removeprefix('rendering without the cache: ')}" in got.out, got.out
    assert not home.exists()


def test_demo_cache_folder_is_the_working_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a relative --cache once resolved against the shipped shot file's folder: the cache went into the package
    import vom_plugin.engine.runner as runner
    from vom_plugin.errors import InputError

    seen = {}

    def fake_render(shot, **kw):
        seen["cache"], seen["out"], seen["model"] = shot.cache, shot.out, shot.model
        raise InputError("stop here")

    monkeypatch.setattr(runner, "render", fake_render)
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--cache", "c", "--out", "o", "--progress", "none"]) == 2
    assert Path(seen["cache"]) == tmp_path / "c"
    assert Path(seen["out"]).parent == tmp_path / "o"
    assert seen["model"] == "default"
    assert main(["demo", "--model", "w/mine.safetensors", "--progress", "none"]) == 2
    assert seen["model"] == str(tmp_path / "w" / "mine.safetensors")
    # each flag read once: $$ a $ of the path's own, not expanded again as the shot file's overrides
    monkeypatch.setenv("VOM_T_SEQ", "sq01")
    assert main(["demo", "--cache", "c$$VOM_T_SEQ", "--out", "o$$VOM_T_SEQ", "--model", "m$$VOM_T_SEQ.safetensors",
                 "--progress", "none"]) == 2
    assert (seen["cache"], Path(seen["out"]).parent, seen["model"]) == (
        tmp_path / "c$VOM_T_SEQ", tmp_path / "o$VOM_T_SEQ", str(tmp_path / "m$VOM_T_SEQ.safetensors"))
    # a working size as vom render takes it (QA: refused as an unknown flag), the shot's without it
    seen.clear()

    def sized(shot, **kw):
        seen["size"] = shot.working_size
        raise InputError("stop here")

    monkeypatch.setattr(runner, "render", sized)
    assert main(["demo", "--working-size", "480", "--progress", "none"]) == 2 and seen["size"] == 480
    assert main(["demo", "--progress", "none"]) == 2 and seen["size"] == 960
    with pytest.raises(SystemExit):
        main(["demo", "--working-size", "5"])


def test_demo_shot_ships_small_and_complete() -> None:
    from vom_plugin.engine.shot import Shot
    from vom_plugin.locations import demo_dir

    d = demo_dir()
    shot = Shot.from_yaml(d / "shot.yaml")
    assert shot.frames == list(range(1, 25)) and list(shot.keyframes) == [1]
    assert all((d / f"plate.{f:04d}.exr").is_file() and (d / f"gt.{f:04d}.exr").is_file() for f in shot.frames)
    assert sum(p.stat().st_size for p in d.iterdir()) < 8 * 2**20


def test_contact_sheet_layout(tmp_path: Path) -> None:
    import cv2

    display = np.full((20, 30, 3), 0.5, np.float32)
    alpha = np.zeros((20, 30), np.float32)
    alpha[:, 15:] = 1.0
    path = tmp_path / "sheet.png"
    demo.contact_sheet([(display, alpha), (display, alpha)], str(path))
    img = cv2.imread(str(path))[..., ::-1]
    assert img.shape == (2 * 24, 90, 3)  # two rows of plate | alpha | comp, 2 px gaps above and below each
    row = img[2:22]
    assert (row[:, 30:45] == 0).all() and (row[:, 45:60] == 255).all()  # the alpha column
    assert (row[:, 75:90] == 128).all()  # comp: the plate where alpha is 1
    assert len(np.unique(row[:, 60:75].reshape(-1, 3), axis=0)) == 2  # the checkerboard where alpha is 0
    assert demo._sheet_is_ours(tmp_path)(path.read_bytes()[:4096])  # marked as vom demo's own
    # an unmarked sheet is not the demo's, even beside a frame vom rendered (any shot's: QA, `vom demo --out` on a
    # folder of a shot's frames replaced the user's sheet)
    from vom_plugin.io import ImageInfo, write_alpha

    assert not demo._sheet_is_ours(tmp_path)(b"\x89PNG unmarked")
    write_alpha(tmp_path / "alpha.0001.exr", alpha, ImageInfo.for_size(30, 20), metadata={"frame": "1"})
    assert not demo._sheet_is_ours(tmp_path)(b"\x89PNG unmarked")


def test_demo_never_replaces_a_contact_sheet_of_the_users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    # a QA pass: `vom demo --out DIR` replaced DIR/contact_sheet.png, whatever it was; refused before the render now
    import vom_plugin.engine.runner as runner

    monkeypatch.setattr(runner, "render", lambda *a, **k: pytest.fail("rendered before refusing"))
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "contact_sheet.png").write_bytes(b"\x89PNG my sheet")
    assert main(["demo", "--out", str(tmp_path / "o"), "--progress", "none"]) == 2
    assert "contact_sheet.png: exists and was not written by vom" in capsys.readouterr().err
    assert (tmp_path / "o" / "contact_sheet.png").read_bytes() == b"\x89PNG my sheet"
    # --out "" is the default folder, as a blank setting is everywhere (QA: the working folder got the demo's files)
    monkeypatch.chdir(tmp_path / "o")
    (tmp_path / "o" / "vom_demo_out").mkdir()
    (tmp_path / "o" / "vom_demo_out" / "contact_sheet.png").write_bytes(b"\x89PNG my sheet")
    assert main(["demo", "--out", "", "--progress", "none"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'o' / 'vom_demo_out' / 'contact_sheet.png'}: exists and was not written by vom" in err


def test_progress_reporters() -> None:
    out = io.StringIO()
    j = JsonProgress(out)
    j({"event": "frame", "frame": 1001, "done": 1, "total": 2, "timings": {"read": 0.1}})
    assert json.loads(out.getvalue()) == {"event": "frame", "frame": 1001, "done": 1, "total": 2,
                                          "timings": {"read": 0.1}}
    err = io.StringIO()
    b = BarProgress(err, width=10)
    b({"event": "start", "total": 4, "out": "/o/a.####.exr"})
    b({"event": "frame", "frame": 1002, "done": 2, "total": 4})
    b({"event": "done", "frames_written": 4, "elapsed": 2.0, "warnings": ["w1"]})
    text = err.getvalue()
    assert "[#####.....] 2/4 frames frame 1002   50%  ETA" in text
    # the bar's summary says where the frames went (a shot file's relative out is easily mistaken)
    assert "4 frames written to /o/a.####.exr in 0:02 (2.00 frames/s)" in text and "warning: w1" in text
    # the warnings come before the closing line, which stays the last, and name the command when it is given
    named = io.StringIO()
    b = BarProgress(named, width=10, command="vom render")
    b({"event": "start", "total": 1, "out": "/o/a.####.exr"})
    b({"event": "done", "frames_written": 1, "elapsed": 1.0, "warnings": ["w1"]})
    assert named.getvalue().splitlines()[-2:] == ["vom render: warning: w1",
                                                  "1 frame written to /o/a.####.exr in 0:01 (1.00 frames/s)"]


def test_the_bars_progress_and_time_left_follow_the_steps_not_the_bursts_of_frames(monkeypatch) -> None:
    """Two keyframes: nothing is written during the first pass, then the frames come in a burst. The bar said
    0/24 with no estimate for half the render, then an ETA 20-30 times too long; after a resume it said 0:00
    while cached frames flew past. Progress and time left are the steps' now, cached steps costing nothing."""
    from vom_plugin.engine import progress as prog

    now = [100.0]
    monkeypatch.setattr(prog.time, "perf_counter", lambda: now[0])
    err = io.StringIO()
    b = BarProgress(err, width=10, tty=True)
    b({"event": "start", "total": 24})
    # 48 steps (forward and backward over 24 frames), the first 20 read back from the cache at once
    b({"event": "step", "frames_done": 0, "steps_done": 20, "steps_total": 48, "steps_cached": 20})
    for k in range(1, 15):  # then one computed step a second
        now[0] += 1.0
        b({"event": "step", "frames_done": 0, "steps_done": 20 + k, "steps_total": 48, "steps_cached": 20})
    last = err.getvalue().split("\r")[-1].strip()
    assert "0/24 frames" in last and " 71%" in last, last  # 34 of 48 steps done, no frame written yet
    assert last.endswith("ETA 0:14"), last  # 14 steps left at 1 s each (not the cached steps' pace)
    now[0] += 1.0
    b({"event": "frame", "frame": 12, "done": 1, "total": 24, "steps_done": 35, "steps_total": 48,
       "steps_cached": 20})
    assert err.getvalue().split("\r")[-1].strip().endswith("1/24 frames frame 12   73%  ETA 0:13")
    b({"event": "done", "frames_written": 24, "elapsed": 30.0, "warnings": [],
       "cache": {"steps_cached": 20, "steps_computed": 28}})
    assert err.getvalue().splitlines()[-1] == ("24 frames written in 0:30 (0.80 frames/s; 20 of 48 steps read back "
                                                "from the cache)")


def test_a_frame_event_that_comes_a_step_late_does_not_stretch_the_time_left(monkeypatch) -> None:
    """QA at UHD: a frame's event says the steps as they were when its frame was done, and came a whole step after
    the step's own event: the time left, computed from the later time over the earlier count, jumped up (ETA 0:16
    with 6 s left, redrawn 0:06, and often the one left on screen). It goes down steadily now."""
    from vom_plugin.engine import progress as prog

    now = [100.0]
    monkeypatch.setattr(prog.time, "perf_counter", lambda: now[0])
    err = io.StringIO()
    b = BarProgress(err, width=10, tty=True)
    b({"event": "start", "total": 6})
    etas = []
    for k in range(1, 7):  # a step every 2 s; frame k's event 2 s after step k's, saying k steps
        b({"event": "step", "frames_done": k - 1, "steps_done": k, "steps_total": 6, "steps_cached": 0})
        etas.append(err.getvalue().split("ETA ")[-1].strip())
        now[0] += 2.0
        b({"event": "frame", "frame": k, "done": k, "total": 6, "steps_done": k, "steps_total": 6,
           "steps_cached": 0})
        etas.append(err.getvalue().split("ETA ")[-1].strip())
    # from the second step on: 2 s a step; the late frame event says 2 s less, never more
    assert etas[2:] == ["0:08", "0:06", "0:06", "0:04", "0:04", "0:02", "0:02", "0:00", "0:00", "0:00"], etas


def test_progress_bar_in_a_log_is_plain_lines_not_carriage_returns() -> None:
    err = io.StringIO()  # not a terminal: a farm log
    b = BarProgress(err, width=10)
    b({"event": "start", "total": 100})
    for i in range(1, 101):
        b({"event": "frame", "frame": 1000 + i, "done": i, "total": 100})
    b({"event": "done", "frames_written": 100, "elapsed": 10.0, "warnings": []})
    text = err.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    # one line per 10% (plus the start and the summary), not one per frame
    assert 10 <= len(lines) <= 13, lines
    assert lines[-2].startswith("[##########] 100/100 frames frame 1100")
    assert lines[-1] == "100 frames written in 0:10 (10.00 frames/s)"


def test_openjd_progress_is_what_an_open_job_description_session_reads() -> None:
    """A QA pass: a farm task printed JSON lines, which Deadline Cloud's monitor does not read: a task sat at 0% until
    it ended. ``--progress openjd`` prints the lines an Open Job Description session takes (checked here with the
    openjd-sessions library's own filter), as often as the bar's log lines; warnings and the summary on stderr."""
    import logging

    from vom_plugin.engine.progress import OpenJDProgress, make_progress

    pytest.importorskip("openjd.sessions", reason="openjd-sessions (the farm extra)")
    from openjd.sessions import _action_filter as sessions  # installed, it must be there: a rename fails, not skips
    updates, err = io.StringIO(), io.StringIO()
    p = OpenJDProgress(updates, err, command="vom render")
    p({"event": "start", "total": 40})
    for i in range(1, 41):
        p({"event": "frame", "frame": 1000 + i, "done": i, "total": 40, "steps_done": i, "steps_total": 40,
           "steps_cached": 0})
    p({"event": "done", "frames_written": 40, "elapsed": 8.0, "warnings": ["w1"]})
    got: list[tuple[str, object]] = []
    monitor = sessions.ActionMonitoringFilter(session_id="s", callback=lambda kind, v, _c: got.append((kind.name, v)))
    for line in updates.getvalue().splitlines():
        record = logging.LogRecord("t", logging.INFO, "", 0, line, None, None)
        record.session_id = "s"
        monitor.filter(record)
    percents = [v for k, v in got if k == "PROGRESS"]
    # the start's line, then one as each frame is written (the status says every frame on disk)
    assert percents[0] == 0.0 and percents[-1] == 100.0 and percents == sorted(percents) and len(percents) == 41
    assert ("STATUS", "40/40 frames written, last frame 1040, ETA 0:00") in got
    assert len(got) == 2 * len(percents) == len(updates.getvalue().splitlines())  # nothing else on stdout
    assert err.getvalue().splitlines() == ["vom render: warning: w1", "40 frames written in 0:08 (5.00 frames/s)"]
    assert isinstance(make_progress("openjd"), OpenJDProgress)
    # the steps' total grows where damaged cache entries are computed again: the monitor's percentage does not go back
    back = io.StringIO()
    p = OpenJDProgress(back, io.StringIO())
    p({"event": "start", "total": 10})
    p({"event": "step", "frames_done": 0, "steps_done": 59, "steps_total": 100, "steps_cached": 0})
    p({"event": "step", "frames_done": 0, "steps_done": 60, "steps_total": 300, "steps_cached": 0})  # 20%
    p({"event": "step", "frames_done": 0, "steps_done": 280, "steps_total": 300, "steps_cached": 0})
    sent = [float(line.split()[1]) for line in back.getvalue().splitlines() if line.startswith("openjd_progress")]
    assert sent[:2] == [0.0, 59.0] and sent[-1] == 93.3 and sent == sorted(sent), sent
    p({"event": "done", "frames_written": 10, "elapsed": 1.0, "warnings": []})  # whole, whatever the steps said
    assert back.getvalue().splitlines()[-2:] == ["openjd_progress: 100.0", "openjd_status: 10 frames written"]


def test_openjd_status_says_each_frame_written_and_steps_only_once_a_tenth() -> None:
    """QA: a frame event whose share fell in the tenth just logged was dropped: the last status before a failure said
    "1/4 frames written, last frame 1" with two frames on disk. Each frame written is said; steps alone still add
    about one line a tenth."""
    from vom_plugin.engine.progress import OpenJDProgress

    updates = io.StringIO()
    p = OpenJDProgress(updates, io.StringIO())
    p({"event": "start", "total": 4})
    p({"event": "frame", "frame": 1, "done": 1, "total": 4, "steps_done": 25, "steps_total": 100, "steps_cached": 0})
    for done in range(26, 46):  # 20 steps over two tenths: two lines
        p({"event": "step", "frames_done": 1, "steps_done": done, "steps_total": 100, "steps_cached": 0})
    p({"event": "frame", "frame": 2, "done": 2, "total": 4, "steps_done": 46, "steps_total": 100, "steps_cached": 0})
    p({"event": "step", "frames_done": 2, "steps_done": 47, "steps_total": 100, "steps_cached": 0})  # no new line
    status = [line for line in updates.getvalue().splitlines() if line.startswith("openjd_status: ")]
    assert [line.split(", ETA")[0] for line in status] == [
        "openjd_status: 0/4 frames written",
        "openjd_status: 1/4 frames written, last frame 1",
        "openjd_status: 1/4 frames written, last frame 1",  # 30%
        "openjd_status: 1/4 frames written, last frame 1",  # 40%
        "openjd_status: 2/4 frames written, last frame 2"], status  # 46%: the tenth just said, said all the same
    assert len(updates.getvalue().splitlines()) == 2 * len(status)


def test_the_progress_bar_does_not_go_back_when_the_steps_total_grows() -> None:
    """QA: damaged cache entries computed again grow the steps' total (7/23 -> 8/30): the artist's bar went from 30%
    back to 27%, where the farm's openjd lines held."""
    err = io.StringIO()
    b = BarProgress(err, width=10, tty=True)
    b({"event": "start", "total": 12})
    b({"event": "step", "frames_done": 0, "steps_done": 7, "steps_total": 23, "steps_cached": 7})
    b({"event": "frame", "frame": 1, "done": 1, "total": 12, "steps_done": 8, "steps_total": 30, "steps_cached": 7})
    b({"event": "step", "frames_done": 1, "steps_done": 12, "steps_total": 30, "steps_cached": 7})
    shown = [int(part.split("%")[0].split()[-1]) for part in err.getvalue().split("\r")[1:]]
    assert shown == [0, 30, 30, 40], shown
    # the log lines of a bar on no terminal too
    log = io.StringIO()
    b = BarProgress(log, width=10, tty=False)
    b({"event": "start", "total": 12})
    b({"event": "step", "frames_done": 0, "steps_done": 7, "steps_total": 23, "steps_cached": 7})
    b({"event": "step", "frames_done": 0, "steps_done": 8, "steps_total": 30, "steps_cached": 7})
    logged = [int(line.split("%")[0].split()[-1]) for line in log.getvalue().splitlines()]
    assert logged == sorted(logged) and logged[-1] == 30, logged


def test_progress_bar_says_100_percent_once_every_frame_is_written() -> None:
    # the last steps end before the frames between two keyframes are written (a QA pass saw 22/24 frames at 100%)
    err = io.StringIO()
    b = BarProgress(err, width=10, tty=True)
    shown = []
    for event in ({"event": "start", "total": 24},
                  {"event": "step", "frames_done": 22, "steps_done": 30, "steps_total": 30, "steps_cached": 0},
                  {"event": "frame", "frame": 23, "done": 23, "total": 24, "steps_done": 30, "steps_total": 30,
                   "steps_cached": 0},
                  {"event": "frame", "frame": 24, "done": 24, "total": 24, "steps_done": 30, "steps_total": 30,
                   "steps_cached": 0}):
        b(event)
        shown.append(err.getvalue().rsplit("\r", 1)[1].split("%")[0][-3:].strip())
    assert shown == ["0", "99", "99", "100"]
    from vom_plugin.host.blender_addon.common import percent

    assert percent({"steps_done": 30, "steps_total": 30}, 23, 24) == 99
    assert percent({"steps_done": 30, "steps_total": 30}, 24, 24) == 100
    assert percent({"steps_done": 15, "steps_total": 30}, 2, 24) == 50


def test_progress_bar_on_a_terminal_redraws_one_line() -> None:
    err = io.StringIO()
    b = BarProgress(err, width=10, tty=True)
    b({"event": "start", "total": 3})
    for i in range(1, 4):
        b({"event": "frame", "frame": i, "done": i, "total": 3})
    assert err.getvalue().count("\r") == 4 and "\n" not in err.getvalue()
    b.end_line()  # before an error message: it starts on its own line
    assert err.getvalue().endswith("\n") and b.line_open is False


def test_a_depth_only_plate_is_refused_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from test_io_support import write_image

    for f in (1, 2):
        write_image(tmp_path / f"depth.{f:04d}.exr", np.full((12, 16), 3.5, np.float32), ("Z",), pixel_type="float")
    roto = np.zeros((12, 16), np.float32)
    roto[3:9, 4:12] = 1
    write_image(tmp_path / "roto.0001.exr", roto, ("A",))
    rc = main(["render", "--plate", str(tmp_path / "depth.####.exr"), "--roto", str(tmp_path / "roto.0001.exr"),
               "--out", str(tmp_path / "out" / "a.####.exr"), "--cache", str(tmp_path / "cache"),
               "--progress", "none"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "depth.0001.exr: its only channel 'Z' is not a picture" in err and "(channels Z)" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("case", ["roto of a missing frame", "missing weights", "cut-short weights"])
def test_bad_input_is_refused_before_torch_is_imported(tmp_path: Path, python: str, case: str) -> None:
    """Importing torch takes a `vom render` process 1-2 s: the checks of the files come first, so a wrong
    plate, roto, output or weights file costs a fraction of that."""
    import subprocess

    from test_io_support import write_image

    from vom_plugin.locations import weights_path

    plate = np.zeros((12, 16, 3), np.float32)
    for f in (1, 2):
        write_image(tmp_path / f"p.{f:04d}.exr", plate, ("R", "G", "B"))
    roto = np.zeros((12, 16), np.float32)
    roto[3:9, 4:12] = 1
    frame = 5 if case == "roto of a missing frame" else 1  # frame 5: not a frame of the plate
    write_image(tmp_path / f"roto.{frame:04d}.exr", roto, ("A",))
    model, expected = "default", f"roto.{frame:04d}.exr is for frame 5, which is not a frame of the plate"
    if case == "missing weights":
        model, expected = str(tmp_path / "none.safetensors"), "none.safetensors' does not exist"
    elif case == "cut-short weights":
        model, expected = str(tmp_path / "cut.safetensors"), "cut.safetensors' is not a readable safetensors file"
        (tmp_path / "cut.safetensors").write_bytes(weights_path("default").read_bytes()[:100_000])
    code = ("import sys\nfrom vom_plugin.cli import main\n"
            f"rc = main(['render', '--plate', {str(tmp_path / 'p.####.exr')!r}, '--roto', "
            f"{str(tmp_path / f'roto.{frame:04d}.exr')!r}, '--out', {str(tmp_path / 'out' / 'a.####.exr')!r}, "
            f"'--cache', {str(tmp_path / 'cache')!r}, '--model', {model!r}, '--no-worker', '--progress', 'none'])\n"
            "print(rc, 'torch' in sys.modules)\n")
    r = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.split() == ["2", "False"], (r.stdout, r.stderr)
    assert expected in r.stderr
    assert not (tmp_path / "out").exists()


def test_demo_json_is_a_json_stream_ending_in_its_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A host reading `vom demo --progress json` gets JSON lines only (six text lines followed them); the summary
    is the last, with the MAD the README quotes for the shipped weights."""
    import json

    from vom_plugin.locations import weights_dir

    assert (weights_dir() / "lite.safetensors").is_file(), "the shipped weights are part of the repository"
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--progress", "json", "--cache", "c"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["event"] == "start" and events[-1]["event"] == "demo"
    summary = events[-1]
    assert summary["frames"] == [1, 24] and Path(summary["sheet"]).is_file() and summary["cache"] == str(tmp_path / "c")
    assert summary["mad_x1e3"] == pytest.approx(53.97, abs=0.01)  # README: "MAD 54.0 x1e-3"


def test_a_closed_output_pipe_stops_the_command_quietly(tmp_path: Path) -> None:
    """`vom render ... --progress json | head -1`: a BrokenPipeError was reported as an internal error with a
    traceback. It stops, says why, exits 141 as a process ended by SIGPIPE, and the frames it wrote are whole."""
    import subprocess
    import sys

    from test_runner_render import make_shot_dir

    root = make_shot_dir(tmp_path / "shot")
    cmd = [sys.executable, "-m", "vom_plugin.cli", "render", "--plate", str(root / "plate" / "p.####.exr"),
           "--roto", str(root / "roto" / "r.0001.exr"), "--out", str(tmp_path / "o" / "a.####.exr"),
           "--model", str(root / "model.safetensors"), "--working-size", "128", "--device", "cpu",
           "--cache", str(tmp_path / "c"), "--progress", "json", "--no-worker"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()  # the start event, then the reader goes away
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 141, err
    assert "stopped: its output was closed (broken pipe)" in err and "Traceback" not in err, err

    import OpenImageIO as oiio

    written = sorted((tmp_path / "o").glob("[!.]*.exr"))  # and how many frames it left: those on disk
    noun = "frame" if len(written) == 1 else "frames"  # "1 frames written" before (QA)
    # and which (QA: the count alone left a farm wrapper to guess which frames to requeue)
    from vom_plugin.io.sequence import written_list

    listed = written_list([int(p.name.split(".")[1]) for p in written])
    assert err.strip().endswith(f"; {len(written)} {noun} written{listed}, complete"), (err, written)
    for f in written:
        inp = oiio.ImageInput.open(str(f))
        assert inp is not None and inp.read_image() is not None
        inp.close()


def test_a_negative_frame_range_is_taken_after_frames_without_an_equals_sign(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A QA pass: ``--frames -2-1`` was argparse's "expected one argument" (a usage error), and the Nuke adapter
    passes --frames as its own argument."""
    import vom_plugin.engine.runner as runner
    from vom_plugin.errors import InputError

    seen = {}

    def fake_render(shot, **kw):
        seen["frames"] = shot.frames
        raise InputError("stop here")

    monkeypatch.setattr(runner, "render", fake_render)
    code = main(["render", "--plate", str(tmp_path / "none.####.exr"), "--roto", f"{tmp_path / 'r.exr'}@-2",
                 "--out", str(tmp_path / "o" / "a.####.exr"), "--frames", "-2-1", "--no-worker"])
    err = capsys.readouterr().err
    assert code == 2 and "stop here" in err and seen["frames"] == [-2, -1, 0, 1], err


def test_a_bad_render_setting_in_the_environment_is_refused_before_a_worker_is_asked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from vom_plugin.worker import client

    monkeypatch.setattr(client, "render_in_worker", lambda *a, **k: pytest.fail("the worker was asked first"))
    monkeypatch.setenv("VOM_CACHE_MAX_GB", "abc")
    demo = Path(__file__).resolve().parents[1] / "vom_plugin" / "data" / "demo" / "shot.yaml"
    assert main(["render", str(demo), "--out", str(tmp_path / "o" / "a.####.exr")]) == 2
    assert "VOM_CACHE_MAX_GB" in capsys.readouterr().err


def test_a_keyframe_on_a_hole_is_told_the_runs_on_disk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A roto for frame 3 of a plate missing frame 3 was told "frames on disk: 1-5" (QA): the runs are said."""
    from test_io_support import write_image

    for f in (1, 2, 4, 5):
        write_image(tmp_path / f"p.{f:04d}.exr", np.zeros((12, 16, 3), np.float32), ("R", "G", "B"))
    roto = np.zeros((12, 16), np.float32)
    roto[3:9, 4:12] = 1
    write_image(tmp_path / "roto.0003.exr", roto, ("A",))
    rc = main(["render", "--plate", str(tmp_path / "p.####.exr"), "--roto", str(tmp_path / "roto.0003.exr"),
               "--out", str(tmp_path / "out" / "a.####.exr"), "--cache", str(tmp_path / "cache"),
               "--progress", "none", "--no-worker"])
    err = capsys.readouterr().err
    assert rc == 2 and "is for frame 3, which is not a frame of the plate" in err
    assert "(frames on disk: 1-2, 4-5)" in err
    assert not (tmp_path / "out").exists()


def test_path_flags_are_read_as_a_shot_files_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """QA: --out '$SHOW/a.####.exr' (quoted, or a farm template's argument: no shell expanded it) wrote the mattes into
    a folder named $SHOW, and --cache '~nouser/x' made one named ~nouser, both exit 0; a shot file's paths refused
    them. The flags now read ~user and $VAR as a shot file does: an unset variable or unknown user is refused before
    anything is made, and $$ is a $ of the path itself."""
    from test_runner_render import make_shot_dir

    root = make_shot_dir(tmp_path / "shot")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VOM_T_ROOT", str(tmp_path / "show"))
    monkeypatch.delenv("VOM_T_UNSET", raising=False)
    base = ["render", "--plate", "$VOM_T_ROOT/../shot/plate/p.####.exr", "--roto", f"{root}/roto/r.0001.exr",
            "--model", str(root / "model.safetensors"), "--working-size", "128", "--device", "cpu", "--frames", "1-2",
            "--progress", "none", "--no-worker"]
    assert main([*base, "--out", "$VOM_T_ROOT/o$$1/a.####.exr", "--cache", "${VOM_T_ROOT}/cache"]) == 0
    assert sorted(p.name for p in (tmp_path / "show" / "o$1").iterdir()) == ["a.0001.exr", "a.0002.exr"]
    assert (tmp_path / "show" / "cache").is_dir()
    capsys.readouterr()
    for flag, value, said in (("--out", "$VOM_T_UNSET/a.####.exr", "--out '$VOM_T_UNSET/a.####.exr': "),
                              ("--cache", "$VOM_T_UNSET/c", "--cache '$VOM_T_UNSET/c': "),
                              ("--cache", "~vom_no_such_user/c", "~vom_no_such_user is no user's home folder"),
                              ("--roto", "$VOM_T_UNSET/r.0001.exr", "--roto '$VOM_T_UNSET/r.0001.exr': ")):
        args = [*base, "--out", str(tmp_path / "o2" / "a.####.exr")]
        args = [*args, flag, value] if flag != "--roto" else [a if a != f"{root}/roto/r.0001.exr" else value
                                                               for a in args]
        assert main(args) == 2, (flag, value)
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err, err
        if "UNSET" in value:
            assert "VOM_T_UNSET is not set" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot", "show"]  # no $VOM_T_UNSET, ~vom_no_such_user, o2
    # the roto's frame read from the expanded path (review: --roto '$R' said "no frame number in the file name")
    monkeypatch.setenv("VOM_T_ROTO", f"{root}/roto/r.0001.exr")
    args = [a if a != f"{root}/roto/r.0001.exr" else "$VOM_T_ROTO" for a in base]
    assert main([*args, "--out", str(tmp_path / "show" / "o3" / "a.####.exr")]) == 0, capsys.readouterr().err
    args = [a if a != f"{root}/roto/r.0001.exr" else "hero=${VOM_T_ROTO}" for a in base]
    assert main([*args, "--out", str(tmp_path / "show" / "o4" / "a.####.exr")]) == 0, capsys.readouterr().err
    for folder in ("o3", "o4"):
        assert len(list((tmp_path / "show" / folder).glob("*.exr"))) == 2


def test_the_bar_writes_a_warning_as_it_comes_and_once() -> None:
    """A ``warning`` event is written at once, on a line of its own under the terminal bar, and not again with the
    closing line; one that came only with ``done`` (an older worker's) is written there, before the closing line."""
    out = io.StringIO()
    bar = BarProgress(stream=out, tty=True, command="vom render")
    bar({"event": "start", "total": 2, "frames": [1, 2], "out": "o.####.exr"})
    bar({"event": "frame", "frame": 1, "done": 1, "total": 2})
    bar({"event": "warning", "message": "keyframe 1: its matte is empty"})
    assert re.search(r"50%  ETA [-:0-9]+  \nvom render: warning: keyframe 1: its matte is empty\n\r\[#{15}\.{15}\] 1/2 "
                     r"frames frame 1   50%  ETA [-:0-9]+  $", out.getvalue()), out.getvalue()
    bar({"event": "frame", "frame": 2, "done": 2, "total": 2})
    bar({"event": "done", "frames_written": 2, "elapsed": 1.0,
         "warnings": ["keyframe 1: its matte is empty", "cache eviction failed: disk"]})
    lines = out.getvalue().split("\n")
    assert sum("its matte is empty" in x for x in lines) == 1
    assert lines[-3:] == ["vom render: warning: cache eviction failed: disk",
                          "2 frames written to o.####.exr in 0:01 (2.00 frames/s)", ""]


def test_the_closing_line_counts_files_where_each_frame_is_several() -> None:
    """QA: three objects, one sequence each, closed as "16 frames written" for 48 files."""
    out = io.StringIO()
    bar = BarProgress(stream=out, tty=False)
    bar({"event": "done", "frames_written": 16, "files_written": 48, "elapsed": 8.0, "warnings": []})
    bar({"event": "done", "frames_written": 16, "files_written": 16, "elapsed": 8.0, "warnings": []})
    assert out.getvalue().splitlines() == ["16 frames (48 files) written in 0:08 (2.00 frames/s)",
                                           "16 frames written in 0:08 (2.00 frames/s)"]
