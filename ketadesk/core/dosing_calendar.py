"""The dosing calendar: every planned session from a start date, through ladder and maintenance.

Dates are calendar days. Doses are assumed to be taken at about the same time of day, so two
doses ``n`` days apart are ``n × 24`` hours apart; the minimum interval (hours) is respected by
never planning two sessions fewer than ``ceil(min_hours / 24)`` days apart (at least one day).

Monitoring that is not tied to every dose (PHQ-9, GAD-7, check-ins) is due at the first session
on or after its due date; questionnaires have a baseline at the first session.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from ketadesk.core.errors import UserFacingError
from ketadesk.core.protocols import (
    Frequency,
    FrequencyKind,
    Protocol,
    StepUpRule,
    ladder_doses_mg,
    maintenance_dose_mg,
    maintenance_frequency,
)

Phase = Literal["titration", "maintenance"]

EVENT_BP_BEFORE = "BP before dose"
EVENT_BP_AFTER = "BP after dose"
EVENT_SITTER = "Sitter present"
EVENT_PHQ9 = "PHQ-9"
EVENT_GAD7 = "GAD-7"
EVENT_CHECK_IN = "Check-in"
EVENT_PHYSICIAN_REVIEW = "Physician review before step-up"

#: Longest calendar computed (weeks); a longer request is a typing mistake.
MAX_CALENDAR_WEEKS = 520


@dataclass(frozen=True)
class CalendarSession:
    """One planned session.

    ``dose_mg`` in mg; ``mg_per_kg`` in mg/kg rounded to 0.01 (``None`` without a weight);
    ``units`` is the dose in units of the formulation (e.g. 1.5 troches); ``step`` is the index of
    the ladder dose (0 = start dose) during titration, ``None`` during maintenance.
    """

    number: int
    date: date
    dose_mg: float
    mg_per_kg: float | None
    phase: Phase
    step: int | None
    units: float
    events: tuple[str, ...]


def min_gap_days(frequency: Frequency) -> int:
    """Return the fewest whole days between two sessions that respects the minimum interval."""
    hours = max(0.0, frequency.min_hours_between_doses)
    return max(1, math.ceil(hours / 24 - 1e-9))


def _pattern_offsets(frequency: Frequency) -> Iterator[int]:
    """Day offsets (0, ...) of the frequency's ideal pattern, before the minimum interval."""
    if frequency.kind is FrequencyKind.DAILY:
        step = 1
    elif frequency.kind is FrequencyKind.EVERY_N_DAYS:
        step = frequency.every_n_days or 0
        if step < 1:
            raise UserFacingError("Set how many days apart the doses are (at least 1).")
    else:
        per_week = frequency.sessions_per_week or 0
        if not 1 <= per_week <= 7:
            raise UserFacingError("Set the number of sessions per week (1 to 7).")
        week_offsets = sorted({round(i * 7 / per_week) for i in range(per_week)})
        week = 0
        while True:
            for offset in week_offsets:
                yield week * 7 + offset
            week += 1
    day = 0
    while True:
        yield day
        day += step


def _check_protocol(protocol: Protocol, weight_kg: float | None, weeks: int) -> None:
    ladder = protocol.ladder
    if ladder.start_dose_mg <= 0 or ladder.max_dose_mg <= 0:
        raise UserFacingError("The start dose and the maximum dose must be more than 0 mg.")
    if ladder.sessions_per_step < 1:
        raise UserFacingError("Each ladder step needs at least 1 session.")
    if protocol.strength_mg_per_unit <= 0:
        raise UserFacingError("The strength per unit must be more than 0 mg.")
    if weight_kg is not None and not (weight_kg > 0 and math.isfinite(weight_kg)):
        raise UserFacingError("The weight must be more than 0 kg.")
    if not 1 <= weeks <= MAX_CALENDAR_WEEKS:
        raise UserFacingError(f"The calendar can cover 1 to {MAX_CALENDAR_WEEKS} weeks.")


def _planned_doses(protocol: Protocol) -> Iterator[tuple[float, Phase, int | None, bool]]:
    """(dose mg, phase, ladder step, is a step-up) for each session in order, forever."""
    doses = ladder_doses_mg(protocol.ladder)
    n = protocol.ladder.sessions_per_step
    for step, dose in enumerate(doses):
        for i in range(n):
            yield dose, "titration", step, step > 0 and i == 0
    m_dose = maintenance_dose_mg(protocol)
    while True:
        yield m_dose, "maintenance", None, False


