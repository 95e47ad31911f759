"""One cache entry on disk: a safetensors file that says it is vom's and carries a digest of its tensors.

The header's metadata holds ``vom_cache`` (the entry format: the marker by which ``vom cache clear`` and
eviction recognise what vom wrote) and ``digest``: a BLAKE2b digest of the entry's address (the name the
runner looks it up by) and every tensor's name, dtype, shape and bytes. A reader recomputes it, so a
truncated file, a flipped byte behind an intact header, or a valid entry copied to another entry's name
is a miss, never a wrong matte. With ``VOM_CACHE_KEY`` set (the same secret on every worker of a shared
farm cache), the digest is keyed: whoever can write to the cache but does not know the key cannot forge
an entry either.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any

FORMAT = "vom-cache-1"
MARKER = "vom_cache"
_MAX_HEADER = 1 << 24  # a header is a few kB; a length beyond this is garbage, not a reason to allocate


class BadEntry(Exception):
    """The bytes are not a valid vom cache entry for this address (the message says why)."""


def _key() -> bytes:
    secret = os.environ.get("VOM_CACHE_KEY", "")
    return hashlib.blake2b(secret.encode(), digest_size=32).digest() if secret else b""


def tensor_digest(address: str, tensors: dict[str, Any]) -> str:
    import torch

    h = hashlib.blake2b(digest_size=32, key=_key())
    h.update(json.dumps([FORMAT, address]).encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return h.hexdigest()


def encode(address: str, tensors: dict[str, Any]) -> bytes:
    """The bytes of an entry holding ``tensors`` under ``address``."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return save(tensors, metadata={MARKER: FORMAT, "digest": tensor_digest(address, tensors)})


def read_header(data: bytes) -> dict[str, Any]:
    """The safetensors JSON header at the start of ``data``; BadEntry when there is none."""
    if len(data) < 8:
        raise BadEntry(f"{len(data)} bytes: shorter than a header")
    n = int.from_bytes(data[:8], "little")
    if n < 2 or n > _MAX_HEADER or 8 + n > len(data):
        raise BadEntry(f"header length {n} does not fit the {len(data)} bytes")
    try:
        header = json.loads(data[8 : 8 + n])
    except ValueError:
        raise BadEntry("header is not JSON") from None
    if not isinstance(header, dict):
        raise BadEntry("header is not a JSON object")
    return header


def is_marked(header: dict[str, Any]) -> bool:
    meta = header.get("__metadata__")
    return isinstance(meta, dict) and str(meta.get(MARKER, "")).startswith("vom-cache-")


def decode(address: str, data: bytes) -> dict[str, Any]:
    """The tensors of an entry, verified against ``address``; BadEntry when anything does not match."""
    from safetensors.torch import load

    meta = read_header(data).get("__metadata__")
    if not isinstance(meta, dict) or meta.get(MARKER) != FORMAT:
        raise BadEntry("no vom cache marker of this version")
    try:
        # clone(): tensors loaded from bytes sit at whatever offset the header left them, and torch's
        # vectorised CPU kernels round differently on unaligned data; fresh storage is aligned, so a
        # resumed render computes bit-identically to an uninterrupted one.
        tensors = {k: v.clone() for k, v in load(data).items()}
    except Exception as e:  # safetensors raises its own error types for every malformation
        raise BadEntry(f"tensors do not load ({e})") from None
    if not hmac.compare_digest(str(meta.get("digest", "")), tensor_digest(address, tensors)):
        raise BadEntry("digest does not match its tensors")
    return tensors


def file_is_marked(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a regular file (not a link) that starts with a vom cache entry header."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False
    try:
        if not _is_regular(fd):
            return False
        with os.fdopen(os.dup(fd), "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return False
            n = int.from_bytes(head, "little")
            if n < 2 or n > _MAX_HEADER:
                return False
            header = read_header(head + f.read(n))
    except (OSError, BadEntry):
        return False
    finally:
        os.close(fd)
    return is_marked(header)


def _is_regular(fd: int) -> bool:
    import stat

    return stat.S_ISREG(os.fstat(fd).st_mode)
