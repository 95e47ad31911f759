"""install.py: idempotence, usage errors, clear failures. Runs in a temporary copy with a temporary HOME."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import textwrap
import time
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _copy_project(dst: Path) -> Path:
    for name in ("install.py", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dst / name)
    for d in ("vom_plugin", "node_defs"):
        shutil.copytree(REPO / d, dst / d, ignore=shutil.ignore_patterns("__pycache__", "*.safetensors"))
    return dst


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env["HOME"] = str(home)
    return env


def _run(cmd: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=_env(home), capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_second_run_is_a_noop(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    proj = _copy_project(tmp_path / "proj")
    home = tmp_path / "home"
    home.mkdir()
    venv = proj / ".venv"
    # Pre-create the environment and let it see this environment's packages through a .pth file, so
    # the test exercises install.py's own logic without downloading torch again (CI's real run of
    # `python3 install.py --test` covers the full fresh install).
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "_vom_test_parent.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    first = _run([sys.executable, str(proj / "install.py")], proj, home)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "installed vom into" in first.stdout
    vom = venv / "bin" / "vom"
    assert vom.exists()
    version = subprocess.run([str(vom), "--version"], capture_output=True, text=True, env=_env(home))
    assert version.stdout.strip().startswith("vom ")
    # vom's modules compiled as pip compiles what it copies (the copy was made without any bytecode)
    for module in ("cli.py", "engine/runner.py", "model/hstsg.py"):
        assert Path(importlib.util.cache_from_source(str(proj / "vom_plugin" / module))).is_file(), module
    stamp = venv / "vom-install-stamp.json"
    before = (stamp.stat().st_mtime_ns, sorted(p.name for p in site.iterdir()))

    second = _run([sys.executable, str(proj / "install.py")], proj, home)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already installed and up to date" in second.stdout
    assert "pip" not in second.stdout  # no install step ran
    assert (stamp.stat().st_mtime_ns, sorted(p.name for p in site.iterdir())) == before

    # An extra asked for later is installed once; a plain run afterwards keeps it and does nothing.
    third = _run([sys.executable, str(proj / "install.py"), "--extras", "dev"], proj, home)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "installed vom with extras dev" in third.stdout and "[dev]" in third.stdout
    fourth = _run([sys.executable, str(proj / "install.py")], proj, home)
    assert "already installed and up to date" in fourth.stdout and "extras dev" in fourth.stdout

    # QA: a version bump left pip's metadata at the old version ("up to date; nothing to do")
    init = proj / "vom_plugin" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "7.7.7+', 1))
    fifth = _run([sys.executable, str(proj / "install.py")], proj, home)
    assert fifth.returncode == 0 and "make its package metadata again" in fifth.stdout, fifth.stdout + fifth.stderr
    metadata = [str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('vom-matte'))"]
    # (from a folder of its own: the working folder is on sys.path, and a checkout's build leaves vom_matte.egg-info
    # there, read first: CI)
    assert subprocess.run(metadata, capture_output=True, text=True, cwd=home).stdout.startswith("7.7.7+")
    # QA: a pull that changed pyproject.toml, then a plain run: vom installed again without its extra
    (proj / "pyproject.toml").write_text((proj / "pyproject.toml").read_text() + "\n# a git pull\n")
    sixth = _run([sys.executable, str(proj / "install.py")], proj, home)
    assert sixth.returncode == 0 and f"{proj}[dev]" in sixth.stdout, sixth.stdout + sixth.stderr
    assert "extras: dev, as this environment was installed" in sixth.stdout
    assert '"extras": ["dev"]' in stamp.read_text()


def test_render_install_by_default_extras_on_request() -> None:
    sys.path.insert(0, str(REPO))
    try:
        import install
    finally:
        sys.path.remove(str(REPO))
    assert install.parse_extras("eval, farm") == ["eval", "farm"]
    assert install.parse_extras("all") == sorted(install.EXTRAS)
    assert set(install.EXTRAS) == {"farm", "eval", "train", "dev"}
    with pytest.raises(Exception, match="unknown extra 'gpu'"):
        install.parse_extras("eval,gpu")


def test_unknown_extra_is_a_usage_error(tmp_path: Path) -> None:
    r = _run([sys.executable, str(REPO / "install.py"), "--extras", "evl"], tmp_path, tmp_path)
    assert r.returncode == 2 and "unknown extra 'evl'" in r.stderr


def test_bad_option_gives_usage_and_exit_2(tmp_path: Path) -> None:
    r = _run([sys.executable, str(REPO / "install.py"), "--no-such-option"], tmp_path, tmp_path)
    assert r.returncode == 2
    assert "usage: install.py" in r.stderr
    assert "--no-such-option" in r.stderr


def test_pytest_args_need_test(tmp_path: Path) -> None:
    r = _run([sys.executable, str(REPO / "install.py"), "--", "-k", "x"], tmp_path, tmp_path)
    assert r.returncode == 2
    assert "need --test" in r.stderr


def test_unwritable_venv_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    r = _run([sys.executable, str(REPO / "install.py"), "--venv", str(blocker / "venv")], tmp_path, tmp_path)
    assert r.returncode == 2
    assert str(blocker) in r.stderr and "cannot write" in r.stderr


def test_a_venv_folder_holding_other_files_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    """--venv ~/.local or a tools folder: `python -m venv` wrote its bin/activate and pyvenv.cfg over the user's
    files (QA). Refused now, exit 2, nothing touched; a file is refused too."""
    tools = tmp_path / "tools"
    (tools / "bin").mkdir(parents=True)
    (tools / "bin" / "activate").write_text("my activate script")
    (tools / "pyvenv.cfg").write_text("my notes")
    r = _run([sys.executable, str(REPO / "install.py"), "--venv", str(tools)], tmp_path, tmp_path)
    assert r.returncode == 2, r.stderr
    assert f"--venv {tools}: holds files (bin, pyvenv.cfg) and is not a virtual environment" in r.stderr
    assert (tools / "bin" / "activate").read_text() == "my activate script"
    assert (tools / "pyvenv.cfg").read_text() == "my notes" and sorted(p.name for p in tools.iterdir()) == [
        "bin", "pyvenv.cfg"]
    r = _run([sys.executable, str(REPO / "install.py"), "--venv", str(tools / "pyvenv.cfg")], tmp_path, tmp_path)
    assert r.returncode == 2 and "is a file, not a folder" in r.stderr


def test_too_old_python_is_refused(tmp_path: Path) -> None:
    # Run install.py's version gate with a faked version tuple: the gate must come before any 3.11 syntax.
    code = (
        "import sys; sys.version_info = (3, 8, 0, 'final', 0); sys.argv = ['install.py'];"
        f"exec(compile(open({str(REPO / 'install.py')!r}).read(), 'install.py', 'exec'), {{'__name__': '__main__'}})"
    )
    r = _run([sys.executable, "-c", code], tmp_path, tmp_path)
    assert r.returncode == 2
    assert "needs Python 3.11 or newer" in r.stderr


def test_a_copy_install_is_current_only_while_vom_s_files_are_unchanged(inst: types.ModuleType, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """--no-editable after a `git pull`: the stamp saw only pyproject.toml, said "up to date", and the copy kept
    running the old code. An editable install follows the files by itself: its stamp does not read them."""
    (tmp_path / "p").mkdir()
    root = _copy_project(tmp_path / "p")
    monkeypatch.setattr(inst, "ROOT", root)
    args = types.SimpleNamespace(torch="torch", no_editable=True)
    editable = types.SimpleNamespace(torch="torch", no_editable=False)
    before, before_editable = inst.stamp_key(args, "/py"), inst.stamp_key(editable, "/py")
    assert before != before_editable  # switching between them is not "nothing to do"
    (root / "vom_plugin" / "__init__.py").write_text((root / "vom_plugin" / "__init__.py").read_text() + "\n# new\n")
    assert inst.stamp_key(args, "/py") != before and inst.stamp_key(editable, "/py") == before_editable


def test_no_venv_on_a_system_managed_python_is_refused_before_pip(inst: types.ModuleType, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """--no-venv on a Debian python (PEP 668): pip refused, and install.py said exit 1, "is the package registry
    reachable? ... HTTPS_PROXY" (QA). Refused first now, exit 2, saying what to do; pip never runs."""
    monkeypatch.setattr(inst, "externally_managed", lambda: True)
    monkeypatch.setattr(inst, "run", lambda *a, **k: pytest.fail("pip ran"))
    monkeypatch.setattr(inst, "ROOT", tmp_path)
    args = types.SimpleNamespace(no_venv=True, venv=None, extras=[], torch="torch", no_editable=False)
    with pytest.raises(inst.InstallError) as e:
        inst.ensure_environment(args)
    said = str(e.value)
    assert e.value.code == 2 and "managed by the system (PEP 668" in said and "leave out --no-venv" in said
    assert not (tmp_path / ".vom-install").exists()  # nothing left in the checkout
    import sysconfig

    marker = Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED"
    monkeypatch.undo()
    assert inst.externally_managed() is (sys.prefix == sys.base_prefix and marker.is_file())


