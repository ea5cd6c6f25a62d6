"""The roster's computed status per patient: whether the signed interaction review is still
current and when the next check-in is due, decided in Python (a fingerprint of the chart against
the knowledge base; the monitoring plan of the protocol in force).

Those answers are kept in a per-database snapshot in memory and copied into a per-connection
TEMP table (``roster_status``, ``status_rows`` here) that ``roster_columns`` sorts and filters on
like any other column.

Keeping the snapshot current is incremental: every write to a chart is audited with its
patient id, so the audit events after the snapshot name the few patients to recompute. Only
the first query, a new day, a new knowledge base, or a practice-wide change (settings,
protocol limits) recomputes everyone, which takes seconds on 50,000 patients. Inside
``deferred_status_computation()`` (the GUI thread uses it) such a full recomputation is not
done; the columns read ``None`` ("checking") until ``warm_roster_status`` has run on a worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Date, Integer, String, column, delete, func, insert, select, table, text
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.models.audit import AuditEvent
from ketadesk.models.interaction_reviews import InteractionReview
from ketadesk.models.outcomes import CheckIn, QuestionnaireResponse, SafetyAlertAck
from ketadesk.models.patients import Patient
from ketadesk.models.protocols import PatientProtocol, ProtocolVersion

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
    audit_actions.ROSTER_LISTED,
    audit_actions.PLANS_EXPORTED,
    audit_actions.PRINT,
    audit_actions.AUDIT_EXPORTED,
    audit_actions.BACKUP_CREATED,
    audit_actions.PLAN_EXPORTED,
    audit_actions.PLAN_DRAFT_PREVIEWED,
    audit_actions.PLAN_VERIFIED,
)

# Writes that change nothing these columns show (no recomputation at all).
_IRRELEVANT_ACTIONS = (
    audit_actions.USER_ADDED,
    audit_actions.USER_REMOVED,
    audit_actions.USER_UPDATED,
    audit_actions.ROLE_CHANGED,
    audit_actions.PASSWORD_CHANGED,
    audit_actions.PASSWORD_RESET,
    audit_actions.RECOVERY_KEY_USED,
    audit_actions.REMEMBER_DEVICE,
    audit_actions.AUDIT_CHECK_FAILED,
    audit_actions.FAILED_ATTEMPTS_REFUSED,
    audit_actions.BACKUP_RESTORED,
    audit_actions.PROTOCOL_TEMPLATE_SAVED,
    audit_actions.PROTOCOL_TEMPLATE_DELETED,
    audit_actions.PROTOCOL_TEMPLATES_IMPORTED,
    # Imported patients are new and in screening: no review, no protocol, not monitored.
    audit_actions.PATIENTS_IMPORTED,
)
_QUIET_ACTIONS = _READ_ONLY_ACTIONS + _IRRELEVANT_ACTIONS

_STATUS_TABLE = "roster_status"
_META_TABLE = "roster_status_meta"
status_rows = table(
    _STATUS_TABLE,
    column("patient_id", Integer),
    column("review_state", String),
    column("next_due", Date),
    column("overdue_days", Integer),
    schema="temp",
)
status_meta = table(
    _META_TABLE,
    column("snapshot_id", Integer),
    column("last_event_id", Integer),
    column("pending", Integer),
    schema="temp",
)


@dataclass(frozen=True)
class PatientStatus:
    """What the Python-side columns say about one patient (absent = none / not monitored)."""

    review_state: str | None
    next_due: date | None
    overdue_days: int | None


@dataclass
class _Snapshot:
    """Statuses of one database as of audit event ``last_event_id``.

    ``changed_at`` records, per patient recomputed incrementally, the event id that caused it,
    so a connection's TEMP table can be brought up to date row by row.
    """

    snapshot_id: int
    kb_version: str
    today: date
    last_event_id: int
    last_event_hash: str
    table_marks: tuple[int, ...]
    statuses: dict[int, PatientStatus]
    changed_at: dict[int, int]


_lock = threading.Lock()  # guards _snapshots and their contents
_snapshots: dict[str, _Snapshot] = {}  # by database identity (its first audit event's hash)
_snapshot_ids = iter(range(1, 1 << 62))
_deferred = threading.local()


def _local_today() -> date:
    return datetime.now(UTC).astimezone().date()


@contextmanager
def deferred_status_computation() -> Iterator[None]:
    """Within this block (on this thread), roster queries never recompute every patient's
    status; if that is needed the columns read ``None`` until ``warm_roster_status`` ran."""
    previous = getattr(_deferred, "active", False)
    _deferred.active = True
    try:
        yield
    finally:
        _deferred.active = previous


def compute_patient_statuses(
    session: Session, today: date, patient_ids: Sequence[int] | None = None
) -> dict[int, PatientStatus]:
    """Review state (patients with a signed review) and next due date (patients in active
    treatment), for ``patient_ids`` or everyone (None), in a handful of queries. Patients with
    neither are left out."""
    from ketadesk.storage.outcomes.monitoring_plans import (
        due_by_patient,
    )
    from ketadesk.storage.reviews.interaction_reviews import review_states_for

    reviewed_query = (
        select(InteractionReview.patient_id).where(InteractionReview.status == "signed").distinct()
    )
    if patient_ids is not None:
        reviewed_query = reviewed_query.where(InteractionReview.patient_id.in_(patient_ids))
    reviewed = list(session.execute(reviewed_query).scalars())
    reviews = review_states_for(session, reviewed) if reviewed else {}
    due = due_by_patient(session, patient_ids, today)
    result: dict[int, PatientStatus] = {}
    for patient_id in set(reviews) | set(due):
        status = due.get(patient_id)
        result[patient_id] = PatientStatus(
            review_state=reviews.get(patient_id),
            next_due=status.next_due if status else None,
            overdue_days=(status.days_overdue if status.is_overdue else 0) if status else None,
        )
    return result


def _database_identity(session: Session) -> str:
    first = session.execute(
        select(AuditEvent.row_hash).order_by(AuditEvent.id).limit(1)
    ).scalar_one_or_none()
    return first or ""


def _last_event(session: Session) -> tuple[int, str]:
    found = session.execute(
        select(AuditEvent.id, AuditEvent.row_hash).order_by(AuditEvent.id.desc()).limit(1)
    ).one_or_none()
    return (0, "") if found is None else (int(found[0]), str(found[1]))


# Highest row id of each table the columns read: bulk writes that bypass the audited services
# (demo data) still show up here, and force a full recomputation.
_MARKED_TABLES = (
    Patient,
    InteractionReview,
    PatientProtocol,
    ProtocolVersion,
    QuestionnaireResponse,
    SafetyAlertAck,
    CheckIn,
)


def _table_marks(session: Session) -> tuple[int, ...]:
    return tuple(
        int(session.execute(select(func.max(model.id))).scalar_one() or 0)
        for model in _MARKED_TABLES
    )


@dataclass(frozen=True)
class _DatabaseState:
    identity: str
    last_event: tuple[int, str]
    marks: tuple[int, ...]
    hash_at_snapshot: str


def _database_state(session: Session, snapshot_event_id: int) -> _DatabaseState:
    """Everything ``_current_snapshot`` needs, in one round trip (it runs at every keystroke)."""
    first = select(AuditEvent.row_hash).order_by(AuditEvent.id).limit(1).scalar_subquery()
    last_id = select(func.max(AuditEvent.id)).scalar_subquery()
    last_hash = (
        select(AuditEvent.row_hash).order_by(AuditEvent.id.desc()).limit(1).scalar_subquery()
    )
    at_snapshot = (
        select(AuditEvent.row_hash).where(AuditEvent.id == snapshot_event_id).scalar_subquery()
    )
    marks = [select(func.max(model.id)).scalar_subquery() for model in _MARKED_TABLES]
    row = session.execute(select(first, last_id, last_hash, at_snapshot, *marks)).one()
    values = tuple(row)
    return _DatabaseState(
        identity=values[0] or "",
        last_event=(int(values[1] or 0), values[2] or ""),
        marks=tuple(int(v or 0) for v in values[4:]),
        hash_at_snapshot=values[3] or "",
    )


def _full_snapshot(session: Session, today: date, kb_version: str) -> _Snapshot:
    event_id, event_hash = _last_event(session)
    marks = _table_marks(session)
    statuses = compute_patient_statuses(session, today)
    return _Snapshot(
        next(_snapshot_ids), kb_version, today, event_id, event_hash, marks, statuses, {}
    )


def _catch_up(
    session: Session, snapshot: _Snapshot, last_event: tuple[int, str], marks: tuple[int, ...]
) -> bool:
    """Recompute the patients written since the snapshot; False if a full one is needed."""
    events = session.execute(
        select(AuditEvent.id, AuditEvent.patient_id)
        .where(AuditEvent.id > snapshot.last_event_id, AuditEvent.action.not_in(_QUIET_ACTIONS))
        .order_by(AuditEvent.id)
    ).all()
    if any(patient_id is None for _, patient_id in events):
        return False  # a practice-wide change (e.g. a default monitoring interval)
    grown = (new - old for new, old in zip(marks, snapshot.table_marks, strict=True))
    if any(rows > len(events) for rows in grown) or (not events and marks != snapshot.table_marks):
        return False  # more rows than audited writes: a bulk write (demo data) bypassed them
    touched: dict[int, int] = {}
    for event_id, patient_id in events:
        if patient_id is not None:
            touched[patient_id] = event_id
    if touched:
        fresh = compute_patient_statuses(session, snapshot.today, sorted(touched))
        for patient_id, event_id in touched.items():
            if patient_id in fresh:
                snapshot.statuses[patient_id] = fresh[patient_id]
            else:
                snapshot.statuses.pop(patient_id, None)
            snapshot.changed_at[patient_id] = event_id
    snapshot.last_event_id, snapshot.last_event_hash = last_event
    snapshot.table_marks = marks
    return True


def _current_snapshot(session: Session, today: date, *, may_compute_all: bool) -> _Snapshot | None:
    """The database's snapshot brought up to date, or None if only a full recomputation would
    do and ``may_compute_all`` is False. The full recomputation runs outside the lock, so a
    worker computing it never blocks the GUI thread's (deferred) queries."""
    identity = _database_identity(session)
    with _lock:
        known = _snapshots.get(identity)
        known_event = known.last_event_id if known is not None else 0
    if known is None and not may_compute_all:
        return None  # nothing to catch up from (and no need to load the knowledge base yet)
    from ketadesk.core.knowledge_base import load_knowledge_base

    kb_version = load_knowledge_base().version
    state = _database_state(session, known_event)
    with _lock:
        snapshot = _snapshots.get(identity)
        # The audit log is a hash chain: the same hash at the snapshot's event means the same
        # history up to it (copies of one database diverge after that point).
        usable = (
            snapshot is not None
            and snapshot.last_event_id == known_event
            and snapshot.kb_version == kb_version
            and snapshot.today == today
            and snapshot.last_event_id <= state.last_event[0]
            and state.hash_at_snapshot == snapshot.last_event_hash
        )
        if usable and snapshot is not None:
            if (
                state.last_event[0] == snapshot.last_event_id
                and state.marks == snapshot.table_marks
            ):
                return snapshot
            if _catch_up(session, snapshot, state.last_event, state.marks):
                return snapshot
    if not may_compute_all:
        return None
    fresh = _full_snapshot(session, today, kb_version)
    with _lock:
        if len(_snapshots) >= 4 and identity not in _snapshots:
            _snapshots.pop(next(iter(_snapshots)))
        _snapshots[identity] = fresh
    return fresh


