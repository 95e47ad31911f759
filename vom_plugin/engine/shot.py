"""``Shot``: everything one render needs, with fields and defaults taken from the node definition.

The knobs of ``node_defs/vom_matte.yaml`` are the fields (same names, same defaults), so the Nuke node,
the ``vom render`` flags and a TD's YAML shot file cannot drift apart. Every field is validated when the
Shot is built; a bad one raises ``InputError`` naming the field, the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import numbers
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from vom_plugin.digest import content_digest
from vom_plugin.errors import InputError
from vom_plugin.grammar import parse_value
from vom_plugin.locations import MODEL_ALIASES
from vom_plugin.nodedef import load_node_def

StrPath: TypeAlias = "str | os.PathLike[str]"  # a path as Shot(...) takes it
SequencePath: TypeAlias = "str | os.PathLike[str] | fileseq.FileSequence"  # a plate or out pattern as it takes them
if TYPE_CHECKING:
    import fileseq

# Marks "not given": the node definition's default applies. Kept distinct from None because some
# defaults are None (frames = the plate's range, cache = the user cache).
_UNSET: Any = type("Unset", (), {"__repr__": lambda self: "<default>"})()

OBJECT_TOKEN = "{object}"  # in ``out``: one sequence per object, named after it
_FRAME_TOKEN = re.compile(r"#+|@+|%0?[0-9]*d|\$F[0-9]*")
_ROTO_AT = re.compile(r"^(?P<path>.+)@(?P<frame>-?[0-9]+)$")


def parse_roto_arg(text: str, *, field: str = "--roto") -> tuple[int, str]:
    """``roto.1001.exr`` (frame from the number before the extension) or ``PATH@FRAME`` -> (frame, path)."""
    m = _ROTO_AT.match(text)
    if m:
        return int(m.group("frame")), m.group("path")
    name = os.path.basename(text)
    tokens = [t for t in _FRAME_TOKEN.findall(name) if t != "@"]  # a lone @ is PATH@FRAME's
    if tokens and not Path(text).exists():  # roto.####.exr: PATH@FRAME would be refused too (QA)
        raise InputError(f"{field} {text!r}: a roto is one file, not a pattern; name the keyframe's file (e.g. "
                         f"{text[: len(text) - len(name)]}{_FRAME_TOKEN.sub('1001', name, count=1)})")
    path, at, after = text.rpartition("@")
    if at and not path and not Path(text).exists():
        raise InputError(f"{field} {text!r}: no roto file before the '@'; expected PATH@FRAME (e.g. roto.exr{text})")
    if at and path and "/" not in after and not Path(text).exists():
        # PATH@abc: the frame given is not a number (it was taken as part of the file name, "roto.0001.exr@abc does
        # not exist"); a file whose name holds an @ (and exists) is read as it is
        raise InputError(f"{field} {text!r}: {after!r} after the '@' is not a frame number; expected PATH@FRAME "
                         f"(e.g. {path}@1001)")
    from vom_plugin.io.sequence import frame_from_path

    frame = frame_from_path(text)
    if frame is None:
        raise InputError(f"{field} {text!r}: no frame number in the file name (the digits before the extension, "
                         f"after a '.', '_' or '-': roto.1001.exr); give it as PATH@FRAME (e.g. {text}@1001)")
    return frame, text


_NAMED = re.compile(r"^(?P<name>[^=/\\]+)=(?P<rest>.+)$")


def parse_object_roto_arg(text: str, *, field: str = "--roto") -> tuple[str | None, int, str]:
    """``NAME=PATH[@FRAME]`` (an object's roto) or ``PATH[@FRAME]`` (the one unnamed object's) ->
    (name or None, frame, path). The name is checked as a layer name."""
    from vom_plugin.grammar import parse_object_name

    m = _NAMED.match(text)
    # a file whose own name holds "=" (roto_v=2.1001.exr) is that file, not an object "roto_v"
    if not m or os.path.isfile(re.sub(r"@-?[0-9]+$", "", text)):
        return (None, *parse_roto_arg(text, field=field))
    name = parse_object_name(m.group("name"), f"{field} {text!r}")
    return (name, *parse_roto_arg(m.group("rest"), field=f"{field} {name}="))


def keyframes_stamp(keyframes: Mapping[str | None, Any]) -> str:
    """What an output's ``vom:keyframes`` says: ``1001,1050`` for the one unnamed matte, ``hero:1001;dog:1001,1050``
    per object (the objects in that file). ``read_keyframes_stamp`` reads it back (``vom farm check``)."""
    if list(keyframes) == [None]:
        return ",".join(str(k) for k in keyframes[None])
    return ";".join(f"{n}:" + ",".join(str(k) for k in kfs) for n, kfs in keyframes.items() if n)


def read_keyframes_stamp(text: str) -> dict[str | None, set[int]]:
    """``keyframes_stamp``'s object -> keyframes; ValueError when ``text`` is not such a stamp."""
    if ":" not in text:
        return {None: {int(k) for k in text.split(",") if k}}
    return {n: {int(k) for k in ks.split(",") if k} for n, _, ks in (part.partition(":") for part in text.split(";"))}


def roto_layers(shot: Shot, view: str | None = None) -> dict[str | None, dict[int, str | None]]:
    """Each object's keyframe rotos' own layer (``io.roto_layer_of``: ``hero.A`` of a file of several; of a stereo
    roto, the plate's ``view``'s: ``prepare.plate_view``), None where the file's alpha is read."""
    from vom_plugin import io as vio

    return {name: {kf: vio.roto_layer_of(path, name, view) for kf, path in kfs.items()}
            for name, kfs in shot.rotos().items()}


def recipe_stamp(shot: Shot, windows: Mapping[int, tuple[Any, Any]],
                 layers: Mapping[str | None, Mapping[int, str | None]] | None = None) -> str:
    """``recipe_stamps``' ``vom:recipe``."""
    return recipe_stamps(shot, windows, layers)[0]


