"""The data a printed treatment plan shows, and the content hash that identifies it.

This module is the renderer's whole input model. It knows nothing about the database, the
protocol editor or the interaction checker: those layers map their records onto these frozen
dataclasses, and the same :func:`plan_content_hash` is used both to stamp the PDF and to store the
hash of a signed protocol version, so a reprint can be checked against the database.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from ketadesk.core.date_styles import DAY_MONTH_ABBREVIATED

#: Bumped whenever the canonical form below changes, so old hashes are never silently re-read.
HASH_SCHEME = "ketadesk-plan-v1"

#: Fields that change how a plan looks, not what it says; they are left out of the hash.
#: ``logo_path`` is a local file path and ``calendar_weeks_shown`` a practice display setting.
_PRESENTATION_ONLY_FIELDS = frozenset({"logo_path", "calendar_weeks_shown"})

#: Fields added after the scheme was fixed, left out of the hash while they hold the value a
#: plan stored before them is read back with: an older plan keeps its hash and still verifies.
_LEFT_OUT_AT_DEFAULT: dict[str, Any] = {
    "date_style": DAY_MONTH_ABBREVIATED,
    "emergency_contact_relationship": None,
    "patient_note": None,
}


@dataclass(frozen=True)
class PracticeInfo:
    """Letterhead: practice name, postal address (may contain line breaks), phone, optional logo."""

    name: str
    address: str
    phone: str
    logo_path: str | None = None


@dataclass(frozen=True)
class PatientBlock:
    """Who the plan is for, and who is with them on dosing days."""

    full_name: str
    date_of_birth: date
    mrn: str
    state: str
    sitter_name: str | None = None
    sitter_phone: str | None = None
    emergency_contact_name: str | None = None
    emergency_contact_phone: str | None = None
    emergency_contact_relationship: str | None = None


@dataclass(frozen=True)
class PrescriberBlock:
    """The prescribing physician: name, 10-digit NPI and the states they are licensed in."""

    full_name: str
    npi: str
    licence_states: tuple[str, ...]


@dataclass(frozen=True)
class ProtocolSummary:
    """The signed protocol as a patient reads it.

    ``dose_mg`` and ``max_dose_mg`` are in mg, ``mg_per_kg`` in mg/kg and ``weight_kg`` in kg (the
    weight the dose was calculated from, measured on ``weight_date``). ``kind`` is display text
    ("Standard" or "Microdose"); the other text fields are shown as written.
    """

    indication: str
    kind: str
    route: str
    formulation: str
    strength: str
    dose_mg: float
    mg_per_kg: float
    weight_kg: float
    weight_date: date
    frequency: str
    titration_steps: tuple[str, ...]
    max_dose_mg: float
    duration: str
    supply_per_30_days: str
    refills: int
    sig: str


@dataclass(frozen=True)
class CalendarRow:
    """One calendar day: the dose in mg (and mg/kg), or ``None`` on a monitoring-only day."""

    day: date
    dose_mg: float | None
    mg_per_kg: float | None
    events: tuple[str, ...] = ()


@dataclass(frozen=True)
class MonitoringPlanText:
    """Monitoring plan lines (e.g. blood pressure checks in mmHg) and hold parameters."""

    lines: tuple[str, ...]
    hold_parameters: tuple[str, ...]


@dataclass(frozen=True)
class ReviewFlag:
    """One interaction-review finding: severity, what was found, the physician's decision as a
    category in patient words, and ``patient_note``: the physician's own note only when they
    marked it "for the patient" (their other notes stay in the review)."""

    severity: str
    title: str
    decision: str
    patient_note: str | None = None


@dataclass(frozen=True)
class ReviewSummary:
    """The interaction review behind the plan; ``not_checked`` lists entries the software did
    not recognise, and ``read_by_physician`` those of them the signing physician confirmed
    having read."""

    flags: tuple[ReviewFlag, ...]
    not_checked: tuple[str, ...]
    reviewed_on: date | None
    signed_by: str | None
    read_by_physician: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanDocument:
    """Everything one printed plan shows.

    ``calendar`` holds the protocol's whole calendar, in date order; the PDF shows the first
    ``calendar_weeks_shown`` weeks of it (all of it when shorter). A plan that is not a draft must
    carry ``signed_by`` and a timezone-aware ``signed_at``. ``date_style`` is how every date of
    the plan is written (``ketadesk.core.date_styles``; the practice's choice).
    """

    plan_id: str
    version: int
    title: str
    practice: PracticeInfo
    patient: PatientBlock
    prescriber: PrescriberBlock
    protocol: ProtocolSummary
    calendar: tuple[CalendarRow, ...]
    calendar_weeks_shown: int
    monitoring: MonitoringPlanText
    review: ReviewSummary
    signed_by: str | None
    signed_at: datetime | None
    is_draft: bool
    date_style: str = DAY_MONTH_ABBREVIATED

    def __post_init__(self) -> None:
        if self.version < 1:
            raise ValueError("plan version numbers start at 1")
        if self.calendar_weeks_shown < 1:
            raise ValueError("calendar_weeks_shown must be at least 1 week")
        if self.signed_at is not None and self.signed_at.utcoffset() is None:
            raise ValueError("signed_at must be timezone-aware")
        days = [row.day for row in self.calendar]
        if days != sorted(days):
            raise ValueError("calendar rows must be in date order")

    @property
    def is_signed(self) -> bool:
        """True when the plan carries a signer and a signing time."""
        return bool(self.signed_by) and self.signed_at is not None


def shown_calendar_rows(doc: PlanDocument) -> tuple[CalendarRow, ...]:
    """Return the calendar rows the PDF prints: those in the first ``calendar_weeks_shown`` weeks
    (7-day blocks counted from the first calendar day)."""
    if not doc.calendar:
        return ()
    end = doc.calendar[0].day + timedelta(days=7 * doc.calendar_weeks_shown)
    return tuple(row for row in doc.calendar if row.day < end)


def _canonical(value: Any) -> Any:
    """Turn plan data into JSON-ready values whose text does not depend on how they were built.

    Numbers become decimal strings (25, 25.0 and Decimal("25.00") all give "25"), strings are
    NFC-normalised, datetimes are converted to UTC, and dataclasses become sorted objects.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _canonical(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name not in _PRESENTATION_ONLY_FIELDS
            and not (
                f.name in _LEFT_OUT_AT_DEFAULT
                and getattr(value, f.name) == _LEFT_OUT_AT_DEFAULT[f.name]
            )
        }
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value)).normalize()
        text = format(number, "f")
        return "0" if text in {"-0", "0"} else text
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_canonical(item) for item in value]
    raise TypeError(f"cannot hash a {type(value).__name__} in a plan document")


def plan_canonical_json(doc: PlanDocument) -> str:
    """Return the canonical JSON text that :func:`plan_content_hash` digests."""
    payload = {"scheme": HASH_SCHEME, "plan": _canonical(doc)}
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def plan_content_hash(doc: PlanDocument) -> str:
    """Return the SHA-256 hex digest (64 lowercase characters) of the plan's canonical JSON.

    Every field a reader of the plan relies on is covered, including the full calendar, the
    review, the signer, the signing time and the draft flag; only the logo path and the number of
    calendar weeks printed are left out, because they change the look, not the content.
    """
    return hashlib.sha256(plan_canonical_json(doc).encode("utf-8")).hexdigest()
