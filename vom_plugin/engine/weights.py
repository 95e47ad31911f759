"""Model weights on disk: safetensors (fp16 by default), with the config name and vom version in metadata.

``load_model("default")`` (or ``"lite"``) loads ``<weights dir>/lite.safetensors``; ``"full"`` loads
``full.safetensors``; anything else is a path. The network's config comes from the file's metadata, so a
file always rebuilds the network it was saved from. Problems raise InputError naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import torch

from vom_plugin.atomic import atomic_path
from vom_plugin.engine.weights_header import read_weights_metadata  # re-exported (torch-free there)
from vom_plugin.errors import InputError
from vom_plugin.locations import weights_path  # re-exported (torch-free there, for the output checks)
from vom_plugin.model import CONFIGS, HSTSG, build_model

FORMAT = "vom-hstsg"


def save_weights(model: HSTSG, path: str | os.PathLike, *, fp16: bool = True, metadata: dict | None = None) -> None:
    """Write the model's state (floating tensors as fp16 unless fp16=False) atomically to `path`."""
    from safetensors.torch import save_file

    from vom_plugin import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        if fp16 and v.is_floating_point():
            v = v.half()
        state[k] = v.contiguous()
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta.update({"format": FORMAT, "config": model.config.name, "vom_version": __version__})
    from vom_plugin.atomic import write_failed

    try:
        with atomic_path(path) as tmp:
            save_file(state, str(tmp), metadata=meta)
            # safetensors makes its file 0600: weights are read by every render of a shared folder's users (a file
            # there before keeps its own mode, atomic_path)
            os.chmod(tmp, 0o644)
    except OSError as e:
        raise write_failed(path, e) from None
    except Exception as e:  # safetensors' own error type (its Rust binding's) of a file it could not write; others
        if type(e).__name__ != "SafetensorError":  # (shared tensors, a bad dtype) are vom's bugs: raised as they are
            raise
        raise write_failed(path, e) from None


# tensors added after weights were first shipped: older files load without them (the model's defaults)
OPTIONAL_TENSORS = frozenset({"output_levels", "decoder.guided", "memory_mask", "keyframe_bonus"})
# a keyframe bonus beyond this reads the keyframe alone (e^16 to 1): larger values say nothing more, and a
# non-finite one would turn every read into NaN
MAX_KEYFRAME_BONUS = 16.0
# modules added after weights were first shipped (the learned edge refinement, model/refine.py; the detail
# residual, model/detail.py): a file holds all of a module's tensors or none, and one without them runs without it
OPTIONAL_MODULES = ("decoder.refine", "detail")


def holds_module(names: Iterable[str], module: str) -> bool:
    """Whether tensor names (a weights file's, a checkpoint's model or EMA state) include ``module``'s."""
    prefix = module + "."
    return any(n.removeprefix("module.").startswith(prefix) for n in names)


def _submodule(model: torch.nn.Module, module: str) -> torch.nn.Module | None:
    for part in module.split("."):  # getattr, not get_submodule: a stand-in network may lack the parents
        model = getattr(model, part, None)
    return model


def lacking_modules(model: torch.nn.Module, names: Iterable[str]) -> list[str]:
    """The OPTIONAL_MODULES ``model`` has and the tensor ``names`` do not hold."""
    names = list(names)
    return [m for m in OPTIONAL_MODULES if _submodule(model, m) is not None and not holds_module(names, m)]


def drop_modules(model: torch.nn.Module, modules: Iterable[str]) -> None:
    """Remove OPTIONAL_MODULES from ``model``: the network then runs as files from before them were trained.
    A module ``model`` does not have (a stand-in network without a decoder) is skipped."""
    for m in modules:
        parent, _, attr = m.rpartition(".")
        owner = _submodule(model, parent) if parent else model
        if owner is not None:
            setattr(owner, attr, None)


def not_vom_weights(path: str | os.PathLike) -> InputError:
    """The refusal of a safetensors file with no vom model config in its metadata (another tool's file: QA, it read
    "names model config None")."""
    return InputError(f"weights file {str(path)!r} has no vom model config in its metadata: it is not vom weights (a "
                      f"safetensors file another tool wrote?); give a file `vom train --export` wrote, or a shipped "
                      f"model's name")


def load_model(name_or_path: str | os.PathLike = "default", device: str | torch.device = "cpu") -> HSTSG:
    """Build the network named in the file's metadata, load its weights (as float32), eval mode, on `device`."""
    from safetensors.torch import load_file

    path = weights_path(name_or_path)
    meta = read_weights_metadata(path)
    config = meta.get("config")
    if config is None:
        raise not_vom_weights(path)
    if config not in CONFIGS:
        raise InputError(
            f"weights file {str(path)!r} names model config {config!r}: expected one of {', '.join(CONFIGS)}"
        )
    with torch.random.fork_rng(devices=[]):  # the layers' random initial weights, replaced below, draw from a fork:
        model = build_model(config)  # a host's seeded torch RNG was moved by every render (QA)
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors' own checks, beyond the header's (a file changed since it was read)
        raise InputError(f"weights file {str(path)!r} is not a readable safetensors file ({e})") from None
    # trained before the learned edge refinement (then the plain guided filter) or the detail module (then the
    # decoder's alpha is published as it is)
    drop_modules(model, lacking_modules(model, state))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state) - OPTIONAL_TENSORS)
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        )
        raise InputError(f"weights file {str(path)!r} does not fit model config {config!r} ({detail})")
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    try:  # a file without output_levels gets the identity levels, without decoder.guided the config's filter
        model.load_state_dict(state)
    except ValueError as e:  # Decoder._sync_guided
        raise InputError(f"weights file {str(path)!r}: {e}") from None
    lo, hi = (float(v) for v in model.output_levels)
    if not (0.0 <= lo < hi <= 1.0):
        raise InputError(f"weights file {str(path)!r}: output_levels [{lo:g}, {hi:g}]; expected 0 <= lo < hi <= 1")
    threshold = float(model.memory_mask)
    if not 0.0 <= threshold < 1.0:
        raise InputError(f"weights file {str(path)!r}: memory_mask {threshold:g}; expected 0 (soft) <= t < 1")
    bonus = float(model.keyframe_bonus)
    if not 0.0 <= bonus <= MAX_KEYFRAME_BONUS:
        raise InputError(f"weights file {str(path)!r}: keyframe_bonus {bonus:g}; expected 0 <= b <= "
                         f"{MAX_KEYFRAME_BONUS:g}")
    return model.eval().to(device)
