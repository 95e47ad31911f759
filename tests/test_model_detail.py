"""The learned detail residual (model/detail.py): adds nothing until trained, never feeds memory, learns what
the 1/4-resolution decoder cannot hold, loads all-or-nothing, trains alone (--train-only detail)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vom_plugin.errors import InputError
from vom_plugin.model import build_model
from vom_plugin.model.decoder import clamp_inward
from vom_plugin.model.detail import DetailRefiner


def _clip(t: int = 4, h: int = 64, w: int = 96):
    g = torch.Generator().manual_seed(2)
    frames = torch.rand(1, t, 3, h, w, generator=g)
    mask = torch.zeros(1, 1, h, w)
    mask[..., 16:48, 24:72] = 1.0
    return frames, mask


def _live(model) -> None:
    """Give the detail module's zero output layer weights, as training would."""
    torch.manual_seed(7)
    with torch.no_grad():
        model.detail.out.weight.normal_(0.0, 0.3)
        model.detail.out.bias.fill_(0.05)


def test_a_fresh_detail_module_renders_exactly_what_the_network_rendered_without_it():
    torch.manual_seed(0)
    model = build_model("lite").eval()
    assert model.detail is not None
    plain = copy.deepcopy(model)
    plain.detail = None
    frames, mask = _clip()
    with torch.no_grad():
        a, b = model.forward_clip(frames, mask), plain.forward_clip(frames, mask)
    assert torch.equal(a["alpha"], b["alpha"]) and torch.equal(a["mask_logits"], b["mask_logits"])


def test_memory_is_written_from_the_decoders_alpha_not_the_detailed_one():
    """A trained detail module changes the published alpha of every frame but nothing the memory carries: the
    mask logits (read from memory alone) stay bit-identical, so the module cannot make a shot drift."""
    torch.manual_seed(0)
    model = build_model("lite").eval()
    plain = copy.deepcopy(model)
    plain.detail = None
    _live(model)
    frames, mask = _clip()
    with torch.no_grad():
        a, b = model.forward_clip(frames, mask), plain.forward_clip(frames, mask)
    assert torch.equal(a["mask_logits"], b["mask_logits"])
    diff = (a["alpha"] - b["alpha"]).abs().flatten(2).amax(-1)[0]  # per frame
    assert (diff > 1e-3).all()
    assert a["alpha"].min() >= 0 and a["alpha"].max() <= 1


def test_the_engine_publishes_the_detailed_alpha(tmp_path: Path):
    """The render path (engine.passes.run_clip, what `vom render` and the benchmark run) applies the module."""
    import numpy as np

    from vom_plugin.engine.passes import run_clip

    torch.manual_seed(0)
    model = build_model("lite").eval()
    plain = copy.deepcopy(model)
    plain.detail = None
    _live(model)
    frames, mask = _clip(t=3)
    x = frames[0].permute(0, 2, 3, 1).numpy()
    kf = {0: mask[0, 0].numpy()}
    got = run_clip(model, x, kf, working_size=96, memory="first+prev2", top_k=8, device="cpu")
    want = run_clip(plain, x, kf, working_size=96, memory="first+prev2", top_k=8, device="cpu")
    assert got.shape == want.shape == (3, 64, 96)
    assert np.abs(got - want).max() > 1e-3 and got.min() >= 0 and got.max() <= 1


def test_it_learns_detail_finer_than_the_decoders_alpha():
    """Hair-like one-pixel strands of alpha 0.5, visible in the image, absent from the decoder's (blurred) alpha:
    the module brings them back from the image."""
    torch.manual_seed(0)
    target = torch.zeros(2, 1, 48, 48)
    target[..., ::5] = 0.5
    image = (0.2 + 0.6 * target).expand(2, 3, 48, 48).contiguous()
    blurred = F.avg_pool2d(target, 5, 1, 2)
    mask = (blurred > 0.05).float()
    det = DetailRefiner()
    before = F.l1_loss(blurred, target).item()
    opt = torch.optim.Adam(det.parameters(), lr=3e-3)
    for _ in range(200):
        opt.zero_grad()
        loss = F.l1_loss(clamp_inward(blurred + det(image, blurred, mask)), target)
        loss.backward()
        opt.step()
    assert before > 0.05 and loss.item() < 0.4 * before


