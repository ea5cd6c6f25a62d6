"""Protocol validation: the arithmetic and the practice limits, in words.

``validate_protocol`` returns messages of two levels: an ``error`` blocks signing; a ``warning``
needs the physician's acknowledgement. A practice limit that has not been set is an error (it is
never silently passed), and anything that could not be checked (no weight, no weight-age policy)
is a warning that says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from ketadesk.core.dosing_calendar import MAX_CALENDAR_WEEKS, min_gap_days
from ketadesk.core.practice_limits import ROUTE_LIMIT_FIELDS, LimitValue, PracticeLimits
from ketadesk.core.protocols import (
    MAX_LADDER_STEPS,
    Frequency,
    FrequencyKind,
    Indication,
    Protocol,
    ProtocolKind,
    Route,
    WeightReading,
    highest_dose_mg,
    ladder_doses_mg,
    maintenance_frequency,
    sessions_per_week,
)
from ketadesk.core.protocols import (
    number_text as _num,
)

Level = Literal["error", "warning"]

#: A step up larger than this fraction of the previous dose asks for an acknowledgement.
LARGE_STEP_FRACTION = 0.5

_ROUTE_WORDS = {
    Route.SUBLINGUAL: "sublingual",
    Route.ORAL_SOLUTION: "oral solution",
    Route.INTRANASAL: "intranasal",
    Route.OTHER: "other routes",
}


@dataclass(frozen=True)
class ValidationMessage:
    """One finding. ``field`` names the protocol field (dict path) it concerns, when one does;
    ``source`` is the practice limit's source when the message is about a limit."""

    level: Level
    code: str
    message: str
    field: str | None = None
    source: str | None = None

    @property
    def blocks_signing(self) -> bool:
        return self.level == "error"


def blocks_signing(messages: Iterable[ValidationMessage]) -> bool:
    """Return True when any message is an error."""
    return any(m.blocks_signing for m in messages)


def weight_basis_text(weight: WeightReading | None, today: date) -> str:
    """Describe the weight mg/kg is computed from: "72.5 kg weighed on 2026-11-01, 24 days ago"."""
    if weight is None:
        return "no weight on the chart"
    age = (today - weight.measured_on).days
    when = "today" if age == 0 else f"{age} day{'s' if age != 1 else ''} ago"
    if age < 0:
        when = "a future date"
    return f"{_num(weight.kg)} kg weighed on {weight.measured_on.isoformat()}, {when}"


class _Collector:
    def __init__(self) -> None:
        self.messages: list[ValidationMessage] = []

    def error(self, code: str, message: str, field: str | None = None,
              source: str | None = None) -> None:
        self.messages.append(ValidationMessage("error", code, message, field, source))

    def warning(self, code: str, message: str, field: str | None = None,
                source: str | None = None) -> None:
        self.messages.append(ValidationMessage("warning", code, message, field, source))


def validate_protocol(
    protocol: Protocol,
    limits: PracticeLimits,
    weight: WeightReading | None,
    today: date,
) -> list[ValidationMessage]:
    """Check a protocol against its own arithmetic and the practice's limits.

    Doses are compared in mg and in mg/kg (highest dose in mg / ``weight.kg``); intervals in
    hours; frequency in sessions per 7-day week; weight age in days before ``today``. Errors come
    first in the returned list, then warnings, each group in the order found.
    """
    out = _Collector()
    _check_template_values(protocol, out)
    _check_identity(protocol, out)
    ladder_ok = _check_ladder(protocol, out)
    _check_frequency(protocol.frequency, "frequency", "", out)
    if protocol.maintenance.frequency is not None:
        _check_frequency(protocol.maintenance.frequency, "maintenance.frequency",
                         "Maintenance: ", out)
    _check_duration(protocol, today, out)
    _check_units(protocol, ladder_ok, out)
    _check_monitoring(protocol, out)
    if ladder_ok:
        _check_limits(protocol, limits, weight, today, out)
    _check_weight(weight, limits.weight_max_age_days, today, out)
    errors = [m for m in out.messages if m.level == "error"]
    warnings = [m for m in out.messages if m.level == "warning"]
    return errors + warnings


def _check_template_values(protocol: Protocol, out: _Collector) -> None:
    if protocol.example_values:
        out.error(
            "example_values",
            "These values are a template's examples. Review every value and confirm them "
            "before signing.",
            "example_values",
        )


