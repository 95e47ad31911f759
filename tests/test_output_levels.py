"""Output levels: the calibrated black and white points of the published alpha, chosen on validation clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vom_plugin.cli import main
from vom_plugin.engine.passes import run_clip
from vom_plugin.engine.weights import load_model, read_weights_metadata, save_weights
from vom_plugin.errors import InputError
from vom_plugin.model import build_model
from vom_plugin.train import validate as V


def _file_without_levels(path: Path) -> Path:
    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    save_weights(build_model("lite"), path)
    state = load_file(str(path))
    meta = read_weights_metadata(path)
    del state["output_levels"]
    save_file(state, str(path), metadata=meta)
    return path


def test_publish_maps_black_and_white_points_and_memory_keeps_the_raw_alpha():
    m = build_model("lite")
    a = torch.tensor([0.0, 0.05, 0.1, 0.475, 0.85, 0.9, 1.0])
    assert torch.equal(m.publish(a), a)  # identity unless calibrated
    m.output_levels.copy_(torch.tensor([0.1, 0.85]))
    assert m.publish(a).tolist() == pytest.approx([0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0], abs=1e-6)


def test_weights_from_before_the_levels_load_with_identity_levels(tmp_path: Path):
    path = _file_without_levels(tmp_path / "old.safetensors")
    m = load_model(path)
    assert m.output_levels.tolist() == [0.0, 1.0]
    m.load_state_dict({k: v for k, v in m.state_dict().items() if k != "output_levels"})  # checkpoints too
    bad = build_model("lite")
    bad.output_levels.copy_(torch.tensor([0.9, 0.2]))
    save_weights(bad, tmp_path / "bad.safetensors")
    with pytest.raises(InputError, match=r"output_levels \[0.8999.*expected 0 <= lo < hi <= 1"):
        load_model(tmp_path / "bad.safetensors")


def test_the_render_path_publishes_the_levelled_alpha(tmp_path: Path):
    rng = np.random.default_rng(0)
    frames = rng.random((3, 48, 64, 3)).astype(np.float32)
    roto = np.zeros((48, 64), np.float32)
    roto[10:30, 20:40] = 1
    path = tmp_path / "w.safetensors"
    torch.manual_seed(1)
    model = build_model("lite")
    save_weights(model, path)
    plain = run_clip(load_model(path), frames, {0: roto}, working_size=64, memory="first+prev2", top_k=8)
    model.output_levels.copy_(torch.tensor([0.3, 0.7]))
    save_weights(model, path)
    levelled = run_clip(load_model(path), frames, {0: roto}, working_size=64, memory="first+prev2", top_k=8)
    expect = np.clip((plain - 0.3) / 0.4, 0, 1)
    assert np.abs(levelled - expect).max() < 4e-3  # the published alpha is rounded to half precision
    assert not np.allclose(levelled, plain, atol=1e-2)


def test_choose_levels_finds_the_points_that_undo_a_haze_and_a_grey_core():
    gt = np.zeros((2, 20, 20), np.float32)
    gt[:, 5:15, 5:15] = 1.0
    pred = 0.1 + 0.75 * gt  # a 0.1 haze, solid at 0.85
    (lo, hi), rows = V.choose_levels({"a": [pred]}, {"a": [gt]})
    assert (lo, hi) == (0.1, 0.85)
    assert len(rows) == len(V.LEVELS_LO) * len(V.LEVELS_HI)
    best = min(rows, key=lambda r: r["score"])
    assert best["a"]["mad"] == pytest.approx(0.0, abs=1e-4)
    identity = next(r for r in rows if (r["lo"], r["hi"]) == (0.0, 1.0))
    assert identity["a"]["mad"] == pytest.approx(1e3 * float(np.abs(pred - gt).mean()), rel=1e-4)


def test_level_metrics_are_clip_metrics_of_the_levelled_alpha():
    """The vectorised scoring the levels search uses gives the validation's own numbers for every candidate."""
    rng = np.random.default_rng(4)
    gt = (rng.random((5, 30, 40)) > 0.6).astype(np.float32)
    pred = np.clip(0.05 + 0.8 * gt + rng.normal(0, 0.1, gt.shape), 0, 1).astype(np.float32)
    grid = [(0.0, 1.0), (0.05, 0.9), (0.2, 0.75)]
    for clip_len in (5, 1):
        fast = V.level_metrics(pred[:clip_len], gt[:clip_len], grid)
        for (lo, hi), got in zip(grid, fast, strict=True):
            want = V.clip_metrics(V.apply_levels(pred[:clip_len], lo, hi), gt[:clip_len])
            assert got == pytest.approx(want, rel=1e-5, abs=1e-6), (lo, hi, clip_len)
    assert V.level_metrics(pred[:1], gt[:1], grid)[0]["dtssd"] == 0.0


