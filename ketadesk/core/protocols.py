"""The protocol a physician prescribes: what, how much, how often, and how it is monitored.

Everything here is a frozen dataclass or a pure function. Nothing in this module knows what a
"microdose" is: the dose (mg), frequency and duration are always the prescriber's, and the
``kind`` field only labels the protocol and selects which monitoring reminders apply.

``protocol_to_dict`` / ``protocol_from_dict`` round-trip a protocol through plain JSON-able
values (used for storage, template files and content hashes); ``protocol_diff`` describes the
differences between two protocols in words; ``sig_text`` writes the human-readable sig.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, TypeVar

from ketadesk.core.errors import UserFacingError

_E = TypeVar("_E", bound=StrEnum)

#: Version of the dictionary layout written by ``protocol_to_dict``.
PROTOCOL_FORMAT_VERSION = 1


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


# --------------------------------------------------------------------------- dict round-trip


def _opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def frequency_to_dict(frequency: Frequency) -> dict[str, Any]:
    return {
        "kind": frequency.kind.value,
        "sessions_per_week": frequency.sessions_per_week,
        "every_n_days": frequency.every_n_days,
        "min_hours_between_doses": float(frequency.min_hours_between_doses),
        "time_of_day_notes": frequency.time_of_day_notes,
    }


def protocol_to_dict(protocol: Protocol) -> dict[str, Any]:
    """Return the protocol as JSON-able plain values (dates as ISO text, enums as their values,
    mg and hour amounts always as floats so 10 and 10.0 serialise alike).

    The layout is stable and keys are fixed, so ``json.dumps(..., sort_keys=True)`` of the result
    is a sound basis for a content hash.
    """
    ladder = protocol.ladder
    mon = protocol.monitoring
    return {
        "format_version": PROTOCOL_FORMAT_VERSION,
        "indication": protocol.indication.value,
        "indication_other": protocol.indication_other,
        "kind": protocol.kind.value,
        "route": protocol.route.value,
        "route_other": protocol.route_other,
        "formulation": protocol.formulation,
        "unit_name": protocol.unit_name,
        "strength_mg_per_unit": float(protocol.strength_mg_per_unit),
        "ladder": {
            "start_dose_mg": float(ladder.start_dose_mg),
            "max_dose_mg": float(ladder.max_dose_mg),
            "increment_mg": _opt_float(ladder.increment_mg),
            "step_doses_mg": [float(d) for d in ladder.step_doses_mg],
            "step_up_rule": ladder.step_up_rule.value,
            "sessions_per_step": ladder.sessions_per_step,
        },
        "frequency": frequency_to_dict(protocol.frequency),
        "maintenance": {
            "dose_mg": _opt_float(protocol.maintenance.dose_mg),
            "frequency": (
                frequency_to_dict(protocol.maintenance.frequency)
                if protocol.maintenance.frequency is not None
                else None
            ),
            "notes": protocol.maintenance.notes,
        },
        "duration_weeks": protocol.duration_weeks,
        "review_date": protocol.review_date.isoformat() if protocol.review_date else None,
        "monitoring": {
            "bp_before_each_dose": mon.bp_before_each_dose,
            "bp_after_dose": mon.bp_after_dose,
            "bp_after_minutes": mon.bp_after_minutes,
            "hold_systolic_above_mmhg": mon.hold_systolic_above_mmhg,
            "hold_diastolic_above_mmhg": mon.hold_diastolic_above_mmhg,
            "phq9_every_weeks": mon.phq9_every_weeks,
            "gad7_every_weeks": mon.gad7_every_weeks,
            "check_in_every_days": mon.check_in_every_days,
            "sitter_required": mon.sitter_required,
            "no_driving_until_next_day": mon.no_driving_until_next_day,
            "no_alcohol": mon.no_alcohol,
            "missed_dose_instructions": mon.missed_dose_instructions,
        },
        "supply": {"refills": protocol.supply.refills, "notes": protocol.supply.notes},
        "notes": protocol.notes,
        "example_values": protocol.example_values,
    }


def protocol_content_hash(protocol: Protocol) -> str:
    """Return the SHA-256 (hex) of the protocol's canonical JSON (sorted keys, no spaces), so a
    stored or printed protocol can be checked against its signed version."""
    canonical = json.dumps(
        protocol_to_dict(protocol), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class _Reader:
    """Reads typed values out of a dict, naming the field in any error."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise UserFacingError(f"The protocol data is damaged: {where or 'it'} is not a group.")
        self._data = data
        self._where = where

    def _path(self, key: str) -> str:
        return f"{self._where}.{key}" if self._where else key

    def _bad(self, key: str, wanted: str) -> UserFacingError:
        return UserFacingError(
            f"The protocol data is damaged: '{self._path(key)}' should be {wanted}."
        )

    def raw(self, key: str, default: Any = ...) -> Any:
        if key not in self._data:
            if default is ...:
                raise UserFacingError(
                    f"The protocol data is incomplete: '{self._path(key)}' is missing."
                )
            return default
        return self._data[key]

    def number(self, key: str, default: Any = ...) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value
        ):
            raise self._bad(key, "a number")
        return float(value)

    def opt_number(self, key: str) -> float | None:
        return None if self.raw(key, None) is None else self.number(key)

    def integer(self, key: str, default: Any = ...) -> int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(key, "a whole number")
        return value

    def opt_integer(self, key: str) -> int | None:
        return None if self.raw(key, None) is None else self.integer(key)

    def text(self, key: str, default: Any = ...) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str):
            raise self._bad(key, "text")
        return value

    def flag(self, key: str, default: Any = ...) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self._bad(key, "true or false")
        return value

    def choice(self, key: str, enum: type[_E], default: Any = ...) -> _E:
        value = self.raw(key, default)
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(e.value for e in enum)
            raise self._bad(key, f"one of: {allowed}") from None

    def child(self, key: str) -> _Reader:
        return _Reader(self.raw(key), self._path(key))


