"""Settings read from the environment (``VOM_CACHE_MAX_GB``, ``VOM_STATE_INTERVAL_S``; switches such as
``VOM_TRACEBACK``): one parser per kind, one error style. Bottom layer: stdlib and vom_plugin.errors only."""

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


FLAGS = ("VOM_TRACEBACK", "VOM_ALLOW_FORK")


def env_flag(name: str) -> bool:
    """A switch: ``1`` on, ``0`` or unset/empty off; InputError naming the variable for anything else (``yes`` was
    taken for off, silently)."""
    text = os.environ.get(name, "").strip()
    if text not in ("", "0", "1"):
        raise InputError(f"{name} {text!r}: expected 1 (on) or 0 (off)")
    return text == "1"
