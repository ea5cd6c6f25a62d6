"""Home doses against a signed protocol on a real encrypted database: the protocol's rules
apply to a patient still marked "Screening" (defect 4), and the dose-entry calendar (defect 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ketadesk.core.dose_log import DoseFlagKind, DoseLogEntry
from ketadesk.core.errors import UserFacingError
from ketadesk.models.patients import Patient
from ketadesk.storage.outcomes import outcomes
from ketadesk.storage.outcomes.monitoring_plans import (
    PRACTICE_DEFAULT_SOURCE,
    due_by_patient,
    monitoring_cadence_for,
)
from ketadesk.storage.patients.patients import change_status
from tests.unit.signed_protocol_patients import patient_with_signed_protocol

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
