"""A weights file's safetensors header, read without torch: a render refuses a missing or foreign weights file
before it spends a second or two importing torch (``engine.prepare``); ``weights.load_model`` reads it too."""

from __future__ import annotations

import os
from pathlib import Path

from vom_plugin.engine.safetensors_header import BadHeader, read_file_header
from vom_plugin.errors import InputError


def read_weights_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a weights file; InputError naming it if it is missing or not a safetensors file.

    safetensors: an 8-byte little-endian header length, then that many bytes of JSON (an object of tensor
    entries and an optional ``__metadata__`` object of strings), then the tensors' bytes. The header is parsed as
    the cache's entries are (``safetensors_header.read_header``); here the tensors must also end where the file does."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"weights file {str(path)!r} is a folder: expected a .safetensors file written by vom")
    if path.exists() and not path.is_file():  # /dev/null, a FIFO: it exists (QA: "does not exist")
        raise InputError(f"weights file {str(path)!r} is not a regular file: expected a .safetensors file written by "
                         f"vom")
    if not path.is_file():
        from vom_plugin.locations import MODEL_ALIASES, weights_dir

        where = " (the folder VOM_WEIGHTS_DIR names)" if os.environ.get("VOM_WEIGHTS_DIR", "").strip() and \
            path.parent == weights_dir() else ""
        # a misspelt shipped name (litee) reads as a path in the working folder: say the names too (QA), those
        # whose files are here (full is a configuration vom can train; no weights of it ship)
        shipped = [n for n, f in MODEL_ALIASES.items() if (weights_dir() / f"{f}.safetensors").is_file()]
        if path.parent == weights_dir() and path.stem in MODEL_ALIASES.values():
            names = " or ".join(repr(n) for n, f in MODEL_ALIASES.items() if f == path.stem)  # default is lite
            raise InputError(f"model {names}: weights file {str(path)!r}{where} does not exist: no weights of it "
                             f"are installed (shipped here: {', '.join(shipped) or 'none'}); or give the path of a "
                             f".safetensors checkpoint")
        listed = f" ({', '.join(shipped)})" if shipped else ""
        names = "" if path.suffix == ".safetensors" else f", or a shipped model's name{listed}"
        raise InputError(f"weights file {str(path)!r}{where} does not exist: expected a .safetensors file written by "
                         f"vom{names}")
    what = f"weights file {str(path)!r} is not a readable safetensors file"
    if path.suffix.lower() in (".pt", ".pth", ".ckpt"):  # vom train's checkpoints (last.pt, best.pt) are no weights
        what += f" (a training checkpoint? export its weights: vom train --export {path} --to WEIGHTS.safetensors)"
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            header, n = read_file_header(f)
    except OSError as e:
        raise InputError(f"{what} ({e.strerror or e})") from None
    except BadHeader as e:
        raise InputError(f"{what} ({e})") from None
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise InputError(f"{what} (its header is not a safetensors header)")
    ends = [_data_end(entry) for name, entry in header.items() if name != "__metadata__"]
    if None in ends:
        raise InputError(f"{what} (its header is not a safetensors header)")
    if max(ends, default=0) != size - 8 - n:  # a file cut short (a copy that did not finish) or with bytes added
        raise InputError(f"{what} (its tensors need {max(ends, default=0)} bytes after the header, the file holds "
                         f"{size - 8 - n}: truncated or damaged)")
    return dict(meta)


def _data_end(entry: object) -> int | None:
    """Where a tensor entry's bytes end, None when it is not a tensor entry."""
    offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(x) is int for x in offsets)
            or not 0 <= offsets[0] <= offsets[1]):
        return None
    return offsets[1]
