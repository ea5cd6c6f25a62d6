"""Verifying a printed plan against the practice database.

A plan is genuine when its content hash is one this database recorded for a signed protocol
version (``SignedPlanContent``) and its pages show exactly the document stored under that hash,
so a reprint can be checked even after the chart has changed.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor
from ketadesk.models.patients import Patient
from ketadesk.models.plan_exports import SignedPlanContent
from ketadesk.models.protocols import PatientProtocol, ProtocolVersion
from ketadesk.reports.plan_document import plan_content_hash
from ketadesk.storage.plans.plan_document_builder import practice_database_id
from ketadesk.storage.plans.plan_document_json import plan_document_from_json
from ketadesk.storage.security.audit_log import record_event

_PLAN_ID = re.compile(r"KD-([0-9A-F]{6})-([0-9]+)")


@dataclass(frozen=True)
class VerifyResult:
    """Whether a printed plan is a genuine plan of a signed protocol version.

    ``matches`` needs both: its content hash is one this database recorded for a signed
    version, and its pages show exactly what that version's plan renders to. ``message`` says
    why in words. ``is_current`` is true while that version is still the patient's signed
    version in force.
    """

    matches: bool
    message: str
    plan_id: str | None = None
    version: int | None = None
    content_hash: str | None = None
    patient_id: int | None = None
    mrn: str | None = None
    signed_by: str | None = None
    signed_at: datetime | None = None
    is_current: bool = False


def pdf_needs_password(pdf_bytes: bytes) -> bool:
    """True when the PDF is encrypted (the caller must ask for its password)."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        return bool(PdfReader(io.BytesIO(pdf_bytes)).is_encrypted)
    except (PyPdfError, ValueError, KeyError, OSError):
        return False


def _not_matching(message: str, **known: Any) -> VerifyResult:
    return VerifyResult(matches=False, message=message, **known)


def _verify(
    session: Session, pdf_bytes: bytes, password: str | None
) -> tuple[VerifyResult, int | None]:
    from ketadesk.reports.plan_verify import printed_plan_matches, read_plan_identity

    if pdf_needs_password(pdf_bytes) and not password:
        raise UserFacingError("This plan is password-protected; enter its password.")
    try:
        identity = read_plan_identity(pdf_bytes, password)
    except UserFacingError as error:
        if "password" in error.message:
            raise
        return _not_matching(error.message), None
    known: dict[str, Any] = {
        "plan_id": identity.plan_id,
        "version": identity.version,
        "content_hash": identity.content_hash,
    }
    stored = session.execute(
        select(SignedPlanContent).where(SignedPlanContent.content_hash == identity.content_hash)
    ).scalar_one_or_none()
    if stored is None:
        match = _PLAN_ID.fullmatch(identity.plan_id)
        if match and match.group(1) != practice_database_id(session)[:6].upper():
            why = "This plan was printed from another practice database."
        else:
            why = (
                "This plan's content hash matches no signed protocol version in this practice "
                "database: it was changed, or it was never exported from a signed version."
            )
        return _not_matching(why, **known), None
    version = session.get(ProtocolVersion, stored.protocol_version_id)
    if version is None or version.status != "signed":
        return _not_matching("The protocol version of this plan is not signed.", **known), None
    patient_id = version.protocol.patient_id
    doc = plan_document_from_json(stored.document_json)
    known.update(
        patient_id=patient_id,
        signed_by=version.signed_by_full_name or version.signed_by,
        signed_at=version.signed_at,
        mrn=session.execute(select(Patient.mrn).where(Patient.id == patient_id)).scalar(),
    )
    if doc.plan_id != identity.plan_id or doc.version != identity.version:
        return _not_matching(
            "The plan id or version stored in the file does not agree with its content hash; "
            "the file has been altered.",
            **known,
        ), patient_id
    if plan_content_hash(doc) != stored.content_hash:
        return _not_matching(
            "The stored record of this plan does not match its hash; the database record "
            "has been altered.",
            **known,
        ), patient_id
    if not printed_plan_matches(pdf_bytes, doc, password):
        return _not_matching(
            "The content hash is genuine, but the printed pages differ from the signed plan: "
            "the file has been edited.",
            **known,
        ), patient_id
    current = session.execute(
        select(ProtocolVersion.id)
        .join(PatientProtocol)
        .where(
            PatientProtocol.patient_id == patient_id,
            PatientProtocol.status == "active",
            ProtocolVersion.status == "signed",
        )
        .order_by(ProtocolVersion.signed_at.desc(), ProtocolVersion.number.desc())
        .limit(1)
    ).scalar()
    is_current = current == version.id
    state = "it is the version in force" if is_current else "a newer version or a discontinued "
    if not is_current:
        state += "protocol has replaced it"
    message = f"Matches signed version {doc.version} of plan {doc.plan_id}; {state}."
    return VerifyResult(True, message, is_current=is_current, **known), patient_id


def verify_plan_file(
    session: Session,
    pdf_bytes: bytes,
    password: str | None = None,
    *,
    actor: Actor | None = None,
) -> VerifyResult:
    """Check a printed plan against the database: its content hash must be one recorded for a
    signed protocol version AND its pages must show exactly that plan (``printed_plan_matches``),
    which catches an edited dose under a genuine hash.

    An encrypted plan needs ``password`` (UserFacingError otherwise). With ``actor`` the check
    is audited (plan id, version, result; no names).
    """
    result, patient_id = _verify(session, pdf_bytes, password)
    if actor is not None:
        record_event(
            session, actor, audit_actions.PLAN_VERIFIED, patient_id=patient_id,
            detail=(
                f"plan {result.plan_id or '?'} version {result.version or '?'}; "
                f"{'matches' if result.matches else 'does not match'}"
            )[:200],
        )
    return result
