"""The roster's clinical state per patient, stored (``patient_roster_status``) and kept current
in the same transaction as the writes that change it.

Stored per patient: interaction-review state ("none", "current", "stale"), protocol state,
the next check-in date (the chart's, from ``monitoring_plans.due_by_patient``), the soonest due
date of anything in the monitoring plan, and whether a safety alert is open. Patients at the
defaults (never reviewed, no protocol, not monitored, no alert) have no row.

How it stays current:

- ``install_status_tracking()`` (called once per process by the app, the CLI and the tests)
  listens to every ORM session: after each flush it notes which patients the flushed rows
  belong to; just before the commit it works those patients out again and writes their rows,
  so the status commits (or rolls back) with the change. A change to a practice setting (the
  default monitoring cadence) works out everyone again.
- Bulk writes that bypass the ORM (the demo, the CSV import) call ``mark_patients_changed``
  or ``rebuild_roster_status``.
- A new knowledge-base version (it decides which reviews are stale) is noticed by
  ``ensure_roster_status`` the first time a database is queried in a process, which then
  works everyone out again, once; so does a practice opened for the first time after the
  upgrade that added the table.
- "Overdue" depends on the date, not on a write: the stored due date is compared with the
  local date in SQL, so a new day needs no rewrite (the roster view re-queries at midnight).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from weakref import WeakSet

from sqlalchemy import Engine, delete, event, insert, select
from sqlalchemy.orm import Session

from ketadesk.models.audit import AuditEvent
from ketadesk.models.outcomes import SafetyAlertAck
from ketadesk.models.patients import Patient
from ketadesk.models.practice import PracticeSetting
from ketadesk.models.protocols import PatientProtocol, ProtocolVersion
from ketadesk.models.roster_status import PatientRosterStatus, RosterStatusMeta
from ketadesk.storage.security.engine import READ_ONLY_OPTION

_SQL_CHUNK = 900
# Practice settings that change every patient's due dates (the default monitoring cadence).
CADENCE_SETTINGS = frozenset({"default_checkin_every_days", "default_questionnaire_every_weeks"})
_DIRTY = "roster_status_dirty"  # Session.info key: patient ids written in this transaction
_ALL = "roster_status_all"  # Session.info key: a practice-wide change was written


def local_today() -> date:
    """The local calendar date (due dates and "overdue" are local days)."""
    return datetime.now(UTC).astimezone().date()


@dataclass(frozen=True)
class RosterStatus:
    """One patient's clinical roster state (the defaults mean "nothing to show")."""

    review_state: str = "none"
    protocol_state: str = "none"
    next_checkin_due: date | None = None
    next_due: date | None = None
    safety_alert: bool = False

    @property
    def is_default(self) -> bool:
        return self == _DEFAULT

    def overdue_days(self, today: date) -> int:
        """Days since the soonest due date, 0 when nothing is overdue (due today is not)."""
        return max(0, (today - self.next_due).days) if self.next_due else 0


_DEFAULT = RosterStatus()


# --------------------------------------------------------------------------- from scratch


