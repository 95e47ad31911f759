"""What a ``vom worker`` keeps in memory between renders: the shot's plate frames, decoded and colour-converted.

A re-render after a roto edit reads every plate frame again, and in a worker these are the same files as in
the render before: kept decoded, a frame costs a lookup instead of an EXR read and a colour conversion
(a noticeable share of a re-render). A frame is looked up by its path
and its file fingerprint (size, modification time and a hash of its content: what the cache addresses are
made of), so an edited or replaced plate is a miss, read again. What is handed out is read-only.

(The cache entries a re-render reads, key features and read/CFAR weights, were tried here too and left out:
kept from the cold render, they made the next render's CFAR and gathers slower, with identical results, by
more than their reads cost.)

The memory is bounded (``VOM_WORKER_MEMO_MB``, default 2048; 0 turns it off). When it is full, frames that
the current render has not used go first, least recently used first; when only the current render's are
left, new ones are not kept: a shot longer than the memory keeps its first frames rather than cycling
through all of them and keeping none by the time the next render starts at the beginning.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

DEFAULT_MB = 2048.0


def memo_bytes_from_env() -> int:
    from vom_plugin.envvars import env_float

    return int(env_float("VOM_WORKER_MEMO_MB", DEFAULT_MB, expected="MB of memory a vom worker keeps frames in")
               * (1 << 20))


class Memo:
    """A byte-bounded, thread-safe map (see the module docstring); ``begin_render`` opens a new render."""

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = memo_bytes_from_env() if max_bytes is None else int(max_bytes)
        self._items: OrderedDict[tuple, tuple[Any, int, int]] = OrderedDict()  # key -> (value, bytes, render)
        self._render = 0
        self._lock = threading.Lock()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def begin_render(self) -> None:
        with self._lock:
            self._render += 1

    def get(self, key: tuple) -> Any | None:
        with self._lock:
            got = self._items.get(key)
            if got is None:
                self.misses += 1
                return None
            self._items[key] = (got[0], got[1], self._render)
            self._items.move_to_end(key)
            self.hits += 1
            return got[0]

    def put(self, key: tuple, value: Any, nbytes: int) -> bool:
        """Keep ``value`` (``nbytes`` large) if it fits after dropping what other renders used; True if kept.

        Keys are (kind, path, file fingerprint, ...): one drops those of its kind and path with another fingerprint,
        the file's earlier content, which no render asks for again (a plate re-delivered all day filled the memory
        with dead frames, QA)."""
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            for k in [k for k in self._items if k[:2] == key[:2] and k[2:3] != key[2:3]]:
                self.bytes -= self._items.pop(k)[1]
            if nbytes > self.max_bytes:
                return False
            while self.bytes + nbytes > self.max_bytes:
                oldest_key, (_, size, render) = next(iter(self._items.items()))
                if render == self._render:
                    return False
                del self._items[oldest_key]
                self.bytes -= size
            self._items[key] = (value, nbytes, self._render)
            self.bytes += nbytes
            return True

    def __len__(self) -> int:
        return len(self._items)
