"""Farm jobs as Open Job Description bundles: spans, the template, `openjd check`, and a real `openjd run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vom_plugin.errors import InputError
from vom_plugin.farm.openjd import CHECK_STEP, build_template, parameter_values
from vom_plugin.farm.spans import Booking, compact_range, load_farm_shot, split_spans
from vom_plugin.locations import demo_dir

SHOT_DIR = demo_dir()  # the furry_cube shot, shipped with the package
VENV_BIN = Path(sys.executable).parent
OPENJD = VENV_BIN / "openjd"


def _vom(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vom_plugin.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def _shot_file(tmp: Path, frames: str = "1001-1100", keyframes: dict[int, str] | None = None,
               name: str = "sh010.yaml", **extra: object) -> Path:
    data = {"plate": str(tmp / "plate" / "sh010.####.exr"), "frames": frames,
            "keyframes": keyframes or {1001: str(tmp / "roto.1001.exr"), 1050: str(tmp / "roto.1050.exr")},
            "out": str(tmp / "out dir" / "sh010_alpha.####.exr"), **extra}
    path = tmp / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_spans_partition_the_frames() -> None:
    spans = split_spans(list(range(990, 1101)), [1050, 1001])
    assert [(s.kind, s.keyframes, s.frames[0], s.frames[-1]) for s in spans] == [
        ("before", (1001,), 990, 1000), ("between", (1001, 1050), 1001, 1049), ("after", (1050,), 1050, 1100)]
    assert sorted(f for s in spans for f in s.frames) == list(range(990, 1101))
    assert [s.name for s in spans] == ["frames_990_1000", "frames_1001_1049", "frames_1050_1100"]
    # a keyframe outside the requested frames still serves them; empty spans are dropped
    assert [(s.kind, s.frames) for s in split_spans([1051, 1052], [1001])] == [("after", (1051, 1052))]
    assert split_spans([-2, -1, 0], [0])[0].name == "frames_m2_m1"
    with pytest.raises(InputError, match="keyframes: empty"):
        split_spans([1, 2], [])


def test_compact_range() -> None:
    assert compact_range([5, 1, 2, 3, 7, 8, 10]) == "1-3,5,7-8,10"
    assert compact_range([1001]) == "1001"


def test_template_structure(tmp_path: Path) -> None:
    shot = load_farm_shot(_shot_file(tmp_path, frames="990-1100"))
    t = build_template(shot, chunk=10)
    assert t["specificationVersion"] == "jobtemplate-2023-09" and t["extensions"] == ["TASK_CHUNKING"]
    assert t["name"] == "vom sh010"
    steps = {s["name"]: s for s in t["steps"]}
    assert list(steps) == ["frames_990_1000", "frames_1001_1049", "frames_1050_1100", CHECK_STEP]
    for name in list(steps)[:3]:
        s = steps[name]
        (param,) = s["parameterSpace"]["taskParameterDefinitions"]
        assert param["type"] == "CHUNK[INT]" and param["name"] == "Frame"
        assert param["chunks"] == {"defaultTaskCount": 10, "rangeConstraint": "CONTIGUOUS"}
        assert "dependencies" not in s  # spans are independent: they run in parallel
        run = s["script"]["actions"]["onRun"]
        assert run["command"] == "{{Param.Vom}}"
        # the progress lines the farm's monitor shows; the task's own process, never a worker left on the node (QA)
        assert run["args"] == ["render", "{{Param.ShotFile}}", "--frames={{Task.Param.Frame}}", "--progress",
                               "openjd", "--no-worker"]
        # a cancel, requeue or timeout: SIGTERM first (vom saves its state), not the spec's default SIGKILL
        assert run["cancelation"] == {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": 60}
    assert steps["frames_1001_1049"]["parameterSpace"]["taskParameterDefinitions"][0]["range"] == "1001-1049"
    assert steps[CHECK_STEP]["dependencies"] == [{"dependsOn": n} for n in list(steps)[:3]]
    # shared storage, no job attachments: a shot file copied to a session folder would find no plate beside it
    assert all("dataFlow" not in p for p in t["parameterDefinitions"])
    values = {p["name"]: p["value"] for p in parameter_values(shot)["parameterValues"]}
    assert values["ShotFile"] == str(shot.path) and set(values) == {"ShotFile", "Vom"}  # out: the shot file's
    assert Path(values["Vom"]).name == "vom"


def test_the_job_names_the_shot_file_by_the_path_given_links_kept(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: the job named the shot by its link's target (/show/x -> /mnt/nas03/...), a path the farm's nodes may
    not mount, and a versioned link (sh010.yaml -> sh010_v003.yaml) was pinned to the version of the day."""
    real = tmp_path / "nas03"
    real.mkdir()
    target = _shot_file(real, name="sh010_v003.yaml")
    (tmp_path / "show").symlink_to(real)
    (real / "sh010.yaml").symlink_to(target.name)
    shot = load_farm_shot(tmp_path / "show" / "sh010.yaml")
    assert shot.path == tmp_path / "show" / "sh010.yaml" and shot.name == "sh010"
    values = {p["name"]: p["value"] for p in parameter_values(shot)["parameterValues"]}
    assert values["ShotFile"] == str(tmp_path / "show" / "sh010.yaml")
    # ".." stays for the node's system to take: collapsed here, show/../x would be another folder than the OS's
    dotted = load_farm_shot(tmp_path / "show" / ".." / "nas03" / "sh010.yaml")
    assert dotted.path == tmp_path / "show" / ".." / "nas03" / "sh010.yaml"
    # relative, from a shell in the link's folder (cd /show/x): the shell's path, not the system's (review)
    monkeypatch.chdir(tmp_path / "show")
    monkeypatch.setenv("PWD", str(tmp_path / "show"))
    assert load_farm_shot("sh010.yaml").path == tmp_path / "show" / "sh010.yaml"
    monkeypatch.setenv("PWD", str(tmp_path))  # a stale $PWD (another folder): the system's
    assert load_farm_shot("sh010.yaml").path == real / "sh010.yaml"
    # named after the folder it is in, not "..": a Nuke node's shot.yaml given as ../shot.yaml (review)
    (real / "sh030_vom").mkdir()
    _shot_file(real / "sh030_vom", name="shot.yaml")
    (real / "sh030_vom" / "sub").mkdir()
    monkeypatch.chdir(real / "sh030_vom" / "sub")
    monkeypatch.setenv("PWD", str(real / "sh030_vom" / "sub"))
    assert load_farm_shot("../shot.yaml").name == "sh030"


