"""A physician's signature over signed clinical content: the Ed25519 signature of the logged-in
user over the content's SHA-256 hash (a protocol version, a review snapshot, an item-9
acknowledgement), checked against that user's granted key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core.permissions import Actor
from ketadesk.models.compliance import ConsentTemplate, Prescription
from ketadesk.models.interaction_reviews import InteractionReview
from ketadesk.models.outcomes import QuestionnaireResponse
from ketadesk.models.protocols import ProtocolVersion
from ketadesk.models.signing import ContentSignature
from ketadesk.storage.security.audit_signatures import DATABASE_ID_KEY, SIGNER_KEY
from ketadesk.storage.security.grants import GrantCheck
from ketadesk.storage.security.signing_keys import Signer, content_message, signature_is_valid

PROTOCOL_VERSION = "protocol_version"
INTERACTION_REVIEW = "interaction_review"
SAFETY_ALERT_ACK = "safety_alert_ack"
PRESCRIPTION = "prescription"
CONSENT_TEMPLATE = "consent_template"


def content_hash_of(*parts: object) -> str:
    """SHA-256 (hex) over canonical JSON of ``parts``."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sign_content(
    session: Session, actor: Actor, subject_kind: str, subject_id: int, content_hash: str
) -> bool:
    """Sign ``content_hash`` with the logged-in user's key when they are ``actor``; returns
    False (nothing stored) in a database from before signing keys."""
    signer = session.info.get(SIGNER_KEY)
    database_id = session.info.get(DATABASE_ID_KEY)
    if not isinstance(signer, Signer) or signer.user_name != actor.user_name:
        return False
    if not isinstance(database_id, str):
        return False
    message = content_message(
        database_id,
        subject_kind=subject_kind,
        subject_id=subject_id,
        content_hash=content_hash,
        signed_by=signer.user_name,
    )
    session.add(
        ContentSignature(
            subject_kind=subject_kind,
            subject_id=subject_id,
            content_hash=content_hash,
            signed_by=signer.user_name,
            signed_at=datetime.now(UTC),
            signature=signer.sign(message),
        )
    )
    session.flush()
    return True


@dataclass(frozen=True)
class ContentSignatureCheck:
    subject_kind: str
    subject_id: int
    signed_by: str
    is_valid: bool


def review_snapshot_hash(review: InteractionReview) -> str:
    """What a review sign-off signs: the review, its patient and its frozen snapshot."""
    return content_hash_of(
        "interaction_review", review.id, review.patient_id, review.fingerprint, review.snapshot_json
    )


def safety_ack_hash(row: QuestionnaireResponse) -> str:
    """What an item-9 acknowledgement signs: the form, its answers and the acknowledgement."""
    ack = row.acknowledgement
    return content_hash_of(
        "phq9_item9_ack",
        row.id,
        row.patient_id,
        row.taken_on.isoformat(),
        row.answers_json,
        None if ack is None else (ack.acknowledged_by, ack.acknowledged_at.isoformat(), ack.note),
    )


def current_content_hash(session: Session, kind: str, subject_id: int) -> str | None:
    """What a signature of ``kind`` over record ``subject_id`` covers as stored now (None when
    the record is gone)."""
    return _current_hash(session, kind, subject_id)


def prescription_hash(row: Prescription) -> str:
    """What issuing a prescription signs: everything on it but the void fields (voiding with a
    reason is the only change a prescription ever takes)."""
    return content_hash_of(
        "prescription", row.id, row.patient_id, row.protocol_version_id, row.product,
        row.strength_mg_per_unit, row.unit_name, row.quantity, row.directions, row.refills,
        row.pharmacy, row.issued_at.isoformat(), row.issued_on.isoformat(), row.prescriber,
        row.prescriber_dea_number, row.prescriber_licence_number, row.remote,
        row.checklist_json, row.acknowledged_warnings_json,
    )


def consent_template_hash(
    version: int, title: str, paragraphs: list[str], is_example: bool
) -> str:
    """What adding a consent template version signs: its number, title and text."""
    return content_hash_of("consent_template", version, title, paragraphs, is_example)


def _current_hash(session: Session, kind: str, subject_id: int) -> str | None:
    if kind == PROTOCOL_VERSION:
        version = session.get(ProtocolVersion, subject_id)
        return None if version is None else version.content_hash
    if kind == INTERACTION_REVIEW:
        review = session.get(InteractionReview, subject_id)
        return None if review is None else review_snapshot_hash(review)
    if kind == SAFETY_ALERT_ACK:
        response = session.get(QuestionnaireResponse, subject_id)
        return None if response is None else safety_ack_hash(response)
    if kind == PRESCRIPTION:
        prescription = session.get(Prescription, subject_id)
        return None if prescription is None else prescription_hash(prescription)
    if kind == CONSENT_TEMPLATE:
        template = session.get(ConsentTemplate, subject_id)
        return None if template is None else consent_template_hash(
            template.version, template.title, json.loads(template.paragraphs_json),
            template.is_example,
        )
    return None


def check_content_signatures(
    session: Session, database_id: str, grants: GrantCheck
) -> list[ContentSignatureCheck]:
    """Each stored signature, valid when it verifies with the signer's granted key and still
    covers the content as it is stored now (a deleted record counts as changed)."""
    keys = grants.verifying_keys()
    results = []
    for row in session.execute(select(ContentSignature).order_by(ContentSignature.id)).scalars():
        message = content_message(
            database_id,
            subject_kind=row.subject_kind,
            subject_id=row.subject_id,
            content_hash=row.content_hash,
            signed_by=row.signed_by,
        )
        verifies = any(
            signature_is_valid(k, message, row.signature) for k in keys.get(row.signed_by, ())
        )
        current = _current_hash(session, row.subject_kind, row.subject_id)
        results.append(
            ContentSignatureCheck(
                row.subject_kind,
                row.subject_id,
                row.signed_by,
                verifies and current == row.content_hash,
            )
        )
    return results
