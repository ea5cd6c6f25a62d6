"""Ketamine prescriptions: the checklist before issuing, issuing from the signed protocol
version (product, strength and directions come from the protocol's sig), voiding with a
reason, and the fills (first fill and refills) the pharmacy dispensed.

Rules kept here (not in the UI):

* Only physicians issue and void; a prescription is never edited once issued.
* Issuing needs no checklist error and an acknowledgement of every warning; the warnings
  acknowledged are stored with the prescription and audited (codes only).
* The issuing physician signs the prescription's content (``content_signatures``).
* A refused attempt is audited too (the codes of the failed checks only), in its own
  transaction, by :func:`issue_prescription_recording_refusal`.
* A fill is refused after the last refill or after the refill window (21 CFR 1306.22).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.compliance_rules import (
    ComplianceRules,
    NjKetamineLookup,
    last_fill_day,
    load_compliance_rules,
)
from ketadesk.core.errors import UserFacingError
from ketadesk.core.permissions import Actor, Permission, require
from ketadesk.core.prescription_checks import (
    ChecklistInputs,
    CheckResult,
    ConsentFact,
    CredentialFact,
    CredentialKind,
    PdmpFact,
    TelemedicineFact,
    blocking_checks,
    blocking_reasons,
    errors_of,
    prescription_checklist,
    warnings_of,
)
from ketadesk.core.protocols import sig_text
from ketadesk.models.compliance import Prescription, PrescriptionFill
from ketadesk.storage.compliance.compliance_input import (
    clean_text,
    past_day,
    past_moment,
    require_patient,
)
from ketadesk.storage.compliance.compliance_records import (
    PrescriptionInfo,
    checklist_json_text,
    prescription_info,
)
from ketadesk.storage.compliance.consent import current_consent_template, latest_consent
from ketadesk.storage.compliance.credentials import credentials_of
from ketadesk.storage.compliance.pdmp_checks import pdmp_checks_of
from ketadesk.storage.compliance.telemedicine import telemedicine_records
from ketadesk.storage.practice.settings_store import get_setting
from ketadesk.storage.protocols.protocol_versions import (
    ProtocolVersionInfo,
    active_signed_protocol,
)
from ketadesk.storage.reviews.interaction_review_status import review_status
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.content_signatures import (
    PRESCRIPTION,
    prescription_hash,
    sign_content,
)

PHARMACY_MAX = 300
VOID_REASON_MAX = 2000


@dataclass(frozen=True)
class PrescriptionRequest:
    """What the physician asks for: quantity in units, refills, the pharmacy, whether the
    visit was remote, and whether they suspect misuse (New Jersey's look-up rule).

    ``issue_at`` is None for "now" (what a screen passes). A past time records a prescription
    written earlier (the demo uses it); it is checked against the records as they are now.
    """

    quantity: float
    refills: int
    pharmacy: str = ""
    remote: bool = False
    misuse_concern: bool = False
    issue_at: datetime | None = None


@dataclass(frozen=True)
class PrescriptionChecklist:
    """The checklist for one prescription and the signed protocol version it follows."""

    patient_id: int
    issue_at: datetime
    issue_on: date  # the practice's calendar day of issue
    results: tuple[CheckResult, ...]
    protocol: ProtocolVersionInfo | None

    @property
    def errors(self) -> tuple[CheckResult, ...]:
        return errors_of(self.results)

    @property
    def warnings(self) -> tuple[CheckResult, ...]:
        return warnings_of(self.results)

    def blockers(self, acknowledged: Iterable[str] = ()) -> list[str]:
        """One sentence per failed check (errors, and warnings not acknowledged)."""
        return blocking_reasons(self.results, acknowledged)


class PrescriptionRefused(UserFacingError):
    """Issuing was refused; ``reasons`` names every failed check (a sentence each) and
    ``codes`` their check codes, in the same order."""

    def __init__(self, reasons: list[str], codes: list[str]) -> None:
        super().__init__(
            "The prescription was not issued: " + "; ".join(reasons), exit_code=4
        )
        self.reasons = reasons
        self.codes = codes


def nj_lookup_setting(session: Session) -> NjKetamineLookup:
    return NjKetamineLookup(str(get_setting(session, "nj_ketamine_pdmp_lookup")))


def _issued_rows(session: Session, patient_id: int) -> list[Prescription]:
    return list(
        session.execute(
            select(Prescription)
            .where(Prescription.patient_id == patient_id)
            .order_by(Prescription.issued_at, Prescription.id)
        ).scalars()
    )


def prescription_checklist_for(
    session: Session,
    actor: Actor,
    patient_id: int,
    request: PrescriptionRequest,
    *,
    rules: ComplianceRules | None = None,
) -> PrescriptionChecklist:
    """Gather the chart's facts and run every check for ``actor`` prescribing ``request``."""
    rules = rules or load_compliance_rules()
    patient = require_patient(session, patient_id)
    issue_at = past_moment(request.issue_at, "The time of issue")
    protocol = active_signed_protocol(session, patient_id)
    consent = latest_consent(session, patient_id)
    current = current_consent_template(session)
    previous = [r.issued_at for r in _issued_rows(session, patient_id) if r.status == "issued"]
    inputs = ChecklistInputs(
        patient_state=patient.state,
        patient_dob=patient.dob,
        issue_at=issue_at,
        issue_on=issue_at.astimezone().date(),
        quantity=request.quantity,
        refills=request.refills,
        remote=request.remote,
        protocol_signed=protocol is not None,
        review_state=review_status(session, patient_id).state,
        credentials=tuple(
            CredentialFact(c.kind, c.state, c.number, c.expires_on)
            for c in credentials_of(session, actor.user_name)
        ),
        pdmp_checks=tuple(
            PdmpFact(c.state, c.checked_at, c.consulted)
            for c in pdmp_checks_of(session, patient_id)
        ),
        previous_issued_at=tuple(previous),
        consent=None if consent is None else ConsentFact(
            consent.template_version, consent.signed_on,
            current is None or consent.template_id == current.id,
        ),
        consent_valid_months=int(get_setting(session, "consent_valid_months")),
        telemedicine=tuple(
            TelemedicineFact(t.basis, t.in_person_evaluation_on, t.ends_on)
            for t in telemedicine_records(session, patient_id)
        ),
        nj_setting=nj_lookup_setting(session),
        misuse_concern=request.misuse_concern,
    )
    return PrescriptionChecklist(
        patient_id, issue_at, inputs.issue_on, prescription_checklist(inputs, rules), protocol
    )


def _best_number(session: Session, actor: Actor, kind: CredentialKind, state: str) -> str:
    held = [c for c in credentials_of(session, actor.user_name)
            if c.kind is kind and c.state == state]
    return max(held, key=lambda c: c.expires_on).number if held else ""


def issue_prescription(
    session: Session,
    actor: Actor,
    patient_id: int,
    request: PrescriptionRequest,
    *,
    acknowledged: Iterable[str] = (),
    rules: ComplianceRules | None = None,
) -> PrescriptionInfo:
    """Issue a prescription from the patient's signed protocol, or raise
    :class:`PrescriptionRefused` naming every failed check. Physicians only."""
    require(actor, Permission.ISSUE_PRESCRIPTION, "issue a prescription")
    pharmacy = clean_text(request.pharmacy, "the pharmacy", PHARMACY_MAX)
    checklist = prescription_checklist_for(session, actor, patient_id, request, rules=rules)
    ticked = sorted({str(code) for code in acknowledged})
    failed = blocking_checks(checklist.results, ticked)
    if failed:
        raise PrescriptionRefused(checklist.blockers(ticked), [str(r.code) for r in failed])
    version = checklist.protocol
    assert version is not None  # the protocol check is an error without one
    protocol = version.protocol
    patient = require_patient(session, patient_id)
    warned = sorted(str(w.code) for w in checklist.warnings)
    row = Prescription(
        patient_id=patient_id,
        protocol_version_id=version.version_id,
        product=protocol.formulation,
        strength_mg_per_unit=protocol.strength_mg_per_unit,
        unit_name=protocol.unit_name,
        quantity=float(request.quantity),
        directions=sig_text(protocol),
        refills=request.refills,
        pharmacy=pharmacy,
        issued_at=checklist.issue_at,
        issued_on=checklist.issue_on,
        prescriber=actor.user_name,
        prescriber_full_name=actor.full_name,
        prescriber_dea_number=_best_number(
            session, actor, CredentialKind.DEA_REGISTRATION, patient.state
        ),
        prescriber_licence_number=_best_number(
            session, actor, CredentialKind.STATE_LICENCE, patient.state
        ),
        remote=request.remote,
        checklist_json=checklist_json_text(checklist.results),
        acknowledged_warnings_json=json.dumps(warned),
        content_hash="",
        status="issued",
    )
    session.add(row)
    session.flush()
    row.content_hash = prescription_hash(row)
    session.flush()
    sign_content(session, actor, PRESCRIPTION, row.id, row.content_hash)
    record_event(
        session, actor, audit_actions.PRESCRIPTION_ISSUED, patient_id=patient_id,
        detail=f"prescription {row.id} from protocol version {version.version_id}; "
        f"refills {row.refills}; {'remote' if row.remote else 'in person'}; "
        f"hash {row.content_hash[:12]}",
    )
    if warned:
        record_event(
            session, actor, audit_actions.PRESCRIPTION_WARNINGS_ACKNOWLEDGED,
            patient_id=patient_id,
            detail=f"prescription {row.id}: {', '.join(warned)}",
        )
    return prescription_info(row)


def issue_prescription_recording_refusal(
    open_session: Callable[[], AbstractContextManager[Session]],
    actor: Actor,
    patient_id: int,
    request: PrescriptionRequest,
    *,
    acknowledged: Iterable[str] = (),
) -> PrescriptionInfo:
    """:func:`issue_prescription` in a transaction of its own; when the checks refuse it, the
    attempt is recorded in a second transaction (the first rolled back), naming the failed
    checks by code only, and :class:`PrescriptionRefused` is raised again. An auditor sees
    every attempt to issue, not only the prescriptions that were issued."""
    ticked = list(acknowledged)
    try:
        with open_session() as session:
            return issue_prescription(session, actor, patient_id, request, acknowledged=ticked)
    except PrescriptionRefused as refused:
        with open_session() as session:
            record_event(
                session, actor, audit_actions.PRESCRIPTION_REFUSED, patient_id=patient_id,
                detail="failed checks: " + ", ".join(refused.codes),
            )
        raise


def _row(session: Session, prescription_id: int) -> Prescription:
    row = session.get(Prescription, prescription_id)
    if row is None:
        raise UserFacingError("That prescription is not in this practice database.")
    return row


def void_prescription(
    session: Session, actor: Actor, prescription_id: int, reason: str
) -> PrescriptionInfo:
    """Void an issued prescription with a reason (physicians only; audited without it)."""
    require(actor, Permission.ISSUE_PRESCRIPTION, "void a prescription")
    row = _row(session, prescription_id)
    if row.status == "void":
        raise UserFacingError(f"This prescription was already voided by {row.voided_by}.")
    row.void_reason = clean_text(reason, "the reason for voiding", VOID_REASON_MAX,
                                 required=True)
    row.status = "void"
    row.voided_by = actor.user_name
    row.voided_at = datetime.now(UTC)
    session.flush()
    record_event(
        session, actor, audit_actions.PRESCRIPTION_VOIDED, patient_id=row.patient_id,
        detail=f"prescription {row.id} voided",
    )
    return prescription_info(row)


def record_fill(
    session: Session,
    actor: Actor,
    prescription_id: int,
    *,
    filled_on: date,
    today: date,
    quantity: float | None = None,
    pharmacy: str = "",
    rules: ComplianceRules | None = None,
) -> PrescriptionInfo:
    """Record that the pharmacy dispensed the prescription (the first fill, then each refill).
    Refused for a voided prescription, after the last refill, or after the refill window."""
    require(actor, Permission.RECORD_DISPENSING, "record a dispensing")
    rules = rules or load_compliance_rules()
    row = _row(session, prescription_id)
    if row.status == "void":
        raise UserFacingError("This prescription was voided: it cannot be filled.")
    past_day(filled_on, "The day it was dispensed", today)
    if filled_on < row.issued_on:
        raise UserFacingError("A prescription cannot be filled before the day it was issued.")
    number = len(row.fills)
    if number > row.refills:
        raise UserFacingError(
            f"All {row.refills} refills of this prescription have been dispensed; a new "
            "prescription is needed."
        )
    last = last_fill_day(rules, row.issued_on)
    if filled_on > last:
        raise UserFacingError(
            f"This prescription could be filled until {last.isoformat()} (21 CFR 1306.22); "
            "a new prescription is needed."
        )
    amount = row.quantity if quantity is None else float(quantity)
    if amount <= 0:
        raise UserFacingError("Enter the quantity dispensed (above 0).")
    session.add(PrescriptionFill(
        prescription=row, fill_number=number, filled_on=filled_on, quantity=amount,
        pharmacy=clean_text(pharmacy, "the pharmacy", PHARMACY_MAX) or row.pharmacy,
        recorded_by=actor.user_name,
    ))
    session.flush()
    record_event(
        session, actor, audit_actions.PRESCRIPTION_FILL_RECORDED, patient_id=row.patient_id,
        detail=f"prescription {row.id}: fill {number} on {filled_on.isoformat()}",
    )
    session.refresh(row)
    return prescription_info(row)


def prescriptions_of(session: Session, patient_id: int) -> tuple[PrescriptionInfo, ...]:
    """The patient's prescriptions (voided ones too), newest first."""
    return tuple(prescription_info(r) for r in reversed(_issued_rows(session, patient_id)))


def get_prescription(session: Session, prescription_id: int) -> PrescriptionInfo:
    return prescription_info(_row(session, prescription_id))