def _check_identity(protocol: Protocol, out: _Collector) -> None:
    if protocol.indication is Indication.OTHER and not protocol.indication_other.strip():
        out.error("indication_other_missing", "Describe the indication (\"Other\" was chosen).",
                  "indication_other")
    if protocol.route is Route.OTHER and not protocol.route_other.strip():
        out.error("route_other_missing", "Describe the route (\"Other\" was chosen).",
                  "route_other")
    if not protocol.formulation.strip():
        out.warning("formulation_missing", "No formulation is described.", "formulation")
    if protocol.supply.refills < 0:
        out.error("refills_invalid", "Refills cannot be negative.", "supply.refills")


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def _check_ladder(protocol: Protocol, out: _Collector) -> bool:
    """Check the ladder; return False when doses are too broken to compare with limits."""
    ladder = protocol.ladder
    ok = True
    if not _positive(ladder.start_dose_mg):
        out.error("start_dose_invalid", "The start dose must be more than 0 mg.",
                  "ladder.start_dose_mg")
        ok = False
    if not _positive(ladder.max_dose_mg):
        out.error("max_dose_invalid", "The maximum dose must be more than 0 mg.",
                  "ladder.max_dose_mg")
        ok = False
    if ladder.sessions_per_step < 1:
        out.error("sessions_per_step_invalid", "Each ladder step needs at least 1 session.",
                  "ladder.sessions_per_step")
    if not ok:
        return False
    if ladder.start_dose_mg > ladder.max_dose_mg:
        out.error(
            "start_above_max",
            f"The start dose {_num(ladder.start_dose_mg)} mg is above the maximum dose "
            f"{_num(ladder.max_dose_mg)} mg.",
            "ladder.start_dose_mg",
        )
    if ladder.step_doses_mg:
        if len(ladder.step_doses_mg) > MAX_LADDER_STEPS:
            out.error("too_many_steps", f"The ladder has more than {MAX_LADDER_STEPS} steps.",
                      "ladder.step_doses_mg")
        previous = ladder.start_dose_mg
        for index, dose in enumerate(ladder.step_doses_mg, start=2):
            if not _positive(dose):
                out.error("step_invalid", f"Step {index} must be more than 0 mg.",
                          "ladder.step_doses_mg")
                return False
            if dose > ladder.max_dose_mg:
                out.error(
                    "step_above_max",
                    f"Step {index} ({_num(dose)} mg) is above the maximum dose "
                    f"{_num(ladder.max_dose_mg)} mg.",
                    "ladder.step_doses_mg",
                )
            if dose <= previous:
                out.error(
                    "step_not_increasing",
                    f"Step {index} ({_num(dose)} mg) is not above the dose before it "
                    f"({_num(previous)} mg).",
                    "ladder.step_doses_mg",
                )
            previous = dose
    elif ladder.increment_mg is not None:
        if not _positive(ladder.increment_mg):
            out.error("increment_invalid", "The step increment must be more than 0 mg.",
                      "ladder.increment_mg")
            return False
        steps = (ladder.max_dose_mg - ladder.start_dose_mg) / ladder.increment_mg
        if steps > MAX_LADDER_STEPS:
            out.error(
                "too_many_steps",
                f"An increment of {_num(ladder.increment_mg)} mg makes more than "
                f"{MAX_LADDER_STEPS} steps to the maximum; check the increment.",
                "ladder.increment_mg",
            )
            return False
    elif ladder.start_dose_mg < ladder.max_dose_mg:
        out.warning(
            "no_steps",
            f"The ladder has no steps: the dose stays at {_num(ladder.start_dose_mg)} mg and "
            f"never reaches the maximum of {_num(ladder.max_dose_mg)} mg.",
            "ladder",
        )
    doses = ladder_doses_mg(ladder)
    for index in range(1, len(doses)):
        before, after = doses[index - 1], doses[index]
        if before > 0 and (after - before) / before > LARGE_STEP_FRACTION:
            out.warning(
                "large_step",
                f"Step {index + 1} goes from {_num(before)} mg to {_num(after)} mg, an increase "
                f"of {round(100 * (after - before) / before)}% (more than "
                f"{round(100 * LARGE_STEP_FRACTION)}%).",
                "ladder",
            )
    m_dose = protocol.maintenance.dose_mg
    if m_dose is not None:
        if not _positive(m_dose):
            out.error("maintenance_dose_invalid", "The maintenance dose must be more than 0 mg.",
                      "maintenance.dose_mg")
        elif m_dose > ladder.max_dose_mg:
            out.error(
                "maintenance_above_max",
                f"The maintenance dose {_num(m_dose)} mg is above the maximum dose "
                f"{_num(ladder.max_dose_mg)} mg.",
                "maintenance.dose_mg",
            )
    return True