def _frequency_from(reader: _Reader) -> Frequency:
    return Frequency(
        kind=reader.choice("kind", FrequencyKind),
        sessions_per_week=reader.opt_integer("sessions_per_week"),
        every_n_days=reader.opt_integer("every_n_days"),
        min_hours_between_doses=reader.number("min_hours_between_doses", 24.0),
        time_of_day_notes=reader.text("time_of_day_notes", ""),
    )


def protocol_from_dict(data: Mapping[str, Any]) -> Protocol:
    """Build a protocol from ``protocol_to_dict`` output; damaged data raises UserFacingError.

    Optional keys may be left out (they take their defaults); unknown keys are ignored.
    """
    r = _Reader(data, "")
    version = r.integer("format_version", PROTOCOL_FORMAT_VERSION)
    if version > PROTOCOL_FORMAT_VERSION:
        raise UserFacingError(
            "This protocol was saved by a newer version of KetaDesk; update KetaDesk to open it."
        )
    lad = r.child("ladder")
    steps_raw = lad.raw("step_doses_mg", [])
    if not isinstance(steps_raw, list | tuple):
        raise UserFacingError("The protocol data is damaged: 'ladder.step_doses_mg' is not a list.")
    steps = tuple(_Reader({"dose": s}, "ladder.step_doses_mg").number("dose") for s in steps_raw)
    ladder = TitrationLadder(
        start_dose_mg=lad.number("start_dose_mg"),
        max_dose_mg=lad.number("max_dose_mg"),
        increment_mg=lad.opt_number("increment_mg"),
        step_doses_mg=steps,
        step_up_rule=lad.choice(
            "step_up_rule", StepUpRule, StepUpRule.AFTER_TOLERATED_SESSIONS.value
        ),
        sessions_per_step=lad.integer("sessions_per_step", 1),
    )
    maintenance = MaintenancePhase()
    if r.raw("maintenance", None) is not None:
        m = r.child("maintenance")
        maintenance = MaintenancePhase(
            dose_mg=m.opt_number("dose_mg"),
            frequency=(
                _frequency_from(m.child("frequency"))
                if m.raw("frequency", None) is not None
                else None
            ),
            notes=m.text("notes", ""),
        )
    monitoring = MonitoringPlan()
    if r.raw("monitoring", None) is not None:
        mo = r.child("monitoring")
        d = MonitoringPlan()
        monitoring = MonitoringPlan(
            bp_before_each_dose=mo.flag("bp_before_each_dose", d.bp_before_each_dose),
            bp_after_dose=mo.flag("bp_after_dose", d.bp_after_dose),
            bp_after_minutes=mo.opt_integer("bp_after_minutes"),
            hold_systolic_above_mmhg=mo.opt_integer("hold_systolic_above_mmhg"),
            hold_diastolic_above_mmhg=mo.opt_integer("hold_diastolic_above_mmhg"),
            phq9_every_weeks=mo.opt_integer("phq9_every_weeks"),
            gad7_every_weeks=mo.opt_integer("gad7_every_weeks"),
            check_in_every_days=mo.opt_integer("check_in_every_days"),
            sitter_required=mo.flag("sitter_required", d.sitter_required),
            no_driving_until_next_day=mo.flag(
                "no_driving_until_next_day", d.no_driving_until_next_day
            ),
            no_alcohol=mo.flag("no_alcohol", d.no_alcohol),
            missed_dose_instructions=mo.text("missed_dose_instructions", ""),
        )
    supply = SupplyPlan()
    if r.raw("supply", None) is not None:
        s = r.child("supply")
        supply = SupplyPlan(refills=s.integer("refills", 0), notes=s.text("notes", ""))
    review_raw = r.raw("review_date", None)
    review_date: date | None = None
    if review_raw is not None:
        try:
            review_date = date.fromisoformat(r.text("review_date"))
        except ValueError:
            raise UserFacingError(
                "The protocol data is damaged: 'review_date' should be a date (YYYY-MM-DD)."
            ) from None
    return Protocol(
        indication=r.choice("indication", Indication),
        indication_other=r.text("indication_other", ""),
        kind=r.choice("kind", ProtocolKind),
        route=r.choice("route", Route),
        route_other=r.text("route_other", ""),
        formulation=r.text("formulation", ""),
        unit_name=r.text("unit_name", "unit"),
        strength_mg_per_unit=r.number("strength_mg_per_unit"),
        ladder=ladder,
        frequency=_frequency_from(r.child("frequency")),
        maintenance=maintenance,
        duration_weeks=r.integer("duration_weeks"),
        review_date=review_date,
        monitoring=monitoring,
        supply=supply,
        notes=r.text("notes", ""),
        example_values=r.flag("example_values", False),
    )


# --------------------------------------------------------------------------- diff

_Formatter = Callable[[Any], str]


def _fmt_mg(value: Any) -> str:
    return "none" if value is None else f"{number_text(float(value))} mg"


def _fmt_list_mg(value: Any) -> str:
    return "none" if not value else ", ".join(number_text(float(v)) for v in value) + " mg"


def _fmt_plain(value: Any) -> str:
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number_text(value)
    return str(value)


def _fmt_unit(unit: str) -> _Formatter:
    def fmt(value: Any) -> str:
        return "none" if value is None else f"{_fmt_plain(value)} {unit}"

    return fmt


def _fmt_label(labels: Mapping[Any, str]) -> _Formatter:
    def fmt(value: Any) -> str:
        for key, label in labels.items():
            if getattr(key, "value", key) == value:
                return label
        return _fmt_plain(value)

    return fmt


_FREQUENCY_FIELDS: tuple[tuple[str, str, _Formatter], ...] = (
    ("kind", "Frequency", _fmt_label({k: k.value.replace("_", " ") for k in FrequencyKind})),
    ("sessions_per_week", "Sessions per week", _fmt_plain),
    ("every_n_days", "Every N days", _fmt_plain),
    ("min_hours_between_doses", "Minimum interval", _fmt_unit("hours")),
    ("time_of_day_notes", "Time of day", _fmt_plain),
)

#: (dict path, label, formatter) for every field shown in a diff, in editor order.
_DIFF_FIELDS: tuple[tuple[str, str, _Formatter], ...] = (
    ("indication", "Indication", _fmt_label(INDICATION_LABELS)),
    ("indication_other", "Indication (other)", _fmt_plain),
    ("kind", "Kind", _fmt_label(KIND_LABELS)),
    ("route", "Route", _fmt_label(ROUTE_LABELS)),
    ("route_other", "Route (other)", _fmt_plain),
    ("formulation", "Formulation", _fmt_plain),
    ("unit_name", "Unit", _fmt_plain),
    ("strength_mg_per_unit", "Strength per unit", _fmt_mg),
    ("ladder.start_dose_mg", "Start dose", _fmt_mg),
    ("ladder.increment_mg", "Step increment", _fmt_mg),
    ("ladder.step_doses_mg", "Ladder steps", _fmt_list_mg),
    ("ladder.max_dose_mg", "Maximum dose", _fmt_mg),
    ("ladder.step_up_rule", "Step-up rule", _fmt_label(STEP_UP_LABELS)),
    ("ladder.sessions_per_step", "Sessions per step", _fmt_plain),
    *((f"frequency.{k}", label, f) for k, label, f in _FREQUENCY_FIELDS),
    ("maintenance.dose_mg", "Maintenance dose", _fmt_mg),
    *(
        (f"maintenance.frequency.{k}", f"Maintenance {label[0].lower()}{label[1:]}", f)
        for k, label, f in _FREQUENCY_FIELDS
    ),
    ("maintenance.notes", "Maintenance notes", _fmt_plain),
    ("duration_weeks", "Duration", _fmt_unit("weeks")),
    ("review_date", "Review date", _fmt_plain),
    ("monitoring.bp_before_each_dose", "BP before each dose", _fmt_plain),
    ("monitoring.bp_after_dose", "BP after dose", _fmt_plain),
    ("monitoring.bp_after_minutes", "BP after dose at", _fmt_unit("minutes")),
    ("monitoring.hold_systolic_above_mmhg", "Hold if systolic above", _fmt_unit("mmHg")),
    ("monitoring.hold_diastolic_above_mmhg", "Hold if diastolic above", _fmt_unit("mmHg")),
    ("monitoring.phq9_every_weeks", "PHQ-9 every", _fmt_unit("weeks")),
    ("monitoring.gad7_every_weeks", "GAD-7 every", _fmt_unit("weeks")),
    ("monitoring.check_in_every_days", "Check-in every", _fmt_unit("days")),
    ("monitoring.sitter_required", "Sitter required", _fmt_plain),
    ("monitoring.no_driving_until_next_day", "No driving until next day", _fmt_plain),
    ("monitoring.no_alcohol", "No alcohol", _fmt_plain),
    ("monitoring.missed_dose_instructions", "Missed-dose instructions", _fmt_plain),
    ("supply.refills", "Refills", _fmt_plain),
    ("supply.notes", "Supply notes", _fmt_plain),
    ("notes", "Notes", _fmt_plain),
    ("example_values", "Example values not yet confirmed", _fmt_plain),
)


def _lookup(data: Mapping[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def protocol_diff(a: Protocol, b: Protocol) -> list[str]:
    """Return one line per changed field, old value first: "Start dose: 10 mg → 15 mg".

    Doses are shown in mg, intervals in hours, durations in weeks, BP in mmHg. Identical
    protocols give an empty list.
    """
    da, db = protocol_to_dict(a), protocol_to_dict(b)
    lines: list[str] = []
    for path, label, fmt in _DIFF_FIELDS:
        old, new = _lookup(da, path), _lookup(db, path)
        if old != new:
            lines.append(f"{label}: {fmt(old)} → {fmt(new)}")
    return lines
