"""A digest of a file's bytes: a matte's ``vom:plate``, a shot's recipe, and the output guard's check that a matte
was made from the very plate frame a render reads; ``build_id``, of vom's own code. Bottom layer: stdlib only at import
(``build_id`` asks ``nodedef`` which files are vom's code)."""

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


def short_digest(digest: str) -> str:
    """A digest as messages name it (its first 12 hex digits): ``vom farm check``'s "a file of digest ..." and ``vom
    info --model``'s ``file_digest``, so a TD finds the one in the other."""
    return digest[:12]


def build_id() -> str:
    """A digest of vom's own code as installed (its modules' and node definitions' bytes, by name): what tells two
    builds of one version apart (an editable install updated by a checkout, a farm mid-rollout), the same on every
    machine that has those files. Read once a process (about 5 ms)."""
    global _BUILD
    if _BUILD is None:
        from vom_plugin.locations import PACKAGE_DIR
        from vom_plugin.nodedef import code_files

        h = hashlib.blake2b(digest_size=6)
        for f in code_files():
            try:
                data = f.read_bytes()
            except OSError:
                continue
            h.update(f"{f.relative_to(f.parent.parent if f.suffix == '.yaml' else PACKAGE_DIR).as_posix()}\0"
                     f"{len(data)}\0".encode())
            h.update(data)
        _BUILD = h.hexdigest()
    return _BUILD


_BUILD: str | None = None
