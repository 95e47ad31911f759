"""Errors that cross layers. The CLI maps them to exit codes (DESIGN: 0 done, 2 bad input, 1 internal)."""

from __future__ import annotations

import errno
import re
from typing import TYPE_CHECKING, TypeGuard

if TYPE_CHECKING:
    from vom_plugin.engine.passes import RenderResult


class VomError(Exception):
    """Base class of every error vom raises on purpose. ``lines``: its message is several lines by design (a
    traceback), printed as they are; others are printed on one line (``one_line``). ``render_result``: the frames
    complete on disk where a render raised it once it had begun; an empty RenderResult (no frame, no file) where it
    came before."""

    exit_code = 1
    lines = False
    _render_result: RenderResult | None = None
    _empty: RenderResult | None = None

    @property
    def render_result(self) -> RenderResult:
        # always there (QA: declared so, it was absent before a render began; review: None broke `hasattr` code);
        # the empty one is not stored as attached (reading it changes nothing attached_result says)
        if self._render_result is not None:
            return self._render_result
        if self._empty is None:
            from vom_plugin.engine.passes import RenderResult

            self._empty = RenderResult()
        return self._empty

    @render_result.setter
    def render_result(self, result: RenderResult) -> None:
        self._render_result = result

    @render_result.deleter
    def render_result(self) -> None:
        self._render_result = None


def attached_result(e: BaseException) -> RenderResult | None:
    """The RenderResult a render attached to ``e`` (any exception), or None where none was (a VomError's empty
    default is not one; a subclass that declared its own ``render_result`` attribute holds it in its dict)."""
    own = getattr(e, "__dict__", {}).get("render_result")
    if own is not None:
        return own
    return e._render_result if isinstance(e, VomError) else getattr(e, "render_result", None)


class InputError(VomError):
    """Bad input from the user: a file, frame, field or flag. The message names it and says what was expected."""

    exit_code = 2


class CancelledError(VomError):
    """The user or the host stopped the job (SIGINT/SIGTERM); what was written so far is complete. ``by``: what
    stopped it (a signal's name), where known."""

    exit_code = 130

    def __init__(self, message: str = "", by: str | None = None) -> None:
        super().__init__(message)
        self.by = by


# what an OSError about a file the user named means (exit 2, said, no traceback unless VOM_TRACEBACK=1)
USERS_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                          errno.EISDIR, errno.EEXIST, errno.ENOENT, errno.ENAMETOOLONG, errno.ELOOP, errno.EIO})


def users_file_error(e: BaseException) -> TypeGuard[OSError]:
    """Whether ``e`` says a file or folder the user named cannot be made, read or written (a bad --out, a full disk,
    a read-only mount, a plate moved away): the user's to fix, not a bug to report."""
    return isinstance(e, OSError) and bool(e.filename) and e.errno in USERS_ERRNOS


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(text: object) -> str:
    """``text`` (a message, a path) with its control characters escaped as Python writes them (a newline as \\n, an
    escape as \\x1b): a path holding a newline broke a closing line in two, and on a farm forged an
    ``openjd_fail:`` line the task's session took for its own; an escape sequence reached the terminal (QA)."""
    return _CONTROL.sub(lambda m: repr(m.group(0))[1:-1], str(text))


def os_error_text(e: OSError) -> str:
    """An OSError as vom says one: ``path: reason`` (``a -> b: reason`` for a rename), not ``[Errno 2] ...``."""
    where = e.filename if not e.filename2 else f"{e.filename} -> {e.filename2}"
    reason = e.strerror or str(e)
    return f"{where}: {reason}" if where else reason


def json_error(message: str, code: int, kind: str) -> dict[str, object]:
    """A failing ``--json`` command's object on stdout, what a pipeline parses: ``{"error", "exit_code", "kind"}``."""
    return {"error": message, "exit_code": code, "kind": kind}
