"""The JSON header of a safetensors file, parsed with the standard library alone.

Both readers of vom's safetensors files use it: the cache's entries (``cache_entry``) and the weights file a
render checks before it imports torch (``weights_header``). It imports neither torch nor a compressor, so the
weights check also runs where only the training dependencies exist (a lent GPU machine has no zstandard).
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO

MAX_HEADER = 1 << 24  # a header is a few kB; a length beyond this is garbage, not a reason to allocate


class BadHeader(Exception):
    """The bytes do not start with a safetensors header (the message says why)."""


def read_header(data: bytes) -> dict[str, Any]:
    """The safetensors JSON header at the start of ``data``: an 8-byte little-endian length, then that many bytes
    of a JSON object. BadHeader when there is none."""
    if len(data) < 8:
        raise BadHeader(f"{len(data)} bytes: shorter than a header")
    n = int.from_bytes(data[:8], "little")
    if data[:4] == b"PK\x03\x04":  # what torch.save writes (a training checkpoint, last.pt)
        raise BadHeader("it is a zip archive, as torch saves a checkpoint, not a safetensors file")
    if n < 2 or n > MAX_HEADER:  # (QA: "does not fit the 16777225 bytes", the read's cap, said as the file's size)
        raise BadHeader(f"its first 8 bytes give a header length of {n}, which no safetensors header has")
    if 8 + n > len(data):
        raise BadHeader(f"its header of {n} bytes runs past its end, after {len(data)} bytes")
    try:
        header = json.loads(data[8 : 8 + n])
    except ValueError:
        raise BadHeader("header is not JSON") from None
    except RecursionError:  # json's parser recurses: a few kilobytes of [[[...]]] (QA: a traceback, exit 1)
        raise BadHeader("header nests deeper than any safetensors header") from None
    if not isinstance(header, dict):
        raise BadHeader("header is not a JSON object")
    return header


def read_file_header(f: BinaryIO) -> tuple[dict[str, Any], int]:
    """``read_header`` of an open file from its start, and the header's length: reads no more than a header can
    be, whatever length the first 8 bytes claim. BadHeader when there is none."""
    head = f.read(8)
    n = int.from_bytes(head, "little") if len(head) == 8 else 0
    return read_header(head + f.read(min(n, MAX_HEADER + 1))), n
