"""A patient's current medications: record them as typed, stop them, verify them.

Admins may record and stop patient-reported lines; verified lines need a physician.
Every change writes an audit event without the medication text: additions and verifications
name the entry id; a stop names the medication by its recognised generic (from the knowledge
base) or "unrecognised line", and the reason by its category, never the note.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ketadesk.core.errors import UserFacingError
from ketadesk.core.medication_names import read_medication_line
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.models.patients import MEDICATION_SOURCES, PatientMedication
from ketadesk.storage.patients.entry_versions import (
    ACTIVE,
    STOPPED,
    medication_changed,
    refuse_if_medication_changed,
)
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
    expected_version: int | None = None,
) -> MedicationEntry:
    """Mark a medication as no longer taken (kept in the history, not deleted), recording who
    stopped it, when, and why (``reason`` is a key of ``STOP_REASONS``; ``note`` is required
    for "other").

    Admins may stop patient-reported lines; verified lines need a physician.
    ``expected_version`` is the version the chart showed: a line changed since is refused
    with EntryChangedError (storage/patients/entry_versions).
    """
    medication = _load_medication(session, medication_id)
    refuse_if_medication_changed(session, medication, expected_version)
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
    _flush_or_refuse(session, medication_id)
    return medication_entry(medication)


def verify_medication(
    session: Session,
    actor: Actor,
    medication_id: int,
    *,
    now: datetime | None = None,
    expected_version: int | None = None,
) -> MedicationEntry:
    """Mark a patient-reported medication as verified by this physician (``expected_version``
    as for ``stop_medication``)."""
    require(actor, Permission.VERIFY_MEDICATION, "mark medications verified")
    medication = _load_medication(session, medication_id)
    refuse_if_medication_changed(session, medication, expected_version)
    if medication.source == "verified":
        raise UserFacingError("That medication is already verified.")
    medication.source = "verified"
    medication.verified_by = actor.user_name
    medication.verified_at = now or datetime.now(UTC)
    audit_chart_update(
        session, actor, medication.patient_id, f"medication {medication.id} verified"
    )
    _flush_or_refuse(session, medication_id)
    return medication_entry(medication)


def _flush_or_refuse(session: Session, medication_id: int) -> None:
    """Write the change; another workstation's change that won the race is named."""
    try:
        session.flush()
    except StaleDataError:
        session.rollback()
        raise medication_changed(session, _load_medication(session, medication_id)) from None


def settle_medication(
    session: Session,
    actor: Actor,
    medication_id: int,
    values: Mapping[str, str],
    *,
    expected_version: int,
) -> MedicationEntry:
    """Bring a medication line to ``values`` (``entry_versions.medication_values`` after a
    field-by-field choice) over the version stored now, through the same permission checks
    and audit events as stopping and verifying it: admins cannot verify a line, nor stop or
    re-word the stop of a verified one. A stopped line is never taken up again here."""
    medication = _load_medication(session, medication_id)
    refuse_if_medication_changed(session, medication, expected_version)
    if values.get("source") == "verified" and medication.source != "verified":
        verify_medication(session, actor, medication_id)
    elif values.get("source") != "verified" and medication.source == "verified":
        raise UserFacingError(
            "A verified medication stays verified; stop it and add the line again if it was "
            "wrong."
        )
    wanted = values.get("status", ACTIVE)
    if wanted == ACTIVE and not medication.is_active:
        raise UserFacingError(
            "This medication was stopped; if the patient takes it again, add it as a new line."
        )
    if wanted == STOPPED:
        reason, note = values.get("stop_reason", ""), values.get("stop_note", "")
        if medication.is_active:
            return stop_medication(session, actor, medication_id, reason=reason, note=note)
        if (reason, note) != (medication.stop_reason or "", medication.stop_note or ""):
            _restop(session, actor, medication, reason, note)
    return medication_entry(medication)


def _restop(
    session: Session, actor: Actor, medication: PatientMedication, reason: str, note: str
) -> None:
    """Record another reason (and note) for a line already stopped, under the stop's rules."""
    medication.is_active = True  # stopped again, through every check (a refusal rolls back)
    stop_medication(session, actor, medication.id, reason=reason, note=note)