def test_weights_without_the_detail_module_load_without_it_and_with_it_round_trip(tmp_path: Path):
    from safetensors.torch import load_file, save_file

    from vom_plugin.engine.weights import load_model, save_weights

    torch.manual_seed(3)
    old = build_model("lite")
    old.detail = None  # a network trained before the module existed (every file shipped before session 17)
    save_weights(old, tmp_path / "old.safetensors", fp16=False)
    assert load_model(tmp_path / "old.safetensors").detail is None
    new = build_model("lite")
    with torch.no_grad():
        new.detail.out.bias.fill_(0.125)
    save_weights(new, tmp_path / "new.safetensors", fp16=False)
    back = load_model(tmp_path / "new.safetensors")
    assert back.detail is not None and float(back.detail.out.bias.detach()) == 0.125
    state = load_file(str(tmp_path / "new.safetensors"))
    del state["detail.fuse.weight"]  # part of the module: a damaged file, refused with the tensor named
    save_file(state, str(tmp_path / "part.safetensors"), metadata={"config": "lite"})
    with pytest.raises(InputError, match="detail.fuse.weight"):
        load_model(tmp_path / "part.safetensors")


def test_train_only_detail_freezes_the_rest_and_trains_the_module(tmp_path: Path):
    """--init a file without the module, --train-only detail: every other tensor of the checkpoint is the file's,
    bit for bit; the module's output layer has moved off zero; the export loads with the module."""
    from vom_plugin.engine.weights import load_model, save_weights
    from vom_plugin.train import loop as L
    from vom_plugin.train.data import Curriculum

    torch.manual_seed(11)
    old = build_model("lite")
    old.detail = None
    weights = tmp_path / "old.safetensors"
    save_weights(old, weights, fp16=False)
    shots = tmp_path / "no_shots"
    shots.mkdir()
    run = tmp_path / "run"
    args = L.TrainArgs(out=run, minutes=5, max_steps=3, batch=1, size=32, frames=3, val_clips=1, val_hard=0,
                       val_frames=3, val_minutes=0, val_long=0, shots=shots, init=weights, lr=1e-3,
                       warmup_steps=1, ema_decay=0, train_only="detail",
                       curriculum=Curriculum(stage1_steps=0, ramp_steps=1))
    L.train(args, log=lambda m: None)
    ck = L.load_checkpoint(run / "last.pt")
    start = load_model(weights).state_dict()
    others = [k for k in ck["model"] if not k.startswith("detail.")]
    assert others and all(torch.equal(ck["model"][k].float(), start[k].float()) for k in others)
    assert ck["model"]["detail.out.weight"].abs().sum() > 0
    # only the module is in the optimizer
    assert sum(len(g["params"]) for g in ck["optimizer"]["param_groups"]) == len(
        [k for k in ck["model"] if k.startswith("detail.")]) == 12  # 6 convolutions' weights and biases
    L.export_weights(run / "last.pt", tmp_path / "out.safetensors")
    assert load_model(tmp_path / "out.safetensors").detail is not None