def recipe_stamps(shot: Shot, windows: Mapping[int, tuple[Any, Any]],
                  layers: Mapping[str | None, Mapping[int, str | None]] | None = None) -> tuple[str, str, str]:
    """(``vom:recipe``, ``vom:rotos``, ``vom:settings``). ``vom:rotos``: each keyframe's roto's own digest
    (``object:keyframe=digest`` by ``;``, the unnamed object's without a name), by which `vom farm check` names the
    roto that changed (QA: every object's file of a frame failed as "rendered from other rotos, settings or weights"
    where one object's roto was redrawn, and the check named the first object's file). ``vom:settings``: the rest of
    the recipe as JSON (each setting and the weights' digest), by which the check names every setting that changed
    with both values, and knows where the rotos alone differ: then only the frames that read a changed roto are stale
    (QA: top_k and memory went unnamed; a redraw at the last keyframe flagged frames that never read it).

    What an output's ``vom:recipe`` says: a digest of what decides its pixels besides the plate: the settings,
    the weights' bytes and each keyframe's roto, its bytes and placement over its keyframe's plate ``windows``
    (display, data), of every object of the shot, whichever the file holds (an object's alpha is lowered where
    the others' overlap it, so an ``{object}`` file depends on the other objects' rotos too: one removed or
    redrawn makes it stale). Contents only, no file times: a farm node's synced copies give the same stamp.
    ``vom farm check`` recomputes it, so a frame rendered from an earlier version of the shot (another roto on
    the same keyframe, another working size, colour space, output mode or weights) fails the check. The plate's
    own pixels are not in it. ``layers``: ``roto_layers(shot)``, where the caller has them."""
    import hashlib
    import json

    from vom_plugin import io as vio
    from vom_plugin.engine.weights import weights_path

    rotos = shot.rotos()
    layers = roto_layers(shot) if layers is None else layers
    from vom_plugin.engine.models import network_revision
    from vom_plugin.engine.weights_header import read_weights_metadata

    weights = weights_path(shot.model)
    settings = {"working_size": shot.working_size, "colorspace": shot.colorspace, "memory": shot.memory,
                "top_k": shot.top_k, "output": shot.output, "weights": content_digest(weights),
                **network_revision(read_weights_metadata(weights).get("config", ""))}
    recipe = {**settings,
              "rotos": {str(n): {str(kf): [content_digest(p),
                                           vio.roto_over_data_window(p, windows[kf], channel=layers[n][kf])]
                                 + ([layers[n][kf]] if layers[n][kf] else [])  # an object's own layer
                                 for kf, p in sorted(rotos[n].items())} for n in rotos}}

    def digest_of(value: object, size: int) -> str:
        return hashlib.blake2b(json.dumps(value, sort_keys=True).encode(), digest_size=size).hexdigest()

    each = ";".join(sorted(f"{'' if n is None else n}:{kf}={digest_of(v, 6)}"
                           for n in rotos for kf, v in recipe["rotos"][str(n)].items()))
    return digest_of(recipe, 12), each, json.dumps(settings, sort_keys=True)


def _unknown_tokens(out: str) -> list[str]:
    """The ``{word}``s of an output pattern other than ``{object}`` (``${VAR}`` is an environment variable's), but
    for those of a folder that exists: a real folder of that name, not a template left unfilled."""
    parts = Path(out).parts
    # also a template's other spellings: {{ shot }}, { object }, {shot.name}, {{object}} (QA: written as literal
    # names, one shared by every object); not a hyphen, which a Windows GUID folder ({D3E34B21-...}) holds (review)
    token = r"(?<!\$)\{\{?\s*[A-Za-z_][A-Za-z0-9_.]*\s*\}\}?"
    return [t for i, part in enumerate(parts) for t in re.findall(token, part)
            if t != OBJECT_TOKEN and not (i < len(parts) - 1 and Path(*parts[: i + 1]).is_dir())]


def check_roto_file(field: str, frame: int, path: Path) -> None:
    """InputError, naming the ``field`` and keyframe, when a roto path is not a file."""
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        if not path.exists() and has_frame_token(str(path)):
            # a pattern where one file goes (QA: "roto.####.exr (frame 1003) does not exist" beside roto.1003.exr)
            from vom_plugin.io.sequence import frame_path

            try:
                one: Path | None = frame_path(str(path), frame)
            except InputError:  # several frame tokens: no one file to name (the field is named below)
                one = None
            there = f" ({one} exists)" if one is not None and one.is_file() else ""
            what += f": a roto is one file, not a pattern; name the keyframe's file{there}"
        raise InputError(f"{field}: roto file {path} (frame {frame}) {what}")


def _same_path(a: object, b: object) -> bool | None:
    """Whether two resolved path fields name one path or sequence, through links and whatever the frame token's
    spelling (review: link/vom/a.####.exr and real/vom/a.%04d.exr passed for another out); None where either is
    not a path string (a shot file without out)."""
    if not isinstance(a, (str, os.PathLike)) or not isinstance(b, (str, os.PathLike)):
        return None
    from vom_plugin.io.output_guard import same_sequence_name

    a, b = os.fspath(a), os.fspath(b)
    try:
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b)) or \
            same_sequence_name(a, b)
    except ValueError:  # a NUL in one (refused by name where the field is checked: review, a traceback here)
        return None


def has_frame_token(pattern: str) -> bool:
    return bool(_FRAME_TOKEN.search(os.path.basename(pattern)))


