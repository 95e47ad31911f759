"""vom bench: the JSON has the agreed keys and sane values (on a tiny stand-in size; no timing asserted)."""

from __future__ import annotations

import argparse
import json

import pytest

from vom_plugin.engine import bench
from vom_plugin.errors import InputError


def test_bench_json_shape(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(bench.SIZES, 480, (32, 64))  # the real 480x864 takes minutes here
    from vom_plugin.commands import bench as cmd

    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    args = parser.parse_args(["--config", "lite", "--size", "480", "--device", "cpu", "--frames", "12", "--top-k", "4",
                              "--json"])
    assert cmd.run(args) == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r) >= {"config", "size", "device", "stages_ms", "fps", "peak_mem_mb", "guided_vs_dense"}
    assert r["config"] == "lite" and r["size"] == 480 and r["device"] == "cpu"
    # the network as the shipped weights are: the shipped file does not hold the detail module
    assert list(r["stages_ms"]) == [s for s in bench.STAGES if s != "detail"] and r["details"]["detail"] is False
    assert all(v > 0 for v in r["stages_ms"].values())
    assert r["fps"] > 0 and r["peak_mem_mb"] > 0 and r["guided_vs_dense"] > 0
    d = r["details"]
    assert d["input"] == "64x32" and d["bank_frames"] == 3 and d["parameters"] > 0
    assert not d["dense_extrapolated"]  # small enough to time the dense read fully
    assert d["memory_flat"] is True
    if d["heap_in_use_mb_after_10"] is not None:  # glibc: what the flatness check compares, printed too
        assert 0 < d["heap_in_use_mb_after_10"] and abs(d["heap_in_use_mb_after_n"] - d["heap_in_use_mb_after_10"]) < 16


