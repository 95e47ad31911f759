"""render(): determinism, farm chunks, resume after SIGKILL, key cache on a roto change, bad input.

A tiny synthetic shot (8 frames, 160x96, a bright disc moving over a gradient) and a model saved from
build_model("lite") with a fixed seed: random weights are enough for these properties.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
import yaml

from vom_plugin.cli import main
from vom_plugin.engine.runner import render
from vom_plugin.engine.shot import Shot
from vom_plugin.errors import CancelledError, InputError
from vom_plugin.io.sequence import format_frames

W, H, N = 192, 64, 8  # long side 192 -> working 128x43 (padded 128x48): the guided lift runs


def _write(path: Path, pixels: np.ndarray, channels: list[str]) -> None:
    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], len(channels), oiio.HALF)
    spec.channelnames = channels
    spec.attribute("compression", "zip")
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec)
    assert out.write_image(pixels.astype(np.float32))
    out.close()


def _disc(frame: int) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    cx, cy = 40 + 8 * frame, 32 + 2 * np.sin(frame)
    return np.clip(18.5 - np.hypot(xx - cx, yy - cy), 0, 1)  # soft 1-px edge


def make_shot_files(root: Path) -> dict[str, Path]:
    (root / "plate").mkdir(parents=True)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    bg = np.stack([0.1 + 0.3 * xx / W, 0.2 + 0.2 * yy / H, 0.15 * np.ones_like(xx)], axis=2)
    fg = np.array([0.9, 0.6, 0.3], np.float32)
    for f in range(1, N + 1):
        a = _disc(f)[..., None]
        _write(root / "plate" / f"p.{f:04d}.exr", fg * a + bg * (1 - a), ["R", "G", "B"])
    (root / "roto").mkdir()
    _write(root / "roto" / "r.0001.exr", (_disc(1) > 0.5).astype(np.float32)[..., None], ["A"])
    wide = np.zeros((H, W), np.float32)
    wide[10:60, 20:70] = 1
    _write(root / "roto" / "wide.0001.exr", wide[..., None], ["A"])
    _write(root / "roto" / f"r.{N:04d}.exr", (_disc(N) > 0.5).astype(np.float32)[..., None], ["A"])
    return {"plate": root / "plate" / "p.####.exr", "roto": root / "roto" / "r.0001.exr"}


def make_shot_dir(root: Path) -> Path:
    """``make_shot_files`` plus random ``lite`` weights (seed 0) in ``model.safetensors``: the shot that the
    render, worker and attack tests share."""
    import torch

    from vom_plugin.engine.weights import save_weights
    from vom_plugin.model import build_model

    make_shot_files(root)
    torch.manual_seed(0)
    save_weights(build_model("lite"), root / "model.safetensors")
    return root


@pytest.fixture(scope="module")
def shot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shot_dir(tmp_path_factory.mktemp("shot"))


def shot(root: Path, tag: str, **kw: object) -> Shot:
    fields = {"plate": str(root / "plate" / "p.####.exr"), "keyframes": {1: str(root / "roto" / "r.0001.exr")},
              "out": str(root / tag / "a.####.exr"), "model": str(root / "model.safetensors"), "device": "cpu",
              "working_size": 128, "cache": str(root / f"cache_{tag}"), **kw}
    return Shot(**fields)


def read_alpha(path: Path) -> np.ndarray:
    buf = oiio.ImageBuf(str(path))
    assert buf.spec().format == oiio.HALF and list(buf.spec().channelnames) == ["A"]
    return buf.get_pixels(oiio.FLOAT)[..., 0]


def outputs(folder: Path) -> dict[str, np.ndarray]:
    """The frames written (not a hidden temporary that a SIGKILL left half-written)."""
    return {p.name: read_alpha(p) for p in sorted(folder.glob("[!.]*.exr"))}


@pytest.fixture(scope="module")
def reference(shot_dir: Path) -> dict[str, np.ndarray]:
    """One uninterrupted render of frames 1-N, fresh cache: what every other route must reproduce."""
    events: list[dict] = []
    r = render(shot(shot_dir, "ref"), progress=events.append)
    assert r.frames == list(range(1, N + 1))
    assert r.cache["steps_computed"] == N and r.cache["keys_miss"] == N
    assert [e["event"] for e in events if e["event"] != "step"] == ["start"] + ["frame"] * N + ["done"]
    frames = [e for e in events if e["event"] == "frame"]
    assert events[-1]["frames_written"] == N and frames[2]["done"] == 3 and frames[2]["total"] == N
    assert [e["steps_done"] for e in events if e["event"] == "step"] == list(range(1, N + 1))
    out = outputs(shot_dir / "ref")
    assert len(out) == N and all(a.shape == (H, W) for a in out.values())
    return out


def test_render_output_and_determinism(shot_dir: Path, reference: dict[str, np.ndarray]) -> None:
    a1 = reference["a.0001.exr"]
    roto = (_disc(1) > 0.5)
    assert 0.0 <= a1.min() and a1.max() <= 1.0 and np.ptp(a1) > 0  # a soft matte, not a constant
    assert np.isfinite(a1).all() and a1.shape == roto.shape
    # the same shot again, fresh cache and folder: identical pixels
    render(shot(shot_dir, "again"))
    again = outputs(shot_dir / "again")
    assert again.keys() == reference.keys()
    assert all(np.array_equal(again[k], reference[k]) for k in reference)
    # and again with the warm cache: nothing recomputed, still identical
    r = render(shot(shot_dir, "again"))
    assert r.cache["steps_computed"] == 0 and r.cache["steps_cached"] == N
    assert all(np.array_equal(read_alpha(p), reference[p.name]) for p in r.paths)


def test_a_render_leaves_the_hosts_seeded_torch_random_numbers_alone(shot_dir: Path) -> None:
    """QA: a TD's process seeded torch for its own work, and a vom render in it changed the numbers drawn after it:
    the network's layers were built with random initial weights (then replaced by the file's) from the global RNG."""
    import torch

    from vom_plugin.engine.models import LoadedModels

    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    render(shot(shot_dir, "rng"), models=LoadedModels())  # its own models: the weights are loaded in this render
    assert torch.equal(torch.rand(3), expected)


def test_chunks_equal_one_render(shot_dir: Path, reference: dict[str, np.ndarray]) -> None:
    r1 = render(shot(shot_dir, "chunks", frames="1-4"))
    r2 = render(shot(shot_dir, "chunks", frames="5-8"))
    assert r1.frames == [1, 2, 3, 4] and r2.frames == [5, 6, 7, 8]
    # the second chunk resumed from the memory state left at frame 4: it computed only its own frames
    assert r2.cache["steps_computed"] == 4 and r2.cache["keys_miss"] == 4
    got = outputs(shot_dir / "chunks")
    assert got.keys() == reference.keys()
    assert all(np.array_equal(got[k], reference[k]) for k in reference)


def test_memory_state_saved_only_where_a_later_render_goes_on(shot_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("VOM_STATE_INTERVAL_S", "1e9")  # no timed mid-pass state: only the pass ends decide
    render(shot(shot_dir, "ends", frames="1-4"))
    states = sorted((shot_dir / "cache_ends").rglob("*.state.safetensors"))
    assert len(states) == 1  # the pass was cut at frame 4: the next chunk goes on from its state
    r = render(shot(shot_dir, "ends"))
    assert r.cache["steps_cached"] == 4 and r.cache["steps_computed"] == N - 4  # it did
    # the pass ran to the timeline's end: nothing can go on from there, so no state is written (it held up
    # the end of every render), and the one at frame 4 goes too: every prediction of the pass is stored
    assert sorted((shot_dir / "cache_ends").rglob("*.state.safetensors")) == []
    r = render(shot(shot_dir, "ends"))
    assert r.cache["steps_cached"] == N and r.cache["steps_computed"] == 0  # all read back without a state


def test_the_last_farm_chunk_of_a_shot_file_keeps_no_memory_state_a_whole_render_does(shot_dir: Path, tmp_path: Path,
                                                                                         monkeypatch) -> None:
    """A farm job of a shot file whose frames lie inside the plate's (handles): the task ending the shot kept a 76 MB
    state there that no render reads (QA). A chunk of it (--frames, as the farm's tasks run) keeps one for the next
    chunk, and the last chunk none; the file rendered whole keeps its end's, which a widened range goes on from."""
    monkeypatch.setenv("VOM_STATE_INTERVAL_S", "1e9")  # no timed mid-pass state: only the pass ends decide
    fields = shot(shot_dir, "handles", frames="1-4", cache=str(tmp_path / "c")).to_dict()
    shot_file = tmp_path / "shot.yaml"
    shot_file.write_text(yaml.safe_dump({k: v for k, v in fields.items() if v is not None}))
    chunk = Shot.from_yaml(shot_file, frames="1-2", cache=str(tmp_path / "c2"))  # `vom render shot.yaml --frames`
    assert chunk.whole_frames == [1, 2, 3, 4]
    render(chunk)
    assert len(list((tmp_path / "c2").rglob("*.state.safetensors"))) == 1
    r = render(Shot.from_yaml(shot_file, frames="3-4", cache=str(tmp_path / "c2")))
    assert r.cache["steps_computed"] == 2  # went on from the first chunk's state
    assert not list((tmp_path / "c2").rglob("*.state.safetensors"))
    # the shot file rendered whole (a host's, whose Frames the artist may widen next: review) keeps its end's state
    assert Shot.from_yaml(shot_file).whole_frames is None
    r = render(shot_file)
    assert r.frames == [1, 2, 3, 4] and len(list((tmp_path / "c").rglob("*.state.safetensors"))) == 1
    fields["frames"] = "1-8"
    shot_file.write_text(yaml.safe_dump({k: v for k, v in fields.items() if v is not None}))
    assert render(shot_file).cache["steps_computed"] == N - 4  # widened: went on from frame 4
    # a shot file with no frames: the plate's, whose end the pass reaches
    del fields["frames"]
    shot_file.write_text(yaml.safe_dump({k: v for k, v in fields.items() if v is not None}))
    assert Shot.from_yaml(shot_file, frames="1-2").whole_frames is None


def test_a_completed_pass_leaves_no_memory_state(shot_dir: Path, monkeypatch) -> None:
    """States saved on the way (every frame here; every 10 s in a render) only serve a render that stops short:
    a 24-frame demo left a 76 MB state beside 47 MB of entries, 4.9 MB a frame where 1.95 was announced."""
    monkeypatch.setenv("VOM_STATE_INTERVAL_S", "0")
    r = render(shot(shot_dir, "states", frames="1-6"))  # cut short: its state at frame 6 stays for the next
    assert r.cache["steps_computed"] == 6
    assert len(list((shot_dir / "cache_states").rglob("*.state.safetensors"))) == 1
    r = render(shot(shot_dir, "states"))
    assert r.cache["steps_cached"] == 6 and r.cache["steps_computed"] == N - 6
    assert list((shot_dir / "cache_states").rglob("*.state.safetensors")) == []


def test_roto_change_reuses_key_features(shot_dir: Path, reference: dict[str, np.ndarray]) -> None:
    shutil.copytree(shot_dir / "cache_ref", shot_dir / "cache_roto")  # the reference render's cache
    inodes = {p: p.stat().st_ino for p in (shot_dir / "cache_roto").rglob("*.affinity.safetensors")}
    assert len(inodes) == N
    r = render(shot(shot_dir, "roto", keyframes={1: str(shot_dir / "roto" / "wide.0001.exr")}))
    assert r.cache["keys_hit"] == N and r.cache["keys_miss"] == 0  # the key encoder was skipped
    # what was read from the cache is not written again (a write would be a new file: atomic replace)
    assert {p: p.stat().st_ino for p in (shot_dir / "cache_roto").rglob("*.affinity.safetensors")} == inodes
    assert r.cache["steps_computed"] == N  # every memory step depends on the roto: recomputed ...
    assert r.cache["affinity_hit"] == N and r.cache["affinity_miss"] == 0  # ... from cached read/CFAR weights
    assert not np.array_equal(read_alpha(r.paths[0]), reference["a.0001.exr"])
    # and the fast path changes nothing: a cold render of the new roto (empty cache) gives the same pixels
    cold = render(shot(shot_dir, "roto_cold", keyframes={1: str(shot_dir / "roto" / "wide.0001.exr")}))
    assert cold.cache["affinity_hit"] == 0 and cold.cache["affinity_miss"] == N
    assert all(np.array_equal(read_alpha(a), read_alpha(b)) for a, b in zip(r.paths, cold.paths, strict=True))


def test_predictions_of_other_arithmetic_are_not_reused(shot_dir: Path, reference: dict[str, np.ndarray],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Predictions and states cached by code whose arithmetic differs (PREDICTION_ARITHMETIC) are misses: the
    steps are computed again, from the cached key features and affinities, which that change leaves alone."""
    import vom_plugin.engine.resume as resume

    shutil.copytree(shot_dir / "cache_ref", shot_dir / "cache_arith")  # the reference render's cache
    monkeypatch.setattr(resume, "PREDICTION_ARITHMETIC", resume.PREDICTION_ARITHMETIC - 1)
    r = render(shot(shot_dir, "arith"))
    assert r.cache["steps_cached"] == 0 and r.cache["steps_computed"] == N
    assert r.cache["keys_hit"] == N and r.cache["affinity_hit"] == N
    assert all(np.array_equal(read_alpha(p), reference[p.name]) for p in r.paths)


def test_cached_entries_are_read_ahead_on_the_reader_thread(shot_dir: Path, reference: dict[str, np.ndarray],
                                                            monkeypatch) -> None:
    import threading

    from vom_plugin.engine.cache import ShotCache

    reads: list[tuple[str, str]] = []

    def spying(name: str):
        real = getattr(ShotCache, name)

        def spy(self, *a):
            reads.append((name, threading.current_thread().name))
            return real(self, *a)
        return spy

    for name in ("get_keys", "get_affinity"):
        monkeypatch.setattr(ShotCache, name, spying(name))
    shutil.copytree(shot_dir / "cache_ref", shot_dir / "cache_ahead")
    r = render(shot(shot_dir, "ahead", keyframes={1: str(shot_dir / "roto" / "wide.0001.exr")}))
    assert r.cache["keys_hit"] == N and r.cache["affinity_hit"] == N
    # each entry read once, and not by the thread that runs the network
    assert sorted(n for n, _ in reads) == ["get_affinity"] * N + ["get_keys"] * N
    assert {t.split("_")[0] for _, t in reads} == {"vom-cache-reader"}
    roto = render(shot(shot_dir, "roto_again", keyframes={1: str(shot_dir / "roto" / "wide.0001.exr")},
                       cache=str(shot_dir / "cache_none")))
    assert all(np.array_equal(read_alpha(a), read_alpha(b)) for a, b in zip(r.paths, roto.paths, strict=True))


def test_plate_frames_are_read_ahead_and_a_damaged_one_stops_the_render_there(shot_dir: Path, tmp_path: Path,
                                                                             reference: dict[str, np.ndarray],
                                                                             monkeypatch) -> None:
    import threading

    from vom_plugin import io as vio

    readers: list[str] = []
    real = vio.read_plate

    def spy(path, *a, **k):
        readers.append(threading.current_thread().name)
        return real(path, *a, **k)

    from vom_plugin.engine import frames as fr

    workers: list[str] = []
    real_working = fr.image_to_working

    def spy_working(display, geo):
        workers.append(threading.current_thread().name)
        return real_working(display, geo)

    monkeypatch.setattr(vio, "read_plate", spy)
    monkeypatch.setattr(fr, "image_to_working", spy_working)
    r = render(shot(shot_dir, "plates_ahead", cache=None))
    assert r.frames == list(range(1, N + 1))
    assert all(np.array_equal(read_alpha(p), reference[p.name]) for p in r.paths)  # the same pixels
    assert len(readers) == N  # each frame decoded once ...
    assert sum(t.startswith("vom-plate-reader") for t in readers) == N - 1  # ... all but the first ahead of use
    # and made into the network's input there too (padded, clipped), once per frame
    assert len(workers) == N and sum(t.startswith("vom-plate-reader") for t in workers) == N - 1
    # a frame that cannot be decoded: the error names it, when the render gets there, after complete frames
    root = tmp_path / "damaged"
    shutil.copytree(shot_dir / "plate", root / "plate")
    bad = root / "plate" / "p.0006.exr"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size * 2 // 3])
    with pytest.raises(InputError, match=r"p\.0006\.exr is damaged or truncated: .*; found while rendering: 5 of "
                       rf"{N} frames were written \(1-5, complete;"):
        render(shot(shot_dir, "damaged", plate=str(root / "plate" / "p.####.exr"), out=str(root / "out" / "a.####.exr"),
                    cache=None))
    assert sorted(p.name for p in (root / "out").iterdir()) == [f"a.{f:04d}.exr" for f in range(1, 6)]
    # a render on twos names its frames as --frames reads them (they were listed as 1, 3, 5: no run)
    with pytest.raises(InputError, match=r"found while rendering: 3 of 4 frames were written \(1-5x2, "
                       "complete;"):
        render(shot(shot_dir, "damaged_twos", plate=str(root / "plate" / "p.####.exr"), frames="1-7x2",
                    out=str(root / "twos" / "a.####.exr"), cache=None))
    assert sorted(p.name for p in (root / "twos").iterdir()) == ["a.0001.exr", "a.0003.exr", "a.0005.exr"]


def test_two_keyframes_blend_and_keyframes_come_from_their_own_roto(shot_dir: Path,
                                                                    reference: dict[str, np.ndarray]) -> None:
    kf = {1: str(shot_dir / "roto" / "r.0001.exr"), N: str(shot_dir / "roto" / f"r.{N:04d}.exr")}
    shutil.copytree(shot_dir / "cache_ref", shot_dir / "cache_two")  # warm keys: only the passes run
    r = render(shot(shot_dir, "two", keyframes=kf))
    assert r.frames == list(range(1, N + 1))
    # 1 -> N forward and N -> 1 backward both cover 2..N-1; frames 1 and N come from their own roto. Each
    # pass also reads the other's roto (Propagator.anchor), so none of the reference's steps is reused:
    # computed are the forward pass 1..N-1, the backward pass N..2 and the keyframe N, on cached keys
    assert r.cache["steps_cached"] == 0 and r.cache["steps_computed"] == 2 * N - 1 and r.cache["keys_miss"] == 0
    two = outputs(shot_dir / "two")
    assert np.array_equal(two["a.0001.exr"], reference["a.0001.exr"])  # the keyframe is read before the anchor
    assert not np.array_equal(two["a.0004.exr"], reference["a.0004.exr"])  # blended with the pass from N
    alone = render(shot(shot_dir, "alone", frames=str(N), keyframes={N: kf[N]}))
    assert np.array_equal(read_alpha(alone.paths[0]), read_alpha(r.paths[-1]))
    # the same render again: every step from the cache, the same pixels
    again = render(shot(shot_dir, "two_again", keyframes=kf, cache=str(shot_dir / "cache_two")))
    assert again.cache["steps_computed"] == 0 and again.cache["steps_cached"] >= N
    assert all(np.array_equal(a, b) for a, b in zip(outputs(shot_dir / "two_again").values(), two.values(),
                                                      strict=True))


def test_a_span_between_two_keyframes_waits_off_the_heap_with_the_same_pixels(
        shot_dir: Path, reference: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch,
        pending_adds: list[tuple[object, int]]) -> None:
    """The first pass's predictions of a span wait for the second's: held as arrays, a 1000-frame span held 1-2 GB.
    They wait compressed, past a budget in a temporary file; a frame of one pass only (every frame of a
    one-keyframe shot, a keyframe's own) is never stored. Same pixels in memory, in the file, cold and cached."""
    from vom_plugin.engine import pending

    added = pending_adds
    render(shot(shot_dir, "one_kf", cache=None))
    assert added == []
    assert all(np.array_equal(a, b) for a, b in zip(outputs(shot_dir / "one_kf").values(), reference.values(),
                                                      strict=True))
    kf = {1: str(shot_dir / "roto" / "r.0001.exr"), N: str(shot_dir / "roto" / f"r.{N:04d}.exr")}
    render(shot(shot_dir, "span_ram", keyframes=kf, cache=None))
    assert sorted(added) == [(None, f) for f in range(2, N)]  # the forward pass's, waiting for the backward one
    monkeypatch.setattr(pending, "RAW_BUDGET", 0)
    monkeypatch.setattr(pending, "RAM_BUDGET", 0)
    for tag, cache in (("span_file", None), ("span_cold", "cache_span"), ("span_cached", "cache_span")):
        added.clear()
        r = render(shot(shot_dir, tag, keyframes=kf, cache=None if cache is None else str(shot_dir / cache)))
        assert len(added) == N - 2
        if cache is not None:
            assert r.cache["steps_computed"] == (0 if tag == "span_cached" else 2 * N - 1)
        assert all(np.array_equal(a, b) for a, b in zip(outputs(shot_dir / tag).values(),
                                                          outputs(shot_dir / "span_ram").values(), strict=True))
        assert not any("TMPDIR" in w for w in r.warnings)
    # a temporary folder that cannot take them (full): held in memory, the same pixels, and said
    import tempfile

    def full(*_args: object, **_kw: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "TemporaryFile", full)
    r = render(shot(shot_dir, "span_full", keyframes=kf, cache=None))
    assert [w for w in r.warnings if "TMPDIR" in w] == [
        f"the temporary folder could not take the predictions waiting for another pass or object "
        f"({tempfile.gettempdir()}: No space left on device): they were held in memory; point TMPDIR at a folder "
        f"with room"]
    assert all(np.array_equal(a, b) for a, b in zip(outputs(shot_dir / "span_full").values(),
                                                      outputs(shot_dir / "span_ram").values(), strict=True))


def test_a_cached_re_render_holds_a_few_plate_frames_whatever_waits_for_another_pass(
        shot_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A QA pass: a two-keyframe re-render (or a resume) read ahead the plate frames of the forward pass's cached
    steps, whose frames wait for the backward pass: every plate frame of the span was held in memory (a 400-frame
    span at 128x72: 376 -> 537 MB). Objects read back one after the other held the first's frames likewise.
    Frames are read ahead only where they complete now; the pixels are the same."""
    from vom_plugin.engine import file_source

    held: list[int] = []
    real = file_source.FileSource.read_ahead

    def counting(self, frames):  # type: ignore[no-untyped-def]
        real(self, frames)
        held.append(len(self._ahead))

    kf = {1: str(shot_dir / "roto" / "r.0001.exr"), N: str(shot_dir / "roto" / f"r.{N:04d}.exr")}
    objects = {"hero": kf, "crate": {1: str(shot_dir / "roto" / "wide.0001.exr")}}
    cache = str(tmp_path / "c")
    for tag, fields in (("two", {"keyframes": kf}), ("objects", {"keyframes": None, "objects": objects})):
        first = render(shot(shot_dir, f"{tag}_cold", cache=cache, out=str(tmp_path / tag / "a.####.exr"), **fields))
        monkeypatch.setattr(file_source.FileSource, "read_ahead", counting)
        held.clear()
        again = render(shot(shot_dir, f"{tag}_again", cache=cache, out=str(tmp_path / f"{tag}2" / "a.####.exr"),
                            **fields))
        monkeypatch.undo()
        assert again.cache["steps_computed"] == 0 and again.cache["steps_cached"] > 0
        assert max(held) <= 3, (tag, held)  # READ_AHEAD + the frame in hand: it was every frame of the pass
        for a, b in zip(first.files, again.files, strict=True):
            pixels = [oiio.ImageBuf(str(x)).get_pixels(oiio.FLOAT) for x in (a, b)]
            assert np.array_equal(*pixels), (a, b)


def test_steps_a_memory_state_spares_are_out_of_the_work_not_read_back(shot_dir: Path, tmp_path: Path) -> None:
    """A QA pass: frames 5-8 after a render of 1-4 resumed from its memory state, yet its bar said "4 of 8 steps read
    back from the cache" (and started at 50%) where the done event said 0 cached, 4 computed."""
    cache = str(tmp_path / "c")
    render(shot(shot_dir, "head", frames="1-4", cache=cache, out=str(tmp_path / "h" / "a.####.exr")))
    events: list[dict] = []
    r = render(shot(shot_dir, "tail", frames="5-8", cache=cache, out=str(tmp_path / "t" / "a.####.exr")),
               progress=events.append)
    steps = [e for e in events if e["event"] in ("step", "frame")]
    assert r.cache["steps_cached"] == 0 and r.cache["steps_computed"] == 4
    assert steps[-1]["steps_total"] == steps[-1]["steps_done"] == 4 and steps[-1]["steps_cached"] == 0, steps[-1]
    assert all(e["steps_done"] <= e["steps_total"] for e in steps)
    # the 4 steps spared said in one event, not one each (QA: a chunk far into a long shot sent 450 before any work)
    said = [(e["event"], e["steps_done"], e["steps_total"]) for e in steps]
    assert said[:2] == [("step", 0, 4), ("step", 1, 4)], said  # it said 0 of 7, 0 of 6, 0 of 5, then 0 of 4


def test_chunks_of_a_pass_leave_one_memory_state_on_disk_not_one_each(shot_dir: Path, tmp_path: Path) -> None:
    """A QA pass: each farm chunk of a pass saved its end state and left its predecessor's, which it had gone on
    from (1 -> 2 -> 3 states, 76 MB each at 960x540, until a chunk reached the pass's end)."""
    cache = tmp_path / "c"
    for i, frames in enumerate(("1-2", "3-4", "5-6"), 1):
        r = render(shot(shot_dir, f"chunk{i}", frames=frames, cache=str(cache), out=str(tmp_path / "o" / "a.####.exr")))
        assert r.cache["steps_computed"] == 2, r.cache  # each went on from the state before it
        assert len(list(cache.rglob("*.state.safetensors"))) == 1, i
    render(shot(shot_dir, "chunk4", frames="7-8", cache=str(cache), out=str(tmp_path / "o" / "a.####.exr")))
    assert not list(cache.rglob("*.state.safetensors"))  # the pass is complete: no state is needed
    whole = render(shot(shot_dir, "whole", cache=str(tmp_path / "c2"), out=str(tmp_path / "w" / "a.####.exr")))
    for p in whole.files:
        assert np.array_equal(read_alpha(p), read_alpha(tmp_path / "o" / p.name))


def test_a_changed_far_roto_recomputes_the_pass_that_reads_it(shot_dir: Path, tmp_path: Path) -> None:
    """The forward pass from 1 reads roto N: when only roto N changes, the pass is recomputed (not served from
    the cache of the old roto), and the render equals a cold one with the new roto."""
    first = str(shot_dir / "roto" / "r.0001.exr")
    edited = tmp_path / f"r.{N:04d}.exr"
    roto = read_alpha(shot_dir / "roto" / f"r.{N:04d}.exr")
    roto[:, : W // 2] = 0  # half of the object cut away
    _write(edited, roto[..., None], ["A"])
    kf_old = {1: first, N: str(shot_dir / "roto" / f"r.{N:04d}.exr")}
    kf_new = {1: first, N: str(edited)}
    cache = str(tmp_path / "cache")
    render(shot(shot_dir, "far_old", keyframes=kf_old, cache=cache))
    warm = render(shot(shot_dir, "far_new", keyframes=kf_new, cache=cache))
    cold = render(shot(shot_dir, "far_cold", keyframes=kf_new, cache=str(tmp_path / "cold_cache")))
    assert warm.cache["steps_cached"] == 0 and warm.cache["steps_computed"] == cold.cache["steps_computed"]
    assert warm.cache["keys_miss"] == 0 and warm.cache["affinity_hit"] > 0  # only the roto changed: matches reused
    new, fresh = outputs(shot_dir / "far_new"), outputs(shot_dir / "far_cold")
    assert all(np.array_equal(new[k], fresh[k]) for k in fresh)
    assert not np.array_equal(new["a.0002.exr"], outputs(shot_dir / "far_old")["a.0002.exr"])


def _run_until(cmd: list[str], env: dict[str, str], frames: int, sig: int, *, ignore_sigint: bool = False
               ) -> tuple[int, int, str]:
    """Start ``cmd`` (with SIGINT ignored, as `nohup` or a shell's `&` start it, if ``ignore_sigint``), send ``sig``
    once ``frames`` frame events were printed; (frames seen, exit code, stderr)."""
    ignored = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=ignored)
    seen = 0
    deadline = time.monotonic() + 120
    assert proc.stdout is not None and proc.stderr is not None
    for line in proc.stdout:
        if json.loads(line).get("event") == "frame":
            seen += 1
        if seen == frames or time.monotonic() > deadline:
            break
    proc.send_signal(sig)
    proc.wait(timeout=120)
    return seen, proc.returncode, proc.stderr.read()


def test_vom_render_started_ignoring_sigint_renders_on_through_one(shot_dir: Path, tmp_path: Path) -> None:
    """A QA pass: `vom render ... &` in a script (SIGINT ignored from the start) stopped at a Ctrl-C, exit 130."""
    import yaml

    yaml_path = tmp_path / "shot.yaml"
    yaml_path.write_text(yaml.safe_dump(shot(shot_dir, "nohup", out=str(tmp_path / "o" / "a.####.exr")).to_dict()))
    cmd = [sys.executable, "-m", "vom_plugin.cli", "render", str(yaml_path), "--progress", "json", "--no-worker"]
    seen, code, err = _run_until(cmd, dict(os.environ), 1, signal.SIGINT, ignore_sigint=True)
    assert seen == 1 and code == 0, err
    assert len(list((tmp_path / "o").glob("a.*.exr"))) == N


def test_cancel_then_sigkill_then_resume(shot_dir: Path, reference: dict[str, np.ndarray], tmp_path: Path) -> None:
    import yaml

    s = shot(shot_dir, "killed")
    yaml_path = tmp_path / "shot.yaml"
    yaml_path.write_text(yaml.safe_dump(s.to_dict()))
    cmd = [sys.executable, "-m", "vom_plugin.cli", "render", str(yaml_path), "--progress", "json"]
    # same thread count as this process (CPU float sums depend on it); a memory state after every frame
    env = {**os.environ, "VOM_STATE_INTERVAL_S": "0"}
    out_dir = shot_dir / "killed"

    # SIGTERM: stops after the frame in hand, exit 130, only complete files
    seen, rc, err = _run_until(cmd, env, 2, signal.SIGTERM)
    assert seen == 2 and rc == 130, err
    assert "stopped by SIGTERM" in err
    # SIGKILL in the middle of the next run: no chance to clean up
    seen, rc, _ = _run_until(cmd, env, 4, signal.SIGKILL)
    assert seen == 4 and rc == -signal.SIGKILL
    # SIGKILL cannot be cleaned up after: the frame the output thread was writing may stay as vom's hidden
    # temporary (never under the frame's own name), and the render's claim on its frames (the next render removes
    # it: nobody holds its lock); nothing else may be there
    claims = [p for p in out_dir.iterdir() if re.fullmatch(r"\.vom-writing\.[\w.-]+\.\d+\.[0-9a-f]{8}\.json", p.name)]
    assert len(claims) == 1, claims
    temps = [p for p in out_dir.iterdir()
             if (not p.name.endswith(".exr") or p.name.startswith(".")) and p not in claims]
    assert all(re.fullmatch(r"\.a\.\d{4}\.exr\.[\w-]+~\d+-[0-9a-f]{8}\.tmp\.exr", p.name) for p in temps), temps
    assert len(temps) <= 1, temps
    assert 4 <= len(list(out_dir.glob("*.exr"))) < N
    # and one a killed writer left for a frame this resume does not write again (it exists already)
    from vom_plugin import atomic
    dead_pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                                  text=True).stdout)
    (out_dir / f".a.0001.exr.{atomic._HOST}~{dead_pid}-0123abcd.tmp.exr").write_bytes(b"\x76\x2f\x31\x01half a frame")

    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["event"] == "done" and summary["frames_written"] == N
    # resumed, not restarted: the state flushed on SIGTERM at least (cache writes run on a writer thread,
    # so what SIGKILL interrupted may lag the frames already written by a step or two)
    assert summary["cache"]["steps_cached"] >= 2 and summary["cache"]["steps_computed"] <= N - 2
    got = outputs(out_dir)
    assert got.keys() == reference.keys()
    assert all(np.array_equal(got[k], reference[k]) for k in reference)
    # the killed processes' temporaries were removed by the render's sweep of its output folder
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"a.{f:04d}.exr" for f in range(1, N + 1))


@pytest.mark.parametrize("extra,needle", [
    (["--frames", "1-9"], "missing frame 9"),
    (["--roto", "{root}/roto/r.0001.exr@20"], "frame 20, which is not a frame of the plate"),
    (["--model", "{root}/nope.safetensors"], "nope.safetensors"),
    (["--roto", "{root}/roto/missing.0001.exr"], "missing.0001.exr"),
    (["--out", "{root}/out/a.####.png"], "expected an .exr file pattern"),
    (["--out", "{root}/plate/p.0001.exr/out/a.####.exr"], "out .*: output folder .*p.0001.exr/out cannot be created"),
])
def test_bad_input_exits_2_before_any_work(shot_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           extra: list[str], needle: str) -> None:
    args = {"--plate": str(shot_dir / "plate" / "p.####.exr"), "--roto": str(shot_dir / "roto" / "r.0001.exr"),
            "--out": str(tmp_path / "out" / "a.####.exr"), "--model": str(shot_dir / "model.safetensors"),
            "--cache": str(tmp_path / "cache"), "--working-size": "128", "--device": "cpu", "--progress": "none"}
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        args[flag] = value.format(root=shot_dir)
    rc = main(["render", *[x for kv in args.items() for x in kv]])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert re.search(needle, err), err
    assert not list((tmp_path / "out").glob("*.exr")) if (tmp_path / "out").exists() else True
    assert not list((tmp_path / "cache").rglob("*.safetensors"))


def test_cli_json_progress_and_yaml_override(shot_dir: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    s = shot(shot_dir, "cli")
    f = tmp_path / "s.yaml"
    import yaml

    f.write_text(yaml.safe_dump({**s.to_dict(), "out": str(tmp_path / "o" / "m.%04d.exr")}))
    shutil.copytree(shot_dir / "cache_ref", s.cache, dirs_exist_ok=True)  # warm: the reference's cache
    assert main(["render", str(f), "--frames", "3-4", "--progress", "json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    lines = [x for x in lines if x["event"] != "step"]
    assert [x["event"] for x in lines] == ["start", "frame", "frame", "done"]
    assert [x["frame"] for x in lines[1:3]] == [3, 4] and lines[2]["done"] == 2 and lines[2]["total"] == 2
    assert set(lines[1]["timings"]) <= {"read", "keys", "propagate", "cache", "upsample", "write"}
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["m.0003.exr", "m.0004.exr"]


def test_the_cache_keeps_each_tensor_once_in_8_bits_or_half_precision(shot_dir: Path,
                                                                       reference: dict[str, np.ndarray]) -> None:
    """What a render leaves per frame: the backbone's features (not the keys projected from them), the
    top-k matches and CFAR's weights at 1/16 (not at 1/8 or 1/4), the prediction; features, the 1/16 read's
    weights and CFAR's as 8-bit codes, the other floats in half precision, indices in small integers."""
    import torch

    from vom_plugin.engine.cache_entry import decode

    shot_folder = next(p for p in (shot_dir / "cache_ref").iterdir() if p.is_dir())
    entries = {p: decode(f"{p.parent.name}/{p.name}", p.read_bytes()) for p in shot_folder.rglob("*.safetensors")}
    kinds: dict[str, list[dict]] = {}
    for p, t in entries.items():
        kinds.setdefault("keys" if p.parent.name == "keys" else p.name.split(".")[1], []).append(t)
    assert len(kinds["keys"]) == N and len(kinds["alpha"]) == N and len(kinds["affinity"]) == N
    for t in kinds["keys"]:  # 8-bit codes, a float32 scale and offset per channel
        assert set(t) == {f"{n}{s}" for n in ("f4", "f8", "f16") for s in ("", "_scale", "_lo")}
        assert all(t[n].dtype == torch.uint8 and t[n + "_scale"].shape == (1, t[n].shape[1], 1, 1)
                   for n in ("f4", "f8", "f16"))
    assert all(set(t) == {"alpha"} and t["alpha"].dtype == torch.float16 for t in kinds["alpha"])
    for t in kinds["affinity"]:
        # CFAR's weights at 1/8 are recomputed
        assert set(t) == {"idx16", "w16", "w16_scale", "sel8", "w8", "sel4", "w4", "cfar16", "cfar16_scale",
                          "cfar4", "cfar4_scale"}
        coded = ("w16", "cfar16", "cfar4")
        assert all(t[n].dtype == torch.uint8 and t[n + "_scale"].dtype == torch.float32 for n in coded)
        assert t["w8"].dtype == torch.float16 and t["w4"].dtype == torch.float16
        assert all(v.dtype in (torch.uint8, torch.int16) for k, v in t.items()
                   if not v.is_floating_point() and k not in coded)
    # a frame's entries together are smaller than its features in half precision alone (the keys entry of
    # cache layout 2)
    per_frame = sum(p.stat().st_size for p in entries if ".state." not in p.name) / N
    features = sum(kinds["keys"][0][n].numel() for n in ("f4", "f8", "f16"))
    assert per_frame < features * 2


def _float_plate_with_overscan(shot_dir: Path, folder: Path, frames: int) -> Path:
    """The shot's first ``frames`` frames as float EXRs with 6 px of magenta overscan and a hot pixel (1e5)
    inside the picture: what a compositor hands over from a lens-distorted, unclamped render."""
    folder.mkdir()
    for f in range(1, frames + 1):
        rgb = oiio.ImageBuf(str(shot_dir / "plate" / f"p.{f:04d}.exr")).get_pixels(oiio.FLOAT)
        big = np.zeros((H + 12, W + 12, 3), np.float32)
        big[...] = (1.0, 0.0, 1.0)
        big[6:-6, 6:-6] = rgb
        big[6 + 5, 6 + 7] = (1e5, 7e4, 1.0)
        spec = oiio.ImageSpec(W + 12, H + 12, 3, oiio.FLOAT)
        spec.x, spec.y = -6, -6
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = 0, 0, W, H
        spec.channelnames = ("R", "G", "B")
        out = oiio.ImageOutput.create(str(folder / f"p.{f:04d}.exr"))
        assert out.open(str(folder / f"p.{f:04d}.exr"), spec) and out.write_image(big)
        out.close()
    return folder / "p.####.exr"


def test_rgba_output_carries_the_plates_own_overscan_and_float_rgb(shot_dir: Path, tmp_path: Path) -> None:
    """--output rgba: the RGB is the plate's, overscan included (it was the picture's edge pixels smeared
    outwards), and a float plate's RGB stays float (in half, 1e5 became Inf)."""
    plate = _float_plate_with_overscan(shot_dir, tmp_path / "plate", 2)
    r = render(shot(shot_dir, "rgba", plate=str(plate), frames="1-2", output="rgba",
                    out=str(tmp_path / "o" / "a.####.exr")))
    assert r.frames == [1, 2]
    src = oiio.ImageBuf(str(tmp_path / "plate" / "p.0002.exr"))
    got = oiio.ImageBuf(str(tmp_path / "o" / "a.0002.exr"))
    spec = got.spec()
    assert (spec.x, spec.y, spec.width, spec.height) == (-6, -6, W + 12, H + 12)
    assert [str(t) for t in spec.channelformats] == ["float", "float", "float", "half"]
    rgba = got.get_pixels(oiio.FLOAT)
    np.testing.assert_array_equal(rgba[..., :3], src.get_pixels(oiio.FLOAT))  # overscan and hot pixel as they were
    assert np.isfinite(rgba).all()
    np.testing.assert_array_equal(rgba[0, 0, :3], [1.0, 0.0, 1.0])
    assert rgba[11, 13, 0] == 1e5
    # the file says its RGB is not premultiplied by its A (an EXR's colour is, unless told)
    assert spec.getattribute("vom:output") == "rgba" and spec.getattribute("vom:premultiplied") == 0
    render(shot(shot_dir, "premult", plate=str(plate), frames="1", output="rgba-premult",
                out=str(tmp_path / "p" / "a.####.exr")))
    premult = oiio.ImageBuf(str(tmp_path / "p" / "a.0001.exr")).spec()
    assert premult.getattribute("vom:output") == "rgba-premult" and premult.getattribute("vom:premultiplied") == 1
    render(shot(shot_dir, "alpha", plate=str(plate), frames="1", out=str(tmp_path / "a" / "a.####.exr")))
    alpha = oiio.ImageBuf(str(tmp_path / "a" / "a.0001.exr")).spec()  # a matte alone has no RGB to speak of
    assert alpha.getattribute("vom:output") is None and alpha.getattribute("vom:premultiplied") is None


@pytest.mark.parametrize("bad", ["size", "channel"])
def test_a_bad_later_plate_frame_is_refused_before_any_frame_is_written(shot_dir: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str],
                                                                        bad: str) -> None:
    """Frame 3 of another size, or holding only depth: exit 2 naming it, and no output at all (frames 1-2 were
    written before the render met it)."""
    folder = tmp_path / "plate"
    shutil.copytree(shot_dir / "plate", folder)
    third = folder / "p.0003.exr"
    if bad == "size":
        _write(third, np.zeros((H // 2, W // 2, 3), np.float32), ["R", "G", "B"])
        needle = (rf"plate frame 3 \({re.escape(str(third))}\) is {W // 2}x{H // 2}, and frame 1 "
                  rf"\({re.escape(str(folder / 'p.0001.exr'))}\), the first this render reads, is {W}x{H}: a "
                  r"plate's frames share one size \(a slate among them\? leave it out of the frames rendered")
    else:
        _write(third, np.zeros((H, W, 1), np.float32), ["Z"])
        needle = rf"plate {re.escape(str(third))}: its only channel 'Z' is not a picture"
    rc = main(["render", "--plate", str(folder / "p.####.exr"), "--roto", str(shot_dir / "roto" / "r.0001.exr"),
               "--frames", "1-4", "--out", str(tmp_path / "out" / "a.####.exr"), "--model",
               str(shot_dir / "model.safetensors"), "--cache", str(tmp_path / "cache"), "--working-size", "128",
               "--device", "cpu", "--progress", "none", "--no-worker"])
    err = capsys.readouterr().err
    assert rc == 2 and re.search(needle, err), err
    assert not (tmp_path / "out").exists()


def test_a_desqueezed_roto_of_an_anamorphic_plate_renders(shot_dir: Path, tmp_path: Path) -> None:
    """A 2:1 anamorphic plate with its roto drawn over the desqueezed picture (twice as wide): read_roto
    accepts it given the plate's pixel aspect, which the render now passes."""
    folder = tmp_path / "plate"
    folder.mkdir()
    for f in (1, 2):
        buf = oiio.ImageBuf(str(shot_dir / "plate" / f"p.{f:04d}.exr"))
        buf.specmod().attribute("PixelAspectRatio", 2.0)
        assert buf.write(str(folder / f"p.{f:04d}.exr"))
    wide = oiio.ImageBufAlgo.resize(oiio.ImageBuf(str(shot_dir / "roto" / "r.0001.exr")),
                                    roi=oiio.ROI(0, 2 * W, 0, H, 0, 1, 0, 1))
    assert wide.write(str(tmp_path / "wide.0001.exr"))
    r = render(shot(shot_dir, "ana", plate=str(folder / "p.####.exr"), frames="1-2",
                    keyframes={1: str(tmp_path / "wide.0001.exr")}, out=str(tmp_path / "o" / "a.####.exr")))
    assert r.frames == [1, 2]
    assert read_alpha(tmp_path / "o" / "a.0001.exr").max() > 0.5


def test_a_hole_the_propagation_crosses_is_refused(shot_dir: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Frames 6-7 asked for, keyframe 1, frames 3-4 missing on disk: the pass would jump from 2 to 5 (another
    matte, exit 0, no word). A plate on twos (every other frame) has no hole."""
    folder = tmp_path / "plate"
    shutil.copytree(shot_dir / "plate", folder)
    for f in (3, 4):
        (folder / f"p.{f:04d}.exr").unlink()
    args = ["--roto", str(shot_dir / "roto" / "r.0001.exr"), "--model", str(shot_dir / "model.safetensors"),
            "--working-size", "128", "--device", "cpu", "--progress", "none", "--no-worker"]
    rc = main(["render", "--plate", str(folder / "p.####.exr"), "--frames", "6-7", "--out",
               str(tmp_path / "out" / "a.####.exr"), "--cache", str(tmp_path / "c"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and "missing frames 3-4, which the propagation reads on its way between the keyframes and the " \
                       "requested frames (frames 1-7;" in err, err
    assert not (tmp_path / "out").exists()
    # a requested frame missing too: both in one message (the hole was said only once frame 8 was delivered, QA)
    (folder / "p.0008.exr").unlink()
    rc = main(["render", "--plate", str(folder / "p.####.exr"), "--frames", "6-8", "--out",
               str(tmp_path / "out" / "a.####.exr"), "--cache", str(tmp_path / "c"), *args])
    err = capsys.readouterr().err
    said = (f"missing frame 8 (1 of the 3 requested, e.g. {folder / 'p.0008.exr'}); and frames 3-4, which the "
             "propagation reads on its way between the keyframes and the requested frames")
    assert rc == 2 and said in err, err
    assert not (tmp_path / "out").exists()
    # the requested frame alone, missing (a farm task of one frame): the holes on the way are said with it (review)
    rc = main(["render", "--plate", str(folder / "p.####.exr"), "--frames", "8", "--out",
               str(tmp_path / "out" / "a.####.exr"), "--cache", str(tmp_path / "c"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and "missing frame 8 (1 of the 1 requested" in err and "; and frames 3-4, which the propagation" \
        in err, err
    shutil.copy(shot_dir / "plate" / "p.0008.exr", folder / "p.0008.exr")
    # a second keyframe at 5: frames 6-7 come from it alone, the hole is never read (they were refused, the message
    # saying the propagation reads it, QA); frame 2, between the keyframes, is blended from both passes: refused
    roto = str(shot_dir / "roto" / "r.0001.exr")
    two = ["render", "--plate", str(folder / "p.####.exr"), "--roto", f"{roto}@5", "--cache", str(tmp_path / "c"),
           *args]
    rc = main([*two, "--frames", "6-7", "--out", str(tmp_path / "out" / "a.####.exr")])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").glob("*.exr")) == ["a.0006.exr", "a.0007.exr"]
    rc = main([*two, "--frames", "2", "--out", str(tmp_path / "out4" / "a.####.exr")])
    err = capsys.readouterr().err
    assert rc == 2 and "missing frames 3-4, which the propagation reads" in err and "(frames 1-5;" in err, err
    assert not (tmp_path / "out4").exists()
    twos = tmp_path / "twos"
    twos.mkdir()
    for f in (1, 3, 5):
        shutil.copy(shot_dir / "plate" / f"p.{f:04d}.exr", twos / f"p.{f:04d}.exr")
    rc = main(["render", "--plate", str(twos / "p.####.exr"), "--frames", "5", "--out",
               str(tmp_path / "out2" / "a.####.exr"), "--cache", str(tmp_path / "c2"), *args])
    assert rc == 0, capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out2").glob("*.exr")] == ["a.0005.exr"]
    # two frames two apart: a frame missing between them (a plate on twos takes three frames to tell)
    (twos / "p.0005.exr").unlink()
    for frames in ([], ["--frames", "3"]):
        rc = main(["render", "--plate", str(twos / "p.####.exr"), *frames, "--out",
                   str(tmp_path / "out3" / "a.####.exr"), "--cache", str(tmp_path / "c3"), *args])
        err = capsys.readouterr().err
        assert rc == 2 and "missing frame 2, which the propagation" in err, err
    assert not (tmp_path / "out3").exists()


def _render_with_pixel_aspect(shot_dir: Path, tmp_path: Path, aspect: float, names: list[str] | None
                              ) -> tuple[Path, int]:
    """A copy of the test plate whose frames ``names`` (None: all) say pixel aspect ``aspect``, rendered (frames
    1-4): (its folder, the exit code)."""
    folder = tmp_path / "plate"
    shutil.copytree(shot_dir / "plate", folder)
    for p in sorted(folder.glob("p.*.exr")) if names is None else [folder / n for n in names]:
        buf = oiio.ImageBuf(str(p))
        buf.specmod().attribute("PixelAspectRatio", aspect)
        assert buf.write(str(p.with_suffix(".new.exr")))
        p.with_suffix(".new.exr").replace(p)
    return folder, main(["render", "--plate", str(folder / "p.####.exr"), "--roto",
                         str(shot_dir / "roto" / "r.0001.exr"), "--frames", "1-4", "--out",
                         str(tmp_path / "out" / "a.####.exr"), "--cache", str(tmp_path / "c"), "--model",
                         str(shot_dir / "model.safetensors"), "--working-size", "128", "--device", "cpu",
                         "--progress", "none", "--no-worker"])


def test_a_plate_whose_pixel_aspect_changes_is_refused(shot_dir: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Frame 3 anamorphic (2.0) in a square-pixel plate: rendered, its matte was written at aspect 2, exit 0."""
    folder, rc = _render_with_pixel_aspect(shot_dir, tmp_path, 2.0, ["p.0003.exr"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert (f"plate frame 3 ({folder / 'p.0003.exr'}) has pixel aspect 2, and frame 1 ({folder / 'p.0001.exr'}), "
            "the first this render reads, 1: a plate's frames share one pixel aspect") in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("aspect", [1000.0, 0.001])
def test_a_pixel_aspect_no_picture_has_is_said_as_such(shot_dir: Path, tmp_path: Path, aspect: float,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """QA: a plate whose header said pixel aspect 1000 was refused as a roto "less than one pixel of the network's
    960x1": true of the desqueezed picture, and no help to whoever has to fix the header."""
    folder, rc = _render_with_pixel_aspect(shot_dir, tmp_path, aspect, None)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert (f"plate {folder / 'p.0001.exr'}: pixel aspect {aspect:g} in its header (PixelAspectRatio) is no picture's; "
            f"vom desqueezes a plate by it for the network (anamorphic plates are 1.33-2), and takes 0.25-4: fix the "
            f"header (oiiotool IN --attrib PixelAspectRatio 1.0 -o OUT)") in err, err
    assert not (tmp_path / "out").exists()


def test_every_file_on_disk_is_announced_when_a_damaged_frame_stops_the_render(shot_dir: Path, tmp_path: Path) -> None:
    """A later frame cut short (its header intact, so only reading it finds out): the render stops with exit 2,
    and each frame that did reach the disk has had its progress event first (the last one never had)."""
    folder = tmp_path / "plate"
    shutil.copytree(shot_dir / "plate", folder)
    data = (folder / "p.0005.exr").read_bytes()
    (folder / "p.0005.exr").write_bytes(data[: len(data) // 2])
    events: list[dict] = []
    with pytest.raises(InputError, match=r"p\.0005\.exr") as err:
        render(shot(shot_dir, "damaged", plate=str(folder / "p.####.exr"), out=str(tmp_path / "o" / "a.####.exr")),
               progress=events.append)
    on_disk = sorted(p.name for p in (tmp_path / "o").glob("[!.]*.exr"))
    announced = sorted(Path(e["path"]).name for e in events if e["event"] == "frame")
    assert on_disk and announced == on_disk
    got = err.value.render_result  # a TD's pipeline registers what is on disk without parsing the message (QA)
    assert [p.name for p in got.files] == on_disk and got.frames == [int(n.split(".")[1]) for n in on_disk]


def test_a_plate_folder_moved_away_mid_render_says_which_frames_were_written(shot_dir: Path, tmp_path: Path) -> None:
    """QA: the plate's folder renamed while the render ran: "vom render: error: .../p.0003.exr: No such file or
    directory", exit 2, not a word of the frames already on disk (every other error found while rendering says them)."""
    folder = tmp_path / "plate"
    shutil.copytree(shot_dir / "plate", folder)

    def move_away(e: dict) -> None:
        if e["event"] == "frame" and e["done"] == 1:
            folder.rename(tmp_path / "plate_gone")

    said = r"p\.000\d\.exr.*found while rendering: \d+ of \d+ frames were written"
    with pytest.raises(InputError, match=said) as err:
        render(shot(shot_dir, "moved", plate=str(folder / "p.####.exr"), out=str(tmp_path / "o" / "a.####.exr")),
               progress=move_away)
    on_disk = sorted(p.name for p in (tmp_path / "o").glob("[!.]*.exr"))
    assert on_disk and [p.name for p in err.value.render_result.files] == on_disk
    # moved before any frame is written: bad input too (review: a worker said it an internal error, exit 1)
    (tmp_path / "plate_gone").rename(folder)

    def move_at_start(e: dict) -> None:
        if e["event"] == "start":
            folder.rename(tmp_path / "plate_gone")

    with pytest.raises(InputError, match=r"p\.000\d\.exr: No such file"):
        render(shot(shot_dir, "moved0", plate=str(folder / "p.####.exr"), out=str(tmp_path / "o0" / "a.####.exr"),
                    cache=str(tmp_path / "c0")), progress=move_at_start)


def test_a_plate_frame_changed_while_prepare_reads_it_is_refused(shot_dir: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Review: the frame prepare() decodes first was fingerprinted for the cache only at the first pass; delivered
    again meanwhile, features of its old pixels were cached under the new file's address. Its fingerprint is taken
    as it is read now, and a file that changes during that read is refused."""
    import vom_plugin.engine.prepare as prepare

    folder = tmp_path / "plate"
    shutil.copytree(shot_dir / "plate", folder)
    real = prepare.read_plate

    def delivered_meanwhile(path: Path, *a: object, **k: object) -> object:
        got = real(path, *a, **k)
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # written again as it was read
        return got

    monkeypatch.setattr(prepare, "read_plate", delivered_meanwhile)
    with pytest.raises(InputError, match=r"plate frame 1 \(.*p\.0001\.exr\) changed while this render read it"):
        render(shot(shot_dir, "changing", plate=str(folder / "p.####.exr"), out=str(tmp_path / "o" / "a.####.exr")))
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a stream every write to fails: ENOSPC)")
def test_a_log_on_a_full_disk_neither_stops_a_render_nor_turns_bad_input_into_an_internal_error(
        shot_dir: Path, tmp_path: Path) -> None:
    """QA: stderr appended to a log on a full disk: with the bar the render stopped at its first line (0 frames), with
    --progress none it exited 1 after writing every frame, and bad input exited 1 as an internal error."""
    base = [sys.executable, "-m", "vom_plugin.cli", "render", "--plate", str(shot_dir / "plate" / "p.####.exr"),
            "--roto", str(shot_dir / "roto" / "r.0001.exr") + "@1", "--model", str(shot_dir / "model.safetensors"),
            "--working-size", "128", "--device", "cpu", "--no-worker"]
    with open("/dev/full", "w") as full:
        for progress in ("bar", "none"):
            out = tmp_path / progress
            done = subprocess.run([*base, "--out", str(out / "a.####.exr"), "--cache", str(tmp_path / "c"),
                                   "--progress", progress], stderr=full, timeout=300)
            assert done.returncode == 0 and len(list(out.glob("a.*.exr"))) == N, progress
        bad = subprocess.run([*base, "--out", str(tmp_path / "b" / "a.####.exr"), "--frames", "9-1"], stderr=full,
                             timeout=300)
        assert bad.returncode == 2


def test_a_stopped_render_says_what_it_wrote_in_frame_order(shot_dir: Path, tmp_path: Path) -> None:
    """A QA pass: only a progress callback's exception carried the render's result; a Stop's CancelledError (and
    SIGINT's) named the frames written in its message alone, and ``files`` listed them in the order the passes
    finished them (3, 4, 5, 2 between two keyframes) where ``frames`` and ``paths`` were sorted."""
    from vom_plugin.engine.runner import Stop
    from vom_plugin.errors import CancelledError

    stop = Stop()

    def on_event(e: dict) -> None:
        if e["event"] == "frame" and e["done"] == N - 3:
            stop.set()

    kf = {1: str(shot_dir / "roto" / "r.0001.exr"), N: str(shot_dir / "roto" / f"r.{N:04d}.exr")}
    s = shot(shot_dir, "stop_result", keyframes=None, out=str(tmp_path / "o" / "{object}.####.exr"),
             objects={"hero": kf, "dog": kf})
    with pytest.raises(CancelledError) as err:
        render(s, progress=on_event, stop=stop)
    assert err.value.by and str(err.value).startswith(f"stopped by {err.value.by} after ")  # what stopped it, said
    got = err.value.render_result
    frames = sorted(int(p.name.split(".")[1]) for p in (tmp_path / "o").glob("hero.*.exr"))
    assert got.frames == frames and len(frames) < N and frames != list(range(1, len(frames) + 1))  # 1, N, N-1...
    # the message names them too, not only how many (QA: "6 of 12" left a farm wrapper to guess which to requeue)
    from vom_plugin.io.sequence import written_list

    assert f"after {len(frames)} of {N} frames{written_list(frames)}; " in str(err.value), str(err.value)
    assert [p.name for p in got.files] == [f"{o}.{f:04d}.exr" for f in frames for o in ("hero", "dog")]
    whole = render(shot(shot_dir, "whole_result", keyframes=None, out=str(tmp_path / "w" / "{object}.####.exr"),
                        objects={"hero": kf, "dog": kf}))
    assert [p.name for p in whole.files] == [f"{o}.{f:04d}.exr" for f in range(1, N + 1) for o in ("hero", "dog")]


def test_a_stop_after_the_last_frame_is_written_ends_a_complete_render(shot_dir: Path, tmp_path: Path) -> None:
    """QA: a SIGTERM on the last frame's event gave "stopped by SIGTERM after 3 of 3 frames; ... the next render
    resumes from the cache", exit 130, for a render with every frame written: a host took it for cancelled."""
    from vom_plugin.engine.runner import Stop

    stop = Stop()

    def on_event(e: dict) -> None:  # the last step computed: its frame is written before the render stops
        if e["event"] == "step" and e["steps_done"] == e["steps_total"]:
            stop.set()

    r = render(shot(shot_dir, "stop_last", frames=[1, 2, 3]), progress=on_event, stop=stop)
    assert r.frames == [1, 2, 3] and stop.is_set()
    assert sorted(p.name for p in (shot_dir / "stop_last").glob("*.exr")) == [f"a.000{f}.exr" for f in (1, 2, 3)]


def test_farm_chunks_go_on_from_one_another_under_a_cap_the_shot_does_not_fit(
        shot_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: under a VOM_CACHE_MAX_GB the shot did not fit, the cap deleted each chunk's end state first (the newest
    entry) and each farm chunk propagated from the keyframe again (100, 100, 300, 400, 500 steps). A shot's memory
    states go last, and a chunk goes on from one though the predictions of the frames before it went."""
    whole = render(shot(shot_dir, "cap_whole", cache=None))
    s = shot(shot_dir, "cap", out=str(tmp_path / "o" / "a.####.exr"), cache=str(tmp_path / "c"), frames="1-4")
    first = render(s)
    assert first.cache["steps_computed"] == 4
    sizes = {p.name: p.stat().st_size for p in (tmp_path / "c").rglob("*.safetensors")}
    state = [n for n in sizes if n.endswith(".state.safetensors")]
    assert len(state) == 1  # the chunk's end state
    # a cap that holds the state and not much more: the predictions go, newest first
    cap = sizes[state[0]] + min(v for n, v in sizes.items() if n not in state) // 2
    monkeypatch.setenv("VOM_CACHE_MAX_GB", repr(cap / 2**30))
    from vom_plugin.engine.cache import ShotCache  # the cap applies as the next render evicts: evicted here

    ShotCache(tmp_path / "c", s.plate).evict()
    left = {p.name for p in (tmp_path / "c").rglob("*.safetensors")}
    assert state[0] in left and len(left) < len(sizes)
    second = render(shot(shot_dir, "cap", out=str(tmp_path / "o" / "a.####.exr"), cache=str(tmp_path / "c"),
                         frames="5-8"))
    assert second.cache["steps_computed"] == 4, second.cache  # from the state at 4, not from the keyframe
    got = {p.name: read_alpha(p) for p in sorted((tmp_path / "o").glob("a.*.exr"))}
    assert sorted(got) == sorted(p.name for p in whole.paths)
    assert all(np.array_equal(got[p.name], read_alpha(p)) for p in whole.paths)
    # chunks of 2 under that cap, each render evicting as it writes: each goes on from the one before (review: the
    # eviction took the newest state, then the render dropped the older one: every other chunk began at frame 1)
    for chunk in ("1-2", "3-4", "5-6", "7-8"):
        r = render(shot(shot_dir, "cap", out=str(tmp_path / "o2" / "a.####.exr"), cache=str(tmp_path / "c2"),
                        frames=chunk))
        assert r.cache["steps_computed"] == 2, (chunk, r.cache)
        assert len(list((tmp_path / "c2").rglob("*.state.safetensors"))) <= 1
    got = {p.name: read_alpha(p) for p in sorted((tmp_path / "o2").glob("a.*.exr"))}
    assert all(np.array_equal(got[p.name], read_alpha(p)) for p in whole.paths)


def test_a_render_whose_eviction_takes_another_shots_recent_entries_says_so(
        shot_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: two farm renders sharing a cache too small for both shots: each deleted the other's entries, and neither
    was told (their next chunks computed from the keyframe)."""
    other = tmp_path / "sh020"
    shutil.copytree(shot_dir / "plate", other)
    cache = str(tmp_path / "c")
    a = render(shot(shot_dir, "evict_a", plate=str(other / "p.####.exr"), cache=cache))
    assert not [w for w in a.warnings if "other shot" in w]
    held = sum(p.stat().st_size for p in (tmp_path / "c").rglob("*.safetensors"))
    monkeypatch.setenv("VOM_CACHE_MAX_GB", repr(held * 1.2 / 2**30))  # one shot fits, two do not
    b = render(shot(shot_dir, "evict_b", cache=cache))
    said = [w for w in b.warnings if "other shot" in w]
    assert len(said) == 1 and said[0].startswith("cache: to stay under its size cap"), b.warnings
    assert str(other / "p.####.exr") in said[0] and "raise the cap" in said[0], said


def test_a_stop_sent_on_a_progress_event_leaves_a_state_to_resume_from(shot_dir: Path, tmp_path: Path) -> None:
    """A host that stops the render when it sees frame 3's event (after that step's state check): the state of
    step 3 is saved all the same, and the next render resumes there instead of at the keyframe."""
    import signal as sig

    from vom_plugin.engine.runner import Stop
    from vom_plugin.errors import CancelledError

    stop = Stop()

    def on_event(e: dict) -> None:
        if e["event"] == "frame" and e["done"] == 3:
            stop.set(sig.SIGINT)

    s = shot(shot_dir, "stopped", out=str(tmp_path / "o" / "a.####.exr"), cache=str(tmp_path / "c"))
    with pytest.raises(CancelledError):
        render(s, progress=on_event, stop=stop)
    assert list((tmp_path / "c").rglob("*.state.safetensors"))
    r = render(s)
    assert r.cache["steps_cached"] >= 3 and r.cache["steps_computed"] <= N - 3, r.cache


def test_a_progress_callback_that_raises_stops_the_render_as_a_stop_does(shot_dir: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A QA pass: a callback that raised at frame 3's event left frame 4 on disk, announced nowhere, and the next
    render computed all its steps again (no state was saved on that way out). Now it stops as a Stop does: the
    frame in hand finished, a state saved, then its exception raised with a note of every frame written."""
    monkeypatch.setenv("VOM_STATE_INTERVAL_S", "1e9")  # no timed state: only the stop's
    announced: list[str] = []

    def fails(e: dict) -> None:
        if e["event"] == "frame":
            announced.append(Path(e["path"]).name)
            if e["done"] == 3:
                raise ValueError("the host's database is down")

    s = shot(shot_dir, "cb", out=str(tmp_path / "o" / "a.####.exr"), cache=str(tmp_path / "c"))
    with pytest.raises(ValueError, match="the host's database is down") as err:
        render(s, progress=fails)
    on_disk = sorted(p.name for p in (tmp_path / "o").glob("[!.]*.exr"))
    written = sorted(p.name for p in err.value.render_result.paths)
    assert on_disk == written and set(announced) <= set(on_disk) and len(on_disk) < N
    frames = sorted(err.value.render_result.frames)
    assert err.value.__notes__ == [f"vom: the render stopped after the progress callback raised: {len(frames)} of "
                                   f"{N} frames written ({format_frames(frames, sep=',')}, each complete); the next "
                                   "render resumes from the cache"]
    r = render(s)
    assert r.cache["steps_cached"] >= 3 and r.cache["steps_computed"] <= N - 3, r.cache
    whole = shot(shot_dir, "cb_whole", out=str(tmp_path / "w" / "a.####.exr"), cache=str(tmp_path / "c2"))
    render(whole)
    got, want = outputs(tmp_path / "o"), outputs(tmp_path / "w")
    assert sorted(got) == sorted(want) and all(np.array_equal(got[k], want[k]) for k in want)
    # on twos: the frames listed as --frames reads them
    with pytest.raises(ValueError, match="the host's database is down") as err:
        render(shot(shot_dir, "cb2", out=str(tmp_path / "o2" / "a.####.exr"), frames="1-7x2", cache=None),
               progress=fails)
    frames = sorted(err.value.render_result.frames)
    assert frames[:3] == [1, 3, 5]
    assert f"{len(frames)} of 4 frames written ({frames[0]}-{frames[-1]}x2, each complete)" in err.value.__notes__[0]


def test_a_callback_that_raises_at_the_start_leaves_no_output_folder(shot_dir: Path, tmp_path: Path) -> None:
    """A QA pass of the API: a host's callback that refused the render at its start event left the output folders
    the render had made, empty; an existing folder stays, with its files."""
    def refuses(e: dict) -> None:
        if e["event"] == "start":
            raise RuntimeError("the host says no")

    with pytest.raises(RuntimeError, match="the host says no"):
        render(shot(shot_dir, "start", out=str(tmp_path / "new" / "sub" / "a.####.exr"), cache=str(tmp_path / "c")),
               progress=refuses)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError, match="the host says no"):
        render(shot(shot_dir, "start", out=str(tmp_path / "kept" / "a.####.exr"), cache=str(tmp_path / "c")),
               progress=refuses)
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["notes.txt"]


def test_a_stopped_render_without_the_cache_does_not_promise_a_resume(shot_dir: Path, tmp_path: Path) -> None:
    """A QA pass: with the cache off (its folder is a file: a warning, an uncached render), a stop said "the next
    render resumes from the cache"; and a progress callback that raised at the closing "done" event was reported
    as a render that stopped, frames to resume, when every frame had been written."""
    from vom_plugin.engine.runner import Stop
    from vom_plugin.errors import CancelledError

    stop = Stop()

    def on_event(e: dict) -> None:
        if e["event"] == "frame" and e["done"] == 2:
            stop.set()

    no_cache = tmp_path / "a_file"
    no_cache.write_text("not a folder")
    s = shot(shot_dir, "nocache", out=str(tmp_path / "o" / "a.####.exr"), cache=str(no_cache))
    events: list[dict] = []
    with pytest.raises(CancelledError) as e:
        render(s, progress=lambda ev: (events.append(ev), on_event(ev)), stop=stop)
    assert "resumes" not in str(e.value) and "computes every frame again" in str(e.value), str(e.value)
    assert events[0]["event"] == "start" and events[0]["cache"] is None  # it named a folder under the file (QA)

    def fails_at_done(e: dict) -> None:
        if e["event"] == "done":
            raise RuntimeError("the host's log is full")

    with pytest.raises(RuntimeError, match="log is full") as err:
        render(shot(shot_dir, "done_raises", out=str(tmp_path / "d" / "a.####.exr")), progress=fails_at_done)
    note = err.value.__notes__[-1]
    assert "the render was complete" in note and f"{N} of {N} frames written" in note and "resume" not in note, note
    assert len(err.value.render_result.frames) == N

    def fails_at_the_last_frame(e: dict) -> None:  # after the render's last stop check (review)
        if e["event"] == "frame" and e["done"] == N:
            raise RuntimeError("the host's log is full")

    with pytest.raises(RuntimeError, match="log is full") as err:
        render(shot(shot_dir, "last_raises", out=str(tmp_path / "l" / "a.####.exr")), progress=fails_at_the_last_frame)
    note = err.value.__notes__[-1]
    assert note.startswith("vom: the progress callback raised at the last frame's event; the render was complete: "
                           f"{N} of {N} frames written"), note


def test_a_stop_under_a_cap_that_deleted_the_shots_entries_says_so(shot_dir: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A QA pass: under a cache cap smaller than the shot's entries, a stopped render promised "the next render
    resumes from the cache", which then computed every frame again."""
    from vom_plugin.engine.runner import Stop
    from vom_plugin.errors import CancelledError

    monkeypatch.setenv("VOM_CACHE_MAX_GB", str(4096 / 2**30))
    stop = Stop()

    def on_event(e: dict) -> None:
        if e["event"] == "frame" and e["done"] == 3:
            stop.set()

    with pytest.raises(CancelledError) as e:
        render(shot(shot_dir, "capped", out=str(tmp_path / "o" / "a.####.exr"), cache=str(tmp_path / "c")),
               progress=on_event, stop=stop)
    assert str(e.value).endswith("the next render resumes from what the cache kept: its size cap (3.81e-06 GiB, "
                                 "VOM_CACHE_MAX_GB) deleted or did not take some of this shot's entries"), str(e.value)


def test_a_sigint_the_process_ignores_does_not_stop_the_render(shot_dir: Path, tmp_path: Path) -> None:
    """A QA pass: a render started with SIGINT ignored (`nohup`, a shell's `&`, a wrapper's trap) stopped at the
    Ctrl-C meant for the shell, exit 130 with part of the shot. It stays ignored; SIGTERM still stops."""
    import signal as sig

    from vom_plugin.errors import CancelledError

    def raises(signum: int) -> Callable[[dict], None]:
        def on_event(e: dict) -> None:
            if e["event"] == "frame" and e["done"] == 2:
                sig.raise_signal(signum)
        return on_event

    old = sig.signal(sig.SIGINT, sig.SIG_IGN)
    terms: list[int] = []
    old_term = sig.signal(sig.SIGTERM, lambda signum, _f: terms.append(signum))  # a host's (pytest's ends the process)
    try:
        r = render(shot(shot_dir, "ign", out=str(tmp_path / "o" / "a.####.exr")), progress=raises(sig.SIGINT))
        assert len(r.frames) == N and sig.getsignal(sig.SIGINT) is sig.SIG_IGN
        with pytest.raises(CancelledError, match="stopped by SIGTERM"):
            render(shot(shot_dir, "ign2", out=str(tmp_path / "t" / "a.####.exr")), progress=raises(sig.SIGTERM))
        assert sig.getsignal(sig.SIGINT) is sig.SIG_IGN and terms == [sig.SIGTERM]
    finally:
        sig.signal(sig.SIGINT, old)
        sig.signal(sig.SIGTERM, old_term)


def test_an_anamorphic_plate_is_desqueezed_for_the_network(shot_dir: Path, tmp_path: Path,
                                                           reference: dict[str, np.ndarray]) -> None:
    """A QA pass: a plate stored 2x squeezed (pixel aspect 2) was matted as stored, the network seeing every object
    half as wide as it is (IoU 0.88 against 0.95 desqueezed, the shipped weights). The network sees the picture as
    it was shot; the matte comes back in the plate's pixels, with its pixel aspect."""
    import cv2

    from vom_plugin.engine.runner import prepare

    folder = tmp_path / "squeezed"
    folder.mkdir()
    for f in range(1, N + 1):
        rgb = oiio.ImageBuf(str(shot_dir / "plate" / f"p.{f:04d}.exr")).get_pixels(oiio.FLOAT)
        small = cv2.resize(rgb, (W // 2, H), interpolation=cv2.INTER_AREA)
        spec = oiio.ImageSpec(W // 2, H, 3, oiio.FLOAT)
        spec.attribute("PixelAspectRatio", 2.0)
        out = oiio.ImageOutput.create(str(folder / f"p.{f:04d}.exr"))
        assert out.open(str(folder / f"p.{f:04d}.exr"), spec) and out.write_image(small)
        out.close()
    plain = shot(shot_dir, "plain_geo", out=str(tmp_path / "plain" / "a.####.exr"))
    # the roto drawn over the desqueezed picture, as a compositor's viewer shows it
    anamorphic = shot(shot_dir, "anamorphic", plate=str(folder / "p.####.exr"), out=str(tmp_path / "o" / "a.####.exr"))
    assert prepare(anamorphic).geo.size == prepare(plain).geo.size == (128, 43)
    r = render(anamorphic)
    assert len(r.frames) == N
    spec = oiio.ImageBuf(str(r.paths[0])).spec()
    assert (spec.width, spec.height) == (W // 2, H) and spec.get_float_attribute("PixelAspectRatio") == 2.0
    # the same picture as the plain plate's at the network: the mattes agree, squeezed the same way
    for path in r.paths:
        want = cv2.resize(reference[path.name], (W // 2, H), interpolation=cv2.INTER_AREA)
        assert np.abs(read_alpha(path) - want).mean() < 0.02, path.name


def test_a_default_sigterm_ends_a_python_process_after_the_frame_in_hand(shot_dir: Path, tmp_path: Path) -> None:
    """A script of a TD's with no handler of its own: a farm's SIGTERM ends the process (as it would without vom),
    after the frame in hand, every file complete; the script does not go on. `vom render` itself says the stop and
    exits 130, as before."""
    s = shot(shot_dir, "term", out=str(tmp_path / "o" / "a.####.exr"))
    code = (f"import os, signal, sys\nfrom vom_plugin import Shot, render\nshot = Shot.from_dict({s.to_dict()!r})\n"
            "def on(e):\n    if e['event'] == 'frame' and e['done'] == 2:\n"
            "        os.kill(os.getpid(), signal.SIGTERM)\n"
            "try:\n    render(shot, progress=on)\nexcept Exception as e:\n"
            "    print('went on after', type(e).__name__)\nprint('next shot')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == -signal.SIGTERM and r.stdout == "", (r.returncode, r.stdout, r.stderr[-2000:])
    on_disk = outputs(tmp_path / "o")
    assert 2 <= len(on_disk) < N and not list((tmp_path / "o").glob(".*"))  # complete frames only
    # the command line: its own message and exit status
    s = shot(shot_dir, "term_cli", out=str(tmp_path / "c" / "a.####.exr"))
    (tmp_path / "shot.yaml").write_text(s.to_yaml())
    proc = subprocess.Popen([sys.executable, "-m", "vom_plugin.cli", "render", str(tmp_path / "shot.yaml"),
                             "--progress", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if json.loads(line).get("event") == "frame":
            proc.send_signal(signal.SIGTERM)
            break
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "stopped by SIGTERM after" in err, (proc.returncode, err[-2000:])


def test_a_signal_that_stopped_a_render_is_passed_on_to_the_hosts_handler(shot_dir: Path, tmp_path: Path) -> None:
    """A QA pass: a TD's batch loop (``except Exception: log; next shot``) caught a farm's SIGTERM as the render's
    CancelledError and rendered two more shots; its own SIGTERM handler never ran, and Ctrl-C mid-render never raised
    KeyboardInterrupt. The signal stops the render after the frame in hand, then goes to the handler it replaced."""
    import signal as sig

    from vom_plugin.errors import CancelledError

    seen: list[tuple[int, int]] = []  # (signal, frames on disk when the host's handler ran)
    out = tmp_path / "o"

    def send(signum: int) -> Callable[[dict], None]:
        def on_event(e: dict) -> None:
            if e["event"] == "frame" and e["done"] == 2:
                sig.raise_signal(signum)
        return on_event

    old = sig.signal(sig.SIGTERM, lambda signum, _f: seen.append((signum, len(outputs(out)))))
    try:
        with pytest.raises(CancelledError, match="stopped by SIGTERM") as err:
            render(shot(shot_dir, "passed", out=str(out / "a.####.exr")), progress=send(sig.SIGTERM))
    finally:
        sig.signal(sig.SIGTERM, old)
    on_disk = sorted(outputs(out))
    assert 2 <= len(on_disk) < N and seen == [(sig.SIGTERM, len(on_disk))]  # once, after the render's last frame
    assert [p.name for p in err.value.render_result.files] == on_disk
    # SIGINT with Python's own handler: KeyboardInterrupt (not an Exception a loop goes on after), with what is on disk
    assert sig.getsignal(sig.SIGINT) is sig.default_int_handler
    out = tmp_path / "i"
    with pytest.raises(KeyboardInterrupt) as kb:
        render(shot(shot_dir, "passed_int", out=str(out / "a.####.exr")), progress=send(sig.SIGINT))
    on_disk = sorted(outputs(out))
    assert 2 <= len(on_disk) < N and [p.name for p in kb.value.render_result.files] == on_disk
    assert isinstance(kb.value.__context__, CancelledError)  # the render's stop, its message, under it
    assert sig.getsignal(sig.SIGINT) is sig.default_int_handler
    # during the last frame, after the render's last look at its stop: the render is whole, and the KeyboardInterrupt
    # passed on after it says so (review: it carried nothing)
    out = tmp_path / "last"

    def at_the_end(e: dict) -> None:
        if e["event"] == "frame" and e["done"] == N:
            sig.raise_signal(sig.SIGINT)

    with pytest.raises(KeyboardInterrupt) as kb:
        render(shot(shot_dir, "passed_last", out=str(out / "a.####.exr")), progress=at_the_end)
    assert len(outputs(out)) == N and kb.value.render_result.frames == list(range(1, N + 1))
    # from inside another exception's handler (a TD's retry): this render's own result, not that exception's
    try:
        raise CancelledError("an earlier render's")
    except CancelledError as earlier:
        earlier.render_result = "the earlier one"  # type: ignore[attr-defined]
        with pytest.raises(KeyboardInterrupt) as kb:
            render(shot(shot_dir, "passed_retry", out=str(tmp_path / "retry" / "a.####.exr")),
                   progress=send(sig.SIGINT))
    assert kb.value.render_result != "the earlier one" and len(kb.value.render_result.frames) >= 2


@pytest.mark.parametrize("where", ["prepare", "claim"])
def test_a_sigint_before_the_first_frame_carries_an_empty_render_result(shot_dir: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        where: str) -> None:
    """A QA pass: Ctrl-C while ``prepare`` loads torch (or as the output claim is taken, the output folder made) went
    up as a KeyboardInterrupt without ``render_result``, which the README says it carries: a host's
    ``e.render_result.frames`` raised AttributeError. It carries an empty one, and no output folder is left."""
    import vom_plugin
    from vom_plugin.io.output_claim import OutputClaim

    made: list[bool] = []  # whether the output folder was there when the SIGINT came

    def interrupted(*args: object, **kwargs: object) -> None:
        made.append((tmp_path / "new" / "sub").is_dir())
        signal.raise_signal(signal.SIGINT)  # Python's own handler: KeyboardInterrupt here
        raise AssertionError("SIGINT raised no KeyboardInterrupt")

    if where == "prepare":
        monkeypatch.setattr(vom_plugin, "import_torch", interrupted)
    else:
        monkeypatch.setattr(OutputClaim, "take", interrupted)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt) as kb:
        render(shot(shot_dir, f"int_{where}", out=str(tmp_path / "new" / "sub" / "a.####.exr"),
                    cache=str(tmp_path / "c")))
    assert kb.value.render_result.frames == [] and kb.value.render_result.files == []
    assert kb.value.render_result.paths == []
    assert made == [where == "claim"] and not (tmp_path / "new").exists()


@pytest.mark.parametrize("kind", [KeyboardInterrupt, SystemExit])
def test_a_keyboard_interrupt_raised_by_the_callback_says_what_is_on_disk(shot_dir: Path, tmp_path: Path,
                                                                          kind: type[BaseException]) -> None:
    """A QA pass: KeyboardInterrupt (or SystemExit) raised in the progress callback went up with nothing on it, where
    the frames in hand were still finished: more files on disk than the callback saw, and no way to tell which. It
    carries ``render_result`` as a SIGINT's does."""
    out = tmp_path / "o"
    seen: list[int] = []

    def on_event(e: dict) -> None:
        if e["event"] == "frame":
            seen.append(e["frame"])
            if len(seen) == 2:
                raise kind("stop here")

    with pytest.raises(kind) as got:
        render(shot(shot_dir, f"cb_{kind.__name__}", out=str(out / "a.####.exr")), progress=on_event)
    on_disk = sorted(outputs(out))
    assert len(on_disk) >= 2 and [p.name for p in got.value.render_result.files] == on_disk
    assert got.value.render_result.frames == [int(n.split(".")[1]) for n in on_disk]
    with pytest.raises(InputError) as before:  # before any work: empty (it was absent: AttributeError)
        render(shot(shot_dir, "cb_none", plate=str(tmp_path / "none" / "p.####.exr")))
    assert hasattr(before.value, "render_result") and before.value.render_result.files == []
    assert before.value.render_result.frames == []
    from vom_plugin.errors import VomError, attached_result  # reading the empty one attaches nothing (review)

    assert attached_result(before.value) is None
    del before.value.render_result
    assert before.value.render_result.frames == [] and attached_result(before.value) is None

    class Older(VomError):  # a subclass that declared the attribute as vom once did
        render_result = None  # type: ignore[assignment]

    older = Older("x")
    older.render_result = got.value.render_result  # type: ignore[assignment]
    assert attached_result(older) is got.value.render_result
    import pickle  # a farm wrapper sends it between processes: what is on disk goes with it

    err = CancelledError("stopped", by="SIGTERM")
    err.render_result = got.value.render_result
    back = pickle.loads(pickle.dumps(err))
    assert back.by == "SIGTERM" and back.render_result.frames == got.value.render_result.frames


@pytest.mark.parametrize("case", ["grey", "aov", "log", "linear_other", "part_same", "tag_agrees", "untagged_among",
                                  "png", "view", "view_unsaid"])
def test_a_frame_of_another_pass_or_encoding_in_the_plate_is_refused_by_frame(shot_dir: Path, tmp_path: Path,
                                                                              case: str) -> None:
    """A QA pass: frame 3 holding only Y (read as grey), only an AOV layer (taken as the only layer with R, G, B) or
    a header saying it is log was matted as it came, exit 0, where the same frame first is refused or read
    otherwise. Now refused before any work, naming the frame; the same R, G, B in a part named rgba is the same
    picture and renders."""
    folder = tmp_path / "plate"
    shutil.copytree(shot_dir / "plate", folder)
    odd = folder / "p.0003.exr"
    rgb = oiio.ImageBuf(str(odd)).get_pixels(oiio.FLOAT)
    spec = oiio.ImageSpec(W, H, 3, oiio.HALF)
    if case == "grey":
        _write(odd, rgb[..., :1], ["Y"])
    elif case == "aov":
        _write(odd, rgb * 0.3, ["diffuse.R", "diffuse.G", "diffuse.B"])
    elif case in ("log", "linear_other", "tag_agrees"):
        spec.attribute("colorInteropID", {"log": "acescct_ap1", "linear_other": "lin_rec709_scene"}.get(case,
                                                                                                         "lin_ap1_scene"))
        out = oiio.ImageOutput.create(str(odd))
        assert out.open(str(odd), spec) and out.write_image(rgb) and out.close()
    elif case == "png":  # a PNG saved under the sequence's .exr name (QA: refused as a change of colour space)
        png = tmp_path / "p.png"
        assert oiio.ImageBuf(np.clip(rgb, 0, 1)).write(str(png), oiio.UINT8)
        odd.write_bytes(png.read_bytes())
    elif case == "untagged_among":  # every frame but 3 says ACEScg (a paint fix from another tool says nothing)
        for f in range(1, N + 1):
            if f != 3:
                tagged = oiio.ImageSpec(W, H, 3, oiio.HALF)
                tagged.attribute("colorInteropID", "ACEScg")
                path = folder / f"p.{f:04d}.exr"
                px = oiio.ImageBuf(str(path)).get_pixels(oiio.FLOAT)
                out = oiio.ImageOutput.create(str(path))
                assert out.open(str(path), tagged) and out.write_image(px) and out.close()
    elif case in ("view", "view_unsaid"):  # a left-eye sequence, frame 3 the right eye's (review) or saying no view
        for f in range(1, N + 1):
            one = oiio.ImageSpec(W, H, 3, oiio.HALF)
            if f != 3 or case == "view":
                one.attribute("view", "right" if f == 3 else "left")
            path = folder / f"p.{f:04d}.exr"
            px = oiio.ImageBuf(str(path)).get_pixels(oiio.FLOAT)
            out = oiio.ImageOutput.create(str(path))
            assert out.open(str(path), one) and out.write_image(px) and out.close()
    else:  # a two-part file: depth, then the picture in a part named rgba
        depth = oiio.ImageSpec(W, H, 1, oiio.HALF)
        depth.channelnames, depth["name"] = ("Z",), "depth"
        spec["name"] = "rgba"
        out = oiio.ImageOutput.create(str(odd))
        assert out.open(str(odd), (depth, spec))
        assert out.write_image(np.ones((H, W, 1), np.float32))
        assert out.open(str(odd), spec, "AppendSubimage") and out.write_image(rgb) and out.close()
    s = shot(shot_dir, f"mixed_{case}", plate=str(folder / "p.####.exr"), out=str(tmp_path / "o" / "a.####.exr"),
             colorspace="ACEScg")
    if case in ("part_same", "tag_agrees", "untagged_among", "view_unsaid"):  # the same picture, read the same way
        assert render(s).frames == list(range(1, N + 1))
        return
    says = {"grey": r"is read from its channels Y, and frame 1 \(.*p\.0001\.exr\), the first this render reads, "
                    r"from R, G, B",
            "aov": r"is read from its channels diffuse\.R, diffuse\.G, diffuse\.B, and frame 1",
            "log": r"p\.0003\.exr is log-encoded \(colour space 'acescct_ap1'\)",
            "linear_other": r"plate frame 3 \(.*\) says its colour space is 'lin_rec709_scene', and frame 1 .* says "
                            r"no colour space: every frame is read as ACEScg",
            "png": r"plate frame 3 \(.*p\.0003\.exr\) is a PNG file, and frame 1 \(.*p\.0001\.exr\), the first this "
                   r"render reads, an OpenEXR: a frame of another format in the sequence",
            "view": r"plate frame 3 \(.*p\.0003\.exr\) is of the view 'right' \(its header's\), and frame 1 "
                    r"\(.*p\.0001\.exr\), the first this render reads, of 'left': a frame of another view"}
    with pytest.raises(InputError, match=says[case]):
        render(s)
    assert not (tmp_path / "o").exists()


def test_a_plate_five_stops_under_is_matted_as_at_its_exposure(shot_dir: Path, tmp_path: Path) -> None:
    """Session 36: a plate 5 stops under was matted much worse (a speck of 0.9 in a dark plate's corner; validation
    shots at 3% of their exposure 22.75 against 17.10). The network now sees each shot at one exposure, from its
    first keyframe's plate frame: the same plate darker gives the same matte, and the files say the gain."""
    folder = tmp_path / "plate"
    folder.mkdir()
    for f in range(1, N + 1):
        buf = oiio.ImageBuf(str(shot_dir / "plate" / f"p.{f:04d}.exr"))
        _write(folder / f"p.{f:04d}.exr", buf.get_pixels(oiio.FLOAT) * 0.03, ["R", "G", "B"])
    normal = render(shot(shot_dir, "exp_normal", out=str(tmp_path / "n" / "a.####.exr"), cache=str(tmp_path / "c1")))
    dark = render(shot(shot_dir, "exp_dark", plate=str(folder / "p.####.exr"), out=str(tmp_path / "d" / "a.####.exr"),
                       cache=str(tmp_path / "c2")))
    assert normal.frames == dark.frames == list(range(1, N + 1))
    got, want = outputs(tmp_path / "d"), outputs(tmp_path / "n")
    assert max(float(np.abs(got[k] - want[k]).max()) for k in want) < 0.02
    g_normal, g_dark = (float(oiio.ImageBuf(str(d / "a.0003.exr")).spec().getattribute("vom:exposure_gain"))
                        for d in (tmp_path / "n", tmp_path / "d"))
    assert g_dark == pytest.approx(g_normal / 0.03, rel=1e-3)
    spec = oiio.ImageBuf(str(tmp_path / "d" / "a.0003.exr")).spec()  # numbers as numbers (they were text, QA)
    assert spec.getattribute("vom:frame") == 3 and spec.getattribute("vom:working_size") == 128


def test_a_dark_srgb_plate_is_matted_as_its_linear_self(shot_dir: Path, tmp_path: Path) -> None:
    """QA (session 46): an sRGB plate went to the network as it was, never brought to the network's exposure as a
    linear plate is. A dark one now is (decoded, brought up, encoded: validation shots at 5% of their exposure
    15.41 against 20.78, model card session 47): the same dark picture in either encoding gives the same
    matte and gain. A bright one is taken as it is (gain 1): brought down, its clipped highlights turned grey."""
    from vom_plugin.io.color import _apply, _processor

    lin, enc = tmp_path / "lin", tmp_path / "enc"
    lin.mkdir()
    enc.mkdir()
    for f in range(1, N + 1):
        rgb = oiio.ImageBuf(str(shot_dir / "plate" / f"p.{f:04d}.exr")).get_pixels(oiio.FLOAT)[..., :3]
        rgb = np.clip(rgb * np.float32(0.05), 0, 1)  # a dark plate
        _write(lin / f"p.{f:04d}.exr", rgb, ["R", "G", "B"])
        coded = np.ascontiguousarray(rgb, np.float32)
        _apply(_processor("lin_rec709", "srgb_tx"), coded)
        _write(enc / f"p.{f:04d}.exr", coded, ["R", "G", "B"])
    render(shot(shot_dir, "as_lin", plate=str(lin / "p.####.exr"), colorspace="lin_rec709",
                out=str(tmp_path / "l" / "a.####.exr"), cache=str(tmp_path / "c1")))
    render(shot(shot_dir, "as_srgb", plate=str(enc / "p.####.exr"), colorspace="sRGB",
                out=str(tmp_path / "s" / "a.####.exr"), cache=str(tmp_path / "c2")))
    got, want = outputs(tmp_path / "s"), outputs(tmp_path / "l")
    # the inputs differ by 2e-4 at most (half-float files, a table's decoding); the filter's small eps makes a test
    # network's flat regions answer with a few pixels up to 0.11 apart
    assert max(float(np.abs(got[k] - want[k]).mean()) for k in want) < 0.02
    g_lin, g_srgb = (float(oiio.ImageBuf(str(d / "a.0003.exr")).spec().getattribute("vom:exposure_gain"))
                     for d in (tmp_path / "l", tmp_path / "s"))
    assert g_lin > 1.0 and g_srgb == pytest.approx(g_lin, rel=1e-3)


def test_sigterm_while_starting_exits_130_saying_so(tmp_path: Path) -> None:
    """Before the render installs its own handler (importing, checking the shot), SIGTERM killed the process by
    the signal with no word (-15); the help promises 130."""
    from vom_plugin.locations import demo_dir

    proc = subprocess.Popen([sys.executable, "-m", "vom_plugin.cli", "render", str(demo_dir() / "shot.yaml"),
                             "--out", str(tmp_path / "o" / "a.####.exr"), "--cache", str(tmp_path / "c"),
                             "--no-worker", "--progress", "none"], stderr=subprocess.PIPE, text=True)
    time.sleep(0.4)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (proc.returncode, err)
    assert "interrupted" in err or "stopped by SIGTERM" in err, err


def test_a_roto_drawn_over_an_overscan_plate_data_window_is_placed_there_and_cached_as_such(tmp_path: Path) -> None:
    """Blender draws a Mask over an EXR's stored pixels: on a plate with 6 px of overscan the roto is the data
    window's size. It is placed over the data window (before, it was squeezed into the display window, 0.8x
    towards the origin), and the cache knows the file by how it was placed as well as by its bytes."""
    from test_io_support import write_image

    from vom_plugin.engine.runner import prepare

    rng = np.random.default_rng(3)
    for f in (1, 2):
        write_image(tmp_path / f"p.{f:04d}.exr", rng.random((76, 108, 3), dtype=np.float32), data_origin=(-6, -6),
                    display=(0, 0, 96, 64))
    roto = np.zeros((76, 108), np.float32)
    roto[6 + 20 : 6 + 40, 6 + 30 : 6 + 60] = 1.0  # display rows 20-39, columns 30-59
    write_image(tmp_path / "roto.0001.exr", roto, ("A",))
    job = prepare(Shot(plate=str(tmp_path / "p.####.exr"), out=str(tmp_path / "o" / "a.####.exr"),
                       keyframes=[str(tmp_path / "roto.0001.exr")], working_size=128, cache=str(tmp_path / "c")))
    assert tuple(job.picture) == (-6, -6, 108, 76)  # the network sees the overscan too
    mask = job.rotos[None][1]
    assert mask.shape == (76, 108)
    ys, xs = np.nonzero(mask)  # over the picture: display rows 20-39, columns 30-59 are 6 further
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (26, 45, 36, 65) and mask.sum() == 20 * 30
    assert job.roto_fp[None][1].endswith(":over-data-window")


def test_a_file_put_at_an_output_path_while_the_render_runs_is_not_replaced(shot_dir: Path, tmp_path: Path) -> None:
    """QA: the check of what vom may replace ran once, before the render; a file copied to a later frame's path
    while it ran (read-only, even) was replaced, exit 0. Asked again as each frame takes its name: the render stops
    there, its file kept, the frames before it complete."""
    put = tmp_path / "users.exr"

    def progress(event: dict) -> None:
        if event.get("event") == "frame" and event["frame"] == 1:
            out = shot_dir / "guard" / "a.0004.exr"
            _write(out, np.zeros((4, 4, 1), np.float32), ["A"])  # another program's EXR, no vom header
            out.chmod(0o444)
            put.write_bytes(out.read_bytes())

    with pytest.raises(InputError, match=r"out: frame 4 would replace .*a\.0004\.exr, which .*\(it was put there "
                                         r"while this render ran\)") as e:
        render(shot(shot_dir, "guard", frames=[1, 2, 3, 4, 5, 6]), progress=progress)
    assert (shot_dir / "guard" / "a.0004.exr").read_bytes() == put.read_bytes()
    done = e.value.render_result.frames  # those handed to the writer before it: complete (5 may be among them)
    assert done[:3] == [1, 2, 3] and 4 not in done
    assert all((shot_dir / "guard" / f"a.{f:04d}.exr").is_file() for f in done)
    assert not [p for p in (shot_dir / "guard").iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_render_into_another_plates_mattes_is_refused(shot_dir: Path, tmp_path: Path) -> None:
    """QA: any vom matte of the same frame was replaced, whatever shot it came from: a pasted or typo'd output (a
    `vom demo --out` into a shot's folder) replaced another shot's mattes, exit 0. Each matte says its plate
    sequence (vom:plate_sequence); one of another is refused before any work; the same plate delivered again under
    a new version number, or spelt with another frame token, is the same sequence."""
    import shutil

    from vom_plugin.io import read_info
    from vom_plugin.io.output_guard import same_plate_sequence

    render(shot(shot_dir, "pl", frames=[1, 2]))
    assert read_info(shot_dir / "pl" / "a.0001.exr").metadata["vom:plate_sequence"] == "plate/p.####.exr"
    other = tmp_path / "q"
    other.mkdir()
    for f in (1, 2):  # another shot's plate: another picture
        px = oiio.ImageBuf(str(shot_dir / "plate" / f"p.{f:04d}.exr")).get_pixels(oiio.FLOAT)
        _write(other / f"sh020_q.{f:04d}.exr", px[::-1].copy(), ["R", "G", "B"])
    before = (shot_dir / "pl" / "a.0001.exr").read_bytes()
    with pytest.raises(InputError, match=r"frame 1 would replace .*a\.0001\.exr, which is vom's matte of another "
                                         r"plate \(/.*/plate/p\.####\.exr; this render's is /.*/q/sh020_q\.####\.exr"
                                         r"\), so probably another shot's: move that sequence's files away"):
        render(shot(shot_dir, "pl", frames=[1, 2], plate=str(other / "sh020_q.####.exr")))
    assert (shot_dir / "pl" / "a.0001.exr").read_bytes() == before
    # the same plate moved and renamed (another server, another folder): its frames' bytes are the mattes' own
    # (vom:plate), whatever the names say: replaced (a move was refused as another shot's)
    moved = tmp_path / "moved_2026"
    moved.mkdir()
    for f in (1, 2):
        shutil.copy(shot_dir / "plate" / f"p.{f:04d}.exr", moved / f"sh020_q.{f:04d}.exr")
    import vom_plugin.digest
    from vom_plugin.io import output_guard

    output_guard._digest_of.cache_clear()
    real, read = vom_plugin.digest.content_digest, []
    vom_plugin.digest.content_digest = lambda path: read.append(Path(path).name) or real(path)
    try:
        assert render(shot(shot_dir, "pl", frames=[1, 2], plate=str(moved / "sh020_q.####.exr"))).frames == [1, 2]
    finally:
        vom_plugin.digest.content_digest = real
    # each plate frame read once to tell it (then known), once for the matte's stamp: it was read four times (review)
    assert sorted(read) == ["sh020_q.0001.exr"] * 2 + ["sh020_q.0002.exr"] * 2, read
    assert same_plate_sequence("sh010_plate_v001.####.exr", "/show/sh010/SH010_plate_v002.%04d.exr")
    assert same_plate_sequence("p.####.exr", "/a/b/p.$F4.exr") and same_plate_sequence("p.@@@@.exr", "p.#.exr")
    assert not same_plate_sequence("sh010_plate_v001.####.exr", "sh020_plate_v001.####.exr")
    # a Windows workstation's stamp, a degrained or converted plate of the same shot, a version added, NFD (review)
    assert same_plate_sequence("S:\\shows\\demo\\plate.####.exr", "/mnt/shows/demo/plate.%04d.exr")
    assert same_plate_sequence("plates/sh010_plate.####.dpx", "/x/sh010_plate_dn.####.exr")
    assert same_plate_sequence("sh010_plate.####.exr", "sh010_plate_v001.####.exr")
    assert same_plate_sequence("caf\u00e9.####.exr", "cafe\u0301.####.exr")
    assert not same_plate_sequence("v010_plate.####.exr", "v020_plate.####.exr")  # shot codes, not versions
    assert not same_plate_sequence("bg_v1a.####.exr", "/x/bg_v2a.####.exr")  # a version is a whole part (review)
    # a Source a host baked into its work folder is the Read it replaced (an artist's Grade before the node)
    assert same_plate_sequence("/show/sh010_plate_v001.%04d.exr", "/comp/vom/sh010_alpha_vom/plate.%04d.exr",
                               out_file="/comp/vom/sh010_alpha.0001.exr")
    # a name that begins with another's is another shot unless a separator starts the rest; a name without a shot
    # code (a digit) is told by its folder (review: shot_1 replaced shot_10's mattes; any plate matched ####.exr)
    for a, b in (("p/shot_1.####.exr", "p/shot_10.####.exr"), ("sh01.####.exr", "sh010.####.exr"),
                 ("sh010/plate.####.exr", "sh020/plate.####.exr"), ("sh010/####.exr", "/x/sh020/####.exr"),
                 ("sh010/####.exr", "/x/sh020/sh020_plate.####.exr"),
                 ("demo/plate.####.exr", "/s/sh010/plate.%04d.exr"),
                 ("sh010/plate.####.exr", "/x/sh020/plate_dn.#.exr"),
                 ("sh010/bg.####.exr", "/x/sh020/bg_clean.####.exr")):
        assert not same_plate_sequence(a, b) and not same_plate_sequence(b, a), (a, b)
    for a, b in (("sh010/plate.####.exr", "/mnt/SH010/plate.%04d.dpx"),
                 ("v001/plate.####.exr", "/in/v002/plate.#.exr"),
                 ("sh010_v001/####.exr", "/x/sh010_v003/####.exr"), ("plate.####.exr", "/x/sh020/plate.####.exr"),
                 ("sh010/plate.####.exr", "/x/sh010/plate_dn.####.exr"),
                 ("sh010/plate/####.exr", "/sh010/plate_dn/####.exr")):
        assert same_plate_sequence(a, b) and same_plate_sequence(b, a), (a, b)
    # with the whole folder a matte stamps (vom:plate_folder), the same name in the same place decides, whatever the
    # name: the same folders but for versions, dates and the mount (reviews: heuristics for shot codes let
    # sh010/plate/v001 replace sh020/plate/v001's mattes, then ABC_0100 ABD_0100's, left/ right/'s...)
    from vom_plugin.io.output_guard import plate_folder_stamp, plate_sequence_stamp

    def same(a: str, b: str) -> bool:
        return same_plate_sequence(plate_sequence_stamp(a), b, plate_folder_stamp(a))
    for a, b in (("/s/sh010/plate/v001/plate.####.exr", "/s/sh020/plate/v001/plate.####.exr"),
                 ("/s/sh010/comp/elements/plate/v001/p.####.exr", "/s/sh020/comp/elements/plate/v001/p.####.exr"),
                 ("/s/sh010/plate_4k.####.exr", "/s/sh020/plate_4k.####.exr"),
                 ("/s/sh010/bg01.####.exr", "/s/sh020/bg01.####.exr"),
                 ("/jobs/P/ABC/0100/plates/plate.####.exr", "/jobs/P/ABC/0200/plates/plate.####.exr"),
                 ("/jobs/S/ABC/ABC_0100/plates/v001/plate.####.exr", "/jobs/S/ABD/ABD_0100/plates/v001/plate.####.exr"),
                 ("/jobs/S/ABC/0100/plates/plate.####.exr", "/jobs/S/ABD/0100/plates/plate.####.exr"),
                 ("/s/seq/sh_10/plate/plate.####.exr", "/s/seq/sh_20/plate/plate.####.exr"),
                 ("/s/seq/2010/plate/p.####.exr", "/s/seq/2020/plate/p.####.exr"),
                 ("/s/2000/2000_0110/plates/plate.####.exr", "/s/2000/2000_0120/plates/plate.####.exr"),
                 ("/jobs/ad/hero_pour/plate/p.####.exr", "/jobs/ad/packshot/plate/p.####.exr"),
                 ("/s/sh010/img/bg01/v001/exr/2048x1152/####.exr", "/s/sh010/img/fg01/v001/exr/2048x1152/####.exr"),
                 ("/s/sh010/plate/left/sh010_plate.####.exr", "/s/sh010/plate/right/sh010_plate.####.exr"),
                 ("/s/sh010/plates/cam_a/sh010_plate.####.exr", "/s/sh010/plates/cam_b/sh010_plate.####.exr"),
                 ("/s/io/from_client/20240109_sh010/p.####.exr", "/s/io/from_client/20240109_sh020/p.####.exr"),
                 ("/s/sh010/plates/A001C003_220101_R1AB.####.exr", "/s/sh020/plates/A001C003_220101_R1AB.####.exr"),
                 ("/s/plates/plate.####.exr", "/s/sh010/plates/plate.####.exr"),
                 # a first folder that is no mount is the show's; a suffix in a folder's name is another folder
                 # (review: /showB/sh010 replaced /showA/sh010's mattes; a split shot ABC_0100_B its parent's)
                 ("/showA/sh010/plate/plate.####.exr", "/showB/sh010/plate/plate.####.exr"),
                 ("/scratch/sh010/plate/plate.####.exr", "/show/x/sh010/plate/plate.####.exr"),
                 ("/s/ABC_0100/ABC_0100.####.exr", "/s/ABC_0100_B/ABC_0100_B.####.exr"),
                 ("/s/sh010/plate/plate.####.exr", "/s/sh010/plate_right/plate.####.exr"),
                 ("D:/sh010/plate/p.####.exr", "D:/sh020/plate/p.####.exr"),
                 # another depth (more folders above one: a show's, or a mount's? review: /mnt/sh010 replaced
                 # /mnt/showB/sh010's mattes), a plate beside another of a longer name (sh010_plate_clean)
                 ("/mnt/sh010/plates/main/p.####.exr", "/mnt/showB/sh010/plates/main/p.####.exr"),
                 ("/mnt/studio/proj/sh010/plate/p.####.exr", "/Volumes/proj/sh010/plate/p.####.exr"),
                 ("/s/sh010/plates/sh010_plate.####.exr", "/s/sh010/plates/sh010_plate_clean.####.exr"),
                 # a converted plate in a sibling folder is told by its bytes only (made_from)
                 ("/s/sh010/plates/dpx/plate.####.dpx", "/s/sh010/plates/exr/plate.####.exr")):
        assert not same(a, b) and not same(b, a), (a, b)
    for a, b in (("/s/sh030/plate/20240105/plate.####.exr", "/s/sh030/plate/20240109/plate.####.exr"),
                 ("/s/sh030/plate/20240105_vendor/p.####.exr", "/s/sh030/plate/20240215_vendor/p.####.exr"),
                 ("/s/sh030/plate/vendor_2024-01-05/p.####.exr", "/s/sh030/plate/vendor_2024-02-15/p.####.exr"),
                 ("/s/sh010/plate/plate.####.exr", "/s/sh010/plate/v002/plate.####.exr"),
                 ("/mnt/show/sh010/plate/v001/plate.####.exr", "/Volumes/show/sh010/plate/v002/plate.####.exr"),
                 ("/mnt/proj/sh010/plate.####.exr", "/Volumes/proj/sh010/plate.####.exr"),
                 ("/Volumes/jobs/P/ABC/0100/plates/v001/p.####.exr", "/mnt/jobs/P/ABC/0100/plates/v002/p.####.exr"),
                 ("/io/sh010_20240109/sh010_plate.####.exr", "/io/sh010_20240215/sh010_plate.####.exr")):
        assert same(a, b) and same(b, a), (a, b)
    # a Windows workstation's stamp read on the farm: a drive, a UNC server, WSL's /mnt/c
    farm = "/mnt/proj/sh010/plates/v002/plate.####.exr"
    for stamped_at in ("P:/proj/sh010/plates/v001", "//fs01/proj/sh010/plates/v001",
                       "//?/UNC/fs01/proj/sh010/plates/v001"):
        assert same_plate_sequence("v001/plate.####.exr", farm, stamped_at)
    assert same_plate_sequence("v001/plate.####.exr", "/mnt/c/proj/sh010/plates/v002/plate.####.exr",
                               "C:/proj/sh010/plates/v001")
    # a host's baked Source (<Output>_vom/) is its Output's, in that Output's work folder only (reviews: any _vom
    # folder, then any beside the mattes, let any shot's render replace another's mattes, both ways)
    out_file = "/comp/mattes/sh010_alpha.0001.exr"
    baked = "/comp/mattes/sh010_alpha_vom"
    assert same_plate_sequence("sh010_alpha_vom/plate.####.exr", "/s/sh010/plates/plate.####.exr", baked, out_file)
    assert same_plate_sequence("plates/plate.####.exr", f"{baked}/plate.####.exr", "/s/sh010/plates", out_file)
    assert same_plate_sequence("sh010_alpha_vom/plate.####.exr", "/s/sh010/plates/plate.####.exr", None, out_file)
    for other in ("/s/sh020/comp/sh020_alpha_vom", "/comp/mattes/other_vom", "/comp/mattes/sh010_alpha_vom/x"):
        assert not same_plate_sequence("x/plate.####.exr", "/s/sh010/plates/plate.####.exr", other, out_file), other
        assert not same_plate_sequence("plates/plate.####.exr", f"{other}/plate.####.exr", "/s/sh010/plates",
                                       out_file), other
    assert not same_plate_sequence("other_vom/plate.####.exr", "/s/sh010/plates/plate.####.exr", None, out_file)
    # an {object} Output: the host's work folder says "object" where each file says its object (review)
    hero = "/comp/mattes/hero_alpha.0001.exr"
    assert same_plate_sequence("plates/plate.####.exr", "/comp/mattes/object_alpha_vom/plate.####.exr",
                               "/s/sh010/plates", hero, ("hero",))
    assert not same_plate_sequence("plates/plate.####.exr", "/comp/mattes/object_alpha_vom/plate.####.exr",
                                   "/s/sh010/plates", hero)


def test_a_hosts_baked_source_is_its_outputs_in_its_work_folder(tmp_path: Path) -> None:
    """Review: the exemption of a host's baked Source (its Output's work folder) must follow the host's own naming:
    an {object} Output, a frame token inside the name, a name the host respelt; another _vom folder is no exemption."""
    from vom_plugin.host.blender_addon import common
    from vom_plugin.io.output_guard import same_plate_sequence

    comp = tmp_path / "comp"
    for out, frame_file, objects in (("{object}_alpha.####.exr", "alpha_alpha.0001.exr", ("alpha",)),
                                     ("sh010_{object}.####.exr", "sh010_1.0001.exr", ("1",)),
                                     ("sh010_####_alpha.exr", "sh010_0001_alpha.exr", ()),
                                     ("hero matte.####.exr", "hero matte.0001.exr", ())):
        pattern = str(comp / out)
        work = common.work_dir(pattern)
        work.mkdir(parents=True, exist_ok=True)
        (work / "shot.yaml").write_text(common.shot_yaml({"plate": str(work / "plate.####.exr"), "out": pattern},
                                                         "# host"))
        matte = comp / frame_file
        assert same_plate_sequence("v001/plate.####.exr", str(work / "plate.####.exr"), "/s/sh010/plates/v001",
                                   matte, objects), out
        assert same_plate_sequence(f"{work.name}/plate.####.exr", "/s/sh010/plates/v001/plate.####.exr", str(work),
                                   matte, objects), out
    other = comp / "other_vom"
    other.mkdir()
    assert not same_plate_sequence("v001/plate.####.exr", str(other / "plate.####.exr"), "/s/sh010/plates/v001",
                                   comp / "hero matte.0001.exr")


def test_two_shots_generic_plates_in_version_folders_are_told_apart(shot_dir: Path, tmp_path: Path) -> None:
    """Review: sh010/plate/v001/plate.####.exr rendered into sh020/plate/v001's mattes replaced them, exit 0 (the
    stamp held v001/plate.####.exr for both); the same shot's plate re-delivered into a dated folder, regraded, is
    this shot's."""
    from vom_plugin.io import read_info

    def plate_in(folder: Path, gain: float, flip: bool = False) -> str:
        folder.mkdir(parents=True)
        for f in (1, 2):
            px = oiio.ImageBuf(str(shot_dir / "plate" / f"p.{f:04d}.exr")).get_pixels(oiio.FLOAT) * gain
            _write(folder / f"plate.{f:04d}.exr", (px[::-1] if flip else px).copy(), ["R", "G", "B"])
        return str(folder / "plate.####.exr")

    out = tmp_path / "out"
    first = plate_in(tmp_path / "sh010" / "plate" / "v001", 1.0)
    def at(plate: str) -> Shot:
        return shot(shot_dir, "vguard", frames=[1, 2], plate=plate, out=str(out / "a.####.exr"),
                    cache=str(tmp_path / "cache"))
    render(at(first))
    assert read_info(out / "a.0001.exr").metadata["vom:plate_folder"] == str(tmp_path / "sh010" / "plate" / "v001")
    before = (out / "a.0001.exr").read_bytes()
    other = plate_in(tmp_path / "sh020" / "plate" / "v001", 1.0, flip=True)
    with pytest.raises(InputError, match=r"which is vom's matte of another plate \(.*/sh010/plate/v001/plate\.####"
                                         r"\.exr; this render's is .*/sh020/plate/v001/plate\.####\.exr\)"):
        render(at(other))
    assert (out / "a.0001.exr").read_bytes() == before
    regraded = plate_in(tmp_path / "sh010" / "plate" / "20240109", 1.1)
    assert render(at(regraded)).frames == [1, 2]
    # a "latest" link is the version it names: rendered through it, a later version regraded is this shot's
    (tmp_path / "sh010" / "plate" / "latest").symlink_to(tmp_path / "sh010" / "plate" / "v001")
    render(at(str(tmp_path / "sh010" / "plate" / "latest" / "plate.####.exr")))
    assert read_info(out / "a.0001.exr").metadata["vom:plate_folder"] == str(tmp_path / "sh010" / "plate" / "v001")
    assert render(at(plate_in(tmp_path / "sh010" / "plate" / "v002", 0.9))).frames == [1, 2]


def test_an_object_too_small_for_the_network_is_a_warning_of_the_render(shot_dir: Path, tmp_path: Path) -> None:
    """QA: a roto of a few working pixels (a 17x9 plate, a speck), or a picture under 32 px on a side (an 8000x600
    panorama at working_size 128), rendered a matte at 0.01-0.08 inside the roto, exit 0, without a word."""
    from vom_plugin.engine.runner import prepare

    job = prepare(shot(shot_dir, "small", cache=str(tmp_path / "c")))
    assert not [n for n in job.notes if "too small" in n or "faint" in n], job.notes  # the disc: ~480 working px
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    speck = tmp_path / "speck.0001.exr"
    _write(speck, (np.hypot(xx - 48, yy - 32) < 6).astype(np.float32)[..., None], ["A"])
    job = prepare(shot(shot_dir, "small", keyframes={1: str(speck)}, cache=str(tmp_path / "c")))
    said = [n for n in job.notes if "an object this small for the network comes out faint" in n]
    assert len(said) == 1 and f"keyframes: the roto of keyframe 1 ({speck}) covers " in said[0], job.notes
    assert "of the network's 128x43 pixels (working_size 128)" in said[0]
    wide = tmp_path / "wide"
    wide.mkdir()
    for f in (1, 2):
        _write(wide / f"p.{f:04d}.exr", np.full((40, 800, 3), 0.2, np.float32), ["R", "G", "B"])
    roto = np.zeros((40, 800, 1), np.float32)
    roto[5:35, 100:300] = 1
    _write(tmp_path / "wr.0001.exr", roto, ["A"])
    job = prepare(shot(shot_dir, "small", plate=str(wide / "p.####.exr"), frames=[1, 2],
                       keyframes={1: str(tmp_path / "wr.0001.exr")}, cache=str(tmp_path / "c")))
    assert [n for n in job.notes if "the network sees the plate at 128x6 pixels (working_size 128), under 32 on a "
                                    "side: mattes come out faint or empty at that size; raise working_size" in n], \
        job.notes
    # a plate enlarged as far as vom enlarges one: a larger working_size cannot help, and is not advised (review)
    job = prepare(shot(shot_dir, "small", plate=str(wide / "p.####.exr"), frames=[1, 2], working_size=2048,
                       keyframes={1: str(tmp_path / "wr.0001.exr")}, cache=str(tmp_path / "c")))
    assert not [n for n in job.notes if "the network sees the plate" in n], job.notes  # 1600x80
    dot = tmp_path / "dot.0001.exr"
    _write(dot, (np.hypot(xx - 48, yy - 32) < 3).astype(np.float32)[..., None], ["A"])
    job = prepare(shot(shot_dir, "small", keyframes={1: str(dot)}, working_size=1024, cache=str(tmp_path / "c")))
    said = [n for n in job.notes if "an object this small for the network comes out faint" in n]
    assert said and said[0].endswith("the plate (192x64) is enlarged 2x at most, so a larger working_size does not "
                                     "help"), job.notes
    # a plate with overscan: the picture is larger than the display window, the scale is what is capped (review)
    from vom_plugin.engine import frames as fr
    from vom_plugin.engine.prepare import _small_object_notes

    class Overscan:
        working_size = 1024

        def rotos(self) -> dict:
            return {None: {1: "r.0001.exr"}}

    notes: list[str] = []
    _small_object_notes({None: {1: np.zeros((324, 576), np.float32)}}, Overscan(),
                        fr.geometry(576, 324, 1024, long_side=480), notes)
    assert notes and notes[0].endswith("the plate (576x324) is enlarged 2x at most, so a larger working_size does "
                                       "not help"), notes


def test_premultiplying_srgb_code_values_is_a_warning_of_the_render(shot_dir: Path, tmp_path: Path) -> None:
    """QA: rgba-premult of a plate read as sRGB multiplied its code values by the alpha, which a comp that linearises
    them takes for a premultiplication in linear (soft edges darken); said. Linear settings and rgba say nothing."""
    from vom_plugin.engine.runner import prepare

    said = "rgba-premult multiplies the plate's sRGB-encoded code values by the alpha"
    job = prepare(shot(shot_dir, "pre", output="rgba-premult", colorspace="sRGB", cache=str(tmp_path / "c")))
    assert [n for n in job.notes if said in n]
    for kw in ({"output": "rgba-premult"}, {"output": "rgba", "colorspace": "sRGB"}):
        job = prepare(shot(shot_dir, "pre", cache=str(tmp_path / "c"), **kw))
        assert not [n for n in job.notes if said in n], kw


def test_a_roto_of_8_bit_codes_is_a_warning_of_the_render_and_a_roto_that_is_a_folder_is_named_so(
        shot_dir: Path, tmp_path: Path) -> None:
    from vom_plugin.engine.runner import prepare

    codes = tmp_path / "codes.0001.exr"
    _write(codes, (_disc(1) > 0.5).astype(np.float32)[..., None] * 255, ["A"])
    job = prepare(shot(shot_dir, "codes", keyframes={1: str(codes)}, cache=str(tmp_path / "c")))
    assert [n for n in job.notes if "8-bit codes" in n] and str(codes) in job.notes[-1]
    (tmp_path / "folder.0001.exr").mkdir()
    with pytest.raises(InputError, match=r"keyframes: roto file .*folder\.0001\.exr \(frame 1\) is not a file"):
        prepare(shot(shot_dir, "folder", keyframes={1: str(tmp_path / "folder.0001.exr")}))


def test_the_python_api_takes_a_shot_file_refuses_other_types_and_a_stop_set_before_writes_nothing(
        shot_dir: Path, tmp_path: Path) -> None:
    import yaml

    from vom_plugin import CancelledError, Stop
    from vom_plugin.errors import InputError as PublicInputError

    s = shot(shot_dir, "api", out=str(tmp_path / "o" / "a.####.exr"), cache=str(tmp_path / "c"), frames=range(1, 3))
    assert s.frames == [1, 2]  # a range (or a numpy array) of frames is a list of frames
    assert Shot(**{**{k: getattr(s, k) for k in ("plate", "out", "keyframes")}, "frames": np.arange(1, 4)}).frames \
        == [1, 2, 3]
    with pytest.raises(TypeError, match="expected a Shot or a shot file's path, got dict"):
        render({"plate": s.plate})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="progress must be a function"):
        render(s, progress="json")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="stop must be a vom_plugin.Stop .*got int"):  # QA: 'int' has no is_set
        render(s, stop=1)  # type: ignore[arg-type]
    # a stale or misspelled field of a pipeline's row, as Shot.from_dict of it says (QA: the dataclass's TypeError)
    fields = {k: getattr(s, k) for k in ("plate", "out", "keyframes")}
    with pytest.raises(PublicInputError, match=r"unknown field\(s\) 'workingsize' \('workingsize': did you mean "
                                               r"'working_size'\?\); expected only plate, out"):
        Shot(**fields, workingsize=256)
    with pytest.raises(PublicInputError, match=r"missing required field\(s\) out$"):
        Shot(plate=s.plate, keyframes=s.keyframes)
    with pytest.raises(PublicInputError, match="2 value\\(s\\) given without a name"):
        Shot(s.plate, s.out)  # type: ignore[misc]
    stop = Stop()
    stop.set()  # before the render: it stops before any work (no model loaded, no output folder made)
    assert stop.is_set()
    with pytest.raises(CancelledError, match=r"stopped by Stop\.set\(\) before the render started: no frame") as e:
        render(s, stop=stop)
    assert e.value.by == "Stop.set()"  # what stopped it, as a stop during the render says (QA: None)
    assert not (tmp_path / "o").exists()
    stop.clear()  # ready for another render
    assert not stop.is_set() and render(s, stop=stop).frames == [1, 2]
    # a field changed after the Shot was made is checked as one given to Shot(...): before any work, by name
    for name, value, says in (("frames", "2-x", "frames"), ("working_size", "480px", "working_size"),
                              ("channel", "foo bar", "channel")):
        changed = Shot(**{k: getattr(s, k) for k in ("plate", "out", "keyframes", "model")})
        setattr(changed, name, value)
        with pytest.raises(InputError, match=says):
            render(changed)
    # a progress callback that raises stops the render, and is not called again while it winds down
    calls: list[str] = []

    def fails(event: dict) -> None:
        calls.append(event["event"])
        if event["event"] == "frame":
            raise RuntimeError(f"callback failed at {len(calls)}")

    with pytest.raises(RuntimeError, match=r"callback failed at \d+") as err:
        render(Shot(**{**{k: getattr(s, k) for k in ("plate", "keyframes", "model", "working_size")},
                       "out": str(tmp_path / "cb" / "a.####.exr"), "frames": "1-4"}), progress=fails)
    assert calls.count("frame") == 1 and calls[-1] == "frame" and err.value.__context__ is None, calls
    f = tmp_path / "api.yaml"
    f.write_text(yaml.safe_dump({"plate": s.plate, "out": str(tmp_path / "p" / "a.####.exr"), "frames": "1-2",
                                 "keyframes": {k: str(v) for k, v in s.keyframes.items()}, "model": "lite",
                                 "working_size": s.working_size, "cache": str(tmp_path / "c")}))
    r = render(str(f))  # a shot file's path, as `vom render SHOT.yaml`
    assert [p.name for p in r.paths] == ["a.0001.exr", "a.0002.exr"]
    assert PublicInputError is InputError


def test_outputs_name_the_weights_that_made_them(shot_dir: Path, tmp_path: Path) -> None:
    """`vom:model` says "default"; once the default changes that names another file. `vom:weights` is the
    digest of the tensors themselves (the cache's identity of the model)."""
    from vom_plugin.engine.models import model_identity
    from vom_plugin.engine.weights import load_model

    r = render(shot(shot_dir, "prov", frames="1", cache=str(tmp_path / "c")))
    spec = oiio.ImageBuf(str(r.paths[0])).spec()
    want = model_identity(load_model(str(shot_dir / "model.safetensors"), device="cpu"))
    assert spec.get_string_attribute("vom:weights") == want and len(want) == 32


def test_step_events_count_the_work_of_every_pass_and_what_the_cache_saved(shot_dir: Path, tmp_path: Path) -> None:
    """Two keyframes: a pass each way over the shot, one step per frame of each; the steps count up to their
    total while the frames come in bursts, and a second render reads them all back."""
    kfs = {1: str(shot_dir / "roto" / "r.0001.exr"), N: str(shot_dir / "roto" / f"r.{N:04d}.exr")}
    s = shot(shot_dir, "steps", keyframes=kfs, cache=str(tmp_path / "c"))
    events: list[dict] = []
    render(s, progress=events.append)
    steps = [e for e in events if e["event"] == "step"]
    frames = [e for e in events if e["event"] == "frame"]
    total = steps[-1]["steps_total"]
    assert len(frames) == N and total >= 2 * (N - 2)  # forward and backward passes between the keyframes
    assert [e["steps_done"] for e in steps] == list(range(1, total + 1))  # one event a step, in order
    assert all(e["steps_cached"] == 0 for e in steps) and frames[-1]["steps_done"] == total
    # half-way (the first pass done), no frame between the keyframes can be written: they wait for the second
    assert next(e["frames_done"] for e in steps if e["steps_done"] == total // 2) <= 2
    events.clear()
    again = render(s, progress=events.append)
    steps = [e for e in events if e["event"] == "step"]
    # every step read back, but the backward pass's first (keyframe N's, whose frame the forward pass writes):
    # not read, not work (it was counted as read back, one more than the done event said: QA)
    assert steps[-1]["steps_cached"] == steps[-1]["steps_done"] == steps[-1]["steps_total"] == total - 1
    assert again.cache["steps_cached"] == total - 1 and again.cache["steps_computed"] == 0


def _render_forked(root: Path, queue: object) -> None:
    try:
        r = render(shot(root, "forked"))
        queue.put(("rendered", r.frames))  # type: ignore[attr-defined]
    except BaseException as e:  # the parent reports it
        queue.put((type(e).__name__, str(e), getattr(e, "exit_code", None)))  # type: ignore[attr-defined]


def test_a_render_in_a_forked_child_of_a_rendering_process_is_refused_at_once(
        shot_dir: Path, reference: dict[str, np.ndarray]) -> None:
    """multiprocessing's default start method on Linux forks: this process has rendered (the reference render),
    and the child's render waited forever for OpenMP's and OpenEXR's threads, which exist only here. It is refused
    before any work, saying how to start the processes instead; a spawned one renders. (A process that only
    imported torch and OpenImageIO forks children that render: tests/test_runner_cli.py.)"""
    import multiprocessing

    for method in ("fork", "spawn"):
        ctx = multiprocessing.get_context(method)
        queue = ctx.Queue()
        child = ctx.Process(target=_render_forked, args=(shot_dir, queue))
        child.start()
        try:
            got = queue.get(timeout=240)
        finally:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()
        if method == "fork":
            kind, message, code = got
            assert kind == "InputError" and code == 2, got
            assert "forked from one that had rendered" in message and "'spawn'" in message
            assert not (shot_dir / "forked").exists()
        else:
            assert got == ("rendered", list(range(1, N + 1))), got
            for name, alpha in reference.items():
                np.testing.assert_array_equal(read_alpha(shot_dir / "forked" / name), alpha)
    # a parent that only imported them (Celery's prefork, gunicorn --preload): its forked children render
    script = (f"import multiprocessing, sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
              "import torch, OpenImageIO, vom_plugin\n"
              "from test_runner_render import _render_forked\n"
              "from pathlib import Path\n"
              "ctx = multiprocessing.get_context('fork'); q = ctx.Queue()\n"
              f"c = ctx.Process(target=_render_forked, args=(Path({str(shot_dir)!r}), q)); c.start()\n"
              "print(q.get(timeout=240)); c.join()\n")
    shutil.rmtree(shot_dir / "forked")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.stdout.strip() == f"('rendered', {list(range(1, N + 1))})", run.stdout + run.stderr


def test_another_thread_count_neither_reuses_nor_continues_what_is_cached(shot_dir: Path,
                                                                          reference: dict[str, np.ndarray]) -> None:
    """1 and 2 threads split the float sums differently: a render pinned to one core (taskset, a farm slot) over a
    cache filled on two reused its features and states, and its frames matched neither cold render."""
    import torch

    shutil.copytree(shot_dir / "cache_ref", shot_dir / "cache_threads")  # filled at the suite's thread count
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(before + 1)
        r = render(shot(shot_dir, "threads"))
        assert r.cache["keys_hit"] == 0 and r.cache["steps_cached"] == 0 and r.cache["steps_computed"] == N
    finally:
        torch.set_num_threads(before)
    again = render(shot(shot_dir, "threads"))  # back at the first count: its entries are still there
    assert again.cache["steps_computed"] == 0
    assert all(np.array_equal(read_alpha(p), reference[p.name]) for p in again.paths)


def test_another_cpus_arithmetic_neither_reuses_nor_continues_what_is_cached(
        shot_dir: Path, reference: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a farm of two CPU generations sharing a shot's cache (AVX2 and AVX-512 kernels split float sums
    differently, as thread counts do): a chunk continuing from the other machine's state, and a re-render reading
    its steps, gave mattes neither machine computes cold (up to 4.9e-4). The arithmetic's identity is in the
    addresses."""
    import vom_plugin.engine.device as device

    shutil.copytree(shot_dir / "cache_ref", shot_dir / "cache_isa")
    real = device.arithmetic_identity
    monkeypatch.setattr(device, "arithmetic_identity", lambda d: real(d).replace("aten ", "aten other-"))
    r = render(shot(shot_dir, "isa"))
    assert r.cache["keys_hit"] == 0 and r.cache["steps_cached"] == 0 and r.cache["steps_computed"] == N
    monkeypatch.setattr(device, "arithmetic_identity", real)
    # a host that let float32 matmuls run in bf16 (review: its renders' steps were read by plain ones)
    import torch

    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        lowered = render(shot(shot_dir, "isa"))
        assert lowered.cache["keys_hit"] == 0 and lowered.cache["steps_cached"] == 0
    finally:
        torch.set_float32_matmul_precision(before)
    again = render(shot(shot_dir, "isa"))  # this machine's entries are still there
    assert again.cache["steps_computed"] == 0
    assert all(np.array_equal(read_alpha(p), reference[p.name]) for p in again.paths)


def test_the_arithmetic_identity_says_what_picks_the_kernels() -> None:
    """ATEN_CPU_CAPABILITY (as an older CPU would) lowers torch's kernels: another identity; the same otherwise."""
    ask = [sys.executable, "-c", "import torch; from vom_plugin.engine.device import arithmetic_identity as a; "
           "print(a(torch.device('cpu')))"]
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    repo = Path(__file__).resolve().parents[1]
    here = subprocess.run(ask, capture_output=True, text=True, env=env, cwd=repo).stdout.strip()
    lowered = subprocess.run(ask, capture_output=True, text=True, env={**env, "ATEN_CPU_CAPABILITY": "default"},
                             cwd=repo).stdout.strip()
    assert here.startswith("torch ") and "; aten " in here and "; cpu " in here, here
    if "aten DEFAULT" in here:  # an ARM CPU: torch's kernels are its default ones already
        pytest.skip("this CPU runs torch's default kernels already: nothing to lower")
    assert lowered != here and "aten DEFAULT" in lowered, lowered


def test_a_plate_edited_in_place_with_its_size_and_time_kept_is_another_plate(tmp_path: Path) -> None:
    """Only parts of a big plate are hashed: an uncompressed EXR edited elsewhere keeps its size, and `touch -r` its
    modification time; its fingerprint (the cache's and a worker's memo's address) stayed, and old features were
    reused. The change time, which no tool sets back, is part of it."""
    from vom_plugin.engine.cache import file_fingerprint

    plate = tmp_path / "p.0001.exr"
    data = bytearray(os.urandom(1 << 20))
    plate.write_bytes(data)
    st = plate.stat()
    fp = file_fingerprint(plate)
    data[300_000:300_010] = b"\0" * 10  # outside the three hashed windows
    time.sleep(0.02)  # a coarse file-time clock (kernels before 6.13 stamp in 1-10 ms ticks)
    with open(plate, "r+b") as f:
        f.write(data)
    os.utime(plate, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert plate.stat().st_size == st.st_size and plate.stat().st_mtime_ns == st.st_mtime_ns
    assert file_fingerprint(plate) != fp
    # a file hashed whole (a roto) needs no change time: a chmod (which moves it) leaves its fingerprint
    roto = tmp_path / "r.0001.exr"
    roto.write_bytes(b"roto")
    first = file_fingerprint(roto, full=True)
    ctime = roto.stat().st_ctime_ns
    time.sleep(0.01)
    roto.chmod(0o600)
    assert roto.stat().st_ctime_ns != ctime and file_fingerprint(roto, full=True) == first
    # another file of the same size and times, its changes between the samples (a frame re-delivered as a link to
    # another file, QA): its inode tells it apart
    import vom_plugin.engine.cache as cache

    fp = file_fingerprint(plate)
    real_stat = os.stat

    def other_inode(path: object, *a: object, **kw: object) -> object:
        import types

        st = real_stat(path, *a, **kw)
        fields = {k: getattr(st, k) for k in dir(st) if k.startswith("st_")}
        return types.SimpleNamespace(**{**fields, "st_ino": st.st_ino + 1})

    with pytest.MonkeyPatch.context() as m:
        m.setattr(cache.os, "stat", other_inode)
        assert file_fingerprint(plate) != fp


def test_a_stereo_plate_is_matted_in_its_default_view_and_said(shot_dir: Path, tmp_path: Path) -> None:
    """A single-part multi-view EXR (R, G, B the default view, right.R... the other): the default view was matted
    silently and the matte kept multiView, naming views whose channels it does not have."""
    (tmp_path / "plate").mkdir()
    for src in sorted((shot_dir / "plate").glob("p.*.exr")):
        rgb = oiio.ImageBuf(str(src)).get_pixels(oiio.FLOAT)[..., :3]
        spec = oiio.ImageSpec(rgb.shape[1], rgb.shape[0], 6, oiio.HALF)
        spec.channelnames = ("R", "G", "B", "right.R", "right.G", "right.B")
        spec.attribute("multiView", oiio.TypeDesc("string[2]"), ("left", "right"))
        out = oiio.ImageOutput.create(str(tmp_path / "plate" / src.name))
        assert out.open(str(tmp_path / "plate" / src.name), spec)
        assert out.write_image(np.ascontiguousarray(np.concatenate([rgb, rgb[:, ::-1]], -1))) and out.close()
    mono = render(shot(shot_dir, "mono_view"))
    r = render(shot(shot_dir, "stereo", plate=str(tmp_path / "plate" / "p.####.exr")))
    assert [w for w in r.warnings if "holds the views left, right: vom mattes the default one, 'left'" in w]
    assert not mono.warnings
    for a, b in zip(mono.paths, r.paths, strict=True):
        np.testing.assert_array_equal(read_alpha(a), read_alpha(b))
        assert oiio.ImageInput.open(str(b)).spec().getattribute("multiView") is None
    # a multi-part stereo file that lists no multiView, each part naming its view (QA: its first part's view was
    # matted without a word, whichever eye it was): said too, the view matted named
    (tmp_path / "parts").mkdir()
    for src in sorted((shot_dir / "plate").glob("p.*.exr")):
        rgb = oiio.ImageBuf(str(src)).get_pixels(oiio.FLOAT)[..., :3]
        specs = []
        for view in ("right", "left"):
            spec = oiio.ImageSpec(rgb.shape[1], rgb.shape[0], 3, oiio.HALF)
            spec.attribute("name", f"rgba.{view}")
            spec.attribute("view", view)
            specs.append(spec)
        out = oiio.ImageOutput.create(str(tmp_path / "parts" / src.name))
        assert out.open(str(tmp_path / "parts" / src.name), specs)
        assert out.write_image(np.ascontiguousarray(rgb[:, ::-1]))  # the right eye first
        assert out.open(str(tmp_path / "parts" / src.name), specs[1], "AppendSubimage")
        assert out.write_image(np.ascontiguousarray(rgb)) and out.close()
    r = render(shot(shot_dir, "parts", plate=str(tmp_path / "parts" / "p.####.exr")))
    assert [w for w in r.warnings if "holds the views right, left: vom mattes the default one, 'right'" in w], \
        r.warnings
    # a frame whose default view is the other eye (a patch written right-eye first), or a stereo frame among mono
    # ones: its R, G, B were the other eye's, matted mirrored, exit 0 (QA); refused, naming both frames and views
    mixed = tmp_path / "mixed"
    shutil.copytree(tmp_path / "plate", mixed)
    rgb = oiio.ImageBuf(str(shot_dir / "plate" / "p.0003.exr")).get_pixels(oiio.FLOAT)[..., :3]
    spec = oiio.ImageSpec(rgb.shape[1], rgb.shape[0], 6, oiio.HALF)
    spec.channelnames = ("R", "G", "B", "left.R", "left.G", "left.B")
    spec.attribute("multiView", oiio.TypeDesc("string[2]"), ("right", "left"))
    out = oiio.ImageOutput.create(str(mixed / "p.0003.exr"))
    assert out.open(str(mixed / "p.0003.exr"), spec)
    assert out.write_image(np.ascontiguousarray(np.concatenate([rgb[:, ::-1], rgb], -1))) and out.close()
    with pytest.raises(InputError, match=r"plate frame 3 \(.*p\.0003\.exr\) is read from its channels R, G, B "
                                         r"\(view 'right'\), and frame 1 \(.*\), the first this render reads, from "
                                         r"R, G, B \(view 'left'\)"):
        render(shot(shot_dir, "mixed", plate=str(mixed / "p.####.exr")))
    mono_plate = tmp_path / "mono_plate"
    shutil.copytree(shot_dir / "plate", mono_plate)
    shutil.copy(tmp_path / "parts" / "p.0003.exr", mono_plate / "p.0003.exr")
    with pytest.raises(InputError, match=r"plate frame 3 .* from its channels part 'rgba\.right': R, G, B "
                                         r"\(view 'right'\), and frame 1 .* from R, G, B: "):
        render(shot(shot_dir, "mono_mixed", plate=str(mono_plate / "p.####.exr")))
    assert not (shot_dir / "mixed").exists() and not (shot_dir / "mono_mixed").exists()


def test_a_stereo_roto_is_read_in_the_view_the_plate_is_matted_in(shot_dir: Path, tmp_path: Path) -> None:
    """A right-eye-default stereo plate (R, G, B the right eye's) and a stereo roto (A the left eye's shape, right.A
    the right eye's): the roto's default view was read, the right eye matted from the left eye's shape, exit 0
    (QA). The roto's view of the plate's is read, said; a roto without that view is refused; a stereo roto over a
    plate of one view is read in its default view, said."""
    (tmp_path / "plate").mkdir()
    for src in sorted((shot_dir / "plate").glob("p.*.exr")):
        rgb = oiio.ImageBuf(str(src)).get_pixels(oiio.FLOAT)[..., :3]
        _write_views(tmp_path / "plate" / src.name, np.concatenate([rgb, rgb[:, ::-1]], -1),
                     ("R", "G", "B", "left.R", "left.G", "left.B"), ("right", "left"))
    right = oiio.ImageBuf(str(shot_dir / "roto" / "r.0001.exr")).get_pixels(oiio.FLOAT)[..., :1]
    roto = _write_views(tmp_path / "roto.exr", np.concatenate([right[:, ::-1], right], -1), ("A", "right.A"),
                        ("left", "right"))
    mono = render(shot(shot_dir, "mono_eye", frames="1-3"))
    right_eye = shot(shot_dir, "right_eye", plate=str(tmp_path / "plate" / "p.####.exr"), keyframes={1: str(roto)},
                     frames="1-3")
    r = render(right_eye)
    assert f"roto {roto} holds the views left, right: vom reads its view 'right', the view of the plate it mattes " \
           "(channel right.A)" in r.warnings, r.warnings
    for a, b in zip(mono.paths, r.paths, strict=True):
        np.testing.assert_array_equal(read_alpha(a), read_alpha(b))
    # vom farm check recomputes the recipe with the view read (the roto's right.A), and the frames pass
    (tmp_path / "right_eye.yaml").write_text(right_eye.to_yaml())
    assert main(["farm", "check", str(tmp_path / "right_eye.yaml")]) == 0
    other = _write_views(tmp_path / "other.exr", np.concatenate([right, right], -1), ("A", "centre.A"),
                         ("left", "centre"))
    with pytest.raises(InputError, match=rf"roto {other} holds the views left, centre and not 'right', the view vom "
                                         r"mattes of the plate"):
        render(shot(shot_dir, "no_eye", plate=str(tmp_path / "plate" / "p.####.exr"), keyframes={1: str(other)},
                    frames="1-3"))
    assert not (shot_dir / "no_eye").exists()
    # over a plate of one view: the roto's default view, said
    r = render(shot(shot_dir, "mono_plate", keyframes={1: str(roto)}, frames="1-3"))
    assert f"roto {roto} holds the views left, right, the plate none: vom reads the roto's default view, 'left' " \
           "(channel A)" in r.warnings, r.warnings


def test_a_one_view_plate_reads_a_stereo_roto_in_its_view_said_once(shot_dir: Path, tmp_path: Path) -> None:
    """A right-eye plate written as OpenEXR's file of one view (R, G, B; view "right") counted as no view: a stereo
    roto's left eye was read over it ("the plate none"), exit 0; and each keyframe's stereo roto said its view in a
    note of its own (review). Its view is read, said once for the rotos; a roto of one view 'left' over it is
    refused, naming both views."""
    (tmp_path / "plate").mkdir()
    for src in sorted((shot_dir / "plate").glob("p.*.exr")):
        buf = oiio.ImageBuf(str(src))
        buf.specmod().attribute("view", "right")
        assert buf.write(str(tmp_path / "plate" / src.name))
    rotos = {}
    for kf in (1, N):
        right = oiio.ImageBuf(str(shot_dir / "roto" / f"r.{kf:04d}.exr")).get_pixels(oiio.FLOAT)[..., :1]
        rotos[kf] = str(_write_views(tmp_path / f"roto{kf}.exr", np.concatenate([right[:, ::-1], right], -1),
                                     ("A", "right.A"), ("left", "right")))
    mono = render(shot(shot_dir, "mono_two", keyframes={kf: str(shot_dir / "roto" / f"r.{kf:04d}.exr")
                                                         for kf in (1, N)}, frames="1-3"))
    plate = str(tmp_path / "plate" / "p.####.exr")
    r = render(shot(shot_dir, "one_view", plate=plate, keyframes=rotos, frames="1-3"))
    said = [w for w in r.warnings if "holds the views" in w or "hold the views" in w]
    assert said == [f"rotos {rotos[1]}, {rotos[N]} hold the views left, right: vom reads their view 'right', the "
                    f"view of the plate it mattes (channel right.A)"], r.warnings
    for a, b in zip(mono.paths, r.paths, strict=True):
        np.testing.assert_array_equal(read_alpha(a), read_alpha(b))
    left = tmp_path / "left.exr"
    buf = oiio.ImageBuf(str(shot_dir / "roto" / "r.0001.exr"))
    buf.specmod().attribute("view", "left")
    assert buf.write(str(left))
    with pytest.raises(InputError, match=rf"roto {left} is of the view 'left' \(its header's view\), and vom mattes "
                                         r"the plate's view 'right'"):
        render(shot(shot_dir, "left_roto", plate=plate, keyframes={1: str(left)}, frames="1-3"))
    assert not (shot_dir / "left_roto").exists()


def _write_views(path: Path, pixels: np.ndarray, channels: tuple[str, ...], views: tuple[str, ...]) -> Path:
    """A one-part multi-view EXR (``multiView`` listing ``views``, the default first)."""
    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], len(channels), oiio.HALF)
    spec.channelnames = channels
    spec.attribute("multiView", oiio.TypeDesc(f"string[{len(views)}]"), views)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec)
    assert out.write_image(np.ascontiguousarray(pixels, np.float32)) and out.close()
    return path


def test_plate_frames_with_nan_pixels_are_named_in_one_warning(shot_dir: Path, tmp_path: Path) -> None:
    """A renderer's dead pixels are repaired from their neighbours, and the render says which frames had them; a
    frame all NaN (a failed render of the plate) mattes as nothing, which the warning says (it said nothing)."""
    plates = tmp_path / "plate"
    shutil.copytree(shot_dir / "plate", plates)
    for f, dead in ((3, np.s_[:, :]), (5, np.s_[4:6, 7:10])):
        buf = oiio.ImageBuf(str(plates / f"p.{f:04d}.exr"))
        px = buf.get_pixels(oiio.FLOAT)
        px[dead] = np.nan
        _write(plates / f"p.{f:04d}.exr", px, ["R", "G", "B"])
    r = render(shot(shot_dir, "dead", plate=str(plates / "p.####.exr"), frames="1-6", cache=str(tmp_path / "c")))
    assert r.frames == [1, 2, 3, 4, 5, 6]
    warned = [w for w in r.warnings if "NaN or Inf" in w]
    assert len(warned) == 1, r.warnings
    assert warned[0].startswith("plate frames 3, 5 hold NaN or Inf pixels, filled from their neighbours (frame 3: "
                                f"all of its {H * W} pixels, {plates / 'p.0003.exr'})")
    assert "has no picture to matte" in warned[0]
    rgba = render(shot(shot_dir, "dead_rgba", plate=str(plates / "p.####.exr"), frames="4-5", output="rgba",
                       cache=str(tmp_path / "c")))
    assert [w for w in rgba.warnings if w.startswith("plate frame 5 holds NaN or Inf pixels, filled from their "
            "neighbours (frame 5: 0.0488% of its") and w.endswith("; the rgba output's RGB holds them filled too")], \
        rgba.warnings
    clean = render(shot(shot_dir, "clean", frames="1-2", cache=str(tmp_path / "c2")))
    assert not [w for w in clean.warnings if "NaN" in w or "blank" in w]
    assert not [w for w in r.warnings if "blank" in w]  # the NaN frame is said once, as NaN


def test_a_blank_plate_frame_mid_shot_is_said(shot_dir: Path, tmp_path: Path) -> None:
    """A QA pass: a failed render's black frame among the plate's frames came out as an empty matte without a word
    (an all-NaN frame was said)."""
    plates = tmp_path / "plate"
    shutil.copytree(shot_dir / "plate", plates)
    px = oiio.ImageBuf(str(plates / "p.0003.exr")).get_pixels(oiio.FLOAT)
    _write(plates / "p.0003.exr", np.zeros_like(px), ["R", "G", "B"])
    nearly = np.zeros_like(px)
    nearly[H - 1, W - 1] = 0.5  # one lit pixel, off the sampled grid: a picture, however small
    _write(plates / "p.0005.exr", nearly, ["R", "G", "B"])
    r = render(shot(shot_dir, "blank", plate=str(plates / "p.####.exr"), frames="1-6", cache=str(tmp_path / "c")))
    said = [w for w in r.warnings if "blank" in w]
    assert said == [f"plate frame 3 is blank (every pixel 0; {plates / 'p.0003.exr'}): no picture to matte there: "
                    "check the plate's render (a failed or missing frame?)"], r.warnings
    # a "missing frame" card of one colour (review: only a grey one was found)
    _write(plates / "p.0004.exr", np.broadcast_to(np.float32([0, 0.5, 0]), px.shape).copy(), ["R", "G", "B"])
    _write(plates / "p.0003.exr", px, ["R", "G", "B"])
    r = render(shot(shot_dir, "card", plate=str(plates / "p.####.exr"), frames="1-6", cache=str(tmp_path / "c")))
    assert [w for w in r.warnings if w.startswith("plate frame 4 is blank (every pixel (0, 0.5, 0); ")], r.warnings


def test_a_first_keyframe_on_a_dead_frame_is_refused_and_a_black_one_warned(shot_dir: Path, tmp_path: Path) -> None:
    """A QA pass: a keyframe on an all-NaN frame (a failed render) rendered the whole shot empty, exit 0, with only
    the dead-pixel warning; a keyframe on a nearly black frame (a fade up) was brought up 64x without a word."""
    plates = tmp_path / "plate"
    shutil.copytree(shot_dir / "plate", plates)
    px = oiio.ImageBuf(str(plates / "p.0001.exr")).get_pixels(oiio.FLOAT)
    _write(plates / "p.0001.exr", np.full_like(px, np.nan), ["R", "G", "B"])
    out = tmp_path / "dead"
    with pytest.raises(InputError, match=r"^plate frame 1 \(.*p\.0001\.exr\), the first keyframe's, is all NaN or Inf "
                                         r"pixels: it has no picture to start the matte from"):
        render(shot(shot_dir, "dead", plate=str(plates / "p.####.exr"), frames="1-3", out=str(out / "a.####.exr"),
                    cache=str(tmp_path / "c")))
    assert not out.exists()
    # a picture left (an unpremultiplied CG element, NaN where its alpha is 0): rendered, as before (review)
    half = px.copy()
    half[:, : W * 2 // 3] = np.nan
    _write(plates / "p.0001.exr", half, ["R", "G", "B"])
    assert render(shot(shot_dir, "cg", plate=str(plates / "p.####.exr"), frames="1-2", cache=str(tmp_path / "c"))
                  ).frames == [1, 2]
    _write(plates / "p.0001.exr", px * 1e-4, ["R", "G", "B"])
    r = render(shot(shot_dir, "dark", plate=str(plates / "p.####.exr"), frames="1-2", cache=str(tmp_path / "c")))
    assert [w for w in r.warnings if "the first keyframe's, from which the shot's exposure is set, is nearly black: "
            "the network sees the shot 64x brighter" in w], r.warnings
    clean = render(shot(shot_dir, "clean2", frames="1-2", cache=str(tmp_path / "c")))
    assert not [w for w in clean.warnings if "nearly black" in w]


def test_a_plate_in_absolute_units_is_brought_down_to_the_networks_exposure() -> None:
    """A QA pass: a CG plate 1000x brighter (absolute units) was brought down 64x at most, blown out, and matted
    empty, exit 0. Its gain is the plain plate's over 1000."""
    from vom_plugin.io.color import exposure_gain

    rgb = np.random.default_rng(0).uniform(0, 1, (64, 64, 3)).astype(np.float32)
    assert exposure_gain(rgb * 1000, "lin_rec709") == pytest.approx(exposure_gain(rgb, "lin_rec709") / 1000, rel=1e-4)
    assert exposure_gain(rgb * 1e4, "lin_rec709") == pytest.approx(exposure_gain(rgb, "lin_rec709") / 1e4, rel=1e-4)


def test_a_render_stopped_by_a_damaged_plate_frame_resumes_after_the_frames_it_wrote(
        shot_dir: Path, reference: dict[str, np.ndarray], tmp_path: Path) -> None:
    """The error said "the next render resumes from the cache", but no memory state was saved on that path (only
    every VOM_STATE_INTERVAL_S, on a cancel and at a chunk's end): the next render computed every step again (QA).
    The steps done are now kept as a cancel keeps them, and the render after the plate is mended goes on from
    there, to the uninterrupted render's pixels."""
    root = tmp_path / "damaged"
    shutil.copytree(shot_dir / "plate", root / "plate")
    bad = root / "plate" / "p.0006.exr"
    good = bad.read_bytes()
    bad.write_bytes(good[: len(good) * 2 // 3])
    kw = {"plate": str(root / "plate" / "p.####.exr"), "out": str(root / "out" / "a.####.exr"),
          "cache": str(root / "cache")}
    with pytest.raises(InputError, match=r"p\.0006\.exr is damaged or truncated.*the next render resumes"):
        render(shot(shot_dir, "damaged", **kw))
    bad.write_bytes(good)
    r = render(shot(shot_dir, "damaged", **kw))
    assert r.cache["steps_computed"] == N - 5, r.cache  # frames 6.. only: 1-5 were kept with their state
    assert all(np.array_equal(read_alpha(p), reference[p.name]) for p in r.paths)


def test_a_roto_smaller_than_a_working_pixel_is_refused_as_an_empty_one_is(tmp_path: Path) -> None:
    """A 2x2 roto on a 512x256 plate at working size 128 (a pixel of the network is 4x4 of the plate): the object
    rendered with exit 0 and an alpha never above 0.08, with no word (QA); an empty roto was refused."""
    from test_io_support import write_image

    for f in (1, 2):
        write_image(tmp_path / f"p.{f:04d}.exr", np.full((256, 512, 3), 0.3, np.float32))
    speck = np.zeros((256, 512), np.float32)
    speck[100:102, 200:202] = 1.0
    write_image(tmp_path / "speck.exr", speck[..., None], ("A",))
    s = Shot(plate=str(tmp_path / "p.####.exr"), out=str(tmp_path / "o" / "a.####.exr"),
             keyframes={1: str(tmp_path / "speck.exr")}, working_size=128, cache=None)
    with pytest.raises(InputError, match=r"keyframes: the roto of keyframe 1 \(.*speck\.exr\) covers 4 plate pixel"
                                         r"\(s\), less than one pixel of the network's 128x64 \(working_size 128\)"):
        render(s)
    assert not (tmp_path / "o").exists()


def test_a_roto_saved_while_the_render_reads_it_is_refused_and_poisons_nothing(
        shot_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: the roto's pixels, its cache fingerprint and the outputs' recipe were three reads of the file; one saved
    between them gave frames of the old roto under the new one's cache addresses and recipe, and every later render
    of the new roto read those frames back."""
    from vom_plugin.engine import prepare

    roto = tmp_path / "r.0001.exr"
    shutil.copy(shot_dir / "roto" / "r.0001.exr", roto)
    new = tmp_path / "new.exr"
    shutil.copy(shot_dir / "roto" / "wide.0001.exr", new)
    real = prepare._read_roto

    def saved_after_the_read(*args, **kw):  # type: ignore[no-untyped-def]
        pixels = real(*args, **kw)
        os.replace(new, roto)  # the artist's save, as a bake does it: a new file renamed over the old
        return pixels

    monkeypatch.setattr(prepare, "_read_roto", saved_after_the_read)
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match=rf"roto {re.escape(str(roto))} changed while this render read it \(saved "
                                         r"meanwhile\): nothing was rendered"):
        render(shot(shot_dir, "saved", keyframes={1: str(roto)}, cache=str(cache),
                    out=str(tmp_path / "o" / "a.####.exr")))
    assert not (tmp_path / "o").exists()
    monkeypatch.undo()
    again = render(shot(shot_dir, "again", keyframes={1: str(roto)}, cache=str(cache),
                        out=str(tmp_path / "again" / "a.####.exr")))
    clean = render(shot(shot_dir, "clean", keyframes={1: str(roto)}, cache=str(tmp_path / "clean_cache"),
                        out=str(tmp_path / "clean" / "a.####.exr")))
    assert again.cache["steps_cached"] == 0
    for a, b in zip(again.files, clean.files, strict=True):
        assert np.array_equal(read_alpha(a), read_alpha(b))



def test_an_empty_keyframe_matte_is_said_as_empty(tmp_path: Path) -> None:
    """QA: a plate of one flat colour under the demo's roto came out with no matte (0.002 at most) and the warning
    said the matte "lies mostly off its roto (0% overlap, 0% of the matte inside it)": there is no matte to lie
    anywhere. Said as it is, naming the roto and how much of the frame it covers."""
    demo = Path(__file__).resolve().parents[1] / "vom_plugin" / "data" / "demo"
    (tmp_path / "flat").mkdir()
    _write(tmp_path / "flat" / "p.0001.exr", np.full((270, 480, 3), 0.18, np.float32), ["R", "G", "B"])
    r = render(Shot(plate=str(tmp_path / "flat" / "p.####.exr"), keyframes={1: str(demo / "roto.0001.exr")},
                    out=str(tmp_path / "o" / "a.####.exr"), working_size=256, colorspace="lin_rec709", device="cpu",
                    cache=str(tmp_path / "cache")))
    assert read_alpha(r.files[0]).max() < 0.1  # the case: no matte at all
    said = [w for w in r.warnings if w.startswith("keyframe 1:")]
    assert len(said) == 1 and said[0].startswith("keyframe 1: its matte is empty (alpha ") and \
        f"where its roto ({demo / 'roto.0001.exr'}) covers 4.3% of the frame" in said[0], r.warnings


def test_a_roto_of_another_frame_is_a_warning_of_the_render(tmp_path: Path) -> None:
    """QA: the demo's roto of frame 1 given as keyframe 12 (the object has moved) rendered without a word, the matte
    of frame 12 nowhere on its roto. The shipped weights' matte of a keyframe follows its roto; said where it does
    not. (An untrained network's follows nothing: not said, as the other tests here show.)"""
    demo = Path(__file__).resolve().parents[1] / "vom_plugin" / "data" / "demo"
    said = "its matte lies mostly off its roto"
    for kf, want in ((12, True), (1, False)):
        r = render(Shot(plate=str(demo / "plate.####.exr"), keyframes={kf: str(demo / "roto.0001.exr")},
                        frames=[kf], out=str(tmp_path / f"kf{kf}" / "a.####.exr"), working_size=256,
                        colorspace="lin_rec709", device="cpu", cache=str(tmp_path / "cache")))
        got = [w for w in r.warnings if said in w]
        assert bool(got) == want, r.warnings
        if want:
            assert got[0].startswith(f"keyframe 12: {said} (") and f"is the roto ({demo / 'roto.0001.exr'}) drawn " \
                                                                  f"on frame 12?" in got[0]
            # what each figure is of, so that "0% ... 43%" reads as no contradiction (QA)
            assert re.search(r"\(its solid part, alpha 0\.5 and over, shares \d+% of its area with the roto; \d+% of "
                             r"all its alpha lies inside the roto\)", got[0]), got[0]


def test_an_output_folder_removed_mid_render_fails_it_and_is_not_made_again(shot_dir: Path, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: the output folder removed while a render wrote into it was made again at the next frame's write, and the
    render ended "400 frames written", exit 0, over the frames after the removal alone (or failed, saying the frames
    written before it were complete, as the removal fell). Now it fails at the next write, naming the folder, and
    says which frames are on disk: none."""
    out = tmp_path / "o" / "a.####.exr"
    seen: list[int] = []

    def remove_after_the_first(event: dict) -> None:
        if event.get("event") == "frame":
            seen.append(event["frame"])
            if len(seen) == 1:  # moved away whole, as `mv o trash; rm -rf trash` does (rmtree races the writes)
                out.parent.rename(tmp_path / "trash")

    # (removed between two writes, or as the output thread wrote the next frame: it says its file then)
    with pytest.raises(InputError, match=r"(output folder .*/o was removed while this render wrote into it, with the "
                                         r"frames it had written there; render again once the folder is where it "
                                         r"should be|output file .*/o/a\.000[23]\.exr could not be written: No such "
                                         r"file or directory); found while rendering: [12] of 3 frames were written "
                                         r"\(none of them on disk now; ") as e:
        render(shot(shot_dir, "removed", out=str(out), frames=[1, 2, 3], cache=str(tmp_path / "c")),
               progress=remove_after_the_first)
    assert not out.parent.exists()
    assert e.value.render_result.frames == []  # type: ignore[attr-defined]
    # removed and made again at once (by hand, or by another render's start, which then found no claim there): the
    # render went on into the new folder and said "done" (review)
    from vom_plugin import io as vio

    real = vio.write_alpha

    def swapped_before_the_second(path: object, *a: object, **k: object) -> None:  # on the output thread, after the
        if str(path).endswith("a.0002.exr"):  # frame's own check of its folder: the guard as it takes its name says it
            out.parent.rename(tmp_path / "trash2")
            out.parent.mkdir()
        real(path, *a, **k)

    monkeypatch.setattr(vio, "write_alpha", swapped_before_the_second)
    with pytest.raises(InputError, match=r"output folder .*/o was removed while this render wrote into it, with the "
                                         r"frames it had written there \(the folder there now is another\); "):
        render(shot(shot_dir, "removed", out=str(out), frames=[1, 2, 3], cache=str(tmp_path / "c")))
    assert sorted(p.name for p in out.parent.iterdir()) == []  # the new folder is left as it was made


def test_a_render_of_frames_another_render_is_writing_is_refused_before_any_work(shot_dir: Path,
                                                                                   tmp_path: Path) -> None:
    """QA: a farm task of the old roto still writing while the artist rendered the new one into the same output: both
    said done, and the sequence was the new roto's up to frame 288 and the old one's after. The second render is
    refused before any frame, naming the first; once that ends, it renders, and leaves no claim behind."""
    from test_output_claim import _claims, _holder

    out = tmp_path / "o" / "a.####.exr"
    out.parent.mkdir()
    proc = _holder(out, 1, 3)
    try:
        with pytest.raises(InputError, match=r"frames 1-3 are being written by another render \(shot farm\.yaml"):
            render(shot(shot_dir, "claimed", out=str(out), frames=[1, 2, 3], cache=str(tmp_path / "c")))
        assert [p.name for p in out.parent.iterdir() if not p.name.startswith(".vom-writing.")] == []
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)
    seen: list[list[str]] = []
    result = render(shot(shot_dir, "claimed", out=str(out), frames=[1, 2, 3], cache=str(tmp_path / "c")),
                    progress=lambda e: seen.append(_claims(out.parent)) if e["event"] == "frame" else None)
    assert result.frames == [1, 2, 3] and all(len(c) == 1 for c in seen)  # held while it wrote
    assert _claims(out.parent) == []
    # it names itself by its plate and roto (the artist's render and a farm task's differ by the roto alone: QA)
    from vom_plugin.engine.runner import _described

    assert _described(shot(shot_dir, "claimed")) == (f"plate {shot_dir / 'plate' / 'p.####.exr'}, roto "
                                                      f"{shot_dir / 'roto' / 'r.0001.exr'}")


def test_a_warning_is_an_event_as_it_arises(tmp_path: Path) -> None:
    """QA: warnings came only with the closing event, so a host or a log showed "its matte lies mostly off its roto"
    after the whole shot had rendered, where the artist could have stopped it at the keyframe. Each is a ``warning``
    event as it arises (before the keyframe's own frame event), once, and ``done`` lists it again."""
    demo = Path(__file__).resolve().parents[1] / "vom_plugin" / "data" / "demo"
    events: list[dict] = []
    r = render(Shot(plate=str(demo / "plate.####.exr"), keyframes={12: str(demo / "roto.0001.exr")},
                    frames="12-15", out=str(tmp_path / "o" / "a.####.exr"), working_size=256,
                    colorspace="lin_rec709", device="cpu", cache=str(tmp_path / "cache")), progress=events.append)
    kinds = [e["event"] for e in events]
    said = [e["message"] for e in events if e["event"] == "warning"]
    off = [w for w in r.warnings if "its matte lies mostly off its roto" in w]
    assert len(off) == 1 and said == r.warnings == events[-1]["warnings"], (said, r.warnings)
    first_frame = next(i for i, e in enumerate(events) if e["event"] == "frame")
    assert events[first_frame]["frame"] == 12
    assert kinds.index("warning") < first_frame, kinds
    assert kinds[0] == "start" and kinds[-1] == "done"


def test_a_lite2_render_is_keyed_and_stamped_apart_from_what_the_old_batchnorm_fold_made(
        shot_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before session 56 lite2's "same"-windowed stride-2 convolutions became plain ones when BatchNorm was folded:
    its renders were another network's (review). What they cached must not be read or continued from, and what they
    wrote must not pass `vom farm check` as current (second review): their vom:settings lack the revision."""
    import json

    import torch

    from vom_plugin.engine import models
    from vom_plugin.engine.weights import save_weights
    from vom_plugin.model import build_model

    torch.manual_seed(0)
    save_weights(build_model("lite2"), shot_dir / "lite2.safetensors")

    def stamp(r: object) -> dict:
        return json.loads(oiio.ImageBuf(str(r.paths[0])).spec().getattribute("vom:settings"))  # type: ignore[attr-defined]

    with monkeypatch.context() as m:  # the addresses and stamps as before the revision
        m.setattr(models, "network_revision", lambda config: {})
        old = render(shot(shot_dir, "lite2", model=str(shot_dir / "lite2.safetensors"), frames="1-2"))
    assert old.cache["steps_computed"] == 2 and "lite2_fold" not in stamp(old)
    again = render(shot(shot_dir, "lite2", model=str(shot_dir / "lite2.safetensors"), frames="1-2"))
    assert again.cache["steps_computed"] == 2 and again.cache["steps_cached"] == 0, again.cache
    assert stamp(again)["lite2_fold"] == 2
    assert models.network_revision("lite") == {} == models.network_revision("full")  # their caches stay valid


FROM_A_DELETED_FOLDER = """
import os, sys, tempfile
folder = tempfile.mkdtemp()
os.chdir(folder)
inode = os.stat(".").st_ino
os.rmdir(folder)
from vom_plugin import Shot, render
d, out = sys.argv[1], sys.argv[2]
result = render(Shot(plate=d + "/plate/p.####.exr", keyframes={1: d + "/roto/r.0001.exr"}, frames="1-2", out=out,
                     model=d + "/model.safetensors", working_size=128, device="cpu", cache=sys.argv[3]))
try:
    os.getcwd()
    print("a working folder again")
except FileNotFoundError:
    print(len(result.frames), os.stat(".").st_ino == inode)
"""


def test_a_render_from_a_deleted_working_folder_loads_torch_and_stays_there(shot_dir: Path, tmp_path: Path) -> None:
    """QA: torch's import from a working folder that had been deleted ended the process ("Intel oneMKL FATAL ERROR:
    Cannot load libtorch_cpu.so"): a daemon's render with absolute paths killed the daemon, and `vom render` exited 2
    naming nothing. torch loads from / and the process is put back in its (deleted) folder."""
    r = subprocess.run([sys.executable, "-c", FROM_A_DELETED_FOLDER, str(shot_dir), str(tmp_path / "o" / "a.####.exr"),
                        str(tmp_path / "cache")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "2 True", r.stdout + r.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.0001.exr", "a.0002.exr"]
