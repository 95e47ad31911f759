"""Weights files loaded and prepared for inference, and the identity of their weights (which the cache's
addresses and every output's ``vom:weights`` stamp name)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any


def model_identity(model: Any) -> str:
    """A digest of the weights themselves: renamed or copied checkpoints share their cache entries."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(getattr(getattr(model, "config", None), "name", type(model).__name__)).encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def network_revision(config: str) -> dict[str, int]:
    """How a configuration's network computes beyond its weights, where that changed: lite2's "same"-windowed
    stride-2 convolutions lost their windows when BatchNorm was folded into them (plain convolutions) before session
    56, so what those renders cached, and wrote, is another network's. In the cache's addresses and every output's
    ``vom:settings`` (``vom farm check`` fails an earlier lite2 frame); none for lite and full, whose caches and
    outputs stay valid."""
    return {"lite2_fold": 2} if config == "lite2" else {}


class LoadedModels:
    """Weights files loaded and prepared for inference, kept for the next render (a ``vom worker``'s): a file
    is loaded again when it changes on disk (another inode, size, modification or change time: a copy that
    keeps the old modification time, ``cp -p`` or ``rsync -t --inplace`` over it, still moves the change
    time, which nobody can set)."""

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self._models: OrderedDict[tuple, tuple[Any, str]] = OrderedDict()

    def get(self, name: str, device: Any) -> tuple[Any, str]:
        """(the prepared model, the identity of its weights as stored); InputError as ``load_model`` raises."""
        from vom_plugin.engine.propagate import adopt_for_inference
        from vom_plugin.engine.weights import load_model, weights_path

        path = weights_path(name)
        try:
            st = path.stat()
            key: tuple | None = (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                                  str(device))
        except OSError:
            key = None  # load_model names the missing file
        if key is not None and key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        model = load_model(name, device=device)
        model.eval()
        model_id = model_identity(model)  # of the weights as stored, before BatchNorm is folded
        got = (adopt_for_inference(model, device), model_id)  # this load is ours: prepared in place, not copied
        if key is not None:
            self._models[key] = got
            while len(self._models) > self.keep:
                self._models.popitem(last=False)
        return got
