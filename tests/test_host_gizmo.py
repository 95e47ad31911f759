"""The Nuke gizmo: current with the node definition, valid Tcl, the expected knobs and inner graph."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_io_support import require_tool

from vom_plugin.host import gizmo
from vom_plugin.nodedef import load_node_def

REPO = Path(__file__).resolve().parents[1]
GIZMO = REPO / "gizmos" / "VOM_Matte.gizmo"

# Stub Tcl procs standing in for Nuke's node and knob commands. Evaluating the gizmo with them proves it
# parses as Tcl (Nuke scripts are Tcl) with no stray command substitution, and reports what it builds:
# one line per node (with the inputs it took from Nuke's node stack), per knob set, per user knob.
TCL_HARNESS = r"""
set ::stack {}
proc esc {s} { return [string map [list "\\" "\\\\" "\n" "\\n" "\t" "\\t"] $s] }
proc emit {args} { puts [join [lmap a $args {esc $a}] "\t"] }
proc version {args} { emit VERSION [join $args " "] }
proc end_group {} { emit END }
proc addUserKnob {spec} {
    set type [lindex $spec 0]; set name [lindex $spec 1]
    set label ""; set tip ""; set choices ""; set value ""; set range ""; set flags {}
    set rest [lrange $spec 2 end]
    for {set i 0} {$i < [llength $rest]} {incr i} {
        set w [lindex $rest $i]
        switch -- $w {
            l { incr i; set label [lindex $rest $i] }
            t { incr i; set tip [lindex $rest $i] }
            T { incr i; set value [lindex $rest $i] }
            M { incr i; set choices [join [lindex $rest $i] ","] }
            R { set range "[lindex $rest [expr {$i+1}]],[lindex $rest [expr {$i+2}]]"; incr i 2 }
            default {
                if {[string index $w 0] in {+ -}} { lappend flags $w } else { error "addUserKnob: unexpected $w" }
            }
        }
    }
    emit USERKNOB $::node $type $name $label $tip $choices $value $range [join $flags ","]
}
proc knobset {knob args} {
    if {[llength $args] != 1} { error "knob $knob: expected one value, got [llength $args]" }
    dict set ::knobs $knob [lindex $args 0]
}
# Knob names such as `file` or `format` are also Tcl commands: evaluate node bodies in an interpreter
# whose commands are all hidden, so every line is a knob assignment (or addUserKnob).
proc body_eval {body} {
    set i [interp create]
    foreach c [interp eval $i {info commands}] { interp hide $i $c }
    interp alias $i unknown {} knobset
    interp alias $i addUserKnob {} addUserKnob
    interp eval $i $body
    interp delete $i
}
proc node {class body} {
    set ::knobs [dict create]
    set ::node $class
    body_eval $body
    set name [expr {$class eq "Gizmo" ? "Gizmo" : [dict get $::knobs name]}]
    set n [expr {[dict exists $::knobs inputs] ? [dict get $::knobs inputs] : 1}]
    set ins {}
    if {$class ne "Gizmo"} {
        for {set i 0} {$i < $n} {incr i} {
            if {[llength $::stack] == 0} { error "$name takes $n inputs; the stack is empty" }
            lappend ins [lindex $::stack end]
            set ::stack [lrange $::stack 0 end-1]
        }
        lappend ::stack $name
    }
    emit NODE $class $name [join $ins ","]
    dict for {k v} $::knobs { emit KNOB $name $k $v }
}
foreach c {Gizmo Input Read TimeOffset Copy Premult Output} { proc $c {body} "node $c \$body" }
source [lindex $argv 0]
"""


def _unesc(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            out.append({"n": "\n", "t": "\t", "\\": "\\"}[s[i + 1]])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _eval_gizmo(path: Path, tmp_path: Path) -> list[list[str]]:
    tclsh = require_tool("tclsh")  # skips with the reason where absent; under CI, fails
    harness = tmp_path / "harness.tcl"
    harness.write_text(TCL_HARNESS)
    r = subprocess.run([tclsh, str(harness), str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"tclsh could not evaluate {path}: {r.stderr}"
    return [[_unesc(f) for f in line.split("\t")] for line in r.stdout.splitlines()]


def test_checked_in_gizmo_is_current() -> None:
    assert GIZMO.read_text(encoding="utf-8") == gizmo.generate(), "run `vom gizmo` to regenerate"


def test_gizmo_check_command_detects_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "VOM_Matte.gizmo"
    stale.write_text(gizmo.generate().replace("working_size 960", "working_size 961"))
    cmd = [sys.executable, "-m", "vom_plugin.cli", "gizmo", "--check", "--out", str(stale)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    # the command to run is the one that writes the file checked (it said `vom gizmo`, which writes the repo's: QA)
    assert r.returncode == 1 and f"{stale} is out of date with node_defs/; run `vom gizmo --out {stale}`" in r.stderr
    missing = tmp_path / "nowhere.gizmo"
    r = subprocess.run([*cmd[:-1], str(missing)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and f"{missing} does not exist; run `vom gizmo --out {missing}` to write it" in r.stderr
    # a folder can never hold it: the user's error, exit 2, not "stale" with a command that then fails (QA)
    r = subprocess.run([*cmd[:-1], str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and f"--out {tmp_path}: is a folder" in r.stderr and "run `vom gizmo" not in r.stderr
    # --out "" is the default (the checkout's files), as a blank setting is everywhere: it was refused as "--out ."
    r = subprocess.run([*cmd[:-1], ""], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "VOM_Matte.gizmo is current" in r.stdout, r.stderr
    r = subprocess.run([sys.executable, "-m", "vom_plugin.cli", "gizmo", "--out", str(stale)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and stale.read_text() == gizmo.generate()


def test_gizmo_parses_as_tcl_with_every_knob(tmp_path: Path) -> None:
    rows = _eval_gizmo(GIZMO, tmp_path)
    node = load_node_def()
    user = {r[3]: r for r in rows if r[0] == "USERKNOB"}
    gizmo_knobs = {r[2]: r[3] for r in rows if r[0] == "KNOB" and r[1] == "Gizmo"}

    # every knob of the node definition, and nothing else besides the tab, the buttons and the labels
    rendered = {name for name, _, _ in gizmo.RENDERED_KNOBS}
    expected = ({k.name for k in node.knobs} | {"vom", "analyze", "submit_farm", "vom_version", ""} | rendered
                | {k[2] for k in gizmo.HOST_KNOBS})
    assert set(user) == expected
    # what Analyze rendered is kept on the gizmo's own knobs, out of sight (the script saves them)
    assert all(user[name][9] == "+INVISIBLE" for name in rendered)
    assert gizmo_knobs["alpha_channel"] == "rgba.alpha" and "alpha_file" not in gizmo_knobs
    assert gizmo_knobs["onCreate"] == gizmo.ON_CREATE and "import" not in gizmo.ON_CREATE  # nuke alone: any Nuke
    # the Nuke node's own knob: the plate's colour space from Nuke, on by default, beside Input colour space
    assert int(user["colorspace_from_nuke"][2]) == gizmo.BOOL and gizmo_knobs["colorspace_from_nuke"] == "true"
    for k in node.knobs:
        row = user[k.name]
        assert int(row[2]) == gizmo.KNOB_TYPE_IDS[k.type], k.name
        assert row[4] == k.label
        if k.type == "enum":
            assert row[6].split(",") == list(k.choices)
        if k.default is not None:
            assert gizmo_knobs[k.name] == str(k.default), k.name
        else:
            assert k.name not in gizmo_knobs
    # every knob an artist types into is an input field: Nuke's Text_Knob (26) is a read-only label, so the
    # objects knob (several lines) is a Multiline_Eval_String_Knob (43); 26 only for the divider and version
    assert int(user["objects"][2]) == 43
    assert {name for name, row in user.items() if int(row[2]) == 26} == {"", "vom_version"}
    assert "hero 1001 1050" in user["objects"][5]  # its tooltip gives the knob's own syntax, not the CLI's
    assert gizmo_knobs["inputs"] == "2"
    assert gizmo_knobs["label"] == "[value frames]"  # a Tcl expression for Nuke, not substituted by the parser

    # the buttons call the host module's functions, which exist (read from its source: importing it needs nuke)
    import ast

    host_src = REPO / "vom_plugin" / "host" / "nuke.py"
    funcs = {n.name for n in ast.parse(host_src.read_text()).body if isinstance(n, ast.FunctionDef)}
    for name, func in (("analyze", "analyze"), ("submit_farm", "submit_farm")):
        assert int(user[name][2]) == gizmo.PYSCRIPT
        code = user[name][7]
        assert code == gizmo.button_code(func) and code.endswith(f"\nelse:\n    vom_nuke.{func}(nuke.thisNode())")
        compile(code, name, "exec")  # the Tcl-quoted Python comes back out of the file as valid Python
        assert func in funcs


def test_gizmo_inner_graph_copies_the_rendered_alpha_into_the_source(tmp_path: Path) -> None:
    rows = _eval_gizmo(GIZMO, tmp_path)
    nodes = {r[2]: (r[1], r[3].split(",") if r[3] else []) for r in rows if r[0] == "NODE" and r[1] != "Gizmo"}
    knobs = {(r[1], r[2]): r[3] for r in rows if r[0] == "KNOB"}
    assert nodes["Source"] == ("Input", [])
    assert nodes["Roto"] == ("Input", []) and knobs[("Roto", "number")] == "1"
    assert nodes["AlphaRead"] == ("Read", [])
    # the inner nodes follow the gizmo's own knobs by expression: Nuke rebuilds them from this file when a script
    # is opened, so values set on them by Analyze were lost
    assert knobs[("AlphaRead", "file")] == "[value parent.alpha_file]"
    assert [knobs[("AlphaRead", k)] for k in ("first", "last", "origfirst", "origlast")] == [
        "{parent.alpha_first}", "{parent.alpha_last}", "{parent.alpha_first}", "{parent.alpha_last}"]
    assert all(knobs[("AlphaRead", k)] == "black" for k in ("before", "after", "on_error"))
    assert nodes["AlphaTime"] == ("TimeOffset", ["AlphaRead"])
    assert knobs[("AlphaTime", "time_offset")] == "{parent.alpha_offset}"
    # Copy: input 0 (B, the stream) is the Source, input 1 (A) the rendered alpha
    assert nodes["CopyAlpha"] == ("Copy", ["Source", "AlphaTime"])
    assert knobs[("CopyAlpha", "from0")] == "rgba.alpha" and knobs[("CopyAlpha", "to0")] == "rgba.alpha"
    assert nodes["PremultOut"] == ("Premult", ["CopyAlpha"])
    premult = load_node_def().knob("output").choices.index("rgba-premult")
    assert knobs[("PremultOut", "disable")] == f'{{"parent.output != {premult}"}}'
    assert nodes["Output1"] == ("Output", ["PremultOut"])


def test_tcl_quote_survives_tcl(tmp_path: Path) -> None:
    nasty = 'a "quoted" [cmd] $var {brace} back\\slash\nnewline'
    tclsh = require_tool("tclsh")
    script = tmp_path / "q.tcl"
    script.write_text(f"puts -nonewline [string map [list \\n <NL>] {gizmo.tcl_quote(nasty)}]\n")
    r = subprocess.run([tclsh, str(script)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == nasty.replace("\n", "<NL>")
    assert gizmo.tcl_quote("rgba.alpha") == "rgba.alpha"
    assert gizmo.tcl_quote("") == '""'


def test_a_host_section_may_reword_help_only(tmp_path, monkeypatch) -> None:
    """A host section's default (even an invalid one) was written into the gizmo and the Blender table, a misspelled
    knob name was ignored, and `vom gizmo --check` called the files current (QA). Refused, naming the key."""
    import shutil

    import pytest
    import yaml

    import vom_plugin.nodedef as nodedef
    from vom_plugin.cli import main
    from vom_plugin.errors import InputError

    folder = tmp_path / "node_defs"
    shutil.copytree(nodedef.node_defs_dir(), folder)
    monkeypatch.setattr(nodedef, "node_defs_dir", lambda: folder)
    raw = yaml.safe_load((folder / "vom_matte.yaml").read_text())
    assert nodedef.host_help("nuke")["plate"].startswith("Plate sequence pattern. Empty: Analyze")
    for host, knobs, says in (("nuke", {"top_k": {"default": 999}}, r"knob 'top_k': a host may reword its help only"),
                              ("blender", {"topk": {"help": "x"}}, r"knob 'topk' is not a knob of the node")):
        bad = {**raw, host: {"knobs": {**raw[host]["knobs"], **knobs}}}
        (folder / "vom_matte.yaml").write_text(yaml.safe_dump(bad))
        with pytest.raises(InputError, match=says):
            nodedef.host_help(host)
        assert main(["gizmo", "--check"]) == 2


def test_an_installed_copy_without_its_checkout_writes_no_gizmo_into_site_packages(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A QA pass: from a wheel, `vom gizmo` made site-packages/gizmos/ (left by pip uninstall) and rewrote the
    installed add-on's knob table. Refused there, naming --out and --stdout, which still work."""
    from vom_plugin import locations
    from vom_plugin.cli import main

    site = tmp_path / "site-packages"
    (site / "vom_plugin").mkdir(parents=True)
    monkeypatch.setattr(locations, "REPO_DIR", site)
    assert main(["gizmo"]) == 2
    assert "installed without its checkout" in capsys.readouterr().err and not (site / "gizmos").exists()
    assert main(["gizmo", "--out", str(tmp_path / "g.gizmo")]) == 0
    assert (tmp_path / "g.gizmo").read_text() == gizmo.generate()
