"""Errors that cross layers. The CLI maps them to exit codes (DESIGN: 0 done, 2 bad input, 1 internal)."""

from __future__ import annotations


class VomError(Exception):
    """Base class of every error vom raises on purpose."""

    exit_code = 1


class InputError(VomError):
    """Bad input from the user: a file, frame, field or flag. The message names it and says what was expected."""

    exit_code = 2


class CancelledError(VomError):
    """The user or the host stopped the job (SIGINT/SIGTERM); what was written so far is complete."""

    exit_code = 130
