"""Today's date and conversions between ``datetime.date`` and ``QDate`` for date editors."""

from __future__ import annotations

from datetime import UTC, date, datetime

from PySide6.QtCore import QDate


def utc_today() -> date:
    """Today's date in UTC."""
    return datetime.now(UTC).date()


def to_qdate(value: date) -> QDate:
    """The same calendar day as a ``QDate``."""
    return QDate(value.year, value.month, value.day)


def from_qdate(value: QDate) -> date:
    """The same calendar day as a ``date``."""
    return date(value.year(), value.month(), value.day())