def _check_frequency(freq: Frequency, field: str, prefix: str, out: _Collector) -> None:
    if freq.kind is FrequencyKind.SESSIONS_PER_WEEK:
        n = freq.sessions_per_week
        if n is None or not 1 <= n <= 7:
            out.error("frequency_invalid", f"{prefix}Sessions per week must be 1 to 7.",
                      f"{field}.sessions_per_week")
            return
    elif freq.kind is FrequencyKind.EVERY_N_DAYS:
        if freq.every_n_days is None or freq.every_n_days < 1:
            out.error("frequency_invalid", f"{prefix}Set how many days apart doses are "
                      "(at least 1).", f"{field}.every_n_days")
            return
    if not math.isfinite(freq.min_hours_between_doses) or freq.min_hours_between_doses < 0:
        out.error("min_interval_invalid",
                  f"{prefix}The minimum interval between doses cannot be negative.",
                  f"{field}.min_hours_between_doses")
        return
    planned = sessions_per_week(freq)
    gap = min_gap_days(freq)
    if planned * gap > 7 + 1e-9:
        out.warning(
            "frequency_interval_conflict",
            f"{prefix}{_num(planned)} sessions a week cannot all be at least "
            f"{_num(freq.min_hours_between_doses)} hours apart; the calendar plans them further "
            "apart, so there will be fewer sessions.",
            f"{field}.min_hours_between_doses",
        )


def _check_duration(protocol: Protocol, today: date, out: _Collector) -> None:
    if not 1 <= protocol.duration_weeks <= MAX_CALENDAR_WEEKS:
        out.error("duration_invalid",
                  f"The duration must be 1 to {MAX_CALENDAR_WEEKS} weeks.", "duration_weeks")
    if protocol.review_date is None:
        out.warning("review_date_missing", "No review date is set.", "review_date")
    elif protocol.review_date < today:
        out.warning("review_date_past",
                    f"The review date {protocol.review_date.isoformat()} has passed.",
                    "review_date")


def _check_units(protocol: Protocol, ladder_ok: bool, out: _Collector) -> None:
    strength = protocol.strength_mg_per_unit
    if not _positive(strength):
        out.error("strength_invalid", "The strength per unit must be more than 0 mg.",
                  "strength_mg_per_unit")
        return
    if not ladder_ok or protocol.route is Route.ORAL_SOLUTION:
        return  # a solution is measured by volume; any amount can be drawn up
    doses = set(ladder_doses_mg(protocol.ladder))
    if protocol.maintenance.dose_mg is not None and _positive(protocol.maintenance.dose_mg):
        doses.add(protocol.maintenance.dose_mg)
    for dose in sorted(doses):
        units = dose / strength
        if not math.isclose(units, round(units), abs_tol=1e-6):
            out.warning(
                "partial_unit",
                f"{_num(dose)} mg is {_num(round(units, 3))} of a {_num(strength)} mg "
                f"{protocol.unit_name}; confirm the unit can be divided that way.",
                "strength_mg_per_unit",
            )


def _check_monitoring(protocol: Protocol, out: _Collector) -> None:
    mon = protocol.monitoring
    if not mon.bp_before_each_dose:
        out.warning("bp_before_off", "Blood pressure is not checked before each dose.",
                    "monitoring.bp_before_each_dose")
    elif mon.hold_systolic_above_mmhg is None and mon.hold_diastolic_above_mmhg is None:
        out.warning("bp_hold_missing",
                    "No blood-pressure hold value is set: the patient is not told when not to "
                    "dose.", "monitoring.hold_systolic_above_mmhg")
    for name, value in (
        ("hold_systolic_above_mmhg", mon.hold_systolic_above_mmhg),
        ("hold_diastolic_above_mmhg", mon.hold_diastolic_above_mmhg),
        ("phq9_every_weeks", mon.phq9_every_weeks),
        ("gad7_every_weeks", mon.gad7_every_weeks),
        ("check_in_every_days", mon.check_in_every_days),
        ("bp_after_minutes", mon.bp_after_minutes),
    ):
        if value is not None and value < 1:
            out.error("monitoring_value_invalid",
                      f"The monitoring value '{name.replace('_', ' ')}' must be at least 1.",
                      f"monitoring.{name}")
    if protocol.kind is ProtocolKind.STANDARD:
        if not mon.bp_after_dose:
            out.warning("standard_no_bp_after",
                        "Standard dose: blood pressure is not checked after the dose.",
                        "monitoring.bp_after_dose")
        if not mon.sitter_required:
            out.warning("standard_no_sitter", "Standard dose: no sitter is required.",
                        "monitoring.sitter_required")
    if not mon.missed_dose_instructions.strip():
        out.warning("missed_dose_missing", "No instructions for a missed dose.",
                    "monitoring.missed_dose_instructions")


#: Where the practice's limits are set, as the menu names it (Practice menu).
LIMITS_PAGE_WORDS = "Practice ▸ Practice limits for protocols…"


