"""Home dose log: sessions reported by the patient and entered by staff, checked against rules.

The rules (minimum interval, maximum single dose, blood-pressure hold thresholds, sitter) come
from the patient's protocol; this module only compares. A rule that cannot be checked because
a reading is missing produces a "not checked" flag rather than passing silently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from itertools import pairwise

from ketadesk.core.errors import UserFacingError


@dataclass(frozen=True)
class DoseLogEntry:
    """One home session.

    ``taken_at`` is timezone-aware; ``dose_mg`` in mg; blood pressures in mmHg (``None`` when
    not measured); heart rates in beats per minute; ``sitter_present`` is ``None`` when not
    asked.
    """

    taken_at: datetime
    dose_mg: float
    bp_before_systolic: int | None = None
    bp_before_diastolic: int | None = None
    bp_after_systolic: int | None = None
    bp_after_diastolic: int | None = None
    hr_before: int | None = None
    hr_after: int | None = None
    sitter_present: bool | None = None
    effects: str = ""


@dataclass(frozen=True)
class DoseRules:
    """The protocol limits a home dose is checked against; ``None`` = no such rule.

    ``min_hours_between_doses`` in hours, ``max_single_dose_mg`` in mg, hold thresholds in
    mmHg (a dose should be held when the pre-dose reading is *above* the threshold).
    """

    min_hours_between_doses: float | None = None
    max_single_dose_mg: float | None = None
    hold_systolic_above: int | None = None
    hold_diastolic_above: int | None = None
    sitter_required: bool = False


class DoseFlagKind(StrEnum):
    TOO_SOON = "too_soon"
    OVER_MAXIMUM = "over_maximum"
    BP_ABOVE_HOLD = "bp_above_hold"
    NO_SITTER = "no_sitter"
    BP_NOT_CHECKED = "bp_not_checked"
    SITTER_NOT_CHECKED = "sitter_not_checked"


SAFETY_ALERT_KINDS = frozenset(
    {DoseFlagKind.BP_ABOVE_HOLD, DoseFlagKind.OVER_MAXIMUM, DoseFlagKind.TOO_SOON}
)
"""Breaches that must reach the physician as a safety alert (like PHQ-9 item 9): a dose
taken over the blood-pressure hold limit, above the maximum single dose, or too soon after
the previous one. A missing sitter or an unchecked rule stays a flag in the dose log."""

ALERT_KIND_WORDS = {
    DoseFlagKind.BP_ABOVE_HOLD: "blood pressure above the hold limit",
    DoseFlagKind.OVER_MAXIMUM: "dose above the maximum",
    DoseFlagKind.TOO_SOON: "doses too close together",
}


@dataclass(frozen=True)
class DoseFlag:
    """A protocol break (``is_breach``) or a rule that could not be checked."""

    kind: DoseFlagKind
    message: str

    @property
    def is_breach(self) -> bool:
        return self.kind not in (DoseFlagKind.BP_NOT_CHECKED, DoseFlagKind.SITTER_NOT_CHECKED)


_Add = Callable[[int, DoseFlagKind, str], None]


def _format_mg(value: float) -> str:
    return f"{value:g} mg"


def _format_hours(hours: float) -> str:
    if hours < 1:
        return f"{round(hours * 60)} minutes"
    return f"{hours:.1f} hours".replace(".0 hours", " hours")


def _check_entry(index: int, entry: DoseLogEntry) -> None:
    if entry.taken_at.tzinfo is None or entry.taken_at.utcoffset() is None:
        raise UserFacingError(
            f"Dose log entry {index + 1} has a time without a time zone; re-enter it."
        )
    if entry.dose_mg <= 0:
        raise UserFacingError(f"Dose log entry {index + 1}: the dose must be more than 0 mg.")


def dose_log_flags(entries: Sequence[DoseLogEntry], rules: DoseRules) -> dict[int, list[DoseFlag]]:
    """Return the flags for each entry that has any, keyed by its index in ``entries``.

    Entries may be in any order; "too soon" compares each dose with the one taken just before
    it in time (interval in hours). Doses in mg, blood pressure in mmHg. Entries without flags
    are absent from the result. Raises ``UserFacingError`` for a time without a time zone or
    a dose of 0 mg or less.
    """
    for index, entry in enumerate(entries):
        _check_entry(index, entry)

    flags: dict[int, list[DoseFlag]] = {}

    def add(index: int, kind: DoseFlagKind, message: str) -> None:
        flags.setdefault(index, []).append(DoseFlag(kind, message))

    if rules.min_hours_between_doses is not None:
        order = sorted(range(len(entries)), key=lambda i: entries[i].taken_at)
        for previous, current in pairwise(order):
            gap = entries[current].taken_at - entries[previous].taken_at
            gap_hours = gap.total_seconds() / 3600
            if gap_hours < rules.min_hours_between_doses:
                add(
                    current,
                    DoseFlagKind.TOO_SOON,
                    f"Taken {_format_hours(gap_hours)} after the previous dose; the protocol "
                    f"requires at least {_format_hours(rules.min_hours_between_doses)} "
                    "between doses.",
                )

    for index, entry in enumerate(entries):
        if rules.max_single_dose_mg is not None and entry.dose_mg > rules.max_single_dose_mg:
            add(
                index,
                DoseFlagKind.OVER_MAXIMUM,
                f"Dose of {_format_mg(entry.dose_mg)} is above the protocol maximum single dose "
                f"of {_format_mg(rules.max_single_dose_mg)}.",
            )
        _check_blood_pressure(index, entry, rules, add)
        if rules.sitter_required:
            if entry.sitter_present is None:
                add(
                    index,
                    DoseFlagKind.SITTER_NOT_CHECKED,
                    "Not checked: the protocol requires a sitter, but whether one was present "
                    "was not recorded.",
                )
            elif not entry.sitter_present:
                add(
                    index,
                    DoseFlagKind.NO_SITTER,
                    "Dose taken without a sitter present; the protocol requires one.",
                )
    return flags


def _check_blood_pressure(index: int, entry: DoseLogEntry, rules: DoseRules, add: _Add) -> None:
    reasons: list[str] = []
    missing: list[str] = []
    if rules.hold_systolic_above is not None:
        if entry.bp_before_systolic is None:
            missing.append("systolic")
        elif entry.bp_before_systolic > rules.hold_systolic_above:
            reasons.append(f"systolic above {rules.hold_systolic_above} mmHg")
    if rules.hold_diastolic_above is not None:
        if entry.bp_before_diastolic is None:
            missing.append("diastolic")
        elif entry.bp_before_diastolic > rules.hold_diastolic_above:
            reasons.append(f"diastolic above {rules.hold_diastolic_above} mmHg")
    if reasons:
        reading = f"{_reading(entry.bp_before_systolic)}/{_reading(entry.bp_before_diastolic)} mmHg"
        add(
            index,
            DoseFlagKind.BP_ABOVE_HOLD,
            f"Dosed despite a pre-dose blood pressure of {reading} ("
            + " and ".join(reasons)
            + "); the protocol says to hold the dose.",
        )
    elif missing:
        add(
            index,
            DoseFlagKind.BP_NOT_CHECKED,
            "Not checked: no pre-dose " + " or ".join(missing) + " blood pressure was recorded, "
            "so the protocol's hold threshold could not be checked.",
        )


def _reading(value: int | None) -> str:
    return "?" if value is None else str(value)


# --------------------------------------------------------------------------- before saving

#: A dose this many days or more from the nearest planned session is questioned (days).
DAYS_FROM_CALENDAR_QUESTIONED = 3
#: Without a protocol, a dose dated this long ago is questioned (days).
DAYS_AGO_QUESTIONED = 90
#: A dose time this far ahead of the clock is a typing slip (minutes).
FUTURE_TOLERANCE_MINUTES = 5


@dataclass(frozen=True)
class DoseCalendarContext:
    """What a new home dose is compared with before it is saved.

    ``first_session`` is the first planned session of the patient's signed protocol (``None``
    without one); ``planned_dates`` are its planned session days; ``max_single_dose_mg`` in mg.
    """

    first_session: date | None = None
    planned_dates: tuple[date, ...] = ()
    max_single_dose_mg: float | None = None


@dataclass(frozen=True)
class DoseEntryConcern:
    """Something odd about a dose about to be saved, in words.

    ``blocks_saving`` concerns cannot be right (a future time, diastolic above systolic) and
    must be corrected; the others are asked about ("save anyway?") before saving.
    """

    message: str
    blocks_saving: bool = False


def _day_word(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


def dose_entry_concerns(
    entry: DoseLogEntry, now: datetime, context: DoseCalendarContext
) -> tuple[DoseEntryConcern, ...]:
    """What to question before saving ``entry`` (time aware; dose in mg; BP in mmHg).

    Blocking: no dose (0 mg); a time more than ``FUTURE_TOLERANCE_MINUTES`` minutes in the future; a
    diastolic reading not lower than its systolic. Questioned: a date before the protocol's
    first session; ``DAYS_FROM_CALENDAR_QUESTIONED`` days or more from every planned session;
    without a protocol, more than ``DAYS_AGO_QUESTIONED`` days ago; a dose above the maximum
    single dose (mg). Dates compare in the dose's own time zone.
    """
    concerns: list[DoseEntryConcern] = []
    taken = entry.taken_at
    day = taken.date()
    when = taken.strftime("%Y-%m-%d %H:%M")
    if entry.dose_mg <= 0:
        concerns.append(DoseEntryConcern("Enter the dose taken, in mg.", blocks_saving=True))
    if taken > now + timedelta(minutes=FUTURE_TOLERANCE_MINUTES):
        concerns.append(
            DoseEntryConcern(
                f"The dose time {when} is in the future. Enter the time the dose was taken.",
                blocks_saving=True,
            )
        )
    for moment, systolic, diastolic in (
        ("before", entry.bp_before_systolic, entry.bp_before_diastolic),
        ("after", entry.bp_after_systolic, entry.bp_after_diastolic),
    ):
        if systolic is not None and diastolic is not None and diastolic >= systolic:
            concerns.append(
                DoseEntryConcern(
                    f"The blood pressure {moment} the dose reads {systolic}/{diastolic}: the "
                    "second number (diastolic) must be lower than the first (systolic). "
                    "Check what was typed.",
                    blocks_saving=True,
                )
            )
    if context.first_session is not None and day < context.first_session:
        early = (context.first_session - day).days
        concerns.append(
            DoseEntryConcern(
                f"The dose is dated {day.isoformat()}, {_day_word(early)} before the first "
                f"session of this patient's protocol ({context.first_session.isoformat()})."
            )
        )
    elif context.planned_dates and day <= now.date():
        nearest = min(abs((planned - day).days) for planned in context.planned_dates)
        if nearest >= DAYS_FROM_CALENDAR_QUESTIONED:
            concerns.append(
                DoseEntryConcern(
                    f"The dose is dated {day.isoformat()}, {_day_word(nearest)} away from the "
                    "nearest session on the protocol's calendar."
                )
            )
    elif context.first_session is None and (now.date() - day).days > DAYS_AGO_QUESTIONED:
        concerns.append(
            DoseEntryConcern(
                f"The dose is dated {day.isoformat()}, {_day_word((now.date() - day).days)} "
                "ago."
            )
        )
    if context.max_single_dose_mg is not None and entry.dose_mg > context.max_single_dose_mg:
        concerns.append(
            DoseEntryConcern(
                f"The dose of {_format_mg(entry.dose_mg)} is above the protocol's maximum "
                f"single dose of {_format_mg(context.max_single_dose_mg)}; it will be saved "
                "as a breach and the physician alerted."
            )
        )
    return tuple(concerns)
