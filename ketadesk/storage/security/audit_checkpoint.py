"""Audit checks that do not grow with the practice's history.

At log-in only the events after the newest *checkpoint* are walked, and only their signatures
checked. A checkpoint is itself an audit event (``audit_verified``): its detail names the last
event verified and that event's hash. It is written when a full walk found the whole chain
intact ("events 1-N intact"), and by a log-in that verified more than ``LOGIN_CHECKPOINT_AFTER``
events after the previous checkpoint ("events K+1-N intact"), so the log-in check stays bounded
even when the practice is always closed before a full walk ends.

How a checkpoint is protected: it always names an event *before* itself (one naming itself or
a later event is refused at log-in), so the checkpoint event is inside the range the next
log-in walks; editing it breaks its hash, re-hashing it breaks its signature (checked at that
log-in), and a checkpoint added by hand has no valid signature. A person with a key of their
own could sign a false checkpoint over rewritten history; that is what the full walk is for.

The full walk runs in the background (``walk_whole_chain``, in a process of its own) on its
own read connection, streaming plain rows in batches: memory stays flat at any length, and no
write lock is held while it reads. It checks the chain from the first event *and every
event's signature*, so what the log-in check leaves out is checked there. What each check
catches: an event altered, removed, reordered or re-signed *after* the checkpoint is named at
log-in; one *before* it is named by the background walk, which raises the same alarm (an
``audit_check_failed`` event and the warning banner).
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import select, union_all
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.audit_chain import AuditRecord, ChainVerdict, verify_chain
from ketadesk.core.permissions import Actor
from ketadesk.models.audit import AuditEvent
from ketadesk.storage.security.audit_log import anchor_verdict, latest_event, record_event
from ketadesk.storage.security.audit_signatures import EventSignatureCheck, SignatureKeys
from ketadesk.storage.security.engine import raw_connection
from ketadesk.storage.security.keyslots import AuditAnchor

BATCH_ROWS = 2000
# A log-in that walked more events than this after the newest checkpoint records one of its own.
LOGIN_CHECKPOINT_AFTER = 500
_CHECKPOINT = re.compile(r"events (\d+)-(\d+) intact; event \2 hash ([0-9a-f]{64})")
# Any time that cannot be read back makes the event's hash differ: "its content was altered".
_UNREADABLE_TIME = datetime(1, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AuditCheckpoint:
    """The newest event verified (by a full walk from ``first`` = 1, or by a log-in from the
    event after the previous checkpoint): its number and its hash. ``recorded_as`` is the
    number of the ``audit_verified`` event that holds it (None until it is recorded)."""

    seq: int
    row_hash: str
    first: int = 1
    recorded_as: int | None = None

    def detail(self) -> str:
        return f"events {self.first}-{self.seq} intact; event {self.seq} hash {self.row_hash}"


@dataclass(frozen=True)
class TailCheck:
    """The log-in check: its verdict, the checkpoint it started from, and the last event it
    walked (a checkpoint to record when the walk was long and intact)."""

    verdict: ChainVerdict
    checkpoint: AuditCheckpoint | None
    through: AuditCheckpoint | None
    walked: int

    def checkpoint_to_record(self) -> AuditCheckpoint | None:
        """A log-in checkpoint when the events after the previous one were many and intact."""
        if (
            self.checkpoint is None
            or self.through is None
            or not self.verdict.is_intact
            or self.walked <= LOGIN_CHECKPOINT_AFTER
        ):
            return None
        return self.through


@dataclass(frozen=True)
class WalkResult:
    verdict: ChainVerdict
    through: AuditCheckpoint | None  # the last event walked when the chain is intact


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    row = session.execute(
        select(AuditEvent.seq, AuditEvent.detail)
        .where(AuditEvent.action == audit_actions.AUDIT_VERIFIED)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    match = None if row is None else _CHECKPOINT.fullmatch(row[1])
    if row is None or match is None:
        return None
    return AuditCheckpoint(int(match[2]), match[3], first=int(match[1]), recorded_as=row[0])


def _record(row: Any, occurred_at: datetime) -> AuditRecord:
    return AuditRecord(
        row[0], occurred_at, row[2], row[3], row[4], row[5], row[6], row[7], row[8]
    )


_COLUMNS = (
    AuditEvent.seq,
    AuditEvent.occurred_at,
    AuditEvent.user_name,
    AuditEvent.role,
    AuditEvent.patient_id,
    AuditEvent.action,
    AuditEvent.detail,
    AuditEvent.prev_hash,
    AuditEvent.row_hash,
)


def verify_since_checkpoint(session: Session, anchor: AuditAnchor | None) -> ChainVerdict:
    """The log-in check's chain part (see ``verify_tail``)."""
    return verify_tail(session, anchor, latest_checkpoint(session)).verdict


