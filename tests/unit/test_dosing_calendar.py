"""Dosing calendar: properties over generated protocols, plus worked examples."""

from __future__ import annotations

import itertools
import math
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketadesk.core.dosing_calendar import (
    EVENT_BP_AFTER,
    EVENT_BP_BEFORE,
    EVENT_CHECK_IN,
    EVENT_GAD7,
    EVENT_PHQ9,
    EVENT_PHYSICIAN_REVIEW,
    EVENT_SITTER,
    dosing_calendar,
    min_gap_days,
    supply_periods,
    units_per_30_days,
)
from ketadesk.core.errors import UserFacingError
from ketadesk.core.protocols import (
    Frequency,
    FrequencyKind,
    MaintenancePhase,
    MonitoringPlan,
    Protocol,
    ProtocolKind,
    StepUpRule,
    TitrationLadder,
    ladder_doses_mg,
    maintenance_dose_mg,
)
from tests.unit.protocol_factories import troche_protocol as make_protocol

START = date(2026, 3, 2)

# ---------------------------------------------------------------- properties

_mg = st.floats(min_value=0.5, max_value=400, allow_nan=False).map(lambda x: round(x, 3))


@st.composite
def frequencies(draw: st.DrawFn) -> Frequency:
    kind = draw(st.sampled_from(list(FrequencyKind)))
    return Frequency(
        kind,
        sessions_per_week=draw(st.integers(1, 7)) if kind is FrequencyKind.SESSIONS_PER_WEEK
        else None,
        every_n_days=draw(st.integers(1, 21)) if kind is FrequencyKind.EVERY_N_DAYS else None,
        min_hours_between_doses=draw(st.floats(min_value=0, max_value=24 * 10)),
    )


@st.composite
def protocols(draw: st.DrawFn) -> Protocol:
    start = draw(_mg)
    top = round(draw(st.floats(min_value=start, max_value=800)), 3)
    use_list = draw(st.booleans())
    steps: tuple[float, ...] = ()
    increment = None
    if use_list:
        steps = tuple(sorted(draw(st.lists(st.floats(min_value=start, max_value=top * 1.5)
                                           .map(lambda x: round(x, 3)), max_size=6))))
    else:
        increment = draw(st.none() | st.floats(min_value=max(0.5, (top - start) / 50),
                                               max_value=200).map(lambda x: round(x, 3)))
    return make_protocol(
        ladder=TitrationLadder(start_dose_mg=start, max_dose_mg=top, increment_mg=increment,
                               step_doses_mg=steps,
                               step_up_rule=draw(st.sampled_from(list(StepUpRule))),
                               sessions_per_step=draw(st.integers(1, 5))),
        frequency=draw(frequencies()),
        maintenance=MaintenancePhase(
            dose_mg=draw(st.none() | st.floats(min_value=0.5, max_value=top * 1.2)),
            frequency=draw(st.none() | frequencies()),
        ),
        duration_weeks=draw(st.integers(1, 60)),
        monitoring=MonitoringPlan(
            phq9_every_weeks=draw(st.none() | st.integers(1, 8)),
            gad7_every_weeks=draw(st.none() | st.integers(1, 8)),
            check_in_every_days=draw(st.none() | st.integers(1, 30)),
        ),
    )


_weights = st.floats(min_value=20, max_value=250, allow_nan=False)


def _phase_frequency(p: Protocol, phase: str) -> Frequency:
    if phase == "maintenance" and p.maintenance.frequency is not None:
        return p.maintenance.frequency
    return p.frequency