def compute_roster_statuses(
    session: Session, patient_ids: Sequence[int] | None = None
) -> dict[int, RosterStatus]:
    """Work out every column from the chart, for ``patient_ids`` (None = every patient).

    Patients at the defaults are left out. Seconds for 50,000 patients; a handful of queries
    for a few.
    """
    from ketadesk.core.knowledge_base import load_knowledge_base
    from ketadesk.models.interaction_reviews import InteractionReview
    from ketadesk.storage.outcomes.monitoring_plans import due_by_patient
    from ketadesk.storage.reviews.interaction_review_status import review_states_for
    from ketadesk.storage.roster.roster_columns import (
        protocol_status_expression,
        safety_alert_expression,
    )

    kb = load_knowledge_base()
    reviewed_query = (
        select(InteractionReview.patient_id).where(InteractionReview.status == "signed").distinct()
    )
    flagged_query = select(
        Patient.id, protocol_status_expression(), safety_alert_expression()
    ).where(
        (protocol_status_expression() != "none") | (safety_alert_expression() == 1)
    )
    reviewed: list[int] = []
    flagged: dict[int, tuple[str, bool]] = {}
    for chunk in _chunks(patient_ids):
        r_query, f_query = reviewed_query, flagged_query
        if chunk is not None:
            r_query = r_query.where(InteractionReview.patient_id.in_(chunk))
            f_query = f_query.where(Patient.id.in_(chunk))
        reviewed.extend(session.execute(r_query).scalars())
        for patient_id, protocol, alert in session.execute(f_query):
            flagged[patient_id] = (str(protocol), bool(alert))
    reviews = review_states_for(session, reviewed, kb) if reviewed else {}
    due = due_by_patient(session, patient_ids, local_today())
    result: dict[int, RosterStatus] = {}
    for patient_id in set(reviews) | set(due) | set(flagged):
        status = due.get(patient_id)
        protocol, alert = flagged.get(patient_id, ("none", False))
        found = RosterStatus(
            review_state=reviews.get(patient_id, "none"),
            protocol_state=protocol,
            next_checkin_due=status.next_checkin_due if status else None,
            next_due=status.next_due if status else None,
            safety_alert=alert,
        )
        if not found.is_default:
            result[patient_id] = found
    return result


def _chunks(ids: Sequence[int] | None) -> Iterable[Sequence[int] | None]:
    if ids is None:
        yield None
        return
    for start in range(0, len(ids), _SQL_CHUNK):
        yield ids[start : start + _SQL_CHUNK]


# --------------------------------------------------------------------------- stored


def stored_roster_statuses(
    session: Session, patient_ids: Sequence[int] | None = None
) -> dict[int, RosterStatus]:
    """The stored rows (patients at the defaults are absent)."""
    t = PatientRosterStatus
    query = select(
        t.patient_id, t.review_state, t.protocol_state, t.next_checkin_due, t.next_due,
        t.safety_alert,
    )  # fmt: skip
    result: dict[int, RosterStatus] = {}
    for chunk in _chunks(patient_ids):
        q = query if chunk is None else query.where(t.patient_id.in_(chunk))
        for pid, review, protocol, checkin, due, alert in session.execute(q):
            result[pid] = RosterStatus(review, protocol, checkin, due, bool(alert))
    return result


def _rows(statuses: dict[int, RosterStatus]) -> list[dict[str, Any]]:
    return [
        {
            "patient_id": pid,
            "review_state": s.review_state,
            "protocol_state": s.protocol_state,
            "next_checkin_due": s.next_checkin_due,
            "next_due": s.next_due,
            "safety_alert": s.safety_alert,
        }
        for pid, s in statuses.items()
    ]


def refresh_roster_status(session: Session, patient_ids: Iterable[int]) -> None:
    """Work out and store the roster state of these patients (in the caller's transaction)."""
    ids = sorted(set(patient_ids))
    if not ids:
        return
    fresh = compute_roster_statuses(session, ids)
    for chunk in _chunks(ids):
        assert chunk is not None
        session.execute(
            delete(PatientRosterStatus).where(PatientRosterStatus.patient_id.in_(chunk))
        )
    if fresh:
        session.execute(insert(PatientRosterStatus), _rows(fresh))


def rebuild_roster_status(session: Session) -> None:
    """Work out and store every patient's roster state, and the knowledge-base version used
    (seconds for 50,000 patients: the demo, the import and a knowledge-base change do it)."""
    from ketadesk.core.knowledge_base import load_knowledge_base

    fresh = compute_roster_statuses(session)
    session.execute(delete(PatientRosterStatus))
    if fresh:
        session.execute(insert(PatientRosterStatus), _rows(fresh))
    session.execute(delete(RosterStatusMeta))
    session.execute(insert(RosterStatusMeta).values(id=1, kb_version=load_knowledge_base().version))
    session.info.pop(_DIRTY, None)
    session.info.pop(_ALL, None)


_checked_engines: WeakSet[Engine] = WeakSet()
_checked_lock = threading.Lock()