def _ensure_tables(session: Session) -> None:
    session.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STATUS_TABLE} (patient_id INTEGER PRIMARY KEY, "
            "review_state TEXT, next_due TEXT, overdue_days INTEGER)"
        )
    )
    session.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS {_META_TABLE} "
            "(snapshot_id INTEGER, last_event_id INTEGER, pending INTEGER)"
        )
    )


def _row(patient_id: int, status: PatientStatus) -> dict[str, Any]:
    return {
        "patient_id": patient_id,
        "review_state": status.review_state,
        "next_due": status.next_due,
        "overdue_days": status.overdue_days,
    }


def prepare_roster_status(session: Session, today: date | None = None) -> bool:
    """Make this connection's ``roster_status`` table current; return True if it changed.

    Cheap when nothing changed (three indexed lookups). ``today`` is the local calendar date
    (for due dates). Inside ``deferred_status_computation()`` a needed full recomputation is
    skipped and the table marked pending (``status_pending`` is then True).
    """
    today = today or _local_today()
    _ensure_tables(session)
    may_compute_all = not getattr(_deferred, "active", False)
    snapshot = _current_snapshot(session, today, may_compute_all=may_compute_all)
    with _lock:  # a worker's catch-up must not change the snapshot while it is copied
        return _fill_table(session, snapshot)