def verify_tail(
    session: Session, anchor: AuditAnchor | None, checkpoint: AuditCheckpoint | None
) -> TailCheck:
    """The log-in check: the events after ``checkpoint`` (every event when there is none
    yet), then the key file's anchor. Columns are streamed, never ORM objects."""
    if (
        checkpoint is not None
        and checkpoint.recorded_as is not None
        and checkpoint.seq >= checkpoint.recorded_as
    ):
        return TailCheck(
            ChainVerdict(
                False,
                0,
                checkpoint.recorded_as,
                f"this audit check record names event {checkpoint.seq}, which is not before it "
                "(it was edited or added by hand)",
            ),
            checkpoint,
            None,
            0,
        )
    query: Any = select(*_COLUMNS).order_by(AuditEvent.id)
    if checkpoint is not None:
        checkpoint_row = session.execute(
            select(AuditEvent.id).where(AuditEvent.seq == checkpoint.seq)
        ).scalar_one_or_none()
        later = AuditEvent.seq > checkpoint.seq
        if checkpoint_row is None:  # removed: the walk names it from the next event's link
            query = query.where(later)
        else:
            # Storage order after the checkpoint's row, plus any later event moved before it;
            # two index ranges (an OR of the two would scan the whole table).
            both = union_all(
                select(*_COLUMNS, AuditEvent.id).where(AuditEvent.id > checkpoint_row),
                # "id + 0": walk the seq index, not every row up to the checkpoint
                select(*_COLUMNS, AuditEvent.id).where(later, AuditEvent.id + 0 <= checkpoint_row),
            ).subquery()
            query = select(*(both.c[c.key] for c in _COLUMNS)).order_by(both.c.id)
    rows = session.execute(query.execution_options(yield_per=BATCH_ROWS))

    def seq_exists(seq: int) -> bool:
        found = session.execute(select(AuditEvent.id).where(AuditEvent.seq == seq)).first()
        return found is not None

    last: list[AuditRecord] = []

    def records() -> Iterator[AuditRecord]:
        for row in rows:
            record = _record(row, row[1])
            last[:] = [record]
            yield record

    walked = verify_chain(
        records(),
        after=None if checkpoint is None else (checkpoint.seq, checkpoint.row_hash),
        seq_exists=seq_exists,
    )
    rows.close()
    before = 0 if checkpoint is None else checkpoint.seq
    verdict = ChainVerdict(
        walked.is_intact, before + walked.event_count, walked.first_bad_seq, walked.problem
    )
    through = (
        AuditCheckpoint(last[0].seq, last[0].row_hash, first=before + 1)
        if verdict.is_intact and last
        else None
    )
    if verdict.is_intact and anchor is not None:
        stored = session.execute(
            select(AuditEvent.row_hash).where(AuditEvent.seq == anchor.seq)
        ).scalar_one_or_none()
        newest = latest_event(session)
        verdict = anchor_verdict(verdict, anchor, stored, 0 if newest is None else newest[0])
    return TailCheck(verdict, checkpoint, through if verdict.is_intact else None,
                     walked.event_count)


