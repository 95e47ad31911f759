"""Small helpers the command modules share (a leading underscore: not a subcommand)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vom_plugin.nodedef import Knob


def _number(kind: type, ok: Callable[[int | float], bool], what: str) -> Callable[[str], int | float]:
    """An argparse type: a number of ``kind`` for which ``ok`` holds; otherwise "expected ``what``, got ..."."""

    def parse(text: str) -> int | float:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(v) or (isinstance(v, float) and not math.isfinite(v)):  # inf/nan pass every comparison test
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v

    return parse


def positive(kind: type) -> Callable[[str], int | float]:
    """An argparse type: a number of ``kind`` (int or float) greater than 0."""
    return _number(kind, lambda v: v > 0, f"a positive {kind.__name__}")


count = _number(int, lambda v: v >= 0, "a whole number >= 0")
"""An argparse type: a whole number >= 0."""

non_negative = _number(float, lambda v: v >= 0, "a number >= 0")
"""An argparse type: a number >= 0 (0 often switching something off)."""

fraction_below_one = _number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")
"""An argparse type: a number in [0, 1) (an EMA's decay)."""


def knob_type(knob: Knob, convert: Any = str) -> Any:
    """argparse ``type=``: the knob's grammar (vom_plugin.grammar), so a bad value is a usage error naming the flag
    once (argparse says "argument --flag: " before it) and the knob's type ("invalid int value: 'big'"). A blank
    value is the setting's default, as in a shot file (``--memory=`` over a shot file's memory was refused, QA): ""
    goes on to the Shot, which says so."""
    from vom_plugin.errors import InputError
    from vom_plugin.grammar import arg_type, parse_knob

    def knob_value(text: str) -> Any:
        from vom_plugin.engine.shot import DEFAULT_WHEN_BLANK

        if not text.strip() and knob.name in DEFAULT_WHEN_BLANK:
            return ""
        try:
            return parse_knob(knob, convert(text), knob.flag)
        except InputError as e:
            raise InputError(str(e).removeprefix(f"{knob.flag} ")) from None

    parse = arg_type(knob_value)
    parse.__name__ = knob.type
    return parse


def human_size(n: float) -> str:
    """Bytes as B / KiB / MiB / GiB (binary units, as `du -h` and file managers show them)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def named_flags(args: argparse.Namespace, add_arguments: Callable[[argparse.ArgumentParser], None],
                positional: list[str] | None = None) -> set[str]:
    """The flags of a command given on its command line: those whose value is not the flag's default (a command of
    several jobs refuses a flag of another job instead of ignoring it). ``positional``: what the command's parser
    needs to parse at all (its action)."""
    p = argparse.ArgumentParser()
    add_arguments(p)
    defaults = vars(p.parse_args(positional or []))
    return {k for k, v in vars(args).items() if k in defaults and v != defaults[k]}


def flag_path(value: str, flag: str) -> str:
    """A path given as a flag, absolute, read as a shot file's are: ~user, and $SHOW / ${SHOW} where no shell expanded
    it (a quoted '$SHOW/...', a farm template's argument), an unset variable refused naming ``flag``; $$ is a $ of the
    path itself."""
    from vom_plugin.engine.shot import absolute, expand_user, expand_vars

    return absolute(expand_user(expand_vars(value, flag), flag))


def stdout_to_null() -> None:
    """Point the process's stdout at the null device, where whoever read it went away (a closed pipe, a terminal
    hung up): the interpreter's last flush then has nowhere to fail ("Exception ignored ... BrokenPipeError")."""
    import contextlib
    import os
    import sys

    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