def _fill_table(session: Session, snapshot: _Snapshot | None) -> bool:
    stored = session.execute(
        select(status_meta.c.snapshot_id, status_meta.c.last_event_id, status_meta.c.pending)
    ).one_or_none()
    if snapshot is None:
        if stored is not None and stored.pending:
            return False
        session.execute(delete(status_rows))
        session.execute(delete(status_meta))
        session.execute(insert(status_meta).values(snapshot_id=0, last_event_id=0, pending=1))
        return True
    if stored is not None and not stored.pending and stored.snapshot_id == snapshot.snapshot_id:
        if stored.last_event_id == snapshot.last_event_id:
            return False
        changed = [
            pid for pid, event in snapshot.changed_at.items() if event > stored.last_event_id
        ]
        if changed:
            session.execute(delete(status_rows).where(status_rows.c.patient_id.in_(changed)))
            rows = [_row(p, snapshot.statuses[p]) for p in changed if p in snapshot.statuses]
            if rows:
                session.execute(insert(status_rows), rows)
    else:
        session.execute(delete(status_rows))
        if snapshot.statuses:
            rows = [_row(p, st) for p, st in snapshot.statuses.items()]
            session.execute(insert(status_rows), rows)
    session.execute(delete(status_meta))
    session.execute(
        insert(status_meta).values(
            snapshot_id=snapshot.snapshot_id, last_event_id=snapshot.last_event_id, pending=0
        )
    )
    return True


