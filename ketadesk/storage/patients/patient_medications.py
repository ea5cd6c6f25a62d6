"""A patient's current medications: record them as typed, stop them, verify them.

Admins may record and stop patient-reported lines; verified lines need a physician.
Every change writes an audit event without the medication text: additions and verifications
name the entry id; a stop names the medication by its recognised generic (from the knowledge
base) or "unrecognised line", and the reason by its category, never the note.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from ketadesk.core.errors import UserFacingError
from ketadesk.core.medication_names import read_medication_line
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


#: Why a medication line was stopped: code -> words shown to the user (and in the table).
STOP_REASONS = {
    "patient_stopped": "The patient no longer takes it",
    "prescriber_stopped": "Stopped by the prescriber",
    "replaced": "Replaced by another medication",
    "entered_in_error": "Entered in error",
    "other": "Other reason (see the note)",
}
UNRECOGNISED_LINE = "unrecognised line"


def medication_audit_name(entered_text: str) -> str:
    """The medication as the audit trail may name it: its generic ingredients as the knowledge
    base recognises them ("oxycodone + acetaminophen"), or "unrecognised line" (never the
    words typed, which may carry anything)."""
    reading = read_medication_line(entered_text)
    return " + ".join(reading.generics) if reading.is_recognized else UNRECOGNISED_LINE


def stop_medication(
    session: Session,
    actor: Actor,
    medication_id: int,
    *,
    reason: str,
    note: str = "",
    now: datetime | None = None,
) -> MedicationEntry:
    """Mark a medication as no longer taken (kept in the history, not deleted), recording who
    stopped it, when, and why (``reason`` is a key of ``STOP_REASONS``; ``note`` is required
    for "other").

    Admins may stop patient-reported lines; verified lines need a physician.
    """
    medication = _load_medication(session, medication_id)
    if medication.source == "verified":
        require(actor, Permission.VERIFY_MEDICATION, "stop a verified medication")
    else:
        require(actor, Permission.RECORD_REPORTED_MEDICATION, "stop medications")
    if not medication.is_active:
        raise UserFacingError("That medication is already stopped.")
    if reason not in STOP_REASONS:
        raise UserFacingError("Choose why the medication is being stopped.")
    cleaned_note = optional_text(note, what="note", limit=300)
    if reason == "other" and not cleaned_note:
        raise UserFacingError("Write a short note saying why the medication is being stopped.")
    medication.is_active = False
    medication.stopped_by = actor.user_name
    medication.stopped_at = now or datetime.now(UTC)
    medication.stop_reason = reason
    medication.stop_note = cleaned_note
    audit_chart_update(
        session,
        actor,
        medication.patient_id,
        f"medication stopped: {medication_audit_name(medication.entered_text)} "
        f"(reason: {reason.replace('_', ' ')})",
    )
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
