"""File names for exported plans: a pattern of fields filled in and made safe for any disk."""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping

from ketadesk.core.errors import UserFacingError

DEFAULT_FILE_PATTERN = "{mrn}_plan_v{version}.pdf"  # no patient name: folders get listed
#: Fields a file-name pattern may use.
FILE_PATTERN_FIELDS = ("last_name", "first_name", "mrn", "version", "plan_id", "date")
_MAX_FILE_NAME = 150
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
_UNSAFE_IN_NAME = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')


def _safe_part(text: str) -> str:
    cleaned = _UNSAFE_IN_NAME.sub("_", unicodedata.normalize("NFC", text))
    return re.sub(r"\s+", "_", cleaned.strip())


def check_file_pattern(pattern: str) -> None:
    """Raise UserFacingError unless ``pattern`` only uses :data:`FILE_PATTERN_FIELDS`."""
    if not pattern.strip():
        raise UserFacingError("Enter a file-name pattern, e.g. " + DEFAULT_FILE_PATTERN)
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError:
        raise UserFacingError(
            "The file-name pattern has an unmatched { or }; use fields like {mrn}."
        ) from None
    allowed = ", ".join("{" + name + "}" for name in FILE_PATTERN_FIELDS)
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in FILE_PATTERN_FIELDS or spec or conversion:
            raise UserFacingError(
                f"The file-name pattern can use only these fields: {allowed}."
            )


def plan_file_name(pattern: str, values: Mapping[str, str]) -> str:
    """Fill ``pattern`` with ``values`` and make the result a safe file name ending in .pdf.

    Path separators, characters Windows forbids and control characters become "_", so a name
    can never leave the chosen folder; reserved device names and leading dots are defused.
    """
    check_file_pattern(pattern)
    filled = pattern.format(**{k: _safe_part(v) for k, v in values.items()})
    name = _safe_part(filled).lstrip(".").rstrip(". ")
    if name.lower().endswith(".pdf"):
        name = name[:-4].rstrip(". ")
    if not name or name.split(".")[0].upper() in _WINDOWS_RESERVED:
        name = f"plan_{name}"
    return name[: _MAX_FILE_NAME - 4] + ".pdf"


def unique_file_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name_2.pdf``, ``name_3.pdf`` ... when already in ``taken`` (ignoring case);
    the name returned is added to ``taken``."""
    candidate, n = name, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{name[:-4]}_{n}.pdf"
    taken.add(candidate.casefold())
    return candidate
