"""Due and overdue dates from the protocol's monitoring plan."""

from __future__ import annotations

from datetime import date

import pytest

from ketadesk.core.errors import UserFacingError
from ketadesk.core.monitoring_due import MonitoringCadence, next_due

START = date(2026, 1, 5)
PLAN = MonitoringCadence(checkin_every_days=7, questionnaire_every_weeks=4)


def test_new_patient_needs_baselines_on_start_day() -> None:
    status = next_due(None, {}, PLAN, START, today=START)
    assert status.next_checkin_due == date(2026, 1, 12)
    assert dict(status.questionnaires_due) == {"PHQ-9": START, "GAD-7": START}
    assert status.is_overdue is False  # due today is not overdue
    assert status.days_overdue == 0
    assert status.next_due == START


def test_missing_baselines_become_overdue_the_day_after_start() -> None:
    status = next_due(None, {}, PLAN, START, today=date(2026, 1, 6))
    assert status.overdue == ("PHQ-9", "GAD-7")
    assert status.days_overdue == 1


def test_dates_follow_the_last_contacts() -> None:
    status = next_due(
        date(2026, 2, 2),
        {"PHQ-9": date(2026, 1, 26), "gad7": date(2026, 1, 19)},
        PLAN,
        START,
        today=date(2026, 2, 5),
    )
    assert status.next_checkin_due == date(2026, 2, 9)
    assert status.questionnaires_due["PHQ-9"] == date(2026, 2, 23)
    assert status.questionnaires_due["GAD-7"] == date(2026, 2, 16)
    assert status.is_overdue is False
    assert status.next_due == date(2026, 2, 9)


def test_days_overdue_counts_from_the_earliest_missed_date() -> None:
    status = next_due(
        date(2026, 2, 2),  # check-in due 2026-02-09
        {"PHQ-9": date(2026, 1, 5), "GAD-7": date(2026, 2, 2)},  # PHQ-9 due 02-02, GAD-7 03-02
        PLAN,
        START,
        today=date(2026, 2, 12),
    )
    assert status.overdue == ("check-in", "PHQ-9")
    assert status.days_overdue == 10
    assert status.is_overdue


def test_check_in_overdue_boundary() -> None:
    on_due_day = next_due(
        date(2026, 1, 5), {"PHQ-9": START, "GAD-7": START}, PLAN, START, today=date(2026, 1, 12)
    )
    assert on_due_day.is_overdue is False
    day_after = next_due(
        date(2026, 1, 5), {"PHQ-9": START, "GAD-7": START}, PLAN, START, today=date(2026, 1, 13)
    )
    assert (day_after.overdue, day_after.days_overdue) == (("check-in",), 1)


def test_only_planned_instruments_are_tracked() -> None:
    plan = MonitoringCadence(
        checkin_every_days=14, questionnaire_every_weeks=2, instruments=("PHQ-9",)
    )
    status = next_due(
        None,
        {"PHQ-9": date(2026, 1, 1), "GAD-7": date(2025, 1, 1)},
        plan,
        START,
        today=date(2026, 1, 10),
    )
    assert dict(status.questionnaires_due) == {"PHQ-9": date(2026, 1, 15)}
    assert status.next_checkin_due == date(2026, 1, 19)
    assert status.is_overdue is False


def test_screening_questionnaire_before_start_counts_as_baseline() -> None:
    status = next_due(
        None, {"PHQ-9": date(2025, 12, 29), "GAD-7": date(2025, 12, 29)}, PLAN, START, today=START
    )
    assert status.questionnaires_due["PHQ-9"] == date(2026, 1, 26)


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (MonitoringCadence(0, 4), "at least 1 day"),
        (MonitoringCadence(7, 0), "at least 1 week"),
        (MonitoringCadence(7, 4, ("BDI-II",)), "Unknown questionnaire"),
    ],
)
def test_bad_plans_are_refused(plan: MonitoringCadence, message: str) -> None:
    with pytest.raises(UserFacingError, match=message):
        next_due(None, {}, plan, START, today=START)
