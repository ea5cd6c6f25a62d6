"""Today's date, local-time display of stored (UTC) moments, and ``date`` <-> ``QDate``.

Times are stored in UTC; people read them in this computer's time zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from PySide6.QtCore import QDate


def utc_today() -> date:
    """Today's date in UTC."""
    return datetime.now(UTC).date()


def local_today() -> date:
    """Today's date where the user is (this computer's time zone)."""
    return datetime.now(UTC).astimezone().date()


def local_date_text(moment: datetime) -> str:
    """The local calendar day of an aware ``moment``, as MM/DD/YYYY."""
    return moment.astimezone().strftime("%m/%d/%Y")


def local_time_text(moment: datetime) -> str:
    """An aware ``moment`` in this computer's time zone, as MM/DD/YYYY HH:MM."""
    return moment.astimezone().strftime("%m/%d/%Y %H:%M")


def to_qdate(value: date) -> QDate:
    """The same calendar day as a ``QDate``."""
    return QDate(value.year, value.month, value.day)


def from_qdate(value: QDate) -> date:
    """The same calendar day as a ``date``."""
    return date(value.year(), value.month(), value.day())