@settings(max_examples=300, deadline=None)
@given(protocols(), _weights, st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 1, 1)))
def test_dates_strictly_increase_within_the_plan_and_respect_the_interval(
    p: Protocol, weight: float, start: date
) -> None:
    sessions = dosing_calendar(p, start, weight)
    assert sessions, "every valid plan has at least its first session"
    assert sessions[0].date == start
    end = start + timedelta(days=7 * p.duration_weeks)
    for before, after in itertools.pairwise(sessions):
        assert after.date > before.date
        gap_days = (after.date - before.date).days
        freq = _phase_frequency(p, after.phase)
        assert gap_days * 24 >= freq.min_hours_between_doses
        assert gap_days >= min_gap_days(freq)
    assert all(start <= s.date < end for s in sessions)
    assert [s.number for s in sessions] == list(range(1, len(sessions) + 1))


@settings(max_examples=300, deadline=None)
@given(protocols(), _weights)
def test_no_dose_exceeds_the_maximum_and_mg_per_kg_matches(p: Protocol, weight: float) -> None:
    for s in dosing_calendar(p, START, weight):
        assert 0 < s.dose_mg <= p.ladder.max_dose_mg
        assert s.mg_per_kg == round(s.dose_mg / weight, 2)
        assert math.isclose(s.units, round(s.dose_mg / p.strength_mg_per_unit, 3))


@settings(max_examples=300, deadline=None)
@given(protocols())
def test_ladder_is_followed_then_maintenance(p: Protocol) -> None:
    sessions = dosing_calendar(p, START, None)
    n = p.ladder.sessions_per_step
    expected = [d for d in ladder_doses_mg(p.ladder) for _ in range(n)]
    titration = [s for s in sessions if s.phase == "titration"]
    maintenance = [s for s in sessions if s.phase == "maintenance"]
    assert sessions == titration + maintenance  # titration always comes first
    assert [s.dose_mg for s in titration] == expected[: len(titration)]
    if maintenance:
        assert len(titration) == len(expected)
        assert {s.dose_mg for s in maintenance} == {maintenance_dose_mg(p)}
    for s in titration:
        assert s.step is not None
        assert s.dose_mg == ladder_doses_mg(p.ladder)[s.step]
    assert all(s.mg_per_kg is None for s in sessions)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 7), st.integers(1, 20))
def test_sessions_per_week_are_met_when_the_interval_allows(per_week: int, weeks: int) -> None:
    p = make_protocol(
        frequency=Frequency(FrequencyKind.SESSIONS_PER_WEEK, sessions_per_week=per_week,
                            min_hours_between_doses=0),
        duration_weeks=weeks,
    )
    sessions = dosing_calendar(p, START, 70)
    assert len(sessions) == per_week * weeks
    for week in range(weeks):
        first = START + timedelta(days=7 * week)
        in_week = [s for s in sessions if first <= s.date < first + timedelta(days=7)]
        assert len(in_week) == per_week


# ---------------------------------------------------------------- worked examples


def test_three_a_week_example_with_events() -> None:
    sessions = dosing_calendar(make_protocol(), START, 80)
    assert [(s.date.isoformat(), s.dose_mg, s.phase) for s in sessions[:7]] == [
        ("2026-03-02", 10, "titration"),
        ("2026-03-04", 10, "titration"),
        ("2026-03-07", 20, "titration"),
        ("2026-03-09", 20, "titration"),
        ("2026-03-11", 30, "titration"),
        ("2026-03-14", 30, "titration"),
        ("2026-03-16", 30, "maintenance"),
    ]
    assert sessions[0].mg_per_kg == 0.12  # 10 / 80 = 0.125 -> 0.12 (round half to even)
    assert sessions[0].events == (EVENT_BP_BEFORE, EVENT_PHQ9)
    assert EVENT_CHECK_IN in sessions[3].events  # due 03-09, first session on or after
    assert EVENT_PHQ9 in sessions[6].events  # due 03-16
    assert len(sessions) == 12


def test_min_interval_pushes_sessions_apart() -> None:
    p = make_protocol(frequency=Frequency(FrequencyKind.DAILY, min_hours_between_doses=60))
    dates = [s.date for s in dosing_calendar(p, START, 70, weeks=2)]
    assert all((b - a).days == 3 for a, b in itertools.pairwise(dates))


