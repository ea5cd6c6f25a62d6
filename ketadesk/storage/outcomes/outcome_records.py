"""Frozen views of saved outcomes (check-ins, questionnaires, the home dose log) and the
conversions from their ORM rows.

Units: dose in mg, blood pressure in mmHg, heart rate in beats per minute.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from ketadesk.core.checkins import LABELS, SymptomReport
from ketadesk.core.dose_log import (
    ALERT_KIND_WORDS,
    DoseCalendarContext,
    DoseFlag,
    DoseFlagKind,
    DoseLogEntry,
    DoseRules,
)
from ketadesk.core.errors import UserFacingError
from ketadesk.core.monitoring_due import DueStatus, MonitoringCadence
from ketadesk.core.questionnaires import (
    QuestionnaireScore,
    load_instrument,
    questionnaire_to_json,
    score_questionnaire,
)
from ketadesk.models.outcomes import CheckIn, DoseLogRecord, QuestionnaireResponse
from ketadesk.models.patients import Patient

# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class CheckInRecord:
    """A saved check-in. ``mode`` / ``adherence`` are codes; ``*_label`` are words."""

    id: int
    patient_id: int
    checked_on: date
    mode: str
    recorded_by: str
    adherence: str
    notes: str
    protocol_version_id: int | None
    symptoms: tuple[SymptomReport, ...]

    @property
    def mode_label(self) -> str:
        return LABELS.get(self.mode, self.mode)

    @property
    def adherence_label(self) -> str:
        return LABELS.get(self.adherence, self.adherence)

    def symptoms_text(self) -> str:
        """Reported symptoms in words, e.g. "Nausea or vomiting (mild); Headache (moderate)"."""
        shown = [s for s in self.symptoms if s.severity != "none"]
        if not shown:
            return "None reported"
        parts = []
        for report in shown:
            name = LABELS.get(report.symptom, report.symptom)
            if report.note:
                name += f": {report.note}"
            parts.append(f"{name} ({report.severity})")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.checked_on.isoformat(),
            "mode": self.mode,
            "recorded_by": self.recorded_by,
            "symptoms": [
                {"symptom": s.symptom, "severity": s.severity, "note": s.note}
                for s in self.symptoms
            ],
            "adherence": self.adherence,
            "notes": self.notes,
            "protocol_version_id": self.protocol_version_id,
        }


@dataclass(frozen=True)
class AlertAcknowledgement:
    """Who acknowledged an item-9 alert, when (aware UTC) and their short note."""

    acknowledged_by: str
    acknowledged_at: datetime
    note: str


@dataclass(frozen=True)
class QuestionnaireRecord:
    """A saved PHQ-9 or GAD-7. ``total`` / ``band`` are ``None`` when incomplete (points)."""

    id: int
    patient_id: int
    instrument: str  # display name, e.g. "PHQ-9"
    instrument_id: str  # key, e.g. "phq9"
    taken_on: date
    answers: tuple[int | None, ...]
    complete: bool
    total: int | None
    band: str | None
    safety_alert: bool
    entered_by: str
    acknowledgement: AlertAcknowledgement | None = None

    @property
    def needs_acknowledgement(self) -> bool:
        """An item-9 alert that no physician has acknowledged yet."""
        return self.safety_alert and self.acknowledgement is None

    def score(self) -> QuestionnaireScore:
        """Re-score the stored answers with the instrument definition."""
        return score_questionnaire(load_instrument(self.instrument_id), self.answers)

    def to_json(self) -> dict[str, Any]:
        data = questionnaire_to_json(self.score(), self.taken_on)
        data["acknowledged_by"] = (
            None if self.acknowledgement is None else self.acknowledgement.acknowledged_by
        )
        return data


@dataclass(frozen=True)
class DoseLogItem:
    """A saved home session and its protocol flags (breaches and "not checked")."""

    id: int
    patient_id: int
    entry: DoseLogEntry
    entered_by: str
    flags: tuple[DoseFlag, ...] = ()

    @property
    def has_breach(self) -> bool:
        return any(flag.is_breach for flag in self.flags)


@dataclass(frozen=True)
class PatientMonitoring:
    """The monitoring plan that applies to one patient and where it comes from.

    ``source`` is ``"practice default"`` or names the protocol version. ``starts_on`` is the
    date monitoring began (protocol start, or when the patient became active). Intervals are
    in ``cadence`` (days / weeks); ``dose_rules`` are what home doses are checked against.
    """

    cadence: MonitoringCadence
    starts_on: date
    source: str
    dose_rules: DoseRules = field(default_factory=DoseRules)
    protocol_version_id: int | None = None


@dataclass(frozen=True)
class DoseAlertRecord:
    """One dose-breach alert: the dose (time aware, mg), what was broken (codes and words),
    and the acknowledgement once a physician has made it."""

    id: int
    patient_id: int
    dose_log_id: int
    taken_at: datetime
    dose_mg: float
    kinds: tuple[DoseFlagKind, ...]
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    note: str | None = None

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None

    def breach_words(self) -> str:
        """E.g. "blood pressure above the hold limit and dose above the maximum"."""
        return " and ".join(ALERT_KIND_WORDS[kind] for kind in self.kinds)


@dataclass(frozen=True)
class PatientOutcomes:
    """Everything the check-ins tab shows for one patient, newest first in each list.

    ``due`` is ``None`` when the patient is not in active treatment (nothing is due).
    """

    patient_id: int
    checkins: tuple[CheckInRecord, ...]
    questionnaires: tuple[QuestionnaireRecord, ...]
    dose_log: tuple[DoseLogItem, ...]
    monitoring: PatientMonitoring
    due: DueStatus | None
    # (first day in force, version number) of each signed protocol version, oldest first
    signed_versions: tuple[tuple[date, int], ...] = ()
    # what a new home dose is compared with before saving (first session, planned days)
    dose_context: DoseCalendarContext = field(default_factory=DoseCalendarContext)
    # unacknowledged home-dose breach alerts, newest dose first
    open_dose_alerts: tuple[DoseAlertRecord, ...] = ()

    @property
    def open_alerts(self) -> tuple[QuestionnaireRecord, ...]:
        return tuple(q for q in self.questionnaires if q.needs_acknowledgement)


# --------------------------------------------------------------------------- conversions


def outcome_patient(session: Session, patient_id: int) -> Patient:
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise UserFacingError("That patient is not in this practice database.")
    return patient


def checkin_record(row: CheckIn) -> CheckInRecord:
    return CheckInRecord(
        id=row.id,
        patient_id=row.patient_id,
        checked_on=row.checked_on,
        mode=row.mode,
        recorded_by=row.recorded_by,
        adherence=row.adherence,
        notes=row.notes,
        protocol_version_id=row.protocol_version_id,
        symptoms=tuple(SymptomReport(s.symptom, s.severity, s.note) for s in row.symptoms),
    )


def answers_from_json(text: str) -> tuple[int | None, ...]:
    raw = json.loads(text)
    return tuple(None if value is None else int(value) for value in raw)


def questionnaire_record(row: QuestionnaireResponse) -> QuestionnaireRecord:
    instrument = load_instrument(row.instrument)
    ack = row.acknowledgement
    return QuestionnaireRecord(
        id=row.id,
        patient_id=row.patient_id,
        instrument=instrument.name,
        instrument_id=instrument.id,
        taken_on=row.taken_on,
        answers=answers_from_json(row.answers_json),
        complete=row.complete,
        total=row.total,
        band=row.band,
        safety_alert=row.safety_alert,
        entered_by=row.entered_by,
        acknowledgement=None
        if ack is None
        else AlertAcknowledgement(ack.acknowledged_by, ack.acknowledged_at, ack.note),
    )


def dose_entry(row: DoseLogRecord) -> DoseLogEntry:
    return DoseLogEntry(
        taken_at=row.taken_at,
        dose_mg=row.dose_mg,
        bp_before_systolic=row.bp_before_systolic,
        bp_before_diastolic=row.bp_before_diastolic,
        bp_after_systolic=row.bp_after_systolic,
        bp_after_diastolic=row.bp_after_diastolic,
        hr_before=row.hr_before,
        hr_after=row.hr_after,
        sitter_present=row.sitter_present,
        effects=row.effects,
    )