def dosing_calendar(
    protocol: Protocol, start: date, weight_kg: float | None, weeks: int | None = None
) -> list[CalendarSession]:
    """Return every session from ``start`` for ``weeks`` weeks (default: the protocol's duration).

    Doses in mg never exceed the ladder maximum; each ladder dose is given for
    ``sessions_per_step`` sessions before the next; then the maintenance dose (mg) follows at the
    maintenance frequency. ``mg_per_kg`` = dose mg / ``weight_kg`` (kg), rounded to 0.01. Dates
    strictly increase and are at least the minimum interval (hours, as whole days) apart.
    Impossible settings (no dose, no frequency) raise UserFacingError.
    """
    total_weeks = protocol.duration_weeks if weeks is None else weeks
    _check_protocol(protocol, weight_kg, total_weeks)
    end = start + timedelta(days=7 * total_weeks)
    mon = protocol.monitoring
    strength = protocol.strength_mg_per_unit
    physician_review = protocol.ladder.step_up_rule is StepUpRule.AT_PHYSICIAN_REVIEW
    phq_due = _due_dates(start, end, 7 * mon.phq9_every_weeks if mon.phq9_every_weeks else 0, 0)
    gad_due = _due_dates(start, end, 7 * mon.gad7_every_weeks if mon.gad7_every_weeks else 0, 0)
    check_due = _due_dates(start, end, mon.check_in_every_days or 0, 1)

    due_lists = ((EVENT_PHQ9, phq_due), (EVENT_GAD7, gad_due), (EVENT_CHECK_IN, check_due))
    sessions: list[CalendarSession] = []
    phase: Phase | None = None
    offsets: Iterator[int] = iter(())
    anchor = start
    gap = 1
    previous: date | None = None
    for dose, dose_phase, step, is_step_up in _planned_doses(protocol):
        if dose_phase != phase:
            phase = dose_phase
            freq = protocol.frequency if phase == "titration" else maintenance_frequency(protocol)
            gap = min_gap_days(freq)
            offsets = _pattern_offsets(freq)
            anchor = start if previous is None else previous
            if previous is not None:
                next(offsets)  # offset 0 is the previous session itself
        candidate = anchor + timedelta(days=next(offsets))
        day = candidate if previous is None else max(candidate, previous + timedelta(days=gap))
        if day >= end:
            break
        events: list[str] = []
        if mon.bp_before_each_dose:
            events.append(EVENT_BP_BEFORE)
        if mon.bp_after_dose:
            events.append(EVENT_BP_AFTER)
        if mon.sitter_required:
            events.append(EVENT_SITTER)
        if is_step_up and physician_review:
            events.append(EVENT_PHYSICIAN_REVIEW)
        for name, due in due_lists:
            if due and due[0] <= day:
                events.append(name)
                while due and due[0] <= day:
                    due.pop(0)
        sessions.append(
            CalendarSession(
                number=len(sessions) + 1,
                date=day,
                dose_mg=dose,
                mg_per_kg=round(dose / weight_kg, 2) if weight_kg else None,
                phase=dose_phase,
                step=step,
                units=round(dose / strength, 3),
                events=tuple(events),
            )
        )
        previous = day
    return sessions


def _due_dates(start: date, end: date, every_days: int, first: int) -> list[date]:
    """Due dates start + k × every_days for k >= first, before ``end`` (empty when not planned)."""
    if every_days < 1:
        return []
    count = (end - start).days // every_days + 1
    return [
        d for k in range(first, count + 1) if (d := start + timedelta(days=k * every_days)) < end
    ]


@dataclass(frozen=True)
class SupplyPeriod:
    """Units needed in one 30-day period [start, end) of the calendar (``units`` rounded up)."""

    start: date
    end: date
    sessions: int
    dose_mg_total: float
    units: int


def supply_periods(
    protocol: Protocol, start: date, weeks: int | None = None
) -> list[SupplyPeriod]:
    """Return the units (rounded up to whole units) and total mg needed in each consecutive
    30-day period of the calendar, from ``start``."""
    sessions = dosing_calendar(protocol, start, None, weeks)
    total_weeks = protocol.duration_weeks if weeks is None else weeks
    end = start + timedelta(days=7 * total_weeks)
    periods: list[SupplyPeriod] = []
    period_start = start
    index = 0
    while period_start < end:
        period_end = min(period_start + timedelta(days=30), end)
        mg = 0.0
        count = 0
        while index < len(sessions) and sessions[index].date < period_end:
            mg += sessions[index].dose_mg
            count += 1
            index += 1
        units = math.ceil(mg / protocol.strength_mg_per_unit - 1e-9)
        periods.append(SupplyPeriod(period_start, period_end, count, round(mg, 3), units))
        period_start = period_end
    return periods


def units_per_30_days(protocol: Protocol, start: date, weeks: int | None = None) -> int:
    """Return the largest number of whole units needed in any 30-day period of the calendar
    (the quantity one fill must cover)."""
    periods = supply_periods(protocol, start, weeks)
    return max((p.units for p in periods), default=0)
