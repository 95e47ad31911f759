"""One cache entry on disk: a safetensors file that says it is vom's and carries a digest of its tensors.

The header's metadata holds ``vom_cache`` (the entry format: the marker by which ``vom cache clear`` and
eviction recognise what vom wrote) and ``digest``: a BLAKE2b digest of the entry's address (the name the
runner looks it up by), the compression's description and every stored tensor's name, dtype, shape and bytes.
A reader recomputes it before it decompresses anything, so a
truncated file, a flipped byte behind an intact header, or a valid entry copied to another entry's name
is a miss, never a wrong matte. With ``VOM_CACHE_KEY`` set (the same secret on every worker of a shared
farm cache), the digest is keyed: whoever can write to the cache but does not know the key cannot forge
an entry either.

Tensors that shrink by at least 10% under zstd (a matte's runs of 0 and 1, softmax weights, 8-bit feature
codes) are stored compressed: a uint8 tensor of the compressed bytes, with its dtype and shape in the header's
``zstd`` field. Images of 8-bit codes (a frame's key features) can be stored as each code's difference from its
left neighbour (``delta``; PNG's "sub" filter, stored last axis first), which zstd's entropy coder shrinks
further: neighbouring codes are close. Compression is lossless; the digest covers the bytes as stored with
their description, which fix the restored tensors, so nothing unverified reaches the decompressor.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable, Collection
from typing import Any

import numpy as np
import zstandard

from vom_plugin.engine.safetensors_header import BadHeader, read_file_header
from vom_plugin.engine.safetensors_header import read_header as _read_header
from vom_plugin.errors import InputError

FORMAT = "vom-cache-3"  # 2: zlib-deflated tensors
MARKER = "vom_cache"


class BadEntry(Exception):
    """The bytes are not a valid vom cache entry for this address (the message says why)."""


class OtherKey(BadEntry):
    """A sound entry signed under another ``VOM_CACHE_KEY`` (or none): a miss here, but another worker's
    valid entry, so it is not deleted. ``signed``: whether a key signed it (then it is not written over either:
    the keyed workers' entries stand; an unkeyed one is replaced, so a farm that turns the key on re-keys it)."""

    def __init__(self, message: str, *, signed: bool) -> None:
        super().__init__(message)
        self.signed = signed


def _key() -> bytes:
    secret = os.environ.get("VOM_CACHE_KEY", "")
    if secret and not secret.strip():  # a key of spaces (a template's unset variable) signs as well as any other
        raise InputError("VOM_CACHE_KEY is blank (spaces only): set the farm's secret, or leave it empty for no key")
    return hashlib.blake2b(secret.encode(), digest_size=32).digest() if secret else b""


def key_id() -> str:
    """Which ``VOM_CACHE_KEY`` signs entries written here, as the header's ``key`` field says it: "" for none,
    else a short keyed digest of a constant (it tells keys apart; it reveals no more of the secret than an
    entry's digest already does)."""
    key = _key()
    return hashlib.blake2b(b"vom-cache-key-id", digest_size=6, key=key).hexdigest() if key else ""


def tensor_digest(address: str, tensors: dict[str, Any], packed: str = "") -> str:
    """The digest of an entry at ``address`` holding ``tensors`` as stored, ``packed`` the header's ``zstd``
    field (the JSON that says how to restore them; empty when nothing is compressed)."""
    import torch

    h = hashlib.blake2b(digest_size=32, key=_key())
    h.update(json.dumps([FORMAT, address, packed]).encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return h.hexdigest()


_LEVEL = 1  # fast: the writer thread runs beside the render; higher levels gained little on features and mattes
_WORTH = 0.9  # compress a tensor when that leaves at most this fraction of its bytes
_DTYPES = ("float32", "float16", "bfloat16", "int64", "int32", "int16", "uint8", "int8", "bool")
DELTA = "delta"


def _compress(raw: bytes) -> bytes | None:
    """``raw`` compressed when that saves at least 10%, else None. zstd reads back fast enough that even
    softmax weights that shrink a little pay for their decompression;
    buffers over 256 kB are judged by a 64 kB sample first (a memory state's keys barely shrink)."""
    sample = 1 << 16
    cctx = zstandard.ZstdCompressor(level=_LEVEL)  # one per call: a context is not shared between threads
    if len(raw) > 4 * sample:
        probe = raw[len(raw) // 2 : len(raw) // 2 + sample]
        if len(cctx.compress(probe)) > _WORTH * 1.05 * len(probe):
            return None
    small = cctx.compress(raw)
    return small if len(small) <= _WORTH * len(raw) else None


def _delta(t: Any) -> Any:
    """uint8 codes -> each one's difference from its left neighbour along the last axis, modulo 256, laid out
    with that axis first (see ``_undelta``)."""
    a = t.numpy()
    return np.ascontiguousarray(np.moveaxis(np.diff(a, axis=-1, prepend=np.zeros_like(a[..., :1])), -1, 0))


def _undelta(diffs: np.ndarray, out: np.ndarray) -> None:
    """``_delta``'s differences (last axis first) -> the codes, into ``out`` (the tensor's shape): a running sum,
    one vector add per column. numpy, not torch: the cache's reader runs beside the render, and a torch kernel
    called from a second thread starts a second OpenMP team on the cores the render's team is using (torch's
    cumsum there slowed the demo's re-render by a fifth)."""
    for x in range(1, diffs.shape[0]):
        np.add(diffs[x], diffs[x - 1], out=diffs[x])  # uint8: modulo 256
    np.copyto(out, np.moveaxis(diffs, 0, -1))


def encode(address: str, tensors: dict[str, Any], *, compress: bool | Callable[[str], bool] = True,
           delta: Collection[str] = ()) -> bytes:
    """The bytes of an entry holding ``tensors`` under ``address``, each compressed where that pays if
    ``compress`` (True, False, or a test of the tensor's name); the uint8 tensors named in ``delta`` are
    compressed as differences along their last axis (images of codes, whose neighbours are close)."""
    import torch

    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    stored, packed = {}, {}
    for name, t in tensors.items():
        filtered = name in delta and t.dtype == torch.uint8 and t.dim() >= 1 and t.numel() > 0
        if not (compress(name) if callable(compress) else compress) or not t.numel() \
                or str(t.dtype).removeprefix("torch.") not in _DTYPES:
            stored[name] = t
            continue
        raw = _delta(t).tobytes() if filtered else t.reshape(-1).view(torch.uint8).numpy().tobytes()
        small = _compress(raw)
        if small is None:
            stored[name] = t
            continue
        stored[name] = torch.frombuffer(bytearray(small), dtype=torch.uint8)
        packed[name] = [str(t.dtype).removeprefix("torch."), list(t.shape)] + ([DELTA] if filtered else [])
    description = json.dumps(packed, sort_keys=True) if packed else ""
    meta = {MARKER: FORMAT, "digest": tensor_digest(address, stored, description), "key": key_id()}
    if packed:
        meta["zstd"] = description
    return _safetensors_bytes(stored, meta)


def _safetensors_bytes(tensors: dict[str, Any], metadata: dict[str, str]) -> bytes:
    """The safetensors file of ``tensors`` (CPU, contiguous) with ``metadata``, as the format has it: the header's
    length (8 bytes, little-endian), the JSON header padded with spaces to 8 bytes, the tensors' bytes one after
    another. Written here, not by ``safetensors.torch.save``: that makes a ctypes array type of each tensor's byte
    length and keeps it for good, and compressed blobs are all of other lengths, so a long-lived process (the worker,
    a host calling render() in a loop) grew by ~6.5 kB for every entry it wrote (QA)."""
    import struct

    import torch

    header: dict[str, Any] = {"__metadata__": metadata}
    chunks, offset = [], 0
    # the widest elements first, as safetensors orders them: every tensor then starts on a multiple of its size
    for name in sorted(tensors, key=lambda n: (-tensors[n].element_size(), n)):
        t = tensors[name]
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _ST_NAMES[str(t.dtype).removeprefix("torch.")], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return b"".join([struct.pack("<Q", len(text)), text, *chunks])


def _unpack(name: str, t: Any, spec: Any) -> Any:
    """A stored uint8 tensor of compressed bytes -> the tensor ``spec`` ([dtype, shape] or [dtype, shape,
    "delta"]) describes."""
    import math

    import torch

    if (not isinstance(spec, list) or len(spec) not in (2, 3) or spec[0] not in _DTYPES
            or not isinstance(spec[1], list) or not all(isinstance(n, int) and n >= 0 for n in spec[1])
            or (len(spec) == 3 and (spec[2] != DELTA or spec[0] != "uint8" or not spec[1]))):
        raise BadEntry(f"tensor {name!r}: bad zstd description {spec!r}")
    dtype = getattr(torch, spec[0])
    size = math.prod(spec[1]) * torch.empty(0, dtype=dtype).element_size()
    if t.dtype != torch.uint8 or t.dim() != 1:
        raise BadEntry(f"tensor {name!r}: compressed data is not a byte vector")
    blob = t.numpy().tobytes()
    try:
        # the frame states its size, checked before anything is allocated: a small entry cannot claim gigabytes
        # (one-shot decompression then writes exactly that many bytes: faster than a streaming object)
        claimed = zstandard.frame_content_size(blob)
        if claimed != size:
            raise BadEntry(f"tensor {name!r}: {claimed} bytes compressed, its shape {spec[1]} needs {size}")
        raw = zstandard.ZstdDecompressor().decompress(blob) if size else b""
    except zstandard.ZstdError as e:
        raise BadEntry(f"tensor {name!r} does not decompress ({e})") from None
    if len(raw) != size:
        raise BadEntry(f"tensor {name!r}: {len(raw)} bytes decompressed, its shape {spec[1]} needs {size}")
    out = torch.empty(spec[1], dtype=dtype)  # aligned storage of torch's own (see decode)
    if size:
        if len(spec) == 3:  # differences along the last axis back to codes: a running sum modulo 256
            shape = spec[1]
            diffs = np.frombuffer(bytearray(raw), np.uint8).reshape(shape[-1], *shape[:-1])
            _undelta(diffs, out.numpy())
        else:
            out.reshape(-1).view(torch.uint8).numpy()[:] = np.frombuffer(raw, np.uint8)
    return out


def read_header(data: bytes) -> dict[str, Any]:
    """The safetensors JSON header at the start of ``data``; BadEntry when there is none."""
    try:
        return _read_header(data)
    except BadHeader as e:
        raise BadEntry(str(e)) from None


def is_marked(header: dict[str, Any]) -> bool:
    meta = header.get("__metadata__")
    return isinstance(meta, dict) and str(meta.get(MARKER, "")).startswith("vom-cache-")


_ST_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
              "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}
_ST_NAMES = {v: k for k, v in _ST_DTYPES.items()}


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
    description = meta.get("zstd", "")
    if not isinstance(description, str):
        raise BadEntry("zstd field is not text")
    theirs, ours = meta.get("key"), key_id()
    if isinstance(theirs, str) and theirs != ours:  # entries from before the field have none: the digest decides
        raise OtherKey("signed with another VOM_CACHE_KEY" if theirs and ours else
                       "signed with a VOM_CACHE_KEY, which is not set here" if theirs else
                       "written without VOM_CACHE_KEY, which is set here", signed=bool(theirs))
    tensors = _tensors(data, header)
    # verified as stored, before anything is decompressed
    if not hmac.compare_digest(str(meta.get("digest", "")), tensor_digest(address, tensors, description)):
        raise BadEntry("digest does not match its tensors")
    packed: Any = {}
    if description:
        try:
            packed = json.loads(description)
        except (ValueError, RecursionError):  # json recurses: [[[...]]] is a RecursionError
            raise BadEntry("zstd field is not JSON") from None
        if not isinstance(packed, dict):
            raise BadEntry("zstd field is not a JSON object")
    if not set(packed) <= set(tensors):
        raise BadEntry("zstd field names tensors the entry does not hold")
    tensors.update({k: _unpack(k, tensors[k], spec) for k, spec in packed.items()})
    return tensors


def _file_header(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The safetensors header of a regular file at ``path``: no link followed, no FIFO waited on; None when there
    is none."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if not _is_regular(fd):
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            header, _ = read_file_header(f)
    except (OSError, BadHeader):
        return None
    finally:
        os.close(fd)
    return header


def signed_by_another_key(path: str | os.PathLike[str]) -> bool:
    """Whether the file at ``path`` is an entry that a VOM_CACHE_KEY other than this process's signed (its header
    only): the entry of the workers that hold that key, which this one must not write over."""
    header = _file_header(path)
    meta = header.get("__metadata__") if header is not None else None
    theirs = meta.get("key") if isinstance(meta, dict) else None
    return isinstance(theirs, str) and theirs != "" and theirs != key_id()


def file_is_marked(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a regular file (not a link) that starts with a vom cache entry header."""
    header = _file_header(path)
    return header is not None and is_marked(header)


def _is_regular(fd: int) -> bool:
    import stat

    return stat.S_ISREG(os.fstat(fd).st_mode)
