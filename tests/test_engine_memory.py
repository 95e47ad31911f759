"""Memory policies: parsing, what is written and kept; the bank never grows past the policy's slots."""

from __future__ import annotations

import pytest

from vom_plugin.engine.memory import MemoryBank, parse_memory_policy
from vom_plugin.errors import InputError


def _simulate(text: str, n: int) -> list[int]:
    bank = MemoryBank(text)
    for t in range(n):
        if bank.writes(t):
            bank.add(t, object())  # type: ignore[arg-type]
        assert len(bank) <= bank.policy.slots
    return sorted(bank.frames)


@pytest.mark.parametrize(
    ("text", "after10", "slots"),
    [
        ("first+prev2", [0, 8, 9], 3),
        ("prev2", [8, 9], 2),
        ("every-3", [3, 6, 9], 3),
        ("first+every-4", [0, 4, 8], 3),
        ("every-5", [0, 5], 3),
        ("first+prev1", [0, 9], 2),
    ],
)
def test_policies_keep_what_the_paper_table_says(text: str, after10: list[int], slots: int) -> None:
    assert _simulate(text, 10) == after10
    assert parse_memory_policy(text).slots == slots


def test_first_prev2_early_frames() -> None:
    assert _simulate("first+prev2", 1) == [0]
    assert _simulate("first+prev2", 2) == [0, 1]
    assert _simulate("first+prev2", 3) == [0, 1, 2]
    assert _simulate("first+prev2", 4) == [0, 2, 3]


@pytest.mark.parametrize("bad", ["first+prev0", "every-0", "last2", "every5", "", "first+", "prev-2"])
def test_bad_policies_name_the_value(bad: str) -> None:
    with pytest.raises(InputError) as e:
        parse_memory_policy(bad)
    assert repr(bad) in str(e.value) and "first+prev2" in str(e.value)