@dataclasses.dataclass(kw_only=True)
class Shot:
    """One render job. Paths are made absolute; ``frames`` None means every plate frame on disk."""

    plate: str
    out: str
    keyframes: dict[int, Path] = _UNSET
    objects: dict[str, dict[int, Path]] | None = _UNSET
    frames: list[int] | None = _UNSET
    channel: str = _UNSET
    mask_channel: str | None = _UNSET
    output: str = _UNSET
    compression: str = _UNSET
    working_size: int = _UNSET
    colorspace: str = _UNSET
    model: str = _UNSET
    device: str = _UNSET
    memory: str = _UNSET
    top_k: int = _UNSET
    cache: Path | None = _UNSET
    # Not a field (fields are the knobs): the shot file this came from, which an output must never replace.
    # Set by from_yaml; a Shot built in code has none (dataclasses.replace drops it too).
    source_file = None
    # Not a field either: the frames of the whole shot a render of this Shot is a chunk of, where ``--frames`` gives
    # a chunk of a shot file's frames (a farm task's; None otherwise: a host's shot file widened later, or a Python
    # chunk, goes on from the state its end keeps). A pass cut short at their end keeps no memory state.
    whole_frames = None  # list[int] | None

    if TYPE_CHECKING:  # what Shot(...) takes, for type checkers; the fields above are what it holds once checked
        def __init__(self, *, plate: SequencePath, out: SequencePath,
                     keyframes: Mapping[int | str, StrPath] | Sequence[StrPath] | StrPath | None = ...,
                     objects: Mapping[str, Mapping[int | str, StrPath] | Sequence[StrPath] | StrPath] | None = ...,
                     frames: str | Iterable[int] | None = ..., channel: str = ..., mask_channel: str | None = ...,
                     output: str = ..., compression: str = ..., working_size: int = ..., colorspace: str = ...,
                     model: StrPath = ..., device: str = ..., memory: str = ..., top_k: int = ...,
                     cache: StrPath | None = ...) -> None: ...

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            # a setting left blank (YAML's null or ""; a host's cleared knob, which the hosts leave out) is its
            # default, as the node definition says for every host
            blank = value is None or (isinstance(value, str) and not value.strip())
            if value is _UNSET or (blank and f.name in DEFAULT_WHEN_BLANK):
                setattr(self, f.name, load_node_def().knob(f.name).default)
        self.plate = _pattern("plate", self.plate)
        self.out = _pattern("out", self.out)
        # blank rotos are none given, as for every other field (QA: objects: '' beside keyframes was "both given";
        # keyframes: '' was read as a roto at the shot file's folder)
        def blank(value: Any) -> bool:
            return isinstance(value, str) and not value.strip()

        def empty(value: Any) -> bool:  # {} or [], as a template writes a field it has nothing for
            return isinstance(value, Mapping | list | tuple) and not value

        if blank(self.objects):
            self.objects = None
        if blank(self.keyframes):
            self.keyframes = None
        # beside the other given, an empty one is none given (QA: objects: {} beside keyframes was "both given"); alone,
        # it is said as empty
        if empty(self.objects) and self.keyframes is not None and not empty(self.keyframes):
            self.objects = None
        if empty(self.keyframes) and self.objects is not None and not empty(self.objects):
            self.keyframes = None
        if self.objects is not None:
            if self.keyframes not in (None, {}):
                raise InputError("keyframes and objects are both given: keyframes are one unnamed object's rotos, "
                                 "objects name each object's; give the rotos of every object under objects")
            self.objects = _objects(self.objects)
            self.keyframes = {}
        elif self.keyframes is None:
            raise InputError("keyframes: missing; expected the roto of at least one frame (--roto roto.1001.exr), "
                             "or objects by name (--roto hero=roto_hero.1001.exr)")
        else:
            self.keyframes = _keyframes(self.keyframes)
        other = _unknown_tokens(self.out)
        if other:  # a misspelt {object} ({obj}, {Object}) or a pipeline's template left unfilled ({shot}): a file
            # of that literal name was written, shared by every object
            raise InputError(f"out {self.out!r}: {other[0]} is no token of vom's, which expands {OBJECT_TOKEN} (the "
                             f"object's name) and frame tokens (####, %04d, $F4) only; fill in or remove it")
        if OBJECT_TOKEN in self.out and self.objects is None:
            raise InputError(f"out {self.out!r}: {OBJECT_TOKEN} names the object of each sequence, but the shot "
                             f"has no objects (give them by name: --roto hero=roto_hero.1001.exr)")
        for pattern in self.out_patterns().values():
            if os.path.normpath(self.plate) == os.path.normpath(pattern):
                raise InputError(f"out {self.out!r} is the plate pattern; the render would overwrite the plate")
        # blank: the plate's range, as from_dict, --frames= and the hosts read it (QA: Shot(frames='') refused)
        self.frames = None if isinstance(self.frames, str) and not self.frames.strip() else _frames(self.frames)
        if isinstance(self.model, os.PathLike):  # a checkpoint's path as pathlib gives it, as the other paths take it
            self.model = os.fspath(self.model)
        # the grammar every later stage uses (engine, EXR writer): what is accepted here cannot fail there
        for name in ("channel", "mask_channel", "output", "compression", "working_size", "colorspace", "model",
                     "device", "memory", "top_k"):
            setattr(self, name, parse_value(name, getattr(self, name)))
        self._check_outputs_written()
        if self.model not in MODEL_ALIASES:  # a checkpoint's path: the same file wherever the render runs (a worker)
            self.model = absolute(expand_user(self.model, "model"), "model")
        if isinstance(self.cache, str) and not self.cache.strip():
            self.cache = None  # the node's knob left empty (a wrapper's empty $SHOW_CACHE): the user cache
        if self.cache is not None:
            if not isinstance(self.cache, str | os.PathLike) or not str(self.cache).strip():
                raise InputError(f"cache {self.cache!r}: expected a folder path or nothing (the user cache)")
            self.cache = Path(absolute(expand_user(str(self.cache), "cache"), "cache"))
        _text_paths(self)
        object.__setattr__(self, "_made", True)

    def __setattr__(self, name: str, value: Any) -> None:
        # a relative path set after the Shot was made is the working folder's when it is set, as Shot(...) reads one
        # (QA: it was read at render time, so a host that changed folder in between wrote the mattes elsewhere, and
        # == of two Shots changed with the working folder)
        if name in _PATH_FIELDS and self.__dict__.get("_made"):
            value = _resolved({name: value}, _working_folder(name))[name]
        object.__setattr__(self, name, value)

    def checked(self) -> Shot:
        """This Shot as ``Shot(...)`` of its fields now makes it: a field set after it was made (``shot.frames =
        "1-2"``, a relative ``shot.out``) is parsed, made absolute and checked (InputError) as one given to
        ``Shot(...)`` is. ``render``, ``to_dict``, ``to_yaml`` and ``==`` read a Shot so."""
        shot = dataclasses.replace(self)
        shot.source_file, shot.whole_frames = self.source_file, self.whole_frames
        return shot

    def __eq__(self, other: object) -> bool:
        # the Shots a render of each would run: a field set to "2-3" after Shot(...) equals Shot(frames="2-3")
        if other.__class__ is not self.__class__:
            return NotImplemented
        try:
            a, b = self.checked(), other.checked()  # type: ignore[attr-defined]
        except InputError:  # a field set to a value Shot(...) refuses: equal only to the same fields
            a, b = self, other
        return all(getattr(a, f.name) == getattr(b, f.name) for f in dataclasses.fields(self))

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass's with its __eq__ is

    def _check_outputs_written(self) -> None:
        """What only the first EXR write refused, after the compute (and what a farm job was made for, every task of
        it then exiting 2: QA): an output that is not an EXR, rgba-premult with the objects in one file, and a
        channel name longer than an EXR holds (cut to 255 bytes without a word: the channel asked for was not in
        the files)."""
        from vom_plugin.grammar import object_channel

        patterns = self.out_patterns()
        for pattern in patterns.values():
            if Path(pattern).suffix.lower() != ".exr":
                raise InputError(f"out {self.out!r}: expected an .exr file pattern (e.g. alpha.####.exr)")
        if self.objects is not None and None in patterns and self.output == "rgba-premult":
            raise InputError(f"output rgba-premult: the objects share one file, and its RGB can be premultiplied by "
                             f"one alpha only; write alpha or rgba, or put {OBJECT_TOKEN} in out ({self.out!r}) for "
                             f"one sequence per object")
        names: list[str | None] = [None] if self.objects is None else [*self.objects, None]
        for name in names:
            for leaf in ("A", *([self.mask_channel] if self.mask_channel else [])):
                written = object_channel(self.channel, name, leaf)
                if len(written.encode("utf-8")) > 255:
                    raise InputError(f"channel {self.channel!r}: the channel {written[:40]}... is "
                                     f"{len(written.encode('utf-8'))} bytes long, more than the 255 an EXR channel "
                                     f"name holds; use a shorter layer or object name")

    # -- objects ------------------------------------------------------------------------------------

    def rotos(self) -> dict[str | None, dict[int, Path]]:
        """Each object's keyframe rotos, in the shot's order; a shot of one unnamed object: {None: keyframes}."""
        if self.objects is not None:
            return dict(self.objects)
        return {None: dict(self.keyframes)}

    def out_patterns(self) -> dict[str | None, str]:
        """Output pattern of each file sequence written: one (key None) holding every object's layer, or one
        per object when ``out`` has ``{object}``."""
        if self.objects is not None and OBJECT_TOKEN in self.out:
            return {name: self.out.replace(OBJECT_TOKEN, name) for name in self.objects}
        return {None: self.out}

    # -- construction from files and mappings ------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base_dir: str | os.PathLike | None = None,
                  source: str = "shot") -> Shot:
        """Build from a mapping with the node's knob names as keys; relative paths resolve against base_dir."""
        if not isinstance(data, Mapping):
            raise InputError(f"{source}: expected a mapping of fields (plate, frames, keyframes, out, ...), "
                             f"got {type(data).__name__}")
        known = [k.name for k in load_node_def().knobs]
        unknown = [k for k in data if k not in known]
        if unknown:
            raise InputError(f"{source}: unknown field(s) {', '.join(map(repr, unknown))}; "
                             f"expected only {', '.join(known)}")
        missing = [k.name for k in load_node_def().knobs if k.required and data.get(k.name) in (None, "", {})
                   and not (k.name == "keyframes" and data.get("objects") is not None)]  # or rotos by object
        if missing:
            raise InputError(f"{source}: missing required field(s) {', '.join(missing)}")
        values = dict(data) if base_dir is None else _resolved(data, Path(base_dir))
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides: Any) -> Shot:
        """Load a YAML shot file (plain data, no aliases: ``safe_yaml``); ``overrides`` (knob names) replace
        its fields, None leaving the file's. Relative paths in the file are the file's folder's; those of
        ``overrides`` the working folder's, as on the command line (``vom render shot.yaml --out ...``).

        Paths given as text in ``overrides`` (plate, out, cache, model, the rotos of keyframes and objects) are read
        as those flags read theirs: ``$SHOW``/``${SHOW}`` expanded, an unset variable refused naming the field, ``$$``
        a ``$`` of the path itself, ``~user``. A ``pathlib.Path`` (or a ``fileseq.FileSequence``) is a path built in
        Python, taken as it is: its ``$`` is its own (``~`` at its start is still a home folder, as in ``Shot``)."""
        from vom_plugin import safe_yaml

        # a misspelt keyword is the caller's, not the file's (QA: blamed on the shot file, with no hint)
        _check_names(overrides, "Shot.from_yaml: unknown override(s)")
        p = Path(path)
        data = safe_yaml.load_file(p, f"shot file {str(p)!r}")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InputError(f"shot file {str(p)!r}: expected a mapping of fields, got {type(data).__name__}")
        try:
            data = _expand_file_paths(data)
        except InputError as e:
            raise InputError(f"shot file {str(p)!r}: {e}") from None
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if overrides:  # (the working folder is asked for only then: it may be gone, a shot file's paths need it not)
            # text is expanded as a flag is (QA: out='$SHOW/o/a.####.exr' wrote into a folder named $SHOW)
            overrides = _resolved(_expand_file_paths(overrides), _working_folder("a flag's path"))
        try:
            data = _resolved(data, p.resolve().parent)
        except InputError as e:  # a ~user of no user: which file says it (QA)
            raise InputError(f"shot file {str(p)!r}: {e}") from None
        # rotos of the other kind than the file's replace every object of it, and their layers in the shot's shared
        # output files (a QA pass: an unnamed --roto on a file of objects rewrote its EXRs with A alone, exit 0);
        # into files of the render's own (out given too) they are a render of their own
        objects = data.get("objects") if isinstance(data.get("objects"), Mapping) else None
        # an out of this render's own: not the file's (a wrapper passing the file's own out is the shot's outputs)
        own_out = "out" in overrides and _same_path(overrides["out"], data.get("out")) is not True
        if not own_out and "keyframes" in overrides and objects:
            raise InputError(f"shot file {str(p)!r} names its objects ({', '.join(map(str, objects))}): give each "
                             f"roto as NAME=PATH[@FRAME], as the file does, or an out of this render's own (unnamed "
                             f"rotos replace every object, and their layers in the shot's output files)")
        if not own_out and "objects" in overrides and data.get("keyframes") and not objects:
            raise InputError(f"shot file {str(p)!r} has one object, unnamed (keyframes): give its rotos as "
                             f"PATH[@FRAME] without a name, or an out of this render's own (named rotos replace its "
                             f"A in the shot's output files with layers of their names)")
        if isinstance(overrides.get("objects"), Mapping) and isinstance(data.get("objects"), Mapping):
            # rotos of named objects replace those objects' own: the file's other objects stay (dropping them
            # would also drop their layers from the shot's shared output files)
            given = {str(n).lower(): n for n in overrides["objects"]}  # "Hero" replaces the file's "hero"
            merged = {}  # in the file's order (it orders the layers), new ones after
            for n, v in data["objects"].items():
                key = given.pop(str(n).lower(), None)
                # under the file's name: its layers keep theirs (a comp reads hero.A, not Hero.A)
                merged[n] = overrides["objects"][key] if key is not None else v
            if given and not own_out:
                # a misspelt name (heor for hero) added an object: its layer in the shot's output files, which every
                # later render of the shot file then refused to drop, and the overlap rule halved hero's alpha (QA)
                raise InputError(f"shot file {str(p)!r} has no object {', '.join(map(repr, given.values()))} (its "
                                 f"objects: {', '.join(map(str, data['objects']))}): a roto of another name would add "
                                 f"an object to the shot's outputs that the shot file does not render; name one of "
                                 f"its objects, add the object to the shot file, or give an out of this render's own")
            overrides["objects"] = {**merged, **{n: overrides["objects"][n] for n in given.values()}}
        if "keyframes" in overrides or "objects" in overrides:  # rotos given replace the file's, whichever kind
            data = {k: v for k, v in data.items() if k not in ("keyframes", "objects")}
        file_frames = data.get("frames")
        data = {**data, **overrides}
        try:
            shot = cls.from_dict(data, source=f"shot file {str(p)!r}")
        except InputError as e:
            # a field's message starts with the field; one the file gave gets the file's name in front
            msg = str(e)
            field = re.split(r"[\s:.\[]", msg, maxsplit=1)[0]
            if msg.startswith("shot file") or field in overrides or field not in data:
                raise
            raise InputError(f"shot file {str(p)!r}: {msg}") from None
        shot.source_file = p.resolve()  # the file read, as its path fields are resolved (no "a/../b", no link)
        if "frames" in overrides:  # a chunk of the file's range (a farm task's --frames)
            shot.whole_frames = _file_frames(file_frames)
        return shot

    def to_dict(self) -> dict[str, Any]:
        """Plain types; ``Shot.from_dict(shot.to_dict())`` gives the same Shot. Its paths are final: for a shot
        file, which expands ``$NAME`` in paths, use ``to_yaml``. A field set after the Shot was made is read as
        ``Shot(...)`` reads it (``checked``): its relative paths are made absolute here, as ``render`` reads them, not
        against the folder of the shot file written from it."""
        shot = self.checked()
        d = dataclasses.asdict(shot)
        d["keyframes"] = {k: str(v) for k, v in shot.keyframes.items()} if shot.objects is None else None
        if shot.objects is not None:
            d["objects"] = {n: {k: str(v) for k, v in kf.items()} for n, kf in shot.objects.items()}
        d["cache"] = str(shot.cache) if shot.cache is not None else None
        return d

    def to_yaml(self) -> str:
        """The shot as a shot file's text: ``Shot.from_yaml`` of it gives the same Shot, wherever the file is.
        A ``$`` of a path itself is written ``$$`` (a shot file's paths expand ``$NAME``: written as it is, a
        folder named ``v$ER`` was read back as ``v`` + the variable ``ER``, or refused); fields at their
        default are left out, but for the plate's colour space."""
        import yaml

        from vom_plugin.io.sequence import format_frames

        d = self.to_dict()
        for name in ("plate", "out", "cache"):
            if d.get(name) is not None:
                d[name] = escape_vars(str(d[name]))
        if d.get("model") is not None and d["model"] not in MODEL_ALIASES:
            d["model"] = escape_vars(str(d["model"]))
        for kf in [d.get("keyframes") or {}, *(d.get("objects") or {}).values()]:
            kf.update({k: escape_vars(v) for k, v in kf.items()})
        # the plate's colour space is what its files hold, not a setting left as it came: written always, so the file
        # means the same under a vom whose default is another (QA)
        defaults = {k.name: k.default for k in load_node_def().knobs if k.name != "colorspace"}
        d = {k: v for k, v in d.items() if v is not None and not (k in defaults and v == defaults[k])}
        if d.get("frames") is not None:
            d["frames"] = format_frames(d["frames"], ",")
        return yaml.safe_dump(d, sort_keys=False, allow_unicode=True, width=1 << 16)


