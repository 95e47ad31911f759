"""Numeric settings read from the environment (``VOM_CACHE_MAX_GB``, ``VOM_STATE_INTERVAL_S``): one parser,
one error style. Bottom layer: stdlib and vom_plugin.errors only."""

from __future__ import annotations

import math
import os

from vom_plugin.errors import InputError


def env_float(name: str, default: float, *, expected: str, allow_zero: bool = True) -> float:
    """``float(os.environ[name])``, ``default`` when unset or empty; InputError naming the variable, its
    value and ``expected`` (e.g. "a number of GiB") when it is not a finite number or is negative (or zero when
    ``allow_zero`` is False)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{name} {text!r}: expected {expected}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):  # NaN, inf, negative, zero
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name} {text!r}: expected {expected}, finite and {bound}")
    return value
