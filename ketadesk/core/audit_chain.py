"""The audit trail's hash chain: each event's hash covers its content and the previous hash.

Pure functions; the storage layer reads and writes the rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class AuditRecord:
    """One audit event as stored; ``occurred_at`` is an aware UTC datetime."""

    seq: int
    occurred_at: datetime
    user_name: str
    role: str
    patient_id: int | None
    action: str
    detail: str
    prev_hash: str
    row_hash: str


@dataclass(frozen=True)
class ChainVerdict:
    is_intact: bool
    event_count: int
    first_bad_seq: int | None = None
    problem: str = ""

    def describe(self) -> str:
        if self.is_intact:
            return f"audit chain intact ({self.event_count} events)"
        return f"audit chain broken at event {self.first_bad_seq}: {self.problem}"


def event_hash(
    prev_hash: str,
    seq: int,
    occurred_at: datetime,
    user_name: str,
    role: str,
    patient_id: int | None,
    action: str,
    detail: str,
) -> str:
    """SHA-256 (hex) over the previous hash and this event's canonical content."""
    payload = json.dumps(
        [
            prev_hash,
            seq,
            occurred_at.isoformat(timespec="microseconds"),
            user_name,
            role,
            patient_id,
            action,
            detail,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def verify_chain(
    records: Iterable[AuditRecord],
    *,
    after: tuple[int, str] | None = None,
    seq_exists: Callable[[int], bool] | None = None,
) -> ChainVerdict:
    """Walk the events in storage order and name the first altered, removed or reordered one.

    ``after`` = (seq, row_hash) of an event already verified: the walk starts with the event
    after it. With ``seq_exists`` (is there an event with this number anywhere?) the records
    are streamed, one at a time, so memory stays flat however long the trail; without it they
    are read into a list first to tell "reordered" from "removed".
    """
    if seq_exists is None:
        ordered = list(records)
        seen = {r.seq for r in ordered}
        seq_exists = seen.__contains__
        records = ordered
    expected_seq, expected_prev = (1, GENESIS_HASH) if after is None else (after[0] + 1, after[1])
    count = 0
    for count, record in enumerate(records, start=1):
        if record.seq != expected_seq:
            if record.seq < expected_seq or seq_exists(expected_seq):
                problem = f"events are out of order (event {expected_seq} was expected here)"
            else:
                problem = f"event {expected_seq} before it was removed"
            return ChainVerdict(False, count, record.seq, problem)
        if record.prev_hash != expected_prev:
            return ChainVerdict(
                False,
                count,
                record.seq,
                "it does not follow the previous event (reordered or an earlier event was removed)",
            )
        recomputed = event_hash(
            record.prev_hash,
            record.seq,
            record.occurred_at,
            record.user_name,
            record.role,
            record.patient_id,
            record.action,
            record.detail,
        )
        if recomputed != record.row_hash:
            return ChainVerdict(False, count, record.seq, "its content was altered")
        expected_prev = record.row_hash
        expected_seq += 1
    return ChainVerdict(True, count)
