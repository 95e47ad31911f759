"""A digest of a file's bytes: a matte's ``vom:plate``, a shot's recipe, and the output guard's check that a matte
was made from the very plate frame a render reads. Bottom layer: stdlib only."""

from __future__ import annotations

import hashlib
import os


def content_digest(path: str | os.PathLike[str]) -> str:
    """A digest of a file's bytes (no name, no times: a synced copy has the same)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
