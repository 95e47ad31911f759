"""install.py --nuke / --uninstall: one marked, idempotent block in init.py and menu.py; exact removal."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]




def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env["HOME"] = str(home)
    return env


def test_install_is_idempotent_and_uninstall_is_exact(inst: types.ModuleType, tmp_path: Path) -> None:
    nuke_dir = tmp_path / ".nuke"
    nuke_dir.mkdir()
    original_init = "import nuke\nnuke.pluginAddPath('/studio/tools')\n# the studio's own lines\n"
    original_menu = "print('no trailing newline')"
    (nuke_dir / "init.py").write_text(original_init)
    (nuke_dir / "menu.py").write_text(original_menu)

    changed = inst.register_nuke(nuke_dir, sys.executable)  # logs; returns None
    assert changed is None
    init = (nuke_dir / "init.py").read_text()
    menu = (nuke_dir / "menu.py").read_text()
    assert init.startswith(original_init) and init.count(inst.NUKE_BEGIN) == 1 and init.count(inst.NUKE_END) == 1
    assert str(REPO / "gizmos") in init and str(Path(sys.executable).parent / "vom") in init
    assert str(REPO / "vom_plugin" / "host" / "nuke.py") in init
    assert menu.startswith(original_menu + "\n") and "createNode('VOM_Matte')" in menu

    before = {p: (p.read_text(), p.stat().st_mtime_ns) for p in nuke_dir.iterdir()}
    assert inst.nuke_install(nuke_dir, Path(sys.executable).parent / "vom", REPO / "gizmos",
                             REPO / "vom_plugin" / "host" / "nuke.py") == []
    assert {p: (p.read_text(), p.stat().st_mtime_ns) for p in nuke_dir.iterdir()} == before

    # a moved environment refreshes the block in place (still one block)
    inst.nuke_install(nuke_dir, "/elsewhere/bin/vom", REPO / "gizmos", REPO / "vom_plugin" / "host" / "nuke.py")
    init = (nuke_dir / "init.py").read_text()
    assert init.count(inst.NUKE_BEGIN) == 1 and "/elsewhere/bin/vom" in init and init.startswith(original_init)

    assert sorted(p.name for p in inst.nuke_uninstall(nuke_dir)) == ["init.py", "menu.py"]
    assert (nuke_dir / "init.py").read_text() == original_init
    # byte for byte: the line break the install put after the user's last line goes too
    assert (nuke_dir / "menu.py").read_text() == original_menu
    assert inst.nuke_uninstall(nuke_dir) == []


def test_blocks_work_inside_a_fake_nuke(inst: types.ModuleType, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    fake = types.ModuleType("nuke")

    class Menu:
        def addMenu(self, name: str) -> Menu:
            calls.append(("addMenu", name))
            return self

        def addCommand(self, name: str, command: str) -> None:
            calls.append(("addCommand", (name, command)))

    fake.pluginAddPath = lambda p: calls.append(("pluginAddPath", p))  # type: ignore[attr-defined]
    fake.menu = lambda name: calls.append(("menu", name)) or Menu()  # type: ignore[attr-defined]
    fake.addOnCreate = lambda fn, nodeClass: calls.append(("addOnCreate", (fn, nodeClass)))  # type: ignore
    monkeypatch.setitem(sys.modules, "nuke", fake)
    monkeypatch.delitem(sys.modules, "vom_nuke", raising=False)
    monkeypatch.delenv("VOM_EXECUTABLE", raising=False)
    vom = tmp_path / "env" / "bin" / "vom"
    inst.nuke_install(tmp_path, vom, REPO / "gizmos", REPO / "vom_plugin" / "host" / "nuke.py")
    try:
        exec(compile((tmp_path / "init.py").read_text(), "init.py", "exec"), {})
        exec(compile((tmp_path / "menu.py").read_text(), "menu.py", "exec"), {})
        assert ("pluginAddPath", str(REPO / "gizmos")) in calls
        assert os.environ["VOM_EXECUTABLE"] == str(vom)
        assert callable(sys.modules["vom_nuke"].analyze) and callable(sys.modules["vom_nuke"].submit_farm)
        assert ("addCommand", ("VOM Matte", "nuke.createNode('VOM_Matte')")) in calls
        [(restore, cls)] = [args for name, args in calls if name == "addOnCreate"]
        assert cls == "VOM_Matte" and callable(restore)
        assert (REPO / "gizmos" / "VOM_Matte.gizmo").is_file()  # what createNode('VOM_Matte') finds
    finally:
        os.environ.pop("VOM_EXECUTABLE", None)


def test_an_adapter_that_fails_to_load_leaves_nuke_starting(inst: types.ModuleType, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Under Nuke 13's Python the adapter raised on import (a 3.8 name): the exception left init.py there, so the
    user's lines after vom's block never ran, and a half-made ``vom_nuke`` stayed behind for the buttons. Now the
    block says why on Nuke's terminal, removes it, and the rest of init.py runs; the buttons then say so."""
    calls: list[tuple[str, Any]] = []
    fake = types.ModuleType("nuke")
    fake.pluginAddPath = lambda p: calls.append(("pluginAddPath", p))  # type: ignore[attr-defined]
    fake.addOnCreate = lambda fn, nodeClass: calls.append(("addOnCreate", fn))  # type: ignore[attr-defined]
    fake.thisNode = lambda: object()  # type: ignore[attr-defined]
    fake.message = lambda m: calls.append(("message", m))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nuke", fake)
    monkeypatch.delitem(sys.modules, "vom_nuke", raising=False)
    monkeypatch.setenv("VOM_EXECUTABLE", "/elsewhere/vom")  # the block only sets it where unset
    broken = tmp_path / "nuke.py"
    broken.write_text("from typing import NotInThisPython\n")
    inst.nuke_install(tmp_path, tmp_path / "vom", REPO / "gizmos", broken)
    init = tmp_path / "init.py"
    init.write_text(init.read_text() + "after_vom = True\n")  # a studio's own line after the block
    scope: dict[str, Any] = {}
    exec(compile(init.read_text(), "init.py", "exec"), scope)
    assert scope["after_vom"] is True
    assert "vom_nuke" not in sys.modules
    err = capsys.readouterr().err
    assert f"vom: the VOM Matte adapter {broken} could not be loaded: ImportError:" in err and "NotInThisPython" in err
    [on_create] = [fn for name, fn in calls if name == "addOnCreate"]
    on_create()  # a VOM_Matte node made or loaded: nothing to restore without the adapter, and no traceback
    from vom_plugin.host.gizmo import button_code

    exec(button_code("analyze"), {"nuke": fake})  # the Analyze button
    [(_, message)] = [c for c in calls if c[0] == "message"]
    assert "the vom adapter is not loaded in this Nuke" in message and "install.py --nuke" in message


