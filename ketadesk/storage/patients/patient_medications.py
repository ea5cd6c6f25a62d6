"""A patient's current medications: record them as typed, stop them, verify them.

Admins may record and stop patient-reported lines; verified lines need a physician.
Every change writes an audit event naming the entry id, never the medication text.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.models.patients import MEDICATION_SOURCES, PatientMedication
from ketadesk.storage.patients.patient_chart_edits import (
    audit_chart_update,
    optional_text,
    typed_text,
)
from ketadesk.storage.patients.patient_records import (
    MedicationEntry,
    load_patient,
    medication_entry,
)


def add_medication(
    session: Session,
    actor: Actor,
    patient_id: int,
    entered_text: str,
    *,
    dose_text: str | None = None,
    frequency_text: str | None = None,
    start_date: date | None = None,
    source: str = "patient_reported",
    now: datetime | None = None,
) -> MedicationEntry:
    """Record a current medication exactly as typed ("Ativan 1 mg at bedtime").

    Admins may record "patient_reported" lines; only physicians record "verified" ones.
    """
    if source not in MEDICATION_SOURCES:
        raise UserFacingError("The source must be patient-reported or verified.")
    if source == "verified":
        require(actor, Permission.VERIFY_MEDICATION, "record verified medications")
    else:
        require(actor, Permission.RECORD_REPORTED_MEDICATION, "record medications")
    load_patient(session, patient_id)
    medication = PatientMedication(
        patient_id=patient_id,
        entered_text=typed_text(entered_text, what="medication"),
        dose_text=optional_text(dose_text, what="dose"),
        frequency_text=optional_text(frequency_text, what="frequency"),
        start_date=start_date,
        source=source,
        is_active=True,
        entered_by=actor.user_name,
    )
    if source == "verified":
        medication.verified_by = actor.user_name
        medication.verified_at = now or datetime.now(UTC)
    session.add(medication)
    session.flush()
    audit_chart_update(session, actor, patient_id, f"medication {medication.id} added ({source})")
    return medication_entry(medication)


def _load_medication(session: Session, medication_id: int) -> PatientMedication:
    medication = session.get(PatientMedication, medication_id)
    if medication is None:
        raise UserFacingError("That medication entry no longer exists.")
    return medication


def stop_medication(session: Session, actor: Actor, medication_id: int) -> MedicationEntry:
    """Mark a medication as no longer taken (kept in the history, not deleted).

    Admins may stop patient-reported lines; verified lines need a physician.
    """
    medication = _load_medication(session, medication_id)
    if medication.source == "verified":
        require(actor, Permission.VERIFY_MEDICATION, "stop a verified medication")
    else:
        require(actor, Permission.RECORD_REPORTED_MEDICATION, "stop medications")
    if not medication.is_active:
        raise UserFacingError("That medication is already stopped.")
    medication.is_active = False
    audit_chart_update(session, actor, medication.patient_id, f"medication {medication.id} stopped")
    session.flush()
    return medication_entry(medication)


def verify_medication(
    session: Session, actor: Actor, medication_id: int, *, now: datetime | None = None
) -> MedicationEntry:
    """Mark a patient-reported medication as verified by this physician."""
    require(actor, Permission.VERIFY_MEDICATION, "mark medications verified")
    medication = _load_medication(session, medication_id)
    if medication.source == "verified":
        raise UserFacingError("That medication is already verified.")
    medication.source = "verified"
    medication.verified_by = actor.user_name
    medication.verified_at = now or datetime.now(UTC)
    audit_chart_update(
        session, actor, medication.patient_id, f"medication {medication.id} verified"
    )
    session.flush()
    return medication_entry(medication)
