"""The protocol a physician prescribes: what, how much, how often, and how it is monitored.

Everything here is a frozen dataclass or a pure function. Nothing in this module knows what a
"microdose" is: the dose (mg), frequency and duration are always the prescriber's, and the
``kind`` field only labels the protocol and selects which monitoring reminders apply.

``sig_text`` writes the human-readable sig. Turning a protocol into plain values and back,
its content hash and its word-by-word diff live in :mod:`ketadesk.core.protocol_serialization`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum


class Indication(StrEnum):
    DEPRESSION = "depression"
    ANXIETY = "anxiety"
    PTSD = "ptsd"
    CHRONIC_PAIN = "chronic_pain"
    OTHER = "other"


class ProtocolKind(StrEnum):
    """A label chosen by the prescriber; it never implies a dose."""

    STANDARD = "standard"
    MICRODOSE = "microdose"


class Route(StrEnum):
    SUBLINGUAL = "sublingual"  # troche or rapid-dissolve tablet
    ORAL_SOLUTION = "oral_solution"
    INTRANASAL = "intranasal"
    OTHER = "other"


class StepUpRule(StrEnum):
    AFTER_TOLERATED_SESSIONS = "after_tolerated_sessions"
    AT_PHYSICIAN_REVIEW = "at_physician_review"


class FrequencyKind(StrEnum):
    SESSIONS_PER_WEEK = "sessions_per_week"
    EVERY_N_DAYS = "every_n_days"
    DAILY = "daily"


INDICATION_LABELS: Mapping[Indication, str] = {
    Indication.DEPRESSION: "Depression",
    Indication.ANXIETY: "Anxiety",
    Indication.PTSD: "PTSD",
    Indication.CHRONIC_PAIN: "Chronic pain",
    Indication.OTHER: "Other",
}
KIND_LABELS: Mapping[ProtocolKind, str] = {
    ProtocolKind.STANDARD: "Standard",
    ProtocolKind.MICRODOSE: "Microdose",
}
ROUTE_LABELS: Mapping[Route, str] = {
    Route.SUBLINGUAL: "sublingual",
    Route.ORAL_SOLUTION: "oral solution",
    Route.INTRANASAL: "intranasal",
    Route.OTHER: "other route",
}
STEP_UP_LABELS: Mapping[StepUpRule, str] = {
    StepUpRule.AFTER_TOLERATED_SESSIONS: "after tolerated sessions",
    StepUpRule.AT_PHYSICIAN_REVIEW: "at physician review",
}


@dataclass(frozen=True)
class WeightReading:
    """A weight from the chart: ``kg`` in kilograms, measured on ``measured_on``."""

    kg: float
    measured_on: date


def latest_weight(readings: Iterable[WeightReading]) -> WeightReading | None:
    """Return the most recently measured weight (kg), or ``None`` when there is none; weights
    of 0 kg or less are ignored. On a tie the last reading given wins."""
    latest: WeightReading | None = None
    for reading in readings:
        if reading.kg > 0 and (latest is None or reading.measured_on >= latest.measured_on):
            latest = reading
    return latest


@dataclass(frozen=True)
class TitrationLadder:
    """Start dose, steps and maximum, all in mg.

    Steps are either a fixed ``increment_mg`` added until ``max_dose_mg`` is reached (the last
    step is capped at the maximum), or an explicit list ``step_doses_mg`` of the doses that follow
    the start dose (when given, it wins over the increment). ``sessions_per_step`` is N: a dose is
    given for N sessions before the next step (after N tolerated sessions, or - with
    ``AT_PHYSICIAN_REVIEW`` - after N sessions and a physician review).
    """

    start_dose_mg: float
    max_dose_mg: float
    increment_mg: float | None = None
    step_doses_mg: tuple[float, ...] = ()
    step_up_rule: StepUpRule = StepUpRule.AFTER_TOLERATED_SESSIONS
    sessions_per_step: int = 1


#: More ladder steps than this is treated as a typing mistake (e.g. a 0.01 mg increment).
MAX_LADDER_STEPS = 100


def ladder_doses_mg(ladder: TitrationLadder) -> tuple[float, ...]:
    """Return the ladder's doses in mg, start first, each capped at ``max_dose_mg``.

    An increment ladder stops at the maximum; an explicit list is taken as written but any dose
    above the maximum is capped (validation reports it). Doses are rounded to 0.001 mg.
    """
    start = _mg(ladder.start_dose_mg)
    top = _mg(ladder.max_dose_mg)
    doses = [min(start, top)]
    if ladder.step_doses_mg:
        doses.extend(min(_mg(d), top) for d in ladder.step_doses_mg[:MAX_LADDER_STEPS])
        return tuple(doses)
    increment = ladder.increment_mg
    if increment is None or increment <= 0:
        return tuple(doses)
    while doses[-1] < top and len(doses) <= MAX_LADDER_STEPS:
        doses.append(min(_mg(doses[-1] + increment), top))
    return tuple(doses)


def _mg(value: float) -> float:
    return round(float(value), 3)


@dataclass(frozen=True)
class Frequency:
    """How often doses are taken.

    ``kind`` picks one of: ``sessions_per_week`` (spread evenly over each week), every
    ``every_n_days`` days, or ``daily`` (once a day). ``min_hours_between_doses`` is in hours;
    ``time_of_day_notes`` is free text for the patient ("in the evening, seated").
    """

    kind: FrequencyKind
    sessions_per_week: int | None = None
    every_n_days: int | None = None
    min_hours_between_doses: float = 24.0
    time_of_day_notes: str = ""


def sessions_per_week(frequency: Frequency) -> float:
    """Return the planned number of sessions in a 7-day week (may be fractional)."""
    if frequency.kind is FrequencyKind.DAILY:
        return 7.0
    if frequency.kind is FrequencyKind.EVERY_N_DAYS:
        n = frequency.every_n_days or 0
        return 7.0 / n if n > 0 else 0.0
    return float(frequency.sessions_per_week or 0)


def frequency_text(frequency: Frequency) -> str:
    """Describe the frequency in words, e.g. "2 sessions a week, at least 72 hours apart"."""
    if frequency.kind is FrequencyKind.DAILY:
        text = "once a day"
    elif frequency.kind is FrequencyKind.EVERY_N_DAYS:
        n = frequency.every_n_days or 0
        text = "every day" if n == 1 else f"every {n} days"
    else:
        n = frequency.sessions_per_week or 0
        text = f"{n} session{'s' if n != 1 else ''} a week"
    text += f", at least {number_text(frequency.min_hours_between_doses)} hours apart"
    if frequency.time_of_day_notes.strip():
        text += f" ({frequency.time_of_day_notes.strip()})"
    return text


@dataclass(frozen=True)
class MaintenancePhase:
    """What follows the ladder: ``dose_mg`` (``None`` = stay on the ladder's last dose) and an
    optional different ``frequency`` (``None`` = same as during titration)."""

    dose_mg: float | None = None
    frequency: Frequency | None = None
    notes: str = ""


@dataclass(frozen=True)
class MonitoringPlan:
    """Monitoring and safety instructions.

    Blood pressure values are in mmHg: a dose is held when the reading before it is above
    ``hold_systolic_above_mmhg`` or ``hold_diastolic_above_mmhg``. ``bp_after_minutes`` is the
    delay of the after-dose reading in minutes. Questionnaires are due every N weeks, check-ins
    every N days (``None`` = not planned).
    """

    bp_before_each_dose: bool = True
    bp_after_dose: bool = False
    bp_after_minutes: int | None = None
    hold_systolic_above_mmhg: int | None = None
    hold_diastolic_above_mmhg: int | None = None
    phq9_every_weeks: int | None = None
    gad7_every_weeks: int | None = None
    check_in_every_days: int | None = None
    sitter_required: bool = False
    no_driving_until_next_day: bool = True
    no_alcohol: bool = True
    missed_dose_instructions: str = ""


@dataclass(frozen=True)
class SupplyPlan:
    """Refills after the first fill. Units per 30 days are computed from the calendar
    (``ketadesk.core.dosing_calendar.units_per_30_days``), never typed in."""

    refills: int = 0
    notes: str = ""


@dataclass(frozen=True)
class Protocol:
    """One prescribed protocol. Doses in mg, strength in mg per unit, duration in weeks.

    ``unit_name`` is what one unit is called ("troche", "tablet", "spray", "mL").
    ``example_values`` is true while the values still are a template's examples that nobody has
    confirmed; validation blocks signing until it is cleared.
    """

    indication: Indication
    kind: ProtocolKind
    route: Route
    formulation: str
    unit_name: str
    strength_mg_per_unit: float
    ladder: TitrationLadder
    frequency: Frequency
    duration_weeks: int
    monitoring: MonitoringPlan = field(default_factory=MonitoringPlan)
    maintenance: MaintenancePhase = field(default_factory=MaintenancePhase)
    supply: SupplyPlan = field(default_factory=SupplyPlan)
    indication_other: str = ""
    route_other: str = ""
    review_date: date | None = None
    notes: str = ""
    example_values: bool = False


def maintenance_dose_mg(protocol: Protocol) -> float:
    """Return the maintenance dose in mg (the ladder's last dose when none is set), capped at the
    ladder maximum."""
    last = ladder_doses_mg(protocol.ladder)[-1]
    dose = protocol.maintenance.dose_mg
    if dose is None:
        return last
    return min(_mg(dose), _mg(protocol.ladder.max_dose_mg))


def maintenance_frequency(protocol: Protocol) -> Frequency:
    """Return the frequency used in the maintenance phase."""
    return protocol.maintenance.frequency or protocol.frequency


def highest_dose_mg(protocol: Protocol) -> float:
    """Return the highest single dose in mg the protocol can give (ladder and maintenance)."""
    return max(*ladder_doses_mg(protocol.ladder), maintenance_dose_mg(protocol))


def indication_text(protocol: Protocol) -> str:
    if protocol.indication is Indication.OTHER and protocol.indication_other.strip():
        return protocol.indication_other.strip()
    return INDICATION_LABELS[protocol.indication]


def route_text(protocol: Protocol) -> str:
    if protocol.route is Route.OTHER and protocol.route_other.strip():
        return protocol.route_other.strip()
    return ROUTE_LABELS[protocol.route]


# --------------------------------------------------------------------------- sig


def number_text(value: float) -> str:
    """Format a number without a trailing ".0" (10 -> "10", 12.5 -> "12.5")."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _units_text(dose_mg: float, strength: float, unit_name: str) -> str:
    if strength <= 0:
        return f"{number_text(dose_mg)} mg"
    units = dose_mg / strength
    plural = unit_name if math.isclose(units, 1.0) or unit_name.endswith("s") else unit_name + "s"
    if unit_name.lower() == "ml":
        plural = "mL"
    return f"{number_text(units)} {plural} ({number_text(dose_mg)} mg)"


def sig_text(protocol: Protocol) -> str:
    """Return the human-readable sig: dose (mg and units), route, frequency, ladder, maximum,
    duration and the safety instructions (blood pressure in mmHg)."""
    ladder = protocol.ladder
    doses = ladder_doses_mg(ladder)
    amount = _units_text(doses[0], protocol.strength_mg_per_unit, protocol.unit_name)
    route = protocol.route
    if route is Route.SUBLINGUAL:
        opening = f"Dissolve {amount} under the tongue"
    elif route is Route.ORAL_SOLUTION:
        opening = f"Take {amount} by mouth"
    elif route is Route.INTRANASAL:
        opening = f"Use {amount} in the nose"
    else:
        opening = f"Take {amount} by {route_text(protocol)}"
    parts = [f"{opening}, {frequency_text(protocol.frequency)}."]
    if len(doses) > 1:
        n = ladder.sessions_per_step
        steps = ", ".join(number_text(d) for d in doses[1:])
        when = (
            f"after {n} tolerated session{'s' if n != 1 else ''} at each dose"
            if ladder.step_up_rule is StepUpRule.AFTER_TOLERATED_SESSIONS
            else f"only after a physician review (no sooner than {n} session"
            f"{'s' if n != 1 else ''} at each dose)"
        )
        parts.append(f"Increase to {steps} mg in turn, {when}.")
    parts.append(f"Do not exceed {number_text(ladder.max_dose_mg)} mg per dose.")
    m_dose = maintenance_dose_mg(protocol)
    m_freq = protocol.maintenance.frequency
    if protocol.maintenance.dose_mg is not None or m_freq is not None:
        text = f"Then continue at {number_text(m_dose)} mg"
        if m_freq is not None:
            text += f", {frequency_text(m_freq)}"
        parts.append(text + ".")
    parts.append(f"Duration: {protocol.duration_weeks} weeks.")
    parts.extend(monitoring_instructions(protocol.monitoring))
    return " ".join(parts)


def monitoring_instructions(monitoring: MonitoringPlan) -> list[str]:
    """Return the monitoring plan as patient-facing sentences (blood pressure in mmHg)."""
    lines: list[str] = []
    if monitoring.bp_before_each_dose:
        hold = _hold_text(monitoring)
        lines.append("Check your blood pressure before each dose" + (f"; {hold}." if hold else "."))
    if monitoring.bp_after_dose:
        after = (
            f" {monitoring.bp_after_minutes} minutes after each dose"
            if monitoring.bp_after_minutes
            else " after each dose"
        )
        lines.append(f"Check it again{after}.")
    if monitoring.sitter_required:
        lines.append("A responsible adult must stay with you during and after each dose.")
    if monitoring.no_driving_until_next_day:
        lines.append("Do not drive or operate machinery until the next day after a restful sleep.")
    if monitoring.no_alcohol:
        lines.append("Do not drink alcohol.")
    if monitoring.missed_dose_instructions.strip():
        lines.append(f"Missed dose: {monitoring.missed_dose_instructions.strip()}")
    return lines


def _hold_text(monitoring: MonitoringPlan) -> str:
    sys_ = monitoring.hold_systolic_above_mmhg
    dia = monitoring.hold_diastolic_above_mmhg
    if sys_ is not None and dia is not None:
        return f"do not take the dose if it is above {sys_}/{dia} mmHg"
    if sys_ is not None:
        return f"do not take the dose if the upper number is above {sys_} mmHg"
    if dia is not None:
        return f"do not take the dose if the lower number is above {dia} mmHg"
    return ""

