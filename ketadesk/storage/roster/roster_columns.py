"""The roster's clinical columns and filters: review status, protocol status, next check-in due,
open safety alerts (PHQ-9 item 9, home-dose breaches); filters "Review stale", "Check-in
overdue", "Safety alert open".

Call ``install_roster_columns()`` once before querying the roster (the roster table model and
the ``roster`` command do); it registers everything here with ``roster_query``'s hooks.
Nothing is registered at import.

Protocol status and safety alerts are plain SQL subqueries. Review status and the next
check-in come from the per-connection table that ``roster_status`` keeps.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    exists,
    func,
    literal,
    null,
    select,
    union,
)
from sqlalchemy.orm import Session

from ketadesk.models.outcomes import DoseBreachAlert, QuestionnaireResponse, SafetyAlertAck
from ketadesk.models.patients import Patient
from ketadesk.models.protocols import PatientProtocol, ProtocolVersion
from ketadesk.storage.roster import roster_query
from ketadesk.storage.roster.roster_status import (
    prepare_roster_status,
    status_meta,
    status_rows,
)

REVIEW_STATUS = "review_status"
PROTOCOL_STATUS = "protocol_status"
NEXT_CHECKIN_DUE = "next_checkin_due"
OVERDUE_DAYS = "overdue_days"
SAFETY_ALERT = "safety_alert"
STATUS_PENDING = "status_pending"  # 1 while review and check-in columns are being computed

REVIEW_STALE = "review_stale"
CHECKIN_OVERDUE = "checkin_overdue"
SAFETY_ALERT_OPEN = "safety_alert_open"

REVIEW_STATES = ("none", "current", "stale")
PROTOCOL_STATES = ("none", "draft", "signed", "discontinued")

# --------------------------------------------------------------------------- SQL expressions


def _status_value(name: str) -> Any:
    rows = status_rows
    return select(rows.c[name]).where(rows.c.patient_id == Patient.id).scalar_subquery()


def review_status_expression() -> ColumnElement[Any]:
    """Return "none" (never signed), "current" or "stale" for each roster row."""
    pending = select(status_meta.c.pending).scalar_subquery()
    return case(
        (pending == 1, null()),
        else_=func.coalesce(_status_value("review_state"), literal("none")),
    )


def _review_sort() -> ColumnElement[Any]:
    # Stale first when ascending: it needs attention.
    return case({"stale": 0, "none": 1, "current": 2}, value=review_status_expression(), else_=3)


def protocol_status_expression() -> ColumnElement[Any]:
    """Return "signed" (an active protocol has a signed version), "draft" (active, nothing signed
    yet), "discontinued" (no active protocol, a discontinued one) or "none"."""
    active = and_(PatientProtocol.patient_id == Patient.id, PatientProtocol.status == "active")
    signed = exists(
        select(ProtocolVersion.id)
        .join(PatientProtocol, ProtocolVersion.protocol_id == PatientProtocol.id)
        .where(active, ProtocolVersion.status == "signed")
    )
    discontinued = exists(
        select(PatientProtocol.id).where(
            PatientProtocol.patient_id == Patient.id, PatientProtocol.status == "discontinued"
        )
    )
    return case(
        (signed, literal("signed")),
        (exists(select(PatientProtocol.id).where(active)), literal("draft")),
        (discontinued, literal("discontinued")),
        else_=literal("none"),
    )


def _protocol_sort() -> ColumnElement[Any]:
    return case(
        {"draft": 0, "signed": 1, "discontinued": 2, "none": 3},
        value=protocol_status_expression(),
        else_=4,
    )


def _open_alert_patients() -> Any:
    item9 = (
        select(QuestionnaireResponse.patient_id)
        .outerjoin(SafetyAlertAck, SafetyAlertAck.response_id == QuestionnaireResponse.id)
        .where(QuestionnaireResponse.safety_alert.is_(True), SafetyAlertAck.id.is_(None))
    )
    dose_breach = select(DoseBreachAlert.patient_id).where(
        DoseBreachAlert.acknowledged_at.is_(None)
    )
    return union(item9, dose_breach)


def safety_alert_expression() -> ColumnElement[Any]:
    """1 when the patient has an open safety alert (an unacknowledged PHQ-9 item-9 answer or
    an unacknowledged home-dose breach), else 0."""
    return case((Patient.id.in_(_open_alert_patients()), literal(1)), else_=literal(0))


def _safety_sort() -> ColumnElement[Any]:
    # Open alerts first when ascending.
    return 1 - safety_alert_expression()


def _next_due_sort() -> ColumnElement[Any]:
    # Patients not being monitored go last whichever way is "ascending" for dates.
    return func.coalesce(_status_value("next_due"), literal("9999-12-31"))


def _prepare(session: Session) -> None:
    prepare_roster_status(session)


# --------------------------------------------------------------------------- registration

COLUMNS: tuple[roster_query.RosterColumn, ...] = (
    roster_query.RosterColumn(
        SAFETY_ALERT,
        "Safety",
        safety_alert_expression,
        sort_expression=_safety_sort,
    ),
    roster_query.RosterColumn(
        REVIEW_STATUS,
        "Interaction review",
        review_status_expression,
        sort_expression=_review_sort,
        prepare=_prepare,
    ),
    roster_query.RosterColumn(
        PROTOCOL_STATUS,
        "Protocol",
        protocol_status_expression,
        sort_expression=_protocol_sort,
    ),
    roster_query.RosterColumn(
        NEXT_CHECKIN_DUE,
        "Next check-in",
        lambda: _status_value("next_due"),
        sort_expression=_next_due_sort,
        prepare=_prepare,
    ),
    roster_query.RosterColumn(
        STATUS_PENDING,
        "Checking",
        lambda: func.coalesce(select(status_meta.c.pending).scalar_subquery(), literal(0)),
        prepare=_prepare,
        visible=False,
    ),
    roster_query.RosterColumn(
        OVERDUE_DAYS,
        "Days overdue",
        lambda: _status_value("overdue_days"),
        prepare=_prepare,
        visible=False,
    ),
)

FILTERS: tuple[roster_query.RosterFilterOption, ...] = (
    roster_query.RosterFilterOption(
        REVIEW_STALE,
        "Review stale",
        lambda: Patient.id.in_(
            select(status_rows.c.patient_id).where(status_rows.c.review_state == "stale")
        ),
        prepare=_prepare,
    ),
    roster_query.RosterFilterOption(
        CHECKIN_OVERDUE,
        "Check-in overdue",
        lambda: Patient.id.in_(
            select(status_rows.c.patient_id).where(status_rows.c.overdue_days > 0)
        ),
        prepare=_prepare,
    ),
    roster_query.RosterFilterOption(
        SAFETY_ALERT_OPEN,
        "Safety alert open",
        lambda: Patient.id.in_(_open_alert_patients()),
    ),
)


def install_roster_columns() -> None:
    """Register the columns and filters above with ``roster_query`` (idempotent)."""
    for roster_column in COLUMNS:
        roster_query.register_column(roster_column)
    for option in FILTERS:
        roster_query.register_filter(option)
