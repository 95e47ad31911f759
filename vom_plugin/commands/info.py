"""``vom info``: versions, devices and where vom keeps its weights and cache."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from typing import Any

from vom_plugin.errors import json_error

HELP = "show versions, devices, and where the weights and cache live"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--model", metavar="NAME|PATH",
                   help="instead: a weights file's metadata (lineage, settings, initial weights) and the digests "
                        "renders stamp: vom:weights (digest, of the tensors) and the weights of vom:settings "
                        "(file_digest, of the file's bytes, which vom farm check compares)")


def weights_info(name: str) -> dict[str, Any]:
    """A weights file as an audit reads it: where it is, its size, the digests a render stamps (``digest``:
    ``vom:weights``, of the tensors; ``file_digest``: ``vom:settings``' weights, of the file's bytes, which ``vom farm
    check`` compares: metadata can change pixels) and its metadata as written (QA: reading an export's metadata needed
    Python; the check named a file digest no command printed)."""
    from vom_plugin.digest import content_digest
    from vom_plugin.engine.models import model_identity
    from vom_plugin.engine.weights import load_model, read_weights_metadata, weights_path

    path = weights_path(name)
    meta = read_weights_metadata(path)  # InputError naming a missing or foreign file
    model = load_model(path)
    return {"file": os.path.abspath(path), "bytes": path.stat().st_size, "digest": model_identity(model),
            "file_digest": content_digest(path), "metadata": dict(sorted(meta.items()))}


def _shown(key: str, value: Any) -> Any:
    """A ``vom info --model`` value as its text says it: the two digests told apart, the file's in the short form
    ``vom farm check`` names it by."""
    from vom_plugin.digest import short_digest

    if key == "digest":
        return f"{value} (vom:weights: of the tensors)"
    if key == "file_digest":
        return (f"{short_digest(value)} (vom:settings' weights, which vom farm check compares: of the file's bytes, "
                f"metadata too; in full {value})")
    return value


def _version(module: str, dist: str) -> str:
    """The module's version as it says it, else as its distribution's metadata does (OpenImageIO 3.0 has no
    ``__version__``: it was shown as unknown, QA)."""
    try:
        mod = __import__(module)
    except Exception as e:  # a broken install must still be reportable
        return f"not available ({type(e).__name__}: {e})"
    said = getattr(mod, "__version__", None) or getattr(mod, "VERSION_STRING", None)
    if said:
        return str(said)
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def _folder(where: Any, problems: list[str]) -> tuple[Any, str]:
    """``where()`` and how to show it, or what is wrong with the variable naming it: reported beside the rest (a TD
    runs vom info to find what is wrong), not instead of it."""
    from vom_plugin.errors import InputError

    try:
        folder = where()
        return folder, str(folder)
    except InputError as e:
        problems.append(str(e))
        return None, f"unknown ({e})"


def _settings(problems: list[str]) -> dict[str, str]:
    """The settings a render reads from the environment, as it reads them; one it would refuse is said as such and
    added to ``problems`` (QA: VOM_CACHE_MAX_GB=abc passed vom info, exit 0, and failed the next render)."""
    from vom_plugin.engine.cache import max_bytes_from_env, min_free_bytes_from_env
    from vom_plugin.engine.memo import memo_bytes_from_env
    from vom_plugin.engine.step_cache import state_interval
    from vom_plugin.errors import InputError

    out = {}
    for name, read, shown in (
            ("cache_max", max_bytes_from_env, lambda v: f"{v / 2**30:g} GiB (VOM_CACHE_MAX_GB)"),
            ("cache_min_free", min_free_bytes_from_env, lambda v: f"{v / 2**30:g} GiB (VOM_CACHE_MIN_FREE_GB)"),
            ("state_interval", state_interval, lambda v: f"{v:g} s (VOM_STATE_INTERVAL_S)"),
            ("worker_memo", memo_bytes_from_env, lambda v: f"{v / 2**20:g} MB (VOM_WORKER_MEMO_MB)")):
        try:
            out[name] = shown(read())
        except InputError as e:
            problems.append(str(e))
            out[name] = f"unknown ({e})"  # as a folder variable that cannot be read is shown
    return out


def collect(problems: list[str] | None = None) -> dict[str, Any]:
    """What ``vom info`` reports; a folder variable that cannot be read is reported as such and added to
    ``problems``."""
    from vom_plugin import __version__, extras
    from vom_plugin.digest import build_id
    from vom_plugin.locations import default_cache_dir, weights_dir

    problems = [] if problems is None else problems
    weights, weights_shown = _folder(weights_dir, problems)
    from vom_plugin.locations import weights_path

    if weights is not None and not weights_path("default").is_file():
        # a worker that cannot render what a shot without `model:` asks for (QA: exit 0 over "weights (none)")
        problems.append(f"no weights of the default model: {weights_path('default')} does not exist (VOM_WEIGHTS_DIR "
                        f"{'names ' + str(weights) if os.environ.get('VOM_WEIGHTS_DIR', '').strip() else 'is unset'})"
                        f"; a render that names no --model fails")
    _, cache_shown = _folder(default_cache_dir, problems)
    info: dict[str, Any] = {
        "vom": __version__,
        "build": build_id(),  # two builds of one version told apart (the outputs' vom:build)
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "torch": _version("torch", "torch"),
        "OpenImageIO": _version("OpenImageIO", "OpenImageIO"),
        "OpenColorIO": _version("PyOpenColorIO", "opencolorio"),
        "numpy": _version("numpy", "numpy"),
        "weights_dir": weights_shown,
        "weights": sorted(p.name for p in weights.glob("*.safetensors")) if weights and weights.is_dir() else [],
        "cache_dir": cache_shown,
        **_settings(problems),
        # the render set is all a render needs; the rest comes with extras (install.py --extras eval)
        "extras": [name if not missing else f"{name} (not installed: {', '.join(missing)})"
                   for name, missing in extras.status().items()],
    }
    devices = ["cpu"]
    try:
        import torch

        info["cpu_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(i)
                devices.append(f"cuda:{i} {props.name} {props.total_memory / 2**30:.1f} GiB")
    except Exception as e:
        devices.append(f"torch unavailable: {e}")
    info["devices"] = devices
    return info


def run(args: argparse.Namespace) -> int:
    problems: list[str] = []
    info = weights_info(args.model) if args.model else collect(problems)
    if args.json and problems:
        # the --json error contract's keys (QA: a pipeline saw no "error" on exit 2) beside the report's own, where
        # they are on success: a TD runs vom info to find what is wrong, and the rest says where to look (review)
        print(json.dumps({**info, **json_error("; ".join(problems), 2, "InputError")}, indent=2))
    elif args.json:
        print(json.dumps(info, indent=2))
    else:
        meta = info.pop("metadata", None)
        width = max(len(k) for k in [*info, *(f"  {k}" for k in meta or {})])
        for k, v in info.items():
            if isinstance(v, list):
                v = ", ".join(v) if v else "(none)"
            print(f"{k:<{width}}  {_shown(k, v) if meta is not None else v}")
        if meta is not None:
            print("metadata:")
            for k, v in meta.items():
                print(f"{'  ' + k:<{width}}  {v}")
    for problem in problems:  # everything else is reported; a render would refuse this environment
        print(f"vom info: error: {problem}", file=sys.stderr)
    return 2 if problems else 0
