"""The shared pieces of every chart edit: typed-text checks and the audit event.

The audit detail names what changed (entry ids, field names), never names or clinical text.
"""

from __future__ import annotations

import unicodedata

from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor
from ketadesk.storage.security.audit_log import record_event

MAX_ENTRY_CHARS = 300
MAX_SHORT_CHARS = 100
MAX_REASON_CHARS = 1000


def typed_text(text: str, *, what: str, limit: int = MAX_ENTRY_CHARS) -> str:
    """Return ``text`` unchanged if acceptable: not blank, not too long, no control chars."""
    if not text.strip():
        raise UserFacingError(f"Type the {what}.")
    if len(text) > limit:
        raise UserFacingError(f"The {what} is longer than {limit} characters.")
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") for ch in text):
        raise UserFacingError(f"The {what} contains a line break or invisible character.")
    return text


def optional_text(text: str | None, *, what: str, limit: int = MAX_SHORT_CHARS) -> str | None:
    if text is None or not text.strip():
        return None
    return typed_text(text, what=what, limit=limit)


def audit_chart_update(session: Session, actor: Actor, patient_id: int, detail: str) -> None:
    """Record a PATIENT_UPDATED audit event for ``patient_id`` with ``detail``."""
    record_event(
        session,
        actor,
        audit_actions.PATIENT_UPDATED,
        patient_id=patient_id,
        detail=detail,
    )
