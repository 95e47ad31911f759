"""Propagation plan over keyframes and the distance blend between two passes."""

from __future__ import annotations

import pytest

from vom_plugin.engine.schedule import blend_weight, plan
from vom_plugin.errors import InputError


def _passes(frames: list[int], kfs: list[int]) -> list[tuple[int, int, list[int]]]:
    return [(p.keyframe, p.direction, p.frames) for p in plan(frames, kfs)]


def test_single_keyframe_in_the_middle_goes_both_ways() -> None:
    assert _passes(list(range(1001, 1006)), [1003]) == [
        (1003, 1, [1003, 1004, 1005]),
        (1003, -1, [1003, 1002, 1001]),
    ]


def test_keyframe_at_the_start_only_forward_and_at_the_end_backward() -> None:
    assert _passes([1, 2, 3], [1]) == [(1, 1, [1, 2, 3])]
    assert _passes([1, 2, 3], [3]) == [(3, 1, [3]), (3, -1, [3, 2, 1])]


def test_two_keyframes_meet_between_and_every_frame_is_covered_once_per_direction() -> None:
    passes = plan(list(range(10, 21)), [12, 18])
    assert [(p.keyframe, p.direction, p.frames) for p in passes] == [
        (12, 1, [12, 13, 14, 15, 16, 17]),
        (12, -1, [12, 11, 10]),
        (18, 1, [18, 19, 20]),
        (18, -1, [18, 17, 16, 15, 14, 13]),
    ]
    # the weights of the passes covering a frame sum to one, and there is no jump at a keyframe
    for f in range(10, 21):
        total = sum(p.weight(f) for p in passes if f in p.frames)
        assert total == pytest.approx(1.0), f
    fwd, back = passes[0], passes[3]
    assert fwd.weight(13) == pytest.approx(5 / 6) and back.weight(13) == pytest.approx(1 / 6)
    assert fwd.weight(17) == pytest.approx(1 / 6) and back.weight(17) == pytest.approx(5 / 6)


def test_stepped_frames_and_keyframes_off_the_list() -> None:
    # frames 1,3,5,7 with a keyframe on 4 (not in the list): the keyframe joins the timeline
    assert _passes([1, 3, 5, 7], [4]) == [(4, 1, [4, 5, 7]), (4, -1, [4, 3, 1])]


def test_blend_weight_is_linear_in_frame_distance() -> None:
    assert blend_weight(1010, 1000, 1020) == pytest.approx(0.5)
    assert blend_weight(1000, 1000, 1020) == 1.0
    assert blend_weight(1020, 1000, 1020) == 0.0
    assert blend_weight(1015, 1020, 1000) == pytest.approx(0.75)  # from the later keyframe, backward
    assert blend_weight(5, 3, None) == 1.0


def test_no_keyframe_is_an_input_error() -> None:
    with pytest.raises(InputError, match="keyframes"):
        plan([1, 2, 3], [])


def test_frames_through_are_what_each_serving_pass_read_on_its_way() -> None:
    """vom:through digests the plate frames whose pictures reach a frame's matte: before the first keyframe its
    backward pass from it, after the last its forward pass, between two both passes (every frame between them, the
    far keyframe read at every step after the keyframe's own), a keyframe its own forward pass's first step; every
    object's, objects sharing each pixel out."""
    from vom_plugin.engine.schedule import all_passes, frames_through

    timeline = list(range(1, 11))
    one = all_passes(timeline, [[3, 7]])
    assert frames_through(1, one) == [1, 2, 3]
    assert frames_through(5, one) == [3, 4, 5, 6, 7]
    assert frames_through(9, one) == [7, 8, 9]
    assert frames_through(3, one) == [3]  # its forward pass's first step, which reads no anchor (review)
    assert frames_through(7, one) == [7]  # the last keyframe's forward pass runs toward none
    two = all_passes(timeline, [[3, 7], [1]])  # a second object from frame 1
    assert frames_through(9, two) == list(range(1, 10))
    # a plate on twos: the frames on disk
    assert frames_through(9, all_passes([1, 3, 5, 7, 9], [[5]])) == [5, 7, 9]