def test_cli_calibrate_writes_the_chosen_levels_with_the_weights(tmp_path: Path, capsys, monkeypatch):
    src = _file_without_levels(tmp_path / "w.safetensors")
    monkeypatch.setattr(V, "synthetic_valsets", lambda n, frames, size: _REAL_SYNTHETIC(2, 3, size))
    assert main(["train", "--calibrate", str(src), "--to", str(tmp_path / "cal.safetensors"), "--size", "32",
                 "--threads", "1", "--val-hard", "2", "--levels-only", "--val-long", "0"]) == 0
    out = capsys.readouterr().out
    assert "guided" not in out
    chosen = [line for line in out.splitlines() if "<- chosen" in line]
    assert len(chosen) == 1
    m = load_model(tmp_path / "cal.safetensors")
    lo, hi = (round(float(v), 2) for v in m.output_levels)
    assert f"lo {lo:.2f} hi {hi:.2f}" in chosen[0]
    meta = read_weights_metadata(tmp_path / "cal.safetensors")
    assert meta["output_levels"] == f"{V.LEVELS_LO[V.LEVELS_LO.index(lo)]:g},{V.LEVELS_HI[V.LEVELS_HI.index(hi)]:g}"
    assert meta["levels_chosen_on"] == "synthetic(2 clips, 3 frames, 32 px)+hard(2 clips, 8 frames, 32 px)"
    assert "guided_filter" not in meta and m.decoder.guided_radius == load_model(src).decoder.guided_radius
    with pytest.raises(SystemExit) as bad:
        main(["train", "--calibrate", str(src), "--to", str(tmp_path / "c.safetensors"), "--val-hard", "-1"])
    assert bad.value.code == 2 and "--val-hard: expected a whole number >= 0, got '-1'" in capsys.readouterr().err
    assert main(["train", "--calibrate", str(src), "--size", "32"]) == 2  # no --to
    before = src.read_bytes()
    assert main(["train", "--calibrate", str(src), "--to", str(tmp_path / "." / "w.safetensors"),
                 "--size", "32"]) == 2
    assert "is the weights file being calibrated" in capsys.readouterr().err
    assert src.read_bytes() == before
    # a file of the user's named as --to is refused before any work, as the export's is (a QA pass: a plate frame
    # became 3 MB of weights, exit 0); a link, another suffix and a folder too
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    (tmp_path / "link.safetensors").symlink_to(notes)
    (tmp_path / "mine.safetensors").write_bytes(b"not weights")
    for to, said in ((notes, "exists and was not written by vom"), (tmp_path / "mine.safetensors", "was not written"),
                     (tmp_path / "link.safetensors", "is not a file vom wrote (a link"),
                     (tmp_path, "is not a file vom wrote"), (tmp_path / "w.pt", "expected a .safetensors file")):
        assert main(["train", "--calibrate", str(src), "--to", str(to), "--size", "32"]) == 2, to
        assert said in capsys.readouterr().err, to
    assert notes.read_text() == "mine" and (tmp_path / "mine.safetensors").read_bytes() == b"not weights"