def _limit_not_set(out: _Collector, route_words: str, name: str, limit: LimitValue) -> None:
    what = ROUTE_LIMIT_FIELDS[name]
    out.error(
        "limit_not_set",
        f"The practice has not set a {what} for {route_words}; set it in {LIMITS_PAGE_WORDS} "
        "before signing.",
        f"limits.{name}",
        limit.source or None,
    )


def _check_limits(
    protocol: Protocol,
    limits: PracticeLimits,
    weight: WeightReading | None,
    today: date,
    out: _Collector,
) -> None:
    route_limits = limits.for_route(protocol.route)
    words = _ROUTE_WORDS[protocol.route]
    top = highest_dose_mg(protocol)

    lim = route_limits.max_single_dose_mg
    if lim.value is None:
        _limit_not_set(out, words, "max_single_dose_mg", lim)
    elif top > lim.value:
        out.error(
            "dose_above_limit_mg",
            f"Dose {_num(top)} mg exceeds the practice maximum of {_num(lim.value)} mg for "
            f"{words}.",
            "ladder.max_dose_mg",
            lim.source,
        )

    lim = route_limits.max_single_dose_mg_per_kg
    if lim.value is None:
        _limit_not_set(out, words, "max_single_dose_mg_per_kg", lim)
    elif weight is not None and weight.kg > 0:
        mg_per_kg = round(top / weight.kg, 2)
        if mg_per_kg > lim.value:
            out.error(
                "dose_above_limit_mg_per_kg",
                f"Dose {_num(mg_per_kg)} mg/kg exceeds the practice maximum of "
                f"{_num(lim.value)} mg/kg for {words} ({_num(top)} mg at "
                f"{weight_basis_text(weight, today)}).",
                "ladder.max_dose_mg",
                lim.source,
            )

    # The calendar plans at most one session per calendar day, so the daily total is the
    # highest single dose.
    lim = route_limits.max_daily_mg
    if lim.value is None:
        _limit_not_set(out, words, "max_daily_mg", lim)
    elif top > lim.value:
        out.error(
            "daily_above_limit",
            f"Up to {_num(top)} mg a day exceeds the practice maximum of {_num(lim.value)} mg a "
            f"day for {words}.",
            "ladder.max_dose_mg",
            lim.source,
        )

    frequencies: Sequence[tuple[str, str, Frequency]] = (
        ("", "frequency", protocol.frequency),
        *(
            (("Maintenance: ", "maintenance.frequency", maintenance_frequency(protocol)),)
            if protocol.maintenance.frequency is not None
            else ()
        ),
    )
    lim = route_limits.min_interval_hours
    if lim.value is None:
        _limit_not_set(out, words, "min_interval_hours", lim)
    else:
        for prefix, field, freq in frequencies:
            if freq.min_hours_between_doses < lim.value:
                out.error(
                    "interval_below_limit",
                    f"{prefix}A minimum of {_num(freq.min_hours_between_doses)} hours between "
                    f"doses is shorter than the practice minimum of {_num(lim.value)} hours for "
                    f"{words}.",
                    f"{field}.min_hours_between_doses",
                    lim.source,
                )
    lim = route_limits.max_sessions_per_week
    if lim.value is None:
        _limit_not_set(out, words, "max_sessions_per_week", lim)
    else:
        for prefix, field, freq in frequencies:
            planned = sessions_per_week(freq)
            if planned > lim.value + 1e-9:
                out.error(
                    "sessions_above_limit",
                    f"{prefix}{_num(round(planned, 2))} sessions a week exceeds the practice "
                    f"maximum of {_num(lim.value)} a week for {words}.",
                    field,
                    lim.source,
                )


def _check_weight(
    weight: WeightReading | None, max_age: LimitValue, today: date, out: _Collector
) -> None:
    if weight is None:
        out.warning(
            "weight_missing",
            "No weight on the chart: the dose in mg/kg was not checked. Record a weight.",
            "weight",
        )
        return
    if not (math.isfinite(weight.kg) and weight.kg > 0):
        out.error("weight_invalid", "The chart weight must be more than 0 kg.", "weight")
        return
    age = (today - weight.measured_on).days
    if age < 0:
        out.error("weight_in_future",
                  f"The chart weight is dated {weight.measured_on.isoformat()}, after today.",
                  "weight")
        return
    if max_age.value is None:
        out.warning(
            "weight_age_not_checked",
            f"The practice has not set how old a weight may be, so the weight's age was not "
            f"checked ({weight_basis_text(weight, today)}).",
            "weight",
            max_age.source or None,
        )
    elif age > max_age.value:
        out.warning(
            "weight_stale",
            f"The weight is {age} days old, older than the practice limit of "
            f"{_num(max_age.value)} days ({weight_basis_text(weight, today)}).",
            "weight",
            max_age.source,
        )
