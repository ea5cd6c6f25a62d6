"""What a remote prescription relies on: the patient's in-person medical evaluation, the DEA
telemedicine flexibilities (their end date comes from the rules file), or a registration or
exception with its own end date. Physicians record them; audited without the description."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.core.prescription_checks import TelemedicineBasis
from ketadesk.models.compliance import TelemedicineRecord
from ketadesk.storage.compliance.compliance_input import clean_text, past_day, require_patient
from ketadesk.storage.compliance.compliance_records import TelemedicineInfo, telemedicine_info
from ketadesk.storage.security.audit_log import record_event


def record_telemedicine(
    session: Session,
    actor: Actor,
    patient_id: int,
    *,
    basis: TelemedicineBasis,
    today: date,
    in_person_evaluation_on: date | None = None,
    ends_on: date | None = None,
    description: str = "",
) -> TelemedicineInfo:
    """Record the basis for prescribing to this patient after remote visits."""
    require(actor, Permission.EDIT_CLINICAL, "record a telemedicine basis")
    require_patient(session, patient_id)
    if basis is TelemedicineBasis.IN_PERSON_EVALUATION:
        if in_person_evaluation_on is None:
            raise UserFacingError("Enter the date of the in-person medical evaluation.")
        past_day(in_person_evaluation_on, "The in-person evaluation", today)
    text = clean_text(
        description, "the registration or exception relied on", 500,
        required=basis is TelemedicineBasis.REGISTRATION_OR_EXCEPTION,
    )
    row = TelemedicineRecord(
        patient_id=patient_id, basis=basis.value, in_person_evaluation_on=in_person_evaluation_on,
        ends_on=ends_on, description=text, recorded_by=actor.user_name,
    )
    session.add(row)
    session.flush()
    record_event(
        session, actor, audit_actions.TELEMEDICINE_RECORDED, patient_id=patient_id,
        detail=f"telemedicine record {row.id}: {basis.value}",
    )
    return telemedicine_info(row)


def telemedicine_records(session: Session, patient_id: int) -> tuple[TelemedicineInfo, ...]:
    rows = session.execute(
        select(TelemedicineRecord).where(TelemedicineRecord.patient_id == patient_id)
        .order_by(TelemedicineRecord.id)
    ).scalars()
    return tuple(telemedicine_info(r) for r in rows)
