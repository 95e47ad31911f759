"""One cache entry on disk: a safetensors file that says it is vom's and carries a digest of its tensors.

The header's metadata holds ``vom_cache`` (the entry format: the marker by which ``vom cache clear`` and
eviction recognise what vom wrote) and ``digest``: a BLAKE2b digest of the entry's address (the name the
runner looks it up by) and every tensor's name, dtype, shape and bytes. A reader recomputes it, so a
truncated file, a flipped byte behind an intact header, or a valid entry copied to another entry's name
is a miss, never a wrong matte. With ``VOM_CACHE_KEY`` set (the same secret on every worker of a shared
farm cache), the digest is keyed: whoever can write to the cache but does not know the key cannot forge
an entry either.

Tensors that shrink by at least 40% under zlib (a matte's runs of 0 and 1, softmax weights) are
stored compressed: a uint8 tensor of the deflated bytes, with its dtype and shape in the header's ``zlib``
field. Compression is lossless and the digest covers the restored tensors.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

FORMAT = "vom-cache-2"
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


_ZLIB_LEVEL = 1  # fast: the writer thread runs beside the render; higher levels gained a few percent
_WORTH = 0.6  # deflate a tensor when that leaves at most this fraction of its bytes
_DTYPES = ("float32", "float16", "bfloat16", "int64", "int32", "int16", "uint8", "int8", "bool")


def _deflate(raw: bytes) -> bytes | None:
    """``raw`` deflated when that saves at least 40%, else None. Below that, inflating on every read costs
    more than the bytes are worth (half-precision features save ~28% and take 4x longer to read back);
    mattes (~80%) and softmax weights (~50%) pay. Buffers over 256 kB are judged by a 64 kB sample first:
    a memory state's keys (tens of MB) and a frame's key features barely compress, and trying cost more
    than writing them (a 480x270 frame's features: 22 ms to encode, 2 ms without the futile deflate)."""
    sample = 1 << 16
    if len(raw) > 4 * sample:
        probe = raw[len(raw) // 2 : len(raw) // 2 + sample]
        if len(zlib.compress(probe, _ZLIB_LEVEL)) > _WORTH * 1.1 * len(probe):
            return None
    small = zlib.compress(raw, _ZLIB_LEVEL)
    return small if len(small) <= _WORTH * len(raw) else None


def encode(address: str, tensors: dict[str, Any], *, compress: bool | Callable[[str], bool] = True) -> bytes:
    """The bytes of an entry holding ``tensors`` under ``address``, each deflated where that pays if
    ``compress`` (True, False, or a test of the tensor's name)."""
    import torch
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    stored, packed = {}, {}
    for name, t in tensors.items():
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        small = _deflate(raw) if (compress(name) if callable(compress) else compress) else None
        if small is not None and str(t.dtype).removeprefix("torch.") in _DTYPES:
            stored[name] = torch.frombuffer(bytearray(small), dtype=torch.uint8)
            packed[name] = [str(t.dtype).removeprefix("torch."), list(t.shape)]
        else:
            stored[name] = t
    meta = {MARKER: FORMAT, "digest": tensor_digest(address, tensors)}
    if packed:
        meta["zlib"] = json.dumps(packed, sort_keys=True)
    return save(stored, metadata=meta)


def _unpack(name: str, t: Any, spec: Any) -> Any:
    """A stored uint8 tensor of deflated bytes -> the tensor ``spec`` ([dtype, shape]) describes."""
    import math

    import torch

    if (not isinstance(spec, list) or len(spec) != 2 or spec[0] not in _DTYPES or not isinstance(spec[1], list)
            or not all(isinstance(n, int) and n >= 0 for n in spec[1])):
        raise BadEntry(f"tensor {name!r}: bad zlib description {spec!r}")
    dtype = getattr(torch, spec[0])
    size = math.prod(spec[1]) * torch.empty(0, dtype=dtype).element_size()
    if t.dtype != torch.uint8 or t.dim() != 1:
        raise BadEntry(f"tensor {name!r}: compressed data is not a byte vector")
    inflate = zlib.decompressobj()
    try:  # never more than the described size: a small entry cannot claim gigabytes
        raw = inflate.decompress(t.numpy().tobytes(), size + 1)
    except zlib.error as e:
        raise BadEntry(f"tensor {name!r} does not decompress ({e})") from None
    if len(raw) != size or not inflate.eof:
        raise BadEntry(f"tensor {name!r}: {len(raw)} bytes decompressed, its shape {spec[1]} needs {size}")
    out = torch.empty(spec[1], dtype=dtype)  # aligned storage of torch's own (see decode)
    if size:
        out.reshape(-1).view(torch.uint8).numpy()[:] = np.frombuffer(raw, np.uint8)
    return out


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


_ST_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
              "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def _tensors(data: bytes, header: dict[str, Any]) -> dict[str, Any]:
    """The safetensors tensors of ``data``, each copied once into fresh storage of torch's own: tensors
    viewed in place sit at whatever offset the header left them, and torch's vectorised CPU kernels round
    differently on unaligned data, so a resumed render computes bit-identically to an uninterrupted one.
    Every name, dtype, shape and offset is checked before anything is allocated."""
    import math

    import torch

    base = 8 + int.from_bytes(data[:8], "little")
    body = len(data) - base
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(spec, dict) or spec.get("dtype") not in _ST_DTYPES:
            raise BadEntry(f"tensor {name!r}: no dtype this version reads")
        shape, offsets = spec.get("shape"), spec.get("data_offsets")
        if (not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape)
                or not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(n, int) for n in offsets) or not 0 <= offsets[0] <= offsets[1] <= body):
            raise BadEntry(f"tensor {name!r}: bad shape or offsets")
        dtype = getattr(torch, _ST_DTYPES[spec["dtype"]])
        size = math.prod(shape) * torch.empty(0, dtype=dtype).element_size()
        if offsets[1] - offsets[0] != size:
            raise BadEntry(f"tensor {name!r}: {offsets[1] - offsets[0]} bytes for shape {shape}")
        t = torch.empty(shape, dtype=dtype)
        if size:
            t.reshape(-1).view(torch.uint8).numpy()[:] = np.frombuffer(data, np.uint8, size, base + offsets[0])
        out[name] = t
    return out


def decode(address: str, data: bytes) -> dict[str, Any]:
    """The tensors of an entry, verified against ``address``; BadEntry when anything does not match."""
    header = read_header(data)
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get(MARKER) != FORMAT:
        raise BadEntry("no vom cache marker of this version")
    packed: Any = {}
    if "zlib" in meta:
        try:
            packed = json.loads(meta["zlib"])
        except (TypeError, ValueError):
            raise BadEntry("zlib field is not JSON") from None
        if not isinstance(packed, dict):
            raise BadEntry("zlib field is not a JSON object")
    tensors = _tensors(data, header)
    if not set(packed) <= set(tensors):
        raise BadEntry("zlib field names tensors the entry does not hold")
    tensors.update({k: _unpack(k, tensors[k], spec) for k, spec in packed.items()})
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
