#!/usr/bin/env python3
"""One-command set-up of vom (standard library only).

    python3 install.py            create .venv next to this file and install vom into it (what a render needs)
    python3 install.py --extras eval,farm   ... plus optional parts: farm, eval, train, dev (or all); remembered
    python3 install.py --demo     ... then render the shipped demo shot (`vom demo`)
    python3 install.py --test     ... with every extra the tests need, then run the suite (`pytest`), args after --
    python3 install.py --no-venv  install into the active Python environment instead
    python3 install.py --torch REQ  another torch requirement ('' keeps the one there); the environment remembers it
    python3 install.py --no-editable  a copy of the checkout, not an editable install (--editable: back); remembered
    python3 install.py --drop-extras LIST   stop installing extras the environment remembers (a plain run keeps them)
    python3 install.py --nuke [DIR]   ... then register the VOM_Matte node with Nuke (DIR: default ~/.nuke)
    python3 install.py --blender [DIR]   ... then install and enable the VOM Matte add-on in Blender (DIR: an
                                         add-ons folder; default: Blender's user add-ons, asked of `blender`)
    python3 install.py --uninstall [--nuke DIR] [--blender [DIR]]   remove a registration again (the
                                         environment stays; without --blender: the Nuke one)

Idempotent: a second run with the same inputs finds its stamp and changes nothing. A later run without the options
keeps what the environment was installed with (torch, extras, install mode) and says so.
Exit codes: 0 done, 2 bad usage or an environment we cannot install into, 1 a step failed.
"""

import sys

MIN_PYTHON = (3, 11)
# checked before any 3.11-only feature runs (the file keeps to syntax Python 3.6 parses; Python 2 cannot parse it)
if sys.version_info < MIN_PYTHON:
    sys.stderr.write(
        "install.py: error: vom needs Python %d.%d or newer; this is %s (%s).\n"
        "Run it with a newer interpreter, e.g. python3.11 install.py\n"
        % (MIN_PYTHON + (sys.version.split()[0], sys.executable))
    )
    sys.exit(2)

import argparse
import collections
import copy
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
STAMP_NAME = "vom-install-stamp.json"  # and its fields, quote() and read_stamp(): read by vom_plugin/extras.py too
DISTRIBUTION = "vom-matte"  # pyproject.toml's name (a test keeps them equal); "vom" on PyPI is another project
# torch is pinned for the install so pip does not pull a multi-GB build it was not asked for; a site
# with its own torch build passes --torch "" (keep what is there) or another requirement.
DEFAULT_TORCH = "torch==2.13.0"
# Optional parts of pyproject.toml ([project.optional-dependencies]); a render needs none of them. The
# test suite exercises every command, so --test installs them all.
EXTRAS = ("farm", "eval", "train", "dev")


class InstallError(Exception):
    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


def log(msg):
    print("install.py: " + msg, flush=True)


def env_python(venv):
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def env_bin(python, name):
    return Path(python).parent / (name + (".exe" if os.name == "nt" else ""))


def check_writable(folder, remedy="run from a checkout you own, or pass --venv DIR pointing to a writable folder"):
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # reported below with the folder's name
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise InstallError("cannot write to %s (no write access); %s" % (folder, remedy), code=2)


