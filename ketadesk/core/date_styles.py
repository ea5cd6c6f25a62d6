"""How printed documents write dates: the practice chooses one style for the whole plan.

US ``MM/DD/YYYY`` is the default; ISO ``YYYY-MM-DD`` and a long form ("December 2, 2026") are
the other choices. Month and weekday names are spelled here in English, never taken from the
computer's locale, so a plan reads the same on every machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

US = "us"
ISO = "iso"
LONG = "long"
#: The style plans were printed in before the practice could choose ("2 Dec 2026"); kept so a
#: plan stored before then renders (and verifies) exactly as it was printed.
DAY_MONTH_ABBREVIATED = "day_month_abbreviated"

#: The styles a practice may choose, with the words the settings screen shows for each.
DATE_STYLE_LABELS: Mapping[str, str] = {
    US: "MM/DD/YYYY (12/02/2026)",
    ISO: "YYYY-MM-DD (2026-12-02)",
    LONG: "Month D, YYYY (December 2, 2026)",
}
DEFAULT_DATE_STYLE = US

_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def date_text(day: date, style: str) -> str:
    """``day`` written in ``style`` (an unknown style falls back to US ``MM/DD/YYYY``)."""
    if style == ISO:
        return day.isoformat()
    if style == LONG:
        return f"{_MONTHS[day.month - 1]} {day.day}, {day.year}"
    if style == DAY_MONTH_ABBREVIATED:
        return f"{day.day} {_MONTHS[day.month - 1][:3]} {day.year}"
    return f"{day.month:02d}/{day.day:02d}/{day.year:04d}"


def weekday_date_text(day: date, style: str) -> str:
    """``day`` with its abbreviated weekday in front ("Wed 12/02/2026", "Wed, December 2, 2026")."""
    weekday = _WEEKDAYS[day.weekday()][:3]
    separator = ", " if style == LONG else " "
    return f"{weekday}{separator}{date_text(day, style)}"


def date_time_text(moment: datetime, style: str) -> str:
    """An aware ``moment`` as its date in ``style``, the 24-hour time and its zone name
    ("12/02/2026, 14:05 UTC"); the moment is written in the zone it carries."""
    zone = moment.tzname() or "UTC"
    return f"{date_text(moment.date(), style)}, {moment:%H:%M} {zone}"