def test_cores_and_memory_are_host_requirements_and_the_cores_the_render_s_threads(tmp_path: Path) -> None:
    shot = load_farm_shot(_shot_file(tmp_path, frames="990-1100", device="cuda"))
    t = build_template(shot, booking=Booking(cores=4, memory_gb=6))
    steps = {s["name"]: s for s in t["steps"]}
    for name, s in steps.items():
        if name == CHECK_STEP:
            assert "hostRequirements" not in s and "stepEnvironments" not in s
            continue
        assert s["hostRequirements"] == {"amounts": [{"name": "amount.worker.gpu", "min": 1},
                                                     {"name": "amount.worker.vcpu", "min": 4},
                                                     {"name": "amount.worker.memory", "min": 6144}]}
        [env] = s["stepEnvironments"]
        assert env["variables"] == {"OMP_NUM_THREADS": "4"}
    plain = build_template(shot)  # the farm's booking, the node's cores: as before
    assert all("stepEnvironments" not in s for s in plain["steps"])
    if OPENJD.exists():
        r = _vom("farm", "openjd", str(shot.path), "--out", str(tmp_path / "b"), "--cores", "2", "--memory", "3")
        assert r.returncode == 0, r.stderr
        check = subprocess.run([str(OPENJD), "check", "--extensions", "TASK_CHUNKING",
                                str(tmp_path / "b" / "template.yaml")], capture_output=True, text=True, timeout=120)
        assert check.returncode == 0, check.stdout + check.stderr