def test_train_only_refuses_unknown_parts_networks_without_them_and_a_random_start(tmp_path, capsys):
    from vom_plugin.cli import main
    from vom_plugin.train import loop as L

    with pytest.raises(InputError, match="--train-only 'decoder': expected one of detail"):
        L.freeze_all_but(build_model("lite"), "decoder")
    plain = build_model("lite")
    plain.detail = None
    with pytest.raises(InputError, match="no detail module"):
        L.freeze_all_but(plain, "detail")
    rc = main(["train", "--out", str(tmp_path / "r"), "--train-only", "detail", "--minutes", "1"])
    assert rc == 2 and "--train-only detail: needs --init WEIGHTS" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    # refused once the run had made its folder (a QA pass: an empty --out was left behind); a folder that was
    # there before stays
    rc = main(["train", "--out", str(tmp_path / "r"), "--init", str(tmp_path / "nope.safetensors"), "--minutes", "1",
               "--max-steps", "1", "--size", "32", "--batch", "1"])
    assert rc == 2 and "nope.safetensors" in capsys.readouterr().err and not (tmp_path / "r").exists()
    (tmp_path / "mine").mkdir()
    rc = main(["train", "--out", str(tmp_path / "mine"), "--init", str(tmp_path / "nope.safetensors"), "--minutes",
               "1", "--max-steps", "1", "--size", "32", "--batch", "1"])
    assert rc == 2 and (tmp_path / "mine").is_dir()


def test_init_from_a_file_without_optional_tensors_keeps_a_fresh_detail_module(tmp_path: Path):
    from safetensors.torch import load_file, save_file

    from vom_plugin.engine.weights import save_weights
    from vom_plugin.train import loop as L

    m = build_model("lite")
    m.detail = None
    save_weights(m, tmp_path / "ok.safetensors", fp16=False)
    state = load_file(str(tmp_path / "ok.safetensors"))
    del state["output_levels"]  # optional for rendering (defaults), so the engine loads it ...
    save_file(state, str(tmp_path / "lvl.safetensors"), metadata={"config": "lite"})
    model = build_model("lite")
    said: list[str] = []
    L.init_from_weights(model, tmp_path / "lvl.safetensors", "lite", log=said.append)  # ... and so does training
    assert model.detail is not None and float(model.detail.out.weight.detach().abs().sum()) == 0
    # said (QA: a fine-tune of the shipped file, which has no detail module, rendered slower, without a word)
    assert said == [f"--init {tmp_path / 'lvl.safetensors'}: holds no detail module; this run adds it, fresh (the "
                    "network starts as the file's and renders slower by what the module costs); --no-detail keeps "
                    "the file's network"]
    assert model.detail.full1.weight.detach().abs().sum() > 0  # first layers random: gradients can reach them


def test_the_residual_is_zero_where_the_decoder_is_sure_and_a_crop_computes_what_the_whole_frame_does():
    """Gate: nothing is added far from the decoder's unsure band. Inference runs the module on the band's box
    plus a margin: the same residual as the whole frame (the box is wider than the receptive field)."""
    from vom_plugin.model import detail as D

    torch.manual_seed(4)
    det = DetailRefiner()
    with torch.no_grad():
        det.out.weight.normal_(0.0, 0.3)
        det.out.bias.fill_(0.05)
    h, w = 120, 200
    alpha = torch.zeros(1, 1, h, w)
    alpha[..., 40:80, 110:170] = 1.0
    alpha[..., 40:80, 108:110] = 0.5  # one soft edge: the band
    image, mask = torch.rand(1, 3, h, w), alpha.clone()
    with torch.no_grad():
        cropped = det(image, alpha, mask)
        whole = det.residual(image, alpha, mask) * F.interpolate(det.gate(alpha), scale_factor=D.CELL)[..., :h, :w]
    assert torch.allclose(cropped, whole, atol=1e-5)
    assert cropped[..., 40:80, 108:110].abs().min() > 0  # in the band
    assert (cropped[..., :, :90] == 0).all() and (cropped[..., 92:, :] == 0).all()  # far from it
    assert (cropped[..., 40:80, 130:] == 0).all()  # deep inside the solid part
    with torch.enable_grad():  # training: the whole frame, gated, the same values
        assert torch.allclose(det(image, alpha, mask).detach(), whole, atol=1e-5)
    sure = torch.zeros(1, 1, h, w)
    with torch.no_grad():
        assert (det(image, sure, sure) == 0).all()
