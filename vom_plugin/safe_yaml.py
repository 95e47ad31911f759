"""Reading YAML that someone else wrote (shot files): plain data only, no aliases, bounded in size.

``yaml.safe_load`` builds no objects, but it does expand aliases: a few lines of nested ``*a`` references
(a "billion laughs") make a structure that takes minutes and gigabytes to walk, print or validate. A shot
file has no use for anchors, so an alias is refused with its line, and so is a file beyond MAX_BYTES.
Bottom layer: stdlib, PyYAML and vom_plugin.errors only.
"""

from __future__ import annotations

import os
import re
from typing import Any

import yaml

from vom_plugin.errors import InputError

MAX_BYTES = 1 << 20  # a shot file is a few hundred bytes; a megabyte is not a shot file
MAX_DEPTH = 32  # a shot file nests three levels (objects: name: frame: roto); a kilobyte of [[[...]]] was a traceback


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"line {event.start_mark.line + 1}: alias *{event.anchor} (YAML anchors and "
                                 f"aliases are not accepted here; write the value out)")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        # YAML keeps the last of two equal keys without a word: `out:` twice wrote where the second said
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *base``, the aliases' companion
                raise yaml.YAMLError(f"line {key_node.start_mark.line + 1}: a merge key << (YAML merge keys, anchors "
                                     f"and aliases are not accepted here; write the fields out)")
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key: the base class names it
                break
            if first is not key_node:
                raise yaml.YAMLError(f"line {key_node.start_mark.line + 1}: {key!r} is given twice (first on line "
                                     f"{first.start_mark.line + 1}); write it once")
        return super().construct_mapping(node, deep=deep)


_DECIMAL = re.compile(r"[-+]?[0-9][0-9_]*\Z")


def _decimal_int(loader: _NoAliasLoader, node: Any) -> Any:
    """An integer as people write frame numbers: decimal, leading zeros kept out of it (YAML 1.1 read ``0010``
    as octal 8 and ``1:24`` as the sexagesimal 84: a roto keyed ``0010`` landed on frame 8). Hex, octal, binary
    and sexagesimal spellings stay the text they are, for the field's own check to refuse by name."""
    text = loader.construct_scalar(node)
    return int(text.replace("_", "")) if _DECIMAL.match(text) else text


_INT = "tag:yaml.org,2002:int"
_NoAliasLoader.add_constructor(_INT, _decimal_int)

_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def _text(loader: _NoAliasLoader, node: Any) -> Any:
    """A string, a character beyond the BMP escaped as JSON escapes it (``"\\ud83c\\udfac"``: a surrogate pair, what
    ``json.dumps`` writes and a pipeline's shot writer may) read as that one character: PyYAML kept two lone
    surrogates, and the path then failed as an internal error (QA)."""
    text = loader.construct_scalar(node)
    if not _PAIR.search(text):
        return text
    return _PAIR.sub(lambda m: m.group(0).encode("utf-16-le", "surrogatepass").decode("utf-16-le"), text)


_NoAliasLoader.add_constructor("tag:yaml.org,2002:str", _text)
# Which plain scalars are integers: decimal digits, leading zeros and all (YAML 1.1 left 0008 and 0019, not octal,
# as text: a frames list [0007, 0008] failed). The lists are this loader's own: PyYAML's add_implicit_resolver
# appends to the lists it shares with SafeLoader, which would change yaml.safe_load everywhere.
_NoAliasLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _INT]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_NoAliasLoader.add_implicit_resolver(_INT, _DECIMAL, list("-+0123456789"))
# (floats keep YAML 1.1's resolver, sexagesimal 1:30.5 included: no shot field takes a float that way)


def load_text(text: str, source: str) -> Any:
    """The plain data of ``text``; InputError naming ``source`` when it is not YAML, too big or uses aliases."""
    if len(text) > MAX_BYTES:
        raise InputError(f"{source}: {len(text)} characters; expected at most {MAX_BYTES} (is it a shot file?)")
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader: plain data only
    except RecursionError:  # PyYAML composes nested values recursively: 500 levels of [ ran out of stack (QA)
        raise InputError(f"{source}: its values nest deeper than Python's stack allows (is it a shot file?)") from None
    except yaml.MarkedYAMLError as e:  # PyYAML's several lines, quoting the text and "<unicode string>": one line
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = "; ".join(str(t) for t in (e.context, e.problem) if t)
        lines = text.splitlines()
        line = lines[mark.line] if mark is not None and mark.line < len(lines) else ""
        # `{1001: ${SHOW}/roto.1001.exr}`: YAML reads the `{` of ${SHOW} as a mapping inside the mapping and stops
        # there (QA: the README's own flow style with its ${SHOW} paths failed with no word of why)
        at_var = mark is not None and mark.column > 0 and line[mark.column - 1 : mark.column + 1] == "${"
        hint = "; a value holding ${VAR} inside { } or [ ] must be quoted: \"${VAR}/...\" (or write $VAR)" \
            if at_var else ""
        raise InputError(f"{source}: not valid YAML ({where}{what}){hint}") from None
    except yaml.YAMLError as e:
        raise InputError(f"{source}: not valid YAML ({' '.join(str(e).split())})") from None
    depth = _depth(data)
    if depth > MAX_DEPTH:  # what reads it after recurses too (the checks that name a value, printing it)
        raise InputError(f"{source}: its values nest {depth} levels deep; expected at most {MAX_DEPTH} (is it a shot "
                         f"file?)")
    return data


def _depth(data: Any) -> int:
    """How many lists and mappings deep ``data`` nests (0 for a scalar), counted without recursion."""
    deepest, todo = 0, [(data, 0)]
    while todo:
        value, level = todo.pop()
        if isinstance(value, dict):
            todo.extend((v, level + 1) for v in (*value.keys(), *value.values()))
        elif isinstance(value, list):
            todo.extend((v, level + 1) for v in value)
        else:
            deepest = max(deepest, level)
            continue
        deepest = max(deepest, level + 1)
    return deepest


def load_file(path: str | os.PathLike[str], source: str) -> Any:
    """``load_text`` of a UTF-8 file, read no further than MAX_BYTES + 1."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(MAX_BYTES + 1)
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise InputError(f"{source}: cannot be read ({reason})") from None
    return load_text(text, source)
