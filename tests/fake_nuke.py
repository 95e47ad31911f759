"""A small fake of Nuke's ``nuke`` module: only what the adapter (vom_plugin/host/nuke.py) touches. Nodes with knobs
and inputs, a Write that "renders" by creating its frame files, a progress task, Tcl's subst.

Standard library only, in Python 3.7's language: ``tests/nuke_py37.py`` runs the adapter with it under Nuke 13's
Python as well as the tests here.
"""

from __future__ import annotations

import os
import re
import types
from pathlib import Path
from typing import Any


class FakeKnob:
    def __init__(self, value: Any = None) -> None:
        self._value = value
        self.executed = 0

    def value(self) -> Any:
        return self._value

    def setValue(self, value: Any) -> None:
        self._value = value

    def execute(self) -> None:
        self.executed += 1

    def notDefault(self) -> bool:  # the fake's knobs are all set by the test
        return True


class FakeTask:
    """What the adapter asks of ``nuke.ProgressTask``: the messages and progress it was given; it says it is
    cancelled once ``cancel_after`` progress values were set."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.messages: list[str] = []
        self.progress: list[int] = []
        self.cancel_after = cancel_after

    def setMessage(self, m: str) -> None:
        self.messages.append(m)

    def setProgress(self, p: int) -> None:
        self.progress.append(p)

    def isCancelled(self) -> bool:
        return self.cancel_after is not None and len(self.progress) >= self.cancel_after


class FakeNode:
    def __init__(self, cls: str, name: str, knobs: dict[str, Any] | None = None,
                 inputs: list[FakeNode | None] | None = None) -> None:
        self._cls, self._name = cls, name
        self.knobs = {k: FakeKnob(v) for k, v in (knobs or {}).items()}
        self.inputs = list(inputs or [])
        self.children: dict[str, FakeNode] = {}

    group = "root"  # the group the node is in (a FakeGroup's name), as its fullName says

    def Class(self) -> str:
        return self._cls

    def name(self) -> str:
        return self._name

    def fullName(self) -> str:
        return self._name if self.group == "root" else f"{self.group}.{self._name}"

    def knob(self, name: str) -> FakeKnob | None:
        return self.knobs.get(name)

    def __getitem__(self, name: str) -> FakeKnob:
        return self.knobs.setdefault(name, FakeKnob())

    def input(self, i: int) -> FakeNode | None:
        return self.inputs[i] if i < len(self.inputs) else None

    def setInput(self, i: int, node: FakeNode | None) -> None:
        while len(self.inputs) <= i:
            self.inputs.append(None)
        self.inputs[i] = node

    def node(self, name: str) -> FakeNode | None:
        return self.children.get(name)


class FakeRoot(FakeNode):
    """The script's root: its name (the script's path, "Root" when unsaved), frame range and knobs; as a context
    (``with nuke.root():``) it is where new nodes go."""

    def __init__(self, nk: types.ModuleType, script: str, first: int = 1, last: int = 24, **knobs: Any) -> None:
        super().__init__("Root", script, knobs)
        self.nk, self.first, self.last = nk, first, last

    def firstFrame(self) -> int:
        return self.first

    def lastFrame(self) -> int:
        return self.last

    def __enter__(self) -> FakeRoot:
        self.nk.context.append("root")  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        self.nk.context.pop()  # type: ignore[attr-defined]


def make_fake_nuke(script_path: str = "/shows/x/sh010/comp/sh010_comp_v001.nk") -> types.ModuleType:
    nk = types.ModuleType("nuke")
    nk.renders = []  # type: ignore[attr-defined]
    nk.messages = []  # type: ignore[attr-defined]
    nk.tasks = []  # type: ignore[attr-defined]
    nk.deleted = []  # type: ignore[attr-defined]
    nk.Node = FakeNode  # type: ignore[attr-defined]
    nk.Group = FakeNode  # type: ignore[attr-defined]
    nk.Script_Knob = FakeKnob  # type: ignore[attr-defined]

    # a gizmo's button runs with the gizmo as the context group: a node made there is inside it
    nk.context = ["VOM_Matte1"]  # type: ignore[attr-defined]
    nk.root_node = FakeRoot(nk, script_path)  # type: ignore[attr-defined]

    class Nodes:
        def Write(self, **knobs: Any) -> FakeNode:
            write = FakeNode("Write", "Write1", dict(nk.write_defaults, **knobs))  # type: ignore[attr-defined]
            write.made_in = nk.context[-1]  # type: ignore[attr-defined]
            return write

    class FakeGroup(FakeNode):  # a Group of the script: its context is where new nodes go
        def __enter__(self) -> FakeGroup:
            nk.context.append(self.name())  # type: ignore[attr-defined]
            return self

        def __exit__(self, *exc: object) -> None:
            nk.context.pop()  # type: ignore[attr-defined]

    nk.FakeGroup = FakeGroup  # type: ignore[attr-defined]
    nk.groups = {}  # type: ignore[attr-defined]
    def to_node(name: str) -> Any:  # asked from the root: the button runs with the gizmo as the context
        assert name.startswith("root."), name
        return nk.groups.get(name[len("root."):])

    nk.toNode = to_node  # type: ignore[attr-defined]

    class ProgressTask(FakeTask):
        def __init__(self, title: str) -> None:
            super().__init__()
            self.title = title
            nk.tasks.append(self)  # type: ignore[attr-defined]

    def execute(node: FakeNode, first: int, last: int) -> None:
        # "render" the Write: create the frame files, recording what was asked
        for f in range(first, last + 1):
            path = Path(node["file"].value().replace("%04d", f"{f:04d}"))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(getattr(node.input(0), "pixels", b"exr"))  # what the input shows
            nk.renders.append((node["channels"].value(), node.input(0).name(), f, str(path)))  # type: ignore
            nk.written_with.append({k: node[k].value() for k in ("datatype", "compression", "autocrop")})  # type: ignore
            # Nuke links no nodes across groups: a Write made inside the gizmo cannot take its inputs' nodes
            assert node.made_in == node.input(0).group, (node.made_in, node.input(0).group)
            nk.proxy_at_render.append(bool(nk.root_node["proxy"].value()))  # type: ignore[attr-defined]

    nk.proxy_at_render = []  # type: ignore[attr-defined]
    nk.write_defaults = {}  # type: ignore[attr-defined]  # a studio's knobDefaults for Write nodes
    nk.written_with = []  # type: ignore[attr-defined]  # each rendered frame's Write settings
    nk.root = lambda: nk.root_node  # type: ignore[attr-defined]

    def tcl(*args: str) -> str:  # the one Tcl the adapter runs: subst of [value root.name] and [getenv NAME]
        assert args[:3] == ("subst", "-nobackslashes", "-novariables"), args
        text = args[3].replace("[value root.name]", nk.root_node.name())  # type: ignore[attr-defined]
        for name in re.findall(r"\[getenv (\w+)\]", text):
            if name not in os.environ:
                raise RuntimeError(f"can't read \"env({name})\": no such variable")
            text = text.replace(f"[getenv {name}]", os.environ[name])
        if "[" in text:
            raise RuntimeError(f"invalid command name \"{text[text.index('[') + 1:].split()[0]}\"")
        return text

    nk.tcl = tcl  # type: ignore[attr-defined]
    nk.nodes = Nodes()  # type: ignore[attr-defined]
    nk.ProgressTask = ProgressTask  # type: ignore[attr-defined]
    nk.execute = execute  # type: ignore[attr-defined]
    nk.filename = lambda node, *a: node["file"].value()  # type: ignore[attr-defined]
    nk.delete = lambda node: nk.deleted.append(node)  # type: ignore[attr-defined]
    nk.message = lambda m: nk.messages.append(m)  # type: ignore[attr-defined]
    nk.executeInMainThread = lambda fn, args=(), kwargs=None: fn(*args, **(kwargs or {}))  # type: ignore
    nk.thisNode = lambda: None  # type: ignore[attr-defined]
    nk.all_nodes = []  # type: ignore[attr-defined]  # what allNodes finds (the tests' other nodes)
    def all_nodes(cls: str | None = None, group: Any = None, recurseGroups: bool = False) -> list[FakeNode]:
        # Nuke searches the context group unless told where: the adapter must name the root, recursively
        assert group is not None and recurseGroups, (group, recurseGroups)
        return [n for n in nk.all_nodes if cls is None or n.Class() == cls]  # type: ignore[attr-defined]

    nk.allNodes = all_nodes  # type: ignore[attr-defined]
    return nk