# -- field validators (each names the field, the value and what was expected) ------------------------

# The optional settings with a value of their own (not frames, the plate's range, nor cache, the user cache)
# the settings whose blank value (a shot file's, a flag's, a host's cleared knob) is the node definition's default
DEFAULT_WHEN_BLANK = frozenset({"channel", "mask_channel", "output", "compression", "working_size", "colorspace",
                                 "model", "device", "memory", "top_k"})


def _check_names(given: Iterable[str], what: str) -> None:
    """InputError for names of ``given`` that are no Shot field, with the field each was probably meant as."""
    names = [f.name for f in dataclasses.fields(Shot)]
    unknown = [k for k in given if k not in names]
    if unknown:
        close = [difflib.get_close_matches(k, names, 1) for k in unknown]
        hint = "; ".join(f"{k!r}: did you mean {c[0]!r}?" for k, c in zip(unknown, close, strict=True) if c)
        raise InputError(f"{what} {', '.join(map(repr, unknown))}{f' ({hint})' if hint else ''}; expected only "
                         f"{', '.join(names)}")


def _init_checking_names(init: Callable[..., None]) -> Callable[..., None]:
    """``Shot(...)`` with a field it does not know, a positional value or a required field missing raises InputError
    naming them, as ``Shot.from_dict`` of the same mapping does (QA: ``Shot(**row)`` of a pipeline's database row with
    a stale or misspelled key raised the dataclass's TypeError, which a pipeline catching InputError did not catch)."""
    @functools.wraps(init)
    def __init__(self: Shot, *args: Any, **kwargs: Any) -> None:
        if args:
            raise InputError(f"Shot: {len(args)} value(s) given without a name; give each as a field: "
                             f"Shot(plate=..., out=..., keyframes=...)")
        _check_names(kwargs, "Shot: unknown field(s)")
        missing = [k for k in ("plate", "out") if k not in kwargs]
        if missing:
            raise InputError(f"Shot: missing required field(s) {', '.join(missing)}")
        init(self, **kwargs)
    return __init__


