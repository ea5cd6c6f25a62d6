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
    RECOVERY_ROLE,
    RECOVERY_SIGNER,
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
    is_recovery = (
        isinstance(signer, Signer)
        and actor == (RECOVERY_SIGNER, RECOVERY_ROLE)
        and signer.user_name == RECOVERY_SIGNER
    )
    if not is_recovery and not (
        isinstance(signer, Signer) and isinstance(actor, Actor)
        and signer.user_name == actor.user_name
    ):
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


@dataclass(frozen=True)
class SignatureKeys:
    """What checking events' signatures needs, as plain data (it crosses a process pipe):
    the practice's id and every validly granted signer's keys (current first)."""

    database_id: str
    keys: dict[str, tuple[str, ...]]


class EventSignatureCheck:
    """Checks one event's signature at a time, in seq order (rows streamed from anywhere)."""

    def __init__(self, keys: SignatureKeys, *, signing_started: bool = False) -> None:
        self._keys = keys
        self.counts: Counter[str] = Counter()
        self.problems: list[tuple[int, str]] = []
        self.legacy = 0
        # Once one signed event is seen, an unsigned one after it was written outside KetaDesk.
        self._seen_signed = signing_started

    def check(
        self,
        seq: int,
        user_name: str,
        role: str,
        action: str,
        row_hash: str,
        signed_by: str | None,
        signature: str | None,
    ) -> None:
        problem = self._problem(seq, user_name, role, action, row_hash, signed_by, signature)
        if problem is not None:
            self.problems.append((seq, problem))

    def _problem(
        self,
        seq: int,
        user_name: str,
        role: str,
        action: str,
        row_hash: str,
        signed_by: str | None,
        signature: str | None,
    ) -> str | None:
        if not signed_by or not signature:
            if self._seen_signed:
                return "it is not signed (written outside KetaDesk)"
            self.legacy += 1
            return None
        self._seen_signed = True
        candidates = self._keys.keys.get(signed_by, ())
        if not candidates:
            return (
                f"it is signed by {signed_by}, who holds no key granted by a user who "
                "manages users"
            )
        message = audit_event_message(
            self._keys.database_id, seq=seq, row_hash=row_hash, signed_by=signed_by
        )
        if not any(signature_is_valid(key, message, signature) for key in candidates):
            return (
                f"its signature does not verify against {signed_by}'s granted key (the "
                "event or an earlier one was rewritten)"
            )
        if signed_by == SYSTEM_SIGNER:
            if role not in ("system", "unknown") and action not in PRACTICE_SIGNED_ACTIONS:
                return f"it names {user_name} but only the practice key signed it"
        elif signed_by != user_name:
            return f"it names {user_name} but was signed by {signed_by}"
        elif signed_by == RECOVERY_SIGNER and action != audit_actions.RECOVERY_KEY_USED:
            return "the recovery key signed it, but it signs only its own use"
        self.counts[signed_by] += 1
        return None

    def report(self) -> SignatureReport:
        return SignatureReport(dict(self.counts), self.legacy, tuple(self.problems))


def signature_keys(session: Session, check: GrantCheck) -> SignatureKeys:
    return SignatureKeys(_database_id(session), check.verifying_keys())


def check_event_signatures(
    session: Session, check: GrantCheck, after_seq: int | None = None
) -> SignatureReport:
    """Check every event's signature (or only those after event ``after_seq``) against its
    signer's granted key(s), in seq order."""
    query = select(
        AuditEvent.seq,
        AuditEvent.user_name,
        AuditEvent.role,
        AuditEvent.action,
        AuditEvent.row_hash,
        AuditEvent.signed_by,
        AuditEvent.signature,
    ).order_by(AuditEvent.seq)
    signing_started = False
    if after_seq is not None:
        query = query.where(AuditEvent.seq > after_seq)
        # Signing had begun when the event checked last time was signed: an unsigned event
        # after it is refused, never counted as one from before signing keys.
        signing_started = bool(session.execute(
            select(AuditEvent.signature).where(AuditEvent.seq == after_seq)
        ).scalar_one_or_none())
    checker = EventSignatureCheck(signature_keys(session, check), signing_started=signing_started)
    for row in session.execute(query):
        checker.check(*row)
    return checker.report()
