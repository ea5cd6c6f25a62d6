"""Home doses against a signed protocol on a real encrypted database: the protocol's rules
apply to a patient still marked "Screening" (defect 4), and the dose-entry calendar (defect 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ketadesk.core.dose_log import DoseFlagKind, DoseLogEntry
from ketadesk.core.errors import UserFacingError
from ketadesk.models.patients import Patient
from ketadesk.storage.outcomes import outcomes, safety_alerts
from ketadesk.storage.outcomes.monitoring_plans import (
    PRACTICE_DEFAULT_SOURCE,
    due_by_patient,
    monitoring_cadence_for,
)
from ketadesk.storage.patients.patients import change_status
from tests.unit.signed_protocol_patients import patient_with_signed_protocol


@pytest.fixture
def practice(practice_on: Any) -> Any:
    """Each test on a practice file and on a practice server (``tests/conftest.py``)."""
    return practice_on


NOW = datetime.now(UTC)
START = NOW.date() - timedelta(days=14)


@pytest.fixture
def screening_patient(practice: Any) -> int:
    with practice.db.session() as s:
        return patient_with_signed_protocol(s, practice.physician, START)


def test_a_signed_protocol_applies_while_the_patient_is_still_screening(
    practice: Any, screening_patient: int
) -> None:
    with practice.db.session() as s:
        assert s.get(Patient, screening_patient).status == "screening"
        plan = monitoring_cadence_for(s, screening_patient)
        due = due_by_patient(s, [screening_patient], NOW.date())
    assert plan.source != PRACTICE_DEFAULT_SOURCE
    assert plan.dose_rules.hold_systolic_above == 140
    assert plan.dose_rules.max_single_dose_mg == 30
    assert plan.cadence.checkin_every_days == 7
    assert screening_patient in due  # monitoring is due, not "nothing is due"
    assert due[screening_patient].is_overdue  # 14 days in, no check-in yet
    entry = DoseLogEntry(taken_at=NOW - timedelta(hours=2), dose_mg=20,
                         bp_before_systolic=168, bp_before_diastolic=102, sitter_present=True)
    with practice.db.session() as s:
        saved = outcomes.record_dose(s, practice.admin, screening_patient, entry)
    assert [f.kind for f in saved.flags] == [DoseFlagKind.BP_ABOVE_HOLD]


def test_paused_patients_have_nothing_due_but_their_doses_are_still_checked(
    practice: Any, screening_patient: int
) -> None:
    with practice.db.session() as s:
        change_status(s, practice.physician, screening_patient, "active", "Starting (test)")
        change_status(s, practice.physician, screening_patient, "paused", "Travelling (test)")
        assert due_by_patient(s, [screening_patient], NOW.date()) == {}
        assert monitoring_cadence_for(s, screening_patient).dose_rules.max_single_dose_mg == 30


def test_the_dose_entry_calendar_comes_from_the_signed_protocol(
    practice: Any, screening_patient: int
) -> None:
    with practice.db.session() as s:
        context = outcomes.dose_calendar_context(s, screening_patient)
        loaded = outcomes.patient_outcomes(s, screening_patient, NOW.date())
    assert context.first_session == START
    assert context.planned_dates[0] == START and len(context.planned_dates) == 12
    assert context.max_single_dose_mg == 30
    assert loaded.dose_context == context


def test_storage_refuses_a_reading_that_cannot_be_right(
    practice: Any, screening_patient: int
) -> None:
    entry = DoseLogEntry(taken_at=NOW - timedelta(hours=1), dose_mg=20,
                         bp_before_systolic=88, bp_before_diastolic=95)
    with practice.db.session() as s, pytest.raises(UserFacingError, match="diastolic"):
        outcomes.record_dose(s, practice.admin, screening_patient, entry)


def _dose(hours_ago: float, mg: float = 20, bp: tuple[int, int] = (128, 80)) -> DoseLogEntry:
    return DoseLogEntry(taken_at=NOW - timedelta(hours=hours_ago), dose_mg=mg,
                        bp_before_systolic=bp[0], bp_before_diastolic=bp[1], sitter_present=True)


def test_a_blood_pressure_breach_raises_an_alert_that_reaches_the_roster(
    practice: Any, screening_patient: int
) -> None:
    """Defect 5: 168/102 against a hold limit of 140/90 is an alert, not only a table word."""
    from ketadesk.storage.outcomes.dose_alerts import open_dose_alerts
    from ketadesk.storage.roster import roster_columns as rc
    from ketadesk.storage.roster import roster_query as rq

    rc.install_roster_columns()
    with practice.db.session() as s:
        outcomes.record_dose(s, practice.admin, screening_patient, _dose(100))  # within limits
        assert safety_alerts.open_safety_alerts(s) == set()
        outcomes.record_dose(s, practice.admin, screening_patient, _dose(2, bp=(168, 102)))
    with practice.db.session() as s:
        kinds = safety_alerts.open_safety_alert_kinds(s)
        [alert] = open_dose_alerts(s, screening_patient)
        flagged = rq.fetch_roster_page(
            s, rq.RosterFilter(flags=frozenset({rc.SAFETY_ALERT_OPEN})), limit=100
        )
    assert kinds.dose_breach == {screening_patient} and kinds.suicide_risk == set()
    assert alert.breach_words() == "blood pressure above the hold limit"
    assert [row.patient_id for row in flagged] == [screening_patient]
    assert flagged[0].extras[rc.SAFETY_ALERT] == 1


def test_dose_over_the_maximum_and_too_soon_raise_alerts_but_a_missing_sitter_does_not(
    practice: Any, screening_patient: int
) -> None:
    from ketadesk.core.dose_log import DoseFlagKind as Kind
    from ketadesk.storage.outcomes.dose_alerts import open_dose_alerts

    with practice.db.session() as s:
        outcomes.record_dose(s, practice.admin, screening_patient, DoseLogEntry(
            taken_at=NOW - timedelta(hours=200), dose_mg=20, bp_before_systolic=120,
            bp_before_diastolic=80, sitter_present=False))
        assert open_dose_alerts(s, screening_patient) == ()
        outcomes.record_dose(s, practice.admin, screening_patient, _dose(30, mg=40))
        outcomes.record_dose(s, practice.admin, screening_patient, _dose(10))  # 20 h after
    with practice.db.session() as s:
        alerts = open_dose_alerts(s, screening_patient)
    assert [a.kinds for a in alerts] == [(Kind.TOO_SOON,), (Kind.OVER_MAXIMUM,)]


def test_a_physician_acknowledges_a_dose_alert_with_a_note_and_it_is_audited(
    practice: Any, screening_patient: int
) -> None:
    from sqlalchemy import select

    from ketadesk.core import audit_actions
    from ketadesk.models.audit import AuditEvent
    from ketadesk.storage.outcomes.dose_alerts import acknowledge_dose_alert, open_dose_alerts
    from ketadesk.storage.security.audit_log import verify_audit

    with practice.db.session() as s:
        outcomes.record_dose(s, practice.admin, screening_patient, _dose(2, bp=(168, 102)))
        [alert] = open_dose_alerts(s, screening_patient)
    with practice.db.session() as s, pytest.raises(UserFacingError, match="Only physicians"):
        acknowledge_dose_alert(s, practice.admin, alert.id, "Called the patient")
    with practice.db.session() as s, pytest.raises(UserFacingError, match="what was done"):
        acknowledge_dose_alert(s, practice.physician, alert.id, "  ")
    note = "Phoned Zoë: hold the next dose, recheck BP tomorrow"
    with practice.db.session() as s:
        done = acknowledge_dose_alert(s, practice.physician, alert.id, note)
        assert done.acknowledged_by == practice.physician.user_name and done.note == note
        assert safety_alerts.open_safety_alerts(s) == set()
        with pytest.raises(UserFacingError, match="already acknowledged"):
            acknowledge_dose_alert(s, practice.physician, alert.id, "again")
    with practice.db.session() as s:
        events = s.execute(
            select(AuditEvent.action, AuditEvent.detail)
            .where(AuditEvent.patient_id == screening_patient,
                   AuditEvent.action.in_([audit_actions.DOSE_ALERT_RAISED,
                                          audit_actions.DOSE_ALERT_ACKNOWLEDGED]))
            .order_by(AuditEvent.id)
        ).all()
        assert verify_audit(s).is_intact
    assert [action for action, _ in events] == [
        audit_actions.DOSE_ALERT_RAISED, audit_actions.DOSE_ALERT_ACKNOWLEDGED,
    ]
    assert all("Phoned" not in (detail or "") and "Zoë" not in (detail or "")
               for _, detail in events)
