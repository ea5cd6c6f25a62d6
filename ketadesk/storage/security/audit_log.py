"""Writing and verifying the audit trail. Rows are only ever inserted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ketadesk.core.audit_chain import (
    GENESIS_HASH,
    AuditRecord,
    ChainVerdict,
    event_hash,
    verify_chain,
)
from ketadesk.core.permissions import Actor
from ketadesk.models.audit import AuditEvent
from ketadesk.storage.security.keyslots import AuditAnchor

DETAIL_MAX = 400


def record_event(
    session: Session,
    actor: Actor | tuple[str, str],
    action: str,
    *,
    patient_id: int | None = None,
    detail: str = "",
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction.

    ``detail`` is a short, non-clinical description (never free clinical text).
    ``actor`` is the logged-in user, or ``(user_name, role)`` for events before log-in.
    """
    user_name, role = (actor.user_name, str(actor.role)) if isinstance(actor, Actor) else actor
    seq, prev_hash, now = _next_in_chain(session)
    occurred_at = (at or now).astimezone(UTC)
    detail = detail[:DETAIL_MAX]
    row = AuditEvent(
        seq=seq,
        occurred_at=occurred_at,
        user_name=user_name,
        role=role,
        patient_id=patient_id,
        action=action,
        detail=detail,
        prev_hash=prev_hash,
        row_hash=event_hash(
            prev_hash, seq, occurred_at, user_name, role, patient_id, action, detail
        ),
    )
    _sign(session, row, actor)
    session.add(row)
    session.flush()
    return row


def _next_in_chain(session: Session) -> tuple[int, str, datetime]:
    """The next event's number, the hash it follows, and the time to record.

    On a practice file the caller's write transaction (``BEGIN IMMEDIATE``) keeps other writers
    out. On a practice server the database hands them out under the chain's own lock, held
    until this transaction ends, and its trigger checks the hash computed here (migration
    0017): two workstations never fork the chain, whatever lock their client takes.
    """
    if session.get_bind().dialect.name == "postgresql":
        seq, prev_hash, now = session.execute(
            text("SELECT next_seq, prev_hash, now_utc FROM ketadesk_audit_next()")
        ).one()
        return int(seq), str(prev_hash), now.replace(tzinfo=UTC)
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.row_hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    if last is None:
        return 1, GENESIS_HASH, datetime.now(UTC)
    return last[0] + 1, last[1], datetime.now(UTC)


def _sign(session: Session, row: AuditEvent, actor: Actor | tuple[str, str]) -> None:
    """Sign the event with the logged-in user's key when they are the actor, otherwise (events
    before log-in, system events) with the practice key; unsigned only before signing keys."""
    from ketadesk.storage.security.audit_signatures import sign_event

    sign_event(session, row, actor)


def _records(session: Session) -> Iterator[AuditRecord]:
    # Storage order (the rowid), not seq order, so reordered rows are caught.
    for row in session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars():
        yield AuditRecord(
            row.seq,
            row.occurred_at,
            row.user_name,
            row.role,
            row.patient_id,
            row.action,
            row.detail,
            row.prev_hash,
            row.row_hash,
        )


def latest_event(session: Session) -> tuple[int, str] | None:
    """(seq, row_hash) of the newest audit event, or None when there is none."""
    row = session.execute(
        select(AuditEvent.seq, AuditEvent.row_hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return None if row is None else (row[0], row[1])


def verify_audit(session: Session, anchor: AuditAnchor | None = None) -> ChainVerdict:
    """Recompute the chain; with ``anchor`` (the newest event when KetaDesk last closed the
    database) also notice when the newest events were removed."""
    verdict = verify_chain(_records(session))
    if not verdict.is_intact or anchor is None:
        return verdict
    stored = session.execute(
        select(AuditEvent.row_hash).where(AuditEvent.seq == anchor.seq)
    ).scalar_one_or_none()
    newest = latest_event(session)
    return anchor_verdict(verdict, anchor, stored, 0 if newest is None else newest[0])


def anchor_verdict(
    verdict: ChainVerdict, anchor: AuditAnchor, stored_hash: str | None, newest_seq: int
) -> ChainVerdict:
    """``verdict`` of an intact walk, checked against the key file's anchor: ``stored_hash`` is
    the row hash now stored for ``anchor.seq`` (None when that event is gone)."""
    if stored_hash is None:
        return ChainVerdict(
            False,
            verdict.event_count,
            newest_seq + 1,
            f"the trail ends at event {newest_seq}, but events up to {anchor.seq} were recorded "
            "when KetaDesk last closed this database (the newest events were removed)",
        )
    if stored_hash != anchor.row_hash:
        return ChainVerdict(
            False,
            verdict.event_count,
            anchor.seq,
            "it differs from the event recorded when KetaDesk last closed this database "
            "(events were removed and others written in their place)",
        )
    return verdict


@dataclass(frozen=True)
class AuditFilter:
    user_name: str | None = None
    patient_id: int | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 5000


@dataclass(frozen=True)
class AuditRow:
    seq: int
    occurred_at: datetime
    user_name: str
    role: str
    patient_id: int | None
    patient_mrn: str | None
    action: str
    detail: str


def find_events(session: Session, wanted: AuditFilter) -> list[AuditRow]:
    """Newest first, at most ``wanted.limit`` rows; with the patient's MRN, never their name."""
    from ketadesk.models.patients import Patient

    query = (
        select(AuditEvent, Patient.mrn)
        .outerjoin(Patient, Patient.id == AuditEvent.patient_id)
        .order_by(AuditEvent.seq.desc())
        .limit(wanted.limit)
    )
    if wanted.user_name:
        query = query.where(AuditEvent.user_name == wanted.user_name)
    if wanted.patient_id is not None:
        query = query.where(AuditEvent.patient_id == wanted.patient_id)
    if wanted.action:
        query = query.where(AuditEvent.action == wanted.action)
    if wanted.since is not None:
        query = query.where(AuditEvent.occurred_at >= wanted.since)
    if wanted.until is not None:
        query = query.where(AuditEvent.occurred_at < wanted.until)
    return [
        AuditRow(e.seq, e.occurred_at, e.user_name, e.role, e.patient_id, mrn, e.action, e.detail)
        for e, mrn in session.execute(query)
    ]


def audit_user_names(session: Session) -> list[str]:
    return list(
        session.execute(
            select(AuditEvent.user_name).distinct().order_by(AuditEvent.user_name)
        ).scalars()
    )


def audit_action_names(session: Session) -> list[str]:
    return list(
        session.execute(select(AuditEvent.action).distinct().order_by(AuditEvent.action)).scalars()
    )
