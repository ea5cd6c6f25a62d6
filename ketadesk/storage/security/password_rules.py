"""The new-password rule as the database sees it: zxcvbn with the practice's own name as an
easy guess, and the user's current password refused (tried against their key slot)."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from ketadesk.core.errors import UserFacingError
from ketadesk.core.password_strength import password_weakness
from ketadesk.models.practice import PracticeSetting
from ketadesk.storage.security.keyslots import KeySlotFile


def practice_name(session: Session) -> str:
    """The practice name setting, or "" when it is not set (or not text)."""
    row = session.get(PracticeSetting, "practice_name")
    if row is None:
        return ""
    try:
        value = json.loads(row.value_json)
    except ValueError:
        return ""
    return value if isinstance(value, str) else ""


def check_new_password(
    password: str,
    user_name: str,
    *,
    session: Session | None = None,
    slots: KeySlotFile | None = None,
    what: str = "password",
) -> None:
    """Raise a plain-words error unless ``password`` may become ``user_name``'s password.

    With ``slots``, a password that already opens the user's slot (the current one) is refused.
    """
    problem = password_weakness(
        password,
        user_name=user_name,
        practice_name=practice_name(session) if session is not None else "",
        what=what,
    )
    if problem:
        raise UserFacingError(problem)
    if slots is None:
        return
    try:
        slots.unwrap_for_user(user_name, password)
    except UserFacingError:
        return  # it does not open the current slot: a new password
    raise UserFacingError(f"The new {what} must be different from the current one.")