def test_the_peak_is_never_below_a_reading_taken_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A QA pass: "peak memory 596.9 MB; ... after 12 597.2 MB": the kernel's high-water mark lags the resident set
    until memory is unmapped. The peak said is at least every reading taken."""
    monkeypatch.setitem(bench.SIZES, 480, (32, 64))
    monkeypatch.setattr(bench, "peak_memory_mb", lambda device: 1.0)  # a high-water mark that lags
    r = bench.run_bench(config="lite", size=480, frames=12, top_k=4)
    d = r["details"]
    assert r["peak_mem_mb"] >= d["memory_mb_after_n"] > 1.0 and d["peak_mem_mb_after_10"] >= d["memory_mb_after_10"]


def test_bench_times_the_detail_module_when_asked(monkeypatch, capsys) -> None:
    monkeypatch.setitem(bench.SIZES, 480, (32, 64))
    from vom_plugin.commands import bench as cmd

    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    args = parser.parse_args(["--device", "cpu", "--frames", "12", "--top-k", "4", "--detail", "--json"])
    assert cmd.run(args) == 0
    r = json.loads(capsys.readouterr().out)
    assert list(r["stages_ms"]) == list(bench.STAGES) and r["stages_ms"]["detail"] > 0 and r["details"]["detail"]
    assert r["details"]["parameters"] == 1613089  # lite with the module (1,598,952 without)


def test_bench_rejects_bad_sizes_and_frames() -> None:
    with pytest.raises(InputError, match="--size 720"):
        bench.run_bench(size=720)
    with pytest.raises(InputError, match="--frames 5"):
        bench.run_bench(frames=5)


def test_cache_bench_renders_through_vom_render(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """vom bench --cache: the demo shot resampled and lengthened, each render a `vom render` process; the
    re-render after the roto edit reads every frame's key features and read/CFAR weights from the cache.
    With --worker the same renders are also handed to a vom worker, the worker's CPU counted. A cache size cap of
    the caller's is not the bench's (QA: it evicted what was measured, and the bench reported misses)."""
    from vom_plugin.commands import bench as cmd

    monkeypatch.setenv("VOM_CACHE_MAX_GB", "0.000001")

    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    args = parser.parse_args(["--cache", "--model", "random", "--config", "lite", "--device", "cpu",
                              "--plate-size", "128x72", "--length", "5", "--repeat", "1", "--json", "--worker"])
    assert cmd.run(args) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["frames"] == 5 and r["plate_size"] == [128, 72] and r["model"] == "lite (random weights)"
    assert r["roto_changed_cache"]["keys_hit"] == 5 and r["roto_changed_cache"]["keys_miss"] == 0
    assert r["roto_changed_cache"]["affinity_hit"] == 5 and r["roto_changed_cache"]["steps_computed"] == 5
    # a render of the whole shot leaves no memory state: no render goes on after its passes' ends
    assert set(r["cache_mb_per_frame_by_kind"]) == {"keys", "alpha", "affinity", "digest"}  # vom:through's digests
    assert 0 < r["cache_mb_per_frame_without_states"] == r["cache_mb_per_frame"]
    assert all(r[f"{k}_wall_s"] > 0 and r[f"{k}_cpu_s"] > 0 for k in ("cold", "roto_changed", "start"))
    assert r["speedup"] > 0 and r["speedup_cpu"] > 0
    # a frame's share beyond the fixed cost of a process that computes nothing
    for k in ("cold", "roto_changed"):
        assert r[f"{k}_frame_s"] == round(max(r[f"{k}_wall_s"] - r["start_wall_s"], 0.0) / 5, 4)
    assert r["speedup_per_frame"] == round(r["cold_frame_s"] / max(r["roto_changed_frame_s"], 1e-9), 2)
    # and printed, for the process and for the worker
    from vom_plugin.engine.bench_cache import format_cache_bench

    text = format_cache_bench(r)
    # the size the network ran at, not the working size alone: a small plate is enlarged 2x at most (QA: "960")
    assert r["network_size"] == [256, 144] and f"working size {r['working_size']}: the network at 256x144" in text
    for runs in (r, r["worker"]):
        assert (f"cold {runs['cold_frame_s']:.3f} s, re-render {runs['roto_changed_frame_s']:.3f} s "
                f"({runs['speedup_per_frame']:.2f}x") in text
    # the OpenMP wait the renders inherited is stated: it moves re-render times by 10-40%
    import os

    assert r["openmp_wait"] in {f"{n}={os.environ[n]}" for n in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
                                if n in os.environ} | {"libgomp's default"}
    w = r["worker"]
    assert w["roto_changed_cache"] == r["roto_changed_cache"]  # the same work, done in the worker
    assert all(w[f"{k}_wall_s"] > 0 and w[f"{k}_cpu_s"] > 0 for k in ("cold", "roto_changed", "start"))
    # the worker's CPU is counted: a cold render costs more than the vom render process alone could spend
    # starting Python and relaying events (the nothing-to-compute render)
    assert w["cold_cpu_s"] > w["start_cpu_s"]


def test_cache_bench_says_a_refused_render_as_the_users_error() -> None:
    """QA: `vom bench --cache --device cuda` on a machine without CUDA: vom render refused it (exit 2), and the bench
    crashed with a traceback, "internal error (exit 1)". Now the render's own message, exit 2."""
    import torch

    from vom_plugin.engine.bench_cache import run_cache_bench

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the render is not refused")
    with pytest.raises(InputError, match="CUDA"):
        run_cache_bench(model="random", device="cuda", plate_size="160x90", length=2, repeat=1)


def test_cache_bench_rejects_bad_sizes() -> None:
    from vom_plugin.engine.bench_cache import parse_size

    assert parse_size("864x480") == (864, 480)
    for bad in ("864", "864x", "8x8", "axb"):
        with pytest.raises(InputError, match="--plate-size"):
            parse_size(bad)


def test_cache_bench_reads_a_model_path_from_this_folder_and_checks_it_first(tmp_path, monkeypatch) -> None:
    """A QA pass: --model m.safetensors was looked for beside the demo shot, and a bad one failed inside the first
    render (a RuntimeError traceback)."""
    from vom_plugin.engine.bench_cache import run_cache_bench

    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=rf"weights file '{tmp_path}/m\.safetensors' does not exist"):
        run_cache_bench(model="m.safetensors", plate_size="160x90", length=3, repeat=1)
    # and $SHOW in it, as `vom render --model` reads it (review: a quoted '$SHOW/...' was a folder named $SHOW)
    monkeypatch.setenv("QA_SHOW", str(tmp_path / "show"))
    with pytest.raises(InputError, match=rf"weights file '{tmp_path}/show/m\.safetensors' does not exist"):
        run_cache_bench(model="$QA_SHOW/m.safetensors", plate_size="160x90", length=3, repeat=1)
    with pytest.raises(InputError, match=r"--model '\$QA_NOPE/m\.safetensors': \$QA_NOPE is not set"):
        run_cache_bench(model="$QA_NOPE/m.safetensors", plate_size="160x90", length=3, repeat=1)