def ensure_roster_status(session: Session) -> bool:
    """Once per database engine: rebuild the stored states if they were made with another
    knowledge-base version or never made (a practice upgraded from before the table).
    Returns True if it rebuilt them."""
    engine = session.get_bind().engine
    with _checked_lock:
        if engine in _checked_engines:
            return False
    from ketadesk.core.knowledge_base import load_knowledge_base

    stored = session.execute(select(RosterStatusMeta.kb_version)).scalar_one_or_none()
    rebuilt = stored != load_knowledge_base().version
    if rebuilt:
        require_writable(session, "work out the roster's stored statuses")
        rebuild_roster_status(session)
    with _checked_lock:
        _checked_engines.add(engine)
    return rebuilt


def require_writable(session: Session, what: str) -> None:
    """Raise RuntimeError in a read-only session (``PracticeDatabase.read_session``): what it
    writes is rolled back. A programming error: call ``roster_query.prepare_roster`` first."""
    if session.connection().get_execution_options().get(READ_ONLY_OPTION):
        raise RuntimeError(f"cannot {what} in a read-only session; prepare the roster first")


def forget_checked_engines() -> None:
    """Make the next ``ensure_roster_status`` look again (tests that change the KB version)."""
    with _checked_lock:
        _checked_engines.clear()


# --------------------------------------------------------------------------- tracking


def mark_patients_changed(session: Session, patient_ids: Iterable[int]) -> None:
    """Note patients written without the ORM (bulk inserts): their state is worked out again
    before this transaction commits."""
    session.info.setdefault(_DIRTY, set()).update(patient_ids)


# Rows whose patient is found through another row.
def _patients_of(session: Session, obj: object) -> set[int] | None:
    """The patient ids a flushed row belongs to; None for "everyone" (practice-wide)."""
    if isinstance(obj, AuditEvent):
        return set()  # audit events change nothing shown; chart views are audited too
    if isinstance(obj, PracticeSetting):
        return None if obj.key in CADENCE_SETTINGS else set()
    if isinstance(obj, Patient):
        return {obj.id}
    patient_id = getattr(obj, "patient_id", None)
    if isinstance(patient_id, int):
        return {patient_id}
    if isinstance(obj, ProtocolVersion):
        found = session.execute(
            select(PatientProtocol.patient_id).where(PatientProtocol.id == obj.protocol_id)
        ).scalar_one_or_none()
        return {found} if found is not None else set()
    if isinstance(obj, SafetyAlertAck):
        from ketadesk.models.outcomes import QuestionnaireResponse

        found = session.execute(
            select(QuestionnaireResponse.patient_id).where(
                QuestionnaireResponse.id == obj.response_id
            )
        ).scalar_one_or_none()
        return {found} if found is not None else set()
    response = getattr(obj, "response", None) or getattr(obj, "checkin", None)
    owner = getattr(response, "patient_id", None)
    return {owner} if isinstance(owner, int) else set()


def _after_flush(session: Session, _context: Any) -> None:
    if session.info.get(_ALL):
        return
    dirty: set[int] = session.info.setdefault(_DIRTY, set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, PatientRosterStatus | RosterStatusMeta):
            continue
        if obj in session.dirty and not session.is_modified(obj, include_collections=False):
            continue
        owners = _patients_of(session, obj)
        if owners is None:
            session.info[_ALL] = True
            return
        dirty.update(owners)


def _before_commit(session: Session) -> None:
    session.flush()  # rows still pending belong in the state worked out now
    if not (session.info.get(_DIRTY) or session.info.get(_ALL)):
        return
    everyone = session.info.pop(_ALL, False)
    dirty = session.info.pop(_DIRTY, set())
    if everyone:
        rebuild_roster_status(session)
    else:
        refresh_roster_status(session, dirty)
    session.info.pop(_DIRTY, None)


def _after_rollback(session: Session) -> None:
    session.info.pop(_DIRTY, None)
    session.info.pop(_ALL, None)


_installed: list[bool] = []


def install_status_tracking() -> None:
    """Keep ``patient_roster_status`` current from every ORM session in this process
    (idempotent; the app, the CLI and the test set-up call it at start)."""
    if _installed:
        return
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "before_commit", _before_commit)
    event.listen(Session, "after_soft_rollback", lambda s, _t: _after_rollback(s))
    _installed.append(True)
