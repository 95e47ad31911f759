"""One grammar per knob value: what Shot accepts, the engine, the EXR writer and the CLI accept, and the
other way round; defaults are the node definition's and nowhere else."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pytest

from vom_plugin import grammar
from vom_plugin.engine.shot import Shot
from vom_plugin.errors import InputError
from vom_plugin.nodedef import load_node_def

REPO = Path(__file__).resolve().parents[1]
BASE = {"plate": "/p/plate.####.exr", "keyframes": {1001: "/p/roto.1001.exr"}, "out": "/o/alpha.####.exr"}


def _accepts(fn, *args) -> bool:
    try:
        fn(*args)
    except InputError:
        return False
    return True


MEMORY = ["first+prev2", "prev2", "prev3", "first+prev1", "every-5", "first+every-3", "First+Prev2", "prev0",
          "every-0", "last2", "every5", "first+", "prev-2", "first+prev2+every-3", "prev02", "prev\u0663"]


@pytest.mark.parametrize("text", MEMORY)
def test_shot_and_engine_agree_on_memory_policies(text: str) -> None:
    from vom_plugin.engine.memory import MemoryBank

    assert _accepts(lambda: Shot(**BASE, memory=text)) == _accepts(MemoryBank, text), text
    if _accepts(MemoryBank, text):
        assert Shot(**BASE, memory=text).memory == MemoryBank(text).policy.text  # normalised the same way


def test_a_memory_policy_has_one_spelling() -> None:
    """prev02 and prev2 were one policy under two cache identities and recipes, and prev with Arabic-Indic digits
    passed (QA)."""
    assert [Shot(**BASE, memory=m).memory for m in ("prev02", " PREV2 ", "first+every-05")] == [
        "prev2", "prev2", "first+every-5"]
    with pytest.raises(InputError, match="expected first\\+prevK"):
        Shot(**BASE, memory="prev\u0663")


@pytest.mark.parametrize("blank", ["", "  ", None])
def test_a_blank_setting_is_its_default_in_a_shot_as_in_the_hosts(blank: str | None) -> None:
    """The hosts leave a cleared knob out (the default applies); a shot file's ``memory: ""`` or ``model:`` was
    refused ("expected a non-empty string"). Blank is the node definition's default on every surface now (as it
    was already for frames, the plate's range, and cache, the user cache)."""
    node = load_node_def()
    names = ["channel", "mask_channel", "output", "compression", "working_size", "colorspace", "model", "device",
             "memory", "top_k"]
    shot = Shot(**BASE, **{n: blank for n in names})
    assert {n: getattr(shot, n) for n in names} == {n: node.knob(n).default for n in names}
    from_file = Shot.from_dict({**BASE, "memory": blank, "model": blank, "frames": blank}, base_dir="/shots")
    assert (from_file.memory, from_file.model, from_file.frames) == (node.knob("memory").default,
                                                                     node.knob("model").default, None)


def test_prev3_is_a_policy_everywhere() -> None:
    from vom_plugin.engine.memory import MemoryBank

    assert Shot(**BASE, memory="prev3").memory == "prev3"
    assert MemoryBank("prev3").policy.slots == 3


