"""Changing a medication or condition line over someone else's change: refused, never silent.

Each line carries a version (one more at each save). The chart names the version it showed
when a line is stopped, verified or resolved; if another workstation changed the line since,
the change is refused with ``EntryChangedError``, carrying the line as stored now and who
changed it and when, so the user can compare their change with theirs field by field
(``core/edit_conflicts``) and settle it over the new version.

The fields compared are the line's state as text (``medication_values``, ``condition_values``);
their words are in ``MEDICATION_WORDS``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.edit_conflicts import RecordChangedError
from ketadesk.models.patients import PatientCondition, PatientMedication
from ketadesk.storage.patients.patient_records import (
    ConditionEntry,
    MedicationEntry,
    medication_entry,
)
from ketadesk.storage.security.record_authors import full_name_of, last_saver

MEDICATION_FIELDS = (
    ("status", "Taken now"),
    ("stop_reason", "Why stopped"),
    ("stop_note", "Stop note"),
    ("source", "Source"),
)
CONDITION_FIELDS = (("status", "Current"),)
ACTIVE, STOPPED, RESOLVED = "active", "stopped", "resolved"


class EntryChangedError(RecordChangedError):
    """Someone changed this line after the chart showed it; ``current`` is the line as
    stored now."""

    def __init__(
        self,
        what: str,
        current: MedicationEntry | ConditionEntry,
        changed_by: str | None,
        changed_at: datetime,
    ) -> None:
        self.what = what
        self.current = current
        super().__init__(
            f"{changed_by or 'Someone else'} changed {what} while you had the chart open. "
            "Nothing was saved yet; compare the two and choose what to keep.",
            changed_by,
            changed_at,
        )


def medication_values(entry: MedicationEntry) -> dict[str, str]:
    """A medication line's state as text, for ``core/edit_conflicts``."""
    return {
        "status": ACTIVE if entry.is_active else STOPPED,
        "stop_reason": entry.stop_reason or "",
        "stop_note": entry.stop_note,
        "source": entry.source,
    }


def condition_values(entry: ConditionEntry) -> dict[str, str]:
    return {"status": ACTIVE if entry.is_active else RESOLVED}


def medication_changed(session: Session, row: PatientMedication) -> EntryChangedError:
    """The error for a change that met ``row`` as stored now: its newest change names who."""
    moments = [(row.created_at, row.entered_by)]
    if row.verified_at is not None:
        moments.append((row.verified_at, row.verified_by or ""))
    if row.stopped_at is not None:
        moments.append((row.stopped_at, row.stopped_by or ""))
    at, by = max(moments, key=lambda moment: moment[0])
    return EntryChangedError(
        "this medication line", medication_entry(row), full_name_of(session, by), at
    )


def condition_changed(session: Session, row: PatientCondition) -> EntryChangedError:
    who = last_saver(session, row.patient_id, (audit_actions.PATIENT_UPDATED,),
                     f"condition {row.id} ")
    entry = ConditionEntry(row.id, row.entered_text, row.icd10, row.is_active, row.entered_by,
                           row.concept_id, row.version)
    return EntryChangedError("this condition", entry, who, row.updated_at)


def refuse_if_medication_changed(
    session: Session, row: PatientMedication, expected_version: int | None
) -> None:
    """Raise EntryChangedError when ``row`` is no longer at ``expected_version`` (None: the
    caller does not check)."""
    if expected_version is not None and row.version != expected_version:
        raise medication_changed(session, row)


def refuse_if_condition_changed(
    session: Session, row: PatientCondition, expected_version: int | None
) -> None:
    if expected_version is not None and row.version != expected_version:
        raise condition_changed(session, row)
