"""The grammar of every knob value, parsed in one place: what ``Shot`` accepts, the engine and the writer
accept too, because they all call these functions.

The node definition (``node_defs/vom_matte.yaml``) names the parser of each knob: its ``type`` (enum
choices, int range, non-empty string) or, where the text has a syntax of its own, ``grammar:`` (``channel``,
``memory``). Its defaults are parsed by the same functions when it is loaded, and code that needs a
default asks ``default(name)`` instead of repeating a literal. Frame ranges are parsed by
``io.sequence.parse_frame_range`` (fileseq) and keyframes/paths by ``engine.shot``; devices by
``parse_device`` here (the engine adds only whether the device exists).

Standard library only (plus the node definition loader), so ``Shot``, the CLI and the model can import it
without torch or OpenImageIO. Every failure is an ``InputError`` naming the field, the value and what was
expected.
"""

from __future__ import annotations

import argparse
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vom_plugin.errors import InputError
from vom_plugin.nodedef import Knob, load_node_def

# -- output channel: A or <layer>.A ---------------------------------------------------------------------

# ASCII (\w took vöm.A, which EXR readers spell as they please); nested layers and - are EXR's own, the Nuke node
# refuses them there
_CHANNEL = re.compile(r"\A(?:([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)\.)?A\Z", re.ASCII)


def parse_channel(value: Any, field: str = "channel") -> str:
    """``A`` or ``<layer>.A`` (``vom.A``, ``matte.fg.A``): the alpha's channel in the written EXR."""
    if not isinstance(value, str) or not _CHANNEL.match(value):
        raise InputError(f"{field} {value!r}: expected a channel name A or <layer>.A (e.g. vom.A)")
    return value


def channel_names(channel: str, output: str) -> list[str]:
    """The EXR channels written for ``channel`` and ``output`` mode: [<layer>.]A, or [<layer>.]R, G, B, A."""
    layer = parse_channel(channel)[:-1]  # "" or "<layer>."
    parse_value("output", output)
    return [layer + "A"] if output == "alpha" else [layer + c for c in ("R", "G", "B", "A")]


# -- objects: names that are EXR layers, and the semantic mask's channel ----------------------------------

_NAME = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
# Layers every compositing package already gives a meaning to: an object named so would merge into them.
RESERVED_LAYERS = frozenset({"rgba", "rgb", "alpha", "depth", "motion", "forward", "backward", "a", "r", "g", "b"})


def is_object_name(value: str) -> bool:
    """Whether ``value`` is a name ``parse_object_name`` accepts."""
    return bool(_NAME.match(value)) and value.lower() not in RESERVED_LAYERS


def parse_object_name(value: Any, field: str = "objects") -> str:
    """An object's name, which becomes its EXR layer (``hero`` -> ``hero.A``) and its ``{object}`` in file
    names: a letter or ``_`` then letters, digits or ``_`` (at most 64), not a layer hosts already use."""
    if isinstance(value, bool):  # YAML 1.1 reads unquoted yes/no/on/off/true/false as booleans
        raise InputError(f"{field}: object name {value!r} is how YAML reads an unquoted yes, no, on, off, true or "
                         "false; quote the name (e.g. objects: {'on': {1001: roto.1001.exr}})")
    if value is None:  # and null, ~ or nothing as null (QA: "object name None")
        raise InputError(f"{field}: an object name is missing, or is how YAML reads an unquoted null or ~; name it, "
                         "quoted if it is one of those (e.g. objects: {'null': {1001: roto.1001.exr}})")
    if not isinstance(value, str) or not _NAME.match(value):
        raise InputError(f"{field}: object name {value!r} is not a layer name; expected a letter or _ followed by "
                         f"letters, digits or _, 64 at most (e.g. hero, dog_2)")
    if value.lower() in RESERVED_LAYERS:
        raise InputError(f"{field}: object name {value!r} is a layer the comp already uses "
                         f"({', '.join(sorted(RESERVED_LAYERS))}); choose another name")
    return value


# a layer's channels that compositing packages read as its R, G, B and A (Nuke: hero.alpha is hero.A)
_RGBA_NAMES = frozenset({"a", "r", "g", "b", "alpha", "red", "green", "blue"})


