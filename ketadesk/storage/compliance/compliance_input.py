"""Checks on what the compliance services are given: the patient exists, free text is within
its length, times are aware and not in the future."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from ketadesk.core.errors import UserFacingError
from ketadesk.models.patients import Patient

#: A recorded time may be this far ahead of the computer's clock (clock drift between laptops).
FUTURE_TOLERANCE = timedelta(minutes=5)


def require_patient(session: Session, patient_id: int) -> Patient:
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise UserFacingError("This patient is no longer in the practice database.")
    return patient


def clean_text(text: str | None, what: str, limit: int, *, required: bool = False) -> str:
    """``text`` trimmed; refused when required and empty, or longer than ``limit``."""
    value = (text or "").strip()
    if required and not value:
        raise UserFacingError(f"Enter {what}.")
    if len(value) > limit:
        raise UserFacingError(f"{what[0].upper()}{what[1:]} is too long (at most {limit} "
                              "characters).")
    return value


def past_moment(moment: datetime | None, what: str) -> datetime:
    """``moment`` (aware) or now; refused when naive or in the future."""
    now = datetime.now(UTC)
    if moment is None:
        return now
    if moment.tzinfo is None:
        raise UserFacingError(f"{what}: give the time with its time zone.")
    if moment - now > FUTURE_TOLERANCE:
        raise UserFacingError(f"{what} cannot be in the future.")
    return moment.astimezone(UTC)


def past_day(day: date, what: str, today: date) -> date:
    if day > today:
        raise UserFacingError(f"{what} ({day.isoformat()}) cannot be in the future.")
    return day
