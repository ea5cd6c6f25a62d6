"""Home dose log flags: too soon, over maximum, BP above hold, no sitter, not checked."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from ketadesk.core.dose_log import (
    DoseCalendarContext,
    DoseFlagKind,
    DoseLogEntry,
    DoseRules,
    dose_entry_concerns,
    dose_log_flags,
)
from ketadesk.core.errors import UserFacingError

EASTERN = timezone(timedelta(hours=-5))
START = datetime(2026, 2, 2, 19, 0, tzinfo=EASTERN)

RULES = DoseRules(
    min_hours_between_doses=72,
    max_single_dose_mg=200,
    hold_systolic_above=160,
    hold_diastolic_above=100,
    sitter_required=True,
)


def entry(hours_after_start: float = 0, **changes: object) -> DoseLogEntry:
    values: dict[str, object] = {
        "taken_at": START + timedelta(hours=hours_after_start),
        "dose_mg": 150,
        "bp_before_systolic": 128,
        "bp_before_diastolic": 82,
        "bp_after_systolic": 138,
        "bp_after_diastolic": 86,
        "hr_before": 72,
        "hr_after": 80,
        "sitter_present": True,
    }
    values.update(changes)
    return DoseLogEntry(**values)  # type: ignore[arg-type]


def kinds(flags: dict[int, list[object]], index: int) -> list[DoseFlagKind]:
    return [flag.kind for flag in flags.get(index, [])]  # type: ignore[attr-defined]


def test_clean_log_has_no_flags() -> None:
    assert dose_log_flags([entry(0), entry(72), entry(168)], RULES) == {}


def test_too_soon_is_flagged_on_the_later_dose_with_hours() -> None:
    flags = dose_log_flags([entry(0), entry(48)], RULES)
    assert list(flags) == [1]
    (flag,) = flags[1]
    assert flag.kind is DoseFlagKind.TOO_SOON
    assert flag.is_breach
    assert "48 hours after the previous dose" in flag.message
    assert "at least 72 hours" in flag.message


def test_exactly_the_minimum_interval_is_fine() -> None:
    assert dose_log_flags([entry(0), entry(72)], RULES) == {}
    assert kinds(dose_log_flags([entry(0), entry(71.5)], RULES), 1) == [DoseFlagKind.TOO_SOON]


def test_too_soon_uses_time_order_not_list_order() -> None:
    flags = dose_log_flags([entry(100), entry(0), entry(24)], RULES)
    assert list(flags) == [2]  # 24 h after the dose at index 1
    assert kinds(flags, 2) == [DoseFlagKind.TOO_SOON]


def test_interval_across_time_zones_is_real_elapsed_time() -> None:
    first = entry(0)
    # 2026-02-05 00:30 UTC is 19:30 Eastern on 2026-02-04: only 48.5 hours later.
    second = entry(taken_at=datetime(2026, 2, 5, 0, 30, tzinfo=UTC))
    (flag,) = dose_log_flags([first, second], RULES)[1]
    assert "48.5 hours" in flag.message


def test_short_gap_is_stated_in_minutes() -> None:
    (flag,) = dose_log_flags([entry(0), entry(0.5)], RULES)[1]
    assert "30 minutes" in flag.message


def test_over_maximum() -> None:
    flags = dose_log_flags([entry(0, dose_mg=200), entry(100, dose_mg=250)], RULES)
    assert list(flags) == [1]
    (flag,) = flags[1]
    assert flag.kind is DoseFlagKind.OVER_MAXIMUM
    assert "250 mg" in flag.message and "200 mg" in flag.message


@pytest.mark.parametrize(
    ("systolic", "diastolic", "expected"),
    [
        (160, 100, []),  # at the threshold is not above it
        (161, 80, ["systolic above 160 mmHg"]),
        (130, 101, ["diastolic above 100 mmHg"]),
        (170, 105, ["systolic above 160 mmHg", "diastolic above 100 mmHg"]),
    ],
)
def test_bp_above_hold(systolic: int, diastolic: int, expected: list[str]) -> None:
    flags = dose_log_flags(
        [entry(0, bp_before_systolic=systolic, bp_before_diastolic=diastolic)], RULES
    )
    if not expected:
        assert flags == {}
        return
    (flag,) = flags[0]
    assert flag.kind is DoseFlagKind.BP_ABOVE_HOLD
    assert f"{systolic}/{diastolic} mmHg" in flag.message
    for reason in expected:
        assert reason in flag.message


def test_after_dose_bp_does_not_trigger_hold() -> None:
    assert dose_log_flags([entry(0, bp_after_systolic=190, bp_after_diastolic=110)], RULES) == {}


def test_missing_pre_dose_bp_is_not_checked_rather_than_passed() -> None:
    (flag,) = dose_log_flags([entry(0, bp_before_systolic=None)], RULES)[0]
    assert flag.kind is DoseFlagKind.BP_NOT_CHECKED
    assert not flag.is_breach
    assert flag.message.startswith("Not checked")
    assert "systolic" in flag.message


def test_no_bp_rule_means_no_bp_flags() -> None:
    rules = DoseRules(min_hours_between_doses=72)
    assert (
        dose_log_flags([entry(0, bp_before_systolic=None, bp_before_diastolic=None)], rules) == {}
    )


def test_sitter_required() -> None:
    flags = dose_log_flags([entry(0, sitter_present=False), entry(100, sitter_present=None)], RULES)
    assert kinds(flags, 0) == [DoseFlagKind.NO_SITTER]
    assert kinds(flags, 1) == [DoseFlagKind.SITTER_NOT_CHECKED]
    not_required = DoseRules(sitter_required=False)
    assert dose_log_flags([entry(0, sitter_present=False)], not_required) == {}


def test_several_flags_on_one_entry() -> None:
    bad = entry(10, dose_mg=300, bp_before_systolic=175, sitter_present=False)
    flags = dose_log_flags([entry(0), bad], RULES)
    assert kinds(flags, 1) == [
        DoseFlagKind.TOO_SOON,
        DoseFlagKind.OVER_MAXIMUM,
        DoseFlagKind.BP_ABOVE_HOLD,
        DoseFlagKind.NO_SITTER,
    ]


def test_naive_time_is_refused() -> None:
    with pytest.raises(UserFacingError, match="entry 2 has a time without a time zone"):
        dose_log_flags([entry(0), entry(taken_at=datetime(2026, 3, 1, 20, 0))], RULES)  # noqa: DTZ001


@pytest.mark.parametrize("dose", [0, -10])
def test_non_positive_dose_is_refused(dose: float) -> None:
    with pytest.raises(UserFacingError, match="more than 0 mg"):
        dose_log_flags([entry(0, dose_mg=dose)], RULES)


def test_empty_log() -> None:
    assert dose_log_flags([], RULES) == {}


# --------------------------------------------------------------------------- before saving

NOW = datetime(2026, 3, 2, 20, 0, tzinfo=EASTERN)
CALENDAR = DoseCalendarContext(
    first_session=date(2026, 2, 2),
    planned_dates=(date(2026, 2, 2), date(2026, 2, 4), date(2026, 2, 6), date(2026, 2, 27)),
    max_single_dose_mg=30,
)


def typed(when: datetime, dose: float = 20, **changes: object) -> DoseLogEntry:
    values: dict[str, object] = {
        "taken_at": when, "dose_mg": dose, "bp_before_systolic": 128, "bp_before_diastolic": 82,
    }
    values.update(changes)
    return DoseLogEntry(**values)  # type: ignore[arg-type]


def test_a_plausible_dose_on_the_calendar_raises_no_concern() -> None:
    on_plan = datetime(2026, 2, 27, 19, 0, tzinfo=EASTERN)
    assert dose_entry_concerns(typed(on_plan), NOW, CALENDAR) == ()


def test_the_scrambled_keyboard_entry_of_defect_3_is_questioned_and_refused() -> None:
    # Saved by Tab-walking the date sections: 11 months before the protocol, 104 mg, 88/95.
    eleven_months_early = datetime(2025, 3, 2, 20, 0, tzinfo=EASTERN)
    concerns = dose_entry_concerns(
        typed(eleven_months_early, 104, bp_before_systolic=88, bp_before_diastolic=95),
        NOW, CALENDAR,
    )
    blocking = [c.message for c in concerns if c.blocks_saving]
    asked = [c.message for c in concerns if not c.blocks_saving]
    assert blocking == [
        "The blood pressure before the dose reads 88/95: the second number (diastolic) must be "
        "lower than the first (systolic). Check what was typed."
    ]
    assert any("2025-03-02, 337 days before the first session" in m for m in asked)
    assert any("104 mg is above the protocol's maximum single dose of 30 mg" in m for m in asked)


def test_a_future_time_blocks_and_a_date_far_from_the_calendar_is_asked() -> None:
    tomorrow = NOW + timedelta(days=1)
    [future] = dose_entry_concerns(typed(tomorrow), NOW, CALENDAR)
    assert future.blocks_saving and "in the future" in future.message
    off_plan = datetime(2026, 2, 16, 9, 0, tzinfo=EASTERN)
    [far] = dose_entry_concerns(typed(off_plan), NOW, CALENDAR)
    assert not far.blocks_saving
    assert far.message == (
        "The dose is dated 2026-02-16, 10 days away from the nearest session on the "
        "protocol's calendar."
    )
    two_days_off = datetime(2026, 2, 8, 9, 0, tzinfo=EASTERN)
    assert dose_entry_concerns(typed(two_days_off), NOW, CALENDAR) == ()


def test_without_a_protocol_only_a_long_ago_date_is_asked() -> None:
    none = DoseCalendarContext()
    assert dose_entry_concerns(typed(NOW - timedelta(days=30), 500), NOW, none) == ()
    [old] = dose_entry_concerns(typed(NOW - timedelta(days=200)), NOW, none)
    assert "200 days ago" in old.message and not old.blocks_saving
    [zero] = dose_entry_concerns(typed(NOW, 0), NOW, none)
    assert zero.blocks_saving and "mg" in zero.message