Shot.__init__ = _init_checking_names(Shot.__init__)  # type: ignore[method-assign]


_PATH_FIELDS = frozenset({"plate", "out", "cache", "model", "keyframes", "objects"})


def _resolved(data: Mapping[str, Any], base: Path | Callable[[], Path]) -> dict[str, Any]:
    """``data``'s fields with their relative paths resolved against ``base`` (other values as they are; a ``Path``
    is a path as a ``str`` is, a ``fileseq.FileSequence`` a plate or out pattern). ``base`` may be a function, asked
    only where a path is relative (the working folder, which may be gone: review)."""
    values = dict(data)
    for name in ("plate", "out"):
        if name in values:
            values[name] = _from_fileseq(name, values[name])
    for name in ("plate", "out", "cache", "model"):
        if isinstance(values.get(name), os.PathLike):
            values[name] = os.fspath(values[name])
    for name in ("plate", "out", "cache"):
        # blank is no path (a cache of spaces: the user cache, as everywhere; it became a folder named two spaces
        # beside the shot file: QA)
        if isinstance(values.get(name), str) and values[name].strip():
            values[name] = _join(base, values[name], name)
    if isinstance(values.get("model"), str) and values["model"].strip() and values["model"] not in MODEL_ALIASES:
        values["model"] = _join(base, values["model"], "model")
    if "keyframes" in values:
        values["keyframes"] = _join_rotos(base, values["keyframes"], "keyframes")
    obj = values.get("objects")
    if isinstance(obj, Mapping):
        values["objects"] = {k: _join_rotos(base, v, f"objects.{k}") for k, v in obj.items()}
    return values


