"""Generate the Blender add-on's knob table (``host/blender_addon/node_def.json``) from the node definition.

Blender's Python cannot be assumed to have PyYAML, so the add-on reads its knobs (names, types, defaults,
choices, ranges, help, `vom render` flags) from this JSON file: generated from ``node_defs/vom_matte.yaml`` with
the wording of its ``blender:`` section, checked in, and proved current by a test, like the Nuke gizmo. The Nuke
adapter reads it too (labels, flags, grammars): it is the node definition for both hosts' standard-library code.
"""

from __future__ import annotations

import json
from pathlib import Path

from vom_plugin.atomic import write_text_atomic
from vom_plugin.locations import PACKAGE_DIR
from vom_plugin.nodedef import NodeDef, host_help, load_node_def


def default_path() -> Path:
    return PACKAGE_DIR / "host" / "blender_addon" / "node_def.json"


def generate(node: NodeDef | None = None) -> str:
    """The JSON text of the add-on's knob table for ``node`` (default: the VOM Matte node)."""
    node = node or load_node_def()
    helps = host_help("blender") if node.name == "VOM_Matte" else {}
    knobs = []
    for k in node.knobs:
        knobs.append({
            "name": k.name, "type": k.type, "label": k.label, "default": k.default,
            "help": helps.get(k.name, k.help), "required": k.required,
            "choices": list(k.choices), "range": list(k.range) if k.range else None, "grammar": k.grammar or None,
            "flag": k.flag,  # vom's messages name the flag: the hosts say the label instead (common.in_node_terms)
        })
    table = {
        "generated_from": "node_defs/vom_matte.yaml by `vom gizmo`; do not edit by hand",
        "name": node.name, "label": node.label, "version": node.version, "help": node.help, "knobs": knobs,
    }
    return json.dumps(table, indent=1) + "\n"


def write(path: Path | None = None) -> Path:
    """Regenerate the knob table (atomically) and return its path."""
    path = Path(path) if path else default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, generate())
