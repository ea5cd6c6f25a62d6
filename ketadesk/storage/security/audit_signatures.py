"""Signatures on audit events: who signed each one, and which signatures fail.

The hash chain shows that events were removed or changed; the signatures show who could have
written them. Re-computing the chain after deleting someone else's event breaks the signatures
of every later event, which only their signers could have re-made.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.permissions import Actor
from ketadesk.models.audit import AuditEvent
from ketadesk.models.practice import PracticeMeta
from ketadesk.storage.security.grants import GrantCheck, practice_signer
from ketadesk.storage.security.signing_keys import (
    SYSTEM_SIGNER,
    Signer,
    audit_event_message,
    signature_is_valid,
)

SIGNER_KEY = "audit_signer"
DATABASE_ID_KEY = "database_id"
# Events the practice key may sign on a person's behalf: nobody was logged in to sign them.
PRACTICE_SIGNED_ACTIONS = frozenset({audit_actions.LOGIN_FAILED})
PROBLEMS_SHOWN = 20


def _database_id(session: Session) -> str:
    known = session.info.get(DATABASE_ID_KEY)
    if isinstance(known, str):
        return known
    row = session.get(PracticeMeta, "database_id")
    return "" if row is None else row.value


def sign_event(session: Session, row: AuditEvent, actor: Actor | tuple[str, str]) -> None:
    signer = session.info.get(SIGNER_KEY)
    if not (isinstance(signer, Signer) and isinstance(actor, Actor)
            and signer.user_name == actor.user_name):
        signer = practice_signer(session)
    if signer is None:
        return  # a database from before signing keys, until its first physician logs in
    row.signed_by = signer.user_name
    row.signature = signer.sign(
        audit_event_message(
            _database_id(session), seq=row.seq, row_hash=row.row_hash, signed_by=signer.user_name
        )
    )


@dataclass(frozen=True)
class SignatureReport:
    """Who signed how many events, events from before signing keys, and named problems."""

    signed_by: dict[str, int] = field(default_factory=dict)
    unsigned_before_signing: int = 0
    problems: tuple[tuple[int, str], ...] = ()

    @property
    def is_valid(self) -> bool:
        return not self.problems

    def describe(self) -> list[str]:
        lines = [
            f"signed by {name}: {count} events"
            for name, count in sorted(self.signed_by.items())
        ]
        if self.unsigned_before_signing:
            lines.append(
                f"{self.unsigned_before_signing} older events were written before signing keys "
                "(not signed)"
            )
        lines.extend(f"event {seq}: {problem}" for seq, problem in self.problems[:PROBLEMS_SHOWN])
        if len(self.problems) > PROBLEMS_SHOWN:
            lines.append(f"... and {len(self.problems) - PROBLEMS_SHOWN} more events")
        return lines


LOGIN_CHECKED_EVENTS = 2000


def check_event_signatures(
    session: Session, check: GrantCheck, newest: int | None = None
) -> SignatureReport:
    """Check every event's signature (or only the ``newest`` ones) against its signer's
    granted key(s), in seq order."""
    database_id = _database_id(session)
    keys = check.verifying_keys()
    counts: Counter[str] = Counter()
    problems: list[tuple[int, str]] = []
    legacy = 0
    seen_signed = False
    query = select(
        AuditEvent.seq,
        AuditEvent.user_name,
        AuditEvent.role,
        AuditEvent.action,
        AuditEvent.row_hash,
        AuditEvent.signed_by,
        AuditEvent.signature,
    ).order_by(AuditEvent.seq)
    if newest is not None:
        top = session.execute(
            select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)
        ).scalar_one_or_none()
        query = query.where(AuditEvent.seq > (top or 0) - newest)
    rows = session.execute(query)
    for seq, user_name, role, action, row_hash, signed_by, signature in rows:
        if not signed_by or not signature:
            if seen_signed:
                problems.append((seq, "it is not signed (written outside KetaDesk)"))
            else:
                legacy += 1
            continue
        seen_signed = True
        message = audit_event_message(
            database_id, seq=seq, row_hash=row_hash, signed_by=signed_by
        )
        candidates = keys.get(signed_by, ())
        if not candidates:
            problems.append(
                (seq, f"it is signed by {signed_by}, who holds no key granted by a user who "
                 "manages users")
            )
            continue
        if not any(signature_is_valid(key, message, signature) for key in candidates):
            problems.append(
                (seq, f"its signature does not verify against {signed_by}'s granted key (the "
                 "event or an earlier one was rewritten)")
            )
            continue
        if signed_by == SYSTEM_SIGNER:
            if role not in ("system", "unknown") and action not in PRACTICE_SIGNED_ACTIONS:
                problems.append(
                    (seq, f"it names {user_name} but only the practice key signed it")
                )
                continue
        elif signed_by != user_name:
            problems.append((seq, f"it names {user_name} but was signed by {signed_by}"))
            continue
        counts[signed_by] += 1
    return SignatureReport(dict(counts), legacy, tuple(problems))
