"""The keyframe bonus: a logit bonus of the keyframe's memory positions in every read (HSTSG.keyframe_bonus)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vom_plugin.engine.models import model_identity
from vom_plugin.engine.passes import run_clip
from vom_plugin.engine.weights import load_model, read_weights_metadata, save_weights
from vom_plugin.errors import InputError
from vom_plugin.model import HSTSG, build_model
from vom_plugin.model.memory_read import LevelMemory, dense_topk_read, level_memory


@pytest.mark.parametrize("bonus", [0.0, 1.0, 2.5])
def test_a_bonus_multiplies_the_frames_read_weight_by_e_to_the_bonus(bonus: float):
    """Two memory frames with the same keys: the read's weights split e^b : 1 between them."""
    torch.manual_seed(0)
    key = torch.randn(1, 16, 4, 4)
    keyframe = level_memory(key, torch.ones(1, 1, 4, 4), blocked=False, bonus=bonus)
    later = level_memory(key, torch.zeros(1, 1, 4, 4), blocked=False)
    q = torch.randn(1, 5, 16)
    out, _ = dense_topk_read(q, LevelMemory.cat([keyframe, later]), top_k=32)
    share = math.exp(bonus) / (1 + math.exp(bonus))
    assert torch.allclose(out, torch.full_like(out, share), atol=1e-5)


def test_the_bonus_goes_to_the_keyframes_positions_only_and_keeps_pending_keys_pending():
    torch.manual_seed(1)
    m = build_model("lite")
    m.keyframe_bonus.fill_(2.0)
    image = torch.rand(1, 3, 64, 64)
    keys = m.encode_key(image)
    mask = torch.zeros(1, 1, 64, 64)
    with torch.no_grad():
        kf = m.memory_frame(image, keys, mask, mask, keyframe=True)
        other = m.memory_frame(image, keys, mask, mask)
    for a, b in zip(kf.levels, other.levels, strict=True):
        c = a.keys.shape[-1]
        assert torch.allclose(b.sqnorm - a.sqnorm, torch.full_like(a.sqnorm, 2.0 * math.sqrt(c)), atol=1e-3)
        assert torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)


def test_files_without_the_bonus_load_with_none_and_a_bad_one_is_refused(tmp_path: Path):
    from safetensors.torch import load_file, save_file

    path = tmp_path / "old.safetensors"
    save_weights(build_model("lite"), path)
    state, meta = load_file(str(path)), read_weights_metadata(path)
    del state["keyframe_bonus"]
    save_file(state, str(path), metadata=meta)
    assert float(load_model(path).keyframe_bonus) == 0.0
    for value, shown in ((-1.0, "-1"), (17.0, "17"), (float("nan"), "nan")):
        bad = build_model("lite")
        bad.keyframe_bonus.fill_(value)
        save_weights(bad, tmp_path / "bad.safetensors")
        with pytest.raises(InputError, match=rf"bad.safetensors.*keyframe_bonus {shown}; expected 0 <= b <= 16"):
            load_model(tmp_path / "bad.safetensors")


def test_a_render_reads_with_the_bonus_and_its_cache_identity_changes_with_it(tmp_path: Path, monkeypatch, small_clip):
    frames, roto = small_clip
    torch.manual_seed(1)
    model = build_model("lite")
    path = tmp_path / "w.safetensors"
    save_weights(model, path)
    plain_id = model_identity(load_model(path))
    plain = run_clip(load_model(path), frames, {0: roto}, working_size=960, memory="first+prev2", top_k=8)
    model.keyframe_bonus.fill_(3.0)
    save_weights(model, path)
    flags: list[bool] = []
    real = HSTSG.memory_frame

    def spy(self, image, keys, mask, alpha, *, keyframe=False):
        flags.append(keyframe)
        return real(self, image, keys, mask, alpha, keyframe=keyframe)

    monkeypatch.setattr(HSTSG, "memory_frame", spy)
    bonused = load_model(path)
    assert model_identity(bonused) != plain_id  # cache entries of one setting never serve the other
    out = run_clip(bonused, frames, {0: roto}, working_size=960, memory="first+prev2", top_k=8)
    assert flags[:2] == [True, True] and len(flags) > 2 and not any(flags[2:])  # the keyframe's two writes
    assert np.array_equal(out[:2], plain[:2])  # frame 1 reads the keyframe alone: softmax is unchanged
    assert not np.allclose(out[2:], plain[2:], atol=1e-3)  # later frames lean on the keyframe


def test_training_gives_the_bonus_to_the_keyframe_as_a_render_does():
    torch.manual_seed(2)
    model = build_model("lite")
    frames = torch.rand(1, 4, 3, 32, 32)
    first = torch.zeros(1, 1, 32, 32)
    first[..., 8:24, 8:24] = 1
    flags: list[bool] = []
    real = model.memory_frame

    def spy(image, keys, mask, alpha, *, keyframe=False):
        flags.append(keyframe)
        return real(image, keys, mask, alpha, keyframe=keyframe)

    model.memory_frame = spy
    model.forward_clip(frames, first)
    assert flags[:2] == [True, True] and len(flags) > 2 and not any(flags[2:])


def test_calibrate_keeps_the_files_bonus_unless_asked_to_search(tmp_path: Path, capsys, tiny_calibration):
    from vom_plugin.cli import main

    torch.manual_seed(3)
    model = build_model("lite")
    model.keyframe_bonus.fill_(1.5)
    src = tmp_path / "w.safetensors"
    save_weights(model, src)
    args = tiny_calibration(src, frames=4)
    assert main([*args, "--to", str(tmp_path / "kept.safetensors")]) == 0
    assert float(load_model(tmp_path / "kept.safetensors").keyframe_bonus) == 1.5
    meta = read_weights_metadata(tmp_path / "kept.safetensors")
    assert meta["keyframe_bonus"] == "1.5" and "keyframe_bonus_chosen_on" not in meta
    capsys.readouterr()
    assert main([*args, "--to", str(tmp_path / "searched.safetensors"), "--keyframe-bonuses", "0,4"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("guided radius")]
    assert len(rows) == 2 and "keyframe bonus 0 (" in rows[0] and "keyframe bonus 4 (" in rows[1]
    scores = [float(r.split("score ")[1].split()[0]) for r in rows]
    assert scores[0] != scores[1]  # the bonus changed the 4-frame clips' later frames
    chosen = 4.0 if "<- chosen" in rows[1] else 0.0
    searched = read_weights_metadata(tmp_path / "searched.safetensors")
    assert searched["keyframe_bonus_chosen_on"] == "synthetic(2 clips, 4 frames, 32 px)"
    assert float(load_model(tmp_path / "searched.safetensors").keyframe_bonus) == chosen
    assert searched["keyframe_bonus"] == f"{chosen:g}"
    with pytest.raises(SystemExit) as bad:
        main([*args, "--to", str(tmp_path / "x.safetensors"), "--keyframe-bonuses", "1,-2"])
    assert bad.value.code == 2
    assert "expected bonuses in [0, 16] separated by commas, got '1,-2'" in capsys.readouterr().err
