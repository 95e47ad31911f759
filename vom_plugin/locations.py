"""Where vom keeps things on disk: shipped weights, the default cache, the demo shot.

Every path can be overridden by an environment variable, so farms and air-gapped sites can relocate
them without code changes.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
# the distribution's name (pyproject.toml): "vom" on PyPI is another project, which a `pip install -U` would put
# in vom's place
DISTRIBUTION = "vom-matte"


def in_checkout() -> bool:
    """Whether the package runs from a checkout (install.py beside it), not from an installed copy (where the folder
    above the package is site-packages, which any other package may fill)."""
    return (REPO_DIR / "install.py").is_file() and (REPO_DIR / "node_defs").is_dir()


# shipped model names (``weights.load_model``); any other ``model`` value is the path of a checkpoint
MODEL_ALIASES = {"default": "lite", "lite": "lite", "full": "full"}


def env_folder(name: str) -> Path | None:
    """The folder an environment variable names, as the shot file's paths are read: ``$SHOW`` and ``~`` expanded (an
    unset one refused: left in, it made a folder named ``$NOPE`` where vom ran, QA), made absolute (a worker started
    elsewhere means the same folder); None when unset or blank."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if "$" in value:
        from vom_plugin.engine.shot import expand_vars

        value = expand_vars(value, name)
    if value.startswith("~"):  # a ~user of no user is refused, as a shot file's (QA: a folder named ~nouser was made)
        from vom_plugin.engine.shot import expand_user

        value = expand_user(value, name)
    return Path(os.path.abspath(value))


def weights_dir() -> Path:
    """Folder of the shipped model weights (``VOM_WEIGHTS_DIR`` overrides)."""
    return env_folder("VOM_WEIGHTS_DIR") or PACKAGE_DIR / "weights"


def weights_path(name_or_path: str | os.PathLike = "default") -> Path:
    """Resolve "default" / "lite" / "full" to the shipped file, else treat the value as a path."""
    key = str(name_or_path)
    if key in MODEL_ALIASES:
        return weights_dir() / f"{MODEL_ALIASES[key]}.safetensors"
    return Path(key).expanduser()


def default_cache_dir() -> Path:
    """Default root of the per-shot caches (``VOM_CACHE_DIR``, else ``$XDG_CACHE_HOME/vom``)."""
    return env_folder("VOM_CACHE_DIR") or (env_folder("XDG_CACHE_HOME") or Path.home() / ".cache") / "vom"


def clip_library_dir() -> Path:
    """Default folder of the rendered training-clip library (``VOM_CLIPS_DIR``, else ``$XDG_CACHE_HOME/vom-clips``).

    Not under the per-shot cache root: ``vom cache clear`` works there, and a library takes hours of CPU to
    rebuild.
    """
    return env_folder("VOM_CLIPS_DIR") or (env_folder("XDG_CACHE_HOME") or Path.home() / ".cache") / "vom-clips"


def demo_dir() -> Path:
    """The small demo shot that ships with the package."""
    return PACKAGE_DIR / "data" / "demo"
