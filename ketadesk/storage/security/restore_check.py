"""What restoring a backup over the current database would lose: patients, audit events and
signed documents the backup does not have. Counts only, never a patient's details."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ketadesk.models.audit import AuditEvent
from ketadesk.models.patients import Patient
from ketadesk.models.plan_exports import SignedPlanContent
from ketadesk.models.protocols import ProtocolVersion


@dataclass(frozen=True)
class PracticeContents:
    """Identities of what a practice database holds, for comparing two of them."""

    patient_mrns: frozenset[str]
    last_event_seq: int
    signed_document_hashes: frozenset[str]


@dataclass(frozen=True)
class RestoreLosses:
    patients: int
    audit_events: int
    signed_documents: int

    @property
    def is_empty(self) -> bool:
        return not (self.patients or self.audit_events or self.signed_documents)

    def describe(self) -> str:
        if self.is_empty:
            return "The backup holds everything the current database holds; nothing is lost."
        return (
            "Restoring this backup loses what the current database holds and the backup does "
            f"not: {self.patients} patients, {self.audit_events} audit events, "
            f"{self.signed_documents} signed protocols and printed plans."
        )


def practice_contents(session: Session) -> PracticeContents:
    mrns = frozenset(session.execute(select(Patient.mrn)).scalars())
    last = session.execute(select(func.max(AuditEvent.seq))).scalar_one_or_none() or 0
    protocol_hashes = session.execute(
        select(ProtocolVersion.content_hash).where(ProtocolVersion.status == "signed")
    ).scalars()
    plan_hashes = session.execute(select(SignedPlanContent.content_hash)).scalars()
    return PracticeContents(mrns, int(last), frozenset([*protocol_hashes, *plan_hashes]))


def restore_losses(current: PracticeContents, backup: PracticeContents) -> RestoreLosses:
    """What the current database holds that the backup does not."""
    return RestoreLosses(
        patients=len(current.patient_mrns - backup.patient_mrns),
        audit_events=max(0, current.last_event_seq - backup.last_event_seq),
        signed_documents=len(current.signed_document_hashes - backup.signed_document_hashes),
    )
