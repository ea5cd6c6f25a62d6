"""Check-in records: what the clinician enters after a contact, and how it is validated.

A draft is checked before it is saved; ``validate_checkin`` returns every problem at once
(an empty list means the draft can be saved), each tied to the field it concerns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

MAX_NOTE_CHARS = 4000
MAX_SYMPTOM_NOTE_CHARS = 500


class CheckInMode(StrEnum):
    """How the check-in was done."""

    VIDEO = "video"
    PHONE = "phone"
    HOME_VISIT = "home_visit"
    IN_OFFICE = "in_office"


class Symptom(StrEnum):
    """Side effects asked about at every check-in."""

    DISSOCIATION = "dissociation"
    NAUSEA = "nausea"
    DIZZINESS = "dizziness"
    HEADACHE = "headache"
    URINARY_SYMPTOMS = "urinary_symptoms"
    ELEVATED_BP = "elevated_bp"
    OTHER = "other"


class Severity(StrEnum):
    """How bad a reported symptom was."""

    NONE = "none"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


class Adherence(StrEnum):
    """How the patient has been taking the medicine since the last contact."""

    AS_PRESCRIBED = "as_prescribed"
    MISSED_DOSES = "missed_doses"
    EXTRA_OR_EARLY_DOSES = "extra_or_early_doses"
    STOPPED = "stopped"
    NOT_STARTED = "not_started"
    NOT_ASSESSED = "not_assessed"


LABELS: dict[str, str] = {
    CheckInMode.VIDEO: "Video call",
    CheckInMode.PHONE: "Phone call",
    CheckInMode.HOME_VISIT: "Home visit",
    CheckInMode.IN_OFFICE: "In office",
    Symptom.DISSOCIATION: "Dissociation",
    Symptom.NAUSEA: "Nausea or vomiting",
    Symptom.DIZZINESS: "Dizziness",
    Symptom.HEADACHE: "Headache",
    Symptom.URINARY_SYMPTOMS: "Urinary symptoms",
    Symptom.ELEVATED_BP: "Elevated blood pressure",
    Symptom.OTHER: "Other",
    Adherence.AS_PRESCRIBED: "Taken as prescribed",
    Adherence.MISSED_DOSES: "Missed doses",
    Adherence.EXTRA_OR_EARLY_DOSES: "Extra or early doses",
    Adherence.STOPPED: "Stopped taking it",
    Adherence.NOT_STARTED: "Not started yet",
    Adherence.NOT_ASSESSED: "Not assessed",
}
"""Clinician-facing labels for the stored codes (for forms and reports)."""


@dataclass(frozen=True)
class SymptomReport:
    """One symptom and how severe it was; ``note`` is required for ``other``."""

    symptom: str
    severity: str
    note: str = ""


@dataclass(frozen=True)
class CheckInDraft:
    """A check-in as entered, before saving. Codes are the values of the enums above."""

    date: date
    mode: str
    recorded_by: str
    symptoms: tuple[SymptomReport, ...]
    adherence: str
    notes: str = ""
    protocol_version_id: int | None = None


@dataclass(frozen=True)
class CheckInProblem:
    """Something that stops a draft from being saved; ``field`` names the form field."""

    field: str
    message: str


def _choices(enum: type[StrEnum]) -> str:
    return ", ".join(LABELS.get(member, member.value) for member in enum)


def validate_checkin(draft: CheckInDraft, today: date) -> list[CheckInProblem]:
    """Return every problem with a check-in draft (empty list = fine to save).

    ``today`` is the clinic's current date; a check-in dated after it is refused.
    """
    problems: list[CheckInProblem] = []

    if draft.date > today:
        problems.append(
            CheckInProblem("date", "The check-in date is in the future. Use the date it happened.")
        )
    if draft.mode not in set(CheckInMode):
        problems.append(
            CheckInProblem("mode", f"Choose how the check-in was done: {_choices(CheckInMode)}.")
        )
    if not draft.recorded_by.strip():
        problems.append(CheckInProblem("recorded_by", "Record who did the check-in."))
    if draft.adherence not in set(Adherence):
        problems.append(
            CheckInProblem(
                "adherence", f"Choose how the medicine has been taken: {_choices(Adherence)}."
            )
        )
    if len(draft.notes) > MAX_NOTE_CHARS:
        problems.append(
            CheckInProblem("notes", f"Notes are limited to {MAX_NOTE_CHARS} characters.")
        )
    if draft.protocol_version_id is not None and draft.protocol_version_id <= 0:
        problems.append(
            CheckInProblem("protocol_version_id", "The protocol version is not a valid record.")
        )
    problems.extend(_symptom_problems(draft.symptoms))
    return problems


def _symptom_problems(symptoms: tuple[SymptomReport, ...]) -> list[CheckInProblem]:
    problems: list[CheckInProblem] = []
    seen: set[str] = set()
    for position, report in enumerate(symptoms, start=1):
        field = f"symptoms[{position}]"
        name = LABELS.get(report.symptom, f"Symptom {position}")
        if report.symptom not in set(Symptom):
            problems.append(
                CheckInProblem(
                    field,
                    f"Symptom {position} is not one KetaDesk records. "
                    f"Choose one of: {_choices(Symptom)}.",
                )
            )
        elif report.symptom != Symptom.OTHER and report.symptom in seen:
            problems.append(CheckInProblem(field, f"{name} is listed more than once."))
        seen.add(report.symptom)
        if report.severity not in set(Severity):
            problems.append(
                CheckInProblem(field, f"{name}: choose a severity (none, mild, moderate, severe).")
            )
        if report.symptom == Symptom.OTHER and not report.note.strip():
            problems.append(CheckInProblem(field, "Describe the 'other' symptom in its note."))
        if len(report.note) > MAX_SYMPTOM_NOTE_CHARS:
            problems.append(
                CheckInProblem(
                    field, f"{name}: the note is limited to {MAX_SYMPTOM_NOTE_CHARS} characters."
                )
            )
    return problems
