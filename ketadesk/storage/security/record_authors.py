"""Who saved a record last: a user's full name, or the author of the newest audit event that
saved it (for records whose rows do not keep their last saver, such as protocol drafts).

Used by each feature's ``RecordChangedError`` (core/edit_conflicts) to say who saved the
version a form was about to overwrite.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.models.audit import AuditEvent
from ketadesk.models.users import User


def full_name_of(session: Session, user_name: str | None) -> str | None:
    """The full name of the user ``user_name`` (their user name if not found; None for None)."""
    if not user_name:
        return None
    name = session.execute(
        select(User.full_name).where(User.user_name == user_name)
    ).scalar_one_or_none()
    return name or user_name


def last_saver(
    session: Session, patient_id: int, actions: Iterable[str], detail_prefix: str
) -> str | None:
    """The full name of whoever wrote the newest audit event of ``actions`` for ``patient_id``
    whose detail starts with ``detail_prefix`` (None: no such event)."""
    user_name = session.execute(
        select(AuditEvent.user_name)
        .where(
            AuditEvent.patient_id == patient_id,
            AuditEvent.action.in_(tuple(actions)),
            AuditEvent.detail.startswith(detail_prefix, autoescape=True),
        )
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).scalar_one_or_none()
    return full_name_of(session, user_name)
