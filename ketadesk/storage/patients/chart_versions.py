"""Saving a chart over someone else's change: refused, never silent.

Every patient row carries a version (SQLAlchemy's ``version_id_col``, one more at each save).
A form remembers the version it showed and names it when saving; if the stored version has
moved on (another workstation saved meanwhile), the save is refused with ``ChartChangedError``,
which carries the chart as stored now and who saved it and when, so the user can compare and
merge (``core/edit_conflicts``) and save again over the new version. The same error replaces
SQLAlchemy's ``StaleDataError`` when the race is lost between reading and writing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ketadesk.core.edit_conflicts import RecordChangedError
from ketadesk.models.patients import Patient
from ketadesk.storage.patients.patient_records import PatientRecord, load_patient, patient_record
from ketadesk.storage.security.record_authors import full_name_of


class ChartChangedError(RecordChangedError):
    """Someone saved this chart after it was opened here; ``current`` is the chart as stored
    now, ``changed_by`` the full name of whoever saved last (None: not recorded)."""

    def __init__(
        self, current: PatientRecord, changed_by: str | None, changed_at: datetime
    ) -> None:
        self.current = current
        super().__init__(
            f"{changed_by or 'Someone else'} saved this patient's details while you were "
            "editing them. Nothing you typed was saved yet; compare the two and choose what "
            "to keep.",
            changed_by,
            changed_at,
        )


def chart_changed(session: Session, patient_id: int) -> ChartChangedError:
    """The error for a save that met another save: the chart as stored now, and its saver."""
    patient = load_patient(session, patient_id)
    return ChartChangedError(
        patient_record(patient), full_name_of(session, patient.updated_by), patient.updated_at
    )


def refuse_if_changed(session: Session, patient: Patient, expected_version: int | None) -> None:
    """Raise ChartChangedError when ``patient`` is no longer at ``expected_version`` (the
    version the form showed; None: the caller does not check, e.g. an import)."""
    if expected_version is not None and patient.version != expected_version:
        raise chart_changed(session, patient.id)
