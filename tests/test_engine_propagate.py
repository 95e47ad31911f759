"""Propagator / propagate_clip: direction symmetry, bounded memory, exact resume, keyframe blending."""

from __future__ import annotations

import pytest
import torch

from vom_plugin.engine.propagate import Propagator, propagate_clip
from vom_plugin.model import build_model


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("lite").eval()


def _clip(t: int, h: int = 32, w: int = 48, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(t, 3, h, w, generator=g)
    mask = torch.zeros(1, h, w)
    mask[:, h // 4 : 3 * h // 4, w // 4 : w // 2] = 1.0
    return frames, mask


def test_backward_equals_forward_over_the_reversed_clip_to_float_tolerance(model: torch.nn.Module) -> None:
    frames, mask = _clip(5)
    back_alpha, back_mask = propagate_clip(model, frames, {4: mask})
    fwd_alpha, fwd_mask = propagate_clip(model, frames.flip(0), {0: mask})
    torch.testing.assert_close(back_alpha, fwd_alpha.flip(0))
    torch.testing.assert_close(back_mask, fwd_mask.flip(0))
    assert back_alpha.shape == (5, 32, 48)


def test_any_size_is_padded_and_cropped_back(model: torch.nn.Module) -> None:
    frames, mask = _clip(2, h=30, w=41)
    alpha, m = propagate_clip(model, frames, {0: mask})
    assert alpha.shape == (2, 30, 41) and m.shape == (2, 30, 41)
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0


def _state_bytes(state: dict[str, torch.Tensor]) -> int:
    return sum(v.numel() * v.element_size() for v in state.values())


def test_memory_after_60_frames_equals_memory_after_10(model: torch.nn.Module) -> None:
    frames, mask = _clip(1, h=16, w=32)
    prop = Propagator(model)
    keys = prop.encode_keys(frames[:1])
    prop.add_keyframe(frames[:1], keys, mask[None])
    sizes = {}
    for t in range(1, 61):
        prop.step(frames[:1], keys)
        if t in (10, 60):
            sizes[t] = (len(prop.bank), prop.bank.nbytes(), _state_bytes(prop.state_dict()), len(prop.history))
    assert sizes[10] == sizes[60]
    assert sizes[60][0] == 3 and sizes[60][3] == 2  # keyframe + 2 previous; CFAR sees 2 previous frames


def test_resume_from_state_dict_gives_identical_results(model: torch.nn.Module) -> None:
    frames, mask = _clip(6, seed=3)
    ref = Propagator(model)
    keys = [ref.encode_keys(frames[i : i + 1]) for i in range(6)]
    outs = [ref.add_keyframe(frames[:1], keys[0], mask[None]).alpha]
    state = None
    for i in range(1, 6):
        outs.append(ref.step(frames[i : i + 1], keys[i]).alpha)
        if i == 2:
            state = {k: v.clone() for k, v in ref.state_dict().items()}
    resumed = Propagator(model)
    resumed.load_state_dict(state)
    for i in range(3, 6):
        torch.testing.assert_close(resumed.step(frames[i : i + 1], keys[i]).alpha, outs[i], rtol=0, atol=0)


def test_step_before_keyframe_is_refused(model: torch.nn.Module) -> None:
    frames, _ = _clip(1)
    prop = Propagator(model)
    with pytest.raises(RuntimeError, match="add_keyframe"):
        prop.step(frames[:1], prop.encode_keys(frames[:1]))


def test_two_keyframes_blend_by_distance_and_each_pass_reads_the_other_roto(model: torch.nn.Module) -> None:
    frames, mask = _clip(4, seed=5)
    other = 1.0 - mask
    both, _ = propagate_clip(model, frames, {0: mask, 3: other})
    only_first, _ = propagate_clip(model, frames, {0: mask})
    only_last, _ = propagate_clip(model, frames, {3: other})

    def anchored(kf: int, roto: torch.Tensor, toward: int, far_roto: torch.Tensor) -> dict[int, torch.Tensor]:
        prop = Propagator(model)
        prop.anchor(frames[toward : toward + 1], prop.encode_keys(frames[toward : toward + 1]), far_roto[None])
        order = range(kf, toward + (1 if toward > kf else -1), 1 if toward > kf else -1)
        out = {}
        for i, f in enumerate(order):
            image = frames[f : f + 1]
            keys = prop.encode_keys(image)
            step = prop.add_keyframe(image, keys, roto[None]) if i == 0 else prop.step(image, keys)
            out[f] = step.alpha[0, 0]
        return out

    fwd, back = anchored(0, mask, 3, other), anchored(3, other, 0, mask)
    # each keyframe's own frame is its roto's prediction, read before any anchor
    torch.testing.assert_close(both[0], only_first[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(both[3], only_last[3], rtol=1e-5, atol=1e-5)
    for f in (1, 2):
        w = (3 - f) / 3
        torch.testing.assert_close(both[f], w * fwd[f] + (1 - w) * back[f], rtol=1e-5, atol=1e-5)
    # and the anchor is read: the passes are not the single-keyframe ones
    unanchored = [(3 - f) / 3 * only_first[f] + f / 3 * only_last[f] for f in (1, 2)]
    assert max(float((both[f] - u).abs().max()) for f, u in zip((1, 2), unanchored, strict=True)) > 1e-3


def test_the_caller_model_is_not_modified(model: torch.nn.Module) -> None:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frames, mask = _clip(2)
    propagate_clip(model, frames, {0: mask})
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_a_model_handed_over_is_prepared_in_place_and_gives_the_same_results(model: torch.nn.Module) -> None:
    """A render's own load is adopted (BatchNorm folded in place, no copy); its mattes are the copy's."""
    import copy

    from vom_plugin.engine.propagate import adopt_for_inference

    frames, mask = _clip(3)
    own = copy.deepcopy(model)
    adopted = adopt_for_inference(own, torch.device("cpu"))
    assert adopted is own and not any(isinstance(m, torch.nn.BatchNorm2d) for m in adopted.modules())
    assert Propagator(adopted).model is adopted  # used as it is: not copied again
    alpha, matte = propagate_clip(model, frames, {0: mask})
    alpha2, matte2 = propagate_clip(adopted, frames, {0: mask})
    assert torch.equal(alpha, alpha2) and torch.equal(matte, matte2)
    with torch.no_grad():  # weights changed afterwards: a fresh prepared copy again, never a stale one
        next(adopted.parameters()).add_(1.0)
    assert Propagator(adopted).model is not adopted


def test_out_of_memory_in_a_step_is_an_input_error_naming_the_size(
    model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vom_plugin.errors import InputError

    frames, mask = _clip(2)
    prop = Propagator(model)
    keys = prop.encode_keys(frames[:1])
    prop.add_keyframe(frames[:1], keys, mask[None])

    def boom(*args: object, **kwargs: object) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(prop.model, "predict_with_affinity", boom)
    with pytest.raises(InputError, match=r"working size 48x32.*--working-size"):
        prop.step(frames[1:2], keys)


def test_keys_from_a_cache_give_bit_identical_results(model: torch.nn.Module) -> None:
    from vom_plugin.model import KeyFeatures

    frames, mask = _clip(3, seed=7)
    fresh, cached = Propagator(model), Propagator(model)
    keys = [fresh.encode_keys(frames[i : i + 1]) for i in range(3)]
    # what the runner's cache hands back: CPU tensors saved contiguous
    stored = [KeyFeatures.from_dict({k: v.clone() for k, v in kf.to_dict().items()}) for kf in keys]
    a = [fresh.add_keyframe(frames[:1], keys[0], mask[None]).alpha]
    b = [cached.add_keyframe(frames[:1], stored[0], mask[None]).alpha]
    for i in (1, 2):
        a.append(fresh.step(frames[i : i + 1], keys[i]).alpha)
        b.append(cached.step(frames[i : i + 1], stored[i]).alpha)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


def test_cached_8bit_features_give_the_cold_keys_exactly(model: torch.nn.Module) -> None:
    """The cache keeps a frame's backbone features as 8-bit codes with a scale and offset per channel, nothing
    else; the cold path rounds them the same way before projecting keys, so keys, outputs and affinities from
    the cache are exact."""
    frames, mask = _clip(3, seed=3)
    fresh, cached = Propagator(model), Propagator(model)
    keys = [fresh.encode_keys(frames[i : i + 1]) for i in range(3)]
    stored = [{k: v.clone() for k, v in Propagator.key_features(kf).items()} for kf in keys]
    names = {f"{n}{s}" for n in ("f4", "f8", "f16") for s in ("", "_scale", "_lo")}
    for d, kf in zip(stored, keys, strict=True):
        assert set(d) == names
        for n, feat in (("f4", kf.feat4), ("f8", kf.feat8), ("f16", kf.feat16)):
            c = feat.shape[1]
            assert d[n].dtype == torch.uint8 and tuple(d[n].shape) == tuple(feat.shape)
            assert tuple(d[f"{n}_scale"].shape) == (1, c, 1, 1) and d[f"{n}_scale"].dtype == torch.float32
            # the features the keys were projected from are the codes' values, to the bit
            assert torch.equal(feat.float().contiguous(), d[n].float() * d[f"{n}_scale"] + d[f"{n}_lo"])
    back = [cached.keys_from_features(d) for d in stored]
    for a, b in zip(keys, back, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a.to_dict().values(), b.to_dict().values(), strict=True))
    a = [fresh.add_keyframe(frames[:1], keys[0], mask[None])]
    b = [cached.add_keyframe(frames[:1], back[0], mask[None])]
    for i in (1, 2):
        a.append(fresh.step(frames[i : i + 1], keys[i]))
        b.append(cached.step(frames[i : i + 1], back[i]))
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.alpha, y.alpha)
        stored_aff = x.affinity.to_dict()
        assert stored_aff["w16"].dtype == torch.uint8 and stored_aff["w16_scale"].dtype == torch.float32
        assert stored_aff["w8"].dtype == torch.float16 and stored_aff["sel8"].dtype == torch.uint8
        assert stored_aff["idx16"].dtype in (torch.uint8, torch.int16)
        assert all(torch.equal(stored_aff[k], v) for k, v in y.affinity.to_dict().items())


def test_8bit_features_are_within_half_a_step_of_the_networks(model: torch.nn.Module) -> None:
    frames, _ = _clip(1, seed=4)
    prop = Propagator(model)
    kf = prop.encode_keys(frames[:1])
    d = Propagator.key_features(kf)
    with torch.inference_mode():
        raw = prop.model.encode_key_features(frames[:1])
    for n, f in zip(("f4", "f8", "f16"), raw, strict=True):
        step = d[f"{n}_scale"]
        err = (d[n].float() * step + d[f"{n}_lo"] - f.float()).abs()
        assert bool((err <= step * 0.5 + 1e-6).all()), n
        assert int(d[n].max()) >= 127  # at least half of the codes over a channel's range


def _run(model, frames, roto, affinities=None, memory="first+prev2"):
    """One pass over the clip; returns (outputs, affinities as the cache stores them)."""
    from vom_plugin.model import Affinity

    prop = Propagator(model, memory=memory)
    outs, affs = [], []
    for i in range(frames.shape[0]):
        image = frames[i : i + 1]
        keys = prop.encode_keys(image)
        given = None if affinities is None else Affinity.from_dict(affinities[i])
        out = prop.add_keyframe(image, keys, roto[None], given) if i == 0 else prop.step(image, keys, given)
        outs.append(out)
        affs.append(out.affinity.to_dict())
    return outs, affs


@pytest.mark.parametrize("memory", ["first+prev2", "every-2"])
def test_affinities_of_another_roto_give_identical_results(model: torch.nn.Module, memory: str) -> None:
    """The roto-change fast path: reads and CFAR reuse the key-only weights of a render with another roto,
    and every output equals a fresh render's bit for bit."""
    frames, roto_a = _clip(6, h=48, w=64)
    roto_b = torch.zeros_like(roto_a)
    roto_b[:, 8:40, 20:56] = 1.0
    run_a, affs_a = _run(model, frames, roto_a, memory=memory)
    fresh_b, affs_b = _run(model, frames, roto_b, memory=memory)
    reused_b, _ = _run(model, frames, roto_b, affs_a, memory=memory)
    for f, r in zip(fresh_b, reused_b, strict=True):
        assert torch.equal(f.alpha, r.alpha) and torch.equal(f.mask, r.mask)
    assert not torch.equal(run_a[3].alpha, fresh_b[3].alpha)  # the roto does change the result
    # the affinities depend on the pixels only: the two rotos' are the same tensors
    assert all(torch.equal(a[k], b[k]) for a, b in zip(affs_a, affs_b, strict=True) for k in a)
    # stored: the memory read's part and CFAR's weights at 1/16 and 1/4; those at 1/8 are computed again from
    # the keys, to the same values
    assert set(affs_a[2]) == {"idx16", "w16", "w16_scale", "sel8", "w8", "sel4", "w4", "cfar16", "cfar16_scale",
                              "cfar4", "cfar4_scale"}
    a = affs_a[2]
    for name, level in (("cfar16", 0), ("cfar4", 2)):
        assert a[name].dtype == torch.uint8  # 8-bit codes with a scale per pixel, as the step used them
        assert torch.equal(a[name].float() * a[name + "_scale"], run_a[2].affinity.cfar[level])
    # the recomputed level is rounded to half precision, as the step used it
    w8 = run_a[2].affinity.cfar[1]
    assert w8 is not None and torch.equal(w8, w8.half().float())
    for f, r in zip(fresh_b[1:], reused_b[1:], strict=True):
        assert r.affinity.cfar is not None and any(w is not None for w in r.affinity.cfar)
        assert all(torch.equal(a, b) for a, b in zip(f.affinity.cfar, r.affinity.cfar, strict=True) if a is not None)


def test_affinity_of_the_wrong_size_is_refused(model: torch.nn.Module) -> None:
    from vom_plugin.model import Affinity

    frames, roto = _clip(3, h=48, w=64)
    _, affs = _run(model, frames, roto)
    small, small_roto = _clip(3, h=32, w=48)
    prop = Propagator(model)
    keys = prop.encode_keys(small[:1])
    prop.add_keyframe(small[:1], keys, small_roto[None])
    with pytest.raises(ValueError, match="affinity for 12 positions at 1/16 does not fit a query of 6 positions"):
        prop.step(small[1:2], prop.encode_keys(small[1:2]), Affinity.from_dict(affs[1]))


def test_cached_cfar_weights_of_another_shape_are_refused(model: torch.nn.Module) -> None:
    """CFAR's weights read back are checked against the level's size, the frames and the window before use: laid
    out the wrong way round they hold as many values, and a reshape alone would take them."""
    from vom_plugin.model import Affinity

    frames, roto = _clip(3, h=48, w=64)
    _, affs = _run(model, frames, roto)
    prop = Propagator(model)
    prop.add_keyframe(frames[:1], prop.encode_keys(frames[:1]), roto[None])
    flip = {n: affs[1][n].transpose(-1, -2).contiguous() for n in ("cfar16", "cfar16_scale")}
    with pytest.raises(ValueError, match=r"CFAR weights of shape \(1, \d+, 4, 3\) do not fit 2 frames of 3x4"):
        prop.step(frames[1:2], prop.encode_keys(frames[1:2]), Affinity.from_dict(dict(affs[1], **flip)))
    # codes and scales that do not belong together are refused as they load
    with pytest.raises(ValueError, match=r"'cfar16_scale' is torch.float32 \(1, 1, 3, 4\), expected float32 "
                                         r"\(1, 1, 4, 3\)"):
        Affinity.from_dict(dict(affs[1], cfar16=flip["cfar16"]))
    with pytest.raises(ValueError, match=r"'w16' is torch.float16, expected uint8 codes"):
        Affinity.from_dict(dict(affs[1], w16=affs[1]["w16"].half()))
    with pytest.raises(ValueError, match=r"w16 codes \(1, 12, 7\) do not match idx16 \(1, 12, 12\)"):
        Affinity.from_dict(dict(affs[1], w16=affs[1]["w16"][..., :7].contiguous(),
                                w16_scale=affs[1]["w16_scale"]))


def test_each_cfar_projects_a_frames_key_once(model: torch.nn.Module) -> None:
    """Computing a step's affinity must not redo CFAR's key projection (it is on every cold frame)."""
    frames, roto = _clip(3, h=48, w=64)
    prop = Propagator(model)
    keys = [prop.encode_keys(frames[i : i + 1]) for i in range(3)]
    prop.add_keyframe(frames[:1], keys[0], roto[None])
    calls: list[str] = []
    hooks = [c.proj.register_forward_hook(lambda m, i, o, n=n: calls.append(n))
             for n, c in (("16", prop.model.cfar16), ("8", prop.model.cfar8), ("4", prop.model.cfar4))]
    try:
        out = prop.step(frames[1:2], keys[1])
    finally:
        for h in hooks:
            h.remove()
    assert out.affinity is not None and sorted(calls) == ["16", "4", "8"]


def test_a_step_with_cached_matches_lays_out_no_memory_key_and_a_later_miss_or_state_gets_them_exactly(
        model: torch.nn.Module) -> None:
    """With a cached affinity a step never lays out the memory's keys (the matches are given) and projects the
    query's key for CFAR at 1/8 only (the weights at 1/16 and 1/4 are cached; at 1/8 not); a later step
    whose affinity is missing, and a saved state, get the memory's and the history's keys then: the same values
    as the render that computed everything."""
    from vom_plugin.model import Affinity

    def pending_memory_keys() -> list[bool]:
        return [level._pending is not None for frame in prop.bank.ordered() for level in frame.levels]

    frames, roto = _clip(6, h=48, w=64)
    cold, affs = _run(model, frames, roto)
    prop = Propagator(model)
    projections: list[str] = []
    convs = {"cfar16": prop.model.cfar16.proj, "cfar8": prop.model.cfar8.proj, "cfar4": prop.model.cfar4.proj}
    hooks = [c.register_forward_hook(lambda m, i, o, n=n: projections.append(n)) for n, c in convs.items()]
    try:
        outs = []
        for i in range(6):
            image = frames[i : i + 1]
            keys = prop.keys_from_features(Propagator.key_features(prop.encode_keys(image)))
            if i == 4:  # this step's cached affinity is gone: it matches against the memory's keys
                assert all(pending_memory_keys())
                read = prop.bank.ordered()
                out = prop.step(image, keys, None)
                assert not any(level._pending is not None for frame in read for level in frame.levels)
            else:
                given = Affinity.from_dict(affs[i])
                assert given.cfar is not None and given.cfar[1] is None and given.cfar[2] is not None  # 1/8: the step's
                projections.clear()
                out = prop.add_keyframe(image, keys, roto[None], given) if i == 0 else prop.step(image, keys, given)
                if i in (1, 2, 3):
                    assert projections == ["cfar8"]  # the query's key at 1/8, once
                    assert keys._keys[0] is None and keys._keys[2] is None  # 1/16 and 1/4 never projected
                    assert all(pending_memory_keys())
            outs.append(out)
        state = prop.state_dict()  # a saved state holds the keys: made now
    finally:
        for h in hooks:
            h.remove()
    for c, o in zip(cold, outs, strict=True):
        assert torch.equal(c.alpha, o.alpha) and torch.equal(c.mask, o.mask)
    assert all(torch.equal(a[k], b[k]) for a, b in zip(affs[4:5], [outs[4].affinity.to_dict()], strict=True) for k in a)
    reference = Propagator(model)
    for i in range(6):
        image = frames[i : i + 1]
        keys = reference.keys_from_features(Propagator.key_features(reference.encode_keys(image)))
        reference.add_keyframe(image, keys, roto[None]) if i == 0 else reference.step(image, keys)
    expected = reference.state_dict()
    assert set(state) == set(expected)
    assert all(torch.equal(state[k], expected[k]) for k in expected)


def test_deferred_work_runs_in_the_state_it_was_put_off_in() -> None:
    """Put off under inference_mode and bf16 autocast, run outside both: the same result as at once."""
    from vom_plugin.model.deferred import deferred

    conv = torch.nn.Conv2d(4, 4, 1)
    x = torch.randn(1, 4, 3, 3)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        now = conv(x)
        later = deferred(lambda: conv(x), "cpu")
    got = later()  # here grad mode is on and autocast off: replayed in the recorded state
    assert got.dtype == torch.bfloat16 and torch.equal(got, now) and got.is_inference()