def _join_rotos(base: Path | Callable[[], Path], kf: Any, field: str) -> Any:
    """A keyframes value (mapping, list or one path) with its relative roto paths resolved against base."""
    # a blank entry stays blank, said as such (QA: it was read as the shot file's folder)
    def one(v: Any, where: str) -> Any:  # a Path as its text (review: a relative Path was left to the render's folder)
        v = os.fspath(v) if isinstance(v, os.PathLike) else v
        return _join(base, v, where) if isinstance(v, str) and v.strip() else v

    if isinstance(kf, Mapping):
        return {k: one(v, f"{field}[{k}]") for k, v in kf.items()}
    if isinstance(kf, list | tuple):
        return [one(v, field) for v in kf]
    return one(kf, field)  # blank: none given


def _join(base: Path | Callable[[], Path], value: str, field: str) -> str:
    value = expand_user(value, field)
    return value if os.path.isabs(value) else str((base() if callable(base) else base) / value)


def _working_folder(field: str) -> Callable[[], Path]:
    """The working folder, asked when a relative ``field`` needs it: InputError naming the field where it is gone
    (a farm task's or a host's folder removed meanwhile: a bare FileNotFoundError, review)."""
    def cwd() -> Path:
        try:
            return Path.cwd()
        except FileNotFoundError:
            raise InputError(f"{field}: a relative path, and the working folder it would be read in no longer "
                             f"exists; give an absolute path") from None
    return cwd


def expand_user(value: str, field: str = "path") -> str:
    """``~`` and ``~user`` at the start of a path, as a shell expands them; InputError naming ``field`` for a user
    this machine does not know (left as it was, ``~nosuchuser/shots`` made a folder of that name beside the shot
    file, QA)."""
    expanded = os.path.expanduser(value)
    if expanded.startswith("~"):
        user = expanded[1:].split("/", 1)[0].split(os.sep, 1)[0]
        raise InputError(f"{field} {value!r}: ~{user} is no user's home folder on this machine (a folder of that "
                         f"name is written ./~{user})")
    return expanded


# $$ (a literal $), ${NAME}, a frame token ($F4, $F: kept), $NAME; a ${ that closes no variable (``open``) is refused;
# any other $ is the path's own (a Windows share's projects$)
_ENV_VAR = re.compile(r"\$(?:(?P<dollar>\$)|\{(?P<braced>[A-Za-z_]\w*)\}|(?P<frame>F[0-9]+|F(?!\w))"
                      r"|(?P<name>[A-Za-z_]\w*)|(?P<open>\{))")


def expand_vars(value: str, field: str) -> str:
    """Environment variables in a shot file's path (``$SHOW``, ``${SHOW}``), as a shell would: a shot file written
    for a show's root, read on each farm node with that node's environment. ``$F``/``$F4`` are frame tokens, kept;
    ``$$`` is a ``$`` of the path itself, and so is a ``$`` that starts no name (``//nas/projects$``). An unset
    variable is refused (left in, it made a folder named ``$SHOW``), and so are an empty one that starts the path
    (``$ROOT/vom`` became ``/vom``) and a ``${`` that closes no variable (``${SHOW/vom``, missing its brace, made a
    folder ``${SHOW``, QA). Done once, on what the file says, and on path flags where no shell expanded them
    (``commands._args.flag_path``); a Shot's paths are final."""
    def sub(m: re.Match[str]) -> str:
        if m.group("dollar"):
            return "$"
        if m.group("frame"):
            return m.group(0)
        if m.group("open"):
            raise InputError(f"{field} {value!r}: the ${{ at {value[m.start():m.start() + 12]!r} closes no variable "
                             f"(write ${{NAME}}; a $ of the path itself is written $$)")
        name = m.group("braced") or m.group("name")
        got = os.environ.get(name)
        if got is None:
            raise InputError(f"{field} {value!r}: ${name} is not set in the environment (a $ of the path itself is "
                             f"written $$)")
        if not got.strip() and m.start() == 0:  # an empty suffix (shot${VARIANT}.exr) is one
            raise InputError(f"{field} {value!r}: ${name} is set but empty in the environment: the path would lose "
                             f"its root; set it, or write the path without it")
        return got

    return _ENV_VAR.sub(sub, value)


def env_vars_of_file(path: str | os.PathLike) -> list[str]:
    """The environment variables a shot file's paths read (``$SHOW``; not ``$F4`` nor ``$$``), in order: what every
    process that renders it (a farm's workers) needs set as the submitter had it."""
    from vom_plugin import safe_yaml

    data = safe_yaml.load_file(Path(path), f"shot file {str(path)!r}")
    found: dict[str, None] = {}

    def walk(v: Any) -> None:
        if isinstance(v, str):
            for m in _ENV_VAR.finditer(v):
                if m.group("braced") or m.group("name"):
                    found[m.group("braced") or m.group("name")] = None
        elif isinstance(v, Mapping):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    if isinstance(data, Mapping):
        for name in ("plate", "out", "cache", "model", "keyframes", "objects"):
            walk(data.get(name))
    return list(found)