def _stored_time(value: Any) -> datetime:
    """A stored ``occurred_at`` (SQLite text, as ``UTCDateTime`` writes it) as aware UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC)
    try:
        return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)
    except ValueError:
        return _UNREADABLE_TIME


class WalkStopped(Exception):
    """The database was locked or closed while the walk ran."""


def walk_whole_chain(
    path: Path,
    key: bytes,
    anchor: AuditAnchor | None,
    keep_going: Callable[[], bool] = lambda: True,
    signatures: SignatureKeys | None = None,
) -> WalkResult:
    """Every event from the first, in storage order, on a fresh read connection of its own,
    in batches of ``BATCH_ROWS`` plain rows (run it on a worker thread). With ``signatures``
    every event's signature is checked in the same pass (the first problem is named when the
    chain itself is intact). ``keep_going`` is asked before each batch; when it says no,
    ``WalkStopped`` is raised."""
    connection = raw_connection(path, key)
    signed = None if signatures is None else EventSignatureCheck(signatures)
    try:
        cursor = connection.execute(
            "SELECT seq, occurred_at, user_name, role, patient_id, action, detail, prev_hash, "
            "row_hash, signed_by, signature FROM audit_events ORDER BY id"
        )
        last: list[AuditRecord] = []

        def records() -> Iterator[AuditRecord]:
            while keep_going() and (batch := cursor.fetchmany(BATCH_ROWS)):
                for row in batch:
                    record = _record(row, _stored_time(row[1]))
                    last[:] = [record]
                    if signed is not None:
                        signed.check(row[0], row[2], row[3], row[5], row[8], row[9], row[10])
                    yield record

        def seq_exists(seq: int) -> bool:
            found = connection.execute("SELECT 1 FROM audit_events WHERE seq = ?", (seq,))
            return found.fetchone() is not None

        verdict = verify_chain(records(), seq_exists=seq_exists)
        cursor.close()
        if not keep_going():
            raise WalkStopped
        if verdict.is_intact and signed is not None and signed.problems:
            seq, problem = signed.problems[0]
            more = len(signed.problems) - 1
            verdict = ChainVerdict(
                False,
                verdict.event_count,
                seq,
                problem + (f" ({more} more events with signature problems)" if more else ""),
            )
        if verdict.is_intact and anchor is not None:
            stored = connection.execute(
                "SELECT row_hash FROM audit_events WHERE seq = ?", (anchor.seq,)
            ).fetchone()
            newest = connection.execute("SELECT max(seq) FROM audit_events").fetchone()
            verdict = anchor_verdict(
                verdict, anchor, None if stored is None else stored[0], newest[0] or 0
            )
    finally:
        connection.close()
    through = AuditCheckpoint(last[0].seq, last[0].row_hash) if verdict.is_intact and last else None
    return WalkResult(verdict, through)


def _walk_in_child(
    sender: Connection,
    path: Path,
    key: bytes,
    anchor: AuditAnchor | None,
    signatures: SignatureKeys | None,
) -> None:
    if hasattr(os, "nice"):  # behind the app's own process on a small machine (POSIX)
        os.nice(10)
    try:
        sender.send(("done", walk_whole_chain(path, key, anchor, signatures=signatures)))
    except BaseException as error:  # the parent names it; no row content is ever sent
        sender.send(("failed", type(error).__name__))
    finally:
        sender.close()


def walk_whole_chain_apart(
    path: Path,
    key: bytes,
    anchor: AuditAnchor | None,
    keep_going: Callable[[], bool] = lambda: True,
    signatures: SignatureKeys | None = None,
) -> WalkResult:
    """``walk_whole_chain`` in a process of its own (the key goes through a pipe, never a
    file or the command line): hashing and checking the signatures of every event (seconds,
    or minutes at a million events) never holds this process's GIL, so a GUI thread beside it
    keeps its pace. ``keep_going`` is asked every quarter second; when it says no, the child
    is ended and ``WalkStopped`` raised. Run it on a worker thread."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_walk_in_child,
        args=(sender, path, key, anchor, signatures),
        name="ketadesk-audit-walk",
        daemon=True,  # never outlives the app
    )
    child.start()
    sender.close()
    try:
        while not receiver.poll(0.25):
            if not keep_going():
                raise WalkStopped
            if not child.is_alive() and not receiver.poll(0):
                raise RuntimeError(f"the audit walk ended early (exit code {child.exitcode})")
        outcome, value = receiver.recv()
    finally:
        if child.is_alive():
            child.terminate()
        child.join(5)
        receiver.close()
    if outcome != "done" or not isinstance(value, WalkResult):
        raise RuntimeError(f"the audit walk failed ({value})")
    return value


def record_walk_result(session: Session, actor: Actor, result: WalkResult) -> None:
    """Intact: a new checkpoint. Broken: the same ``audit_check_failed`` event as at log-in."""
    if result.verdict.is_intact:
        if result.through is not None:
            record_event(
                session, actor, audit_actions.AUDIT_VERIFIED, detail=result.through.detail()
            )
        return
    record_event(
        session, actor, audit_actions.AUDIT_CHECK_FAILED, detail=result.verdict.describe()[:200]
    )
