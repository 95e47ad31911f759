"""The memory mask threshold: predicted masks binarised before memory is written from them (HSTSG.memory_mask)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vom_plugin.engine.passes import run_clip
from vom_plugin.engine.weights import load_model, read_weights_metadata, save_weights
from vom_plugin.errors import InputError
from vom_plugin.model import HSTSG, build_model


def test_memory_mask_of_binarises_above_the_threshold_or_keeps_the_soft_mask():
    m = build_model("lite")
    p = torch.tensor([0.0, 0.3, 0.5, 0.59, 0.61, 1.0])
    assert torch.equal(m.memory_mask_of(p), p)  # 0: the soft mask, as before the threshold existed
    m.memory_mask.fill_(0.6)
    assert m.memory_mask_of(p).tolist() == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0]


def test_files_without_the_threshold_load_soft_and_a_bad_one_is_refused(tmp_path: Path):
    from safetensors.torch import load_file, save_file

    path = tmp_path / "old.safetensors"
    save_weights(build_model("lite"), path)
    state, meta = load_file(str(path)), read_weights_metadata(path)
    del state["memory_mask"]
    save_file(state, str(path), metadata=meta)
    assert float(load_model(path).memory_mask) == 0.0
    bad = build_model("lite")
    bad.memory_mask.fill_(1.5)
    save_weights(bad, tmp_path / "bad.safetensors")
    with pytest.raises(InputError, match=r"bad.safetensors.*memory_mask 1.5; expected 0 \(soft\) <= t < 1"):
        load_model(tmp_path / "bad.safetensors")


def test_the_render_path_writes_memory_from_the_thresholded_mask(tmp_path: Path, monkeypatch, small_clip):
    frames, roto = small_clip
    ws = max(frames.shape[1:3])  # the clip's own size: the network sees the roto as it is
    torch.manual_seed(1)
    model = build_model("lite")
    path = tmp_path / "w.safetensors"
    save_weights(model, path)
    plain = run_clip(load_model(path), frames, {0: roto}, working_size=ws, memory="first+prev2", top_k=8)
    model.memory_mask.fill_(0.5)
    save_weights(model, path)
    written: list[torch.Tensor] = []
    real = HSTSG.memory_frame

    def spy(self, image, keys, mask, alpha, **kw):
        written.append(mask.detach().float().cpu().clone())
        return real(self, image, keys, mask, alpha, **kw)

    monkeypatch.setattr(HSTSG, "memory_frame", spy)
    thresholded = run_clip(load_model(path), frames, {0: roto}, working_size=ws, memory="first+prev2", top_k=8)
    # the keyframe's two writes carry the roto; every later write is 0 or 1
    assert all(torch.equal(w[0, 0], torch.from_numpy(roto)) for w in written[:2])
    later = torch.cat([w.flatten() for w in written[2:]])
    assert len(written) > 2 and set(later.unique().tolist()) <= {0.0, 1.0}
    assert np.array_equal(thresholded[:2], plain[:2])  # frame 1 reads only the keyframe's memory
    assert not np.allclose(thresholded[2:], plain[2:], atol=1e-3)  # later frames read the binarised writes


def test_training_writes_the_same_memory_the_render_does():
    """forward_clip (training, the validation fallback) binarises the predicted mask exactly as a render does."""
    torch.manual_seed(2)
    model = build_model("lite")
    frames = torch.rand(1, 4, 3, 32, 32)
    first = torch.zeros(1, 1, 32, 32)
    first[..., 8:24, 8:24] = 1
    model.memory_mask.fill_(0.5)
    seen: list[torch.Tensor] = []
    real = model.memory_frame

    def spy(image, keys, mask, alpha, **kw):
        seen.append(mask.detach())
        return real(image, keys, mask, alpha, **kw)

    model.memory_frame = spy
    model.forward_clip(frames, first)
    assert len(seen) >= 3 and all(set(m.unique().tolist()) <= {0.0, 1.0} for m in seen)


def test_calibrate_keeps_the_files_threshold_unless_asked_to_search(tmp_path: Path, capsys, tiny_calibration):
    from vom_plugin.cli import main

    torch.manual_seed(3)
    model = build_model("lite")
    model.memory_mask.fill_(0.5)
    src = tmp_path / "w.safetensors"
    save_weights(model, src)
    args = tiny_calibration(src, frames=3)
    assert main([*args, "--to", str(tmp_path / "kept.safetensors")]) == 0
    assert float(load_model(tmp_path / "kept.safetensors").memory_mask) == 0.5
    meta = read_weights_metadata(tmp_path / "kept.safetensors")
    assert meta["memory_mask"] == "0.5" and "memory_mask_chosen_on" not in meta
    assert main([*args, "--to", str(tmp_path / "searched.safetensors"), "--memory-masks", "0,0.5"]) == 0
    out = capsys.readouterr().out
    assert "memory mask 0 keyframe bonus 0 (" in out and "memory mask 0.5 keyframe bonus 0 (" in out
    searched = read_weights_metadata(tmp_path / "searched.safetensors")
    assert searched["memory_mask_chosen_on"] == "synthetic(2 clips, 3 frames, 32 px)"
    with pytest.raises(SystemExit) as bad:
        main([*args, "--to", str(tmp_path / "x.safetensors"), "--memory-masks", "0,1.2"])
    assert bad.value.code == 2
    assert "expected thresholds in [0, 1) separated by commas, got '0,1.2'" in capsys.readouterr().err