def test_uninstall_cli_in_temporary_home(inst: types.ModuleType, tmp_path: Path) -> None:
    home = tmp_path / "home"
    nuke_dir = home / ".nuke"
    inst.nuke_install(nuke_dir, "/v/bin/vom", REPO / "gizmos", REPO / "vom_plugin" / "host" / "nuke.py")
    assert (nuke_dir / "init.py").read_text().startswith(inst.NUKE_BEGIN)
    r = subprocess.run([sys.executable, str(REPO / "install.py"), "--uninstall"], env=_env(home),
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "removed the vom block" in r.stdout
    # files the install made (there were none) are removed, not left empty
    assert not (nuke_dir / "init.py").exists() and not (nuke_dir / "menu.py").exists()
    r = subprocess.run([sys.executable, str(REPO / "install.py"), "--uninstall", "--nuke", str(nuke_dir)],
                       env=_env(home), capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0 and "nothing to do" in r.stdout
    r = subprocess.run([sys.executable, str(REPO / "install.py"), "--uninstall", "--test"], env=_env(home),
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "--uninstall" in r.stderr


def test_broken_block_is_a_clear_error(inst: types.ModuleType, tmp_path: Path) -> None:
    (tmp_path / "init.py").write_text(f"x = 1\n{inst.NUKE_BEGIN}\nimport nuke\n")
    with pytest.raises(inst.InstallError, match="no end marker") as e:
        inst.nuke_uninstall(tmp_path)
    assert e.value.code == 2
    assert (tmp_path / "init.py").read_text() == f"x = 1\n{inst.NUKE_BEGIN}\nimport nuke\n"  # untouched


def test_a_users_files_keep_their_bytes_and_permissions_and_a_link_is_refused(inst: types.ModuleType,
                                                                              tmp_path: Path) -> None:
    """install then uninstall gave back other bytes: CRLF turned LF, a 0755 file made 0644, a Latin-1 comment a
    traceback, and lines the user added after the block moved above it on the next install. A linked init.py (a
    pipeline's shared file) was replaced by a plain file: now neither it nor the file it points to is changed."""
    nuke_dir = tmp_path / ".nuke"
    nuke_dir.mkdir()
    init = nuke_dir / "init.py"
    original = b"import nuke\r\n# caf\xe9 (Latin-1)\r\nnuke.pluginAddPath('/studio')\r\n"
    init.write_bytes(original)
    init.chmod(0o755)
    args = ("/v/bin/vom", REPO / "gizmos", REPO / "vom_plugin" / "host" / "nuke.py")
    assert [p.name for p in inst.nuke_install(nuke_dir, *args)] == ["init.py", "menu.py"]
    data = init.read_bytes()
    assert data.startswith(original) and inst.NUKE_BEGIN.encode() in data
    # the block says how to remove it from this folder (--uninstall alone looks in ~/.nuke)
    assert f"remove with: python3 {REPO / 'install.py'} --uninstall --nuke {nuke_dir} >>>\r\n".encode() in data
    assert b"\n" not in data.replace(b"\r\n", b"")  # every line ends as the file's own do
    assert init.stat().st_mode & 0o777 == 0o755
    init.write_bytes(data + b"# added by the user after the block\r\n")  # the block stays where it is
    assert inst.nuke_install(nuke_dir, *args) == []
    assert init.read_bytes().endswith(b"# added by the user after the block\r\n")
    inst.nuke_uninstall(nuke_dir)
    assert init.read_bytes() == original + b"# added by the user after the block\r\n"
    assert init.stat().st_mode & 0o777 == 0o755

    studio = tmp_path / "studio" / "init.py"
    studio.parent.mkdir()
    studio.write_bytes(original)
    init.unlink()
    init.symlink_to(studio)
    with pytest.raises(inst.InstallError, match="is a link to .*studio/init.py .* add these lines to it by hand") as e:
        inst.nuke_install(nuke_dir, *args)
    assert e.value.code == 2 and inst.NUKE_BEGIN in str(e.value)
    assert init.is_symlink() and studio.read_bytes() == original
    # only menu.py linked: refused before init.py is written (no half install)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "menu.py").symlink_to(studio)
    with pytest.raises(inst.InstallError, match="menu.py is a link"):
        inst.nuke_install(fresh, *args)
    assert not (fresh / "init.py").exists()


def test_install_writes_no_file_through_a_link_left_at_a_temporary_name(inst, tmp_path: Path) -> None:
    """install.py --nuke wrote init.py through a link at its fixed temporary name (.init.py.vom-tmp), into a file
    outside the Nuke folder, and took a file of the user's of that name for its own."""
    nuke_dir = tmp_path / "nuke"
    nuke_dir.mkdir()
    (nuke_dir / "init.py").write_text("import nuke  # mine\n")
    decoy = tmp_path / "document.txt"
    decoy.write_text("precious\n")
    (nuke_dir / ".init.py.vom-tmp").symlink_to(decoy)
    (nuke_dir / ".menu.py.vom-tmp").write_text("my scratch\n")
    inst.nuke_install(nuke_dir, "/v/bin/vom", REPO / "gizmos", REPO / "vom_plugin" / "host" / "nuke.py")
    assert decoy.read_text() == "precious\n" and (nuke_dir / ".menu.py.vom-tmp").read_text() == "my scratch\n"
    assert not (nuke_dir / "init.py").is_symlink() and "import nuke  # mine" in (nuke_dir / "init.py").read_text()
    assert sorted(p.name for p in nuke_dir.iterdir() if p.name.startswith(".")) == [".init.py.vom-tmp",
                                                                                    ".menu.py.vom-tmp"]


def test_install_refuses_a_link_at_the_very_name_of_its_temporary(inst, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The temporary's random part pinned and a link planted at that name: created exclusively, never followed."""
    import os

    nuke_dir = tmp_path / "nuke"
    nuke_dir.mkdir()
    (nuke_dir / "init.py").write_text("import nuke  # mine\n")
    decoy = tmp_path / "document.txt"
    decoy.write_text("precious\n")
    monkeypatch.setattr(os, "urandom", lambda n: bytes.fromhex("0badcafe")[:n])
    (nuke_dir / f".init.py.{os.getpid()}-0badcafe.vom-tmp").symlink_to(decoy)
    with pytest.raises(inst.InstallError, match=r"init\.py cannot be written .*nothing in it was changed"):
        inst.nuke_install(nuke_dir, "/v/bin/vom", REPO / "gizmos", REPO / "vom_plugin" / "host" / "nuke.py")
    assert decoy.read_text() == "precious\n" and (nuke_dir / "init.py").read_text() == "import nuke  # mine\n"


@pytest.mark.parametrize("original", [b"x=1", b"x=1\r\ny=2", b"a\rb", b"x=1\n", b"", b"# \xe9t\xe9\r\n", b"x=1\r",
                                      b"x=1\n\r"])
def test_install_then_uninstall_gives_back_every_byte(inst, tmp_path: Path, original: bytes) -> None:
    # a file without a final line break kept the one the install added; a menu.py the install made stayed, empty
    nuke_dir = tmp_path / "nuke"
    nuke_dir.mkdir()
    (nuke_dir / "init.py").write_bytes(original)
    for _ in range(2):  # installed twice: the second finds its block and keeps what it said it added
        inst.nuke_install(nuke_dir, "/v/bin/vom", REPO / "gizmos", REPO / "vom_plugin" / "host" / "nuke.py")
    inst.nuke_uninstall(nuke_dir)
    assert (nuke_dir / "init.py").read_bytes() == original
    assert not (nuke_dir / "menu.py").exists()


def test_lines_added_after_the_block_keep_their_own_line_when_it_goes(inst, tmp_path: Path) -> None:
    # another installer appended after vom's block to a menu.py without a final line break: the uninstall glued
    # its first line onto the user's last one (a SyntaxError in Nuke at every start)
    nuke_dir = tmp_path / "nuke"
    nuke_dir.mkdir()
    (nuke_dir / "menu.py").write_text("import mytool")
    inst.nuke_install(nuke_dir, "/v/bin/vom", REPO / "gizmos", REPO / "vom_plugin" / "host" / "nuke.py")
    with open(nuke_dir / "menu.py", "a") as f:
        f.write("import othertool\nothertool.setup()\n")
    inst.nuke_uninstall(nuke_dir)
    assert (nuke_dir / "menu.py").read_text() == "import mytool\nimport othertool\nothertool.setup()\n"


def test_uninstall_removes_the_nuke_folder_the_install_made_while_empty(inst, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """QA: --nuke into a fresh ~/.nuke, then --uninstall, left the empty ~/.nuke install.py had made. A folder that
    was there, or holds anything else by then (Nuke's own files), stays."""
    args = ("/v/bin/vom", REPO / "gizmos", REPO / "vom_plugin" / "host" / "nuke.py")
    made = tmp_path / "home" / ".nuke"
    made.parent.mkdir()
    inst.nuke_install(made, *args)
    assert "(with this file) (with its folder);" in (made / "init.py").read_text()
    assert inst.nuke_install(made, *args) == []  # a refresh keeps what it said it added
    assert sorted(inst.nuke_uninstall(made)) == sorted([made / "init.py", made / "menu.py", made])
    assert not made.exists() and (tmp_path / "home").is_dir()
    inst.nuke_install(made, *args)
    (made / "recent_files").write_text("x")  # Nuke's, since
    assert made not in inst.nuke_uninstall(made) and sorted(p.name for p in made.iterdir()) == ["recent_files"]
    there = tmp_path / "there"
    there.mkdir()
    inst.nuke_install(there, *args)
    assert "(with its folder)" not in (there / "init.py").read_text()
    inst.nuke_uninstall(there)
    assert there.is_dir() and list(there.iterdir()) == []
    # from the command line: said so
    home = tmp_path / "h2"
    home.mkdir()
    code = (f"import importlib.util, sys; spec = importlib.util.spec_from_file_location('i', "
            f"{str(REPO / 'install.py')!r}); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)"
            f"; m.nuke_install('~/.nuke', {args[0]!r}, {str(args[1])!r}, {str(args[2])!r})"
            "; sys.exit(m.main(['--uninstall']))")
    r = subprocess.run([sys.executable, "-c", code], env=_env(home), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"removed the vom block from {home / '.nuke' / 'init.py'}, {home / '.nuke' / 'menu.py'}\n" in r.stdout
    assert f"removed {home / '.nuke'} too: install.py made it, and nothing else is in it" in r.stdout, r.stdout
    assert not (home / ".nuke").exists()


def test_every_folder_the_install_made_goes_with_the_uninstall_or_a_failed_install(inst, tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                                  capsys: pytest.CaptureFixture[str]
                                                                                  ) -> None:
    """Review: --nuke a/b/c made a and b too, but only c was remembered: the uninstall (and an install that failed)
    left a/b behind. Every folder made goes, innermost first, and only while empty."""
    args = ("/v/bin/vom", REPO / "gizmos", REPO / "vom_plugin" / "host" / "nuke.py")
    top = tmp_path / "studio"
    deep = top / "b" / "c"
    inst.nuke_install(deep, *args)
    assert "(with this file) (with its folder and the 2 above it);" in (deep / "init.py").read_text()
    assert inst.nuke_install(deep, *args) == []  # a refresh keeps what it said it added
    assert inst.nuke_uninstall(deep) == [deep / "init.py", deep / "menu.py", deep, deep.parent, top]
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    # a folder above given something else since stays, and so does every one above it
    inst.nuke_install(deep, *args)
    (top / "notes.txt").write_text("x")
    assert inst.nuke_uninstall(deep)[2:] == [deep, deep.parent]
    assert sorted(p.name for p in top.iterdir()) == ["notes.txt"]
    (top / "notes.txt").unlink()
    top.rmdir()
    # from the command line, said so; the folders as given, relative to where it ran
    monkeypatch.chdir(tmp_path)
    inst.nuke_install("studio/b/c", *args)
    assert inst.main(["--uninstall", "--nuke", "studio/b/c"]) == 0
    out = capsys.readouterr().out
    assert (f"removed {deep}, {deep.parent}, {top} too: install.py made them, and nothing else is in them"
            in out), out
    assert not top.exists()
    # an install that fails takes back every folder it made
    def refused(*a: object, **kw: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(inst, "_replace_file", refused)
    with pytest.raises(inst.InstallError):
        inst.nuke_install(deep, *args)
    assert list(tmp_path.iterdir()) == []


def test_a_relative_nuke_folder_is_stored_and_said_absolute(inst: types.ModuleType, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """QA: `install.py --nuke rel/nk` wrote "remove with: ... --uninstall --nuke rel/nk" into the block, which removes
    nothing from any other folder (Nuke's start-up folder, the user's home)."""
    monkeypatch.chdir(tmp_path)
    inst.register_nuke("rel/nk", sys.executable)
    where = tmp_path / "rel" / "nk"
    for name in ("init.py", "menu.py"):
        head = (where / name).read_text().splitlines()[0]
        assert head.endswith(f"--uninstall --nuke {where} >>>"), head
    assert f"registered the VOM_Matte node with Nuke in {where} (" in capsys.readouterr().out