CHANNELS = ["A", "vom.A", "matte.fg.A", "my-layer.A", "matte", "alpha", "vom.alpha", "A B", "vom.", ".A", "1.A"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_channel_shot_accepts_is_one_the_writer_writes(tmp_path: Path, channel: str) -> None:
    from vom_plugin.io import ImageInfo, write_alpha

    shot_ok = _accepts(lambda: Shot(**BASE, channel=channel))
    path = tmp_path / "a.exr"
    writer_ok = _accepts(lambda: write_alpha(path, np.zeros((2, 2), np.float32), ImageInfo.for_size(2, 2),
                                             channel=channel))
    assert shot_ok == writer_ok, channel
    assert path.exists() == shot_ok


def test_a_number_is_no_name_even_where_its_text_would_be(tmp_path: Path) -> None:
    """QA: `mask_channel: .nan` (YAML's float) rendered, exit 0, writing a channel named nan; quoted, it is a name."""
    for value in (float("nan"), float("inf")):
        with pytest.raises(InputError, match=r"a number, where a name is expected; write it in quotes"):
            Shot(**BASE, mask_channel=value)
    shot = tmp_path / "shot.yaml"
    shot.write_text("plate: p.####.exr\nout: o.####.exr\nkeyframes: {1: r.0001.exr}\nmask_channel: .nan\n")
    with pytest.raises(InputError, match=r"mask_channel nan: a number"):
        Shot.from_yaml(shot)
    assert Shot(**BASE, mask_channel="nan").mask_channel == "nan"
    with pytest.raises(InputError, match="memory '5': expected first"):  # a grammar's own message first
        Shot(**BASE, memory=5)


def test_enum_knobs_are_what_the_engine_implements() -> None:
    from vom_plugin.io import COLORSPACES, COMPRESSIONS, OUTPUTS

    node = load_node_def()
    assert tuple(COLORSPACES) == node.knob("colorspace").choices  # each setting has a conversion
    assert COMPRESSIONS == node.knob("compression").choices and OUTPUTS == node.knob("output").choices
    for device in node.knob("device").choices:
        assert grammar.parse_device(device) == device  # the node's devices are the engine's


@pytest.mark.parametrize("value, ok", [("auto", True), ("cpu", True), ("CUDA", True), ("cuda:1", True),
                                       ("cuda:0", True), ("cuda:12", True), ("cuda:99", True), ("cuda:100", False),
                                       ("cuda:", False), ("gpu", False),
                                       ("tpu", False), ("cuda:x", False),
                                       # torch refuses these: they failed as an internal error on a GPU (QA)
                                       ("cuda:01", False), ("cuda:\u0661", False), ("cuda:99999999999999", False)])
def test_device_grammar(value: str, ok: bool) -> None:
    assert _accepts(grammar.parse_device, value) == ok
    # the node's device knob (a menu of auto, cpu, cuda in the hosts) reads the same grammar: one GPU of several
    assert _accepts(lambda v: grammar.parse_value("device", v), value) == ok


def test_one_gpu_of_several_is_named_on_every_surface(tmp_path) -> None:
    import argparse

    from vom_plugin.commands import demo, render
    from vom_plugin.engine.shot import Shot

    assert Shot(plate="p.####.exr", keyframes={1: "r.exr"}, out="o.####.exr", device="CUDA:1").device == "cuda:1"
    for module in (render, demo):
        p = argparse.ArgumentParser()
        module.add_arguments(p)
        dest = "knob_device" if module is render else "device"
        assert getattr(p.parse_args(["--device", "cuda:1"]), dest) == "cuda:1"
        with pytest.raises(SystemExit):
            p.parse_args(["--device", "gpu"])


def test_every_default_parses_and_a_bad_default_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for knob in load_node_def().knobs:
        if knob.default is not None:
            assert grammar.parse_knob(knob, knob.default) == knob.default, knob.name
    from vom_plugin import nodedef

    text = (REPO / "node_defs" / "vom_matte.yaml").read_text()
    (tmp_path / "vom_matte.yaml").write_text(text.replace("default: first+prev2", "default: last2"))
    monkeypatch.setattr(nodedef, "node_defs_dir", lambda: tmp_path)
    nodedef.load_node_def.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"knob 'memory': its default does not parse: memory 'last2'"):
            nodedef.load_node_def()
    finally:
        nodedef.load_node_def.cache_clear()