def test_objects_bench_renders_n_objects_and_n_single_renders(capsys: pytest.CaptureFixture[str]) -> None:
    """vom bench --objects 2: one `vom render` of two objects, two of one; the render of two computes each
    frame's key features once."""
    from vom_plugin.commands import bench as cmd

    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    args = parser.parse_args(["--objects", "2", "--model", "random", "--config", "lite", "--device", "cpu",
                              "--plate-size", "128x72", "--length", "4", "--repeat", "1", "--json"])
    assert cmd.run(args) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["objects"] == 2 and r["frames"] == 4
    assert r["together_cache"]["keys_miss"] == 4 and r["together_cache"]["steps_computed"] == 8
    assert all(r[f"{k}_wall_s"] > 0 for k in ("together", "one", "separate"))
    assert r["separate_wall_s"] > r["one_wall_s"]
    assert r["together_vs_one_wall_s"] == round(r["together_wall_s"] / r["one_wall_s"], 2)
    with pytest.raises(InputError, match="--objects 0"):
        cmd.run(parser.parse_args(["--objects", "0"]))


def test_flatness_compares_what_malloc_has_handed_out() -> None:
    cpu, cuda = bench.torch.device("cpu"), bench.torch.device("cuda")
    # the resident set grew by what the heap keeps free (its high-water mark reached late): flat
    assert bench._flat(cpu, 584.0, 712.0, (283.0, 105.0), (283.5, 222.0), 582.0, 712.0)
    # the bytes in use grew: a leak or a growing bank, whatever the resident set says
    assert not bench._flat(cpu, 584.0, 590.0, (283.0, 220.0), (340.0, 160.0), 584.0, 590.0)
    # malloc flat but the resident set grew by more than the heap keeps: Python's own objects, say
    assert not bench._flat(cpu, 584.0, 712.0, (283.0, 105.0), (283.5, 110.0), 582.0, 712.0)
    # without glibc's statistics the peak resident set decides, within 10%
    assert bench._flat(cpu, 584.0, 640.0) and not bench._flat(cpu, 584.0, 700.0)
    assert bench._flat(cuda, 100.0, 100.5) and not bench._flat(cuda, 100.0, 102.0)


def test_heap_statistics_count_a_block_held_and_not_one_freed() -> None:
    import numpy as np

    from vom_plugin.engine.allocator import heap_mb

    before = heap_mb()
    if before is None:
        pytest.skip("no glibc mallinfo2 here: the bench falls back to the resident set")
    held = np.ones(64 << 20, np.uint8)
    during = heap_mb()
    del held
    after = heap_mb()
    assert during is not None and after is not None
    assert during[0] - before[0] >= 63.0
    assert after[0] - before[0] < 8.0


def test_the_text_says_what_the_flatness_check_compared(monkeypatch, capsys) -> None:
    monkeypatch.setitem(bench.SIZES, 480, (32, 64))
    from vom_plugin.commands import bench as cmd

    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    assert cmd.run(parser.parse_args(["--size", "480", "--device", "cpu", "--frames", "12", "--top-k", "4"])) == 0
    lines = capsys.readouterr().out.splitlines()
    memory = next(line for line in lines if line.strip().startswith("peak memory"))
    assert "after 10 frames" in memory and "after 12" in memory and "(flat)" in memory
    from vom_plugin.engine.allocator import heap_mb

    if heap_mb() is not None:
        assert any(line.strip().startswith("malloc: in use") and "the flatness check: the first" in line
                   for line in lines)


def test_the_bench_shot_file_keeps_a_dollar_in_its_paths(tmp_path) -> None:
    """A review: the cache bench wrote its shot file's paths raw, and `vom render` read a $ in them as a variable."""
    from vom_plugin.engine.bench_cache import make_bench_shot
    from vom_plugin.engine.shot import Shot
    from vom_plugin.locations import demo_dir

    folder = tmp_path / "b$HOME"
    shot_file, _ = make_bench_shot(Shot.from_yaml(demo_dir() / "shot.yaml"), folder, plate_size=(160, 90), length=3)
    made = Shot.from_yaml(shot_file)
    assert made.plate == str(folder / "plate" / "p.####.exr") and made.keyframes == {1: folder / "roto.0001.exr"}