def externally_managed():
    """Whether this interpreter is outside a virtual environment and marked EXTERNALLY-MANAGED (PEP 668: a Debian or
    Homebrew Python), where pip refuses to install (pip's refusal read as a network failure: QA)."""
    import sysconfig

    if sys.prefix != sys.base_prefix:
        return False
    try:
        return (Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED").is_file()
    except (KeyError, TypeError, OSError):
        return False


def check_venv_folder(venv):
    """InstallError (exit 2) for a --venv that is a file, or a folder of other files that is not a virtual
    environment (``~/.local``, a tools folder): ``python -m venv`` writes its bin/, lib/ and pyvenv.cfg over what is
    there without a word. An empty or missing folder is made into one. Returns whether it is a virtual
    environment whose Python went (a Python upgraded or removed under it), which is made again from scratch."""
    if venv.exists() and not venv.is_dir():
        raise InstallError("--venv %s: is a file, not a folder for a virtual environment" % venv, code=2)
    if venv.is_dir():
        try:
            names = sorted(p.name for p in venv.iterdir())
        except OSError as e:
            raise InstallError("--venv %s: cannot be listed (%s)" % (venv, e.strerror or e), code=2) from None
        cfg = venv / "pyvenv.cfg"
        try:  # a virtual environment whose python went (a Python upgraded under it): made again in place
            broken_venv = cfg.is_file() and any(line.split("=")[0].strip() == "home"
                                                for line in cfg.read_text(errors="replace").splitlines())
        except OSError:
            broken_venv = False
        if names and not broken_venv:
            shown = ", ".join(names[:5]) + (" and %d more" % (len(names) - 5) if len(names) > 5 else "")
            raise InstallError("--venv %s: holds files (%s) and is not a virtual environment (no %s): creating one "
                               "there would write over them; pass a new or empty folder"
                               % (venv, shown, env_python(venv).relative_to(venv)), code=2)
        return bool(names) and broken_venv
    return False


# the child install.py waits on (pip, vom demo, pytest), which a SIGTERM to install.py is passed on to
_CHILD = {"proc": None, "terminated": False}


def wait_child(cmd, tail=None, **kw):
    """``subprocess.run(cmd)`` (no output captured) with the child known to ``terminated``: a SIGTERM to install.py
    alone (a job manager's) reached none of them, and pip, re-parented, went on installing into the environment a
    re-run installs into (QA). Told so, the child stops its own way (vom demo finishes its frame); then
    KeyboardInterrupt (install.py's exit 130). With ``tail`` (a deque), the child's stderr is copied to ours as it
    comes and its last lines kept there, for what a failure was (pip's permission error read as a network one, QA)."""
    if tail is not None:
        kw.update(stderr=subprocess.PIPE, text=True, errors="replace")
    proc = subprocess.Popen([str(c) for c in cmd], **kw)
    _CHILD["proc"] = proc
    try:
        if tail is not None:
            for line in proc.stderr:
                sys.stderr.write(line)
                sys.stderr.flush()
                tail.append(line)
        proc.wait()
    except BaseException:
        proc.kill()  # Ctrl-C or an error here: the child does not outlive install.py
        proc.wait()
        raise
    finally:
        _CHILD["proc"] = None
    if _CHILD["terminated"]:
        raise KeyboardInterrupt
    return proc


def terminated(_signum, _frame):
    """SIGTERM: passed on to the child waited on (see ``wait_child``), or, with none, stops install.py as Ctrl-C."""
    _CHILD["terminated"] = True
    proc = _CHILD["proc"]
    if proc is None or proc.poll() is not None:
        raise KeyboardInterrupt
    proc.send_signal(signal.SIGTERM)


def quote(path):
    """``path`` as a command to paste takes it (POSIX shells; cmd.exe and PowerShell on Windows)."""
    return subprocess.list2cmdline([str(path)]) if os.name == "nt" else shlex.quote(str(path))


# how pip (or a build it runs) says a file or folder could not be written: no network problem (QA: "could not create
# 'vom_matte.egg-info': Permission denied" in a read-only checkout was answered "is the package registry reachable?").
# Its file-system forms only, naming the path: a connection refused with EACCES (a firewalled machine) says
# "[Errno 13] Permission denied" too, and is a network problem (review)
_DENIED = re.compile(r"(Permission denied|Access is denied|\[Errno 13\]|\[WinError 5\])[^'\"]*?:\s*['\"]"  # : '<path>'
                     r"|could not (create|write|open|remove|delete|copy)\b.*(Permission denied|Access is denied)"
                     r"|Read-only file system|\[Errno 30\]")
_CONNECTION = re.compile(r"NewConnectionError|Failed to establish a new connection|Max retries exceeded|Retrying \(|"
                         r"ConnectionError|ProxyError|HTTPSConnectionPool|HTTPConnectionPool")


def denied_line(lines):
    """pip's line saying a file or folder could not be written (stripped), or None. pip's error report, from its
    first ERROR:/error: line to the end, is what failed: a warning before it (a cache it could not write, retries)
    is not; without one, every line is read."""
    lines = [line.strip() for line in lines]
    start = next((i for i, line in enumerate(lines) if line.startswith(("ERROR:", "error:"))), 0)
    return next((line for line in lines[start:] if _DENIED.search(line) and not _CONNECTION.search(line)), None)


def run(cmd, what, **kw):
    log("%s: %s" % (what, " ".join(str(c) for c in cmd)))
    t0 = time.monotonic()
    pip = "pip" in [str(c) for c in cmd]
    tail = collections.deque(maxlen=200) if pip else None
    proc = wait_child(cmd, tail=tail, **kw)
    if proc.returncode != 0:
        hint = ""
        denied = denied_line(tail or ())
        if denied:
            hint = (" (pip could not write a file: %r; that is a permission, not a network problem: make the folder "
                    "it names writable to you, or install into and from folders you can write to)" % denied)
        elif pip:
            hint = (" (pip failed: is the package registry reachable? pip's own message is above; "
                    "behind a proxy set HTTPS_PROXY, offline use PIP_FIND_LINKS to a wheel folder)")
        raise InstallError("%s failed with exit code %d%s" % (what, proc.returncode, hint))
    log("%s: done in %.1f s" % (what, time.monotonic() - t0))
    return proc


def _imports(python, module):
    """Whether ``python`` imports ``module`` (isolated: a pip/ folder where install.py runs is not pip)."""
    return subprocess.run([str(python), "-I", "-c", "import " + module], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


# run by the environment's python: whether vom is installed there under its old distribution name ("vom", which on
# PyPI is another project: an upgrade or a requirements file naming it put that one in vom's place), and which
# distributions vom (argv[1], with the extras after it) needs that are not installed (one removed since the install)
_ENV_CHECK = r"""
import importlib.metadata as m, json, re, sys
out = {"old": False, "missing": []}
try:
    d = m.distribution("vom")
    out["old"] = str(d.locate_file("")).startswith(sys.prefix) and any(  # in this environment, not one it sees
        e.group == "console_scripts" and e.value.startswith("vom_plugin.") for e in d.entry_points)
except m.PackageNotFoundError:
    pass
try:
    reqs = m.requires(sys.argv[1]) or []
except m.PackageNotFoundError:
    reqs, out["missing"] = [], [sys.argv[1]]
for r in reqs:
    name, _, marker = r.partition(";")
    extra = re.search(r"extra\s*==\s*.([A-Za-z0-9_.-]+)", marker)
    if extra and extra.group(1) not in sys.argv[2:]:
        continue
    dist = re.split(r"[<>=!~\[ (]", name.strip(), maxsplit=1)[0]
    try:
        m.distribution(dist)
    except m.PackageNotFoundError:
        out["missing"].append(dist)
print(json.dumps(out))
"""


def check_environment(python, extras):
    """(vom installed under its old name, the distributions it needs that are missing) in ``python``'s environment;
    (False, []) where that cannot be asked (the install that follows says what is wrong)."""
    proc = subprocess.run([str(python), "-I", "-c", _ENV_CHECK, DISTRIBUTION] + list(extras), capture_output=True,
                          text=True)
    try:
        got = json.loads(proc.stdout)
        return bool(got["old"]), list(got["missing"])
    except (ValueError, KeyError, TypeError):
        return False, []


def byte_compile(python, args):
    """Compile vom's modules to bytecode, as pip does for the packages it copies (an editable install is not
    copied, so pip leaves vom's own to the first import): a process that cannot write them (a read-only
    install on a farm's file server, PYTHONDONTWRITEBYTECODE) would otherwise compile ~100 modules at every
    start, 0.1-0.2 s of each `vom` command."""
    if args.no_editable:
        return  # pip compiled the copy it installed
    run([python, "-m", "compileall", "-q", "-j", "0", ROOT / "vom_plugin"], "compile vom's modules to bytecode",
        stdout=subprocess.DEVNULL)


def project_version():
    """vom's version as the checkout says it (pyproject.toml takes it from vom_plugin.__version__), or None."""
    try:
        text = (ROOT / "vom_plugin" / "__init__.py").read_text(errors="replace")
    except OSError:
        return None
    found = re.search(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", text, re.M)
    return found.group(1) if found else None


def stamp_key(args, python, version=False):
    """What makes an install current: the project file, vom's version (an editable install's metadata keeps the one
    it was made with: `pip show` and importlib.metadata said the old version after a bump, QA), the torch
    requirement, the interpreter, and for a copy (--no-editable) vom's own files, which a copy does not follow (after
    a `git pull` it kept running the old code, saying it was up to date). ``version``: another than the checkout's
    (is only the version new?)."""
    h = hashlib.sha256()
    h.update((ROOT / "pyproject.toml").read_bytes())
    h.update(json.dumps({"torch": args.torch, "python": str(python), "copy": bool(args.no_editable),
                         "version": project_version() if version is False else version}).encode())
    if args.no_editable:
        for path in sorted((ROOT / "vom_plugin").rglob("*")) + sorted((ROOT / "node_defs").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def read_stamp(stamp):
    """What the stamp of an earlier install says (a dict; empty where there is none, or it cannot be read)."""
    try:
        old = json.loads(stamp.read_text())
    except (OSError, ValueError, RecursionError):  # json recurses: [[[...]]] is a RecursionError
        return {}
    return old if isinstance(old, dict) else {}


def installed_torch(python):
    """The version of the torch installed in ``python``'s environment (its metadata: torch is not imported), or None
    where there is none, or it cannot be asked."""
    if not Path(python).exists():
        return None
    try:
        proc = subprocess.run([str(python), "-I", "-c", "import importlib.metadata as m; print(m.version('torch'))"],
                              capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    version = proc.stdout.strip()
    return version if proc.returncode == 0 and version else None


def _is_default_torch(version):
    """Whether torch ``version`` satisfies DEFAULT_TORCH, so that pip keeps it: its public version (2.13.0+cu121, a
    CUDA or CPU build of it, is 2.13.0)."""
    return version is not None and "torch==" + version.split("+")[0] == DEFAULT_TORCH


def choose_torch(args, python, old):
    """``args.torch`` as given, else the requirement the environment was installed with (its stamp ``old``), else
    DEFAULT_TORCH: rerun without --torch (as the commands install.py and vom print said), install.py put its
    torch==2.13.0 over a site's own build installed with --torch "" (QA). A torch other than the default's is never
    replaced without a word."""
    if args.torch is not None:
        return
    remembered = None
    if "torch" in old:
        if old.get("python") == str(python):  # --no-venv: the stamp in the checkout may be another interpreter's
            remembered = old["torch"]
    elif isinstance(old.get("key"), str):  # a stamp written before the torch was: its key tells whether it was ""
        kept = copy.copy(args)
        kept.torch = ""
        default = copy.copy(args)
        default.torch = DEFAULT_TORCH
        if old["key"] == stamp_key(kept, python):
            remembered = ""
        elif old["key"] != stamp_key(default, python):
            # nor the default: the key is of another pyproject.toml (a `git pull` since), and only the environment
            # tells whether a site's build is there (review: the default was put over it, unsaid)
            have = installed_torch(python)
            unsaid = ("this environment's stamp, from an older install.py, does not say which torch it was installed "
                      "with")
            if have is not None and not _is_default_torch(have):
                args.torch = ""
                log("torch: the one installed there (torch %s) is kept: %s, and it is not install.py's %s; pass "
                    "--torch %s to install that instead" % (have, unsaid, DEFAULT_TORCH, quote(DEFAULT_TORCH)))
                return
            args.torch = DEFAULT_TORCH
            log("torch: %s, install.py's default: %s (the one installed there: %s); --torch '' keeps the one "
                "installed" % (DEFAULT_TORCH, unsaid, "torch " + have if have else "none"))
            return
    args.torch = remembered if isinstance(remembered, str) else DEFAULT_TORCH
    if args.torch != DEFAULT_TORCH:
        log("torch: %s, as this environment was installed (--torch %s); pass --torch to change it"
            % ("the one installed there is kept" if not args.torch else args.torch, quote(args.torch)))
    elif not ((old.get("key") == stamp_key(args, python) or only_version(args, python, old))
              and set(args.extras) <= set(old.get("extras") or [])):
        # pip runs with torch (the same test as ensure_environment's): a torch of another version there is replaced
        have = installed_torch(python)
        if have is not None and not _is_default_torch(have):
            log("torch: install.py's %s replaces the torch %s installed there; stop (Ctrl-C) and pass --torch '' to "
                "keep it" % (DEFAULT_TORCH, have))


def only_version(args, python, old):
    """Whether the install its stamp ``old`` records differs from this one in vom's version alone, for an editable
    install: its package metadata is made again (pip --no-deps), nothing else; a copy's files changed too."""
    was = old.get("version")
    return (not args.no_editable and isinstance(was, str) and was != project_version()
            and old.get("key") == stamp_key(args, python, was))


def _own_stamp(args, python, old):
    """``old``, the stamp found, where it is this environment's record (--no-venv: the stamp in the checkout may be
    another interpreter's), else {}."""
    return old if not args.no_venv or old.get("python") == str(python) else {}


# run by the environment's python: how vom is installed there (PEP 610's direct_url.json): editable, copy or unknown
_MODE_CHECK = r"""
import importlib.metadata as m, json, sys
try:
    info = json.loads(m.distribution(sys.argv[1]).read_text("direct_url.json") or "{}")
    print("editable" if (info.get("dir_info") or {}).get("editable") else "copy" if info.get("url") else "unknown")
except Exception:
    print("unknown")
"""


def installed_mode(python):
    """"editable" or "copy": how vom is installed in ``python``'s environment; None where it is not, or cannot be
    asked."""
    if not Path(python).exists():
        return None
    try:
        proc = subprocess.run([str(python), "-I", "-c", _MODE_CHECK, DISTRIBUTION], capture_output=True, text=True,
                              timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    mode = proc.stdout.strip()
    return mode if proc.returncode == 0 and mode in ("editable", "copy") else None


def choose_mode(args, python, old):
    """``args.no_editable`` as given (--no-editable, --editable), else as the environment was installed (its stamp
    ``old``; one written before the stamp said so: the environment is asked), else editable. A plain rerun turned a
    farm's frozen copy into an editable install following the checkout, without a word (QA)."""
    old = _own_stamp(args, python, old)
    recorded = None  # whether it was installed as a copy
    if isinstance(old.get("editable"), bool):
        recorded = not old["editable"]
    elif old.get("key") is not None:
        mode = installed_mode(python)
        recorded = None if mode is None else mode == "copy"
    if args.no_editable is None:
        args.no_editable = bool(recorded)
        if recorded:
            log("install mode: a copy of the checkout (--no-editable), as this environment was installed; pass "
                "--editable to make it follow the checkout instead")
    elif recorded is not None and recorded != args.no_editable:
        log("install mode: this environment, installed %s, becomes %s" % (
            ("as a copy (--no-editable)", "editable: it follows the checkout from now on (a `git pull` changes what "
             "it runs)") if recorded else ("editable", "a copy of the checkout as it is now (--no-editable)")))


def choose_extras(args, python, old):
    """``args.extras``: those given, and those the environment was installed with (its stamp ``old``), less
    ``args.drop_extras``. Returns (the recorded ones kept without being asked for, those dropped). A plain rerun after
    a `git pull` that changed pyproject.toml installed vom without them, and its stamp forgot them (QA)."""
    recorded = _own_stamp(args, python, old).get("extras")
    recorded = {e for e in recorded if e in EXTRAS} if isinstance(recorded, list) else set()
    drop = set(getattr(args, "drop_extras", None) or ())
    kept = sorted(recorded - set(args.extras) - drop)
    args.extras = sorted((set(args.extras) | recorded) - drop)
    return kept, sorted(recorded & drop)


def rerun_command(args, *more, script=None):
    """install.py as a command to paste for the environment this run is about, as it was installed: its python,
    --venv DIR or --no-venv, --no-editable, and a torch requirement other than the default (left out, a rerun took
    the default over a site's own build: QA). ``script``: another install.py, as a word to paste."""
    words = [quote(sys.executable), script or quote(ROOT / "install.py")]
    if args.no_venv:
        words.append("--no-venv")
    elif args.venv:
        words += ["--venv", quote(Path(args.venv).resolve())]
    if args.torch is not None and args.torch != DEFAULT_TORCH:
        words += ["--torch", quote(args.torch)]
    if args.no_editable:
        words.append("--no-editable")
    return " ".join(words + list(more))


def _copy_command():
    """(the words that make a copy of this checkout a user can write to, that copy as a word to paste): a git
    checkout cloned, another copied, made writable (`cp` keeps the modes of a checkout read-only by them: the copy
    refused again) and without its environment and install stamps; into a folder that is not there yet (`cp -r`
    into an ~/vom that was there went inside it) (review)."""
    home, n = Path(os.path.expanduser("~")), 1
    while os.path.lexists(str(home / ("vom-%d" % n if n > 1 else "vom"))):
        n += 1
    target = "~/vom-%d" % n if n > 1 else "~/vom"
    if (ROOT / ".git").exists():  # a folder, or the file of a worktree
        return "git clone %s %s" % (quote(ROOT), target), target
    words = "cp -R %s %s && chmod -R u+w %s" % (quote(ROOT), target, target)
    ours = [target + "/" + name for name in (".venv", ".vom-install") if os.path.lexists(str(ROOT / name))]
    return words + (" && rm -rf " + " ".join(ours) if ours else ""), target


def check_checkout_writable(args):
    """InstallError (exit 2) where this checkout is read-only to the user (a studio's shared checkout, another
    user's): pip builds vom inside it, and setuptools failed writing vom_matte.egg-info there after the environment
    was made, which install.py then blamed on the network (QA)."""
    if os.access(str(ROOT), os.W_OK):
        return
    copy_words, target = _copy_command()
    raise InstallError(
        "this checkout, %s, is read-only to you: pip builds vom inside it (setuptools writes vom_matte.egg-info and "
        "build/ there), so nothing can be installed from it. %s it to a folder you can write to and run the copy's "
        "install.py: %s && %s; or install a wheel built from a writable copy (%s -m pip wheel --no-deps "
        "%s -w %s-wheel, then pip install %s-wheel/vom_matte-*.whl into the environment)"
        % (ROOT, "Clone" if copy_words.startswith("git ") else "Copy", copy_words,
           rerun_command(args, script=target + "/install.py"), quote(sys.executable), target, target, target),
        code=2)


def ensure_environment(args):
    """Create (or reuse) the environment and install vom into it; returns its python."""
    if args.no_venv:
        python = Path(sys.executable)
        if externally_managed():
            raise InstallError("--no-venv: %s is managed by the system (PEP 668: pip may not install into it); "
                               "leave out --no-venv (install.py makes a virtual environment), or run install.py with "
                               "a virtual environment's python" % sys.executable, code=2)
        stamp_dir = ROOT / ".vom-install"
    else:
        venv = Path(args.venv).resolve() if args.venv else ROOT / ".venv"
        python = env_python(venv)
        stamp_dir = venv
    stamp = stamp_dir / STAMP_NAME
    old = read_stamp(stamp)
    choose_mode(args, python, old)
    kept, dropped = choose_extras(args, python, old)
    choose_torch(args, python, old)
    if not (old.get("key") == stamp_key(args, python) and set(args.extras) <= set(old.get("extras") or [])):
        check_checkout_writable(args)  # nothing to do needs no build; else said before an environment is made in vain
    if not args.no_venv:
        # a folder given as it is (a TD's /opt/vom/venv, made by IT) is written to, not the folder it is in
        check_writable(venv if venv.is_dir() else venv.parent)
        if not python.exists():
            if check_venv_folder(venv):
                # its links to the old Python are left dangling: `venv` without --clear fails on them (QA), and the
                # packages in it were built for that Python
                run([sys.executable, "-m", "venv", "--clear", venv],
                    "virtual environment %s lost its Python (%s is gone): make it again" % (venv, python))
            else:
                run([sys.executable, "-m", "venv", venv], "create virtual environment %s" % venv)
        else:
            log("virtual environment %s exists" % venv)
    check_writable(stamp_dir)
    key = stamp_key(args, python)
    version = project_version()
    vom = env_bin(python, "vom")

    def write_stamp():
        # torch and where: read by a rerun without --torch (choose_torch) and by vom's hints (vom_plugin/extras.py),
        # which print the command that installed this environment; None: install.py's default of the day. extras,
        # editable: kept by a rerun (choose_extras, choose_mode); checkout: where vom's hints find install.py from a
        # copy (--no-editable), which has no checkout beside it
        stamp.write_text(json.dumps({"key": key, "extras": args.extras,
                                     "torch": None if args.torch == DEFAULT_TORCH else args.torch,
                                     "editable": not args.no_editable, "version": version, "checkout": str(ROOT),
                                     "python": str(python), "prefix": str(sys.prefix if args.no_venv else venv),
                                     "installed": time.strftime("%Y-%m-%d %H:%M:%S")}))

    unknown = sorted(set(getattr(args, "drop_extras", None) or ()) - set(dropped))
    if unknown:
        log("extras: %s not among this environment's (%s); nothing to drop"
            % (", ".join(unknown), ", ".join(sorted(set(args.extras) | set(dropped))) or "none"))
    if dropped:
        log("extras: %s dropped: a rerun no longer installs %s; pip removes no package, so what %s brought stays "
            "installed (pip uninstall it by hand if it must go)" % (", ".join(dropped), "it" if len(dropped) == 1
                                                                   else "them", "it" if len(dropped) == 1 else "they"))
    # the same install but for vom's version (a bump in the checkout): an editable install's metadata is made again,
    # nothing else (pip's --no-deps); a copy's files changed too, and it is installed again whole
    bumped = only_version(args, python, old)
    quick = False
    if vom.exists() and (old.get("key") == key or bumped) and set(args.extras) <= set(old.get("extras") or []):
        _, missing = check_environment(python, args.extras)
        if missing:  # QA: zstandard removed from the environment, "up to date, nothing to do"
            log("the environment lacks %s (removed since vom was installed): installing again" % ", ".join(missing))
        elif bumped:
            quick = True
        else:
            byte_compile(python, args)
            if dropped:
                write_stamp()
            log("vom is already installed and up to date (%s%s); nothing to do"
                % (vom, ", extras " + ",".join(args.extras) if args.extras else ""))
            return python
    if not args.no_venv and not _imports(python, "pip"):
        # a set-up stopped while the environment was made (Ctrl-C during ensurepip) left it without pip: every later
        # run failed at pip, blaming the registry, until the folder was removed by hand (QA)
        if not _imports(python, "ensurepip"):
            raise InstallError("%s has no pip, and its Python cannot add it (no ensurepip: on Debian or Ubuntu, "
                               "install the python3.%d-venv package), then run install.py again"
                               % (python.parent.parent, sys.version_info[1]), code=2)
        run([python, "-m", "ensurepip", "--upgrade", "--default-pip"],
            "the environment has no pip (a set-up stopped part way): add it")
    if check_environment(python, [])[0]:  # vom as installed before session 52, named "vom": not left beside it
        run([python, "-m", "pip", "uninstall", "--disable-pip-version-check", "-y", "vom"],
            "remove vom's install under its old name (vom: that name on PyPI is another project)")
    target = "%s[%s]" % (ROOT, ",".join(args.extras)) if args.extras else str(ROOT)
    if quick:
        run([python, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps", "-e", target],
            "vom's version changed (%s -> %s): make its package metadata again" % (old["version"], version))
    else:
        if kept:
            log("extras: %s, as this environment was installed (installed again); --drop-extras %s stops that"
                % (",".join(kept), ",".join(kept)))
        reqs = [target] if args.no_editable else ["-e", target]
        if args.torch:
            reqs.append(args.torch)
        run([python, "-m", "pip", "install", "--disable-pip-version-check", *reqs],
            "install vom and its dependencies")
    if not vom.exists():
        raise InstallError("pip finished but %s is missing; the install is broken" % vom)
    byte_compile(python, args)
    write_stamp()
    log("installed vom%s into %s" % (" with extras " + ",".join(args.extras) if args.extras else "",
                                      python.parent.parent))
    return python


# --- Nuke registration: one marked block in <nuke dir>/init.py and menu.py ---------------------------
# the block's first line starts so, then says how to remove it (from the folder it was added to)
NUKE_BEGIN = "# >>> vom: added by install.py --nuke"
NUKE_END = "# <<< vom <<<"
# what else the install added, said on the block's first line so that --uninstall takes exactly that back
NUKE_JOINED = " (with the line break before it)"  # the file did not end with one
NUKE_CREATED = " (with this file)"  # there was no such file
NUKE_MADE_DIR = " (with its folder)"  # nor the folder: an uninstall that leaves it empty removes it too
# ... nor N folders above it (--nuke a/b/c made a and b too): N + 1 folders, each removed while empty
NUKE_MADE_DIRS = " (with its folder and the %d above it)"
_NUKE_MADE = re.compile(r" \(with its folder(?: and the (\d+) above it)?\)")
DEFAULT_NUKE_DIR = "~/.nuke"


def _made_flag(count):
    """What the block's first line says of the ``count`` folders (``nuke_dir`` and those above it) the install made."""
    return "" if count < 1 else NUKE_MADE_DIR if count == 1 else NUKE_MADE_DIRS % (count - 1)


def _made_count(first):
    """How many folders a block's first line says its install made (``nuke_dir`` first, then those above it)."""
    found = _NUKE_MADE.search(first)
    return 0 if found is None else 1 + int(found.group(1) or 0)


def _folders_up(nuke_dir):
    """``nuke_dir`` (absolute) and every folder above it, innermost first."""
    folder = Path(os.path.abspath(str(nuke_dir)))
    return [folder, *folder.parents]


def _begin_line(nuke_dir):
    where = "" if nuke_dir is None or os.path.expanduser(str(nuke_dir)) == os.path.expanduser(DEFAULT_NUKE_DIR) \
        else " --nuke %s" % quote(nuke_dir)
    return "%s; remove with: python3 %s --uninstall%s >>>" % (NUKE_BEGIN, quote(ROOT / "install.py"), where)


def nuke_blocks(vom, gizmos_dir, host_module, nuke_dir=None):
    """The text of the init.py and menu.py blocks (markers included)."""
    begin = _begin_line(nuke_dir)
    init = "\n".join([
        begin,
        "import importlib.util as _vom_ilu",
        "import os as _vom_os",
        "import sys as _vom_sys",
        "import nuke as _vom_nuke",
        "_vom_nuke.pluginAddPath(%r)  # the VOM_Matte gizmo" % str(gizmos_dir),
        "# the vom of the project's environment: the node runs it as a subprocess (no torch inside Nuke)",
        "_vom_os.environ.setdefault('VOM_EXECUTABLE', %r)" % str(vom),
        "if 'vom_nuke' not in _vom_sys.modules:  # the adapter is standard library + nuke only",
        "    _vom_path = %r" % str(host_module),
        "    try:",
        "        _vom_spec = _vom_ilu.spec_from_file_location('vom_nuke', _vom_path)",
        "        _vom_sys.modules['vom_nuke'] = _vom_ilu.module_from_spec(_vom_spec)",
        "        _vom_spec.loader.exec_module(_vom_sys.modules['vom_nuke'])",
        "    except Exception as _vom_e:  # Nuke goes on starting and the rest of this file runs; the buttons say so",
        "        _vom_sys.modules.pop('vom_nuke', None)",
        "        _vom_sys.stderr.write('vom: the VOM Matte adapter %s could not be loaded: %s: %s\\n'",
        "                              % (_vom_path, type(_vom_e).__name__, _vom_e))",
        "# the matte's channel set again on each VOM_Matte node made or loaded (besides the gizmo's own onCreate)",
        "_vom_nuke.addOnCreate(lambda: 'vom_nuke' in _vom_sys.modules and "
        "_vom_sys.modules['vom_nuke'].restore_alpha(_vom_nuke.thisNode()), nodeClass='VOM_Matte')",
        NUKE_END,
    ]) + "\n"
    menu = "\n".join([
        begin,
        "import nuke as _vom_nuke",
        "_vom_nuke.menu('Nodes').addMenu('VOM').addCommand('VOM Matte', \"nuke.createNode('VOM_Matte')\")",
        NUKE_END,
    ]) + "\n"
    return {"init.py": init, "menu.py": menu}


def _split_block(text):
    """``text`` around its vom block: (before, block, after); block "" when there is none. Other lines untouched."""
    lines = text.splitlines(True)
    begin = next((i for i, line in enumerate(lines) if line.startswith(NUKE_BEGIN)), None)
    if begin is None:
        return text, "", ""
    end = next((i for i in range(begin + 1, len(lines)) if lines[i].rstrip("\r\n") == NUKE_END), None)
    if end is None:
        raise InstallError("a vom block in a Nuke file has its start marker but no end marker (%r); fix the file "
                           "by hand" % NUKE_END, code=2)
    return "".join(lines[:begin]), "".join(lines[begin:end + 1]), "".join(lines[end + 1:])


def _block_head(block):
    """A vom block's first line (its markers: what the install added) and the line ending the block was written
    with."""
    head = block.splitlines(True)[0]
    return head.rstrip("\r\n"), "\r\n" if head.endswith("\r\n") else "\n"


def _read_user_file(path):
    """A user's init.py or menu.py, byte for byte: any encoding (bytes that are not UTF-8 come back as they were) and
    its line endings."""
    if not path.exists():
        return path, None, "\n"
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    return path, text, "\r\n" if "\r\n" in text else "\n"


def _refuse_link(path, block):
    """A linked init.py or menu.py is a pipeline's file, shared by others: replacing the link cut this user off
    from it, and writing through it would give everyone this user's vom. The user adds the block by hand."""
    if path.is_symlink():
        raise InstallError("%s is a link to %s (a file others may share); vom changes neither: add these lines to "
                           "it by hand, or give --nuke a folder of your own:\n%s"
                           % (path, os.path.realpath(str(path)), block), code=2)


def _replace_file(target, data, keep_mode=False):
    """``target`` holds ``data`` whole, or is as it was: written to a temporary name of its own beside it, created new
    (never through a link, nor over a file someone left at a fixed name), then renamed over it."""
    tmp = target.with_name(".%s.%d-%s.vom-tmp" % (target.name, os.getpid(), os.urandom(4).hex()))
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if keep_mode:  # by the descriptor: never a link swapped in at the temporary's name
                os.fchmod(f.fileno(), stat.S_IMODE(target.stat().st_mode))
            f.write(data)
        os.replace(str(tmp), str(target))
    except BaseException:
        if os.path.lexists(str(tmp)):
            tmp.unlink()
        raise


def _write_if_changed(target, old, text):
    """Write ``text`` to ``target`` (a resolved path) when it differs from ``old``: beside it, with its permissions,
    then renamed over it."""
    if old == text:
        return False
    try:
        _replace_file(target, text.encode("utf-8", "surrogateescape"), keep_mode=old is not None)
    except OSError as e:
        raise InstallError("%s cannot be written (%s); nothing in it was changed" % (target, e.strerror or e),
                           code=2) from None
    return True


def nuke_install(nuke_dir, vom, gizmos_dir, host_module):
    """Add (or refresh, where it is) the vom block of init.py and menu.py in ``nuke_dir``; returns the files
    changed. The rest of each file keeps its bytes, line endings, permissions and links."""
    # absolute: the block's "remove with" line is run from anywhere (QA: --nuke rel/nk wrote "--nuke rel/nk")
    nuke_dir = Path(os.path.abspath(os.path.expanduser(str(nuke_dir))))
    made = []  # the folders not there yet, nuke_dir first: check_writable makes them all (review: --nuke a/b/c made
    for folder in _folders_up(nuke_dir):  # a and b too, and only c was remembered)
        if os.path.lexists(str(folder)):
            break
        made.append(folder)
    try:
        check_writable(nuke_dir, "give --nuke a folder you can write to")
        return _nuke_install(nuke_dir, vom, gizmos_dir, host_module, _made_flag(len(made)))
    except InstallError:
        _remove_empty_folders(made)  # an install that did not happen leaves none behind
        raise


def _remove_empty_folders(folders):
    """Remove each of ``folders`` (innermost first) while it is empty; returns those that went."""
    gone = []
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (Nuke's own files since, the user's), or not ours to remove: nor those above it
            break
        gone.append(folder)
    return gone


def _nuke_install(nuke_dir, vom, gizmos_dir, host_module, made_dir):
    changes = []
    blocks = sorted(nuke_blocks(vom, gizmos_dir, host_module, nuke_dir).items())
    for name, block in blocks:  # both checked before either is written: no half install
        _refuse_link(nuke_dir / name, block)
    for name, block in blocks:
        path = nuke_dir / name
        target, old, newline = _read_user_file(path)
        before, found, after = _split_block(old or "")
        if found:  # refreshed where it is, with its own line endings and what it said it added
            first, newline = _block_head(found)
            made = _NUKE_MADE.search(first)
            flags = "".join(f for f in (NUKE_JOINED, NUKE_CREATED) if f in first) + (made.group(0) if made else "")
        elif old is None:
            flags = NUKE_CREATED + made_dir
        elif before and not before.endswith("\n"):  # appended, on a line of its own
            before, flags = before + newline, NUKE_JOINED
        else:
            flags = ""
        block = block.replace("\n", newline).replace(NUKE_BEGIN, NUKE_BEGIN + flags, 1)
        changes.append((target, old, before + block + after))
    return _write_all(changes)


def _write_all(changes):
    """Make each (target, old text or None, new text) that changes; a new text of None removes the file (one
    install.py created, left with nothing else in it). Where one cannot be made, those made before it are put back
    as they were (init.py got its block, then menu.py, another user's file in a sticky folder, was refused: half an
    install, QA). Returns the targets changed."""
    done = []
    try:
        for target, old, text in changes:
            if text is None:
                mode = stat.S_IMODE(target.stat().st_mode)
                try:
                    target.unlink()
                except OSError as e:
                    raise InstallError("%s cannot be removed (%s); nothing in it was changed"
                                       % (target, e.strerror or e), code=2) from None
                done.append((target, old, mode))
            elif _write_if_changed(target, old, text):
                done.append((target, old, None))
    except InstallError as e:
        for target, old, mode in reversed(done):
            if old is None:
                target.unlink()
            else:
                _replace_file(target, old.encode("utf-8", "surrogateescape"), keep_mode=mode is None)
                if mode is not None:
                    os.chmod(str(target), mode)
        if done:
            e.args = ("%s; %s put back as it was" % (e, ", ".join(t.name for t, _, _ in done)),)
        raise
    return [t for t, _, _ in done]


def nuke_uninstall(nuke_dir):
    """Remove exactly the vom block from init.py and menu.py in ``nuke_dir``, and the folder where the install made it
    and it is empty now (a fresh ~/.nuke was left behind: QA), and those above it it made (--nuke a/b/c), innermost
    first; returns the files changed (and the folders removed)."""
    nuke_dir = Path(os.path.expanduser(str(nuke_dir)))
    changes = []
    made = 0
    for name in ("init.py", "menu.py"):
        path = nuke_dir / name
        target, old, _ = _read_user_file(path)
        if old is None:
            continue
        before, found, after = _split_block(old)
        if found and path.is_symlink():
            raise InstallError("%s is a link to %s (a file others may share), with the vom block in it: remove the "
                               "block by hand" % (path, os.path.realpath(str(path))), code=2)
        first, added = _block_head(found) if found else ("", "\n")  # added: the block's line ending
        made = max(made, _made_count(first))
        if NUKE_JOINED in first and not after and before.endswith(added):  # lines after the block: theirs
            before = before[: -len(added)]
        changes.append((target, old, None if NUKE_CREATED in first and not before + after else before + after))
    changed = _write_all(changes)
    if made and not nuke_dir.is_symlink():
        changed += _remove_empty_folders(_folders_up(nuke_dir)[:made])
    return changed


def register_nuke(nuke_dir, python):
    vom = env_bin(python, "vom")
    gizmos_dir = ROOT / "gizmos"
    host_module = ROOT / "vom_plugin" / "host" / "nuke.py"
    for needed in (gizmos_dir / "VOM_Matte.gizmo", host_module):
        if not needed.exists():
            raise InstallError("%s is missing from this checkout; cannot register vom with Nuke" % needed)
    changed = nuke_install(nuke_dir, vom, gizmos_dir, host_module)
    where = os.path.abspath(os.path.expanduser(str(nuke_dir)))  # the folder the block names
    if changed:
        log("registered the VOM_Matte node with Nuke in %s (%s)" % (where, ", ".join(p.name for p in changed)))
    else:
        log("the VOM_Matte node is already registered with Nuke in %s; nothing to do" % where)


# --- Blender add-on: a copy of vom_plugin/host/blender_addon as <add-ons dir>/vom_matte ---------------
BLENDER_ADDON = "vom_matte"
BLENDER_MARKER = "vom_env.json"  # written by us: names the environment's vom, and marks the folder as ours
BLENDER_SOURCE = ROOT / "vom_plugin" / "host" / "blender_addon"
# Run inside Blender (argv after --: add-ons folder, enable|disable): enable or disable the add-on and save the
# preferences only when that changes them, so a second install changes nothing.
BLENDER_PREFS_SCRIPT = r"""
import os, sys, addon_utils, bpy
folder, action = sys.argv[sys.argv.index("--") + 1:][:2]
name = %r
enabled = name in bpy.context.preferences.addons
if action == "enable":
    paths = [os.path.realpath(p) for p in addon_utils.paths()]
    if os.path.realpath(folder) not in paths:
        print("VOM_PREFS=not-searched " + os.pathsep.join(paths))
        sys.exit(0)
    if enabled:
        print("VOM_PREFS=unchanged")
        sys.exit(0)
    addon_utils.enable(name, default_set=True, handle_error=None)
    if name not in bpy.context.preferences.addons:
        raise SystemExit("the add-on did not enable (see the error above)")
elif not enabled:
    print("VOM_PREFS=unchanged")
    sys.exit(0)
else:
    addon_utils.disable(name, default_set=True)
bpy.ops.wm.save_userpref()
print("VOM_PREFS=saved")
""" % BLENDER_ADDON


def find_blender():
    """The `blender` to ask about its add-ons folder and preferences: $BLENDER, else PATH."""
    exe = os.environ.get("BLENDER") or shutil.which("blender")
    return exe if exe and Path(exe).is_file() else None


def run_blender(blender, script, args=(), factory=False, timeout=300):
    cmd = [blender, "-b"] + (["--factory-startup"] if factory else []) + [
        "--python-exit-code", "1", "--python-expr", script, "--"] + [str(a) for a in args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise InstallError("%s failed (exit %d):\n%s" % (" ".join(cmd[:3]), proc.returncode,
                                                        (proc.stdout + proc.stderr)[-3000:]))
    return proc.stdout


def blender_addons_dir(blender):
    """Blender's user add-ons folder (it honours BLENDER_USER_SCRIPTS)."""
    out = run_blender(blender, "import bpy; print('VOM_ADDONS=' + bpy.utils.user_resource('SCRIPTS', "
                               "path='addons'))", factory=True)
    for line in out.splitlines():
        if line.startswith("VOM_ADDONS="):
            return Path(line[len("VOM_ADDONS="):])
    raise InstallError("could not ask %s for its add-ons folder; pass it: --blender DIR" % blender)


def _addon_files():
    files = {p.name: p.read_bytes() for p in sorted(BLENDER_SOURCE.iterdir())
             if p.suffix in (".py", ".json") and p.name != BLENDER_MARKER}
    if "__init__.py" not in files or "node_def.json" not in files:
        raise InstallError("%s is incomplete in this checkout; cannot install the Blender add-on" % BLENDER_SOURCE)
    return files


def _our_addon_folder(addons_dir):
    target = Path(os.path.expanduser(str(addons_dir))) / BLENDER_ADDON
    if target.is_symlink() or (target / BLENDER_MARKER).is_symlink():  # a developer's copy, linked in: not ours
        raise InstallError("%s is a link to %s; install.py neither writes into it nor removes it: remove the link "
                           "first, or install into another add-ons folder" % (target, os.path.realpath(str(target))),
                           code=2)
    if target.exists() and not (target / BLENDER_MARKER).is_file() and not (target.is_dir()
                                                                            and not any(target.iterdir())):
        raise InstallError("%s exists and was not installed by install.py (no %s in it); move it away first"
                           % (target, BLENDER_MARKER), code=2)
    return target


def blender_install(addons_dir, vom):
    """Copy the add-on to ``addons_dir/vom_matte`` (only files that differ) and record the environment's vom;
    returns the files changed."""
    target = _our_addon_folder(addons_dir)
    check_writable(target, "give --blender an add-ons folder you can write to")  # not check_writable's --venv remedy
    installed_before = _installed_files(target)
    files = _addon_files()
    # a file there that install.py did not put there (an artist's, left by an uninstall) is never written over
    # (one holding what install.py would write is its own: an install stopped before its marker was written)
    theirs = sorted(n for n in files if n not in installed_before and (target / n).exists()
                    and not ((target / n).is_file() and (target / n).read_bytes() == files[n]))
    if theirs:
        raise InstallError("%s holds %s, which install.py did not put there and the add-on would write over; move "
                           "them away first" % (target, ", ".join(theirs)), code=2)
    names = sorted([*files, BLENDER_MARKER])
    files[BLENDER_MARKER] = (json.dumps({"vom": str(vom), "checkout": str(ROOT), "files": names}, indent=1)
                             + "\n").encode()
    changed = []
    for name, data in files.items():
        path = target / name
        if path.is_file() and path.read_bytes() == data:
            continue
        _replace_file(path, data)
        changed.append(path)
    for name in sorted(installed_before - set(files)):  # what an older version installed, and only that
        path = target / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
            changed.append(path)
    _remove_compiled(target, set(files) | installed_before)
    return changed


def _remove_compiled(target, names):
    """Python's compiled copies of the add-on's own modules (``__pycache__/NAME.*.pyc``), stale once a module
    changed or went; the folder too once empty. Nothing else there is touched (a user's file was, by a rmtree)."""
    cache = target / "__pycache__"
    if cache.is_symlink() or not cache.is_dir():
        return
    stems = {Path(n).stem for n in names if n.endswith(".py")}
    for path in cache.iterdir():
        parts = path.name.split(".")
        if (path.suffix == ".pyc" and parts[0] in stems and path.is_file() and not path.is_symlink()):
            path.unlink()
    try:
        cache.rmdir()
    except OSError:  # what else is there is not install.py's
        pass


def _installed_files(target):
    """The names of the files install.py put in the add-on folder, as its marker lists them (a marker written before
    the list: the add-on's files of today); a file the user added there is not among them."""
    try:
        listed = json.loads((target / BLENDER_MARKER).read_text()).get("files")
    except (OSError, ValueError, AttributeError, RecursionError):
        listed = None
    # a plain file name (a marker edited or made by hand must not name a path outside the folder, also on Windows)
    if isinstance(listed, list) and all(isinstance(n, str) and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", n)
                                        for n in listed):
        return set(listed)
    return {*_addon_files(), BLENDER_MARKER}


def blender_uninstall(addons_dir):
    """Remove ``addons_dir/vom_matte`` if install.py put it there; returns whether it was there."""
    target = _our_addon_folder(addons_dir)
    if not target.exists():
        return False
    installed = _installed_files(target)  # read before the marker that lists them goes
    for name in sorted(installed - {BLENDER_MARKER}) + [BLENDER_MARKER]:  # the marker last
        path = target / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
    _remove_compiled(target, installed)
    try:
        target.rmdir()
    except OSError:  # files the user added there: theirs, left with the folder
        theirs = sorted(p.name for p in target.iterdir())
        # the folder stays marked as install.py's, listing no file of the add-on: a later install goes on into it
        # (it was refused as a folder install.py did not write) and a later uninstall again leaves only theirs
        marker = {"vom": None, "checkout": str(ROOT), "files": [BLENDER_MARKER], "uninstalled": True}
        _replace_file(target / BLENDER_MARKER, (json.dumps(marker, indent=1) + "\n").encode())
        log("left %s: it holds files install.py did not put there (%s); the add-on's own files are removed, but for "
            "its %s, which keeps the folder install.py's" % (target, ", ".join(theirs), BLENDER_MARKER))
        return "left"
    return True


def blender_prefs(blender, addons_dir, action):
    """Enable or disable the add-on in Blender's saved preferences; returns what happened."""
    out = run_blender(blender, BLENDER_PREFS_SCRIPT, [Path(os.path.expanduser(str(addons_dir))), action])
    for line in out.splitlines():
        if line.startswith("VOM_PREFS="):
            return line[len("VOM_PREFS="):]
    raise InstallError("Blender did not report on the add-on's preferences:\n%s" % out[-2000:])


def register_blender(addons_dir, python, blender=None):
    """Install the add-on into ``addons_dir`` (default: ask Blender) and enable it in Blender's preferences."""
    blender = blender or find_blender()
    if not addons_dir:
        if blender is None:
            raise InstallError("blender is not on PATH (nor $BLENDER): pass the add-ons folder, --blender DIR", code=2)
        addons_dir = blender_addons_dir(blender)
    vom = env_bin(python, "vom")
    changed = blender_install(addons_dir, vom)
    where = Path(os.path.expanduser(str(addons_dir))) / BLENDER_ADDON
    log("installed the VOM Matte add-on in %s (%s)" % (where, ", ".join(p.name for p in changed)) if changed
        else "the VOM Matte add-on in %s is current; nothing to copy" % where)
    if blender is None:
        log("blender is not on PATH (nor $BLENDER): enable 'VOM Matte' in Blender's Preferences > Add-ons")
        return
    state = blender_prefs(blender, addons_dir, "enable")
    if state.startswith("not-searched"):
        log("warning: %s does not look for add-ons in %s; Blender reads add-ons from the addons folder of a scripts "
            "folder: install into <scripts>/addons, then add <scripts> to Preferences > File Paths > Scripts (or set "
            "BLENDER_USER_SCRIPTS to it), and enable 'VOM Matte'" % (blender, addons_dir))
    else:
        log("enabled the add-on in Blender's preferences" if state == "saved" else
            "the add-on is already enabled in Blender's preferences")


def unregister_blender(addons_dir, blender=None):
    blender = blender or find_blender()
    if not addons_dir:
        if blender is None:
            raise InstallError("blender is not on PATH (nor $BLENDER): pass the add-ons folder, --blender DIR", code=2)
        addons_dir = blender_addons_dir(blender)
    if blender is not None:
        state = blender_prefs(blender, addons_dir, "disable")
        log("disabled the add-on in Blender's preferences" if state == "saved" else
            "the add-on was not enabled in Blender's preferences")
    else:  # its preferences still name it: every Blender start would say "No module named 'vom_matte'"
        log("warning: blender is not on PATH (nor $BLENDER): disable 'VOM Matte' in Blender's Preferences > Add-ons "
            "by hand (or run this again with blender on PATH)")
    where = Path(os.path.expanduser(str(addons_dir))) / BLENDER_ADDON
    gone = blender_uninstall(addons_dir)
    if gone is True:
        log("removed %s" % where)
    elif not gone:
        log("no add-on in %s; nothing to remove" % where)  # "left": said above (it said "removed" after it, QA)


def parse_extras(text):
    """'eval, farm' -> ['eval', 'farm'] (sorted, unique); 'all' means every extra."""
    names = set()
    for word in text.replace(",", " ").split():
        if word == "all":
            names.update(EXTRAS)
        elif word in EXTRAS:
            names.add(word)
        else:
            raise argparse.ArgumentTypeError("unknown extra %r; expected some of %s or all (comma-separated)"
                                             % (word, ", ".join(EXTRAS)))
    return sorted(names)


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="install.py", description="Set up vom: a virtual environment with vom and its dependencies.",
        epilog="Arguments after -- are passed to pytest (with --test).")
    p.add_argument("--no-venv", action="store_true", help="install into the active Python environment")
    p.add_argument("--venv", metavar="DIR", help="virtual environment folder (default: .venv next to install.py)")
    p.add_argument("--torch", metavar="REQ",
                   help="torch requirement to install (default: the one this environment was installed with, else %s; "
                        "'' keeps the one installed)" % DEFAULT_TORCH.replace("%", "%%"))
    mode = p.add_mutually_exclusive_group()
    # None: as the environment was installed (choose_mode)
    mode.add_argument("--no-editable", dest="no_editable", action="store_const", const=True, default=None,
                      help="install a copy of the checkout as it is now, which a `git pull` does not change (default: "
                           "as this environment was installed, else editable); the environment remembers it")
    mode.add_argument("--editable", dest="no_editable", action="store_const", const=False,
                      help="an editable install, which follows the checkout (what a new environment gets; makes a "
                           "--no-editable one editable)")
    p.add_argument("--extras", type=parse_extras, default=[], metavar="LIST",
                   help="optional parts to install as well, comma-separated: %s, or all (a render needs none; "
                        "--test adds them all); the environment remembers them, and a later run installs them "
                        "again" % ", ".join(EXTRAS))
    p.add_argument("--drop-extras", type=parse_extras, default=[], metavar="LIST",
                   help="extras the environment remembers that a run no longer installs (or all); pip removes none "
                        "of their packages")
    p.add_argument("--demo", action="store_true", help="after set-up, render the shipped demo shot")
    p.add_argument("--test", action="store_true",
                   help="install every extra the tests need (%s), then run the test suite" % ", ".join(EXTRAS))
    p.add_argument("--nuke", nargs="?", const=DEFAULT_NUKE_DIR, metavar="DIR",
                   help="register the VOM_Matte node with Nuke: a marked block in DIR/init.py and DIR/menu.py "
                        "(DIR default %s)" % DEFAULT_NUKE_DIR)
    p.add_argument("--blender", nargs="?", const="", metavar="DIR",
                   help="install the VOM Matte add-on into the Blender add-ons folder DIR and enable it (DIR "
                        "default: Blender's user add-ons folder, asked of the `blender` on PATH or $BLENDER)")
    p.add_argument("--uninstall", action="store_true",
                   help="remove the Nuke registration (from --nuke DIR, default %s) or, with --blender [DIR], the "
                        "Blender add-on; the environment stays" % DEFAULT_NUKE_DIR)
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    args = p.parse_args(argv)
    if extra and not args.test:
        p.error("arguments after -- are for pytest and need --test")
    if args.uninstall and (args.demo or args.test):
        p.error("--uninstall does not combine with --demo or --test")
    if args.drop_extras and (args.test or set(args.drop_extras) & set(args.extras)):
        p.error("--drop-extras %s: %s" % (",".join(args.drop_extras), "--test installs every extra" if args.test else
                                          "also asked for with --extras"))
    if args.test:
        args.extras = sorted(set(args.extras) | set(EXTRAS))

    before = signal.signal(signal.SIGTERM, terminated) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        if args.uninstall and args.blender is not None:
            unregister_blender(args.blender)
            if not args.nuke:
                return 0
        if args.uninstall:
            nuke_dir = args.nuke or DEFAULT_NUKE_DIR
            changed = nuke_uninstall(nuke_dir)
            folder = Path(os.path.expanduser(nuke_dir))
            folders = _folders_up(folder)
            files = [c for c in changed if c not in folders]
            log("removed the vom block from %s" % ", ".join(str(c) for c in files) if files
                else "no vom block in %s; nothing to do" % folder)
            gone = [c for c in changed if c in folders]
            if gone:
                them = "it" if len(gone) == 1 else "them"
                log("removed %s too: install.py made %s, and nothing else is in %s"
                    % (", ".join(str(c) for c in gone), them, them))
            return 0
        python = ensure_environment(args)
        vom = env_bin(python, "vom")
        log("vom is %s" % vom)
        if args.nuke:
            register_nuke(args.nuke, python)
        if args.blender is not None:
            register_blender(args.blender, python)
        if args.demo:
            run([vom, "demo"], "render the demo shot")
        if args.test:
            env = dict(os.environ)
            # pytest must not pick up plugins or caches from outside the project's environment
            env.setdefault("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
            proc = wait_child([python, "-m", "pytest", *extra], cwd=ROOT, env=env)
            if proc.returncode == 5:
                log("pytest collected no tests")
                return 0
            if proc.returncode != 0:
                log("tests failed (pytest exit code %d)" % proc.returncode)
                return 1
        if not (args.demo or args.test):
            # commands to paste: quoted, with the environment this run installed into and its torch (QA)
            log("next: %s demo   (or: %s)" % (quote(vom), rerun_command(args, "--demo")))
        return 0
    except InstallError as e:
        print("install.py: error: %s" % e, file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("install.py: interrupted", file=sys.stderr)
        return 130
    finally:
        if before is not None:
            signal.signal(signal.SIGTERM, before)


if __name__ == "__main__":
    sys.exit(main())