def test_defaults_are_written_only_in_the_node_definition() -> None:
    """No module repeats a default of the node definition (it would drift: eval ran at 1024 where renders ran
    at 960). Code asks grammar.default(name) instead."""
    node = load_node_def()
    literals = {
        "memory": re.compile(r"""["']first\+prev2["']"""),
        "top_k": re.compile(rf"\btop_k\s*(?::\s*int\s*)?=\s*{node.knob('top_k').default}\b"),
        "working_size": re.compile(r"\b(?:working_size|WORKING_SIZE)\s*(?::\s*int\s*)?=\s*\d+"),
    }
    # a setting's default as a keyword or field default (name: str = "zip")
    for name in ("channel", "compression", "output", "colorspace"):
        value = re.escape(node.knob(name).default)
        literals[name] = re.compile(rf"""\b{name}\s*(?::\s*[\w| .]+)?=\s*["']{value}["']""")
    offenders = []
    for path in sorted((REPO / "vom_plugin").rglob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for name, pattern in literals.items():
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{n}: {name}: {line.strip()}")
    assert offenders == []


def test_engine_and_model_defaults_are_the_node_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from vom_plugin.engine.propagate import Propagator
    from vom_plugin.eval.runner import vom_method
    from vom_plugin.model import build_model

    node = load_node_def()
    prop = Propagator(build_model("lite"))
    assert prop.top_k == node.knob("top_k").default and prop.bank.policy.text == node.knob("memory").default
    with pytest.raises(InputError, match="top_k 0: out of range"):
        Propagator(build_model("lite"), top_k=0)
    # the benchmark's vom method runs the render's pass runner with the node's working size, memory and top_k
    seen = {}

    def fake_run_clip(model, frames, keyframes, **kw):
        seen.update(kw)
        return np.zeros(frames.shape[:3], np.float32)

    monkeypatch.setattr("vom_plugin.engine.passes.run_clip", fake_run_clip)
    vom_method(object())(np.zeros((1, 1000, 2000, 3), np.float32), np.zeros((1000, 2000), np.float32))
    assert seen["working_size"] == node.knob("working_size").default
    assert seen["memory"] == node.knob("memory").default and seen["top_k"] == node.knob("top_k").default
    # and so does training's validation (it fell back to the model's own clip forward when the runner failed)
    from vom_plugin.train import validate

    seen.clear()
    monkeypatch.setattr(validate, "run_clip", fake_run_clip)
    alpha = validate.predict_clip(build_model("lite"), torch.zeros(3, 3, 40, 60), torch.zeros(1, 40, 60), "cpu")
    assert alpha.shape == (3, 40, 60)
    assert (seen["working_size"], seen["memory"], seen["top_k"]) == tuple(
        node.knob(k).default for k in ("working_size", "memory", "top_k"))


def test_cli_flags_parse_by_the_grammar(capsys: pytest.CaptureFixture[str]) -> None:
    from vom_plugin.commands import render

    p = argparse.ArgumentParser()
    render.add_arguments(p)
    args = p.parse_args(["--channel", "vom.A", "--memory", "prev3", "--top-k", "4"])
    assert (args.knob_channel, args.knob_memory, args.knob_top_k) == ("vom.A", "prev3", 4)
    for argv, needle in ((["--channel", "matte"], "--channel: 'matte': expected a channel name A or <layer>.A"),
                         (["--memory", "last2"], "--memory: 'last2': expected first+prevK"),
                         (["--top-k", "0"], "--top-k: 0: out of range; expected 1 to 256"),
                         (["--working-size", "64"], "--working-size: 64: out of range")):
        with pytest.raises(SystemExit) as e:
            p.parse_args(argv)
        assert e.value.code == 2 and needle in capsys.readouterr().err


def test_bench_top_k_reads_the_knobs_grammar_and_names_its_type(capsys: pytest.CaptureFixture[str]) -> None:
    """vom bench's --top-k said "invalid <lambda> value" for a word (QA): the knob's type, as vom render says."""
    from vom_plugin.commands import bench, render

    for add in (bench.add_arguments, render.add_arguments):
        p = argparse.ArgumentParser()
        add(p)
        assert p.parse_args(["--top-k", "16"]).__dict__[
            "top_k" if add is bench.add_arguments else "knob_top_k"] == 16
        if add is bench.add_arguments:  # blank: the default, as for vom render, and not a flag given (review)
            args = p.parse_args(["--top-k=", "--cache"])
            bench._check_flags(args)
            assert args.top_k is None
        for value, needle in (("big", "--top-k: invalid int value: 'big'"),
                              ("0", "--top-k: 0: out of range; expected 1 to 256")):
            with pytest.raises(SystemExit) as e:
                p.parse_args(["--top-k", value])
            assert e.value.code == 2 and needle in capsys.readouterr().err


def test_a_blank_flag_is_the_settings_default_over_a_shot_file(tmp_path: Path) -> None:
    """A blank setting is its default in a shot file; as a flag it was refused with the knob's whole help text (QA),
    so a TD could not clear a shot file's memory, top_k or compression from the command line."""
    from vom_plugin.commands import render
    from vom_plugin.errors import InputError
    from vom_plugin.grammar import default

    shot_file = tmp_path / "s.yaml"
    shot_file.write_text("plate: p.####.exr\nout: o/a.####.exr\nkeyframes: {1: r.0001.exr}\nmemory: prev3\n"
                         "top_k: 4\ncompression: piz\ncolorspace: lin_rec709\nworking_size: 512\nchannel: vom.A\n")
    p = argparse.ArgumentParser()
    render.add_arguments(p)
    kept = render.shot_from_args(p.parse_args([str(shot_file)]))
    assert (kept.memory, kept.top_k, kept.compression, kept.colorspace, kept.working_size, kept.channel) == (
        "prev3", 4, "piz", "lin_rec709", 512, "vom.A")
    cleared = render.shot_from_args(p.parse_args([str(shot_file), "--memory=", "--top-k=", "--compression=",
                                                  "--colorspace", " ", "--working-size=", "--channel="]))
    assert (cleared.memory, cleared.top_k, cleared.compression, cleared.colorspace, cleared.working_size,
            cleared.channel) == tuple(default(k) for k in ("memory", "top_k", "compression", "colorspace",
                                                             "working_size", "channel"))
    with pytest.raises(InputError, match=r"^missing --out \(or give a SHOT.yaml\)"):  # said once, by its flag
        render.shot_from_args(p.parse_args(["--plate", "p.####.exr", "--roto", "r.0001.exr", "--out", ""]))
