"""Names a scheduler accepts, made from names a user chose (a shot file's name, its folder's name).

Open Job Description evaluates ``{{ ... }}`` in a job name as a template expression, and OpenCue builds a
job's name as ``show-shot-name``, breaks on spaces, non-ASCII and hyphens in the shot, and on long names.
So a farm name keeps only ASCII letters, digits and underscores, starts with a letter, and is MIN_LENGTH (Cuebot's
rule) to MAX_LENGTH characters long; a name that had to be cut keeps a short hash of the original, so two long
shot names that share a beginning still make two job names.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_LENGTH = 48
MIN_LENGTH = 3  # Cuebot's shot names: [\w.]{3,}
MAX_DESCRIPTION = 2000  # Open Job Description allows 2048 characters
_NOT_NAME = re.compile(r"[^A-Za-z0-9_]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def farm_name(text: str, *, max_length: int = MAX_LENGTH) -> str:
    """``text`` as a job or shot name every supported scheduler accepts (deterministic)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    name = _NOT_NAME.sub("_", ascii_text).strip("_")
    if not name or not name[0].isalpha() or len(name) < MIN_LENGTH:  # OpenCue refuses a shot name under 3
        name = f"shot_{name}".rstrip("_")
    if len(name) > max_length:
        tag = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        name = f"{name[: max_length - len(tag) - 1].rstrip('_')}_{tag}"
    return name


def description(text: str) -> str:
    """Free text for a job or step description: no control characters, no template braces, bounded."""
    text = _CONTROL.sub(" ", text).replace("{{", "{ {").replace("}}", "} }")
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 3] + "..."