def status_pending(session: Session) -> bool:
    """True while this connection's review and check-in columns await ``warm_roster_status``."""
    _ensure_tables(session)
    return bool(session.execute(select(status_meta.c.pending)).scalar_one_or_none())


WARM_CHUNK = 2000  # patients per short session: other users of the database get turns


def warm_roster_status(
    open_session: Callable[[], AbstractContextManager[Session]],
    today: date | None = None,
    *,
    chunk: int = WARM_CHUNK,
    should_continue: Callable[[], bool] | None = None,
) -> bool:
    """Compute every patient's status if the snapshot is missing or out of date, in short
    sessions of ``chunk`` patients (each session holds the write lock; see ``db.session``).

    Slow on big practices (seconds for 50,000 patients): run it on a worker. Returns False if
    ``should_continue`` said stop (nothing is stored then). Writes made meanwhile are caught
    up, from the audit log, by the next roster query.
    """
    from ketadesk.core.knowledge_base import load_knowledge_base

    today = today or _local_today()
    with open_session() as session:
        if _current_snapshot(session, today, may_compute_all=False) is not None:
            return True
        kb_version = load_knowledge_base().version
        identity = _database_identity(session)
        event_id, event_hash = _last_event(session)
        marks = _table_marks(session)
        ids = list(session.execute(select(Patient.id).order_by(Patient.id)).scalars())
    statuses: dict[int, PatientStatus] = {}
    for start in range(0, len(ids), chunk):
        if should_continue is not None and not should_continue():
            return False
        with open_session() as session:
            statuses.update(compute_patient_statuses(session, today, ids[start : start + chunk]))
    fresh = _Snapshot(
        next(_snapshot_ids), kb_version, today, event_id, event_hash, marks, statuses, {}
    )
    with _lock:
        if len(_snapshots) >= 4 and identity not in _snapshots:
            _snapshots.pop(next(iter(_snapshots)))
        _snapshots[identity] = fresh
    return True
