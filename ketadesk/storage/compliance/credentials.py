"""Prescribers' state medical licences and DEA registrations, with numbers and expiry dates.

A physician keeps their own; a user who manages users may keep anyone's. DEA numbers are
checked (shape and check digit). Audit details name the kind, state and expiry, never the
number.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.compliance_rules import STATES
from ketadesk.core.dea_number import dea_number_problem, normalised_dea_number
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, Role, require
from ketadesk.core.prescription_checks import CREDENTIAL_LABELS, CredentialKind
from ketadesk.models.compliance import PrescriberCredential
from ketadesk.models.users import User
from ketadesk.storage.compliance.compliance_input import clean_text
from ketadesk.storage.compliance.compliance_records import CredentialInfo, credential_info
from ketadesk.storage.security.audit_log import record_event


def _require_may_edit(session: Session, actor: Actor, user_name: str) -> None:
    if actor.user_name != user_name:
        require(actor, Permission.MANAGE_USERS, "change another user's licences and registrations")
    user = session.execute(select(User).where(User.user_name == user_name)).scalar_one_or_none()
    if user is None:
        raise UserFacingError(f"There is no user called '{user_name}'.")
    if user.role != Role.PHYSICIAN:
        raise UserFacingError("Licences and DEA registrations are kept for physicians only.")


def save_credential(
    session: Session,
    actor: Actor,
    *,
    user_name: str,
    kind: CredentialKind,
    state: str,
    number: str,
    expires_on: date,
) -> CredentialInfo:
    """Add a licence or registration, or change the expiry date of the same one (a renewal)."""
    _require_may_edit(session, actor, user_name)
    if state not in STATES:
        raise UserFacingError("Licences and registrations are kept for FL and NJ only.")
    if kind is CredentialKind.DEA_REGISTRATION:
        problem = dea_number_problem(number)
        if problem:
            raise UserFacingError(problem)
        number = normalised_dea_number(number)
    else:
        number = clean_text(number, "the licence number", 32, required=True).upper()
    row = session.execute(
        select(PrescriberCredential).where(
            PrescriberCredential.user_name == user_name,
            PrescriberCredential.kind == kind.value,
            PrescriberCredential.state == state,
            PrescriberCredential.number == number,
        )
    ).scalar_one_or_none()
    if row is None:
        row = PrescriberCredential(user_name=user_name, kind=kind.value, state=state,
                                   number=number, expires_on=expires_on,
                                   recorded_by=actor.user_name)
        session.add(row)
    row.expires_on = expires_on
    row.recorded_by = actor.user_name
    session.flush()
    record_event(
        session, actor, audit_actions.CREDENTIAL_SAVED,
        detail=f"user {user_name}: {state} {CREDENTIAL_LABELS[kind]} {row.id} expires "
        f"{expires_on.isoformat()}",
    )
    return credential_info(row)


def remove_credential(session: Session, actor: Actor, credential_id: int) -> None:
    row = session.get(PrescriberCredential, credential_id)
    if row is None:
        raise UserFacingError("That licence or registration is no longer recorded.")
    _require_may_edit(session, actor, row.user_name)
    session.delete(row)
    session.flush()
    record_event(
        session, actor, audit_actions.CREDENTIAL_REMOVED,
        detail=f"user {row.user_name}: {row.state} "
        f"{CREDENTIAL_LABELS[CredentialKind(row.kind)]} {credential_id}",
    )


def credentials_of(session: Session, user_name: str) -> tuple[CredentialInfo, ...]:
    """The user's licences and registrations, by state, kind and expiry."""
    rows = session.execute(
        select(PrescriberCredential)
        .where(PrescriberCredential.user_name == user_name)
        .order_by(PrescriberCredential.state, PrescriberCredential.kind,
                  PrescriberCredential.expires_on)
    ).scalars()
    return tuple(credential_info(r) for r in rows)


def all_credentials(session: Session) -> tuple[CredentialInfo, ...]:
    """Every physician's licences and registrations."""
    rows = session.execute(
        select(PrescriberCredential).order_by(
            PrescriberCredential.user_name, PrescriberCredential.state, PrescriberCredential.kind
        )
    ).scalars()
    return tuple(credential_info(r) for r in rows)