def test_by_default_a_span_is_one_task(tmp_path: Path) -> None:
    """A span is one propagation and a farm runs a step's tasks at once, each propagating from its keyframe again
    (QA: 6 chunks of 4 frames computed 84 steps for 24 frames): by default each span is one task; --chunk N is
    still there (and `span` says the default), with a note on what it costs."""
    shot = _shot_file(tmp_path, frames="990-1100")
    r = _vom("farm", "openjd", str(shot), "--out", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    assert "--chunk" not in r.stderr
    t = yaml.safe_load((tmp_path / "b" / "template.yaml").read_text())
    counts = {s["name"]: s["parameterSpace"]["taskParameterDefinitions"][0]["chunks"]["defaultTaskCount"]
              for s in t["steps"][:-1]}
    assert counts == {"frames_990_1000": 11, "frames_1001_1049": 49, "frames_1050_1100": 51}
    assert t["description"].endswith("3 independent span(s), one task each.")
    assert yaml.safe_load((tmp_path / "b" / "template.yaml").read_text()) == \
        yaml.safe_load(_dump_template(tmp_path, "--chunk", "span"))
    r = _vom("farm", "openjd", str(shot), "--chunk", "10", "--out", str(tmp_path / "c"))
    assert r.returncode == 0 and "--chunk 10 cuts a span into tasks that continue one another's propagation" in r.stderr
    assert "propagates through up to 6 chunks' frames" in r.stderr  # the longest span, 51 frames, in 6 chunks
    bad = _vom("farm", "openjd", str(shot), "--chunk", "spam", "--out", str(tmp_path / "d"))
    assert bad.returncode == 2 and "'spam' is not a whole number of frames, nor `span`" in bad.stderr


def test_the_chunk_note_says_which_way_each_span_propagates(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """QA: one keyframe in the middle and --chunk 4: the note said the chunks continue one another "in order" and the
    work falls on the "last chunk"; before the keyframe the propagation runs backward, so it falls on the first.
    And "chunks of at most 1 frames"."""
    from vom_plugin.cli import main

    shot = _shot_file(tmp_path, frames="1001-1023", keyframes={1012: str(tmp_path / "roto.1012.exr")})
    assert main(["farm", "openjd", str(shot), "--chunk", "4", "--out", str(tmp_path / "b")]) == 0
    note = next(line for line in capsys.readouterr().err.splitlines() if "--chunk 4" in line)
    assert " in order;" not in note and "the span's last chunk" not in note, note
    assert "after a keyframe in frame order, each chunk from the one before it; before the first keyframe backward, " \
           "each chunk from the one after it (run in frame order, the first chunk propagates through every later " \
           "chunk's frames" in note, note
    assert "the chunk farthest from a keyframe, a span's last chunk after a keyframe, its first before the first " \
           "keyframe, propagates through up to 3 chunks' frames" in note, note
    t = build_template(load_farm_shot(shot), chunk=1)
    assert t["description"].endswith("2 independent span(s) in chunks of at most 1 frame."), t["description"]


def _dump_template(tmp_path: Path, *args: str) -> str:
    out = tmp_path / "again"
    r = _vom("farm", "openjd", str(tmp_path / "sh010.yaml"), *args, "--out", str(out))
    assert r.returncode == 0, r.stderr
    return (out / "template.yaml").read_text()


def test_openjd_check_accepts_the_bundle(tmp_path: Path) -> None:
    shot = _shot_file(tmp_path, frames="1001-1003,1010-1100x2")
    r = _vom("farm", "openjd", str(shot), "--chunk", "7", "--out", str(tmp_path / "bundle"))
    assert r.returncode == 0, r.stderr
    bundle = tmp_path / "bundle"
    assert sorted(p.name for p in bundle.iterdir()) == ["parameter_values.yaml", "template.yaml"]
    check = subprocess.run([str(OPENJD), "check", str(bundle / "template.yaml")], capture_output=True, text=True,
                           timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "passes validation" in check.stdout
    steps = yaml.safe_load((bundle / "template.yaml").read_text())["steps"]
    ranges = [s["parameterSpace"]["taskParameterDefinitions"][0]["range"] for s in steps[:-1]]
    assert ranges[0] == "1001-1003,1010,1012,1014,1016,1018,1020,1022,1024,1026,1028,1030,1032,1034,1036,1038,1040,1042,1044,1046,1048"  # noqa: E501


def test_bad_input_exit_2(tmp_path: Path) -> None:
    shot = _shot_file(tmp_path)
    r = _vom("farm", "openjd", str(shot), "--chunk", "0", "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "--chunk" in r.stderr
    r = _vom("farm", "openjd", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "missing.yaml" in r.stderr
    bad = _shot_file(tmp_path, name="bad.yaml", working_size="big")
    r = _vom("farm", "opencue", str(bad), "--out", str(tmp_path / "job.xml"))
    assert r.returncode == 2 and "working_size" in r.stderr
    (tmp_path / "afile").write_text("x")
    r = _vom("farm", "openjd", str(shot), "--out", str(tmp_path / "afile"))
    assert r.returncode == 2 and "not a folder" in r.stderr
    assert not (tmp_path / "b").exists()
    # a submitter's empty variable: the bundle went into the working folder (QA)
    import importlib.util

    (tmp_path / "cwd").mkdir()
    for kind, what in (("openjd", "the bundle folder"), ("opencue", "the XML file")):
        if kind == "opencue" and importlib.util.find_spec("outline") is None:
            continue  # without the farm extra, vom farm opencue says that first
        r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "farm", kind, str(shot), "--out="],
                           capture_output=True, text=True, cwd=tmp_path / "cwd", timeout=300,
                           env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        assert r.returncode == 2 and f"--out '': blank; expected {what} to write" in r.stderr, r.stderr
        assert not list((tmp_path / "cwd").iterdir())
    # an out whose folder cannot be made (a file in its path): every task exited 2 on it; refused when made (QA)
    blocked = _shot_file(tmp_path, name="blocked.yaml", out=str(tmp_path / "afile" / "alpha.####.exr"))
    r = _vom("farm", "openjd", str(blocked), "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and f"{tmp_path / 'afile'} is a file" in r.stderr, r.stderr
    assert not (tmp_path / "b").exists()
    # a link to storage mounted only on the workers dangles here: not refused (review)
    (tmp_path / "renders").symlink_to(tmp_path / "not_mounted_here")
    mounted = _shot_file(tmp_path, name="mounted.yaml", out=str(tmp_path / "renders" / "sh010" / "alpha.####.exr"))
    r = _vom("farm", "openjd", str(mounted), "--out", str(tmp_path / "b"))
    assert "is a file" not in r.stderr and (tmp_path / "b" / "template.yaml").exists(), r.stderr
    # output files here that a render refuses (not vom's, read-only): every task rendering them exited 2 (QA)
    (tmp_path / "out dir").mkdir()
    (tmp_path / "out dir" / "sh010_alpha.1003.exr").write_text("another tool's")
    (tmp_path / "out dir" / "sh010_alpha.1004.exr").write_text("another tool's")
    r = _vom("farm", "openjd", str(shot), "--out", str(tmp_path / "c"))
    assert r.returncode == 2 and "out: frame 1003 (and 1 more frame) would replace" in r.stderr \
        and "every task rendering them would fail (exit 2)" in r.stderr, r.stderr
    assert not (tmp_path / "c").exists()
    # what only this user cannot read or replace (the farm's account may own it: review) is no refusal here
    for f in (1003, 1004):
        (tmp_path / "out dir" / f"sh010_alpha.{f}.exr").unlink()
    theirs = tmp_path / "out dir" / "sh010_alpha.1005.exr"
    theirs.write_text("the farm account's")
    real_access = os.access
    with pytest.MonkeyPatch.context() as m:  # root reads anything: another user's file made so
        m.setattr(os, "access", lambda p, mode, *a, **k: False if str(p) == str(theirs) else real_access(p, mode,
                                                                                                     *a, **k))
        from vom_plugin.farm.spans import check_out_folders, load_farm_shot

        check_out_folders(load_farm_shot(shot))


@pytest.mark.slow
def test_openjd_run_renders_the_shot(tmp_path: Path) -> None:
    """Execute the whole job with `openjd run` on a tiny shot with random lite weights, then check the EXRs."""
    import OpenImageIO as oiio
    import torch

    from vom_plugin.engine.weights import save_weights
    from vom_plugin.model import build_model

    torch.manual_seed(0)
    weights = tmp_path / "lite_random.safetensors"
    save_weights(build_model("lite"), weights)
    roto = str(SHOT_DIR / "roto.0001.exr")
    # two spans (1-2 between keyframes 1 and 3, 3-4 after 3), one chunk of 2 frames each: the least work
    # that still runs parallel span steps, CHUNK[INT] ranges and the dependent check step
    shot = _shot_file(tmp_path, frames="1-4", keyframes={1: roto, 3: roto}, name="tiny.yaml",
                      plate=str(SHOT_DIR / "plate.####.exr"), out=str(tmp_path / "out" / "alpha.####.exr"),
                      model=str(weights), working_size=128, device="cpu", cache=str(tmp_path / "cache"))
    bundle = tmp_path / "bundle"
    r = _vom("farm", "openjd", str(shot), "--chunk", "2", "--out", str(bundle))
    assert r.returncode == 0, r.stderr
    run = subprocess.run([str(OPENJD), "run", str(bundle / "template.yaml"), "--step", CHECK_STEP,
                          "--run-dependencies", "-p", f"ShotFile={shot}"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    assert "Frame(CHUNK[INT]) = 1-2" in log and "Frame(CHUNK[INT]) = 3-4" in log  # chunks, not frames
    assert log.index("Running step 'check_outputs'") > log.index("Frame(CHUNK[INT]) = 3-4")
    assert "all 4 frames written" in log  # the check step ran last
    # each task's progress, as the session read it from the task's output: the farm's monitor showed 0% until the
    # task ended (QA); the runner logs these lines as the task prints them
    assert log.count("openjd_progress: 100.0") == 2 and "openjd_status: 2/2 frames written, last frame 2" in log, log
    for f in range(1, 5):
        path = tmp_path / "out" / f"alpha.{f:04d}.exr"
        inp = oiio.ImageInput.open(str(path))
        assert inp is not None, f"frame {f}: {oiio.geterror()}"
        spec = inp.spec()
        pixels = inp.read_image(0, 0, 0, spec.nchannels, "float")
        inp.close()
        assert (spec.full_width, spec.full_height) == (480, 270)
        assert list(spec.channelnames) == ["A"] and spec.format == oiio.TypeDesc("half")
        assert 0.0 <= float(pixels.min()) and float(pixels.max()) <= 1.0
    # and the check step fails, naming the frame, when one is missing
    (tmp_path / "out" / "alpha.0003.exr").unlink()
    chk = _vom("farm", "check", str(shot))
    assert chk.returncode == 2 and "1 of 4 frames" in chk.stderr and ": 3" in chk.stderr


@pytest.mark.slow
def test_a_task_cancelled_by_the_runner_stops_as_vom_does_on_sigterm(tmp_path: Path) -> None:
    """A QA pass: the render action had no cancelation, so Open Job Description's default killed a cancelled,
    requeued or timed-out task at once (SIGKILL): the chunk's memory state was never saved and its next run began
    again at the keyframe. Here a timeout cancels the task: vom is told with SIGTERM and exits as it does on it."""
    shot = _shot_file(tmp_path, frames="1-24", keyframes={1: str(SHOT_DIR / "roto.0001.exr")}, name="cancel.yaml",
                      plate=str(SHOT_DIR / "plate.####.exr"), out=str(tmp_path / "out" / "alpha.####.exr"),
                      model="lite", working_size=960, device="cpu", cache=str(tmp_path / "cache"))
    bundle = tmp_path / "bundle"
    assert _vom("farm", "openjd", str(shot), "--chunk", "24", "--out", str(bundle)).returncode == 0
    template = yaml.safe_load((bundle / "template.yaml").read_text())
    template["steps"][0]["script"]["actions"]["onRun"]["timeout"] = 4  # the runner cancels the task 4 s in
    (bundle / "template.yaml").write_text(yaml.safe_dump(template, sort_keys=False))
    run = subprocess.run([str(OPENJD), "run", str(bundle / "template.yaml"), "--step", "frames_1_24",
                          "--task-param", "Frame=1-24", "-p", f"ShotFile={shot}"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    log = run.stdout + run.stderr
    assert run.returncode != 0, log[-3000:]  # the task did not finish
    assert 'Sending signal "term"' in log and 'Sending signal "kill"' not in log, log[-3000:]
    # vom's own way out (on a loaded machine the 4 s can end before the render began: said so, 130 all the same)
    assert ("stopped by SIGTERM" in log or "interrupted by SIGTERM before the render began" in log) \
        and "exited with code: 130" in log, log[-3000:]
    out = tmp_path / "out"
    on_disk = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert all(n.startswith("alpha.") for n in on_disk), on_disk  # whole frames only, no temporary left
    again = _vom("render", str(shot), "--progress", "json", "--no-worker")
    done = json.loads(again.stdout.splitlines()[-1])
    assert done["frames_written"] == 24 and done["cache"]["steps_cached"] == len(on_disk), done  # resumed


def test_frames_default_to_the_plate_on_disk_and_cache_warning(tmp_path: Path) -> None:
    shot = tmp_path / "shot.yaml"
    shot.write_text(yaml.safe_dump({"plate": str(SHOT_DIR / "plate.####.exr"),
                                    "keyframes": {12: str(SHOT_DIR / "roto.0001.exr")},
                                    "out": str(tmp_path / "out" / "a.####.exr")}))
    loaded = load_farm_shot(shot)
    assert loaded.frames == list(range(1, 25)) and loaded.name == tmp_path.name and loaded.cache is None
    r = _vom("farm", "openjd", str(shot), "--out", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    assert "frames_1_11: frames 1-11: backward from keyframe 12" in r.stdout
    assert "frames_12_24: frames 12-24: forward from keyframe 12" in r.stdout
    assert "no `cache:` folder" in r.stderr
    (tmp_path / "a_file").write_text("x")  # a cache that is a file: every task renders without it (QA: unsaid)
    shot.write_text(shot.read_text() + f"cache: {tmp_path / 'a_file'}\n")
    r = _vom("farm", "openjd", str(shot), "--out", str(tmp_path / "b"))
    assert r.returncode == 0 and f"`cache:` {tmp_path / 'a_file'} is not a folder: every task would render " \
        "without the cache" in r.stderr, r.stderr
    # the output's folder as the cache: every task renders without it (review: said by each task only)
    shot.write_text(shot.read_text().replace(str(tmp_path / "a_file"), str(tmp_path / "out")))
    r = _vom("farm", "openjd", str(shot), "--out", str(tmp_path / "b"))
    assert r.returncode == 0 and f"`cache:` is not used: cache folder '{tmp_path / 'out'}' is the output's folder, " \
        "where vom writes no cache" in r.stderr, r.stderr
    shot.write_text(shot.read_text().replace(f"cache: {tmp_path / 'out'}", f"cache: {tmp_path / 'shared_cache'}"))
    r = _vom("farm", "openjd", str(shot), "--out", str(tmp_path / "b"))
    assert r.returncode == 0 and "cache" not in r.stderr and "note" not in r.stderr
    # paths read from the environment where each task runs: said at submission (QA: a worker without the
    # variable failed every task, exit 2, and nothing had said the job needs it)
    shot.write_text(shot.read_text().replace(str(tmp_path / "out"), "${VOM_QA_ROOT}/out"))
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "farm", "openjd", str(shot), "--out",
                        str(tmp_path / "b")], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "VOM_QA_ROOT": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert f"paths read $VOM_QA_ROOT (here {str(tmp_path)!r}): every worker needs it set to the same" in r.stderr


def test_cuda_shot_asks_for_gpu_workers(tmp_path: Path) -> None:
    shot = _shot_file(tmp_path, device="cuda")
    t = build_template(load_farm_shot(shot), chunk=10)
    renders = [s for s in t["steps"] if s["name"] != CHECK_STEP]
    assert all(s["hostRequirements"] == {"amounts": [{"name": "amount.worker.gpu", "min": 1}]} for s in renders)
    assert "hostRequirements" not in t["steps"][-1]  # the check needs no GPU
    assert all("hostRequirements" not in s for s in build_template(load_farm_shot(_shot_file(tmp_path)), 10)["steps"])
    r = _vom("farm", "openjd", str(shot), "--out", str(tmp_path / "bundle"))
    assert r.returncode == 0, r.stderr
    check = subprocess.run([str(OPENJD), "check", str(tmp_path / "bundle" / "template.yaml")], capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_chunk_of_negative_frames_reaches_vom_render_as_a_frame_range() -> None:
    """A task's chunk of negative frames (-3--2) is one --frames=VALUE word: as two words argparse took the
    value for an option and every such task exited 2."""
    from vom_plugin.cli import build_parser
    from vom_plugin.farm.openjd import _render_action

    args = [a.replace("{{Param.ShotFile}}", "sh.yaml").replace("{{Task.Param.Frame}}", "-3--2")
            for a in _render_action("{{Task.Param.Frame}}")["args"]]
    assert build_parser("render").parse_args(args).knob_frames == "-3--2"
    with pytest.raises(SystemExit):  # what the two words did
        build_parser("render").parse_args(["render", "sh.yaml", "--frames", "-3--2"])


def test_a_stepped_span_is_cut_into_chunks_of_the_chunk_size(tmp_path: Path) -> None:
    """Frames on twos (1001-1019x2): CONTIGUOUS chunks stop at every gap, one frame a task; those spans ask for
    NONCONTIGUOUS chunks, whose values (1001,1003,...) `vom render --frames` reads as they are."""
    pytest.importorskip("openjd.model")
    from openjd.model import StepParameterSpaceIterator, create_job, decode_job_template, preprocess_job_parameters

    from vom_plugin.io import parse_frame_range

    shot = load_farm_shot(_shot_file(tmp_path, frames="1001-1019x2", keyframes={1001: str(tmp_path / "r.1001.exr")}))
    t = build_template(shot, chunk=3)
    (param,) = t["steps"][0]["parameterSpace"]["taskParameterDefinitions"]
    assert param["chunks"] == {"defaultTaskCount": 3, "rangeConstraint": "NONCONTIGUOUS"}
    jt = decode_job_template(template=t, supported_extensions=["TASK_CHUNKING"])
    # shared storage, no job attachments: a shot file copied to a session folder would find no plate beside it
    assert all("dataFlow" not in p for p in t["parameterDefinitions"])
    values = {p["name"]: p["value"] for p in parameter_values(shot)["parameterValues"]}
    params = preprocess_job_parameters(job_template=jt, job_parameter_values=values, environment_templates=[],
                                       job_template_dir=tmp_path, current_working_dir=tmp_path)
    step = create_job(job_template=jt, job_parameter_values=params).steps[0]
    chunks = [task["Frame"].value for task in StepParameterSpaceIterator(space=step.parameterSpace)]
    # every frame once, none between: OpenJD writes a stepped chunk as 1001-1005:2
    assert [parse_frame_range(c) for c in chunks] == [[1001, 1003, 1005], [1007, 1009], [1011, 1013, 1015],
                                                      [1017, 1019]]
    assert "1001-1005:2" in chunks
    contiguous = build_template(load_farm_shot(_shot_file(tmp_path, name="b.yaml")), chunk=3)
    assert {p["chunks"]["rangeConstraint"] for s in contiguous["steps"][:-1]
            for p in s["parameterSpace"]["taskParameterDefinitions"]} == {"CONTIGUOUS"}


def test_a_bundle_written_over_another_never_mixes_the_two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: the template and the parameter values were each replaced on their own; a full disk at the second left
    the new shot's template beside the old shot's parameters (its shot file), a job rendering one shot's frames
    from the other's file. Now neither is replaced unless both are written."""
    from vom_plugin import atomic
    from vom_plugin.farm.openjd import write_bundle

    a = load_farm_shot(_shot_file(tmp_path, frames="1001-1020", name="a.yaml"))
    bundle = write_bundle(a, tmp_path / "bundle")
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    b = load_farm_shot(_shot_file(tmp_path, frames="1001-1010", name="b.yaml"))
    synced = []

    def full(path: Path) -> None:  # the disk fills as the second file is written
        synced.append(path)
        if len(synced) == 2:
            raise OSError(28, "No space left on device", str(path))
    monkeypatch.setattr(atomic, "_fsync", full)
    with pytest.raises(OSError, match="No space left on device"):
        write_bundle(b, bundle)
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before  # both as they were, no temporary left
    monkeypatch.undo()
    write_bundle(b, bundle)
    assert "b.yaml" in (bundle / "parameter_values.yaml").read_text()
    assert "1001-1010" in (bundle / "template.yaml").read_text()