def parse_mask_channel(value: Any, field: str = "mask_channel") -> str | None:
    """The channel of the semantic mask, written beside the alpha in its layer (``mask`` -> ``mask`` or
    ``hero.mask``); None or empty: not written (the knob's help says "Empty: not written"). Not A, R, G or B
    nor alpha, red, green or blue, in any case (the alpha's and the plate's channels, as hosts read them)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", value):
        raise InputError(f"{field} {value!r}: expected a channel name such as mask (letters, digits, _)")
    if value.lower() in _RGBA_NAMES:
        raise InputError(f"{field} {value!r}: that is the alpha's or the plate's channel (Nuke reads hero.alpha as "
                         f"hero.A, hero.red as hero.R); expected another name such as mask")
    return value


def object_channel(channel: str, name: str | None, leaf: str = "A") -> str:
    """The channel of object ``name``'s ``leaf`` (``A`` or the mask channel) for the ``channel`` knob:
    ``A`` -> ``hero.A``; ``vom.A`` -> ``vom.hero.A``; without a name, the knob's layer: ``A``, ``vom.mask``."""
    layer = parse_channel(channel)[:-1]
    return f"{layer}{name}.{leaf}" if name else f"{layer}{leaf}"


# -- memory policy (HSTSG Table 5) -------------------------------------------------------------------------

_MEMORY = re.compile(r"^(first\+)?(?:prev(\d+)|every-(\d+))$", re.ASCII)  # ASCII digits: prev٣ is no policy
MEMORY_FORMS = "first+prevK, prevK, every-N or first+every-N (K, N from 1; e.g. first+prev2, every-5)"
EVERY_SLOTS = 3


@dataclass(frozen=True)
class MemoryPolicy:
    """Which propagated frames are written to, and kept in, the memory bank.

    Frames are counted in propagation order from the keyframe (0 = the keyframe). Every policy is bounded,
    so memory does not grow with shot length:
    - ``prevK`` (e.g. ``prev2``): every frame is written; the K most recent are kept.
    - ``first+prevK`` (``first+prev2``, the paper's best): the keyframe plus the K most recent.
    - ``every-N``: frames 0, N, 2N, ... are written; the 3 most recent of those are kept (the paper does
      not bound it; 3 matches the default bank's size).
    - ``first+every-N``: the keyframe plus the 2 most recent of frames N, 2N, ...
    """

    text: str
    keep_first: bool
    prev: int  # K of prevK, 0 for every-N policies
    every: int  # N of every-N, 0 for prevK policies

    @property
    def slots(self) -> int:
        """Most frames the bank ever holds."""
        if self.prev:
            return self.prev + int(self.keep_first)
        return EVERY_SLOTS

    def writes(self, t: int) -> bool:
        """Is frame t (propagation order, 0 = keyframe) written to memory?"""
        return t == 0 or self.prev > 0 or t % self.every == 0

    def retain(self, frames: list[int]) -> list[int]:
        """Given the frames now in memory (ascending), those to keep."""
        frames = sorted(frames)
        if self.prev:
            recent = [f for f in frames if not (self.keep_first and f == 0)][-self.prev :]
        else:
            recent = [f for f in frames if not (self.keep_first and f == 0)][-(EVERY_SLOTS - int(self.keep_first)) :]
        head = [0] if (self.keep_first and 0 in frames) else []
        return head + [f for f in recent if f not in head]


def parse_memory_policy(value: Any, field: str = "memory") -> MemoryPolicy:
    """``first+prev2``, ``prev3``, ``every-5``, ``first+every-3`` -> MemoryPolicy; InputError otherwise."""
    text = value.strip().lower() if isinstance(value, str) else ""
    m = _MEMORY.match(text)
    prev = int(m.group(2)) if m and m.group(2) else 0
    every = int(m.group(3)) if m and m.group(3) else 0
    if not m or (m.group(2) and prev < 1) or (m.group(3) and every < 1):
        raise InputError(f"{field} {value!r}: expected {MEMORY_FORMS}")
    # one spelling a policy: prev02 and prev2 were one policy under two cache identities and recipes (QA)
    canonical = ("first+" if m.group(1) else "") + (f"prev{prev}" if m.group(2) else f"every-{every}")
    return MemoryPolicy(text=canonical, keep_first=bool(m.group(1)), prev=prev, every=every)