def test_maintenance_switches_frequency_after_the_ladder() -> None:
    p = make_protocol(
        ladder=TitrationLadder(start_dose_mg=10, max_dose_mg=20, increment_mg=10,
                               sessions_per_step=1),
        frequency=Frequency(FrequencyKind.DAILY, min_hours_between_doses=24),
        maintenance=MaintenancePhase(
            dose_mg=15, frequency=Frequency(FrequencyKind.EVERY_N_DAYS, every_n_days=7)
        ),
    )
    sessions = dosing_calendar(p, START, None, weeks=3)
    assert [(s.date.day, s.dose_mg, s.phase) for s in sessions] == [
        (2, 10, "titration"), (3, 20, "titration"),
        (10, 15, "maintenance"), (17, 15, "maintenance"),
    ]


def test_physician_review_event_on_each_step_up_and_standard_events() -> None:
    p = make_protocol(
        kind=ProtocolKind.STANDARD,
        ladder=TitrationLadder(start_dose_mg=20, max_dose_mg=40, increment_mg=10,
                               step_up_rule=StepUpRule.AT_PHYSICIAN_REVIEW, sessions_per_step=2),
        monitoring=MonitoringPlan(bp_after_dose=True, sitter_required=True, gad7_every_weeks=1),
    )
    sessions = dosing_calendar(p, START, 70)
    review_sessions = [s.number for s in sessions if EVENT_PHYSICIAN_REVIEW in s.events]
    assert review_sessions == [3, 5]
    assert all({EVENT_BP_BEFORE, EVENT_BP_AFTER, EVENT_SITTER} <= set(s.events)
               for s in sessions)
    gad_dates = [s.date for s in sessions if EVENT_GAD7 in s.events]
    assert gad_dates[0] == START and len(gad_dates) == 4


def test_weeks_override_and_limits() -> None:
    p = make_protocol()
    assert dosing_calendar(p, START, 70, weeks=1)[-1].date < START + timedelta(days=7)
    assert len(dosing_calendar(p, START, 70, weeks=52)) == 52 * 3
    with pytest.raises(UserFacingError, match="1 to 520 weeks"):
        dosing_calendar(p, START, 70, weeks=0)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"ladder": TitrationLadder(start_dose_mg=0, max_dose_mg=10)}, "more than 0 mg"),
        ({"strength_mg_per_unit": 0}, "strength per unit"),
        ({"frequency": Frequency(FrequencyKind.SESSIONS_PER_WEEK, sessions_per_week=9)},
         "sessions per week"),
        ({"frequency": Frequency(FrequencyKind.EVERY_N_DAYS, every_n_days=0)}, "days apart"),
    ],
)
def test_impossible_plans_raise_user_facing_errors(changes: dict[str, object], words: str) -> None:
    with pytest.raises(UserFacingError, match=words):
        dosing_calendar(make_protocol(**changes), START, 70)


def test_weight_must_be_positive() -> None:
    with pytest.raises(UserFacingError, match="more than 0 kg"):
        dosing_calendar(make_protocol(), START, 0)


def test_supply_is_rounded_up_per_30_day_period() -> None:
    p = make_protocol(strength_mg_per_unit=20, duration_weeks=8)  # 10/20/30 mg -> 0.5/1/1.5
    periods = supply_periods(p, START)
    assert [p_.end for p_ in periods] == [START + timedelta(days=30), START + timedelta(days=56)]
    sessions = dosing_calendar(p, START, None)
    first = [s for s in sessions if s.date < START + timedelta(days=30)]
    assert periods[0].sessions == len(first)
    assert periods[0].dose_mg_total == sum(s.dose_mg for s in first)
    assert periods[0].units == math.ceil(sum(s.dose_mg for s in first) / 20)
    assert units_per_30_days(p, START) == max(x.units for x in periods)
