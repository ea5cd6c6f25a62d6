"""When the next check-in and questionnaires are due, from the protocol's monitoring plan.

Rules (all dates are calendar dates, intervals in days or weeks):

* next check-in = last check-in + ``checkin_every_days``; with no check-in yet, it is
  ``protocol_start + checkin_every_days``.
* next questionnaire (per instrument) = last one + ``questionnaire_every_weeks``; with none
  yet, a baseline is due on ``protocol_start``.
* something is overdue when ``today`` is *after* its due date (due today is not overdue).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType

from ketadesk.core.errors import UserFacingError
from ketadesk.core.questionnaires import instrument_key, load_instrument

CHECKIN = "check-in"


@dataclass(frozen=True)
class MonitoringCadence:
    """A protocol's monitoring plan: check-in interval (days), questionnaire interval (weeks)
    and which questionnaires to give (e.g. ``("PHQ-9", "GAD-7")``)."""

    checkin_every_days: int
    questionnaire_every_weeks: int
    instruments: tuple[str, ...] = ("PHQ-9", "GAD-7")


@dataclass(frozen=True)
class DueStatus:
    """What is due next, and how late the most overdue item is.

    ``questionnaires_due`` maps an instrument's display name (e.g. "PHQ-9") to its next due
    date. ``overdue`` lists what is overdue ("check-in", "PHQ-9", ...). ``days_overdue`` is
    the number of days past the *earliest* missed due date (0 when nothing is overdue).
    """

    next_checkin_due: date
    questionnaires_due: Mapping[str, date] = field(hash=False)
    overdue: tuple[str, ...]
    days_overdue: int

    @property
    def is_overdue(self) -> bool:
        return bool(self.overdue)

    @property
    def next_due(self) -> date:
        """The soonest due date of anything in the plan."""
        return min((self.next_checkin_due, *self.questionnaires_due.values()))


def next_due(
    last_checkin: date | None,
    last_questionnaire: Mapping[str, date],
    plan: MonitoringCadence,
    protocol_start: date,
    today: date,
) -> DueStatus:
    """Return the next check-in and questionnaire due dates and whether any is overdue.

    ``last_questionnaire`` maps instrument names (any spelling, "PHQ-9" or "phq9") to the
    date of the last *complete* form. Intervals: check-ins in days, questionnaires in weeks.
    Raises ``UserFacingError`` for a non-positive interval or an unknown instrument.
    """
    if plan.checkin_every_days < 1:
        raise UserFacingError("The monitoring plan's check-in interval must be at least 1 day.")
    if plan.questionnaire_every_weeks < 1:
        raise UserFacingError(
            "The monitoring plan's questionnaire interval must be at least 1 week."
        )

    last_by_key = {instrument_key(name): when for name, when in last_questionnaire.items()}
    checkin_base = last_checkin if last_checkin is not None else protocol_start
    next_checkin = checkin_base + timedelta(days=plan.checkin_every_days)

    questionnaires: dict[str, date] = {}
    for name in plan.instruments:
        instrument = load_instrument(name)
        last = last_by_key.get(instrument.id)
        due = (
            protocol_start
            if last is None
            else last + timedelta(weeks=plan.questionnaire_every_weeks)
        )
        questionnaires[instrument.name] = due

    overdue: list[str] = []
    late_days: list[int] = []
    for label, due in ((CHECKIN, next_checkin), *questionnaires.items()):
        if today > due:
            overdue.append(label)
            late_days.append((today - due).days)
    return DueStatus(
        next_checkin_due=next_checkin,
        questionnaires_due=MappingProxyType(questionnaires),
        overdue=tuple(overdue),
        days_overdue=max(late_days, default=0),
    )
