"""Training's batches and its selection set see each clip at the exposure a render gives the network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from test_eval_runner import _shot

from vom_plugin import io as vio
from vom_plugin.eval.clips import load_shot as read_shot
from vom_plugin.io.color import EXPOSURE_P99
from vom_plugin.train import data as D
from vom_plugin.train import loop as L
from vom_plugin.train import validate as V


def _nhwc(frames: torch.Tensor) -> np.ndarray:
    return frames.permute(0, 2, 3, 1).numpy()


def test_training_batches_and_validation_clips_are_at_the_render_s_exposure() -> None:
    """Session 36 gave a render's network every shot at one exposure (io.exposure_gain of its first keyframe's
    frame); training's batches and the selection set's clips kept their own exposure: a network trained and
    chosen on inputs a render never gives it."""
    [clip] = D.validation_clips(1, 3, (48, 48))
    want = vio.frames_to_network(clip.plate, "lin_rec709")
    assert abs(vio.exposure_gain(clip.plate[0], "lin_rec709") - 1.0) > 0.05  # the test means something
    enc = D.network_encoder()
    got = _nhwc(D.clip_to_tensors(clip, np.random.default_rng(0), enc)[0])
    np.testing.assert_allclose(got, np.clip(want, 0, 1), atol=1e-6)
    darker = np.stack([f * np.float32(0.05) for f in clip.plate])  # the same clip 4.3 stops under
    np.testing.assert_allclose(D.encode_clip(darker, enc), got, atol=2e-5)
    [val] = V.synthetic_valsets(1, 3, 48)
    np.testing.assert_allclose(_nhwc(val.frames), got, atol=1e-6)


def test_a_validation_shot_is_read_in_its_own_colour_space_at_the_render_s_exposure(tmp_path: Path) -> None:
    """The selection set read every shot folder as linear Rec.709 at its own exposure; `vom benchmark` reads it in
    the colour space its shot.yaml names, at the render's exposure."""
    folder = tmp_path / "clip_7000001"
    _shot(folder)
    (folder / "shot.yaml").write_text("colorspace: ACEScg\n")
    clip = read_shot(folder)
    assert clip.colorspace == "ACEScg"
    got = _nhwc(V.load_shot(folder).frames)
    np.testing.assert_allclose(got, np.clip(vio.frames_to_network(clip.plate, "ACEScg"), 0, 1), atol=1e-6)
    assert np.abs(got - np.clip(np.stack([vio.linear_to_network(p) for p in clip.plate]), 0, 1)).max() > 0.05


def test_a_run_from_before_the_exposure_does_not_compare_its_best(tmp_path: Path) -> None:
    """A checkpoint trained and validated on the clips' own exposures scored another selection set."""
    now = L._selection(L.TrainArgs(out=tmp_path).to_json())
    assert now["exposure_p99"] == EXPOSURE_P99
    assert L._selection({k: v for k, v in L.TrainArgs(out=tmp_path).to_json().items() if k != "exposure_p99"}) != now
