"""Check-in drafts: every field validated, all problems reported at once."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from ketadesk.core.checkins import (
    MAX_NOTE_CHARS,
    Adherence,
    CheckInDraft,
    CheckInMode,
    Severity,
    Symptom,
    SymptomReport,
    validate_checkin,
)

TODAY = date(2026, 4, 10)


def good_draft() -> CheckInDraft:
    return CheckInDraft(
        date=date(2026, 4, 9),
        mode=CheckInMode.VIDEO,
        recorded_by="Dr. Test Clinician",
        symptoms=(
            SymptomReport(Symptom.DISSOCIATION, Severity.MILD, "resolved within an hour"),
            SymptomReport(Symptom.NAUSEA, Severity.NONE),
        ),
        adherence=Adherence.AS_PRESCRIBED,
        notes="Synthetic patient; sleeping better.",
        protocol_version_id=3,
    )


def fields(draft: CheckInDraft) -> list[str]:
    return [problem.field for problem in validate_checkin(draft, TODAY)]


def test_good_draft_has_no_problems() -> None:
    assert validate_checkin(good_draft(), TODAY) == []


def test_plain_strings_are_accepted_as_codes() -> None:
    draft = replace(
        good_draft(),
        mode="home_visit",
        adherence="missed_doses",
        symptoms=(SymptomReport("urinary_symptoms", "moderate"),),
        protocol_version_id=None,
    )
    assert validate_checkin(draft, TODAY) == []


def test_check_in_today_is_allowed_but_tomorrow_is_not() -> None:
    assert fields(replace(good_draft(), date=TODAY)) == []
    problems = validate_checkin(replace(good_draft(), date=date(2026, 4, 11)), TODAY)
    assert [p.field for p in problems] == ["date"]
    assert "future" in problems[0].message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"mode": "carrier_pigeon"}, "mode"),
        ({"recorded_by": "   "}, "recorded_by"),
        ({"adherence": "sometimes"}, "adherence"),
        ({"notes": "x" * (MAX_NOTE_CHARS + 1)}, "notes"),
        ({"protocol_version_id": 0}, "protocol_version_id"),
    ],
)
def test_each_bad_field_is_named(change: dict[str, object], field: str) -> None:
    assert fields(replace(good_draft(), **change)) == [field]  # type: ignore[arg-type]


def test_unknown_mode_message_lists_the_choices() -> None:
    (problem,) = validate_checkin(replace(good_draft(), mode="fax"), TODAY)
    assert "Video call" in problem.message and "Home visit" in problem.message


def test_symptom_problems() -> None:
    draft = replace(
        good_draft(),
        symptoms=(
            SymptomReport("hiccups", "mild"),
            SymptomReport(Symptom.HEADACHE, "terrible"),
            SymptomReport(Symptom.OTHER, Severity.MILD, "  "),
            SymptomReport(Symptom.NAUSEA, Severity.MILD),
            SymptomReport(Symptom.NAUSEA, Severity.SEVERE),
        ),
    )
    problems = validate_checkin(draft, TODAY)
    by_field = {p.field: p.message for p in problems}
    assert set(by_field) == {"symptoms[1]", "symptoms[2]", "symptoms[3]", "symptoms[5]"}
    assert "not one KetaDesk records" in by_field["symptoms[1]"]
    assert "Headache" in by_field["symptoms[2]"] and "severity" in by_field["symptoms[2]"]
    assert "other" in by_field["symptoms[3]"]
    assert "more than once" in by_field["symptoms[5]"]


def test_several_other_symptoms_are_allowed() -> None:
    draft = replace(
        good_draft(),
        symptoms=(
            SymptomReport(Symptom.OTHER, Severity.MILD, "vivid dreams"),
            SymptomReport(Symptom.OTHER, Severity.MILD, "dry mouth"),
        ),
    )
    assert validate_checkin(draft, TODAY) == []


def test_all_problems_reported_together() -> None:
    draft = replace(good_draft(), date=date(2027, 1, 1), mode="", recorded_by="", adherence="")
    assert fields(draft) == ["date", "mode", "recorded_by", "adherence"]