def test_a_nuke_file_that_cannot_be_written_is_a_clear_error(inst: types.ModuleType, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "init.py").write_text("x = 1\n")

    def refuse(src: str, dst: str) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(inst.os, "replace", refuse)
    with pytest.raises(inst.InstallError, match="init.py cannot be written .*nothing in it was changed") as e:
        inst.nuke_install(tmp_path, "/v/bin/vom", REPO / "gizmos", REPO / "vom_plugin" / "host" / "nuke.py")
    assert e.value.code == 2 and (tmp_path / "init.py").read_text() == "x = 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["init.py"]  # no temporary left


def test_uninstalling_the_blender_add_on_without_blender_says_to_disable_it(inst: types.ModuleType, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str],
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inst, "find_blender", lambda: None)
    inst.unregister_blender(str(tmp_path))
    assert "disable 'VOM Matte' in Blender's Preferences > Add-ons by hand" in capsys.readouterr().out


def test_an_environment_left_without_pip_is_mended_and_a_venv_of_ones_own_is_written_in_place(
        inst: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a set-up stopped during ``ensurepip`` left bin/python without pip, and every later run failed at pip
    ("is the package registry reachable?") until the folder was removed by hand; and a writable --venv folder inside
    a folder the user cannot write to (a TD's /opt/vom/venv) was refused for its parent."""
    parent = tmp_path / "opt"
    venv = parent / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    real_access = os.access
    monkeypatch.setattr(inst.os, "access", lambda p, mode: False if Path(p) == parent else real_access(p, mode))
    ran: list[list[str]] = []

    def run(cmd: list[object], what: str, **_: object) -> None:
        ran.append([str(c) for c in cmd])
        if "pip" in ran[-1]:
            raise inst.InstallError("stop here")  # the install itself is not this test's

    monkeypatch.setattr(inst, "run", run)
    args = types.SimpleNamespace(no_venv=False, venv=str(venv), extras=[], torch="torch", no_editable=False)
    with pytest.raises(inst.InstallError, match="stop here"):
        inst.ensure_environment(args)
    assert ran[0][1:] == ["-m", "ensurepip", "--upgrade", "--default-pip"], ran
    assert ran[1][1:4] == ["-m", "pip", "install"], ran


def test_a_nuke_install_is_whole_or_not_at_all_and_a_current_one_writes_nothing(
        inst: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: menu.py another user's in a sticky folder (its rename refused): init.py had its block, then menu.py was
    refused with "nothing in it was changed". Now init.py is put back as it was. And a run with the blocks already
    current writes nothing: read-only files stay as they are, no error (review)."""
    (tmp_path / "init.py").write_text("x = 1\n")
    (tmp_path / "menu.py").write_text("y = 2\n")
    real_replace = os.replace

    def refuse_menu(src: str, dst: str) -> None:
        if Path(dst).name == "menu.py":
            raise PermissionError(1, "Operation not permitted")
        real_replace(src, dst)

    args = ("/v/bin/vom", REPO / "gizmos", REPO / "vom_plugin" / "host" / "nuke.py")
    monkeypatch.setattr(inst.os, "replace", refuse_menu)
    with pytest.raises(inst.InstallError, match="menu.py cannot be written .*init.py put back as it was") as e:
        inst.nuke_install(tmp_path, *args)
    assert e.value.code == 2 and (tmp_path / "init.py").read_text() == "x = 1\n"
    assert (tmp_path / "menu.py").read_text() == "y = 2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["init.py", "menu.py"]  # no temporary left
    monkeypatch.undo()
    assert sorted(p.name for p in inst.nuke_install(tmp_path, *args)) == ["init.py", "menu.py"]
    for name in ("init.py", "menu.py"):
        (tmp_path / name).chmod(0o444)
    folder_time = tmp_path.stat().st_mtime_ns
    assert inst.nuke_install(tmp_path, *args) == []  # current: nothing written, the folder untouched
    assert tmp_path.stat().st_mtime_ns == folder_time
    # an uninstall that cannot remove the second file's block puts the first back too
    for name in ("init.py", "menu.py"):
        (tmp_path / name).chmod(0o644)
    installed = {n: (tmp_path / n).read_text() for n in ("init.py", "menu.py")}
    monkeypatch.setattr(inst.os, "replace", refuse_menu)
    with pytest.raises(inst.InstallError, match="init.py put back as it was"):
        inst.nuke_uninstall(tmp_path)
    assert {n: (tmp_path / n).read_text() for n in ("init.py", "menu.py")} == installed


def test_sigterm_stops_install_py_and_the_child_it_waits_on(tmp_path: Path) -> None:
    """QA: a SIGTERM to install.py alone ended it without a word while pip, re-parented, went on installing into the
    environment a re-run would install into. Now it stops as Ctrl-C does (exit 130) and the child is killed."""
    pid_file, told = tmp_path / "child.pid", tmp_path / "told"
    # a child that stops its own way on SIGTERM (vom demo finishes its frame), told so, not killed
    child = (f"import os, signal, sys, time\n"
             f"signal.signal(signal.SIGTERM, lambda *_: (open({str(told)!r}, 'w').write('term'), sys.exit(130)))\n"
             f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n")
    code = textwrap.dedent(f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("inst", {str(REPO / 'install.py')!r})
        inst = importlib.util.module_from_spec(spec); spec.loader.exec_module(inst)
        inst.ensure_environment = lambda args: inst.run([sys.executable, "-c", {child!r}], "a long pip")
        sys.exit(inst.main([]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    child_pid = int(pid_file.read_text())
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "install.py: interrupted" in err, err
    assert told.read_text() == "term"
    time.sleep(0.2)
    stat_file = Path(f"/proc/{child_pid}/stat")
    # gone, or dead and not yet reaped by whoever adopted it (a container's init may never reap)
    assert not stat_file.exists() or stat_file.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def _fake_dist(site: Path, name: str, version: str, requires: list[str], scripts: str = "") -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                   + "".join(f"Requires-Dist: {r}\n" for r in requires))
    if scripts:
        (info / "entry_points.txt").write_text(f"[console_scripts]\n{scripts}\n")


def test_the_environment_check_finds_the_old_name_and_what_was_removed(inst: types.ModuleType,
                                                                       tmp_path: Path) -> None:
    """QA: zstandard uninstalled from the environment, install.py said "up to date; nothing to do" and every vom
    command crashed; vom installed as "vom" (PyPI's name of another project) is found to be replaced."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    python = venv / "bin" / "python"
    _fake_dist(site, "vom-matte", "0.1.0", ["zstandard>=0.22", "numpy>=1.26", 'pytest>=8; extra == "dev"'])
    _fake_dist(site, "numpy", "2.0.0", [])
    assert inst.check_environment(python, []) == (False, ["zstandard"])
    assert inst.check_environment(python, ["dev"]) == (False, ["zstandard", "pytest"])
    _fake_dist(site, "vom", "0.1.0", [], "vom = vom_plugin.cli:entry")  # ours, under the old name
    assert inst.check_environment(python, []) == (True, ["zstandard"])
    shutil.rmtree(site / "vom-0.1.0.dist-info")
    _fake_dist(site, "vom", "2.0.0", ["selenium"])  # PyPI's vom: not ours, left alone
    assert inst.check_environment(python, [])[0] is False


def test_a_stale_install_is_mended_and_the_old_name_removed_first(inst: types.ModuleType, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    (venv / "bin" / "vom").write_text("#!/bin/sh\n")
    monkeypatch.setattr(inst, "_imports", lambda py, module: True)
    monkeypatch.setattr(inst, "byte_compile", lambda *a: None)
    ran: list[list[str]] = []

    def run(cmd: list[object], what: str, **_: object) -> None:
        ran.append([str(c) for c in cmd])
        if ran[-1][3:4] == ["install"]:
            raise inst.InstallError("stop here")

    monkeypatch.setattr(inst, "run", run)
    args = types.SimpleNamespace(no_venv=False, venv=str(venv), extras=[], torch="torch", no_editable=False)
    import json

    (venv / inst.STAMP_NAME).write_text(json.dumps({"key": inst.stamp_key(args, python), "extras": ["farm"]}))
    checked: list[list[str]] = []

    def check(py: object, extras: list[str]) -> tuple[bool, list[str]]:
        checked.append(list(extras))
        return True, ["zstandard"]

    monkeypatch.setattr(inst, "check_environment", check)
    with pytest.raises(inst.InstallError, match="stop here"):
        inst.ensure_environment(args)
    assert "the environment lacks zstandard (removed since vom was installed): installing again" in \
        capsys.readouterr().out
    assert checked[0] == ["farm"]  # what the stamp says was installed is checked too
    assert ran[0][1:] == ["-m", "pip", "uninstall", "--disable-pip-version-check", "-y", "vom"], ran
    assert ran[1][1:4] == ["-m", "pip", "install"] and ran[1][-2].endswith("[farm]"), ran  # the extra kept
    monkeypatch.setattr(inst, "check_environment", lambda py, extras: (False, []))
    assert inst.ensure_environment(args) == python  # nothing lacking: up to date, nothing run
    assert len(ran) == 2


def test_a_venv_whose_python_went_is_made_again(inst: types.ModuleType, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a venv whose Python was removed (a pyenv version gone) failed in `python -m venv` on its dangling links,
    though the code said such a venv is made again in place."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    for link in (venv / "bin").glob("python*"):
        link.unlink()
        link.symlink_to("/nonexistent/3.11.5/bin/python3")
    cfg = venv / "pyvenv.cfg"
    cfg.write_text(cfg.read_text().replace(f"home = {Path(sys.executable).parent}", "home = /nonexistent/3.11.5/bin"))
    ran: list[list[str]] = []
    real_run = inst.run

    def run(cmd: list[object], what: str, **kw: object) -> None:
        ran.append([str(c) for c in cmd])
        if ran[-1][1:3] == ["-m", "venv"]:
            return real_run([*cmd[:-1], "--without-pip", cmd[-1]], what, **kw)  # made for real, quicker
        raise inst.InstallError("stop here")

    monkeypatch.setattr(inst, "run", run)
    args = types.SimpleNamespace(no_venv=False, venv=str(venv), extras=[], torch="torch", no_editable=False)
    with pytest.raises(inst.InstallError):
        inst.ensure_environment(args)
    assert ran[0] == [sys.executable, "-m", "venv", "--clear", str(venv)], ran
    assert (venv / "bin" / "python").resolve().exists()


def _stop_at_pip(inst: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """``inst.run`` recorded, the environment made for real (without pip: quicker), pip's install stopped there."""
    ran: list[list[str]] = []
    real_run = inst.run

    def run(cmd: list[object], what: str, **kw: object) -> None:
        ran.append([str(c) for c in cmd])
        if ran[-1][1:3] == ["-m", "venv"]:
            return real_run([*cmd[:-1], "--without-pip", cmd[-1]], what, **kw)
        if ran[-1][1:4] == ["-m", "pip", "install"]:
            raise inst.InstallError("stop here")
        return None

    monkeypatch.setattr(inst, "run", run)
    monkeypatch.setattr(inst, "_imports", lambda py, module: True)
    monkeypatch.setattr(inst, "check_environment", lambda py, extras: (False, []))
    return ran


def test_a_rerun_keeps_the_torch_the_environment_was_installed_with_and_says_it(
        inst: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """QA: installed with --torch "" (a studio's own torch 2.5.0 kept), the command install.py printed next (and vom's
    extras hint) left it out, and following it installed torch==2.13.0 over the site's build. The stamp holds the
    choice; a rerun without --torch takes it, and the printed command repeats it."""
    import json

    venv = tmp_path / "site venv"
    ran = _stop_at_pip(inst, monkeypatch)
    monkeypatch.setattr(inst, "byte_compile", lambda *a: None)
    args = types.SimpleNamespace(no_venv=False, venv=str(venv), extras=[], torch="", no_editable=False)
    with pytest.raises(inst.InstallError, match="stop here"):
        inst.ensure_environment(args)
    assert ran[-1][-1] != inst.DEFAULT_TORCH and not any("torch" in w for w in ran[-1][4:]), ran[-1]
    # the install as it ends: its stamp says the torch it was given
    python = venv / "bin" / "python"
    (venv / "bin" / "vom").write_text("#!/bin/sh\n")
    (venv / inst.STAMP_NAME).write_text(json.dumps({"key": inst.stamp_key(args, python), "extras": [], "torch": "",
                                                    "python": str(python), "prefix": str(venv)}))
    again = types.SimpleNamespace(no_venv=False, venv=str(venv), extras=[], torch=None, no_editable=False)
    assert inst.ensure_environment(again) == python  # up to date: nothing installed over the site's torch
    assert again.torch == "" and len(ran) == 2, ran
    said = capsys.readouterr().out
    assert "torch: the one installed there is kept, as this environment was installed (--torch '')" in said, said
    assert inst.rerun_command(again, "--demo") == (f"{sys.executable} {inst.ROOT / 'install.py'} --venv "
                                                   f"'{venv.resolve()}' --torch '' --demo")
    # an extra asked for later: pip is not given install.py's default torch either
    later = types.SimpleNamespace(no_venv=False, venv=str(venv), extras=["eval"], torch=None, no_editable=False)
    with pytest.raises(inst.InstallError, match="stop here"):
        inst.ensure_environment(later)
    assert not any("torch" in w for w in ran[-1][4:]), ran[-1]
    # a stamp of before the torch was recorded, of an install with --torch "": its key says so
    (venv / inst.STAMP_NAME).write_text(json.dumps({"key": inst.stamp_key(args, python), "extras": []}))
    old = types.SimpleNamespace(no_venv=False, venv=str(venv), extras=[], torch=None, no_editable=False)
    assert inst.ensure_environment(old) == python and old.torch == ""
    # another requirement given: taken (and the default where none was ever given)
    other = types.SimpleNamespace(no_venv=False, venv=str(venv), extras=[], torch="torch==2.5.0", no_editable=False)
    with pytest.raises(inst.InstallError, match="stop here"):
        inst.ensure_environment(other)
    assert ran[-1][-1] == "torch==2.5.0"
    fresh = types.SimpleNamespace(no_venv=False, venv=str(tmp_path / "fresh"), extras=[], torch=None,
                                  no_editable=False)
    with pytest.raises(inst.InstallError, match="stop here"):
        inst.ensure_environment(fresh)
    assert ran[-1][-1] == inst.DEFAULT_TORCH and fresh.torch == inst.DEFAULT_TORCH
    assert "--torch" not in inst.rerun_command(fresh)


def test_the_printed_next_command_repeats_the_environment_and_its_torch(inst: types.ModuleType, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """QA: `install.py --no-venv --torch ""` printed "next: ... install.py --no-venv --demo", which took torch
    2.13.0 over the site's 2.5.0."""
    def installed(args: types.SimpleNamespace) -> Path:
        if args.torch is None:
            args.torch = inst.DEFAULT_TORCH
        return tmp_path / "bin" / "python"

    monkeypatch.setattr(inst, "ensure_environment", installed)
    assert inst.main(["--no-venv", "--torch", ""]) == 0
    out = capsys.readouterr().out
    assert f"(or: {sys.executable} {inst.ROOT / 'install.py'} --no-venv --torch '' --demo)" in out, out
    assert inst.main(["--no-venv", "--no-editable"]) == 0
    assert f"{inst.ROOT / 'install.py'} --no-venv --no-editable --demo)" in capsys.readouterr().out


def test_a_read_only_checkout_is_said_before_anything_is_made(inst: types.ModuleType, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: a studio's checkout, read-only to the user: told "pass --venv DIR", the user did, the environment was made,
    then setuptools failed writing vom_matte.egg-info into the checkout and install.py blamed the network."""
    (tmp_path / "p").mkdir()
    root = _copy_project(tmp_path / "p")
    monkeypatch.setattr(inst, "ROOT", root)
    real_access = os.access
    monkeypatch.setattr(inst.os, "access", lambda p, mode: False if Path(p) == root else real_access(p, mode))
    ran = _stop_at_pip(inst, monkeypatch)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    venv = tmp_path / "home" / "venv"
    for no_venv, venv_arg in ((False, str(venv)), (False, None), (True, None)):
        args = types.SimpleNamespace(no_venv=no_venv, venv=venv_arg, extras=[], torch="", no_editable=False)
        with pytest.raises(inst.InstallError) as e:
            inst.ensure_environment(args)
        said = str(e.value)
        assert e.value.code == 2 and f"this checkout, {root}, is read-only to you" in said, said
        assert "registry" not in said and "--venv DIR" not in said
        where = " --no-venv" if no_venv else (f" --venv {venv}" if venv_arg else "")
        assert (f"cp -R {root} ~/vom && chmod -R u+w ~/vom && {sys.executable} ~/vom/install.py{where} --torch ''"
                in said), said
        assert "pip wheel --no-deps ~/vom -w ~/vom-wheel" in said
    assert ran == [] and not venv.exists() and not (root / ".venv").exists()


def test_the_read_only_checkout_s_remedy_makes_a_writable_copy_of_its_own(inst: types.ModuleType, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Review: `cp -r CHECKOUT ~/vom` kept the modes of a checkout read-only by them (the copy refused again), copied
    its .venv, and went inside an ~/vom that was there. A git checkout is cloned; another is copied, made writable,
    without its environment and stamps; into a folder that is not there yet."""
    import shlex

    home = tmp_path / "home"
    (home / "vom").mkdir(parents=True)  # there already: the copy is not put inside it
    monkeypatch.setenv("HOME", str(home))
    (tmp_path / "studio vom").mkdir()
    root = _copy_project(tmp_path / "studio vom")
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "python").write_text("")
    (root / ".vom-install").mkdir()
    (root / ".vom-install" / inst.STAMP_NAME).write_text("{}")
    monkeypatch.setattr(inst, "ROOT", root)
    real_access = os.access
    monkeypatch.setattr(inst.os, "access", lambda p, mode: False if Path(p) == root else real_access(p, mode))
    args = types.SimpleNamespace(no_venv=False, venv=None, extras=[], torch=None, no_editable=False)

    # the suggested commands are run where the tools they name are here (a bare machine's PATH may hold python alone)
    absent = [t for t in ("sh", "cp", "chmod", "rm", "git") if shutil.which(t) is None]

    def remedy(command: str) -> None:
        """``command`` is said, and what it does before install.py runs leaves a writable copy, alone."""
        with pytest.raises(inst.InstallError) as e:
            inst.check_checkout_writable(args)
        assert f"{command} && {sys.executable} ~/{copy.name}/install.py;" in str(e.value), str(e.value)
        if absent:
            return
        subprocess.run(["chmod", "-R", "a-w", str(root)], check=True)  # read-only by its modes
        try:
            subprocess.run(["sh", "-c", command], env={**os.environ, "HOME": str(home)}, check=True,
                           capture_output=True)
        finally:
            subprocess.run(["chmod", "-R", "u+w", str(root)], check=True)
        assert (copy / "install.py").is_file() and (copy / "vom_plugin" / "cli.py").is_file()
        assert not (copy / ".venv").exists() and not (copy / ".vom-install").exists()
        assert all(p.lstat().st_mode & stat.S_IWUSR for p in [copy, *copy.rglob("*")])
        assert list((home / "vom").iterdir()) == []

    copy = home / "vom-2"
    remedy(f"cp -R {shlex.quote(str(root))} ~/vom-2 && chmod -R u+w ~/vom-2 && rm -rf ~/vom-2/.venv "
           "~/vom-2/.vom-install")
    if absent:
        pytest.skip(f"the copy's message was checked; the suggested commands were not run: {', '.join(absent)} "
                    f"absent")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (root / ".gitignore").write_text(".venv/\n/.vom-install/\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "studio"], check=True)
    copy = home / "vom-3"
    remedy(f"git clone {shlex.quote(str(root))} ~/vom-3")
    assert not (copy / "install.py").stat().st_mode & stat.S_IWOTH


def test_pip_refused_permission_is_not_blamed_on_the_network(inst: types.ModuleType,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """pip's own failure read: a permission error is said as one, with pip's line; anything else keeps the network
    hint. pip's stderr still reaches the user as it comes."""
    denied = "error: could not create 'vom_matte.egg-info': Permission denied"
    fail = f"import sys; print('progress'); sys.stderr.write({denied!r} + '\\n'); sys.exit(1)"
    with pytest.raises(inst.InstallError) as e:
        inst.run([sys.executable, "-c", fail, "pip"], "install vom and its dependencies")
    said = str(e.value)
    assert "registry" not in said and "HTTPS_PROXY" not in said, said
    assert f"pip could not write a file: {denied!r}; that is a permission, not a network problem" in said, said
    assert denied in capsys.readouterr().err
    offline = "import sys; sys.stderr.write('ERROR: No matching distribution found for torch\\n'); sys.exit(1)"
    with pytest.raises(inst.InstallError, match="is the package registry reachable"):
        inst.run([sys.executable, "-c", offline, "pip"], "install vom and its dependencies")
    assert "No matching distribution" in capsys.readouterr().err


def test_a_read_only_blender_folder_is_said_with_its_own_remedy(inst: types.ModuleType, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: --blender /read/only/folder said "run from a checkout you own, or pass --venv DIR" (the venv's remedy)."""
    addons = tmp_path / "addons"
    addons.mkdir()
    real_access = os.access
    monkeypatch.setattr(inst.os, "access",
                        lambda p, mode: False if Path(p).parent == addons else real_access(p, mode))
    with pytest.raises(inst.InstallError) as e:
        inst.blender_install(addons, "/v/bin/vom")
    said = str(e.value)
    assert e.value.code == 2 and said == (f"cannot write to {addons / 'vom_matte'} (no write access); give --blender "
                                          "an add-ons folder you can write to"), said


def _pip_says(inst: types.ModuleType, stderr: str) -> str:
    """What install.py says of a pip that wrote ``stderr`` and failed."""
    fail = f"import sys; sys.stderr.write({stderr!r}); sys.exit(1)"
    with pytest.raises(inst.InstallError) as e:
        inst.run([sys.executable, "-c", fail, "pip"], "install vom and its dependencies")
    return str(e.value)


# pip on a studio machine whose firewall refuses the connection with EACCES: its retry warnings name "[Errno 13]
# Permission denied", and the error is that no torch was found (review: read as a file pip could not write)
PIP_REFUSED_CONNECTION = """\
WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by \
'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new \
connection: [Errno 13] Permission denied')': /simple/torch/
ERROR: Could not find a version that satisfies the requirement torch==2.13.0 (from versions: none)
ERROR: No matching distribution found for torch==2.13.0
"""


def test_a_connection_refused_with_eacces_is_a_network_problem_and_a_file_pip_cannot_write_is_not(
        inst: types.ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    """Only a file-system form of a permission error (a path denied, a folder not created, a read-only file system)
    is said as one, and pip's error report at its end is what counts: a warning before it is not why pip failed."""
    network = _pip_says(inst, PIP_REFUSED_CONNECTION)
    assert "is the package registry reachable" in network and "permission" not in network, network
    # the same refusal in the error itself (a download of a wheel, not the index)
    download = ("ERROR: Could not install packages due to an OSError: HTTPSConnectionPool(host='files.pythonhosted."
                "org', port=443): Max retries exceeded with url: /packages/torch.whl (Caused by NewConnectionError('<"
                "pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new connection: "
                "[Errno 13] Permission denied'))\n")
    assert "is the package registry reachable" in _pip_says(inst, download)
    # a file this user could not write, warned of, before a network failure: the failure is the network's
    cache = ("WARNING: could not write /home/u/.cache/pip/http/x: [Errno 13] Permission denied: '/home/u/.cache/pip/"
             "http/x'\n" + PIP_REFUSED_CONNECTION)
    assert "is the package registry reachable" in _pip_says(inst, cache)
    # pip's own install into a folder this user cannot write: a permission problem, its line quoted
    site = ("ERROR: Could not install packages due to an OSError: [Errno 13] Permission denied: '/usr/lib/python3.11/"
            "site-packages/numpy'\nConsider using the `--user` option or check the permissions.\n")
    said = _pip_says(inst, PIP_REFUSED_CONNECTION.split("ERROR")[0] + site)
    assert "that is a permission, not a network problem" in said and "registry" not in said, said
    assert "'/usr/lib/python3.11/site-packages/numpy'" in said, said
    # a build in a read-only checkout, as pip reports it (setuptools' line inside pip's error report)
    build = textwrap.dedent("""\
          error: subprocess-exited-with-error

          × Getting requirements to build editable did not run successfully.
          │ exit code: 1
          ╰─> [3 lines of output]
              running egg_info
              creating vom_matte.egg-info
              error: could not create 'vom_matte.egg-info': Permission denied
              [end of output]
        error: subprocess-exited-with-error
        """)
    said = _pip_says(inst, build)
    assert "pip could not write a file: \"error: could not create 'vom_matte.egg-info': Permission denied\"" in said
    ro = "ERROR: Could not install packages due to an OSError: [Errno 30] Read-only file system: '/opt/venv/lib'\n"
    assert "not a network problem" in _pip_says(inst, ro)
    capsys.readouterr()


def _fake_python(path: Path, torch_version: str | None) -> Path:
    """An environment's python that answers install.py's question of which torch is installed (and nothing else)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + (f"echo {torch_version}\n" if torch_version else "exit 1\n"))
    path.chmod(0o755)
    return path


def test_an_older_stamp_after_a_pull_keeps_a_site_s_torch_and_no_torch_is_replaced_unsaid(
        inst: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Review: a stamp of an older install.py (no torch field) told --torch "" only by its key, which hashes
    pyproject.toml: after a `git pull` that changed it, a rerun put torch==2.13.0 over the site's build without a
    word. The environment is asked which torch it has: another than the default's is kept, and said so; the
    default put over another torch is said, with how to keep it."""
    import importlib.metadata
    import json

    (tmp_path / "p").mkdir()
    root = _copy_project(tmp_path / "p")
    monkeypatch.setattr(inst, "ROOT", root)
    venv = tmp_path / "venv"
    python = _fake_python(venv / "bin" / "python", "2.5.0+site")
    (venv / "bin" / "vom").write_text("")
    kept = types.SimpleNamespace(no_venv=False, venv=str(venv), extras=[], torch="", no_editable=False)
    (venv / inst.STAMP_NAME).write_text(json.dumps({"key": inst.stamp_key(kept, python), "extras": []}))
    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + "\n# a git pull\n")
    ran = _stop_at_pip(inst, monkeypatch)
    args = types.SimpleNamespace(no_venv=False, venv=str(venv), extras=[], torch=None, no_editable=False)
    with pytest.raises(inst.InstallError, match="stop here"):
        inst.ensure_environment(args)
    assert args.torch == "" and not any("torch" in w for w in ran[-1][4:]), ran[-1]
    said = capsys.readouterr().out
    assert ("torch: the one installed there (torch 2.5.0+site) is kept: this environment's stamp, from an older "
            "install.py, does not say which torch it was installed with, and it is not install.py's torch==2.13.0; "
            "pass --torch torch==2.13.0 to install that instead") in said, said
    assert inst.rerun_command(args).endswith("--torch ''")
    # the default's own version there (a CUDA or CPU build of it): the default, said with how to keep it
    for there, shown in (("2.13.0+cu121", "torch 2.13.0+cu121"), (None, "none")):
        _fake_python(python, there)
        args = types.SimpleNamespace(no_venv=False, venv=str(venv), extras=[], torch=None, no_editable=False)
        inst.choose_torch(args, python, json.loads((venv / inst.STAMP_NAME).read_text()))
        assert args.torch == inst.DEFAULT_TORCH
        said = capsys.readouterr().out
        assert (f"torch: torch==2.13.0, install.py's default: this environment's stamp, from an older install.py, "
                f"does not say which torch it was installed with (the one installed there: {shown}); --torch '' "
                "keeps the one installed") in said, said
    # a stamp that says the default, or none at all (--no-venv into a site's python), over another torch: said
    _fake_python(python, "2.5.0+site")
    for stamp in ({"key": "another pyproject", "extras": [], "torch": None, "python": str(python)}, {}):
        args = types.SimpleNamespace(no_venv=False, venv=str(venv), extras=[], torch=None, no_editable=False)
        inst.choose_torch(args, python, stamp)
        assert args.torch == inst.DEFAULT_TORCH
        said = capsys.readouterr().out
        assert ("torch: install.py's torch==2.13.0 replaces the torch 2.5.0+site installed there; stop (Ctrl-C) "
                "and pass --torch '' to keep it") in said, said
    # nothing is asked, and nothing said, where nothing will be installed, or the torch is the one asked for
    args = types.SimpleNamespace(no_venv=False, venv=str(venv), extras=[], torch=None, no_editable=False)
    current = dict(key=inst.stamp_key(types.SimpleNamespace(**{**vars(args), "torch": inst.DEFAULT_TORCH}), python),
                   torch=None, python=str(python))
    inst.choose_torch(args, python, current)
    assert args.torch == inst.DEFAULT_TORCH and capsys.readouterr().out == ""
    args = types.SimpleNamespace(no_venv=False, venv=str(venv), extras=["eval"], torch=None, no_editable=False)
    inst.choose_torch(args, python, current)  # an extra added: pip runs, with the default torch
    assert "replaces the torch 2.5.0+site installed there" in capsys.readouterr().out
    # the question as the environment's own python answers it (its metadata; torch is not imported)
    assert inst.installed_torch(sys.executable) == importlib.metadata.version("torch")
    assert inst.installed_torch(tmp_path / "none" / "python") is None


def _pip_installs(inst: types.ModuleType, monkeypatch: pytest.MonkeyPatch, root: Path) -> list[list[str]]:
    """install.py run to its end in a copy ``root`` of the project, pip's commands recorded (pip told to have made
    `vom`), the environment a folder with a python that answers nothing."""
    monkeypatch.setattr(inst, "ROOT", root)
    ran: list[list[str]] = []

    def run(cmd: list[object], what: str, **kw: object) -> None:
        ran.append([str(c) for c in cmd])
        inst.log(what)  # as the real one says it
        if ran[-1][1:3] == ["-m", "venv"]:
            _fake_python(inst.env_python(Path(ran[-1][-1])), None)
        elif ran[-1][1:4] == ["-m", "pip", "install"]:
            inst.env_bin(cmd[0], "vom").write_text("")

    monkeypatch.setattr(inst, "run", run)
    monkeypatch.setattr(inst, "_imports", lambda py, module: True)
    monkeypatch.setattr(inst, "check_environment", lambda py, extras: (False, []))
    monkeypatch.setattr(inst, "byte_compile", lambda *a: None)
    return ran


def _args(venv: Path, **kw: object) -> types.SimpleNamespace:
    """install.py's arguments of a plain run into ``venv`` (``kw``: those given)."""
    return types.SimpleNamespace(**{**dict(no_venv=False, venv=str(venv), extras=[], drop_extras=[], torch=None,
                                           no_editable=None), **kw})


def test_a_rerun_after_a_pull_installs_the_extras_the_environment_has_and_drop_extras_drops_one(
        inst: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """QA: installed with --extras farm, then a `git pull` changed pyproject.toml (the farm extra got a package): a
    plain rerun ran pip with `-e CHECKOUT` and no [farm], the stamp said "extras": [] and the new package was never
    installed. The environment remembers its extras as it does its torch; --drop-extras stops one being installed."""
    import json

    (tmp_path / "p").mkdir()
    root = _copy_project(tmp_path / "p")
    ran = _pip_installs(inst, monkeypatch, root)
    venv = tmp_path / "venv"
    stamp = venv / inst.STAMP_NAME
    inst.ensure_environment(_args(venv, extras=["farm"]))
    assert ran[-1][-2] == f"{root}[farm]" and json.loads(stamp.read_text())["extras"] == ["farm"], ran
    capsys.readouterr()
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"packaging>=23"]', '"packaging>=23", "six"]'))
    inst.ensure_environment(_args(venv))
    assert ran[-1][4:] == ["--disable-pip-version-check", "-e", f"{root}[farm]", inst.DEFAULT_TORCH], ran[-1]
    assert json.loads(stamp.read_text())["extras"] == ["farm"]
    said = capsys.readouterr().out
    assert ("extras: farm, as this environment was installed (installed again); --drop-extras farm stops that"
            in said), said
    assert "installed vom with extras farm into" in said
    # another extra asked for: both installed
    inst.ensure_environment(_args(venv, extras=["eval"]))
    assert ran[-1][6] == f"{root}[eval,farm]" and json.loads(stamp.read_text())["extras"] == ["eval", "farm"]
    # dropped with nothing else to install: no pip, the record changed, and said what stays
    count = len(ran)
    capsys.readouterr()
    inst.ensure_environment(_args(venv, drop_extras=["eval"]))
    assert len(ran) == count and json.loads(stamp.read_text())["extras"] == ["farm"]
    said = capsys.readouterr().out
    assert ("extras: eval dropped: a rerun no longer installs it; pip removes no package, so what it brought stays "
            "installed (pip uninstall it by hand if it must go)") in said, said
    assert "vom is already installed and up to date" in said and "extras farm)" in said
    # dropped with pip running (another pull): not given to pip; one not there is said so
    pyproject.write_text(pyproject.read_text() + "\n# a git pull\n")
    inst.ensure_environment(_args(venv, drop_extras=["farm", "train"]))
    assert ran[-1][6] == str(root) and json.loads(stamp.read_text())["extras"] == [], ran[-1]
    said = capsys.readouterr().out
    assert "extras: train not among this environment's (farm); nothing to drop" in said, said
    assert "extras: farm dropped" in said and "installed vom into" in said
    # --no-venv: the checkout's stamp of another interpreter's environment gives none of its extras
    other = {"key": "k", "extras": ["dev"], "python": "/other/python"}
    args = types.SimpleNamespace(no_venv=True, venv=None, extras=[], torch=None, no_editable=None)
    assert inst.choose_extras(args, Path(sys.executable), other) == ([], []) and args.extras == []
    args.extras = ["eval"]
    assert inst.choose_extras(args, "/other/python", other) == (["dev"], []) and args.extras == ["dev", "eval"]


def test_drop_extras_is_a_usage_error_beside_the_same_extra_or_test(inst: types.ModuleType,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    for argv, why in ((["--extras", "farm,eval", "--drop-extras", "farm"], "--drop-extras farm: also asked for with "
                       "--extras"), (["--test", "--drop-extras", "all"], "--drop-extras dev,eval,farm,train: --test "
                                     "installs every extra")):
        with pytest.raises(SystemExit) as e:
            inst.main(argv)
        assert e.value.code == 2 and why in capsys.readouterr().err, argv
    with pytest.raises(SystemExit):
        inst.main(["--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "--drop-extras LIST" in said and "--editable" in said and "the environment remembers them" in said
    with pytest.raises(SystemExit) as e:
        inst.main(["--editable", "--no-editable"])
    assert e.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_a_copy_stays_a_copy_on_a_rerun_unless_editable_is_asked_for(
        inst: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """QA: `install.py --venv V --no-editable`, then `install.py --venv V` (after a `git pull`) made the farm's frozen
    copy an editable install that follows the checkout, without a word. The install mode is kept, said, and changed
    only by --editable (or --no-editable)."""
    import json

    (tmp_path / "p").mkdir()
    root = _copy_project(tmp_path / "p")
    ran = _pip_installs(inst, monkeypatch, root)
    venv = tmp_path / "venv"
    stamp = venv / inst.STAMP_NAME
    inst.ensure_environment(_args(venv, no_editable=True))
    assert ran[-1][4:] == ["--disable-pip-version-check", str(root), inst.DEFAULT_TORCH], ran[-1]
    assert json.loads(stamp.read_text())["editable"] is False
    capsys.readouterr()
    init = root / "vom_plugin" / "__init__.py"
    init.write_text(init.read_text() + "\n# a git pull\n")
    args = _args(venv)
    inst.ensure_environment(args)
    assert ran[-1][4:] == ["--disable-pip-version-check", str(root), inst.DEFAULT_TORCH], ran[-1]  # no -e
    assert args.no_editable is True and json.loads(stamp.read_text())["editable"] is False
    said = capsys.readouterr().out
    assert ("install mode: a copy of the checkout (--no-editable), as this environment was installed; pass "
            "--editable to make it follow the checkout instead") in said, said
    assert inst.rerun_command(args).endswith(" --no-editable")
    # nothing changed: still nothing to do (the mode is part of what is current)
    count = len(ran)
    inst.ensure_environment(_args(venv))
    assert len(ran) == count and "already installed and up to date" in capsys.readouterr().out
    # asked for: editable, said
    inst.ensure_environment(_args(venv, no_editable=False))
    assert ran[-1][4:] == ["--disable-pip-version-check", "-e", str(root), inst.DEFAULT_TORCH], ran[-1]
    assert json.loads(stamp.read_text())["editable"] is True
    assert ("install mode: this environment, installed as a copy (--no-editable), becomes editable: it follows the "
            "checkout from now on") in capsys.readouterr().out
    args = _args(venv)
    inst.ensure_environment(args)  # and stays so
    assert args.no_editable is False and "install mode" not in capsys.readouterr().out
    # a stamp of an older install.py, without the mode: the environment is asked
    stamp.write_text(json.dumps({k: v for k, v in json.loads(stamp.read_text()).items() if k != "editable"}))
    monkeypatch.setattr(inst, "installed_mode", lambda python: "copy")
    args = _args(venv)
    inst.ensure_environment(args)
    assert args.no_editable is True and ran[-1][5] == str(root), ran[-1]


def test_how_vom_is_installed_is_read_from_the_environment(inst: types.ModuleType, tmp_path: Path) -> None:
    """For a stamp that does not say it: pip's record (PEP 610's direct_url.json) of an editable install or a copy."""
    import json

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    python = venv / "bin" / "python"
    assert inst.installed_mode(python) is None  # not installed
    _fake_dist(site, "vom-matte", "0.1.0", [])
    info = next(site.glob("vom_matte-*.dist-info")) / "direct_url.json"
    assert inst.installed_mode(python) is None  # installed, not said how
    info.write_text(json.dumps({"url": "file:///c", "dir_info": {"editable": True}}))
    assert inst.installed_mode(python) == "editable"
    for record in ({"url": "file:///c", "dir_info": {}}, {"url": "file:///w.whl", "archive_info": {}}):
        info.write_text(json.dumps(record))
        assert inst.installed_mode(python) == "copy"
    assert inst.installed_mode(tmp_path / "none" / "python") is None


def test_a_version_bump_makes_an_editable_install_s_metadata_again(
        inst: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """QA: a `git pull` that bumped vom's version (nothing else): install.py said "already installed and up to date"
    and `pip show vom-matte` kept the old version while `vom --version` said the new one. A version change is a
    change: an editable install's metadata is made again (pip --no-deps, nothing else); a copy is installed again."""
    import json

    (tmp_path / "p").mkdir()
    root = _copy_project(tmp_path / "p")
    ran = _pip_installs(inst, monkeypatch, root)
    venv = tmp_path / "venv"
    stamp = venv / inst.STAMP_NAME
    inst.ensure_environment(_args(venv, extras=["farm"]))
    was = inst.project_version()
    assert was and json.loads(stamp.read_text())["version"] == was
    init = root / "vom_plugin" / "__init__.py"
    init.write_text(init.read_text().replace(f'__version__ = "{was}"', '__version__ = "9.8.7"'))
    assert inst.project_version() == "9.8.7"
    capsys.readouterr()
    count = len(ran)
    monkeypatch.setattr(inst, "installed_torch", lambda python: "2.5.0+site")  # not replaced: pip is given no torch
    inst.ensure_environment(_args(venv))
    assert len(ran) == count + 1, ran[count:]
    assert ran[-1][1:] == ["-m", "pip", "install", "--disable-pip-version-check", "--no-deps", "-e",
                           f"{root}[farm]"], ran[-1]
    said = capsys.readouterr().out
    assert f"vom's version changed ({was} -> 9.8.7): make its package metadata again" in said, said
    assert "replaces the torch" not in said, said
    assert json.loads(stamp.read_text())["version"] == "9.8.7"
    inst.ensure_environment(_args(venv))
    assert len(ran) == count + 1 and "already installed and up to date" in capsys.readouterr().out
    # the version and pyproject.toml changed: installed again whole
    init.write_text(init.read_text().replace('__version__ = "9.8.7"', '__version__ = "9.8.8"'))
    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + "\n# a git pull\n")
    inst.ensure_environment(_args(venv))
    assert "--no-deps" not in ran[-1] and ran[-1][-1] == inst.DEFAULT_TORCH, ran[-1]
    # a copy: its files changed with the version, installed again whole
    inst.ensure_environment(_args(venv, no_editable=True))
    init.write_text(init.read_text().replace('__version__ = "9.8.8"', '__version__ = "9.8.9"'))
    inst.ensure_environment(_args(venv))
    assert ran[-1][4:] == ["--disable-pip-version-check", f"{root}[farm]", inst.DEFAULT_TORCH], ran[-1]
