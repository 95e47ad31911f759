"""The Nuke adapter under the Python of the oldest Nuke the gizmo is written for (13.x ships Python 3.7).

Run by ``tests/test_host_nuke.py`` with a Python 3.7 interpreter, as ``python3.7 nuke_py37.py CASE.json``: the
init.py block of ``install.py --nuke`` loads the adapter into a fake ``nuke`` module, then an Analyze from an
upstream Read runs against a fake ``vom`` (a script of this interpreter), a failing render is reported, and the
gizmo's button runs. Prints one JSON object of what happened; the test asserts on it. Standard library only.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_nuke import FakeNode, make_fake_nuke


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def main(case_file: str) -> None:
    case = json.loads(Path(case_file).read_text())
    tmp = Path(case["tmp"])
    nk = make_fake_nuke(str(tmp / "comp" / "sh010_comp_v001.nk"))
    on_create = []
    nk.pluginAddPath = lambda path: None
    nk.addOnCreate = lambda fn, nodeClass: on_create.append((fn, nodeClass))
    sys.modules["nuke"] = nk
    exec(compile(case["init_block"], "init.py", "exec"), {})
    out = {"python": "{}.{}".format(*sys.version_info[:2]), "loaded": "vom_nuke" in sys.modules}
    if not out["loaded"]:
        print(json.dumps(out))
        return
    host = sys.modules["vom_nuke"]

    log = tmp / "argv.json"
    os.environ["VOM_EXECUTABLE"] = str(_script(tmp / "vom", (
        "import json, sys\n"
        f"json.dump(sys.argv[1:], open({str(log)!r}, 'w'))\n"
        "for i in range(1, 4):\n"
        "    print(json.dumps({'frame': 1000 + i, 'done': i, 'total': 3}), flush=True)\n")))
    knobs = dict(case["knobs"], keyframes="1001", channel="vom.A", frames="1001-1003",
                 out=str(tmp / "out" / "alpha.####.exr"))
    node = FakeNode("Gizmo", "VOM_Matte1", knobs)
    node.children = {"AlphaRead": FakeNode("Read", "AlphaRead", {"file": "[value parent.alpha_file]"}),
                     "CopyAlpha": FakeNode("Copy", "CopyAlpha", {"from0": "rgba.alpha", "to0": "rgba.alpha"})}
    read = FakeNode("Read", "Read1", {"file": "/plates/sh010.%04d.exr", "first": 1001, "last": 1003})
    node.inputs = [FakeNode("Dot", "Dot1", inputs=[read]), FakeNode("Roto", "Roto1")]
    nk.thisNode = lambda: node
    exec(compile(case["button"], "analyze button", "exec"), {"nuke": nk})  # as the gizmo's Analyze runs it
    for thread in threading.enumerate():  # the render runs on a thread, as in Nuke
        if thread.name == "vom-analyze":
            thread.join(60)
    out["argv"] = json.loads(log.read_text())
    out["shot"] = (tmp / "out" / "alpha_vom" / "shot.yaml").read_text()
    out["progress"] = nk.tasks[0].progress
    out["alpha_file"] = node["alpha_file"].value()
    out["alpha_channel"] = node["alpha_channel"].value()
    out["renders"] = [[c, src, f] for c, src, f, _ in nk.renders]
    for fn, _ in on_create:  # the script opened again: the init.py block's onCreate sets the channel
        node.children["CopyAlpha"]["from0"].setValue("rgba.alpha")
        fn()
    out["from0_after_on_create"] = node.children["CopyAlpha"]["from0"].value()

    # a render that fails with a traceback: the message quotes the command line to run again by hand
    os.environ["VOM_EXECUTABLE"] = str(_script(tmp / "vom failing", (
        "import sys\nsys.stderr.write('Traceback (most recent call last):\\n  boom\\nRuntimeError: boom\\n')\n"
        "sys.exit(1)\n")))
    result = host.analyze(node, background=False)
    out["failed_returncode"] = result.returncode
    out["messages"] = nk.messages
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