# -- device ----------------------------------------------------------------------------------------------

# ASCII digits, no leading zero, at most 2 digits: torch refuses cuda:01 and other digits (cuda:١), and keeps
# an index in 8 bits (cuda:9999 is its cuda:15); they passed here only to fail as an internal error on a GPU (QA)
_DEVICE = re.compile(r"^(auto|cpu|cuda(?::(?:0|[1-9][0-9]?))?)$", re.ASCII)


def parse_device(value: Any, field: str = "device") -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (normalised to lower case); whether it exists is the engine's
    question (``engine.device.resolve_device``)."""
    text = str(value).strip().lower() if isinstance(value, str) else ""
    if not _DEVICE.match(text):
        raise InputError(f"{field} {value!r}: expected auto, cpu, cuda or cuda:N")
    return text


# -- knob values by type ---------------------------------------------------------------------------------

def _choice(knob: Knob, value: Any, field: str) -> str:
    if value not in knob.choices:
        raise InputError(f"{field} {value!r}: expected one of {', '.join(knob.choices)}")
    return str(value)


def _int(knob: Knob, value: Any, field: str) -> int:
    lo, hi = knob.range or (float("-inf"), float("inf"))
    # a host's knob as text, a quoted YAML value: the number it spells, as keyframe keys are read (QA)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?[0-9]{1,18}\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):  # numpy's ints too (QA)
        raise InputError(f"{field} {value!r}: expected a whole number from {lo:g} to {hi:g}")
    value = int(value)
    if not lo <= value <= hi:
        raise InputError(f"{field} {value}: out of range; expected {lo:g} to {hi:g}")
    return value


def _string(knob: Knob, value: Any, field: str) -> str:
    if knob.grammar and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # ``memory: 5``: the grammar says what it expects (the knob's whole help text did, QA)
    if not isinstance(value, str) or not value.strip():
        first = re.split(r"(?<!e\.g)\. ", knob.help.rstrip("."), maxsplit=1)[0]  # its first sentence, not a paragraph
        raise InputError(f"{field} {value!r}: expected a non-empty string ({first})")
    return value


# The knobs' own grammars (``grammar:`` in the node definition): name -> parser of (value, field) -> value.
GRAMMARS: dict[str, Callable[[Any, str], Any]] = {
    "channel": parse_channel,
    "memory": lambda value, field: parse_memory_policy(value, field).text,
    "device": parse_device,
    "mask_channel": parse_mask_channel,
}
# Knob types whose values this module parses; path, frame_range and keyframes are Shot's (see above).
_BY_TYPE: dict[str, Callable[[Knob, Any, str], Any]] = {"enum": _choice, "int": _int, "string": _string}


def parse_knob(knob: Knob, value: Any, field: str | None = None) -> Any:
    """``value`` parsed by the knob's type and grammar (normalised), or InputError naming ``field``."""
    field = field or knob.name
    given = value
    if (value is None or value == "") and knob.default is None and not knob.required:
        return None  # an optional knob left empty (mask_channel: nothing written)
    if knob.type in _BY_TYPE and not (knob.type == "enum" and knob.grammar):  # a grammar reads more than the
        value = _BY_TYPE[knob.type](knob, value, field)                      # host's menu (device: cuda:1)
    if knob.grammar:
        value = GRAMMARS[knob.grammar](value, field)
        if knob.type == "string" and isinstance(given, numbers.Number) and not isinstance(given, bool):
            # a number its grammar took as a name: YAML's .nan or 1e3 became the channel "nan" (QA); quoted, it is one
            raise InputError(f"{field} {given!r}: a number, where a name is expected; write it in quotes "
                             f"(\"{value}\") if that is the name meant")
    return value


def parse_value(name: str, value: Any, field: str | None = None) -> Any:
    """The value of the VOM Matte knob ``name`` parsed by its grammar; InputError naming ``field``."""
    return parse_knob(load_node_def().knob(name), value, field)


def default(name: str) -> Any:
    """The node definition's default of knob ``name`` (the only place a default is written)."""
    return load_node_def().knob(name).default


def arg_type(parse: Callable[[Any], Any]) -> Callable[[str], Any]:
    """An argparse ``type=`` from a parser: a bad value becomes argparse's usage error (exit 2)."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except InputError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert
