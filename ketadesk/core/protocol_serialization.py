"""A protocol as plain JSON-able values and back, its content hash, and its diff in words.

``protocol_to_dict`` / ``protocol_from_dict`` round-trip a protocol through plain JSON-able
values (used for storage, template files and content hashes); ``protocol_content_hash`` is the
SHA-256 of that layout; ``protocol_diff`` describes the differences between two protocols in
words.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from datetime import date
from enum import StrEnum
from typing import Any, TypeVar

from ketadesk.core.errors import UserFacingError
from ketadesk.core.protocols import (
    INDICATION_LABELS,
    KIND_LABELS,
    ROUTE_LABELS,
    STEP_UP_LABELS,
    Frequency,
    FrequencyKind,
    Indication,
    MaintenancePhase,
    MonitoringPlan,
    Protocol,
    ProtocolKind,
    Route,
    StepUpRule,
    SupplyPlan,
    TitrationLadder,
    number_text,
)

_E = TypeVar("_E", bound=StrEnum)

#: Version of the dictionary layout written by ``protocol_to_dict``.
PROTOCOL_FORMAT_VERSION = 1


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