def test_cli_calibrate_chooses_the_guided_filter_with_the_levels(tmp_path: Path, capsys, monkeypatch):
    """Every (radius, eps, memory mask) candidate is a full prediction scored with its own best levels on the
    short and the long validation clips; the lowest wins and all of it travels in the written file."""
    src = _file_without_levels(tmp_path / "w.safetensors")
    lengths = []

    def synthetic(n: int, frames: int, size: int) -> list:
        lengths.append(frames)
        return _REAL_SYNTHETIC(2, 3 if frames == 8 else 5, size)

    monkeypatch.setattr(V, "synthetic_valsets", synthetic)
    monkeypatch.setattr(V, "GUIDED_RADII", (2, 6))
    monkeypatch.setattr(V, "GUIDED_EPS", (1e-3, 1e-4))
    assert main(["train", "--calibrate", str(src), "--to", str(tmp_path / "cal.safetensors"), "--size", "32",
                 "--threads", "1", "--val-hard", "0", "--val-long", "12", "--memory-masks", "0,0.5"]) == 0
    assert lengths == [8, 12]
    out = capsys.readouterr().out.splitlines()
    guided = [line for line in out if line.startswith("guided radius ")]
    assert len(guided) == 8
    assert all("synthetic-12f " in line for line in guided)
    scores = [float(line.split("score ")[1].split()[0]) for line in guided]
    best = guided[scores.index(min(scores))]
    assert best.endswith("<- chosen") and sum("<- chosen" in line for line in guided) == 1
    radius, eps, mm = int(best.split()[2]), float(best.split()[4]), float(best.split()[7])
    m = load_model(tmp_path / "cal.safetensors")
    assert m.decoder.guided_radius == radius and m.decoder.guided_eps == pytest.approx(eps, rel=1e-3)
    assert float(m.memory_mask) == mm
    meta = read_weights_metadata(tmp_path / "cal.safetensors")
    on = "synthetic(2 clips, 3 frames, 32 px)+synthetic-12f(2 clips, 5 frames, 32 px)"
    assert meta["guided_filter"] == f"{radius},{eps:g}" and meta["guided_chosen_on"] == on
    assert meta["memory_mask"] == f"{mm:g}" and meta["memory_mask_chosen_on"] == on
    lo, hi = (float(x) for x in meta["output_levels"].split(","))
    assert f"(lo {lo:.2f} hi {hi:.2f})" in best  # the file's levels are the chosen candidate's


_REAL_SYNTHETIC = V.synthetic_valsets


def test_cli_calibrate_searches_the_guided_radii_and_eps_it_is_given(tmp_path: Path, capsys, monkeypatch):
    """--guided-radii / --guided-eps replace the default grid; bad values and --levels-only with them exit 2."""
    src = _file_without_levels(tmp_path / "w.safetensors")
    monkeypatch.setattr(V, "synthetic_valsets", lambda n, frames, size: _REAL_SYNTHETIC(2, 3, size))
    assert main(["train", "--calibrate", str(src), "--to", str(tmp_path / "cal.safetensors"), "--size", "32",
                 "--threads", "1", "--val-hard", "0", "--val-long", "0", "--guided-radii", "3,5",
                 "--guided-eps", "2e-4"]) == 0
    guided = [line for line in capsys.readouterr().out.splitlines() if line.startswith("guided radius ")]
    assert sorted((line.split()[2], line.split()[4]) for line in guided) == [("3", "0.0002"), ("5", "0.0002")]
    assert load_model(tmp_path / "cal.safetensors").decoder.guided_radius in (3, 5)
    for bad in (["--guided-radii", "2.5"], ["--guided-radii", "0"], ["--guided-eps", "0"]):
        with pytest.raises(SystemExit) as e:
            main(["train", "--calibrate", str(src), "--to", str(tmp_path / "x.safetensors"), *bad])
        assert e.value.code == 2
    assert main(["train", "--calibrate", str(src), "--to", str(tmp_path / "y.safetensors"), "--levels-only",
                 "--guided-radii", "3"]) == 2
    assert "--levels-only keeps the file's guided filter" in capsys.readouterr().err


def test_a_candidate_whose_prediction_is_nan_is_never_chosen(monkeypatch: pytest.MonkeyPatch):
    """A guided filter setting that gives NaN somewhere (eps 1e-5 did, before the filter's solves were float64)
    scores infinity; min() over NaN scores returned the first candidate, and a calibration chose it."""
    from vom_plugin.train.loop import val_score

    assert val_score({"mad": float("nan"), "mse": 1.0, "dtssd": 1.0}) == float("inf")
    gt = np.zeros((3, 32, 32), np.float32)
    gt[:, 8:24, 8:24] = 1.0
    sets = {"a": [V.ValSet("clip", torch.zeros(3, 3, 32, 32), torch.zeros(1, 32, 32), gt)]}

    def predict(model, frames, roto, device):  # the first radius tried gives NaN, the others a fair matte
        pred = np.clip(gt * 0.9 + 0.05, 0, 1)
        if model.decoder.guided_radius == 6:
            pred = pred.copy()
            pred[1, 0, 0] = np.nan
        return torch.from_numpy(pred)

    monkeypatch.setattr(V, "predict_clip", predict)
    (radius, _, _, _), _, rows, _ = V.calibrate_output(build_model("lite"), sets, torch.device("cpu"),
                                                      radii=(6, 8), eps=(1e-4,))
    assert [r["radius"] for r in rows] == [6, 8] and rows[0]["score"] == float("inf")
    assert radius == 8
