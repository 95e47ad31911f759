"""Generate the Nuke gizmo (``gizmos/VOM_Matte.gizmo``) from the node definition.

A gizmo is a Nuke script (Tcl syntax) holding one ``Gizmo`` group: its user knobs come from
``node_defs/vom_matte.yaml`` (one knob per Shot field, same names), plus the Analyze and
Submit-to-farm buttons; inside, a Read of the rendered alpha is copied into the Source stream.
The file is generated, checked in, and a test proves the checked-in copy is current.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vom_plugin.atomic import make_folder, write_text_atomic
from vom_plugin.locations import REPO_DIR
from vom_plugin.nodedef import Knob, NodeDef, host_help, load_node_def

# Nuke user-knob type ids (the first word of an ``addUserKnob {...}`` spec).
# TEXT (26) is a read-only label (dividers, the version line); MULTILINE (43) a text field of several lines
TAB, STRING, FILE, INT, ENUM, BOOL, DOUBLE, PYSCRIPT, TEXT, MULTILINE = 20, 1, 2, 3, 4, 6, 7, 22, 26, 43
KNOB_TYPE_IDS = {"path": FILE, "frame_range": STRING, "keyframes": STRING, "objects": MULTILINE,
                 "string": STRING, "enum": ENUM,
                 "int": INT, "float": DOUBLE, "bool": BOOL}
NUKE_VERSION = "13.2 v1"  # the oldest Nuke whose gizmo syntax we write; newer versions read it unchanged
# The host module is loaded by the init.py block of `install.py --nuke` under this name (Nuke's Python
# cannot import the vom package's dependencies, so the adapter is loaded on its own).
HOST_MODULE = "vom_nuke"
BUTTONS = (
    ("analyze", "Analyze", "analyze", "Render the matte for the frame range (runs vom render; cancellable)."),
    ("submit_farm", "Submit to farm", "submit_farm",
     "Write the shot file and a render-farm job bundle (Open Job Description) next to the output."),
)
_BARE = re.compile(r"^[A-Za-z0-9_.:/+@%#-]+$")
# What Analyze rendered, kept on the gizmo itself: Nuke saves a gizmo's own knobs in the script and rebuilds its
# inner nodes from this file, so values set on AlphaRead or CopyAlpha were gone after a reopen, a paste or a
# farm render of the comp (the matte silently black). The inner nodes follow these by expression; CopyAlpha's
# channel (a channel knob takes no expression) is set again by the gizmo's onCreate. (name, type id, default)
RENDERED_KNOBS = (("alpha_file", STRING, ""), ("alpha_first", INT, 1), ("alpha_last", INT, 1),
                  ("alpha_offset", INT, 0), ("alpha_channel", STRING, "rgba.alpha"),
                  # the full name of the node whose Analyze wrote alpha_file (a pasted copy carries it along)
                  ("alpha_owner", STRING, ""))
# (standard library and nuke only: a farm node rendering the comp may not have vom's init.py)
ON_CREATE = ("n = nuke.thisNode()\nc = n.node('CopyAlpha')\n"
             "if c is not None and n.knob('alpha_channel') is not None:\n"
             "    c['from0'].setValue(n['alpha_channel'].value() or 'rgba.alpha')")
# Knobs of the Nuke node alone, after the node definition's knob they qualify: (after, type id, name, label, help,
# default). Nuke says what colour space a Read's file is in; the shared knob is the choice when it is not asked.
HOST_KNOBS = (("colorspace", BOOL, "colorspace_from_nuke", "from Nuke",
               "Take the plate's colour space from Nuke: the Source Read's colour space, or the working space for a "
               "Source that Analyze renders to EXR (Input colour space is used when this is off).", True),)


def default_gizmo_path() -> Path:
    return REPO_DIR / "gizmos" / "VOM_Matte.gizmo"


def tcl_quote(text: str) -> str:
    """Quote a value the way Nuke writes it: a bare word when safe, else a double-quoted Tcl string."""
    if text and _BARE.match(text):
        return text
    out = []
    for ch in text:
        if ch in '\\"[${}':
            out.append("\\" + ch)  # no command/variable substitution when Nuke (Tcl) reads it back
        elif ch == "\n":
            out.append("\\n")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _knob_lines(knob: Knob, override: dict[str, Any]) -> list[str]:
    kid = KNOB_TYPE_IDS[knob.type]
    help_text = " ".join(str(override.get("help", knob.help)).split())
    if knob.range and knob.type == "int":
        help_text += f" ({int(knob.range[0])} to {int(knob.range[1])})"
    spec = [str(kid), knob.name, "l", tcl_quote(knob.label), "t", tcl_quote(help_text)]
    if kid == ENUM:
        spec += ["M", "{" + " ".join(tcl_quote(c) for c in knob.choices) + "}"]
    if kid == DOUBLE and knob.range:
        spec += ["R", repr(float(knob.range[0])), repr(float(knob.range[1]))]
    lines = [" addUserKnob {" + " ".join(spec) + "}"]
    default = knob.default  # the node's, for every host (host_help: a host rewords the help only)
    if default not in (None, ""):
        if kid == BOOL:
            default = "true" if default else "false"
        lines.append(f" {knob.name} {tcl_quote(str(default))}")
    return lines


def button_code(func: str) -> str:
    """The Python a button of the gizmo runs: ``vom_nuke.<func>(nuke.thisNode())``. The adapter is loaded by the
    init.py block of `install.py --nuke`; without it (not installed on this machine, or it failed to load: the block
    says why on Nuke's terminal) the button says so instead of raising a traceback."""
    return (f"try:\n    import {HOST_MODULE}\nexcept ImportError:\n"
            f"    nuke.message('VOM Matte: the vom adapter is not loaded in this Nuke. Run python3 install.py --nuke "
            f"in the vom checkout and restart Nuke; if it is installed, Nuke printed why it failed to load at start')\n"
            f"else:\n    {HOST_MODULE}.{func}(nuke.thisNode())")


def _button_line(name: str, label: str, func: str, tooltip: str, startline: bool) -> str:
    code = button_code(func)
    flag = "+STARTLINE" if startline else "-STARTLINE"
    return (f" addUserKnob {{{PYSCRIPT} {name} l {tcl_quote(label)} t {tcl_quote(tooltip)} "
            f"T {tcl_quote(code)} {flag}}}")


def generate(node: NodeDef | None = None) -> str:
    """The gizmo's text for ``node`` (default: the VOM Matte node definition)."""
    node = node or load_node_def()
    overrides = ({k: {"help": h} for k, h in host_help("nuke").items()} if node.name == "VOM_Matte" else {})
    lines = [
        f"# {node.name}.gizmo: generated by `vom gizmo` from node_defs/vom_matte.yaml (node version "
        f"{node.version}). Do not edit by hand; edit the node definition and regenerate.",
        f"version {NUKE_VERSION}",
        "Gizmo {",
        f" inputs {len(node.inputs)}",
        f" help {tcl_quote(node.help)}",
        " tile_color 0x3d7a5fff",
        f" label {tcl_quote('[value frames]')}",
        f" onCreate {tcl_quote(ON_CREATE)}",
        f" addUserKnob {{{TAB} vom l {tcl_quote(node.label)}}}",
    ]
    for knob in node.knobs:
        lines += _knob_lines(knob, overrides.get(knob.name, {}))
        for after, kid, name, label, tip, default in HOST_KNOBS:
            if after == knob.name:
                lines.append(f" addUserKnob {{{kid} {name} l {tcl_quote(label)} t {tcl_quote(tip)} -STARTLINE}}")
                lines.append(f" {name} {'true' if default is True else tcl_quote(str(default))}")
    lines.append(f' addUserKnob {{{TEXT} "" +STARTLINE}}')
    for i, (name, label, func, tip) in enumerate(BUTTONS):
        lines.append(_button_line(name, label, func, tip, startline=(i == 0)))
    lines.append(f" addUserKnob {{{TEXT} vom_version l Version T {tcl_quote(f'{node.name} v{node.version}')}}}")
    for name, kid, default in RENDERED_KNOBS:
        lines.append(f" addUserKnob {{{kid} {name} l \"\" +INVISIBLE}}")
        if default not in (None, ""):
            lines.append(f" {name} {tcl_quote(str(default))}")
    lines.append("}")
    # Inner graph. Nuke builds it with a stack: each node pops its `inputs` from the stack (the top one
    # is input 0) and pushes itself. Copy's input 0 is B (the stream), input 1 is A (the alpha).
    roto = node.inputs[1]["name"] if len(node.inputs) > 1 else "Roto"
    source = node.inputs[0]["name"]
    premult_index = node.knob("output").choices.index("rgba-premult")
    lines += [
        " Input {", "  inputs 0", f"  name {roto}", "  number 1", "  xpos 200", "  ypos -250", " }",
        " Read {", "  inputs 0", "  file_type exr", f"  file {tcl_quote('[value parent.alpha_file]')}",
        *(f"  {k} {{{{parent.alpha_{end}}}}}" for k, end in (("first", "first"), ("last", "last"),
                                                              ("origfirst", "first"), ("origlast", "last"))),
        # outside the rendered frames there is no matte: black, not the nearest frame held
        "  raw true", "  before black", "  after black", "  on_error black", "  name AlphaRead",
        "  xpos 200", "  ypos -150", " }",
        # the plate's Read may show file frame f at script frame f + offset ("start at", "offset")
        " TimeOffset {", "  time_offset {{parent.alpha_offset}}", "  name AlphaTime", "  xpos 200", "  ypos -100",
        " }",
        " Input {", "  inputs 0", f"  name {source}", "  xpos 0", "  ypos -150", " }",
        " Copy {", "  inputs 2", "  from0 rgba.alpha", "  to0 rgba.alpha", "  name CopyAlpha", "  xpos 0",
        "  ypos -60", " }",
        # `output` is an Enumeration knob: its value in an expression is the index of the choice.
        " Premult {", f"  disable {{{{{tcl_quote(f'parent.output != {premult_index}')}}}}}", "  name PremultOut",
        "  xpos 0", "  ypos 0", " }",
        " Output {", "  name Output1", "  xpos 0", "  ypos 80", " }",
        "end_group",
    ]
    return "\n".join(lines) + "\n"


def write_gizmo(path: Path | None = None) -> Path:
    """Regenerate the gizmo file (atomically) and return its path."""
    path = Path(path) if path else default_gizmo_path()
    make_folder(path.parent, "--out")
    return write_text_atomic(path, generate())
