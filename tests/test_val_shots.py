"""Validation shots (``vom clips shots``): a rendered library exported as shot folders in the test shots' layout,
read back by the benchmark and by the selection set (``--val-shots`` in training and --calibrate)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train_clips import _write_exr, make_library
from test_train_loop import tiny  # noqa: F401  (the fixture: a stand-in network for the training test)

from vom_plugin.cli import main
from vom_plugin.engine.weights import load_model, read_weights_metadata, save_weights
from vom_plugin.errors import InputError
from vom_plugin.model import build_model
from vom_plugin.train import clips as C
from vom_plugin.train import val_shots as VS
from vom_plugin.train import validate as V
from vom_plugin.train.backgrounds import BackgroundBank


def _read(path: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(str(path))
    return buf.get_pixels(oiio.FLOAT), tuple(buf.spec().channelnames)


def _library(tmp_path: Path) -> Path:
    """Two clips of 6 frames; in the second the object is out of view on its first two frames."""
    root = make_library(tmp_path / "lib", n=2, frames=6, size=48, occluder_in=())
    for f in (1, 2):
        _write_exr(root / C.clip_name(1) / f"rgba.{f:04d}.exr", np.zeros((48, 48, 4), np.float32))
    return root


def test_export_writes_whole_shot_folders_in_the_test_shots_layout(tmp_path: Path):
    root = _library(tmp_path)
    dest = tmp_path / "shots"
    r = VS.export_shots(root, dest, backgrounds=BackgroundBank([]), log=lambda m: None)
    assert (r["written"], r["kept"], r["skipped"]) == (2, 0, [])
    # nothing partial left; beside the shots, the record of their backgrounds
    assert sorted(p.name for p in dest.iterdir()) == [C.clip_name(0), C.clip_name(1), "shots.json"]
    record = json.loads((dest / "shots.json").read_text())
    assert record["backgrounds"] == r["backgrounds"] == BackgroundBank([]).signature()
    assert set(record["shots"]) == {C.clip_name(0), C.clip_name(1)}
    assert all(v.startswith("scikit-image:") for v in record["shots"].values())
    for name in (C.clip_name(0), C.clip_name(1)):
        files = sorted(p.name for p in (dest / name).iterdir())
        assert files == [*(f"gt.{i:04d}.exr" for i in range(1, 7)), *(f"plate.{i:04d}.exr" for i in range(1, 7)),
                         "roto.0001.exr"]
        plate, ch = _read(dest / name / "plate.0001.exr")
        assert plate.shape == (48, 48, 3) and ch == ("R", "G", "B") and np.isfinite(plate).all()
        gt, ch = _read(dest / name / "gt.0001.exr")
        assert gt.shape == (48, 48, 1) and ch == ("A",) and 0.0 <= gt.min() and gt.max() <= 1.0
        roto, _ = _read(dest / name / "roto.0001.exr")
        assert set(np.unique(roto)) <= {0.0, 1.0}
        solid = gt[..., 0] > 0.99
        assert solid.any() and roto[..., 0][solid].mean() > 0.95  # the roto covers the object's first frame
        assert roto.mean() < 0.5
    # the late object's shot starts where it is in view (its source frame 3) and plays on forth and back
    late = [float(_read(dest / C.clip_name(1) / f"gt.{i:04d}.exr")[0].sum()) for i in range(1, 7)]
    assert all(v > 0 for v in late)


def test_a_shot_starts_on_the_first_frame_that_shows_the_object():
    alpha = np.zeros((6, 40, 40), np.float32)
    alpha[2:, 10:30, 10:30] = 1.0
    assert VS.first_in_view(alpha) == 2
    alpha[1, 0, 0] = 1.0  # a speck is not the object
    assert VS.first_in_view(alpha) == 2
    alpha[1, 10:20, 10:30] = 1.0  # half of it is
    assert VS.first_in_view(alpha) == 1
    assert VS.first_in_view(np.zeros((3, 8, 8), np.float32)) is None
    assert C.frames_from(6, 2, 6) == [2, 3, 4, 5, 4, 3]


def test_export_is_deterministic_resumable_and_atomic(tmp_path: Path, monkeypatch):
    root = _library(tmp_path)
    bank = BackgroundBank([])
    a, b = tmp_path / "a", tmp_path / "b"
    VS.export_shots(root, a, backgrounds=bank, log=lambda m: None)
    VS.export_shots(root, b, backgrounds=bank, log=lambda m: None)
    for p in sorted(a.rglob("*.exr")):
        assert np.array_equal(_read(p)[0], _read(b / p.relative_to(a))[0]), p
    before = {p: p.stat().st_mtime_ns for p in a.rglob("*.exr")}
    r = VS.export_shots(root, a, backgrounds=bank, log=lambda m: None)
    assert (r["written"], r["kept"]) == (0, 2)
    assert {p: p.stat().st_mtime_ns for p in a.rglob("*.exr")} == before

    real = VS.write_exr
    calls = []

    def failing(path: Path, pixels: np.ndarray, channels: tuple[str, ...]) -> None:
        calls.append(path.name)
        if path.name == "gt.0003.exr":
            raise OSError("disk full")
        real(path, pixels, channels)

    monkeypatch.setattr(VS, "write_exr", failing)
    c = tmp_path / "c"
    with pytest.raises(OSError, match="disk full"):
        VS.export_shots(root, c, backgrounds=bank, log=lambda m: None)
    assert "gt.0003.exr" in calls and list(c.iterdir()) == []  # neither the shot nor its partial folder


def test_exported_shots_load_in_the_benchmark_and_the_selection_set(tmp_path: Path):
    from vom_plugin.eval.clips import iter_clips

    dest = tmp_path / "shots"
    VS.export_shots(_library(tmp_path), dest, backgrounds=BackgroundBank([]), log=lambda m: None)
    clips = list(iter_clips(f"shots:{dest}"))
    assert [c.name for c in clips] == [C.clip_name(0), C.clip_name(1)]
    assert clips[0].plate.shape == (6, 48, 48, 3) and clips[0].roto is not None
    sets = V.validation_shots(dest)
    assert len(sets) == 2 and tuple(sets[0].frames.shape) == (6, 3, 48, 48) and sets[0].gt.shape == (6, 48, 48)
    assert np.array_equal(sets[0].gt, clips[0].gt)
    assert V.describe_sets({"val-shots": sets}) == "val-shots(2 clips, 6 frames, 48 px)"
    # a hidden folder (what a killed export leaves: a shot written but not yet renamed) is never scored

    shutil.copytree(dest / C.clip_name(0), dest / f".{C.clip_name(2)}.partial")
    assert [c.name for c in iter_clips(f"shots:{dest}")] == [C.clip_name(0), C.clip_name(1)]
    assert len(V.validation_shots(dest)) == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"--val-shots .*empty: no shot folders"):
        V.validation_shots(tmp_path / "empty")
    (dest / C.clip_name(1) / "roto.0001.exr").unlink()
    with pytest.raises(InputError, match=rf"{C.clip_name(1)}: no roto of its first frame \(roto.0001.exr\)"):
        V.validation_shots(dest)


def test_cli_clips_shots_and_its_errors(tmp_path: Path, capsys, monkeypatch):
    import vom_plugin.train.backgrounds as B

    monkeypatch.setattr(B, "default_bank", lambda: BackgroundBank([]))
    root = _library(tmp_path)
    assert main(["clips", "shots", "--data-dir", str(root)]) == 2
    assert "needs --to DIR" in capsys.readouterr().err
    assert main(["clips", "shots", "--data-dir", str(root), "--to", str(root)]) == 2
    assert "is the library itself" in capsys.readouterr().err
    (tmp_path / "nolib").mkdir()
    assert main(["clips", "shots", "--data-dir", str(tmp_path / "nolib"), "--to", str(tmp_path / "x")]) == 2
    assert "no finished clips to export" in capsys.readouterr().err
    (tmp_path / "afile").write_text("keep me")
    assert main(["clips", "shots", "--data-dir", str(root), "--to", str(tmp_path / "afile")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "keep me"
    assert main(["clips", "shots", "--data-dir", str(root), "--to", str(tmp_path / "out")]) == 0
    assert "wrote 2 shots (0 already there, 0 skipped)" in capsys.readouterr().out


def test_calibrate_scores_the_validation_shots_with_the_other_sets(tmp_path: Path, capsys, tiny_calibration):
    dest = tmp_path / "shots"
    VS.export_shots(_library(tmp_path), dest, backgrounds=BackgroundBank([]), log=lambda m: None)
    torch.manual_seed(3)
    src = tmp_path / "w.safetensors"
    save_weights(build_model("lite"), src)
    args = tiny_calibration(src, frames=3)
    assert main([*args, "--to", str(tmp_path / "cal.safetensors"), "--val-shots", str(dest)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("lo ")]
    assert rows and all(" | val-shots " in line for line in rows)
    meta = read_weights_metadata(tmp_path / "cal.safetensors")
    assert meta["levels_chosen_on"] == "synthetic(2 clips, 3 frames, 32 px)+val-shots(2 clips, 6 frames, 48 px)"
    assert load_model(tmp_path / "cal.safetensors") is not None
    (tmp_path / "none").mkdir()
    assert main([*args, "--to", str(tmp_path / "x.safetensors"), "--val-shots", str(tmp_path / "none")]) == 2
    assert "no shot folders" in capsys.readouterr().err and not (tmp_path / "x.safetensors").exists()


@pytest.mark.usefixtures("tiny")
def test_training_validates_the_validation_shots_and_chooses_on_them(tmp_path: Path, monkeypatch):
    """--val-shots in training: the shots are validated beside the synthetic sets, logged as val-shots/<clip>,
    and join the score best.pt is chosen on; --shots (the test shots) never do."""
    import test_train_loop as TL

    from vom_plugin.train import loop as L

    dest = tmp_path / "shots"
    VS.export_shots(_library(tmp_path), dest, backgrounds=BackgroundBank([]), log=lambda m: None)
    scores: list[float] = []
    real = L.val_score
    monkeypatch.setattr(L, "val_score", lambda m: scores.append(real(m)) or scores[-1])
    logs: list[str] = []
    L.train(TL._args(tmp_path / "run", dest, val_shots=dest), log=logs.append)
    sets = {r["set"] for r in TL._rows(tmp_path / "run" / "val.csv")}
    assert {f"val-shots/{C.clip_name(0)}", "val-shots/mean", f"shots/{C.clip_name(0)}", "synth/mean"} <= sets
    assert len(scores) == 3  # synthetic, hard and the validation shots; the reported --shots are not scored
    assert L.load_checkpoint(tmp_path / "run" / "best.pt")["best"] == pytest.approx(sum(scores))
    assert any("| val-shots mad=" in m for m in logs)
    (tmp_path / "none").mkdir()
    with pytest.raises(InputError, match="--val-shots .*none: no shot folders"):
        L.train(TL._args(tmp_path / "run2", dest, val_shots=tmp_path / "none"), log=lambda m: None)


def test_shots_record_their_backgrounds_and_a_folder_never_mixes_two_sets(tmp_path: Path):
    """The photographs a shot is composited over come from scikit-image plus whatever wallpaper packages the
    machine has: rebuilt elsewhere, the same command makes other pictures (the validation set of sessions 16-22
    scored 32.4 where a rebuild without the wallpapers scored 40.6). The folder records its set, refuses to
    grow with another, and each shot names its photograph."""
    import cv2

    root = _library(tmp_path)
    photos = []
    for i in range(3):
        f = tmp_path / "bg" / f"p{i}.png"
        f.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(f), np.full((330, 400, 3), 40 * (i + 1), np.uint8))
        photos.append(f)
    builtin_only, with_files = BackgroundBank([]), BackgroundBank(photos)
    assert builtin_only.signature()["digest"] != with_files.signature()["digest"]
    assert with_files.signature()["files"] == 3
    dest = tmp_path / "shots"
    logs: list[str] = []
    VS.export_shots(root, dest, backgrounds=with_files, log=logs.append)
    assert any("+ 3 files" in m and with_files.signature()["digest"] in m for m in logs)
    record = json.loads((dest / "shots.json").read_text())
    assert record["backgrounds"]["digest"] == with_files.signature()["digest"]
    known = {f"scikit-image:{i}" for i in range(len(with_files.builtin))} | {str(p) for p in photos}
    assert set(record["shots"].values()) <= known
    # one shot more, over another set: refused, nothing written, the record unchanged
    shutil.rmtree(dest / C.clip_name(1))
    before = (dest / "shots.json").read_text()
    with pytest.raises(InputError, match=r"another set of background photographs .* 3 files; here .* \+ 0"):
        VS.export_shots(root, dest, backgrounds=builtin_only, log=lambda m: None)
    assert not (dest / C.clip_name(1)).exists() and (dest / "shots.json").read_text() == before
    # the same set: the shot is made again, and equal to the one made first
    r = VS.export_shots(root, dest, backgrounds=BackgroundBank(photos), log=lambda m: None)
    assert (r["written"], r["kept"]) == (1, 1)
    assert json.loads((dest / "shots.json").read_text())["shots"] == record["shots"]
    # a folder exported before the record existed: its shots are listed as of unknown backgrounds
    legacy = tmp_path / "legacy"
    VS.export_shots(root, legacy, backgrounds=builtin_only, log=lambda m: None)
    (legacy / "shots.json").unlink()
    shutil.rmtree(legacy / C.clip_name(1))
    logs.clear()
    VS.export_shots(root, legacy, backgrounds=builtin_only, log=logs.append)
    assert any("before vom recorded their backgrounds" in m for m in logs)
    rec = json.loads((legacy / "shots.json").read_text())
    assert rec["unrecorded"] == [C.clip_name(0)] and list(rec["shots"]) == [C.clip_name(1)]
    (legacy / "shots.json").write_text("{not json")
    with pytest.raises(InputError, match="unreadable record of the shots' backgrounds"):
        VS.export_shots(root, legacy, backgrounds=builtin_only, log=lambda m: None)


def test_benchmark_names_the_background_set_of_the_shots_it_scores(tmp_path: Path, capsys):
    dest = tmp_path / "shots"
    bank = BackgroundBank([])
    VS.export_shots(_library(tmp_path), dest, backgrounds=bank, log=lambda m: None)
    assert main(["benchmark", "--data", f"shots:{dest}", "--methods", "static", "--json"]) == 0
    settings = json.loads(capsys.readouterr().out)["settings"]
    assert settings["backgrounds"] == bank.signature()["digest"]
    (dest / "shots.json").unlink()  # shots from elsewhere: nothing to name
    assert main(["benchmark", "--data", f"shots:{dest}", "--methods", "static", "--json"]) == 0
    assert "backgrounds" not in json.loads(capsys.readouterr().out)["settings"]


def test_an_export_never_merges_into_or_deletes_files_of_another_tool(tmp_path: Path):
    # a QA pass: another tool's shots.json was merged into (its keys lost), a hidden folder of its name deleted
    root = _library(tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    theirs = '{"tool": "other", "shots": {"plateA": "v003"}}'
    (dest / "shots.json").write_text(theirs)
    with pytest.raises(InputError, match="not vom's record of the shots' backgrounds"):
        VS.export_shots(root, dest, backgrounds=BackgroundBank([]), log=lambda m: None)
    assert (dest / "shots.json").read_text() == theirs
    (dest / "shots.json").unlink()
    from vom_plugin.train.clips import ClipLibrary

    name = ClipLibrary(root).clips[0].name
    (dest / f".{name}.partial" / "x").mkdir(parents=True)
    (dest / f".{name}.partial" / "x" / "f.txt").write_text("keep")
    with pytest.raises(InputError, match="holds files an export did not write"):
        VS.export_shots(root, dest, backgrounds=BackgroundBank([]), log=lambda m: None)
    assert (dest / f".{name}.partial" / "x" / "f.txt").read_text() == "keep"
