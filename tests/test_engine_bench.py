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
    assert list(r["stages_ms"]) == list(bench.STAGES)
    assert all(v > 0 for v in r["stages_ms"].values())
    assert r["fps"] > 0 and r["peak_mem_mb"] > 0 and r["guided_vs_dense"] > 0
    d = r["details"]
    assert d["input"] == "64x32" and d["bank_frames"] == 3 and d["parameters"] > 0
    assert not d["dense_extrapolated"]  # small enough to time the dense read fully


def test_bench_rejects_bad_sizes_and_frames() -> None:
    with pytest.raises(InputError, match="--size 720"):
        bench.run_bench(size=720)
    with pytest.raises(InputError, match="--frames 5"):
        bench.run_bench(frames=5)
