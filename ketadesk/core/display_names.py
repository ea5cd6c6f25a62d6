"""Checks on people's names as typed (users' full names): printable text only, so a name can
never forge a line or a column in a listing, a CSV file or a terminal."""

from __future__ import annotations

import unicodedata

from ketadesk.core.errors import UserFacingError

MAX_FULL_NAME = 120
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def has_control_characters(text: str) -> bool:
    """True when ``text`` holds a control, format (e.g. right-to-left override), surrogate or
    unassigned character, or a line/paragraph separator."""
    return any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in text)


def check_full_name(full_name: str, *, whose: str = "the user's") -> str:
    """The full name, trimmed; raises a plain-words error when it cannot be used."""
    name = full_name.strip()
    if not name:
        raise UserFacingError(f"Enter {whose} full name.")
    if has_control_characters(name):
        raise UserFacingError(
            "A full name may not contain control characters (tab, new line and the like)."
        )
    if len(name) > MAX_FULL_NAME:
        raise UserFacingError(f"A full name may be at most {MAX_FULL_NAME} characters.")
    return name
