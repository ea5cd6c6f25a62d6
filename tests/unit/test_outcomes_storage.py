"""Outcomes storage on a real encrypted practice database: record, read back, alerts, due dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from ketadesk.core import audit_actions
from ketadesk.core.checkins import CheckInDraft, SymptomReport
from ketadesk.core.dose_log import DoseFlagKind, DoseLogEntry, DoseRules
from ketadesk.core.errors import UserFacingError
from ketadesk.models.audit import AuditEvent
from ketadesk.models.patients import Patient, PatientStatusChange
from ketadesk.storage.outcomes import outcomes, safety_alerts
from ketadesk.storage.outcomes.monitoring_plans import (
    PRACTICE_DEFAULT_SOURCE,
    due_by_patient,
    monitoring_cadence_for,
    next_due_by_patient,
    overdue_patient_ids,
)
from ketadesk.storage.practice.settings_store import set_setting
from ketadesk.storage.security.audit_log import verify_audit


@pytest.fixture
def practice(practice_on):
    """Each test on a practice file and on a practice server (``tests/conftest.py``)."""
    return practice_on


TODAY = date(2026, 3, 2)
PHQ_ITEM9 = [1, 1, 1, 1, 1, 1, 1, 0, 1]  # total 8, item 9 = 1


def add_patient(
    session: Any, mrn: str, status: str = "active", activated: date | None = None
) -> int:
    patient = Patient(
        mrn=mrn,
        first_name="Zoë",
        last_name="Testperson",
        dob=date(1980, 5, 1),
        state="FL",
        status=status,
    )
    session.add(patient)
    session.flush()
    if activated is not None:
        session.add(
            PatientStatusChange(
                patient_id=patient.id,
                from_status="screening",
                to_status=status,
                reason="test",
                changed_by="drquill",
                changed_at=datetime(activated.year, activated.month, activated.day, 15, tzinfo=UTC),
            )
        )
    return patient.id


def draft(on: date, **overrides: Any) -> CheckInDraft:
    values: dict[str, Any] = {
        "date": on,
        "mode": "video",
        "recorded_by": "Dr. Rowan Quill",
        "symptoms": (
            SymptomReport("nausea", "mild"),
            SymptomReport("other", "moderate", "jaw tension"),
        ),
        "adherence": "as_prescribed",
        "notes": "Tolerating well.",
    }
    values.update(overrides)
    return CheckInDraft(**values)


def audit_actions_for(session: Any, patient_id: int) -> list[str]:
    return list(
        session.execute(
            select(AuditEvent.action)
            .where(AuditEvent.patient_id == patient_id)
            .order_by(AuditEvent.seq)
        ).scalars()
    )


def test_checkin_round_trip_and_audit(practice: Any) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, "K-0001", activated=date(2026, 2, 1))
        saved = outcomes.record_checkin(
            s, practice.physician, pid, draft(date(2026, 2, 15)), today=TODAY
        )
    with practice.db.session() as s:
        (back,) = outcomes.list_checkins(s, pid)
        assert back == saved
        assert back.mode_label == "Video call"
        assert back.symptoms == (
            SymptomReport("nausea", "mild", ""),
            SymptomReport("other", "moderate", "jaw tension"),
        )
        assert back.symptoms_text() == "Nausea or vomiting (mild); Other: jaw tension (moderate)"
        assert audit_actions_for(s, pid) == [audit_actions.CHECKIN_RECORDED]


def test_checkin_problems_are_refused_and_admins_cannot_record(practice: Any) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, "K-0002")
    with practice.db.session() as s, pytest.raises(UserFacingError, match="future"):
        outcomes.record_checkin(
            s, practice.physician, pid, draft(TODAY + timedelta(days=1)), today=TODAY
        )
    with practice.db.session() as s, pytest.raises(UserFacingError, match="Only physicians"):
        outcomes.record_checkin(s, practice.admin, pid, draft(TODAY), today=TODAY)
    with practice.db.session() as s:
        assert outcomes.list_checkins(s, pid) == ()


def test_incomplete_questionnaire_is_stored_as_incomplete(practice: Any) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, "K-0003")
        outcomes.record_questionnaire(
            s, practice.admin, pid, "GAD-7", [3, 3, None, 3, 3, 3, 3], TODAY, today=TODAY
        )
        outcomes.record_questionnaire(s, practice.admin, pid, "PHQ-9", [2] * 9, TODAY, today=TODAY)
    with practice.db.session() as s:
        gad, phq = sorted(outcomes.list_questionnaires(s, pid), key=lambda q: q.instrument)
    assert gad.instrument == "GAD-7"
    assert gad.complete is False
    assert gad.total is None and gad.band is None
    assert gad.answers == (3, 3, None, 3, 3, 3, 3)
    assert gad.to_json()["complete"] is False
    assert phq.complete is True and phq.total == 18 and phq.band == "moderately severe"
    assert phq.safety_alert is True  # item 9 = 2
    assert phq.to_json() == {
        "instrument": "PHQ-9",
        "date": TODAY.isoformat(),
        "items": [2] * 9,
        "total": 18,
        "band": "moderately severe",
        "complete": True,
        "safety_alert": True,
        "acknowledged_by": None,
    }


def test_questionnaire_bad_input(practice: Any) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, "K-0004")
    with practice.db.session() as s, pytest.raises(UserFacingError, match="9 questions"):
        outcomes.record_questionnaire(
            s, practice.physician, pid, "PHQ-9", [1] * 8, TODAY, today=TODAY
        )
    with practice.db.session() as s, pytest.raises(UserFacingError, match="future"):
        outcomes.record_questionnaire(
            s, practice.physician, pid, "PHQ-9", [1] * 9, TODAY + timedelta(days=1), today=TODAY
        )
    with practice.db.session() as s, pytest.raises(UserFacingError, match="Unknown questionnaire"):
        outcomes.record_questionnaire(
            s, practice.physician, pid, "BDI", [1] * 21, TODAY, today=TODAY
        )


def test_item9_alert_open_until_a_physician_acknowledges(practice: Any) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, "K-0005")
        other = add_patient(s, "K-0006")
        form = outcomes.record_questionnaire(
            s, practice.admin, pid, "PHQ-9", PHQ_ITEM9, TODAY, today=TODAY
        )
        outcomes.record_questionnaire(
            s, practice.admin, other, "PHQ-9", [1] * 8 + [0], TODAY, today=TODAY
        )
    assert form.safety_alert and form.needs_acknowledgement
    with practice.db.session() as s:
        assert safety_alerts.open_safety_alerts(s) == {pid}
    with practice.db.session() as s, pytest.raises(UserFacingError, match="Only physicians"):
        outcomes.acknowledge_safety_alert(s, practice.admin, form.id, "called patient")
    with practice.db.session() as s:
        assert safety_alerts.open_safety_alerts(s) == {pid}
        acked = outcomes.acknowledge_safety_alert(
            s, practice.physician, form.id, "Called; safe plan"
        )
    assert acked.acknowledgement is not None
    assert acked.acknowledgement.acknowledged_by == practice.physician.user_name
    assert acked.needs_acknowledgement is False
    with practice.db.session() as s:
        assert safety_alerts.open_safety_alerts(s) == set()
        assert audit_actions_for(s, pid) == [
            audit_actions.QUESTIONNAIRE_RECORDED,
            audit_actions.SAFETY_ALERT_ACKNOWLEDGED,
        ]
        assert verify_audit(s).is_intact
        with pytest.raises(UserFacingError, match="already acknowledged"):
            outcomes.acknowledge_safety_alert(s, practice.physician, form.id)
    signatures = practice.db.content_signatures()
    # The physician's own key signs the acknowledgement, on a file and on a server alike.
    assert [(c.subject_kind, c.subject_id, c.signed_by, c.is_valid) for c in signatures] == [
        ("safety_alert_ack", form.id, practice.physician.user_name, True)
    ]


def test_item9_acknowledgement_needs_a_note_of_what_was_done(practice: Any) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, "K-0009")
        form = outcomes.record_questionnaire(
            s, practice.admin, pid, "PHQ-9", PHQ_ITEM9, TODAY, today=TODAY
        )
    for empty in ("", "   \n "):
        with practice.db.session() as s, pytest.raises(UserFacingError, match="what was done"):
            outcomes.acknowledge_safety_alert(s, practice.physician, form.id, empty)
    with practice.db.session() as s:
        assert safety_alerts.open_safety_alerts(s) == {pid}
        acked = outcomes.acknowledge_safety_alert(s, practice.physician, form.id, "  Called  ")
    assert acked.acknowledgement is not None and acked.acknowledgement.note == "Called"


def test_a_form_without_alert_cannot_be_acknowledged(practice: Any) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, "K-0007")
        form = outcomes.record_questionnaire(
            s, practice.admin, pid, "GAD-7", [1] * 7, TODAY, today=TODAY
        )
        with pytest.raises(UserFacingError, match="no item-9 alert"):
            outcomes.acknowledge_safety_alert(s, practice.physician, form.id)


def test_incomplete_phq9_still_raises_item9_alert(practice: Any) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, "K-0008")
        form = outcomes.record_questionnaire(
            s, practice.admin, pid, "PHQ-9", [None] * 8 + [3], TODAY, today=TODAY
        )
        assert form.complete is False and form.safety_alert is True
        assert safety_alerts.open_safety_alerts(s) == {pid}


def test_dose_log_round_trip_with_flags(practice: Any) -> None:
    when = datetime(2026, 2, 20, 19, 0, tzinfo=UTC)
    rules = DoseRules(min_hours_between_doses=72, max_single_dose_mg=200, hold_systolic_above=160)
    with practice.db.session() as s:
        pid = add_patient(s, "K-0009")
        outcomes.record_dose(
            s, practice.admin, pid, DoseLogEntry(when, 150, 128, 82, 134, 84, 70, 76, True, "calm")
        )
        outcomes.record_dose(
            s, practice.admin, pid, DoseLogEntry(when + timedelta(hours=24), 250, 170, 95)
        )
    with practice.db.session() as s:
        newest, oldest = outcomes.list_dose_log(s, pid, rules)
        default_flags = outcomes.list_dose_log(s, pid)
    assert oldest.entry == DoseLogEntry(when, 150.0, 128, 82, 134, 84, 70, 76, True, "calm")
    assert oldest.flags == ()
    assert {f.kind for f in newest.flags} == {
        DoseFlagKind.TOO_SOON,
        DoseFlagKind.OVER_MAXIMUM,
        DoseFlagKind.BP_ABOVE_HOLD,
    }
    assert newest.has_breach
    # No protocol yet: the practice default plan has no dose rules, so nothing is flagged.
    assert all(item.flags == () for item in default_flags)


def test_dose_log_refuses_slips(practice: Any) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, "K-0010")
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    for entry, message in (
        (DoseLogEntry(now, 150, bp_before_systolic=1200), "systolic"),
        (DoseLogEntry(now + timedelta(days=1), 150), "future"),
        (DoseLogEntry(now, 0), "more than 0 mg"),
    ):
        with practice.db.session() as s, pytest.raises(UserFacingError, match=message):
            outcomes.record_dose(s, practice.admin, pid, entry, now=now)


def test_due_dates_follow_the_practice_default_and_setting(practice: Any) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, "K-0011", activated=date(2026, 1, 5))
        outcomes.record_checkin(s, practice.physician, pid, draft(date(2026, 2, 16)), today=TODAY)
        outcomes.record_questionnaire(
            s, practice.admin, pid, "PHQ-9", [0] * 9, date(2026, 2, 9), today=TODAY
        )
        outcomes.record_questionnaire(
            s, practice.admin, pid, "GAD-7", [0] * 6 + [None], date(2026, 2, 9), today=TODAY
        )
    with practice.db.session() as s:
        plan = monitoring_cadence_for(s, pid)
        assert plan.source == PRACTICE_DEFAULT_SOURCE
        assert (plan.cadence.checkin_every_days, plan.cadence.questionnaire_every_weeks) == (14, 4)
        assert plan.starts_on == date(2026, 1, 5)
        status = due_by_patient(s, [pid], TODAY)[pid]
    assert status.next_checkin_due == date(2026, 3, 2)
    assert status.questionnaires_due["PHQ-9"] == date(2026, 3, 9)
    # The GAD-7 was incomplete, so the baseline GAD-7 (due at the start) is still owed.
    assert status.questionnaires_due["GAD-7"] == date(2026, 1, 5)
    assert status.overdue == ("GAD-7",)

    with practice.db.session() as s:
        set_setting(s, practice.physician, "default_checkin_every_days", 7)
        status = due_by_patient(s, [pid], TODAY)[pid]
        assert status.next_checkin_due == date(2026, 2, 23)
        assert "check-in" in status.overdue


def test_overdue_list_and_next_due_for_the_roster(practice: Any) -> None:
    start = date(2026, 2, 20)
    with practice.db.session() as s:
        up_to_date = add_patient(s, "K-0012", activated=start)
        late = add_patient(s, "K-0013", activated=date(2025, 12, 1))
        paused = add_patient(s, "K-0014", status="paused", activated=date(2025, 12, 1))
        for pid in (up_to_date, late):
            outcomes.record_checkin(s, practice.physician, pid, draft(start), today=TODAY)
        for instrument, answers in (("PHQ-9", [1] * 9), ("GAD-7", [1] * 7)):
            outcomes.record_questionnaire(
                s, practice.admin, up_to_date, instrument, [*answers[:-1], 0], start, today=TODAY
            )
            outcomes.record_questionnaire(
                s,
                practice.admin,
                late,
                instrument,
                [*answers[:-1], 0],
                date(2025, 12, 1),
                today=TODAY,
            )
    with practice.db.session() as s:
        assert overdue_patient_ids(s, TODAY) == {late}
        due = next_due_by_patient(s, [up_to_date, late, paused], TODAY)
    assert due == {up_to_date: date(2026, 3, 6), late: date(2025, 12, 29)}
    assert paused not in due  # not in active treatment: nothing is due


def test_patient_outcomes_and_json(practice: Any) -> None:
    with practice.db.session() as s:
        pid = add_patient(s, "K-0015", activated=date(2026, 1, 5))
        outcomes.record_questionnaire(
            s, practice.admin, pid, "PHQ-9", [2] * 8 + [0], date(2026, 1, 5), today=TODAY
        )
        outcomes.record_questionnaire(
            s, practice.admin, pid, "PHQ-9", [1] * 8 + [0], date(2026, 2, 2), today=TODAY
        )
        outcomes.record_checkin(s, practice.physician, pid, draft(date(2026, 2, 2)), today=TODAY)
    with practice.db.session() as s:
        result = outcomes.patient_outcomes(s, pid, TODAY)
    assert [q.total for q in result.questionnaires] == [8, 16]  # newest first
    data = outcomes.outcomes_json(result)
    assert [q["total"] for q in data["questionnaires"]] == [16, 8]  # oldest first
    assert data["checkins"][0]["mode"] == "video"
    assert data["monitoring"]["source"] == "practice default"
    assert result.due is not None and "GAD-7" in result.due.overdue


def test_a_pasted_nul_in_a_note_is_refused_in_words_and_nothing_is_saved(practice: Any) -> None:
    """A NUL byte (from pasting out of another program) cannot be stored on a server; it is
    refused in words on both back ends, and the check-in is not half saved."""
    with practice.db.session() as s:
        pid = add_patient(s, "K-0003", activated=date(2026, 2, 1))
    with pytest.raises(UserFacingError, match="cannot be stored") as refused:
        with practice.db.session() as s:
            outcomes.record_checkin(
                s, practice.physician, pid, draft(date(2026, 2, 15), notes="Seen\x00 at home"),
                today=TODAY,
            )
    assert "Nothing was saved" in refused.value.message
    with practice.db.read_session() as s:
        assert outcomes.list_checkins(s, pid) == ()
