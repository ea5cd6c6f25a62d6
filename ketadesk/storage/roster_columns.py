"""The roster's clinical columns and filters: review status, protocol status, next check-in due,
open PHQ-9 item-9 safety alerts; filters "Review stale", "Check-in overdue", "Safety alert open".

Call ``install_roster_columns()`` once before querying the roster (the roster table model and
the ``roster`` command do); it registers everything here with ``roster_query``'s hooks.
Nothing is registered at import.

Protocol status and safety alerts are plain SQL subqueries. Whether a signed interaction review
is still current, and when the next check-in is due, are decided in Python (a fingerprint of
the chart against the knowledge base; the monitoring plan of the protocol in force), so those
answers are computed for every patient at once and written into a per-connection TEMP table
(``roster_status``) that the roster's SQL sorts and filters on like any other column. The
answers are recomputed only when something was written to the practice database (the last
non-viewing audit event changed), the knowledge base changed, or the date changed; a keystroke
in the search box costs one small audit lookup, not a recomputation.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    String,
    and_,
    case,
    column,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    table,
    text,
)
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.models.audit import AuditEvent
from ketadesk.models.interaction_reviews import InteractionReview
from ketadesk.models.outcomes import QuestionnaireResponse, SafetyAlertAck
from ketadesk.models.patients import Patient
from ketadesk.models.protocols import PatientProtocol, ProtocolVersion
from ketadesk.storage import roster_query

REVIEW_STATUS = "review_status"
PROTOCOL_STATUS = "protocol_status"
NEXT_CHECKIN_DUE = "next_checkin_due"
OVERDUE_DAYS = "overdue_days"
SAFETY_ALERT = "safety_alert"

REVIEW_STALE = "review_stale"
CHECKIN_OVERDUE = "checkin_overdue"
SAFETY_ALERT_OPEN = "safety_alert_open"

REVIEW_STATES = ("none", "current", "stale")
PROTOCOL_STATES = ("none", "draft", "signed", "discontinued")

# Audit actions that only read: they do not change any answer here, so they do not force a
# recomputation (opening a chart is audited as a view).
_READ_ONLY_ACTIONS = (
    audit_actions.LOGIN,
    audit_actions.LOGIN_FAILED,
    audit_actions.LOGOUT,
    audit_actions.LOCK,
    audit_actions.UNLOCK,
    audit_actions.PATIENT_VIEWED,
    audit_actions.EXPORT,
    audit_actions.PRINT,
    audit_actions.AUDIT_EXPORTED,
    audit_actions.BACKUP_CREATED,
    audit_actions.PLAN_EXPORTED,
    audit_actions.PLAN_DRAFT_PREVIEWED,
    audit_actions.PLAN_VERIFIED,
)

_STATUS_TABLE = "roster_status"
_META_TABLE = "roster_status_meta"
_status = table(
    _STATUS_TABLE,
    column("patient_id", Integer),
    column("review_state", String),
    column("next_due", Date),
    column("overdue_days", Integer),
    schema="temp",
)
_meta = table(_META_TABLE, column("signature", String), schema="temp")


@dataclass(frozen=True)
class PatientStatus:
    """What the Python-side columns say about one patient (absent = none / not monitored)."""

    review_state: str | None
    next_due: date | None
    overdue_days: int | None


@dataclass(frozen=True)
class _Snapshot:
    signature: str
    rows: tuple[tuple[int, PatientStatus], ...]


_snapshot_lock = threading.Lock()
_snapshot: _Snapshot | None = None


def _local_today() -> date:
    return datetime.now(UTC).astimezone().date()


def _signature(session: Session, today: date) -> str:
    from ketadesk.core.knowledge_base import load_knowledge_base

    last_write = session.execute(
        select(AuditEvent.row_hash)
        .where(AuditEvent.action.not_in(_READ_ONLY_ACTIONS))
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return f"{last_write or ''}|{load_knowledge_base().version}|{today.isoformat()}"


def compute_patient_statuses(session: Session, today: date) -> dict[int, PatientStatus]:
    """Review state (patients with a signed review) and next due date (patients in active
    treatment) for every patient, in a handful of queries."""
    from ketadesk.storage.interaction_reviews import review_states_for
    from ketadesk.storage.outcomes import due_by_patient

    reviewed: Sequence[int] = list(
        session.execute(
            select(InteractionReview.patient_id)
            .where(InteractionReview.status == "signed")
            .distinct()
        ).scalars()
    )
    reviews = review_states_for(session, reviewed) if reviewed else {}
    due = due_by_patient(session, None, today)
    result: dict[int, PatientStatus] = {}
    for patient_id in set(reviews) | set(due):
        status = due.get(patient_id)
        result[patient_id] = PatientStatus(
            review_state=reviews.get(patient_id),
            next_due=status.next_due if status else None,
            overdue_days=(status.days_overdue if status.is_overdue else 0) if status else None,
        )
    return result


def prepare_roster_status(session: Session, today: date | None = None) -> bool:
    """Make this connection's ``roster_status`` table current; return True if it was rewritten.

    Cheap when nothing changed: one lookup of the last audit event and one of the table's
    signature. ``today`` is the local calendar date (for due dates).
    """
    global _snapshot
    today = today or _local_today()
    session.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STATUS_TABLE} (patient_id INTEGER PRIMARY KEY, "
            "review_state TEXT, next_due TEXT, overdue_days INTEGER)"
        )
    )
    session.execute(text(f"CREATE TEMP TABLE IF NOT EXISTS {_META_TABLE} (signature TEXT)"))
    signature = _signature(session, today)
    stored = session.execute(select(_meta.c.signature)).scalar_one_or_none()
    if stored == signature:
        return False
    with _snapshot_lock:
        snapshot = _snapshot
        if snapshot is None or snapshot.signature != signature:
            statuses = compute_patient_statuses(session, today)
            snapshot = _Snapshot(signature, tuple(sorted(statuses.items())))
            _snapshot = snapshot
    session.execute(delete(_status))
    session.execute(delete(_meta))
    if snapshot.rows:
        session.execute(
            insert(_status),
            [
                {
                    "patient_id": patient_id,
                    "review_state": status.review_state,
                    "next_due": status.next_due,
                    "overdue_days": status.overdue_days,
                }
                for patient_id, status in snapshot.rows
            ],
        )
    session.execute(insert(_meta).values(signature=signature))
    return True


# --------------------------------------------------------------------------- SQL expressions


def _status_value(name: str) -> Any:
    return select(_status.c[name]).where(_status.c.patient_id == Patient.id).scalar_subquery()


def review_status_expression() -> ColumnElement[Any]:
    """Return "none" (never signed), "current" or "stale" for each roster row."""
    return func.coalesce(_status_value("review_state"), literal("none"))


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
    return (
        select(QuestionnaireResponse.patient_id)
        .outerjoin(SafetyAlertAck, SafetyAlertAck.response_id == QuestionnaireResponse.id)
        .where(QuestionnaireResponse.safety_alert.is_(True), SafetyAlertAck.id.is_(None))
    )


def safety_alert_expression() -> ColumnElement[Any]:
    """1 when the patient has an unacknowledged PHQ-9 item-9 alert, else 0."""
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
            select(_status.c.patient_id).where(_status.c.review_state == "stale")
        ),
        prepare=_prepare,
    ),
    roster_query.RosterFilterOption(
        CHECKIN_OVERDUE,
        "Check-in overdue",
        lambda: Patient.id.in_(select(_status.c.patient_id).where(_status.c.overdue_days > 0)),
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
