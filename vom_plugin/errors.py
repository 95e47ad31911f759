"""Errors that cross layers. The CLI maps them to exit codes (DESIGN: 0 done, 2 bad input, 1 internal)."""

from __future__ import annotations

import errno
from typing import TypeGuard


class VomError(Exception):
    """Base class of every error vom raises on purpose."""

    exit_code = 1


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
