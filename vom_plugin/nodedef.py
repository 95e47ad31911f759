"""Loading of the node definitions in ``node_defs/``: the single source of truth for parameters.

This module sits at the bottom of the layers (stdlib + yaml only) because every surface reads it:
the engine's ``Shot`` takes its fields and defaults from here, the CLI its flags, the gizmo generator
its knobs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vom_plugin.errors import InputError
from vom_plugin.locations import PACKAGE_DIR, REPO_DIR

KNOB_TYPES = {"path", "frame_range", "keyframes", "objects", "string", "enum", "int", "float", "bool"}


@dataclass(frozen=True)
class Knob:
    name: str
    type: str
    label: str
    default: Any
    help: str
    required: bool = False
    choices: tuple[str, ...] = ()
    range: tuple[float, float] | None = None
    cli: str = ""
    grammar: str = ""  # a parser of vom_plugin.grammar.GRAMMARS for a value with a syntax of its own

    @property
    def flag(self) -> str:
        """The `vom render` flag of this knob."""
        return self.cli or "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class NodeDef:
    name: str
    label: str
    version: int
    category: str
    help: str
    inputs: tuple[dict[str, str], ...]
    outputs: tuple[dict[str, str], ...]
    knobs: tuple[Knob, ...] = field(default_factory=tuple)

    def knob(self, name: str) -> Knob:
        for k in self.knobs:
            if k.name == name:
                return k
        raise KeyError(f"node {self.name} has no knob {name!r}")

    def defaults(self) -> dict[str, Any]:
        return {k.name: k.default for k in self.knobs}


def node_defs_dir() -> Path:
    """``node_defs/`` inside the package (installed wheel) or beside it (source checkout, where the package holds
    none). Inside first: beside an installed copy is site-packages, where another package's ``node_defs`` folder
    broke every command (QA)."""
    for cand in (PACKAGE_DIR / "node_defs", REPO_DIR / "node_defs"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError("node_defs/ not found beside or inside vom_plugin")


def code_files() -> list[Path]:
    """vom's code as installed: the package's modules and the node definitions (what a worker's
    ``code_fingerprint`` stats and ``digest.build_id`` reads). The package's folder is asked of ``locations`` now,
    not when this module was imported."""
    from vom_plugin import locations

    files = sorted(locations.PACKAGE_DIR.rglob("*.py"))
    try:
        files += sorted(node_defs_dir().glob("*.yaml"))
    except FileNotFoundError:
        pass
    return files


@functools.cache
def load_node_def(name: str = "vom_matte") -> NodeDef:
    """Parse and validate ``node_defs/<name>.yaml``."""
    path = node_defs_dir() / f"{name}.yaml"
    with open(path, encoding="utf-8") as f:
        # our own file, so libyaml's loader when PyYAML has it (faster than the pure-Python one)
        raw = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    knobs = []
    for i, k in enumerate(raw.get("knobs", [])):
        if k.get("type") not in KNOB_TYPES:
            raise ValueError(f"{path}: knob #{i} ({k.get('name')!r}) has type {k.get('type')!r}, expected one of "
                             f"{sorted(KNOB_TYPES)}")
        rng = k.get("range")
        knobs.append(Knob(
            name=k["name"], type=k["type"], label=k.get("label", k["name"]), default=k.get("default"),
            help=" ".join(str(k.get("help", "")).split()), required=bool(k.get("required", False)),
            choices=tuple(k.get("choices", ())), range=tuple(rng) if rng else None, cli=k.get("cli", ""),
            grammar=k.get("grammar", ""),
        ))
    _check_defaults(path, knobs)
    return NodeDef(
        name=raw["name"], label=raw.get("label", raw["name"]), version=int(raw.get("version", 1)),
        category=raw.get("category", ""), help=" ".join(str(raw.get("help", "")).split()),
        inputs=tuple(raw.get("inputs", ())), outputs=tuple(raw.get("outputs", ())), knobs=tuple(knobs),
    )


def host_help(host: str, name: str = "vom_matte") -> dict[str, str]:
    """The ``<host>:`` section of ``node_defs/<name>.yaml``: knob name -> that host's help for it. A host may reword
    a knob's help and nothing else (not its default, type, choices or range, which are the node's for every host):
    any other key, or a knob the node does not have, is an InputError naming it. The generators wrote a host's
    default (an invalid one too) and ignored a misspelled knob name, and `vom gizmo --check` called it current (QA)."""
    path = node_defs_dir() / f"{name}.yaml"
    with open(path, encoding="utf-8") as f:
        raw = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    section = (raw.get(host) or {})
    extra = sorted(set(section) - {"knobs"})
    if extra:
        raise InputError(f"{path}: {host}: unknown key(s) {', '.join(extra)}; a host section holds knobs: only")
    names = {k.name for k in load_node_def(name).knobs}
    out = {}
    for knob, fields in (section.get("knobs") or {}).items():
        if knob not in names:
            raise InputError(f"{path}: {host}: knob {knob!r} is not a knob of the node ({', '.join(sorted(names))})")
        if not isinstance(fields, dict) or set(fields) - {"help"}:
            got = sorted(fields) if isinstance(fields, dict) else fields
            raise InputError(f"{path}: {host}: knob {knob!r}: a host may reword its help only, got {got!r}")
        if "help" in fields:
            out[knob] = " ".join(str(fields["help"]).split())
    return out


def _check_defaults(path: Path, knobs: list[Knob]) -> None:
    """Each knob's grammar exists and its default parses by it: a default can never fail later."""
    from vom_plugin import grammar  # grammar reads the node definition through this module

    for k in knobs:
        if k.grammar and k.grammar not in grammar.GRAMMARS:
            raise ValueError(f"{path}: knob {k.name!r} has grammar {k.grammar!r}, expected one of "
                             f"{sorted(grammar.GRAMMARS)}")
        if k.default is not None:
            try:
                grammar.parse_knob(k, k.default)
            except InputError as e:
                raise ValueError(f"{path}: knob {k.name!r}: its default does not parse: {e}") from None