def escape_vars(path: str) -> str:
    """A final path as a shot file holds it: a ``$`` of the path itself written ``$$`` (``expand_vars`` reads it
    back). The hosts' stdlib copy is ``host/blender_addon/common.shot_yaml``'s."""
    return path.replace("$", "$$")


def _expand_file_paths(data: dict[str, Any]) -> dict[str, Any]:
    """A shot file's path fields (or ``Shot.from_yaml``'s overrides) with the environment variables of their text
    expanded (``expand_vars``); a ``Path`` or other object is left as it is."""
    return _map_file_paths(data, expand_vars)


def escape_file_paths(data: dict[str, Any]) -> dict[str, Any]:
    """``data``'s path fields, final paths (flags read already), as ``Shot.from_yaml`` takes them: a ``$`` of their
    own written ``$$`` (``escape_vars``), so its overrides' expansion reads each back as it is, not a second time."""
    return _map_file_paths(data, lambda v, _field: escape_vars(v))


def _map_file_paths(data: dict[str, Any], how: Callable[[str, str], str]) -> dict[str, Any]:
    """``data`` with ``how(text, field)`` applied to the text of its path fields (a shipped model name is none)."""
    def rotos(v: Any, field: str) -> Any:
        if isinstance(v, Mapping):
            return {k: how(p, f"{field}[{k}]") if isinstance(p, str) else p for k, p in v.items()}
        if isinstance(v, list | tuple):  # (a tuple as _keyframes takes one)
            return [how(p, field) if isinstance(p, str) else p for p in v]
        return how(v, field) if isinstance(v, str) else v

    out = dict(data)
    for name in ("plate", "out", "cache", "model"):
        if isinstance(out.get(name), str) and not (name == "model" and out[name] in MODEL_ALIASES):
            out[name] = how(out[name], name)
    if "keyframes" in out:
        out["keyframes"] = rotos(out["keyframes"], "keyframes")
    if isinstance(out.get("objects"), Mapping):
        out["objects"] = {k: rotos(v, f"objects.{k}") for k, v in out["objects"].items()}
    return out


def _text_paths(shot: Shot) -> None:
    """InputError naming the first path that is not UTF-8 (a folder named in Latin-1 on a UTF-8 system): OpenImageIO
    opens UTF-8 names only, and failed with a TypeError (exit 1), for an output only after the frames were computed;
    or that holds a NUL, which no file name can (the output guard's realpath raised a ValueError, exit 1: QA)."""
    paths = [("plate", shot.plate), ("out", shot.out)]
    for name, keyframes in shot.rotos().items():
        paths += [(f"objects.{name}[{f}]" if name else f"keyframes[{f}]", os.fspath(p)) for f, p in keyframes.items()]
    if shot.model not in MODEL_ALIASES:
        paths.append(("model", shot.model))
    if shot.cache is not None:
        paths.append(("cache", os.fspath(shot.cache)))
    for field, path in paths:
        if "\0" in path:
            raise InputError(f"{field} {path.replace(chr(0), '<NUL>')!r}: the path holds a NUL character, which no "
                             f"file name can; fix the path")
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            try:  # a name's undecodable bytes as the bytes they are (\xe9)
                shown = os.fsencode(path).decode("utf-8", "backslashreplace")
            except UnicodeEncodeError:  # a lone surrogate no file name's bytes make (a shot file's "\ud83c")
                shown = path.encode("utf-8", "backslashreplace").decode("ascii")
            raise InputError(f"{field} {shown}: the path is not UTF-8 text (a name made in another encoding); vom "
                             f"reads and writes images by UTF-8 names only: rename it") from None


def absolute(path: str, field: str = "path") -> str:
    """``path`` made absolute as the system reads it: a ``..`` after a link is the link's target's parent, as the shell,
    Nuke's Read and ``ls`` take it (``os.path.abspath`` drops the folder before it by name: ``sl/../o.####.exr``, sl
    a link to plate/sub, was written beside sl, not in plate/; QA). Only the link right before a ``..`` is followed,
    as its target spells it (one level at a time): the rest keeps its spelling (/show, a link to a mount, stays
    /show; review). Without ``..`` only ``.`` and ``//`` go. The hosts' adapters hold a stdlib copy
    (host/blender_addon/common.py: they run without vom's package), tested to agree. A relative ``path`` where the
    working folder is gone: InputError naming ``field`` (a bare FileNotFoundError, review)."""
    if not os.path.isabs(path):
        path = os.path.join(str(_working_folder(field)()), path)
    if ".." not in Path(path).parts:
        return os.path.normpath(path)
    return os.path.normpath(_walked(path, [40]))


def _walked(path: str, hops: list[int]) -> str:
    """``path`` (absolute) with each ``..`` taken as the system takes it (``absolute``); ``hops``: links left to follow
    (a loop stops there, as the system's ELOOP would)."""
    parts = Path(path).parts
    cur = parts[0]
    for part in parts[1:]:
        if part == "..":
            while hops[0] > 0 and os.path.islink(cur):
                hops[0] -= 1
                try:
                    target = os.readlink(cur)
                except OSError:
                    break
                cur = _walked(os.path.join(os.path.dirname(cur), target), hops)  # an absolute target replaces it
            cur = os.path.dirname(cur)
        elif part != ".":
            cur = os.path.join(cur, part)
    return cur


def _pattern(name: str, value: Any) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    value = _from_fileseq(name, value)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name} {value!r}: expected a file pattern such as shot.####.exr")
    value = expand_user(value, name)
    if not has_frame_token(value):
        raise InputError(f"{name} {value!r}: no frame number token in the file name; expected ####, @@@@, %04d or $F4 "
                         f"(e.g. shot.####.exr)")
    view = next((t for t in ("%V", "%v") if t in value), None)
    if view:  # Nuke's view token: vom would look for (or write) the letters themselves (QA: alpha_%V.0001.exr)
        eye = value.replace(view, "left" if view == "%V" else "l")
        raise InputError(f"{name} {value!r}: {view} is a stereo view token (Nuke's), which vom does not fill in: it "
                         f"{'mattes' if name == 'plate' else 'writes'} one sequence; name one eye's, e.g. {eye!r}, and "
                         f"render each eye on its own")
    return absolute(value, name)


