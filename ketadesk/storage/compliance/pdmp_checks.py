"""PDMP look-ups: who consulted the state's system (a physician, or an admin as designee),
when, which state's system, and the result in the practice's own words (no PDMP data is
copied in), or the reason it could not be consulted. Audited without the text.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.compliance_rules import STATES
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.models.compliance import PdmpCheck
from ketadesk.storage.compliance.compliance_input import clean_text, past_moment, require_patient
from ketadesk.storage.compliance.compliance_records import PdmpCheckInfo, pdmp_check_info
from ketadesk.storage.security.audit_log import record_event

TEXT_MAX = 1000


def record_pdmp_check(
    session: Session,
    actor: Actor,
    patient_id: int,
    *,
    state: str,
    result: str | None = None,
    not_checked_reason: str | None = None,
    checked_at: datetime | None = None,
) -> PdmpCheckInfo:
    """Record one look-up (``result``) or why none was possible (``not_checked_reason``);
    exactly one of the two. ``checked_at`` defaults to now and may not be in the future."""
    require(actor, Permission.RECORD_PDMP_CHECK, "record a PDMP look-up")
    require_patient(session, patient_id)
    if state not in STATES:
        raise UserFacingError("The PDMP state must be FL or NJ.")
    result_text = clean_text(result, "the result", TEXT_MAX)
    reason_text = clean_text(not_checked_reason, "the reason", TEXT_MAX)
    if bool(result_text) == bool(reason_text):
        raise UserFacingError(
            "Record either the result of the look-up (in your own words) or the reason it "
            "could not be done, not both."
        )
    row = PdmpCheck(
        patient_id=patient_id,
        state=state,
        checked_at=past_moment(checked_at, "The time of the look-up"),
        checked_by=actor.user_name,
        checked_by_role=str(actor.role),
        result_text=result_text or None,
        not_checked_reason=reason_text or None,
    )
    session.add(row)
    session.flush()
    how = "consulted" if result_text else "not consulted, reason recorded"
    who = "" if actor.is_physician else " by a designee"
    record_event(
        session, actor, audit_actions.PDMP_CHECK_RECORDED, patient_id=patient_id,
        detail=f"{state} PDMP look-up {row.id} ({how}){who}",
    )
    return pdmp_check_info(row)


def pdmp_checks_of(session: Session, patient_id: int) -> tuple[PdmpCheckInfo, ...]:
    """The patient's look-ups, oldest first."""
    rows = session.execute(
        select(PdmpCheck).where(PdmpCheck.patient_id == patient_id)
        .order_by(PdmpCheck.checked_at, PdmpCheck.id)
    ).scalars()
    return tuple(pdmp_check_info(r) for r in rows)