def _from_fileseq(name: str, value: Any) -> Any:
    """A ``fileseq.FileSequence`` (a pipeline's own sequence object; fileseq is one of vom's dependencies) as vom's
    pattern: its folder and name, a ``#`` per digit of its padding, its extension; its frame range is not the
    shot's (``frames`` says that). Anything else as it is. QA: a FileSequence was refused as no pattern."""
    if not any(c.__module__.startswith("fileseq") for c in type(value).__mro__):  # one (or a pipeline's subclass
        return value  # of one) is held by a caller that has imported fileseq
    # imported, not read from sys.modules: another thread's first import there is half done (QA: two threads' first
    # Shot.from_yaml, one failed on "partially initialized module 'fileseq'")
    import fileseq

    if not isinstance(value, fileseq.FileSequence):
        return value
    if value.zfill() < 1:
        raise InputError(f"{name} {str(value)!r}: a fileseq sequence without frame padding (one file); expected a "
                         f"sequence such as shot.1001-1100#.exr")
    return f"{value.dirname()}{value.basename()}{'#' * value.zfill()}{value.extension()}"


def _objects(value: Any) -> dict[str, dict[int, Path]]:
    """{name: keyframes} (each as ``keyframes`` takes it, or one roto path); names are layer names, distinct
    even when case is ignored (they name files too, and some file systems fold case)."""
    from vom_plugin.grammar import parse_object_name

    if not isinstance(value, Mapping) or not value:
        raise InputError(f"objects {value!r}: {'no object in it; ' if isinstance(value, Mapping) else ''}expected a "
                         f"mapping {{name: {{frame: roto path}}}}, e.g. "
                         f"{{hero: {{1001: roto_hero.1001.exr}}, dog: {{1040: roto_dog.1040.exr}}}}")
    out: dict[str, dict[int, Path]] = {}
    folded: dict[str, str] = {}
    for name, kf in value.items():
        parse_object_name(name)
        if name.lower() in folded:
            raise InputError(f"objects: {name!r} is given twice (as {folded[name.lower()]!r}); object names "
                             f"must differ, also in case")
        folded[name.lower()] = name
        if kf is None or (isinstance(kf, Mapping | list | tuple | str) and not kf):
            raise InputError(f"objects.{name}: no roto; expected at least one {{frame: roto path}}")
        if isinstance(kf, str | os.PathLike):
            kf = [kf]
        try:
            out[name] = _keyframes(kf)
        except InputError as e:
            raise InputError(f"objects.{name}: {e}") from None
    return out


def _keyframes(value: Any) -> dict[int, Path]:
    items: list[tuple[Any, Any]]
    if isinstance(value, str | os.PathLike):  # one roto, its frame from its name or PATH@FRAME (as objects take it)
        value = [value]
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, list | tuple):
        items = []
        for v in value:
            if not isinstance(v, str | os.PathLike) or not os.fspath(v).strip():
                raise InputError(f"keyframes entry {v!r}: expected a roto path (roto.1001.exr or PATH@FRAME)")
            items.append(parse_roto_arg(os.fspath(v), field="keyframes entry"))
    else:
        raise InputError(f"keyframes {value!r}: expected a mapping {{frame: roto path}}, "
                         f"e.g. {{1001: roto.1001.exr}}")
    if not items:
        raise InputError("keyframes: empty; expected at least one {frame: roto path}")
    out: dict[int, Path] = {}
    for frame, path in items:
        if isinstance(frame, bool) or not (isinstance(frame, numbers.Integral) or (
                isinstance(frame, str) and re.fullmatch(r"-?[0-9]+", frame.strip()))):  # numpy's ints too
            raise InputError(f"keyframes: key {frame!r} is not a frame number; expected e.g. {{1001: roto.1001.exr}}")
        if not isinstance(path, str | os.PathLike) or not os.fspath(path).strip():
            raise InputError(f"keyframes[{frame}] {path!r}: expected the path of a roto image")
        f = int(frame)
        if f in out:
            raise InputError(f"keyframes: frame {f} is given twice ({out[f]} and {path})")
        out[f] = Path(absolute(expand_user(os.fspath(path), f"keyframes[{f}]"), f"keyframes[{f}]"))
    return dict(sorted(out.items()))


def _frame_numbers(value: Any) -> list[int] | None:
    """The frame numbers of an iterable of integers (no bools): a list, tuple, set, range, generator, 1-D numpy
    array or fileseq FrameSet (the type hint's ``Iterable[int]``: a set or a FrameSet was refused, QA), else None;
    at most MAX_FRAMES of them are listed (a range can name a billion)."""
    import itertools

    from vom_plugin.io.sequence import MAX_FRAMES

    numpy = type(value).__module__.startswith("numpy")
    if isinstance(value, str | bytes | Mapping) or (numpy and getattr(value, "ndim", 1) != 1):
        return None
    try:
        items = list(itertools.islice(iter(value), MAX_FRAMES + 1))
    except TypeError:  # not iterable
        return None
    if len(items) > MAX_FRAMES:
        size = len(value) if hasattr(value, "__len__") else f"over {MAX_FRAMES}"
        raise InputError(f"frames: a list of {size} frames; a shot holds at most {MAX_FRAMES}")
    if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in items):
        return [int(v) for v in items]
    return None


def _file_frames(value: Any) -> list[int] | None:
    """A shot file's own frames, where ``--frames`` gives the render's; None where blank (the plate's) or not a
    range (the render's own replaced it: not refused now)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return _frames(value)
    except InputError:
        return None


def _frames(value: Any) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InputError(f"frames {value!r}: expected a frame range such as 1001-1100 or 1001,1005,1010")
    if isinstance(value, numbers.Integral):  # numpy's too
        return [int(value)]
    if isinstance(value, str):
        from vom_plugin.io import parse_frame_range  # io owns the range syntax

        try:
            frames = parse_frame_range(value)
        except InputError as e:
            raise InputError(f"frames: {e}") from None
    elif (listed := _frame_numbers(value)) is not None:  # an iterable of whole numbers (a list, range, FrameSet...)
        frames = listed
    else:
        raise InputError(f"frames {value!r}: expected a frame range such as 1001-1100, 1001-1100x2 or 1001,1005")
    if not frames:
        raise InputError(f"frames {value!r}: the range holds no frame")
    return sorted(set(frames))
